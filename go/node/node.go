// Package node is the Go zmqnode process: the event loop that drives the
// Raft core (go/raft) over ZeroMQ and disk, the replicated model registry
// and every client request (docs/PROTOCOL.md), as zmqnode/node.py does.
//
// One goroutine (Run's) owns the core and every socket. Each turn:
// poll until the next tick; drain the sockets (Raft messages to the core,
// client requests to the handlers); tick when due; issue the batched read
// index; process the core's Ready (persist, then send, then apply, then
// advance); flush the predictions; expire parked requests. Other
// goroutines (ZAP, compaction fsyncs, HTTP) reach the loop only through
// Submit, which wakes it over an inproc PAIR.
package node

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zmqnode/raft"
	"zmqnode/replies"
	"zmqnode/security"
	"zmqnode/storage"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// Batch is how many messages a turn reads per socket, so one busy socket
// cannot starve Raft traffic or the clock.
const Batch = 256

// FeedSeconds is the status feed's period.
const FeedSeconds = 0.2

// ClientFrameSlack: a request may be this much over 4 x --max-request-bytes
// before the socket drops the connection instead of answering TOO_LARGE.
const ClientFrameSlack = 64 << 20

// ExitStorageDamaged is the exit status for damaged storage or bad keys.
const ExitStorageDamaged = 2

// FatalError stops the node: damaged storage, unusable keys, a broken
// Raft invariant. main prints it as one CRITICAL line and exits 2.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

type pollEntry struct {
	sock       *zmq.Socket
	handler    func(frames [][]byte)
	onReadable func() // instead of handler: the owner reads the socket itself
}

// Node is one cluster member.
type Node struct {
	Cfg  *Config
	ID   string
	Log  *Logger
	keys *security.NodeKeys

	ctx      *zmq.Context
	sockets  *security.Sockets
	gate     *security.Gatekeeper
	storage  *storage.NodeStorage
	Registry *Registry
	Core     *raft.Core

	client *zmq.Socket
	links  *PeerLinks

	entries    []pollEntry
	poller     *zmq.Poller
	pollerSize int
	dirty      bool

	wakeRecv *zmq.Socket
	wakeSend *zmq.Socket
	wakeMu   sync.Mutex
	submitMu sync.Mutex
	submits  []func()

	Waiters   *Waiters
	Proposals *Proposals
	Batcher   *Batcher
	Handlers  *Handlers
	compactor *Compactor
	fetcher   *Fetcher
	Stats     *Stats
	events    *Events

	traffic     RaftTraffic
	waiting     map[*clientReplier]bool
	started     time.Time
	running     atomic.Bool
	nextTick    time.Time
	ticks       int
	lastRole    raft.Role
	lastLeader  string
	peersDown   map[string]bool
	memSeen     [2]uint64
	memSeenInit bool

	// Hooks for the components around the loop (services.go).
	Services         *Services
	OnTurn           []func()
	OnRoleCounters   func(campaign, leaderChange bool)
	OnAllowed        func(keys []string)
	allowedNow       []string
	httpInfo         string
	OnTick           []func(now time.Time)
	OnLeadershipLost []func()
	OnStatus         func(status []byte)
	TrainerState     func() string
	TrainingViews    func() []*wire.Object
	TrainingsRunning func() int
}

