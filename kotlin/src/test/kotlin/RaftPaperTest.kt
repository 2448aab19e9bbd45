// The Raft rules, one behaviour per test: a selection ported from
// go/raft/paper_test.go and paper_replication_test.go (themselves the
// Python tests/test_raft_paper.py). Each comment quotes the sentence of the
// Raft paper (§) or of Ongaro's thesis it checks.
package zmqnode.raft

import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

class RaftPaperTest {
    private fun rejected(msgs: List<Message>, type: MessageType) = ofType(msgs, type).filter { it.reject }

    private fun tickN(c: Core, n: Int) = repeat(n) { c.tick() }

    private fun ticksUntil(c: Core, limit: Int, pred: (Core) -> Boolean): Int {
        for (n in 1..limit) {
            c.tick()
            if (pred(c)) return n
        }
        fail("condition not reached after $limit ticks")
    }

    private fun candidate(): Core {
        val c = follower(1, cfg = listOf(noPreVote))
        c.campaign()
        drain(c)
        assertEquals(Role.CANDIDATE, c.role)
        return c
    }

    private fun preCandidate(): Core {
        val c = follower(1)
        c.campaign()
        drain(c)
        assertEquals(Role.PRE_CANDIDATE, c.role)
        return c
    }

    private fun leader(): Core {
        val c = follower(1)
        makeLeader(c)
        return c
    }

    // §5.1: "if one server's current term is smaller than the other's, then it
    // updates its current term to the larger value." Persisted with any reply.
    fun testFollowerUpdatesTermFromHigherTermMessage() {
        for ((type, reject, leader) in listOf(Triple(MessageType.APPEND, false, "b"), Triple(MessageType.HEARTBEAT, false, "b"),
            Triple(MessageType.VOTE, false, ""), Triple(MessageType.VOTE_RESP, true, ""), Triple(MessageType.APPEND_RESP, false, ""),
            Triple(MessageType.HEARTBEAT_RESP, false, ""))) {
            val c = follower(1)
            c.step(Message(type, "b", "a", 3, reject = reject))
            assertEquals(Triple(3L, Role.FOLLOWER, leader), Triple(c.term, c.role, c.leaderId), "$type")
            assertEquals(3L, drain(c).hardState?.term, "$type")
        }
    }

    // §5.1: "If a server receives a request with a stale term number, it rejects the request."
    fun testStaleTermAppendIsRejectedWithCurrentTerm() {
        val c = follower(3, ents(1, 1))
        c.step(appendMsg("b", 2, 2, 1, entsFrom(3, 2), 2))
        val rd = drain(c)
        assertEquals(listOf(1L, 1L), termsOf(c.logEntries))
        assertEquals(0L, c.commitIndex)
        assertEquals("", c.leaderId)
        val m = rd.messages.single()
        assertTrue(m.type == MessageType.APPEND_RESP && m.dst == "b" && m.term == 3L, "$m")
    }

    // §5.2: a stale leader's heartbeat is not a valid RPC and must not hold back an election.
    fun testStaleTermHeartbeatNeitherCommitsNorResetsElectionTimer() {
        val c = follower(3, ents(1, 1))
        tickN(c, c.randomizedTimeout - 1)
        c.step(Message(MessageType.HEARTBEAT, "b", BROADCAST, 2, commit = 2, context = 7))
        val rd = drain(c)
        assertEquals(0L, c.commitIndex)
        assertTrue(rd.messages.single().type == MessageType.HEARTBEAT_RESP && rd.messages.single().term == 3L)
        c.tick()
        assertEquals(Role.PRE_CANDIDATE, c.role)
    }

