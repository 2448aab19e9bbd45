package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.wire.DecodeOptions
import zmqnode.wire.ErrorCode
import zmqnode.wire.Json
import zmqnode.wire.JsonObject
import zmqnode.wire.ProtocolError
import zmqnode.wire.Wire

// go/wire/golden_test.go's body, reply, envelope and reject vectors, and wire_test.go.
class WireCodecTest {
    fun testGoldenBodiesDecodeAndReencodeByteIdentically() {
        for (vec in WireGolden.load("bodies")) {
            val name = vec.str("name")!!
            val fr = WireGolden.frames(vec, "frames")
            val d = Wire.decode(fr, DecodeOptions(allowEmptyId = vec.str("kind") == "reply"))
            assertTrue(WireGolden.sameJson(d.header, vec["header"]), "$name: ${d.header}, Python read ${vec["header"]}")
            assertEquals(vec.int("blobs"), d.blobs.size.toLong(), name)
            WireGolden.sameFrames(Wire.encode(d.header, d.blobs), fr, name)
            // The same header built from Doubles (not the literals) is the same bytes.
            WireGolden.sameFrames(Wire.encode(WireGolden.kotlinValues(d.header) as JsonObject, d.blobs), fr, "$name (Doubles)")
        }
    }

    fun testGoldenRepliesBuiltInKotlinMatchPython() {
        var n = 0
        for (vec in WireGolden.load("bodies")) {
            if (vec.str("kind") != "reply") continue
            val name = vec.str("name")!!
            val fr = WireGolden.frames(vec, "frames")
            val r = vec.obj("reply")!!
            val req = r["request"] as? JsonObject
            val args = r.list("args")!!
            val fields = (WireGolden.kotlinValues(r["fields"]) as JsonObject).entries.toTypedArray()
            val h = when (r.str("fn")) {
                "ok" -> Wire.okReply(req, *fields)
                "progress" -> Wire.progressReply(req, *fields)
                "redirect" -> Wire.redirectReply(req, args[0] as String, *fields)
                "error" -> Wire.errorReply(req, ErrorCode(args[0] as String), args[1] as String, *fields)
                else -> fail("$name: fn ${r.str("fn")}")
            }
            WireGolden.sameFrames(Wire.encode(h, fr.subList(1, fr.size)), fr, name)
            n++
        }
        assertTrue(n > 20)
    }

    fun testGoldenEnvelopes() {
        for (vec in WireGolden.load("envelopes")) {
            val name = vec.str("name")!!
            val fr = WireGolden.frames(vec, "frames")
            val env = Wire.splitEnvelope(fr)
            WireGolden.sameFrames(env.routing, WireGolden.frames(vec, "routing"), name)
            WireGolden.sameFrames(env.body, WireGolden.frames(vec, "body"), name)
            WireGolden.sameFrames(Wire.joinEnvelope(env.routing, env.body), fr, name)
        }
    }

    fun testGoldenRejectsHaveThePythonCode() {
        for (vec in WireGolden.load("rejects")) {
            val name = vec.str("name")!!
            val opts = DecodeOptions(vec.int("max_header_bytes")!!.toInt(), vec.bool("allow_empty_id")!!)
            var header: JsonObject?
            var code = ""
            try {
                header = Wire.decode(WireGolden.frames(vec, "frames"), opts).header
            } catch (e: ProtocolError) {
                code = e.code.code
                header = e.header
            }
            assertEquals(vec.str("code") ?: "", code, name)
            if (vec.bool("header_checked") != true) continue
            val want = vec["header"]
            if (want == null && header == null) continue
            assertTrue(WireGolden.sameJson(header, want), "$name: header $header, Python read $want")
        }
    }

    fun testRetryableCodesAreExactlyTheFourOfSection41() {
        val want = setOf(ErrorCode.NOT_LEADER, ErrorCode.TIMEOUT, ErrorCode.BUSY, ErrorCode.UNAVAILABLE)
        assertEquals(15, ErrorCode.ALL.size)
        for (c in ErrorCode.ALL) assertEquals(c in want, c.retryable, c.code)
        assertFalse(ErrorCode("SOMETHING_NEW").retryable)
        assertEquals(ErrorCode.BUSY, ErrorCode("BUSY"))
    }

