// The leader's side of training (go/training/coordinator.go,
// zmqnode/training/coordinator.py): TRAIN admission (--max-trainings),
// validation, plan preparation off the loop, rounds of FedAvg, PROGRESS
// replies, the model handed to CoordinatorLinks.commitModel,
// lostLeadership. It sees the node only through CoordinatorLinks (sockets
// included: the node wires libzmq behind TrainerLink) and the maths only
// through PlanMaker/PlanHandle (the node wires zmqnode.ml behind them).
package zmqnode.training

import zmqnode.wire.JsonObject
import java.security.SecureRandom
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.Future

/** Coordinator defaults, as the Python node's flags. */
object CoordinatorDefaults {
    const val MAX_TRAININGS = 4
    const val TRAINING_TIMEOUT_SECONDS = 600.0
    const val MAX_REQUEST_BYTES = 512L shl 20
    const val MAX_MODEL_BYTES = 64L shl 20
    /** Jobs queued on a trainer's PUSH before sends to it fail (and the chunk moves). */
    const val TRAINER_SEND_HWM = 64
}

/** A client waiting on a TRAIN: the node's replier (go/replies.Replier). Codes are wire error codes ("BUSY", ...). */
interface TrainReplier {
    fun ok(req: JsonObject, blobs: List<ByteArray>, fields: List<Pair<String, Any?>>)
    fun error(req: JsonObject, code: String, message: String)
    fun redirect(req: JsonObject, leader: String)
    fun progress(req: JsonObject, fields: List<Pair<String, Any?>>)
    /** The request is parked: its answer comes later. */
    fun waiting(req: JsonObject)
}

/** A refusal with a wire error code (the node answers ERROR code message). */
class TrainingRefused(val code: String, message: String) : Exception(message)

/**
 * The leader's PUSH to one member's trainer (P+3000): IMMEDIATE, SNDHWM
 * [CoordinatorDefaults.TRAINER_SEND_HWM], LINGER 0, CURVE as the node's
 * peers, reopened when the trainer's ZAP refuses the handshake (counting
 * trainer_handshake_refused / trainer_link_reopened, PROTOCOL.md §1.1).
 */
interface TrainerLink {
    /** Non-blocking send of one job; false if not connected or the queue is full. */
    fun send(frames: List<ByteArray>): Boolean
    /** Called on every Coordinator.tick: read the monitor, reopen if due. */
    fun tick() {}
    fun close()
}

/** What the coordinator may use of its node, and nothing else. */
interface CoordinatorLinks {
    /** This node's id, "host:port". */
    val id: String
    /** Addresses whose trainers may take chunks now, in the order to try them (this node first). */
    fun members(): List<String>
    /**
     * Binds the results PULL at endpoint (P+4000; MAXMSGSIZE maxMessageBytes,
     * LINGER 0, CURVE peers domain); the node's loop reads it and hands each
     * message to Coordinator.onResult. Throws on failure (retried on tick).
     */
    fun bindResults(endpoint: String, maxMessageBytes: Long): AutoCloseable
    /** Opens the PUSH to member's trainer at endpoint; throws on failure. */
    fun connectTrainer(member: String, endpoint: String): TrainerLink
    /**
     * Proposes STORE_MODEL and answers reply once applied (ok with model_id;
     * the coordinator's reply adds trainers, rounds, train_seconds, warnings
     * and metrics after the node's fields).
     */
    fun commitModel(req: JsonObject, model: ByteArray, reply: TrainReplier)
    /** Wakes the loop from another thread (a plan is ready): call Coordinator.tick. */
    fun wake() {}
    fun count(kind: String) {}
    /** trainer -> why it cannot answer any job (node silent past 2 s, trainer stopped). */
    fun down(): Map<String, String> = emptyMap()
    /** A retry joining a running training; throw TrainingRefused (BUSY past --max-pending) to refuse it. */
    fun admit(req: JsonObject) {}
    fun event(kind: String, text: String) {}
    fun jobFinished(status: String, seconds: Double) {}
    fun log(message: String) { System.err.println(message) }
}

/** One chunk's answer, as the plan averages it (ml.ChunkResult). */
class ChunkOutcome(val params: FloatArray, val nSamples: Int, val loss: Double)

/** A chunk's rows, float32 row-major. */
class Rows(val rows: Int, val cols: Int, val data: FloatArray)

