// The C API of libzmq 4.3 as zmqnode uses it, through JNA (go/zmq is the
// cgo binding this ports): a com.sun.jna.Library interface (LibZmq) for
// set-up calls, and direct mapping (ZmqFast) for the per-frame calls. Nothing here is called outside package
// zmqnode.zmq: Context, Socket, Poller and the key functions wrap it.
//
// Mapping rules (64-bit Linux): void* -> Pointer, size_t -> SizeT (a
// NativeLong-sized IntegerType), long -> NativeLong, int -> Int, char* in ->
// String (JNA encodes it with jna.encoding: only ASCII goes through here:
// endpoints, Z85 text), char* out / uint8_t* -> Pointer or ByteArray.
// zmq_msg_t is an opaque 64-byte block (zmq.h: `unsigned char _[64]`,
// 8-aligned); the callers keep one JNA Memory(64) per socket and direction
// and reuse it for every frame.
package zmqnode.zmq

import com.sun.jna.IntegerType
import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.NativeLong
import com.sun.jna.Pointer
import com.sun.jna.ptr.IntByReference

/** size_t on the platform (8 bytes on 64-bit Linux). */
internal class SizeT(value: Long) : IntegerType(Native.SIZE_T_SIZE, value, true) {
    constructor() : this(0)
    // java.lang.Number's members Kotlin 1.3 wants spelled out.
    override fun toByte(): Byte = toLong().toByte()
    override fun toChar(): Char = toLong().toChar()
    override fun toShort(): Short = toLong().toShort()
}

/** size_t* for zmq_getsockopt's option length (in and out). */
internal class SizeTByReference(value: Long) : com.sun.jna.ptr.ByReference(Native.SIZE_T_SIZE) {
    constructor() : this(0)
    init { set(value) }
    fun set(v: Long) {
        if (Native.SIZE_T_SIZE == 8) pointer.setLong(0, v) else pointer.setInt(0, v.toInt())
    }
    fun get(): Long = if (Native.SIZE_T_SIZE == 8) pointer.getLong(0) else pointer.getInt(0).toLong()
}

internal interface LibZmq : Library {
    fun zmq_version(major: IntByReference, minor: IntByReference, patch: IntByReference)
    fun zmq_errno(): Int
    fun zmq_strerror(errnum: Int): String
    fun zmq_has(capability: String): Int

    fun zmq_ctx_new(): Pointer?
    fun zmq_ctx_term(context: Pointer): Int
    fun zmq_ctx_shutdown(context: Pointer): Int
    fun zmq_ctx_set(context: Pointer, option: Int, value: Int): Int
    fun zmq_ctx_get(context: Pointer, option: Int): Int

    fun zmq_socket(context: Pointer, type: Int): Pointer?
    fun zmq_close(socket: Pointer): Int
    fun zmq_setsockopt(socket: Pointer, option: Int, value: Pointer?, size: SizeT): Int
    fun zmq_getsockopt(socket: Pointer, option: Int, value: Pointer, size: SizeTByReference): Int
    fun zmq_bind(socket: Pointer, endpoint: String): Int
    fun zmq_connect(socket: Pointer, endpoint: String): Int
    fun zmq_unbind(socket: Pointer, endpoint: String): Int
    fun zmq_disconnect(socket: Pointer, endpoint: String): Int
    fun zmq_socket_monitor(socket: Pointer, endpoint: String?, events: Int): Int

    fun zmq_msg_init(msg: Pointer): Int
    fun zmq_msg_init_size(msg: Pointer, size: SizeT): Int
    fun zmq_msg_data(msg: Pointer): Pointer?
    fun zmq_msg_size(msg: Pointer): SizeT
    fun zmq_msg_more(msg: Pointer): Int
    fun zmq_msg_get(msg: Pointer, property: Int): Int
    fun zmq_msg_close(msg: Pointer): Int
    fun zmq_msg_send(msg: Pointer, socket: Pointer, flags: Int): Int
    fun zmq_msg_recv(msg: Pointer, socket: Pointer, flags: Int): Int

