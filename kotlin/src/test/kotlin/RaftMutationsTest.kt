// Each mutation (tests/sim/mutations.py) in a hand-built scenario: the
// correct core keeps the rule, the mutated one visibly breaks it (a port of
// go/raft/mutations_test.go).
package zmqnode.raft

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class RaftMutationsTest {
    private fun mut(on: Boolean, name: String): List<String> = if (on) listOf(name) else emptyList()

    fun testMutationNamesAreThePythonOnes() {
        val want = listOf("append_commit_past_batch", "config_before_own_term_commit", "forget_hard_state", "forget_vote",
            "heartbeat_commit", "learner_counts_in_quorum", "old_term_commit", "read_without_quorum",
            "stale_append", "two_configs_in_flight", "vote_ignores_log", "vote_only_with_term")
        assertEquals(want, Mutations.names)
        assertFailsWith<IllegalArgumentException> { newCore(mutations = listOf("no_such_bug")) }
        for (n in want) newCore(mutations = listOf(n))
    }

    // old_term_commit: §5.4.2, "Raft never commits log entries from previous terms by counting replicas."
    fun testMutationOldTermCommit() {
        for (mutated in listOf(false, true)) {
            val c = follower(2, ents(1, 2), mutations = mut(mutated, Mutations.OLD_TERM_COMMIT))
            makeLeader(c) // term 3, no-op at 3
            c.step(Message(MessageType.APPEND_RESP, "b", "a", 3, index = 2))
            assertEquals(if (mutated) 2L else 0L, c.commitIndex, "mutated=$mutated") // BUG: 2@2 committed
        }
        // Figure 8 with the bug: S1 commits 2@2, which S5 then overwrites.
        assertTrue(runFigure8(listOf(Mutations.OLD_TERM_COMMIT)).get("s1").commitIndex >= 2)
        assertEquals(0L, runFigure8(emptyList()).get("s1").commitIndex)
    }

    // append_commit_past_batch: the issue-16 case.
    fun testMutationAppendCommitPastBatch() {
        var (c, rd) = issue16BatchLimitedAppend(emptyList())
        assertEquals(2L, c.commitIndex)
        val p = issue16BatchLimitedAppend(listOf(Mutations.APPEND_COMMIT_PAST_BATCH))
        c = p.first
        rd = p.second
        assertEquals(3L, c.commitIndex)
        assertEquals(3, rd.committed.size)
        assertEquals(2L, rd.committed[2].term) // BUG: our own 3@2 committed
        // The leader's next batch (prev 2) is below the follower's commit index: answered "matching through 3".
        c.step(appendMsg("b", 3, 2, 1, ents(1, 1, 3).subList(2, 3), 3))
        rd = drain(c)
        val r = ofType(rd.messages, MessageType.APPEND_RESP)
        assertTrue(r.size == 1 && !r[0].reject && r[0].index == 3L, "$r")
        assertEquals(listOf(1L, 1L, 2L), termsOf(c.logEntries))
    }

    // heartbeat_commit: a heartbeat's commit hint is bounded by what an append of this term confirmed.
    fun testMutationHeartbeatCommit() {
        for (mutated in listOf(false, true)) {
            val c = follower(2, ents(1, 1, 1, 1, 1), mutations = mut(mutated, Mutations.HEARTBEAT_COMMIT))
            c.step(Message(MessageType.HEARTBEAT, "b", BROADCAST, 2, commit = 5))
            assertEquals(if (mutated) 5L else 0L, c.commitIndex, "mutated=$mutated")
        }
    }

    // vote_ignores_log: §5.4.1, the voter denies its vote to a candidate whose log is behind.
    fun testMutationVoteIgnoresLog() {
        for (mutated in listOf(false, true)) {
            val c = follower(2, ents(1, 2), mutations = mut(mutated, Mutations.VOTE_IGNORES_LOG))
            c.step(voteMsg("b", 3, 1, 1, false))
            assertEquals(mutated, granted(drain(c).messages, MessageType.VOTE_RESP).size == 1, "mutated=$mutated")
        }
    }

    // stale_append: §5.1, a request with a stale term is rejected, and the reply carries our term.
    fun testMutationStaleAppend() {
        val ok = follower(3, ents(1, 1))
        ok.step(appendMsg("b", 2, 2, 1, entsFrom(3, 2), 2))
        val okRd = drain(ok)
        assertEquals(listOf(1L, 1L), termsOf(ok.logEntries))
        assertEquals(3L, okRd.messages.single().term)

        val c = follower(3, ents(1, 1), mutations = listOf(Mutations.STALE_APPEND))
        c.step(appendMsg("b", 2, 2, 1, entsFrom(3, 2), 2))
        val rd = drain(c)
        assertEquals(listOf(1L, 1L, 2L), termsOf(c.logEntries))
        assertEquals(2L, c.commitIndex)
        val r = rd.messages
        // BUG: the deposed leader counts this as a success of its term
        assertTrue(r.size == 1 && r[0].term == 2L && !r[0].reject && r[0].index == 3L, "$r")
    }

    /** Grants b's vote in term 2, restarts the node from what its Ready asked to persist, and asks again for c. */
    private fun voteTwiceAfterRestart(mutations: List<String>): Boolean {
        val net = RaftNet(cfg = listOf(noPreVote))
        net.mutations = mutations
        net.boot("a")
        net.get("a").step(voteMsg("b", 2, 0, 0, false))
        net.process("a")
        net.crash("a")
        net.restart("a")
        net.get("a").step(voteMsg("c", 2, 0, 0, false))
        return granted(drain(net.get("a")).messages, MessageType.VOTE_RESP).size == 1
    }

    // forget_hard_state: Figure 2, votedFor is persisted before responding.
    fun testMutationForgetHardState() {
        assertTrue(!voteTwiceAfterRestart(emptyList()), "correct core voted twice in one term")
        assertTrue(voteTwiceAfterRestart(listOf(Mutations.FORGET_HARD_STATE)), "mutated core did not vote twice")
    }

    // forget_vote: the term is persisted, the vote is not.
    fun testMutationForgetVote() {
        val c = follower(1, mutations = listOf(Mutations.FORGET_VOTE))
        c.step(voteMsg("b", 2, 0, 0, false))
        val rd = c.ready()
        assertEquals(HardState(2, ""), rd.hardState)
        assertEquals(1, granted(rd.messages, MessageType.VOTE_RESP).size)
        c.advance(rd)
        assertTrue(!c.hasReady() && c.vote == "b", "the core should believe the vote was written")
        assertTrue(voteTwiceAfterRestart(listOf(Mutations.FORGET_VOTE)), "mutated core did not vote twice")
    }

    // vote_only_with_term: a vote granted in a term already persisted must be persisted too.
    fun testMutationVoteOnlyWithTerm() {
        for (mutated in listOf(false, true)) {
            val c = follower(1, ents(1), mutations = mut(mutated, Mutations.VOTE_ONLY_WITH_TERM))
            c.step(voteMsg("b", 2, 0, 0, false)) // rejected: term 2 written, no vote
            drain(c)
            c.step(voteMsg("c", 2, 1, 1, false))
            val rd = c.ready()
            assertEquals(1, granted(rd.messages, MessageType.VOTE_RESP).size)
            assertEquals(mutated, rd.hardState == null, "mutated=$mutated ${rd.hardState}")
        }
    }

    // read_without_quorum: thesis §6.4, a read index waits for a heartbeat round acknowledged by a majority.
    fun testMutationReadWithoutQuorum() {
        for (mutated in listOf(false, true)) {
            val net = RaftNet()
            if (mutated) {
                net.mutations = listOf(Mutations.READ_WITHOUT_QUORUM)
                net.boot("a")
            }
            net.elect("a")
            net.isolate("a") // it may have been deposed: nobody answers
            net.get("a").readIndex("r")
            net.stabilize()
            assertEquals(mutated, net.reads["a"].orEmpty().size == 1, "mutated=$mutated ${net.reads["a"]}")
        }
    }

    // config_before_own_term_commit: a leader proposes a membership change only once it committed an entry of its term.
    fun testMutationConfigBeforeOwnTermCommit() {
        for (mutated in listOf(false, true)) {
            val net = RaftNet()
            if (mutated) {
                net.mutations = listOf(Mutations.CONFIG_BEFORE_OWN_TERM_COMMIT)
                net.boot("a")
            }
            net.get("a").campaign()
            net.stabilize { _, m -> m.type == MessageType.APPEND }
            assertTrue(net.get("a").isLeader, "${net.get("a").role}")
            val res = net.get("a").proposeMembership(ConfChange(ChangeType.REMOVE, "c"))
            assertEquals(mutated, res.accepted, "mutated=$mutated $res")
        }
    }

    // two_configs_in_flight: at most one membership change is in flight.
    fun testMutationTwoConfigsInFlight() {
        for (mutated in listOf(false, true)) {
            val c = follower(1, mutations = mut(mutated, Mutations.TWO_CONFIGS_IN_FLIGHT))
            makeLeader(c)
            c.step(Message(MessageType.APPEND_RESP, "b", "a", 2, index = 1)) // the no-op commits
            assertTrue(c.proposeMembership(ConfChange(ChangeType.ADD_LEARNER, "d")).accepted, "first refused")
            val res = c.proposeMembership(ConfChange(ChangeType.ADD_LEARNER, "e"))
            assertEquals(mutated, res.accepted, "mutated=$mutated $res")
        }
    }

    // learner_counts_in_quorum: a learner never counts toward a quorum.
    fun testMutationLearnerCountsInQuorum() {
        for (mutated in listOf(false, true)) {
            val net = joining(listOf("d"))
            if (mutated) {
                // Reboot a from its disk with the bug, and elect it again.
                net.mutations = listOf(Mutations.LEARNER_COUNTS_IN_QUORUM)
                net.crash("a")
                net.restart("a")
                net.tick(listOf("b", "c"), 3 * E, true)
                for (l in net.leaders()) net.get(l).transferLeadership("a")
                net.stabilize()
                net.tick(null, 2, true)
                assertTrue(net.get("a").isLeader, "${net.leaders()}")
            }
            change(net, "a", ChangeType.ADD_LEARNER, "d")
            commitOne(net, "a")
            net.partition(listOf("a", "d"), listOf("b", "c"))
            val before = net.get("a").commitIndex
            net.get("a").propose("y".toByteArray(Charsets.UTF_8))
            net.stabilize()
            assertEquals(mutated, net.get("a").commitIndex > before, "mutated=$mutated $before ${net.get("a").commitIndex}")
        }
    }
}
