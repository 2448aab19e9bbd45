package raft

import "sort"

// -- membership (membership.go) ---------------------------------------------------

func (c *Core) membershipAt(index uint64) Membership {
	m, _, _ := c.membershipInLog(&index)
	return m
}

// membershipInLog is the latest membership in the log (through *through, or
// the whole log when nil): the last CONFIG entry, else the snapshot's, else
// the bootstrap one; with the index and term of the entry that set it (the
// snapshot's, or 0). It panics with *MembershipError on data that does not
// decode.
func (c *Core) membershipInLog(through *uint64) (Membership, uint64, uint64) {
	last := c.log.lastIndex()
	if through != nil {
		last = *through
	}
	for i := len(c.log.entries) - 1; i >= 0; i-- {
		e := c.log.entries[i]
		if e.Index <= last && e.Kind == EntryConfig {
			return mustDecode(e.Data), e.Index, e.Term
		}
	}
	snap := c.log.snapshot
	if len(snap.Membership) > 0 {
		return mustDecode(snap.Membership), snap.Index, snap.Term
	}
	return c.bootstrap, 0, 0
}

func mustDecode(data []byte) Membership {
	m, err := DecodeMembership(data)
	if err != nil {
		panic(err)
	}
	return m
}

// setMembership uses m from now on (thesis §4.1: as soon as it is in the log).
func (c *Core) setMembership(m Membership, index, term uint64) {
	c.membership = m
	c.membershipIndex, c.membershipTerm = index, term
	c.voters = make(map[string]bool, len(m.voters))
	for _, v := range m.voters {
		c.voters[v] = true
	}
	c.peers = without(m.Members(), c.id)
	c.quorum = m.Quorum()
	if c.role == RoleLeader {
		for _, p := range c.peers {
			if _, ok := c.progress[p]; !ok {
				c.addProgress(p, newProgress(c.log.lastIndex()+1))
			}
		}
		kept := c.progressOrder[:0:0]
		for _, p := range c.progressOrder {
			if m.Contains(p) && p != c.id {
				kept = append(kept, p)
			} else {
				delete(c.progress, p)
			}
		}
		c.progressOrder = kept
		if c.transferTarget != NoNode && !c.voters[c.transferTarget] {
			c.transferTarget = NoNode
		}
	}
}

func (c *Core) addProgress(peer string, pr *progress) {
	c.progress[peer] = pr
	c.progressOrder = append(c.progressOrder, peer)
}

// refreshMembership runs after the log changed under a follower: a CONFIG
// entry arrived, or the entry that set the membership was truncated or
// replaced.
func (c *Core) refreshMembership(appended []Entry) {
	index := c.membershipIndex
	t, ok := c.log.termAt(index)
	stillThere := index <= c.log.snapshot.Index || (ok && t == c.membershipTerm)
	if stillThere {
		config := false
		for _, e := range appended {
			if e.Kind == EntryConfig {
				config = true
				break
			}
		}
		if !config {
			return
		}
	}
	m, idx, term := c.membershipInLog(nil)
	if idx != c.membershipIndex || term != c.membershipTerm {
		c.setMembership(m, idx, term)
	}
}

// stepDownIfRemoved: a leader that the committed membership no longer counts
// as a voter hands over and steps down (thesis §4.2.2: it led until then,
// without counting itself).
func (c *Core) stepDownIfRemoved() {
	if c.voters[c.id] || c.membershipIndex > c.log.committed {
		return
	}
	best := NoNode
	for _, p := range c.progressOrder {
		if c.voters[p] && (best == NoNode || c.progress[p].match > c.progress[best].match) {
			best = p
		}
	}
	if best != NoNode && c.progress[best].match == c.log.lastIndex() {
		c.send(Message{Type: MsgTimeoutNow, Dst: best})
	}
	c.becomeFollower(c.term, NoNode)
}

// -- roles -----------------------------------------------------------------------

