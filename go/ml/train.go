package ml

import (
	"fmt"
	"math"
)

// The trainer's side of a SUB_TRAIN job (zmqnode/ml/training.py
// train_chunk, distributed.run_chunk) and the leader's average.

// Stream numbers of problem.py: independent generators derived from the seed.
const (
	StreamInit  = 0
	StreamTrain = 1
	StreamSplit = 2
)

// ChunkResult is what a trainer returns for one chunk and round.
type ChunkResult struct {
	Params   []float32 // flat
	NSamples int
	Loss     float64 // mean data loss over the chunk's last local epoch
}

// ChunkArchitecture rebuilds the network a chunk trains from its shapes and
// the resolved options (a job carries no architecture of its own).
func ChunkArchitecture(x, y Matrix, o TrainOptions) (Architecture, error) {
	if o.Task == "" || o.Task == "classification" {
		return Architecture{}, fmt.Errorf("%w: a chunk is trained with resolved options: task must not be null", ErrBadOptions)
	}
	if x.Rows != y.Rows {
		return Architecture{}, fmt.Errorf("%w: a chunk needs 2-D x and y with the same rows, got (%d, %d) and (%d, %d)",
			ErrBadInput, x.Rows, x.Cols, y.Rows, y.Cols)
	}
	if o.Task != TaskRegression && (o.Task == TaskBinary) != (y.Cols == 1) {
		return Architecture{}, fmt.Errorf("%w: task '%s' does not fit targets with %d column(s)", ErrBadInput, o.Task, y.Cols)
	}
	return ArchitectureFor(x.Cols, o.HiddenLayers, y.Cols, o.Activation, o.Task), nil
}

// TrainChunk is training.train_chunk / distributed.run_chunk: the SUB_TRAIN
// work. Local epochs (the options' schedule for round, unless epochs > 0) of
// minibatch Adam on chunk (x, y) from params, at the round's learning rate,
// shuffled by the generator of (seed, StreamTrain, round, chunk) so that any
// trainer, Go or Python, retraining the chunk gives the same result up to
// float32 rounding. Deterministic in its arguments.
func TrainChunk(params []float32, x, y Matrix, o TrainOptions, round, chunk, epochs int) (ChunkResult, error) {
	if x.Rows == 0 || x.Cols == 0 || y.Cols == 0 || x.Rows != y.Rows {
		return ChunkResult{}, fmt.Errorf("%w: chunk needs 2-D x and y with the same, non-zero rows; got (%d, %d), (%d, %d)",
			ErrBadInput, x.Rows, x.Cols, y.Rows, y.Cols)
	}
	a, err := ChunkArchitecture(x, y, o)
	if err != nil {
		return ChunkResult{}, err
	}
	if epochs <= 0 {
		if epochs, err = o.EpochsInRound(round); err != nil {
			return ChunkResult{}, err
		}
	}
	if len(params) != a.NParams() {
		return ChunkResult{}, fmt.Errorf("%w: parameters have %d values; a %s network needs %d",
			ErrBadInput, len(params), a.Describe(), a.NParams())
	}
	g := RNGFor(o.Seed, StreamTrain, round, chunk)
	p, loss, err := Fit(a, params, x, y, epochs, o.BatchSize, o.LearningRateInRound(round), o.L2, g)
	if err != nil {
		return ChunkResult{}, err
	}
	if !finite64(loss) || !allFinite(p) {
		return ChunkResult{}, fmt.Errorf("%w: training diverged on chunk %d in round %d (loss %v); try a smaller learning_rate",
			ErrTraining, chunk, round, loss)
	}
	return ChunkResult{p, x.Rows, loss}, nil
}

// RunChunk is distributed.run_chunk: TrainChunk for a SUB_TRAIN job as it
// arrives, options as the job's JSON object. The epochs are the options'
// schedule for round (a job carries no epoch count).
func RunChunk(params []float32, x, y Matrix, options []byte, round, chunk int) (ChunkResult, error) {
	o, err := ParseOptions(options)
	if err != nil {
		return ChunkResult{}, err
	}
	return TrainChunk(params, x, y, o, round, chunk, 0)
}

// Average is training.average (FedAvg): parameters weighted by each chunk's
// rows, summed in float64 in chunk order, rounded once to float32. The same
// operations as numpy's, so a Go leader averages bit for bit as Python does.
func Average(results []ChunkResult) ([]float32, error) {
	var used []ChunkResult
	for _, r := range results {
		if r.NSamples > 0 {
			used = append(used, r)
		}
	}
	if len(used) == 0 {
		return nil, fmt.Errorf("%w: no chunk trained on any rows; nothing to average", ErrTraining)
	}
	size := len(used[0].Params)
	acc := make([]float64, size)
	total := 0
	for _, r := range used {
		if len(r.Params) != size {
			return nil, fmt.Errorf("%w: chunk results disagree on the parameter count (%d vs %d)",
				ErrTraining, len(r.Params), size)
		}
		n := float64(r.NSamples)
		for i, p := range r.Params {
			acc[i] += n * float64(p)
		}
		total += r.NSamples
	}
	out := make([]float32, size)
	t := float64(total)
	for i, v := range acc {
		out[i] = float32(v / t)
	}
	return out, nil
}

func finite64(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func allFinite(a []float32) bool {
	for _, v := range a {
		if !finite64(float64(v)) {
			return false
		}
	}
	return true
}
