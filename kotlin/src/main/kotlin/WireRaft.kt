// Raft messages on the wire (docs/PROTOCOL.md §8, zmqnode/transport/
// raft_codec.py; a port of go/wire/raft.go). RaftMessage mirrors
// zmqnode.raft.messages.Message field for field; it is local to the wire
// package on purpose: the Raft core defines its own message, and the node
// maps between the two. Integers are Longs in 0..2^63-1.
package zmqnode.wire

import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction

/** A Raft message kind, as the Python MessageType values. */
enum class RaftMessageType(val value: String) {
    PRE_VOTE("pre_vote"),
    PRE_VOTE_RESP("pre_vote_resp"),
    VOTE("vote"),
    VOTE_RESP("vote_resp"),
    APPEND("append"),
    APPEND_RESP("append_resp"),
    HEARTBEAT("heartbeat"),
    HEARTBEAT_RESP("heartbeat_resp"),
    SNAPSHOT("snapshot"),
    TIMEOUT_NOW("timeout_now"),
    READ_INDEX("read_index"),
    READ_INDEX_RESP("read_index_resp");

    /** The header's type: "raft." + value. */
    val wireType: String get() = RaftWire.TYPE_PREFIX + value

    override fun toString(): String = value

    companion object {
        /** The type whose value is [value] ("append"), or null. */
        fun of(value: String): RaftMessageType? = values().firstOrNull { it.value == value }
    }
}

/** What a log entry carries (§8.1). */
enum class EntryKind(val value: String) {
    NOOP("noop"),
    COMMAND("command"),
    CONFIG("config");

    override fun toString(): String = value

    companion object {
        /** The kind named [value], or null. */
        fun of(value: String?): EntryKind? = values().firstOrNull { it.value == value }
    }
}

/** One log entry; data travels as its own blob. (equals compares data by reference.) */
data class RaftEntry(val index: Long, val term: Long, val kind: EntryKind, val data: ByteArray = ByteArray(0))

/**
 * InstallSnapshot's payload: data travels as the last blob, membership (JSON
 * text as UTF-8 bytes; empty: the command line's members) in the header.
 */
data class RaftSnapshot(val index: Long, val term: Long, val data: ByteArray = ByteArray(0),
                        val membership: ByteArray = ByteArray(0))

/** One Raft message (Python's Message; see its docstring for which fields each type uses). */
data class RaftMessage(
    val type: RaftMessageType,
    val src: String = "",
    val dst: String = "",
    val term: Long = 0,
    val logIndex: Long = 0,
    val logTerm: Long = 0,
    val entries: List<RaftEntry> = emptyList(),
    val commit: Long = 0,
    val reject: Boolean = false,
    val index: Long = 0,
    val rejectHint: Long = 0,
    val context: Long = 0,
    val readCtx: String = "",
    val force: Boolean = false,
    val snapshot: RaftSnapshot? = null
)

object RaftWire {
    /** Prefixes a Raft message's type on the wire ("raft.append"). */
    const val TYPE_PREFIX = "raft."

    /** The PUB/SUB topic frame in front of a heartbeat body. */
    const val HEARTBEAT_TOPIC = "raft"

    /** A heartbeat's dst. */
    const val BROADCAST = "*"

    /** The largest integer a Raft header field may hold (2^63-1). */
    const val MAX_RAFT_INT = Long.MAX_VALUE

    /** Whether a header's type names a Raft message. */
    fun isRaftType(wireType: String): Boolean = wireType.startsWith(TYPE_PREFIX)

    /** The invariants every Raft message on the wire satisfies (Raft §5.3, §7); null when they hold. */
    private fun checkStructure(m: RaftMessage): String? {
        if (m.entries.isNotEmpty() && m.type != RaftMessageType.APPEND) {
            return "${m.type} message carries ${m.entries.size} entries; only append may"
        }
        if ((m.snapshot != null) != (m.type == RaftMessageType.SNAPSHOT)) {
            return if (m.type == RaftMessageType.SNAPSHOT) "snapshot message without a snapshot"
            else "${m.type} message carries a snapshot; only snapshot may"
        }
        for ((i, e) in m.entries.withIndex()) {
            val expected = m.logIndex + i + 1
            if (e.index != expected) {
                return "append entries must be consecutive after log_index ${m.logIndex}: " +
                    "entry $i has index ${e.index}, expected $expected"
            }
        }
        return null
    }

