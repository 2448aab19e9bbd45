// Package monitor is the read-only HTTP monitor of a node (PROTOCOL.md §1,
// port P-1000): /status, /models, /logs?n= and /metrics, answering as the
// Python node's zmqnode/monitor.py does (the same bodies, status codes and
// content types; see SPEC_NOTES.md for what differs on the wire).
//
// It never touches the node: the loop publishes plain bytes (Publish,
// PublishModels) that HTTP goroutines read, and Source's functions must be
// safe to call from any goroutine.
package monitor

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"zmqnode/wire"
)

const (
	// MaxLogLines bounds /logs?n= (monitor.py's MAX_LOG_LINES).
	MaxLogLines = 5000
	// DefaultLogLines is /logs without n.
	DefaultLogLines = 100
	// RequestTimeout: a silent or slow client loses its connection
	// (monitor.py's REQUEST_TIMEOUT_SECONDS).
	RequestTimeout = 10 * time.Second
	// MaxConnections open at once; one more is closed at once instead of
	// queueing (monitor.py's MAX_CONNECTIONS).
	MaxConnections = 32
	// maxHeaderBytes is Python's http.server line limit (65536).
	maxHeaderBytes = 65536
)

// Source is what the monitor reads besides the published views. The
// functions are called from HTTP goroutines.
type Source struct {
	// Status is the /status served until the first Publish: the node's
	// STATUS fields as JSON, so that /status carries them from the moment
	// the port accepts connections (a reader polling a restarted node must
	// never see an empty object).
	Status []byte
	// Metrics is the /metrics text (metrics.Registry.Render).
	Metrics func() []byte
	// LogTail is the last lines of the node's log file (TailFile).
	LogTail func(lines int) []string
}

// Monitor serves one node's views over HTTP until Close.
type Monitor struct {
	src      Source
	status   atomic.Value // []byte: the STATUS fields as JSON
	models   atomic.Value // []byte: a JSON array of listings
	server   *http.Server
	listener *limitListener
	done     chan struct{}
}

// Start binds host:port (port 0: any free port, see Addr) and serves in
// the background. The error names the address and says to choose another
// --monitor-port.
func Start(host string, port int, src Source) (*Monitor, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot open the HTTP monitor on %s:%d: %w. Choose another --monitor-port", host, port, err)
	}
	m := &Monitor{src: src, listener: &limitListener{Listener: ln, max: MaxConnections}, done: make(chan struct{})}
	status := []byte("{}")
	if src.Status != nil {
		status = append([]byte(nil), src.Status...)
	}
	m.status.Store(status)
	m.models.Store([]byte("[]"))
	m.server = &http.Server{
		Handler:           m,
		ReadHeaderTimeout: RequestTimeout,
		ReadTimeout:       RequestTimeout,
		WriteTimeout:      RequestTimeout,
		IdleTimeout:       RequestTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	m.server.SetKeepAlivesEnabled(false) // Python's monitor speaks HTTP/1.0: one request per connection
	go func() {
		defer close(m.done)
		_ = m.server.Serve(m.listener)
	}()
	return m, nil
}

// Addr is the address the monitor listens on.
func (m *Monitor) Addr() net.Addr { return m.listener.Addr() }

// Publish replaces what /status shows: the JSON object of the STATUS reply's
// fields (observe.py's NodeSnapshot.status), built by the node once a tick.
func (m *Monitor) Publish(status []byte) { m.status.Store(append([]byte(nil), status...)) }

// PublishModels replaces what /models lists: a JSON array of the models'
// LIST entries (PROTOCOL.md §5.4). monitor.py refreshes it only when the
// number of models changed; the node may do the same.
func (m *Monitor) PublishModels(listing []byte) {
	m.models.Store(append([]byte(nil), listing...))
}

// Close stops serving and closes every connection.
func (m *Monitor) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.server.Shutdown(ctx); err != nil {
		_ = m.server.Close()
	}
	<-m.done
}

// ServeHTTP answers one request as monitor.py's handler.
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		// BaseHTTPRequestHandler without do_<METHOD>: 501, HEAD included.
		sendPythonError(w, http.StatusNotImplemented, fmt.Sprintf("Unsupported method (%s)", pyStrRepr(r.Method)),
			"Server does not support this operation")
		return
	}
	path, query := splitTarget(r.RequestURI)
	switch path {
	case "/status":
		send(w, http.StatusOK, "application/json", m.status.Load().([]byte))
	case "/models":
		body := append([]byte(`{"models":`), m.models.Load().([]byte)...)
		send(w, http.StatusOK, "application/json", append(body, '}'))
	case "/logs":
		n := DefaultLogLines
		if values := parseQS(query)["n"]; len(values) > 0 {
			v, ok := pyInt(values[0])
			if !ok {
				sendJSON(w, http.StatusBadRequest, wire.NewObject(wire.Field{Key: "error", Value: "n must be an integer"}))
				return
			}
			n = v
		}
		if n > MaxLogLines {
			n = MaxLogLines
		}
		if n < 1 {
			n = 1
		}
		var lines []string
		if m.src.LogTail != nil {
			lines = m.src.LogTail(n)
		}
		if lines == nil {
			lines = []string{}
		}
		sendJSON(w, http.StatusOK, wire.NewObject(wire.Field{Key: "lines", Value: lines}))
	case "/metrics":
		var text []byte
		if m.src.Metrics != nil {
			text = m.src.Metrics()
		}
		send(w, http.StatusOK, "text/plain; version=0.0.4", text)
	default:
		sendJSON(w, http.StatusNotFound, wire.NewObject(wire.Field{Key: "error",
			Value: "no such page " + path + "; try /status, /models, /logs?n=100 or /metrics"}))
	}
}

func send(w http.ResponseWriter, code int, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func sendJSON(w http.ResponseWriter, code int, obj *wire.Object) {
	body, err := wire.MarshalJSON(obj)
	if err != nil { // a line that is not UTF-8: TailFile never returns one
		code, body = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	send(w, code, "application/json", body)
}

// pythonErrorPage is http.server's DEFAULT_ERROR_MESSAGE.
const pythonErrorPage = "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n" +
	"        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n" +
	"        <p>Error code: %d</p>\n        <p>Message: %s.</p>\n" +
	"        <p>Error code explanation: %d - %s.</p>\n    </body>\n</html>\n"

// sendPythonError answers as BaseHTTPRequestHandler.send_error.
func sendPythonError(w http.ResponseWriter, code int, message, explain string) {
	body := fmt.Sprintf(pythonErrorPage, code, htmlEscape(message), code, htmlEscape(explain))
	send(w, code, "text/html;charset=utf-8", []byte(body))
}

func htmlEscape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			out = append(out, "&amp;"...)
		case '<':
			out = append(out, "&lt;"...)
		case '>':
			out = append(out, "&gt;"...)
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

// limitListener closes a connection at once when max are open already, so
// idle clients cannot pile up (monitor.py's BoundedHTTPServer).
type limitListener struct {
	net.Listener
	max  int
	open atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > int64(l.max) {
			l.open.Add(-1)
			_ = c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

// CloseWrite lets net/http half-close before it closes, and gives the
// connection's slot back at once: after an error answer (400, 431) net/http
// waits 500 ms before closing (so the client reads the answer before a
// reset), and a burst of malformed requests must not hold every slot
// meanwhile, refusing the well-formed ones after them (the port fuzzer's
// monitor cases; http.server closes at once).
func (c *countedConn) CloseWrite() error {
	c.release()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

func (c *countedConn) release() { c.once.Do(func() { c.l.open.Add(-1) }) }
