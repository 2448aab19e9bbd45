"""Golden vectors for the Kotlin package zmqnode.training (kotlin/src/test/kotlin/TrainingMlTest.kt):
a TRAIN prepared by Python, its round-0 SUB_TRAIN jobs as Python's
coordinator encodes them, each chunk trained by Python's trainer
(trainer.handle), the round averaged by Python's plan, and the model file.

Run from the repository root:  .venv/bin/python kotlin/testdata/training/gen.py
It rewrites interop.json deterministically. The Kotlin test prepares the same
TRAIN, checks its jobs are Python's bytes, trains chunk 1 itself, averages it
with Python's chunk 0 and compares with Python's average and model.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from zmqnode.ml.options import TrainOptions  # noqa: E402
from zmqnode.ml.training import ChunkResult  # noqa: E402
from zmqnode.training.protocol import Job, decode_result, encode_job, encode_result  # noqa: E402
from zmqnode.training.request import make_plan, read_train_request  # noqa: E402
from zmqnode.training.trainer import ChunkCache, handle  # noqa: E402
from zmqnode.transport import wire  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent
JOB_ID = "interop#0123456789ab"
REPLY_TO = "tcp://127.0.0.1:13000"


def hexframes(frames) -> list[str]:
    return [bytes(f).hex() for f in frames]


def case(name: str, x: np.ndarray, y: np.ndarray, options: dict, n_chunks: int, **fields) -> dict:
    xd, xb = wire.array_to_frame(x, frame=0)
    yd, yb = wire.array_to_frame(y, frame=1)
    header = {"type": "TRAIN", "id": name, "inputs": xd, "outputs": yd, "options": options, **fields}
    request_frames = [bytes(f) for f in wire.encode(header, [xb, yb])]
    h, b = wire.decode(request_frames)
    req = read_train_request(h, b, 1 << 30)
    plan = make_plan(req, TrainOptions.from_dict(h.get("options") or {}), n_chunks)
    rounds = []
    cache = ChunkCache(1 << 30)
    while not plan.done:
        jobs, results, outcomes = [], [], []
        for c, chunk in enumerate(plan.chunks):
            job = Job(JOB_ID, plan.round_index, c, REPLY_TO, plan.options.to_dict(), plan.params,
                      chunk.x if plan.round_index == 0 else None, chunk.y if plan.round_index == 0 else None)
            frames = [bytes(f) for f in encode_job(job)]
            result = handle(job, cache, f"127.0.0.{c + 1}:9000")
            rframes = [bytes(f) for f in encode_result(result)]
            back = decode_result(rframes)
            jobs.append(hexframes(frames))
            results.append(hexframes(rframes))
            outcomes.append(ChunkResult(np.asarray(back.params, dtype=np.float32), back.n_samples, back.loss))
        plan.finish_round(outcomes)
        rounds.append({"jobs": jobs, "results": results, "averaged": plan.params.astype(np.float32).tobytes().hex(),
                       "metrics": plan.history[-1]})
    model = plan.model()
    return {"name": name, "n_chunks": n_chunks, "request": hexframes(request_frames), "rounds": rounds,
            "model": model.to_bytes().hex()}


def main() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((100, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    cases = [
        case("binary", x, y, {"hidden_layers": [6], "epochs": 4, "epochs_per_round": 2, "seed": 3}, 2),
        case("classes", x, (x[:, 0] > 0).astype(np.int64) + (x[:, 2] > 0.5).astype(np.int64),
             {"hidden_layers": [5], "epochs": 2, "epochs_per_round": 1, "seed": 4, "activation": "tanh"}, 3,
             classes=["low", "mid", "high"]),
        case("regression", x, (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float64),
             {"hidden_layers": [4], "epochs": 3, "epochs_per_round": 3, "seed": 1}, 2),
    ]
    (OUT / "interop.json").write_text(json.dumps({"cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main()
