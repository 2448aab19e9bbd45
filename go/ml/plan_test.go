package ml

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

type prepareCase struct {
	Name          string
	X             []float64
	Rows, Inputs  int
	Y             json.RawMessage
	YKind         string `json:"y_kind"`
	YCols         int    `json:"y_cols"`
	Options       json.RawMessage
	Chunks        int
	Task          string
	Classes       json.RawMessage
	InputMean     []float64   `json:"input_mean"`
	InputStd      []float64   `json:"input_std"`
	OutputMean    []float64   `json:"output_mean"`
	OutputStd     []float64   `json:"output_std"`
	TrainRows     []int       `json:"train_rows"`
	XVal          []float64   `json:"x_val"`
	YVal          []float64   `json:"y_val"`
	InitialParams []float64   `json:"initial_params"`
	ChunkX        [][]float64 `json:"chunk_x"`
	ChunkY        [][]float64 `json:"chunk_y"`
	Rounds        []struct {
		Results []struct {
			Params   []float64
			NSamples int `json:"n_samples"`
			Loss     float64
		}
		ParamsBeforeRound []float64 `json:"params_before_round"`
		History           map[string]json.RawMessage
	}
	Model string
}

func (c prepareCase) inputs(t *testing.T) (Matrix, Labels, TrainOptions) {
	x, _ := MatrixOf(c.Rows, c.Inputs, f32s(c.X))
	y := Labels{Rows: c.Rows, Cols: c.YCols}
	var err error
	switch c.YKind {
	case "int":
		var v []int64
		err = json.Unmarshal(c.Y, &v)
		y.Ints = v
	case "str":
		err = json.Unmarshal(c.Y, &y.Names)
	default:
		if c.YCols > 0 {
			var v [][]float64
			err = json.Unmarshal(c.Y, &v)
			for _, r := range v {
				y.Floats = append(y.Floats, r...)
			}
		} else {
			err = json.Unmarshal(c.Y, &y.Floats)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(c.Options)
	if err != nil {
		t.Fatal(err)
	}
	return x, y, o
}

func exactly(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if float64(got[i]) != want[i] {
			t.Errorf("%s[%d] = %v, Python %v", what, i, got[i], want[i])
			return
		}
	}
}

// A Go leader prepares a TRAIN exactly as a Python leader does: the same
// task and classes, standardization, validation rows, initial weights and
// chunks, bit for bit.
func TestPrepareMatchesPython(t *testing.T) {
	var cases []prepareCase
	loadGolden(t, "prepare.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			x, y, o := c.inputs(t)
			p, err := Prepare(x, y, o)
			if err != nil {
				t.Fatal(err)
			}
			if p.Task != c.Task {
				t.Fatalf("task %s, Python %s", p.Task, c.Task)
			}
			classes, _ := PyJSON(append([]any{}, p.Classes...))
			if !bytes.Equal(classes, pyJSONOf(t, c.Classes)) {
				t.Errorf("classes %s, Python %s", classes, c.Classes)
			}
			exactly(t, "input.mean", p.InputMean, c.InputMean)
			exactly(t, "input.std", p.InputStd, c.InputStd)
			if c.Task == TaskRegression {
				exactly(t, "output.mean", p.OutputMean, c.OutputMean)
				exactly(t, "output.std", p.OutputStd, c.OutputStd)
			}
			if !reflect.DeepEqual(p.TrainRows, c.TrainRows) {
				t.Errorf("training rows differ from Python's")
			}
			exactly(t, "x_val", p.XVal.Data, c.XVal)
			exactly(t, "y_val", p.YVal.Data, c.YVal)
			exactly(t, "initial params", p.InitialParams, c.InitialParams)
			chunks, err := SplitChunks(p, c.Chunks)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) != len(c.ChunkX) {
				t.Fatalf("%d chunks, Python %d", len(chunks), len(c.ChunkX))
			}
			for i, ch := range chunks {
				exactly(t, "chunk x", ch.X.Data, c.ChunkX[i])
				exactly(t, "chunk y", ch.Y.Data, c.ChunkY[i])
			}
		})
	}
}

// Given the trainers' results Python's leader got, a Go leader averages to
// the same parameters bit for bit and records the same round metrics.
func TestFinishRoundMatchesPython(t *testing.T) {
	var cases []prepareCase
	loadGolden(t, "prepare.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			x, y, o := c.inputs(t)
			plan, err := NewTrainingPlan(x, y, o, c.Chunks)
			if err != nil {
				t.Fatal(err)
			}
			for r := 0; r < 2 && r < len(c.Rounds) && !plan.Done; r++ {
				round := c.Rounds[r]
				exactly(t, "params before round", plan.Params, round.ParamsBeforeRound)
				var results []ChunkResult
				for _, res := range round.Results {
					results = append(results, ChunkResult{f32s(res.Params), res.NSamples, res.Loss})
				}
				if _, err := plan.FinishRound(results); err != nil {
					t.Fatal(err)
				}
				got := plan.History[len(plan.History)-1]
				for k, raw := range round.History {
					var want float64
					_ = json.Unmarshal(raw, &want)
					g, _ := json.Marshal(got[k])
					var gv float64
					_ = json.Unmarshal(g, &gv)
					if math.Abs(gv-want) > 2e-6*math.Abs(want) {
						t.Errorf("round %d %s = %v, Python %v", r, k, gv, want)
					}
				}
				if len(got) != len(round.History) {
					t.Errorf("round %d entry has keys %v, Python %v", r, got, round.History)
				}
			}
			if len(c.Rounds) > 1 && !plan.Done {
				exactly(t, "params after two rounds", plan.Params, c.Rounds[2].ParamsBeforeRound)
			}
		})
	}
}

