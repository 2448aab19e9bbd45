package raft

import (
	"reflect"
	"testing"
)

// ==================================================================================
// §5.3 Log replication
// ==================================================================================

// §5.3: "When sending an AppendEntries RPC, the leader includes the index and
// term of the entry in its log that immediately precedes the new entries."
func TestLeaderAppendCarriesPrevIndexPrevTermAndCommit(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a := net.get("a")
	res := a.Propose([]byte("x"))
	if !res.Accepted || res.Index != 2 || res.Term != 1 {
		t.Fatal(res)
	}
	net.process("a")
	apps := net.pending("", MsgAppend)
	if len(apps) != 2 {
		t.Fatal(apps)
	}
	for _, m := range apps {
		if m.LogIndex != 1 || m.LogTerm != 1 || m.Commit != 1 ||
			!reflect.DeepEqual(m.Entries, []Entry{{2, 1, EntryCommand, []byte("x")}}) {
			t.Fatal(m)
		}
	}
}

// §5.3: "If the follower does not find an entry in its log with the same
// index and term, then it refuses the new entries." The rejection points the
// leader at the last index whose term is at most prevLogTerm.
func TestFollowerRejectsAppendWhosePrevEntryDoesNotMatch(t *testing.T) {
	for _, tc := range []struct{ prevI, prevT, hintI, hintT uint64 }{{4, 2, 3, 2}, {3, 1, 2, 1}} {
		c := follower(t, fspec{term: 2, entries: ents(1, 1, 2)})
		step(t, c, appendMsg("b", 2, tc.prevI, tc.prevT, []Entry{{Index: tc.prevI + 1, Term: 2}}, 3))
		rd := drain(t, c)
		if !eqU64(termsOf(c.LogEntries()), []uint64{1, 1, 2}) || c.CommitIndex() != 0 || len(rd.Messages) != 1 {
			t.Fatal(rd.Messages)
		}
		r := rd.Messages[0]
		if r.Type != MsgAppendResp || !r.Reject || r.Index != tc.prevI || r.RejectHint != tc.hintI || r.LogTerm != tc.hintT {
			t.Fatal(r)
		}
	}
}

// Figure 7: the leader's log (term 8) and the possible follower logs (a)-(f).
var figure7Leader = []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}
var figure7Followers = map[string][]uint64{
	"a": {1, 1, 1, 4, 4, 5, 5, 6, 6},
	"b": {1, 1, 1, 4},
	"c": {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},
	"d": {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},
	"e": {1, 1, 1, 4, 4, 4, 4},
	"f": {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},
}

// Rejected AppendEntries before the logs agree (naive back-off would take
// a:1 b:6 c:0 d:0 e:5 f:7).
var figure7Rejections = map[string]int{"a": 1, "b": 1, "c": 0, "d": 0, "e": 1, "f": 1}

// shuttle exchanges appends and replies between two cores until they are
// quiet; it returns the rejections the follower sent.
func shuttle(t *testing.T, lead, fol *Core, first []Message) []Message {
	var rejections []Message
	out := first
	for i := 0; i < 50; i++ {
		var apps []Message
		for _, m := range ofType(out, MsgAppend, MsgSnapshot) {
			if m.Dst == fol.ID() {
				apps = append(apps, m)
			}
		}
		if len(apps) == 0 {
			return rejections
		}
		for _, m := range apps {
			step(t, fol, m)
		}
		for _, r := range ofType(drain(t, fol).Messages, MsgAppendResp) {
			if r.Reject {
				rejections = append(rejections, r)
			}
			step(t, lead, r)
		}
		out = drain(t, lead).Messages
	}
	t.Fatal("replication did not settle")
	return nil
}

// §5.3: "the leader handles inconsistencies by forcing the followers' logs
// to duplicate its own" — and (thesis §5.3) one round trip per conflicting
// term, not per entry.
func TestLeaderForcesFollowerLogsOfFigure7ToMatchItsOwn(t *testing.T) {
	for name, fl := range figure7Followers {
		t.Run(name, func(t *testing.T) {
			lead := newCoreT(t, coreSpec{id: "l", peers: []string{"f", "v"}, hs: HardState{Term: 7}, entries: ents(figure7Leader...)})
			rd := makeLeader(t, lead)
			if lead.Term() != 8 {
				t.Fatal(lead.Term())
			}
			fol := newCoreT(t, coreSpec{id: "f", peers: []string{"l", "v"}, hs: HardState{Term: 7}, entries: ents(fl...)})
			rej := shuttle(t, lead, fol, rd.Messages)
			if !reflect.DeepEqual(fol.LogEntries(), lead.LogEntries()) ||
				!eqU64(termsOf(fol.LogEntries()), append(append([]uint64{}, figure7Leader...), 8)) {
				t.Fatal(termsOf(fol.LogEntries()))
			}
			if lead.CommitIndex() != 11 || len(rej) != figure7Rejections[name] {
				t.Fatal(lead.CommitIndex(), len(rej))
			}
			if pr, _ := lead.Progress("f"); pr.State != ProgressReplicate {
				t.Fatal(pr.State)
			}
		})
	}
}

