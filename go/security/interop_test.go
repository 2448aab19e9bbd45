package security

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zmqnode/wire"
	"zmqnode/zmq"
)

// A Python node's raft ROUTER, as node.py makes it: ZAP handler
// (security.start_authenticator), CURVE server on zmqnode.peers. It answers
// each wire request with an OK reply naming the request's type, until it
// gets type QUIT; then it prints how many keys its Gatekeeper refused.
const pythonServer = `
import sys, zmq
from zmqnode.transport import security, wire
keys = security.load_node_keys(sys.argv[1], sys.argv[2], "none")
ctx = zmq.Context()
gate = security.start_authenticator(ctx, keys)
s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.LINGER, 0)
security.make_server(s, keys, security.PEERS)
s.bind("tcp://127.0.0.1:*")
print(s.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
deadline = 40
while s.poll(deadline * 1000):
    frames = s.recv_multipart()
    header, blobs = wire.decode(frames[1:])
    if header["type"] == "QUIT":
        break
    reply = wire.ok_reply(header, node="python", blob_bytes=sum(len(b) for b in blobs))
    s.send_multipart([frames[0], *wire.encode(reply, [b"\x00" * 3])])
print("denials=%d" % gate._allow.denials, flush=True)
s.close()
gate.stop()
ctx.term()
`

func TestInteropGoCurveClientToPythonNode(t *testing.T) {
	py, root := python(t)
	dir := t.TempDir()
	keygen := exec.Command(py, "-m", "zmqnode", "keygen", "--dir", dir, "--nodes", "2")
	keygen.Dir = root
	if out, err := keygen.CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	cmd := exec.Command(py, "-c", pythonServer, dir, filepath.Join(dir, "node0.key_secret"))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("python server's stderr:\n%s", stderr.String())
		}
	})
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	lineCh := make(chan string, 4)
	go func() {
		for lines.Scan() {
			lineCh <- lines.Text()
		}
		close(lineCh)
	}()
	var endpoint string
	select {
	case endpoint = <-lineCh:
	case <-time.After(30 * time.Second):
		t.Fatal("python server did not start")
	}
	keys, err := LoadNodeKeys(dir, filepath.Join(dir, "node1.key_secret"), ClientAuthNone)
	if err != nil {
		t.Fatal(err)
	}
	ctx, _ := zmq.NewContext()
	defer ctx.Term()
	request := func(k *NodeKeys, mtype string, wait time.Duration) *wire.Object {
		d, _ := ctx.NewSocket(zmq.DEALER)
		defer d.Close()
		d.SetInt(zmq.Linger, 200)
		if err := MakeClient(d, k); err != nil {
			t.Fatal(err)
		}
		d.Connect(endpoint)
		frames, err := wire.Encode(wire.NewObject(wire.Field{Key: "type", Value: mtype},
			wire.Field{Key: "id", Value: "go-1"}), [][]byte{[]byte("blob")})
		if err != nil {
			t.Fatal(err)
		}
		d.Send(frames, 0)
		var p zmq.Poller
		p.Add(d, zmq.PollIn)
		if ready, err := p.Poll(wait); err != nil || ready[0] == 0 {
			return nil
		}
		msg, err := d.Recv(0)
		if err != nil {
			t.Fatal(err)
		}
		h, blobs, err := wire.Decode(msg, wire.DecodeOptions{})
		if err != nil || len(blobs) != 1 {
			t.Fatalf("reply %q: %v", msg, err)
		}
		return h
	}
	h := request(keys, "STATUS", 10*time.Second)
	if h == nil {
		t.Fatal("the Python node did not answer a Go member")
	}
	if s, _ := h.Str("status"); s != "OK" || wire.HeaderType(h) != "STATUS" || wire.HeaderID(h) != "go-1" {
		t.Fatalf("reply %s", h)
	}
	if n, _ := h.Int("blob_bytes"); n != 4 {
		t.Fatalf("reply %s", h)
	}
	strangerPub, strangerSec, _ := zmq.CurveKeypair()
	stranger := &NodeKeys{ServerPublic: keys.ServerPublic, Public: strangerPub, Secret: strangerSec}
	if h := request(stranger, "STATUS", 700*time.Millisecond); h != nil {
		t.Fatal("the Python node answered an unknown key")
	}
	if h := request(keys, "QUIT", 200*time.Millisecond); h != nil {
		t.Fatalf("QUIT answered: %s", h)
	}
	select {
	case line := <-lineCh:
		if !strings.HasPrefix(line, "denials=") || line == "denials=0" {
			t.Fatalf("python said %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("python server did not finish")
	}
	cmd.Wait()
}
