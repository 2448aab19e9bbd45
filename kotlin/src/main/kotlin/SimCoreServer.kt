// The request handling of `worker.jar sim-core` (docs/SIMCORE.md): a port of
// go/simcore/simcore.go and wire.go. Requests are read with wire's Json;
// replies are written by hand with an append-only encoder.
package zmqnode.simcore

import zmqnode.raft.ChangeType
import zmqnode.raft.ConfChange
import zmqnode.raft.Config
import zmqnode.raft.Core
import zmqnode.raft.Entry
import zmqnode.raft.EntryKind
import zmqnode.raft.HardState
import zmqnode.raft.InvariantError
import zmqnode.raft.Membership
import zmqnode.raft.MembershipError
import zmqnode.raft.Message
import zmqnode.raft.MessageType
import zmqnode.raft.Mutations
import zmqnode.raft.Options
import zmqnode.raft.ProposeResult
import zmqnode.raft.Ready
import zmqnode.raft.Snapshot
import zmqnode.raft.SplitMix64
import zmqnode.wire.Json
import zmqnode.wire.JsonException
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject
import java.util.Base64

/** An error reply: its kind ("protocol", "value", ...) and message. */
class SimCoreError(val kind: String, msg: String) : RuntimeException(msg)

private fun protocolError(msg: String) = SimCoreError("protocol", msg)

/** The Readies one reply carries at most (the world's own guard is 1000). */
const val MAX_CHAIN = 64

/** One core and what its proxy has been told. */
private class Handle(val core: Core) {
    var last: Ready? = null // the last Ready handed out, until "advance"
    // The proxy's mirror of the log: snapshot (index, term) and the entries after it, as sent so far.
    var fresh = true
    var snapIndex = 0L
    var snapTerm = 0L
    val sent = ArrayList<Entry>()
    var membership: ByteArray = ByteArray(0) // the encoded membership last sent
}

/** Many cores, each under a handle; [handle] answers one request line. */
class SimCoreServer {
    private val cores = HashMap<Long, Handle>()
    private var next = 0L
    private val e = Encoder()

    /** The reply to one request line (without the newline). */
    fun handle(line: String): ByteArray {
        val req: JsonObject
        try {
            req = Json.parse(line) as? JsonObject ?: return errorReply("protocol", "bad request: not an object")
        } catch (x: JsonException) {
            return errorReply("protocol", "bad request: ${x.message}")
        }
        e.reset()
        e.obj()
        try {
            dispatch(Req(req))
        } catch (x: SimCoreError) {
            return errorReply(x.kind, x.message ?: "")
        } catch (x: InvariantError) {
            return errorReply("invariant", x.msg)
        } catch (x: MembershipError) {
            return errorReply("membership", x.msg)
        } catch (x: Exception) {
            val sw = java.io.StringWriter()
            x.printStackTrace(java.io.PrintWriter(sw))
            return errorReply("panic", sw.toString())
        } catch (x: StackOverflowError) {
            return errorReply("panic", x.toString())
        }
        e.end()
        return e.bytes()
    }

    private fun errorReply(kind: String, msg: String): ByteArray {
        e.reset()
        e.obj()
        e.key("err")
        e.obj()
        e.key("kind")
        e.str(kind)
        e.key("msg")
        e.str(msg)
        e.end()
        e.end()
        return e.bytes()
    }

