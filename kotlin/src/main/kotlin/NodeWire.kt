// The node's frames (PROTOCOL.md §2, §4, §8): envelope, header + blobs,
// replies and the Raft message codec (go/wire/wire.go, go/wire/raft.go,
// go/node/raftwire.go), written straight to zmqnode.raft's Message.
// Kept in the node's package: it needs only zmqnode.wire's JSON model.
package zmqnode.node

import zmqnode.raft.BROADCAST
import zmqnode.raft.Entry
import zmqnode.raft.EntryKind
import zmqnode.raft.Message
import zmqnode.raft.MessageType
import zmqnode.raft.Snapshot
import zmqnode.wire.Json
import zmqnode.wire.JsonException
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

/** The error codes of PROTOCOL.md §4.1. */
object Codes {
    const val MALFORMED = "MALFORMED"
    const val BAD_REQUEST = "BAD_REQUEST"
    const val UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    const val UNKNOWN_TYPE = "UNKNOWN_TYPE"
    const val BAD_SHAPE = "BAD_SHAPE"
    const val BAD_INPUT = "BAD_INPUT"
    const val NOT_FOUND = "NOT_FOUND"
    const val TOO_LARGE = "TOO_LARGE"
    const val NOT_LEADER = "NOT_LEADER"
    const val TIMEOUT = "TIMEOUT"
    const val BUSY = "BUSY"
    const val UNAVAILABLE = "UNAVAILABLE"
    const val INTERNAL = "INTERNAL"
    const val TRAINING_FAILED = "TRAINING_FAILED"
    const val CONFLICT = "CONFLICT"
}

/** A message that cannot be accepted: the ERROR reply's code and message, and the header parsed so far. */
class ProtocolError(val code: String, message: String, val header: JsonObject? = null) : Exception(message)

object NodeWire {
    const val PROTOCOL_VERSION = 1
    const val DEFAULT_MAX_HEADER_BYTES = 1 shl 20
    const val MAX_ID_LENGTH = 128
    const val RAFT_TYPE_PREFIX = "raft."
    const val HEARTBEAT_TOPIC = "raft"
    const val MAX_RAFT_INT = Long.MAX_VALUE

    /** [routing..., "", body...] split at the first empty frame; MALFORMED without one. */
    fun splitEnvelope(frames: List<ByteArray>): Pair<List<ByteArray>, List<ByteArray>> {
        for (i in frames.indices) {
            if (frames[i].isEmpty()) return Pair(ArrayList(frames.subList(0, i)), frames.subList(i + 1, frames.size))
        }
        throw ProtocolError(Codes.MALFORMED,
            "no empty delimiter frame: send [b'', header, blobs...] from a DEALER, or use a REQ socket")
    }

    fun joinEnvelope(routing: List<ByteArray>, body: List<ByteArray>): List<ByteArray> {
        val out = ArrayList<ByteArray>(routing.size + 1 + body.size)
        out.addAll(routing)
        out.add(ByteArray(0))
        out.addAll(body)
        return out
    }

    /** The body's frames: the header (with "v" first when it lacks one), then the blobs. */
    fun encode(header: JsonObject, blobs: List<ByteArray> = emptyList()): List<ByteArray> {
        require(header.has("type") && header.has("id")) { "wire: header needs 'type' and 'id': $header" }
        val h = if (header.has("v")) header else {
            val o = JsonObject("v" to PROTOCOL_VERSION)
            for ((k, v) in header.entries) o[k] = v
            o
        }
        val out = ArrayList<ByteArray>(1 + blobs.size)
        out.add(Json.encode(h))
        out.addAll(blobs)
        return out
    }

