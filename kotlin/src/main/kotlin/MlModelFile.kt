package zmqnode.ml

import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.security.MessageDigest
import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

// The model file of docs/FORMAT.md (go/ml/modelfile.go): a safetensors file
// whose header is written in model_file.py's canonical order, so the same
// model gives the same bytes in every implementation (the Raft log and the
// registry identify models by the file's SHA-256). Every number in it is
// little-endian (JVM pitfall: ByteBuffer defaults to big-endian).

object ModelFile {
    const val FORMAT_NAME = "zmqnode.mlp"
    const val FORMAT_VERSION = 1
    const val METADATA_KEY = "zmqnode"
    const val VERSION_KEY = "format_version"
    const val MAX_HEADER_BYTES = 16 shl 20

    private class NamedTensor(val name: String, val shape: IntArray, val data: FloatArray, val off: Int, val size: Int)

    /** The tensors in name order (code point = byte order): the data buffer's and the checksum's order. */
    private fun tensors(m: Model): List<NamedTensor> {
        val ts = ArrayList<NamedTensor>()
        for ((i, w) in m.weights.withIndex()) {
            ts.add(NamedTensor("layers.$i.weight", intArrayOf(w.rows, w.cols), w.data, w.off, w.size))
            val b = m.biases[i]
            ts.add(NamedTensor("layers.$i.bias", intArrayOf(b.size), b, 0, b.size))
        }
        ts.add(NamedTensor("input.mean", intArrayOf(m.inputMean.size), m.inputMean, 0, m.inputMean.size))
        ts.add(NamedTensor("input.std", intArrayOf(m.inputStd.size), m.inputStd, 0, m.inputStd.size))
        val om = m.outputMean
        val os = m.outputStd
        if (om != null && os != null) {
            ts.add(NamedTensor("output.mean", intArrayOf(om.size), om, 0, om.size))
            ts.add(NamedTensor("output.std", intArrayOf(os.size), os, 0, os.size))
        }
        ts.sortWith(Comparator { a, b -> CODE_POINT_ORDER.compare(a.name, b.name) })
        return ts
    }

