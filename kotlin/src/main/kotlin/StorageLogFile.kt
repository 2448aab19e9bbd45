// The Raft log file, raft.log (go/storage/logfile.go, zmqnode/storage/log_file.py;
// docs/FORMAT.md §11.3). Format version 1, all integers little-endian:
//
//   header   magic "ZQRAFTLG" (8 bytes) | u32 version | u64 first_index | u32 crc32(previous 20 bytes)
//   record   u32 payload_length | u32 crc32(payload) | payload
//   payload  u64 index | u64 term | u8 kind (1 noop, 2 command, 3 config) | data (the rest)
//
// Recovery (open) reads the records in order. The first record that is cut off or fails its
// checksum ends the scan; then, if a checksum-valid record can still be found after it (in the
// index window of §11.3 step 3), the damage is in the middle of the log and the file is refused
// (CorruptionError); otherwise it is the torn tail of an unacknowledged write, truncated away
// with a warning. A record whose checksum holds but whose index or term breaks the log's rules
// (not contiguous, terms going down, unknown kind) is refused too.
package zmqnode.storage

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Paths
import java.nio.file.StandardOpenOption

const val LOG_MAGIC = "ZQRAFTLG"
const val LOG_VERSION = 1

private const val LOG_HEADER_FIELDS = 8 + 4 + 8 // magic, version, first_index
private const val LOG_HEADER_SIZE = LOG_HEADER_FIELDS + 4 // and its CRC
private const val RECORD_HEAD = 4 + 4 // payload length, crc32 of payload
private const val ENTRY_HEAD = 8 + 8 + 1 // index, term, kind
private const val MIN_RECORD = RECORD_HEAD + ENTRY_HEAD
/** payload_length is a u32: an entry's data is at most 2^32 - 18 bytes (in practice the JVM's
 *  array limit, 2^31 - 1, comes first). */
private const val MAX_DATA = 0xffffffffL - ENTRY_HEAD

private const val LOG_ADVICE = "It holds this node's Raft log; restore the storage dir from a backup or $REJOIN."

private fun kindCode(k: EntryKind): Int = when (k) {
    EntryKind.NOOP -> 1
    EntryKind.COMMAND -> 2
    EntryKind.CONFIG -> 3
}

private fun kindOf(code: Int): EntryKind? = when (code) {
    1 -> EntryKind.NOOP
    2 -> EntryKind.COMMAND
    3 -> EntryKind.CONFIG
    else -> null
}

internal fun le(buf: ByteArray): ByteBuffer = ByteBuffer.wrap(buf).order(ByteOrder.LITTLE_ENDIAN)
internal fun u32At(buf: ByteArray, pos: Int): Long = le(buf).getInt(pos).toLong() and 0xffffffffL
internal fun u64At(buf: ByteArray, pos: Int): Long = le(buf).getLong(pos)

/** The 24-byte header of a log starting at [firstIndex]. */
fun encodeLogHeader(firstIndex: Long): ByteArray {
    val h = ByteArray(LOG_HEADER_SIZE)
    val bb = le(h)
    LOG_MAGIC.toByteArray(Charsets.US_ASCII).copyInto(h)
    bb.putInt(8, LOG_VERSION)
    bb.putLong(12, firstIndex)
    bb.putInt(20, crc32(h, 0, LOG_HEADER_FIELDS).toInt())
    return h
}

private fun checkEncodable(e: Entry) {
    if (e.data.size.toLong() > MAX_DATA) {
        throw InvalidArgumentError("entry ${u64(e.index)} has ${e.data.size} bytes of data; a record holds at most $MAX_DATA")
    }
}

/** One record: length, checksum, then the entry in binary. */
fun encodeRecord(e: Entry): ByteArray {
    checkEncodable(e)
    val rec = ByteArray(MIN_RECORD + e.data.size)
    val bb = le(rec)
    bb.putInt(0, ENTRY_HEAD + e.data.size)
    bb.putLong(8, e.index)
    bb.putLong(16, e.term)
    rec[24] = kindCode(e.kind).toByte()
    e.data.copyInto(rec, MIN_RECORD)
    bb.putInt(4, crc32(rec, RECORD_HEAD, rec.size).toInt())
    return rec
}

