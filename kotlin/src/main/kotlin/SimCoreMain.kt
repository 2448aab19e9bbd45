package zmqnode.simcore

/** `worker.jar sim-core`: serves Raft cores on stdin/stdout (docs/SIMCORE.md). */
fun simCoreMain(args: List<String>) {
    System.err.println("sim-core: not built yet")
    System.exit(2)
}
