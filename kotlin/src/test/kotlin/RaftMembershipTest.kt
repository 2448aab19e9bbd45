// Membership values (a port of go/raft/membership_test.go): CONFIG entries
// and snapshots travel between Python, Go and Kotlin nodes, so encodings must
// be byte-identical to Python's Membership.encode().
package zmqnode.raft

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class RaftMembershipTest {
    fun testMembershipEncodeIsByteIdenticalToPython() {
        val cases = listOf(
            Membership.normalized(emptyList()) to """{"credentials":{},"learners":[],"voters":[]}""",
            Membership.normalized(listOf("c", "a", "b")) to """{"credentials":{},"learners":[],"voters":["a","b","c"]}""",
            Membership.normalized(listOf("127.0.0.1:9002", "127.0.0.1:9000"), listOf("127.0.0.1:9001"),
                mapOf("127.0.0.1:9001" to "rq:W+k]&<>", "127.0.0.1:9000" to "abc")) to
                """{"credentials":{"127.0.0.1:9000":"abc","127.0.0.1:9001":"rq:W+k]&<>"},"learners":["127.0.0.1:9001"],"voters":["127.0.0.1:9000","127.0.0.1:9002"]}""",
            Membership.normalized(listOf("n\u00e9", "\uD83D\uDE00x", "q\"\\\n\t\u0001\u007f"), listOf("zz"), mapOf("zz" to "\u2603/")) to
                """{"credentials":{"zz":"\u2603/"},"learners":["zz"],"voters":["n\u00e9","q\"\\\n\t\u0001\u007f","\ud83d\ude00x"]}""",
            // Python sorts str by code point: U+FFFD before U+1F600, though its
            // UTF-16 unit 0xFFFD is above the surrogate 0xD83D (JVM pitfall).
            Membership.normalized(listOf("\uD83D\uDE00", "\uFFFD", "z")) to
                """{"credentials":{},"learners":[],"voters":["z","\ufffd","\ud83d\ude00"]}"""
        )
        for ((m, want) in cases) {
            assertEquals(want, String(m.encode(), Charsets.UTF_8))
            assertEquals(m, Membership.decode(want.toByteArray(Charsets.UTF_8)))
        }
    }

    fun testMembershipAppliesOneChangeAndRoundTrips() {
        val m = Membership.normalized(listOf("a", "b", "c"))
        assertEquals(2, m.quorum)
        val m2 = m.apply(ConfChange(ChangeType.ADD_LEARNER, "d", "key-d"))
        assertEquals(listOf("d"), m2.learners)
        assertEquals(2, m2.quorum)
        assertEquals("key-d", m2.credential("d"))
        val m3 = m2.apply(ConfChange(ChangeType.PROMOTE, "d"))
        assertEquals(listOf("a", "b", "c", "d"), m3.voters)
        assertEquals(3, m3.quorum)
        assertEquals(m3, Membership.decode(m3.encode()))
        assertEquals(listOf("a"), m3.apply(ConfChange(ChangeType.DEMOTE, "a")).learners)
        val r = m3.apply(ConfChange(ChangeType.REMOVE, "d"))
        assertTrue(!r.contains("d") && r.credential("d") == "")
        for (bad in listOf(ConfChange(ChangeType.ADD_LEARNER, "a"), ConfChange(ChangeType.PROMOTE, "a"), ConfChange(ChangeType.REMOVE, "z"))) {
            assertFailsWith<MembershipError> { m.apply(bad) }
        }
        val e = assertFailsWith<MembershipError> { Membership.normalized(listOf("a")).apply(ConfChange(ChangeType.REMOVE, "a")) }
        assertTrue("last voter" in e.msg)
        for (data in listOf("""{"voters": "a"}""", "[]", "null", """{"voters":[],"learners":[1]}""",
            """{"voters":["a"],"learners":["a"]}""", """{"voters":["a"],"learners":[],"credentials":{"b":"k"}}""",
            """{"voters":[],"learners":[],"credentials":{"a":1}}""", "not json", "{\"voters\":[\"\u00ff\"]}")) {
            val bytes = if (data.contains('\u00ff')) byteArrayOf('['.toByte(), 0xff.toByte(), ']'.toByte()) else data.toByteArray(Charsets.UTF_8)
            assertFailsWith<MembershipError>(data) { Membership.decode(bytes) }
        }
        assertEquals(2, Membership.decode("""{"voters":["b","a"],"learners":[]}""".toByteArray(Charsets.UTF_8)).quorum)
    }

    fun testEnumStringsAreThePythonValues() {
        val types = listOf("pre_vote", "pre_vote_resp", "vote", "vote_resp", "append", "append_resp",
            "heartbeat", "heartbeat_resp", "snapshot", "timeout_now", "read_index", "read_index_resp")
        assertEquals(types, MessageType.values().map { it.value })
        for (n in types) assertEquals(n, MessageType.parse(n).value)
        for (k in EntryKind.values()) assertEquals(k, EntryKind.parse(k.value))
        assertEquals(listOf("add_learner", "promote", "demote", "remove"), ChangeType.values().map { it.value })
        assertEquals("candidate", Role.CANDIDATE.value)
        assertEquals("pre_candidate", Role.PRE_CANDIDATE.value)
        assertEquals("", Refusal.NONE.value)
        assertEquals("conflict", Refusal.CONFLICT.value)
        assertFailsWith<IllegalArgumentException> { MessageType.parse("nope") }
    }

    fun testSplitMixDrawsAsGosRandIntnOverTheSameSource() {
        // go/raft/testdata/gen_traces.py's stream: the n2 core of schedule 0 (rng_seed 15838) drew 14 - 10 = 4
        // as its first timeout offset with electionTicks 10; the trace replay checks every later draw.
        assertEquals(4, SplitMix64(15838).intn(10))
        val r = SplitMix64(1)
        repeat(1000) { val v = r.intn(7); assertTrue(v in 0..6) }
        repeat(1000) { val v = r.intn(8); assertTrue(v in 0..7) }
    }
}
