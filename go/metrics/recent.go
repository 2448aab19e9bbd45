package metrics

import (
	"math"
	"sync"
	"time"
)

// Recent is metrics.py's RecentLatency: requests per second and latency
// quantiles over the last Seconds, in one-second slots of LatencyBuckets,
// for the status feed's requests_per_s and p99_ms (PROTOCOL.md §9b).
type Recent struct {
	Seconds int
	// Clock is monotonic seconds (time since the process started by default).
	Clock func() float64
	mu    sync.Mutex
	slots map[int64]*buckets
}

var processStart = time.Now()

func monotonic() float64 { return time.Since(processStart).Seconds() }

// NewRecent keeps the last seconds (5 in the node).
func NewRecent(seconds int) *Recent {
	return &Recent{Seconds: seconds, Clock: monotonic, slots: map[int64]*buckets{}}
}

// Observe records one latency in the current second.
func (r *Recent) Observe(latency float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	second := int64(math.Floor(r.Clock()))
	slot := r.slots[second]
	if slot == nil {
		slot = &buckets{counts: make([]uint64, len(LatencyBuckets)+1)}
		r.slots[second] = slot
		for s := range r.slots {
			if s <= second-int64(r.Seconds) {
				delete(r.slots, s)
			}
		}
	}
	slot.observe(LatencyBuckets, latency)
}

func (r *Recent) window() (slots []*buckets, now float64) {
	now = r.Clock()
	sec := int64(math.Floor(now))
	for s, b := range r.slots {
		if sec-int64(r.Seconds) < s && s <= sec {
			slots = append(slots, b)
		}
	}
	return slots, now
}

// Rate is requests per second over the window (a partial current second
// included).
func (r *Recent) Rate() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	slots, now := r.window()
	if len(slots) == 0 {
		return 0
	}
	elapsed := float64(r.Seconds-1) + math.Mod(now, 1)
	var n uint64
	for _, b := range slots {
		n += b.count
	}
	return float64(n) / math.Max(elapsed, 1)
}

// Quantile is the bucket bound below which a fraction q of the window's
// latencies lie (+Inf above the last bound); ok is false when the window is
// empty (Python's None).
func (r *Recent) Quantile(q float64) (bound float64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slots, _ := r.window()
	var total uint64
	for _, b := range slots {
		total += b.count
	}
	if total == 0 {
		return 0, false
	}
	rank, running := q*float64(total), uint64(0)
	for i := 0; i <= len(LatencyBuckets); i++ {
		for _, b := range slots {
			running += b.counts[i]
		}
		if float64(running) >= rank {
			if i == len(LatencyBuckets) {
				return math.Inf(1), true
			}
			return LatencyBuckets[i], true
		}
	}
	return math.Inf(1), true
}
