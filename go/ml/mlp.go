package ml

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The network of zmqnode/ml/mlp.py: parameters in ONE flat float32 slice
// (layer 0 weight [fan_in x fan_out] row-major, layer 0 bias, layer 1
// weight, ...), the order in which they travel in SUB_TRAIN jobs and
// results and in which FedAvg averages them. A layer computes a @ W + b.
//
// Arithmetic follows numpy's float32 step by step (the same roundings in
// the same places, scalars rounded to float32 where numpy rounds them):
// only sums (matrix products, reductions) are computed differently, in
// float64, so results agree with Python's to a few float32 ulps per step.

// Task names (the model file's "task").
const (
	TaskBinary     = "binary"
	TaskMulticlass = "multiclass"
	TaskRegression = "regression"
)

// HiddenActivations are the activations a hidden layer may use.
var HiddenActivations = []string{"relu", "tanh", "sigmoid"}

// OutputActivation is fixed by the task; each is paired with the loss whose
// gradient w.r.t. the pre-activation is (output - target).
var OutputActivation = map[string]string{
	TaskBinary: "sigmoid", TaskMulticlass: "softmax", TaskRegression: "linear",
}

// Adam's constants (Kingma & Ba 2015), as mlp.py.
const (
	adamBeta1   = 0.9
	adamBeta2   = 0.999
	adamEpsilon = 1e-8
	// exp() of float32 overflows above ~88; sigmoid is exactly 0/1 long before.
	sigmoidClip = 40.0
)

// Architecture is the layer sizes (input, hidden..., output) and activations.
type Architecture struct {
	LayerSizes       []int
	HiddenActivation string
	OutputActivation string
}

// ArchitectureFor is Architecture.for_task.
func ArchitectureFor(inputs int, hidden []int, outputs int, activation, task string) Architecture {
	sizes := append([]int{inputs}, hidden...)
	return Architecture{append(sizes, outputs), activation, OutputActivation[task]}
}

// NLayers is the number of weight layers.
func (a Architecture) NLayers() int { return len(a.LayerSizes) - 1 }

// NParams is the length of the flat parameter slice.
func (a Architecture) NParams() int {
	n := 0
	for i := 0; i < a.NLayers(); i++ {
		n += (a.LayerSizes[i] + 1) * a.LayerSizes[i+1]
	}
	return n
}

// Describe is "4-64-3".
func (a Architecture) Describe() string {
	parts := make([]string, len(a.LayerSizes))
	for i, s := range a.LayerSizes {
		parts[i] = strconv.Itoa(s)
	}
	return strings.Join(parts, "-")
}

// Unflatten is per-layer weights and biases as views of flat (writes go through).
func (a Architecture) Unflatten(flat []float32) ([]Matrix, [][]float32, error) {
	if len(flat) != a.NParams() {
		return nil, nil, fmt.Errorf("%w: parameters have %d values; a %s network needs %d",
			ErrBadInput, len(flat), a.Describe(), a.NParams())
	}
	var ws []Matrix
	var bs [][]float32
	at := 0
	for i := 0; i < a.NLayers(); i++ {
		in, out := a.LayerSizes[i], a.LayerSizes[i+1]
		ws = append(ws, Matrix{in, out, flat[at : at+in*out : at+in*out]})
		at += in * out
		bs = append(bs, flat[at:at+out:at+out])
		at += out
	}
	return ws, bs, nil
}

