package raft

import (
	"math/rand"
	"strings"
	"testing"
)

// Membership changes in the core: one member at a time, learners, the
// own-term rule, one change in flight, the leader removing itself, and the
// membership following the log (ported from tests/test_raft_membership.py).

// joining: a, b, c vote; the other ids start with an empty membership (they
// join later). a is elected.
func joining(t *testing.T, ids []string, cfg ...func(*Config)) *network {
	voters := []string{"a", "b", "c"}
	boot := map[string]*Membership{}
	empty := NewMembership(nil, nil, nil)
	three := NewMembership(voters, nil, nil)
	for _, id := range ids {
		boot[id] = &empty
	}
	for _, v := range voters {
		boot[v] = &three
	}
	net := newNetwork(t, append(voters, ids...), boot, cfg...)
	net.elect("a")
	return net
}

func change(net *network, leader string, ty ChangeType, node string) ProposeResult {
	res := net.get(leader).ProposeMembership(ConfChange{Type: ty, Node: node}, nil)
	net.stabilize(nil)
	return res
}

// commitOne proposes a command and settles; true if it committed on the
// leader.
func commitOne(t *testing.T, net *network, leader string) bool {
	res := net.get(leader).Propose([]byte("x"))
	if !res.Accepted {
		t.Fatal(res)
	}
	net.stabilize(nil)
	return net.get(leader).CommitIndex() >= res.Index
}

func u64(v uint64) *uint64 { return &v }

func TestALearnerGetsTheLogButNeverVotesNorCounts(t *testing.T) {
	net := joining(t, []string{"d"})
	if !change(net, "a", ChangeAddLearner, "d").Accepted || !commitOne(t, net, "a") {
		t.Fatal("no change")
	}
	d := net.get("d")
	if !equalStrings(d.Membership().Learners(), []string{"d"}) || d.CommitIndex() != net.get("a").CommitIndex() {
		t.Fatal(d.Membership(), d.CommitIndex())
	}
	// It never campaigns, however long it hears nothing.
	net.isolate("d")
	net.tick([]string{"d"}, 5*E, true)
	if d.Role() != RoleFollower || len(net.pending("", MsgPreVote, MsgVote)) != 0 {
		t.Fatal(d.Role())
	}
	net.heal()
	// Its acks do not make a quorum: with b and c cut off nothing commits.
	net.partition([]string{"a", "d"}, []string{"b", "c"})
	before := net.get("a").CommitIndex()
	net.get("a").Propose([]byte("y"))
	net.stabilize(nil)
	if net.get("a").CommitIndex() != before || d.LastIndex() != net.get("a").LastIndex() {
		t.Fatal(net.get("a").CommitIndex(), d.LastIndex())
	}
}

func TestALearnerIsPromotedOnlyOnceCaughtUp(t *testing.T) {
	net := joining(t, []string{"d"}, promoteMaxLag(2))
	change(net, "a", ChangeAddLearner, "d")
	net.isolate("d")
	for i := 0; i < 5; i++ {
		commitOne(t, net, "a")
	}
	refused := net.get("a").ProposeMembership(ConfChange{Type: ChangePromote, Node: "d"}, nil)
	if refused.Accepted || !strings.Contains(refused.Reason, "not caught up") || refused.Refusal != RefusalRetry {
		t.Fatal(refused)
	}
	net.heal()
	net.tick(nil, 2, true)
	if !change(net, "a", ChangePromote, "d").Accepted {
		t.Fatal("refused")
	}
	if !equalStrings(net.get("a").Voters(), []string{"a", "b", "c", "d"}) || net.get("a").Quorum() != 3 {
		t.Fatal(net.get("a").Voters())
	}
	net.partition([]string{"a", "b"}, []string{"c", "d"})
	before := net.get("a").CommitIndex()
	net.get("a").Propose([]byte("z"))
	net.stabilize(nil)
	if net.get("a").CommitIndex() != before {
		t.Fatal("committed with 2 of 4")
	}
}

