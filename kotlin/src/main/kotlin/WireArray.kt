// Typed arrays in blobs (docs/PROTOCOL.md §3; a port of go/wire/array.go):
// a header descriptor {"dtype": ..., "shape": [...], "frame": i} and the
// raw C-order little-endian bytes as blob i. The JVM is big-endian by
// default: every ByteBuffer here is set to LITTLE_ENDIAN.
package zmqnode.wire

import java.math.BigInteger
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.FloatBuffer

/** An array's element type, by its numpy name; always little-endian. */
enum class Dtype(val wireName: String, val itemSize: Int) {
    FLOAT32("float32", 4),
    FLOAT64("float64", 8),
    INT32("int32", 4),
    INT64("int64", 8);

    override fun toString(): String = wireName

    companion object {
        /** The dtype named [name] on the wire ("float32"...), or null for one not allowed ("<f4", "float16"). */
        fun of(name: String?): Dtype? = values().firstOrNull { it.wireName == name }
    }
}

/**
 * A C-order array as it travels: dtype, shape and the raw little-endian
 * bytes (data.size == product(shape) × itemSize). [data] may alias a
 * received frame: do not write to it.
 */
class NdArray(val dtype: Dtype, val shape: LongArray, val data: ByteArray) {
    /** The number of elements (product of the shape; 1 for a 0-d array). */
    val size: Int get() = data.size / dtype.itemSize

    /** The header object describing this array as blob number [frame]. */
    fun descriptor(frame: Int): JsonObject =
        JsonObject("dtype" to dtype.wireName, "shape" to shape.toList(), "frame" to frame)

    /** The descriptor and blob (Python's array_to_frame). */
    fun toFrame(frame: Int): Pair<JsonObject, ByteArray> = Pair(descriptor(frame), data)

    private fun want(d: Dtype) {
        require(dtype == d) { "wire: array is $dtype, not $d" }
    }

