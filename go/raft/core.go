package raft

import (
	"bytes"
	"fmt"
	"math/rand"
	"sort"
)

// pendingRead is a read index the leader holds until a majority echoes
// heartbeat seq (thesis §6.4: the leader confirms it still leads before
// answering).
type pendingRead struct {
	readCtx   string
	requester string
	index     uint64
	seq       uint64 // heartbeat sequence number a majority must echo
}

type readRequest struct{ readCtx, requester string }

// Options is the start state storage recovered, and the test switches.
type Options struct {
	HardState *HardState
	Snapshot  *Snapshot
	Entries   []Entry
	// Bootstrap is the whole start membership; nil: this node and peers, all
	// voters. An empty one for a node that joins.
	Bootstrap *Membership
	// VoteFloor: a node that joined (empty storage) grants no vote until its
	// log reaches the entry that added it.
	VoteFloor uint64
	// Mutations switches on deliberate bugs by name (MutationNames).
	Mutations map[string]bool
}

// Core is one Raft member's whole algorithm: elections, replication,
// commitment, snapshots, read indexes, leadership transfer and membership
// changes, with no I/O.
//
// Inputs: Tick, Step, Propose, ProposeMembership, ReadIndex,
// TransferLeadership, Campaign, PeerUnreachable, Compact. Output: while
// HasReady(), a Ready() to carry out in the order Ready states, then
// Advance(ready). rng is its only randomness (election timeouts). A Core is
// not safe for concurrent use.
type Core struct {
	id        string
	cfg       Config
	rng       *rand.Rand
	bootstrap Membership
	voteFloor uint64
	log       *raftLog
	mut       mutations

	// The leader's view of each peer, and the order peers were added in
	// (Python's dict order: messages go out in that order).
	progress      map[string]*progress
	progressOrder []string

	role            Role
	membership      Membership
	membershipIndex uint64
	membershipTerm  uint64
	voters          map[string]bool
	peers           []string // every member but this one, sorted
	quorum          int

	term        uint64
	vote        string
	persistedHS HardState
	leaderID    string
	// The last index that an AppendEntries of the current term proved
	// identical to the leader's log: the bound on a heartbeat's commit hint.
	confirmedIndex uint64

	electionElapsed   int
	heartbeatElapsed  int
	randomizedTimeout int
	votes             map[string]bool
	transferTarget    string
	heartbeatSeq      uint64
	pendingReads      []pendingRead
	readsBeforeCommit []readRequest
	heartbeatDue      bool
	msgs              []Message
	readStates        []ReadState
	stepRole          func(Message)

	// An error caught in a method that returns none (Tick, Ready...): it
	// stops the core, and Step, Advance and Compact return it from then on.
	fatal error

	// Mutation forget_vote: the hard state handed out without its vote, and
	// the real one Advance pretends was written.
	forgetVoteFake, forgetVoteReal *HardState
}

