// One node's settings and its command line: the flags, defaults, checks and
// port offsets of `python -m zmqnode` (zmqnode/config.py, go/node/config.go).
// Python is the truth where Go differs: argparse's prefix abbreviations,
// every unrecognized argument named at once, the port-range message of
// transport/addresses.node_ports, --help.
package zmqnode.node

import java.io.File
import java.net.InetAddress

const val DEFAULT_TICK_SECONDS = 0.05
const val DEFAULT_ELECTION_TICKS = 10
const val DEFAULT_MAX_REQUEST_BYTES = 512L shl 20
const val DEFAULT_MAX_MODEL_BYTES = 64L shl 20
const val DEFAULT_MAX_TRAININGS = 4
const val DEFAULT_MAX_PENDING = 10000
const val DEFAULT_MAX_UNCOMMITTED_BYTES = 256L shl 20
const val DEFAULT_SNAPSHOT_ENTRIES = 1000
const val DEFAULT_FETCH_CHUNK_BYTES = 1 shl 20

// Port offsets from the client port (PROTOCOL.md §1, transport/addresses.py).
const val MONITOR_OFFSET = -1000
const val RAFT_OFFSET = 1000
const val HEARTBEAT_OFFSET = 2000
const val TRAINING_OFFSET = 3000
const val RESULTS_OFFSET = 4000
const val HTTP_OFFSET = 5000

/** The program name in usage lines and errors. */
const val PROG = "java -jar worker.jar"

/** A command line the node refuses (exit status 2, as argparse). */
class UsageError(msg: String) : Exception(msg)

/** `--help` was asked: print [text] to stdout, exit 0. */
class HelpRequested(val text: String) : Exception("help")

/** One node's settings (Python's NodeConfig), read-only once parsed. */
class NodeConfig(
    val host: String = "127.0.0.1",
    val port: Int = 9000,
    val monitorPort: Int = 8000,
    val monitorHost: String = "127.0.0.1",
    /** null: port + 5000; 0: off. */
    val httpPort: Int? = null,
    val httpHost: String = "127.0.0.1",
    val httpIdleTimeout: Double = 60.0,
    val httpRequestTimeout: Double = 30.0,
    val peers: List<String> = emptyList(),
    val storageDir: String = "node_9000_storage",
    val tickSeconds: Double = DEFAULT_TICK_SECONDS,
    val electionTicks: Int = DEFAULT_ELECTION_TICKS,
    val maxRequestBytes: Long = DEFAULT_MAX_REQUEST_BYTES,
    val maxModelBytes: Long = DEFAULT_MAX_MODEL_BYTES,
    val maxTrainings: Int = DEFAULT_MAX_TRAININGS,
    val maxPending: Int = DEFAULT_MAX_PENDING,
    val maxUncommittedBytes: Long = DEFAULT_MAX_UNCOMMITTED_BYTES,
    val requestTimeoutSeconds: Double = 30.0,
    val trainingTimeoutSeconds: Double = 600.0,
    val trainer: Boolean = true,
    val logLevel: String = "INFO",
    val faultFile: String = "",
    val snapshotEntries: Int = DEFAULT_SNAPSHOT_ENTRIES,
    val fetchChunkBytes: Int = DEFAULT_FETCH_CHUNK_BYTES,
    /** "" (with nodeKey ""): --insecure. */
    val keysDir: String = "",
    val nodeKey: String = "",
    val clientAuth: String = "none",
    val localKeys: Boolean = false,
    val join: List<String> = emptyList()
) {
    /** The node's client address, its Raft id. */
    val nodeId: String get() = Addresses.format(host, port)
    val insecure: Boolean get() = keysDir == ""
    val httpEnabled: Boolean get() = httpPort == null || httpPort != 0
    val httpListenPort: Int get() = httpPort ?: port + HTTP_OFFSET
    val tickMillis: Long get() = Math.round(tickSeconds * 1000.0).coerceAtLeast(1L)
    /** worker_<port>.log in the storage dir. */
    val logPath: String get() = File(storageDir, "worker_$port.log").path

    override fun toString(): String =
        "NodeConfig(host=$host, port=$port, monitorPort=$monitorPort, httpPort=$httpPort, peers=$peers, " +
            "storageDir=$storageDir, tick=$tickSeconds, electionTicks=$electionTicks, keysDir=$keysDir, " +
            "nodeKey=$nodeKey, localKeys=$localKeys, join=$join, trainer=$trainer)"

    companion object {
        /** tcp://host:port, IPv6 hosts in brackets. */
        fun endpoint(host: String, port: Int): String =
            if (host.contains(":") && !host.startsWith("[")) "tcp://[$host]:$port" else "tcp://$host:$port"
    }
}

