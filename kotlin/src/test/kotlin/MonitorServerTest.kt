package zmqnode.monitor

import java.io.ByteArrayOutputStream
import java.io.File
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import java.util.Base64
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail

/** A parsed answer: status, headers (lower-case names), body. */
class RawAnswer(val status: Int, val headers: Map<String, String>, val body: ByteArray) {
    companion object {
        fun parse(all: ByteArray): RawAnswer {
            var end = -1
            for (i in 0..all.size - 4) {
                if (all[i] == '\r'.toByte() && all[i + 1] == '\n'.toByte() && all[i + 2] == '\r'.toByte() && all[i + 3] == '\n'.toByte()) {
                    end = i
                    break
                }
            }
            if (end < 0) fail("no head in ${String(all, Charsets.ISO_8859_1).take(200)}")
            val lines = String(all, 0, end, Charsets.ISO_8859_1).split("\r\n")
            val status = lines[0].split(" ")[1].toInt()
            val headers = LinkedHashMap<String, String>()
            for (l in lines.drop(1)) {
                val c = l.indexOf(':')
                headers[l.substring(0, c).toLowerCase()] = l.substring(c + 1).trim()
            }
            return RawAnswer(status, headers, all.copyOfRange(end + 4, all.size))
        }
    }
}

/** Sends raw on a new connection and reads until the server closes it (or timeoutMs pass). */
fun exchangeRaw(port: Int, raw: ByteArray, timeoutMs: Int = 5000): ByteArray {
    Socket().use { s ->
        s.connect(InetSocketAddress("127.0.0.1", port), 2000)
        s.soTimeout = timeoutMs
        s.getOutputStream().write(raw)
        val out = ByteArrayOutputStream()
        val buf = ByteArray(65536)
        try {
            while (true) {
                val n = s.getInputStream().read(buf)
                if (n < 0) break
                out.write(buf, 0, n)
            }
        } catch (e: SocketTimeoutException) {
        } catch (e: java.io.IOException) {
        }
        return out.toByteArray()
    }
}

class MonitorServerTest {
    private val dir = "../go/monitor/testdata"
    private fun read(name: String) = File("$dir/$name").readBytes()

    private fun start(): Monitor {
        val metrics = read("metrics.txt")
        val m = Monitor.start("127.0.0.1", 0, MonitorSource(
            metrics = { metrics },
            logTail = { n -> Monitor.tailFile("$dir/worker.log", n) }))
        m.publish(read("status.json"))
        m.publishModels(read("models.json"))
        return m
    }

    // golden.json: how monitor.py answered the same raw requests (gen_golden.py).
    fun testAnswersAsThePythonMonitor() {
        val m = start()
        try {
            val cases = Regex("\\{\\s*\"request\": \"([^\"]*)\",\\s*\"status\": (\\d+),\\s*\"content_type\": \"([^\"]*)\",\\s*\"body\": \"([^\"]*)\"\\s*\\}")
                .findAll(String(read("golden.json"), Charsets.UTF_8)).toList()
            assertEquals(41, cases.size)
            for (c in cases) {
                val raw = Base64.getDecoder().decode(c.groupValues[1])
                val want = Base64.getDecoder().decode(c.groupValues[4])
                val name = String(raw, Charsets.ISO_8859_1).split("\r\n")[0]
                val a = RawAnswer.parse(exchangeRaw(m.port, raw))
                if (a.status != c.groupValues[2].toInt() || a.headers["content-type"] != c.groupValues[3] || !a.body.contentEquals(want)) {
                    fail("$name: got ${a.status} ${a.headers["content-type"]} ${String(a.body, Charsets.UTF_8)}\nwant ${c.groupValues[2]} ${c.groupValues[3]} ${String(want, Charsets.UTF_8)}")
                }
            }
        } finally {
            m.close()
        }
    }

