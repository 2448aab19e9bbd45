package zmqnode.ml

/**
 * A row-major float32 matrix (numpy float32, C order, as on the wire and in
 * the model file): element (i, j) is data[off + i * cols + j]. A matrix may
 * be a view into a larger array (a layer's weight inside the flat parameter
 * array, a batch inside a buffer): writes go through.
 */
class Matrix(val rows: Int, val cols: Int, val data: FloatArray, val off: Int = 0) {
    init {
        if (rows < 0 || cols < 0 || off < 0 || off + rows * cols > data.size) {
            throw BadInputException("${data.size - off} values cannot be a $rows x $cols matrix")
        }
    }

    /** A zero rows x cols matrix. */
    constructor(rows: Int, cols: Int) : this(rows, cols, FloatArray(rows * cols), 0)

    val size: Int get() = rows * cols

    operator fun get(i: Int, j: Int): Float = data[off + i * cols + j]
    operator fun set(i: Int, j: Int, v: Float) { data[off + i * cols + j] = v }

    /** Row i as a new array. */
    fun row(i: Int): FloatArray = data.copyOfRange(off + i * cols, off + (i + 1) * cols)

    /** The values as a new array of rows * cols. */
    fun toFloatArray(): FloatArray = data.copyOfRange(off, off + rows * cols)

    /** m[rows] (numpy fancy indexing): a new matrix. */
    fun gather(indices: IntArray): Matrix {
        val out = Matrix(indices.size, cols)
        for (i in indices.indices) System.arraycopy(data, off + indices[i] * cols, out.data, i * cols, cols)
        return out
    }

    /** gather into buf (at offset 0) when it is large enough (the result aliases buf). */
    internal fun gatherInto(buf: FloatArray, indices: IntArray, from: Int, to: Int): Matrix {
        val n = to - from
        if (buf.size < n * cols) return gather(indices.copyOfRange(from, to))
        for (i in 0 until n) System.arraycopy(data, off + indices[from + i] * cols, buf, i * cols, cols)
        return Matrix(n, cols, buf, 0)
    }

    /** m[start:stop] (a view). */
    fun slice(start: Int, stop: Int): Matrix = Matrix(stop - start, cols, data, off + start * cols)

    companion object {
        /** data wrapped (not copied); it must hold exactly rows * cols values. */
        @JvmStatic
        fun of(rows: Int, cols: Int, data: FloatArray): Matrix {
            if (rows < 0 || cols < 0 || data.size != rows * cols) {
                throw BadInputException("${data.size} values cannot be a $rows x $cols matrix")
            }
            return Matrix(rows, cols, data, 0)
        }
    }
}

/** Float64 buffers a matrix product reuses across calls (go/ml/matrix.go's scratch). */
internal class Scratch {
    var bw = DoubleArray(0)
    var acc = DoubleArray(0)
    var b0 = DoubleArray(0)
    var b1 = DoubleArray(0)
    var b2 = DoubleArray(0)
    var b3 = DoubleArray(0)
}

internal fun grow(buf: DoubleArray, n: Int): DoubleArray = if (buf.size < n) DoubleArray(n) else buf

/** a[off until off+n] widened to float64 into buf (reused when large enough). */
internal fun widen64(a: FloatArray, off: Int, n: Int, buf: DoubleArray): DoubleArray {
    val out = grow(buf, n)
    for (i in 0 until n) out[i] = a[off + i].toDouble()
    return out
}

// The three products below are go/ml/matrix.go's, operation for operation:
// sums in float64 in the same order (four rows of b per pass), rounded once to
// float32, so a Kotlin trainer agrees with a Go trainer bit for bit (neither
// Go on amd64 nor the JVM fuses a*b+c) and with numpy's OpenBLAS to a few
// float32 ulps.

