// The trainer with fake sockets (go/training/trainer_test.go without
// libzmq): chunk cache, handle, answers at reply_to, bad reply_to dropped,
// at most 16 result sockets, status.
package zmqnode.training

import zmqnode.wire.JsonObject
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

private fun arr(n: Int) = TrainArray.ofFloat32(listOf(n), FloatArray(n))

/** A runner that adds 1 to every parameter and reports the rows; BadInput for mismatched rows. */
internal object PlusOneRunner : ChunkRunner {
    override fun run(job: Job, x: TrainArray, y: TrainArray): ChunkOutcome {
        val yShape = if (y.shape.size == 1) listOf(y.shape[0], 1) else y.shape
        if (x.shape.size != 2 || yShape.size != 2 || x.shape[0] != yShape[0] || x.shape[0] == 0) {
            throw zmqnode.ml.BadInputException("chunk needs 2-D x and y with the same, non-zero rows; got " +
                "${pyShape(x.shape)}, ${pyShape(yShape)}")
        }
        val p = job.params.toFloat32()
        return ChunkOutcome(FloatArray(p.size) { p[it] + 1 }, x.shape[0], 0.25)
    }
}

private class FakeResultLink(val endpoint: String, val sent: LinkedBlockingQueue<Pair<String, List<ByteArray>>>) : ResultLink {
    @Volatile var closed = false
    var full = false
    override fun send(frames: List<ByteArray>): Boolean {
        if (full) return false
        sent.put(endpoint to frames)
        return true
    }
    override fun close() { closed = true }
}

private class FakeTrainerSockets : TrainerSockets {
    override val endpoint = "tcp://127.0.0.1:12000"
    val incoming = LinkedBlockingQueue<List<ByteArray>>()
    val sent = LinkedBlockingQueue<Pair<String, List<ByteArray>>>()
    val links = java.util.Collections.synchronizedList(ArrayList<FakeResultLink>())
    @Volatile var shut = false
    @Volatile var closed = false
    override fun receive(timeoutMs: Int): List<ByteArray>? {
        if (shut) throw IllegalStateException("context terminated")
        return incoming.poll(minOf(timeoutMs, 20).toLong(), TimeUnit.MILLISECONDS)
    }
    override fun connectResults(endpoint: String): ResultLink = FakeResultLink(endpoint, sent).also { links.add(it) }
    override fun shutdown() { shut = true }
    override fun close() { closed = true }

    fun result(): Pair<String, Result>? {
        val (ep, frames) = sent.poll(5, TimeUnit.SECONDS) ?: return null
        return ep to decodeResult(frames)
    }
}

private fun smallJob(id: String, chunk: Int, replyTo: String, withData: Boolean): Job {
    val x = TrainArray.ofFloat32(listOf(4, 2), floatArrayOf(0f, 0f, 0f, 1f, 1f, 0f, 1f, 1f))
    val y = TrainArray.ofFloat32(listOf(4, 1), floatArrayOf(0f, 1f, 1f, 0f))
    return Job(id, 0, chunk, replyTo, JsonObject("hidden_layers" to listOf(2L), "task" to "binary"),
        TrainArray.ofFloat32(listOf(9), FloatArray(9)), if (withData) x else null, if (withData) y else null)
}

class TrainingTrainerTest {
    fun testTheChunkCacheDropsTheLeastRecentlyUsedChunkPastItsBytes() {
        val c = ChunkCache(100)
        c.put("a", 0, arr(5), arr(5)) // 40 bytes
        c.put("a", 1, arr(5), arr(5))
        c.get("a", 0) // now 1 is the least recently used
        c.put("b", 0, arr(5), arr(5))
        assertEquals(listOf(true, false, true), listOf(c.get("a", 0) != null, c.get("a", 1) != null, c.get("b", 0) != null))
        assertEquals(80L, c.size)
        c.put("huge", 0, arr(100), arr(100)) // alone over the bound: kept, the rest goes
        assertEquals(1, c.count)
    }

