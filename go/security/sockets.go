package security

import (
	"fmt"
	"time"

	"zmqnode/zmq"
)

// DefaultServerLinger is how long a closing server socket may still try to
// deliver what it queued (sockets.LINGER_MS in the Python node).
const DefaultServerLinger = 200 * time.Millisecond

// Sockets makes a node's sockets with the cluster's security, as
// zmqnode/transport/sockets.py does: components ask it for a bound server
// or a connected client and never set CURVE options themselves, so no
// socket is opened without the cluster's security. Keys nil: --insecure.
type Sockets struct {
	Ctx  *zmq.Context
	Keys *NodeKeys
}

// ServerOptions tunes Sockets.Server. Zero values are the Python defaults.
type ServerOptions struct {
	// Linger: nil means DefaultServerLinger.
	Linger *time.Duration
	// MaxMessageBytes > 0 sets MAXMSGSIZE: a peer sending a larger frame
	// is disconnected by libzmq.
	MaxMessageBytes int64
}

// ClientOptions tunes Sockets.Client. Zero values are the Python defaults.
type ClientOptions struct {
	// Linger: nil means 0 (drop what is queued when the socket closes).
	Linger *time.Duration
	// SendHWM > 0 bounds the send queue (messages).
	SendHWM int
	// Immediate: sends fail with zmq.ErrAgain while the peer is not
	// connected, instead of queueing for a peer that may never come.
	Immediate       bool
	MaxMessageBytes int64
}

// BindError is a server socket that could not bind (usually: the port is
// in use).
type BindError struct {
	Endpoint string
	Err      error
}

func (e *BindError) Error() string { return fmt.Sprintf("cannot bind %s: %v", e.Endpoint, e.Err) }
func (e *BindError) Unwrap() error { return e.Err }

// Server is a socket bound to endpoint, a CURVE server admitting the keys
// of ZAP domain (Peers or Clients). Start the Gatekeeper first.
func (s *Sockets) Server(t zmq.Type, endpoint, domain string, opts ServerOptions) (*zmq.Socket, error) {
	linger := DefaultServerLinger
	if opts.Linger != nil {
		linger = *opts.Linger
	}
	sock, err := s.Ctx.NewSocket(t)
	if err != nil {
		return nil, err
	}
	err = sock.SetDuration(zmq.Linger, linger)
	if err == nil && opts.MaxMessageBytes > 0 {
		err = sock.SetInt64(zmq.MaxMsgSize, opts.MaxMessageBytes)
	}
	if err == nil {
		err = MakeServer(sock, s.Keys, domain)
	}
	if err != nil {
		sock.Close()
		return nil, err
	}
	if err := sock.Bind(endpoint); err != nil {
		sock.SetInt(zmq.Linger, 0)
		sock.Close()
		return nil, &BindError{Endpoint: endpoint, Err: err}
	}
	return sock, nil
}

// Client is a socket connected to endpoint as a member of the cluster
// (presenting the node's own key).
func (s *Sockets) Client(t zmq.Type, endpoint string, opts ClientOptions) (*zmq.Socket, error) {
	var linger time.Duration
	if opts.Linger != nil {
		linger = *opts.Linger
	}
	sock, err := s.Ctx.NewSocket(t)
	if err != nil {
		return nil, err
	}
	err = sock.SetDuration(zmq.Linger, linger)
	if err == nil && opts.SendHWM > 0 {
		err = sock.SetInt(zmq.SndHWM, opts.SendHWM)
	}
	if err == nil && opts.Immediate {
		err = sock.SetInt(zmq.Immediate, 1)
	}
	if err == nil && opts.MaxMessageBytes > 0 {
		err = sock.SetInt64(zmq.MaxMsgSize, opts.MaxMessageBytes)
	}
	if err == nil {
		err = MakeClient(sock, s.Keys)
	}
	if err == nil {
		err = sock.Connect(endpoint)
	}
	if err != nil {
		sock.SetInt(zmq.Linger, 0)
		sock.Close()
		return nil, err
	}
	return sock, nil
}
