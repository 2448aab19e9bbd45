package raft

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"
	"testing"
)

// Differential test against the Python core. testdata/gen_traces.py runs
// random schedules on Python RaftCores and records every input each core
// received, what it answered and its state afterwards; this test feeds the
// same inputs to Go cores and demands the same outputs, message for message.
// Both draw election timeouts from one splitmix64 stream consumed as Go's
// rand.Intn does, so ticks agree too.
//
// testdata/traces.jsonl.gz is a small committed sample; set RAFT_TRACES to a
// (plain or .gz) file made with gen_traces.py --seeds N for a longer run.

type splitmix struct{ state uint64 }

func (s *splitmix) Seed(seed int64) { s.state = uint64(seed) }
func (s *splitmix) Int63() int64 {
	s.state += 0x9E3779B97F4A7C15
	z := s.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return int64(z >> 1)
}

type tEntry struct {
	Index, Term uint64
	Kind, Data  string
}

type tSnap struct {
	Index, Term      uint64
	Data, Membership string
}

type tMsg struct {
	Type       string   `json:"type"`
	Src        string   `json:"src"`
	Dst        string   `json:"dst"`
	Term       uint64   `json:"term"`
	LogIndex   uint64   `json:"log_index"`
	LogTerm    uint64   `json:"log_term"`
	Entries    []tEntry `json:"entries"`
	Commit     uint64   `json:"commit"`
	Reject     bool     `json:"reject"`
	Index      uint64   `json:"index"`
	RejectHint uint64   `json:"reject_hint"`
	Context    uint64   `json:"context"`
	ReadCtx    string   `json:"read_ctx"`
	Force      bool     `json:"force"`
	Snapshot   *tSnap   `json:"snapshot"`
}

type tRecord struct {
	Op        string          `json:"op"`
	Node      string          `json:"node"`
	Seed      int             `json:"seed"`
	Peers     []string        `json:"peers"`
	RngSeed   uint64          `json:"rng_seed"`
	Config    []interface{}   `json:"config"`
	HardState []interface{}   `json:"hard_state"`
	Snapshot  *tSnap          `json:"snapshot"`
	Entries   []tEntry        `json:"entries"`
	Bootstrap *string         `json:"bootstrap"`
	Msg       *tMsg           `json:"msg"`
	Data      string          `json:"data"`
	Change    []string        `json:"change"`
	BaseIndex *uint64         `json:"base_index"`
	Ctx       string          `json:"ctx"`
	Target    string          `json:"target"`
	Peer      string          `json:"peer"`
	Index     uint64          `json:"index"`
	Mutations []string        `json:"mutations"`
	Out       json.RawMessage `json:"out"`
	State     json.RawMessage `json:"state"`
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fromTEntry(t *testing.T, e tEntry) Entry {
	k, err := ParseEntryKind(e.Kind)
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Index: e.Index, Term: e.Term, Kind: k, Data: unhex(t, e.Data)}
}

func fromTSnap(t *testing.T, s *tSnap) *Snapshot {
	if s == nil {
		return nil
	}
	return &Snapshot{Index: s.Index, Term: s.Term, Data: unhex(t, s.Data), Membership: unhex(t, s.Membership)}
}

func fromTMsg(t *testing.T, m tMsg) Message {
	ty, err := ParseMessageType(m.Type)
	if err != nil {
		t.Fatal(err)
	}
	out := Message{Type: ty, Src: m.Src, Dst: m.Dst, Term: m.Term, LogIndex: m.LogIndex, LogTerm: m.LogTerm,
		Commit: m.Commit, Reject: m.Reject, Index: m.Index, RejectHint: m.RejectHint, Context: m.Context,
		ReadCtx: m.ReadCtx, Force: m.Force, Snapshot: fromTSnap(t, m.Snapshot)}
	for _, e := range m.Entries {
		out.Entries = append(out.Entries, fromTEntry(t, e))
	}
	return out
}

func encEntry(e Entry) map[string]interface{} {
	return map[string]interface{}{"index": e.Index, "term": e.Term, "kind": e.Kind.String(), "data": hex.EncodeToString(e.Data)}
}

func encEntries(es []Entry) []interface{} {
	out := []interface{}{}
	for _, e := range es {
		out = append(out, encEntry(e))
	}
	return out
}

func encSnap(s *Snapshot) interface{} {
	if s == nil {
		return nil
	}
	return map[string]interface{}{"index": s.Index, "term": s.Term, "data": hex.EncodeToString(s.Data),
		"membership": hex.EncodeToString(s.Membership)}
}

func encMsg(m Message) map[string]interface{} {
	return map[string]interface{}{
		"type": m.Type.String(), "src": m.Src, "dst": m.Dst, "term": m.Term, "log_index": m.LogIndex,
		"log_term": m.LogTerm, "entries": encEntries(m.Entries), "commit": m.Commit, "reject": m.Reject,
		"index": m.Index, "reject_hint": m.RejectHint, "context": m.Context, "read_ctx": m.ReadCtx,
		"force": m.Force, "snapshot": encSnap(m.Snapshot),
	}
}

func encReady(rd Ready) interface{} {
	var hs interface{}
	if rd.HardState != nil {
		hs = []interface{}{rd.HardState.Term, rd.HardState.Vote}
	}
	msgs := []interface{}{}
	for _, m := range rd.Messages {
		msgs = append(msgs, encMsg(m))
	}
	reads := []interface{}{}
	for _, r := range rd.ReadStates {
		reads = append(reads, []interface{}{r.ReadCtx, r.Index})
	}
	return map[string]interface{}{"hard_state": hs, "entries": encEntries(rd.Entries), "snapshot": encSnap(rd.Snapshot),
		"messages": msgs, "committed": encEntries(rd.Committed), "read_states": reads}
}

