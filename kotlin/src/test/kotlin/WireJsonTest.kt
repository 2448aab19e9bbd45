package zmqnode.test

import java.io.File
import java.util.Base64
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.pyfmt.Pyfmt
import zmqnode.wire.Json
import zmqnode.wire.JsonException
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

/** The golden vectors of go/wire/testdata (made by the Python codec: go/wire/testdata/gen.py), read in place. */
internal object WireGolden {
    fun load(name: String): List<JsonObject> {
        val list = Json.parse(File("../go/wire/testdata/$name.json").readBytes()) as List<*>
        assertTrue(list.isNotEmpty(), "$name.json holds no vectors")
        return list.map { it as JsonObject }
    }

    fun unb64(s: String): ByteArray = Base64.getDecoder().decode(s)

    fun frames(o: JsonObject, key: String): List<ByteArray> = o.list(key)!!.map { unb64(it as String) }

    fun sameFrames(got: List<ByteArray>, want: List<ByteArray>, what: String = "") {
        assertEquals(want.size, got.size, "$what: frame count")
        for (i in want.indices) {
            if (!got[i].contentEquals(want[i])) {
                fail("$what: frame $i differs:\n got ${String(got[i], Charsets.ISO_8859_1)}\nwant ${String(want[i], Charsets.ISO_8859_1)}")
            }
        }
    }

    /** Decoded values compared as Python would: keys in order, numbers by value (the vector files are Python's json). */
    fun sameJson(a: Any?, b: Any?): Boolean = when (a) {
        is JsonObject -> b is JsonObject && a.size == b.size &&
            a.entries.zip(b.entries).all { (x, y) -> x.first == y.first && sameJson(x.second, y.second) }
        is List<*> -> b is List<*> && a.size == b.size && a.indices.all { sameJson(a[it], b[it]) }
        is JsonNumber -> b is JsonNumber && a.isInteger == b.isInteger &&
            (if (a.isInteger) a.literal.toBigInteger() == b.literal.toBigInteger() else a.toDouble() == b.toDouble())
        else -> a == b
    }

    /** Float literals turned into Doubles, so re-encoding them exercises Kotlin's own float formatting. */
    fun kotlinValues(v: Any?): Any? = when (v) {
        is JsonObject -> JsonObject().also { o -> for ((k, x) in v.entries) o[k] = kotlinValues(x) }
        is List<*> -> v.map { kotlinValues(it) }
        is JsonNumber -> if (v.isInteger) v else v.toDouble()
        else -> v
    }
}

class WireJsonTest {
    private fun parses(text: String): Any? = Json.parse(text.toByteArray(Charsets.UTF_8))

    private fun refused(bytes: ByteArray) {
        assertFailsWith<JsonException>(String(bytes, Charsets.ISO_8859_1)) { Json.parse(bytes) }
    }

    private fun refused(text: String) = refused(text.toByteArray(Charsets.UTF_8))

    fun testGoldenFloatsFormatAsOrjson() {
        for (vec in WireGolden.load("floats")) {
            val bits = java.lang.Long.parseUnsignedLong(vec.str("bits")!!, 16)
            val f = java.lang.Double.longBitsToDouble(bits)
            assertEquals(vec.str("json"), Pyfmt.orjsonFloat(f), "orjsonFloat($f)")
        }
    }

    fun testGoldenMembershipEncodingMatchesPython() {
        for (vec in WireGolden.load("memberships")) {
            val voters = vec.strings("voters")!!.sortedWith(Comparator(Json::compareCodePoints))
            val learners = vec.strings("learners")!!.sortedWith(Comparator(Json::compareCodePoints))
            val doc = JsonObject("voters" to voters, "learners" to learners, "credentials" to vec.obj("credentials"))
            val got = Json.encodeSortedAscii(doc)
            val want = WireGolden.unb64(vec.str("bytes")!!)
            assertEquals(String(want, Charsets.UTF_8), String(got, Charsets.UTF_8), vec.str("name"))
        }
    }

