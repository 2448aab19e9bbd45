package node

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"zmqnode/replies"
	"zmqnode/wire"
)

// fakeRaft stands in for the core: who leads, and proposals kept for the
// test to commit (apply) or drop.
type fakeRaft struct {
	leader   string
	self     string
	proposed [][]byte
	done     []func(bool)
	reads    []string
}

type handlerRig struct {
	h    *Handlers
	raft *fakeRaft
}

func newRig(t *testing.T) *handlerRig {
	t.Helper()
	f := &fakeRaft{self: "127.0.0.1:9000", leader: "127.0.0.1:9000"}
	cfg, err := ParseArgs([]string{"--insecure", "--max-pending", "2"})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handlers{
		Cfg: cfg, ID: f.self, Registry: newTestRegistry(t), Waiters: NewWaiters(f.self, nil),
		Proposals: NewProposals(), Batcher: NewBatcher(f.self),
		Leadership: Leadership{
			LeaderID: func() string { return f.leader },
			IsLeader: func() bool { return f.leader == f.self },
			Propose: func(data []byte, done func(bool)) bool {
				if f.leader != f.self {
					return false
				}
				f.proposed = append(f.proposed, data)
				f.done = append(f.done, done)
				return true
			},
		},
		Status: func() *wire.Object { return wire.NewObject(wire.Field{Key: "node", Value: f.self}) },
		Count:  func(string) {},
		Logf:   func(string, string, ...any) {},
	}
	return &handlerRig{h: h, raft: f}
}

// commit applies every proposal as the loop would, then answers proposers.
func (r *handlerRig) commit(t *testing.T) {
	t.Helper()
	for i, data := range r.raft.proposed {
		if _, err := r.h.Registry.Apply(uint64(i+2), data); err != nil {
			t.Fatal(err)
		}
		r.raft.done[i](true)
	}
	r.raft.proposed, r.raft.done = nil, nil
}

// readIndex confirms every parked read at the current applied index.
func (r *handlerRig) readIndex() {
	r.h.Waiters.IssueReads(func(ctx string) bool { r.raft.reads = append(r.raft.reads, ctx); return r.raft.leader != "" })
	for _, ctx := range r.raft.reads {
		r.h.Waiters.ReadIndexReady(ctx, 0, 0)
	}
	r.raft.reads = nil
}

func request(typ string, fields ...wire.Field) *wire.Object {
	base := []wire.Field{{Key: "v", Value: int64(1)}, {Key: "type", Value: typ}, {Key: "id", Value: "req-" + typ}}
	return asReceived(wire.NewObject(append(base, fields...)...))
}

func modelFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "ml", "testdata", "models", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func status(o *wire.Object) string { s, _ := o.Str("status"); return s }
func code(o *wire.Object) string   { s, _ := o.Str("code"); return s }

func TestImportIsAnsweredOnceCommittedAndThenServed(t *testing.T) {
	r := newRig(t)
	rec := &replies.Recorder{}
	req := request(wire.TypeImport)
	r.h.Dispatch(req, [][]byte{modelFile(t, "binary.bin")}, rec)
	if len(rec.Answers) != 0 || !rec.Waiting {
		t.Fatalf("answered before commit: %v", rec.Answers)
	}
	r.commit(t)
	if status(rec.Last()) != "OK" {
		t.Fatalf("%s", rec.Last())
	}
	id, _ := rec.Last().Str("model_id")
	if id != ModelIDFor("req-IMPORT") {
		t.Fatalf("model id %s", id)
	}

	pred := &replies.Recorder{}
	in := wire.FromFloat32([]int{2, 3}, []float32{0, 0, 0, 1, 1, 1})
	desc, blob := wire.ArrayToFrame(in, 0)
	r.h.Dispatch(request(wire.TypePredict, wire.Field{Key: "model_id", Value: id}, wire.Field{Key: "inputs", Value: desc},
		wire.Field{Key: "proba", Value: true}), [][]byte{blob}, pred)
	r.h.Batcher.Flush()
	if status(pred.Last()) != "OK" || len(pred.Blobs[0]) != 2 {
		t.Fatalf("%s", pred.Last())
	}
	if node, _ := pred.Last().Str("node"); node != r.raft.self {
		t.Fatal("PREDICT replies name the node")
	}
}

