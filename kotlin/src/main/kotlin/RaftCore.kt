// The Raft consensus algorithm as a pure state machine (sans-IO): a port of
// go/raft (core.go, core_roles.go), itself a port of Python's zmqnode/raft.
// Every decision is the Python core's: the same messages in the same order,
// the same progress states, the same membership rules. See go/raft/doc.go.
//
// Errors: where the Python core raises LogInvariantError, every method here
// throws InvariantError (a node must stop then); a CONFIG entry whose data is
// not an encoded membership throws MembershipError. (Go catches them in the
// methods that return no error and reports them from the next Step; Kotlin
// throws at once, as Python does.)
package zmqnode.raft

/** The start state storage recovered, and the test switches. */
class Options(
    val hardState: HardState? = null,
    val snapshot: Snapshot? = null,
    val entries: List<Entry> = emptyList(),
    /** The whole start membership; null: this node and peers, all voters. */
    val bootstrap: Membership? = null,
    /** A node that joined (empty storage) grants no vote until its log reaches the entry that added it. */
    val voteFloor: Long = 0,
    /** Deliberate bugs by name (Mutations.names). */
    val mutations: Collection<String> = emptyList()
)

/** A copy of the leader's view of one follower. */
data class ProgressInfo(val match: Long, val next: Long, val state: ProgressState, val probeSent: Boolean,
                        val pendingSnapshot: Long, val inflight: Int, val recentActive: Boolean, val readAck: Long)

private class PendingRead(val readCtx: String, val requester: String, val index: Long, val seq: Long)

private class ReadRequest(val readCtx: String, val requester: String)

private enum class VoteOutcome { PENDING, WON, LOST }

/**
 * One Raft member's whole algorithm, with no I/O. Inputs: tick, step,
 * propose, proposeMembership, readIndex, transferLeadership, campaign,
 * peerUnreachable, compact. Output: while hasReady(), a ready() to carry out,
 * then advance(ready). [rng] is its only randomness. Not thread-safe.
 *
 * [peers]: the other voters of the bootstrap membership, unless
 * opts.bootstrap gives it whole; the log's CONFIG entries and the snapshot's
 * membership take precedence.
 */
