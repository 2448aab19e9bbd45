package raft

import (
	"reflect"
	"sort"
	"testing"
)

// Each mutation (tests/sim/mutations.py) in a hand-built scenario: the
// correct core keeps the rule, the mutated one visibly breaks it.

func mut(name string) map[string]bool { return map[string]bool{name: true} }

func TestMutationNamesAreThePythonOnes(t *testing.T) {
	want := []string{
		"append_commit_past_batch", "config_before_own_term_commit", "forget_hard_state", "forget_vote",
		"heartbeat_commit", "learner_counts_in_quorum", "old_term_commit", "read_without_quorum",
		"stale_append", "two_configs_in_flight", "vote_ignores_log", "vote_only_with_term",
	}
	got := MutationNames()
	if !sort.StringsAreSorted(got) || !reflect.DeepEqual(got, want) {
		t.Fatal(got)
	}
	if _, err := NewCore("a", nil, testConfig(), newRand(), Options{Mutations: mut("no_such_bug")}); err == nil {
		t.Fatal("unknown mutation accepted")
	}
	for _, n := range got {
		if _, err := NewCore("a", nil, testConfig(), newRand(), Options{Mutations: mut(n)}); err != nil {
			t.Fatal(n, err)
		}
	}
}

// old_term_commit: §5.4.2, "Raft never commits log entries from previous
// terms by counting replicas."
func TestMutationOldTermCommit(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		var m map[string]bool
		if mutated {
			m = mut(MutOldTermCommit)
		}
		c := follower(t, fspec{term: 2, entries: ents(1, 2), mut: m})
		makeLeader(t, c) // term 3, no-op at 3
		ack := msg(MsgAppendResp, "b", "a", 3)
		ack.Index = 2
		step(t, c, ack)
		want := uint64(0)
		if mutated {
			want = 2 // BUG: 2@2 counted on a majority and committed
		}
		if c.CommitIndex() != want {
			t.Fatal(mutated, c.CommitIndex())
		}
	}
	// Figure 8 with the bug: S1 commits 2@2, which S5 then overwrites.
	net := runFigure8(t, mut(MutOldTermCommit))
	if net.get("s1").CommitIndex() < 2 {
		t.Fatal(net.get("s1").CommitIndex())
	}
}

// append_commit_past_batch: the issue-16 case. The follower holds 1@1 2@1
// 3@2; a term-3 leader (1@1 2@1 3@3, commit 3) sends a batch-limited append
// carrying only entry 2. The correct core commits through 2 only; the
// mutated one commits its own 3@2, which the leader's log does not hold.
func TestMutationAppendCommitPastBatch(t *testing.T) {
	c, _ := issue16BatchLimitedAppend(t, nil)
	if c.CommitIndex() != 2 {
		t.Fatal(c.CommitIndex())
	}
	c, rd := issue16BatchLimitedAppend(t, mut(MutAppendCommitPastBatch))
	if c.CommitIndex() != 3 || len(rd.Committed) != 3 || rd.Committed[2].Term != 2 {
		t.Fatal(c.CommitIndex(), rd.Committed)
	}
	// The leader's next batch (prev 2) is below the follower's commit index,
	// so it is answered "matching through 3": the leader believes the
	// follower holds 3@3, and the committed 3@2 stays for good.
	step(t, c, appendMsg("b", 3, 2, 1, ents(1, 1, 3)[2:], 3))
	rd = drain(t, c)
	if r := ofType(rd.Messages, MsgAppendResp); len(r) != 1 || r[0].Reject || r[0].Index != 3 ||
		!eqU64(termsOf(c.LogEntries()), []uint64{1, 1, 2}) {
		t.Fatal(r, termsOf(c.LogEntries()))
	}
}

