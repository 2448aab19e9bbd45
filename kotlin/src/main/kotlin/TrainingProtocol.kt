// SUB_TRAIN jobs and SUB_TRAIN_RESULT results (go/training/protocol.go,
// zmqnode/training/protocol.py; docs/PROTOCOL.md §9): encoded byte for byte
// as Python encodes them, decoded with its checks, codes and messages.
package zmqnode.training

import zmqnode.pyfmt.Pyfmt
import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.DecodeOptions
import zmqnode.wire.JsonObject
import zmqnode.wire.NdArray
import zmqnode.wire.ProtocolError
import zmqnode.wire.Wire
import java.nio.ByteBuffer
import java.nio.ByteOrder

const val SUB_TRAIN_TYPE = "SUB_TRAIN"
const val RESULT_TYPE = "SUB_TRAIN_RESULT"
/** Bounds one array of a job or result (protocol.MAX_TRAINING_ARRAY_BYTES). */
const val MAX_TRAINING_ARRAY_BYTES = 4L shl 30
/** The trainer's PULL is at P+3000, the leader's results PULL at P+4000 (PROTOCOL.md §1). */
const val TrainingOffset = 3000
const val ResultsOffset = 4000

/**
 * An array as it travels: numpy dtype name ("float32", "float64", "int32",
 * "int64"), shape, and the little-endian bytes (shared, not copied).
 */
class TrainArray(val dtype: String, val shape: List<Int>, val data: ByteArray) {
    /** np.asarray(a, dtype=np.float32): float64 rounded to nearest, integers converted (numpy's astype). */
    fun toFloat32(): FloatArray {
        val b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)
        return when (dtype) {
            "float32" -> FloatArray(data.size / 4) { b.getFloat(it * 4) }
            "float64" -> FloatArray(data.size / 8) { b.getDouble(it * 8).toFloat() }
            "int32" -> FloatArray(data.size / 4) { b.getInt(it * 4).toFloat() }
            "int64" -> FloatArray(data.size / 8) { b.getLong(it * 8).toFloat() }
            else -> throw zmqnode.ml.BadInputException("unsupported dtype $dtype")
        }
    }

    /** The values of an int32/int64 array. */
    fun toLongs(): LongArray {
        val b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)
        return when (dtype) {
            "int32" -> LongArray(data.size / 4) { b.getInt(it * 4).toLong() }
            "int64" -> LongArray(data.size / 8) { b.getLong(it * 8) }
            else -> throw zmqnode.ml.BadInputException("unsupported dtype $dtype")
        }
    }

    /** The values of a float32/float64 array, widened exactly to double. */
    fun toDoubles(): DoubleArray {
        val b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)
        return when (dtype) {
            "float32" -> DoubleArray(data.size / 4) { b.getFloat(it * 4).toDouble() }
            "float64" -> DoubleArray(data.size / 8) { b.getDouble(it * 8) }
            else -> throw zmqnode.ml.BadInputException("unsupported dtype $dtype")
        }
    }

    /** The array descriptor {"dtype", "shape", "frame"} (wire.array_to_frame). */
    fun descriptor(frame: Int): JsonObject =
        JsonObject("dtype" to dtype, "shape" to shape.map { it.toLong() }, "frame" to frame.toLong())

    companion object {
        val ITEM_SIZES = linkedMapOf("float32" to 4, "float64" to 8, "int32" to 4, "int64" to 8)

        fun ofFloat32(shape: List<Int>, values: FloatArray): TrainArray {
            val b = ByteBuffer.allocate(values.size * 4).order(ByteOrder.LITTLE_ENDIAN)
            b.asFloatBuffer().put(values)
            return TrainArray("float32", shape, b.array())
        }
    }
}

/**
 * One SUB_TRAIN: train chunk [chunk] of job [jobId] for round [round] from
 * [params], answering to [replyTo]. [x] and [y] are null when the trainer
 * is expected to have the chunk's rows cached. Arrays keep their wire dtype,
 * so a decoded job re-encodes to the same bytes.
 */
class Job(
    val jobId: String,
    val round: Int,
    val chunk: Int,
    val replyTo: String,
    val options: JsonObject,
    val params: TrainArray,
    val x: TrainArray? = null,
    val y: TrainArray? = null
) {
    /** The informative header id, "<job>/<round>/<chunk>". */
    val id: String get() = "$jobId/$round/$chunk"
}

/** One SUB_TRAIN_RESULT: the trained parameters, or why there are none (error, missingData). */
class Result(
    val jobId: String,
    val round: Int,
    val chunk: Int,
    val trainer: String,
    val nSamples: Int = 0,
    val loss: Double = 0.0,
    val params: TrainArray? = null,
    val error: String = "",
    val missingData: Boolean = false
) {
    fun copy(jobId: String = this.jobId, round: Int = this.round, chunk: Int = this.chunk) =
        Result(jobId, round, chunk, trainer, nSamples, loss, params, error, missingData)
}

