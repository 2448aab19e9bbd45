package training

import (
	"time"

	"zmqnode/zmq"
)

// A handshake refused by the other side's ZAP handler (status 400: our key
// is not on its allow-list yet, as when that member has not appended the
// entry adding us) is final for the connection in libzmq 4.3: it never
// retries it, even once the key is admitted. The leader's PUSH to a
// trainer and the trainer's PUSH back to a leader's results PULL are
// therefore watched and reopened as the node's peer links are
// (go/node/reopen.go; docs/PROTOCOL.md §1.1): disconnect at once, connect
// again after zmq.ReopenFirst, doubling to zmq.ReopenMax until a handshake
// succeeds (go/zmq/reopen.go).

// linkWatch is one connecting socket's handshakes (a monitor attached before
// it connects) and, once refused, when to reopen it.
type linkWatch struct {
	sock, mon *zmq.Socket
	endpoint  string
	name      string // what the log calls the link
	at        time.Time
	backoff   time.Duration
	reopened  int
	logged    map[string]bool
	// The events counted (the coordinator's count), as
	// zmqnode/training/coordinator.py names them.
	refusedKind, reopenedKind string
}

// watchAndConnect attaches a monitor to sock, then connects it to endpoint.
func watchAndConnect(ctx func(*zmq.Socket, zmq.Event) (*zmq.Socket, error), sock *zmq.Socket, endpoint, name string) (*linkWatch, error) {
	mon, err := ctx(sock, zmq.EventHandshakeSucceeded|zmq.RefusedEvents)
	if err != nil {
		return nil, err
	}
	if err := sock.Connect(endpoint); err != nil {
		_ = zmq.StopMonitor(sock)
		mon.Close()
		return nil, err
	}
	return &linkWatch{sock: sock, mon: mon, endpoint: endpoint, name: name, logged: map[string]bool{},
		refusedKind: "trainer_handshake_refused", reopenedKind: "trainer_link_reopened"}, nil
}

// poll handles the monitor's waiting events and reopens the link if its
// backoff has passed. count and logf may be nil.
func (w *linkWatch) poll(now time.Time, count func(string), logf func(string, ...any)) {
	if w == nil {
		return
	}
	for {
		frames, err := w.mon.Recv(zmq.DontWait)
		if err != nil {
			break
		}
		ev, value, _, err := zmq.ParseEvent(frames)
		if err != nil {
			continue
		}
		switch {
		case ev == zmq.EventHandshakeSucceeded:
			w.backoff = 0
			if w.reopened > 0 && logf != nil {
				logf("%s admitted our connection after %d reopening(s)", w.name, w.reopened)
			}
			w.reopened = 0
		case ev&zmq.RefusedEvents != 0:
			w.refused(now, ev, value, count, logf)
		}
	}
	if !w.at.IsZero() && !w.at.After(now) {
		w.at = time.Time{}
		w.reopened++
		if count != nil {
			count(w.reopenedKind)
		}
		if err := w.sock.Connect(w.endpoint); err != nil && logf != nil {
			logf("cannot reopen %s: %v", w.name, err)
		}
	}
}

func (w *linkWatch) refused(now time.Time, ev zmq.Event, value uint32, count func(string), logf func(string, ...any)) {
	if count != nil {
		count(w.refusedKind)
	}
	reason := zmq.RefusalReason(ev, value)
	var delay time.Duration
	delay, w.backoff = zmq.NextReopen(w.backoff)
	if !w.logged[reason] && logf != nil {
		w.logged[reason] = true
		logf("%s", zmq.RefusedMessage(w.name, "connection", reason, delay))
	}
	if w.at.IsZero() {
		_ = w.sock.Disconnect(w.endpoint) // now: see go/node/reopen.go
	}
	w.at = now.Add(delay)
}

// close stops the monitor (before the socket is closed).
func (w *linkWatch) close() {
	if w == nil {
		return
	}
	_ = zmq.StopMonitor(w.sock)
	w.mon.Close()
}