/** out = a @ b (out: a.rows x b.cols). */
internal fun matmulInto(out: Matrix, a: Matrix, b: Matrix, scratch: Scratch?) {
    val s = scratch ?: Scratch()
    val n = b.cols
    s.bw = widen64(b.data, b.off, b.rows * b.cols, s.bw)
    s.acc = grow(s.acc, n)
    val bw = s.bw
    val acc = s.acc
    val ad = a.data
    val kk = a.cols
    for (i in 0 until a.rows) {
        java.util.Arrays.fill(acc, 0, n, 0.0)
        val ar = a.off + i * kk
        var k = 0
        while (k + 4 <= kk) {
            val x0 = ad[ar + k].toDouble()
            val x1 = ad[ar + k + 1].toDouble()
            val x2 = ad[ar + k + 2].toDouble()
            val x3 = ad[ar + k + 3].toDouble()
            val r0 = k * n
            val r1 = (k + 1) * n
            val r2 = (k + 2) * n
            val r3 = (k + 3) * n
            for (j in 0 until n) {
                acc[j] += x0 * bw[r0 + j] + x1 * bw[r1 + j] + x2 * bw[r2 + j] + x3 * bw[r3 + j]
            }
            k += 4
        }
        while (k < kk) {
            val x = ad[ar + k].toDouble()
            val r = k * n
            for (j in 0 until n) acc[j] += x * bw[r + j]
            k++
        }
        val o = out.off + i * n
        for (j in 0 until n) out.data[o + j] = acc[j].toFloat()
    }
}

/** out = a.T @ b (out: a.cols x b.cols). */
internal fun matmulTransAInto(out: Matrix, a: Matrix, b: Matrix, scratch: Scratch?) {
    val s = scratch ?: Scratch()
    val n = b.cols
    val m = a.cols
    s.acc = grow(s.acc, m * n)
    val acc = s.acc
    java.util.Arrays.fill(acc, 0, m * n, 0.0)
    val ad = a.data
    var r = 0
    while (r + 4 <= a.rows) {
        s.b0 = widen64(b.data, b.off + r * n, n, s.b0)
        s.b1 = widen64(b.data, b.off + (r + 1) * n, n, s.b1)
        s.b2 = widen64(b.data, b.off + (r + 2) * n, n, s.b2)
        s.b3 = widen64(b.data, b.off + (r + 3) * n, n, s.b3)
        val b0 = s.b0
        val b1 = s.b1
        val b2 = s.b2
        val b3 = s.b3
        val a0 = a.off + r * m
        val a1 = a0 + m
        val a2 = a1 + m
        val a3 = a2 + m
        for (i in 0 until m) {
            val x0 = ad[a0 + i].toDouble()
            val x1 = ad[a1 + i].toDouble()
            val x2 = ad[a2 + i].toDouble()
            val x3 = ad[a3 + i].toDouble()
            val row = i * n
            for (j in 0 until n) {
                acc[row + j] += x0 * b0[j] + x1 * b1[j] + x2 * b2[j] + x3 * b3[j]
            }
        }
        r += 4
    }
    while (r < a.rows) {
        s.b0 = widen64(b.data, b.off + r * n, n, s.b0)
        val b0 = s.b0
        val ar = a.off + r * m
        for (i in 0 until m) {
            val x = ad[ar + i].toDouble()
            val row = i * n
            for (j in 0 until n) acc[row + j] += x * b0[j]
        }
        r++
    }
    for (i in 0 until m * n) out.data[out.off + i] = acc[i].toFloat()
}

/** out = a @ b.T (out: a.rows x b.rows). */
internal fun matmulTransBInto(out: Matrix, a: Matrix, b: Matrix, scratch: Scratch?) {
    val s = scratch ?: Scratch()
    s.bw = widen64(b.data, b.off, b.rows * b.cols, s.bw)
    val bw = s.bw
    val k = b.cols
    for (i in 0 until a.rows) {
        s.b0 = widen64(a.data, a.off + i * a.cols, a.cols, s.b0)
        val ar = s.b0
        val o = out.off + i * b.rows
        for (j in 0 until b.rows) {
            val br = j * k
            var sum = 0.0
            for (c in 0 until a.cols) sum += ar[c] * bw[br + c]
            out.data[o + j] = sum.toFloat()
        }
    }
}