// New opens the storage, loads the keys, builds the core and binds every
// socket. A *FatalError means: report it and exit 2.
func New(cfg *Config) (_ *Node, err error) {
	if err := os.MkdirAll(cfg.StorageDir, 0o755); err != nil {
		return nil, &FatalError{fmt.Errorf("cannot create the storage dir %s: %w", cfg.StorageDir, err)}
	}
	logger, err := NewLogger(cfg.NodeID(), cfg.LogPath(), cfg.LogLevel)
	if err != nil {
		return nil, &FatalError{err}
	}
	n := &Node{Cfg: cfg, ID: cfg.NodeID(), Log: logger, started: time.Now(), waiting: map[*clientReplier]bool{},
		Stats: NewStats(), events: &Events{}, peersDown: map[string]bool{}}
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	n.storage = storage.NewNodeStorage(cfg.StorageDir)
	n.storage.Warn = func(msg string) { n.Log.Log("WARNING", "zmqnode.storage", "%s", msg) }
	n.storage.Stats.OnFsync = n.Stats.ObserveFsync
	rec, err := n.storage.Open()
	if err != nil {
		return nil, &FatalError{err}
	}
	models, err := storage.NewModelStore(n.storage.ModelsDir(), n.storage.Stats)
	if err != nil {
		return nil, &FatalError{err}
	}
	n.Registry = NewRegistry(models)
	n.Registry.Logf = func(level, format string, args ...any) { n.Log.Log(level, "zmqnode.registry", format, args...) }
	if rec.Snapshot != nil {
		if err := n.Registry.Restore(rec.Snapshot.Data); err != nil {
			return nil, &FatalError{fmt.Errorf("snapshot of %s: %w", cfg.StorageDir, err)}
		}
	}
	n.ctx, err = zmq.NewContext()
	if err != nil {
		return nil, err
	}
	if err := n.loadKeys(); err != nil {
		return nil, &FatalError{err}
	}
	bootstrap, err := n.bootstrap(rec)
	if err != nil {
		return nil, err
	}
	rcfg := raft.DefaultConfig()
	rcfg.ElectionTicks = cfg.ElectionTicks
	var seed [8]byte
	if f, e := os.Open("/dev/urandom"); e == nil {
		f.Read(seed[:])
		f.Close()
	}
	rng := rand.New(rand.NewSource(int64(uint64(seed[0]) | uint64(seed[1])<<8 | uint64(seed[2])<<16 |
		uint64(seed[3])<<24 | uint64(seed[4])<<32 | uint64(seed[5])<<40 | uint64(seed[6])<<48 | uint64(seed[7])<<56 ^ uint64(time.Now().UnixNano()))))
	opts := raft.Options{
		Entries:   fromStorageEntries(rec.Entries),
		Bootstrap: &bootstrap,
		VoteFloor: storage.LoadJoinedAt(cfg.StorageDir),
	}
	hs := raft.HardState(rec.HardState)
	opts.HardState = &hs
	if rec.Snapshot != nil {
		s := raft.Snapshot(*rec.Snapshot)
		opts.Snapshot = &s
	}
	n.Core, err = raft.NewCore(n.ID, cfg.Peers, rcfg, rng, opts)
	if err != nil {
		return nil, &FatalError{err}
	}
	n.compactor = &Compactor{n: n, SnapshotEntries: cfg.SnapshotEntries}
	for _, p := range n.Core.Peers() {
		n.peersDown[p] = true // until first heard from
	}
	n.Log.Log("INFO", "zmqnode.node", "node %s starting (Go): term %d, %d log entries, members %s, storage %s",
		n.ID, rec.HardState.Term, len(rec.Entries), describe(n.Core.Membership()), cfg.StorageDir)

	// Before any socket binds: without a ZAP handler libzmq admits every key.
	n.gate, err = security.StartAuthenticator(n.ctx, n.keys, n.Log.For("WARNING", "zmqnode.security"))
	if err != nil {
		return nil, err
	}
	n.sockets = &security.Sockets{Ctx: n.ctx, Keys: n.keys}
	if err := n.openLinks(); err != nil {
		var be *security.BindError
		if errors.As(err, &be) {
			return nil, fmt.Errorf("node %s: %v. Another node (or an old one) is probably using "+
				"this port: stop it (./run_cluster.sh stop) or choose another --port", n.ID, err)
		}
		return nil, err
	}
	if err := n.openWake(); err != nil {
		return nil, err
	}
	n.Waiters = NewWaiters(n.ID, func(r any) {
		n.Log.Log("ERROR", "zmqnode.waiting", "internal error while answering a deferred request: %v", r)
	})
	n.Proposals = NewProposals()
	n.Batcher = NewBatcher(n.ID)
	n.Batcher.OnBatch = n.Stats.ObserveBatch
	n.fetcher = NewFetcher(n)
	n.Handlers = &Handlers{
		Cfg: cfg, ID: n.ID, Registry: n.Registry, Waiters: n.Waiters, Proposals: n.Proposals,
		Leadership: Leadership{LeaderID: n.Core.LeaderID, IsLeader: n.Core.IsLeader, Propose: n.propose},
		Batcher:    n.Batcher,
		Status:     func() *wire.Object { return n.Status() },
		WantFile:   n.fetcher.Want,
		Count:      n.Count,
		Logf:       func(level, format string, args ...any) { n.Log.Log(level, "zmqnode.handlers", format, args...) },
	}
	n.Handlers.Members = &MemberRequests{
		Core: n.Core, H: n.Handlers,
		LastHeard:        func() map[string]time.Time { return n.links.LastHeard },
		PeerStatus:       func() map[string]PeerStatus { return n.links.PeerStatus },
		Propose:          n.proposeMembership,
		OwnModelsMissing: func() int { return len(n.Registry.Damaged) + n.fetcher.Pending() },
	}
	n.fetchDamaged()
	n.syncMembership()
	if err := n.StartServices(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Node) logBytes() int64 {
	if n.storage == nil || n.storage.Log == nil {
		return 0
	}
	return n.storage.Log.Size()
}

func describe(m raft.Membership) string {
	voters := strings.Join(m.Voters(), ", ")
	if voters == "" {
		voters = "none"
	}
	s := "voters " + voters
	if l := m.Learners(); len(l) > 0 {
		s += "; learners " + strings.Join(l, ", ")
	}
	return s
}

func (n *Node) loadKeys() error {
	cfg := n.Cfg
	if cfg.Insecure() {
		n.Log.Log("WARNING", "zmqnode.transport.security", "node %s: running with --insecure: no encryption, "+
			"no authentication; anyone who reaches the ports is a member", n.ID)
		return nil
	}
	if cfg.LocalKeys {
		var nodes []security.Address
		for _, id := range append([]string{n.ID}, cfg.Peers...) {
			h, p, err := security.ParseAddress(id)
			if err != nil {
				return err
			}
			nodes = append(nodes, security.Address{Host: h, Port: p})
		}
		made, err := security.EnsureLocalKeys(cfg.KeysDir, nodes)
		if err != nil {
			return err
		}
		what := "all there already"
		if len(made) > 0 {
			what = fmt.Sprintf("made %d keypairs", len(made))
		}
		n.Log.Log("INFO", "zmqnode.node", "no --keys and every address is loopback: using the local keys in %s "+
			"(%s; python -m client finds them there)", cfg.KeysDir, what)
	}
	keys, err := security.LoadNodeKeys(cfg.KeysDir, cfg.NodeKey, cfg.ClientAuth)
	if err != nil {
		return err
	}
	n.keys = keys
	clients := "any holding cluster.key"
	if keys.Clients != nil {
		clients = fmt.Sprintf("%d allowed keys", len(keys.Clients))
	}
	n.Log.Log("INFO", "zmqnode.node", "CURVE on: node key %s, %d members allowed, clients: %s",
		cfg.NodeKey, len(keys.Members), clients)
	return nil
}

// memberKeyFile is where node's public key lives in the key directory, by
// the layout that made it (members.py member_key_file).
func (n *Node) memberKeyFile(node string) string {
	cfg := n.Cfg
	if cfg.Insecure() {
		return ""
	}
	host, port, err := security.ParseAddress(node)
	if err != nil {
		return ""
	}
	if cfg.LocalKeys {
		local := security.LocalNodeKey(cfg.KeysDir, host, port)
		return filepath.Join(filepath.Dir(local), "members", strings.Replace(filepath.Base(local), ".key_secret", ".key", 1))
	}
	members := append([]string{n.ID}, cfg.Peers...)
	if !contains(members, node) {
		return ""
	}
	var others []string
	for _, m := range members {
		if m != node {
			others = append(others, m)
		}
	}
	secret, err := security.DefaultNodeKey(cfg.KeysDir, host, port, others)
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(secret), "members", strings.Replace(filepath.Base(secret), ".key_secret", ".key", 1))
}

