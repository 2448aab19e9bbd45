// The framing used on every zmqnode socket (docs/PROTOCOL.md §2–4 and §8),
// byte for byte as the Python node's zmqnode/transport/wire.py produces it
// (a port of go/wire/wire.go).
//
// A message body is a list of frames: [header JSON] [blob 0] [blob 1] ...
// The header is one JSON object (a JsonObject, keys in order) with at least
// v, type and id; bulk data travels in the blobs, described by the header.
// On the client ROUTER the body follows an envelope (routing frames and an
// empty delimiter): Wire.splitEnvelope and Wire.joinEnvelope.
//
// Everything here is pure: no sockets, no clock. Decoding failures are
// ProtocolError exceptions whose code a node copies into its ERROR reply.
package zmqnode.wire

/**
 * The stable code of an ERROR reply (PROTOCOL.md §4.1). A class, not an
 * enum: a reply may carry a code this version does not know.
 */
data class ErrorCode(val code: String) {
    /**
     * Whether the same request (same id) may succeed if sent again: exactly
     * NOT_LEADER, TIMEOUT, BUSY and UNAVAILABLE; unknown codes are not (§4.1).
     */
    val retryable: Boolean get() = this == NOT_LEADER || this == TIMEOUT || this == BUSY || this == UNAVAILABLE

    override fun toString(): String = code

    companion object {
        @JvmField val MALFORMED = ErrorCode("MALFORMED")
        @JvmField val BAD_REQUEST = ErrorCode("BAD_REQUEST")
        @JvmField val UNSUPPORTED_VERSION = ErrorCode("UNSUPPORTED_VERSION")
        @JvmField val UNKNOWN_TYPE = ErrorCode("UNKNOWN_TYPE")
        @JvmField val BAD_SHAPE = ErrorCode("BAD_SHAPE")
        @JvmField val BAD_INPUT = ErrorCode("BAD_INPUT")
        @JvmField val NOT_FOUND = ErrorCode("NOT_FOUND")
        @JvmField val TOO_LARGE = ErrorCode("TOO_LARGE")
        @JvmField val NOT_LEADER = ErrorCode("NOT_LEADER")
        @JvmField val TIMEOUT = ErrorCode("TIMEOUT")
        @JvmField val BUSY = ErrorCode("BUSY")
        @JvmField val UNAVAILABLE = ErrorCode("UNAVAILABLE")
        @JvmField val INTERNAL = ErrorCode("INTERNAL")
        @JvmField val TRAINING_FAILED = ErrorCode("TRAINING_FAILED")
        @JvmField val CONFLICT = ErrorCode("CONFLICT")

        /** Every code this version knows, in PROTOCOL.md's order. */
        @JvmField val ALL = listOf(MALFORMED, BAD_REQUEST, UNSUPPORTED_VERSION, UNKNOWN_TYPE, BAD_SHAPE, BAD_INPUT,
            NOT_FOUND, TOO_LARGE, NOT_LEADER, TIMEOUT, BUSY, UNAVAILABLE, INTERNAL, TRAINING_FAILED, CONFLICT)
    }
}

/** A reply's status field (§4). */
object Status {
    const val OK = "OK"
    const val ERROR = "ERROR"
    const val REDIRECT = "REDIRECT"
    /** Not an answer: a long request reports how it goes. */
    const val PROGRESS = "PROGRESS"
}

/** Client request types (§5). */
object RequestType {
    const val TRAIN = "TRAIN"
    const val PREDICT = "PREDICT"
    const val LIST = "LIST"
    const val INFO = "INFO"
    const val STATUS = "STATUS"
    const val IMPORT = "IMPORT"
    const val FETCH = "FETCH"
    const val MEMBERS = "MEMBERS"
    const val MEMBER_CHANGE = "MEMBER_CHANGE"
    const val JOIN = "JOIN"

    /** The client request types of §5, in order. */
    @JvmField val ALL = listOf(TRAIN, PREDICT, LIST, INFO, STATUS, IMPORT, FETCH, MEMBERS, MEMBER_CHANGE, JOIN)
}

/**
 * A message that cannot be accepted: the [code] for the ERROR reply, a
 * sentence a person can act on ([reason]), and whatever part of the header
 * could be parsed (null if none) so the reply can echo type and id.
 * message is "CODE: reason".
 */
class ProtocolError(val code: ErrorCode, val reason: String, val header: JsonObject? = null) :
    Exception("${code.code}: $reason")

/** A body split from its envelope (§2.2). */
class Envelope(val routing: List<ByteArray>, val body: List<ByteArray>)

/** A decoded body: its header and its blobs (not copied). */
class Decoded(val header: JsonObject, val blobs: List<ByteArray>)

/**
 * Tunes [Wire.decode]. The defaults are right for client requests.
 * [maxHeaderBytes] bounds the header frame (0 or less: the default);
 * [allowEmptyId] accepts id "" (Raft messages, replies); without it an empty
 * id is BAD_REQUEST unless status is ERROR (a reply to a request whose id
 * could not be read).
 */
