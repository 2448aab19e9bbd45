package raft

import (
	"errors"
	"strings"
	"testing"
)

// Bytes produced by Python's Membership.encode() (zmqnode/raft/membership.py):
// CONFIG entries and snapshots travel between Python and Go nodes, so the
// encodings must be identical.
func TestMembershipEncodeIsByteIdenticalToPython(t *testing.T) {
	cases := []struct {
		name string
		m    Membership
		want string
	}{
		{"empty", NewMembership(nil, nil, nil), `{"credentials":{},"learners":[],"voters":[]}`},
		{"voters", NewMembership([]string{"c", "a", "b"}, nil, nil), `{"credentials":{},"learners":[],"voters":["a","b","c"]}`},
		{"addresses and keys", NewMembership(
			[]string{"127.0.0.1:9002", "127.0.0.1:9000"}, []string{"127.0.0.1:9001"},
			map[string]string{"127.0.0.1:9001": "rq:W+k]&<>", "127.0.0.1:9000": "abc"}),
			`{"credentials":{"127.0.0.1:9000":"abc","127.0.0.1:9001":"rq:W+k]&<>"},"learners":["127.0.0.1:9001"],"voters":["127.0.0.1:9000","127.0.0.1:9002"]}`},
		{"escapes", NewMembership(
			[]string{"n\u00e9", "\U0001F600x", "q\"\\\n\t\x01\x7f"}, []string{"zz"},
			map[string]string{"zz": "\u2603/"}),
			`{"credentials":{"zz":"\u2603/"},"learners":["zz"],"voters":["n\u00e9","q\"\\\n\t\u0001\u007f","\ud83d\ude00x"]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.m.Encode()); got != tc.want {
				t.Fatalf("encode:\n got %s\nwant %s", got, tc.want)
			}
			back, err := DecodeMembership([]byte(tc.want))
			if err != nil || !back.Equal(tc.m) {
				t.Fatalf("decode: %v %v", back, err)
			}
		})
	}
}

func TestMembershipAppliesOneChangeAndRoundTrips(t *testing.T) {
	m := NewMembership([]string{"a", "b", "c"}, nil, nil)
	if m.Quorum() != 2 {
		t.Fatal(m.Quorum())
	}
	m2, err := m.Apply(ConfChange{ChangeAddLearner, "d", "key-d"})
	if err != nil || !equalStrings(m2.Learners(), []string{"d"}) || m2.Quorum() != 2 || m2.Credential("d") != "key-d" {
		t.Fatal(m2, err)
	}
	m3, err := m2.Apply(ConfChange{Type: ChangePromote, Node: "d"})
	if err != nil || !equalStrings(m3.Voters(), []string{"a", "b", "c", "d"}) || m3.Quorum() != 3 {
		t.Fatal(m3, err)
	}
	back, err := DecodeMembership(m3.Encode())
	if err != nil || !back.Equal(m3) {
		t.Fatal(back, err)
	}
	if d, _ := m3.Apply(ConfChange{Type: ChangeDemote, Node: "a"}); !equalStrings(d.Learners(), []string{"a"}) {
		t.Fatal(d)
	}
	r, _ := m3.Apply(ConfChange{Type: ChangeRemove, Node: "d"})
	if r.Contains("d") || r.Credential("d") != "" {
		t.Fatal(r)
	}
	for _, bad := range []ConfChange{
		{Type: ChangeAddLearner, Node: "a"}, // already a member
		{Type: ChangePromote, Node: "a"},    // a voter already
		{Type: ChangeRemove, Node: "z"},
	} {
		var me *MembershipError
		if _, err := m.Apply(bad); !errors.As(err, &me) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	one := NewMembership([]string{"a"}, nil, nil)
	if _, err := one.Apply(ConfChange{Type: ChangeRemove, Node: "a"}); err == nil || !strings.Contains(err.Error(), "last voter") {
		t.Fatal(err)
	}
	for _, data := range []string{`{"voters": "a"}`, `[]`, `null`, `{"voters":[],"learners":[1]}`,
		`{"voters":["a"],"learners":["a"]}`, `{"voters":["a"],"learners":[],"credentials":{"b":"k"}}`,
		`{"voters":[],"learners":[],"credentials":{"a":1}}`, `not json`} {
		if _, err := DecodeMembership([]byte(data)); err == nil {
			t.Errorf("decoded %s", data)
		}
	}
	if m, err := DecodeMembership([]byte(`{"voters":["b","a"],"learners":[]}`)); err != nil || m.Quorum() != 2 {
		t.Fatal(m, err)
	}
}

func TestEnumStringsAreThePythonValues(t *testing.T) {
	for i, n := range messageTypeNames {
		if got, err := ParseMessageType(n); err != nil || got != MessageType(i) || got.String() != n {
			t.Errorf("%s: %v %v", n, got, err)
		}
	}
	for _, k := range []EntryKind{EntryNoop, EntryCommand, EntryConfig} {
		if got, err := ParseEntryKind(k.String()); err != nil || got != k {
			t.Errorf("%v", k)
		}
	}
	for _, ct := range []ChangeType{ChangeAddLearner, ChangePromote, ChangeDemote, ChangeRemove} {
		if got, err := ParseChangeType(ct.String()); err != nil || got != ct {
			t.Errorf("%v", ct)
		}
	}
	if RoleCandidate.String() != "candidate" || RolePreCandidate.String() != "pre_candidate" ||
		RefusalNone.String() != "" || RefusalConflict.String() != "conflict" {
		t.Error("names")
	}
}
