"""Training as rounds of model averaging (FedAvg), runnable locally or by remote trainers.

One algorithm, two drivers. ``TrainingPlan`` holds the state between rounds
(current parameters, metrics, early stopping) and never trains itself:

    plan = TrainingPlan(x, y, options, n_chunks=len(trainers))
    while not plan.done:
        results = [train_chunk(j.params, plan.chunks[j.chunk_index], plan.options,
                               j.round_index, j.epochs) for j in plan.jobs()]
        plan.finish_round(results)            # average, validate, maybe stop
    model = plan.model()

``train`` is exactly that loop. The node runs the same loop with each
``train_chunk`` done by a trainer process (``distributed.run_chunk``), so a
distributed run gives the same model bytes as ``train`` with the same
``n_trainers``, as long as the trainers compute float32 the same way.

Per round, each chunk runs ``options.epochs_in_round(r)`` local epochs of
minibatch Adam starting from the averaged parameters, with a FRESH Adam
state (moments are not shipped: that would triple what travels each round)
and a learning rate that decays linearly over the rounds
(``options.learning_rate_in_round(r)``), which tames the restarts.
The shuffling seed is derived from (options.seed, round, chunk), so a chunk
retrained on another trainer after a timeout gives the same result.

The plan's ``finish_round`` runs on the node's event loop: it only averages
and, when there is a validation set, does one forward pass over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .errors import BadInput, BadOptions, ModelFormatError, TrainingError
from .mlp import Architecture, evaluate, fit, params_from_bytes, params_to_bytes
from .model_file import Model
from .options import TrainOptions
from .problem import STREAM_TRAIN, Chunk, Problem, infer_task, prepare, rng_for, split_chunks

__all__ = [
    "BadInput",
    "BadOptions",
    "ChunkResult",
    "Chunk",
    "ModelFormatError",
    "Problem",
    "RoundJob",
    "TrainOptions",
    "TrainingError",
    "TrainingPlan",
    "average",
    "infer_task",
    "params_from_bytes",
    "params_to_bytes",
    "prepare",
    "split_chunks",
    "train",
    "train_chunk",
]

# A validation loss must drop by more than this to count as an improvement
# (scikit-learn's ``tol`` default).
IMPROVEMENT_TOLERANCE = 1e-4


class ChunkResult(NamedTuple):
    """What a trainer returns for one chunk and round. A tuple, so it unpacks too."""

    params: np.ndarray  # flat float32
    n_samples: int
    loss: float  # mean data loss over the chunk's last local epoch


@dataclass(frozen=True, eq=False)
class RoundJob:
    """One SUB_TRAIN job: train chunk ``chunk_index`` from ``params`` for ``epochs`` epochs."""

    round_index: int
    chunk_index: int
    epochs: int
    params: np.ndarray


def chunk_architecture(chunk: Chunk, options: TrainOptions) -> Architecture:
    """The network a chunk trains, rebuilt from its shapes and the (resolved) options."""
    if options.task is None:
        raise BadOptions("a chunk is trained with resolved options: task must not be null")
    if chunk.x.ndim != 2 or chunk.y.ndim != 2 or chunk.x.shape[0] != chunk.y.shape[0]:
        raise BadInput(
            f"a chunk needs 2-D x and y with the same rows, got {chunk.x.shape} and {chunk.y.shape}"
        )
    outputs = chunk.y.shape[1]
    if (options.task == "binary") != (outputs == 1) and options.task != "regression":
        raise BadInput(f"task {options.task!r} does not fit targets with {outputs} column(s)")
    return Architecture.for_task(
        chunk.x.shape[1], options.hidden_layers, outputs, options.activation, options.task
    )


def train_chunk(
    params: np.ndarray,
    chunk: Chunk,
    options: TrainOptions,
    round_index: int,
    epochs: int | None = None,
) -> ChunkResult:
    """The SUB_TRAIN work: local epochs of minibatch Adam on one chunk from ``params``.

    ``epochs`` defaults to the options' schedule for ``round_index``.
    Deterministic in its arguments. Raises TrainingError if training diverges.
    """
    arch = chunk_architecture(chunk, options)
    if epochs is None:
        epochs = options.epochs_in_round(round_index)
    params = np.asarray(params, dtype=np.float32)
    if params.ndim != 1 or params.size != arch.n_params:
        raise BadInput(
            f"parameters have {params.size} values; a {arch.describe()} network needs "
            f"{arch.n_params}"
        )
    new, loss = fit(
        arch,
        params,
        chunk.x,
        chunk.y,
        epochs=epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate_in_round(round_index),
        l2=options.l2,
        rng=rng_for(options.seed, STREAM_TRAIN, round_index, chunk.index),
    )
    if not (np.isfinite(loss) and np.isfinite(new).all()):
        raise TrainingError(
            f"training diverged on chunk {chunk.index} in round {round_index} (loss {loss}); "
            "try a smaller learning_rate"
        )
    return ChunkResult(new, chunk.n_samples, loss)


def average(results: Sequence[ChunkResult]) -> np.ndarray:
    """FedAvg: the parameters averaged with weights proportional to each chunk's rows."""
    results = [r for r in results if r.n_samples > 0]
    if not results:
        raise TrainingError("no chunk trained on any rows; nothing to average")
    size = np.asarray(results[0].params).size
    total = 0
    acc = np.zeros(size, np.float64)
    for r in results:
        p = np.asarray(r.params, dtype=np.float64)
        if p.ndim != 1 or p.size != size:
            raise TrainingError(
                f"chunk results disagree on the parameter count ({p.size} vs {size})"
            )
        acc += r.n_samples * p
        total += r.n_samples
    return (acc / total).astype(np.float32)


def _round6(v: float) -> float:
    """Metrics are for people; 6 significant digits keep the file readable."""
    return float(f"{v:.6g}")


