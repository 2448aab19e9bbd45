package httpinfer

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"zmqnode/replies"
	"zmqnode/wire"
)

const testToken = "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"

// fakeNode is a loop goroutine with the rules of gen_server.py's
// fake_dispatch.
type fakeNode struct {
	jobs     chan func()
	mu       sync.Mutex
	answered []string // endpoint:status
	ready    bool
}

func newFakeNode(t *testing.T) *fakeNode {
	n := &fakeNode{jobs: make(chan func(), 64), ready: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for fn := range n.jobs {
			fn()
		}
	}()
	t.Cleanup(func() { close(n.jobs); <-done })
	return n
}

var listings = map[string]string{
	"m1":  `{"model_id":"m1","task":"multiclass","inputs":2,"classes":["cat","dog"]}`,
	"unk": `{"model_id":"unk","task":"binary","inputs":2,"classes":[0,1]}`,
	"reg": `{"model_id":"reg","task":"regression","inputs":2,"outputs":1}`,
}

func (n *fakeNode) dispatch(header *wire.Object, blobs [][]byte, reply replies.Replier) {
	model, _ := header.Str("model_id")
	typ, _ := header.Str("type")
	field := func(k string, v any) wire.Field { return wire.Field{Key: k, Value: v} }
	switch {
	case model == "hang":
	case model == "late": // answered 0.7 s later, from the loop
		time.AfterFunc(700*time.Millisecond, func() {
			n.jobs <- func() { reply.Error(header, wire.NotFound, "late but welcome") }
		})
	case model == "panic":
		panic("the fake node fails")
	case model == "missing":
		reply.Error(header, wire.NotFound, "no model "+model)
	case model == "busy":
		reply.Error(header, wire.Busy, "node n0 is busy; retry later")
	case model == "slow":
		reply.Error(header, wire.Timeout, "no answer in time")
	case model == "redirect":
		reply.Redirect(header, "127.0.0.1:9001")
	case model == "bad":
		reply.OK(header, nil, field("model_id", model))
	case typ == wire.TypeInfo:
		listing, _ := wire.UnmarshalJSON([]byte(listings[model]))
		reply.OK(header, nil, field("model", listing))
	default:
		rows, _ := wire.ReadArray(header, blobs, "inputs", 1<<20)
		values, _ := rows.Float32s()
		n, cols := rows.Shape[0], rows.Shape[1]
		if model == "reg" {
			sums := make([]float32, n)
			for i := range sums {
				for j := 0; j < cols; j++ {
					sums[i] += values[i*cols+j]
				}
			}
			desc, blob := wire.ArrayToFrame(wire.FromFloat32([]int{n}, sums), 0)
			reply.OK(header, [][]byte{blob}, field("model_id", model), field("outputs", desc))
			return
		}
		index := make([]int64, n)
		for i := range index {
			index[i] = int64(i % 2)
		}
		desc, blob := wire.ArrayToFrame(wire.FromInt64([]int{n}, index), 0)
		classes, _ := wire.UnmarshalJSON([]byte(listings[model]))
		cls, _ := classes.(*wire.Object).Get("classes")
		fields := []wire.Field{field("model_id", model), field("outputs", desc), field("classes", cls)}
		out := [][]byte{blob}
		if proba, _ := header.Bool("proba"); proba {
			p := make([]float32, 0, 2*n)
			for i := 0; i < n; i++ {
				p = append(p, 0.25, 0.75)
			}
			pdesc, pblob := wire.ArrayToFrame(wire.FromFloat32([]int{n, 2}, p), 1)
			fields = append(fields, field("probabilities", pdesc))
			out = append(out, pblob)
		}
		reply.OK(header, out, fields...)
	}
}

func (n *fakeNode) links(token string) Links {
	return Links{
		Submit:   func(fn func()) { n.jobs <- fn },
		Dispatch: n.dispatch,
		Token:    token,
		NodeID:   "n0",
		Version:  "0.1.0",
		TaskOf: func(model string) string {
			return map[string]string{"m1": "multiclass", "reg": "regression"}[model]
		},
		IsReady: func() bool { return n.ready },
		OnAnswered: func(endpoint string, status int, seconds float64) {
			n.mu.Lock()
			n.answered = append(n.answered, fmt.Sprintf("%s:%d", endpoint, status))
			n.mu.Unlock()
		},
	}
}

func (n *fakeNode) lastAnswered() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.answered) == 0 {
		return ""
	}
	return n.answered[len(n.answered)-1]
}

