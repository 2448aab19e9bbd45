// The storage package's own copies of the Raft core's types (go/storage/types.go):
// storage does not import zmqnode.raft; the node converts (a field copy).
// All u64 values (index, term) are held in Long and treated as unsigned:
// compared with java.lang.Long.compareUnsigned and printed with
// java.lang.Long.toUnsignedString wherever a value read from disk may be >= 2^63.
package zmqnode.storage

import java.util.Arrays

/** What an entry carries. [value] equals go/raft's EntryKind (0 command, 1 noop, 2 config);
 *  the codes on disk (1 noop, 2 command, 3 config) differ and are private to StorageLogFile.kt. */
enum class EntryKind(val value: Int, val pythonName: String) {
    COMMAND(0, "command"),
    NOOP(1, "noop"),
    CONFIG(2, "config");

    override fun toString(): String = pythonName

    companion object {
        /** The kind whose go/raft value is [value]; null for an unknown one. */
        fun fromValue(value: Int): EntryKind? = values().firstOrNull { it.value == value }
        /** The kind Python calls [name] ("command", "noop", "config"); null otherwise. */
        fun fromPythonName(name: String): EntryKind? = values().firstOrNull { it.pythonName == name }
    }
}

/** One log entry; [data] is opaque to storage. Equality compares the bytes. */
class Entry(val index: Long, val term: Long, val kind: EntryKind = EntryKind.COMMAND, val data: ByteArray = ByteArray(0)) {
    override fun equals(other: Any?): Boolean =
        other is Entry && other.index == index && other.term == term && other.kind == kind && Arrays.equals(other.data, data)

    override fun hashCode(): Int = (index * 31 + term).hashCode() * 31 + kind.hashCode() * 17 + Arrays.hashCode(data)

    override fun toString(): String =
        "Entry(index=${java.lang.Long.toUnsignedString(index)}, term=${java.lang.Long.toUnsignedString(term)}, kind=$kind, ${data.size} bytes)"
}

/** The node's current term and vote ("" when it has not voted in [term]). The vote may hold
 *  any Kotlin String, lone surrogates included (what a Python str can hold). */
data class HardState(val term: Long = 0, val vote: String = "")

/** State machine state covering every entry up to and including [index], and the membership
 *  as of [index] (encoded; empty: the bootstrap one). Equality compares the bytes. */
class Snapshot(val index: Long, val term: Long, val data: ByteArray = ByteArray(0), val membership: ByteArray = ByteArray(0)) {
    override fun equals(other: Any?): Boolean =
        other is Snapshot && other.index == index && other.term == term &&
            Arrays.equals(other.data, data) && Arrays.equals(other.membership, membership)

    override fun hashCode(): Int = (index * 31 + term).hashCode() * 31 + Arrays.hashCode(data) + Arrays.hashCode(membership)

    override fun toString(): String =
        "Snapshot(index=${java.lang.Long.toUnsignedString(index)}, term=${java.lang.Long.toUnsignedString(term)}, " +
            "${data.size} data bytes, ${membership.size} membership bytes)"
}

/** The part of a Raft Ready that storage persists. */
class Ready(val hardState: HardState? = null, val entries: List<Entry> = emptyList(), val snapshot: Snapshot? = null)

/** What NodeStorage.open found: the Raft core's start state. [entries] continue right after
 *  [snapshot] (or start at 1 without one). [warnings] say what recovery repaired (already
 *  given to the warn hook). */
class Recovered(val hardState: HardState, val snapshot: Snapshot?, val entries: List<Entry>, val warnings: List<String>)

/** What an operator can always do when one node's disk is beyond repair (errors.py REJOIN). */
const val REJOIN = "remove the whole storage dir to rejoin as an empty node — the other nodes " +
    "will send it everything (do this only while the other nodes form a working majority)"

/** Python's StorageCorruption: bytes on disk fail a check; the node must not start from them
 *  (log CRITICAL, exit 2). [message] is `path + " " + problem + ". " + advice`, as str(exc). */
class CorruptionError(val path: String, val problem: String, val advice: String) :
    RuntimeException("$path $problem. $advice")

/** Python's StorageBroken: an earlier write or fsync failed, so what is on disk is unknown;
 *  the object refuses further use. Restart the node. */
class BrokenError(message: String) : java.io.IOException(message)

/** Python's InvalidModelId (a ValueError): a model id that is not 1-64 of A-Z a-z 0-9 _ -. */
class InvalidModelIdError(val id: String) :
    IllegalArgumentException("invalid model id ${zmqnode.pyfmt.Pyfmt.strRepr(id)}: use 1 to 64 letters, digits, '_' or '-'")

/** Go's ErrInvalidArgument, Python's ValueError: a caller's mistake (entries that leave a gap,
 *  compaction beyond the log, an entry too large); nothing was written. */
class InvalidArgumentError(message: String) : IllegalArgumentException(message)

/** Go's ErrNotOpen / ErrAlreadyOpen, Python's RuntimeError: used before open, or opened twice. */
class NotOpenError(message: String) : IllegalStateException(message)
class AlreadyOpenError(message: String) : IllegalStateException(message)

internal fun u64(v: Long): String = java.lang.Long.toUnsignedString(v)
internal fun ucmp(a: Long, b: Long): Int = java.lang.Long.compareUnsigned(a, b)
