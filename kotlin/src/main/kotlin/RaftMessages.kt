// Values that enter and leave the Raft core (a port of go/raft/messages.go,
// itself a port of Python's zmqnode/raft). Node ids are plain strings; indexes
// and terms are Long (Go's uint64: they never reach 2^63).
package zmqnode.raft

/** As a message's dst: every peer (the leader's heartbeat over PUB). */
const val BROADCAST = "*"

/** The empty node id: no vote, no known leader. */
const val NO_NODE = ""

/** A member's role (Raft §5.1, plus pre-candidate: thesis §9.6); [value] is Python's. */
enum class Role(val value: String) {
    FOLLOWER("follower"), PRE_CANDIDATE("pre_candidate"), CANDIDATE("candidate"), LEADER("leader");

    override fun toString() = value

    companion object {
        fun parse(s: String): Role = values().firstOrNull { it.value == s }
            ?: throw IllegalArgumentException("raft: unknown role \"$s\"")
    }
}

/** Every message two cores exchange (docs/PROTOCOL.md §8); [value] is Python's MessageType. */
enum class MessageType(val value: String) {
    PRE_VOTE("pre_vote"), PRE_VOTE_RESP("pre_vote_resp"), VOTE("vote"), VOTE_RESP("vote_resp"),
    APPEND("append"), APPEND_RESP("append_resp"), HEARTBEAT("heartbeat"), HEARTBEAT_RESP("heartbeat_resp"),
    SNAPSHOT("snapshot"), TIMEOUT_NOW("timeout_now"), READ_INDEX("read_index"), READ_INDEX_RESP("read_index_resp");

    override fun toString() = value

    companion object {
        private val byValue = values().associateBy { it.value }
        fun parse(s: String): MessageType = byValue[s]
            ?: throw IllegalArgumentException("raft: unknown message type \"$s\"")
    }
}

/** What an entry carries. COMMAND is the default, as in Python. */
enum class EntryKind(val value: String) {
    COMMAND("command"), NOOP("noop"), CONFIG("config");

    override fun toString() = value

    companion object {
        fun parse(s: String): EntryKind = values().firstOrNull { it.value == s }
            ?: throw IllegalArgumentException("raft: unknown entry kind \"$s\"")
    }
}

/** One log entry; [data] is opaque to Raft and never changed once made. */
class Entry(val index: Long, val term: Long, val kind: EntryKind = EntryKind.COMMAND,
            val data: ByteArray = EMPTY) {
    override fun equals(other: Any?) = other is Entry && other.index == index && other.term == term &&
        other.kind == kind && other.data.contentEquals(data)

    override fun hashCode() = ((index * 31 + term) * 31 + kind.hashCode()).toInt() * 31 + data.contentHashCode()
    override fun toString() = "Entry($index, $term, $kind, ${data.size} bytes)"

    companion object {
        val EMPTY = ByteArray(0)
    }
}

/** What must survive a crash before any message that depends on it leaves. */
data class HardState(val term: Long = 0, val vote: String = NO_NODE)

/** State machine state through [index], and the membership as of it (encoded; empty: the bootstrap one). */
class Snapshot(val index: Long = 0, val term: Long = 0, val data: ByteArray = Entry.EMPTY,
               val membership: ByteArray = Entry.EMPTY) {
    override fun equals(other: Any?) = other is Snapshot && other.index == index && other.term == term &&
        other.data.contentEquals(data) && other.membership.contentEquals(membership)

    override fun hashCode() = (index * 31 + term).toInt() * 31 + data.contentHashCode()
    override fun toString() = "Snapshot($index, $term)"
}

/** One Raft message; fields a type does not use keep their defaults (see go/raft/messages.go). */
data class Message(
    val type: MessageType,
    val src: String = NO_NODE,
    val dst: String = NO_NODE,
    val term: Long = 0,
    val logIndex: Long = 0,
    val logTerm: Long = 0,
    val entries: List<Entry> = emptyList(),
    val commit: Long = 0,
    val reject: Boolean = false,
    val index: Long = 0,
    val rejectHint: Long = 0,
    val context: Long = 0,
    val readCtx: String = "",
    val force: Boolean = false,
    val snapshot: Snapshot? = null
)

/** A linearizable read may be served once applied >= [index]. */
data class ReadState(val readCtx: String, val index: Long)

/** Why a proposal was refused; [value] is Python's Refusal ("" for none). */
enum class Refusal(val value: String) {
    NONE(""), NOT_LEADER("not_leader"), TRANSFERRING("transferring"), RETRY("retry"),
    CONFLICT("conflict"), INVALID("invalid");

    override fun toString() = value

    companion object {
        fun parse(s: String): Refusal = values().firstOrNull { it.value == s }
            ?: throw IllegalArgumentException("raft: unknown refusal \"$s\"")
    }
}

/** The answer to propose: where the entry will sit, or who leads. */
data class ProposeResult(
    val accepted: Boolean = false,
    val index: Long = 0,
    val term: Long = 0,
    val leaderHint: String = NO_NODE,
    val reason: String = "",
    val refusal: Refusal = Refusal.NONE
)

/**
 * What the caller must do next, in this order: persist [hardState], then
 * [snapshot], then [entries]; send [messages]; install the snapshot and apply
 * [committed], serve [readStates]; then call Core.advance(ready).
 */
class Ready(
    val hardState: HardState? = null,
    val entries: List<Entry> = emptyList(),
    val snapshot: Snapshot? = null,
    val messages: List<Message> = emptyList(),
    val committed: List<Entry> = emptyList(),
    val readStates: List<ReadState> = emptyList()
) {
    val isEmpty: Boolean
        get() = hardState == null && entries.isEmpty() && snapshot == null && messages.isEmpty() &&
            committed.isEmpty() && readStates.isEmpty()

    /** Writes something (hard state, entries or a snapshot). */
    val writes: Boolean get() = hardState != null || entries.isNotEmpty() || snapshot != null
}

/** Python's LogInvariantError: the core was asked to break a rule Raft's safety depends on. */
class InvariantError(val msg: String) : RuntimeException("raft: log invariant: $msg")

internal fun invariant(msg: String): Nothing = throw InvariantError(msg)
