// The coordinator with fake links (go/training/coordinator_test.go,
// tests/test_training_coordinator.py): fake trainer links record the jobs
// (decoded with decodeJob), fake trainers answer with encodeResult, a fake
// plan averages FedAvg-style; the node's side is recorded.
package zmqnode.training

import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlin.test.fail

internal class RecordedReplier : TrainReplier {
    val answers = ArrayList<JsonObject>()
    var waiting = false
    override fun ok(req: JsonObject, blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) {
        answers.add(JsonObject("status" to "OK", *fields.toTypedArray()))
    }
    override fun error(req: JsonObject, code: String, message: String) {
        answers.add(JsonObject("status" to "ERROR", "code" to code, "message" to message))
    }
    override fun redirect(req: JsonObject, leader: String) {
        answers.add(JsonObject("status" to "REDIRECT", "leader" to leader))
    }
    override fun progress(req: JsonObject, fields: List<Pair<String, Any?>>) {
        answers.add(JsonObject("status" to "PROGRESS", *fields.toTypedArray()))
    }
    override fun waiting(req: JsonObject) { waiting = true }
    fun last(): JsonObject? = answers.lastOrNull()
    fun ended(): Boolean = answers.any { it["status"] != "PROGRESS" }
    fun status(): Triple<String, String, String> {
        val a = last() ?: return Triple("", "", "")
        return Triple(a["status"] as String, (a["code"] as? String) ?: "", (a["message"] as? String) ?: "")
    }
}

/** A plan of [nParams] parameters trained for [rounds] rounds; averages weighted by n_samples (FedAvg). */
internal class FakePlan(override val nChunks: Int, val rounds: Int, val rowsPerChunk: Int, val nParamsValue: Int = 3) : PlanHandle {
    override var params = FloatArray(nParamsValue)
    override fun chunkX(chunk: Int) = Rows(rowsPerChunk, 2, FloatArray(rowsPerChunk * 2) { (chunk * 1000 + it).toFloat() })
    override fun chunkY(chunk: Int) = Rows(rowsPerChunk, 1, FloatArray(rowsPerChunk) { (it % 2).toFloat() })
    override val optionsObject = JsonObject("hidden_layers" to listOf(4L), "epochs" to rounds.toLong())
    override val nParams get() = nParamsValue.toLong()
    override val describe = "2-4-1"
    override val nRows get() = nChunks * rowsPerChunk
    override val nInputs = 2
    val history = ArrayList<JsonObject>()
    override fun finishRound(results: List<ChunkOutcome>): Boolean {
        val total = results.sumBy { it.nSamples }.toDouble()
        params = FloatArray(params.size) { i -> results.sumByDouble { it.params[i].toDouble() * it.nSamples / total }.toFloat() }
        history.add(JsonObject("loss" to results.sumByDouble { it.loss * it.nSamples } / total))
        roundIndex++
        return roundIndex >= rounds
    }
    override var roundIndex = 0
    override val nRounds get() = rounds
    override val epochs get() = rounds
    override val epochsPerRound = 1
    override fun lastMetrics(): Any? = history.lastOrNull()
    override fun model(features: List<String>?, targets: List<String>?) =
        TrainedModel(params.joinToString(",").toByteArray(Charsets.UTF_8), JsonObject("features" to features, "targets" to targets))
}

internal class FakeMaker(var rounds: Int = 2) : PlanMaker {
    val plans = ArrayList<FakePlan>()
    override fun parseOptions(options: JsonObject): Any {
        val epochs = options["epochs"]
        if (epochs != null && (epochs as JsonNumber).toLong() < 1) {
            throw zmqnode.ml.BadOptionsException("epochs must be an integer in 1..100000, got 0")
        }
        return options
    }
    override fun makePlan(request: TrainRequest, options: Any, nChunks: Int): PlanHandle {
        checkPlanShapes(request, false)
        val x = request.x.toFloat32()
        if (x.any { it.isNaN() }) throw zmqnode.ml.BadInputException("inputs contain NaN or infinity")
        val p = FakePlan(nChunks, rounds, request.rows() / nChunks)
        synchronized(plans) { plans.add(p) }
        return p
    }
}

