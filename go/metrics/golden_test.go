package metrics

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden files are Python's metrics.Registry.render for the same
// updates (testdata/gen_golden.py); regenerate with
// `python go/metrics/testdata/gen_golden.py` from the repository root.

func golden(t *testing.T, name string) []byte {
	t.Helper()
	want, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func compare(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("line %d:\n got: %q\nwant: %q", i+1, gl, wl)
		}
	}
	t.Fatal("renders differ")
}

func TestRenderMatchesPythonRegistry(t *testing.T) {
	r := NewRegistry("t_")
	c := r.Counter("plain", "A counter without labels.")
	c.Inc()
	c.Add(2.5)
	r.Counter("never", "Declared, never used.", "kind")
	lab := r.Counter("by_kind", `Help with "quotes" and \ backslash.`, "kind", "status")
	lab.Inc("b", "OK")
	lab.Add(3, "a", "ERR")
	lab.Inc("b", "OK")
	lab.Add(0.1, "we\"ird\\\nvalue", "ñ")
	lab.Add(0.2, "a", "ERR")
	r.Gauge("level", "A gauge.").Set(1e20)
	g2 := r.Gauge("many", "Gauges of awkward values.", "v")
	for _, kv := range []struct {
		name  string
		value float64
	}{
		{"neg0", math.Copysign(0, -1)}, {"tiny", 1e-7}, {"third", 1.0 / 3}, {"inf", math.Inf(1)},
		{"ninf", math.Inf(-1)}, {"nan", math.NaN()}, {"big", 1.5e300}, {"frac", 123456789.125},
		{"e16", 1.2345678901234567e16}, {"neg", -2.5}, {"k", 65536.0}, {"small", 0.0001},
	} {
		g2.Set(kv.value, kv.name)
	}
	h := r.Histogram("latency", "A histogram.", nil)
	pointThree := 0.1
	pointThree += 0.2
	for _, v := range []float64{0.0001, 0.00011, 0.003, 0.003, 2.0, 61.0, 0.0, -1.0, math.NaN(), pointThree} {
		h.Observe(v)
	}
	r.Histogram("unused", "A histogram never observed.", nil)
	hl := r.Histogram("sizes", "A labelled histogram.", SizeBuckets, "endpoint")
	for i := 1; i < 40; i++ {
		endpoint := "infer"
		if i%3 == 0 {
			endpoint = "model"
		}
		hl.Observe(float64(i*7), endpoint)
	}
	hd := r.Histogram("durations", "Durations.", DurationBuckets)
	hd.Observe(4000)
	hd.Observe(0.1)
	compare(t, r.Render(), golden(t, "registry.golden"))
}

func TestNodeMetricsMatchObservePy(t *testing.T) {
	m := NewNodeMetrics()
	m.Term.Set(7)
	for _, role := range Roles {
		v := 0.0
		if role == "follower" {
			v = 1
		}
		m.Role.Set(v, role)
	}
	m.CommitIndex.Set(41)
	m.Campaigns.Inc()
	m.RPCSent.Inc("append")
	m.RPCSent.Inc("append")
	m.RPCReceived.Inc("append_resp")
	m.AppendSeconds.Observe(0.0004)
	m.RequestDone("PREDICT", "OK", 0.0002)
	m.RequestDone("LIST", "BUSY", 0.02)
	m.PredictBatchRequests.Observe(3)
	m.TrainingJobs.Inc("ok")
	m.TrainingSeconds.Observe(12.5)
	m.Models.Set(2)
	m.ModelBytes.Set(123456)
	m.Compactions.Set(3)
	m.HTTPDone("infer", 200, 0.0015)
	m.HTTPConnections.Set(1)
	m.Events.Inc("malformed")
	compare(t, m.Registry.Render(), golden(t, "node.golden"))
}

func TestAnEmptyRegistryRendersOneNewline(t *testing.T) {
	if got := string(NewRegistry("x_").Render()); got != "\n" {
		t.Fatalf("got %q", got)
	}
}

func TestAWrongNumberOfLabelValuesCannotBreakRendering(t *testing.T) {
	r := NewRegistry("x_")
	c := r.Counter("c", "h", "a", "b")
	c.Inc("only")
	c.Inc("1", "2", "3")
	want := "# HELP x_c_total h\n# TYPE x_c_total counter\nx_c_total{a=\"only\",b=\"\"} 1\nx_c_total{a=\"1\",b=\"2\"} 1\n"
	if got := string(r.Render()); got != want {
		t.Fatalf("got %q", got)
	}
}

func TestRecentRateAndQuantile(t *testing.T) {
	now := 100.5
	r := NewRecent(5)
	r.Clock = func() float64 { return now }
	if _, ok := r.Quantile(0.99); ok || r.Rate() != 0 {
		t.Fatal("an empty window has no quantile and rate 0")
	}
	for i := 0; i < 99; i++ {
		r.Observe(0.0002)
	}
	r.Observe(3)
	if q, _ := r.Quantile(0.99); q != 0.00025 {
		t.Fatalf("p99 %v", q)
	}
	if q, _ := r.Quantile(1); q != 5 {
		t.Fatalf("p100 %v", q)
	}
	if rate := r.Rate(); rate != 100/4.5 {
		t.Fatalf("rate %v", rate)
	}
	now = 106
	if r.Rate() != 0 {
		t.Fatal("old slots leave the window")
	}
}

func TestPyRoundIsPythonsRound(t *testing.T) {
	// round(x, n) in CPython: 2.675 is 2.67499999... in binary.
	for _, c := range []struct{ x, want float64 }{
		{2.675, 2.67}, {0.25, 0.2}, {0.35, 0.3}, {22.5, 22.5}, {0.1 + 0.2, 0.3}, {1e-4, 0}, {100.0 / 4.5, 22.2},
	} {
		digits := 1
		if c.x == 2.675 {
			digits = 2
		}
		if got := PyRound(c.x, digits); got != c.want {
			t.Errorf("round(%v, %d) = %v, want %v", c.x, digits, got, c.want)
		}
	}
}

func TestFeedRatesHasNoP99WithoutPredictions(t *testing.T) {
	m := NewNodeMetrics()
	m.RequestDone("LIST", "OK", 0.001)
	if _, _, _, ok := m.FeedRates(); ok {
		t.Fatal("p99 without predictions")
	}
	m.RequestDone("PREDICT", "OK", 0.0002)
	if _, _, p99, ok := m.FeedRates(); !ok || p99 != 0.25 {
		t.Fatalf("p99 %v %v", p99, ok)
	}
}
