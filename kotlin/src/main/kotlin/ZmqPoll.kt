// zmq_poll over several sockets (go/zmq/poll.go).
package zmqnode.zmq

import com.sun.jna.Memory
import com.sun.jna.Native

/**
 * Waits on several sockets at once (zmq_poll). It belongs to the thread
 * that owns its sockets. The zmq_pollitem_t array lives in one native block
 * reused by every poll; its layout on 64-bit Linux is
 * `{ void *socket; int fd; short events; short revents; }` = 16 bytes
 * (pointer at 0, fd at 8, events at 12, revents at 14), in general
 * pointer-sized socket, then int, short, short, padded to pointer alignment.
 */
class Poller {
    private val sockets = ArrayList<Socket>()
    private val events = ArrayList<Int>()
    private var items: Memory? = null

    /** Registers s for events (Zmq.POLLIN | Zmq.POLLOUT) and returns its index in poll's result. */
    fun add(s: Socket, events: Int): Int {
        sockets.add(s)
        this.events.add(events)
        items?.close()
        items = null
        return sockets.size - 1
    }

    /** Changes the events registered for index i. */
    fun setEvents(i: Int, events: Int) {
        this.events[i] = events
    }

    /** The number of registered sockets. */
    val size: Int get() = sockets.size

    /**
     * Waits until one of the sockets is ready or timeoutMs passes (negative:
     * forever, 0: just look) and returns, per registered socket in add
     * order, the events ready (0: none). Retries after a signal with the
     * time left. ETERM (ZmqException.isTerm) means the context is going away.
     */
    fun poll(timeoutMs: Long): IntArray {
        val n = sockets.size
        if (n == 0) throw IllegalArgumentException("zmq poll: no sockets")
        val m = items ?: Memory(n * ITEM_SIZE).also { items = it }
        for (i in 0 until n) {
            val base = i * ITEM_SIZE
            m.setPointer(base, sockets[i].ptr("poll"))
            m.setInt(base + P, 0)
            m.setShort(base + P + 4, events[i].toShort())
            m.setShort(base + P + 6, 0)
        }
        val deadline = if (timeoutMs >= 0) System.nanoTime() + timeoutMs * 1_000_000 else 0L
        while (true) {
            var ms = -1L
            if (timeoutMs >= 0) {
                val left = maxOf(0L, deadline - System.nanoTime())
                ms = (left + 999_999) / 1_000_000
            }
            val rc = ZmqFast.zmq_poll(m, n, ms)
            if (rc < 0) {
                val e = Zmq.lastErrno()
                if (e == Zmq.EINTR) continue
                throw Zmq.error("poll", e)
            }
            val out = IntArray(n)
            for (i in 0 until n) out[i] = m.getShort(i * ITEM_SIZE + P + 6).toInt() and 0xffff
            return out
        }
    }

    /** Frees the native item array (the Poller stays usable). */
    fun close() {
        items?.close()
        items = null
    }

    private companion object {
        val P = Native.POINTER_SIZE.toLong()
        // socket pointer, int fd, short events, short revents; padded to the pointer's alignment.
        val ITEM_SIZE = ((P + 8 + P - 1) / P) * P
    }
}
