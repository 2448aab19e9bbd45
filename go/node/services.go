package node

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"zmqnode/httpinfer"
	"zmqnode/metrics"
	"zmqnode/ml"
	"zmqnode/monitor"
	"zmqnode/replies"
	"zmqnode/security"
	"zmqnode/training"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// Version is the server version the HTTP inference port reports.
const Version = "0.1.0-go"

// Services are the components around the loop (node.py builds them in
// Node.__init__): metrics, the trainer and the training coordinator, the
// HTTP monitor and the HTTP inference port.
type Services struct {
	Metrics     *metrics.NodeMetrics
	Trainer     *training.Trainer
	Coordinator *training.Coordinator
	Monitor     *monitor.Monitor
	HTTP        *httpinfer.Server

	allowedMu    sync.Mutex
	allowed      []string
	modelsSeen   int
	trainerStart float64
}

// coordinatorTrainer adapts the coordinator to the handlers' Trainer:
// Submit starts a job or joins the running one of the same id.
type coordinatorTrainer struct{ c *training.Coordinator }

func (t coordinatorTrainer) Running(string) bool { return false }
func (t coordinatorTrainer) Submit(req *wire.Object, blobs [][]byte, reply replies.Replier) {
	t.c.Submit(req, blobs, reply)
}
func (t coordinatorTrainer) Joined() int { return t.c.JoinedClients() }

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// StartServices starts every component; a bind failure is an error
// (the port is taken), as in Python.
func (n *Node) StartServices() error {
	s := &Services{modelsSeen: -1}
	n.Services = s
	cfg := n.Cfg

	m := metrics.NewNodeMetrics()
	s.Metrics = m
	n.Stats.OnRequest = m.RequestDone
	n.Stats.OnFsync = func(sec float64) { m.FsyncSeconds.Observe(sec) }
	n.Stats.OnBatch = func(k int) { m.PredictBatchRequests.Observe(float64(k)) }
	n.Stats.OnCommit = func(sec float64) { m.CommitSeconds.Observe(sec) }
	n.Stats.OnEvent = func(kind string) { m.Events.Inc(kind) }
	n.Stats.OnRaft = func(sent bool, kind string) {
		if sent {
			m.RPCSent.Inc(kind)
		} else {
			m.RPCReceived.Inc(kind)
		}
	}
	n.traffic.Observe = func(sec float64) { m.AppendSeconds.Observe(sec) }
	n.OnRoleCounters = func(campaign, leaderChange bool) {
		if campaign {
			m.Campaigns.Inc()
		}
		if leaderChange {
			m.LeaderChanges.Inc()
		}
	}

	s.allowed = append([]string(nil), n.allowedNow...) // before the trainer's first look
	if cfg.Trainer {
		t, err := training.StartTrainer(n.ctx, training.TrainerConfig{
			Host: cfg.Host, Port: cfg.Port, Keys: n.keys,
			Allowed: func() []string {
				s.allowedMu.Lock()
				defer s.allowedMu.Unlock()
				return append([]string(nil), s.allowed...)
			},
			Logf: n.Log.For("INFO", "zmqnode.training.trainer"),
		})
		if err != nil {
			return fmt.Errorf("node %s: the trainer: %w", n.ID, err)
		}
		s.Trainer = t
		s.trainerStart = unixSeconds(time.Now())
		n.Log.Log("INFO", "zmqnode.training", "trainer listening on %s", t.Endpoint())
	}
	survey := func() training.Trainers {
		heard := map[string]float64{}
		for p, t := range n.links.LastHeard {
			heard[p] = unixSeconds(t)
		}
		exited := s.Trainer != nil && s.Trainer.Status(false) == "down"
		return training.Survey(unixSeconds(time.Now()), n.ID, s.Trainer != nil, exited, s.trainerStart,
			n.Core.Peers(), heard)
	}
	s.Coordinator = training.NewCoordinator(training.Links{
		ID:      n.ID,
		Members: func() []string { return survey().Available },
		Socket: func(kind zmq.Type, endpoint string, bind bool) (*zmq.Socket, error) {
			if bind {
				return n.sockets.Server(kind, endpoint, security.Peers, security.ServerOptions{})
			}
			return n.sockets.Client(kind, endpoint, security.ClientOptions{Immediate: true})
		},
		Monitor:        n.ctx.Monitor, // reopen a PUSH a trainer's ZAP refused (training/reopen.go)
		RegisterSocket: func(sock *zmq.Socket, onReadable func()) { n.RegisterReadable(sock, onReadable) },
		CommitModel: func(req *wire.Object, model []byte, reply replies.Replier) {
			parsed, err := ml.ReadModel(model)
			if err != nil {
				reply.Error(req, wire.Internal, fmt.Sprintf("node %s trained a model it cannot read: %v", n.ID, err))
				return
			}
			n.Handlers.CommitModel(req, model, ListingSummary(parsed), nil, reply)
		},
		Wake:  n.Wake,
		Count: n.Count,
		Down:  func() map[string]string { return survey().Down },
		Admit: n.Handlers.Admit,
		Event: func(kind, text string) { n.events.Add(kind, text) },
		JobFinished: func(status string, sec float64) {
			m.TrainingJobs.Inc(status)
			m.TrainingSeconds.Observe(sec)
		},
		Logf: n.Log.For("INFO", "zmqnode.training"),
	}, training.CoordinatorConfig{
		MaxTrainings: cfg.MaxTrainings, TrainingTimeout: cfg.TrainingTimeout,
		MaxRequestBytes: cfg.MaxRequestBytes, MaxModelBytes: cfg.MaxModelBytes,
	})
	n.Handlers.Training = coordinatorTrainer{s.Coordinator}
	n.OnTurn = append(n.OnTurn, s.Coordinator.Tick)
	n.OnLeadershipLost = append(n.OnLeadershipLost, s.Coordinator.LostLeadership)
	n.TrainingsRunning = s.Coordinator.Running
	n.TrainerState = func() string {
		if s.Trainer == nil {
			return "disabled"
		}
		return s.Trainer.Status(s.Coordinator.Running() > 0)
	}
	n.TrainingViews = func() []*wire.Object {
		var out []*wire.Object
		for _, v := range s.Coordinator.Views() {
			out = append(out, jsonValue(v).(*wire.Object))
		}
		return out
	}
	n.OnAllowed = func(keys []string) {
		s.allowedMu.Lock()
		s.allowed = append([]string(nil), keys...)
		s.allowedMu.Unlock()
	}
	if n.keys != nil {
		n.OnAllowed(n.allowedNow)
	}

	first, err := wire.MarshalJSON(n.Status())
	if err != nil {
		return fmt.Errorf("node %s: the first status: %w", n.ID, err)
	}
	mon, err := monitor.Start(cfg.MonitorHost, cfg.MonitorPort, monitor.Source{
		Status:  first,
		Metrics: m.Registry.Render,
		LogTail: func(lines int) []string { return monitor.TailFile(cfg.LogPath(), lines) },
	})
	if err != nil {
		return fmt.Errorf("node %s: the monitor: %w. Another node (or an old one) is probably using "+
			"this port: stop it (./run_cluster.sh stop) or choose another --port", n.ID, err)
	}
	s.Monitor = mon
	n.OnTick = append(n.OnTick, func(now time.Time) { n.refreshObservers() })

	if cfg.HTTPEnabled() {
		token := ""
		if !cfg.Insecure() {
			if token, err = loadHTTPToken(cfg.KeysDir); err != nil {
				return &FatalError{err}
			}
		}
		s.HTTP, err = httpinfer.Start(cfg.HTTPHost, cfg.HTTPListenPort(), httpinfer.Links{
			Submit:   n.Submit,
			Dispatch: n.Dispatch,
			Token:    token,
			Logf:     n.Log.For("ERROR", "zmqnode.inference_http"),
			NodeID:   n.ID,
			Version:  Version,
			TaskOf: func(id string) string {
				if rec, ok := n.Registry.Models[id]; ok {
					t, _ := rec.Summary.Str("task")
					return t
				}
				return ""
			},
			IsReady: func() bool {
				return n.Core.LeaderID() != "" && n.Core.AppliedIndex() >= n.Core.CommitIndex()
			},
			OnAnswered: m.HTTPDone,
			Limits: httpinfer.Limits{
				MaxBodyBytes:   cfg.MaxRequestBytes,
				IdleTimeout:    time.Duration(cfg.HTTPIdleTimeout * float64(time.Second)),
				RequestTimeout: time.Duration(cfg.HTTPRequestTimeout * float64(time.Second)),
			},
		})
		if err != nil {
			return fmt.Errorf("node %s: HTTP inference: %w. Another node (or an old one) is probably using "+
				"this port: stop it (./run_cluster.sh stop) or choose another --port", n.ID, err)
		}
		tok := " (no token)"
		if token != "" {
			tok = " (bearer token KEYS/http.token)"
		}
		n.httpInfo = fmt.Sprintf("HTTP inference http://%s/v2%s", s.HTTP.Addr(), tok)
	}
	n.refreshObservers()
	return nil
}

