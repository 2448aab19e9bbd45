// The Python node's zmqnode/metrics.py (a port of go/metrics): counters,
// gauges and histograms with labels, rendered in the Prometheus text format
// 0.0.4 byte for byte as metrics.Registry.render does (family order, label
// set order, number formatting, the _total suffix of counters).
//
// Everything is safe for concurrent use: the node's loop updates, the
// monitor's thread renders (one lock per registry).
package zmqnode.metrics

import java.math.BigDecimal
import java.math.RoundingMode
import zmqnode.pyfmt.Pyfmt

/** Bucket sets of metrics.py. */
object Buckets {
    /** Seconds: fine at the low end (a prediction takes ~0.1 ms), up to a minute. The default. */
    val LATENCY = doubleArrayOf(
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0
    )
    /** Counts of things (requests per forward pass). */
    val SIZE = doubleArrayOf(1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0, 65536.0)
    /** Seconds of long jobs (a training). */
    val DURATION = doubleArrayOf(0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
}

/**
 * A sample value as metrics.py's _number: "+Inf" for +inf, an integral value
 * as the integer (exactly, however large), anything else as Python's repr of
 * the float ("0.1", "1e-07", "-inf", "nan").
 */
fun metricNumber(v: Double): String = when {
    v == Double.POSITIVE_INFINITY -> "+Inf"
    v.isNaN() || v == Double.NEGATIVE_INFINITY -> Pyfmt.floatRepr(v)
    v == Math.floor(v) -> if (Math.abs(v) < 9007199254740992.0) v.toLong().toString() else BigDecimal(v).toBigInteger().toString()
    else -> Pyfmt.floatRepr(v)
}

/** Python's round(x, digits): the decimal nearest to x's exact binary value, halves to even. */
fun pyRound(x: Double, digits: Int): Double {
    if (x.isNaN() || x.isInfinite()) return x
    return BigDecimal(x).setScale(digits, RoundingMode.HALF_EVEN).toDouble()
}

/** The metrics of one node, rendered in the order they were made. */
class Registry(val prefix: String) {
    internal val lock = Any()
    private val families = ArrayList<Family>()

    /**
     * The text exposition of every metric (format 0.0.4): each family's HELP
     * and TYPE lines, then its samples, label sets in the order they first
     * appeared; "\n" for an empty registry (Python: "\n".join([]) + "\n").
     */
    fun render(): ByteArray = synchronized(lock) {
        val b = StringBuilder()
        for (f in families) f.render(b)
        if (b.length == 0) "\n".toByteArray(Charsets.UTF_8) else b.toString().toByteArray(Charsets.UTF_8)
    }

    private fun <T : Family> add(f: T): T {
        synchronized(lock) { families.add(f) }
        return f
    }

    /** A counter family; name is without the prefix and without _total. */
    fun counter(name: String, help: String, vararg labels: String): Counter = add(Counter(this, prefix + name, help, labels.toList()))

    fun gauge(name: String, help: String, vararg labels: String): Gauge = add(Gauge(this, prefix + name, help, labels.toList()))

    /** A histogram family; bounds null means Buckets.LATENCY. */
    fun histogram(name: String, help: String, bounds: DoubleArray?, vararg labels: String): Histogram =
        add(Histogram(this, prefix + name, help, (bounds ?: Buckets.LATENCY).copyOf(), labels.toList()))
}

/** What every family has: a name, help text, label names and the label sets seen, in order. */
abstract class Family internal constructor(
    internal val registry: Registry,
    val name: String,
    val help: String,
    val labels: List<String>
) {
    /** Keys of the label sets, first use first (LinkedHashMap: insertion order). */
    internal val sets = LinkedHashMap<List<String>, Any>()

    /** Values padded or cut to the number of label names: a mismatch cannot break /metrics. */
    internal fun key(values: Array<out String>): List<String> {
        if (values.size == labels.size) return values.toList()
        return List(labels.size) { i -> if (i < values.size) values[i] else "" }
    }

    internal fun writeHead(b: StringBuilder, name: String, kind: String) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n')
        b.append("# TYPE ").append(name).append(' ').append(kind).append('\n')
    }

    internal fun labelsText(values: List<String>, extra: String?): String {
        val parts = ArrayList<String>()
        for (i in labels.indices) parts.add(labels[i] + "=\"" + escape(values[i]) + "\"")
        if (extra != null) parts.add(extra)
        return if (parts.isEmpty()) "" else parts.joinToString(",", "{", "}")
    }

    internal abstract fun render(b: StringBuilder)

    private fun escape(v: String): String = v.replace("\\", "\\\\").replace("\n", "\\n").replace("\"", "\\\"")
}

private class Cell(var value: Double)

