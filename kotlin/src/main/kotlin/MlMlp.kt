package zmqnode.ml

// The network of zmqnode/ml/mlp.py (docs/TRAINING.md §4, go/ml/mlp.go):
// parameters in ONE flat float32 array (layer 0 weight [fan_in x fan_out]
// row-major, layer 0 bias, layer 1 weight, ...), the order in which they
// travel in SUB_TRAIN jobs and results and in which FedAvg averages them.
// Arithmetic follows numpy's float32 step by step, as Go does; only sums
// (products, reductions) run in float64. Transcendentals are StrictMath's
// (fdlibm: the same bits on every JVM; Math.* may use CPU intrinsics) in
// float64, rounded to float32, as Go's math.Exp/Tanh/Log.

object Tasks {
    const val BINARY = "binary"
    const val MULTICLASS = "multiclass"
    const val REGRESSION = "regression"
    const val CLASSIFICATION = "classification"

    /** The activations a hidden layer may use. */
    @JvmField val HIDDEN_ACTIVATIONS = listOf("relu", "tanh", "sigmoid")

    /** The output activation fixed by a task (null for an unknown task). */
    @JvmStatic
    fun outputActivation(task: String): String? = when (task) {
        BINARY -> "sigmoid"
        MULTICLASS -> "softmax"
        REGRESSION -> "linear"
        else -> null
    }
}

private const val ADAM_BETA1 = 0.9
private const val ADAM_BETA2 = 0.999
private const val ADAM_EPSILON = 1e-8
private const val SIGMOID_CLIP = 40.0f

/** The layer sizes (input, hidden..., output) and activations. */
class Architecture(val layerSizes: IntArray, val hiddenActivation: String, val outputActivation: String) {
    val nLayers: Int get() = layerSizes.size - 1

    /** The length of the flat parameter array. */
    val nParams: Int
        get() {
            var n = 0
            for (i in 0 until nLayers) n += (layerSizes[i] + 1) * layerSizes[i + 1]
            return n
        }

    /** "4-64-3". */
    fun describe(): String = layerSizes.joinToString("-")

    /** Per-layer weights and biases (1 x fan_out) as views of flat (writes go through). */
    fun unflatten(flat: FloatArray): Pair<List<Matrix>, List<Matrix>> {
        if (flat.size != nParams) {
            throw BadInputException("parameters have ${flat.size} values; a ${describe()} network needs $nParams")
        }
        val ws = ArrayList<Matrix>()
        val bs = ArrayList<Matrix>()
        var at = 0
        for (i in 0 until nLayers) {
            val inp = layerSizes[i]
            val out = layerSizes[i + 1]
            ws.add(Matrix(inp, out, flat, at))
            at += inp * out
            bs.add(Matrix(1, out, flat, at))
            at += out
        }
        return Pair(ws, bs)
    }

    companion object {
        /** Architecture.for_task: [inputs, *hidden, outputs]. */
        @JvmStatic
        fun forTask(inputs: Int, hidden: IntArray, outputs: Int, activation: String, task: String): Architecture {
            val sizes = IntArray(hidden.size + 2)
            sizes[0] = inputs
            System.arraycopy(hidden, 0, sizes, 1, hidden.size)
            sizes[sizes.size - 1] = outputs
            return Architecture(sizes, activation, Tasks.outputActivation(task) ?: "linear")
        }
    }
}

/**
 * mlp.init_params: Glorot-uniform weights U(-l, l), l = sqrt(6 / (fan_in +
 * fan_out)), drawn layer by layer in row-major order and rounded to float32;
 * zero biases.
 */
fun initParams(a: Architecture, g: Generator): FloatArray {
    val flat = FloatArray(a.nParams)
    val (ws, _) = a.unflatten(flat)
    for (w in ws) {
        val limit = Math.sqrt(6.0 / (w.rows + w.cols).toDouble())
        for (i in 0 until w.size) w.data[w.off + i] = g.uniform(-limit, limit).toFloat()
    }
    return flat
}

internal fun exp32(x: Float): Float = StrictMath.exp(x.toDouble()).toFloat()

/** mlp.sigmoid in float32: clip, negate, exp, add 1, reciprocal. */
internal fun sigmoid32(zIn: Float): Float {
    var z = zIn
    if (z > SIGMOID_CLIP) z = SIGMOID_CLIP else if (z < -SIGMOID_CLIP) z = -SIGMOID_CLIP
    return 1.0f / (exp32(-z) + 1.0f)
}

