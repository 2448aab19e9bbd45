// Where keys are when no --keys names them (zmqnode/transport/keystore.py;
// go/security/discovery.go), node addresses, and the local key directory.
package zmqnode.security

import com.sun.jna.Library
import com.sun.jna.Native
import java.io.File
import java.util.Locale

const val KEYS_ENV = "ZMQNODE_KEYS"
/** Relative to the working directory. */
const val RUN_CLUSTER_KEYS = ".cluster/keys"
const val RECORD_FILE = "keys"
const val LOCAL_KEYS_DIR = "local-keys"
const val LOCK_FILE = "local-keys.lock"
const val CLUSTER_PUBLIC = "cluster.key"

/**
 * $XDG_CONFIG_HOME/zmqnode, or ~/.config/zmqnode when XDG_CONFIG_HOME is
 * unset or not absolute (the XDG spec ignores relative paths). ~ is $HOME,
 * else the JVM's user.home.
 */
fun userDir(env: Map<String, String> = System.getenv()): String {
    var base = env["XDG_CONFIG_HOME"] ?: ""
    if (!base.startsWith("/")) {
        val home = env["HOME"] ?: System.getProperty("user.home") ?: "~"
        base = File(home, ".config").path
    }
    return File(base, "zmqnode").path
}

/** The key directory of nodes started on loopback without --keys. */
fun localKeys(env: Map<String, String> = System.getenv()): String = File(userDir(env), LOCAL_KEYS_DIR).path

/** The key directory ./run_cluster.sh recorded (one line in userDir()/keys), or null if none or not absolute. */
fun recordedKeys(env: Map<String, String> = System.getenv()): String? {
    val text = try {
        String(File(userDir(env), RECORD_FILE).readBytes(), Charsets.UTF_8).trim()
    } catch (e: java.io.IOException) {
        return null
    }
    return if (text.length > 0 && text.startsWith("/")) text else null
}

private fun holdsKeys(dir: String): Boolean = File(dir, CLUSTER_PUBLIC).isFile

/** What findKeys found: dir (null: no keys, plaintext) and, in order, where it looked and what it found there. */
class KeySearch(val dir: String?, val looked: List<String>) {
    /** One line for an error message or a log (keystore.KeySearch.describe). */
    fun describe(): String =
        (if (dir != null) "keys from $dir" else "no keys found") + " (looked at: " + looked.joinToString("; ") + ")"
}

/**
 * The key directory a client uses when given no --keys, in
 * keystore.find_keys' order: $ZMQNODE_KEYS (set but empty: none, and no
 * further look), ./.cluster/keys, the recorded directory, the local keys;
 * the first holding cluster.key wins.
 */
fun findKeys(env: Map<String, String> = System.getenv()): KeySearch {
    val fromEnv = env[KEYS_ENV]
    if (fromEnv != null) {
        if (fromEnv.length == 0) return KeySearch(null, listOf("\$$KEYS_ENV: set but empty, meaning no keys"))
        return KeySearch(fromEnv, listOf("\$$KEYS_ENV=$fromEnv"))
    }
    val looked = arrayListOf("\$$KEYS_ENV: unset")
    if (holdsKeys(RUN_CLUSTER_KEYS)) return KeySearch(RUN_CLUSTER_KEYS, looked + "./$RUN_CLUSTER_KEYS: found")
    looked.add("./$RUN_CLUSTER_KEYS: none")
    val record = File(userDir(env), RECORD_FILE).path
    val recorded = recordedKeys(env)
    when {
        recorded == null -> looked.add("$record: nothing recorded by ./run_cluster.sh")
        holdsKeys(recorded) -> return KeySearch(recorded, looked + "$record: $recorded")
        else -> looked.add("$record: $recorded, which holds no $CLUSTER_PUBLIC")
    }
    val local = localKeys(env)
    if (holdsKeys(local)) return KeySearch(local, looked + "$local: found")
    looked.add("$local: none")
    return KeySearch(null, looked)
}

/**
 * True for "localhost" (any case) and loopback IP literals (127.0.0.0/8,
 * ::1, brackets allowed), as Python's ipaddress (3.11) decides: strict
 * dotted quads (no leading zeros), and the IPv4-mapped ::ffff:127.0.0.1 is
 * not loopback. Other names are not resolved (no InetAddress lookups).
 */
fun isLoopback(host: String): Boolean {
    if (host.toLowerCase(Locale.ROOT) == "localhost") return true
    val literal = host.trim('[', ']')
    if (literal.contains(':')) {
        val b = parseIPv6(literal.substringBefore('%')) ?: return false
        for (i in 0 until 15) if (b[i] != 0) return false
        return b[15] == 1
    }
    val v4 = parseIPv4(literal) ?: return false
    return v4[0] == 127
}

private fun parseIPv4(s: String): IntArray? {
    val parts = s.split('.')
    if (parts.size != 4) return null
    val out = IntArray(4)
    for (i in 0 until 4) {
        val p = parts[i]
        if (p.length == 0 || p.length > 3 || p.any { it !in '0'..'9' }) return null
        if (p.length > 1 && p[0] == '0') return null // ipaddress: leading zeros are ambiguous
        val v = p.toInt()
        if (v > 255) return null
        out[i] = v
    }
    return out
}

