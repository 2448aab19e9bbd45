"""Overload: past a node's capacity a client gets BUSY, never a dead or
unbounded node.

Real node processes (LocalCluster with small limits) for --max-trainings and
--max-pending; unit tests for the pieces that are cheap to reach alone: the
prediction queue bound, the flags, the client's backoff and the CLI message.
The waiter bookkeeping and the admission bounds are tested in test_waiting.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import zmq

from client import Client, ClientError
from client.cli import EXIT_ERROR_REPLY
from client.cli import main as cli_main
from harness.cluster import LocalCluster, wait_for
from tests.test_client_fakenode import FakeNode
from zmqnode import serving
from zmqnode.config import (
    DEFAULT_MAX_PENDING,
    DEFAULT_MAX_TRAININGS,
    DEFAULT_MAX_UNCOMMITTED_BYTES,
    parse_args,
)
from zmqnode.serving import PredictionBatcher
from zmqnode.transport import security
from zmqnode.transport.wire import (
    ErrorCode,
    ProtocolError,
    array_to_frame,
    encode,
    error_reply,
    ok_reply,
)

pytestmark = pytest.mark.conformance

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0] * 8, dtype=np.int64)
REPLY_DEADLINE = 60.0


# -- helpers: the raw wire, so a request can be left outstanding ----------------


def _dealer(ctx: zmq.Context, node_id: str, cluster: LocalCluster) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    security.make_client(sock, cluster.client_keys())
    sock.connect(f"tcp://{node_id}")
    return sock


def _send_train(sock: zmq.Socket, request_id: str) -> None:
    xd, xb = array_to_frame(XOR_X, frame=0)
    yd, yb = array_to_frame(XOR_Y, frame=1)
    header = {
        "type": "TRAIN",
        "id": request_id,
        "inputs": xd,
        "outputs": yd,
        "options": {"hidden_layers": [4], "epochs": 20},
        "timeout_ms": int(REPLY_DEADLINE * 1000),
    }
    sock.send_multipart([b"", *encode(header, [xb, yb])])


def _replies(sock: zmq.Socket, n: int, timeout: float) -> list[dict]:
    """The next ``n`` final replies (PROGRESS skipped), in arrival order."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(out)} of {n} replies within {timeout}s: {out}"
        if sock.poll(int(left * 1000)):
            header = orjson.loads(sock.recv_multipart()[1])
            if header.get("status") != "PROGRESS":
                out.append(header)
    return out


def _trainer_pid(cluster: LocalCluster, node_id: str) -> int:
    pid = cluster.procs[node_id].pid

    def child() -> int | None:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(text[0]) if text and cluster.status(node_id)["trainer"] == "idle" else None

    return wait_for(child, 30, f"the trainer process of {node_id}")


@pytest.fixture
def make_cluster(start_cluster):
    return lambda n, *extra: start_cluster(n=n, extra_args=extra)


# -- real nodes ------------------------------------------------------------------


@pytest.mark.process
def test_one_training_too_many_gets_busy_and_the_node_still_serves(make_cluster):
    cluster = make_cluster(1, "--max-trainings", "1")
    node = cluster.leader()
    # The trainer is stopped, so the first training stays in progress for as
    # long as the test needs (no timing guess).
    trainer = _trainer_pid(cluster, node)
    ctx = zmq.Context()
    os.kill(trainer, signal.SIGSTOP)
    try:
        first, joined = _dealer(ctx, node, cluster), _dealer(ctx, node, cluster)
        _send_train(first, "first")
        wait_for(lambda: cluster.status(node)["load"]["trainings"] == 1, 10, "training started")

        with Client([node], keys=cluster.keys, timeout=5, retries=0) as c:
            with pytest.raises(ClientError) as info:
                c.train(XOR_X, XOR_Y, request_id="second", options={"epochs": 5})
        assert info.value.code == ErrorCode.BUSY
        assert f"node {node} is already running 1 trainings" in info.value.message
        assert info.value.attempts == 1

        # With retries the client backs off between tries (no hammering) and
        # still reports BUSY at the end.
        with Client(
            [node], keys=cluster.keys, timeout=5, retries=2, backoff=0.2, max_backoff=1
        ) as c:
            start = time.monotonic()
            with pytest.raises(ClientError) as info:
                c.train(XOR_X, XOR_Y, request_id="second", options={"epochs": 5})
            waited = time.monotonic() - start
        assert info.value.code == ErrorCode.BUSY and info.value.attempts == 3
        assert waited >= 0.5 * (0.2 + 0.4), waited  # two jittered backoffs

        # The same request id again joins the job: not a new training, not BUSY.
        _send_train(joined, "first")
        wait_for(lambda: cluster.status(node)["load"]["pending"] == 2, 10, "the retry joined")
        assert cluster.status(node)["load"]["trainings"] == 1
    finally:
        os.kill(trainer, signal.SIGCONT)
    try:
        (a,), (b,) = _replies(first, 1, REPLY_DEADLINE), _replies(joined, 1, REPLY_DEADLINE)
        assert a["status"] == b["status"] == "OK", (a, b)
        assert a["model_id"] == b["model_id"]
    finally:
        ctx.destroy(linger=0)

    # Still serving, and the slot is free again.
    with Client([node], keys=cluster.keys, timeout=30, retries=0) as c:
        assert c.predict(a["model_id"], XOR_X[:4]).shape == (4,)
        assert c.train(XOR_X, XOR_Y, request_id="second", options={"epochs": 5})["model_id"]
    load = cluster.status(node)["load"]
    assert load == {"trainings": 0, "pending": 0, "uncommitted_bytes": 0}, load


