package httpinfer

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The connection layer's timeouts, as transport/http.py keeps them:
//
//   - idle: a connection with no request in progress (before the first one
//     too) is closed after IdleTimeout without an answer;
//   - request: from a request's first byte to its last, RequestTimeout;
//     past it, 408 and close, whether the head or the body is late;
//   - an answer being computed is never timed out here (the node's
//     deadlines bound it), but one that makes no progress to the client
//     for IdleTimeout is abandoned.
//
// net/http's own timeouts cannot say this (its first request has no idle
// phase, and a late head is closed without a 408), so they are off and
// trackedConn sets the socket's deadlines itself. net/http still calls
// SetReadDeadline: a deadline in the past aborts a pending read and is
// honoured; the zero deadline it sets otherwise is replaced by ours.

type phase int32

const (
	phaseIdle phase = iota // no request in progress
	phaseHead              // a request's first bytes have come, not its whole head
	phaseBody              // the handler has the head and reads the body
	phaseWait              // the request is whole: waiting for the node, answering
)

type connKey struct{}

var requestTimeoutAnswer = []byte("HTTP/1.1 408 Request Timeout\r\nServer: zmqnode\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 29\r\nConnection: close\r\n\r\n" +
	"request not received in time\n")

type trackedConn struct {
	net.Conn
	l      *connLimiter
	limits Limits
	once   sync.Once

	mu        sync.Mutex
	phase     phase
	idleSince time.Time
	reqStart  time.Time
	aborting  bool // net/http set a deadline in the past to stop a read
	failed    bool // a 408 was written

	fix     targetFixer // what net/http reads (target.go); Read's alone but originals
	readErr error       // the socket's error, returned once fix.out is read
}

func (c *trackedConn) deadline() time.Time {
	switch c.phase {
	case phaseIdle:
		return c.idleSince.Add(c.limits.IdleTimeout)
	case phaseHead, phaseBody:
		return c.reqStart.Add(c.limits.RequestTimeout)
	}
	return time.Time{}
}

// setPhase moves the connection on; the deadline of a read in progress
// (net/http's background read) follows.
func (c *trackedConn) setPhase(p phase) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	switch p {
	case phaseIdle:
		c.idleSince = now
	case phaseBody:
		if c.phase == phaseIdle { // a pipelined head, parsed without a read
			c.reqStart = now
		}
	}
	c.phase = p
	if !c.aborting {
		_ = c.Conn.SetReadDeadline(c.deadline())
	}
}

// Read gives net/http the request stream as targetFixer passes it on.
func (c *trackedConn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		if len(c.fix.out) > 0 {
			n := copy(b, c.fix.out)
			c.fix.out = c.fix.out[n:]
			c.mu.Unlock()
			return n, nil
		}
		c.mu.Unlock()
		if c.readErr != nil {
			err := c.readErr
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				return 0, err
			}
			c.readErr = nil // a deadline: a later read may succeed
			return 0, err
		}
		n, err := c.readRaw(b)
		c.mu.Lock()
		if n > 0 {
			c.fix.feed(b[:n])
		}
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				c.fix.flush() // the stream ended: a line held back is all there is
			}
			c.readErr = err
		}
		c.mu.Unlock()
	}
}

// originalTarget is the request target the client sent for one net/http
// read as target (targetFixer).
func (c *trackedConn) originalTarget(target string) string {
	if c == nil {
		return target
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fix.original(target)
}

func (c *trackedConn) readRaw(b []byte) (int, error) {
	c.mu.Lock()
	if !c.aborting {
		_ = c.Conn.SetReadDeadline(c.deadline())
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 && c.phase == phaseIdle {
		c.phase, c.reqStart = phaseHead, time.Now()
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() && !c.aborting && c.phase == phaseHead && !c.failed {
		c.failed = true
		_ = c.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Conn.Write(requestTimeoutAnswer)
	}
	return n, err
}

// Write gives each write IdleTimeout to make progress.
func (c *trackedConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.limits.IdleTimeout))
	return c.Conn.Write(b)
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborting = !t.IsZero()
	if c.aborting {
		return c.Conn.SetReadDeadline(t)
	}
	return nil
}

func (c *trackedConn) SetWriteDeadline(t time.Time) error { return nil }

func (c *trackedConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// CloseWrite lets net/http half-close before it closes (no reset). The
// connection's slot is given back now: after an error answer net/http
// waits 500 ms before closing, and a burst of malformed requests must not
// hold every slot meanwhile.
func (c *trackedConn) CloseWrite() error {
	c.release()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

func (c *trackedConn) release() { c.once.Do(func() { c.l.open.Add(-1) }) }

// connLimiter closes a connection past max at once, after a best-effort
// 503 (transport/http.py's _refuse), and counts the open ones.
type connLimiter struct {
	net.Listener
	max    int64
	limits Limits
	open   atomic.Int64
}

var tooManyConnections = []byte("HTTP/1.1 503 Service Unavailable\r\nserver: zmqnode\r\n" +
	"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\nconnection: close\r\n\r\n" +
	"too many connections\n")

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
			_, _ = c.Write(tooManyConnections)
			_ = c.Close()
			continue
		}
		return &trackedConn{Conn: c, l: l, limits: l.limits, idleSince: time.Now()}, nil
	}
}
