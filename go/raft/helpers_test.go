package raft

import (
	"fmt"
	"hash/fnv"
	"math/rand"
	"testing"
)

// A tiny in-memory harness for driving a few cores by hand (the Python
// tests/raft_helpers.py). A network holds one core and one storage per node
// and a FIFO of messages in flight; tests decide exactly which messages are
// delivered, dropped or delayed, and when each node ticks.

const E = 10 // ElectionTicks used throughout the tests

func testConfig(mods ...func(*Config)) Config {
	cfg := DefaultConfig()
	cfg.ElectionTicks, cfg.HeartbeatTicks, cfg.PreVote, cfg.CheckQuorum = E, 1, true, true
	for _, m := range mods {
		m(&cfg)
	}
	return cfg
}

func noPreVote(c *Config)     { c.PreVote = false }
func noCheckQuorum(c *Config) { c.CheckQuorum = false }
func maxInflight(n int) func(*Config) {
	return func(c *Config) { c.MaxInflight = n }
}
func maxMsgBytes(n int) func(*Config) {
	return func(c *Config) { c.MaxMsgBytes = n }
}
func heartbeatTicks(n int) func(*Config) {
	return func(c *Config) { c.HeartbeatTicks = n }
}
func promoteMaxLag(n uint64) func(*Config) {
	return func(c *Config) { c.PromoteMaxLag = n }
}

// ents: entries with consecutive indexes from 1 and the given terms, data
// "index@term".
func ents(terms ...uint64) []Entry { return entsFrom(1, terms...) }

func entsFrom(start uint64, terms ...uint64) []Entry {
	out := make([]Entry, len(terms))
	for k, term := range terms {
		i := start + uint64(k)
		out[k] = Entry{Index: i, Term: term, Kind: EntryCommand, Data: []byte(fmt.Sprintf("%d@%d", i, term))}
	}
	return out
}

func termsOf(entries []Entry) []uint64 {
	out := []uint64{}
	for _, e := range entries {
		out = append(out, e.Term)
	}
	return out
}

func eqU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type coreSpec struct {
	id        string
	peers     []string
	seed      int64
	hs        HardState
	snap      *Snapshot
	entries   []Entry
	bootstrap *Membership
	floor     uint64
	mutations map[string]bool
	cfg       []func(*Config)
}

