// Package httpinfer is the HTTP inference port of a node (docs/HTTP.md,
// port P+5000): the Open Inference Protocol routes of the Python node's
// zmqnode/inference_http.py and zmqnode/oip.py over net/http.
//
// An infer call becomes a PREDICT and a model's metadata an INFO, handed to
// the node's own request dispatch on its loop goroutine (Links.Submit,
// Links.Dispatch): the same micro-batches, linearizable reads and
// admission bounds as the ZeroMQ client port. The answer comes back through
// a replies.Replier to the HTTP goroutine, which encodes it. Parsing and
// encoding happen on HTTP goroutines, never on the loop.
package httpinfer

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"zmqnode/pyfmt"

	"zmqnode/replies"
	"zmqnode/wire"
)

// Endpoints: the metrics label of a request (a fixed few, never a model id).
const (
	EndpointLive       = "live"
	EndpointReady      = "ready"
	EndpointServer     = "server"
	EndpointModel      = "model"
	EndpointModelReady = "model_ready"
	EndpointInfer      = "infer"
	EndpointOther      = "other"
)

// Defaults of Limits (docs/HTTP.md, transport/http.py's HttpLimits).
const (
	DefaultMaxBodyBytes   = 512 << 20 // --max-request-bytes
	DefaultMaxHeaderBytes = 16384     // request line and headers: 431 above
	DefaultMaxConnections = 256
	DefaultIdleTimeout    = 60 * time.Second // --http-idle-timeout
	DefaultRequestTimeout = 30 * time.Second // --http-request-timeout
	// DefaultReplyTimeout is how long a request waits for the loop's answer
	// before a 504. The node answers parked requests by its own deadline
	// (--request-timeout, 30 s: TIMEOUT, also a 504); this is a safety net
	// for an answer that never comes, a little later.
	DefaultReplyTimeout = 40 * time.Second
)

// Limits bound one server; a zero field takes its default.
type Limits struct {
	MaxBodyBytes   int64
	MaxHeaderBytes int
	MaxConnections int
	IdleTimeout    time.Duration
	RequestTimeout time.Duration
	ReplyTimeout   time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	if l.ReplyTimeout <= 0 {
		l.ReplyTimeout = DefaultReplyTimeout
	}
	return l
}

// Links are what the server needs from the node.
type Links struct {
	// Submit runs fn on the node's loop goroutine.
	Submit func(fn func())
	// Dispatch handles a client request (PREDICT, INFO) on the loop, as one
	// from the client ROUTER; it answers through reply, now or later. Blobs
	// given to reply.OK must not change afterwards (they are encoded on
	// the HTTP goroutine).
	Dispatch func(req *wire.Object, blobs [][]byte, reply replies.Replier)
	// Token is the cluster's bearer token (KEYS/http.token:
	// security.EnsureHTTPToken); "" means no token (--insecure), which
	// Start refuses on a non-loopback host.
	Token string
	// Logf logs internal errors (nil: none).
	Logf func(string, ...any)
	// NodeID names the node in messages ("node 127.0.0.1:9000 ...").
	NodeID string
	// Version is the server version of GET /v2.
	Version string
	// TaskOf is a model's task if this node has applied it, else "" (on
	// the loop).
	TaskOf func(modelID string) string
	// IsReady: this node knows a leader and has applied every entry it
	// knows committed (on the loop).
	IsReady func() bool
	// OnAnswered counts an answered request (any goroutine):
	// metrics.NodeMetrics.HTTPDone.
	OnAnswered func(endpoint string, status int, seconds float64)
	Limits     Limits
}

// Server serves the OIP endpoints until Close.
type Server struct {
	links    Links
	limits   Limits
	srv      *http.Server
	listener *connLimiter
	done     chan struct{}

	mu      sync.Mutex
	waiting map[*httpReplier]struct{}
	closing bool
}