// heartbeat_commit: a heartbeat's commit hint is bounded by what an append
// of this term confirmed.
func TestMutationHeartbeatCommit(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		var m map[string]bool
		if mutated {
			m = mut(MutHeartbeatCommit)
		}
		c := follower(t, fspec{term: 2, entries: ents(1, 1, 1, 1, 1), mut: m})
		hb := msg(MsgHeartbeat, "b", Broadcast, 2)
		hb.Commit = 5
		step(t, c, hb)
		want := uint64(0)
		if mutated {
			want = 5 // BUG: the stale term-1 suffix is committed
		}
		if c.CommitIndex() != want {
			t.Fatal(mutated, c.CommitIndex())
		}
	}
}

// vote_ignores_log: §5.4.1, the voter denies its vote to a candidate whose
// log is behind.
func TestMutationVoteIgnoresLog(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		var m map[string]bool
		if mutated {
			m = mut(MutVoteIgnoresLog)
		}
		c := follower(t, fspec{term: 2, entries: ents(1, 2), mut: m})
		step(t, c, voteMsg("b", 3, 1, 1, false))
		if g := len(granted(drain(t, c).Messages, MsgVoteResp)) == 1; g != mutated {
			t.Fatal(mutated, g)
		}
	}
}

// stale_append: §5.1, a request with a stale term is rejected, and the reply
// carries our term.
func TestMutationStaleAppend(t *testing.T) {
	c := follower(t, fspec{term: 3, entries: ents(1, 1), mut: mut(MutStaleAppend)})
	step(t, c, appendMsg("b", 2, 2, 1, entsFrom(3, 2), 2))
	rd := drain(t, c)
	if !eqU64(termsOf(c.LogEntries()), []uint64{1, 1, 2}) || c.CommitIndex() != 2 {
		t.Fatal(termsOf(c.LogEntries()), c.CommitIndex())
	}
	if r := rd.Messages; len(r) != 1 || r[0].Term != 2 || r[0].Reject || r[0].Index != 3 {
		t.Fatal(r) // BUG: the deposed leader counts this as a success of its term
	}
}

// voteTwiceAfterRestart grants b's vote in term 2, restarts the node from
// what its Ready asked to persist, and asks again for c.
func voteTwiceAfterRestart(t *testing.T, m map[string]bool) bool {
	net := newNetwork(t, nil, nil, noPreVote)
	net.mutations = m
	net.boot("a")
	step(t, net.get("a"), voteMsg("b", 2, 0, 0, false))
	net.process("a")
	net.crash("a")
	net.restart("a")
	step(t, net.get("a"), voteMsg("c", 2, 0, 0, false))
	return len(granted(drain(t, net.get("a")).Messages, MsgVoteResp)) == 1
}

// forget_hard_state: Figure 2, votedFor is persisted before responding.
func TestMutationForgetHardState(t *testing.T) {
	if voteTwiceAfterRestart(t, nil) {
		t.Fatal("correct core voted twice in one term")
	}
	if !voteTwiceAfterRestart(t, mut(MutForgetHardState)) {
		t.Fatal("mutated core did not vote twice")
	}
}

// forget_vote: the term is persisted, the vote is not.
func TestMutationForgetVote(t *testing.T) {
	c := follower(t, fspec{term: 1, mut: mut(MutForgetVote)})
	step(t, c, voteMsg("b", 2, 0, 0, false))
	rd := c.Ready()
	if rd.HardState == nil || *rd.HardState != (HardState{2, ""}) || len(granted(rd.Messages, MsgVoteResp)) != 1 {
		t.Fatal(rd.HardState)
	}
	c.Advance(rd)
	if c.HasReady() || c.Vote() != "b" {
		t.Fatal("the core should believe the vote was written")
	}
	if !voteTwiceAfterRestart(t, mut(MutForgetVote)) {
		t.Fatal("mutated core did not vote twice")
	}
}

