package training

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"math"
	"runtime/debug"
	"strings"
	"time"

	"zmqnode/ml"
	"zmqnode/replies"
	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

// releaseAfterPlanBytes: a TRAIN whose arrays reach this size has its
// received blobs returned to the OS once the plan holds the rows (a full GC:
// worth it only for a large dataset).
const releaseAfterPlanBytes = 16 << 20

// Coordinator defaults, as the Python node's flags.
const (
	DefaultMaxTrainings    = 4
	DefaultTrainingTimeout = 600 * time.Second
	DefaultMaxRequestBytes = 512 << 20
	DefaultMaxModelBytes   = 64 << 20
	// TrainerSendHWM: jobs queued on a trainer's PUSH before sends to it
	// fail (and the chunk moves).
	TrainerSendHWM = 64
	// maxReadsPerTurn: results read per readable event (a turn's bound).
	maxReadsPerTurn = 256
)

// Links is what the coordinator may use of its node, and nothing else.
// The first seven are required; the rest may be nil.
type Links struct {
	ID string
	// Members: addresses whose trainers may take chunks now, in the order
	// to try them (this node first), e.g. members heard from within 1 s
	// whose trainer runs (scheduler.Trainers.survey).
	Members func() []string
	// Socket: a bound (PULL) or connected (PUSH) socket with the node's
	// CURVE/ZAP settings, peers domain.
	Socket func(kind zmq.Type, endpoint string, bind bool) (*zmq.Socket, error)
	// Monitor: the node's context's Context.Monitor, to watch the PUSHes'
	// handshakes and reopen a refused one (reopen.go); nil: not watched.
	Monitor func(s *zmq.Socket, events zmq.Event) (*zmq.Socket, error)
	// RegisterSocket: the node's loop polls s and calls onReadable.
	RegisterSocket func(s *zmq.Socket, onReadable func())
	// CommitModel proposes STORE_MODEL and answers reply once applied
	// (OK with model_id; the coordinator's reply adds trainers, rounds,
	// train_seconds, warnings and metrics after the node's fields).
	CommitModel func(req *wire.Object, model []byte, reply replies.Replier)
	// Wake wakes the loop from another goroutine (a plan is ready).
	Wake  func()
	Count func(kind string)

	// Down: trainer -> why it cannot answer any job (its node silent past
	// 2 s, its trainer stopped); its chunks move at once.
	Down func() map[string]string
	// Admit parks a retry that joins a running training; an error (a
	// *wire.ProtocolError, BUSY past --max-pending) refuses it.
	Admit func(req *wire.Object) error
	// Event: (kind, text) for the status feed's events.
	Event func(kind, text string)
	// JobFinished: (status, seconds), for metrics.
	JobFinished func(status string, seconds float64)
	Logf        func(string, ...any)
}

// CoordinatorConfig holds the Python flags that matter to training. Zero
// values take the defaults.
type CoordinatorConfig struct {
	MaxTrainings    int           // --max-trainings
	TrainingTimeout time.Duration // --training-timeout
	MaxRequestBytes int64         // --max-request-bytes
	MaxModelBytes   int64         // --max-model-bytes
	// Now is the monotonic time in seconds (tests); nil: the clock.
	Now func() float64
}

type prepared struct {
	plan *ml.TrainingPlan
	err  error
}

type trainingJob struct {
	id         string
	req        *wire.Object
	replies    []replies.Replier
	sched      *ChunkScheduler
	started    float64
	prep       chan prepared // nil once the plan is in
	request    *TrainRequest // column names (the arrays are dropped once planned)
	plan       *ml.TrainingPlan
	options    *wire.Object // the plan's options, as jobs carry them
	attempt    string
	results    map[int]ml.ChunkResult
	committing bool
}

// Coordinator runs the TRAIN jobs this node leads
// (zmqnode/training/coordinator.py): it owns the results PULL (P+4000) and
// one PUSH per member's trainer (P+3000); each job's ChunkScheduler decides
// which trainer trains which chunk. Its methods run on the node's loop
// goroutine only; plan preparation runs on a goroutine and hands back
// through a channel and Links.Wake.
type Coordinator struct {
	links   Links
	cfg     CoordinatorConfig
	logf    func(string, ...any)
	jobs    map[string]*trainingJob
	order   []string // job ids, oldest first (Python's dict order)
	replyTo string
	results *zmq.Socket
	bindErr error
	pushers map[string]*zmq.Socket
	watches map[string]*linkWatch // member -> its PUSH's handshakes
	epoch   time.Time
	closed  bool
	// restarted: trainer -> when it was restarted (TrainerRestarted).
	restarted map[string]float64
}

