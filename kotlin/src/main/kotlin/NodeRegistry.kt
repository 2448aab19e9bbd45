// The replicated state machine: every committed model, by id (registry.py
// ModelRegistry, go/node/registry.go). Only the loop thread uses it.
package zmqnode.node

import zmqnode.storage.ModelStore
import zmqnode.storage.isValidModelId
import zmqnode.wire.Json
import zmqnode.wire.JsonException
import zmqnode.wire.JsonObject
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.security.MessageDigest

const val STORE_MODEL = "store_model"

fun sha256Hex(data: ByteArray): String {
    val d = MessageDigest.getInstance("SHA-256").digest(data)
    val sb = StringBuilder(64)
    for (b in d) sb.append(String.format("%02x", b.toInt() and 0xff))
    return sb.toString()
}

/** The model id a request id produces: "m" + the first 15 hex digits of SHA-256(request id). */
fun modelIdFor(requestId: String): String = "m" + sha256Hex(requestId.toByteArray(Charsets.UTF_8)).substring(0, 15)

/** A committed entry that is not a valid registry command. */
class CommandError(message: String) : Exception(message)

/** A committed model whose file here is missing or fails its SHA-256. */
class ModelFileDamaged(val modelId: String, val reason: String) : Exception("model $modelId: $reason")

/** What the registry knows of one committed model; [created] and [summary] keep the committed JSON. */
class ModelRecord(val modelId: String, val requestId: String, val sha256: String, val size: Long,
                  val created: Any?, val index: Long, val summary: JsonObject) {
    /** LIST's object for the record (registry.py ModelRecord.to_json). */
    fun toJson(): JsonObject {
        val o = JsonObject("model_id" to modelId, "created" to created, "size_bytes" to size, "sha256" to sha256,
            "index" to index)
        for ((k, v) in summary.entries) o[k] = v
        return o
    }
}

object RegistryCommands {
    /** A STORE_MODEL entry: u32 little-endian header length, the JSON header, the model file. */
    fun encodeStoreModel(requestId: String, model: ByteArray, created: Double, summary: JsonObject?): ByteArray {
        val header = JsonObject("op" to STORE_MODEL, "model_id" to modelIdFor(requestId), "request_id" to requestId,
            "sha256" to sha256Hex(model), "size" to model.size.toLong(), "created" to created,
            "summary" to (summary ?: JsonObject()))
        val raw = Json.encode(header)
        val out = ByteBuffer.allocate(4 + raw.size + model.size).order(ByteOrder.LITTLE_ENDIAN)
        out.putInt(raw.size)
        out.put(raw)
        out.put(model)
        return out.array()
    }

    /** The header and the model bytes of a STORE_MODEL entry. */
    fun decode(data: ByteArray): Pair<JsonObject, ByteArray> {
        if (data.size < 4) throw CommandError("command shorter than its length prefix")
        val n = ByteBuffer.wrap(data, 0, 4).order(ByteOrder.LITTLE_ENDIAN).int.toLong() and 0xffffffffL
        if (4 + n > data.size) throw CommandError("command header runs past the end of the entry")
        val text = data.copyOfRange(4, 4 + n.toInt())
        val v = try {
            Json.parse(text)
        } catch (e: JsonException) {
            throw CommandError("command header is not JSON: ${e.message}")
        }
        val h = v as? JsonObject
        if (h == null || h.str("op") != STORE_MODEL) {
            throw CommandError("unknown command ${String(text, Charsets.UTF_8).take(80)}")
        }
        for (k in listOf("model_id", "request_id", "sha256")) {
            if (h.str(k).isNullOrEmpty()) throw CommandError("command field \"$k\" is not a string")
        }
        if (h.int("size") == null) throw CommandError("command field \"size\" is not an integer")
        if (!h.has("created")) throw CommandError("command has no \"created\"")
        return Pair(h, data.copyOfRange(4 + n.toInt(), data.size))
    }
}

class Registry(val store: ModelStore) {
    val models = LinkedHashMap<String, ModelRecord>()
    val damaged = HashSet<String>()
    private val loaded = HashMap<String, Any>()
    private val unsynced = HashSet<String>()
    private val checked = HashSet<String>()
    var log: (String, String) -> Unit = { _, _ -> }
    /** Parses a model file (zmqnode.ml once wired); the result is cached per id. */
    var parseModel: ((ByteArray) -> Any)? = null

