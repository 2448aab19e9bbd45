// zmqnode.ml behind the training package's PlanMaker, PlanHandle and
// ChunkRunner (go/training request.go MakePlan, trainer.go runChunk): what
// a node wires by default.
package zmqnode.training

import zmqnode.ml.BadInputException
import zmqnode.ml.ChunkResult
import zmqnode.ml.Chunks
import zmqnode.ml.Labels
import zmqnode.ml.Matrix
import zmqnode.ml.TrainOptions
import zmqnode.ml.TrainingPlan
import zmqnode.ml.Tasks
import zmqnode.wire.JsonObject

/** The option names in TrainOptions.to_dict's order (what a job's "options" carries). */
private val OPTION_ORDER = listOf("hidden_layers", "activation", "epochs", "learning_rate", "batch_size",
    "l2", "seed", "task", "validation_fraction", "patience", "epochs_per_round")

/** TrainOptions.to_dict as jobs carry it: every option, in Python's field order. */
fun optionsObject(o: TrainOptions): JsonObject {
    val m = o.toMap()
    val obj = JsonObject()
    for (k in OPTION_ORDER) obj[k] = m[k]
    return obj
}

/**
 * request.make_plan: resolve class names, check the shapes the plan cannot
 * see, and make the plan (slow: off the loop). Throws BadInputException /
 * BadOptionsException with Python's messages.
 */
fun makePlan(r: TrainRequest, o: TrainOptions, nChunks: Int): TrainingPlan {
    var classLabels: List<String>? = null
    var codes: LongArray? = null
    if (r.classNames != null) {
        codes = r.y.toLongs()
        // The index check comes first (Python's order), with cols fixed below.
        Labels.fromClassIndices(codes, r.classNames)
        classLabels = r.classNames
    }
    checkPlanShapes(r, o.task == Tasks.REGRESSION)
    val x = Matrix.of(r.x.shape[0], r.x.shape[1], r.x.toFloat32())
    val yCols = if (r.y.shape.size == 2) r.y.shape[1] else 0
    val labels = when {
        // Python: np.asarray(class_names)[y.reshape(-1)], one name per row (1-D whatever y's shape).
        classLabels != null -> Labels.fromClassIndices(codes!!, classLabels, 0)
        r.y.dtype == "int32" || r.y.dtype == "int64" -> Labels.ofInts(r.y.toLongs(), r.y.shape[0], yCols)
        r.y.dtype == "float32" || r.y.dtype == "float64" -> Labels.ofFloats(r.y.toDoubles(), r.y.shape[0], yCols)
        else -> throw BadInputException("outputs of dtype ${r.y.dtype}")
    }
    return TrainingPlan.create(x, labels, o, nChunks)
}

/** A zmqnode.ml TrainingPlan as the coordinator drives it. */
class MlPlanHandle(val plan: TrainingPlan) : PlanHandle {
    private val xs = HashMap<Int, Rows>()
    private val ys = HashMap<Int, Rows>()
    override val nChunks: Int get() = plan.chunks.size
    override val params: FloatArray get() = plan.params
    override fun chunkX(chunk: Int): Rows = xs.getOrPut(chunk) { rowsOf(plan.chunks[chunk].x) }
    override fun chunkY(chunk: Int): Rows = ys.getOrPut(chunk) { rowsOf(plan.chunks[chunk].y) }
    override val optionsObject: JsonObject = optionsObject(plan.options)
    override val nParams: Long get() = plan.problem.arch.nParams.toLong()
    override val describe: String get() = plan.problem.arch.describe()
    override val nRows: Int get() = plan.problem.nTrain + plan.problem.xVal.rows
    override val nInputs: Int get() = plan.problem.arch.layerSizes[0]
    override fun finishRound(results: List<ChunkOutcome>): Boolean =
        plan.finishRound(results.map { ChunkResult(it.params, it.nSamples, it.loss) })
    override val roundIndex: Int get() = plan.roundIndex
    override val nRounds: Int get() = plan.options.nRounds
    override val epochs: Int get() = plan.options.epochs
    override val epochsPerRound: Int get() = plan.options.epochsPerRound
    override fun lastMetrics(): Any? = plan.history.lastOrNull()
    override fun model(features: List<String>?, targets: List<String>?): TrainedModel {
        val m = plan.model().copy(features = features ?: emptyList(), targets = targets ?: emptyList())
        m.validate()
        return TrainedModel(m.toBytes(), m.summary())
    }

    private fun rowsOf(m: Matrix) = Rows(m.rows, m.cols, m.toFloatArray())
}

/** The coordinator's plans from zmqnode.ml. */
object MlPlanMaker : PlanMaker {
    override fun parseOptions(options: JsonObject): Any = TrainOptions.fromJson(options)
    override fun makePlan(request: TrainRequest, options: Any, nChunks: Int): PlanHandle =
        MlPlanHandle(zmqnode.training.makePlan(request, options as TrainOptions, nChunks))
}

/** distributed.run_chunk with zmqnode.ml (the trainer's default runner). */
object MlChunkRunner : ChunkRunner {
    override fun run(job: Job, x: TrainArray, y: TrainArray): ChunkOutcome {
        // from_dict comes first in Python: bad options win over bad shapes.
        val o = TrainOptions.fromJson(job.options)
        val params = job.params.toFloat32()
        val yShape = if (y.shape.size == 1) listOf(y.shape[0], 1) else y.shape
        if (x.shape.size != 2 || yShape.size != 2 || x.shape[0] != yShape[0] || x.shape[0] == 0) {
            throw BadInputException("chunk needs 2-D x and y with the same, non-zero rows; got " +
                "${pyShape(x.shape)}, ${pyShape(yShape)}")
        }
        val xm = Matrix.of(x.shape[0], x.shape[1], x.toFloat32())
        val ym = Matrix.of(yShape[0], yShape[1], y.toFloat32())
        val r = Chunks.train(params, xm, ym, o, job.round, job.chunk, 0)
        return ChunkOutcome(r.params, r.nSamples, r.loss)
    }
}
