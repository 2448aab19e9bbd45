// The training package with zmqnode.ml: Python's refusals of TRAIN requests
// (go/training/testdata/protocol.json), the trainer's handle with the real
// MLP, and interop with Python (kotlin/testdata/training/interop.json, from
// gen.py there): the plan a Kotlin leader makes sends Python's very job
// bytes, a chunk trained by Kotlin matches Python's, a round averaged from
// Python's and Kotlin's chunks matches Python's average, and the model file
// is Python's byte for byte.
package zmqnode.training

import zmqnode.ml.ChunkResult
import zmqnode.ml.Chunks
import zmqnode.wire.Json
import zmqnode.wire.JsonObject
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail

class TrainingMlTest {
    fun testRefusedTrainRequestsGetPythonsCodesAndMessages() {
        val cases = TrainingGolden.cases("train_requests")
        assertEquals(16, cases.size)
        for (c in cases) {
            val (h, blobs) = TrainingWire.decode(TrainingGolden.frames(c))
            var got: Pair<String, String>? = null
            try {
                val req = readTrainRequest(h, blobs, 1L shl 20)
                var raw = h["options"]
                if (!truthy(raw)) raw = JsonObject()
                val opts = MlPlanMaker.parseOptions(raw as JsonObject)
                MlPlanMaker.makePlan(req, opts, 1)
            } catch (e: TrainingRefused) {
                got = e.code to (e.message ?: "")
            } catch (e: Exception) {
                if (!isBadInput(e)) throw e
                got = "BAD_INPUT" to (e.message ?: "")
            }
            assertEquals<Any?>(c["code"] to c["message"], got)
        }
    }

    fun testHandleTrainsWithTheMlpAndReportsPythonsErrors() {
        val x = TrainArray.ofFloat32(listOf(4, 2), floatArrayOf(0f, 0f, 0f, 1f, 1f, 0f, 1f, 1f))
        val y = TrainArray.ofFloat32(listOf(4), floatArrayOf(0f, 1f, 1f, 0f)) // 1-D: one column
        val opts = JsonObject("hidden_layers" to listOf(3L), "task" to "binary", "epochs" to 2L, "epochs_per_round" to 1L)
        val params = TrainArray.ofFloat32(listOf(2 * 3 + 3 + 3 + 1), FloatArray(13))
        val cache = ChunkCache(1 shl 20)
        var r = handle(Job("j#1", 0, 0, "tcp://h:1", opts, params, x, y), cache, "me", MlChunkRunner)
        assertEquals(listOf<Any?>("", 4, 13), listOf(r.error, r.nSamples, r.params?.toFloat32()?.size))
        r = handle(Job("j#1", 1, 0, "tcp://h:1", opts, params), cache, "me", MlChunkRunner)
        assertTrue(r.params != null && r.round == 1, "the cached rows were not used: ${r.error}")
        val bad = TrainArray.ofFloat32(listOf(8), FloatArray(8))
        r = handle(Job("j#2", 0, 0, "tcp://h:1", opts, params, bad, y), cache, "me", MlChunkRunner)
        assertEquals("BadInput('chunk needs 2-D x and y with the same, non-zero rows; got (8,), (4, 1)')", r.error)
        val unknown = JsonObject("momentum" to 0.9)
        r = handle(Job("j#3", 0, 0, "tcp://h:1", unknown, params, bad, y), cache, "me", MlChunkRunner)
        assertTrue(r.error.startsWith("BadOptions(\"unknown option(s) 'momentum'; known options: "), r.error)
    }

