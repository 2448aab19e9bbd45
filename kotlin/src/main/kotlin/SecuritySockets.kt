// A node's sockets with the cluster's security (go/security/sockets.go;
// zmqnode/transport/sockets.py): components ask Sockets for a bound server
// or a connected client and never set CURVE options themselves, so no
// socket is opened without the cluster's security.
package zmqnode.security

import zmqnode.zmq.Context
import zmqnode.zmq.Option
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.WatchedLink
import zmqnode.zmq.ZmqException

/** How long a closing server socket may still deliver what it queued (sockets.LINGER_MS in the Python node). */
const val DEFAULT_SERVER_LINGER_MS = 200L

/** Tunes Sockets.server. Defaults are the Python node's. */
data class ServerOptions(
    val lingerMs: Long = DEFAULT_SERVER_LINGER_MS,
    /** > 0 sets MAXMSGSIZE: a peer sending a larger frame is disconnected by libzmq. */
    val maxMessageBytes: Long = 0
)

/** Tunes Sockets.client. Defaults are the Python node's. */
data class ClientOptions(
    /** 0: drop what is queued when the socket closes. */
    val lingerMs: Long = 0,
    /** > 0 bounds the send queue (messages). */
    val sendHwm: Int = 0,
    /** Sends fail with EAGAIN (trySend: false) while the peer is not connected, instead of queueing for a peer that may never come. */
    val immediate: Boolean = false,
    val maxMessageBytes: Long = 0
)

/** A server socket that could not bind (usually: the port is in use). */
class BindFailedException(val endpoint: String, override val cause: ZmqException) :
    java.io.IOException("cannot bind $endpoint: ${cause.message}", cause)

/** Makes sockets in ctx with the node's keys (null: --insecure). The sockets belong to the calling thread. */
class Sockets(val ctx: Context, val keys: NodeKeys?) {
    /** A socket bound to endpoint, a CURVE server admitting the keys of ZAP domain (PEERS or CLIENTS). Start the Gatekeeper first. */
    fun server(t: SocketType, endpoint: String, domain: String, opts: ServerOptions = ServerOptions()): Socket {
        val sock = ctx.socket(t)
        try {
            sock.setMillis(Option.LINGER, opts.lingerMs)
            if (opts.maxMessageBytes > 0) sock.setLong(Option.MAXMSGSIZE, opts.maxMessageBytes)
            makeServer(sock, keys, domain)
        } catch (e: ZmqException) {
            sock.close()
            throw e
        }
        try {
            sock.bind(endpoint)
        } catch (e: ZmqException) {
            sock.setInt(Option.LINGER, 0)
            sock.close()
            throw BindFailedException(endpoint, e)
        }
        return sock
    }

    private fun configuredClient(t: SocketType, opts: ClientOptions): Socket {
        val sock = ctx.socket(t)
        try {
            sock.setMillis(Option.LINGER, opts.lingerMs)
            if (opts.sendHwm > 0) sock.setInt(Option.SNDHWM, opts.sendHwm)
            if (opts.immediate) sock.setInt(Option.IMMEDIATE, 1)
            if (opts.maxMessageBytes > 0) sock.setLong(Option.MAXMSGSIZE, opts.maxMessageBytes)
            makeClient(sock, keys)
        } catch (e: ZmqException) {
            sock.setInt(Option.LINGER, 0)
            sock.close()
            throw e
        }
        return sock
    }

    /** A socket connected to endpoint as a member of the cluster (presenting the node's own key). */
    fun client(t: SocketType, endpoint: String, opts: ClientOptions = ClientOptions()): Socket {
        val sock = configuredClient(t, opts)
        try {
            sock.connect(endpoint)
        } catch (e: ZmqException) {
            sock.setInt(Option.LINGER, 0)
            sock.close()
            throw e
        }
        return sock
    }

    /**
     * client whose refused handshakes are reopened (reopen.py
     * WatchedClients.open): the monitor is attached before it connects.
     * who names the far end and what the link in the log ("Raft DEALER",
     * "training PUSH"); refusedEvent/reopenedEvent are what count gets
     * ("peer_handshake_refused"/"peer_link_reopened",
     * "trainer_handshake_refused"/"trainer_link_reopened"). The owner
     * thread calls poll(nowMs) on the result from its loop; close the
     * WatchedLink, then its socket.
     */
    fun watchedClient(t: SocketType, endpoint: String, opts: ClientOptions, who: String, what: String,
                      warn: (String) -> Unit, info: (String) -> Unit, count: (String) -> Unit,
                      refusedEvent: String, reopenedEvent: String): WatchedLink {
        val sock = configuredClient(t, opts)
        try {
            return WatchedLink.connect(sock, endpoint, who, what, warn, info, count, refusedEvent, reopenedEvent)
        } catch (e: ZmqException) {
            sock.setInt(Option.LINGER, 0)
            sock.close()
            throw e
        }
    }
}
