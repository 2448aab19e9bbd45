// File repair (§9d, repair.py, go/node/repair.go): missing or damaged model
// files fetched with FETCH, one model at a time, one chunk in flight, the
// leader first, then each other peer. Loop thread only.
package zmqnode.node

import zmqnode.wire.DecodeOptions
import zmqnode.wire.JsonObject
import zmqnode.wire.ProtocolError
import zmqnode.wire.Wire
import zmqnode.zmq.Option
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.ZmqException
import java.io.ByteArrayOutputStream

const val FETCH_REQUEST_TIMEOUT_MS = 2000L
const val FETCH_RETRY_PAUSE_MS = 2000L

class Fetcher(private val n: Node) {
    private class Job(val modelId: String, val sha: String, val size: Long, var peers: List<String>) {
        var data = ByteArrayOutputStream()
        var requestId = ""
        var body: List<ByteArray>? = null
        var deadline = 0L
        val failures = ArrayList<String>()
    }

    private val wanted = LinkedHashMap<String, Pair<String, Long>>()
    private val order = ArrayList<String>()
    private val notBefore = HashMap<String, Long>()
    private var current: Job? = null
    private val sockets = HashMap<String, Socket>()
    private var seq = 0
    var chunksFetched = 0L
        private set
    var filesFetched = 0L
        private set

    fun want(id: String, sha: String, size: Long) {
        if (!wanted.containsKey(id)) {
            n.log.warning("zmqnode.repair", "node ${n.id}: model $id is missing or damaged here; fetching it from peers")
            order.add(id)
        }
        wanted[id] = Pair(sha, size)
    }

    /** The file was repaired another way (replaying the log rewrote it). */
    fun forget(id: String) {
        if (wanted.remove(id) == null) return
        notBefore.remove(id)
        order.remove(id)
        if (current?.modelId == id) current = null
    }

    fun pending(): Int = wanted.size

    fun tick(now: Long) {
        val peers = n.core.peers
        if (peers.isEmpty()) return
        for (p in peers) socket(p) // connected ahead: IMMEDIATE sends need a connection
        val c = current
        if (c != null && now - c.deadline >= 0) giveUp(c, "no answer in time", now)
        else if (c != null && c.body != null) send(c)
        if (current != null) return
        val leader = n.core.leaderId
        for (id in order) {
            val t = notBefore[id]
            if (t != null && t - now > 0) continue
            val sorted = peers.sorted()
            val ordered = sorted.filter { it == leader } + sorted.filter { it != leader }
            val w = wanted[id] ?: continue
            val j = Job(id, w.first, w.second, ordered)
            current = j
            request(j, now)
            return
        }
    }

    private fun socket(peer: String): Socket? {
        sockets[peer]?.let { return it }
        val (host, port) = try { Addresses.parse(peer) } catch (e: IllegalArgumentException) { return null }
        val s = n.ctx.socket(SocketType.DEALER)
        try {
            s.setInt(Option.LINGER, 0)
            s.setInt(Option.IMMEDIATE, 1)
            KeyFiles.makeClient(s, n.keys)
            s.connect(NodeConfig.endpoint(host, port))
        } catch (e: ZmqException) {
            s.close()
            return null
        }
        sockets[peer] = s
        n.register(s) { frames -> onReply(peer, frames) }
        return s
    }

    private fun request(j: Job, now: Long) {
        seq++
        j.requestId = "fetch-${n.id}-$seq"
        j.deadline = now + FETCH_REQUEST_TIMEOUT_MS * 1_000_000
        val header = JsonObject("v" to 1, "type" to "FETCH", "id" to j.requestId, "model_id" to j.modelId,
            "offset" to j.data.size().toLong(), "length" to n.cfg.fetchChunkBytes.toLong())
        j.body = listOf(ByteArray(0)) + Wire.encode(header)
        send(j)
    }

    private fun send(j: Job) {
        val s = socket(j.peers[0]) ?: return
        val body = j.body ?: return
        val ok = try { s.trySend(body) } catch (e: ZmqException) { false }
        if (ok) j.body = null
    }

    private fun onReply(peer: String, frames: List<ByteArray>) {
        val j = current
        val (h, blobs) = try {
            Wire.decode(Wire.splitEnvelope(frames).body, DecodeOptions(allowEmptyId = true)).let { Pair(it.header, it.blobs) }
        } catch (e: ProtocolError) {
            return
        }
        if (j == null || Wire.headerId(h) != j.requestId || j.peers[0] != peer) return // a late answer
        val now = System.nanoTime()
        if (h.str("status") != "OK" || blobs.size != 1) {
            val code = h.str("code") ?: "bad reply"
            giveUp(j, ("$code: ${h.str("message") ?: ""}").take(200), now)
            return
        }
        val size = h.int("size")
        val offset = h.int("offset")
        if (size != j.size || offset == null || offset != j.data.size().toLong()) {
            giveUp(j, "its copy has size $size", now)
            return
        }
        chunksFetched++
        j.data.write(blobs[0])
        if (j.data.size() < j.size) {
            if (blobs[0].isEmpty()) {
                giveUp(j, "empty chunk before the end", now)
                return
            }
            request(j, now)
            return
        }
        val bytes = j.data.toByteArray()
        if (bytes.size.toLong() != j.size || sha256Hex(bytes) != j.sha) {
            giveUp(j, "its copy fails the checksum", now)
            return
        }
        try {
            n.registry.storeRepaired(j.modelId, bytes)
        } catch (e: Exception) {
            giveUp(j, e.message ?: e.toString(), now)
            return
        }
        filesFetched++
        n.log.info("zmqnode.repair", "node ${n.id}: repaired model ${j.modelId} (${j.size} bytes) from $peer")
        wanted.remove(j.modelId)
        notBefore.remove(j.modelId)
        order.remove(j.modelId)
        current = null
    }

    private fun giveUp(j: Job, reason: String, now: Long) {
        val peer = j.peers[0]
        j.peers = j.peers.drop(1)
        j.failures.add("$peer: $reason")
        j.data = ByteArrayOutputStream()
        if (j.peers.isNotEmpty()) {
            request(j, now)
            return
        }
        n.log.warning("zmqnode.repair", "node ${n.id}: could not fetch model ${j.modelId} from any peer " +
            "(${j.failures.joinToString("; ")}); retrying in ${FETCH_RETRY_PAUSE_MS / 1000} s")
        notBefore[j.modelId] = now + FETCH_RETRY_PAUSE_MS * 1_000_000
        order.remove(j.modelId)
        order.add(j.modelId)
        current = null
    }

    fun close() {
        for (s in sockets.values) {
            n.unregister(s)
            s.close()
        }
        sockets.clear()
    }
}