// bootstrap is the membership before the log says otherwise: the command
// line's nodes with the credentials found, or for --join the one the
// cluster answered (empty once the storage holds the log).
func (n *Node) bootstrap(rec storage.Recovered) (raft.Membership, error) {
	cfg := n.Cfg
	own := ""
	if n.keys != nil {
		own = n.keys.Public
	}
	if len(cfg.Join) == 0 {
		creds := map[string]string{}
		if own != "" {
			creds[n.ID] = own
		}
		for _, p := range cfg.Peers {
			if path := n.memberKeyFile(p); path != "" {
				if key, err := security.LoadPublicKey(path); err == nil && key != "" {
					creds[p] = key
				}
			}
		}
		return raft.NewMembership(append([]string{n.ID}, cfg.Peers...), nil, creds), nil
	}
	fresh := rec.Snapshot == nil && len(rec.Entries) == 0 && rec.HardState.Term == 0
	if !fresh {
		return raft.NewMembership(nil, nil, nil), nil
	}
	n.Log.Log("INFO", "zmqnode.node", "joining the cluster through %s as a learner", strings.Join(cfg.Join, ", "))
	data, index, err := AskToJoin(n.ctx, n.keys, cfg.Join, n.ID, own, 60*time.Second, n.Log.For("INFO", "zmqnode.join"))
	if err != nil {
		return raft.Membership{}, fmt.Errorf("node %s: %w", n.ID, err)
	}
	m, err := raft.DecodeMembership(data)
	if err != nil {
		return raft.Membership{}, fmt.Errorf("node %s: the JOIN answer's membership: %w", n.ID, err)
	}
	n.Log.Log("INFO", "zmqnode.node", "joined at index %d: %s", index, describe(m))
	if err := storage.SaveJoinedAt(cfg.StorageDir, index, n.storage.Stats); err != nil {
		return raft.Membership{}, &FatalError{err}
	}
	return m, nil
}