class TrainingPlan:
    """The leader's side of one training job: rounds, averaging, validation, the model.

    Raises BadInput/BadOptions from the constructor for bad data or options.
    Attributes the driver reads: ``options`` (task resolved; send
    ``options.to_dict()`` to trainers), ``chunks``, ``n_chunks`` (may be less
    than asked: never more chunks than training rows), ``round_index``,
    ``done``, ``params`` (current averaged parameters, flat float32).
    """

    def __init__(
        self, x: Any, y: Any, options: TrainOptions | None = None, n_chunks: int = 1
    ) -> None:
        problem = prepare(x, y, options)
        self.chunks: list[Chunk] = split_chunks(problem, n_chunks)
        # The chunks hold every training row now: let the client's copy go.
        self.problem: Problem = problem.without_rows()
        self.options: TrainOptions = self.problem.options
        self.n_chunks = len(self.chunks)
        self.params: np.ndarray = self.problem.initial_params
        self.round_index = 0
        self.done = False
        self.history: list[dict[str, Any]] = []
        self._has_validation = self.problem.x_val.shape[0] > 0
        self._best_params = self.params
        self._best_round = -1
        self._best_loss = float("inf")
        self._rounds_since_best = 0

    def jobs(self) -> list[RoundJob]:
        """This round's jobs, one per chunk (empty once done)."""
        if self.done:
            return []
        epochs = self.options.epochs_in_round(self.round_index)
        return [RoundJob(self.round_index, c.index, epochs, self.params) for c in self.chunks]

    def finish_round(self, results: Sequence[ChunkResult]) -> bool:
        """Average this round's results (in chunk order) and decide; True when training is done."""
        if self.done:
            raise TrainingError("training is already finished")
        if len(results) != self.n_chunks:
            raise TrainingError(
                f"round {self.round_index} needs {self.n_chunks} results, got {len(results)}"
            )
        n_params = self.problem.arch.n_params
        for chunk, res in enumerate(results):
            if np.asarray(res.params).size != n_params:
                raise TrainingError(
                    f"chunk {chunk} returned {np.asarray(res.params).size} parameters; the "
                    f"{self.problem.arch.describe()} network has {n_params}"
                )
        params = average(results)
        if not np.isfinite(params).all():
            raise TrainingError(
                f"training diverged in round {self.round_index}; try a smaller learning_rate"
            )
        total = sum(r.n_samples for r in results)
        train_loss = sum(res.n_samples * res.loss for res in results) / total
        scores = {}
        if self._has_validation:
            scores = evaluate(self.problem.arch, params, self.problem.x_val, self.problem.y_val)
        if not np.isfinite([train_loss, *scores.values()]).all():
            raise TrainingError(
                f"training diverged in round {self.round_index} (loss {train_loss}, validation "
                f"{scores}); try a smaller learning_rate"
            )
        # Nothing above changed the plan: a failed round leaves it as it was.
        r = self.round_index
        entry: dict[str, Any] = {
            "round": r,
            "epochs": min(self.options.epochs, (r + 1) * self.options.epochs_per_round),
            "loss": _round6(train_loss),
        }
        self.params = params
        if self._has_validation:
            entry.update({f"val_{k}": _round6(v) for k, v in scores.items()})
            if scores["loss"] < self._best_loss - IMPROVEMENT_TOLERANCE:
                self._best_loss, self._best_params, self._best_round = scores["loss"], params, r
                self._rounds_since_best = 0
            else:
                self._rounds_since_best += 1
        else:
            self._best_params, self._best_round = params, r
        self.history.append(entry)
        self.round_index += 1
        patience = self.options.patience
        stop_early = self._has_validation and patience > 0 and self._rounds_since_best >= patience
        self.done = stop_early or self.round_index >= self.options.n_rounds
        return self.done

    def model(self, created_at: float | None = None, node: str | None = None) -> Model:
        """The trained model (parameters of the best validation round, else the last)."""
        if not self.done:
            raise TrainingError("training is not finished")
        p = self.problem
        weights, biases = p.arch.unflatten(self._best_params)
        best = self.history[self._best_round]
        final = {k: v for k, v in best.items() if k not in ("round", "epochs")}
        created_by: dict[str, Any] = {"software": "zmqnode"}
        if node is not None:
            created_by["node"] = node
        if created_at is not None:
            created_by["created_at"] = created_at
        training = {
            "options": self.options.to_dict(),
            "rows": {"train": p.n_train, "validation": int(p.x_val.shape[0])},
            "chunks": [c.n_samples for c in self.chunks],
            "rounds": self.history,
            "rounds_run": self.round_index,
            "best_round": self._best_round,
            "stopped_early": self.round_index < self.options.n_rounds,
            "final": final,
        }
        return Model(
            task=p.task,
            hidden_activation=p.arch.hidden_activation,
            weights=tuple(weights),
            biases=tuple(biases),
            input_mean=p.input_mean,
            input_std=p.input_std,
            classes=p.classes,
            output_mean=p.output_mean,
            output_std=p.output_std,
            training=training,
            created_by=created_by,
        )


def train(
    x: Any,
    y: Any,
    options: TrainOptions | None = None,
    n_trainers: int = 1,
    created_at: float | None = None,
) -> Model:
    """Train locally, chunk by chunk, exactly as the cluster would with ``n_trainers`` trainers."""
    plan = TrainingPlan(x, y, options, n_chunks=n_trainers)
    while not plan.done:
        plan.finish_round(
            [
                train_chunk(
                    job.params,
                    plan.chunks[job.chunk_index],
                    plan.options,
                    job.round_index,
                    job.epochs,
                )
                for job in plan.jobs()
            ]
        )
    return plan.model(created_at=created_at)
