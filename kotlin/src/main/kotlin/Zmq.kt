// Package zmqnode.zmq: a small, explicit JNA binding to libzmq 4.3 (the
// port of go/zmq): contexts, sockets, multipart send and receive, the
// socket options zmqnode sets, a poller (ZmqPoll.kt), socket monitors,
// Z85 and CURVE keys (ZmqKeys.kt), and the rules for reopening links
// refused by ZAP (ZmqReopen.kt). It binds only what the node uses, so every
// call can be read next to the libzmq man page it wraps.
//
// THREADS (the rule for the whole Kotlin node)
//
// A Context is safe for concurrent use. A Socket is not: libzmq sockets
// must not be used from two threads at once, so each Socket belongs to ONE
// thread at a time. The Kotlin node gives every socket loop a dedicated
// platform Thread (where Go had one goroutine per loop): the thread that
// makes a socket uses it, polls it and closes it. A socket may be handed to
// another thread only through a happens-before edge (making it before
// Thread.start(), or a BlockingQueue put/take) and the giver never touches
// it again. Never share a socket through an ExecutorService pool whose
// tasks may overlap, and never close a socket from another thread to wake
// its owner: Context.shutdown() (from any thread) makes every blocked call
// fail with ETERM, and a loop that must be woken otherwise polls with a
// timeout or an inproc PAIR "wake" socket. Thread.interrupt() does not wake
// a thread blocked in libzmq. Poller, and a Socket's reused zmq_msg_t
// buffers, belong to the socket's thread too.
//
// MEMORY
//
// Sending copies each frame once, into a zmq_msg_t libzmq owns
// (zmq_msg_init_size + write + zmq_msg_send: no JNA temporary array, no
// copy back). Receiving copies each frame once, out of a zmq_msg_t, into a
// ByteArray the caller owns; a large frame's native pages are released as
// they are copied (madvise), so a received dataset costs about one copy.
// Each socket keeps two 64-byte zmq_msg_t blocks (JNA Memory) reused for
// every frame and freed by close(). A frame cannot exceed a JVM array
// (2 GiB - 1): set MAXMSGSIZE below that on sockets that may receive one.
//
// ERRORS
//
// A failed call throws ZmqException carrying the errno (isAgain: nothing to
// receive or a full queue in a DONTWAIT call or after RCVTIMEO/SNDTIMEO;
// isTerm: the context was shut down, close the socket; isHostUnreach:
// ROUTER_MANDATORY and an unknown routing id). A closed Socket or Context
// throws ZmqClosedException. tryRecv/trySend answer null/false instead of
// throwing for EAGAIN: the hot paths' "nothing now" is not an exception.
// EINTR is retried inside send, recv and poll.
package zmqnode.zmq

import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.IntByReference
import java.io.Closeable
import java.io.IOException
import java.util.concurrent.atomic.AtomicLong

/** Constants of zmq.h that zmqnode uses (flags, poll events, monitor events, errnos, mechanisms). */
object Zmq {
    // Send/recv flags.
    const val DONTWAIT = 1
    const val SNDMORE = 2

    // Poll events (Poller).
    const val POLLIN = 1
    const val POLLOUT = 2
    const val POLLERR = 4

    // Monitor events (zmq_socket_monitor(3)).
    const val EVENT_CONNECTED = 0x0001
    const val EVENT_CONNECT_DELAYED = 0x0002
    const val EVENT_CONNECT_RETRIED = 0x0004
    const val EVENT_LISTENING = 0x0008
    const val EVENT_BIND_FAILED = 0x0010
    const val EVENT_ACCEPTED = 0x0020
    const val EVENT_ACCEPT_FAILED = 0x0040
    const val EVENT_CLOSED = 0x0080
    const val EVENT_CLOSE_FAILED = 0x0100
    const val EVENT_DISCONNECTED = 0x0200
    const val EVENT_MONITOR_STOPPED = 0x0400
    const val EVENT_HANDSHAKE_FAILED_NO_DETAIL = 0x0800
    const val EVENT_HANDSHAKE_SUCCEEDED = 0x1000
    const val EVENT_HANDSHAKE_FAILED_PROTOCOL = 0x2000
    const val EVENT_HANDSHAKE_FAILED_AUTH = 0x4000
    const val EVENT_ALL = 0xFFFF

    // Values of the MECHANISM option.
    const val MECHANISM_NULL = 0
    const val MECHANISM_PLAIN = 1
    const val MECHANISM_CURVE = 2