func (n *Node) openLinks() error {
	cfg := n.Cfg
	var err error
	n.client, err = n.sockets.Server(zmq.ROUTER, Endpoint(cfg.Host, cfg.Port), security.Clients,
		security.ServerOptions{MaxMessageBytes: 4*cfg.MaxRequestBytes + ClientFrameSlack})
	if err != nil {
		return err
	}
	n.Register(n.client, n.onClient)
	n.links, err = NewPeerLinks(n, 2*cfg.MaxModelBytes+(16<<20))
	if err != nil {
		return err
	}
	n.Register(n.links.RaftSock, func(frames [][]byte) {
		if len(frames) > 1 {
			n.onRaft(n.links.Receive(frames[1:]))
		}
	})
	n.Register(n.links.Sub, func(frames [][]byte) { n.onRaft(n.links.ReceivePublished(frames)) })
	return nil
}

func (n *Node) openWake() error {
	var err error
	endpoint := fmt.Sprintf("inproc://zmqnode-wake-%p", n)
	if n.wakeRecv, err = n.ctx.NewSocket(zmq.PAIR); err != nil {
		return err
	}
	n.wakeRecv.SetInt(zmq.Linger, 0)
	if err = n.wakeRecv.Bind(endpoint); err != nil {
		return err
	}
	if n.wakeSend, err = n.ctx.NewSocket(zmq.PAIR); err != nil {
		return err
	}
	n.wakeSend.SetInt(zmq.Linger, 0)
	if err = n.wakeSend.Connect(endpoint); err != nil {
		return err
	}
	n.Register(n.wakeRecv, func([][]byte) {})
	return nil
}

// Register has the loop serve sock: each message's frames go to handler.
func (n *Node) Register(sock *zmq.Socket, handler func(frames [][]byte)) {
	n.entries = append(n.entries, pollEntry{sock: sock, handler: handler})
	n.dirty = true
}

