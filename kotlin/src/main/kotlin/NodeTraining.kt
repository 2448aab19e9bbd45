// The trainer and the leader's training coordinator (zmqnode.training)
// wired to the node (go/node/services.go): the trainer's sockets in their
// own context with their own ZAP handler, the coordinator's PUSHes to the
// trainers and its results PULL served by the loop.
package zmqnode.node

import zmqnode.training.ChunkRunner
import zmqnode.training.Coordinator
import zmqnode.training.CoordinatorConfig
import zmqnode.training.CoordinatorLinks
import zmqnode.training.MlChunkRunner
import zmqnode.training.MlPlanMaker
import zmqnode.training.ResultLink
import zmqnode.training.TrainReplier
import zmqnode.training.Trainer
import zmqnode.training.TrainerLink
import zmqnode.training.TrainerSockets
import zmqnode.training.Trainers
import zmqnode.training.TrainingRefused
import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonObject
import zmqnode.zmq.Context
import zmqnode.zmq.Option
import zmqnode.zmq.Poller
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.WatchedLink
import zmqnode.zmq.Zmq

/** The trainer's sockets: a PULL on P+3000 (members only) in a context of its own, with its own ZAP handler. */
class NodeTrainerSockets(private val n: Node, private val allowed: () -> List<String>) : TrainerSockets {
    private val ctx = Context()
    private val gate = Gatekeeper.start(ctx, n.keys, n.log.forLevel("WARNING", "zmqnode.training.trainer"))
    private var seen: List<String> = emptyList()
    override val endpoint = NodeConfig.endpoint(n.cfg.host, n.cfg.port + TRAINING_OFFSET)
    private val pull: Socket = ctx.socket(SocketType.PULL).also { s ->
        s.setInt(Option.LINGER, 0)
        KeyFiles.makeServer(s, n.keys, DOMAIN_PEERS)
        try {
            s.bind(endpoint)
        } catch (e: Exception) {
            s.close()
            gate?.stop()
            ctx.term()
            throw BindError("cannot bind $endpoint: ${e.message}")
        }
    }
    private val poller = Poller().also { it.add(pull, Zmq.POLLIN) }

    init {
        reloadMembers()
    }

    override fun receive(timeoutMs: Int): List<ByteArray>? {
        val ready = poller.poll(timeoutMs.toLong())
        if (ready[0] and Zmq.POLLIN == 0) return null
        return pull.tryRecv()
    }

    override fun connectResults(endpoint: String): ResultLink {
        val s = ctx.socket(SocketType.PUSH)
        val watch = try {
            s.setInt(Option.LINGER, zmqnode.training.TrainerConstants.RESULT_LINGER_MS)
            s.setInt(Option.SNDHWM, zmqnode.training.TrainerConstants.RESULT_SEND_HWM)
            KeyFiles.makeClient(s, n.keys)
            // A results PULL whose ZAP refused us is reopened (PROTOCOL.md §1.1, go/training/reopen.go).
            WatchedLink.connect(s, endpoint, "leader's results PULL $endpoint", "training results PUSH",
                warn = { msg -> n.log.warning(TRAINER_LOG, msg) }, info = { msg -> n.log.info(TRAINER_LOG, msg) },
                count = { }, refusedEvent = "trainer_handshake_refused", reopenedEvent = "trainer_link_reopened")
        } catch (e: Exception) {
            s.setInt(Option.LINGER, 0)
            s.close()
            throw e
        }
        return object : ResultLink {
            override fun send(frames: List<ByteArray>): Boolean = s.trySend(frames)
            override fun tick() = watch.poll(System.nanoTime() / 1_000_000)
            override fun close() {
                watch.close()
                s.close()
            }
        }
    }

    override fun reloadMembers() {
        val keys = allowed()
        if (gate != null && keys.isNotEmpty() && keys != seen) {
            seen = keys
            gate.setMembers(keys)
        }
    }

    override fun shutdown() = ctx.shutdown()

    override fun close() {
        poller.close()
        pull.close()
        gate?.stop()
        ctx.term()
    }
}

