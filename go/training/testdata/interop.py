"""The Python side of go/training's interop tests (interop_test.go).

Run by the Go tests with the repository's Python (.venv/bin/python):

  interop.py job-to-trainer TRAINER_ENDPOINT RESULTS_PORT [KEYS_DIR NODE_KEY]
      Encodes SUB_TRAIN jobs with zmqnode/training/protocol.py, PUSHes them
      to the (Go) trainer at TRAINER_ENDPOINT, pulls the results on
      127.0.0.1:RESULTS_PORT, decodes them with decode_result and compares
      them with distributed.run_chunk / trainer.handle: parameters within
      float32 tolerance, the same n_samples, missing_data for a chunk the
      trainer never had, the very error text for bad options. Prints one JSON
      line; exit status 1 on any difference.

  interop.py python-accuracy NAME N_TRAINERS
      The Python leader's test accuracy on bundled set NAME (iris, wine or
      breast_cancer, go/ml/testdata/bundled),
      training.train with default options and N_TRAINERS chunks.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import zmq

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from zmqnode.ml.distributed import run_chunk  # noqa: E402
from zmqnode.ml.options import TrainOptions  # noqa: E402
from zmqnode.ml.training import train  # noqa: E402
from zmqnode.training.protocol import Job, decode_result, encode_job  # noqa: E402
from zmqnode.training.trainer import ChunkCache, handle  # noqa: E402
from zmqnode.transport import security  # noqa: E402
from zmqnode.transport.sockets import Sockets  # noqa: E402

WAIT_MS = 20_000


def job_to_trainer(endpoint: str, results_port: int, keys_dir: str = "", node_key: str = "") -> int:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((48, 3)).astype(np.float32)
    y = (x[:, :1] + x[:, 1:2] > 0).astype(np.float32)
    options = TrainOptions(hidden_layers=(8,), epochs=20, epochs_per_round=10, seed=11, task="binary")
    params = (rng.standard_normal(3 * 8 + 8 + 8 + 1) * 0.3).astype(np.float32)
    reply_to = f"tcp://127.0.0.1:{results_port}"
    ctx = zmq.Context()
    keys = security.load_node_keys(keys_dir, node_key, "none") if keys_dir else None
    gatekeeper = security.start_authenticator(ctx, keys)
    sockets = Sockets(ctx, keys)
    pull = sockets.server(zmq.PULL, reply_to, security.PEERS, linger_ms=0)
    push = sockets.client(zmq.PUSH, endpoint)
    bad = {**options.to_dict(), "momentum": 0.9}
    jobs = [
        Job("interop#000000000001", 0, 2, reply_to, options.to_dict(), params, x, y),
        Job("interop#000000000001", 1, 2, reply_to, options.to_dict(), params * 0.5, None, None),
        Job("interop#000000000001", 0, 7, reply_to, options.to_dict(), params, None, None),
        Job("interop#000000000001", 0, 3, reply_to, bad, params, x, y),
    ]
    cache = ChunkCache(1 << 26)
    report = []
    ok = True
    for job in jobs:
        push.send_multipart(encode_job(job))
        if not pull.poll(WAIT_MS):
            print(json.dumps({"ok": False, "error": f"no result for chunk {job.chunk}"}))
            return 1
        got = decode_result(pull.recv_multipart())
        want = handle(job, cache, got.trainer)
        entry = {
            "chunk": got.chunk,
            "round": got.round_index,
            "n_samples": got.n_samples,
            "missing_data": got.missing_data,
            "error": got.error,
        }
        same = (
            (got.job_id, got.round_index, got.chunk, got.n_samples, got.missing_data, got.error)
            == (want.job_id, want.round_index, want.chunk, want.n_samples, want.missing_data, want.error)
        )
        if want.params is not None:
            if got.params is None or got.params.dtype != np.float32:
                same = False
            else:
                expected, n, loss = run_chunk(
                    job.params, x, y, job.options, job.round_index, job.chunk
                )
                diff = np.abs(got.params - expected) / (np.abs(expected) + 1e-3)
                entry["max_rel_diff"] = float(diff.max())
                entry["loss"] = [got.loss, loss]
                same = same and diff.max() <= 1e-5 and abs(got.loss - loss) <= 1e-5 * abs(loss)
        entry["same"] = bool(same)
        ok = ok and same
        report.append(entry)
    print(json.dumps({"ok": ok, "curve": keys is not None, "results": report}))
    if gatekeeper is not None:
        gatekeeper.stop()
    ctx.destroy(linger=0)
    return 0 if ok else 1


def python_accuracy(name: str, n_trainers: int) -> int:
    data = ROOT / "go" / "ml" / "testdata"
    case = next(c for c in json.loads((data / "bundled.json").read_text()) if c["name"] == name)
    values = np.fromfile(data / "bundled" / f"{name}.f32", dtype="<f4")
    split = case["train_rows"] * case["inputs"]
    x_train = values[:split].reshape(case["train_rows"], case["inputs"])
    x_test = values[split:].reshape(case["test_rows"], case["inputs"])
    model = train(x_train, np.asarray(case["y_train"], np.int64), n_trainers=n_trainers)
    score = float((model.predict(x_test) == np.asarray(case["y_test"])).mean())
    print(json.dumps({"score": score}))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["job-to-trainer"]:
        return job_to_trainer(argv[1], int(argv[2]), *argv[3:5])
    if argv[:1] == ["python-accuracy"]:
        return python_accuracy(argv[1], int(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