// NewCoordinator binds the results PULL and connects the members'
// trainers. A failed bind is logged, kept in Err and retried on Tick;
// meanwhile TRAIN is answered UNAVAILABLE.
func NewCoordinator(links Links, cfg CoordinatorConfig) *Coordinator {
	if cfg.MaxTrainings <= 0 {
		cfg.MaxTrainings = DefaultMaxTrainings
	}
	if cfg.TrainingTimeout <= 0 {
		cfg.TrainingTimeout = DefaultTrainingTimeout
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxModelBytes <= 0 {
		cfg.MaxModelBytes = DefaultMaxModelBytes
	}
	c := &Coordinator{links: links, cfg: cfg, logf: links.Logf, jobs: map[string]*trainingJob{},
		pushers: map[string]*zmq.Socket{}, watches: map[string]*linkWatch{}, epoch: time.Now()}
	if c.logf == nil {
		c.logf = log.Printf
	}
	if host, port, err := security.ParseAddress(links.ID); err == nil {
		c.replyTo = TCPEndpoint(host, port+ResultsOffset)
	} else {
		c.bindErr = fmt.Errorf("node id %q: %w", links.ID, err)
	}
	c.bindResults()
	c.connectTrainers()
	return c
}

// Err is why the results PULL is not bound (nil once it is).
func (c *Coordinator) Err() error { return c.bindErr }

// ReplyTo is the results endpoint named in every job.
func (c *Coordinator) ReplyTo() string { return c.replyTo }

func (c *Coordinator) now() float64 {
	if c.cfg.Now != nil {
		return c.cfg.Now()
	}
	return time.Since(c.epoch).Seconds()
}

func (c *Coordinator) bindResults() {
	if c.results != nil || c.replyTo == "" || c.closed {
		return
	}
	s, err := c.links.Socket(zmq.PULL, c.replyTo, true)
	if err != nil {
		if c.bindErr == nil || c.bindErr.Error() != err.Error() {
			c.logf("training: cannot bind the results PULL %s: %v", c.replyTo, err)
		}
		c.bindErr = err
		return
	}
	// Python bounds results at 2 x --max-model-bytes + 1 MiB (MAXMSGSIZE);
	// options set after bind do not reach the listener, so that bound is
	// the node's Socket's to set (SPEC_NOTES.md T5).
	c.results, c.bindErr = s, nil
	c.links.RegisterSocket(s, c.onReadable)
}

// connectTrainers opens a PUSH to each member's trainer not yet connected.
// IMMEDIATE: a send to a trainer not connected fails at once (§9).
func (c *Coordinator) connectTrainers() {
	if c.closed {
		return
	}
	for _, m := range c.links.Members() {
		if c.pushers[m] == nil {
			c.pusher(m)
		}
	}
}

func (c *Coordinator) pusher(member string) *zmq.Socket {
	if s := c.pushers[member]; s != nil {
		return s
	}
	host, port, err := security.ParseAddress(member)
	if err != nil {
		return nil
	}
	endpoint := TCPEndpoint(host, port+TrainingOffset)
	s, err := c.links.Socket(zmq.PUSH, endpoint, false)
	if err != nil {
		c.logf("training: cannot connect to trainer %s: %v", member, err)
		return nil
	}
	// Options apply to connections made after they are set: set them, then
	// connect again, whatever the node's Socket did.
	_ = s.SetInt(zmq.Immediate, 1)
	_ = s.SetInt(zmq.SndHWM, TrainerSendHWM)
	_ = s.SetInt(zmq.Linger, 0)
	_ = s.Disconnect(endpoint)
	var err2 error
	if c.links.Monitor != nil {
		c.watches[member], err2 = watchAndConnect(c.links.Monitor, s, endpoint, "trainer "+member)
	} else {
		err2 = s.Connect(endpoint)
	}
	if err2 != nil {
		s.Close()
		c.logf("training: cannot connect to trainer %s: %v", member, err2)
		return nil
	}
	c.pushers[member] = s
	return s
}

// Running is the number of trainings in progress (preparing, training or
// committing).
func (c *Coordinator) Running() int { return len(c.jobs) }

// JoinedClients is the number of client requests waiting on a training.
func (c *Coordinator) JoinedClients() int {
	n := 0
	for _, j := range c.jobs {
		n += len(j.replies)
	}
	return n
}

// Submit starts a TRAIN (called on the leader once the node checked
// leadership and that the id produced no model yet), or joins reply to the
// running job of the same id. Errors are answered through reply at once
// (BUSY past --max-trainings or a refused join, BAD_REQUEST, BAD_SHAPE,
// BAD_INPUT, TOO_LARGE, UNAVAILABLE when no trainer runs); an accepted
// request gets reply.Wait and its answer later.
func (c *Coordinator) Submit(req *wire.Object, blobs [][]byte, reply replies.Replier) {
	if err := c.submit(req, blobs, reply); err != nil {
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			reply.Error(req, pe.Code, pe.Message)
		} else {
			reply.Error(req, wire.Internal, err.Error())
		}
		return
	}
	reply.Wait(req)
}

