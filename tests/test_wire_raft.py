"""Raft messages on the wire: round trips, binary payloads, strict decoding."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqnode.raft.messages import BROADCAST, Entry, EntryKind, Message, MessageType, Snapshot
from zmqnode.transport.raft_codec import decode_raft, encode_raft, is_raft_type
from zmqnode.transport.wire import ErrorCode, ProtocolError, encode

MAX_INT = (1 << 63) - 1

ints = st.integers(min_value=0, max_value=MAX_INT)
small = st.integers(min_value=0, max_value=1000)
node_ids = st.one_of(st.just(BROADCAST), st.text(max_size=20))


@st.composite
def messages(draw) -> Message:
    mtype = draw(st.sampled_from(list(MessageType)))
    entries: tuple[Entry, ...] = ()
    log_index = draw(ints)
    if mtype is MessageType.APPEND:
        log_index = draw(small)
        n = draw(st.integers(min_value=0, max_value=5))
        entries = tuple(
            Entry(
                index=log_index + 1 + i,
                term=draw(ints),
                kind=draw(st.sampled_from(list(EntryKind))),
                data=draw(st.binary(max_size=40)),
            )
            for i in range(n)
        )
    snapshot = None
    if mtype is MessageType.SNAPSHOT:
        snapshot = Snapshot(
            index=draw(ints),
            term=draw(ints),
            data=draw(st.binary(max_size=100)),
            membership=draw(st.text(max_size=60)).encode("utf-8"),
        )
    return Message(
        type=mtype,
        src=draw(node_ids),
        dst=draw(node_ids),
        term=draw(ints),
        log_index=log_index,
        log_term=draw(ints),
        entries=entries,
        commit=draw(ints),
        reject=draw(st.booleans()),
        index=draw(ints),
        reject_hint=draw(ints),
        context=draw(ints),
        read_ctx=draw(st.text(max_size=20)),
        force=draw(st.booleans()),
        snapshot=snapshot,
    )


def append(**overrides) -> Message:
    fields = dict(
        type=MessageType.APPEND,
        src="127.0.0.1:9000",
        dst="127.0.0.1:9001",
        term=3,
        log_index=4,
        log_term=2,
        entries=(Entry(5, 3, EntryKind.NOOP), Entry(6, 3, EntryKind.COMMAND, b"\x00model")),
        commit=4,
    )
    fields.update(overrides)
    return Message(**fields)


def header_of(msg: Message) -> dict:
    return orjson.loads(encode_raft(msg)[0])


def refused(header: dict, blobs: list[bytes]) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_raft([orjson.dumps(header), *blobs])
    return info.value


@pytest.mark.fuzz
@given(messages())
def test_every_message_round_trips(msg) -> None:
    assert decode_raft(encode_raft(msg)) == msg


@pytest.mark.fuzz
@settings(max_examples=50)
@given(messages())
def test_payloads_travel_as_binary_frames_never_in_the_json(msg) -> None:
    frames = encode_raft(msg)
    expected = [e.data for e in msg.entries] + ([msg.snapshot.data] if msg.snapshot else [])
    assert frames[1:] == expected
    header = orjson.loads(frames[0])
    assert all("data" not in e for e in header["entries"])
    # the membership (small JSON text) is a header field; the state is a frame
    assert header["snapshot"] is None or set(header["snapshot"]) == {"index", "term", "membership"}


def test_wire_type_is_prefixed_so_it_cannot_be_a_client_type() -> None:
    header = header_of(append())
    assert header["type"] == "raft.append" and is_raft_type(header["type"])
    assert header["v"] == 1 and header["id"] == ""
    assert not is_raft_type("TRAIN")


def test_snapshot_data_is_the_last_frame_and_the_membership_in_the_header() -> None:
    membership = b'{"credentials":{},"learners":[],"voters":["a:1","b:2"]}'
    snap = Snapshot(9, 4, b"state", membership)
    msg = Message(MessageType.SNAPSHOT, "a:1", "b:2", 5, snapshot=snap)
    frames = encode_raft(msg)
    assert frames[1:] == [b"state"]
    assert decode_raft(frames) == msg


@pytest.mark.parametrize("wire_type", ["raft.bogus", "TRAIN", "append"])
def test_unknown_type_is_refused(wire_type) -> None:
    header = {**header_of(append(entries=())), "type": wire_type}
    assert refused(header, []).code is ErrorCode.UNKNOWN_TYPE


@pytest.mark.parametrize(
    "field, value",
    [
        ("term", "3"),
        ("term", -1),
        ("term", True),
        ("term", 1.5),
        ("term", MAX_INT + 1),
        ("commit", None),
        ("reject", 0),
        ("force", "false"),
        ("src", 9000),
        ("read_ctx", None),
        ("entries", {}),
        ("snapshot", []),
    ],
)
def test_mistyped_field_is_refused(field, value) -> None:
    header = {**header_of(append(entries=())), field: value}
    error = refused(header, [])
    assert error.code is ErrorCode.BAD_REQUEST
    assert field in error.message


@pytest.mark.parametrize(
    "field", ["src", "dst", "term", "log_index", "commit", "reject", "entries", "snapshot"]
)
def test_missing_field_is_refused(field) -> None:
    header = header_of(append(entries=()))
    del header[field]
    error = refused(header, [])
    assert error.code is ErrorCode.BAD_REQUEST
    assert f"'{field}'" in error.message


@pytest.mark.parametrize("blobs", [[b"x"], [b"x", b"y", b"z"]])
def test_frame_count_must_match_entries(blobs) -> None:
    error = refused(header_of(append()), blobs)
    assert error.code is ErrorCode.BAD_REQUEST
    assert "binary frame" in error.message


def test_snapshot_without_its_frame_is_refused() -> None:
    msg = Message(MessageType.SNAPSHOT, "a:1", "b:2", 5, snapshot=Snapshot(9, 4, b"state"))
    assert "binary frame" in refused(header_of(msg), []).message


@pytest.mark.parametrize(
    "entry, text",
    [
        ("not an object", "entries[0] must be an object"),
        ({"index": 5, "term": 3, "kind": "weird"}, "entries[0].kind"),
        ({"index": 5, "term": 3}, "entries[0].kind"),
        ({"index": 5, "term": 3, "kind": ["noop"]}, "entries[0].kind"),  # was a TypeError
        ({"index": 5, "term": 3, "kind": {"a": 1}}, "entries[0].kind"),
        ({"index": 5, "kind": "noop"}, "entries[0].term"),
        ({"index": -5, "term": 3, "kind": "noop"}, "entries[0].index"),
    ],
)
def test_bad_entry_is_refused(entry, text) -> None:
    header = {**header_of(append()), "entries": [entry]}
    error = refused(header, [b""])
    assert error.code is ErrorCode.BAD_REQUEST
    assert text in error.message


def test_entries_must_follow_log_index_consecutively() -> None:
    header = header_of(append())
    header["entries"][1]["index"] = 8
    assert "consecutive" in refused(header, [b"", b"\x00model"]).message


def test_entries_on_a_message_other_than_append_are_refused() -> None:
    header = {**header_of(append()), "type": "raft.vote"}
    assert "only append" in refused(header, [b"", b"\x00model"]).message


def test_snapshot_on_a_message_other_than_snapshot_is_refused() -> None:
    header = {**header_of(append(entries=())), "snapshot": {"index": 1, "term": 1}}
    assert "only snapshot" in refused(header, [b"s"]).message


def test_snapshot_message_without_snapshot_is_refused() -> None:
    header = {**header_of(append(entries=())), "type": "raft.snapshot"}
    assert "without a snapshot" in refused(header, []).message


def test_framing_errors_surface_as_protocol_errors() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_raft([b"\xff not json"])
    assert info.value.code is ErrorCode.MALFORMED
    with pytest.raises(ProtocolError) as info:
        decode_raft(encode({"v": 2, "type": "raft.vote", "id": ""}))
    assert info.value.code is ErrorCode.UNSUPPORTED_VERSION


def test_encode_refuses_what_decode_would_refuse() -> None:
    with pytest.raises(ValueError, match="only append"):
        encode_raft(Message(MessageType.VOTE, "a", "b", 1, entries=(Entry(1, 1),)))
    with pytest.raises(ValueError, match="without a snapshot"):
        encode_raft(Message(MessageType.SNAPSHOT, "a", "b", 1))
    with pytest.raises(ValueError, match="term"):
        encode_raft(Message(MessageType.VOTE, "a", "b", -1))
    with pytest.raises(ValueError, match="consecutive"):
        encode_raft(append(log_index=7))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.mark.fuzz
@given(messages(), st.data())
def test_corrupted_header_never_yields_a_half_valid_message(msg, data) -> None:
    """Replace one header field with arbitrary JSON and drop/add frames: the
    result is either refused or a complete Message that re-encodes the same."""
    frames = encode_raft(msg)
    header = orjson.loads(frames[0])
    key = data.draw(st.sampled_from(sorted(header)))
    header[key] = data.draw(json_values)
    blobs = frames[1:]
    if data.draw(st.booleans()):
        blobs = blobs + [b"extra"] if data.draw(st.booleans()) else blobs[:-1]
    try:
        decoded = decode_raft([orjson.dumps(header), *blobs])
    except ProtocolError:
        return
    assert isinstance(decoded, Message)
    assert decode_raft(encode_raft(decoded)) == decoded
    assert encode_raft(decoded)[1:] == blobs


@pytest.mark.fuzz
@given(st.lists(st.binary(max_size=80), max_size=4))
def test_arbitrary_frames_raise_only_protocol_error(frames) -> None:
    try:
        decode_raft(frames)
    except ProtocolError:
        pass
