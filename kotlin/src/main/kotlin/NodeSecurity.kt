// CURVE for the node's sockets and its ZAP handler (go/security keys.go and
// zap.go, transport/security.py), kept in the node's package while
// zmqnode.security is being written: the key files, the allow-lists and
// the gatekeeper thread that answers libzmq's ZAP requests.
package zmqnode.node

import zmqnode.zmq.Context
import zmqnode.zmq.Option
import zmqnode.zmq.Poller
import zmqnode.zmq.Socket
import zmqnode.zmq.SocketType
import zmqnode.zmq.Z85
import zmqnode.zmq.Zmq
import zmqnode.zmq.ZmqException
import java.io.File
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

const val DOMAIN_PEERS = "zmqnode.peers"
const val DOMAIN_CLIENTS = "zmqnode.clients"

/** A key file that cannot be used (exit 2, as Python's KeyFileError). */
class KeyFileError(message: String) : Exception(message)

/** A node's keys: the cluster's server keypair, its own keypair, the allow-lists (Z85 text). */
class NodeKeys(val serverPublic: String, val serverSecret: String, val public: String, val secret: String,
               val members: List<String>, val clients: List<String>?)

object KeyFiles {
    /** pyzmq's load_certificate: (public, secret or ""). */
    fun loadCertificate(path: String): Pair<String, String> {
        val data = try {
            File(path).readBytes()
        } catch (e: Exception) {
            throw KeyFileError("cannot read key file $path: ${e.message}")
        }
        var pub: String? = null
        var sec: String? = null
        for (raw in String(data, Charsets.ISO_8859_1).split("\n")) {
            val line = raw.trim()
            if (line.startsWith("#")) continue
            val value = { line.substringAfter("=", "").trim(' ', '\t', '\'', '"') }
            if (line.startsWith("public-key") && pub == null) pub = value()
            if (line.startsWith("secret-key") && sec == null) sec = value()
            if (!pub.isNullOrEmpty() && !sec.isNullOrEmpty()) break
        }
        if (pub == null) throw KeyFileError("cannot read key file $path: No public key found in $path")
        return Pair(pub, sec ?: "")
    }

    fun loadKeypair(path: String): Pair<String, String> {
        val (p, s) = loadCertificate(path)
        if (s == "") throw KeyFileError("$path holds no secret key (a .key_secret file is needed)")
        return Pair(p, s)
    }

    fun loadPublicKey(path: String): String = loadCertificate(path).first

    /** The public keys of every *.key file in dir, sorted, no duplicates. */
    fun loadAllowList(dir: String): List<String> {
        val files = File(dir).listFiles() ?: throw KeyFileError("cannot list $dir: no such directory")
        val keys = sortedSetOf<String>()
        for (f in files.sortedBy { it.name }) {
            if (f.name.startsWith(".") || !f.name.endsWith(".key")) continue
            val k = loadPublicKey(f.path)
            if (k != "") keys.add(k)
        }
        return keys.toList()
    }

    fun loadNodeKeys(keysDir: String, nodeKey: String, clientAuth: String): NodeKeys {
        val (serverPublic, serverSecret) = loadKeypair(File(keysDir, "cluster.key_secret").path)
        val (public, secret) = loadKeypair(nodeKey)
        val membersDir = File(keysDir, "members").path
        val members = loadAllowList(membersDir)
        if (public !in members) {
            throw KeyFileError("$nodeKey's public key is not in $membersDir: the other nodes would refuse this node")
        }
        val clients = if (clientAuth == "curve") loadAllowList(File(keysDir, "clients").path) else null
        return NodeKeys(serverPublic, serverSecret, public, secret, members, clients)
    }

    /** A binding socket as a CURVE server checked by ZAP [domain]; keys null: plaintext. */
    fun makeServer(s: Socket, keys: NodeKeys?, domain: String) {
        if (keys == null) return
        s.setInt(Option.CURVE_SERVER, 1)
        s.setString(Option.CURVE_SECRETKEY, keys.serverSecret)
        s.setString(Option.ZAP_DOMAIN, domain)
    }

    /** A connecting socket as a CURVE client presenting the node's keypair; keys null: plaintext. */
    fun makeClient(s: Socket, keys: NodeKeys?) {
        if (keys == null) return
        s.setString(Option.CURVE_SERVERKEY, keys.serverPublic)
        s.setString(Option.CURVE_PUBLICKEY, keys.public)
        s.setString(Option.CURVE_SECRETKEY, keys.secret)
    }
}

/**
 * The ZAP handler of one context (RFC 27) with security.py's decisions: on
 * the peers' domain a member key; on the clients' domain any key with
 * --client-auth none, else a member or client key. Its sockets live on its
 * own thread; [setMembers] is safe from any thread.
 */
