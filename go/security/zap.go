package security

import (
	"errors"
	"fmt"
	"log"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"zmqnode/zmq"
)

// ZAPEndpoint is where libzmq sends a context's authentication requests
// (ZeroMQ RFC 27).
const ZAPEndpoint = "inproc://zeromq.zap.01"

// MaxDenialsLogged bounds the refused keys logged (each once): a flood of
// strangers must not fill the log.
const MaxDenialsLogged = 256

// MakeServer makes a binding socket a CURVE server checked by ZAP domain
// (Peers or Clients) with the cluster's server keypair. Call before Bind.
// keys nil (--insecure): nothing, the socket stays NULL (plaintext).
func MakeServer(s *zmq.Socket, keys *NodeKeys, domain string) error {
	if keys == nil {
		return nil
	}
	if err := s.SetInt(zmq.CurveServer, 1); err != nil {
		return err
	}
	if err := s.SetString(zmq.CurveSecretKey, keys.ServerSecret); err != nil {
		return err
	}
	return s.SetString(zmq.ZapDomain, domain)
}

// MakeClient makes a connecting socket a CURVE client of the cluster,
// presenting the node's own keypair. Call before Connect. keys nil:
// plaintext.
func MakeClient(s *zmq.Socket, keys *NodeKeys) error {
	if keys == nil {
		return nil
	}
	return makeClient(s, keys.ServerPublic, keys.Public, keys.Secret)
}

// MakeClientWith is MakeClient for a client's keys (ClientKeys).
func MakeClientWith(s *zmq.Socket, keys *ClientKeys) error {
	if keys == nil {
		return nil
	}
	return makeClient(s, keys.ServerPublic, keys.Public, keys.Secret)
}

func makeClient(s *zmq.Socket, server, public, secret string) error {
	if err := s.SetString(zmq.CurveServerKey, server); err != nil {
		return err
	}
	if err := s.SetString(zmq.CurvePublicKey, public); err != nil {
		return err
	}
	return s.SetString(zmq.CurveSecretKey, secret)
}

// Mechanism is the socket's ZMTP security mechanism: "NULL", "PLAIN",
// "CURVE" or "OTHER".
func Mechanism(s *zmq.Socket) string {
	m, err := s.GetInt(zmq.Mechanism)
	switch {
	case err != nil:
		return "OTHER"
	case m == zmq.MechanismNull:
		return "NULL"
	case m == zmq.MechanismPlain:
		return "PLAIN"
	case m == zmq.MechanismCurve:
		return "CURVE"
	}
	return "OTHER"
}

// allowList is what each domain admits; swapped whole on a change so the
// ZAP goroutine never sees half of one.
type allowList struct {
	peers   map[string]bool
	clients map[string]bool // nil: any key
}

// Gatekeeper is the running ZAP handler of one context and the allow-lists
// it checks, with security.py's decisions: on Peers, a key in the member
// list; on Clients, any key with --client-auth none, else a member or
// client key; any other domain, nothing. SetMembers, Members and Denials
// are safe from any goroutine.
type Gatekeeper struct {
	clients []string // nil: --client-auth none
	allowed atomic.Pointer[allowList]
	members atomic.Pointer[[]string]
	denials atomic.Int64

	mu     sync.Mutex
	denied map[string]bool // domain + " " + key, logged once each
	logf   func(format string, args ...any)

	ctx     *zmq.Context
	control string
	done    chan error
	stopped bool
}

var gatekeeperSeq atomic.Uint64

// StartAuthenticator starts the ZAP handler for ctx: it binds
// inproc://zeromq.zap.01 before returning, so start it before any socket
// binds (libzmq lets a CURVE handshake through unchecked when no handler
// runs). keys nil (--insecure): no handler, (nil, nil). logf receives the
// refusal and change lines (nil: the standard logger).
func StartAuthenticator(ctx *zmq.Context, keys *NodeKeys, logf func(string, ...any)) (*Gatekeeper, error) {
	if keys == nil {
		return nil, nil
	}
	if logf == nil {
		logf = log.Printf
	}
	g := &Gatekeeper{
		clients: keys.Clients,
		denied:  map[string]bool{},
		logf:    logf,
		ctx:     ctx,
		control: fmt.Sprintf("inproc://zmqnode.zap.control.%d", gatekeeperSeq.Add(1)),
		done:    make(chan error, 1),
	}
	g.setMembers(keys.Members)
	zap, err := ctx.NewSocket(zmq.REP)
	if err != nil {
		return nil, err
	}
	control, err := ctx.NewSocket(zmq.PAIR)
	if err != nil {
		zap.Close()
		return nil, err
	}
	for _, s := range []*zmq.Socket{zap, control} {
		s.SetInt(zmq.Linger, 0)
	}
	if err := zap.Bind(ZAPEndpoint); err != nil {
		zap.Close()
		control.Close()
		return nil, fmt.Errorf("ZAP handler: %w (is another one running in this context?)", err)
	}
	if err := control.Bind(g.control); err != nil {
		zap.Close()
		control.Close()
		return nil, err
	}
	// The sockets now belong to the handler goroutine alone.
	go g.serve(zap, control)
	return g, nil
}