// NewCore builds a core from what storage recovered.
//
// peers: the other voters of the bootstrap membership (the command line's
// --peers), unless opts.Bootstrap gives it whole. The log's CONFIG entries
// and the snapshot's membership take precedence over it.
func NewCore(id string, peers []string, cfg Config, rng *rand.Rand, opts Options) (c *Core, err error) {
	for _, p := range peers {
		if p == id {
			return nil, fmt.Errorf("raft: peers must not contain this node's own id %q", id)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("raft: a rand.Rand is required")
	}
	mut, err := parseMutations(opts.Mutations)
	if err != nil {
		return nil, err
	}
	defer recoverInto(&err)
	c = &Core{id: id, cfg: cfg, rng: rng, mut: mut}
	if opts.Bootstrap != nil {
		c.bootstrap = *opts.Bootstrap
	} else {
		c.bootstrap = NewMembership(append([]string{id}, peers...), nil, nil)
	}
	// A node that joined (empty storage) grants no vote until its log reaches
	// the entry that added it: an id (an address) that was a member before
	// with a wiped disk must not vote twice in a term it forgot. Past that
	// entry, a candidate of such a term has an older log.
	c.voteFloor = opts.VoteFloor
	snap := Snapshot{}
	if opts.Snapshot != nil {
		snap = *opts.Snapshot
	}
	c.log = newRaftLog(snap, opts.Entries)
	c.log.mutVoteIgnoresLog = mut.voteIgnoresLog
	c.progress = map[string]*progress{}
	c.role = RoleFollower
	c.setMembership(c.membershipInLog(nil))
	hs := HardState{}
	if opts.HardState != nil {
		hs = *opts.HardState
	}
	c.term, c.vote = hs.Term, hs.Vote
	c.persistedHS = hs
	c.randomizedTimeout = cfg.ElectionTicks
	c.votes = map[string]bool{}
	c.stepRole = c.stepFollower
	c.becomeFollower(c.term, NoNode)
	return c, nil
}

// recoverInto turns the core's internal panics (*InvariantError,
// *MembershipError) into the error of an exported method.
func recoverInto(err *error) {
	if r := recover(); r != nil {
		switch e := r.(type) {
		case *InvariantError:
			*err = e
		case *MembershipError:
			*err = e
		default:
			panic(r)
		}
	}
}

// catch is recoverInto for the methods that return no error: the error is
// kept (Err) and returned by the next Step, Advance or Compact. The Python
// core raises there instead; a Go caller checks Err after them.
func (c *Core) catch() {
	if r := recover(); r != nil {
		switch e := r.(type) {
		case *InvariantError:
			c.fatal = e
		case *MembershipError:
			c.fatal = e
		default:
			panic(r)
		}
	}
}

// Err is the error that stopped the core in a method that returns none
// (Tick, Propose, Ready...), or nil. Only a log that breaks Raft's rules
// (a CONFIG entry that does not decode, say) gets there.
func (c *Core) Err() error { return c.fatal }

// -- read-only views -----------------------------------------------------------

func (c *Core) ID() string                     { return c.id }
func (c *Core) Role() Role                     { return c.role }
func (c *Core) Term() uint64                   { return c.term }
func (c *Core) Vote() string                   { return c.vote }
func (c *Core) LeaderID() string               { return c.leaderID }
func (c *Core) CommitIndex() uint64            { return c.log.committed }
func (c *Core) AppliedIndex() uint64           { return c.log.applied }
func (c *Core) LastIndex() uint64              { return c.log.lastIndex() }
func (c *Core) Membership() Membership         { return c.membership }
func (c *Core) MembershipIndex() uint64        { return c.membershipIndex }
func (c *Core) Quorum() int                    { return c.quorum }
func (c *Core) IsLeader() bool                 { return c.role == RoleLeader }
func (c *Core) VoteFloor() uint64              { return c.voteFloor }
func (c *Core) Config() Config                 { return c.cfg }
func (c *Core) ConfirmedIndex() uint64         { return c.confirmedIndex }
func (c *Core) ElectionElapsed() int           { return c.electionElapsed }
func (c *Core) RandomizedTimeout() int         { return c.randomizedTimeout }
func (c *Core) TransferTarget() string         { return c.transferTarget }
func (c *Core) HardState() HardState           { return c.hardState() }
func (c *Core) Peers() []string                { return append([]string(nil), c.peers...) }
func (c *Core) Snapshot() Snapshot             { return c.log.snapshot }
func (c *Core) LogEntries() []Entry            { return append([]Entry(nil), c.log.entries...) }
func (c *Core) TermAt(i uint64) (uint64, bool) { return c.log.termAt(i) }

// Voters returns the voters of the membership in use, sorted.
func (c *Core) Voters() []string {
	out := make([]string, 0, len(c.voters))
	for v := range c.voters {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// ProgressInfo is a copy of the leader's view of one follower.
type ProgressInfo struct {
	Match, Next     uint64
	State           ProgressState
	ProbeSent       bool
	PendingSnapshot uint64
	Inflight        int
	RecentActive    bool
	ReadAck         uint64
}

// Progress returns the leader's view of peer; false if none (not leading,
// or not a member).
func (c *Core) Progress(peer string) (ProgressInfo, bool) {
	pr, ok := c.progress[peer]
	if !ok {
		return ProgressInfo{}, false
	}
	return ProgressInfo{pr.match, pr.next, pr.state, pr.probeSent, pr.pendingSnapshot,
		len(pr.inflight), pr.recentActive, pr.readAck}, true
}

// MembershipAt is the membership in effect at log index (e.g. the committed
// one: MembershipAt(CommitIndex())); index at or after the snapshot. A
// CONFIG entry that does not decode gives the zero Membership.
func (c *Core) MembershipAt(index uint64) (m Membership) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(*MembershipError); !ok {
				panic(r)
			}
			m = Membership{}
		}
	}()
	return c.membershipAt(index)
}

