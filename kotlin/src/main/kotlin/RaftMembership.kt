// Who is in the cluster, and how that changes: one member at a time (a port
// of go/raft/membership.go; the rules are explained there and in Python's
// zmqnode/raft/membership.py). Membership.encode() is byte-identical to
// Python's Membership.encode(): the bytes travel in CONFIG entries and
// snapshots between implementations.
package zmqnode.raft

import zmqnode.pyfmt.Pyfmt
import zmqnode.wire.Json
import zmqnode.wire.JsonException
import zmqnode.wire.JsonObject

/** A change that cannot apply, or bytes that are not an encoded membership. */
class MembershipError(val msg: String) : RuntimeException("raft: membership: $msg")

/** One kind of single-member change; [value] is Python's ChangeType. */
enum class ChangeType(val value: String) {
    ADD_LEARNER("add_learner"), PROMOTE("promote"), DEMOTE("demote"), REMOVE("remove");

    override fun toString() = value

    companion object {
        fun parse(s: String): ChangeType = values().firstOrNull { it.value == s }
            ?: throw IllegalArgumentException("raft: unknown change type \"$s\"")
    }
}

/** One step: [type] applied to [node]; [credential] for ADD_LEARNER. */
data class ConfChange(val type: ChangeType, val node: String, val credential: String = "")

/**
 * Python orders str by code point; Kotlin's String.compareTo by UTF-16 unit,
 * which puts U+E000..U+FFFF after the supplementary planes. Node ids sort by
 * code point here (JVM pitfall).
 */
val CODE_POINT_ORDER: Comparator<String> = Comparator { a, b ->
    val n = minOf(a.length, b.length)
    var k = 0
    while (k < n) {
        val x = a[k]
        val y = b[k]
        if (x != y) {
            // Surrogates (U+D800..U+DFFF) stand for code points above U+FFFF.
            val xs = x in '\uD800'..'\uDFFF'
            val ys = y in '\uD800'..'\uDFFF'
            return@Comparator if (xs == ys) x.compareTo(y) else if (xs) 1 else -1
        }
        k++
    }
    a.length - b.length
}

private fun sortedSet(items: Collection<String>): List<String> = items.toSortedSet(CODE_POINT_ORDER).toList()

