package zmqnode.test

import zmqnode.node.Arrays
import zmqnode.node.Proposals
import zmqnode.node.Registry
import zmqnode.node.RegistryCommands
import zmqnode.node.Waiters
import zmqnode.node.decodeRaft
import zmqnode.node.encodeRaft
import zmqnode.node.modelIdFor
import zmqnode.raft.Entry
import zmqnode.raft.EntryKind
import zmqnode.raft.Message
import zmqnode.raft.MessageType
import zmqnode.raft.Snapshot
import zmqnode.storage.ModelStore
import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject
import zmqnode.wire.ProtocolError
import java.io.File
import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

class NodeWireTest {
    private fun unhex(s: String) = ByteArray(s.length / 2) { ((Character.digit(s[2 * it], 16) shl 4) + Character.digit(s[2 * it + 1], 16)).toByte() }

    private val golden: JsonObject by lazy { Json.parse(File("../go/node/testdata/registry.json").readBytes()) as JsonObject }

    private fun tempRegistry(): Registry = Registry(ModelStore(Files.createTempDirectory("kt-node-reg").resolve("models").toString()))

    /** Every message type and entry kind survives message -> frames -> message (the core's types through zmqnode.wire's RaftWire). */
    fun testRaftMessagesRoundTrip() {
        val snap = Snapshot(7, 3, "[]".toByteArray(), """{"credentials":{},"learners":[],"voters":["a:1"]}""".toByteArray())
        for (t in MessageType.values()) {
            val entries = if (t == MessageType.APPEND) listOf(Entry(5, 5, EntryKind.NOOP), Entry(6, 5, EntryKind.COMMAND,
                "cmd".toByteArray()), Entry(7, 5, EntryKind.CONFIG, "{}".toByteArray())) else emptyList()
            val m = Message(t, "127.0.0.1:9000", "127.0.0.1:9001", 5, 4, 2, entries, 3, true, 9, 1, 42, "n/1", true,
                if (t == MessageType.SNAPSHOT) snap else null)
            val frames = encodeRaft(m)
            val header = Json.parse(frames[0]) as JsonObject
            assertEquals("raft.${t.value}", header["type"])
            assertEquals(listOf("v", "type", "id", "src", "dst", "read_ctx", "term", "log_index", "log_term", "commit",
                "index", "reject_hint", "context", "reject", "force", "entries", "snapshot"), header.keys)
            assertEquals(m, decodeRaft(frames), t.value)
        }
    }

    fun testRaftDecodeRefusesWhatPythonRefuses() {
        val ok = encodeRaft(Message(MessageType.HEARTBEAT, "a:1", "b:2", 1))
        val h = Json.parse(ok[0]) as JsonObject
        h["term"] = JsonNumber("-1")
        assertEquals("BAD_REQUEST", assertFailsWith<ProtocolError> { decodeRaft(listOf(Json.encode(h))) }.code.code)
        h["term"] = JsonNumber("1")
        h["type"] = "raft.frob"
        assertEquals("UNKNOWN_TYPE", assertFailsWith<ProtocolError> { decodeRaft(listOf(Json.encode(h))) }.code.code)
        h["type"] = "raft.heartbeat"
        assertEquals("BAD_REQUEST", assertFailsWith<ProtocolError> {
            decodeRaft(listOf(Json.encode(h), ByteArray(1)))
        }.code.code)
    }

    fun testModelIdsAndCommandsArePythons() {
        for ((requestId, want) in (golden["model_ids"] as JsonObject).entries) assertEquals(want, modelIdFor(requestId))
        for (c in golden["cases"] as List<*>) {
            val o = c as JsonObject
            val data = File("../go/ml/testdata/models/${o.str("file")}").readBytes()
            val summary = Json.parse(o.str("summary")!!) as JsonObject
            val cmd = RegistryCommands.encodeStoreModel(o.str("request_id")!!, data, o.float("created")!!, summary)
            assertTrue(cmd.contentEquals(unhex(o.str("command")!!)), "command of ${o.str("file")}")
        }
    }

