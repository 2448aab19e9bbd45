// Package replies is the one seam every request handler answers through
// (the Python node's zmqnode/replies.py): a Replier answers one client
// request exactly once, now or later, so components (the request handlers,
// the training coordinator, HTTP inference) never see a socket.
package replies

import "zmqnode/wire"

// Replier answers one request. Exactly one of OK, Error or Redirect ends it;
// Progress may come before (TRAIN's PROGRESS replies, PROTOCOL.md §5.1).
// Methods are called on the node's loop goroutine only.
type Replier interface {
	// OK answers status OK with fields and blobs (PROTOCOL.md §4).
	OK(req *wire.Object, blobs [][]byte, fields ...wire.Field)
	// Error answers status ERROR with a code and a message for people.
	Error(req *wire.Object, code wire.ErrorCode, message string)
	// Redirect answers REDIRECT to the leader's client address.
	Redirect(req *wire.Object, leader string)
	// Progress sends an intermediate PROGRESS reply; the request stays open.
	Progress(req *wire.Object, fields ...wire.Field)
	// Wait says the answer comes later (the request is parked): metrics
	// count it as pending until one of the ending methods runs.
	Wait(req *wire.Object)
}

// Recorder is a Replier that keeps what it was told, for tests of
// components that answer through a Replier.
type Recorder struct {
	Answers []*wire.Object // each ending or progress reply, in order
	Blobs   [][][]byte     // the blobs sent with each of Answers
	Waiting bool
}

func (r *Recorder) add(reply *wire.Object, blobs [][]byte) {
	r.Answers = append(r.Answers, reply)
	r.Blobs = append(r.Blobs, blobs)
}

// OK records an OK reply.
func (r *Recorder) OK(req *wire.Object, blobs [][]byte, fields ...wire.Field) {
	r.add(wire.OKReply(req, fields...), blobs)
}

// Error records an ERROR reply.
func (r *Recorder) Error(req *wire.Object, code wire.ErrorCode, message string) {
	r.add(wire.ErrorReply(req, code, message), nil)
}

// Redirect records a REDIRECT reply.
func (r *Recorder) Redirect(req *wire.Object, leader string) {
	r.add(wire.RedirectReply(req, leader), nil)
}

// Progress records a PROGRESS reply.
func (r *Recorder) Progress(req *wire.Object, fields ...wire.Field) {
	r.add(wire.ProgressReply(req, fields...), nil)
}

// Wait records that the request was parked.
func (r *Recorder) Wait(req *wire.Object) { r.Waiting = true }

// Last is the latest reply, or nil.
func (r *Recorder) Last() *wire.Object {
	if len(r.Answers) == 0 {
		return nil
	}
	return r.Answers[len(r.Answers)-1]
}
