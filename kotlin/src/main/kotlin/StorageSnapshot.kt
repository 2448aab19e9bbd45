// The latest snapshot, snapshot/snapshot.bin (go/storage/snapshot.go,
// zmqnode/storage/snapshot_store.py; docs/FORMAT.md §11.4), replaced atomically. Version 2,
// integers little-endian:
//
//   magic "ZQSNAPSH" (8) | u32 version | u64 index | u64 term | u64 data_length
//   | u32 crc32(data) | u64 membership_length | u32 crc32(membership)
//   | u32 crc32(all preceding header bytes) | data | membership
//
// Version 1 files (no membership fields: the header is the first 40 bytes and its CRC) are still
// read; their membership is empty, the bootstrap one.
package zmqnode.storage

import java.io.File
import java.math.BigInteger
import java.nio.file.Files
import java.nio.file.NoSuchFileException

const val SNAPSHOT_MAGIC = "ZQSNAPSH"
const val SNAPSHOT_VERSION = 2
const val SNAPSHOT_FILE_NAME = "snapshot.bin"

private const val SNAP_FIELDS_V1 = 8 + 4 + 8 + 8 + 8 + 4 // magic, version, index, term, data length, data crc
private const val SNAP_FIELDS = SNAP_FIELDS_V1 + 8 + 4 // and membership length, membership crc

private const val SNAPSHOT_ADVICE = "It holds the state of every entry the log no longer has; restore it from a backup or $REJOIN."

/** snapshot.bin's bytes (version 2) for [s]. */
fun encodeSnapshot(s: Snapshot): ByteArray {
    val out = ByteArray(SNAP_FIELDS + 4 + s.data.size + s.membership.size)
    val bb = le(out)
    SNAPSHOT_MAGIC.toByteArray(Charsets.US_ASCII).copyInto(out)
    bb.putInt(8, SNAPSHOT_VERSION)
    bb.putLong(12, s.index)
    bb.putLong(20, s.term)
    bb.putLong(28, s.data.size.toLong())
    bb.putInt(36, crc32(s.data).toInt())
    bb.putLong(40, s.membership.size.toLong())
    bb.putInt(48, crc32(s.membership).toInt())
    bb.putInt(SNAP_FIELDS, crc32(out, 0, SNAP_FIELDS).toInt())
    s.data.copyInto(out, SNAP_FIELDS + 4)
    s.membership.copyInto(out, SNAP_FIELDS + 4 + s.data.size)
    return out
}

private fun unsignedBig(v: Long): BigInteger = BigInteger(u64(v))

/** Parses snapshot.bin's bytes; [path] only names the file in a CorruptionError. */
fun decodeSnapshot(path: String, raw: ByteArray): Snapshot {
    fun corrupt(problem: String): Nothing = throw CorruptionError(path, problem, SNAPSHOT_ADVICE)
    if (raw.size < SNAP_FIELDS_V1 + 4) corrupt("is ${raw.size} bytes long, too short for a snapshot header")
    val magic = SNAPSHOT_MAGIC.toByteArray(Charsets.US_ASCII)
    if (!raw.copyOfRange(0, 8).contentEquals(magic)) {
        corrupt("does not start with ${PyJson.bytesRepr(magic)} (found ${PyJson.bytesRepr(raw.copyOfRange(0, 8))})")
    }
    val version = u32At(raw, 8)
    if (version != 1L && version != SNAPSHOT_VERSION.toLong()) {
        corrupt("has format version $version; this zmqnode reads versions 1 and $SNAPSHOT_VERSION (was it written by a newer release?)")
    }
    val layout = if (version == 1L) SNAP_FIELDS_V1 else SNAP_FIELDS
    if (raw.size < layout + 4) corrupt("is ${raw.size} bytes long, too short for its ${layout + 4}-byte header")
    if (crc32(raw, 0, layout) != u32At(raw, layout)) corrupt("has a header that fails its checksum")
    val index = u64At(raw, 12)
    val term = u64At(raw, 20)
    val length = u64At(raw, 28)
    val dataCrc = u32At(raw, 36)
    var memberLength = 0L
    var memberCrc = 0L
    if (version != 1L) {
        memberLength = u64At(raw, 40)
        memberCrc = u32At(raw, 48)
    }
    val bodyStart = layout + 4
    val bodySize = (raw.size - bodyStart).toLong()
    // Python's sum cannot overflow: compare exactly.
    val total = unsignedBig(length).add(unsignedBig(memberLength))
    if (total != BigInteger.valueOf(bodySize)) corrupt("holds $bodySize bytes after its header where it says $total")
    val dataEnd = bodyStart + length.toInt()
    if (crc32(raw, bodyStart, dataEnd) != dataCrc) corrupt("has data that fails its checksum")
    if (version > 1 && crc32(raw, dataEnd, raw.size) != memberCrc) corrupt("has a membership that fails its checksum")
    return Snapshot(index, term, raw.copyOfRange(bodyStart, dataEnd), raw.copyOfRange(dataEnd, raw.size))
}

/** Saves and loads the latest snapshot in [dir]. */
class SnapshotStore(val dir: String, stats: FsyncStats? = null) {
    val stats: FsyncStats = orNew(stats)
    val path: String = File(dir, SNAPSHOT_FILE_NAME).path

    /** Replaces the stored snapshot with [snap], durably. */
    fun save(snap: Snapshot) {
        ensureDir(dir, stats)
        atomicWrite(path, encodeSnapshot(snap), stats, true)
    }

    /** The stored snapshot, null if there is none; CorruptionError if it is damaged. It first
     *  removes temporary files a crash left in [dir]. */
    fun load(): Snapshot? {
        removeStaleTemps(dir)
        val raw = try {
            Files.readAllBytes(File(path).toPath())
        } catch (e: NoSuchFileException) {
            return null
        }
        return decodeSnapshot(path, raw)
    }
}
