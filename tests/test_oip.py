"""zmqnode.oip: the Open Inference Protocol mapped onto PREDICT.

Requests are encoded by tritonclient's own encoder (what
``InferenceServerClient.infer`` sends) and responses decoded by its own
``InferResult``, so these tests check the bytes a real client exchanges.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from zmqnode import oip
from zmqnode.oip import InferCall, OipError
from zmqnode.transport import wire
from zmqnode.transport.wire import ErrorCode

tritonhttp = pytest.importorskip("tritonclient.http")
from tritonclient.http._utils import _get_inference_request  # noqa: E402

MODEL = "m-1"


def triton_body(
    x: np.ndarray,
    *,
    datatype: str = "FP32",
    binary: bool = True,
    outputs: list[tuple[str, bool]] | None = None,
    request_id: str = "",
    name: str = oip.INPUT_NAME,
) -> tuple[bytes, int | None]:
    """The body and Inference-Header-Content-Length tritonclient sends."""
    inp = tritonhttp.InferInput(name, list(x.shape), datatype)
    inp.set_data_from_numpy(x, binary_data=binary)
    requested = [tritonhttp.InferRequestedOutput(n, binary_data=b) for n, b in outputs or []]
    body, header_length = _get_inference_request(
        inputs=[inp],
        request_id=request_id,
        outputs=requested or None,
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        custom_parameters=None,
    )
    return body, header_length


def parse(x: np.ndarray, **kwargs: Any) -> InferCall:
    return oip.parse_infer(MODEL, *triton_body(x, **kwargs))


def decode(headers: list[tuple[str, str]], body: bytes) -> Any:
    """tritonclient's InferResult of our response."""
    length = dict(headers).get(oip.HEADER_LENGTH)
    return tritonhttp.InferResult.from_response_body(
        body, verbose=False, header_length=None if length is None else int(length)
    )


def classify_reply(
    index: list[int], classes: list[Any], proba: np.ndarray | None = None
) -> tuple[dict[str, Any], list[bytes]]:
    """A PREDICT OK reply of a classifier, as zmqnode.serving builds it."""
    desc, blob = wire.array_to_frame(np.asarray(index, dtype=np.int64), 0)
    fields: dict[str, Any] = {"model_id": MODEL, "outputs": desc, "classes": classes}
    blobs = [blob]
    if proba is not None:
        pdesc, pblob = wire.array_to_frame(proba.astype(np.float32), 1)
        fields["probabilities"] = pdesc
        blobs.append(pblob)
    return fields, blobs


def regress_reply(values: np.ndarray) -> tuple[dict[str, Any], list[bytes]]:
    desc, blob = wire.array_to_frame(values.astype(np.float32), 0)
    return {"model_id": MODEL, "outputs": desc}, [blob]


X = np.array([[1.0, 2.5, -3.0], [0.0, 4.0, 1e-3]], dtype=np.float32)
PROBA = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)


def raw_call(request: dict[str, Any], tail: bytes = b"") -> InferCall:
    head = orjson.dumps(request)
    return oip.parse_infer(MODEL, head + tail, len(head) if tail else None)


def error_of(request: dict[str, Any] | bytes, tail: bytes = b"") -> OipError:
    with pytest.raises(OipError) as info:
        if isinstance(request, bytes):
            oip.parse_infer(MODEL, request, None)
        else:
            raw_call(request, tail)
    assert info.value.status == 400
    assert "\n" not in info.value.message
    return info.value


# --------------------------------------------------------------------------
# Requests become PREDICT


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_request_becomes_a_predict_of_the_same_rows(binary: bool) -> None:
    call = parse(X, binary=binary, outputs=[("label", True)], request_id="req-7")
    header = call.predict_header("p-1")
    assert header["type"] == "PREDICT"
    assert header["id"] == "p-1"
    assert header["v"] == wire.PROTOCOL_VERSION
    assert header["model_id"] == MODEL
    assert header["proba"] is False
    rows = wire.read_array(header, call.blobs, "inputs", max_bytes=1 << 20)
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows, X)
    assert call.request_id == "req-7"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [
        ("FP64", np.float64),
        ("FP16", np.float16),
        ("INT8", np.int8),
        ("INT32", np.int32),
        ("INT64", np.int64),
        ("UINT8", np.uint8),
        ("UINT64", np.uint64),
    ],
)
def test_numeric_datatypes_are_converted_to_float32(
    datatype: str, dtype: Any, binary: bool
) -> None:
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=dtype)
    call = parse(x, datatype=datatype, binary=binary)
    assert call.rows.dtype == np.float32
    np.testing.assert_array_equal(call.rows, x.astype(np.float32))


