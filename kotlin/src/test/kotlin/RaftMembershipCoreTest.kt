// Membership changes through the core: learners, promotion, the one-change
// and own-term rules, removals (the leader's too), snapshots and restarts (a
// port of go/raft/membership_core_test.go).
package zmqnode.raft

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class RaftMembershipCoreTest {
    private fun b(s: String) = s.toByteArray(Charsets.UTF_8)

    fun testALearnerGetsTheLogButNeverVotesNorCounts() {
        val net = joining(listOf("d"))
        assertTrue(change(net, "a", ChangeType.ADD_LEARNER, "d").accepted && commitOne(net, "a"))
        val d = net.get("d")
        assertEquals(listOf("d"), d.membership.learners)
        assertEquals(net.get("a").commitIndex, d.commitIndex)
        // It never campaigns, however long it hears nothing.
        net.isolate("d")
        net.tick(listOf("d"), 5 * E, true)
        assertEquals(Role.FOLLOWER, d.role)
        assertTrue(net.pending("", MessageType.PRE_VOTE, MessageType.VOTE).isEmpty())
        net.heal()
        // Its acks do not make a quorum: with b and c cut off nothing commits.
        net.partition(listOf("a", "d"), listOf("b", "c"))
        val before = net.get("a").commitIndex
        net.get("a").propose(b("y"))
        net.stabilize()
        assertEquals(before, net.get("a").commitIndex)
        assertEquals(net.get("a").lastIndex, d.lastIndex)
    }

    fun testALearnerIsPromotedOnlyOnceCaughtUp() {
        val net = joining(listOf("d"), listOf({ c: Config -> c.copy(promoteMaxLag = 2) }))
        change(net, "a", ChangeType.ADD_LEARNER, "d")
        net.isolate("d")
        repeat(5) { commitOne(net, "a") }
        val refused = net.get("a").proposeMembership(ConfChange(ChangeType.PROMOTE, "d"))
        assertTrue(!refused.accepted && "not caught up" in refused.reason && refused.refusal == Refusal.RETRY, "$refused")
        net.heal()
        net.tick(null, 2, true)
        assertTrue(change(net, "a", ChangeType.PROMOTE, "d").accepted)
        assertEquals(listOf("a", "b", "c", "d"), net.get("a").voters)
        assertEquals(3, net.get("a").quorum)
        net.partition(listOf("a", "b"), listOf("c", "d"))
        val before = net.get("a").commitIndex
        net.get("a").propose(b("z"))
        net.stabilize()
        assertEquals(before, net.get("a").commitIndex, "committed with 2 of 4")
    }

    fun testNoChangeBeforeTheLeaderCommitsInItsTerm() {
        val net = RaftNet()
        net.get("a").campaign()
        net.stabilize { _, m -> m.type == MessageType.APPEND }
        assertTrue(net.get("a").isLeader)
        val refused = net.get("a").proposeMembership(ConfChange(ChangeType.REMOVE, "c"))
        assertTrue(!refused.accepted && "not committed an entry of its term" in refused.reason && refused.refusal == Refusal.RETRY, "$refused")
        net.stabilize()
        assertTrue(net.get("a").proposeMembership(ConfChange(ChangeType.REMOVE, "c")).accepted)
    }

    fun testOneChangeAtATimeAndTheBaseIndexGuard() {
        val net = joining(listOf("d", "e"))
        net.partition(listOf("a"), listOf("b", "c", "d", "e"))
        val first = net.get("a").proposeMembership(ConfChange(ChangeType.ADD_LEARNER, "d"))
        assertTrue(first.accepted, "$first")
        val second = net.get("a").proposeMembership(ConfChange(ChangeType.ADD_LEARNER, "e"))
        assertTrue(!second.accepted && "one change at a time" in second.reason && second.refusal == Refusal.RETRY, "$second")
        net.heal()
        net.stabilize()
        val stale = net.get("a").proposeMembership(ConfChange(ChangeType.ADD_LEARNER, "e"), 0)
        assertTrue(!stale.accepted && "now at 2" in stale.reason && stale.refusal == Refusal.CONFLICT, "$stale")
        assertTrue(net.get("a").proposeMembership(ConfChange(ChangeType.ADD_LEARNER, "e"), first.index).accepted)
    }

    fun testARemovedFollowerNoLongerCounts() {
        val net = RaftNet()
        net.elect("a")
        assertTrue(change(net, "a", ChangeType.REMOVE, "c").accepted)
        assertEquals(listOf("a", "b"), net.get("a").voters)
        assertEquals(listOf("b"), net.get("a").peers)
        net.isolate("c")
        assertTrue(commitOne(net, "a"), "a and b are the whole quorum now")
        net.heal()
        net.sent.clear()
        net.tick(null, 3, true)
        assertTrue(net.sent.none { it.dst == "c" && it.m.type == MessageType.APPEND })
    }

    fun testTheLeaderRemovesItselfLeadsUntilItCommitsThenHandsOver() {
        val net = RaftNet()
        net.elect("a")
        val res = net.get("a").proposeMembership(ConfChange(ChangeType.REMOVE, "a"))
        assertTrue(res.accepted && net.get("a").isLeader)
        net.stabilize()
        assertTrue(net.get("a").commitIndex >= res.index)
        assertEquals(Role.FOLLOWER, net.get("a").role)
        assertTrue(net.sentOf(MessageType.TIMEOUT_NOW).isNotEmpty())
        net.stabilize()
        val l = net.leaders()
        assertTrue(l.size == 1 && (l[0] == "b" || l[0] == "c"), "$l")
        assertTrue(commitOne(net, l[0]))
        net.tick(listOf("a"), 5 * E, true)
        assertEquals(Role.FOLLOWER, net.get("a").role)
        assertEquals(l, net.leaders())
    }

    // Thesis §4.2.2: a server not in its own latest configuration "should still start new elections, as it
    // might still be needed until the Cnew entry is committed ... It does not count its own vote".
    fun testALeaderThatRemovedItselfCampaignsUntilTheChangeCommits() {
        val net = RaftNet(listOf("a", "b"))
        net.elect("a")
        val removal = net.get("a").proposeMembership(ConfChange(ChangeType.REMOVE, "a"))
        assertTrue(removal.accepted)
        net.process("a")
        net.drop()
        net.crash("a")
        net.restart("a")
        assertEquals(listOf("b"), net.get("a").voters)
        assertEquals(listOf("a", "b"), net.get("b").voters)
        net.tick(listOf("b"), 3 * E, true)
        assertEquals(emptyList(), net.leaders())
        net.tick(listOf("a"), 3 * E, true)
        assertEquals(listOf("b"), net.leaders())
        val bb = net.get("b")
        assertEquals(listOf("b"), bb.voters)
        assertTrue(bb.commitIndex >= removal.index)
        assertEquals(Role.FOLLOWER, net.get("a").role)
        assertTrue(commitOne(net, "b"))
    }

    fun testADemotedVoterThatKnowsTheChangeCommittedNeverCampaigns() {
        val net = RaftNet()
        net.elect("a")
        val demotion = change(net, "a", ChangeType.DEMOTE, "c")
        commitOne(net, "a")
        assertEquals(listOf("c"), net.get("c").membership.learners)
        assertTrue(net.get("c").commitIndex >= demotion.index)
        net.sent.clear()
        net.tick(listOf("c"), 5 * E, true)
        assertTrue(net.sentOf(MessageType.PRE_VOTE, MessageType.VOTE).isEmpty(), "campaigned")
    }

    // Figure 2, RequestVote receiver: "Reply false if term < currentTerm", with currentTerm.
    fun testAStaleCandidateLearnsTheVotersTermFromItsRefusal() {
        val voter = newCore(id = "b", peers = listOf("a", "c"), hs = HardState(5), cfg = listOf(noPreVote))
        val cand = newCore(id = "a", peers = listOf("b", "c"), hs = HardState(2), cfg = listOf(noPreVote))
        cand.campaign()
        assertEquals(3L, ofType(drain(cand).messages, MessageType.VOTE)[0].term)
        voter.step(Message(MessageType.VOTE, "a", "b", 3))
        val r = drain(voter).messages
        assertTrue(r.size == 1 && r[0].type == MessageType.VOTE_RESP && r[0].term == 5L && r[0].reject, "$r")
        assertEquals(5L, voter.term)
        assertEquals("", voter.vote)
        cand.step(r[0])
        assertEquals(Role.FOLLOWER, cand.role)
        assertEquals(5L, cand.term)
        cand.campaign()
        val req = drain(cand).messages.last { it.type == MessageType.VOTE && it.dst == "b" }
        voter.step(req)
        val g = drain(voter).messages
        assertTrue(g.size == 1 && g[0].type == MessageType.VOTE_RESP && g[0].term == 6L && !g[0].reject, "$g")
    }

    fun testATruncatedConfigEntryTakesItsMembershipWithIt() {
        val net = RaftNet()
        val removal = Entry(2, 1, EntryKind.CONFIG, Membership.of(listOf("a", "b")).encode())
        net.load("b", 1, listOf(Entry(1, 1), removal), "")
        net.load("a", 2, listOf(Entry(1, 1), Entry(2, 2)), "")
        net.load("c", 2, listOf(Entry(1, 1), Entry(2, 2)), "")
        assertEquals(listOf("a", "b"), net.get("b").voters)
        net.elect("c")
        net.stabilize()
        val bb = net.get("b")
        assertEquals(2L, bb.termAt(2))
        assertEquals(listOf("a", "b", "c"), bb.voters)
        assertEquals(0L, bb.membershipIndex)
    }

    fun testASnapshotCarriesTheMembershipToANewLearner() {
        val net = joining(listOf("d"))
        change(net, "a", ChangeType.REMOVE, "c")
        commitOne(net, "a")
        commitOne(net, "a")
        val snap = net.compact("a", net.get("a").appliedIndex)
        assertEquals(listOf("a", "b"), Membership.decode(snap.membership).voters)
        assertTrue(change(net, "a", ChangeType.ADD_LEARNER, "d").accepted)
        net.tick(null, 3, true)
        val d = net.get("d")
        assertEquals(snap.index, d.snapshot.index)
        assertEquals(listOf("d"), d.membership.learners)
        assertEquals(listOf("a", "b"), d.voters)
    }

    fun testARestartedNodeReadsItsMembershipFromItsLog() {
        val net = joining(listOf("d"))
        change(net, "a", ChangeType.ADD_LEARNER, "d")
        commitOne(net, "a")
        net.crash("b")
        net.restart("b")
        assertEquals(listOf("d"), net.get("b").membership.learners)
    }

    fun testAJoinedNodeGrantsNoVoteBeforeItsLogReachesItsJoin() {
        fun joined(floor: Long) = Core("x", listOf("a", "b"), testConfig(), SplitMix64(0), Options(voteFloor = floor))
        var c = joined(5)
        c.step(Message(MessageType.VOTE, "a", "x", 3, 2, 1))
        val r = ofType(c.ready().messages, MessageType.VOTE_RESP)
        assertTrue(r.size == 1 && r[0].reject && c.vote == "", "$r")
        c = joined(0)
        c.step(Message(MessageType.VOTE, "a", "x", 3, 2, 1))
        assertEquals("a", c.vote)
    }

    fun testMembershipAtFollowsTheLog() {
        val net = joining(listOf("d"))
        val res = change(net, "a", ChangeType.ADD_LEARNER, "d")
        val a = net.get("a")
        assertTrue(!a.membershipAt(res.index - 1).contains("d"))
        assertTrue(a.membershipAt(res.index).isLearner("d"))
        assertEquals(res.index, a.membershipIndex)
    }

    fun testAConfigEntryThatDoesNotDecodeIsAnError() {
        val c = follower(1)
        assertFailsWith<MembershipError> {
            c.step(appendMsg("b", 1, 0, 0, listOf(Entry(1, 1, EntryKind.CONFIG, b("junk"))), 0))
        }
    }

    // Where the Go core keeps the error of a method with no error result (Tick) for the next Step, the
    // Kotlin core throws it at once, as Python raises.
    fun testAnErrorInTickIsThrown() {
        val others = Membership.of(listOf("b", "c"), listOf("a"))
        val c = newCore(entries = listOf(Entry(1, 1, EntryKind.CONFIG, b("junk")), Entry(2, 1, EntryKind.CONFIG, others.encode())))
        assertFailsWith<MembershipError> { repeat(2 * E) { c.tick() } } // mayCampaign reads the membership before entry 2
    }
}
