// The Open Inference Protocol (KServe v2 / Triton HTTP) mapped onto PREDICT:
// zmqnode/oip.py (a port of go/httpinfer/oip.go and pyrepr.go), with the
// same checks in the same order and the same messages. Pure functions, no
// sockets.
package zmqnode.httpinfer

import java.math.BigInteger
import java.nio.ByteBuffer
import java.nio.ByteOrder
import zmqnode.pyfmt.Pyfmt
import zmqnode.wire.Json
import zmqnode.wire.JsonException
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

/** Tensor names (client/export.py's ONNX graph, docs/FORMAT.md §5) and fixed names. */
object Oip {
    const val INPUT_NAME = "inputs"
    const val LABEL = "label"
    const val PROBABILITIES = "probabilities"
    const val VALUES = "values"
    /** The binary tensor extension's header: the length of the JSON part of the body. */
    const val HEADER_LENGTH = "Inference-Header-Content-Length"
    const val SERVER_NAME = "zmqnode"
    const val PLATFORM = "zmqnode"
    /** In the order "all outputs" lists them. */
    val OUTPUT_NAMES = listOf(LABEL, PROBABILITIES, VALUES)
    /** Extensions the server offers (GET /v2). */
    val EXTENSIONS = listOf("binary_tensor_data")
}

/** A request that cannot be served: an HTTP status and a one-line message for the {"error": ...} body (oip.py's OipError). */
class OipError(val status: Int, message: String) : Exception(message) {
    override val message: String get() = super.message ?: ""
}

internal fun bad(message: String) = OipError(400, message)

internal class InputType(val name: String, val size: Int, val float: Boolean, val min: BigInteger?, val max: BigInteger?)

private fun bi(v: Long) = BigInteger.valueOf(v)

/** The accepted input datatypes, in the order messages list them; all are converted to float32. */
internal val INPUT_TYPES = listOf(
    InputType("FP16", 2, true, null, null),
    InputType("FP32", 4, true, null, null),
    InputType("FP64", 8, true, null, null),
    InputType("INT8", 1, false, bi(-128), bi(127)),
    InputType("INT16", 2, false, bi(-32768), bi(32767)),
    InputType("INT32", 4, false, bi(Int.MIN_VALUE.toLong()), bi(Int.MAX_VALUE.toLong())),
    InputType("INT64", 8, false, bi(Long.MIN_VALUE), bi(Long.MAX_VALUE)),
    InputType("UINT8", 1, false, BigInteger.ZERO, bi(255)),
    InputType("UINT16", 2, false, BigInteger.ZERO, bi(65535)),
    InputType("UINT32", 4, false, BigInteger.ZERO, bi(4294967295L)),
    InputType("UINT64", 8, false, BigInteger.ZERO, BigInteger("18446744073709551615"))
)

/** One entry of a request's outputs. */
class RequestedOutput(val name: String, val binary: Boolean)

/** A parsed infer request: the rows to predict (float32, row-major, as PREDICT's blob 0) and how to answer. */
class InferCall(
    val modelId: String,
    /** Echoed as "id" when the request had one. */
    val requestId: String?,
    val rows: Int,
    val cols: Int,
    /** The rows as little-endian float32. */
    val blob: ByteArray,
    val outputs: List<RequestedOutput>,
    val binaryOutput: Boolean
) {
    /** PREDICT must send probabilities: "probabilities" was listed, or nothing was and task ("" unknown) classifies. */
    fun proba(task: String): Boolean {
        if (outputs.isNotEmpty()) return outputs.any { it.name == Oip.PROBABILITIES }
        return task != "" && task != "regression"
    }

    /**
     * The PREDICT request for this call (blob: [blob]), as the node's handlers
     * get one from a client (JsonNumbers). With a known task, an output the
     * model lacks is a 400 (OipError) before any work is done.
     */
    fun predictHeader(requestId: String, task: String): JsonObject {
        if (task != "") checkOutputs(this, task)
        return decoded(JsonObject(
            "v" to 1, "type" to "PREDICT", "id" to requestId, "model_id" to modelId,
            "inputs" to JsonObject("dtype" to "float32", "shape" to listOf(rows, cols), "frame" to 0),
            "proba" to proba(task)))
    }
}

/** A header as the node's handlers get one from a client: the JSON decoder's types. */
internal fun decoded(header: JsonObject): JsonObject = try {
    Json.parse(Json.encode(header)) as? JsonObject ?: header
} catch (e: JsonException) {
    header
}