    fun testAKotlinLeaderAndTrainerInteroperateWithPythonsChunksAndModel() {
        val doc = Json.parse(File("testdata/training/interop.json").readBytes()) as JsonObject
        val cases = (doc["cases"] as List<*>).map { it as JsonObject }
        assertEquals(3, cases.size)
        var identicalChunks = 0
        var chunks = 0
        for (c in cases) {
            val name = c["name"] as String
            val nChunks = TrainingGolden.int(c, "n_chunks")
            val (h, blobs) = TrainingWire.decode((c["request"] as List<*>).map { TrainingGolden.unhex(it as String) })
            val req = readTrainRequest(h, blobs, 1L shl 30)
            val handle = MlPlanMaker.makePlan(req, MlPlanMaker.parseOptions(h["options"] as JsonObject), nChunks)
            assertEquals(nChunks, handle.nChunks, name)
            val rounds = (c["rounds"] as List<*>).map { it as JsonObject }
            val cache = ChunkCache(1L shl 30)
            for ((round, r) in rounds.withIndex()) {
                val pyJobs = (r["jobs"] as List<*>).map { f -> (f as List<*>).map { TrainingGolden.unhex(it as String) } }
                val pyResults = (r["results"] as List<*>).map { f -> decodeResult((f as List<*>).map { TrainingGolden.unhex(it as String) }) }
                val kotlinResults = ArrayList<Result>()
                for (chunk in 0 until nChunks) {
                    // The job a Kotlin leader sends is Python's, byte for byte.
                    var x: TrainArray? = null
                    var y: TrainArray? = null
                    if (round == 0) {
                        val cx = handle.chunkX(chunk)
                        val cy = handle.chunkY(chunk)
                        x = TrainArray.ofFloat32(listOf(cx.rows, cx.cols), cx.data)
                        y = TrainArray.ofFloat32(listOf(cy.rows, cy.cols), cy.data)
                    }
                    val job = Job("interop#0123456789ab", round, chunk, "tcp://127.0.0.1:13000", handle.optionsObject,
                        TrainArray.ofFloat32(listOf(handle.params.size), handle.params), x, y)
                    val frames = encodeJob(job)
                    assertEquals(pyJobs[chunk].size, frames.size, "$name round $round chunk $chunk")
                    for (i in frames.indices) {
                        if (!frames[i].contentEquals(pyJobs[chunk][i])) {
                            fail("$name round $round chunk $chunk frame $i differs:\n got ${String(frames[i], Charsets.ISO_8859_1).take(600)}\n" +
                                "want ${String(pyJobs[chunk][i], Charsets.ISO_8859_1).take(600)}")
                        }
                    }
                    // A Kotlin trainer trains Python's job as Python's trainer did.
                    val mine = handle(decodeJob(pyJobs[chunk]), cache, "127.0.0.${chunk + 1}:9000", MlChunkRunner)
                    val theirs = pyResults[chunk]
                    assertEquals("", mine.error, "$name round $round chunk $chunk")
                    assertEquals(theirs.nSamples, mine.nSamples)
                    val a = mine.params!!.toFloat32()
                    val b = theirs.params!!.toFloat32()
                    assertEquals(b.size, a.size)
                    for (i in a.indices) {
                        assertTrue(Math.abs(a[i] - b[i]) <= 1e-5 * maxOf(1f, Math.abs(b[i])),
                            "$name round $round chunk $chunk param $i: ${a[i]} vs Python's ${b[i]}")
                    }
                    chunks++
                    if (a.contentEquals(b) && mine.loss == theirs.loss) identicalChunks++
                    kotlinResults.add(mine)
                }
                // A round averaged from Python's chunk 0 and Kotlin's others is Python's average.
                val mixed = (0 until nChunks).map { i ->
                    val res = if (i == 0) pyResults[0] else kotlinResults[i]
                    ChunkResult(res.params!!.toFloat32(), res.nSamples, res.loss)
                }
                val averaged = Chunks.average(mixed)
                val want = TrainArray("float32", listOf(averaged.size), TrainingGolden.unhex(r["averaged"] as String)).toFloat32()
                for (i in averaged.indices) {
                    assertTrue(Math.abs(averaged[i] - want[i]) <= 1e-5 * maxOf(1f, Math.abs(want[i])),
                        "$name round $round averaged param $i: ${averaged[i]} vs ${want[i]}")
                }
                // Driven by Python's results, the Kotlin plan keeps Python's state exactly.
                val done = handle.finishRound(pyResults.map { ChunkOutcome(it.params!!.toFloat32(), it.nSamples, it.loss) })
                assertTrue(handle.params.contentEquals(want), "$name round $round: the plan's average is not Python's")
                assertEquals(normalized(r["metrics"]), normalized(JsonObject().also { o ->
                    @Suppress("UNCHECKED_CAST")
                    for ((k, v) in handle.lastMetrics() as Map<String, Any?>) o[k] = v
                }), "$name round $round metrics")
                assertEquals(round == rounds.size - 1, done)
            }
            val model = handle.model(req.features, req.targets)
            val want = TrainingGolden.unhex(c["model"] as String)
            assertTrue(model.bytes.contentEquals(want), "$name: the model file is not Python's:\n" +
                String(model.bytes, Charsets.ISO_8859_1).take(800) + "\n" + String(want, Charsets.ISO_8859_1).take(800))
        }
        println("  interop: $identicalChunks of $chunks chunks trained by Kotlin are bit for bit Python's")
    }

    fun testACoordinatorTrainsWithZmqnodeMlAsPythonsLeaderDoes() {
        // The interop set's "binary" TRAIN through a Kotlin coordinator with
        // two Kotlin trainers: the rounds Python ran, a model with its metrics.
        val doc = Json.parse(File("testdata/training/interop.json").readBytes()) as JsonObject
        val c = (doc["cases"] as List<*>).map { it as JsonObject }.first { it["name"] == "binary" }
        val n = FakeNode(2, true, { now -> CoordinatorConfig(now = now) }, MlPlanMaker, MlChunkRunner)
        val (h, blobs) = TrainingWire.decode((c["request"] as List<*>).map { TrainingGolden.unhex(it as String) })
        val rec = RecordedReplier()
        n.coord.submit(h, blobs, rec)
        n.until("the commit") { n.commits.isNotEmpty() }
        val pyRounds = (c["rounds"] as List<*>).size
        assertEquals(pyRounds - 1, rec.answers.count { it["status"] == "PROGRESS" })
        n.replies[0].ok(n.commits[0], emptyList(), listOf("model_id" to "m-1"))
        val last = rec.last()!!
        assertEquals(listOf<Any?>("OK", "m-1", pyRounds), listOf(last["status"], last["model_id"], last["rounds"]))
        assertTrue(last["metrics"] is Map<*, *>, last.toString())
        val model = zmqnode.ml.ModelFile.read(n.models[0])
        assertEquals("binary", model.task)
        assertEquals(2, (model.training["chunks"] as List<*>).size)
    }
}