private fun activate(z: Matrix, activation: String) {
    val d = z.data
    val end = z.off + z.size
    when (activation) {
        "relu" -> for (i in z.off until end) if (d[i] < 0f) d[i] = 0f
        "tanh" -> for (i in z.off until end) d[i] = StrictMath.tanh(d[i].toDouble()).toFloat()
        else -> for (i in z.off until end) d[i] = sigmoid32(d[i])
    }
}

private fun addBias(z: Matrix, b: Matrix) {
    for (i in 0 until z.rows) {
        val r = z.off + i * z.cols
        for (j in 0 until z.cols) z.data[r + j] = z.data[r + j] + b.data[b.off + j]
    }
}

/** One job's batch temporaries, reused from batch to batch. */
internal class Workspace(a: Architecture, rows: Int) {
    val acts = a.layerSizes.map { FloatArray(rows * it) }
    val deltas = a.layerSizes.map { FloatArray(rows * it) }
    val s = Scratch()
}

private fun wsMatrix(list: List<FloatArray>?, layer: Int, rows: Int, cols: Int): Matrix =
    if (list == null) Matrix(rows, cols) else Matrix(rows, cols, list[layer], 0)

/** The input and every hidden layer's activations. */
private fun forwardHidden(ws: List<Matrix>, bs: List<Matrix>, activation: String, x: Matrix, w: Workspace?): List<Matrix> {
    val acts = ArrayList<Matrix>()
    acts.add(x)
    for (i in 0 until ws.size - 1) {
        val z = wsMatrix(w?.acts, i + 1, x.rows, ws[i].cols)
        matmulInto(z, acts[i], ws[i], w?.s)
        addBias(z, bs[i])
        activate(z, activation)
        acts.add(z)
    }
    return acts
}

/** The last layer's pre-activation for a batch. */
internal fun outputLogits(ws: List<Matrix>, bs: List<Matrix>, activation: String, x: Matrix): Matrix {
    val acts = forwardHidden(ws, bs, activation, x, null)
    val last = ws.size - 1
    val z = Matrix(x.rows, ws[last].cols)
    matmulInto(z, acts[last], ws[last], null)
    addBias(z, bs[last])
    return z
}

/** mlp.log_softmax of one row (z at zo, cols values) into out at oo, in float32. */
private fun logSoftmaxRow(z: FloatArray, zo: Int, cols: Int, out: FloatArray, oo: Int) {
    var m = z[zo]
    for (j in 1 until cols) if (z[zo + j] > m) m = z[zo + j]
    var s = 0.0
    for (j in 0 until cols) {
        out[oo + j] = z[zo + j] - m
        s += exp32(out[oo + j]).toDouble()
    }
    val l = StrictMath.log(s.toFloat().toDouble()).toFloat()
    for (j in 0 until cols) out[oo + j] = out[oo + j] - l
}

/** mlp.apply_output: probabilities (sigmoid, softmax) or the values (linear), as a new matrix. */
internal fun applyOutput(z: Matrix, outputActivation: String): Matrix {
    val p = Matrix(z.rows, z.cols)
    when (outputActivation) {
        "sigmoid" -> for (i in 0 until z.size) p.data[i] = sigmoid32(z.data[z.off + i])
        "softmax" -> for (i in 0 until z.rows) {
            logSoftmaxRow(z.data, z.off + i * z.cols, z.cols, p.data, i * z.cols)
            for (j in 0 until z.cols) p.data[i * z.cols + j] = exp32(p.data[i * z.cols + j])
        }
        else -> System.arraycopy(z.data, z.off, p.data, 0, z.size)
    }
    return p
}

/** numpy's logaddexp(0, z), in float64. */
private fun softplus(z: Double): Double = Math.max(z, 0.0) + StrictMath.log1p(StrictMath.exp(-Math.abs(z)))

/**
 * mlp.output_loss: the mean loss over rows (NaN unless withLoss), and its
 * gradient w.r.t. z, already divided by the row count, written into delta.
 */