/** A trained model file and its listing summary ("metrics" of the reply). */
class TrainedModel(val bytes: ByteArray, val summary: Any?)

/** A prepared training (ml.TrainingPlan) as the coordinator drives it. */
interface PlanHandle {
    val nChunks: Int
    /** The global parameters of the current round. */
    val params: FloatArray
    fun chunkX(chunk: Int): Rows
    fun chunkY(chunk: Int): Rows
    /** TrainOptions.to_dict as jobs carry it: every option, in Python's field order. */
    val optionsObject: JsonObject
    val nParams: Long
    /** Architecture.describe(), e.g. "4-16-3". */
    val describe: String
    /** The rows the client sent, validation rows included (problem.py's n_rows). */
    val nRows: Int
    val nInputs: Int
    /** Averages a round's results (in chunk order); true when training is done. Throws ml exceptions. */
    fun finishRound(results: List<ChunkOutcome>): Boolean
    val roundIndex: Int
    val nRounds: Int
    val epochs: Int
    val epochsPerRound: Int
    /** The last round's metrics (history[-1]) or null before any. */
    fun lastMetrics(): Any?
    /** The model file, with the request's column names. Throws ml exceptions. */
    fun model(features: List<String>?, targets: List<String>?): TrainedModel
}

/** How plans are made (zmqnode.ml behind request.make_plan). */
interface PlanMaker {
    /** TrainOptions.from_dict; throws zmqnode.ml.BadOptionsException with Python's message. */
    fun parseOptions(options: JsonObject): Any
    /** request.make_plan (slow: runs off the loop); throws zmqnode.ml exceptions. */
    fun makePlan(request: TrainRequest, options: Any, nChunks: Int): PlanHandle
}

/** The Python flags that matter to training. */
class CoordinatorConfig(
    val maxTrainings: Int = CoordinatorDefaults.MAX_TRAININGS,
    val trainingTimeout: Double = CoordinatorDefaults.TRAINING_TIMEOUT_SECONDS,
    val maxRequestBytes: Long = CoordinatorDefaults.MAX_REQUEST_BYTES,
    val maxModelBytes: Long = CoordinatorDefaults.MAX_MODEL_BYTES,
    /** Monotonic seconds (tests); null: the clock. */
    val now: (() -> Double)? = null
)

private class TrainingJob(
    val id: String,
    val req: JsonObject,
    val sched: ChunkScheduler,
    val started: Double,
    var prep: Future<PlanHandle>?,
    val features: List<String>?,
    val targets: List<String>?,
    val attempt: String
) {
    val replies = ArrayList<TrainReplier>()
    var plan: PlanHandle? = null
    var results = HashMap<Int, ChunkOutcome>()
    var committing = false
}

/**
 * Runs the TRAIN jobs this node leads: owns the results PULL (P+4000) and
 * one PUSH per member's trainer (P+3000); each job's ChunkScheduler decides
 * which trainer trains which chunk. Every method runs on the node's loop
 * thread only; plan preparation runs on one helper thread and hands back
 * through links.wake() and the next tick().
 */
