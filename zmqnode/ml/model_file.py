"""The trained model and its ``.bin`` file (a safetensors file; see docs/FORMAT.md).

Why safetensors: any language can read it (8-byte header length, a JSON
header, raw little-endian tensors), and loading it never runs code, unlike
pickle. Our additions live in the header's ``__metadata__``: ``format_version``
and ``zmqnode`` (a JSON document: task, architecture, classes, training
options and metrics, a checksum of the tensors).

Bytes are deterministic: the same model always serializes to the same bytes.
The safetensors library writes ``__metadata__`` keys in hash-map order, which
changes from process to process, so ``to_bytes`` rewrites the header in a
fixed order (``__metadata__`` first with sorted keys, then tensors in data
order). The result is still a plain safetensors file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import safetensors.numpy

from .errors import BadInput, ModelFormatError
from .mlp import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATION, TASKS, apply_output, output_logits

FORMAT_NAME = "zmqnode.mlp"
FORMAT_VERSION = 1
METADATA_KEY = "zmqnode"
VERSION_KEY = "format_version"
# A header larger than this is not one of ours (ours are a few KB): refuse it
# before parsing rather than allocate whatever a corrupt length says.
MAX_HEADER_BYTES = 16 << 20


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float32, copy=True, order="C")
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Model:
    """An immutable trained network with what it needs to predict and describe itself.

    Construction validates consistency (shapes, finiteness, classes vs outputs)
    and raises ModelFormatError, so a Model in hand is always usable.
    """

    task: str
    hidden_activation: str
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    input_mean: np.ndarray
    input_std: np.ndarray
    classes: tuple[Any, ...] = ()
    output_mean: np.ndarray | None = None
    output_std: np.ndarray | None = None
    training: dict[str, Any] = field(default_factory=dict)
    created_by: dict[str, Any] = field(default_factory=dict)
    # Column names from the client's CSV header, when it had one: one per input
    # column, and the target column(s). Informative, except that a client may
    # use ``features`` to put a CSV's columns in the model's order.
    features: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "weights", tuple(_readonly(w) for w in self.weights))
            set_(self, "biases", tuple(_readonly(b) for b in self.biases))
            for name in ("input_mean", "input_std", "output_mean", "output_std"):
                if getattr(self, name) is not None:
                    set_(self, name, _readonly(getattr(self, name)))
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"tensors are not float arrays: {exc}") from None
        set_(self, "classes", tuple(self.classes))
        set_(self, "features", tuple(self.features))
        set_(self, "targets", tuple(self.targets))
        _validate(self)

    # -- description -------------------------------------------------------------

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[0], *(w.shape[1] for w in self.weights))

    @property
    def output_activation(self) -> str:
        return OUTPUT_ACTIVATION[self.task]

    @property
    def n_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        """Output columns of ``predict`` for regression; network outputs otherwise."""
        return self.layer_sizes[-1]

    def metadata_json(self) -> dict[str, Any]:
        """The ``zmqnode`` metadata document (JSON-ready dict), as stored in the file."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "architecture": {
                "layer_sizes": list(self.layer_sizes),
                "hidden_activation": self.hidden_activation,
                "output_activation": self.output_activation,
            },
            "classes": list(self.classes),
            "tensors_sha256": _tensors_sha256(self._tensors()),
            "training": self.training,
            "created_by": self.created_by,
            # Absent rather than empty: files without names stay byte-identical.
            **({"features": list(self.features)} if self.features else {}),
            **({"targets": list(self.targets)} if self.targets else {}),
        }

    def summary(self) -> dict[str, Any]:
        """A few fields for listings and replies (small: it is stored in the Raft log)."""
        out: dict[str, Any] = {
            "task": self.task,
            "layer_sizes": list(self.layer_sizes),
            "hidden_activation": self.hidden_activation,
            "output_activation": self.output_activation,
            "input_columns": self.n_inputs,
        }
        if self.classes:
            out["classes"] = list(self.classes)
        else:
            out["output_columns"] = self.n_outputs
        if self.features:
            out["features"] = list(self.features)
        if self.targets:
            out["targets"] = list(self.targets)
        for key in ("rounds_run", "best_round", "stopped_early", "final"):
            if key in self.training:
                out[key] = self.training[key]
        rounds = self.training.get("rounds")
        if isinstance(rounds, list) and rounds and isinstance(rounds[-1], dict):
            out["epochs"] = rounds[-1].get("epochs")
        return out

    # -- prediction --------------------------------------------------------------

    def _standardized(self, x: Any) -> np.ndarray:
        """Validated, standardized float32 rows (one allocation: cast and subtract fused)."""
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            raise BadInput(f"inputs must be numbers, got an array of {a.dtype}")
        if a.ndim == 1 and self.n_inputs == 1:
            a = a.reshape(-1, 1)
        if a.ndim != 2:
            raise BadInput(
                f"this model expects a 2-D array of rows with {self.n_inputs} input columns, "
                f"got shape {a.shape}"
            )
        if a.shape[1] != self.n_inputs:
            raise BadInput(f"this model expects {self.n_inputs} input columns, got {a.shape[1]}")
        # Same float32 arithmetic as training's standardize(): cast, subtract, divide.
        with np.errstate(over="ignore", invalid="ignore"):
            s = np.subtract(a, self.input_mean, dtype=np.float32)
        s /= self.input_std
        if not np.isfinite(s).all():
            row = int(np.argwhere(~np.isfinite(s))[0][0])
            raise BadInput(
                f"inputs contain NaN or infinite values (or values beyond float32), first at "
                f"row {row}"
            )
        return s

    def _outputs(self, x: Any) -> np.ndarray:
        s = self._standardized(x)
        return output_logits(list(self.weights), list(self.biases), self.hidden_activation, s)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, one column per class in ``classes`` order (float32)."""
        if not self.classes:
            raise BadInput("predict_proba needs a classification model; this one does regression")
        return self._proba(self._outputs(x))

    def classify(self, x: Any, proba: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """One forward pass: each row's class index into ``classes`` (int64) and,
        if ``proba``, the class probabilities (float32, rows x classes)."""
        if not self.classes:
            raise BadInput("classes need a classification model; this one does regression")
        z = self._outputs(x)
        return self._index(z), (self._proba(z) if proba else None)

    def _proba(self, z: np.ndarray) -> np.ndarray:
        p = apply_output(z, self.output_activation)
        if self.task == "binary":
            p = np.hstack([1.0 - p, p])
        return p

    def _index(self, z: np.ndarray) -> np.ndarray:
        if self.task == "binary":
            return (z[:, 0] > 0).astype(np.int64)
        return z.argmax(axis=1).astype(np.int64)

    def predict(self, x: Any) -> np.ndarray:
        """Class labels (original values) or regression values for a batch of rows.

        One forward pass for the whole batch. Regression returns shape (rows,)
        for one output column, (rows, columns) for several. Raises BadInput for
        a wrong width, a non-numeric or non-finite input.
        """
        z = self._outputs(x)
        if self.task == "regression":
            values = z * self.output_std + self.output_mean
            return values[:, 0] if values.shape[1] == 1 else values
        return np.asarray(self.classes)[self._index(z)]

    # -- bytes -------------------------------------------------------------------

    def _tensors(self) -> dict[str, np.ndarray]:
        tensors: dict[str, np.ndarray] = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            tensors[f"layers.{i}.weight"] = w
            tensors[f"layers.{i}.bias"] = b
        tensors["input.mean"] = self.input_mean
        tensors["input.std"] = self.input_std
        # Present exactly for regression models (_validate).
        if self.output_mean is not None and self.output_std is not None:
            tensors["output.mean"] = self.output_mean
            tensors["output.std"] = self.output_std
        return tensors

    def to_bytes(self) -> bytes:
        """The ``.bin`` file: deterministic (same model, same bytes)."""
        try:
            document = json.dumps(
                self.metadata_json(), sort_keys=True, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"training metadata is not JSON-serializable: {exc}") from None
        metadata = {METADATA_KEY: document, VERSION_KEY: str(FORMAT_VERSION)}
        tensors = {k: np.ascontiguousarray(v, dtype="<f4") for k, v in self._tensors().items()}
        return _canonical_header(safetensors.numpy.save(tensors, metadata=metadata))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Model:
        """Parse and fully validate a model file; raises ModelFormatError saying what is wrong."""
        data = bytes(data)
        header = _read_header(data)
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or METADATA_KEY not in meta:
            raise ModelFormatError(
                "not a zmqnode model: the safetensors metadata has no 'zmqnode' entry"
            )
        version = meta.get(VERSION_KEY)
        if version != str(FORMAT_VERSION):
            raise ModelFormatError(
                f"unsupported model format version {version!r}; this zmqnode reads version "
                f"{FORMAT_VERSION}"
            )
        try:
            doc = json.loads(meta[METADATA_KEY])
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"the 'zmqnode' metadata is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ModelFormatError("the 'zmqnode' metadata must be a JSON object")
        if doc.get("format") != FORMAT_NAME or doc.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"the 'zmqnode' metadata says format {doc.get('format')!r} version "
                f"{doc.get('format_version')!r}; expected {FORMAT_NAME!r} version {FORMAT_VERSION}"
            )
        try:
            tensors = safetensors.numpy.load(data)
        except Exception as exc:  # SafetensorError and friends: the tensor table is corrupt
            raise ModelFormatError(f"corrupt tensor data: {exc}") from None
        return _model_from(doc, tensors)


def _tensors_sha256(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of every tensor's little-endian bytes, concatenated in tensor-name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    return h.hexdigest()


def _canonical_header(raw: bytes) -> bytes:
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    ordered: dict[str, Any] = {}
    if "__metadata__" in header:
        ordered["__metadata__"] = dict(sorted(header.pop("__metadata__").items()))
    for name in sorted(header, key=lambda k: (header[k]["data_offsets"][0], k)):
        ordered[name] = header[name]
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data on 8 bytes
    return len(text).to_bytes(8, "little") + text + raw[8 + n :]


def _read_header(data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise ModelFormatError(f"not a model file: {len(data)} bytes is too short")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise ModelFormatError(
            f"not a model file: the first 8 bytes announce a {n}-byte header (garbage or "
            "another format)"
        )
    if 8 + n > len(data):
        raise ModelFormatError(
            f"truncated model file: the header needs {8 + n} bytes, the file has {len(data)}"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ModelFormatError("not a model file: the header is not safetensors JSON") from None
    if not isinstance(header, dict):
        raise ModelFormatError("not a model file: the safetensors header is not a JSON object")
    return header


def _model_from(doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> Model:
    arch = doc.get("architecture")
    task = doc.get("task")
    if task not in TASKS:
        raise ModelFormatError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if not isinstance(arch, dict):
        raise ModelFormatError("metadata has no 'architecture' object")
    sizes = arch.get("layer_sizes")
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)
    ):
        raise ModelFormatError(
            f"architecture.layer_sizes must be >= 2 positive ints, got {sizes!r}"
        )
    if arch.get("output_activation") != OUTPUT_ACTIVATION[task]:
        raise ModelFormatError(
            f"task {task!r} needs output activation {OUTPUT_ACTIVATION[task]!r}, the file says "
            f"{arch.get('output_activation')!r}"
        )
    hidden_activation = arch.get("hidden_activation")
    if not isinstance(hidden_activation, str):
        raise ModelFormatError(
            f"architecture.hidden_activation must be a string, got {hidden_activation!r}"
        )
    n_layers = len(sizes) - 1
    expected = [f"layers.{i}.{p}" for i in range(n_layers) for p in ("weight", "bias")]
    expected += ["input.mean", "input.std"]
    if task == "regression":
        expected += ["output.mean", "output.std"]
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise ModelFormatError(f"missing tensor(s): {', '.join(missing)}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ModelFormatError(f"unexpected tensor(s): {', '.join(extra)}")
    for name in expected:
        if tensors[name].dtype != np.float32:
            raise ModelFormatError(
                f"tensor {name} is {tensors[name].dtype}; expected float32 (F32)"
            )
    for i in range(n_layers):
        want = (sizes[i], sizes[i + 1])
        got = tensors[f"layers.{i}.weight"].shape
        if got != want:
            raise ModelFormatError(
                f"layers.{i}.weight has shape {list(got)}; layer_sizes {sizes} need {list(want)}"
            )
    checksum = doc.get("tensors_sha256")
    if checksum != _tensors_sha256({k: tensors[k] for k in expected}):
        raise ModelFormatError("the tensors do not match tensors_sha256: the file is corrupt")
    classes = doc.get("classes", [])
    if not isinstance(classes, list):
        raise ModelFormatError("'classes' must be a list")
    training = doc.get("training", {})
    created_by = doc.get("created_by", {})
    if not isinstance(training, dict) or not isinstance(created_by, dict):
        raise ModelFormatError("'training' and 'created_by' must be objects")
    names = {key: doc.get(key, []) for key in ("features", "targets")}
    for key, value in names.items():
        if not isinstance(value, list):
            raise ModelFormatError(f"'{key}' must be a list of column names")
    return Model(
        task=task,
        hidden_activation=hidden_activation,
        weights=tuple(tensors[f"layers.{i}.weight"] for i in range(n_layers)),
        biases=tuple(tensors[f"layers.{i}.bias"] for i in range(n_layers)),
        input_mean=tensors["input.mean"],
        input_std=tensors["input.std"],
        classes=tuple(classes),
        output_mean=tensors.get("output.mean"),
        output_std=tensors.get("output.std"),
        training=training,
        created_by=created_by,
        features=tuple(names["features"]),
        targets=tuple(names["targets"]),
    )


def _validate(m: Model) -> None:
    """Everything a Model must satisfy to predict correctly; raises ModelFormatError."""
    if m.task not in TASKS:
        raise ModelFormatError(f"unknown task {m.task!r}; expected one of {', '.join(TASKS)}")
    if m.hidden_activation not in HIDDEN_ACTIVATIONS:
        raise ModelFormatError(
            f"unknown hidden activation {m.hidden_activation!r}; expected one of "
            f"{', '.join(HIDDEN_ACTIVATIONS)}"
        )
    if not m.weights or len(m.weights) != len(m.biases):
        raise ModelFormatError(
            f"a model needs as many biases as weights (at least one layer), got "
            f"{len(m.weights)} weights and {len(m.biases)} biases"
        )
    for i, (w, b) in enumerate(zip(m.weights, m.biases, strict=True)):
        if w.ndim != 2 or b.ndim != 1:
            raise ModelFormatError(
                f"layer {i}: weight must be 2-D and bias 1-D, got shapes {list(w.shape)} and "
                f"{list(b.shape)}"
            )
        if b.shape[0] != w.shape[1]:
            raise ModelFormatError(
                f"layer {i}: weight has {w.shape[1]} outputs but bias has {b.shape[0]} values"
            )
        if i and w.shape[0] != m.weights[i - 1].shape[1]:
            raise ModelFormatError(
                f"layer {i}: weight takes {w.shape[0]} inputs but layer {i - 1} has "
                f"{m.weights[i - 1].shape[1]} outputs"
            )
        for name, a in (("weight", w), ("bias", b)):
            if not np.isfinite(a).all():
                raise ModelFormatError(f"layers.{i}.{name} contains NaN or infinite values")
    n_in, n_out = m.weights[0].shape[0], m.weights[-1].shape[1]
    _check_norm("input", m.input_mean, m.input_std, n_in)
    check_column_names("features", m.features, n_in)
    want_targets = n_out if m.task == "regression" else 1
    check_column_names("targets", m.targets, want_targets)
    if m.task == "regression":
        if m.classes:
            raise ModelFormatError("a regression model has no classes")
        if m.output_mean is None or m.output_std is None:
            raise ModelFormatError("a regression model needs output.mean and output.std")
        _check_norm("output", m.output_mean, m.output_std, n_out)
        return
    if m.output_mean is not None or m.output_std is not None:
        raise ModelFormatError("a classification model has no output normalization")
    k = len(m.classes)
    if m.task == "binary" and k != 2:
        raise ModelFormatError(f"a binary model needs exactly 2 classes, got {k}")
    if k < 2:
        raise ModelFormatError(f"a multiclass model needs at least 2 classes, got {k}")
    want = 1 if m.task == "binary" else k
    if n_out != want:
        raise ModelFormatError(
            f"a {m.task} model with {k} classes needs {want} network output(s), the last layer "
            f"has {n_out}"
        )
    kinds = {type(c) for c in m.classes}
    if len(kinds) != 1 or not kinds <= {int, float, str, bool}:
        raise ModelFormatError(
            f"classes must be numbers or strings of one type, got {list(m.classes)[:10]}"
        )
    if len(set(m.classes)) != k:
        raise ModelFormatError(f"classes must be distinct, got {list(m.classes)[:10]}")


# A column name longer than this is not a name (a whole row pasted by mistake).
MAX_COLUMN_NAME_CHARS = 256


def check_column_names(what: str, names: tuple[Any, ...], width: int) -> None:
    """``names``: empty, or ``width`` distinct non-empty strings; raises ModelFormatError."""
    if not names:
        return
    if len(names) != width:
        raise ModelFormatError(f"{what} names {len(names)} columns; the model has {width}")
    for name in names:
        if not isinstance(name, str) or not name or len(name) > MAX_COLUMN_NAME_CHARS:
            raise ModelFormatError(
                f"{what}: each column name must be a string of 1 to {MAX_COLUMN_NAME_CHARS} "
                f"characters, got {name!r:.80}"
            )
    if len(set(names)) != len(names):
        raise ModelFormatError(f"{what}: column names must be distinct, got {list(names)[:10]}")


def _check_norm(name: str, mean: np.ndarray, std: np.ndarray, width: int) -> None:
    if mean.shape != (width,) or std.shape != (width,):
        raise ModelFormatError(
            f"{name}.mean and {name}.std must have shape [{width}], got {list(mean.shape)} and "
            f"{list(std.shape)}"
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ModelFormatError(f"{name}.mean/{name}.std must be finite with std > 0")
