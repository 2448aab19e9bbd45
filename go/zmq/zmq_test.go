package zmq

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func newContext(t *testing.T) *Context {
	t.Helper()
	ctx, err := NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ctx.Term(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("term: %v", err)
		}
	})
	return ctx
}

func newSocket(t *testing.T, ctx *Context, typ Type) *Socket {
	t.Helper()
	s, err := ctx.NewSocket(typ)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetInt(Linger, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDuration(RcvTimeo, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRouterDealerMultipartKeepsEmptyFramesAndRoutingID(t *testing.T) {
	ctx := newContext(t)
	router := newSocket(t, ctx, ROUTER)
	if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	endpoint, err := router.LastEndpoint()
	if err != nil || !strings.HasPrefix(endpoint, "tcp://127.0.0.1:") || strings.HasSuffix(endpoint, ":*") {
		t.Fatalf("LastEndpoint = %q, %v", endpoint, err)
	}
	dealer := newSocket(t, ctx, DEALER)
	if err := dealer.SetBytes(RoutingID, []byte("peer-1")); err != nil {
		t.Fatal(err)
	}
	if err := dealer.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	sent := [][]byte{{}, []byte(`{"v":1}`), bytes.Repeat([]byte{7}, 100000), {}}
	if err := dealer.Send(sent, 0); err != nil {
		t.Fatal(err)
	}
	got, err := router.Recv(0)
	if err != nil {
		t.Fatal(err)
	}
	want := append([][]byte{[]byte("peer-1")}, sent...)
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if err := router.Send([][]byte{[]byte("peer-1"), []byte("reply")}, DontWait); err != nil {
		t.Fatal(err)
	}
	back, err := dealer.Recv(0)
	if err != nil || len(back) != 1 || string(back[0]) != "reply" {
		t.Fatalf("dealer got %q, %v", back, err)
	}
}

func TestRecvDontWaitWithNothingQueuedIsErrAgain(t *testing.T) {
	ctx := newContext(t)
	pull := newSocket(t, ctx, PULL)
	if err := pull.Bind("inproc://again"); err != nil {
		t.Fatal(err)
	}
	_, err := pull.Recv(DontWait)
	if !errors.Is(err, ErrAgain) || errors.Is(err, ErrTerm) {
		t.Fatalf("err = %v, want ErrAgain", err)
	}
}

func TestRecvTimeoutIsErrAgain(t *testing.T) {
	ctx := newContext(t)
	pull := newSocket(t, ctx, PULL)
	pull.SetDuration(RcvTimeo, 20*time.Millisecond)
	pull.Bind("inproc://timeout")
	start := time.Now()
	if _, err := pull.Recv(0); !errors.Is(err, ErrAgain) {
		t.Fatalf("err = %v, want ErrAgain", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("RCVTIMEO not honoured")
	}
}

func TestShutdownWakesABlockedRecvWithErrTerm(t *testing.T) {
	ctx, err := NewContext()
	if err != nil {
		t.Fatal(err)
	}
	pull, _ := ctx.NewSocket(PULL)
	pull.SetInt(Linger, 0)
	pull.Bind("inproc://term")
	done := make(chan error, 1)
	go func() {
		_, err := pull.Recv(0)
		pull.Close()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := ctx.Shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrTerm) || errors.Is(err, ErrAgain) {
			t.Fatalf("err = %v, want ErrTerm", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv still blocked after Shutdown")
	}
	if err := ctx.Term(); err != nil {
		t.Fatal(err)
	}
}

func TestImmediateDealerWithoutPeerSendsErrAgain(t *testing.T) {
	ctx := newContext(t)
	d := newSocket(t, ctx, DEALER)
	d.SetInt(Immediate, 1)
	d.Connect("tcp://127.0.0.1:1") // nothing listens there
	if err := d.Send([][]byte{[]byte("x")}, DontWait); !errors.Is(err, ErrAgain) {
		t.Fatalf("err = %v, want ErrAgain", err)
	}
}

func TestRouterMandatoryUnknownPeerIsHostUnreachable(t *testing.T) {
	ctx := newContext(t)
	r := newSocket(t, ctx, ROUTER)
	r.SetInt(RouterMandatory, 1)
	r.Bind("inproc://mandatory")
	err := r.Send([][]byte{[]byte("nobody"), []byte("x")}, DontWait)
	if !errors.Is(err, ErrHostUnreach) {
		t.Fatalf("err = %v, want EHOSTUNREACH", err)
	}
}

func TestPubSubFiltersByTopic(t *testing.T) {
	ctx := newContext(t)
	pub := newSocket(t, ctx, PUB)
	pub.Bind("inproc://pubsub")
	sub := newSocket(t, ctx, SUB)
	sub.SetBytes(Subscribe, []byte("raft"))
	sub.Connect("inproc://pubsub")
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) { // a late subscriber misses early messages
		pub.Send([][]byte{[]byte("zstatus"), []byte("no")}, DontWait)
		pub.Send([][]byte{[]byte("raft"), []byte("yes")}, DontWait)
		if msg, err := sub.Recv(DontWait); err == nil {
			if string(msg[0]) != "raft" || string(msg[1]) != "yes" {
				t.Fatalf("got %q", msg)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no message through the subscription")
}

func TestPollerReportsReadableSocket(t *testing.T) {
	ctx := newContext(t)
	a := newSocket(t, ctx, PULL)
	a.Bind("inproc://poll-a")
	b := newSocket(t, ctx, PULL)
	b.Bind("inproc://poll-b")
	push := newSocket(t, ctx, PUSH)
	push.Connect("inproc://poll-b")
	var p Poller
	p.Add(a, PollIn)
	p.Add(b, PollIn)
	ev, err := p.Poll(0)
	if err != nil || ev[0] != 0 || ev[1] != 0 {
		t.Fatalf("idle poll = %v, %v", ev, err)
	}
	push.Send([][]byte{[]byte("hi")}, 0)
	ev, err = p.Poll(2 * time.Second)
	if err != nil || ev[0] != 0 || ev[1]&PollIn == 0 {
		t.Fatalf("poll = %v, %v", ev, err)
	}
	start := time.Now()
	b.Recv(0)
	if ev, _ := p.Poll(30 * time.Millisecond); ev[0]|ev[1] != 0 || time.Since(start) < 25*time.Millisecond {
		t.Fatalf("timed poll = %v after %v", ev, time.Since(start))
	}
}

func TestOptionsReadBack(t *testing.T) {
	ctx := newContext(t)
	s := newSocket(t, ctx, DEALER)
	cases := []struct {
		opt   Option
		value int
	}{{Linger, 200}, {SndHWM, 64}, {RcvHWM, 100}, {Immediate, 1}, {ReconnectIvl, 100},
		{ReconnectIvlMax, 500}, {TCPKeepalive, 1}, {TCPKeepaliveIdle, 30}, {SndTimeo, 50}}
	for _, c := range cases {
		if err := s.SetInt(c.opt, c.value); err != nil {
			t.Fatalf("set %d: %v", c.opt, err)
		}
		if got, err := s.GetInt(c.opt); err != nil || got != c.value {
			t.Fatalf("option %d = %d, %v; want %d", c.opt, got, err, c.value)
		}
	}
	if err := s.SetInt64(MaxMsgSize, 5<<30); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetInt64(MaxMsgSize); got != 5<<30 {
		t.Fatalf("MAXMSGSIZE = %d", got)
	}
	if m, _ := s.GetInt(Mechanism); m != MechanismNull {
		t.Fatalf("mechanism %d, want NULL", m)
	}
}

func TestZ85AndCurveKeys(t *testing.T) {
	if !Has("curve") {
		t.Skip("libzmq built without CURVE")
	}
	// ZeroMQ RFC 32's test vector.
	raw := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}
	text, err := Z85Encode(raw)
	if err != nil || text != "HelloWorld" {
		t.Fatalf("Z85Encode = %q, %v", text, err)
	}
	back, err := Z85Decode(text)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("Z85Decode = %x, %v", back, err)
	}
	if _, err := Z85Decode("Hell"); err == nil {
		t.Fatal("Z85Decode accepted 4 characters")
	}
	pub, sec, err := CurveKeypair()
	if err != nil || len(pub) != 40 || len(sec) != 40 {
		t.Fatalf("CurveKeypair = %q %q %v", pub, sec, err)
	}
	derived, err := CurvePublic(sec)
	if err != nil || derived != pub {
		t.Fatalf("CurvePublic = %q, %v; want %q", derived, err, pub)
	}
}

func TestClosedSocketIsErrClosed(t *testing.T) {
	ctx := newContext(t)
	s, _ := ctx.NewSocket(PUSH)
	s.Close()
	if err := s.Send([][]byte{{1}}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestMonitorReportsConnectAndDisconnect(t *testing.T) {
	ctx := newContext(t)
	server := newSocket(t, ctx, ROUTER)
	server.Bind("tcp://127.0.0.1:*")
	endpoint, _ := server.LastEndpoint()
	client := newSocket(t, ctx, DEALER)
	mon, err := ctx.Monitor(client, EventConnected|EventDisconnected)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	mon.SetDuration(RcvTimeo, 3*time.Second)
	client.Connect(endpoint)
	expect := func(want Event) {
		t.Helper()
		for {
			msg, err := mon.Recv(0)
			if err != nil {
				t.Fatalf("waiting for event %#x: %v", want, err)
			}
			ev, _, addr, err := ParseEvent(msg)
			if err != nil {
				t.Fatal(err)
			}
			if ev == want {
				if addr != endpoint {
					t.Fatalf("event for %q, want %q", addr, endpoint)
				}
				return
			}
		}
	}
	expect(EventConnected)
	server.Close()
	expect(EventDisconnected)
	if err := StopMonitor(client); err != nil {
		t.Fatal(err)
	}
}
