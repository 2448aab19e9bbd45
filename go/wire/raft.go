package wire

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Raft messages on the wire (PROTOCOL.md §8, raft_codec.py).
//
// RaftMessage mirrors zmqnode.raft.messages.Message field for field. It is
// local to this package on purpose: the Go Raft core (go/raft) defines its
// own Message, and the node maps between the two.

// RaftTypePrefix prefixes a Raft message's type on the wire ("raft.append").
const RaftTypePrefix = "raft."

// HeartbeatTopic is the PUB/SUB topic frame in front of a heartbeat body.
const HeartbeatTopic = "raft"

// Broadcast is a heartbeat's dst.
const Broadcast = "*"

// MaxRaftInt is the largest integer a Raft header field may hold (2^63−1):
// the log and storage formats store them unsigned, JSON peers as int64.
const MaxRaftInt = math.MaxInt64

// MessageType is a Raft message kind, as the Python MessageType values.
type MessageType string

// The Raft message types (§8.1).
const (
	MsgPreVote       MessageType = "pre_vote"
	MsgPreVoteResp   MessageType = "pre_vote_resp"
	MsgVote          MessageType = "vote"
	MsgVoteResp      MessageType = "vote_resp"
	MsgAppend        MessageType = "append"
	MsgAppendResp    MessageType = "append_resp"
	MsgHeartbeat     MessageType = "heartbeat"
	MsgHeartbeatResp MessageType = "heartbeat_resp"
	MsgSnapshot      MessageType = "snapshot"
	MsgTimeoutNow    MessageType = "timeout_now"
	MsgReadIndex     MessageType = "read_index"
	MsgReadIndexResp MessageType = "read_index_resp"
)

// MessageTypes lists every Raft message type.
var MessageTypes = []MessageType{MsgPreVote, MsgPreVoteResp, MsgVote, MsgVoteResp, MsgAppend,
	MsgAppendResp, MsgHeartbeat, MsgHeartbeatResp, MsgSnapshot, MsgTimeoutNow, MsgReadIndex,
	MsgReadIndexResp}

// WireType is the header's type for t ("raft." + t).
func (t MessageType) WireType() string { return RaftTypePrefix + string(t) }

// EntryKind is what a log entry carries.
type EntryKind string

// Entry kinds (§8.1).
const (
	EntryNoop    EntryKind = "noop"
	EntryCommand EntryKind = "command"
	EntryConfig  EntryKind = "config"
)

// Entry is one log entry; Data travels as its own blob.
type Entry struct {
	Index uint64
	Term  uint64
	Kind  EntryKind
	Data  []byte
}

// Snapshot is InstallSnapshot's payload: Data travels as the last blob,
// Membership (JSON text, empty: the command line's members) in the header.
type Snapshot struct {
	Index      uint64
	Term       uint64
	Data       []byte
	Membership []byte
}

// RaftMessage is one Raft message (Python's Message; see its docstring for
// which fields each type uses). Integers are 0..MaxRaftInt.
type RaftMessage struct {
	Type       MessageType
	Src, Dst   string
	Term       uint64
	LogIndex   uint64
	LogTerm    uint64
	Entries    []Entry
	Commit     uint64
	Reject     bool
	Index      uint64
	RejectHint uint64
	Context    uint64
	ReadCtx    string
	Force      bool
	Snapshot   *Snapshot
}

// IsRaftType reports whether a header's type names a Raft message.
func IsRaftType(wireType string) bool { return strings.HasPrefix(wireType, RaftTypePrefix) }

// checkStructure holds the invariants every Raft message on the wire
// satisfies (Raft §5.3, §7); both sides check them.
func checkStructure(m *RaftMessage) string {
	if len(m.Entries) > 0 && m.Type != MsgAppend {
		return fmt.Sprintf("%s message carries %d entries; only append may", m.Type, len(m.Entries))
	}
	if (m.Snapshot != nil) != (m.Type == MsgSnapshot) {
		if m.Type == MsgSnapshot {
			return "snapshot message without a snapshot"
		}
		return fmt.Sprintf("%s message carries a snapshot; only snapshot may", m.Type)
	}
	// AppendEntries carries entries prevLogIndex+1, prevLogIndex+2, ... (§5.3).
	for i, e := range m.Entries {
		if e.Index != m.LogIndex+uint64(i)+1 {
			return fmt.Sprintf("append entries must be consecutive after log_index %d: "+
				"entry %d has index %d, expected %d", m.LogIndex, i, e.Index, m.LogIndex+uint64(i)+1)
		}
	}
	return ""
}