// -- inputs ----------------------------------------------------------------------

// Tick advances the logical clock by one tick.
func (c *Core) Tick() {
	defer c.catch()
	if c.role == RoleLeader {
		c.tickLeader()
	} else {
		c.tickElection()
	}
}

// Propose appends a command to the leader's log (§5.3).
func (c *Core) Propose(data []byte) ProposeResult {
	defer c.catch()
	if c.role != RoleLeader {
		return ProposeResult{LeaderHint: c.leaderID, Reason: "not the leader", Refusal: RefusalNotLeader}
	}
	if c.transferTarget != NoNode {
		return ProposeResult{LeaderHint: c.transferTarget, Reason: "leadership transfer in progress",
			Refusal: RefusalTransferring}
	}
	e := Entry{Index: c.log.lastIndex() + 1, Term: c.term, Kind: EntryCommand, Data: append([]byte(nil), data...)}
	c.log.append([]Entry{e})
	return ProposeResult{Accepted: true, Index: e.Index, Term: e.Term}
}

// ProposeMembership appends a one-member change to the membership.
//
// Refused (Accepted false, Reason says why) unless this node leads, has
// committed an entry of its own term, no other change is in flight,
// baseIndex (when not nil) is still the index of the latest membership, and
// the change applies; a learner is promoted only once caught up
// (Config.PromoteMaxLag).
func (c *Core) ProposeMembership(ch ConfChange, baseIndex *uint64) ProposeResult {
	defer c.catch()
	if c.mut.configBeforeOwnTermCommit || c.mut.twoConfigsInFlight {
		return c.proposeMembershipMutated(ch, baseIndex)
	}
	if c.role != RoleLeader {
		return ProposeResult{LeaderHint: c.leaderID, Reason: "not the leader", Refusal: RefusalNotLeader}
	}
	if c.transferTarget != NoNode {
		return ProposeResult{LeaderHint: c.transferTarget, Reason: "leadership transfer in progress",
			Refusal: RefusalTransferring}
	}
	if t, _ := c.log.termAt(c.log.committed); t != c.term {
		return ProposeResult{Reason: "this leader has not committed an entry of its term yet; retry",
			Refusal: RefusalRetry}
	}
	if c.membershipIndex > c.log.committed {
		return ProposeResult{Reason: fmt.Sprintf("the membership change at index %d has not "+
			"committed yet; one change at a time", c.membershipIndex), Refusal: RefusalRetry}
	}
	if baseIndex != nil && *baseIndex != c.membershipIndex {
		return ProposeResult{Reason: fmt.Sprintf("the membership changed since index %d (now at "+
			"%d); read it again", *baseIndex, c.membershipIndex), Refusal: RefusalConflict}
	}
	if pr, ok := c.progress[ch.Node]; ok && ch.Type == ChangePromote {
		behind := int64(c.log.lastIndex()) - int64(pr.match)
		if behind > int64(c.cfg.PromoteMaxLag) || !pr.recentActive {
			heard := "active"
			if !pr.recentActive {
				heard = "not heard from lately"
			}
			return ProposeResult{Reason: fmt.Sprintf("%s is not caught up (%d entries behind, %s); "+
				"retry once it is", ch.Node, behind, heard), Refusal: RefusalRetry}
		}
	}
	m, err := c.membership.Apply(ch)
	if err != nil {
		reason := err.Error()
		if me, ok := err.(*MembershipError); ok {
			reason = me.Msg
		}
		return ProposeResult{Reason: reason, Refusal: RefusalInvalid}
	}
	e := Entry{Index: c.log.lastIndex() + 1, Term: c.term, Kind: EntryConfig, Data: m.Encode()}
	c.log.append([]Entry{e})
	c.setMembership(m, e.Index, e.Term)
	return ProposeResult{Accepted: true, Index: e.Index, Term: e.Term}
}

