// Package metrics is the Python node's zmqnode/metrics.py in Go: counters,
// gauges and histograms with labels, rendered in the Prometheus text format
// 0.0.4 byte for byte as metrics.Registry.render does (family order, label
// set order, number formatting, the _total suffix of counters).
//
// Everything is safe for concurrent use: the node's loop goroutine updates,
// the monitor's HTTP goroutines render.
package metrics

import (
	"bytes"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"
	"zmqnode/pyfmt"
)

// Bucket sets of metrics.py.
var (
	// LatencyBuckets are seconds: fine at the low end (a prediction takes
	// ~0.1 ms), up to a minute. The default of a Histogram.
	LatencyBuckets = []float64{
		0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
		0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
	}
	// SizeBuckets count things (requests per forward pass).
	SizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536}
	// DurationBuckets are seconds of long jobs (a training).
	DurationBuckets = []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
)

// Registry holds the metrics of one node, rendered in the order they were
// made.
type Registry struct {
	prefix   string
	mu       sync.Mutex
	families []family
}

type family interface {
	render(b *bytes.Buffer)
}

// NewRegistry makes an empty registry whose metric names all start with
// prefix ("zmqnode_" for a node).
func NewRegistry(prefix string) *Registry { return &Registry{prefix: prefix} }

// Render is the text exposition of every metric (format 0.0.4), as
// metrics.Registry.render: each family's HELP and TYPE lines, then its
// samples, label sets in the order they first appeared; one "\n" after the
// last line.
func (r *Registry) Render() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for _, f := range r.families {
		f.render(&b)
	}
	if b.Len() == 0 {
		return []byte("\n") // Python: "\n".join([]) + "\n"
	}
	return b.Bytes()
}

func (r *Registry) add(f family) {
	r.mu.Lock()
	r.families = append(r.families, f)
	r.mu.Unlock()
}

// head holds what every family has: a name, help text and label names,
// plus the label sets seen, in order.
type head struct {
	mu     *sync.Mutex // the registry's: one lock for updates and rendering
	name   string
	help   string
	labels []string
	order  []string            // keys of the label sets, first use first
	vals   map[string][]string // key -> label values
}

// key of a label set. Values are padded or cut to the number of label
// names: Python's render raises on a mismatch; here it cannot break /metrics.
func (h *head) key(values []string) ([]string, string) {
	if len(values) != len(h.labels) {
		fixed := make([]string, len(h.labels))
		copy(fixed, values)
		values = fixed
	}
	k := strings.Join(values, "\x00")
	if _, ok := h.vals[k]; !ok {
		if h.vals == nil {
			h.vals = map[string][]string{}
		}
		h.vals[k] = append([]string(nil), values...)
	}
	return values, k
}

func (h *head) writeHead(b *bytes.Buffer, name, kind string) {
	b.WriteString("# HELP " + name + " " + h.help + "\n")
	b.WriteString("# TYPE " + name + " " + kind + "\n")
}

// labelsText is {a="x",b="y"} (with extra appended, as le="..."), or "" when
// there is nothing to write.
func (h *head) labelsText(key string, extra string) string {
	var parts []string
	if len(h.labels) > 0 {
		values := h.vals[key]
		for i, name := range h.labels {
			parts = append(parts, name+`="`+escape(values[i])+`"`)
		}
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func escape(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, "\n", `\n`)
	return strings.ReplaceAll(v, `"`, `\"`)
}

// Number formats a sample value as metrics.py's _number: "+Inf" for +∞, an
// integral value as the integer (exactly, however large), anything else as
// Python's repr of the float ("0.1", "1e-07", "-inf", "nan").
func Number(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsNaN(v) || math.IsInf(v, -1):
		return pyfmt.FloatRepr(v)
	case v == math.Trunc(v):
		if math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
		return new(big.Float).SetFloat64(v).Text('f', 0)
	}
	return pyfmt.FloatRepr(v)
}

// Counter is a value that only grows, rendered as <name>_total (HELP and
// TYPE lines included, as metrics.py writes them).
type Counter struct {
	head
	values map[string]float64
}

// Counter adds a counter family; name is without the prefix and without
// _total ("raft_campaigns" renders as zmqnode_raft_campaigns_total).
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	c := &Counter{head: head{mu: &r.mu, name: r.prefix + name, help: help, labels: labels}, values: map[string]float64{}}
	r.add(c)
	return c
}

