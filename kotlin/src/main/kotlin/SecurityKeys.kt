// Package zmqnode.security gives the Kotlin node the Python node's CURVE
// security (docs/PROTOCOL.md §1.1, zmqnode/transport/security.py and
// keystore.py; the port of go/security): the same key files read the same
// way, the same CURVE server and client roles, and a ZAP handler
// (Gatekeeper) that admits the same public keys.
//
// Key layout (python -m zmqnode keygen --dir DIR):
//
//   DIR/cluster.key          the cluster's CURVE server public key: clients need it
//   DIR/cluster.key_secret   the cluster's server keypair: every node needs it
//   DIR/node<i>.key_secret   node i's own keypair (its CURVE client identity)
//   DIR/members/*.key        allow-list of node public keys (peer sockets)
//   DIR/client.key_secret    a client keypair (the CLI's default identity)
//   DIR/clients/*.key        allow-list of client public keys (--client-auth curve)
//   DIR/http.token           the HTTP inference bearer token
//
// Files are ZeroMQ certificates as pyzmq's zmq.auth writes and reads them.
// A null NodeKeys everywhere means --insecure: the NULL mechanism,
// plaintext, no authentication.
package zmqnode.security

import zmqnode.zmq.Curve
import java.io.File
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.nio.file.attribute.PosixFilePermissions
import java.security.SecureRandom
import java.time.LocalDateTime
import java.time.format.DateTimeFormatter

// ZAP domains (PROTOCOL.md §1.1).
/** Raft ROUTER, trainer PULL, results PULL: member keys only. */
const val PEERS = "zmqnode.peers"
/** Client ROUTER and heartbeat PUB: members and, with --client-auth curve, the client allow-list; with none, any key. */
const val CLIENTS = "zmqnode.clients"

// File and directory names of a key directory.
const val CLUSTER_KEY = "cluster"
const val CLIENT_KEY = "client"
const val MEMBERS_DIR = "members"
const val CLIENTS_DIR = "clients"
const val HTTP_TOKEN = "http.token"

// Client authentication policies (--client-auth).
const val CLIENT_AUTH_NONE = "none"
const val CLIENT_AUTH_CURVE = "curve"

/** A key file or directory that is missing or unreadable; the message names it. A node stops with it (exit status 2). */
class KeyFileException(message: String) : Exception(message)

/** What a node (and its trainer) needs: the cluster's server keypair, the node's own keypair and the allow-lists, Z85 text. */
class NodeKeys(
    val serverPublic: String,
    val serverSecret: String,
    val public: String,
    val secret: String,
    /** Sorted. */
    val members: List<String>,
    /** Sorted; null: any client key (--client-auth none). */
    val clients: List<String>?
) {
    override fun toString() = "NodeKeys(public=$public, ${members.size} members, clients=${clients?.size})"
}

/** What a client needs: the cluster's public key and a keypair. */
class ClientKeys(val serverPublic: String, val public: String, val secret: String) {
    override fun toString() = "ClientKeys(public=$public)"
}

/** A certificate's keys; secret is null in a public (.key) file. */
class Certificate(val public: String, val secret: String?)

/**
 * Reads a ZeroMQ certificate file as pyzmq's zmq.auth.load_certificate
 * does: lines (split on \n) stripped of ASCII whitespace; "#" lines are
 * comments; a line starting with "public-key" or "secret-key" gives the
 * text after its first "=", stripped of spaces, tabs and quotes; reading
 * stops once both are non-empty (until then a later line replaces an
 * earlier one). Bytes are read as Latin-1 (keys are Z85 ASCII).
 */
fun loadCertificate(path: String): Certificate {
    val f = File(path)
    if (!f.exists()) throw KeyFileException("cannot read key file $path: Invalid certificate file: $path")
    val data = try {
        f.readBytes()
    } catch (e: IOException) {
        throw KeyFileException("cannot read key file $path: ${e.message}")
    }
    var pub: String? = null
    var sec: String? = null
    for (raw in String(data, Charsets.ISO_8859_1).split('\n')) {
        val line = raw.trim { it == ' ' || it == '\t' || it == '\n' || it == '\r' || it == '\u000b' || it == '\u000c' }
        if (line.startsWith("#")) continue
        if (line.startsWith("public-key")) pub = valueOf(line)
        if (line.startsWith("secret-key")) sec = valueOf(line)
        if (!pub.isNullOrEmpty() && !sec.isNullOrEmpty()) break
    }
    if (pub == null) throw KeyFileException("cannot read key file $path: No public key found in $path")
    return Certificate(pub, if (sec.isNullOrEmpty()) null else sec)
}

