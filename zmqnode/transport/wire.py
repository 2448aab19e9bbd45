"""The one framing used on every zmqnode socket (see docs/PROTOCOL.md).

A message body is a list of frames::

    [header JSON] [blob 0] [blob 1] ...

The header is one JSON object (orjson) with at least ``v`` (protocol
version), ``type`` and ``id`` (request id). Bulk data (arrays, model files,
Raft entry payloads) travels in the blob frames as raw bytes and is only
*described* in the header; it never goes through JSON.

On ROUTER sockets the body is preceded by an envelope: the routing frames
ROUTER adds, then one empty delimiter frame (the zguide "REQ envelope", so a
plain REQ socket in any language can talk to a node). ``split_envelope`` and
``join_envelope`` handle it; ``encode``/``decode`` only see the body.

Everything here is pure: no sockets, no clock. Errors are typed:
``decode`` and ``array_from_frame`` raise ``ProtocolError`` with a stable
``ErrorCode`` that a node copies straight into its ERROR reply.
"""

from __future__ import annotations

import array
import enum
import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, overload

import orjson

if TYPE_CHECKING:
    import numpy as np

PROTOCOL_VERSION = 1

# The header holds scalars and short lists only (bulk data is in frames), so
# 1 MiB is generous: a LIST reply with ~3000 models fits. A peer that sends
# more is broken or hostile, and we refuse before parsing the JSON.
DEFAULT_MAX_HEADER_BYTES = 1 << 20

# Request ids are echoed in every reply and kept in the idempotency record, so
# they are bounded. 128 characters fits a UUID with a generous prefix.
MAX_ID_LENGTH = 128

# An upper bound for one array frame when the caller has no better one.
# Nodes should pass their configured limit (TOO_LARGE above it).
DEFAULT_MAX_ARRAY_BYTES = 256 << 20

# Arrays may have at most this many dimensions; ours have 1 or 2.
MAX_ARRAY_NDIM = 8

# Dtypes allowed on the wire, always little-endian: numpy's name -> numpy's
# little-endian type string. Strings, not numpy dtypes: this module imports
# numpy only when an array is built or read, so a one-row PREDICT from the
# command line (``rows_to_frame``, ``read_rows``) never pays for it.
ALLOWED_DTYPES: Mapping[str, str] = {
    "float32": "<f4",
    "float64": "<f8",
    "int32": "<i4",
    "int64": "<i8",
}
# The same types for the standard library's ``array`` (native byte order;
# "i" is 4 bytes on every platform CPython supports).
_ARRAY_TYPECODES: Mapping[str, str] = {"float32": "f", "float64": "d", "int32": "i", "int64": "q"}