func newCoreT(t testing.TB, s coreSpec) *Core {
	t.Helper()
	if s.id == "" {
		s.id = "a"
	}
	if s.peers == nil {
		s.peers = []string{"b", "c"}
	}
	hs := s.hs
	c, err := NewCore(s.id, s.peers, testConfig(s.cfg...), rand.New(rand.NewSource(s.seed)), Options{
		HardState: &hs, Snapshot: s.snap, Entries: s.entries, Bootstrap: s.bootstrap,
		VoteFloor: s.floor, Mutations: s.mutations,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msg(typ MessageType, src, dst string, term uint64) Message {
	return Message{Type: typ, Src: src, Dst: dst, Term: term}
}

// drain takes the core's Ready and acknowledges it at once (an instant,
// perfect disk).
func drain(t testing.TB, c *Core) Ready {
	t.Helper()
	rd := c.Ready()
	if err := c.Advance(rd); err != nil {
		t.Fatal(err)
	}
	return rd
}

func step(t testing.TB, c *Core, m Message) {
	t.Helper()
	if err := c.Step(m); err != nil {
		t.Fatal(err)
	}
}

func ofType(msgs []Message, types ...MessageType) []Message {
	var out []Message
	for _, m := range msgs {
		for _, ty := range types {
			if m.Type == ty {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

func tickN(c *Core, n int) {
	for i := 0; i < n; i++ {
		c.Tick()
	}
}

// ticksUntil ticks c until pred(c); it returns how many ticks that took.
func ticksUntil(t testing.TB, c *Core, pred func(*Core) bool, limit int) int {
	t.Helper()
	for n := 1; n <= limit; n++ {
		c.Tick()
		if pred(c) {
			return n
		}
	}
	t.Fatalf("condition not reached after %d ticks", limit)
	return 0
}

// makeLeader elects a lone core by feeding it granted (pre-)votes from every
// peer. It returns the Ready the new leader produced.
func makeLeader(t testing.TB, c *Core) Ready {
	t.Helper()
	c.Campaign()
	for i := 0; i < 2 && !c.IsLeader(); i++ {
		rd := drain(t, c)
		for _, m := range ofType(rd.Messages, MsgPreVote, MsgVote) {
			resp := MsgVoteResp
			if m.Type == MsgPreVote {
				resp = MsgPreVoteResp
			}
			step(t, c, msg(resp, m.Dst, c.ID(), m.Term))
		}
	}
	if !c.IsLeader() {
		t.Fatalf("not leader: %v", c.Role())
	}
	return drain(t, c)
}

// -- storage and network ---------------------------------------------------------

// storage is what a node keeps across a crash: exactly what Ready asked it
// to persist.
type storage struct {
	hs      HardState
	snap    Snapshot
	entries []Entry
}

func (s *storage) persist(t testing.TB, rd Ready) {
	if rd.Snapshot != nil {
		s.snap = *rd.Snapshot
		s.entries = nil
	}
	if rd.HardState != nil {
		s.hs = *rd.HardState
	}
	if len(rd.Entries) > 0 {
		keep := int64(rd.Entries[0].Index) - int64(s.snap.Index) - 1
		if keep < 0 || keep > int64(len(s.entries)) {
			t.Fatalf("Ready.Entries leaves a gap in the log")
		}
		s.entries = append(append([]Entry(nil), s.entries[:keep]...), rd.Entries...)
	}
}

type queued struct {
	dst string
	m   Message
}

type link struct{ from, to string }

type network struct {
	t         testing.TB
	ids       []string
	bootstrap map[string]*Membership
	cfg       []func(*Config)
	seed      int64
	storage   map[string]*storage
	nodes     map[string]*Core
	queue     []queued
	sent      []queued
	cut       map[link]bool
	down      map[string]bool
	applied   map[string][]Entry
	smSnap    map[string]*Snapshot
	reads     map[string][]ReadState
	boots     int
	mutations map[string]bool // for every node booted from now on
}

func newNetwork(t testing.TB, ids []string, bootstrap map[string]*Membership, cfg ...func(*Config)) *network {
	if ids == nil {
		ids = []string{"a", "b", "c"}
	}
	n := &network{t: t, ids: ids, bootstrap: bootstrap, cfg: cfg, storage: map[string]*storage{},
		nodes: map[string]*Core{}, cut: map[link]bool{}, down: map[string]bool{},
		applied: map[string][]Entry{}, smSnap: map[string]*Snapshot{}, reads: map[string][]ReadState{}}
	for _, id := range ids {
		n.storage[id] = &storage{}
		n.boot(id)
	}
	return n
}

func (n *network) boot(id string) {
	st := n.storage[id]
	n.boots++
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s/%d", n.seed, id, n.boots)
	var peers []string
	for _, p := range n.ids {
		if p != id {
			peers = append(peers, p)
		}
	}
	hs := st.hs
	opts := Options{HardState: &hs, Entries: append([]Entry(nil), st.entries...), Bootstrap: n.bootstrap[id], Mutations: n.mutations}
	if st.snap.Index > 0 {
		snap := st.snap
		opts.Snapshot = &snap
	}
	c, err := NewCore(id, peers, testConfig(n.cfg...), rand.New(rand.NewSource(int64(h.Sum64()))), opts)
	if err != nil {
		n.t.Fatal(err)
	}
	n.nodes[id] = c
}

// load replaces a node's disk and reboots it from there.
func (n *network) load(id string, term uint64, entries []Entry, vote string) {
	n.storage[id] = &storage{hs: HardState{term, vote}, entries: entries}
	n.boot(id)
}

func (n *network) get(id string) *Core { return n.nodes[id] }

// process runs one Ready cycle for id (persist, send, apply, advance).
func (n *network) process(id string) {
	if n.down[id] {
		return
	}
	c := n.nodes[id]
	if !c.HasReady() {
		return
	}
	rd := c.Ready()
	n.storage[id].persist(n.t, rd)
	for _, m := range rd.Messages {
		var targets []string
		if m.Dst == Broadcast {
			for _, p := range n.ids {
				if p != id {
					targets = append(targets, p)
				}
			}
		} else {
			targets = []string{m.Dst}
		}
		for _, d := range targets {
			n.sent = append(n.sent, queued{d, m})
			n.queue = append(n.queue, queued{d, m})
		}
	}
	if rd.Snapshot != nil {
		n.smSnap[id] = rd.Snapshot
		n.applied[id] = nil
	}
	n.applied[id] = append(n.applied[id], rd.Committed...)
	n.reads[id] = append(n.reads[id], rd.ReadStates...)
	if err := c.Advance(rd); err != nil {
		n.t.Fatal(err)
	}
}

func (n *network) processAll() {
	for _, id := range n.ids {
		n.process(id)
	}
}

func (n *network) reachable(dst string, m Message) bool {
	return !n.down[dst] && !n.down[m.Src] && !n.cut[link{m.Src, dst}]
}

type pred func(dst string, m Message) bool

// deliver delivers (in FIFO order) every queued message matching p (nil:
// all); those on cut links or to/from crashed nodes are dropped instead.
func (n *network) deliver(p pred) int {
	var taken, rest []queued
	for _, q := range n.queue {
		if p == nil || p(q.dst, q.m) {
			taken = append(taken, q)
		} else {
			rest = append(rest, q)
		}
	}
	n.queue = rest
	count := 0
	for _, q := range taken {
		if n.reachable(q.dst, q.m) {
			if err := n.nodes[q.dst].Step(q.m); err != nil {
				n.t.Fatal(err)
			}
			count++
		}
	}
	return count
}

func (n *network) drop(p pred) int {
	before := len(n.queue)
	var rest []queued
	for _, q := range n.queue {
		if !(p == nil || p(q.dst, q.m)) {
			rest = append(rest, q)
		}
	}
	n.queue = rest
	return before - len(rest)
}

func (n *network) pending(dst string, types ...MessageType) []Message {
	var out []Message
	for _, q := range n.queue {
		if (dst == "" || q.dst == dst) && (len(types) == 0 || len(ofType([]Message{q.m}, types...)) == 1) {
			out = append(out, q.m)
		}
	}
	return out
}

// stabilize processes and delivers until no node has anything left to say;
// messages matching hold stay queued.
func (n *network) stabilize(hold pred) {
	for i := 0; i < 200; i++ {
		n.processAll()
		var p pred
		if hold != nil {
			p = func(d string, m Message) bool { return !hold(d, m) }
		}
		if n.deliver(p) == 0 {
			return
		}
	}
	n.t.Fatal("network did not settle")
}

// tick ticks the given (nil: all) live nodes k times, settling after each.
func (n *network) tick(ids []string, k int, settle bool) {
	if ids == nil {
		ids = n.ids
	}
	for i := 0; i < k; i++ {
		for _, id := range ids {
			if !n.down[id] {
				n.nodes[id].Tick()
			}
		}
		if settle {
			n.stabilize(nil)
		}
	}
}

func (n *network) isolate(id string) {
	for _, p := range n.ids {
		if p != id {
			n.cut[link{id, p}] = true
			n.cut[link{p, id}] = true
		}
	}
}

func (n *network) partition(groups ...[]string) {
	for i, g := range groups {
		for j, h := range groups {
			if i != j {
				for _, a := range g {
					for _, b := range h {
						n.cut[link{a, b}] = true
					}
				}
			}
		}
	}
}

func (n *network) heal() { n.cut = map[link]bool{} }

func (n *network) crash(id string) {
	n.down[id] = true
	var rest []queued
	for _, q := range n.queue {
		if q.dst != id {
			rest = append(rest, q)
		}
	}
	n.queue = rest
}

func (n *network) restart(id string) {
	delete(n.down, id)
	n.applied[id] = nil
	n.boot(id)
}

func (n *network) compact(id string, index uint64) Snapshot {
	c := n.nodes[id]
	if err := c.Compact(index, []byte(fmt.Sprintf("state@%d", index))); err != nil {
		n.t.Fatal(err)
	}
	snap := c.Snapshot()
	st := n.storage[id]
	st.entries = append([]Entry(nil), st.entries[snap.Index-st.snap.Index:]...)
	st.snap = snap
	return snap
}

func (n *network) elect(id string) {
	n.t.Helper()
	n.nodes[id].Campaign()
	n.stabilize(nil)
	if !n.nodes[id].IsLeader() {
		n.t.Fatalf("%s is %v", id, n.nodes[id].Role())
	}
}

func (n *network) leaders() []string {
	var out []string
	for _, id := range n.ids {
		if !n.down[id] && n.nodes[id].IsLeader() {
			out = append(out, id)
		}
	}
	return out
}

func (n *network) sentOf(types ...MessageType) []Message {
	var out []Message
	for _, q := range n.sent {
		if len(ofType([]Message{q.m}, types...)) == 1 {
			out = append(out, q.m)
		}
	}
	return out
}

func (n *network) progress(leader, peer string) ProgressInfo {
	pr, ok := n.nodes[leader].Progress(peer)
	if !ok {
		n.t.Fatalf("%s has no progress for %s", leader, peer)
	}
	return pr
}

func newRand() *rand.Rand { return rand.New(rand.NewSource(0)) }
