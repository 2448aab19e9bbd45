// The HTTP inference port of a node (docs/HTTP.md, port P+5000): the Open
// Inference Protocol routes of the Python node's zmqnode/inference_http.py
// (a port of go/httpinfer/server.go) over HttpTransport.
//
// An infer call becomes a PREDICT and a model's metadata an INFO, handed to
// the node's own request dispatch on its loop thread (HttpLinks.submit,
// HttpLinks.dispatch): the same micro-batches, linearizable reads and
// admission bounds as the ZeroMQ client port. The answer comes back through
// an HttpReply; parsing and encoding happen on the server's worker threads,
// never on the node's loop.
package zmqnode.httpinfer

import java.io.IOException
import java.net.InetAddress
import java.security.MessageDigest
import java.security.SecureRandom
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.ThreadFactory
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import zmqnode.wire.Json
import zmqnode.wire.JsonObject

/** The metrics label of a request (a fixed few, never a model id). */
object Endpoints {
    const val LIVE = "live"
    const val READY = "ready"
    const val SERVER = "server"
    const val MODEL = "model"
    const val MODEL_READY = "model_ready"
    const val INFER = "infer"
    const val OTHER = "other"
}

/**
 * The node's answer to one PREDICT or INFO the server dispatched: exactly
 * one call ends it (later ones are ignored), from any thread. The node's
 * Replier (PREDICT/INFO answers) forwards to it: ok(blobs, fields) with the
 * fields of its OK reply (Kotlin values or decoded JSON, read back through
 * JSON here), error(code, message) with a wire error code, redirect(leader).
 * Blobs must not change afterwards (they are encoded on another thread).
 */
interface HttpReply {
    fun ok(blobs: List<ByteArray>, fields: List<Pair<String, Any?>>)
    fun error(code: String, message: String)
    fun redirect(leader: String)
}

/** What the server needs from the node. */
class HttpLinks(
    /** Runs fn on the node's loop thread. */
    val submit: (() -> Unit) -> Unit,
    /**
     * Handles a client request (PREDICT, INFO; a header as decoded from a
     * client's frame, blobs) on the loop, as one from the client ROUTER; it
     * answers through reply, now or later.
     */
    val dispatch: (JsonObject, List<ByteArray>, HttpReply) -> Unit,
    /** The cluster's bearer token (KEYS/http.token); "" means none (--insecure), refused off loopback. */
    val token: String = "",
    /** Logs internal errors. */
    val log: ((String) -> Unit)? = null,
    /** Names the node in messages ("node 127.0.0.1:9000 ..."). */
    val nodeId: String = "",
    /** The server version of GET /v2. */
    val version: String = "",
    /** A model's task if this node has applied it, else "" (on the loop). */
    val taskOf: ((String) -> String)? = null,
    /** This node knows a leader and has applied every entry it knows committed (on the loop). */
    val isReady: (() -> Boolean)? = null,
    /** Counts an answered request (endpoint, status, seconds; any thread): NodeMetrics.httpDone. */
    val onAnswered: ((String, Int, Double) -> Unit)? = null,
    val limits: HttpLimits = HttpLimits()
)

private val MODEL_PATH = Regex("/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?")

/** The endpoint and model id of a request path (OTHER when nothing matches), as inference_http.py's route. */
fun route(path: String): Pair<String, String> {
    when (path) {
        "/v2/health/live" -> return Endpoints.LIVE to ""
        "/v2/health/ready" -> return Endpoints.READY to ""
        "/v2", "/v2/" -> return Endpoints.SERVER to ""
    }
    val m = MODEL_PATH.matchEntire(path) ?: return Endpoints.OTHER to ""
    return when (m.groupValues[3]) {
        "" -> Endpoints.MODEL to m.groupValues[1]
        "/ready" -> Endpoints.MODEL_READY to m.groupValues[1]
        else -> Endpoints.INFER to m.groupValues[1]
    }
}