    fun testHandleTrainsCachesAndSaysWhatIsMissing() {
        val cache = ChunkCache(1 shl 20)
        val j = smallJob("j#1", 0, "tcp://h:1", true)
        var r = handle(j, cache, "me", PlusOneRunner)
        assertEquals(listOf<Any?>("", 4, 9), listOf(r.error, r.nSamples, r.params?.toFloat32()?.size))
        r = handle(Job("j#1", 1, 0, "tcp://h:1", j.options, j.params), cache, "me", PlusOneRunner)
        assertEquals(1, r.round)
        assertTrue(r.params != null, "the cached rows were not used")
        r = handle(Job("j#1", 1, 1, "tcp://h:1", j.options, j.params), cache, "me", PlusOneRunner)
        assertEquals(listOf<Any?>(true, null, "me"), listOf(r.missingData, r.params, r.trainer))
        val bad = TrainArray.ofFloat32(listOf(8), FloatArray(8))
        r = handle(Job("j#2", 0, 0, "tcp://h:1", j.options, j.params, bad, j.y), cache, "me", PlusOneRunner)
        assertEquals("BadInput('chunk needs 2-D x and y with the same, non-zero rows; got (8,), (4, 1)')", r.error)
    }

    fun testTheTrainerAnswersAtReplyToAndDropsJobsWithABadOne() {
        val s = FakeTrainerSockets()
        val t = Trainer("127.0.0.1:9000", s, PlusOneRunner, log = {}).start()
        try {
            s.incoming.put(encodeJob(smallJob("j#1", 0, "127.0.0.1:13000", true))) // no tcp://: dropped
            s.incoming.put(listOf("{}".toByteArray())) // malformed: dropped
            s.incoming.put(encodeJob(smallJob("j#1", 0, "tcp://127.0.0.1:13000", true)))
            val (ep, r) = s.result()!!
            assertEquals("tcp://127.0.0.1:13000", ep)
            assertEquals(listOf<Any?>("j#1", 0, "127.0.0.1:9000", 4), listOf(r.jobId, r.chunk, r.trainer, r.nSamples))
            assertEquals(List(9) { 1f }, r.params!!.toFloat32().toList())
            val state = t.state()
            assertEquals(listOf("state", "endpoint", "jobs", "dropped", "cached_chunks", "result_sockets"), state.keys.toList())
            assertEquals(listOf<Any?>(1L, 2L, 1, 1), listOf(state["jobs"], state["dropped"], state["cached_chunks"], state["result_sockets"]))
            assertEquals("idle", t.status(false))
            assertEquals("training", t.status(true))
        } finally {
            t.stop()
        }
        assertTrue(t.isDone() && s.closed)
        assertNull(t.err)
        assertEquals("down", t.status(false))
    }

    fun testTheTrainerKeepsAtMost16ResultSockets() {
        val s = FakeTrainerSockets()
        val t = Trainer("127.0.0.1:9000", s, PlusOneRunner, log = {}).start()
        try {
            for (i in 0 until 18) {
                s.incoming.put(encodeJob(smallJob("j#$i", 0, "tcp://127.0.0.1:${13000 + i}", true)))
                assertEquals("tcp://127.0.0.1:${13000 + i}", s.result()!!.first)
            }
            // The least recently used (the first two) were closed.
            assertEquals(listOf(true, true, false), listOf(s.links[0].closed, s.links[1].closed, s.links[2].closed))
            assertEquals(16, t.state()["result_sockets"])
            // The third endpoint again reuses its socket.
            s.incoming.put(encodeJob(smallJob("j#2", 0, "tcp://127.0.0.1:13002", false)))
            assertEquals("tcp://127.0.0.1:13002", s.result()!!.first)
            assertEquals(18, s.links.size)
        } finally {
            t.stop()
        }
        assertTrue(s.links.all { it.closed })
    }

    fun testAFailedReceiveStopsTheTrainerWithItsError() {
        val s = FakeTrainerSockets()
        val t = Trainer("127.0.0.1:9000", s, PlusOneRunner, log = {}).start()
        s.shut = true
        assertTrue(t.awaitDone(5000))
        assertTrue(t.err != null)
        assertEquals("down", t.status(true))
    }
}
