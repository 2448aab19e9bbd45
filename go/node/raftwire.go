package node

import (
	"fmt"

	"zmqnode/raft"
	"zmqnode/storage"
	"zmqnode/wire"
)

// toWire maps a core's message to the wire codec's (PROTOCOL.md §8.1):
// go/raft's MessageType and EntryKind are ints whose String() is the
// Python enum value, which is exactly the wire's string.
func toWire(m raft.Message) *wire.RaftMessage {
	w := &wire.RaftMessage{
		Type: wire.MessageType(m.Type.String()), Src: m.Src, Dst: m.Dst,
		Term: m.Term, LogIndex: m.LogIndex, LogTerm: m.LogTerm, Commit: m.Commit,
		Reject: m.Reject, Index: m.Index, RejectHint: m.RejectHint, Context: m.Context,
		ReadCtx: m.ReadCtx, Force: m.Force,
	}
	if len(m.Entries) > 0 {
		w.Entries = make([]wire.Entry, len(m.Entries))
		for i, e := range m.Entries {
			w.Entries[i] = wire.Entry{Index: e.Index, Term: e.Term, Kind: wire.EntryKind(e.Kind.String()), Data: e.Data}
		}
	}
	if m.Snapshot != nil {
		s := m.Snapshot
		w.Snapshot = &wire.Snapshot{Index: s.Index, Term: s.Term, Data: s.Data, Membership: s.Membership}
	}
	return w
}

// fromWire is the inverse of toWire; an unknown type or kind is an error
// (the codec already refuses them, so this is a bug if it happens).
func fromWire(w *wire.RaftMessage) (raft.Message, error) {
	t, err := raft.ParseMessageType(string(w.Type))
	if err != nil {
		return raft.Message{}, fmt.Errorf("raft message type %q: %w", w.Type, err)
	}
	m := raft.Message{
		Type: t, Src: w.Src, Dst: w.Dst,
		Term: w.Term, LogIndex: w.LogIndex, LogTerm: w.LogTerm, Commit: w.Commit,
		Reject: w.Reject, Index: w.Index, RejectHint: w.RejectHint, Context: w.Context,
		ReadCtx: w.ReadCtx, Force: w.Force,
	}
	if len(w.Entries) > 0 {
		m.Entries = make([]raft.Entry, len(w.Entries))
		for i, e := range w.Entries {
			k, err := raft.ParseEntryKind(string(e.Kind))
			if err != nil {
				return raft.Message{}, fmt.Errorf("entry kind %q: %w", e.Kind, err)
			}
			m.Entries[i] = raft.Entry{Index: e.Index, Term: e.Term, Kind: k, Data: e.Data}
		}
	}
	if w.Snapshot != nil {
		s := w.Snapshot
		m.Snapshot = &raft.Snapshot{Index: s.Index, Term: s.Term, Data: s.Data, Membership: s.Membership}
	}
	return m, nil
}

// Storage and the core mirror each other's types (storage SPEC_NOTES A).

func toStorageReady(rd raft.Ready) storage.Ready {
	out := storage.Ready{}
	if rd.HardState != nil {
		hs := storage.HardState(*rd.HardState)
		out.HardState = &hs
	}
	if rd.Snapshot != nil {
		s := storage.Snapshot(*rd.Snapshot)
		out.Snapshot = &s
	}
	if len(rd.Entries) > 0 {
		out.Entries = make([]storage.Entry, len(rd.Entries))
		for i, e := range rd.Entries {
			out.Entries[i] = storage.Entry{Index: e.Index, Term: e.Term, Kind: storage.EntryKind(e.Kind), Data: e.Data}
		}
	}
	return out
}

func fromStorageEntries(es []storage.Entry) []raft.Entry {
	out := make([]raft.Entry, len(es))
	for i, e := range es {
		out[i] = raft.Entry{Index: e.Index, Term: e.Term, Kind: raft.EntryKind(e.Kind), Data: e.Data}
	}
	return out
}