private val JSON_TYPE = listOf("Content-Type" to "application/json")

/** What a request is answered with: a finished answer, or the node's reply to encode. */
private class Answer(
    val status: Int = 0,
    val headers: List<Pair<String, String>> = JSON_TYPE,
    val body: ByteArray? = null,
    val message: String? = null,
    val okFields: List<Pair<String, Any?>>? = null,
    val blobs: List<ByteArray> = emptyList(),
    val ready: Boolean? = null
)

private fun errorAnswer(status: Int, message: String) = Answer(status = status, message = message)

/** Serves the OIP endpoints until [close]. */
class HttpServer private constructor(private val links: HttpLinks) {
    private val limits = links.limits
    private lateinit var transport: HttpTransport
    private val waiting = LinkedHashSet<Pending>()
    private var closing = false
    private val random = SecureRandom()
    private val workers = Executors.newFixedThreadPool(2, daemon("http-worker"))
    private val timers = Executors.newSingleThreadScheduledExecutor(daemon("http-timer"))

    /** The port it listens on. */
    val port: Int get() = transport.port

    /** Open HTTP connections (the zmqnode_http_connections gauge). */
    val connections: Int get() = transport.connections

    /** Requests waiting for the node. */
    val waitingCount: Int get() = synchronized(waiting) { waiting.size }

    companion object {
        /**
         * Binds host:port (0: any free port, see [port]) and serves in the
         * background. IOException: the port cannot be bound, or no token off
         * loopback.
         */
        fun start(host: String, port: Int, links: HttpLinks): HttpServer {
            if (links.token == "" && !isLoopback(host)) {
                throw IOException("HTTP inference on $host needs the bearer token (KEYS/http.token) off loopback: " +
                    "bind 127.0.0.1, or turn HTTP off with --http-port 0")
            }
            val s = HttpServer(links)
            try {
                s.transport = HttpTransport(host, port, links.limits, HttpTransportOptions(threadName = "http")) { r, w ->
                    s.workers.execute { s.handle(r, w) }
                }
            } catch (e: IOException) {
                s.workers.shutdown()
                s.timers.shutdown()
                throw IOException("cannot open HTTP inference on $host:$port: ${e.message}. " +
                    "Choose another --http-port (0 turns it off)", e)
            }
            return s
        }

        private fun isLoopback(host: String): Boolean {
            if (host == "localhost") return true
            val h = host.trim('[', ']')
            if (!h.matches(Regex("[0-9.]+|[0-9A-Fa-f:.]+"))) return false
            return try { InetAddress.getByName(h).isLoopbackAddress } catch (e: Exception) { false }
        }

        private fun daemon(name: String) = ThreadFactory { r -> Thread(r, name).also { it.isDaemon = true } }
    }

    /**
     * Answers every request still waiting for the node with 503 ("node X is
     * shutting down; retry on another node"), then closes the listener and
     * every connection.
     */
    fun close() {
        val pending = synchronized(waiting) {
            closing = true
            waiting.toList()
        }
        for (p in pending) p.deliver(errorAnswer(503, "node ${links.nodeId} is shutting down; retry on another node"), inline = true)
        transport.close()
        workers.shutdown()
        timers.shutdownNow()
    }

    private fun log(message: String) {
        links.log?.invoke(message)
    }

    private fun newId(): String {
        val b = ByteArray(12)
        random.nextBytes(b)
        return b.joinToString("") { String.format("%02x", it.toInt() and 0xff) }
    }

    /** One request (inference_http.py's on_request), on a worker thread. */
    private fun handle(r: HttpRequest, w: HttpResponder) {
        val target = r.target
        val path = target.substringBefore('?')
        val (endpoint, modelId) = route(path)
        val p = Pending(r, w, endpoint, modelId)
        try {
            serve(p)
        } catch (e: Exception) {
            log("internal error serving HTTP ${r.method} ${r.target}: $e")
            p.deliver(errorAnswer(500, "node ${links.nodeId} failed: $e"))
        }
    }

