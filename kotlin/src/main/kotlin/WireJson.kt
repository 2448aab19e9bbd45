// The JSON model of every header (a port of go/wire/json.go and pyjson.go).
// Header bytes must match the Python node's (orjson) when a message is
// re-encoded, so this is a small JSON model of its own:
//
//  - JsonObject keeps its keys in order (Python dicts do; orjson writes them
//    in insertion order); a repeated key keeps its first place with the last
//    value (what json.loads/orjson and a Python dict give).
//  - JsonNumber keeps the literal as received, so a float is re-sent digit
//    for digit and an integer is told from a float literal (1 vs 1.0, as
//    Python's isinstance(x, int)); numbers made in Kotlin (Int, Long, Double)
//    are formatted as orjson formats them.
//  - Strings are escaped as orjson escapes them (go/wire/SPEC_NOTES.md N3).
//
// Decoded values are null, Boolean, String, JsonNumber, List<Any?> and
// JsonObject.
package zmqnode.wire

import java.math.BigInteger
import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import zmqnode.pyfmt.Pyfmt

/** A JSON text that cannot be parsed, or a value that cannot be encoded. */
class JsonException(message: String) : Exception(message)

/**
 * A JSON number literal exactly as received (or as written by the caller).
 * Equality is by literal ("1.0" != "1"), like Go's wire.Number.
 */
class JsonNumber(val literal: String) {
    /**
     * What Python calls an int: a literal without fraction or exponent whose
     * value is in -2^63..2^64-1. orjson reads any other literal as a float,
     * so `1.0`, `1e2` and `18446744073709551616` are not integers; `-0` is.
     */
    val isInteger: Boolean
        get() {
            val neg = literal.startsWith("-")
            val digits = if (neg) literal.substring(1) else literal
            if (digits.length == 0 || digits.any { it !in '0'..'9' }) return false
            if (neg) return literal.toLongOrNull() != null
            return digits.length < 19 || BigInteger(digits) <= MAX_UINT64
        }

    /** The value of an integer literal within a Long (Python int in -2^63..2^63-1), or null. */
    fun toLongOrNull(): Long? = if (isInteger) literal.toLongOrNull() else null

    /** The value of an integer literal within a Long; NumberFormatException otherwise (a float literal, or above 2^63-1). */
    fun toLong(): Long = toLongOrNull() ?: throw NumberFormatException("$literal is not an integer within 64-bit signed range")

    /** The value of a non-negative integer literal up to 2^64-1 (and "-0"), or null. */
    fun toUnsignedOrNull(): BigInteger? {
        if (literal == "-0") return BigInteger.ZERO
        if (!isInteger || literal.startsWith("-")) return null
        return BigInteger(literal)
    }

    /** The value as a double (any literal; an integer beyond 2^53 rounds). */
    fun toDouble(): Double = literal.toDouble()

    override fun equals(other: Any?): Boolean = other is JsonNumber && other.literal == literal
    override fun hashCode(): Int = literal.hashCode()
    override fun toString(): String = literal

    companion object {
        private val MAX_UINT64 = BigInteger("18446744073709551615")
    }
}

/**
 * A JSON object with ordered keys (insertion order). Setting a key that is
 * present replaces its value in place; a new key goes last. Values are what
 * [Json.encode] accepts (decoded ones are null, Boolean, String, JsonNumber,
 * List<Any?>, JsonObject). Not thread-safe. equals() compares keys in order
 * and values; toString() is the orjson text.
 */
class JsonObject() {
    private val map = LinkedHashMap<String, Any?>()

    /** An object of [fields] in order (a repeated key keeps its first place, last value). */
    constructor(vararg fields: Pair<String, Any?>) : this() {
        for ((k, v) in fields) map[k] = v
    }

    /** The value under [key], or null when absent (see [has] to tell null from absent). */
    operator fun get(key: String): Any? = map[key]

    /** Replaces key's value in place, or appends the key at the end. */
    operator fun set(key: String, value: Any?) {
        map[key] = value
    }

    /** [set], returning this object (to chain). */
    fun put(key: String, value: Any?): JsonObject {
        map[key] = value
        return this
    }

    /** Whether [key] is present (even with a null value). */
    fun has(key: String): Boolean = map.containsKey(key)

