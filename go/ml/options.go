package ml

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// TrainOptions is zmqnode/ml/options.py's TrainOptions: how to train, as a
// TRAIN request's "options" and a SUB_TRAIN job's "options" carry it. The
// defaults and bounds are Python's (options.py says why each default).
type TrainOptions struct {
	HiddenLayers       []int
	Activation         string
	Epochs             int
	LearningRate       float64
	BatchSize          int
	L2                 float64
	Seed               int64
	Task               string // "" means null: infer from the labels
	ValidationFraction float64
	Patience           int
	EpochsPerRound     int

	// Which of the three real-valued options arrived as JSON integers
	// (learning_rate: 1): Python keeps the int and writes it back as 1, not
	// 1.0, in every model file, so a Go leader must too for the same bytes.
	intLearningRate, intL2, intValidationFraction bool
}

// Bounds and the schedule's constant, as options.py.
const (
	FinalLearningRateFraction = 0.1
	MaxHiddenLayers           = 16
	MaxLayerWidth             = 4096
	MaxEpochs                 = 100_000
	MaxBatchSize              = 1 << 20
	MaxSeed                   = math.MaxInt64
)

// TaskChoices are the tasks a client may ask for.
var TaskChoices = []string{TaskBinary, TaskMulticlass, TaskRegression, "classification"}

var optionNames = []string{"activation", "batch_size", "epochs", "epochs_per_round",
	"hidden_layers", "l2", "learning_rate", "patience", "seed", "task", "validation_fraction"}

// DefaultOptions are TrainOptions() in Python.
func DefaultOptions() TrainOptions {
	return TrainOptions{
		HiddenLayers: []int{64}, Activation: "relu", Epochs: 200, LearningRate: 0.02,
		BatchSize: 200, L2: 5e-4, Seed: 0, ValidationFraction: 0.1, Patience: 10,
		EpochsPerRound: 10,
	}
}

// NRounds is the number of rounds (local epochs on every chunk, then averaging).
func (o TrainOptions) NRounds() int {
	return (o.Epochs + o.EpochsPerRound - 1) / o.EpochsPerRound
}

// EpochsInRound is the local epochs of round r; the last takes the remainder.
func (o TrainOptions) EpochsInRound(r int) (int, error) {
	if r < 0 || r >= o.NRounds() {
		return 0, fmt.Errorf("%w: round %d is outside 0..%d", ErrBadOptions, r, o.NRounds()-1)
	}
	e := o.Epochs - r*o.EpochsPerRound
	if e > o.EpochsPerRound {
		e = o.EpochsPerRound
	}
	return e, nil
}

// LearningRateInRound decays learning_rate linearly to
// FinalLearningRateFraction of it by the last round.
func (o TrainOptions) LearningRateInRound(r int) float64 {
	n := o.NRounds()
	if n == 1 {
		return o.LearningRate
	}
	if r < 0 {
		r = 0
	}
	progress := math.Min(1.0, float64(r)/float64(n-1))
	one, final := 1.0, FinalLearningRateFraction // variables: computed as Python does
	return o.LearningRate * (one - (one-final)*progress)
}

// ParseOptions is TrainOptions.from_dict of a JSON object (a TRAIN's or a
// SUB_TRAIN job's "options"); absent keys take the defaults. Errors wrap
// ErrBadOptions with Python's messages.
func ParseOptions(raw []byte) (TrainOptions, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return TrainOptions{}, fmt.Errorf("%w: options are not JSON: %v", ErrBadOptions, err)
	}
	return OptionsFromMap(v)
}

