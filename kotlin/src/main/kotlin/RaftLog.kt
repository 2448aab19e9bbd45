// The in-memory Raft log and the leader's progress per follower (ports of
// go/raft/log.go and progress.go).
package zmqnode.raft

/**
 * One node's Raft log: snapshot + entries + cursors (Python's RaftLog).
 * entries[k] holds index snapshot.index + 1 + k; always
 * snapshot.index <= applied <= committed and stable <= lastIndex().
 * Throws [InvariantError] rather than overwrite a committed entry, leave a
 * gap, or commit past the last index.
 */
internal class RaftLog(snapshot: Snapshot, entries: List<Entry>) {
    var snapshot: Snapshot = snapshot
    var entries: List<Entry> = ArrayList(entries)
    var stable: Long
    var committed: Long
    var applied: Long
    /** A snapshot received from the leader that the caller has not persisted yet. */
    var pendingSnapshot: Snapshot? = null
    /** Mutation vote_ignores_log: every candidate's log counts as up to date. */
    var mutVoteIgnoresLog = false

    init {
        for ((offset, e) in this.entries.withIndex()) {
            if (e.index != snapshot.index + 1 + offset) {
                invariant("recovered log is not contiguous after snapshot ${snapshot.index}: entry $offset has index ${e.index}")
            }
        }
        stable = lastIndex()
        committed = snapshot.index
        applied = snapshot.index
    }

    fun firstIndex(): Long = snapshot.index + 1
    fun lastIndex(): Long = snapshot.index + entries.size
    fun lastTerm(): Long = if (entries.isNotEmpty()) entries[entries.size - 1].term else snapshot.term

    /** The term of the entry at index; null if compacted away or absent. */
    fun termAt(index: Long): Long? {
        if (index < snapshot.index) return null
        val offset = index - snapshot.index
        if (offset == 0L) return snapshot.term
        if (offset > entries.size) return null
        return entries[(offset - 1).toInt()].term
    }

    fun matchTerm(index: Long, term: Long): Boolean = termAt(index) == term

    /** Entries from index on, at least one, at most maxBytes of data (each costs its data plus 32). */
    fun entriesFrom(index: Long, maxBytes: Int): List<Entry> {
        if (index <= snapshot.index) invariant("entry $index is compacted (snapshot ${snapshot.index})")
        val start = index - snapshot.index - 1
        if (start >= entries.size) return emptyList()
        val batch = ArrayList<Entry>()
        var size = 0L
        for (i in start.toInt() until entries.size) {
            val e = entries[i]
            size += e.data.size + 32
            if (batch.isNotEmpty() && size > maxBytes) break
            batch.add(e)
        }
        return batch
    }

    /** Raft §5.4.1: is a candidate's log at least as up-to-date as ours? */
    fun isUpToDate(lastIndex: Long, lastTerm: Long): Boolean {
        if (mutVoteIgnoresLog) return true // mutation vote_ignores_log: BUG, no §5.4.1 check
        return lastTerm > lastTerm() || (lastTerm == lastTerm() && lastIndex >= lastIndex())
    }

    /** The largest index <= index whose term is <= term, with its term (thesis §5.3 optimization). */
    fun findConflictByTerm(index0: Long, term: Long): Pair<Long, Long> {
        var index = index0
        if (index > lastIndex()) return Pair(index, 0L)
        while (true) {
            val t = termAt(index) ?: return Pair(index, 0L)
            if (t <= term) return Pair(index, t)
            if (index == 0L) return Pair(0L, 0L)
            index--
        }
    }

    fun unstableEntries(): List<Entry> {
        if (stable < snapshot.index) return ArrayList(entries)
        val start = stable - snapshot.index
        if (start < entries.size) return ArrayList(entries.subList(start.toInt(), entries.size))
        return emptyList()
    }

    fun committedToApply(): List<Entry> {
        if (committed <= applied) return emptyList()
        val lo = (applied - snapshot.index).toInt()
        val hi = (committed - snapshot.index).toInt()
        return ArrayList(entries.subList(lo, hi))
    }

    /** Appends, replacing any suffix from entries[0].index on. */
    fun append(new: List<Entry>) {
        if (new.isEmpty()) return
        val first = new[0].index
        if (first <= committed) invariant("refusing to overwrite committed entry $first (commit $committed)")
        if (first > lastIndex() + 1) invariant("gap: appending $first after ${lastIndex()}")
        // A fresh list: entries handed out earlier (Ready) must not change.
        val merged = ArrayList<Entry>(entries.subList(0, (first - snapshot.index - 1).toInt()))
        merged.addAll(new)
        entries = merged
        if (first - 1 < stable) stable = first - 1
    }

