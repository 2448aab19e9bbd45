package training

import (
	"fmt"
	"math/rand"
	"net"
	"testing"
	"time"

	"zmqnode/replies"
	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// waitFor bounds every wait of these tests.
const waitFor = 8 * time.Second

var testOptions = wire.NewObject(
	wire.Field{Key: "hidden_layers", Value: []any{int64(4)}},
	wire.Field{Key: "epochs", Value: 2},
	wire.Field{Key: "epochs_per_round", Value: 1},
	wire.Field{Key: "patience", Value: 0},
	wire.Field{Key: "seed", Value: 1},
)

// freeBase is a client port P whose P+3000 and P+4000 are free on 127.0.0.1
// now (another process may still take them: callers retry on bind errors).
func freeBase(t *testing.T) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := 20000 + rand.Intn(30000)
		ok := true
		for _, off := range []int{0, TrainingOffset, ResultsOffset} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+off))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free ports")
	return 0
}

func newCtx(t *testing.T) *zmq.Context {
	t.Helper()
	ctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func plainSocket(ctx *zmq.Context, kind zmq.Type, endpoint string, bind bool) (*zmq.Socket, error) {
	s, err := ctx.NewSocket(kind)
	if err != nil {
		return nil, err
	}
	_ = s.SetInt(zmq.Linger, 0)
	if bind {
		err = s.Bind(endpoint)
	} else {
		err = s.Connect(endpoint)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// fakeTrainer is a trainer at a peer's training port: it pulls jobs and
// answers them with the real Handle (auto) or when the test says so.
type fakeTrainer struct {
	t       *testing.T
	ctx     *zmq.Context
	id      string
	pull    *zmq.Socket
	auto    bool
	cache   *ChunkCache
	pushers map[string]*zmq.Socket
	jobs    []*Job // received (not answered unless auto)
	with    []bool // whether each received job carried rows
}

func newFakeTrainer(t *testing.T, ctx *zmq.Context, auto bool) *fakeTrainer {
	t.Helper()
	for i := 0; i < 20; i++ {
		p := freeBase(t)
		pull, err := plainSocket(ctx, zmq.PULL, TCPEndpoint("127.0.0.1", p+TrainingOffset), true)
		if err != nil {
			continue
		}
		return &fakeTrainer{t: t, ctx: ctx, id: fmt.Sprintf("127.0.0.1:%d", p), pull: pull, auto: auto,
			cache: NewChunkCache(1 << 26), pushers: map[string]*zmq.Socket{}}
	}
	t.Fatal("no port for a fake trainer")
	return nil
}

func (f *fakeTrainer) receive() {
	for {
		frames, err := f.pull.Recv(zmq.DontWait)
		if err != nil {
			return
		}
		j, err := DecodeJob(frames)
		if err != nil {
			continue // a connection probe
		}
		f.jobs = append(f.jobs, j)
		f.with = append(f.with, j.X != nil)
		if f.auto {
			f.answer(j, nil)
		}
	}
}

func (f *fakeTrainer) answer(j *Job, r *Result) {
	if r == nil {
		r = Handle(j, f.cache, f.id)
	}
	push := f.pushers[j.ReplyTo]
	if push == nil {
		var err error
		if push, err = plainSocket(f.ctx, zmq.PUSH, j.ReplyTo, false); err != nil {
			f.t.Fatal(err)
		}
		f.pushers[j.ReplyTo] = push
	}
	frames, err := EncodeResult(r)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := push.Send(frames, 0); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeTrainer) close() {
	f.pull.Close()
	for _, p := range f.pushers {
		p.Close()
	}
}

// fakeNode is the node's side of Links, recorded, and its loop.
type fakeNode struct {
	t        *testing.T
	ctx      *zmq.Context
	id       string
	members  []string
	down     map[string]string
	sockets  []*zmq.Socket
	handlers []func()
	trainers []*fakeTrainer
	coord    *Coordinator
	busy     bool
	counted  []string
	commits  []*wire.Object
	models   [][]byte
	replies  []replies.Replier
	events   []string
	finished []string
	skew     float64            // seconds added to the coordinator's clock
	keys     *security.NodeKeys // nil: plaintext sockets
	woken    chan struct{}
}

func (n *fakeNode) links() Links {
	return Links{
		ID:      n.id,
		Members: func() []string { return append([]string(nil), n.members...) },
		Socket: func(kind zmq.Type, endpoint string, bind bool) (*zmq.Socket, error) {
			if n.keys == nil {
				return plainSocket(n.ctx, kind, endpoint, bind)
			}
			s := &security.Sockets{Ctx: n.ctx, Keys: n.keys}
			zero := time.Duration(0)
			if bind {
				return s.Server(kind, endpoint, security.Peers, security.ServerOptions{Linger: &zero})
			}
			return s.Client(kind, endpoint, security.ClientOptions{})
		},
		RegisterSocket: func(s *zmq.Socket, f func()) {
			n.sockets = append(n.sockets, s)
			n.handlers = append(n.handlers, f)
		},
		CommitModel: func(req *wire.Object, model []byte, reply replies.Replier) {
			n.commits = append(n.commits, req)
			n.models = append(n.models, model)
			n.replies = append(n.replies, reply)
		},
		Wake: func() {
			select {
			case n.woken <- struct{}{}:
			default:
			}
		},
		Count: func(kind string) { n.counted = append(n.counted, kind) },
		Down:  func() map[string]string { return n.down },
		Admit: func(req *wire.Object) error {
			if n.busy {
				return &wire.ProtocolError{Code: wire.Busy, Message: "too many parked requests"}
			}
			return nil
		},
		Event:       func(kind, text string) { n.events = append(n.events, kind) },
		JobFinished: func(status string, _ float64) { n.finished = append(n.finished, status) },
		Logf:        func(f string, a ...any) { n.t.Logf(f, a...) },
	}
}

// turn is one turn of the node's loop: trainers, results, a tick.
func (n *fakeNode) turn(tick bool) {
	for _, tr := range n.trainers {
		tr.receive()
	}
	p := &zmq.Poller{}
	for _, s := range n.sockets {
		p.Add(s, zmq.PollIn)
	}
	if p.Len() > 0 {
		ev, err := p.Poll(10 * time.Millisecond)
		if err == nil {
			for i, e := range ev {
				if e&zmq.PollIn != 0 {
					n.handlers[i]()
				}
			}
		}
	} else {
		time.Sleep(5 * time.Millisecond)
	}
	if tick && n.coord != nil {
		n.coord.Tick()
	}
}

func (n *fakeNode) until(cond func() bool, what string, tick bool) {
	n.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			n.t.Fatalf("timed out waiting for %s", what)
		}
		n.turn(tick)
	}
}

// makeCluster is a coordinator whose members are nTrainers fake trainers.
func makeCluster(t *testing.T, nTrainers int, auto bool, cfg CoordinatorConfig) *fakeNode {
	t.Helper()
	ctx := newCtx(t)
	n := &fakeNode{t: t, ctx: ctx, down: map[string]string{}, woken: make(chan struct{}, 1)}
	for i := 0; i < nTrainers; i++ {
		tr := newFakeTrainer(t, ctx, auto)
		n.trainers = append(n.trainers, tr)
		n.members = append(n.members, tr.id)
	}
	start := time.Now()
	cfg.Now = func() float64 { return time.Since(start).Seconds() + n.skew }
	for i := 0; i < 20; i++ {
		n.id = fmt.Sprintf("127.0.0.1:%d", freeBase(t))
		n.sockets, n.handlers = nil, nil
		n.coord = NewCoordinator(n.links(), cfg)
		if n.coord.Err() == nil {
			break
		}
		n.coord.Close()
	}
	if n.coord.Err() != nil {
		t.Fatal(n.coord.Err())
	}
	t.Cleanup(func() {
		n.coord.Close()
		for _, tr := range n.trainers {
			tr.close()
		}
		ctx.Term()
	})
	// Sends to a trainer not yet connected fail (IMMEDIATE): wait for each.
	for _, tr := range n.trainers {
		push := n.coord.pushers[tr.id]
		n.until(func() bool { return push.Send([][]byte{[]byte("probe")}, zmq.DontWait) == nil },
			"a connection to "+tr.id, false)
	}
	n.turn(false)
	return n
}

// trainRequest is a TRAIN of rows rows (two columns, a linear boundary).
func trainRequest(id string, rows int, options any) (*wire.Object, [][]byte) {
	r := rand.New(rand.NewSource(7))
	x := make([]float32, rows*2)
	y := make([]int64, rows)
	for i := 0; i < rows; i++ {
		a, b := float32(r.NormFloat64()), float32(r.NormFloat64())
		x[2*i], x[2*i+1] = a, b
		if a+b > 0 {
			y[i] = 1
		}
	}
	xd, xb := wire.ArrayToFrame(wire.FromFloat32([]int{rows, 2}, x), 0)
	yd, yb := wire.ArrayToFrame(wire.FromInt64([]int{rows}, y), 1)
	h := wire.NewObject(
		wire.Field{Key: "v", Value: 1}, wire.Field{Key: "type", Value: "TRAIN"}, wire.Field{Key: "id", Value: id},
		wire.Field{Key: "inputs", Value: xd}, wire.Field{Key: "outputs", Value: yd},
	)
	if options != nil {
		h.Set("options", options)
	}
	return h, [][]byte{xb, yb}
}

// onTheWire is (h, blobs) as the node would have decoded them.
func onTheWire(t *testing.T, h *wire.Object, blobs [][]byte) (*wire.Object, [][]byte) {
	t.Helper()
	frames, err := wire.Encode(h, blobs)
	if err != nil {
		t.Fatal(err)
	}
	h, blobs, err = wire.Decode(frames, wire.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h, blobs
}

func (n *fakeNode) submit(id string, rows int, options any) *replies.Recorder {
	rec := &replies.Recorder{}
	h, blobs := trainRequest(id, rows, options)
	h, blobs = onTheWire(n.t, h, blobs)
	n.coord.Submit(h, blobs, rec)
	return rec
}

func status(r *replies.Recorder) (string, string, string) {
	last := r.Last()
	if last == nil {
		return "", "", ""
	}
	s, _ := last.Str("status")
	code, _ := last.Str("code")
	msg, _ := last.Str("message")
	return s, code, msg
}

func ended(r *replies.Recorder) bool {
	s, _, _ := status(r)
	return s == "OK" || s == "ERROR"
}
