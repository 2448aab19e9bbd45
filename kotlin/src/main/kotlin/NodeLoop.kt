// The node: the event loop that drives the Raft core (zmqnode.raft) over
// ZeroMQ and disk, the replicated registry and every client request
// (zmqnode/node.py, go/node/node.go).
//
// One thread (run's) owns the core and every socket. Each turn: poll until
// the next tick; drain the sockets (Raft messages to the core, client
// requests to the handlers); tick when due; issue the batched read index;
// process the core's Ready (persist, send, apply, advance); flush the
// predictions; expire parked requests. Other threads (ZAP, HTTP, training)
// reach the loop only through submit, which wakes it over an inproc PAIR.
package zmqnode.node

import zmqnode.raft.ConfChange
import zmqnode.raft.Config
import zmqnode.raft.Core
import zmqnode.raft.Entry
import zmqnode.raft.EntryKind
import zmqnode.raft.HardState
import zmqnode.raft.Membership
import zmqnode.raft.Message
import zmqnode.raft.Options
import zmqnode.raft.ProposeResult
import zmqnode.raft.Ready
import zmqnode.raft.Role
import zmqnode.raft.Snapshot
import zmqnode.raft.SplitMix64
import zmqnode.storage.ModelStore
import zmqnode.storage.NodeStorage
import zmqnode.storage.Recovered
import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonObject
import zmqnode.zmq.Context
import zmqnode.zmq.Option
import zmqnode.zmq.Poller
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.Zmq
import zmqnode.zmq.ZmqException
import java.io.File
import java.security.SecureRandom
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.atomic.AtomicBoolean

/** How many messages a turn reads per socket. */
const val BATCH = 256

/** A request may be this much over 4 x --max-request-bytes before the socket drops the connection. */
const val CLIENT_FRAME_SLACK = 64L shl 20

private class PollEntry(val sock: Socket, val handler: (List<ByteArray>) -> Unit)

class Node(val cfg: NodeConfig) {
    val id: String = cfg.nodeId
    val log: NodeLogger = NodeLogger(id, cfg.logPath.also { File(cfg.storageDir).mkdirs() }, cfg.logLevel)
    var keys: NodeKeys? = null
        private set
    val ctx = Context()
    private var gate: Gatekeeper? = null
    lateinit var storage: NodeStorage
        private set
    lateinit var registry: Registry
        private set
    lateinit var core: Core
        private set
    lateinit var client: Socket
        private set
    lateinit var links: PeerLinks
        private set
    private val entries = ArrayList<PollEntry>()
    private var poller: Poller? = null
    private var dirty = true
    private lateinit var wakeRecv: Socket
    private var wakeSend: Socket? = null
    private val wakeLock = Object()
    private val submits = ConcurrentLinkedQueue<() -> Unit>()

    val stats = NodeStats()
    val events = NodeEvents()
    val traffic = RaftTraffic()
    lateinit var waiters: Waiters
        private set
    val proposals = Proposals()
    lateinit var handlers: Handlers
        private set
    var compactor: Compactor? = null
    var fetcher: Fetcher? = null
    val started = System.nanoTime()
    private val running = AtomicBoolean(false)
    private var nextTick = 0L
    var ticks = 0L
        private set
    private var lastRole = Role.FOLLOWER
    private var lastLeader = ""
    private val peersDown = HashSet<String>()
    private var memSeen: Pair<Long, Boolean>? = null
    internal val waiting = LinkedHashSet<ClientReplier>()

    // Hooks for the services around the loop (NodeServices.kt).
    val onTurn = ArrayList<() -> Unit>()
    val onTick = ArrayList<(Long) -> Unit>()
    val onLeadershipLost = ArrayList<() -> Unit>()
    var onAllowed: ((List<String>) -> Unit)? = null
    var onStatus: ((ByteArray) -> Unit)? = null
    var onRoleCounters: ((Boolean, Boolean) -> Unit)? = null
    var trainerState: (() -> String)? = null
    var trainingViews: (() -> List<JsonObject>)? = null
    var trainingsRunning: (() -> Int)? = null
    var httpRate: (() -> Double)? = null
    var httpInfo = ""
    val closers = ArrayList<() -> Unit>()
    var services: NodeServices? = null

