package raft

import "fmt"

// Values that enter and leave the core. The core never shares mutable state
// with its caller: slices handed out in a Ready are copies, or the core lets
// go of them. Node ids are plain strings (in a real cluster the peer's client
// address, "127.0.0.1:9000"; in the simulator "n1").

// Broadcast as a message's Dst means "every peer": the leader's heartbeat,
// which the node sends once over its PUB socket and the simulator delivers
// to each peer independently (each copy may be lost).
const Broadcast = "*"

// NoNode is the empty node id: no vote, no known leader.
const NoNode = ""

// Role is a member's role (Raft §5.1, plus pre-candidate: thesis §9.6).
type Role int

const (
	RoleFollower Role = iota
	RolePreCandidate
	RoleCandidate
	RoleLeader
)

var roleNames = [...]string{"follower", "pre_candidate", "candidate", "leader"}

// String returns Python's Role value.
func (r Role) String() string {
	if r >= 0 && int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole is the inverse of Role.String.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if n == s {
			return Role(i), nil
		}
	}
	return 0, fmt.Errorf("raft: unknown role %q", s)
}

// MessageType names every message two cores exchange (docs/PROTOCOL.md §8
// puts them on the wire).
type MessageType int

const (
	// Elections (Raft §5.2; pre-vote from Ongaro's thesis §9.6).
	MsgPreVote MessageType = iota
	MsgPreVoteResp
	MsgVote
	MsgVoteResp
	// Replication (§5.3); the reply also answers MsgSnapshot.
	MsgAppend
	MsgAppendResp
	// Leader liveness over PUB/SUB; the reply comes back on the RPC path and
	// is what check-quorum and ReadIndex count.
	MsgHeartbeat
	MsgHeartbeatResp
	// InstallSnapshot (§7).
	MsgSnapshot
	// Leadership transfer (thesis §3.10): "start an election now".
	MsgTimeoutNow
	// A follower asks the leader for a read index (thesis §6.4).
	MsgReadIndex
	MsgReadIndexResp
)

var messageTypeNames = [...]string{
	"pre_vote", "pre_vote_resp", "vote", "vote_resp", "append", "append_resp",
	"heartbeat", "heartbeat_resp", "snapshot", "timeout_now", "read_index", "read_index_resp",
}

