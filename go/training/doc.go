// Package training is the Go node's SUB_TRAIN traffic, side by side with the
// Python package zmqnode/training (docs/PROTOCOL.md §9, docs/TRAINING.md):
//
//   - protocol.go: SUB_TRAIN jobs and SUB_TRAIN_RESULT results, encoded
//     byte for byte as protocol.py encodes them, decoded with its checks,
//     codes and messages (golden vectors: testdata/gen.py).
//   - trainer.go: the trainer (trainer.py's process): a PULL at P+3000
//     admitting members only, the chunk cache, at most 16 result sockets,
//     reply_to validation, errors reported as Python reports them; the
//     maths is go/ml's RunChunk.
//   - scheduler.go: which trainer trains which chunk and when a chunk moves
//     (scheduler.py), pure: time and trainers come in as arguments.
//   - request.go, coordinator.go: the leader (request.py, coordinator.py):
//     TRAIN admission (--max-trainings), validation, plan preparation off
//     the loop, rounds of FedAvg through go/ml, PROGRESS replies, the model
//     handed to Links.CommitModel, LostLeadership.
//
// The coordinator runs on the node's loop goroutine; the trainer on its own
// goroutine with its own ZeroMQ context (and ZAP handler). Spec questions
// the port raised are in SPEC_NOTES.md; interop_test.go runs a Python
// trainer process and the Python encoder against this package when
// /work/main/.venv exists (CI has it).
package training