// Figure 2, AppendEntries receiver: "3. If an existing entry conflicts with a
// new one ..., delete the existing entry and all that follow it. 4. Append
// any new entries not already in the log."
func TestFollowerDeletesConflictingEntriesAndKeepsAgreeingOnes(t *testing.T) {
	c := follower(t, fspec{term: 2, entries: ents(1, 1, 1, 1)})
	step(t, c, appendMsg("b", 2, 0, 0, []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 2}}, 0))
	rd := drain(t, c)
	if !eqU64(termsOf(c.LogEntries()), []uint64{1, 1, 2}) || !reflect.DeepEqual(rd.Entries, []Entry{{Index: 3, Term: 2}}) {
		t.Fatal(rd.Entries)
	}
	if r := rd.Messages[0]; r.Reject || r.Index != 3 {
		t.Fatal(r)
	}
}

// Figure 2 rule 3 deletes entries only on a conflict: a reordered, shorter
// append must not cut off entries already acknowledged.
func TestDelayedShorterAppendDoesNotTruncateTheLog(t *testing.T) {
	c := follower(t, fspec{term: 2})
	first := appendMsg("b", 2, 0, 0, ents(2, 2), 0)
	step(t, c, first)
	step(t, c, appendMsg("b", 2, 2, 2, entsFrom(3, 2, 2), 0))
	drain(t, c)
	step(t, c, first)
	rd := drain(t, c)
	if !eqU64(termsOf(c.LogEntries()), []uint64{2, 2, 2, 2}) || len(rd.Entries) != 0 {
		t.Fatal(c.LogEntries())
	}
	if len(rd.Messages) != 1 || rd.Messages[0].Reject || rd.Messages[0].Index != 2 {
		t.Fatal(rd.Messages)
	}
}

// §5.3: "the leader retries AppendEntries RPCs indefinitely ... until all
// followers eventually store all log entries."
func TestLeaderRetriesLostAppendsUntilTheFollowerStoresTheEntry(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a, b := net.get("a"), net.get("b")
	a.Propose([]byte("x"))
	net.process("a")
	if n := net.drop(func(d string, m Message) bool { return d == "b" && m.Type == MsgAppend }); n != 1 {
		t.Fatal(n)
	}
	net.stabilize(func(d string, m Message) bool { return d == "b" })
	if a.CommitIndex() != 2 || b.LastIndex() != 1 {
		t.Fatal(a.CommitIndex(), b.LastIndex())
	}
	net.drop(nil)
	net.tick([]string{"a"}, 1, true)
	if !reflect.DeepEqual(b.LogEntries(), a.LogEntries()) {
		t.Fatal(b.LogEntries())
	}
	net.tick([]string{"a"}, 1, true)
	if b.CommitIndex() != 2 {
		t.Fatal(b.CommitIndex())
	}
}

// §5.3: "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers."
func TestLeaderCommitsEntryOnceStoredOnAMajority(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	a := net.get("a")
	index := a.Propose([]byte("x")).Index
	net.stabilize(func(d string, m Message) bool { return d == "c" })
	if a.CommitIndex() != index || net.get("b").LastIndex() != index || net.get("c").LastIndex() != index-1 {
		t.Fatal(a.CommitIndex())
	}
}

func TestLeaderDoesNotCommitWithoutAMajority(t *testing.T) {
	net := newNetwork(t, []string{"a", "b", "c", "d", "e"}, nil)
	net.elect("a")
	a := net.get("a")
	index := a.Propose([]byte("x")).Index
	net.stabilize(func(d string, m Message) bool { return d == "c" || d == "d" || d == "e" })
	if net.get("b").LastIndex() != index || a.CommitIndex() != index-1 {
		t.Fatal(a.CommitIndex())
	}
	net.stabilize(nil)
	if a.CommitIndex() != index {
		t.Fatal(a.CommitIndex())
	}
}

