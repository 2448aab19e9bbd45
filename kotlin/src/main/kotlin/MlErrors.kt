package zmqnode.ml

// The error kinds of zmqnode/ml/errors.py (go/ml/errors.go). Every error this
// package throws is one of these four, so a node maps them to wire codes:
// BadInput, BadOptions and ModelFormat to BAD_INPUT, Training to
// TRAINING_FAILED. `message` is the sentence for the person who sent the
// request, exactly Python's (no "bad input: " prefix; Go's errors have one).
open class MlException(message: String) : Exception(message)

/** Training data or prediction input the model cannot use (BAD_INPUT). */
class BadInputException(message: String) : MlException(message)

/** A training option with a wrong name, type or value (BAD_INPUT). */
class BadOptionsException(message: String) : MlException(message)

/** Bytes that are not a valid zmqnode model file (BAD_INPUT). */
class ModelFormatException(message: String) : MlException(message)

/** Training itself failed: diverged, inconsistent results (TRAINING_FAILED). */
class TrainingException(message: String) : MlException(message)