/** The bytes of a healthy log file, for tests and tools: the header for [firstIndex] followed
 *  by the entries' records. */
fun encodeLog(firstIndex: Long, entries: List<Entry>): ByteArray {
    val out = java.io.ByteArrayOutputStream()
    out.write(encodeLogHeader(firstIndex))
    for (e in entries) out.write(encodeRecord(e))
    return out.toByteArray()
}

/** The end offset of the checksum-valid record at [pos] (>= 0), or why it is not one. */
private class RecordCheck(val stop: Int, val reason: String?)

private fun checkRecord(buf: ByteArray, pos: Int, end: Int = buf.size): RecordCheck {
    if (end - pos < RECORD_HEAD) {
        return RecordCheck(0, "the record header is cut off (${end - pos} of $RECORD_HEAD bytes)")
    }
    val length = u32At(buf, pos)
    val sum = u32At(buf, pos + 4)
    if (length < ENTRY_HEAD) return RecordCheck(0, "its length field says $length bytes, less than any entry")
    val body = pos + RECORD_HEAD
    if (body.toLong() + length > end.toLong()) {
        return RecordCheck(0, "it is cut off (${end - body} of $length payload bytes present)")
    }
    val stop = body + length.toInt()
    if (crc32(buf, body, stop) != sum) return RecordCheck(0, "its checksum does not match")
    return RecordCheck(stop, null)
}

/** The offset of some checksum-valid record starting after [after] whose index field lies in
 *  [minIndex, minIndex + (size - after) div 25 + 1] (unsigned), or -1; the lowest such offset,
 *  as log_file.py's _find_valid_record. */
private fun findValidRecord(buf: ByteArray, after: Int, minIndex: Long): Int {
    val end = buf.size
    val maxIndex = minIndex + ((end - after) / MIN_RECORD).toLong() + 1
    val bb = le(buf)
    var pos = after + 1
    while (pos + RECORD_HEAD + ENTRY_HEAD <= end) {
        val index = bb.getLong(pos + RECORD_HEAD)
        if (ucmp(index, minIndex) >= 0 && ucmp(index, maxIndex) <= 0 && checkRecord(buf, pos).reason == null) return pos
        pos++
    }
    return -1
}

/** What LogFile.open found: the entries, and what it had to repair. */
class LogContents(val entries: List<Entry>, val warnings: List<String> = emptyList(), val truncatedBytes: Int = 0)

internal fun defaultWarn(message: String) {
    System.err.println("WARNING zmqnode.storage: $message")
}

internal fun warn(hook: ((String) -> Unit)?, message: String) {
    if (hook != null) hook(message) else defaultWarn(message)
}

/**
 * One append-only log file. It keeps only each record's offset and term in memory (the entries
 * live in the Raft core). append writes without fsync; call sync once per batch (group commit).
 * Not safe for concurrent use: one event loop owns it. After an I/O error from a write or fsync
 * the object refuses further use (BrokenError).
 */
class LogFile(val path: String, stats: FsyncStats? = null) {
    val stats: FsyncStats = orNew(stats)
    /** Told each warning open logs (Python logs them on "zmqnode.storage" at WARNING);
     *  standard error when null. */
    var warn: ((String) -> Unit)? = null

    private var ch: FileChannel? = null
    /** The index the first record holds, or would hold. */
    var firstIndex: Long = 1
        private set
    private var offsets = LongArrayList()
    private var terms = LongArrayList()
    /** The file's length in bytes, header included. */
    var size: Long = 0
        private set
    private var dirty = false
    private var broken: String? = null

    /** The index of the last record (firstIndex - 1 when empty). */
    val lastIndex: Long get() = firstIndex + offsets.size - 1

