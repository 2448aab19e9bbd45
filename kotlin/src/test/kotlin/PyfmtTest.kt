package zmqnode.test

import kotlin.test.assertEquals
import zmqnode.pyfmt.Pyfmt

// The cases of go/pyfmt/pyfmt_test.go, plus JDK 17's non-shortest Double.toString cases.
class PyfmtTest {
    fun testFloatReprIsPythonsRepr() {
        val floats = listOf(
            1e16 to "1e+16", 1e15 to "1000000000000000.0", 0.0001 to "0.0001", 0.00001 to "1e-05",
            123.456 to "123.456", 1.5e-7 to "1.5e-07", 4.0 to "4.0", 1e22 to "1e+22",
            12345678901234567.0 to "1.2345678901234568e+16",
            0.0 to "0.0", -0.0 to "-0.0", -2.5 to "-2.5", 1e100 to "1e+100",
            Double.POSITIVE_INFINITY to "inf", Double.NEGATIVE_INFINITY to "-inf", Double.NaN to "nan",
            0.1 to "0.1", 1.0 / 3 to "0.3333333333333333", 5e-324 to "5e-324",
            Double.MAX_VALUE to "1.7976931348623157e+308", 2.0e23 to "2e+23", 1.0e23 to "1e+23",
            // JDK 17's Double.toString gives 18 digits ("2.8287938480615901E17") or non-shortest forms for these
            2.82879384806159E17 to "2.82879384806159e+17", 1.0E-5 * 3 to "3.0000000000000004e-05",
            9007199254740993.0 to "9007199254740992.0", 2.0E-3 to "0.002"
        )
        for ((f, want) in floats) assertEquals(want, Pyfmt.floatRepr(f), "floatRepr($f)")
    }

    fun testOrjsonFloatDiffersFromReprInTheExponent() {
        val cases = listOf(
            1e16 to "1e+16", 1e15 to "1000000000000000.0", 0.00001 to "0.00001", 1e-6 to "1e-6",
            4.0 to "4.0", 1.5e300 to "1.5e+300", -1.5e7 to "-15000000.0", 0.0 to "0.0",
            Double.POSITIVE_INFINITY to "null", Double.NaN to "null", -0.0 to "-0.0", 0.1 to "0.1"
        )
        for ((f, want) in cases) assertEquals(want, Pyfmt.orjsonFloat(f), "orjsonFloat($f)")
        val f32 = listOf(
            0.1f to "0.1", 1e13f to "1e+13", 1e12f to "1000000000000.0", 1e-7f to "1e-7", 1e-6f to "0.000001",
            1.0f / 3 to "0.33333334", 16777217f to "16777216.0", 1.4e-45f to "1e-45"
        )
        for ((f, want) in f32) assertEquals(want, Pyfmt.orjsonFloat32(f), "orjsonFloat32($f)")
    }

    fun testQuoteAsciiIsJsonDumpsEnsureAscii() {
        val cases = listOf(
            "a\u007f\u0001é\uD83D\uDE00\"\\/" to "\"a\\u007f\\u0001\\u00e9\\ud83d\\ude00\\\"\\\\/\"",
            "\n\r\t\b\u000c" to "\"\\n\\r\\t\\b\\f\"",
            "\uD800" to "\"\\ud800\"", // a lone surrogate, as Python holds it
            String(byteArrayOf(0xff.toByte()), Charsets.UTF_8) to "\"\\ufffd\"",
            "" to "\"\""
        )
        for ((s, want) in cases) assertEquals(want, Pyfmt.quoteAscii(s))
    }

    fun testStrReprIsPythonsRepr() {
        val cases = listOf(
            "abc" to "'abc'", "it's" to "\"it's\"", "a'b\"c" to "'a\\'b\"c'",
            "\t\n\r\u0001\u007f" to "'\\t\\n\\r\\x01\\x7f'",
            "é" to "'é'", "\u00a0" to "'\\xa0'", "\u2028" to "'\\u2028'", "\uD800" to "'\\ud800'",
            "\uDCFF" to "'\\udcff'", "\uD83D\uDE00" to "'\uD83D\uDE00'", "\uDB80\uDC00" to "'\\U000f0000'",
            "a\\b" to "'a\\\\b'"
        )
        for ((s, want) in cases) assertEquals(want, Pyfmt.strRepr(s))
    }

    fun testLatin1ReadsEachByteAsOneCharacter() {
        assertEquals("café", Pyfmt.latin1(byteArrayOf(0x63, 0x61, 0x66, 0xe9.toByte())))
        assertEquals("plain", Pyfmt.latin1("plain".toByteArray(Charsets.UTF_8)))
    }
}
