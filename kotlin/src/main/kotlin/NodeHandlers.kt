// Every client request type (handlers.py RequestHandlers, go/node/handlers.go
// and client.go): each is answered now or parked; REDIRECT to the leader,
// BUSY past the node's bounds, errors with PROTOCOL.md §4.1's codes.
package zmqnode.node

import zmqnode.wire.ErrorCode
import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject
import zmqnode.wire.NdArray
import zmqnode.wire.ProtocolError
import zmqnode.wire.Wire
import java.io.RandomAccessFile
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** How a handler answers one request, exactly once (replies.py). */
interface Replier {
    fun ok(req: JsonObject?, blobs: List<ByteArray> = emptyList(), fields: List<Pair<String, Any?>> = emptyList())
    fun error(req: JsonObject?, code: ErrorCode, message: String)
    fun redirect(req: JsonObject?, leader: String)
    fun progress(req: JsonObject?, fields: List<Pair<String, Any?>>)
    /** The request is parked: the node answers UNAVAILABLE if it stops first. */
    fun waitFor(req: JsonObject?)
}

/** A model as the handlers serve it (zmqnode.ml's model behind NodeModels.kt). */
interface ServedModel {
    val nInputs: Int
    /** The class labels (JSON values); empty for regression. */
    val classes: List<Any?>
    /** Class indexes of rows x nInputs inputs, and the probabilities (rows x k) when asked. */
    fun classify(x: FloatArray, rows: Int, proba: Boolean): Pair<LongArray, FloatArray?>
    /** Regression outputs (rows x cols) and cols. */
    fun values(x: FloatArray, rows: Int): Pair<FloatArray, Int>
    /** INFO's metadata document (JSON values). */
    fun metadata(): Any?
    /** registry.py listing_summary. */
    fun listingSummary(): JsonObject
}

/** The leader's training coordinator as the handlers see it; null: TRAIN is not available. */
interface TrainingService {
    fun running(requestId: String): Boolean
    fun submit(req: JsonObject, blobs: List<ByteArray>, reply: Replier)
    fun joined(): Int
}

/** Answers one request from the client ROUTER (replies.py ClientReplier). */
class ClientReplier(private val n: Node, private val routing: List<ByteArray>) : Replier {
    var kind = "unknown"
    private val received = System.nanoTime()
    private var sent = false
    var req: JsonObject? = null
        private set

    private fun send(header: JsonObject, blobs: List<ByteArray>) {
        if (sent) return
        sent = true
        if (req != null) n.waiting.remove(this)
        val status = header.str("code") ?: header.str("status") ?: ""
        n.stats.requestDone(kind, status, (System.nanoTime() - received) / 1e9)
        val body = try {
            Wire.encode(header, blobs)
        } catch (e: Exception) {
            n.log.error("zmqnode.replies", "cannot encode a reply: ${e.message}")
            return
        }
        val ok = try { n.client.trySend(Wire.joinEnvelope(routing, body)) } catch (e: Exception) { false }
        if (!ok) n.count("replies_dropped")
    }

    override fun ok(req: JsonObject?, blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) =
        send(Wire.okReply(req, *fields.toTypedArray()), blobs)

    override fun error(req: JsonObject?, code: ErrorCode, message: String) = send(Wire.errorReply(req, code, message), emptyList())

    override fun redirect(req: JsonObject?, leader: String) = send(Wire.redirectReply(req, leader), emptyList())

    override fun progress(req: JsonObject?, fields: List<Pair<String, Any?>>) {
        if (sent) return
        try {
            n.client.trySend(Wire.joinEnvelope(routing, Wire.encode(Wire.progressReply(req, *fields.toTypedArray()))))
        } catch (e: Exception) {
        }
    }

    override fun waitFor(req: JsonObject?) {
        if (sent) return
        this.req = req
        n.waiting.add(this)
    }
}

class Handlers(private val n: Node) {
    private val cfg = n.cfg
    private val id = n.id
    val batcher = Batcher(n)
    var training: TrainingService? = null
    var members: MemberRequests? = MemberRequests(n, this)

