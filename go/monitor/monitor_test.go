package monitor

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func start(t *testing.T) *Monitor {
	t.Helper()
	metrics := read(t, "metrics.txt")
	logPath := filepath.Join("testdata", "worker.log")
	m, err := Start("127.0.0.1", 0, Source{
		Metrics: func() []byte { return metrics },
		LogTail: func(n int) []string { return TailFile(logPath, n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	m.Publish(read(t, "status.json"))
	m.PublishModels(read(t, "models.json"))
	return m
}

func ask(t *testing.T, addr string, raw []byte) *http.Response {
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
	all, err := io.ReadAll(c) // one request per connection: the monitor closes it
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(all)), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	return resp
}

// testdata/golden.json is how monitor.py answered the same raw requests
// (testdata/gen_golden.py).
func TestAnswersAsThePythonMonitor(t *testing.T) {
	m := start(t)
	var cases []struct {
		Request     string `json:"request"`
		Status      int    `json:"status"`
		ContentType string `json:"content_type"`
		Body        string `json:"body"`
	}
	if err := json.Unmarshal(read(t, "golden.json"), &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		raw, _ := base64.StdEncoding.DecodeString(c.Request)
		want, _ := base64.StdEncoding.DecodeString(c.Body)
		name := strings.SplitN(string(raw), "\r\n", 2)[0]
		t.Run(name, func(t *testing.T) {
			resp := ask(t, m.Addr().String(), raw)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.Status || resp.Header.Get("Content-Type") != c.ContentType || !bytes.Equal(body, want) {
				t.Fatalf("got %d %q %q\nwant %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body,
					c.Status, c.ContentType, want)
			}
		})
	}
}

// A reader polling a node that has just started (a restarted node catching
// up, say) reads the fields it polls for, never an empty object.
func TestStatusIsTheFirstStatusBeforeAnyPublish(t *testing.T) {
	first := read(t, "status.json")
	m, err := Start("127.0.0.1", 0, Source{Status: first})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	resp := ask(t, m.Addr().String(), []byte("GET /status HTTP/1.0\r\n\r\n"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, first) {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, first)
	}
}

func TestHeadIsNotImplementedEither(t *testing.T) {
	m := start(t)
	resp := ask(t, m.Addr().String(), []byte("HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n"))
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
}

func TestConnectionsPastTheCapAreClosedAndTheMonitorServesAgain(t *testing.T) {
	m := start(t)
	addr := m.Addr().String()
	var idle []net.Conn
	for i := 0; i < MaxConnections+8; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	closed := 0
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); n == 0 && err != nil && !isTimeout(err) {
			closed++
		}
		if time.Now().After(deadline) {
			break
		}
	}
	if closed != 8 {
		t.Fatalf("%d connections past the cap were closed, want 8", closed)
	}
	for _, c := range idle {
		c.Close()
	}
	for {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/status")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the monitor does not serve again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestAnOccupiedPortIsAnErrorNamingTheFlag(t *testing.T) {
	m := start(t)
	_, port, _ := net.SplitHostPort(m.Addr().String())
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	if _, err := Start("127.0.0.1", p, Source{}); err == nil || !strings.Contains(err.Error(), "--monitor-port") {
		t.Fatalf("got %v", err)
	}
}

func TestTailFileOfAMissingFileIsEmpty(t *testing.T) {
	if got := TailFile(filepath.Join(t.TempDir(), "none.log"), 5); len(got) != 0 {
		t.Fatal(got)
	}
}

// exchange sends raw on a new connection and reads until the monitor closes
// it (or 3 s pass).
func exchange(t *testing.T, addr string, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte(raw))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, _ := io.ReadAll(c)
	return string(got)
}

// net/http waits 500 ms before closing a connection it answered 400 or 431
// (so the client reads the answer before a reset): the port fuzzer's burst
// of malformed requests used to hold every slot meanwhile, and the
// well-formed request after it found its connection closed unanswered.
func TestMalformedRequestsInABurstDoNotLockOutTheNext(t *testing.T) {
	m := start(t)
	addr := m.Addr().String()
	for _, raw := range []string{
		"GET /nope HTTP/x\r\n\x8aD\x0bU\r\n\r\n",                                // a broken request line
		"GET /" + strings.Repeat("a", 70000) + " HTTP/1.1\r\n\r\n",              // a huge target
		"POST /status HTTP/1.1\r\nContent-Length: -1\r\n\r\nabc",                // a bad Content-Length
		"GET /status HTTP/1.1\r\nX: " + strings.Repeat("y", 70000) + "\r\n\r\n", // a huge header
	} {
		for i := 0; i < MaxConnections+8; i++ {
			if got := exchange(t, addr, raw); !strings.HasPrefix(got, "HTTP/1.1 4") {
				t.Fatalf("%.40q answered %.60q", raw, got)
			}
		}
		got := exchange(t, addr, "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200 ") {
			t.Fatalf("after %d of %.40q, /status answered %.60q", MaxConnections+8, raw, got)
		}
	}
}