/** Refuses (400) an output a task's model does not have. */
fun checkOutputs(c: InferCall, task: String) {
    val have = if (task == "regression") listOf(Oip.VALUES) else listOf(Oip.LABEL, Oip.PROBABILITIES)
    for (o in c.outputs) {
        if (o.name !in have) {
            throw bad("model ${c.modelId} ($task) has no output '${o.name}'; its outputs: ${have.joinToString(", ")}")
        }
    }
}

/** str.isspace for Latin-1 text. */
private fun latin1Space(c: Char) = c == ' ' || c in '\t'..'\r' || c.toInt() in 0x1c..0x1f || c == '\u0085' || c == '\u00a0'

/**
 * The Inference-Header-Content-Length value (null: no such header), as a
 * length; Long.MAX_VALUE for one beyond any body (refused by parseInfer).
 */
fun parseHeaderLength(value: String?): Long? {
    if (value == null) return null
    val text = value.trim { latin1Space(it) }
    if (text.length == 0 || text.any { it !in '0'..'9' }) {
        throw bad("${Oip.HEADER_LENGTH} must be a non-negative integer, got ${cut(Pyfmt.strRepr(value), 40)}")
    }
    val n = BigInteger(text)
    return if (n.bitLength() > 63) Long.MAX_VALUE else n.toLong()
}

/**
 * Parses an infer request body: JSON, or (headerLength not null) that many
 * bytes of JSON followed by the binary tensors. Every refusal is an
 * OipError 400 with oip.py's message.
 */
fun parseInfer(modelId: String, body: ByteArray, headerLength: Long?): InferCall {
    var jsonPart = body
    var tail = ByteArray(0)
    if (headerLength != null) {
        if (headerLength < 0 || headerLength > body.size) {
            throw bad("${Oip.HEADER_LENGTH} is $headerLength but the body has ${body.size} bytes")
        }
        jsonPart = body.copyOfRange(0, headerLength.toInt())
        tail = body.copyOfRange(headerLength.toInt(), body.size)
    }
    val value = try {
        Json.parse(jsonPart)
    } catch (e: JsonException) {
        // The text after the colon is the JSON parser's own (SPEC_NOTES.md §3).
        val why = if (jsonPart.isEmpty()) "Input is a zero-length, empty document: line 1 column 1 (char 0)" else (e.message ?: "invalid")
        throw bad("request is not valid JSON: $why")
    }
    val request = value as? JsonObject ?: throw bad("request must be a JSON object, got ${kind(value)}")
    var requestId: String? = null
    val id = request["id"]
    if (id != null) {
        requestId = id as? String ?: throw bad("request 'id' must be a string, got ${kind(id)}")
    }
    val params = parameters(request, "request")
    var binaryOutput = false
    if (params.has("binary_data_output")) {
        binaryOutput = params["binary_data_output"] as? Boolean ?: throw bad("parameter 'binary_data_output' must be true or false")
    }
    val inputs = request["inputs"]
    if (inputs !is List<*> || inputs.size != 1) {
        val count = if (inputs is List<*>) "${inputs.size} inputs" else kind(inputs)
        throw bad("model $modelId takes exactly one input '${Oip.INPUT_NAME}' (FP32 [-1, columns]), got $count")
    }
    val input = readInput(inputs[0], tail)
    val outputs = requestedOutputs(request["outputs"], binaryOutput)
    val values = input.second
    val blob = ByteBuffer.allocate(4 * values.size).order(ByteOrder.LITTLE_ENDIAN)
    for (v in values) blob.putFloat(v)
    return InferCall(modelId, requestId, values.size / input.first, input.first, blob.array(), outputs, binaryOutput)
}

private fun parameters(obj: JsonObject, where: String): JsonObject {
    if (!obj.has("parameters")) return JsonObject()
    val v = obj["parameters"]
    return v as? JsonObject ?: throw bad("$where 'parameters' must be an object, got ${kind(v)}")
}

private class Rows(val values: FloatArray, val isFloat: Boolean, val finite: Boolean)

