package zmqnode.httpinfer

import java.io.ByteArrayOutputStream
import java.io.File
import java.io.InputStream
import java.net.InetSocketAddress
import java.net.Socket
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.Base64
import java.util.Collections
import java.util.concurrent.Executors
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.wire.Json
import zmqnode.wire.JsonObject

const val TEST_TOKEN = "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"

/** A parsed answer: status, headers (lower-case names), body. */
class Resp(val status: Int, val headers: Map<String, String>, val body: ByteArray) {
    val text get() = String(body, Charsets.UTF_8)
    val close get() = headers["connection"]?.toLowerCase() == "close"
}

/** Reads one answer from the stream (1xx answers skipped); HEAD answers have no body. */
fun readResponse(input: InputStream, method: String): Resp {
    while (true) {
        val head = ByteArrayOutputStream()
        var last4 = 0
        while (true) {
            val c = input.read()
            if (c < 0) fail("the connection closed before an answer's head ended: ${String(head.toByteArray(), Charsets.ISO_8859_1)}")
            head.write(c)
            last4 = (last4 shl 8) or c
            if (last4 == 0x0d0a0d0a) break
        }
        val lines = String(head.toByteArray(), Charsets.ISO_8859_1).trimEnd().split("\r\n")
        val status = lines[0].split(" ")[1].toInt()
        val headers = LinkedHashMap<String, String>()
        for (l in lines.drop(1)) {
            val c = l.indexOf(':')
            headers[l.substring(0, c).toLowerCase()] = l.substring(c + 1).trim()
        }
        if (status in 100..199) continue
        val n = if (method == "HEAD") 0 else (headers["content-length"]?.toInt() ?: 0)
        val body = ByteArray(n)
        var got = 0
        while (got < n) {
            val k = input.read(body, got, n - got)
            if (k < 0) fail("the connection closed inside a body")
            got += k
        }
        return Resp(status, headers, body)
    }
}

/** A loop thread with the rules of gen_server.py's fake_dispatch. */
class FakeNode {
    private val jobs = LinkedBlockingQueue<() -> Unit>()
    private val timer = Executors.newSingleThreadScheduledExecutor()
    val answered: MutableList<String> = Collections.synchronizedList(ArrayList())
    @Volatile var ready = true
    val logged: MutableList<String> = Collections.synchronizedList(ArrayList())
    private val thread = Thread {
        while (true) {
            val job = jobs.take()
            try { job() } catch (e: InterruptedException) { return@Thread }
        }
    }.also { it.isDaemon = true; it.start() }

    fun stop() {
        jobs.add { throw InterruptedException() }
        timer.shutdownNow()
    }

    private val listings = mapOf(
        "m1" to "{\"model_id\":\"m1\",\"task\":\"multiclass\",\"inputs\":2,\"classes\":[\"cat\",\"dog\"]}",
        "unk" to "{\"model_id\":\"unk\",\"task\":\"binary\",\"inputs\":2,\"classes\":[0,1]}",
        "reg" to "{\"model_id\":\"reg\",\"task\":\"regression\",\"inputs\":2,\"outputs\":1}"
    )

    private fun desc(dtype: String, shape: List<Int>, frame: Int) = JsonObject("dtype" to dtype, "shape" to shape, "frame" to frame)

