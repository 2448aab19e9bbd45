package metrics

import (
	"math"
	"strconv"
)

// Roles are the values of raft_role's role label, in observe.py's order.
var Roles = []string{"leader", "follower", "learner", "candidate", "pre_candidate"}

// NodeMetrics is observe.py's NodeMetrics: every metric a node shows on
// /metrics (PROTOCOL.md §9b), with the Python node's names, help texts,
// labels, buckets and order, so both nodes render the same families. The
// node only feeds values: counters and histograms as things happen,
// gauges once a tick through Refresh.
type NodeMetrics struct {
	Registry *Registry
	// Raft
	Term, CommitIndex, AppliedIndex, LastIndex *Gauge
	Role                                       *Gauge // label role
	Campaigns, LeaderChanges                   *Counter
	RPCSent, RPCReceived                       *Counter // label type
	AppendSeconds, CommitSeconds               *Histogram
	// Serving
	Requests             *Counter   // labels type, status
	RequestSeconds       *Histogram // label type
	PredictBatchRequests *Histogram
	// Training
	TrainingJobs     *Counter // label status
	TrainingSeconds  *Histogram
	TrainingsRunning *Gauge
	// Storage
	LogBytes                          *Gauge
	FsyncSeconds                      *Histogram
	Models, ModelBytes                *Gauge
	SnapshotIndex                     *Gauge
	Compactions                       *Counter
	ModelsDamaged                     *Gauge
	ModelFilesFetched, ModelChunks    *Counter
	HTTPRequests                      *Counter   // labels endpoint, status
	HTTPRequestSeconds                *Histogram // label endpoint
	HTTPConnections                   *Gauge
	Events                            *Counter // label kind
	Recent, RecentPredict, RecentHTTP *Recent
}

// NewNodeMetrics declares the whole set on a registry with prefix
// "zmqnode_", in observe.py's order.
func NewNodeMetrics() *NodeMetrics {
	r := NewRegistry("zmqnode_")
	m := &NodeMetrics{Registry: r}
	m.Term = r.Gauge("raft_term", "Current Raft term.")
	m.Role = r.Gauge("raft_role", "1 for this node's current role, 0 for the others.", "role")
	m.CommitIndex = r.Gauge("raft_commit_index", "Highest log index known committed.")
	m.AppliedIndex = r.Gauge("raft_applied_index", "Highest log index applied.")
	m.LastIndex = r.Gauge("raft_last_index", "Last index in this node's log.")
	m.Campaigns = r.Counter("raft_campaigns", "Elections this node started (pre-vote included).")
	m.LeaderChanges = r.Counter("raft_leader_changes", "Times this node saw a new leader (itself included).")
	m.RPCSent = r.Counter("raft_messages_sent", "Raft messages sent, by type.", "type")
	m.RPCReceived = r.Counter("raft_messages_received", "Raft messages received, by type.", "type")
	m.AppendSeconds = r.Histogram("raft_append_seconds",
		"Leader: an AppendEntries with entries until the peer confirms them, seconds.", nil)
	m.CommitSeconds = r.Histogram("raft_commit_seconds",
		"From proposing an entry to applying it (leader), seconds.", nil)
	m.Requests = r.Counter("requests", "Client requests answered, by type and status.", "type", "status")
	m.RequestSeconds = r.Histogram("request_seconds",
		"Client request latency from receipt to answer, by type.", nil, "type")
	m.PredictBatchRequests = r.Histogram("predict_batch_requests",
		"PREDICT requests served by one forward pass.", SizeBuckets)
	m.TrainingJobs = r.Counter("training_jobs", "Training jobs finished, by status.", "status")
	m.TrainingSeconds = r.Histogram("training_seconds",
		"Training job duration (data received to model committed).", DurationBuckets)
	m.TrainingsRunning = r.Gauge("trainings_running", "Training jobs in progress.")
	m.LogBytes = r.Gauge("storage_log_bytes", "Size of the Raft log file.")
	m.FsyncSeconds = r.Histogram("storage_fsync_seconds", "fsync latency, seconds.", nil)
	m.Models = r.Gauge("models", "Models in the registry.")
	m.ModelBytes = r.Gauge("models_bytes", "Bytes of model files in the registry.")
	m.SnapshotIndex = r.Gauge("storage_snapshot_index",
		"Last log index covered by the snapshot on disk (0: none).")
	m.Compactions = r.Counter("storage_compactions", "Log compactions this process made (compaction.py).")
	m.ModelsDamaged = r.Gauge("models_damaged", "Committed models whose file here is missing or damaged.")
	m.ModelFilesFetched = r.Counter("models_fetched", "Model files this process fetched from peers (repair.py).")
	m.ModelChunks = r.Counter("models_fetched_chunks", "FETCH chunks this process received from peers.")
	m.HTTPRequests = r.Counter("http_requests",
		"HTTP inference requests answered, by endpoint and HTTP status.", "endpoint", "status")
	m.HTTPRequestSeconds = r.Histogram("http_request_seconds",
		"HTTP inference latency from the last byte received to the answer, by endpoint.", nil, "endpoint")
	m.HTTPConnections = r.Gauge("http_connections", "Open HTTP inference connections.")
	m.Events = r.Counter("events", "Other events counted by the node, by kind.", "kind")
	m.Recent = NewRecent(5)
	m.RecentPredict = NewRecent(5)
	m.RecentHTTP = NewRecent(5)
	return m
}

