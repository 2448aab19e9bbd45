package zmqnode.metrics

import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

// The golden files are Python's metrics.Registry.render for the same updates
// (../go/metrics/testdata/gen_golden.py), read in place.
class MetricsTest {
    private fun golden(name: String) = File("../go/metrics/testdata/$name").readText(Charsets.UTF_8)

    private fun compare(got: ByteArray, want: String) {
        val g = String(got, Charsets.UTF_8).split("\n")
        val w = want.split("\n")
        for (i in 0 until maxOf(g.size, w.size)) {
            val gl = g.getOrNull(i)
            val wl = w.getOrNull(i)
            if (gl != wl) fail("line ${i + 1}:\n got: $gl\nwant: $wl")
        }
    }

    fun testRenderMatchesPythonRegistry() {
        val r = Registry("t_")
        val c = r.counter("plain", "A counter without labels.")
        c.inc()
        c.add(2.5)
        r.counter("never", "Declared, never used.", "kind")
        val lab = r.counter("by_kind", "Help with \"quotes\" and \\ backslash.", "kind", "status")
        lab.inc("b", "OK")
        lab.add(3.0, "a", "ERR")
        lab.inc("b", "OK")
        lab.add(0.1, "we\"ird\\\nvalue", "ñ")
        lab.add(0.2, "a", "ERR")
        r.gauge("level", "A gauge.").set(1e20)
        val g2 = r.gauge("many", "Gauges of awkward values.", "v")
        val values = listOf(
            "neg0" to -0.0, "tiny" to 1e-7, "third" to 1.0 / 3, "inf" to Double.POSITIVE_INFINITY,
            "ninf" to Double.NEGATIVE_INFINITY, "nan" to Double.NaN, "big" to 1.5e300, "frac" to 123456789.125,
            "e16" to 1.2345678901234567e16, "neg" to -2.5, "k" to 65536.0, "small" to 0.0001
        )
        for ((name, v) in values) g2.set(v, name)
        val h = r.histogram("latency", "A histogram.", null)
        var pointThree = 0.1
        pointThree += 0.2
        for (v in listOf(0.0001, 0.00011, 0.003, 0.003, 2.0, 61.0, 0.0, -1.0, Double.NaN, pointThree)) h.observe(v)
        r.histogram("unused", "A histogram never observed.", null)
        val hl = r.histogram("sizes", "A labelled histogram.", Buckets.SIZE, "endpoint")
        for (i in 1 until 40) hl.observe((i * 7).toDouble(), if (i % 3 == 0) "model" else "infer")
        val hd = r.histogram("durations", "Durations.", Buckets.DURATION)
        hd.observe(4000.0)
        hd.observe(0.1)
        compare(r.render(), golden("registry.golden"))
    }

    fun testNodeMetricsMatchObservePy() {
        val m = NodeMetrics()
        m.term.set(7.0)
        for (role in ROLES) m.role.set(if (role == "follower") 1.0 else 0.0, role)
        m.commitIndex.set(41.0)
        m.campaigns.inc()
        m.rpcSent.inc("append")
        m.rpcSent.inc("append")
        m.rpcReceived.inc("append_resp")
        m.appendSeconds.observe(0.0004)
        m.requestDone("PREDICT", "OK", 0.0002)
        m.requestDone("LIST", "BUSY", 0.02)
        m.predictBatchRequests.observe(3.0)
        m.trainingJobs.inc("ok")
        m.trainingSeconds.observe(12.5)
        m.models.set(2.0)
        m.modelBytes.set(123456.0)
        m.compactions.set(3.0)
        m.httpDone("infer", 200, 0.0015)
        m.httpConnections.set(1.0)
        m.events.inc("malformed")
        compare(m.registry.render(), golden("node.golden"))
    }

    fun testAnEmptyRegistryRendersOneNewline() {
        assertEquals("\n", String(Registry("x_").render(), Charsets.UTF_8))
    }

    fun testAWrongNumberOfLabelValuesCannotBreakRendering() {
        val r = Registry("x_")
        val c = r.counter("c", "h", "a", "b")
        c.inc("only")
        c.inc("1", "2", "3")
        assertEquals("# HELP x_c_total h\n# TYPE x_c_total counter\nx_c_total{a=\"only\",b=\"\"} 1\nx_c_total{a=\"1\",b=\"2\"} 1\n",
            String(r.render(), Charsets.UTF_8))
    }

    fun testRecentRateAndQuantile() {
        var now = 100.5
        val r = Recent(5)
        r.clock = { now }
        assertNull(r.quantile(0.99))
        assertEquals(0.0, r.rate())
        for (i in 0 until 99) r.observe(0.0002)
        r.observe(3.0)
        assertEquals(0.00025, r.quantile(0.99))
        assertEquals(5.0, r.quantile(1.0))
        assertEquals(100 / 4.5, r.rate())
        now = 106.0
        assertEquals(0.0, r.rate())
    }

    fun testPyRoundIsPythonsRound() {
        val cases = listOf(2.675 to 2.67, 0.25 to 0.2, 0.35 to 0.3, 22.5 to 22.5, (0.1 + 0.2) to 0.3, 1e-4 to 0.0, (100.0 / 4.5) to 22.2)
        for ((x, want) in cases) {
            val digits = if (x == 2.675) 2 else 1
            assertEquals(want, pyRound(x, digits), "round($x, $digits)")
        }
    }

    fun testFeedRatesHasNoP99WithoutPredictions() {
        val m = NodeMetrics()
        m.requestDone("LIST", "OK", 0.001)
        assertNull(m.feedRates().p99Ms)
        m.requestDone("PREDICT", "OK", 0.0002)
        assertEquals(0.25, m.feedRates().p99Ms)
    }

    fun testMetricNumberSpellings() {
        assertEquals("100000000000000000000", metricNumber(1e20))
        assertEquals("0", metricNumber(-0.0))
        assertEquals("-inf", metricNumber(Double.NEGATIVE_INFINITY))
        assertTrue(metricNumber(0.1) == "0.1")
    }
}