// RegisterReadable has the loop call onReadable when sock has a message;
// onReadable reads it (at most Batch messages, so others get their turn).
func (n *Node) RegisterReadable(sock *zmq.Socket, onReadable func()) {
	n.entries = append(n.entries, pollEntry{sock: sock, onReadable: onReadable})
	n.dirty = true
}

// Unregister stops serving sock (the caller closes it).
func (n *Node) Unregister(sock *zmq.Socket) {
	for i, e := range n.entries {
		if e.sock == sock {
			n.entries = append(n.entries[:i], n.entries[i+1:]...)
			n.dirty = true
			return
		}
	}
}

// Submit runs fn on the loop goroutine (thread-safe): how other goroutines
// (HTTP, training, compaction) reach the core and the sockets.
func (n *Node) Submit(fn func()) {
	n.submitMu.Lock()
	n.submits = append(n.submits, fn)
	n.submitMu.Unlock()
	n.Wake()
}

// Wake interrupts the loop's poll (thread-safe).
func (n *Node) Wake() {
	n.wakeMu.Lock()
	defer n.wakeMu.Unlock()
	if n.wakeSend != nil {
		n.wakeSend.Send([][]byte{{}}, zmq.DontWait)
	}
}

// Dispatch serves a decoded request exactly as one from the client ROUTER;
// call it on the loop goroutine (from a Submit).
func (n *Node) Dispatch(req *wire.Object, blobs [][]byte, reply replies.Replier) {
	n.Handlers.Dispatch(asReceived(req), blobs, reply)
}

// asReceived is req as the wire would deliver it: a header built in Go
// (HTTP inference) may hold []int or float64 where a decoded one holds
// wire.Number, and the handlers read headers as decoded.
func asReceived(req *wire.Object) *wire.Object {
	raw, err := wire.MarshalJSON(req)
	if err != nil {
		return req
	}
	v, err := wire.UnmarshalJSON(raw)
	if o, ok := v.(*wire.Object); ok && err == nil {
		return o
	}
	return req
}

// Stop asks Run to return (thread-safe; SIGTERM calls it).
func (n *Node) Stop() {
	n.running.Store(false)
	n.Wake()
}

// Run serves until Stop; it hands leadership over before leaving.
func (n *Node) Run() (err error) {
	n.running.Store(true)
	defer func() {
		n.closeAll()
		n.Log.Log("INFO", "zmqnode.node", "node %s stopped", n.ID)
	}()
	cfg := n.Cfg
	httpInfo := n.httpInfo
	if httpInfo == "" {
		httpInfo = "HTTP inference off"
	}
	n.Log.Log("INFO", "zmqnode.node", "listening: clients %s, raft %s, heartbeats %s, monitor http://%s:%d, %s",
		Endpoint(cfg.Host, cfg.Port), Endpoint(cfg.Host, cfg.Port+RaftOffset), Endpoint(cfg.Host, cfg.Port+HeartbeatOffset),
		cfg.MonitorHost, cfg.MonitorPort, httpInfo)
	n.nextTick = time.Now()
	for n.running.Load() {
		if err := n.turn(); err != nil {
			return err
		}
	}
	if err := n.shutdownGracefully(); err != nil {
		return err
	}
	for r := range n.waiting {
		r.Error(r.req, wire.Unavailable, fmt.Sprintf("node %s is shutting down; retry (with the same request id) on another node", n.ID))
	}
	return nil
}

func (n *Node) rebuildPoller() {
	n.poller = &zmq.Poller{}
	for _, e := range n.entries {
		n.poller.Add(e.sock, zmq.PollIn)
	}
	n.dirty = false
}

