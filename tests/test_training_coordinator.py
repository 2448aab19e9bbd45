"""The training coordinator with fake links: no node, no trainer process.

Real ZeroMQ sockets on loopback: the coordinator binds its results PULL and
PUSHes jobs to fake trainers, which this test binds where the peers'
training ports would be and answers with the real trainer's ``handle``
(docs/PROTOCOL.md §9). The node's side (``TrainingLinks``) records what the
coordinator asked of it. Every wait polls with a deadline.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from zmqnode.config import NodeConfig
from zmqnode.ml.model_file import Model
from zmqnode.training import TrainingCoordinator, TrainingLinks
from zmqnode.training.protocol import Job, Result, decode_job, encode_result
from zmqnode.training.scheduler import FIRST_ANSWER_TIMEOUT
from zmqnode.training.trainer import ChunkCache, handle
from zmqnode.transport import wire
from zmqnode.transport.addresses import TRAINING_OFFSET
from zmqnode.transport.sockets import BindError, Sockets
from zmqnode.transport.wire import ErrorCode, ProtocolError

WAIT = 20.0  # seconds any one wait may take before the test fails
OPTIONS = {"hidden_layers": [4], "epochs": 2, "epochs_per_round": 1, "patience": 0, "seed": 1}


class Client:
    """A client's replier: records what it was told."""

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []
        self.progress_seen: list[dict[str, Any]] = []

    def send(self, header: dict[str, Any], blobs=()) -> None:
        self.replies.append(header)

    def ok(self, header, blobs=(), **fields: Any) -> None:
        self.send(wire.ok_reply(header, **fields), blobs)

    def error(self, header, code: ErrorCode, message: str) -> None:
        self.send(wire.error_reply(header, code, message))

    def progress(self, header: dict[str, Any], **fields: Any) -> None:
        self.progress_seen.append(fields)

    def wait(self, header: dict[str, Any]) -> None:
        pass


class FakeTrainer:
    """A trainer at a peer's training port: pulls jobs, answers them with the
    real trainer's ``handle`` (``auto``) or when the test says so."""

    def __init__(self, ctx: zmq.Context, *, auto: bool = True) -> None:
        self.ctx = ctx
        self.pull = ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        port = self.pull.bind_to_random_port("tcp://127.0.0.1", 20000, 60000)
        self.id = f"127.0.0.1:{port - TRAINING_OFFSET}"
        self.auto = auto
        self.cache = ChunkCache(1 << 26)
        self.pushers: dict[str, zmq.Socket] = {}
        self.jobs: list[Job] = []  # received, not answered (when not auto)

    def receive(self) -> None:
        while self.pull.poll(0):
            try:
                job = decode_job(self.pull.recv_multipart())
            except ProtocolError:
                continue  # the test's connection probe
            if self.auto:
                self.answer(job)
            else:
                self.jobs.append(job)

    def answer(self, job: Job, result: Result | None = None) -> None:
        if result is None:
            result = handle(job, self.cache, self.id)
        push = self.pushers.get(job.reply_to)
        if push is None:
            push = self.pushers[job.reply_to] = self.ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.connect(job.reply_to)
        push.send_multipart(encode_result(result))

    def close(self) -> None:
        self.pull.close(0)
        for push in self.pushers.values():
            push.close(0)


