package zmq

/*
#include <zmq.h>
#include <stdlib.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// Events a Poller waits for or reports.
type Events int

const (
	PollIn  Events = C.ZMQ_POLLIN
	PollOut Events = C.ZMQ_POLLOUT
	PollErr Events = C.ZMQ_POLLERR
)

// Poller waits on several sockets at once (zmq_poll). It belongs to the
// goroutine that owns its sockets.
type Poller struct {
	sockets []*Socket
	events  []Events
}

// Add registers s for events and returns its index in Poll's result.
func (p *Poller) Add(s *Socket, events Events) int {
	p.sockets = append(p.sockets, s)
	p.events = append(p.events, events)
	return len(p.sockets) - 1
}

// Len is the number of registered sockets.
func (p *Poller) Len() int { return len(p.sockets) }

// Poll waits until one of the sockets is ready or timeout passes (negative:
// forever, 0: just look) and returns, per registered socket in Add order,
// the events that are ready (0: none). It retries after a signal, with the
// time left. ErrTerm means the context is going away.
func (p *Poller) Poll(timeout time.Duration) ([]Events, error) {
	n := len(p.sockets)
	if n == 0 {
		return nil, fmt.Errorf("zmq poll: no sockets")
	}
	// C memory: a zmq_pollitem_t holds a socket pointer (itself C memory).
	items := (*[1 << 20]C.zmq_pollitem_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.zmq_pollitem_t{}))))[:n:n]
	defer C.free(unsafe.Pointer(&items[0]))
	for i, s := range p.sockets {
		if s.p == nil {
			return nil, ErrClosed
		}
		items[i] = C.zmq_pollitem_t{socket: s.p, events: C.short(p.events[i])}
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		ms := C.long(-1)
		if timeout >= 0 {
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			ms = C.long((left + time.Millisecond - 1) / time.Millisecond)
		}
		rc, err := C.zmq_poll(&items[0], C.int(n), ms)
		if rc < 0 {
			e := lastError("poll", err)
			if errors.Is(e, ErrInterrupted) {
				continue
			}
			return nil, e
		}
		out := make([]Events, n)
		for i := range items {
			out[i] = Events(items[i].revents)
		}
		return out, nil
	}
}
