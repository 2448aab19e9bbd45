// What monitor.py gets from Python's standard library, done the same way:
// urlparse of the request target, parse_qs, int() and the log tail.
package zmqnode.monitor

import java.io.File
import java.io.RandomAccessFile
import zmqnode.pyfmt.Pyfmt

internal fun pyStrRepr(s: String): String = Pyfmt.strRepr(s)

/**
 * urllib.parse.urlparse(target)'s path and query (the target's bytes read
 * as Latin-1, as http.server decodes the request line): the fragment and
 * the query cut off, a scheme and a netloc dropped, and the ";params" of
 * the last path segment cut off (urlparse, unlike urlsplit, does that: so
 * "/status;x" is "/status"; go/monitor misses this one).
 */
internal fun splitTarget(targetIn: String): Pair<String, String> {
    var target = targetIn
    var query = ""
    target.indexOf('#').let { if (it >= 0) target = target.substring(0, it) }
    target.indexOf('?').let { if (it >= 0) { query = target.substring(it + 1); target = target.substring(0, it) } }
    val colon = target.indexOf(':')
    if (colon > 0 && isScheme(target.substring(0, colon))) target = target.substring(colon + 1)
    if (target.startsWith("//")) {
        val rest = target.substring(2)
        val slash = rest.indexOf('/')
        target = if (slash >= 0) rest.substring(slash) else ""
    }
    val lastSlash = target.lastIndexOf('/')
    if (lastSlash >= 0) {
        val semi = target.indexOf(';', lastSlash)
        if (semi >= 0) target = target.substring(0, semi)
    }
    return target to query
}

private fun isScheme(s: String): Boolean {
    for (i in s.indices) {
        val c = s[i]
        val letter = c in 'a'..'z' || c in 'A'..'Z'
        if (!letter && (i == 0 || !(c in '0'..'9' || c == '+' || c == '-' || c == '.'))) return false
    }
    return true
}

/** urllib.parse.parse_qs(query): '&'-separated pairs, '+' and %XX decoded, pairs without '=' or with an empty value left out. */
internal fun parseQS(query: String): Map<String, List<String>> {
    val out = LinkedHashMap<String, MutableList<String>>()
    for (pair in query.split("&")) {
        val eq = pair.indexOf('=')
        if (eq < 0 || eq == pair.length - 1) continue
        out.getOrPut(unquotePlus(pair.substring(0, eq))) { ArrayList() }.add(unquotePlus(pair.substring(eq + 1)))
    }
    return out
}

/** urllib.parse.unquote_plus: runs of %XX read as UTF-8 with errors replaced; invalid escapes and other characters stay. */
internal fun unquotePlus(s0: String): String {
    val s = s0.replace('+', ' ')
    val b = StringBuilder()
    var i = 0
    while (i < s.length) {
        if (s[i] == '%' && i + 2 < s.length + 0 && i + 2 <= s.length - 1 && isHex(s[i + 1]) && isHex(s[i + 2])) {
            val bytes = java.io.ByteArrayOutputStream()
            while (i + 2 < s.length && s[i] == '%' && isHex(s[i + 1]) && isHex(s[i + 2])) {
                bytes.write(Integer.parseInt(s.substring(i + 1, i + 3), 16))
                i += 3
            }
            b.append(decodeReplace(bytes.toByteArray()))
            continue
        }
        b.append(s[i])
        i++
    }
    return b.toString()
}

private fun isHex(c: Char) = c in '0'..'9' || c in 'a'..'f' || c in 'A'..'F'

/** str.isspace. */
internal fun pySpace(c: Char): Boolean =
    c == ' ' || c in '\t'..'\r' || c.toInt() in 0x1c..0x1f || c == '\u0085' || c == '\u00a0' ||
        Character.getType(c) == Character.SPACE_SEPARATOR.toInt() ||
        c == '\u2028' || c == '\u2029'

/**
 * Python's int(text): surrounding whitespace, a sign, single underscores
 * between digits, any Unicode decimal digits (Python's rule; go/monitor
 * takes ASCII only). Values beyond ±10^9 are clamped (the caller clamps to
 * 1..5000 anyway). null: ValueError.
 */
