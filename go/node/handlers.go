package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"zmqnode/ml"
	"zmqnode/replies"
	"zmqnode/wire"
)

// Leadership is what the handlers may ask of Raft (handlers.py Leadership).
type Leadership struct {
	LeaderID func() string // "" while none is known
	IsLeader func() bool
	// Propose a command; done(true) once applied in the proposing term.
	// False when this node is not the leader.
	Propose func(data []byte, done func(bool)) bool
}

// Trainer is the leader's training coordinator as the handlers see it
// (go/training, once it lands): nil means TRAIN is not available here.
type Trainer interface {
	Running(requestID string) bool
	Submit(req *wire.Object, blobs [][]byte, reply replies.Replier)
	Joined() int
}

// Handlers serves every client request type (handlers.py RequestHandlers,
// member_requests.py): each answers now or parks the request.
type Handlers struct {
	Cfg        *Config
	ID         string
	Registry   *Registry
	Waiters    *Waiters
	Proposals  *Proposals
	Leadership Leadership
	Batcher    *Batcher
	Training   Trainer
	Status     func() *wire.Object
	WantFile   func(id, sha string, size int64)
	Count      func(kind string)
	Logf       func(level, format string, args ...any)
	// Membership requests (members.go); nil: answered UNKNOWN_TYPE.
	Members *MemberRequests
	table   map[string]func(*wire.Object, [][]byte, replies.Replier) error
}

func perr(code wire.ErrorCode, req *wire.Object, format string, args ...any) error {
	return &wire.ProtocolError{Code: code, Message: fmt.Sprintf(format, args...), Header: req}
}

func (h *Handlers) handlers() map[string]func(*wire.Object, [][]byte, replies.Replier) error {
	if h.table == nil {
		h.table = map[string]func(*wire.Object, [][]byte, replies.Replier) error{
			wire.TypeStatus:  h.handleStatus,
			wire.TypeList:    h.handleList,
			wire.TypeInfo:    h.handleInfo,
			wire.TypePredict: h.handlePredict,
			wire.TypeTrain:   h.handleTrain,
			wire.TypeImport:  h.handleImport,
			wire.TypeFetch:   h.handleFetch,
		}
		if h.Members != nil {
			h.table[wire.TypeMembers] = h.Members.handleMembers
			h.table[wire.TypeMemberChange] = h.Members.handleChange
			h.table[wire.TypeJoin] = h.Members.handleJoin
		}
	}
	return h.table
}

// Known reports whether this node serves request type t (a metrics label).
func (h *Handlers) Known(t string) bool { _, ok := h.handlers()[t]; return ok }

// Dispatch serves one decoded request; every error is answered through reply.
// The HTTP inference port comes in here too.
func (h *Handlers) Dispatch(req *wire.Object, blobs [][]byte, reply replies.Replier) {
	defer func() {
		if r := recover(); r != nil {
			h.Logf("ERROR", "internal error serving a request: %v", r)
			reply.Error(req, wire.Internal, fmt.Sprintf("node %s failed: %v", h.ID, r))
		}
	}()
	t := wire.HeaderType(req)
	handler, ok := h.handlers()[t]
	var err error
	if !ok {
		names := make([]string, 0, len(h.handlers()))
		for n := range h.handlers() {
			names = append(names, n)
		}
		sort.Strings(names)
		err = perr(wire.UnknownType, req, "unknown request type %s; this node serves %s", pyRepr(t), joinComma(names))
	} else {
		err = handler(req, blobs, reply)
	}
	if err != nil {
		answerError(reply, req, err)
	}
}

func answerError(reply replies.Replier, req *wire.Object, err error) {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		if pe.Header != nil {
			req = pe.Header
		}
		reply.Error(req, pe.Code, pe.Message)
		return
	}
	reply.Error(req, wire.Internal, err.Error())
}

// RequestTimeout is how long to wait for a request: the client's timeout_ms
// (90%, so the answer arrives while it listens), within --request-timeout.
func (h *Handlers) RequestTimeout(req *wire.Object) time.Duration {
	if v, ok := req.Get("timeout_ms"); ok {
		if n, ok := v.(wire.Number); ok && n.IsInt() {
			if ms, ok := n.Int64(); ok && ms > 0 {
				d := time.Duration(float64(ms) * 0.9 * float64(time.Millisecond))
				if d < 50*time.Millisecond {
					d = 50 * time.Millisecond
				}
				if d < h.Cfg.RequestTimeout {
					return d
				}
			}
		}
	}
	return h.Cfg.RequestTimeout
}

// Pending is the requests parked on this node (admission counts them).
func (h *Handlers) Pending() int {
	n := h.Waiters.Parked
	if h.Training != nil {
		n += h.Training.Joined()
	}
	return n
}

