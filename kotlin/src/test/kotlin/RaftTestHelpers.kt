// A tiny in-memory harness for driving a few cores by hand (a port of
// go/raft/helpers_test.go, itself the Python tests/raft_helpers.py). A
// RaftNet holds one core and one storage per node and a FIFO of messages in
// flight; tests decide exactly which messages are delivered, dropped or
// delayed, and when each node ticks. (Helpers only: the name does not end in
// Test.kt, because every *Test.kt file holds a test class that tests/test_kotlin.py
// counts.)
package zmqnode.raft

import kotlin.test.fail
import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

/**
 * [Json.parse] of [text] as plain Kotlin values, for tests that compare
 * decoded documents with maps and numbers: objects as LinkedHashMap
 * (document order), integers as Long (one up to 2^64-1 keeps its 64 bits),
 * other numbers as Double.
 */
fun parsePlain(text: String): Any? = plain(Json.parse(text))

private fun plain(v: Any?): Any? = when (v) {
    is JsonObject -> v.entries.associateTo(LinkedHashMap<String, Any?>()) { it.first to plain(it.second) }
    is List<*> -> v.map { plain(it) }
    is JsonNumber -> v.toLongOrNull() ?: v.toUnsignedOrNull()?.toLong() ?: v.toDouble()
    else -> v
}

/** ElectionTicks used throughout the tests. */
const val E = 10

fun testConfig(mods: List<(Config) -> Config> = emptyList()): Config {
    var cfg = Config(electionTicks = E, heartbeatTicks = 1, preVote = true, checkQuorum = true)
    for (m in mods) cfg = m(cfg)
    return cfg
}

val noPreVote: (Config) -> Config = { it.copy(preVote = false) }
val noCheckQuorum: (Config) -> Config = { it.copy(checkQuorum = false) }
fun maxMsgBytes(n: Int): (Config) -> Config = { it.copy(maxMsgBytes = n) }
fun maxInflight(n: Int): (Config) -> Config = { it.copy(maxInflight = n) }

/** Entries with consecutive indexes from 1 and the given terms, data "index@term". */
fun ents(vararg terms: Long): List<Entry> = entsFrom(1, *terms)

fun entsFrom(start: Long, vararg terms: Long): List<Entry> =
    terms.mapIndexed { k, t -> Entry(start + k, t, EntryKind.COMMAND, "${start + k}@$t".toByteArray(Charsets.UTF_8)) }

fun termsOf(entries: List<Entry>): List<Long> = entries.map { it.term }

fun msg(type: MessageType, src: String, dst: String, term: Long) = Message(type, src, dst, term)

fun appendMsg(src: String, term: Long, prevIndex: Long, prevTerm: Long, entries: List<Entry>, commit: Long) =
    Message(MessageType.APPEND, src, "a", term, prevIndex, prevTerm, entries, commit)

fun voteMsg(src: String, term: Long, lastIndex: Long, lastTerm: Long, pre: Boolean) =
    Message(if (pre) MessageType.PRE_VOTE else MessageType.VOTE, src, "a", term, lastIndex, lastTerm)

fun ofType(msgs: List<Message>, vararg types: MessageType) = msgs.filter { it.type in types }

fun granted(msgs: List<Message>, type: MessageType) = ofType(msgs, type).filter { !it.reject }

/** Takes the core's Ready and acknowledges it at once (an instant, perfect disk). */
fun drain(c: Core): Ready {
    val rd = c.ready()
    c.advance(rd)
    return rd
}

fun newCore(id: String = "a", peers: List<String> = listOf("b", "c"), seed: Long = 0, hs: HardState = HardState(),
            entries: List<Entry> = emptyList(), cfg: List<(Config) -> Config> = emptyList(),
            mutations: Collection<String> = emptyList(), bootstrap: Membership? = null): Core =
    Core(id, peers, testConfig(cfg), SplitMix64(seed), Options(hardState = hs, entries = entries, bootstrap = bootstrap, mutations = mutations))

/** Node "a" of {a, b, c}, a follower at term (optionally following leader). */
fun follower(term: Long, entries: List<Entry> = emptyList(), leader: String = "", cfg: List<(Config) -> Config> = emptyList(),
             mutations: Collection<String> = emptyList()): Core {
    val c = newCore(hs = HardState(term), entries = entries, cfg = cfg, mutations = mutations)
    if (leader != "") {
        c.step(msg(MessageType.HEARTBEAT, leader, BROADCAST, term))
        drain(c)
    }
    return c
}

/** Elects a lone core by feeding it granted (pre-)votes from every peer; returns the new leader's Ready. */
fun makeLeader(c: Core): Ready {
    c.campaign()
    var i = 0
    while (i < 2 && !c.isLeader) {
        val rd = drain(c)
        for (m in ofType(rd.messages, MessageType.PRE_VOTE, MessageType.VOTE)) {
            val resp = if (m.type == MessageType.PRE_VOTE) MessageType.PRE_VOTE_RESP else MessageType.VOTE_RESP
            c.step(msg(resp, m.dst, c.id, m.term))
        }
        i++
    }
    if (!c.isLeader) fail("not leader: ${c.role}")
    return drain(c)
}

