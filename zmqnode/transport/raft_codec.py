"""Raft messages <-> wire frames (docs/PROTOCOL.md, "Raft messages").

One ``Message`` becomes one message body in the common framing::

    [header JSON] [entry 0 data] ... [entry n-1 data] [snapshot data]?

The header carries every scalar field of the ``Message``, the entries'
``index``/``term``/``kind`` and the snapshot's ``index``/``term``; payloads
(``Entry.data``, ``Snapshot.data``) are the binary frames, in that order.

Decoding is all-or-nothing: any unknown type, missing or mistyped field,
wrong frame count or out-of-place entries/snapshot raises ``ProtocolError``
and no ``Message`` is built. A peer's garbage can cost a dropped message,
never a corrupted log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zmqnode.raft.messages import Entry, EntryKind, Message, MessageType, Snapshot
from zmqnode.transport.wire import (
    DEFAULT_MAX_HEADER_BYTES,
    ErrorCode,
    ProtocolError,
    decode,
    encode,
)

# ``type`` of a Raft message on the wire is this prefix + ``MessageType.value``,
# so Raft and client types can never be confused ("raft.append" vs "TRAIN").
RAFT_TYPE_PREFIX = "raft."

# PUB/SUB topic frame in front of a heartbeat body (SUB subscribes to it).
HEARTBEAT_TOPIC = b"raft"

# Raft messages have no request id; the wire's ``id`` field is this.
RAFT_MESSAGE_ID = ""

# Largest integer we accept in a header (terms, indexes, contexts): the log
# and storage formats store them as unsigned 64-bit, JSON peers as int64.
_MAX_INT = (1 << 63) - 1

_INT_FIELDS = ("term", "log_index", "log_term", "commit", "index", "reject_hint", "context")
_BOOL_FIELDS = ("reject", "force")
_STR_FIELDS = ("src", "dst", "read_ctx")

_TYPES_BY_WIRE = {RAFT_TYPE_PREFIX + t.value: t for t in MessageType}
_KINDS_BY_WIRE = {k.value: k for k in EntryKind}


def is_raft_type(wire_type: str) -> bool:
    """True if a decoded header's ``type`` names a Raft message."""
    return wire_type.startswith(RAFT_TYPE_PREFIX)


def encode_raft(msg: Message) -> list[bytes]:
    """The frames of ``msg`` (a message body, no envelope or topic).

    Raises ``ValueError`` for a message ``decode_raft`` would refuse
    (entries outside APPEND, a SNAPSHOT without snapshot, ...): that is a
    bug in the sender and must not reach a peer.
    """
    _check_structure(msg, ValueError)
    for name in _INT_FIELDS:
        _check_int(getattr(msg, name), name)
    for e in msg.entries:
        _check_int(e.index, "entry index")
        _check_int(e.term, "entry term")
    if msg.snapshot is not None:
        _check_int(msg.snapshot.index, "snapshot index")
        _check_int(msg.snapshot.term, "snapshot term")
    header: dict[str, Any] = {
        "type": RAFT_TYPE_PREFIX + msg.type.value,
        "id": RAFT_MESSAGE_ID,
    }
    for name in (*_STR_FIELDS, *_INT_FIELDS, *_BOOL_FIELDS):
        header[name] = getattr(msg, name)
    header["entries"] = [
        {"index": e.index, "term": e.term, "kind": e.kind.value} for e in msg.entries
    ]
    blobs = [e.data for e in msg.entries]
    if msg.snapshot is None:
        header["snapshot"] = None
    else:
        header["snapshot"] = {
            "index": msg.snapshot.index,
            "term": msg.snapshot.term,
            "membership": msg.snapshot.membership.decode("utf-8"),
        }
        blobs.append(msg.snapshot.data)
    return encode(header, blobs)


