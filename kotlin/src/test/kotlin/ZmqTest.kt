package zmqnode.test

import zmqnode.zmq.Context
import zmqnode.zmq.Curve
import zmqnode.zmq.MonitorEvent
import zmqnode.zmq.Option
import zmqnode.zmq.Poller
import zmqnode.zmq.Reopen
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.Z85
import zmqnode.zmq.Zmq
import zmqnode.zmq.ZmqClosedException
import zmqnode.zmq.ZmqException
import java.util.concurrent.ArrayBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

// go/zmq's tests (zmq_test.go, recv_large_test.go, reopen_test.go).
class ZmqTest {
    private fun withContext(body: (Context, (SocketType) -> Socket) -> Unit) {
        val ctx = Context()
        val sockets = ArrayList<Socket>()
        try {
            body(ctx) { t ->
                val s = ctx.socket(t)
                s.setInt(Option.LINGER, 0)
                s.setMillis(Option.RCVTIMEO, 2000)
                sockets.add(s)
                s
            }
        } finally {
            sockets.forEach { it.close() }
            ctx.term()
        }
    }

    fun testRouterDealerMultipartKeepsEmptyFramesAndRoutingId() = withContext { _, socket ->
        val router = socket(SocketType.ROUTER)
        router.bind("tcp://127.0.0.1:*")
        val endpoint = router.lastEndpoint
        assertTrue(endpoint.startsWith("tcp://127.0.0.1:") && !endpoint.endsWith(":*"), endpoint)
        val dealer = socket(SocketType.DEALER)
        dealer.setBytes(Option.ROUTING_ID, "peer-1".toByteArray(Charsets.UTF_8))
        dealer.connect(endpoint)
        val big = ByteArray(100000) { 7 }
        val sent = listOf(ByteArray(0), "{\"v\":1}".toByteArray(Charsets.UTF_8), big, ByteArray(0))
        dealer.send(sent)
        val got = router.recv()
        val want = listOf("peer-1".toByteArray(Charsets.UTF_8)) + sent
        assertEquals(want.size, got.size)
        for (i in want.indices) assertTrue(want[i].contentEquals(got[i]), "frame $i differs")
        router.send(listOf("peer-1".toByteArray(Charsets.UTF_8), "reply".toByteArray(Charsets.UTF_8)), Zmq.DONTWAIT)
        val back = dealer.recv()
        assertEquals(1, back.size)
        assertEquals("reply", String(back[0], Charsets.UTF_8))
    }

    fun testSignedBytesSurviveTheRoundTrip() = withContext { _, socket ->
        val pull = socket(SocketType.PULL)
        pull.bind("inproc://bytes")
        val push = socket(SocketType.PUSH)
        push.connect("inproc://bytes")
        val all = ByteArray(256) { it.toByte() }
        push.send(all)
        assertTrue(all.contentEquals(pull.recv()[0]))
    }

    fun testRecvDontWaitWithNothingQueuedIsAgain() = withContext { _, socket ->
        val pull = socket(SocketType.PULL)
        pull.bind("inproc://again")
        val e = assertFailsWith<ZmqException> { pull.recv(Zmq.DONTWAIT) }
        assertTrue(e.isAgain && !e.isTerm, e.toString())
        assertNull(pull.tryRecv())
    }

    fun testRecvTimeoutIsAgain() = withContext { _, socket ->
        val pull = socket(SocketType.PULL)
        pull.setMillis(Option.RCVTIMEO, 20)
        pull.bind("inproc://timeout")
        val start = System.nanoTime()
        val e = assertFailsWith<ZmqException> { pull.recv() }
        assertTrue(e.isAgain, e.toString())
        assertTrue(System.nanoTime() - start < 1_000_000_000L, "RCVTIMEO not honoured")
        assertNull(pull.tryRecv(0))
    }

    fun testShutdownWakesABlockedRecvWithTerm() {
        val ctx = Context()
        val pull = ctx.socket(SocketType.PULL)
        pull.setInt(Option.LINGER, 0)
        pull.bind("inproc://term")
        val done = ArrayBlockingQueue<Any>(1)
        // The socket is handed to the thread by Thread.start (happens-before) and never touched here again.
        val t = Thread {
            val r: Any = try {
                pull.recv()
            } catch (e: Throwable) {
                e
            }
            pull.close()
            done.put(r)
        }
        t.start()
        Thread.sleep(20)
        ctx.shutdown()
        val r = done.poll(5, TimeUnit.SECONDS) ?: fail("recv still blocked after shutdown")
        assertTrue(r is ZmqException && r.isTerm && !r.isAgain, r.toString())
        ctx.term()
        ctx.term() // twice: a no-op
        assertFailsWith<ZmqClosedException> { ctx.socket(SocketType.PUSH) }
    }