// §5.3: "This also commits all preceding entries in the leader's log,
// including entries created by previous leaders."
func TestCommittingACurrentTermEntryCommitsPrecedingEntriesOfOldTerms(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.load("a", 2, ents(1, 2), "")
	net.load("b", 2, ents(1, 2), "")
	net.load("c", 2, ents(1), "")
	net.elect("a")
	if net.get("a").Term() != 3 {
		t.Fatal(net.get("a").Term())
	}
	for _, id := range []string{"a", "b", "c"} {
		var got []uint64
		for _, e := range net.applied[id] {
			got = append(got, e.Index*10+e.Term)
		}
		if net.get(id).CommitIndex() != 3 || !eqU64(got, []uint64{11, 22, 33}) {
			t.Fatal(id, got)
		}
	}
}

// §5.4.2: "Raft never commits log entries from previous terms by counting
// replicas."
func TestLeaderOnlyCommitsEntriesOfItsOwnTermByCountingReplicas(t *testing.T) {
	c := follower(t, fspec{term: 2, entries: ents(1, 2)})
	makeLeader(t, c)
	for _, tc := range []struct{ index, want uint64 }{{1, 0}, {2, 0}, {3, 3}} {
		m := msg(MsgAppendResp, "b", "a", 3)
		m.Index = tc.index
		step(t, c, m)
		if c.CommitIndex() != tc.want {
			t.Fatal(tc, c.CommitIndex())
		}
	}
}

// figure8Cluster is Figure 8 (c): S1 (restarted) campaigns in term 4 holding
// index 2 from term 2; S2 also has it, S5 holds a different index 2 from
// term 3. Appends carry a single entry.
func figure8Cluster(t *testing.T, mut map[string]bool) *network {
	ids := []string{"s1", "s2", "s3", "s4", "s5"}
	net := newNetwork(t, ids, nil, noPreVote, noCheckQuorum, maxMsgBytes(1))
	net.mutations = mut
	net.load("s1", 3, ents(1, 2), "")
	net.load("s2", 3, ents(1, 2), "")
	net.load("s3", 3, ents(1), "")
	net.load("s4", 3, ents(1), "")
	net.load("s5", 3, ents(1, 3), "s5")
	net.crash("s5")
	net.get("s1").Campaign()
	net.stabilize(func(d string, m Message) bool { return m.Type == MsgAppend })
	if l := net.leaders(); len(l) != 1 || l[0] != "s1" || net.get("s1").Term() != 4 {
		t.Fatal(l)
	}
	return net
}

// runFigure8 plays Figure 8 (c)-(d); it returns the network afterwards.
func runFigure8(t *testing.T, mut map[string]bool) *network {
	net := figure8Cluster(t, mut)
	net.deliver(func(d string, m Message) bool { return m.Type == MsgAppend && (d == "s2" || d == "s3") })
	net.drop(func(d string, m Message) bool { return m.Type == MsgAppend })
	for i := 0; i < 4; i++ {
		net.processAll()
		net.drop(func(d string, m Message) bool {
			return m.Type == MsgAppend && d == "s3" && m.Entries[len(m.Entries)-1].Index > 2
		})
		net.deliver(func(d string, m Message) bool { return d == "s1" || d == "s3" })
	}
	return net
}

// §5.4.2 and Figure 8: "a log entry [from a previous term] ... stored on a
// majority of servers could still be overwritten by a future leader."
func TestFigure8OldTermEntryOnAMajorityIsNotCommitted(t *testing.T) {
	net := runFigure8(t, nil)
	s1 := net.get("s1")
	if !eqU64(termsOf(net.get("s2").LogEntries()), []uint64{1, 2, 4}) || !eqU64(termsOf(net.get("s3").LogEntries()), []uint64{1, 2}) {
		t.Fatal(net.get("s3").LogEntries())
	}
	if net.progress("s1", "s2").Match != 3 || net.progress("s1", "s3").Match != 2 || s1.CommitIndex() != 0 {
		t.Fatal(s1.CommitIndex())
	}
	// (d): S1 crashes, S5 comes back and is elected by S3, S4 (and itself).
	net.crash("s1")
	net.drop(nil)
	net.restart("s5")
	for i := 0; i < 2; i++ {
		net.get("s5").Campaign()
		net.stabilize(nil)
	}
	if l := net.leaders(); len(l) != 1 || l[0] != "s5" || net.get("s5").Term() != 5 {
		t.Fatal(l)
	}
	for _, id := range []string{"s2", "s3", "s4"} {
		if !eqU64(termsOf(net.get(id).LogEntries()), []uint64{1, 3, 5}) {
			t.Fatal(id, termsOf(net.get(id).LogEntries()))
		}
	}
	for _, id := range net.ids {
		for _, e := range net.applied[id] {
			if e.Index == 2 && e.Term == 2 {
				t.Fatal(id, "applied 2@2")
			}
		}
	}
}

