// The node's view of zmqnode.ml: model files parsed into ServedModel
// (registry.py listing_summary, serving.py's forward passes, INFO's metadata).
package zmqnode.node

import zmqnode.ml.BadInputException
import zmqnode.ml.Matrix
import zmqnode.ml.MlException
import zmqnode.ml.Model
import zmqnode.ml.ModelFile
import zmqnode.wire.Json
import zmqnode.wire.JsonObject

class MlServedModel(val model: Model) : ServedModel {
    override val nInputs: Int get() = model.nInputs
    override val classes: List<Any?> = model.classes.map { NodeModels.jsonValue(it) }

    override fun classify(x: FloatArray, rows: Int, proba: Boolean): Pair<LongArray, FloatArray?> {
        val (idx, p) = model.classify(Matrix(rows, model.nInputs, x), proba)
        return Pair(idx, p?.toFloatArray())
    }

    override fun values(x: FloatArray, rows: Int): Pair<FloatArray, Int> {
        val v = model.values(Matrix(rows, model.nInputs, x))
        return Pair(v.toFloatArray(), v.cols)
    }

    override fun metadata(): Any? = NodeModels.jsonValue(model.metadataDocument())

    override fun listingSummary(): JsonObject = NodeModels.listingSummary(model)
}

object NodeModels {
    /** Model.summary's key order (model_file.py), then listing_summary's inputs and outputs. */
    private val summaryKeys = listOf("task", "layer_sizes", "hidden_activation", "output_activation", "input_columns",
        "classes", "output_columns", "features", "targets", "rounds_run", "best_round", "stopped_early", "final", "epochs")

    /** The model file parser. */
    fun parser(): ((ByteArray) -> Any)? = { data -> MlServedModel(ModelFile.read(data)) }

    fun isBadInput(e: Throwable): Boolean = e is BadInputException

    /** An ml error's text (Python's, without a kind prefix). */
    fun message(e: Throwable): String = if (e is MlException) e.message ?: "" else e.message ?: e.toString()

    /** registry.py listing_summary(model), keys in Python's order. */
    fun listingSummary(m: Model): JsonObject {
        val s = m.summary()
        val o = JsonObject()
        for (k in summaryKeys) if (s.containsKey(k)) o[k] = jsonValue(s[k])
        o["inputs"] = m.nInputs.toLong()
        o["outputs"] = m.nOutputs.toLong()
        return o
    }

    /** Maps become objects with sorted keys (what Python dicts read from a sort_keys model file hold). */
    fun jsonValue(v: Any?): Any? = when (v) {
        is JsonObject -> {
            val o = JsonObject()
            for (k in v.keys.sortedWith(Comparator { a, b -> Json.compareCodePoints(a, b) })) o[k] = jsonValue(v[k])
            o
        }
        is Map<*, *> -> {
            val o = JsonObject()
            for (k in v.keys.map { it.toString() }.sortedWith(Comparator { a, b -> Json.compareCodePoints(a, b) })) {
                o[k] = jsonValue(v[k])
            }
            o
        }
        is List<*> -> v.map { jsonValue(it) }
        is IntArray -> v.map { it.toLong() }
        is LongArray -> v.toList()
        is Int -> v.toLong()
        else -> v
    }
}