// A Go leader with Go trainers trains a model as accurate as Python's on
// the same data (within 1 point), its parameters close to Python's.
func TestGoLeaderAsAccurateAsPython(t *testing.T) {
	var cases []prepareCase
	loadGolden(t, "prepare.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			x, y, o := c.inputs(t)
			goModel, err := Train(x, y, o, c.Chunks)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join("testdata", "models", c.Model))
			if err != nil {
				t.Fatal(err)
			}
			pyModel, err := ReadModel(data)
			if err != nil {
				t.Fatal(err)
			}
			goScore, pyScore := score(t, goModel, x, y), score(t, pyModel, x, y)
			var worst float64
			for i, w := range pyModel.Weights {
				worst = math.Max(worst, maxRelDiff(goModel.Weights[i].Data, widen(w.Data), 1e-2))
			}
			goBytes, _ := goModel.Bytes()
			t.Logf("score Go %.4f, Python %.4f; weights differ by %.1e relative; same bytes: %v",
				goScore, pyScore, worst, bytes.Equal(goBytes, data))
			if math.Abs(goScore-pyScore) > 0.01 {
				t.Errorf("Go leader's model scores %.4f, Python's %.4f", goScore, pyScore)
			}
		})
	}
}

func widen(a []float32) []float64 {
	out := make([]float64, len(a))
	for i, v := range a {
		out[i] = float64(v)
	}
	return out
}

// score is accuracy on the given rows (R² for regression).
func score(t *testing.T, m *Model, x Matrix, y Labels) float64 {
	t.Helper()
	if m.Task == TaskRegression {
		v, err := m.Values(x)
		if err != nil {
			t.Fatal(err)
		}
		var ss, tot float64
		for j := 0; j < v.Cols; j++ {
			var mean float64
			for i := 0; i < v.Rows; i++ {
				mean += y.Floats[i*v.Cols+j]
			}
			mean /= float64(v.Rows)
			for i := 0; i < v.Rows; i++ {
				d := float64(v.At(i, j)) - y.Floats[i*v.Cols+j]
				ss += d * d
				e := y.Floats[i*v.Cols+j] - mean
				tot += e * e
			}
		}
		return 1 - ss/tot
	}
	labels, err := m.Labels(x)
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for i, l := range labels {
		var want any
		switch {
		case y.Names != nil:
			want = y.Names[i]
		case y.Ints != nil:
			want = y.Ints[i]
		default:
			want = y.Floats[i]
		}
		if l == want {
			hits++
		}
	}
	return float64(hits) / float64(len(labels))
}

// A Go leader coordinating Python trainers (here: given every round's
// results Python's trainers returned) commits the very bytes a Python
// leader commits: same averaging, metrics, early stopping, metadata.
func TestGoLeaderWithPythonTrainersWritesPythonsBytes(t *testing.T) {
	var cases []prepareCase
	loadGolden(t, "prepare.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			x, y, o := c.inputs(t)
			plan, err := NewTrainingPlan(x, y, o, c.Chunks)
			if err != nil {
				t.Fatal(err)
			}
			for _, round := range c.Rounds {
				var results []ChunkResult
				for _, res := range round.Results {
					results = append(results, ChunkResult{f32s(res.Params), res.NSamples, res.Loss})
				}
				if _, err := plan.FinishRound(results); err != nil {
					t.Fatal(err)
				}
			}
			if !plan.Done {
				t.Fatalf("Python stopped after %d rounds; Go is not done", len(c.Rounds))
			}
			m, err := plan.Model()
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(filepath.Join("testdata", "models", c.Model))
			if !bytes.Equal(got, want) {
				doc, _ := PyJSON(m.MetadataDocument())
				t.Errorf("model bytes differ from Python's; Go's document:\n%s", doc)
			}
		})
	}
}

// A model a Go leader trains is a valid file that reads back to the same
// predictions, and its bytes are stable (same model, same bytes).
func TestGoTrainedModelRoundTrips(t *testing.T) {
	var cases []prepareCase
	loadGolden(t, "prepare.json", &cases)
	c := cases[0]
	x, y, o := c.inputs(t)
	m, err := Train(x, y, o, 2)
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadModel(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Bytes()
	if !bytes.Equal(data, again) {
		t.Fatal("reading and rewriting a Go-written model changed its bytes")
	}
	a, pa, _ := m.Classify(x, true)
	b, pb, _ := back.Classify(x, true)
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(pa.Data, pb.Data) {
		t.Fatal("a model read back predicts differently")
	}
}

// More chunks than training rows: one row a chunk, never an empty chunk.
func TestSplitNeverMakesEmptyChunks(t *testing.T) {
	x := NewMatrix(5, 1)
	for i := range x.Data {
		x.Data[i] = float32(i)
	}
	p, err := Prepare(x, Labels{Rows: 5, Ints: []int64{0, 1, 0, 1, 1}}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := SplitChunks(p, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 5 {
		t.Fatalf("%d chunks for 5 rows", len(chunks))
	}
	for _, c := range chunks {
		if c.X.Rows != 1 {
			t.Errorf("chunk %d has %d rows", c.Index, c.X.Rows)
		}
	}
}
