package node

import (
	"fmt"
	"net"
	"testing"
	"time"

	"zmqnode/replies"
	"zmqnode/wire"
)

// freeBase finds a client port whose derived ports (P-1000..P+4000) are free.
func freeBase(t *testing.T) int {
	t.Helper()
	for p := 21000 + int(time.Now().UnixNano()%20000); p < 60000; p += 7 {
		ok := true
		for _, off := range []int{-1000, 0, 1000, 2000, 3000, 4000} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+off))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free ports")
	return 0
}

// onLoop runs fn on the node's loop and waits for what it returns.
func onLoop[T any](n *Node, fn func() T) T {
	ch := make(chan T, 1)
	n.Submit(func() { ch <- fn() })
	return <-ch
}

// A one-node cluster, in process: it elects itself, commits an IMPORT
// dispatched as the HTTP port would, lists it, and stops on Stop.
func TestOneNodeClusterCommitsAndServes(t *testing.T) {
	port := freeBase(t)
	cfg, err := ParseArgs([]string{"--port", fmt.Sprint(port), "--insecure", "--no-trainer", "--http-port", "0",
		"--storage-dir", t.TempDir(), "--log-level", "WARNING"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run() }()
	defer func() {
		n.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the node did not stop")
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !onLoop(n, n.Core.IsLeader) {
		if time.Now().After(deadline) {
			t.Fatal("a lone voter must elect itself")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec := &replies.Recorder{}
	req := wire.NewObject(wire.Field{Key: "v", Value: 1}, wire.Field{Key: "type", Value: wire.TypeImport},
		wire.Field{Key: "id", Value: "imp-1"})
	n.Submit(func() { n.Dispatch(req, [][]byte{modelFile(t, "binary.bin")}, rec) })
	for onLoop(n, func() int { return len(rec.Answers) }) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("IMPORT not answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status(onLoop(n, rec.Last)) != "OK" {
		t.Fatalf("%s", rec.Last())
	}
	models := onLoop(n, func() int { return len(n.Registry.Models) })
	if models != 1 {
		t.Fatalf("%d models", models)
	}
}
