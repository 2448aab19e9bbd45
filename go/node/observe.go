package node

import (
	"fmt"
	"math"
	"sync"
	"time"

	"zmqnode/raft"
	"zmqnode/wire"
)

// MaxEvents is how many recent events the status feed carries.
const MaxEvents = 20

// LatencyBuckets are metrics.py LATENCY_BUCKETS (the feed's p99 is one of them).
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0}

// Recent is requests/s and a latency quantile over the last 5 s in
// one-second slots (metrics.py RecentLatency).
type Recent struct {
	slots map[int64][]int64
}

func (r *Recent) observe(seconds float64, now time.Time) {
	if r.slots == nil {
		r.slots = map[int64][]int64{}
	}
	sec := now.Unix()
	slot, ok := r.slots[sec]
	if !ok {
		slot = make([]int64, len(LatencyBuckets)+1)
		r.slots[sec] = slot
		for s := range r.slots {
			if s <= sec-5 {
				delete(r.slots, s)
			}
		}
	}
	i := 0
	for i < len(LatencyBuckets) && seconds > LatencyBuckets[i] {
		i++
	}
	slot[i]++
}

func (r *Recent) window(now time.Time) [][]int64 {
	var out [][]int64
	sec := now.Unix()
	for s, b := range r.slots {
		if sec-5 < s && s <= sec {
			out = append(out, b)
		}
	}
	return out
}

// Rate is requests per second over the window.
func (r *Recent) Rate(now time.Time) float64 {
	w := r.window(now)
	if len(w) == 0 {
		return 0
	}
	var total int64
	for _, b := range w {
		for _, c := range b {
			total += c
		}
	}
	frac := float64(now.UnixNano()%1e9) / 1e9
	return float64(total) / math.Max(4+frac, 1)
}

// Quantile is the bucket bound below which q of the window lies; ok false
// without observations; +Inf past the last bound.
func (r *Recent) Quantile(q float64, now time.Time) (float64, bool) {
	w := r.window(now)
	counts := make([]int64, len(LatencyBuckets)+1)
	var total int64
	for _, b := range w {
		for i, c := range b {
			counts[i] += c
			total += c
		}
	}
	if total == 0 {
		return 0, false
	}
	rank, running := q*float64(total), int64(0)
	for i, c := range counts {
		running += c
		if float64(running) >= rank {
			if i < len(LatencyBuckets) {
				return LatencyBuckets[i], true
			}
			return math.Inf(1), true
		}
	}
	return math.Inf(1), true
}

// Stats is what the node counts for /metrics and the status feed. The
// loop writes it; Snapshot copies are for other goroutines.
type Stats struct {
	mu             sync.Mutex
	Requests       map[[2]string]int64 // (type, status) -> count
	RequestSeconds map[string][]float64
	Events         map[string]int64
	Sent           map[string]int64
	Received       map[string]int64
	LeaderChanges  int64
	Campaigns      int64
	Compactions    int64
	FilesFetched   int64
	ChunksFetched  int64
	recent         Recent
	recentPredict  Recent
	// Hooks for a metrics registry (go/metrics), set by main.
	OnRequest func(kind, status string, seconds float64)
	OnFsync   func(seconds float64)
	OnBatch   func(requests int)
	OnCommit  func(seconds float64)
	OnEvent   func(kind string)
	OnRaft    func(sent bool, kind string)
}

// NewStats is an empty set of counters.
func NewStats() *Stats {
	return &Stats{Requests: map[[2]string]int64{}, Events: map[string]int64{}, Sent: map[string]int64{}, Received: map[string]int64{}}
}

// RequestDone: one client request answered.
func (s *Stats) RequestDone(kind, status string, d time.Duration) {
	s.mu.Lock()
	s.Requests[[2]string{kind, status}]++
	now := time.Now()
	s.recent.observe(d.Seconds(), now)
	if kind == wire.TypePredict {
		s.recentPredict.observe(d.Seconds(), now)
	}
	s.mu.Unlock()
	if s.OnRequest != nil {
		s.OnRequest(kind, status, d.Seconds())
	}
}

// Count counts an event without a metric of its own.
func (s *Stats) Count(kind string) {
	s.mu.Lock()
	s.Events[kind]++
	s.mu.Unlock()
	if s.OnEvent != nil {
		s.OnEvent(kind)
	}
}

// ObserveFsync is storage's fsync hook (any goroutine).
func (s *Stats) ObserveFsync(d time.Duration) {
	if s.OnFsync != nil {
		s.OnFsync(d.Seconds())
	}
}

// ObserveBatch: requests served by one forward pass.
func (s *Stats) ObserveBatch(n int) {
	if s.OnBatch != nil {
		s.OnBatch(n)
	}
}

