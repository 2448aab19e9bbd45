// The node's Raft links (transport/peers.py, go/node/peers.go): the Raft
// ROUTER, one DEALER per peer, the heartbeat PUB and one SUB on every
// peer's PUB, plus the test-only fault file. Loop thread only.
package zmqnode.node

import zmqnode.raft.BROADCAST
import zmqnode.raft.Entry
import zmqnode.raft.EntryKind
import zmqnode.raft.Message
import zmqnode.raft.MessageType
import zmqnode.raft.Snapshot
import zmqnode.wire.Json
import zmqnode.wire.JsonObject
import zmqnode.wire.ProtocolError
import zmqnode.wire.RaftEntry
import zmqnode.wire.RaftMessage
import zmqnode.wire.RaftMessageType
import zmqnode.wire.RaftSnapshot
import zmqnode.wire.RaftWire
import zmqnode.wire.EntryKind as WireEntryKind
import zmqnode.zmq.MonitorEvent
import zmqnode.zmq.Option
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.Zmq
import zmqnode.zmq.ZmqException
import java.io.File

const val PEER_HWM = 10000

/**
 * A core's message as body frames, through zmqnode.wire's Raft codec
 * (PROTOCOL.md §8; go/node/raftwire.go toWire): the core's and the wire's
 * enums have the same values. IllegalArgumentException as [RaftWire.encode].
 */
fun encodeRaft(m: Message): List<ByteArray> = RaftWire.encode(RaftMessage(RaftMessageType.of(m.type.value)!!,
    m.src, m.dst, m.term, m.logIndex, m.logTerm,
    m.entries.map { RaftEntry(it.index, it.term, WireEntryKind.of(it.kind.value)!!, it.data) },
    m.commit, m.reject, m.index, m.rejectHint, m.context, m.readCtx, m.force,
    m.snapshot?.let { RaftSnapshot(it.index, it.term, it.data, it.membership) }))

/** The inverse of [encodeRaft] ([RaftWire.decode]'s ProtocolError). */
fun decodeRaft(frames: List<ByteArray>): Message {
    val w = RaftWire.decode(frames)
    return Message(MessageType.parse(w.type.value), w.src, w.dst, w.term, w.logIndex, w.logTerm,
        w.entries.map { Entry(it.index, it.term, EntryKind.parse(it.kind.value), it.data) },
        w.commit, w.reject, w.index, w.rejectHint, w.context, w.readCtx, w.force,
        w.snapshot?.let { Snapshot(it.index, it.term, it.data, it.membership) })
}
const val MAX_SUB_MESSAGE_BYTES = 1L shl 20
const val STATUS_TOPIC = "zstatus"

/** A peer's last status feed message (the leader promotes a learner once it reports no missing file). */
class PeerStatus(val atNanos: Long, val status: JsonObject)

/** The refusal events of a CURVE handshake (go/zmq RefusedEvents). */
const val REFUSED_EVENTS = Zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL or Zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL or
    Zmq.EVENT_HANDSHAKE_FAILED_AUTH

class PeerLinks(private val n: Node, maxMessageBytes: Long) {
    private val cfg = n.cfg
    val raftSock: Socket
    val pub: Socket
    val sub: Socket
    private val subMon: Socket
    private val dealers = LinkedHashMap<String, Socket>()
    private val monitors = LinkedHashMap<String, Socket>()
    private val subEndpoints = LinkedHashMap<String, String>()
    private val established = HashSet<String>()
    /** Peer -> System.nanoTime() of its last message. */
    val lastHeard = HashMap<String, Long>()
    val peerStatus = HashMap<String, PeerStatus>()
    private val faults: FaultFile? = if (cfg.faultFile != "") FaultFile(cfg.faultFile, n.log.forLevel("WARNING", "zmqnode.transport.faults")) else null
    private val refusedLogged = HashSet<String>()
    private val reopenAt = HashMap<String, Long>()
    private val backoff = HashMap<String, Long>()