    private fun serve(p: Pending) {
        val r = p.request
        val endpoint = p.endpoint
        if (endpoint == Endpoints.OTHER) return p.deliver(errorAnswer(404, "no such endpoint: ${cut(r.target, 200)}"))
        val want = if (endpoint == Endpoints.INFER) "POST" else "GET"
        if (r.method != want && !(r.method == "HEAD" && want == "GET")) {
            return p.deliver(errorAnswer(405, "${cut(r.target, 200)} takes $want, not ${r.method}"))
        }
        if (endpoint != Endpoints.LIVE && endpoint != Endpoints.READY && !authorized(r)) {
            return p.deliver(Answer(status = 401,
                headers = listOf("Content-Type" to "application/json", "WWW-Authenticate" to "Bearer realm=\"zmqnode\""),
                body = errorBody("missing or wrong bearer token: send 'Authorization: Bearer <token>' " +
                    "with the cluster's token (KEYS/http.token)")))
        }
        when (endpoint) {
            Endpoints.LIVE -> return p.deliver(Answer(status = 200, body = "{\"live\":true}".toByteArray(Charsets.UTF_8)))
            Endpoints.SERVER -> return p.deliver(Answer(status = 200, body = serverMetadata(links.version)))
            Endpoints.READY -> return await(p) { p.deliver(Answer(ready = links.isReady?.invoke() ?: false)) }
            Endpoints.MODEL, Endpoints.MODEL_READY -> {
                val info = decoded(JsonObject("v" to 1, "type" to "INFO", "id" to newId(), "model_id" to p.modelId))
                return await(p) { links.dispatch(info, emptyList(), p) }
            }
        }
        val call = try {
            parseInfer(p.modelId, r.body, parseHeaderLength(r.headers[Oip.HEADER_LENGTH.toLowerCase()]))
        } catch (e: OipError) {
            return p.deliver(errorAnswer(e.status, e.message))
        }
        p.call = call
        await(p) {
            // The task decides what "every output" is; a model this node has
            // not applied yet answers without probabilities unless named.
            val task = links.taskOf?.invoke(p.modelId) ?: ""
            val header = try {
                call.predictHeader(newId(), task)
            } catch (e: OipError) {
                p.deliver(errorAnswer(e.status, e.message))
                null
            }
            if (header != null) links.dispatch(header, listOf(call.blob), p)
        }
    }

    /** Runs work on the node's loop; the answer comes through p (or the reply timeout, or close). */
    private fun await(p: Pending, work: () -> Unit) {
        synchronized(waiting) {
            if (closing) return p.deliver(errorAnswer(503, "node ${links.nodeId} is shutting down; retry on another node"))
            waiting.add(p)
        }
        p.timer = try {
            timers.schedule({
                p.deliver(errorAnswer(504, "node ${links.nodeId} gave up waiting for the answer"))
            }, limits.replyTimeoutMs, TimeUnit.MILLISECONDS)
        } catch (e: java.util.concurrent.RejectedExecutionException) {
            null
        }
        links.submit {
            try {
                work()
            } catch (e: Throwable) { // a bug costs one request, never the node
                log("internal error serving HTTP ${p.request.method} ${p.request.target}: $e")
                p.deliver(errorAnswer(500, "node ${links.nodeId} failed: $e"))
            }
        }
    }

    /** Checks Authorization: Bearer <token> (RFC 9110 §11.1, §11.4: the scheme is case-insensitive, then spaces). */
    private fun authorized(r: HttpRequest): Boolean {
        if (links.token == "") return true
        val value = r.headers["authorization"] ?: ""
        val space = value.indexOf(' ')
        val scheme = if (space >= 0) value.substring(0, space) else value
        val credentials = if (space >= 0) value.substring(space + 1) else ""
        if (scheme.toLowerCase() != "bearer") return false
        val given = credentials.trimStart(' ').toByteArray(Charsets.ISO_8859_1)
        return MessageDigest.isEqual(given, links.token.toByteArray(Charsets.UTF_8)) // constant time
    }