func (c *Core) reset(term uint64) {
	if term != c.term {
		c.term = term
		c.vote = NoNode
		c.confirmedIndex = 0
	}
	c.leaderID = NoNode
	c.electionElapsed = 0
	c.heartbeatElapsed = 0
	c.randomizedTimeout = c.cfg.ElectionTicks + c.rng.Intn(c.cfg.ElectionTicks)
	c.votes = map[string]bool{}
	c.transferTarget = NoNode
	c.pendingReads = nil
	c.readsBeforeCommit = nil
	c.heartbeatDue = false
	c.progress = map[string]*progress{}
	c.progressOrder = nil
}

func (c *Core) becomeFollower(term uint64, leader string) {
	c.reset(term)
	c.role = RoleFollower
	c.leaderID = leader
	c.stepRole = c.stepFollower
}

// becomePreCandidate: pre-vote (thesis §9.6) asks first, without touching
// term or vote, so a node cut off from the cluster cannot inflate terms.
func (c *Core) becomePreCandidate() {
	c.role = RolePreCandidate
	c.votes = map[string]bool{}
	c.leaderID = NoNode
	c.stepRole = c.stepCandidate
}

func (c *Core) becomeCandidate() {
	c.reset(c.term + 1)
	c.vote = c.id
	c.role = RoleCandidate
	c.stepRole = c.stepCandidate
}

func (c *Core) becomeLeader() {
	c.reset(c.term)
	c.role = RoleLeader
	c.leaderID = c.id
	c.stepRole = c.stepLeader
	for _, p := range c.peers {
		c.addProgress(p, newProgress(c.log.lastIndex()+1))
	}
	// §8: a no-op of the new term lets the leader commit (and learn the
	// commit index of) everything earlier, and enables ReadIndex.
	c.log.append([]Entry{{Index: c.log.lastIndex() + 1, Term: c.term, Kind: EntryNoop}})
}

// mayCampaign: a voter campaigns, and so does a node whose latest membership
// took its vote away while that change is not known to be committed: thesis
// §4.2.2, such a server "should still start new elections, as it might still
// be needed until the Cnew entry is committed". A leader that removed (or
// demoted) itself from two voters and crashed before the other voter stored
// the change is the only one who can bring it there. It counts only the
// votes of its latest membership (recordVote). A learner, or a node whose
// removal it knows committed, never campaigns.
func (c *Core) mayCampaign() bool {
	if c.voters[c.id] {
		return true
	}
	index := c.membershipIndex
	return index > c.log.committed && index > c.log.snapshot.Index &&
		c.membershipAt(index-1).IsVoter(c.id)
}

// campaign asks every voter for a (pre-)vote; transfer overrides their
// lease. Only a node that mayCampaign does.
func (c *Core) campaign(preVote, transfer bool) {
	if !c.mayCampaign() {
		return
	}
	var voteType MessageType
	var voteTerm uint64
	if preVote {
		c.becomePreCandidate()
		voteType, voteTerm = MsgPreVote, c.term+1
	} else {
		c.becomeCandidate()
		voteType, voteTerm = MsgVote, c.term
	}
	if c.recordVote(c.id, true) == voteWon {
		c.won(voteType)
		return
	}
	others := make([]string, 0, len(c.voters))
	for v := range c.voters {
		if v != c.id {
			others = append(others, v)
		}
	}
	sort.Strings(others)
	for _, p := range others {
		c.send(Message{Type: voteType, Dst: p, Term: voteTerm, LogIndex: c.log.lastIndex(),
			LogTerm: c.log.lastTerm(), Force: transfer})
	}
}

func (c *Core) won(voteType MessageType) {
	if voteType == MsgPreVote {
		c.campaign(false, false) // the pre-vote passed: the real election
	} else {
		c.becomeLeader()
	}
}

type voteOutcome int

const (
	votePending voteOutcome = iota
	voteWon
	voteLost
)