/** A handlers' Replier as the coordinator's TrainReplier. */
class TrainReplierOf(private val r: Replier) : TrainReplier {
    override fun ok(req: JsonObject, blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) = r.ok(req, blobs, fields)
    override fun error(req: JsonObject, code: String, message: String) = r.error(req, ErrorCode(code), message)
    override fun redirect(req: JsonObject, leader: String) = r.redirect(req, leader)
    override fun progress(req: JsonObject, fields: List<Pair<String, Any?>>) = r.progress(req, fields)
    override fun waiting(req: JsonObject) = r.waitFor(req)
}

/** The coordinator's TrainReplier as a handlers' Replier. */
class ReplierOf(private val r: TrainReplier) : Replier {
    override fun ok(req: JsonObject?, blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) = r.ok(req!!, blobs, fields)
    override fun error(req: JsonObject?, code: ErrorCode, message: String) = r.error(req!!, code.code, message)
    override fun redirect(req: JsonObject?, leader: String) = r.redirect(req!!, leader)
    override fun progress(req: JsonObject?, fields: List<Pair<String, Any?>>) = r.progress(req!!, fields)
    override fun waitFor(req: JsonObject?) = r.waiting(req!!)
}

private const val TRAINER_LOG = "zmqnode.training.trainer"
private const val COORDINATOR_LOG = "zmqnode.training.coordinator"
/** process.py TRAINER_RESPAWN_SECONDS. */
private const val TRAINER_RESPAWN_NANOS = 1_000_000_000L

