// The sim-core line protocol (docs/SIMCORE.md): a port of go/simcore's tests.
package zmqnode.simcore

import zmqnode.raft.parsePlain
import java.io.ByteArrayInputStream
import java.io.ByteArrayOutputStream
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

class SimCoreServerTest {
    private var s = SimCoreServer() // the runner shares one instance between tests: each starts a new server

    private fun call(req: String): Map<*, *> = parsePlain(String(s.handle(req), Charsets.UTF_8)) as Map<*, *>

    private fun ok(req: String): Map<*, *> {
        val reply = call(req)
        assertNull(reply["err"], "$req: ${reply["err"]}")
        return reply
    }

    private fun errKind(reply: Map<*, *>): String = ((reply["err"] as Map<*, *>?)?.get("kind") as String?) ?: ""

    private fun view(reply: Map<*, *>) = reply["v"] as Map<*, *>

    fun testStringsAreJsonAndSurviveTheRoundTrip() {
        s = SimCoreServer()
        for (x in listOf("n1", "say \"hi\" \\ bye", "a\nb\tc\u0000d\u001f", "nœud ノード \uD83D\uDE00")) {
            val e = Encoder()
            e.str(x)
            assertEquals(x, parsePlain(String(e.bytes(), Charsets.UTF_8)))
        }
        val e = Encoder()
        e.str("a\uD800b") // a lone surrogate, as Go writes invalid UTF-8
        assertEquals("a\uFFFDb", parsePlain(String(e.bytes(), Charsets.UTF_8)))
    }

    fun testASingleNodeCoreLeadsCommitsAndApplies() {
        s = SimCoreServer()
        val info = ok("""{"op":"info"}""")["r"] as Map<*, *>
        assertEquals(1L, info["protocol"])
        assertEquals(12, (info["mutations"] as List<*>).size)
        var reply = ok("""{"op":"new","id":"n1","peers":[],"config":{"election_ticks":4,"heartbeat_ticks":1},"seed":7}""")
        assertEquals(1L, reply["h"])
        assertEquals("follower", view(reply)["role"])
        assertNotNull(reply["m"])
        assertNotNull(reply["log"])
        // Tick (asking for the Readies each time) until it leads: its noop is
        // then a Ready to write, handed out and waiting for advance.
        val readies = ArrayList<Any?>()
        for (i in 0 until 20) {
            reply = ok("""{"op":"tick","h":1,"rd":true}""")
            (reply["readies"] as List<*>?)?.let { readies.addAll(it) }
            if (view(reply)["role"] == "leader") break
        }
        assertEquals("leader", view(reply)["role"], "no leader after 20 ticks: $reply")
        val last = readies.last() as Map<*, *>
        assertTrue(last["hs"] != null && last["entries_log"] != null, "the leader's first Ready should write its term and noop: $last")
        assertEquals(1, ((reply["log"] as Map<*, *>)["ents"] as List<*>).size, "the mirror should get the noop")
        // Written: advance; the commit follows.
        reply = ok("""{"op":"advance","h":1,"rd":true}""")
        val v = view(reply)
        assertEquals(1L, v["commit"])
        val r = ok("""{"op":"propose","h":1,"data":"YzE="}""")["r"] as Map<*, *>
        assertEquals(true, r["accepted"])
        assertEquals(2L, r["index"])
        assertEquals(v["term"], ok("""{"op":"term_at","h":1,"index":2}""")["r"])
        assertNull(ok("""{"op":"term_at","h":1,"index":9}""")["r"])
        val ents = ok("""{"op":"log_entries","h":1}""")["r"] as List<*>
        assertEquals(2, ents.size)
        assertEquals("YzE=", (ents[1] as List<*>)[3])
        assertTrue((ok("""{"op":"membership_at","h":1,"index":2}""")["r"] as String).isNotEmpty())
        ok("""{"op":"drop","h":1}""")
        assertEquals("protocol", errKind(call("""{"op":"tick","h":1}""")))
    }

    fun testBadRequestsGetErrorRepliesAndTheSessionGoesOn() {
        s = SimCoreServer()
        val cases = listOf(
            """{"op":""" to "protocol",
            """{"op":"fly"}""" to "protocol",
            """{"op":"tick","h":42}""" to "protocol",
            """{"op":"new","id":"n1","mutations":["no_such_bug"]}""" to "value",
            """{"op":"new","id":"n1","peers":["n1"]}""" to "value",
            """{"op":"new","id":"n1","config":{"election_ticks":1}}""" to "value"
        )
        for ((req, kind) in cases) assertEquals(kind, errKind(call(req)), req)
        val h = ok("""{"op":"new","id":"n1","peers":["n2"]}""")["h"]
        assertEquals("protocol", errKind(call("""{"op":"advance","h":$h}""")))
        // compact beyond applied is the core's invariant
        assertEquals("invariant", errKind(call("""{"op":"compact","h":$h,"index":5}""")))
        assertEquals("follower", view(ok("""{"op":"tick","h":$h}"""))["role"])
    }

    fun testEntriesThatAreALogRangeAreSentAsARange() {
        s = SimCoreServer()
        // A leader's Ready names its unstable entries as a range of the mirror.
        ok("""{"op":"new","id":"n1","peers":[],"config":{"election_ticks":2},"seed":1}""")
        var reply: Map<*, *> = emptyMap<Any, Any>()
        for (i in 0 until 10) {
            reply = ok("""{"op":"tick","h":1,"rd":true}""")
            if (view(reply)["role"] == "leader") break
        }
        ok("""{"op":"advance","h":1}""")
        ok("""{"op":"propose","h":1,"data":"YQ=="}""")
        reply = ok("""{"op":"ready","h":1}""")
        val rd = reply["ready"] as Map<*, *>
        assertEquals(listOf(2L, 2L), rd["entries_log"])
        assertNull(rd["entries"])
    }

    fun testServeAnswersEachLineInOrderUntilTheEnd() {
        s = SimCoreServer()
        val input = "{\"op\":\"info\"}\n\n{\"op\":\"fly\"}\r\n{\"op\":\"new\",\"id\":\"n1\"}".toByteArray(Charsets.UTF_8)
        val out = ByteArrayOutputStream()
        s.serve(ByteArrayInputStream(input), out)
        val lines = String(out.toByteArray(), Charsets.UTF_8).split("\n")
        assertEquals(4, lines.size) // three replies and the empty rest after the last newline
        assertTrue(lines[0].startsWith("{\"r\":{\"protocol\":1"))
        assertTrue(lines[1].startsWith("{\"err\":{\"kind\":\"protocol\""))
        assertTrue(lines[2].startsWith("{\"h\":1,"))
        assertEquals("", lines[3])
    }
}