    // Context options (zmq_ctx_set).
    const val CTX_IO_THREADS = 1
    const val CTX_MAX_SOCKETS = 2
    const val CTX_BLOCKY = 70

    // errno values worth telling apart (Linux, and libzmq's own).
    const val EINTR = 4
    const val EAGAIN = 11
    const val EINVAL = 22
    const val EADDRINUSE = 98
    const val EHOSTUNREACH = 113
    private const val HAUSNUMERO = 156384712
    const val EFSM = HAUSNUMERO + 51
    const val ENOCOMPATPROTO = HAUSNUMERO + 52
    const val ETERM = HAUSNUMERO + 53
    const val EMTHREAD = HAUSNUMERO + 54

    /** libzmq's version: major, minor, patch. */
    fun version(): IntArray {
        val a = IntByReference()
        val b = IntByReference()
        val c = IntByReference()
        Native0.zmq.zmq_version(a, b, c)
        return intArrayOf(a.value, b.value, c.value)
    }

    /** Whether libzmq was built with a capability, e.g. "curve". */
    fun has(capability: String): Boolean = Native0.zmq.zmq_has(capability) != 0

    /** libzmq's text for an errno. */
    fun strerror(errno: Int): String = Native0.zmq.zmq_strerror(errno)

    /** The errno of this thread's last libzmq call (JNA saves it right after each call). */
    internal fun lastErrno(): Int {
        val e = Native.getLastError()
        return if (e != 0) e else Native0.zmq.zmq_errno()
    }

    internal fun error(op: String, errno: Int = lastErrno(), detail: String = ""): ZmqException =
        ZmqException(op, errno, detail)
}

/** A failed libzmq call: which operation and the errno it set. */
open class ZmqException(val op: String, val errno: Int, detail: String = "", message: String? = null) :
    IOException(message ?: ("zmq $op" + (if (detail.length == 0) "" else " $detail") + ": " + safeStrerror(errno))) {
    /** Would block: DONTWAIT, or RCVTIMEO/SNDTIMEO expired, or IMMEDIATE with no peer. */
    val isAgain: Boolean get() = errno == Zmq.EAGAIN
    /** The context was shut down or terminated: close the socket. */
    val isTerm: Boolean get() = errno == Zmq.ETERM
    /** ROUTER_MANDATORY: the routing id is not connected. */
    val isHostUnreach: Boolean get() = errno == Zmq.EHOSTUNREACH

    private companion object {
        fun safeStrerror(errno: Int): String = try {
            Zmq.strerror(errno)
        } catch (e: Throwable) {
            "errno $errno"
        }
    }
}

/** The Socket or Context was already closed on the Kotlin side. */
class ZmqClosedException(op: String) : ZmqException(op, 0, message = "zmq $op: socket or context closed")

/** Socket types used by zmqnode (and PAIR, for monitors). */
enum class SocketType(val code: Int) {
    PAIR(0), PUB(1), SUB(2), REQ(3), REP(4), DEALER(5), ROUTER(6), PULL(7), PUSH(8), XPUB(9), XSUB(10)
}

/** Socket options zmqnode sets or reads (zmq_setsockopt(3)), with their C type. */
enum class Option(val code: Int, val kind: Kind) {
    ROUTING_ID(5, Kind.BYTES),
    SUBSCRIBE(6, Kind.BYTES),
    UNSUBSCRIBE(7, Kind.BYTES),
    SNDBUF(11, Kind.INT),
    RCVBUF(12, Kind.INT),
    RCVMORE(13, Kind.INT), // read only
    EVENTS(15, Kind.INT), // read only: POLLIN | POLLOUT
    TYPE(16, Kind.INT), // read only
    LINGER(17, Kind.INT),
    RECONNECT_IVL(18, Kind.INT),
    BACKLOG(19, Kind.INT),
    RECONNECT_IVL_MAX(21, Kind.INT),
    MAXMSGSIZE(22, Kind.INT64),
    SNDHWM(23, Kind.INT),
    RCVHWM(24, Kind.INT),
    RCVTIMEO(27, Kind.INT),
    SNDTIMEO(28, Kind.INT),
    LAST_ENDPOINT(32, Kind.STRING), // read only
    ROUTER_MANDATORY(33, Kind.INT),
    TCP_KEEPALIVE(34, Kind.INT),
    TCP_KEEPALIVE_CNT(35, Kind.INT),
    TCP_KEEPALIVE_IDLE(36, Kind.INT),
    TCP_KEEPALIVE_INTVL(37, Kind.INT),
    IMMEDIATE(39, Kind.INT),
    IPV6(42, Kind.INT),
    MECHANISM(43, Kind.INT), // read only: Zmq.MECHANISM_*
    CURVE_SERVER(47, Kind.INT),
    CURVE_PUBLICKEY(48, Kind.KEY),
    CURVE_SECRETKEY(49, Kind.KEY),
    CURVE_SERVERKEY(50, Kind.KEY),
    CONFLATE(54, Kind.INT),
    ZAP_DOMAIN(55, Kind.STRING),
    ROUTER_HANDOVER(56, Kind.INT),
    HANDSHAKE_IVL(66, Kind.INT),
    HEARTBEAT_IVL(75, Kind.INT),
    HEARTBEAT_TTL(76, Kind.INT),
    HEARTBEAT_TIMEOUT(77, Kind.INT),
    CONNECT_TIMEOUT(79, Kind.INT);

