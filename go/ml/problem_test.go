package ml

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// Prepare refuses what problem.prepare refuses, with Python's messages.
func TestPrepareRefusesBadDataAsPython(t *testing.T) {
	var cases []struct {
		Name         string
		X            []*float64
		Rows, Inputs int
		Y            []any
		YRows        int    `json:"y_rows"`
		YCols        int    `json:"y_cols"`
		YKind        string `json:"y_kind"`
		Options      json.RawMessage
		Error        string
	}
	loadGolden(t, "bad_inputs.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			x := NewMatrix(c.Rows, c.Inputs)
			for i, v := range c.X {
				x.Data[i] = float32(math.NaN())
				if v != nil {
					x.Data[i] = float32(*v)
				}
			}
			y := Labels{Rows: c.YRows, Cols: c.YCols}
			for _, v := range c.Y {
				switch c.YKind {
				case "str":
					y.Names = append(y.Names, v.(string))
				case "int":
					y.Ints = append(y.Ints, int64(v.(float64)))
				default:
					f := math.NaN()
					if s, ok := v.(string); ok && s == "inf" {
						f = math.Inf(1)
					} else if n, ok := v.(float64); ok {
						f = n
					}
					y.Floats = append(y.Floats, f)
				}
			}
			o, err := ParseOptions(c.Options)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Prepare(x, y, o)
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("got %v, want BadInput %q", err, c.Error)
			}
			if msg := strings.TrimPrefix(err.Error(), "bad input: "); msg != c.Error {
				t.Errorf("message\n  %s\nPython's\n  %s", msg, c.Error)
			}
		})
	}
}

func TestChunkCountKeepsThirtyTwoRowsAChunk(t *testing.T) {
	for _, c := range []struct{ rows, trainers, want int }{
		{4, 3, 1}, {64, 3, 2}, {1000, 3, 3}, {31, 1, 1}, {100, 0, 1},
	} {
		if got := ChunkCount(c.rows, c.trainers); got != c.want {
			t.Errorf("ChunkCount(%d, %d) = %d, want %d", c.rows, c.trainers, got, c.want)
		}
	}
}

// A chunk whose training diverges is a TrainingError, not parameters.
func TestTrainChunkReportsDivergence(t *testing.T) {
	o := DefaultOptions()
	o.Task, o.LearningRate, o.HiddenLayers = TaskRegression, 10, []int{4}
	x := NewMatrix(8, 1)
	y := NewMatrix(8, 1)
	for i := range x.Data {
		x.Data[i] = float32(i) * 1e18
		y.Data[i] = float32(i) * 1e18
	}
	a, _ := ChunkArchitecture(x, y, o)
	_, err := TrainChunk(InitParams(a, NewGenerator(0)), x, y, o, 0, 0, 0)
	if !errors.Is(err, ErrTraining) {
		t.Fatalf("got %v, want ErrTraining", err)
	}
}