// Start binds host:port (0: any free port, see Addr) and serves in the
// background.
func Start(host string, port int, links Links) (*Server, error) {
	if links.Token == "" && !isLoopback(host) {
		return nil, fmt.Errorf("HTTP inference on %s needs the bearer token (KEYS/http.token) off loopback: bind 127.0.0.1, or turn HTTP off with --http-port 0", host)
	}
	if links.Submit == nil || links.Dispatch == nil {
		return nil, errors.New("httpinfer: Links.Submit and Links.Dispatch are required")
	}
	limits := links.Limits.withDefaults()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("cannot open HTTP inference on %s:%d: %w. Choose another --http-port (0 turns it off)", host, port, err)
	}
	s := &Server{
		links:    links,
		limits:   limits,
		listener: &connLimiter{Listener: ln, max: int64(limits.MaxConnections), limits: limits},
		done:     make(chan struct{}),
		waiting:  map[*httpReplier]struct{}{},
	}
	s.srv = &http.Server{
		Handler: s,
		// No net/http timeouts: the connections keep their own (conn.go),
		// which net/http's cannot express (idle before the first request,
		// a 408 for a request head that does not arrive).
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		// net/http reads up to MaxHeaderBytes + 4096 before it answers 431.
		MaxHeaderBytes: max(limits.MaxHeaderBytes-4096, 1024),
		ErrorLog:       log.New(io.Discard, "", 0), // a client's broken request is not the node's news
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.listener)
	}()
	return s, nil
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Connections is the number of open HTTP connections (the
// zmqnode_http_connections gauge).
func (s *Server) Connections() int { return int(s.listener.open.Load()) }

// Close answers every request still waiting for the node with 503 ("node X
// is shutting down; retry on another node"), then closes the listener and
// every connection.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	waiting := make([]*httpReplier, 0, len(s.waiting))
	for r := range s.waiting {
		waiting = append(waiting, r)
	}
	s.mu.Unlock()
	for _, r := range waiting {
		r.deliver(answer{status: 503, message: fmt.Sprintf("node %s is shutting down; retry on another node", s.links.NodeID)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

func (s *Server) logf(format string, args ...any) {
	if s.links.Logf != nil {
		s.links.Logf(format, args...)
	}
}

// /v2/models/{name}[/versions/{version}][/ready|/infer]
var modelPath = regexp.MustCompile(`^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$`)

// Route is the endpoint and model id of a request path (EndpointOther when nothing
// matches), as inference_http.py's route.
func Route(path string) (endpoint, modelID string) {
	switch path {
	case "/v2/health/live":
		return EndpointLive, ""
	case "/v2/health/ready":
		return EndpointReady, ""
	case "/v2", "/v2/":
		return EndpointServer, ""
	}
	m := modelPath.FindStringSubmatch(path)
	if m == nil {
		return EndpointOther, ""
	}
	switch m[3] {
	case "":
		return EndpointModel, m[1]
	case "/ready":
		return EndpointModelReady, m[1]
	}
	return EndpointInfer, m[1]
}

// ServeHTTP answers one request (inference_http.py's on_request after
// transport/http.py's framing checks).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "zmqnode")
	conn, _ := r.Context().Value(connKey{}).(*trackedConn)
	conn.setPhase(phaseBody)
	defer conn.setPhase(phaseIdle)
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	conn.setPhase(phaseWait) // the node's deadlines bound the answer, not ours
	received := time.Now()
	target := pyfmt.Latin1(conn.originalTarget(r.RequestURI))
	path, _, _ := strings.Cut(target, "?")
	endpoint, modelID := Route(path)
	a := s.serve(r, body, target, endpoint, modelID)
	if a == nil {
		return // the client went away: nobody to answer
	}
	status, headers, out := s.encode(a, endpoint, modelID)
	h := w.Header()
	for _, kv := range headers {
		h.Set(kv[0], kv[1])
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	_, _ = w.Write(out)
	if s.links.OnAnswered != nil {
		s.links.OnAnswered(endpoint, status, time.Since(received).Seconds())
	}
}

// readBody reads the whole body within the limits; false when the request
// was answered (413, 408) or the client is gone.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	max := s.limits.MaxBodyBytes
	if r.ContentLength > max {
		// RFC 9110 §15.5.14: refuse before reading; with Expect:
		// 100-continue the client never sends it.
		plainError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err == nil {
		return body, true
	}
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		plainError(w, http.StatusRequestEntityTooLarge, "request body too large")
	case errors.As(err, &netErr) && netErr.Timeout():
		plainError(w, http.StatusRequestTimeout, "request not received in time")
	}
	return nil, false
}

// plainError answers as transport/http.py's _fail: text, then close.
func plainError(w http.ResponseWriter, status int, message string) {
	body := message + "\n"
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Connection", "close")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// answer is what a request is answered with: a finished HTTP answer
// (status and body or message), or the node's reply to encode.
type answer struct {
	status  int
	headers [][2]string
	body    []byte
	message string // an error answer's message (status set)

	okFields *wire.Object // the node's OK reply
	blobs    [][]byte
	call     *InferCall
	ready    *bool
}

func errorAnswer(status int, format string, args ...any) *answer {
	return &answer{status: status, message: fmt.Sprintf(format, args...)}
}

var jsonType = [][2]string{{"Content-Type", "application/json"}}

// serve routes a request; nil when the client went away while waiting.
func (s *Server) serve(r *http.Request, body []byte, target, endpoint, modelID string) *answer {
	if endpoint == EndpointOther {
		return errorAnswer(404, "no such endpoint: %s", cut(target, 200))
	}
	want := http.MethodGet
	if endpoint == EndpointInfer {
		want = http.MethodPost
	}
	method := pyfmt.Latin1(r.Method)
	if method != want && !(method == http.MethodHead && want == http.MethodGet) {
		return errorAnswer(405, "%s takes %s, not %s", cut(target, 200), want, method)
	}
	if endpoint != EndpointLive && endpoint != EndpointReady && !s.authorized(r) {
		return &answer{
			status:  401,
			headers: [][2]string{{"Content-Type", "application/json"}, {"WWW-Authenticate", `Bearer realm="zmqnode"`}},
			body: ErrorBody("missing or wrong bearer token: send 'Authorization: Bearer <token>' " +
				"with the cluster's token (KEYS/http.token)"),
		}
	}
	switch endpoint {
	case EndpointLive:
		return &answer{status: 200, headers: jsonType, body: []byte(`{"live":true}`)}
	case EndpointReady:
		return s.await(r, func(rep *httpReplier) {
			ready := s.links.IsReady != nil && s.links.IsReady()
			rep.deliver(answer{ready: &ready})
		})
	case EndpointServer:
		return &answer{status: 200, headers: jsonType, body: ServerMetadata(s.links.Version)}
	case EndpointModel, EndpointModelReady:
		info := decoded(wire.NewObject(
			wire.Field{Key: "v", Value: wire.ProtocolVersion},
			wire.Field{Key: "type", Value: wire.TypeInfo},
			wire.Field{Key: "id", Value: newID()},
			wire.Field{Key: "model_id", Value: modelID},
		))
		return s.await(r, func(rep *httpReplier) { s.links.Dispatch(info, nil, rep) })
	}
	length, hasLength, herr := ParseHeaderLength(strings.Join(r.Header.Values(HeaderLength), ", "),
		len(r.Header.Values(HeaderLength)) > 0)
	if herr != nil {
		return errorAnswer(herr.Status, "%s", herr.Message)
	}
	call, perr := ParseInfer(modelID, body, length, hasLength)
	if perr != nil {
		return errorAnswer(perr.Status, "%s", perr.Message)
	}
	return s.await(r, func(rep *httpReplier) {
		rep.call = call
		task := ""
		if s.links.TaskOf != nil {
			task = s.links.TaskOf(modelID)
		}
		// The task decides what "every output" is; a model this node has
		// not applied yet answers without probabilities unless named.
		header, err := call.PredictHeader(newID(), task)
		if err != nil {
			rep.deliver(answer{status: err.Status, message: err.Message})
			return
		}
		s.links.Dispatch(header, [][]byte{call.Blob}, rep)
	})
}

// await runs work on the loop and waits for its answer, the client's
// departure, the server's closing or the reply timeout.
func (s *Server) await(r *http.Request, work func(rep *httpReplier)) *answer {
	rep := &httpReplier{server: s, ch: make(chan answer, 1)}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errorAnswer(503, "node %s is shutting down; retry on another node", s.links.NodeID)
	}
	s.waiting[rep] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, rep)
		s.mu.Unlock()
	}()
	s.links.Submit(func() {
		defer func() {
			if p := recover(); p != nil { // a bug costs one request, never the node
				s.logf("internal error serving HTTP %s %s: %v", r.Method, r.RequestURI, p)
				rep.deliver(answer{status: 500, message: fmt.Sprintf("node %s failed: %v", s.links.NodeID, p)})
			}
		}()
		work(rep)
	})
	timer := time.NewTimer(s.limits.ReplyTimeout)
	defer timer.Stop()
	select {
	case a := <-rep.ch:
		return &a
	case <-r.Context().Done():
		return nil
	case <-timer.C:
		rep.deliver(answer{}) // later answers are dropped
		return errorAnswer(504, "node %s gave up waiting for the answer", s.links.NodeID)
	}
}

// encode turns an answer into the HTTP status, headers and body.
func (s *Server) encode(a *answer, endpoint, modelID string) (int, [][2]string, []byte) {
	switch {
	case a.ready != nil:
		if *a.ready {
			return 200, jsonType, []byte(`{"ready":true}`)
		}
		return 503, jsonType, []byte(`{"ready":false}`)
	case a.okFields == nil && a.body != nil:
		return a.status, a.headers, a.body
	case a.okFields == nil:
		return a.status, jsonType, ErrorBody(a.message)
	}
	// The node's fields are Go values (ArrayToFrame's descriptors...): read
	// them as a client would decode them, the form wire.ReadArray takes.
	fields := decoded(a.okFields)
	switch endpoint {
	case EndpointInfer:
		headers, body, err := InferResponse(a.call, modelID, fields, a.blobs)
		if err != nil {
			if err.Status == 500 {
				s.logf("internal error answering HTTP %s for %s: %s", endpoint, modelID, err.Message)
			}
			return err.Status, jsonType, ErrorBody(err.Message)
		}
		return 200, headers, body
	case EndpointModelReady:
		body, _ := wire.MarshalJSON(wire.NewObject(wire.Field{Key: "name", Value: modelID}, wire.Field{Key: "ready", Value: true}))
		return 200, jsonType, body
	}
	listing, ok := fields.Obj("model")
	if !ok || listing == nil {
		return 500, jsonType, ErrorBody("INFO reply without a model listing")
	}
	body, err := ModelMetadata(modelID, listing)
	if err != nil {
		s.logf("internal error answering HTTP %s for %s: %v", endpoint, modelID, err)
		return 500, jsonType, ErrorBody(fmt.Sprintf("node %s failed: %v", s.links.NodeID, err))
	}
	return 200, jsonType, body
}

// authorized checks Authorization: Bearer <token> (RFC 9110 §11.1, §11.4:
// the scheme is case-insensitive, then one or more spaces).
func (s *Server) authorized(r *http.Request) bool {
	if s.links.Token == "" {
		return true
	}
	scheme, credentials, _ := strings.Cut(strings.Join(r.Header.Values("Authorization"), ", "), " ")
	if strings.ToLower(scheme) != "bearer" {
		return false
	}
	given := strings.TrimLeft(credentials, " ")
	return subtle.ConstantTimeCompare([]byte(given), []byte(s.links.Token)) == 1
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// httpReplier is the Replier of one HTTP request: the node's reply goes
// to the waiting HTTP goroutine, once; later replies are ignored.
type httpReplier struct {
	server *Server
	ch     chan answer
	sent   atomic.Bool
	call   *InferCall // set on the loop before Dispatch
}

func (r *httpReplier) deliver(a answer) {
	if r.sent.CompareAndSwap(false, true) {
		r.ch <- a // buffered: never blocks
	}
}

// OK hands the node's OK reply over for encoding.
func (r *httpReplier) OK(req *wire.Object, blobs [][]byte, fields ...wire.Field) {
	r.deliver(answer{okFields: wire.NewObject(fields...), blobs: blobs, call: r.call})
}

// Error answers the code's HTTP status with the node's message.
func (r *httpReplier) Error(req *wire.Object, code wire.ErrorCode, message string) {
	r.deliver(answer{status: ErrorStatus(code), message: message})
}

// Redirect: reads are not redirected today; the answer says where to go.
func (r *httpReplier) Redirect(req *wire.Object, leader string) {
	r.deliver(answer{status: 503, message: fmt.Sprintf(
		"node %s sends this to the leader %s; ask that node's HTTP port", r.server.links.NodeID, leader)})
}

// Progress: only TRAIN sends progress, and TRAIN is not served here.
func (r *httpReplier) Progress(req *wire.Object, fields ...wire.Field) {}

// Wait: every request waits already (Close answers it).
func (r *httpReplier) Wait(req *wire.Object) {}