func (n *Node) turn() error {
	if n.dirty || n.poller == nil {
		n.rebuildPoller()
	}
	timeout := time.Until(n.nextTick)
	if timeout < 0 {
		timeout = 0
	}
	ready, err := n.poller.Poll(timeout)
	if err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	entries := append([]pollEntry(nil), n.entries...)
	for i, ev := range ready {
		if ev&zmq.PollIn != 0 && i < len(entries) {
			n.drain(entries[i])
		}
	}
	n.runSubmits()
	for _, f := range n.OnTurn {
		n.guard(f)
	}
	now := time.Now()
	if !now.Before(n.nextTick) {
		n.Core.Tick()
		for _, f := range n.OnTick {
			n.guard(func() { f(now) })
		}
		if err := n.compactor.Tick(); err != nil {
			return err
		}
		n.guard(func() { n.fetcher.Tick(now) })
		n.guard(func() { n.tickObservers(now) })
		n.nextTick = n.nextTick.Add(n.Cfg.Tick)
		if n.nextTick.Before(now) { // fell behind (a long fsync): no burst of ticks
			n.nextTick = now.Add(n.Cfg.Tick)
		}
	}
	n.Waiters.IssueReads(n.Core.ReadIndex)
	if err := n.processReady(); err != nil {
		return err
	}
	n.syncMembership()
	n.guard(n.Batcher.Flush)
	if n.Waiters.Expire(time.Now()) {
		n.Proposals.PassedOver(n.Core.AppliedIndex())
	}
	n.noteRoleChange()
	if err := n.Core.Err(); err != nil {
		return &FatalError{err}
	}
	return nil
}

func (n *Node) runSubmits() {
	n.submitMu.Lock()
	fns := n.submits
	n.submits = nil
	n.submitMu.Unlock()
	for _, f := range fns {
		n.guard(f)
	}
}

// guard runs f; a panic costs that one call (logged), never the node.
func (n *Node) guard(f func()) {
	defer func() {
		if r := recover(); r != nil {
			n.Log.Log("ERROR", "zmqnode.node", "internal error: %v", r)
		}
	}()
	f()
}

func (n *Node) drain(e pollEntry) {
	if e.onReadable != nil {
		n.guard(e.onReadable)
		return
	}
	for i := 0; i < Batch; i++ {
		frames, err := e.sock.Recv(zmq.DontWait)
		if err != nil {
			return
		}
		e.handler(frames)
	}
}

func (n *Node) onRaft(m *raft.Message) {
	if m == nil {
		return
	}
	if err := n.Core.Step(*m); err != nil {
		// An invariant broken: Core.Err reports it at the end of the turn.
		n.Log.Log("CRITICAL", "zmqnode.node", "raft: %v", err)
	}
}

func (n *Node) onPeerDisconnected(peer string) {
	if peer != n.Core.LeaderID() {
		return
	}
	n.Log.Log("WARNING", "zmqnode.node", "lost the connection to leader %s (its process stopped?); electing a new one "+
		"without waiting for the election timeout", peer)
	n.Core.PeerUnreachable(peer)
}

func (n *Node) processReady() error {
	for n.Core.HasReady() {
		rd := n.Core.Ready()
		if err := n.storage.Persist(toStorageReady(rd)); err != nil {
			return &FatalError{err}
		}
		for _, m := range rd.Messages {
			n.links.Send(m)
		}
		if rd.Snapshot != nil {
			if err := n.Registry.Restore(rd.Snapshot.Data); err != nil {
				return &FatalError{fmt.Errorf("the leader's snapshot at %d: %w", rd.Snapshot.Index, err)}
			}
			n.Log.Log("INFO", "zmqnode.node", "installed the leader's snapshot through entry %d (%d models)",
				rd.Snapshot.Index, len(n.Registry.Models))
			n.events.Add("snapshot_installed", fmt.Sprintf("%s: snapshot at %d", n.ID, rd.Snapshot.Index))
			n.compactor.SyncUnsynced()
			n.fetchDamaged()
		}
		for _, e := range rd.Committed {
			if err := n.apply(e); err != nil {
				return &FatalError{err}
			}
		}
		if err := n.Core.Advance(rd); err != nil {
			return &FatalError{err}
		}
		applied := n.Core.AppliedIndex()
		for _, rs := range rd.ReadStates {
			n.Waiters.ReadIndexReady(rs.ReadCtx, rs.Index, applied)
		}
		n.Waiters.Applied(applied)
	}
	return nil
}

