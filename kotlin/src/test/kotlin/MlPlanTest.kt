package zmqnode.test

import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.ml.ChunkResult
import zmqnode.ml.Labels
import zmqnode.ml.Matrix
import zmqnode.ml.Model
import zmqnode.ml.Problems
import zmqnode.ml.PyJson
import zmqnode.ml.Tasks
import zmqnode.ml.TrainOptions
import zmqnode.ml.TrainingPlan
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

class MlPlanTest {
    private class Case(val c: JsonObject) {
        val name = c["name"] as String
        val rows = MlGolden.int(c["rows"])
        val x: Matrix = MlGolden.matrix(rows, MlGolden.int(c["inputs"]), c["x"])
        val yCols = MlGolden.int(c["y_cols"])
        val y: Labels = when (c["y_kind"]) {
            "int" -> Labels.ofInts(MlGolden.list(c["y"]).map { MlGolden.long(it) }.toLongArray(), rows, yCols)
            "str" -> Labels.ofNames(MlGolden.list(c["y"]).map { it as String }, rows, yCols)
            else -> {
                val flat = if (yCols > 0) MlGolden.list(c["y"]).flatMap { MlGolden.list(it) } else MlGolden.list(c["y"])
                Labels.ofFloats(flat.map { (it as JsonNumber).toDouble() }.toDoubleArray(), rows, yCols)
            }
        }
        val options: TrainOptions = TrainOptions.fromJson(c["options"])
        val chunks = MlGolden.int(c["chunks"])
        val modelFile = File(MlGolden.DIR + "/models", c["model"] as String)
        val rounds = MlGolden.list(c["rounds"]).map { it as JsonObject }

        fun results(round: JsonObject): List<ChunkResult> = MlGolden.list(round["results"]).map {
            val r = it as JsonObject
            ChunkResult(MlGolden.floats(r["params"]), MlGolden.int(r["n_samples"]), MlGolden.num(r["loss"]))
        }
    }

    private fun cases() = MlGolden.cases("prepare.json").map { Case(it) }

    /** A Kotlin leader prepares a TRAIN exactly as a Python leader: task, classes, statistics, validation rows, initial weights, chunks. */
    fun testPrepareMatchesPython() {
        for (k in cases()) {
            val c = k.c
            val p = Problems.prepare(k.x, k.y, k.options)
            assertEquals(c["task"], p.task, k.name)
            assertEquals(MlGolden.pyJson(c["classes"]), PyJson.encodeToString(p.classes), "${k.name}: classes")
            MlGolden.exactly("${k.name} input.mean", p.inputMean, MlGolden.doubles(c["input_mean"]))
            MlGolden.exactly("${k.name} input.std", p.inputStd, MlGolden.doubles(c["input_std"]))
            if (p.task == Tasks.REGRESSION) {
                MlGolden.exactly("${k.name} output.mean", p.outputMean!!, MlGolden.doubles(c["output_mean"]))
                MlGolden.exactly("${k.name} output.std", p.outputStd!!, MlGolden.doubles(c["output_std"]))
            }
            assertEquals(MlGolden.ints(c["train_rows"]).toList(), p.trainRows.toList(), "${k.name}: training rows")
            MlGolden.exactly("${k.name} x_val", p.xVal.toFloatArray(), MlGolden.doubles(c["x_val"]))
            MlGolden.exactly("${k.name} y_val", p.yVal.toFloatArray(), MlGolden.doubles(c["y_val"]))
            MlGolden.exactly("${k.name} initial params", p.initialParams, MlGolden.doubles(c["initial_params"]))
            val chunks = Problems.splitChunks(p, k.chunks)
            val cx = MlGolden.list(c["chunk_x"])
            val cy = MlGolden.list(c["chunk_y"])
            assertEquals(cx.size, chunks.size, "${k.name}: chunks")
            for ((i, ch) in chunks.withIndex()) {
                MlGolden.exactly("${k.name} chunk $i x", ch.x.toFloatArray(), MlGolden.doubles(cx[i]))
                MlGolden.exactly("${k.name} chunk $i y", ch.y.toFloatArray(), MlGolden.doubles(cy[i]))
            }
        }
    }

