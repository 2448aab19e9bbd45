// The small files of a storage dir besides the Raft files (go/storage/smallfiles.go; node.py,
// transport/security.py MemberKeysFile, logs.py; docs/FORMAT.md §11.5, §11.6).
package zmqnode.storage

import java.io.File
import java.io.RandomAccessFile
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.time.LocalDateTime
import java.time.format.DateTimeFormatter

const val JOINED_AT_FILE_NAME = "joined_at"
const val MEMBER_KEYS_FILE_NAME = "member_keys"

/** The node's log file in its storage dir, worker_<port>.log; the monitor's /logs tails it. */
fun workerLogName(port: Int): String = "worker_$port.log"

/** Stores the index of this node's JOIN durably (the Raft core's vote floor across restarts):
 *  the decimal index and a newline. */
fun saveJoinedAt(dir: String, index: Long, stats: FsyncStats? = null) =
    atomicWrite(File(dir, JOINED_AT_FILE_NAME).path, (u64(index) + "\n").toByteArray(Charsets.US_ASCII), stats, true)

/** The stored JOIN index; 0 when the file is missing, unreadable or holds no number, as node.py's
 *  _joined_at (a negative number also gives 0: as a vote floor it means the same). */
fun loadJoinedAt(dir: String): Long {
    val raw = try {
        Files.readAllBytes(File(dir, JOINED_AT_FILE_NAME).toPath())
    } catch (e: java.io.IOException) {
        return 0
    }
    val text = try {
        Charsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(raw)).toString()
    } catch (e: java.nio.charset.CharacterCodingException) {
        return 0
    }
    val s = text.trim { Character.isWhitespace(it) || Character.isSpaceChar(it) || it == '\u0085' }
    if (s.length == 0) return 0
    return pyInt(s) ?: 0
}

/** What Python's int(str) accepts in ASCII: an optional sign, digits, single underscores between
 *  digits. Negative values give 0; null when not a number (or beyond a u64). */
private fun pyInt(text: String): Long? {
    var s = text
    var negative = false
    if (s[0] == '+' || s[0] == '-') {
        negative = s[0] == '-'
        s = s.substring(1)
    }
    if (s.length == 0 || s[0] == '_' || s[s.length - 1] == '_' || s.contains("__")) return null
    val digits = s.replace("_", "")
    if (!digits.all { it in '0'..'9' }) return null
    if (negative) return 0
    return try {
        java.lang.Long.parseUnsignedLong(digits)
    } catch (e: NumberFormatException) {
        null
    }
}

/**
 * The member allow-list a node shares with its trainer process: one z85 public key (40
 * characters) per line, sorted, replaced by a rename of "member_keys.tmp" (not fsynced: it is
 * rewritten whenever the membership changes, and at every start).
 */
class MemberKeys(dir: String) {
    val path: String = File(dir, MEMBER_KEYS_FILE_NAME).path
    private var seen: java.nio.file.attribute.FileTime? = null

    /** Replaces the file with [keys] (sorted, duplicates dropped, one per line). */
    fun write(keys: Collection<String>) {
        val sorted = keys.toSortedSet(Comparator { a, b -> compareUtf8(a, b) })
        val sb = StringBuilder()
        for (k in sorted) sb.append(k).append('\n')
        val tmp = File("$path.tmp")
        Files.write(tmp.toPath(), sb.toString().toByteArray(Charsets.UTF_8))
        Files.move(tmp.toPath(), File(path).toPath(), StandardCopyOption.ATOMIC_MOVE)
    }

    /** The keys if the file changed (by mtime) since the last call, else null; null too when it
     *  cannot be read or holds no key. Words that are not 40 bytes long are skipped. */
    fun reload(): List<String>? {
        val f = File(path)
        val mtime = try {
            Files.getLastModifiedTime(f.toPath())
        } catch (e: java.io.IOException) {
            return null
        }
        if (seen == mtime) return null
        val raw = try {
            Files.readAllBytes(f.toPath())
        } catch (e: java.io.IOException) {
            return null
        }
        seen = mtime
        val set = java.util.TreeSet<String>(Comparator { a, b -> compareUtf8(a, b) })
        var i = 0
        while (i < raw.size) {
            while (i < raw.size && isAsciiSpace(raw[i])) i++
            val start = i
            while (i < raw.size && !isAsciiSpace(raw[i])) i++
            // Python's bytes.split(); the key is its bytes read as Latin-1 (ASCII in practice).
            if (i - start == 40) set.add(String(raw, start, 40, Charsets.ISO_8859_1))
        }
        return if (set.isEmpty()) null else set.toList()
    }
}

private fun isAsciiSpace(b: Byte): Boolean {
    val c = b.toInt()
    return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d || c == 0x0b || c == 0x0c
}

private val stampFormat = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss")

/**
 * One line of worker_<port>.log as Python's logging writes it with logs.py FORMAT
 * "%(asctime)s %(levelname)-7s [%(node)s] %(name)s: %(message)s": local time
 * "2006-01-02 15:04:05,000", the level padded to 7, the node id, the logger's name (e.g.
 * "zmqnode.storage"). No newline.
 */
fun logLine(t: LocalDateTime, level: String, node: String, logger: String, message: String): String {
    val millis = t.nano / 1_000_000
    val ms = if (millis < 10) "00$millis" else if (millis < 100) "0$millis" else "$millis"
    return "${t.format(stampFormat)},$ms ${level.padEnd(7)} [$node] $logger: $message"
}

/** The last [lines] lines of a log file, reading only its end (at most 400 bytes a line), as
 *  logs.py tail; null if it does not exist. */
fun tailLog(path: String, lines: Int): List<String>? {
    val f = File(path)
    if (!f.exists()) return null
    val data = RandomAccessFile(f, "r").use { raf ->
        val size = raf.length()
        val start = maxOf(0L, size - lines.toLong() * 400)
        raf.seek(start)
        val buf = ByteArray((size - start).toInt())
        raf.readFully(buf)
        buf
    }
    // Decoding replaces invalid bytes with U+FFFD (Python: errors="replace").
    val all = splitLines(String(data, Charsets.UTF_8))
    return if (all.size > lines) all.subList(all.size - lines, all.size) else all
}

/** Python's str.splitlines: \r\n, and each of \n \r \v \f \x1c \x1d \x1e \x85 U+2028 U+2029,
 *  ends a line. */
fun splitLines(s: String): List<String> {
    val out = ArrayList<String>()
    var start = 0
    var i = 0
    while (i < s.length) {
        val c = s[i]
        if (c == '\n' || c == '\r' || c == '\u000b' || c == '\u000c' || c == '\u001c' || c == '\u001d' ||
            c == '\u001e' || c == '\u0085' || c == '\u2028' || c == '\u2029') {
            out.add(s.substring(start, i))
            if (c == '\r' && i + 1 < s.length && s[i + 1] == '\n') i++
            start = i + 1
        }
        i++
    }
    if (start < s.length) out.add(s.substring(start))
    return out
}