    enum class Kind { INT, INT64, BYTES, STRING, KEY }
}

/**
 * Owns libzmq's I/O threads and every socket made from it (zmq_ctx_new).
 * Safe for concurrent use.
 */
class Context : Closeable {
    @Volatile
    private var p: Pointer? = Native0.zmq.zmq_ctx_new() ?: throw Zmq.error("ctx_new")

    internal fun ptr(op: String): Pointer = p ?: throw ZmqClosedException(op)

    /** zmq_ctx_set, e.g. Zmq.CTX_IO_THREADS before the first socket. */
    fun set(option: Int, value: Int) {
        if (Native0.zmq.zmq_ctx_set(ptr("ctx_set"), option, value) != 0) throw Zmq.error("ctx_set")
    }

    /** A socket of type t (zmq_socket). It belongs to the calling thread (see the file header). */
    fun socket(t: SocketType): Socket {
        val s = Native0.zmq.zmq_socket(ptr("socket"), t.code) ?: throw Zmq.error("socket")
        return Socket(this, s, t)
    }

    /**
     * Makes every blocking call on this context's sockets fail with ETERM
     * (zmq_ctx_shutdown); sockets must still be closed by their threads.
     * Safe from any thread.
     */
    fun shutdown() {
        if (Native0.zmq.zmq_ctx_shutdown(ptr("ctx_shutdown")) != 0) throw Zmq.error("ctx_shutdown")
    }

    /**
     * Destroys the context (zmq_ctx_term): blocks until every socket made
     * from it is closed and has delivered within its LINGER. libzmq's
     * default LINGER is -1 (forever): set LINGER on every socket or term
     * can hang on a peer that is gone. Terminating twice is a no-op.
     */
    fun term() {
        val ctx = p ?: return
        while (true) {
            if (Native0.zmq.zmq_ctx_term(ctx) == 0) {
                p = null
                return
            }
            val e = Zmq.lastErrno()
            if (e == Zmq.EINTR) continue
            throw Zmq.error("ctx_term", e)
        }
    }

    override fun close() = term()

    /**
     * Starts reporting s's events (a mask of Zmq.EVENT_*) to a new PAIR
     * socket, returned connected and ready to recv (see MonitorEvent.parse).
     * Attach it before s connects: an event before the monitor exists is
     * lost. Stop with s.stopMonitor() before closing s; close the PAIR
     * socket yourself. Both belong to s's thread.
     */
    fun monitor(s: Socket, events: Int): Socket {
        val endpoint = "inproc://zmqkt.monitor." + monitorSeq.incrementAndGet()
        if (Native0.zmq.zmq_socket_monitor(s.ptr("socket_monitor"), endpoint, events) != 0) {
            throw Zmq.error("socket_monitor")
        }
        val pair = socket(SocketType.PAIR)
        try {
            pair.setInt(Option.LINGER, 0)
            pair.connect(endpoint)
        } catch (e: ZmqException) {
            pair.close()
            throw e
        }
        return pair
    }

    private companion object {
        val monitorSeq = AtomicLong()
    }
}

/** One monitor message: the event (Zmq.EVENT_*), its value (an fd, errno, ZAP status or interval) and the endpoint. */
class MonitorEvent(val event: Int, val value: Long, val endpoint: String) {
    override fun toString() = "MonitorEvent(0x${Integer.toHexString(event)}, $value, $endpoint)"