    fun testApplyGivesPythonsSnapshotAndListing() {
        val r = tempRegistry()
        for (c in golden["cases"] as List<*>) {
            val o = c as JsonObject
            val rec = r.apply(o.int("index")!!, unhex(o.str("command")!!))
            assertEquals(o.bool("applied"), rec != null)
            assertTrue(r.store.exists(o.str("model_id")!!))
        }
        assertNull(r.apply(9, unhex(golden.str("retry_command")!!)))
        assertEquals(golden.str("snapshot_data"), String(r.snapshotData(Long.MAX_VALUE), Charsets.UTF_8))
        assertEquals(golden.str("snapshot_through_3"), String(r.snapshotData(3), Charsets.UTF_8))
        assertEquals(golden.str("listing"), String(Json.encode(r.listing()), Charsets.UTF_8))
        val back = tempRegistry()
        back.restore(r.snapshotData(Long.MAX_VALUE))
        assertEquals(golden.str("snapshot_data"), String(back.snapshotData(Long.MAX_VALUE), Charsets.UTF_8))
        assertEquals((golden["cases"] as List<*>).size, back.checkFiles().size)
        val cmd = unhex(((golden["cases"] as List<*>)[0] as JsonObject).str("command")!!)
        cmd[cmd.size - 1] = (cmd[cmd.size - 1].toInt() xor 0xff).toByte()
        assertNull(tempRegistry().apply(2, cmd))
        assertNull(tempRegistry().apply(3, byteArrayOf(1, 0)))
    }

    fun testWaitersBatchReadsAndExpire() {
        var clock = 0L
        val ws = Waiters("n") { throw it }
        ws.now = { clock }
        val fired = ArrayList<String>()
        ws.afterReadIndex(100, { fired.add("a") }, { fired.add("a-timeout") })
        ws.afterReadIndex(100, { fired.add("b") }, { fired.add("b-timeout") })
        ws.issueReads { false } // no leader: they wait
        var ctx = ""
        ws.issueReads { ctx = it; true }
        assertEquals("n/4", ctx)
        ws.readIndexReady(ctx, 5, 3)
        assertTrue(fired.isEmpty())
        ws.applied(5)
        assertEquals(listOf("a", "b"), fired)
        ws.park(10, { fired.add("c") }, { fired.add("c-timeout") })
        clock = 20_000_000
        assertTrue(ws.expire())
        assertEquals("c-timeout", fired.last())
        assertEquals(0, ws.parked)
        val p = Proposals()
        var result: Boolean? = null
        p.add(3, 2, 10) { result = it }
        assertEquals(10L, p.uncommittedBytes)
        assertNotNull(p.applied(3, 1))
        assertEquals(false, result)
        assertEquals(0L, p.uncommittedBytes)
    }

    fun testArraysAsPythonReadsThem() {
        val req = JsonObject("inputs" to JsonObject("dtype" to "int64", "shape" to listOf(JsonNumber("3")), "frame" to JsonNumber("0")))
        val blob = java.nio.ByteBuffer.allocate(24).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(1).putLong(-2)
            .putLong(16777217).array()
        val (rows, cols, x) = Arrays.readRows(req, listOf(blob), "inputs", 1000)
        assertEquals(1, rows)
        assertEquals(3, cols)
        assertEquals(listOf(1f, -2f, 16777216f), x.toList())
        assertEquals("BAD_SHAPE", assertFailsWith<ProtocolError> { Arrays.readRows(req, listOf(ByteArray(8)), "inputs", 1000) }.code.code)
        assertEquals("TOO_LARGE", assertFailsWith<ProtocolError> { Arrays.readRows(req, listOf(blob), "inputs", 8) }.code.code)
        req["inputs"] = JsonObject("dtype" to "float16", "shape" to listOf(JsonNumber("1")))
        assertEquals("BAD_INPUT", assertFailsWith<ProtocolError> { Arrays.readRows(req, listOf(blob), "inputs", 1000) }.code.code)
    }
}
