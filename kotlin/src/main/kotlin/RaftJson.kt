// A small JSON reader for what the Raft core and the sim-core protocol read:
// encoded memberships and docs/SIMCORE.md requests. Objects are
// LinkedHashMap<String, Any?> (document order), arrays List<Any?>, integers
// Long (a literal above Long.MAX_VALUE, up to 2^64-1, keeps its 64 bits as
// java.lang.Long.parseUnsignedLong gives them), other numbers Double.
package zmqnode.raft

class JsonSyntaxError(msg: String) : IllegalArgumentException(msg)

object RaftJson {
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.ws()
        val v = p.value()
        p.ws()
        if (p.i != text.length) throw JsonSyntaxError("trailing data at ${p.i}")
        return v
    }

    fun parse(bytes: ByteArray): Any? = parse(decodeUtf8Strict(bytes))

    /** UTF-8 as Python's json.loads reads bytes: malformed input is an error, not U+FFFD. */
    private fun decodeUtf8Strict(b: ByteArray): String {
        val dec = Charsets.UTF_8.newDecoder()
            .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
            .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
        return try {
            dec.decode(java.nio.ByteBuffer.wrap(b)).toString()
        } catch (e: java.nio.charset.CharacterCodingException) {
            throw JsonSyntaxError("invalid UTF-8")
        }
    }

    private class Parser(val s: String) {
        var i = 0

        fun ws() {
            while (i < s.length) {
                val c = s[i]
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') i++ else break
            }
        }

        fun fail(what: String): Nothing = throw JsonSyntaxError("$what at $i")

        fun value(): Any? {
            if (i >= s.length) fail("unexpected end")
            return when (s[i]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> lit("true", true)
                'f' -> lit("false", false)
                'n' -> lit("null", null)
                else -> num()
            }
        }

        fun lit(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) fail("bad literal")
            i += word.length
            return v
        }

        fun obj(): Map<String, Any?> {
            i++
            val out = LinkedHashMap<String, Any?>()
            ws()
            if (i < s.length && s[i] == '}') { i++; return out }
            while (true) {
                ws()
                if (i >= s.length || s[i] != '"') fail("expected a key")
                val k = str()
                ws()
                if (i >= s.length || s[i] != ':') fail("expected ':'")
                i++
                ws()
                out[k] = value()
                ws()
                if (i >= s.length) fail("unexpected end")
                when (s[i]) {
                    ',' -> i++
                    '}' -> { i++; return out }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun arr(): List<Any?> {
            i++
            val out = ArrayList<Any?>()
            ws()
            if (i < s.length && s[i] == ']') { i++; return out }
            while (true) {
                ws()
                out.add(value())
                ws()
                if (i >= s.length) fail("unexpected end")
                when (s[i]) {
                    ',' -> i++
                    ']' -> { i++; return out }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        fun str(): String {
            i++ // the opening quote
            val start = i
            while (i < s.length && s[i] != '"' && s[i] != '\\' && s[i] >= ' ') i++
            if (i < s.length && s[i] == '"') {
                val plain = s.substring(start, i)
                i++
                return plain
            }
            val b = StringBuilder().append(s, start, i)
            while (true) {
                if (i >= s.length) fail("unterminated string")
                val c = s[i++]
                when {
                    c == '"' -> return b.toString()
                    c == '\\' -> {
                        if (i >= s.length) fail("unterminated string")
                        when (val e = s[i++]) {
                            '"' -> b.append('"'); '\\' -> b.append('\\'); '/' -> b.append('/')
                            'b' -> b.append('\b'); 'f' -> b.append('\u000c'); 'n' -> b.append('\n')
                            'r' -> b.append('\r'); 't' -> b.append('\t')
                            'u' -> {
                                if (i + 4 > s.length) fail("bad \\u escape")
                                val h = s.substring(i, i + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                                b.append(h.toChar())
                                i += 4
                            }
                            else -> fail("bad escape \\$e")
                        }
                    }
                    c < ' ' -> fail("control character in string")
                    else -> b.append(c)
                }
            }
        }

        fun num(): Any {
            val start = i
            if (i < s.length && s[i] == '-') i++
            var integer = true
            while (i < s.length) {
                val c = s[i]
                if (c in '0'..'9') i++
                else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integer = false; i++ }
                else break
            }
            val lit = s.substring(start, i)
            if (lit.isEmpty() || lit == "-") fail("bad value")
            return try {
                if (integer) {
                    if (lit.startsWith("-")) lit.toLong() else java.lang.Long.parseUnsignedLong(lit)
                } else lit.toDouble()
            } catch (e: NumberFormatException) {
                fail("bad number $lit")
            }
        }
    }
}