    /** One request in progress: the HttpReply the node answers through, once. */
    private inner class Pending(
        val request: HttpRequest,
        val responder: HttpResponder,
        val endpoint: String,
        val modelId: String
    ) : HttpReply {
        @Volatile var call: InferCall? = null
        @Volatile var timer: ScheduledFuture<*>? = null
        private val sent = AtomicBoolean(false)

        fun deliver(a: Answer, inline: Boolean = false) {
            if (!sent.compareAndSet(false, true)) return // later answers are dropped
            timer?.cancel(false)
            synchronized(waiting) { waiting.remove(this) }
            if (inline) finish(a) else try {
                workers.execute { finish(a) }
            } catch (e: java.util.concurrent.RejectedExecutionException) {
                finish(a)
            }
        }

        override fun ok(blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) =
            deliver(Answer(okFields = fields, blobs = blobs))

        override fun error(code: String, message: String) = deliver(errorAnswer(errorStatus(code), message))

        override fun redirect(leader: String) = deliver(errorAnswer(503,
            "node ${links.nodeId} sends this to the leader $leader; ask that node's HTTP port"))

        private fun finish(a: Answer) {
            if (responder.closed) return // the client went away: nobody to answer
            val (status, headers, body) = try {
                encode(a)
            } catch (e: Exception) {
                log("internal error answering HTTP $endpoint for $modelId: $e")
                Triple(500, JSON_TYPE, errorBody("node ${links.nodeId} failed: $e"))
            }
            responder.respond(status, headers, body)
            links.onAnswered?.invoke(endpoint, status, (System.nanoTime() - request.receivedNanos) / 1e9)
        }

        /** The HTTP status, headers and body of an answer. */
        private fun encode(a: Answer): Triple<Int, List<Pair<String, String>>, ByteArray> {
            if (a.ready != null) {
                return if (a.ready) Triple(200, JSON_TYPE, "{\"ready\":true}".toByteArray(Charsets.UTF_8))
                else Triple(503, JSON_TYPE, "{\"ready\":false}".toByteArray(Charsets.UTF_8))
            }
            if (a.okFields == null) {
                return if (a.body != null) Triple(a.status, a.headers, a.body) else Triple(a.status, JSON_TYPE, errorBody(a.message ?: ""))
            }
            // The node's fields may be Kotlin values: read them as a client would decode them.
            val fieldsObject = JsonObject()
            for ((k, v) in a.okFields) fieldsObject[k] = v
            val fields = Json.parse(Json.encode(fieldsObject)) as JsonObject
            when (endpoint) {
                Endpoints.INFER -> {
                    return try {
                        val parts = inferResponse(call!!, modelId, fields, a.blobs)
                        Triple(200, parts.headers, parts.body)
                    } catch (e: OipError) {
                        if (e.status == 500) log("internal error answering HTTP $endpoint for $modelId: ${e.message}")
                        Triple(e.status, JSON_TYPE, errorBody(e.message))
                    }
                }
                Endpoints.MODEL_READY -> return Triple(200, JSON_TYPE, Json.encode(JsonObject("name" to modelId, "ready" to true)))
            }
            val listing = fields.obj("model") ?: return Triple(500, JSON_TYPE, errorBody("INFO reply without a model listing"))
            return try {
                Triple(200, JSON_TYPE, modelMetadata(modelId, listing))
            } catch (e: IllegalArgumentException) {
                log("internal error answering HTTP $endpoint for $modelId: ${e.message}")
                Triple(500, JSON_TYPE, errorBody("node ${links.nodeId} failed: ${e.message}"))
            }
        }
    }
}
