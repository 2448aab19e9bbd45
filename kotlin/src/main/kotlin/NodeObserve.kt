// What the node counts and tells (observe.py, go/node/observe.go): request
// and Raft counters, recent rates and latency, the numbered recent events.
package zmqnode.node

import zmqnode.raft.Message
import zmqnode.wire.JsonObject

const val MAX_EVENTS = 20
const val FEED_SECONDS = 0.2

val LATENCY_BUCKETS = doubleArrayOf(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

fun round3(x: Double): Double = Math.round(x * 1000.0) / 1000.0

fun nowSeconds(): Double = System.currentTimeMillis() / 1000.0

/** Requests/s and a latency quantile over the last 5 s in one-second slots (metrics.py RecentLatency). */
class Recent {
    private val slots = HashMap<Long, LongArray>()

    @Synchronized fun observe(seconds: Double, nowMillis: Long = System.currentTimeMillis()) {
        val sec = nowMillis / 1000
        val slot = slots.getOrPut(sec) {
            slots.keys.removeIf { it <= sec - 5 }
            LongArray(LATENCY_BUCKETS.size + 1)
        }
        var i = 0
        while (i < LATENCY_BUCKETS.size && seconds > LATENCY_BUCKETS[i]) i++
        slot[i]++
    }

    private fun window(nowMillis: Long): List<LongArray> {
        val sec = nowMillis / 1000
        return slots.filter { sec - 5 < it.key && it.key <= sec }.values.toList()
    }

    @Synchronized fun rate(nowMillis: Long = System.currentTimeMillis()): Double {
        val w = window(nowMillis)
        if (w.isEmpty()) return 0.0
        val total = w.map { it.sum() }.sum()
        val frac = (nowMillis % 1000) / 1000.0
        return total / Math.max(4 + frac, 1.0)
    }

    /** The bucket bound below which q of the window lies; null without observations; +Inf past the last bound. */
    @Synchronized fun quantile(q: Double, nowMillis: Long = System.currentTimeMillis()): Double? {
        val counts = LongArray(LATENCY_BUCKETS.size + 1)
        var total = 0L
        for (b in window(nowMillis)) for (i in b.indices) {
            counts[i] += b[i]
            total += b[i]
        }
        if (total == 0L) return null
        val rank = q * total
        var running = 0L
        for (i in counts.indices) {
            running += counts[i]
            if (running >= rank) return if (i < LATENCY_BUCKETS.size) LATENCY_BUCKETS[i] else Double.POSITIVE_INFINITY
        }
        return Double.POSITIVE_INFINITY
    }
}

/** The node's counters; hooks feed a metrics registry. Safe from any thread. */
class NodeStats {
    val requests = HashMap<Pair<String, String>, Long>()
    val events = HashMap<String, Long>()
    val sent = HashMap<String, Long>()
    val received = HashMap<String, Long>()
    val recent = Recent()
    val recentPredict = Recent()
    var onRequest: ((String, String, Double) -> Unit)? = null
    var onEvent: ((String) -> Unit)? = null
    var onRaft: ((Boolean, String) -> Unit)? = null
    var onCommit: ((Double) -> Unit)? = null
    var onBatch: ((Int) -> Unit)? = null

    fun requestDone(kind: String, status: String, seconds: Double) {
        synchronized(this) { requests[Pair(kind, status)] = (requests[Pair(kind, status)] ?: 0) + 1 }
        recent.observe(seconds)
        if (kind == "PREDICT") recentPredict.observe(seconds)
        onRequest?.invoke(kind, status, seconds)
    }

    fun count(kind: String) {
        synchronized(this) { events[kind] = (events[kind] ?: 0) + 1 }
        onEvent?.invoke(kind)
    }

    fun raftSent(m: Message) {
        synchronized(this) { sent[m.type.value] = (sent[m.type.value] ?: 0) + 1 }
        onRaft?.invoke(true, m.type.value)
    }

    fun raftReceived(m: Message) {
        synchronized(this) { received[m.type.value] = (received[m.type.value] ?: 0) + 1 }
        onRaft?.invoke(false, m.type.value)
    }
}

/** The node's recent events, numbered (observe.py Events). */
class NodeEvents {
    private var seq = 0L
    val recent = ArrayList<JsonObject>()

    @Synchronized fun add(kind: String, text: String) {
        seq++
        recent.add(JsonObject("seq" to seq, "time" to round3(nowSeconds()), "kind" to kind, "text" to text))
        while (recent.size > MAX_EVENTS) recent.removeAt(0)
    }

    @Synchronized fun copy(): List<JsonObject> = ArrayList(recent)
}
