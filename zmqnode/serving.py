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
from .replies import Replier
from .transport import wire
from .transport.wire import ProtocolError

log = logging.getLogger("zmqnode.serving")

if TYPE_CHECKING:
    from .ml.model_file import Model


@dataclass
class _Batch:
    model: Model
    rows: list[np.ndarray] = field(default_factory=list)
    waiting: list[tuple[dict[str, Any], Replier]] = field(default_factory=list)


# Rows in one forward pass (a 64-wide hidden layer of these is 16 MiB) and
# rows run in one loop turn before the loop goes back to its sockets.
MAX_PASS_ROWS = 65_536
MAX_TURN_ROWS = 262_144
# Input bytes waiting for a forward pass. A turn drains up to 256 requests
# but runs at most MAX_TURN_ROWS rows, so large requests arriving faster than
# they are computed would queue here without end: past this, BUSY. One
# request is always taken when nothing waits (--max-request-bytes bounds it).
MAX_QUEUED_BYTES = 256 << 20


class PredictionBatcher:
    """PREDICT requests waiting for their model's next forward pass.

    ``add`` queues a request's rows (BUSY past ``MAX_QUEUED_BYTES``); the
    loop calls ``flush`` once a turn, which answers every queued request
    through its ``Replier``.
    """

    def __init__(self, node_id: str, on_batch: Callable[[int], None] = lambda n: None) -> None:
        self.node_id = node_id
        self._batches: dict[str, _Batch] = {}
        self.queued_bytes = 0
        self._on_batch = on_batch  # told the requests of each forward pass (metrics)

    def add(
        self, model_id: str, model: Model, rows: np.ndarray, header: dict[str, Any], reply: Replier
    ) -> None:
        if self.queued_bytes and self.queued_bytes + rows.nbytes > MAX_QUEUED_BYTES:
            raise ProtocolError(
                wire.ErrorCode.BUSY,
                f"node {self.node_id} has {self.queued_bytes} bytes of predictions queued; "
                "retry later",
                header=header,
            )
        self.queued_bytes += rows.nbytes
        batch = self._batches.get(model_id)
        if batch is None:
            batch = self._batches[model_id] = _Batch(model)
        batch.rows.append(rows)
        batch.waiting.append((header, reply))

    def flush(self) -> None:
        """Run the waiting batches: one forward pass per model, at most
        ``MAX_PASS_ROWS`` rows each (bounds memory), and at most
        ``MAX_TURN_ROWS`` rows per call: the rest waits for the next loop turn,
        so a flood of large requests cannot stall the Raft loop."""
        if not self._batches:
            return
        budget = MAX_TURN_ROWS
        batches, self._batches = self._batches, {}
        try:
            for model_id, batch in batches.items():
                while batch.rows and budget > 0:
                    take, rows_in = 0, 0
                    while take < len(batch.rows) and (
                        take == 0 or rows_in + batch.rows[take].shape[0] <= MAX_PASS_ROWS
                    ):
                        rows_in += batch.rows[take].shape[0]
                        take += 1
                    self._run(model_id, batch.model, batch.rows[:take], batch.waiting[:take])
                    del batch.rows[:take], batch.waiting[:take]
                    budget -= rows_in
                if batch.rows:  # over this turn's budget: first in line next turn
                    self._batches[model_id] = batch
        finally:
            # What is still queued (recounted, so a failed pass cannot skew it).
            self.queued_bytes = sum(
                rows.nbytes for batch in self._batches.values() for rows in batch.rows
            )

    def _run(self, model_id, model, rows_list, waiting) -> None:
        stacked = rows_list[0] if len(rows_list) == 1 else np.concatenate(rows_list)
        want_proba = any(header.get("proba") for header, _ in waiting)
        try:
            outputs, proba = _compute(model, stacked, want_proba)
        except Exception:
            # One bad request (NaN, a value that overflows float32...) must not
            # fail the others: answer them one by one.
            for (header, reply), rows in zip(waiting, rows_list, strict=True):
                self._answer_one(model_id, model, rows, header, reply)
            return
        self._on_batch(len(rows_list))
        answers = _Answers(self.node_id, model_id, model, outputs, proba)
        start = 0
        for (header, reply), rows in zip(waiting, rows_list, strict=True):
            end = start + rows.shape[0]
            answers.send(header, reply, start, end)
            start = end

    def _answer_one(
        self, model_id: str, model: Model, rows: np.ndarray, header: dict[str, Any], reply: Replier
    ) -> None:
        try:
            outputs, proba = _compute(model, rows, bool(header.get("proba")))
        except BadInput as exc:
            reply.error(header, wire.ErrorCode.BAD_INPUT, f"model {model_id}: {exc}")
            return
        except Exception as exc:
            log.exception("prediction with model %s failed", model_id)
            reply.error(
                header, wire.ErrorCode.INTERNAL, f"node {self.node_id}: prediction failed: {exc!r}"
            )
            return
        _Answers(self.node_id, model_id, model, outputs, proba).send(
            header, reply, 0, rows.shape[0]
        )


class _Answers:
    """One forward pass's answers, a slice per request (docs/PROTOCOL.md
    §5.3). What every reply shares (dtype names, the class list) is computed
    once a pass: with 1-row requests it would cost more than the slicing."""

    __slots__ = ("outputs", "proba", "fields", "out_dtype", "out_tail", "proba_tail")

    def __init__(
        self,
        node_id: str,
        model_id: str,
        model: Model,
        outputs: np.ndarray,
        proba: np.ndarray | None,
    ) -> None:
        self.outputs, self.proba = outputs, proba
        self.fields: dict[str, Any] = {"model_id": model_id, "node": node_id}
        if model.classes:
            self.fields["classes"] = list(model.classes)
        self.out_dtype = outputs.dtype.name
        self.out_tail = [int(n) for n in outputs.shape[1:]]
        self.proba_tail = [] if proba is None else [int(n) for n in proba.shape[1:]]

    def send(self, header: dict[str, Any], reply: Replier, start: int, end: int) -> None:
        rows = end - start
        fields = dict(self.fields)
        fields["outputs"] = {"dtype": self.out_dtype, "shape": [rows, *self.out_tail], "frame": 0}
        blobs = [self.outputs[start:end].tobytes()]
        if self.proba is not None and header.get("proba"):
            shape = [rows, *self.proba_tail]
            fields["probabilities"] = {"dtype": "float32", "shape": shape, "frame": 1}
            blobs.append(self.proba[start:end].tobytes())
        reply.ok(header, blobs, **fields)


def _compute(model: Model, rows: np.ndarray, proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Regression: float32 values ([rows] for one target column, else
    [rows, columns]). Classification: each row's index into ``model.classes``
    (int64) and, if asked, the probabilities."""
    if not model.classes:
        return np.asarray(model.predict(rows), dtype=np.float32), None
    index, probabilities = model.classify(rows, proba)
    return index, (None if probabilities is None else probabilities.astype(np.float32))
