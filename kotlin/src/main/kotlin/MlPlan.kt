package zmqnode.ml

// The leader's side of one training (docs/TRAINING.md §5;
// zmqnode/ml/training.py TrainingPlan; go/ml/plan.go): rounds of model
// averaging, validation and early stopping, then the model. A driver runs
// each round's jobs locally (train) or as SUB_TRAIN jobs on trainers of any
// implementation:
//
//   val plan = TrainingPlan.create(x, y, opts, Problems.chunkCount(rows, trainers))
//   while (!plan.done) {
//       val results = plan.jobs().map { ... Chunks.train(...) }   // in chunk order
//       plan.finishRound(results)
//   }
//   val model = plan.model()

/** One SUB_TRAIN job: train chunk chunkIndex from params for epochs. */
class RoundJob(val roundIndex: Int, val chunkIndex: Int, val epochs: Int, val params: FloatArray)

/**
 * The state between rounds. Read options (task resolved: what a SUB_TRAIN
 * job's "options" carries), chunks, roundIndex, done and params; change them
 * only through finishRound. A failed finishRound leaves the plan as it was.
 * Not thread-safe.
 */
class TrainingPlan private constructor(val problem: Problem, val chunks: List<Chunk>) {
    val options: TrainOptions = problem.options
    var params: FloatArray = problem.initialParams
        private set
    var roundIndex = 0
        private set
    var done = false
        private set
    /** One entry per round: round, epochs, loss and val_* scores (LinkedHashMap in Python's key order). */
    val history = ArrayList<LinkedHashMap<String, Any?>>()

    private val hasValidation = problem.xVal.rows > 0
    private var bestParams = problem.initialParams
    private var bestRound = -1
    private var bestLoss = Double.POSITIVE_INFINITY
    private var roundsSinceBest = 0

    /** This round's jobs, one per chunk (none once done). */
    fun jobs(): List<RoundJob> {
        if (done) return emptyList()
        val epochs = options.epochsInRound(roundIndex)
        return chunks.map { RoundJob(roundIndex, it.index, epochs, params) }
    }

    /**
     * Averages this round's results (in chunk order), validates and decides;
     * true when training is done. Throws TrainingException.
     */
    fun finishRound(results: List<ChunkResult>): Boolean {
        if (done) throw TrainingException("training is already finished")
        if (results.size != chunks.size) {
            throw TrainingException("round $roundIndex needs ${chunks.size} results, got ${results.size}")
        }
        val arch = problem.arch
        for ((c, r) in results.withIndex()) {
            if (r.params.size != arch.nParams) {
                throw TrainingException("chunk $c returned ${r.params.size} parameters; the ${arch.describe()} network has ${arch.nParams}")
            }
        }
        val averaged = Chunks.average(results)
        if (!allFinite(averaged)) throw TrainingException("training diverged in round $roundIndex; try a smaller learning_rate")
        var total = 0L
        var weighted = 0.0
        for (r in results) {
            total += r.nSamples
            weighted += r.nSamples.toDouble() * r.loss
        }
        val trainLoss = weighted / total.toDouble()
        var scores = Scores(0.0, 0.0, 0.0)
        if (hasValidation) scores = evaluate(arch, averaged, problem.xVal, problem.yVal)
        if (!isFinite(trainLoss) || !isFinite(scores.loss) || !isFinite(scores.accuracy) || !isFinite(scores.r2)) {
            throw TrainingException("training diverged in round $roundIndex (loss ${pyFloatStr(trainLoss)}, validation loss " +
                "${pyFloatStr(scores.loss)}); try a smaller learning_rate")
        }
        // Nothing above changed the plan: a failed round leaves it as it was.
        val r = roundIndex
        val epochs = Math.min(options.epochs, (r + 1) * options.epochsPerRound)
        val entry = LinkedHashMap<String, Any?>()
        entry["round"] = r.toLong()
        entry["epochs"] = epochs.toLong()
        entry["loss"] = round6(trainLoss)
        params = averaged
        if (hasValidation) {
            entry["val_loss"] = round6(scores.loss)
            if (problem.task == Tasks.REGRESSION) entry["val_r2"] = round6(scores.r2)
            else entry["val_accuracy"] = round6(scores.accuracy)
            if (scores.loss < bestLoss - IMPROVEMENT_TOLERANCE) {
                bestLoss = scores.loss
                bestParams = averaged
                bestRound = r
                roundsSinceBest = 0
            } else {
                roundsSinceBest++
            }
        } else {
            bestParams = averaged
            bestRound = r
        }
        history.add(entry)
        roundIndex++
        val stopEarly = hasValidation && options.patience > 0 && roundsSinceBest >= options.patience
        done = stopEarly || roundIndex >= options.nRounds
        return done
    }

