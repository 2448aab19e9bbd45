package simcore

// The wire format of docs/SIMCORE.md: requests are decoded with
// encoding/json into the types below; replies are written by hand (an
// append-only encoder), because the simulator asks for thousands of them per
// schedule and most carry the same few fields.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"zmqnode/raft"
)

// request is every op's fields in one struct; an op reads the ones it needs.
type request struct {
	Op string `json:"op"`
	H  int    `json:"h"`
	// Rd: after the op, call HasReady and, when true, Ready (a prefetch that
	// saves the simulator its has_ready/ready round trip).
	Rd bool `json:"rd"`

	// new
	ID        string          `json:"id"`
	Peers     []string        `json:"peers"`
	Config    json.RawMessage `json:"config"`
	Seed      uint64          `json:"seed"`
	HardState *wireHardState  `json:"hard_state"`
	Snapshot  *wireSnapshot   `json:"snapshot"`
	Entries   []wireEntry     `json:"entries"`
	Bootstrap []byte          `json:"bootstrap"` // an encoded membership; absent: none
	VoteFloor uint64          `json:"vote_floor"`
	Mutations []string        `json:"mutations"`

	M      *wireMessage `json:"m"`      // step
	Data   []byte       `json:"data"`   // propose, compact
	Index  uint64       `json:"index"`  // compact, membership_at, term_at
	Change *wireChange  `json:"change"` // propose_membership
	Base   *uint64      `json:"base"`   // propose_membership
	Ctx    string       `json:"ctx"`    // read_index
	Peer   string       `json:"peer"`   // transfer_leadership, peer_unreachable
}

type wireHardState struct {
	Term uint64 `json:"term"`
	Vote string `json:"vote"`
}

type wireSnapshot struct {
	Index      uint64 `json:"index"`
	Term       uint64 `json:"term"`
	Data       []byte `json:"data"`
	Membership []byte `json:"membership"`
}

func (s *wireSnapshot) snapshot() *raft.Snapshot {
	if s == nil {
		return nil
	}
	return &raft.Snapshot{Index: s.Index, Term: s.Term, Data: s.Data, Membership: s.Membership}
}

type wireChange struct {
	Type       string `json:"type"`
	Node       string `json:"node"`
	Credential string `json:"credential"`
}

// wireConfig mirrors Python's RaftConfig field names.
type wireConfig struct {
	ElectionTicks  int    `json:"election_ticks"`
	HeartbeatTicks int    `json:"heartbeat_ticks"`
	PreVote        bool   `json:"pre_vote"`
	CheckQuorum    bool   `json:"check_quorum"`
	MaxMsgBytes    int    `json:"max_msg_bytes"`
	MaxInflight    int    `json:"max_inflight"`
	PromoteMaxLag  uint64 `json:"promote_max_lag"`
}

// decodeConfig overlays the given fields on raft.DefaultConfig().
func decodeConfig(raw json.RawMessage) (raft.Config, error) {
	d := raft.DefaultConfig()
	wc := wireConfig{d.ElectionTicks, d.HeartbeatTicks, d.PreVote, d.CheckQuorum,
		d.MaxMsgBytes, d.MaxInflight, d.PromoteMaxLag}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &wc); err != nil {
			return d, fmt.Errorf("config: %w", err)
		}
	}
	return raft.Config{ElectionTicks: wc.ElectionTicks, HeartbeatTicks: wc.HeartbeatTicks,
		PreVote: wc.PreVote, CheckQuorum: wc.CheckQuorum, MaxMsgBytes: wc.MaxMsgBytes,
		MaxInflight: wc.MaxInflight, PromoteMaxLag: wc.PromoteMaxLag}, nil
}

// wireEntry is an entry as a JSON array: [index, term, "kind", "base64 data"].
type wireEntry raft.Entry

func (e *wireEntry) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 4 {
		return fmt.Errorf("entry: want [index, term, kind, data], got %d items", len(a))
	}
	var kind string
	if err := json.Unmarshal(a[0], &e.Index); err != nil {
		return fmt.Errorf("entry index: %w", err)
	}
	if err := json.Unmarshal(a[1], &e.Term); err != nil {
		return fmt.Errorf("entry term: %w", err)
	}
	if err := json.Unmarshal(a[2], &kind); err != nil {
		return fmt.Errorf("entry kind: %w", err)
	}
	k, err := raft.ParseEntryKind(kind)
	if err != nil {
		return err
	}
	e.Kind = k
	if err := json.Unmarshal(a[3], &e.Data); err != nil {
		return fmt.Errorf("entry data: %w", err)
	}
	return nil
}

