package security

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"zmqnode/zmq"
)

func TestSocketsServerAndClientSpeakCurveAsMembers(t *testing.T) {
	dir := makeKeyDir(t, 2, 0)
	a, _ := LoadNodeKeys(dir, filepath.Join(dir, "node0.key_secret"), ClientAuthNone)
	b, _ := LoadNodeKeys(dir, filepath.Join(dir, "node1.key_secret"), ClientAuthNone)
	ctx, _ := zmq.NewContext()
	defer ctx.Term()
	gate, err := StartAuthenticator(ctx, a, (&logRecorder{}).logf)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Stop()
	server := &Sockets{Ctx: ctx, Keys: a}
	pull, err := server.Server(zmq.PULL, "tcp://127.0.0.1:*", Peers, ServerOptions{MaxMessageBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer pull.Close()
	endpoint, _ := pull.LastEndpoint()
	if Mechanism(pull) != "CURVE" {
		t.Fatalf("server mechanism %s", Mechanism(pull))
	}
	if l, _ := pull.GetInt(zmq.Linger); l != 200 {
		t.Fatalf("server linger %d", l)
	}
	if _, err := server.Server(zmq.PULL, endpoint, Peers, ServerOptions{}); !errors.As(err, new(*BindError)) {
		t.Fatalf("second bind: %v", err)
	}

	ctx2, _ := zmq.NewContext() // the other node
	defer ctx2.Term()
	client := &Sockets{Ctx: ctx2, Keys: b}
	push, err := client.Client(zmq.PUSH, endpoint, ClientOptions{Immediate: true, SendHWM: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	deadline := time.Now().Add(3 * time.Second)
	for { // IMMEDIATE: ErrAgain until the CURVE handshake is done
		err := push.Send([][]byte{[]byte("job")}, zmq.DontWait)
		if err == nil {
			break
		}
		if !errors.Is(err, zmq.ErrAgain) || time.Now().After(deadline) {
			t.Fatalf("send: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pull.SetDuration(zmq.RcvTimeo, 3*time.Second)
	if msg, err := pull.Recv(0); err != nil || string(msg[0]) != "job" {
		t.Fatalf("recv %q, %v", msg, err)
	}
}
