package zmqnode.ml

// From a client's arrays to a training problem, and from a problem to chunks
// (docs/TRAINING.md §3; zmqnode/ml/problem.py; go/ml/problem.go).
// Deterministic in the data and the seed, drawing from numpy's generators
// exactly: a Kotlin leader makes Python's validation split, initial weights
// and chunks bit for bit.

/**
 * A TRAIN request's outputs: exactly one of ints (an integer array), floats
 * (a float array, float32 values widened exactly) or names (string labels,
 * e.g. the request's "classes" resolved per row), row-major. cols is the
 * array's second dimension, 0 for a 1-D array.
 */
class Labels private constructor(
    val rows: Int, val cols: Int,
    val ints: LongArray?, val floats: DoubleArray?, val names: List<String>?
) {
    internal val width: Int get() = if (cols == 0) 1 else cols
    /** problem._labels_1d: one label per row. */
    internal val oneD: Boolean get() = cols <= 1

    companion object {
        @JvmStatic @JvmOverloads
        fun ofInts(values: LongArray, rows: Int = values.size, cols: Int = 0) = Labels(rows, cols, values, null, null)
        @JvmStatic @JvmOverloads
        fun ofFloats(values: DoubleArray, rows: Int = values.size, cols: Int = 0) = Labels(rows, cols, null, values, null)
        @JvmStatic @JvmOverloads
        fun ofNames(values: List<String>, rows: Int = values.size, cols: Int = 0) = Labels(rows, cols, null, null, values)

        /**
         * request.make_plan's step for a TRAIN with "classes": each row's
         * index into names becomes the name itself; cols is the outputs
         * array's second dimension (0 for 1-D), rows the number of codes, as
         * go/training's MakePlan. (The caller refuses task "regression" with
         * class names first.)
         */
        @JvmStatic @JvmOverloads
        fun fromClassIndices(codes: LongArray, names: List<String>, cols: Int = 0): Labels {
            val out = ArrayList<String>(codes.size)
            for ((i, c) in codes.withIndex()) {
                if (c < 0 || c >= names.size) {
                    throw BadInputException("outputs row $i: class index $c is outside the ${names.size} names in 'classes'")
                }
                out.add(names[c.toInt()])
            }
            return ofNames(out, out.size, cols)
        }
    }
}

/** The rows one trainer trains on in every round. */
class Chunk(val index: Int, val x: Matrix, val y: Matrix)

/**
 * problem.Problem: validated, encoded training data plus everything needed
 * to start training. classes are the sorted original labels (Long, Double,
 * String; empty for regression).
 */
class Problem internal constructor(
    val task: String,
    val arch: Architecture,
    val options: TrainOptions,
    val classes: List<Any>,
    val inputMean: FloatArray, val inputStd: FloatArray,
    val outputMean: FloatArray?, val outputStd: FloatArray?,
    internal var rows: Matrix?,
    val trainRows: IntArray,
    val y: Matrix,
    val xVal: Matrix, val yVal: Matrix,
    val initialParams: FloatArray
) {
    val nTrain: Int get() = trainRows.size
}

object Problems {
    const val MAX_INFERRED_CLASSES = 32
    const val MAX_CLASSES = 1024
    const val MIN_VALIDATION_ROWS = 10
    const val MIN_ROWS_PER_CHUNK = 32
    private const val BLOCK_VALUES = 1 shl 20

    /** scheduler.chunk_count: one chunk per trainer, at least MIN_ROWS_PER_CHUNK rows each, at least one. */
    @JvmStatic
    fun chunkCount(rows: Int, trainers: Int): Int = Math.max(1, Math.min(trainers, rows / MIN_ROWS_PER_CHUNK))

    private fun uniqueSorted(a: DoubleArray): DoubleArray {
        val s = a.copyOf()
        java.util.Arrays.sort(s)
        val out = ArrayList<Double>()
        for (i in s.indices) if (i == 0 || s[i] != s[i - 1]) out.add(s[i])
        return out.toDoubleArray()
    }