    /** Removes [key] (a no-op when absent). */
    fun remove(key: String) {
        map.remove(key)
    }

    /** The keys in order (a copy). */
    val keys: List<String> get() = map.keys.toList()

    /** The fields in order (a copy). */
    val entries: List<Pair<String, Any?>> get() = map.entries.map { Pair(it.key, it.value) }

    /** The number of keys. */
    val size: Int get() = map.size

    /** A shallow copy (same order). */
    fun copy(): JsonObject {
        val o = JsonObject()
        o.map.putAll(map)
        return o
    }

    // Typed reads: null when the key is absent or holds another JSON type.
    // An integer is a JSON integer literal (JsonNumber.isInteger) or an
    // Int/Long set in Kotlin, never a Boolean or a float literal, as Python's checks.

    /** this[key] when it is a string. */
    fun str(key: String): String? = map[key] as? String

    /** this[key] when it is an integer within a Long. */
    fun int(key: String): Long? = Json.intValue(map[key])

    /** this[key] when it is any number (an integer too), as a double. */
    fun float(key: String): Double? = when (val v = map[key]) {
        is JsonNumber -> v.toDouble()
        is Double -> v
        is Float -> v.toDouble()
        is Int -> v.toDouble()
        is Long -> v.toDouble()
        else -> null
    }

    /** this[key] when it is true or false. */
    fun bool(key: String): Boolean? = map[key] as? Boolean

    /** this[key] when it is an object. */
    fun obj(key: String): JsonObject? = map[key] as? JsonObject

    /** this[key] when it is a list. */
    fun list(key: String): List<Any?>? = map[key] as? List<Any?>

    /** this[key] when it is a list of strings only. */
    fun strings(key: String): List<String>? {
        val l = list(key) ?: return null
        return if (l.all { it is String }) l.map { it as String } else null
    }

    override fun equals(other: Any?): Boolean =
        other is JsonObject && other.map.size == map.size && other.entries == entries

    override fun hashCode(): Int = map.hashCode()

    override fun toString(): String = try {
        Json.encodeToString(this)
    } catch (e: JsonException) {
        "<invalid: ${e.message}>"
    }
}

/** Parsing and writing JSON as the Python node does. */
object Json {
    /** orjson's nesting limit: a deeper document is refused. */
    const val MAX_DEPTH = 1024