private fun outputLoss(z: Matrix, y: Matrix, delta: Matrix, outputActivation: String, withLoss: Boolean): Double {
    val n = z.rows
    var total = 0.0
    val zd = z.data
    val yd = y.data
    val dd = delta.data
    when (outputActivation) {
        "sigmoid" -> for (i in 0 until z.size) {
            val v = zd[z.off + i]
            val t = yd[y.off + i]
            if (withLoss) total += softplus(v.toDouble()) - (t * v).toDouble()
            dd[delta.off + i] = sigmoid32(v) - t
        }
        "softmax" -> for (i in 0 until n) {
            val d0 = delta.off + i * z.cols
            val y0 = y.off + i * y.cols
            logSoftmaxRow(zd, z.off + i * z.cols, z.cols, dd, d0)
            for (j in 0 until z.cols) {
                val lp = dd[d0 + j]
                if (withLoss) total -= (yd[y0 + j] * lp).toDouble()
                dd[d0 + j] = exp32(lp) - yd[y0 + j]
            }
        }
        else -> {
            for (i in 0 until z.size) {
                val d = zd[z.off + i] - yd[y.off + i]
                dd[delta.off + i] = d
                if (withLoss) total += (d * d).toDouble()
            }
            total *= 0.5
        }
    }
    val loss = if (withLoss) total / n.toDouble() else Double.NaN
    val nf = n.toFloat()
    for (i in delta.off until delta.off + delta.size) dd[i] = dd[i] / nf
    return loss
}

/**
 * mlp.loss_and_grad: backpropagation into gradW/gradB, the data loss
 * returned. l2 is the coefficient of l2/2n * sum(W**2) for n rows (fit
 * passes its own l2 times n), in the gradient only.
 */
private fun lossAndGrad(a: Architecture, ws: List<Matrix>, bs: List<Matrix>, gradW: List<Matrix>, gradB: List<Matrix>,
                        x: Matrix, y: Matrix, l2: Double, withLoss: Boolean, w: Workspace?): Double {
    val acts = forwardHidden(ws, bs, a.hiddenActivation, x, w)
    val last = a.nLayers - 1
    val z = wsMatrix(w?.acts, last + 1, x.rows, ws[last].cols)
    matmulInto(z, acts[last], ws[last], w?.s)
    addBias(z, bs[last])
    var delta = wsMatrix(w?.deltas, last + 1, z.rows, z.cols)
    val loss = outputLoss(z, y, delta, a.outputActivation, withLoss)
    val n = x.rows.toDouble()
    for (i in last downTo 0) {
        val gw = gradW[i]
        matmulTransAInto(gw, acts[i], delta, w?.s)
        if (l2 != 0.0) {
            val c = (l2 / n).toFloat()
            val wi = ws[i]
            for (k in 0 until wi.size) gw.data[gw.off + k] = gw.data[gw.off + k] + c * wi.data[wi.off + k]
        }
        val gb = gradB[i]
        val width = gb.cols
        val sums = if (w != null) {
            w.s.b1 = grow(w.s.b1, width)
            java.util.Arrays.fill(w.s.b1, 0, width, 0.0)
            w.s.b1
        } else DoubleArray(width)
        for (r in 0 until delta.rows) {
            val dr = delta.off + r * delta.cols
            for (j in 0 until width) sums[j] += delta.data[dr + j].toDouble()
        }
        for (j in 0 until width) gb.data[gb.off + j] = sums[j].toFloat()
        if (i > 0) {
            val next = wsMatrix(w?.deltas, i, delta.rows, ws[i].rows)
            matmulTransBInto(next, delta, ws[i], w?.s)
            val act = acts[i]
            val ad = act.data
            val nd = next.data
            val cnt = act.size
            when (a.hiddenActivation) {
                // numpy multiplies by the mask (0 * x: -0.0 and NaN kept as numpy has them).
                "relu" -> for (k in 0 until cnt) {
                    val on = if (ad[act.off + k] > 0f) 1.0f else 0.0f
                    nd[next.off + k] = nd[next.off + k] * on
                }
                "tanh" -> for (k in 0 until cnt) {
                    val v = ad[act.off + k]
                    nd[next.off + k] = nd[next.off + k] * (1.0f - v * v)
                }
                else -> for (k in 0 until cnt) {
                    val v = ad[act.off + k]
                    nd[next.off + k] = nd[next.off + k] * (v * (1.0f - v))
                }
            }
            delta = next
        }
    }
    return loss
}

/** mlp.Adam: moment estimates for one flat parameter array. */
private class Adam(size: Int, val learningRate: Double) {
    val m = FloatArray(size)
    val v = FloatArray(size)
    var t = 0