// Figure 8 (e): "if S1 replicates an entry from its current term on a
// majority of the servers before crashing ... then this entry is committed
// (S5 cannot win an election)."
func TestFigure8CurrentTermEntryOnAMajorityCommitsAndProtectsOldEntries(t *testing.T) {
	net := figure8Cluster(t, nil)
	net.stabilize(func(d string, m Message) bool { return d == "s4" || m.Src == "s4" })
	if net.get("s1").CommitIndex() != 3 || !eqU64(termsOf(net.get("s3").LogEntries()), []uint64{1, 2, 4}) {
		t.Fatal(net.get("s1").CommitIndex())
	}
	net.crash("s1")
	net.drop(nil)
	net.restart("s5")
	net.get("s5").Campaign()
	net.stabilize(nil)
	if net.get("s5").IsLeader() || !eqU64(termsOf(net.get("s2").LogEntries())[:2], []uint64{1, 2}) {
		t.Fatal("s5 won")
	}
}

// Ready contract: an entry is "replicated" on the leader only once the
// leader has persisted it.
func TestLeaderCountsItsOwnEntryOnlyOnceItIsDurable(t *testing.T) {
	c := leader(t)
	m := msg(MsgAppendResp, "b", "a", 2)
	m.Index = 1
	step(t, c, m)
	if c.CommitIndex() != 1 {
		t.Fatal(c.CommitIndex())
	}
	res := c.Propose([]byte("x"))
	rd := c.Ready()
	if !reflect.DeepEqual(rd.Entries, []Entry{{2, 2, EntryCommand, []byte("x")}}) {
		t.Fatal(rd.Entries)
	}
	m.Index = 2
	step(t, c, m)
	if c.CommitIndex() != 1 {
		t.Fatal(c.CommitIndex())
	}
	c.Advance(rd)
	if c.CommitIndex() != res.Index || res.Index != 2 {
		t.Fatal(c.CommitIndex())
	}
}

func TestSingleNodeCommitsAndAppliesOnlyAfterPersisting(t *testing.T) {
	c := newCoreT(t, coreSpec{peers: []string{}})
	rd := makeLeader(t, c)
	if len(rd.Entries) != 1 || rd.Entries[0].Kind != EntryNoop || len(rd.Committed) != 0 {
		t.Fatal(rd)
	}
	if rd := drain(t, c); len(rd.Committed) != 1 || rd.Committed[0].Index != 1 {
		t.Fatal(rd.Committed)
	}
	c.Propose([]byte("x"))
	if rd := drain(t, c); len(rd.Entries) == 0 || len(rd.Committed) != 0 {
		t.Fatal(rd)
	}
	if rd := drain(t, c); len(rd.Committed) != 1 || string(rd.Committed[0].Data) != "x" {
		t.Fatal(rd.Committed)
	}
}

// Figure 2, AppendEntries receiver: "5. If leaderCommit > commitIndex, set
// commitIndex = min(leaderCommit, index of last new entry)."
func TestFollowerCommitFromAppendIsMinOfLeaderCommitAndLastNewEntry(t *testing.T) {
	for _, tc := range []struct{ lc, want uint64 }{{0, 0}, {2, 2}, {3, 3}, {7, 3}} {
		c := follower(t, fspec{term: 2})
		step(t, c, appendMsg("b", 2, 0, 0, ents(2, 2, 2), tc.lc))
		drain(t, c)
		if c.CommitIndex() != tc.want {
			t.Fatal(tc, c.CommitIndex())
		}
	}
}

