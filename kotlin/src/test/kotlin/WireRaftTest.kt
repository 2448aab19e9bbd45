package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.wire.EntryKind
import zmqnode.wire.JsonObject
import zmqnode.wire.ProtocolError
import zmqnode.wire.RaftEntry
import zmqnode.wire.RaftMessage
import zmqnode.wire.RaftMessageType
import zmqnode.wire.RaftSnapshot
import zmqnode.wire.RaftWire

// go/wire/golden_test.go's Raft vectors and wire_test.go's EncodeRaft refusals.
class WireRaftTest {
    private fun messageFromVector(o: JsonObject): RaftMessage {
        val entries = o.list("entries")!!.map {
            val e = it as JsonObject
            RaftEntry(e.int("index")!!, e.int("term")!!, EntryKind.of(e.str("kind"))!!, WireGolden.unb64(e.str("data")!!))
        }
        val snapshot = o.obj("snapshot")?.let { s ->
            RaftSnapshot(s.int("index")!!, s.int("term")!!, WireGolden.unb64(s.str("data")!!),
                s.str("membership")!!.toByteArray(Charsets.UTF_8))
        }
        return RaftMessage(RaftMessageType.of(o.str("type")!!)!!, o.str("src")!!, o.str("dst")!!, o.int("term")!!,
            o.int("log_index")!!, o.int("log_term")!!, entries, o.int("commit")!!, o.bool("reject")!!, o.int("index")!!,
            o.int("reject_hint")!!, o.int("context")!!, o.str("read_ctx")!!, o.bool("force")!!, snapshot)
    }

    private fun sameMessage(got: RaftMessage, want: RaftMessage, name: String) {
        assertEquals(want.copy(entries = emptyList(), snapshot = null), got.copy(entries = emptyList(), snapshot = null), name)
        assertEquals(want.entries.size, got.entries.size, name)
        for ((a, b) in got.entries.zip(want.entries)) {
            assertEquals(b.copy(data = ByteArray(0)).toString(), a.copy(data = ByteArray(0)).toString(), name)
            assertEquals(b.index, a.index)
            assertEquals(b.term, a.term)
            assertEquals(b.kind, a.kind)
            assertTrue(a.data.contentEquals(b.data), "$name: entry data")
        }
        assertEquals(want.snapshot == null, got.snapshot == null, name)
        val s = got.snapshot
        val w = want.snapshot
        if (s != null && w != null) {
            assertEquals(w.index, s.index, name)
            assertEquals(w.term, s.term, name)
            assertTrue(s.data.contentEquals(w.data), "$name: snapshot data")
            assertEquals(String(w.membership, Charsets.UTF_8), String(s.membership, Charsets.UTF_8), name)
        }
    }

    fun testGoldenRaftMessagesEveryType() {
        val seen = HashSet<RaftMessageType>()
        for (vec in WireGolden.load("raft")) {
            val name = vec.str("name")!!
            val fr = WireGolden.frames(vec, "frames")
            val got = RaftWire.decode(fr)
            seen.add(got.type)
            val want = messageFromVector(vec.obj("message")!!)
            sameMessage(got, want, name)
            WireGolden.sameFrames(RaftWire.encode(want), fr, name)
        }
        assertEquals(RaftMessageType.values().toSet(), seen)
    }

    fun testGoldenRaftRejectsHaveThePythonCode() {
        for (vec in WireGolden.load("raft_rejects")) {
            val name = vec.str("name")!!
            try {
                val got = RaftWire.decode(WireGolden.frames(vec, "frames"))
                if (vec.str("code") != null) fail("$name: decoded, Python: ${vec.str("code")}")
                sameMessage(got, messageFromVector(vec.obj("message")!!), name)
            } catch (e: ProtocolError) {
                assertEquals(vec.str("code"), e.code.code, "$name: ${e.message}")
            }
        }
    }

    fun testEncodeRefusesWhatDecodeWouldRefuse() {
        val noop = RaftEntry(1, 1, EntryKind.NOOP)
        val cases = mapOf(
            "entries on a vote" to RaftMessage(RaftMessageType.VOTE, entries = listOf(noop)),
            "snapshot on append" to RaftMessage(RaftMessageType.APPEND, snapshot = RaftSnapshot(0, 0)),
            "snapshot missing" to RaftMessage(RaftMessageType.SNAPSHOT),
            "gap in entries" to RaftMessage(RaftMessageType.APPEND, logIndex = 3, entries = listOf(RaftEntry(5, 0, EntryKind.NOOP))),
            "negative term" to RaftMessage(RaftMessageType.VOTE, term = -1),
            "negative entry term" to RaftMessage(RaftMessageType.APPEND, entries = listOf(RaftEntry(1, -1, EntryKind.NOOP))),
            "membership not UTF-8" to RaftMessage(RaftMessageType.SNAPSHOT,
                snapshot = RaftSnapshot(0, 0, membership = byteArrayOf(0xff.toByte())))
        )
        for ((name, m) in cases) {
            assertFailsWith<IllegalArgumentException>(name) { RaftWire.encode(m) }
        }
    }

    fun testRoundTripKeepsEmptyBlobsAndTheMembershipText() {
        val m = RaftMessage(RaftMessageType.SNAPSHOT, "a", "b", term = Long.MAX_VALUE,
            snapshot = RaftSnapshot(7, 3, ByteArray(0), "{\"voters\":[\"é\"]}".toByteArray(Charsets.UTF_8)))
        val fr = RaftWire.encode(m)
        assertEquals(2, fr.size)
        val back = RaftWire.decode(fr)
        sameMessage(back, m, "round trip")
        assertEquals("raft.snapshot", RaftMessageType.SNAPSHOT.wireType)
        assertTrue(RaftWire.isRaftType("raft.append"))
    }
}