    init {
        raftSock = n.serverSocket(SocketType.ROUTER, NodeConfig.endpoint(cfg.host, cfg.port + RAFT_OFFSET), DOMAIN_PEERS,
            maxMessageBytes)
        pub = n.serverSocket(SocketType.PUB, NodeConfig.endpoint(cfg.host, cfg.port + HEARTBEAT_OFFSET), DOMAIN_CLIENTS, -1)
        pub.setInt(Option.SNDHWM, PEER_HWM)
        sub = n.ctx.socket(SocketType.SUB)
        sub.setString(Option.SUBSCRIBE, RaftWire.HEARTBEAT_TOPIC)
        sub.setString(Option.SUBSCRIBE, STATUS_TOPIC)
        sub.setInt(Option.LINGER, 0)
        sub.setLong(Option.MAXMSGSIZE, MAX_SUB_MESSAGE_BYTES)
        KeyFiles.makeClient(sub, n.keys)
        // Watched before it connects: a handshake can finish (or fail) within a millisecond.
        subMon = n.ctx.monitor(sub, REFUSED_EVENTS or Zmq.EVENT_HANDSHAKE_SUCCEEDED)
        n.register(subMon) { frames -> subEvent(frames) }
    }

    val peers: Set<String> get() = dealers.keys

    fun linked(peer: String) = dealers.containsKey(peer)

    /** Links to exactly [peers] from now on; (added, removed). */
    fun setPeers(peers: List<String>): Pair<List<String>, List<String>> {
        val want = peers.toSet()
        val removed = dealers.keys.filter { it !in want }
        val added = peers.filter { it !in dealers }
        for (p in removed) {
            subEndpoints.remove(p)?.let { ep -> try { sub.disconnect(ep) } catch (e: ZmqException) {} }
            monitors.remove(p)?.let { mon ->
                n.unregister(mon)
                try { dealers[p]?.stopMonitor() } catch (e: ZmqException) {}
                mon.close()
            }
            dealers.remove(p)?.close()
            lastHeard.remove(p)
            peerStatus.remove(p)
            established.remove(p)
            reopenAt.remove("raft $p")
            reopenAt.remove("sub $p")
        }
        for (p in added) {
            val (host, port) = try {
                Addresses.parse(p)
            } catch (e: IllegalArgumentException) {
                n.log.warning("zmqnode.transport.peers", "cannot link to $p: ${e.message}")
                continue
            }
            val subEp = NodeConfig.endpoint(host, port + HEARTBEAT_OFFSET)
            try {
                sub.connect(subEp)
                subEndpoints[p] = subEp
            } catch (e: ZmqException) {
                n.log.warning("zmqnode.transport.peers", "cannot subscribe to $p: ${e.message}")
            }
            val d = n.ctx.socket(SocketType.DEALER)
            try {
                d.setInt(Option.LINGER, 0)
                d.setInt(Option.SNDHWM, PEER_HWM)
                d.setInt(Option.IMMEDIATE, 1) // never queue for a peer that is not there
                KeyFiles.makeClient(d, n.keys)
                val mon = n.ctx.monitor(d, Zmq.EVENT_DISCONNECTED or Zmq.EVENT_HANDSHAKE_SUCCEEDED or REFUSED_EVENTS)
                d.connect(NodeConfig.endpoint(host, port + RAFT_OFFSET))
                dealers[p] = d
                monitors[p] = mon
                n.register(mon) { frames -> dealerEvent(p, frames) }
            } catch (e: ZmqException) {
                d.close()
                n.log.warning("zmqnode.transport.peers", "cannot link to $p: ${e.message}")
            }
        }
        return Pair(added, removed)
    }

    /** A message from the ROUTER (identity removed); null when malformed or not for this node. */
    fun receive(frames: List<ByteArray>): Message? {
        val m = try {
            decodeRaft(frames)
        } catch (e: ProtocolError) {
            n.count("raft_garbage")
            n.log.warning("zmqnode.transport.peers", "dropped a malformed Raft message: ${e.message}")
            return null
        }
        if ((m.dst != n.id && m.dst != BROADCAST) || !dealers.containsKey(m.src)) {
            n.count("raft_misrouted")
            n.log.warning("zmqnode.transport.peers", "dropped a Raft message from ${pyStr(m.src)} to ${pyStr(m.dst)}: " +
                "not for this cluster member")
            return null
        }
        if (faults != null && faults.dropIn(m.src)) return null
        lastHeard[m.src] = System.nanoTime()
        n.stats.raftReceived(m)
        return m
    }