func entries(w []wireEntry) []raft.Entry {
	if len(w) == 0 {
		return nil
	}
	out := make([]raft.Entry, len(w))
	for i := range w {
		out[i] = raft.Entry(w[i])
	}
	return out
}

// wireMessage uses Python's Message field names; absent fields are zero.
type wireMessage struct {
	Type       string        `json:"type"`
	Src        string        `json:"src"`
	Dst        string        `json:"dst"`
	Term       uint64        `json:"term"`
	LogIndex   uint64        `json:"log_index"`
	LogTerm    uint64        `json:"log_term"`
	Entries    []wireEntry   `json:"entries"`
	Commit     uint64        `json:"commit"`
	Reject     bool          `json:"reject"`
	Index      uint64        `json:"index"`
	RejectHint uint64        `json:"reject_hint"`
	Context    uint64        `json:"context"`
	ReadCtx    string        `json:"read_ctx"`
	Force      bool          `json:"force"`
	Snapshot   *wireSnapshot `json:"snapshot"`
}

func (w *wireMessage) message() (raft.Message, error) {
	t, err := raft.ParseMessageType(w.Type)
	if err != nil {
		return raft.Message{}, err
	}
	return raft.Message{Type: t, Src: w.Src, Dst: w.Dst, Term: w.Term, LogIndex: w.LogIndex,
		LogTerm: w.LogTerm, Entries: entries(w.Entries), Commit: w.Commit, Reject: w.Reject,
		Index: w.Index, RejectHint: w.RejectHint, Context: w.Context, ReadCtx: w.ReadCtx,
		Force: w.Force, Snapshot: w.Snapshot.snapshot()}, nil
}

// -- replies ----------------------------------------------------------------

// encoder appends JSON to a reusable buffer. Objects are written field by
// field: obj() opens one, key() writes the separating comma when needed.
type encoder struct {
	b     []byte
	first []bool // per open object: no field written yet
}

func (e *encoder) reset() { e.b = e.b[:0]; e.first = e.first[:0] }

func (e *encoder) obj() { e.b = append(e.b, '{'); e.first = append(e.first, true) }

func (e *encoder) end() { e.b = append(e.b, '}'); e.first = e.first[:len(e.first)-1] }

func (e *encoder) key(k string) {
	top := len(e.first) - 1
	if !e.first[top] {
		e.b = append(e.b, ',')
	}
	e.first[top] = false
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *encoder) u64(v uint64) { e.b = strconv.AppendUint(e.b, v, 10) }

func (e *encoder) boolean(v bool) { e.b = strconv.AppendBool(e.b, v) }

func (e *encoder) str(s string) { e.b = appendString(e.b, s) }

func (e *encoder) b64(v []byte) {
	e.b = append(e.b, '"')
	n := base64.StdEncoding.EncodedLen(len(v))
	l := len(e.b)
	if cap(e.b) < l+n+1 {
		grown := make([]byte, l, 2*(l+n+1))
		copy(grown, e.b)
		e.b = grown
	}
	e.b = e.b[:l+n]
	base64.StdEncoding.Encode(e.b[l:], v)
	e.b = append(e.b, '"')
}

func (e *encoder) strs(list []string) {
	e.b = append(e.b, '[')
	for i, s := range list {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(s)
	}
	e.b = append(e.b, ']')
}

// Field helpers that leave out zero values (the decoder's defaults).
func (e *encoder) fu64(k string, v uint64) {
	if v != 0 {
		e.key(k)
		e.u64(v)
	}
}

func (e *encoder) fstr(k, v string) {
	if v != "" {
		e.key(k)
		e.str(v)
	}
}

func (e *encoder) ftrue(k string, v bool) {
	if v {
		e.key(k)
		e.b = append(e.b, "true"...)
	}
}

