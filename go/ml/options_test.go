package ml

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// ParseOptions accepts and refuses what TrainOptions.from_dict does, with
// Python's messages; accepted options serialize as to_dict (ints stay ints:
// learning_rate 1 is written 1, not 1.0) and schedule rounds the same way.
func TestOptionsMatchPython(t *testing.T) {
	var cases []struct {
		Input         json.RawMessage
		Error         string
		ToDict        string    `json:"to_dict"`
		NRounds       int       `json:"n_rounds"`
		LearningRates []float64 `json:"learning_rates"`
		Epochs        []int
	}
	loadGolden(t, "options.json", &cases)
	for _, c := range cases {
		o, err := ParseOptions(c.Input)
		if c.Error != "" {
			if !errors.Is(err, ErrBadOptions) {
				t.Errorf("%s: got %v, want BadOptions %q", c.Input, err, c.Error)
			} else if msg := strings.TrimPrefix(err.Error(), "bad options: "); msg != c.Error {
				t.Errorf("%s: message\n  %s\nPython's\n  %s", c.Input, msg, c.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.Input, err)
			continue
		}
		got, _ := o.MarshalJSON()
		if string(got) != c.ToDict {
			t.Errorf("%s: to_dict\n  %s\nPython's\n  %s", c.Input, got, c.ToDict)
		}
		if o.NRounds() != c.NRounds {
			t.Errorf("%s: %d rounds, Python %d", c.Input, o.NRounds(), c.NRounds)
		}
		for r := range c.LearningRates {
			e, _ := o.EpochsInRound(r)
			if lr := o.LearningRateInRound(r); lr != c.LearningRates[r] || e != c.Epochs[r] {
				t.Errorf("%s round %d: rate %v epochs %d, Python %v %d", c.Input, r, lr, e, c.LearningRates[r], c.Epochs[r])
			}
		}
	}
}

func TestPyJSONWritesPythonFloatsAndEscapes(t *testing.T) {
	cases := map[string]any{
		"1.0": 1.0, "0.0005": 5e-4, "1e-05": 1e-5, "1e+16": 1e16, "1234567890123456.0": 1234567890123456.0,
		"-0.0": math0(), "0.1": 0.1, "0.30000000000000004": sum(0.1, 0.2), "100.0": 100.0,
		"0.00012": 0.00012, "3.4028234663852886e+38": 3.4028234663852886e+38,
		`"a\u00e9\"\\\n\ud83d\ude00<>&"`: "aé\"\\\n😀<>&",
		`{"a":[1,2.5,null,true],"b":{}}`: map[string]any{"b": map[string]any{}, "a": []any{1, 2.5, nil, true}},
	}
	for want, v := range cases {
		got, err := PyJSON(v)
		if err != nil || string(got) != want {
			t.Errorf("PyJSON(%#v) = %s (%v), want %s", v, got, err, want)
		}
	}
}

// sum adds at run time (Go folds constant 0.1 + 0.2 to exactly 0.3).
func sum(a, b float64) float64 { return a + b }

func math0() float64 {
	z := 0.0
	return -z
}
