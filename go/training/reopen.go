package training

import (
	"fmt"
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
// again after ReopenFirst, doubling to ReopenMax until a handshake succeeds.

const (
	ReopenFirst = 200 * time.Millisecond
	ReopenMax   = 2 * time.Second
)

// refusedEvents: the handshake failures libzmq does not retry by itself.
const refusedEvents = zmq.EventHandshakeFailedAuth | zmq.EventHandshakeFailedProtocol

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
	mon, err := ctx(sock, zmq.EventHandshakeSucceeded|refusedEvents)
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
		case ev&refusedEvents != 0:
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
	reason := fmt.Sprintf("handshake error %#x", value)
	if ev == zmq.EventHandshakeFailedAuth {
		reason = fmt.Sprintf("ZAP status %d", value)
	}
	delay := w.backoff
	if delay == 0 {
		delay = ReopenFirst
	}
	w.backoff = 2 * delay
	if w.backoff > ReopenMax {
		w.backoff = ReopenMax
	}
	if !w.logged[reason] && logf != nil {
		w.logged[reason] = true
		logf("%s refused our connection (%s; our key is not on its allow-list yet?): "+
			"reopening it in %.1f s, then at most every %.0f s until it gets through",
			w.name, reason, delay.Seconds(), ReopenMax.Seconds())
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