// ObserveCommit: a proposal applied after d.
func (s *Stats) ObserveCommit(d time.Duration) {
	if s.OnCommit != nil {
		s.OnCommit(d.Seconds())
	}
}

// RaftSent counts a message sent.
func (s *Stats) RaftSent(m raft.Message) {
	s.mu.Lock()
	s.Sent[m.Type.String()]++
	s.mu.Unlock()
	if s.OnRaft != nil {
		s.OnRaft(true, m.Type.String())
	}
}

// RaftReceived counts a message received.
func (s *Stats) RaftReceived(m raft.Message) {
	s.mu.Lock()
	s.Received[m.Type.String()]++
	s.mu.Unlock()
	if s.OnRaft != nil {
		s.OnRaft(false, m.Type.String())
	}
}

// Events is the node's recent events, numbered (observe.py Events).
type Events struct {
	seq    int64
	Recent []*wire.Object
}

// Add records one event.
func (e *Events) Add(kind, text string) {
	e.seq++
	e.Recent = append(e.Recent, wire.NewObject(
		wire.Field{Key: "seq", Value: e.seq},
		wire.Field{Key: "time", Value: round3(float64(time.Now().UnixNano()) / 1e9)},
		wire.Field{Key: "kind", Value: kind},
		wire.Field{Key: "text", Value: text},
	))
	if len(e.Recent) > MaxEvents {
		e.Recent = e.Recent[len(e.Recent)-MaxEvents:]
	}
}

// role is STATUS's role: a follower that does not vote says "learner",
// one no longer a member "removed".
func (n *Node) role() string {
	core := n.Core
	if core.Role() == raft.RoleFollower && !core.Membership().IsVoter(n.ID) {
		if core.Membership().IsLearner(n.ID) {
			return "learner"
		}
		return "removed"
	}
	return core.Role().String()
}

func (n *Node) leaderValue() any {
	if l := n.Core.LeaderID(); l != "" {
		return l
	}
	return nil
}

func (n *Node) trainerState() string {
	if n.TrainerState != nil {
		return n.TrainerState()
	}
	return "disabled"
}

func (n *Node) trainingsRunning() int {
	if n.TrainingsRunning != nil {
		return n.TrainingsRunning()
	}
	return 0
}

// Status is the STATUS reply's fields (§5.6, observe.py NodeSnapshot.status).
func (n *Node) Status() *wire.Object {
	core, cfg := n.Core, n.Cfg
	peers := core.Peers()
	if peers == nil {
		peers = []string{}
	}
	return wire.NewObject(
		wire.Field{Key: "node", Value: n.ID},
		wire.Field{Key: "role", Value: n.role()},
		wire.Field{Key: "term", Value: core.Term()},
		wire.Field{Key: "leader", Value: n.leaderValue()},
		wire.Field{Key: "commit_index", Value: core.CommitIndex()},
		wire.Field{Key: "applied_index", Value: core.AppliedIndex()},
		wire.Field{Key: "last_index", Value: core.LastIndex()},
		wire.Field{Key: "peers", Value: peers},
		wire.Field{Key: "models", Value: int64(len(n.Registry.Models))},
		wire.Field{Key: "snapshot_index", Value: core.Snapshot().Index},
		wire.Field{Key: "models_repairing", Value: int64(n.fetcher.Pending())},
		wire.Field{Key: "uptime_s", Value: round3(time.Since(n.started).Seconds())},
		wire.Field{Key: "trainer", Value: n.trainerState()},
		wire.Field{Key: "limits", Value: wire.NewObject(
			wire.Field{Key: "max_request_bytes", Value: cfg.MaxRequestBytes},
			wire.Field{Key: "max_model_bytes", Value: cfg.MaxModelBytes},
			wire.Field{Key: "max_trainings", Value: int64(cfg.MaxTrainings)},
			wire.Field{Key: "max_pending", Value: int64(cfg.MaxPending)},
			wire.Field{Key: "max_uncommitted_bytes", Value: cfg.MaxUncommittedBytes},
		)},
		wire.Field{Key: "load", Value: wire.NewObject(
			wire.Field{Key: "trainings", Value: int64(n.trainingsRunning())},
			wire.Field{Key: "pending", Value: int64(n.Handlers.Pending())},
			wire.Field{Key: "uncommitted_bytes", Value: n.Proposals.UncommittedBytes},
		)},
	)
}

func (n *Node) peersHeard(now time.Time) *wire.Object {
	o := &wire.Object{}
	for _, p := range n.Core.Peers() {
		if t, ok := n.links.LastHeard[p]; ok {
			o.Set(p, round3(now.Sub(t).Seconds()))
		} else {
			o.Set(p, nil)
		}
	}
	return o
}