class FakeNode:
    """The node's side of ``TrainingLinks``: its loop, admission, commit and
    metrics, recorded."""

    def __init__(self, ctx: zmq.Context, config: NodeConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.poller = zmq.Poller()
        self.handlers: dict[zmq.Socket, Callable[[list[bytes]], None]] = {}
        self.delivered = 0  # results handed to the coordinator
        self.last_heard: dict[str, float] = {}
        self.alive: set[str] = set()  # peers whose heartbeats keep coming
        self.trainers: list[FakeTrainer] = []
        self.busy = False  # admit refuses (--max-pending reached)
        self.admitted: list[dict[str, Any]] = []
        self.counted: list[str] = []
        self.commits: list[tuple[Any, ...]] = []
        self.events: list[tuple[str, str]] = []
        self.finished: list[tuple[str, float]] = []
        self.coordinator: TrainingCoordinator | None = None

    def links(self) -> TrainingLinks:
        return TrainingLinks(
            node_id=self.config.node_id,
            peers=self.config.peers,
            config=self.config,
            sockets=Sockets(self.ctx, None),
            log_path="/dev/null",
            register_socket=self.register_socket,
            admit=self.admit,
            count=self.counted.append,
            commit_model=lambda *args: self.commits.append(args),
            leader_id=lambda: "",
            last_heard=self.last_heard,
            is_running=lambda: True,
            add_event=lambda kind, text: self.events.append((kind, text)),
            job_finished=lambda status, seconds: self.finished.append((status, seconds)),
        )

    def register_socket(self, sock: zmq.Socket, handler: Callable[[list[bytes]], None]) -> None:
        self.poller.register(sock, zmq.POLLIN)
        self.handlers[sock] = handler

    def admit(self, header: dict[str, Any]) -> None:
        if self.busy:
            raise ProtocolError(ErrorCode.BUSY, "too many parked requests", header=header)
        self.admitted.append(header)

    def turn(self, tick: bool = True) -> None:
        """One turn of a node's loop: heartbeats, trainers, results, a tick."""
        for peer in self.alive:
            self.last_heard[peer] = time.monotonic()
        for trainer in self.trainers:
            trainer.receive()
        for sock, _ in self.poller.poll(10):
            self.handlers[sock](sock.recv_multipart())
            self.delivered += 1
        if tick and self.coordinator is not None:
            self.coordinator.tick(time.monotonic())

    def until(self, condition: Callable[[], bool], what: str, tick: bool = True) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.turn(tick)


@pytest.fixture
def cluster() -> Iterator[Callable[..., tuple[FakeNode, TrainingCoordinator]]]:
    """``make(n_trainers, auto=True, **config)``: a coordinator whose peers are
    ``n_trainers`` fake trainers (its own trainer disabled)."""
    ctx = zmq.Context()
    made: list[tuple[FakeNode, TrainingCoordinator]] = []

    def make(n_trainers: int = 1, auto: bool = True, **settings: Any):
        trainers = [FakeTrainer(ctx, auto=auto) for _ in range(n_trainers)]
        for _ in range(50):
            port = random.randrange(20000, 60000) - 4000
            config = NodeConfig(
                host="127.0.0.1",
                port=port,
                monitor_port=port - 1000,
                peers=tuple(t.id for t in trainers),
                storage_dir="/nonexistent",
                trainer=False,
                **settings,
            )
            node = FakeNode(ctx, config)
            try:
                coordinator = TrainingCoordinator(node.links())
            except BindError:
                continue  # that results port is taken: another
            break
        else:
            raise RuntimeError("no free results port")
        node.coordinator = coordinator
        node.trainers = trainers
        node.alive = {t.id for t in trainers}
        made.append((node, coordinator))
        for trainer in trainers:
            # Sends to a trainer not yet connected fail (IMMEDIATE): wait for each.
            push = coordinator.pushers[trainer.id]
            node.until(lambda p=push: _probe(p), f"a connection to {trainer.id}", tick=False)
        node.turn(tick=False)  # the trainers drop the probes
        return node, coordinator

    yield make
    for node, coordinator in made:
        coordinator.close()
        for trainer in node.trainers:
            trainer.close()
    ctx.destroy(linger=0)


def _probe(push: zmq.Socket) -> bool:
    try:
        push.send(b"probe", zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True


def train_request(request_id: str, rows: int = 96, options=OPTIONS) -> tuple[dict, list[bytes]]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    x_desc, x_blob = wire.array_to_frame(x, frame=0)
    y_desc, y_blob = wire.array_to_frame(y, frame=1)
    header = {"v": 1, "type": "TRAIN", "id": request_id, "inputs": x_desc, "outputs": y_desc}
    return {**header, "options": options}, [x_blob, y_blob]


def submit(coordinator: TrainingCoordinator, request_id: str, **kwargs: Any) -> Client:
    client = Client()
    coordinator.submit(*train_request(request_id, **kwargs), client)
    return client


# -- admission --------------------------------------------------------------------


def test_a_train_beyond_max_trainings_is_busy(cluster):
    node, coordinator = cluster(1, max_trainings=1)
    submit(coordinator, "first")
    with pytest.raises(ProtocolError) as refused:
        submit(coordinator, "second")
    assert refused.value.code is ErrorCode.BUSY
    assert "--max-trainings" in refused.value.message
    assert node.counted == ["busy_trainings"]
    assert list(coordinator.jobs) == ["first"]


def test_a_retry_of_a_running_training_joins_it_as_a_parked_request(cluster):
    node, coordinator = cluster(1, max_trainings=1)
    submit(coordinator, "job")
    submit(coordinator, "job")  # not BUSY: it is not a new training
    assert coordinator.running() == 1
    assert coordinator.joined_clients() == 2
    assert [h["id"] for h in node.admitted] == ["job"]


def test_a_retry_past_max_pending_is_refused_and_does_not_join(cluster):
    node, coordinator = cluster(1)
    submit(coordinator, "job")
    node.busy = True
    with pytest.raises(ProtocolError) as refused:
        submit(coordinator, "job")
    assert refused.value.code is ErrorCode.BUSY
    assert coordinator.joined_clients() == 1


def test_no_trainer_heard_from_is_unavailable(cluster):
    node, coordinator = cluster(1)
    node.alive.clear()
    node.last_heard.clear()
    with pytest.raises(ProtocolError) as refused:
        submit(coordinator, "job")
    assert refused.value.code is ErrorCode.UNAVAILABLE
    assert coordinator.running() == 0


def test_bad_data_is_answered_bad_input_once_prepared(cluster):
    node, coordinator = cluster(1)
    header, blobs = train_request("job")
    x = np.full((96, 2), np.nan, dtype=np.float32)
    header["inputs"], blobs[0] = wire.array_to_frame(x, frame=0)
    client = Client()
    coordinator.submit(header, blobs, client)
    node.until(lambda: client.replies, "the reply")
    assert client.replies[0]["code"] == "BAD_INPUT"
    assert coordinator.running() == 0
    assert node.finished[0][0] == "BAD_INPUT"
    assert node.events[-1][0] == "training_failed"


# -- rounds and results -------------------------------------------------------------


def test_each_trainer_gets_its_own_chunk_with_the_rows(cluster):
    node, coordinator = cluster(2, auto=False)
    submit(coordinator, "job")
    first, second = node.trainers
    node.until(lambda: first.jobs and second.jobs, "a job at each trainer")
    assert [(j.chunk, j.round_index) for j in first.jobs] == [(0, 0)]
    assert [(j.chunk, j.round_index) for j in second.jobs] == [(1, 0)]
    assert all(j.x is not None and j.y is not None for j in (*first.jobs, *second.jobs))
    assert first.jobs[0].reply_to == coordinator.reply_to
    assert node.events[0][0] == "training_started"


@pytest.mark.parametrize(
    "stale",
    [
        {"job_id": "job#0123456789ab"},  # an earlier attempt of the same request id
        {"round_index": 1},  # a round not running
        {"chunk": 5},  # no such chunk
    ],
    ids=["attempt", "round", "chunk"],
)
def test_a_result_that_does_not_belong_to_the_running_round_is_ignored(cluster, stale):
    node, coordinator = cluster(1, auto=False)
    client = submit(coordinator, "job")
    trainer = node.trainers[0]
    node.until(lambda: trainer.jobs, "the job")
    job = trainer.jobs.pop()
    real = handle(job, trainer.cache, trainer.id)
    trainer.answer(job, dataclasses.replace(real, **stale))
    node.until(lambda: node.delivered == 1, "the stale result", tick=False)
    running = coordinator.jobs["job"]
    assert running.results == {} and 0 in running.schedule.pending
    assert client.progress_seen == []
    trainer.answer(job, real)  # the real answer still counts
    node.until(lambda: client.progress_seen, "round 0's progress", tick=False)
    assert running.schedule.round == 1


def test_a_trainer_that_lost_the_rows_gets_them_again(cluster):
    node, coordinator = cluster(1, auto=False)
    submit(coordinator, "job")
    trainer = node.trainers[0]
    node.until(lambda: trainer.jobs, "the job")
    job = trainer.jobs.pop()
    lost = Result(job.job_id, job.round_index, job.chunk, trainer.id, missing_data=True)
    trainer.answer(job, lost)
    node.until(lambda: trainer.jobs, "the job again", tick=False)
    again = trainer.jobs.pop()
    assert (again.chunk, again.round_index) == (job.chunk, job.round_index)
    assert again.x is not None and np.array_equal(again.x, job.x)


def test_a_trainer_error_fails_the_job_training_failed(cluster):
    node, coordinator = cluster(1, auto=False)
    client = submit(coordinator, "job")
    trainer = node.trainers[0]
    node.until(lambda: trainer.jobs, "the job")
    job = trainer.jobs.pop()
    trainer.answer(job, Result(job.job_id, 0, 0, trainer.id, error="MemoryError()"))
    node.until(lambda: client.replies, "the reply", tick=False)
    assert client.replies[0]["code"] == "TRAINING_FAILED"
    assert "MemoryError()" in client.replies[0]["message"]
    assert coordinator.running() == 0


def test_a_chunk_of_a_silent_peer_goes_to_another_trainer_at_once(cluster):
    node, coordinator = cluster(2, auto=False)
    submit(coordinator, "job")
    first, second = node.trainers
    node.until(lambda: first.jobs and second.jobs, "a job at each trainer")
    first.jobs.clear()
    node.alive.discard(second.id)
    node.last_heard[second.id] = time.monotonic() - 3.0  # past PEER_DOWN_SECONDS
    node.until(lambda: first.jobs, "the moved chunk")
    moved = first.jobs.pop()
    assert moved.chunk == 1 and moved.x is not None  # with the rows it never had
    job = coordinator.jobs["job"]
    assert job.trainers == [first.id]
    assert f"trainer {second.id} is down" in job.warnings[0]


def test_an_unanswered_chunk_moves_after_the_first_answer_timeout(cluster):
    node, coordinator = cluster(2, auto=False)
    submit(coordinator, "job")
    first, second = node.trainers
    node.until(lambda: first.jobs and second.jobs, "a job at each trainer")
    first.jobs.clear()
    second.jobs.clear()
    schedule = coordinator.jobs["job"].schedule
    sent_at = schedule.pending[1].sent_at

    def tick(now: float) -> None:
        node.last_heard.update({first.id: now, second.id: now})  # both nodes are up
        coordinator.tick(now)

    tick(sent_at + FIRST_ANSWER_TIMEOUT - 0.5)
    assert {c: a.sent_at for c, a in schedule.pending.items()} == {0: sent_at, 1: sent_at}
    tick(sent_at + FIRST_ANSWER_TIMEOUT + 0.5)
    node.until(lambda: first.jobs and second.jobs, "each chunk at the other trainer", tick=False)
    assert [j.chunk for j in first.jobs] == [1] and [j.chunk for j in second.jobs] == [0]


def test_a_job_past_its_training_timeout_fails_with_timeout(cluster):
    node, coordinator = cluster(1, auto=False, training_timeout=30.0)
    client = submit(coordinator, "job")
    node.until(lambda: node.trainers[0].jobs, "the job")
    coordinator.tick(coordinator.jobs["job"].started + 29.0)
    assert client.replies == []
    coordinator.tick(coordinator.jobs["job"].started + 31.0)
    assert client.replies[0]["code"] == "TIMEOUT"
    assert coordinator.running() == 0


# -- the end of a job -----------------------------------------------------------------


def test_a_finished_job_calls_commit_model_once_with_the_model_bytes(cluster):
    node, coordinator = cluster(2)
    client = submit(coordinator, "job")
    node.until(lambda: node.commits, "the commit")
    header, replier, data, summary, extra = node.commits[0]
    assert header["id"] == "job"
    model = Model.from_bytes(data)
    assert model.training["rounds_run"] == 2
    assert summary["task"] == model.summary()["task"]
    assert extra["rounds"] == 2
    assert sorted(extra["trainers"]) == sorted(t.id for t in node.trainers)
    assert len(client.progress_seen) == 1  # after round 0; round 1 ends with the commit
    # Committing: still registered (a retry joins it), deadlines no longer apply.
    assert coordinator.progress_views()[0]["state"] == "committing"
    coordinator.tick(time.monotonic() + 3600.0)
    assert client.replies == []
    for _ in range(5):
        node.turn()  # more turns and ticks: nothing commits twice
    assert len(node.commits) == 1
    replier.wait(header)  # a no-op: the client's own replier already waits
    replier.ok(header, model_id="m-1", **extra)
    replier.ok(header, model_id="m-2")  # a second final reply is ignored
    assert [(r["status"], r["model_id"]) for r in client.replies] == [("OK", "m-1")]
    assert coordinator.running() == 0
    assert [status for status, _ in node.finished] == ["OK"]
    assert node.events[-1][0] == "training_finished"


def test_class_names_and_column_names_reach_the_model_file(cluster):
    node, coordinator = cluster(2)
    header, blobs = train_request("named")
    names = ["yes", "no"]  # not sorted: the model's classes are (sorted names)
    header.update(classes=names, features=["a", "b"], targets=["answer"])
    client = Client()
    coordinator.submit(header, blobs, client)
    node.until(lambda: node.commits, "the commit")
    _, _, data, summary, _ = node.commits[0]
    model = Model.from_bytes(data)
    assert model.classes == ("no", "yes")
    assert (model.features, model.targets) == (("a", "b"), ("answer",))
    assert summary["classes"] == ["no", "yes"] and summary["features"] == ["a", "b"]
    # Row r had index y[r] into ``names``: the model (a few epochs only)
    # predicts those names more often than the swapped ones.
    rows = np.frombuffer(blobs[0], np.float32).reshape(-1, 2)
    codes = np.frombuffer(blobs[1], np.int64)
    predicted = model.predict(rows)
    right = (predicted == np.asarray(names)[codes]).mean()
    swapped = (predicted == np.asarray(names)[1 - codes]).mean()
    assert right > 0.6 > swapped


def test_every_joined_client_gets_the_committed_reply(cluster):
    node, coordinator = cluster(1)
    first = submit(coordinator, "job")
    retry = submit(coordinator, "job")
    node.until(lambda: node.commits, "the commit")
    header, replier, *_ = node.commits[0]
    replier.ok(header, model_id="m")
    assert first.replies[0]["model_id"] == retry.replies[0]["model_id"] == "m"


def test_leadership_lost_fails_the_jobs_not_committing_with_not_leader(cluster):
    node, coordinator = cluster(1, max_trainings=2)
    committing = submit(coordinator, "committing")
    node.until(lambda: node.commits, "the first job's commit")
    node.trainers[0].auto = False
    training = submit(coordinator, "training")
    node.until(lambda: node.trainers[0].jobs, "the second job's chunk")
    coordinator.on_leadership_lost()
    assert training.replies[0]["code"] == "NOT_LEADER"
    assert "retry with the same request id" in training.replies[0]["message"]
    assert committing.replies == []  # its proposal answers it
    assert list(coordinator.jobs) == ["committing"]
