package ml

import (
	"fmt"
	"math"
	"sort"
)

// From a client's arrays to a training problem, and from a problem to
// chunks: zmqnode/ml/problem.py. Deterministic in the data and the seed, and
// drawing from numpy's generators exactly, so a Go leader and a Python
// leader given one TRAIN make the same validation split, the same initial
// weights and the same chunks (standardization statistics agree to the
// float32 bit except in float64 ties; the tests check the bundled cases).

// Bounds of problem.py.
const (
	// MaxInferredClasses: integer labels with at most this many values are
	// classes when the client does not say which task it wants.
	MaxInferredClasses = 32
	MaxClasses         = 1024
	// MinValidationRows: fewer held-out rows make a validation loss too
	// noisy to stop on; then every row trains.
	MinValidationRows = 10
	// MinRowsPerChunk is scheduler.MIN_ROWS_PER_CHUNK: averaging models
	// trained on a handful of rows each loses what each learned.
	MinRowsPerChunk = 32
	// blockValues is problem.BLOCK_VALUES: statistics run over blocks of
	// rows, and the block boundaries decide how float64 sums are grouped.
	blockValues = 1 << 20
)

// Labels are a TRAIN request's outputs: exactly one of Ints (an integer
// array), Floats (a float array, float32 values widened exactly) or Names
// (string labels, e.g. the request's "classes" resolved per row). Cols is
// the array's second dimension, 0 for a 1-D array.
type Labels struct {
	Rows, Cols int
	Ints       []int64
	Floats     []float64
	Names      []string
}

// LabelsFromClassIndices is request.make_plan's step for a TRAIN with
// "classes": each row's index into names becomes the name itself. The
// caller refuses task "regression" with class names first (Python:
// "class names cannot be regression targets; drop task 'regression'").
func LabelsFromClassIndices(codes []int64, names []string) (Labels, error) {
	out := Labels{Rows: len(codes), Names: make([]string, len(codes))}
	for i, c := range codes {
		if c < 0 || c >= int64(len(names)) {
			return Labels{}, fmt.Errorf("%w: outputs row %d: class index %d is outside the %d names in 'classes'",
				ErrBadInput, i, c, len(names))
		}
		out.Names[i] = names[c]
	}
	return out, nil
}

func (l Labels) width() int {
	if l.Cols == 0 {
		return 1
	}
	return l.Cols
}

// oneD is problem._labels_1d: one label per row.
func (l Labels) oneD() bool { return l.Cols <= 1 }

// ChunkCount is scheduler.chunk_count: one chunk per trainer, at least
// MinRowsPerChunk rows each, at least one.
func ChunkCount(rows, trainers int) int {
	n := rows / MinRowsPerChunk
	if trainers < n {
		n = trainers
	}
	if n < 1 {
		n = 1
	}
	return n
}

// InferTask is problem.infer_task: binary/multiclass for integer labels with
// few values (or any string labels), regression otherwise.
func InferTask(y Labels) string {
	if !y.oneD() {
		return TaskRegression
	}
	if y.Names != nil {
		if len(uniqueStrings(y.Names)) == 2 {
			return TaskBinary
		}
		return TaskMulticlass
	}
	values := y.Floats
	if y.Ints != nil {
		values = make([]float64, len(y.Ints))
		for i, v := range y.Ints {
			values[i] = float64(v)
		}
	} else {
		for _, v := range values {
			if !finite64(v) || v != math.RoundToEven(v) {
				return TaskRegression
			}
		}
	}
	if len(values) == 0 {
		return TaskRegression
	}
	k := len(uniqueFloats(values))
	if k == 2 {
		return TaskBinary
	}
	if k >= 3 && k <= MaxInferredClasses {
		return TaskMulticlass
	}
	return TaskRegression
}

func uniqueStrings(a []string) []string {
	s := append([]string(nil), a...)
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func uniqueFloats(a []float64) []float64 {
	s := append([]float64(nil), a...)
	sort.Float64s(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Problem is problem.Problem: validated, encoded training data plus
// everything needed to start training.
type Problem struct {
	Task                  string
	Arch                  Architecture
	Options               TrainOptions // Task resolved
	Classes               []any        // sorted original labels; nil for regression
	InputMean, InputStd   []float32
	OutputMean, OutputStd []float32 // regression only
	rows                  Matrix    // the client's rows, not standardized
	TrainRows             []int     // indices into the client's rows, ascending
	Y                     Matrix    // training targets, encoded
	XVal, YVal            Matrix    // validation rows (standardized) and targets
	InitialParams         []float32
}

// NTrain is the number of training rows.
func (p *Problem) NTrain() int { return len(p.TrainRows) }

// NRows is the number of rows the client sent, validation rows included
// (problem.py's n_rows: what the leader's log line and event report).
func (p *Problem) NRows() int { return p.NTrain() + p.XVal.Rows }

// Chunk is the rows one trainer trains on in every round.
type Chunk struct {
	Index int
	X, Y  Matrix
}

func badInput(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadInput}, a...)...)
}