    /** Parses a body into header and blobs, checking as §2.1 says (go/wire Decode). */
    fun decode(frames: List<ByteArray>, maxHeaderBytes: Int = 0, allowEmptyId: Boolean = false): Pair<JsonObject, List<ByteArray>> {
        val limit = if (maxHeaderBytes <= 0) DEFAULT_MAX_HEADER_BYTES else maxHeaderBytes
        if (frames.isEmpty()) throw ProtocolError(Codes.MALFORMED, "empty message: no header frame")
        val raw = frames[0]
        if (raw.size > limit) throw ProtocolError(Codes.TOO_LARGE, "header frame is ${raw.size} bytes, limit is $limit")
        val value = try {
            Json.parse(raw)
        } catch (e: JsonException) {
            throw ProtocolError(Codes.MALFORMED, "header is not valid JSON: ${e.message}")
        }
        val header = value as? JsonObject
            ?: throw ProtocolError(Codes.MALFORMED, "header must be a JSON object, got ${Json.kindOf(value)}")
        if (!header.has("v")) {
            throw ProtocolError(Codes.UNSUPPORTED_VERSION,
                "header has no protocol version 'v' (this peer speaks v=$PROTOCOL_VERSION)", header)
        }
        if (Json.intValue(header["v"]) != PROTOCOL_VERSION.toLong()) {
            throw ProtocolError(Codes.UNSUPPORTED_VERSION, "protocol version ${Json.encodeToString(header["v"])} " +
                "is not supported (this peer speaks v=$PROTOCOL_VERSION)", header)
        }
        val t = header["type"]
        if (t !is String || t.isEmpty()) {
            throw ProtocolError(Codes.BAD_REQUEST, "header field 'type' is missing or not a non-empty string", header)
        }
        val id = header["id"] as? String
            ?: throw ProtocolError(Codes.BAD_REQUEST, "header field 'id' is missing or not a string", header)
        val n = id.codePointCount(0, id.length)
        if (n > MAX_ID_LENGTH) throw ProtocolError(Codes.BAD_REQUEST, "request id is $n characters, limit is $MAX_ID_LENGTH", header)
        if (id.isEmpty() && !allowEmptyId && header["status"] != "ERROR") {
            throw ProtocolError(Codes.BAD_REQUEST, "request id 'id' is empty", header)
        }
        return Pair(header, frames.subList(1, frames.size))
    }

    fun headerType(h: JsonObject?): String = (h?.get("type") as? String) ?: ""
    fun headerId(h: JsonObject?): String = (h?.get("id") as? String) ?: ""

    private fun replyBase(req: JsonObject?, status: String): JsonObject {
        val t = req?.get("type")
        val type = if (t is String && t.isNotEmpty()) t else "UNKNOWN"
        val i = req?.get("id")
        val id = if (i is String && i.codePointCount(0, i.length) <= MAX_ID_LENGTH) i else ""
        return JsonObject("v" to PROTOCOL_VERSION, "type" to type, "id" to id, "status" to status)
    }

    fun okReply(req: JsonObject?, fields: List<Pair<String, Any?>> = emptyList()): JsonObject {
        val h = replyBase(req, "OK")
        for ((k, v) in fields) h[k] = v
        return h
    }

    fun errorReply(req: JsonObject?, code: String, message: String): JsonObject {
        val h = replyBase(req, "ERROR")
        h["code"] = code
        h["message"] = message
        return h
    }

    fun redirectReply(req: JsonObject?, leader: String): JsonObject {
        val h = replyBase(req, "REDIRECT")
        h["leader"] = leader
        return h
    }

    fun progressReply(req: JsonObject?, fields: List<Pair<String, Any?>>): JsonObject {
        val h = replyBase(req, "PROGRESS")
        for ((k, v) in fields) h[k] = v
        return h
    }

    // -- Raft messages (§8) ------------------------------------------------------------

    private fun structureProblem(m: Message): String? {
        if (m.entries.isNotEmpty() && m.type != MessageType.APPEND) {
            return "${m.type.value} message carries ${m.entries.size} entries; only append may"
        }
        if ((m.snapshot != null) != (m.type == MessageType.SNAPSHOT)) {
            return if (m.type == MessageType.SNAPSHOT) "snapshot message without a snapshot"
            else "${m.type.value} message carries a snapshot; only snapshot may"
        }
        for ((i, e) in m.entries.withIndex()) {
            if (e.index != m.logIndex + i + 1) {
                return "append entries must be consecutive after log_index ${m.logIndex}: entry $i has index " +
                    "${e.index}, expected ${m.logIndex + i + 1}"
            }
        }
        return null
    }

