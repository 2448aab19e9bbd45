package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.ml.Architecture
import zmqnode.ml.ChunkResult
import zmqnode.ml.Chunks
import zmqnode.ml.Generator
import zmqnode.ml.Matrix
import zmqnode.ml.Problems
import zmqnode.ml.Tasks
import zmqnode.ml.TrainOptions
import zmqnode.ml.TrainingException
import zmqnode.ml.initParams

class MlTrainTest {
    /**
     * A Kotlin trainer's result for a SUB_TRAIN job equals Python's run_chunk
     * up to float32 rounding (go/ml's bar: parameters within 1e-5 relative,
     * loss within 1e-6): same shuffles, same batches, same Adam steps; and
     * the Go node's trainer's bit for bit (kotlin/testdata/ml/gen_go.sh).
     */
    fun testTrainChunkMatchesPython() {
        val cases = MlGolden.cases("train_chunk.json")
        assertTrue(cases.size >= 5)
        val goChunks = MlGolden.goResults("chunks")
        assertEquals(cases.size, goChunks.size, "kotlin/testdata/ml/go_results.json is stale: run gen_go.sh")
        for ((n, c) in cases.withIndex()) {
            val name = c["name"] as String
            val rows = MlGolden.int(c["rows"])
            val x = MlGolden.matrix(rows, MlGolden.int(c["inputs"]), c["x"])
            val y = MlGolden.matrix(rows, MlGolden.int(c["outputs"]), c["y"])
            val params = MlGolden.floats(c["params"])
            val epochs = MlGolden.int(c["epochs"])
            val round = MlGolden.int(c["round"])
            val chunk = MlGolden.int(c["chunk"])
            val res = if (epochs == 0) {
                Chunks.run(params, x, y, c["options"], round, chunk) // a job as a trainer gets it
            } else {
                Chunks.train(params, x, y, TrainOptions.fromJson(c["options"]), round, chunk, epochs)
            }
            assertEquals(MlGolden.int(c["want_samples"]), res.nSamples, "$name: n_samples")
            val d = MlGolden.maxRelDiff(res.params, MlGolden.doubles(c["want_params"]), 1e-3)
            val wantLoss = MlGolden.num(c["want_loss"])
            val lossDiff = Math.abs(res.loss - wantLoss) / Math.abs(wantLoss)
            if (d > 1e-5 || lossDiff > 1e-6) fail("$name: params differ by $d, loss ${res.loss} vs $wantLoss")
            // And the Go node's trainer, bit for bit (the same float32 and float64 operations in the same order).
            val go = goChunks[n]
            assertEquals(name, go["name"])
            val bits = MlGolden.list(go["param_bits"]).map { MlGolden.long(it).toInt() }
            for (i in bits.indices) {
                if (java.lang.Float.floatToRawIntBits(res.params[i]) != bits[i]) {
                    fail("$name: parameter $i is ${res.params[i]}, Go's ${java.lang.Float.intBitsToFloat(bits[i])}")
                }
            }
            assertEquals(MlGolden.num(go["loss"]), res.loss, "$name: loss, Go's")
        }
    }

    /** A chunk whose training diverges is a TrainingException, not parameters. */
    fun testTrainChunkReportsDivergence() {
        val o = TrainOptions(task = Tasks.REGRESSION, learningRate = 10.0, hiddenLayers = listOf(4))
        val x = Matrix(8, 1)
        val y = Matrix(8, 1)
        for (i in 0 until 8) {
            x.data[i] = i * 1e18f
            y.data[i] = i * 1e18f
        }
        val a = Chunks.architecture(x, y, o)
        val e = assertFailsWith<TrainingException> { Chunks.train(initParams(a, Generator(0)), x, y, o, 0, 0) }
        assertTrue(e.message!!.startsWith("training diverged on chunk 0 in round 0"), e.message)
    }

    /** FedAvg: weighted by rows in float64, rounded once; chunks without rows ignored. */
    fun testAverage() {
        val avg = Chunks.average(listOf(
            ChunkResult(floatArrayOf(1f, 2f), 1, 0.0),
            ChunkResult(floatArrayOf(9f, 9f), 0, 0.0),
            ChunkResult(floatArrayOf(4f, 0.1f), 2, 0.0)
        ))
        assertEquals(3f, avg[0])
        assertEquals(((2.0 + 2 * 0.1f.toDouble()) / 3).toFloat(), avg[1])
        assertFailsWith<TrainingException> { Chunks.average(listOf(ChunkResult(floatArrayOf(1f), 0, 0.0))) }
    }

    fun testChunkCountKeepsThirtyTwoRowsAChunk() {
        for ((rows, trainers, want) in listOf(Triple(4, 3, 1), Triple(64, 3, 2), Triple(1000, 3, 3), Triple(31, 1, 1), Triple(100, 0, 1))) {
            assertEquals(want, Problems.chunkCount(rows, trainers), "chunkCount($rows, $trainers)")
        }
    }

    fun testArchitectureLayout() {
        val a = Architecture.forTask(4, intArrayOf(8, 3), 2, "tanh", Tasks.MULTICLASS)
        assertEquals("4-8-3-2", a.describe())
        assertEquals("softmax", a.outputActivation)
        assertEquals(4 * 8 + 8 + 8 * 3 + 3 + 3 * 2 + 2, a.nParams)
    }
}