// rowsPerBlock is problem._blocks' block height for rows of width cols.
func rowsPerBlock(cols int) int {
	if cols < 1 {
		cols = 1
	}
	if r := blockValues / cols; r > 1 {
		return r
	}
	return 1
}

// standardization is problem._standardization: column mean and std from
// float64 sums, block by block, two passes; a constant column gets std 1.
func standardization(a Matrix) ([]float32, []float32) {
	n, c := a.Rows, a.Cols
	total := make([]float64, c)
	block := rowsPerBlock(c)
	part := make([]float64, c)
	for start := 0; start < n; start += block {
		stop := start + block
		if stop > n {
			stop = n
		}
		for j := range part {
			part[j] = 0
		}
		for i := start; i < stop; i++ {
			for j, v := range a.Row(i) {
				part[j] += float64(v)
			}
		}
		for j := range total {
			total[j] += part[j]
		}
	}
	mean := make([]float64, c)
	for j := range mean {
		mean[j] = total[j] / float64(n)
	}
	squares := make([]float64, c)
	for start := 0; start < n; start += block {
		stop := start + block
		if stop > n {
			stop = n
		}
		for j := range part {
			part[j] = 0
		}
		for i := start; i < stop; i++ {
			for j, v := range a.Row(i) {
				d := float64(v) - mean[j]
				part[j] += d * d
			}
		}
		for j := range squares {
			squares[j] += part[j]
		}
	}
	m32, s32 := make([]float32, c), make([]float32, c)
	for j := range mean {
		s := math.Sqrt(squares[j] / float64(n))
		if s == 0 {
			s = 1
		}
		m32[j], s32[j] = float32(mean[j]), float32(s)
	}
	return m32, s32
}

// standardizeRows is problem.standardize_rows: (a[indices] - mean) / std in float32.
func standardizeRows(a Matrix, indices []int, mean, std []float32) Matrix {
	out := NewMatrix(len(indices), a.Cols)
	for i, r := range indices {
		src, dst := a.Row(r), out.Row(i)
		for j, v := range src {
			d := v - mean[j]
			dst[j] = d / std[j]
		}
	}
	return out
}