// refreshObservers: gauges, /status and /models, once a tick.
func (n *Node) refreshObservers() {
	s := n.Services
	core := n.Core
	n.Stats.mu.Lock()
	compactions, files, chunks := n.Stats.Compactions, n.Stats.FilesFetched, n.Stats.ChunksFetched
	n.Stats.mu.Unlock()
	s.Metrics.Refresh(metrics.Levels{
		Role: n.role(), Term: core.Term(), CommitIndex: core.CommitIndex(), AppliedIndex: core.AppliedIndex(),
		LastIndex: core.LastIndex(), Trainings: int64(n.trainingsRunning()), LogBytes: n.logBytes(),
		Models: int64(len(n.Registry.Models)), ModelBytes: n.Registry.ModelBytes(),
		SnapshotIndex: core.Snapshot().Index, ModelsDamaged: uint64(len(n.Registry.Damaged)),
		Compactions: uint64(compactions), FilesFetched: uint64(files), ChunksFetched: uint64(chunks),
	})
	if s.HTTP != nil {
		s.Metrics.HTTPConnections.Set(float64(s.HTTP.Connections()))
	}
	if st, err := wire.MarshalJSON(n.Status()); err == nil {
		s.Monitor.Publish(st)
	}
	if len(n.Registry.Models) != s.modelsSeen {
		s.modelsSeen = len(n.Registry.Models)
		if listing, err := wire.MarshalJSON(n.Registry.Listing()); err == nil {
			s.Monitor.PublishModels(listing)
		}
	}
}

// Close stops the services (the loop has stopped).
func (s *Services) Close() {
	if s == nil {
		return
	}
	if s.HTTP != nil {
		s.HTTP.Close()
	}
	if s.Coordinator != nil {
		s.Coordinator.Close()
	}
	if s.Trainer != nil {
		s.Trainer.Stop()
	}
	if s.Monitor != nil {
		s.Monitor.Close()
	}
}

// loadHTTPToken is security.py load_http_token: KEYS/http.token, made if
// missing, at least 16 characters once stripped.
func loadHTTPToken(keysDir string) (string, error) {
	path, err := security.EnsureHTTPToken(keysDir)
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", &security.KeyFileError{Msg: fmt.Sprintf("cannot read %s: %v", path, err)}
	}
	token := strings.TrimSpace(string(raw))
	if len(token) < 16 {
		return "", &security.KeyFileError{Msg: fmt.Sprintf("%s holds no token (at least 16 characters); delete it to remake", path)}
	}
	return token, nil
}