func startServer(t *testing.T, links Links) *Server {
	t.Helper()
	s, err := Start("127.0.0.1", 0, links)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func rawRequest(method, target string, headers map[string]string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: x\r\n", method, target)
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, headers[k])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// send writes raw bytes on a new connection and reads one response.
func send(t *testing.T, addr string, raw []byte, method string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%.80q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// testdata/server_golden.json: inference_http.py's answers to the same
// requests with the same fake node (testdata/gen_server.py).
func TestAnswersAsInferenceHTTPPy(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "server_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Method, Target  string
		Headers         map[string]string
		Body            string
		Status          int
		ContentType     *string `json:"content_type"`
		WWWAuthenticate *string `json:"www_authenticate"`
		HeaderLength    *string `json:"header_length"`
		Answer          string
		Endpoint        string
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	node := newFakeNode(t)
	s := startServer(t, node.links(testToken))
	for _, c := range cases {
		c := c
		t.Run(c.Method+" "+cut(c.Target, 60)+" "+c.Headers["authorization"], func(t *testing.T) {
			body, _ := base64.StdEncoding.DecodeString(c.Body)
			want, _ := base64.StdEncoding.DecodeString(c.Answer)
			resp, got := send(t, s.Addr().String(), rawRequest(c.Method, c.Target, c.Headers, body), c.Method)
			if resp.StatusCode != c.Status || !(bytes.Equal(got, want) || sameJSONError(got, want)) {
				t.Fatalf("got  %d %s\nwant %d %s", resp.StatusCode, got, c.Status, want)
			}
			for name, want := range map[string]*string{"Content-Type": c.ContentType,
				"Www-Authenticate": c.WWWAuthenticate, HeaderLength: c.HeaderLength} {
				if got := resp.Header.Get(name); want != nil && got != *want || want == nil && got != "" {
					t.Fatalf("%s: %q, want %v", name, got, want)
				}
			}
			if resp.Header.Get("Server") != "zmqnode" {
				t.Fatalf("Server: %q", resp.Header.Get("Server"))
			}
			if got, want := node.lastAnswered(), fmt.Sprintf("%s:%d", c.Endpoint, c.Status); got != want {
				t.Fatalf("counted %s, want %s", got, want)
			}
		})
	}
}

func auth() map[string]string { return map[string]string{"Authorization": "Bearer " + testToken} }

func TestHeadAnswersAsGetWithoutABody(t *testing.T) {
	s := startServer(t, newFakeNode(t).links(testToken))
	resp, body := send(t, s.Addr().String(), rawRequest("HEAD", "/v2/models/m1", auth(), nil), "HEAD")
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength <= 0 {
		t.Fatalf("%d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
}

func TestReadinessFollowsTheNode(t *testing.T) {
	node := newFakeNode(t)
	node.ready = false
	s := startServer(t, node.links(testToken))
	resp, body := send(t, s.Addr().String(), rawRequest("GET", "/v2/health/ready", nil, nil), "GET")
	if resp.StatusCode != 503 || string(body) != `{"ready":false}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestWithoutATokenEveryRequestIsAdmittedOnLoopbackOnly(t *testing.T) {
	node := newFakeNode(t)
	s := startServer(t, node.links(""))
	if resp, body := send(t, s.Addr().String(), rawRequest("GET", "/v2/models/m1", nil, nil), "GET"); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if _, err := Start("0.0.0.0", 0, node.links("")); err == nil || !strings.Contains(err.Error(), "http.token") {
		t.Fatalf("a tokenless server on 0.0.0.0: %v", err)
	}
}

func TestABodyOverTheLimitIs413BeforeItIsRead(t *testing.T) {
	node := newFakeNode(t)
	links := node.links(testToken)
	links.Limits.MaxBodyBytes = 100
	s := startServer(t, links)
	headers := auth()
	headers["Expect"] = "100-continue"
	raw := []byte(strings.Replace(string(rawRequest("POST", "/v2/models/m1/infer", headers, nil)),
		"Content-Length: 0", "Content-Length: 101", 1)) // the body is never sent
	resp, body := send(t, s.Addr().String(), raw, "POST")
	if resp.StatusCode != 413 || string(body) != "request body too large\n" || !resp.Close {
		t.Fatalf("%d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	chunked := "POST /v2/models/m1/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testToken +
		"\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + strings.Repeat("x", 101) + "\r\n0\r\n\r\n"
	if resp, body := send(t, s.Addr().String(), []byte(chunked), "POST"); resp.StatusCode != 413 {
		t.Fatalf("chunked: %d %q", resp.StatusCode, body)
	}
	if node.lastAnswered() != "" {
		t.Fatalf("a 413 is the transport's, not counted: %s", node.lastAnswered())
	}
}

func TestHeadersOver16KiBAre431(t *testing.T) {
	s := startServer(t, newFakeNode(t).links(testToken))
	headers := auth()
	headers["X-Big"] = strings.Repeat("a", 16384)
	if resp, _ := send(t, s.Addr().String(), rawRequest("GET", "/v2", headers, nil), "GET"); resp.StatusCode != 431 {
		t.Fatalf("%d", resp.StatusCode)
	}
	headers["X-Big"] = strings.Repeat("a", 15000)
	if resp, _ := send(t, s.Addr().String(), rawRequest("GET", "/v2", headers, nil), "GET"); resp.StatusCode != 200 {
		t.Fatalf("under the limit: %d", resp.StatusCode)
	}
}

func shortTimeouts(t *testing.T) *Server {
	links := newFakeNode(t).links(testToken)
	links.Limits.RequestTimeout = 200 * time.Millisecond
	links.Limits.IdleTimeout = 500 * time.Millisecond
	return startServer(t, links)
}

// closedAfter is how long the server took to close c (reading nothing).
func closedAfter(t *testing.T, c net.Conn) (time.Duration, []byte) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	return time.Since(start), got
}

func TestAHeadThatDoesNotArriveInTimeIs408EvenTrickled(t *testing.T) {
	s := shortTimeouts(t)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
	for i := 0; i < 3; i++ { // trickling bytes does not restart the clock
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(c, "X-A: b\r\n")
	}
	took, got := closedAfter(t, c)
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 408 ")) || !bytes.HasSuffix(got, []byte("request not received in time\n")) ||
		took > 2*time.Second {
		t.Fatalf("%q after %v", got, took)
	}
}

func TestAConnectionIdleBeforeAndBetweenRequestsIsClosedAfterTheIdleTimeout(t *testing.T) {
	s := shortTimeouts(t)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	took, got := closedAfter(t, c) // never sends: the idle timeout, not the request timeout
	if len(got) != 0 || took < 450*time.Millisecond || took > 2*time.Second {
		t.Fatalf("never sending: %q after %v", got, took)
	}
	c2, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	// The server's idle clock starts when it has answered, which the client
	// sees only later: bound it below from before the request.
	sent := time.Now()
	_, _ = io.WriteString(c2, "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c2)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	_, _ = io.ReadAll(resp.Body)
	start := time.Now()
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, _ := io.ReadAll(r)
	if took := time.Since(start); len(rest) != 0 || time.Since(sent) < 450*time.Millisecond || took > 2*time.Second {
		t.Fatalf("keep-alive: %q after %v (%v since the request)", rest, took, time.Since(sent))
	}
}

func TestAPendingAnswerIsNotTimedOutByTheServer(t *testing.T) {
	s := shortTimeouts(t) // 0.2 s and 0.5 s; the node answers after 0.7 s
	resp, body := send(t, s.Addr().String(), rawRequest("GET", "/v2/models/late", auth(), nil), "GET")
	if resp.StatusCode != 404 || string(body) != `{"error":"late but welcome"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestABodyThatDoesNotArriveInTimeIs408(t *testing.T) {
	links := newFakeNode(t).links(testToken)
	links.Limits.RequestTimeout = 300 * time.Millisecond
	s := startServer(t, links)
	raw := []byte(strings.Replace(string(rawRequest("POST", "/v2/models/m1/infer", auth(), []byte("{}"))),
		"Content-Length: 2", "Content-Length: 10", 1))
	start := time.Now()
	resp, body := send(t, s.Addr().String(), raw, "POST")
	if resp.StatusCode != 408 || string(body) != "request not received in time\n" || time.Since(start) > 3*time.Second {
		t.Fatalf("%d %q after %v", resp.StatusCode, body, time.Since(start))
	}
}

func TestConnectionsPastTheCapGet503AndAClose(t *testing.T) {
	links := newFakeNode(t).links(testToken)
	links.Limits.MaxConnections = 3
	s := startServer(t, links)
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.Connections() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	got, _ := io.ReadAll(c)
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 503 ")) || !bytes.HasSuffix(got, []byte("too many connections\n")) {
		t.Fatalf("%q", got)
	}
	if s.Connections() != 3 {
		t.Fatalf("%d connections counted", s.Connections())
	}
}

func TestKeepAliveAndPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	s := startServer(t, newFakeNode(t).links(testToken))
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	one := "GET /v2/models/m1/ready HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testToken + "\r\n\r\n"
	two := "GET /v2/models/missing/ready HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testToken + "\r\n\r\n"
	if _, err := io.WriteString(c, one+two); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for _, want := range []int{200, 404} {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%d, want %d", resp.StatusCode, want)
		}
	}
}

func TestCloseAnswersWaitingRequestsWith503(t *testing.T) {
	node := newFakeNode(t)
	s, err := Start("127.0.0.1", 0, node.links(testToken))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			done <- result{}
			return
		}
		defer c.Close()
		_, _ = c.Write(rawRequest("GET", "/v2/models/hang", auth(), nil))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			done <- result{}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, body}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.waiting)
		s.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	r := <-done
	if r.status != 503 || string(r.body) != `{"error":"node n0 is shutting down; retry on another node"}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestAnAnswerThatNeverComesIs504(t *testing.T) {
	links := newFakeNode(t).links(testToken)
	links.Limits.ReplyTimeout = 200 * time.Millisecond
	s := startServer(t, links)
	resp, body := send(t, s.Addr().String(), rawRequest("GET", "/v2/models/hang", auth(), nil), "GET")
	if resp.StatusCode != 504 || !strings.Contains(string(body), "gave up waiting") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestAPanicInTheNodeCostsOneRequest(t *testing.T) {
	node := newFakeNode(t)
	links := node.links(testToken)
	var logged []string
	var mu sync.Mutex
	links.Logf = func(f string, a ...any) { mu.Lock(); logged = append(logged, fmt.Sprintf(f, a...)); mu.Unlock() }
	s := startServer(t, links)
	resp, body := send(t, s.Addr().String(), rawRequest("GET", "/v2/models/panic", auth(), nil), "GET")
	if resp.StatusCode != 500 || !strings.Contains(string(body), "node n0 failed") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := send(t, s.Addr().String(), rawRequest("GET", "/v2/models/m1", auth(), nil), "GET"); resp.StatusCode != 200 {
		t.Fatalf("then: %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 {
		t.Fatalf("logged %v", logged)
	}
}

func TestBinaryInputAndOutputRoundTrip(t *testing.T) {
	s := startServer(t, newFakeNode(t).links(testToken))
	rows := []float32{0, 1, 1, 1}
	tail := make([]byte, 16)
	for i, v := range rows {
		binary.LittleEndian.PutUint32(tail[4*i:], math.Float32bits(v))
	}
	head := `{"inputs":[{"name":"inputs","datatype":"FP32","shape":[2,2],"parameters":{"binary_data_size":16}}],` +
		`"outputs":[{"name":"label","parameters":{"binary_data":true}},{"name":"probabilities","parameters":{"binary_data":true}}]}`
	headers := auth()
	headers[HeaderLength] = fmt.Sprint(len(head))
	resp, body := send(t, s.Addr().String(), rawRequest("POST", "/v2/models/m1/infer", headers, append([]byte(head), tail...)), "POST")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	var n int
	fmt.Sscan(resp.Header.Get(HeaderLength), &n)
	var meta struct {
		Outputs []struct {
			Name       string
			Parameters struct {
				BinaryDataSize int `json:"binary_data_size"`
			}
		}
	}
	if err := json.Unmarshal(body[:n], &meta); err != nil {
		t.Fatal(err)
	}
	rest := body[n:]
	labels := rest[:meta.Outputs[0].Parameters.BinaryDataSize]
	proba := rest[len(labels):]
	if string(labels) != "\x03\x00\x00\x00cat\x03\x00\x00\x00dog" || len(proba) != 16 ||
		math.Float32frombits(binary.LittleEndian.Uint32(proba[4:])) != 0.75 {
		t.Fatalf("labels %q proba %x", labels, proba)
	}
}

// sameJSONError: both refuse a body that is not JSON, each in its parser's
// words (SPEC_NOTES.md).
func sameJSONError(got, want []byte) bool {
	const prefix = `{"error":"request is not valid JSON: `
	return bytes.HasPrefix(got, []byte(prefix)) && bytes.HasPrefix(want, []byte(prefix))
}