    fun dispatch(header: JsonObject, blobs: List<ByteArray>, reply: HttpReply) {
        val model = header.str("model_id") ?: ""
        val type = header.str("type")
        when {
            model == "hang" -> {}
            model == "late" -> timer.schedule({ jobs.add { reply.error("NOT_FOUND", "late but welcome") } }, 700, TimeUnit.MILLISECONDS)
            model == "panic" -> throw IllegalStateException("the fake node fails")
            model == "missing" -> reply.error("NOT_FOUND", "no model $model")
            model == "busy" -> reply.error("BUSY", "node n0 is busy; retry later")
            model == "slow" -> reply.error("TIMEOUT", "no answer in time")
            model == "redirect" -> reply.redirect("127.0.0.1:9001")
            model == "bad" -> reply.ok(emptyList(), listOf("model_id" to model))
            type == "INFO" -> {
                val listing = listings[model]
                if (listing == null) reply.error("NOT_FOUND", "no model $model") else reply.ok(emptyList(), listOf("model" to Json.parse(listing)))
            }
            else -> {
                val shape = header.obj("inputs")!!.list("shape")!!.map { Json.intValue(it)!!.toInt() }
                val n = shape[0]
                val cols = shape[1]
                val x = ByteBuffer.wrap(blobs[0]).order(ByteOrder.LITTLE_ENDIAN)
                if (model == "reg") {
                    val out = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN)
                    for (i in 0 until n) {
                        var s = 0f
                        for (j in 0 until cols) s += x.getFloat(4 * (i * cols + j))
                        out.putFloat(s)
                    }
                    reply.ok(listOf(out.array()), listOf("model_id" to model, "outputs" to desc("float32", listOf(n), 0)))
                    return
                }
                val index = ByteBuffer.allocate(8 * n).order(ByteOrder.LITTLE_ENDIAN)
                for (i in 0 until n) index.putLong((i % 2).toLong())
                val classes = (Json.parse(listings[model]!!) as JsonObject)["classes"]
                val fields = arrayListOf("model_id" to model, "outputs" to desc("int64", listOf(n), 0), "classes" to classes)
                val out = arrayListOf(index.array())
                if (header.bool("proba") == true) {
                    val p = ByteBuffer.allocate(8 * n).order(ByteOrder.LITTLE_ENDIAN)
                    for (i in 0 until n) { p.putFloat(0.25f); p.putFloat(0.75f) }
                    fields.add("probabilities" to desc("float32", listOf(n, 2), 1))
                    out.add(p.array())
                }
                reply.ok(out, fields)
            }
        }
    }

    fun links(token: String, limits: HttpLimits = HttpLimits()) = HttpLinks(
        submit = { fn -> jobs.add(fn) },
        dispatch = { h, b, r -> dispatch(h, b, r) },
        token = token,
        log = { logged.add(it) },
        nodeId = "n0",
        version = "0.1.0",
        taskOf = { mapOf("m1" to "multiclass", "reg" to "regression")[it] ?: "" },
        isReady = { ready },
        onAnswered = { e, s, _ -> answered.add("$e:$s") },
        limits = limits)

    fun lastAnswered(): String = synchronized(answered) { answered.lastOrNull() ?: "" }
}

fun rawRequest(method: String, target: String, headers: Map<String, String>, body: ByteArray): ByteArray {
    val b = StringBuilder("$method $target HTTP/1.1\r\nHost: x\r\n")
    for (k in headers.keys.sorted()) b.append(k).append(": ").append(headers[k]).append("\r\n")
    b.append("Content-Length: ${body.size}\r\nConnection: close\r\n\r\n")
    return b.toString().toByteArray(Charsets.ISO_8859_1) + body
}

fun auth() = mutableMapOf("Authorization" to "Bearer $TEST_TOKEN")

class HttpServerTest {
    private fun <T> withServer(links: (FakeNode) -> HttpLinks, body: (HttpServer, FakeNode) -> T): T {
        val node = FakeNode()
        val s = HttpServer.start("127.0.0.1", 0, links(node))
        try {
            return body(s, node)
        } finally {
            s.close()
            node.stop()
        }
    }

    private fun <T> withServer(body: (HttpServer, FakeNode) -> T): T = withServer({ it.links(TEST_TOKEN) }, body)

    private fun connect(port: Int): Socket {
        val c = Socket()
        c.connect(InetSocketAddress("127.0.0.1", port), 2000)
        c.soTimeout = 5000
        return c
    }

    /** Writes raw bytes on a new connection and reads one answer. */
    private fun send(port: Int, raw: ByteArray, method: String): Resp = connect(port).use { c ->
        c.getOutputStream().write(raw)
        readResponse(c.getInputStream(), method)
    }