    private fun float32Bytes(a: FloatArray, off: Int, n: Int): ByteArray {
        val buf = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN)
        for (i in 0 until n) buf.putFloat(a[off + i])
        return buf.array()
    }

    private fun tensorsSha256(ts: List<NamedTensor>): String {
        val h = MessageDigest.getInstance("SHA-256")
        for (t in ts) h.update(float32Bytes(t.data, t.off, t.size))
        return h.digest().joinToString("") { String.format("%02x", it.toInt() and 0xff) }
    }

    /** Model.metadata_json: the "zmqnode" document (PyJson sorts its keys). */
    fun metadataDocument(m: Model): LinkedHashMap<String, Any?> {
        val arch = LinkedHashMap<String, Any?>()
        arch["layer_sizes"] = m.layerSizes.map { it.toLong() }
        arch["hidden_activation"] = m.hiddenActivation
        arch["output_activation"] = m.outputActivation
        val doc = LinkedHashMap<String, Any?>()
        doc["format"] = FORMAT_NAME
        doc["format_version"] = FORMAT_VERSION.toLong()
        doc["task"] = m.task
        doc["architecture"] = arch
        doc["classes"] = ArrayList(m.classes)
        doc["tensors_sha256"] = tensorsSha256(tensors(m))
        doc["training"] = m.training
        doc["created_by"] = m.createdBy
        // Absent rather than empty: files without names stay byte-identical.
        if (m.features.isNotEmpty()) doc["features"] = m.features
        if (m.targets.isNotEmpty()) doc["targets"] = m.targets
        return doc
    }

    /**
     * Model.to_bytes: __metadata__ first, then the tensors in name order;
     * compact JSON padded with spaces to a multiple of 8; the data buffer.
     */
    fun write(m: Model): ByteArray {
        m.validate()
        val doc = try {
            PyJson.encodeToString(metadataDocument(m))
        } catch (e: ModelFormatException) {
            throw ModelFormatException("training metadata is not JSON-serializable: ${e.message}")
        }
        val fields = ArrayList<Pair<String, Any?>>()
        fields.add(Pair("__metadata__", OrderedObject(listOf(Pair(VERSION_KEY, FORMAT_VERSION.toString()), Pair(METADATA_KEY, doc)))))
        val body = java.io.ByteArrayOutputStream()
        for (t in tensors(m)) {
            val begin = body.size()
            body.write(float32Bytes(t.data, t.off, t.size))
            fields.add(Pair(t.name, OrderedObject(listOf(
                Pair("dtype", "F32"),
                Pair("shape", t.shape.map { it.toLong() }),
                Pair("data_offsets", listOf(begin.toLong(), body.size().toLong()))
            ))))
        }
        val text = StringBuilder(PyJson.encodeToString(OrderedObject(fields)))
        while (text.length % 8 != 0) text.append(' ')
        val header = text.toString().toByteArray(Charsets.UTF_8) // ASCII: every non-ASCII character is escaped
        val out = ByteBuffer.allocate(8 + header.size + body.size()).order(ByteOrder.LITTLE_ENDIAN)
        out.putLong(header.size.toLong())
        out.put(header)
        out.put(body.toByteArray())
        return out.array()
    }

    private class RawTensor(val shape: IntArray, val data: FloatArray?, val dtype: String)

    private fun fields(v: Any?): LinkedHashMap<String, Any?>? = when (v) {
        is JsonObject -> { val m = LinkedHashMap<String, Any?>(); for (k in v.keys) m[k] = v.get(k); m }
        is Map<*, *> -> { val m = LinkedHashMap<String, Any?>(); for ((k, x) in v) m[k as String] = x; m }
        else -> null
    }

    private val DTYPE_SIZES = mapOf("F64" to 8, "F32" to 4, "F16" to 2, "BF16" to 2, "I64" to 8, "I32" to 4,
        "I16" to 2, "I8" to 1, "U8" to 1, "BOOL" to 1, "U16" to 2, "U32" to 4, "U64" to 8)

    /** Model.from_bytes: parse and fully validate (every check of FORMAT.md §7); throws ModelFormatException. */
    fun read(data: ByteArray): Model {
        if (data.size < 8) throw ModelFormatException("not a model file: ${data.size} bytes is too short")
        val n = ByteBuffer.wrap(data, 0, 8).order(ByteOrder.LITTLE_ENDIAN).long
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw ModelFormatException("not a model file: the first 8 bytes announce a ${java.lang.Long.toUnsignedString(n)}-byte header (garbage or another format)")
        }
        if (8 + n > data.size) {
            throw ModelFormatException("truncated model file: the header needs ${8 + n} bytes, the file has ${data.size}")
        }
        val hn = n.toInt()
        val parsed = try {
            Json.parse(data.copyOfRange(8, 8 + hn))
        } catch (e: Exception) {
            throw ModelFormatException("not a model file: the header is not safetensors JSON")
        }
        val header = fields(parsed) ?: throw ModelFormatException("not a model file: the header is not safetensors JSON")
        val meta = fields(header["__metadata__"])
        val docText = meta?.get(METADATA_KEY) as? String
            ?: throw ModelFormatException("not a zmqnode model: the safetensors metadata has no 'zmqnode' entry")
        if (meta[VERSION_KEY] != FORMAT_VERSION.toString()) {
            throw ModelFormatException("unsupported model format version ${pyRepr(meta[VERSION_KEY])}; this zmqnode reads version $FORMAT_VERSION")
        }
        val docValue = try {
            Json.parse(docText.toByteArray(Charsets.UTF_8))
        } catch (e: Exception) {
            throw ModelFormatException("the 'zmqnode' metadata is not valid JSON: ${e.message}")
        }
        @Suppress("UNCHECKED_CAST")
        val doc = plainJson(docValue) as? LinkedHashMap<String, Any?>
            ?: throw ModelFormatException("the 'zmqnode' metadata must be a JSON object")
        if (doc["format"] != FORMAT_NAME || jsonInt(doc["format_version"]) != FORMAT_VERSION.toLong()) {
            throw ModelFormatException("the 'zmqnode' metadata says format ${pyRepr(doc["format"])} version " +
                "${pyRepr(doc["format_version"])}; expected '$FORMAT_NAME' version $FORMAT_VERSION")
        }
        val tensors = readTensors(header, data, 8 + hn)
        return modelFrom(doc, tensors)
    }

    /** safetensors' own check: every tensor inside the buffer, sizes matching shapes, the buffer covered exactly. */
    private fun readTensors(header: Map<String, Any?>, data: ByteArray, bodyStart: Int): Map<String, RawTensor> {
        val bodyLen = (data.size - bodyStart).toLong()
        class Span(val name: String, val begin: Long, val end: Long)
        val spans = ArrayList<Span>()
        val out = LinkedHashMap<String, RawTensor>()
        for ((name, raw) in header) {
            if (name == "__metadata__") continue
            val info = fields(raw)
            val dtype = info?.get("dtype") as? String
            val shapeRaw = info?.get("shape") as? List<*>
            val offsRaw = info?.get("data_offsets") as? List<*>
            val shapeL = shapeRaw?.map { jsonInt(it) }
            val offs = offsRaw?.map { jsonInt(it) }
            if (dtype == null || shapeL == null || offs == null || offs.size != 2 || shapeL.any { it == null } || offs.any { it == null }) {
                throw ModelFormatException("corrupt tensor data: tensor $name has no valid dtype, shape and data_offsets")
            }
            val b = offs[0]!!
            val e = offs[1]!!
            if (b < 0 || e < b || e > bodyLen) {
                throw ModelFormatException("corrupt tensor data: tensor $name's data_offsets [$b, $e] are outside the $bodyLen-byte buffer")
            }
            var count = 1L
            val shape = IntArray(shapeL.size)
            for ((i, s) in shapeL.withIndex()) {
                if (s!! < 0 || s > bodyLen) throw ModelFormatException("corrupt tensor data: tensor $name has shape ${pyRepr(shapeL)}")
                count *= s
                shape[i] = s.toInt()
            }
            val size = DTYPE_SIZES[dtype] ?: throw ModelFormatException("corrupt tensor data: tensor $name has unknown dtype ${pyRepr(dtype)}")
            if (count * size != e - b) {
                throw ModelFormatException("corrupt tensor data: tensor $name declares ${pyRepr(shapeL)} $dtype but has ${e - b} bytes")
            }
            spans.add(Span(name, b, e))
            var values: FloatArray? = null
            if (dtype == "F32") {
                val buf = ByteBuffer.wrap(data, bodyStart + b.toInt(), (e - b).toInt()).order(ByteOrder.LITTLE_ENDIAN)
                values = FloatArray(count.toInt()) { buf.float }
            }
            out[name] = RawTensor(shape, values, dtype)
        }
        spans.sortBy { it.begin }
        var at = 0L
        for (s in spans) {
            if (s.begin != at) throw ModelFormatException("corrupt tensor data: the tensors do not cover the buffer contiguously (at ${s.name})")
            at = s.end
        }
        if (at != bodyLen) throw ModelFormatException("corrupt tensor data: ${bodyLen - at} bytes after the last tensor")
        return out
    }

    /** A JSON class as Python reads it: Long for an integer literal, Double otherwise. */
    private fun classValue(v: Any?): Any = when (v) {
        is JsonNumber -> jsonInt(v) ?: (v.literal.toDoubleOrNull() ?: throw ModelFormatException("class ${v.literal} is not a number"))
        is Long -> v
        is Int -> v.toLong()
        is Double -> v
        is String -> v
        is Boolean -> v
        else -> throw ModelFormatException("classes must be numbers or strings of one type, got ${pyRepr(v)}")
    }

    /** model_file._model_from: the document and the tensors checked against each other, then the Model validated. */
    private fun modelFrom(doc: Map<String, Any?>, tensors: Map<String, RawTensor>): Model {
        val task = doc["task"] as? String
        if (task == null || Tasks.outputActivation(task) == null) {
            throw ModelFormatException("unknown task ${pyRepr(doc["task"])}; expected one of binary, multiclass, regression")
        }
        val arch = doc["architecture"] as? Map<*, *> ?: throw ModelFormatException("metadata has no 'architecture' object")
        val rawSizes = arch["layer_sizes"] as? List<*>
        val sizes = rawSizes?.mapNotNull { s -> jsonInt(s)?.takeIf { it > 0 && it <= Int.MAX_VALUE }?.toInt() }
        if (rawSizes == null || sizes == null || rawSizes.size < 2 || sizes.size != rawSizes.size) {
            throw ModelFormatException("architecture.layer_sizes must be >= 2 positive ints, got ${pyRepr(arch["layer_sizes"])}")
        }
        val outAct = Tasks.outputActivation(task)!!
        if (arch["output_activation"] != outAct) {
            throw ModelFormatException("task ${pyRepr(task)} needs output activation ${pyRepr(outAct)}, the file says ${pyRepr(arch["output_activation"])}")
        }
        val hidden = arch["hidden_activation"] as? String
            ?: throw ModelFormatException("architecture.hidden_activation must be a string, got ${pyRepr(arch["hidden_activation"])}")
        val nLayers = sizes.size - 1
        val expected = ArrayList<String>()
        for (i in 0 until nLayers) { expected.add("layers.$i.weight"); expected.add("layers.$i.bias") }
        expected.add("input.mean")
        expected.add("input.std")
        if (task == Tasks.REGRESSION) { expected.add("output.mean"); expected.add("output.std") }
        val missing = expected.filter { it !in tensors }
        if (missing.isNotEmpty()) throw ModelFormatException("missing tensor(s): ${missing.joinToString(", ")}")
        val extra = tensors.keys.filter { it !in expected }.sortedWith(CODE_POINT_ORDER)
        if (extra.isNotEmpty()) throw ModelFormatException("unexpected tensor(s): ${extra.joinToString(", ")}")
        for (name in expected) {
            if (tensors[name]!!.dtype != "F32") throw ModelFormatException("tensor $name is ${tensors[name]!!.dtype}; expected float32 (F32)")
        }
        val weights = ArrayList<Matrix>()
        val biases = ArrayList<FloatArray>()
        for (i in 0 until nLayers) {
            val w = tensors["layers.$i.weight"]!!
            if (w.shape.size != 2 || w.shape[0] != sizes[i] || w.shape[1] != sizes[i + 1]) {
                throw ModelFormatException("layers.$i.weight has shape ${pyRepr(w.shape.map { it.toLong() })}; layer_sizes " +
                    "${pyRepr(sizes.map { it.toLong() })} need [${sizes[i]}, ${sizes[i + 1]}]")
            }
            val b = tensors["layers.$i.bias"]!!
            if (b.shape.size != 1) {
                throw ModelFormatException("layer $i: weight must be 2-D and bias 1-D, got shapes " +
                    "${pyRepr(w.shape.map { it.toLong() })} and ${pyRepr(b.shape.map { it.toLong() })}")
            }
            weights.add(Matrix.of(w.shape[0], w.shape[1], w.data!!))
            biases.add(b.data!!)
        }
        val ts = expected.sortedWith(CODE_POINT_ORDER).map { val t = tensors[it]!!; NamedTensor(it, t.shape, t.data!!, 0, t.data.size) }
        if (doc["tensors_sha256"] != tensorsSha256(ts)) {
            throw ModelFormatException("the tensors do not match tensors_sha256: the file is corrupt")
        }
        for (name in listOf("input.mean", "input.std", "output.mean", "output.std")) {
            val t = tensors[name]
            if (t != null && t.shape.size != 1) throw ModelFormatException("$name must have shape [n], got ${pyRepr(t.shape.map { it.toLong() })}")
        }
        val rawClasses = if (doc.containsKey("classes")) doc["classes"] else emptyList<Any>()
        val classList = rawClasses as? List<*> ?: throw ModelFormatException("'classes' must be a list")
        val classes = classList.map { classValue(it) }
        val training = LinkedHashMap<String, Any?>()
        val createdBy = LinkedHashMap<String, Any?>()
        for ((key, into) in listOf(Pair("training", training), Pair("created_by", createdBy))) {
            if (!doc.containsKey(key)) continue
            val v = doc[key] as? Map<*, *> ?: throw ModelFormatException("'training' and 'created_by' must be objects")
            for ((k, x) in v) into[k as String] = x
        }
        val names = HashMap<String, List<String>>()
        for (key in listOf("features", "targets")) {
            if (!doc.containsKey(key)) continue
            val list = doc[key] as? List<*> ?: throw ModelFormatException("'$key' must be a list of column names")
            names[key] = list.map {
                it as? String ?: throw ModelFormatException("$key: each column name must be a string of 1 to " +
                    "${Model.MAX_COLUMN_NAME_CHARS} characters, got ${Model.truncateCodePoints(pyRepr(it), 80)}")
            }
        }
        val m = Model(
            task = task, hiddenActivation = hidden, weights = weights, biases = biases,
            inputMean = tensors["input.mean"]!!.data!!, inputStd = tensors["input.std"]!!.data!!,
            classes = classes,
            outputMean = if (task == Tasks.REGRESSION) tensors["output.mean"]!!.data else null,
            outputStd = if (task == Tasks.REGRESSION) tensors["output.std"]!!.data else null,
            training = training, createdBy = createdBy,
            features = names["features"] ?: emptyList(), targets = names["targets"] ?: emptyList()
        )
        m.validate()
        return m
    }
}