    // Figure 2, RequestVote receiver 1: "Reply false if term < currentTerm".
    fun testStaleTermVoteRequestIsNotGranted() {
        val c = follower(3)
        c.step(voteMsg("b", 2, 0, 0, false))
        c.step(voteMsg("b", 2, 0, 0, true))
        val rd = drain(c)
        assertEquals("", c.vote)
        assertEquals(3L, c.term)
        assertEquals(1, rejected(rd.messages, MessageType.VOTE_RESP).size)
        assertEquals(1, rejected(rd.messages, MessageType.PRE_VOTE_RESP).size)
    }

    // §5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts to follower state."
    fun testLeaderAndCandidatesStepDownOnHigherTerm() {
        val makers = listOf<() -> Core>({ leader() }, { candidate() }, { preCandidate() })
        for (mk in makers) {
            for (type in listOf(MessageType.APPEND, MessageType.HEARTBEAT, MessageType.APPEND_RESP, MessageType.HEARTBEAT_RESP, MessageType.VOTE_RESP)) {
                val c = mk()
                val higher = c.term + 2
                c.step(Message(type, "b", "a", higher, reject = type == MessageType.VOTE_RESP))
                val want = if (type == MessageType.APPEND || type == MessageType.HEARTBEAT) "b" else ""
                assertEquals(Triple(Role.FOLLOWER, higher, want), Triple(c.role, c.term, c.leaderId), "$type")
            }
        }
    }

    // §5.2: "a follower increments its current term and transitions to candidate state. It then votes for
    // itself and issues RequestVote RPCs in parallel to each of the other servers".
    fun testFollowerStartsElectionAfterElectionTimeout() {
        val c = follower(1, ents(1, 1), cfg = listOf(noPreVote))
        tickN(c, c.randomizedTimeout - 1)
        assertEquals(Role.FOLLOWER, c.role)
        c.tick()
        assertEquals(Triple(Role.CANDIDATE, 2L, "a"), Triple(c.role, c.term, c.vote))
        val reqs = ofType(drain(c).messages, MessageType.VOTE)
        assertEquals(listOf("b", "c"), reqs.map { it.dst })
        for (m in reqs) assertTrue(m.term == 2L && m.logIndex == 2L && m.logTerm == 1L, "$m")
    }

    // Thesis §9.6: "a candidate only increments its term if it first learns from a majority ... that they
    // would be willing to grant the candidate their votes."
    fun testFollowerStartsPreElectionWithoutTouchingTerm() {
        val c = follower(4, ents(1, 4))
        ticksUntil(c, 1000) { it.role != Role.FOLLOWER }
        assertEquals(Triple(Role.PRE_CANDIDATE, 4L, ""), Triple(c.role, c.term, c.vote))
        val rd = drain(c)
        assertNull(rd.hardState)
        val reqs = ofType(rd.messages, MessageType.PRE_VOTE)
        assertEquals(2, reqs.size)
        for (m in reqs) assertTrue(m.term == 5L && m.logIndex == 2L && m.logTerm == 4L, "$m")
    }

    // Figure 2: currentTerm and votedFor are persisted before responding.
    fun testCandidatePersistsSelfVoteInTheSameReadyAsItsVoteRequests() {
        val c = follower(1)
        c.campaign()
        var rd = c.ready()
        assertTrue(ofType(rd.messages, MessageType.PRE_VOTE).isNotEmpty() && rd.hardState == null)
        c.advance(rd)
        for (p in listOf("b", "c")) c.step(msg(MessageType.PRE_VOTE_RESP, p, "a", 2))
        rd = c.ready()
        assertTrue(ofType(rd.messages, MessageType.VOTE).isNotEmpty())
        assertEquals(HardState(2, "a"), rd.hardState)
        c.advance(rd)
        assertNull(c.ready().hardState, "persisted twice")
    }

    // §5.2: "Each server will vote for at most one candidate in a given term, on a first-come-first-served basis."
    fun testVoteGrantedAtMostOncePerTerm() {
        val c = follower(1)
        c.step(voteMsg("b", 2, 0, 0, false))
        c.step(voteMsg("c", 2, 0, 0, false))
        c.step(voteMsg("b", 2, 0, 0, false))
        val got = ofType(drain(c).messages, MessageType.VOTE_RESP).map { it.dst + if (it.reject) "-" else "+" }
        assertEquals(listOf("b+", "c-", "b+"), got)
        assertEquals("b", c.vote)
    }

