package training

import (
	"fmt"
	"strconv"
	"strings"

	"zmqnode/ml"
	"zmqnode/wire"
)

// TrainRequest is a TRAIN request's arrays and names, checked cheaply
// (zmqnode/training/request.py): the per-row work is MakePlan's.
type TrainRequest struct {
	X, Y       wire.Array
	ClassNames []string // nil: no "classes"
	Features   []string
	Targets    []string
}

// ReadTrainRequest is request.read_train_request: the arrays and names, or
// a *wire.ProtocolError (BAD_REQUEST, BAD_SHAPE, BAD_INPUT, TOO_LARGE) with
// Python's messages. limit bounds each array (--max-request-bytes).
func ReadTrainRequest(h *wire.Object, blobs [][]byte, limit int64) (*TrainRequest, error) {
	x, err := wire.ReadArray(h, blobs, "inputs", limit)
	if err != nil {
		return nil, withHeader(err, h)
	}
	y, err := wire.ReadArray(h, blobs, "outputs", limit)
	if err != nil {
		return nil, withHeader(err, h)
	}
	r := &TrainRequest{X: x, Y: y}
	if r.ClassNames, err = names(h, "classes"); err != nil {
		return nil, err
	}
	if r.ClassNames != nil {
		if len(r.ClassNames) < 2 || len(r.ClassNames) > ml.MaxClasses {
			return nil, hErr(h, wire.BadInput, "'classes' names %d classes; a classifier needs 2 to %d",
				len(r.ClassNames), ml.MaxClasses)
		}
		intKind := y.Dtype == wire.Int32 || y.Dtype == wire.Int64
		if !intKind || !(len(y.Shape) == 1 || (len(y.Shape) == 2 && y.Shape[1] == 1)) {
			return nil, hErr(h, wire.BadShape, "with 'classes', 'outputs' must be integer indices into them, one per row "+
				"(int64 [rows]); got %s %s", y.Dtype, pyList(y.Shape))
		}
	}
	if r.Features, err = names(h, "features"); err != nil {
		return nil, err
	}
	if r.Targets, err = names(h, "targets"); err != nil {
		return nil, err
	}
	columns, targetColumns := 1, 1
	if len(x.Shape) == 2 {
		columns = x.Shape[1]
	}
	if len(y.Shape) == 2 {
		targetColumns = y.Shape[1]
	}
	if msg := checkColumnNames("features", r.Features, columns); msg != "" {
		return nil, hErr(h, wire.BadShape, "%s", msg)
	}
	if msg := checkColumnNames("targets", r.Targets, targetColumns); msg != "" {
		return nil, hErr(h, wire.BadShape, "%s", msg)
	}
	return r, nil
}

func names(h *wire.Object, key string) ([]string, error) {
	v, ok := h.Get(key)
	if !ok || v == nil {
		return nil, nil
	}
	list, isList := v.([]any)
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, isStr := item.(string)
		if !isStr {
			isList = false
			break
		}
		out = append(out, s)
	}
	if !isList {
		return nil, hErr(h, wire.BadRequest, "'%s' must be a list of strings", key)
	}
	if key == "classes" {
		seen := map[string]bool{}
		for _, s := range out {
			if seen[s] {
				return nil, hErr(h, wire.BadInput, "'classes' must be distinct names")
			}
			seen[s] = true
		}
	}
	return out, nil
}

