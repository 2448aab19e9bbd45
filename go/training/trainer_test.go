package training

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

func TestTheChunkCacheDropsTheLeastRecentlyUsedChunkPastItsBytes(t *testing.T) {
	arr := func(n int) wire.Array { return wire.FromFloat32([]int{n}, make([]float32, n)) }
	c := NewChunkCache(100)       // bytes
	c.Put("a", 0, arr(5), arr(5)) // 40 bytes
	c.Put("a", 1, arr(5), arr(5))
	c.Get("a", 0) // now 1 is the least recently used
	c.Put("b", 0, arr(5), arr(5))
	_, _, has0 := c.Get("a", 0)
	_, _, has1 := c.Get("a", 1)
	_, _, hasB := c.Get("b", 0)
	eq(t, []bool{has0, has1, hasB}, []bool{true, false, true})
	eq(t, c.Size, int64(80))
	c.Put("huge", 0, arr(100), arr(100)) // alone over the bound: kept, the rest goes
	eq(t, c.Len(), 1)
}

func TestHandleTrainsCachesAndSaysWhatIsMissing(t *testing.T) {
	x := wire.FromFloat32([]int{4, 2}, []float32{0, 0, 0, 1, 1, 0, 1, 1})
	y := wire.FromFloat32([]int{4}, []float32{0, 1, 1, 0}) // 1-D: one column
	opts := wire.NewObject(wire.Field{Key: "hidden_layers", Value: []any{int64(3)}}, wire.Field{Key: "task", Value: "binary"},
		wire.Field{Key: "epochs", Value: 2}, wire.Field{Key: "epochs_per_round", Value: 1})
	params := wire.FromFloat32([]int{2*3 + 3 + 3 + 1}, make([]float32, 13))
	cache := NewChunkCache(1 << 20)
	r := Handle(&Job{JobID: "j#1", Round: 0, Chunk: 0, ReplyTo: "tcp://h:1", Options: opts, Params: params, X: &x, Y: &y}, cache, "me")
	if r.Error != "" || r.Params == nil || r.NSamples != 4 {
		t.Fatalf("%+v", r)
	}
	r = Handle(&Job{JobID: "j#1", Round: 1, Chunk: 0, Options: opts, Params: params}, cache, "me")
	if r.Params == nil || r.Round != 1 {
		t.Fatalf("the cached rows were not used: %+v", r)
	}
	r = Handle(&Job{JobID: "j#1", Round: 1, Chunk: 1, Options: opts, Params: params}, cache, "me")
	eq(t, []any{r.MissingData, r.Params == nil, r.Trainer}, []any{true, true, "me"})
	bad := wire.FromFloat32([]int{8}, make([]float32, 8))
	r = Handle(&Job{JobID: "j#2", Chunk: 0, Options: opts, Params: params, X: &bad, Y: &y}, cache, "me")
	eq(t, r.Error, "BadInput('chunk needs 2-D x and y with the same, non-zero rows; got (8,), (4, 1)')")
}

// leader is the leader's side of the training path in a test: a results
// PULL and a PUSH to one trainer, with the given keys (nil: plaintext).
type leader struct {
	ctx     *zmq.Context
	gk      *security.Gatekeeper
	results *zmq.Socket
	push    *zmq.Socket
	replyTo string
}

func newLeader(t *testing.T, keys *security.NodeKeys, trainer string) *leader {
	t.Helper()
	l := &leader{ctx: newCtx(t)}
	var err error
	if keys != nil {
		if l.gk, err = security.StartAuthenticator(l.ctx, keys, t.Logf); err != nil {
			t.Fatal(err)
		}
	}
	s := &security.Sockets{Ctx: l.ctx, Keys: keys}
	zero := time.Duration(0)
	for i := 0; i < 20 && l.results == nil; i++ {
		l.replyTo = TCPEndpoint("127.0.0.1", freeBase(t)+ResultsOffset)
		l.results, _ = s.Server(zmq.PULL, l.replyTo, security.Peers, security.ServerOptions{Linger: &zero})
	}
	if l.push, err = s.Client(zmq.PUSH, trainer, security.ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.push.Close()
		l.results.Close()
		if l.gk != nil {
			l.gk.Stop()
		}
		l.ctx.Term()
	})
	return l
}

func (l *leader) send(t *testing.T, j *Job) {
	t.Helper()
	frames, err := EncodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.push.Send(frames, zmq.DontWait); err != nil {
		t.Fatal(err)
	}
}

