// Reopening links refused by ZAP (go/zmq/reopen.go; zmqnode/transport/reopen.py).
//
// A handshake the other side refused (ZAP status 400: our key is not on its
// allow-list yet, as when that member has not appended the entry that adds
// us) is final for that connection in libzmq 4.3: it never retries it, even
// once the key is admitted. So a connecting socket whose handshake is
// refused is disconnected at once and connected again after a backoff
// (docs/PROTOCOL.md §1.1). The rules are here (Reopen), with the
// bookkeeping of Python's reopen.Reopening (Reopening<K>, no sockets, no
// clock) and one watched client socket (WatchedLink, as go/training's
// linkWatch), for the node's peer links and the training links.
package zmqnode.zmq

import java.util.Locale

/** The delay before reopening a refused link now, and the backoff to keep for the next refusal in a row. */
class ReopenStep(val delayMs: Long, val nextBackoffMs: Long)

object Reopen {
    /**
     * The handshake failures libzmq treats as final for the connection: the
     * peer's ZAP handler refused our key (status 400; 300 and 500 end the
     * same way), or the CURVE/ZMTP handshake broke. HANDSHAKE_FAILED_NO_DETAIL
     * is not here: it follows a dropped or timed-out TCP connection, which
     * libzmq reconnects by itself.
     */
    const val REFUSED_EVENTS = Zmq.EVENT_HANDSHAKE_FAILED_AUTH or Zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL

    /** What a watched socket's monitor reports: refusals, and handshakes that succeed (the backoff starts over). */
    const val HANDSHAKE_EVENTS = Zmq.EVENT_HANDSHAKE_SUCCEEDED or REFUSED_EVENTS

    /**
     * A refused link is reopened after REOPEN_FIRST_MS, doubling per refusal
     * in a row up to REOPEN_MAX_MS. A member admits a new key as soon as it
     * appends the entry adding it; a member cut off for long admits it only
     * later, and then the new node waits at most REOPEN_MAX_MS more.
     */
    const val REOPEN_FIRST_MS = 200L
    const val REOPEN_MAX_MS = 2000L

    /**
     * The backoff after one more refusal in a row: given the link's current
     * backoff (0 when its last handshake got through or it was never
     * refused), the delay before reopening it now and the next backoff.
     */
    fun next(backoffMs: Long): ReopenStep {
        val delay = if (backoffMs <= 0) REOPEN_FIRST_MS else backoffMs
        return ReopenStep(delay, minOf(2 * delay, REOPEN_MAX_MS))
    }

    /** How a log line names refusal event ev with its value: the ZAP status, or libzmq's handshake error code. */
    fun refusalReason(ev: Int, value: Long): String =
        if (ev == Zmq.EVENT_HANDSHAKE_FAILED_AUTH) "ZAP status $value"
        else "handshake error 0x" + java.lang.Long.toHexString(value)

    /**
     * The warning logged the first time a link is refused for reason: who
     * refused our link (e.g. "Raft DEALER connection") and when it will be
     * reopened. Formatted with Locale.ROOT (never a decimal comma).
     */
    fun refusedMessage(who: String, link: String, reason: String, delayMs: Long): String =
        String.format(Locale.ROOT,
            "%s refused our %s (%s; our key is not on its allow-list yet?): " +
                "reopening it in %.1f s, then at most every %.0f s until it gets through",
            who, link, reason, delayMs / 1000.0, REOPEN_MAX_MS / 1000.0)
}

/**
 * When each refused link of one owner is reopened, links keyed by K
 * (zmqnode/transport/reopen.py Reopening; go/node/reopen.go). The owner
 * reports each refusal (refused) and each handshake that succeeded
 * (gotThrough), and reopens what takeDue returns. count gets refusedEvent
 * per refusal and reopenedEvent per reopening ("peer_handshake_refused" /
 * "peer_link_reopened" for peer links, "trainer_handshake_refused" /
 * "trainer_link_reopened" for training links); warn gets one line per link
 * and reason, info one line when a reopened link gets through. Time comes
 * in as nowMs (a monotonic clock in milliseconds). One thread.
 */