    /**
     * m's body frames (no envelope or topic), the header's keys in the
     * Python node's order so the bytes are identical. A message decode would
     * refuse (structure, a negative integer, membership not UTF-8) is a bug
     * in the sender: IllegalArgumentException.
     */
    fun encode(m: RaftMessage): List<ByteArray> {
        checkStructure(m)?.let { throw IllegalArgumentException("wire: $it") }
        val ints = listOf("term" to m.term, "log_index" to m.logIndex, "log_term" to m.logTerm, "commit" to m.commit,
            "index" to m.index, "reject_hint" to m.rejectHint, "context" to m.context)
        for ((name, v) in ints) {
            require(v >= 0) { "wire: $name must be an integer in 0..$MAX_RAFT_INT, got $v" }
        }
        val h = JsonObject("type" to m.type.wireType, "id" to "", "src" to m.src, "dst" to m.dst, "read_ctx" to m.readCtx)
        for ((name, v) in ints) h[name] = v
        h["reject"] = m.reject
        h["force"] = m.force
        val blobs = ArrayList<ByteArray>(m.entries.size + 1)
        val entries = m.entries.withIndex().map { (i, e) ->
            require(e.index >= 0 && e.term >= 0) { "wire: entry $i: index and term must be in 0..$MAX_RAFT_INT" }
            blobs.add(e.data)
            JsonObject("index" to e.index, "term" to e.term, "kind" to e.kind.value)
        }
        h["entries"] = entries
        val s = m.snapshot
        if (s == null) {
            h["snapshot"] = null
        } else {
            require(s.index >= 0 && s.term >= 0) { "wire: snapshot index and term must be in 0..$MAX_RAFT_INT" }
            val text = try {
                Charsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(s.membership)).toString()
            } catch (e: CharacterCodingException) {
                throw IllegalArgumentException("wire: snapshot membership is not UTF-8 text")
            }
            h["snapshot"] = JsonObject("index" to s.index, "term" to s.term, "membership" to text)
            blobs.add(s.data)
        }
        return Wire.encode(h, blobs)
    }

    /**
     * Parses a body made by encode, all or nothing: Wire.decode's errors (an
     * empty id is allowed), UNKNOWN_TYPE for a type that is not a Raft
     * message, BAD_REQUEST for a missing or mistyped field (true is not an
     * integer, 0 is not a boolean), an integer outside 0..2^63-1, a blob
     * count other than entries + (snapshot ? 1 : 0), or entries and
     * snapshots where the type does not allow them. maxHeaderBytes 0 is the
     * default. Entry and snapshot data alias the frames. Throws ProtocolError.
     */
    fun decode(frames: List<ByteArray>, maxHeaderBytes: Int = 0): RaftMessage {
        val decoded = Wire.decode(frames, DecodeOptions(maxHeaderBytes, allowEmptyId = true))
        val header = decoded.header
        val blobs = decoded.blobs
        val wireType = Wire.headerType(header)
        val mtype = (if (isRaftType(wireType)) RaftMessageType.of(wireType.removePrefix(TYPE_PREFIX)) else null)
            ?: throw ProtocolError(ErrorCode.UNKNOWN_TYPE, "'$wireType' is not a Raft message type", header)
        fun bad(text: String) = ProtocolError(ErrorCode.BAD_REQUEST, "raft message: $text", header)
        fun label(where: String, name: String) = if (where.length == 0) name else "$where.$name"
        fun str(obj: JsonObject, name: String, where: String = ""): String {
            if (!obj.has(name)) throw bad("field '${label(where, name)}' is missing")
            val v = obj[name]
            return v as? String ?: throw bad("field '${label(where, name)}' must be a string, got ${Wire.pyRepr(v)}")
        }
        fun int(obj: JsonObject, name: String, where: String = ""): Long {
            if (!obj.has(name)) throw bad("field '${label(where, name)}' is missing")
            val v = obj[name]
            val n = (v as? JsonNumber)?.toUnsignedOrNull()
            if (n == null || n.bitLength() > 63) {
                throw bad("field '${label(where, name)}' must be an integer in 0..$MAX_RAFT_INT, got ${Wire.pyRepr(v)}")
            }
            return n.toLong()
        }
        fun bool(name: String): Boolean {
            if (!header.has(name)) throw bad("field '$name' is missing")
            val v = header[name]
            return v as? Boolean ?: throw bad("field '$name' must be a boolean, got ${Wire.pyRepr(v)}")
        }
        val src = str(header, "src")
        val dst = str(header, "dst")
        val readCtx = str(header, "read_ctx")
        val term = int(header, "term")
        val logIndex = int(header, "log_index")
        val logTerm = int(header, "log_term")
        val commit = int(header, "commit")
        val index = int(header, "index")
        val rejectHint = int(header, "reject_hint")
        val context = int(header, "context")
        val reject = bool("reject")
        val force = bool("force")
        val rawEntries = header["entries"] as? List<*> ?: throw bad("field 'entries' must be a list")
        if (!header.has("snapshot")) throw bad("field 'snapshot' is missing (null when absent)")
        val rawSnapshot = header["snapshot"]
        val expected = rawEntries.size + if (rawSnapshot != null) 1 else 0
        if (blobs.size != expected) {
            val article = if (rawSnapshot != null) "a" else "no"
            throw bad("${rawEntries.size} entries and $article snapshot need $expected binary frame(s), got ${blobs.size}")
        }
        val entries = rawEntries.withIndex().map { (i, raw) ->
            val where = "entries[$i]"
            val obj = raw as? JsonObject ?: throw bad("$where must be an object")
            val kv = obj["kind"]
            val kind = EntryKind.of(kv as? String)
                ?: throw bad("$where.kind ${Wire.pyRepr(kv)} is not one of ['noop', 'command', 'config']")
            val ei = int(obj, "index", where)
            val et = int(obj, "term", where)
            RaftEntry(ei, et, kind, blobs[i])
        }
        val snapshot = when (rawSnapshot) {
            null -> null
            is JsonObject -> {
                var membership = ByteArray(0)
                if (rawSnapshot.has("membership")) {
                    val text = rawSnapshot["membership"] as? String
                        ?: throw bad("snapshot field 'membership' must be a string")
                    membership = text.toByteArray(Charsets.UTF_8)
                }
                val si = int(rawSnapshot, "index", "snapshot")
                val st = int(rawSnapshot, "term", "snapshot")
                RaftSnapshot(si, st, blobs[blobs.size - 1], membership)
            }
            else -> throw bad("field 'snapshot' must be an object or null")
        }
        val m = RaftMessage(mtype, src, dst, term, logIndex, logTerm, entries, commit, reject, index, rejectHint,
            context, readCtx, force, snapshot)
        checkStructure(m)?.let { throw bad(it) }
        return m
    }
}