// String returns Python's MessageType value ("pre_vote", "append_resp", ...).
func (t MessageType) String() string {
	if t >= 0 && int(t) < len(messageTypeNames) {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", int(t))
}

// ParseMessageType is the inverse of MessageType.String.
func ParseMessageType(s string) (MessageType, error) {
	for i, n := range messageTypeNames {
		if n == s {
			return MessageType(i), nil
		}
	}
	return 0, fmt.Errorf("raft: unknown message type %q", s)
}

// EntryKind says what an entry carries: a state-machine command, nothing, or
// a new membership.
type EntryKind int

const (
	// EntryCommand is the zero value, as Python's default kind.
	EntryCommand EntryKind = iota
	// EntryNoop is appended by every new leader (§8).
	EntryNoop
	// EntryConfig carries the whole new Membership, encoded (Membership.Encode).
	EntryConfig
)

// String returns Python's EntryKind value.
func (k EntryKind) String() string {
	switch k {
	case EntryNoop:
		return "noop"
	case EntryCommand:
		return "command"
	case EntryConfig:
		return "config"
	}
	return fmt.Sprintf("EntryKind(%d)", int(k))
}

// ParseEntryKind is the inverse of EntryKind.String.
func ParseEntryKind(s string) (EntryKind, error) {
	switch s {
	case "noop":
		return EntryNoop, nil
	case "command":
		return EntryCommand, nil
	case "config":
		return EntryConfig, nil
	}
	return 0, fmt.Errorf("raft: unknown entry kind %q", s)
}

// Entry is one log entry; Data is opaque to Raft (for the node: a registry
// command).
type Entry struct {
	Index, Term uint64
	Kind        EntryKind
	Data        []byte
}

// HardState is what must survive a crash before any message that depends on
// it leaves.
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

// Message is one Raft message. Fields that a type does not use keep their
// zero values.
//
//   - PreVote / Vote: LogIndex/LogTerm describe the candidate's last entry;
//     Force bypasses the leader lease (leadership transfer).
//   - *Resp to votes: Reject is false when granted.
//   - Append: LogIndex/LogTerm are the previous entry (prevLogIndex,
//     prevLogTerm), Entries the new ones, Commit the leader's commit.
//   - AppendResp: on success Index is the follower's last index known to
//     match; on rejection Index is the rejected prevLogIndex and
//     RejectHint/LogTerm point at where the logs may agree.
//   - Heartbeat: Commit is a hint, Context a sequence number that the
//     HeartbeatResp echoes (ReadIndex counts echoes of a fresh number).
//   - Snapshot: Snapshot.
//   - ReadIndex / ReadIndexResp: ReadCtx names the request, Index is the read
//     index in the reply; Reject when the leader cannot serve.
type Message struct {
	Type                    MessageType
	Src, Dst                string
	Term, LogIndex, LogTerm uint64
	Entries                 []Entry
	Commit                  uint64
	Reject                  bool
	Index, RejectHint       uint64
	Context                 uint64
	ReadCtx                 string
	Force                   bool
	Snapshot                *Snapshot
}

// ReadState says a linearizable read may be served once applied >= Index.
type ReadState struct {
	ReadCtx string
	Index   uint64
}

// Refusal says why a proposal was refused, for callers that act on it
// (ProposeResult.Reason is for people).
type Refusal int

const (
	RefusalNone         Refusal = iota // accepted (Python's None)
	RefusalNotLeader                   // ask LeaderHint
	RefusalTransferring                // leadership transfer in progress: retry soon
	RefusalRetry                       // a membership change must wait (own-term commit, one in flight, lag)
	RefusalConflict                    // the membership changed since the given base index
	RefusalInvalid                     // the change does not apply to this membership
)

var refusalNames = [...]string{"", "not_leader", "transferring", "retry", "conflict", "invalid"}

// String returns Python's Refusal value ("" for none).
func (r Refusal) String() string {
	if r >= 0 && int(r) < len(refusalNames) {
		return refusalNames[r]
	}
	return fmt.Sprintf("Refusal(%d)", int(r))
}

// ParseRefusal is the inverse of Refusal.String.
func ParseRefusal(s string) (Refusal, error) {
	for i, n := range refusalNames {
		if n == s {
			return Refusal(i), nil
		}
	}
	return 0, fmt.Errorf("raft: unknown refusal %q", s)
}

// ProposeResult is the answer to Propose: where the entry will sit, or who
// leads.
type ProposeResult struct {
	Accepted    bool
	Index, Term uint64
	LeaderHint  string
	Reason      string
	Refusal     Refusal
}

// Ready is what the caller must do next, in this order:
//
//  1. persist HardState (if any), then Snapshot (if any: it replaces the
//     state machine and the whole log), then Entries (truncate the log after
//     Entries[0].Index - 1, then append), and make them durable. The hard
//     state goes first so that a crash never leaves a snapshot or entries
//     from a term the node has not saved;
//  2. send Messages — only now, because they may promise what step 1 wrote;
//  3. install Snapshot into the state machine, then apply Committed in
//     order, and serve each ReadStates entry once applied reaches it;
//  4. call Advance(ready).
type Ready struct {
	HardState  *HardState
	Entries    []Entry
	Snapshot   *Snapshot
	Messages   []Message
	Committed  []Entry
	ReadStates []ReadState
}

// IsEmpty reports whether there is nothing to do.
func (rd Ready) IsEmpty() bool {
	return rd.HardState == nil && len(rd.Entries) == 0 && rd.Snapshot == nil &&
		len(rd.Messages) == 0 && len(rd.Committed) == 0 && len(rd.ReadStates) == 0
}

// InvariantError is Python's LogInvariantError: the core was asked to break
// a rule that Raft's safety depends on. A node must stop then.
type InvariantError struct{ Msg string }

func (e *InvariantError) Error() string { return "raft: log invariant: " + e.Msg }

func invariant(format string, args ...interface{}) {
	panic(&InvariantError{Msg: fmt.Sprintf(format, args...)})
}
