package node

import (
	"fmt"
	"math"
	"time"

	"zmqnode/raft"
	"zmqnode/replies"
	"zmqnode/security"
	"zmqnode/wire"
)

// StatusFreshSeconds: a learner is promoted only with a status feed this fresh.
const StatusFreshSeconds = 3.0

// CredentialChars is the length of a z85 CURVE public key.
const CredentialChars = 40

var changeNames = []string{"add_learner", "promote", "demote", "remove"}

// PeerStatus is a peer's latest status feed message and when it came.
type PeerStatus struct {
	At     time.Time
	Status *wire.Object
}

// MemberRequests serves MEMBERS, MEMBER_CHANGE and JOIN (member_requests.py).
type MemberRequests struct {
	Core             *raft.Core
	H                *Handlers
	LastHeard        func() map[string]time.Time
	PeerStatus       func() map[string]PeerStatus
	Propose          func(ch raft.ConfChange, base *uint64, done func(bool)) raft.ProposeResult
	OwnModelsMissing func() int
}

func (m *MemberRequests) handleMembers(req *wire.Object, _ [][]byte, reply replies.Replier) error {
	if !m.Core.IsLeader() {
		m.H.RedirectOrUnavailable(req, reply, wire.NotLeader, "")
		return nil
	}
	reply.OK(req, nil, m.listing()...)
	return nil
}

func (m *MemberRequests) handleChange(req *wire.Object, _ [][]byte, reply replies.Replier) error {
	kind, _ := req.Str("change")
	t, err := raft.ParseChangeType(kind)
	if err != nil || !contains(changeNames, kind) {
		v, _ := req.Get("change")
		return perr(wire.BadRequest, req, "'change' must be one of %s, got %s", joinComma(changeNames), cut(pyReprAny(v), 40))
	}
	node, err := nodeAddress(req)
	if err != nil {
		return err
	}
	cred, err := credential(req)
	if err != nil {
		return err
	}
	var base *uint64
	if v, ok := req.Get("base_index"); ok && v != nil {
		n, isNum := v.(wire.Number)
		u, okU := n.Uint64()
		if !isNum || !n.IsInt() || !okU {
			return perr(wire.BadRequest, req, "'base_index' must be a non-negative integer")
		}
		base = &u
	}
	return m.change(req, reply, raft.ConfChange{Type: t, Node: node, Credential: cred}, base)
}

func (m *MemberRequests) handleJoin(req *wire.Object, _ [][]byte, reply replies.Replier) error {
	node, err := nodeAddress(req)
	if err != nil {
		return err
	}
	cred, err := credential(req)
	if err != nil {
		return err
	}
	return m.change(req, reply, raft.ConfChange{Type: raft.ChangeAddLearner, Node: node, Credential: cred}, nil)
}

func already(ms raft.Membership, ch raft.ConfChange) bool {
	switch ch.Type {
	case raft.ChangeAddLearner:
		return ms.Contains(ch.Node)
	case raft.ChangePromote:
		return ms.IsVoter(ch.Node)
	case raft.ChangeDemote:
		return ms.IsLearner(ch.Node)
	default:
		return !ms.Contains(ch.Node)
	}
}

func (m *MemberRequests) change(req *wire.Object, reply replies.Replier, ch raft.ConfChange, base *uint64) error {
	core := m.Core
	if !core.IsLeader() {
		m.H.RedirectOrUnavailable(req, reply, wire.NotLeader, "")
		return nil
	}
	if already(core.Membership(), ch) {
		if core.MembershipIndex() <= core.CommitIndex() {
			reply.OK(req, nil, m.listing()...)
			return nil
		}
		reply.Error(req, wire.Busy, fmt.Sprintf("the membership change at index %d has not committed yet; retry", core.MembershipIndex()))
		return nil
	}
	if ch.Type == raft.ChangePromote {
		if why := m.filesMissing(ch.Node); why != "" {
			reply.Error(req, wire.Busy, why)
			return nil
		}
	}
	if (ch.Type == raft.ChangeRemove || ch.Type == raft.ChangeDemote) && core.Membership().IsVoter(ch.Node) {
		if !m.otherVoterHasEveryFile(ch.Node) {
			reply.Error(req, wire.Busy, fmt.Sprintf("no voter other than %s reports every model file yet "+
				"(the others are still fetching); retry once they have them", ch.Node))
			return nil
		}
	}
	if err := m.H.Admit(req); err != nil {
		return err
	}
	ws := m.H.Waiters
	waiter := ws.Park(m.H.RequestTimeout(req), func() {}, func() {
		reply.Error(req, wire.Timeout, fmt.Sprintf("the membership change was not committed in time on %s "+
			"(no quorum?); retry with the same request id", core.ID()))
	})
	done := func(applied bool) {
		if cb, _ := ws.Settle(waiter); cb == nil {
			return
		}
		if applied {
			m.H.Logf("INFO", "membership change committed: %s %s", ch.Type, ch.Node)
			reply.OK(req, nil, m.listing()...)
		} else {
			reply.Error(req, wire.NotLeader, fmt.Sprintf("%s lost leadership before the change committed; retry", core.ID()))
		}
	}
	result := m.Propose(ch, base, done)
	if result.Accepted {
		reply.Wait(req)
		return nil
	}
	ws.Settle(waiter)
	switch result.Refusal {
	case raft.RefusalNotLeader:
		m.H.RedirectOrUnavailable(req, reply, wire.NotLeader, "")
	case raft.RefusalConflict:
		reply.Error(req, wire.Conflict, result.Reason)
	case raft.RefusalRetry, raft.RefusalTransferring:
		reply.Error(req, wire.Busy, result.Reason)
	default:
		reply.Error(req, wire.BadInput, result.Reason)
	}
	return nil
}