    /** The term of the stored entry at [index]; null if not in the file. */
    fun termAt(index: Long): Long? {
        if (ucmp(index, firstIndex) < 0 || ucmp(index - firstIndex, terms.size.toLong()) >= 0) return null
        return terms[(index - firstIndex).toInt()]
    }

    private fun corrupt(problem: String) = CorruptionError(path, problem, LOG_ADVICE)

    /** Opens the file (creating an empty log starting at index 1) and recovers the entries,
     *  repairing a torn tail. Throws CorruptionError for damage it cannot repair. */
    fun open(): LogContents {
        if (ch != null) throw AlreadyOpenError("$path: already open")
        if (!File(path).exists()) atomicWrite(path, encodeLogHeader(1), stats, true)
        val f = FileChannel.open(Paths.get(path), StandardOpenOption.READ, StandardOpenOption.WRITE)
        try {
            val contents = recover(f)
            ch = f
            return contents
        } catch (e: Throwable) {
            f.close()
            throw e
        }
    }

    private fun recover(f: FileChannel): LogContents {
        val buf = Files.readAllBytes(Paths.get(path))
        val first = readHeader(buf)
        val offs = LongArrayList()
        val ts = LongArrayList()
        val entries = ArrayList<Entry>()
        var pos = LOG_HEADER_SIZE
        var expected = first
        var lastTerm = 0L
        val end = buf.size
        val bb = le(buf)
        while (pos < end) {
            val check = checkRecord(buf, pos)
            if (check.reason != null) return repairTail(f, buf, pos, expected, check.reason, first, offs, ts, entries)
            val body = pos + RECORD_HEAD
            val index = bb.getLong(body)
            val term = bb.getLong(body + 8)
            val code = buf[body + 16].toInt() and 0xff
            val kind = kindOf(code)
            if (index != expected || ucmp(term, lastTerm) < 0 || kind == null) {
                throw invalidRecord(pos, index, term, code, expected, lastTerm)
            }
            entries.add(Entry(index, term, kind, buf.copyOfRange(body + ENTRY_HEAD, check.stop)))
            offs.add(pos.toLong())
            ts.add(term)
            pos = check.stop
            expected++
            lastTerm = term
        }
        install(first, offs, ts, end.toLong())
        return LogContents(entries)
    }

    private fun invalidRecord(pos: Int, index: Long, term: Long, code: Int, expected: Long, lastTerm: Long): CorruptionError {
        val where = "has a record at byte $pos"
        if (index != expected) return corrupt("$where for entry ${u64(index)} where entry ${u64(expected)} belongs")
        if (ucmp(term, lastTerm) < 0) {
            return corrupt("$where (entry ${u64(index)}) whose term ${u64(term)} is lower than the term ${u64(lastTerm)} before it")
        }
        return corrupt("$where (entry ${u64(index)}) of unknown kind $code (written by a newer release?)")
    }

    private fun readHeader(buf: ByteArray): Long {
        if (buf.size < LOG_HEADER_SIZE) {
            throw corrupt("is ${buf.size} bytes long, too short for its $LOG_HEADER_SIZE-byte header")
        }
        val magic = LOG_MAGIC.toByteArray(Charsets.US_ASCII)
        if (!buf.copyOfRange(0, 8).contentEquals(magic)) {
            throw corrupt("does not start with ${PyJson.bytesRepr(magic)} (found ${PyJson.bytesRepr(buf.copyOfRange(0, 8))}): " +
                "it is not a zmqnode Raft log, or its header is damaged")
        }
        if (crc32(buf, 0, LOG_HEADER_FIELDS) != u32At(buf, LOG_HEADER_FIELDS)) throw corrupt("has a header that fails its checksum")
        val v = u32At(buf, 8)
        if (v != LOG_VERSION.toLong()) {
            throw corrupt("has format version $v; this zmqnode reads version $LOG_VERSION (was it written by a newer release?)")
        }
        val first = u64At(buf, 12)
        if (first == 0L) throw corrupt("says its first index is 0; indexes start at 1")
        return first
    }

