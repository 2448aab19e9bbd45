// CURVE roles and the ZAP handler (go/security/zap.go; security.py).
package zmqnode.security

import zmqnode.zmq.Context
import zmqnode.zmq.Option
import zmqnode.zmq.Poller
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.Z85
import zmqnode.zmq.Zmq
import zmqnode.zmq.ZmqException
import java.util.concurrent.ArrayBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference

/** Where libzmq sends a context's authentication requests (ZeroMQ RFC 27). */
const val ZAP_ENDPOINT = "inproc://zeromq.zap.01"

/** Refused keys logged (each once) at most: a flood of strangers must not fill the log. */
const val MAX_DENIALS_LOGGED = 256

/**
 * Makes a binding socket a CURVE server checked by ZAP domain (PEERS or
 * CLIENTS) with the cluster's server keypair. Call before bind. keys null
 * (--insecure): nothing, the socket stays NULL (plaintext).
 */
fun makeServer(s: Socket, keys: NodeKeys?, domain: String) {
    if (keys == null) return
    s.setInt(Option.CURVE_SERVER, 1)
    s.setString(Option.CURVE_SECRETKEY, keys.serverSecret)
    s.setString(Option.ZAP_DOMAIN, domain)
}

/** Makes a connecting socket a CURVE client of the cluster, presenting the node's own keypair. Call before connect. keys null: plaintext. */
fun makeClient(s: Socket, keys: NodeKeys?) {
    if (keys == null) return
    makeClient(s, keys.serverPublic, keys.public, keys.secret)
}

/** makeClient for a client's keys. */
fun makeClient(s: Socket, keys: ClientKeys?) {
    if (keys == null) return
    makeClient(s, keys.serverPublic, keys.public, keys.secret)
}

/** makeClient with explicit Z85 keys (the cluster's public key, our keypair). */
fun makeClient(s: Socket, serverPublic: String, public: String, secret: String) {
    s.setString(Option.CURVE_SERVERKEY, serverPublic)
    s.setString(Option.CURVE_PUBLICKEY, public)
    s.setString(Option.CURVE_SECRETKEY, secret)
}

/** The socket's ZMTP security mechanism: "NULL", "PLAIN", "CURVE" or "OTHER". */
fun mechanism(s: Socket): String = try {
    when (s.mechanism) {
        Zmq.MECHANISM_NULL -> "NULL"
        Zmq.MECHANISM_PLAIN -> "PLAIN"
        Zmq.MECHANISM_CURVE -> "CURVE"
        else -> "OTHER"
    }
} catch (e: ZmqException) {
    "OTHER"
}

/** What each domain admits; swapped whole on a change so the ZAP thread never sees half of one. */
private class AllowList(val peers: Set<String>, val clients: Set<String>?)

/**
 * The running ZAP handler of one context and the allow-lists it checks,
 * with security.py's decisions: on PEERS, a key in the member list; on
 * CLIENTS, any key with --client-auth none, else a member or client key;
 * any other domain, nothing. The member list follows the committed
 * membership: the node calls setMembers with the members' keys whenever its
 * committed configuration changes (and its trainer when it re-reads the
 * member_keys file). setMembers, members and denials are safe from any
 * thread. The handler runs on its own daemon thread, which owns the ZAP
 * REP socket and a control PAIR.
 */
