// Timing and flow-control knobs, the mutation switches, and the core's
// random source (a port of go/raft/config.go).
package zmqnode.raft

/**
 * Timing and flow-control knobs, in ticks and bytes (Python's RaftConfig).
 * A follower that hears no leader for a random time in
 * [electionTicks, 2*electionTicks) campaigns (§5.2); a leader that has not
 * heard from a majority for electionTicks steps down (check-quorum).
 */
data class Config(
    val electionTicks: Int = 10,
    val heartbeatTicks: Int = 1,
    val preVote: Boolean = true,
    val checkQuorum: Boolean = true,
    val maxMsgBytes: Int = 1 shl 20,
    val maxInflight: Int = 32,
    /** A learner is promoted only when at most this many entries behind and heard from lately. */
    val promoteMaxLag: Long = 64
) {
    /** Refuses what Python's RaftConfig refuses (IllegalArgumentException). */
    fun validate() {
        require(heartbeatTicks >= 1 && electionTicks > heartbeatTicks) { "raft: need 1 <= heartbeat_ticks < election_ticks" }
        require(maxInflight >= 1 && maxMsgBytes >= 1) { "raft: max_inflight and max_msg_bytes must be positive" }
    }
}

/** Deliberate bugs the simulator must catch: the names of tests/sim/mutations.py. */
object Mutations {
    const val OLD_TERM_COMMIT = "old_term_commit"
    const val FORGET_HARD_STATE = "forget_hard_state"
    const val FORGET_VOTE = "forget_vote"
    const val VOTE_ONLY_WITH_TERM = "vote_only_with_term"
    const val STALE_APPEND = "stale_append"
    const val VOTE_IGNORES_LOG = "vote_ignores_log"
    const val HEARTBEAT_COMMIT = "heartbeat_commit"
    const val APPEND_COMMIT_PAST_BATCH = "append_commit_past_batch"
    const val READ_WITHOUT_QUORUM = "read_without_quorum"
    const val CONFIG_BEFORE_OWN_TERM_COMMIT = "config_before_own_term_commit"
    const val TWO_CONFIGS_IN_FLIGHT = "two_configs_in_flight"
    const val LEARNER_COUNTS_IN_QUORUM = "learner_counts_in_quorum"

    /** The mutations this core implements, sorted. */
    val names: List<String> = listOf(
        OLD_TERM_COMMIT, FORGET_HARD_STATE, FORGET_VOTE, VOTE_ONLY_WITH_TERM, STALE_APPEND,
        VOTE_IGNORES_LOG, HEARTBEAT_COMMIT, APPEND_COMMIT_PAST_BATCH, READ_WITHOUT_QUORUM,
        CONFIG_BEFORE_OWN_TERM_COMMIT, TWO_CONFIGS_IN_FLIGHT, LEARNER_COUNTS_IN_QUORUM
    ).sorted()
}

/** The set of switched-on bugs. */
internal class MutationSet(names: Collection<String>) {
    init {
        for (n in names) require(n in Mutations.names) { "raft: unknown mutation \"$n\" (known: ${Mutations.names})" }
    }

    val oldTermCommit = Mutations.OLD_TERM_COMMIT in names
    val forgetHardState = Mutations.FORGET_HARD_STATE in names
    val forgetVote = Mutations.FORGET_VOTE in names
    val voteOnlyWithTerm = Mutations.VOTE_ONLY_WITH_TERM in names
    val staleAppend = Mutations.STALE_APPEND in names
    val voteIgnoresLog = Mutations.VOTE_IGNORES_LOG in names
    val heartbeatCommit = Mutations.HEARTBEAT_COMMIT in names
    val appendCommitPastBatch = Mutations.APPEND_COMMIT_PAST_BATCH in names
    val readWithoutQuorum = Mutations.READ_WITHOUT_QUORUM in names
    val configBeforeOwnTermCommit = Mutations.CONFIG_BEFORE_OWN_TERM_COMMIT in names
    val twoConfigsInFlight = Mutations.TWO_CONFIGS_IN_FLIGHT in names
    val learnerCountsInQuorum = Mutations.LEARNER_COUNTS_IN_QUORUM in names
}

/** The core's only randomness: election timeouts. */
interface RaftRandom {
    /** A uniform integer in [0, n), n > 0. */
    fun intn(n: Int): Int
}

/**
 * splitmix64 consumed as Go's rand.Rand.Intn consumes a Source (Int63, then
 * Int31n's rejection loop): the stream go/raft's trace test and the Python
 * trace generator (go/raft/testdata/gen_traces.py) share, so that a Kotlin
 * core draws the very timeouts a Python core drew. [state] is the 64-bit seed.
 */
class SplitMix64(private var state: Long) : RaftRandom {
    fun int63(): Long {
        state += -0x61c8864680b583ebL // 0x9E3779B97F4A7C15
        var z = state
        z = (z xor (z ushr 30)) * -0x40a7b892e31b1a47L // 0xBF58476D1CE4E5B9
        z = (z xor (z ushr 27)) * -0x6b2fb644ecceee15L // 0x94D049BB133111EB
        z = z xor (z ushr 31)
        return z ushr 1
    }

    private fun int31(): Int = (int63() ushr 32).toInt()

    override fun intn(n: Int): Int {
        require(n > 0) { "intn: n must be positive" }
        if (n and (n - 1) == 0) return int31() and (n - 1)
        val max = (Int.MAX_VALUE.toLong() - (1L shl 31) % n).toInt()
        var v = int31()
        while (v > max) v = int31()
        return v % n
    }
}
