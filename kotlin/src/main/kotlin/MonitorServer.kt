// The read-only HTTP monitor of a node (PROTOCOL.md §1, §1.1, §9b; port
// P-1000): /status, /models, /logs?n= and /metrics, answering as the Python
// node's zmqnode/monitor.py does (the same bodies, status codes and content
// types), a port of go/monitor over the transport of HttpTransport.kt
// (one request per connection, at most 32 connections, 10 s per client).
//
// It never touches the node: the loop publishes plain bytes (publish,
// publishModels) that the monitor's thread reads; MonitorSource's functions
// must be safe to call from any thread.
package zmqnode.monitor

import java.io.IOException
import java.util.concurrent.atomic.AtomicReference
import zmqnode.httpinfer.HttpLimits
import zmqnode.httpinfer.HttpRequest
import zmqnode.httpinfer.HttpResponder
import zmqnode.httpinfer.HttpTransport
import zmqnode.httpinfer.HttpTransportOptions
import zmqnode.wire.Json
import zmqnode.wire.JsonObject

/** What the monitor reads besides the published views (called from the monitor's thread). */
class MonitorSource(
    /** The /metrics text (metrics.Registry.render). */
    val metrics: (() -> ByteArray)? = null,
    /** The last lines of the node's log file (Monitor.tailFile). */
    val logTail: ((Int) -> List<String>)? = null
)

/** Serves one node's views over HTTP until [close]. */
class Monitor private constructor(private val src: MonitorSource) {
    private val status = AtomicReference("{}".toByteArray(Charsets.UTF_8))
    private val models = AtomicReference("[]".toByteArray(Charsets.UTF_8))
    private lateinit var transport: HttpTransport

    /** The port it listens on. */
    val port: Int get() = transport.port

    /**
     * Replaces what /status shows: the JSON object of the STATUS reply's
     * fields (observe.py's NodeSnapshot.status), built by the node once a tick.
     */
    fun publish(statusJson: ByteArray) = status.set(statusJson.copyOf())

    /**
     * Replaces what /models lists: a JSON array of the models' LIST entries
     * (PROTOCOL.md §5.4). monitor.py refreshes it only when the number of
     * models changed; the node may do the same.
     */
    fun publishModels(listingJson: ByteArray) = models.set(listingJson.copyOf())

    /** Stops serving and closes every connection. */
    fun close() = transport.close()

    private fun serve(r: HttpRequest, w: HttpResponder) {
        if (r.method != "GET") {
            // BaseHTTPRequestHandler without do_<METHOD>: 501, HEAD included.
            sendPythonError(w, 501, "Unsupported method (${pyStrRepr(r.method)})", "Server does not support this operation")
            return
        }
        val (path, query) = splitTarget(r.target)
        when (path) {
            "/status" -> send(w, 200, "application/json", status.get())
            "/models" -> send(w, 200, "application/json",
                "{\"models\":".toByteArray(Charsets.UTF_8) + models.get() + "}".toByteArray(Charsets.UTF_8))
            "/logs" -> {
                var n = DEFAULT_LOG_LINES
                val values = parseQS(query)["n"]
                if (values != null && values.isNotEmpty()) {
                    val v = pyInt(values[0])
                    if (v == null) {
                        send(w, 400, "application/json", Json.encode(JsonObject("error" to "n must be an integer")))
                        return
                    }
                    n = v
                }
                n = maxOf(1, minOf(n, MAX_LOG_LINES))
                val lines = src.logTail?.invoke(n) ?: emptyList()
                send(w, 200, "application/json", Json.encode(JsonObject("lines" to lines)))
            }
            "/metrics" -> send(w, 200, "text/plain; version=0.0.4", src.metrics?.invoke() ?: ByteArray(0))
            else -> send(w, 404, "application/json", Json.encode(JsonObject("error" to
                "no such page $path; try /status, /models, /logs?n=100 or /metrics")))
        }
    }

    companion object {
        /** Bounds /logs?n= (monitor.py's MAX_LOG_LINES). */
        const val MAX_LOG_LINES = 5000
        const val DEFAULT_LOG_LINES = 100
        /** A silent or slow client loses its connection (monitor.py's REQUEST_TIMEOUT_SECONDS). */
        const val REQUEST_TIMEOUT_MS = 10_000L
        /** Open at once; one more is closed at once instead of queueing (monitor.py's MAX_CONNECTIONS). */
        const val MAX_CONNECTIONS = 32

        /**
         * Binds host:port (0: any free port, see [port]) and serves from its
         * own thread. The error names the address and says to choose another
         * --monitor-port.
         */
        fun start(host: String, port: Int, src: MonitorSource): Monitor {
            val m = Monitor(src)
            try {
                m.transport = HttpTransport(host, port,
                    HttpLimits(maxBodyBytes = 1L shl 20, maxHeaderBytes = 65536, maxConnections = MAX_CONNECTIONS,
                        idleTimeoutMs = REQUEST_TIMEOUT_MS, requestTimeoutMs = REQUEST_TIMEOUT_MS),
                    HttpTransportOptions(keepAlive = false, refuseWith503 = false, serverHeader = "zmqnode", threadName = "monitor"),
                    { r, w -> m.serve(r, w) })
            } catch (e: IOException) {
                throw IOException("cannot open the HTTP monitor on $host:$port: ${e.message}. Choose another --monitor-port", e)
            }
            return m
        }

        /** zmqnode/logs.py's tail (see [MonitorPython]). */
        fun tailFile(path: String, lines: Int): List<String> = MonitorPython.tailFile(path, lines)

        private fun send(w: HttpResponder, status: Int, type: String, body: ByteArray) =
            w.respond(status, listOf("Content-Type" to type), body)

        private const val PYTHON_ERROR_PAGE = "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n" +
            "        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n" +
            "        <p>Error code: %d</p>\n        <p>Message: %s.</p>\n" +
            "        <p>Error code explanation: %d - %s.</p>\n    </body>\n</html>\n"

        /** As BaseHTTPRequestHandler.send_error. */
        private fun sendPythonError(w: HttpResponder, code: Int, message: String, explain: String) {
            val body = String.format(java.util.Locale.ROOT, PYTHON_ERROR_PAGE, code, htmlEscape(message), code, htmlEscape(explain))
            send(w, code, "text/html;charset=utf-8", body.toByteArray(Charsets.UTF_8))
        }

        private fun htmlEscape(s: String) = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    }
}