/** protocol.encode_job: the header's keys in Python's order, then params [, x, y] as frames 0.. in that order. */
fun encodeJob(j: Job): List<ByteArray> {
    val h = JsonObject(
        "type" to SUB_TRAIN_TYPE,
        "id" to j.id,
        "job" to j.jobId,
        "round" to j.round.toLong(),
        "chunk" to j.chunk.toLong(),
        "reply_to" to j.replyTo,
        "options" to j.options
    )
    val blobs = ArrayList<ByteArray>()
    for ((key, a) in listOf("params" to j.params, "x" to j.x, "y" to j.y)) {
        if (a == null) continue
        h[key] = a.descriptor(blobs.size)
        blobs.add(a.data)
    }
    return TrainingWire.encode(h, blobs)
}

/** protocol.decode_job, with its checks, codes and messages (TrainingRefused). */
fun decodeJob(frames: List<ByteArray>): Job {
    val (h, blobs) = TrainingWire.decode(frames)
    val t = h["type"] as? String ?: ""
    if (t != SUB_TRAIN_TYPE) throw TrainingRefused("UNKNOWN_TYPE", "expected $SUB_TRAIN_TYPE, got ${Pyfmt.strRepr(t)}")
    val arrays = HashMap<String, TrainArray>()
    for (key in listOf("params", "x", "y")) {
        if (!h.has(key)) continue
        arrays[key] = TrainingWire.readArray(h, blobs, key, MAX_TRAINING_ARRAY_BYTES)
    }
    val params = arrays["params"] ?: throw TrainingRefused("BAD_REQUEST", "SUB_TRAIN without params")
    val jobId = headerStr(h, "job")
    val round = headerInt(h, "round")
    val chunk = headerInt(h, "chunk")
    val replyTo = headerStr(h, "reply_to")
    val options = h["options"] as? JsonObject ?: JsonObject()
    return Job(jobId, round, chunk, replyTo, options, params, arrays["x"], arrays["y"])
}

/** protocol.encode_result. */
fun encodeResult(r: Result): List<ByteArray> {
    val h = JsonObject(
        "type" to RESULT_TYPE,
        "id" to "${r.jobId}/${r.round}/${r.chunk}",
        "job" to r.jobId,
        "round" to r.round.toLong(),
        "chunk" to r.chunk.toLong(),
        "trainer" to r.trainer,
        "n_samples" to r.nSamples.toLong(),
        "loss" to r.loss,
        "error" to r.error,
        "missing_data" to r.missingData
    )
    val blobs = ArrayList<ByteArray>()
    val p = r.params
    if (p != null) {
        h["params"] = p.descriptor(0)
        blobs.add(p.data)
    }
    return TrainingWire.encode(h, blobs)
}

/** protocol.decode_result, with its checks, codes and messages (TrainingRefused). */
fun decodeResult(frames: List<ByteArray>): Result {
    val (h, blobs) = TrainingWire.decode(frames)
    val t = h["type"] as? String ?: ""
    if (t != RESULT_TYPE) throw TrainingRefused("UNKNOWN_TYPE", "expected $RESULT_TYPE, got ${Pyfmt.strRepr(t)}")
    val params = if (h.has("params")) TrainingWire.readArray(h, blobs, "params", MAX_TRAINING_ARRAY_BYTES) else null
    var loss = 0.0
    if (h.has("loss")) {
        val v = h["loss"]
        loss = when (v) {
            is Boolean -> if (v) 1.0 else 0.0 // Python: isinstance(True, int)
            is JsonNumber -> v.toDouble()
            is Number -> v.toDouble()
            else -> throw TrainingRefused("BAD_REQUEST", "'loss' must be a number")
        }
    }
    val error = pyStrOrEmpty(h["error"])
    val missingData = truthy(h["missing_data"])
    if (params == null && error == "" && !missingData) {
        throw TrainingRefused("BAD_REQUEST", "a result needs params, an error or missing_data")
    }
    return Result(
        jobId = headerStr(h, "job"),
        round = headerInt(h, "round"),
        chunk = headerInt(h, "chunk"),
        trainer = headerStr(h, "trainer"),
        nSamples = headerInt(h, "n_samples"),
        loss = loss,
        params = params,
        error = error,
        missingData = missingData
    )
}

internal fun headerStr(h: JsonObject, key: String): String =
    h[key] as? String ?: throw TrainingRefused("BAD_REQUEST", "field '$key' must be a string")

internal fun headerInt(h: JsonObject, key: String): Int {
    val n = Json.intValue(h[key])
    if (n == null || n < 0 || n > Int.MAX_VALUE) {
        throw TrainingRefused("BAD_REQUEST", "field '$key' must be a non-negative integer")
    }
    return n.toInt()
}