    private fun repairTail(
        f: FileChannel, buf: ByteArray, pos: Int, expected: Long, reason: String,
        first: Long, offs: LongArrayList, ts: LongArrayList, entries: List<Entry>
    ): LogContents {
        val found = findValidRecord(buf, pos, expected)
        if (found >= 0) {
            throw corrupt("is damaged in the middle: the record at byte $pos (entry ${u64(expected)}) is unreadable ($reason), " +
                "yet a valid record follows at byte $found. Dropping the rest could lose acknowledged entries, so the node will not start")
        }
        val dropped = buf.size - pos
        f.truncate(pos.toLong())
        stats.fsync(f)
        val warning = "$path: dropped $dropped bytes at the tail (byte $pos on, entry ${u64(expected)}: $reason), most likely " +
            "a write cut short when the node stopped, which was never acknowledged because its fsync " +
            "had not returned; the log now ends at entry ${u64(expected - 1)}"
        warn(warn, warning)
        install(first, offs, ts, pos.toLong())
        return LogContents(entries, listOf(warning), dropped)
    }

    private fun install(first: Long, offs: LongArrayList, ts: LongArrayList, newSize: Long) {
        firstIndex = first
        offsets = offs
        terms = ts
        size = newSize
        dirty = false
    }

    private fun usable(): FileChannel {
        broken?.let { throw BrokenError("$path: an earlier $it failed; restart the node") }
        return ch ?: throw NotOpenError("$path is not open")
    }

    /**
     * Writes [entries] after the log, first cutting it before entries[0].index. Not durable until
     * sync. Entries that would leave a gap, are not consecutive, overwrite compacted entries or
     * make terms go down are refused (InvalidArgumentError) and the file is untouched.
     */
    fun append(entries: List<Entry>) {
        if (entries.isEmpty()) return
        val f = usable()
        val first = entries[0].index
        if (ucmp(first, firstIndex) < 0) throw InvalidArgumentError("entry ${u64(first)} is compacted: $path starts at ${u64(firstIndex)}")
        if (ucmp(first, lastIndex + 1) > 0) throw InvalidArgumentError("appending entry ${u64(first)} after ${u64(lastIndex)} leaves a gap")
        val keep = (first - firstIndex).toInt()
        var term = if (keep > 0) terms[keep - 1] else 0L
        for ((k, e) in entries.withIndex()) {
            if (e.index != first + k) throw InvalidArgumentError("entries are not consecutive: ${u64(e.index)} after ${u64(first + k - 1)}")
            if (ucmp(e.term, term) < 0) throw InvalidArgumentError("entry ${u64(e.index)} has term ${u64(e.term)}, lower than ${u64(term)}")
            checkEncodable(e)
            term = e.term
        }
        val blob = java.io.ByteArrayOutputStream()
        for (e in entries) blob.write(encodeRecord(e))
        if (keep < offsets.size) {
            try {
                truncate(f, keep)
            } catch (e: Throwable) {
                broken = "write"
                throw e
            }
        }
        try {
            writeAllAt(f, blob.toByteArray(), size)
        } catch (e: Throwable) {
            broken = "write"
            throw e
        }
        var pos = size
        for (e in entries) {
            offsets.add(pos)
            terms.add(e.term)
            pos += MIN_RECORD + e.data.size
        }
        size = pos
        dirty = true
    }

    /** Cuts the file before record [keep], durably before new records land where the old ones
     *  were (otherwise a crash could leave new records followed by stale old ones). */
    private fun truncate(f: FileChannel, keep: Int) {
        val newSize = offsets[keep]
        f.truncate(newSize)
        stats.fsync(f)
        offsets.truncate(keep)
        terms.truncate(keep)
        size = newSize
    }

