// The models directory, models/<id>.bin (go/storage/models.go, zmqnode/storage/model_store.py).
package zmqnode.storage

import java.io.File
import java.nio.file.Files

/** Ends every model file name: models/<id>.bin. */
const val MODEL_SUFFIX = ".bin"

/** Whether [id] is a valid model id: 1 to 64 of A-Z a-z 0-9 _ - (model_store.py
 *  MODEL_ID_PATTERN), so that an id such as "../raft_state" can never name a file outside models/. */
fun isValidModelId(id: String): Boolean =
    id.length in 1..64 && id.all { it in 'A'..'Z' || it in 'a'..'z' || it in '0'..'9' || it == '_' || it == '-' }

/** Throws InvalidModelIdError for an invalid model id. */
fun checkModelId(id: String) {
    if (!isValidModelId(id)) throw InvalidModelIdError(id)
}

/**
 * The models directory: one immutable file per committed model, written atomically so a reader
 * sees a whole model or none. The bytes are opaque here. The constructor creates the directory
 * if missing (durably) and removes temporary files a crash left.
 */
class ModelStore(val dir: String, stats: FsyncStats? = null) {
    val stats: FsyncStats = orNew(stats)

    init {
        ensureDir(dir, this.stats)
        removeStaleTemps(dir)
    }

    /** Where [id] lives; InvalidModelIdError for a bad id. */
    fun path(id: String): String {
        checkModelId(id)
        return File(dir, id + MODEL_SUFFIX).path
    }

    /** Stores [data] as [id], atomically (replacing any old file); durably unless [durable] is
     *  false (the log entry is then the durable copy, and compaction fsyncs the file through
     *  syncFiles before dropping it). */
    fun write(id: String, data: ByteArray, durable: Boolean) = atomicWrite(path(id), data, stats, durable)

    /** The model's bytes; java.nio.file.NoSuchFileException if absent, InvalidModelIdError for a bad id. */
    fun read(id: String): ByteArray = Files.readAllBytes(File(path(id)).toPath())

    /** Whether the model is stored (a regular file); false for any invalid id. */
    fun exists(id: String): Boolean = isValidModelId(id) && File(dir, id + MODEL_SUFFIX).isFile

    /** Every stored model id, sorted; temporary files and stray names are skipped. */
    fun ids(): List<String> {
        val names = listNames(dir) ?: throw java.nio.file.NoSuchFileException(dir)
        return names.filter { !isTempName(it) && it.endsWith(MODEL_SUFFIX) }
            .map { it.removeSuffix(MODEL_SUFFIX) }
            .filter { isValidModelId(it) }
    }
}
