// SUB_TRAIN and SUB_TRAIN_RESULT against Python's own bytes
// (go/training/testdata/protocol.json, written by testdata/gen.py from
// zmqnode/training/protocol.py): decode, check the fields, re-encode byte
// for byte; refusals with Python's codes and messages.
package zmqnode.training

import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

internal object TrainingGolden {
    val doc: JsonObject by lazy { Json.parse(File("../go/training/testdata/protocol.json").readBytes()) as JsonObject }

    fun cases(key: String): List<JsonObject> = (doc[key] as List<*>).map { it as JsonObject }

    fun unhex(s: String): ByteArray = ByteArray(s.length / 2) { ((Character.digit(s[2 * it], 16) shl 4) or Character.digit(s[2 * it + 1], 16)).toByte() }

    fun frames(c: JsonObject): List<ByteArray> = (c["frames"] as List<*>).map { unhex(it as String) }

    fun int(c: JsonObject, key: String): Int = (c[key] as JsonNumber).toLong().toInt()
}

private fun sameArray(what: String, got: TrainArray?, want: Any?) {
    if (want == null) {
        assertNull(got, what)
        return
    }
    assertNotNull(got, what)
    val w = want as JsonObject
    assertEquals(w["dtype"], got.dtype, what)
    assertEquals((w["shape"] as List<*>).map { (it as JsonNumber).toLong().toInt() }, got.shape, what)
    assertTrue(TrainingGolden.unhex(w["data"] as String).contentEquals(got.data), "$what data")
}

/** A decoded JSON value with numbers as doubles (the golden file is json.dumps's text, frames are orjson's). */
internal fun normalized(v: Any?): Any? = when (v) {
    is JsonNumber -> v.toDouble()
    is Number -> v.toDouble()
    is List<*> -> v.map { normalized(it) }
    is JsonObject -> v.entries.map { it.first to normalized(it.second) }
    else -> v
}

private fun sameFrames(got: List<ByteArray>, want: List<ByteArray>) {
    assertEquals(want.size, got.size, "frames")
    for (i in got.indices) {
        if (!got[i].contentEquals(want[i])) {
            fail("frame $i differs:\n got ${String(got[i], Charsets.ISO_8859_1)}\nwant ${String(want[i], Charsets.ISO_8859_1)}")
        }
    }
}

private fun refusal(block: () -> Unit): TrainingRefused {
    try {
        block()
    } catch (e: TrainingRefused) {
        return e
    }
    fail("accepted")
}

class TrainingProtocolTest {
    fun testPythonJobsDecodeAndReencodeByteForByte() {
        val cases = TrainingGolden.cases("jobs")
        assertEquals(5, cases.size)
        for (c in cases) {
            val frames = TrainingGolden.frames(c)
            val j = decodeJob(frames)
            assertEquals(c["job"], j.jobId)
            assertEquals(TrainingGolden.int(c, "round"), j.round)
            assertEquals(TrainingGolden.int(c, "chunk"), j.chunk)
            assertEquals(c["reply_to"], j.replyTo)
            assertEquals(normalized(c["options"]), normalized(j.options))
            sameArray("params", j.params, c["params"])
            sameArray("x", j.x, c["x"])
            sameArray("y", j.y, c["y"])
            sameFrames(encodeJob(j), frames)
        }
    }

    fun testPythonResultsDecodeAndReencodeByteForByte() {
        val cases = TrainingGolden.cases("results")
        assertEquals(5, cases.size)
        for (c in cases) {
            val frames = TrainingGolden.frames(c)
            val r = decodeResult(frames)
            assertEquals(c["job"], r.jobId)
            assertEquals(TrainingGolden.int(c, "round"), r.round)
            assertEquals(TrainingGolden.int(c, "chunk"), r.chunk)
            assertEquals(c["trainer"], r.trainer)
            assertEquals(TrainingGolden.int(c, "n_samples"), r.nSamples)
            assertEquals((c["loss"] as JsonNumber).toDouble(), r.loss)
            assertEquals(c["error"], r.error)
            assertEquals(c["missing_data"], r.missingData)
            sameArray("params", r.params, c["params"])
            sameFrames(encodeResult(r), frames)
        }
    }

