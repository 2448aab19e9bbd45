// Python's json.loads(bytes) (CPython 3.11, its C scanner) and repr of what it returns
// (go/storage/pyjson.go, pyrepr.go), so that raft_state.json is accepted, refused and described
// exactly as the Python node does: the text encoding detected as json.detect_encoding does,
// decoded with 'surrogatepass'; NaN, Infinity, -Infinity; big ints; duplicate keys (last value,
// first position); the same error messages with the same positions (counted in code points).
//
// Values: null, Boolean, PyNumber (int or float literal as written), PyConst (NaN, ±Infinity),
// String, List<Any?>, PyObject. A Kotlin String holds a lone surrogate as such (a Python str can).
package zmqnode.storage

import zmqnode.pyfmt.Pyfmt

object PyJson {
    /** A JSON number as written; [isInt] when Python's json makes an int of it (no fraction or exponent). */
    class PyNumber(val literal: String) {
        val isInt: Boolean get() = literal.none { it == '.' || it == 'e' || it == 'E' }

        /** The int literal as Python prints the int ("-0" is 0). */
        fun intLiteral(): String = if (literal.trim('-', '0').length == 0) "0" else literal

        /** float(literal) as Python's json computes it (overflow gives ±inf). */
        fun toPyFloat(): Double = try {
            literal.toDouble()
        } catch (e: NumberFormatException) {
            Double.NaN
        }

        override fun toString(): String = literal
    }

    /** A float JSON constant: NaN, Infinity or -Infinity. */
    class PyConst(val value: Double) {
        override fun toString(): String = Pyfmt.floatRepr(value)
    }

    /** A JSON object in Python's dict order (a duplicate key keeps its first position, last value). */
    class PyObject {
        val map = LinkedHashMap<String, Any?>()
        operator fun get(key: String): Any? = map[key]
        fun has(key: String): Boolean = map.containsKey(key)
        val keys: Set<String> get() = map.keys
    }

    /** json.JSONDecodeError or UnicodeDecodeError: [message] is Python's str(exc). */
    class DecodeError(message: String) : Exception(message)

    /** json.loads(raw). */
    fun loads(raw: ByteArray): Any? {
        val text = decodeText(raw)
        val p = Parser(text)
        val idx = p.skipSpace(0)
        val r = p.scanOnce(idx)
        if (r.stop >= 0) throw p.errorAt("Expecting value", r.stop)
        p.err?.let { throw it }
        val end = p.skipSpace(r.end)
        if (end != text.size) throw p.errorAt("Extra data", end)
        return r.value
    }

    // -- text encodings (json.detect_encoding, codecs with surrogatepass) --

    private fun b(raw: ByteArray, i: Int): Int = raw[i].toInt() and 0xff

    private fun startsWith(raw: ByteArray, vararg prefix: Int): Boolean =
        raw.size >= prefix.size && prefix.indices.all { b(raw, it) == prefix[it] }

    private fun decodeText(raw: ByteArray): IntArray {
        when {
            startsWith(raw, 0, 0, 0xfe, 0xff) -> return decodeUtf32("utf-32", raw, 4, false)
            startsWith(raw, 0xff, 0xfe, 0, 0) -> return decodeUtf32("utf-32", raw, 4, true)
            startsWith(raw, 0xfe, 0xff) -> return decodeUtf16("utf-16", raw, 2, false)
            startsWith(raw, 0xff, 0xfe) -> return decodeUtf16("utf-16", raw, 2, true)
            startsWith(raw, 0xef, 0xbb, 0xbf) -> return decodeUtf8(raw.copyOfRange(3, raw.size))
        }
        if (raw.size >= 4) {
            if (b(raw, 0) == 0) {
                return if (b(raw, 1) != 0) decodeUtf16("utf-16-be", raw, 0, false) else decodeUtf32("utf-32-be", raw, 0, false)
            }
            if (b(raw, 1) == 0) {
                return if (b(raw, 2) != 0 || b(raw, 3) != 0) decodeUtf16("utf-16-le", raw, 0, true)
                else decodeUtf32("utf-32-le", raw, 0, true)
            }
        } else if (raw.size == 2) {
            if (b(raw, 0) == 0) return decodeUtf16("utf-16-be", raw, 0, false)
            if (b(raw, 1) == 0) return decodeUtf16("utf-16-le", raw, 0, true)
        }
        return decodeUtf8(raw)
    }