func (c *Coordinator) submit(req *wire.Object, blobs [][]byte, reply replies.Replier) error {
	id := wire.HeaderID(req)
	if running := c.jobs[id]; running != nil {
		if c.links.Admit != nil {
			if err := c.links.Admit(req); err != nil {
				return err
			}
		}
		running.replies = append(running.replies, reply)
		return nil
	}
	if most := c.cfg.MaxTrainings; len(c.jobs) >= most {
		c.count("busy_trainings")
		return hErr(req, wire.Busy, "node %s is already running %d trainings (--max-trainings); retry later",
			c.links.ID, most)
	}
	request, err := ReadTrainRequest(req, blobs, c.cfg.MaxRequestBytes)
	if err != nil {
		return err
	}
	raw, _ := req.Get("options")
	if !truthy(raw) {
		raw = &wire.Object{}
	}
	if _, ok := raw.(*wire.Object); !ok {
		return hErr(req, wire.BadRequest, "'options' must be an object")
	}
	c.bindResults()
	if c.results == nil {
		return hErr(req, wire.Unavailable, "node %s cannot receive training results: %v", c.links.ID, c.bindErr)
	}
	trainers := c.links.Members()
	if len(trainers) == 0 {
		return hErr(req, wire.Unavailable, "no trainer is running on node %s or its peers; "+
			"start nodes without --no-trainer", c.links.ID)
	}
	text, err := wire.MarshalJSON(raw)
	if err != nil {
		return err
	}
	options, err := ml.ParseOptions(text)
	if err != nil {
		return hErr(req, wire.BadInput, "%s", Message(err))
	}
	c.connectTrainers()
	nChunks := ChunkCount(firstDim(request.X), len(trainers))
	now := c.now()
	j := &trainingJob{
		id: id, req: req, replies: []replies.Replier{reply},
		sched:   NewChunkScheduler(trainers, now, c.cfg.TrainingTimeout.Seconds()),
		started: now, prep: make(chan prepared, 1), request: request,
		attempt: newAttempt(), results: map[int]ml.ChunkResult{},
	}
	c.jobs[id] = j
	c.order = append(c.order, id)
	// The preparation owns the arrays; the job keeps the names only, so the
	// received blobs die with the preparation.
	arrays := *request
	request.X, request.Y = wire.Array{}, wire.Array{}
	large := int64(len(arrays.X.Data)+len(arrays.Y.Data)) >= releaseAfterPlanBytes
	// Validating, normalizing and splitting a large dataset takes seconds:
	// off the loop, or heartbeats stop and the leader is deposed.
	go func(ch chan<- prepared) {
		var p prepared
		func() {
			defer func() {
				if r := recover(); r != nil {
					p.err = fmt.Errorf("%v", r)
				}
			}()
			p.plan, p.err = MakePlan(&arrays, options, nChunks)
		}()
		arrays = TrainRequest{}
		if large {
			// The request's blobs are garbage now, but Go keeps freed heap
			// until its scavenger returns it, slowly; the chunk sends that
			// follow copy the rows into libzmq (C memory). Without this the
			// leader's peak would be received bytes + chunks + send buffers
			// (Python's numpy frees at once: received bytes + chunks).
			debug.FreeOSMemory()
		}
		ch <- p
		if c.links.Wake != nil {
			c.links.Wake()
		}
	}(j.prep)
	return nil
}

