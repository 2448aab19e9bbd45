package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import zmqnode.ml.BadInputException
import zmqnode.ml.Labels
import zmqnode.ml.Matrix
import zmqnode.ml.Problems
import zmqnode.ml.Tasks
import zmqnode.ml.TrainOptions
import zmqnode.wire.JsonNumber

class MlProblemTest {
    /** Problems.prepare refuses what problem.prepare refuses, with Python's messages. */
    fun testPrepareRefusesBadDataAsPython() {
        val cases = MlGolden.cases("bad_inputs.json")
        assertTrue(cases.size >= 8)
        for (c in cases) {
            val name = c["name"] as String
            val x = MlGolden.matrix(MlGolden.int(c["rows"]), MlGolden.int(c["inputs"]), c["x"])
            val yRows = MlGolden.int(c["y_rows"])
            val yCols = MlGolden.int(c["y_cols"])
            val raw = MlGolden.list(c["y"])
            val y = when (c["y_kind"]) {
                "str" -> Labels.ofNames(raw.map { it as String }, yRows, yCols)
                "int" -> Labels.ofInts(raw.map { MlGolden.long(it) }.toLongArray(), yRows, yCols)
                else -> Labels.ofFloats(raw.map {
                    when (it) {
                        "inf" -> Double.POSITIVE_INFINITY
                        is JsonNumber -> it.toDouble()
                        else -> Double.NaN
                    }
                }.toDoubleArray(), yRows, yCols)
            }
            val o = TrainOptions.fromJson(c["options"])
            val e = assertFailsWith<BadInputException>(name) { Problems.prepare(x, y, o) }
            assertEquals(c["error"] as String, e.message, name)
        }
    }

    fun testInferTask() {
        assertEquals(Tasks.BINARY, Problems.inferTask(Labels.ofInts(longArrayOf(3, 5, 3))))
        assertEquals(Tasks.MULTICLASS, Problems.inferTask(Labels.ofInts(longArrayOf(0, 1, 2))))
        assertEquals(Tasks.REGRESSION, Problems.inferTask(Labels.ofFloats(doubleArrayOf(0.5, 1.0, 2.0))))
        assertEquals(Tasks.MULTICLASS, Problems.inferTask(Labels.ofFloats(doubleArrayOf(0.0, 1.0, 2.0))))
        assertEquals(Tasks.BINARY, Problems.inferTask(Labels.ofNames(listOf("a", "b", "a"))))
        assertEquals(Tasks.REGRESSION, Problems.inferTask(Labels.ofFloats(doubleArrayOf(0.0, 1.0, 0.0, 1.0), 2, 2)))
        assertEquals(Tasks.REGRESSION, Problems.inferTask(Labels.ofInts(LongArray(40) { it.toLong() })))
    }

    /** -0.0 and 0.0 are one class (boxed Doubles would make two). */
    fun testNegativeZeroIsOneClass() {
        val x = Matrix.of(4, 1, floatArrayOf(0f, 1f, 2f, 3f))
        val p = Problems.prepare(x, Labels.ofFloats(doubleArrayOf(-0.0, 0.0, 1.0, 1.0)), TrainOptions())
        assertEquals(2, p.classes.size)
        assertEquals(Tasks.BINARY, p.task)
    }

    /** More chunks than training rows: one row a chunk, never an empty chunk. */
    fun testSplitNeverMakesEmptyChunks() {
        val x = Matrix.of(5, 1, floatArrayOf(0f, 1f, 2f, 3f, 4f))
        val p = Problems.prepare(x, Labels.ofInts(longArrayOf(0, 1, 0, 1, 1)), TrainOptions())
        val chunks = Problems.splitChunks(p, 9)
        assertEquals(5, chunks.size)
        for (c in chunks) assertEquals(1, c.x.rows, "chunk ${c.index}")
    }

    fun testClassIndicesToNames() {
        val l = Labels.fromClassIndices(longArrayOf(1, 0, 1), listOf("a", "b"))
        assertEquals(listOf("b", "a", "b"), l.names)
        val e = assertFailsWith<BadInputException> { Labels.fromClassIndices(longArrayOf(0, 2), listOf("a", "b")) }
        assertEquals("outputs row 1: class index 2 is outside the 2 names in 'classes'", e.message)
    }
}