// OptionsFromMap is ParseOptions of an already decoded value (numbers as
// json.Number, as a decoder with UseNumber gives them).
func OptionsFromMap(v any) (TrainOptions, error) {
	d, ok := v.(map[string]any)
	if !ok {
		return TrainOptions{}, fmt.Errorf("%w: options must be an object, got %s", ErrBadOptions, pyTypeName(v))
	}
	var unknown []string
	for k := range d {
		if !containsString(optionNames, k) {
			unknown = append(unknown, pyRepr(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return TrainOptions{}, fmt.Errorf("%w: unknown option(s) %s; known options: %s", ErrBadOptions,
			strings.Join(unknown, ", "), strings.Join(optionNames, ", "))
	}
	o := DefaultOptions()
	bad := func(format string, a ...any) (TrainOptions, error) {
		return TrainOptions{}, fmt.Errorf("%w: "+format, append([]any{ErrBadOptions}, a...)...)
	}
	if h, ok := d["hidden_layers"]; ok {
		list, ok := h.([]any)
		if !ok {
			return bad("hidden_layers must be a list of layer widths, got %s", pyRepr(h))
		}
		widths := make([]int64, len(list))
		for i, item := range list {
			n, ok := jsonInt(item)
			if !ok {
				return bad("hidden_layers must be a list of integers, got %s", pyTuple(list))
			}
			widths[i] = n
		}
		if len(widths) > MaxHiddenLayers {
			return bad("hidden_layers has %d layers; at most %d", len(widths), MaxHiddenLayers)
		}
		o.HiddenLayers = make([]int, len(widths))
		for i, w := range widths {
			if w < 1 || w > MaxLayerWidth {
				return bad("every hidden layer width must be 1..%d, got %s", MaxLayerWidth, pyRepr(h))
			}
			o.HiddenLayers[i] = int(w)
		}
	}
	if a, ok := d["activation"]; ok {
		s, ok := a.(string)
		if !ok || !containsString(HiddenActivations, s) {
			return bad("activation must be one of %s; got %s", strings.Join(HiddenActivations, ", "), pyRepr(a))
		}
		o.Activation = s
	}
	ints := []struct {
		name      string
		low, high int64
		set       func(int64)
	}{
		{"epochs", 1, MaxEpochs, func(n int64) { o.Epochs = int(n) }},
		{"batch_size", 1, MaxBatchSize, func(n int64) { o.BatchSize = int(n) }},
		{"seed", 0, MaxSeed, func(n int64) { o.Seed = n }},
		{"patience", 0, MaxEpochs, func(n int64) { o.Patience = int(n) }},
		{"epochs_per_round", 1, MaxEpochs, func(n int64) { o.EpochsPerRound = int(n) }},
	}
	for _, f := range ints {
		raw, ok := d[f.name]
		if !ok {
			continue
		}
		n, isInt := jsonInt(raw)
		if !isInt || n < f.low || n > f.high {
			return bad("%s must be an integer in %d..%d, got %s", f.name, f.low, f.high, pyRepr(raw))
		}
		f.set(n)
	}
	reals := []struct {
		name, bounds string
		low, high    float64
		openLow      bool
		value        *float64
		isInt        *bool
	}{
		{"learning_rate", "(0, 10]", 0, 10, true, &o.LearningRate, &o.intLearningRate},
		{"l2", "[0, 1000]", 0, 1e3, false, &o.L2, &o.intL2},
		{"validation_fraction", "[0, 0.5]", 0, 0.5, false, &o.ValidationFraction, &o.intValidationFraction},
	}
	for _, f := range reals {
		raw, ok := d[f.name]
		if !ok {
			continue
		}
		x, isInt, ok := jsonReal(raw)
		if !ok || x > f.high || x < f.low || (f.openLow && x == f.low) {
			return bad("%s must be a number in %s, got %s", f.name, f.bounds, pyRepr(raw))
		}
		*f.value, *f.isInt = x, isInt
	}
	if t, ok := d["task"]; ok && t != nil {
		s, ok := t.(string)
		if !ok || !containsString(TaskChoices, s) {
			return bad("task must be one of %s or null (infer), got %s", strings.Join(TaskChoices, ", "), pyRepr(t))
		}
		o.Task = s
	}
	return o, nil
}

// ToMap is TrainOptions.to_dict: JSON-ready, every option present.
func (o TrainOptions) ToMap() map[string]any {
	hidden := make([]any, len(o.HiddenLayers))
	for i, h := range o.HiddenLayers {
		hidden[i] = int64(h)
	}
	var task any
	if o.Task != "" {
		task = o.Task
	}
	real := func(x float64, isInt bool) any {
		if isInt {
			return int64(x)
		}
		return x
	}
	return map[string]any{
		"hidden_layers":       hidden,
		"activation":          o.Activation,
		"epochs":              int64(o.Epochs),
		"learning_rate":       real(o.LearningRate, o.intLearningRate),
		"batch_size":          int64(o.BatchSize),
		"l2":                  real(o.L2, o.intL2),
		"seed":                o.Seed,
		"task":                task,
		"validation_fraction": real(o.ValidationFraction, o.intValidationFraction),
		"patience":            int64(o.Patience),
		"epochs_per_round":    int64(o.EpochsPerRound),
	}
}

// MarshalJSON writes ToMap as Python's json.dumps(sort_keys=True) would.
func (o TrainOptions) MarshalJSON() ([]byte, error) {
	return PyJSON(o.ToMap())
}

// jsonInt is a JSON integer literal (not 1.0, not true) that fits int64.
func jsonInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if strings.ContainsAny(string(n), ".eE") {
			return 0, false
		}
		i, err := n.Int64()
		return i, err == nil
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

// jsonReal is a finite JSON number; isInt when it was an integer literal.
func jsonReal(v any) (x float64, isInt, ok bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false, false
		}
		return f, !strings.ContainsAny(string(n), ".eE"), true
	case float64:
		return n, false, !math.IsInf(n, 0) && !math.IsNaN(n)
	case int64:
		return float64(n), true, true
	case int:
		return float64(n), true, true
	}
	return 0, false, false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pyTypeName is the Python type name of a decoded JSON value, for messages.
func pyTypeName(v any) string {
	switch n := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	case json.Number:
		if _, ok := jsonInt(n); ok {
			return "int"
		}
		return "float"
	}
	return fmt.Sprintf("%T", v)
}

// pyTuple is repr(tuple(list)): "(1.5,)" for one item.
func pyTuple(list []any) string {
	r := pyRepr(list)
	if len(list) == 1 {
		return "(" + r[1:len(r)-1] + ",)"
	}
	return "(" + r[1:len(r)-1] + ")"
}

// pyRepr is a short Python-like repr of a decoded JSON value, for messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "\\'") + "'"
	case json.Number:
		return string(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	b, _ := PyJSON(v)
	return string(b)
}