func firstDim(a wire.Array) int {
	if len(a.Shape) == 0 {
		return 1
	}
	return a.Shape[0]
}

func newAttempt() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Tick starts prepared jobs, moves late chunks and fails jobs past
// --training-timeout. Call it from the loop every turn or so, and after Wake.
func (c *Coordinator) Tick() {
	if c.closed {
		return
	}
	c.bindResults()
	for _, w := range c.watches {
		w.poll(time.Now(), c.count, c.logf)
	}
	if len(c.jobs) == 0 {
		return
	}
	c.connectTrainers()
	now := c.now()
	trainers := c.trainers()
	for _, id := range append([]string(nil), c.order...) {
		j := c.jobs[id]
		if j == nil {
			continue
		}
		if j.prep != nil {
			select {
			case p := <-j.prep:
				j.prep = nil
				c.startPrepared(j, p, now, trainers)
			default:
			}
		} else if !j.committing {
			c.checkDeadlines(j, now, trainers)
		}
	}
}

// TrainerRestarted: trainer's process (or goroutine) exited with status and
// was started again, so the chunks it cached and the jobs sent to it before
// now are lost; they move at the next Tick, and the jobs it trains for
// get a warning (coordinator.py tick).
func (c *Coordinator) TrainerRestarted(trainer string, status int) {
	if c.restarted == nil {
		c.restarted = map[string]float64{}
	}
	c.restarted[trainer] = c.now()
	for _, id := range c.order {
		if j := c.jobs[id]; j != nil {
			c.warn(j, j.sched.TrainerRestarted(trainer, status))
		}
	}
}

func (c *Coordinator) trainers() Trainers {
	t := Trainers{Available: c.links.Members(), Down: map[string]string{}, RestartedAt: c.restarted}
	if c.links.Down != nil {
		for k, v := range c.links.Down() {
			t.Down[k] = v
		}
	}
	return t
}

// LostLeadership fails every job not yet committing with NOT_LEADER: the
// client retries with the same id and the new leader trains it once (§6).
func (c *Coordinator) LostLeadership() {
	for _, id := range append([]string(nil), c.order...) {
		j := c.jobs[id]
		if j == nil || j.committing {
			continue // its proposal answers (committed by the next leader or not)
		}
		c.fail(j, wire.NotLeader, fmt.Sprintf("node %s lost leadership during training; retry with the "+
			"same request id (the new leader trains it once)", c.links.ID))
	}
}

// Views are the jobs in progress for the status feed's "trainings" (§9b).
func (c *Coordinator) Views() []map[string]any {
	now := c.now()
	views := []map[string]any{}
	for _, id := range c.order {
		j := c.jobs[id]
		if j == nil {
			continue
		}
		if j.plan == nil {
			views = append(views, map[string]any{"id": id, "state": "preparing", "elapsed_s": round3(now - j.started)})
			continue
		}
		state := "training"
		if j.committing {
			state = "committing"
		}
		v := map[string]any{"id": id, "state": state}
		for _, f := range c.progress(j, now) {
			v[f.Key] = f.Value
		}
		views = append(views, v)
	}
	return views
}

// Close closes the sockets (the node is going). Jobs are not answered:
// the node answers its parked requests at shutdown.
func (c *Coordinator) Close() {
	if c.closed {
		return
	}
	c.closed = true
	if c.results != nil {
		c.results.Close()
		c.results = nil
	}
	for m, s := range c.pushers {
		c.watches[m].close()
		delete(c.watches, m)
		s.Close()
		delete(c.pushers, m)
	}
}

func (c *Coordinator) count(kind string) {
	if c.links.Count != nil {
		c.links.Count(kind)
	}
}