    private fun dispatch(req: Req) {
        when (req.op) {
            "info" -> {
                e.key("r")
                e.obj()
                e.key("protocol")
                e.num(SIMCORE_PROTOCOL.toLong())
                e.key("mutations")
                e.strs(Mutations.names)
                e.end()
                return
            }
            "new" -> {
                newCore(req)
                return
            }
        }
        val hid = req.long("h")
        val h = cores[hid] ?: throw protocolError("no core with handle $hid")
        val c = h.core
        when (req.op) {
            // queries: no view
            "drop" -> {
                cores.remove(hid)
                return
            }
            "membership_at" -> {
                e.key("r")
                e.b64(c.membershipAt(req.long("index")).encode())
                return
            }
            "term_at" -> {
                e.key("r")
                val t = c.termAt(req.long("index"))
                if (t == null) e.raw("null") else e.num(t)
                return
            }
            "log_entries" -> {
                e.key("r")
                e.entryList(c.logEntries)
                return
            }
        }
        var ready: Ready? = null
        val rd = req.bool("rd")
        when (req.op) {
            "tick" -> c.tick()
            "step" -> {
                val m = req.map("m") ?: throw protocolError("step without a message (m)")
                val msg = try {
                    message(m)
                } catch (x: IllegalArgumentException) {
                    throw protocolError("step: ${x.message}")
                } catch (x: ClassCastException) {
                    throw protocolError("step: ${x.message}")
                }
                c.step(msg)
            }
            "propose" -> {
                val res = c.propose(req.bytes("data"))
                e.key("r")
                proposeResult(res)
            }
            "propose_membership" -> {
                val ch = req.map("change") ?: throw protocolError("propose_membership without a change")
                val type = try {
                    ChangeType.parse(ch["type"] as? String ?: "")
                } catch (x: IllegalArgumentException) {
                    throw protocolError("propose_membership: ${x.message}")
                }
                val res = c.proposeMembership(ConfChange(type, ch["node"] as? String ?: "", ch["credential"] as? String ?: ""),
                    if (req.has("base")) req.long("base") else null)
                e.key("r")
                proposeResult(res)
            }
            "read_index" -> {
                e.key("r")
                e.bool(c.readIndex(req.str("ctx")))
            }
            "transfer_leadership" -> c.transferLeadership(req.str("peer"))
            "campaign" -> c.campaign()
            "peer_unreachable" -> c.peerUnreachable(req.str("peer"))
            "compact" -> c.compact(req.long("index"), req.bytes("data"))
            "advance" -> {
                val last = h.last ?: throw protocolError("advance: no Ready handed out since the last advance")
                h.last = null
                c.advance(last)
            }
            "has_ready" -> if (!rd) {
                e.key("r")
                e.bool(c.hasReady())
            }
            "ready" -> ready = c.ready()
            else -> throw protocolError("unknown op \"${req.op}\"")
        }
        var chain: List<Ready> = emptyList()
        var more = true
        if (rd && req.op != "ready") {
            val out = ArrayList<Ready>()
            more = readies(h, out)
            chain = out
        }
        if (ready != null) h.last = ready
        view(h)
        if (ready != null) {
            e.key("ready")
            ready(ready, h)
        }
        if (rd && req.op != "ready") {
            if (chain.isNotEmpty()) {
                e.key("readies")
                e.raw("[")
                for ((i, r) in chain.withIndex()) {
                    if (i > 0) e.raw(",")
                    ready(r, h)
                }
                e.raw("]")
            }
            if (!more) {
                e.key("hr")
                e.bool(false)
            }
        }
    }

    /**
     * The prefetch of a request with "rd": while hasReady, take a Ready; one
     * that writes nothing is advanced at once (the world carries it out and
     * advances it without calling the core in between); one that writes ends
     * the chain and waits for "advance". False when hasReady said false.
     */
    private fun readies(h: Handle, chain: MutableList<Ready>): Boolean {
        val c = h.core
        while (chain.size < MAX_CHAIN) {
            if (!c.hasReady()) return false
            val rd = c.ready()
            chain.add(rd)
            if (rd.writes) {
                h.last = rd
                return true
            }
            c.advance(rd)
        }
        return true
    }

    private fun newCore(req: Req) {
        val cfg = try {
            decodeConfig(req.map("config"))
        } catch (x: RuntimeException) {
            throw SimCoreError("value", "config: ${x.message}")
        }
        val hs = req.map("hard_state")
        val snap = req.map("snapshot")
        var bootstrap: Membership? = null
        if (req.has("bootstrap")) {
            bootstrap = try {
                Membership.decode(req.bytes("bootstrap"))
            } catch (x: MembershipError) {
                throw SimCoreError("value", "bootstrap: ${x.message}")
            }
        }
        val muts = req.strList("mutations")
        for (n in muts) if (n !in Mutations.names) throw SimCoreError("value", "the Kotlin core has no mutation \"$n\"")
        val opts = Options(
            hardState = if (hs == null) null else HardState(num(hs["term"]), hs["vote"] as? String ?: ""),
            snapshot = if (snap == null) null else snapshot(snap),
            entries = entries(req.list("entries")),
            bootstrap = bootstrap,
            voteFloor = req.long("vote_floor"),
            mutations = muts)
        val core = try {
            Core(req.str("id"), req.strList("peers"), cfg, SplitMix64(req.long("seed")), opts)
        } catch (x: IllegalArgumentException) {
            throw SimCoreError("value", x.message ?: "")
        }
        next++
        val h = Handle(core)
        cores[next] = h
        e.key("h")
        e.num(next)
        view(h)
    }