/** What a node keeps across a crash: exactly what Ready asked it to persist. */
class RaftStorage(var hs: HardState = HardState(), var snap: Snapshot = Snapshot(), var entries: List<Entry> = emptyList()) {
    fun persist(rd: Ready) {
        val s = rd.snapshot
        if (s != null) {
            snap = s
            entries = emptyList()
        }
        rd.hardState?.let { hs = it }
        if (rd.entries.isNotEmpty()) {
            val keep = rd.entries[0].index - snap.index - 1
            if (keep < 0 || keep > entries.size) fail("Ready.entries leaves a gap in the log")
            entries = entries.subList(0, keep.toInt()) + rd.entries
        }
    }
}

class Queued(val dst: String, val m: Message)

typealias Pred = (String, Message) -> Boolean

class RaftNet(ids: List<String>? = null, val bootstrap: Map<String, Membership> = emptyMap(),
              val cfg: List<(Config) -> Config> = emptyList()) {
    val ids: List<String> = ids ?: listOf("a", "b", "c")
    val storage = HashMap<String, RaftStorage>()
    val nodes = HashMap<String, Core>()
    var queue = ArrayList<Queued>()
    val sent = ArrayList<Queued>()
    val cut = HashSet<Pair<String, String>>()
    val down = HashSet<String>()
    val applied = HashMap<String, MutableList<Entry>>()
    val reads = HashMap<String, MutableList<ReadState>>()
    var boots = 0
    /** For every node booted from now on. */
    var mutations: Collection<String> = emptyList()

    init {
        for (id in this.ids) {
            storage[id] = RaftStorage()
            boot(id)
        }
    }

    fun boot(id: String) {
        val st = storage.getValue(id)
        boots++
        // FNV-1a 64 of "seed/id/boots", as the Go harness seeds its math/rand.
        var h = -0x340d631b7bdddcdbL
        for (b in "0/$id/$boots".toByteArray(Charsets.UTF_8)) {
            h = h xor (b.toLong() and 0xff)
            h *= 0x100000001b3L
        }
        val opts = Options(hardState = st.hs, snapshot = if (st.snap.index > 0) st.snap else null, entries = st.entries,
            bootstrap = bootstrap[id], mutations = mutations)
        nodes[id] = Core(id, this.ids.filter { it != id }, testConfig(cfg), SplitMix64(h), opts)
    }

    /** Replaces a node's disk and reboots it from there. */
    fun load(id: String, term: Long, entries: List<Entry>, vote: String) {
        storage[id] = RaftStorage(HardState(term, vote), Snapshot(), entries)
        boot(id)
    }

    fun get(id: String): Core = nodes.getValue(id)

    /** One Ready cycle for id (persist, send, apply, advance). */
    fun process(id: String) {
        if (id in down) return
        val c = get(id)
        if (!c.hasReady()) return
        val rd = c.ready()
        storage.getValue(id).persist(rd)
        for (m in rd.messages) {
            val targets = if (m.dst == BROADCAST) ids.filter { it != id } else listOf(m.dst)
            for (d in targets) {
                sent.add(Queued(d, m))
                queue.add(Queued(d, m))
            }
        }
        if (rd.snapshot != null) applied[id] = ArrayList()
        applied.getOrPut(id) { ArrayList() }.addAll(rd.committed)
        reads.getOrPut(id) { ArrayList() }.addAll(rd.readStates)
        c.advance(rd)
    }

    fun processAll() = ids.forEach { process(it) }

    fun reachable(dst: String, m: Message) = dst !in down && m.src !in down && Pair(m.src, dst) !in cut

    /** Delivers (FIFO) every queued message matching p (null: all); unreachable ones are dropped. */
    fun deliver(p: Pred? = null): Int {
        val taken = queue.filter { p == null || p(it.dst, it.m) }
        queue = ArrayList(queue.filter { !(p == null || p(it.dst, it.m)) })
        var count = 0
        for (q in taken) {
            if (reachable(q.dst, q.m)) {
                get(q.dst).step(q.m)
                count++
            }
        }
        return count
    }

    fun drop(p: Pred? = null): Int {
        val before = queue.size
        queue = ArrayList(queue.filter { !(p == null || p(it.dst, it.m)) })
        return before - queue.size
    }

    fun pending(dst: String, vararg types: MessageType) =
        queue.filter { (dst == "" || it.dst == dst) && (types.isEmpty() || it.m.type in types) }.map { it.m }

    /** Processes and delivers until no node has anything left to say; messages matching hold stay queued. */
    fun stabilize(hold: Pred? = null) {
        for (i in 0 until 200) {
            processAll()
            val p: Pred? = if (hold == null) null else { d, m -> !hold(d, m) }
            if (deliver(p) == 0) return
        }
        fail("network did not settle")
    }

    /** Ticks the given (null: all) live nodes k times, settling after each. */
    fun tick(which: List<String>?, k: Int, settle: Boolean) {
        for (i in 0 until k) {
            for (id in which ?: ids) if (id !in down) get(id).tick()
            if (settle) stabilize()
        }
    }

    fun isolate(id: String) {
        for (p in ids) if (p != id) {
            cut.add(Pair(id, p))
            cut.add(Pair(p, id))
        }
    }

    fun partition(vararg groups: List<String>) {
        for ((i, g) in groups.withIndex()) for ((j, h) in groups.withIndex()) {
            if (i != j) for (a in g) for (b in h) cut.add(Pair(a, b))
        }
    }

    fun heal() = cut.clear()

    fun crash(id: String) {
        down.add(id)
        queue = ArrayList(queue.filter { it.dst != id })
    }

    fun restart(id: String) {
        down.remove(id)
        applied[id] = ArrayList()
        boot(id)
    }

    fun compact(id: String, index: Long): Snapshot {
        val c = get(id)
        c.compact(index, "state@$index".toByteArray(Charsets.UTF_8))
        val snap = c.snapshot
        val st = storage.getValue(id)
        st.entries = st.entries.subList((snap.index - st.snap.index).toInt(), st.entries.size).toList()
        st.snap = snap
        return snap
    }

    fun elect(id: String) {
        get(id).campaign()
        stabilize()
        if (!get(id).isLeader) fail("$id is ${get(id).role}")
    }

    fun leaders() = ids.filter { it !in down && get(it).isLeader }

    fun sentOf(vararg types: MessageType) = sent.filter { it.m.type in types }.map { it.m }

    fun progress(leader: String, peer: String): ProgressInfo = get(leader).progress(peer) ?: fail("$leader has no progress for $peer")
}

