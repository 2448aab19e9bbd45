// The Kotlin node's entry point: `java -jar kotlin/worker.jar` with the
// seed's flags runs a node (docs/PROTOCOL.md); `sim-core` serves Raft cores
// to the fault simulator over stdin/stdout (docs/SIMCORE.md).
package zmqnode

fun main(args: Array<String>) {
    if (args.firstOrNull() == "sim-core") {
        zmqnode.simcore.simCoreMain(args.drop(1))
    } else {
        zmqnode.node.nodeMain(args.toList())
    }
}