    /** [whole] is the whole input (positions are counted in it); the error covers [start, end). */
    private fun codecError(codec: String, whole: ByteArray, start: Int, end: Int, reason: String): DecodeError =
        if (end == start + 1) {
            DecodeError("'$codec' codec can't decode byte 0x%02x in position %d: %s".format(b(whole, start), start, reason))
        } else {
            DecodeError("'$codec' codec can't decode bytes in position $start-${end - 1}: $reason")
        }

    private fun isCont(c: Int) = c and 0xc0 == 0x80

    /** The well-formed UTF-8 sequence at [i]: code point shl 3 or its size; -1 if ill-formed
     *  (a surrogate's encoding is ill-formed here, as in Go's utf8.DecodeRune). */
    private fun decodeRune(raw: ByteArray, i: Int): Long {
        val n = raw.size - i
        val c = b(raw, i)
        if (c < 0x80) return (c.toLong() shl 3) or 1
        if (c < 0xc2 || c > 0xf4) return -1
        if (c < 0xe0) {
            if (n < 2 || !isCont(b(raw, i + 1))) return -1
            return (((c and 0x1f) shl 6 or (b(raw, i + 1) and 0x3f)).toLong() shl 3) or 2
        }
        if (c < 0xf0) {
            if (n < 3) return -1
            val c2 = b(raw, i + 1)
            val lo = if (c == 0xe0) 0xa0 else 0x80
            val hi = if (c == 0xed) 0x9f else 0xbf
            if (c2 < lo || c2 > hi || !isCont(b(raw, i + 2))) return -1
            return (((c and 0x0f) shl 12 or ((c2 and 0x3f) shl 6) or (b(raw, i + 2) and 0x3f)).toLong() shl 3) or 3
        }
        if (n < 4) return -1
        val c2 = b(raw, i + 1)
        val lo = if (c == 0xf0) 0x90 else 0x80
        val hi = if (c == 0xf4) 0x8f else 0xbf
        if (c2 < lo || c2 > hi || !isCont(b(raw, i + 2)) || !isCont(b(raw, i + 3))) return -1
        val cp = (c and 0x07) shl 18 or ((c2 and 0x3f) shl 12) or ((b(raw, i + 2) and 0x3f) shl 6) or (b(raw, i + 3) and 0x3f)
        return (cp.toLong() shl 3) or 4
    }

    /** CPython's UTF-8 decoder with the surrogatepass handler. */
    private fun decodeUtf8(raw: ByteArray): IntArray {
        val out = IntArray(raw.size)
        var n = 0
        var i = 0
        while (i < raw.size) {
            val c = b(raw, i)
            if (c < 0x80) {
                out[n++] = c
                i++
                continue
            }
            val r = decodeRune(raw, i)
            if (r >= 0) {
                out[n++] = (r shr 3).toInt()
                i += (r and 7).toInt()
                continue
            }
            if (c == 0xed && i + 2 < raw.size && b(raw, i + 1) in 0xa0..0xbf && isCont(b(raw, i + 2))) {
                out[n++] = 0xd000 or ((b(raw, i + 1) and 0x3f) shl 6) or (b(raw, i + 2) and 0x3f)
                i += 3
                continue
            }
            throw utf8Error(raw, i)
        }
        return out.copyOf(n)
    }

    /** The reason and range CPython reports at raw[start]. */
    private fun utf8Error(raw: ByteArray, start: Int): DecodeError {
        val c = b(raw, start)
        val left = raw.size - start
        fun end() = codecError("utf-8", raw, start, raw.size, "unexpected end of data")
        fun cont(n: Int) = codecError("utf-8", raw, start, start + n, "invalid continuation byte")
        return when {
            c < 0xc2 || c >= 0xf5 -> codecError("utf-8", raw, start, start + 1, "invalid start byte")
            c < 0xe0 -> if (left < 2) end() else cont(1)
            c < 0xf0 -> {
                if (left < 2) return end()
                val c2 = b(raw, start + 1)
                if (!isCont(c2) || (c == 0xe0 && c2 < 0xa0) || (c == 0xed && c2 >= 0xa0)) return cont(1)
                if (left < 3) end() else cont(2)
            }
            else -> {
                if (left < 2) return end()
                val c2 = b(raw, start + 1)
                if (!isCont(c2) || (c == 0xf0 && c2 < 0x90) || (c == 0xf4 && c2 >= 0x90)) return cont(1)
                if (left < 3) return end()
                if (!isCont(b(raw, start + 2))) return cont(2)
                if (left < 4) end() else cont(3)
            }
        }
    }