    private fun readAll(c: Socket, timeoutMs: Int): Pair<Long, ByteArray> {
        val start = System.nanoTime()
        c.soTimeout = timeoutMs
        val out = ByteArrayOutputStream()
        val buf = ByteArray(4096)
        try {
            while (true) {
                val n = c.getInputStream().read(buf)
                if (n < 0) break
                out.write(buf, 0, n)
            }
        } catch (e: java.io.IOException) {
        }
        return (System.nanoTime() - start) / 1_000_000 to out.toByteArray()
    }

    // server_golden.json: inference_http.py's answers to the same requests with the same fake node (gen_server.py).
    fun testAnswersAsInferenceHttpPy() = withServer { s, node ->
        val cases = Json.parse(File("../go/httpinfer/testdata/server_golden.json").readBytes()) as List<*>
        assertEquals(56, cases.size)
        for (c0 in cases) {
            val c = c0 as JsonObject
            val method = c.str("method")!!
            val target = c.str("target")!!
            val headers = c.obj("headers")!!.entries.map { it.first to it.second as String }.toMap()
            val body = Base64.getDecoder().decode(c.str("body"))
            val want = Base64.getDecoder().decode(c.str("answer"))
            val status = Json.intValue(c["status"])!!.toInt()
            val name = "$method ${target.take(60)} ${headers["authorization"]}"
            val r = send(s.port, rawRequest(method, target, headers, body), method)
            val prefix = "{\"error\":\"request is not valid JSON: "
            val sameJsonError = r.text.startsWith(prefix) && String(want, Charsets.UTF_8).startsWith(prefix)
            if (r.status != status || !(r.body.contentEquals(want) || sameJsonError)) {
                fail("$name:\n got  ${r.status} ${r.text}\nwant $status ${String(want, Charsets.UTF_8)}")
            }
            for ((key, header) in listOf("content_type" to "content-type", "www_authenticate" to "www-authenticate",
                "header_length" to "inference-header-content-length")) {
                assertEquals(c[key] as String?, r.headers[header], "$name: $header")
            }
            assertEquals("zmqnode", r.headers["server"], name)
            val deadline = System.currentTimeMillis() + 10_000 // counted after the answer is written: a loaded machine lags
            while (node.lastAnswered() != "${c.str("endpoint")}:$status" && System.currentTimeMillis() < deadline) Thread.sleep(2)
            assertEquals("${c.str("endpoint")}:$status", node.lastAnswered(), "$name: counted")
        }
    }

    fun testHeadAnswersAsGetWithoutABody() = withServer { s, _ ->
        val r = send(s.port, rawRequest("HEAD", "/v2/models/m1", auth(), ByteArray(0)), "HEAD")
        assertEquals(200, r.status)
        assertTrue(r.body.isEmpty() && r.headers["content-length"]!!.toInt() > 0)
    }

    fun testReadinessFollowsTheNode() = withServer { s, node ->
        node.ready = false
        val r = send(s.port, rawRequest("GET", "/v2/health/ready", emptyMap(), ByteArray(0)), "GET")
        assertEquals(503, r.status)
        assertEquals("{\"ready\":false}", r.text)
    }

    fun testWithoutATokenEveryRequestIsAdmittedOnLoopbackOnly() = withServer({ it.links("") }) { s, node ->
        assertEquals(200, send(s.port, rawRequest("GET", "/v2/models/m1", emptyMap(), ByteArray(0)), "GET").status)
        val e = try {
            HttpServer.start("0.0.0.0", 0, node.links("")).close()
            null
        } catch (e: java.io.IOException) {
            e
        }
        assertTrue(e != null && e.message!!.contains("http.token"), "$e")
    }