class ErrorCode(str, enum.Enum):
    """Stable error codes carried in ERROR replies (``code``).

    The string values are part of the protocol: never rename one.
    """

    MALFORMED = "MALFORMED"  # frames are not a message (bad JSON, no header)
    BAD_REQUEST = "BAD_REQUEST"  # a header field is missing or has the wrong type
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"  # ``v`` is not one we speak
    UNKNOWN_TYPE = "UNKNOWN_TYPE"  # ``type`` is not a message this peer serves
    BAD_SHAPE = "BAD_SHAPE"  # array shape/size inconsistent (frame, rows, columns)
    BAD_INPUT = "BAD_INPUT"  # values unusable: NaN/inf, bad option, dtype not allowed
    NOT_FOUND = "NOT_FOUND"  # no such model (checked linearizably)
    TOO_LARGE = "TOO_LARGE"  # header, array or file above the node's limit
    NOT_LEADER = "NOT_LEADER"  # a write reached a follower that knows no leader
    TIMEOUT = "TIMEOUT"  # the node gave up waiting (commit, trainers); retry same id
    BUSY = "BUSY"  # the node sheds load; retry later
    UNAVAILABLE = "UNAVAILABLE"  # no quorum / shutting down; retry later or elsewhere
    INTERNAL = "INTERNAL"  # a bug on the node; the message says what
    TRAINING_FAILED = "TRAINING_FAILED"  # training ran and failed (diverged, ...)
    CONFLICT = "CONFLICT"  # the membership changed since the request's base_index

    @property
    def retryable(self) -> bool:
        """True when the same request (same id) may succeed if sent again."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {ErrorCode.NOT_LEADER, ErrorCode.TIMEOUT, ErrorCode.BUSY, ErrorCode.UNAVAILABLE}
)


class Status(str, enum.Enum):
    """The ``status`` field of every reply."""

    OK = "OK"
    ERROR = "ERROR"
    REDIRECT = "REDIRECT"
    PROGRESS = "PROGRESS"  # not an answer: a long request reports how it goes


class RequestType(str, enum.Enum):
    """Client request types served on a node's client (ROUTER) socket."""

    TRAIN = "TRAIN"
    PREDICT = "PREDICT"
    LIST = "LIST"
    INFO = "INFO"
    STATUS = "STATUS"
    IMPORT = "IMPORT"
    FETCH = "FETCH"  # node to node: a chunk of a model file (docs/PROTOCOL.md §5.7)
    MEMBERS = "MEMBERS"  # the membership and each member's progress (§5.8)
    MEMBER_CHANGE = "MEMBER_CHANGE"  # promote, demote, remove a member, add a learner (§5.9)
    JOIN = "JOIN"  # a new node asks to be added as a learner (§5.10)


# Reply type when the request's own type could not be read.
UNKNOWN_REQUEST_TYPE = "UNKNOWN"


class ProtocolError(Exception):
    """A message that cannot be accepted.

    ``code`` is the ``ErrorCode`` to put in the ERROR reply, ``message`` a
    sentence a person can act on. ``header`` is whatever part of the header
    could be parsed (``None`` if none), so the reply can still echo the
    request's ``id`` and ``type``.
    """

    def __init__(self, code: ErrorCode, message: str, *, header: dict | None = None):
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.header = header


# A frame to send: bytes, or a buffer (a large array) that zmq sends without a copy.
Frame: TypeAlias = bytes | memoryview
# encode's blobs: all bytes (then so are its frames), or frames of either kind.
_Blob = TypeVar("_Blob", bytes, Frame)


# --------------------------------------------------------------------------
# Envelope (ROUTER sockets)


def split_envelope(frames: Sequence[Any]) -> tuple[list[bytes], list[Any]]:
    """Split ``[routing..., b"", body...]`` into (routing frames, body).

    Everything before the first empty frame is routing; the header frame is
    never empty (it is a JSON object), so the split is unambiguous.
    Raises ``ProtocolError(MALFORMED)`` when there is no delimiter.
    """
    for i, frame in enumerate(frames):
        if len(_buffer(frame)) == 0:
            return [_to_bytes(f) for f in frames[:i]], list(frames[i + 1 :])
    raise ProtocolError(
        ErrorCode.MALFORMED,
        "no empty delimiter frame: send [b'', header, blobs...] from a DEALER, or use a REQ socket",
    )


def join_envelope(routing: Sequence[bytes], body: Sequence[bytes]) -> list[bytes]:
    """The frames a ROUTER sends: routing frames, the delimiter, then the body."""
    return [*routing, b"", *body]


# --------------------------------------------------------------------------
# Header + blobs


def encode(header: Mapping[str, Any], blobs: Sequence[_Blob] = ()) -> list[bytes | _Blob]:
    """Frames for one message body: the JSON header, then each blob as is.

    ``v`` is filled in when absent. Raises ``ValueError`` if the header lacks
    ``type`` or ``id`` (a bug in the sender, not something to put on the wire).
    """
    if "type" not in header or "id" not in header:
        raise ValueError(f"header needs 'type' and 'id': {dict(header)!r}")
    if "v" not in header:
        header = {"v": PROTOCOL_VERSION, **header}
    frames: list[bytes | _Blob] = [orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)]
    frames += blobs
    return frames


