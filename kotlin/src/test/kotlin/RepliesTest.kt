package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertTrue
import zmqnode.replies.Recorder
import zmqnode.replies.Replier
import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonObject

// go/replies/replies_test.go.
class RepliesTest {
    fun testRecorderKeepsEveryReplyInOrder() {
        val req = JsonObject("v" to 1, "type" to "TRAIN", "id" to "r1")
        val r = Recorder()
        val replier: Replier = r
        replier.wait(req)
        replier.progress(req, "round" to 1)
        replier.error(req, ErrorCode.BUSY, "full")
        assertTrue(r.waiting)
        assertEquals(2, r.answers.size)
        assertEquals("BUSY", r.last()!!.str("code"))
        assertEquals("r1", r.answers[0].str("id"))
        assertEquals("""{"v":1,"type":"TRAIN","id":"r1","status":"PROGRESS","round":1}""", r.answers[0].toString())
    }

    fun testOkAndRedirectKeepBlobsAndLeader() {
        val r = Recorder()
        r.ok(JsonObject("type" to "FETCH", "id" to "f"), listOf(byteArrayOf(1, 2)), "model_id" to "m")
        r.redirect(null, "127.0.0.1:9001")
        assertEquals("""{"v":1,"type":"FETCH","id":"f","status":"OK","model_id":"m"}""", r.answers[0].toString())
        assertEquals(1, r.blobs[0].size)
        assertEquals("""{"v":1,"type":"UNKNOWN","id":"","status":"REDIRECT","leader":"127.0.0.1:9001"}""", r.last().toString())
    }
}
