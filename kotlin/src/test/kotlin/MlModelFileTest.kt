package zmqnode.test

import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.ml.BadInputException
import zmqnode.ml.Matrix
import zmqnode.ml.Model
import zmqnode.ml.ModelFormatException
import zmqnode.ml.PyJson
import zmqnode.ml.Tasks

class MlModelFileTest {
    private fun golden(name: String): Pair<ByteArray, Model> {
        val data = File(MlGolden.DIR + "/models", name).readBytes()
        return Pair(data, Model.read(data))
    }

    /**
     * Every file Python writes reads back and rewrites to the same bytes:
     * binary, multiclass with string and float classes, regression with one
     * and two targets, with and without column names, trained plans.
     */
    fun testModelFileRoundTripsPythonBytes() {
        val files = File(MlGolden.DIR, "models").listFiles()!!.filter { it.name.endsWith(".bin") }.sortedBy { it.name }
        assertTrue(files.size >= 5, "only ${files.size} golden model files")
        for (f in files) {
            val (data, m) = golden(f.name)
            val out = m.toBytes()
            if (!out.contentEquals(data)) {
                var n = 0
                while (n < out.size && n < data.size && out[n] == data[n]) n++
                fail("${f.name}: Kotlin's bytes differ from Python's at byte $n:\n kt " +
                    String(out, Math.max(0, n - 40), Math.min(out.size, n + 40) - Math.max(0, n - 40), Charsets.ISO_8859_1) + "\n py " +
                    String(data, Math.max(0, n - 40), Math.min(data.size, n + 40) - Math.max(0, n - 40), Charsets.ISO_8859_1))
            }
        }
    }

    /** Predictions from files Python trained: the same class indices; probabilities, values, logits to float32 rounding. */
    fun testPredictMatchesPython() {
        for (c in MlGolden.cases("models.json")) {
            val name = c["name"] as String
            val (_, m) = golden(c["file"] as String)
            val x = MlGolden.matrix(MlGolden.int(c["rows"]), MlGolden.int(c["inputs"]), c["x"])
            assertEquals(c["summary"] as String, PyJson.encodeToString(m.summary()), "$name: summary")
            val z = m.logits(x)
            val dz = MlGolden.maxAbsDiff(z.toFloatArray(), MlGolden.doubles(c["logits"]))
            assertTrue(dz <= 1e-5, "$name: logits differ by $dz")
            if (c["task"] == Tasks.REGRESSION) {
                val v = m.values(x)
                assertEquals(MlGolden.int(c["value_cols"]), v.cols, "$name: value columns")
                val d = MlGolden.maxRelDiff(v.toFloatArray(), MlGolden.doubles(c["values"]), 1.0)
                assertTrue(d <= 1e-6, "$name: values differ by $d")
                assertFailsWith<BadInputException> { m.classify(x, false) }
                continue
            }
            val (index, p) = m.classify(x, true)
            assertEquals(MlGolden.list(c["index"]).map { MlGolden.long(it) }, index.toList(), "$name: classes")
            val d = MlGolden.maxAbsDiff(p!!.toFloatArray(), MlGolden.doubles(c["proba"]))
            assertTrue(d <= 1e-6, "$name: probabilities differ by $d")
            assertEquals(MlGolden.pyJson(c["classes"]), PyJson.encodeToString(m.classes), "$name: class values")
            assertEquals(index.map { m.classes[it.toInt()] }, m.labels(x))
        }
    }

    /** Model.read refuses damaged files with ModelFormatException, as FORMAT.md §7 lists. */
    fun testReadModelRefusesDamagedFiles() {
        val (data, _) = golden("binary.bin")
        val flip = data.copyOf()
        flip[flip.size - 3] = (flip[flip.size - 3].toInt() xor 1).toByte()
        val cases = mapOf(
            "short" to data.copyOf(5),
            "truncated" to data.copyOf(100),
            "huge header" to byteArrayOf(0, 0, 0, 0, 0, 0, 0, 1) + data.copyOfRange(8, data.size),
            "huge unsigned header" to byteArrayOf(-1, -1, -1, -1, -1, -1, -1, -1) + data.copyOfRange(8, data.size),
            "flipped" to flip,
            "extra data" to data + byteArrayOf(0, 0, 0, 0),
            "not json" to byteArrayOf(4, 0, 0, 0, 0, 0, 0, 0) + "abcd".toByteArray(Charsets.UTF_8),
            "no zmqnode" to byteArrayOf(2, 0, 0, 0, 0, 0, 0, 0) + "{}".toByteArray(Charsets.UTF_8)
        )
        for ((name, bad) in cases) assertFailsWith<ModelFormatException>(name) { Model.read(bad) }
        val e = assertFailsWith<ModelFormatException> { Model.read(flip) }
        assertEquals("the tensors do not match tensors_sha256: the file is corrupt", e.message)
    }

    /** Predict refuses a wrong width and non-finite inputs as BAD_INPUT. */
    fun testPredictRefusesBadInputs() {
        val (_, m) = golden("binary.bin")
        val e = assertFailsWith<BadInputException> { m.classify(Matrix(2, 5), false) }
        assertEquals("this model expects 3 input columns, got 5", e.message)
        val x = Matrix(2, 3)
        x.data[4] = Float.POSITIVE_INFINITY
        val e2 = assertFailsWith<BadInputException> { m.classify(x, false) }
        assertEquals("inputs contain NaN or infinite values (or values beyond float32), first at row 1", e2.message)
        assertFailsWith<BadInputException> { m.values(x) }
    }

    /** Column-name errors with Python's messages (repr cut to 80 characters; kotlin/testdata/ml/gen.py). */
    fun testColumnNameMessagesAsPython() {
        val (_, m) = golden("binary.bin")
        for (c in MlGolden.messages("features")) {
            val names = MlGolden.list(c["features"]).map { it as String }
            val error = c["error"] as String?
            if (error == null) {
                m.copy(features = names).validate()
            } else {
                val e = assertFailsWith<ModelFormatException>(names.toString()) { m.copy(features = names).validate() }
                assertEquals(error, e.message)
            }
        }
    }

    /** Column names: checked as check_column_names checks them, and kept through a round trip. */
    fun testColumnNames() {
        val (_, m) = golden("binary.bin")
        val named = m.copy(features = listOf("a", "b\u00e9", "\uD83D\uDE00"))
        val back = Model.read(named.toBytes())
        assertEquals(named.features, back.features)
        assertTrue(back.toBytes().contentEquals(named.toBytes()))
        val e = assertFailsWith<ModelFormatException> { m.copy(features = listOf("a", "a", "b")).validate() }
        assertEquals("features: column names must be distinct, got ['a', 'a', 'b']", e.message)
        assertFailsWith<ModelFormatException> { m.copy(features = listOf("a", "b")).validate() }
        assertFailsWith<ModelFormatException> { m.copy(targets = listOf("")).validate() }
    }
}
