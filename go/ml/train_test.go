package ml

import (
	"encoding/json"
	"math"
	"testing"
)

type trainChunkCase struct {
	Name         string
	Options      json.RawMessage
	Round, Chunk int
	Epochs       int
	X, Y         []float64
	Rows, Inputs int
	Outputs      int
	Params       []float64
	WantParams   []float64 `json:"want_params"`
	WantLoss     float64   `json:"want_loss"`
	WantSamples  int       `json:"want_samples"`
}

// A Go trainer's result for a SUB_TRAIN job equals Python's run_chunk up to
// float32 rounding: same shuffles, same batches, same Adam steps.
func TestTrainChunkMatchesPython(t *testing.T) {
	var cases []trainChunkCase
	loadGolden(t, "train_chunk.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			o, err := ParseOptions(c.Options)
			if err != nil {
				t.Fatal(err)
			}
			x, _ := MatrixOf(c.Rows, c.Inputs, f32s(c.X))
			y, _ := MatrixOf(c.Rows, c.Outputs, f32s(c.Y))
			var res ChunkResult
			if c.Epochs == 0 { // a job as a trainer gets it
				res, err = RunChunk(f32s(c.Params), x, y, c.Options, c.Round, c.Chunk)
			} else {
				res, err = TrainChunk(f32s(c.Params), x, y, o, c.Round, c.Chunk, c.Epochs)
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.NSamples != c.WantSamples {
				t.Errorf("n_samples %d, want %d", res.NSamples, c.WantSamples)
			}
			d := maxRelDiff(res.Params, c.WantParams, 1e-3)
			lossDiff := math.Abs(res.Loss-c.WantLoss) / math.Abs(c.WantLoss)
			t.Logf("max relative parameter difference %.2e, loss %.2e", d, lossDiff)
			if d > 1e-5 || lossDiff > 1e-6 {
				t.Errorf("params differ by %.2e (loss %v vs %v)", d, res.Loss, c.WantLoss)
			}
		})
	}
}