    /** A message from a peer's PUB: a heartbeat, or a status feed message (kept in peerStatus). */
    fun receivePublished(frames: List<ByteArray>): Message? {
        if (frames.isNotEmpty() && String(frames[0], Charsets.ISO_8859_1) == STATUS_TOPIC) {
            if (frames.size != 2) return null
            val o = try { Json.parse(frames[1]) as? JsonObject } catch (e: Exception) { null } ?: return null
            val node = o.str("node")
            if (node != null && dealers.containsKey(node)) peerStatus[node] = PeerStatus(System.nanoTime(), o)
            return null
        }
        if (frames.size < 2) return null
        return receive(frames.subList(1, frames.size))
    }

    /** Routes a message to its peer's DEALER, or a broadcast to the PUB. */
    fun send(m: Message) {
        if (faults != null && m.dst != BROADCAST && faults.dropOut(m.dst)) return
        val frames = try {
            encodeRaft(m)
        } catch (e: IllegalArgumentException) {
            n.log.error("zmqnode.transport.peers", "cannot encode a Raft message: ${e.message}")
            return
        }
        if (m.dst == BROADCAST) {
            if (faults != null && faults.dropOut(BROADCAST)) return
            pub.trySend(listOf(RaftWire.HEARTBEAT_TOPIC.toByteArray(Charsets.ISO_8859_1)) + frames)
        } else {
            val d = dealers[m.dst]
            if (d == null) {
                n.count("raft_no_link")
                return
            }
            val sent = try { d.trySend(frames) } catch (e: ZmqException) { false }
            if (!sent) {
                n.count("raft_dropped")
                return
            }
        }
        n.stats.raftSent(m)
    }

    fun publishStatus(status: ByteArray) {
        try {
            pub.trySend(listOf(STATUS_TOPIC.toByteArray(Charsets.ISO_8859_1), status))
        } catch (e: ZmqException) {
        }
    }

    private fun dealerEvent(peer: String, frames: List<ByteArray>) {
        val ev = try { MonitorEvent.parse(frames) } catch (e: IllegalArgumentException) { return }
        if (!dealers.containsKey(peer)) return
        when {
            ev.event == Zmq.EVENT_DISCONNECTED -> if (established.remove(peer)) n.onPeerDisconnected(peer)
            ev.event == Zmq.EVENT_HANDSHAKE_SUCCEEDED -> {
                established.add(peer)
                gotThrough(peer, "raft")
            }
            ev.event and REFUSED_EVENTS != 0 -> refused(peer, "raft", ev)
        }
    }

    private fun subEvent(frames: List<ByteArray>) {
        val ev = try { MonitorEvent.parse(frames) } catch (e: IllegalArgumentException) { return }
        val port = ev.endpoint.substringAfterLast(':')
        val matches = subEndpoints.filter { it.value == ev.endpoint }.keys.ifEmpty {
            subEndpoints.filter { it.value.substringAfterLast(':') == port }.keys
        }
        for (p in matches) {
            if (ev.event == Zmq.EVENT_HANDSHAKE_SUCCEEDED) gotThrough(p, "sub")
            else if (ev.event and REFUSED_EVENTS != 0) refused(p, "sub", ev)
        }
    }

    private fun gotThrough(peer: String, link: String) {
        val key = "$link $peer"
        backoff.remove(key)
        reopenAt.remove(key)
        if (refusedLogged.remove(key)) {
            n.count("peer_link_reopened")
            n.log.info("zmqnode.transport.peers", "our ${if (link == "raft") "Raft" else "heartbeat"} connection to $peer " +
                "got through after being refused")
        }
    }

    /**
     * A refused handshake: libzmq 4.3 never retries one, so the link is
     * disconnected now and connected again after a backoff (0.2 s doubling
     * to 2 s), as go/zmq/reopen.go.
     */
    private fun refused(peer: String, link: String, ev: MonitorEvent) {
        val key = "$link $peer"
        if (reopenAt.containsKey(key)) return
        n.count("peer_handshake_refused")
        if (refusedLogged.add(key)) {
            n.log.warning("zmqnode.transport.peers", "$peer refused our ${if (link == "raft") "Raft" else "heartbeat"} " +
                "connection (handshake event 0x${Integer.toHexString(ev.event)}, value ${ev.value}); retrying with backoff")
        }
        try {
            if (link == "raft") {
                val (h, p) = Addresses.parse(peer)
                dealers[peer]?.disconnect(NodeConfig.endpoint(h, p + RAFT_OFFSET))
            } else {
                subEndpoints[peer]?.let { sub.disconnect(it) }
            }
        } catch (e: Exception) {
        }
        val b = minOf(2000L, (backoff[key] ?: 100L) * 2)
        backoff[key] = b
        reopenAt[key] = System.nanoTime() + b * 1_000_000
    }