@pytest.mark.process
def test_requests_past_max_pending_get_busy_and_none_hangs(make_cluster):
    limit, n = 5, 40
    cluster = make_cluster(3, "--max-pending", str(limit))
    leader = cluster.leader()
    follower = next(i for i in cluster.ids if i != leader)
    # Cut off from the leader, the follower parks every LIST and every PREDICT
    # of a model it does not know until it can confirm the cluster's state.
    cluster.isolate(follower)
    wait_for(lambda: cluster.status(follower)["leader"] is None, 15, "the follower cut off")

    ctx = zmq.Context()
    sock = _dealer(ctx, follower, cluster)
    try:
        rows_desc, rows = array_to_frame(XOR_X[:2], frame=0)
        for i in range(n):
            if i % 2:
                header = {"type": "LIST", "id": f"r{i}"}
                blobs: list[bytes] = []
            else:
                header = {"type": "PREDICT", "id": f"r{i}", "model_id": "m-nope"}
                header["inputs"], blobs = rows_desc, [rows]
            header["timeout_ms"] = 3000
            sock.send_multipart([b"", *encode(header, blobs)])
        replies = _replies(sock, n, 20)
    finally:
        ctx.destroy(linger=0)
    assert {r["id"] for r in replies} == {f"r{i}" for i in range(n)}
    codes = [r.get("code") for r in replies]
    assert codes.count("BUSY") == n - limit, codes
    assert codes.count("UNAVAILABLE") == limit, codes  # parked, then timed out
    # The refused were answered at once, before any parked one gave up.
    assert set(codes[: n - limit]) == {"BUSY"}, codes
    busy = next(r for r in replies if r.get("code") == "BUSY")
    assert f"{limit} requests waiting (--max-pending)" in busy["message"]

    cluster.heal()
    wait_for(lambda: cluster.status(follower)["leader"] == leader, 15, "the follower back")
    with Client([follower], keys=cluster.keys, timeout=5, retries=0) as c:
        assert c.list_models() == []
        assert c.status()["load"]["pending"] == 0
    assert cluster.procs[follower].poll() is None


# -- the pieces alone ------------------------------------------------------------


class _Model:
    n_inputs = 2
    classes = ()  # a regression model

    def predict(self, x):
        return x[:, 0]


class _Reply:
    def __init__(self) -> None:
        self.answers: list[tuple] = []

    def ok(self, header, blobs=(), **fields) -> None:
        self.answers.append(("OK", header["id"]))

    def error(self, header, code, message) -> None:
        self.answers.append((code, header["id"]))


def test_prediction_queue_is_bounded_by_bytes(monkeypatch):
    monkeypatch.setattr(serving, "MAX_QUEUED_BYTES", 100)
    batcher = PredictionBatcher("n1")
    reply = _Reply()
    rows = np.ones((5, 2), dtype=np.float32)  # 40 bytes
    batcher.add("m", _Model(), rows, {"id": "a"}, reply)
    batcher.add("m", _Model(), rows, {"id": "b"}, reply)
    with pytest.raises(ProtocolError) as info:
        batcher.add("m", _Model(), rows, {"id": "c"}, reply)
    assert info.value.code == ErrorCode.BUSY and info.value.header == {"id": "c"}
    batcher.flush()
    assert reply.answers == [("OK", "a"), ("OK", "b")] and batcher.queued_bytes == 0
    big = np.ones((100, 2), dtype=np.float32)  # over the bound, but alone: taken
    batcher.add("m", _Model(), big, {"id": "d"}, reply)
    batcher.flush()
    assert reply.answers[-1] == ("OK", "d")


def test_limit_flags_and_defaults():
    base = ["--port", "12000", "--insecure"]
    cfg = parse_args(base)
    assert (cfg.max_trainings, cfg.max_pending, cfg.max_uncommitted_bytes) == (
        DEFAULT_MAX_TRAININGS,
        DEFAULT_MAX_PENDING,
        DEFAULT_MAX_UNCOMMITTED_BYTES,
    )
    cfg = parse_args(
        [*base, "--max-trainings", "2", "--max-pending", "7", "--max-uncommitted-bytes", "9"]
    )
    assert (cfg.max_trainings, cfg.max_pending, cfg.max_uncommitted_bytes) == (2, 7, 9)
    with pytest.raises(SystemExit):
        parse_args([*base, "--max-pending", "0"])


def test_client_retries_busy_after_a_backoff_with_the_same_id():
    seen: list[float] = []

    def handler(h, b):
        seen.append(time.monotonic())
        if len(seen) < 3:
            return error_reply(h, ErrorCode.BUSY, "full")
        return ok_reply(h, node="me", role="leader", term=1)

    with (
        FakeNode(handler) as fake,
        Client(fake.address, timeout=2, retries=3, backoff=0.1, max_backoff=1) as c,
    ):
        assert c.status()["role"] == "leader"
        ids = fake.request_ids()
    assert len(ids) == 3 and len(set(ids)) == 1
    gaps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1, gaps  # jittered 0.1, then 0.2


def test_cli_says_clearly_when_it_gives_up_on_busy(capsys):
    with FakeNode(lambda h, b: error_reply(h, ErrorCode.BUSY, "node x has 5 waiting")) as fake:
        code = cli_main(["--nodes", fake.address, "--timeout", "2", "--retries", "2", "list"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR_REPLY
    assert "BUSY from" in err and "node x has 5 waiting" in err
    assert "overloaded (refused 3 times" in err and "safe to run again" in err