    private fun proposeResult(r: ProposeResult) {
        e.obj()
        e.key("accepted")
        e.bool(r.accepted)
        e.fnum("index", r.index)
        e.fnum("term", r.term)
        e.fstr("leader_hint", r.leaderHint)
        e.fstr("reason", r.reason)
        e.fstr("refusal", r.refusal.value)
        e.end()
    }

    /** The core's view ("v"), its membership when it changed ("m") and what changed in its log ("log"). */
    private fun view(h: Handle) {
        val c = h.core
        val snap = c.snapshot
        e.key("v")
        e.obj()
        e.key("role"); e.str(c.role.value)
        e.key("term"); e.num(c.term)
        e.key("vote"); e.str(c.vote)
        e.key("leader"); e.str(c.leaderId)
        e.key("commit"); e.num(c.commitIndex)
        e.key("applied"); e.num(c.appliedIndex)
        e.key("last"); e.num(c.lastIndex)
        e.key("snap"); e.raw("["); e.num(snap.index); e.raw(","); e.num(snap.term); e.raw("]")
        e.key("mi"); e.num(c.membershipIndex)
        e.end()

        val enc = c.membership.encode()
        if (h.fresh || !enc.contentEquals(h.membership)) {
            h.membership = enc
            e.key("m")
            e.obj()
            e.key("enc"); e.b64(enc)
            e.key("voters"); e.strs(c.voters)
            e.key("quorum"); e.num(c.quorum.toLong())
            e.end()
        }

        // The log: a new snapshot drops the mirror's entries up to its index;
        // then the entries from the first that differs are replaced.
        val ents = c.logEntries
        var wroteLog = false
        fun openLog() {
            if (!wroteLog) {
                e.key("log")
                e.obj()
                wroteLog = true
            }
        }
        if (h.fresh || snap.index != h.snapIndex || snap.term != h.snapTerm) {
            openLog()
            e.key("snap")
            snapshot(snap)
            var drop = 0
            while (drop < h.sent.size && h.sent[drop].index <= snap.index) drop++
            h.sent.subList(0, drop).clear()
            h.snapIndex = snap.index
            h.snapTerm = snap.term
        }
        var k = 0
        while (k < h.sent.size && k < ents.size && h.sent[k] == ents[k]) k++
        if (h.fresh || k < h.sent.size || k < ents.size) {
            openLog()
            e.key("from")
            e.num(snap.index + 1 + k)
            e.key("ents")
            e.entryList(ents.subList(k, ents.size))
            h.sent.subList(k, h.sent.size).clear()
            h.sent.addAll(ents.subList(k, ents.size))
        }
        if (wroteLog) e.end()
        h.fresh = false
    }

    // -- replies: Readies, messages, entries ------------------------------------------

    private fun snapshot(s: Snapshot) {
        e.obj()
        e.key("index"); e.num(s.index)
        e.key("term"); e.num(s.term)
        e.key("data"); e.b64(s.data)
        e.key("membership"); e.b64(s.membership)
        e.end()
    }

    /**
     * A non-empty list as "<k>_log":[lo,hi] when it is exactly entries lo..hi
     * of the core's log as the client's mirror holds it after this reply,
     * else in full as "<k>":[...].
     */
    private fun entriesField(k: String, list: List<Entry>, h: Handle) {
        if (list.isEmpty()) return
        if (inLog(list, h.sent, h.snapIndex)) {
            e.key(k + "_log")
            e.raw("[")
            e.num(list[0].index)
            e.raw(",")
            e.num(list[list.size - 1].index)
            e.raw("]")
            return
        }
        e.key(k)
        e.entryList(list)
    }

    private fun inLog(list: List<Entry>, log: List<Entry>, snapIndex: Long): Boolean {
        if (list[0].index <= snapIndex) return false
        val off = list[0].index - snapIndex - 1
        if (off + list.size > log.size) return false
        for (i in list.indices) if (list[i] != log[(off + i).toInt()]) return false
        return true
    }

