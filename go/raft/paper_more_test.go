package raft

import (
	"reflect"
	"testing"
)

// ==================================================================================
// Pre-vote (thesis §9.6) and the leader lease of check-quorum (thesis §4.2.3)
// ==================================================================================

// Thesis §9.6: "While a server is partitioned, it won't be able to increment
// its term, since it can't receive permission from a majority of the
// cluster."
func TestPrevoteDoesNotIncrementTheTermOfAPartitionedNode(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.isolate("c")
	net.tick(nil, 5*E, true)
	c := net.get("c")
	if c.Term() != 1 || net.storage["c"].hs.Term != 1 || c.Role() != RolePreCandidate {
		t.Fatal(c.Term(), c.Role())
	}
	for _, m := range net.sentOf(MsgVote) {
		if m.Src == "c" {
			t.Fatal(m)
		}
	}
	if l := net.leaders(); len(l) != 1 || l[0] != "a" || net.get("a").Term() != 1 {
		t.Fatal(l)
	}
}

func TestPrevoteGrantChangesNothingOnTheVoter(t *testing.T) {
	c := follower(t, fspec{term: 1})
	step(t, c, voteMsg("b", 2, 0, 0, true))
	rd := drain(t, c)
	g := granted(rd.Messages, MsgPreVoteResp)
	if len(g) != 1 || g[0].Term != 2 || c.Term() != 1 || c.Vote() != "" || rd.HardState != nil {
		t.Fatal(rd)
	}
}

func TestPrevoteMajorityStartsTheRealElection(t *testing.T) {
	c := preCandidate(t)
	step(t, c, msg(MsgPreVoteResp, "b", "a", 2))
	if c.Role() != RoleCandidate || c.Term() != 2 || c.Vote() != "a" {
		t.Fatal(c.Role(), c.Term())
	}
}

func TestPrevoteRejectedByMajorityReturnsToFollowerInTheSameTerm(t *testing.T) {
	c := preCandidate(t)
	for _, p := range []string{"b", "c"} {
		m := msg(MsgPreVoteResp, p, "a", 1)
		m.Reject = true
		step(t, c, m)
	}
	if c.Role() != RoleFollower || c.Term() != 1 {
		t.Fatal(c.Role(), c.Term())
	}
}

// Thesis §9.6 / §4.2.3: a server that was partitioned away must not force
// the stable majority into a new term when it comes back.
func TestRejoiningNodeDoesNotDisruptAHealthyLeader(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.isolate("c")
	net.tick(nil, 3*E, true)
	net.heal()
	net.get("c").Campaign()
	net.process("c")
	net.deliver(func(d string, m Message) bool { return m.Src == "c" })
	net.tick(nil, 2*E, true)
	if l := net.leaders(); len(l) != 1 || l[0] != "a" {
		t.Fatal(l)
	}
	for _, id := range net.ids {
		if net.get(id).Term() != 1 {
			t.Fatal(id, net.get(id).Term())
		}
	}
	if net.get("c").Role() != RoleFollower || net.get("c").LeaderID() != "a" {
		t.Fatal(net.get("c").Role())
	}
}

// Thesis §4.2.3: "if a server receives a RequestVote request within the
// minimum election timeout of hearing from a current leader, it does not
// update its term or grant its vote."
func TestFollowerInLeaseIgnoresHigherTermVoteRequests(t *testing.T) {
	for _, pre := range []bool{false, true} {
		c := follower(t, fspec{term: 1, leader: "b", cfg: []func(*Config){noPreVote}})
		tickN(c, E-1)
		step(t, c, voteMsg("c", 5, 9, 9, pre))
		rd := drain(t, c)
		if c.Term() != 1 || c.Vote() != "" || c.LeaderID() != "b" || len(rd.Messages) != 0 || rd.HardState != nil {
			t.Fatal(pre, rd)
		}
	}
}

func TestLeaderIgnoresHigherTermVoteRequestWhileItHasALease(t *testing.T) {
	c := leader(t)
	step(t, c, voteMsg("c", 9, 9, 9, false))
	if !c.IsLeader() || c.Term() != 2 {
		t.Fatal(c.Role())
	}
	c = leader(t, noCheckQuorum)
	step(t, c, voteMsg("c", 9, 9, 9, false))
	if c.Role() != RoleFollower || c.Term() != 9 || c.Vote() != "c" {
		t.Fatal(c.Role(), c.Term(), c.Vote())
	}
}

