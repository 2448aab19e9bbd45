"""SUB_TRAIN jobs and their results on the PUSH/PULL training path.

A job (leader -> trainer, PUSH to the trainer's PULL at P+3000)::

    header {v, type: "SUB_TRAIN", id, job, round, chunk, reply_to, options,
            params, x?, y?}          descriptors of the array frames below
    frames  params (float32, flat) [, x chunk, y chunk]

``x``/``y`` are sent with the first job of a chunk to a trainer only; the
trainer caches them by (job, chunk). A trainer that lacks them (it restarted)
answers ``missing_data`` and the leader sends them again.

A result (trainer -> leader, PUSH to the leader's PULL at P+4000)::

    header {v, type: "SUB_TRAIN_RESULT", id, job, round, chunk, trainer,
            n_samples, loss, error?, missing_data?, params?}
    frames  params (float32, flat) when the chunk trained
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..transport import wire
from ..transport.wire import ErrorCode, ProtocolError

SUB_TRAIN_TYPE = "SUB_TRAIN"
RESULT_TYPE = "SUB_TRAIN_RESULT"
MAX_TRAINING_ARRAY_BYTES = 4 << 30


@dataclass(frozen=True)
class Job:
    job_id: str
    round_index: int
    chunk: int
    reply_to: str
    options: dict[str, Any]
    params: np.ndarray
    x: np.ndarray | None
    y: np.ndarray | None


@dataclass(frozen=True)
class Result:
    job_id: str
    round_index: int
    chunk: int
    trainer: str
    n_samples: int = 0
    loss: float = 0.0
    params: np.ndarray | None = None
    error: str = ""
    missing_data: bool = False


def encode_job(job: Job) -> list[wire.Frame]:
    header: dict[str, Any] = {
        "type": SUB_TRAIN_TYPE,
        "id": f"{job.job_id}/{job.round_index}/{job.chunk}",
        "job": job.job_id,
        "round": job.round_index,
        "chunk": job.chunk,
        "reply_to": job.reply_to,
        "options": job.options,
    }
    blobs: list[wire.Frame] = []
    for key, array in (("params", job.params), ("x", job.x), ("y", job.y)):
        if array is not None:
            # Chunks are never modified once made: send them without a copy.
            desc, blob = wire.array_to_frame(array, frame=len(blobs), copy=False)
            header[key] = desc
            blobs.append(blob)
    return wire.encode(header, blobs)


def decode_job(frames: list[bytes]) -> Job:
    header, blobs = wire.decode(frames)
    if header["type"] != SUB_TRAIN_TYPE:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"expected {SUB_TRAIN_TYPE}, got {header['type']!r}"
        )
    arrays = {
        key: wire.read_array(header, blobs, key, max_bytes=MAX_TRAINING_ARRAY_BYTES)
        if key in header
        else None
        for key in ("params", "x", "y")
    }
    if arrays["params"] is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "SUB_TRAIN without params")
    options = header.get("options")
    return Job(
        job_id=_str(header, "job"),
        round_index=_int(header, "round"),
        chunk=_int(header, "chunk"),
        reply_to=_str(header, "reply_to"),
        options=options if isinstance(options, dict) else {},
        params=arrays["params"],
        x=arrays["x"],
        y=arrays["y"],
    )


def encode_result(result: Result) -> list[bytes]:
    header: dict[str, Any] = {
        "type": RESULT_TYPE,
        "id": f"{result.job_id}/{result.round_index}/{result.chunk}",
        "job": result.job_id,
        "round": result.round_index,
        "chunk": result.chunk,
        "trainer": result.trainer,
        "n_samples": result.n_samples,
        "loss": result.loss,
        "error": result.error,
        "missing_data": result.missing_data,
    }
    blobs: list[bytes] = []
    if result.params is not None:
        desc, blob = wire.array_to_frame(result.params, frame=0)
        header["params"] = desc
        blobs.append(blob)
    return wire.encode(header, blobs)


def decode_result(frames: list[bytes]) -> Result:
    header, blobs = wire.decode(frames)
    if header["type"] != RESULT_TYPE:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"expected {RESULT_TYPE}, got {header['type']!r}"
        )
    params = (
        wire.read_array(header, blobs, "params", max_bytes=MAX_TRAINING_ARRAY_BYTES)
        if "params" in header
        else None
    )
    loss = header.get("loss", 0.0)
    if not isinstance(loss, (int, float)):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "'loss' must be a number")
    error = header.get("error") or ""
    if params is None and not error and not header.get("missing_data"):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "a result needs params, an error or missing_data"
        )
    return Result(
        job_id=_str(header, "job"),
        round_index=_int(header, "round"),
        chunk=_int(header, "chunk"),
        trainer=_str(header, "trainer"),
        n_samples=_int(header, "n_samples"),
        loss=float(loss),
        params=params,
        error=str(error),
        missing_data=bool(header.get("missing_data")),
    )


def _str(header: dict[str, Any], key: str) -> str:
    value = header.get(key)
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {key!r} must be a string")
    return value


def _int(header: dict[str, Any], key: str) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {key!r} must be a non-negative integer")
    return value