func (c *Core) recordVote(voter string, granted bool) voteOutcome {
	if !c.voters[voter] {
		return votePending // a member this candidate does not count
	}
	if _, ok := c.votes[voter]; !ok {
		c.votes[voter] = granted
	}
	yes := 0
	for _, g := range c.votes {
		if g {
			yes++
		}
	}
	no := len(c.votes) - yes
	if yes >= c.quorum {
		return voteWon
	}
	if no >= c.quorum {
		return voteLost
	}
	return votePending
}

func (c *Core) inLease() bool {
	return c.cfg.CheckQuorum && c.leaderID != NoNode && c.electionElapsed < c.cfg.ElectionTicks
}

// -- ticks -------------------------------------------------------------------------

func (c *Core) tickElection() {
	c.electionElapsed++
	if c.electionElapsed >= c.randomizedTimeout && c.mayCampaign() {
		c.electionElapsed = 0
		c.campaign(c.cfg.PreVote, false)
	}
}

func (c *Core) tickLeader() {
	c.heartbeatElapsed++
	c.electionElapsed++
	if c.electionElapsed >= c.cfg.ElectionTicks {
		c.electionElapsed = 0
		if c.cfg.CheckQuorum {
			active := 0
			if c.voters[c.id] {
				active++
			}
			for _, p := range c.progressOrder {
				if c.voters[p] && c.progress[p].recentActive {
					active++
				}
			}
			if active < c.quorum {
				c.becomeFollower(c.term, NoNode)
				return
			}
			for _, pr := range c.progress {
				pr.recentActive = false
			}
		}
		c.transferTarget = NoNode // a transfer that took this long failed
	}
	if c.heartbeatElapsed >= c.cfg.HeartbeatTicks {
		c.heartbeatElapsed = 0
		c.heartbeatDue = true
	}
}

// -- votes -------------------------------------------------------------------------

func (c *Core) handleVoteRequest(m Message) {
	resp := MsgVoteResp
	if m.Type == MsgPreVote {
		resp = MsgPreVoteResp
	}
	canVote := c.vote == m.Src || (c.vote == NoNode && c.leaderID == NoNode) ||
		(m.Type == MsgPreVote && m.Term > c.term)
	if c.log.lastIndex() < c.voteFloor {
		canVote = false
	}
	if canVote && c.log.isUpToDate(m.LogIndex, m.LogTerm) {
		// §5.2, §5.4.1: grant. A pre-vote reply carries the candidate's
		// future term so that it is not dropped as stale.
		c.send(Message{Type: resp, Dst: m.Src, Term: m.Term})
		if m.Type == MsgVote {
			c.electionElapsed = 0
			c.vote = m.Src
		}
	} else {
		c.send(Message{Type: resp, Dst: m.Src, Reject: true})
	}
}

// -- per-role message handling -------------------------------------------------------

func (c *Core) stepFollower(m Message) {
	switch m.Type {
	case MsgAppend, MsgHeartbeat, MsgSnapshot:
		c.electionElapsed = 0
		c.leaderID = m.Src
		switch m.Type {
		case MsgAppend:
			c.handleAppend(m)
		case MsgHeartbeat:
			c.handleHeartbeat(m)
		default:
			c.handleSnapshot(m)
		}
	case MsgTimeoutNow:
		c.campaign(false, true)
	case MsgReadIndexResp:
		if !m.Reject {
			c.readStates = append(c.readStates, ReadState{ReadCtx: m.ReadCtx, Index: m.Index})
		}
	}
	// MsgReadIndex sent to a non-leader is dropped; the asker times out.
}

func (c *Core) stepCandidate(m Message) {
	switch m.Type {
	case MsgAppend, MsgHeartbeat, MsgSnapshot:
		// §5.2: a leader of our term exists; follow it.
		c.becomeFollower(c.term, m.Src)
		c.stepFollower(m)
		return
	}
	expected := MsgVoteResp
	if c.role == RolePreCandidate {
		expected = MsgPreVoteResp
	}
	if m.Type == expected {
		switch c.recordVote(m.Src, !m.Reject) {
		case voteWon:
			if m.Type == MsgPreVoteResp {
				c.won(MsgPreVote)
			} else {
				c.won(MsgVote)
			}
		case voteLost:
			c.becomeFollower(c.term, NoNode)
		}
	}
}

