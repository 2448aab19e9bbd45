"""Distributed training, the leader's side (docs/PROTOCOL.md §5.1 and §9).

TRAIN reaches the leader. The coordinator prepares the problem (validation,
normalization, initial weights), splits the rows into one chunk per
available trainer (its own included), and runs synchronous rounds of
model averaging (FedAvg): every round sends each trainer the same weights
and its chunk as a SUB_TRAIN job over PUSH; trainers answer over PUSH to
this node's results PULL; the weighted average starts the next round.

Why model averaging rather than synchronous gradient averaging: a gradient
step per round would cost one network round trip per minibatch, hundreds
per epoch; averaging after local epochs costs one round trip per round and,
on small i.i.d. (stratified) chunks, reaches the same accuracy.

A trainer that does not answer within the chunk deadline does not stall the
job: its chunk goes to another trainer and the client's reply carries a
warning (the decisions are ``scheduler.ChunkScheduler``'s). Chunk data is
sent once per trainer; later rounds send only the weights (the trainer
caches the chunk).

A trainer admits a node's PUSH only once its own allow-list names that node
(it re-reads its node's member keys), and a handshake it refused is final
for that connection (docs/PROTOCOL.md §1.1): a node that joined connects
before the members' trainers admit it. So each trainer's PUSH is watched
and reopened after a refusal (``transport.reopen``), and sends to it fail
(``IMMEDIATE``) meanwhile, as to a trainer not connected yet.

All of this runs on the node's event loop, so it only does cheap work:
parsing, splitting, averaging. The epochs run in the trainer processes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import zmq

from ..config import NodeConfig
from ..ml.training import BadInput, BadOptions, ChunkResult, TrainingPlan, TrainOptions
from ..registry import listing_summary
from ..replies import Replier
from ..transport import security, wire
from ..transport.addresses import node_ports, parse_address, tcp_endpoint
from ..transport.reopen import Reopening, WatchedClients
from ..transport.sockets import Sockets
from ..transport.wire import ErrorCode, ProtocolError
from .process import TrainerProcess
from .protocol import Job, decode_result, encode_job
from .request import ColumnNames, make_plan, read_train_request
from .scheduler import ChunkScheduler, Dispatch, Trainers, chunk_count

log = logging.getLogger("zmqnode.training")

# Jobs queued on a trainer's PUSH before sends to it fail (they are moved).
TRAINER_SEND_HWM = 64


@dataclass(frozen=True)
class TrainingLinks:
    """What the coordinator may use of its node: nothing else."""

    node_id: str
    peers: tuple[str, ...]
    config: NodeConfig  # read-only settings
    sockets: Sockets
    log_path: str  # the node's log file (the trainer process logs there too)
    # The node's loop serves this socket and hands each message to the handler.
    register_socket: Callable[[zmq.Socket, Callable[[list[bytes]], None]], None]
    admit: Callable[[dict[str, Any]], None]  # raises ProtocolError(BUSY) past --max-pending
    count: Callable[[str], None]  # count an event without its own metric
    # (header, replier, model_bytes, listing summary, extra reply fields):
    # replicate the model and answer the replier once it is committed.
    commit_model: Callable[[dict[str, Any], Replier, bytes, dict[str, Any], dict[str, Any]], None]
    leader_id: Callable[[], str]  # "" when none is known
    # peer -> time.monotonic() of its last Raft message (the node's live dict)
    last_heard: Mapping[str, float]
    is_running: Callable[[], bool]  # False once the node is stopping
    add_event: Callable[[str, str], None]  # (kind, text) for the status feed
    job_finished: Callable[[str, float], None]  # (status, seconds): metrics


@dataclass
class TrainingJob:
    """One TRAIN request in progress on this leader."""

    request_id: str
    header: dict[str, Any]
    replies: list[Replier]  # the first request and every retry that joined it
    schedule: ChunkScheduler
    started: float
    preparing: Future[TrainingPlan] | None  # until the data is validated and split
    columns: ColumnNames  # the request's column names, for the model file
    plan: TrainingPlan | None = None
    # Distinguishes this attempt's SUB_TRAIN traffic from an earlier attempt
    # of the same request id (trainers cache chunks by job id).
    attempt: str = field(default_factory=lambda: os.urandom(6).hex())
    results: dict[int, ChunkResult] = field(default_factory=dict)  # this round's answers
    committing: bool = False

    @property
    def trainers(self) -> list[str]:
        return self.schedule.trainers

    @property
    def warnings(self) -> list[str]:
        return self.schedule.warnings


class _JobReplies:
    """Answers every client waiting on a job (the first request and its retries)."""

    def __init__(self, coordinator: TrainingCoordinator, job: TrainingJob) -> None:
        self.coordinator = coordinator
        self.job = job
        self.sent = False

    def send(self, header: dict[str, Any], blobs: Sequence[bytes] = ()) -> None:
        if self.sent:
            return
        self.sent = True
        self.coordinator.jobs.pop(self.job.request_id, None)
        self.coordinator.finished(self.job, header.get("code") or header["status"])
        for reply in self.job.replies:
            reply.send(header, blobs)

    def ok(self, header: dict[str, Any] | None, blobs: Sequence[bytes] = (), **fields: Any) -> None:
        self.send(wire.ok_reply(header, **fields), blobs)

    def error(self, header: dict[str, Any] | None, code: ErrorCode, message: str) -> None:
        self.send(wire.error_reply(header, code, message))

    def progress(self, header: dict[str, Any], **fields: Any) -> None:
        if self.sent:
            return
        for reply in self.job.replies:
            reply.progress(header, **fields)

    def wait(self, header: dict[str, Any]) -> None:
        """Nothing to do: each client's own replier already waits since its
        TRAIN came (the node parked it), so shutdown answers it."""


class TrainingCoordinator:
    """Runs the TRAIN jobs this node leads, from the client's request to the
    model handed to ``commit_model``.

    It owns the results PULL socket, one PUSH socket per member's trainer
    and this node's trainer process (``TrainerProcess``); every choice of
    which trainer trains which chunk, and when a chunk moves, is made by
    each job's ``ChunkScheduler``. It sees the node only through
    ``TrainingLinks``. All methods run on the node's event loop; preparing a
    job's data runs on one helper thread.
    """

    def __init__(self, links: TrainingLinks) -> None:
        """Binds the results PULL (P + 4000) and connects the trainers' PUSH
        sockets. Raises ``transport.sockets.BindError`` if the port is taken."""
        self.links = links
        self.config = links.config
        self.jobs: dict[str, TrainingJob] = {}
        self.created = time.monotonic()
        self.process = TrainerProcess(links.node_id, links.config, links.log_path, self.created)
        self._prep = ThreadPoolExecutor(1, thread_name_prefix="train-prep")
        config = links.config
        self.reply_to = tcp_endpoint(config.host, config.ports.results)
        self.results_sock = links.sockets.server(
            zmq.PULL,
            self.reply_to,
            security.PEERS,
            linger_ms=0,
            # A result carries one set of weights (at most --max-model-bytes).
            max_message_bytes=config.max_model_bytes * 2 + (1 << 20),
        )
        # Each trainer's PUSH, reopened when that trainer refuses it (its
        # monitor is read each tick: a refusal waits at most a tick).
        self.trainer_links: WatchedClients[str] = WatchedClients(
            links.sockets,
            Reopening(log, links.count, "trainer_handshake_refused", "trainer_link_reopened"),
        )
        self.pushers: dict[str, zmq.Socket] = {}
        for member in (links.node_id, *links.peers):
            host, port = parse_address(member)
            self.pushers[member] = self.trainer_links.open(
                member,
                zmq.PUSH,
                tcp_endpoint(host, node_ports(port).training),
                who=f"the trainer of {member}",
                what="training PUSH",
                send_hwm=TRAINER_SEND_HWM,
                # A send to a trainer that is not connected fails at once and
                # the chunk goes to the next one (docs/PROTOCOL.md §9).
                immediate=True,
            )
        links.register_socket(self.results_sock, self._on_result)

    # -- what the node calls -----------------------------------------------------

    def tick(self, now: float) -> None:
        """Supervise the trainer process, reopen refused trainer links, start
        prepared jobs, move late chunks. ``now``: ``time.monotonic()``."""
        links = self.links
        self.trainer_links.settle()
        self.trainer_links.tick(now)
        status = self.process.tick(
            now, leader_known=bool(links.leader_id()), running=links.is_running()
        )
        if status is not None:
            for job in self.jobs.values():
                job.schedule.trainer_restarted(links.node_id, status)
        if not self.jobs:
            return
        trainers = self._trainers(now)
        for job in list(self.jobs.values()):
            if job.preparing is not None:
                if job.preparing.done():
                    self._start_prepared(job, now, trainers)
            elif not job.committing:
                self._check_deadlines(job, now, trainers)

    def close(self) -> None:
        """Stop the trainer process and close the sockets (the node is going)."""
        self._prep.shutdown(wait=False, cancel_futures=True)
        self.process.close()
        self.results_sock.close(0)
        self.trainer_links.close_all(linger_ms=0)
        self.pushers.clear()

    def trainer_state(self) -> str:
        """This node's trainer for the status feed (docs/PROTOCOL.md §9b)."""
        return self.process.state(busy=bool(self.jobs))

    def running(self) -> int:
        """Trainings in progress here (preparing, training or committing)."""
        return len(self.jobs)

    def joined_clients(self) -> int:
        """Client requests waiting on a training (each retry that joined counts)."""
        return sum(len(job.replies) for job in self.jobs.values())

    def submit(self, header: dict[str, Any], blobs: list[bytes], reply: Replier) -> None:
        """Start a TRAIN (or join ``reply`` to the running job of the same id).

        The answer comes later through ``reply``. Raises ``ProtocolError``:
        BUSY past --max-trainings (or, for a join, past --max-pending),
        BAD_REQUEST/BAD_SHAPE/BAD_INPUT/TOO_LARGE for the request,
        UNAVAILABLE when no trainer is running anywhere.
        """
        request_id = header["id"]
        running = self.jobs.get(request_id)
        if running is not None:
            self.links.admit(header)  # a joined client waits like any parked request
            running.replies.append(reply)  # a retry of a training in progress
            return
        node_id, config = self.links.node_id, self.config
        most = config.max_trainings
        if len(self.jobs) >= most:
            self.links.count("busy_trainings")
            raise ProtocolError(
                ErrorCode.BUSY,
                f"node {node_id} is already running {most} trainings "
                "(--max-trainings); retry later",
                header=header,
            )
        limit = config.max_request_bytes
        request = read_train_request(header, blobs, limit)
        options_raw = header.get("options") or {}
        if not isinstance(options_raw, dict):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "'options' must be an object", header=header)
        now = time.monotonic()
        trainers = self._trainers(now).available
        if not trainers:
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                f"no trainer is running on node {node_id} or its peers; "
                "start nodes without --no-trainer",
                header=header,
            )
        try:
            options = TrainOptions.from_dict(options_raw)
        except BadOptions as exc:
            raise ProtocolError(ErrorCode.BAD_INPUT, str(exc), header=header) from None
        n_chunks = chunk_count(request.x.shape[0], len(trainers))
        # Validating, normalizing and splitting a large dataset takes seconds:
        # off the event loop, or heartbeats stop and the leader is deposed.
        future = self._prep.submit(make_plan, request, options, n_chunks)
        schedule = ChunkScheduler(trainers, now, config.training_timeout)
        self.jobs[request_id] = TrainingJob(
            request_id, header, [reply], schedule, now, future, ColumnNames.of(request)
        )

    def progress_views(self) -> list[dict[str, Any]]:
        """The jobs in progress, for the status feed (docs/PROTOCOL.md §9b)."""
        views = []
        now = time.monotonic()
        for job in self.jobs.values():
            if job.plan is None:
                elapsed = round(now - job.started, 3)
                views.append({"id": job.request_id, "state": "preparing", "elapsed_s": elapsed})
            else:
                state = "committing" if job.committing else "training"
                views.append({"id": job.request_id, "state": state, **self._progress(job, now)})
        return views

    def on_leadership_lost(self) -> None:
        """Fail every job not yet committing with NOT_LEADER: the client retries
        with the same id and the new leader trains it once (docs/PROTOCOL.md §6)."""
        for job in list(self.jobs.values()):
            if job.committing:
                continue  # its proposal answers (committed by the next leader or not)
            self._fail(
                job,
                ErrorCode.NOT_LEADER,
                f"node {self.links.node_id} lost leadership during training; retry with the "
                "same request id (the new leader trains it once)",
            )

    def finished(self, job: TrainingJob, status: str) -> None:
        """Count a job's end (metrics) and tell the watchers (events)."""
        elapsed = time.monotonic() - job.started
        self.links.job_finished(status, elapsed)
        if status == "OK":
            text = f"training {job.request_id[:12]} finished in {elapsed:.1f}s"
            self.links.add_event("training_finished", text)
        else:
            text = f"training {job.request_id[:12]} failed ({status}) after {elapsed:.1f}s"
            self.links.add_event("training_failed", text)

    # -- trainers --------------------------------------------------------------

    def _trainers(self, now: float) -> Trainers:
        return Trainers.survey(
            now,
            own=self.links.node_id,
            own_enabled=self.config.trainer,
            own_exited=self.process.exited(),
            own_started=self.process.started,
            peers=self.links.peers,
            last_heard=self.links.last_heard,
        )

    def _dispatcher(self, job: TrainingJob) -> Dispatch:
        return partial(self._send_chunk, job)

    def _send_chunk(self, job: TrainingJob, chunk: int, trainer: str, with_data: bool) -> bool:
        """PUSH chunk ``chunk`` of the current round to ``trainer``; False if
        it is not connected (IMMEDIATE) or its queue is full."""
        assert job.plan is not None
        data = job.plan.chunks[chunk]
        frames = encode_job(
            Job(
                job_id=f"{job.request_id}#{job.attempt}",
                round_index=job.schedule.round,
                chunk=chunk,
                reply_to=self.reply_to,
                options=job.plan.options.to_dict(),
                params=job.plan.params,
                x=data.x if with_data else None,
                y=data.y if with_data else None,
            )
        )
        try:
            self.pushers[trainer].send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        return True

    # -- a job's life ----------------------------------------------------------

    def _start_prepared(self, job: TrainingJob, now: float, trainers: Trainers) -> None:
        """The plan is ready (or failed): start round 0 or answer the error."""
        future, job.preparing = job.preparing, None
        assert future is not None
        try:
            plan = job.plan = future.result()
        except (BadInput, BadOptions) as exc:
            self._fail(job, ErrorCode.BAD_INPUT, str(exc))
            return
        except Exception as exc:
            log.exception("preparing training %s failed", job.request_id)
            self._fail(job, ErrorCode.INTERNAL, f"preparing the data failed: {exc!r}")
            return
        max_bytes = self.config.max_model_bytes
        model_bytes = plan.problem.arch.n_params * 4
        if model_bytes > max_bytes:
            self._fail(
                job,
                ErrorCode.TOO_LARGE,
                f"a {plan.problem.arch.describe()} network needs about {model_bytes} "
                f"bytes, over --max-model-bytes {max_bytes}; use smaller hidden layers",
            )
            return
        job.schedule.set_chunks(plan.n_chunks)
        problem = plan.problem
        log.info(
            "training %s: %d rows x %d columns on %d trainer(s): %s",
            job.request_id,
            problem.n_rows,
            problem.arch.layer_sizes[0],
            len(job.trainers),
            ", ".join(job.trainers),
        )
        self.links.add_event(
            "training_started",
            f"training {job.request_id[:12]}: {problem.n_rows} rows, {len(job.trainers)} trainers",
        )
        job.results = {}
        self._warn(job, job.schedule.start_round(now, trainers, self._dispatcher(job)))

    def _on_result(self, frames: list[bytes]) -> None:
        try:
            result = decode_result(frames)
        except ProtocolError as exc:
            self.links.count("training_garbage")
            log.warning("dropped a malformed training result: %s", exc.message)
            return
        now = time.monotonic()
        request_id, _, attempt = result.job_id.rpartition("#")
        job = self.jobs.get(request_id)
        if (
            job is None
            or job.plan is None
            or attempt != job.attempt
            or result.round_index != job.schedule.round
            or result.chunk >= job.plan.n_chunks
            or result.chunk in job.results
        ):
            return  # late answer from a reassigned chunk or a finished job
        if result.missing_data:
            # The trainer restarted and lost its cache: send the chunk again.
            job.schedule.lost_data(result.trainer, result.chunk, now, self._dispatcher(job))
            return
        if result.error:
            self._fail(job, ErrorCode.TRAINING_FAILED, f"trainer {result.trainer}: {result.error}")
            return
        assert result.params is not None  # decode_result: params, an error or missing_data
        job.schedule.answered(result.chunk, now)
        job.results[result.chunk] = ChunkResult(result.params, result.n_samples, result.loss)
        if len(job.results) == job.plan.n_chunks:
            self._finish_round(job, now)

    def _finish_round(self, job: TrainingJob, now: float) -> None:
        plan = job.plan
        assert plan is not None
        results = [job.results[c] for c in range(plan.n_chunks)]
        try:
            done = plan.finish_round(results)
        except Exception as exc:
            log.exception("training %s failed while aggregating", job.request_id)
            self._fail(job, ErrorCode.TRAINING_FAILED, f"aggregation failed: {exc}")
            return
        if not done:
            self._report_progress(job, now)
            job.results = {}
            trainers = self._trainers(now)
            self._warn(job, job.schedule.next_round(now, trainers, self._dispatcher(job)))
            return
        # No time or node in the file: the same data, options, seed and number
        # of trainers give byte-identical models (the registry records when).
        model = job.columns.name(plan.model())
        data = model.to_bytes()
        elapsed = now - job.started
        rounds = job.schedule.round + 1
        log.info(
            "training %s finished in %.2fs after %d rounds; replicating %d bytes",
            job.request_id,
            elapsed,
            rounds,
            len(data),
        )
        max_bytes = self.config.max_model_bytes
        if len(data) > max_bytes:
            self._fail(
                job,
                ErrorCode.TOO_LARGE,
                f"the trained model is {len(data)} bytes, over --max-model-bytes "
                f"{max_bytes}; use smaller hidden layers",
            )
            return
        extra = {
            "trainers": job.trainers,
            "rounds": rounds,
            "train_seconds": round(elapsed, 3),
            "warnings": job.warnings,
            "metrics": model.summary(),
        }
        # The job stays registered until the commit answers, so that a retry
        # arriving meanwhile joins it instead of training a second time.
        job.committing = True
        self.links.commit_model(
            job.header, _JobReplies(self, job), data, listing_summary(model), extra
        )

    def _check_deadlines(self, job: TrainingJob, now: float, trainers: Trainers) -> None:
        self._warn(job, job.schedule.check(now, trainers, self._dispatcher(job)))
        if job.schedule.timed_out(now):
            self._fail(
                job,
                ErrorCode.TIMEOUT,
                f"training did not finish within {self.config.training_timeout:.0f}s",
            )

    def _warn(self, job: TrainingJob, warnings: list[str]) -> None:
        for text in warnings:
            log.warning("training %s: %s", job.request_id, text)

    def _report_progress(self, job: TrainingJob, now: float) -> None:
        fields = self._progress(job, now)
        for reply in job.replies:
            reply.progress(job.header, **fields)

    def _progress(self, job: TrainingJob, now: float) -> dict[str, Any]:
        plan = job.plan
        assert plan is not None
        return {
            "round": plan.round_index,
            "rounds": plan.options.n_rounds,
            "epoch": min(plan.options.epochs, plan.round_index * plan.options.epochs_per_round),
            "epochs": plan.options.epochs,
            "metrics": plan.history[-1] if plan.history else {},
            "elapsed_s": round(now - job.started, 3),
            "trainers": list(job.trainers),
        }

    def _fail(self, job: TrainingJob, code: ErrorCode, message: str) -> None:
        self.jobs.pop(job.request_id, None)
        self.finished(job, code.value)
        log.warning("training %s failed: %s", job.request_id, message)
        for reply in job.replies:
            reply.error(job.header, code, message)