/** {a, b, c} voters and the given ids joining with an empty membership; a elected. */
fun joining(ids: List<String>, cfg: List<(Config) -> Config> = emptyList()): RaftNet {
    val voters = listOf("a", "b", "c")
    val boot = HashMap<String, Membership>()
    for (id in ids) boot[id] = Membership.EMPTY
    for (v in voters) boot[v] = Membership.of(voters)
    val net = RaftNet(voters + ids, boot, cfg)
    net.elect("a")
    return net
}

fun change(net: RaftNet, leader: String, type: ChangeType, node: String): ProposeResult {
    val res = net.get(leader).proposeMembership(ConfChange(type, node))
    net.stabilize()
    return res
}

/** Proposes a command and settles; true if it committed on the leader. */
fun commitOne(net: RaftNet, leader: String): Boolean {
    val res = net.get(leader).propose("x".toByteArray(Charsets.UTF_8))
    if (!res.accepted) fail("$res")
    net.stabilize()
    return net.get(leader).commitIndex >= res.index
}

/** Figure 8 (c): S1 (restarted) campaigns in term 4 holding 2@2; S2 has it too, S5 holds 2@3. Appends carry one entry. */
fun figure8Cluster(mutations: Collection<String>): RaftNet {
    val net = RaftNet(listOf("s1", "s2", "s3", "s4", "s5"), emptyMap(), listOf(noPreVote, noCheckQuorum, maxMsgBytes(1)))
    net.mutations = mutations
    net.load("s1", 3, ents(1, 2), "")
    net.load("s2", 3, ents(1, 2), "")
    net.load("s3", 3, ents(1), "")
    net.load("s4", 3, ents(1), "")
    net.load("s5", 3, ents(1, 3), "s5")
    net.crash("s5")
    net.get("s1").campaign()
    net.stabilize { _, m -> m.type == MessageType.APPEND }
    val l = net.leaders()
    if (l != listOf("s1") || net.get("s1").term != 4L) fail("$l")
    return net
}

/** Figure 8 (c)-(d); the network afterwards. */
fun runFigure8(mutations: Collection<String>): RaftNet {
    val net = figure8Cluster(mutations)
    net.deliver { d, m -> m.type == MessageType.APPEND && (d == "s2" || d == "s3") }
    net.drop { _, m -> m.type == MessageType.APPEND }
    for (i in 0 until 4) {
        net.processAll()
        net.drop { d, m -> m.type == MessageType.APPEND && d == "s3" && m.entries[m.entries.size - 1].index > 2 }
        net.deliver { d, _ -> d == "s1" || d == "s3" }
    }
    return net
}

/** The follower holds 1@1 2@1 3@2; the term-3 leader (1@1 2@1 3@3, commit 3) sends a batch-limited append carrying only entry 2. */
fun issue16BatchLimitedAppend(mutations: Collection<String>): Pair<Core, Ready> {
    val c = follower(2, ents(1, 1, 2), mutations = mutations)
    val leaderLog = ents(1, 1, 3)
    c.step(appendMsg("b", 3, 1, 1, leaderLog.subList(1, 2), 3))
    return Pair(c, drain(c))
}
