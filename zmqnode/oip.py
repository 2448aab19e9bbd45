"""The Open Inference Protocol (KServe v2 / Triton HTTP) mapped onto PREDICT.

Pure functions, no sockets: the HTTP server hands this module a request body
and gets back a PREDICT header and blobs; it hands it the PREDICT reply and
gets back the HTTP headers and body. There is one serving path: an HTTP infer
*becomes* a PREDICT (docs/PROTOCOL.md §5.3) and goes through the same
micro-batcher, the same linearizable model lookup and the same checks as a
ZeroMQ request, so both paths give the same answers and the same errors.

Specifications: ``kserve/open-inference-protocol``
``specification/protocol/inference_rest.md`` (tensors, metadata, errors) and
Triton's binary tensor data extension (``Inference-Header-Content-Length``,
parameters ``binary_data_size``, ``binary_data``, ``binary_data_output``).
Checked against what ``tritonclient.http`` sends and decodes.

Mapping (names as in ``client/export.py``'s ONNX graph and docs/FORMAT.md §5)::

    v2                                     PREDICT
    input  "inputs"  FP32 [-1, n]          inputs  float32 [rows, n]   (blob 0)
      (FP16/FP64/INT*/UINT* accepted,        converted to float32; a shape
       JSON data flat or nested, or          [n] is one row)
       binary with binary_data_size)
    output "label"   [-1]                  outputs int64 [rows] = index into
      BYTES | INT64 | FP64 | BOOL,           ``classes`` (mapped back to the
      the classes' type                      labels here)
    output "probabilities" FP32 [-1, k]    proba: true -> probabilities
                                             float32 [rows, k]
    output "values"  FP32 [-1] or [-1, k]  outputs float32 [rows] or [rows, k]
    request "id"                           echoed in the response (the PREDICT
                                             id is the caller's own)
    ErrorCode                              HTTP status (``error_status``)

Decisions:

- The one input must be named ``inputs``, as model metadata says: a client
  that sends another name is most likely talking to the wrong model, and
  Triton refuses unknown input names too.
- Outputs not listed in the request means all of them (the spec). Whether a
  model has ``probabilities`` depends on its task, which parsing does not
  know: ``InferCall.predict_header(task=...)`` asks for them when the caller
  knows the model classifies.
- A binary response is sent as ``application/octet-stream`` (it is not JSON;
  Triton does the same); an all-JSON one as ``application/json``.
- ``BUSY`` (an admission bound of the whole node, docs/PROTOCOL.md §9c) is 503,
  not 429: RFC 9110 §15.6.4 gives 503 to "temporary overload", RFC 6585 §4
  gives 429 to one user sending too many requests, which we do not track.
- Other request parameters (``priority``, ``timeout``, sequences, custom ones)
  are ignored; the ``classification`` and shared-memory parameters are refused
  (400), as this server does not offer those extensions.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from zmqnode.transport import wire
from zmqnode.transport.wire import ErrorCode

# Tensor names, the same as client/export.py's ONNX graph (docs/FORMAT.md §5):
# a model exported to ONNX and served by Triton answers under the same names.
INPUT_NAME = "inputs"
LABEL = "label"
PROBABILITIES = "probabilities"
VALUES = "values"
OUTPUT_NAMES = (LABEL, PROBABILITIES, VALUES)

# The binary tensor data extension's HTTP header: the length of the JSON part
# of the body; binary tensors follow it.
HEADER_LENGTH = "Inference-Header-Content-Length"

SERVER_NAME = "zmqnode"
PLATFORM = "zmqnode"
EXTENSIONS = ("binary_tensor_data",)

# Input datatypes we accept -> numpy little-endian type. All are converted to
# float32 (what the models compute in). BOOL, BYTES and BF16 are not numbers
# a model can take (BF16 has no numpy type).
INPUT_DATATYPES: Mapping[str, str] = {
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}

_U32 = struct.Struct("<I")


class OipError(Exception):
    """A request that cannot be served, as an HTTP ``status`` and a one-line
    ``message`` for the ``{"error": ...}`` body (``error_body``)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """One entry of the request's ``outputs``: a name and whether its data
    comes back binary (``binary_data``, else the request's default)."""

    name: str
    binary: bool