    /** A Raft message's body frames, the header's keys in the Python node's order. */
    fun encodeRaft(m: Message): List<ByteArray> {
        structureProblem(m)?.let { throw IllegalArgumentException("wire: $it") }
        val h = JsonObject("v" to PROTOCOL_VERSION, "type" to RAFT_TYPE_PREFIX + m.type.value, "id" to "",
            "src" to m.src, "dst" to m.dst, "read_ctx" to m.readCtx, "term" to m.term, "log_index" to m.logIndex,
            "log_term" to m.logTerm, "commit" to m.commit, "index" to m.index, "reject_hint" to m.rejectHint,
            "context" to m.context, "reject" to m.reject, "force" to m.force)
        val blobs = ArrayList<ByteArray>(m.entries.size + 1)
        h["entries"] = m.entries.map { e ->
            blobs.add(e.data)
            JsonObject("index" to e.index, "term" to e.term, "kind" to e.kind.value)
        }
        val s = m.snapshot
        if (s == null) {
            h["snapshot"] = null
        } else {
            h["snapshot"] = JsonObject("index" to s.index, "term" to s.term,
                "membership" to String(s.membership, Charsets.UTF_8))
            blobs.add(s.data)
        }
        val out = ArrayList<ByteArray>(1 + blobs.size)
        out.add(Json.encode(h))
        out.addAll(blobs)
        return out
    }

    /** Parses a body made by [encodeRaft], all or nothing (go/wire DecodeRaft). */
    fun decodeRaft(frames: List<ByteArray>, maxHeaderBytes: Int = 0): Message {
        val (header, blobs) = decode(frames, maxHeaderBytes, allowEmptyId = true)
        val wireType = headerType(header)
        val type = if (wireType.startsWith(RAFT_TYPE_PREFIX)) {
            try {
                MessageType.parse(wireType.substring(RAFT_TYPE_PREFIX.length))
            } catch (e: IllegalArgumentException) {
                null
            }
        } else null
        type ?: throw ProtocolError(Codes.UNKNOWN_TYPE, "'$wireType' is not a Raft message type", header)
        fun bad(msg: String): Nothing = throw ProtocolError(Codes.BAD_REQUEST, "raft message: $msg", header)
        fun str(o: JsonObject, name: String, where: String = ""): String {
            val label = if (where == "") name else "$where.$name"
            if (!o.has(name)) bad("field '$label' is missing")
            return o[name] as? String ?: bad("field '$label' must be a string, got ${Json.encodeToString(o[name])}")
        }
        fun int(o: JsonObject, name: String, where: String = ""): Long {
            val label = if (where == "") name else "$where.$name"
            if (!o.has(name)) bad("field '$label' is missing")
            val v = o[name]
            val n = (v as? JsonNumber)?.toLongOrNull()
            if (n == null || n < 0) bad("field '$label' must be an integer in 0..$MAX_RAFT_INT, got ${Json.encodeToString(v)}")
            return n
        }
        fun bool(name: String): Boolean {
            if (!header.has(name)) bad("field '$name' is missing")
            return header[name] as? Boolean ?: bad("field '$name' must be a boolean, got ${Json.encodeToString(header[name])}")
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
        val rawEntries = header["entries"] as? List<*> ?: bad("field 'entries' must be a list")
        if (!header.has("snapshot")) bad("field 'snapshot' is missing (null when absent)")
        val rawSnap = header["snapshot"]
        val expected = rawEntries.size + if (rawSnap != null) 1 else 0
        if (blobs.size != expected) {
            bad("${rawEntries.size} entries and ${if (rawSnap != null) "a" else "no"} snapshot need $expected " +
                "binary frame(s), got ${blobs.size}")
        }
        val entries = rawEntries.mapIndexed { i, raw ->
            val where = "entries[$i]"
            val o = raw as? JsonObject ?: bad("$where must be an object")
            val kindName = o["kind"] as? String
            val kind = EntryKind.values().firstOrNull { it.value == kindName }
                ?: bad("$where.kind ${Json.encodeToString(o["kind"])} is not one of ['noop', 'command', 'config']")
            Entry(int(o, "index", where), int(o, "term", where), kind, blobs[i])
        }
        val snapshot = when (rawSnap) {
            null -> null
            is JsonObject -> {
                val mem = if (rawSnap.has("membership")) {
                    (rawSnap["membership"] as? String ?: bad("snapshot field 'membership' must be a string"))
                        .toByteArray(Charsets.UTF_8)
                } else ByteArray(0)
                Snapshot(int(rawSnap, "index", "snapshot"), int(rawSnap, "term", "snapshot"), blobs[blobs.size - 1], mem)
            }
            else -> bad("field 'snapshot' must be an object or null")
        }
        val m = Message(type, src, dst, term, logIndex, logTerm, entries, commit, reject, index, rejectHint,
            context, readCtx, force, snapshot)
        structureProblem(m)?.let { bad(it) }
        return m
    }

    fun isBroadcast(dst: String) = dst == BROADCAST
}