    private fun uniqueStrings(a: List<String>): List<String> = a.toSortedSet(CODE_POINT_ORDER).toList()

    /** problem.infer_task: binary/multiclass for integer labels with few values (or any strings), else regression. */
    @JvmStatic
    fun inferTask(y: Labels): String {
        if (!y.oneD) return Tasks.REGRESSION
        if (y.names != null) return if (uniqueStrings(y.names).size == 2) Tasks.BINARY else Tasks.MULTICLASS
        val values: DoubleArray = if (y.ints != null) DoubleArray(y.ints.size) { y.ints[it].toDouble() } else {
            val f = y.floats!!
            for (v in f) if (!isFinite(v) || v != Math.rint(v)) return Tasks.REGRESSION
            f
        }
        if (values.isEmpty()) return Tasks.REGRESSION
        val k = uniqueSorted(values).size
        if (k == 2) return Tasks.BINARY
        if (k in 3..MAX_INFERRED_CLASSES) return Tasks.MULTICLASS
        return Tasks.REGRESSION
    }

    private fun rowsPerBlock(cols: Int): Int = Math.max(1, BLOCK_VALUES / Math.max(1, cols))

    /** problem._standardization: column mean and population std from float64 sums, block by block; std 0 becomes 1. */
    internal fun standardization(a: Matrix): Pair<FloatArray, FloatArray> {
        val n = a.rows
        val c = a.cols
        val total = DoubleArray(c)
        val block = rowsPerBlock(c)
        val part = DoubleArray(c)
        var start = 0
        while (start < n) {
            val stop = Math.min(n, start + block)
            java.util.Arrays.fill(part, 0.0)
            for (i in start until stop) for (j in 0 until c) part[j] += a[i, j].toDouble()
            for (j in 0 until c) total[j] += part[j]
            start += block
        }
        val mean = DoubleArray(c) { total[it] / n.toDouble() }
        val squares = DoubleArray(c)
        start = 0
        while (start < n) {
            val stop = Math.min(n, start + block)
            java.util.Arrays.fill(part, 0.0)
            for (i in start until stop) for (j in 0 until c) {
                val d = a[i, j].toDouble() - mean[j]
                part[j] += d * d
            }
            for (j in 0 until c) squares[j] += part[j]
            start += block
        }
        val m32 = FloatArray(c)
        val s32 = FloatArray(c)
        for (j in 0 until c) {
            var s = Math.sqrt(squares[j] / n.toDouble())
            if (s == 0.0) s = 1.0
            m32[j] = mean[j].toFloat()
            s32[j] = s.toFloat()
        }
        return Pair(m32, s32)
    }

    /** problem.standardize_rows: (a[indices] - mean) / std in float32. */
    internal fun standardizeRows(a: Matrix, indices: IntArray, mean: FloatArray, std: FloatArray): Matrix {
        val out = Matrix(indices.size, a.cols)
        for ((i, r) in indices.withIndex()) {
            for (j in 0 until a.cols) {
                val d = a[r, j] - mean[j]
                out.data[i * a.cols + j] = d / std[j]
            }
        }
        return out
    }

    private fun firstNonFinite(a: Matrix): IntArray? {
        for (i in 0 until a.rows) for (j in 0 until a.cols) {
            val v = a[i, j]
            if (v.isNaN() || v.isInfinite()) return intArrayOf(i, j)
        }
        return null
    }

    private fun seq(n: Int) = IntArray(n) { it }

