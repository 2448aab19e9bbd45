"""The .bin model file: round trips, determinism, readability, and every way it can be bad."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import safetensors.numpy

from zmqnode.ml.errors import BadInput, ModelFormatError
from zmqnode.ml.model_file import Model, _tensors_sha256
from zmqnode.ml.training import TrainOptions, train

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0, 1, 1, 0])


@pytest.fixture(scope="module")
def classifier() -> Model:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 4))
    y = np.array([3, 7, 9])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)]
    return train(x, y, TrainOptions(epochs=20))


@pytest.fixture(scope="module")
def regressor() -> Model:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    return train(x, np.stack([x.sum(1), 10 * x[:, 0]], 1), TrainOptions(epochs=20))


def _header(data: bytes) -> dict:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n])


def _rewrite(data: bytes, tensors=None, doc=None, version=None, fix_checksum=True) -> bytes:
    """A model file with some parts replaced, written with plain safetensors."""
    meta = _header(data)["__metadata__"]
    t = dict(safetensors.numpy.load(data))
    d = json.loads(meta["zmqnode"])
    if tensors:
        t = tensors(t)
    if doc:
        d = doc(d)
    if fix_checksum:
        d["tensors_sha256"] = _tensors_sha256(t)
    return safetensors.numpy.save(
        t, metadata={"zmqnode": json.dumps(d), "format_version": version or meta["format_version"]}
    )


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["classifier", "regressor"])
def test_round_trip_gives_identical_predictions_and_bytes(fixture, request):
    model = request.getfixturevalue(fixture)
    data = model.to_bytes()
    loaded = Model.from_bytes(data)
    x = np.random.default_rng(5).normal(size=(50, model.n_inputs))
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.to_bytes() == data
    assert loaded.training == model.training and loaded.classes == model.classes


def test_xor_model_survives_a_round_trip():
    model = Model.from_bytes(train(XOR_X, XOR_Y).to_bytes())
    assert model.predict(XOR_X).tolist() == [0, 1, 1, 0]


def test_bytes_are_identical_across_builds_of_the_same_model(classifier):
    copy = Model(
        task=classifier.task,
        hidden_activation=classifier.hidden_activation,
        weights=tuple(w.copy() for w in classifier.weights),
        biases=tuple(b.copy() for b in classifier.biases),
        input_mean=classifier.input_mean.copy(),
        input_std=classifier.input_std.copy(),
        classes=classifier.classes,
        training=json.loads(json.dumps(classifier.training)),
        created_by=dict(classifier.created_by),
    )
    assert copy.to_bytes() == classifier.to_bytes()


def test_header_has_a_fixed_key_order(classifier):
    """safetensors writes metadata in hash order; ours must not vary between processes."""
    header = _header(classifier.to_bytes())
    keys = list(header)
    assert keys[0] == "__metadata__"
    assert list(header["__metadata__"]) == ["format_version", "zmqnode"]
    offsets = [header[k]["data_offsets"][0] for k in keys[1:]]
    assert offsets == sorted(offsets)


def test_created_at_is_only_stored_when_given():
    plain = train(XOR_X, XOR_Y)
    stamped = train(XOR_X, XOR_Y, created_at=1700000000.5)
    assert "created_at" not in plain.created_by
    assert stamped.created_by["created_at"] == 1700000000.5
    assert Model.from_bytes(stamped.to_bytes()).created_by["created_at"] == 1700000000.5


def test_file_is_a_plain_safetensors_file_any_reader_can_open(classifier):
    data = classifier.to_bytes()
    tensors = safetensors.numpy.load(data)
    assert sorted(tensors) == [
        "input.mean",
        "input.std",
        "layers.0.bias",
        "layers.0.weight",
        "layers.1.bias",
        "layers.1.weight",
    ]
    assert tensors["layers.0.weight"].shape == (4, 64) and tensors["layers.1.bias"].shape == (3,)
    assert all(t.dtype == np.float32 for t in tensors.values())
    meta = _header(data)["__metadata__"]
    doc = json.loads(meta["zmqnode"])
    assert meta["format_version"] == "1" and doc["format_version"] == 1
    assert doc["task"] == "multiclass" and doc["classes"] == [3, 7, 9]
    assert doc["architecture"] == {
        "layer_sizes": [4, 64, 3],
        "hidden_activation": "relu",
        "output_activation": "softmax",
    }
    assert doc["tensors_sha256"] == _tensors_sha256(tensors)
    assert doc["training"]["options"]["hidden_layers"] == [64]


def test_a_reader_can_predict_from_the_documented_formula(regressor):
    """docs/FORMAT.md: standardize, x @ W + b, activation, de-standardize."""
    t = safetensors.numpy.load(regressor.to_bytes())
    x = np.random.default_rng(2).normal(size=(10, 3)).astype(np.float32)
    a = (x - t["input.mean"]) / t["input.std"]
    a = np.maximum(a @ t["layers.0.weight"] + t["layers.0.bias"], 0)
    out = (a @ t["layers.1.weight"] + t["layers.1.bias"]) * t["output.std"] + t["output.mean"]
    np.testing.assert_allclose(out, regressor.predict(x), rtol=1e-5, atol=1e-5)


def test_summary_is_small_and_json_ready(classifier):
    s = classifier.summary()
    assert s["task"] == "multiclass" and s["classes"] == [3, 7, 9] and s["input_columns"] == 4
    assert s["rounds_run"] == classifier.training["rounds_run"]
    assert s["epochs"] == classifier.training["rounds"][-1]["epochs"] <= 20
    assert s["final"]["loss"] == classifier.training["final"]["loss"]
    assert json.loads(json.dumps(s)) == s
    assert json.loads(json.dumps(classifier.metadata_json()))["format"] == "zmqnode.mlp"


# -- prediction ----------------------------------------------------------------------


def test_predict_rejects_the_wrong_width_with_a_clear_message(classifier):
    with pytest.raises(BadInput, match="expects 4 input columns, got 3"):
        classifier.predict(np.zeros((2, 3)))
    with pytest.raises(BadInput, match=r"2-D array.*shape \(4,\)"):
        classifier.predict(np.zeros(4))


def test_predict_rejects_nan_and_non_numbers(classifier):
    x = np.zeros((3, 4))
    x[2, 1] = np.nan
    with pytest.raises(BadInput, match="NaN or infinite values.*row 2"):
        classifier.predict(x)
    with pytest.raises(BadInput, match="beyond float32"):
        classifier.predict(np.full((1, 4), 1e300))
    with pytest.raises(BadInput, match="must be numbers"):
        classifier.predict(np.array([["a", "b", "c", "d"]]))


def test_bad_input_is_a_value_error(classifier):
    with pytest.raises(ValueError):
        classifier.predict(np.zeros((1, 5)))


def test_predict_proba_is_for_classifiers(classifier, regressor):
    p = classifier.predict_proba(np.zeros((5, 4)))
    assert p.shape == (5, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    with pytest.raises(BadInput, match="classification"):
        regressor.predict_proba(np.zeros((1, 3)))


def test_predict_zero_rows(classifier, regressor):
    assert classifier.predict(np.zeros((0, 4))).shape == (0,)
    assert regressor.predict(np.zeros((0, 3))).shape == (0, 2)


def test_predict_is_one_fast_pass_for_a_large_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 64))
    model = train(x, rng.integers(0, 10, 300), TrainOptions(epochs=1, task="multiclass"))
    assert model.layer_sizes == (64, 64, 10)
    big = rng.normal(size=(10_000, 64))
    model.predict(big)
    best = min(_timed(model.predict, big) for _ in range(5))
    assert best < 0.1, best  # a few ms on an idle core; generous for loaded CI machines


def _timed(f, *args) -> float:
    t = time.perf_counter()
    f(*args)
    return time.perf_counter() - t


def test_models_are_immutable(classifier):
    with pytest.raises(ValueError):
        classifier.weights[0][0, 0] = 1.0
    with pytest.raises(AttributeError):
        classifier.task = "regression"


# -- bad files -------------------------------------------------------------------------


def _fails(data: bytes, pattern: str) -> None:
    with pytest.raises(ModelFormatError, match=pattern):
        Model.from_bytes(data)


def test_garbage_bytes(classifier):
    _fails(b"", "too short")
    _fails(b"\x00" * 7, "too short")
    _fails(b"hello world, not a model at all", "not a model file")
    _fails(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\xff" * 16, "not safetensors JSON")
    _fails(b"\x02\x00\x00\x00\x00\x00\x00\x00[]", "not a JSON object")
    _fails(np.random.default_rng(0).bytes(5000), "not a model file")


def test_truncated_file(classifier):
    data = classifier.to_bytes()
    _fails(data[:100], "truncated")
    _fails(data[:-4], "corrupt tensor data")


def test_flipped_weight_byte_fails_the_checksum(classifier):
    data = bytearray(classifier.to_bytes())
    data[-20] ^= 0x01
    _fails(bytes(data), "tensors_sha256")


def test_a_safetensors_file_that_is_not_ours():
    _fails(safetensors.numpy.save({"w": np.zeros(3, np.float32)}), "no 'zmqnode' entry")


def test_unknown_version(classifier):
    _fails(_rewrite(classifier.to_bytes(), version="2"), "unsupported model format version '2'")

    def inner(d):
        d["format_version"] = 2
        return d

    _fails(_rewrite(classifier.to_bytes(), doc=inner), "version 2")


def test_missing_tensor(classifier):
    def drop(t):
        del t["layers.1.bias"]
        return t

    _fails(_rewrite(classifier.to_bytes(), tensors=drop), "missing tensor.*layers.1.bias")


def test_unexpected_tensor(classifier):
    def add(t):
        t["layers.2.weight"] = np.zeros((3, 3), np.float32)
        return t

    _fails(_rewrite(classifier.to_bytes(), tensors=add), "unexpected tensor.*layers.2.weight")


def test_shape_mismatch_between_layers(classifier):
    def shrink(t):
        t["layers.1.weight"] = t["layers.1.weight"][:32]
        return t

    _fails(_rewrite(classifier.to_bytes(), tensors=shrink), r"layers.1.weight has shape \[32, 3\]")

    def both(d):
        d["architecture"]["layer_sizes"] = [4, 64, 2]
        return d

    _fails(_rewrite(classifier.to_bytes(), doc=both), r"layer_sizes \[4, 64, 2\] need \[64, 2\]")


def test_nan_weights(classifier):
    def poison(t):
        t["layers.0.weight"] = t["layers.0.weight"].copy()
        t["layers.0.weight"][1, 2] = np.nan
        return t

    _fails(_rewrite(classifier.to_bytes(), tensors=poison), "layers.0.weight contains NaN")


def test_wrong_dtype(classifier):
    def widen(t):
        t["input.std"] = t["input.std"].astype(np.float64)
        return t

    _fails(_rewrite(classifier.to_bytes(), tensors=widen), "input.std is float64")


def test_zero_std_and_class_count_mismatch(classifier):
    def zero(t):
        t["input.std"] = np.zeros_like(t["input.std"])
        return t

    _fails(_rewrite(classifier.to_bytes(), tensors=zero), "std > 0")

    def fewer(d):
        d["classes"] = [3, 7]
        return d

    _fails(_rewrite(classifier.to_bytes(), doc=fewer), "2 classes needs 2 network output")


def test_metadata_that_is_not_json_or_has_a_bad_task(classifier):
    data = classifier.to_bytes()
    t = dict(safetensors.numpy.load(data))
    _fails(
        safetensors.numpy.save(t, metadata={"zmqnode": "{oops", "format_version": "1"}),
        "not valid JSON",
    )

    def task(d):
        d["task"] = "ranking"
        return d

    _fails(_rewrite(data, doc=task), "unknown task 'ranking'")

    def act(d):
        d["architecture"]["output_activation"] = "sigmoid"
        return d

    _fails(_rewrite(data, doc=act), "needs output activation 'softmax'")


def test_regression_file_without_output_normalization(regressor):
    def drop(t):
        del t["output.std"]
        return t

    _fails(_rewrite(regressor.to_bytes(), tensors=drop), "missing tensor.*output.std")


def test_model_constructor_validates_too(classifier):
    with pytest.raises(ModelFormatError, match="layer 1: weight takes 5 inputs"):
        Model(
            task="multiclass",
            hidden_activation="relu",
            weights=(np.zeros((4, 64)), np.zeros((5, 3))),
            biases=(np.zeros(64), np.zeros(3)),
            input_mean=np.zeros(4),
            input_std=np.ones(4),
            classes=(0, 1, 2),
        )
    with pytest.raises(ModelFormatError, match="unknown hidden activation"):
        Model(
            task="binary",
            hidden_activation="gelu",
            weights=(np.zeros((2, 1)),),
            biases=(np.zeros(1),),
            input_mean=np.zeros(2),
            input_std=np.ones(2),
            classes=(0, 1),
        )


def test_feature_and_target_names_round_trip_and_files_without_them_are_unchanged(classifier):
    import dataclasses

    named = dataclasses.replace(classifier, features=("a", "b", "c", "d"), targets=("kind",))
    again = Model.from_bytes(named.to_bytes())
    assert again.features == ("a", "b", "c", "d") and again.targets == ("kind",)
    assert again.summary()["features"] == ["a", "b", "c", "d"]
    doc = json.loads(_header(classifier.to_bytes())["__metadata__"]["zmqnode"])
    assert "features" not in doc and "targets" not in doc  # old files: same bytes
    with pytest.raises(ModelFormatError, match="features names 2 columns; the model has 4"):
        dataclasses.replace(classifier, features=("a", "b"))
    with pytest.raises(ModelFormatError, match="distinct"):
        dataclasses.replace(classifier, features=("a", "a", "b", "c"))


def test_string_class_names_round_trip_and_predict_names():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, np.float32)
    names = np.array(["setosa", "versicolor", "virginica", "versicolor"] * 10)
    model = train(x, names, TrainOptions(hidden_layers=(8,), epochs=300))
    again = Model.from_bytes(model.to_bytes())
    assert again.classes == ("setosa", "versicolor", "virginica")
    assert again.predict(x[:4]).tolist() == ["setosa", "versicolor", "virginica", "versicolor"]
    index, proba = again.classify(x[:4], proba=True)
    assert index.tolist() == [0, 1, 2, 1] and proba is not None and proba.shape == (4, 3)