// Admit refuses (BUSY) a request that would park while --max-pending are parked.
func (h *Handlers) Admit(req *wire.Object) error {
	if h.Pending() >= h.Cfg.MaxPending {
		h.Count("busy_pending")
		return perr(wire.Busy, req, "node %s has %d requests waiting (--max-pending); retry later", h.ID, h.Cfg.MaxPending)
	}
	return nil
}

func (h *Handlers) admitBytes(req *wire.Object, size int64) error {
	held := h.Proposals.UncommittedBytes
	if held > 0 && held+size > h.Cfg.MaxUncommittedBytes {
		h.Count("busy_uncommitted")
		return perr(wire.Busy, req, "node %s holds %d bytes of models not yet committed; %d more would pass --max-uncommitted-bytes %d; retry later",
			h.ID, held, size, h.Cfg.MaxUncommittedBytes)
	}
	return nil
}

// Later answers once this node has caught up with the leader's commit index
// (a read index), or UNAVAILABLE at the deadline.
func (h *Handlers) Later(req *wire.Object, reply replies.Replier, answer func() error) error {
	if err := h.Admit(req); err != nil {
		return err
	}
	reply.Wait(req)
	h.Waiters.AfterReadIndex(h.RequestTimeout(req), func() {
		if err := answer(); err != nil {
			answerError(reply, req, err)
		}
	}, func() {
		reply.Error(req, wire.Unavailable, fmt.Sprintf("node %s could not confirm the cluster's latest state "+
			"in time (no leader reachable?); retry or ask another node", h.ID))
	})
	return nil
}

// RedirectOrUnavailable: REDIRECT to the leader; with none other than us, code.
func (h *Handlers) RedirectOrUnavailable(req *wire.Object, reply replies.Replier, code wire.ErrorCode, message string) {
	leader := h.Leadership.LeaderID()
	if leader != "" && leader != h.ID {
		reply.Redirect(req, leader)
		return
	}
	if message == "" {
		message = fmt.Sprintf("node %s knows no leader yet (election in progress); retry", h.ID)
	}
	reply.Error(req, code, message)
}

func (h *Handlers) handleStatus(req *wire.Object, _ [][]byte, reply replies.Replier) error {
	reply.OK(req, nil, h.Status().Fields()...)
	return nil
}

func (h *Handlers) handleList(req *wire.Object, _ [][]byte, reply replies.Replier) error {
	return h.Later(req, reply, func() error {
		reply.OK(req, nil, wire.Field{Key: "models", Value: h.Registry.Listing()})
		return nil
	})
}

func (h *Handlers) withModel(id string, req *wire.Object, reply replies.Replier, answer func() error) error {
	if _, ok := h.Registry.Models[id]; ok {
		return answer()
	}
	return h.Later(req, reply, answer)
}

func notFound(id string) string {
	return fmt.Sprintf("model %s not found; `python -m client list` shows the models", pyRepr(id))
}

// loadOrRefuse is the model, or nil after answering: our copy is damaged and
// being fetched again, so the leader (or another node) must serve it.
func (h *Handlers) loadOrRefuse(id string, req *wire.Object, reply replies.Replier) (*ml.Model, error) {
	m, err := h.Registry.Load(id)
	var dmg *ModelFileDamaged
	if errors.As(err, &dmg) {
		rec := h.Registry.Models[id]
		if h.WantFile != nil {
			h.WantFile(id, rec.SHA256, rec.Size)
		}
		h.RedirectOrUnavailable(req, reply, wire.Unavailable, fmt.Sprintf("node %s cannot serve model %s now: %s; "+
			"it is being fetched from the other nodes. Retry, or ask another node", h.ID, id, dmg.Reason))
		return nil, nil
	}
	return m, err
}

func (h *Handlers) handleInfo(req *wire.Object, _ [][]byte, reply replies.Replier) error {
	id, err := requireStr(req, "model_id")
	if err != nil {
		return err
	}
	return h.withModel(id, req, reply, func() error {
		rec, ok := h.Registry.Models[id]
		if !ok {
			reply.Error(req, wire.NotFound, notFound(id))
			return nil
		}
		m, err := h.loadOrRefuse(id, req, reply)
		if err != nil || m == nil {
			return err
		}
		reply.OK(req, nil, wire.Field{Key: "model", Value: rec.JSON()},
			wire.Field{Key: "metadata", Value: jsonValue(m.MetadataDocument())})
		return nil
	})
}

