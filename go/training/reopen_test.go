package training

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"zmqnode/security"
	"zmqnode/zmq"
)

// A PUSH whose key the PULL's ZAP refuses (status 400) is never retried by
// libzmq 4.3; watched, it is reopened with backoff and, once the key is
// admitted, the same socket gets through (docs/PROTOCOL.md §1.1).
func TestARefusedPushReopensOnceItsKeyIsAdmitted(t *testing.T) {
	sp, ss, _ := zmq.CurveKeypair()
	key := func() *security.NodeKeys {
		public, secret, err := zmq.CurveKeypair()
		if err != nil {
			t.Fatal(err)
		}
		return &security.NodeKeys{ServerPublic: sp, ServerSecret: ss, Public: public, Secret: secret}
	}
	leader, trainer := key(), key()
	leader.Members = []string{leader.Public} // the trainer's node is not admitted yet
	ctxA, _ := zmq.NewContext()
	defer ctxA.Term()
	gate, err := security.StartAuthenticator(ctxA, leader, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Stop()
	pull, err := (&security.Sockets{Ctx: ctxA, Keys: leader}).Server(zmq.PULL, "tcp://127.0.0.1:*", security.Peers,
		security.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pull.Close()
	endpoint, _ := pull.LastEndpoint()

	ctxB, _ := zmq.NewContext()
	defer ctxB.Term()
	push, _ := ctxB.NewSocket(zmq.PUSH)
	defer push.Close()
	push.SetInt(zmq.Linger, 0)
	push.SetInt(zmq.Immediate, 1)
	if err := security.MakeClient(push, trainer); err != nil {
		t.Fatal(err)
	}
	w, err := watchAndConnect(ctxB.Monitor, push, endpoint, "leader's results PULL")
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()

	counts := map[string]int{}
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("never got through: %v %q", counts, logs)
		}
		w.poll(time.Now(), func(k string) { counts[k]++ }, logf)
		if counts["trainer_handshake_refused"] >= 2 && len(gate.Members()) == 1 {
			gate.SetMembers([]string{leader.Public, trainer.Public})
		}
		err := push.Send([][]byte{[]byte("result")}, zmq.DontWait)
		if err == nil {
			break
		}
		if !errors.Is(err, zmq.ErrAgain) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pull.SetDuration(zmq.RcvTimeo, 3*time.Second)
	if msg, err := pull.Recv(0); err != nil || string(msg[0]) != "result" {
		t.Fatalf("recv %q, %v", msg, err)
	}
	if counts["trainer_handshake_refused"] < 2 || counts["trainer_link_reopened"] < 2 {
		t.Fatalf("counts %v", counts)
	}
	refusals := 0
	for _, l := range logs {
		if strings.Contains(l, "refused our connection") {
			refusals++
		}
	}
	if refusals != 1 {
		t.Fatalf("a refusal is logged once per reason: %q", logs)
	}
}