    private fun le(): ByteBuffer = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)

    /** The elements of a float32 array (a copy); IllegalArgumentException for another dtype. */
    fun float32s(): FloatArray {
        want(Dtype.FLOAT32)
        val out = FloatArray(data.size / 4)
        le().asFloatBuffer().get(out)
        return out
    }

    /** A read-only view of a float32 array's data, without a copy (numpy's frombuffer). */
    fun float32View(): FloatBuffer {
        want(Dtype.FLOAT32)
        return le().asFloatBuffer().asReadOnlyBuffer()
    }

    /** The elements of a float64 array. */
    fun float64s(): DoubleArray {
        want(Dtype.FLOAT64)
        val out = DoubleArray(data.size / 8)
        le().asDoubleBuffer().get(out)
        return out
    }

    /** The elements of an int32 array. */
    fun int32s(): IntArray {
        want(Dtype.INT32)
        val out = IntArray(data.size / 4)
        le().asIntBuffer().get(out)
        return out
    }

    /** The elements of an int64 array. */
    fun int64s(): LongArray {
        want(Dtype.INT64)
        val out = LongArray(data.size / 8)
        le().asLongBuffer().get(out)
        return out
    }

    /**
     * numpy's astype(float32) of a float64, int32 or int64 array (round to
     * nearest, as the JVM's d2f/l2f/i2f), into a new array; null for any
     * other dtype, float32 included: the caller uses float32s for that one.
     */
    fun convertToFloat32(): FloatArray? = when (dtype) {
        Dtype.FLOAT64 -> float64s().let { v -> FloatArray(v.size) { v[it].toFloat() } }
        Dtype.INT32 -> int32s().let { v -> FloatArray(v.size) { v[it].toFloat() } }
        Dtype.INT64 -> int64s().let { v -> FloatArray(v.size) { v[it].toFloat() } }
        else -> null
    }

    /** The elements as Doubles whatever the dtype (int64 beyond 2^53 rounds). */
    fun toDoubles(): DoubleArray = when (dtype) {
        Dtype.FLOAT32 -> float32s().let { v -> DoubleArray(v.size) { v[it].toDouble() } }
        Dtype.FLOAT64 -> float64s()
        Dtype.INT32 -> int32s().let { v -> DoubleArray(v.size) { v[it].toDouble() } }
        Dtype.INT64 -> int64s().let { v -> DoubleArray(v.size) { v[it].toDouble() } }
    }

    override fun toString(): String = "NdArray($dtype, ${shape.toList()}, ${data.size} bytes)"

    companion object {
        /** Bounds one array frame when the caller has no better limit; nodes pass their configured one. */
        const val DEFAULT_MAX_ARRAY_BYTES: Long = 256L shl 20

        /** The most dimensions an array may have (§3). */
        const val MAX_NDIM = 8

        private fun alloc(n: Int, itemSize: Int): ByteBuffer = ByteBuffer.allocate(n * itemSize).order(ByteOrder.LITTLE_ENDIAN)

        /** A float32 array; values.size must match the shape. */
        fun fromFloat32(shape: LongArray, values: FloatArray): NdArray {
            val b = alloc(values.size, 4)
            b.asFloatBuffer().put(values)
            return NdArray(Dtype.FLOAT32, shape, b.array())
        }

        /** A float64 array. */
        fun fromFloat64(shape: LongArray, values: DoubleArray): NdArray {
            val b = alloc(values.size, 8)
            b.asDoubleBuffer().put(values)
            return NdArray(Dtype.FLOAT64, shape, b.array())
        }

        /** An int32 array. */
        fun fromInt32(shape: LongArray, values: IntArray): NdArray {
            val b = alloc(values.size, 4)
            b.asIntBuffer().put(values)
            return NdArray(Dtype.INT32, shape, b.array())
        }

        /** An int64 array. */
        fun fromInt64(shape: LongArray, values: LongArray): NdArray {
            val b = alloc(values.size, 8)
            b.asLongBuffer().put(values)
            return NdArray(Dtype.INT64, shape, b.array())
        }

        /**
         * Rebuilds an array from its descriptor and blob, checking, in
         * Python's order: the descriptor is an object (BAD_REQUEST), dtype is
         * allowed (BAD_INPUT), shape is a list of at most 8 non-negative
         * integers (BAD_SHAPE; a dimension above 2^63-1 too, as Go), the
         * declared size (exact, no overflow) is within maxBytes (TOO_LARGE,
         * before the blob is looked at), the blob has exactly that size
         * (BAD_SHAPE). name is used in messages. data aliases blob.
         * Throws ProtocolError.
         */
        fun fromFrame(desc: Any?, blob: ByteArray, maxBytes: Long, name: String): NdArray {
            val d = desc as? JsonObject ?: throw ProtocolError(ErrorCode.BAD_REQUEST,
                "array '$name' descriptor must be an object with dtype and shape, got ${Json.kindOf(desc)}")
            val dv = d["dtype"]
            val dtype = Dtype.of(dv as? String) ?: throw ProtocolError(ErrorCode.BAD_INPUT,
                "array '$name' has dtype ${Wire.pyRepr(dv)}; allowed: float32, float64, int32, int64")
            val sv = d["shape"]
            fun shapeErr() = ProtocolError(ErrorCode.BAD_SHAPE,
                "array '$name' shape must be a list of at most $MAX_NDIM non-negative integers, got ${Wire.pyRepr(sv)}")
            val list = sv as? List<*>
            if (list == null || list.size > MAX_NDIM) throw shapeErr()
            val dims = list.map { x -> (x as? JsonNumber)?.toUnsignedOrNull() ?: throw shapeErr() }
            val declared = if (dims.any { it.signum() == 0 }) BigInteger.ZERO
                else dims.fold(BigInteger.valueOf(dtype.itemSize.toLong())) { p, x -> p.multiply(x) }
            if (declared > BigInteger.valueOf(maxBytes)) {
                val size = if (declared.bitLength() > 64) "more than 2^64" else declared.toString()
                throw ProtocolError(ErrorCode.TOO_LARGE,
                    "array '$name' declares shape ${Wire.pyRepr(sv)} $dtype = $size bytes, limit is $maxBytes")
            }
            if (BigInteger.valueOf(blob.size.toLong()) != declared) {
                throw ProtocolError(ErrorCode.BAD_SHAPE,
                    "array '$name' declares shape ${Wire.pyRepr(sv)} $dtype = $declared bytes but the frame has ${blob.size} bytes")
            }
            val maxLong = BigInteger.valueOf(Long.MAX_VALUE)
            // Above 2^63-1 only beside a 0 dimension; a Long cannot hold it.
            if (dims.any { it > maxLong }) throw shapeErr()
            return NdArray(dtype, LongArray(dims.size) { dims[it].toLong() }, blob)
        }

        /**
         * The array described by header[key], whose frame field (default 0)
         * indexes blobs: fromFrame's errors plus BAD_REQUEST when the
         * descriptor is missing, null or not an object, or frame is not a
         * valid blob index. Throws ProtocolError.
         */
        fun read(header: JsonObject, blobs: List<ByteArray>, key: String, maxBytes: Long = DEFAULT_MAX_ARRAY_BYTES): NdArray {
            val desc = header[key] ?: throw ProtocolError(ErrorCode.BAD_REQUEST, "missing array descriptor '$key'")
            val d = desc as? JsonObject ?: throw ProtocolError(ErrorCode.BAD_REQUEST,
                "array '$key' descriptor must be an object, got ${Json.kindOf(desc)}")
            val frame: Any? = if (d.has("frame")) d["frame"] else JsonNumber("0")
            val idx = Json.intValue(frame)
            if (idx == null || idx < 0 || idx >= blobs.size) {
                throw ProtocolError(ErrorCode.BAD_REQUEST,
                    "array '$key' refers to frame ${Wire.pyRepr(frame)} but the message has ${blobs.size} binary frame(s)")
            }
            return fromFrame(d, blobs[idx.toInt()], maxBytes, key)
        }
    }
}
