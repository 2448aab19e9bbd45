// Package zmq is a small, explicit cgo binding to libzmq (4.3): contexts,
// sockets, multipart send and receive, the socket options zmqnode sets, a
// poller, socket monitors, Z85 and CURVE keys.
//
// It binds only what the node uses, so every call can be read next to the
// libzmq man page it wraps (zmq_socket(3), zmq_setsockopt(3), ...).
//
// # Threads
//
// A Context is safe for concurrent use. A Socket is not: libzmq sockets
// must not be used from two threads at once, so each Socket belongs to one
// goroutine at a time (the goroutine that made it, or one it was handed to
// with a happens-before edge such as a channel send or starting the
// goroutine). Moving between OS threads is fine; concurrent calls are not.
//
// # Memory
//
// No C code keeps a Go pointer: frames are copied into libzmq by zmq_send
// and copied out of a zmq_msg_t (allocated in C memory) on receive, so the
// byte slices this package returns are ordinary Go memory the caller owns.
// A large frame's C pages are released as they are copied, so a received
// dataset costs about one copy, not two.
//
// # Errors
//
// Failures are *Error values that wrap the errno, so callers test them
// with errors.Is(err, ErrAgain) (nothing to receive, or a full queue, in a
// non-blocking call or after RCVTIMEO/SNDTIMEO), errors.Is(err, ErrTerm)
// (the context was shut down: close the socket) and so on.
package zmq

