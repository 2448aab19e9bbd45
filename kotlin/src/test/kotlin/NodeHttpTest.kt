package zmqnode.test

import zmqnode.httpinfer.HttpReply
import zmqnode.node.HttpReplier
import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonObject
import kotlin.test.assertEquals

class NodeHttpTest {
    private class Seen : HttpReply {
        val calls = ArrayList<String>()
        override fun ok(blobs: List<ByteArray>, fields: List<Pair<String, Any?>>) {
            calls.add("ok ${blobs.size} ${fields.map { it.first }}")
        }
        override fun error(code: String, message: String) {
            calls.add("error $code $message")
        }
        override fun redirect(leader: String) {
            calls.add("redirect $leader")
        }
    }

    fun testHttpReplierForwardsEndingsAndIgnoresProgressAndWait() {
        val seen = Seen()
        val r = HttpReplier(seen)
        val req = JsonObject()
        r.waitFor(req)
        r.progress(req, listOf("round" to 1))
        assertEquals(emptyList<String>(), seen.calls)
        r.ok(req, listOf(ByteArray(4)), listOf("model_id" to "m", "outputs" to null))
        r.error(req, ErrorCode.NOT_FOUND, "no model m")
        r.redirect(req, "127.0.0.1:9001")
        assertEquals(listOf("ok 1 [model_id, outputs]", "error NOT_FOUND no model m", "redirect 127.0.0.1:9001"), seen.calls)
    }
}
