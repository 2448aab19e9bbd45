package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.ml.BadOptionsException
import zmqnode.ml.PyJson
import zmqnode.ml.TrainOptions
import zmqnode.ml.round6

class MlOptionsTest {
    /**
     * TrainOptions.fromJson accepts and refuses what from_dict does, with
     * Python's messages; accepted options serialize as to_dict (learning_rate
     * 1 stays 1) and schedule rounds the same way.
     */
    fun testOptionsMatchPython() {
        val cases = MlGolden.cases("options.json")
        assertTrue(cases.size >= 10)
        for (c in cases) {
            val input = MlGolden.pyJson(c["input"])
            val error = c["error"] as String?
            if (error != null) {
                val e = assertFailsWith<BadOptionsException>(input) { TrainOptions.fromJson(c["input"]) }
                assertEquals(error, e.message, input)
                continue
            }
            val o = TrainOptions.fromJson(c["input"])
            assertEquals(c["to_dict"] as String, o.toJson(), "$input: to_dict")
            assertEquals(MlGolden.int(c["n_rounds"]), o.nRounds, "$input: rounds")
            val rates = MlGolden.doubles(c["learning_rates"])
            val epochs = MlGolden.ints(c["epochs"])
            for (r in rates.indices) {
                assertEquals(rates[r], o.learningRateInRound(r), "$input: rate of round $r")
                assertEquals(epochs[r], o.epochsInRound(r), "$input: epochs of round $r")
            }
        }
    }

    /**
     * Messages that quote the client's value as Python's repr does (100.0 for
     * 1e2, "it's", dict reprs, True), not as the JSON literal go/ml quotes
     * (kotlin/testdata/ml/gen.py).
     */
    fun testOptionMessagesQuoteValuesAsPythonRepr() {
        for (c in MlGolden.messages("options")) {
            val input = c["input"] as String
            val error = c["error"] as String?
            if (error == null) {
                assertEquals(c["to_dict"] as String, TrainOptions.parse(input.toByteArray(Charsets.UTF_8)).toJson(), input)
            } else {
                val e = assertFailsWith<BadOptionsException>(input) { TrainOptions.parse(input.toByteArray(Charsets.UTF_8)) }
                assertEquals(error, e.message, input)
            }
        }
    }

    fun testParseBytes() {
        val o = TrainOptions.parse("{\"epochs\": 3, \"task\": \"binary\"}".toByteArray(Charsets.UTF_8))
        assertEquals(3, o.epochs)
        assertEquals("binary", o.task)
        assertFailsWith<BadOptionsException> { TrainOptions.parse("{".toByteArray(Charsets.UTF_8)) }
    }

    /** Python's json.dumps: repr floats, ensure_ascii escapes, keys sorted by code point. */
    fun testPyJsonWritesPythonFloatsAndEscapes() {
        val cases = listOf<Pair<String, Any?>>(
            "1.0" to 1.0, "0.0005" to 5e-4, "1e-05" to 1e-5, "1e+16" to 1e16, "1234567890123456.0" to 1234567890123456.0,
            "-0.0" to -0.0, "0.1" to 0.1, "0.30000000000000004" to (0.1 + 0.2), "100.0" to 100.0,
            "0.00012" to 0.00012, "3.4028234663852886e+38" to 3.4028234663852886e+38,
            "\"a\\u00e9\\\"\\\\\\n\\ud83d\\ude00<>&\"" to "aé\"\\\n\uD83D\uDE00<>&",
            "{\"a\":[1,2.5,null,true],\"b\":{}}" to linkedMapOf("b" to linkedMapOf<String, Any?>(), "a" to listOf(1, 2.5, null, true)),
            // U+FFFD sorts before U+1F600 by code point (UTF-16 units would put the surrogate first).
            "{\"\\ufffd\":1,\"\\ud83d\\ude00\":2}" to linkedMapOf("\uD83D\uDE00" to 2, "\uFFFD" to 1)
        )
        for ((want, v) in cases) assertEquals(want, PyJson.encodeToString(v))
    }

    /** float(f"{v:.6g}"): the exact value rounded half to even. */
    fun testRound6() {
        assertEquals(0.123457, round6(0.1234567))
        assertEquals(1234570.0, round6(1234567.0))
        assertEquals(2.5e-7, round6(2.5e-7))
        assertEquals(0.704423, round6(0.70442345))
        assertEquals(1.00000, round6(0.9999999))
        // 0.1234565 is 0.12345649999... in binary: down, not HALF_UP's 0.123457
        if (java.math.BigDecimal(0.1234565) < java.math.BigDecimal("0.1234565")) assertEquals(0.123456, round6(0.1234565))
        else fail("test value is not below its decimal")
    }
}