class Gatekeeper private constructor(private val ctx: Context, keys: NodeKeys, private val log: (String) -> Unit) {
    private val clients: List<String>? = keys.clients
    @Volatile private var peers: Set<String> = keys.members.toSet()
    @Volatile private var clientSet: Set<String>? = clients?.let { it.toSet() + keys.members }
    @Volatile var members: List<String> = keys.members
        private set
    val denials = AtomicLong()
    private val denied = ConcurrentHashMap<String, Boolean>()
    private val control = "inproc://zmqnode-zap-control-" + seq.incrementAndGet()
    private var thread: Thread? = null

    fun setMembers(keys: List<String>) {
        val sorted = keys.toSortedSet().toList()
        members = sorted
        peers = sorted.toSet()
        clientSet = clients?.let { it.toSet() + sorted }
    }

    fun allowed(domain: String, key: String): Boolean {
        val admitted = when (domain) {
            DOMAIN_PEERS -> peers
            DOMAIN_CLIENTS -> clientSet ?: return true
            else -> return false
        }
        if (key in admitted) return true
        denials.incrementAndGet()
        val id = "$domain $key"
        if (denied.size < 256 && denied.putIfAbsent(id, true) == null) {
            log("refused a connection: public key $key is not allowed on $domain")
        }
        return false
    }

    private fun answer(req: List<ByteArray>): List<ByteArray> {
        fun reply(id: ByteArray, code: String, text: String, user: String) =
            listOf("1.0".toByteArray(), id, code.toByteArray(), text.toByteArray(), user.toByteArray(), ByteArray(0))
        if (req.size < 6) return reply(if (req.size >= 2) req[1] else ByteArray(0), "400", "Not enough frames", "")
        val id = req[1]
        if (String(req[0], Charsets.ISO_8859_1) != "1.0") return reply(id, "400", "Invalid version", "")
        var domain = String(req[2], Charsets.UTF_8)
        val mechanism = String(req[5], Charsets.ISO_8859_1)
        val creds = req.subList(6, req.size)
        return when (mechanism) {
            "NULL" -> reply(id, "200", "OK", "anonymous")
            "CURVE" -> {
                if (creds.size != 1 || creds[0].size != 32) return reply(id, "400", "Invalid credentials", "")
                val key = Z85.encode(creds[0])
                if (domain == "") domain = "*"
                when {
                    allowed(domain, key) -> reply(id, "200", "OK", key)
                    domain != DOMAIN_PEERS && domain != DOMAIN_CLIENTS -> reply(id, "400", "Unknown domain", "")
                    else -> reply(id, "400", "Unknown key", "")
                }
            }
            else -> reply(id, "400", "NO ACCESS", "")
        }
    }

    private fun serve(zap: Socket, ctl: Socket) {
        val p = Poller()
        p.add(zap, Zmq.POLLIN)
        p.add(ctl, Zmq.POLLIN)
        try {
            while (true) {
                val ready = p.poll(-1)
                if (ready[1] != 0) return
                if (ready[0] == 0) continue
                val req = zap.tryRecv() ?: continue
                zap.send(answer(req))
            }
        } catch (e: ZmqException) {
            // context terminated
        } finally {
            p.close()
            zap.close()
            ctl.close()
        }
    }

    /** Ends the handler (before the context terminates). */
    fun stop() {
        val t = thread ?: return
        thread = null
        try {
            val s = ctx.socket(SocketType.PAIR)
            s.setInt(Option.LINGER, 0)
            s.connect(control)
            s.send(listOf("stop".toByteArray()))
            t.join(5000)
            s.close()
        } catch (e: ZmqException) {
        }
    }

    companion object {
        private val seq = AtomicLong()

        /** Binds inproc://zeromq.zap.01 before returning: start it before any socket binds. */
        fun start(ctx: Context, keys: NodeKeys?, log: (String) -> Unit): Gatekeeper? {
            if (keys == null) return null
            val g = Gatekeeper(ctx, keys, log)
            val ready = java.util.concurrent.CountDownLatch(1)
            var failure: Exception? = null
            // The ZAP and control sockets are made, bound and used on the handler's thread.
            val t = Thread({
                val zap: Socket
                val ctl: Socket
                try {
                    zap = ctx.socket(SocketType.REP)
                    zap.setInt(Option.LINGER, 0)
                    zap.bind("inproc://zeromq.zap.01")
                    ctl = ctx.socket(SocketType.PAIR)
                    ctl.setInt(Option.LINGER, 0)
                    ctl.bind(g.control)
                } catch (e: Exception) {
                    failure = e
                    ready.countDown()
                    return@Thread
                }
                ready.countDown()
                g.serve(zap, ctl)
            }, "zap")
            t.isDaemon = true
            t.start()
            ready.await()
            failure?.let { throw it }
            g.thread = t
            return g
        }
    }
}

