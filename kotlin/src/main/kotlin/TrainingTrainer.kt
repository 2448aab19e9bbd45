// A node's trainer (go/training/trainer.go, zmqnode/training/trainer.py):
// PULL SUB_TRAIN jobs on P+3000 (members only), cache chunks, train with
// zmqnode.ml (through ChunkRunner), PUSH results to each job's reply_to
// over links reopened when the leader's ZAP refuses them. The sockets are
// behind TrainerSockets so the node wires libzmq/CURVE and tests use fakes.
package zmqnode.training

import java.util.concurrent.atomic.AtomicBoolean

/** The trainer's constants, as zmqnode/training/trainer.py. */
object TrainerConstants {
    /** Bounds the chunk cache. */
    const val CACHE_BYTES = 2L shl 30
    /** Result sockets kept open, least recently used closed first. */
    const val MAX_PUSHERS = 16
    /** Results queued for one leader before the next is dropped. */
    const val RESULT_SEND_HWM = 64
    /** How often an idle trainer re-reads the member keys (PARENT_CHECK_MS). */
    const val POLL_MS = 500
    /** LINGER of a results PUSH. */
    const val RESULT_LINGER_MS = 1000
}

/** trainer.ChunkCache: (job, chunk) -> (x, y), bounded by bytes, least recently used out first (the newest always stays). */
class ChunkCache(val maxBytes: Long) {
    var size = 0L
        private set
    // Access order: the first entry is the least recently used.
    private val items = LinkedHashMap<Pair<String, Int>, Pair<TrainArray, TrainArray>>(16, 0.75f, true)

    val count: Int get() = items.size

    /** The chunk's rows, marked recently used; null if not cached. */
    fun get(job: String, chunk: Int): Pair<TrainArray, TrainArray>? = items[job to chunk]

    /** Keeps the chunk's rows (a chunk already cached is left as it is). */
    fun put(job: String, chunk: Int, x: TrainArray, y: TrainArray) {
        val key = job to chunk
        if (items.containsKey(key)) return
        items[key] = x to y
        size += x.data.size + y.data.size
        while (size > maxBytes && items.size > 1) {
            val it = items.entries.iterator()
            val old = it.next()
            it.remove()
            size -= old.value.first.data.size + old.value.second.data.size
        }
    }
}

/**
 * distributed.run_chunk from wire arrays: the options (first: bad options
 * win over bad shapes), float32 conversion, a 1-D y as one column, the shape
 * check, then the training. Throws zmqnode.ml exceptions (their Python
 * class names go into the result's error).
 */
interface ChunkRunner {
    fun run(job: Job, x: TrainArray, y: TrainArray): ChunkOutcome
}

/** trainer.handle: cache the job's rows if it carries them, then train the chunk or say why not. name is the trainer's node id. */
fun handle(j: Job, cache: ChunkCache, name: String, runner: ChunkRunner): Result {
    if (j.x != null && j.y != null) cache.put(j.jobId, j.chunk, j.x, j.y)
    val data = cache.get(j.jobId, j.chunk) ?: return Result(j.jobId, j.round, j.chunk, name, missingData = true)
    val res = try {
        runner.run(j, data.first, data.second)
    } catch (e: Exception) {
        return Result(j.jobId, j.round, j.chunk, name, error = pyExceptionRepr(e))
    } catch (e: StackOverflowError) {
        return Result(j.jobId, j.round, j.chunk, name, error = pyExceptionRepr(RuntimeException(e.toString())))
    } catch (e: OutOfMemoryError) {
        return Result(j.jobId, j.round, j.chunk, name, error = "MemoryError()")
    }
    return Result(j.jobId, j.round, j.chunk, name, res.nSamples, res.loss,
        TrainArray.ofFloat32(listOf(res.params.size), res.params))
}

/** The trainer's PUSH to a leader's results PULL (LINGER 1 s, SNDHWM 64, reopened when the leader's ZAP refuses it). */
interface ResultLink {
    /** Non-blocking send; false when the queue is full (the leader is not reading). Throws on other failures. */
    fun send(frames: List<ByteArray>): Boolean
    /** Read the monitor, reopen if due (called every loop turn). */
    fun tick() {}
    fun close()
}

/** The trainer's sockets, in its own ZeroMQ context with its own ZAP handler (members only). */
interface TrainerSockets {
    /** The job PULL's endpoint (bound before the trainer starts). */
    val endpoint: String
    /** One job body, waiting at most timeoutMs; null on timeout. Throws once the context is shut down. */
    fun receive(timeoutMs: Int): List<ByteArray>?
    /** Connects a PUSH to a leader's results endpoint; throws on failure. */
    fun connectResults(endpoint: String): ResultLink
    /** Re-reads the member keys and updates the ZAP allow-list if they changed (every turn). */
    fun reloadMembers() {}
    /** Interrupts receive (from another thread): it throws from now on. */
    fun shutdown()
    /** Closes everything (on the trainer's thread, after the loop). */
    fun close()
}

/**
 * A node's trainer on its own thread: pulls jobs, trains, pushes results.
 * [name] is the node id it answers as ("host:port").
 */