class Reopening<K>(
    private val warn: (String) -> Unit,
    private val info: (String) -> Unit,
    private val count: (String) -> Unit,
    private val refusedEvent: String,
    private val reopenedEvent: String
) {
    private val reopenAt = LinkedHashMap<K, Long>()
    private val backoff = HashMap<K, Long>()
    private val reopened = HashMap<K, Int>()
    private val logged = HashSet<Pair<K, String>>()

    /**
     * who refused link key (our `what` connection) with monitor event
     * kind/value: it is due again after the backoff. True when the caller
     * must disconnect it now: the first refusal since it was last reopened
     * (a later one finds it disconnected already). Disconnect now, not when
     * reopening: libzmq keeps the dead connection's entry until disconnect,
     * and a late disconnect could end a session opened meanwhile.
     */
    fun refused(key: K, who: String, what: String, kind: Int, value: Long, nowMs: Long): Boolean {
        count(refusedEvent)
        val reason = Reopen.refusalReason(kind, value)
        val step = Reopen.next(backoff[key] ?: 0L)
        backoff[key] = step.nextBackoffMs
        if (logged.add(Pair(key, reason))) {
            warn(Reopen.refusedMessage(who, "$what connection", reason, step.delayMs))
        }
        val first = !reopenAt.containsKey(key)
        reopenAt[key] = nowMs + step.delayMs
        return first
    }

    /** A handshake of link key succeeded: its backoff starts over. */
    fun gotThrough(key: K, who: String, what: String) {
        backoff.remove(key)
        val n = reopened.remove(key) ?: 0
        if (n > 0) info("$who admitted our $what connection after $n reopening(s)")
    }

    fun anyDue(nowMs: Long): Boolean = reopenAt.values.any { it <= nowMs }

    /** The links to reopen now (each counted as reopened). */
    fun takeDue(nowMs: Long): List<K> {
        val due = reopenAt.entries.filter { it.value <= nowMs }.map { it.key }
        for (key in due) {
            reopenAt.remove(key)
            reopened[key] = (reopened[key] ?: 0) + 1
            count(reopenedEvent)
        }
        return due
    }

    /** When the next link is due (nowMs's clock), null if none waits. */
    fun nextDue(): Long? = reopenAt.values.min()

    /** Whether link key waits to be reopened. */
    fun isPending(key: K): Boolean = reopenAt.containsKey(key)

    /** Link key is closed: nothing of it is kept. */
    fun forget(key: K) {
        reopenAt.remove(key)
        backoff.remove(key)
        reopened.remove(key)
        logged.removeAll { it.first == key }
    }
}

/**
 * One connecting socket whose refused handshakes are reopened (go/training
 * linkWatch; reopen.py WatchedClients for one socket): a monitor attached
 * before it connects (a handshake can be refused within a millisecond, and
 * an event before the monitor exists is lost). The owner thread calls
 * poll(nowMs) from its loop: it handles the monitor's waiting events and
 * reopens the link once its backoff has passed. Nothing here blocks. Close
 * the WatchedLink (stops and closes the monitor) before closing the socket.
 */
class WatchedLink private constructor(
    val socket: Socket,
    val monitor: Socket,
    val endpoint: String,
    private val who: String,
    private val what: String,
    private val reopening: Reopening<Unit>
) {
    /** Whether the last handshake got through (false until one does, and after a refusal). */
    var connected = false
        private set

    /** Handles waiting monitor events and reopens the link if due. */
    fun poll(nowMs: Long) {
        while (true) {
            val frames = try {
                monitor.tryRecv()
            } catch (e: ZmqException) {
                null
            } ?: break
            val ev = try {
                MonitorEvent.parse(frames)
            } catch (e: IllegalArgumentException) {
                continue
            }
            onEvent(ev, nowMs)
        }
        if (reopening.takeDue(nowMs).isNotEmpty()) {
            try {
                socket.connect(endpoint)
            } catch (e: ZmqException) {
                reopening.forget(Unit)
            }
        }
    }

    /** Handles one monitor event (poll does it for the events it reads). */
    fun onEvent(ev: MonitorEvent, nowMs: Long) {
        if (ev.event == Zmq.EVENT_HANDSHAKE_SUCCEEDED) {
            connected = true
            reopening.gotThrough(Unit, who, what)
        } else if (ev.event and Reopen.REFUSED_EVENTS != 0) {
            connected = false
            if (reopening.refused(Unit, who, what, ev.event, ev.value, nowMs)) {
                try {
                    socket.disconnect(endpoint)
                } catch (e: ZmqException) {
                    // not connected any more
                }
            }
        }
    }

    /** When the link is due to be reopened (nowMs's clock), null if it is not waiting. */
    fun nextDue(): Long? = reopening.nextDue()

    /** Stops and closes the monitor (the socket stays open: its owner closes it). */
    fun close() {
        try {
            socket.stopMonitor()
        } catch (e: ZmqException) {
        }
        monitor.close()
    }

    companion object {
        /**
         * Attaches a monitor to socket (configured already: CURVE client,
         * LINGER, HWM...), then connects it to endpoint. who is the far end
         * and what the link, for the log ("Raft DEALER", "training PUSH").
         */
        fun connect(socket: Socket, endpoint: String, who: String, what: String,
                    warn: (String) -> Unit, info: (String) -> Unit, count: (String) -> Unit,
                    refusedEvent: String, reopenedEvent: String): WatchedLink {
            val mon = socket.context.monitor(socket, Reopen.HANDSHAKE_EVENTS)
            try {
                socket.connect(endpoint)
            } catch (e: ZmqException) {
                try {
                    socket.stopMonitor()
                } catch (e2: ZmqException) {
                }
                mon.close()
                throw e
            }
            return WatchedLink(socket, mon, endpoint, who, what,
                Reopening(warn, info, count, refusedEvent, reopenedEvent))
        }
    }
}
