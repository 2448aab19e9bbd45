package zmqnode.ml

// zmqnode/ml/model_file.py's Model (docs/FORMAT.md; go/ml/model.go): a
// trained network with what it needs to predict and describe itself.

/**
 * A trained model. Build one with the constructor and call validate()
 * (Model.read and TrainingPlan.model do): a validated Model is always usable.
 * Immutable by convention once shared (nodes serve it concurrently): never
 * write into its arrays.
 *
 * classes are the original label values, sorted: Long, Double, String or
 * Boolean (JSON's types as Python reads them: 1 and 1.0 differ). training
 * and createdBy are the informative JSON objects of FORMAT.md §3 as decoded
 * (LinkedHashMap, numbers as wire JsonNumber or Long/Double) so they
 * round-trip exactly. features/targets are the client's column names, empty
 * when it sent none.
 */
data class Model(
    val task: String,
    val hiddenActivation: String,
    val weights: List<Matrix>,
    val biases: List<FloatArray>,
    val inputMean: FloatArray,
    val inputStd: FloatArray,
    val classes: List<Any> = emptyList(),
    val outputMean: FloatArray? = null,
    val outputStd: FloatArray? = null,
    val training: Map<String, Any?> = LinkedHashMap(),
    val createdBy: Map<String, Any?> = LinkedHashMap(),
    val features: List<String> = emptyList(),
    val targets: List<String> = emptyList()
) {
    /** (inputs, hidden..., outputs). */
    val layerSizes: IntArray get() = IntArray(weights.size + 1) { if (it == 0) weights[0].rows else weights[it - 1].cols }
    val outputActivation: String get() = Tasks.outputActivation(task) ?: "linear"
    val nInputs: Int get() = weights[0].rows
    /** The network's output width (regression: output columns). */
    val nOutputs: Int get() = weights[weights.size - 1].cols

    private fun biasMatrices(): List<Matrix> = biases.map { Matrix(1, it.size, it, 0) }

    /** model_file._validate; throws ModelFormatException saying what is wrong. */
    fun validate() {
        if (Tasks.outputActivation(task) == null) {
            throw ModelFormatException("unknown task ${pyRepr(task)}; expected one of binary, multiclass, regression")
        }
        if (hiddenActivation !in Tasks.HIDDEN_ACTIVATIONS) {
            throw ModelFormatException("unknown hidden activation ${pyRepr(hiddenActivation)}; expected one of " +
                Tasks.HIDDEN_ACTIVATIONS.joinToString(", "))
        }
        if (weights.isEmpty() || weights.size != biases.size) {
            throw ModelFormatException("a model needs as many biases as weights (at least one layer), got " +
                "${weights.size} weights and ${biases.size} biases")
        }
        for ((i, w) in weights.withIndex()) {
            if (biases[i].size != w.cols) {
                throw ModelFormatException("layer $i: weight has ${w.cols} outputs but bias has ${biases[i].size} values")
            }
            if (i > 0 && w.rows != weights[i - 1].cols) {
                throw ModelFormatException("layer $i: weight takes ${w.rows} inputs but layer ${i - 1} has ${weights[i - 1].cols} outputs")
            }
            if (!allFinite(w.data, w.off, w.off + w.size)) throw ModelFormatException("layers.$i.weight contains NaN or infinite values")
            if (!allFinite(biases[i])) throw ModelFormatException("layers.$i.bias contains NaN or infinite values")
        }
        checkNorm("input", inputMean, inputStd, nInputs)
        checkColumnNames("features", features, nInputs)
        checkColumnNames("targets", targets, if (task == Tasks.REGRESSION) nOutputs else 1)
        if (task == Tasks.REGRESSION) {
            if (classes.isNotEmpty()) throw ModelFormatException("a regression model has no classes")
            if (outputMean == null || outputStd == null) throw ModelFormatException("a regression model needs output.mean and output.std")
            checkNorm("output", outputMean, outputStd, nOutputs)
            return
        }
        if (outputMean != null || outputStd != null) throw ModelFormatException("a classification model has no output normalization")
        val k = classes.size
        if (task == Tasks.BINARY && k != 2) throw ModelFormatException("a binary model needs exactly 2 classes, got $k")
        if (k < 2) throw ModelFormatException("a multiclass model needs at least 2 classes, got $k")
        val want = if (task == Tasks.BINARY) 1 else k
        if (nOutputs != want) {
            throw ModelFormatException("a $task model with $k classes needs $want network output(s), the last layer has $nOutputs")
        }
        val shown = pyRepr(classes.take(10))
        val kind = classes[0].javaClass
        val seen = HashSet<Any>()
        for (c in classes) {
            if (!(c is Long || c is Double || c is String || c is Boolean) || c.javaClass != kind) {
                throw ModelFormatException("classes must be numbers or strings of one type, got $shown")
            }
            // -0.0 and 0.0 are one value (JVM pitfall: Double.equals tells them apart).
            if (!seen.add(if (c is Double && c == 0.0) 0.0 else c)) throw ModelFormatException("classes must be distinct, got $shown")
        }
    }

    // -- prediction (FORMAT.md §5, PROTOCOL.md §5.3) --------------------------------

    /** (x - input.mean) / input.std in float32; a non-finite result is an input error naming its row. */
    private fun standardized(x: Matrix): Matrix {
        if (x.cols != nInputs) throw BadInputException("this model expects $nInputs input columns, got ${x.cols}")
        val s = Matrix(x.rows, x.cols)
        for (i in 0 until x.rows) for (j in 0 until x.cols) {
            val v = (x[i, j] - inputMean[j]) / inputStd[j]
            if (v.isNaN() || v.isInfinite()) {
                throw BadInputException("inputs contain NaN or infinite values (or values beyond float32), first at row $i")
            }
            s.data[i * x.cols + j] = v
        }
        return s
    }

    /** The last layer's output for a batch of raw rows (x: rows x inputs). */
    fun logits(x: Matrix): Matrix = outputLogits(weights, biasMatrices(), hiddenActivation, standardized(x))

    /**
     * Model.classify: each row's class as an index into classes (PREDICT's
     * "outputs") and, if proba, the class probabilities (rows x classes in
     * classes order; binary [1 - p, p]) from the same forward pass.
     */
    fun classify(x: Matrix, proba: Boolean): Pair<LongArray, Matrix?> {
        if (task == Tasks.REGRESSION) throw BadInputException("classes need a classification model; this one does regression")
        val z = logits(x)
        val index = LongArray(z.rows) { i ->
            if (task == Tasks.BINARY) (if (z.data[i] > 0f) 1L else 0L) else argmax(z, i).toLong()
        }
        return Pair(index, if (proba) probabilities(z) else null)
    }

    private fun probabilities(z: Matrix): Matrix {
        val p = applyOutput(z, outputActivation)
        if (task != Tasks.BINARY) return p
        val two = Matrix(z.rows, 2)
        for (i in 0 until z.rows) {
            val v = p.data[i]
            two.data[2 * i] = 1.0f - v
            two.data[2 * i + 1] = v
        }
        return two
    }

    /**
     * Model.predict for a regression model: z * output.std + output.mean
     * (float32), one column per target. PREDICT sends it as float32 [rows]
     * when the model has one target column, else [rows, k].
     */
    fun values(x: Matrix): Matrix {
        if (task != Tasks.REGRESSION) throw BadInputException("values need a regression model; this one does $task")
        val z = logits(x)
        val om = outputMean!!
        val os = outputStd!!
        for (i in 0 until z.rows) for (j in 0 until z.cols) {
            z.data[i * z.cols + j] = z.data[i * z.cols + j] * os[j] + om[j]
        }
        return z
    }

    /** Model.predict for a classification model: the class values. */
    fun labels(x: Matrix): List<Any> = classify(x, false).first.map { classes[it.toInt()] }

    /** Model.summary: a few fields for listings and replies, in Python's key order. */
    fun summary(): LinkedHashMap<String, Any?> {
        val out = LinkedHashMap<String, Any?>()
        out["task"] = task
        out["layer_sizes"] = layerSizes.map { it.toLong() }
        out["hidden_activation"] = hiddenActivation
        out["output_activation"] = outputActivation
        out["input_columns"] = nInputs.toLong()
        if (classes.isNotEmpty()) out["classes"] = ArrayList(classes) else out["output_columns"] = nOutputs.toLong()
        if (features.isNotEmpty()) out["features"] = ArrayList(features)
        if (targets.isNotEmpty()) out["targets"] = ArrayList(targets)
        for (k in listOf("rounds_run", "best_round", "stopped_early", "final")) {
            if (training.containsKey(k)) out[k] = training[k]
        }
        val rounds = training["rounds"]
        if (rounds is List<*> && rounds.isNotEmpty()) {
            val last = rounds[rounds.size - 1]
            if (last is Map<*, *>) out["epochs"] = last["epochs"]
        }
        return out
    }

    /** Model.to_bytes: the .bin file, deterministic (the same model gives Python's bytes). */
    fun toBytes(): ByteArray = ModelFile.write(this)

    /** Model.metadata_json: the "zmqnode" document. */
    fun metadataDocument(): LinkedHashMap<String, Any?> = ModelFile.metadataDocument(this)

    companion object {
        /** A column name's bound (longer is a row pasted by mistake). */
        const val MAX_COLUMN_NAME_CHARS = 256

        /** Model.from_bytes: parse and fully validate a model file; throws ModelFormatException. */
        @JvmStatic
        fun read(data: ByteArray): Model = ModelFile.read(data)

        private fun checkNorm(name: String, mean: FloatArray, std: FloatArray, width: Int) {
            if (mean.size != width || std.size != width) {
                throw ModelFormatException("$name.mean and $name.std must have shape [$width], got [${mean.size}] and [${std.size}]")
            }
            for (i in mean.indices) {
                if (mean[i].isNaN() || mean[i].isInfinite() || std[i].isNaN() || std[i].isInfinite() || !(std[i] > 0f)) {
                    throw ModelFormatException("$name.mean/$name.std must be finite with std > 0")
                }
            }
        }

        /** model_file.check_column_names: names is empty, or width distinct strings of 1 to 256 code points. */
        @JvmStatic
        fun checkColumnNames(what: String, names: List<String>, width: Int) {
            if (names.isEmpty()) return
            if (names.size != width) throw ModelFormatException("$what names ${names.size} columns; the model has $width")
            for (n in names) {
                val len = n.codePointCount(0, n.length)
                if (len == 0 || len > MAX_COLUMN_NAME_CHARS) {
                    throw ModelFormatException("$what: each column name must be a string of 1 to $MAX_COLUMN_NAME_CHARS " +
                        "characters, got ${truncateCodePoints(pyRepr(n), 80)}")
                }
            }
            if (names.toSet().size != names.size) {
                throw ModelFormatException("$what: column names must be distinct, got ${pyRepr(names.take(10))}")
            }
        }

        internal fun truncateCodePoints(s: String, n: Int): String =
            if (s.codePointCount(0, s.length) <= n) s else s.substring(0, s.offsetByCodePoints(0, n))
    }
}
