package zmqnode.metrics

/** The values of raft_role's role label, in observe.py's order. */
val ROLES = listOf("leader", "follower", "learner", "candidate", "pre_candidate")

/** The node's state that gauges show (observe.py's NodeSnapshot, the fields refresh reads). */
class Levels(
    val role: String = "follower",
    val term: Long = 0,
    val commitIndex: Long = 0,
    val appliedIndex: Long = 0,
    val lastIndex: Long = 0,
    val trainings: Long = 0,
    val logBytes: Long = 0,
    val models: Long = 0,
    val modelBytes: Long = 0,
    val snapshotIndex: Long = 0,
    val modelsDamaged: Long = 0,
    val compactions: Long = 0,
    val filesFetched: Long = 0,
    val chunksFetched: Long = 0
)

/** The status feed's rates (PROTOCOL.md §9b); p99Ms null when the feed's p99_ms is null. */
class FeedRates(val requestsPerS: Double, val httpRequestsPerS: Double, val p99Ms: Double?)

/**
 * observe.py's NodeMetrics: every metric a node shows on /metrics
 * (PROTOCOL.md §9b), with the Python node's names, help texts, labels,
 * buckets and order. The node only feeds values: counters and histograms as
 * things happen, gauges once a tick through [refresh].
 */
class NodeMetrics {
    val registry = Registry("zmqnode_")
    val term = registry.gauge("raft_term", "Current Raft term.")
    val role = registry.gauge("raft_role", "1 for this node's current role, 0 for the others.", "role")
    val commitIndex = registry.gauge("raft_commit_index", "Highest log index known committed.")
    val appliedIndex = registry.gauge("raft_applied_index", "Highest log index applied.")
    val lastIndex = registry.gauge("raft_last_index", "Last index in this node's log.")
    val campaigns = registry.counter("raft_campaigns", "Elections this node started (pre-vote included).")
    val leaderChanges = registry.counter("raft_leader_changes", "Times this node saw a new leader (itself included).")
    val rpcSent = registry.counter("raft_messages_sent", "Raft messages sent, by type.", "type")
    val rpcReceived = registry.counter("raft_messages_received", "Raft messages received, by type.", "type")
    val appendSeconds = registry.histogram("raft_append_seconds",
        "Leader: an AppendEntries with entries until the peer confirms them, seconds.", null)
    val commitSeconds = registry.histogram("raft_commit_seconds",
        "From proposing an entry to applying it (leader), seconds.", null)
    val requests = registry.counter("requests", "Client requests answered, by type and status.", "type", "status")
    val requestSeconds = registry.histogram("request_seconds",
        "Client request latency from receipt to answer, by type.", null, "type")
    val predictBatchRequests = registry.histogram("predict_batch_requests",
        "PREDICT requests served by one forward pass.", Buckets.SIZE)
    val trainingJobs = registry.counter("training_jobs", "Training jobs finished, by status.", "status")
    val trainingSeconds = registry.histogram("training_seconds",
        "Training job duration (data received to model committed).", Buckets.DURATION)
    val trainingsRunning = registry.gauge("trainings_running", "Training jobs in progress.")
    val logBytes = registry.gauge("storage_log_bytes", "Size of the Raft log file.")
    val fsyncSeconds = registry.histogram("storage_fsync_seconds", "fsync latency, seconds.", null)
    val models = registry.gauge("models", "Models in the registry.")
    val modelBytes = registry.gauge("models_bytes", "Bytes of model files in the registry.")
    val snapshotIndex = registry.gauge("storage_snapshot_index",
        "Last log index covered by the snapshot on disk (0: none).")
    val compactions = registry.counter("storage_compactions", "Log compactions this process made (compaction.py).")
    val modelsDamaged = registry.gauge("models_damaged", "Committed models whose file here is missing or damaged.")
    val modelFilesFetched = registry.counter("models_fetched", "Model files this process fetched from peers (repair.py).")
    val modelChunks = registry.counter("models_fetched_chunks", "FETCH chunks this process received from peers.")
    val httpRequests = registry.counter("http_requests",
        "HTTP inference requests answered, by endpoint and HTTP status.", "endpoint", "status")
    val httpRequestSeconds = registry.histogram("http_request_seconds",
        "HTTP inference latency from the last byte received to the answer, by endpoint.", null, "endpoint")
    val httpConnections = registry.gauge("http_connections", "Open HTTP inference connections.")
    val events = registry.counter("events", "Other events counted by the node, by kind.", "kind")
    val recent = Recent(5)
    val recentPredict = Recent(5)
    val recentHttp = Recent(5)

    /** One client request answered (kind: its type; status: OK, REDIRECT or the error code). */
    fun requestDone(kind: String, status: String, seconds: Double) {
        requests.inc(kind, status)
        requestSeconds.observe(seconds, kind)
        recent.observe(seconds)
        if (kind == "PREDICT") recentPredict.observe(seconds)
    }

    /** One HTTP inference request answered: the shape of HttpLinks.onAnswered. */
    fun httpDone(endpoint: String, status: Int, seconds: Double) {
        httpRequests.inc(endpoint, status.toString())
        httpRequestSeconds.observe(seconds, endpoint)
        recentHttp.observe(seconds)
    }

    /** Sets the gauges (and the totals counted by their owners): observe.py's refresh, once a tick. */
    fun refresh(l: Levels) {
        term.set(l.term.toDouble())
        for (r in ROLES) role.set(if (r == l.role) 1.0 else 0.0, r)
        commitIndex.set(l.commitIndex.toDouble())
        appliedIndex.set(l.appliedIndex.toDouble())
        lastIndex.set(l.lastIndex.toDouble())
        trainingsRunning.set(l.trainings.toDouble())
        logBytes.set(l.logBytes.toDouble())
        models.set(l.models.toDouble())
        modelBytes.set(l.modelBytes.toDouble())
        snapshotIndex.set(l.snapshotIndex.toDouble())
        compactions.set(l.compactions.toDouble())
        modelFilesFetched.set(l.filesFetched.toDouble())
        modelChunks.set(l.chunksFetched.toDouble())
        modelsDamaged.set(l.modelsDamaged.toDouble())
    }

    /**
     * requests_per_s, http_requests_per_s and p99_ms as observe.py's
     * status_feed computes them: rates rounded to 0.1, the PREDICT p99 in
     * milliseconds rounded to 0.001; p99Ms null when there were no
     * predictions in the window or the p99 is above every bucket.
     */
    fun feedRates(): FeedRates {
        val rps = pyRound(recent.rate(), 1)
        val hps = pyRound(recentHttp.rate(), 1)
        val p99 = recentPredict.quantile(0.99)
        if (p99 == null || p99 == Double.POSITIVE_INFINITY) return FeedRates(rps, hps, null)
        return FeedRates(rps, hps, pyRound(p99 * 1000, 3))
    }
}