func TestNoChangeBeforeTheLeaderCommitsInItsTerm(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.get("a").Campaign()
	net.stabilize(func(d string, m Message) bool { return m.Type == MsgAppend })
	if !net.get("a").IsLeader() {
		t.Fatal(net.get("a").Role())
	}
	refused := net.get("a").ProposeMembership(ConfChange{Type: ChangeRemove, Node: "c"}, nil)
	if refused.Accepted || !strings.Contains(refused.Reason, "not committed an entry of its term") || refused.Refusal != RefusalRetry {
		t.Fatal(refused)
	}
	net.stabilize(nil)
	if !net.get("a").ProposeMembership(ConfChange{Type: ChangeRemove, Node: "c"}, nil).Accepted {
		t.Fatal("refused")
	}
}

func TestOneChangeAtATimeAndTheBaseIndexGuard(t *testing.T) {
	net := joining(t, []string{"d", "e"})
	net.partition([]string{"a"}, []string{"b", "c", "d", "e"})
	first := net.get("a").ProposeMembership(ConfChange{Type: ChangeAddLearner, Node: "d"}, nil)
	if !first.Accepted {
		t.Fatal(first)
	}
	second := net.get("a").ProposeMembership(ConfChange{Type: ChangeAddLearner, Node: "e"}, nil)
	if second.Accepted || !strings.Contains(second.Reason, "one change at a time") || second.Refusal != RefusalRetry {
		t.Fatal(second)
	}
	net.heal()
	net.stabilize(nil)
	stale := net.get("a").ProposeMembership(ConfChange{Type: ChangeAddLearner, Node: "e"}, u64(0))
	if stale.Accepted || !strings.Contains(stale.Reason, "now at 2") || stale.Refusal != RefusalConflict {
		t.Fatal(stale)
	}
	if !net.get("a").ProposeMembership(ConfChange{Type: ChangeAddLearner, Node: "e"}, u64(first.Index)).Accepted {
		t.Fatal("refused")
	}
}

func TestARemovedFollowerNoLongerCounts(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	if !change(net, "a", ChangeRemove, "c").Accepted {
		t.Fatal("refused")
	}
	if !equalStrings(net.get("a").Voters(), []string{"a", "b"}) || !equalStrings(net.get("a").Peers(), []string{"b"}) {
		t.Fatal(net.get("a").Voters())
	}
	net.isolate("c")
	if !commitOne(t, net, "a") {
		t.Fatal("a and b are the whole quorum now")
	}
	net.heal()
	net.sent = nil
	net.tick(nil, 3, true)
	for _, q := range net.sent {
		if q.dst == "c" && q.m.Type == MsgAppend {
			t.Fatal(q.m)
		}
	}
}

func TestTheLeaderRemovesItselfLeadsUntilItCommitsThenHandsOver(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	res := net.get("a").ProposeMembership(ConfChange{Type: ChangeRemove, Node: "a"}, nil)
	if !res.Accepted || !net.get("a").IsLeader() {
		t.Fatal(res)
	}
	net.stabilize(nil)
	if net.get("a").CommitIndex() < res.Index || net.get("a").Role() != RoleFollower || len(net.sentOf(MsgTimeoutNow)) == 0 {
		t.Fatal(net.get("a").Role())
	}
	net.stabilize(nil)
	l := net.leaders()
	if len(l) != 1 || (l[0] != "b" && l[0] != "c") {
		t.Fatal(l)
	}
	if !commitOne(t, net, l[0]) {
		t.Fatal("no commit")
	}
	net.tick([]string{"a"}, 5*E, true)
	if net.get("a").Role() != RoleFollower || len(net.leaders()) != 1 || net.leaders()[0] != l[0] {
		t.Fatal(net.leaders())
	}
}