/** A trainer behind a fake link: records the jobs, answers them when [auto]. */
internal class FakeTrainer(val id: String, val node: FakeNode) : TrainerLink {
    val jobs = ArrayList<Job>()
    var auto = false
    var connected = true
    var closed = false
    val cache = HashMap<Pair<String, Int>, Int>()
    override fun send(frames: List<ByteArray>): Boolean {
        if (!connected) return false
        val j = decodeJob(frames)
        jobs.add(j)
        if (j.x != null) cache[j.jobId to j.chunk] = j.x!!.shape[0]
        if (auto) node.pending.add { answer(j, trained(j)) }
        return true
    }
    override fun close() { closed = true }
    val chunkCache = ChunkCache(1L shl 30)
    /** The answer a trainer would send: with node.runner, trainer.handle's; else params + (chunk + 1), n_samples the chunk's rows. */
    fun trained(j: Job): Result {
        node.runner?.let { return handle(j, chunkCache, id, it) }
        val rows = cache[j.jobId to j.chunk] ?: return Result(j.jobId, j.round, j.chunk, id, missingData = true)
        val p = j.params.toFloat32()
        val out = FloatArray(p.size) { p[it] + j.chunk + 1 }
        return Result(j.jobId, j.round, j.chunk, id, rows, 0.5, TrainArray.ofFloat32(listOf(out.size), out))
    }
    fun answer(j: Job, r: Result) = node.coord.onResult(encodeResult(r))
}

internal class FakeNode(nTrainers: Int, auto: Boolean, cfg: (() -> Double) -> CoordinatorConfig,
                        val maker: PlanMaker = FakeMaker(), val runner: ChunkRunner? = null) : CoordinatorLinks {
    override val id = "127.0.0.1:9000"
    val trainers = (0 until nTrainers).map { FakeTrainer(if (it == 0) id else "127.0.0.${it + 1}:9000", this).also { t -> t.auto = auto } }
    var members: List<String> = trainers.map { it.id }
    val down = HashMap<String, String>()
    val counted = ArrayList<String>()
    val events = ArrayList<String>()
    val finished = ArrayList<String>()
    val commits = ArrayList<JsonObject>()
    val models = ArrayList<ByteArray>()
    val replies = ArrayList<TrainReplier>()
    val pending = ArrayList<() -> Unit>()
    var busy = false
    var bound: String? = null
    var skew = 0.0
    private val start = System.nanoTime()
    val coord = Coordinator(this, maker, cfg { (System.nanoTime() - start) / 1e9 + skew })

    override fun members() = members
    override fun bindResults(endpoint: String, maxMessageBytes: Long): AutoCloseable {
        bound = endpoint
        return AutoCloseable { }
    }
    override fun connectTrainer(member: String, endpoint: String): TrainerLink =
        trainers.first { it.id == member }.also { assertEquals(tcpEndpoint(parseAddress(member)!!.first, 12000), endpoint) }
    override fun commitModel(req: JsonObject, model: ByteArray, reply: TrainReplier) {
        commits.add(req)
        models.add(model)
        replies.add(reply)
    }
    override fun count(kind: String) { counted.add(kind) }
    override fun down() = down
    override fun admit(req: JsonObject) { if (busy) throw TrainingRefused("BUSY", "too many requests parked") }
    override fun event(kind: String, text: String) { events.add(kind) }
    override fun jobFinished(status: String, seconds: Double) { finished.add(status) }
    override fun log(message: String) {}

    /** One loop turn: the trainers' answers, then (if tick) the coordinator's tick. */
    fun turn(tick: Boolean) {
        while (pending.isNotEmpty()) pending.removeAt(0)()
        if (tick) coord.tick()
    }

    fun until(what: String, tick: Boolean = true, cond: () -> Boolean) {
        val deadline = System.nanoTime() + 10_000_000_000L
        while (!cond()) {
            if (System.nanoTime() > deadline) fail("timed out waiting for $what")
            turn(tick)
            Thread.sleep(2)
        }
    }

    fun submit(id: String, rows: Int, options: Any?, extra: JsonObject.() -> Unit = {}): RecordedReplier {
        val (h, blobs) = trainRequest(id, rows, options)
        h.extra()
        val rec = RecordedReplier()
        coord.submit(h, blobs, rec)
        return rec
    }

    companion object {
        fun trainRequest(id: String, rows: Int, options: Any?, nan: Boolean = false): Pair<JsonObject, List<ByteArray>> {
            val x = TrainArray.ofFloat32(listOf(rows, 2), FloatArray(rows * 2) { if (nan) Float.NaN else it.toFloat() / rows })
            val y = TrainArray("int64", listOf(rows), java.nio.ByteBuffer.allocate(rows * 8).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .also { b -> for (i in 0 until rows) b.putLong((i % 2).toLong()) }.array())
            val h = JsonObject("type" to "TRAIN", "id" to id, "inputs" to x.descriptor(0), "outputs" to y.descriptor(1))
            if (options != null) h["options"] = options
            // Through the wire, as a node receives it.
            return TrainingWire.decode(TrainingWire.encode(h, listOf(x.data, y.data)))
        }
    }
}