func TestAFollowerRedirectsWritesAndSaysNotLeaderWithoutALeader(t *testing.T) {
	r := newRig(t)
	r.raft.leader = "127.0.0.1:9001"
	for _, typ := range []string{wire.TypeImport, wire.TypeTrain} {
		rec := &replies.Recorder{}
		r.h.Dispatch(request(typ), nil, rec)
		if l, _ := rec.Last().Str("leader"); status(rec.Last()) != "REDIRECT" || l != "127.0.0.1:9001" {
			t.Fatalf("%s: %s", typ, rec.Last())
		}
	}
	r.raft.leader = ""
	rec := &replies.Recorder{}
	r.h.Dispatch(request(wire.TypeImport), nil, rec)
	if code(rec.Last()) != "NOT_LEADER" {
		t.Fatalf("%s", rec.Last())
	}
}

func TestAnUnknownModelIsNotFoundOnlyAfterTheReadIndex(t *testing.T) {
	r := newRig(t)
	rec := &replies.Recorder{}
	r.h.Dispatch(request(wire.TypeInfo, wire.Field{Key: "model_id", Value: "mnope"}), nil, rec)
	if len(rec.Answers) != 0 {
		t.Fatal("NOT_FOUND before catching up (§5.3)")
	}
	r.readIndex()
	if code(rec.Last()) != "NOT_FOUND" {
		t.Fatalf("%s", rec.Last())
	}
}

func TestAReadWithNoLeaderTimesOutUnavailable(t *testing.T) {
	r := newRig(t)
	r.raft.leader = ""
	rec := &replies.Recorder{}
	r.h.Dispatch(request(wire.TypeList, wire.Field{Key: "timeout_ms", Value: wire.Number("10")}), nil, rec)
	r.readIndex()
	r.h.Waiters.Expire(time.Now().Add(time.Second))
	if code(rec.Last()) != "UNAVAILABLE" {
		t.Fatalf("%s", rec.Last())
	}
}

func TestParkedRequestsPastMaxPendingGetBusy(t *testing.T) {
	r := newRig(t) // --max-pending 2
	var recs []*replies.Recorder
	for i := 0; i < 3; i++ {
		rec := &replies.Recorder{}
		recs = append(recs, rec)
		r.h.Dispatch(request(wire.TypeList), nil, rec)
	}
	if code(recs[2].Last()) != "BUSY" || len(recs[0].Answers) != 0 {
		t.Fatalf("%v", recs[2].Answers)
	}
}

func TestBadRequestsGetStableCodes(t *testing.T) {
	r := newRig(t)
	for name, tc := range map[string]struct {
		req   *wire.Object
		blobs [][]byte
		want  string
	}{
		"unknown type":      {request("FROB"), nil, "UNKNOWN_TYPE"},
		"import two blobs":  {request(wire.TypeImport), [][]byte{{1}, {2}}, "BAD_REQUEST"},
		"import garbage":    {request(wire.TypeImport), [][]byte{[]byte("not a model")}, "BAD_INPUT"},
		"predict no model":  {request(wire.TypePredict), nil, "BAD_REQUEST"},
		"fetch bad offset":  {request(wire.TypeFetch, wire.Field{Key: "model_id", Value: "m1"}, wire.Field{Key: "offset", Value: wire.Number("-1")}, wire.Field{Key: "length", Value: wire.Number("1")}), nil, "BAD_REQUEST"},
		"fetch no such":     {request(wire.TypeFetch, wire.Field{Key: "model_id", Value: "m1"}, wire.Field{Key: "offset", Value: wire.Number("0")}, wire.Field{Key: "length", Value: wire.Number("1")}), nil, "NOT_FOUND"},
		"proba not boolean": {request(wire.TypePredict, wire.Field{Key: "model_id", Value: "m1"}, wire.Field{Key: "inputs", Value: wire.NewObject(wire.Field{Key: "dtype", Value: "float32"}, wire.Field{Key: "shape", Value: []any{wire.Number("1"), wire.Number("1")}})}, wire.Field{Key: "proba", Value: "yes"}), [][]byte{{0, 0, 0, 0}}, "BAD_REQUEST"},
	} {
		rec := &replies.Recorder{}
		r.h.Dispatch(tc.req, tc.blobs, rec)
		if code(rec.Last()) != tc.want {
			t.Errorf("%s: %s", name, rec.Last())
		}
	}
}