    private val table: Map<String, (JsonObject, List<ByteArray>, Replier) -> Unit>
        get() {
            val t = linkedMapOf<String, (JsonObject, List<ByteArray>, Replier) -> Unit>(
                "STATUS" to ::handleStatus, "LIST" to ::handleList, "INFO" to ::handleInfo,
                "PREDICT" to ::handlePredict, "TRAIN" to ::handleTrain, "IMPORT" to ::handleImport,
                "FETCH" to ::handleFetch)
            members?.let { m ->
                t["MEMBERS"] = m::handleMembers
                t["MEMBER_CHANGE"] = m::handleChange
                t["JOIN"] = m::handleJoin
            }
            return t
        }

    fun known(type: String) = table.containsKey(type)

    /** Takes one request's frames as the ROUTER received them. */
    fun onClient(frames: List<ByteArray>) {
        val (routing, body) = try {
            Wire.splitEnvelope(frames).let { Pair(it.routing, it.body) }
        } catch (e: ProtocolError) {
            n.count("client_garbage")
            n.log.warning("zmqnode.handlers", "dropped a client message without envelope: ${e.reason}")
            return
        }
        val reply = ClientReplier(n, routing)
        val (req, blobs) = try {
            Wire.decode(body).let { Pair(it.header, it.blobs) }
        } catch (e: ProtocolError) {
            reply.error(e.header, e.code, e.reason)
            return
        }
        val size = body.map { it.size.toLong() }.sum()
        if (size > cfg.maxRequestBytes) {
            reply.error(req, ErrorCode.TOO_LARGE, "request is $size bytes; node $id accepts at most ${cfg.maxRequestBytes} " +
                "(--max-request-bytes)")
            return
        }
        val t = Wire.headerType(req)
        if (known(t)) reply.kind = t
        dispatch(req, blobs, reply)
    }

    /** Serves one decoded request; every error is answered through reply (HTTP inference comes here too). */
    fun dispatch(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        try {
            val t = Wire.headerType(req)
            val h = table[t]
            if (h == null) {
                throw ProtocolError(ErrorCode.UNKNOWN_TYPE, "unknown request type ${pyStr(t)}; this node serves " +
                    table.keys.sorted().joinToString(", "), req)
            }
            h(req, blobs, reply)
        } catch (e: ProtocolError) {
            reply.error(e.header ?: req, e.code, e.reason)
        } catch (e: FatalError) {
            throw e
        } catch (e: Exception) {
            n.log.error("zmqnode.handlers", "internal error serving a request: $e")
            reply.error(req, ErrorCode.INTERNAL, "node $id failed: $e")
        }
    }

    /** The client's timeout_ms (90%, at least 50 ms), within --request-timeout; milliseconds. */
    fun requestTimeoutMillis(req: JsonObject): Long {
        val max = (cfg.requestTimeoutSeconds * 1000).toLong()
        val v = req["timeout_ms"]
        if (v is JsonNumber && v.isInteger) {
            val ms = v.toLongOrNull()
            if (ms != null && ms > 0) {
                val d = maxOf(50L, (ms * 0.9).toLong())
                if (d < max) return d
            }
        }
        return max
    }

    fun pending(): Int = n.waiters.parked + (training?.joined() ?: 0)

    /** BUSY for a request that would park while --max-pending are parked. */
    fun admit(req: JsonObject) {
        if (pending() >= cfg.maxPending) {
            n.count("busy_pending")
            throw ProtocolError(ErrorCode.BUSY, "node $id has ${cfg.maxPending} requests waiting (--max-pending); retry later", req)
        }
    }

    private fun admitBytes(req: JsonObject, size: Long) {
        val held = n.proposals.uncommittedBytes
        if (held > 0 && held + size > cfg.maxUncommittedBytes) {
            n.count("busy_uncommitted")
            throw ProtocolError(ErrorCode.BUSY, "node $id holds $held bytes of models not yet committed; $size more would " +
                "pass --max-uncommitted-bytes ${cfg.maxUncommittedBytes}; retry later", req)
        }
    }

