package zmqnode.node

/** Exit status for damaged storage, unusable keys or a broken invariant (__main__.py). */
const val EXIT_STORAGE_DAMAGED = 2

/** Stops the node: damaged storage, unusable keys, a broken Raft invariant (exit 2). */
class FatalError(message: String, cause: Throwable? = null) : Exception(message, cause)

/** `java -jar worker.jar --host H --port P ...`: one node (docs/PROTOCOL.md). */
fun nodeMain(args: List<String>) {
    System.exit(runNode(args))
}

/** Parses the command line as argparse would; the exit status of a refused one. */
fun parseOrExit(args: List<String>): NodeConfig? {
    try {
        return NodeFlags.parse(args)
    } catch (h: HelpRequested) {
        System.out.print(h.text)
        System.out.flush()
        System.exit(0)
    } catch (e: UsageError) {
        System.err.print(NodeFlags.usage)
        System.err.println("$PROG: error: ${e.message}")
        System.err.flush()
        System.exit(2)
    }
    return null
}

fun runNode(args: List<String>): Int {
    val cfg = parseOrExit(args) ?: return 2
    return NodeRunner.run(cfg)
}