func (m *MemberRequests) filesMissing(node string) string {
	st, ok := m.PeerStatus()[node]
	if !ok || time.Since(st.At).Seconds() > StatusFreshSeconds {
		return fmt.Sprintf("no recent status from %s (it reports its model files); retry", node)
	}
	applied, okA := st.Status.Uint("applied_index")
	latest := m.Core.MembershipIndex()
	if !okA || applied < latest {
		v, _ := st.Status.Get("applied_index")
		return fmt.Sprintf("%s has applied up to %v, not yet %d; retry", node, pyValue(v), latest)
	}
	missing, okM := st.Status.Int("models_missing")
	if !okM || missing > 0 {
		v, _ := st.Status.Get("models_missing")
		return fmt.Sprintf("%s is still fetching %v model file(s); retry once it has them", node, pyValue(v))
	}
	return ""
}

func pyValue(v any) string {
	if v == nil {
		return "None"
	}
	return fmt.Sprint(v)
}

func (m *MemberRequests) otherVoterHasEveryFile(leaving string) bool {
	core := m.Core
	if core.ID() != leaving && m.OwnModelsMissing() == 0 {
		return true
	}
	for _, v := range core.Voters() {
		if v != leaving && v != core.ID() && m.filesMissing(v) == "" {
			return true
		}
	}
	return false
}

func (m *MemberRequests) listing() []wire.Field {
	core := m.Core
	var leader any
	if core.LeaderID() != "" {
		leader = core.LeaderID()
	}
	return []wire.Field{
		{Key: "members", Value: MemberViews(core, m.LastHeard(), time.Now())},
		{Key: "membership_index", Value: core.MembershipIndex()},
		{Key: "committed", Value: core.MembershipIndex() <= core.CommitIndex()},
		{Key: "membership", Value: string(core.Membership().Encode())},
		{Key: "leader", Value: leader},
	}
}

// MemberViews is one object per member of the latest membership (members.py member_views).
func MemberViews(core *raft.Core, heard map[string]time.Time, now time.Time) []*wire.Object {
	ms := core.Membership()
	var out []*wire.Object
	for _, node := range ms.Members() {
		v := wire.NewObject(
			wire.Field{Key: "node", Value: node},
			wire.Field{Key: "voter", Value: ms.IsVoter(node)},
			wire.Field{Key: "leader", Value: node == core.LeaderID()},
			wire.Field{Key: "has_key", Value: ms.Credential(node) != ""},
		)
		if node == core.ID() {
			v.Set("match", core.LastIndex())
			v.Set("lag", int64(0))
			v.Set("last_heard_s", 0.0)
		} else if p, ok := core.Progress(node); ok && core.IsLeader() {
			v.Set("match", p.Match)
			v.Set("lag", int64(core.LastIndex())-int64(p.Match))
			if t, ok := heard[node]; ok {
				v.Set("last_heard_s", round3(now.Sub(t).Seconds()))
			} else {
				v.Set("last_heard_s", nil)
			}
		}
		out = append(out, v)
	}
	return out
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func nodeAddress(req *wire.Object) (string, error) {
	v, _ := req.Get("node")
	if s, ok := v.(string); ok {
		if host, port, err := security.ParseAddress(s); err == nil {
			return security.FormatAddress(host, port), nil
		}
	}
	return "", perr(wire.BadRequest, req, "'node' must be a member's address host:port, got %s", cut(pyReprAny(v), 60))
}

func credential(req *wire.Object) (string, error) {
	v, ok := req.Get("credential")
	if !ok {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr || (s != "" && len(s) != CredentialChars) {
		return "", perr(wire.BadRequest, req, "'credential' must be a z85 CURVE public key of %d characters", CredentialChars)
	}
	return s, nil
}

// pyReprAny is Python's repr of a decoded JSON value, for messages that
// quote what the client sent (strings quoted, None, True, numbers as sent).
func pyReprAny(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case bool:
		if t {
			return "True"
		}
		return "False"
	case string:
		return pyRepr(t)
	case wire.Number:
		return string(t)
	}
	raw, err := wire.MarshalJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

// cut is Python's "%.Ns" on a string: at most n characters.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