    /** Applies the committed command at [index]; null if it changed nothing. */
    fun apply(index: Long, data: ByteArray): ModelRecord? {
        val (h, body) = try {
            RegistryCommands.decode(data)
        } catch (e: CommandError) {
            log("ERROR", "skipping committed entry $index: ${e.message}")
            return null
        }
        val id = h.str("model_id")!!
        if (models.containsKey(id)) return null
        val want = h.str("sha256")!!
        if (sha256Hex(body) != want) {
            log("ERROR", "skipping committed entry $index: model $id fails its checksum")
            return null
        }
        if (!isValidModelId(id)) {
            log("ERROR", "skipping committed entry $index: invalid model id ${pyStr(id)}: use 1 to 64 letters, digits, '_' or '-'")
            return null
        }
        if (!fileMatches(id, want)) store.write(id, body, false) // the log entry is the durable copy
        unsynced.add(id)
        val rec = ModelRecord(id, h.str("request_id")!!, want, h.int("size")!!, h["created"], index,
            h.obj("summary") ?: JsonObject())
        models[id] = rec
        damaged.remove(id)
        checked.add(id)
        return rec
    }

    private fun fileMatches(id: String, sha: String): Boolean = try {
        sha256Hex(store.read(id)) == sha
    } catch (e: Exception) {
        false
    }

    /** The model file's bytes, checked against its record first ([ModelFileDamaged] otherwise). */
    fun readChecked(id: String): ByteArray {
        val rec = models[id] ?: throw NoSuchElementException("no model $id")
        if (id in damaged) throw ModelFileDamaged(id, "its file is being fetched from peers")
        val data = try {
            store.read(id)
        } catch (e: java.nio.file.NoSuchFileException) {
            damaged.add(id)
            throw ModelFileDamaged(id, "its file is missing")
        }
        if (sha256Hex(data) != rec.sha256) {
            damaged.add(id)
            throw ModelFileDamaged(id, "its file fails its SHA-256 checksum")
        }
        return data
    }

    /** The parsed model (parseModel), cached. */
    fun load(id: String): Any {
        loaded[id]?.let { return it }
        val data = readChecked(id)
        val parse = parseModel ?: throw IllegalStateException("no model parser on this node")
        val m = parse(data)
        loaded[id] = m
        return m
    }

    /** The records whose file is missing or damaged (now marked so), hashing only those not checked before. */
    fun checkFiles(): List<ModelRecord> {
        val bad = ArrayList<ModelRecord>()
        for (rec in sorted()) {
            if (!checked.add(rec.modelId)) continue
            if (!fileMatches(rec.modelId, rec.sha256)) {
                damaged.add(rec.modelId)
                bad.add(rec)
            }
        }
        return bad
    }

    /** Writes a verified copy of a damaged file, durably. */
    fun storeRepaired(id: String, data: ByteArray) {
        val rec = models[id]
        if (rec == null || sha256Hex(data) != rec.sha256) {
            throw IllegalArgumentException("refusing to store a copy of $id that fails its checksum")
        }
        store.write(id, data, true)
        unsynced.remove(id)
        damaged.remove(id)
    }

    fun takeUnsynced(): List<String> {
        val ids = unsynced.sorted()
        unsynced.clear()
        return ids
    }

    fun markUnsynced(ids: List<String>) {
        unsynced.addAll(ids)
    }

    fun sorted(): List<ModelRecord> = models.values.sortedBy { it.index }

    /** LIST's models, in commit order. */
    fun listing(): List<JsonObject> = sorted().map { it.toJson() }

    /** The records stored at index through or before, as registry.py snapshot_data writes them. */
    fun snapshotData(through: Long): ByteArray {
        val items = ArrayList<JsonObject>()
        for (rec in sorted()) {
            if (rec.index > through) continue
            val o = rec.toJson()
            o["request_id"] = rec.requestId
            o["summary"] = rec.summary
            items.add(o)
        }
        return Json.encode(items)
    }

    /** Replaces the records with a snapshot's; checkFiles then finds the files to fetch. */
    fun restore(data: ByteArray) {
        val items: List<*> = if (data.isEmpty()) emptyList<Any?>() else {
            val v = try {
                Json.parse(data)
            } catch (e: JsonException) {
                throw IllegalArgumentException("snapshot data is not JSON: ${e.message}")
            }
            v as? List<*> ?: throw IllegalArgumentException("snapshot data is not a JSON list")
        }
        val previous = HashMap(models)
        val oldLoaded = HashMap(loaded)
        val oldChecked = HashSet(checked)
        val oldDamaged = HashSet(damaged)
        models.clear()
        loaded.clear()
        checked.clear()
        damaged.clear()
        for (it in items) {
            val o = it as? JsonObject ?: throw IllegalArgumentException("snapshot record is not an object")
            val id = o.str("model_id") ?: ""
            if (id == "") throw IllegalArgumentException("snapshot record without model_id")
            val rec = ModelRecord(id, o.str("request_id") ?: "", o.str("sha256") ?: "", o.int("size_bytes") ?: 0,
                o["created"], o.int("index") ?: 0, o.obj("summary") ?: JsonObject())
            models[id] = rec
            val old = previous[id]
            if (old != null && old.sha256 == rec.sha256) {
                oldLoaded[id]?.let { m -> loaded[id] = m }
                if (id in oldChecked) checked.add(id)
                if (id in oldDamaged) damaged.add(id)
            }
        }
    }

    fun modelBytes(): Long = models.values.map { it.size }.sum()
}
