// The HTTP/1.1 layer of the node's two HTTP ports (inference: HttpServer.kt,
// the monitor: MonitorServer.kt): zmqnode/transport/http.py's design in
// java.nio. One selector thread owns every socket and parses requests
// incrementally, as h11 does; a complete request (head and body) is handed
// to the handler with a Responder, which may answer later from any thread.
//
// Why not com.sun.net.httpserver: docs/HTTP.md asks for what it cannot do —
// 431 for request heads over 16 KiB (it has no such limit), 413 on the
// declared Content-Length before the body is read, 408 for a head or body
// that does not arrive in time (it closes silently), an idle clock before
// a connection's first request, a connection cap answered 503, request
// targets with a '%' that is not an escape routed as sent (its URI parser
// refuses them with 400 and drops the pipelined requests after them), and
// empty lines before a request line skipped (RFC 9112 §2.2). Its tunables
// are process-wide system properties, shared by both ports.
package zmqnode.httpinfer

import java.io.IOException
import java.net.InetSocketAddress
import java.net.StandardSocketOptions
import java.nio.ByteBuffer
import java.nio.channels.SelectionKey
import java.nio.channels.Selector
import java.nio.channels.ServerSocketChannel
import java.nio.channels.SocketChannel
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger

/** Bounds of one transport (transport/http.py's HttpLimits); times in milliseconds. */
class HttpLimits(
    val maxBodyBytes: Long = 512L shl 20,
    val maxHeaderBytes: Int = 16384,
    val maxConnections: Int = 256,
    val idleTimeoutMs: Long = 60_000,
    val requestTimeoutMs: Long = 30_000,
    /** How long the inference server waits for the node's answer (504 after). */
    val replyTimeoutMs: Long = 40_000,
    /** Bytes read ahead (pipelined requests) while an answer is pending. */
    val maxBufferedBytes: Int = 262_144
)

/**
 * One complete request. [target] is the request target as sent, its bytes
 * read as Latin-1; [headers] has lower-case names, repeated fields joined
 * with ", " (RFC 9110 §5.3); [receivedNanos] is System.nanoTime() when the
 * request was complete.
 */
class HttpRequest(
    val method: String,
    val target: String,
    val headers: Map<String, String>,
    val body: ByteArray,
    val httpVersion: String,
    val receivedNanos: Long
) {
    fun header(name: String): String? = headers[name.toLowerCase()]
}

/** Answers one request, once, from any thread; later calls are ignored. */
interface HttpResponder {
    /** True once respond would do nothing: answered, or the connection is gone. */
    val closed: Boolean

    /** status, headers (Content-Length is set here; "Connection: close" closes after), body. */
    fun respond(status: Int, headers: List<Pair<String, String>>, body: ByteArray)
}

/**
 * What the transport does apart from the limits: the inference port keeps
 * connections alive and answers a connection past the cap 503; the
 * monitor answers one request per connection and closes one past the cap
 * without a word.
 */
class HttpTransportOptions(
    val keepAlive: Boolean = true,
    val refuseWith503: Boolean = true,
    val serverHeader: String? = "zmqnode",
    val threadName: String = "http"
)

private val REASONS = mapOf(
    100 to "Continue", 200 to "OK", 204 to "No Content", 400 to "Bad Request", 401 to "Unauthorized",
    403 to "Forbidden", 404 to "Not Found", 405 to "Method Not Allowed", 408 to "Request Timeout",
    413 to "Content Too Large", 414 to "URI Too Long", 415 to "Unsupported Media Type",
    429 to "Too Many Requests", 431 to "Request Header Fields Too Large", 500 to "Internal Server Error",
    501 to "Not Implemented", 503 to "Service Unavailable", 504 to "Gateway Timeout",
    505 to "HTTP Version Not Supported"
)

fun reasonPhrase(status: Int): String = REASONS[status] ?: ""