func TestFollowerOutOfLeaseGrantsHigherTermVote(t *testing.T) {
	var c *Core
	for seed := int64(0); seed < 100; seed++ {
		c = follower(t, fspec{term: 1, leader: "b", seed: seed, cfg: []func(*Config){noPreVote}})
		if c.RandomizedTimeout() > E {
			break
		}
	}
	tickN(c, E)
	if c.Role() != RoleFollower {
		t.Fatal(c.Role())
	}
	step(t, c, voteMsg("c", 2, 0, 0, false))
	if len(granted(drain(t, c).Messages, MsgVoteResp)) != 1 || c.Term() != 2 || c.Vote() != "c" {
		t.Fatal(c.Term(), c.Vote())
	}
}

// Thesis §3.10: the transfer target's election must not be blocked by the
// followers' leases.
func TestForcedVoteOfALeadershipTransferBypassesTheLease(t *testing.T) {
	c := follower(t, fspec{term: 1, leader: "b"})
	m := voteMsg("c", 2, 0, 0, false)
	m.Force = true
	step(t, c, m)
	if len(granted(drain(t, c).Messages, MsgVoteResp)) != 1 || c.Term() != 2 || c.Vote() != "c" {
		t.Fatal(c.Term(), c.Vote())
	}
}

// ==================================================================================
// Check-quorum (thesis §6.2)
// ==================================================================================

func TestLeaderCutOffFromTheMajorityStepsDownAfterAnElectionTimeout(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.isolate("a")
	n := ticksUntil(t, net.get("a"), func(c *Core) bool { return !c.IsLeader() }, 3*E)
	if n < E || n > 2*E || net.get("a").Role() != RoleFollower || net.get("a").Term() != 1 {
		t.Fatal(n)
	}
}

func TestLeaderWithAnActiveMajorityStaysLeader(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.isolate("c")
	net.tick([]string{"a", "b"}, 5*E, true)
	if l := net.leaders(); len(l) != 1 || l[0] != "a" {
		t.Fatal(l)
	}
}

// ==================================================================================
// ReadIndex (thesis §6.4)
// ==================================================================================

// Thesis §6.4: the leader "issues a new round of heartbeats and waits for
// their acknowledgments from a majority of the cluster." An echo of a
// heartbeat sent before the request proves nothing about the present.
func TestReadIndexWaitsForAFreshHeartbeatRoundFromAMajority(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a := net.get("a")
	net.tick([]string{"a"}, 1, false)
	net.process("a")
	hbs := net.pending("", MsgHeartbeat)
	old := hbs[0].Context
	if !a.ReadIndex("r1") {
		t.Fatal("refused")
	}
	net.process("a")
	seen := map[uint64]bool{}
	for _, m := range net.pending("", MsgHeartbeat) {
		seen[m.Context] = true
	}
	if !reflect.DeepEqual(seen, map[uint64]bool{old: true, old + 1: true}) {
		t.Fatal(seen)
	}
	net.deliver(func(d string, m Message) bool { return m.Type == MsgHeartbeat && m.Context == old })
	net.processAll()
	net.deliver(func(d string, m Message) bool { return m.Type == MsgHeartbeatResp })
	net.process("a")
	if len(net.reads["a"]) != 0 {
		t.Fatal(net.reads["a"])
	}
	net.deliver(func(d string, m Message) bool { return m.Type == MsgHeartbeat && d == "b" })
	net.process("b")
	net.deliver(func(d string, m Message) bool { return m.Type == MsgHeartbeatResp })
	net.process("a")
	if r := net.reads["a"]; len(r) != 1 || r[0] != (ReadState{"r1", a.CommitIndex()}) {
		t.Fatal(r)
	}
}