/** Node addresses and the local key layout (transport/addresses.py, keystore.py). */
object Addresses {
    fun format(host: String, port: Int): String = if (host.contains(":")) "[$host]:$port" else "$host:$port"

    /** "host:port" or "[v6]:port"; a readable IllegalArgumentException otherwise. */
    fun parse(text: String): Pair<String, Int> {
        val value = text.trim()
        val host: String
        val portText: String
        if (value.startsWith("[")) {
            val close = value.indexOf(']', 1)
            if (close < 0 || !value.substring(close + 1).startsWith(":")) {
                throw IllegalArgumentException("address ${pyStr(text)} is not '[ipv6]:port'")
            }
            host = value.substring(1, close)
            portText = value.substring(close + 2)
        } else {
            val i = value.lastIndexOf(':')
            if (i < 0) throw IllegalArgumentException("address ${pyStr(text)} has no port; expected 'host:port'")
            host = value.substring(0, i)
            portText = value.substring(i + 1)
            if (host.contains(":")) {
                throw IllegalArgumentException("address ${pyStr(text)}: write IPv6 hosts as '[addr]:port'")
            }
        }
        if (host.isEmpty()) throw IllegalArgumentException("address ${pyStr(text)} has no host; expected 'host:port'")
        val port = if (portText.isNotEmpty() && portText.all { it in '0'..'9' }) portText.toIntOrNull() else null
        if (port == null || port < 1 || port > 65535) {
            throw IllegalArgumentException("address ${pyStr(text)}: port must be a number in 1..65535")
        }
        return Pair(host, port)
    }

    /** "localhost" and loopback IP literals (127.0.0.0/8, ::1); names are not resolved. */
    fun isLoopback(host: String): Boolean {
        if (host.equals("localhost", ignoreCase = true)) return true
        val literal = host.trim('[', ']')
        val v4 = Regex("""(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})""").matchEntire(literal)
        if (v4 != null) {
            val parts = v4.groupValues.drop(1).map { it.toInt() }
            return parts.all { it <= 255 } && parts[0] == 127
        }
        if (literal.contains(":") && literal.all { it in "0123456789abcdefABCDEF:" }) {
            return try {
                val addr = InetAddress.getByName(literal)
                addr is java.net.Inet6Address && addr.isLoopbackAddress
            } catch (e: Exception) {
                false
            }
        }
        return false
    }

    /** $XDG_CONFIG_HOME/zmqnode, or ~/.config/zmqnode. */
    fun userDir(): String {
        val base = System.getenv("XDG_CONFIG_HOME")
        val dir = if (base != null && base.startsWith("/")) base else {
            val home = System.getenv("HOME") ?: System.getProperty("user.home") ?: "~"
            File(home, ".config").path
        }
        return File(dir, "zmqnode").path
    }

    fun localKeysDir(): String = File(userDir(), "local-keys").path

    fun localKeyName(host: String, port: Int): String =
        "node_" + host.replace(Regex("[^A-Za-z0-9.-]"), "_") + "_" + port

    fun localNodeKey(keysDir: String, host: String, port: Int): String =
        File(keysDir, localKeyName(host, port) + ".key_secret").path

    /** KEYS/node<i>.key_secret, i = this node's place among the sorted (host, port) addresses. */
    fun defaultNodeKey(keysDir: String, host: String, port: Int, peers: List<String>): String {
        val self = format(host, port)
        val members = mutableListOf(Pair(host, port))
        for (p in peers) {
            val a = parse(p)
            if (format(a.first, a.second) != self) members.add(a)
        }
        // Code-point order of the host, as Python's str (String.compareTo is
        // UTF-16 order: the same outside the astral planes).
        val sorted = members.sortedWith(Comparator { a, b ->
            val c = codePointCompare(a.first, b.first)
            if (c != 0) c else a.second.compareTo(b.second)
        })
        val i = sorted.indexOfFirst { it.first == host && it.second == port }
        return File(keysDir, "node$i.key_secret").path
    }