    /** [raw] is the whole input; the text starts at [offset] (after a BOM). */
    private fun decodeUtf16(codec: String, raw: ByteArray, offset: Int, little: Boolean): IntArray {
        val len = raw.size - offset
        val n = len / 2
        val units = IntArray(n) { k ->
            val x = b(raw, offset + 2 * k)
            val y = b(raw, offset + 2 * k + 1)
            if (little) x or (y shl 8) else (x shl 8) or y
        }
        val out = IntArray(n)
        var m = 0
        var k = 0
        while (k < n) {
            val u = units[k]
            if (u in 0xd800..0xdbff && k + 1 < n && units[k + 1] in 0xdc00..0xdfff) {
                out[m++] = 0x10000 + ((u - 0xd800) shl 10) + (units[k + 1] - 0xdc00)
                k += 2
                continue
            }
            out[m++] = u // a lone surrogate passes
            k++
        }
        if (len % 2 == 1) throw codecError(codec, raw, raw.size - 1, raw.size, "truncated data")
        return out.copyOf(m)
    }

    private fun decodeUtf32(codec: String, raw: ByteArray, offset: Int, little: Boolean): IntArray {
        val len = raw.size - offset
        val out = IntArray(len / 4)
        var k = 0
        while (k + 4 <= len) {
            val p = offset + k
            val r: Long = if (little) {
                b(raw, p).toLong() or (b(raw, p + 1).toLong() shl 8) or (b(raw, p + 2).toLong() shl 16) or (b(raw, p + 3).toLong() shl 24)
            } else {
                (b(raw, p).toLong() shl 24) or (b(raw, p + 1).toLong() shl 16) or (b(raw, p + 2).toLong() shl 8) or b(raw, p + 3).toLong()
            }
            if (r > 0x10ffff) throw codecError(codec, raw, p, p + 4, "code point not in range(0x110000)")
            out[k / 4] = r.toInt()
            k += 4
        }
        val rest = len % 4
        if (rest != 0) throw codecError(codec, raw, raw.size - rest, raw.size, "truncated data")
        return out
    }

    /** A Kotlin String of Python str code points (a lone surrogate stays one char). */
    private fun stringOf(cps: IntArray, from: Int, to: Int, sb: StringBuilder) {
        for (i in from until to) appendCodePoint(sb, cps[i])
    }

    private fun appendCodePoint(sb: StringBuilder, cp: Int) {
        if (cp < 0x10000) sb.append(cp.toChar()) else sb.appendCodePoint(cp)
    }

    // -- the scanner (Modules/_json.c) --

    private class Scan(val value: Any?, val end: Int, val stop: Int)

    private class Parser(val s: IntArray) {
        var err: DecodeError? = null

        fun errorAt(msg: String, pos: Int): DecodeError {
            var line = 1
            var col = pos + 1
            var i = 0
            while (i < pos && i < s.size) {
                if (s[i] == '\n'.toInt()) {
                    line++
                    col = pos - i
                }
                i++
            }
            return DecodeError("$msg: line $line column $col (char $pos)")
        }

        fun fail(msg: String, pos: Int): Scan {
            if (err == null) err = errorAt(msg, pos)
            return Scan(null, 0, -1)
        }

        fun skipSpace(start: Int): Int {
            var i = start
            while (i < s.size && (s[i] == 0x20 || s[i] == 0x09 || s[i] == 0x0a || s[i] == 0x0d)) i++
            return i
        }

        fun startsWith(i: Int, word: String): Boolean {
            if (i + word.length > s.size) return false
            for (k in word.indices) if (s[i + k] != word[k].toInt()) return false
            return true
        }

        fun scanOnce(idx: Int): Scan {
            if (err != null) return Scan(null, 0, -1)
            if (idx >= s.size) return Scan(null, 0, idx)
            val c = s[idx]
            when {
                c == '"'.toInt() -> {
                    val sb = StringBuilder()
                    val end = scanString(idx + 1, sb)
                    if (err != null) return Scan(null, 0, -1)
                    return Scan(sb.toString(), end, -1)
                }
                c == '{'.toInt() -> return parseObject(idx + 1)
                c == '['.toInt() -> return parseArray(idx + 1)
                c == 'n'.toInt() && startsWith(idx, "null") -> return Scan(null, idx + 4, -1)
                c == 't'.toInt() && startsWith(idx, "true") -> return Scan(true, idx + 4, -1)
                c == 'f'.toInt() && startsWith(idx, "false") -> return Scan(false, idx + 5, -1)
                c == 'N'.toInt() && startsWith(idx, "NaN") -> return Scan(PyConst(Double.NaN), idx + 3, -1)
                c == 'I'.toInt() && startsWith(idx, "Infinity") -> return Scan(PyConst(Double.POSITIVE_INFINITY), idx + 8, -1)
                c == '-'.toInt() && startsWith(idx, "-Infinity") -> return Scan(PyConst(Double.NEGATIVE_INFINITY), idx + 9, -1)
            }
            return matchNumber(idx)
        }