/** A complete closing answer written by hand (over the connection cap). */
fun rawTextResponse(status: Int, text: String, server: String): ByteArray =
    ("HTTP/1.1 $status ${reasonPhrase(status)}\r\nserver: $server\r\n" +
        "content-type: text/plain; charset=utf-8\r\ncontent-length: ${text.toByteArray(Charsets.UTF_8).size}\r\n" +
        "connection: close\r\n\r\n").toByteArray(Charsets.ISO_8859_1) + text.toByteArray(Charsets.UTF_8)

private const val READ_CHUNK = 65536
private const val LINGER_MS = 2000L
private const val LINGER_BYTES = 1 shl 20

/** A request the transport refuses before any handler sees it. */
private class HttpFail(val status: Int, message: String) : Exception(message)

/**
 * The server: binds at construction ([IOException] if it cannot), serves
 * from its own thread until [close].
 */
class HttpTransport(
    host: String,
    port: Int,
    val limits: HttpLimits,
    private val options: HttpTransportOptions,
    private val handler: (HttpRequest, HttpResponder) -> Unit
) {
    private val selector: Selector = Selector.open()
    private val listener: ServerSocketChannel = ServerSocketChannel.open()
    private val tasks = ConcurrentLinkedQueue<() -> Unit>()
    private val conns = LinkedHashSet<Conn>()
    private val open = AtomicInteger(0)
    private val closing = AtomicBoolean(false)
    private val stopped = CountDownLatch(1)
    private val thread: Thread
    private val readBuf = ByteBuffer.allocate(READ_CHUNK) // the selector thread's, reused
    val port: Int

    init {
        try {
            listener.setOption(StandardSocketOptions.SO_REUSEADDR, true)
            listener.bind(InetSocketAddress(host, port), 128)
            listener.configureBlocking(false)
            listener.register(selector, SelectionKey.OP_ACCEPT)
        } catch (e: Exception) {
            try { listener.close() } catch (_: IOException) {}
            try { selector.close() } catch (_: IOException) {}
            throw IOException(e.message ?: e.toString(), e)
        }
        this.port = (listener.localAddress as InetSocketAddress).port
        thread = Thread({ loop() }, "${options.threadName}-${this.port}")
        thread.isDaemon = true
        thread.start()
    }

    /** Connections open now (lingering ones after an error answer excluded). */
    val connections: Int get() = open.get()

    /** Runs fn on the transport's thread. */
    private fun post(fn: () -> Unit) {
        tasks.add(fn)
        if (stopped.count > 0) selector.wakeup()
    }

    /** Closes the listener and every connection; pending responders become closed. */
    fun close() {
        if (closing.compareAndSet(false, true)) selector.wakeup()
        if (Thread.currentThread() !== thread) stopped.await()
    }

    private fun loop() {
        val tick = maxOf(5L, minOf(50L, limits.requestTimeoutMs / 8, limits.idleTimeoutMs / 8))
        try {
            while (!closing.get()) {
                selector.select(tick)
                while (true) {
                    val t = tasks.poll() ?: break
                    try { t() } catch (e: Exception) { /* a responder's bug must not stop the port */ }
                }
                val keys = selector.selectedKeys().iterator()
                while (keys.hasNext()) {
                    val key = keys.next()
                    keys.remove()
                    if (!key.isValid) continue
                    if (key.channel() === listener) {
                        accept()
                        continue
                    }
                    val c = key.attachment() as Conn
                    try {
                        c.onEvents(key)
                    } catch (e: IOException) {
                        c.disconnected()
                    } catch (e: RuntimeException) {
                        c.close()
                    }
                }
                val now = System.nanoTime()
                for (c in conns.toList()) c.checkTime(now)
            }
        } finally {
            // Answers posted before close (HttpServer.close's 503s) still go out.
            while (true) {
                val t = tasks.poll() ?: break
                try { t() } catch (e: Exception) {}
            }
            for (c in conns.toList()) c.close()
            try { listener.close() } catch (_: IOException) {}
            try { selector.close() } catch (_: IOException) {}
            stopped.countDown()
        }
    }

    private fun accept() {
        for (i in 0 until 64) {
            val ch = try { listener.accept() } catch (e: IOException) { return } ?: return
            if (open.get() >= limits.maxConnections) {
                try {
                    ch.configureBlocking(false)
                    if (options.refuseWith503) {
                        ch.write(ByteBuffer.wrap(rawTextResponse(503, "too many connections\n", options.serverHeader ?: "zmqnode")))
                    }
                } catch (_: IOException) {
                }
                try { ch.close() } catch (_: IOException) {}
                continue
            }
            try {
                ch.configureBlocking(false)
                ch.setOption(StandardSocketOptions.TCP_NODELAY, true)
                val c = Conn(ch)
                c.key = ch.register(selector, SelectionKey.OP_READ, c)
                open.incrementAndGet()
                conns.add(c)
            } catch (e: IOException) {
                try { ch.close() } catch (_: IOException) {}
            }
        }
    }

    private enum class Phase { HEAD, BODY, WAIT, SENDING }

    private inner class Conn(val ch: SocketChannel) {
        lateinit var key: SelectionKey
        var closed = false
        var counted = true
        var inbuf = ByteArray(4096)
        var inStart = 0
        var inEnd = 0
        var phase = Phase.HEAD
        var idleSince: Long? = System.nanoTime()
        var requestStarted: Long? = null
        // the head being read
        var method = ""
        var target = ""
        var version = ""
        var headers = LinkedHashMap<String, String>()
        var keepAlive = true
        var contentLength = -1L
        var chunked = false
        var chunkState = 0 // 0 size line, 1 data, 2 CRLF after data, 3 trailer
        var remaining = 0L
        var body = java.io.ByteArrayOutputStream()
        var bodySize = 0L
        var responder: Resp? = null
        val out = java.util.ArrayDeque<ByteBuffer>()
        var lastSent = System.nanoTime()
        var closingAfterSend = false
        var lingerUntil: Long? = null
        var lingerRead = 0
        var processing = false

        fun available() = inEnd - inStart

        fun onEvents(key: SelectionKey) {
            if (closed) return
            if (key.isValid && key.isWritable && out.isNotEmpty()) flush()
            if (closed) return
            if (key.isValid && key.isReadable) read()
            if (!closed) updateInterest()
        }

        fun busy() = responder != null || out.isNotEmpty()

        fun wantRead(): Boolean = when {
            lingerUntil != null -> true
            closingAfterSend -> false
            busy() -> available() < limits.maxBufferedBytes
            else -> true
        }

        fun updateInterest() {
            if (closed || !key.isValid) return
            val ops = (if (wantRead()) SelectionKey.OP_READ else 0) or (if (out.isNotEmpty()) SelectionKey.OP_WRITE else 0)
            if (key.interestOps() != ops) key.interestOps(ops)
        }

        fun read() {
            val buf = readBuf
            buf.clear()
            val n = ch.read(buf)
            if (n < 0) {
                disconnected()
                return
            }
            if (n == 0) return
            if (lingerUntil != null) {
                lingerRead += n
                if (lingerRead > LINGER_BYTES) close()
                return
            }
            append(buf.array(), n)
            if (busy()) return
            if (requestStarted == null) {
                requestStarted = System.nanoTime()
                idleSince = null
            }
            process()
        }

        fun append(b: ByteArray, n: Int) {
            if (inStart > 0 && inStart == inEnd) { inStart = 0; inEnd = 0 }
            if (inEnd + n > inbuf.size) {
                val live = inEnd - inStart
                val size = maxOf(inbuf.size, live + n).let { if (it > inbuf.size) maxOf(it, inbuf.size * 2) else it }
                val nb = if (size > inbuf.size) ByteArray(size) else inbuf
                System.arraycopy(inbuf, inStart, nb, 0, live)
                inbuf = nb
                inStart = 0
                inEnd = live
            }
            System.arraycopy(b, 0, inbuf, inEnd, n)
            inEnd += n
        }

        fun disconnected() = close()

        /** Parses what is buffered until a request is dispatched, more data is needed or the connection ends. */
        fun process() {
            if (processing) return
            processing = true
            try {
                while (!closed && !busy() && !closingAfterSend && lingerUntil == null) {
                    val progressed = try {
                        step()
                    } catch (f: HttpFail) {
                        fail(f.status, f.message ?: "")
                        return
                    }
                    if (!progressed) return
                }
            } finally {
                processing = false
            }
        }

        /** One parsing step; false when more data is needed. */
        fun step(): Boolean = when (phase) {
            Phase.HEAD -> readHead()
            Phase.BODY -> readBody()
            else -> false
        }

        fun readHead(): Boolean {
            // Empty lines before a request line are ignored (RFC 9112 §2.2, as h11 does).
            while (available() > 0) {
                val b = inbuf[inStart]
                if (b == '\n'.toByte()) { inStart++; continue }
                if (b == '\r'.toByte() && available() >= 2 && inbuf[inStart + 1] == '\n'.toByte()) { inStart += 2; continue }
                break
            }
            if (available() == 0) return false
            // The head ends at the first empty line.
            var end = -1
            var i = inStart
            var lineStart = inStart
            while (i < inEnd) {
                if (inbuf[i] == '\n'.toByte()) {
                    val len = i - lineStart
                    if (len == 0 || (len == 1 && inbuf[lineStart] == '\r'.toByte())) {
                        end = i + 1
                        break
                    }
                    lineStart = i + 1
                }
                i++
            }
            if (end < 0) {
                if (available() > limits.maxHeaderBytes) throw HttpFail(431, "request header fields too large")
                return false
            }
            val text = String(inbuf, inStart, end - inStart, Charsets.ISO_8859_1)
            inStart = end
            parseHead(text)
            return true
        }

        fun parseHead(text: String) {
            val lines = text.split("\n").map { it.removeSuffix("\r") }.toMutableList()
            while (lines.isNotEmpty() && lines.last().length == 0) lines.removeAt(lines.size - 1)
            val m = REQUEST_LINE.matchEntire(lines[0]) ?: throw HttpFail(400, "bad request: illegal request line")
            method = m.groupValues[1]
            target = m.groupValues[2]
            version = m.groupValues[3]
            if (!version.startsWith("1.")) throw HttpFail(505, "bad request: HTTP/$version is not supported")
            val fields = ArrayList<Pair<String, String>>()
            for (line in lines.drop(1)) {
                if (line.isNotEmpty() && (line[0] == ' ' || line[0] == '\t')) {
                    // obs-fold (RFC 9112 §5.2): joined to the previous field with a space
                    if (fields.isEmpty()) throw HttpFail(400, "bad request: continuation line at start of headers")
                    val last = fields.removeAt(fields.size - 1)
                    fields.add(last.first to (last.second + " " + checkValue(line.trim(' ', '\t'))))
                    continue
                }
                val colon = line.indexOf(':')
                if (colon <= 0) throw HttpFail(400, "bad request: illegal header line")
                val name = line.substring(0, colon)
                if (!TOKEN.matches(name)) throw HttpFail(400, "bad request: illegal header line")
                fields.add(name.toLowerCase() to checkValue(line.substring(colon + 1).trim(' ', '\t')))
            }
            // h11 measures a head that came in one read: request line and fields less optional whitespace.
            var size = method.length + target.length + 12
            for ((n, v) in fields) size += n.length + v.length + 4
            if (size > limits.maxHeaderBytes) throw HttpFail(431, "request header fields too large")
            headers = LinkedHashMap()
            var lengths = HashSet<String>()
            var hosts = 0
            var transferEncoding: String? = null
            for ((n, v) in fields) {
                when (n) {
                    "content-length" -> for (part in v.split(",")) lengths.add(part.trim(' ', '\t'))
                    "host" -> hosts++
                    "transfer-encoding" -> transferEncoding = if (transferEncoding == null) v else "$transferEncoding, $v"
                }
                headers[n] = headers[n]?.let { "$it, $v" } ?: v
            }
            if (version == "1.1" && hosts == 0) throw HttpFail(400, "bad request: Missing mandatory Host: header")
            if (hosts > 1) throw HttpFail(400, "bad request: Found multiple Host: headers")
            contentLength = -1
            chunked = false
            if (transferEncoding != null) {
                if (transferEncoding.trim().toLowerCase() != "chunked") {
                    throw HttpFail(501, "bad request: Only Transfer-Encoding: chunked is supported")
                }
                if (lengths.isNotEmpty()) throw HttpFail(400, "bad request: both Transfer-Encoding and Content-Length")
                chunked = true
            } else if (lengths.isNotEmpty()) {
                if (lengths.size > 1) throw HttpFail(400, "bad request: conflicting Content-Length headers")
                val v = lengths.first()
                if (v.length == 0 || v.any { it !in '0'..'9' }) throw HttpFail(400, "bad request: bad Content-Length")
                contentLength = v.trimStart('0').let { if (it.length == 0) 0L else if (it.length > 18) Long.MAX_VALUE else it.toLong() }
            }
            val conn = (headers["connection"] ?: "").toLowerCase().split(",").map { it.trim() }
            keepAlive = options.keepAlive && version == "1.1" && "close" !in conn
            if (contentLength > limits.maxBodyBytes) throw HttpFail(413, "request body too large")
            body = java.io.ByteArrayOutputStream(if (contentLength in 1..(1 shl 20)) contentLength.toInt() else 256)
            bodySize = 0
            chunkState = 0
            remaining = if (contentLength > 0) contentLength else 0
            if (version == "1.1" && (headers["expect"] ?: "").toLowerCase() == "100-continue") {
                // RFC 9110 §10.1.1: the body is within limits, ask for it.
                queue(ByteBuffer.wrap("HTTP/1.1 100 Continue\r\n\r\n".toByteArray(Charsets.ISO_8859_1)))
                flushQuiet()
            }
            phase = Phase.BODY
        }

        fun checkValue(v: String): String {
            for (c in v) {
                val k = c.toInt()
                if ((k < 0x20 && k != 0x09) || k == 0x7f) throw HttpFail(400, "bad request: illegal header value")
            }
            return v
        }

        fun readBody(): Boolean {
            if (!chunked) {
                if (remaining > 0) {
                    val n = minOf(remaining, available().toLong()).toInt()
                    if (n == 0) return false
                    body.write(inbuf, inStart, n)
                    inStart += n
                    remaining -= n
                    if (remaining > 0) return false
                }
                dispatch()
                return true
            }
            chunks@ while (true) {
                when (chunkState) {
                    0, 3 -> {
                        val line = takeLine() ?: return false
                        if (chunkState == 3) {
                            if (line.length == 0) {
                                dispatch()
                                return true
                            }
                            continue@chunks
                        }
                        val m = CHUNK_SIZE.matchEntire(line) ?: throw HttpFail(400, "bad request: illegal chunk header")
                        val size = java.lang.Long.parseLong(m.groupValues[1], 16)
                        if (size == 0L) {
                            chunkState = 3
                        } else {
                            if (bodySize + size > limits.maxBodyBytes) throw HttpFail(413, "request body too large")
                            remaining = size
                            chunkState = 1
                        }
                    }
                    1 -> {
                        val n = minOf(remaining, available().toLong()).toInt()
                        if (n == 0) return false
                        body.write(inbuf, inStart, n)
                        inStart += n
                        remaining -= n
                        bodySize += n
                        if (remaining == 0L) chunkState = 2
                    }
                    2 -> {
                        if (available() < 2) return false
                        if (inbuf[inStart] != '\r'.toByte() || inbuf[inStart + 1] != '\n'.toByte()) {
                            throw HttpFail(400, "bad request: missing CRLF after chunk data")
                        }
                        inStart += 2
                        chunkState = 0
                    }
                }
            }
        }

        /** A CRLF- (or LF-) ended line of chunked framing, or null when it has not come whole. */
        fun takeLine(): String? {
            var i = inStart
            while (i < inEnd && inbuf[i] != '\n'.toByte()) i++
            if (i >= inEnd) {
                if (available() > limits.maxHeaderBytes) throw HttpFail(400, "bad request: chunk line too long")
                return null
            }
            val line = String(inbuf, inStart, i - inStart, Charsets.ISO_8859_1).removeSuffix("\r")
            inStart = i + 1
            return line
        }

        fun dispatch() {
            val request = HttpRequest(method, target, headers, body.toByteArray(), version, System.nanoTime())
            body = java.io.ByteArrayOutputStream(0)
            requestStarted = null
            phase = Phase.WAIT
            val r = Resp(this, method == "HEAD", keepAlive)
            responder = r
            try {
                handler(request, r)
            } catch (e: Exception) {
                r.respond(500, listOf("Content-Type" to "text/plain; charset=utf-8"), "internal error\n".toByteArray(Charsets.UTF_8))
            }
        }

        /** The answer to the dispatched request (on the transport's thread). */
        fun answer(r: Resp, status: Int, hdrs: List<Pair<String, String>>, bodyIn: ByteArray) {
            if (closed || responder !== r) return
            responder = null
            val sb = StringBuilder(256)
            sb.append("HTTP/1.1 ").append(status).append(' ').append(reasonPhrase(status)).append("\r\n")
            var hasServer = false
            var close = !r.keepAlive
            for ((n, v) in hdrs) {
                val lower = n.toLowerCase()
                if (lower == "content-length" || lower == "transfer-encoding") continue
                if (lower == "server") hasServer = true
                if (lower == "connection") {
                    if ("close" in v.toLowerCase().split(",").map { it.trim() }) close = true
                    continue
                }
                sb.append(n).append(": ").append(v).append("\r\n")
            }
            if (!hasServer && options.serverHeader != null) sb.append("Server: ").append(options.serverHeader).append("\r\n")
            var body = bodyIn
            if (status == 204 || status == 304 || status < 200) {
                body = ByteArray(0)
            } else {
                sb.append("Content-Length: ").append(body.size).append("\r\n")
            }
            if (close) sb.append("Connection: close\r\n")
            sb.append("\r\n")
            if (r.head) body = ByteArray(0)
            val headBytes = sb.toString().toByteArray(Charsets.ISO_8859_1)
            if (body.size <= 65536) {
                val all = ByteArray(headBytes.size + body.size)
                System.arraycopy(headBytes, 0, all, 0, headBytes.size)
                System.arraycopy(body, 0, all, headBytes.size, body.size)
                queue(ByteBuffer.wrap(all))
            } else {
                queue(ByteBuffer.wrap(headBytes))
                queue(ByteBuffer.wrap(body))
            }
            phase = Phase.SENDING
            if (close) closingAfterSend = true
            flushQuiet()
            if (!closed) updateInterest()
        }

        fun queue(b: ByteBuffer) {
            if (!b.hasRemaining()) return
            if (out.isEmpty()) lastSent = System.nanoTime()
            out.add(b)
        }

        fun flushQuiet() {
            try {
                flush()
            } catch (e: IOException) {
                disconnected()
            }
        }

        fun flush() {
            for (i in 0 until 16) {
                val b = out.peekFirst() ?: break
                val n = ch.write(b)
                if (n > 0) lastSent = System.nanoTime()
                if (b.hasRemaining()) break
                out.removeFirst()
            }
            if (out.isNotEmpty()) return
            if (closingAfterSend) startLinger() else if (responder == null) resume()
        }

        /** Parse again once idle: what was read ahead. */
        fun resume() {
            if (busy() || closingAfterSend || closed) return
            phase = Phase.HEAD
            if (available() > 0) {
                requestStarted = System.nanoTime()
                idleSince = null
                process()
            } else if (requestStarted == null) {
                idleSince = System.nanoTime()
            }
        }

        /** Answer an error and close, lingering (RFC 9112 §9.6). */
        fun fail(status: Int, message: String) {
            responder?.detach()
            responder = null
            inStart = 0
            inEnd = 0
            val text = message.replace("\n", " ").let { if (it.length > 200) it.substring(0, 200) else it } + "\n"
            val b = text.toByteArray(Charsets.UTF_8)
            val head = StringBuilder()
                .append("HTTP/1.1 ").append(status).append(' ').append(reasonPhrase(status)).append("\r\n")
                .append("Content-Type: text/plain; charset=utf-8\r\n")
            if (options.serverHeader != null) head.append("Server: ").append(options.serverHeader).append("\r\n")
            head.append("Connection: close\r\nContent-Length: ").append(b.size).append("\r\n\r\n")
            queue(ByteBuffer.wrap(head.toString().toByteArray(Charsets.ISO_8859_1) + b))
            closingAfterSend = true
            flushQuiet()
            if (!closed) updateInterest()
        }

        fun startLinger() {
            if (lingerUntil != null) return
            try {
                ch.shutdownOutput()
            } catch (e: IOException) {
                close()
                return
            }
            release()
            lingerUntil = System.nanoTime() + minOf(LINGER_MS, limits.requestTimeoutMs) * 1_000_000
            updateInterest()
        }

        fun checkTime(now: Long) {
            if (closed) return
            val linger = lingerUntil
            if (linger != null) {
                if (now - linger >= 0) close()
                return
            }
            if (out.isNotEmpty()) {
                if (now - lastSent >= limits.idleTimeoutMs * 1_000_000) close() // the client does not read
                return
            }
            if (responder != null || closingAfterSend) return // the node's deadlines bound the answer
            val started = requestStarted
            if (started != null) {
                if (now - started >= limits.requestTimeoutMs * 1_000_000) fail(408, "request not received in time")
                return
            }
            val idle = idleSince
            if (idle != null && now - idle >= limits.idleTimeoutMs * 1_000_000) close()
        }

        fun release() {
            if (counted) {
                counted = false
                open.decrementAndGet()
            }
        }

        fun close() {
            if (closed) return
            closed = true
            responder?.detach()
            responder = null
            try { key.cancel() } catch (_: Exception) {}
            try { ch.close() } catch (_: IOException) {}
            out.clear()
            release()
            conns.remove(this)
        }
    }

    private inner class Resp(conn: Conn, val head: Boolean, val keepAlive: Boolean) : HttpResponder {
        @Volatile private var conn: Conn? = conn
        private val answered = AtomicBoolean(false)

        override val closed: Boolean get() = conn == null || answered.get()

        fun detach() {
            conn = null
        }

        override fun respond(status: Int, headers: List<Pair<String, String>>, body: ByteArray) {
            if (!answered.compareAndSet(false, true)) return
            val c = conn ?: return
            if (Thread.currentThread() === thread) {
                c.answer(this, status, headers, body)
            } else {
                post { c.answer(this, status, headers, body) }
            }
        }
    }

    private companion object {
        val TOKEN = Regex("[!#$%&'*+\\-.^_`|~0-9A-Za-z]+")
        val REQUEST_LINE = Regex("([!#$%&'*+\\-.^_`|~0-9A-Za-z]+) ([\\x21-\\x7e\\x80-\\xff]+) HTTP/([0-9]\\.[0-9])")
        val CHUNK_SIZE = Regex("([0-9A-Fa-f]{1,15})[ \\t]*(;.*)?")
    }
}