    /**
     * The trained model: the best validation round's parameters, else the
     * last's; created_by is {"software": "zmqnode"} only (no time, no node:
     * the same TRAIN gives the same bytes whichever node led it). Column
     * names are the caller's to add (model.copy(features = ..., targets = ...)).
     */
    fun model(): Model {
        if (!done) throw TrainingException("training is not finished")
        val p = problem
        val (ws, bs) = p.arch.unflatten(bestParams.copyOf())
        val best = history[bestRound]
        val fin = LinkedHashMap<String, Any?>()
        for ((k, v) in best) if (k != "round" && k != "epochs") fin[k] = v
        val rows = LinkedHashMap<String, Any?>()
        rows["train"] = p.nTrain.toLong()
        rows["validation"] = p.xVal.rows.toLong()
        val training = LinkedHashMap<String, Any?>()
        training["options"] = options.toMap()
        training["rows"] = rows
        training["chunks"] = chunks.map { it.x.rows.toLong() }
        training["rounds"] = history.map { LinkedHashMap(it) }
        training["rounds_run"] = roundIndex.toLong()
        training["best_round"] = bestRound.toLong()
        training["stopped_early"] = roundIndex < options.nRounds
        training["final"] = fin
        val createdBy = LinkedHashMap<String, Any?>()
        createdBy["software"] = "zmqnode"
        val m = Model(
            task = p.task, hiddenActivation = p.arch.hiddenActivation,
            weights = ws.map { Matrix.of(it.rows, it.cols, it.toFloatArray()) },
            biases = bs.map { it.toFloatArray() },
            inputMean = p.inputMean, inputStd = p.inputStd, classes = p.classes,
            outputMean = p.outputMean, outputStd = p.outputStd,
            training = training, createdBy = createdBy
        )
        m.validate()
        return m
    }

    companion object {
        /** A validation loss must drop by more than this to count as an improvement (scikit-learn's tol). */
        const val IMPROVEMENT_TOLERANCE = 1e-4

        /**
         * Prepares the problem and splits it into nChunks chunks (fewer if
         * there are fewer training rows). Throws BadInputException or
         * BadOptionsException.
         */
        @JvmStatic
        fun create(x: Matrix, y: Labels, o: TrainOptions, nChunks: Int): TrainingPlan {
            val p = Problems.prepare(x, y, o)
            val chunks = Problems.splitChunks(p, nChunks)
            p.rows = null // the chunks hold every training row now
            return TrainingPlan(p, chunks)
        }

        /** training.train: the whole loop locally, chunk by chunk, exactly as a cluster with nTrainers trainers would. */
        @JvmStatic
        fun train(x: Matrix, y: Labels, o: TrainOptions, nTrainers: Int): Model {
            val plan = create(x, y, o, nTrainers)
            while (!plan.done) {
                val results = plan.jobs().map { j ->
                    val c = plan.chunks[j.chunkIndex]
                    Chunks.train(j.params, c.x, c.y, plan.options, j.roundIndex, c.index, j.epochs)
                }
                plan.finishRound(results)
            }
            return plan.model()
        }
    }
}