class Coordinator(private val links: CoordinatorLinks, private val planMaker: PlanMaker,
                  private val cfg: CoordinatorConfig = CoordinatorConfig()) {
    private val jobs = LinkedHashMap<String, TrainingJob>() // oldest first (Python's dict order)
    /** The results endpoint named in every job ("" if the node id does not parse). */
    val replyTo: String
    private var results: AutoCloseable? = null
    /** Why the results PULL is not bound (null once it is). */
    var err: String? = null
        private set
    private val pushers = LinkedHashMap<String, TrainerLink>()
    private val epoch = System.nanoTime()
    private var closed = false
    private val restarted = HashMap<String, Double>()
    private val prep: ExecutorService = Executors.newSingleThreadExecutor { r ->
        Thread(r, "train-prep").apply { isDaemon = true }
    }

    init {
        val addr = parseAddress(links.id)
        if (addr != null) {
            replyTo = tcpEndpoint(addr.first, addr.second + ResultsOffset)
        } else {
            replyTo = ""
            err = "node id ${zmqnode.pyfmt.Pyfmt.strRepr(links.id)}: not host:port"
        }
        bindResults()
        connectTrainers()
    }

    private fun now(): Double = cfg.now?.invoke() ?: (System.nanoTime() - epoch) / 1e9

    private fun bindResults() {
        if (results != null || replyTo == "" || closed) return
        try {
            results = links.bindResults(replyTo, cfg.maxModelBytes * 2 + (1L shl 20))
            err = null
        } catch (e: Exception) {
            val text = e.message ?: e.toString()
            if (err != text) links.log("training: cannot bind the results PULL $replyTo: $text")
            err = text
        }
    }

    /** Opens a PUSH to each member's trainer not yet connected (IMMEDIATE needs them ahead of time: SPEC_NOTES T6). */
    private fun connectTrainers() {
        if (closed) return
        for (m in links.members()) if (pushers[m] == null) pusher(m)
    }

    private fun pusher(member: String): TrainerLink? {
        pushers[member]?.let { return it }
        val addr = parseAddress(member) ?: return null
        return try {
            val link = links.connectTrainer(member, tcpEndpoint(addr.first, addr.second + TrainingOffset))
            pushers[member] = link
            link
        } catch (e: Exception) {
            links.log("training: cannot connect to trainer $member: ${e.message}")
            null
        }
    }

    /** Trainings in progress (preparing, training or committing). */
    fun running(): Int = jobs.size

    /** Client requests waiting on a training (each retry that joined counts). */
    fun joinedClients(): Int = jobs.values.sumBy { it.replies.size }

    /**
     * Starts a TRAIN (on the leader, once the node checked leadership and that
     * the id produced no model yet), or joins reply to the running job of the
     * same id. Refusals are answered through reply at once (BUSY, BAD_REQUEST,
     * BAD_SHAPE, BAD_INPUT, TOO_LARGE, UNAVAILABLE); an accepted request gets
     * reply.waiting and its answer later.
     */
    fun submit(req: JsonObject, blobs: List<ByteArray>, reply: TrainReplier) {
        try {
            submitOrThrow(req, blobs, reply)
        } catch (e: TrainingRefused) {
            reply.error(req, e.code, e.message ?: "")
            return
        } catch (e: Exception) {
            val refusal = refusalOf(e)
            if (refusal != null) {
                reply.error(req, refusal.code, refusal.message ?: "")
            } else {
                reply.error(req, "INTERNAL", e.message ?: e.toString())
            }
            return
        }
        reply.waiting(req)
    }

    private fun submitOrThrow(req: JsonObject, blobs: List<ByteArray>, reply: TrainReplier) {
        val id = headerId(req)
        val running = jobs[id]
        if (running != null) {
            links.admit(req)
            running.replies.add(reply)
            return
        }
        if (jobs.size >= cfg.maxTrainings) {
            links.count("busy_trainings")
            throw TrainingRefused("BUSY", "node ${links.id} is already running ${cfg.maxTrainings} trainings " +
                "(--max-trainings); retry later")
        }
        val request = readTrainRequest(req, blobs, cfg.maxRequestBytes)
        var raw = req.get("options")
        if (!truthy(raw)) raw = JsonObject()
        if (raw !is JsonObject) throw TrainingRefused("BAD_REQUEST", "'options' must be an object")
        bindResults()
        if (results == null) {
            throw TrainingRefused("UNAVAILABLE", "node ${links.id} cannot receive training results: $err")
        }
        val trainers = links.members()
        if (trainers.isEmpty()) {
            throw TrainingRefused("UNAVAILABLE", "no trainer is running on node ${links.id} or its peers; " +
                "start nodes without --no-trainer")
        }
        val options = try {
            planMaker.parseOptions(raw)
        } catch (e: Exception) {
            if (isBadInput(e)) throw TrainingRefused("BAD_INPUT", e.message ?: "")
            throw e
        }
        connectTrainers()
        val nChunks = chunkCount(request.rows(), trainers.size)
        val now = now()
        val features = request.features
        val targets = request.targets
        val job = TrainingJob(id, req, ChunkScheduler(trainers, now, cfg.trainingTimeout), now, null,
            features, targets, newAttempt())
        job.replies.add(reply)
        jobs[id] = job
        // Validating, normalizing and splitting a large dataset takes seconds:
        // off the loop, or heartbeats stop and the leader is deposed.
        job.prep = prep.submit<PlanHandle> {
            try {
                planMaker.makePlan(request, options, nChunks)
            } finally {
                links.wake()
            }
        }
    }

    /**
     * Starts prepared jobs, moves late chunks and fails jobs past
     * --training-timeout. Call it from the loop every turn or so, and after wake().
     */
    fun tick() {
        if (closed) return
        bindResults()
        for (link in pushers.values) link.tick()
        if (jobs.isEmpty()) return
        connectTrainers()
        val now = now()
        val trainers = trainers()
        for (j in ArrayList(jobs.values)) {
            if (jobs[j.id] !== j) continue
            val p = j.prep
            if (p != null) {
                if (p.isDone) {
                    j.prep = null
                    startPrepared(j, p, now, trainers)
                }
            } else if (!j.committing) {
                checkDeadlines(j, now, trainers)
            }
        }
    }

    /**
     * trainer's process (or thread) exited with status and was started again:
     * the chunks it cached and the jobs sent to it before now are lost; they
     * move at the next tick, and the jobs it trains for get a warning.
     */
    fun trainerRestarted(trainer: String, status: Int) {
        restarted[trainer] = now()
        for (j in jobs.values) warn(j, j.sched.trainerRestarted(trainer, status))
    }

    private fun trainers(): Trainers = Trainers(links.members(), LinkedHashMap(links.down()), HashMap(restarted))

    /** Fails every job not yet committing with NOT_LEADER: the client retries with the same id (§6). */
    fun lostLeadership() {
        for (j in ArrayList(jobs.values)) {
            if (j.committing) continue // its proposal answers (committed by the next leader or not)
            fail(j, "NOT_LEADER", "node ${links.id} lost leadership during training; retry with the " +
                "same request id (the new leader trains it once)")
        }
    }

    /** The jobs in progress for the status feed's "trainings" (§9b), each an ordered map. */
    fun views(): List<Map<String, Any?>> {
        val now = now()
        val out = ArrayList<Map<String, Any?>>()
        for (j in jobs.values) {
            val v = LinkedHashMap<String, Any?>()
            v["id"] = j.id
            val plan = j.plan
            if (plan == null) {
                v["state"] = "preparing"
                v["elapsed_s"] = round3(now - j.started)
            } else {
                v["state"] = if (j.committing) "committing" else "training"
                for ((k, value) in progress(j, plan, now)) v[k] = value
            }
            out.add(v)
        }
        return out
    }

    /** Closes the sockets (the node is going). Jobs are not answered: the node answers its parked requests. */
    fun close() {
        if (closed) return
        closed = true
        try { results?.close() } catch (e: Exception) { }
        results = null
        for (link in pushers.values) try { link.close() } catch (e: Exception) { }
        pushers.clear()
        prep.shutdownNow()
    }

    private fun dispatcher(j: TrainingJob) = dispatchOf { chunk, trainer, withData -> sendChunk(j, chunk, trainer, withData) }

    /** PUSHes chunk of the current round to trainer; false if it is not connected or its queue is full. */
    private fun sendChunk(j: TrainingJob, chunk: Int, trainer: String, withData: Boolean): Boolean {
        val link = pusher(trainer) ?: return false
        val plan = j.plan ?: return false
        var x: TrainArray? = null
        var y: TrainArray? = null
        if (withData) {
            val cx = plan.chunkX(chunk)
            val cy = plan.chunkY(chunk)
            x = TrainArray.ofFloat32(listOf(cx.rows, cx.cols), cx.data)
            y = TrainArray.ofFloat32(listOf(cy.rows, cy.cols), cy.data)
        }
        val job = Job(j.id + "#" + j.attempt, j.sched.round, chunk, replyTo, plan.optionsObject,
            TrainArray.ofFloat32(listOf(plan.params.size), plan.params), x, y)
        val frames = try {
            encodeJob(job)
        } catch (e: Exception) {
            links.log("training ${j.id}: cannot encode chunk $chunk: ${e.message}")
            return false
        }
        return link.send(frames)
    }

    private fun startPrepared(j: TrainingJob, p: Future<PlanHandle>, now: Double, trainers: Trainers) {
        val plan = try {
            p.get()
        } catch (e: java.util.concurrent.ExecutionException) {
            val cause = e.cause ?: e
            val refusal = refusalOf(cause)
            when {
                isBadInput(cause) -> fail(j, "BAD_INPUT", cause.message ?: "")
                refusal != null -> fail(j, refusal.code, refusal.message ?: "")
                else -> {
                    links.log("preparing training ${j.id} failed: $cause")
                    fail(j, "INTERNAL", "preparing the data failed: " + pyExceptionRepr(cause))
                }
            }
            return
        } catch (e: Exception) {
            fail(j, "INTERNAL", "preparing the data failed: " + pyExceptionRepr(e))
            return
        }
        j.plan = plan
        val modelBytes = plan.nParams * 4
        if (modelBytes > cfg.maxModelBytes) {
            fail(j, "TOO_LARGE", "a ${plan.describe} network needs about $modelBytes bytes, over " +
                "--max-model-bytes ${cfg.maxModelBytes}; use smaller hidden layers")
            return
        }
        j.sched.setChunks(plan.nChunks)
        links.log("training ${j.id}: ${plan.nRows} rows x ${plan.nInputs} columns on ${j.sched.trainers.size} " +
            "trainer(s): ${j.sched.trainers.joinToString(", ")}")
        links.event("training_started", "training ${short(j.id)}: ${plan.nRows} rows, ${j.sched.trainers.size} trainers")
        j.results = HashMap()
        warn(j, j.sched.startRound(now, trainers, dispatcher(j)))
    }

    /** Handles one SUB_TRAIN_RESULT body read from the results PULL. */
    fun onResult(frames: List<ByteArray>) {
        val r = try {
            decodeResult(frames)
        } catch (e: Exception) {
            links.count("training_garbage")
            links.log("dropped a malformed training result: ${e.message}")
            return
        }
        val now = now()
        val hash = r.jobId.lastIndexOf('#')
        val requestId = if (hash >= 0) r.jobId.substring(0, hash) else ""
        val attempt = if (hash >= 0) r.jobId.substring(hash + 1) else ""
        val j = jobs[requestId] ?: return
        val plan = j.plan ?: return
        if (j.committing || attempt != j.attempt || r.round != j.sched.round || r.chunk >= plan.nChunks) {
            return // late answer from a reassigned chunk or a finished job
        }
        if (j.results.containsKey(r.chunk)) return
        if (r.missingData) {
            // The trainer restarted and lost its cache: send the chunk again.
            j.sched.lostData(r.trainer, r.chunk, now, dispatcher(j))
            return
        }
        if (r.error != "") {
            fail(j, "TRAINING_FAILED", "trainer ${r.trainer}: ${r.error}")
            return
        }
        val params = try { r.params?.toFloat32() } catch (e: Exception) { null }
        if (params == null || params.size != plan.params.size) {
            // Python fails the same way when averaging (a trainer's bug, not
            // something a retry elsewhere would fix).
            fail(j, "TRAINING_FAILED", "trainer ${r.trainer}: sent ${params?.size ?: 0} parameters; " +
                "the network has ${plan.params.size}")
            return
        }
        j.sched.answered(r.chunk, now)
        j.results[r.chunk] = ChunkOutcome(params, r.nSamples, r.loss)
        if (j.results.size == plan.nChunks) finishRound(j, plan, now)
    }

    private fun finishRound(j: TrainingJob, plan: PlanHandle, now: Double) {
        val outcomes = (0 until plan.nChunks).map { j.results[it]!! }
        val done = try {
            plan.finishRound(outcomes)
        } catch (e: Exception) {
            links.log("training ${j.id} failed while aggregating: $e")
            fail(j, "TRAINING_FAILED", "aggregation failed: " + (e.message ?: e.toString()))
            return
        }
        if (!done) {
            reportProgress(j, plan, now)
            j.results = HashMap()
            warn(j, j.sched.nextRound(now, trainers(), dispatcher(j)))
            return
        }
        val model = try {
            plan.model(j.features, j.targets)
        } catch (e: Exception) {
            fail(j, "TRAINING_FAILED", "the trained model could not be written: " + (e.message ?: e.toString()))
            return
        }
        val elapsed = now - j.started
        val rounds = j.sched.round + 1
        links.log("training ${j.id} finished in ${pyFixed(elapsed, 2)}s after $rounds rounds; " +
            "replicating ${model.bytes.size} bytes")
        if (model.bytes.size > cfg.maxModelBytes) {
            fail(j, "TOO_LARGE", "the trained model is ${model.bytes.size} bytes, over --max-model-bytes " +
                "${cfg.maxModelBytes}; use smaller hidden layers")
            return
        }
        val extra = listOf<Pair<String, Any?>>(
            "trainers" to ArrayList(j.sched.trainers),
            "rounds" to rounds,
            "train_seconds" to round3(elapsed),
            "warnings" to ArrayList(j.sched.warnings),
            "metrics" to model.summary
        )
        // The job stays registered until the commit answers, so a retry
        // arriving meanwhile joins it instead of training a second time.
        j.committing = true
        links.commitModel(j.req, model.bytes, JobReplies(j, extra))
    }

    /** For a job whose plan is in (not while preparing, as Python: SPEC_NOTES T10). */
    private fun checkDeadlines(j: TrainingJob, now: Double, trainers: Trainers) {
        warn(j, j.sched.check(now, trainers, dispatcher(j)))
        if (j.sched.timedOut(now)) {
            fail(j, "TIMEOUT", "training did not finish within ${pyFixed(cfg.trainingTimeout, 0)}s")
        }
    }

    private fun warn(j: TrainingJob, warnings: List<String>) {
        for (w in warnings) links.log("training ${j.id}: $w")
    }

    private fun reportProgress(j: TrainingJob, plan: PlanHandle, now: Double) {
        val fields = progress(j, plan, now)
        for (r in ArrayList(j.replies)) r.progress(j.req, fields)
    }

    private fun progress(j: TrainingJob, plan: PlanHandle, now: Double): List<Pair<String, Any?>> {
        val metrics = plan.lastMetrics() ?: JsonObject()
        val epoch = minOf(plan.roundIndex * plan.epochsPerRound, plan.epochs)
        return listOf(
            "round" to plan.roundIndex,
            "rounds" to plan.nRounds,
            "epoch" to epoch,
            "epochs" to plan.epochs,
            "metrics" to metrics,
            "elapsed_s" to round3(now - j.started),
            "trainers" to ArrayList(j.sched.trainers)
        )
    }

    private fun remove(j: TrainingJob) {
        if (jobs[j.id] === j) jobs.remove(j.id)
    }

    private fun finished(j: TrainingJob, status: String) {
        val elapsed = now() - j.started
        links.jobFinished(status, elapsed)
        if (status == "OK") {
            links.event("training_finished", "training ${short(j.id)} finished in ${pyFixed(elapsed, 1)}s")
        } else {
            links.event("training_failed", "training ${short(j.id)} failed ($status) after ${pyFixed(elapsed, 1)}s")
        }
    }

    private fun fail(j: TrainingJob, code: String, message: String) {
        remove(j)
        finished(j, code)
        links.log("training ${j.id} failed: $message")
        for (r in ArrayList(j.replies)) r.error(j.req, code, message)
    }

    /**
     * Answers every client waiting on a job (the first request and each
     * retry that joined), once; ok gets the training's fields added.
     */
    private inner class JobReplies(val j: TrainingJob, val extra: List<Pair<String, Any?>>) : TrainReplier {
        private var sent = false

        private fun end(status: String): Boolean {
            if (sent) return false
            sent = true
            remove(j)
            finished(j, status)
            return true
        }

        override fun ok(req: JsonObject, blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) {
            if (!end("OK")) return
            val all = fields + extra
            for (r in ArrayList(j.replies)) r.ok(req, blobs, all)
        }

        override fun error(req: JsonObject, code: String, message: String) {
            if (!end(code)) return
            for (r in ArrayList(j.replies)) r.error(req, code, message)
        }

        override fun redirect(req: JsonObject, leader: String) {
            if (!end("REDIRECT")) return
            for (r in ArrayList(j.replies)) r.redirect(req, leader)
        }

        override fun progress(req: JsonObject, fields: List<Pair<String, Any?>>) {
            if (sent) return
            for (r in ArrayList(j.replies)) r.progress(req, fields)
        }

        /** Each client's own replier already waits since its TRAIN came. */
        override fun waiting(req: JsonObject) {}
    }

    companion object {
        private val random = SecureRandom()

        internal fun newAttempt(): String {
            val b = ByteArray(6)
            random.nextBytes(b)
            return b.joinToString("") { String.format(java.util.Locale.ROOT, "%02x", it.toInt() and 0xff) }
        }

        internal fun short(id: String): String {
            val cps = id.codePointCount(0, id.length)
            return if (cps > 12) id.substring(0, id.offsetByCodePoints(0, 12)) else id
        }

        /** Python's round(x, 3) (ties to even on the exact value), as Go's math.Round(x*1000)/1000 is close to. */
        internal fun round3(x: Double): Double =
            java.math.BigDecimal(x).setScale(3, java.math.RoundingMode.HALF_EVEN).toDouble()
    }
}
