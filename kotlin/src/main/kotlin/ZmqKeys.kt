// Z85 and CURVE keys through libzmq (go/zmq/keys.go).
package zmqnode.zmq

import com.sun.jna.Memory

/** A CURVE keypair as two 40-character Z85 strings. */
class CurveKeyPair(val public: String, val secret: String) {
    override fun toString() = "CurveKeyPair(public=$public, secret=<hidden>)"
}

/** Z85 text (ZeroMQ RFC 32) through libzmq. */
object Z85 {
    /** Encodes data (a multiple of 4 bytes, e.g. a 32-byte CURVE key) as Z85 text. */
    fun encode(data: ByteArray): String {
        if (data.size % 4 != 0) throw IllegalArgumentException("z85: ${data.size} bytes is not a multiple of 4")
        if (data.isEmpty()) return ""
        val src = Memory(data.size.toLong())
        src.write(0, data, 0, data.size)
        val dst = Memory(data.size * 5L / 4 + 1)
        if (Native0.zmq.zmq_z85_encode(dst, src, SizeT(data.size.toLong())) == null) {
            throw IllegalArgumentException("z85: cannot encode")
        }
        return String(dst.getByteArray(0, data.size * 5 / 4), Charsets.ISO_8859_1)
    }

    /** Decodes Z85 text (a multiple of 5 characters). */
    fun decode(text: String): ByteArray {
        if (text.length % 5 != 0) throw IllegalArgumentException("z85: ${text.length} characters is not a multiple of 5")
        if (text.length == 0) return ByteArray(0)
        if (text.any { it.toInt() < 0x21 || it.toInt() > 0x7e }) {
            throw IllegalArgumentException("z85: ${quote(text)} is not valid Z85")
        }
        val n = text.length * 4 / 5
        val dst = Memory(n.toLong())
        if (Native0.zmq.zmq_z85_decode(dst, text) == null) {
            throw IllegalArgumentException("z85: ${quote(text)} is not valid Z85")
        }
        return dst.getByteArray(0, n)
    }

    private fun quote(s: String) = "\"" + s + "\""
}

/** CURVE keys through libzmq. */
object Curve {
    /** A new CURVE keypair (zmq_curve_keypair). */
    fun keypair(): CurveKeyPair {
        val buf = Memory(82)
        val pub = buf.share(0)
        val sec = buf.share(41)
        if (Native0.zmq.zmq_curve_keypair(pub, sec) != 0) throw Zmq.error("curve_keypair")
        return CurveKeyPair(String(pub.getByteArray(0, 40), Charsets.ISO_8859_1),
            String(sec.getByteArray(0, 40), Charsets.ISO_8859_1))
    }

    /** The Z85 public key of a Z85 secret key (zmq_curve_public). */
    fun publicOf(secret: String): String {
        if (secret.length != 40) {
            throw IllegalArgumentException("curve: a Z85 secret key has 40 characters, got ${secret.length}")
        }
        val pub = Memory(41)
        if (Native0.zmq.zmq_curve_public(pub, secret) != 0) throw Zmq.error("curve_public")
        return String(pub.getByteArray(0, 40), Charsets.ISO_8859_1)
    }
}
