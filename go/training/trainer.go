package training

import (
	"container/list"
	"errors"
	"fmt"
	"log"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zmqnode/ml"
	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// The trainer's constants, as zmqnode/training/trainer.py and addresses.py.
const (
	// TrainingOffset and ResultsOffset: the trainer's PULL is at P+3000,
	// the leader's results PULL at P+4000 (PROTOCOL.md §1).
	TrainingOffset = 3000
	ResultsOffset  = 4000
	// CacheBytes bounds the chunk cache.
	CacheBytes = 2 << 30
	// MaxPushers: result sockets kept open, least recently used closed first,
	// so jobs naming ever new endpoints cannot pile up sockets.
	MaxPushers = 16
	// ResultSendHWM: results queued for one leader before the next is dropped.
	ResultSendHWM = 64
	// pollInterval: how often an idle trainer re-reads the member keys
	// (Python's PARENT_CHECK_MS).
	pollInterval = 500 * time.Millisecond
	resultLinger = time.Second
)

// The only reply_to a node sends: tcp:// then a host name, IPv4 address or
// bracketed IPv6 address, then a port (trainer._ENDPOINT).
var endpointRE = regexp.MustCompile(
	`^tcp://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})$`)

// ValidEndpoint is trainer.valid_endpoint: whether text is a tcp://host:port
// a trainer may connect to.
func ValidEndpoint(text string) bool {
	m := endpointRE.FindStringSubmatch(text)
	if m == nil {
		return false
	}
	port, err := strconv.Atoi(m[1])
	return err == nil && port >= 1 && port <= 65535
}

// TCPEndpoint is addresses.tcp_endpoint: "tcp://host:port", IPv6 bracketed.
func TCPEndpoint(host string, port int) string {
	return "tcp://" + security.FormatAddress(host, port)
}

type cacheKey struct {
	job   string
	chunk int
}

type cacheItem struct {
	key  cacheKey
	x, y wire.Array
}

// ChunkCache is trainer.ChunkCache: (job, chunk) -> (x, y), bounded by
// bytes, least recently used out first (the newest always stays).
type ChunkCache struct {
	MaxBytes int64
	Size     int64
	order    *list.List // front: least recently used
	items    map[cacheKey]*list.Element
}

// NewChunkCache makes an empty cache of at most maxBytes.
func NewChunkCache(maxBytes int64) *ChunkCache {
	return &ChunkCache{MaxBytes: maxBytes, order: list.New(), items: map[cacheKey]*list.Element{}}
}

// Len is the number of chunks cached.
func (c *ChunkCache) Len() int { return len(c.items) }

// Get returns the chunk's rows and marks them recently used.
func (c *ChunkCache) Get(job string, chunk int) (x, y wire.Array, ok bool) {
	e := c.items[cacheKey{job, chunk}]
	if e == nil {
		return wire.Array{}, wire.Array{}, false
	}
	c.order.MoveToBack(e)
	it := e.Value.(*cacheItem)
	return it.x, it.y, true
}

// Put keeps the chunk's rows (a chunk already cached is left as it is).
func (c *ChunkCache) Put(job string, chunk int, x, y wire.Array) {
	key := cacheKey{job, chunk}
	if c.items[key] != nil {
		return
	}
	c.items[key] = c.order.PushBack(&cacheItem{key, x, y})
	c.Size += int64(len(x.Data) + len(y.Data))
	for c.Size > c.MaxBytes && len(c.items) > 1 {
		e := c.order.Front()
		it := e.Value.(*cacheItem)
		c.order.Remove(e)
		delete(c.items, it.key)
		c.Size -= int64(len(it.x.Data) + len(it.y.Data))
	}
}

// Handle is trainer.handle: cache the job's rows if it carries them, then
// train the chunk (distributed.run_chunk) or say why not. name is the
// trainer's node id.
func Handle(j *Job, cache *ChunkCache, name string) *Result {
	if j.X != nil && j.Y != nil {
		cache.Put(j.JobID, j.Chunk, *j.X, *j.Y)
	}
	base := Result{JobID: j.JobID, Round: j.Round, Chunk: j.Chunk, Trainer: name}
	x, y, ok := cache.Get(j.JobID, j.Chunk)
	if !ok {
		base.MissingData = true
		return &base
	}
	res, err := runChunk(j, x, y)
	if err != nil {
		base.Error = PyExceptionRepr(err)
		return &base
	}
	params := wire.FromFloat32([]int{len(res.Params)}, res.Params)
	base.NSamples, base.Loss, base.Params = res.NSamples, res.Loss, &params
	return &base
}

// runChunk is distributed.run_chunk from wire arrays: float32 conversion,
// a 1-D y as one column, the shape check, then ml.RunChunk.
func runChunk(j *Job, xa, ya wire.Array) (res ml.ChunkResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	options, err := wire.MarshalJSON(j.Options)
	if err != nil {
		return res, err
	}
	// from_dict comes first in Python: bad options win over bad shapes.
	if _, err := ml.ParseOptions(options); err != nil {
		return res, err
	}
	params, err := toFloat32(j.Params)
	if err != nil {
		return res, err
	}
	xs, err := toFloat32(xa)
	if err != nil {
		return res, err
	}
	ys, err := toFloat32(ya)
	if err != nil {
		return res, err
	}
	yShape := ya.Shape
	if len(yShape) == 1 {
		yShape = []int{yShape[0], 1}
	}
	if len(xa.Shape) != 2 || len(yShape) != 2 || xa.Shape[0] != yShape[0] || xa.Shape[0] == 0 {
		return res, fmt.Errorf("%w: chunk needs 2-D x and y with the same, non-zero rows; got %s, %s",
			ml.ErrBadInput, pyShape(xa.Shape), pyShape(yShape))
	}
	x, err := ml.MatrixOf(xa.Shape[0], xa.Shape[1], xs)
	if err != nil {
		return res, err
	}
	y, err := ml.MatrixOf(yShape[0], yShape[1], ys)
	if err != nil {
		return res, err
	}
	return ml.RunChunk(params, x, y, options, j.Round, j.Chunk)
}

// toFloat32 is np.asarray(a, dtype=np.float32): for float32 a read-only
// view of a's blob, not a copy (neither the plan nor a trainer writes to
// its inputs), so a large dataset is held once.
func toFloat32(a wire.Array) ([]float32, error) {
	if a.Dtype == wire.Float32 {
		return a.Float32View()
	}
	if v, ok, err := a.ConvertToFloat32(); ok {
		return v, err
	}
	return nil, fmt.Errorf("%w: unsupported dtype %s", ml.ErrBadInput, a.Dtype)
}

// pyShape is a numpy shape's repr: (4,), (2, 3).
func pyShape(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// The Python exception classes of zmqnode/ml/errors.py, by error kind.
var pyKinds = []struct {
	err   error
	class string
}{
	{ml.ErrBadInput, "BadInput"},
	{ml.ErrBadOptions, "BadOptions"},
	{ml.ErrModelFormat, "ModelFormatError"},
	{ml.ErrTraining, "TrainingError"},
}

// Message is the Python exception's str(): err's text without the Go
// kind prefix ("bad options: ...").
func Message(err error) string {
	text := err.Error()
	for _, k := range pyKinds {
		if errors.Is(err, k.err) {
			return strings.TrimPrefix(text, k.err.Error()+": ")
		}
	}
	return text
}

// PyExceptionRepr is what a Python trainer puts in a result's error:
// repr(exc), e.g. "BadOptions('unknown option ...')" (SPEC_NOTES.md §1
// proposes str(exc) instead; change it here and in trainer.py together).
func PyExceptionRepr(err error) string {
	class := "RuntimeError"
	for _, k := range pyKinds {
		if errors.Is(err, k.err) {
			class = k.class
			break
		}
	}
	return class + "(" + pyRepr(Message(err)) + ")"
}

// TrainerConfig is what a node gives its trainer.
type TrainerConfig struct {
	Host string
	// Port is the node's client port P; the trainer's PULL binds P+3000.
	Port int
	// Keys: the node's keys; nil for --insecure.
	Keys *security.NodeKeys
	// Allowed: the member public keys (Z85) admitted to push jobs, re-read
	// every half second and on every job (membership changes). nil: Keys.Members.
	Allowed func() []string
	Logf    func(string, ...any)
	// CacheBytes bounds the chunk cache; 0 means CacheBytes.
	CacheBytes int64
}

// Trainer is a node's trainer (zmqnode/training/trainer.py's process): it
// pulls SUB_TRAIN jobs on P+3000, trains, and pushes results to each job's
// reply_to, on its own goroutine with its own sockets and ZeroMQ context
// (a context has one ZAP handler, and the trainer's admits the members).
type Trainer struct {
	name     string
	bind     string
	cfg      TrainerConfig
	ctx      *zmq.Context
	gk       *security.Gatekeeper
	pull     *zmq.Socket
	sockets  *security.Sockets
	stopping atomic.Bool
	done     chan struct{}
	logf     func(string, ...any)

	mu      sync.Mutex
	busy    bool
	jobs    int64
	dropped int64
	cached  int
	pushers int
	exitErr error
}

// StartTrainer binds the trainer's PULL and starts serving. The trainer
// runs its own ZeroMQ context, as Python's trainer runs in its own process:
// a context has one ZAP handler, and the node's already answers for the
// node's sockets. ctx (the node's, may be nil) is not used; it stays in the
// signature the node was written against. A *security.BindError means the
// port is taken (Python's trainer exits with status 1 then).
func StartTrainer(ctx *zmq.Context, cfg TrainerConfig) (*Trainer, error) {
	own, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	t := &Trainer{
		name: security.FormatAddress(cfg.Host, cfg.Port),
		bind: TCPEndpoint(cfg.Host, cfg.Port+TrainingOffset),
		cfg:  cfg, ctx: own, done: make(chan struct{}), logf: cfg.Logf,
	}
	if t.logf == nil {
		t.logf = log.Printf
	}
	if cfg.Keys != nil {
		if t.gk, err = security.StartAuthenticator(own, cfg.Keys, t.logf); err != nil {
			own.Term()
			return nil, err
		}
		t.reloadMembers()
	}
	t.sockets = &security.Sockets{Ctx: own, Keys: cfg.Keys}
	zero := time.Duration(0)
	t.pull, err = t.sockets.Server(zmq.PULL, t.bind, security.Peers, security.ServerOptions{Linger: &zero})
	if err != nil {
		if t.gk != nil {
			t.gk.Stop()
		}
		own.Term()
		return nil, err
	}
	t.logf("trainer for %s ready on %s", t.name, t.bind)
	go t.serve()
	return t, nil
}

// Name is the node id the trainer answers as.
func (t *Trainer) Name() string { return t.name }

// Endpoint is where the trainer's PULL is bound.
func (t *Trainer) Endpoint() string { return t.bind }

// Stop ends the trainer (after the job it is training, if any) and closes
// its sockets. Safe to call more than once.
func (t *Trainer) Stop() {
	if t.stopping.CompareAndSwap(false, true) {
		t.ctx.Shutdown()
	}
	<-t.done
}

// Done is closed once the trainer has stopped (Stop, or a failure: see
// Err); the node then starts a new one, as Python restarts its trainer
// process, and tells its coordinator (Coordinator.TrainerRestarted).
func (t *Trainer) Done() <-chan struct{} { return t.done }

// Err is why the trainer stopped by itself (nil while it runs or after Stop).
func (t *Trainer) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exitErr
}

// Status is the status feed's "trainer" value (PROTOCOL.md §9b) as
// process.TrainerProcess.state gives it: "down" once the trainer stopped,
// else "training" when busy (the coordinator has jobs) or a job is being
// trained here, else "idle".
func (t *Trainer) Status(busy bool) string {
	select {
	case <-t.done:
		return "down"
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if busy || t.busy {
		return "training"
	}
	return "idle"
}

// State describes the trainer for the status feed and STATUS: "state"
// (Status(false)), the endpoint, jobs answered, jobs dropped, chunks
// cached and result sockets open.
func (t *Trainer) State() map[string]any {
	state := t.Status(false)
	t.mu.Lock()
	defer t.mu.Unlock()
	return map[string]any{
		"state": state, "endpoint": t.bind, "jobs": t.jobs, "dropped": t.dropped,
		"cached_chunks": t.cached, "result_sockets": t.pushers,
	}
}

func (t *Trainer) reloadMembers() {
	if t.gk == nil {
		return
	}
	var members []string
	if t.cfg.Allowed != nil {
		members = t.cfg.Allowed()
	} else {
		members = t.cfg.Keys.Members
	}
	members = append([]string(nil), members...)
	sort.Strings(members)
	current := t.gk.Members()
	if strings.Join(current, ",") != strings.Join(members, ",") {
		t.gk.SetMembers(members)
	}
}

type pusher struct {
	endpoint string
	sock     *zmq.Socket
	watch    *linkWatch // reopens it if the leader's ZAP refused it (reopen.go)
}

func (t *Trainer) serve() {
	defer close(t.done)
	cacheBytes := t.cfg.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = CacheBytes
	}
	cache := NewChunkCache(cacheBytes)
	pushers := list.New() // of *pusher, front: least recently used
	defer func() {
		t.pull.Close()
		for e := pushers.Front(); e != nil; e = e.Next() {
			e.Value.(*pusher).close()
		}
		if t.gk != nil {
			t.gk.Stop()
		}
		t.ctx.Term()
	}()
	poller := &zmq.Poller{}
	poller.Add(t.pull, zmq.PollIn)
	for !t.stopping.Load() {
		t.reloadMembers()
		ev, err := poller.Poll(pollInterval)
		now := time.Now()
		for e := pushers.Front(); e != nil; e = e.Next() {
			e.Value.(*pusher).watch.poll(now, nil, t.logf)
		}
		if err != nil {
			if !t.stopping.Load() {
				t.logf("trainer for %s: poll failed: %v", t.name, err)
				t.mu.Lock()
				t.exitErr = err
				t.mu.Unlock()
			}
			return
		}
		if ev[0]&zmq.PollIn == 0 {
			continue
		}
		frames, err := t.pull.Recv(zmq.DontWait)
		if err != nil {
			if errors.Is(err, zmq.ErrAgain) {
				continue
			}
			if !t.stopping.Load() {
				t.logf("trainer for %s: receive failed: %v", t.name, err)
				t.mu.Lock()
				t.exitErr = err
				t.mu.Unlock()
			}
			return
		}
		t.one(frames, cache, pushers)
	}
}

// one handles one received job.
func (t *Trainer) one(frames [][]byte, cache *ChunkCache, pushers *list.List) {
	drop := func() {
		t.mu.Lock()
		t.dropped++
		t.mu.Unlock()
	}
	j, err := DecodeJob(frames)
	if err != nil {
		t.logf("trainer dropped a malformed job: %s", errMessage(err))
		drop()
		return
	}
	if !ValidEndpoint(j.ReplyTo) {
		t.logf("trainer dropped job %.80s: reply_to %.80s is not a tcp://host:port endpoint",
			pyRepr(j.JobID), pyRepr(j.ReplyTo))
		drop()
		return
	}
	push := t.pusher(pushers, j.ReplyTo)
	if push == nil {
		drop()
		return
	}
	t.mu.Lock()
	t.busy = true
	t.mu.Unlock()
	result := Handle(j, cache, t.name)
	frames, err = EncodeResult(result)
	t.mu.Lock()
	t.busy = false
	t.jobs++
	t.cached = cache.Len()
	t.pushers = pushers.Len()
	t.mu.Unlock()
	if err == nil {
		err = push.Send(frames, zmq.DontWait)
	}
	if err != nil {
		drop()
		if errors.Is(err, zmq.ErrAgain) {
			t.logf("leader at %s is not taking results; dropped chunk %d of %s", j.ReplyTo, j.Chunk, j.JobID)
		} else {
			t.logf("trainer could not send the result of chunk %d of %s: %v", j.Chunk, j.JobID, err)
		}
	}
}

// pusher is the PUSH socket to endpoint (opened on first use, at most
// MaxPushers kept), or nil if it cannot be connected.
func (t *Trainer) pusher(pushers *list.List, endpoint string) *zmq.Socket {
	for e := pushers.Front(); e != nil; e = e.Next() {
		if p := e.Value.(*pusher); p.endpoint == endpoint {
			pushers.MoveToBack(e)
			return p.sock
		}
	}
	linger := resultLinger
	sock, err := t.sockets.Client(zmq.PUSH, endpoint, security.ClientOptions{Linger: &linger, SendHWM: ResultSendHWM})
	if err != nil {
		t.logf("trainer dropped a job: cannot connect to reply_to %.80s: %v", pyRepr(endpoint), err)
		return nil
	}
	// Watched from its first connection on: Client connected it before a
	// monitor could be attached, so connect again under the monitor.
	_ = sock.Disconnect(endpoint)
	watch, err := watchAndConnect(t.ctx.Monitor, sock, endpoint, "leader's results PULL "+endpoint)
	if err != nil {
		sock.Close()
		t.logf("trainer dropped a job: cannot connect to reply_to %.80s: %v", pyRepr(endpoint), err)
		return nil
	}
	pushers.PushBack(&pusher{endpoint, sock, watch})
	for pushers.Len() > MaxPushers {
		e := pushers.Front()
		e.Value.(*pusher).close()
		pushers.Remove(e)
	}
	return sock
}

func (p *pusher) close() {
	p.watch.close()
	p.sock.Close()
}

// errMessage is a ProtocolError's message, else the error's text.
func errMessage(err error) string {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}