    fun zmq_poll(items: Pointer, nitems: Int, timeout: NativeLong): Int

    fun zmq_z85_encode(dest: Pointer, data: Pointer, size: SizeT): Pointer?
    fun zmq_z85_decode(dest: Pointer, string: String): Pointer?
    fun zmq_curve_keypair(publicKey: Pointer, secretKey: Pointer): Int
    fun zmq_curve_public(publicKey: Pointer, secretKey: String): Int
}

/** The C library's madvise, to hand a large received frame's pages back as they are copied out. */
internal interface LibC : Library {
    fun madvise(addr: Pointer, length: SizeT, advice: Int): Int
    fun getpagesize(): Int
}

internal object Native0 {
    // Strings (endpoints, Z85 text, zmq_strerror) cross as UTF-8, never
    // the platform charset JNA would otherwise use (jna.encoding, else
    // file.encoding: the locale's on JDK 17).
    private val options = mapOf(Library.OPTION_STRING_ENCODING to "UTF-8")

    /**
     * libzmq, loaded once: by its name ("zmq": libzmq.so, the dev symlink)
     * and else by the runtime library's file name (only libzmq5 may be
     * installed, without libzmq.so).
     */
    val zmq: LibZmq by lazy {
        try {
            Native.load("zmq", LibZmq::class.java, options)
        } catch (e: UnsatisfiedLinkError) {
            try {
                Native.load("libzmq.so.5", LibZmq::class.java, options)
            } catch (e2: UnsatisfiedLinkError) {
                e2.addSuppressed(e)
                throw e2
            }
        }
    }

    /** libc, or null where it cannot be loaded (then frames are copied without releasing pages). */
    val libc: LibC? by lazy {
        try {
            Native.load("c", LibC::class.java)
        } catch (e: Throwable) {
            null
        }
    }

    val pageSize: Long by lazy {
        try {
            libc?.getpagesize()?.toLong() ?: 4096L
        } catch (e: Throwable) {
            4096L
        }
    }
}

/**
 * The per-frame calls (send, receive, poll) through JNA direct mapping:
 * static native methods bound with Native.register, several times cheaper
 * per call than the Library interface's proxy (which boxes every argument
 * and reflects). size_t is a Long here: 64-bit Linux (LP64) only.
 */
internal object ZmqFast {
    @JvmStatic external fun zmq_msg_init(msg: Pointer): Int
    @JvmStatic external fun zmq_msg_init_size(msg: Pointer, size: Long): Int
    @JvmStatic external fun zmq_msg_data(msg: Pointer): Pointer?
    @JvmStatic external fun zmq_msg_size(msg: Pointer): Long
    @JvmStatic external fun zmq_msg_more(msg: Pointer): Int
    @JvmStatic external fun zmq_msg_get(msg: Pointer, property: Int): Int
    @JvmStatic external fun zmq_msg_close(msg: Pointer): Int
    @JvmStatic external fun zmq_msg_send(msg: Pointer, socket: Pointer, flags: Int): Int
    @JvmStatic external fun zmq_msg_recv(msg: Pointer, socket: Pointer, flags: Int): Int
    @JvmStatic external fun zmq_poll(items: Pointer, nitems: Int, timeout: Long): Int

    init {
        if (Native.SIZE_T_SIZE != 8 || Native.LONG_SIZE != 8) {
            throw UnsatisfiedLinkError("zmqnode.zmq needs a 64-bit (LP64) platform")
        }
        Native0.zmq // loaded first: the same file, and its errors
        val lib = try {
            com.sun.jna.NativeLibrary.getInstance("zmq")
        } catch (e: UnsatisfiedLinkError) {
            com.sun.jna.NativeLibrary.getInstance("libzmq.so.5")
        }
        Native.register(ZmqFast::class.java, lib)
    }
}
