// Package simcore serves Raft cores (package raft) to the Python fault
// simulator over a line protocol on stdin/stdout: one JSON request per line
// in, one JSON reply per line out, strictly in order (docs/SIMCORE.md).
//
// One process hosts many cores, each under a handle. A reply carries the
// core's view (role, term, commit index...) and what changed in its log, so
// that the Python proxy (tests/sim/remote.py) answers attribute reads and
// term_at without a round trip.
package simcore

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"runtime/debug"
	"sort"

	"zmqnode/raft"
)

// Protocol is the version "info" reports; the proxy refuses another one.
const Protocol = 1

// Serve answers requests from r on w until r ends (nil) or an I/O error.
// A request that fails (bad JSON, unknown handle, an error or panic in the
// core) gets an error reply; the session goes on.
func Serve(r io.Reader, w io.Writer) error {
	in := bufio.NewReaderSize(r, 1<<16)
	out := bufio.NewWriterSize(w, 1<<16)
	s := newServer()
	for {
		line, err := in.ReadBytes('\n')
		if len(bytesTrim(line)) > 0 {
			if _, werr := out.Write(s.handle(line)); werr != nil {
				return werr
			}
			if werr := out.WriteByte('\n'); werr != nil {
				return werr
			}
			if werr := out.Flush(); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func bytesTrim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

type server struct {
	cores map[int]*handle
	next  int
	enc   encoder
}

// handle is one core and what its proxy has been told.
type handle struct {
	core *raft.Core
	last *raft.Ready // the last Ready handed out, until "advance"
	// The proxy's mirror of the log: the snapshot (index, term) and a copy of
	// the entries after it, as sent so far; fresh until the first reply.
	fresh               bool
	snapIndex, snapTerm uint64
	sent                []raft.Entry
	membership          []byte // the encoded membership last sent
}

func newServer() *server { return &server{cores: map[int]*handle{}} }

// replyError is an error reply's kind and message.
type replyError struct {
	kind, msg string
}

func (e *replyError) Error() string { return e.kind + ": " + e.msg }

func protocolError(format string, args ...interface{}) error {
	return &replyError{"protocol", fmt.Sprintf(format, args...)}
}

// classify names an error's kind for the proxy: "invariant" (Python's
// LogInvariantError), "membership" (MembershipError), else def.
func classify(err error, def string) *replyError {
	var re *replyError
	if errors.As(err, &re) {
		return re
	}
	var inv *raft.InvariantError
	if errors.As(err, &inv) {
		return &replyError{"invariant", inv.Msg}
	}
	var mem *raft.MembershipError
	if errors.As(err, &mem) {
		return &replyError{"membership", mem.Msg}
	}
	return &replyError{def, err.Error()}
}

// handle answers one request line; the result is valid until the next call.
func (s *server) handle(line []byte) (reply []byte) {
	e := &s.enc
	defer func() {
		if p := recover(); p != nil {
			re := &replyError{"panic", fmt.Sprintf("%v\n%s", p, debug.Stack())}
			if inv, ok := p.(*raft.InvariantError); ok {
				re = &replyError{"invariant", inv.Msg}
			}
			reply = s.errorReply(re)
		}
	}()
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return s.errorReply(&replyError{"protocol", "bad request: " + err.Error()})
	}
	e.reset()
	e.obj()
	if err := s.dispatch(&req); err != nil {
		return s.errorReply(classify(err, "error"))
	}
	e.end()
	return e.b
}

func (s *server) errorReply(re *replyError) []byte {
	e := &s.enc
	e.reset()
	e.obj()
	e.key("err")
	e.obj()
	e.key("kind")
	e.str(re.kind)
	e.key("msg")
	e.str(re.msg)
	e.end()
	e.end()
	return e.b
}

func (s *server) dispatch(req *request) error {
	e := &s.enc
	switch req.Op {
	case "info":
		names := raft.MutationNames()
		sort.Strings(names)
		e.key("r")
		e.obj()
		e.key("protocol")
		e.u64(Protocol)
		e.key("mutations")
		e.strs(names)
		e.end()
		return nil
	case "new":
		return s.newCore(req)
	}
	h := s.cores[req.H]
	if h == nil {
		return protocolError("no core with handle %d", req.H)
	}
	c := h.core
	switch req.Op {
	// queries: no view
	case "drop":
		delete(s.cores, req.H)
		return nil
	case "membership_at":
		e.key("r")
		e.b64(c.MembershipAt(req.Index).Encode())
		return nil
	case "term_at":
		e.key("r")
		if t, ok := c.TermAt(req.Index); ok {
			e.u64(t)
		} else {
			e.b = append(e.b, "null"...)
		}
		return nil
	case "log_entries":
		e.key("r")
		e.entryList(c.LogEntries())
		return nil
	}
	var ready *raft.Ready // asked for ("ready")
	switch req.Op {
	case "tick":
		c.Tick()
	case "step":
		if req.M == nil {
			return protocolError("step without a message (m)")
		}
		m, err := req.M.message()
		if err != nil {
			return protocolError("step: %v", err)
		}
		if err := c.Step(m); err != nil {
			return err
		}
	case "propose":
		res := c.Propose(req.Data)
		e.key("r")
		e.proposeResult(&res)
	case "propose_membership":
		if req.Change == nil {
			return protocolError("propose_membership without a change")
		}
		t, err := raft.ParseChangeType(req.Change.Type)
		if err != nil {
			return protocolError("propose_membership: %v", err)
		}
		res := c.ProposeMembership(
			raft.ConfChange{Type: t, Node: req.Change.Node, Credential: req.Change.Credential},
			req.Base)
		e.key("r")
		e.proposeResult(&res)
	case "read_index":
		e.key("r")
		e.boolean(c.ReadIndex(req.Ctx))
	case "transfer_leadership":
		c.TransferLeadership(req.Peer)
	case "campaign":
		c.Campaign()
	case "peer_unreachable":
		c.PeerUnreachable(req.Peer)
	case "compact":
		if err := c.Compact(req.Index, req.Data); err != nil {
			return err
		}
	case "advance":
		if h.last == nil {
			return protocolError("advance: no Ready handed out since the last advance")
		}
		rd := h.last
		h.last = nil
		if err := c.Advance(*rd); err != nil {
			return err
		}
	case "has_ready":
		if !req.Rd {
			e.key("r")
			e.boolean(c.HasReady())
		}
	case "ready":
		rd := c.Ready()
		ready = &rd
	default:
		return protocolError("unknown op %q", req.Op)
	}
	var chain []raft.Ready
	more := true
	if req.Rd && req.Op != "ready" {
		var err error
		chain, more, err = h.readies()
		if err != nil {
			return err
		}
	}
	if ready != nil {
		h.last = ready
	}
	s.view(h)
	if ready != nil {
		e.key("ready")
		e.ready(ready, h.sent, h.snapIndex)
	}
	if req.Rd && req.Op != "ready" {
		if len(chain) > 0 {
			e.key("readies")
			e.b = append(e.b, '[')
			for i := range chain {
				if i > 0 {
					e.b = append(e.b, ',')
				}
				e.ready(&chain[i], h.sent, h.snapIndex)
			}
			e.b = append(e.b, ']')
		}
		if !more {
			e.key("hr")
			e.boolean(false)
		}
	}
	return nil
}

// maxChain bounds the Readies one reply carries (the world's own guard
// against a core that is never done is 1000).
const maxChain = 64

// readies is the prefetch of a request with "rd": while HasReady, take a
// Ready; one that writes nothing (no hard state, entries or snapshot) is
// advanced at once, because the world, with nothing to persist, carries it
// out and advances it without calling the core in between; one that writes
// ends the chain and waits for "advance". more is false when HasReady said
// false at the end.
func (h *handle) readies() (chain []raft.Ready, more bool, err error) {
	c := h.core
	for len(chain) < maxChain {
		if !c.HasReady() {
			return chain, false, nil
		}
		rd := c.Ready()
		chain = append(chain, rd)
		if rd.HardState != nil || len(rd.Entries) > 0 || rd.Snapshot != nil {
			h.last = &chain[len(chain)-1]
			return chain, true, nil
		}
		if err := c.Advance(rd); err != nil {
			return nil, true, err
		}
	}
	return chain, true, nil
}

func (s *server) newCore(req *request) error {
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return &replyError{"value", err.Error()}
	}
	opts := raft.Options{
		Snapshot:  req.Snapshot.snapshot(),
		Entries:   entries(req.Entries),
		VoteFloor: req.VoteFloor,
	}
	if req.HardState != nil {
		opts.HardState = &raft.HardState{Term: req.HardState.Term, Vote: req.HardState.Vote}
	}
	if req.Bootstrap != nil {
		m, err := raft.DecodeMembership(req.Bootstrap)
		if err != nil {
			return &replyError{"value", "bootstrap: " + err.Error()}
		}
		opts.Bootstrap = &m
	}
	if len(req.Mutations) > 0 {
		known := map[string]bool{}
		for _, n := range raft.MutationNames() {
			known[n] = true
		}
		opts.Mutations = map[string]bool{}
		for _, n := range req.Mutations {
			if !known[n] {
				return &replyError{"value", fmt.Sprintf("the Go core has no mutation %q", n)}
			}
			opts.Mutations[n] = true
		}
	}
	rng := rand.New(rand.NewSource(int64(req.Seed)))
	c, err := raft.NewCore(req.ID, req.Peers, cfg, rng, opts)
	if err != nil {
		return classify(err, "value")
	}
	s.next++
	h := &handle{core: c, fresh: true}
	s.cores[s.next] = h
	s.enc.key("h")
	s.enc.u64(uint64(s.next))
	s.view(h)
	return nil
}

func (e *encoder) proposeResult(r *raft.ProposeResult) {
	e.obj()
	e.key("accepted")
	e.boolean(r.Accepted)
	e.fu64("index", r.Index)
	e.fu64("term", r.Term)
	e.fstr("leader_hint", r.LeaderHint)
	e.fstr("reason", r.Reason)
	e.fstr("refusal", r.Refusal.String())
	e.end()
}

// view writes the core's view ("v"), its membership when it changed ("m")
// and what changed in its log since the last reply ("log").
func (s *server) view(h *handle) {
	e := &s.enc
	c := h.core
	snap := c.Snapshot()
	e.key("v")
	e.obj()
	e.key("role")
	e.str(c.Role().String())
	e.key("term")
	e.u64(c.Term())
	e.key("vote")
	e.str(c.Vote())
	e.key("leader")
	e.str(c.LeaderID())
	e.key("commit")
	e.u64(c.CommitIndex())
	e.key("applied")
	e.u64(c.AppliedIndex())
	e.key("last")
	e.u64(c.LastIndex())
	e.key("snap")
	e.b = append(e.b, '[')
	e.u64(snap.Index)
	e.b = append(e.b, ',')
	e.u64(snap.Term)
	e.b = append(e.b, ']')
	e.key("mi")
	e.u64(c.MembershipIndex())
	e.end()

	if enc := c.Membership().Encode(); h.fresh || string(enc) != string(h.membership) {
		h.membership = enc
		e.key("m")
		e.obj()
		e.key("enc")
		e.b64(enc)
		e.key("voters")
		e.strs(c.Voters())
		e.key("quorum")
		e.u64(uint64(c.Quorum()))
		e.end()
	}

	// The log: a new snapshot drops the mirror's entries up to its index;
	// then the entries from the first that differs are replaced.
	ents := c.LogEntries()
	wroteLog := false
	openLog := func() {
		if !wroteLog {
			e.key("log")
			e.obj()
			wroteLog = true
		}
	}
	if h.fresh || snap.Index != h.snapIndex || snap.Term != h.snapTerm {
		openLog()
		e.key("snap")
		e.snapshot(&snap)
		drop := 0
		for drop < len(h.sent) && h.sent[drop].Index <= snap.Index {
			drop++
		}
		h.sent = append(h.sent[:0], h.sent[drop:]...)
		h.snapIndex, h.snapTerm = snap.Index, snap.Term
	}
	k := 0
	for k < len(h.sent) && k < len(ents) && sameEntry(&h.sent[k], &ents[k]) {
		k++
	}
	if h.fresh || k < len(h.sent) || k < len(ents) {
		openLog()
		e.key("from")
		e.u64(snap.Index + 1 + uint64(k))
		e.key("ents")
		e.entryList(ents[k:])
		h.sent = append(h.sent[:k], ents[k:]...)
	}
	if wroteLog {
		e.end()
	}
	h.fresh = false
}