private val testOptions = JsonObject("epochs" to 2L)

private fun cluster(n: Int, auto: Boolean = false, cfg: ((() -> Double) -> CoordinatorConfig)? = null) =
    FakeNode(n, auto, cfg ?: { now -> CoordinatorConfig(now = now) })

class TrainingCoordinatorTest {
    fun testTheResultsPullIsBoundAtPPlus4000() {
        val n = cluster(1)
        assertEquals("tcp://127.0.0.1:13000", n.bound)
        assertEquals("tcp://127.0.0.1:13000", n.coord.replyTo)
    }

    fun testATrainBeyondMaxTrainingsIsBusy() {
        val n = cluster(1) { now -> CoordinatorConfig(maxTrainings = 1, now = now) }
        val first = n.submit("first", 96, testOptions)
        val second = n.submit("second", 96, testOptions)
        assertTrue(first.waiting)
        val (_, code, msg) = second.status()
        assertEquals("BUSY", code)
        assertTrue(msg.contains("--max-trainings"), msg)
        assertEquals(listOf("busy_trainings"), n.counted)
        assertEquals(1, n.coord.running())
    }

    fun testARetryOfARunningTrainingJoinsIt() {
        val n = cluster(1) { now -> CoordinatorConfig(maxTrainings = 1, now = now) }
        n.submit("job", 96, testOptions)
        val retry = n.submit("job", 96, testOptions)
        assertTrue(retry.waiting && retry.last() == null)
        assertEquals(1, n.coord.running())
        assertEquals(2, n.coord.joinedClients())
    }

    fun testARetryPastMaxPendingIsRefusedAndDoesNotJoin() {
        val n = cluster(1)
        n.submit("job", 96, testOptions)
        n.busy = true
        assertEquals("BUSY", n.submit("job", 96, testOptions).status().second)
        assertEquals(1, n.coord.joinedClients())
    }

    fun testNoTrainerIsUnavailable() {
        val n = cluster(1)
        n.members = emptyList()
        val (_, code, msg) = n.submit("job", 96, testOptions).status()
        assertEquals("UNAVAILABLE", code)
        assertEquals("no trainer is running on node ${n.id} or its peers; start nodes without --no-trainer", msg)
        assertEquals(0, n.coord.running())
    }