    fun testImmediateDealerWithoutPeerSendsAgain() = withContext { _, socket ->
        val d = socket(SocketType.DEALER)
        d.setInt(Option.IMMEDIATE, 1)
        d.connect("tcp://127.0.0.1:1") // nothing listens there
        val e = assertFailsWith<ZmqException> { d.send(listOf("x".toByteArray(Charsets.UTF_8)), Zmq.DONTWAIT) }
        assertTrue(e.isAgain, e.toString())
        assertFalse(d.trySend(listOf("x".toByteArray(Charsets.UTF_8))))
    }

    fun testRouterMandatoryUnknownPeerIsHostUnreachable() = withContext { _, socket ->
        val r = socket(SocketType.ROUTER)
        r.setInt(Option.ROUTER_MANDATORY, 1)
        r.bind("inproc://mandatory")
        val e = assertFailsWith<ZmqException> {
            r.send(listOf("nobody".toByteArray(Charsets.UTF_8), "x".toByteArray(Charsets.UTF_8)), Zmq.DONTWAIT)
        }
        assertTrue(e.isHostUnreach, e.toString())
        // trySend answers false only for EAGAIN: EHOSTUNREACH still throws.
        assertFailsWith<ZmqException> { r.trySend(listOf("nobody".toByteArray(Charsets.UTF_8), ByteArray(1))) }
    }

    fun testPubSubFiltersByTopic() = withContext { _, socket ->
        val pub = socket(SocketType.PUB)
        pub.bind("inproc://pubsub")
        val sub = socket(SocketType.SUB)
        sub.setBytes(Option.SUBSCRIBE, "raft".toByteArray(Charsets.UTF_8))
        sub.connect("inproc://pubsub")
        val deadline = System.nanoTime() + 2_000_000_000L
        while (System.nanoTime() < deadline) { // a late subscriber misses early messages
            pub.trySend(listOf("zstatus".toByteArray(Charsets.UTF_8), "no".toByteArray(Charsets.UTF_8)))
            pub.trySend(listOf("raft".toByteArray(Charsets.UTF_8), "yes".toByteArray(Charsets.UTF_8)))
            val msg = sub.tryRecv()
            if (msg != null) {
                assertEquals("raft", String(msg[0], Charsets.UTF_8))
                assertEquals("yes", String(msg[1], Charsets.UTF_8))
                return@withContext
            }
            Thread.sleep(5)
        }
        fail("no message through the subscription")
    }

    fun testPollerReportsReadableSocket() = withContext { _, socket ->
        val a = socket(SocketType.PULL)
        a.bind("inproc://poll-a")
        val b = socket(SocketType.PULL)
        b.bind("inproc://poll-b")
        val push = socket(SocketType.PUSH)
        push.connect("inproc://poll-b")
        val p = Poller()
        assertEquals(0, p.add(a, Zmq.POLLIN))
        assertEquals(1, p.add(b, Zmq.POLLIN))
        var ev = p.poll(0)
        assertEquals(listOf(0, 0), ev.toList())
        push.send("hi".toByteArray(Charsets.UTF_8))
        ev = p.poll(2000)
        assertTrue(ev[0] == 0 && ev[1] and Zmq.POLLIN != 0, ev.toList().toString())
        b.recv()
        val start = System.nanoTime()
        ev = p.poll(30)
        val took = (System.nanoTime() - start) / 1_000_000
        assertTrue(ev[0] or ev[1] == 0 && took >= 25, "timed poll ${ev.toList()} after $took ms")
        p.close()
    }

