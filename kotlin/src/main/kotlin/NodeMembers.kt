// MEMBERS, MEMBER_CHANGE and JOIN (member_requests.py, go/node/members.go
// and join.go): membership changes one member at a time, and a new node's
// JOIN handshake before its core starts.
package zmqnode.node

import zmqnode.raft.ChangeType
import zmqnode.raft.ConfChange
import zmqnode.raft.Membership
import zmqnode.raft.Refusal
import zmqnode.wire.DecodeOptions
import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject
import zmqnode.wire.ProtocolError
import zmqnode.wire.Wire
import zmqnode.zmq.Option
import zmqnode.zmq.SocketType
import zmqnode.zmq.ZmqException
import java.security.SecureRandom

const val STATUS_FRESH_SECONDS = 3.0
const val CREDENTIAL_CHARS = 40

class MemberRequests(private val n: Node, private val h: Handlers) {
    private val changeNames = listOf("add_learner", "promote", "demote", "remove")

    fun handleMembers(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        if (!n.core.isLeader) {
            h.redirectOrUnavailable(req, reply, ErrorCode.NOT_LEADER)
            return
        }
        reply.ok(req, emptyList(), listing())
    }

    fun handleChange(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        val kind = req["change"] as? String
        if (kind == null || kind !in changeNames) {
            throw ProtocolError(ErrorCode.BAD_REQUEST, "'change' must be one of ${changeNames.joinToString(", ")}, got " +
                Wire.pyRepr(req["change"]).take(40), req)
        }
        val node = nodeAddress(req)
        val cred = credential(req)
        var base: Long? = null
        if (req.has("base_index") && req["base_index"] != null) {
            val v = req["base_index"] as? JsonNumber
            base = v?.toLongOrNull()
            if (base == null || base < 0) throw ProtocolError(ErrorCode.BAD_REQUEST, "'base_index' must be a non-negative integer", req)
        }
        change(req, reply, ConfChange(ChangeType.parse(kind), node, cred), base)
    }

    fun handleJoin(req: JsonObject, blobs: List<ByteArray>, reply: Replier) {
        val node = nodeAddress(req)
        val cred = credential(req)
        change(req, reply, ConfChange(ChangeType.ADD_LEARNER, node, cred), null)
    }

    private fun already(ms: Membership, ch: ConfChange): Boolean = when (ch.type) {
        ChangeType.ADD_LEARNER -> ms.contains(ch.node)
        ChangeType.PROMOTE -> ms.isVoter(ch.node)
        ChangeType.DEMOTE -> ms.isLearner(ch.node)
        ChangeType.REMOVE -> !ms.contains(ch.node)
    }

    private fun change(req: JsonObject, reply: Replier, ch: ConfChange, base: Long?) {
        val core = n.core
        if (!core.isLeader) {
            h.redirectOrUnavailable(req, reply, ErrorCode.NOT_LEADER)
            return
        }
        if (already(core.membership, ch)) {
            if (core.membershipIndex <= core.commitIndex) reply.ok(req, emptyList(), listing())
            else reply.error(req, ErrorCode.BUSY, "the membership change at index ${core.membershipIndex} has not committed yet; retry")
            return
        }
        if (ch.type == ChangeType.PROMOTE) {
            val why = filesMissing(ch.node)
            if (why != "") {
                reply.error(req, ErrorCode.BUSY, why)
                return
            }
        }
        if ((ch.type == ChangeType.REMOVE || ch.type == ChangeType.DEMOTE) && core.membership.isVoter(ch.node) &&
            !otherVoterHasEveryFile(ch.node)) {
            reply.error(req, ErrorCode.BUSY, "no voter other than ${ch.node} reports every model file yet " +
                "(the others are still fetching); retry once they have them")
            return
        }
        h.admit(req)
        val ws = n.waiters
        val waiter = ws.park(h.requestTimeoutMillis(req), {}, {
            reply.error(req, ErrorCode.TIMEOUT, "the membership change was not committed in time on ${n.id} " +
                "(no quorum?); retry with the same request id")
        })
        val done = { applied: Boolean ->
            if (ws.settle(waiter).first != null) {
                if (applied) {
                    n.log.info("zmqnode.handlers", "membership change committed: ${ch.type} ${ch.node}")
                    reply.ok(req, emptyList(), listing())
                } else {
                    reply.error(req, ErrorCode.NOT_LEADER, "${n.id} lost leadership before the change committed; retry")
                }
            }
        }
        val result = n.proposeMembership(ch, base, done)
        if (result.accepted) {
            reply.waitFor(req)
            return
        }
        ws.settle(waiter)
        when (result.refusal) {
            Refusal.NOT_LEADER -> h.redirectOrUnavailable(req, reply, ErrorCode.NOT_LEADER)
            Refusal.CONFLICT -> reply.error(req, ErrorCode.CONFLICT, result.reason)
            Refusal.RETRY, Refusal.TRANSFERRING -> reply.error(req, ErrorCode.BUSY, result.reason)
            else -> reply.error(req, ErrorCode.BAD_INPUT, result.reason)
        }
    }

    private fun filesMissing(node: String): String {
        val st = n.links.peerStatus[node]
        if (st == null || (System.nanoTime() - st.atNanos) / 1e9 > STATUS_FRESH_SECONDS) {
            return "no recent status from $node (it reports its model files); retry"
        }
        val applied = st.status.int("applied_index")
        val latest = n.core.membershipIndex
        if (applied == null || applied < latest) {
            return "$node has applied up to ${pyValue(st.status["applied_index"])}, not yet $latest; retry"
        }
        val missing = st.status.int("models_missing")
        if (missing == null || missing > 0) {
            return "$node is still fetching ${pyValue(st.status["models_missing"])} model file(s); retry once it has them"
        }
        return ""
    }