/*
#cgo pkg-config: libzmq
#include <zmq.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

// zmqgo_recv receives one frame into msg (C memory, initialised here) and
// reports whether more frames follow. Kept in C so a zmq_msg_t never lives
// in Go memory.
static int zmqgo_recv(void *sock, zmq_msg_t *msg, int flags, int *more) {
	zmq_msg_init(msg);
	int rc = zmq_msg_recv(msg, sock, flags);
	if (rc < 0) {
		int err = zmq_errno();
		zmq_msg_close(msg);
		errno = err;
		return -1;
	}
	*more = zmq_msg_more(msg);
	return rc;
}

// zmqgo_copy_out copies a received frame's n bytes into dst (Go memory,
// not kept). A large frame is copied in steps and, when libzmq does not
// share its buffer, each step's whole pages go back to the OS at once
// (MADV_DONTNEED), so the frame is held about once, not twice, while it
// moves into Go. Only pages strictly inside the data are released: the
// buffer's header (refcount, free function) sits before it, and the
// caller closes the message right after, reading nothing more from it.
static void zmqgo_copy_out(zmq_msg_t *msg, void *dst, size_t n, size_t release_min) {
	char *src = zmq_msg_data(msg);
	if (n < release_min || zmq_msg_get(msg, ZMQ_SHARED) != 0) {
		memcpy(dst, src, n);
		return;
	}
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t released = ((uintptr_t)src + page - 1) & ~(page - 1);
	const size_t step = (size_t)4 << 20;
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		memcpy((char *)dst + off, src + off, k);
		uintptr_t end = ((uintptr_t)(src + off + k)) & ~(page - 1);
		if (end > released) {
			madvise((void *)released, end - released, MADV_DONTNEED);
			released = end;
		}
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"time"
	"unsafe"
)

// Errors worth telling apart. Test with errors.Is.
var (
	// ErrAgain: the call would block (DONTWAIT, or a timeout expired).
	ErrAgain = syscall.EAGAIN
	// ErrTerm: the socket's context was terminated or shut down.
	ErrTerm = syscall.Errno(C.ETERM)
	// ErrHostUnreach: ROUTER_MANDATORY and the routing id is not connected.
	ErrHostUnreach = syscall.EHOSTUNREACH
	// ErrInterrupted: a blocking call was interrupted by a signal. Send,
	// Recv and Poll retry it themselves.
	ErrInterrupted = syscall.EINTR
	// ErrClosed: the Socket or Context was already closed on the Go side.
	ErrClosed = errors.New("zmq: socket or context closed")
)

// Error is a failed libzmq call: which operation and the errno it set.
type Error struct {
	Op    string
	Errno syscall.Errno
}

func (e *Error) Error() string {
	return fmt.Sprintf("zmq %s: %s", e.Op, C.GoString(C.zmq_strerror(C.int(e.Errno))))
}

// Unwrap lets errors.Is(err, ErrAgain) and friends see the errno.
func (e *Error) Unwrap() error { return e.Errno }

func lastError(op string, errno error) error {
	if en, ok := errno.(syscall.Errno); ok && en != 0 {
		return &Error{Op: op, Errno: en}
	}
	return &Error{Op: op, Errno: syscall.Errno(C.zmq_errno())}
}

// Version is libzmq's version (major, minor, patch).
func Version() (major, minor, patch int) {
	var a, b, c C.int
	C.zmq_version(&a, &b, &c)
	return int(a), int(b), int(c)
}

// Has reports whether libzmq was built with a capability, e.g. "curve".
func Has(capability string) bool {
	cs := C.CString(capability)
	defer C.free(unsafe.Pointer(cs))
	return C.zmq_has(cs) != 0
}

// Type is a socket type (zmq_socket(3)).
type Type int

// Socket types used by zmqnode (and PAIR, for monitors).
const (
	PAIR   Type = C.ZMQ_PAIR
	PUB    Type = C.ZMQ_PUB
	SUB    Type = C.ZMQ_SUB
	REQ    Type = C.ZMQ_REQ
	REP    Type = C.ZMQ_REP
	DEALER Type = C.ZMQ_DEALER
	ROUTER Type = C.ZMQ_ROUTER
	PULL   Type = C.ZMQ_PULL
	PUSH   Type = C.ZMQ_PUSH
)

func (t Type) String() string {
	names := map[Type]string{PAIR: "PAIR", PUB: "PUB", SUB: "SUB", REQ: "REQ", REP: "REP",
		DEALER: "DEALER", ROUTER: "ROUTER", PULL: "PULL", PUSH: "PUSH"}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Flag modifies a send or receive.
type Flag int

const (
	// DontWait: fail with ErrAgain instead of blocking.
	DontWait Flag = C.ZMQ_DONTWAIT
	// SndMore is used internally by SendMessage; callers pass frames instead.
	sndMore Flag = C.ZMQ_SNDMORE
)

// Context owns libzmq's I/O threads and every socket made from it.
// It is safe for concurrent use.
type Context struct {
	p unsafe.Pointer
}

// NewContext makes a context (zmq_ctx_new).
func NewContext() (*Context, error) {
	p, err := C.zmq_ctx_new()
	if p == nil {
		return nil, lastError("ctx_new", err)
	}
	return &Context{p: p}, nil
}

// Shutdown makes every blocking call on the context's sockets fail with
// ErrTerm (zmq_ctx_shutdown); sockets must still be closed. Safe to call
// from any goroutine.
func (c *Context) Shutdown() error {
	if c.p == nil {
		return ErrClosed
	}
	if rc, err := C.zmq_ctx_shutdown(c.p); rc != 0 {
		return lastError("ctx_shutdown", err)
	}
	return nil
}

// Term destroys the context (zmq_ctx_term). It blocks until every socket
// made from it is closed, and then while a closed socket still has
// messages to deliver within its LINGER. libzmq's default LINGER is -1
// (forever): set LINGER on every socket (zmqnode uses 0 or 200 ms), or
// Term can hang on a peer that is gone. Goroutines blocked on a socket
// see ErrTerm once Shutdown or Term has begun, and must close it.
func (c *Context) Term() error {
	if c.p == nil {
		return ErrClosed
	}
	for {
		rc, err := C.zmq_ctx_term(c.p)
		if rc == 0 {
			c.p = nil
			return nil
		}
		if errors.Is(lastError("", err), ErrInterrupted) {
			continue
		}
		return lastError("ctx_term", err)
	}
}

// Socket is one libzmq socket. Not safe for concurrent use: see the
// package documentation.
type Socket struct {
	p   unsafe.Pointer
	typ Type
	msg *C.zmq_msg_t // receive buffer, C memory
}

// NewSocket makes a socket of type t (zmq_socket).
func (c *Context) NewSocket(t Type) (*Socket, error) {
	if c.p == nil {
		return nil, ErrClosed
	}
	p, err := C.zmq_socket(c.p, C.int(t))
	if p == nil {
		return nil, lastError("socket", err)
	}
	msg := (*C.zmq_msg_t)(C.malloc(C.size_t(unsafe.Sizeof(C.zmq_msg_t{}))))
	return &Socket{p: p, typ: t, msg: msg}, nil
}

// Type is the socket's type.
func (s *Socket) Type() Type { return s.typ }

// Close closes the socket (zmq_close); queued outgoing messages are kept
// for at most LINGER. Closing twice is a no-op.
func (s *Socket) Close() error {
	if s.p == nil {
		return nil
	}
	rc, err := C.zmq_close(s.p)
	C.free(unsafe.Pointer(s.msg))
	s.p, s.msg = nil, nil
	if rc != 0 {
		return lastError("close", err)
	}
	return nil
}

func (s *Socket) endpointCall(op string, endpoint string,
	f func(unsafe.Pointer, *C.char) (C.int, error)) error {
	if s.p == nil {
		return ErrClosed
	}
	cs := C.CString(endpoint)
	defer C.free(unsafe.Pointer(cs))
	for {
		rc, err := f(s.p, cs)
		if rc == 0 {
			return nil
		}
		// EINTR: a signal (the Go runtime's preemption SIGURG, say) reached
		// the thread while libzmq processed the socket's pending commands,
		// before it did anything: the call is safe to make again.
		if errors.Is(lastError("", err), ErrInterrupted) {
			continue
		}
		e := lastError(op, err).(*Error)
		return fmt.Errorf("%s %s: %w", op, endpoint, e)
	}
}

// Bind accepts connections on endpoint (zmq_bind), e.g. "tcp://127.0.0.1:9000"
// or "tcp://127.0.0.1:*" (then LastEndpoint says which port).
func (s *Socket) Bind(endpoint string) error {
	return s.endpointCall("bind", endpoint, func(p unsafe.Pointer, e *C.char) (C.int, error) {
		rc, err := C.zmq_bind(p, e)
		return rc, err
	})
}

// Connect connects to endpoint (zmq_connect); the connection is made, and
// remade, in the background.
func (s *Socket) Connect(endpoint string) error {
	return s.endpointCall("connect", endpoint, func(p unsafe.Pointer, e *C.char) (C.int, error) {
		rc, err := C.zmq_connect(p, e)
		return rc, err
	})
}

// Unbind stops accepting on endpoint (zmq_unbind; use LastEndpoint for a
// wildcard bind).
func (s *Socket) Unbind(endpoint string) error {
	return s.endpointCall("unbind", endpoint, func(p unsafe.Pointer, e *C.char) (C.int, error) {
		rc, err := C.zmq_unbind(p, e)
		return rc, err
	})
}

// Disconnect drops the connection to endpoint (zmq_disconnect).
func (s *Socket) Disconnect(endpoint string) error {
	return s.endpointCall("disconnect", endpoint, func(p unsafe.Pointer, e *C.char) (C.int, error) {
		rc, err := C.zmq_disconnect(p, e)
		return rc, err
	})
}

// Send sends one message of one or more frames, atomically: the peer gets
// all of them or none. With DontWait a full queue (or, with IMMEDIATE, no
// connected peer) is ErrAgain and nothing was sent. Once the first frame
// is accepted libzmq accepts the rest (the high-water mark counts whole
// messages), so a message is never sent in part.
func (s *Socket) Send(frames [][]byte, flags Flag) error {
	if s.p == nil {
		return ErrClosed
	}
	if len(frames) == 0 {
		return fmt.Errorf("zmq send: a message needs at least one frame")
	}
	for i, f := range frames {
		fl := flags
		if i < len(frames)-1 {
			fl |= sndMore
		}
		if err := s.sendFrame(f, fl); err != nil {
			return err
		}
	}
	return nil
}

func (s *Socket) sendFrame(f []byte, flags Flag) error {
	var ptr unsafe.Pointer
	if len(f) > 0 {
		ptr = unsafe.Pointer(&f[0]) // zmq_send copies; the pointer is not kept
	}
	for {
		rc, err := C.zmq_send(s.p, ptr, C.size_t(len(f)), C.int(flags))
		if rc >= 0 {
			return nil
		}
		e := lastError("send", err)
		if errors.Is(e, ErrInterrupted) {
			continue
		}
		return e
	}
}

// Recv receives one whole message (every frame). With DontWait and nothing
// waiting it returns ErrAgain; with RCVTIMEO set, ErrAgain after the timeout.
// The frames are copies the caller owns.
func (s *Socket) Recv(flags Flag) ([][]byte, error) {
	if s.p == nil {
		return nil, ErrClosed
	}
	var frames [][]byte
	for {
		f, more, err := s.recvFrame(flags)
		if err != nil {
			if len(frames) > 0 {
				// libzmq delivers a message's frames together; a failure in
				// the middle means the context is going away.
				return nil, fmt.Errorf("zmq recv: message cut after %d frames: %w", len(frames), err)
			}
			return nil, err
		}
		frames = append(frames, f)
		if !more {
			return frames, nil
		}
	}
}

// releaseMinBytes: a received frame this large is handed back to the OS
// page by page as it is copied out of libzmq (zmqgo_copy_out). Far above
// libzmq's decoder buffer (8 KiB), so such a frame always has a buffer of
// its own.
const releaseMinBytes = 1 << 20

func (s *Socket) recvFrame(flags Flag) ([]byte, bool, error) {
	var more C.int
	for {
		rc, err := C.zmqgo_recv(s.p, s.msg, C.int(flags), &more)
		if rc < 0 {
			e := lastError("recv", err)
			if errors.Is(e, ErrInterrupted) {
				continue
			}
			return nil, false, e
		}
		n := C.zmq_msg_size(s.msg)
		var data []byte
		if n > 0 {
			data = make([]byte, int(n))
			C.zmqgo_copy_out(s.msg, unsafe.Pointer(&data[0]), n, releaseMinBytes)
		} else {
			data = []byte{}
		}
		C.zmq_msg_close(s.msg)
		return data, more != 0, nil
	}
}

// Option is a socket option number (zmq_setsockopt(3)).
type Option int

// Options zmqnode sets or reads.
const (
	Linger            Option = C.ZMQ_LINGER
	SndHWM            Option = C.ZMQ_SNDHWM
	RcvHWM            Option = C.ZMQ_RCVHWM
	RoutingID         Option = C.ZMQ_ROUTING_ID
	Immediate         Option = C.ZMQ_IMMEDIATE
	RouterMandatory   Option = C.ZMQ_ROUTER_MANDATORY
	Subscribe         Option = C.ZMQ_SUBSCRIBE
	Unsubscribe       Option = C.ZMQ_UNSUBSCRIBE
	RcvTimeo          Option = C.ZMQ_RCVTIMEO
	SndTimeo          Option = C.ZMQ_SNDTIMEO
	ReconnectIvl      Option = C.ZMQ_RECONNECT_IVL
	ReconnectIvlMax   Option = C.ZMQ_RECONNECT_IVL_MAX
	MaxMsgSize        Option = C.ZMQ_MAXMSGSIZE // int64
	IPv6              Option = C.ZMQ_IPV6
	TCPKeepalive      Option = C.ZMQ_TCP_KEEPALIVE
	TCPKeepaliveIdle  Option = C.ZMQ_TCP_KEEPALIVE_IDLE
	TCPKeepaliveCnt   Option = C.ZMQ_TCP_KEEPALIVE_CNT
	TCPKeepaliveIntvl Option = C.ZMQ_TCP_KEEPALIVE_INTVL
	CurveServer       Option = C.ZMQ_CURVE_SERVER
	CurvePublicKey    Option = C.ZMQ_CURVE_PUBLICKEY
	CurveSecretKey    Option = C.ZMQ_CURVE_SECRETKEY
	CurveServerKey    Option = C.ZMQ_CURVE_SERVERKEY
	ZapDomain         Option = C.ZMQ_ZAP_DOMAIN
	LastEndpoint      Option = C.ZMQ_LAST_ENDPOINT // string, read only
	RcvMore           Option = C.ZMQ_RCVMORE       // read only
	Mechanism         Option = C.ZMQ_MECHANISM     // read only: MechanismNull, ...
	EventsOption      Option = C.ZMQ_EVENTS        // read only: PollIn | PollOut
)

// Values of the MECHANISM option.
const (
	MechanismNull  = int(C.ZMQ_NULL)
	MechanismPlain = int(C.ZMQ_PLAIN)
	MechanismCurve = int(C.ZMQ_CURVE)
)

func (s *Socket) setRaw(opt Option, ptr unsafe.Pointer, size uintptr) error {
	if s.p == nil {
		return ErrClosed
	}
	if rc, err := C.zmq_setsockopt(s.p, C.int(opt), ptr, C.size_t(size)); rc != 0 {
		return fmt.Errorf("setsockopt %d: %w", int(opt), lastError("setsockopt", err))
	}
	return nil
}

// SetInt sets an int option (LINGER, SNDHWM, IMMEDIATE, CURVE_SERVER, ...).
func (s *Socket) SetInt(opt Option, value int) error {
	if opt == MaxMsgSize {
		return s.SetInt64(opt, int64(value))
	}
	v := C.int(value)
	return s.setRaw(opt, unsafe.Pointer(&v), unsafe.Sizeof(v))
}

// SetInt64 sets an int64 option (MAXMSGSIZE; -1 means no limit).
func (s *Socket) SetInt64(opt Option, value int64) error {
	v := C.int64_t(value)
	return s.setRaw(opt, unsafe.Pointer(&v), unsafe.Sizeof(v))
}

// SetBytes sets a binary or string option (ROUTING_ID, SUBSCRIBE, CURVE
// keys as 40-character Z85 or 32 raw bytes, ZAP_DOMAIN). The value is
// copied into C memory for the call.
func (s *Socket) SetBytes(opt Option, value []byte) error {
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	return s.setRaw(opt, p, uintptr(len(value)))
}

// SetString is SetBytes for text options. CURVE keys given as Z85 text are
// passed with their terminating NUL, as zmq_setsockopt(3) requires for the
// 40-character form.
func (s *Socket) SetString(opt Option, value string) error {
	switch opt {
	case CurvePublicKey, CurveSecretKey, CurveServerKey:
		b := append([]byte(value), 0)
		return s.SetBytes(opt, b)
	}
	return s.SetBytes(opt, []byte(value))
}

// SetDuration sets a millisecond option (LINGER, RCVTIMEO, SNDTIMEO,
// RECONNECT_IVL...); a negative duration is -1 (infinite).
func (s *Socket) SetDuration(opt Option, d time.Duration) error {
	if d < 0 {
		return s.SetInt(opt, -1)
	}
	return s.SetInt(opt, int(d/time.Millisecond))
}

// GetInt reads an int option (RCVMORE, MECHANISM, EVENTS, LINGER, ...).
func (s *Socket) GetInt(opt Option) (int, error) {
	if s.p == nil {
		return 0, ErrClosed
	}
	if opt == MaxMsgSize {
		v, err := s.GetInt64(opt)
		return int(v), err
	}
	var v C.int
	size := C.size_t(unsafe.Sizeof(v))
	if rc, err := C.zmq_getsockopt(s.p, C.int(opt), unsafe.Pointer(&v), &size); rc != 0 {
		return 0, fmt.Errorf("getsockopt %d: %w", int(opt), lastError("getsockopt", err))
	}
	return int(v), nil
}

// GetInt64 reads an int64 option (MAXMSGSIZE).
func (s *Socket) GetInt64(opt Option) (int64, error) {
	if s.p == nil {
		return 0, ErrClosed
	}
	var v C.int64_t
	size := C.size_t(unsafe.Sizeof(v))
	if rc, err := C.zmq_getsockopt(s.p, C.int(opt), unsafe.Pointer(&v), &size); rc != 0 {
		return 0, fmt.Errorf("getsockopt %d: %w", int(opt), lastError("getsockopt", err))
	}
	return int64(v), nil
}

// GetBytes reads a binary or string option (ROUTING_ID, LAST_ENDPOINT,
// ZAP_DOMAIN); a string option's terminating NUL is removed.
func (s *Socket) GetBytes(opt Option) ([]byte, error) {
	if s.p == nil {
		return nil, ErrClosed
	}
	buf := (*C.char)(C.malloc(1024))
	defer C.free(unsafe.Pointer(buf))
	size := C.size_t(1024)
	if rc, err := C.zmq_getsockopt(s.p, C.int(opt), unsafe.Pointer(buf), &size); rc != 0 {
		return nil, fmt.Errorf("getsockopt %d: %w", int(opt), lastError("getsockopt", err))
	}
	b := C.GoBytes(unsafe.Pointer(buf), C.int(size))
	switch opt {
	case LastEndpoint, ZapDomain:
		if n := len(b); n > 0 && b[n-1] == 0 {
			b = b[:n-1]
		}
	}
	return b, nil
}

// LastEndpoint is the endpoint last bound or connected, with a wildcard
// port resolved ("tcp://127.0.0.1:45321").
func (s *Socket) LastEndpoint() (string, error) {
	b, err := s.GetBytes(LastEndpoint)
	return string(b), err
}
