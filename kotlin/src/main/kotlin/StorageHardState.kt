// raft_state.json (go/storage/hardstate.go, zmqnode/storage/hard_state.py; docs/FORMAT.md §11.2).
package zmqnode.storage

import java.io.File
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.util.zip.CRC32

/** The version of raft_state.json this code reads and writes. */
const val HARD_STATE_VERSION = 1

private const val HARD_STATE_ADVICE = "It holds this node's term and vote; restore it from a backup or $REJOIN."

internal fun crc32(data: ByteArray, from: Int = 0, to: Int = data.size): Long {
    val c = CRC32()
    c.update(data, from, to - from)
    return c.value
}

private fun hardStateCanonical(term: Long, vote: String): ByteArray =
    ("{\"current_term\":" + u64(term) + ",\"version\":1,\"voted_for\":" + quoteAscii(vote) + "}").toByteArray(Charsets.US_ASCII)

/** json.dumps(s) with ensure_ascii=True on a Kotlin String: each UTF-16 unit outside ' '..'~'
 *  as \uXXXX (lower-case hex), which is exactly Python's output (surrogate pairs beyond the BMP,
 *  lone surrogates as themselves). */
internal fun quoteAscii(s: String): String = zmqnode.pyfmt.Pyfmt.quoteAscii(s)

/** The file's bytes for [hs], as Python's json.dumps(doc, indent=2) + "\n" writes them. */
fun encodeHardState(hs: HardState): ByteArray {
    val sum = crc32(hardStateCanonical(hs.term, hs.vote))
    return ("{\n  \"version\": $HARD_STATE_VERSION,\n  \"current_term\": ${u64(hs.term)},\n  \"voted_for\": " +
        quoteAscii(hs.vote) + ",\n  \"checksum\": $sum\n}\n").toByteArray(Charsets.US_ASCII)
}

/** Parses raft_state.json's bytes; [path] only names the file in a CorruptionError. */
fun decodeHardState(path: String, raw: ByteArray): HardState {
    fun corrupt(problem: String): Nothing = throw CorruptionError(path, problem, HARD_STATE_ADVICE)
    if (raw.all { it == ' '.toByte() || it == '\t'.toByte() || it == '\n'.toByte() || it == '\r'.toByte() || it == 0x0b.toByte() || it == 0x0c.toByte() }) {
        corrupt("is empty (a crash should never leave it so: it is replaced atomically)")
    }
    val doc = try {
        PyJson.loads(raw)
    } catch (e: PyJson.DecodeError) {
        corrupt("is not valid JSON (${e.message})")
    }
    if (doc !is PyJson.PyObject) corrupt("holds a JSON ${PyJson.typeName(doc)}, not an object")
    val version = doc["version"]
    if (version !is PyJson.PyNumber || version.toPyFloat() != HARD_STATE_VERSION.toDouble()) {
        corrupt("has version ${PyJson.repr(version)}; this zmqnode reads version $HARD_STATE_VERSION " +
            "(was it written by a newer release?)")
    }
    val termValue = doc["current_term"]
    val vote = doc["voted_for"]
    val checksum = doc["checksum"]
    val term = nonNegativeInt(termValue)
        ?: corrupt("has current_term ${PyJson.repr(termValue)}; expected a non-negative integer")
    if (vote !is String) corrupt("has voted_for ${PyJson.repr(vote)}; expected a string")
    if (checksum !is PyJson.PyNumber || !checksum.isInt) corrupt("has checksum ${PyJson.repr(checksum)}; expected an integer")
    val expected = crc32(hardStateCanonical(term, vote))
    if (checksum.intLiteral() != expected.toString()) {
        corrupt("fails its checksum (stored ${checksum.intLiteral()}, computed $expected): the file was edited or damaged")
    }
    return HardState(term, vote)
}

/** What Python's isinstance(v, int) and v >= 0 accept, as far as it fits in a u64 (else null). */
private fun nonNegativeInt(v: Any?): Long? {
    if (v !is PyJson.PyNumber || !v.isInt) return null
    val lit = v.intLiteral()
    if (lit.startsWith("-")) return null
    return try {
        java.lang.Long.parseUnsignedLong(lit)
    } catch (e: NumberFormatException) {
        null
    }
}

/** Loads and saves one HardState; save skips the write when nothing changed. */
class HardStateFile(val path: String, stats: FsyncStats? = null) {
    val stats: FsyncStats = orNew(stats)
    /** Whether load found the file (NodeStorage checks a missing one). */
    var found: Boolean = false
        private set
    private var saved: HardState? = null

    /** The stored state; HardState() if the file does not exist. Throws CorruptionError if the
     *  file is empty, not JSON, has missing or mistyped fields, an unknown version, or a checksum
     *  mismatch. */
    fun load(): HardState {
        val raw = try {
            Files.readAllBytes(File(path).toPath())
        } catch (e: NoSuchFileException) {
            found = false
            saved = HardState()
            return HardState()
        }
        val hs = decodeHardState(path, raw)
        found = true
        saved = hs
        return hs
    }

    /** Makes [hs] durable; false when the file already held it (no I/O). */
    fun save(hs: HardState): Boolean {
        if (saved == hs) return false
        atomicWrite(path, encodeHardState(hs), stats, true)
        saved = hs
        return true
    }
}
