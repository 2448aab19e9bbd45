package simcore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"zmqnode/raft"
)

func TestAppendStringIsJSON(t *testing.T) {
	cases := []struct{ name, in string }{
		{"plain", "n1"},
		{"quotes and backslash", `say "hi" \ bye`},
		{"control characters", "a\nb\tc\x00d\x1f"},
		{"unicode", "nœud ノード"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var back string
			if err := json.Unmarshal(appendString(nil, tc.in), &back); err != nil {
				t.Fatal(err)
			}
			if back != tc.in {
				t.Fatalf("got %q, want %q", back, tc.in)
			}
		})
	}
	t.Run("invalid UTF-8 becomes U+FFFD", func(t *testing.T) {
		var back string
		if err := json.Unmarshal(appendString(nil, "a\xffb"), &back); err != nil {
			t.Fatal(err)
		}
		if back != "a\ufffdb" {
			t.Fatalf("got %q", back)
		}
	})
}

// encodeMessage writes m as a reply would (no log to refer to).
func encodeMessage(m *raft.Message) []byte {
	var e encoder
	e.message(m, nil, 0)
	return e.b
}

func TestMessageRoundTrip(t *testing.T) {
	snap := &raft.Snapshot{Index: 9, Term: 2, Data: []byte("1:c1\n2:c2"), Membership: []byte(`{"voters":["n1"]}`)}
	cases := []struct {
		name string
		m    raft.Message
	}{
		{"vote", raft.Message{Type: raft.MsgVote, Src: "n1", Dst: "n2", Term: 3, LogIndex: 7, LogTerm: 2, Force: true}},
		{"append with entries", raft.Message{Type: raft.MsgAppend, Src: "n1", Dst: "n3", Term: 4, LogIndex: 5, LogTerm: 3, Commit: 5,
			Entries: []raft.Entry{{Index: 6, Term: 4, Kind: raft.EntryNoop}, {Index: 7, Term: 4, Kind: raft.EntryCommand, Data: []byte("c\x00\xff")}}}},
		{"rejected append", raft.Message{Type: raft.MsgAppendResp, Src: "n3", Dst: "n1", Term: 4, Reject: true, Index: 5, RejectHint: 3, LogTerm: 2}},
		{"heartbeat broadcast", raft.Message{Type: raft.MsgHeartbeat, Src: "n1", Dst: raft.Broadcast, Term: 4, Commit: 7, Context: 12}},
		{"read index reply", raft.Message{Type: raft.MsgReadIndexResp, Src: "n1", Dst: "n2", Term: 4, ReadCtx: `r"1`, Index: 7}},
		{"snapshot", raft.Message{Type: raft.MsgSnapshot, Src: "n1", Dst: "n2", Term: 5, Snapshot: snap}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w wireMessage
			if err := json.Unmarshal(encodeMessage(&tc.m), &w); err != nil {
				t.Fatal(err)
			}
			back, err := w.message()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalize(back), normalize(tc.m)) {
				t.Fatalf("got %+v\nwant %+v", back, tc.m)
			}
		})
	}
}

// normalize makes nil and empty byte slices compare equal.
func normalize(m raft.Message) raft.Message {
	for i := range m.Entries {
		if len(m.Entries[i].Data) == 0 {
			m.Entries[i].Data = nil
		}
	}
	return m
}

