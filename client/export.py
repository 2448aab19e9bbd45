"""Exporting a model to run outside the cluster (``python -m client export``).

Two formats:

- ``safetensors``: the model file itself (``models/<id>.bin``, docs/FORMAT.md),
  byte for byte, checked against the SHA-256 the cluster replicated.
- ``onnx``: the whole prediction of docs/FORMAT.md §5 as one ONNX graph, so
  any ONNX runtime turns raw rows into the answers ``Model.predict`` and
  ``Model.predict_proba`` give: the standardization, every layer, the output
  activation, the output de-standardization (regression) and the class labels
  are inside the graph.

The graph (opset ``ONNX_OPSET``; one input ``inputs``, float32 ``[N, inputs]``)::

    inputs ─ Sub(input.mean) ─ Div(input.std)                 (x - mean) / std
           ─ MatMul(layers.i.weight) ─ Add(layers.i.bias)     every layer
             ─ Relu | Tanh | Sigmoid                          every layer but the last
           → logits [N, outputs]
    regression:  logits ─ Mul(output.std) ─ Add(output.mean)   → values [N] (1 column)
                                                                 or [N, columns]
    binary:      Sigmoid(logits) → p;  Concat(1 - p, p)        → probabilities [N, 2]
                 Cast(logits > 0) ─ Gather(classes)           → label [N]
    multiclass:  Softmax(logits)                              → probabilities [N, classes]
                 ArgMax(logits) ─ Gather(classes)             → label [N]

The labels are decided from the logits exactly as ``Model.predict`` does
(``z > 0``, ``argmax z``), not from the probabilities: a sigmoid rounded to
exactly 0.5 in float32 would otherwise tie. Initializers carry the tensor names
of the ``.bin`` (``layers.0.weight``, ``input.mean``, ...). The model's
``metadata_props`` hold ``model_id`` (when known), ``task`` and ``zmqnode``,
the file's metadata document (FORMAT.md §3).

The ONNX graph does not refuse NaN or infinite inputs the way the cluster does
(BAD_INPUT): they propagate to the outputs.

``onnx`` is an optional dependency (``pip install 'zmqnode[onnx]'``), imported
only when an ONNX graph is built; the safetensors export needs nothing extra.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from client.api import Client, ClientError
from zmqnode.ml.model_file import Model
from zmqnode.transport.wire import ErrorCode, RequestType

if TYPE_CHECKING:
    import onnx

# Opset 13: Softmax works on one axis (before 13 it flattened the trailing
# dimensions, a trap for any later change of shape), and every runtime in use
# reads it (onnxruntime since 1.6, 2020; TensorRT, OpenVINO, onnxruntime-web).
# Nothing we need came later: MatMul, Add, Sub, Div, Mul, Relu, Tanh, Sigmoid,
# Softmax, ArgMax, Greater, Cast, Reshape, Concat and Gather are all in 13.
ONNX_OPSET = 13
FORMATS = ("onnx", "safetensors")
SUFFIX = {"onnx": ".onnx", "safetensors": ".bin"}
# FETCH chunk asked for: a node's default --fetch-chunk-bytes (it caps larger asks).
FETCH_CHUNK_BYTES = 1 << 20

INPUT_NAME = "inputs"
# Output names (sklearn-onnx calls its classifier outputs the same way).
LABEL = "label"
PROBABILITIES = "probabilities"
VALUES = "values"

_ACTIVATION_OP = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


class ExportError(ValueError):
    """The export cannot be made here (``onnx`` missing, a file not writable).
    A ValueError, so the CLI reports it as a local problem (exit code 2)."""


@dataclass(frozen=True)
class Exported:
    """What ``export_model`` wrote."""

    model_id: str
    format: str
    path: str
    size_bytes: int
    sha256: str  # of the written file
    outputs: tuple[str, ...]  # the ONNX output names; () for safetensors

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "format": self.format,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            **({"outputs": list(self.outputs)} if self.outputs else {}),
        }


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ExportError(
            "exporting to ONNX needs the onnx package: pip install 'zmqnode[onnx]' "
            "(or pip install onnx)"
        ) from None
    return onnx


def output_names(model: Model) -> tuple[str, ...]:
    """The graph's outputs for this model: ``(label, probabilities)`` or ``(values,)``."""
    return (VALUES,) if model.task == "regression" else (LABEL, PROBABILITIES)