class Gatekeeper private constructor(
    private val ctx: Context,
    private val clients: List<String>?,
    private val log: (String) -> Unit,
    private val info: (String) -> Unit,
    private val control: String
) {
    private val allowed = AtomicReference<AllowList>()
    private val membersRef = AtomicReference<List<String>>(emptyList())
    private val denialCount = AtomicLong()
    private val denied = HashSet<String>() // domain + " " + key, logged once each; guarded by itself
    private val done = ArrayBlockingQueue<Any>(1) // Unit, or the Throwable that ended the handler
    @Volatile
    private var stopped = false

    /** Admits exactly these member keys (Z85) from now on: the membership changed. Connections already made are not dropped. */
    fun setMembers(members: Collection<String>) {
        val sorted = members.toSortedSet().toList()
        if (sorted == membersRef.get()) return
        store(sorted)
        info("member allow-list now has ${sorted.size} keys")
    }

    private fun store(sorted: List<String>) {
        val peers = LinkedHashSet(sorted)
        val cl = if (clients == null) null else LinkedHashSet(sorted).also { it.addAll(clients) }
        membersRef.set(sorted)
        allowed.set(AllowList(peers, cl))
    }

    /** The member allow-list now (sorted). */
    fun members(): List<String> = membersRef.get()

    /** The connections refused so far (every refusal, not only the logged ones). */
    fun denials(): Long = denialCount.get()

    /** The decision for a Z85 public key on a ZAP domain (what the handler answers a CURVE handshake). Refusals are counted and logged. */
    fun allowed(domain: String, key: String): Boolean {
        val list = allowed.get()
        val admitted = when (domain) {
            PEERS -> list.peers
            CLIENTS -> list.clients ?: return true
            else -> return false // pyzmq: "Unknown domain", not counted
        }
        if (key in admitted) return true
        denialCount.incrementAndGet()
        val id = "$domain $key"
        val first = synchronized(denied) {
            val f = id !in denied && denied.size < MAX_DENIALS_LOGGED
            if (f) denied.add(id)
            f
        }
        if (first) log("refused a connection: public key $key is not allowed on $domain")
        return false
    }

    /**
     * Ends the handler and closes its sockets (waits up to 5 s). Call it
     * before the context is terminated; afterwards CURVE handshakes in this
     * context are no longer checked, so stop only once the sockets are
     * closed too. Stopping twice is a no-op.
     */
    fun stop() {
        if (stopped) return
        stopped = true
        val s = ctx.socket(SocketType.PAIR)
        try {
            s.setInt(Option.LINGER, 0)
            s.connect(control)
            s.send("stop".toByteArray(Charsets.UTF_8))
            val r = done.poll(5, TimeUnit.SECONDS) ?: throw IllegalStateException("ZAP handler did not stop within 5 s")
            if (r is Throwable) throw IllegalStateException("ZAP handler failed: $r", r)
        } finally {
            s.close()
        }
    }

    private fun serve(zap: Socket, control: Socket) {
        var result: Any = Unit
        try {
            val p = Poller()
            p.add(zap, Zmq.POLLIN)
            p.add(control, Zmq.POLLIN)
            while (true) {
                val ready = p.poll(-1)
                if (ready[1] != 0) break
                if (ready[0] == 0) continue
                val req = zap.tryRecv() ?: continue
                zap.send(answer(req))
            }
            p.close()
        } catch (e: ZmqException) {
            if (!e.isTerm) result = e
        } catch (e: Throwable) {
            result = e
        } finally {
            zap.close()
            control.close()
            done.offer(result)
        }
    }

    /**
     * The ZAP reply to one request, with pyzmq's Authenticator's decisions:
     * NULL admitted (a CURVE server never asks for it), CURVE by the
     * allow-lists, anything else refused.
     */
    internal fun answer(req: List<ByteArray>): List<ByteArray> {
        fun reply(id: ByteArray, code: String, text: String, user: String) = listOf(
            ZAP_VERSION, id, code.toByteArray(Charsets.UTF_8), text.toByteArray(Charsets.UTF_8),
            user.toByteArray(Charsets.UTF_8), ByteArray(0))
        if (req.size < 6) return reply(if (req.size >= 2) req[1] else ByteArray(0), "400", "Not enough frames", "")
        val id = req[1]
        if (!req[0].contentEquals(ZAP_VERSION)) return reply(id, "400", "Invalid version", "")
        var domain = String(req[2], Charsets.UTF_8)
        val mechanism = String(req[5], Charsets.UTF_8)
        val credentials = req.subList(6, req.size)
        when (mechanism) {
            "NULL" -> return reply(id, "200", "OK", "anonymous")
            "CURVE" -> {
                if (credentials.size != 1 || credentials[0].size != 32) return reply(id, "400", "Invalid credentials", "")
                val key = try {
                    Z85.encode(credentials[0])
                } catch (e: IllegalArgumentException) {
                    return reply(id, "400", "Invalid credentials", "")
                }
                if (domain.length == 0) domain = "*"
                if (allowed(domain, key)) return reply(id, "200", "OK", key)
                if (domain != PEERS && domain != CLIENTS) return reply(id, "400", "Unknown domain", "")
                return reply(id, "400", "Unknown key", "")
            }
        }
        return reply(id, "400", "NO ACCESS", "")
    }

    companion object {
        /** The only ZAP version (RFC 27). */
        private val ZAP_VERSION = "1.0".toByteArray(Charsets.UTF_8)
        private val seq = AtomicLong()

        /**
         * Starts the ZAP handler for ctx: it binds inproc://zeromq.zap.01
         * before returning, so start it before any socket binds (libzmq lets
         * a CURVE handshake through unchecked when no handler runs). keys
         * null (--insecure): no handler, null. log receives the refusal
         * lines (Python logs them as warnings; default: standard error),
         * info the allow-list change lines (Python: info; default: log).
         */
        fun start(ctx: Context, keys: NodeKeys?, log: ((String) -> Unit)? = null,
                  info: ((String) -> Unit)? = null): Gatekeeper? {
            if (keys == null) return null
            val warn = log ?: { line: String -> System.err.println(line) }
            val g = Gatekeeper(ctx, keys.clients, warn, info ?: warn,
                "inproc://zmqnode.zap.control." + seq.incrementAndGet())
            g.store(keys.members.toSortedSet().toList())
            val zap = ctx.socket(SocketType.REP)
            val control = ctx.socket(SocketType.PAIR)
            try {
                zap.setInt(Option.LINGER, 0)
                control.setInt(Option.LINGER, 0)
                try {
                    zap.bind(ZAP_ENDPOINT)
                } catch (e: ZmqException) {
                    throw ZmqException(e.op, e.errno, "$ZAP_ENDPOINT (is another ZAP handler running in this context?)")
                }
                control.bind(g.control)
            } catch (e: ZmqException) {
                zap.close()
                control.close()
                throw e
            }
            // The sockets now belong to the handler thread alone (Thread.start is the hand-over).
            val t = Thread({ g.serve(zap, control) }, "zap-handler")
            t.isDaemon = true
            t.start()
            return g
        }
    }
}
