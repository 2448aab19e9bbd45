"""A TRAIN request's data, checked (docs/PROTOCOL.md §5.1).

Besides the ``inputs`` and ``outputs`` arrays a TRAIN may carry ``classes``
(the class names: ``outputs`` then holds each row's index into them, so
names of any length travel as one int64 per row) and the column names
``features`` and ``targets``, which the model file keeps (docs/FORMAT.md §3).

``read_train_request`` runs on the event loop and does only the cheap
checks; ``make_plan`` runs on the preparation thread, where the per-row work
(class codes in range, the plan itself) cannot stall heartbeats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ml.errors import BadInput, ModelFormatError
from ..ml.model_file import Model, check_column_names
from ..ml.problem import MAX_CLASSES
from ..ml.training import TrainingPlan, TrainOptions
from ..transport import wire
from ..transport.wire import ErrorCode, ProtocolError


@dataclass(frozen=True, eq=False)
class TrainRequest:
    """The arrays and names of one TRAIN request."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...] | None
    features: tuple[str, ...]
    targets: tuple[str, ...]


def read_train_request(header: dict[str, Any], blobs: list[Any], limit: int) -> TrainRequest:
    """The request's arrays and names; ProtocolError for what is missing,
    mistyped (BAD_REQUEST) or of the wrong length (BAD_SHAPE)."""
    x = wire.read_array(header, blobs, "inputs", max_bytes=limit)
    y = wire.read_array(header, blobs, "outputs", max_bytes=limit)
    class_names = _names(header, "classes")
    if class_names is not None:
        if not 2 <= len(class_names) <= MAX_CLASSES:
            raise ProtocolError(
                ErrorCode.BAD_INPUT,
                f"'classes' names {len(class_names)} classes; a classifier needs 2 to "
                f"{MAX_CLASSES}",
                header=header,
            )
        if y.dtype.kind not in "iu" or not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
            raise ProtocolError(
                ErrorCode.BAD_SHAPE,
                "with 'classes', 'outputs' must be integer indices into them, one per row "
                f"(int64 [rows]); got {y.dtype} {list(y.shape)}",
                header=header,
            )
    features = _names(header, "features") or ()
    targets = _names(header, "targets") or ()
    columns = x.shape[1] if x.ndim == 2 else 1
    target_columns = y.shape[1] if y.ndim == 2 else 1
    try:
        check_column_names("features", features, columns)
        check_column_names("targets", targets, target_columns)
    except ModelFormatError as exc:
        raise ProtocolError(ErrorCode.BAD_SHAPE, str(exc), header=header) from None
    return TrainRequest(x, y, class_names, features, targets)


def _names(header: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = header.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"'{key}' must be a list of strings", header=header
        )
    if key == "classes" and len(set(value)) != len(value):
        raise ProtocolError(ErrorCode.BAD_INPUT, "'classes' must be distinct names", header=header)
    return tuple(value)


def make_plan(request: TrainRequest, options: TrainOptions, n_chunks: int) -> TrainingPlan:
    """Validate, normalize and split (slow for large data: off the event loop).

    Class names replace their indices before the plan is made, so the model's
    ``classes`` are the names, sorted, like any other labels.
    """
    y = request.y
    if request.class_names is not None:
        codes = y.reshape(-1)
        k = len(request.class_names)
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= k):
            bad = int(np.flatnonzero((codes < 0) | (codes >= k))[0])
            raise BadInput(
                f"outputs row {bad}: class index {int(codes[bad])} is outside the "
                f"{k} names in 'classes'"
            )
        if options.task == "regression":
            raise BadInput("class names cannot be regression targets; drop task 'regression'")
        y = np.asarray(request.class_names)[codes]
    return TrainingPlan(request.x, y, options, n_chunks=n_chunks)


@dataclass(frozen=True)
class ColumnNames:
    """The column names a trained model keeps (not the data: that is freed)."""

    features: tuple[str, ...]
    targets: tuple[str, ...]

    @classmethod
    def of(cls, request: TrainRequest) -> ColumnNames:
        return cls(request.features, request.targets)

    def name(self, model: Model) -> Model:
        """``model`` with these names."""
        if not self.features and not self.targets:
            return model
        return dataclasses.replace(model, features=self.features, targets=self.targets)