def to_onnx(model: Model, *, model_id: str | None = None) -> onnx.ModelProto:
    """The ONNX model computing ``model``'s predictions from raw float32 rows.

    Raises ``ExportError`` if the ``onnx`` package is not installed. The
    result passes ``onnx.checker.check_model``.
    """
    onnx = _import_onnx()
    helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    nodes: list[Any] = []
    initializers: list[Any] = []

    def constant(name: str, value: Any) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    # (x - mean) / std in float32, the two roundings Model._standardized makes.
    a = node("Sub", [INPUT_NAME, constant("input.mean", model.input_mean)], "centered")
    a = node("Div", [a, constant("input.std", model.input_std)], "standardized")
    last = len(model.weights) - 1
    for i, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        # MatMul then Add, as mlp.output_logits (a @ W, then += b): Gemm would
        # fold the bias into the product and round differently.
        a = node("MatMul", [a, constant(f"layers.{i}.weight", w)], f"layers.{i}.product")
        a = node(
            "Add", [a, constant(f"layers.{i}.bias", b)], "logits" if i == last else f"layers.{i}.z"
        )
        if i < last:
            op = _ACTIVATION_OP[model.hidden_activation]
            a = node(op, [a], f"layers.{i}.activation")
    logits = a

    rows = "N"
    outputs: list[Any]
    if model.task == "regression":
        assert model.output_std is not None and model.output_mean is not None
        y = node("Mul", [logits, constant("output.std", model.output_std)], "scaled")
        columns = model.n_outputs
        if columns == 1:  # Model.predict gives one value per row for one column
            y = node("Add", [y, constant("output.mean", model.output_mean)], "values_2d")
            node("Reshape", [y, constant("flat", np.array([-1], np.int64))], VALUES)
            shape: list[Any] = [rows]
        else:
            node("Add", [y, constant("output.mean", model.output_mean)], VALUES)
            shape = [rows, columns]
        outputs = [helper.make_tensor_value_info(VALUES, TensorProto.FLOAT, shape)]
    else:
        classes, label_type = _class_tensor(onnx, model.classes)
        initializers.append(classes)
        if model.task == "binary":
            # Sigmoid is exact enough without the model's clip at ±40: beyond
            # it the two differ by less than 5e-18.
            p = node("Sigmoid", [logits], "p")
            q = node("Sub", [constant("one", np.float32(1.0)), p], "q")
            node("Concat", [q, p], PROBABILITIES, axis=1)
            positive = node("Greater", [logits, constant("zero", np.float32(0.0))], "positive")
            index = node("Cast", [positive], "index_2d", to=TensorProto.INT64)
            index = node("Reshape", [index, constant("flat", np.array([-1], np.int64))], "index")
        else:
            node("Softmax", [logits], PROBABILITIES, axis=1)
            # The first maximum, as numpy's argmax (select_last_index=0).
            index = node("ArgMax", [logits], "index", axis=1, keepdims=0)
        node("Gather", [classes.name, index], LABEL, axis=0)
        outputs = [
            helper.make_tensor_value_info(LABEL, label_type, [rows]),
            helper.make_tensor_value_info(
                PROBABILITIES, TensorProto.FLOAT, [rows, len(model.classes)]
            ),
        ]

    graph = helper.make_graph(
        nodes,
        f"zmqnode_{model_id}" if model_id else "zmqnode_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [rows, model.n_inputs])],
        outputs,
        initializer=initializers,
        doc_string=(
            f"zmqnode {model.task} MLP {'-'.join(map(str, model.layer_sizes))}: raw float32 "
            f"rows in ({INPUT_NAME}), standardized inside; outputs {', '.join(output_names(model))}"
        ),
    )
    opset = helper.make_opsetid("", ONNX_OPSET)
    proto = helper.make_model(graph, opset_imports=[opset], producer_name="zmqnode")
    # The oldest IR version that carries opset 13, so older runtimes load the
    # file too (make_model would stamp the newest this onnx package knows).
    proto.ir_version = helper.find_min_ir_version_for([opset])
    metadata = {"task": model.task, "zmqnode": json.dumps(model.metadata_json(), sort_keys=True)}
    if model_id:
        metadata["model_id"] = model_id
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _class_tensor(onnx: Any, classes: tuple[Any, ...]) -> tuple[Any, int]:
    """The ``classes`` initializer (one label per output unit) and its ONNX type."""
    TensorProto = onnx.TensorProto
    values = np.asarray(classes)
    if values.dtype.kind == "U":
        labels = [str(c).encode("utf-8") for c in classes]
        tensor = onnx.helper.make_tensor("classes", TensorProto.STRING, [len(labels)], labels)
        return tensor, TensorProto.STRING
    if values.dtype.kind == "b":
        values = values.astype(np.bool_)
    elif values.dtype.kind in "iu":
        values = values.astype(np.int64)
    else:  # float labels: kept in float64, as Model.predict returns them
        values = values.astype(np.float64)
    tensor = onnx.numpy_helper.from_array(values, "classes")
    return tensor, onnx.helper.np_dtype_to_tensor_dtype(values.dtype)