func (n *Node) apply(e raft.Entry) error {
	if e.Kind == raft.EntryCommand {
		rec, err := n.Registry.Apply(e.Index, e.Data)
		if err != nil {
			return err
		}
		if rec != nil {
			n.fetcher.Forget(rec.ModelID)
			n.Log.Log("INFO", "zmqnode.node", "stored model %s (%d bytes) at index %d", rec.ModelID, rec.Size, e.Index)
			n.events.Add("model_stored", fmt.Sprintf("model %s stored at index %d", rec.ModelID, e.Index))
		}
	}
	if waited, ok := n.Proposals.Applied(e.Index, e.Term); ok {
		n.Stats.ObserveCommit(waited)
	}
	return nil
}

func (n *Node) propose(data []byte, done func(bool)) bool {
	res := n.Core.Propose(data)
	if !res.Accepted {
		return false
	}
	n.Proposals.Add(res.Index, res.Term, int64(len(data)), done)
	return true
}

func (n *Node) proposeMembership(ch raft.ConfChange, base *uint64, done func(bool)) raft.ProposeResult {
	res := n.Core.ProposeMembership(ch, base)
	if res.Accepted {
		n.Proposals.Add(res.Index, res.Term, 0, done)
	}
	return res
}

func (n *Node) fetchDamaged() {
	for _, rec := range n.Registry.CheckFiles() {
		n.fetcher.Want(rec.ModelID, rec.SHA256, rec.Size)
	}
}

// syncMembership: links and allow-lists follow the committed and latest
// membership (node.py _sync_membership); cheap when nothing changed.
func (n *Node) syncMembership() {
	core := n.Core
	committedFlag := uint64(0)
	if core.MembershipIndex() <= core.CommitIndex() {
		committedFlag = 1
	}
	seen := [2]uint64{core.MembershipIndex(), committedFlag}
	if n.memSeenInit && seen == n.memSeen {
		return
	}
	first := !n.memSeenInit
	n.memSeenInit, n.memSeen = true, seen
	committed := core.MembershipAt(core.CommitIndex())
	latest := core.Membership()
	set := map[string]bool{}
	for _, m := range append(committed.Members(), latest.Members()...) {
		if m != n.ID {
			set[m] = true
		}
	}
	peers := make([]string, 0, len(set))
	for p := range set {
		peers = append(peers, p)
	}
	peers = sortedCopy(peers)
	added, removed := n.links.SetPeers(peers)
	if n.gate != nil && n.keys != nil {
		admitted := allowedKeys(committed, latest, n.keys.Public, n.keys.Members)
		n.gate.SetMembers(admitted)
		n.allowedNow = admitted
		if n.OnAllowed != nil {
			n.OnAllowed(admitted)
		}
		if err := storage.NewMemberKeys(n.Cfg.StorageDir).Write(admitted); err != nil {
			n.Log.Log("WARNING", "zmqnode.node", "cannot share the member keys with the trainer: %v", err)
		}
	}
	if (!first && (len(added) > 0 || len(removed) > 0)) || seen[0] > 0 {
		state := "not committed yet"
		if seen[1] == 1 {
			state = "committed"
		}
		n.Log.Log("INFO", "zmqnode.node", "membership at index %d (%s): %s", seen[0], state, describe(latest))
	}
	if len(added) > 0 || len(removed) > 0 {
		if n.ticks > 0 {
			n.events.Add("membership", fmt.Sprintf("%s: members now %s", n.ID, describe(latest)))
		}
	}
	if seen[1] == 1 && !committed.Contains(n.ID) {
		n.Log.Log("WARNING", "zmqnode.node", "node %s is no longer a member of the cluster (removed at index %d): "+
			"it serves nothing new; stop it", n.ID, core.MembershipIndex())
	}
}