// Thesis §4.2.2: a server that is not part of its own latest configuration
// "should still start new elections, as it might still be needed until the
// Cnew entry is committed ... It does not count its own vote".
func TestALeaderThatRemovedItselfCampaignsUntilTheChangeCommits(t *testing.T) {
	net := newNetwork(t, []string{"a", "b"}, nil)
	net.elect("a")
	removal := net.get("a").ProposeMembership(ConfChange{Type: ChangeRemove, Node: "a"}, nil)
	if !removal.Accepted {
		t.Fatal(removal)
	}
	net.process("a")
	net.drop(nil)
	net.crash("a")
	net.restart("a")
	if !equalStrings(net.get("a").Voters(), []string{"b"}) || !equalStrings(net.get("b").Voters(), []string{"a", "b"}) {
		t.Fatal(net.get("a").Voters(), net.get("b").Voters())
	}
	net.tick([]string{"b"}, 3*E, true)
	if len(net.leaders()) != 0 {
		t.Fatal(net.leaders())
	}
	net.tick([]string{"a"}, 3*E, true)
	if l := net.leaders(); len(l) != 1 || l[0] != "b" {
		t.Fatal(l)
	}
	b := net.get("b")
	if !equalStrings(b.Voters(), []string{"b"}) || b.CommitIndex() < removal.Index || net.get("a").Role() != RoleFollower {
		t.Fatal(b.Voters())
	}
	if !commitOne(t, net, "b") {
		t.Fatal("no commit")
	}
}

func TestADemotedVoterThatKnowsTheChangeCommittedNeverCampaigns(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	demotion := change(net, "a", ChangeDemote, "c")
	commitOne(t, net, "a")
	if !equalStrings(net.get("c").Membership().Learners(), []string{"c"}) || net.get("c").CommitIndex() < demotion.Index {
		t.Fatal(net.get("c").Membership())
	}
	net.sent = nil
	net.tick([]string{"c"}, 5*E, true)
	if len(net.sentOf(MsgPreVote, MsgVote)) != 0 {
		t.Fatal("campaigned")
	}
}

// Figure 2, RequestVote receiver: "Reply false if term < currentTerm", and
// the reply carries currentTerm, so a stale candidate catches up.
func TestAStaleCandidateLearnsTheVotersTermFromItsRefusal(t *testing.T) {
	voter := newCoreT(t, coreSpec{id: "b", peers: []string{"a", "c"}, hs: HardState{Term: 5}, cfg: []func(*Config){noPreVote}})
	cand := newCoreT(t, coreSpec{id: "a", peers: []string{"b", "c"}, hs: HardState{Term: 2}, cfg: []func(*Config){noPreVote}})
	cand.Campaign()
	if req := ofType(drain(t, cand).Messages, MsgVote); req[0].Term != 3 {
		t.Fatal(req)
	}
	step(t, voter, Message{Type: MsgVote, Src: "a", Dst: "b", Term: 3})
	r := drain(t, voter).Messages
	if len(r) != 1 || r[0].Type != MsgVoteResp || r[0].Term != 5 || !r[0].Reject || voter.Term() != 5 || voter.Vote() != "" {
		t.Fatal(r)
	}
	step(t, cand, r[0])
	if cand.Role() != RoleFollower || cand.Term() != 5 {
		t.Fatal(cand.Role(), cand.Term())
	}
	cand.Campaign()
	var req Message
	for _, m := range drain(t, cand).Messages {
		if m.Type == MsgVote && m.Dst == "b" {
			req = m
		}
	}
	step(t, voter, req)
	g := drain(t, voter).Messages
	if len(g) != 1 || g[0].Type != MsgVoteResp || g[0].Term != 6 || g[0].Reject {
		t.Fatal(g)
	}
}

func TestATruncatedConfigEntryTakesItsMembershipWithIt(t *testing.T) {
	net := newNetwork(t, nil, nil)
	removal := Entry{Index: 2, Term: 1, Kind: EntryConfig, Data: NewMembership([]string{"a", "b"}, nil, nil).Encode()}
	net.load("b", 1, []Entry{{Index: 1, Term: 1}, removal}, "")
	net.load("a", 2, []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 2}}, "")
	net.load("c", 2, []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 2}}, "")
	if !equalStrings(net.get("b").Voters(), []string{"a", "b"}) {
		t.Fatal(net.get("b").Voters())
	}
	net.elect("c")
	net.stabilize(nil)
	b := net.get("b")
	if tm, _ := b.TermAt(2); tm != 2 || !equalStrings(b.Voters(), []string{"a", "b", "c"}) || b.MembershipIndex() != 0 {
		t.Fatal(tm, b.Voters(), b.MembershipIndex())
	}
}