class Core(val id: String, peers: List<String>, val config: Config, private val rng: RaftRandom,
           opts: Options = Options()) {
    private val mut: MutationSet
    private val bootstrap: Membership
    val voteFloor: Long = opts.voteFloor
    private val log: RaftLog

    // The leader's view of each peer, in the order peers were added (Python's dict order).
    private val progress = LinkedHashMap<String, Progress>()

    var role = Role.FOLLOWER
        private set
    var membership: Membership = Membership.EMPTY
        private set
    var membershipIndex = 0L
        private set
    private var membershipTerm = 0L
    private var voterSet: Set<String> = emptySet()
    private var peerList: List<String> = emptyList()
    var quorum = 1
        private set

    var term = 0L
        private set
    var vote = NO_NODE
        private set
    private var persistedHS = HardState()
    var leaderId = NO_NODE
        private set
    /** The last index an AppendEntries of the current term proved identical to the leader's log. */
    var confirmedIndex = 0L
        private set

    var electionElapsed = 0
        private set
    private var heartbeatElapsed = 0
    var randomizedTimeout = 0
        private set
    private var votes = LinkedHashMap<String, Boolean>()
    var transferTarget = NO_NODE
        private set
    private var heartbeatSeq = 0L
    private var pendingReads = java.util.ArrayDeque<PendingRead>()
    private var readsBeforeCommit = ArrayList<ReadRequest>()
    private var heartbeatDue = false
    private var msgs = ArrayList<Message>()
    private var readStates = ArrayList<ReadState>()

    // Mutation forget_vote: the hard state handed out without its vote, and the real one.
    private var forgetVoteFake: HardState? = null
    private var forgetVoteReal: HardState? = null

    init {
        require(id !in peers) { "raft: peers must not contain this node's own id \"$id\"" }
        config.validate()
        mut = MutationSet(opts.mutations)
        bootstrap = opts.bootstrap ?: Membership.normalized(listOf(id) + peers)
        log = RaftLog(opts.snapshot ?: Snapshot(), opts.entries)
        log.mutVoteIgnoresLog = mut.voteIgnoresLog
        val (m, mi, mt) = membershipInLog(null)
        setMembership(m, mi, mt)
        val hs = opts.hardState ?: HardState()
        term = hs.term
        vote = hs.vote
        persistedHS = hs
        randomizedTimeout = config.electionTicks
        becomeFollower(term, NO_NODE)
    }

    // -- read-only views --------------------------------------------------------------

    val commitIndex: Long get() = log.committed
    val appliedIndex: Long get() = log.applied
    val lastIndex: Long get() = log.lastIndex()
    /** The last index the caller has made durable. */
    val stableIndex: Long get() = log.stable
    val isLeader: Boolean get() = role == Role.LEADER
    val hardState: HardState get() = HardState(term, vote)
    /** Every member but this one, sorted. */
    val peers: List<String> get() = ArrayList(peerList)
    val snapshot: Snapshot get() = log.snapshot
    val logEntries: List<Entry> get() = log.entries
    /** The voters of the membership in use, sorted. */
    val voters: List<String> get() = voterSet.sortedWith(CODE_POINT_ORDER)

    fun termAt(index: Long): Long? = log.termAt(index)

    /** The leader's view of peer; null if none (not leading, or not a member). */
    fun progress(peer: String): ProgressInfo? {
        val pr = progress[peer] ?: return null
        return ProgressInfo(pr.match, pr.next, pr.state, pr.probeSent, pr.pendingSnapshot, pr.inflight.size,
            pr.recentActive, pr.readAck)
    }

    /** The peers with a progress, in the order they were added (the order messages go out in). */
    val progressPeers: List<String> get() = ArrayList(progress.keys)

    /** The membership in effect at log index (at or after the snapshot); EMPTY if a CONFIG entry does not decode. */
    fun membershipAt(index: Long): Membership = try {
        membershipInLog(index).first
    } catch (e: MembershipError) {
        Membership.EMPTY
    }

    // -- inputs -------------------------------------------------------------------------

    /** Advances the logical clock by one tick. */
    fun tick() {
        if (role == Role.LEADER) tickLeader() else tickElection()
    }

    /** Appends a command to the leader's log (§5.3). */
    fun propose(data: ByteArray): ProposeResult {
        if (role != Role.LEADER) return ProposeResult(leaderHint = leaderId, reason = "not the leader", refusal = Refusal.NOT_LEADER)
        if (transferTarget != NO_NODE) {
            return ProposeResult(leaderHint = transferTarget, reason = "leadership transfer in progress", refusal = Refusal.TRANSFERRING)
        }
        val e = Entry(log.lastIndex() + 1, term, EntryKind.COMMAND, data.copyOf())
        log.append(listOf(e))
        return ProposeResult(accepted = true, index = e.index, term = e.term)
    }

    /**
     * Appends a one-member change to the membership. Refused unless this node
     * leads, has committed an entry of its own term, no other change is in
     * flight, [baseIndex] (when given) is still the latest membership's
     * index, and the change applies; a learner is promoted only once caught up.
     */
    fun proposeMembership(ch: ConfChange, baseIndex: Long? = null): ProposeResult {
        if (mut.configBeforeOwnTermCommit || mut.twoConfigsInFlight) return proposeMembershipMutated(ch, baseIndex)
        if (role != Role.LEADER) return ProposeResult(leaderHint = leaderId, reason = "not the leader", refusal = Refusal.NOT_LEADER)
        if (transferTarget != NO_NODE) {
            return ProposeResult(leaderHint = transferTarget, reason = "leadership transfer in progress", refusal = Refusal.TRANSFERRING)
        }
        if (log.termAt(log.committed) != term) {
            return ProposeResult(reason = "this leader has not committed an entry of its term yet; retry", refusal = Refusal.RETRY)
        }
        if (membershipIndex > log.committed) {
            return ProposeResult(reason = "the membership change at index $membershipIndex has not committed yet; one change at a time",
                refusal = Refusal.RETRY)
        }
        if (baseIndex != null && baseIndex != membershipIndex) {
            return ProposeResult(reason = "the membership changed since index $baseIndex (now at $membershipIndex); read it again",
                refusal = Refusal.CONFLICT)
        }
        val pr = progress[ch.node]
        if (pr != null && ch.type == ChangeType.PROMOTE) {
            val behind = log.lastIndex() - pr.match
            if (behind > config.promoteMaxLag || !pr.recentActive) {
                val heard = if (pr.recentActive) "active" else "not heard from lately"
                return ProposeResult(reason = "${ch.node} is not caught up ($behind entries behind, $heard); retry once it is",
                    refusal = Refusal.RETRY)
            }
        }
        val m = try {
            membership.apply(ch)
        } catch (e: MembershipError) {
            return ProposeResult(reason = e.msg, refusal = Refusal.INVALID)
        }
        return appendConfig(m)
    }

    private fun appendConfig(m: Membership): ProposeResult {
        val e = Entry(log.lastIndex() + 1, term, EntryKind.CONFIG, m.encode())
        log.append(listOf(e))
        setMembership(m, e.index, e.term)
        return ProposeResult(accepted = true, index = e.index, term = e.term)
    }

    /** proposeMembership as the Python mutations config_before_own_term_commit and two_configs_in_flight write it. */
    private fun proposeMembershipMutated(ch: ConfChange, baseIndex: Long?): ProposeResult {
        if (role != Role.LEADER) return ProposeResult(leaderHint = leaderId, reason = "not the leader")
        if (transferTarget != NO_NODE) return ProposeResult(reason = "leadership transfer in progress")
        // Mutation config_before_own_term_commit: BUG, this guard is skipped.
        if (log.termAt(log.committed) != term && !mut.configBeforeOwnTermCommit) {
            return ProposeResult(reason = "no entry of this term committed yet")
        }
        // Mutation two_configs_in_flight: BUG, this guard is skipped.
        if (membershipIndex > log.committed && !mut.twoConfigsInFlight) return ProposeResult(reason = "one change at a time")
        if (baseIndex != null && baseIndex != membershipIndex) return ProposeResult(reason = "the membership changed")
        val pr = progress[ch.node]
        if (pr != null && ch.type == ChangeType.PROMOTE) {
            if (log.lastIndex() - pr.match > config.promoteMaxLag || !pr.recentActive) return ProposeResult(reason = "not caught up")
        }
        val m = try {
            membership.apply(ch)
        } catch (e: MembershipError) {
            return ProposeResult(reason = e.msg)
        }
        return appendConfig(m)
    }

    /**
     * Asks for a linearizable read index (thesis §6.4); the answer arrives as
     * a ReadState in a Ready. False when no leader is known.
     */
    fun readIndex(readCtx: String): Boolean {
        if (role == Role.LEADER) {
            leaderRead(readCtx, id)
            return true
        }
        if (leaderId == NO_NODE) return false
        send(Message(MessageType.READ_INDEX, dst = leaderId, readCtx = readCtx))
        return true
    }

    /** Hands leadership to target once its log is current (thesis §3.10). */
    fun transferLeadership(target: String) {
        if (role != Role.LEADER || target == id || target !in voterSet) return
        if (transferTarget == target) return
        transferTarget = target
        electionElapsed = 0 // the transfer is abandoned after an election timeout
        if (progress.getValue(target).match == log.lastIndex()) {
            send(Message(MessageType.TIMEOUT_NOW, dst = target))
        } else {
            sendAppend(target, true)
        }
    }

    /** Starts an election now (pre-vote first when enabled). */
    fun campaign() {
        if (role != Role.LEADER && mayCampaign()) campaign(config.preVote, false)
    }

    /**
     * The transport saw peer's connection drop: if peer is our leader, its
     * lease ends now and we campaign within 1-3 ticks (liveness only).
     */
    fun peerUnreachable(peer: String) {
        if (role == Role.LEADER || peer != leaderId) return
        val ticks = config.electionTicks
        if (electionElapsed < ticks) electionElapsed = ticks // out of lease
        randomizedTimeout = electionElapsed + 1 + rng.intn(3)
    }

    /** Takes the state machine's snapshot through index and drops the log before it. */
    fun compact(index: Long, data: ByteArray) {
        if (index <= log.snapshot.index) return
        if (index > log.applied) invariant("cannot snapshot at $index: only ${log.applied} applied")
        val t = log.termAt(index) ?: invariant("no term at $index")
        val m = membershipInLog(index).first
        log.compact(Snapshot(index, t, data.copyOf(), m.encode()))
    }

    /** Handles one message from a peer (§5.1: terms first, then the role). */
    fun step(m: Message) {
        if (mut.staleAppend && (m.type == MessageType.APPEND || m.type == MessageType.HEARTBEAT) && m.term < term) {
            // Mutation stale_append: BUG, a deposed leader's append is handled
            // and answered in its own (stale) term, so it counts the reply.
            val before = msgs.size
            if (m.type == MessageType.APPEND) handleAppend(m) else handleHeartbeat(m)
            for (i in before until msgs.size) msgs[i] = msgs[i].copy(term = m.term)
            return
        }
        val isVote = m.type == MessageType.VOTE || m.type == MessageType.PRE_VOTE
        if (m.term > term) {
            // Check-quorum's lease (thesis §4.2.3): while we hear from a leader,
            // a node that lost contact must not depose it.
            if (isVote && !m.force && inLease()) return
            when {
                m.type == MessageType.PRE_VOTE -> {} // never change our term because of a pre-vote
                m.type == MessageType.PRE_VOTE_RESP && !m.reject -> {} // a granted pre-vote carries the term we are about to use
                m.type == MessageType.APPEND || m.type == MessageType.HEARTBEAT || m.type == MessageType.SNAPSHOT ->
                    becomeFollower(m.term, m.src)
                m.type == MessageType.VOTE -> {
                    // Adopt the term but keep our election clock: Figure 2 resets
                    // it only when granting a vote (go/raft/core.go, seeds 41072, 45398).
                    val elapsed = electionElapsed
                    val timeout = randomizedTimeout
                    becomeFollower(m.term, NO_NODE)
                    electionElapsed = elapsed
                    randomizedTimeout = timeout
                }
                else -> becomeFollower(m.term, NO_NODE)
            }
        } else if (m.term < term) {
            when (m.type) {
                // Tell a deposed leader about the newer term so it steps down.
                MessageType.APPEND -> send(Message(MessageType.APPEND_RESP, dst = m.src))
                MessageType.HEARTBEAT -> send(Message(MessageType.HEARTBEAT_RESP, dst = m.src))
                // Figure 2: "reply false if term < currentTerm", with our term.
                MessageType.PRE_VOTE -> send(Message(MessageType.PRE_VOTE_RESP, dst = m.src, reject = true))
                MessageType.VOTE -> send(Message(MessageType.VOTE_RESP, dst = m.src, reject = true))
                else -> {}
            }
            return
        }
        if (isVote) handleVoteRequest(m) else stepRole(m)
    }

    private fun stepRole(m: Message) = when (role) {
        Role.FOLLOWER -> stepFollower(m)
        Role.PRE_CANDIDATE, Role.CANDIDATE -> stepCandidate(m)
        Role.LEADER -> stepLeader(m)
    }

    // -- output -------------------------------------------------------------------------

    /** Whether a Ready has anything in it; like Python's has_ready it first batches appends and due heartbeats. */
    fun hasReady(): Boolean {
        flush()
        return msgs.isNotEmpty() || readStates.isNotEmpty() || log.pendingSnapshot != null ||
            log.stable < log.lastIndex() || log.committed > log.applied || hardState != persistedHS
    }

    /** Collects everything the caller must do now (see [Ready]). */
    fun ready(): Ready {
        flush()
        var hs: HardState? = hardState
        if (hs == persistedHS) hs = null
        val entries = log.unstableEntries()
        val snap = log.pendingSnapshot
        val messages = msgs
        val committed = log.committedToApply()
        val reads = readStates
        msgs = ArrayList()
        readStates = ArrayList()
        if (mut.forgetHardState && hs != null) {
            // Mutation forget_hard_state: BUG, claims it was written.
            persistedHS = hs
            hs = null
        }
        if (mut.forgetVote && hs != null && hs.vote != NO_NODE) {
            // Mutation forget_vote: BUG, the vote is not handed over; advance
            // believes the whole hard state was written.
            val real = hs
            hs = HardState(real.term, NO_NODE)
            forgetVoteFake = hs
            forgetVoteReal = real
        }
        if (mut.voteOnlyWithTerm && hs != null && hs.term == persistedHS.term) {
            // Mutation vote_only_with_term: BUG, claims the new vote was written.
            persistedHS = hs
            hs = null
        }
        return Ready(hs, entries, snap, messages, committed, reads)
    }

    /** The caller has persisted, sent and applied rd. */
    fun advance(rd: Ready) {
        val rhs = rd.hardState
        if (rhs != null) {
            var hs: HardState = rhs
            val fake = forgetVoteFake
            if (fake != null && rhs == fake) {
                hs = forgetVoteReal!! // mutation forget_vote (see ready)
                forgetVoteFake = null
                forgetVoteReal = null
            }
            persistedHS = hs
        }
        val pending = log.pendingSnapshot
        if (rd.snapshot != null && pending != null && (rd.snapshot === pending || rd.snapshot == pending)) {
            log.pendingSnapshot = null
        }
        if (rd.entries.isNotEmpty()) {
            val last = rd.entries[rd.entries.size - 1]
            log.stableTo(last.index, last.term)
        }
        if (rd.committed.isNotEmpty()) log.applied = maxOf(log.applied, rd.committed[rd.committed.size - 1].index)
        if (role == Role.LEADER && rd.entries.isNotEmpty()) maybeCommit() // our own copy is durable now and counts
    }

    /** Queues m from this node; a zero term means the current term. */
    private fun send(m: Message) {
        msgs.add(if (m.term == 0L) m.copy(src = id, term = term) else m.copy(src = id))
    }

    // -- membership ---------------------------------------------------------------------

    /**
     * The latest membership in the log (through index `through`, or the whole
     * log when null): the last CONFIG entry, else the snapshot's, else the
     * bootstrap one; with the index and term of what set it.
     */
    private fun membershipInLog(through: Long?): Triple<Membership, Long, Long> {
        val last = through ?: log.lastIndex()
        val ents = log.entries
        for (i in ents.indices.reversed()) {
            val e = ents[i]
            if (e.index <= last && e.kind == EntryKind.CONFIG) return Triple(Membership.decode(e.data), e.index, e.term)
        }
        val snap = log.snapshot
        if (snap.membership.isNotEmpty()) return Triple(Membership.decode(snap.membership), snap.index, snap.term)
        return Triple(bootstrap, 0L, 0L)
    }

    /** Uses m from now on (thesis §4.1: as soon as it is in the log). */
    private fun setMembership(m: Membership, index: Long, term: Long) {
        membership = m
        membershipIndex = index
        membershipTerm = term
        voterSet = HashSet(m.voters)
        peerList = m.members.filter { it != id }
        quorum = m.quorum
        if (role == Role.LEADER) {
            for (p in peerList) if (p !in progress) progress[p] = Progress(log.lastIndex() + 1)
            val it = progress.keys.iterator()
            while (it.hasNext()) {
                val p = it.next()
                if (!(m.contains(p) && p != id)) it.remove()
            }
            if (transferTarget != NO_NODE && transferTarget !in voterSet) transferTarget = NO_NODE
        }
    }

    /** After the log changed under a follower: a CONFIG entry arrived, or the entry that set the membership went. */
    private fun refreshMembership(appended: List<Entry>) {
        val index = membershipIndex
        val stillThere = index <= log.snapshot.index || log.termAt(index) == membershipTerm
        if (stillThere && appended.none { it.kind == EntryKind.CONFIG }) return
        val (m, idx, t) = membershipInLog(null)
        if (idx != membershipIndex || t != membershipTerm) setMembership(m, idx, t)
    }

    /** A leader the committed membership no longer counts as a voter hands over and steps down (thesis §4.2.2). */
    private fun stepDownIfRemoved() {
        if (id in voterSet || membershipIndex > log.committed) return
        var best = NO_NODE
        for ((p, pr) in progress) {
            if (p in voterSet && (best == NO_NODE || pr.match > progress.getValue(best).match)) best = p
        }
        if (best != NO_NODE && progress.getValue(best).match == log.lastIndex()) send(Message(MessageType.TIMEOUT_NOW, dst = best))
        becomeFollower(term, NO_NODE)
    }

    // -- roles --------------------------------------------------------------------------

    private fun reset(newTerm: Long) {
        if (newTerm != term) {
            term = newTerm
            vote = NO_NODE
            confirmedIndex = 0
        }
        leaderId = NO_NODE
        electionElapsed = 0
        heartbeatElapsed = 0
        randomizedTimeout = config.electionTicks + rng.intn(config.electionTicks)
        votes = LinkedHashMap()
        transferTarget = NO_NODE
        pendingReads = java.util.ArrayDeque()
        readsBeforeCommit = ArrayList()
        heartbeatDue = false
        progress.clear()
    }

    private fun becomeFollower(newTerm: Long, leader: String) {
        reset(newTerm)
        role = Role.FOLLOWER
        leaderId = leader
    }

    /** Pre-vote (thesis §9.6) asks first, without touching term or vote. */
    private fun becomePreCandidate() {
        role = Role.PRE_CANDIDATE
        votes = LinkedHashMap()
        leaderId = NO_NODE
    }

    private fun becomeCandidate() {
        reset(term + 1)
        vote = id
        role = Role.CANDIDATE
    }

    private fun becomeLeader() {
        reset(term)
        role = Role.LEADER
        leaderId = id
        for (p in peerList) progress[p] = Progress(log.lastIndex() + 1)
        // §8: a no-op of the new term lets the leader commit everything earlier, and enables ReadIndex.
        log.append(listOf(Entry(log.lastIndex() + 1, term, EntryKind.NOOP)))
    }

    /**
     * A voter campaigns, and so does a node whose latest membership took its
     * vote away while that change is not known committed (thesis §4.2.2).
     */
    private fun mayCampaign(): Boolean {
        if (id in voterSet) return true
        val index = membershipIndex
        return index > log.committed && index > log.snapshot.index && membershipInLog(index - 1).first.isVoter(id)
    }

    /** Asks every voter for a (pre-)vote; transfer overrides their lease. */
    private fun campaign(preVote: Boolean, transfer: Boolean) {
        if (!mayCampaign()) return
        val voteType: MessageType
        val voteTerm: Long
        if (preVote) {
            becomePreCandidate()
            voteType = MessageType.PRE_VOTE
            voteTerm = term + 1
        } else {
            becomeCandidate()
            voteType = MessageType.VOTE
            voteTerm = term
        }
        if (recordVote(id, true) == VoteOutcome.WON) {
            won(voteType)
            return
        }
        for (p in voterSet.filter { it != id }.sortedWith(CODE_POINT_ORDER)) {
            send(Message(voteType, dst = p, term = voteTerm, logIndex = log.lastIndex(), logTerm = log.lastTerm(), force = transfer))
        }
    }

    private fun won(voteType: MessageType) {
        if (voteType == MessageType.PRE_VOTE) campaign(false, false) else becomeLeader()
    }

    private fun recordVote(voter: String, granted: Boolean): VoteOutcome {
        if (voter !in voterSet) return VoteOutcome.PENDING // a member this candidate does not count
        if (voter !in votes) votes[voter] = granted
        val yes = votes.values.count { it }
        val no = votes.size - yes
        if (yes >= quorum) return VoteOutcome.WON
        if (no >= quorum) return VoteOutcome.LOST
        return VoteOutcome.PENDING
    }

    private fun inLease() = config.checkQuorum && leaderId != NO_NODE && electionElapsed < config.electionTicks

    // -- ticks --------------------------------------------------------------------------

    private fun tickElection() {
        electionElapsed++
        if (electionElapsed >= randomizedTimeout && mayCampaign()) {
            electionElapsed = 0
            campaign(config.preVote, false)
        }
    }

    private fun tickLeader() {
        heartbeatElapsed++
        electionElapsed++
        if (electionElapsed >= config.electionTicks) {
            electionElapsed = 0
            if (config.checkQuorum) {
                var active = if (id in voterSet) 1 else 0
                for ((p, pr) in progress) if (p in voterSet && pr.recentActive) active++
                if (active < quorum) {
                    becomeFollower(term, NO_NODE)
                    return
                }
                for (pr in progress.values) pr.recentActive = false
            }
            transferTarget = NO_NODE // a transfer that took this long failed
        }
        if (heartbeatElapsed >= config.heartbeatTicks) {
            heartbeatElapsed = 0
            heartbeatDue = true
        }
    }

    // -- votes --------------------------------------------------------------------------

    private fun handleVoteRequest(m: Message) {
        val resp = if (m.type == MessageType.PRE_VOTE) MessageType.PRE_VOTE_RESP else MessageType.VOTE_RESP
        var canVote = vote == m.src || (vote == NO_NODE && leaderId == NO_NODE) ||
            (m.type == MessageType.PRE_VOTE && m.term > term)
        if (log.lastIndex() < voteFloor) canVote = false
        if (canVote && log.isUpToDate(m.logIndex, m.logTerm)) {
            // §5.2, §5.4.1: grant. A pre-vote reply carries the candidate's future term.
            send(Message(resp, dst = m.src, term = m.term))
            if (m.type == MessageType.VOTE) {
                electionElapsed = 0
                vote = m.src
            }
        } else {
            send(Message(resp, dst = m.src, reject = true))
        }
    }

    // -- per-role message handling ------------------------------------------------------

    private fun stepFollower(m: Message) {
        when (m.type) {
            MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT -> {
                electionElapsed = 0
                leaderId = m.src
                when (m.type) {
                    MessageType.APPEND -> handleAppend(m)
                    MessageType.HEARTBEAT -> handleHeartbeat(m)
                    else -> handleSnapshot(m)
                }
            }
            MessageType.TIMEOUT_NOW -> campaign(false, true)
            MessageType.READ_INDEX_RESP -> if (!m.reject) readStates.add(ReadState(m.readCtx, m.index))
            else -> {} // READ_INDEX sent to a non-leader is dropped; the asker times out.
        }
    }

    private fun stepCandidate(m: Message) {
        when (m.type) {
            MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT -> {
                // §5.2: a leader of our term exists; follow it.
                becomeFollower(term, m.src)
                stepFollower(m)
                return
            }
            else -> {}
        }
        val expected = if (role == Role.PRE_CANDIDATE) MessageType.PRE_VOTE_RESP else MessageType.VOTE_RESP
        if (m.type == expected) {
            when (recordVote(m.src, !m.reject)) {
                VoteOutcome.WON -> won(if (m.type == MessageType.PRE_VOTE_RESP) MessageType.PRE_VOTE else MessageType.VOTE)
                VoteOutcome.LOST -> becomeFollower(term, NO_NODE)
                VoteOutcome.PENDING -> {}
            }
        }
    }

    private fun stepLeader(m: Message) {
        if (m.type == MessageType.READ_INDEX) {
            leaderRead(m.readCtx, m.src)
            return
        }
        val pr = progress[m.src] ?: return
        when (m.type) {
            MessageType.APPEND_RESP -> {
                pr.recentActive = true
                if (m.reject) handleAppendRejection(m, pr) else handleAppendSuccess(m, pr)
            }
            MessageType.HEARTBEAT_RESP -> {
                pr.recentActive = true
                pr.probeSent = false
                // The follower is alive but acks may have been lost: free one slot.
                if (pr.state == ProgressState.REPLICATE && pr.inflight.isNotEmpty()) pr.inflight.removeFirst()
                if (pr.state == ProgressState.SNAPSHOT) {
                    pr.snapshotWait++
                    if (pr.snapshotWait >= SNAPSHOT_RETRY_HEARTBEATS) pr.becomeProbe() // probably lost; resend
                }
                // Behind, or it cannot confirm our commit index from this term: an append re-establishes it.
                if (pr.match < log.lastIndex() || m.reject) sendAppend(m.src, true)
                if (m.context > pr.readAck) {
                    pr.readAck = m.context
                    releaseReads()
                }
            }
            else -> {}
        }
    }

    private fun handleAppendRejection(m: Message, pr: Progress) {
        var nextProbe = m.rejectHint
        if (m.logTerm > 0) nextProbe = log.findConflictByTerm(m.rejectHint, m.logTerm).first
        if (pr.maybeDecreaseTo(m.index, nextProbe)) {
            if (pr.state == ProgressState.REPLICATE) pr.becomeProbe()
            sendAppend(m.src, true)
        }
    }

    private fun handleAppendSuccess(m: Message, pr: Progress) {
        if (!pr.maybeUpdate(m.index)) return
        if (pr.state == ProgressState.PROBE) {
            pr.becomeReplicate()
        } else if (pr.state == ProgressState.SNAPSHOT && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe()
            pr.becomeReplicate()
        }
        maybeCommit() // may step a leader that removed itself down
        if (m.src == transferTarget && pr.match == log.lastIndex()) send(Message(MessageType.TIMEOUT_NOW, dst = m.src))
    }

    // -- follower side of replication ---------------------------------------------------

    private fun handleAppend(m: Message) {
        if (m.logIndex < log.committed) {
            // Everything through our commit index is in the leader's log.
            send(Message(MessageType.APPEND_RESP, dst = m.src, index = log.committed))
            return
        }
        val lastNew = log.maybeAppend(m.logIndex, m.logTerm, m.entries)
        if (lastNew == null) {
            val (hint, hintTerm) = log.findConflictByTerm(minOf(m.logIndex, log.lastIndex()), m.logTerm)
            send(Message(MessageType.APPEND_RESP, dst = m.src, reject = true, index = m.logIndex, rejectHint = hint, logTerm = hintTerm))
            return
        }
        refreshMembership(m.entries)
        confirmedIndex = maxOf(confirmedIndex, lastNew)
        log.commitTo(minOf(m.commit, lastNew))
        send(Message(MessageType.APPEND_RESP, dst = m.src, index = lastNew))
        if (mut.appendCommitPastBatch) {
            // Mutation append_commit_past_batch: BUG, commits past what the append confirmed.
            log.commitTo(minOf(m.commit, log.lastIndex()))
        }
    }

    private fun handleHeartbeat(m: Message) {
        if (mut.heartbeatCommit) {
            // Mutation heartbeat_commit: BUG, not bounded by confirmedIndex.
            log.commitTo(minOf(m.commit, log.lastIndex()))
            send(Message(MessageType.HEARTBEAT_RESP, dst = m.src, context = m.context))
            return
        }
        log.commitTo(minOf(m.commit, confirmedIndex))
        send(Message(MessageType.HEARTBEAT_RESP, dst = m.src, context = m.context, reject = confirmedIndex < m.commit))
    }

    private fun handleSnapshot(m: Message) {
        val snap = m.snapshot ?: invariant("snapshot message from ${m.src} without a snapshot")
        if (snap.index <= log.committed) {
            send(Message(MessageType.APPEND_RESP, dst = m.src, index = log.committed))
            return
        }
        if (log.matchTerm(snap.index, snap.term)) {
            // We hold the snapshot's last entry: everything before it matches.
            confirmedIndex = maxOf(confirmedIndex, snap.index)
            log.commitTo(snap.index)
            send(Message(MessageType.APPEND_RESP, dst = m.src, index = snap.index))
            return
        }
        // Missing or conflicting entry at the snapshot index: the whole log goes.
        log.restore(snap)
        val (mm, mi, mt) = membershipInLog(null)
        setMembership(mm, mi, mt)
        confirmedIndex = snap.index
        send(Message(MessageType.APPEND_RESP, dst = m.src, index = snap.index))
    }

    // -- leader side of replication -----------------------------------------------------

    private fun sendAppend(peer: String, allowEmpty: Boolean): Boolean {
        val pr = progress.getValue(peer)
        if (pr.isPaused(config.maxInflight)) return false
        val prevIndex = pr.next - 1
        val prevTerm = log.termAt(prevIndex)
        if (prevTerm == null) {
            val snap = log.snapshot
            send(Message(MessageType.SNAPSHOT, dst = peer, snapshot = snap))
            pr.becomeSnapshot(snap.index)
            return true
        }
        val entries: List<Entry> = if (pr.next <= log.lastIndex()) {
            log.entriesFrom(pr.next, config.maxMsgBytes)
        } else if (!allowEmpty) {
            return false
        } else emptyList()
        send(Message(MessageType.APPEND, dst = peer, logIndex = prevIndex, logTerm = prevTerm, entries = entries, commit = log.committed))
        pr.sent(prevIndex + entries.size, entries.size)
        return true
    }

    /** Batches new entries into appends and sends due heartbeats (leader only). */
    private fun flush() {
        if (role != Role.LEADER) return
        val last = log.lastIndex()
        for ((p, pr) in progress) {
            while (pr.next <= last && sendAppend(p, false)) {
            }
        }
        if (heartbeatDue) {
            heartbeatDue = false
            heartbeatSeq++
            send(Message(MessageType.HEARTBEAT, dst = BROADCAST, commit = log.committed, context = heartbeatSeq))
        }
    }

    /** §5.3/§5.4.2: commit the highest index a majority stores, if of our term. */
    private fun maybeCommit() {
        if (mut.oldTermCommit) {
            maybeCommitOldTerm()
            return
        }
        if (mut.learnerCountsInQuorum) {
            // Mutation learner_counts_in_quorum: BUG, learners' matches count
            // too (the whole commit step sees every member as a voter).
            val real = voterSet
            voterSet = HashSet(membership.members)
            try {
                commitStep()
            } finally {
                voterSet = real
            }
            return
        }
        commitStep()
    }

    private fun commitStep() {
        val matches = ArrayList<Long>()
        for ((p, pr) in progress) if (p in voterSet) matches.add(pr.match)
        if (id in voterSet) matches.add(log.stable) // our own copy counts once it is durable
        if (matches.size < quorum) return
        matches.sortDescending()
        val candidate = matches[quorum - 1]
        if (candidate > log.committed && log.termAt(candidate) == term) {
            log.commitTo(candidate)
            heartbeatDue = true // tell followers promptly
            if (membershipIndex <= candidate) {
                stepDownIfRemoved()
                if (role != Role.LEADER) return
            }
            releaseReadsBeforeCommit()
        }
    }

    /** Mutation old_term_commit: BUG, the commit rule without "and term_at(candidate) == term" (§5.4.2). */
    private fun maybeCommitOldTerm() {
        val matches = ArrayList<Long>()
        for (pr in progress.values) matches.add(pr.match)
        matches.add(log.stable)
        if (matches.size < quorum) return
        matches.sortDescending()
        val candidate = matches[quorum - 1]
        if (candidate > log.committed) { // BUG: no "and term_at(candidate) == term"
            log.commitTo(candidate)
            heartbeatDue = true
            releaseReadsBeforeCommit()
        }
    }

    private fun releaseReadsBeforeCommit() {
        if (readsBeforeCommit.isNotEmpty()) {
            val waiting = readsBeforeCommit
            readsBeforeCommit = ArrayList()
            for (r in waiting) leaderRead(r.readCtx, r.requester)
        }
    }

    // -- linearizable reads (thesis §6.4) -----------------------------------------------

    private fun leaderRead(readCtx: String, requester: String) {
        if (log.termAt(log.committed) != term) {
            // Until an entry of our term commits we do not know the commit index.
            readsBeforeCommit.add(ReadRequest(readCtx, requester))
            return
        }
        if (mut.readWithoutQuorum) {
            // Mutation read_without_quorum: BUG, no heartbeat round to a majority.
            deliverRead(readCtx, requester, log.committed)
            return
        }
        if (voterSet.size == 1 && id in voterSet) {
            deliverRead(readCtx, requester, log.committed)
            return
        }
        // A majority must echo a heartbeat sent after this moment.
        pendingReads.addLast(PendingRead(readCtx, requester, log.committed, heartbeatSeq + 1))
        heartbeatDue = true
    }

    private fun releaseReads() {
        while (pendingReads.isNotEmpty()) {
            val read = pendingReads.peekFirst()
            var acks = if (id in voterSet) 1 else 0
            for ((p, pr) in progress) if (p in voterSet && pr.readAck >= read.seq) acks++
            if (acks < quorum) return
            pendingReads.removeFirst()
            deliverRead(read.readCtx, read.requester, read.index)
        }
    }

    private fun deliverRead(readCtx: String, requester: String, index: Long) {
        if (requester == id) readStates.add(ReadState(readCtx, index)) else {
            send(Message(MessageType.READ_INDEX_RESP, dst = requester, readCtx = readCtx, index = index))
        }
    }
}