// allowedKeys is members.py allowed_keys: the member keys ZAP admits.
func allowedKeys(committed, latest raft.Membership, own string, files []string) []string {
	creds := committed.Credentials()
	for k, v := range latest.Credentials() {
		creds[k] = v
	}
	set := map[string]bool{own: true}
	for _, v := range creds {
		set[v] = true
	}
	all := true
	for _, m := range append(committed.Members(), latest.Members()...) {
		if _, ok := creds[m]; !ok {
			all = false
		}
	}
	if !all {
		for _, f := range files {
			set[f] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		if k != "" {
			out = append(out, k)
		}
	}
	return sortedCopy(out)
}

func (n *Node) noteRoleChange() {
	role, leader := n.Core.Role(), n.Core.LeaderID()
	if role == n.lastRole && leader == n.lastLeader {
		return
	}
	term := n.Core.Term()
	switch {
	case role == raft.RoleLeader:
		n.Log.Log("INFO", "zmqnode.node", "became leader for term %d", term)
		n.events.Add("leader", fmt.Sprintf("%s became leader for term %d", n.ID, term))
	case leader != "" && leader != n.lastLeader:
		n.Log.Log("INFO", "zmqnode.node", "following leader %s in term %d", leader, term)
		n.events.Add("follower", fmt.Sprintf("%s follows %s in term %d", n.ID, leader, term))
	case leader == "" && n.lastLeader != "":
		n.Log.Log("INFO", "zmqnode.node", "lost contact with leader %s (term %d)", n.lastLeader, term)
		n.events.Add("leader_lost", fmt.Sprintf("%s lost contact with %s", n.ID, n.lastLeader))
	}
	leaderChange := leader != "" && leader != n.lastLeader
	campaign := (role == raft.RolePreCandidate || role == raft.RoleCandidate) && role != n.lastRole
	if n.OnRoleCounters != nil {
		n.OnRoleCounters(campaign, leaderChange)
	}
	if n.lastRole == raft.RoleLeader && role != raft.RoleLeader {
		n.traffic.Reset()
		for _, f := range n.OnLeadershipLost {
			n.guard(f)
		}
	}
	n.lastRole, n.lastLeader = role, leader
}

// Count counts an event that has no metric of its own (events_total{kind}).
func (n *Node) Count(kind string) { n.Stats.Count(kind) }

func (n *Node) shutdownGracefully() error {
	core := n.Core
	if !core.IsLeader() || len(core.Peers()) == 0 {
		return nil
	}
	target, best := "", uint64(0)
	for _, v := range core.Voters() {
		if v == n.ID {
			continue
		}
		if p, ok := core.Progress(v); ok && (target == "" || p.Match > best) {
			target, best = v, p.Match
		}
	}
	if target == "" {
		return nil
	}
	n.Log.Log("INFO", "zmqnode.node", "shutting down: transferring leadership to %s", target)
	core.TransferLeadership(target)
	deadline := time.Now().Add(n.Cfg.Tick * time.Duration(n.Cfg.ElectionTicks))
	for core.IsLeader() && time.Now().Before(deadline) {
		if err := n.turn(); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) closeAll() {
	n.Services.Close()
	n.Services = nil
	if n.compactor != nil {
		n.compactor.Wait()
	}
	if n.fetcher != nil {
		n.fetcher.Close()
	}
	if n.links != nil {
		n.links.Close()
	}
	for _, s := range []*zmq.Socket{n.client, n.wakeRecv} {
		if s != nil {
			s.SetInt(zmq.Linger, 0)
			s.Close()
		}
	}
	n.wakeMu.Lock()
	if n.wakeSend != nil {
		n.wakeSend.Close()
		n.wakeSend = nil
	}
	n.wakeMu.Unlock()
	if n.storage != nil {
		n.storage.Close()
	}
	if n.gate != nil {
		n.gate.Stop()
		n.gate = nil
	}
	if n.ctx != nil {
		n.ctx.Term()
		n.ctx = nil
	}
}