    fun testOptionsReadBack() = withContext { _, socket ->
        val s = socket(SocketType.DEALER)
        val cases = listOf(Option.LINGER to 200, Option.SNDHWM to 64, Option.RCVHWM to 100, Option.IMMEDIATE to 1,
            Option.RECONNECT_IVL to 100, Option.RECONNECT_IVL_MAX to 500, Option.TCP_KEEPALIVE to 1,
            Option.TCP_KEEPALIVE_IDLE to 30, Option.SNDTIMEO to 50, Option.HEARTBEAT_IVL to 1000,
            Option.HEARTBEAT_TIMEOUT to 3000, Option.ROUTER_MANDATORY to 1)
        for ((opt, value) in cases) {
            if (opt == Option.ROUTER_MANDATORY) continue // write-only on a DEALER
            s.setInt(opt, value)
            assertEquals(value, s.getInt(opt), "option $opt")
        }
        s.setLong(Option.MAXMSGSIZE, 5L shl 30)
        assertEquals(5L shl 30, s.getLong(Option.MAXMSGSIZE))
        s.setInt(Option.MAXMSGSIZE, -1)
        assertEquals(-1L, s.getLong(Option.MAXMSGSIZE))
        assertEquals(Zmq.MECHANISM_NULL, s.mechanism)
        s.setString(Option.ZAP_DOMAIN, "zmqnode.peers")
        assertEquals("zmqnode.peers", s.getString(Option.ZAP_DOMAIN))
        s.setBytes(Option.ROUTING_ID, byteArrayOf(0, -1, 65))
        assertTrue(byteArrayOf(0, -1, 65).contentEquals(s.getBytes(Option.ROUTING_ID)))
        val e = assertFailsWith<ZmqException> { s.setInt(Option.SUBSCRIBE, 1) }
        assertEquals(Zmq.EINVAL, e.errno)
    }

    fun testZ85AndCurveKeys() {
        assertTrue(Zmq.has("curve"), "libzmq built without CURVE")
        assertTrue(Zmq.version()[0] >= 4)
        // ZeroMQ RFC 32's test vector.
        val raw = byteArrayOf(0x86.toByte(), 0x4F, 0xD2.toByte(), 0x6F, 0xB5.toByte(), 0x59, 0xF7.toByte(), 0x5B)
        assertEquals("HelloWorld", Z85.encode(raw))
        assertTrue(raw.contentEquals(Z85.decode("HelloWorld")))
        assertFailsWith<IllegalArgumentException> { Z85.decode("Hell") }
        assertFailsWith<IllegalArgumentException> { Z85.decode("Hell\u00e9") }
        assertFailsWith<IllegalArgumentException> { Z85.encode(ByteArray(3)) }
        val kp = Curve.keypair()
        assertEquals(40, kp.public.length)
        assertEquals(40, kp.secret.length)
        assertEquals(kp.public, Curve.publicOf(kp.secret))
        assertEquals(32, Z85.decode(kp.public).size)
        assertEquals(kp.public, Z85.encode(Z85.decode(kp.public)))
    }

    fun testClosedSocketIsClosedError() = withContext { ctx, _ ->
        val s = ctx.socket(SocketType.PUSH)
        s.close()
        assertFailsWith<ZmqClosedException> { s.send(byteArrayOf(1)) }
        s.close() // twice: a no-op
        assertTrue(s.isClosed)
    }

    fun testMonitorReportsConnectAndDisconnect() = withContext { ctx, socket ->
        val server = socket(SocketType.ROUTER) // closed early below; closing twice is a no-op
        server.bind("tcp://127.0.0.1:*")
        val endpoint = server.lastEndpoint
        val client = socket(SocketType.DEALER)
        val mon = ctx.monitor(client, Zmq.EVENT_CONNECTED or Zmq.EVENT_DISCONNECTED)
        try {
            mon.setMillis(Option.RCVTIMEO, 3000)
            client.connect(endpoint)
            fun expect(want: Int) {
                while (true) {
                    val ev = MonitorEvent.parse(mon.recv())
                    if (ev.event == want) {
                        assertEquals(endpoint, ev.endpoint)
                        return
                    }
                }
            }
            expect(Zmq.EVENT_CONNECTED)
            server.close()
            expect(Zmq.EVENT_DISCONNECTED)
            client.stopMonitor()
        } finally {
            mon.close()
        }
    }

    fun testMonitorEventParsesLittleEndianUnsigned() {
        val ev = MonitorEvent.parse(listOf(byteArrayOf(0x00, 0x40, 0x90.toByte(), 0x01, 0x00, 0x80.toByte()),
            "tcp://x:1".toByteArray(Charsets.UTF_8)))
        assertEquals(Zmq.EVENT_HANDSHAKE_FAILED_AUTH, ev.event)
        assertEquals(0x80000190L, ev.value)
        assertFailsWith<IllegalArgumentException> { MonitorEvent.parse(listOf(ByteArray(6))) }
    }