    fun testBadOptionsAreBadInputWithPythonsMessage() {
        val n = cluster(1)
        val (_, code, msg) = n.submit("job", 96, JsonObject("epochs" to 0L)).status()
        assertEquals("BAD_INPUT" to "epochs must be an integer in 1..100000, got 0", code to msg)
        val (_, code2, msg2) = n.submit("job2", 96, listOf(1L)).status()
        assertEquals("BAD_REQUEST" to "'options' must be an object", code2 to msg2)
        // Falsy options are the defaults (SPEC_NOTES T8).
        assertTrue(n.submit("job3", 96, listOf<Any>()).waiting)
    }

    fun testBadDataIsAnsweredBadInputOncePrepared() {
        val n = cluster(1)
        val (h, blobs) = FakeNode.trainRequest("job", 96, testOptions, nan = true)
        val rec = RecordedReplier()
        n.coord.submit(h, blobs, rec)
        n.until("the reply") { rec.ended() }
        val (_, code, msg) = rec.status()
        assertEquals("BAD_INPUT", code)
        assertTrue(msg.startsWith("inputs contain NaN"), msg)
        assertEquals(0, n.coord.running())
        assertEquals(listOf("BAD_INPUT"), n.finished)
        assertEquals("training_failed", n.events.last())
    }

    fun testEachTrainerGetsItsOwnChunkWithTheRows() {
        val n = cluster(2)
        n.submit("job", 96, testOptions)
        val (a, b) = n.trainers
        n.until("a job at each trainer") { a.jobs.isNotEmpty() && b.jobs.isNotEmpty() }
        assertEquals(listOf(0, 0, 1, 0), listOf(a.jobs[0].chunk, a.jobs[0].round, b.jobs[0].chunk, b.jobs[0].round))
        assertTrue(a.jobs[0].x != null && b.jobs[0].x != null)
        assertEquals(n.coord.replyTo, a.jobs[0].replyTo)
        assertTrue(a.jobs[0].jobId.startsWith("job#") && a.jobs[0].jobId.length == "job#".length + 12, a.jobs[0].jobId)
        assertEquals("training_started", n.events[0])
        assertEquals("""{"hidden_layers":[4],"epochs":2}""", String(zmqnode.wire.Json.encode(a.jobs[0].options)))
    }

    fun testAResultThatDoesNotBelongToTheRunningRoundIsIgnored() {
        for (spoil in listOf<(Result) -> Result>(
            { it.copy(jobId = "job#0123456789ab") }, { it.copy(round = 1) }, { it.copy(chunk = 5) })) {
            val n = cluster(1)
            val rec = n.submit("job", 96, testOptions)
            val tr = n.trainers[0]
            n.until("the job") { tr.jobs.isNotEmpty() }
            val j = tr.jobs[0]
            tr.jobs.clear()
            val real = tr.trained(j)
            tr.answer(j, spoil(real))
            assertEquals(0, rec.answers.size)
            tr.answer(j, real) // the real answer still counts
            n.until("round 0's progress", tick = false) { rec.answers.isNotEmpty() }
            assertEquals("PROGRESS", rec.answers[0]["status"])
            assertEquals(1, rec.answers[0]["round"])
            assertEquals(1, tr.jobs[0].round)
            assertEquals(0, n.commits.size)
        }
    }

    fun testATrainerThatLostTheRowsGetsThemAgain() {
        val n = cluster(1)
        n.submit("job", 96, testOptions)
        val tr = n.trainers[0]
        n.until("the job") { tr.jobs.isNotEmpty() }
        val j = tr.jobs[0]
        tr.jobs.clear()
        tr.answer(j, Result(j.jobId, j.round, j.chunk, tr.id, missingData = true))
        n.until("the job again", tick = false) { tr.jobs.isNotEmpty() }
        val again = tr.jobs[0]
        assertEquals(listOf(j.chunk, j.round), listOf(again.chunk, again.round))
        assertTrue(again.x != null && again.x!!.data.contentEquals(j.x!!.data), "the rows were not sent again")
    }