func firstNonFinite(a Matrix) (int, int, bool) {
	for i := 0; i < a.Rows; i++ {
		for j, v := range a.Row(i) {
			if !finite64(float64(v)) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// Prepare is problem.prepare: validate and encode (x, y) for training. x is
// float32 (the wire's float64 rounded, as numpy's astype: beyond float32
// becomes infinite and is refused). Errors wrap ErrBadInput.
func Prepare(x Matrix, y Labels, o TrainOptions) (*Problem, error) {
	if x.Rows == 0 {
		return nil, badInput("inputs have no rows; training needs at least one")
	}
	if x.Cols == 0 {
		return nil, badInput("inputs have no columns")
	}
	if i, j, bad := firstNonFinite(x); bad {
		return nil, badInput("inputs contain NaN or infinite values (or values beyond float32), first at row %d, column %d", i, j)
	}
	if y.Rows != x.Rows {
		return nil, badInput("inputs have %d rows but outputs have %d", x.Rows, y.Rows)
	}
	n := x.Rows
	task := o.Task
	if task == "" {
		task = InferTask(y)
	}
	p := &Problem{}
	var encoded Matrix
	var classIndex []int
	if task == TaskRegression {
		if y.Names != nil {
			width := 1
			for _, n := range y.Names {
				if l := len([]rune(n)); l > width {
					width = l
				}
			}
			// numpy's dtype name, as Python's message has it.
			return nil, badInput("regression targets must be numbers, got an array of <U%d", width)
		}
		y32 := NewMatrix(n, y.width())
		for i := range y32.Data {
			if y.Ints != nil {
				y32.Data[i] = float32(y.Ints[i])
			} else {
				y32.Data[i] = float32(y.Floats[i])
			}
		}
		if i, j, bad := firstNonFinite(y32); bad {
			return nil, badInput("outputs contain NaN or infinite values, first at row %d, column %d", i, j)
		}
		p.OutputMean, p.OutputStd = standardization(y32)
		encoded = standardizeRows(y32, seq(n), p.OutputMean, p.OutputStd)
	} else {
		if !y.oneD() {
			return nil, badInput("task '%s' needs one label per row, but outputs have %d columns", task, y.Cols)
		}
		var err error
		task, p.Classes, classIndex, err = encodeClasses(y, task)
		if err != nil {
			return nil, err
		}
		k := len(p.Classes)
		if task == TaskBinary {
			encoded = NewMatrix(n, 1)
			for i, c := range classIndex {
				encoded.Data[i] = float32(c)
			}
		} else {
			encoded = NewMatrix(n, k)
			for i, c := range classIndex {
				encoded.Data[i*k+c] = 1
			}
		}
	}
	p.Task = task
	p.Options = o
	p.Options.Task = task
	p.rows = x
	p.InputMean, p.InputStd = standardization(x)
	val := validationRows(n, classIndex, len(p.Classes), o.ValidationFraction, RNGFor(o.Seed, StreamSplit, 0))
	isVal := make([]bool, n)
	for _, r := range val {
		isVal[r] = true
	}
	for r := 0; r < n; r++ {
		if !isVal[r] {
			p.TrainRows = append(p.TrainRows, r)
		}
	}
	p.Arch = ArchitectureFor(x.Cols, o.HiddenLayers, encoded.Cols, o.Activation, task)
	p.Y = encoded.Gather(p.TrainRows)
	p.XVal = standardizeRows(x, val, p.InputMean, p.InputStd)
	p.YVal = encoded.Gather(val)
	p.InitialParams = InitParams(p.Arch, RNGFor(o.Seed, StreamInit))
	return p, nil
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// encodeClasses is problem._encode_classes: the resolved task, the sorted
// class values and each row's index into them.
func encodeClasses(y Labels, task string) (string, []any, []int, error) {
	var classes []any
	index := make([]int, y.Rows)
	switch {
	case y.Names != nil:
		u := uniqueStrings(y.Names)
		pos := map[string]int{}
		for i, v := range u {
			pos[v] = i
			classes = append(classes, v)
		}
		for i, v := range y.Names {
			index[i] = pos[v]
		}
	case y.Ints != nil:
		u := append([]int64(nil), y.Ints...)
		sort.Slice(u, func(i, j int) bool { return u[i] < u[j] })
		pos := map[int64]int{}
		for _, v := range u {
			if _, ok := pos[v]; !ok {
				pos[v] = len(classes)
				classes = append(classes, v)
			}
		}
		for i, v := range y.Ints {
			index[i] = pos[v]
		}
	default:
		for i, v := range y.Floats {
			if !finite64(v) {
				return "", nil, nil, badInput("outputs contain NaN or infinite values, first at row %d", i)
			}
		}
		u := uniqueFloats(y.Floats)
		pos := map[float64]int{}
		for i, v := range u {
			pos[v] = i
			classes = append(classes, v)
		}
		for i, v := range y.Floats {
			index[i] = pos[v] // -0.0 and 0.0 are one key, one class, as in numpy
		}
	}
	k := len(classes)
	if k < 2 {
		first := "None"
		if k == 1 {
			b, _ := PyJSON(classes[0])
			first = string(b)
			if s, ok := classes[0].(string); ok {
				first = pyRepr(s)
			}
		}
		return "", nil, nil, badInput("every label is %s: a classifier needs at least 2 classes (use task 'regression' to fit a constant)", first)
	}
	if task == TaskBinary && k != 2 {
		return "", nil, nil, badInput("task 'binary' needs exactly 2 classes, the labels have %d", k)
	}
	if task == "classification" {
		task = TaskMulticlass
		if k == 2 {
			task = TaskBinary
		}
	}
	if k > MaxClasses {
		return "", nil, nil, badInput("the labels have %d classes; at most %d are supported", k, MaxClasses)
	}
	return task, classes, index, nil
}

// validationRows is problem._validation_rows: fraction of every class
// (floor), each class's rows shuffled by g, the held-out rows sorted; none
// if fewer than MinValidationRows.
func validationRows(n int, classIndex []int, nClasses int, fraction float64, g *Generator) []int {
	if fraction <= 0 {
		return nil
	}
	var groups [][]int
	if classIndex == nil {
		groups = [][]int{seq(n)}
	} else {
		maxClass := -1
		for _, c := range classIndex {
			if c > maxClass {
				maxClass = c
			}
		}
		groups = make([][]int, maxClass+1)
		for r, c := range classIndex {
			groups[c] = append(groups[c], r)
		}
	}
	var held []int
	for _, grp := range groups {
		perm := g.PermuteInts(grp)
		held = append(held, perm[:int(fraction*float64(len(grp)))]...)
	}
	sort.Ints(held)
	if len(held) < MinValidationRows {
		return nil
	}
	return held
}

// SplitChunks is problem.split_chunks: deal the training rows into
// min(n, rows) chunks, never an empty one. Classification is stratified
// (each class's rows shuffled, then dealt round-robin); regression rows are
// shuffled and dealt.
func SplitChunks(p *Problem, n int) ([]Chunk, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: the number of chunks must be a positive integer, got %d", ErrBadOptions, n)
	}
	rows := p.NTrain()
	if n > rows {
		n = rows
	}
	g := RNGFor(p.Options.Seed, StreamSplit, 1)
	var order []int
	if p.Task == TaskRegression {
		order = g.Permutation(rows)
	} else {
		byClass := make([][]int, len(p.Classes))
		for r := 0; r < rows; r++ {
			c := 0
			if p.Task == TaskBinary {
				c = int(p.Y.Data[r])
			} else {
				c = argmax(p.Y.Row(r))
			}
			byClass[c] = append(byClass[c], r)
		}
		for _, rs := range byClass {
			order = append(order, g.PermuteInts(rs)...)
		}
	}
	chunks := make([]Chunk, n)
	for i := range chunks {
		var pick []int
		for k := i; k < len(order); k += n {
			pick = append(pick, order[k])
		}
		src := make([]int, len(pick))
		for k, r := range pick {
			src[k] = p.TrainRows[r]
		}
		chunks[i] = Chunk{i, standardizeRows(p.rows, src, p.InputMean, p.InputStd), p.Y.Gather(pick)}
	}
	return chunks, nil
}