// proposeMembershipMutated is ProposeMembership as the Python mutations
// config_before_own_term_commit and two_configs_in_flight write it
// (tests/sim/mutations.py, _propose_membership_without): one guard left
// out, and their shorter reasons with no Refusal.
func (c *Core) proposeMembershipMutated(ch ConfChange, baseIndex *uint64) ProposeResult {
	if c.role != RoleLeader {
		return ProposeResult{LeaderHint: c.leaderID, Reason: "not the leader"}
	}
	if c.transferTarget != NoNode {
		return ProposeResult{Reason: "leadership transfer in progress"}
	}
	// Mutation config_before_own_term_commit: BUG, this guard is skipped.
	if t, _ := c.log.termAt(c.log.committed); t != c.term && !c.mut.configBeforeOwnTermCommit {
		return ProposeResult{Reason: "no entry of this term committed yet"}
	}
	// Mutation two_configs_in_flight: BUG, this guard is skipped.
	if c.membershipIndex > c.log.committed && !c.mut.twoConfigsInFlight {
		return ProposeResult{Reason: "one change at a time"}
	}
	if baseIndex != nil && *baseIndex != c.membershipIndex {
		return ProposeResult{Reason: "the membership changed"}
	}
	if pr, ok := c.progress[ch.Node]; ok && ch.Type == ChangePromote {
		if int64(c.log.lastIndex())-int64(pr.match) > int64(c.cfg.PromoteMaxLag) || !pr.recentActive {
			return ProposeResult{Reason: "not caught up"}
		}
	}
	m, err := c.membership.Apply(ch)
	if err != nil {
		reason := err.Error()
		if me, ok := err.(*MembershipError); ok {
			reason = me.Msg
		}
		return ProposeResult{Reason: reason}
	}
	e := Entry{Index: c.log.lastIndex() + 1, Term: c.term, Kind: EntryConfig, Data: m.Encode()}
	c.log.append([]Entry{e})
	c.setMembership(m, e.Index, e.Term)
	return ProposeResult{Accepted: true, Index: e.Index, Term: e.Term}
}

// ReadIndex asks for a linearizable read index (thesis §6.4).
//
// The answer arrives later as ReadState{readCtx, index} in a Ready. It
// returns false when no leader is known; the request may also be lost
// (leader change), so the caller needs a timeout.
func (c *Core) ReadIndex(readCtx string) bool {
	defer c.catch()
	if c.role == RoleLeader {
		c.leaderRead(readCtx, c.id)
		return true
	}
	if c.leaderID == NoNode {
		return false
	}
	c.send(Message{Type: MsgReadIndex, Dst: c.leaderID, ReadCtx: readCtx})
	return true
}

// TransferLeadership hands leadership to target once its log is current
// (thesis §3.10).
func (c *Core) TransferLeadership(target string) {
	defer c.catch()
	if c.role != RoleLeader || target == c.id || !c.voters[target] {
		return
	}
	if c.transferTarget == target {
		return
	}
	c.transferTarget = target
	c.electionElapsed = 0 // the transfer is abandoned after an election timeout
	if c.progress[target].match == c.log.lastIndex() {
		c.send(Message{Type: MsgTimeoutNow, Dst: target})
	} else {
		c.sendAppend(target, true)
	}
}

// Campaign starts an election now (pre-vote first when enabled).
func (c *Core) Campaign() {
	defer c.catch()
	if c.role != RoleLeader && c.mayCampaign() {
		c.campaign(c.cfg.PreVote, false)
	}
}