    companion object {
        /**
         * Reads a monitor message (2 frames: 6 bytes of event u16 + value
         * u32 in host byte order, little-endian here; then the endpoint).
         */
        fun parse(frames: List<ByteArray>): MonitorEvent {
            if (frames.size != 2 || frames[0].size != 6) {
                throw IllegalArgumentException("zmq monitor: not an event message (${frames.size} frames)")
            }
            val b = frames[0]
            val ev = (b[0].toInt() and 0xff) or ((b[1].toInt() and 0xff) shl 8)
            val value = (b[2].toLong() and 0xff) or ((b[3].toLong() and 0xff) shl 8) or
                ((b[4].toLong() and 0xff) shl 16) or ((b[5].toLong() and 0xff) shl 24)
            return MonitorEvent(ev, value, String(frames[1], Charsets.UTF_8))
        }
    }
}

/** One libzmq socket. Not safe for concurrent use: it belongs to one thread (see the file header). */
class Socket internal constructor(val context: Context, ptr: Pointer, val type: SocketType) : Closeable {
    private var p: Pointer? = ptr
    // zmq_msg_t blocks (64 bytes, 8-aligned: malloc's alignment), reused.
    private var sendMsg: Memory? = Memory(MSG_SIZE)
    private var recvMsg: Memory? = Memory(MSG_SIZE)
    private var recvMore = false
    private val lib = Native0.zmq
    private val fast = ZmqFast

    internal fun ptr(op: String): Pointer = p ?: throw ZmqClosedException(op)

    val isClosed: Boolean get() = p == null

    /** Closes the socket (zmq_close); what it queued is kept for at most LINGER. Closing twice is a no-op. */
    override fun close() {
        val s = p ?: return
        p = null
        val rc = lib.zmq_close(s)
        val e = if (rc != 0) Zmq.lastErrno() else 0
        sendMsg?.close()
        recvMsg?.close()
        sendMsg = null
        recvMsg = null
        if (rc != 0) throw Zmq.error("close", e)
    }

    /** zmq_bind: e.g. "tcp://127.0.0.1:9000", or "tcp://127.0.0.1:*" (then lastEndpoint says which port). */
    fun bind(endpoint: String) {
        if (lib.zmq_bind(ptr("bind"), endpoint) != 0) throw Zmq.error("bind", detail = endpoint)
    }

    /** zmq_connect: the connection is made, and remade, in the background. */
    fun connect(endpoint: String) {
        if (lib.zmq_connect(ptr("connect"), endpoint) != 0) throw Zmq.error("connect", detail = endpoint)
    }

    /** zmq_unbind (for a wildcard bind, pass lastEndpoint). */
    fun unbind(endpoint: String) {
        if (lib.zmq_unbind(ptr("unbind"), endpoint) != 0) throw Zmq.error("unbind", detail = endpoint)
    }

    /** zmq_disconnect. */
    fun disconnect(endpoint: String) {
        if (lib.zmq_disconnect(ptr("disconnect"), endpoint) != 0) throw Zmq.error("disconnect", detail = endpoint)
    }

    /** Stops this socket's monitor (zmq_socket_monitor with no endpoint). */
    fun stopMonitor() {
        if (lib.zmq_socket_monitor(ptr("socket_monitor"), null, 0) != 0) throw Zmq.error("socket_monitor")
    }

    // ------------------------------------------------------------------
    // Send

    /**
     * Sends one message of one or more frames, atomically: the peer gets all
     * of them or none. With Zmq.DONTWAIT a full queue (or, with IMMEDIATE,
     * no connected peer) throws ZmqException(isAgain) and nothing was sent;
     * once the first frame is accepted libzmq accepts the rest (the
     * high-water mark counts whole messages).
     */
    fun send(frames: List<ByteArray>, flags: Int = 0) {
        if (!sendFrames(frames, flags, false)) throw Zmq.error("send", Zmq.EAGAIN)
    }

    /** send for a one-frame message. */
    fun send(frame: ByteArray, flags: Int = 0) = send(listOf(frame), flags)

    /** send with DONTWAIT (unless flags say otherwise): false, nothing sent, instead of EAGAIN. */
    fun trySend(frames: List<ByteArray>, flags: Int = Zmq.DONTWAIT): Boolean = sendFrames(frames, flags, true)

    private fun sendFrames(frames: List<ByteArray>, flags: Int, soft: Boolean): Boolean {
        val s = ptr("send")
        if (frames.isEmpty()) throw IllegalArgumentException("zmq send: a message needs at least one frame")
        val last = frames.size - 1
        for (i in 0..last) {
            val fl = if (i < last) flags or Zmq.SNDMORE else flags
            if (!sendFrame(s, frames[i], fl, soft && i == 0)) return false
        }
        return true
    }

