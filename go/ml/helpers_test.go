package ml

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// loadGolden reads testdata/name (written by testdata/gen.py) into v.
func loadGolden(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("golden file missing (run .venv/bin/python go/ml/testdata/gen.py): %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func f32s(a []float64) []float32 {
	out := make([]float32, len(a))
	for i, v := range a {
		out[i] = float32(v)
	}
	return out
}

// maxRelDiff is max |got - want| / (|want| + floor) over the values.
func maxRelDiff(got []float32, want []float64, floor float64) float64 {
	worst := 0.0
	for i, w := range want {
		d := math.Abs(float64(got[i])-w) / (math.Abs(w) + floor)
		if d > worst || math.IsNaN(d) {
			worst = d
		}
	}
	return worst
}
