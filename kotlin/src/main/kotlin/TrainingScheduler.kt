// The chunk scheduler (go/training/scheduler.go, zmqnode/training/scheduler.py):
// which trainer trains which chunk and when a chunk moves. Pure: the time
// comes in as `now`, the trainers as a Trainers snapshot, sending through a
// Dispatch.
package zmqnode.training

import java.math.BigDecimal
import java.math.RoundingMode

/** The scheduler's constants, as zmqnode/training/scheduler.py. */
object SchedulerConstants {
    /** A chunk unanswered after this long (or 4x the slowest answer of the round, if larger) moves. */
    const val MIN_CHUNK_TIMEOUT = 5.0
    /** How long a round's first answer may take. */
    const val FIRST_ANSWER_TIMEOUT = 60.0
    /** A peer heard from this recently is an available trainer. */
    const val PEER_FRESH_SECONDS = 1.0
    /** A peer silent for longer than this is down (its chunks move at once). */
    const val PEER_DOWN_SECONDS = 2.0
    /** Rows below which a chunk is not split off (ml.MinRowsPerChunk). */
    const val MIN_ROWS_PER_CHUNK = 32
    internal const val NEVER = -1e9
}

/** Sends chunk to trainer, with its rows if withData; false if that trainer cannot take it now. */
interface Dispatch {
    fun send(chunk: Int, trainer: String, withData: Boolean): Boolean
}

/** A Dispatch from a lambda (Kotlin 1.3 has no fun interfaces). */
fun dispatchOf(f: (Int, String, Boolean) -> Boolean): Dispatch = object : Dispatch {
    override fun send(chunk: Int, trainer: String, withData: Boolean) = f(chunk, trainer, withData)
}

/** Python's f"{x:.{digits}f}": the exact binary value, rounded half to even (not String.format's HALF_UP, not the locale's comma). */
fun pyFixed(x: Double, digits: Int): String {
    if (x.isNaN()) return "nan"
    if (x.isInfinite()) return if (x > 0) "inf" else "-inf"
    val s = BigDecimal(x).setScale(digits, RoundingMode.HALF_EVEN).toPlainString()
    // Python keeps the sign of a negative value rounded to zero ("-0.0").
    return if ((x < 0 || (x == 0.0 && 1.0 / x < 0)) && !s.startsWith("-")) "-$s" else s
}

/** scheduler.chunk_count: max(1, min(trainers, rows // 32)). */
fun chunkCount(rows: Int, trainers: Int): Int =
    maxOf(1, minOf(trainers, rows / SchedulerConstants.MIN_ROWS_PER_CHUNK))

/**
 * What the coordinator knows of the trainers at one instant: [available] in
 * the order to try them (this node's own first), [down] (trainer -> why it
 * cannot answer), [restartedAt] (trainer -> when its process last started; a
 * job sent before was lost).
 */
class Trainers(
    val available: List<String> = emptyList(),
    val down: Map<String, String> = emptyMap(),
    val restartedAt: Map<String, Double> = emptyMap()
) {
    /** Why trainer cannot answer a job sent at sentAt ("" if it may). */
    fun whyDown(trainer: String, sentAt: Double): String {
        if (trainer == "") return ""
        val why = down[trainer]
        if (why != null && why != "") return why
        val at = restartedAt[trainer]
        if (at != null && sentAt < at) return "exited and was restarted"
        return ""
    }

    fun has(trainer: String): Boolean = available.contains(trainer)

    companion object {
        /** Trainers.survey: the snapshot at now for node own. */
        fun survey(
            now: Double, own: String, ownEnabled: Boolean, ownExited: Boolean, ownStarted: Double,
            peers: List<String>, lastHeard: Map<String, Double>
        ): Trainers {
            val available = ArrayList<String>()
            val down = LinkedHashMap<String, String>()
            if (ownEnabled && !ownExited) available.add(own)
            if (ownExited) down[own] = "exited"
            for (peer in peers) {
                val heard = lastHeard[peer] ?: SchedulerConstants.NEVER
                val silent = now - heard
                if (silent < SchedulerConstants.PEER_FRESH_SECONDS) {
                    available.add(peer)
                } else if (silent > SchedulerConstants.PEER_DOWN_SECONDS) {
                    down[peer] = "is down (node silent for ${pyFixed(silent, 1)}s)"
                }
            }
            return Trainers(available, down, mapOf(own to ownStarted))
        }
    }
}

/** Chunk [chunk] of the current round, sent to [trainer] at [sentAt] ("" and -Inf while no trainer took it). */
class Assignment(val chunk: Int, val trainer: String, val sentAt: Double, val dataSent: Boolean)

/**
 * The scheduling state of one training job (scheduler.py's ChunkScheduler).
 * Methods that may move work return the warnings they added (also kept in [warnings]).
 */
class ChunkScheduler(trainers: List<String>, val started: Double, val timeout: Double) {
    var trainers: List<String> = ArrayList(trainers)
        private set
    var nChunks = 0
        private set
    var round = 0
        private set
    /** chunk -> its assignment, for the chunks of this round not answered yet. */
    val pending = HashMap<Int, Assignment>()
    /** trainer -> the chunks whose rows it has cached. */
    val hasData = HashMap<String, MutableSet<Int>>()
    val warnings = ArrayList<String>()
    var roundStarted = 0.0
        private set
    var slowest = 0.0
        private set