// Figure 2 receiver rule 5 is bounded by "index of last new entry", not our
// last index.
func TestFollowerCommitFromAppendNeverCoversStaleEntriesAfterTheAppend(t *testing.T) {
	c := follower(t, fspec{term: 2, entries: ents(1, 1, 1, 1)})
	step(t, c, appendMsg("b", 2, 2, 1, nil, 4))
	drain(t, c)
	if c.CommitIndex() != 2 {
		t.Fatal(c.CommitIndex())
	}
}

// issue16BatchLimitedAppend: the follower holds 1@1 2@1 3@2; the term-3
// leader (log 1@1 2@1 3@3, commit 3) sends a batch-limited append carrying
// only entry 2.
func issue16BatchLimitedAppend(t *testing.T, mut map[string]bool) (*Core, Ready) {
	c := follower(t, fspec{term: 2, entries: ents(1, 1, 2), mut: mut})
	leaderLog := ents(1, 1, 3)
	step(t, c, appendMsg("b", 3, 1, 1, leaderLog[1:2], 3))
	return c, drain(t, c)
}

// Figure 2 receiver rule 5 (issue 16, "Simulator reach"): "set commitIndex =
// min(leaderCommit, index of last new entry)", never min(leaderCommit, our
// own last index). Our 3@2 is not the leader's 3@3 and must not become
// committed.
func TestBatchLimitedAppendDoesNotCommitTheDivergentEntryJustPastIt(t *testing.T) {
	c, rd := issue16BatchLimitedAppend(t, nil)
	if c.Term() != 3 || c.CommitIndex() != 2 || len(rd.Committed) != 2 || rd.Committed[1].Index != 2 {
		t.Fatal(c.Term(), c.CommitIndex(), rd.Committed)
	}
	if r := ofType(rd.Messages, MsgAppendResp); r[0].Index != 2 {
		t.Fatal(r)
	}
	if !eqU64(termsOf(c.LogEntries()), []uint64{1, 1, 2}) {
		t.Fatal(c.LogEntries())
	}
	// The next batch replaces it; only then does 3 commit, as the leader's 3@3.
	step(t, c, appendMsg("b", 3, 2, 1, ents(1, 1, 3)[2:], 3))
	drain(t, c)
	if c.CommitIndex() != 3 || !eqU64(termsOf(c.LogEntries()), []uint64{1, 1, 3}) {
		t.Fatal(c.CommitIndex(), termsOf(c.LogEntries()))
	}
}

// §5.3: the leader includes its commit index "in future AppendEntries RPCs
// (including heartbeats)"; a broadcast heartbeat's hint is capped at what an
// append of the current term proved.
func TestFollowerCommitFromHeartbeatIsBoundedByConfirmedIndex(t *testing.T) {
	c := follower(t, fspec{term: 2})
	step(t, c, appendMsg("b", 2, 0, 0, ents(2, 2, 2), 1))
	drain(t, c)
	if c.CommitIndex() != 1 {
		t.Fatal(c.CommitIndex())
	}
	hb := msg(MsgHeartbeat, "b", Broadcast, 2)
	hb.Commit = 3
	step(t, c, hb)
	drain(t, c)
	if c.CommitIndex() != 3 {
		t.Fatal(c.CommitIndex())
	}
}

// §5.4.2 / Figure 2 receiver rule 5: a stale uncommitted suffix must not be
// committed because a heartbeat of the new leader says commit = 5.
func TestHeartbeatCommitHintDoesNotCommitAnUnconfirmedStaleSuffix(t *testing.T) {
	c := follower(t, fspec{term: 2, entries: ents(1, 1, 1, 1, 1)})
	hb := msg(MsgHeartbeat, "b", Broadcast, 2)
	hb.Commit = 5
	step(t, c, hb)
	drain(t, c)
	if c.CommitIndex() != 0 {
		t.Fatal(c.CommitIndex())
	}
	step(t, c, appendMsg("b", 2, 2, 1, nil, 5))
	drain(t, c)
	if c.CommitIndex() != 2 {
		t.Fatal(c.CommitIndex())
	}
	step(t, c, hb)
	drain(t, c)
	if c.CommitIndex() != 2 {
		t.Fatal(c.CommitIndex())
	}
	step(t, c, appendMsg("b", 2, 2, 1, entsFrom(3, 2, 2, 2), 2))
	drain(t, c)
	step(t, c, hb)
	drain(t, c)
	if c.CommitIndex() != 5 || !eqU64(termsOf(c.LogEntries()), []uint64{1, 1, 2, 2, 2}) {
		t.Fatal(c.CommitIndex())
	}
}