func TestASnapshotCarriesTheMembershipToANewLearner(t *testing.T) {
	net := joining(t, []string{"d"})
	change(net, "a", ChangeRemove, "c")
	commitOne(t, net, "a")
	commitOne(t, net, "a")
	snap := net.compact("a", net.get("a").AppliedIndex())
	if m, err := DecodeMembership(snap.Membership); err != nil || !equalStrings(m.Voters(), []string{"a", "b"}) {
		t.Fatal(m, err)
	}
	if !change(net, "a", ChangeAddLearner, "d").Accepted {
		t.Fatal("refused")
	}
	net.tick(nil, 3, true)
	d := net.get("d")
	if d.Snapshot().Index != snap.Index || !equalStrings(d.Membership().Learners(), []string{"d"}) ||
		!equalStrings(d.Voters(), []string{"a", "b"}) {
		t.Fatal(d.Snapshot().Index, d.Membership())
	}
}

func TestARestartedNodeReadsItsMembershipFromItsLog(t *testing.T) {
	net := joining(t, []string{"d"})
	change(net, "a", ChangeAddLearner, "d")
	commitOne(t, net, "a")
	net.crash("b")
	net.restart("b")
	if !equalStrings(net.get("b").Membership().Learners(), []string{"d"}) {
		t.Fatal(net.get("b").Membership())
	}
}

func TestAJoinedNodeGrantsNoVoteBeforeItsLogReachesItsJoin(t *testing.T) {
	joined := func(floor uint64) *Core {
		c, err := NewCore("x", []string{"a", "b"}, testConfig(), rand.New(rand.NewSource(0)), Options{VoteFloor: floor})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := joined(5)
	step(t, c, Message{Type: MsgVote, Src: "a", Dst: "x", Term: 3, LogIndex: 2, LogTerm: 1})
	if r := ofType(c.Ready().Messages, MsgVoteResp); len(r) != 1 || !r[0].Reject || c.Vote() != "" {
		t.Fatal(r)
	}
	c = joined(0)
	step(t, c, Message{Type: MsgVote, Src: "a", Dst: "x", Term: 3, LogIndex: 2, LogTerm: 1})
	if c.Vote() != "a" {
		t.Fatal(c.Vote())
	}
}

func TestMembershipAtFollowsTheLog(t *testing.T) {
	net := joining(t, []string{"d"})
	res := change(net, "a", ChangeAddLearner, "d")
	a := net.get("a")
	if a.MembershipAt(res.Index-1).Contains("d") || !a.MembershipAt(res.Index).IsLearner("d") || a.MembershipIndex() != res.Index {
		t.Fatal(a.MembershipAt(res.Index))
	}
}

func TestAConfigEntryThatDoesNotDecodeIsAnError(t *testing.T) {
	c := follower(t, fspec{term: 1})
	err := c.Step(appendMsg("b", 1, 0, 0, []Entry{{Index: 1, Term: 1, Kind: EntryConfig, Data: []byte("junk")}}, 0))
	if _, ok := err.(*MembershipError); !ok {
		t.Fatal(err)
	}
}

// A method with no error result (Tick) that meets a broken log stops the
// core: Err says why, and Step returns it from then on.
func TestAnErrorInTickStopsTheCore(t *testing.T) {
	others := NewMembership([]string{"b", "c"}, []string{"a"}, nil)
	c := newCoreT(t, coreSpec{entries: []Entry{
		{Index: 1, Term: 1, Kind: EntryConfig, Data: []byte("junk")},
		{Index: 2, Term: 1, Kind: EntryConfig, Data: others.Encode()},
	}})
	tickN(c, 2*E) // mayCampaign reads the membership before entry 2
	if _, ok := c.Err().(*MembershipError); !ok {
		t.Fatal(c.Err())
	}
	if err := c.Step(msg(MsgHeartbeat, "b", Broadcast, 1)); err != c.Err() {
		t.Fatal(err)
	}
}
