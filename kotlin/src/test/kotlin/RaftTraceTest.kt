// Differential test against the Python core (a port of go/raft/trace_test.go):
// ../go/raft/testdata/gen_traces.py ran random schedules on Python RaftCores
// and recorded every input each core received, what it answered and its
// state afterwards; this test feeds the same inputs to Kotlin cores and
// demands the same outputs, message for message. Both draw election timeouts
// from one splitmix64 stream consumed as Go's rand.Intn does (SplitMix64).
// RAFT_TRACES names a longer trace file (plain or .gz) made with gen_traces.py.
package zmqnode.raft

import java.io.File
import java.util.zip.GZIPInputStream
import kotlin.test.assertEquals
import kotlin.test.fail

private const val HEX = "0123456789abcdef"

class RaftTraceTest {
    private fun unhex(s: String): ByteArray {
        val out = ByteArray(s.length / 2)
        for (i in out.indices) out[i] = s.substring(2 * i, 2 * i + 2).toInt(16).toByte()
        return out
    }

    private fun hex(b: ByteArray): String {
        val sb = StringBuilder(2 * b.size)
        for (x in b) {
            val v = x.toInt() and 0xff // Byte is signed
            sb.append(HEX[v shr 4]).append(HEX[v and 15])
        }
        return sb.toString()
    }

    private fun long(v: Any?): Long = (v as Number).toLong()

    private fun entry(v: Any?): Entry {
        val m = v as Map<*, *>
        return Entry(long(m["index"]), long(m["term"]), EntryKind.parse(m["kind"] as String), unhex(m["data"] as String))
    }

    private fun snap(v: Any?): Snapshot? {
        val m = v as? Map<*, *> ?: return null
        return Snapshot(long(m["index"]), long(m["term"]), unhex(m["data"] as String), unhex(m["membership"] as String))
    }

    private fun msg(v: Any?): Message {
        val m = v as Map<*, *>
        return Message(MessageType.parse(m["type"] as String), m["src"] as String, m["dst"] as String, long(m["term"]),
            long(m["log_index"]), long(m["log_term"]), (m["entries"] as List<*>).map { entry(it) }, long(m["commit"]),
            m["reject"] as Boolean, long(m["index"]), long(m["reject_hint"]), long(m["context"]), m["read_ctx"] as String,
            m["force"] as Boolean, snap(m["snapshot"]))
    }

    private fun encEntries(es: List<Entry>) = es.map {
        mapOf("index" to it.index, "term" to it.term, "kind" to it.kind.value, "data" to hex(it.data))
    }

    private fun encSnap(s: Snapshot?): Any? = if (s == null) null else
        mapOf("index" to s.index, "term" to s.term, "data" to hex(s.data), "membership" to hex(s.membership))

    private fun encMsg(m: Message) = mapOf(
        "type" to m.type.value, "src" to m.src, "dst" to m.dst, "term" to m.term, "log_index" to m.logIndex,
        "log_term" to m.logTerm, "entries" to encEntries(m.entries), "commit" to m.commit, "reject" to m.reject,
        "index" to m.index, "reject_hint" to m.rejectHint, "context" to m.context, "read_ctx" to m.readCtx,
        "force" to m.force, "snapshot" to encSnap(m.snapshot))

    private fun encReady(rd: Ready) = mapOf(
        "hard_state" to rd.hardState?.let { listOf(it.term, it.vote) }, "entries" to encEntries(rd.entries),
        "snapshot" to encSnap(rd.snapshot), "messages" to rd.messages.map { encMsg(it) },
        "committed" to encEntries(rd.committed), "read_states" to rd.readStates.map { listOf(it.readCtx, it.index) })

    private fun encResult(r: ProposeResult) = mapOf("accepted" to r.accepted, "index" to r.index, "term" to r.term,
        "leader_hint" to r.leaderHint, "reason" to r.reason, "refusal" to r.refusal.value)

    private fun encState(c: Core): Map<String, Any?> {
        val prog = LinkedHashMap<String, Any?>()
        for (p in c.progressPeers) {
            val pr = c.progress(p)!!
            prog[p] = listOf(pr.match, pr.next, pr.state.value, pr.inflight, pr.recentActive, pr.readAck)
        }
        return mapOf("role" to c.role.value, "term" to c.term, "vote" to c.vote, "leader" to c.leaderId,
            "commit" to c.commitIndex, "applied" to c.appliedIndex, "last" to c.lastIndex, "stable" to c.stableIndex,
            "confirmed" to c.confirmedIndex, "membership_index" to c.membershipIndex,
            "membership" to hex(c.membership.encode()), "elapsed" to c.electionElapsed,
            "timeout" to c.randomizedTimeout, "transfer" to c.transferTarget, "progress" to prog)
    }

