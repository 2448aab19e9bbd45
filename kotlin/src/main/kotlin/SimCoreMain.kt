// `java -jar kotlin/worker.jar sim-core`: serves Raft cores (package
// zmqnode.raft) to the Python fault simulator over the line protocol of
// docs/SIMCORE.md on stdin/stdout — one JSON request per line in, one JSON
// reply per line out, strictly in order. A port of go/simcore.
//
// One difference from the Go worker: a core's election timeouts come from
// zmqnode.raft.SplitMix64 seeded with the request's 64-bit "seed" (Go seeds
// math/rand's own source with it), so a seed makes other (still
// deterministic, replayable) schedules with Kotlin cores than with Go ones.
package zmqnode.simcore

import java.io.BufferedInputStream
import java.io.BufferedOutputStream
import java.io.ByteArrayOutputStream
import java.io.InputStream
import java.io.OutputStream

/** `worker.jar sim-core`: serves Raft cores on stdin/stdout (docs/SIMCORE.md). */
fun simCoreMain(args: List<String>) {
    if (args.isNotEmpty()) {
        System.err.println("usage: worker.jar sim-core   (requests on stdin, replies on stdout)")
        System.exit(2)
    }
    SimCoreServer().serve(System.`in`, System.out)
    System.out.flush()
}

/** The protocol version "info" reports; the proxy refuses another one. */
const val SIMCORE_PROTOCOL = 1

/** Reads lines from [input] and answers each on [output] until end of input. */
fun SimCoreServer.serve(input: InputStream, output: OutputStream) {
    val r = BufferedInputStream(input, 1 shl 16)
    val w = BufferedOutputStream(output, 1 shl 16)
    val line = ByteArrayOutputStream(1 shl 12)
    while (true) {
        val c = r.read()
        if (c < 0 || c == '\n'.toInt()) {
            val bytes = line.toByteArray()
            line.reset()
            var n = bytes.size
            while (n > 0 && (bytes[n - 1] == '\r'.toByte() || bytes[n - 1] == ' '.toByte())) n--
            if (n > 0) {
                w.write(handle(String(bytes, 0, n, Charsets.UTF_8)))
                w.write('\n'.toInt())
                w.flush() // one reply per request: the client waits for it
            }
            if (c < 0) return
        } else {
            line.write(c)
        }
    }
}