func knownType(t MessageType) bool {
	for _, k := range MessageTypes {
		if k == t {
			return true
		}
	}
	return false
}

func knownKind(k EntryKind) bool {
	return k == EntryNoop || k == EntryCommand || k == EntryConfig
}

// EncodeRaft returns m's body frames (no envelope or topic). The header's
// keys are in the Python node's order, so the bytes are identical. A
// message DecodeRaft would refuse is an error here (a bug in the sender).
func EncodeRaft(m *RaftMessage) ([][]byte, error) {
	if !knownType(m.Type) {
		return nil, fmt.Errorf("wire: unknown raft message type %q", m.Type)
	}
	if why := checkStructure(m); why != "" {
		return nil, fmt.Errorf("wire: %s", why)
	}
	ints := []struct {
		name  string
		value uint64
	}{{"term", m.Term}, {"log_index", m.LogIndex}, {"log_term", m.LogTerm}, {"commit", m.Commit},
		{"index", m.Index}, {"reject_hint", m.RejectHint}, {"context", m.Context}}
	for _, f := range ints {
		if f.value > MaxRaftInt {
			return nil, fmt.Errorf("wire: %s must be an integer in 0..%d, got %d", f.name, uint64(MaxRaftInt), f.value)
		}
	}
	h := NewObject(Field{"type", m.Type.WireType()}, Field{"id", ""},
		Field{"src", m.Src}, Field{"dst", m.Dst}, Field{"read_ctx", m.ReadCtx})
	for _, f := range ints {
		h.Set(f.name, f.value)
	}
	h.Set("reject", m.Reject)
	h.Set("force", m.Force)
	entries := make([]*Object, len(m.Entries))
	blobs := make([][]byte, 0, len(m.Entries)+1)
	for i, e := range m.Entries {
		if e.Index > MaxRaftInt || e.Term > MaxRaftInt {
			return nil, fmt.Errorf("wire: entry %d: index and term must be in 0..%d", i, uint64(MaxRaftInt))
		}
		if !knownKind(e.Kind) {
			return nil, fmt.Errorf("wire: entry %d: unknown kind %q", i, e.Kind)
		}
		entries[i] = NewObject(Field{"index", e.Index}, Field{"term", e.Term}, Field{"kind", string(e.Kind)})
		blobs = append(blobs, nonNil(e.Data))
	}
	h.Set("entries", entries)
	if m.Snapshot == nil {
		h.Set("snapshot", nil)
	} else {
		s := m.Snapshot
		if s.Index > MaxRaftInt || s.Term > MaxRaftInt {
			return nil, fmt.Errorf("wire: snapshot index and term must be in 0..%d", uint64(MaxRaftInt))
		}
		if !utf8.Valid(s.Membership) {
			return nil, fmt.Errorf("wire: snapshot membership is not UTF-8 text")
		}
		h.Set("snapshot", NewObject(Field{"index", s.Index}, Field{"term", s.Term},
			Field{"membership", string(s.Membership)}))
		blobs = append(blobs, nonNil(s.Data))
	}
	return Encode(h, blobs)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// DecodeRaft parses a body made by EncodeRaft, all or nothing: Decode's
// errors (an empty id is allowed), UNKNOWN_TYPE for a type that is not a
// Raft message, BAD_REQUEST for a missing or mistyped field (true is not an
// integer, 0 is not a boolean), an integer outside 0..2^63−1, a blob count
// other than len(entries) + (snapshot ? 1 : 0), or entries and snapshots
// where the type does not allow them. maxHeaderBytes 0 is the default.
// Entry and snapshot data alias the frames.
func DecodeRaft(frames [][]byte, maxHeaderBytes int) (*RaftMessage, error) {
	header, blobs, err := Decode(frames, DecodeOptions{MaxHeaderBytes: maxHeaderBytes, AllowEmptyID: true})
	if err != nil {
		return nil, err
	}
	wireType := HeaderType(header)
	mtype := MessageType(strings.TrimPrefix(wireType, RaftTypePrefix))
	if !IsRaftType(wireType) || !knownType(mtype) {
		return nil, protoErr(UnknownType, header, "'%s' is not a Raft message type", wireType)
	}
	bad := func(format string, args ...any) error {
		return protoErr(BadRequest, header, "raft message: "+format, args...)
	}
	m := &RaftMessage{Type: mtype}
	strs := []struct {
		name string
		dst  *string
	}{{"src", &m.Src}, {"dst", &m.Dst}, {"read_ctx", &m.ReadCtx}}
	for _, f := range strs {
		if err := stringField(header, f.name, "", f.dst, bad); err != nil {
			return nil, err
		}
	}
	ints := []struct {
		name string
		dst  *uint64
	}{{"term", &m.Term}, {"log_index", &m.LogIndex}, {"log_term", &m.LogTerm}, {"commit", &m.Commit},
		{"index", &m.Index}, {"reject_hint", &m.RejectHint}, {"context", &m.Context}}
	for _, f := range ints {
		if err := intField(header, f.name, "", f.dst, bad); err != nil {
			return nil, err
		}
	}
	bools := []struct {
		name string
		dst  *bool
	}{{"reject", &m.Reject}, {"force", &m.Force}}
	for _, f := range bools {
		v, ok := header.Get(f.name)
		if !ok {
			return nil, bad("field '%s' is missing", f.name)
		}
		b, isBool := v.(bool)
		if !isBool {
			return nil, bad("field '%s' must be a boolean, got %s", f.name, pyRepr(v))
		}
		*f.dst = b
	}

	rawEntries, _ := header.Get("entries")
	entries, ok := rawEntries.([]any)
	if !ok {
		return nil, bad("field 'entries' must be a list")
	}
	rawSnapshot, present := header.Get("snapshot")
	if !present {
		return nil, bad("field 'snapshot' is missing (null when absent)")
	}
	expected := len(entries)
	if rawSnapshot != nil {
		expected++
	}
	if len(blobs) != expected {
		article := "no"
		if rawSnapshot != nil {
			article = "a"
		}
		return nil, bad("%d entries and %s snapshot need %d binary frame(s), got %d",
			len(entries), article, expected, len(blobs))
	}
	m.Entries = make([]Entry, len(entries))
	for i, raw := range entries {
		where := fmt.Sprintf("entries[%d]", i)
		obj, ok := raw.(*Object)
		if !ok {
			return nil, bad("%s must be an object", where)
		}
		kv, _ := obj.Get("kind")
		kind, _ := kv.(string)
		if !knownKind(EntryKind(kind)) {
			return nil, bad("%s.kind %s is not one of ['noop', 'command', 'config']", where, pyRepr(kv))
		}
		e := Entry{Kind: EntryKind(kind), Data: blobs[i]}
		if err := intField(obj, "index", where, &e.Index, bad); err != nil {
			return nil, err
		}
		if err := intField(obj, "term", where, &e.Term, bad); err != nil {
			return nil, err
		}
		m.Entries[i] = e
	}
	if len(m.Entries) == 0 {
		m.Entries = nil
	}
	switch s := rawSnapshot.(type) {
	case nil:
	case *Object:
		snap := &Snapshot{Data: blobs[len(blobs)-1], Membership: []byte{}}
		if mv, ok := s.Get("membership"); ok {
			text, isString := mv.(string)
			if !isString {
				return nil, bad("snapshot field 'membership' must be a string")
			}
			snap.Membership = []byte(text)
		}
		if err := intField(s, "index", "snapshot", &snap.Index, bad); err != nil {
			return nil, err
		}
		if err := intField(s, "term", "snapshot", &snap.Term, bad); err != nil {
			return nil, err
		}
		m.Snapshot = snap
	default:
		return nil, bad("field 'snapshot' must be an object or null")
	}
	if why := checkStructure(m); why != "" {
		return nil, bad("%s", why)
	}
	return m, nil
}

func label(where, name string) string {
	if where == "" {
		return name
	}
	return where + "." + name
}

func stringField(obj *Object, name, where string, dst *string, bad func(string, ...any) error) error {
	v, ok := obj.Get(name)
	if !ok {
		return bad("field '%s' is missing", label(where, name))
	}
	s, ok := v.(string)
	if !ok {
		return bad("field '%s' must be a string, got %s", label(where, name), pyRepr(v))
	}
	*dst = s
	return nil
}

func intField(obj *Object, name, where string, dst *uint64, bad func(string, ...any) error) error {
	v, ok := obj.Get(name)
	if !ok {
		return bad("field '%s' is missing", label(where, name))
	}
	n, isNumber := v.(Number)
	var u uint64
	if isNumber {
		u, ok = n.Uint64()
	}
	if !isNumber || !ok || u > MaxRaftInt {
		return bad("field '%s' must be an integer in 0..%d, got %s", label(where, name), uint64(MaxRaftInt), pyRepr(v))
	}
	*dst = u
	return nil
}