    /** Canonical JSON-ish text: sorted keys, integers as integers. */
    private fun canon(v: Any?, b: StringBuilder = StringBuilder()): StringBuilder {
        when (v) {
            null -> b.append("null")
            is Boolean -> b.append(v)
            is Number -> b.append(v.toLong())
            is String -> b.append('"').append(v).append('"')
            is Map<*, *> -> {
                b.append('{')
                for ((i, k) in v.keys.map { it as String }.sorted().withIndex()) {
                    if (i > 0) b.append(',')
                    b.append('"').append(k).append("\":")
                    canon(v[k], b)
                }
                b.append('}')
            }
            is List<*> -> {
                b.append('[')
                for ((i, x) in v.withIndex()) {
                    if (i > 0) b.append(',')
                    canon(x, b)
                }
                b.append(']')
            }
            else -> fail("canon: ${v.javaClass}")
        }
        return b
    }

    fun testReplayPythonTraces() {
        val path = System.getenv("RAFT_TRACES") ?: "../go/raft/testdata/traces.jsonl.gz"
        val f = File(path)
        if (!f.exists()) fail("no traces at $path")
        val stream = if (path.endsWith(".gz")) GZIPInputStream(f.inputStream(), 1 shl 16) else f.inputStream()
        var cores = HashMap<String, Core>()
        val readies = HashMap<String, Ready>()
        var schedule = -1L
        var ops = 0
        stream.bufferedReader(Charsets.UTF_8).useLines { lines ->
            for ((n, line) in lines.withIndex()) {
                val rec = parsePlain(line) as Map<*, *>
                val op = rec["op"] as String
                val node = rec["node"] as String?
                val where = "line ${n + 1} (schedule $schedule, $node $op)"
                if (op == "schedule") {
                    schedule = long(rec["seed"])
                    cores = HashMap()
                    continue
                }
                if (op == "new") {
                    val c = rec["config"] as List<*>
                    val cfg = Config(long(c[0]).toInt(), long(c[1]).toInt(), c[2] as Boolean, c[3] as Boolean,
                        long(c[4]).toInt(), long(c[5]).toInt(), long(c[6]))
                    val hs = rec["hard_state"] as List<*>
                    val boot = rec["bootstrap"] as String?
                    val opts = Options(HardState(long(hs[0]), hs[1] as String), snap(rec["snapshot"]),
                        (rec["entries"] as List<*>).map { entry(it) },
                        if (boot == null) null else Membership.decode(unhex(boot)),
                        long(rec["vote_floor"] ?: 0L), (rec["mutations"] as List<*>? ?: emptyList<Any>()).map { it as String })
                    cores[node!!] = Core(node, (rec["peers"] as List<*>).map { it as String }, cfg, SplitMix64(long(rec["rng_seed"])), opts)
                    continue
                }
                val c = cores[node] ?: fail("$where: no core")
                val out: Any? = when (op) {
                    "check" -> null
                    "tick" -> { c.tick(); null }
                    "step" -> { c.step(msg(rec["msg"])); null }
                    "propose" -> encResult(c.propose(unhex(rec["data"] as String)))
                    "propose_membership" -> {
                        val ch = rec["change"] as List<*>
                        encResult(c.proposeMembership(ConfChange(ChangeType.parse(ch[0] as String), ch[1] as String, ch[2] as String),
                            (rec["base_index"] as Number?)?.toLong()))
                    }
                    "read_index" -> c.readIndex(rec["ctx"] as String)
                    "transfer" -> { c.transferLeadership(rec["target"] as String); null }
                    "campaign" -> { c.campaign(); null }
                    "unreachable" -> { c.peerUnreachable(rec["peer"] as String); null }
                    "compact" -> { c.compact(long(rec["index"]), unhex(rec["data"] as String)); null }
                    "has_ready" -> c.hasReady()
                    "ready" -> { val rd = c.ready(); readies[node!!] = rd; encReady(rd) }
                    "advance" -> { c.advance(readies.getValue(node!!)); null }
                    else -> fail("$where: unknown op")
                }
                ops++
                assertEquals(canon(rec["out"]).toString(), canon(out).toString(), "$where: output differs")
                val state = rec["state"] ?: continue
                assertEquals(canon(state).toString(), canon(encState(c)).toString(), "$where: state differs")
            }
        }
        println("RaftTraceTest: $ops operations replayed identically")
        kotlin.test.assertTrue(ops > 10000, "only $ops operations")
    }
}