func (c *Coordinator) event(kind, text string) {
	if c.links.Event != nil {
		c.links.Event(kind, text)
	}
}

func (c *Coordinator) dispatcher(j *trainingJob) Dispatch {
	return func(chunk int, trainer string, withData bool) bool { return c.sendChunk(j, chunk, trainer, withData) }
}

// sendChunk PUSHes chunk of the current round to trainer; false if it is
// not connected (IMMEDIATE) or its queue is full.
func (c *Coordinator) sendChunk(j *trainingJob, chunk int, trainer string, withData bool) bool {
	s := c.pusher(trainer)
	if s == nil {
		return false
	}
	data := j.plan.Chunks[chunk]
	job := &Job{
		JobID: j.id + "#" + j.attempt, Round: j.sched.Round, Chunk: chunk, ReplyTo: c.replyTo,
		Options: j.options, Params: wire.FromFloat32([]int{len(j.plan.Params)}, j.plan.Params),
	}
	if withData {
		// Frames straight from the plan's rows: Send copies them into libzmq.
		x := wire.ViewFloat32([]int{data.X.Rows, data.X.Cols}, data.X.Data)
		y := wire.ViewFloat32([]int{data.Y.Rows, data.Y.Cols}, data.Y.Data)
		job.X, job.Y = &x, &y
	}
	frames, err := EncodeJob(job)
	if err != nil {
		c.logf("training %s: cannot encode chunk %d: %v", j.id, chunk, err)
		return false
	}
	return s.Send(frames, zmq.DontWait) == nil
}

// OptionsObject is TrainOptions.to_dict as a job carries it: every option,
// in Python's field order.
func OptionsObject(o ml.TrainOptions) *wire.Object {
	m := o.ToMap()
	obj := &wire.Object{}
	for _, k := range []string{"hidden_layers", "activation", "epochs", "learning_rate", "batch_size",
		"l2", "seed", "task", "validation_fraction", "patience", "epochs_per_round"} {
		obj.Set(k, m[k])
	}
	return obj
}

func (c *Coordinator) startPrepared(j *trainingJob, p prepared, now float64, trainers Trainers) {
	if p.err != nil {
		if errors.Is(p.err, ml.ErrBadInput) || errors.Is(p.err, ml.ErrBadOptions) {
			c.fail(j, wire.BadInput, Message(p.err))
		} else {
			c.logf("preparing training %s failed: %v", j.id, p.err)
			c.fail(j, wire.Internal, "preparing the data failed: "+PyExceptionRepr(p.err))
		}
		return
	}
	plan := p.plan
	j.plan = plan
	arch := plan.Problem.Arch
	if modelBytes := int64(arch.NParams()) * 4; modelBytes > c.cfg.MaxModelBytes {
		c.fail(j, wire.TooLarge, fmt.Sprintf("a %s network needs about %d bytes, over --max-model-bytes %d; "+
			"use smaller hidden layers", arch.Describe(), modelBytes, c.cfg.MaxModelBytes))
		return
	}
	j.options = OptionsObject(plan.Options)
	j.sched.SetChunks(len(plan.Chunks))
	c.logf("training %s: %d rows x %d columns on %d trainer(s): %s", j.id, plan.Problem.NRows(),
		arch.LayerSizes[0], len(j.sched.Trainers), strings.Join(j.sched.Trainers, ", "))
	c.event("training_started", fmt.Sprintf("training %s: %d rows, %d trainers",
		short(j.id), plan.Problem.NRows(), len(j.sched.Trainers)))
	j.results = map[int]ml.ChunkResult{}
	c.warn(j, j.sched.StartRound(now, trainers, c.dispatcher(j)))
}

func short(id string) string {
	if r := []rune(id); len(r) > 12 {
		return string(r[:12])
	}
	return id
}

func (c *Coordinator) onReadable() {
	if c.results == nil {
		return
	}
	for i := 0; i < maxReadsPerTurn; i++ {
		frames, err := c.results.Recv(zmq.DontWait)
		if err != nil {
			return
		}
		c.onResult(frames)
	}
}

// OnResult handles one SUB_TRAIN_RESULT body (exported for the node's
// tests and for a loop that reads the socket itself).
func (c *Coordinator) OnResult(frames [][]byte) { c.onResult(frames) }