func TestFetchServesChunksOfAGoodCopy(t *testing.T) {
	r := newRig(t)
	r.h.Dispatch(request(wire.TypeImport), [][]byte{modelFile(t, "binary.bin")}, &replies.Recorder{})
	r.commit(t)
	id := ModelIDFor("req-IMPORT")
	size := r.h.Registry.Models[id].Size
	rec := &replies.Recorder{}
	r.h.Dispatch(request(wire.TypeFetch, wire.Field{Key: "model_id", Value: id}, wire.Field{Key: "offset", Value: wire.Number("10")},
		wire.Field{Key: "length", Value: wire.Number("100000000")}), nil, rec)
	if status(rec.Last()) != "OK" || int64(len(rec.Blobs[0][0])) != size-10 {
		t.Fatalf("%s", rec.Last())
	}
}

func TestARetriedTrainIsAnsweredFromTheRegistry(t *testing.T) {
	r := newRig(t)
	train := request(wire.TypeTrain)
	// The model of this request id is already committed (an earlier leader).
	data := modelFile(t, "binary.bin")
	cmd, _ := EncodeStoreModel("req-TRAIN", data, 1, wire.NewObject(wire.Field{Key: "task", Value: "binary"}))
	r.h.Registry.Apply(2, cmd)
	rec := &replies.Recorder{}
	r.h.Dispatch(train, nil, rec)
	r.readIndex()
	if status(rec.Last()) != "OK" {
		t.Fatalf("%s", rec.Last())
	}
	if id, _ := rec.Last().Str("model_id"); id != ModelIDFor("req-TRAIN") {
		t.Fatal(id)
	}
}

func TestPredictWithNaNIsBadInputAndSparesTheBatch(t *testing.T) {
	r := newRig(t)
	r.h.Dispatch(request(wire.TypeImport), [][]byte{modelFile(t, "binary.bin")}, &replies.Recorder{})
	r.commit(t)
	id := ModelIDFor("req-IMPORT")
	nan := float32(math.NaN())
	good, bad := &replies.Recorder{}, &replies.Recorder{}
	for _, c := range []struct {
		rec  *replies.Recorder
		rows []float32
	}{{good, []float32{0, 1, 0}}, {bad, []float32{0, nan, 0}}} {
		desc, blob := wire.ArrayToFrame(wire.FromFloat32([]int{1, 3}, c.rows), 0)
		r.h.Dispatch(request(wire.TypePredict, wire.Field{Key: "model_id", Value: id}, wire.Field{Key: "inputs", Value: desc}),
			[][]byte{blob}, c.rec)
	}
	r.h.Batcher.Flush()
	if status(good.Last()) != "OK" {
		t.Fatalf("%s", good.Last())
	}
	msg, _ := bad.Last().Str("message")
	if code(bad.Last()) != "BAD_INPUT" || msg != "model "+id+": inputs contain NaN or infinite values (or values beyond float32), first at row 0" {
		t.Fatalf("%s", bad.Last())
	}
}
