"""Distributed training, the leader's side (the seed's section 7).

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
job: its chunk goes to another trainer (this node's own first) and the
client's reply carries a warning. Chunk data is sent once per trainer;
later rounds send only the weights (the trainer caches the chunk).

All of this runs on the node's event loop, so it only does cheap work:
parsing, splitting, averaging. The epochs run in the trainer processes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zmq

from ..ml.training import BadInput, BadOptions, ChunkResult, TrainingPlan, TrainOptions
from ..registry import listing_summary
from ..transport import security, wire
from ..transport.addresses import node_ports, parse_address, tcp_endpoint
from ..transport.wire import ErrorCode, ProtocolError
from .protocol import Job, decode_result, encode_job

if TYPE_CHECKING:
    from ..node import Node, _Replier

log = logging.getLogger("zmqnode.training")

# A chunk whose trainer has not answered after this long (or after 4x the
# slowest answer seen this round, if larger) is given to another trainer.
MIN_CHUNK_TIMEOUT = 5.0
# How long a round's first answer may take (training on a large chunk).
FIRST_ANSWER_TIMEOUT = 60.0
# The trainer process starts when a leader is known, or after this long.
TRAINER_DELAY = 2.0
# A trainer that died is restarted at most this often (its port may still be
# held by the old process for a moment).
TRAINER_RESPAWN_SECONDS = 1.0
# Averaging models trained on a handful of rows each loses what each learned
# (XOR's 4 rows split 3 ways cannot be learned at all), so a chunk gets at
# least this many rows; small datasets use fewer trainers.
MIN_ROWS_PER_CHUNK = 32
# A peer counts as an available trainer if we heard from it this recently
# (a little over one heartbeat-answer period; a dead node drops out fast).
PEER_FRESH_SECONDS = 1.0
# A peer not heard from for this long is down: its chunks go elsewhere at
# once instead of waiting for the chunk deadline. (Longer than
# PEER_FRESH_SECONDS so that a briefly starved node does not lose its work.)
PEER_DOWN_SECONDS = 2.0


@dataclass
class _Assignment:
    chunk: int
    trainer: str
    sent_at: float
    data_sent: bool


@dataclass
class _Job:
    request_id: str
    header: dict[str, Any]
    replies: list[_Replier]
    plan: TrainingPlan | None  # None while the data is being prepared
    trainers: list[str]
    started: float
    preparing: Future | None = None
    # Distinguishes this attempt's SUB_TRAIN traffic from an earlier attempt
    # of the same request id (trainers cache chunks by job id).
    attempt: str = field(default_factory=lambda: os.urandom(6).hex())
    round: int = 0
    pending: dict[int, _Assignment] = field(default_factory=dict)
    results: dict[int, ChunkResult] = field(default_factory=dict)
    has_data: dict[str, set[int]] = field(default_factory=dict)  # trainer -> chunks it caches
    warnings: list[str] = field(default_factory=list)
    round_started: float = 0.0
    slowest: float = 0.0
    committing: bool = False


class _JobReplies:
    """Answers every client waiting on a job (the first request and its retries)."""

    def __init__(self, coordinator: TrainingCoordinator, job: _Job) -> None:
        self.coordinator = coordinator
        self.job = job

    def send(self, header: dict[str, Any], blobs: list[bytes] = ()) -> None:
        self.coordinator.jobs.pop(self.job.request_id, None)
        self.coordinator.finished(self.job, header.get("code") or header["status"])
        for reply in self.job.replies:
            reply.send(header, blobs)

    def ok(self, header: dict[str, Any], blobs: list[bytes] = (), **fields: Any) -> None:
        self.send(wire.ok_reply(header, **fields), blobs)

    def error(self, header: dict[str, Any], code: ErrorCode, message: str) -> None:
        self.send(wire.error_reply(header, code, message))


class TrainingCoordinator:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.jobs: dict[str, _Job] = {}
        self.trainer_proc: subprocess.Popen | None = None
        self._respawn_at = 0.0
        self._trainer_started = 0.0  # when the current trainer process was spawned
        self._prep = ThreadPoolExecutor(1, thread_name_prefix="train-prep")
        ctx = node.ctx
        host = node.config.host
        self.results_sock = ctx.socket(zmq.PULL)
        self.results_sock.setsockopt(zmq.LINGER, 0)
        self.results_sock.setsockopt(zmq.MAXMSGSIZE, node.config.max_model_bytes * 2 + (1 << 20))
        security.make_server(self.results_sock, node.keys, security.PEERS)
        self.reply_to = tcp_endpoint(host, node.ports.results)
        self.results_sock.bind(self.reply_to)
        self.pushers: dict[str, zmq.Socket] = {}
        for member in (node.id, *node.config.peers):
            mhost, mport = parse_address(member)
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)  # EAGAIN instead of queueing for a dead trainer
            sock.setsockopt(zmq.SNDHWM, 64)
            security.make_client(sock, node.keys)
            sock.connect(tcp_endpoint(mhost, node_ports(mport).training))
            self.pushers[member] = sock
        node.register_socket(self.results_sock, self._on_result)

    # -- trainer process ---------------------------------------------------------

    def start(self) -> None:
        """Nothing yet: the trainer starts once the cluster has a leader (see tick).

        Starting it right away would make six Python processes import numpy
        at once on a small machine and slow the first election down.
        """

    def _spawn_trainer(self) -> None:
        cfg = self.node.config
        endpoint = tcp_endpoint(cfg.host, cfg.ports.training)
        log_path = self.node.log_path
        self.trainer_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zmqnode.training.trainer",
                "--bind",
                endpoint,
                "--name",
                self.node.id,
                "--log",
                log_path,
                "--log-level",
                cfg.log_level,
                "--parent-pid",
                str(os.getpid()),
                # The trainer serves its PULL and answers leaders as this node.
                *(
                    ["--insecure"]
                    if cfg.keys_dir is None
                    else ["--keys", cfg.keys_dir, "--node-key", str(cfg.node_key)]
                ),
            ],
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._trainer_started = time.monotonic()
        log.info("trainer process %d listening on %s", self.trainer_proc.pid, endpoint)

    def trainer_state(self) -> str:
        if not self.node.config.trainer:
            return "disabled"
        if self.trainer_proc is None:
            return "starting"
        if self.trainer_proc.poll() is not None:
            return "down"
        return "training" if self.jobs else "idle"

    def tick(self, now: float) -> None:
        proc = self.trainer_proc
        if proc is None:
            waited = now - self.node.started
            if self.node.config.trainer and (self.node.core.leader_id or waited > TRAINER_DELAY):
                self._spawn_trainer()
        elif proc.poll() is not None and self.node.running and now >= self._respawn_at:
            log.warning("trainer process exited with status %s; restarting it", proc.returncode)
            for job in self.jobs.values():
                # Its cached chunks are gone: they are sent again (or elsewhere).
                if self.node.id in job.trainers:
                    job.warnings.append(
                        f"trainer {self.node.id} exited (status {proc.returncode}) and was "
                        "restarted; its chunks were sent again"
                    )
            self._respawn_at = now + TRAINER_RESPAWN_SECONDS
            self._spawn_trainer()
        for job in list(self.jobs.values()):
            if job.preparing is not None:
                if job.preparing.done():
                    self._start_prepared(job)
            elif not job.committing:
                self._check_deadlines(job, now)

    def close(self) -> None:
        self._prep.shutdown(wait=False, cancel_futures=True)
        if self.trainer_proc is not None and self.trainer_proc.poll() is None:
            self.trainer_proc.terminate()
            try:
                self.trainer_proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.trainer_proc.kill()

    # -- jobs ------------------------------------------------------------------

    def submit(self, header: dict[str, Any], blobs: list[bytes], reply: _Replier) -> None:
        request_id = header["id"]
        running = self.jobs.get(request_id)
        if running is not None:
            self.node.admit(header)  # a joined client waits like any parked request
            running.replies.append(reply)  # a retry of a training in progress
            return
        most = self.node.config.max_trainings
        if len(self.jobs) >= most:
            self.node.count("busy_trainings")
            raise ProtocolError(
                ErrorCode.BUSY,
                f"node {self.node.id} is already running {most} trainings "
                "(--max-trainings); retry later",
                header=header,
            )
        limit = self.node.config.max_request_bytes
        x = wire.read_array(header, blobs, "inputs", max_bytes=limit)
        y = wire.read_array(header, blobs, "outputs", max_bytes=limit)
        options_raw = header.get("options") or {}
        if not isinstance(options_raw, dict):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "'options' must be an object", header=header)
        trainers = self._available_trainers()
        if not trainers:
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                f"no trainer is running on node {self.node.id} or its peers; "
                "start nodes without --no-trainer",
                header=header,
            )
        try:
            options = TrainOptions.from_dict(options_raw)
        except BadOptions as exc:
            raise ProtocolError(ErrorCode.BAD_INPUT, str(exc), header=header) from None
        n_chunks = max(1, min(len(trainers), x.shape[0] // MIN_ROWS_PER_CHUNK))
        # Validating, normalizing and splitting a large dataset takes seconds:
        # off the event loop, or heartbeats stop and the leader is deposed.
        future = self._prep.submit(TrainingPlan, x, y, options, n_chunks=n_chunks)
        self.jobs[request_id] = _Job(
            request_id, header, [reply], None, trainers, time.monotonic(), preparing=future
        )

    def _start_prepared(self, job: _Job) -> None:
        """The plan is ready (or failed): start round 0 or answer the error."""
        future, job.preparing = job.preparing, None
        try:
            job.plan = future.result()
        except (BadInput, BadOptions) as exc:
            self._fail(job, ErrorCode.BAD_INPUT, str(exc))
            return
        except Exception as exc:
            log.exception("preparing training %s failed", job.request_id)
            self._fail(job, ErrorCode.INTERNAL, f"preparing the data failed: {exc!r}")
            return
        model_bytes = job.plan.problem.arch.n_params * 4
        if model_bytes > self.node.config.max_model_bytes:
            self._fail(
                job,
                ErrorCode.TOO_LARGE,
                f"a {job.plan.problem.arch.describe()} network needs about {model_bytes} "
                f"bytes, over --max-model-bytes {self.node.config.max_model_bytes}; use "
                "smaller hidden layers",
            )
            return
        job.trainers = job.trainers[: job.plan.n_chunks]
        problem = job.plan.problem
        log.info(
            "training %s: %d rows x %d columns on %d trainer(s): %s",
            job.request_id,
            problem.n_rows,
            problem.arch.layer_sizes[0],
            len(job.trainers),
            ", ".join(job.trainers),
        )
        self.node.events.add(
            "training_started",
            f"training {job.request_id[:12]}: {problem.n_rows} rows, {len(job.trainers)} trainers",
        )
        self._start_round(job)

    def _available_trainers(self) -> list[str]:
        node = self.node
        trainers = [node.id] if self.trainer_state() != "down" and node.config.trainer else []
        now = time.monotonic()
        for peer in node.config.peers:
            if now - node.last_heard.get(peer, -1e9) < PEER_FRESH_SECONDS:
                trainers.append(peer)
        return trainers

    def _start_round(self, job: _Job) -> None:
        job.results = {}
        job.pending = {}
        job.round_started = time.monotonic()
        job.slowest = 0.0
        available = self._available_trainers()
        now = time.monotonic()
        for lost in [t for t in job.trainers if t not in available]:
            why = self._trainer_down(lost, now) or "is unreachable"
            job.warnings.append(
                f"trainer {lost} {why}: from round {job.round} its chunks go to the others"
            )
            log.warning("training %s: %s", job.request_id, job.warnings[-1])
        job.trainers = [t for t in job.trainers if t in available] or available
        for chunk in range(job.plan.n_chunks):
            preferred = [job.trainers[chunk % len(job.trainers)]] if job.trainers else []
            self._place(job, chunk, [*preferred, *available])

    def _place(self, job: _Job, chunk: int, candidates: list[str]) -> None:
        """Send the chunk to the first candidate whose trainer takes it.

        If none does (all unreachable), the chunk stays pending with no
        trainer and the next tick tries again.
        """
        for trainer in dict.fromkeys(candidates):
            if self._assign(job, chunk, trainer):
                return
        job.pending[chunk] = _Assignment(chunk, "", float("-inf"), False)

    def _assign(self, job: _Job, chunk: int, trainer: str) -> bool:
        cached = chunk in job.has_data.get(trainer, set())
        data = job.plan.chunks[chunk]
        frames = encode_job(
            Job(
                job_id=f"{job.request_id}#{job.attempt}",
                round_index=job.round,
                chunk=chunk,
                reply_to=self.reply_to,
                options=job.plan.options.to_dict(),
                params=job.plan.params,
                x=None if cached else data.x,
                y=None if cached else data.y,
            )
        )
        try:
            self.pushers[trainer].send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:  # not connected (IMMEDIATE): that trainer is down
            job.has_data.get(trainer, set()).discard(chunk)
            return False
        job.has_data.setdefault(trainer, set()).add(chunk)
        job.pending[chunk] = _Assignment(chunk, trainer, time.monotonic(), not cached)
        return True

    def _on_result(self, frames: list[bytes]) -> None:
        try:
            result = decode_result(frames)
        except ProtocolError as exc:
            self.node.count("training_garbage")
            log.warning("dropped a malformed training result: %s", exc.message)
            return
        request_id, _, attempt = result.job_id.rpartition("#")
        job = self.jobs.get(request_id)
        if (
            job is None
            or job.plan is None
            or attempt != job.attempt
            or result.round_index != job.round
            or result.chunk in job.results
        ):
            return  # late answer from a reassigned chunk or a finished job
        assignment = job.pending.get(result.chunk)
        if result.missing_data:
            # The trainer restarted and lost its cache: send the chunk again.
            job.has_data.get(result.trainer, set()).discard(result.chunk)
            if assignment is not None:
                self._assign(job, result.chunk, assignment.trainer)
            return
        if result.error:
            self._fail(job, ErrorCode.TRAINING_FAILED, f"trainer {result.trainer}: {result.error}")
            return
        job.pending.pop(result.chunk, None)
        job.results[result.chunk] = ChunkResult(result.params, result.n_samples, result.loss)
        job.slowest = max(job.slowest, time.monotonic() - job.round_started)
        if len(job.results) == job.plan.n_chunks:
            self._finish_round(job)

    def _finish_round(self, job: _Job) -> None:
        results = [job.results[c] for c in range(job.plan.n_chunks)]
        try:
            done = job.plan.finish_round(results)
        except Exception as exc:
            log.exception("training %s failed while aggregating", job.request_id)
            self._fail(job, ErrorCode.TRAINING_FAILED, f"aggregation failed: {exc}")
            return
        if not done:
            self._report_progress(job)
            job.round += 1
            self._start_round(job)
            return
        # No time or node in the file: the same data, options, seed and number
        # of trainers give byte-identical models (the registry records when).
        model = job.plan.model()
        data = model.to_bytes()
        elapsed = time.monotonic() - job.started
        log.info(
            "training %s finished in %.2fs after %d rounds; replicating %d bytes",
            job.request_id,
            elapsed,
            job.round + 1,
            len(data),
        )
        if len(data) > self.node.config.max_model_bytes:
            self._fail(
                job,
                ErrorCode.TOO_LARGE,
                f"the trained model is {len(data)} bytes, over --max-model-bytes "
                f"{self.node.config.max_model_bytes}; use smaller hidden layers",
            )
            return
        extra = {
            "trainers": job.trainers,
            "rounds": job.round + 1,
            "train_seconds": round(elapsed, 3),
            "warnings": job.warnings,
            "metrics": model.summary(),
        }
        # The job stays registered until the commit answers, so that a retry
        # arriving meanwhile joins it instead of training a second time.
        job.committing = True
        self.node.store_model(
            job.header, _JobReplies(self, job), data, listing_summary(model), extra, admitted=True
        )

    def _report_progress(self, job: _Job) -> None:
        fields = self._progress(job)
        for reply in job.replies:
            reply.progress(job.header, **fields)

    def _progress(self, job: _Job) -> dict[str, Any]:
        plan = job.plan
        return {
            "round": plan.round_index,
            "rounds": plan.options.n_rounds,
            "epoch": min(plan.options.epochs, plan.round_index * plan.options.epochs_per_round),
            "epochs": plan.options.epochs,
            "metrics": plan.history[-1] if plan.history else {},
            "elapsed_s": round(time.monotonic() - job.started, 3),
            "trainers": list(job.trainers),
        }

    def _check_deadlines(self, job: _Job, now: float) -> None:
        # Until one chunk of the round has answered we know nothing of its
        # speed: wait longer rather than hand healthy trainers' work around.
        timeout = max(MIN_CHUNK_TIMEOUT, 4 * job.slowest) if job.slowest else FIRST_ANSWER_TIMEOUT
        for chunk, assignment in list(job.pending.items()):
            down = self._trainer_down(assignment.trainer, now, assignment.sent_at)
            if not down and now - assignment.sent_at < timeout:
                continue
            available = self._available_trainers()
            # Alone (one node), resend to the same, restarted, trainer.
            others = [t for t in available if t != assignment.trainer] or available
            if not others:
                continue  # nobody else to ask; the job timeout below still applies
            if assignment.trainer:
                why = down or f"did not answer within {timeout:.1f}s"
                job.warnings.append(
                    f"trainer {assignment.trainer} {why}: chunk {chunk} of round {job.round} "
                    f"went to another trainer"
                )
                log.warning(job.warnings[-1])
                job.trainers = [t for t in job.trainers if t != assignment.trainer] or others
            self._place(job, chunk, others)
        if now - job.started > self.node.config.training_timeout:
            self._fail(
                job,
                ErrorCode.TIMEOUT,
                f"training did not finish within {self.node.config.training_timeout:.0f}s",
            )

    def _trainer_down(self, trainer: str, now: float, sent_at: float = float("inf")) -> str:
        """Why ``trainer`` cannot answer a job sent at ``sent_at`` ('' if it may):
        its node is silent, or (our own) its process exited since."""
        if not trainer:
            return ""
        if trainer == self.node.id:
            proc = self.trainer_proc
            if proc is not None and proc.poll() is not None:
                return "exited"
            return "exited and was restarted" if sent_at < self._trainer_started else ""
        silent = now - self.node.last_heard.get(trainer, -1e9)
        return f"is down (node silent for {silent:.1f}s)" if silent > PEER_DOWN_SECONDS else ""

    def finished(self, job: _Job, status: str) -> None:
        """Count a job's end (metrics) and tell the watchers (events)."""
        node = self.node
        elapsed = time.monotonic() - job.started
        node.observe.training_jobs.labels(status).inc()
        node.observe.training_seconds.observe(elapsed)
        if status == "OK":
            text = f"training {job.request_id[:12]} finished in {elapsed:.1f}s"
            node.events.add("training_finished", text)
        else:
            text = f"training {job.request_id[:12]} failed ({status}) after {elapsed:.1f}s"
            node.events.add("training_failed", text)

    def progress_views(self) -> list[dict[str, Any]]:
        """The jobs in progress, for the status feed."""
        views = []
        for job in self.jobs.values():
            if job.plan is None:
                elapsed = round(time.monotonic() - job.started, 3)
                views.append({"id": job.request_id, "state": "preparing", "elapsed_s": elapsed})
            else:
                state = "committing" if job.committing else "training"
                views.append({"id": job.request_id, "state": state, **self._progress(job)})
        return views

    def _fail(self, job: _Job, code: ErrorCode, message: str) -> None:
        self.jobs.pop(job.request_id, None)
        self.finished(job, code.value)
        log.warning("training %s failed: %s", job.request_id, message)
        for reply in job.replies:
            reply.error(job.header, code, message)

    def on_leadership_lost(self) -> None:
        for job in list(self.jobs.values()):
            if job.committing:
                continue  # its proposal answers (committed by the next leader or not)
            self._fail(
                job,
                ErrorCode.NOT_LEADER,
                f"node {self.node.id} lost leadership during training; retry with the "
                "same request id (the new leader trains it once)",
            )