// RequestDone counts one client request answered (kind: its type, status:
// OK, REDIRECT or the error code).
func (m *NodeMetrics) RequestDone(kind, status string, seconds float64) {
	m.Requests.Inc(kind, status)
	m.RequestSeconds.Observe(seconds, kind)
	m.Recent.Observe(seconds)
	if kind == "PREDICT" {
		m.RecentPredict.Observe(seconds)
	}
}

// HTTPDone counts one HTTP inference request answered; it has the shape of
// httpinfer.Links.OnAnswered.
func (m *NodeMetrics) HTTPDone(endpoint string, status int, seconds float64) {
	m.HTTPRequests.Inc(endpoint, strconv.Itoa(status))
	m.HTTPRequestSeconds.Observe(seconds, endpoint)
	m.RecentHTTP.Observe(seconds)
}

// Levels are the node's state that gauges show (observe.py's NodeSnapshot,
// the fields refresh reads).
type Levels struct {
	Role                                       string
	Term, CommitIndex, AppliedIndex, LastIndex uint64
	Trainings, LogBytes, Models, ModelBytes    int64
	SnapshotIndex, ModelsDamaged               uint64
	Compactions, FilesFetched, ChunksFetched   uint64
}

// Refresh sets the gauges (and the totals counted by their owners) from the
// node's state: observe.py's refresh, called once a tick.
func (m *NodeMetrics) Refresh(l Levels) {
	m.Term.Set(float64(l.Term))
	for _, role := range Roles {
		v := 0.0
		if role == l.Role {
			v = 1
		}
		m.Role.Set(v, role)
	}
	m.CommitIndex.Set(float64(l.CommitIndex))
	m.AppliedIndex.Set(float64(l.AppliedIndex))
	m.LastIndex.Set(float64(l.LastIndex))
	m.TrainingsRunning.Set(float64(l.Trainings))
	m.LogBytes.Set(float64(l.LogBytes))
	m.Models.Set(float64(l.Models))
	m.ModelBytes.Set(float64(l.ModelBytes))
	m.SnapshotIndex.Set(float64(l.SnapshotIndex))
	m.Compactions.Set(float64(l.Compactions))
	m.ModelFilesFetched.Set(float64(l.FilesFetched))
	m.ModelChunks.Set(float64(l.ChunksFetched))
	m.ModelsDamaged.Set(float64(l.ModelsDamaged))
}

// FeedRates are the status feed's requests_per_s, http_requests_per_s and
// p99_ms (PROTOCOL.md §9b) as observe.py's status_feed computes them:
// rates rounded to 0.1, the PREDICT p99 in milliseconds rounded to 0.001;
// p99ok is false when the feed's p99_ms is null (no predictions in the
// window, or above every bucket: orjson writes infinity as null).
func (m *NodeMetrics) FeedRates() (requestsPerS, httpRequestsPerS, p99ms float64, p99ok bool) {
	requestsPerS = PyRound(m.Recent.Rate(), 1)
	httpRequestsPerS = PyRound(m.RecentHTTP.Rate(), 1)
	p99, ok := m.RecentPredict.Quantile(0.99)
	if !ok || math.IsInf(p99, 1) {
		return requestsPerS, httpRequestsPerS, 0, false
	}
	return requestsPerS, httpRequestsPerS, PyRound(p99*1000, 3), true
}

// PyRound is Python's round(x, digits): the decimal nearest to x's exact
// binary value, halves to even.
func PyRound(x float64, digits int) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return x
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return r
}