    fun testGoldenHeadersParseAndReencodeByteIdentically() {
        for (vec in WireGolden.load("bodies")) {
            val raw = WireGolden.frames(vec, "frames")[0]
            val header = Json.parse(raw)
            assertTrue(WireGolden.sameJson(header, vec["header"]), "${vec.str("name")}: $header, Python read ${vec["header"]}")
            assertEquals(String(raw, Charsets.UTF_8), String(Json.encode(header), Charsets.UTF_8), vec.str("name"))
            val again = Json.encode(WireGolden.kotlinValues(header))
            assertEquals(String(raw, Charsets.UTF_8), String(again, Charsets.UTF_8), "${vec.str("name")} from Doubles")
        }
    }

    fun testRepeatedKeyKeepsFirstPlaceAndLastValue() {
        val v = parses("""{"a":1,"b":2,"a":3}""")
        assertEquals("""{"a":3,"b":2}""", String(Json.encode(v), Charsets.UTF_8))
        val o = JsonObject("x" to 1, "y" to 2)
        o["x"] = 5
        o["z"] = null
        assertEquals(listOf("x", "y", "z"), o.keys)
        assertTrue(o.has("z"))
        assertFalse(o.has("w"))
        o.remove("x")
        o["x"] = 6
        assertEquals("""{"y":2,"z":null,"x":6}""", o.toString())
    }

    fun testNumbersKeepTheirLiteralAndTheIntegerDistinction() {
        val o = parses("""{"a":1,"b":1.0,"c":1e0,"d":-0,"e":18446744073709551615,"f":18446744073709551616,"g":-9223372036854775809,"h":1.50}""") as JsonObject
        assertEquals(1L, o.int("a"))
        assertNull(o.int("b"))
        assertNull(o.int("c"))
        assertEquals(0L, o.int("d"))
        assertTrue((o["e"] as JsonNumber).isInteger)
        assertNull(o.int("e")) // an int for Python, but not within a Long
        assertEquals("18446744073709551615", (o["e"] as JsonNumber).toUnsignedOrNull().toString())
        assertFalse((o["f"] as JsonNumber).isInteger)
        assertFalse((o["g"] as JsonNumber).isInteger)
        assertEquals(1.5, o.float("h"))
        assertEquals(1.0, o.float("a"))
        assertEquals(
            """{"a":1,"b":1.0,"c":1e0,"d":-0,"e":18446744073709551615,"f":18446744073709551616,"g":-9223372036854775809,"h":1.50}""",
            o.toString()
        )
        assertNull(JsonObject("t" to true).int("t"))
        assertNull(JsonObject("t" to true).float("t"))
    }

    fun testParseRefusesWhatOrjsonRefuses() {
        for (t in listOf("", " ", "nul", "NaN", "[NaN]", "Infinity", "-Infinity", "1e400", "-1e400", "[1,]", "{\"a\":1,}",
                "{a:1}", "01", "1.", ".5", "-", "+1", "1e", "[1] x", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
                "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"a\tb\"", "'a'", "[", "{", "{\"a\"}", "\"abc", "\uFEFF{}",
                "\"\\u12\"", "tru", "[true false]")) {
            refused(t)
        }
        refused(byteArrayOf(0x22, 0xff.toByte(), 0x22))
        refused(byteArrayOf(0x22, 0xed.toByte(), 0xa0.toByte(), 0x80.toByte(), 0x22)) // a surrogate's 3-byte encoding
        refused(byteArrayOf(0x22, 0xc0.toByte(), 0xaf.toByte(), 0x22)) // overlong
        refused(byteArrayOf(0x22, 0xf4.toByte(), 0x90.toByte(), 0x80.toByte(), 0x80.toByte(), 0x22)) // above U+10FFFF
    }