func TestEntriesThatAreALogRangeAreSentAsARange(t *testing.T) {
	log := []raft.Entry{{Index: 11, Term: 2}, {Index: 12, Term: 3, Data: []byte("a")}, {Index: 13, Term: 3}}
	cases := []struct {
		name string
		list []raft.Entry
		want string
	}{
		{"a range", log[1:], `{"entries_log":[12,13]}`},
		{"not in the log (other data)", []raft.Entry{{Index: 12, Term: 3, Data: []byte("b")}},
			`{"entries":[[12,3,"command","Yg=="]]}`},
		{"beyond the log", []raft.Entry{{Index: 14, Term: 3}}, `{"entries":[[14,3,"command",""]]}`},
		{"in the snapshot", []raft.Entry{{Index: 10, Term: 2}}, `{"entries":[[10,2,"command",""]]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e encoder
			e.obj()
			e.entriesField("entries", tc.list, log, 10)
			e.end()
			if string(e.b) != tc.want {
				t.Fatalf("got %s, want %s", e.b, tc.want)
			}
		})
	}
}

// session drives Serve over pipes, one request at a time.
type session struct {
	t    *testing.T
	w    io.WriteCloser
	r    *bufio.Reader
	done chan error
}

func startSession(t *testing.T) *session {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, w: inW, r: bufio.NewReader(outR), done: make(chan error, 1)}
	go func() { s.done <- Serve(inR, outW); outW.Close() }()
	t.Cleanup(func() {
		inW.Close()
		if err := <-s.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func (s *session) call(req string) map[string]interface{} {
	s.t.Helper()
	if _, err := io.WriteString(s.w, req+"\n"); err != nil {
		s.t.Fatal(err)
	}
	line, err := s.r.ReadBytes('\n')
	if err != nil {
		s.t.Fatal(err)
	}
	var reply map[string]interface{}
	if err := json.Unmarshal(line, &reply); err != nil {
		s.t.Fatalf("reply %q: %v", line, err)
	}
	return reply
}

func (s *session) ok(req string) map[string]interface{} {
	s.t.Helper()
	reply := s.call(req)
	if reply["err"] != nil {
		s.t.Fatalf("%s: %v", req, reply["err"])
	}
	return reply
}

func errKind(reply map[string]interface{}) string {
	if e, ok := reply["err"].(map[string]interface{}); ok {
		return e["kind"].(string)
	}
	return ""
}

func TestASingleNodeCoreLeadsCommitsAndApplies(t *testing.T) {
	s := startSession(t)
	info := s.ok(`{"op":"info"}`)["r"].(map[string]interface{})
	if info["protocol"].(float64) != Protocol {
		t.Fatalf("info: %v", info)
	}
	reply := s.ok(`{"op":"new","id":"n1","peers":[],"config":{"election_ticks":4,"heartbeat_ticks":1},"seed":7}`)
	h := reply["h"].(float64)
	if reply["v"].(map[string]interface{})["role"] != "follower" || reply["m"] == nil || reply["log"] == nil {
		t.Fatalf("new: %v", reply)
	}
	// Tick (asking for the Readies each time) until it leads: its noop is
	// then a Ready to write, handed out and waiting for advance.
	var readies []interface{}
	for i := 0; i < 20; i++ {
		reply = s.ok(`{"op":"tick","h":1,"rd":true}`)
		if rs, ok := reply["readies"].([]interface{}); ok {
			readies = append(readies, rs...)
		}
		if reply["v"].(map[string]interface{})["role"] == "leader" {
			break
		}
	}
	if h != 1 || reply["v"].(map[string]interface{})["role"] != "leader" {
		t.Fatalf("no leader after 20 ticks: %v", reply)
	}
	last := readies[len(readies)-1].(map[string]interface{})
	if last["hs"] == nil || last["entries_log"] == nil {
		t.Fatalf("the leader's first Ready should write its term and noop: %v", last)
	}
	if got := reply["log"].(map[string]interface{})["ents"].([]interface{}); len(got) != 1 {
		t.Fatalf("the mirror should get the noop: %v", reply["log"])
	}
	// Written: advance; the commit follows, and applying it is the next Ready.
	reply = s.ok(`{"op":"advance","h":1,"rd":true}`)
	v := reply["v"].(map[string]interface{})
	if v["commit"].(float64) != 1 {
		t.Fatalf("after advance: %v", reply)
	}
	r := s.ok(`{"op":"propose","h":1,"data":"YzE="}`)["r"].(map[string]interface{})
	if r["accepted"] != true || r["index"].(float64) != 2 {
		t.Fatalf("propose: %v", r)
	}
	if got := s.ok(`{"op":"term_at","h":1,"index":2}`)["r"]; got != v["term"] {
		t.Fatalf("term_at 2: %v, term %v", got, v["term"])
	}
	ents := s.ok(`{"op":"log_entries","h":1}`)["r"].([]interface{})
	if len(ents) != 2 || !strings.Contains(string(mustJSON(ents[1])), `"YzE="`) {
		t.Fatalf("log_entries: %v", ents)
	}
	if m := s.ok(`{"op":"membership_at","h":1,"index":2}`)["r"].(string); m == "" {
		t.Fatal("membership_at: empty")
	}
	s.ok(`{"op":"drop","h":1}`)
	if k := errKind(s.call(`{"op":"tick","h":1}`)); k != "protocol" {
		t.Fatalf("a dropped handle: kind %q", k)
	}
}

func TestBadRequestsGetErrorRepliesAndTheSessionGoesOn(t *testing.T) {
	s := startSession(t)
	cases := []struct{ name, req, kind string }{
		{"not JSON", `{"op":`, "protocol"},
		{"unknown op", `{"op":"fly"}`, "protocol"},
		{"unknown handle", `{"op":"tick","h":42}`, "protocol"},
		{"unknown mutation", `{"op":"new","id":"n1","mutations":["no_such_bug"]}`, "value"},
		{"peers hold the node itself", `{"op":"new","id":"n1","peers":["n1"]}`, "value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if k := errKind(s.call(tc.req)); k != tc.kind {
				t.Fatalf("kind %q, want %q", k, tc.kind)
			}
		})
	}
	t.Run("advance without a Ready", func(t *testing.T) {
		h := s.ok(`{"op":"new","id":"n1","peers":["n2"]}`)["h"].(float64)
		req, _ := json.Marshal(map[string]interface{}{"op": "advance", "h": h})
		if k := errKind(s.call(string(req))); k != "protocol" {
			t.Fatalf("kind %q", k)
		}
	})
	t.Run("compact beyond applied is the core's invariant", func(t *testing.T) {
		h := s.ok(`{"op":"new","id":"n1","peers":["n2"]}`)["h"].(float64)
		req, _ := json.Marshal(map[string]interface{}{"op": "compact", "h": h, "index": 5})
		reply := s.call(string(req))
		if k := errKind(reply); k != "invariant" {
			t.Fatalf("kind %q: %v", k, reply)
		}
	})
}

func mustJSON(v interface{}) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.TrimSpace(b)
}