/** Voters, learners and each member's credential: an immutable value. */
class Membership private constructor(
    val voters: List<String>, // sorted by code point, no duplicates
    val learners: List<String>, // sorted, disjoint from voters
    private val creds: Map<String, String>
) {
    val members: List<String> get() = sortedSet(voters + learners)
    val credentials: Map<String, String> get() = LinkedHashMap(creds)

    fun isVoter(id: String) = id in voters
    fun isLearner(id: String) = id in learners
    fun contains(id: String) = isVoter(id) || isLearner(id)
    fun credential(id: String): String = creds[id] ?: ""

    /** A majority of the voters. */
    val quorum: Int get() = voters.size / 2 + 1

    override fun equals(other: Any?) = other is Membership && other.voters == voters &&
        other.learners == learners && other.creds == creds

    override fun hashCode() = voters.hashCode() * 31 + learners.hashCode()
    override fun toString() = "Membership(voters=$voters, learners=$learners)"

    /** This membership with change made; [MembershipError] if it cannot be. */
    fun apply(change: ConfChange): Membership {
        val node = change.node
        val c = LinkedHashMap(creds)
        var v = voters
        var l = learners
        when (change.type) {
            ChangeType.ADD_LEARNER -> {
                if (contains(node)) throw MembershipError("$node is already a member")
                l = l + node
                if (change.credential != "") c[node] = change.credential
            }
            ChangeType.PROMOTE -> {
                if (!isLearner(node)) throw MembershipError("$node is not a learner: only a learner can be promoted")
                l = l - node
                v = v + node
            }
            ChangeType.DEMOTE -> {
                if (!isVoter(node)) throw MembershipError("$node is not a voter")
                if (voters.size == 1) throw MembershipError("cannot demote the last voter")
                v = v - node
                l = l + node
            }
            ChangeType.REMOVE -> {
                if (!contains(node)) throw MembershipError("$node is not a member")
                if (voters.size == 1 && voters[0] == node) throw MembershipError("cannot remove the last voter")
                v = v - node
                l = l - node
                c.remove(node)
            }
        }
        return of(v, l, c)
    }

    /**
     * json.dumps({"voters":…, "learners":…, "credentials":…}, sort_keys=True,
     * separators=(",", ":")), ensure_ascii included.
     */
    fun encode(): ByteArray {
        val b = StringBuilder("{\"credentials\":{")
        for ((i, k) in creds.keys.sortedWith(CODE_POINT_ORDER).withIndex()) {
            if (i > 0) b.append(',')
            b.append(Pyfmt.quoteAscii(k))
            b.append(':')
            b.append(Pyfmt.quoteAscii(creds.getValue(k)))
        }
        b.append("},\"learners\":")
        writeList(b, learners)
        b.append(",\"voters\":")
        writeList(b, voters)
        b.append('}')
        return b.toString().toByteArray(Charsets.ISO_8859_1) // ASCII only
    }

    companion object {
        val EMPTY = Membership(emptyList(), emptyList(), emptyMap())

        /** Python's Membership.of: [MembershipError] if a node is both voter and learner or a credential names a non-member. */
        fun of(voters: Collection<String>, learners: Collection<String> = emptyList(),
               credentials: Map<String, String> = emptyMap()): Membership {
            val v = sortedSet(voters)
            val l = sortedSet(learners)
            val both = v.filter { it in l }
            if (both.isNotEmpty()) throw MembershipError("${pyList(both)} cannot be both voter and learner")
            val unknown = credentials.keys.filter { it !in v && it !in l }
            if (unknown.isNotEmpty()) throw MembershipError("credentials for non-members ${pyList(sortedSet(unknown))}")
            return Membership(v, l, LinkedHashMap(credentials))
        }

        /** [of] for arguments known to be valid; invalid ones are normalized instead of refused. */
        fun normalized(voters: Collection<String>, learners: Collection<String> = emptyList(),
                       credentials: Map<String, String> = emptyMap()): Membership {
            val v = sortedSet(voters)
            val l = sortedSet(learners).filter { it !in v }
            return of(v, l, credentials.filterKeys { it in v || it in l })
        }

        /** The inverse of [encode]; [MembershipError] for bytes that are not an encoded membership. */
        fun decode(data: ByteArray): Membership {
            var voters: List<String>? = null
            var learners: List<String>? = null
            var creds: Map<String, String>? = null
            try {
                val doc = Json.parse(data)
                if (doc is JsonObject) {
                    voters = stringList(doc["voters"])
                    learners = stringList(doc["learners"])
                    creds = if (!doc.has("credentials")) emptyMap() else stringMap(doc["credentials"])
                }
            } catch (e: JsonException) {
            }
            if (voters == null || learners == null || creds == null) {
                throw MembershipError("not an encoded membership: ${bytesRepr(data.copyOf(minOf(80, data.size)))}")
            }
            return of(voters, learners, creds)
        }

        private fun stringList(v: Any?): List<String>? {
            if (v !is List<*>) return null
            return v.map { it as? String ?: return null }
        }

        private fun stringMap(v: Any?): Map<String, String>? {
            if (v !is JsonObject) return null
            val out = LinkedHashMap<String, String>()
            for ((k, x) in v.entries) out[k] = x as? String ?: return null
            return out
        }

        private fun pyList(s: List<String>) = s.joinToString(", ", "[", "]") { "'$it'" }

        private fun writeList(b: StringBuilder, list: List<String>) {
            b.append('[')
            for ((i, s) in list.withIndex()) {
                if (i > 0) b.append(',')
                b.append(Pyfmt.quoteAscii(s))
            }
            b.append(']')
        }

        /** Python's repr of bytes (for error messages). */
        private fun bytesRepr(d: ByteArray): String {
            val b = StringBuilder("b'")
            for (x in d) {
                val c = x.toInt() and 0xff
                when {
                    c == '\''.toInt() -> b.append("\\'")
                    c == '\\'.toInt() -> b.append("\\\\")
                    c == '\n'.toInt() -> b.append("\\n")
                    c == '\r'.toInt() -> b.append("\\r")
                    c == '\t'.toInt() -> b.append("\\t")
                    c in 0x20..0x7e -> b.append(c.toChar())
                    else -> b.append("\\x").append(String.format("%02x", c))
                }
            }
            return b.append('\'').toString()
        }
    }
}
