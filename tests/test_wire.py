"""The common framing: header + binary frames, arrays, replies, errors."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from zmqnode.transport.addresses import (
    format_address,
    node_ports,
    parse_address,
    tcp_endpoint,
)
from zmqnode.transport.wire import (
    ALLOWED_DTYPES,
    MAX_ID_LENGTH,
    PROTOCOL_VERSION,
    ErrorCode,
    ProtocolError,
    array_from_frame,
    array_to_frame,
    decode,
    encode,
    error_reply,
    join_envelope,
    ok_reply,
    read_array,
    read_rows,
    redirect_reply,
    rows_to_frame,
    split_envelope,
)


def raw(header: object) -> list[bytes]:
    return [orjson.dumps(header)]


def protocol_error(frames, **kwargs) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(frames, **kwargs)
    return info.value


# -- encode / decode -----------------------------------------------------------


def test_encode_puts_json_header_first_and_blobs_untouched_after() -> None:
    frames = encode({"type": "TRAIN", "id": "r1", "x": [1, 2]}, [b"\x00\x01", b""])
    assert orjson.loads(frames[0]) == {
        "v": PROTOCOL_VERSION,
        "type": "TRAIN",
        "id": "r1",
        "x": [1, 2],
    }
    assert frames[1:] == [b"\x00\x01", b""]


def test_decode_returns_header_and_blobs_as_bytes() -> None:
    header, blobs = decode(encode({"type": "T", "id": "1"}, [b"ab"]))
    assert header == {"v": 1, "type": "T", "id": "1"}
    assert blobs == [b"ab"]


def test_decode_accepts_zmq_frames_and_buffers() -> None:
    frames = encode({"type": "T", "id": "1"}, [b"ab", b"cd"])
    header, blobs = decode([zmq.Frame(frames[0]), bytearray(frames[1]), memoryview(frames[2])])
    assert header["id"] == "1"
    assert blobs == [b"ab", b"cd"] and all(type(b) is bytes for b in blobs)


def test_encode_refuses_a_header_without_type_or_id() -> None:
    with pytest.raises(ValueError):
        encode({"id": "1"})
    with pytest.raises(ValueError):
        encode({"type": "T"})


def test_empty_message_is_malformed() -> None:
    assert protocol_error([]).code is ErrorCode.MALFORMED


def test_invalid_json_is_malformed() -> None:
    error = protocol_error([b'{"v": 1, "type": '])
    assert error.code is ErrorCode.MALFORMED
    assert "not valid JSON" in error.message


@pytest.mark.parametrize("header", [[1, 2], "text", 3, None, True])
def test_non_object_header_is_malformed(header) -> None:
    error = protocol_error(raw(header))
    assert error.code is ErrorCode.MALFORMED
    assert "must be a JSON object" in error.message


def test_missing_version_is_unsupported_version() -> None:
    assert protocol_error(raw({"type": "T", "id": "1"})).code is ErrorCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize("version", [2, 0, "1", 1.5, True, None])
def test_wrong_version_is_unsupported_version(version) -> None:
    error = protocol_error(raw({"v": version, "type": "T", "id": "1"}))
    assert error.code is ErrorCode.UNSUPPORTED_VERSION
    assert "v=1" in error.message


@pytest.mark.parametrize(
    "header",
    [
        {"v": 1, "id": "1"},
        {"v": 1, "type": "", "id": "1"},
        {"v": 1, "type": 7, "id": "1"},
        {"v": 1, "type": "T"},
        {"v": 1, "type": "T", "id": 5},
        {"v": 1, "type": "T", "id": ""},
        {"v": 1, "type": "T", "id": "x" * (MAX_ID_LENGTH + 1)},
    ],
)
def test_missing_or_mistyped_type_or_id_is_bad_request(header) -> None:
    error = protocol_error(raw(header))
    assert error.code is ErrorCode.BAD_REQUEST
    assert error.header == header  # so the ERROR reply can echo what it can


def test_empty_id_is_allowed_in_an_error_reply_and_when_not_required() -> None:
    reply = error_reply(None, ErrorCode.MALFORMED, "bad JSON")
    assert decode(encode(reply))[0]["id"] == ""
    assert decode(raw({"v": 1, "type": "raft.vote", "id": ""}), require_id=False)[0]["id"] == ""


def test_oversized_header_is_refused_before_parsing() -> None:
    frames = [b"{" + b" " * 100 + b"garbage"]
    error = protocol_error(frames, max_header_bytes=64)
    assert error.code is ErrorCode.TOO_LARGE
    assert "limit is 64" in error.message


@pytest.mark.fuzz
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_decode_of_arbitrary_frames_raises_only_protocol_error(frames) -> None:
    try:
        header, blobs = decode(frames)
    except ProtocolError:
        return
    assert header["v"] == 1 and isinstance(header["type"], str) and isinstance(header["id"], str)


# -- envelope ------------------------------------------------------------------


def test_split_envelope_separates_routing_frames_at_the_delimiter() -> None:
    body = encode({"type": "T", "id": "1"}, [b""])  # an empty blob after the header is fine
    routing, rest = split_envelope([b"\x00id", b"", *body])
    assert routing == [b"\x00id"]
    assert rest == body
    assert join_envelope(routing, rest) == [b"\x00id", b"", *body]


def test_split_envelope_without_delimiter_is_malformed() -> None:
    with pytest.raises(ProtocolError) as info:
        split_envelope([b"\x00id", b'{"v":1}'])
    assert info.value.code is ErrorCode.MALFORMED


# -- arrays --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(ALLOWED_DTYPES))
@pytest.mark.parametrize("shape", [(4, 2), (3,), (0, 5), (2, 3, 2)])
def test_array_round_trip(dtype, shape) -> None:
    a = np.arange(int(np.prod(shape))).astype(dtype).reshape(shape)
    desc, blob = array_to_frame(a, frame=3)
    assert desc == {"dtype": dtype, "shape": list(shape), "frame": 3}
    assert len(blob) == a.nbytes
    back = array_from_frame(desc, blob, max_bytes=1 << 20)
    assert back.dtype == np.dtype(dtype) and back.shape == shape
    np.testing.assert_array_equal(back, a)


def test_array_bytes_are_little_endian_c_order_whatever_the_input_layout() -> None:
    a = np.array([[1, 2], [3, 4]], dtype=">i4").T  # big-endian and Fortran-ordered
    desc, blob = array_to_frame(a)
    assert desc["dtype"] == "int32"
    assert blob == np.array([[1, 3], [2, 4]], dtype="<i4").tobytes()


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64, np.uint8, object])
def test_array_to_frame_refuses_dtypes_outside_the_allowlist(dtype) -> None:
    with pytest.raises(ValueError, match="allowed"):
        array_to_frame(np.zeros(2, dtype=dtype))


def test_byte_count_mismatch_names_array_shape_and_sizes() -> None:
    with pytest.raises(ProtocolError) as info:
        array_from_frame(
            {"dtype": "float32", "shape": [4, 2]}, b"\x00" * 30, max_bytes=1024, name="x"
        )
    assert info.value.code is ErrorCode.BAD_SHAPE
    assert info.value.message == (
        "array 'x' declares shape [4, 2] float32 = 32 bytes but the frame has 30 bytes"
    )


@pytest.mark.parametrize("dtype", ["float16", "object", "<f4", None, 3])
def test_disallowed_dtype_is_bad_input(dtype) -> None:
    with pytest.raises(ProtocolError) as info:
        array_from_frame({"dtype": dtype, "shape": [1]}, b"\x00" * 4, max_bytes=1024)
    assert info.value.code is ErrorCode.BAD_INPUT
    assert "allowed: float32" in info.value.message


@pytest.mark.parametrize("shape", [None, 4, "4", [4, -1], [2.0], [True], [1] * 9, {"rows": 1}])
def test_invalid_shape_is_bad_shape(shape) -> None:
    with pytest.raises(ProtocolError) as info:
        array_from_frame({"dtype": "int64", "shape": shape}, b"", max_bytes=1024)
    assert info.value.code is ErrorCode.BAD_SHAPE


@pytest.mark.parametrize("huge", [2**63 - 1, 2**63, 2**64 - 1])
def test_a_dimension_numpy_cannot_hold_next_to_a_zero_is_bad_shape_not_internal(huge) -> None:
    with pytest.raises(ProtocolError) as info:
        array_from_frame({"dtype": "float32", "shape": [huge, 0]}, b"", max_bytes=1024)
    assert info.value.code is ErrorCode.BAD_SHAPE
    assert str(huge) in info.value.message


def test_declared_size_above_the_limit_is_too_large_even_if_the_frame_is_small() -> None:
    with pytest.raises(ProtocolError) as info:
        array_from_frame({"dtype": "float64", "shape": [10**9, 10**9]}, b"", max_bytes=1 << 20)
    assert info.value.code is ErrorCode.TOO_LARGE


def test_descriptor_that_is_not_an_object_is_bad_request() -> None:
    with pytest.raises(ProtocolError) as info:
        array_from_frame([4, 2], b"", max_bytes=1024)
    assert info.value.code is ErrorCode.BAD_REQUEST


def test_decoded_array_is_a_read_only_view() -> None:
    desc, blob = array_to_frame(np.ones(3, dtype=np.float32))
    back = array_from_frame(desc, blob, max_bytes=64)
    with pytest.raises(ValueError):
        back[0] = 2.0


def test_read_array_finds_the_frame_named_by_the_descriptor() -> None:
    x_desc, x_blob = array_to_frame(np.ones((2, 2), np.float32), frame=1)
    header = {"inputs": x_desc}
    np.testing.assert_array_equal(
        read_array(header, [b"other", x_blob], "inputs", max_bytes=64), np.ones((2, 2))
    )


@pytest.mark.parametrize(
    "header, blobs, text",
    [
        ({}, [], "missing array descriptor 'inputs'"),
        ({"inputs": "float32"}, [], "must be an object"),
        ({"inputs": {"dtype": "float32", "shape": [1], "frame": 1}}, [b"1234"], "frame 1"),
        ({"inputs": {"dtype": "float32", "shape": [1], "frame": "0"}}, [b"1234"], "frame '0'"),
    ],
)
def test_read_array_reports_missing_descriptor_or_frame(header, blobs, text) -> None:
    with pytest.raises(ProtocolError) as info:
        read_array(header, blobs, "inputs", max_bytes=64)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert text in info.value.message


# A command-line client encodes its few rows and decodes the answer without numpy.


@pytest.mark.parametrize("rows", [[[1.0, -0.1]], [[0.1, 2.5, 1e-8], [3, -4, 1e30]], [[7]]])
def test_rows_to_frame_sends_what_array_to_frame_sends(rows) -> None:
    assert rows_to_frame(rows, frame=2) == array_to_frame(np.array(rows, np.float32), frame=2)


def test_rows_to_frame_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="same number of columns"):
        rows_to_frame([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("dtype", list(ALLOWED_DTYPES))
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 4), (3, 0), (2, 2, 2)])
def test_read_rows_is_read_array_as_lists(dtype, shape) -> None:
    a = (np.arange(int(np.prod(shape))) * 1.37 - 3).astype(dtype).reshape(shape)
    desc, blob = array_to_frame(a, frame=1)
    header = {"outputs": desc}
    expected = read_array(header, [b"x", blob], "outputs", max_bytes=1024).tolist()
    got = read_rows(header, [b"x", blob], "outputs", max_bytes=1024)
    assert repr(got) == repr(expected)  # the same numbers, and ints stay ints


@pytest.mark.parametrize(
    "desc, blobs, code",
    [
        (None, [], ErrorCode.BAD_REQUEST),
        ({"dtype": "float32", "shape": [2]}, [b"1234"], ErrorCode.BAD_SHAPE),
        ({"dtype": "float16", "shape": [2]}, [b"1234"], ErrorCode.BAD_INPUT),
        ({"dtype": "int64", "shape": [10**9]}, [b""], ErrorCode.TOO_LARGE),
    ],
)
def test_read_rows_refuses_what_read_array_refuses(desc, blobs, code) -> None:
    header = {} if desc is None else {"outputs": desc}
    for read in (read_array, read_rows):
        with pytest.raises(ProtocolError) as info:
            read(header, blobs, "outputs", max_bytes=1 << 20)
        assert info.value.code is code


# -- replies -------------------------------------------------------------------


def test_ok_reply_echoes_type_and_id() -> None:
    reply = ok_reply({"v": 1, "type": "TRAIN", "id": "r9"}, model_id="m1")
    assert reply == {"v": 1, "type": "TRAIN", "id": "r9", "status": "OK", "model_id": "m1"}


def test_error_reply_carries_code_and_message() -> None:
    reply = error_reply({"type": "PREDICT", "id": "r1"}, ErrorCode.NOT_FOUND, "no model 'x'")
    assert reply["status"] == "ERROR"
    assert reply["code"] == "NOT_FOUND" and reply["message"] == "no model 'x'"
    assert reply["id"] == "r1" and reply["type"] == "PREDICT"


def test_error_reply_to_an_unreadable_request_is_still_a_valid_message() -> None:
    with pytest.raises(ProtocolError) as info:
        decode(raw({"v": 1, "type": ["bad"], "id": 12}))
    reply = error_reply(info.value.header, info.value.code, info.value.message)
    header, _ = decode(encode(reply))
    assert header["type"] == "UNKNOWN" and header["id"] == "" and header["code"] == "BAD_REQUEST"


def test_redirect_reply_names_the_leader() -> None:
    reply = redirect_reply({"type": "TRAIN", "id": "r1"}, "127.0.0.1:9001")
    assert reply["status"] == "REDIRECT" and reply["leader"] == "127.0.0.1:9001"


def test_error_codes_are_stable_strings() -> None:
    assert {c.value for c in ErrorCode} == {
        "MALFORMED", "BAD_REQUEST", "UNSUPPORTED_VERSION", "UNKNOWN_TYPE", "BAD_SHAPE",
        "BAD_INPUT", "NOT_FOUND", "TOO_LARGE", "NOT_LEADER", "TIMEOUT", "BUSY",
        "UNAVAILABLE", "INTERNAL", "TRAINING_FAILED", "CONFLICT",
    }  # fmt: skip
    assert {c for c in ErrorCode if c.retryable} == {
        ErrorCode.NOT_LEADER,
        ErrorCode.TIMEOUT,
        ErrorCode.BUSY,
        ErrorCode.UNAVAILABLE,
    }
    assert ErrorCode.NOT_FOUND == "NOT_FOUND"  # compares equal to the wire string


# -- addresses -----------------------------------------------------------------


def test_node_ports_follow_fixed_offsets_from_the_client_port() -> None:
    ports = node_ports(9000)
    assert (ports.client, ports.monitor, ports.raft, ports.heartbeat, ports.training) == (
        9000, 8000, 10000, 11000, 12000,
    )  # fmt: skip
    assert (ports.results, ports.http) == (13000, 14000)
    assert node_ports(9000, monitor_port=8080).monitor == 8080
    assert node_ports(9000, http_port=8081).http == 8081


@pytest.mark.parametrize("port", [500, 63000])
def test_node_ports_out_of_range_are_refused(port) -> None:
    with pytest.raises(ValueError, match="outside 1..65535"):
        node_ports(port)


def test_parse_and_format_addresses() -> None:
    assert parse_address("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_address(" node-a:9001 ") == ("node-a", 9001)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert format_address("::1", 9000) == "[::1]:9000"
    assert tcp_endpoint("127.0.0.1", 9000) == "tcp://127.0.0.1:9000"


@pytest.mark.parametrize(
    "text", ["localhost", ":9000", "host:", "host:0", "host:70000", "host:x", "::1:9000"]
)
def test_bad_addresses_are_refused(text) -> None:
    with pytest.raises(ValueError):
        parse_address(text)