    /** The Raft log file's size in bytes (a metric). */
    fun logBytes(): Long = if (this::storage.isInitialized) storage.log.size else 0L

    init {
        if (!File(cfg.storageDir).isDirectory) throw FatalError("cannot create the storage dir ${cfg.storageDir}")
        var ok = false
        try {
            storage = NodeStorage(cfg.storageDir)
            storage.warn = { msg -> log.warning("zmqnode.storage", msg) }
            val rec = storage.open()
            registry = Registry(ModelStore(storage.modelsDir, storage.stats))
            registry.log = { level, msg -> log.log(level, "zmqnode.registry", msg) }
            rec.snapshot?.let { s ->
                try {
                    registry.restore(s.data)
                } catch (e: IllegalArgumentException) {
                    throw FatalError("snapshot of ${cfg.storageDir}: ${e.message}")
                }
            }
            loadKeys()
            val bootstrap = bootstrap(rec)
            val seed = SecureRandom().nextLong() xor System.nanoTime()
            core = Core(id, if (cfg.join.isEmpty()) cfg.peers else emptyList(), Config(electionTicks = cfg.electionTicks),
                SplitMix64(seed), Options(
                    hardState = HardState(rec.hardState.term, rec.hardState.vote),
                    snapshot = rec.snapshot?.let { Snapshot(it.index, it.term, it.data, it.membership) },
                    entries = rec.entries.map { fromStorage(it) },
                    bootstrap = bootstrap,
                    voteFloor = zmqnode.storage.loadJoinedAt(cfg.storageDir)))
            for (p in core.peers) peersDown.add(p)
            log.info("zmqnode.node", "node $id starting (Kotlin): term ${rec.hardState.term}, ${rec.entries.size} log " +
                "entries, members ${describe(core.membership)}, storage ${cfg.storageDir}")
            // Before any socket binds: without a ZAP handler libzmq admits every key.
            gate = Gatekeeper.start(ctx, keys, log.forLevel("WARNING", "zmqnode.security"))
            try {
                client = serverSocket(SocketType.ROUTER, NodeConfig.endpoint(cfg.host, cfg.port), DOMAIN_CLIENTS,
                    4 * cfg.maxRequestBytes + CLIENT_FRAME_SLACK)
                register(client) { frames -> onClient(frames) }
                links = PeerLinks(this, 2 * cfg.maxModelBytes + (16L shl 20))
            } catch (e: BindError) {
                throw RuntimeException("node $id: ${e.message}. Another node (or an old one) is probably using " +
                    "this port: stop it (./run_cluster.sh stop) or choose another --port")
            }
            register(links.raftSock) { frames -> if (frames.size > 1) onRaft(links.receive(frames.subList(1, frames.size))) }
            register(links.sub) { frames -> onRaft(links.receivePublished(frames)) }
            onTick.add { now -> links.tick(now) }
            openWake()
            waiters = Waiters(id) { e -> log.error("zmqnode.waiting", "internal error while answering a deferred request: $e") }
            compactor = Compactor(this)
            fetcher = Fetcher(this)
            handlers = Handlers(this)
            fetchDamaged()
            syncMembership()
            NodeServices.start(this)
            ok = true
        } finally {
            if (!ok) closeAll()
        }
    }

    private fun loadKeys() {
        if (cfg.insecure) {
            log.warning("zmqnode.transport.security", "node $id: running with --insecure: no encryption, " +
                "no authentication; anyone who reaches the ports is a member")
            return
        }
        if (cfg.localKeys) LocalKeys.ensure(this)
        val k = try {
            KeyFiles.loadNodeKeys(cfg.keysDir, cfg.nodeKey, cfg.clientAuth)
        } catch (e: KeyFileError) {
            throw FatalError(e.message ?: "key error", e)
        }
        keys = k
        val clients = if (k.clients != null) "${k.clients.size} allowed keys" else "any holding cluster.key"
        log.info("zmqnode.node", "CURVE on: node key ${cfg.nodeKey}, ${k.members.size} members allowed, clients: $clients")
    }