/** The one input tensor as finite float32 rows × cols: (cols, values). */
private fun readInput(tensor: Any?, tail: ByteArray): Pair<Int, FloatArray> {
    val obj = tensor as? JsonObject ?: throw bad("input must be an object, got ${kind(tensor)}")
    val name = obj["name"]
    if (name !is String || name != Oip.INPUT_NAME) {
        throw bad("unknown input ${repr(name)}: the model's input is '${Oip.INPUT_NAME}'")
    }
    val dtName = obj["datatype"]
    val dt = INPUT_TYPES.firstOrNull { dtName is String && it.name == dtName }
        ?: throw bad("input '${Oip.INPUT_NAME}' has datatype ${repr(dtName)}; allowed: ${INPUT_TYPES.joinToString(", ") { it.name }}")
    val shapeValue = obj["shape"]
    val shape = shapeOf(shapeValue)
        ?: throw bad("input '${Oip.INPUT_NAME}' shape must be [rows, columns] or [columns] of positive integers, got ${reprCut(shapeValue, 80)}")
    var count = BigInteger.ONE
    for (n in shape) count = count.multiply(n)
    val params = parameters(obj, "input '${Oip.INPUT_NAME}'")
    if (params.has("shared_memory_region")) throw bad("shared memory inputs are not supported")
    val size = params["binary_data_size"]
    val rows = if (size != null) {
        binaryInput(obj, size, tail, count, dt, shapeValue)
    } else {
        if (tail.isNotEmpty()) throw bad("the body has ${tail.size} bytes after the JSON but no input has 'binary_data_size'")
        jsonInput(obj["data"], count, dt)
    }
    // One check after the cast: NaN and infinity stay so, and a value beyond
    // float32's range became infinite. (Integers are all within the range.)
    if (rows.isFloat) {
        for (v in rows.values) {
            if (v.isNaN() || v.isInfinite()) {
                if (!rows.finite) throw bad("input '${Oip.INPUT_NAME}' holds NaN or infinite values")
                throw bad("input '${Oip.INPUT_NAME}' holds values beyond float32's range (±3.4e38)")
            }
        }
    }
    val cols = shape[shape.size - 1].toInt()
    return cols to rows.values
}

/** A list of 1 or 2 Python ints >= 1. */
private fun shapeOf(v: Any?): List<BigInteger>? {
    if (v !is List<*> || v.size < 1 || v.size > 2) return null
    return v.map { e -> pyInt(e)?.takeIf { it.signum() >= 1 } ?: return null }
}

private fun binaryInput(tensor: JsonObject, size: Any?, tail: ByteArray, count: BigInteger, dt: InputType, shape: Any?): Rows {
    val n = pyInt(size)
    if (n == null || n.signum() < 0) throw bad("'binary_data_size' must be a non-negative integer, got ${reprCut(size, 40)}")
    if (tensor.has("data")) throw bad("input '${Oip.INPUT_NAME}' has both 'data' and 'binary_data_size'")
    if (n != bi(tail.size.toLong())) {
        throw bad("input '${Oip.INPUT_NAME}' declares binary_data_size $n but ${tail.size} bytes follow the JSON header")
    }
    val need = count.multiply(bi(dt.size.toLong()))
    if (need != n) {
        throw bad("input '${Oip.INPUT_NAME}' shape ${repr(shape)} ${dt.name} needs $need bytes, binary_data_size is $n")
    }
    val k = tail.size / dt.size
    val out = FloatArray(k)
    var finite = true
    val b = ByteBuffer.wrap(tail).order(ByteOrder.LITTLE_ENDIAN)
    for (i in 0 until k) {
        val at = i * dt.size
        val v: Float = when (dt.name) {
            "FP16" -> halfToFloat(b.getShort(at).toInt() and 0xffff)
            "FP32" -> b.getFloat(at)
            "FP64" -> {
                val f = b.getDouble(at)
                if (f.isNaN() || f.isInfinite()) finite = false
                f.toFloat()
            }
            "INT8" -> tail[at].toFloat()
            "INT16" -> b.getShort(at).toFloat()
            "INT32" -> b.getInt(at).toFloat()
            "INT64" -> b.getLong(at).toFloat()
            "UINT8" -> (tail[at].toInt() and 0xff).toFloat()
            "UINT16" -> (b.getShort(at).toInt() and 0xffff).toFloat()
            "UINT32" -> (b.getInt(at).toLong() and 0xffffffffL).toFloat()
            else -> { // UINT64
                val l = b.getLong(at)
                if (l >= 0) l.toFloat() else BigInteger.valueOf(l).add(BigInteger.ONE.shiftLeft(64)).toFloat()
            }
        }
        if (dt.name != "FP64" && (v.isNaN() || v.isInfinite())) finite = false
        out[i] = v
    }
    return Rows(out, dt.float, finite)
}