    /** Updates params in place, each float32 operation rounded as numpy's in-place expressions. */
    fun step(params: FloatArray, grads: FloatArray) {
        t++
        val b1 = ADAM_BETA1
        val b2 = ADAM_BETA2
        val b1f = b1.toFloat()
        val b2f = b2.toFloat()
        val c1 = (1.0 - b1).toFloat()
        val c2 = (1.0 - b2).toFloat()
        val eps = ADAM_EPSILON.toFloat()
        val tt = t.toDouble()
        val step = (learningRate * Math.sqrt(1.0 - StrictMath.pow(b2, tt)) / (1.0 - StrictMath.pow(b1, tt))).toFloat()
        for (i in grads.indices) {
            val g = grads[i]
            m[i] = m[i] * b1f + g * c1
            val gg = g * g
            v[i] = v[i] * b2f + gg * c2
            val d = Math.sqrt(v[i].toDouble()).toFloat() + eps
            params[i] = params[i] - (m[i] / d) * step
        }
    }
}

/** The result of fit: new parameters and the mean data loss over the last epoch. */
class FitResult(val params: FloatArray, val loss: Double)

/**
 * mlp.fit: minibatch Adam for `epochs` passes over (x, y) from a fresh
 * optimizer state; params is not modified. Rows are reshuffled every epoch
 * with g and cut into ceil(n / batch_size) batches of equal size (give or
 * take a row).
 */
fun fit(a: Architecture, params0: FloatArray, x: Matrix, y: Matrix, epochs: Int, batchSize: Int,
        learningRate: Double, l2: Double, g: Generator): FitResult {
    val n = x.rows
    if (n == 0) throw BadInputException("cannot train on zero rows")
    val params = params0.copyOf()
    val grads = FloatArray(params.size)
    val (ws, bs) = a.unflatten(params)
    val (gw, gb) = a.unflatten(grads)
    val opt = Adam(params.size, learningRate)
    var bsz = batchSize
    if (bsz > n) bsz = n
    if (bsz < 1) bsz = 1
    val nBatches = (n + bsz - 1) / bsz
    val bounds = IntArray(nBatches + 1) { ((it.toLong() * n) / nBatches).toInt() }
    val maxRows = bounds[1] - bounds[0] + 1
    val work = Workspace(a, maxRows)
    val xBuf = FloatArray(maxRows * x.cols)
    val yBuf = FloatArray(maxRows * y.cols)
    var total = 0.0
    for (epoch in 0 until epochs) {
        val order = g.permutation(n)
        val last = epoch == epochs - 1
        for (b in 0 until nBatches) {
            val start = bounds[b]
            val stop = bounds[b + 1]
            val rows = stop - start
            val xb = x.gatherInto(xBuf, order, start, stop)
            val yb = y.gatherInto(yBuf, order, start, stop)
            val loss = lossAndGrad(a, ws, bs, gw, gb, xb, yb, l2 * rows.toDouble(), last, work)
            if (last) total += rows.toDouble() * loss
            opt.step(params, grads)
        }
    }
    return FitResult(params, total / n.toDouble())
}

/** mlp.evaluate's result: the loss, and accuracy (classification) or R² (regression). */
class Scores(val loss: Double, val accuracy: Double, val r2: Double)

/** mlp.evaluate on encoded targets. */
fun evaluate(a: Architecture, params: FloatArray, x: Matrix, y: Matrix): Scores {
    val (ws, bs) = a.unflatten(params)
    val z = outputLogits(ws, bs, a.hiddenActivation, x)
    val delta = Matrix(z.rows, z.cols)
    val loss = outputLoss(z, y, delta, a.outputActivation, true)
    val n = z.rows
    var accuracy = 0.0
    var r2 = 0.0
    when (a.outputActivation) {
        "sigmoid" -> {
            var hits = 0
            for (i in 0 until n) if ((z.data[i] > 0f) == (y.data[y.off + i] > 0.5f)) hits++
            accuracy = hits.toDouble() / n.toDouble()
        }
        "softmax" -> {
            var hits = 0
            for (i in 0 until n) if (argmax(z, i) == argmax(y, i)) hits++
            accuracy = hits.toDouble() / n.toDouble()
        }
        else -> {
            var total = 0.0
            var resid = 0.0
            for (j in 0 until y.cols) {
                var mean = 0.0
                for (i in 0 until n) mean += y[i, j].toDouble()
                mean /= n.toDouble()
                for (i in 0 until n) {
                    val d = y[i, j].toDouble() - mean
                    total += d * d
                    val e = z[i, j].toDouble() - y[i, j].toDouble()
                    resid += e * e
                }
            }
            if (total > 0) r2 = 1 - resid / total
        }
    }
    return Scores(loss, accuracy, r2)
}

/** numpy's argmax of row i: the first maximum. */
internal fun argmax(m: Matrix, i: Int): Int {
    val r = m.off + i * m.cols
    var best = 0
    for (j in 0 until m.cols) if (m.data[r + j] > m.data[r + best]) best = j
    return best
}
