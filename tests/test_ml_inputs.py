"""Validation of training data, task inference and options: typed errors, readable messages."""

from __future__ import annotations

import numpy as np
import pytest

from zmqnode.ml.distributed import run_chunk
from zmqnode.ml.training import (
    BadInput,
    BadOptions,
    TrainingPlan,
    TrainOptions,
    infer_task,
    prepare,
    split_chunks,
)

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
Y = np.array([0, 1, 0, 1])


# -- bad training data -------------------------------------------------------------


@pytest.mark.parametrize(
    "x,y,pattern",
    [
        (
            np.array([[0.0, np.nan], [1, 1]]),
            np.array([0, 1]),
            r"inputs contain NaN.*row 0, column 1",
        ),
        (
            np.array([[0.0, 1], [np.inf, 1]]),
            np.array([0, 1]),
            r"inputs contain NaN or infinite.*row 1",
        ),
        (np.array([[1e39, 1.0], [0, 1]]), np.array([0, 1]), "beyond float32"),
        (np.zeros((0, 2)), np.zeros(0), "no rows"),
        (np.zeros((3, 0)), np.zeros(3), "no columns"),
        (X, Y[:3], "inputs have 4 rows but outputs have 3"),
        (X[:, 0], Y, r"2-D array \(rows x columns\), got shape \(4,\)"),
        (np.array([["a", "b"]]), np.array([1]), "inputs must be numbers"),
        (X, np.array([0.5, np.nan, 1.0, 2.0]), "outputs contain NaN.*row 1"),
        (X, np.zeros((4, 2, 1)), "outputs must be 1-D"),
        (X, np.zeros((4, 0)), "outputs have no columns"),
    ],
)
def test_bad_training_data_raises_bad_input(x, y, pattern):
    with pytest.raises(BadInput, match=pattern):
        prepare(x, y)
    with pytest.raises(BadInput, match=pattern):
        TrainingPlan(x, y)  # what the node calls


def test_nan_regression_target_is_reported_with_its_place():
    y = np.ones((4, 2))
    y[3, 1] = np.inf
    with pytest.raises(BadInput, match="row 3, column 1"):
        prepare(X, y, TrainOptions(task="regression"))


def test_task_override_that_does_not_fit_the_labels():
    with pytest.raises(BadInput, match="exactly 2 classes, the labels have 3"):
        prepare(X, np.array([0, 1, 2, 0]), TrainOptions(task="binary"))
    with pytest.raises(BadInput, match="at least 2 classes"):
        prepare(X, np.array([5, 5, 5, 5]), TrainOptions(task="multiclass"))
    with pytest.raises(BadInput, match="one label per row, but outputs have 2 columns"):
        prepare(X, np.zeros((4, 2)), TrainOptions(task="multiclass"))
    with pytest.raises(BadInput, match="regression targets must be numbers"):
        prepare(X, np.array(["a", "b", "a", "b"]), TrainOptions(task="regression"))


def test_bad_input_and_bad_options_are_value_errors():
    assert issubclass(BadInput, ValueError) and issubclass(BadOptions, ValueError)


# -- task inference ---------------------------------------------------------------


@pytest.mark.parametrize(
    "y,task",
    [
        ([0, 1, 1, 0], "binary"),
        ([-1.0, 1.0, 1.0], "binary"),
        ([True, False], "binary"),
        ([[0], [1], [1]], "binary"),  # one column is still one label per row
        ([0, 1, 2, 1], "multiclass"),
        (list(range(32)), "multiclass"),
        (list(range(33)), "regression"),  # too many distinct values for classes
        ([0.5, 1.0, 2.0], "regression"),
        ([[0, 1], [1, 0]], "regression"),  # several output columns
        ([3, 3, 3], "regression"),  # a single value is no classification
        (["cat", "dog", "cat"], "binary"),
        (["a", "b", "c"], "multiclass"),
    ],
)
def test_infer_task(y, task):
    assert infer_task(np.array(y)) == task


@pytest.mark.parametrize("y,task", [([0, 1, 0, 1], "binary"), ([0, 1, 2, 1], "multiclass")])
def test_task_classification_picks_binary_or_multiclass(y, task):
    plan = TrainingPlan(X, np.array(y), TrainOptions(task="classification"))
    assert plan.problem.task == task and plan.options.task == task