func (c *Core) stepLeader(m Message) {
	if m.Type == MsgReadIndex {
		c.leaderRead(m.ReadCtx, m.Src)
		return
	}
	pr, ok := c.progress[m.Src]
	if !ok {
		return
	}
	switch m.Type {
	case MsgAppendResp:
		pr.recentActive = true
		if m.Reject {
			c.handleAppendRejection(m, pr)
		} else {
			c.handleAppendSuccess(m, pr)
		}
	case MsgHeartbeatResp:
		pr.recentActive = true
		pr.probeSent = false
		if pr.state == ProgressReplicate && len(pr.inflight) > 0 {
			// The follower is alive but acks may have been lost: free one
			// slot so replication can never deadlock on a full window.
			pr.inflight = pr.inflight[1:]
		}
		if pr.state == ProgressSnapshot {
			pr.snapshotWait++
			if pr.snapshotWait >= SnapshotRetryHeartbeats {
				pr.becomeProbe() // the snapshot was probably lost; resend
			}
		}
		if pr.match < c.log.lastIndex() || m.Reject {
			// Behind, or (reject) it cannot confirm our commit index from
			// what it has seen this term, e.g. it restarted: an append
			// re-establishes confirmedIndex.
			c.sendAppend(m.Src, true)
		}
		if m.Context > pr.readAck {
			pr.readAck = m.Context
			c.releaseReads()
		}
	}
}

func (c *Core) handleAppendRejection(m Message, pr *progress) {
	nextProbe := m.RejectHint
	if m.LogTerm > 0 {
		nextProbe, _ = c.log.findConflictByTerm(m.RejectHint, m.LogTerm)
	}
	if pr.maybeDecreaseTo(m.Index, nextProbe) {
		if pr.state == ProgressReplicate {
			pr.becomeProbe()
		}
		c.sendAppend(m.Src, true)
	}
}

func (c *Core) handleAppendSuccess(m Message, pr *progress) {
	if !pr.maybeUpdate(m.Index) {
		return
	}
	if pr.state == ProgressProbe {
		pr.becomeReplicate()
	} else if pr.state == ProgressSnapshot && pr.match >= pr.pendingSnapshot {
		pr.becomeProbe()
		pr.becomeReplicate()
	}
	c.maybeCommit() // may step a leader that removed itself down (transferTarget is cleared then)
	if m.Src == c.transferTarget && pr.match == c.log.lastIndex() {
		c.send(Message{Type: MsgTimeoutNow, Dst: m.Src})
	}
}

// -- follower side of replication ----------------------------------------------------

func (c *Core) handleAppend(m Message) {
	if m.LogIndex < c.log.committed {
		// Everything through our commit index is in the leader's log.
		c.send(Message{Type: MsgAppendResp, Dst: m.Src, Index: c.log.committed})
		return
	}
	lastNew, ok := c.log.maybeAppend(m.LogIndex, m.LogTerm, m.Entries)
	if !ok {
		hint := minU64(m.LogIndex, c.log.lastIndex())
		hint, hintTerm := c.log.findConflictByTerm(hint, m.LogTerm)
		c.send(Message{Type: MsgAppendResp, Dst: m.Src, Reject: true, Index: m.LogIndex,
			RejectHint: hint, LogTerm: hintTerm})
		return
	}
	c.refreshMembership(m.Entries)
	c.confirmedIndex = maxU64(c.confirmedIndex, lastNew)
	c.log.commitTo(minU64(m.Commit, lastNew))
	c.send(Message{Type: MsgAppendResp, Dst: m.Src, Index: lastNew})
	if c.mut.appendCommitPastBatch {
		// Mutation append_commit_past_batch: BUG, commits past what the
		// append confirmed (Figure 2 receiver rule 5 says "index of last
		// new entry").
		c.log.commitTo(minU64(m.Commit, c.log.lastIndex()))
	}
}