    private fun pyValue(v: Any?): String = if (v == null) "None" else v.toString()

    private fun otherVoterHasEveryFile(leaving: String): Boolean {
        val own = (n.fetcher?.pending() ?: 0) + n.registry.damaged.size
        if (n.id != leaving && own == 0) return true
        return n.core.voters.any { it != leaving && it != n.id && filesMissing(it) == "" }
    }

    fun listing(): List<Pair<String, Any?>> {
        val core = n.core
        return listOf(
            "members" to memberViews(),
            "membership_index" to core.membershipIndex,
            "committed" to (core.membershipIndex <= core.commitIndex),
            "membership" to String(core.membership.encode(), Charsets.UTF_8),
            "leader" to (if (core.leaderId != "") core.leaderId else null))
    }

    /** One object per member of the latest membership (members.py member_views). */
    private fun memberViews(): List<JsonObject> {
        val core = n.core
        val ms = core.membership
        val now = System.nanoTime()
        return ms.members.map { node ->
            val v = JsonObject("node" to node, "voter" to ms.isVoter(node), "leader" to (node == core.leaderId),
                "has_key" to (ms.credential(node) != ""))
            val p = core.progress(node)
            if (node == n.id) {
                v["match"] = core.lastIndex
                v["lag"] = 0L
                v["last_heard_s"] = 0.0
            } else if (p != null && core.isLeader) {
                v["match"] = p.match
                v["lag"] = core.lastIndex - p.match
                val t = n.links.lastHeard[node]
                v["last_heard_s"] = if (t != null) round3((now - t) / 1e9) else null
            }
            v
        }
    }

    private fun nodeAddress(req: JsonObject): String {
        val v = req["node"]
        if (v is String) {
            try {
                val (host, port) = Addresses.parse(v)
                return Addresses.format(host, port)
            } catch (e: IllegalArgumentException) {
            }
        }
        throw ProtocolError(ErrorCode.BAD_REQUEST, "'node' must be a member's address host:port, got ${Wire.pyRepr(v).take(60)}", req)
    }

    private fun credential(req: JsonObject): String {
        if (!req.has("credential")) return ""
        val s = req["credential"] as? String
        if (s == null || (s != "" && s.length != CREDENTIAL_CHARS)) {
            throw ProtocolError(ErrorCode.BAD_REQUEST, "'credential' must be a z85 CURVE public key of $CREDENTIAL_CHARS characters", req)
        }
        return s
    }
}

/** The JOIN handshake (transport/join.py): ask the cluster to add this node as a learner. */
object Join {
    const val ATTEMPT_MS = 5000L
    const val RETRY_PAUSE_MS = 500L

    /** The encoded membership with this node in it, and its log index. */
    fun askToJoin(n: Node, credential: String, deadlineMs: Long = 60000): Pair<ByteArray, Long> {
        val targets = n.cfg.join
        val end = System.nanoTime() + deadlineMs * 1_000_000
        val rid = ByteArray(16).also { SecureRandom().nextBytes(it) }
        val requestId = rid.joinToString("") { String.format("%02x", it.toInt() and 0xff) }
        val queue = ArrayList(targets)
        var tried = 0
        var last = "no answer"
        while (System.nanoTime() - end < 0) {
            val target = if (queue.isNotEmpty()) queue.removeAt(0) else targets[tried % targets.size]
            tried++
            val header = JsonObject("v" to 1, "type" to "JOIN", "id" to requestId, "node" to n.id,
                "credential" to credential, "timeout_ms" to ATTEMPT_MS)
            val reply = askOnce(n, target, header)
            if (reply != null && reply.str("status") == "REDIRECT" && reply.str("leader") != null) {
                queue.add(0, reply.str("leader")!!)
                continue
            }
            when {
                reply == null -> last = "$target: no answer in ${ATTEMPT_MS / 1000} s"
                reply.str("status") == "OK" -> {
                    val m = reply.str("membership")
                    val idx = reply.int("membership_index")
                    if (m != null && idx != null) return Pair(m.toByteArray(Charsets.UTF_8), idx)
                    throw RuntimeException("$target answered JOIN without a membership: $reply")
                }
                else -> {
                    val code = reply.str("code") ?: ""
                    last = "$target: $code: ${reply.str("message") ?: ""}"
                    if (!ErrorCode(code).retryable) throw RuntimeException("the cluster refused to add ${n.id}: $last")
                }
            }
            n.log.info("zmqnode.join", "joining: $last; retrying")
            Thread.sleep(RETRY_PAUSE_MS)
        }
        throw RuntimeException("node ${n.id}: could not join through ${targets.joinToString(", ")} in " +
            "${deadlineMs / 1000} s ($last)")
    }

    private fun askOnce(n: Node, target: String, header: JsonObject): JsonObject? {
        val (host, port) = try { Addresses.parse(target) } catch (e: IllegalArgumentException) { return null }
        val s = n.ctx.socket(SocketType.DEALER)
        try {
            s.setInt(Option.LINGER, 0)
            KeyFiles.makeClient(s, n.keys)
            s.connect(NodeConfig.endpoint(host, port))
            s.send(listOf(ByteArray(0)) + Wire.encode(header))
            s.setInt(Option.RCVTIMEO, ATTEMPT_MS.toInt())
            var frames = s.tryRecv(0) ?: return null
            if (frames.isNotEmpty() && frames[0].isEmpty()) frames = frames.subList(1, frames.size)
            return Wire.decode(frames, DecodeOptions(allowEmptyId = true)).header
        } catch (e: ZmqException) {
            return null
        } catch (e: ProtocolError) {
            return null
        } finally {
            s.close()
        }
    }
}