    fun codePointCompare(a: String, b: String): Int {
        val x = a.codePoints().toArray()
        val y = b.codePoints().toArray()
        for (i in 0 until minOf(x.size, y.size)) {
            if (x[i] != y[i]) return x[i].compareTo(y[i])
        }
        return x.size.compareTo(y.size)
    }
}

/** Python's repr of a str (ASCII-only strings; enough for messages about flags). */
internal fun pyStr(s: String): String {
    val quote = if (s.contains("'") && !s.contains("\"")) '"' else '\''
    val b = StringBuilder().append(quote)
    for (ch in s) {
        when {
            ch == '\\' -> b.append("\\\\")
            ch == quote -> b.append('\\').append(ch)
            ch == '\n' -> b.append("\\n")
            ch == '\r' -> b.append("\\r")
            ch == '\t' -> b.append("\\t")
            ch.toInt() < 0x20 || ch.toInt() == 0x7f -> b.append(String.format("\\x%02x", ch.toInt()))
            else -> b.append(ch)
        }
    }
    return b.append(quote).toString()
}

/** Python's repr of a float, for the messages that print one (finite values). */
internal fun pyFloat(f: Double): String {
    if (f.isNaN()) return "nan"
    if (f.isInfinite()) return if (f > 0) "inf" else "-inf"
    if (f == Math.rint(f) && Math.abs(f) < 1e16) return String.format("%.1f", f)
    val s = f.toString() // shortest repr digits; Java writes 1.0E-5 where Python writes 1e-05
    val e = s.indexOf('E')
    if (e < 0) return s
    var mant = s.substring(0, e)
    if (mant.endsWith(".0")) mant = mant.substring(0, mant.length - 2)
    val exp = s.substring(e + 1).toInt()
    if (exp >= -4 && exp < 16) return java.math.BigDecimal(s).toPlainString()
    val sign = if (exp < 0) "-" else "+"
    return mant + "e" + sign + String.format("%02d", Math.abs(exp))
}

object NodeFlags {
    private val valued = listOf(
        "--host", "--port", "--monitor-port", "--monitor-host", "--http-port", "--http-host",
        "--http-idle-timeout", "--http-request-timeout", "--raft-port", "--peers", "--join",
        "--storage-dir", "--tick", "--election-ticks", "--max-request-bytes", "--max-model-bytes",
        "--max-trainings", "--max-pending", "--max-uncommitted-bytes", "--log-level", "--fault-file",
        "--snapshot-entries", "--fetch-chunk-bytes", "--keys", "--node-key", "--client-auth"
    )
    private val bools = listOf("--no-trainer", "--insecure", "--help")
    /** argparse's order of the options, for prefix matches' "could match" lists. */
    private val all = listOf(
        "--help", "--host", "--port", "--monitor-port", "--monitor-host", "--http-port", "--http-host",
        "--http-idle-timeout", "--http-request-timeout", "--raft-port", "--peers", "--join",
        "--storage-dir", "--tick", "--election-ticks", "--max-request-bytes", "--max-model-bytes",
        "--max-trainings", "--max-pending", "--max-uncommitted-bytes", "--no-trainer", "--log-level",
        "--fault-file", "--snapshot-entries", "--fetch-chunk-bytes", "--keys", "--node-key",
        "--client-auth", "--insecure"
    )
    private val multi = setOf("--peers", "--join")

    val usage: String = """usage: java -jar worker.jar [-h] [--host HOST] [--port PORT]
                            [--monitor-port MONITOR_PORT]
                            [--monitor-host MONITOR_HOST]
                            [--http-port HTTP_PORT] [--http-host HTTP_HOST]
                            [--http-idle-timeout HTTP_IDLE_TIMEOUT]
                            [--http-request-timeout HTTP_REQUEST_TIMEOUT]
                            [--raft-port RAFT_PORT] [--peers [PEERS ...]]
                            [--join HOST:PORT [HOST:PORT ...]]
                            [--storage-dir STORAGE_DIR] [--tick TICK]
                            [--election-ticks ELECTION_TICKS]
                            [--max-request-bytes MAX_REQUEST_BYTES]
                            [--max-model-bytes MAX_MODEL_BYTES]
                            [--max-trainings MAX_TRAININGS]
                            [--max-pending MAX_PENDING]
                            [--max-uncommitted-bytes MAX_UNCOMMITTED_BYTES]
                            [--no-trainer] [--log-level LOG_LEVEL]
                            [--snapshot-entries SNAPSHOT_ENTRIES]
                            [--fetch-chunk-bytes FETCH_CHUNK_BYTES]
                            [--keys KEYS] [--node-key NODE_KEY]
                            [--client-auth {none,curve}] [--insecure]
"""

