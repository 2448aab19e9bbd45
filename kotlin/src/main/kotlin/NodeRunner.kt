package zmqnode.node

/** Builds the node for a parsed command line and runs it until SIGTERM; the exit status (go/main.go runNode). */
object NodeRunner {
    fun run(cfg: NodeConfig): Int {
        val node = try {
            Node(cfg)
        } catch (e: Throwable) {
            return fatal(null, cfg, e)
        }
        val stop = { _: Any? -> node.stop() }
        for (name in listOf("TERM", "INT")) {
            try {
                sun.misc.Signal.handle(sun.misc.Signal(name)) { stop(it) }
            } catch (e: IllegalArgumentException) {
            }
        }
        return try {
            node.run()
            0
        } catch (e: Throwable) {
            fatal(node, cfg, e)
        }
    }

    /**
     * Reports what stopped the node as one line (CRITICAL in its log) and
     * returns the exit status: 2 for damaged storage, unusable keys or a
     * broken invariant (as __main__.py), 1 otherwise.
     */
    fun fatal(node: Node?, cfg: NodeConfig, e: Throwable): Int {
        val storageDamaged = e is FatalError || e is KeyFileError || e is zmqnode.storage.CorruptionError ||
            e is zmqnode.storage.BrokenError || e is zmqnode.raft.InvariantError
        val message = if (storageDamaged) "node not started: ${e.message}" else (e.message ?: e.toString())
        if (!storageDamaged) e.printStackTrace()
        if (node != null) {
            node.log.log("CRITICAL", "zmqnode.storage", message)
        } else {
            try {
                java.io.File(cfg.storageDir).mkdirs()
                val l = NodeLogger(cfg.nodeId, cfg.logPath, cfg.logLevel)
                l.log("CRITICAL", "zmqnode.storage", message)
                l.close()
            } catch (x: Exception) {
                System.err.println("zmqnode: $message")
            }
        }
        return if (storageDamaged) EXIT_STORAGE_DAMAGED else 1
    }
}
