package zmqnode.test

import zmqnode.node.Addresses
import zmqnode.node.HelpRequested
import zmqnode.node.NodeConfig
import zmqnode.node.NodeFlags
import zmqnode.node.NodeLogger
import zmqnode.node.UsageError
import java.time.LocalDateTime
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue

class NodeConfigTest {
    private val noKeys = mapOf("ZMQNODE_KEYS" to "")

    fun testParseTakesTheSeedsCommandLine() {
        for (peers in listOf(
            listOf("--peers", "127.0.0.1:9001,127.0.0.1:9002"),
            listOf("--peers", "127.0.0.1:9001", "127.0.0.1:9002"),
            listOf("--peers=127.0.0.1:9001,127.0.0.1:9002")
        )) {
            val args = listOf("--host", "127.0.0.1", "--port", "9000", "--monitor-port", "8000", "--raft-port", "10000") +
                peers + listOf("--storage-dir", "d", "--insecure")
            val c = NodeFlags.parse(args, noKeys)
            assertEquals(listOf("127.0.0.1:9001", "127.0.0.1:9002"), c.peers, "$peers")
            assertEquals(8000, c.monitorPort)
            assertEquals("d", c.storageDir)
            assertTrue(c.insecure)
            assertEquals("127.0.0.1:9000", c.nodeId)
            assertEquals("d/worker_9000.log", c.logPath)
        }
    }

    fun testDefaultsAreThePythonNodes() {
        val c = NodeFlags.parse(listOf("--port", "9100", "--insecure"), emptyMap())
        assertEquals("127.0.0.1", c.host)
        assertEquals(8100, c.monitorPort)
        assertEquals(14100, c.httpListenPort)
        assertTrue(c.httpEnabled)
        assertNull(c.httpPort)
        assertEquals(0.05, c.tickSeconds)
        assertEquals(50L, c.tickMillis)
        assertEquals(10, c.electionTicks)
        assertEquals(512L shl 20, c.maxRequestBytes)
        assertEquals(64L shl 20, c.maxModelBytes)
        assertEquals(4, c.maxTrainings)
        assertEquals(10000, c.maxPending)
        assertEquals(256L shl 20, c.maxUncommittedBytes)
        assertEquals(1000, c.snapshotEntries)
        assertEquals(1 shl 20, c.fetchChunkBytes)
        assertEquals("node_9100_storage", c.storageDir)
        assertEquals("none", c.clientAuth)
        assertTrue(c.trainer)
        assertEquals("INFO", c.logLevel)
    }

    fun testAbbreviationsAndOffAndLocalKeys() {
        val c = NodeFlags.parse(listOf("--po", "9000", "--http-port", "0", "--no-tr", "--log-level", "debug"), emptyMap())
        assertEquals(9000, c.port)
        assertTrue(!c.httpEnabled)
        assertTrue(!c.trainer)
        assertEquals("DEBUG", c.logLevel)
        assertTrue(c.localKeys)
        assertEquals(Addresses.localNodeKey(Addresses.localKeysDir(), "127.0.0.1", 9000), c.nodeKey)
        val k = NodeFlags.parse(listOf("--port", "9001", "--peers", "127.0.0.1:9000", "127.0.0.1:9002", "--keys", "K"), emptyMap())
        assertEquals("K/node1.key_secret", k.nodeKey)
        assertEquals("K", k.keysDir)
    }

    fun testRefusesWhatPythonRefuses() {
        val cases = linkedMapOf(
            "raft port off the layout" to listOf("--port", "9000", "--raft-port", "10001", "--insecure"),
            "tick" to listOf("--tick", "0", "--insecure"),
            "election ticks" to listOf("--election-ticks", "1", "--insecure"),
            "fetch chunk" to listOf("--fetch-chunk-bytes", "10", "--insecure"),
            "max pending" to listOf("--max-pending", "0", "--insecure"),
            "curve without CURVE" to listOf("--client-auth", "curve", "--insecure"),
            "unknown flag" to listOf("--frob"),
            "ambiguous" to listOf("--m", "1", "--insecure"),
            "remote without keys" to listOf("--host", "10.0.0.1"),
            "empty ZMQNODE_KEYS" to emptyList(),
            "low port" to listOf("--port", "80", "--insecure"),
            "bad int" to listOf("--port", "abc", "--insecure"),
            "missing value" to listOf("--port"),
            "bad peer" to listOf("--peers", "nohost", "--insecure")
        )
        for ((name, args) in cases) {
            assertFailsWith<UsageError>(name) { NodeFlags.parse(args, noKeys) }
        }
    }

    fun testMessagesArePythons() {
        fun msg(vararg a: String) = assertFailsWith<UsageError> { NodeFlags.parse(a.toList(), noKeys) }.message
        assertEquals("argument --port: invalid int value: 'abc'", msg("--port", "abc"))
        assertEquals("unrecognized arguments: --bogus x", msg("--bogus", "x", "--insecure"))
        assertEquals("--tick must be between 0 and 5 seconds, got 0.0", msg("--tick", "0", "--insecure"))
        assertEquals("client port 80 gives monitor port -920, outside 1..65535 (client ports must be within " +
            "1001..60535 unless --monitor-port and --http-port are given)", msg("--port", "80", "--insecure"))
        assertEquals("--peers: address 'x' has no port; expected 'host:port'", msg("--peers", "x", "--insecure"))
        assertTrue(msg("--m", "1")!!.startsWith("ambiguous option: --m could match --monitor-port, --monitor-host"))
    }

    fun testHelp() {
        val h = assertFailsWith<HelpRequested> { NodeFlags.parse(listOf("--help"), emptyMap()) }
        assertTrue(h.text.startsWith("usage: java -jar worker.jar [-h]"))
        assertTrue(h.text.contains(Addresses.localKeysDir()))
        assertTrue(h.text.contains("  --insecure            no encryption, no authentication: anyone who reaches\n"))
        assertFailsWith<HelpRequested> { NodeFlags.parse(listOf("--port", "1", "-h"), emptyMap()) }
    }

    fun testAddresses() {
        assertEquals(Pair("::1", 9000), Addresses.parse(" [::1]:9000 "))
        assertEquals("[::1]:9000", Addresses.format("::1", 9000))
        assertTrue(Addresses.isLoopback("127.1.2.3"))
        assertTrue(Addresses.isLoopback("::1"))
        assertTrue(Addresses.isLoopback("[::1]"))
        assertTrue(Addresses.isLoopback("LocalHost"))
        assertTrue(!Addresses.isLoopback("10.0.0.1"))
        assertTrue(!Addresses.isLoopback("example.com"))
        assertEquals("node_fe80__1_9000", Addresses.localKeyName("fe80::1", 9000))
        assertEquals("tcp://[::1]:10000", NodeConfig.endpoint("::1", 10000))
    }

    fun testLogLineIsPythons() {
        val t = LocalDateTime.of(2024, 1, 2, 15, 4, 5, 7_000_000)
        assertEquals("2024-01-02 15:04:05,007 INFO    [127.0.0.1:9000] zmqnode.node: hi",
            NodeLogger.logLine(t, "INFO", "127.0.0.1:9000", "zmqnode.node", "hi"))
    }
}