    /** Fsyncs what append wrote; false if there was nothing to sync. */
    fun sync(): Boolean {
        val f = usable()
        if (!dirty) return false
        try {
            stats.fsync(f)
        } catch (e: Throwable) {
            broken = "fsync"
            throw e
        }
        dirty = false
        return true
    }

    /** Drops entries up to [throughIndex]; the log then starts at throughIndex + 1. Rewrites the
     *  file atomically (kept records are copied as they are, after checking each one read back).
     *  Durable on return, including any earlier unsynced appends. */
    fun compact(throughIndex: Long) {
        val f = usable()
        if (ucmp(throughIndex, firstIndex) < 0) return
        val keepFrom = throughIndex + 1 - firstIndex
        if (ucmp(keepFrom, offsets.size.toLong()) >= 0) {
            reset(throughIndex + 1)
            return
        }
        val k = keepFrom.toInt()
        val start = offsets[k]
        val tail = ByteArray((size - start).toInt())
        val bb = ByteBuffer.wrap(tail)
        var p = start
        while (bb.hasRemaining()) {
            val n = f.read(bb, p)
            if (n < 0) throw java.io.IOException("$path: short read while compacting")
            p += n
        }
        verifyReadBack(tail, start, throughIndex + 1)
        val shift = start - LOG_HEADER_SIZE
        val offs = LongArrayList()
        val ts = LongArrayList()
        for (i in k until offsets.size) {
            offs.add(offsets[i] - shift)
            ts.add(terms[i])
        }
        replace(encodeLogHeader(throughIndex + 1) + tail, throughIndex + 1, offs, ts)
    }

    /** Checks records read back from the file before they are copied anywhere: copying a record
     *  the disk damaged since open would hide the damage in the middle of the new file. */
    private fun verifyReadBack(blob: ByteArray, offset: Long, first: Long) {
        var pos = 0
        var index = first
        while (pos < blob.size) {
            val check = checkRecord(blob, pos)
            if (check.reason != null) {
                throw corrupt("has a damaged record at byte ${offset + pos} (entry ${u64(index)}), found when " +
                    "reading it back to compact the log: ${check.reason}. The disk changed bytes after they were written")
            }
            val stored = u64At(blob, pos + RECORD_HEAD)
            if (stored != index) {
                throw corrupt("has entry ${u64(stored)} at byte ${offset + pos} where entry ${u64(index)} was written, " +
                    "found when reading it back to compact the log")
            }
            pos = check.stop
            index++
        }
    }

    /** Drops every entry; the next one appended must be [firstIndex]. Durable. */
    fun reset(firstIndex: Long) {
        usable()
        replace(encodeLogHeader(firstIndex), firstIndex, LongArrayList(), LongArrayList())
    }

    private fun replace(content: ByteArray, first: Long, offs: LongArrayList, ts: LongArrayList) {
        val old = usable()
        atomicWrite(path, content, stats, true)
        // The rename swapped inodes; our channel still points at the old one.
        val f = try {
            FileChannel.open(Paths.get(path), StandardOpenOption.READ, StandardOpenOption.WRITE)
        } catch (e: Throwable) {
            broken = "reopen after compaction"
            throw e
        }
        old.close()
        ch = f
        install(first, offs, ts, content.size.toLong())
    }

    /** Fsyncs anything unsynced, then closes. Safe to call twice. */
    fun close() {
        val f = ch ?: return
        try {
            if (broken == null) sync()
        } finally {
            ch = null
            f.close()
        }
    }
}

/** A growable list of longs (offsets and terms of a long log without boxing). */
internal class LongArrayList {
    private var a = LongArray(16)
    var size = 0
        private set

    operator fun get(i: Int): Long {
        if (i < 0 || i >= size) throw IndexOutOfBoundsException("$i of $size")
        return a[i]
    }

    fun add(v: Long) {
        if (size == a.size) a = a.copyOf(a.size * 2)
        a[size++] = v
    }

    fun truncate(n: Int) {
        if (n < size) size = n
    }
}