private fun valueOf(line: String): String {
    val i = line.indexOf('=')
    // Python's split(b"=", 1)[1] raises IndexError on a line without "=";
    // an empty value is what Go makes of it, and what we do.
    val v = if (i < 0) "" else line.substring(i + 1)
    return v.trim { it == ' ' || it == '\t' || it == '\'' || it == '"' }
}

/** The public and secret keys of a .key_secret file; KeyFileException if it holds no secret key. */
fun loadKeypair(path: String): Certificate {
    val c = loadCertificate(path)
    if (c.secret == null) throw KeyFileException("$path holds no secret key (a .key_secret file is needed)")
    return c
}

/** The Z85 public key in a .key or .key_secret file (security.py public_key_of). */
fun loadPublicKey(path: String): String = loadCertificate(path).public

/**
 * The public keys of every *.key file in dir (not .key_secret, not hidden
 * files, as Python's glob), sorted, without duplicates or empty keys, as
 * zmq.auth.load_certificates.
 */
fun loadAllowList(dir: String): List<String> {
    val d = File(dir)
    if (!d.isDirectory) throw KeyFileException("allow-list directory $dir does not exist")
    val files = d.listFiles() ?: throw KeyFileException("cannot list $dir")
    val keys = java.util.TreeSet<String>()
    for (f in files) {
        if (!f.name.endsWith(".key") || f.name.startsWith(".")) continue
        val public = loadPublicKey(File(dir, f.name).path)
        if (public.length > 0) keys.add(public)
    }
    return keys.toList()
}

/**
 * Reads a node's keys: keysDir/cluster.key_secret, the node's own keypair
 * nodeKey, keysDir/members/ (which must hold the node's own public key: the
 * other nodes would refuse it otherwise) and, with clientAuth "curve",
 * keysDir/clients/. Any problem is a KeyFileException naming the file.
 */
fun loadNodeKeys(keysDir: String, nodeKey: String, clientAuth: String): NodeKeys {
    val server = loadKeypair(File(keysDir, "$CLUSTER_KEY.key_secret").path)
    val own = loadKeypair(nodeKey)
    val membersDir = File(keysDir, MEMBERS_DIR).path
    val members = loadAllowList(membersDir)
    if (own.public !in members) {
        throw KeyFileException("$nodeKey's public key is not in $membersDir: the other nodes would refuse this node")
    }
    val clients = if (clientAuth == CLIENT_AUTH_CURVE) loadAllowList(File(keysDir, CLIENTS_DIR).path) else null
    return NodeKeys(server.public, server.secret!!, own.public, own.secret!!, members, clients)
}

/**
 * Reads what a client needs from keysDir (holding cluster.key). Its identity
 * is clientKey, else keysDir/client.key_secret, else a fresh keypair
 * (enough for --client-auth none).
 */
fun loadClientKeys(keysDir: String, clientKey: String? = null): ClientKeys {
    val serverPublic = loadPublicKey(File(keysDir, "$CLUSTER_KEY.key").path)
    val path = if (!clientKey.isNullOrEmpty()) clientKey else File(keysDir, "$CLIENT_KEY.key_secret").path
    return if (!clientKey.isNullOrEmpty() || File(path).exists()) {
        val c = loadKeypair(path)
        ClientKeys(serverPublic, c.public, c.secret!!)
    } else {
        val kp = Curve.keypair()
        ClientKeys(serverPublic, kp.public, kp.secret)
    }
}

// ---------------------------------------------------------------------------
// Writing keys (the local key directory, tests)

private const val SECRET_BANNER = "#   ****  Generated on %s by zmqnode (Kotlin)  ****\n" +
    "#   ZeroMQ CURVE **Secret** Certificate\n" +
    "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"