// vote_only_with_term: a vote granted in a term already persisted must be
// persisted too.
func TestMutationVoteOnlyWithTerm(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		var m map[string]bool
		if mutated {
			m = mut(MutVoteOnlyWithTerm)
		}
		c := follower(t, fspec{term: 1, entries: ents(1), mut: m})
		step(t, c, voteMsg("b", 2, 0, 0, false)) // rejected: term 2 written, no vote
		drain(t, c)
		step(t, c, voteMsg("c", 2, 1, 1, false))
		rd := c.Ready()
		if len(granted(rd.Messages, MsgVoteResp)) != 1 || (rd.HardState == nil) != mutated {
			t.Fatal(mutated, rd.HardState)
		}
	}
}

// read_without_quorum: thesis §6.4, a read index waits for a heartbeat round
// acknowledged by a majority.
func TestMutationReadWithoutQuorum(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		net := newNetwork(t, nil, nil)
		if mutated {
			net.mutations = mut(MutReadWithoutQuorum)
			net.boot("a")
		}
		net.elect("a")
		net.isolate("a") // it may have been deposed: nobody answers
		net.get("a").ReadIndex("r")
		net.stabilize(nil)
		if (len(net.reads["a"]) == 1) != mutated {
			t.Fatal(mutated, net.reads["a"])
		}
	}
}

// config_before_own_term_commit: a leader proposes a membership change only
// once it has committed an entry of its own term.
func TestMutationConfigBeforeOwnTermCommit(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		net := newNetwork(t, nil, nil)
		if mutated {
			net.mutations = mut(MutConfigBeforeOwnTermCommit)
			net.boot("a")
		}
		net.get("a").Campaign()
		net.stabilize(func(d string, m Message) bool { return m.Type == MsgAppend })
		if !net.get("a").IsLeader() {
			t.Fatal(net.get("a").Role())
		}
		res := net.get("a").ProposeMembership(ConfChange{Type: ChangeRemove, Node: "c"}, nil)
		if res.Accepted != mutated {
			t.Fatal(mutated, res)
		}
	}
}

// two_configs_in_flight: at most one membership change is in flight.
func TestMutationTwoConfigsInFlight(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		var m map[string]bool
		if mutated {
			m = mut(MutTwoConfigsInFlight)
		}
		c := follower(t, fspec{term: 1, mut: m})
		makeLeader(t, c)
		ack := msg(MsgAppendResp, "b", "a", 2)
		ack.Index = 1
		step(t, c, ack) // the no-op commits
		if !c.ProposeMembership(ConfChange{Type: ChangeAddLearner, Node: "d"}, nil).Accepted {
			t.Fatal("first refused")
		}
		if res := c.ProposeMembership(ConfChange{Type: ChangeAddLearner, Node: "e"}, nil); res.Accepted != mutated {
			t.Fatal(mutated, res)
		}
	}
}

// learner_counts_in_quorum: a learner never counts toward a quorum.
func TestMutationLearnerCountsInQuorum(t *testing.T) {
	for _, mutated := range []bool{false, true} {
		net := joining(t, []string{"d"})
		if mutated {
			// Reboot a from its disk with the bug, and elect it again.
			net.mutations = mut(MutLearnerCountsInQuorum)
			net.crash("a")
			net.restart("a")
			net.tick([]string{"b", "c"}, 3*E, true)
			for _, l := range net.leaders() {
				net.get(l).TransferLeadership("a")
			}
			net.stabilize(nil)
			net.tick(nil, 2, true)
			if !net.get("a").IsLeader() {
				t.Fatal(net.leaders())
			}
		}
		change(net, "a", ChangeAddLearner, "d")
		commitOne(t, net, "a")
		net.partition([]string{"a", "d"}, []string{"b", "c"})
		before := net.get("a").CommitIndex()
		net.get("a").Propose([]byte("y"))
		net.stabilize(nil)
		if (net.get("a").CommitIndex() > before) != mutated {
			t.Fatal(mutated, before, net.get("a").CommitIndex())
		}
	}
}