def decode_raft(
    frames: Sequence[Any], *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> Message:
    """Parse a message body produced by ``encode_raft``.

    Raises ``ProtocolError``: the ``decode`` errors, UNKNOWN_TYPE for a type
    that is not a Raft message, BAD_REQUEST for a missing/mistyped field, a
    frame count that does not match the entries and snapshot, or entries and
    snapshots where the message type does not allow them.
    """
    header, blobs = decode(frames, max_header_bytes=max_header_bytes, require_id=False)
    mtype = _TYPES_BY_WIRE.get(header["type"])
    if mtype is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"{header['type']!r} is not a Raft message type",
            header=header,
        )
    fields: dict[str, Any] = {"type": mtype}
    for name in _STR_FIELDS:
        fields[name] = _field(header, name, str)
    for name in _INT_FIELDS:
        fields[name] = _field(header, name, int)
    for name in _BOOL_FIELDS:
        fields[name] = _field(header, name, bool)

    raw_entries = header.get("entries")
    if not isinstance(raw_entries, list):
        raise _bad(header, "field 'entries' must be a list")
    raw_snapshot = header.get("snapshot", _MISSING)
    if raw_snapshot is _MISSING:
        raise _bad(header, "field 'snapshot' is missing (null when absent)")
    expected = len(raw_entries) + (raw_snapshot is not None)
    if len(blobs) != expected:
        raise _bad(
            header,
            f"{len(raw_entries)} entries and {'a' if raw_snapshot is not None else 'no'} "
            f"snapshot need {expected} binary frame(s), got {len(blobs)}",
        )

    entries = []
    for i, raw in enumerate(raw_entries):
        where = f"entries[{i}]"
        if not isinstance(raw, dict):
            raise _bad(header, f"{where} must be an object")
        raw_kind = raw.get("kind")
        kind = _KINDS_BY_WIRE.get(raw_kind) if isinstance(raw_kind, str) else None
        if kind is None:
            raise _bad(
                header, f"{where}.kind {raw.get('kind')!r} is not one of {list(_KINDS_BY_WIRE)}"
            )
        entries.append(
            Entry(
                index=_field(raw, "index", int, where=where, header=header),
                term=_field(raw, "term", int, where=where, header=header),
                kind=kind,
                data=blobs[i],
            )
        )
    fields["entries"] = tuple(entries)

    if raw_snapshot is None:
        fields["snapshot"] = None
    elif isinstance(raw_snapshot, dict):
        membership = raw_snapshot.get("membership", "")
        if not isinstance(membership, str):
            raise _bad(header, "snapshot field 'membership' must be a string")
        fields["snapshot"] = Snapshot(
            index=_field(raw_snapshot, "index", int, where="snapshot", header=header),
            term=_field(raw_snapshot, "term", int, where="snapshot", header=header),
            data=blobs[-1],
            membership=membership.encode("utf-8"),
        )
    else:
        raise _bad(header, "field 'snapshot' must be an object or null")

    msg = Message(**fields)
    _check_structure(msg, lambda text: _bad(header, text))
    return msg


def _check_structure(msg: Message, error: Any) -> None:
    """Invariants every Raft message on the wire satisfies (Raft §5.3, §7)."""
    if msg.entries and msg.type is not MessageType.APPEND:
        raise error(f"{msg.type.value} message carries {len(msg.entries)} entries; only append may")
    if (msg.snapshot is not None) != (msg.type is MessageType.SNAPSHOT):
        raise error(
            "snapshot message without a snapshot"
            if msg.type is MessageType.SNAPSHOT
            else f"{msg.type.value} message carries a snapshot; only snapshot may"
        )
    # AppendEntries carries entries prevLogIndex+1, prevLogIndex+2, ... (§5.3).
    for offset, entry in enumerate(msg.entries, start=1):
        if entry.index != msg.log_index + offset:
            raise error(
                f"append entries must be consecutive after log_index {msg.log_index}: "
                f"entry {offset - 1} has index {entry.index}, expected {msg.log_index + offset}"
            )
        if not isinstance(entry.data, bytes):
            raise error(f"entry {entry.index} data must be bytes, got {type(entry.data).__name__}")
    if msg.snapshot is not None and not isinstance(msg.snapshot.data, bytes):
        raise error(f"snapshot data must be bytes, got {type(msg.snapshot.data).__name__}")


_MISSING = object()


def _check_int(value: Any, label: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INT:
        raise ValueError(f"{label} must be an integer in 0..{_MAX_INT}, got {value!r}")


def _field(
    obj: dict[str, Any],
    name: str,
    typ: type,
    *,
    where: str = "",
    header: dict[str, Any] | None = None,
) -> Any:
    label = f"{where}.{name}" if where else name
    value = obj.get(name, _MISSING)
    if value is _MISSING:
        raise _bad(header if header is not None else obj, f"field '{label}' is missing")
    ok = (
        isinstance(value, bool)
        if typ is bool
        else isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INT
        if typ is int
        else isinstance(value, typ)
    )
    if not ok:
        expected = {bool: "a boolean", int: f"an integer in 0..{_MAX_INT}", str: "a string"}[typ]
        raise _bad(
            header if header is not None else obj,
            f"field '{label}' must be {expected}, got {value!r}",
        )
    return value


def _bad(header: dict[str, Any], text: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"raft message: {text}", header=header)
