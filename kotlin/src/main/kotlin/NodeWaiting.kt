// Requests parked on this node until a condition holds or their deadline
// passes, reads batched into one read index per loop turn (waiting.py,
// go/node/waiting.go), and the entries this node proposed. Loop thread only.
package zmqnode.node

import java.util.PriorityQueue

/** One parked request: its callback when its condition holds, else onTimeout at [deadlineNanos]; exactly one runs. */
class Waiter internal constructor(val deadlineNanos: Long, internal var callback: (() -> Unit)?,
                                  internal var onTimeout: (() -> Unit)?, internal val seq: Long) {
    var done = false
        internal set
}

/**
 * A read index request or its answer can be lost (a dropped message, a partition that heals, a
 * leader change), and Raft does not resend it: the reads still waiting after this long are asked
 * for again (etcd's readIndexRetryTime; waiting.py READ_INDEX_RETRY_S). Asking again is always
 * safe: a later read index is at least as new.
 */
const val READ_INDEX_RETRY_NANOS = 500_000_000L

class Waiters(private val readTag: String, private val onError: (Throwable) -> Unit) {
    var now: () -> Long = { System.nanoTime() }
    private var seq = 0L
    var parked = 0
        private set
    private val deadlines = PriorityQueue<Waiter>(Comparator { a, b ->
        if (a.deadlineNanos != b.deadlineNanos) java.lang.Long.compare(a.deadlineNanos, b.deadlineNanos)
        else java.lang.Long.compare(a.seq, b.seq)
    })
    private var readBatch = ArrayList<Waiter>()
    private val reads = LinkedHashMap<String, List<Waiter>>()
    private val readSent = LinkedHashMap<String, Long>() // ctx -> when its read index was asked (now())
    private var applied = ArrayList<Pair<Long, Waiter>>()

    fun park(timeoutMillis: Long, callback: () -> Unit, onTimeout: () -> Unit): Waiter {
        seq++
        val w = Waiter(now() + timeoutMillis * 1_000_000, callback, onTimeout, seq)
        deadlines.add(w)
        parked++
        return w
    }

    /** Marks w done once; its callbacks, or nulls if it was done. */
    fun settle(w: Waiter?): Pair<(() -> Unit)?, (() -> Unit)?> {
        if (w == null || w.done) return Pair(null, null)
        w.done = true
        parked--
        val r = Pair(w.callback, w.onTimeout)
        w.callback = null
        w.onTimeout = null
        return r
    }

    private fun guard(f: (() -> Unit)?) {
        if (f == null) return
        try {
            f()
        } catch (e: Exception) {
            onError(e)
        }
    }

    fun fire(w: Waiter) = guard(settle(w).first)

    /** Runs callback once this node has applied everything committed now (a linearizable read). */
    fun afterReadIndex(timeoutMillis: Long, callback: () -> Unit, onTimeout: () -> Unit) {
        readBatch.add(park(timeoutMillis, callback, onTimeout))
    }

    /**
     * One read index for every read parked since the last call, and again for the reads whose read
     * index has not come back within [READ_INDEX_RETRY_NANOS]; with no leader they wait.
     */
    fun issueReads(readIndex: (String) -> Boolean) {
        val now = now()
        var retried = false
        val sent = readSent.entries.iterator()
        while (sent.hasNext()) {
            val (ctx, at) = sent.next()
            if (now - at < READ_INDEX_RETRY_NANOS) continue
            sent.remove()
            for (w in reads.remove(ctx) ?: emptyList<Waiter>()) {
                if (!w.done) {
                    readBatch.add(w)
                    retried = true
                }
            }
        }
        if (retried) readBatch.sortBy { it.seq } // in the order they were parked
        if (readBatch.isEmpty()) return
        seq++
        val ctx = "$readTag/$seq"
        if (readIndex(ctx)) {
            reads[ctx] = readBatch
            readSent[ctx] = now
            readBatch = ArrayList()
            return
        }
        readBatch.removeAll { it.done }
    }

    fun readIndexReady(ctx: String, index: Long, appliedIndex: Long) {
        readSent.remove(ctx)
        val batch = reads.remove(ctx) ?: return
        for (w in batch) whenApplied(index, w, appliedIndex)
    }

    fun whenApplied(index: Long, w: Waiter, appliedIndex: Long) {
        if (appliedIndex >= index) fire(w) else applied.add(Pair(index, w))
    }

    fun applied(appliedIndex: Long) {
        if (applied.isEmpty()) return
        val fire = applied.filter { it.first <= appliedIndex }.map { it.second }
        if (fire.isEmpty()) return
        applied = ArrayList(applied.filter { it.first > appliedIndex })
        for (w in fire) fire(w)
    }

    /** Times out every waiter whose deadline passed; true if any did. */
    fun expire(nowNanos: Long = now()): Boolean {
        var expired = false
        while (true) {
            val w = deadlines.peek() ?: break
            if (w.deadlineNanos - nowNanos > 0) break
            deadlines.poll()
            if (w.done) continue
            expired = true
            guard(settle(w).second)
        }
        if (deadlines.size > 2 * parked + 1024) deadlines.removeIf { it.done }
        if (expired) {
            val settled = reads.entries.filter { e -> e.value.all { it.done } }.map { it.key }
            for (ctx in settled) {
                reads.remove(ctx)
                readSent.remove(ctx)
            }
            applied.removeAll { it.second.done }
        }
        return expired
    }

    /** Read index requests still awaited (ctx with its reads, ctx with its send time): bounded, for tests. */
    fun readsHeld(): Int = reads.size + readSent.size
}

/** The entries this node proposed, by index, until applied. */
class Proposals {
    private class Proposal(val term: Long, val size: Long, val done: (Boolean) -> Unit, val at: Long)
    private val pending = HashMap<Long, Proposal>()
    var uncommittedBytes = 0L
        private set

    fun add(index: Long, term: Long, size: Long, done: (Boolean) -> Unit) {
        uncommittedBytes += size
        pending[index] = Proposal(term, size, done, System.nanoTime())
    }

    /** Answers the proposer of entry (index, term); how many seconds ago it was proposed, null if not ours. */
    fun applied(index: Long, term: Long): Double? {
        val p = pending.remove(index) ?: return null
        uncommittedBytes -= p.size
        p.done(p.term == term)
        return (System.nanoTime() - p.at) / 1e9
    }

    /** Fails the proposals at or below appliedIndex never applied themselves (a snapshot passed over them). */
    fun passedOver(appliedIndex: Long) {
        val gone = pending.keys.filter { it <= appliedIndex }.sorted()
        for (i in gone) {
            val p = pending.remove(i)!!
            uncommittedBytes -= p.size
            p.done(false)
        }
    }

    /** Fails every pending proposal (leadership lost while they waited is the caller's to tell). */
    val size: Int get() = pending.size
}
