package training

// Interop with the Python node's training code over tcp://127.0.0.1: a Go
// coordinator whose trainers are a Python trainer process and a Go trainer,
// and Python-encoded jobs answered by a Go trainer. These tests need the
// repository's Python (/work/main/.venv, as CI has it) and skip without it.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"zmqnode/ml"
	"zmqnode/replies"
	"zmqnode/security"
	"zmqnode/wire"
	"zmqnode/zmq"
)

func repoPython(t *testing.T) (python, root string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	python = filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no repository Python at %s (CI has it): %v", python, err)
	}
	if testing.Short() {
		t.Skip("interop with Python processes (-short)")
	}
	return python, root
}

func runPython(t *testing.T, python, root string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"go/training/testdata/interop.py"}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("interop.py %v: %v\n%s\n%s", args, err, out, stderr)
	}
	return out
}

func startGoTrainer(t *testing.T) *Trainer { return startGoTrainerWith(t, nil) }

func startGoTrainerWith(t *testing.T, keys *security.NodeKeys) *Trainer {
	t.Helper()
	for i := 0; i < 20; i++ {
		tr, err := StartTrainer(nil, TrainerConfig{Host: "127.0.0.1", Port: freeBase(t), Keys: keys, Logf: t.Logf})
		if err == nil {
			t.Cleanup(tr.Stop)
			return tr
		}
	}
	t.Fatal("cannot start a Go trainer")
	return nil
}

// (b) A Python-encoded job sent to a Go trainer gets a result the Python
// decoder accepts, equal to Python's run_chunk within float32 tolerance.
func TestInteropPythonJobsToAGoTrainer(t *testing.T) {
	python, root := repoPython(t)
	t.Run("insecure", func(t *testing.T) { pythonJobsToAGoTrainer(t, python, root, false) })
	t.Run("curve", func(t *testing.T) { pythonJobsToAGoTrainer(t, python, root, true) })
}