    private val optionsHelp = """
Run one zmqnode: a Raft member that trains, stores and serves models.

options:
  -h, --help            show this help message and exit
  --host HOST           address to bind and to be known by
  --port PORT           client port (ROUTER); the node's id
  --monitor-port MONITOR_PORT
                        HTTP monitor port (default: port - 1000)
  --monitor-host MONITOR_HOST
                        HTTP monitor bind address
  --http-port HTTP_PORT
                        HTTP inference port, the Open Inference Protocol
                        (default: port + 5000; 0: off)
  --http-host HTTP_HOST
                        HTTP inference bind address (default 127.0.0.1;
                        another address needs the cluster's token, so not with
                        --insecure)
  --http-idle-timeout HTTP_IDLE_TIMEOUT
                        seconds an idle keep-alive HTTP connection stays open
                        (default 60)
  --http-request-timeout HTTP_REQUEST_TIMEOUT
                        seconds an HTTP request may take to arrive whole, then
                        408 (default 30)
  --raft-port RAFT_PORT
                        Raft RPC port; must be port + 1000
  --peers [PEERS ...]   the other nodes' client addresses, space- or comma-
                        separated (H:P H:P or H:P,H:P)
  --join HOST:PORT [HOST:PORT ...]
                        join a running cluster through any of these members
                        (with empty storage): this node becomes a learner;
                        `python -m client members add` makes it a voter
  --storage-dir STORAGE_DIR
                        where Raft state, the log and models live
  --tick TICK           Raft tick, seconds
  --election-ticks ELECTION_TICKS
  --max-request-bytes MAX_REQUEST_BYTES
  --max-model-bytes MAX_MODEL_BYTES
  --max-trainings MAX_TRAININGS
                        trainings the leader runs at once; one more TRAIN gets
                        BUSY
  --max-pending MAX_PENDING
                        requests parked waiting (commit, read index,
                        training); past it BUSY
  --max-uncommitted-bytes MAX_UNCOMMITTED_BYTES
                        bytes of model files proposed but not yet committed;
                        past it IMPORT gets BUSY
  --no-trainer          do not start a trainer process
  --log-level LOG_LEVEL
  --snapshot-entries SNAPSHOT_ENTRIES
                        compact the Raft log after this many applied entries
                        (0: never)
  --fetch-chunk-bytes FETCH_CHUNK_BYTES
                        chunk size when fetching a missing model file from a
                        peer

security:
  CURVE encryption and allow-lists, on unless --insecure (docs/PROTOCOL.md
  §1.1)

"""

    private val securityHelp = listOf(
        Pair("--keys KEYS", "the cluster's key directory (python -m zmqnode keygen); default \$ZMQNODE_KEYS, " +
            "else, when this node and every peer are loopback addresses, @LOCAL@ (made by the first node started so)"),
        Pair("--node-key NODE_KEY", "this node's own keypair (default: KEYS/node<i>.key_secret, i = position " +
            "of this node among the sorted cluster addresses)"),
        Pair("--client-auth {none,curve}", "curve: only clients whose public key is in KEYS/clients may connect " +
            "(default none: any client holding KEYS/cluster.key)"),
        Pair("--insecure", "no encryption, no authentication: anyone who reaches the ports is a member")
    )

    /** argparse's help, with this user's local key directory. */
    fun help(): String {
        val b = StringBuilder(usage).append(optionsHelp)
        for ((inv, text) in securityHelp) {
            val lines = wrap(text.replace("@LOCAL@", Addresses.localKeysDir()), 54)
            if (inv.length + 2 <= 20) {
                b.append("  ").append(inv.padEnd(22)).append(lines[0]).append('\n')
                for (l in lines.drop(1)) b.append(" ".repeat(24)).append(l).append('\n')
            } else {
                b.append("  ").append(inv).append('\n')
                for (l in lines) b.append(" ".repeat(24)).append(l).append('\n')
            }
        }
        return b.toString()
    }