def test_classes_are_sorted_original_values():
    p = prepare(X, np.array([20, 10, 20, 10]))
    assert p.classes == (10, 20) and p.task == "binary"
    assert p.y[:, 0].tolist() == [1, 0, 1, 0]
    s = prepare(X, np.array(["b", "a", "c", "a"]))
    assert s.classes == ("a", "b", "c") and s.y.shape == (4, 3)


def test_prepare_standardizes_and_maps_constant_columns_to_zero():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0], [7.0, 5.0]])
    p = prepare(x, Y, TrainOptions(validation_fraction=0))
    assert p.input_std.tolist()[1] == 1.0 and p.input_mean.tolist() == [4.0, 5.0]
    assert np.allclose(p.x.mean(0), 0, atol=1e-6) and (p.x[:, 1] == 0).all()
    assert p.x.dtype == np.float32 and p.y.dtype == np.float32


def test_prepare_initial_params_come_from_the_seed():
    a = prepare(X, Y, TrainOptions(seed=3)).initial_params
    b = prepare(X, Y, TrainOptions(seed=3)).initial_params
    c = prepare(X, Y, TrainOptions(seed=4)).initial_params
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_split_chunks_rejects_a_bad_count():
    with pytest.raises(BadOptions, match="positive integer"):
        split_chunks(prepare(X, Y), 0)


def test_run_chunk_rejects_mismatched_data_and_params():
    plan = TrainingPlan(X, Y)
    opts = plan.options.to_dict()
    with pytest.raises(BadInput, match="same, non-zero rows"):
        run_chunk(plan.params, np.zeros((3, 2)), np.zeros((2, 1)), opts, 0, 0)
    with pytest.raises(BadInput, match="needs"):
        run_chunk(plan.params[:-1], np.zeros((3, 2)), np.zeros((3, 1)), opts, 0, 0)
    with pytest.raises(BadOptions, match="task must not be null"):
        run_chunk(plan.params, np.zeros((3, 2)), np.zeros((3, 1)), {}, 0, 0)


# -- options ---------------------------------------------------------------------


def test_options_round_trip_through_a_dict():
    o = TrainOptions(hidden_layers=(32, 16), activation="tanh", epochs=7, seed=5, task="binary")
    assert TrainOptions.from_dict(o.to_dict()) == o
    assert TrainOptions.from_dict({}) == TrainOptions()
    assert o.to_dict()["hidden_layers"] == [32, 16]


@pytest.mark.parametrize(
    "d,pattern",
    [
        ({"epoch": 3}, "unknown option.*'epoch'.*known options"),
        ({"hidden_layers": 64}, "list of layer widths"),
        ({"hidden_layers": [64, 0]}, "width must be 1..4096"),
        ({"hidden_layers": [64.5]}, "list of integers"),
        ({"hidden_layers": [8] * 17}, "at most 16"),
        ({"activation": "gelu"}, "activation must be one of relu, tanh, sigmoid"),
        ({"epochs": 0}, "epochs must be an integer in 1..100000"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"batch_size": "32"}, "batch_size must be an integer"),
        ({"learning_rate": 0}, r"learning_rate must be a number in \(0, 10\]"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"l2": -1}, "l2 must be"),
        ({"seed": -1}, "seed must be"),
        ({"task": "clustering"}, "task must be one of binary, multiclass, regression, classif"),
        ({"validation_fraction": 0.9}, r"validation_fraction must be a number in \[0, 0.5\]"),
        ({"patience": -2}, "patience"),
        ({"epochs_per_round": 0}, "epochs_per_round"),
    ],
)
def test_bad_options_raise_bad_options(d, pattern):
    with pytest.raises(BadOptions, match=pattern):
        TrainOptions.from_dict(d)


def test_options_must_be_an_object():
    with pytest.raises(BadOptions, match="must be an object"):
        TrainOptions.from_dict([1, 2])


def test_round_schedule():
    o = TrainOptions(epochs=25, epochs_per_round=10, learning_rate=0.01)
    assert o.n_rounds == 3
    assert [o.epochs_in_round(r) for r in range(3)] == [10, 10, 5]
    assert o.learning_rate_in_round(0) == 0.01
    assert o.learning_rate_in_round(2) == pytest.approx(0.001)
    assert o.learning_rate_in_round(1) == pytest.approx(0.0055)
    assert TrainOptions(epochs=5, learning_rate=0.01).learning_rate_in_round(0) == 0.01  # no decay
    with pytest.raises(ValueError, match="outside"):
        o.epochs_in_round(3)