// result waits up to d for one result (nil if none came).
func (l *leader) result(t *testing.T, d time.Duration) *Result {
	t.Helper()
	p := &zmq.Poller{}
	p.Add(l.results, zmq.PollIn)
	ev, err := p.Poll(d)
	if err != nil || ev[0]&zmq.PollIn == 0 {
		return nil
	}
	frames, err := l.results.Recv(0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeResult(frames)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func smallJob(id string, chunk int, replyTo string, withData bool) *Job {
	x := wire.FromFloat32([]int{4, 2}, []float32{0, 0, 0, 1, 1, 0, 1, 1})
	y := wire.FromFloat32([]int{4, 1}, []float32{0, 1, 1, 0})
	j := &Job{JobID: id, Chunk: chunk, ReplyTo: replyTo, Options: wire.NewObject(
		wire.Field{Key: "hidden_layers", Value: []any{int64(2)}}, wire.Field{Key: "task", Value: "binary"},
		wire.Field{Key: "epochs", Value: 1}, wire.Field{Key: "epochs_per_round", Value: 1}),
		Params: wire.FromFloat32([]int{2*2 + 2 + 2 + 1}, make([]float32, 9))}
	if withData {
		j.X, j.Y = &x, &y
	}
	return j
}

func TestTheTrainerAnswersAtReplyToAndDropsJobsWithABadOne(t *testing.T) {
	tr := startGoTrainer(t)
	l := newLeader(t, nil, tr.Endpoint())
	for _, bad := range []string{"127.0.0.1:9000", "tcp://*:9000", "ipc:///tmp/x"} {
		l.send(t, smallJob("bad#1", 0, bad, true))
	}
	l.send(t, smallJob("good#1", 0, l.replyTo, true))
	r := l.result(t, waitFor)
	if r == nil || r.JobID != "good#1" || r.Params == nil || r.Trainer != tr.Name() {
		t.Fatalf("%+v", r)
	}
	state := tr.State()
	eq(t, []any{state["dropped"], state["jobs"], state["state"]}, []any{int64(3), int64(1), "idle"})
	eq(t, tr.Status(true), "training")
	tr.Stop()
	eq(t, tr.Status(false), "down")
}

func TestTheTrainerKeepsAtMost16ResultSockets(t *testing.T) {
	tr := startGoTrainer(t)
	l := newLeader(t, nil, tr.Endpoint())
	base := freeBase(t)
	for i := 0; i < MaxPushers+4; i++ { // nobody listens there: results queue or drop
		l.send(t, smallJob(fmt.Sprintf("j#%d", i), 0, TCPEndpoint("127.0.0.1", base+i), true))
	}
	l.send(t, smallJob("last#1", 0, l.replyTo, true))
	if r := l.result(t, waitFor); r == nil {
		t.Fatal("no result")
	}
	eq(t, tr.State()["result_sockets"], MaxPushers)
}

// keyDir makes a key directory with a cluster keypair and members a and b
// (b's public key kept outside members/: a stranger until allowed).
func keyDir(t *testing.T) (a, b *security.NodeKeys) {
	t.Helper()
	if !zmq.Has("curve") {
		t.Skip("libzmq without CURVE")
	}
	dir := t.TempDir()
	for _, sub := range []string{"members", "others"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := security.CreateKeypair(dir, dir, security.ClusterKey); err != nil {
		t.Fatal(err)
	}
	aPath, err := security.CreateKeypair(filepath.Join(dir, "members"), dir, "node0")
	if err != nil {
		t.Fatal(err)
	}
	bPath, err := security.CreateKeypair(filepath.Join(dir, "others"), dir, "stranger")
	if err != nil {
		t.Fatal(err)
	}
	if a, err = security.LoadNodeKeys(dir, aPath, "none"); err != nil {
		t.Fatal(err)
	}
	pub, sec, err := security.LoadKeypair(bPath)
	if err != nil {
		t.Fatal(err)
	}
	copyB := *a
	copyB.Public, copyB.Secret = pub, sec
	copyB.Members = append(append([]string{}, a.Members...), pub) // b's leader admits both
	return a, &copyB
}

// clusterKeys makes a key directory as keygen --nodes n does: the cluster
// keypair and n member keypairs node0..; their paths and loaded keys.
func clusterKeys(t *testing.T, n int) (dir string, paths []string, keys []*security.NodeKeys) {
	t.Helper()
	if !zmq.Has("curve") {
		t.Skip("libzmq without CURVE")
	}
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, security.MembersDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := security.CreateKeypair(dir, dir, security.ClusterKey); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		p, err := security.CreateKeypair(filepath.Join(dir, security.MembersDir), dir, fmt.Sprintf("node%d", i))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for _, p := range paths {
		k, err := security.LoadNodeKeys(dir, p, security.ClientAuthNone)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return dir, paths, keys
}

func TestTheTrainerAdmitsOnlyMembersAndFollowsTheAllowList(t *testing.T) {
	a, b := keyDir(t)
	var mu sync.Mutex
	allowed := []string{a.Public}
	var tr *Trainer
	var err error
	for i := 0; i < 20 && tr == nil; i++ {
		tr, err = StartTrainer(nil, TrainerConfig{Host: "127.0.0.1", Port: freeBase(t), Keys: a, Logf: t.Logf,
			Allowed: func() []string { mu.Lock(); defer mu.Unlock(); return append([]string{}, allowed...) }})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	member := newLeader(t, a, tr.Endpoint())
	member.send(t, smallJob("m#1", 0, member.replyTo, true))
	if r := member.result(t, waitFor); r == nil || r.Params == nil {
		t.Fatalf("a member's job: %+v", r)
	}
	stranger := newLeader(t, b, tr.Endpoint())
	_ = stranger.push.SetInt(zmq.SndTimeo, 0)
	frames, _ := EncodeJob(smallJob("s#1", 0, stranger.replyTo, true))
	_ = stranger.push.Send(frames, zmq.DontWait) // queued: the handshake is refused
	if r := stranger.result(t, 1500*time.Millisecond); r != nil {
		t.Fatalf("a stranger's job was trained: %+v", r)
	}
	mu.Lock()
	allowed = append(allowed, b.Public) // the membership changed
	mu.Unlock()
	time.Sleep(pollInterval + 200*time.Millisecond) // the trainer re-reads it
	again := newLeader(t, b, tr.Endpoint())         // a new connection is admitted
	again.send(t, smallJob("s#2", 0, again.replyTo, true))
	if r := again.result(t, waitFor); r == nil || r.JobID != "s#2" {
		t.Fatalf("the new member's job: %+v", r)
	}
}