    /** Answers once this node has caught up with the leader's commit index, or UNAVAILABLE at the deadline. */
    fun later(req: JsonObject, reply: Replier, answer: () -> Unit) {
        admit(req)
        reply.waitFor(req)
        n.waiters.afterReadIndex(requestTimeoutMillis(req), {
            try {
                answer()
            } catch (e: ProtocolError) {
                reply.error(e.header ?: req, e.code, e.reason)
            }
        }, {
            reply.error(req, ErrorCode.UNAVAILABLE, "node $id could not confirm the cluster's latest state in time " +
                "(no leader reachable?); retry or ask another node")
        })
    }

    /** REDIRECT to the leader; with none other than us, [code]. */
    fun redirectOrUnavailable(req: JsonObject, reply: Replier, code: ErrorCode, message: String = "") {
        val leader = n.core.leaderId
        if (leader != "" && leader != id) {
            reply.redirect(req, leader)
            return
        }
        reply.error(req, code, if (message != "") message else "node $id knows no leader yet (election in progress); retry")
    }

    private fun handleStatus(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        reply.ok(req, emptyList(), n.status().entries)
    }

    private fun handleList(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        later(req, reply) { reply.ok(req, emptyList(), listOf("models" to n.registry.listing())) }
    }

    private fun withModel(modelId: String, req: JsonObject, reply: Replier, answer: () -> Unit) {
        if (n.registry.models.containsKey(modelId)) answer() else later(req, reply, answer)
    }

    private fun notFound(modelId: String) = "model ${pyStr(modelId)} not found; `python -m client list` shows the models"

    /** The model, or null after answering: our copy is damaged and being fetched, so another node must serve it. */
    private fun loadOrRefuse(modelId: String, req: JsonObject, reply: Replier): ServedModel? {
        try {
            return n.registry.load(modelId) as ServedModel
        } catch (e: ModelFileDamaged) {
            val rec = n.registry.models[modelId]
            if (rec != null) n.fetcher?.want(modelId, rec.sha256, rec.size)
            redirectOrUnavailable(req, reply, ErrorCode.UNAVAILABLE, "node $id cannot serve model $modelId now: ${e.reason}; " +
                "it is being fetched from the other nodes. Retry, or ask another node")
            return null
        }
    }

    private fun handleInfo(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        val modelId = requireStr(req, "model_id")
        withModel(modelId, req, reply) {
            val rec = n.registry.models[modelId]
            if (rec == null) {
                reply.error(req, ErrorCode.NOT_FOUND, notFound(modelId))
            } else {
                val m = loadOrRefuse(modelId, req, reply)
                if (m != null) reply.ok(req, emptyList(), listOf("model" to rec.toJson(), "metadata" to m.metadata()))
            }
        }
    }

    private fun handlePredict(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        val modelId = requireStr(req, "model_id")
        val (rows, cols, values) = Arrays.readRows(req, blobs, "inputs", cfg.maxRequestBytes)
        var proba = false
        if (req.has("proba")) {
            proba = req["proba"] as? Boolean ?: throw ProtocolError(ErrorCode.BAD_REQUEST, "'proba' must be true or false", req)
        }
        withModel(modelId, req, reply) {
            if (!n.registry.models.containsKey(modelId)) {
                reply.error(req, ErrorCode.NOT_FOUND, notFound(modelId))
            } else {
                val m = loadOrRefuse(modelId, req, reply)
                when {
                    m == null -> {}
                    proba && m.classes.isEmpty() ->
                        reply.error(req, ErrorCode.BAD_INPUT, "model $modelId does regression: it has no class probabilities")
                    cols != m.nInputs ->
                        reply.error(req, ErrorCode.BAD_INPUT, "model $modelId expects ${m.nInputs} input columns, got $cols")
                    else -> batcher.add(modelId, m, rows, cols, values, proba, req, reply)
                }
            }
        }
    }