    /**
     * problem.prepare: validate and encode (x, y) for training. x is float32
     * (the wire's values rounded, as numpy's astype: beyond float32 becomes
     * infinite and is refused). Throws BadInputException.
     */
    @JvmStatic
    fun prepare(x: Matrix, y: Labels, o: TrainOptions): Problem {
        if (x.rows == 0) throw BadInputException("inputs have no rows; training needs at least one")
        if (x.cols == 0) throw BadInputException("inputs have no columns")
        firstNonFinite(x)?.let {
            throw BadInputException("inputs contain NaN or infinite values (or values beyond float32), first at row ${it[0]}, column ${it[1]}")
        }
        if (y.rows != x.rows) throw BadInputException("inputs have ${x.rows} rows but outputs have ${y.rows}")
        val n = x.rows
        var task = o.task ?: inferTask(y)
        val encoded: Matrix
        var classIndex: IntArray? = null
        var classes: List<Any> = emptyList()
        var outputMean: FloatArray? = null
        var outputStd: FloatArray? = null
        if (task == Tasks.REGRESSION) {
            if (y.names != null) {
                var width = 1
                for (s in y.names) width = Math.max(width, s.codePointCount(0, s.length))
                throw BadInputException("regression targets must be numbers, got an array of <U$width")
            }
            val y32 = Matrix(n, y.width)
            for (i in 0 until y32.size) {
                y32.data[i] = if (y.ints != null) y.ints[i].toFloat() else y.floats!![i].toFloat()
            }
            firstNonFinite(y32)?.let {
                throw BadInputException("outputs contain NaN or infinite values, first at row ${it[0]}, column ${it[1]}")
            }
            val (m, s) = standardization(y32)
            outputMean = m
            outputStd = s
            encoded = standardizeRows(y32, seq(n), m, s)
        } else {
            if (!y.oneD) throw BadInputException("task '$task' needs one label per row, but outputs have ${y.cols} columns")
            val enc = encodeClasses(y, task)
            task = enc.first
            classes = enc.second
            classIndex = enc.third
            val k = classes.size
            if (task == Tasks.BINARY) {
                encoded = Matrix(n, 1)
                for (i in 0 until n) encoded.data[i] = classIndex[i].toFloat()
            } else {
                encoded = Matrix(n, k)
                for (i in 0 until n) encoded.data[i * k + classIndex[i]] = 1.0f
            }
        }
        val options = o.copy(task = task)
        val (inputMean, inputStd) = standardization(x)
        val value = validationRows(n, classIndex, o.validationFraction, Generator.forStream(o.seed, Generator.STREAM_SPLIT, 0))
        val isVal = BooleanArray(n)
        for (r in value) isVal[r] = true
        val trainRows = (0 until n).filter { !isVal[it] }.toIntArray()
        val arch = Architecture.forTask(x.cols, o.hiddenLayers.toIntArray(), encoded.cols, o.activation, task)
        return Problem(
            task, arch, options, classes, inputMean, inputStd, outputMean, outputStd, x, trainRows,
            encoded.gather(trainRows), standardizeRows(x, value, inputMean, inputStd), encoded.gather(value),
            initParams(arch, Generator.forStream(o.seed, Generator.STREAM_INIT))
        )
    }