    fun testABodyOverTheLimitIs413BeforeItIsRead() = withServer({ it.links(TEST_TOKEN, HttpLimits(maxBodyBytes = 100)) }) { s, node ->
        val headers = auth()
        headers["Expect"] = "100-continue"
        val raw = String(rawRequest("POST", "/v2/models/m1/infer", headers, ByteArray(0)), Charsets.ISO_8859_1)
            .replace("Content-Length: 0", "Content-Length: 101") // the body is never sent
        val r = send(s.port, raw.toByteArray(Charsets.ISO_8859_1), "POST")
        assertEquals(413, r.status)
        assertEquals("request body too large\n", r.text)
        assertTrue(r.close)
        val chunked = "POST /v2/models/m1/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $TEST_TOKEN" +
            "\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + "x".repeat(101) + "\r\n0\r\n\r\n"
        assertEquals(413, send(s.port, chunked.toByteArray(), "POST").status)
        assertEquals("", node.lastAnswered(), "a 413 is the transport's, not counted")
    }

    fun testHeadersOver16KiBAre431() = withServer { s, _ ->
        val headers = auth()
        headers["X-Big"] = "a".repeat(16384)
        assertEquals(431, send(s.port, rawRequest("GET", "/v2", headers, ByteArray(0)), "GET").status)
        headers["X-Big"] = "a".repeat(15000)
        assertEquals(200, send(s.port, rawRequest("GET", "/v2", headers, ByteArray(0)), "GET").status)
    }

    private val short = { n: FakeNode -> n.links(TEST_TOKEN, HttpLimits(requestTimeoutMs = 200, idleTimeoutMs = 500)) }

    fun testAHeadThatDoesNotArriveInTimeIs408EvenTrickled() = withServer(short) { s, _ ->
        connect(s.port).use { c ->
            c.getOutputStream().write("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n".toByteArray())
            for (i in 0 until 3) { // trickling bytes does not restart the clock
                Thread.sleep(50)
                c.getOutputStream().write("X-A: b\r\n".toByteArray())
            }
            val (took, got) = readAll(c, 5000)
            val text = String(got, Charsets.ISO_8859_1)
            assertTrue(text.startsWith("HTTP/1.1 408 ") && text.endsWith("request not received in time\n") && took < 2000, "$text after $took ms")
        }
    }

    fun testAConnectionIdleBeforeAndBetweenRequestsIsClosedAfterTheIdleTimeout() = withServer(short) { s, _ ->
        connect(s.port).use { c ->
            val (took, got) = readAll(c, 5000) // never sends: the idle timeout, not the request timeout
            assertTrue(got.isEmpty() && took >= 450 && took < 2000, "never sending: ${got.size} bytes after $took ms")
        }
        connect(s.port).use { c ->
            // The server's idle clock starts when it has answered, which the
            // client sees only later: bound it below from before the request.
            val sent = System.nanoTime()
            c.getOutputStream().write("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n".toByteArray())
            assertEquals(200, readResponse(c.getInputStream(), "GET").status)
            val (took, rest) = readAll(c, 5000)
            val sinceSent = (System.nanoTime() - sent) / 1_000_000
            assertTrue(rest.isEmpty() && sinceSent >= 450 && took < 2000,
                "keep-alive: ${rest.size} bytes after $took ms ($sinceSent ms since the request)")
        }
    }

    fun testAPendingAnswerIsNotTimedOutByTheServer() = withServer(short) { s, _ ->
        val r = send(s.port, rawRequest("GET", "/v2/models/late", auth(), ByteArray(0)), "GET") // answered after 0.7 s
        assertEquals(404, r.status)
        assertEquals("{\"error\":\"late but welcome\"}", r.text)
    }

    fun testABodyThatDoesNotArriveInTimeIs408() = withServer({ it.links(TEST_TOKEN, HttpLimits(requestTimeoutMs = 300)) }) { s, _ ->
        val raw = String(rawRequest("POST", "/v2/models/m1/infer", auth(), "{}".toByteArray()), Charsets.ISO_8859_1)
            .replace("Content-Length: 2", "Content-Length: 10")
        val start = System.currentTimeMillis()
        val r = send(s.port, raw.toByteArray(Charsets.ISO_8859_1), "POST")
        assertEquals(408, r.status)
        assertEquals("request not received in time\n", r.text)
        assertTrue(System.currentTimeMillis() - start < 3000)
    }