func pythonJobsToAGoTrainer(t *testing.T, python, root string, curve bool) {
	args := []string{"job-to-trainer", "", strconv.Itoa(freeBase(t) + ResultsOffset)}
	var tr *Trainer
	if curve {
		dir, paths, keys := clusterKeys(t, 2)
		tr = startGoTrainerWith(t, keys[1])
		args = append(args, dir, paths[0])
	} else {
		tr = startGoTrainer(t)
	}
	args[1] = tr.Endpoint()
	out := runPython(t, python, root, args...)
	var report struct {
		OK      bool             `json:"ok"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%s", out)
	if !report.OK || len(report.Results) != 4 {
		t.Fatalf("Python disagrees with the Go trainer: %s", out)
	}
	if md, _ := report.Results[2]["missing_data"].(bool); !md {
		t.Fatalf("a chunk the trainer never had is not missing_data: %v", report.Results[2])
	}
	if e, _ := report.Results[3]["error"].(string); !strings.HasPrefix(e, "BadOptions(") {
		t.Fatalf("bad options: %q", e)
	}
}

// (a) A Go coordinator whose trainers are a Python trainer process and a Go
// trainer trains iris as accurately as a Python leader with two trainers.
func TestInteropGoCoordinatorWithAPythonAndAGoTrainer(t *testing.T) {
	python, root := repoPython(t)
	t.Run("insecure", func(t *testing.T) { goCoordinatorWithAPythonAndAGoTrainer(t, python, root, false) })
	t.Run("curve", func(t *testing.T) { goCoordinatorWithAPythonAndAGoTrainer(t, python, root, true) })
}

func goCoordinatorWithAPythonAndAGoTrainer(t *testing.T, python, root string, curve bool) {
	ctx := newCtx(t)
	defer ctx.Term()
	var dir string
	var paths []string
	var keys []*security.NodeKeys
	secArgs := []string{"--insecure"}
	keys = make([]*security.NodeKeys, 3)
	if curve {
		dir, paths, keys = clusterKeys(t, 3)
		secArgs = []string{"--keys", dir, "--node-key", paths[1]}
		gk, err := security.StartAuthenticator(ctx, keys[0], t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		defer gk.Stop()
	}

	pyPort := freeBase(t)
	cmd := exec.Command(python, append([]string{"-m", "zmqnode.training.trainer",
		"--bind", TCPEndpoint("127.0.0.1", pyPort+TrainingOffset), "--name", fmt.Sprintf("127.0.0.1:%d", pyPort),
		"--parent-pid", strconv.Itoa(os.Getpid())}, secArgs...)...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	goTrainer := startGoTrainerWith(t, keys[2])

	n := &fakeNode{t: t, ctx: ctx, down: map[string]string{}, woken: make(chan struct{}, 1), keys: keys[0]}
	n.members = []string{fmt.Sprintf("127.0.0.1:%d", pyPort), goTrainer.Name()}
	for i := 0; i < 20; i++ {
		n.id = fmt.Sprintf("127.0.0.1:%d", freeBase(t))
		n.sockets, n.handlers = nil, nil
		n.coord = NewCoordinator(n.links(), CoordinatorConfig{})
		if n.coord.Err() == nil {
			break
		}
		n.coord.Close()
	}
	defer n.coord.Close()
	if curve {
		if mech := security.Mechanism(n.coord.pushers[n.members[0]]); mech != "CURVE" {
			t.Fatalf("the coordinator's PUSH is %s", mech)
		}
	}
	for _, m := range n.members {
		push := n.coord.pushers[m]
		n.until(func() bool { return push.Send([][]byte{[]byte("probe")}, zmq.DontWait) == nil },
			"a connection to the trainer of "+m, false)
	}

	sets := []string{"iris", "wine"}
	if curve {
		sets = sets[:1]
	}
	for _, name := range sets {
		trainBundled(t, n, python, root, name)
	}
}

// trainBundled trains bundled set name through the coordinator of n and
// checks its test accuracy against the Python leader's with as many trainers.
func trainBundled(t *testing.T, n *fakeNode, python, root, name string) {
	t.Helper()
	n.commits, n.models, n.replies = nil, nil, nil
	var cases []struct {
		Name      string
		Inputs    int
		TrainRows int     `json:"train_rows"`
		TestRows  int     `json:"test_rows"`
		YTrain    []int64 `json:"y_train"`
		YTest     []int64 `json:"y_test"`
	}
	raw, err := os.ReadFile("../ml/testdata/bundled.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	iris := cases[0]
	for _, c := range cases {
		if c.Name == name {
			iris = c
		}
	}
	blob, err := os.ReadFile("../ml/testdata/bundled/" + name + ".f32")
	if err != nil {
		t.Fatal(err)
	}
	values := make([]float32, len(blob)/4)
	for i := range values {
		values[i] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*i:]))
	}
	split := iris.TrainRows * iris.Inputs
	xd, xb := wire.ArrayToFrame(wire.FromFloat32([]int{iris.TrainRows, iris.Inputs}, values[:split]), 0)
	yd, yb := wire.ArrayToFrame(wire.FromInt64([]int{iris.TrainRows}, iris.YTrain), 1)
	h, blobs := onTheWire(t, wire.NewObject(
		wire.Field{Key: "type", Value: "TRAIN"}, wire.Field{Key: "id", Value: name + "-mixed"},
		wire.Field{Key: "inputs", Value: xd}, wire.Field{Key: "outputs", Value: yd}), [][]byte{xb, yb})
	rec := &replies.Recorder{}
	start := time.Now()
	n.coord.Submit(h, blobs, rec)
	deadline := time.Now().Add(60 * time.Second)
	for len(n.commits) == 0 && !ended(rec) {
		if time.Now().After(deadline) {
			t.Fatal("the mixed training did not finish in 60 s")
		}
		select {
		case <-n.woken:
		default:
		}
		n.turn(true)
	}
	if ended(rec) {
		t.Fatalf("the training failed: %v", rec.Last())
	}
	n.replies[0].OK(n.commits[0], nil, wire.Field{Key: "model_id", Value: "m"})
	reply := rec.Last()
	v, _ := reply.Get("trainers")
	trainers, _ := v.([]string)
	rounds, _ := reply.Get("rounds")
	warnings, _ := reply.Get("warnings")
	t.Logf("trained in %v: trainers %v, rounds %v, warnings %v", time.Since(start).Round(time.Millisecond),
		trainers, rounds, warnings)
	if len(trainers) != 2 {
		t.Fatalf("trainers %v, want the Python and the Go one", trainers)
	}

	model, err := ml.ReadModel(n.models[0])
	if err != nil {
		t.Fatal(err)
	}
	xTest, _ := ml.MatrixOf(iris.TestRows, iris.Inputs, values[split:])
	labels, err := model.Labels(xTest)
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for i, l := range labels {
		if l == iris.YTest[i] {
			hits++
		}
	}
	got := float64(hits) / float64(len(labels))
	var py struct {
		Score float64 `json:"score"`
	}
	if err := json.Unmarshal(runPython(t, python, root, "python-accuracy", name, strconv.Itoa(len(n.members))), &py); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s test accuracy: Go leader with a Python and a Go trainer %.4f, Python leader %.4f", name, got, py.Score)
	if math.Abs(got-py.Score) > 0.01 {
		t.Fatalf("accuracy %.4f, Python leader's %.4f", got, py.Score)
	}
}