    /**
     * AppendEntries receiver rules 2-4 (Figure 2): the index of the last new
     * entry, or null when the log does not contain prevIndex at prevTerm.
     */
    fun maybeAppend(prevIndex: Long, prevTerm: Long, new: List<Entry>): Long? {
        if (!matchTerm(prevIndex, prevTerm)) return null
        for ((pos, e) in new.withIndex()) {
            if (!matchTerm(e.index, e.term)) {
                append(new.subList(pos, new.size))
                break
            }
        }
        return prevIndex + new.size
    }

    fun commitTo(index: Long): Boolean {
        if (index > committed) {
            if (index > lastIndex()) invariant("commit $index beyond last index ${lastIndex()}")
            committed = index
            return true
        }
        return false
    }

    fun stableTo(index: Long, term: Long) {
        if (matchTerm(index, term) && index > stable) stable = index
    }

    /** Replaces the whole log with a snapshot received from the leader. */
    fun restore(snap: Snapshot) {
        snapshot = snap
        entries = emptyList()
        stable = snap.index
        committed = snap.index
        applied = snap.index
        pendingSnapshot = snap
    }

    /** Drops entries covered by a snapshot the local state machine took. */
    fun compact(snap: Snapshot) {
        val drop = minOf(snap.index - snapshot.index, entries.size.toLong()).toInt()
        entries = ArrayList(entries.subList(drop, entries.size))
        snapshot = snap
    }
}

/** How the leader sends to one follower (etcd-io/raft's tracker states); [value] is Python's. */
enum class ProgressState(val value: String) {
    PROBE("probe"), REPLICATE("replicate"), SNAPSHOT("snapshot");

    override fun toString() = value
}

/** Heartbeat replies to wait for a lost InstallSnapshot before sending it again. */
const val SNAPSHOT_RETRY_HEARTBEATS = 10

/** The leader's view of one follower. */
internal class Progress(var next: Long) {
    var match = 0L
    var state = ProgressState.PROBE
    var probeSent = false
    var pendingSnapshot = 0L
    var snapshotWait = 0
    /** Last index of each unacknowledged append. */
    val inflight = java.util.ArrayDeque<Long>()
    /** Answered since the last check-quorum round. */
    var recentActive = false
    /** Highest heartbeat sequence number it echoed. */
    var readAck = 0L

    fun isPaused(maxInflight: Int): Boolean = when (state) {
        ProgressState.PROBE -> probeSent
        ProgressState.REPLICATE -> inflight.size >= maxInflight
        ProgressState.SNAPSHOT -> true
    }

    fun becomeProbe() {
        next = if (state == ProgressState.SNAPSHOT) maxOf(match + 1, pendingSnapshot + 1) else match + 1
        state = ProgressState.PROBE
        probeSent = false
        pendingSnapshot = 0
        inflight.clear()
    }

    fun becomeReplicate() {
        state = ProgressState.REPLICATE
        next = match + 1
        probeSent = false
        pendingSnapshot = 0
        inflight.clear()
    }

    fun becomeSnapshot(snapshotIndex: Long) {
        state = ProgressState.SNAPSHOT
        pendingSnapshot = snapshotIndex
        snapshotWait = 0
        inflight.clear()
    }

    /** Records an append just sent whose last entry is lastIndex. */
    fun sent(lastIndex: Long, entryCount: Int) {
        if (state == ProgressState.REPLICATE) {
            if (entryCount > 0) {
                next = lastIndex + 1
                inflight.addLast(lastIndex)
            }
        } else {
            probeSent = true
        }
    }

    /** The follower confirmed its log matches ours through index. */
    fun maybeUpdate(index: Long): Boolean {
        val updated = index > match
        if (updated) {
            match = index
            probeSent = false
        }
        next = maxOf(next, index + 1)
        while (inflight.isNotEmpty() && inflight.peekFirst() <= index) inflight.removeFirst()
        return updated
    }

    /**
     * An append at prevLogIndex `rejected` was refused: back next off; false
     * for a stale rejection. match goes down only when the follower lost
     * entries it had confirmed (go/raft/progress.go explains why that is safe).
     */
    fun maybeDecreaseTo(rejected: Long, matchHint: Long): Boolean {
        if (state == ProgressState.REPLICATE) {
            val lost = rejected == match && match == next - 1 && matchHint < match
            if (rejected <= match && !lost) return false
            if (lost) {
                match = 0
                becomeProbe()
                next = maxOf(1L, minOf(rejected, matchHint + 1))
                return true
            }
            next = match + 1
            return true
        }
        if (next - 1 != rejected) return false
        if (matchHint < match) match = 0
        next = maxOf(minOf(rejected, matchHint + 1), match + 1)
        probeSent = false
        return true
    }
}