# eq=False: the rows are an array, and two calls are never compared.
@dataclass(frozen=True, slots=True, eq=False)
class InferCall:
    """A parsed ``POST /v2/models/{model_id}/infer``.

    ``rows`` is the input as float32 ``[rows, columns]`` (finite, C order);
    ``inputs`` its PREDICT descriptor (frame 0) and ``blobs`` the PREDICT
    blobs (its bytes); ``request_id`` the request's ``id`` (``None`` when
    absent), echoed in the response; ``outputs`` the outputs asked for, in
    request order (empty: all of the model's, each binary when
    ``binary_output``, the ``binary_data_output`` parameter).
    """

    model_id: str
    request_id: str | None
    rows: np.ndarray
    inputs: dict[str, Any]
    blobs: list[bytes]
    outputs: tuple[RequestedOutput, ...]
    binary_output: bool

    def proba(self, task: str | None = None) -> bool:
        """Whether PREDICT must send probabilities: ``probabilities`` was
        listed, or no output was and ``task`` (the model's, when the caller
        knows it) is a classification."""
        if self.outputs:
            return any(o.name == PROBABILITIES for o in self.outputs)
        return task is not None and task != "regression"

    def predict_header(self, request_id: str, task: str | None = None) -> dict[str, Any]:
        """The PREDICT request header for this call (blobs: ``self.blobs``).

        ``request_id`` is the PREDICT's own id (the HTTP ``id`` need not be
        unique). ``task`` is the model's (``"binary"``, ``"multiclass"``,
        ``"regression"``) if the caller knows it: then outputs the model does
        not have raise ``OipError`` 400 before any work is done, and "all
        outputs" includes the probabilities of a classifier.
        """
        if task is not None:
            check_outputs(self, task)
        return {
            "v": wire.PROTOCOL_VERSION,
            "type": wire.RequestType.PREDICT.value,
            "id": request_id,
            "model_id": self.model_id,
            "inputs": dict(self.inputs),
            "proba": self.proba(task),
        }


def check_outputs(call: InferCall, task: str) -> None:
    """Raise ``OipError`` 400 if ``call`` lists an output a ``task`` model lacks."""
    have = (VALUES,) if task == "regression" else (LABEL, PROBABILITIES)
    for out in call.outputs:
        if out.name not in have:
            raise OipError(
                400,
                f"model {call.model_id} ({task}) has no output '{out.name}'; "
                f"its outputs: {', '.join(have)}",
            )