object NodeTraining {
    fun start(n: Node, s: NodeServices) {
        val cfg = n.cfg
        val m = s.metrics
        val allowed = java.util.concurrent.atomic.AtomicReference<List<String>>(n.keys?.members ?: emptyList())
        n.onAllowed = { keys -> allowed.set(ArrayList(keys)) }
        var trainerStart = nowSeconds()
        fun startTrainer(): Trainer {
            val t = Trainer(n.id, NodeTrainerSockets(n) { allowed.get() }, MlChunkRunner as ChunkRunner,
                log = n.log.forLevel("INFO", TRAINER_LOG))
            t.start()
            n.log.info("zmqnode.training", "trainer listening on ${t.endpoint}")
            return t
        }
        var trainer: Trainer? = if (!cfg.trainer) null else startTrainer()
        val enabled = trainer != null
        var respawnAt: Long? = null
        var closing = false
        n.closers.add {
            closing = true
            trainer?.stop()
        }
        // process.py TrainerProcess.tick: a trainer that stopped by itself is
        // started again (at most once a second) and the coordinator told, its
        // cached chunks being gone (Coordinator.trainerRestarted).
        fun superviseTrainer(c: Coordinator) {
            val t = trainer ?: return
            val now = System.nanoTime()
            val due = respawnAt
            if (!t.isDone() || closing || (due != null && now - due < 0)) return
            // A thread has no exit status: 1, as a process that failed.
            val status = 1
            n.log.warning("zmqnode.training.process", "trainer process exited with status $status; restarting it")
            respawnAt = now + TRAINER_RESPAWN_NANOS
            trainer = try {
                startTrainer()
            } catch (e: Exception) {
                n.log.warning("zmqnode.training.process", "cannot restart the trainer: ${e.message}")
                return
            }
            trainerStart = nowSeconds()
            c.trainerRestarted(n.id, status)
        }
        fun survey(): Trainers {
            val now = nowSeconds()
            val nano = System.nanoTime()
            val heard = HashMap<String, Double>()
            for ((p, t) in n.links.lastHeard) heard[p] = now - (nano - t) / 1e9
            val exited = trainer?.isDone() ?: false
            return Trainers.survey(now, n.id, enabled, exited, trainerStart, n.core.peers, heard)
        }
        lateinit var coordinator: Coordinator
        val links = object : CoordinatorLinks {
            override val id: String = n.id
            override fun members(): List<String> = survey().available
            override fun bindResults(endpoint: String, maxMessageBytes: Long): AutoCloseable {
                val sock = n.serverSocket(SocketType.PULL, endpoint, DOMAIN_PEERS, maxMessageBytes)
                sock.setInt(Option.LINGER, 0)
                n.register(sock) { frames -> coordinator.onResult(frames) }
                return AutoCloseable {
                    n.unregister(sock)
                    sock.close()
                }
            }
            override fun connectTrainer(member: String, endpoint: String): TrainerLink {
                val sock = n.ctx.socket(SocketType.PUSH)
                val watch = try {
                    sock.setInt(Option.LINGER, 0)
                    sock.setInt(Option.IMMEDIATE, 1)
                    sock.setInt(Option.SNDHWM, zmqnode.training.CoordinatorDefaults.TRAINER_SEND_HWM)
                    KeyFiles.makeClient(sock, n.keys)
                    // A trainer whose ZAP refused us is reopened (PROTOCOL.md §1.1, go/training/reopen.go).
                    WatchedLink.connect(sock, endpoint, "trainer $member", "training PUSH",
                        warn = { msg -> n.log.warning(COORDINATOR_LOG, msg) },
                        info = { msg -> n.log.info(COORDINATOR_LOG, msg) },
                        count = { kind -> n.count(kind) },
                        refusedEvent = "trainer_handshake_refused", reopenedEvent = "trainer_link_reopened")
                } catch (e: Exception) {
                    sock.setInt(Option.LINGER, 0)
                    sock.close()
                    throw e
                }
                return object : TrainerLink {
                    override fun send(frames: List<ByteArray>): Boolean = try { sock.trySend(frames) } catch (e: Exception) { false }
                    override fun tick() = watch.poll(System.nanoTime() / 1_000_000)
                    override fun close() {
                        watch.close()
                        sock.close()
                    }
                }
            }
            override fun commitModel(req: JsonObject, model: ByteArray, reply: TrainReplier) {
                val parsed = try {
                    NodeModels.parser()!!(model) as ServedModel
                } catch (e: Exception) {
                    reply.error(req, ErrorCode.INTERNAL.code, "node ${n.id} trained a model it cannot read: ${e.message}")
                    return
                }
                n.handlers.commitModel(req, model, parsed.listingSummary(), emptyList(), ReplierOf(reply))
            }
            override fun wake() = n.wake()
            override fun count(kind: String) = n.count(kind)
            override fun down(): Map<String, String> = survey().down
            override fun admit(req: JsonObject) = n.handlers.admit(req)
            override fun event(kind: String, text: String) = n.events.add(kind, text)
            override fun jobFinished(status: String, seconds: Double) {
                m.trainingJobs.inc(status)
                m.trainingSeconds.observe(seconds)
            }
            override fun log(message: String) = n.log.info("zmqnode.training", message)
        }
        coordinator = Coordinator(links, MlPlanMaker, CoordinatorConfig(maxTrainings = cfg.maxTrainings,
            trainingTimeout = cfg.trainingTimeoutSeconds, maxRequestBytes = cfg.maxRequestBytes,
            maxModelBytes = cfg.maxModelBytes))
        n.handlers.training = object : TrainingService {
            override fun running(requestId: String): Boolean = false
            override fun submit(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
                try {
                    coordinator.submit(req, blobs, TrainReplierOf(reply))
                } catch (e: TrainingRefused) {
                    reply.error(req, ErrorCode(e.code), e.message ?: "")
                }
            }
            override fun joined(): Int = coordinator.joinedClients()
        }
        n.onTurn.add {
            superviseTrainer(coordinator)
            coordinator.tick()
        }
        n.onLeadershipLost.add { coordinator.lostLeadership() }
        n.closers.add { coordinator.close() }
        n.trainingsRunning = { coordinator.running() }
        n.trainerState = { trainer?.status(coordinator.running() > 0) ?: "disabled" }
        n.trainingViews = { coordinator.views().map { NodeModels.jsonValue(it) as JsonObject } }
    }
}