func (c *Coordinator) onResult(frames [][]byte) {
	r, err := DecodeResult(frames)
	if err != nil {
		c.count("training_garbage")
		c.logf("dropped a malformed training result: %s", errMessage(err))
		return
	}
	now := c.now()
	requestID, attempt := r.JobID, ""
	if i := strings.LastIndex(r.JobID, "#"); i >= 0 {
		requestID, attempt = r.JobID[:i], r.JobID[i+1:]
	} else {
		requestID = ""
	}
	j := c.jobs[requestID]
	if j == nil || j.plan == nil || j.committing || attempt != j.attempt || r.Round != j.sched.Round ||
		r.Chunk >= len(j.plan.Chunks) {
		return // late answer from a reassigned chunk or a finished job
	}
	if _, dup := j.results[r.Chunk]; dup {
		return
	}
	if r.MissingData {
		// The trainer restarted and lost its cache: send the chunk again.
		j.sched.LostData(r.Trainer, r.Chunk, now, c.dispatcher(j))
		return
	}
	if r.Error != "" {
		c.fail(j, wire.TrainingFailed, fmt.Sprintf("trainer %s: %s", r.Trainer, r.Error))
		return
	}
	params, err := toFloat32(*r.Params)
	if err != nil || len(params) != len(j.plan.Params) {
		// Python fails the same way when averaging (a trainer's bug, not
		// something a retry elsewhere would fix).
		c.fail(j, wire.TrainingFailed, fmt.Sprintf("trainer %s: sent %d parameters; the network has %d",
			r.Trainer, len(params), len(j.plan.Params)))
		return
	}
	j.sched.Answered(r.Chunk, now)
	j.results[r.Chunk] = ml.ChunkResult{Params: params, NSamples: r.NSamples, Loss: r.Loss}
	if len(j.results) == len(j.plan.Chunks) {
		c.finishRound(j, now)
	}
}

func (c *Coordinator) finishRound(j *trainingJob, now float64) {
	plan := j.plan
	results := make([]ml.ChunkResult, len(plan.Chunks))
	for i := range results {
		results[i] = j.results[i]
	}
	done, err := plan.FinishRound(results)
	if err != nil {
		c.logf("training %s failed while aggregating: %v", j.id, err)
		c.fail(j, wire.TrainingFailed, "aggregation failed: "+Message(err))
		return
	}
	if !done {
		c.reportProgress(j, now)
		j.results = map[int]ml.ChunkResult{}
		c.warn(j, j.sched.NextRound(now, c.trainers(), c.dispatcher(j)))
		return
	}
	model, err := plan.Model()
	var data []byte
	if err == nil {
		model.Features, model.Targets = j.request.Features, j.request.Targets
		if err = model.Validate(); err == nil {
			data, err = model.Bytes()
		}
	}
	if err != nil {
		c.fail(j, wire.TrainingFailed, "the trained model could not be written: "+Message(err))
		return
	}
	elapsed := now - j.started
	rounds := j.sched.Round + 1
	c.logf("training %s finished in %.2fs after %d rounds; replicating %d bytes", j.id, elapsed, rounds, len(data))
	if int64(len(data)) > c.cfg.MaxModelBytes {
		c.fail(j, wire.TooLarge, fmt.Sprintf("the trained model is %d bytes, over --max-model-bytes %d; "+
			"use smaller hidden layers", len(data), c.cfg.MaxModelBytes))
		return
	}
	extra := []wire.Field{
		{Key: "trainers", Value: append([]string{}, j.sched.Trainers...)},
		{Key: "rounds", Value: rounds},
		{Key: "train_seconds", Value: round3(elapsed)},
		{Key: "warnings", Value: append([]string{}, j.sched.Warnings...)},
		{Key: "metrics", Value: model.Summary()},
	}
	// The job stays registered until the commit answers, so a retry
	// arriving meanwhile joins it instead of training a second time.
	j.committing = true
	c.links.CommitModel(j.req, data, &jobReplies{c: c, j: j, extra: extra})
}

