"""Training: what it learns, determinism, chunks, averaging, the round protocol."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from zmqnode.ml.distributed import run_chunk
from zmqnode.ml.mlp import params_from_bytes, params_to_bytes
from zmqnode.ml.problem import MIN_VALIDATION_ROWS
from zmqnode.ml.training import (
    ChunkResult,
    TrainingError,
    TrainingPlan,
    TrainOptions,
    average,
    prepare,
    split_chunks,
    train,
    train_chunk,
)

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0, 1, 1, 0])


CENTERS = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])


def blobs(n_per_class=60, seed=0, labels=None):
    """Three unit-variance Gaussian blobs 6 apart: a near-perfect classifier exists."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + rng.normal(size=(n_per_class, 2)) for c in CENTERS])
    y = np.repeat(labels if labels is not None else np.arange(3), n_per_class)
    order = rng.permutation(len(y))
    return x[order], y[order]


# -- what it learns ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_xor_is_learned_with_default_options(seed):
    model = train(XOR_X, XOR_Y, TrainOptions(seed=seed))
    assert model.predict(XOR_X).tolist() == XOR_Y.tolist()
    p = model.predict_proba(XOR_X)
    assert p.shape == (4, 2) and np.allclose(p.sum(axis=1), 1)
    assert (np.abs(p[:, 1] - XOR_Y) < 0.2).all()  # confident, not lucky


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_xor_with_other_activations(activation):
    model = train(XOR_X, XOR_Y, TrainOptions(activation=activation))
    assert model.hidden_activation == activation
    assert model.predict(XOR_X).tolist() == XOR_Y.tolist()


def test_multiclass_blobs_are_separated_and_original_labels_returned():
    x, y = blobs(labels=np.array([10, 20, 30]))
    xt, yt = blobs(seed=1, labels=np.array([10, 20, 30]))  # fresh draws
    model = train(x, y, TrainOptions(epochs=60))
    assert model.task == "multiclass" and model.classes == (10, 20, 30)
    assert (model.predict(xt) == yt).mean() > 0.95
    assert set(np.unique(model.predict(xt))) <= {10, 20, 30}
    assert np.allclose(model.predict_proba(x[:5]).sum(axis=1), 1, atol=1e-5)