    /** Where node's public key lives in the key directory, by the layout that made it (members.py member_key_file). */
    fun memberKeyFile(node: String): String {
        if (cfg.insecure) return ""
        val (host, port) = try { Addresses.parse(node) } catch (e: IllegalArgumentException) { return "" }
        val secret = if (cfg.localKeys) Addresses.localNodeKey(cfg.keysDir, host, port) else {
            val members = listOf(id) + cfg.peers
            if (node !in members) return ""
            Addresses.defaultNodeKey(cfg.keysDir, host, port, members.filter { it != node })
        }
        val f = File(secret)
        return File(File(f.parentFile ?: File("."), "members"), f.name.replace(".key_secret", ".key")).path
    }

    private fun bootstrap(rec: Recovered): Membership {
        val own = keys?.public ?: ""
        if (cfg.join.isEmpty()) {
            val creds = LinkedHashMap<String, String>()
            if (own != "") creds[id] = own
            for (p in cfg.peers) {
                val path = memberKeyFile(p)
                if (path != "") {
                    try {
                        val k = KeyFiles.loadPublicKey(path)
                        if (k != "") creds[p] = k
                    } catch (e: KeyFileError) {
                    }
                }
            }
            return Membership.of(listOf(id) + cfg.peers, emptyList(), creds)
        }
        val fresh = rec.snapshot == null && rec.entries.isEmpty() && rec.hardState.term == 0L
        if (!fresh) return Membership.of(emptyList())
        log.info("zmqnode.node", "joining the cluster through ${cfg.join.joinToString(", ")} as a learner")
        val (data, index) = Join.askToJoin(this, own)
        val m = try {
            Membership.decode(data)
        } catch (e: Exception) {
            throw RuntimeException("node $id: the JOIN answer's membership: ${e.message}")
        }
        log.info("zmqnode.node", "joined at index $index: ${describe(m)}")
        zmqnode.storage.saveJoinedAt(cfg.storageDir, index, storage.stats)
        return m
    }

    /** A socket bound to endpoint, a CURVE server admitting the keys of ZAP [domain]. */
    fun serverSocket(type: SocketType, endpoint: String, domain: String, maxMessageBytes: Long): Socket {
        val s = ctx.socket(type)
        try {
            s.setInt(Option.LINGER, 200)
            if (maxMessageBytes > 0) s.setLong(Option.MAXMSGSIZE, maxMessageBytes)
            KeyFiles.makeServer(s, keys, domain)
        } catch (e: ZmqException) {
            s.close()
            throw e
        }
        try {
            s.bind(endpoint)
        } catch (e: ZmqException) {
            s.setInt(Option.LINGER, 0)
            s.close()
            throw BindError("cannot bind $endpoint: ${e.message}")
        }
        return s
    }

    private fun openWake() {
        val endpoint = "inproc://zmqnode-wake-${System.identityHashCode(this)}-${System.nanoTime()}"
        wakeRecv = ctx.socket(SocketType.PAIR)
        wakeRecv.setInt(Option.LINGER, 0)
        wakeRecv.bind(endpoint)
        val s = ctx.socket(SocketType.PAIR)
        s.setInt(Option.LINGER, 0)
        s.connect(endpoint)
        wakeSend = s
        register(wakeRecv) { }
    }

    /** Has the loop serve sock: each message's frames go to handler. */
    fun register(sock: Socket, handler: (List<ByteArray>) -> Unit) {
        entries.add(PollEntry(sock, handler))
        dirty = true
    }

    fun unregister(sock: Socket) {
        entries.removeIf { it.sock === sock }
        dirty = true
    }

    /** Runs fn on the loop thread (thread-safe). */
    fun submit(fn: () -> Unit) {
        submits.add(fn)
        wake()
    }

    /** Interrupts the loop's poll (thread-safe). */
    fun wake() {
        synchronized(wakeLock) {
            try {
                wakeSend?.trySend(listOf(ByteArray(0)))
            } catch (e: ZmqException) {
            }
        }
    }

    /** Asks run to return (thread-safe; SIGTERM calls it). */
    fun stop() {
        running.set(false)
        wake()
    }