def test_a_one_dimensional_shape_is_one_row() -> None:
    call = parse(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert call.rows.shape == (1, 3)
    assert call.predict_header("p")["inputs"]["shape"] == [1, 3]


def test_nested_json_data_is_read_row_major() -> None:
    call = raw_call(
        {
            "inputs": [
                {"name": "inputs", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}
            ]
        }
    )
    np.testing.assert_array_equal(call.rows, [[1, 2], [3, 4]])


def test_probabilities_are_asked_for_only_when_requested() -> None:
    assert parse(X, outputs=[("probabilities", True)]).predict_header("p")["proba"] is True
    assert parse(X, outputs=[("label", False)]).predict_header("p")["proba"] is False


def test_no_outputs_listed_means_all_the_models_outputs() -> None:
    call = parse(X)  # tritonclient then sets binary_data_output
    assert call.outputs == ()
    assert call.binary_output is True
    assert call.predict_header("p", task="multiclass")["proba"] is True
    assert call.predict_header("p", task="regression")["proba"] is False
    assert call.predict_header("p")["proba"] is False  # task unknown: no probabilities


def test_an_output_the_model_lacks_is_refused_before_predicting() -> None:
    call = parse(X, outputs=[("label", True)])
    with pytest.raises(OipError) as info:
        call.predict_header("p", task="regression")
    assert info.value.status == 400
    assert "values" in info.value.message


# --------------------------------------------------------------------------
# Responses decode with tritonclient


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_string_labels_come_back_as_bytes_tensors(binary: bool) -> None:
    call = parse(X, outputs=[("label", binary)], request_id="abc")
    headers, body = oip.infer_response(call, MODEL, *classify_reply([2, 0], ["cat", "dog", "émeu"]))
    result = decode(headers, body)
    assert result.get_output("label")["datatype"] == "BYTES"
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == ["émeu", "cat"]
    response = result.get_response()
    assert response["id"] == "abc"
    assert response["model_name"] == MODEL
    assert [o["name"] for o in response["outputs"]] == ["label"]
    assert (oip.HEADER_LENGTH in dict(headers)) is binary


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize(
    ("classes", "datatype"),
    [([3, 7, 11], "INT64"), ([0.5, 1.5, 2.5], "FP64"), ([False, True], "BOOL")],
)
def test_number_labels_keep_their_type(classes: list[Any], datatype: str, binary: bool) -> None:
    call = parse(X, outputs=[("label", binary)])
    headers, body = oip.infer_response(call, MODEL, *classify_reply([1, 0], classes))
    result = decode(headers, body)
    assert result.get_output("label")["datatype"] == datatype
    assert result.as_numpy("label").tolist() == [classes[1], classes[0]]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_probabilities_come_back_as_fp32_rows(binary: bool) -> None:
    call = parse(X, outputs=[("probabilities", binary), ("label", not binary)])
    reply = classify_reply([0, 2], ["a", "b", "c"], PROBA)
    result = decode(*oip.infer_response(call, MODEL, *reply))
    proba = result.as_numpy("probabilities")
    assert proba.dtype == np.float32
    np.testing.assert_array_equal(proba, PROBA)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["probabilities", "label"]
    assert [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")] == [
        "a",
        "c",
    ]


def test_all_outputs_by_default_in_binary_as_tritonclient_asks() -> None:
    call = parse(X)
    reply = classify_reply([0, 2], ["a", "b", "c"], PROBA)
    headers, body = oip.infer_response(call, MODEL, *reply)
    assert dict(headers)["Content-Type"] == "application/octet-stream"
    result = decode(headers, body)
    assert result.as_numpy("label").tolist() == [b"a", b"c"]
    np.testing.assert_array_equal(result.as_numpy("probabilities"), PROBA)
    assert "id" not in result.get_response()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("shape", [(2,), (2, 3)])
def test_regression_values_come_back_with_their_shape(shape: tuple[int, ...], binary: bool) -> None:
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 3
    call = parse(X, outputs=[("values", binary)])
    headers, body = oip.infer_response(call, MODEL, *regress_reply(values))
    result = decode(headers, body)
    assert result.get_output("values")["datatype"] == "FP32"
    out = result.as_numpy("values")
    assert out.shape == shape
    np.testing.assert_array_equal(out, values)


def test_a_json_response_is_plain_json() -> None:
    call = parse(X, outputs=[("values", False)], request_id="r")
    headers, body = oip.infer_response(call, MODEL, *regress_reply(np.array([0.1, 2.0])))
    assert headers == [("Content-Type", "application/json")]
    assert orjson.loads(body) == {
        "model_name": MODEL,
        "id": "r",
        "outputs": [{"name": "values", "datatype": "FP32", "shape": [2], "data": [0.1, 2.0]}],
    }


def test_label_of_a_regression_model_is_a_client_error() -> None:
    call = parse(X, outputs=[("label", False)])
    with pytest.raises(OipError) as info:
        oip.infer_response(call, MODEL, *regress_reply(np.array([1.0, 2.0])))
    assert info.value.status == 400


def test_a_class_index_outside_the_classes_is_a_server_error() -> None:
    call = parse(X, outputs=[("label", False)])
    with pytest.raises(OipError) as info:
        oip.infer_response(call, MODEL, *classify_reply([0, 5], ["a", "b"]))
    assert info.value.status == 500


# --------------------------------------------------------------------------
# Bad requests: 400 with a one-line message

GOOD_INPUT = {"name": "inputs", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}


def test_nan_is_refused() -> None:
    x = np.array([[1.0, np.nan]], dtype=np.float32)
    with pytest.raises(OipError, match="NaN"):
        parse(x)


def test_infinity_is_refused() -> None:
    x = np.array([[np.inf, 1.0]], dtype=np.float64)
    with pytest.raises(OipError, match="infinite"):
        parse(x, datatype="FP64")


def test_values_beyond_float32_are_refused() -> None:
    x = np.array([[1e39, 1.0]], dtype=np.float64)
    with pytest.raises(OipError, match="float32"):
        parse(x, datatype="FP64", binary=False)


def test_bad_json_is_refused() -> None:
    assert "JSON" in error_of(b'{"inputs": [').message


def test_a_json_array_request_is_refused() -> None:
    assert "object" in error_of(b"[1, 2]").message


def test_shape_must_match_the_data() -> None:
    message = error_of({"inputs": [{**GOOD_INPUT, "shape": [2, 2]}]}).message
    assert "4 values" in message and "2" in message


def test_shape_must_be_rows_by_columns() -> None:
    error_of({"inputs": [{**GOOD_INPUT, "shape": [1, 1, 2]}]})
    error_of({"inputs": [{**GOOD_INPUT, "shape": [0, 2], "data": []}]})


def test_ragged_nested_data_is_refused() -> None:
    error_of({"inputs": [{**GOOD_INPUT, "shape": [2, 2], "data": [[1, 2], [3]]}]})


def test_strings_in_data_are_refused() -> None:
    error_of({"inputs": [{**GOOD_INPUT, "data": ["1.0", "2.0"]}]})


def test_non_number_datatypes_are_refused() -> None:
    for datatype in ("BYTES", "BOOL", "BF16", "fp32"):
        assert "datatype" in error_of({"inputs": [{**GOOD_INPUT, "datatype": datatype}]}).message


def test_integer_datatypes_need_integers_in_range() -> None:
    error_of({"inputs": [{**GOOD_INPUT, "datatype": "INT32", "data": [1.5, 2]}]})
    error_of({"inputs": [{**GOOD_INPUT, "datatype": "UINT8", "data": [1, 300]}]})


def test_binary_size_must_match_the_shape() -> None:
    tail = np.zeros(3, dtype=np.float32).tobytes()
    inp = {"name": "inputs", "datatype": "FP32", "shape": [1, 2], "parameters": {}}
    inp["parameters"] = {"binary_data_size": len(tail)}
    assert "needs 8 bytes" in error_of({"inputs": [inp]}, tail).message


def test_binary_size_must_match_the_body() -> None:
    tail = np.zeros(2, dtype=np.float32).tobytes()
    inp = {**GOOD_INPUT, "parameters": {"binary_data_size": 16}}
    del inp["data"]
    error_of({"inputs": [inp]}, tail)


def test_header_length_beyond_the_body_is_refused() -> None:
    body = orjson.dumps({"inputs": [GOOD_INPUT]})
    with pytest.raises(OipError) as info:
        oip.parse_infer(MODEL, body, len(body) + 1)
    assert info.value.status == 400


def test_exactly_one_input_named_inputs() -> None:
    assert "2 inputs" in error_of({"inputs": [GOOD_INPUT, GOOD_INPUT]}).message
    assert "0 inputs" in error_of({"inputs": []}).message
    error_of({})
    with pytest.raises(OipError, match="unknown input 'x'"):
        parse(X, name="x")


def test_unknown_output_is_refused() -> None:
    with pytest.raises(OipError, match="unknown output 'scores'") as info:
        parse(X, outputs=[("scores", True)])
    assert info.value.status == 400


def test_an_output_requested_twice_is_refused() -> None:
    error_of({"inputs": [GOOD_INPUT], "outputs": [{"name": "label"}, {"name": "label"}]})


def test_the_classification_extension_is_refused() -> None:
    outputs = [{"name": "probabilities", "parameters": {"classification": 2}}]
    assert "classification" in error_of({"inputs": [GOOD_INPUT], "outputs": outputs}).message


def test_a_non_string_id_is_refused() -> None:
    error_of({"id": 7, "inputs": [GOOD_INPUT]})


def test_header_length_header_is_parsed() -> None:
    assert oip.parse_header_length(None) is None
    assert oip.parse_header_length(b"123") == 123
    with pytest.raises(OipError):
        oip.parse_header_length("-1")


# --------------------------------------------------------------------------
# Metadata and errors


def test_classifier_metadata_lists_label_and_probabilities() -> None:
    listing = {"model_id": MODEL, "task": "multiclass", "inputs": 4, "outputs": 3}
    meta = oip.model_metadata(MODEL, {**listing, "classes": ["a", "b", "c"]})
    assert meta == {
        "name": MODEL,
        "versions": [],
        "platform": "zmqnode",
        "inputs": [{"name": "inputs", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }
    binary = oip.model_metadata(MODEL, {**listing, "task": "binary", "classes": [0, 1]})
    assert binary["outputs"][0]["datatype"] == "INT64"
    assert binary["outputs"][1]["shape"] == [-1, 2]


@pytest.mark.parametrize(("k", "shape"), [(1, [-1]), (3, [-1, 3])])
def test_regression_metadata_lists_values(k: int, shape: list[int]) -> None:
    listing = {"model_id": MODEL, "task": "regression", "inputs": 5, "outputs": k}
    meta = oip.model_metadata(MODEL, listing)
    assert meta["outputs"] == [{"name": "values", "datatype": "FP32", "shape": shape}]
    assert meta["inputs"][0]["shape"] == [-1, 5]


def test_server_metadata_names_the_binary_extension() -> None:
    assert oip.server_metadata("1.2.3") == {
        "name": "zmqnode",
        "version": "1.2.3",
        "extensions": ["binary_tensor_data"],
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.NOT_FOUND, 404),
        (ErrorCode.BAD_REQUEST, 400),
        (ErrorCode.BAD_SHAPE, 400),
        (ErrorCode.BAD_INPUT, 400),
        (ErrorCode.MALFORMED, 400),
        (ErrorCode.TOO_LARGE, 413),
        (ErrorCode.BUSY, 503),
        (ErrorCode.UNAVAILABLE, 503),
        (ErrorCode.NOT_LEADER, 503),
        (ErrorCode.TIMEOUT, 504),
        (ErrorCode.INTERNAL, 500),
        (ErrorCode.TRAINING_FAILED, 500),
    ],
)
def test_error_codes_map_to_http_statuses(code: ErrorCode, status: int) -> None:
    assert oip.error_status(code) == status


def test_every_error_code_has_a_status() -> None:
    assert all(400 <= oip.error_status(code) < 600 for code in ErrorCode)


def test_error_body_is_the_specs_error_object() -> None:
    assert orjson.loads(oip.error_body('no model "x"')) == {"error": 'no model "x"'}