/** A value that only grows, rendered as <name>_total. */
open class Counter internal constructor(registry: Registry, name: String, help: String, labels: List<String>) :
    Family(registry, name, help, labels) {

    fun inc(vararg labelValues: String) = add(1.0, *labelValues)

    fun add(v: Double, vararg labelValues: String) = synchronized(registry.lock) {
        val cell = sets.getOrPut(key(labelValues)) { Cell(0.0) } as Cell
        cell.value += v
    }

    /** Sets the value: a total counted by its owner and copied here (observe.py's refresh). */
    fun set(v: Double, vararg labelValues: String) = synchronized(registry.lock) {
        val cell = sets.getOrPut(key(labelValues)) { Cell(0.0) } as Cell
        cell.value = v
    }

    fun value(vararg labelValues: String): Double = synchronized(registry.lock) {
        (sets[key(labelValues)] as Cell?)?.value ?: 0.0
    }

    internal open val kind = "counter"
    internal open val sampleName get() = "${name}_total" // text format 0.0.4: a family is named as its samples

    override fun render(b: StringBuilder) {
        val n = sampleName
        writeHead(b, n, kind)
        for ((k, cell) in sets) b.append(n).append(labelsText(k, null)).append(' ').append(metricNumber((cell as Cell).value)).append('\n')
    }
}

/** A level read from the node's state, set (or added to). */
class Gauge internal constructor(registry: Registry, name: String, help: String, labels: List<String>) :
    Counter(registry, name, help, labels) {
    override val kind = "gauge"
    override val sampleName get() = name
}

internal class BucketCounts(n: Int) {
    val counts = LongArray(n + 1) // one per bound, then one above every bound (+Inf)
    var sum = 0.0
    var count = 0L

    fun observe(bounds: DoubleArray, v: Double) {
        counts[bisectLeft(bounds, v)]++
        sum += v
        count++
    }
}

/** Python's bisect.bisect_left: NaN compares false with everything, so it lands in the first bucket. */
internal fun bisectLeft(bounds: DoubleArray, v: Double): Int {
    var lo = 0
    var hi = bounds.size
    while (lo < hi) {
        val mid = (lo + hi) ushr 1
        if (bounds[mid] < v) lo = mid + 1 else hi = mid
    }
    return lo
}

/** Observations counted into fixed buckets, rendered cumulatively as _bucket{le=...}, _sum, _count. */
class Histogram internal constructor(
    registry: Registry,
    name: String,
    help: String,
    val bounds: DoubleArray,
    labels: List<String>
) : Family(registry, name, help, labels) {

    fun observe(v: Double, vararg labelValues: String) = synchronized(registry.lock) {
        (sets.getOrPut(key(labelValues)) { BucketCounts(bounds.size) } as BucketCounts).observe(bounds, v)
    }

    fun count(vararg labelValues: String): Long = synchronized(registry.lock) {
        (sets[key(labelValues)] as BucketCounts?)?.count ?: 0L
    }

    override fun render(b: StringBuilder) {
        writeHead(b, name, "histogram")
        for ((k, v) in sets) {
            val s = v as BucketCounts
            var running = 0L
            for (i in s.counts.indices) {
                running += s.counts[i]
                val bound = if (i < bounds.size) bounds[i] else Double.POSITIVE_INFINITY
                b.append(name).append("_bucket").append(labelsText(k, "le=\"" + metricNumber(bound) + "\""))
                    .append(' ').append(running).append('\n')
            }
            b.append(name).append("_sum").append(labelsText(k, null)).append(' ').append(metricNumber(s.sum)).append('\n')
            b.append(name).append("_count").append(labelsText(k, null)).append(' ').append(s.count).append('\n')
        }
    }
}

private val processStart = System.nanoTime()

/**
 * metrics.py's RecentLatency: requests per second and latency quantiles over
 * the last [seconds], in one-second slots of Buckets.LATENCY, for the status
 * feed's requests_per_s and p99_ms (PROTOCOL.md §9b).
 */
class Recent(val seconds: Int) {
    /** Monotonic seconds (since the process started by default). */
    @Volatile var clock: () -> Double = { (System.nanoTime() - processStart) / 1e9 }
    private val slots = HashMap<Long, BucketCounts>()

    @Synchronized fun observe(latency: Double) {
        val second = Math.floor(clock()).toLong()
        var slot = slots[second]
        if (slot == null) {
            slot = BucketCounts(Buckets.LATENCY.size)
            slots[second] = slot
            slots.keys.removeAll { it <= second - seconds }
        }
        slot.observe(Buckets.LATENCY, latency)
    }

    private fun window(now: Double): List<BucketCounts> {
        val sec = Math.floor(now).toLong()
        return slots.filter { (s, _) -> sec - seconds < s && s <= sec }.values.toList()
    }

    /** Requests per second over the window (a partial current second included). */
    @Synchronized fun rate(): Double {
        val now = clock()
        val w = window(now)
        if (w.isEmpty()) return 0.0
        val elapsed = (seconds - 1) + (now % 1.0)
        return w.sumByDouble { it.count.toDouble() } / Math.max(elapsed, 1.0)
    }

    /** The bucket bound below which a fraction q of the window's latencies lie (+Inf above the last); null when empty. */
    @Synchronized fun quantile(q: Double): Double? {
        val w = window(clock())
        val total = w.sumByDouble { it.count.toDouble() }
        if (total == 0.0) return null
        val rank = q * total
        var running = 0L
        for (i in 0..Buckets.LATENCY.size) {
            for (b in w) running += b.counts[i]
            if (running.toDouble() >= rank) return if (i == Buckets.LATENCY.size) Double.POSITIVE_INFINITY else Buckets.LATENCY[i]
        }
        return Double.POSITIVE_INFINITY
    }
}