def decode(
    frames: Sequence[Any],
    *,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    require_id: bool = True,
) -> tuple[dict[str, Any], list[bytes]]:
    """Parse a message body (no envelope) into ``(header, blobs)``.

    Checks: there is a header frame, it is at most ``max_header_bytes``, it is
    a JSON object, ``v`` equals ``PROTOCOL_VERSION``, ``type`` is a non-empty
    string and ``id`` a string of at most ``MAX_ID_LENGTH`` characters,
    non-empty when ``require_id`` (client requests). An ERROR reply may carry
    an empty ``id`` (answer to a request whose id could not be read).

    Raises ``ProtocolError`` with MALFORMED, TOO_LARGE, UNSUPPORTED_VERSION or
    BAD_REQUEST. The blobs are returned as ``bytes``, unchecked: their meaning
    is in the header.
    """
    if not frames:
        raise ProtocolError(ErrorCode.MALFORMED, "empty message: no header frame")
    raw = _buffer(frames[0])
    if len(raw) > max_header_bytes:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"header frame is {len(raw)} bytes, limit is {max_header_bytes}",
        )
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError(
            ErrorCode.MALFORMED,
            f"header must be a JSON object, got {_json_kind(header)}",
        )
    version = header.get("v")
    if "v" not in header:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"header has no protocol version 'v' (this peer speaks v={PROTOCOL_VERSION})",
            header=header,
        )
    if not _is_int(version) or version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version!r} is not supported (this peer speaks "
            f"v={PROTOCOL_VERSION})",
            header=header,
        )
    mtype = header.get("type")
    if not isinstance(mtype, str) or not mtype:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            "header field 'type' is missing or not a non-empty string",
            header=header,
        )
    mid = header.get("id")
    if not isinstance(mid, str):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "header field 'id' is missing or not a string", header=header
        )
    if len(mid) > MAX_ID_LENGTH:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"request id is {len(mid)} characters, limit is {MAX_ID_LENGTH}",
            header=header,
        )
    if not mid and require_id and header.get("status") != Status.ERROR.value:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "request id 'id' is empty", header=header)
    return header, [_to_bytes(f) for f in frames[1:]]


# --------------------------------------------------------------------------
# Arrays


@overload
def array_to_frame(
    a: Any, frame: int = 0, *, copy: Literal[True] = True
) -> tuple[dict[str, Any], bytes]: ...
@overload
def array_to_frame(
    a: Any, frame: int = 0, *, copy: bool
) -> tuple[dict[str, Any], bytes | memoryview]: ...
def array_to_frame(
    a: Any, frame: int = 0, *, copy: bool = True
) -> tuple[dict[str, Any], bytes | memoryview]:
    """Describe and serialize an array for blob frame number ``frame``.

    Returns ``({"dtype": ..., "shape": [...], "frame": frame}, raw bytes)``;
    the bytes are C-order little-endian. Raises ``ValueError`` if the dtype
    is not in ``ALLOWED_DTYPES`` (convert before sending).

    ``copy=False`` returns a memoryview of the array's own buffer when it is
    already contiguous little-endian (a large training chunk is then sent
    without a copy); the caller must not modify the array until it is sent.
    """
    import numpy as np

    arr = np.asarray(a)
    name = arr.dtype.name  # byte order is not part of the name; we convert below
    if name not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {arr.dtype} cannot be sent; allowed: {', '.join(ALLOWED_DTYPES)}")
    wire = np.ascontiguousarray(arr, dtype=ALLOWED_DTYPES[name])
    desc = {"dtype": name, "shape": [int(n) for n in wire.shape], "frame": int(frame)}
    if not copy and wire.size:
        return desc, wire.data.cast("B")
    return desc, wire.tobytes()