/**
 * The per-user local key directory of nodes started on loopback without
 * --keys (keystore.ensure_local_keys, go/security EnsureLocalKeys): the
 * cluster keypair, a client keypair and one member keypair per node address,
 * made under an exclusive lock on the sibling local-keys.lock.
 */
object LocalKeys {
    fun ensure(n: Node) {
        val cfg = n.cfg
        val keysDir = File(cfg.keysDir)
        val parent = keysDir.absoluteFile.parentFile
        parent.mkdirs()
        val made = ArrayList<String>()
        try {
            java.io.RandomAccessFile(File(parent, "local-keys.lock"), "rw").use { raf ->
                val lock = raf.channel.lock()
                try {
                    if (!File(keysDir, "cluster.key_secret").exists()) {
                        keysDir.mkdirs()
                        for (sub in listOf("members", "clients")) File(keysDir, sub).deleteRecursively()
                        keysDir.listFiles()?.filter { it.name.contains(".key") }?.forEach { it.delete() }
                        for (sub in listOf("members", "clients")) File(keysDir, sub).mkdirs()
                        made.add(createKeypair(keysDir, keysDir, "cluster"))
                        made.add(createKeypair(File(keysDir, "clients"), keysDir, "client"))
                        File(keysDir, "http.token").delete()
                        made.add(ensureHttpToken(keysDir))
                    }
                    for (node in listOf(n.id) + cfg.peers) {
                        val (h, p) = Addresses.parse(node)
                        val name = Addresses.localKeyName(h, p)
                        if (File(keysDir, "$name.key_secret").exists()) continue
                        File(keysDir, "members").mkdirs()
                        made.add(createKeypair(File(keysDir, "members"), keysDir, name))
                    }
                } finally {
                    lock.release()
                }
            }
        } catch (e: java.io.IOException) {
            throw KeyFileError("cannot make the local keys in $keysDir: ${e.message}")
        }
        val what = if (made.isEmpty()) "all there already" else "made ${made.size} keypairs"
        n.log.info("zmqnode.node", "no --keys and every address is loopback: using the local keys in $keysDir " +
            "($what; python -m client finds them there)")
    }

    private fun writeCertificate(path: File, public: String, secret: String, secretMode: Boolean) {
        val now = java.time.LocalDateTime.now().format(java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSSSSS"))
        val b = StringBuilder()
        if (secretMode) {
            b.append("#   ****  Generated on $now by zmqnode (Kotlin)  ****\n#   ZeroMQ CURVE **Secret** Certificate\n" +
                "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n")
        } else {
            b.append("#   ****  Generated on $now by zmqnode (Kotlin)  ****\n#   ZeroMQ CURVE Public Certificate\n" +
                "#   Exchange securely, or use a secure mechanism to verify the contents\n" +
                "#   of this file after exchange. Store public certificates in your home\n" +
                "#   directory, in the .curve subdirectory.\n\n")
        }
        b.append("metadata\ncurve\n    public-key = \"$public\"\n")
        if (secretMode) b.append("    secret-key = \"$secret\"\n")
        val tmp = File(path.path + ".tmp")
        tmp.writeBytes(b.toString().toByteArray(Charsets.UTF_8))
        val perms = if (secretMode) "rw-------" else "rw-r--r--"
        java.nio.file.Files.setPosixFilePermissions(tmp.toPath(), java.nio.file.attribute.PosixFilePermissions.fromString(perms))
        java.nio.file.Files.move(tmp.toPath(), path.toPath(), java.nio.file.StandardCopyOption.REPLACE_EXISTING,
            java.nio.file.StandardCopyOption.ATOMIC_MOVE)
    }

    private fun createKeypair(publicDir: File, secretDir: File, name: String): String {
        val kp = zmqnode.zmq.Curve.keypair()
        writeCertificate(File(publicDir, "$name.key"), kp.public, "", false)
        val path = File(secretDir, "$name.key_secret")
        writeCertificate(path, kp.public, kp.secret, true)
        return path.path
    }

    private fun ensureHttpToken(dir: File): String {
        val f = File(dir, "http.token")
        if (f.exists()) return f.path
        val raw = ByteArray(32).also { java.security.SecureRandom().nextBytes(it) }
        val text = raw.joinToString("") { String.format("%02x", it.toInt() and 0xff) } + "\n"
        java.nio.file.Files.write(f.toPath(), text.toByteArray(Charsets.ISO_8859_1), java.nio.file.StandardOpenOption.CREATE_NEW,
            java.nio.file.StandardOpenOption.WRITE)
        java.nio.file.Files.setPosixFilePermissions(f.toPath(), java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"))
        return f.path
    }
}