internal fun pyInt(text: String): Int? {
    var s = text.trim { pySpace(it) }
    var neg = false
    if (s.isNotEmpty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-'
        s = s.substring(1)
    }
    if (s.length == 0 || s[0] == '_' || s[s.length - 1] == '_') return null
    var n = 0L
    for (i in s.indices) {
        val c = s[i]
        if (c == '_') {
            if (s[i - 1] == '_') return null
            continue
        }
        if (Character.getType(c) != Character.DECIMAL_DIGIT_NUMBER.toInt()) return null
        val d = Character.digit(c, 10)
        if (d < 0) return null
        if (n < 1_000_000_000L) n = n * 10 + d
    }
    return (if (neg) -n else n).toInt()
}

internal object MonitorPython {
    /**
     * zmqnode/logs.py's tail: the last lines of the file at path, reading only
     * its last lines×400 bytes, decoded as UTF-8 with errors replaced and
     * split as str.splitlines; none if the file does not exist.
     */
    fun tailFile(path: String, lines: Int): List<String> {
        val f = File(path)
        if (!f.exists()) return emptyList()
        return try {
            RandomAccessFile(f, "r").use { raf ->
                val size = raf.length()
                val start = maxOf(0L, size - lines.toLong() * 400)
                val data = ByteArray((size - start).toInt())
                raf.seek(start)
                raf.readFully(data)
                val all = splitLines(decodeReplace(data))
                if (all.size > lines) all.subList(all.size - lines, all.size) else all
            }
        } catch (e: java.io.IOException) {
            emptyList()
        }
    }
}

/** str.splitlines (no ends kept). */
internal fun splitLines(s: String): List<String> {
    val out = ArrayList<String>()
    var start = 0
    var i = 0
    while (i < s.length) {
        val c = s[i]
        when (c) {
            '\n', '\r', '\u000b', '\u000c', '\u001c', '\u001d', '\u001e', '\u0085', '\u2028', '\u2029' -> {
                out.add(s.substring(start, i))
                i++
                if (c == '\r' && i < s.length && s[i] == '\n') i++
                start = i
            }
            else -> i++
        }
    }
    if (start < s.length) out.add(s.substring(start))
    return out
}

/**
 * bytes.decode("utf-8", "replace"): each maximal ill-formed subsequence
 * becomes one U+FFFD (Unicode §3.9, as CPython does); written out rather
 * than trusting the JDK decoder's malformed-input lengths.
 */
internal fun decodeReplace(b: ByteArray): String {
    val sb = StringBuilder(b.size)
    var i = 0
    while (i < b.size) {
        val c = b[i].toInt() and 0xff
        if (c < 0x80) {
            sb.append(c.toChar())
            i++
            continue
        }
        var lo = 0x80
        var hi = 0xbf
        val need: Int
        when {
            c in 0xc2..0xdf -> need = 1
            c == 0xe0 -> { lo = 0xa0; need = 2 }
            c in 0xe1..0xec || c == 0xee || c == 0xef -> need = 2
            c == 0xed -> { hi = 0x9f; need = 2 }
            c == 0xf0 -> { lo = 0x90; need = 3 }
            c in 0xf1..0xf3 -> need = 3
            c == 0xf4 -> { hi = 0x8f; need = 3 }
            else -> need = 0
        }
        var n = 1
        var cp = when (need) { 1 -> c and 0x1f; 2 -> c and 0x0f; 3 -> c and 0x07; else -> 0 }
        var ok = need > 0
        for (k in 0 until need) {
            if (i + n >= b.size) { ok = false; break }
            val d = b[i + n].toInt() and 0xff
            if (d < lo || d > hi) { ok = false; break }
            cp = (cp shl 6) or (d and 0x3f)
            n++
            lo = 0x80
            hi = 0xbf
        }
        if (ok) sb.appendCodePoint(cp) else sb.append('\ufffd')
        i += n
    }
    return sb.toString()
}
