// The services around the node's loop (go/node/services.go, node.py's
// Node.__init__): metrics, the HTTP monitor, and (as their packages land)
// the trainer, the training coordinator (NodeTraining.kt) and HTTP inference
// (NodeHttp.kt).
package zmqnode.node

import zmqnode.httpinfer.HttpServer
import zmqnode.metrics.Levels
import zmqnode.metrics.NodeMetrics
import zmqnode.monitor.Monitor
import zmqnode.monitor.MonitorSource
import zmqnode.wire.Json

/** The version the HTTP inference port reports. */
const val VERSION = "0.1.0-kotlin"

class NodeServices private constructor(private val n: Node) {
    val metrics = NodeMetrics()
    var monitor: Monitor? = null
        private set
    private var modelsSeen = -1

    /** The HTTP inference server (NodeHttp.kt), or null when --http-port 0. */
    var http: HttpServer? = null

    private fun start() {
        val cfg = n.cfg
        val m = metrics
        n.registry.parseModel = NodeModels.parser()
        n.stats.onRequest = { kind, status, sec -> m.requestDone(kind, status, sec) }
        n.stats.onBatch = { k -> m.predictBatchRequests.observe(k.toDouble()) }
        n.stats.onCommit = { sec -> m.commitSeconds.observe(sec) }
        n.stats.onEvent = { kind -> m.events.inc(kind) }
        n.stats.onRaft = { sent, kind -> if (sent) m.rpcSent.inc(kind) else m.rpcReceived.inc(kind) }
        n.storage.stats.onFsync = { ns -> m.fsyncSeconds.observe(ns / 1e9) }
        n.traffic.observe = { sec -> m.appendSeconds.observe(sec) }
        n.onRoleCounters = { campaign, leaderChange ->
            if (campaign) m.campaigns.inc()
            if (leaderChange) m.leaderChanges.inc()
        }
        n.httpRate = { m.feedRates().httpRequestsPerS }
        try {
            monitor = Monitor.start(cfg.monitorHost, cfg.monitorPort, MonitorSource(
                metrics = { m.registry.render() },
                logTail = { lines -> Monitor.tailFile(cfg.logPath, lines) }))
        } catch (e: Exception) {
            throw RuntimeException("node ${n.id}: the monitor: ${e.message}. Another node (or an old one) is probably " +
                "using this port: stop it (./run_cluster.sh stop) or choose another --port")
        }
        n.closers.add { monitor?.close() }
        // /status carries the STATUS fields from the moment the port accepts
        // connections: a reader polling a restarted node must never see the
        // empty object (the trainer and HTTP inference start below take time).
        monitor?.publish(Json.encode(n.status()))
        n.onTick.add { refresh() }
        NodeTraining.start(n, this)
        NodeHttp.start(n, this)
        refresh()
    }

    /** Gauges, /status and /models, once a tick. */
    fun refresh() {
        val core = n.core
        metrics.refresh(Levels(
            role = n.role(), term = core.term, commitIndex = core.commitIndex, appliedIndex = core.appliedIndex,
            lastIndex = core.lastIndex, trainings = (n.trainingsRunning?.invoke() ?: 0).toLong(),
            logBytes = n.logBytes(), models = n.registry.models.size.toLong(), modelBytes = n.registry.modelBytes(),
            snapshotIndex = core.snapshot.index, modelsDamaged = n.registry.damaged.size.toLong(),
            compactions = n.compactor?.compactions ?: 0, filesFetched = n.fetcher?.filesFetched ?: 0,
            chunksFetched = n.fetcher?.chunksFetched ?: 0))
        http?.let { metrics.httpConnections.set(it.connections.toDouble()) }
        val mon = monitor ?: return
        mon.publish(Json.encode(n.status()))
        if (n.registry.models.size != modelsSeen) {
            modelsSeen = n.registry.models.size
            mon.publishModels(Json.encode(n.registry.listing()))
        }
    }

    companion object {
        fun start(n: Node): NodeServices {
            val s = NodeServices(n)
            n.services = s
            s.start()
            return s
        }
    }
}