// PeerUnreachable: the transport saw peer's connection drop (its process
// died or closed). If peer is our leader, its lease ends now and we campaign
// within 1-3 ticks instead of a whole election timeout.
//
// Liveness only: campaigning is always safe (§5.2), and pre-vote still asks
// a majority, who grant only if they too stopped trusting the leader. A
// connection that merely blips costs a rejected pre-vote.
func (c *Core) PeerUnreachable(peer string) {
	defer c.catch()
	if c.role == RoleLeader || peer != c.leaderID {
		return
	}
	ticks := c.cfg.ElectionTicks
	if c.electionElapsed < ticks {
		c.electionElapsed = ticks // out of lease
	}
	c.randomizedTimeout = c.electionElapsed + 1 + c.rng.Intn(3)
}

// Compact takes the state machine's snapshot through index and drops the
// log before it.
func (c *Core) Compact(index uint64, data []byte) (err error) {
	defer recoverInto(&err)
	if c.fatal != nil {
		return c.fatal
	}
	if index <= c.log.snapshot.Index {
		return nil
	}
	if index > c.log.applied {
		invariant("cannot snapshot at %d: only %d applied", index, c.log.applied)
	}
	term, ok := c.log.termAt(index)
	if !ok {
		invariant("no term at %d", index)
	}
	m, _, _ := c.membershipInLog(&index)
	c.log.compact(Snapshot{Index: index, Term: term, Data: append([]byte(nil), data...), Membership: m.Encode()})
	return nil
}

// Step handles one message from a peer (§5.1: terms first, then the role).
// It returns an *InvariantError where the Python core raises
// LogInvariantError (a node must stop then).
func (c *Core) Step(m Message) (err error) {
	defer recoverInto(&err)
	if c.fatal != nil {
		return c.fatal
	}
	c.step(m)
	return nil
}

func (c *Core) step(m Message) {
	if c.mut.staleAppend && (m.Type == MsgAppend || m.Type == MsgHeartbeat) && m.Term < c.term {
		// Mutation stale_append: BUG, a deposed leader's append is handled
		// and answered in its own (stale) term, so it counts the reply.
		before := len(c.msgs)
		if m.Type == MsgAppend {
			c.handleAppend(m)
		} else {
			c.handleHeartbeat(m)
		}
		for i := before; i < len(c.msgs); i++ {
			c.msgs[i].Term = m.Term
		}
		return
	}
	isVote := m.Type == MsgVote || m.Type == MsgPreVote
	if m.Term > c.term {
		if isVote && !m.Force && c.inLease() {
			// Check-quorum's lease (thesis §4.2.3): while we hear from a
			// leader, a node that lost contact must not depose it.
			return
		}
		switch {
		case m.Type == MsgPreVote:
			// never change our term because of a pre-vote
		case m.Type == MsgPreVoteResp && !m.Reject:
			// a granted pre-vote carries the term we are about to use
		case m.Type == MsgAppend || m.Type == MsgHeartbeat || m.Type == MsgSnapshot:
			c.becomeFollower(m.Term, m.Src)
		case m.Type == MsgVote:
			// Adopt the term but keep our election clock: Figure 2 resets it
			// only when granting a vote. Otherwise a candidate with a stale
			// log and a fast clock, rejected again and again, keeps every
			// node that could win from ever timing out (a livelock the
			// simulator found with pre-vote off: seeds 41072, 45398).
			elapsed, timeout := c.electionElapsed, c.randomizedTimeout
			c.becomeFollower(m.Term, NoNode)
			c.electionElapsed, c.randomizedTimeout = elapsed, timeout
		default:
			c.becomeFollower(m.Term, NoNode)
		}
	} else if m.Term < c.term {
		switch m.Type {
		case MsgAppend:
			// Tell a deposed leader about the newer term so it steps down;
			// without this, check-quorum plus pre-vote could leave it stuck.
			c.send(Message{Type: MsgAppendResp, Dst: m.Src})
		case MsgHeartbeat:
			c.send(Message{Type: MsgHeartbeatResp, Dst: m.Src})
		case MsgPreVote, MsgVote:
			// Figure 2, RequestVote: "reply false if term < currentTerm",
			// with our term, so that a stale candidate catches up. Without
			// pre-vote it may otherwise never learn of a term that only the
			// voter it needs reached (the simulator, --membership, seed 16720).
			resp := MsgVoteResp
			if m.Type == MsgPreVote {
				resp = MsgPreVoteResp
			}
			c.send(Message{Type: resp, Dst: m.Src, Reject: true})
		}
		return
	}
	if isVote {
		c.handleVoteRequest(m)
	} else {
		c.stepRole(m)
	}
}

