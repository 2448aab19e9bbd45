package zmqnode.ml

import java.math.BigDecimal
import java.math.BigInteger
import java.math.MathContext
import java.math.RoundingMode
import zmqnode.pyfmt.Pyfmt
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

// Python's json.dumps(v, sort_keys=True, separators=(",", ":"),
// allow_nan=False), what model_file.py writes into every model file
// (docs/FORMAT.md §8), and the value helpers the package shares: Python
// reprs for messages, JSON integers vs floats (go/ml/pyjson.go, options.go).

/** A JSON object written in its own key order (the safetensors header). */
internal class OrderedObject(val fields: List<Pair<String, Any?>>)

/** Python's str ordering: by code point (String.compareTo is by UTF-16 unit: wrong above U+FFFF). */
val CODE_POINT_ORDER: Comparator<String> = Comparator { a, b ->
    var i = 0
    var j = 0
    var r = 0
    while (r == 0 && i < a.length && j < b.length) {
        val ca = a.codePointAt(i)
        val cb = b.codePointAt(j)
        r = ca.compareTo(cb)
        i += Character.charCount(ca)
        j += Character.charCount(cb)
    }
    if (r != 0) r else (a.length - i).compareTo(b.length - j)
}

object PyJson {
    /**
     * v as Python's json.dumps(v, sort_keys=True, separators=(",", ":")):
     * null, Boolean, String, Int, Long, Float (widened), Double, JsonNumber
     * (an integer literal as is, else as the float it reads as), List,
     * IntArray, LongArray, Map / JsonObject (keys sorted by code point).
     * Throws ModelFormatException for NaN/infinity or another type.
     */
    @JvmStatic
    fun encode(v: Any?): ByteArray {
        val b = StringBuilder()
        write(b, v)
        return b.toString().toByteArray(Charsets.UTF_8)
    }

    @JvmStatic
    fun encodeToString(v: Any?): String {
        val b = StringBuilder()
        write(b, v)
        return b.toString()
    }

    private fun writeFloat(b: StringBuilder, x: Double) {
        if (x.isNaN() || x.isInfinite()) {
            throw ModelFormatException("out of range float values are not JSON compliant: ${Pyfmt.floatRepr(x)}")
        }
        b.append(Pyfmt.floatRepr(x))
    }

    private fun writeObject(b: StringBuilder, keys: List<String>, get: (String) -> Any?) {
        b.append('{')
        for ((i, k) in keys.withIndex()) {
            if (i > 0) b.append(',')
            b.append(Pyfmt.quoteAscii(k))
            b.append(':')
            write(b, get(k))
        }
        b.append('}')
    }

    private fun write(b: StringBuilder, v: Any?) {
        when (v) {
            null -> b.append("null")
            is Boolean -> b.append(if (v) "true" else "false")
            is String -> b.append(Pyfmt.quoteAscii(v))
            is Int -> b.append(v.toString())
            is Long -> b.append(v.toString())
            is Float -> writeFloat(b, v.toDouble())
            is Double -> writeFloat(b, v)
            is JsonNumber -> {
                val lit = v.literal
                if (isIntegerLiteral(lit)) b.append(lit) else writeFloat(b, lit.toDouble())
            }
            is IntArray -> { b.append('['); v.forEachIndexed { i, x -> if (i > 0) b.append(','); b.append(x) }; b.append(']') }
            is LongArray -> { b.append('['); v.forEachIndexed { i, x -> if (i > 0) b.append(','); b.append(x) }; b.append(']') }
            is List<*> -> {
                b.append('[')
                for ((i, e) in v.withIndex()) {
                    if (i > 0) b.append(',')
                    write(b, e)
                }
                b.append(']')
            }
            is OrderedObject -> {
                b.append('{')
                for ((i, kv) in v.fields.withIndex()) {
                    if (i > 0) b.append(',')
                    b.append(Pyfmt.quoteAscii(kv.first))
                    b.append(':')
                    write(b, kv.second)
                }
                b.append('}')
            }
            is JsonObject -> writeObject(b, v.keys.map { it }.sortedWith(CODE_POINT_ORDER)) { v.get(it) }
            is Map<*, *> -> writeObject(b, v.keys.map { it as String }.sortedWith(CODE_POINT_ORDER)) { v[it] }
            else -> throw ModelFormatException("${v.javaClass.simpleName} is not JSON-serializable")
        }
    }
}