func (h *Handlers) handlePredict(req *wire.Object, blobs [][]byte, reply replies.Replier) error {
	id, err := requireStr(req, "model_id")
	if err != nil {
		return err
	}
	arr, err := wire.ReadArray(req, blobs, "inputs", h.Cfg.MaxRequestBytes)
	if err != nil {
		return withHeader(err, req)
	}
	rows, err := asRows(arr, req)
	if err != nil {
		return err
	}
	proba := false
	if v, ok := req.Get("proba"); ok {
		b, isBool := v.(bool)
		if !isBool {
			return perr(wire.BadRequest, req, "'proba' must be true or false")
		}
		proba = b
	}
	return h.withModel(id, req, reply, func() error {
		if _, ok := h.Registry.Models[id]; !ok {
			reply.Error(req, wire.NotFound, notFound(id))
			return nil
		}
		m, err := h.loadOrRefuse(id, req, reply)
		if err != nil || m == nil {
			return err
		}
		if proba && len(m.Classes) == 0 {
			reply.Error(req, wire.BadInput, fmt.Sprintf("model %s does regression: it has no class probabilities", id))
			return nil
		}
		if rows.Cols != m.NInputs() {
			reply.Error(req, wire.BadInput, fmt.Sprintf("model %s expects %d input columns, got %d", id, m.NInputs(), rows.Cols))
			return nil
		}
		return h.Batcher.Add(id, m, rows, proba, req, reply)
	})
}

func (h *Handlers) handleFetch(req *wire.Object, _ [][]byte, reply replies.Replier) error {
	id, err := requireStr(req, "model_id")
	if err != nil {
		return err
	}
	offset, err := requireCount(req, "offset")
	if err != nil {
		return err
	}
	length, err := requireCount(req, "length")
	if err != nil {
		return err
	}
	missing := fmt.Sprintf("node %s has no good copy of %s", h.ID, id)
	rec, ok := h.Registry.Models[id]
	if !ok || h.Registry.Damaged[id] {
		reply.Error(req, wire.NotFound, missing)
		return nil
	}
	path, err := h.Registry.Store.Path(id)
	if err != nil {
		reply.Error(req, wire.NotFound, missing)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		reply.Error(req, wire.NotFound, missing)
		return nil
	}
	defer f.Close()
	if length > int64(h.Cfg.FetchChunkBytes) {
		length = int64(h.Cfg.FetchChunkBytes)
	}
	chunk := make([]byte, length)
	n, err := f.ReadAt(chunk, offset)
	if err != nil && err != io.EOF {
		return err
	}
	reply.OK(req, [][]byte{chunk[:n]}, wire.Field{Key: "size", Value: rec.Size},
		wire.Field{Key: "offset", Value: offset}, wire.Field{Key: "sha256", Value: rec.SHA256})
	return nil
}

func (h *Handlers) handleTrain(req *wire.Object, blobs [][]byte, reply replies.Replier) error {
	if !h.Leadership.IsLeader() {
		h.RedirectOrUnavailable(req, reply, wire.NotLeader, "")
		return nil
	}
	requestID := wire.HeaderID(req)
	modelID := ModelIDFor(requestID)
	if h.Training != nil && h.Training.Running(requestID) {
		h.Training.Submit(req, blobs, reply) // joins the running job
		reply.Wait(req)
		return nil
	}
	return h.Later(req, reply, func() error {
		// After catching up, so a model an earlier leader acknowledged is seen.
		if rec, ok := h.Registry.Models[modelID]; ok {
			fields := []wire.Field{{Key: "model_id", Value: modelID}}
			fields = append(fields, rec.Summary.Fields()...)
			fields = append(fields, wire.Field{Key: "warnings", Value: []string{"this request id was already trained; returning its model"}})
			reply.OK(req, nil, fields...)
			return nil
		}
		if !h.Leadership.IsLeader() {
			h.RedirectOrUnavailable(req, reply, wire.NotLeader, "")
			return nil
		}
		if h.Training == nil {
			reply.Error(req, wire.Unavailable, fmt.Sprintf("node %s (the Go node) cannot train yet: "+
				"training is not available on this node; send the TRAIN to a Python node or retry later", h.ID))
			return nil
		}
		h.Training.Submit(req, blobs, reply)
		return nil
	})
}

func (h *Handlers) handleImport(req *wire.Object, blobs [][]byte, reply replies.Replier) error {
	if !h.Leadership.IsLeader() {
		h.RedirectOrUnavailable(req, reply, wire.NotLeader, "")
		return nil
	}
	if len(blobs) != 1 {
		return perr(wire.BadRequest, req, "IMPORT carries one frame (the model file), got %d", len(blobs))
	}
	data := blobs[0]
	if int64(len(data)) > h.Cfg.MaxModelBytes {
		return perr(wire.TooLarge, req, "model file is %d bytes; limit is %d (--max-model-bytes)", len(data), h.Cfg.MaxModelBytes)
	}
	m, err := ml.ReadModel(data)
	if err != nil {
		return perr(wire.BadInput, req, "not a valid model file: %s", mlMessage(err))
	}
	if err := h.Admit(req); err != nil {
		return err
	}
	if err := h.admitBytes(req, int64(len(data))); err != nil {
		return err
	}
	reply.Wait(req)
	h.CommitModel(req, data, ListingSummary(m), nil, reply)
	return nil
}