def test_regression_with_two_output_columns_fits():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(400, 3))
    y = np.stack([x[:, 0] * x[:, 1], 100 + 50 * np.sin(x[:, 2])], axis=1)  # different scales
    model = train(x, y, TrainOptions(epochs=100))
    assert model.task == "regression"
    pred = model.predict(x)
    assert pred.shape == (400, 2)
    r2 = 1 - ((pred - y) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    assert (r2 > 0.9).all(), r2


def test_single_column_regression_predicts_one_value_per_row():
    x = np.linspace(-1, 1, 50).reshape(-1, 1)
    model = train(x, 3 * x[:, 0] + 0.5)
    pred = model.predict(x)
    assert pred.shape == (50,)
    assert np.abs(pred - (3 * x[:, 0] + 0.5)).max() < 0.05


def test_different_trainer_counts_still_learn():
    x, y = blobs(n_per_class=50)
    for n in (2, 3, 5):
        model = train(x, y, TrainOptions(epochs=60), n_trainers=n)
        assert model.training["chunks"] == [len(c.x) for c in split_chunks(prepare(x, y), n)]
        assert (model.predict(x) == y).mean() > 0.95, n


def test_xor_with_more_trainers_than_rows_uses_one_chunk_per_row():
    model = train(XOR_X, XOR_Y, n_trainers=8)
    assert model.training["chunks"] == [1, 1, 1, 1]


# -- determinism -------------------------------------------------------------------


def test_same_seed_and_trainers_give_byte_identical_files():
    x, y = blobs()
    for n in (1, 3):
        a = train(x, y, TrainOptions(seed=4, epochs=30), n_trainers=n).to_bytes()
        b = train(x, y, TrainOptions(seed=4, epochs=30), n_trainers=n).to_bytes()
        assert a == b


def test_seed_changes_the_model():
    x, y = blobs()
    a = train(x, y, TrainOptions(seed=1, epochs=10)).to_bytes()
    b = train(x, y, TrainOptions(seed=2, epochs=10)).to_bytes()
    assert a != b


def test_remote_trainer_path_gives_the_same_model_as_train():
    """The wire shapes: options as JSON, params/x/y as float32 frames, results back."""
    x, y = blobs()
    options = TrainOptions(epochs=30, seed=9)
    plan = TrainingPlan(x, y, options, n_chunks=3)
    wire_options = orjson.loads(orjson.dumps(plan.options.to_dict()))
    while not plan.done:
        results = []
        for job in plan.jobs():
            chunk = plan.chunks[job.chunk_index]
            params = params_from_bytes(params_to_bytes(job.params))
            xb = np.frombuffer(chunk.x.tobytes(), np.float32).reshape(chunk.x.shape)
            yb = np.frombuffer(chunk.y.tobytes(), np.float32).reshape(chunk.y.shape)
            res = run_chunk(params, xb, yb, wire_options, job.round_index, job.chunk_index)
            results.append(
                ChunkResult(params_from_bytes(params_to_bytes(res.params)), res.n_samples, res.loss)
            )
        plan.finish_round(results)
    assert plan.model().to_bytes() == train(x, y, options, n_trainers=3).to_bytes()


# -- the round protocol ----------------------------------------------------------------


def test_plan_runs_the_scheduled_rounds_and_epochs():
    options = TrainOptions(epochs=25, epochs_per_round=10, validation_fraction=0)
    plan = TrainingPlan(XOR_X, XOR_Y, options, n_chunks=2)
    epochs = []
    while not plan.done:
        jobs = plan.jobs()
        assert [j.chunk_index for j in jobs] == [0, 1]
        epochs.append(jobs[0].epochs)
        plan.finish_round(
            [
                train_chunk(
                    j.params, plan.chunks[j.chunk_index], plan.options, j.round_index, j.epochs
                )
                for j in jobs
            ]
        )
    assert epochs == [10, 10, 5]
    assert plan.jobs() == []
    assert [r["epochs"] for r in plan.model().training["rounds"]] == [10, 20, 25]
    with pytest.raises(TrainingError, match="already finished"):
        plan.finish_round([])


def test_plan_rejects_a_wrong_number_of_results_and_unfinished_model():
    plan = TrainingPlan(XOR_X, XOR_Y, n_chunks=2)
    with pytest.raises(TrainingError, match="needs 2 results, got 1"):
        plan.finish_round([ChunkResult(plan.params, 2, 0.5)])
    with pytest.raises(TrainingError, match="not finished"):
        plan.model()


def test_plan_resolves_the_task_for_trainers():
    plan = TrainingPlan(XOR_X, XOR_Y)
    assert TrainOptions().task is None and plan.options.task == "binary"
    assert plan.options.to_dict()["task"] == "binary"


def test_diverging_results_fail_the_round_and_leave_the_plan_as_it_was():
    plan = TrainingPlan(XOR_X, XOR_Y)
    start = plan.params
    bad = plan.params.copy()
    bad[0] = np.nan
    with pytest.raises(TrainingError, match="diverged"):
        plan.finish_round([ChunkResult(bad, 4, 0.1)])
    with pytest.raises(TrainingError, match="diverged"):
        plan.finish_round([ChunkResult(start, 4, float("inf"))])
    with pytest.raises(TrainingError, match="returned 3 parameters; the 2-64-1 network has 257"):
        plan.finish_round([ChunkResult(start[:3], 4, 0.1)])
    assert plan.round_index == 0 and plan.params is start and plan.history == []
    plan.finish_round([train_chunk(start, plan.chunks[0], plan.options, 0)])
    assert plan.round_index == 1


def test_early_stopping_keeps_the_best_validation_round():
    # Pure noise labels: validation loss gets worse as the net memorizes.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = rng.integers(0, 2, size=300)
    options = TrainOptions(epochs=400, epochs_per_round=10, patience=3, validation_fraction=0.2)
    model = train(x, y, options)
    t = model.training
    assert t["stopped_early"] and t["rounds_run"] < 40
    assert t["rounds_run"] == t["best_round"] + 1 + 3
    val = [r["val_loss"] for r in t["rounds"]]
    assert t["final"]["val_loss"] == min(val) == val[t["best_round"]]
    # 20% of each class held out (rounded down), the rest trains
    held = sum(int(0.2 * np.sum(y == c)) for c in (0, 1))
    assert t["rows"] == {"train": 300 - held, "validation": held} and held >= 58


def test_no_validation_set_below_the_minimum_rows():
    x, y = blobs(n_per_class=10)  # 10% of 30 rows = 3 < MIN_VALIDATION_ROWS
    assert 3 < MIN_VALIDATION_ROWS
    model = train(x, y, TrainOptions(epochs=20, patience=1))
    assert model.training["rows"] == {"train": 30, "validation": 0}
    assert model.training["rounds_run"] == 2 and not model.training["stopped_early"]
    assert "val_loss" not in model.training["rounds"][0]


def test_metrics_are_recorded_per_round():
    x, y = blobs(n_per_class=100)
    model = train(x, y, TrainOptions(epochs=30, patience=0))
    rounds = model.training["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert all({"loss", "val_loss", "val_accuracy"} <= set(r) for r in rounds)
    assert rounds[-1]["loss"] < rounds[0]["loss"]
    assert rounds[-1]["val_accuracy"] > 0.9
    assert (
        model.training["options"]
        == dataclasses.replace(TrainOptions(epochs=30, patience=0), task="multiclass").to_dict()
    )


# -- chunks and averaging ---------------------------------------------------------------


def test_stratified_chunks_hold_every_class_evenly():
    # 3 classes of very different sizes.
    y = np.array([0] * 50 + [1] * 20 + [2] * 7)
    x = np.arange(len(y), dtype=float).reshape(-1, 1)
    problem = prepare(x, y, TrainOptions(validation_fraction=0))
    chunks = split_chunks(problem, 3)
    assert [c.index for c in chunks] == [0, 1, 2]
    sizes = [c.n_samples for c in chunks]
    assert sum(sizes) == 77 and max(sizes) - min(sizes) <= 1
    per_class = np.array([c.y.sum(axis=0) for c in chunks])  # one-hot column sums
    assert (per_class > 0).all()
    assert (per_class.max(axis=0) - per_class.min(axis=0) <= 1).all()
    # every row exactly once
    rows = np.sort(np.concatenate([c.x[:, 0] for c in chunks]))
    assert np.array_equal(rows, np.sort(problem.x[:, 0]))


def test_chunks_are_deterministic_and_seeded():
    x, y = blobs()
    a = [c.x for c in split_chunks(prepare(x, y, TrainOptions(seed=1)), 4)]
    b = [c.x for c in split_chunks(prepare(x, y, TrainOptions(seed=1)), 4)]
    c = [c.x for c in split_chunks(prepare(x, y, TrainOptions(seed=2)), 4)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c, strict=True))


def test_regression_chunks_cover_all_rows():
    x = np.arange(23, dtype=float).reshape(-1, 1)
    chunks = split_chunks(prepare(x, x[:, 0] * 0.5, TrainOptions(validation_fraction=0)), 4)
    assert sorted(c.n_samples for c in chunks) == [5, 6, 6, 6]
    assert sorted(np.concatenate([c.x[:, 0] for c in chunks]).tolist()) == sorted(
        prepare(x, x[:, 0] * 0.5, TrainOptions(validation_fraction=0)).x[:, 0].tolist()
    )


def test_average_weights_by_samples_for_uneven_chunks():
    a = ChunkResult(np.array([1.0, 10.0], np.float32), 1, 0.0)
    b = ChunkResult(np.array([4.0, 40.0], np.float32), 3, 0.0)
    empty = ChunkResult(np.array([100.0, 100.0], np.float32), 0, 0.0)
    out = average([a, b, empty])
    assert out.dtype == np.float32
    assert out.tolist() == [3.25, 32.5]  # (1*1 + 3*4)/4, (1*10 + 3*40)/4


def test_average_refuses_mismatched_or_empty_results():
    with pytest.raises(TrainingError, match="parameter count"):
        average(
            [
                ChunkResult(np.zeros(2, np.float32), 1, 0.0),
                ChunkResult(np.zeros(3, np.float32), 1, 0.0),
            ]
        )
    with pytest.raises(TrainingError, match="nothing to average"):
        average([])


def test_train_chunk_is_deterministic_and_depends_on_round_and_chunk():
    plan = TrainingPlan(*blobs(), TrainOptions(epochs=5), n_chunks=2)
    args = (plan.params, plan.chunks[0], plan.options)
    r1, r2 = train_chunk(*args, 0), train_chunk(*args, 0)
    assert np.array_equal(r1.params, r2.params) and r1.loss == r2.loss
    assert r1.n_samples == plan.chunks[0].n_samples
    assert not np.array_equal(r1.params, train_chunk(*args, 1, 5).params)
    assert not np.array_equal(plan.params, r1.params)