    fun testConnectionsPastTheCapGet503AndAClose() = withServer({ it.links(TEST_TOKEN, HttpLimits(maxConnections = 3)) }) { s, _ ->
        val open = (0 until 3).map { connect(s.port) }
        try {
            val deadline = System.currentTimeMillis() + 2000
            while (s.connections < 3 && System.currentTimeMillis() < deadline) Thread.sleep(5)
            connect(s.port).use { c ->
                val text = String(readAll(c, 2000).second, Charsets.ISO_8859_1)
                assertTrue(text.startsWith("HTTP/1.1 503 ") && text.endsWith("too many connections\n"), text)
            }
            assertEquals(3, s.connections)
        } finally {
            open.forEach { it.close() }
        }
    }

    fun testKeepAliveAndPipelinedRequestsAreAnsweredInOrder() = withServer { s, _ ->
        connect(s.port).use { c ->
            val one = "GET /v2/models/m1/ready HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $TEST_TOKEN\r\n\r\n"
            val two = "GET /v2/models/missing/ready HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $TEST_TOKEN\r\n\r\n"
            c.getOutputStream().write((one + two).toByteArray())
            for (want in listOf(200, 404)) assertEquals(want, readResponse(c.getInputStream(), "GET").status)
        }
    }

    fun testCloseAnswersWaitingRequestsWith503() {
        val node = FakeNode()
        val s = HttpServer.start("127.0.0.1", 0, node.links(TEST_TOKEN))
        try {
            val result = LinkedBlockingQueue<Any>()
            val t = Thread {
                try {
                    result.add(send(s.port, rawRequest("GET", "/v2/models/hang", auth(), ByteArray(0)), "GET"))
                } catch (e: Throwable) {
                    result.add(e)
                }
            }
            t.start()
            val deadline = System.currentTimeMillis() + 2000
            while (s.waitingCount != 1 && System.currentTimeMillis() < deadline) Thread.sleep(5)
            s.close()
            val r = result.poll(5, TimeUnit.SECONDS)
            if (r !is Resp) fail("$r")
            assertEquals(503, r.status)
            assertEquals("{\"error\":\"node n0 is shutting down; retry on another node\"}", r.text)
        } finally {
            s.close()
            node.stop()
        }
    }

    fun testAnAnswerThatNeverComesIs504() = withServer({ it.links(TEST_TOKEN, HttpLimits(replyTimeoutMs = 200)) }) { s, _ ->
        val r = send(s.port, rawRequest("GET", "/v2/models/hang", auth(), ByteArray(0)), "GET")
        assertEquals(504, r.status)
        assertTrue(r.text.contains("gave up waiting"))
    }

    fun testAPanicInTheNodeCostsOneRequest() = withServer { s, node ->
        val r = send(s.port, rawRequest("GET", "/v2/models/panic", auth(), ByteArray(0)), "GET")
        assertEquals(500, r.status)
        assertTrue(r.text.contains("node n0 failed"), r.text)
        assertEquals(200, send(s.port, rawRequest("GET", "/v2/models/m1", auth(), ByteArray(0)), "GET").status)
        assertEquals(1, node.logged.size, "${node.logged}")
    }

