package raft

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"zmqnode/pyfmt"
)

// Who is in the cluster, and how that changes: one member at a time.
//
// A Membership names the voters (they elect leaders and form every quorum)
// and the learners (they receive the log and snapshots, so they can serve
// reads and predictions, but never vote or count toward a quorum), with an
// opaque credential per member (the node puts each member's CURVE public key
// there, so its allow-list follows the configuration).
//
// Changes are log entries of kind EntryConfig whose data is the whole new
// membership, and a member uses the latest one in its log as soon as it is
// appended, committed or not (Ongaro's thesis §4.1). Each change adds,
// removes, promotes or demotes one member (ConfChange), so any majority of
// the old voters and any majority of the new ones overlap and no two leaders
// can be elected for one term. Single-server steps rather than joint
// consensus (thesis §4.3): they need no second configuration in flight and no
// special commit rule, every change a user asks for is a sequence of them,
// and the two rules that make them safe are local to the leader (Core):
//
//   - a leader proposes a change only once it has committed an entry of its
//     own term (the 2015 fix to the single-server algorithm: without it,
//     changes proposed by leaders of different terms can commit with disjoint
//     majorities);
//   - at most one change is in flight: the next waits until the previous one
//     commits. A change also names the configuration it was based on (its
//     log index, like hashicorp/raft's prevIndex) and is refused if that is
//     no longer the latest.

// MembershipError is a change that cannot apply to a membership, or bytes
// that are not an encoded membership (the message says why).
type MembershipError struct{ Msg string }

func (e *MembershipError) Error() string { return "raft: membership: " + e.Msg }

// ChangeType is one kind of single-member change.
type ChangeType int

const (
	ChangeAddLearner ChangeType = iota // a new member that does not vote (yet)
	ChangePromote                      // a learner becomes a voter (once caught up)
	ChangeDemote                       // a voter becomes a learner
	ChangeRemove                       // a member (voter or learner) leaves
)

var changeTypeNames = [...]string{"add_learner", "promote", "demote", "remove"}

// String returns Python's ChangeType value.
func (t ChangeType) String() string {
	if t >= 0 && int(t) < len(changeTypeNames) {
		return changeTypeNames[t]
	}
	return fmt.Sprintf("ChangeType(%d)", int(t))
}

// ParseChangeType is the inverse of ChangeType.String.
func ParseChangeType(s string) (ChangeType, error) {
	for i, n := range changeTypeNames {
		if n == s {
			return ChangeType(i), nil
		}
	}
	return 0, fmt.Errorf("raft: unknown change type %q", s)
}

// ConfChange is one step: Type applied to Node; Credential for
// ChangeAddLearner.
type ConfChange struct {
	Type       ChangeType
	Node       string
	Credential string
}

// Membership is voters, learners and each member's credential. It is an
// immutable value: no method changes it, and the slices it returns are
// copies.
type Membership struct {
	voters   []string // sorted, no duplicates
	learners []string // sorted, no duplicates, disjoint from voters
	creds    map[string]string
}

// MakeMembership is Python's Membership.of: the given voters, learners and
// credentials, or a *MembershipError if a node is both voter and learner or
// a credential names a non-member.
func MakeMembership(voters, learners []string, credentials map[string]string) (Membership, error) {
	m := Membership{voters: sortedSet(voters), learners: sortedSet(learners)}
	var both []string
	for _, v := range m.voters {
		if contains(m.learners, v) {
			both = append(both, v)
		}
	}
	if len(both) > 0 {
		return Membership{}, &MembershipError{fmt.Sprintf("%s cannot be both voter and learner", pyList(both))}
	}
	var unknown []string
	for node, c := range credentials {
		if !m.Contains(node) {
			unknown = append(unknown, node)
			continue
		}
		if m.creds == nil {
			m.creds = make(map[string]string)
		}
		m.creds[node] = c
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Membership{}, &MembershipError{fmt.Sprintf("credentials for non-members %s", pyList(unknown))}
	}
	return m, nil
}

// NewMembership is MakeMembership for arguments known to be valid; invalid
// ones are normalized instead of refused (a node listed as both is a voter,
// credentials of non-members are dropped).
func NewMembership(voters, learners []string, credentials map[string]string) Membership {
	v := sortedSet(voters)
	var l []string
	for _, n := range sortedSet(learners) {
		if !contains(v, n) {
			l = append(l, n)
		}
	}
	creds := make(map[string]string)
	for node, c := range credentials {
		if contains(v, node) || contains(l, node) {
			creds[node] = c
		}
	}
	m, err := MakeMembership(v, l, creds)
	if err != nil { // cannot happen after normalizing
		return Membership{voters: v, learners: l}
	}
	return m
}

// Voters returns the voters, sorted.
func (m Membership) Voters() []string { return append([]string(nil), m.voters...) }

// Learners returns the learners, sorted.
func (m Membership) Learners() []string { return append([]string(nil), m.learners...) }

// Members returns voters and learners, sorted.
func (m Membership) Members() []string {
	return sortedSet(append(m.Voters(), m.learners...))
}

// Credentials returns a copy of the credentials.
func (m Membership) Credentials() map[string]string {
	out := make(map[string]string, len(m.creds))
	for k, v := range m.creds {
		out[k] = v
	}
	return out
}