class Trainer(val name: String, private val sockets: TrainerSockets, private val runner: ChunkRunner,
              cacheBytes: Long = TrainerConstants.CACHE_BYTES,
              private val log: (String) -> Unit = { System.err.println(it) }) {
    private val stopping = AtomicBoolean(false)
    private val cache = ChunkCache(cacheBytes)
    // Access order: the first is the least recently used.
    private val pushers = LinkedHashMap<String, ResultLink>(16, 0.75f, true)
    private val lock = Object()
    private var busy = false
    private var jobs = 0L
    private var dropped = 0L
    private var cached = 0
    private var pusherCount = 0
    @Volatile private var exitErr: Throwable? = null
    private val thread = Thread({ serve() }, "trainer-$name").apply { isDaemon = true }
    @Volatile private var done = false

    /** The endpoint the PULL is bound at. */
    val endpoint: String get() = sockets.endpoint

    /** Starts serving (once). */
    fun start(): Trainer {
        log("trainer for $name ready on ${sockets.endpoint}")
        thread.start()
        return this
    }

    /** Ends the trainer (after the job it is training, if any) and closes its sockets. Safe to call more than once. */
    fun stop() {
        if (stopping.compareAndSet(false, true)) sockets.shutdown()
        if (Thread.currentThread() !== thread) thread.join()
    }

    /** Whether the trainer has stopped (stop, or a failure: see err); the node then starts a new one and tells its coordinator. */
    fun isDone(): Boolean = done

    /** Waits until the trainer stopped, at most ms milliseconds; true if it did. */
    fun awaitDone(ms: Long): Boolean {
        thread.join(ms)
        return done
    }

    /** Why the trainer stopped by itself (null while it runs or after stop). */
    val err: Throwable? get() = exitErr

    /**
     * The status feed's "trainer" value (§9b) as TrainerProcess.state gives
     * it: "down" once stopped, else "training" when busy (the coordinator has
     * jobs) or a job is being trained here, else "idle" (SPEC_NOTES T9).
     */
    fun status(busy: Boolean): String {
        if (done) return "down"
        synchronized(lock) { return if (busy || this.busy) "training" else "idle" }
    }

    /** For the status feed and STATUS: state, endpoint, jobs, dropped, cached_chunks, result_sockets (in that order). */
    fun state(): Map<String, Any?> {
        val state = status(false)
        synchronized(lock) {
            return linkedMapOf("state" to state, "endpoint" to sockets.endpoint, "jobs" to jobs, "dropped" to dropped,
                "cached_chunks" to cached, "result_sockets" to pusherCount)
        }
    }

    private fun serve() {
        try {
            while (!stopping.get()) {
                sockets.reloadMembers()
                val frames = try {
                    sockets.receive(TrainerConstants.POLL_MS)
                } catch (e: Exception) {
                    if (!stopping.get()) {
                        log("trainer for $name: receive failed: ${e.message}")
                        exitErr = e
                    }
                    return
                }
                for (p in ArrayList(pushers.values)) p.tick()
                if (frames != null) one(frames)
            }
        } finally {
            for (p in pushers.values) try { p.close() } catch (e: Exception) { }
            pushers.clear()
            try { sockets.close() } catch (e: Exception) { }
            done = true
        }
    }

    private fun drop() = synchronized(lock) { dropped++ }

    /** Handles one received job body. */
    internal fun one(frames: List<ByteArray>) {
        val j = try {
            decodeJob(frames)
        } catch (e: TrainingRefused) {
            log("trainer dropped a malformed job: ${e.message}")
            drop()
            return
        }
        if (!validEndpoint(j.replyTo)) {
            log("trainer dropped job ${clip80(zmqnode.pyfmt.Pyfmt.strRepr(j.jobId))}: reply_to " +
                "${clip80(zmqnode.pyfmt.Pyfmt.strRepr(j.replyTo))} is not a tcp://host:port endpoint")
            drop()
            return
        }
        val push = pusher(j.replyTo)
        if (push == null) {
            drop()
            return
        }
        synchronized(lock) { busy = true }
        val result = handle(j, cache, name, runner)
        val out = encodeResult(result)
        synchronized(lock) {
            busy = false
            jobs++
            cached = cache.count
            pusherCount = pushers.size
        }
        val sent = try {
            push.send(out)
        } catch (e: Exception) {
            drop()
            log("trainer could not send the result of chunk ${j.chunk} of ${j.jobId}: ${e.message}")
            return
        }
        if (!sent) {
            drop()
            log("leader at ${j.replyTo} is not taking results; dropped chunk ${j.chunk} of ${j.jobId}")
        }
    }

    /** The PUSH to endpoint (opened on first use, at most MAX_PUSHERS kept), or null if it cannot be connected. */
    private fun pusher(endpoint: String): ResultLink? {
        pushers[endpoint]?.let { return it }
        val link = try {
            sockets.connectResults(endpoint)
        } catch (e: Exception) {
            log("trainer dropped a job: cannot connect to reply_to ${clip80(zmqnode.pyfmt.Pyfmt.strRepr(endpoint))}: ${e.message}")
            return null
        }
        pushers[endpoint] = link
        while (pushers.size > TrainerConstants.MAX_PUSHERS) {
            val it = pushers.entries.iterator()
            val old = it.next()
            it.remove()
            try { old.value.close() } catch (e: Exception) { }
        }
        return link
    }

    /** Python's %.80r: the repr cut at 80 characters (code points). */
    private fun clip80(s: String): String =
        if (s.codePointCount(0, s.length) > 80) s.substring(0, s.offsetByCodePoints(0, 80)) else s
}