    /** Serves until stop; hands leadership over before leaving. */
    fun run() {
        running.set(true)
        try {
            val http = if (httpInfo == "") "HTTP inference off" else httpInfo
            log.info("zmqnode.node", "listening: clients ${NodeConfig.endpoint(cfg.host, cfg.port)}, raft " +
                "${NodeConfig.endpoint(cfg.host, cfg.port + RAFT_OFFSET)}, heartbeats " +
                "${NodeConfig.endpoint(cfg.host, cfg.port + HEARTBEAT_OFFSET)}, monitor http://${cfg.monitorHost}:" +
                "${cfg.monitorPort}, $http")
            nextTick = System.nanoTime()
            while (running.get()) turn()
            shutdownGracefully()
            for (r in ArrayList(waiting)) {
                r.error(r.req, ErrorCode.UNAVAILABLE, "node $id is shutting down; retry (with the same request id) on another node")
            }
        } finally {
            closeAll()
            log.info("zmqnode.node", "node $id stopped")
        }
    }

    private fun turn() {
        if (dirty || poller == null) {
            poller?.close()
            val p = Poller()
            for (e in entries) p.add(e.sock, Zmq.POLLIN)
            poller = p
            dirty = false
        }
        val timeout = maxOf(0L, (nextTick - System.nanoTime()) / 1_000_000)
        val ready = poller!!.poll(timeout)
        val snapshot = ArrayList(entries)
        for (i in ready.indices) {
            if (ready[i] and Zmq.POLLIN != 0 && i < snapshot.size) drain(snapshot[i])
        }
        while (true) {
            val f = submits.poll() ?: break
            guard(f)
        }
        for (f in ArrayList(onTurn)) guard(f)
        val now = System.nanoTime()
        if (now - nextTick >= 0) {
            core.tick()
            for (f in ArrayList(onTick)) guard { f(now) }
            compactor?.tick()
            guard { fetcher?.tick(now) }
            guard { tickObservers(now) }
            nextTick += cfg.tickMillis * 1_000_000
            if (nextTick - now < 0) nextTick = now + cfg.tickMillis * 1_000_000 // fell behind: no burst of ticks
        }
        waiters.issueReads { ctx -> core.readIndex(ctx) }
        processReady()
        syncMembership()
        guard { handlers.batcher.flush() }
        if (waiters.expire()) proposals.passedOver(core.appliedIndex)
        noteRoleChange()
    }

    /** Runs f; an exception costs that one call (logged), never the node. Fatal ones pass. */
    fun guard(f: () -> Unit) {
        try {
            f()
        } catch (e: FatalError) {
            throw e
        } catch (e: zmqnode.raft.InvariantError) {
            throw FatalError(e.message ?: "raft invariant", e)
        } catch (e: Exception) {
            log.error("zmqnode.node", "internal error: $e")
            if (log.enabled("DEBUG")) e.printStackTrace()
        }
    }

    private fun drain(e: PollEntry) {
        for (i in 0 until BATCH) {
            val frames = try { e.sock.tryRecv() } catch (x: ZmqException) { null } ?: return
            guard { e.handler(frames) }
        }
    }

    private fun onClient(frames: List<ByteArray>) = handlers.onClient(frames)

    private fun onRaft(m: Message?) {
        if (m == null) return
        traffic.received(m)
        try {
            core.step(m)
        } catch (e: zmqnode.raft.InvariantError) {
            log.log("CRITICAL", "zmqnode.node", "raft: ${e.message}")
            throw FatalError(e.message ?: "raft invariant", e)
        }
    }

    fun onPeerDisconnected(peer: String) {
        if (peer != core.leaderId) return
        log.warning("zmqnode.node", "lost the connection to leader $peer (its process stopped?); electing a new one " +
            "without waiting for the election timeout")
        core.peerUnreachable(peer)
    }