    /** problem._encode_classes: the resolved task, the sorted class values and each row's index into them. */
    private fun encodeClasses(y: Labels, task0: String): Triple<String, List<Any>, IntArray> {
        var task = task0
        val classes = ArrayList<Any>()
        val index = IntArray(y.rows)
        when {
            y.names != null -> {
                val u = uniqueStrings(y.names)
                val pos = HashMap<String, Int>()
                for ((i, v) in u.withIndex()) { pos[v] = i; classes.add(v) }
                for ((i, v) in y.names.withIndex()) index[i] = pos[v]!!
            }
            y.ints != null -> {
                val u = y.ints.copyOf()
                java.util.Arrays.sort(u)
                val pos = HashMap<Long, Int>()
                for (v in u) if (v !in pos) { pos[v] = classes.size; classes.add(v) }
                for ((i, v) in y.ints.withIndex()) index[i] = pos[v]!!
            }
            else -> {
                val f = y.floats!!
                for ((i, v) in f.withIndex()) {
                    if (!isFinite(v)) throw BadInputException("outputs contain NaN or infinite values, first at row $i")
                }
                val u = uniqueSorted(f)
                for (v in u) classes.add(v)
                // Binary search with primitive ==: -0.0 and 0.0 are one class, as in numpy
                // (JVM pitfall: boxed Double keys in a HashMap tell them apart).
                for ((i, v) in f.withIndex()) {
                    var lo = 0
                    var hi = u.size - 1
                    while (lo < hi) {
                        val mid = (lo + hi) ushr 1
                        if (u[mid] < v) lo = mid + 1 else hi = mid
                    }
                    index[i] = lo
                }
            }
        }
        val k = classes.size
        if (k < 2) {
            val first = when {
                k == 0 -> "None"
                classes[0] is String -> pyRepr(classes[0])
                else -> PyJson.encodeToString(classes[0])
            }
            throw BadInputException("every label is $first: a classifier needs at least 2 classes (use task 'regression' to fit a constant)")
        }
        if (task == Tasks.BINARY && k != 2) throw BadInputException("task 'binary' needs exactly 2 classes, the labels have $k")
        if (task == Tasks.CLASSIFICATION) task = if (k == 2) Tasks.BINARY else Tasks.MULTICLASS
        if (k > MAX_CLASSES) throw BadInputException("the labels have $k classes; at most $MAX_CLASSES are supported")
        return Triple(task, classes, index)
    }

    /**
     * problem._validation_rows: the fraction of every class (floor), each
     * class's rows shuffled by g, the held-out rows sorted; none if fewer
     * than MIN_VALIDATION_ROWS.
     */
    private fun validationRows(n: Int, classIndex: IntArray?, fraction: Double, g: Generator): IntArray {
        if (fraction <= 0) return IntArray(0)
        val groups: List<IntArray> = if (classIndex == null) listOf(seq(n)) else {
            val maxClass = classIndex.max() ?: -1
            val lists = List(maxClass + 1) { ArrayList<Int>() }
            for ((r, c) in classIndex.withIndex()) lists[c].add(r)
            lists.map { it.toIntArray() }
        }
        val held = ArrayList<Int>()
        for (grp in groups) {
            val perm = g.permute(grp)
            val take = (fraction * grp.size.toDouble()).toInt()
            for (i in 0 until take) held.add(perm[i])
        }
        if (held.size < MIN_VALIDATION_ROWS) return IntArray(0)
        val out = held.toIntArray()
        java.util.Arrays.sort(out)
        return out
    }

    /**
     * problem.split_chunks: deal the training rows into min(n, rows) chunks,
     * never an empty one. Classification is stratified (each class's rows
     * shuffled, then dealt round-robin); regression rows shuffled and dealt.
     */
    @JvmStatic
    fun splitChunks(p: Problem, nChunks: Int): List<Chunk> {
        if (nChunks < 1) throw BadOptionsException("the number of chunks must be a positive integer, got $nChunks")
        val source = p.rows ?: throw IllegalStateException("the problem's rows were released")
        val rows = p.nTrain
        val n = Math.min(nChunks, rows)
        val g = Generator.forStream(p.options.seed, Generator.STREAM_SPLIT, 1)
        val order: IntArray = if (p.task == Tasks.REGRESSION) g.permutation(rows) else {
            val byClass = List(p.classes.size) { ArrayList<Int>() }
            for (r in 0 until rows) {
                val c = if (p.task == Tasks.BINARY) p.y.data[p.y.off + r].toInt() else argmax(p.y, r)
                byClass[c].add(r)
            }
            val all = ArrayList<Int>()
            for (rs in byClass) for (v in g.permute(rs.toIntArray())) all.add(v)
            all.toIntArray()
        }
        return (0 until n).map { i ->
            val pick = ArrayList<Int>()
            var k = i
            while (k < order.size) { pick.add(order[k]); k += n }
            val pickArr = pick.toIntArray()
            val src = IntArray(pickArr.size) { p.trainRows[pickArr[it]] }
            Chunk(i, standardizeRows(source, src, p.inputMean, p.inputStd), p.y.gather(pickArr))
        }
    }
}