    private fun sendFrame(s: Pointer, f: ByteArray, flags: Int, soft: Boolean): Boolean {
        val msg = sendMsg!!
        if (fast.zmq_msg_init_size(msg, f.size.toLong()) != 0) throw Zmq.error("msg_init_size")
        if (f.isNotEmpty()) fast.zmq_msg_data(msg)!!.write(0, f, 0, f.size)
        while (true) {
            if (fast.zmq_msg_send(msg, s, flags) >= 0) return true // libzmq owns the data now
            val e = Zmq.lastErrno()
            if (e == Zmq.EINTR) continue
            fast.zmq_msg_close(msg)
            if (soft && e == Zmq.EAGAIN) return false
            throw Zmq.error("send", e)
        }
    }

    // ------------------------------------------------------------------
    // Receive

    /**
     * Receives one whole message (every frame); the frames are copies the
     * caller owns. With Zmq.DONTWAIT and nothing waiting, or after
     * RCVTIMEO, throws ZmqException(isAgain).
     */
    fun recv(flags: Int = 0): List<ByteArray> =
        recvFrames(flags, false) ?: throw Zmq.error("recv", Zmq.EAGAIN)

    /** recv with DONTWAIT (unless flags say otherwise): null instead of EAGAIN (also after RCVTIMEO). */
    fun tryRecv(flags: Int = Zmq.DONTWAIT): List<ByteArray>? = recvFrames(flags, true)

    private fun recvFrames(flags: Int, soft: Boolean): List<ByteArray>? {
        val s = ptr("recv")
        val first = recvFrame(s, flags, soft) ?: return null
        if (!recvMore) return listOf(first)
        val frames = ArrayList<ByteArray>(4)
        frames.add(first)
        while (recvMore) {
            try {
                frames.add(recvFrame(s, flags, false)!!)
            } catch (e: ZmqException) {
                // libzmq delivers a message's frames together; a failure in
                // the middle means the context is going away.
                throw ZmqException("recv", e.errno, "(message cut after ${frames.size} frames)")
            }
        }
        return frames
    }

    private fun recvFrame(s: Pointer, flags: Int, soft: Boolean): ByteArray? {
        val msg = recvMsg!!
        while (true) {
            fast.zmq_msg_init(msg)
            if (fast.zmq_msg_recv(msg, s, flags) < 0) {
                val e = Zmq.lastErrno()
                fast.zmq_msg_close(msg)
                if (e == Zmq.EINTR) continue
                if (soft && e == Zmq.EAGAIN) return null
                throw Zmq.error("recv", e)
            }
            try {
                val n = fast.zmq_msg_size(msg)
                recvMore = fast.zmq_msg_more(msg) != 0
                if (n > Int.MAX_VALUE - 8) {
                    throw ZmqException("recv", Zmq.EINVAL, "(a frame of $n bytes does not fit a JVM array)")
                }
                val data = ByteArray(n.toInt())
                if (n > 0) copyOut(msg, data)
                return data
            } finally {
                fast.zmq_msg_close(msg)
            }
        }
    }

    /**
     * Copies a received frame out of libzmq. A large frame is copied in
     * steps and, when libzmq does not share its buffer, each step's whole
     * pages go back to the OS at once (MADV_DONTNEED), so the frame is held
     * about once, not twice, while it moves into the JVM heap. Only pages
     * strictly inside the data are released (the buffer's header sits
     * before it), and the message is closed right after.
     */
    private fun copyOut(msg: Pointer, dst: ByteArray) {
        val src = fast.zmq_msg_data(msg)!!
        val n = dst.size
        val libc = Native0.libc
        if (n < RELEASE_MIN_BYTES || libc == null || fast.zmq_msg_get(msg, ZMQ_SHARED) != 0) {
            src.read(0, dst, 0, n)
            return
        }
        val page = Native0.pageSize
        val base = Pointer.nativeValue(src)
        var released = (base + page - 1) and (page - 1).inv()
        var off = 0
        while (off < n) {
            val k = minOf(COPY_STEP, n - off)
            src.read(off.toLong(), dst, off, k)
            val end = (base + off + k) and (page - 1).inv()
            if (end > released) {
                libc.madvise(Pointer(released), SizeT(end - released), MADV_DONTNEED)
                released = end
            }
            off += k
        }
    }

    // ------------------------------------------------------------------
    // Options