data class DecodeOptions(val maxHeaderBytes: Int = Wire.DEFAULT_MAX_HEADER_BYTES, val allowEmptyId: Boolean = false)

object Wire {
    /** The header's v. */
    const val PROTOCOL_VERSION = 1

    /**
     * Bounds a header frame: headers hold scalars and short lists only (bulk
     * data is in blobs), so 1 MiB is generous; a larger one is TOO_LARGE
     * before it is parsed.
     */
    const val DEFAULT_MAX_HEADER_BYTES = 1 shl 20

    /** Bounds request ids (echoed in replies, kept for idempotency), in code points. */
    const val MAX_ID_LENGTH = 128

    /** A reply's type when the request's could not be read. */
    const val UNKNOWN_REQUEST_TYPE = "UNKNOWN"

    /** The code of a ProtocolError anywhere in e's cause chain, or INTERNAL for any other error. */
    fun codeOf(e: Throwable?): ErrorCode {
        var x = e
        while (x != null) {
            if (x is ProtocolError) return x.code
            if (x.cause === x) break
            x = x.cause
        }
        return ErrorCode.INTERNAL
    }

    /** The ProtocolError anywhere in e's cause chain, or null. */
    fun protocolErrorOf(e: Throwable?): ProtocolError? {
        var x = e
        while (x != null) {
            if (x is ProtocolError) return x
            if (x.cause === x) break
            x = x.cause
        }
        return null
    }

    // -----------------------------------------------------------------------
    // Envelope (client ROUTER, §2.2)

    /**
     * Splits [routing..., "", body...] at the first empty frame (the header
     * is never empty, so the split is unambiguous). MALFORMED when there is
     * no delimiter (such a message cannot be answered: drop it). routing is
     * a new list (a reply keeps it while the request runs, not the frames).
     */
    fun splitEnvelope(frames: List<ByteArray>): Envelope {
        for ((i, f) in frames.withIndex()) {
            if (f.isEmpty()) return Envelope(ArrayList(frames.subList(0, i)), frames.subList(i + 1, frames.size))
        }
        throw ProtocolError(ErrorCode.MALFORMED,
            "no empty delimiter frame: send [b'', header, blobs...] from a DEALER, or use a REQ socket")
    }

    /** What a ROUTER sends: routing frames, the delimiter, the body. */
    fun joinEnvelope(routing: List<ByteArray>, body: List<ByteArray>): List<ByteArray> {
        val out = ArrayList<ByteArray>(routing.size + 1 + body.size)
        out.addAll(routing)
        out.add(ByteArray(0))
        out.addAll(body)
        return out
    }

    // -----------------------------------------------------------------------
    // Header + blobs

    /**
     * The frames of one body: the JSON header (orjson's bytes), then the
     * blobs as they are (not copied). v is put first when the header lacks
     * it (as Python's {"v": 1, **header}). A header without type or id, or
     * one that cannot be encoded, is a bug in the sender:
     * IllegalArgumentException, never a message on the wire.
     */
    fun encode(header: JsonObject, blobs: List<ByteArray> = emptyList()): List<ByteArray> {
        require(header.has("type") && header.has("id")) { "wire: header needs 'type' and 'id': $header" }
        var h = header
        if (!header.has("v")) {
            h = JsonObject("v" to PROTOCOL_VERSION)
            for ((k, v) in header.entries) h[k] = v
        }
        val raw = try {
            Json.encode(h)
        } catch (e: JsonException) {
            throw IllegalArgumentException("wire: header: ${e.message}", e)
        }
        val frames = ArrayList<ByteArray>(1 + blobs.size)
        frames.add(raw)
        frames.addAll(blobs)
        return frames
    }