/** The request id (header "id"), "" when absent. */
internal fun headerId(h: JsonObject): String = h["id"] as? String ?: ""

/** Python's bool() of a decoded JSON value. */
fun truthy(v: Any?): Boolean = when (v) {
    null -> false
    is Boolean -> v
    is String -> v != ""
    is JsonNumber -> try { v.toDouble() != 0.0 } catch (e: NumberFormatException) { true }
    is Number -> v.toDouble() != 0.0
    is List<*> -> v.isNotEmpty()
    is JsonObject -> v.size > 0
    is Map<*, *> -> v.isNotEmpty()
    else -> true
}

/** str(header.get("error") or ""): a non-string error is written as JSON (Python would print its repr). */
internal fun pyStrOrEmpty(v: Any?): String {
    if (!truthy(v)) return ""
    if (v is String) return v
    return try { String(Json.encode(v), Charsets.UTF_8) } catch (e: Exception) { v.toString() }
}

/** Python's repr() of a decoded JSON value, for messages quoting it ([4, 2], 'float16', None). */
internal fun pyValueRepr(v: Any?): String = when (v) {
    null -> "None"
    true -> "True"
    false -> "False"
    is String -> Pyfmt.strRepr(v)
    is JsonNumber -> v.literal
    is Double -> Pyfmt.floatRepr(v)
    is Number -> v.toString()
    is List<*> -> v.joinToString(", ", "[", "]") { pyValueRepr(it) }
    is JsonObject -> v.entries.joinToString(", ", "{", "}") { Pyfmt.strRepr(it.first) + ": " + pyValueRepr(it.second) }
    else -> v.toString()
}

/** The trainer's reply_to check (trainer._ENDPOINT): tcp:// then a host name, IPv4 or bracketed IPv6 address, then a port. */
private val endpointRE = Regex("tcp://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\\[[0-9A-Fa-f:.]{2,45}\\]):([0-9]{1,5})")

/** trainer.valid_endpoint: whether text is a tcp://host:port a trainer may connect to. */
fun validEndpoint(text: String): Boolean {
    val m = endpointRE.matchEntire(text) ?: return false
    val port = m.groupValues[1].toInt()
    return port in 1..65535
}

/** addresses.tcp_endpoint: "tcp://host:port", an IPv6 host bracketed. */
fun tcpEndpoint(host: String, port: Int): String = "tcp://" + formatAddress(host, port)

/** "host:port", an IPv6 host bracketed. */
fun formatAddress(host: String, port: Int): String = if (host.contains(':')) "[$host]:$port" else "$host:$port"

/** "host:port" or "[v6]:port" -> (host, port), null if it does not parse. */
fun parseAddress(text: String): Pair<String, Int>? {
    val colon = text.lastIndexOf(':')
    if (colon <= 0) return null
    var host = text.substring(0, colon)
    val port = text.substring(colon + 1).toIntOrNull() ?: return null
    if (port !in 0..65535 || text.substring(colon + 1).any { it !in '0'..'9' }) return null
    if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length - 1)
    else if (host.contains(':')) return null
    if (host.isEmpty()) return null
    return Pair(host, port)
}

/**
 * The envelope and arrays of zmqnode/transport/wire.py as this package
 * needs them: zmqnode.wire's Wire.encode/decode and NdArray.read, with a
 * ProtocolError turned into a TrainingRefused (same code and message).
 */
object TrainingWire {
    /** The frames of one body: the JSON header ("v" first when absent), then the blobs. */
    fun encode(header: JsonObject, blobs: List<ByteArray>): List<ByteArray> = Wire.encode(header, blobs)

    /** wire.decode: the header and blobs, or TrainingRefused with Python's code and message (§2.1). */
    fun decode(frames: List<ByteArray>, allowEmptyId: Boolean = false): Pair<JsonObject, List<ByteArray>> {
        val d = refused { Wire.decode(frames, DecodeOptions(allowEmptyId = allowEmptyId)) }
        return Pair(d.header, d.blobs)
    }

    /** wire.read_array: the array described by header[key] (its frame indexes blobs). */
    fun readArray(header: JsonObject, blobs: List<ByteArray>, key: String, maxBytes: Long): TrainArray {
        val a = refused { NdArray.read(header, blobs, key, maxBytes) }
        if (a.shape.any { it > Int.MAX_VALUE }) { // only beside a 0 dimension; an Int cannot hold it
            throw TrainingRefused("BAD_SHAPE", "array '$key' shape must be a list of at most 8 non-negative integers, " +
                "got ${pyValueRepr(a.shape.toList())}")
        }
        return TrainArray(a.dtype.wireName, a.shape.map { it.toInt() }, a.data)
    }

    private inline fun <T> refused(block: () -> T): T = try {
        block()
    } catch (e: ProtocolError) {
        throw TrainingRefused(e.code.code, e.reason)
    }
}