    /**
     * Parses one JSON value with the rules of the Python node's parser
     * (orjson): valid UTF-8 only (no byte order mark), no lone surrogate
     * escape, no NaN/Infinity, a number too large for a double is an error,
     * at most [MAX_DEPTH] levels, nothing but whitespace after the value.
     * Throws [JsonException].
     */
    fun parse(bytes: ByteArray): Any? {
        val text = try {
            Charsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes)).toString()
        } catch (e: CharacterCodingException) {
            throw JsonException("not valid UTF-8")
        }
        return Parser(text).document()
    }

    /** [parse] of a string's UTF-8 bytes. */
    fun parse(text: String): Any? = parse(text.toByteArray(Charsets.UTF_8))

    /**
     * v as orjson writes it: no spaces, keys in order, non-ASCII as UTF-8,
     * floats in orjson's shortest form, NaN and ±Inf as null. Accepts null,
     * Boolean, String, JsonNumber (its literal), Int, Long, Short, Byte,
     * BigInteger, Double, Float (as its double value), JsonObject, Map with
     * String keys (in its iteration order; a plain HashMap's keys sorted),
     * List/Iterable, Array, IntArray, LongArray, DoubleArray, FloatArray.
     * Throws [JsonException] for anything else and for a string holding a
     * lone surrogate (not UTF-8, which orjson refuses too).
     */
    fun encode(v: Any?): ByteArray = encodeToString(v).toByteArray(Charsets.UTF_8)

    /** [encode] as a String. */
    fun encodeToString(v: Any?): String {
        val b = StringBuilder()
        writeValue(b, v)
        return b.toString()
    }

    /**
     * v as Python's json.dumps(v, sort_keys=True, separators=(",", ":"))
     * writes it (ensure_ascii on): keys sorted by code point, no spaces,
     * every character outside printable ASCII as \uXXXX (UTF-16 pairs beyond
     * the BMP). The encoding of a membership (a CONFIG entry's data and a
     * snapshot's membership), which must be the same bytes whichever node
     * wrote it. Floats are refused (JsonException), as in Go.
     */
    fun encodeSortedAscii(v: Any?): ByteArray {
        val b = StringBuilder()
        writeSorted(b, v)
        return b.toString().toByteArray(Charsets.UTF_8)
    }

    /** A decoded value's kind as Python's wire._json_kind names it, for error messages. */
    fun kindOf(v: Any?): String = when (v) {
        null -> "null"
        is JsonObject -> "an object"
        is List<*> -> "an array"
        is String -> "a string"
        is Boolean -> "a boolean"
        is JsonNumber -> "a number"
        else -> v.javaClass.simpleName
    }

    /**
     * A value as a Long if it is a JSON integer within int64 (a JsonNumber
     * integer literal, or an Int/Long set in Kotlin), never a Boolean or a float.
     */
    fun intValue(v: Any?): Long? = when (v) {
        is JsonNumber -> v.toLongOrNull()
        is Int -> v.toLong()
        is Long -> v
        else -> null
    }

    /** Compares strings by Unicode code point (Python's and Go's order), not by UTF-16 unit. */
    fun compareCodePoints(a: String, b: String): Int {
        var i = 0
        var j = 0
        while (i < a.length && j < b.length) {
            val x = a.codePointAt(i)
            val y = b.codePointAt(j)
            if (x != y) return x.compareTo(y)
            i += Character.charCount(x)
            j += Character.charCount(y)
        }
        return (a.length - i).compareTo(b.length - j)
    }

    // -----------------------------------------------------------------------
    // Encoding

    private const val HEX = "0123456789abcdef"

    private fun writeValue(b: StringBuilder, v: Any?) {
        when (v) {
            null -> b.append("null")
            is Boolean -> b.append(if (v) "true" else "false")
            is String -> writeString(b, v)
            is JsonNumber -> b.append(v.literal)
            is Int, is Long, is Short, is Byte, is BigInteger -> b.append(v.toString())
            is Double -> b.append(Pyfmt.orjsonFloat(v))
            is Float -> b.append(Pyfmt.orjsonFloat(v.toDouble()))
            is JsonObject -> writeFields(b, v.entries)
            is Map<*, *> -> writeFields(b, mapFields(v, false))
            is IntArray -> writeList(b, v.size) { b.append(v[it]) }
            is LongArray -> writeList(b, v.size) { b.append(v[it]) }
            is DoubleArray -> writeList(b, v.size) { b.append(Pyfmt.orjsonFloat(v[it])) }
            is FloatArray -> writeList(b, v.size) { b.append(Pyfmt.orjsonFloat(v[it].toDouble())) }
            is Array<*> -> writeList(b, v.size) { writeValue(b, v[it]) }
            is List<*> -> writeList(b, v.size) { writeValue(b, v[it]) }
            is Iterable<*> -> writeValue(b, v.toList())
            else -> throw JsonException("cannot encode ${v.javaClass.name} as JSON")
        }
    }

    private fun mapFields(m: Map<*, *>, sorted: Boolean): List<Pair<String, Any?>> {
        val fields = m.entries.map {
            val k = it.key as? String ?: throw JsonException("map key ${it.key} is not a string")
            Pair(k, it.value)
        }
        val plainHash = m is java.util.HashMap<*, *> && m !is java.util.LinkedHashMap<*, *>
        return if (sorted || plainHash) fields.sortedWith(Comparator { x, y -> compareCodePoints(x.first, y.first) })
        else fields
    }

    private fun writeFields(b: StringBuilder, fields: List<Pair<String, Any?>>) {
        b.append('{')
        for ((i, f) in fields.withIndex()) {
            if (i > 0) b.append(',')
            writeString(b, f.first)
            b.append(':')
            try {
                writeValue(b, f.second)
            } catch (e: JsonException) {
                throw JsonException("${f.first}: ${e.message}")
            }
        }
        b.append('}')
    }

    private inline fun writeList(b: StringBuilder, n: Int, item: (Int) -> Unit) {
        b.append('[')
        for (i in 0 until n) {
            if (i > 0) b.append(',')
            item(i)
        }
        b.append(']')
    }

    private fun checkUtf16(s: String) {
        var i = 0
        while (i < s.length) {
            val c = s[i]
            if (Character.isHighSurrogate(c) && i + 1 < s.length && Character.isLowSurrogate(s[i + 1])) {
                i += 2
                continue
            }
            if (Character.isSurrogate(c)) throw JsonException("string ${Pyfmt.strRepr(s)} is not valid UTF-8 (a lone surrogate)")
            i++
        }
    }

    // orjson's escaping: \" \\ \b \t \n \f \r, other control characters as
    // \u00xx, everything else (DEL, "/", non-ASCII, U+2028) raw.
    private fun writeString(b: StringBuilder, s: String) {
        checkUtf16(s)
        b.append('"')
        for (c in s) {
            when {
                c == '"' -> b.append("\\\"")
                c == '\\' -> b.append("\\\\")
                c == '\b' -> b.append("\\b")
                c == '\t' -> b.append("\\t")
                c == '\n' -> b.append("\\n")
                c == '\u000c' -> b.append("\\f")
                c == '\r' -> b.append("\\r")
                c < ' ' -> b.append("\\u00").append(HEX[c.toInt() shr 4]).append(HEX[c.toInt() and 0xf])
                else -> b.append(c)
            }
        }
        b.append('"')
    }

    private fun writeAsciiString(b: StringBuilder, s: String) {
        checkUtf16(s)
        b.append(Pyfmt.quoteAscii(s))
    }

    private fun writeSorted(b: StringBuilder, v: Any?) {
        when (v) {
            is String -> writeAsciiString(b, v)
            is Double, is Float -> throw JsonException("encodeSortedAscii: floats are not supported")
            is JsonNumber -> {
                if (!v.isInteger) throw JsonException("encodeSortedAscii: floats are not supported")
                b.append(v.literal)
            }
            is JsonObject -> writeSortedFields(b, v.entries.sortedWith(Comparator { x, y -> compareCodePoints(x.first, y.first) }))
            is Map<*, *> -> writeSortedFields(b, mapFields(v, true))
            is Array<*> -> writeList(b, v.size) { writeSorted(b, v[it]) }
            is List<*> -> writeList(b, v.size) { writeSorted(b, v[it]) }
            is Iterable<*> -> writeSorted(b, v.toList())
            else -> writeValue(b, v) // null, booleans, integers: the same text
        }
    }

    private fun writeSortedFields(b: StringBuilder, fields: List<Pair<String, Any?>>) {
        b.append('{')
        for ((i, f) in fields.withIndex()) {
            if (i > 0) b.append(',')
            writeAsciiString(b, f.first)
            b.append(':')
            writeSorted(b, f.second)
        }
        b.append('}')
    }

    // -----------------------------------------------------------------------
    // Decoding: a recursive descent over the decoded text (RFC 8259, as Go's
    // encoding/json scanner accepts it), with orjson's extra refusals.

    private class Parser(val s: String) {
        var i = 0

        fun fail(what: String): Nothing = throw JsonException("$what at offset $i")

        fun document(): Any? {
            skipSpace()
            if (i >= s.length) fail("unexpected end of JSON")
            val v = value(0)
            skipSpace()
            if (i < s.length) throw JsonException("data after the JSON value")
            return v
        }

        fun skipSpace() {
            while (i < s.length) {
                val c = s[i]
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') i++ else break
            }
        }

        fun value(depth: Int): Any? {
            if (i >= s.length) fail("unexpected end of JSON")
            val c = s[i]
            return when {
                c == '{' -> {
                    if (depth >= MAX_DEPTH) fail("nested deeper than $MAX_DEPTH")
                    obj(depth)
                }
                c == '[' -> {
                    if (depth >= MAX_DEPTH) fail("nested deeper than $MAX_DEPTH")
                    array(depth)
                }
                c == '"' -> string()
                c == '-' || c in '0'..'9' -> number()
                s.startsWith("true", i) -> { i += 4; true }
                s.startsWith("false", i) -> { i += 5; false }
                s.startsWith("null", i) -> { i += 4; null }
                else -> fail("invalid character ${Pyfmt.strRepr(c.toString())} looking for beginning of value")
            }
        }

        fun obj(depth: Int): JsonObject {
            val o = JsonObject()
            i++ // '{'
            skipSpace()
            if (i < s.length && s[i] == '}') { i++; return o }
            while (true) {
                skipSpace()
                if (i >= s.length) fail("unexpected end of JSON")
                if (s[i] != '"') fail("object key is not a string")
                val key = string()
                skipSpace()
                if (i >= s.length || s[i] != ':') fail("expected ':' after object key")
                i++
                skipSpace()
                o[key] = value(depth + 1)
                skipSpace()
                if (i >= s.length) fail("unexpected end of JSON")
                when (s[i]) {
                    ',' -> i++
                    '}' -> { i++; return o }
                    else -> fail("expected ',' or '}' after object value")
                }
            }
        }

        fun array(depth: Int): List<Any?> {
            val list = ArrayList<Any?>()
            i++ // '['
            skipSpace()
            if (i < s.length && s[i] == ']') { i++; return list }
            while (true) {
                skipSpace()
                list.add(value(depth + 1))
                skipSpace()
                if (i >= s.length) fail("unexpected end of JSON")
                when (s[i]) {
                    ',' -> i++
                    ']' -> { i++; return list }
                    else -> fail("expected ',' or ']' after array element")
                }
            }
        }

        fun string(): String {
            i++ // opening quote
            val start = i
            // Fast path: no escapes.
            while (i < s.length) {
                val c = s[i]
                if (c == '"') { i++; return s.substring(start, i - 1) }
                if (c == '\\') break
                if (c < ' ') fail("control character in string")
                i++
            }
            val b = StringBuilder().append(s, start, i)
            while (true) {
                if (i >= s.length) fail("unexpected end of JSON in string")
                val c = s[i]
                when {
                    c == '"' -> { i++; return b.toString() }
                    c < ' ' -> fail("control character in string")
                    c != '\\' -> { b.append(c); i++ }
                    else -> {
                        if (i + 1 >= s.length) fail("unexpected end of JSON in string")
                        val e = s[i + 1]
                        i += 2
                        when (e) {
                            '"' -> b.append('"')
                            '\\' -> b.append('\\')
                            '/' -> b.append('/')
                            'b' -> b.append('\b')
                            'f' -> b.append('\u000c')
                            'n' -> b.append('\n')
                            'r' -> b.append('\r')
                            't' -> b.append('\t')
                            'u' -> {
                                val u = hex4()
                                if (u in 0xdc00..0xdfff) fail("lone low surrogate in string")
                                if (u in 0xd800..0xdbff) {
                                    if (!(s.startsWith("\\u", i))) fail("no low surrogate in string")
                                    i += 2
                                    val lo = hex4()
                                    if (lo !in 0xdc00..0xdfff) fail("no low surrogate in string")
                                    b.append(u.toChar()).append(lo.toChar())
                                } else {
                                    b.append(u.toChar())
                                }
                            }
                            else -> fail("invalid escape in string")
                        }
                    }
                }
            }
        }

        fun hex4(): Int {
            if (i + 4 > s.length) fail("unexpected end of JSON in \\u escape")
            var v = 0
            for (k in 0 until 4) {
                val d = Character.digit(s[i + k], 16)
                if (d < 0 || s[i + k].toInt() > 0x7f) fail("invalid \\u escape")
                v = v * 16 + d
            }
            i += 4
            return v
        }

        fun number(): JsonNumber {
            val start = i
            if (s[i] == '-') i++
            if (i >= s.length) fail("unexpected end of JSON in number")
            if (s[i] == '0') {
                i++
            } else if (s[i] in '1'..'9') {
                while (i < s.length && s[i] in '0'..'9') i++
            } else {
                fail("invalid character in numeric literal")
            }
            var isFloat = false
            if (i < s.length && s[i] == '.') {
                isFloat = true
                i++
                if (i >= s.length || s[i] !in '0'..'9') fail("invalid character after decimal point in numeric literal")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
                isFloat = true
                i++
                if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
                if (i >= s.length || s[i] !in '0'..'9') fail("invalid character in exponent of numeric literal")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            val n = JsonNumber(s.substring(start, i))
            if (isFloat || !n.isInteger) {
                if (n.toDouble().isInfinite()) throw JsonException("number ${n.literal} is infinity when parsed as double")
            }
            return n
        }
    }
}
