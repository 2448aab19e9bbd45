package ml

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

type modelCase struct {
	Name, File, Task string
	X                []float64
	Rows, Inputs     int
	Classes          []json.RawMessage
	Index            []int64
	Proba            []float64
	Values           []float64
	ValueCols        int `json:"value_cols"`
	Logits           []float64
	Summary          string
}

func readGoldenModel(t *testing.T, file string) ([]byte, *Model) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "models", file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadModel(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return data, m
}

// Every file Python writes reads back and rewrites to the same bytes:
// binary, multiclass with string and float classes, regression with one and
// two targets, with and without column names, files of trained plans.
func TestModelFileRoundTripsPythonBytes(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "models", "*.bin"))
	if len(files) < 5 {
		t.Fatalf("only %d golden model files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, m := readGoldenModel(t, filepath.Base(f))
			out, err := m.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				n := 0
				for n < len(out) && n < len(data) && out[n] == data[n] {
					n++
				}
				t.Fatalf("Go's bytes differ from Python's at byte %d:\n go %q\npy %q", n,
					out[max0(n-40):min(len(out), n+40)], data[max0(n-40):min(len(data), n+40)])
			}
		})
	}
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// Predictions from a file Python trained: the same class indices, and
// probabilities, values and logits equal to Python's up to float32 rounding.
func TestPredictMatchesPython(t *testing.T) {
	var cases []modelCase
	loadGolden(t, "models.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, m := readGoldenModel(t, c.File)
			x, _ := MatrixOf(c.Rows, c.Inputs, f32s(c.X))
			if got, _ := PyJSON(m.Summary()); string(got) != c.Summary {
				t.Errorf("summary\n  %s\nPython's\n  %s", got, c.Summary)
			}
			z, err := m.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(z.Data, c.Logits); d > 1e-5 {
				t.Errorf("logits differ by %.2e", d)
			}
			if c.Task == TaskRegression {
				v, err := m.Values(x)
				if err != nil {
					t.Fatal(err)
				}
				if v.Cols != c.ValueCols && !(c.ValueCols == 1 && v.Cols == 1) {
					t.Errorf("%d value columns, want %d", v.Cols, c.ValueCols)
				}
				d := maxRelDiff(v.Data, c.Values, 1)
				t.Logf("values: max relative difference %.2e", d)
				if d > 1e-6 {
					t.Errorf("values differ by %.2e", d)
				}
				return
			}
			index, p, err := m.Classify(x, true)
			if err != nil {
				t.Fatal(err)
			}
			for i := range index {
				if index[i] != c.Index[i] {
					t.Errorf("row %d: class %d, Python %d", i, index[i], c.Index[i])
				}
			}
			d := maxAbsDiff(p.Data, c.Proba)
			t.Logf("probabilities: max absolute difference %.2e", d)
			if d > 1e-6 {
				t.Errorf("probabilities differ by %.2e", d)
			}
			if len(c.Classes) != len(m.Classes) {
				t.Fatalf("%d classes, want %d", len(m.Classes), len(c.Classes))
			}
			for i, raw := range c.Classes {
				got, _ := PyJSON(m.Classes[i])
				if !bytes.Equal(got, pyJSONOf(t, raw)) {
					t.Errorf("class %d is %s, Python %s", i, got, raw)
				}
			}
		})
	}
}

// pyJSONOf re-encodes a JSON value the way PyJSON does (numbers kept exact).
func pyJSONOf(t *testing.T, raw json.RawMessage) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	out, err := PyJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func maxAbsDiff(got []float32, want []float64) float64 {
	worst := 0.0
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if d > worst || math.IsNaN(d) {
			worst = d
		}
	}
	return worst
}

// ReadModel refuses damaged files with ErrModelFormat, as FORMAT.md §7 lists.
func TestReadModelRefusesDamagedFiles(t *testing.T) {
	data, _ := readGoldenModel(t, "binary.bin")
	flip := append([]byte(nil), data...)
	flip[len(flip)-3] ^= 1
	cases := map[string][]byte{
		"short":       data[:5],
		"truncated":   data[:100],
		"huge header": append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, data[8:]...),
		"flipped":     flip,
		"extra data":  append(append([]byte(nil), data...), 0, 0, 0, 0),
		"not json":    append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, []byte("abcd")...),
		"no zmqnode":  append([]byte{2, 0, 0, 0, 0, 0, 0, 0}, []byte("{}")...),
	}
	for name, bad := range cases {
		if _, err := ReadModel(bad); !errors.Is(err, ErrModelFormat) {
			t.Errorf("%s: got %v, want ErrModelFormat", name, err)
		}
	}
}

// Predict refuses a wrong width and non-finite inputs as BAD_INPUT.
func TestPredictRefusesBadInputs(t *testing.T) {
	_, m := readGoldenModel(t, "binary.bin")
	if _, _, err := m.Classify(NewMatrix(2, 5), false); !errors.Is(err, ErrBadInput) {
		t.Errorf("wrong width: %v", err)
	}
	x := NewMatrix(2, 3)
	x.Data[4] = float32(math.Inf(1))
	if _, _, err := m.Classify(x, false); !errors.Is(err, ErrBadInput) {
		t.Errorf("infinite input: %v", err)
	}
	if _, err := m.Values(x); !errors.Is(err, ErrBadInput) {
		t.Errorf("values of a classifier: %v", err)
	}
}