    fun testMalformedJobsAreRefusedWithPythonsCodesAndMessages() {
        val cases = TrainingGolden.cases("bad_jobs")
        assertEquals(9, cases.size)
        for (c in cases) {
            val e = refusal { decodeJob(TrainingGolden.frames(c)) }
            assertEquals(c["code"] to c["message"], e.code to e.message)
        }
    }

    fun testMalformedResultsAreRefusedWithPythonsCodesAndMessages() {
        val cases = TrainingGolden.cases("bad_results")
        assertEquals(6, cases.size)
        for (c in cases) {
            val e = refusal { decodeResult(TrainingGolden.frames(c)) }
            assertEquals(c["code"] to c["message"], e.code to e.message)
        }
    }

    fun testReplyToIsAcceptedExactlyAsPythonAcceptsIt() {
        val cases = TrainingGolden.cases("endpoints")
        assertEquals(15, cases.size)
        for (c in cases) assertEquals(c["valid"], validEndpoint(c["text"] as String), c["text"] as String)
    }

    fun testAJobWithoutRowsAndAResultWithOnlyAnErrorRoundTrip() {
        val options = JsonObject("epochs" to 3L)
        val job = Job("a#b", 2, 1, "tcp://[::1]:13000", options, TrainArray.ofFloat32(listOf(2), floatArrayOf(1f, -0.5f)))
        val back = decodeJob(encodeJob(job))
        assertEquals("a#b/2/1", back.id)
        assertNull(back.x)
        assertEquals(listOf(1f, -0.5f), back.params.toFloat32().toList())
        val r = decodeResult(encodeResult(Result("a#b", 2, 1, "h:1", error = "TrainingError('x')")))
        assertEquals("TrainingError('x')", r.error)
        assertNull(r.params)
    }

    fun testAResultsLenientFieldsAreReadAsPythonReadsThem() {
        // decode_result: loss true is 1 (bool is an int), error any truthy value, missing_data any truthy value (SPEC_NOTES T4).
        val base = JsonObject("type" to RESULT_TYPE, "id" to "a/0/0", "job" to "a", "round" to 0L, "chunk" to 0L,
            "trainer" to "h:1", "n_samples" to 3L, "loss" to true, "missing_data" to "no")
        val r = decodeResult(TrainingWire.encode(base, emptyList()))
        assertEquals(1.0, r.loss)
        assertTrue(r.missingData)
        base["missing_data"] = false
        base["error"] = 5L
        assertEquals("5", decodeResult(TrainingWire.encode(base, emptyList())).error)
        base["round"] = JsonNumber("1.0")
        assertEquals("field 'round' must be a non-negative integer",
            assertFailsWith<TrainingRefused> { decodeResult(TrainingWire.encode(base, emptyList())) }.message)
    }

    fun testFloat32ConversionIsLittleEndianAndNumpysAstype() {
        val a = TrainArray("float64", listOf(2), java.nio.ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .putDouble(0.1).putDouble(-3.0).array())
        assertEquals(listOf(0.1f, -3f), a.toFloat32().toList())
        val i = TrainArray("int64", listOf(1), java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .putLong(16777217L).array())
        assertEquals(16777216f, i.toFloat32()[0]) // round to nearest even, as numpy
        val f = TrainArray.ofFloat32(listOf(1), floatArrayOf(1f))
        assertEquals(listOf(0, 0, 0x80, 0x3f), f.data.map { it.toInt() and 0xff })
    }

    fun testAddressesParseAndFormatAsPythonWritesThem() {
        assertEquals("10.0.0.1" to 9000, parseAddress("10.0.0.1:9000"))
        assertEquals("::1" to 9000, parseAddress("[::1]:9000"))
        assertNull(parseAddress("::1:9000"))
        assertNull(parseAddress("h:x"))
        assertEquals("tcp://[::1]:13000", tcpEndpoint("::1", 13000))
        assertEquals("tcp://127.0.0.1:12000", tcpEndpoint("127.0.0.1", 9000 + TrainingOffset))
    }
}