    // §5.4.1: "If the logs have last entries with different terms, then the log with the later term is more
    // up-to-date. If the logs end with the same term, then whichever log is longer is more up-to-date."
    fun testVoteRequiresCandidateLogAtLeastAsUpToDate() {
        for (pre in listOf(false, true)) {
            for ((idx, term, grant) in listOf(Triple(1L, 1L, false), Triple(3L, 1L, false), Triple(1L, 2L, false),
                Triple(2L, 2L, true), Triple(5L, 2L, true), Triple(1L, 3L, true))) {
                val c = follower(2, ents(1, 2))
                c.step(voteMsg("b", 3, idx, term, pre))
                val rd = drain(c)
                val resp = if (pre) MessageType.PRE_VOTE_RESP else MessageType.VOTE_RESP
                assertEquals(grant, granted(rd.messages, resp).size == 1, "pre=$pre $idx@$term")
                assertEquals(!grant, rejected(rd.messages, resp).size == 1, "pre=$pre $idx@$term")
            }
        }
    }

    // §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the full cluster."
    fun testCandidateWinsOnlyWithVotesFromAMajority() {
        val cases = listOf(
            Triple(1, mapOf<String, Boolean>(), Role.LEADER),
            Triple(3, mapOf("p1" to true), Role.LEADER),
            Triple(3, mapOf("p1" to false), Role.CANDIDATE),
            Triple(3, mapOf("p1" to false, "p2" to false), Role.FOLLOWER),
            Triple(5, mapOf("p1" to true), Role.CANDIDATE),
            Triple(5, mapOf("p1" to true, "p2" to true), Role.LEADER),
            Triple(5, mapOf("p1" to false, "p2" to false, "p3" to false), Role.FOLLOWER),
            Triple(5, mapOf("p1" to true, "p2" to false, "p3" to false, "p4" to true), Role.LEADER),
            Triple(4, mapOf("p1" to true), Role.CANDIDATE),
            Triple(4, mapOf("p1" to true, "p2" to true), Role.LEADER))
        for ((i, case) in cases.withIndex()) {
            val (size, votes, want) = case
            val c = newCore(peers = (1 until size).map { "p$it" }, cfg = listOf(noPreVote))
            c.campaign()
            drain(c)
            for (p in listOf("p1", "p2", "p3", "p4")) {
                val g = votes[p] ?: continue
                c.step(Message(MessageType.VOTE_RESP, p, "a", 1, reject = !g))
            }
            assertEquals(Pair(want, 1L), Pair(c.role, c.term), "case $i")
        }
    }

    // §5.4.2: "Raft never commits log entries from previous terms by counting replicas."
    fun testLeaderOnlyCommitsEntriesOfItsOwnTermByCountingReplicas() {
        val c = follower(2, ents(1, 2))
        makeLeader(c)
        for ((index, want) in listOf(1L to 0L, 2L to 0L, 3L to 3L)) {
            c.step(Message(MessageType.APPEND_RESP, "b", "a", 3, index = index))
            assertEquals(want, c.commitIndex, "ack $index")
        }
    }