// Thesis §6.4: "The leader needs to make sure it hasn't been superseded by a
// newer leader of which it is unaware."
func TestDeposedLeaderCutOffFromTheMajorityServesNoRead(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a := net.get("a")
	net.isolate("a")
	net.tick([]string{"b", "c"}, 3*E, true)
	var newLeader string
	for _, l := range net.leaders() {
		if l != "a" {
			newLeader = l
		}
	}
	if newLeader == "" || net.get(newLeader).Term() != 2 || !a.IsLeader() || a.Term() != 1 {
		t.Fatal(net.leaders())
	}
	a.ReadIndex("stale?")
	net.tick([]string{"a"}, 3, true)
	net.heal()
	net.tick([]string{"a"}, 1, true)
	if a.IsLeader() || a.Term() != 2 || len(net.reads["a"]) != 0 {
		t.Fatal(a.Role(), a.Term(), net.reads["a"])
	}
}

// Thesis §6.4: "If the leader has not yet marked an entry from its current
// term committed, it waits until it has done so."
func TestReadIndexWaitsForAnEntryOfTheCurrentTermToCommit(t *testing.T) {
	net := newNetwork(t, nil, nil)
	a := net.get("a")
	a.Campaign()
	holdApp := func(d string, m Message) bool { return m.Type == MsgAppend }
	net.stabilize(holdApp)
	if !a.IsLeader() || a.CommitIndex() != 0 || !a.ReadIndex("r") {
		t.Fatal(a.Role())
	}
	for i := 0; i < 3; i++ {
		net.tick([]string{"a"}, 1, false)
		net.stabilize(holdApp)
	}
	if len(net.reads["a"]) != 0 {
		t.Fatal(net.reads["a"])
	}
	net.stabilize(nil)
	if r := net.reads["a"]; len(r) != 1 || r[0] != (ReadState{"r", 1}) {
		t.Fatal(r)
	}
}

func TestReadIndexRequestedOnAFollowerIsForwardedToTheLeader(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	if !net.get("b").ReadIndex("rb") {
		t.Fatal("refused")
	}
	net.stabilize(nil)
	if r := net.reads["b"]; len(r) != 1 || r[0] != (ReadState{"rb", net.get("a").CommitIndex()}) {
		t.Fatal(r)
	}
	if f := net.sentOf(MsgReadIndex); len(f) != 1 || f[0].Src != "b" || f[0].Dst != "a" || len(net.reads["a"]) != 0 {
		t.Fatal(f)
	}
}

func TestReadIndexWithoutAKnownLeaderIsRefused(t *testing.T) {
	c := follower(t, fspec{term: 1})
	if c.ReadIndex("r") || len(drain(t, c).Messages) != 0 {
		t.Fatal("asked no one")
	}
}

func TestReadIndexOnASingleNodeIsAnsweredAtOnce(t *testing.T) {
	c := newCoreT(t, coreSpec{peers: []string{}})
	makeLeader(t, c)
	drain(t, c)
	if !c.ReadIndex("r") {
		t.Fatal("refused")
	}
	if r := drain(t, c).ReadStates; len(r) != 1 || r[0] != (ReadState{"r", 1}) {
		t.Fatal(r)
	}
}

// ==================================================================================
// InstallSnapshot (§7)
// ==================================================================================

// §7: "The leader uses a new RPC called InstallSnapshot to send snapshots to
// followers that are too far behind."
func TestLeaderSendsSnapshotToFollowerThatNeedsCompactedEntries(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a, c := net.get("a"), net.get("c")
	net.isolate("c")
	for i := 0; i < 5; i++ {
		a.Propose([]byte{byte('0' + i)})
		net.stabilize(nil)
	}
	net.tick([]string{"a"}, 1, true)
	snap := net.compact("a", a.AppliedIndex())
	if snap.Index != 6 {
		t.Fatal(snap.Index)
	}
	net.heal()
	net.tick([]string{"a"}, 1, true)
	if len(net.sentOf(MsgSnapshot)) != 1 || !reflect.DeepEqual(c.Snapshot(), snap) || !reflect.DeepEqual(*net.smSnap["c"], snap) {
		t.Fatal(c.Snapshot())
	}
	if c.CommitIndex() != 6 || len(c.LogEntries()) != 0 || net.progress("a", "c").State != ProgressReplicate {
		t.Fatal(c.CommitIndex())
	}
	a.Propose([]byte("after"))
	net.stabilize(nil)
	net.tick([]string{"a"}, 1, true)
	if !reflect.DeepEqual(c.LogEntries(), a.LogEntries()) || c.CommitIndex() != 7 || a.CommitIndex() != 7 {
		t.Fatal(c.LogEntries())
	}
	if ap := net.applied["c"]; len(ap) != 1 || string(ap[0].Data) != "after" {
		t.Fatal(ap)
	}
}

