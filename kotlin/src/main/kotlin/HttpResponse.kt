// The answers of the Open Inference Protocol: infer responses from a
// PREDICT reply, model and server metadata, error bodies and statuses
// (zmqnode/oip.py; a port of go/httpinfer/response.go).
package zmqnode.httpinfer

import java.io.ByteArrayOutputStream
import java.math.BigInteger
import java.nio.ByteBuffer
import java.nio.ByteOrder
import zmqnode.pyfmt.Pyfmt
import zmqnode.wire.Dtype
import zmqnode.wire.Json
import zmqnode.wire.JsonException
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject
import zmqnode.wire.NdArray
import zmqnode.wire.ProtocolError

/** An HTTP answer's headers and body. */
class HttpParts(val headers: List<Pair<String, String>>, val body: ByteArray)

/** Bounds what a node's own PREDICT reply may hold here. */
private const val MAX_REPLY_ARRAY_BYTES = 1L shl 40

/** numpy's astype(float32) of any reply array. */
private fun NdArray.toFloat32(): FloatArray = convertToFloat32() ?: float32s()

/** One output to send: name, v2 datatype, shape and its elements (one list, by datatype). */
private class Tensor(val name: String, val datatype: String, val shape: List<Long>) {
    var strs: List<String> = emptyList()
    var bools: List<Boolean> = emptyList()
    var ints: LongArray = LongArray(0)
    var f64: DoubleArray = DoubleArray(0)
    var f32: FloatArray = FloatArray(0)
}

private fun unexpected(call: InferCall, what: String) =
    OipError(500, "model ${call.modelId}: unexpected PREDICT reply: $what")

/**
 * The HTTP headers and body for a PREDICT OK reply (fields and blobs as the
 * node's PREDICT answer carries them, decoded: outputs, classes,
 * probabilities). Only the requested outputs are sent (all the model has
 * when none were listed); class indices become the labels. headers holds
 * Content-Type and, when an output is binary, Inference-Header-Content-Length.
 * OipError 400: an output the model does not have was asked for; 500: a
 * reply PREDICT does not send (a bug).
 */
fun inferResponse(call: InferCall, modelId: String, fields: JsonObject, blobs: List<ByteArray>): HttpParts {
    val tensors = replyTensors(call, fields, blobs)
    val head = StringBuilder()
    val parts = ArrayList<ByteArray>()
    head.append("{\"model_name\":").append(jsonString(modelId))
    if (call.requestId != null) head.append(",\"id\":").append(jsonString(call.requestId))
    head.append(",\"outputs\":[")
    for ((i, t) in tensors.withIndex()) {
        if (i > 0) head.append(',')
        head.append("{\"name\":").append(jsonString(t.name))
        head.append(",\"datatype\":\"").append(t.datatype).append("\",\"shape\":[").append(t.shape.joinToString(",")).append(']')
        if (isBinary(call, t.name)) {
            val raw = tensorBytes(t)
            head.append(",\"parameters\":{\"binary_data_size\":").append(raw.size).append("}}")
            parts.add(raw)
        } else {
            head.append(",\"data\":")
            writeTensorJson(head, t)
            head.append('}')
        }
    }
    head.append("]}")
    val headBytes = head.toString().toByteArray(Charsets.UTF_8)
    if (parts.isEmpty()) return HttpParts(listOf("Content-Type" to "application/json"), headBytes)
    val out = ByteArrayOutputStream(headBytes.size + parts.sumBy { it.size })
    out.write(headBytes)
    for (p in parts) out.write(p)
    return HttpParts(listOf("Content-Type" to "application/octet-stream", Oip.HEADER_LENGTH to headBytes.size.toString()), out.toByteArray())
}

private fun isBinary(call: InferCall, name: String): Boolean =
    call.outputs.firstOrNull { it.name == name }?.binary ?: call.binaryOutput

/** The outputs to send, in order. */
private fun replyTensors(call: InferCall, fields: JsonObject, blobs: List<ByteArray>): List<Tensor> {
    val values = try {
        NdArray.read(fields, blobs, "outputs", MAX_REPLY_ARRAY_BYTES)
    } catch (e: ProtocolError) {
        throw unexpected(call, e.message ?: "")
    }
    val available = LinkedHashMap<String, Tensor>()
    val classesValue = fields["classes"]
    val hasClasses = classesValue != null
    if (!hasClasses) {
        val t = Tensor(Oip.VALUES, "FP32", values.shape.toList())
        t.f32 = values.toFloat32()
        available[Oip.VALUES] = t
    } else {
        available[Oip.LABEL] = try {
            labels(classesValue, values)
        } catch (e: IllegalArgumentException) {
            throw unexpected(call, e.message ?: "")
        }
        if (fields.has("probabilities")) {
            val proba = try {
                NdArray.read(fields, blobs, "probabilities", MAX_REPLY_ARRAY_BYTES)
            } catch (e: ProtocolError) {
                throw unexpected(call, e.message ?: "")
            }
            val p = Tensor(Oip.PROBABILITIES, "FP32", proba.shape.toList())
            p.f32 = proba.toFloat32()
            available[Oip.PROBABILITIES] = p
        }
    }
    if (call.outputs.isEmpty()) return Oip.OUTPUT_NAMES.mapNotNull { available[it] }
    return call.outputs.map { o ->
        available[o.name] ?: run {
            val task = if (hasClasses) "classification" else "regression"
            if (o.name == Oip.PROBABILITIES && hasClasses) throw OipError(500, "model ${call.modelId}: PREDICT sent no probabilities")
            val have = Oip.OUTPUT_NAMES.filter { available.containsKey(it) }
            throw bad("model ${call.modelId} ($task) has no output '${o.name}'; its outputs: ${have.joinToString(", ")}")
        }
    }
}

