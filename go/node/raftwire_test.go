package node

import (
	"reflect"
	"testing"

	"zmqnode/raft"
	"zmqnode/wire"
)

// Every message type and entry kind survives core -> wire frames -> core.
func TestRaftMessagesRoundTripThroughTheWire(t *testing.T) {
	snap := &raft.Snapshot{Index: 7, Term: 3, Data: []byte("[]"), Membership: []byte(`{"credentials":{},"learners":[],"voters":["a:1"]}`)}
	for _, typ := range []raft.MessageType{raft.MsgPreVote, raft.MsgPreVoteResp, raft.MsgVote, raft.MsgVoteResp,
		raft.MsgAppend, raft.MsgAppendResp, raft.MsgHeartbeat, raft.MsgHeartbeatResp, raft.MsgSnapshot,
		raft.MsgTimeoutNow, raft.MsgReadIndex, raft.MsgReadIndexResp} {
		t.Run(typ.String(), func(t *testing.T) {
			m := raft.Message{Type: typ, Src: "127.0.0.1:9000", Dst: "127.0.0.1:9001", Term: 5, LogIndex: 4,
				LogTerm: 2, Commit: 3, Reject: true, Index: 9, RejectHint: 1, Context: 42, ReadCtx: "n/1", Force: true}
			switch typ {
			case raft.MsgAppend:
				m.Entries = []raft.Entry{{Index: 5, Term: 5, Kind: raft.EntryNoop, Data: []byte{}},
					{Index: 6, Term: 5, Kind: raft.EntryCommand, Data: []byte("cmd")},
					{Index: 7, Term: 5, Kind: raft.EntryConfig, Data: []byte("{}")}}
			case raft.MsgSnapshot:
				m.Snapshot = snap
			}
			frames, err := wire.EncodeRaft(toWire(m))
			if err != nil {
				t.Fatal(err)
			}
			w, err := wire.DecodeRaft(frames, 0)
			if err != nil {
				t.Fatal(err)
			}
			if w.Type.WireType() != "raft."+typ.String() {
				t.Fatalf("wire type %s", w.Type.WireType())
			}
			back, err := fromWire(w)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, m) {
				t.Fatalf("round trip\n got %+v\nwant %+v", back, m)
			}
		})
	}
}

func TestFromWireRefusesAnUnknownType(t *testing.T) {
	if _, err := fromWire(&wire.RaftMessage{Type: "frob"}); err == nil {
		t.Fatal("an unknown type must be refused")
	}
}

func TestReadyMapsToStorage(t *testing.T) {
	hs := raft.HardState{Term: 3, Vote: "a"}
	rd := raft.Ready{HardState: &hs, Entries: []raft.Entry{{Index: 1, Term: 3, Kind: raft.EntryConfig, Data: []byte("x")}},
		Snapshot: &raft.Snapshot{Index: 0, Term: 0}}
	s := toStorageReady(rd)
	if s.HardState.Term != 3 || s.HardState.Vote != "a" || len(s.Entries) != 1 || s.Snapshot == nil {
		t.Fatalf("%+v", s)
	}
	back := fromStorageEntries(s.Entries)
	if !reflect.DeepEqual(back, rd.Entries) {
		t.Fatalf("entries %+v", back)
	}
}