// SetMembers admits exactly these member keys (Z85) from now on: the
// membership changed. Connections already made are not dropped.
func (g *Gatekeeper) SetMembers(members []string) {
	old := g.Members()
	sorted := sortedUnique(members)
	if equal(old, sorted) {
		return
	}
	g.setMembers(sorted)
	g.logf("member allow-list now has %d keys", len(sorted))
}

func (g *Gatekeeper) setMembers(members []string) {
	sorted := sortedUnique(members)
	list := &allowList{peers: map[string]bool{}}
	for _, k := range sorted {
		list.peers[k] = true
	}
	if g.clients != nil {
		list.clients = map[string]bool{}
		for _, k := range sorted {
			list.clients[k] = true
		}
		for _, k := range g.clients {
			list.clients[k] = true
		}
	}
	g.members.Store(&sorted)
	g.allowed.Store(list)
}

// Members is the member allow-list now (sorted).
func (g *Gatekeeper) Members() []string {
	return append([]string(nil), *g.members.Load()...)
}

// Denials counts the connections refused so far (every refusal, not only
// the logged ones).
func (g *Gatekeeper) Denials() int64 { return g.denials.Load() }

// Allowed is the decision for a Z85 public key on a ZAP domain (what the
// handler answers for a CURVE handshake). Refusals are counted and logged.
func (g *Gatekeeper) Allowed(domain, key string) bool {
	list := g.allowed.Load()
	var admitted map[string]bool
	switch domain {
	case Peers:
		admitted = list.peers
	case Clients:
		if list.clients == nil {
			return true
		}
		admitted = list.clients
	default:
		return false // pyzmq: "Unknown domain", not counted
	}
	if admitted[key] {
		return true
	}
	g.denials.Add(1)
	g.mu.Lock()
	id := domain + " " + key
	first := !g.denied[id] && len(g.denied) < MaxDenialsLogged
	if first {
		g.denied[id] = true
	}
	g.mu.Unlock()
	if first {
		g.logf("refused a connection: public key %s is not allowed on %s", key, domain)
	}
	return false
}

// Stop ends the handler and closes its sockets. Call it before the
// context is terminated; afterwards CURVE handshakes in this context are
// no longer checked, so stop only when the sockets are closed too.
func (g *Gatekeeper) Stop() error {
	if g == nil || g.stopped {
		return nil
	}
	g.stopped = true
	s, err := g.ctx.NewSocket(zmq.PAIR)
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetInt(zmq.Linger, 0)
	if err := s.Connect(g.control); err != nil {
		return err
	}
	if err := s.Send([][]byte{[]byte("stop")}, 0); err != nil {
		return err
	}
	select {
	case err := <-g.done:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("ZAP handler did not stop within 5 s")
	}
}

// zapVersion is the only ZAP version (RFC 27).
var zapVersion = []byte("1.0")

func (g *Gatekeeper) serve(zap, control *zmq.Socket) {
	defer func() {
		zap.Close()
		control.Close()
	}()
	var p zmq.Poller
	p.Add(zap, zmq.PollIn)
	p.Add(control, zmq.PollIn)
	for {
		ready, err := p.Poll(-1)
		if err != nil {
			if errors.Is(err, zmq.ErrTerm) {
				err = nil
			}
			g.done <- err
			return
		}
		if ready[1] != 0 {
			g.done <- nil
			return
		}
		if ready[0] == 0 {
			continue
		}
		req, err := zap.Recv(zmq.DontWait)
		if errors.Is(err, zmq.ErrAgain) {
			continue
		}
		if err != nil {
			g.done <- err
			return
		}
		if err := zap.Send(g.answer(req), 0); err != nil {
			g.done <- err
			return
		}
	}
}

// answer is the ZAP reply to one request, with pyzmq's Authenticator's
// decisions: NULL admitted (a CURVE server never asks for it), CURVE by
// the allow-lists, anything else refused.
func (g *Gatekeeper) answer(req [][]byte) [][]byte {
	reply := func(id []byte, code, text, user string) [][]byte {
		return [][]byte{zapVersion, id, []byte(code), []byte(text), []byte(user), {}}
	}
	if len(req) < 6 {
		id := []byte{}
		if len(req) >= 2 {
			id = req[1]
		}
		return reply(id, "400", "Not enough frames", "")
	}
	version, id, domain, mechanism, credentials := req[0], req[1], string(req[2]), string(req[5]), req[6:]
	if string(version) != string(zapVersion) {
		return reply(id, "400", "Invalid version", "")
	}
	switch mechanism {
	case "NULL":
		return reply(id, "200", "OK", "anonymous")
	case "CURVE":
		if len(credentials) != 1 || len(credentials[0]) != 32 {
			return reply(id, "400", "Invalid credentials", "")
		}
		key, err := zmq.Z85Encode(credentials[0])
		if err != nil {
			return reply(id, "400", "Invalid credentials", "")
		}
		if domain == "" {
			domain = "*"
		}
		if g.Allowed(domain, key) {
			return reply(id, "200", "OK", key)
		}
		if domain != Peers && domain != Clients {
			return reply(id, "400", "Unknown domain", "")
		}
		return reply(id, "400", "Unknown key", "")
	}
	return reply(id, "400", "NO ACCESS", "")
}

func sortedUnique(keys []string) []string {
	out := append([]string(nil), keys...)
	sort.Strings(out)
	j := 0
	for i, k := range out {
		if i == 0 || k != out[j-1] {
			out[j] = k
			j++
		}
	}
	return out[:j]
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