    /** Given Python's trainers' results, a Kotlin leader averages bit for bit and records the same round metrics. */
    fun testFinishRoundMatchesPython() {
        for (k in cases()) {
            val plan = TrainingPlan.create(k.x, k.y, k.options, k.chunks)
            var r = 0
            while (r < 2 && r < k.rounds.size && !plan.done) {
                val round = k.rounds[r]
                MlGolden.exactly("${k.name} params before round $r", plan.params, MlGolden.doubles(round["params_before_round"]))
                plan.finishRound(k.results(round))
                val got = plan.history[plan.history.size - 1]
                val want = round["history"] as JsonObject
                assertEquals(want.keys.sorted(), got.keys.sorted(), "${k.name} round $r keys")
                for (key in want.keys) {
                    val w = MlGolden.num(want[key])
                    val g = (got[key] as Number).toDouble()
                    if (Math.abs(g - w) > 2e-6 * Math.abs(w)) fail("${k.name} round $r $key = $g, Python $w")
                }
                r++
            }
            if (k.rounds.size > 2 && !plan.done) {
                MlGolden.exactly("${k.name} params after two rounds", plan.params, MlGolden.doubles(k.rounds[2]["params_before_round"]))
            }
        }
    }

    /**
     * A Kotlin leader coordinating Python trainers (given every round's
     * results Python's trainers returned) commits the very bytes a Python
     * leader commits: same averaging, metrics, early stopping, metadata.
     */
    fun testLeaderWithPythonTrainersWritesPythonsBytes() {
        for (k in cases()) {
            val plan = TrainingPlan.create(k.x, k.y, k.options, k.chunks)
            for (round in k.rounds) plan.finishRound(k.results(round))
            assertTrue(plan.done, "${k.name}: Python stopped after ${k.rounds.size} rounds; Kotlin is not done")
            val got = plan.model().toBytes()
            if (!got.contentEquals(k.modelFile.readBytes())) {
                fail("${k.name}: model bytes differ from Python's; Kotlin's document:\n" +
                    PyJson.encodeToString(plan.model().metadataDocument()))
            }
        }
    }

    /**
     * A Kotlin leader with Kotlin trainers trains a model as accurate as
     * Python's on the same data (within 1 point), and the very bytes a Go
     * leader with Go trainers writes (kotlin/testdata/ml/gen_go.sh).
     */
    fun testLeaderAsAccurateAsPythonAndAsGo() {
        val goPlans = MlGolden.goResults("plans")
        for ((n, k) in cases().withIndex()) {
            val mine = TrainingPlan.train(k.x, k.y, k.options, k.chunks)
            assertEquals(k.name, goPlans[n]["name"])
            assertEquals(goPlans[n]["model_sha256"], sha256(mine.toBytes()), "${k.name}: the Go leader's model differs")
            val py = Model.read(k.modelFile.readBytes())
            val a = score(mine, k.x, k.y)
            val b = score(py, k.x, k.y)
            if (Math.abs(a - b) > 0.01) fail("${k.name}: Kotlin leader's model scores $a, Python's $b")
        }
    }

    /** A Kotlin-trained model reads back to the same predictions and the same bytes. */
    fun testTrainedModelRoundTrips() {
        val k = cases()[0]
        val m = TrainingPlan.train(k.x, k.y, k.options, 2)
        val data = m.toBytes()
        val back = Model.read(data)
        assertTrue(back.toBytes().contentEquals(data), "reading and rewriting a Kotlin-written model changed its bytes")
        val (a, pa) = m.classify(k.x, true)
        val (b, pb) = back.classify(k.x, true)
        assertEquals(a.toList(), b.toList())
        assertTrue(pa!!.toFloatArray().contentEquals(pb!!.toFloatArray()))
    }

    private fun sha256(b: ByteArray): String =
        java.security.MessageDigest.getInstance("SHA-256").digest(b).joinToString("") { String.format("%02x", it.toInt() and 0xff) }

    /** Accuracy on the given rows (R² for regression). */
    private fun score(m: Model, x: Matrix, y: Labels): Double {
        if (m.task == Tasks.REGRESSION) {
            val v = m.values(x)
            val f = y.floats!!
            var ss = 0.0
            var tot = 0.0
            for (j in 0 until v.cols) {
                var mean = 0.0
                for (i in 0 until v.rows) mean += f[i * v.cols + j]
                mean /= v.rows
                for (i in 0 until v.rows) {
                    val d = v[i, j] - f[i * v.cols + j]
                    ss += d * d
                    val e = f[i * v.cols + j] - mean
                    tot += e * e
                }
            }
            return 1 - ss / tot
        }
        val labels = m.labels(x)
        var hits = 0
        for ((i, l) in labels.withIndex()) {
            val want: Any = when {
                y.names != null -> y.names!![i]
                y.ints != null -> y.ints!![i]
                else -> y.floats!![i]
            }
            if (l == want) hits++
        }
        return hits.toDouble() / labels.size
    }
}