func TestLostSnapshotIsSentAgain(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a, c := net.get("a"), net.get("c")
	net.isolate("c")
	for i := 0; i < 3; i++ {
		a.Propose([]byte{byte('0' + i)})
		net.stabilize(nil)
	}
	net.tick([]string{"a"}, 1, true)
	snap := net.compact("a", a.AppliedIndex())
	net.heal()
	net.tick([]string{"a"}, 1, false)
	net.stabilize(func(d string, m Message) bool { return m.Type == MsgSnapshot })
	if n := net.drop(func(d string, m Message) bool { return m.Type == MsgSnapshot }); n != 1 {
		t.Fatal(n)
	}
	if net.progress("a", "c").State != ProgressSnapshot {
		t.Fatal(net.progress("a", "c").State)
	}
	net.tick([]string{"a"}, SnapshotRetryHeartbeats+1, true)
	if len(net.sentOf(MsgSnapshot)) != 2 || !reflect.DeepEqual(c.Snapshot(), snap) || c.CommitIndex() != snap.Index {
		t.Fatal(len(net.sentOf(MsgSnapshot)))
	}
}

// Figure 13, receiver: "7. Discard the entire log".
func TestSnapshotConflictingWithTheEntryAtItsIndexReplacesTheWholeLog(t *testing.T) {
	c := follower(t, fspec{term: 2, entries: ents(1, 1, 1, 1, 1)})
	snap := Snapshot{Index: 3, Term: 2, Data: []byte("state")}
	m := msg(MsgSnapshot, "b", "a", 2)
	m.Snapshot = &snap
	step(t, c, m)
	rd := drain(t, c)
	if rd.Snapshot == nil || !reflect.DeepEqual(*rd.Snapshot, snap) || len(rd.Entries) != 0 {
		t.Fatal(rd)
	}
	if !reflect.DeepEqual(c.Snapshot(), snap) || len(c.LogEntries()) != 0 || c.LastIndex() != 3 || c.CommitIndex() != 3 || c.AppliedIndex() != 3 {
		t.Fatal(c.Snapshot())
	}
	if r := rd.Messages; len(r) != 1 || r[0].Type != MsgAppendResp || r[0].Reject || r[0].Index != 3 {
		t.Fatal(r)
	}
	step(t, c, appendMsg("b", 2, 3, 2, entsFrom(4, 2), 4))
	if rd := drain(t, c); !reflect.DeepEqual(rd.Committed, entsFrom(4, 2)) {
		t.Fatal(rd.Committed)
	}
}

func TestLaggingFollowerWithConflictingEntryAtSnapshotIndexTakesTheSnapshot(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.load("a", 2, ents(1, 2, 2, 2), "")
	net.load("b", 2, ents(1, 2, 2, 2), "")
	net.load("c", 1, ents(1, 1, 1, 1, 1), "")
	net.isolate("c")
	net.elect("a")
	net.tick([]string{"a"}, 1, true)
	a, c := net.get("a"), net.get("c")
	if a.Term() != 3 || a.CommitIndex() != 5 {
		t.Fatal(a.Term(), a.CommitIndex())
	}
	snap := net.compact("a", 5)
	if tm, _ := c.TermAt(5); snap.Index != 5 || snap.Term != 3 || tm != 1 {
		t.Fatal(snap)
	}
	net.heal()
	net.tick([]string{"a"}, 1, true)
	if !reflect.DeepEqual(c.Snapshot(), snap) || len(c.LogEntries()) != 0 || len(net.storage["c"].entries) != 0 ||
		!reflect.DeepEqual(net.storage["c"].snap, snap) {
		t.Fatal(c.Snapshot())
	}
	a.Propose([]byte("y"))
	net.stabilize(nil)
	net.tick([]string{"a"}, 1, true)
	if !reflect.DeepEqual(c.LogEntries(), a.LogEntries()) || c.CommitIndex() != 6 {
		t.Fatal(c.LogEntries())
	}
}

