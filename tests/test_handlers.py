"""The request handlers alone (zmqnode/handlers.py): no node, no sockets.

Fakes stand for Raft (``Leadership``), the training coordinator and the
reply; the registry, waiters and admission are the real ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from zmqnode.config import parse_args
from zmqnode.handlers import Leadership, RequestHandlers
from zmqnode.ml.training import TrainOptions, train
from zmqnode.registry import ModelRegistry, encode_store_model, model_id_for
from zmqnode.serving import PredictionBatcher
from zmqnode.storage.model_store import ModelStore
from zmqnode.transport.wire import ErrorCode, ProtocolError
from zmqnode.waiting import Admission, Waiters

ME, LEADER = "127.0.0.1:9000", "127.0.0.1:9001"


class Reply:
    """Records what a request was answered."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.waiting = False

    def send(self, header, blobs=()) -> None:
        self.answers.append(header)

    def ok(self, header, blobs=(), **fields) -> None:
        self.answers.append({"status": "OK", **fields, "blobs": list(blobs)})

    def error(self, header, code, message) -> None:
        self.answers.append({"status": "ERROR", "code": code, "message": message})

    def progress(self, header, **fields) -> None:
        pass

    def wait(self, header) -> None:
        self.waiting = True


class Raft:
    def __init__(self, leader: str) -> None:
        self.leader = leader
        self.proposed: list[bytes] = []
        self.on_done: list = []

    def propose(self, data, on_done):
        if self.leader != ME:
            return ErrorCode.NOT_LEADER
        self.proposed.append(data)
        self.on_done.append(on_done)
        return None


class Training:
    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}
        self.submitted: list[str] = []

    def submit(self, header, blobs, reply) -> None:
        self.submitted.append(header["id"])


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return train(x, np.array([0, 1, 1, 0]), TrainOptions(epochs=5)).to_bytes()


def make(tmp_path, leader: str = ME):
    config = parse_args(["--port", "9000", "--insecure", "--storage-dir", str(tmp_path)])
    registry = ModelRegistry(ModelStore(tmp_path / "models"))
    waiters = Waiters(read_tag=ME)
    raft = Raft(leader)
    training = Training()
    admission = Admission(ME, 100, 1 << 30, lambda: waiters.parked, lambda: 0, lambda k: None)
    handlers = RequestHandlers(
        config,
        channel=None,  # type: ignore[arg-type]  (handlers are called directly here)
        registry=registry,
        batcher=PredictionBatcher(ME),
        training=training,  # type: ignore[arg-type]
        waiters=waiters,
        admission=admission,
        leadership=Leadership(lambda: raft.leader, lambda: raft.leader == ME, raft.propose),
        want_file=lambda *args: None,
        status=lambda: {"node": ME},
        count=lambda kind: None,
    )
    return handlers, registry, waiters, raft, training


def test_a_follower_redirects_writes_to_the_leader(tmp_path, model_bytes):
    handlers, _, _, raft, training = make(tmp_path, leader=LEADER)
    for handle, blobs in ((handlers.handle_train, []), (handlers.handle_import, [model_bytes])):
        reply = Reply()
        handle({"id": "r1", "type": "X"}, blobs, reply)
        assert reply.answers[0]["status"] == "REDIRECT"
        assert reply.answers[0]["leader"] == LEADER
    assert raft.proposed == [] and training.submitted == []


def test_an_unknown_model_is_not_found_only_after_catching_up(tmp_path):
    handlers, _, waiters, _, _ = make(tmp_path)
    reply = Reply()
    handlers.handle_predict({"id": "p", "model_id": "mnope", **_rows()}, [_blob()], reply)
    assert reply.answers == [] and reply.waiting  # parked for a read index
    ctx = []
    waiters.issue_reads(lambda c: ctx.append(c) or True)
    waiters.read_index_ready(ctx[0], 3, applied_index=3)
    assert reply.answers[0]["code"] == ErrorCode.NOT_FOUND


def test_a_model_known_here_is_predicted_without_waiting(tmp_path, model_bytes):
    handlers, registry, _, _, _ = make(tmp_path)
    registry.apply(1, encode_store_model("t1", model_bytes, 1.0, {}))
    reply = Reply()
    handlers.handle_predict(
        {"id": "p", "model_id": model_id_for("t1"), **_rows()}, [_blob()], reply
    )
    handlers.batcher.flush()
    assert reply.answers[0]["status"] == "OK" and not reply.waiting


def test_an_import_is_answered_once_its_entry_is_applied(tmp_path, model_bytes):
    handlers, _, waiters, raft, _ = make(tmp_path)
    reply = Reply()
    handlers.handle_import({"id": "imp"}, [model_bytes], reply)
    assert len(raft.proposed) == 1 and reply.answers == [] and reply.waiting
    raft.on_done[0](True)  # committed and applied in our term
    assert reply.answers[0]["status"] == "OK"
    assert reply.answers[0]["model_id"] == model_id_for("imp") and waiters.parked == 0


def test_a_model_file_that_is_not_one_is_refused_and_nothing_proposed(tmp_path):
    handlers, _, _, raft, _ = make(tmp_path)
    with pytest.raises(ProtocolError) as info:
        handlers.handle_import({"id": "imp"}, [b"not a model"], Reply())
    assert info.value.code == ErrorCode.BAD_INPUT and raft.proposed == []


def test_fetch_refuses_a_negative_offset(tmp_path):
    handlers, *_ = make(tmp_path)
    with pytest.raises(ProtocolError) as info:
        handlers.handle_fetch({"id": "f", "model_id": "m1", "offset": -1, "length": 5}, [], Reply())
    assert info.value.code == ErrorCode.BAD_REQUEST and "'offset'" in info.value.message


def test_a_client_timeout_shortens_the_wait_within_the_node_bound(tmp_path):
    handlers, *_ = make(tmp_path)
    bound = handlers.config.request_timeout
    assert handlers.request_timeout({"timeout_ms": 1000}) == pytest.approx(0.9)
    assert handlers.request_timeout({"timeout_ms": 10**9}) == bound
    assert handlers.request_timeout({"timeout_ms": True}) == bound  # not a number of ms


def _rows() -> dict[str, Any]:
    return {"inputs": {"dtype": "float32", "shape": [1, 2], "frame": 0}}


def _blob() -> bytes:
    return np.array([[1, 0]], dtype=np.float32).tobytes()