    private fun processReady() {
        while (core.hasReady()) {
            val rd = core.ready()
            try {
                storage.persist(toStorageReady(rd))
            } catch (e: Exception) {
                throw FatalError(e.message ?: e.toString(), e)
            }
            for (m in rd.messages) {
                links.send(m)
                traffic.sent(m)
            }
            rd.snapshot?.let { s ->
                try {
                    registry.restore(s.data)
                } catch (e: IllegalArgumentException) {
                    throw FatalError("the leader's snapshot at ${s.index}: ${e.message}")
                }
                log.info("zmqnode.node", "installed the leader's snapshot through entry ${s.index} (${registry.models.size} models)")
                events.add("snapshot_installed", "$id: snapshot at ${s.index}")
                compactor?.syncUnsynced()
                fetchDamaged()
            }
            for (e in rd.committed) apply(e)
            core.advance(rd)
            val applied = core.appliedIndex
            for (rs in rd.readStates) waiters.readIndexReady(rs.readCtx, rs.index, applied)
            waiters.applied(applied)
        }
    }

    private fun apply(e: Entry) {
        if (e.kind == EntryKind.COMMAND) {
            val rec = try {
                registry.apply(e.index, e.data)
            } catch (x: java.io.IOException) {
                throw FatalError("cannot store the model of entry ${e.index}: ${x.message}", x)
            }
            if (rec != null) {
                fetcher?.forget(rec.modelId)
                log.info("zmqnode.node", "stored model ${rec.modelId} (${rec.size} bytes) at index ${e.index}")
                events.add("model_stored", "model ${rec.modelId} stored at index ${e.index}")
            }
        }
        proposals.applied(e.index, e.term)?.let { stats.onCommit?.invoke(it) }
    }

    /** Proposes a command; done(true) once applied in the proposing term. False when not the leader. */
    fun propose(data: ByteArray, done: (Boolean) -> Unit): Boolean {
        val res = core.propose(data)
        if (!res.accepted) return false
        proposals.add(res.index, res.term, data.size.toLong(), done)
        return true
    }

    fun proposeMembership(ch: ConfChange, base: Long?, done: (Boolean) -> Unit): ProposeResult {
        val res = core.proposeMembership(ch, base)
        if (res.accepted) proposals.add(res.index, res.term, 0, done)
        return res
    }

    fun fetchDamaged() {
        for (rec in registry.checkFiles()) fetcher?.want(rec.modelId, rec.sha256, rec.size)
    }

    /** Links and allow-lists follow the committed and latest membership (node.py _sync_membership). */
    fun syncMembership() {
        val seen = Pair(core.membershipIndex, core.membershipIndex <= core.commitIndex)
        if (seen == memSeen) return
        val first = memSeen == null
        memSeen = seen
        val committed = core.membershipAt(core.commitIndex)
        val latest = core.membership
        val peers = (committed.members + latest.members).filter { it != id }.toSortedSet().toList()
        val (added, removed) = links.setPeers(peers)
        val k = keys
        if (gate != null && k != null) {
            val admitted = allowedKeys(committed, latest, k.public, k.members)
            gate?.setMembers(admitted)
            onAllowed?.invoke(admitted)
            try {
                zmqnode.storage.MemberKeys(cfg.storageDir).write(admitted)
            } catch (e: Exception) {
                log.warning("zmqnode.node", "cannot share the member keys with the trainer: ${e.message}")
            }
        }
        if ((!first && (added.isNotEmpty() || removed.isNotEmpty())) || seen.first > 0) {
            log.info("zmqnode.node", "membership at index ${seen.first} (${if (seen.second) "committed" else "not committed yet"}): " +
                describe(latest))
        }
        if ((added.isNotEmpty() || removed.isNotEmpty()) && ticks > 0) {
            events.add("membership", "$id: members now ${describe(latest)}")
        }
        if (seen.second && !committed.contains(id)) {
            log.warning("zmqnode.node", "node $id is no longer a member of the cluster (removed at index " +
                "${core.membershipIndex}): it serves nothing new; stop it")
        }
    }