    fun testATrainerErrorFailsTheJobTrainingFailed() {
        val n = cluster(1)
        val rec = n.submit("job", 96, testOptions)
        val tr = n.trainers[0]
        n.until("the job") { tr.jobs.isNotEmpty() }
        val j = tr.jobs[0]
        tr.answer(j, Result(j.jobId, 0, 0, tr.id, error = "MemoryError()"))
        val (_, code, msg) = rec.status()
        assertEquals("TRAINING_FAILED" to "trainer ${tr.id}: MemoryError()", code to msg)
        assertEquals(0, n.coord.running())
    }

    fun testAResultWithTheWrongNumberOfParametersFailsTheJob() {
        val n = cluster(1)
        val rec = n.submit("job", 96, testOptions)
        val tr = n.trainers[0]
        n.until("the job") { tr.jobs.isNotEmpty() }
        val j = tr.jobs[0]
        tr.answer(j, Result(j.jobId, 0, 0, tr.id, 96, 0.1, TrainArray.ofFloat32(listOf(2), floatArrayOf(1f, 2f))))
        assertEquals("trainer ${tr.id}: sent 2 parameters; the network has 3", rec.status().third)
    }

    fun testAGarbageResultIsCountedAndDropped() {
        val n = cluster(1)
        n.coord.onResult(listOf("{".toByteArray()))
        assertEquals(listOf("training_garbage"), n.counted)
    }

    fun testAChunkOfADownTrainerGoesToAnotherTrainerAtOnce() {
        val n = cluster(2)
        n.submit("job", 96, testOptions)
        val (a, b) = n.trainers
        n.until("a job at each trainer") { a.jobs.isNotEmpty() && b.jobs.isNotEmpty() }
        a.jobs.clear()
        n.members = listOf(a.id)
        n.down[b.id] = "is down (node silent for 3.0s)"
        n.until("the moved chunk") { a.jobs.isNotEmpty() }
        assertEquals(1, a.jobs[0].chunk)
        assertTrue(a.jobs[0].x != null)
    }

    fun testAnUnansweredChunkMovesAfterTheFirstAnswerTimeout() {
        val n = cluster(2)
        n.submit("job", 96, testOptions)
        val (a, b) = n.trainers
        n.until("a job at each trainer") { a.jobs.isNotEmpty() && b.jobs.isNotEmpty() }
        a.jobs.clear(); b.jobs.clear()
        n.skew = SchedulerConstants.FIRST_ANSWER_TIMEOUT - 1
        n.coord.tick()
        assertEquals(0, a.jobs.size + b.jobs.size)
        n.skew = SchedulerConstants.FIRST_ANSWER_TIMEOUT + 1
        n.coord.tick()
        assertEquals(listOf(1, 0), listOf(a.jobs[0].chunk, b.jobs[0].chunk))
    }

    fun testAJobPastItsTrainingTimeoutFailsWithTimeout() {
        val n = cluster(1) { now -> CoordinatorConfig(trainingTimeout = 30.0, now = now) }
        val rec = n.submit("job", 96, testOptions)
        n.until("the job") { n.trainers[0].jobs.isNotEmpty() }
        n.skew = 29.0
        n.coord.tick()
        assertFalse(rec.ended())
        n.skew = 31.0
        n.coord.tick()
        assertEquals("TIMEOUT" to "training did not finish within 30s", rec.status().second to rec.status().third)
        assertEquals(0, n.coord.running())
    }

    fun testTheRoundsAverageTheTrainersParametersWeightedByRows() {
        val n = cluster(2, auto = true)
        n.submit("job", 96, testOptions)
        n.until("the commit") { n.commits.isNotEmpty() }
        // Round 0: chunk 0 -> +1, chunk 1 -> +2, 48 rows each: 1.5; round 1: 3.0.
        assertEquals("3.0,3.0,3.0", String(n.models[0], Charsets.UTF_8))
    }