// checkDeadlines runs for a job whose plan is in (not while preparing, as
// Python: SPEC_NOTES.md T10).
func (c *Coordinator) checkDeadlines(j *trainingJob, now float64, trainers Trainers) {
	c.warn(j, j.sched.Check(now, trainers, c.dispatcher(j)))
	if j.sched.TimedOut(now) {
		c.fail(j, wire.Timeout, fmt.Sprintf("training did not finish within %.0fs", c.cfg.TrainingTimeout.Seconds()))
	}
}

func (c *Coordinator) warn(j *trainingJob, warnings []string) {
	for _, w := range warnings {
		c.logf("training %s: %s", j.id, w)
	}
}

func (c *Coordinator) reportProgress(j *trainingJob, now float64) {
	fields := c.progress(j, now)
	for _, r := range j.replies {
		r.Progress(j.req, fields...)
	}
}

func (c *Coordinator) progress(j *trainingJob, now float64) []wire.Field {
	plan := j.plan
	o := plan.Options
	var metrics any = map[string]any{}
	if n := len(plan.History); n > 0 {
		metrics = plan.History[n-1]
	}
	epoch := plan.RoundIndex * o.EpochsPerRound
	if epoch > o.Epochs {
		epoch = o.Epochs
	}
	return []wire.Field{
		{Key: "round", Value: plan.RoundIndex},
		{Key: "rounds", Value: o.NRounds()},
		{Key: "epoch", Value: epoch},
		{Key: "epochs", Value: o.Epochs},
		{Key: "metrics", Value: metrics},
		{Key: "elapsed_s", Value: round3(now - j.started)},
		{Key: "trainers", Value: append([]string{}, j.sched.Trainers...)},
	}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func (c *Coordinator) remove(j *trainingJob) {
	if c.jobs[j.id] != j {
		return
	}
	delete(c.jobs, j.id)
	for i, id := range c.order {
		if id == j.id {
			c.order = append(c.order[:i:i], c.order[i+1:]...)
			break
		}
	}
}

func (c *Coordinator) finished(j *trainingJob, status string) {
	elapsed := c.now() - j.started
	if c.links.JobFinished != nil {
		c.links.JobFinished(status, elapsed)
	}
	if status == "OK" {
		c.event("training_finished", fmt.Sprintf("training %s finished in %.1fs", short(j.id), elapsed))
	} else {
		c.event("training_failed", fmt.Sprintf("training %s failed (%s) after %.1fs", short(j.id), status, elapsed))
	}
}

func (c *Coordinator) fail(j *trainingJob, code wire.ErrorCode, message string) {
	c.remove(j)
	c.finished(j, string(code))
	c.logf("training %s failed: %s", j.id, message)
	for _, r := range j.replies {
		r.Error(j.req, code, message)
	}
}

// jobReplies answers every client waiting on a job (the first request and
// each retry that joined), once; OK gets the training's fields added.
type jobReplies struct {
	c     *Coordinator
	j     *trainingJob
	extra []wire.Field
	sent  bool
}

func (r *jobReplies) end(status string) bool {
	if r.sent {
		return false
	}
	r.sent = true
	r.c.remove(r.j)
	r.c.finished(r.j, status)
	return true
}

func (r *jobReplies) OK(req *wire.Object, blobs [][]byte, fields ...wire.Field) {
	if !r.end("OK") {
		return
	}
	all := append(append([]wire.Field{}, fields...), r.extra...)
	for _, rep := range r.j.replies {
		rep.OK(req, blobs, all...)
	}
}

func (r *jobReplies) Error(req *wire.Object, code wire.ErrorCode, message string) {
	if !r.end(string(code)) {
		return
	}
	for _, rep := range r.j.replies {
		rep.Error(req, code, message)
	}
}

func (r *jobReplies) Redirect(req *wire.Object, leader string) {
	if !r.end("REDIRECT") {
		return
	}
	for _, rep := range r.j.replies {
		rep.Redirect(req, leader)
	}
}

func (r *jobReplies) Progress(req *wire.Object, fields ...wire.Field) {
	if r.sent {
		return
	}
	for _, rep := range r.j.replies {
		rep.Progress(req, fields...)
	}
}

// Wait: each client's own replier already waits since its TRAIN came.
func (r *jobReplies) Wait(req *wire.Object) {}