func (c *Core) handleHeartbeat(m Message) {
	if c.mut.heartbeatCommit {
		// Mutation heartbeat_commit: BUG, not bounded by confirmedIndex.
		c.log.commitTo(minU64(m.Commit, c.log.lastIndex()))
		c.send(Message{Type: MsgHeartbeatResp, Dst: m.Src, Context: m.Context})
		return
	}
	c.log.commitTo(minU64(m.Commit, c.confirmedIndex))
	c.send(Message{Type: MsgHeartbeatResp, Dst: m.Src, Context: m.Context,
		Reject: c.confirmedIndex < m.Commit})
}

func (c *Core) handleSnapshot(m Message) {
	if m.Snapshot == nil {
		invariant("snapshot message from %s without a snapshot", m.Src)
	}
	snap := *m.Snapshot
	if snap.Index <= c.log.committed {
		c.send(Message{Type: MsgAppendResp, Dst: m.Src, Index: c.log.committed})
		return
	}
	if c.log.matchTerm(snap.Index, snap.Term) {
		// We hold the snapshot's last entry: everything before it matches.
		c.confirmedIndex = maxU64(c.confirmedIndex, snap.Index)
		c.log.commitTo(snap.Index)
		c.send(Message{Type: MsgAppendResp, Dst: m.Src, Index: snap.Index})
		return
	}
	// Missing or conflicting entry at the snapshot index: the whole log goes.
	c.log.restore(snap)
	c.setMembership(c.membershipInLog(nil))
	c.confirmedIndex = snap.Index
	c.send(Message{Type: MsgAppendResp, Dst: m.Src, Index: snap.Index})
}

// -- leader side of replication ------------------------------------------------------

func (c *Core) sendAppend(peer string, allowEmpty bool) bool {
	pr := c.progress[peer]
	if pr.isPaused(c.cfg.MaxInflight) {
		return false
	}
	prevIndex := pr.next - 1
	prevTerm, ok := c.log.termAt(prevIndex)
	if !ok {
		snap := c.log.snapshot
		c.send(Message{Type: MsgSnapshot, Dst: peer, Snapshot: &snap})
		pr.becomeSnapshot(snap.Index)
		return true
	}
	var entries []Entry
	if pr.next <= c.log.lastIndex() {
		entries = c.log.entriesFrom(pr.next, c.cfg.MaxMsgBytes)
	} else if !allowEmpty {
		return false
	}
	c.send(Message{Type: MsgAppend, Dst: peer, LogIndex: prevIndex, LogTerm: prevTerm,
		Entries: entries, Commit: c.log.committed})
	pr.sent(prevIndex+uint64(len(entries)), len(entries))
	return true
}

// flush batches new entries into appends and sends due heartbeats (leader
// only).
func (c *Core) flush() {
	if c.role != RoleLeader {
		return
	}
	last := c.log.lastIndex()
	for _, p := range c.progressOrder {
		pr := c.progress[p]
		for pr.next <= last && c.sendAppend(p, false) {
		}
	}
	if c.heartbeatDue {
		c.heartbeatDue = false
		c.heartbeatSeq++
		c.send(Message{Type: MsgHeartbeat, Dst: Broadcast, Commit: c.log.committed, Context: c.heartbeatSeq})
	}
}