    private fun message(m: Message, h: Handle) {
        e.obj()
        e.key("type"); e.str(m.type.value)
        e.key("src"); e.str(m.src)
        e.key("dst"); e.str(m.dst)
        e.key("term"); e.num(m.term)
        e.fnum("log_index", m.logIndex)
        e.fnum("log_term", m.logTerm)
        entriesField("entries", m.entries, h)
        e.fnum("commit", m.commit)
        e.ftrue("reject", m.reject)
        e.fnum("index", m.index)
        e.fnum("reject_hint", m.rejectHint)
        e.fnum("context", m.context)
        e.fstr("read_ctx", m.readCtx)
        e.ftrue("force", m.force)
        val s = m.snapshot
        if (s != null) {
            e.key("snapshot")
            snapshot(s)
        }
        e.end()
    }

    private fun ready(rd: Ready, h: Handle) {
        e.obj()
        val hs = rd.hardState
        if (hs != null) {
            e.key("hs")
            e.obj()
            e.key("term"); e.num(hs.term)
            e.key("vote"); e.str(hs.vote)
            e.end()
        }
        entriesField("entries", rd.entries, h)
        val s = rd.snapshot
        if (s != null) {
            e.key("snapshot")
            snapshot(s)
        }
        if (rd.messages.isNotEmpty()) {
            e.key("messages")
            e.raw("[")
            for ((i, m) in rd.messages.withIndex()) {
                if (i > 0) e.raw(",")
                message(m, h)
            }
            e.raw("]")
        }
        entriesField("committed", rd.committed, h)
        if (rd.readStates.isNotEmpty()) {
            e.key("read_states")
            e.raw("[")
            for ((i, r) in rd.readStates.withIndex()) {
                if (i > 0) e.raw(",")
                e.raw("[")
                e.str(r.readCtx)
                e.raw(",")
                e.num(r.index)
                e.raw("]")
            }
            e.raw("]")
        }
        e.end()
    }
}

// -- requests --------------------------------------------------------------------------

/**
 * A JSON integer as the protocol carries them (absent: 0): one above
 * 2^63-1, up to 2^64-1, keeps its 64 bits (a seed is a uint64); a float
 * literal of an integral value is that integer.
 */
private fun num(v: Any?): Long = when (v) {
    null -> 0L
    is JsonNumber -> v.toLongOrNull() ?: v.toUnsignedOrNull()?.toLong() ?: run {
        if (v.literal.all { it == '-' || it in '0'..'9' }) throw protocolError("not a 64-bit integer: ${v.literal}")
        val d = v.toDouble()
        if (d == Math.floor(d)) d.toLong() else throw protocolError("not an integer: $d")
    }
    else -> throw protocolError("not a number: $v")
}

private fun b64(v: Any?): ByteArray = when (v) {
    null -> ByteArray(0)
    is String -> try {
        Base64.getDecoder().decode(v)
    } catch (x: IllegalArgumentException) {
        throw protocolError("bad base64: ${x.message}")
    }
    else -> throw protocolError("bytes must be a base64 string")
}

/** One request: every op's fields in one object; an op reads the ones it needs. */
private class Req(val m: JsonObject) {
    val op: String = m["op"] as? String ?: ""
    fun has(k: String) = m[k] != null
    fun long(k: String): Long = num(m[k])
    fun bool(k: String): Boolean = m[k] == true
    fun str(k: String): String = m[k] as? String ?: ""
    fun bytes(k: String): ByteArray = b64(m[k])
    fun map(k: String): JsonObject? = m.obj(k)
    fun list(k: String): List<*> = m[k] as? List<*> ?: emptyList<Any>()
    fun strList(k: String): List<String> = list(k).map { it as? String ?: throw protocolError("$k: not a string") }
}

/** Python's RaftConfig field names over the defaults. */
private fun decodeConfig(m: JsonObject?): Config {
    val d = Config()
    if (m == null) return d
    fun int(k: String, def: Int) = if (m.has(k)) num(m[k]).toInt() else def
    fun bool(k: String, def: Boolean) = if (m.has(k)) m[k] as Boolean else def
    return Config(int("election_ticks", d.electionTicks), int("heartbeat_ticks", d.heartbeatTicks),
        bool("pre_vote", d.preVote), bool("check_quorum", d.checkQuorum), int("max_msg_bytes", d.maxMsgBytes),
        int("max_inflight", d.maxInflight), if (m.has("promote_max_lag")) num(m["promote_max_lag"]) else d.promoteMaxLag)
}

