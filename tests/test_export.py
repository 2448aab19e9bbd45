"""Exporting a model: the ONNX graph computes what the model computes, from raw rows.

onnxruntime runs every exported graph here and its answers are compared with
``Model.predict`` / ``Model.predict_proba`` to 1e-5. The safetensors export is
the model file itself, read with FETCH and checked against the SHA-256 the
cluster replicated. The command line and a real cluster: test_export_cli.py.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from client.api import Client, ClientError
from client.export import (
    LABEL,
    ONNX_OPSET,
    PROBABILITIES,
    VALUES,
    ExportError,
    export_model,
    fetch_model,
    onnx_bytes,
    to_onnx,
)
from tests.test_client_fakenode import FakeNode
from zmqnode.ml.model_file import Model
from zmqnode.ml.training import TrainOptions, train
from zmqnode.transport.wire import ErrorCode, error_reply, ok_reply

TOLERANCE = 1e-5
# Raw columns on very different scales and offsets: standardization matters.
SCALE = np.array([1.0, 10.0, 100.0, 0.1])
OFFSET = np.array([0.0, 5.0, -50.0, 3.0])


def raw_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)) * SCALE + OFFSET


def targets(task: str, x: np.ndarray, names: Any = ("setosa", "versicolor", "virginica")) -> Any:
    a, b = x[:, 0], (x[:, 1] - 5) / 10
    if task == "binary":
        return np.array([2, 7])[(a + b > 0).astype(int)]
    if task == "multiclass":
        return np.asarray(names)[(a > 0).astype(int) + (b > 0.5)]
    if task == "regression":
        return 3 * a + np.sin(b)
    return np.stack([3 * a + np.sin(b), x[:, 2] / 10], axis=1)  # two output columns


def trained(task: str, activation: str = "relu") -> Model:
    x = raw_rows(300, seed=1)
    options = TrainOptions(epochs=15, hidden_layers=(16, 8), activation=activation, seed=3)
    model = train(x, targets(task, x), options)
    assert model.task == task.removesuffix("_2col")
    return model


def run(model: Model, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(onnx_bytes(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"inputs": x.astype(np.float32)}), strict=True))


def max_difference(model: Model, x: np.ndarray) -> float:
    """Checks the graph's outputs against the model's; the largest absolute difference."""
    out = run(model, x)
    if model.task == "regression":
        expected = model.predict(x)
        assert out[VALUES].shape == expected.shape
        return float(np.abs(out[VALUES] - expected).max())
    assert out[LABEL].tolist() == model.predict(x).tolist()
    expected = model.predict_proba(x)
    assert out[PROBABILITIES].shape == expected.shape
    return float(np.abs(out[PROBABILITIES] - expected).max())


# -- the graph computes the model ---------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression", "regression_2col"])
def test_onnxruntime_matches_the_model_on_raw_rows(task, activation) -> None:
    model = trained(task, activation)
    assert max_difference(model, raw_rows(1000, seed=2)) <= TOLERANCE


def test_binary_label_is_decided_by_the_logit_not_the_rounded_probability() -> None:
    # z = 1e-9: sigmoid(z) is exactly 0.5 in float32, yet z > 0 means classes[1].
    model = Model(
        task="binary",
        hidden_activation="relu",
        weights=(np.zeros((2, 1)),),
        biases=(np.array([1e-9]),),
        input_mean=np.zeros(2),
        input_std=np.ones(2),
        classes=("no", "yes"),
    )
    x = np.zeros((3, 2))
    out = run(model, x)
    assert model.predict(x).tolist() == out[LABEL].tolist() == ["yes"] * 3
    assert out[PROBABILITIES].tolist() == [[0.5, 0.5]] * 3


@pytest.mark.parametrize(
    "classes", [(0, 1, 2), (-1.5, 0.25, 4.0), ("a", "b", "c"), (False, True)], ids=repr
)
def test_labels_keep_the_classes_values_and_type(classes) -> None:
    rng = np.random.default_rng(0)
    k = len(classes)
    model = Model(
        task="binary" if k == 2 else "multiclass",
        hidden_activation="tanh",
        weights=(rng.normal(size=(3, 5)), rng.normal(size=(5, 1 if k == 2 else k))),
        biases=(rng.normal(size=5), rng.normal(size=1 if k == 2 else k)),
        input_mean=rng.normal(size=3),
        input_std=rng.uniform(0.5, 2, size=3),
        classes=classes,
    )
    x = rng.normal(size=(200, 3))
    labels = run(model, x)[LABEL]
    assert labels.tolist() == model.predict(x).tolist()
    assert {type(v) for v in labels.tolist()} == {type(classes[0])}


# -- the graph itself -------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_graph_is_valid_opset_13_with_the_model_files_tensor_names(task) -> None:
    model = trained(task)
    proto = to_onnx(model, model_id="m42")
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", ONNX_OPSET)]
    assert proto.ir_version == 7  # the oldest that carries opset 13
    graph_input = proto.graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "inputs" and [d.dim_param or d.dim_value for d in dims] == ["N", 4]
    outputs = [o.name for o in proto.graph.output]
    assert outputs == ([VALUES] if task == "regression" else [LABEL, PROBABILITIES])
    names = {t.name for t in proto.graph.initializer}
    tensors = {"input.mean", "input.std", "layers.0.weight", "layers.2.bias"}
    if task == "regression":
        tensors |= {"output.mean", "output.std"}
    assert tensors <= names


def test_metadata_carries_the_model_id_task_and_file_document() -> None:
    model = trained("multiclass")
    props = {p.key: p.value for p in to_onnx(model, model_id="m42").metadata_props}
    assert props["model_id"] == "m42" and props["task"] == "multiclass"
    assert json.loads(props["zmqnode"]) == json.loads(json.dumps(model.metadata_json()))


def test_export_is_deterministic() -> None:
    model = trained("binary")
    assert onnx_bytes(model, model_id="m") == onnx_bytes(model, model_id="m")


# -- fetching and writing, against a fake node -------------------------------------


def fake_cluster(data: bytes, chunk: int, corrupt: bool = False):
    """A node that answers INFO and FETCH for model ``m1`` (chunks of ``chunk`` bytes)."""
    sha = hashlib.sha256(data).hexdigest()
    served = bytearray(data)
    if corrupt:
        served[-1] ^= 0xFF

    def handler(h: dict[str, Any], b: list[bytes]) -> Any:
        if h.get("model_id") != "m1":
            return error_reply(h, ErrorCode.NOT_FOUND, f"no model {h.get('model_id')}")
        if h["type"] == "INFO":
            return ok_reply(h, model={"model_id": "m1", "size_bytes": len(data), "sha256": sha})
        if h["type"] == "FETCH":
            at = h["offset"]
            part = bytes(served[at : at + min(h["length"], chunk)])
            return ok_reply(h, size=len(data), offset=at, sha256=sha), [part]
        return error_reply(h, ErrorCode.UNKNOWN_TYPE, h["type"])

    return FakeNode(handler)


def test_fetch_model_reads_every_chunk_and_checks_the_sha256() -> None:
    data = trained("binary").to_bytes()
    with fake_cluster(data, chunk=100) as node, Client([node.address], timeout=2) as c:
        assert fetch_model(c, "m1", chunk_bytes=1 << 20) == data
        offsets = [h["offset"] for h, _ in node.requests if h["type"] == "FETCH"]
    assert offsets == list(range(0, len(data), 100))


def test_fetch_model_refuses_bytes_that_do_not_match_the_record() -> None:
    data = trained("binary").to_bytes()
    with fake_cluster(data, chunk=1000, corrupt=True) as node, Client([node.address]) as c:
        with pytest.raises(ClientError) as caught:
            fetch_model(c, "m1")
    assert caught.value.code == ErrorCode.MALFORMED.value


def test_export_model_writes_the_file_it_reports(tmp_path) -> None:
    model = trained("regression")
    with fake_cluster(model.to_bytes(), chunk=700) as node, Client([node.address]) as c:
        onnx_file = export_model(c, "m1", "onnx", tmp_path / "m.onnx")
        bin_file = export_model(c, "m1", "safetensors", tmp_path / "m.bin")
    assert (tmp_path / "m.onnx").read_bytes() == onnx_bytes(model, model_id="m1")
    assert (tmp_path / "m.bin").read_bytes() == model.to_bytes()
    assert onnx_file.outputs == (VALUES,) and bin_file.outputs == ()
    assert bin_file.sha256 == hashlib.sha256(model.to_bytes()).hexdigest()


def test_without_onnx_the_export_says_what_to_install_and_asks_nothing(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with fake_cluster(b"x" * 10, chunk=10) as node, Client([node.address]) as c:
        with pytest.raises(ExportError, match=r"pip install 'zmqnode\[onnx\]'"):
            export_model(c, "m1", "onnx", tmp_path / "m.onnx")
        assert node.requests == []
    assert not (tmp_path / "m.onnx").exists()
