// Package ml is zmqnode's machine learning in Go, side by side with the
// Python package zmqnode/ml: the MLP, its training as rounds of model
// averaging, the model file, and prediction. No sockets, no Raft.
//
// A Go node is a full member of a mixed cluster, so this package computes
// what the Python code computes, not merely something similar:
//
//   - rng.go: numpy's default_rng([seed, stream, *keys]) bit for bit
//     (SeedSequence, PCG64, uniform, permutation), so Go shuffles the rows of
//     a chunk, splits the data and draws initial weights as Python does.
//   - mlp.go, matrix.go: forward and backward passes, Adam and Fit in
//     float32 with numpy's roundings; only sums are ordered differently, so
//     a Go trainer's SUB_TRAIN result equals Python's up to float32 rounding
//     (about 1e-6 relative after a round; train_test.go).
//   - train.go: TrainChunk is the trainer's whole job; Average is FedAvg.
//   - problem.go, plan.go: the leader. Prepare, SplitChunks, TrainingPlan
//     and Train reproduce problem.py and training.py exactly: the same
//     validation rows, initial weights, chunks, averages, metrics and early
//     stopping, so a Go leader given Python trainers' results writes the
//     very model file a Python leader writes (plan_test.go).
//   - model.go, modelfile.go, pyjson.go: docs/FORMAT.md, read and written
//     byte-identically to model_file.py; prediction as PREDICT defines it.
//   - options.go: the TRAIN/SUB_TRAIN options, validated as options.py
//     validates them, with its messages.
//
// Errors wrap ErrBadInput, ErrBadOptions, ErrModelFormat or ErrTraining
// (errors.go) so a node maps them to wire codes. Golden vectors come from
// testdata/gen.py, run with the repository's Python (see its docstring).
// Spec questions the port raised are in SPEC_NOTES.md.
package ml