    private fun noteRoleChange() {
        val role = core.role
        val leader = core.leaderId
        if (role == lastRole && leader == lastLeader) return
        val term = core.term
        when {
            role == Role.LEADER && lastRole != Role.LEADER -> {
                log.info("zmqnode.node", "became leader for term $term")
                events.add("leader", "$id became leader for term $term")
            }
            role != Role.LEADER && leader != "" && leader != lastLeader -> {
                log.info("zmqnode.node", "following leader $leader in term $term")
                events.add("follower", "$id follows $leader in term $term")
            }
            leader == "" && lastLeader != "" -> {
                log.info("zmqnode.node", "lost contact with leader $lastLeader (term $term)")
                events.add("leader_lost", "$id lost contact with $lastLeader")
            }
        }
        val leaderChange = leader != "" && leader != lastLeader
        val campaign = (role == Role.PRE_CANDIDATE || role == Role.CANDIDATE) && role != lastRole
        onRoleCounters?.invoke(campaign, leaderChange)
        if (lastRole == Role.LEADER && role != Role.LEADER) {
            traffic.reset()
            for (f in ArrayList(onLeadershipLost)) guard(f)
        }
        lastRole = role
        lastLeader = leader
    }

    fun count(kind: String) = stats.count(kind)

    /** STATUS's role: a follower that does not vote says "learner", one no longer a member "removed". */
    fun role(): String {
        if (core.role == Role.FOLLOWER && !core.membership.isVoter(id)) {
            return if (core.membership.isLearner(id)) "learner" else "removed"
        }
        return core.role.value
    }

    fun leaderValue(): Any? = if (core.leaderId != "") core.leaderId else null

    /** The STATUS reply's fields (§5.6, observe.py NodeSnapshot.status). */
    fun status(): JsonObject = JsonObject(
        "node" to id,
        "role" to role(),
        "term" to core.term,
        "leader" to leaderValue(),
        "commit_index" to core.commitIndex,
        "applied_index" to core.appliedIndex,
        "last_index" to core.lastIndex,
        "peers" to core.peers,
        "models" to registry.models.size.toLong(),
        "snapshot_index" to core.snapshot.index,
        "models_repairing" to (fetcher?.pending() ?: 0).toLong(),
        "uptime_s" to round3((System.nanoTime() - started) / 1e9),
        "trainer" to (trainerState?.invoke() ?: "disabled"),
        "limits" to JsonObject(
            "max_request_bytes" to cfg.maxRequestBytes,
            "max_model_bytes" to cfg.maxModelBytes,
            "max_trainings" to cfg.maxTrainings.toLong(),
            "max_pending" to cfg.maxPending.toLong(),
            "max_uncommitted_bytes" to cfg.maxUncommittedBytes),
        "load" to JsonObject(
            "trainings" to (trainingsRunning?.invoke() ?: 0).toLong(),
            "pending" to handlers.pending().toLong(),
            "uncommitted_bytes" to proposals.uncommittedBytes))

    private fun peersHeard(now: Long): JsonObject {
        val o = JsonObject()
        for (p in core.peers) {
            val t = links.lastHeard[p]
            o[p] = if (t != null) round3((now - t) / 1e9) else null
        }
        return o
    }

    /** One status feed message (§9b, observe.py status_feed). */
    fun feed(now: Long): JsonObject {
        val p99 = stats.recentPredict.quantile(0.99)
        val rate = stats.recent.rate()
        val httpR = httpRate?.invoke() ?: 0.0
        val p99v: Any? = when {
            p99 == null -> null
            p99.isInfinite() -> null
            else -> round3(p99 * 1000)
        }
        return JsonObject(
            "node" to id,
            "seq" to ticks,
            "time" to round3(nowSeconds()),
            "role" to role(),
            "term" to core.term,
            "leader" to leaderValue(),
            "commit_index" to core.commitIndex,
            "applied_index" to core.appliedIndex,
            "last_index" to core.lastIndex,
            "models" to registry.models.size.toLong(),
            "models_missing" to ((fetcher?.pending() ?: 0) + registry.damaged.size).toLong(),
            "trainer" to (trainerState?.invoke() ?: "disabled"),
            "requests_per_s" to Math.round(rate * 10) / 10.0,
            "http_requests_per_s" to Math.round(httpR * 10) / 10.0,
            "p99_ms" to p99v,
            "peers" to peersHeard(now),
            "trainings" to (trainingViews?.invoke() ?: emptyList()),
            "events" to events.copy())
    }

