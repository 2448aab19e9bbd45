// Text exactly as the Python node writes it: JSON strings as json.dumps
// (ensure_ascii) spells them, floats as orjson and as repr() spell them,
// repr() of a str, and the Latin-1 reading of HTTP bytes. A port of
// go/pyfmt: files and messages must be byte-identical whichever node wrote
// them, so every package that must match Python's bytes takes its spelling
// from here. No I/O, only the JDK: any package may use it.
package zmqnode.pyfmt

import java.math.BigDecimal
import java.math.MathContext
import java.math.RoundingMode

object Pyfmt {
    private const val HEX = "0123456789abcdef"

    /**
     * json.dumps(s) with ensure_ascii=True (Python's default): the quoted
     * string with '"' '\\' '\n' '\r' '\t' '\b' '\f' escaped by name and every
     * other character outside ' '..'~' (controls, DEL, non-ASCII) as \uXXXX in
     * lower-case hex; a character beyond the BMP is its UTF-16 pair, a lone
     * surrogate (a str Python can hold) is escaped as itself. '/' is not escaped.
     */
    fun quoteAscii(s: String): String {
        val b = StringBuilder(s.length + 2)
        b.append('"')
        for (c in s) {
            when (c) {
                '"' -> b.append("\\\"")
                '\\' -> b.append("\\\\")
                '\n' -> b.append("\\n")
                '\r' -> b.append("\\r")
                '\t' -> b.append("\\t")
                '\b' -> b.append("\\b")
                '\u000c' -> b.append("\\f")
                else -> if (c in ' '..'~') b.append(c) else appendU4(b, c.toInt())
            }
        }
        b.append('"')
        return b.toString()
    }

    private fun appendU4(b: StringBuilder, u: Int) {
        b.append("\\u")
        b.append(HEX[(u shr 12) and 0xf]).append(HEX[(u shr 8) and 0xf])
        b.append(HEX[(u shr 4) and 0xf]).append(HEX[u and 0xf])
    }

    /**
     * f as orjson writes a float64: the shortest digits that read back as f;
     * positional with at least one decimal ("1.0", "0.00001",
     * "1000000000000000.0") when the decimal exponent is in -5..15, otherwise
     * scientific with an explicit sign and no padding ("1e-6", "1e+16",
     * "1.5e+300"); NaN and ±Inf are "null" (orjson's choice; never send them).
     * json.dumps differs: see [floatRepr].
     */
    fun orjsonFloat(f: Double): String = ryuFormat(f, false, 16, -5)

    /**
     * How orjson (3.13) writes a numpy float32: the shortest digits that read
     * back as the float32, positional when the value is below 10^13 and not
     * below 10^-6, else d.ddde±x ("1e-7", "1e+13").
     */
    fun orjsonFloat32(f: Float): String = ryuFormat(f.toDouble(), true, 13, -6)

    private fun ryuFormat(f: Double, single: Boolean, maxExp: Int, minExp: Int): String {
        if (f.isNaN() || f.isInfinite()) return "null"
        if (f == 0.0) return if (1.0 / f < 0) "-0.0" else "0.0"
        val sign = if (f < 0) "-" else ""
        val (digits, kk) = shortest(Math.abs(f), single) // 0.d1d2... × 10^kk
        val length = digits.length
        val k = kk - length
        if (k >= 0 && kk <= maxExp) return sign + digits + "0".repeat(k) + ".0"
        if (kk > 0 && kk <= maxExp) return sign + digits.substring(0, kk) + "." + digits.substring(kk)
        if (kk > minExp && kk <= 0) return sign + "0." + "0".repeat(-kk) + digits
        var m = digits.substring(0, 1)
        if (length > 1) m += "." + digits.substring(1)
        return if (kk - 1 >= 0) sign + m + "e+" + (kk - 1) else sign + m + "e" + (kk - 1)
    }

    /**
     * repr(f) of a Python float, which is also how json.dumps writes a float:
     * the shortest round-tripping digits, positional (always with a decimal,
     * "1.0") when the decimal exponent is in -4..15, otherwise exponent form
     * with a sign and at least two digits ("1e-05", "1e+16"); "nan", "inf",
     * "-inf" (json.dumps refuses those with allow_nan=False: callers check).
     */
    fun floatRepr(f: Double): String {
        if (f.isNaN()) return "nan"
        if (f == Double.POSITIVE_INFINITY) return "inf"
        if (f == Double.NEGATIVE_INFINITY) return "-inf"
        if (f == 0.0) return if (1.0 / f < 0) "-0.0" else "0.0"
        val sign = if (f < 0) "-" else ""
        val (digits, decpt) = shortest(Math.abs(f), false)
        if (decpt <= -4 || decpt > 16) {
            var m = digits.substring(0, 1)
            if (digits.length > 1) m += "." + digits.substring(1)
            var x = decpt - 1
            val es = if (x < 0) "-" else "+"
            if (x < 0) x = -x
            val xs = x.toString().padStart(2, '0')
            return sign + m + "e" + es + xs
        }
        return when {
            decpt <= 0 -> sign + "0." + "0".repeat(-decpt) + digits
            decpt >= digits.length -> sign + digits + "0".repeat(decpt - digits.length) + ".0"
            else -> sign + digits.substring(0, decpt) + "." + digits.substring(decpt)
        }
    }

    /**
     * The shortest decimal digits (no trailing zeros) that read back as f
     * (positive, finite, non-zero; as a float32 when [single]), the nearest
     * to f among those, and the decimal point's place: f ≈ 0.d1d2... × 10^decpt.
     * (JDK 17's Double.toString is not always the shortest, so it is only
     * the starting point.)
     */
    private fun shortest(f: Double, single: Boolean): Pair<String, Int> =
        shortestFast(f, single) ?: shortestExact(f, single)

