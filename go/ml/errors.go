package ml

import "errors"

// The error kinds of zmqnode/ml/errors.py. Every error this package returns
// wraps exactly one of them (test with errors.Is), so a node maps them to
// the wire's codes: ErrBadInput, ErrBadOptions and ErrModelFormat to
// BAD_INPUT, ErrTraining to TRAINING_FAILED. Messages are for the person who
// sent the request, as on the Python side.
var (
	// ErrBadInput: training data or prediction input the model cannot use.
	ErrBadInput = errors.New("bad input")
	// ErrBadOptions: a training option with a wrong name, type or value.
	ErrBadOptions = errors.New("bad options")
	// ErrModelFormat: bytes that are not a valid zmqnode model file.
	ErrModelFormat = errors.New("bad model file")
	// ErrTraining: training itself failed (diverged, inconsistent results).
	ErrTraining = errors.New("training failed")
)