        private fun isDigit(c: Int) = c >= '0'.toInt() && c <= '9'.toInt()

        fun matchNumber(start: Int): Scan {
            val endIdx = s.size - 1
            var idx = start
            if (s[idx] == '-'.toInt()) {
                idx++
                if (idx > endIdx) return Scan(null, 0, start)
            }
            when {
                s[idx] >= '1'.toInt() && s[idx] <= '9'.toInt() -> {
                    idx++
                    while (idx <= endIdx && isDigit(s[idx])) idx++
                }
                s[idx] == '0'.toInt() -> idx++
                else -> return Scan(null, 0, start)
            }
            if (idx < endIdx && s[idx] == '.'.toInt() && isDigit(s[idx + 1])) {
                idx += 2
                while (idx <= endIdx && isDigit(s[idx])) idx++
            }
            if (idx < endIdx && (s[idx] == 'e'.toInt() || s[idx] == 'E'.toInt())) {
                val eStart = idx
                idx++
                if (idx < endIdx && (s[idx] == '-'.toInt() || s[idx] == '+'.toInt())) idx++
                while (idx <= endIdx && isDigit(s[idx])) idx++
                if (!isDigit(s[idx - 1])) idx = eStart
            }
            val sb = StringBuilder()
            for (i in start until idx) sb.append(s[i].toChar()) // ASCII only
            return Scan(PyNumber(sb.toString()), idx, -1)
        }

        fun parseObject(start: Int): Scan {
            val obj = PyObject()
            val endIdx = s.size - 1
            var idx = skipSpace(start)
            if (idx > endIdx || s[idx] != '}'.toInt()) {
                while (idx <= endIdx) {
                    if (s[idx] != '"'.toInt()) return fail("Expecting property name enclosed in double quotes", idx)
                    val sb = StringBuilder()
                    val next = scanString(idx + 1, sb)
                    if (err != null) return Scan(null, 0, -1)
                    idx = skipSpace(next)
                    if (idx > endIdx || s[idx] != ':'.toInt()) return fail("Expecting ':' delimiter", idx)
                    idx = skipSpace(idx + 1)
                    val v = scanOnce(idx)
                    if (v.stop >= 0 || err != null) return Scan(null, 0, v.stop)
                    obj.map[sb.toString()] = v.value
                    idx = skipSpace(v.end)
                    if (idx <= endIdx && s[idx] == '}'.toInt()) break
                    if (idx > endIdx || s[idx] != ','.toInt()) return fail("Expecting ',' delimiter", idx)
                    idx = skipSpace(idx + 1)
                }
                if (idx > endIdx || s[idx] != '}'.toInt()) return fail("Expecting property name enclosed in double quotes", idx)
            }
            return Scan(obj, idx + 1, -1)
        }

        fun parseArray(start: Int): Scan {
            val list = ArrayList<Any?>()
            val endIdx = s.size - 1
            var idx = skipSpace(start)
            if (idx > endIdx || s[idx] != ']'.toInt()) {
                while (idx <= endIdx) {
                    val v = scanOnce(idx)
                    if (v.stop >= 0 || err != null) return Scan(null, 0, v.stop)
                    list.add(v.value)
                    idx = skipSpace(v.end)
                    if (idx <= endIdx && s[idx] == ']'.toInt()) break
                    if (idx > endIdx || s[idx] != ','.toInt()) return fail("Expecting ',' delimiter", idx)
                    idx = skipSpace(idx + 1)
                }
                if (idx > endIdx || s[idx] != ']'.toInt()) return fail("Expecting value", idx)
            }
            return Scan(list, idx + 1, -1)
        }

        private fun hexValue(r: Int): Int = when (r) {
            in '0'.toInt()..'9'.toInt() -> r - '0'.toInt()
            in 'a'.toInt()..'f'.toInt() -> r - 'a'.toInt() + 10
            in 'A'.toInt()..'F'.toInt() -> r - 'A'.toInt() + 10
            else -> -1
        }