// MakePlan is request.make_plan: resolve class names, check the shapes
// Prepare cannot see, and make the plan (slow: off the loop). Errors wrap
// ml.ErrBadInput / ml.ErrBadOptions.
func MakePlan(r *TrainRequest, o ml.TrainOptions, nChunks int) (*ml.TrainingPlan, error) {
	var labels ml.Labels
	if r.ClassNames != nil {
		codes, err := int64sOf(r.Y)
		if err != nil {
			return nil, err
		}
		if labels, err = ml.LabelsFromClassIndices(codes, r.ClassNames); err != nil {
			return nil, err
		}
		if o.Task == ml.TaskRegression {
			return nil, fmt.Errorf("%w: class names cannot be regression targets; drop task 'regression'", ml.ErrBadInput)
		}
	}
	if len(r.X.Shape) != 2 {
		return nil, fmt.Errorf("%w: inputs must be a 2-D array (rows x columns), got shape %s",
			ml.ErrBadInput, pyShape(r.X.Shape))
	}
	if len(r.Y.Shape) != 1 && len(r.Y.Shape) != 2 {
		return nil, fmt.Errorf("%w: outputs must be 1-D (one label per row) or 2-D, got shape %s",
			ml.ErrBadInput, pyShape(r.Y.Shape))
	}
	xs, err := toFloat32(r.X)
	if err != nil {
		return nil, err
	}
	x, err := ml.MatrixOf(r.X.Shape[0], r.X.Shape[1], xs)
	if err != nil {
		return nil, err
	}
	if r.ClassNames != nil {
		labels.Cols = 0
		if len(r.Y.Shape) == 2 {
			labels.Cols = r.Y.Shape[1]
		}
	} else if labels, err = labelsOf(r.Y); err != nil {
		return nil, err
	}
	return ml.NewTrainingPlan(x, labels, o, nChunks)
}

func labelsOf(y wire.Array) (ml.Labels, error) {
	l := ml.Labels{Rows: y.Shape[0]}
	if len(y.Shape) == 2 {
		l.Cols = y.Shape[1]
	}
	var err error
	switch y.Dtype {
	case wire.Int32, wire.Int64:
		l.Ints, err = int64sOf(y)
	case wire.Float32:
		var f []float32
		f, err = y.Float32s()
		l.Floats = make([]float64, len(f))
		for i, v := range f {
			l.Floats[i] = float64(v)
		}
	case wire.Float64:
		l.Floats, err = y.Float64s()
	default:
		err = fmt.Errorf("%w: outputs of dtype %s", ml.ErrBadInput, y.Dtype)
	}
	return l, err
}

func hErr(h *wire.Object, code wire.ErrorCode, format string, args ...any) error {
	return &wire.ProtocolError{Code: code, Message: fmt.Sprintf(format, args...), Header: h}
}

func withHeader(err error, h *wire.Object) error {
	if pe, ok := err.(*wire.ProtocolError); ok && pe.Header == nil {
		return &wire.ProtocolError{Code: pe.Code, Message: pe.Message, Header: h}
	}
	return err
}

// pyList is a Python list of ints' repr: [150, 2].
func pyList(v []int) string {
	parts := make([]string, len(v))
	for i, d := range v {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// int64sOf is an integer array's values as int64.
func int64sOf(a wire.Array) ([]int64, error) {
	if a.Dtype == wire.Int32 {
		v, err := a.Int32s()
		out := make([]int64, len(v))
		for i, x := range v {
			out[i] = int64(x)
		}
		return out, err
	}
	return a.Int64s()
}

// checkColumnNames is model_file.check_column_names with Python's reprs in
// its messages ("" when the names are fine). ml.CheckColumnNames makes the
// same decisions but quotes names Go's way ("a" rather than 'a').
func checkColumnNames(what string, names []string, width int) string {
	if len(names) == 0 {
		return ""
	}
	if len(names) != width {
		return fmt.Sprintf("%s names %d columns; the model has %d", what, len(names), width)
	}
	for _, name := range names {
		if n := len([]rune(name)); n == 0 || n > ml.MaxColumnNameChars {
			r := []rune(pyRepr(name))
			if len(r) > 80 {
				r = r[:80]
			}
			return fmt.Sprintf("%s: each column name must be a string of 1 to %d characters, got %s",
				what, ml.MaxColumnNameChars, string(r))
		}
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			first := names
			if len(first) > 10 {
				first = first[:10]
			}
			quoted := make([]string, len(first))
			for i, n := range first {
				quoted[i] = pyRepr(n)
			}
			return fmt.Sprintf("%s: column names must be distinct, got [%s]", what, strings.Join(quoted, ", "))
		}
		seen[name] = true
	}
	return ""
}