// CommitModel replicates a model file and answers once it is committed and
// applied (admission is the caller's: a finished TRAIN is not refused BUSY).
func (h *Handlers) CommitModel(req *wire.Object, model []byte, summary *wire.Object, extra []wire.Field, reply replies.Replier) {
	requestID := wire.HeaderID(req)
	modelID := ModelIDFor(requestID)
	created := float64(time.Now().UnixNano()) / 1e9
	command, err := EncodeStoreModel(requestID, model, created, summary)
	if err != nil {
		reply.Error(req, wire.Internal, fmt.Sprintf("node %s cannot encode the model command: %v", h.ID, err))
		return
	}
	var waiter *Waiter
	done := func(ok bool) {
		if cb, _ := h.Waiters.Settle(waiter); cb == nil {
			return
		}
		if _, known := h.Registry.Models[modelID]; ok || known {
			reply.OK(req, nil, append([]wire.Field{{Key: "model_id", Value: modelID}}, extra...)...)
			return
		}
		reply.Error(req, wire.NotLeader, fmt.Sprintf("node %s lost leadership before model %s committed; "+
			"retry with the same request id", h.ID, modelID))
	}
	waiter = h.Waiters.Park(h.RequestTimeout(req), func() {}, func() {
		reply.Error(req, wire.Timeout, fmt.Sprintf("model %s was not committed in time on node %s (no quorum?); "+
			"retry with the same request id", modelID, h.ID))
	})
	if !h.Leadership.Propose(command, done) {
		h.Waiters.Settle(waiter)
		h.RedirectOrUnavailable(req, reply, wire.NotLeader, "")
	}
}

func requireStr(req *wire.Object, key string) (string, error) {
	s, ok := req.Str(key)
	if !ok || s == "" {
		return "", perr(wire.BadRequest, req, "field %s must be a non-empty string", pyRepr(key))
	}
	return s, nil
}

func requireCount(req *wire.Object, key string) (int64, error) {
	v, _ := req.Get(key)
	if n, ok := v.(wire.Number); ok && n.IsInt() {
		if i, ok := n.Int64(); ok && i >= 0 {
			return i, nil
		}
	}
	return 0, perr(wire.BadRequest, req, "field %s must be a non-negative integer", pyRepr(key))
}

func withHeader(err error, req *wire.Object) error {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) && pe.Header == nil {
		return &wire.ProtocolError{Code: pe.Code, Message: pe.Message, Header: req}
	}
	return err
}

// asRows is the inputs as float32 rows x columns (a 1-D array is one row).
func asRows(a wire.Array, req *wire.Object) (ml.Matrix, error) {
	shape := a.Shape
	if len(shape) == 1 {
		shape = []int{1, shape[0]}
	}
	if len(shape) != 2 || shape[0] == 0 {
		return ml.Matrix{}, perr(wire.BadShape, req, "inputs must be a non-empty 2-D array (rows x columns), got shape %s", intList(a.Shape))
	}
	var values []float32
	switch a.Dtype {
	case wire.Float32:
		values, _ = a.Float32s()
	default:
		f64, err := toFloat64s(a)
		if err != nil {
			return ml.Matrix{}, perr(wire.BadInput, req, "%v", err)
		}
		values = make([]float32, len(f64))
		for i, v := range f64 {
			values[i] = float32(v)
		}
	}
	m, err := ml.MatrixOf(shape[0], shape[1], values)
	if err != nil {
		return ml.Matrix{}, perr(wire.BadShape, req, "%v", err)
	}
	return m, nil
}

func toFloat64s(a wire.Array) ([]float64, error) {
	switch a.Dtype {
	case wire.Float64:
		return a.Float64s()
	case wire.Int32:
		v, err := a.Int32s()
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, err
	case wire.Int64:
		v, err := a.Int64s()
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, err
	}
	return nil, fmt.Errorf("dtype %s not allowed", a.Dtype)
}

func intList(v []int) string {
	s := "["
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(x)
	}
	return s + "]"
}

func joinComma(v []string) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

// pyRepr is Python's repr of a plain string (the messages quote like Python).
func pyRepr(s string) string {
	for _, r := range s {
		if r == '\'' {
			return fmt.Sprintf("%q", s)
		}
	}
	return "'" + s + "'"
}

// mlMessage is an ml error's text without its kind ("bad model file: "),
// which Python's exceptions do not print.
func mlMessage(err error) string {
	msg := err.Error()
	for _, kind := range []error{ml.ErrModelFormat, ml.ErrBadInput, ml.ErrBadOptions, ml.ErrTraining} {
		if errors.Is(err, kind) {
			return strings.TrimPrefix(msg, kind.Error()+": ")
		}
	}
	return msg
}