// InitParams is mlp.init_params: Glorot-uniform weights U(-l, l) with
// l = sqrt(6 / (fan_in + fan_out)), drawn layer by layer in row-major order
// and rounded to float32; zero biases.
func InitParams(a Architecture, g *Generator) []float32 {
	flat := make([]float32, a.NParams())
	ws, _, _ := a.Unflatten(flat)
	for _, w := range ws {
		limit := math.Sqrt(6.0 / float64(w.Rows+w.Cols))
		for i := range w.Data {
			w.Data[i] = float32(g.Uniform(-limit, limit))
		}
	}
	return flat
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

// sigmoid32 is mlp.sigmoid in float32: clip, negate, exp, add 1, reciprocal.
func sigmoid32(z float32) float32 {
	if z > sigmoidClip {
		z = sigmoidClip
	} else if z < -sigmoidClip {
		z = -sigmoidClip
	}
	return 1 / (exp32(-z) + 1)
}

func activate(z []float32, activation string) {
	switch activation {
	case "relu":
		for i, v := range z {
			if v < 0 {
				z[i] = 0
			}
		}
	case "tanh":
		for i, v := range z {
			z[i] = float32(math.Tanh(float64(v)))
		}
	default:
		for i, v := range z {
			z[i] = sigmoid32(v)
		}
	}
}

func addBias(z Matrix, b []float32) {
	for i := 0; i < z.Rows; i++ {
		r := z.Row(i)
		for j := range r {
			r[j] += b[j]
		}
	}
}

// workspace is one job's batch temporaries, reused from batch to batch.
type workspace struct {
	acts, deltas []Matrix // per layer, sized for the largest batch
	s            scratch
}

func newWorkspace(a Architecture, rows int) *workspace {
	w := &workspace{}
	for _, size := range a.LayerSizes {
		w.acts = append(w.acts, NewMatrix(rows, size))
		w.deltas = append(w.deltas, NewMatrix(rows, size))
	}
	return w
}

// matrix is the workspace's matrix for a layer of the given width, cut to
// rows (fresh when there is no workspace).
func (w *workspace) matrix(list []Matrix, layer, rows, cols int) Matrix {
	if w == nil {
		return NewMatrix(rows, cols)
	}
	return Matrix{rows, cols, list[layer].Data[:rows*cols]}
}

func (w *workspace) actsList() []Matrix {
	if w == nil {
		return nil
	}
	return w.acts
}

func (w *workspace) deltasList() []Matrix {
	if w == nil {
		return nil
	}
	return w.deltas
}

func (w *workspace) scratch() *scratch {
	if w == nil {
		return nil
	}
	return &w.s
}

// forwardHidden is the input and every hidden layer's activations.
func forwardHidden(ws []Matrix, bs [][]float32, activation string, x Matrix, w *workspace) []Matrix {
	acts := []Matrix{x}
	for i := 0; i < len(ws)-1; i++ {
		z := w.matrix(w.actsList(), i+1, x.Rows, ws[i].Cols)
		matmulInto(z, acts[i], ws[i], w.scratch())
		addBias(z, bs[i])
		activate(z.Data, activation)
		acts = append(acts, z)
	}
	return acts
}

// outputLogits is the last layer's pre-activation for a batch.
func outputLogits(ws []Matrix, bs [][]float32, activation string, x Matrix) Matrix {
	acts := forwardHidden(ws, bs, activation, x, nil)
	last := len(ws) - 1
	z := NewMatrix(x.Rows, ws[last].Cols)
	matmulInto(z, acts[last], ws[last], nil)
	addBias(z, bs[last])
	return z
}

// logSoftmaxRow is mlp.log_softmax of one row, in float32.
func logSoftmaxRow(z, out []float32) {
	m := z[0]
	for _, v := range z[1:] {
		if v > m {
			m = v
		}
	}
	var s float64
	for j, v := range z {
		out[j] = v - m
		s += float64(exp32(out[j]))
	}
	l := float32(math.Log(float64(float32(s))))
	for j := range out {
		out[j] -= l
	}
}

// applyOutput is mlp.apply_output: probabilities (sigmoid, softmax) or the
// values themselves (linear), as a new matrix.
func applyOutput(z Matrix, outputActivation string) Matrix {
	p := NewMatrix(z.Rows, z.Cols)
	switch outputActivation {
	case "sigmoid":
		for i, v := range z.Data {
			p.Data[i] = sigmoid32(v)
		}
	case "softmax":
		for i := 0; i < z.Rows; i++ {
			r := p.Row(i)
			logSoftmaxRow(z.Row(i), r)
			for j, v := range r {
				r[j] = exp32(v)
			}
		}
	default:
		copy(p.Data, z.Data)
	}
	return p
}

// softplus is numpy's logaddexp(0, z), in float64.
func softplus(z float64) float64 {
	return math.Max(z, 0) + math.Log1p(math.Exp(-math.Abs(z)))
}

// outputLoss is mlp.output_loss: the mean loss over rows (NaN unless
// withLoss) and its gradient w.r.t. z, already divided by the row count,
// written into delta. The loss is summed in float64 (numpy: float32).
func outputLoss(z, y, delta Matrix, outputActivation string, withLoss bool) float64 {
	n := z.Rows
	loss := math.NaN()
	var total float64
	switch outputActivation {
	case "sigmoid":
		for i, v := range z.Data {
			if withLoss {
				total += softplus(float64(v)) - float64(y.Data[i]*v)
			}
			delta.Data[i] = sigmoid32(v) - y.Data[i]
		}
	case "softmax":
		for i := 0; i < n; i++ {
			d, yr := delta.Row(i), y.Row(i)
			logSoftmaxRow(z.Row(i), d)
			for j, lp := range d {
				if withLoss {
					total -= float64(yr[j] * lp)
				}
				d[j] = exp32(lp) - yr[j]
			}
		}
	default:
		for i, v := range z.Data {
			d := v - y.Data[i]
			delta.Data[i] = d
			if withLoss {
				total += float64(d * d)
			}
		}
		total *= 0.5
	}
	if withLoss {
		loss = total / float64(n)
	}
	nf := float32(n)
	for i := range delta.Data {
		delta.Data[i] /= nf
	}
	return loss
}

// lossAndGrad is mlp.loss_and_grad: backpropagation into gradW/gradB, the
// data loss returned. l2 is the coefficient of l2/2n * sum(W**2) for n rows
// (fit passes its own l2 times n), in the gradient only.
func lossAndGrad(a Architecture, ws []Matrix, bs [][]float32, gradW []Matrix, gradB [][]float32,
	x, y Matrix, l2 float64, withLoss bool, w *workspace) float64 {
	acts := forwardHidden(ws, bs, a.HiddenActivation, x, w)
	last := a.NLayers() - 1
	z := w.matrix(w.actsList(), last+1, x.Rows, ws[last].Cols)
	matmulInto(z, acts[last], ws[last], w.scratch())
	addBias(z, bs[last])
	delta := w.matrix(w.deltasList(), last+1, z.Rows, z.Cols)
	loss := outputLoss(z, y, delta, a.OutputActivation, withLoss)
	n := float64(x.Rows)
	for i := last; i >= 0; i-- {
		matmulTransAInto(gradW[i], acts[i], delta, w.scratch())
		if l2 != 0 {
			c := float32(l2 / n)
			for k, w := range ws[i].Data {
				gradW[i].Data[k] += float32(c * w)
			}
		}
		sums := make([]float64, len(gradB[i]))
		if w != nil {
			w.s.b1 = grow(w.s.b1, len(gradB[i]))
			sums = w.s.b1
			for j := range sums {
				sums[j] = 0
			}
		}
		for r := 0; r < delta.Rows; r++ {
			dr := delta.Row(r)
			dr = dr[:len(sums)]
			for j, v := range dr {
				sums[j] += float64(v)
			}
		}
		for j, v := range sums {
			gradB[i][j] = float32(v)
		}
		if i > 0 {
			next := w.matrix(w.deltasList(), i, delta.Rows, ws[i].Rows)
			matmulTransBInto(next, delta, ws[i], w.scratch())
			act := acts[i].Data
			switch a.HiddenActivation {
			case "relu":
				nd := next.Data[:len(act)]
				for k, v := range act {
					// numpy multiplies by the mask (0 * x, not a store of
					// 0); branch-free, as half the units are off at random.
					var on float32
					if v > 0 {
						on = 1
					}
					nd[k] *= on
				}
			case "tanh":
				for k, v := range act {
					next.Data[k] *= 1 - float32(v*v)
				}
			default:
				for k, v := range act {
					next.Data[k] *= float32(v * (1 - v))
				}
			}
			delta = next
		}
	}
	return loss
}

// adam is mlp.Adam: moment estimates for one flat parameter slice.
type adam struct {
	learningRate float64
	m, v         []float32
	t            int
}

func newAdam(size int, learningRate float64) *adam {
	return &adam{learningRate, make([]float32, size), make([]float32, size), 0}
}

// step updates params in place, rounding as numpy's in-place float32
// expressions do (each operation rounded, Python scalars rounded to float32).
func (o *adam) step(params, grads []float32) {
	o.t++
	b1, b2 := adamBeta1, adamBeta2 // variables: Go would fold 1-0.9 exactly
	b1f, b2f := float32(b1), float32(b2)
	c1, c2 := float32(1.0-b1), float32(1.0-b2)
	eps := float32(adamEpsilon)
	t := float64(o.t)
	step := float32(o.learningRate * math.Sqrt(1.0-math.Pow(b2, t)) / (1.0 - math.Pow(b1, t)))
	m, v := o.m, o.v
	for i, g := range grads {
		m[i] = float32(m[i]*b1f) + float32(g*c1)
		gg := float32(g * g)
		v[i] = float32(v[i]*b2f) + float32(gg*c2)
		d := float32(math.Sqrt(float64(v[i]))) + eps
		params[i] -= float32(float32(m[i]/d) * step)
	}
}

// Fit is mlp.fit: minibatch Adam for epochs passes over (x, y) from a fresh
// optimizer state. Returns new parameters (params is not modified) and the
// mean data loss over the last epoch. Rows are reshuffled every epoch with g
// and cut into ceil(n / batch_size) batches of equal size (give or take a row).
func Fit(a Architecture, params []float32, x, y Matrix, epochs, batchSize int,
	learningRate, l2 float64, g *Generator) ([]float32, float64, error) {
	n := x.Rows
	if n == 0 {
		return nil, 0, fmt.Errorf("%w: cannot train on zero rows", ErrBadInput)
	}
	params = append([]float32(nil), params...)
	grads := make([]float32, len(params))
	ws, bs, err := a.Unflatten(params)
	if err != nil {
		return nil, 0, err
	}
	gw, gb, _ := a.Unflatten(grads)
	opt := newAdam(len(params), learningRate)
	bsz := batchSize
	if bsz > n {
		bsz = n
	}
	if bsz < 1 {
		bsz = 1
	}
	nBatches := (n + bsz - 1) / bsz
	bounds := make([]int, nBatches+1)
	for i := range bounds {
		bounds[i] = i * n / nBatches
	}
	maxRows := bounds[1] - bounds[0] + 1
	work := newWorkspace(a, maxRows)
	// Each batch's shuffled rows are gathered into buffers reused across
	// batches and epochs, not the whole shuffled chunk per epoch (mlp.fit's
	// x[order]): the same values in the same order, without a second copy
	// of the chunk (on a Go leader the local trainer's memory is the node's).
	xBuf, yBuf := make([]float32, maxRows*x.Cols), make([]float32, maxRows*y.Cols)
	total := 0.0
	for epoch := 0; epoch < epochs; epoch++ {
		order := g.Permutation(n)
		last := epoch == epochs-1
		for b := 0; b < nBatches; b++ {
			start, stop := bounds[b], bounds[b+1]
			rows := stop - start
			xb, yb := x.GatherInto(xBuf, order[start:stop]), y.GatherInto(yBuf, order[start:stop])
			loss := lossAndGrad(a, ws, bs, gw, gb, xb, yb, l2*float64(rows), last, work)
			if last {
				total += float64(rows) * loss
			}
			opt.step(params, grads)
		}
	}
	return params, total / float64(n), nil
}

// Scores is mlp.evaluate's result: the loss and accuracy (classification)
// or R² (regression), on encoded targets.
type Scores struct {
	Loss     float64
	Accuracy float64 // classification only
	R2       float64 // regression only
}

// Evaluate is mlp.evaluate.
func Evaluate(a Architecture, params []float32, x, y Matrix) (Scores, error) {
	ws, bs, err := a.Unflatten(params)
	if err != nil {
		return Scores{}, err
	}
	z := outputLogits(ws, bs, a.HiddenActivation, x)
	delta := NewMatrix(z.Rows, z.Cols)
	s := Scores{Loss: outputLoss(z, y, delta, a.OutputActivation, true)}
	n := z.Rows
	switch a.OutputActivation {
	case "sigmoid":
		hits := 0
		for i := 0; i < n; i++ {
			if (z.Data[i] > 0) == (y.Data[i] > 0.5) {
				hits++
			}
		}
		s.Accuracy = float64(hits) / float64(n)
	case "softmax":
		hits := 0
		for i := 0; i < n; i++ {
			if argmax(z.Row(i)) == argmax(y.Row(i)) {
				hits++
			}
		}
		s.Accuracy = float64(hits) / float64(n)
	default:
		var total, resid float64
		for j := 0; j < y.Cols; j++ {
			var mean float64
			for i := 0; i < n; i++ {
				mean += float64(y.At(i, j))
			}
			mean /= float64(n)
			for i := 0; i < n; i++ {
				d := float64(y.At(i, j)) - mean
				total += d * d
				e := float64(z.At(i, j)) - float64(y.At(i, j))
				resid += e * e
			}
		}
		if total > 0 {
			s.R2 = 1 - resid/total
		}
	}
	return s, nil
}

// argmax is numpy's argmax of one row: the first maximum.
func argmax(r []float32) int {
	best := 0
	for j, v := range r {
		if v > r[best] {
			best = j
		}
	}
	return best
}