def array_from_frame(desc: Any, blob: Any, *, max_bytes: int, name: str = "array") -> np.ndarray:
    """Rebuild an array from its descriptor and blob, checking everything.

    ``desc`` is the header's descriptor (``dtype``, ``shape``, optional
    ``frame``); ``name`` is used in error messages. The array is a read-only
    view of ``blob`` (copy it to modify).

    Raises ``ProtocolError``: BAD_REQUEST (descriptor not an object, missing
    fields), BAD_INPUT (dtype not allowed), BAD_SHAPE (bad shape, byte count
    differs from the frame's), TOO_LARGE (declared size above ``max_bytes``).
    """
    import numpy as np

    dtype_name, shape, buf = _checked_frame(desc, blob, max_bytes, name)
    try:
        return np.frombuffer(buf, dtype=ALLOWED_DTYPES[dtype_name]).reshape(shape)
    except ValueError as exc:  # a huge dimension next to a 0: numpy's own limit
        raise ProtocolError(
            ErrorCode.BAD_SHAPE, f"array '{name}' has shape {shape!r}: {exc}"
        ) from None


def _checked_frame(
    desc: Any, blob: Any, max_bytes: int, name: str
) -> tuple[str, list[int], memoryview | bytes]:
    """``array_from_frame``'s checks; returns the dtype name, the shape and the bytes."""
    if not isinstance(desc, dict):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"array '{name}' descriptor must be an object with dtype and shape, "
            f"got {_json_kind(desc)}",
        )
    dtype_name = desc.get("dtype")
    if not isinstance(dtype_name, str) or dtype_name not in ALLOWED_DTYPES:
        raise ProtocolError(
            ErrorCode.BAD_INPUT,
            f"array '{name}' has dtype {dtype_name!r}; allowed: {', '.join(ALLOWED_DTYPES)}",
        )
    shape = desc.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_ARRAY_NDIM
        or not all(_is_int(n) and n >= 0 for n in shape)
    ):
        raise ProtocolError(
            ErrorCode.BAD_SHAPE,
            f"array '{name}' shape must be a list of at most {MAX_ARRAY_NDIM} "
            f"non-negative integers, got {shape!r}",
        )
    declared = math.prod(shape) * int(ALLOWED_DTYPES[dtype_name][2:])  # "<f4": 4 bytes
    if declared > max_bytes:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"array '{name}' declares shape {shape} {dtype_name} = {declared} bytes, "
            f"limit is {max_bytes}",
        )
    buf = _buffer(blob)
    if len(buf) != declared:
        raise ProtocolError(
            ErrorCode.BAD_SHAPE,
            f"array '{name}' declares shape {shape} {dtype_name} = {declared} bytes "
            f"but the frame has {len(buf)} bytes",
        )
    return dtype_name, shape, buf


def read_array(
    header: Mapping[str, Any], blobs: Sequence[bytes], key: str, *, max_bytes: int
) -> np.ndarray:
    """The array described by ``header[key]`` (its ``frame`` indexes ``blobs``).

    Same errors as ``array_from_frame``, plus BAD_REQUEST when the descriptor
    is missing or ``frame`` is not a valid blob index.
    """
    desc, blob = _described_frame(header, blobs, key)
    return array_from_frame(desc, blob, max_bytes=max_bytes, name=key)


def _described_frame(
    header: Mapping[str, Any], blobs: Sequence[bytes], key: str
) -> tuple[dict[str, Any], bytes]:
    """``read_array``'s lookup: the descriptor under ``key`` and the blob it names."""
    desc = header.get(key)
    if desc is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"missing array descriptor '{key}'")
    if not isinstance(desc, dict):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"array '{key}' descriptor must be an object, got {_json_kind(desc)}",
        )
    frame = desc.get("frame", 0)
    if not _is_int(frame) or not 0 <= frame < len(blobs):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"array '{key}' refers to frame {frame!r} but the message has "
            f"{len(blobs)} binary frame(s)",
        )
    return desc, blobs[frame]


# Small tables without numpy: importing it costs a command-line client more CPU
# than everything else a one-row PREDICT does.


