"""Micro-batched predictions: one numpy forward pass per model per loop turn.

The event loop drains up to a batch of requests from the client socket, then
flushes: every PREDICT for the same model that arrived in that drain (or
whose catch-up finished in that turn) is answered from one ``predict`` call
on the stacked rows. Nothing waits on a timer: under light load a batch is
one request and adds no latency; under heavy load batches grow by
themselves, and the per-call overhead (Python, numpy dispatch, BLAS set-up)
is paid once per batch instead of once per request — the way Triton and Ray
Serve's dynamic batching win, without their queue delay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .ml.errors import BadInput
from .transport import wire

log = logging.getLogger("zmqnode.serving")

if TYPE_CHECKING:
    from .ml.model_file import Model
    from .node import _Replier


@dataclass
class _Batch:
    model: Model
    rows: list[np.ndarray] = field(default_factory=list)
    waiting: list[tuple[dict[str, Any], _Replier]] = field(default_factory=list)


class PredictionBatcher:
    def __init__(self, node_id: str, on_batch: Callable[[int], None] = lambda n: None) -> None:
        self.node_id = node_id
        self._batches: dict[str, _Batch] = {}
        self._on_batch = on_batch  # told the requests of each forward pass (metrics)

    def add(
        self, model_id: str, model: Model, rows: np.ndarray, header: dict[str, Any], reply: _Replier
    ) -> None:
        batch = self._batches.get(model_id)
        if batch is None:
            batch = self._batches[model_id] = _Batch(model)
        batch.rows.append(rows)
        batch.waiting.append((header, reply))

    def flush(self) -> None:
        if not self._batches:
            return
        batches, self._batches = self._batches, {}
        for model_id, batch in batches.items():
            stacked = batch.rows[0] if len(batch.rows) == 1 else np.concatenate(batch.rows)
            try:
                outputs = _wire_outputs(batch.model.predict(stacked))
            except Exception:
                # One bad request (say a value that overflows float32) must not
                # fail the others: answer them one by one.
                for (header, reply), rows in zip(batch.waiting, batch.rows, strict=True):
                    self._answer_one(model_id, batch.model, rows, header, reply)
                continue
            self._on_batch(len(batch.rows))
            start = 0
            for (header, reply), rows in zip(batch.waiting, batch.rows, strict=True):
                end = start + rows.shape[0]
                desc, blob = wire.array_to_frame(outputs[start:end])
                reply.ok(header, [blob], outputs=desc, model_id=model_id, node=self.node_id)
                start = end

    def _answer_one(
        self, model_id: str, model: Model, rows: np.ndarray, header: dict[str, Any], reply: _Replier
    ) -> None:
        try:
            outputs = _wire_outputs(model.predict(rows))
        except BadInput as exc:
            reply.error(header, wire.ErrorCode.BAD_INPUT, f"model {model_id}: {exc}")
            return
        except Exception as exc:
            log.exception("prediction with model %s failed", model_id)
            reply.error(
                header, wire.ErrorCode.INTERNAL, f"node {self.node_id}: prediction failed: {exc!r}"
            )
            return
        desc, blob = wire.array_to_frame(outputs)
        reply.ok(header, [blob], outputs=desc, model_id=model_id, node=self.node_id)


def _wire_outputs(outputs: Any) -> np.ndarray:
    """Outputs in a dtype the wire carries (labels may be bool or wider ints)."""
    arr = np.asarray(outputs)
    if arr.dtype.name in wire.ALLOWED_DTYPES:
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    raise BadInput(f"model outputs of type {arr.dtype} cannot be sent; labels must be numbers")
