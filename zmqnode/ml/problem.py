"""From the client's raw arrays to a training problem, and from a problem to chunks.

``prepare`` is the one place that validates training data, decides the task,
standardizes inputs (and regression targets), encodes labels, holds out the
validation rows and draws the initial parameters. ``split_chunks`` deals the
training rows to trainers. Both are deterministic functions of the data and
``options.seed``.

Memory: a problem keeps the client's rows as they arrived (float32, read-only,
not copied) and standardizes rows only when it copies them into a chunk or the
validation set; checks and statistics run over blocks of rows. So preparing
a dataset costs about one extra copy of it, and once the chunks exist the
original can be dropped (``TrainingPlan`` does).

Encoded targets (what ``Chunk.y`` holds and trainers receive) are a float32
matrix whose width is the network's output width: a 0/1 column for binary,
one-hot rows for multiclass, standardized values for regression. So a trainer
can rebuild the architecture from ``x.shape[1]``, the options and ``y.shape[1]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import BadInput, BadOptions
from .mlp import Architecture, init_params
from .options import TrainOptions

# Integer labels with at most this many distinct values are read as classes
# when the client does not say which task it wants. Above it (or with
# fractional values) the labels are regression targets.
MAX_INFERRED_CLASSES = 32
# A classifier with more outputs than this is almost surely a mistaken task.
MAX_CLASSES = 1024
# Fewer held-out rows than this make a validation loss too noisy to stop on;
# then every row trains and the last round's parameters are kept.
MIN_VALIDATION_ROWS = 10

# Independent random streams, all derived from options.seed.
STREAM_INIT = 0
STREAM_TRAIN = 1
STREAM_SPLIT = 2

# Values per block for checks and statistics over large inputs: bounds the
# temporaries (a float64 block is 8 MiB) whatever the width of a row.
BLOCK_VALUES = 1 << 20


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A generator for one purpose (stream) and position (round, chunk...)."""
    return np.random.default_rng([seed, stream, *keys])


@dataclass(frozen=True, eq=False)
class Problem:
    """Validated, encoded training data plus everything needed to start training."""

    task: str
    arch: Architecture
    options: TrainOptions  # with ``task`` resolved
    classes: tuple[Any, ...]  # original label values, sorted; () for regression
    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray | None  # regression only
    output_std: np.ndarray | None
    rows: np.ndarray | None  # every input row, float32, NOT standardized; None once released
    train_rows: np.ndarray  # indices (into ``rows``) of the training rows, in order
    y: np.ndarray  # training targets, encoded, float32 (n_train, outputs)
    x_val: np.ndarray  # validation rows, standardized (possibly zero of them)
    y_val: np.ndarray
    initial_params: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.train_rows.shape[0])

    @property
    def n_rows(self) -> int:
        return self.n_train + self.x_val.shape[0]

    @property
    def x(self) -> np.ndarray:
        """The training rows, standardized (a new array on every call)."""
        return self.standardized(self.train_rows)

    def standardized(self, indices: np.ndarray) -> np.ndarray:
        """Standardized copies of ``rows[indices]``: one allocation, no temporaries."""
        if self.rows is None:
            raise RuntimeError("the input rows were released after splitting into chunks")
        return standardize_rows(self.rows, indices, self.input_mean, self.input_std)

    def without_rows(self) -> Problem:
        """This problem without its reference to the client's rows (to free them)."""
        return dataclasses.replace(self, rows=None)


@dataclass(frozen=True, eq=False)
class Chunk:
    """The rows one trainer trains on in every round."""

    index: int
    x: np.ndarray
    y: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])


def _labels_1d(y: np.ndarray) -> np.ndarray | None:
    if y.ndim == 1:
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    return None


def infer_task(y: np.ndarray) -> str:
    """``binary``/``multiclass`` for integer labels with few values, else ``regression``.

    Several output columns always mean regression. Non-numeric labels (strings)
    are classes. Integer labels with more than ``MAX_INFERRED_CLASSES`` values,
    fractional or non-finite values, or a single value mean regression; pass
    ``task`` explicitly to override.
    """
    y = np.asarray(y)
    labels = _labels_1d(y)
    if labels is None:
        return "regression"
    if labels.dtype.kind == "U":
        return "binary" if len(np.unique(labels)) == 2 else "multiclass"
    if labels.dtype.kind not in "biuf" or labels.size == 0:
        return "regression"
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels)):
            return "regression"
    n_classes = len(np.unique(labels))
    if n_classes == 2:
        return "binary"
    if 3 <= n_classes <= MAX_INFERRED_CLASSES:
        return "multiclass"
    return "regression"