func (e *encoder) entry(x *raft.Entry) {
	e.b = append(e.b, '[')
	e.u64(x.Index)
	e.b = append(e.b, ',')
	e.u64(x.Term)
	e.b = append(e.b, ',', '"')
	e.b = append(e.b, x.Kind.String()...)
	e.b = append(e.b, '"', ',')
	e.b64(x.Data)
	e.b = append(e.b, ']')
}

func (e *encoder) entryList(list []raft.Entry) {
	e.b = append(e.b, '[')
	for i := range list {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.entry(&list[i])
	}
	e.b = append(e.b, ']')
}

// entriesField writes a non-empty list as "<k>_log":[lo,hi] when it is
// exactly entries lo..hi of log (the core's log at the end of the request,
// which the client's mirror holds once it applied this reply's "log"),
// else in full as "<k>":[...].
func (e *encoder) entriesField(k string, list []raft.Entry, log []raft.Entry, snapIndex uint64) {
	if len(list) == 0 {
		return
	}
	if inLog(list, log, snapIndex) {
		e.key(k + "_log")
		e.b = append(e.b, '[')
		e.u64(list[0].Index)
		e.b = append(e.b, ',')
		e.u64(list[len(list)-1].Index)
		e.b = append(e.b, ']')
		return
	}
	e.key(k)
	e.entryList(list)
}

func inLog(list, log []raft.Entry, snapIndex uint64) bool {
	if list[0].Index <= snapIndex {
		return false
	}
	off := list[0].Index - snapIndex - 1
	if off+uint64(len(list)) > uint64(len(log)) {
		return false
	}
	for i := range list {
		if !sameEntry(&list[i], &log[off+uint64(i)]) {
			return false
		}
	}
	return true
}

func sameEntry(a, b *raft.Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Kind == b.Kind && bytes.Equal(a.Data, b.Data)
}

func (e *encoder) snapshot(s *raft.Snapshot) {
	e.obj()
	e.key("index")
	e.u64(s.Index)
	e.key("term")
	e.u64(s.Term)
	e.key("data")
	e.b64(s.Data)
	e.key("membership")
	e.b64(s.Membership)
	e.end()
}

func (e *encoder) message(m *raft.Message, log []raft.Entry, snapIndex uint64) {
	e.obj()
	e.key("type")
	e.b = append(e.b, '"')
	e.b = append(e.b, m.Type.String()...)
	e.b = append(e.b, '"')
	e.key("src")
	e.str(m.Src)
	e.key("dst")
	e.str(m.Dst)
	e.key("term")
	e.u64(m.Term)
	e.fu64("log_index", m.LogIndex)
	e.fu64("log_term", m.LogTerm)
	e.entriesField("entries", m.Entries, log, snapIndex)
	e.fu64("commit", m.Commit)
	e.ftrue("reject", m.Reject)
	e.fu64("index", m.Index)
	e.fu64("reject_hint", m.RejectHint)
	e.fu64("context", m.Context)
	e.fstr("read_ctx", m.ReadCtx)
	e.ftrue("force", m.Force)
	if m.Snapshot != nil {
		e.key("snapshot")
		e.snapshot(m.Snapshot)
	}
	e.end()
}

func (e *encoder) ready(rd *raft.Ready, log []raft.Entry, snapIndex uint64) {
	e.obj()
	if rd.HardState != nil {
		e.key("hs")
		e.obj()
		e.key("term")
		e.u64(rd.HardState.Term)
		e.key("vote")
		e.str(rd.HardState.Vote)
		e.end()
	}
	e.entriesField("entries", rd.Entries, log, snapIndex)
	if rd.Snapshot != nil {
		e.key("snapshot")
		e.snapshot(rd.Snapshot)
	}
	if len(rd.Messages) > 0 {
		e.key("messages")
		e.b = append(e.b, '[')
		for i := range rd.Messages {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.message(&rd.Messages[i], log, snapIndex)
		}
		e.b = append(e.b, ']')
	}
	e.entriesField("committed", rd.Committed, log, snapIndex)
	if len(rd.ReadStates) > 0 {
		e.key("read_states")
		e.b = append(e.b, '[')
		for i, rs := range rd.ReadStates {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, '[')
			e.str(rs.ReadCtx)
			e.b = append(e.b, ',')
			e.u64(rs.Index)
			e.b = append(e.b, ']')
		}
		e.b = append(e.b, ']')
	}
	e.end()
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
