"""A TRAIN request's class names and column names (zmqnode/training/request.py)."""

from __future__ import annotations

import numpy as np
import pytest

from zmqnode.ml.errors import BadInput
from zmqnode.ml.training import TrainOptions
from zmqnode.training.request import ColumnNames, make_plan, read_train_request
from zmqnode.transport import wire
from zmqnode.transport.wire import ErrorCode, ProtocolError

LIMIT = 1 << 20


def _request(y: np.ndarray, rows: int = 40, columns: int = 2, **fields):
    x = np.random.default_rng(0).normal(size=(rows, columns)).astype(np.float32)
    x_desc, x_blob = wire.array_to_frame(x, frame=0)
    y_desc, y_blob = wire.array_to_frame(y, frame=1)
    header = {"v": 1, "type": "TRAIN", "id": "r", "inputs": x_desc, "outputs": y_desc, **fields}
    return header, [x_blob, y_blob]


def _refused(header, blobs) -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        read_train_request(header, blobs, LIMIT)
    return refused.value


def test_class_indices_become_the_sorted_names():
    codes = np.array([0, 1, 2, 1] * 10, np.int64)
    request = read_train_request(*_request(codes, classes=["virginica", "setosa", "eel"]), LIMIT)
    plan = make_plan(request, TrainOptions(epochs=1), n_chunks=1)
    assert plan.problem.classes == ("eel", "setosa", "virginica")
    assert plan.problem.task == "multiclass"


def test_names_are_checked_for_type_count_and_distinctness():
    codes = np.zeros(40, np.int64)
    assert _refused(*_request(codes, classes="a,b")).code is ErrorCode.BAD_REQUEST
    assert _refused(*_request(codes, classes=["a", 1])).code is ErrorCode.BAD_REQUEST
    assert _refused(*_request(codes, classes=["a", "a"])).code is ErrorCode.BAD_INPUT
    assert _refused(*_request(codes, classes=["only"])).code is ErrorCode.BAD_INPUT
    floats = np.zeros((40, 1), np.float32)
    refused = _refused(*_request(floats, classes=["a", "b"]))
    assert refused.code is ErrorCode.BAD_SHAPE and "integer indices" in refused.message


def test_an_index_outside_the_names_is_bad_input_naming_the_row():
    codes = np.array([0, 1] * 19 + [0, 5], np.int64)
    request = read_train_request(*_request(codes, classes=["a", "b"]), LIMIT)
    with pytest.raises(BadInput, match="outputs row 39: class index 5"):
        make_plan(request, TrainOptions(epochs=1), n_chunks=1)


def test_class_names_cannot_be_regression_targets():
    codes = np.array([0, 1] * 20, np.int64)
    request = read_train_request(*_request(codes, classes=["a", "b"]), LIMIT)
    with pytest.raises(BadInput, match="regression"):
        make_plan(request, TrainOptions(epochs=1, task="regression"), n_chunks=1)


def test_column_names_must_match_the_widths():
    codes = np.array([0, 1] * 20, np.int64)
    refused = _refused(*_request(codes, features=["only one"]))
    assert refused.code is ErrorCode.BAD_SHAPE and "2" in refused.message
    refused = _refused(*_request(codes, targets=["a", "b"]))
    assert refused.code is ErrorCode.BAD_SHAPE
    assert _refused(*_request(codes, features=["x", "x"])).code is ErrorCode.BAD_SHAPE
    assert _refused(*_request(codes, features=["x", ""])).code is ErrorCode.BAD_SHAPE
    request = read_train_request(*_request(codes, features=["x", "y"], targets=["t"]), LIMIT)
    assert ColumnNames.of(request) == ColumnNames(("x", "y"), ("t",))


def test_a_request_without_names_is_unchanged():
    y = np.array([0.5, 1.5] * 20, np.float32).reshape(-1, 1)
    request = read_train_request(*_request(y), LIMIT)
    assert request.class_names is None and request.features == () and request.targets == ()