    /** Sets an int option (LINGER, SNDHWM, IMMEDIATE, CURVE_SERVER, ...); MAXMSGSIZE is widened to int64. */
    fun setInt(opt: Option, value: Int) {
        if (opt.kind == Option.Kind.INT64) return setLong(opt, value.toLong())
        val m = Memory(4)
        m.setInt(0, value)
        setRaw(opt, m, 4)
    }

    /** Sets an int64 option (MAXMSGSIZE; -1 means no limit). */
    fun setLong(opt: Option, value: Long) {
        val m = Memory(8)
        m.setLong(0, value)
        setRaw(opt, m, 8)
    }

    /** Sets a millisecond option (LINGER, RCVTIMEO, SNDTIMEO, RECONNECT_IVL, ...); negative means -1 (infinite). */
    fun setMillis(opt: Option, ms: Long) = setInt(opt, if (ms < 0) -1 else minOf(ms, Int.MAX_VALUE.toLong()).toInt())

    /**
     * Sets a binary or string option (ROUTING_ID, SUBSCRIBE, ZAP_DOMAIN,
     * CURVE keys as 32 raw bytes). The value is copied for the call.
     */
    fun setBytes(opt: Option, value: ByteArray) {
        if (value.isEmpty()) return setRaw(opt, null, 0)
        val m = Memory(value.size.toLong())
        m.write(0, value, 0, value.size)
        setRaw(opt, m, value.size.toLong())
    }

    /**
     * setBytes for text options (UTF-8). CURVE keys given as 40-character
     * Z85 text are passed with their terminating NUL, as zmq_setsockopt(3)
     * requires for that form.
     */
    fun setString(opt: Option, value: String) {
        val b = value.toByteArray(Charsets.UTF_8)
        if (opt.kind == Option.Kind.KEY) setBytes(opt, b + byteArrayOf(0)) else setBytes(opt, b)
    }

    private fun setRaw(opt: Option, value: Pointer?, size: Long) {
        if (lib.zmq_setsockopt(ptr("setsockopt"), opt.code, value, SizeT(size)) != 0) {
            throw Zmq.error("setsockopt", detail = opt.name)
        }
    }

    /** Reads an int option (RCVMORE, MECHANISM, EVENTS, LINGER, ...); MAXMSGSIZE is narrowed from int64. */
    fun getInt(opt: Option): Int {
        if (opt.kind == Option.Kind.INT64) return getLong(opt).toInt()
        val m = Memory(4)
        getRaw(opt, m, 4)
        return m.getInt(0)
    }

    /** Reads an int64 option (MAXMSGSIZE). */
    fun getLong(opt: Option): Long {
        val m = Memory(8)
        getRaw(opt, m, 8)
        return m.getLong(0)
    }

    /** Reads a binary or string option; a string option's terminating NUL is removed. */
    fun getBytes(opt: Option): ByteArray {
        val m = Memory(1024)
        val n = getRaw(opt, m, 1024)
        var b = m.getByteArray(0, n.toInt())
        if ((opt.kind == Option.Kind.STRING) && b.isNotEmpty() && b[b.size - 1].toInt() == 0) {
            b = b.copyOf(b.size - 1)
        }
        return b
    }

    /** getBytes as UTF-8 text (LAST_ENDPOINT, ZAP_DOMAIN). */
    fun getString(opt: Option): String = String(getBytes(opt), Charsets.UTF_8)

    private fun getRaw(opt: Option, m: Memory, size: Long): Long {
        val len = SizeTByReference(size)
        if (lib.zmq_getsockopt(ptr("getsockopt"), opt.code, m, len) != 0) {
            throw Zmq.error("getsockopt", detail = opt.name)
        }
        return len.get()
    }

    /** The endpoint last bound or connected, a wildcard port resolved ("tcp://127.0.0.1:45321"). */
    val lastEndpoint: String get() = getString(Option.LAST_ENDPOINT)

    /** The socket's security mechanism, Zmq.MECHANISM_*. */
    val mechanism: Int get() = getInt(Option.MECHANISM)

    override fun toString() = "Socket($type${if (p == null) ", closed" else ""})"

    internal companion object {
        const val MSG_SIZE = 64L
        const val ZMQ_SHARED = 3
        const val MADV_DONTNEED = 4
        /** A received frame this large is handed back to the OS page by page as it is copied out. */
        const val RELEASE_MIN_BYTES = 1 shl 20
        const val COPY_STEP = 4 shl 20
    }
}