// Feed is one status feed message (§9b, observe.py status_feed).
func (n *Node) Feed(now time.Time) *wire.Object {
	core := n.Core
	n.Stats.mu.Lock()
	p99, ok := n.Stats.recentPredict.Quantile(0.99, now)
	rate := n.Stats.recent.Rate(now)
	n.Stats.mu.Unlock()
	httpRate := 0.0
	if n.Services != nil && n.Services.Metrics != nil {
		httpRate = n.Services.Metrics.RecentHTTP.Rate() // HTTP answers come from other goroutines
	}
	var p99v any
	if ok {
		if math.IsInf(p99, 1) {
			p99v = p99 // null on the wire, as orjson writes inf
		} else {
			p99v = round3(p99 * 1000)
		}
	}
	var views []*wire.Object
	if n.TrainingViews != nil {
		views = n.TrainingViews()
	}
	if views == nil {
		views = []*wire.Object{}
	}
	events := append([]*wire.Object{}, n.events.Recent...)
	return wire.NewObject(
		wire.Field{Key: "node", Value: n.ID},
		wire.Field{Key: "seq", Value: int64(n.ticks)},
		wire.Field{Key: "time", Value: round3(float64(now.UnixNano()) / 1e9)},
		wire.Field{Key: "role", Value: n.role()},
		wire.Field{Key: "term", Value: core.Term()},
		wire.Field{Key: "leader", Value: n.leaderValue()},
		wire.Field{Key: "commit_index", Value: core.CommitIndex()},
		wire.Field{Key: "applied_index", Value: core.AppliedIndex()},
		wire.Field{Key: "last_index", Value: core.LastIndex()},
		wire.Field{Key: "models", Value: int64(len(n.Registry.Models))},
		wire.Field{Key: "models_missing", Value: int64(n.fetcher.Pending() + len(n.Registry.Damaged))},
		wire.Field{Key: "trainer", Value: n.trainerState()},
		wire.Field{Key: "requests_per_s", Value: math.Round(rate*10) / 10},
		wire.Field{Key: "http_requests_per_s", Value: math.Round(httpRate*10) / 10},
		wire.Field{Key: "p99_ms", Value: p99v},
		wire.Field{Key: "peers", Value: n.peersHeard(now)},
		wire.Field{Key: "trainings", Value: views},
		wire.Field{Key: "events", Value: events},
	)
}

// tickObservers: once a tick, peers up/down and the status publication;
// the status feed 5 times a second.
func (n *Node) tickObservers(now time.Time) {
	n.ticks++
	downAfter := n.Cfg.Tick * time.Duration(n.Cfg.ElectionTicks)
	for _, p := range n.Core.Peers() {
		t, ok := n.links.LastHeard[p]
		silent := !ok || now.Sub(t) > downAfter
		if silent && !n.peersDown[p] {
			n.peersDown[p] = true
			n.events.Add("peer_down", fmt.Sprintf("%s: no word from %s for %gs", n.ID, p, downAfter.Seconds()))
		} else if !silent && n.peersDown[p] {
			delete(n.peersDown, p)
			n.events.Add("peer_up", fmt.Sprintf("%s hears from %s", n.ID, p))
		}
	}
	every := int(math.Max(1, math.Round(FeedSeconds/n.Cfg.Tick.Seconds())))
	if n.ticks%every == 0 {
		feed, err := wire.MarshalJSON(n.Feed(now))
		if err == nil {
			n.links.PublishStatus(feed)
		}
	}
	if n.OnStatus != nil {
		if st, err := wire.MarshalJSON(n.Status()); err == nil {
			n.OnStatus(st)
		}
	}
}

type appendSent struct {
	last uint64
	at   time.Time
}

// RaftTraffic times each AppendEntries with entries until the peer confirms
// them (observe.py RaftTraffic, the raft_append_seconds histogram).
type RaftTraffic struct {
	inFlight map[string]appendSent
	Observe  func(seconds float64)
}

// Sent notes an append with entries toward a peer with none in flight.
func (t *RaftTraffic) Sent(m raft.Message) {
	if m.Type != raft.MsgAppend || len(m.Entries) == 0 {
		return
	}
	if t.inFlight == nil {
		t.inFlight = map[string]appendSent{}
	}
	if _, ok := t.inFlight[m.Dst]; !ok {
		t.inFlight[m.Dst] = appendSent{m.Entries[len(m.Entries)-1].Index, time.Now()}
	}
}

// Received ends the timing when the peer confirms (or rejects).
func (t *RaftTraffic) Received(m raft.Message) {
	if m.Type != raft.MsgAppendResp {
		return
	}
	sent, ok := t.inFlight[m.Src]
	if !ok || !(m.Reject || m.Index >= sent.last) {
		return
	}
	delete(t.inFlight, m.Src)
	if !m.Reject && t.Observe != nil {
		t.Observe(time.Since(sent.at).Seconds())
	}
}

// Reset: no longer leader, no append in flight.
func (t *RaftTraffic) Reset() { t.inFlight = nil }
