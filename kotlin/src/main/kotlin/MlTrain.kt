package zmqnode.ml

// The trainer's side of a SUB_TRAIN job (docs/TRAINING.md §4;
// zmqnode/ml/training.py train_chunk, distributed.run_chunk; go/ml/train.go)
// and the leader's average (§5).

/** What a trainer returns for one chunk and round. */
class ChunkResult(val params: FloatArray, val nSamples: Int, val loss: Double)

object Chunks {
    /**
     * The network a chunk trains, rebuilt from its shapes and the resolved
     * options (a job carries no architecture of its own).
     */
    @JvmStatic
    fun architecture(x: Matrix, y: Matrix, o: TrainOptions): Architecture {
        if (o.task == null || o.task == Tasks.CLASSIFICATION) {
            throw BadOptionsException("a chunk is trained with resolved options: task must not be null")
        }
        if (x.rows != y.rows) {
            throw BadInputException("a chunk needs 2-D x and y with the same rows, got (${x.rows}, ${x.cols}) and (${y.rows}, ${y.cols})")
        }
        if (o.task != Tasks.REGRESSION && (o.task == Tasks.BINARY) != (y.cols == 1)) {
            throw BadInputException("task '${o.task}' does not fit targets with ${y.cols} column(s)")
        }
        return Architecture.forTask(x.cols, o.hiddenLayers.toIntArray(), y.cols, o.activation, o.task)
    }

    /**
     * training.train_chunk: the SUB_TRAIN work. `epochs` local epochs (the
     * options' schedule for round when epochs <= 0) of minibatch Adam on
     * (x, y) from params at the round's learning rate, shuffled by the
     * generator of (seed, 1, round, chunk). Deterministic in its arguments.
     */
    @JvmStatic
    @JvmOverloads
    fun train(params: FloatArray, x: Matrix, y: Matrix, o: TrainOptions, round: Int, chunk: Int, epochs: Int = 0): ChunkResult {
        if (x.rows == 0 || x.cols == 0 || y.cols == 0 || x.rows != y.rows) {
            throw BadInputException("chunk needs 2-D x and y with the same, non-zero rows; got (${x.rows}, ${x.cols}), (${y.rows}, ${y.cols})")
        }
        val a = architecture(x, y, o)
        val e = if (epochs <= 0) o.epochsInRound(round) else epochs
        if (params.size != a.nParams) {
            throw BadInputException("parameters have ${params.size} values; a ${a.describe()} network needs ${a.nParams}")
        }
        val g = Generator.forStream(o.seed, Generator.STREAM_TRAIN, round, chunk)
        val r = fit(a, params, x, y, e, o.batchSize, o.learningRateInRound(round), o.l2, g)
        if (!isFinite(r.loss) || !allFinite(r.params)) {
            throw TrainingException("training diverged on chunk $chunk in round $round (loss ${pyFloatStr(r.loss)}); try a smaller learning_rate")
        }
        return ChunkResult(r.params, x.rows, r.loss)
    }

    /** distributed.run_chunk: train() for a SUB_TRAIN job as it arrives, options as the job's decoded JSON object. */
    @JvmStatic
    fun run(params: FloatArray, x: Matrix, y: Matrix, options: Any?, round: Int, chunk: Int): ChunkResult =
        train(params, x, y, TrainOptions.fromJson(options), round, chunk, 0)

    /**
     * training.average (FedAvg): parameters weighted by each chunk's rows,
     * summed in float64 in chunk order, rounded once to float32 (bit for bit
     * numpy's).
     */
    @JvmStatic
    fun average(results: List<ChunkResult>): FloatArray {
        val used = results.filter { it.nSamples > 0 }
        if (used.isEmpty()) throw TrainingException("no chunk trained on any rows; nothing to average")
        val size = used[0].params.size
        val acc = DoubleArray(size)
        var total = 0L
        for (r in used) {
            if (r.params.size != size) {
                throw TrainingException("chunk results disagree on the parameter count (${r.params.size} vs $size)")
            }
            val n = r.nSamples.toDouble()
            for (i in 0 until size) acc[i] += n * r.params[i].toDouble()
            total += r.nSamples
        }
        val t = total.toDouble()
        return FloatArray(size) { (acc[it] / t).toFloat() }
    }
}

internal fun isFinite(v: Double): Boolean = !v.isNaN() && !v.isInfinite()

internal fun allFinite(a: FloatArray, from: Int = 0, to: Int = a.size): Boolean {
    for (i in from until to) if (a[i].isNaN() || a[i].isInfinite()) return false
    return true
}

/** A float in a message as Python's str(float) (repr), with nan/inf as Python spells them. */
internal fun pyFloatStr(v: Double): String = when {
    v.isNaN() -> "nan"
    v == Double.POSITIVE_INFINITY -> "inf"
    v == Double.NEGATIVE_INFINITY -> "-inf"
    else -> zmqnode.pyfmt.Pyfmt.floatRepr(v)
}