    /**
     * Parses a body (no envelope) into its header and blobs, checking in
     * this order (§2.1): a header frame exists (MALFORMED), it is at most
     * maxHeaderBytes (TOO_LARGE), it is a JSON object (MALFORMED), v is the
     * integer 1 (UNSUPPORTED_VERSION), type is a non-empty string and id a
     * string of at most MAX_ID_LENGTH code points, non-empty for requests
     * (BAD_REQUEST). Throws ProtocolError. The blobs are returned unchecked.
     */
    fun decode(frames: List<ByteArray>, opts: DecodeOptions = DecodeOptions()): Decoded {
        val limit = if (opts.maxHeaderBytes <= 0) DEFAULT_MAX_HEADER_BYTES else opts.maxHeaderBytes
        if (frames.isEmpty()) throw ProtocolError(ErrorCode.MALFORMED, "empty message: no header frame")
        val raw = frames[0]
        if (raw.size > limit) {
            throw ProtocolError(ErrorCode.TOO_LARGE, "header frame is ${raw.size} bytes, limit is $limit")
        }
        val value = try {
            Json.parse(raw)
        } catch (e: JsonException) {
            throw ProtocolError(ErrorCode.MALFORMED, "header is not valid JSON: ${e.message}")
        }
        val header = value as? JsonObject
            ?: throw ProtocolError(ErrorCode.MALFORMED, "header must be a JSON object, got ${Json.kindOf(value)}")
        if (!header.has("v")) {
            throw ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                "header has no protocol version 'v' (this peer speaks v=$PROTOCOL_VERSION)", header)
        }
        val version = header["v"]
        if (Json.intValue(version) != PROTOCOL_VERSION.toLong()) {
            throw ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                "protocol version ${Json.encodeToString(version)} is not supported (this peer speaks v=$PROTOCOL_VERSION)",
                header)
        }
        val type = header["type"]
        if (type !is String || type.length == 0) {
            throw ProtocolError(ErrorCode.BAD_REQUEST, "header field 'type' is missing or not a non-empty string", header)
        }
        val id = header["id"] as? String
            ?: throw ProtocolError(ErrorCode.BAD_REQUEST, "header field 'id' is missing or not a string", header)
        val n = pyLen(id)
        if (n > MAX_ID_LENGTH) {
            throw ProtocolError(ErrorCode.BAD_REQUEST, "request id is $n characters, limit is $MAX_ID_LENGTH", header)
        }
        if (id.length == 0 && !opts.allowEmptyId && header["status"] != Status.ERROR) {
            throw ProtocolError(ErrorCode.BAD_REQUEST, "request id 'id' is empty", header)
        }
        return Decoded(header, frames.subList(1, frames.size))
    }

    /** len() of a Python str: code points, not UTF-16 units. */
    fun pyLen(s: String): Int = s.codePointCount(0, s.length)

    /** The header's type ("" if not a string; decode checked it). */
    fun headerType(h: JsonObject?): String = h?.str("type") ?: ""

    /** The header's id ("" if not a string; decode checked it). */
    fun headerId(h: JsonObject?): String = h?.str("id") ?: ""

    // -----------------------------------------------------------------------
    // Replies (§4)

    /** The header of an OK reply to req (echoing its type and id), then fields in order. */
    fun okReply(req: JsonObject?, vararg fields: Pair<String, Any?>): JsonObject =
        withFields(replyBase(req, Status.OK), fields)

    /** The header of an ERROR reply. req may be partial or null (ProtocolError.header); id is then "". */
    fun errorReply(req: JsonObject?, code: ErrorCode, message: String, vararg fields: Pair<String, Any?>): JsonObject {
        val h = replyBase(req, Status.ERROR)
        h["code"] = code.code
        h["message"] = message
        return withFields(h, fields)
    }

    /**
     * errorReply for a failure: a ProtocolError's (anywhere in the cause
     * chain) code, reason and partial header, or INTERNAL with the error's message.
     */
    fun errorReplyFor(req: JsonObject?, e: Throwable): JsonObject {
        val pe = protocolErrorOf(e)
        if (pe != null) return errorReply(pe.header ?: req, pe.code, pe.reason)
        return errorReply(req, ErrorCode.INTERNAL, e.message ?: e.toString())
    }

    /** The header of a REDIRECT: "ask leader (host:port) instead". */
    fun redirectReply(req: JsonObject?, leader: String, vararg fields: Pair<String, Any?>): JsonObject {
        val h = replyBase(req, Status.REDIRECT)
        h["leader"] = leader
        return withFields(h, fields)
    }

    /** The header of a PROGRESS message (not an answer). */
    fun progressReply(req: JsonObject?, vararg fields: Pair<String, Any?>): JsonObject =
        withFields(replyBase(req, Status.PROGRESS), fields)

    private fun replyBase(req: JsonObject?, status: String): JsonObject {
        val t = req?.str("type")
        val mtype = if (t != null && t.isNotEmpty()) t else UNKNOWN_REQUEST_TYPE
        val s = req?.str("id")
        val id = if (s != null && pyLen(s) <= MAX_ID_LENGTH) s else ""
        return JsonObject("v" to PROTOCOL_VERSION, "type" to mtype, "id" to id, "status" to status)
    }

    private fun withFields(h: JsonObject, fields: Array<out Pair<String, Any?>>): JsonObject {
        for ((k, v) in fields) h[k] = v
        return h
    }

    /**
     * A decoded JSON value roughly as Python's repr would write it, for
     * messages that quote the offending value ([4, 2], 'float16', None).
     */
    fun pyRepr(v: Any?): String = when (v) {
        null -> "None"
        is Boolean -> if (v) "True" else "False"
        is String -> zmqnode.pyfmt.Pyfmt.strRepr(v)
        is JsonNumber -> v.literal
        is List<*> -> v.joinToString(", ", "[", "]") { pyRepr(it) }
        is JsonObject -> v.entries.joinToString(", ", "{", "}") { zmqnode.pyfmt.Pyfmt.strRepr(it.first) + ": " + pyRepr(it.second) }
        is Double -> zmqnode.pyfmt.Pyfmt.floatRepr(v)
        else -> v.toString()
    }
}
