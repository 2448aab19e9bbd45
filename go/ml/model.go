package ml

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Model is zmqnode/ml/model_file.py's Model: a trained network with what it
// needs to predict and describe itself. Build one with a literal and call
// Validate (ReadModel and TrainingPlan.Model do): a validated Model is always
// usable. Treat it as immutable once shared (nodes serve it concurrently).
type Model struct {
	Task             string
	HiddenActivation string
	Weights          []Matrix    // [fan_in x fan_out] per layer
	Biases           [][]float32 // [fan_out] per layer
	InputMean        []float32
	InputStd         []float32
	// Classes are the original label values, sorted: int64, float64, string
	// or bool (JSON's types as Python reads them: 1 and 1.0 differ).
	Classes    []any
	OutputMean []float32 // regression only
	OutputStd  []float32
	// Training and CreatedBy are informative JSON objects (FORMAT.md §3),
	// kept as decoded (numbers as json.Number) so they round-trip exactly.
	Training  map[string]any
	CreatedBy map[string]any
	// Features and Targets are the client's column names, when it sent them.
	Features []string
	Targets  []string
}

// MaxColumnNameChars bounds a column name (longer is a row pasted by mistake).
const MaxColumnNameChars = 256

// LayerSizes is (inputs, hidden..., outputs).
func (m *Model) LayerSizes() []int {
	sizes := []int{m.Weights[0].Rows}
	for _, w := range m.Weights {
		sizes = append(sizes, w.Cols)
	}
	return sizes
}

// OutputActivation is fixed by the task.
func (m *Model) OutputActivation() string { return OutputActivation[m.Task] }

// NInputs is the number of input columns.
func (m *Model) NInputs() int { return m.Weights[0].Rows }

// NOutputs is the network's output width (regression: output columns).
func (m *Model) NOutputs() int { return m.Weights[len(m.Weights)-1].Cols }

func modelErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrModelFormat}, a...)...)
}

// Validate is model_file._validate: everything a Model must satisfy to
// predict correctly; the error wraps ErrModelFormat and says what is wrong.
func (m *Model) Validate() error {
	if _, ok := OutputActivation[m.Task]; !ok {
		return modelErr("unknown task '%s'; expected one of binary, multiclass, regression", m.Task)
	}
	if !containsString(HiddenActivations, m.HiddenActivation) {
		return modelErr("unknown hidden activation '%s'; expected one of %s", m.HiddenActivation,
			strings.Join(HiddenActivations, ", "))
	}
	if len(m.Weights) == 0 || len(m.Weights) != len(m.Biases) {
		return modelErr("a model needs as many biases as weights (at least one layer), got %d weights and %d biases",
			len(m.Weights), len(m.Biases))
	}
	for i, w := range m.Weights {
		if len(w.Data) != w.Rows*w.Cols {
			return modelErr("layer %d: weight has %d values for shape [%d, %d]", i, len(w.Data), w.Rows, w.Cols)
		}
		if len(m.Biases[i]) != w.Cols {
			return modelErr("layer %d: weight has %d outputs but bias has %d values", i, w.Cols, len(m.Biases[i]))
		}
		if i > 0 && w.Rows != m.Weights[i-1].Cols {
			return modelErr("layer %d: weight takes %d inputs but layer %d has %d outputs", i, w.Rows, i-1, m.Weights[i-1].Cols)
		}
		if !allFinite(w.Data) {
			return modelErr("layers.%d.weight contains NaN or infinite values", i)
		}
		if !allFinite(m.Biases[i]) {
			return modelErr("layers.%d.bias contains NaN or infinite values", i)
		}
	}
	nIn, nOut := m.NInputs(), m.NOutputs()
	if err := checkNorm("input", m.InputMean, m.InputStd, nIn); err != nil {
		return err
	}
	if err := CheckColumnNames("features", m.Features, nIn); err != nil {
		return err
	}
	wantTargets := 1
	if m.Task == TaskRegression {
		wantTargets = nOut
	}
	if err := CheckColumnNames("targets", m.Targets, wantTargets); err != nil {
		return err
	}
	if m.Task == TaskRegression {
		if len(m.Classes) > 0 {
			return modelErr("a regression model has no classes")
		}
		if m.OutputMean == nil || m.OutputStd == nil {
			return modelErr("a regression model needs output.mean and output.std")
		}
		return checkNorm("output", m.OutputMean, m.OutputStd, nOut)
	}
	if m.OutputMean != nil || m.OutputStd != nil {
		return modelErr("a classification model has no output normalization")
	}
	k := len(m.Classes)
	if m.Task == TaskBinary && k != 2 {
		return modelErr("a binary model needs exactly 2 classes, got %d", k)
	}
	if k < 2 {
		return modelErr("a multiclass model needs at least 2 classes, got %d", k)
	}
	want := k
	if m.Task == TaskBinary {
		want = 1
	}
	if nOut != want {
		return modelErr("a %s model with %d classes needs %d network output(s), the last layer has %d", m.Task, k, want, nOut)
	}
	kind := fmt.Sprintf("%T", m.Classes[0])
	seen := map[any]bool{}
	for _, c := range m.Classes {
		switch c.(type) {
		case int64, float64, string, bool:
		default:
			return modelErr("classes must be numbers or strings of one type, got %v", m.Classes)
		}
		if fmt.Sprintf("%T", c) != kind {
			return modelErr("classes must be numbers or strings of one type, got %v", m.Classes)
		}
		if seen[c] {
			return modelErr("classes must be distinct, got %v", m.Classes)
		}
		seen[c] = true
	}
	return nil
}