    // §5.4.2 and Figure 8: "a log entry [from a previous term] ... stored on a majority of servers could
    // still be overwritten by a future leader."
    fun testFigure8OldTermEntryOnAMajorityIsNotCommitted() {
        val net = runFigure8(emptyList())
        val s1 = net.get("s1")
        assertEquals(listOf(1L, 2L, 4L), termsOf(net.get("s2").logEntries))
        assertEquals(listOf(1L, 2L), termsOf(net.get("s3").logEntries))
        assertEquals(3L, net.progress("s1", "s2").match)
        assertEquals(2L, net.progress("s1", "s3").match)
        assertEquals(0L, s1.commitIndex)
        // (d): S1 crashes, S5 comes back and is elected by S3, S4 (and itself).
        net.crash("s1")
        net.drop()
        net.restart("s5")
        repeat(2) {
            net.get("s5").campaign()
            net.stabilize()
        }
        assertEquals(listOf("s5"), net.leaders())
        assertEquals(5L, net.get("s5").term)
        for (id in listOf("s2", "s3", "s4")) assertEquals(listOf(1L, 3L, 5L), termsOf(net.get(id).logEntries), id)
        for (id in net.ids) assertTrue(net.applied[id].orEmpty().none { it.index == 2L && it.term == 2L }, "$id applied 2@2")
    }

    // Figure 2 receiver rule 5 (issue 16): "set commitIndex = min(leaderCommit, index of last new entry)".
    fun testBatchLimitedAppendDoesNotCommitTheDivergentEntryJustPastIt() {
        val (c, rd) = issue16BatchLimitedAppend(emptyList())
        assertEquals(3L, c.term)
        assertEquals(2L, c.commitIndex)
        assertEquals(listOf(1L, 2L), rd.committed.map { it.index })
        assertEquals(2L, ofType(rd.messages, MessageType.APPEND_RESP)[0].index)
        assertEquals(listOf(1L, 1L, 2L), termsOf(c.logEntries))
        // The next batch replaces it; only then does 3 commit, as the leader's 3@3.
        c.step(appendMsg("b", 3, 2, 1, ents(1, 1, 3).subList(2, 3), 3))
        drain(c)
        assertEquals(3L, c.commitIndex)
        assertEquals(listOf(1L, 1L, 3L), termsOf(c.logEntries))
    }

    // §7: a follower whose next entries were compacted away gets an InstallSnapshot, installs it and catches up.
    fun testALaggingFollowerCatchesUpFromASnapshot() {
        val net = RaftNet()
        net.elect("a")
        net.crash("c")
        repeat(5) { assertTrue(commitOne(net, "a")) }
        net.compact("a", net.get("a").appliedIndex)
        net.restart("c")
        net.tick(null, 3, true)
        assertTrue(net.sentOf(MessageType.SNAPSHOT).isNotEmpty(), "no InstallSnapshot sent")
        val c = net.get("c")
        assertEquals(net.get("a").commitIndex, c.commitIndex)
        assertEquals(net.get("a").snapshot.index, c.snapshot.index)
        assertNotNull(net.storage.getValue("c").snap.data)
    }

    // Thesis §6.4: a read index is served once a majority echoes a heartbeat sent after the request.
    fun testReadIndexWaitsForAMajorityHeartbeatRound() {
        val net = RaftNet()
        net.elect("a")
        net.get("a").readIndex("r1")
        net.processAll()
        assertTrue(net.reads["a"].orEmpty().isEmpty(), "served before the heartbeat round")
        net.stabilize()
        assertEquals<List<ReadState>>(listOf(ReadState("r1", net.get("a").commitIndex)), net.reads["a"].orEmpty())
        // A follower's request goes to the leader and comes back.
        net.get("b").readIndex("r2")
        net.stabilize()
        assertEquals(listOf("r2"), net.reads["b"].orEmpty().map { it.readCtx })
    }

    // Thesis §3.10: leadership transfer sends TimeoutNow once the target's log is current; it wins at once.
    fun testLeadershipTransferHandsOverToACurrentFollower() {
        val net = RaftNet()
        net.elect("a")
        assertTrue(commitOne(net, "a"))
        net.get("a").transferLeadership("b")
        net.stabilize()
        assertEquals(listOf("b"), net.leaders())
        assertTrue(net.sentOf(MessageType.TIMEOUT_NOW).isNotEmpty())
    }
}
