"""The Client against fake nodes: Lazy Pirate with redirect (docs/PROTOCOL.md)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from client import Client, ClientError, ClusterUnavailable
from tests.test_client_fakenode import FakeNode, unused_address
from zmqnode.transport.wire import (
    ErrorCode,
    array_to_frame,
    error_reply,
    ok_reply,
    read_array,
    redirect_reply,
)

FAST = dict(timeout=0.3, retries=3, backoff=0.01, max_backoff=0.02, connect_timeout=0.3)


def status_ok(header, blobs):
    return ok_reply(header, node="me", role="leader", term=3)


@pytest.fixture
def closing():
    """Collects fake nodes and clients; closes them all after the test."""
    things = []
    yield things.append
    for thing in reversed(things):
        thing.close()


def fake(closing, handler) -> FakeNode:
    node = FakeNode(handler)
    closing(node)
    return node


def client(closing, nodes, **kwargs) -> Client:
    options = {**FAST, **kwargs}
    c = Client(nodes, **options)
    closing(c)
    return c


def test_request_carries_version_type_id_and_timeout(closing) -> None:
    node = fake(closing, status_ok)
    result = client(closing, node.address).status()
    header, blobs = node.requests[0]
    assert header["v"] == 1 and header["type"] == "STATUS"
    assert isinstance(header["id"], str) and header["id"]
    assert 0 < header["timeout_ms"] <= 300
    assert blobs == []
    assert result["role"] == "leader" and result["term"] == 3
    assert "status" not in result and "v" not in result


def test_follows_redirect_to_the_leader_with_the_same_request_id(closing) -> None:
    leader = fake(closing, lambda h, b: ok_reply(h, model_id="m1", node="leader"))
    follower = fake(closing, lambda h, b: redirect_reply(h, leader.address))
    c = client(closing, follower.address)

    result = c.train([[0.0], [1.0]], [0.0, 1.0])

    assert result["model_id"] == "m1"
    assert follower.request_ids() == leader.request_ids()
    assert leader.address in c.nodes


def test_after_a_redirect_the_next_call_goes_straight_to_the_leader(closing) -> None:
    leader = fake(closing, status_ok)
    follower = fake(closing, lambda h, b: redirect_reply(h, leader.address))
    c = client(closing, [follower.address])
    c.status()
    c.status()
    assert len(follower.requests) == 1
    assert len(leader.requests) == 2
    assert c.preferred_node == leader.address


def test_silent_node_is_retried_on_the_next_with_the_same_request_id(closing) -> None:
    silent = fake(closing, lambda h, b: None)
    healthy = fake(closing, lambda h, b: ok_reply(h, model_id="m7"))
    c = client(closing, [silent.address, healthy.address])

    result = c.train([[1.0, 2.0]], [3.0], request_id="req-42")

    assert result["model_id"] == "m7"
    assert silent.request_ids() == ["req-42"]
    assert healthy.request_ids() == ["req-42"]


def test_dead_node_is_skipped_after_the_connect_timeout(closing) -> None:
    healthy = fake(closing, status_ok)
    c = client(closing, [unused_address(), healthy.address], timeout=5.0, connect_timeout=0.2)
    start = time.monotonic()
    c.status()
    # Far less than the 5 s reply timeout: the dead node was never waited on.
    assert time.monotonic() - start < 2.0
    assert len(healthy.requests) == 1


def test_error_reply_raises_client_error_with_code_and_is_not_retried(closing) -> None:
    node = fake(closing, lambda h, b: error_reply(h, ErrorCode.NOT_FOUND, "model 'x' not found"))
    other = fake(closing, status_ok)
    c = client(closing, [node.address, other.address])
    with pytest.raises(ClientError) as info:
        c.info("x")
    assert info.value.code == ErrorCode.NOT_FOUND
    assert info.value.message == "model 'x' not found"
    assert info.value.node == node.address
    assert len(node.requests) == 1 and other.requests == []


def test_retryable_error_moves_to_the_next_node_with_the_same_id(closing) -> None:
    no_leader = fake(closing, lambda h, b: error_reply(h, ErrorCode.NOT_LEADER, "election"))
    healthy = fake(closing, status_ok)
    c = client(closing, [no_leader.address, healthy.address])
    c.status()
    assert no_leader.request_ids() == healthy.request_ids()


def test_retryable_error_everywhere_raises_the_last_error(closing) -> None:
    busy = fake(closing, lambda h, b: error_reply(h, ErrorCode.BUSY, "queue full"))
    c = client(closing, busy.address, retries=2)
    with pytest.raises(ClientError) as info:
        c.status()
    assert info.value.code == ErrorCode.BUSY
    assert len(busy.requests) == 3
    assert len(set(busy.request_ids())) == 1


def test_stale_reply_with_another_id_is_discarded(closing) -> None:
    def handler(h, b):
        stale = ok_reply({"type": h["type"], "id": "old-request"}, role="stale")
        return [stale, ok_reply(h, role="fresh")]

    node = fake(closing, handler)
    assert client(closing, node.address).status()["role"] == "fresh"


def test_no_node_answering_raises_cluster_unavailable_naming_them(closing) -> None:
    dead = [unused_address(), unused_address()]
    c = client(closing, dead, retries=1, connect_timeout=0.1)
    with pytest.raises(ClusterUnavailable) as info:
        c.status()
    text = str(info.value)
    assert dead[0] in text and dead[1] in text
    assert "running" in text
    assert [node for node, _ in info.value.tried] == dead


def test_redirect_loop_is_bounded(closing) -> None:
    addresses = {}
    a = fake(closing, lambda h, b: redirect_reply(h, addresses["b"]))
    b = fake(closing, lambda h, b_: redirect_reply(h, addresses["a"]))
    addresses.update(a=a.address, b=b.address)
    c = client(closing, a.address, max_redirects=3)
    with pytest.raises(ClusterUnavailable, match="redirects"):
        c.status()
    assert len(a.requests) + len(b.requests) == 4


def test_redirect_to_a_garbage_address_counts_as_a_failure(closing) -> None:
    bad = fake(closing, lambda h, b: redirect_reply(h, "not an address"))
    good = fake(closing, status_ok)
    c = client(closing, [bad.address, good.address])
    assert c.status()["role"] == "leader"


def test_every_call_ends_by_its_deadline(closing) -> None:
    silent = fake(closing, lambda h, b: None)
    c = client(closing, silent.address, timeout=5.0, retries=50)
    start = time.monotonic()
    with pytest.raises(ClusterUnavailable):
        c.request({"type": "STATUS"}, deadline=0.4)
    assert time.monotonic() - start < 1.5


def test_train_sends_arrays_in_binary_frames_and_options_in_the_header(closing) -> None:
    node = fake(closing, lambda h, b: ok_reply(h, model_id="m1", trainers=["a"], warnings=[]))
    x = [[0, 0], [0, 1], [1, 0], [1, 1]]
    y = [0, 1, 1, 0]
    result = client(closing, node.address).train(
        x, y, options={"hidden_layers": [8], "epochs": 5}, request_id="train-1"
    )
    header, blobs = node.requests[0]
    assert header["id"] == "train-1" and header["type"] == "TRAIN"
    assert header["options"] == {"hidden_layers": [8], "epochs": 5}
    assert header["inputs"] == {"dtype": "float32", "shape": [4, 2], "frame": 0}
    assert header["outputs"] == {"dtype": "int64", "shape": [4], "frame": 1}
    np.testing.assert_array_equal(read_array(header, blobs, "inputs", max_bytes=1024), x)
    np.testing.assert_array_equal(read_array(header, blobs, "outputs", max_bytes=1024), y)
    assert result == {"id": "train-1", "model_id": "m1", "trainers": ["a"], "warnings": []}


def test_train_sends_float_outputs_as_float32_columns(closing) -> None:
    node = fake(closing, lambda h, b: ok_reply(h, model_id="m"))
    client(closing, node.address).train([[0.0], [1.0]], [0.5, 1.5])
    header, _ = node.requests[0]
    assert header["outputs"] == {"dtype": "float32", "shape": [2, 1], "frame": 1}


def test_train_refuses_mismatched_rows_before_sending(closing) -> None:
    node = fake(closing, status_ok)
    with pytest.raises(ValueError, match="2 rows but outputs have 3"):
        client(closing, node.address).train([[0.0], [1.0]], [0, 1, 1])
    assert node.requests == []


def test_predict_returns_the_reply_array_and_the_serving_node(closing) -> None:
    def handler(h, b):
        rows = read_array(h, b, "inputs", max_bytes=1 << 20)
        desc, blob = array_to_frame(rows.sum(axis=1, keepdims=True), frame=0)
        return ok_reply(h, outputs=desc, model_id=h["model_id"], node="n2"), [blob]

    node = fake(closing, handler)
    c = client(closing, node.address)
    out = c.predict("m1", [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(out, [[3.0], [7.0]])
    out[0, 0] = 9.0  # a writable copy, not a view of the frame
    reply = c.predict_reply("m1", [1.0, 1.0])
    assert reply.header["node"] == "n2" and reply.node == node.address
    header, _ = node.requests[1]
    assert header["inputs"]["shape"] == [1, 2]
    assert header["model_id"] == "m1"


def test_list_and_info_return_the_model_metadata(closing) -> None:
    model = {"model_id": "m1", "task": "classification", "inputs": 2, "outputs": 2}

    def handler(h, b):
        if h["type"] == "LIST":
            return ok_reply(h, models=[model])
        return ok_reply(h, model=model) if h["model_id"] == "m1" else None

    node = fake(closing, handler)
    c = client(closing, node.address)
    assert c.list_models() == [model]
    assert c.info("m1") == model


def test_import_sends_the_file_bytes_as_one_frame(closing, tmp_path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"ZMQN\x00\x01weights")
    node = fake(closing, lambda h, b: ok_reply(h, model_id="imported"))
    result = client(closing, node.address).import_model(path)
    header, blobs = node.requests[0]
    assert blobs == [b"ZMQN\x00\x01weights"]
    assert header["type"] == "IMPORT" and header["filename"] == "model.bin"
    assert header["size_bytes"] == len(blobs[0])
    assert result["model_id"] == "imported"


def test_close_closes_sockets_and_refuses_further_calls(closing) -> None:
    node = fake(closing, status_ok)
    c = Client(node.address, **FAST)
    c.status()
    sockets = list(c._sockets.values())
    c.close()
    assert sockets and all(s.closed for s in sockets)
    with pytest.raises(RuntimeError, match="closed"):
        c.status()


def test_bad_arguments_are_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="port"):
        Client("localhost")
    with pytest.raises(ValueError):
        Client([])
    with Client("127.0.0.1:1") as c, pytest.raises(ValueError, match="request_id"):
        c.train([[1.0]], [1.0], request_id="x" * 200)


# -- payload limits, checked before a large upload ----------------------------------


def limited_node(closing, max_request_bytes: int, max_model_bytes: int = 1 << 20) -> FakeNode:
    def handler(h, b):
        if h["type"] == "STATUS":
            limits = {"max_request_bytes": max_request_bytes, "max_model_bytes": max_model_bytes}
            return ok_reply(h, node="me", role="leader", term=1, limits=limits)
        return ok_reply(h, model_id="m1")

    return fake(closing, handler)


def test_training_data_over_the_cluster_limit_is_refused_before_it_is_sent(closing) -> None:
    node = limited_node(closing, max_request_bytes=2 << 20)
    c = client(closing, node.address)
    x = np.zeros((10_000, 100), np.float32)  # 4 MB
    with pytest.raises(ClientError) as err:
        c.train(x, np.zeros(10_000, np.int64))
    assert err.value.code == "TOO_LARGE"
    assert "4,080,000 bytes" in err.value.message and "--max-request-bytes" in err.value.message
    assert "Nothing was sent" in err.value.message
    assert [h["type"] for h, _ in node.requests] == ["STATUS"]  # the data never left


def test_large_payload_under_the_limit_is_sent_and_limits_are_asked_once(closing) -> None:
    node = limited_node(closing, max_request_bytes=64 << 20)
    c = client(closing, node.address)
    x = np.zeros((10_000, 100), np.float32)
    c.train(x, np.zeros(10_000, np.int64))
    c.train(x, np.zeros(10_000, np.int64))
    assert [h["type"] for h, _ in node.requests] == ["STATUS", "TRAIN", "TRAIN"]


def test_small_payloads_skip_the_limit_check(closing) -> None:
    node = limited_node(closing, max_request_bytes=16)
    c = client(closing, node.address)
    c.train([[0, 0], [1, 1]], [0, 1])  # the node enforces its limits itself
    assert [h["type"] for h, _ in node.requests] == ["TRAIN"]


def test_model_file_over_the_limit_is_refused_before_it_is_sent(closing, tmp_path) -> None:
    node = limited_node(closing, max_request_bytes=64 << 20, max_model_bytes=1 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * (3 << 20))
    with pytest.raises(ClientError) as err:
        client(closing, node.address).import_model(path)
    assert err.value.code == "TOO_LARGE" and "--max-model-bytes" in err.value.message
    assert [h["type"] for h, _ in node.requests] == ["STATUS"]
