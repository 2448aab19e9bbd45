"""Golden vectors for package go/training, from the Python encoder
(zmqnode/training/protocol.py).

Run from the repository root:  .venv/bin/python go/training/testdata/gen.py
It rewrites protocol.json deterministically; the Go tests decode every
message, check the fields, and re-encode it byte for byte.

- jobs / results: SUB_TRAIN and SUB_TRAIN_RESULT bodies as encode_job /
  encode_result write them (frames in hex) with their decoded fields.
- bad_jobs / bad_results: bodies decode_job / decode_result refuse, with the
  ProtocolError's code and message.
- endpoints: trainer.valid_endpoint's answers.
- train_requests: TRAIN requests a leader refuses, with the code and message
  the client gets: read_train_request's ProtocolError, or make_plan's
  BadInput (BAD_INPUT) once the data is prepared.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from zmqnode.ml.errors import BadInput  # noqa: E402
from zmqnode.ml.options import TrainOptions  # noqa: E402
from zmqnode.training.request import make_plan, read_train_request  # noqa: E402
from zmqnode.training.protocol import (  # noqa: E402
    Job,
    Result,
    decode_job,
    decode_result,
    encode_job,
    encode_result,
)
from zmqnode.training.trainer import valid_endpoint  # noqa: E402
from zmqnode.transport import wire  # noqa: E402
from zmqnode.transport.wire import ProtocolError  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent


def hexframes(frames) -> list[str]:
    return [bytes(f).hex() for f in frames]


def arr(a: np.ndarray | None):
    if a is None:
        return None
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.tobytes().hex()}


def jobs() -> list[dict]:
    rng = np.random.default_rng(7)
    opts = TrainOptions(hidden_layers=(4,), epochs=3, epochs_per_round=1, seed=5, task="binary")
    params = rng.standard_normal(17).astype(np.float32)
    x = rng.standard_normal((6, 2)).astype(np.float32)
    y = (rng.random((6, 1)) > 0.5).astype(np.float32)
    cases = [
        Job("req-1#0123456789ab", 0, 1, "tcp://127.0.0.1:13000", opts.to_dict(), params, x, y),
        Job("req-1#0123456789ab", 2, 0, "tcp://127.0.0.1:13000", opts.to_dict(), params, None, None),
        Job("ünï/#ab", 0, 0, "tcp://[::1]:9", {"learning_rate": 1e-05, "l2": 0.0005}, params, x, y),
        Job("j#1", 1, 3, "tcp://node-a.example:65535", {},
            np.arange(3, dtype=np.float64), x.astype(np.float64), np.arange(6, dtype=np.int64)),
        Job("j#2", 0, 0, "tcp://h:1", TrainOptions(learning_rate=1.0, l2=0.0, seed=2**62).to_dict(),
            params, None, None),
    ]
    out = []
    for job in cases:
        frames = encode_job(job)
        back = decode_job([bytes(f) for f in frames])
        out.append(
            {
                "frames": hexframes(frames),
                "job": back.job_id,
                "round": back.round_index,
                "chunk": back.chunk,
                "reply_to": back.reply_to,
                "options": back.options,
                "params": arr(back.params),
                "x": arr(back.x),
                "y": arr(back.y),
            }
        )
    return out


def results() -> list[dict]:
    params = np.linspace(-1, 1, 9, dtype=np.float32)
    cases = [
        Result("req-1#0123456789ab", 0, 1, "127.0.0.1:9001", 40, 0.6931471805599453, params),
        Result("req-1#0123456789ab", 3, 0, "127.0.0.1:9001", 7, 0.0, params),
        Result("j#1", 1, 2, "h:1", error="TrainingError('training diverged')"),
        Result("j#1", 1, 2, "h:1", missing_data=True),
        Result("ünï#x", 0, 0, "[::1]:9000", 1, 1e-07, params[:1]),
    ]
    out = []
    for result in cases:
        frames = encode_result(result)
        back = decode_result([bytes(f) for f in frames])
        out.append(
            {
                "frames": hexframes(frames),
                "job": back.job_id,
                "round": back.round_index,
                "chunk": back.chunk,
                "trainer": back.trainer,
                "n_samples": back.n_samples,
                "loss": back.loss,
                "error": back.error,
                "missing_data": back.missing_data,
                "params": arr(back.params),
            }
        )
    return out


def refused(decoder, headers: list[tuple[dict, list[bytes]]]) -> list[dict]:
    out = []
    for header, blobs in headers:
        frames = [bytes(f) for f in wire.encode(header, blobs)]
        try:
            decoder(frames)
        except ProtocolError as exc:
            out.append({"frames": hexframes(frames), "code": exc.code.value, "message": exc.message})
            continue
        raise AssertionError(f"accepted {header}")
    return out


def bad_jobs() -> list[dict]:
    p = np.zeros(2, dtype=np.float32)
    desc, blob = wire.array_to_frame(p, frame=0)
    base = {"type": "SUB_TRAIN", "id": "a/0/0", "job": "a", "round": 0, "chunk": 0,
            "reply_to": "tcp://h:1", "options": {}, "params": desc}
    cases = [
        ({**base, "type": "SUB_TRAIN_RESULT"}, [blob]),
        ({k: v for k, v in base.items() if k != "params"}, []),
        ({**base, "job": 3}, [blob]),
        ({**base, "round": -1}, [blob]),
        ({**base, "round": True}, [blob]),
        ({**base, "chunk": 1.0}, [blob]),
        ({**base, "reply_to": None}, [blob]),
        ({**base, "params": {**desc, "dtype": "float16"}}, [blob]),
        ({**base, "params": {**desc, "shape": [3]}}, [blob]),
    ]
    return refused(decode_job, cases)


def bad_results() -> list[dict]:
    p = np.zeros(2, dtype=np.float32)
    desc, blob = wire.array_to_frame(p, frame=0)
    base = {"type": "SUB_TRAIN_RESULT", "id": "a/0/0", "job": "a", "round": 0, "chunk": 0,
            "trainer": "h:1", "n_samples": 3, "loss": 0.5, "error": "", "missing_data": False,
            "params": desc}
    no_params = {k: v for k, v in base.items() if k != "params"}
    cases = [
        ({**base, "type": "SUB_TRAIN"}, [blob]),
        ({**base, "loss": "x"}, [blob]),
        (no_params, []),
        ({**base, "trainer": None}, [blob]),
        ({**base, "n_samples": -2}, [blob]),
        ({**base, "params": {**desc, "frame": 1}}, [blob]),
    ]
    return refused(decode_result, cases)


def endpoints() -> list[dict]:
    texts = [
        "tcp://127.0.0.1:9000", "tcp://localhost:1", "tcp://[::1]:65535", "tcp://h:0",
        "tcp://h:65536", "127.0.0.1:9000", "ipc:///tmp/x", "tcp://*:9000", "tcp://h:99999",
        "tcp://-h:1", "tcp://h.example.com:4000", "tcp://[fe80::1%eth0]:1", "tcp://h:1 ",
        "tcp://" + "a" * 253 + ":1", "tcp://" + "a" * 254 + ":1",
    ]
    return [{"text": t, "valid": valid_endpoint(t)} for t in texts]


def train_requests() -> list[dict]:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    codes = np.array([0, 1, 0, 1, 0, 1], dtype=np.int64)
    labels = np.array([0.5, 1, 0, 1, 0, 1], dtype=np.float32)

    def request(x=x, y=codes, **fields):
        xd, xb = wire.array_to_frame(x, frame=0)
        yd, yb = wire.array_to_frame(y, frame=1)
        return {"type": "TRAIN", "id": "t", "inputs": xd, "outputs": yd, **fields}, [xb, yb]

    cases = [
        request(classes="ab"),
        request(classes=["a", 1]),
        request(classes=["a"]),
        request(classes=["a", "a"]),
        request(y=labels, classes=["a", "b"]),
        request(y=codes.reshape(3, 2), classes=["a", "b"]),
        request(features=["a"]),
        request(features=["a", "a"]),
        request(features=["a", ""]),
        request(targets=["a", "b"]),
        request(classes=["a", "b", "c"], y=np.array([0, 1, 2, 3, 0, 1], dtype=np.int64)),
        request(classes=["a", "b"], options={"task": "regression"}),
        request(x=np.arange(6, dtype=np.float32)),
        request(x=np.arange(12, dtype=np.float32).reshape(6, 2, 1)),
        request(y=np.zeros((6, 1, 1), dtype=np.float32)),
        request(y=np.zeros(5, dtype=np.int64)),
    ]
    out = []
    for header, blobs in cases:
        frames = [bytes(f) for f in wire.encode(header, blobs)]
        h, b = wire.decode(frames)
        try:
            req = read_train_request(h, b, 1 << 20)
            make_plan(req, TrainOptions.from_dict(h.get("options") or {}), 1)
        except ProtocolError as exc:
            out.append({"frames": hexframes(frames), "code": exc.code.value, "message": exc.message})
            continue
        except BadInput as exc:
            out.append({"frames": hexframes(frames), "code": "BAD_INPUT", "message": str(exc)})
            continue
        raise AssertionError(f"accepted {header}")
    return out


def main() -> None:
    doc = {
        "jobs": jobs(),
        "results": results(),
        "bad_jobs": bad_jobs(),
        "bad_results": bad_results(),
        "endpoints": endpoints(),
        "train_requests": train_requests(),
    }
    (OUT / "protocol.json").write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
