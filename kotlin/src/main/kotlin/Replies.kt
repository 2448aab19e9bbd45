// The one seam every request handler answers through (the Python node's
// zmqnode/replies.py; a port of go/replies): a Replier answers one client
// request exactly once, now or later, so components (the request handlers,
// the training coordinator, HTTP inference) never see a socket.
package zmqnode.replies

import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonObject
import zmqnode.wire.Wire

/**
 * Answers one request. Exactly one of ok, error or redirect ends it;
 * progress may come before (TRAIN's PROGRESS replies, PROTOCOL.md §5.1).
 * Called on the node's loop thread only. req may be null or partial (a
 * request that could not be read): the reply then says type UNKNOWN, id "".
 */
interface Replier {
    /** Answers status OK with fields and blobs (PROTOCOL.md §4). */
    fun ok(req: JsonObject?, blobs: List<ByteArray>, vararg fields: Pair<String, Any?>)

    /** Answers status ERROR with a code and a message for people. */
    fun error(req: JsonObject?, code: ErrorCode, message: String)

    /** Answers REDIRECT to the leader's client address. */
    fun redirect(req: JsonObject?, leader: String)

    /** Sends an intermediate PROGRESS reply; the request stays open. */
    fun progress(req: JsonObject?, vararg fields: Pair<String, Any?>)

    /** Says the answer comes later (the request is parked): metrics count it as pending until an ending method runs. */
    fun wait(req: JsonObject?)
}

/** A Replier that keeps what it was told, for tests of components that answer through a Replier. */
class Recorder : Replier {
    /** Each ending or progress reply header, in order. */
    val answers = ArrayList<JsonObject>()

    /** The blobs sent with each of answers. */
    val blobs = ArrayList<List<ByteArray>>()

    /** Whether wait was called. */
    var waiting = false

    private fun add(reply: JsonObject, b: List<ByteArray>) {
        answers.add(reply)
        blobs.add(b)
    }

    override fun ok(req: JsonObject?, blobs: List<ByteArray>, vararg fields: Pair<String, Any?>) =
        add(Wire.okReply(req, *fields), blobs)

    override fun error(req: JsonObject?, code: ErrorCode, message: String) =
        add(Wire.errorReply(req, code, message), emptyList())

    override fun redirect(req: JsonObject?, leader: String) = add(Wire.redirectReply(req, leader), emptyList())

    override fun progress(req: JsonObject?, vararg fields: Pair<String, Any?>) =
        add(Wire.progressReply(req, *fields), emptyList())

    override fun wait(req: JsonObject?) {
        waiting = true
    }

    /** The latest reply, or null. */
    fun last(): JsonObject? = answers.lastOrNull()
}
