package zmqnode.ml

import zmqnode.wire.Json
import zmqnode.wire.JsonObject

/**
 * zmqnode/ml/options.py's TrainOptions (docs/PROTOCOL.md §5.1, go/ml/options.go):
 * how to train, as a TRAIN's and a SUB_TRAIN job's "options" carry it.
 * task null means infer from the labels. The three real-valued options
 * remember whether they arrived as JSON integers (learning_rate: 1): Python
 * keeps the int and writes it back as 1, not 1.0, in the model file.
 * Immutable: change with copy().
 */
data class TrainOptions(
    val hiddenLayers: List<Int> = listOf(64),
    val activation: String = "relu",
    val epochs: Int = 200,
    val learningRate: Double = 0.02,
    val batchSize: Int = 200,
    val l2: Double = 5e-4,
    val seed: Long = 0,
    val task: String? = null,
    val validationFraction: Double = 0.1,
    val patience: Int = 10,
    val epochsPerRound: Int = 10,
    val intLearningRate: Boolean = false,
    val intL2: Boolean = false,
    val intValidationFraction: Boolean = false
) {
    /** The number of rounds (local epochs on every chunk, then averaging). */
    val nRounds: Int get() = (epochs + epochsPerRound - 1) / epochsPerRound

    /** The local epochs of round r; the last round takes the remainder. */
    fun epochsInRound(r: Int): Int {
        if (r < 0 || r >= nRounds) throw BadOptionsException("round $r is outside 0..${nRounds - 1}")
        return Math.min(epochsPerRound, epochs - r * epochsPerRound)
    }

    /** learning_rate decayed linearly to FINAL_LEARNING_RATE_FRACTION of it by the last round. */
    fun learningRateInRound(round: Int): Double {
        val n = nRounds
        if (n == 1) return learningRate
        val r = if (round < 0) 0 else round
        val progress = Math.min(1.0, r.toDouble() / (n - 1).toDouble())
        val one = 1.0
        val fin = FINAL_LEARNING_RATE_FRACTION
        return learningRate * (one - (one - fin) * progress)
    }

    /** TrainOptions.to_dict: every option, in Python's declaration order (PyJson sorts them). */
    fun toMap(): LinkedHashMap<String, Any?> {
        val m = LinkedHashMap<String, Any?>()
        m["hidden_layers"] = hiddenLayers.map { it.toLong() }
        m["activation"] = activation
        m["epochs"] = epochs.toLong()
        m["learning_rate"] = if (intLearningRate) learningRate.toLong() else learningRate
        m["batch_size"] = batchSize.toLong()
        m["l2"] = if (intL2) l2.toLong() else l2
        m["seed"] = seed
        m["task"] = task
        m["validation_fraction"] = if (intValidationFraction) validationFraction.toLong() else validationFraction
        m["patience"] = patience.toLong()
        m["epochs_per_round"] = epochsPerRound.toLong()
        return m
    }

    /** to_dict as json.dumps(sort_keys=True, separators=(",", ":")). */
    fun toJson(): String = PyJson.encodeToString(toMap())

    companion object {
        const val FINAL_LEARNING_RATE_FRACTION = 0.1
        const val MAX_HIDDEN_LAYERS = 16
        const val MAX_LAYER_WIDTH = 4096
        const val MAX_EPOCHS = 100000
        const val MAX_BATCH_SIZE = 1 shl 20
        const val MAX_SEED = Long.MAX_VALUE

        /** The tasks a client may ask for. */
        @JvmField val TASK_CHOICES = listOf(Tasks.BINARY, Tasks.MULTICLASS, Tasks.REGRESSION, Tasks.CLASSIFICATION)

        @JvmField val OPTION_NAMES = listOf("activation", "batch_size", "epochs", "epochs_per_round",
            "hidden_layers", "l2", "learning_rate", "patience", "seed", "task", "validation_fraction")

        /** TrainOptions() in Python. */
        @JvmStatic
        fun defaults(): TrainOptions = TrainOptions()

        /** TrainOptions.from_dict of JSON bytes. */
        @JvmStatic
        fun parse(raw: ByteArray): TrainOptions {
            val v = try {
                Json.parse(raw)
            } catch (e: Exception) {
                throw BadOptionsException("options are not JSON: ${e.message}")
            }
            return fromJson(v)
        }

        private fun bad(msg: String): Nothing = throw BadOptionsException(msg)

        /**
         * TrainOptions.from_dict of a decoded value (a wire JsonObject, or a
         * Map<String, Any?>; numbers as JsonNumber, Long/Int or Double);
         * absent keys take the defaults. Throws BadOptionsException with
         * Python's messages.
         */
        @JvmStatic
        fun fromJson(v: Any?): TrainOptions {
            val d: Map<String, Any?> = when (v) {
                is JsonObject -> {
                    val m = LinkedHashMap<String, Any?>()
                    for (k in v.keys) m[k] = v.get(k)
                    m
                }
                is Map<*, *> -> v.entries.associate { (it.key as String) to it.value }
                else -> bad("options must be an object, got ${pyTypeName(v)}")
            }
            val unknown = d.keys.filter { it !in OPTION_NAMES }.map { pyRepr(it) }
            if (unknown.isNotEmpty()) {
                bad("unknown option(s) ${unknown.sorted().joinToString(", ")}; known options: ${OPTION_NAMES.joinToString(", ")}")
            }
            var o = TrainOptions()
            if ("hidden_layers" in d) {
                val h = d["hidden_layers"]
                val list = h as? List<*> ?: bad("hidden_layers must be a list of layer widths, got ${pyRepr(h)}")
                val widths = list.map { jsonInt(it) ?: bad("hidden_layers must be a list of integers, got ${pyTuple(list)}") }
                if (widths.size > MAX_HIDDEN_LAYERS) bad("hidden_layers has ${widths.size} layers; at most $MAX_HIDDEN_LAYERS")
                for (w in widths) {
                    if (w < 1 || w > MAX_LAYER_WIDTH) bad("every hidden layer width must be 1..$MAX_LAYER_WIDTH, got ${pyRepr(h)}")
                }
                o = o.copy(hiddenLayers = widths.map { it.toInt() })
            }
            if ("activation" in d) {
                val a = d["activation"]
                if (a !is String || a !in Tasks.HIDDEN_ACTIVATIONS) {
                    bad("activation must be one of ${Tasks.HIDDEN_ACTIVATIONS.joinToString(", ")}; got ${pyRepr(a)}")
                }
                o = o.copy(activation = a)
            }
            fun intOption(name: String, low: Long, high: Long): Long? {
                if (name !in d) return null
                val raw = d[name]
                val n = jsonInt(raw)
                if (n == null || n < low || n > high) bad("$name must be an integer in $low..$high, got ${pyRepr(raw)}")
                return n
            }
            intOption("epochs", 1, MAX_EPOCHS.toLong())?.let { o = o.copy(epochs = it.toInt()) }
            intOption("batch_size", 1, MAX_BATCH_SIZE.toLong())?.let { o = o.copy(batchSize = it.toInt()) }
            intOption("seed", 0, MAX_SEED)?.let { o = o.copy(seed = it) }
            intOption("patience", 0, MAX_EPOCHS.toLong())?.let { o = o.copy(patience = it.toInt()) }
            intOption("epochs_per_round", 1, MAX_EPOCHS.toLong())?.let { o = o.copy(epochsPerRound = it.toInt()) }
            fun realOption(name: String, bounds: String, low: Double, high: Double, openLow: Boolean): Pair<Double, Boolean>? {
                if (name !in d) return null
                val raw = d[name]
                val x = jsonReal(raw)
                if (x == null || x.first > high || x.first < low || (openLow && x.first == low)) {
                    bad("$name must be a number in $bounds, got ${pyRepr(raw)}")
                }
                return x
            }
            realOption("learning_rate", "(0, 10]", 0.0, 10.0, true)?.let { o = o.copy(learningRate = it.first, intLearningRate = it.second) }
            realOption("l2", "[0, 1000]", 0.0, 1e3, false)?.let { o = o.copy(l2 = it.first, intL2 = it.second) }
            realOption("validation_fraction", "[0, 0.5]", 0.0, 0.5, false)?.let {
                o = o.copy(validationFraction = it.first, intValidationFraction = it.second)
            }
            val t = d["task"]
            if (t != null) {
                if (t !is String || t !in TASK_CHOICES) {
                    bad("task must be one of ${TASK_CHOICES.joinToString(", ")} or null (infer), got ${pyRepr(t)}")
                }
                o = o.copy(task = t)
            }
            return o
        }
    }
}
