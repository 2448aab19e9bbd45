package node

import (
	"fmt"
	"time"

	"zmqnode/wire"
	"zmqnode/zmq"
)

// clientReplier answers one request from the client ROUTER, exactly once
// (replies.py ClientReplier).
type clientReplier struct {
	n        *Node
	routing  [][]byte
	kind     string
	received time.Time
	sent     bool
	req      *wire.Object // set while the request waits
}

func (r *clientReplier) send(header *wire.Object, blobs [][]byte) {
	if r.sent {
		return
	}
	r.sent = true
	if r.req != nil {
		delete(r.n.waiting, r)
	}
	status, _ := header.Str("code")
	if status == "" {
		status, _ = header.Str("status")
	}
	r.n.Stats.RequestDone(r.kind, status, time.Since(r.received))
	body, err := wire.Encode(header, blobs)
	if err != nil {
		r.n.Log.Log("ERROR", "zmqnode.replies", "cannot encode a reply: %v", err)
		return
	}
	if err := r.n.client.Send(wire.JoinEnvelope(r.routing, body), zmq.DontWait); err != nil {
		r.n.Count("replies_dropped")
	}
}

func (r *clientReplier) OK(req *wire.Object, blobs [][]byte, fields ...wire.Field) {
	r.send(wire.OKReply(req, fields...), blobs)
}

func (r *clientReplier) Error(req *wire.Object, code wire.ErrorCode, message string) {
	r.send(wire.ErrorReply(req, code, message), nil)
}

func (r *clientReplier) Redirect(req *wire.Object, leader string) {
	r.send(wire.RedirectReply(req, leader), nil)
}

func (r *clientReplier) Progress(req *wire.Object, fields ...wire.Field) {
	if r.sent {
		return
	}
	body, err := wire.Encode(wire.ProgressReply(req, fields...), nil)
	if err == nil {
		r.n.client.Send(wire.JoinEnvelope(r.routing, body), zmq.DontWait) // best effort
	}
}

func (r *clientReplier) Wait(req *wire.Object) {
	if r.sent {
		return
	}
	r.req = req
	r.n.waiting[r] = true
}

// onClient takes one request's frames as the ROUTER received them.
func (n *Node) onClient(frames [][]byte) {
	routing, body, err := wire.SplitEnvelope(frames)
	if err != nil {
		n.Count("client_garbage")
		n.Log.Log("WARNING", "zmqnode.handlers", "dropped a client message without envelope: %v", err)
		return
	}
	reply := &clientReplier{n: n, routing: routing, kind: "unknown", received: time.Now()}
	req, blobs, err := wire.Decode(body, wire.DecodeOptions{})
	if err != nil {
		reply.send(wire.ErrorReplyFor(nil, err), nil)
		return
	}
	size := 0
	for _, f := range body {
		size += len(f)
	}
	if int64(size) > n.Cfg.MaxRequestBytes {
		reply.Error(req, wire.TooLarge, fmt.Sprintf("request is %d bytes; node %s accepts at most %d (--max-request-bytes)",
			size, n.ID, n.Cfg.MaxRequestBytes))
		return
	}
	if t := wire.HeaderType(req); n.Handlers.Known(t) {
		reply.kind = t
	}
	n.Handlers.Dispatch(req, blobs, reply)
}
