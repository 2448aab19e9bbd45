package httpinfer

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pipelined writes raw on one connection and reads len(methods) answers.
func pipelined(t *testing.T, addr, raw string, methods []string) []int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var codes []int
	for _, m := range methods {
		resp, err := http.ReadResponse(r, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("answer %d of %d to %.200q: %v", len(codes)+1, len(methods), raw, err)
		}
		_, _ = io.ReadAll(resp.Body)
		codes = append(codes, resp.StatusCode)
	}
	return codes
}

// The port fuzzer's cases (ZMQNODE_IMPLS=go) where net/http answered 400
// and closed, or answered nothing, where h11 (the Python node) reads a
// request: every pipelined request must get its answer, in order.
func TestRequestsH11ReadsAreAnsweredEvenPipelined(t *testing.T) {
	s := startServer(t, newFakeNode(t).links(testToken))
	auth := "Authorization: Bearer " + testToken + "\r\n"
	live := "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"
	for _, tc := range []struct {
		name    string
		raw     string
		methods []string
		want    []int // 0: any status but 500
	}{
		{"a '%' that is not an escape in the path", "GET /v2/repository/index/-]z9+%a_ HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n" + live,
			[]string{"GET", "GET"}, []int{404, 200}},
		{"a '%' at the end of the path, after a body", "POST /metrics/-~a% HTTP/1.1\r\nHost: x\r\n" + auth +
			"Content-Length: 7\r\n\r\n{\"a\":1}" + live, []string{"POST", "GET"}, []int{404, 200}},
		{"after a chunked body", "POST /v2/models/m1/infer?+a=+%_0 HTTP/1.1\r\nHost: x\r\n" + auth +
			"Transfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n" +
			"GET /v2/models/%zz/ready HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n" + live,
			[]string{"POST", "GET", "GET"}, []int{0, 0, 200}},
		{"empty lines before a request line", "\r\n\r\n" + live + "\r\n" + live, []string{"GET", "GET"}, []int{200, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pipelined(t, s.Addr().String(), tc.raw, tc.methods)
			for i, code := range got {
				if code == 500 || (tc.want[i] != 0 && code != tc.want[i]) {
					t.Fatalf("answers %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// A target net/http read changed is given back to the handler as sent: the
// 404 names the path the client asked for.
func TestTheHandlerSeesTheTargetAsSent(t *testing.T) {
	s := startServer(t, newFakeNode(t).links(testToken))
	resp, body := send(t, s.Addr().String(), rawRequest("GET", "/v2/x%z", auth(), nil), "GET")
	if resp.StatusCode != 404 || strings.Contains(string(body), "%25") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// net/http holds a connection it answered 400 for 500 ms before closing
// it: a burst of malformed requests must not take every slot meanwhile.
func TestMalformedRequestsInABurstDoNotTakeEverySlot(t *testing.T) {
	s := startServer(t, newFakeNode(t).links(testToken))
	addr := s.Addr().String()
	for i := 0; i < DefaultMaxConnections+16; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "POST /v2 HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
			t.Fatalf("malformed request %d answered %.80q", i, got)
		}
	}
	resp, _ := send(t, addr, rawRequest("GET", "/v2/health/live", auth(), nil), "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
}

func TestFixTargetEscapesOnlyPercentsThatAreNotEscapes(t *testing.T) {
	for _, tc := range [][2]string{
		{"GET /a%2e%2E HTTP/1.1", "GET /a%2e%2E HTTP/1.1"},
		{"GET /a% HTTP/1.1", "GET /a%25 HTTP/1.1"},
		{"GET /%zz?%b=1&c=%0 HTTP/1.1", "GET /%25zz?%25b=1&c=%250 HTTP/1.1"},
		{"GET /a%", "GET /a%"}, // no version: net/http's to refuse
	} {
		if got, _ := fixTarget(tc[0]); got != tc[1] {
			t.Errorf("fixTarget(%q) = %q, want %q", tc[0], got, tc[1])
		}
	}
}
