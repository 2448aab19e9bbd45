package node

import (
	"fmt"
	"testing"
	"time"

	"zmqnode/security"
	"zmqnode/zmq"
)

func curveKeys(t *testing.T, server [2]string) *security.NodeKeys {
	t.Helper()
	public, secret, err := zmq.CurveKeypair()
	if err != nil {
		t.Fatal(err)
	}
	return &security.NodeKeys{ServerPublic: server[0], ServerSecret: server[1], Public: public, Secret: secret}
}

// libzmq 4.3 never retries a connection whose handshake ZAP refused: a
// DEALER whose key is admitted only later gets through on the same socket
// once the reopener disconnects and reconnects it (docs/PROTOCOL.md §1.1).
func TestRefusedLinkReopensOnceItsKeyIsAdmitted(t *testing.T) {
	sp, ss, err := zmq.CurveKeypair()
	if err != nil {
		t.Fatal(err)
	}
	a, b := curveKeys(t, [2]string{sp, ss}), curveKeys(t, [2]string{sp, ss})
	a.Members = []string{a.Public} // b is not admitted yet
	ctxA, _ := zmq.NewContext()
	defer ctxA.Term()
	gate, err := security.StartAuthenticator(ctxA, a, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Stop()
	router, _ := ctxA.NewSocket(zmq.ROUTER)
	defer router.Close()
	router.SetInt(zmq.Linger, 0)
	if err := security.MakeServer(router, a, security.Peers); err != nil {
		t.Fatal(err)
	}
	if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	endpoint, _ := router.LastEndpoint()

	ctxB, _ := zmq.NewContext()
	defer ctxB.Term()
	dealer, _ := ctxB.NewSocket(zmq.DEALER)
	defer dealer.Close()
	dealer.SetInt(zmq.Linger, 0)
	dealer.SetInt(zmq.Immediate, 1)
	if err := security.MakeClient(dealer, b); err != nil {
		t.Fatal(err)
	}
	mon, err := ctxB.Monitor(dealer, zmq.EventHandshakeSucceeded|zmq.RefusedEvents)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	defer zmq.StopMonitor(dealer)
	if err := dealer.Connect(endpoint); err != nil {
		t.Fatal(err)
	}

	counts := map[string]int{}
	var warnings []string
	r := newReopener(func(k string) { counts[k]++ },
		func(f string, args ...any) { warnings = append(warnings, fmt.Sprintf(f, args...)) },
		func(string, ...any) {})
	mon.SetDuration(zmq.RcvTimeo, 20*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	through := false
	for !through {
		if time.Now().After(deadline) {
			t.Fatalf("the link never got through: %v", counts)
		}
		if frames, err := mon.Recv(0); err == nil {
			ev, value, _, _ := zmq.ParseEvent(frames)
			switch {
			case ev == zmq.EventHandshakeSucceeded:
				r.gotThrough("peer", linkRaft)
				through = true
			case ev&zmq.RefusedEvents != 0:
				if ev != zmq.EventHandshakeFailedAuth || value != 400 {
					t.Fatalf("refused with event %d value %d, want ZAP status 400", ev, value)
				}
				r.refused(dealer, endpoint, "peer", linkRaft, ev, value, time.Now())
				if counts["peer_handshake_refused"] == 2 { // refused once more after a reopening: admit it
					gate.SetMembers([]string{a.Public, b.Public})
				}
			}
		}
		for _, k := range r.due(time.Now()) {
			if r.take(k) {
				if err := dealer.Connect(endpoint); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if counts["peer_handshake_refused"] < 2 || counts["peer_link_reopened"] < 2 {
		t.Fatalf("counts %v", counts)
	}
	if len(warnings) != 1 {
		t.Fatalf("a refusal is logged once per link and reason: %q", warnings)
	}
	if err := dealer.Send([][]byte{[]byte("hello")}, zmq.DontWait); err != nil {
		t.Fatalf("send after the handshake: %v", err)
	}
	router.SetDuration(zmq.RcvTimeo, 3*time.Second)
	if msg, err := router.Recv(0); err != nil || string(msg[len(msg)-1]) != "hello" {
		t.Fatalf("recv %q, %v", msg, err)
	}
}

// The backoff doubles per refusal in a row up to zmq.ReopenMax and starts over
// once a handshake succeeds.
func TestReopenBackoffDoublesToTheMaxAndResets(t *testing.T) {
	r := newReopener(func(string) {}, func(string, ...any) {}, func(string, ...any) {})
	now := time.Unix(0, 0)
	var delays []time.Duration
	for i := 0; i < 6; i++ {
		r.refused(nil, "", "p", linkSub, zmq.EventHandshakeFailedAuth, 400, now)
		delays = append(delays, r.at[linkKey{"p", linkSub}].Sub(now))
		r.take(linkKey{"p", linkSub})
	}
	want := []time.Duration{200, 400, 800, 1600, 2000, 2000}
	for i := range want {
		if delays[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v", delays)
		}
	}
	r.gotThrough("p", linkSub)
	r.refused(nil, "", "p", linkSub, zmq.EventHandshakeFailedAuth, 400, now)
	if d := r.at[linkKey{"p", linkSub}].Sub(now); d != zmq.ReopenFirst {
		t.Fatalf("after a success the backoff starts over: %v", d)
	}
	r.forget("p")
	if len(r.due(now.Add(time.Hour))) != 0 || len(r.logged) != 0 {
		t.Fatal("forget drops the peer")
	}
}