// -- output ------------------------------------------------------------------------

// HasReady reports whether a Ready has anything in it.
func (c *Core) HasReady() bool {
	defer c.catch()
	c.flush()
	return len(c.msgs) > 0 || len(c.readStates) > 0 || c.log.pendingSnapshot != nil ||
		c.log.stable < c.log.lastIndex() || c.log.committed > c.log.applied ||
		c.hardState() != c.persistedHS
}

// Ready collects everything the caller must do now (see Ready).
func (c *Core) Ready() Ready {
	defer c.catch()
	c.flush()
	hs := c.hardState()
	rd := Ready{
		Entries:    c.log.unstableEntries(),
		Snapshot:   c.log.pendingSnapshot,
		Messages:   c.msgs,
		Committed:  c.log.committedToApply(),
		ReadStates: c.readStates,
	}
	if hs != c.persistedHS {
		rd.HardState = &hs
	}
	c.msgs = nil
	c.readStates = nil
	if c.mut.forgetHardState && rd.HardState != nil {
		// Mutation forget_hard_state: BUG, claims it was written.
		c.persistedHS = *rd.HardState
		rd.HardState = nil
	}
	if c.mut.forgetVote && rd.HardState != nil && rd.HardState.Vote != NoNode {
		// Mutation forget_vote: BUG, the vote is not handed over; Advance
		// believes the whole hard state was written.
		real := *rd.HardState
		rd.HardState = &HardState{Term: real.Term, Vote: NoNode}
		c.forgetVoteFake, c.forgetVoteReal = rd.HardState, &real
	}
	if c.mut.voteOnlyWithTerm && rd.HardState != nil && rd.HardState.Term == c.persistedHS.Term {
		// Mutation vote_only_with_term: BUG, claims the new vote was written.
		c.persistedHS = *rd.HardState
		rd.HardState = nil
	}
	return rd
}

// Advance tells the core the caller has persisted, sent and applied rd.
func (c *Core) Advance(rd Ready) (err error) {
	defer recoverInto(&err)
	if c.fatal != nil {
		return c.fatal
	}
	if rd.HardState != nil {
		hs := *rd.HardState
		if c.forgetVoteFake != nil && (rd.HardState == c.forgetVoteFake || hs == *c.forgetVoteFake) {
			hs = *c.forgetVoteReal // mutation forget_vote (see Ready)
			c.forgetVoteFake, c.forgetVoteReal = nil, nil
		}
		c.persistedHS = hs
	}
	if rd.Snapshot != nil && c.log.pendingSnapshot != nil && sameSnapshot(rd.Snapshot, c.log.pendingSnapshot) {
		c.log.pendingSnapshot = nil
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1]
		c.log.stableTo(last.Index, last.Term)
	}
	if n := len(rd.Committed); n > 0 {
		c.log.applied = maxU64(c.log.applied, rd.Committed[n-1].Index)
	}
	if c.role == RoleLeader && len(rd.Entries) > 0 {
		c.maybeCommit() // our own copy is durable now and counts
	}
	return nil
}

// sameSnapshot is Python's identity check, relaxed to equal values so that a
// caller that copied the Ready (a line protocol) can still acknowledge it.
func sameSnapshot(a, b *Snapshot) bool {
	return a == b || (a.Index == b.Index && a.Term == b.Term &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Membership, b.Membership))
}

func (c *Core) hardState() HardState { return HardState{Term: c.term, Vote: c.vote} }

// send queues m from this node; a zero Term means the current term.
func (c *Core) send(m Message) {
	m.Src = c.id
	if m.Term == 0 {
		m.Term = c.term
	}
	c.msgs = append(c.msgs, m)
}
