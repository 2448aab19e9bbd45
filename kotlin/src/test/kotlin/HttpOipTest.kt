package zmqnode.httpinfer

import java.io.File
import java.util.Base64
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.wire.Json
import zmqnode.wire.JsonNumber
import zmqnode.wire.JsonObject

// ../go/httpinfer/testdata/oip_golden.json holds zmqnode/oip.py's answers to
// the same inputs (gen_oip.py).
class HttpOipTest {
    private val golden: JsonObject by lazy {
        Json.parse(File("../go/httpinfer/testdata/oip_golden.json").readBytes()) as JsonObject
    }

    private fun b64(s: Any?) = Base64.getDecoder().decode(s as String)

    /** Same JSON by value: both re-encoded with orjson's rules. */
    private fun sameJson(got: ByteArray, want: Any?): Boolean =
        Json.encodeToString(Json.parse(got)) == Json.encodeToString(want)

    /** orjson's own words for invalid JSON are not reproduced (SPEC_NOTES.md §3); the rest of every message is. */
    private fun sameMessage(got: String, want: String): Boolean {
        val prefix = "request is not valid JSON: "
        return if (want.startsWith(prefix)) got.startsWith(prefix) else got == want
    }

    private fun outcome(block: () -> Any): Any = try {
        block()
    } catch (e: OipError) {
        e
    }

    fun testParseInferAsOipPy() {
        val cases = golden.list("parse")!!
        assertEquals(164, cases.size)
        for (c0 in cases) {
            val c = c0 as JsonObject
            val name = c.str("name")
            val length = Json.intValue(c["header_length"])
            val got = outcome { parseInfer("m-1", b64(c["body"]), length) }
            val err = c.obj("error")
            if (err != null) {
                if (got !is OipError) fail("$name: accepted; Python: ${err["status"]} ${err["message"]}")
                if (got.status.toLong() != Json.intValue(err["status"]) || !sameMessage(got.message, err.str("message")!!)) {
                    fail("$name:\n got  ${got.status} ${got.message}\nwant ${err["status"]} ${err["message"]}")
                }
                continue
            }
            if (got is OipError) fail("$name: refused: ${got.status} ${got.message}")
            val call = got as InferCall
            assertTrue(call.blob.contentEquals(b64(c["blob"])), "$name: rows differ")
            for ((task, key) in listOf("" to "header_None", "binary" to "header_binary", "regression" to "header_regression")) {
                val want = c.obj(key)!!
                val header = outcome { call.predictHeader("ID", task) }
                if (!want.has("ok")) {
                    if (header !is OipError || header.status.toLong() != Json.intValue(want["status"]) || header.message != want.str("message")) {
                        fail("$name task '$task': got $header, want ${want["status"]} ${want["message"]}")
                    }
                    continue
                }
                if (header is OipError) fail("$name task '$task': ${header.message}")
                assertTrue(sameJson(Json.encode(header), want["ok"]), "$name task '$task':\n got ${Json.encodeToString(header)}\nwant ${Json.encodeToString(want["ok"])}")
            }
        }
    }

    fun testInferResponseAsOipPy() {
        val cases = golden.list("responses")!!
        assertEquals(119, cases.size)
        for (c0 in cases) {
            val c = c0 as JsonObject
            val name = c.str("name")
            val call = parseInfer("m-1", b64(c["request"]), null)
            val blobs = (c.list("blobs") ?: emptyList()).map { b64(it) }
            val got = outcome { inferResponse(call, "m-1", c.obj("fields")!!, blobs) }
            val err = c.obj("error")
            if (err != null) {
                if (got !is OipError) fail("$name: answered; Python: ${err["status"]} ${err["message"]}")
                // A 500's message quotes a Python exception; only 4xx words are kept.
                if (got.status.toLong() != Json.intValue(err["status"]) || (got.status < 500 && got.message != err.str("message"))) {
                    fail("$name:\n got  ${got.status} ${got.message}\nwant ${err["status"]} ${err["message"]}")
                }
                continue
            }
            if (got is OipError) fail("$name: refused: ${got.status} ${got.message}")
            val parts = got as HttpParts
            val want = b64(c["body"])
            if (!parts.body.contentEquals(want)) {
                fail("$name body:\n got ${String(parts.body, Charsets.ISO_8859_1)}\nwant ${String(want, Charsets.ISO_8859_1)}")
            }
            val wantHeaders = c.list("headers")!!.map { (it as List<*>)[0] as String to it[1] as String }
            assertEquals(wantHeaders, parts.headers, name)
        }
    }

    fun testMetadataAsOipPy() {
        for (c0 in golden.list("metadata")!!) {
            val c = c0 as JsonObject
            val listing = c.obj("listing")!!
            val got = try {
                modelMetadata("m\u00e9", listing)
            } catch (e: IllegalArgumentException) {
                null
            }
            if (c.has("error") && c["error"] != null) {
                if (got != null) fail("${Json.encodeToString(listing)}: answered ${String(got, Charsets.UTF_8)}; Python failed")
                continue
            }
            if (got == null || !sameJson(got, c["ok"])) {
                fail("${Json.encodeToString(listing)}:\n got ${got?.let { String(it, Charsets.UTF_8) }}\nwant ${Json.encodeToString(c["ok"])}")
            }
        }
        assertTrue(sameJson(serverMetadata("0.1.0"), golden["server"]))
        for ((code, status) in golden.obj("error_status")!!.entries) {
            assertEquals((status as JsonNumber).toLong().toInt(), errorStatus(code), code)
        }
    }

    fun testHalfFloatsAreExact() {
        assertEquals(1.0f, halfToFloat(0x3c00))
        assertEquals(-2.0f, halfToFloat(0xc000))
        assertEquals(65504.0f, halfToFloat(0x7bff))
        assertEquals(5.9604645E-8f, halfToFloat(0x0001))
        assertTrue(halfToFloat(0x7c00).isInfinite())
        assertTrue(halfToFloat(0x7e00).isNaN())
    }

    fun testHeaderLength() {
        assertEquals(null, parseHeaderLength(null))
        assertEquals(12L, parseHeaderLength(" 12\t"))
        assertEquals(Long.MAX_VALUE, parseHeaderLength("99999999999999999999999"))
        val e = try { parseHeaderLength("-1"); null } catch (e: OipError) { e }
        assertEquals("Inference-Header-Content-Length must be a non-negative integer, got '-1'", e?.message)
    }
}