// Inc adds 1 to the label set's value (made, at 0, on first use).
func (c *Counter) Inc(labelValues ...string) { c.Add(1, labelValues...) }

// Add adds v to the label set's value.
func (c *Counter) Add(v float64, labelValues ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, k := c.key(labelValues)
	if _, ok := c.values[k]; !ok {
		c.order = append(c.order, k)
	}
	c.values[k] += v
}

// Set sets the label set's value: for a total counted by its owner and
// copied here (observe.py's refresh does so for compactions and fetches).
func (c *Counter) Set(v float64, labelValues ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, k := c.key(labelValues)
	if _, ok := c.values[k]; !ok {
		c.order = append(c.order, k)
	}
	c.values[k] = v
}

// Value is the label set's value (0 if never used).
func (c *Counter) Value(labelValues ...string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, k := c.key(labelValues)
	return c.values[k]
}

func (c *Counter) render(b *bytes.Buffer) {
	name := c.name + "_total" // text format 0.0.4: the family is named as its samples
	c.writeHead(b, name, "counter")
	for _, k := range c.order {
		b.WriteString(name + c.labelsText(k, "") + " " + Number(c.values[k]) + "\n")
	}
}

// Gauge is a level read from the node's state, set (or added to).
type Gauge struct{ Counter }

// Gauge adds a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	g := &Gauge{Counter{head: head{mu: &r.mu, name: r.prefix + name, help: help, labels: labels}, values: map[string]float64{}}}
	r.add(g)
	return g
}

func (g *Gauge) render(b *bytes.Buffer) {
	g.writeHead(b, g.name, "gauge")
	for _, k := range g.order {
		b.WriteString(g.name + g.labelsText(k, "") + " " + Number(g.values[k]) + "\n")
	}
}

// Histogram counts observations into fixed buckets (upper bounds),
// rendered cumulatively as _bucket{le=...}, then _sum and _count.
type Histogram struct {
	head
	bounds []float64
	sets   map[string]*buckets
}

type buckets struct {
	counts []uint64 // one per bound, then one above every bound (+Inf)
	sum    float64
	count  uint64
}

// Histogram adds a histogram family; bounds nil means LatencyBuckets.
// labels, if any, are given to Observe in the same order.
func (r *Registry) Histogram(name, help string, bounds []float64, labels ...string) *Histogram {
	if bounds == nil {
		bounds = LatencyBuckets
	}
	bounds = append([]float64(nil), bounds...)
	h := &Histogram{head: head{mu: &r.mu, name: r.prefix + name, help: help, labels: labels}, bounds: bounds, sets: map[string]*buckets{}}
	r.add(h)
	return h
}

// Observe counts v in the first bucket whose bound is >= v (Python's
// bisect_left) for the label set.
func (h *Histogram) Observe(v float64, labelValues ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, k := h.key(labelValues)
	set := h.sets[k]
	if set == nil {
		set = &buckets{counts: make([]uint64, len(h.bounds)+1)}
		h.sets[k] = set
		h.order = append(h.order, k)
	}
	set.observe(h.bounds, v)
}

// bisectLeft is Python's bisect.bisect_left: NaN compares false with
// everything, so it lands in the first bucket.
func bisectLeft(bounds []float64, v float64) int {
	return sort.Search(len(bounds), func(i int) bool { return !(bounds[i] < v) })
}

func (s *buckets) observe(bounds []float64, v float64) {
	s.counts[bisectLeft(bounds, v)]++
	s.sum += v
	s.count++
}

// Count is the number of observations of the label set.
func (h *Histogram) Count(labelValues ...string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, k := h.key(labelValues)
	if s := h.sets[k]; s != nil {
		return s.count
	}
	return 0
}

func (h *Histogram) render(b *bytes.Buffer) {
	h.writeHead(b, h.name, "histogram")
	for _, k := range h.order {
		s := h.sets[k]
		var running uint64
		for i, n := range s.counts {
			running += n
			bound := math.Inf(1)
			if i < len(h.bounds) {
				bound = h.bounds[i]
			}
			le := `le="` + Number(bound) + `"`
			b.WriteString(h.name + "_bucket" + h.labelsText(k, le) + " " + strconv.FormatUint(running, 10) + "\n")
		}
		b.WriteString(h.name + "_sum" + h.labelsText(k, "") + " " + Number(s.sum) + "\n")
		b.WriteString(h.name + "_count" + h.labelsText(k, "") + " " + strconv.FormatUint(s.count, 10) + "\n")
	}
}