/** A JSON number literal without fraction or exponent. */
internal fun isIntegerLiteral(lit: String): Boolean = lit.none { it == '.' || it == 'e' || it == 'E' }

/** A JSON integer (not 1.0, not true) that fits a Long; null otherwise. */
internal fun jsonInt(v: Any?): Long? = when (v) {
    is JsonNumber -> if (isIntegerLiteral(v.literal)) v.literal.toLongOrNull() else null
    is Long -> v
    is Int -> v.toLong()
    else -> null
}

/** A finite JSON number as a double and whether it was an integer literal; null otherwise. */
internal fun jsonReal(v: Any?): Pair<Double, Boolean>? {
    val r: Pair<Double, Boolean> = when (v) {
        is JsonNumber -> Pair(v.literal.toDoubleOrNull() ?: return null, isIntegerLiteral(v.literal))
        is Double -> Pair(v, false)
        is Float -> Pair(v.toDouble(), false)
        is Long -> Pair(v.toDouble(), true)
        is Int -> Pair(v.toDouble(), true)
        else -> return null
    }
    if (r.first.isNaN() || r.first.isInfinite()) return null
    return r
}

/** Python's type name of a decoded JSON value, for messages. */
internal fun pyTypeName(v: Any?): String = when (v) {
    null -> "NoneType"
    is Boolean -> "bool"
    is String -> "str"
    is List<*> -> "list"
    is JsonObject, is Map<*, *> -> "dict"
    is JsonNumber -> if (isIntegerLiteral(v.literal)) "int" else "float"
    is Long, is Int -> "int"
    is Double, is Float -> "float"
    else -> v.javaClass.simpleName
}

/** Python's repr() of a decoded JSON value (json.loads' types), for messages. */
internal fun pyRepr(v: Any?): String = when (v) {
    null -> "None"
    is Boolean -> if (v) "True" else "False"
    is String -> Pyfmt.strRepr(v)
    is JsonNumber -> if (isIntegerLiteral(v.literal)) BigInteger(v.literal).toString() else Pyfmt.floatRepr(v.literal.toDouble())
    is Long, is Int -> v.toString()
    is Double -> Pyfmt.floatRepr(v)
    is Float -> Pyfmt.floatRepr(v.toDouble())
    is List<*> -> v.joinToString(", ", "[", "]") { pyRepr(it) }
    is JsonObject -> v.keys.joinToString(", ", "{", "}") { pyRepr(it) + ": " + pyRepr(v.get(it)) }
    is Map<*, *> -> v.entries.joinToString(", ", "{", "}") { pyRepr(it.key) + ": " + pyRepr(it.value) }
    else -> v.toString()
}

/** repr(tuple(list)): "(1.5,)" for one item. */
internal fun pyTuple(list: List<*>): String =
    if (list.size == 1) "(" + pyRepr(list[0]) + ",)" else list.joinToString(", ", "(", ")") { pyRepr(it) }

/**
 * training._round6: float(f"{v:.6g}"): the exact binary value rounded half
 * to even to 6 significant digits, as C's printf (JVM pitfall:
 * String.format("%.6g") rounds HALF_UP and not always from the exact value).
 */
fun round6(v: Double): Double {
    if (v == 0.0 || v.isNaN() || v.isInfinite()) return v
    val r = BigDecimal(v).round(MathContext(6, RoundingMode.HALF_EVEN))
    return java.lang.Double.parseDouble(r.toString())
}

/** A decoded JSON value with every JsonObject turned into a LinkedHashMap (key order kept). */
internal fun plainJson(v: Any?): Any? = when (v) {
    is JsonObject -> {
        val m = LinkedHashMap<String, Any?>()
        for (k in v.keys) m[k] = plainJson(v.get(k))
        m
    }
    is List<*> -> v.map { plainJson(it) }
    else -> v
}