/** The 16 bytes of an IPv6 literal (groups of 1-4 hex digits, one "::", an optional dotted quad last), or null. */
private fun parseIPv6(s: String): IntArray? {
    if (s.length == 0) return null
    val halves = s.split("::")
    if (halves.size > 2) return null
    fun groups(part: String, allowV4: Boolean): MutableList<Int>? {
        val out = ArrayList<Int>()
        if (part.length == 0) return out
        val items = part.split(':')
        for ((i, g) in items.withIndex()) {
            if (allowV4 && i == items.size - 1 && g.contains('.')) {
                val v4 = parseIPv4(g) ?: return null
                out.add((v4[0] shl 8) or v4[1])
                out.add((v4[2] shl 8) or v4[3])
                continue
            }
            if (g.length == 0 || g.length > 4) return null
            if (g.any { Character.digit(it, 16) < 0 || it.toInt() > 0x7f }) return null
            out.add(g.toInt(16))
        }
        return out
    }
    val words: List<Int>
    if (halves.size == 2) {
        val head = groups(halves[0], false) ?: return null
        val tail = groups(halves[1], true) ?: return null
        if (head.size + tail.size > 7) return null
        words = head + List(8 - head.size - tail.size) { 0 } + tail
    } else {
        words = groups(s, true) ?: return null
        if (words.size != 8) return null
    }
    val b = IntArray(16)
    for (i in 0 until 8) {
        b[2 * i] = words[i] ushr 8
        b[2 * i + 1] = words[i] and 0xff
    }
    return b
}

private val UNSAFE_CHARS = Regex("[^A-Za-z0-9.-]")

/** A node's keypair name in the local key directory: node_<host>_<port>, with [^A-Za-z0-9.-] in the host replaced by "_". */
fun localKeyName(host: String, port: Int): String = "node_" + UNSAFE_CHARS.replace(host, "_") + "_" + port

/** The keypair file of the node at host:port in a local key directory. */
fun localNodeKey(keysDir: String, host: String, port: Int): String =
    File(keysDir, localKeyName(host, port) + ".key_secret").path

/** A node's host and client port. */
data class Address(val host: String, val port: Int) {
    override fun toString() = formatAddress(host, port)
}

/** "host:port", IPv6 hosts in brackets (addresses.format_address). */
fun formatAddress(host: String, port: Int): String = if (host.contains(':')) "[$host]:$port" else "$host:$port"

/** "tcp://host:port" (addresses.tcp_endpoint). */
fun tcpEndpoint(host: String, port: Int): String = "tcp://" + formatAddress(host, port)

/**
 * Splits "host:port" or "[v6]:port" (addresses.parse_address); throws
 * IllegalArgumentException with Python's messages. The port is digits as
 * Python's str.isdigit/int read them (Unicode decimal digits included).
 */
fun parseAddress(text: String): Address {
    val value = text.trim()
    val host: String
    val portText: String
    if (value.startsWith("[")) {
        val close = value.indexOf(']', 1)
        if (close < 0 || !value.startsWith(":", close + 1)) {
            throw IllegalArgumentException("address ${pyRepr(text)} is not '[ipv6]:port'")
        }
        host = value.substring(1, close)
        portText = value.substring(close + 2)
    } else {
        val i = value.lastIndexOf(':')
        if (i < 0) throw IllegalArgumentException("address ${pyRepr(text)} has no port; expected 'host:port'")
        host = value.substring(0, i)
        portText = value.substring(i + 1)
        if (host.contains(':')) throw IllegalArgumentException("address ${pyRepr(text)}: write IPv6 hosts as '[addr]:port'")
    }
    if (host.length == 0) throw IllegalArgumentException("address ${pyRepr(text)} has no host; expected 'host:port'")
    var port = 0L
    var ok = portText.length > 0
    for (c in portText) {
        val d = Character.digit(c, 10)
        if (d < 0 || !Character.isDigit(c)) {
            ok = false
            break
        }
        port = port * 10 + d
        if (port > 65535) {
            ok = false
            break
        }
    }
    if (!ok || port < 1) throw IllegalArgumentException("address ${pyRepr(text)}: port must be a number in 1..65535")
    return Address(host, port.toInt())
}

/** Python's repr of a str for the messages above (printable ASCII texts; others close enough). */
private fun pyRepr(s: String): String =
    if (s.contains('\'') && !s.contains('"')) "\"" + s + "\"" else "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"

/** Python's str ordering: by code point (not UTF-16 unit, which differs past U+FFFF). */
private fun compareCodePoints(a: String, b: String): Int {
    var i = 0
    var j = 0
    while (i < a.length && j < b.length) {
        val ca = a.codePointAt(i)
        val cb = b.codePointAt(j)
        if (ca != cb) return ca.compareTo(cb)
        i += Character.charCount(ca)
        j += Character.charCount(cb)
    }
    return (a.length - i).compareTo(b.length - j)
}