def rows_to_frame(rows: Sequence[Sequence[float]], frame: int = 0) -> tuple[dict[str, Any], bytes]:
    """``array_to_frame`` of a rows x columns float32 table given as lists of
    Python numbers, without numpy; the same descriptor and bytes. Raises
    ``ValueError`` if the rows differ in length."""
    width = len(rows[0]) if rows else 0
    if any(len(row) != width for row in rows):
        raise ValueError("rows must all have the same number of columns")
    values = array.array("f", [value for row in rows for value in row])
    if sys.byteorder == "big":
        values.byteswap()
    return {"dtype": "float32", "shape": [len(rows), width], "frame": int(frame)}, values.tobytes()


def read_rows(
    header: Mapping[str, Any], blobs: Sequence[bytes], key: str, *, max_bytes: int
) -> Any:
    """``read_array(...).tolist()`` without numpy: the array as nested lists of
    Python numbers (a number for a 0-d array). Same checks and errors."""
    desc, blob = _described_frame(header, blobs, key)
    dtype_name, shape, buf = _checked_frame(desc, blob, max_bytes, key)
    values = array.array(_ARRAY_TYPECODES[dtype_name])
    values.frombytes(buf)
    if sys.byteorder == "big":
        values.byteswap()
    return _nested(values.tolist(), shape)


def _nested(flat: list[Any], shape: Sequence[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nested(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


# --------------------------------------------------------------------------
# Replies


def ok_reply(req_header: Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """Header of an OK reply to ``req_header`` (echoes its ``type`` and ``id``)."""
    return {**_reply_base(req_header, Status.OK), **fields}


def error_reply(
    req_header: Mapping[str, Any] | None,
    code: ErrorCode | str,
    message: str,
    **fields: Any,
) -> dict[str, Any]:
    """Header of an ERROR reply. ``req_header`` may be partial or ``None``
    (e.g. ``ProtocolError.header``); ``id`` is then echoed as ``""``."""
    code_value = code.value if isinstance(code, ErrorCode) else str(code)
    return {
        **_reply_base(req_header, Status.ERROR),
        "code": code_value,
        "message": message,
        **fields,
    }


def progress_reply(req_header: Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """Header of a PROGRESS message: the request is still being worked on."""
    return {**_reply_base(req_header, Status.PROGRESS), **fields}


def redirect_reply(
    req_header: Mapping[str, Any] | None, leader_address: str, **fields: Any
) -> dict[str, Any]:
    """Header of a REDIRECT reply: "ask ``leader_address`` (host:port) instead"."""
    return {**_reply_base(req_header, Status.REDIRECT), "leader": leader_address, **fields}


def _reply_base(req_header: Mapping[str, Any] | None, status: Status) -> dict[str, Any]:
    req = req_header or {}
    mtype = req.get("type")
    mid = req.get("id")
    return {
        "v": PROTOCOL_VERSION,
        "type": mtype if isinstance(mtype, str) and mtype else UNKNOWN_REQUEST_TYPE,
        "id": mid if isinstance(mid, str) and len(mid) <= MAX_ID_LENGTH else "",
        "status": status.value,
    }


# --------------------------------------------------------------------------
# Helpers


def _is_int(x: Any) -> bool:
    # JSON true/false decode to bool, which is an int subclass in Python.
    return isinstance(x, int) and not isinstance(x, bool)


def _buffer(frame: Any) -> memoryview | bytes:
    if isinstance(frame, bytes):
        return frame
    # zmq.Frame, bytearray, memoryview: anything with the buffer protocol.
    return memoryview(frame).cast("B")


def _to_bytes(frame: Any) -> bytes:
    if isinstance(frame, bytes):
        return frame
    fast = getattr(frame, "bytes", None)  # zmq.Frame
    if isinstance(fast, bytes):
        return fast
    return bytes(memoryview(frame))


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for typ, text in kinds.items():
        if isinstance(value, typ):
            return text
    return "a number" if isinstance(value, (int, float)) else type(value).__name__
