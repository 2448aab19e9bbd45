// The HTTP inference port of the node (docs/HTTP.md; node.py _open_http,
// go/node/services.go): zmqnode.httpinfer's HttpServer on --http-port
// (default P+5000), its INFO/PREDICT calls served by the node's own
// dispatch on the loop thread, answered through an HttpReply.
package zmqnode.node

import zmqnode.httpinfer.HttpLimits
import zmqnode.httpinfer.HttpLinks
import zmqnode.httpinfer.HttpReply
import zmqnode.httpinfer.HttpServer
import zmqnode.raft.NO_NODE
import zmqnode.security.loadHttpToken
import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonObject

/**
 * The node's Replier for one request of the HTTP server: ok, error and
 * redirect are forwarded (the server answers once); progress and waitFor do
 * nothing (the server's own clock answers 504, its close 503).
 */
class HttpReplier(private val reply: HttpReply) : Replier {
    override fun ok(req: JsonObject?, blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) = reply.ok(blobs, fields)
    override fun error(req: JsonObject?, code: ErrorCode, message: String) = reply.error(code.code, message)
    override fun redirect(req: JsonObject?, leader: String) = reply.redirect(leader)
    override fun progress(req: JsonObject?, fields: List<Pair<String, Any?>>) {}
    override fun waitFor(req: JsonObject?) {}
}

object NodeHttp {
    /** Starts the server unless --http-port 0; closed with the node. */
    fun start(n: Node, s: NodeServices) {
        val cfg = n.cfg
        if (!cfg.httpEnabled) return
        // security.py load_http_token: the token only when security is on (node.py _open_http).
        val token = if (cfg.insecure) "" else try {
            loadHttpToken(cfg.keysDir)
        } catch (e: FatalError) {
            throw e
        } catch (e: Exception) {
            throw FatalError(e.message ?: "http.token", e)
        }
        val m = s.metrics
        val server = try {
            HttpServer.start(cfg.httpHost, cfg.httpListenPort, HttpLinks(
                submit = { fn -> n.submit(fn) },
                dispatch = { req, blobs, reply -> n.handlers.dispatch(req, blobs, HttpReplier(reply)) },
                token = token,
                log = { msg -> n.log.error("zmqnode.inference_http", msg) },
                nodeId = n.id,
                version = VERSION,
                taskOf = { id -> n.registry.models[id]?.summary?.get("task") as? String ?: "" },
                isReady = { n.core.leaderId != NO_NODE && n.core.appliedIndex >= n.core.commitIndex },
                onAnswered = { endpoint, status, sec -> m.httpDone(endpoint, status, sec) },
                limits = HttpLimits(
                    maxBodyBytes = cfg.maxRequestBytes,
                    idleTimeoutMs = (cfg.httpIdleTimeout * 1000).toLong(),
                    requestTimeoutMs = (cfg.httpRequestTimeout * 1000).toLong())))
        } catch (e: Exception) {
            throw RuntimeException("node ${n.id}: HTTP inference: ${e.message}. Another node (or an old one) is " +
                "probably using this port: stop it (./run_cluster.sh stop) or choose another --port")
        }
        s.http = server
        n.closers.add { server.close() }
        val host = if (cfg.httpHost.contains(':')) "[${cfg.httpHost}]" else cfg.httpHost
        n.httpInfo = "HTTP inference http://$host:${server.port}/v2" +
            if (token != "") " (bearer token KEYS/http.token)" else " (no token)"
    }
}