/**
 * KEYS/node<i>.key_secret where i is this node's place among the cluster's
 * addresses (itself and its peers) sorted by (host, port), as
 * config.default_node_key: keygen --nodes N and run_cluster.sh number nodes
 * the same way. Throws IllegalArgumentException for a bad peer address.
 */
fun defaultNodeKey(keysDir: String, host: String, port: Int, peers: List<String>): String {
    val self = formatAddress(host, port)
    val members = arrayListOf(Address(host, port))
    for (p in peers) {
        val a = parseAddress(p)
        if (formatAddress(a.host, a.port) != self) members.add(a)
    }
    val sorted = members.sortedWith(Comparator { x, y ->
        val c = compareCodePoints(x.host, y.host)
        if (c != 0) c else x.port.compareTo(y.port)
    })
    val i = sorted.indexOfFirst { it.host == host && it.port == port }
    return File(keysDir, "node$i.key_secret").path
}

// ---------------------------------------------------------------------------
// The local key directory

/** flock(2) through JNA: Python's fcntl.flock, which JVM FileChannel locks (fcntl/POSIX record locks) do not exclude. */
private interface LibCFlock : Library {
    fun open(path: String, flags: Int, mode: Int): Int
    fun flock(fd: Int, operation: Int): Int
    fun close(fd: Int): Int
}

private val libcFlock: LibCFlock by lazy {
    Native.load("c", LibCFlock::class.java, mapOf(Library.OPTION_STRING_ENCODING to "UTF-8"))
}

private const val O_WRONLY = 1
private const val O_CREAT = 64
private const val O_APPEND = 1024
private const val O_CLOEXEC = 524288
private const val LOCK_EX = 2
private const val EINTR = 4

/**
 * Makes sure keysDir holds the cluster keypair, a client keypair and, for
 * each node address, a member keypair (public key in members/), creating
 * what is missing under an exclusive flock on the sibling local-keys.lock,
 * so nodes starting at once (Python, Go or Kotlin) make one set. Returns
 * the files made. As keystore.ensure_local_keys.
 */
fun ensureLocalKeys(keysDir: String, nodes: List<Address>): List<String> {
    fun fail(why: String): Nothing = throw KeyFileException("cannot make the local keys in $keysDir: $why")
    val root = File(keysDir)
    val parent = root.absoluteFile.parentFile
    if (!parent.isDirectory) {
        if (!parent.mkdirs()) fail("cannot make ${parent.path}")
        try {
            java.nio.file.Files.setPosixFilePermissions(parent.toPath(),
                java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"))
        } catch (e: java.io.IOException) {
        }
    }
    val lib = libcFlock
    val fd = lib.open(File(parent, LOCK_FILE).path, O_WRONLY or O_CREAT or O_APPEND or O_CLOEXEC, 438 /* 0666 */)
    if (fd < 0) fail("cannot open ${File(parent, LOCK_FILE).path} (errno ${Native.getLastError()})")
    try {
        while (lib.flock(fd, LOCK_EX) != 0) {
            val e = Native.getLastError()
            if (e != EINTR) fail("cannot lock ${File(parent, LOCK_FILE).path} (errno $e)")
        }
        val made = ArrayList<String>()
        try {
            if (!File(root, "$CLUSTER_KEY.key_secret").exists()) {
                // keygen(root, nodes=0, clients=1, force=True): a fresh set.
                if (!root.isDirectory) {
                    if (!root.mkdir() && !root.isDirectory) fail("cannot make $keysDir")
                    java.nio.file.Files.setPosixFilePermissions(root.toPath(),
                        java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"))
                }
                for (sub in listOf(MEMBERS_DIR, CLIENTS_DIR)) File(root, sub).deleteRecursively()
                // root.glob("*.key*"): pathlib's glob matches hidden files too.
                root.listFiles()?.filter { it.name.contains(".key") && it.isFile }?.forEach { it.delete() }
                for (sub in listOf(MEMBERS_DIR, CLIENTS_DIR)) {
                    val d = File(root, sub)
                    if (!d.isDirectory && !d.mkdirs()) fail("cannot make ${d.path}")
                }
                made.add(createKeypair(keysDir, keysDir, CLUSTER_KEY))
                made.add(createKeypair(File(root, CLIENTS_DIR).path, keysDir, CLIENT_KEY))
                File(root, HTTP_TOKEN).delete()
                made.add(ensureHttpToken(keysDir))
            }
            for (n in nodes) {
                val name = localKeyName(n.host, n.port)
                if (File(root, "$name.key_secret").exists()) continue
                val members = File(root, MEMBERS_DIR)
                if (!members.isDirectory && !members.mkdirs()) fail("cannot make ${members.path}")
                made.add(createKeypair(members.path, keysDir, name))
            }
        } catch (e: java.io.IOException) {
            fail(e.message ?: e.toString())
        }
        return made
    } finally {
        lib.close(fd) // releases the lock
    }
}