func encResult(r ProposeResult) interface{} {
	return map[string]interface{}{"accepted": r.Accepted, "index": r.Index, "term": r.Term,
		"leader_hint": r.LeaderHint, "reason": r.Reason, "refusal": r.Refusal.String()}
}

func encState(c *Core) interface{} {
	prog := map[string]interface{}{}
	for _, p := range c.progressOrder {
		pr := c.progress[p]
		prog[p] = []interface{}{pr.match, pr.next, pr.state.String(), len(pr.inflight), pr.recentActive, pr.readAck}
	}
	return map[string]interface{}{
		"role": c.role.String(), "term": c.term, "vote": c.vote, "leader": c.leaderID,
		"commit": c.log.committed, "applied": c.log.applied, "last": c.log.lastIndex(), "stable": c.log.stable,
		"confirmed": c.confirmedIndex, "membership_index": c.membershipIndex,
		"membership": hex.EncodeToString(c.membership.Encode()), "elapsed": c.electionElapsed,
		"timeout": c.randomizedTimeout, "transfer": c.transferTarget, "progress": prog,
	}
}

// canon renders v as canonical JSON (sorted keys, numbers as float64).
func canon(t *testing.T, v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x interface{}
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

func openTraces(t *testing.T) io.ReadCloser {
	path := os.Getenv("RAFT_TRACES")
	if path == "" {
		path = "testdata/traces.jsonl.gz"
	}
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no traces: %v", err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return f
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return struct {
		io.Reader
		io.Closer
	}{z, f}
}

func TestReplayPythonTraces(t *testing.T) {
	r := openTraces(t)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	cores := map[string]*Core{}
	readies := map[string]Ready{}
	schedule, ops := -1, 0
	for line := 1; sc.Scan(); line++ {
		var rec tRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		where := fmt.Sprintf("line %d (schedule %d, %s %s)", line, schedule, rec.Node, rec.Op)
		c := cores[rec.Node]
		var out interface{}
		var err error
		switch rec.Op {
		case "schedule":
			schedule = rec.Seed
			cores = map[string]*Core{}
			continue
		case "new":
			cfg := Config{
				ElectionTicks: int(rec.Config[0].(float64)), HeartbeatTicks: int(rec.Config[1].(float64)),
				PreVote: rec.Config[2].(bool), CheckQuorum: rec.Config[3].(bool),
				MaxMsgBytes: int(rec.Config[4].(float64)), MaxInflight: int(rec.Config[5].(float64)),
				PromoteMaxLag: uint64(rec.Config[6].(float64)),
			}
			opts := Options{HardState: &HardState{Term: uint64(rec.HardState[0].(float64)), Vote: rec.HardState[1].(string)},
				Snapshot: fromTSnap(t, rec.Snapshot), Mutations: map[string]bool{}}
			for _, name := range rec.Mutations {
				opts.Mutations[name] = true
			}
			for _, e := range rec.Entries {
				opts.Entries = append(opts.Entries, fromTEntry(t, e))
			}
			if rec.Bootstrap != nil {
				m, err := DecodeMembership(unhex(t, *rec.Bootstrap))
				if err != nil {
					t.Fatal(where, err)
				}
				opts.Bootstrap = &m
			}
			src := &splitmix{state: rec.RngSeed}
			nc, err := NewCore(rec.Node, rec.Peers, cfg, rand.New(src), opts)
			if err != nil {
				t.Fatal(where, err)
			}
			cores[rec.Node] = nc
			continue
		case "check":
		case "tick":
			c.Tick()
		case "step":
			err = c.Step(fromTMsg(t, *rec.Msg))
		case "propose":
			out = encResult(c.Propose(unhex(t, rec.Data)))
		case "propose_membership":
			ty, perr := ParseChangeType(rec.Change[0])
			if perr != nil {
				t.Fatal(where, perr)
			}
			out = encResult(c.ProposeMembership(ConfChange{Type: ty, Node: rec.Change[1], Credential: rec.Change[2]}, rec.BaseIndex))
		case "read_index":
			out = c.ReadIndex(rec.Ctx)
		case "transfer":
			c.TransferLeadership(rec.Target)
		case "campaign":
			c.Campaign()
		case "unreachable":
			c.PeerUnreachable(rec.Peer)
		case "compact":
			err = c.Compact(rec.Index, unhex(t, rec.Data))
		case "has_ready":
			out = c.HasReady()
		case "ready":
			rd := c.Ready()
			readies[rec.Node] = rd
			out = encReady(rd)
		case "advance":
			err = c.Advance(readies[rec.Node])
		default:
			t.Fatalf("%s: unknown op", where)
		}
		ops++
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		var want interface{}
		if err := json.Unmarshal(rec.Out, &want); err != nil {
			t.Fatal(where, err)
		}
		if g, w := canon(t, out), canon(t, want); g != w {
			t.Fatalf("%s: output differs\n  go: %s\n  py: %s", where, g, w)
		}
		if len(rec.State) == 0 {
			continue
		}
		var wantState interface{}
		_ = json.Unmarshal(rec.State, &wantState)
		if g, w := canon(t, encState(c)), canon(t, wantState); g != w {
			t.Fatalf("%s: state differs\n  go: %s\n  py: %s", where, g, w)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d operations replayed identically", ops)
}