// CheckColumnNames is model_file.check_column_names: names is empty, or
// width distinct strings of 1 to MaxColumnNameChars characters.
func CheckColumnNames(what string, names []string, width int) error {
	if len(names) == 0 {
		return nil
	}
	if len(names) != width {
		return modelErr("%s names %d columns; the model has %d", what, len(names), width)
	}
	seen := map[string]bool{}
	for _, n := range names {
		// Python counts code points (str length), not bytes.
		if n == "" || len([]rune(n)) > MaxColumnNameChars {
			return modelErr("%s: each column name must be a string of 1 to %d characters, got %q", what, MaxColumnNameChars, n)
		}
		if seen[n] {
			return modelErr("%s: column names must be distinct, got %q", what, names)
		}
		seen[n] = true
	}
	return nil
}

func checkNorm(name string, mean, std []float32, width int) error {
	if len(mean) != width || len(std) != width {
		return modelErr("%s.mean and %s.std must have shape [%d], got [%d] and [%d]", name, name, width, len(mean), len(std))
	}
	for i := range mean {
		if !finite64(float64(mean[i])) || !finite64(float64(std[i])) || !(std[i] > 0) {
			return modelErr("%s.mean/%s.std must be finite with std > 0", name, name)
		}
	}
	return nil
}

// -- prediction (FORMAT.md §5, PROTOCOL.md §5.3) ---------------------------------

// standardized is (x - input.mean) / input.std in float32, as training's
// standardize; a non-finite result is an input error naming its row.
func (m *Model) standardized(x Matrix) (Matrix, error) {
	if x.Cols != m.NInputs() {
		return Matrix{}, fmt.Errorf("%w: this model expects %d input columns, got %d", ErrBadInput, m.NInputs(), x.Cols)
	}
	s := NewMatrix(x.Rows, x.Cols)
	for i := 0; i < x.Rows; i++ {
		in, out := x.Row(i), s.Row(i)
		for j, v := range in {
			out[j] = (v - m.InputMean[j]) / m.InputStd[j]
			if math.IsNaN(float64(out[j])) || math.IsInf(float64(out[j]), 0) {
				return Matrix{}, fmt.Errorf("%w: inputs contain NaN or infinite values (or values beyond float32), first at row %d",
					ErrBadInput, i)
			}
		}
	}
	return s, nil
}

// Logits is the last layer's output for a batch of raw rows (x: rows x
// inputs; a 1-column model also takes its rows as one column).
func (m *Model) Logits(x Matrix) (Matrix, error) {
	s, err := m.standardized(x)
	if err != nil {
		return Matrix{}, err
	}
	return outputLogits(m.Weights, m.Biases, m.HiddenActivation, s), nil
}