    private fun handleFetch(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        val modelId = requireStr(req, "model_id")
        val offset = requireCount(req, "offset")
        var length = requireCount(req, "length")
        val missing = "node $id has no good copy of $modelId"
        val rec = n.registry.models[modelId]
        if (rec == null || modelId in n.registry.damaged) {
            reply.error(req, ErrorCode.NOT_FOUND, missing)
            return
        }
        val chunk = try {
            RandomAccessFile(n.registry.store.path(modelId), "r").use { f ->
                length = minOf(length, cfg.fetchChunkBytes.toLong())
                val size = f.length()
                val take = if (offset >= size) 0 else minOf(length, size - offset).toInt()
                val buf = ByteArray(take)
                if (take > 0) {
                    f.seek(offset)
                    f.readFully(buf)
                }
                buf
            }
        } catch (e: java.io.IOException) {
            reply.error(req, ErrorCode.NOT_FOUND, missing)
            return
        } catch (e: IllegalArgumentException) {
            reply.error(req, ErrorCode.NOT_FOUND, missing)
            return
        }
        reply.ok(req, listOf(chunk), listOf("size" to rec.size, "offset" to offset, "sha256" to rec.sha256))
    }

    private fun handleTrain(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        if (!n.core.isLeader) {
            redirectOrUnavailable(req, reply, ErrorCode.NOT_LEADER)
            return
        }
        val requestId = Wire.headerId(req)
        val modelId = modelIdFor(requestId)
        val t = training
        if (t != null && t.running(requestId)) {
            t.submit(req, blobs, reply) // joins the running job
            reply.waitFor(req)
            return
        }
        later(req, reply) {
            // After catching up, so a model an earlier leader acknowledged is seen.
            val rec = n.registry.models[modelId]
            when {
                rec != null -> reply.ok(req, emptyList(), listOf("model_id" to modelId) + rec.summary.entries +
                    listOf("warnings" to listOf("this request id was already trained; returning its model")))
                !n.core.isLeader -> redirectOrUnavailable(req, reply, ErrorCode.NOT_LEADER)
                training == null -> reply.error(req, ErrorCode.UNAVAILABLE, "node $id (the Kotlin node) cannot train yet: " +
                    "training is not available on this node; send the TRAIN to a Python node or retry later")
                else -> training!!.submit(req, blobs, reply)
            }
        }
    }

    private fun handleImport(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        if (!n.core.isLeader) {
            redirectOrUnavailable(req, reply, ErrorCode.NOT_LEADER)
            return
        }
        if (blobs.size != 1) {
            throw ProtocolError(ErrorCode.BAD_REQUEST, "IMPORT carries one frame (the model file), got ${blobs.size}", req)
        }
        val data = blobs[0]
        if (data.size > cfg.maxModelBytes) {
            throw ProtocolError(ErrorCode.TOO_LARGE, "model file is ${data.size} bytes; limit is ${cfg.maxModelBytes} " +
                "(--max-model-bytes)", req)
        }
        val parse = n.registry.parseModel
            ?: throw ProtocolError(ErrorCode.UNAVAILABLE, "node $id cannot read model files yet; send the IMPORT to another node", req)
        val m = try {
            parse(data) as ServedModel
        } catch (e: ProtocolError) {
            throw e
        } catch (e: Exception) {
            throw ProtocolError(ErrorCode.BAD_INPUT, "not a valid model file: ${NodeModels.message(e)}", req)
        }
        admit(req)
        admitBytes(req, data.size.toLong())
        reply.waitFor(req)
        commitModel(req, data, m.listingSummary(), emptyList(), reply)
    }