    fun testEncodeRefusesAHeaderWithoutTypeOrIdOrWithALoneSurrogate() {
        assertFailsWith<IllegalArgumentException> { Wire.encode(JsonObject("type" to "STATUS")) }
        assertFailsWith<IllegalArgumentException> { Wire.encode(JsonObject("id" to "x")) }
        assertFailsWith<IllegalArgumentException> { Wire.encode(JsonObject("type" to "STATUS", "id" to "\uD800")) }
    }

    fun testEncodePutsVFirstWhenMissing() {
        val fr = Wire.encode(JsonObject("type" to "STATUS", "id" to "é"), listOf(byteArrayOf(1)))
        assertEquals("""{"v":1,"type":"STATUS","id":"é"}""", String(fr[0], Charsets.UTF_8))
        assertEquals(2, fr.size)
    }

    fun testErrorReplyForAProtocolErrorEchoesWhatWasRead() {
        val e = assertFailsWith<ProtocolError> {
            Wire.decode(listOf("""{"v":2,"type":"TRAIN","id":"r1"}""".toByteArray(Charsets.UTF_8)))
        }
        val got = Json.encodeToString(Wire.errorReplyFor(null, e))
        assertTrue(got.startsWith("""{"v":1,"type":"TRAIN","id":"r1","status":"ERROR","code":"UNSUPPORTED_VERSION""""), got)
        assertEquals(ErrorCode.UNSUPPORTED_VERSION, Wire.codeOf(RuntimeException("wrapped", e)))
        assertEquals(ErrorCode.INTERNAL, Wire.codeOf(RuntimeException("other")))
        val internal = Wire.errorReplyFor(JsonObject("type" to "LIST", "id" to "q"), IllegalStateException("boom"))
        assertEquals("""{"v":1,"type":"LIST","id":"q","status":"ERROR","code":"INTERNAL","message":"boom"}""", internal.toString())
    }

    fun testReplyToAnUnreadableRequestIsUnknownWithEmptyId() {
        assertEquals("""{"v":1,"type":"UNKNOWN","id":"","status":"ERROR","code":"MALFORMED","message":"m"}""",
            Wire.errorReply(null, ErrorCode.MALFORMED, "m").toString())
        val long = JsonObject("type" to "", "id" to "x".repeat(129))
        assertEquals("""{"v":1,"type":"UNKNOWN","id":"","status":"OK"}""", Wire.okReply(long).toString())
    }

    fun testIdLengthIsInCodePoints() {
        val id = "\uD83D\uDE00".repeat(128) // 256 UTF-16 units, 128 code points
        val ok = Wire.decode(listOf("""{"v":1,"type":"X","id":"$id"}""".toByteArray(Charsets.UTF_8)))
        assertEquals(id, Wire.headerId(ok.header))
        assertEquals(id, Wire.okReply(ok.header).str("id"))
        val e = assertFailsWith<ProtocolError> {
            Wire.decode(listOf("""{"v":1,"type":"X","id":"${id}a"}""".toByteArray(Charsets.UTF_8)))
        }
        assertEquals(ErrorCode.BAD_REQUEST, e.code)
    }

    fun testSplitEnvelopeRoutingIsACopy() {
        val frames = listOf("peer".toByteArray(), ByteArray(0), "{}".toByteArray(), ByteArray(8))
        val env = Wire.splitEnvelope(frames)
        assertEquals(1, env.routing.size)
        assertEquals("peer", String(env.routing[0]))
        assertEquals(2, env.body.size)
        assertTrue(env.routing is java.util.ArrayList<*>)
        val e = assertFailsWith<ProtocolError> { Wire.splitEnvelope(listOf("a".toByteArray())) }
        assertEquals(ErrorCode.MALFORMED, e.code)
        assertNotNull(e.message)
    }
}