/** One class label as Python sees it: 's' str, 'b' bool, 'i' int, 'f' float. */
private class PyClass(val kind: Char, val s: String = "", val b: Boolean = false, val i: BigInteger = BigInteger.ZERO, val f: Double = 0.0)

private fun classList(v: Any?): List<PyClass> {
    val items = v as? List<*> ?: throw IllegalArgumentException("'classes' must be a non-empty list, got ${kind(v)}")
    return items.map { classOf(it) }
}

private fun classOf(v: Any?): PyClass = when (v) {
    is String -> PyClass('s', s = v)
    is Boolean -> PyClass('b', b = v)
    is Int, is Long -> PyClass('i', i = BigInteger.valueOf((v as Number).toLong()), f = v.toDouble())
    is Double -> PyClass('f', f = v)
    is JsonNumber -> {
        val i = pyIntOfNumber(v)
        if (i == null) PyClass('f', f = v.toDouble()) else PyClass('i', i = i, f = i.toDouble())
    }
    else -> throw IllegalArgumentException("classes must be all strings or all numbers, got ${kind(v)}")
}

/** The label output's datatype: BYTES for strings, BOOL for booleans, INT64 for integers, FP64 for other numbers. */
private fun labelDatatype(classes: List<PyClass>): String = when {
    classes.all { it.kind == 's' } -> "BYTES"
    classes.all { it.kind == 'b' } -> "BOOL"
    classes.all { it.kind == 'i' } -> "INT64"
    classes.all { it.kind == 'i' || it.kind == 'f' } -> "FP64"
    else -> throw IllegalArgumentException("classes must be all strings or all numbers")
}

private val MIN_I64 = BigInteger.valueOf(Long.MIN_VALUE)
private val MAX_I64 = BigInteger.valueOf(Long.MAX_VALUE)

/** Maps class indices to the model's class labels (oip.py's _labels). */
private fun labels(classesValue: Any?, index: NdArray): Tensor {
    val classes = classList(classesValue)
    if (classes.isEmpty()) throw IllegalArgumentException("'classes' must be a non-empty list")
    if (index.shape.size != 1 || (index.dtype != Dtype.INT32 && index.dtype != Dtype.INT64)) {
        throw IllegalArgumentException("class indices must be integers [rows], got ${index.dtype} ${index.shape.toList()}")
    }
    val idx = if (index.dtype == Dtype.INT64) index.int64s() else index.int32s().let { v -> LongArray(v.size) { v[it].toLong() } }
    val datatype = labelDatatype(classes)
    if (datatype == "INT64") {
        for (c in classes) if (c.i < MIN_I64 || c.i > MAX_I64) throw IllegalArgumentException("class ${c.i} does not fit int64")
    }
    for (i in idx) if (i < 0 || i >= classes.size) throw IllegalArgumentException("a class index is outside 0..${classes.size - 1}")
    val t = Tensor(Oip.LABEL, datatype, listOf(idx.size.toLong()))
    when (datatype) {
        "BYTES" -> t.strs = idx.map { classes[it.toInt()].s }
        "BOOL" -> t.bools = idx.map { classes[it.toInt()].b }
        "INT64" -> t.ints = LongArray(idx.size) { classes[idx[it].toInt()].i.toLong() }
        "FP64" -> t.f64 = DoubleArray(idx.size) { classes[idx[it].toInt()].f }
    }
    return t
}

/** A tensor's elements, flat, as orjson writes the numpy array (shortest float32/float64 forms, NaN and ±Inf as null). */
private fun writeTensorJson(b: StringBuilder, t: Tensor) {
    b.append('[')
    when (t.datatype) {
        "BYTES" -> t.strs.joinTo(b, ",") { jsonString(it) }
        "BOOL" -> t.bools.joinTo(b, ",") { if (it) "true" else "false" }
        "INT64" -> t.ints.joinTo(b, ",")
        "FP64" -> t.f64.joinTo(b, ",") { Pyfmt.orjsonFloat(it) }
        "FP32" -> t.f32.joinTo(b, ",") { Pyfmt.orjsonFloat32(it) }
    }
    b.append(']')
}