private const val PUBLIC_BANNER = "#   ****  Generated on %s by zmqnode (Kotlin)  ****\n" +
    "#   ZeroMQ CURVE Public Certificate\n" +
    "#   Exchange securely, or use a secure mechanism to verify the contents\n" +
    "#   of this file after exchange. Store public certificates in your home\n" +
    "#   directory, in the .curve subdirectory.\n\n"

private val RW_OWNER = PosixFilePermissions.fromString("rw-------")
private val RW_R_R = PosixFilePermissions.fromString("rw-r--r--")

/** Writes a certificate in zmq.auth's format (banner, empty metadata, curve section), through NAME.tmp. */
private fun writeCertificate(path: File, public: String, secret: String?) {
    val now = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSSSSS"))
    val b = StringBuilder()
    b.append((if (secret != null) SECRET_BANNER else PUBLIC_BANNER).replace("%s", now))
    b.append("metadata\ncurve\n")
    b.append("    public-key = \"").append(public).append("\"\n")
    if (secret != null) b.append("    secret-key = \"").append(secret).append("\"\n")
    val perms = if (secret != null) RW_OWNER else RW_R_R
    val tmp = File(path.path + ".tmp").toPath()
    Files.deleteIfExists(tmp)
    // Created with its mode: a secret is never readable by others, not even before a chmod.
    FileChannel.open(tmp, setOf(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
        PosixFilePermissions.asFileAttribute(perms)).use { ch ->
        val buf = ByteBuffer.wrap(b.toString().toByteArray(Charsets.UTF_8))
        while (buf.hasRemaining()) ch.write(buf)
    }
    Files.setPosixFilePermissions(tmp, perms) // the umask may have masked the creation mode
    Files.move(tmp, path.toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE)
}

/**
 * Makes a new keypair NAME: publicDir/NAME.key (public, 0644) and
 * secretDir/NAME.key_secret (0600), as security._create does. Returns the
 * secret file's path.
 */
fun createKeypair(publicDir: String, secretDir: String, name: String): String {
    val kp = Curve.keypair()
    try {
        writeCertificate(File(publicDir, "$name.key"), kp.public, null)
    } catch (e: IOException) {
        throw KeyFileException("cannot write $name.key: ${e.message}")
    }
    val path = File(secretDir, "$name.key_secret")
    try {
        writeCertificate(path, kp.public, kp.secret)
    } catch (e: IOException) {
        throw KeyFileException("cannot write ${path.path}: ${e.message}")
    }
    return path.path
}

/**
 * Makes dir/http.token (mode 0600, 256 random bits as hex and a newline) if
 * it is missing, with O_EXCL so nodes starting at once make one. Returns its path.
 */
fun ensureHttpToken(dir: String): String {
    val path = File(dir, HTTP_TOKEN)
    val ch = try {
        FileChannel.open(path.toPath(), setOf(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
            PosixFilePermissions.asFileAttribute(RW_OWNER))
    } catch (e: FileAlreadyExistsException) {
        return path.path
    } catch (e: IOException) {
        throw KeyFileException("cannot create ${path.path}: ${e.message}")
    }
    ch.use {
        val raw = ByteArray(32)
        SecureRandom().nextBytes(raw)
        val hex = StringBuilder(65)
        for (x in raw) {
            val v = x.toInt() and 0xff
            hex.append(HEX[v ushr 4]).append(HEX[v and 15])
        }
        hex.append('\n')
        try {
            val buf = ByteBuffer.wrap(hex.toString().toByteArray(Charsets.US_ASCII))
            while (buf.hasRemaining()) it.write(buf)
            it.force(true)
        } catch (e: IOException) {
            throw KeyFileException("cannot write ${path.path}: ${e.message}")
        }
    }
    return path.path
}

private const val HEX = "0123456789abcdef"

/** The cluster's HTTP bearer token (security.py load_http_token): dir/http.token, made if missing, at least 16 characters once stripped. */
fun loadHttpToken(dir: String): String {
    val path = ensureHttpToken(dir)
    val token = try {
        String(File(path).readBytes(), Charsets.UTF_8).trim()
    } catch (e: IOException) {
        throw KeyFileException("cannot read $path: ${e.message}")
    }
    if (token.length < 16) {
        throw KeyFileException("$path holds no token (at least 16 characters); delete it to remake")
    }
    return token
}