    fun testAFinishedJobCallsCommitModelOnceAndEveryJoinedClientGetsTheReply() {
        val n = cluster(2, auto = true)
        val first = n.submit("job", 96, testOptions)
        n.until("the commit") { n.commits.isNotEmpty() }
        val retry = n.submit("job", 96, testOptions) // joins while committing
        assertEquals("committing", n.coord.views()[0]["state"])
        assertEquals(1, first.answers.count { it["status"] == "PROGRESS" }) // after round 0; round 1 ends with the commit
        n.skew = 3600.0
        repeat(5) { n.turn(true) }
        assertEquals(1, n.commits.size)
        assertFalse(first.ended())
        val reply = n.replies[0]
        reply.ok(n.commits[0], emptyList(), listOf("model_id" to "m-1"))
        reply.ok(n.commits[0], emptyList(), listOf("model_id" to "m-2")) // ignored
        for (rec in listOf(first, retry)) {
            val last = rec.last()!!
            assertEquals(listOf<Any?>("m-1", 2, 2), listOf(last["model_id"], last["rounds"], (last["trainers"] as List<*>).size))
            assertEquals(listOf("model_id", "trainers", "rounds", "train_seconds", "warnings", "metrics"), last.keys.drop(1))
        }
        assertEquals(0, n.coord.running())
        assertEquals(listOf("OK"), n.finished)
        assertEquals("training_finished", n.events.last())
    }

    fun testColumnNamesReachTheModel() {
        val n = cluster(2, auto = true)
        n.submit("named", 96, testOptions) {
            this["features"] = listOf("a", "b")
            this["targets"] = listOf("answer")
        }
        n.until("the commit") { n.commits.isNotEmpty() }
        val summary = n.replies.size
        assertEquals(1, summary)
    }

    fun testLeadershipLostFailsTheJobsNotCommittingWithNotLeader() {
        val n = cluster(1, auto = true) { now -> CoordinatorConfig(maxTrainings = 2, now = now) }
        val committing = n.submit("committing", 96, testOptions)
        n.until("the first job's commit") { n.commits.isNotEmpty() }
        n.trainers[0].auto = false
        n.trainers[0].jobs.clear()
        val training = n.submit("training", 96, testOptions)
        n.until("the second job's chunk") { n.trainers[0].jobs.isNotEmpty() }
        n.coord.lostLeadership()
        val (_, code, msg) = training.status()
        assertEquals("NOT_LEADER", code)
        assertTrue(msg.contains("retry with the same request id"), msg)
        assertFalse(committing.ended())
        assertEquals(1, n.coord.running())
    }

    fun testAChunkSentBeforeItsTrainerRestartedMovesWithAWarning() {
        val n = cluster(2)
        n.submit("job", 96, testOptions)
        val (a, b) = n.trainers
        n.until("a job at each trainer") { a.jobs.isNotEmpty() && b.jobs.isNotEmpty() }
        a.jobs.clear()
        n.skew = 1.0 // the restart comes after the send
        n.coord.trainerRestarted(b.id, -9)
        n.until("the moved chunk") { a.jobs.isNotEmpty() }
        assertEquals(1, a.jobs[0].chunk)
        assertTrue(a.jobs[0].x != null)
    }

    fun testAProgressViewShowsTheRound() {
        val n = cluster(1)
        n.submit("job", 96, testOptions)
        n.until("the job") { n.trainers[0].jobs.isNotEmpty() }
        val v = n.coord.views()[0]
        assertEquals(listOf("id", "state", "round", "rounds", "epoch", "epochs", "metrics", "elapsed_s", "trainers"), v.keys.toList())
        assertEquals("training", v["state"])
        n.coord.close()
        assertTrue(n.trainers[0].closed)
    }
}