    // Large frames are copied out of libzmq in steps while their pages are
    // released: what arrives must still be every byte sent, whatever the
    // size's alignment, over tcp (libzmq's decoder buffer) and inproc (the
    // sender's buffer).
    fun testLargeFramesArriveByteForByte() {
        val sizes = listOf((1 shl 20) - 1, 1 shl 20, (4 shl 20) + 1, (9 shl 20) + 4093)
        for (endpoint in listOf("tcp://127.0.0.1:*", "inproc://large")) withContext { _, socket ->
            val pull = socket(SocketType.PULL)
            pull.bind(endpoint)
            val push = socket(SocketType.PUSH)
            push.connect(pull.lastEndpoint)
            for (n in sizes) {
                val frames = listOf("header".toByteArray(Charsets.UTF_8), pattern(n, n), pattern(n / 3, 7))
                push.send(frames)
                val got = pull.recv()
                assertEquals(frames.size, got.size)
                for (i in frames.indices) {
                    assertTrue(frames[i].contentEquals(got[i]), "$endpoint $n bytes: frame $i differs")
                }
            }
        }
    }

    private fun pattern(n: Int, seed: Int): ByteArray = ByteArray(n) { i -> ((i * 31) xor seed xor (i ushr 12)).toByte() }

    // reopen_test.go
    fun testReopenBackoffDoublesUpToTheMaximum() {
        var backoff = 0L
        val got = ArrayList<Long>()
        repeat(6) {
            val step = Reopen.next(backoff)
            got.add(step.delayMs)
            backoff = step.nextBackoffMs
        }
        assertEquals(listOf(200L, 400L, 800L, 1600L, 2000L, 2000L), got)
    }

    fun testRefusalReasonNamesTheZapStatus() {
        assertEquals("ZAP status 400", Reopen.refusalReason(Zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400))
        assertEquals("handshake error 0x10000011", Reopen.refusalReason(Zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, 0x10000011))
    }

    fun testRefusedMessage() {
        val want = "b refused our Raft DEALER connection (ZAP status 400; our key is not on its allow-list yet?): " +
            "reopening it in 0.2 s, then at most every 2 s until it gets through"
        assertEquals(want, Reopen.refusedMessage("b", "Raft DEALER connection", "ZAP status 400", Reopen.REOPEN_FIRST_MS))
        val old = java.util.Locale.getDefault()
        try { // never a decimal comma
            java.util.Locale.setDefault(java.util.Locale.GERMANY)
            assertEquals(want, Reopen.refusedMessage("b", "Raft DEALER connection", "ZAP status 400", 200))
        } finally {
            java.util.Locale.setDefault(old)
        }
    }

    fun testReopeningBookkeeping() {
        val warned = ArrayList<String>()
        val infos = ArrayList<String>()
        val counted = ArrayList<String>()
        val r = zmqnode.zmq.Reopening<String>({ warned.add(it) }, { infos.add(it) }, { counted.add(it) },
            "peer_handshake_refused", "peer_link_reopened")
        assertTrue(r.refused("b", "b", "Raft DEALER", Zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400, 1000))
        assertFalse(r.refused("b", "b", "Raft DEALER", Zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400, 1000))
        assertEquals(1, warned.size)
        assertTrue(warned[0].contains("reopening it in 0.2 s"), warned[0])
        assertEquals(1400L, r.nextDue()) // the second refusal's delay: 0.4 s
        assertFalse(r.anyDue(1399))
        assertEquals(listOf("b"), r.takeDue(1400))
        assertEquals(listOf<String>(), r.takeDue(5000))
        r.gotThrough("b", "b", "Raft DEALER")
        assertEquals(listOf("b admitted our Raft DEALER connection after 1 reopening(s)"), infos)
        assertEquals(listOf("peer_handshake_refused", "peer_handshake_refused", "peer_link_reopened"), counted)
        assertTrue(r.refused("b", "b", "Raft DEALER", Zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400, 6000))
        assertEquals(6200L, r.nextDue()) // backoff started over
        r.forget("b")
        assertNull(r.nextDue())
    }
}