    fun testBinaryInputAndOutputRoundTrip() = withServer { s, _ ->
        val tail = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
        for (v in listOf(0f, 1f, 1f, 1f)) tail.putFloat(v)
        val head = "{\"inputs\":[{\"name\":\"inputs\",\"datatype\":\"FP32\",\"shape\":[2,2],\"parameters\":{\"binary_data_size\":16}}]," +
            "\"outputs\":[{\"name\":\"label\",\"parameters\":{\"binary_data\":true}},{\"name\":\"probabilities\",\"parameters\":{\"binary_data\":true}}]}"
        val headers = auth()
        headers[Oip.HEADER_LENGTH] = head.length.toString()
        val r = send(s.port, rawRequest("POST", "/v2/models/m1/infer", headers, head.toByteArray() + tail.array()), "POST")
        assertEquals(200, r.status, r.text)
        assertEquals("application/octet-stream", r.headers["content-type"])
        val n = r.headers["inference-header-content-length"]!!.toInt()
        val meta = Json.parse(r.body.copyOfRange(0, n)) as JsonObject
        val size = Json.intValue((meta.list("outputs")!![0] as JsonObject).obj("parameters")!!["binary_data_size"])!!.toInt()
        val labels = r.body.copyOfRange(n, n + size)
        val proba = r.body.copyOfRange(n + size, r.body.size)
        assertEquals("\u0003\u0000\u0000\u0000cat\u0003\u0000\u0000\u0000dog", String(labels, Charsets.ISO_8859_1))
        assertEquals(16, proba.size)
        assertEquals(0.75f, ByteBuffer.wrap(proba).order(ByteOrder.LITTLE_ENDIAN).getFloat(4))
    }

    // The port fuzzer's cases where net/http answered 400 where h11 reads a request: every pipelined request gets its answer, in order.
    fun testRequestsH11ReadsAreAnsweredEvenPipelined() = withServer { s, _ ->
        val a = "Authorization: Bearer $TEST_TOKEN\r\n"
        val live = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n$a\r\n"
        val cases = listOf(
            Triple("GET /v2/repository/index/-]z9+%a_ HTTP/1.1\r\nHost: x\r\n$a\r\n$live", listOf("GET", "GET"), listOf(404, 200)),
            Triple("POST /metrics/-~a% HTTP/1.1\r\nHost: x\r\n${a}Content-Length: 7\r\n\r\n{\"a\":1}$live", listOf("POST", "GET"), listOf(404, 200)),
            Triple("POST /v2/models/m1/infer?+a=+%_0 HTTP/1.1\r\nHost: x\r\n${a}Transfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n" +
                "GET /v2/models/%zz/ready HTTP/1.1\r\nHost: x\r\n$a\r\n$live", listOf("POST", "GET", "GET"), listOf(0, 0, 200)),
            Triple("\r\n\r\n$live\r\n$live", listOf("GET", "GET"), listOf(200, 200)))
        for ((raw, methods, want) in cases) {
            connect(s.port).use { c ->
                c.getOutputStream().write(raw.toByteArray(Charsets.ISO_8859_1))
                val got = methods.map { readResponse(c.getInputStream(), it).status }
                for (i in got.indices) {
                    if (got[i] == 500 || (want[i] != 0 && got[i] != want[i])) fail("${raw.take(60)}: answers $got, want $want")
                }
            }
        }
    }

    fun testTheHandlerSeesTheTargetAsSent() = withServer { s, _ ->
        val r = send(s.port, rawRequest("GET", "/v2/x%z", auth(), ByteArray(0)), "GET")
        assertEquals(404, r.status)
        assertEquals("{\"error\":\"no such endpoint: /v2/x%z\"}", r.text)
    }

    fun testMalformedRequestsInABurstDoNotTakeEverySlot() = withServer { s, _ ->
        for (i in 0 until 256 + 16) {
            connect(s.port).use { c ->
                c.getOutputStream().write("POST /v2 HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n".toByteArray())
                val got = String(readAll(c, 3000).second, Charsets.ISO_8859_1)
                assertTrue(got.startsWith("HTTP/1.1 400 "), "malformed request $i answered ${got.take(80)}")
            }
        }
        assertEquals(200, send(s.port, rawRequest("GET", "/v2/health/live", auth(), ByteArray(0)), "GET").status)
    }

    fun testRoutes() {
        assertEquals(Endpoints.INFER to "m1", route("/v2/models/m1/versions/3/infer"))
        assertEquals(Endpoints.OTHER to "", route("/v2/models//ready"))
        assertEquals(Endpoints.SERVER to "", route("/v2/"))
    }
}