def parse_header_length(value: bytes | str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header's value as an int
    (``None`` when absent); ``OipError`` 400 if it is not a non-negative int."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not text.strip().isdigit():
        raise OipError(400, f"{HEADER_LENGTH} must be a non-negative integer, got {text!r:.40}")
    return int(text)


# --------------------------------------------------------------------------
# Requests


def parse_infer(model_id: str, body: bytes, header_length: int | None) -> InferCall:
    """Parse an infer request body: JSON, or (``header_length`` given, the
    ``Inference-Header-Content-Length`` value) that many bytes of JSON
    followed by the binary tensors.

    Raises ``OipError`` 400 with a one-line message for anything wrong: bad
    JSON, not exactly one input or not named ``inputs``, a datatype that is
    not a number, a shape that is not ``[rows, n]`` or ``[n]`` or does not
    match the data, binary sizes that do not add up, NaN or infinity, values
    beyond float32, an unknown or repeated output, an unsupported parameter.
    """
    raw = memoryview(body).cast("B")
    if header_length is None:
        json_part, tail = raw, raw[len(raw) :]
    else:
        if not 0 <= header_length <= len(raw):
            raise OipError(
                400,
                f"{HEADER_LENGTH} is {header_length} but the body has {len(raw)} bytes",
            )
        json_part, tail = raw[:header_length], raw[header_length:]
    try:
        request = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise OipError(400, f"request is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise OipError(400, f"request must be a JSON object, got {_kind(request)}")

    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise OipError(400, f"request 'id' must be a string, got {_kind(request_id)}")
    params = _parameters(request, "request")
    binary_output = params.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise OipError(400, "parameter 'binary_data_output' must be true or false")

    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        count = f"{len(inputs)} inputs" if isinstance(inputs, list) else _kind(inputs)
        raise OipError(
            400,
            f"model {model_id} takes exactly one input '{INPUT_NAME}' (FP32 [-1, columns]), "
            f"got {count}",
        )
    rows = _read_input(inputs[0], tail)
    outputs = _requested_outputs(request.get("outputs"), binary_output)

    # _read_input made rows C-contiguous float32: the PREDICT descriptor directly.
    desc = {"dtype": "float32", "shape": [int(rows.shape[0]), int(rows.shape[1])], "frame": 0}
    blob = rows.tobytes()
    return InferCall(
        model_id=model_id,
        request_id=request_id,
        rows=rows,
        inputs=desc,
        blobs=[blob],
        outputs=outputs,
        binary_output=binary_output,
    )


def _parameters(obj: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    params = obj.get("parameters", {})
    if not isinstance(params, dict):
        raise OipError(400, f"{where} 'parameters' must be an object, got {_kind(params)}")
    return params


def _read_input(tensor: Any, tail: memoryview) -> np.ndarray:
    """The one input tensor as finite float32 ``[rows, columns]``."""
    if not isinstance(tensor, dict):
        raise OipError(400, f"input must be an object, got {_kind(tensor)}")
    name = tensor.get("name")
    if name != INPUT_NAME:
        raise OipError(400, f"unknown input {name!r}: the model's input is '{INPUT_NAME}'")
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in INPUT_DATATYPES:
        raise OipError(
            400,
            f"input '{INPUT_NAME}' has datatype {datatype!r}; "
            f"allowed: {', '.join(INPUT_DATATYPES)}",
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        raise OipError(
            400,
            f"input '{INPUT_NAME}' shape must be [rows, columns] or [columns] of positive "
            f"integers, got {shape!r:.80}",
        )
    count = math.prod(shape)
    dtype = np.dtype(INPUT_DATATYPES[datatype])
    params = _parameters(tensor, f"input '{INPUT_NAME}'")
    if "shared_memory_region" in params:
        raise OipError(400, "shared memory inputs are not supported")
    size = params.get("binary_data_size")
    if size is not None:
        values = _binary_input(tensor, size, tail, count, dtype, datatype)
    else:
        if len(tail):
            raise OipError(
                400,
                f"the body has {len(tail)} bytes after the JSON but no input has "
                "'binary_data_size'",
            )
        values = _json_input(tensor.get("data"), count, dtype, datatype)
    with np.errstate(over="ignore", invalid="ignore"):
        rows = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, shape[-1])
    # One check after the cast: NaN and infinity stay so, and a value beyond
    # float32's range became infinite. (Integers are all within the range.)
    if values.dtype.kind == "f" and rows.size and not np.isfinite(rows).all():
        if not np.isfinite(values).all():
            raise OipError(400, f"input '{INPUT_NAME}' holds NaN or infinite values")
        raise OipError(400, f"input '{INPUT_NAME}' holds values beyond float32's range (±3.4e38)")
    return rows


def _binary_input(
    tensor: Mapping[str, Any],
    size: Any,
    tail: memoryview,
    count: int,
    dtype: np.dtype,
    datatype: str,
) -> np.ndarray:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise OipError(400, f"'binary_data_size' must be a non-negative integer, got {size!r:.40}")
    if "data" in tensor:
        raise OipError(400, f"input '{INPUT_NAME}' has both 'data' and 'binary_data_size'")
    if size != len(tail):
        raise OipError(
            400,
            f"input '{INPUT_NAME}' declares binary_data_size {size} but "
            f"{len(tail)} bytes follow the JSON header",
        )
    if size != count * dtype.itemsize:
        raise OipError(
            400,
            f"input '{INPUT_NAME}' shape {list(tensor['shape'])} {datatype} needs "
            f"{count * dtype.itemsize} bytes, binary_data_size is {size}",
        )
    return np.frombuffer(tail, dtype=dtype)


def _json_input(data: Any, count: int, dtype: np.dtype, datatype: str) -> np.ndarray:
    if not isinstance(data, list):
        raise OipError(400, f"input '{INPUT_NAME}' needs 'data' (a list) or 'binary_data_size'")
    try:
        values = np.array(data)
    except (ValueError, OverflowError):
        raise OipError(
            400, f"input '{INPUT_NAME}' data must be numbers in lists of equal length"
        ) from None
    integer = dtype.kind in "iu"
    if values.size and values.dtype.kind not in ("iu" if integer else "iuf"):
        what = "integers" if integer else "numbers"
        raise OipError(400, f"input '{INPUT_NAME}' data must be {what} for datatype {datatype}")
    if values.size != count:
        raise OipError(
            400,
            f"input '{INPUT_NAME}' shape says {count} values, data has {values.size}",
        )
    if integer and values.size:
        info = np.iinfo(dtype)
        if values.min() < info.min or values.max() > info.max:
            raise OipError(400, f"input '{INPUT_NAME}' data is out of range for {datatype}")
    return values.reshape(-1)


def _requested_outputs(outputs: Any, binary_default: bool) -> tuple[RequestedOutput, ...]:
    if outputs is None:
        return ()
    if not isinstance(outputs, list):
        raise OipError(400, f"'outputs' must be a list, got {_kind(outputs)}")
    chosen: list[RequestedOutput] = []
    for out in outputs:
        if not isinstance(out, dict):
            raise OipError(400, f"each requested output must be an object, got {_kind(out)}")
        name = out.get("name")
        if name not in OUTPUT_NAMES:
            raise OipError(
                400, f"unknown output {name!r:.80}; outputs are {', '.join(OUTPUT_NAMES)}"
            )
        if any(o.name == name for o in chosen):
            raise OipError(400, f"output '{name}' is requested twice")
        params = _parameters(out, f"output '{name}'")
        if "classification" in params:
            raise OipError(400, "the classification extension is not supported")
        if "shared_memory_region" in params:
            raise OipError(400, "shared memory outputs are not supported")
        binary = params.get("binary_data", binary_default)
        if not isinstance(binary, bool):
            raise OipError(400, f"output '{name}' parameter 'binary_data' must be true or false")
        chosen.append(RequestedOutput(name, binary))
    return tuple(chosen)


# --------------------------------------------------------------------------
# Responses


def infer_response(
    call: InferCall, model_id: str, reply_fields: Mapping[str, Any], blobs: Sequence[bytes]
) -> tuple[list[tuple[str, str]], bytes]:
    """The HTTP response headers and body for a PREDICT OK reply.

    ``reply_fields`` and ``blobs`` are the PREDICT reply's (``outputs``,
    ``classes``, ``probabilities``). Only the requested outputs are sent
    (all the model has when none were listed); class indices become the
    labels. The headers hold ``Content-Type`` and, when an output is binary,
    ``Inference-Header-Content-Length`` (the server adds ``Content-Length``).

    Raises ``OipError`` 400 when an output the model does not have was asked
    for (``label`` of a regression model...), 500 when the reply is not what
    PREDICT sends (a bug).
    """
    tensors = _reply_tensors(call, reply_fields, blobs)
    outputs: list[dict[str, Any]] = []
    binary_parts: list[bytes] = []
    for name, datatype, array in tensors:
        binary = _is_binary(call, name)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = _tensor_bytes(datatype, array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            binary_parts.append(raw)
        else:
            entry["data"] = array.ravel().tolist() if datatype == "BYTES" else array.ravel()
        outputs.append(entry)
    response: dict[str, Any] = {"model_name": model_id}
    if call.request_id is not None:
        response["id"] = call.request_id
    response["outputs"] = outputs
    head = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not binary_parts:
        return [("Content-Type", "application/json")], head
    headers = [("Content-Type", "application/octet-stream"), (HEADER_LENGTH, str(len(head)))]
    return headers, b"".join([head, *binary_parts])


def _is_binary(call: InferCall, name: str) -> bool:
    for out in call.outputs:
        if out.name == name:
            return out.binary
    return call.binary_output


def _reply_tensors(
    call: InferCall, fields: Mapping[str, Any], blobs: Sequence[bytes]
) -> list[tuple[str, str, np.ndarray]]:
    """The outputs to send, in order: ``(name, datatype, array)``."""
    try:
        values = _reply_array(fields, blobs, "outputs")
        classes = fields.get("classes")
        if classes is None:
            available = {VALUES: ("FP32", values.astype(np.float32, copy=False))}
        else:
            datatype, labels = _labels(classes, values)
            available = {LABEL: (datatype, labels)}
            if "probabilities" in fields:
                proba = _reply_array(fields, blobs, "probabilities")
                available[PROBABILITIES] = ("FP32", proba.astype(np.float32, copy=False))
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise OipError(500, f"model {call.model_id}: unexpected PREDICT reply: {exc!r}") from None
    if not call.outputs:
        return [(name, *available[name]) for name in OUTPUT_NAMES if name in available]
    chosen = []
    for out in call.outputs:
        if out.name not in available:
            task = "regression" if classes is None else "classification"
            if out.name == PROBABILITIES and classes is not None:
                raise OipError(500, f"model {call.model_id}: PREDICT sent no probabilities")
            raise OipError(
                400,
                f"model {call.model_id} ({task}) has no output '{out.name}'; "
                f"its outputs: {', '.join(n for n in OUTPUT_NAMES if n in available)}",
            )
        chosen.append((out.name, *available[out.name]))
    return chosen


def _reply_array(fields: Mapping[str, Any], blobs: Sequence[bytes], key: str) -> np.ndarray:
    """An array of the node's own PREDICT reply (serving.py built it, so the
    wire checks a request needs are not repeated: this runs once per answer)."""
    desc = fields[key]
    dtype = _REPLY_DTYPES[desc["dtype"]]
    return np.frombuffer(blobs[desc.get("frame", 0)], dtype=dtype).reshape(desc["shape"])


_REPLY_DTYPES = {name: np.dtype(code) for name, code in wire.ALLOWED_DTYPES.items()}


# classes (as a tuple) -> (datatype, numpy table): a model's labels are asked
# for on every answer. Bounded: cleared when it grows past a few hundred models.
_LABEL_TABLES: dict[tuple[Any, ...], tuple[str, np.ndarray]] = {}
_MAX_LABEL_TABLES = 256


def _labels(classes: Any, index: np.ndarray) -> tuple[str, np.ndarray]:
    """Class indices -> labels, and the labels' v2 datatype."""
    if not isinstance(classes, list) or not classes:
        raise ValueError(f"'classes' must be a non-empty list, got {classes!r:.80}")
    if index.ndim != 1 or index.dtype.kind not in "iu":
        raise ValueError(f"class indices must be integers [rows], got {index.dtype} {index.shape}")
    key = tuple(classes)
    known = _LABEL_TABLES.get(key)
    if known is None:
        datatype = label_datatype(classes)
        known = datatype, np.array(classes, dtype=_LABEL_NUMPY[datatype])
        if len(_LABEL_TABLES) >= _MAX_LABEL_TABLES:
            _LABEL_TABLES.clear()
        _LABEL_TABLES[key] = known
    datatype, table = known
    try:
        # take() checks the bounds in C; negative indices must not wrap around
        if index.size and int(index.min()) < 0:
            raise IndexError
        return datatype, table.take(index)
    except IndexError:
        raise ValueError(f"a class index is outside 0..{len(classes) - 1}") from None


_LABEL_NUMPY: Mapping[str, Any] = {
    "BYTES": object,
    "BOOL": np.bool_,
    "INT64": np.int64,
    "FP64": np.float64,
}


def label_datatype(classes: Sequence[Any]) -> str:
    """The ``label`` output's datatype for these class labels: BYTES for
    strings, BOOL for booleans, INT64 for integers, FP64 for other numbers
    (the types ``client/export.py`` gives the ONNX ``label``)."""
    if all(isinstance(c, str) for c in classes):
        return "BYTES"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return "FP64"
    raise ValueError(f"classes must be all strings or all numbers, got {list(classes)[:5]!r}")


def _tensor_bytes(datatype: str, array: np.ndarray) -> bytes:
    """Binary tensor data: little-endian, row-major; BYTES elements as a
    4-byte little-endian length then the UTF-8 bytes; BOOL one byte each."""
    if datatype == "BYTES":
        parts = []
        for label in array.ravel().tolist():
            raw = label.encode("utf-8")
            parts.append(_U32.pack(len(raw)))
            parts.append(raw)
        return b"".join(parts)
    wire_type = {"BOOL": "|b1", "INT64": "<i8", "FP64": "<f8", "FP32": "<f4"}[datatype]
    return np.ascontiguousarray(array, dtype=wire_type).tobytes()


# --------------------------------------------------------------------------
# Metadata


def model_metadata(model_id: str, listing: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /v2/models/{model_id}``: name, versions (none: models are
    immutable, a new model is a new id), platform, and the input and output
    tensors with ``-1`` for the batch dimension. ``listing`` is the model's
    LIST/INFO object (docs/PROTOCOL.md §5.4)."""
    n_inputs = int(listing["inputs"])
    outputs: list[dict[str, Any]]
    classes = listing.get("classes")
    if listing.get("task") == "regression" or not classes:
        k = int(listing.get("outputs", 1))
        shape = [-1] if k == 1 else [-1, k]
        outputs = [{"name": VALUES, "datatype": "FP32", "shape": shape}]
    else:
        outputs = [
            {"name": LABEL, "datatype": label_datatype(classes), "shape": [-1]},
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(classes)]},
        ]
    return {
        "name": model_id,
        "versions": [],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, n_inputs]}],
        "outputs": outputs,
    }


def server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``: the server's name, version and protocol extensions."""
    return {"name": SERVER_NAME, "version": version, "extensions": list(EXTENSIONS)}


# --------------------------------------------------------------------------
# Errors

_STATUS: Mapping[ErrorCode, int] = {
    ErrorCode.MALFORMED: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.BAD_SHAPE: 400,
    ErrorCode.BAD_INPUT: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.TOO_LARGE: 413,
    # 503, not 429: see the module docstring (the node's bound, not a user's rate).
    ErrorCode.BUSY: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.NOT_LEADER: 503,
    ErrorCode.TIMEOUT: 504,
}


def error_status(code: ErrorCode) -> int:
    """The HTTP status for a PREDICT/INFO error code (500 for INTERNAL and any
    code an infer cannot legitimately cause)."""
    return _STATUS.get(code, 500)


def error_body(message: str) -> bytes:
    """The spec's error response body: ``{"error": message}``."""
    return orjson.dumps({"error": message})


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
