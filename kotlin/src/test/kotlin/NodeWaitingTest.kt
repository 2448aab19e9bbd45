package zmqnode.test

import zmqnode.node.READ_INDEX_RETRY_NANOS
import zmqnode.node.Waiters
import kotlin.test.assertEquals
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

class NodeWaitingTest {
    fun testAReadIndexLostInTransitIsAskedAgain() {
        // Seen in CI: a follower's READ_INDEX reached a leader that had not yet
        // re-read its healed fault file and was dropped; Raft does not resend it,
        // and the LIST timed out after 5 s on a healthy cluster.
        var clock = 1_000_000_000L
        val ws = Waiters("n") { throw it }
        ws.now = { clock }
        val answered = ArrayList<String>()
        ws.afterReadIndex(5000, { answered.add("a") }, { answered.add("a-timeout") })
        val asked = ArrayList<String>()
        val ask = { ctx: String -> asked.add(ctx); true }
        ws.issueReads(ask) // lost
        clock += READ_INDEX_RETRY_NANOS / 2
        ws.issueReads(ask)
        assertEquals(1, asked.size, "not yet: the answer may still come")
        ws.afterReadIndex(5000, { answered.add("b") }, { answered.add("b-timeout") })
        clock += READ_INDEX_RETRY_NANOS
        ws.issueReads(ask) // a's retry joins b's batch
        assertEquals(2, asked.size)
        assertNotEquals(asked[0], asked[1])
        ws.issueReads(ask)
        assertEquals(2, asked.size, "asked again at once")
        ws.readIndexReady(asked[0], 1, 1) // a late first answer: ignored
        assertTrue(answered.isEmpty())
        ws.readIndexReady(asked[1], 1, 1)
        assertEquals(listOf("a", "b"), answered)
        assertEquals(0, ws.readsHeld())
    }

    fun testAReadIndexNeverAnsweredIsLetGoWithItsReads() {
        var clock = 0L
        val ws = Waiters("n") { throw it }
        ws.now = { clock }
        val fired = ArrayList<String>()
        ws.afterReadIndex(1000, { fired.add("a") }, { fired.add("a-timeout") })
        ws.issueReads { true }
        clock += 2_000_000_000L
        assertTrue(ws.expire())
        assertEquals(listOf("a-timeout"), fired)
        assertEquals(0, ws.readsHeld())
        val asked = ArrayList<String>()
        ws.issueReads { asked.add(it); true }
        assertTrue(asked.isEmpty(), "a timed-out read asked again")
    }
}