    /** Once a tick: peers up/down and the status publication; the status feed 5 times a second. */
    private fun tickObservers(now: Long) {
        ticks++
        val downAfter = cfg.tickMillis * cfg.electionTicks
        for (p in core.peers) {
            val t = links.lastHeard[p]
            val silent = t == null || (now - t) / 1_000_000 > downAfter
            if (silent && p !in peersDown) {
                peersDown.add(p)
                events.add("peer_down", "$id: no word from $p for ${pyFloatShort(downAfter / 1000.0)}s")
            } else if (!silent && p in peersDown) {
                peersDown.remove(p)
                events.add("peer_up", "$id hears from $p")
            }
        }
        val every = maxOf(1L, Math.round(FEED_SECONDS / cfg.tickSeconds))
        if (ticks % every == 0L) links.publishStatus(zmqnode.wire.Json.encode(feed(now)))
        onStatus?.let { it(zmqnode.wire.Json.encode(status())) }
    }

    private fun shutdownGracefully() {
        if (!core.isLeader || core.peers.isEmpty()) return
        var target = ""
        var best = 0L
        for (v in core.voters) {
            if (v == id) continue
            val p = core.progress(v) ?: continue
            if (target == "" || p.match > best) {
                target = v
                best = p.match
            }
        }
        if (target == "") return
        log.info("zmqnode.node", "shutting down: transferring leadership to $target")
        core.transferLeadership(target)
        val deadline = System.nanoTime() + cfg.tickMillis * cfg.electionTicks * 1_000_000
        while (core.isLeader && System.nanoTime() - deadline < 0) turn()
    }

    private fun closeAll() {
        for (c in closers.asReversed()) {
            try {
                c()
            } catch (e: Exception) {
            }
        }
        closers.clear()
        try { compactor?.waitIdle() } catch (e: Exception) {}
        try { fetcher?.close() } catch (e: Exception) {}
        if (this::links.isInitialized) links.close()
        if (this::client.isInitialized) {
            try { client.setInt(Option.LINGER, 0) } catch (e: Exception) {}
            client.close()
        }
        if (this::wakeRecv.isInitialized) wakeRecv.close()
        synchronized(wakeLock) {
            wakeSend?.close()
            wakeSend = null
        }
        poller?.close()
        if (this::storage.isInitialized) try { storage.close() } catch (e: Exception) {}
        gate?.stop()
        gate = null
        try { ctx.term() } catch (e: Exception) {}
    }

    companion object {
        fun describe(m: Membership): String {
            val voters = if (m.voters.isEmpty()) "none" else m.voters.joinToString(", ")
            var s = "voters $voters"
            if (m.learners.isNotEmpty()) s += "; learners ${m.learners.joinToString(", ")}"
            return s
        }

        /** members.py allowed_keys: the member keys ZAP admits. */
        fun allowedKeys(committed: Membership, latest: Membership, own: String, files: List<String>): List<String> {
            val creds = LinkedHashMap(committed.credentials)
            creds.putAll(latest.credentials)
            val set = sortedSetOf(own)
            set.addAll(creds.values)
            val all = (committed.members + latest.members).all { creds.containsKey(it) }
            if (!all) set.addAll(files)
            set.remove("")
            return set.toList()
        }

        fun fromStorage(e: zmqnode.storage.Entry): Entry =
            Entry(e.index, e.term, EntryKind.parse(e.kind.pythonName), e.data)

        fun toStorage(e: Entry): zmqnode.storage.Entry =
            zmqnode.storage.Entry(e.index, e.term, zmqnode.storage.EntryKind.fromPythonName(e.kind.value)!!, e.data)

        fun toStorageReady(rd: Ready): zmqnode.storage.Ready = zmqnode.storage.Ready(
            rd.hardState?.let { zmqnode.storage.HardState(it.term, it.vote) },
            rd.entries.map { toStorage(it) },
            rd.snapshot?.let { zmqnode.storage.Snapshot(it.index, it.term, it.data, it.membership) })
    }
}

/** A server socket that could not bind (usually: the port is in use). */
class BindError(message: String) : Exception(message)

/** Python's "%g" of a float for the few messages that print one. */
fun pyFloatShort(x: Double): String {
    if (x == Math.rint(x) && Math.abs(x) < 1e15) return x.toLong().toString()
    return x.toString()
}