    /**
     * The JDK's digits D when they are provably the answer: no number of one
     * digit fewer reads back (if one did, D's floor or ceiling at that length
     * would, both lying between it and D in the round-trip interval), and
     * neither neighbour of D at its length reads back (D is then the only
     * candidate of its length). Otherwise null: [shortestExact] decides.
     */
    private fun shortestFast(f: Double, single: Boolean): Pair<String, Int>? {
        val s = if (single) f.toFloat().toString() else f.toString()
        val ePos = s.indexOf('E')
        val mant = if (ePos < 0) s else s.substring(0, ePos)
        val exp = if (ePos < 0) 0 else s.substring(ePos + 1).toInt()
        val dot = mant.indexOf('.')
        if (dot < 0) return null
        val all = mant.substring(0, dot) + mant.substring(dot + 1)
        val lead = all.length - all.trimStart('0').length
        val digits = all.trimStart('0').trimEnd('0')
        val n = digits.length
        if (n == 0 || n > 18) return null
        val decpt = dot + exp - lead
        val m = digits.toLong()
        val e = decpt - n // f ≈ m × 10^e
        fun readsBack(mm: Long, ee: Int): Boolean =
            if (single) java.lang.Float.parseFloat("${mm}E$ee") == f.toFloat()
            else java.lang.Double.parseDouble("${mm}E$ee") == f
        if (n > 1 && (readsBack(m / 10, e + 1) || readsBack(m / 10 + 1, e + 1))) return null
        // Up to 15 digits (6 for a float32) the spacing of n-digit numbers
        // exceeds an ulp, so the round-trip interval holds no other one.
        if (n <= (if (single) 6 else 15)) return Pair(digits, decpt)
        val below = readsBack(m - 1, e)
        val above = readsBack(m + 1, e)
        if (!below && !above) return Pair(digits, decpt)
        // Several candidates of this length: the nearest to f's exact value.
        val exact = BigDecimal(f)
        var best = BigDecimal.valueOf(m, -e)
        for ((ok, c) in listOf(below to m - 1, above to m + 1)) {
            val cand = BigDecimal.valueOf(c, -e)
            if (ok && cand.subtract(exact).abs() < best.subtract(exact).abs()) best = cand
        }
        val stripped = best.stripTrailingZeros()
        val d = stripped.unscaledValue().toString()
        return Pair(d, d.length - stripped.scale())
    }

    private fun shortestExact(f: Double, single: Boolean): Pair<String, Int> {
        val exact = BigDecimal(f)
        fun readsBack(c: BigDecimal): Boolean =
            if (single) java.lang.Float.parseFloat(c.toString()) == f.toFloat()
            else java.lang.Double.parseDouble(c.toString()) == f
        fun candidate(p: Int): BigDecimal? {
            val near = exact.round(MathContext(p, RoundingMode.HALF_EVEN))
            if (readsBack(near)) return near
            val other = exact.round(MathContext(p, if (near > exact) RoundingMode.FLOOR else RoundingMode.CEILING))
            return if (readsBack(other)) other else null
        }
        val start = if (single) f.toFloat().toString() else f.toString()
        var p = BigDecimal(start).stripTrailingZeros().precision()
        var best = candidate(p)
        while (best == null && p < 20) { p++; best = candidate(p) }
        while (p > 1) {
            val shorter = candidate(p - 1) ?: break
            best = shorter
            p--
        }
        val c = best!!.stripTrailingZeros()
        val digits = c.unscaledValue().abs().toString()
        return Pair(digits, digits.length - c.scale())
    }

    /**
     * repr(s) of a Python str: quoted with ' (or " when s holds ' and no "),
     * \t \n \r and the quote and backslash escaped, other non-printable
     * characters as \xXX, \uXXXX or \UXXXXXXXX (Python's isprintable: not
     * Cc, Cf, Cs, Co, Cn, Zl, Zp, nor Zs apart from ' '); a lone surrogate is \udXXX.
     */
    fun strRepr(s: String): String {
        val quote = if (s.indexOf('\'') >= 0 && s.indexOf('"') < 0) '"' else '\''
        val b = StringBuilder(s.length + 2)
        b.append(quote)
        var i = 0
        while (i < s.length) {
            val r = s.codePointAt(i)
            i += Character.charCount(r)
            when {
                r == quote.toInt() || r == '\\'.toInt() -> b.append('\\').appendCodePoint(r)
                r == '\t'.toInt() -> b.append("\\t")
                r == '\n'.toInt() -> b.append("\\n")
                r == '\r'.toInt() -> b.append("\\r")
                r < 0x20 || r == 0x7f -> b.append("\\x").append(hex(r, 2))
                r in 0xd800..0xdfff -> b.append("\\u").append(hex(r, 4))
                r < 0x7f || isPrintable(r) -> b.appendCodePoint(r)
                r < 0x100 -> b.append("\\x").append(hex(r, 2))
                r < 0x10000 -> b.append("\\u").append(hex(r, 4))
                else -> b.append("\\U").append(hex(r, 8))
            }
        }
        b.append(quote)
        return b.toString()
    }

    private fun hex(v: Int, width: Int): String = Integer.toHexString(v).padStart(width, '0')

    private fun isPrintable(cp: Int): Boolean = when (Character.getType(cp).toByte()) {
        Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.PRIVATE_USE,
        Character.UNASSIGNED, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR,
        Character.SPACE_SEPARATOR -> false
        else -> true
    }

    /** Bytes read as Latin-1, as h11 and http.server decode a request line and header values. */
    fun latin1(b: ByteArray): String = String(b, Charsets.ISO_8859_1)
}