    fun testHeadIsNotImplementedEither() {
        val m = start()
        try {
            val a = RawAnswer.parse(exchangeRaw(m.port, "HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n".toByteArray()))
            assertEquals(501, a.status)
        } finally {
            m.close()
        }
    }

    fun testParamsOfTheLastSegmentAreCutAsUrlparseDoes() {
        val m = start()
        try {
            val a = RawAnswer.parse(exchangeRaw(m.port, "GET /status;x HTTP/1.1\r\nHost: x\r\n\r\n".toByteArray()))
            assertEquals(200, a.status)
            val b = RawAnswer.parse(exchangeRaw(m.port, "GET /logs?n=%D9%A3 HTTP/1.1\r\nHost: x\r\n\r\n".toByteArray()))
            assertEquals(200, b.status) // int("٣") is 3 in Python
            assertTrue(String(b.body, Charsets.UTF_8).startsWith("{\"lines\":["))
        } finally {
            m.close()
        }
    }

    fun testConnectionsPastTheCapAreClosedAndTheMonitorServesAgain() {
        val m = start()
        try {
            val idle = ArrayList<Socket>()
            for (i in 0 until Monitor.MAX_CONNECTIONS + 8) {
                val s = Socket()
                s.connect(InetSocketAddress("127.0.0.1", m.port), 2000)
                idle.add(s)
            }
            Thread.sleep(200)
            var closed = 0
            for (s in idle) {
                s.soTimeout = 50
                try {
                    if (s.getInputStream().read() < 0) closed++
                } catch (e: SocketTimeoutException) {
                } catch (e: java.io.IOException) {
                    closed++
                }
            }
            assertEquals(8, closed)
            for (s in idle) s.close()
            val deadline = System.currentTimeMillis() + 3000
            while (true) {
                val got = String(exchangeRaw(m.port, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n".toByteArray(), 1000), Charsets.ISO_8859_1)
                if (got.startsWith("HTTP/1.1 200 ")) break
                if (System.currentTimeMillis() > deadline) fail("the monitor does not serve again")
                Thread.sleep(20)
            }
        } finally {
            m.close()
        }
    }

    fun testAnOccupiedPortIsAnErrorNamingTheFlag() {
        val m = start()
        try {
            val e = try {
                Monitor.start("127.0.0.1", m.port, MonitorSource()).close()
                null
            } catch (e: java.io.IOException) {
                e
            }
            assertTrue(e != null && e.message!!.contains("--monitor-port"), "$e")
        } finally {
            m.close()
        }
    }

    fun testTailFileOfAMissingFileIsEmpty() {
        assertEquals(emptyList(), Monitor.tailFile("/nonexistent/none.log", 5))
    }

    // A burst of malformed requests must not hold every slot: the well-formed request after it is answered.
    fun testMalformedRequestsInABurstDoNotLockOutTheNext() {
        val m = start()
        try {
            val raws = listOf(
                "GET /nope HTTP/x\r\n\u008aD\u000bU\r\n\r\n",
                "GET /" + "a".repeat(70000) + " HTTP/1.1\r\n\r\n",
                "POST /status HTTP/1.1\r\nContent-Length: -1\r\n\r\nabc",
                "GET /status HTTP/1.1\r\nX: " + "y".repeat(70000) + "\r\n\r\n"
            )
            for (raw in raws) {
                for (i in 0 until Monitor.MAX_CONNECTIONS + 8) {
                    val got = String(exchangeRaw(m.port, raw.toByteArray(Charsets.ISO_8859_1), 3000), Charsets.ISO_8859_1)
                    assertTrue(got.startsWith("HTTP/1.1 4"), "${raw.take(40)} answered ${got.take(60)}")
                }
                val got = String(exchangeRaw(m.port, "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".toByteArray(), 3000), Charsets.ISO_8859_1)
                assertTrue(got.startsWith("HTTP/1.1 200 "), "after ${raw.take(40)}: ${got.take(60)}")
            }
        } finally {
            m.close()
        }
    }
}
