// The node's log: Python-format lines (zmqnode/logs.py FORMAT) to stderr and
// to worker_<port>.log, safe from any thread (the ZAP handler and the HTTP
// threads log too). go/node/logger.go.
package zmqnode.node

import java.io.FileOutputStream
import java.time.LocalDateTime
import java.time.format.DateTimeFormatter

class NodeLogger(private val node: String, path: String?, level: String) {
    private val threshold: Int = LEVELS[level.toUpperCase()] ?: 20
    private var file: FileOutputStream? = if (path != null && path != "") FileOutputStream(path, true) else null

    fun enabled(level: String): Boolean = (LEVELS[level] ?: 0) >= threshold

    /** One line at [level] on logger [name]. */
    fun log(level: String, name: String, message: String) {
        if (!enabled(level)) return
        val line = (logLine(LocalDateTime.now(), level, node, name, message) + "\n").toByteArray(Charsets.UTF_8)
        synchronized(this) {
            System.err.write(line)
            System.err.flush()
            try {
                file?.write(line)
            } catch (e: java.io.IOException) {
                // the disk is full or gone: stderr still has it
            }
        }
    }

    fun info(name: String, message: String) = log("INFO", name, message)
    fun warning(name: String, message: String) = log("WARNING", name, message)
    fun error(name: String, message: String) = log("ERROR", name, message)
    fun debug(name: String, message: String) = log("DEBUG", name, message)

    /** A function that logs at [level] on [name], for components that take one. */
    fun forLevel(level: String, name: String): (String) -> Unit = { msg -> log(level, name, msg) }

    fun close() {
        synchronized(this) {
            try {
                file?.close()
            } catch (e: java.io.IOException) {
            }
            file = null
        }
    }

    companion object {
        val LEVELS = mapOf("DEBUG" to 10, "INFO" to 20, "WARNING" to 30, "ERROR" to 40, "CRITICAL" to 50)
        private val STAMP = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss,SSS")

        /** "2024-01-02 15:04:05,123 INFO    [node] name: message" (logging's default asctime). */
        fun logLine(t: LocalDateTime, level: String, node: String, name: String, message: String): String =
            "${t.format(STAMP)} ${level.padEnd(7)} [$node] $name: $message"
    }
}
