package ml

import (
	"fmt"
	"math"
)

// The leader's side of one training (zmqnode/ml/training.py TrainingPlan):
// rounds of model averaging (FedAvg), validation and early stopping, the
// model. It never trains itself; a driver runs each round's jobs, locally
// (Train) or as SUB_TRAIN jobs on trainers of either implementation:
//
//	plan, _ := NewTrainingPlan(x, y, opts, ChunkCount(rows, trainers))
//	for !plan.Done {
//		results := ... one TrainChunk per plan.Jobs() entry, in chunk order
//		plan.FinishRound(results)
//	}
//	model, _ := plan.Model()

// ImprovementTolerance: a validation loss must drop by more than this to
// count as an improvement (scikit-learn's tol).
const ImprovementTolerance = 1e-4

// RoundJob is one SUB_TRAIN job: train chunk ChunkIndex from Params for Epochs.
type RoundJob struct {
	RoundIndex, ChunkIndex, Epochs int
	Params                         []float32
}

// TrainingPlan is the state between rounds. Read Options (task resolved:
// what a SUB_TRAIN job's "options" carries), Chunks, RoundIndex, Done and
// Params (the current averaged parameters); change them only through
// FinishRound. A failed FinishRound leaves the plan as it was.
type TrainingPlan struct {
	Problem    *Problem
	Options    TrainOptions
	Chunks     []Chunk
	Params     []float32
	RoundIndex int
	Done       bool
	// History is one entry per round: round, epochs, loss and val_* scores.
	History []map[string]any

	hasValidation   bool
	bestParams      []float32
	bestRound       int
	bestLoss        float64
	roundsSinceBest int
}

// NewTrainingPlan prepares the problem and splits it into nChunks chunks
// (fewer if there are fewer training rows). Errors wrap ErrBadInput or
// ErrBadOptions.
func NewTrainingPlan(x Matrix, y Labels, o TrainOptions, nChunks int) (*TrainingPlan, error) {
	p, err := Prepare(x, y, o)
	if err != nil {
		return nil, err
	}
	chunks, err := SplitChunks(p, nChunks)
	if err != nil {
		return nil, err
	}
	p.rows = Matrix{} // the chunks hold every training row now
	return &TrainingPlan{
		Problem: p, Options: p.Options, Chunks: chunks, Params: p.InitialParams,
		hasValidation: p.XVal.Rows > 0, bestParams: p.InitialParams, bestRound: -1,
		bestLoss: math.Inf(1),
	}, nil
}

// Jobs is this round's jobs, one per chunk (none once done).
func (t *TrainingPlan) Jobs() []RoundJob {
	if t.Done {
		return nil
	}
	epochs, _ := t.Options.EpochsInRound(t.RoundIndex)
	jobs := make([]RoundJob, len(t.Chunks))
	for i, c := range t.Chunks {
		jobs[i] = RoundJob{t.RoundIndex, c.Index, epochs, t.Params}
	}
	return jobs
}