    /** Replicates a model file and answers once it is committed and applied. */
    fun commitModel(req: JsonObject, model: ByteArray, summary: JsonObject, extra: List<Pair<String, Any?>>, reply: Replier) {
        val requestId = Wire.headerId(req)
        val modelId = modelIdFor(requestId)
        val now = java.time.Instant.now()
        val created = now.epochSecond + now.nano / 1e9 // time.time()
        val command = RegistryCommands.encodeStoreModel(requestId, model, created, summary)
        var waiter: Waiter? = null
        val done = { ok: Boolean ->
            if (n.waiters.settle(waiter).first != null) {
                if (ok || n.registry.models.containsKey(modelId)) {
                    reply.ok(req, emptyList(), listOf("model_id" to modelId) + extra)
                } else {
                    reply.error(req, ErrorCode.NOT_LEADER, "node $id lost leadership before model $modelId committed; " +
                        "retry with the same request id")
                }
            }
        }
        waiter = n.waiters.park(requestTimeoutMillis(req), {}, {
            reply.error(req, ErrorCode.TIMEOUT, "model $modelId was not committed in time on node $id (no quorum?); " +
                "retry with the same request id")
        })
        if (!n.propose(command, done)) {
            n.waiters.settle(waiter)
            redirectOrUnavailable(req, reply, ErrorCode.NOT_LEADER)
        }
    }

    companion object {
        fun requireStr(req: JsonObject, key: String): String {
            val s = req[key] as? String
            if (s == null || s == "") throw ProtocolError(ErrorCode.BAD_REQUEST, "field ${pyStr(key)} must be a non-empty string", req)
            return s
        }

        fun requireCount(req: JsonObject, key: String): Long {
            val v = req[key]
            if (v is JsonNumber) {
                val i = v.toLongOrNull()
                if (i != null && i >= 0) return i
            }
            throw ProtocolError(ErrorCode.BAD_REQUEST, "field ${pyStr(key)} must be a non-negative integer", req)
        }
    }
}

/** Arrays on the wire (§3, go/wire/array.go): a descriptor {dtype, shape, frame} and a little-endian frame. */
object Arrays {
    /**
     * The inputs as float32 rows x columns (a 1-D array is one row), read
     * with [NdArray.read]; a dimension of 2^62 or more (possible beside a 0)
     * is BAD_SHAPE as in go/node.
     */
    fun readRows(req: JsonObject, blobs: List<ByteArray>, key: String, maxBytes: Long): Triple<Int, Int, FloatArray> {
        val a = NdArray.read(req, blobs, key, maxBytes)
        if (a.shape.any { it >= (1L shl 62) }) {
            throw ProtocolError(ErrorCode.BAD_SHAPE, "array '$key' shape must be a list of at most ${NdArray.MAX_NDIM} " +
                "non-negative integers, got ${Wire.pyRepr((req[key] as JsonObject)["shape"])}", req)
        }
        val shape0 = a.shape.toList()
        val shape = if (shape0.size == 1) listOf(1L, shape0[0]) else shape0
        if (shape.size != 2 || shape[0] == 0L) {
            throw ProtocolError(ErrorCode.BAD_SHAPE, "$key must be a non-empty 2-D array (rows x columns), got shape " +
                shape0.joinToString(", ", "[", "]"), req)
        }
        // Straight to float32 (numpy's astype): through a double would round twice.
        return Triple(shape[0].toInt(), shape[1].toInt(), a.convertToFloat32() ?: a.float32s())
    }

    fun descriptor(dtype: String, shape: List<Int>, frame: Int): JsonObject =
        JsonObject("dtype" to dtype, "shape" to shape.map { it.toLong() }, "frame" to frame.toLong())

    fun f32bytes(v: FloatArray, start: Int, end: Int): ByteArray {
        val bb = ByteBuffer.allocate(4 * (end - start)).order(ByteOrder.LITTLE_ENDIAN)
        for (i in start until end) bb.putFloat(v[i])
        return bb.array()
    }

    fun i64bytes(v: LongArray, start: Int, end: Int): ByteArray {
        val bb = ByteBuffer.allocate(8 * (end - start)).order(ByteOrder.LITTLE_ENDIAN)
        for (i in start until end) bb.putLong(v[i])
        return bb.array()
    }
}
