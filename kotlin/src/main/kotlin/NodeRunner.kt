package zmqnode.node

/** Builds the node for a parsed command line and runs it until SIGTERM; the exit status. */
object NodeRunner {
    fun run(cfg: NodeConfig): Int {
        System.err.println("zmqnode kotlin node: the node loop is not built yet ($cfg)")
        return 1
    }
}