// Classify is Model.classify: each row's class as an index into Classes
// (PREDICT's "outputs") and, if proba, the class probabilities (rows x
// classes, in Classes order; binary [1 - p, p]) from the same forward pass.
func (m *Model) Classify(x Matrix, proba bool) ([]int64, *Matrix, error) {
	if m.Task == TaskRegression {
		return nil, nil, fmt.Errorf("%w: classes need a classification model; this one does regression", ErrBadInput)
	}
	z, err := m.Logits(x)
	if err != nil {
		return nil, nil, err
	}
	index := make([]int64, z.Rows)
	for i := range index {
		if m.Task == TaskBinary {
			if z.Data[i] > 0 {
				index[i] = 1
			}
		} else {
			index[i] = int64(argmax(z.Row(i)))
		}
	}
	if !proba {
		return index, nil, nil
	}
	p := m.probabilities(z)
	return index, &p, nil
}

func (m *Model) probabilities(z Matrix) Matrix {
	p := applyOutput(z, m.OutputActivation())
	if m.Task != TaskBinary {
		return p
	}
	two := NewMatrix(z.Rows, 2)
	for i, v := range p.Data {
		two.Data[2*i] = 1 - v
		two.Data[2*i+1] = v
	}
	return two
}

// Values is Model.predict for a regression model: z * output.std +
// output.mean (float32), one column per target. PREDICT sends it as
// float32 [rows] when the model has one target column, else [rows, k].
func (m *Model) Values(x Matrix) (Matrix, error) {
	if m.Task != TaskRegression {
		return Matrix{}, fmt.Errorf("%w: values need a regression model; this one does %s", ErrBadInput, m.Task)
	}
	z, err := m.Logits(x)
	if err != nil {
		return Matrix{}, err
	}
	for i := 0; i < z.Rows; i++ {
		r := z.Row(i)
		for j, v := range r {
			r[j] = float32(v*m.OutputStd[j]) + m.OutputMean[j]
		}
	}
	return z, nil
}

// Labels is Model.predict for a classification model: the class values.
func (m *Model) Labels(x Matrix) ([]any, error) {
	index, _, err := m.Classify(x, false)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(index))
	for i, k := range index {
		out[i] = m.Classes[k]
	}
	return out, nil
}

// Summary is Model.summary: a few fields for listings and replies.
func (m *Model) Summary() map[string]any {
	sizes := make([]any, 0, len(m.Weights)+1)
	for _, s := range m.LayerSizes() {
		sizes = append(sizes, int64(s))
	}
	out := map[string]any{
		"task":              m.Task,
		"layer_sizes":       sizes,
		"hidden_activation": m.HiddenActivation,
		"output_activation": m.OutputActivation(),
		"input_columns":     int64(m.NInputs()),
	}
	if len(m.Classes) > 0 {
		out["classes"] = append([]any(nil), m.Classes...)
	} else {
		out["output_columns"] = int64(m.NOutputs())
	}
	if len(m.Features) > 0 {
		out["features"] = m.Features
	}
	if len(m.Targets) > 0 {
		out["targets"] = m.Targets
	}
	for _, k := range []string{"rounds_run", "best_round", "stopped_early", "final"} {
		if v, ok := m.Training[k]; ok {
			out[k] = v
		}
	}
	if rounds, ok := m.Training["rounds"].([]any); ok && len(rounds) > 0 {
		if last, ok := rounds[len(rounds)-1].(map[string]any); ok {
			out["epochs"] = last["epochs"]
		}
	}
	return out
}

// classValue is a JSON class as Python reads it: int for an integer
// literal, float otherwise.
func classValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, ok := jsonInt(x); ok {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, modelErr("class %s is not a number Go can hold", string(x))
		}
		return f, nil
	case string, bool:
		return x, nil
	}
	return nil, modelErr("classes must be numbers or strings of one type, got %s", pyRepr(v))
}