        /** scanstring_unicode (strict): [start] is just after the opening quote; appends the string
         *  to [out] and returns the index after the closing quote (0 with err set on failure). */
        fun scanString(start: Int, out: StringBuilder): Int {
            val n = s.size
            val begin = start - 1
            var end = start
            fun failAt(msg: String, pos: Int): Int {
                fail(msg, pos)
                return 0
            }
            while (true) {
                var next = end
                var c = 0
                while (next < n) {
                    c = s[next]
                    if (c == '"'.toInt() || c == '\\'.toInt()) break
                    if (c <= 0x1f) return failAt("Invalid control character at", next)
                    next++
                }
                if (next >= n) return failAt("Unterminated string starting at", begin)
                stringOf(s, end, next, out)
                next++
                if (c == '"'.toInt()) return next
                if (next == n) return failAt("Unterminated string starting at", begin)
                c = s[next]
                if (c != 'u'.toInt()) {
                    end = next + 1
                    c = when (c.toChar()) {
                        '"', '\\', '/' -> c
                        'b' -> 0x08
                        'f' -> 0x0c
                        'n' -> 0x0a
                        'r' -> 0x0d
                        't' -> 0x09
                        else -> return failAt("Invalid \\escape", end - 2)
                    }
                    out.append(c.toChar())
                    continue
                }
                next++
                end = next + 4
                if (end >= n) return failAt("Invalid \\uXXXX escape", next - 1)
                var u = 0
                while (next < end) {
                    val d = hexValue(s[next])
                    if (d < 0) return failAt("Invalid \\uXXXX escape", end - 5)
                    u = (u shl 4) or d
                    next++
                }
                if (u in 0xd800..0xdbff && end + 6 < n && s[next] == '\\'.toInt() && s[next + 1] == 'u'.toInt()) {
                    next += 2
                    end += 6
                    var u2 = 0
                    while (next < end) {
                        val d = hexValue(s[next])
                        if (d < 0) return failAt("Invalid \\uXXXX escape", end - 5)
                        u2 = (u2 shl 4) or d
                        next++
                    }
                    if (u2 in 0xdc00..0xdfff) {
                        u = 0x10000 + (((u - 0xd800) shl 10) or (u2 - 0xdc00))
                    } else {
                        end -= 6
                    }
                }
                appendCodePoint(out, u)
            }
        }
    }

    // -- Python's spellings of the values (pyrepr.go) --

    /** type(v).__name__ of a value loads returned. */
    fun typeName(v: Any?): String = when (v) {
        null -> "NoneType"
        is Boolean -> "bool"
        is String -> "str"
        is PyNumber -> if (v.isInt) "int" else "float"
        is PyConst -> "float"
        is List<*> -> "list"
        is PyObject -> "dict"
        else -> v.javaClass.simpleName
    }

    /** repr(v) of a value loads returned. */
    fun repr(v: Any?): String = when (v) {
        null -> "None"
        is Boolean -> if (v) "True" else "False"
        is String -> Pyfmt.strRepr(v)
        is PyNumber -> if (v.isInt) v.intLiteral() else Pyfmt.floatRepr(v.toPyFloat())
        is PyConst -> Pyfmt.floatRepr(v.value)
        is List<*> -> v.joinToString(", ", "[", "]") { repr(it) }
        is PyObject -> v.map.entries.joinToString(", ", "{", "}") { Pyfmt.strRepr(it.key) + ": " + repr(it.value) }
        else -> v.toString()
    }

    /** repr(b) of Python bytes: b'...' (b"..." when the bytes hold a ' and no "), \t \n \r \\ by
     *  name, other bytes outside 0x20..0x7e as \xNN. */
    fun bytesRepr(data: ByteArray): String {
        val hasSingle = data.any { it == '\''.toByte() }
        val hasDouble = data.any { it == '"'.toByte() }
        val quote = if (hasSingle && !hasDouble) '"' else '\''
        val sb = StringBuilder("b").append(quote)
        for (x in data) {
            val c = x.toInt() and 0xff
            when {
                c == quote.toInt() || c == '\\'.toInt() -> sb.append('\\').append(c.toChar())
                c == 0x09 -> sb.append("\\t")
                c == 0x0a -> sb.append("\\n")
                c == 0x0d -> sb.append("\\r")
                c < 0x20 || c >= 0x7f -> sb.append("\\x%02x".format(c))
                else -> sb.append(c.toChar())
            }
        }
        return sb.append(quote).toString()
    }
}
