package zmqnode.test

import java.io.File
import zmqnode.ml.Matrix
import zmqnode.ml.PyJson
import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

// Shared helpers of the Ml*Test classes: go/ml's golden vectors, read in
// place (tests run in kotlin/), written by go/ml/testdata/gen.py.
object MlGolden {
    const val DIR = "../go/ml/testdata"

    fun file(name: String): File = File(DIR, name)

    /** testdata/name decoded (numbers as JsonNumber, objects as JsonObject). */
    @Suppress("UNCHECKED_CAST")
    fun cases(name: String): List<JsonObject> = Json.parse(file(name).readBytes()) as List<JsonObject>

    /** kotlin/testdata/ml/go_results.json's list under key (written by gen_go.sh from go/ml). */
    @Suppress("UNCHECKED_CAST")
    fun goResults(key: String): List<JsonObject> =
        (Json.parse(File("testdata/ml/go_results.json").readBytes()) as JsonObject)[key] as List<JsonObject>

    /** kotlin/testdata/ml/messages.json's list under key (written by gen.py from zmqnode/ml). */
    @Suppress("UNCHECKED_CAST")
    fun messages(key: String): List<JsonObject> =
        (Json.parse(File("testdata/ml/messages.json").readBytes()) as JsonObject)[key] as List<JsonObject>

    fun num(v: Any?): Double = (v as JsonNumber).toDouble()
    fun int(v: Any?): Int = (v as JsonNumber).toLong().toInt()
    fun long(v: Any?): Long = (v as JsonNumber).toLong()
    fun list(v: Any?): List<Any?> = v as List<Any?>

    /** A JSON list of numbers (null as NaN) as float64s. */
    fun doubles(v: Any?): DoubleArray {
        val l = v as List<*>
        return DoubleArray(l.size) { if (l[it] == null) Double.NaN else (l[it] as JsonNumber).toDouble() }
    }

    fun floats(v: Any?): FloatArray {
        val d = doubles(v)
        return FloatArray(d.size) { d[it].toFloat() }
    }

    fun ints(v: Any?): IntArray {
        val l = v as List<*>
        return IntArray(l.size) { (l[it] as JsonNumber).toLong().toInt() }
    }

    fun matrix(rows: Int, cols: Int, v: Any?): Matrix = Matrix.of(rows, cols, floats(v))

    /** A JSON value re-encoded as Python's json.dumps(sort_keys=True) writes it. */
    fun pyJson(v: Any?): String = PyJson.encodeToString(v)

    /** max |got - want| / (|want| + floor). */
    fun maxRelDiff(got: FloatArray, want: DoubleArray, floor: Double): Double {
        var worst = 0.0
        for (i in want.indices) {
            val d = Math.abs(got[i].toDouble() - want[i]) / (Math.abs(want[i]) + floor)
            if (d > worst || d.isNaN()) worst = d
        }
        return worst
    }

    fun maxAbsDiff(got: FloatArray, want: DoubleArray): Double {
        var worst = 0.0
        for (i in want.indices) {
            val d = Math.abs(got[i].toDouble() - want[i])
            if (d > worst || d.isNaN()) worst = d
        }
        return worst
    }

    /** got equals want bit for bit (as float32 widened). */
    fun exactly(what: String, got: FloatArray, want: DoubleArray) {
        kotlin.test.assertEquals(want.size, got.size, "$what: value count")
        for (i in want.indices) {
            if (got[i].toDouble() != want[i]) kotlin.test.fail("$what[$i] = ${got[i]}, Python ${want[i]}")
        }
    }
}