/** IEEE 754 binary16 to binary32 (exact). */
fun halfToFloat(h: Int): Float {
    val sign = (h shr 15) shl 31
    val exp = (h shr 10) and 0x1f
    val frac = h and 0x3ff
    return when {
        exp == 0x1f -> java.lang.Float.intBitsToFloat(sign or (0xff shl 23) or (frac shl 13))
        exp == 0 -> {
            if (frac == 0) java.lang.Float.intBitsToFloat(sign)
            else {
                val f = frac.toFloat() / (1 shl 24) // subnormal: frac × 2^-24
                if (sign != 0) -f else f
            }
        }
        else -> java.lang.Float.intBitsToFloat(sign or ((exp + 127 - 15) shl 23) or (frac shl 13))
    }
}

// numpy's dtype kinds of np.array(data) that matter here.
private const val KIND_BOOL = 'b'
private const val KIND_INT = 'i'
private const val KIND_UINT = 'u'
private const val KIND_FLOAT = 'f'
private const val KIND_OTHER = 'O'

/** numpy's NPY_MAXDIMS: np.array refuses deeper nesting. */
private const val MAX_DIMS = 64

private val MAX_INT64 = bi(Long.MAX_VALUE)

/** oip.py's _json_input: np.array(data) (its shape discovery and dtype), then the kind, size and range checks, then the cast. */
private fun jsonInput(data: Any?, count: BigInteger, dt: InputType): Rows {
    if (data !is List<*>) throw bad("input '${Oip.INPUT_NAME}' needs 'data' (a list) or 'binary_data_size'")
    val leaves = ArrayList<Any?>()
    if (shapeOfData(data, 1, leaves) == null) throw bad("input '${Oip.INPUT_NAME}' data must be numbers in lists of equal length")
    val arrayKind = if (leaves.isEmpty()) KIND_FLOAT else dtypeKind(leaves) // np.array([]) is float64
    val integer = !dt.float
    if (leaves.isNotEmpty()) {
        val allowed = arrayKind == KIND_INT || arrayKind == KIND_UINT || (!integer && arrayKind == KIND_FLOAT)
        if (!allowed) {
            throw bad("input '${Oip.INPUT_NAME}' data must be ${if (integer) "integers" else "numbers"} for datatype ${dt.name}")
        }
    }
    if (count != bi(leaves.size.toLong())) throw bad("input '${Oip.INPUT_NAME}' shape says $count values, data has ${leaves.size}")
    if (integer) {
        for (leaf in leaves) {
            val n = leafInt(leaf)
            if (n < dt.min!! || n > dt.max!!) throw bad("input '${Oip.INPUT_NAME}' data is out of range for ${dt.name}")
        }
    }
    val out = FloatArray(leaves.size)
    var finite = true
    for (i in leaves.indices) {
        val leaf = leaves[i]
        out[i] = when (arrayKind) {
            KIND_FLOAT -> {
                val f = leafFloat(leaf)
                if (f.isNaN() || f.isInfinite()) finite = false
                f.toFloat()
            }
            KIND_INT -> leafInt(leaf).toLong().toFloat()
            else -> leafInt(leaf).toFloat() // uint64 beyond int64: BigInteger's float is correctly rounded
        }
    }
    return Rows(out, arrayKind == KIND_FLOAT, finite)
}

/** np.array's shape of nested lists, collecting the leaves in row-major order; null when numpy refuses. */
private fun shapeOfData(list: List<*>, depth: Int, leaves: MutableList<Any?>): List<Int>? {
    if (depth > MAX_DIMS) return null
    if (list.isEmpty()) return listOf(0)
    val firstIsList = list[0] is List<*>
    var inner: List<Int>? = null
    for ((i, e) in list.withIndex()) {
        val isList = e is List<*>
        if (isList != firstIsList) return null
        if (!isList) {
            leaves.add(e)
            continue
        }
        val s = shapeOfData(e as List<*>, depth + 1, leaves) ?: return null
        if (i == 0) inner = s else if (s != inner) return null
    }
    return listOf(list.size) + (inner ?: emptyList())
}

/**
 * The kind of np.array's dtype for these scalars: bools alone are bool; an
 * int is int64, or uint64 beyond int64, and the two together promote to
 * float64 (bools join either); any float makes float64; anything else is
 * not a number.
 */
