package storage

// These mirror zmqnode/raft/messages.py and go/raft's types of the same
// names and fields, so that converting is a plain field copy (see
// SPEC_NOTES.md, "Mapping to go/raft"). storage does not import raft: the
// dependency goes the other way round in the node.

// EntryKind is what an entry carries. The values equal go/raft's EntryKind;
// the codes on disk (1 noop, 2 command, 3 config) are different and private
// to logfile.go.
type EntryKind int

const (
	// EntryCommand is the zero value, as Python's default kind.
	EntryCommand EntryKind = iota
	// EntryNoop is appended by every new leader.
	EntryNoop
	// EntryConfig carries the whole new membership, encoded.
	EntryConfig
)

// String returns Python's EntryKind value.
func (k EntryKind) String() string {
	switch k {
	case EntryCommand:
		return "command"
	case EntryNoop:
		return "noop"
	case EntryConfig:
		return "config"
	}
	return "unknown"
}

// Entry is one log entry; Data is opaque to storage.
type Entry struct {
	Index, Term uint64
	Kind        EntryKind
	Data        []byte
}

// HardState is the node's current term and vote ("" when it has not voted
// in Term).
type HardState struct {
	Term uint64
	Vote string
}

// Snapshot is state machine state covering every entry up to and including
// Index, and the membership as of Index (encoded; empty: the bootstrap one).
type Snapshot struct {
	Index, Term uint64
	Data        []byte
	Membership  []byte
}

// Ready is the part of a Raft Ready that storage persists (go/raft's Ready
// has these three fields with these names and types).
type Ready struct {
	HardState *HardState
	Entries   []Entry
	Snapshot  *Snapshot
}