// Figure 13, receiver 6: "If existing log entry has same index and term as
// snapshot's last included entry, retain log entries following it".
func TestSnapshotMatchingAnEntryWeHoldKeepsTheEntriesAfterIt(t *testing.T) {
	c := follower(t, fspec{term: 2, entries: ents(1, 2, 2, 2)})
	m := msg(MsgSnapshot, "b", "a", 2)
	m.Snapshot = &Snapshot{Index: 2, Term: 2, Data: []byte("s")}
	step(t, c, m)
	rd := drain(t, c)
	if rd.Snapshot != nil || !eqU64(termsOf(c.LogEntries()), []uint64{1, 2, 2, 2}) || c.CommitIndex() != 2 {
		t.Fatal(rd)
	}
	if r := rd.Messages; len(r) != 1 || r[0].Reject || r[0].Index != 2 {
		t.Fatal(r)
	}
}

func TestSnapshotAtOrBelowOurCommitIndexChangesNothing(t *testing.T) {
	c := follower(t, fspec{term: 2})
	step(t, c, appendMsg("b", 2, 0, 0, ents(2, 2, 2), 3))
	drain(t, c)
	m := msg(MsgSnapshot, "b", "a", 2)
	m.Snapshot = &Snapshot{Index: 2, Term: 2, Data: []byte("old")}
	step(t, c, m)
	rd := drain(t, c)
	if rd.Snapshot != nil || len(c.LogEntries()) != 3 || len(rd.Messages) != 1 || rd.Messages[0].Index != 3 {
		t.Fatal(rd)
	}
}

// ==================================================================================
// Leadership transfer (thesis §3.10)
// ==================================================================================

func TestLeadershipTransferToAnUpToDateFollower(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.get("a").TransferLeadership("b")
	net.stabilize(nil)
	if tn := net.sentOf(MsgTimeoutNow); len(tn) != 1 || tn[0].Src != "a" || tn[0].Dst != "b" {
		t.Fatal(tn)
	}
	if l := net.leaders(); len(l) != 1 || l[0] != "b" || net.get("b").Term() != 2 {
		t.Fatal(l)
	}
	if net.get("a").Role() != RoleFollower || net.get("a").LeaderID() != "b" {
		t.Fatal(net.get("a").Role())
	}
}

func TestLeadershipTransferToALaggingFollowerWaitsUntilItCaughtUp(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a := net.get("a")
	net.cut[link{"a", "b"}] = true
	a.Propose([]byte("x"))
	a.Propose([]byte("y"))
	net.stabilize(nil)
	if net.get("b").LastIndex() != 1 || a.CommitIndex() != 3 {
		t.Fatal(net.get("b").LastIndex(), a.CommitIndex())
	}
	net.heal()
	a.TransferLeadership("b")
	net.process("a")
	if len(net.pending("", MsgTimeoutNow)) != 0 {
		t.Fatal("too early")
	}
	net.stabilize(nil)
	if l := net.leaders(); len(l) != 1 || l[0] != "b" {
		t.Fatal(l)
	}
	if e := net.get("b").LogEntries(); string(e[1].Data) != "x" || string(e[2].Data) != "y" {
		t.Fatal(e)
	}
}

func TestProposalsAreRefusedDuringALeadershipTransfer(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.isolate("b")
	net.get("a").TransferLeadership("b")
	if res := net.get("a").Propose([]byte("x")); res.Accepted || res.LeaderHint != "b" || res.Refusal != RefusalTransferring {
		t.Fatal(res)
	}
}

func TestTransferIsAbandonedAfterAnElectionTimeout(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.isolate("b")
	net.get("a").TransferLeadership("b")
	net.tick([]string{"a", "c"}, E, true)
	if !net.get("a").IsLeader() || !net.get("a").Propose([]byte("x")).Accepted {
		t.Fatal(net.get("a").Role())
	}
}

func TestProposalOnAFollowerIsRefusedWithALeaderHint(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	if res := net.get("b").Propose([]byte("x")); res.Accepted || res.LeaderHint != "a" || res.Refusal != RefusalNotLeader {
		t.Fatal(res)
	}
	if net.get("b").LastIndex() != 1 {
		t.Fatal(net.get("b").LastIndex())
	}
	if res := follower(t, fspec{term: 1}).Propose([]byte("x")); res.Accepted || res.LeaderHint != "" {
		t.Fatal(res)
	}
}