private fun dtypeKind(leaves: List<Any?>): Char {
    var allBool = true
    var anyFloat = false
    var anyInt64 = false
    var anyBig = false
    for (leaf in leaves) {
        when (leaf) {
            is Boolean -> {}
            is JsonNumber -> {
                allBool = false
                val i = pyIntOfNumber(leaf)
                when {
                    i == null -> anyFloat = true
                    i > MAX_INT64 -> anyBig = true
                    else -> anyInt64 = true
                }
            }
            else -> return KIND_OTHER
        }
    }
    return when {
        allBool -> KIND_BOOL
        anyFloat || (anyBig && anyInt64) -> KIND_FLOAT
        anyBig -> KIND_UINT
        else -> KIND_INT
    }
}

private fun leafInt(leaf: Any?): BigInteger = when (leaf) {
    is Boolean -> if (leaf) BigInteger.ONE else BigInteger.ZERO
    is JsonNumber -> pyIntOfNumber(leaf) ?: BigInteger.ZERO
    else -> BigInteger.ZERO
}

private fun leafFloat(leaf: Any?): Double = when (leaf) {
    is Boolean -> if (leaf) 1.0 else 0.0
    is JsonNumber -> pyIntOfNumber(leaf)?.toDouble() ?: leaf.toDouble() // correctly rounded, as Python's int -> float
    else -> 0.0
}

private fun requestedOutputs(outputs: Any?, binaryDefault: Boolean): List<RequestedOutput> {
    if (outputs == null) return emptyList()
    if (outputs !is List<*>) throw bad("'outputs' must be a list, got ${kind(outputs)}")
    val chosen = ArrayList<RequestedOutput>()
    for (out in outputs) {
        val obj = out as? JsonObject ?: throw bad("each requested output must be an object, got ${kind(out)}")
        val nameValue = obj["name"]
        if (nameValue !is String || nameValue !in Oip.OUTPUT_NAMES) {
            throw bad("unknown output ${reprCut(nameValue, 80)}; outputs are ${Oip.OUTPUT_NAMES.joinToString(", ")}")
        }
        if (chosen.any { it.name == nameValue }) throw bad("output '$nameValue' is requested twice")
        val params = parameters(obj, "output '$nameValue'")
        if (params.has("classification")) throw bad("the classification extension is not supported")
        if (params.has("shared_memory_region")) throw bad("shared memory outputs are not supported")
        var binary = binaryDefault
        if (params.has("binary_data")) {
            binary = params["binary_data"] as? Boolean ?: throw bad("output '$nameValue' parameter 'binary_data' must be true or false")
        }
        chosen.add(RequestedOutput(nameValue, binary))
    }
    return chosen
}

// Python's view of a decoded JSON value (what orjson.loads returns), for
// error messages that quote what the client sent as oip.py does.

/**
 * A JSON number as orjson reads it: an int (returned) when the literal has no
 * fraction or exponent and fits in 64 bits (signed, or unsigned when not
 * negative), else a float (null).
 */
internal fun pyIntOfNumber(n: JsonNumber): BigInteger? = if (n.isInteger) BigInteger(n.literal) else null

/** v if it is a Python int (not a bool). */
internal fun pyInt(v: Any?): BigInteger? = when (v) {
    is JsonNumber -> pyIntOfNumber(v)
    is Int -> bi(v.toLong())
    is Long -> bi(v)
    else -> null
}

/** oip.py's _kind: how a message names what was sent instead. */
internal fun kind(v: Any?): String = when (v) {
    null -> "nothing"
    is JsonObject -> "an object"
    is List<*> -> "a list"
    is String -> "a string"
    is Boolean -> "a boolean"
    is JsonNumber, is Number -> "a number"
    else -> v.javaClass.simpleName
}

/** Python's repr() of a decoded JSON value. */
internal fun repr(v: Any?): String = when (v) {
    null -> "None"
    is Boolean -> if (v) "True" else "False"
    is String -> Pyfmt.strRepr(v)
    is JsonNumber -> pyIntOfNumber(v)?.toString() ?: Pyfmt.floatRepr(v.toDouble())
    is List<*> -> v.joinToString(", ", "[", "]") { repr(it) }
    is JsonObject -> v.entries.joinToString(", ", "{", "}") { Pyfmt.strRepr(it.first) + ": " + repr(it.second) }
    else -> v.toString()
}

/** f"{v!r:.n}": the repr cut to n characters. */
internal fun reprCut(v: Any?, n: Int): String = cut(repr(v), n)

/** The first n code points of s (Python slices by code point, not UTF-16 unit). */
internal fun cut(s: String, n: Int): String {
    if (s.codePointCount(0, s.length) <= n) return s
    return s.substring(0, s.offsetByCodePoints(0, n))
}