    fun testParseAcceptsWhatOrjsonAccepts() {
        assertEquals("\uD83D\uDE00", parses("\"\\ud83d\\ude00\""))
        assertEquals("\uD83D\uDE00/é\u2028", parses("\"\uD83D\uDE00\\/\\u00E9\u2028\""))
        assertEquals(listOf(true, false, null), parses(" [ true , false , null ] \r\n\t"))
        assertEquals(JsonNumber("1e-400"), parses("1e-400"))
        assertEquals(JsonNumber("-0.0"), parses("-0.0"))
        assertEquals(JsonObject(), parses("{}"))
        assertEquals(listOf<Any?>(), parses("[]"))
        assertEquals(JsonObject("" to JsonObject("k" to listOf(JsonNumber("1")))), parses("""{"":{"k":[1]}}"""))
    }

    fun testNestingLimitIs1024() {
        assertTrue(parses("[".repeat(1024) + "]".repeat(1024)) is List<*>)
        refused("[".repeat(1025) + "]".repeat(1025))
        assertTrue(parses("{\"a\":".repeat(1024) + "1" + "}".repeat(1024)) is JsonObject)
        refused("{\"a\":".repeat(1025) + "1" + "}".repeat(1025))
    }

    fun testEncodeEscapesAsOrjson() {
        val s = "\"\\\b\t\n\u000c\r\u0001\u001f\u007f/é\u2028\uD83D\uDE00"
        val want = "\"\\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\u007f/é\u2028\uD83D\uDE00\""
        assertEquals(want, String(Json.encode(s), Charsets.UTF_8))
        assertEquals(s, parses(want))
        assertFailsWith<JsonException> { Json.encode("a\uD800") }
        assertFailsWith<JsonException> { Json.encode(JsonObject("k" to listOf("\uDC00"))) }
        assertFailsWith<JsonException> { Json.encode(Any()) }
    }

    fun testEncodeAcceptsKotlinValues() {
        val v = linkedMapOf<String, Any?>("b" to 1, "a" to 2L, "f" to 0.5, "g" to 1e16, "h" to Double.NaN, "i" to 0.25f,
            "l" to listOf(1, "x"), "ia" to intArrayOf(1, 2), "da" to doubleArrayOf(1.0, 1e-6), "n" to null, "t" to true)
        assertEquals("""{"b":1,"a":2,"f":0.5,"g":1e+16,"h":null,"i":0.25,"l":[1,"x"],"ia":[1,2],"da":[1.0,1e-6],"n":null,"t":true}""",
            Json.encodeToString(v))
        val hash = java.util.HashMap<String, Any?>()
        hash["b"] = 1
        hash["a"] = 2
        assertEquals("""{"a":2,"b":1}""", Json.encodeToString(hash))
    }

    fun testEncodeSortedAsciiIsJsonDumpsSortKeys() {
        val doc = JsonObject("z" to listOf("é", "\uD83D\uDE00"), "a" to JsonObject("\uFF61" to 1, "\uD83D\uDE00" to 2, "b" to null))
        // keys by code point: U+1F600 sorts after U+FF61 (UTF-16 order would put it first)
        assertEquals("""{"a":{"b":null,"\uff61":1,"\ud83d\ude00":2},"z":["\u00e9","\ud83d\ude00"]}""",
            String(Json.encodeSortedAscii(doc), Charsets.UTF_8))
        assertFailsWith<JsonException> { Json.encodeSortedAscii(listOf(1.5)) }
        assertFailsWith<JsonException> { Json.encodeSortedAscii(JsonNumber("1.0")) }
        assertFailsWith<JsonException> { Json.encodeSortedAscii("\uD800") }
        assertEquals("[1,true]", String(Json.encodeSortedAscii(listOf(JsonNumber("1"), true)), Charsets.UTF_8))
    }

    fun testKindOfNamesAsPython() {
        assertEquals(listOf("null", "an object", "an array", "a string", "a boolean", "a number"),
            listOf(null, JsonObject(), listOf<Any>(), "", true, JsonNumber("1")).map { Json.kindOf(it) })
    }
}