func TestHeartbeatCommitBoundDoesNotCarryOverIntoANewTerm(t *testing.T) {
	c := follower(t, fspec{term: 2})
	step(t, c, appendMsg("b", 2, 0, 0, ents(2, 2, 2), 0))
	drain(t, c)
	hb := msg(MsgHeartbeat, "c", Broadcast, 3)
	hb.Commit = 3
	step(t, c, hb)
	drain(t, c)
	if c.Term() != 3 || c.CommitIndex() != 0 {
		t.Fatal(c.Term(), c.CommitIndex())
	}
}

// §5.3: "Once a follower learns that a log entry is committed, it applies
// the entry to its local state machine (in log order)."
func TestFollowersApplyCommittedEntriesInLogOrder(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	for _, d := range []string{"x", "y", "z"} {
		net.get("a").Propose([]byte(d))
	}
	net.stabilize(nil)
	net.tick([]string{"a"}, 1, true)
	for _, id := range net.ids {
		var idx []uint64
		var data string
		for _, e := range net.applied[id] {
			idx = append(idx, e.Index)
			data += string(e.Data)
		}
		if !eqU64(idx, []uint64{1, 2, 3, 4}) || data != "xyz" {
			t.Fatal(id, idx, data)
		}
	}
}

// ==================================================================================
// §5.6 / Figure 2: restart from persistent state
// ==================================================================================

func TestRestartRecoversTermVoteAndLogFromStorage(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.get("a").Propose([]byte("x"))
	net.stabilize(nil)
	before := net.get("b").LogEntries()
	net.crash("b")
	net.restart("b")
	b := net.get("b")
	if b.Term() != 1 || b.Vote() != "a" || b.Role() != RoleFollower || !reflect.DeepEqual(b.LogEntries(), before) ||
		b.CommitIndex() != 0 || b.AppliedIndex() != 0 {
		t.Fatal(b.Term(), b.Vote())
	}
}

// §5.2: "Each server will vote for at most one candidate in a given term" —
// across crashes because votedFor is persisted.
func TestRestartedNodeDoesNotVoteTwiceInTheSameTerm(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.crash("b")
	net.restart("b")
	step(t, net.get("b"), Message{Type: MsgVote, Src: "c", Dst: "b", Term: 1, LogIndex: 1, LogTerm: 1})
	if rd := drain(t, net.get("b")); len(granted(rd.Messages, MsgVoteResp)) != 0 || net.get("b").Vote() != "a" {
		t.Fatal(rd.Messages)
	}
}

func TestRestartFromSnapshotResumesAfterIt(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	for _, d := range []string{"x", "y", "z"} {
		net.get("a").Propose([]byte(d))
	}
	net.stabilize(nil)
	net.tick([]string{"a"}, 1, true)
	snap := net.compact("b", 3)
	net.crash("b")
	net.restart("b")
	b := net.get("b")
	if !reflect.DeepEqual(b.Snapshot(), snap) || b.AppliedIndex() != 3 || b.CommitIndex() != 3 {
		t.Fatal(b.Snapshot())
	}
	if e := b.LogEntries(); len(e) != 1 || e[0].Index != 4 || b.LastIndex() != 4 {
		t.Fatal(e)
	}
	if term, ok := b.TermAt(3); !ok || term != 1 {
		t.Fatal(term)
	}
}

// §5.3: the leader includes its commit index in heartbeats "so that the
// other servers eventually find out" — even a restarted follower whose
// confirmedIndex is 0 in an idle cluster.
func TestRestartedFollowerLearnsCommitIndexWithoutNewWrites(t *testing.T) {
	net := newNetwork(t, nil, nil)
	net.elect("a")
	net.get("a").Propose([]byte("x"))
	net.stabilize(nil)
	net.tick([]string{"a"}, 1, true)
	if net.get("b").CommitIndex() != 2 {
		t.Fatal(net.get("b").CommitIndex())
	}
	net.crash("b")
	net.restart("b")
	net.tick(nil, 3*E, true)
	if net.get("b").CommitIndex() != 2 || len(net.applied["b"]) != 2 || string(net.applied["b"][1].Data) != "x" {
		t.Fatal(net.applied["b"])
	}
	if !net.get("b").ReadIndex("rb") {
		t.Fatal("no read")
	}
	net.stabilize(nil)
	if r := net.reads["b"]; len(r) != 1 || r[0].Index > net.get("b").AppliedIndex() {
		t.Fatal(r)
	}
}