def _first_bad(a: np.ndarray, row_offset: int = 0) -> str:
    where = np.argwhere(~np.isfinite(a))[0]
    where[0] += row_offset
    return ", ".join(f"{name} {i}" for name, i in zip(("row", "column"), where, strict=False))


def _blocks(a: np.ndarray):
    """(first row, block) over the rows of ``a``, ~``BLOCK_VALUES`` values a block (views)."""
    rows = max(1, BLOCK_VALUES // max(1, a[0].size if a.shape[0] else 1))
    for start in range(0, a.shape[0], rows):
        yield start, a[start : start + rows]


def _check_x(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise BadInput(f"inputs must be numbers, got an array of {x.dtype}")
    if x.ndim != 2:
        raise BadInput(f"inputs must be a 2-D array (rows x columns), got shape {x.shape}")
    if x.shape[0] == 0:
        raise BadInput("inputs have no rows; training needs at least one")
    if x.shape[1] == 0:
        raise BadInput("inputs have no columns")
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32, copy=False)  # float32 from the wire: no copy
    for start, block in _blocks(x32):
        if not np.isfinite(block).all():
            raise BadInput(
                f"inputs contain NaN or infinite values (or values beyond float32), first at "
                f"{_first_bad(block, start)}"
            )
    return x32


def _standardization(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std (float64 sums, block by block, two passes); a constant
    column gets std 1 so it maps to 0, not NaN."""
    n = a.shape[0]
    total = np.zeros(a.shape[1], np.float64)
    for _, block in _blocks(a):
        total += block.sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros(a.shape[1], np.float64)
    for _, block in _blocks(a):
        d = block.astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", d, d)
    std = np.sqrt(squares / n)
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def standardize(a: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The one standardization used in training and in prediction (float32)."""
    return (a - mean) / std


def standardize_rows(
    a: np.ndarray, indices: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """``standardize(a[indices])`` with the same float32 results, computed in place.

    Block by block: numpy holds the GIL while it gathers rows, and a node
    prepares data on a thread beside its Raft loop, which must keep ticking.
    """
    out = np.empty((len(indices), *a.shape[1:]), dtype=a.dtype)
    for start, block in _blocks(out):
        np.take(a, indices[start : start + len(block)], axis=0, out=block)
        block -= mean
        block /= std
    return out


def _encode_classes(labels: np.ndarray, task: str) -> tuple[str, tuple[Any, ...], np.ndarray]:
    """(resolved task, sorted class values, encoded targets); ``classification`` picks by count."""
    if labels.dtype.kind in "f" and not np.isfinite(labels).all():
        raise BadInput(f"outputs contain NaN or infinite values, first at {_first_bad(labels)}")
    if labels.dtype.kind not in "biufU":
        raise BadInput(f"class labels must be numbers or strings, got an array of {labels.dtype}")
    classes, index = np.unique(labels, return_inverse=True)
    k = len(classes)
    if k < 2:
        raise BadInput(
            f"every label is {classes[0].item()!r}: a classifier needs at least 2 classes "
            f"(use task 'regression' to fit a constant)"
        )
    if task == "binary" and k != 2:
        raise BadInput(f"task 'binary' needs exactly 2 classes, the labels have {k}")
    if task == "classification":
        task = "binary" if k == 2 else "multiclass"
    if k > MAX_CLASSES:
        raise BadInput(f"the labels have {k} classes; at most {MAX_CLASSES} are supported")
    if task == "binary":
        encoded = index.astype(np.float32).reshape(-1, 1)
    else:
        encoded = np.zeros((labels.shape[0], k), np.float32)
        encoded[np.arange(labels.shape[0]), index] = 1.0
    return task, tuple(classes.tolist()), encoded


def _validation_rows(
    n: int, class_index: np.ndarray | None, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Row indices to hold out: ``fraction`` of every class (floor), shuffled by ``rng``."""
    if fraction <= 0:
        return np.zeros(0, np.int64)
    groups = (
        [np.arange(n)]
        if class_index is None
        else [np.flatnonzero(class_index == c) for c in range(int(class_index.max()) + 1)]
    )
    held = [rng.permutation(g)[: int(fraction * len(g))] for g in groups]
    rows = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    return rows if len(rows) >= MIN_VALIDATION_ROWS else np.zeros(0, np.int64)


def prepare(x: Any, y: Any, options: TrainOptions | None = None) -> Problem:
    """Validate and encode (x, y) for training; raises BadInput with a readable reason.

    The problem's task (and ``problem.options.task``) is always resolved to
    ``binary``, ``multiclass`` or ``regression``; an override of
    ``classification`` picks binary or multiclass by the number of classes.
    """
    options = options or TrainOptions()
    x = _check_x(x)
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise BadInput(f"outputs must be 1-D (one label per row) or 2-D, got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise BadInput(f"inputs have {x.shape[0]} rows but outputs have {y.shape[0]}")
    if y.ndim == 2 and y.shape[1] == 0:
        raise BadInput("outputs have no columns")
    task = options.task or infer_task(y)
    output_mean = output_std = None
    class_index = None
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise BadInput(f"regression targets must be numbers, got an array of {y.dtype}")
        with np.errstate(over="ignore"):
            y32 = y.astype(np.float32).reshape(y.shape[0], -1)
        if not np.isfinite(y32).all():
            raise BadInput(f"outputs contain NaN or infinite values, first at {_first_bad(y32)}")
        classes: tuple[Any, ...] = ()
        output_mean, output_std = _standardization(y32)
        encoded = standardize(y32, output_mean, output_std)
    else:
        labels = _labels_1d(y)
        if labels is None:
            raise BadInput(
                f"task {task!r} needs one label per row, but outputs have {y.shape[1]} columns"
            )
        task, classes, encoded = _encode_classes(labels, task)
        class_index = encoded[:, 0].astype(np.int64) if task == "binary" else encoded.argmax(1)

    input_mean, input_std = _standardization(x)
    val = _validation_rows(
        x.shape[0], class_index, options.validation_fraction, rng_for(options.seed, STREAM_SPLIT, 0)
    )
    train = np.setdiff1d(np.arange(x.shape[0]), val, assume_unique=True)

    arch = Architecture.for_task(
        x.shape[1], options.hidden_layers, encoded.shape[1], options.activation, task
    )
    return Problem(
        task=task,
        arch=arch,
        options=dataclasses.replace(options, task=task),
        classes=classes,
        input_mean=input_mean,
        input_std=input_std,
        output_mean=output_mean,
        output_std=output_std,
        rows=x,
        train_rows=train,
        y=encoded[train],
        x_val=standardize_rows(x, val, input_mean, input_std),
        y_val=encoded[val],
        initial_params=init_params(arch, rng_for(options.seed, STREAM_INIT)),
    )


def split_chunks(problem: Problem, n: int) -> list[Chunk]:
    """Deal the training rows into ``min(n, rows)`` chunks, never an empty one.

    Classification is stratified: rows are grouped by class (shuffled within
    it) and dealt round-robin, so every class is spread over the chunks as
    evenly as possible (per-chunk counts differ by at most one) and chunk
    sizes differ by at most one. Regression rows are shuffled and dealt.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise BadOptions(f"the number of chunks must be a positive integer, got {n!r}")
    rows = problem.n_train
    n = min(n, rows)
    rng = rng_for(problem.options.seed, STREAM_SPLIT, 1)
    if problem.task == "regression":
        order = rng.permutation(rows)
    else:
        cls = problem.y[:, 0].astype(np.int64) if problem.task == "binary" else problem.y.argmax(1)
        order = np.concatenate(
            [rng.permutation(np.flatnonzero(cls == c)) for c in range(len(problem.classes))]
        )
    return [
        Chunk(i, problem.standardized(problem.train_rows[order[i::n]]), problem.y[order[i::n]])
        for i in range(n)
    ]