    /** Reconnects refused links whose backoff passed (once a tick). */
    fun tick(nowNanos: Long) {
        val due = reopenAt.filter { it.value - nowNanos <= 0 }.keys.toList()
        for (key in due) {
            reopenAt.remove(key)
            val (link, peer) = key.split(" ", limit = 2).let { Pair(it[0], it[1]) }
            try {
                if (link == "raft") {
                    val (h, p) = Addresses.parse(peer)
                    dealers[peer]?.connect(NodeConfig.endpoint(h, p + RAFT_OFFSET))
                } else {
                    subEndpoints[peer]?.let { sub.connect(it) }
                }
            } catch (e: Exception) {
                n.log.warning("zmqnode.transport.peers", "cannot reopen our $link connection to $peer: ${e.message}")
            }
        }
    }

    fun close() {
        try { sub.stopMonitor() } catch (e: Exception) {}
        subMon.close()
        for ((p, mon) in monitors) {
            try { dealers[p]?.stopMonitor() } catch (e: Exception) {}
            mon.close()
        }
        monitors.clear()
        for (d in dealers.values) d.close()
        dealers.clear()
        for (s in listOf(raftSock, pub, sub)) {
            try { s.setInt(Option.LINGER, 0) } catch (e: Exception) {}
            s.close()
        }
    }
}

// The test-only --fault-file (transport/faults.py): a JSON object whose
// "drop_in" and "drop_out" list peers, re-read when it changes (checked at
// most every 50 ms). Missing or empty: no faults.
class FaultFile(private val path: String, private val log: (String) -> Unit) {
    private var mtime = -1L
    private var loaded = false
    private var next = 0L
    private var dropIn = emptySet<String>()
    private var dropOut = emptySet<String>()

    private fun refresh() {
        val now = System.nanoTime()
        if (loaded && now - next < 0) return
        next = now + 50_000_000
        val f = File(path)
        val m = try {
            java.nio.file.Files.getLastModifiedTime(f.toPath()).to(java.util.concurrent.TimeUnit.NANOSECONDS)
        } catch (e: java.io.IOException) {
            -1L
        }
        if ((loaded && m == mtime) || (!loaded && m < 0)) {
            loaded = true
            mtime = m
            return
        }
        loaded = true
        mtime = m
        var din = emptyList<String>()
        var dout = emptyList<String>()
        if (m >= 0) {
            try {
                val data = f.readBytes()
                if (data.isNotEmpty()) {
                    val o = Json.parse(data) as? JsonObject
                    din = o?.strings("drop_in") ?: emptyList()
                    dout = o?.strings("drop_out") ?: emptyList()
                }
            } catch (e: Exception) {
                log("ignoring fault file $path: ${e.message}")
            }
        }
        dropIn = din.toSet()
        dropOut = dout.toSet()
        log("test faults now: drop_in=${pyList(dropIn.sorted())} drop_out=${pyList(dropOut.sorted())}")
    }

    fun dropIn(peer: String): Boolean {
        refresh()
        return peer in dropIn
    }

    fun dropOut(peer: String): Boolean {
        refresh()
        return peer in dropOut
    }
}

fun pyList(items: List<String>): String = items.joinToString(", ", "[", "]") { pyStr(it) }

/** Times each AppendEntries with entries until the peer confirms them (raft_append_seconds). */
class RaftTraffic {
    private val inFlight = HashMap<String, Pair<Long, Long>>()
    var observe: ((Double) -> Unit)? = null

    fun sent(m: Message) {
        if (m.type != MessageType.APPEND || m.entries.isEmpty()) return
        if (!inFlight.containsKey(m.dst)) inFlight[m.dst] = Pair(m.entries.last().index, System.nanoTime())
    }

    fun received(m: Message) {
        if (m.type != MessageType.APPEND_RESP) return
        val s = inFlight[m.src] ?: return
        if (!(m.reject || m.index >= s.first)) return
        inFlight.remove(m.src)
        if (!m.reject) observe?.invoke((System.nanoTime() - s.second) / 1e9)
    }

    fun reset() = inFlight.clear()
}