def onnx_bytes(model: Model, *, model_id: str | None = None) -> bytes:
    """``to_onnx`` serialized: the content of a ``.onnx`` file."""
    data: bytes = to_onnx(model, model_id=model_id).SerializeToString()
    return data


def fetch_model(client: Client, model_id: str, *, chunk_bytes: int = FETCH_CHUNK_BYTES) -> bytes:
    """The model's file (``models/<id>.bin``, docs/FORMAT.md), byte for byte.

    INFO first: it is linearizable (a model the cluster acknowledged is found)
    and names the file's ``size_bytes`` and ``sha256``. Then FETCH
    (docs/PROTOCOL.md §5.7) in chunks of at most ``chunk_bytes`` (a node caps
    them at its --fetch-chunk-bytes), from the node that answered INFO (the
    client's preferred node). The whole file is checked against the replicated
    SHA-256, so a damaged copy is never returned. Raises ``ClientError``
    NOT_FOUND if there is no such model (or that node lost its copy: ask
    another), MALFORMED if what arrived does not match; ``ClusterUnavailable``
    if no node answers.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    info = client.info(model_id)
    size, sha256 = info.get("size_bytes"), info.get("sha256")
    if not isinstance(size, int) or not isinstance(sha256, str):
        raise ClientError(ErrorCode.MALFORMED.value, "INFO reply names no size_bytes and sha256")
    data = bytearray()
    while len(data) < size:
        header = {
            "type": RequestType.FETCH.value,
            "model_id": model_id,
            "offset": len(data),
            "length": chunk_bytes,
        }
        reply = client.request(header)
        chunk = reply.blobs[0] if reply.blobs else b""
        if reply.header.get("sha256") != sha256 or reply.header.get("offset") != len(data):
            raise ClientError(
                ErrorCode.MALFORMED.value,
                f"FETCH of {model_id} at offset {len(data)} answered another file or offset",
                node=reply.node,
            )
        if not chunk:  # the file is shorter than its record says: never loop forever
            break
        data += chunk
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise ClientError(
            ErrorCode.MALFORMED.value,
            f"the fetched file of {model_id} ({len(data)} bytes) does not match the cluster's "
            f"record ({size} bytes, SHA-256 {sha256})",
        )
    return bytes(data)


def export_model(
    client: Client, model_id: str, format: str, path: str | os.PathLike[str] | None = None
) -> Exported:
    """Fetch ``model_id`` from the cluster and write it to ``path`` in ``format``.

    ``path`` defaults to ``<model_id>.onnx`` or ``<model_id>.bin`` in the
    current directory. Raises ``ExportError`` for an unknown format, a missing
    ``onnx`` package or a file that cannot be written; the client's errors
    (``ClientError`` NOT_FOUND, ``ClusterUnavailable``) as they are.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
    if format == "onnx":
        _import_onnx()  # fail before talking to the cluster
    target = os.fspath(path) if path is not None else model_id + SUFFIX[format]
    data = fetch_model(client, model_id)
    names: tuple[str, ...] = ()
    if format == "onnx":
        model = Model.from_bytes(data)
        data, names = onnx_bytes(model, model_id=model_id), output_names(model)
    try:
        with open(target, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise ExportError(f"{target}: cannot write ({exc.strerror or exc})") from None
    return Exported(model_id, format, target, len(data), hashlib.sha256(data).hexdigest(), names)