    /** textwrap.wrap on whitespace (the texts above break nowhere else). */
    internal fun wrap(text: String, width: Int): List<String> {
        val out = mutableListOf<String>()
        var line = StringBuilder()
        for (word in text.split(" ").filter { it.isNotEmpty() }) {
            if (line.isNotEmpty() && line.length + 1 + word.length > width) {
                out.add(line.toString())
                line = StringBuilder()
            }
            if (line.isNotEmpty()) line.append(' ')
            line.append(word)
        }
        if (line.isNotEmpty()) out.add(line.toString())
        return out
    }

    private fun looksLikeOption(arg: String): Boolean =
        arg.startsWith("-") && arg != "-" && !Regex("""-\d+$|-\d*\.\d+$""").matches(arg)

    /** The full option an argument names: exact, else a unique prefix (argparse allow_abbrev). */
    private fun resolve(name: String): String? {
        if (name == "-h") return "--help"
        if (name in all) return name
        if (!name.startsWith("--")) return null
        val matches = all.filter { it.startsWith(name) }
        if (matches.size > 1) {
            throw UsageError("ambiguous option: $name could match ${matches.joinToString(", ")}")
        }
        return matches.firstOrNull()
    }

    /**
     * Reads the Python node's command line. Throws [UsageError] (print [usage]
     * and "PROG: error: msg" to stderr, exit 2) or [HelpRequested].
     */
    fun parse(argv: List<String>, env: Map<String, String> = System.getenv()): NodeConfig {
        val vals = LinkedHashMap<String, MutableList<String>>()
        val extras = mutableListOf<String>()
        var i = 0
        while (i < argv.size) {
            val arg = argv[i]
            i++
            if (!looksLikeOption(arg)) {
                extras.add(arg)
                continue
            }
            val eq = arg.indexOf('=')
            val given = if (eq >= 0 && arg.startsWith("--")) arg.substring(0, eq) else arg
            val name = resolve(given)
            if (name == null) {
                extras.add(arg)
                continue
            }
            if (name == "--help") throw HelpRequested(help())
            if (name in bools) {
                if (eq >= 0) throw UsageError("argument $name: ignored explicit argument ${pyStr(arg.substring(eq + 1))}")
                vals[name] = mutableListOf("true")
                continue
            }
            if (eq >= 0) {
                vals[name] = mutableListOf(arg.substring(eq + 1))
                continue
            }
            if (name in multi) {
                val got = mutableListOf<String>()
                while (i < argv.size && !looksLikeOption(argv[i])) {
                    got.add(argv[i])
                    i++
                }
                if (name == "--join" && got.isEmpty()) throw UsageError("argument --join: expected at least one argument")
                vals[name] = got
                continue
            }
            if (i >= argv.size || looksLikeOption(argv[i])) throw UsageError("argument $name: expected one argument")
            vals[name] = mutableListOf(argv[i])
            i++
        }
        fun str(name: String, def: String?): String? = vals[name]?.lastOrNull() ?: def
        fun intv(name: String, def: Long?): Long? {
            val s = str(name, null) ?: return def
            val t = s.trim().replace("_", "")
            return t.toLongOrNull() ?: throw UsageError("argument $name: invalid int value: ${pyStr(s)}")
        }
        fun floatv(name: String, def: Double): Double {
            val s = str(name, null) ?: return def
            val t = s.trim().replace("_", "").toLowerCase()
            val v = when (t) {
                "inf", "+inf", "infinity", "+infinity" -> Double.POSITIVE_INFINITY
                "-inf", "-infinity" -> Double.NEGATIVE_INFINITY
                "nan", "+nan", "-nan" -> Double.NaN
                else -> if (Regex("""[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?""").matches(t)) t.toDouble() else null
            }
            return v ?: throw UsageError("argument $name: invalid float value: ${pyStr(s)}")
        }
        // argparse converts each value as it meets it; report in command-line order.
        val host = str("--host", "127.0.0.1")!!
        val port = intv("--port", 9000)!!
        val monitorArg = intv("--monitor-port", null)
        val monitorHost = str("--monitor-host", "127.0.0.1")!!
        val httpArg = intv("--http-port", null)
        val httpHost = str("--http-host", "127.0.0.1")!!
        val idle = floatv("--http-idle-timeout", 60.0)
        val reqTimeout = floatv("--http-request-timeout", 30.0)
        val raftArg = intv("--raft-port", null)
        val tick = floatv("--tick", DEFAULT_TICK_SECONDS)
        val electionTicks = intv("--election-ticks", DEFAULT_ELECTION_TICKS.toLong())!!
        val maxRequest = intv("--max-request-bytes", DEFAULT_MAX_REQUEST_BYTES)!!
        val maxModel = intv("--max-model-bytes", DEFAULT_MAX_MODEL_BYTES)!!
        val maxTrainings = intv("--max-trainings", DEFAULT_MAX_TRAININGS.toLong())!!
        val maxPending = intv("--max-pending", DEFAULT_MAX_PENDING.toLong())!!
        val maxUncommitted = intv("--max-uncommitted-bytes", DEFAULT_MAX_UNCOMMITTED_BYTES)!!
        val snapshotEntries = intv("--snapshot-entries", DEFAULT_SNAPSHOT_ENTRIES.toLong())!!
        val fetchChunk = intv("--fetch-chunk-bytes", DEFAULT_FETCH_CHUNK_BYTES.toLong())!!
        val clientAuth = str("--client-auth", "none")!!
        if (clientAuth != "none" && clientAuth != "curve") {
            throw UsageError("argument --client-auth: invalid choice: ${pyStr(clientAuth)} (choose from 'none', 'curve')")
        }
        if (extras.isNotEmpty()) throw UsageError("unrecognized arguments: ${extras.joinToString(" ")}")
        // node_ports (transport/addresses.py): every derived port in 1..65535.
        val monitorPort = monitorArg ?: port + MONITOR_OFFSET
        val httpDerived = if (httpArg != null && httpArg != 0L) httpArg else port + HTTP_OFFSET
        val derived = listOf(
            "client" to port, "monitor" to monitorPort, "raft" to port + RAFT_OFFSET,
            "heartbeat" to port + HEARTBEAT_OFFSET, "training" to port + TRAINING_OFFSET,
            "results" to port + RESULTS_OFFSET, "http" to httpDerived
        )
        for ((field, p) in derived) {
            if (p < 1 || p > 65535) {
                throw UsageError("client port $port gives $field port $p, outside 1..65535 " +
                    "(client ports must be within ${1 - MONITOR_OFFSET}..${65535 - HTTP_OFFSET} " +
                    "unless --monitor-port and --http-port are given)")
            }
        }
        if (!(idle > 0 && reqTimeout > 0)) {
            throw UsageError("--http-idle-timeout and --http-request-timeout must be positive")
        }
        if (httpArg != null && (httpArg < 0 || httpArg > 65535)) {
            throw UsageError("--http-port must be 0 (off) or a port, got $httpArg")
        }
        val insecure = str("--insecure", null) != null
        if (insecure && httpArg != 0L && !Addresses.isLoopback(httpHost)) {
            throw UsageError("--http-host $httpHost is not a loopback address, and with --insecure " +
                "there is no token to ask HTTP clients for: drop --insecure (the token is " +
                "KEYS/http.token), bind 127.0.0.1, or turn HTTP off with --http-port 0")
        }
        if (!(tick > 0 && tick <= 5)) throw UsageError("--tick must be between 0 and 5 seconds, got ${pyFloat(tick)}")
        if (electionTicks < 2) {
            throw UsageError("--election-ticks must be at least 2 (heartbeats go every tick), got $electionTicks")
        }
        if (snapshotEntries < 0) throw UsageError("--snapshot-entries must be 0 (never) or more, got $snapshotEntries")
        if (fetchChunk < 1024 || fetchChunk > (64L shl 20)) {
            throw UsageError("--fetch-chunk-bytes must be 1 KiB to 64 MiB, got $fetchChunk")
        }
        val raftPort = port + RAFT_OFFSET
        if (raftArg != null && raftArg != raftPort) {
            throw UsageError("--raft-port $raftArg does not match the layout every node assumes " +
                "(client port + 1000 = $raftPort); drop --raft-port or use $raftPort")
        }
        for ((flag, value) in listOf("--max-trainings" to maxTrainings, "--max-pending" to maxPending,
                "--max-uncommitted-bytes" to maxUncommitted)) {
            if (value < 1) throw UsageError("$flag must be at least 1, got $value")
        }
        val self = Addresses.format(host, port.toInt())
        val peers = mutableListOf<String>()
        val hosts = mutableListOf(host)
        for (text in splitList(vals["--peers"])) {
            val a = try { Addresses.parse(text) } catch (e: IllegalArgumentException) {
                throw UsageError("--peers: ${e.message}")
            }
            val id = Addresses.format(a.first, a.second)
            if (id != self && id !in peers) {
                peers.add(id)
                hosts.add(a.first)
            }
        }
        val join = mutableListOf<String>()
        for (text in splitList(vals["--join"])) {
            val a = try { Addresses.parse(text) } catch (e: IllegalArgumentException) {
                throw UsageError("--join: ${e.message}")
            }
            join.add(Addresses.format(a.first, a.second))
            hosts.add(a.first)
        }
        val keysArg: String? = vals["--keys"]?.lastOrNull() ?: env["ZMQNODE_KEYS"]
        var nodeKey = str("--node-key", "")!!
        var keysDir = ""
        var localKeys = false
        when {
            insecure -> if (clientAuth != "none") throw UsageError("--client-auth curve needs CURVE: drop --insecure")
            keysArg != null && keysArg != "" -> {
                keysDir = keysArg
                if (join.isNotEmpty() && nodeKey == "") {
                    throw UsageError("--join with --keys needs this node's own key: --node-key FILE " +
                        "(python -m zmqnode keygen --dir KEYS --node NAME makes KEYS/NAME.key_secret)")
                }
                if (nodeKey == "") nodeKey = Addresses.defaultNodeKey(keysDir, host, port.toInt(), peers)
            }
            else -> {
                val remote = hosts.filter { !Addresses.isLoopback(it) }
                if (keysArg != null || remote.isNotEmpty()) {
                    val why = if (remote.isNotEmpty()) {
                        "not every address is loopback (${remote.joinToString(", ")}), so no local keys"
                    } else "an empty --keys or ZMQNODE_KEYS means no keys"
                    throw UsageError("security is on by default and needs the cluster's keys: --keys DIR (or " +
                        "ZMQNODE_KEYS; create them with python -m zmqnode keygen --dir DIR), " +
                        "or --insecure to run without encryption and authentication ($why)")
                }
                keysDir = Addresses.localKeysDir()
                if (nodeKey == "") nodeKey = Addresses.localNodeKey(keysDir, host, port.toInt())
                localKeys = true
            }
        }
        if (insecure) nodeKey = ""
        val level = (str("--log-level", null) ?: env["ZMQNODE_LOG_LEVEL"] ?: "INFO").toUpperCase()
        return NodeConfig(
            host = host, port = port.toInt(), monitorPort = monitorPort.toInt(), monitorHost = monitorHost,
            httpPort = httpArg?.toInt(), httpHost = httpHost, httpIdleTimeout = idle, httpRequestTimeout = reqTimeout,
            peers = peers, storageDir = str("--storage-dir", "node_${port}_storage")!!, tickSeconds = tick,
            electionTicks = electionTicks.toInt(), maxRequestBytes = maxRequest, maxModelBytes = maxModel,
            maxTrainings = maxTrainings.toInt(), maxPending = maxPending.toInt(), maxUncommittedBytes = maxUncommitted,
            trainer = str("--no-trainer", null) == null, logLevel = level, faultFile = str("--fault-file", "")!!,
            snapshotEntries = snapshotEntries.toInt(), fetchChunkBytes = fetchChunk.toInt(), keysDir = keysDir,
            nodeKey = nodeKey, clientAuth = clientAuth, localKeys = localKeys, join = join
        )
    }

    private fun splitList(values: List<String>?): List<String> {
        val out = mutableListOf<String>()
        for (v in values ?: emptyList()) {
            for (part in v.split(",")) if (part.trim().isNotEmpty()) out.add(part)
        }
        return out
    }
}