// ==================================================================================
// Flow control (thesis ch. 10)
// ==================================================================================

func TestAtMostMaxInflightAppendsAreUnacknowledged(t *testing.T) {
	net := newNetwork(t, nil, nil, maxInflight(2))
	net.elect("a")
	a := net.get("a")
	for i := 0; i < 5; i++ {
		a.Propose([]byte{byte('0' + i)})
		net.process("a")
	}
	if n := len(net.pending("b", MsgAppend)); n != 2 {
		t.Fatal(n)
	}
	if pr := net.progress("a", "b"); pr.Inflight != 2 {
		t.Fatal(pr)
	}
	net.stabilize(nil)
	if !reflect.DeepEqual(net.get("b").LogEntries(), a.LogEntries()) {
		t.Fatal(net.get("b").LogEntries())
	}
}

func TestAppendBatchesAreBoundedByMaxMsgBytes(t *testing.T) {
	size := 100 + 32
	net := newNetwork(t, nil, nil, maxMsgBytes(2*size))
	net.elect("a")
	a := net.get("a")
	for i := 0; i < 7; i++ {
		data := make([]byte, 100)
		for k := range data {
			data[k] = byte(i)
		}
		a.Propose(data)
	}
	net.process("a")
	var counts []uint64
	var idx []uint64
	for _, m := range net.pending("b", MsgAppend) {
		counts = append(counts, uint64(len(m.Entries)))
		for _, e := range m.Entries {
			idx = append(idx, e.Index)
		}
	}
	if !eqU64(counts, []uint64{2, 2, 2, 1}) || !eqU64(idx, []uint64{2, 3, 4, 5, 6, 7, 8}) {
		t.Fatal(counts, idx)
	}
	net.stabilize(nil)
	if !reflect.DeepEqual(net.get("b").LogEntries(), a.LogEntries()) {
		t.Fatal("logs differ")
	}
}

func TestProbingFollowerGetsOneAppendAtATime(t *testing.T) {
	net := newNetwork(t, nil, nil)
	a := net.get("a")
	a.Campaign()
	toB := func(d string, m Message) bool { return d == "b" && (m.Type == MsgAppend || m.Type == MsgHeartbeat) }
	net.stabilize(toB)
	if !a.IsLeader() || net.progress("a", "b").State != ProgressProbe {
		t.Fatal(a.Role())
	}
	for i := 0; i < 3; i++ {
		a.Propose([]byte{byte('0' + i)})
		net.process("a")
	}
	if n := len(net.pending("b", MsgAppend)); n != 1 {
		t.Fatal(n)
	}
	net.stabilize(nil)
	if !reflect.DeepEqual(net.get("b").LogEntries(), a.LogEntries()) || net.progress("a", "b").State != ProgressReplicate {
		t.Fatal("not in step")
	}
}

// -- a dropped connection to the leader (transport hint) --------------------------

func TestLeaderConnectionDropEndsTheLeaseAndCampaignsWithinThreeTicks(t *testing.T) {
	c := follower(t, fspec{term: 1, leader: "b"})
	step(t, c, voteMsg("c", 2, 0, 0, true))
	if len(drain(t, c).Messages) != 0 {
		t.Fatal("in lease: the pre-vote is ignored")
	}
	c.PeerUnreachable("b")
	step(t, c, voteMsg("c", 2, 0, 0, true))
	if len(granted(drain(t, c).Messages, MsgPreVoteResp)) != 1 {
		t.Fatal("the lease is over")
	}
	if n := ticksUntil(t, c, func(c *Core) bool { return c.Role() == RolePreCandidate }, 1000); n < 1 || n > 3 {
		t.Fatal(n)
	}
}

func TestADroppedConnectionToANonLeaderChangesNothing(t *testing.T) {
	c := follower(t, fspec{term: 1, leader: "b"})
	elapsed, timeout := c.ElectionElapsed(), c.RandomizedTimeout()
	c.PeerUnreachable("c")
	if c.ElectionElapsed() != elapsed || c.RandomizedTimeout() != timeout {
		t.Fatal("changed")
	}
	l := leader(t)
	l.PeerUnreachable("b")
	if !l.IsLeader() {
		t.Fatal(l.Role())
	}
}
