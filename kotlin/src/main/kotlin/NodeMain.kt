package zmqnode.node

/** `java -jar worker.jar --host H --port P ...`: one node (docs/PROTOCOL.md). */
fun nodeMain(args: List<String>) {
    System.err.println("zmqnode kotlin node: not built yet")
    System.exit(2)
}