// maybeCommit: §5.3/§5.4.2, commit the highest index a majority stores, if
// of our term.
func (c *Core) maybeCommit() {
	if c.mut.oldTermCommit {
		c.maybeCommitOldTerm()
		return
	}
	if c.mut.learnerCountsInQuorum {
		// Mutation learner_counts_in_quorum: BUG, learners' matches count
		// too (the whole commit step sees every member as a voter).
		real := c.voters
		c.voters = map[string]bool{}
		for _, n := range c.membership.Members() {
			c.voters[n] = true
		}
		defer func() { c.voters = real }()
	}
	var matches []uint64
	for _, p := range c.progressOrder {
		if c.voters[p] {
			matches = append(matches, c.progress[p].match)
		}
	}
	if c.voters[c.id] {
		matches = append(matches, c.log.stable) // our own copy counts once it is durable
	}
	if len(matches) < c.quorum {
		return
	}
	sort.Slice(matches, func(i, j int) bool { return matches[i] > matches[j] })
	candidate := matches[c.quorum-1]
	if t, ok := c.log.termAt(candidate); candidate > c.log.committed && ok && t == c.term {
		c.log.commitTo(candidate)
		c.heartbeatDue = true // tell followers promptly
		if c.membershipIndex <= candidate {
			c.stepDownIfRemoved()
			if c.role != RoleLeader {
				return
			}
		}
		c.releaseReadsBeforeCommit()
	}
}

// maybeCommitOldTerm is the mutation old_term_commit: BUG, the commit rule
// without "and term_at(candidate) == term" (§5.4.2), as the Python
// mutation writes it (every progress counts, our own copy always).
func (c *Core) maybeCommitOldTerm() {
	var matches []uint64
	for _, p := range c.progressOrder {
		matches = append(matches, c.progress[p].match)
	}
	matches = append(matches, c.log.stable)
	if len(matches) < c.quorum {
		return
	}
	sort.Slice(matches, func(i, j int) bool { return matches[i] > matches[j] })
	candidate := matches[c.quorum-1]
	if candidate > c.log.committed { // BUG: no "and term_at(candidate) == term"
		c.log.commitTo(candidate)
		c.heartbeatDue = true
		c.releaseReadsBeforeCommit()
	}
}

func (c *Core) releaseReadsBeforeCommit() {
	if len(c.readsBeforeCommit) > 0 {
		waiting := c.readsBeforeCommit
		c.readsBeforeCommit = nil
		for _, r := range waiting {
			c.leaderRead(r.readCtx, r.requester)
		}
	}
}

// -- linearizable reads (thesis §6.4) ------------------------------------------------

func (c *Core) leaderRead(readCtx, requester string) {
	if t, _ := c.log.termAt(c.log.committed); t != c.term {
		// Until an entry of our term commits we do not know the commit index.
		c.readsBeforeCommit = append(c.readsBeforeCommit, readRequest{readCtx, requester})
		return
	}
	if c.mut.readWithoutQuorum {
		// Mutation read_without_quorum: BUG, no heartbeat round to a majority.
		c.deliverRead(readCtx, requester, c.log.committed)
		return
	}
	if len(c.voters) == 1 && c.voters[c.id] {
		c.deliverRead(readCtx, requester, c.log.committed)
		return
	}
	// A majority must echo a heartbeat sent after this moment.
	c.pendingReads = append(c.pendingReads, pendingRead{readCtx, requester, c.log.committed, c.heartbeatSeq + 1})
	c.heartbeatDue = true
}

func (c *Core) releaseReads() {
	for len(c.pendingReads) > 0 {
		read := c.pendingReads[0]
		acks := 0
		if c.voters[c.id] {
			acks++
		}
		for _, p := range c.progressOrder {
			if c.voters[p] && c.progress[p].readAck >= read.seq {
				acks++
			}
		}
		if acks < c.quorum {
			return
		}
		c.pendingReads = c.pendingReads[1:]
		c.deliverRead(read.readCtx, read.requester, read.index)
	}
}

func (c *Core) deliverRead(readCtx, requester string, index uint64) {
	if requester == c.id {
		c.readStates = append(c.readStates, ReadState{ReadCtx: readCtx, Index: index})
	} else {
		c.send(Message{Type: MsgReadIndexResp, Dst: requester, ReadCtx: readCtx, Index: index})
	}
}