/** Binary tensor data: little-endian, row-major; BYTES as a 4-byte length then the UTF-8 bytes; BOOL one byte each. */
private fun tensorBytes(t: Tensor): ByteArray {
    when (t.datatype) {
        "BYTES" -> {
            val out = ByteArrayOutputStream()
            val len = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
            for (s in t.strs) {
                val u = s.toByteArray(Charsets.UTF_8)
                len.clear()
                len.putInt(u.size)
                out.write(len.array())
                out.write(u)
            }
            return out.toByteArray()
        }
        "BOOL" -> return ByteArray(t.bools.size) { if (t.bools[it]) 1 else 0 }
    }
    val n = when (t.datatype) { "INT64" -> t.ints.size * 8; "FP64" -> t.f64.size * 8; else -> t.f32.size * 4 }
    val b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN)
    when (t.datatype) {
        "INT64" -> t.ints.forEach { b.putLong(it) }
        "FP64" -> t.f64.forEach { b.putDouble(it) }
        else -> t.f32.forEach { b.putFloat(it) }
    }
    return b.array()
}

/** A string as orjson writes it (a lone surrogate, which orjson refuses, becomes U+FFFD). */
internal fun jsonString(s: String): String = try {
    Json.encodeToString(s)
} catch (e: JsonException) {
    val b = StringBuilder()
    var i = 0
    while (i < s.length) {
        val c = s[i]
        if (Character.isHighSurrogate(c) && i + 1 < s.length && Character.isLowSurrogate(s[i + 1])) {
            b.append(c).append(s[i + 1])
            i += 2
            continue
        }
        b.append(if (Character.isSurrogate(c)) '\ufffd' else c)
        i++
    }
    Json.encodeToString(b.toString())
}

/**
 * GET /v2/models/{id}: name, versions (none: a new model is a new id),
 * platform, and the input and output tensors with -1 for the batch
 * dimension; listing is the model's LIST/INFO entry (PROTOCOL.md §5.4).
 * IllegalArgumentException: a listing INFO does not send (a 500).
 */
fun modelMetadata(modelId: String, listing: JsonObject): ByteArray {
    val inputs = listingInt(listing, "inputs") ?: throw IllegalArgumentException("model listing without 'inputs'")
    val task = listing["task"] as? String ?: ""
    val classesValue = listing["classes"]
    val classes = if (classesValue != null) classList(classesValue) else emptyList()
    val outList = ArrayList<JsonObject>()
    if (task == "regression" || classes.isEmpty()) {
        var k = 1L
        if (listing.has("outputs")) k = listingInt(listing, "outputs") ?: throw IllegalArgumentException("model listing 'outputs' is not an integer")
        val shape = if (k != 1L) listOf(-1L, k) else listOf(-1L)
        outList.add(JsonObject("name" to Oip.VALUES, "datatype" to "FP32", "shape" to shape))
    } else {
        outList.add(JsonObject("name" to Oip.LABEL, "datatype" to labelDatatype(classes), "shape" to listOf(-1L)))
        outList.add(JsonObject("name" to Oip.PROBABILITIES, "datatype" to "FP32", "shape" to listOf(-1L, classes.size.toLong())))
    }
    return Json.encode(JsonObject(
        "name" to modelId,
        "versions" to emptyList<Any?>(),
        "platform" to Oip.PLATFORM,
        "inputs" to listOf(JsonObject("name" to Oip.INPUT_NAME, "datatype" to "FP32", "shape" to listOf(-1L, inputs))),
        "outputs" to outList))
}

/** Python's int() of a listing's number; null when it has none. */
private fun listingInt(listing: JsonObject, key: String): Long? {
    val v = listing[key]
    val f: Double = when (v) {
        is JsonNumber -> {
            val i = pyIntOfNumber(v)
            if (i != null) return if (i.bitLength() <= 63) i.toLong() else null
            v.toDouble()
        }
        is Int -> return v.toLong()
        is Long -> return v
        is Double -> v
        else -> return null
    }
    if (f.isNaN() || f.isInfinite() || Math.abs(f) > 4.611686018427388E18) return null
    return f.toLong()
}

/** GET /v2: the server's name, version and extensions. */
fun serverMetadata(version: String): ByteArray =
    Json.encode(JsonObject("name" to Oip.SERVER_NAME, "version" to version, "extensions" to Oip.EXTENSIONS))

/**
 * The HTTP status of a PREDICT/INFO error code: 500 for INTERNAL and any
 * code an infer cannot legitimately cause. BUSY is 503, not 429: the node's
 * admission bound, not one user's rate (oip.py).
 */
fun errorStatus(code: String): Int = when (code) {
    "MALFORMED", "BAD_REQUEST", "BAD_SHAPE", "BAD_INPUT" -> 400
    "NOT_FOUND" -> 404
    "TOO_LARGE" -> 413
    "BUSY", "UNAVAILABLE", "NOT_LEADER" -> 503
    "TIMEOUT" -> 504
    else -> 500
}

/** The spec's error response body: {"error": message}. */
fun errorBody(message: String): ByteArray = ("{\"error\":" + jsonString(message) + "}").toByteArray(Charsets.UTF_8)