    /** The data was split into n chunks; the first n trainers take part. */
    fun setChunks(n: Int) {
        nChunks = n
        if (trainers.size > n) trainers = ArrayList(trainers.subList(0, n))
    }

    /**
     * Sends every chunk of round [round]: chunk c to the job's trainer c mod n
     * first, else to any available one. A job's trainer no longer available is
     * dropped from the job, with a warning.
     */
    fun startRound(now: Double, t: Trainers, dispatch: Dispatch): List<String> {
        pending.clear()
        roundStarted = now
        slowest = 0.0
        val added = ArrayList<String>()
        var kept = ArrayList<String>()
        for (tr in trainers) {
            if (t.has(tr)) {
                kept.add(tr)
                continue
            }
            val why = t.whyDown(tr, Double.POSITIVE_INFINITY).ifEmpty { "is unreachable" }
            added.add("trainer $tr $why: from round $round its chunks go to the others")
        }
        if (kept.isEmpty()) kept = ArrayList(t.available)
        trainers = kept
        for (chunk in 0 until nChunks) {
            val candidates = ArrayList<String>()
            if (trainers.isNotEmpty()) candidates.add(trainers[chunk % trainers.size])
            candidates.addAll(t.available)
            place(chunk, candidates, now, dispatch)
        }
        warnings.addAll(added)
        return added
    }

    /** The round was averaged; start the next one. */
    fun nextRound(now: Double, t: Trainers, dispatch: Dispatch): List<String> {
        round++
        return startRound(now, t, dispatch)
    }

    /** Chunk came back (its answer counts). */
    fun answered(chunk: Int, now: Double) {
        pending.remove(chunk)
        slowest = maxOf(slowest, now - roundStarted)
    }

    /** Trainer answered that it lacks chunk's rows (it restarted): the chunk goes again, rows included, to its current trainer. */
    fun lostData(trainer: String, chunk: Int, now: Double, dispatch: Dispatch) {
        hasData[trainer]?.remove(chunk)
        val a = pending[chunk]
        if (a != null && a.trainer != "") assign(chunk, a.trainer, now, dispatch)
    }

    /** How long a chunk of this round may go unanswered. */
    fun chunkTimeout(): Double =
        if (slowest == 0.0) SchedulerConstants.FIRST_ANSWER_TIMEOUT
        else maxOf(SchedulerConstants.MIN_CHUNK_TIMEOUT, 4 * slowest)

    /**
     * Moves every pending chunk past its deadline, whose trainer is down, or
     * that no trainer took yet, to another available trainer (alone: to the
     * same one). A chunk nobody can take stays pending.
     */
    fun check(now: Double, t: Trainers, dispatch: Dispatch): List<String> {
        val timeout = chunkTimeout()
        val added = ArrayList<String>()
        for (chunk in 0 until nChunks) { // Python: insertion order; chunk order here (as Go)
            val a = pending[chunk] ?: continue
            val down = t.whyDown(a.trainer, a.sentAt)
            if (down == "" && now - a.sentAt < timeout) continue
            var others = t.available.filter { it != a.trainer }
            if (others.isEmpty()) others = ArrayList(t.available)
            if (others.isEmpty()) continue
            if (a.trainer != "") {
                val why = down.ifEmpty { "did not answer within ${pyFixed(timeout, 1)}s" }
                added.add("trainer ${a.trainer} $why: chunk $chunk of round $round went to another trainer")
                var rest = trainers.filter { it != a.trainer }
                if (rest.isEmpty()) rest = ArrayList(others)
                trainers = rest
            }
            place(chunk, others, now, dispatch)
        }
        warnings.addAll(added)
        return added
    }

    /** The whole job is past its timeout (it fails with TIMEOUT). */
    fun timedOut(now: Double): Boolean = now - started > timeout

    /** Trainer's process exited with status and was started again; the chunks it cached are gone. */
    fun trainerRestarted(trainer: String, status: Int): List<String> {
        if (!trainers.contains(trainer)) return emptyList()
        val added = listOf("trainer $trainer exited (status $status) and was restarted; its chunks were sent again")
        warnings.addAll(added)
        return added
    }

    private fun place(chunk: Int, candidates: List<String>, now: Double, dispatch: Dispatch) {
        val seen = HashSet<String>()
        for (tr in candidates) {
            if (!seen.add(tr)) continue
            if (assign(chunk, tr, now, dispatch)) return
        }
        pending[chunk] = Assignment(chunk, "", Double.NEGATIVE_INFINITY, false)
    }

    private fun assign(chunk: Int, trainer: String, now: Double, dispatch: Dispatch): Boolean {
        val cached = hasData[trainer]?.contains(chunk) == true
        if (!dispatch.send(chunk, trainer, !cached)) {
            hasData[trainer]?.remove(chunk)
            return false
        }
        hasData.getOrPut(trainer) { HashSet() }.add(chunk)
        pending[chunk] = Assignment(chunk, trainer, now, !cached)
        return true
    }
}