/** An entry is the array [index, term, "kind", "base64 data"]. */
private fun entries(list: List<*>): List<Entry> = list.map { x ->
    val a = x as? List<*> ?: throw protocolError("entry: want [index, term, kind, data]")
    if (a.size != 4) throw protocolError("entry: want [index, term, kind, data], got ${a.size} items")
    val kind = try {
        EntryKind.parse(a[2] as? String ?: "")
    } catch (e: IllegalArgumentException) {
        throw protocolError(e.message ?: "entry kind")
    }
    Entry(num(a[0]), num(a[1]), kind, b64(a[3]))
}

private fun snapshot(m: JsonObject) = Snapshot(num(m["index"]), num(m["term"]), b64(m["data"]), b64(m["membership"]))

/** A message with Python's Message field names; absent fields are zero. */
private fun message(m: JsonObject): Message {
    val s = m.obj("snapshot")
    return Message(MessageType.parse(m["type"] as? String ?: ""), m["src"] as? String ?: "", m["dst"] as? String ?: "",
        num(m["term"]), num(m["log_index"]), num(m["log_term"]), entries(m["entries"] as? List<*> ?: emptyList<Any>()),
        num(m["commit"]), m["reject"] == true, num(m["index"]), num(m["reject_hint"]), num(m["context"]),
        m["read_ctx"] as? String ?: "", m["force"] == true, if (s == null) null else snapshot(s))
}

// -- the encoder -------------------------------------------------------------------------

/** Appends JSON to a reusable buffer; key() writes the separating comma when needed. */
class Encoder {
    private val b = StringBuilder(1 shl 12)
    private val first = java.util.ArrayDeque<Boolean>()

    fun reset() {
        b.setLength(0)
        first.clear()
    }

    fun bytes(): ByteArray = b.toString().toByteArray(Charsets.UTF_8)

    fun raw(s: String) {
        b.append(s)
    }

    fun obj() {
        b.append('{')
        first.push(true)
    }

    fun end() {
        b.append('}')
        first.pop()
    }

    fun key(k: String) {
        if (!first.peek()) b.append(',')
        first.pop()
        first.push(false)
        b.append('"').append(k).append("\":")
    }

    /** An index, term or handle: never negative on the wire (Go's uint64). */
    fun num(v: Long) {
        b.append(java.lang.Long.toUnsignedString(v))
    }

    fun bool(v: Boolean) {
        b.append(if (v) "true" else "false")
    }

    /** A JSON string; non-ASCII is written as itself (UTF-8), a lone surrogate as U+FFFD (as Go writes invalid UTF-8). */
    fun str(s: String) {
        b.append('"')
        var i = 0
        while (i < s.length) {
            val c = s[i]
            when {
                c == '"' || c == '\\' -> b.append('\\').append(c)
                c < ' ' -> {
                    b.append("\\u00").append(HEX[c.toInt() shr 4]).append(HEX[c.toInt() and 15])
                }
                Character.isHighSurrogate(c) && i + 1 < s.length && Character.isLowSurrogate(s[i + 1]) -> {
                    b.append(c).append(s[i + 1])
                    i++
                }
                Character.isSurrogate(c) -> b.append("\\ufffd")
                else -> b.append(c)
            }
            i++
        }
        b.append('"')
    }

    fun b64(v: ByteArray) {
        b.append('"').append(Base64.getEncoder().encodeToString(v)).append('"')
    }

    fun strs(list: List<String>) {
        b.append('[')
        for ((i, s) in list.withIndex()) {
            if (i > 0) b.append(',')
            str(s)
        }
        b.append(']')
    }

    // Field helpers that leave out zero values (the decoder's defaults).
    fun fnum(k: String, v: Long) {
        if (v != 0L) {
            key(k)
            num(v)
        }
    }

    fun fstr(k: String, v: String) {
        if (v != "") {
            key(k)
            str(v)
        }
    }

    fun ftrue(k: String, v: Boolean) {
        if (v) {
            key(k)
            b.append("true")
        }
    }

    fun entry(x: Entry) {
        b.append('[')
        num(x.index)
        b.append(',')
        num(x.term)
        b.append(",\"").append(x.kind.value).append("\",")
        b64(x.data)
        b.append(']')
    }

    fun entryList(list: List<Entry>) {
        b.append('[')
        for ((i, x) in list.withIndex()) {
            if (i > 0) b.append(',')
            entry(x)
        }
        b.append(']')
    }

    companion object {
        private const val HEX = "0123456789abcdef"
    }
}