// FinishRound averages this round's results (in chunk order), validates and
// decides; it returns true when training is done. Errors wrap ErrTraining.
func (t *TrainingPlan) FinishRound(results []ChunkResult) (bool, error) {
	if t.Done {
		return true, fmt.Errorf("%w: training is already finished", ErrTraining)
	}
	if len(results) != len(t.Chunks) {
		return false, fmt.Errorf("%w: round %d needs %d results, got %d", ErrTraining, t.RoundIndex, len(t.Chunks), len(results))
	}
	arch := t.Problem.Arch
	for c, r := range results {
		if len(r.Params) != arch.NParams() {
			return false, fmt.Errorf("%w: chunk %d returned %d parameters; the %s network has %d",
				ErrTraining, c, len(r.Params), arch.Describe(), arch.NParams())
		}
	}
	params, err := Average(results)
	if err != nil {
		return false, err
	}
	if !allFinite(params) {
		return false, fmt.Errorf("%w: training diverged in round %d; try a smaller learning_rate", ErrTraining, t.RoundIndex)
	}
	total, weighted := 0, 0.0
	for _, r := range results {
		total += r.NSamples
		weighted += float64(r.NSamples) * r.Loss
	}
	trainLoss := weighted / float64(total)
	var scores Scores
	if t.hasValidation {
		if scores, err = Evaluate(arch, params, t.Problem.XVal, t.Problem.YVal); err != nil {
			return false, err
		}
	}
	if !finite64(trainLoss) || !finite64(scores.Loss) || !finite64(scores.Accuracy) || !finite64(scores.R2) {
		return false, fmt.Errorf("%w: training diverged in round %d (loss %v, validation loss %v); try a smaller learning_rate",
			ErrTraining, t.RoundIndex, trainLoss, scores.Loss)
	}
	// Nothing above changed the plan: a failed round leaves it as it was.
	r := t.RoundIndex
	epochs := (r + 1) * t.Options.EpochsPerRound
	if t.Options.Epochs < epochs {
		epochs = t.Options.Epochs
	}
	entry := map[string]any{"round": int64(r), "epochs": int64(epochs), "loss": round6(trainLoss)}
	t.Params = params
	if t.hasValidation {
		entry["val_loss"] = round6(scores.Loss)
		if t.Problem.Task == TaskRegression {
			entry["val_r2"] = round6(scores.R2)
		} else {
			entry["val_accuracy"] = round6(scores.Accuracy)
		}
		if scores.Loss < t.bestLoss-ImprovementTolerance {
			t.bestLoss, t.bestParams, t.bestRound = scores.Loss, params, r
			t.roundsSinceBest = 0
		} else {
			t.roundsSinceBest++
		}
	} else {
		t.bestParams, t.bestRound = params, r
	}
	t.History = append(t.History, entry)
	t.RoundIndex++
	stopEarly := t.hasValidation && t.Options.Patience > 0 && t.roundsSinceBest >= t.Options.Patience
	t.Done = stopEarly || t.RoundIndex >= t.Options.NRounds()
	return t.Done, nil
}

// Model is the trained model: the parameters of the best validation round,
// else the last; created_by says only "software": "zmqnode" (the Python
// coordinator adds nothing either, so the same TRAIN gives the same bytes
// whichever node led it). Column names are the caller's to add.
func (t *TrainingPlan) Model() (*Model, error) {
	if !t.Done {
		return nil, fmt.Errorf("%w: training is not finished", ErrTraining)
	}
	p := t.Problem
	weights, biases, err := p.Arch.Unflatten(append([]float32(nil), t.bestParams...))
	if err != nil {
		return nil, err
	}
	best := t.History[t.bestRound]
	final := map[string]any{}
	for k, v := range best {
		if k != "round" && k != "epochs" {
			final[k] = v
		}
	}
	rounds := make([]any, len(t.History))
	for i, h := range t.History {
		rounds[i] = h
	}
	chunks := make([]any, len(t.Chunks))
	for i, c := range t.Chunks {
		chunks[i] = int64(c.X.Rows)
	}
	training := map[string]any{
		"options":       t.Options.ToMap(),
		"rows":          map[string]any{"train": int64(p.NTrain()), "validation": int64(p.XVal.Rows)},
		"chunks":        chunks,
		"rounds":        rounds,
		"rounds_run":    int64(t.RoundIndex),
		"best_round":    int64(t.bestRound),
		"stopped_early": t.RoundIndex < t.Options.NRounds(),
		"final":         final,
	}
	m := &Model{
		Task: p.Task, HiddenActivation: p.Arch.HiddenActivation, Weights: weights, Biases: biases,
		InputMean: p.InputMean, InputStd: p.InputStd, Classes: p.Classes,
		OutputMean: p.OutputMean, OutputStd: p.OutputStd,
		Training: training, CreatedBy: map[string]any{"software": "zmqnode"},
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Train is training.train: the whole loop locally, chunk by chunk, exactly
// as a cluster with nTrainers trainers would run it.
func Train(x Matrix, y Labels, o TrainOptions, nTrainers int) (*Model, error) {
	plan, err := NewTrainingPlan(x, y, o, nTrainers)
	if err != nil {
		return nil, err
	}
	for !plan.Done {
		jobs := plan.Jobs()
		results := make([]ChunkResult, len(jobs))
		for i, j := range jobs {
			c := plan.Chunks[j.ChunkIndex]
			if results[i], err = TrainChunk(j.Params, c.X, c.Y, plan.Options, j.RoundIndex, c.Index, j.Epochs); err != nil {
				return nil, err
			}
		}
		if _, err := plan.FinishRound(results); err != nil {
			return nil, err
		}
	}
	return plan.Model()
}