func (m Membership) IsVoter(id string) bool   { return contains(m.voters, id) }
func (m Membership) IsLearner(id string) bool { return contains(m.learners, id) }
func (m Membership) Contains(id string) bool  { return m.IsVoter(id) || m.IsLearner(id) }

// Credential is the member's credential, "" if none.
func (m Membership) Credential(id string) string { return m.creds[id] }

// Quorum is how many votes (or stored copies) a decision needs: a majority
// of the voters.
func (m Membership) Quorum() int { return len(m.voters)/2 + 1 }

// Equal reports whether both name the same voters, learners and credentials.
func (m Membership) Equal(o Membership) bool {
	if !equalStrings(m.voters, o.voters) || !equalStrings(m.learners, o.learners) || len(m.creds) != len(o.creds) {
		return false
	}
	for k, v := range m.creds {
		if w, ok := o.creds[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// String is for people.
func (m Membership) String() string {
	return fmt.Sprintf("Membership(voters=%v, learners=%v)", m.voters, m.learners)
}

// Apply returns this membership with change made; *MembershipError if it
// cannot be.
func (m Membership) Apply(change ConfChange) (Membership, error) {
	node := change.Node
	creds := m.Credentials()
	voters := m.Voters()
	learners := m.Learners()
	switch change.Type {
	case ChangeAddLearner:
		if m.Contains(node) {
			return Membership{}, &MembershipError{node + " is already a member"}
		}
		learners = append(learners, node)
		if change.Credential != "" {
			creds[node] = change.Credential
		}
	case ChangePromote:
		if !m.IsLearner(node) {
			return Membership{}, &MembershipError{node + " is not a learner: only a learner can be promoted"}
		}
		learners = without(learners, node)
		voters = append(voters, node)
	case ChangeDemote:
		if !m.IsVoter(node) {
			return Membership{}, &MembershipError{node + " is not a voter"}
		}
		if len(m.voters) == 1 {
			return Membership{}, &MembershipError{"cannot demote the last voter"}
		}
		voters = without(voters, node)
		learners = append(learners, node)
	default:
		if !m.Contains(node) {
			return Membership{}, &MembershipError{node + " is not a member"}
		}
		if len(m.voters) == 1 && m.voters[0] == node {
			return Membership{}, &MembershipError{"cannot remove the last voter"}
		}
		voters = without(voters, node)
		learners = without(learners, node)
		delete(creds, node)
	}
	return MakeMembership(voters, learners, creds)
}

// Encode is deterministic JSON (the CONFIG entry's and the snapshot's
// bytes), byte-identical to Python's
// json.dumps({"voters":…, "learners":…, "credentials":…}, sort_keys=True,
// separators=(",", ":")), ensure_ascii included.
func (m Membership) Encode() []byte {
	var b strings.Builder
	b.WriteString(`{"credentials":{`)
	keys := make([]string, 0, len(m.creds))
	for k := range m.creds {
		keys = append(keys, k)
	}
	sortPy(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pyfmt.QuoteASCII(k))
		b.WriteByte(':')
		b.WriteString(pyfmt.QuoteASCII(m.creds[k]))
	}
	b.WriteString(`},"learners":`)
	writePyList(&b, m.learners)
	b.WriteString(`,"voters":`)
	writePyList(&b, m.voters)
	b.WriteByte('}')
	return []byte(b.String())
}

// DecodeMembership is the inverse of Encode; *MembershipError for bytes that
// are not an encoded membership.
func DecodeMembership(data []byte) (Membership, error) {
	var doc map[string]interface{}
	ok := json.Unmarshal(data, &doc) == nil && doc != nil
	var voters, learners []string
	creds := map[string]string{}
	if ok {
		voters, ok = stringList(doc["voters"])
	}
	if ok {
		learners, ok = stringList(doc["learners"])
	}
	if ok {
		if raw, present := doc["credentials"]; present {
			obj, isObj := raw.(map[string]interface{})
			ok = isObj
			for k, v := range obj {
				s, isStr := v.(string)
				if !isStr {
					ok = false
					break
				}
				creds[k] = s
			}
		}
	}
	if !ok {
		shown := data
		if len(shown) > 80 {
			shown = shown[:80]
		}
		return Membership{}, &MembershipError{fmt.Sprintf("not an encoded membership: %q", shown)}
	}
	return MakeMembership(voters, learners, creds)
}

func stringList(v interface{}) ([]string, bool) {
	list, ok := v.([]interface{})
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// sortPy sorts as Python sorts str: by code point, which for valid UTF-8 is
// byte order.
func sortPy(s []string) { sort.Strings(s) }

func sortedSet(in []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sortPy(out)
	return out
}

func contains(sorted []string, s string) bool {
	i := sort.SearchStrings(sorted, s)
	return i < len(sorted) && sorted[i] == s
}

func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pyList renders a sorted list as Python's repr of a list of str (for error
// messages only).
func pyList(s []string) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = "'" + x + "'"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func writePyList(b *strings.Builder, list []string) {
	b.WriteByte('[')
	for i, s := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pyfmt.QuoteASCII(s))
	}
	b.WriteByte(']')
}
