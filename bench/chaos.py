"""``python -m bench chaos``: a real cluster under load and faults, then checked.

A fresh ``LocalCluster`` (3 nodes by default, in a temporary folder) gets, for
``--duration`` seconds, a mixed load and a nemesis at the same time:

- **predictions**: ``--predictors`` (100) concurrent PREDICTs, all from one
  thread (one DEALER per predictor, one ``zmq.Poller``; each predictor waits
  a random think time so the total is about ``--predict-rate`` per second and
  the harness stays light on a 2-core machine). Each asks for a model that
  was already acknowledged when the request was sent; one attempt per
  request with a deadline (a timeout moves the predictor to the next node);
  the outputs of an imported model are compared with the expected ones;
- **imports**: ``IMPORTERS`` clients import small model files, each file's
  bytes made unique (a nonce in its ``created_by`` metadata) and their
  sha256 remembered;
- **trainings**: ``TRAINERS`` clients train XOR;
- **listings**: one client per node LISTs the models on that node.

The nemesis (``random.Random(seed)``) repeatedly waits a random gap, then
SIGKILLs a node (restarted after the hold), SIGSTOPs it (SIGCONT after the
hold) or cuts it off from the other nodes' Raft traffic (``isolate`` /
``heal``; one time in four only what it hears, one in four only what it
says: ``cut_one_way``). That cut goes through a test-only fault file and
drops Raft messages only. With ``--netns`` every node runs in its own
network namespace (``harness/netns.py``) and a partition cuts the network
instead: iptables DROP rules between the node and its peers (``cut_off``, or
``cut_one_way`` for one direction), or, every other both-ways partition, the
node's link taken down (``isolate``: the load's clients lose it too); Raft,
training jobs and results, model-file fetches and client requests are then
all cut alike, with the same schedule and the same checks. Half the time
the nemesis's target is the current leader on purpose; now and then a
second fault hits another node while the first holds, so a majority can be
down. The finale takes a majority down (the
leader among it) for 2 s; then everything is healed (all restarted, SIGCONT,
``heal()``).

Membership changes are faults too (``_Changes``; off with
``--no-membership``, chosen with ``--change-kinds``): now and then the
schedule starts one, in its own thread while the other faults go on, never
two at a time and never from ``floor`` voters or fewer (2 of 3 nodes stay
voters, 3 from 5 nodes on). ``replace``: a voter other than the leader is
removed (``MEMBER_CHANGE remove``, answered once committed), SIGKILLed, its
storage wiped, started again at the same address with ``--join`` and its own
key (``LocalCluster.rejoin``), and promoted once the leader lists it as a
learner close behind (``--promote-after files``: and once its storage holds
every model file, see docs/FAULTS.md); ``remove-leader``: the same with the
leader;
``demote``: a voter is a learner for a few seconds, then promoted. Each step
is retried with the same intent until ``CHANGE_STEP_LIMIT`` (asking for what
the membership already is answers OK); a change whose step still fails is
counted as failed, with why. After the heal, every original node is made a
voter again (a removed one rejoins, a learner is promoted) under the load,
and the final membership must be exactly the original nodes, all voters.

Every client call is recorded (``bench/history.py``): process, op, start,
end, and ok / fail (an error meaning "not done") / unknown (timeout, no
answer, retryable error). Then:

1. the leader: time from the last heal until a write (IMPORT) is acknowledged;
2. convergence: every node applies up to the same index;
3. every id proven present (acknowledged write, or seen by a read) is listed
   by every node and stored as ``models/<id>.bin`` in every node's storage
   dir with the same bytes; for an import, the bytes sent (sha256). No id is
   ever listed with two different contents;
4. the history (with each node's final LIST) passes ``history.check``: LIST
   linearizable, no NOT_FOUND for a model acknowledged before the predict;
5. no call hung: each has a deadline; a call that ran past it by more than
   ``GRACE`` (or never returned) is hung (membership requests included);
6. the final membership is every original node as a voter, no learner.

ERROR and Traceback lines in the nodes' logs (and a Go node's ``panic:`` or
``fatal error:``) are printed as a warning.

``--impls py,go,py`` runs a mixed cluster: each node is a Python node
(``python -m zmqnode``) or a Go one (``go/worker``, same flags), the pattern
repeated over ``--nodes``; with ``--netns`` too. A node keeps its address's
implementation whenever it is started again (a kill, or ``replace`` /
``remove-leader`` rejoining it wiped). ``go/worker`` is built once at the
start and copied into the run's folder, so every restart runs the same
binary even when go/ changes meanwhile. The summary line starts with the
implementations, in node order.

It ends with one summary line; the exit status is non-zero when something
was lost, hung, not linearizable, or another check failed. ``run()`` is the
same code path for ``tests/test_chaos.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import random
import shlex
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from client import Client, ClientError, ClusterUnavailable
from harness.cluster import LocalCluster
from harness.netns import NetnsCluster, unavailable
from zmqnode.ml.options import TrainOptions
from zmqnode.ml.training import train
from zmqnode.registry import model_id_for
from zmqnode.transport import security, wire

from . import history
from .history import ADD, FAIL, FOUND, NOT_FOUND, OK, PREDICT, READ, UNKNOWN, Op

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.int64)

IMPORTERS = 4
TRAINERS = 2
GRACE = 2.0  # a call this long past its deadline is hung
# (per-attempt timeout, retries, whole-call deadline) per kind of call
IMPORT_CALL = (2.0, 3, 10.0)
TRAIN_CALL = (10.0, 2, 30.0)
LIST_CALL = (2.0, 1, 5.0)
PREDICT_TIMEOUT = 2.0
CONNECT_TIMEOUT = 0.3  # a predictor whose node accepts no connection by then moves on
WRITE_PAUSE = (0.2, 0.8)  # think time of a writer between calls, seconds
LIST_PAUSE = (0.2, 0.6)
LEADER_AFTER_HEAL_LIMIT = 30.0
# Membership changes (the nemesis's fifth fault, --no-membership turns it off).
CHANGE_CHANCE = 0.15  # per nemesis step, when no change is in flight
CHANGE_KINDS = ("replace", "replace", "demote", "remove-leader")
CHANGE_CALL = (3.0, 3, 15.0)  # one MEMBER_CHANGE/MEMBERS call: per attempt, retries, whole call
CHANGE_STEP_LIMIT = 90.0  # one step (remove, join and catch up, promote) retried until then
DEMOTED_HOLD = (3.0, 15.0)  # seconds a demoted voter stays a learner
CAUGHT_UP_LAG = 64  # a learner this close to the leader can be promoted (PROTOCOL.md §5.9)
FILES_LIMIT = 300.0  # --promote-after files: a learner's model files all there by then
RESTORE_LIMIT = 240.0  # after the faults: every original node a voter again by then
CONVERGE_LIMIT = 60.0
# Error codes after which a write certainly did not happen (the protocol's
# non-retryable codes, except INTERNAL: a node bug says nothing about state).
NOT_DONE_CODES = frozenset(
    c.value for c in wire.ErrorCode if not c.retryable and c is not wire.ErrorCode.INTERNAL
)


@dataclass
class ChaosResult:
    """What one chaos run found: load and fault counts, and every failed check
    (lost acknowledged models, linearizability violations, other problems,
    ERROR lines in the nodes' logs). ``main`` prints it and exits non-zero
    when any check failed."""

    duration: float
    faults: Counter = field(default_factory=Counter)
    requests: int = 0
    ok: int = 0
    errors: int = 0
    hung: list[str] = field(default_factory=list)
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    problems: list[str] = field(default_factory=list)  # other failed checks
    leader_after_heal: float | None = None
    error_codes: Counter = field(default_factory=Counter)
    by_kind: dict[str, Counter] = field(default_factory=dict)  # op kind -> outcomes
    ops: list[Op] = field(default_factory=list, repr=False)  # the history, for analysis
    log_errors: list[str] = field(default_factory=list)  # ERROR/Traceback lines in node logs
    fault_log: list[str] = field(default_factory=list)
    netns: bool = False  # the nodes ran in network namespaces (real partitions)
    impls: tuple[str, ...] = ()  # each node's implementation ("py" / "go"), in node order
    changes: Counter = field(default_factory=Counter)  # "<kind> done|failed" -> count
    change_log: list[str] = field(default_factory=list)  # how each membership change went
    final_membership: str = ""  # the leader's membership after the restore

    @property
    def linearizable(self) -> bool:
        return self.violation_count == 0

    @property
    def passed(self) -> bool:
        return not self.lost and not self.hung and self.linearizable and not self.problems

    def summary(self) -> str:
        f = self.faults
        heal = "none" if self.leader_after_heal is None else f"{self.leader_after_heal:.2f} s"
        return (
            f"chaos{' --netns' if self.netns else ''}"
            f"{' --impls ' + ','.join(self.impls) if self.impls else ''}: "
            f"{self.duration:.0f} s, faults"
            f" {sum(f.values())} (kill {f['kill']}, "
            f"pause {f['pause']}, partition {f['partition']}), requests {self.requests} "
            f"(ok {self.ok}, error {self.errors}, hung {len(self.hung)}), acknowledged models "
            f"{self.acknowledged}, lost {len(self.lost)}, linearizable "
            f"{'yes' if self.linearizable else 'no'}, leader after heal {heal}, "
            f"{self.change_summary()}other failures {len(self.problems)}"
        )

    def change_summary(self) -> str:
        """``membership changes N (done D, failed F; replace .., ...), final ...``;
        empty when the run made none."""
        if not self.changes and not self.final_membership:
            return ""
        done = sum(v for k, v in self.changes.items() if k.endswith(" done"))
        failed = sum(v for k, v in self.changes.items() if k.endswith(" failed"))
        kinds: Counter = Counter()
        for k, v in self.changes.items():
            kinds[k.rsplit(" ", 1)[0]] += v
        detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        return (
            f"membership changes {done + failed} (done {done}, failed {failed}"
            + (f"; {detail}" if detail else "")
            + f"), final membership {self.final_membership or 'unknown'}, "
        )


class _Run:
    """State shared by the load threads, the nemesis and the checks."""

    def __init__(self, cluster: LocalCluster, seed: int, log: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.seed = seed
        self.log = log
        self.t0 = time.monotonic()
        self.history = history.History()
        self.stop = threading.Event()  # the load stops
        self.faults_over = threading.Event()
        self.acked: list[str] = []  # model ids acknowledged so far (predict targets)
        self.sent_sha: dict[str, str] = {}  # import model id -> sha256 of the bytes sent
        self.seen_sha: dict[str, str] = {}  # model id -> first sha256 any LIST showed
        self.problems: list[str] = []
        self.hung: list[str] = []
        self.inflight: dict[int, tuple[str, str, float, float]] = {}
        self.lock = threading.Lock()
        self.counter = iter(range(1, 1 << 62))
        self.base_model = train(
            XOR_X, XOR_Y.astype(np.float32), TrainOptions(hidden_layers=(4,), epochs=20, seed=seed)
        )
        self.expected = self.base_model.predict(XOR_X).astype(np.float64).ravel()
        self.wrong_predictions = 0

    def client(self, nodes: list[str], timeout: float, retries: int) -> Client:
        """A load client: the cluster's keys, a short connect timeout."""
        return Client(
            nodes, keys=self.cluster.keys, timeout=timeout, retries=retries, connect_timeout=0.5
        )

    def now(self) -> float:
        return time.monotonic() - self.t0

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)
        self.log(f"[{self.now():7.2f}] PROBLEM {text}")

    def note_sha(self, model_id: str, sha: str, where: str) -> None:
        first = self.seen_sha.setdefault(model_id, sha)
        if first != sha:
            self.problem(f"model {model_id} listed with two contents: {first} and {sha} ({where})")

    def call(
        self,
        process: str,
        kind: str,
        model_id: str | None,
        budget: float,
        fn: Callable[[], Any],
        slack: Callable[[], float] = lambda: 0.0,
    ) -> tuple[str, Any]:
        """Run one client call, record it; returns (status, reply or error code).

        ``slack()``: seconds the call's deadline legitimately moved (PROGRESS).
        """
        key = next(self.counter)
        start = time.monotonic()
        self.inflight[key] = (process, kind, start, budget)
        value: Any = None
        try:
            value = fn()
            status, detail = OK, ""
        except ClientError as exc:
            status = FAIL if exc.code in NOT_DONE_CODES else UNKNOWN
            detail = f"{exc.code} from {exc.node}"
        except ClusterUnavailable:
            status, detail = UNKNOWN, "NO_ANSWER"
        except Exception as exc:  # a harness or client bug: report it, do not count it as hung
            status, detail = UNKNOWN, "HARNESS"
            self.problem(f"{process} {kind}: {exc!r}")
        end = time.monotonic()
        del self.inflight[key]
        if end - start > budget + slack() + GRACE:
            self.hung.append(f"{process} {kind} {model_id or ''} took {end - start:.1f} s")
        read_value = None
        if kind == READ and status == OK:
            read_value = frozenset(m["model_id"] for m in value)
        self.history.record(
            Op(process, kind, start, end, status, id=model_id, value=read_value, detail=detail)
        )
        if kind == ADD and status == OK:
            self.acked.append(model_id)
        if detail.startswith("INTERNAL"):
            self.problem(f"{process} {kind}: INTERNAL error from a node")
        return status, value if status == OK else detail

    def unique_model(self) -> bytes:
        nonce = f"chaos seed {self.seed} #{next(self.counter)} {uuid.uuid4().hex}"
        created_by = {**self.base_model.created_by, "chaos": nonce}
        return dataclasses.replace(self.base_model, created_by=created_by).to_bytes()


# ---------------------------------------------------------------------------
# the load


def _importer(run: _Run, k: int) -> None:
    timeout, retries, budget = IMPORT_CALL
    rng = random.Random(run.seed * 1000 + k)
    with run.client(run.cluster.ids, timeout, retries) as c:
        while not run.stop.is_set():
            _import_one(run, c, f"import{k}", budget)
            run.stop.wait(rng.uniform(*WRITE_PAUSE))  # think time, not synchronization


def _import_one(run: _Run, client: Client, process: str, budget: float) -> str:
    data = run.unique_model()
    rid = uuid.uuid4().hex
    model_id = model_id_for(rid)
    run.sent_sha[model_id] = hashlib.sha256(data).hexdigest()
    header = {"type": "IMPORT", "id": rid, "filename": "chaos.bin", "size_bytes": len(data)}
    status, _ = run.call(
        process, ADD, model_id, budget, lambda: client.request(header, [data], deadline=budget)
    )
    return status


def _trainer(run: _Run, k: int) -> None:
    timeout, retries, budget = TRAIN_CALL
    rng = random.Random(run.seed * 1000 + 100 + k)
    x_desc, x_blob = wire.array_to_frame(XOR_X, frame=0)
    y_desc, y_blob = wire.array_to_frame(XOR_Y, frame=1)
    with run.client(run.cluster.ids, timeout, retries) as c:
        while not run.stop.is_set():
            rid = uuid.uuid4().hex
            header = {
                "type": "TRAIN",
                "id": rid,
                "inputs": x_desc,
                "outputs": y_desc,
                "options": {"hidden_layers": [4], "epochs": 30, "seed": rng.randrange(1000)},
            }
            progress = [0.0]  # the deadline restarts on every PROGRESS

            def on_progress(_msg: dict, t0: float = time.monotonic(), progress=progress) -> None:
                progress[0] = time.monotonic() - t0 + timeout

            run.call(
                f"train{k}",
                ADD,
                model_id_for(rid),
                budget,
                lambda header=header, on_progress=on_progress: c.request(
                    header,
                    [x_blob, y_blob],
                    timeout=timeout,
                    deadline=budget,
                    on_progress=on_progress,
                ),
                slack=lambda progress=progress: progress[0],
            )
            run.stop.wait(rng.uniform(*WRITE_PAUSE))


def _list(run: _Run, node: str, process: str) -> tuple[str, Any]:
    """LIST on ``node`` itself (a fresh client: a redirect must not move later reads)."""
    timeout, retries, budget = LIST_CALL

    def ask() -> list[dict[str, Any]]:
        with run.client([node], timeout, retries) as c:
            models = c.request({"type": "LIST"}, deadline=budget).header.get("models")
        if not isinstance(models, list):
            raise ClientError("MALFORMED", "LIST reply has no models list", node=node)
        for m in models:
            run.note_sha(m["model_id"], m["sha256"], f"LIST on {node}")
        return models

    return run.call(process, READ, None, budget, ask)


def _lister(run: _Run, node: str) -> None:
    rng = random.Random(run.seed * 1000 + 200 + run.cluster.ids.index(node))
    while not run.stop.is_set():
        _list(run, node, f"list@{node}")
        run.stop.wait(rng.uniform(*LIST_PAUSE))


def _check_outputs(run: _Run, model_id: str, node: str, header: dict, blobs: list) -> None:
    """Every imported model has the base model's weights: its XOR outputs are known."""
    try:
        got = wire.read_array(header, blobs, "outputs", max_bytes=1 << 20)
        good = np.allclose(got.astype(np.float64).ravel(), run.expected, rtol=1e-3, atol=1e-5)
    except (wire.ProtocolError, ValueError):
        good = False
    if not good:
        run.wrong_predictions += 1
        if run.wrong_predictions <= 5:
            run.problem(f"{node} predicted wrong outputs for {model_id}: {header}")


class _Predictor:
    """One simulated PREDICT client: its node, socket and request in flight."""

    __slots__ = ("home", "node", "sock", "state", "since", "next_at", "rid", "model", "sent")

    def __init__(self, home: int) -> None:
        self.home = self.node = home
        self.sock: zmq.Socket | None = None
        self.state = "idle"  # idle -> connecting -> waiting -> idle
        self.since = self.next_at = self.sent = 0.0
        self.rid = self.model = ""


def _predictors(run: _Run, count: int, rate: float) -> None:
    """``count`` predictors in one thread; each op recorded like the others."""
    nodes = run.cluster.ids
    keys = run.cluster.client_keys()
    rng = random.Random(run.seed * 1000 + 300)
    ctx = zmq.Context()
    poller = zmq.Poller()
    desc, blob = wire.array_to_frame(XOR_X)
    think = count / rate  # mean seconds between one predictor's requests
    preds = [_Predictor(i % len(nodes)) for i in range(count)]
    now = time.monotonic()
    for p in preds:
        p.next_at = now + rng.uniform(0, think)

    def close(p: _Predictor) -> None:
        if p.sock is not None:
            poller.unregister(p.sock)
            p.sock.close(linger=0)
            p.sock = None

    def move(p: _Predictor, node: int) -> None:
        close(p)
        p.node = node

    def finish(p: _Predictor, status: str, value: str | None, detail: str, now: float) -> None:
        run.history.record(
            Op(
                f"pred{preds.index(p)}",
                PREDICT,
                p.sent,
                now,
                status,
                id=p.model,
                value=value,
                detail=detail,
            )
        )
        p.state = "idle"
        p.next_at = now + rng.uniform(0, 2 * think)
        if p.node != p.home and rng.random() < 0.2:
            move(p, p.home)  # keep the load spread over every node

    try:
        while True:
            if run.stop.is_set() and all(p.state != "waiting" for p in preds):
                break
            events = dict(poller.poll(10))
            now = time.monotonic()
            for p in preds:
                if p.state == "idle":
                    if run.stop.is_set() or now < p.next_at or not run.acked:
                        continue
                    if p.sock is None:
                        p.sock = ctx.socket(zmq.DEALER)
                        p.sock.setsockopt(zmq.LINGER, 0)
                        p.sock.setsockopt(zmq.IMMEDIATE, 1)
                        security.make_client(p.sock, keys)
                        p.sock.connect(f"tcp://{nodes[p.node]}")
                        poller.register(p.sock, zmq.POLLOUT)
                    else:
                        poller.modify(p.sock, zmq.POLLOUT)
                    p.state, p.since = "connecting", now
                elif p.state == "connecting":
                    if events.get(p.sock, 0) & zmq.POLLOUT:
                        p.model = rng.choice(run.acked)
                        p.rid = uuid.uuid4().hex
                        header = {
                            "type": "PREDICT",
                            "id": p.rid,
                            "model_id": p.model,
                            "inputs": desc,
                            "timeout_ms": int(PREDICT_TIMEOUT * 1000),
                        }
                        p.sent = time.monotonic()
                        try:
                            p.sock.send_multipart([b"", *wire.encode(header, [blob])], zmq.NOBLOCK)
                        except zmq.Again:  # nothing was sent
                            move(p, (p.node + 1) % len(nodes))
                            p.state = "idle"
                            continue
                        p.state = "waiting"
                        poller.modify(p.sock, zmq.POLLIN)
                    elif now - p.since > CONNECT_TIMEOUT:
                        move(p, (p.node + 1) % len(nodes))
                        p.state = "idle"
                elif p.state == "waiting":
                    if events.get(p.sock, 0) & zmq.POLLIN:
                        frames = p.sock.recv_multipart()
                        try:
                            header, blobs = wire.decode(frames[1:], require_id=False)
                        except wire.ProtocolError:
                            header = {"id": p.rid, "status": "ERROR", "code": "UNREADABLE"}
                        if header.get("id") != p.rid:
                            continue  # a late reply to an earlier request
                        status = header.get("status")
                        code = str(header.get("code") or status)
                        if status == "OK":
                            if p.model in run.sent_sha:
                                _check_outputs(run, p.model, nodes[p.node], header, blobs)
                            finish(p, OK, FOUND, "", now)
                        elif code == "NOT_FOUND":
                            finish(p, OK, NOT_FOUND, code, now)
                        elif status == "REDIRECT":
                            leader = str(header.get("leader"))
                            finish(p, FAIL, None, code, now)
                            if leader in nodes:
                                move(p, nodes.index(leader))
                        else:
                            finish(p, FAIL, None, code, now)
                    elif now > p.sent + PREDICT_TIMEOUT:
                        if now > p.sent + PREDICT_TIMEOUT + GRACE:
                            run.hung.append(
                                f"pred{preds.index(p)} predict {p.model} unresolved "
                                f"for {now - p.sent:.1f} s (harness stalled)"
                            )
                        finish(p, UNKNOWN, None, "TIMEOUT", now)
                        move(p, (p.node + 1) % len(nodes))  # drop what zmq queued
    finally:
        for p in preds:
            close(p)
        ctx.destroy(linger=0)


# ---------------------------------------------------------------------------
# the nemesis


def _leader_now(cluster: LocalCluster, skip: set[str]) -> str | None:
    best: tuple[int, str] | None = None
    for nid in cluster.ids:
        if nid in skip or nid not in cluster.procs:
            continue
        try:
            with Client([nid], keys=cluster.keys, timeout=0.3, retries=0, connect_timeout=0.2) as c:
                s = c.status()
        except (ClientError, ClusterUnavailable):
            continue
        if s.get("role") == "leader" and (best is None or s["term"] > best[0]):
            best = (s["term"], nid)
    return best[1] if best else None


class _Nemesis:
    """The fault schedule of the module docstring, drawn from the run's seed:
    kills, pauses and partitions, each noted in ``events`` as it happens."""

    def __init__(
        self,
        run: _Run,
        duration: float,
        change_kinds: tuple[str, ...] = CHANGE_KINDS,
        promote_after: str = "log",
    ) -> None:
        self.run = run
        self.cluster = run.cluster
        self.rng = random.Random(run.seed)
        self.end = time.monotonic() + duration
        self.counts: Counter = Counter()
        self.killed: set[str] = set()
        self.paused: set[str] = set()
        self.isolated = False
        self.both_ways = 0  # both-ways partitions so far (--netns alternates how)
        self.healed_at = time.monotonic()
        self.events: list[str] = []
        # The nemesis and the membership changes both start and stop processes.
        self.lock = threading.RLock()
        self.held: set[str] = set()  # nodes a membership change has down: no fault on them
        self.change_kinds = change_kinds
        self.promote_after = promote_after
        self.changes = _Changes(self) if change_kinds else None

    def note(self, text: str) -> None:
        line = f"[{self.run.now():7.2f}] {text}"
        self.run.log(line)
        self.events.append(line)

    def apply(self, kind: str, node: str, way: str = "both") -> None:
        """``way``: for a partition, "both", or only "in" / "out" of ``node``."""
        with self.lock:
            self._apply(kind, node, way)

    def _apply(self, kind: str, node: str, way: str) -> None:
        if node in self.held or node not in self.cluster.procs:
            self.note(f"  ({node} is down for a membership change: no {kind})")
            return
        self.counts[kind] += 1
        if kind == "kill":
            self.cluster.kill(node)
            self.killed.add(node)
        elif kind == "pause":
            self.cluster.pause(node)
            self.paused.add(node)
        elif way == "both":
            self.both_ways += 1
            if isinstance(self.cluster, NetnsCluster) and self.both_ways % 2 == 1:
                self.cluster.cut_off(node)  # iptables; every other time the link goes down
                self.note(f"  (iptables DROP between {node} and its peers)")
            else:
                self.cluster.isolate(node)
                if isinstance(self.cluster, NetnsCluster):
                    self.note(f"  ({node}'s link down: clients lose it too)")
            self.isolated = True
        else:
            self.cluster.cut_one_way(node, way)
            self.isolated = True

    def recover(self) -> None:
        """Undo every fault in force: restart, SIGCONT, heal."""
        with self.lock:
            self._recover()

    def _recover(self) -> None:
        for node in sorted(self.paused):
            self.cluster.resume(node)
        for node in sorted(self.killed):
            self.cluster.start(node)
        if self.isolated:
            self.cluster.heal()
        if self.paused or self.killed or self.isolated:
            self.note(
                f"recovered: restarted {sorted(self.killed)}, resumed {sorted(self.paused)}"
                + (", healed the partition" if self.isolated else "")
            )
            self.healed_at = time.monotonic()
        self.paused, self.killed, self.isolated = set(), set(), False

    def check_alive(self) -> None:
        """A node that exited without being killed is a node bug: report, restart.

        Except a joining node that gave up (``could not join`` within its 60 s,
        PROTOCOL.md §5.10: documented, the faults can keep a leader away that
        long): it is started again with ``--join``, and noted."""
        with self.lock:
            for nid, proc in list(self.cluster.procs.items()):
                if proc.poll() is not None:
                    tail = self.cluster.output(nid)[-1500:]
                    if nid in self.cluster.joining and "could not join" in tail[-600:]:
                        self.note(f"{nid} gave up joining (no leader answered); started again")
                    else:
                        self.run.problem(
                            f"node {nid} exited by itself (status {proc.returncode}): {tail}"
                        )
                    self.cluster.procs.pop(nid)
                    self.cluster.start(nid)

    def loop(self) -> None:
        """Faults one after another until the end, then the finale."""
        ids = self.cluster.ids
        try:
            while time.monotonic() < self.end:
                # Draw everything first: the same seed gives the same schedule.
                gap = self.rng.uniform(0.5, 3.0)
                kind = self.rng.choice(["kill", "pause", "partition"])
                at_leader = self.rng.random() < 0.5
                node = self.rng.choice(ids)
                hold = self.rng.uniform(0.5, 4.0)
                second = self.rng.random() < 0.15
                kind2 = self.rng.choice(["kill", "pause"])
                way = self.rng.choice(["both", "both", "in", "out"])
                change = self.rng.random() < CHANGE_CHANCE
                change_kind = self.rng.choice(self.change_kinds or CHANGE_KINDS)
                change_seed = self.rng.randrange(1 << 30)
                # Waits by the schedule; a fault is always in force at the end.
                gap = min(gap, max(0.0, self.end - time.monotonic() - 0.5))
                if self.run.faults_over.wait(gap):
                    break
                self.check_alive()
                if change and self.changes and self.end - time.monotonic() > 20:
                    self.changes.begin(change_kind, change_seed)
                held = set(self.held)
                leader = _leader_now(self.cluster, held) if at_leader else None
                node = leader or node
                if node in held:  # a membership change has it down: the next one
                    node = next(n for n in ids[ids.index(node) :] + ids if n not in held)
                hold = max(0.5, min(hold, self.end - time.monotonic()))
                what = f"{kind} {node}" + (
                    f" ({way} only)" if kind == "partition" and way != "both" else ""
                )
                self.note(what + (" (the leader)" if leader else "") + f" for {hold:.1f} s")
                self.apply(kind, node, way)
                node2 = ids[(ids.index(node) + 1) % len(ids)]
                if second and node2 not in self.held:
                    self.note(f"and {kind2} {node2} as well")
                    self.apply(kind2, node2)
                self.run.faults_over.wait(hold)
                self.recover()
            if self.changes:
                self.changes.finish()
            self.finale()
        finally:
            self.recover()
            self.check_alive()

    def finale(self) -> None:
        """A majority down (the leader among it) for 2 s, then all healed: the
        time to a served write after the heal is then a real recovery time."""
        ids = self.cluster.ids
        kinds = [self.rng.choice(["kill", "pause"]) for _ in ids]
        leader = _leader_now(self.cluster, set()) or ids[0]
        i = ids.index(leader)
        victims = [ids[(i + k) % len(ids)] for k in range(len(ids) // 2 + 1)]
        self.note(
            "finale: "
            + ", ".join(f"{k} {n}" for k, n in zip(kinds, victims, strict=False))
            + " for 2 s"
        )
        for kind, node in zip(kinds, victims, strict=False):
            self.apply(kind, node)
        self.run.faults_over.wait(2.0)
        self.recover()


class _Changes:
    """Membership changes as faults (docs/FAULTS.md), one in flight at a time,
    in their own thread while the other faults go on. Each is drawn by the
    nemesis's seeded schedule (kind and a seed for its own choices):

    - ``replace``: a voter other than the leader is removed, killed, its
      storage wiped, started again at the same address with ``--join`` (its
      key travels again in JOIN), and promoted once it is a caught-up learner;
    - ``remove-leader``: the same with the leader (it hands over first);
    - ``demote``: a voter becomes a learner for a few seconds, then is promoted.

    A change never starts with ``floor`` voters or fewer, so at least
    ``floor`` stay (2 in a 3-node cluster, 3 from 5 nodes on). Each step is
    retried (same intent, fresh request id: asking for what the membership
    already is answers OK) until ``CHANGE_STEP_LIMIT``; a step that still
    fails ends the change as ``failed`` and ``restore()`` puts every original
    node back as a voter after the faults."""

    def __init__(self, nemesis: _Nemesis) -> None:
        self.nemesis = nemesis
        self.run = nemesis.run
        self.cluster = nemesis.cluster
        self.ids = list(self.cluster.ids)
        self.floor = max(2, min(3, len(self.ids) - 1))
        self.wait_files = nemesis.promote_after == "files"
        self.counts: Counter = Counter()
        self.log: list[str] = []
        self.thread: threading.Thread | None = None

    def note(self, text: str) -> None:
        self.nemesis.note(f"member change: {text}")
        self.log.append(f"[{self.run.now():7.2f}] {text}")

    def begin(self, kind: str, seed: int) -> None:
        """Start a ``kind`` change in a thread, unless one is in flight."""
        if self.thread is not None and self.thread.is_alive():
            return
        self.thread = threading.Thread(target=self._one, args=(kind, seed), daemon=True)
        self.thread.start()

    def finish(self) -> None:
        """Wait for the change in flight (before the finale)."""
        if self.thread is not None:
            self.thread.join(3 * CHANGE_STEP_LIMIT + 60)
            if self.thread.is_alive():
                self.run.problem("a membership change did not finish (stuck)")

    def _one(self, kind: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            outcome = self._demote(rng) if kind == "demote" else self._replace(kind, rng)
        except Exception as exc:  # a harness bug: reported, never silent
            self.run.problem(f"membership change {kind}: {exc!r}")
            outcome = False
        if outcome is not None:
            self.counts[f"{kind} {'done' if outcome else 'failed'}"] += 1

    # -- requests ----------------------------------------------------------

    def members(self) -> dict[str, Any] | None:
        """The leader's MEMBERS listing, or None if none answered in time."""
        timeout, retries, budget = CHANGE_CALL
        try:
            with self.run.client(self.ids, timeout, retries) as c:
                return c.request({"type": "MEMBERS"}, deadline=budget).fields()
        except (ClientError, ClusterUnavailable):
            return None

    def change(self, change: str, node: str) -> str:
        """MEMBER_CHANGE retried until done or ``CHANGE_STEP_LIMIT``: "OK", or
        why not (a code that says it cannot be done, or the last retryable one)."""
        timeout, retries, budget = CHANGE_CALL
        until = time.monotonic() + CHANGE_STEP_LIMIT
        last = "no attempt"
        while time.monotonic() < until and not self.run.stop.is_set():
            start = time.monotonic()
            try:
                with self.run.client(self.ids, timeout, retries) as c:
                    c.request({"type": "MEMBER_CHANGE", "change": change, "node": node},
                              deadline=budget)  # fmt: skip
                return OK
            except ClientError as exc:
                last = f"{exc.code} from {exc.node}"
                if exc.code in NOT_DONE_CODES:
                    return last
            except ClusterUnavailable:
                last = "NO_ANSWER"
            finally:
                took = time.monotonic() - start
                if took > budget + GRACE:
                    self.run.hung.append(f"member change {change} {node} took {took:.1f} s")
            time.sleep(0.5)  # pause between tries of the same intent
        return f"gave up after {CHANGE_STEP_LIMIT:.0f} s ({last})"

    def wait_learner(self, node: str, limit: float = CHANGE_STEP_LIMIT) -> str:
        """Until the leader lists ``node`` as a learner close behind it: "OK" or why not."""
        until = time.monotonic() + limit
        seen = "no MEMBERS answer"
        while time.monotonic() < until and not self.run.stop.is_set():
            listing = self.members()
            if listing:
                view = next((m for m in listing["members"] if m["node"] == node), None)
                seen = f"{node}: {view}"
                if view and not view["voter"] and (view.get("lag") or 0) <= CAUGHT_UP_LAG:
                    if view.get("last_heard_s") is not None:
                        return self.wait_model_files(node) if self.wait_files else OK
            time.sleep(0.5)  # polling interval
        return f"not a caught-up learner after {limit:.0f} s ({seen})"

    def wait_model_files(self, node: str) -> str:
        """``--promote-after files``: until ``node``'s storage holds a file for
        every model the leader lists (a snapshot brings the registry, the files
        follow by FETCH); "OK" or how many are still missing."""
        until = time.monotonic() + FILES_LIMIT
        missing: set[str] = set()
        while time.monotonic() < until and not self.run.stop.is_set():
            timeout, retries, budget = CHANGE_CALL
            try:
                with self.run.client(self.ids, timeout, retries) as c:
                    models = c.request({"type": "LIST"}, deadline=budget).header["models"]
            except (ClientError, ClusterUnavailable):
                time.sleep(0.5)  # polling interval
                continue
            folder = self.cluster.storage(node) / "models"
            missing = {m["model_id"] for m in models} - {p.stem for p in folder.glob("*.bin")}
            if not missing:
                return OK
            time.sleep(1.0)  # polling interval
        return f"{len(missing)} model files still missing after {FILES_LIMIT:.0f} s"

    def voters(self) -> tuple[list[str], str | None] | None:
        listing = self.members()
        if listing is None:
            return None
        return [m["node"] for m in listing["members"] if m["voter"]], listing.get("leader")

    def rejoin(self, node: str) -> None:
        """Kill ``node`` (whatever fault it is under), wipe it, start it with --join."""
        nemesis = self.nemesis
        with nemesis.lock:
            nemesis.held.add(node)
            nemesis.killed.discard(node)  # not the nemesis's to restart any more
            nemesis.paused.discard(node)
            if node in self.cluster.procs:
                self.cluster.kill(node)
        time.sleep(0.2)  # a moment down, as a replaced machine is
        with nemesis.lock:
            self.cluster.rejoin(node, [n for n in self.ids if n != node])
            nemesis.held.discard(node)

    # -- the changes -------------------------------------------------------

    def _replace(self, kind: str, rng: random.Random) -> bool | None:
        found = self.voters()
        if found is None or len(found[0]) <= self.floor:
            return None  # not now: no listing, or too few voters
        voters, leader = found
        if kind == "remove-leader":
            if leader not in self.ids:
                return None
            node = leader
        else:
            others = sorted(v for v in voters if v != leader and v in self.ids)
            if not others:
                return None
            node = rng.choice(others)
        self.note(f"{kind} {node}: remove it")
        if (answer := self.change("remove", node)) != OK:
            self.note(f"{kind} {node}: FAILED to remove: {answer}")
            return False
        self.note(f"{kind} {node}: removed; kill it, wipe its storage, start it with --join")
        self.rejoin(node)
        if (answer := self.wait_learner(node)) != OK:
            self.note(f"{kind} {node}: FAILED to catch up: {answer}")
            return False
        self.note(f"{kind} {node}: a caught-up learner; promote it")
        if (answer := self.change("promote", node)) != OK:
            self.note(f"{kind} {node}: FAILED to promote: {answer}")
            return False
        self.note(f"{kind} {node}: a voter again")
        return True

    def _demote(self, rng: random.Random) -> bool | None:
        found = self.voters()
        if found is None or len(found[0]) <= self.floor:
            return None
        node = rng.choice(sorted(v for v in found[0] if v in self.ids))
        hold = rng.uniform(*DEMOTED_HOLD)
        self.note(f"demote {node}" + (" (the leader)" if node == found[1] else ""))
        if (answer := self.change("demote", node)) != OK:
            self.note(f"demote {node}: FAILED: {answer}")
            return False
        self.note(f"demote {node}: a learner for {hold:.1f} s")
        self.run.faults_over.wait(hold)
        if (answer := self.change("promote", node)) != OK:
            self.note(f"demote {node}: FAILED to promote it back: {answer}")
            return False
        self.note(f"demote {node}: a voter again")
        return True

    def restore(self) -> str:
        """After the faults: every original node a voter again (a removed one
        rejoins, a learner is promoted); the final membership, described."""
        until = time.monotonic() + RESTORE_LIMIT
        while time.monotonic() < until:
            listing = self.members()
            if listing is None:
                time.sleep(0.5)  # polling interval
                continue
            roles = {m["node"]: m["voter"] for m in listing["members"]}
            missing = [n for n in self.ids if roles.get(n) is not True]
            if not missing and set(roles) == set(self.ids):
                return f"{len(roles)} voters (every original node), 0 learners"
            node = missing[0] if missing else sorted(set(roles) - set(self.ids))[0]
            if node not in self.ids:
                self.note(f"restore: remove {node}: {self.change('remove', node)}")
            elif node not in roles:
                self.note(f"restore: {node} is not a member: it rejoins")
                self.rejoin(node)
                self.note(f"restore: {node}: {self.wait_learner(node)}")
            else:
                self.note(f"restore: promote {node}: {self.change('promote', node)}")
        listing = self.members()
        if listing is None:
            return "unknown (no MEMBERS answer)"
        voters = sorted(m["node"] for m in listing["members"] if m["voter"])
        learners = sorted(m["node"] for m in listing["members"] if not m["voter"])
        return f"voters {voters}, learners {learners}"


# ---------------------------------------------------------------------------
# after the faults


def _leader_after_heal(run: _Run, healed_at: float) -> float | None:
    """Seconds from the heal until an IMPORT (fresh id each try) is acknowledged."""
    deadline = healed_at + LEADER_AFTER_HEAL_LIMIT
    while time.monotonic() < deadline:
        with Client(
            run.cluster.ids, keys=run.cluster.keys, timeout=0.5, retries=0, connect_timeout=0.2
        ) as c:
            if _import_one(run, c, "heal-probe", 0.5) == OK:
                return time.monotonic() - healed_at
        time.sleep(0.02)  # polling interval (a node that knows no leader answers at once)
    return None


def _converge(run: _Run) -> dict[str, dict[str, Any]] | None:
    """Wait until every node has applied all the leader committed; their STATUS."""
    cluster = run.cluster
    deadline = time.monotonic() + CONVERGE_LIMIT
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            statuses = {n: cluster.status(n) for n in cluster.ids}
        except (ClientError, ClusterUnavailable) as exc:
            last = {"error": str(exc)}
        else:
            last = statuses
            leaders = {s["leader"] for s in statuses.values()}
            commit = max(s["commit_index"] for s in statuses.values())
            if (
                len(leaders) == 1
                and None not in leaders
                and all(s["applied_index"] == commit for s in statuses.values())
            ):
                return statuses
        time.sleep(0.1)  # polling interval
    run.problem(f"nodes did not converge within {CONVERGE_LIMIT:.0f} s: {last}")
    return None


def _final_checks(run: _Run, acknowledged: set[str]) -> list[str]:
    """Every acknowledged model listed and stored, same bytes, everywhere; the lost ids."""
    cluster = run.cluster
    lost: set[str] = set()
    listed: dict[str, dict[str, str]] = {}
    for node in cluster.ids:
        status, value = _list(run, node, f"final@{node}")
        if status != OK:
            run.problem(f"final LIST on {node} failed: {value}")
            continue
        listed[node] = {m["model_id"]: m["sha256"] for m in value}
        missing = acknowledged - listed[node].keys()
        if missing:
            run.problem(
                f"{node} does not list {len(missing)} acknowledged model(s), e.g. "
                f"{sorted(missing)[:3]}"
            )
            lost |= missing
    if len({frozenset(ids.items()) for ids in listed.values()}) > 1:
        run.problem("the nodes' final LISTs differ")
    for model_id in sorted(acknowledged):
        digests = {}
        for node in cluster.ids:
            path = cluster.storage(node) / "models" / f"{model_id}.bin"
            try:
                digests[node] = hashlib.sha256(path.read_bytes()).hexdigest()
            except FileNotFoundError:
                lost.add(model_id)
                run.problem(f"{path} is missing")
                continue
            if node in listed and listed[node].get(model_id) not in (None, digests[node]):
                run.problem(f"{path} does not match the sha256 {node} lists")
        if len(set(digests.values())) > 1:
            run.problem(f"model {model_id} differs between nodes: {digests}")
        sent = run.sent_sha.get(model_id)
        if sent is not None and any(d != sent for d in digests.values()):
            run.problem(f"model {model_id} is stored with other bytes than were imported")
        seen = run.seen_sha.get(model_id)
        if seen is not None and any(d != seen for d in digests.values()):
            run.problem(f"model {model_id} is stored with other bytes than LIST showed")
    return sorted(lost)


# ---------------------------------------------------------------------------


def run(
    duration: float,
    seed: int = 1,
    nodes: int = 3,
    node_args: tuple[str, ...] = (),
    predictors: int = 100,
    predict_rate: float = 500.0,
    workdir: Path | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    netns: bool = False,
    membership: bool = True,
    change_kinds: tuple[str, ...] = CHANGE_KINDS,
    promote_after: str = "log",
    impls: tuple[str, ...] | None = None,
) -> ChaosResult:
    """Start a cluster, load it, inject faults for ``duration`` s, heal, check.

    ``netns``: the nodes in network namespaces, partitions cutting the network
    (root only; raises ``NetnsUnavailable`` saying why where it cannot run).
    ``membership``: membership changes among the faults (``_Changes``), drawn
    from ``change_kinds`` (a kind twice is drawn twice as often);
    ``promote_after``: "log" (promote a rejoined node once its log is caught
    up, as the protocol allows) or "files" (once its storage also holds every
    model file: docs/FAULTS.md says why). ``impls``: "py", "go" or "kotlin" per node,
    a pattern repeated over ``nodes`` (None: ``LocalCluster``'s default, the
    ``ZMQNODE_IMPLS`` pattern or all Python).
    """
    if impls is not None:
        pattern = tuple(impls)
        impls = tuple(pattern[i % len(pattern)] for i in range(nodes))
    with tempfile.TemporaryDirectory(prefix="zmqnode-chaos-") as tmp:
        kind = NetnsCluster if netns else LocalCluster
        cluster = kind(Path(workdir or tmp), n=nodes, extra_args=tuple(node_args), impls=impls)
        cluster.workdir.mkdir(parents=True, exist_ok=True)
        if "go" in cluster.impls.values():
            _pin_go_worker(cluster)
        if "kotlin" in cluster.impls.values():
            _pin_kotlin_worker(cluster)
        cluster.start()
        try:
            result = _run(
                cluster,
                duration,
                seed,
                predictors,
                predict_rate,
                log,
                membership,
                change_kinds,
                promote_after,
            )
            result.netns = netns
            result.impls = tuple(cluster.impls[n] for n in cluster.ids)
            return result
        finally:
            for node in list(cluster.procs):
                cluster.resume(node)  # a stopped process cannot terminate
            cluster.heal()
            cluster.stop()


def _pin_go_worker(cluster: LocalCluster) -> None:
    """Build ``go/worker`` once and run a copy in the workdir for the whole run.

    ``LocalCluster.program`` calls ``ensure_worker()`` at every start, which
    rebuilds when go/ changed: a node restarted mid-run (a kill, a rejoin)
    would then run other code than its peers, or wait for a build while the
    nemesis holds its lock. The copy makes every start run the same binary.
    """
    from harness.gobuild import ensure_worker

    pinned = cluster.workdir / "go-worker"
    shutil.copy2(ensure_worker(), pinned)
    default = cluster.program

    def program(node_id: str) -> list[str]:
        return [str(pinned)] if cluster.impls[node_id] == "go" else default(node_id)

    cluster.program = program  # type: ignore[method-assign]


def _pin_kotlin_worker(cluster: LocalCluster) -> None:
    """``kotlin/worker.jar`` built once and copied to the workdir for the
    whole run, for the reason ``_pin_go_worker`` gives."""
    from harness.cluster import kotlin_worker
    from harness.ktbuild import java_command

    pinned = cluster.workdir / "kotlin-worker.jar"
    shutil.copy2(kotlin_worker(), pinned)
    default = cluster.program

    def program(node_id: str) -> list[str]:
        if cluster.impls[node_id] == "kotlin":
            return java_command(pinned)
        return default(node_id)

    cluster.program = program  # type: ignore[method-assign]


def _run(
    cluster: LocalCluster,
    duration: float,
    seed: int,
    predictors: int,
    predict_rate: float,
    log: Callable[[str], None],
    membership: bool = True,
    change_kinds: tuple[str, ...] = CHANGE_KINDS,
    promote_after: str = "log",
) -> ChaosResult:
    cluster.leader(timeout=30)
    run_ = _Run(cluster, seed, log)
    nodes = ", ".join(f"{n} {cluster.impls[n]}" for n in cluster.ids)
    log(f"chaos: {len(cluster.ids)} nodes ({nodes}) in {cluster.workdir}, seed {seed}")
    with cluster.client(timeout=5.0) as c:  # something to predict from the start
        for _ in range(3):
            _import_one(run_, c, "setup", 30.0)
    threads = [threading.Thread(target=_importer, args=(run_, k)) for k in range(IMPORTERS)]
    threads += [threading.Thread(target=_trainer, args=(run_, k)) for k in range(TRAINERS)]
    threads += [threading.Thread(target=_lister, args=(run_, n)) for n in cluster.ids]
    threads.append(threading.Thread(target=_predictors, args=(run_, predictors, predict_rate)))
    for t in threads:
        t.daemon = True
        t.start()
    nemesis = _Nemesis(run_, duration, change_kinds if membership else (), promote_after)
    nemesis_thread = threading.Thread(target=nemesis.loop, daemon=True)
    fault_start = time.monotonic()
    nemesis_thread.start()
    nemesis_thread.join(duration + 60)
    if nemesis_thread.is_alive():
        run_.problem("the nemesis did not finish (stuck restarting or healing a node)")
        run_.faults_over.set()
        nemesis_thread.join(30)
    fault_seconds = time.monotonic() - fault_start
    healed_at = nemesis.healed_at
    log(f"[{run_.now():7.2f}] faults over and healed; load goes on")

    leader_after = _leader_after_heal(run_, healed_at)
    if leader_after is None:
        run_.problem(f"no write acknowledged within {LEADER_AFTER_HEAL_LIMIT:.0f} s of the heal")
    else:
        log(f"[{run_.now():7.2f}] leader serving {leader_after:.2f} s after the heal")
    final_membership = ""
    if nemesis.changes:  # every original node a voter again, under the load
        final_membership = nemesis.changes.restore()
        log(f"[{run_.now():7.2f}] final membership: {final_membership}")
        if not final_membership.endswith("(every original node), 0 learners"):
            run_.problem(f"the original nodes are not all voters again: {final_membership}")

    run_.stop.set()
    join_by = time.monotonic() + TRAIN_CALL[2] + GRACE + 10
    for t in threads:
        t.join(max(0.0, join_by - time.monotonic()))
    now = time.monotonic()
    for process, kind, start, _budget in list(run_.inflight.values()):
        run_.hung.append(f"{process} {kind} never returned ({now - start:.1f} s)")
        run_.history.record(Op(process, kind, start, float("inf"), UNKNOWN, detail="HUNG"))

    _converge(run_)
    checked = history.check(run_.history.ops)  # what was proven present so far
    lost = _final_checks(run_, checked.acknowledged)
    ops = run_.history.ops
    checked = history.check(ops)  # again, with the final LISTs

    result = ChaosResult(duration=fault_seconds)
    result.faults = nemesis.counts
    result.fault_log = nemesis.events
    result.ops = ops
    result.requests = len(ops)
    result.ok = sum(1 for o in ops if o.status == OK and o.value != NOT_FOUND)
    result.errors = result.requests - result.ok
    result.error_codes = Counter(
        (o.detail or "NOT_FOUND").split()[0] for o in ops if o.status != OK or o.value == NOT_FOUND
    )
    for o in ops:
        outcome = o.value if o.kind == PREDICT and o.status == OK else o.status
        kind = (
            f"add ({'train' if o.process.startswith('train') else 'import'})"
            if o.kind == ADD
            else o.kind
        )
        result.by_kind.setdefault(kind, Counter())[outcome] += 1
    result.hung = run_.hung
    result.acknowledged = len(checked.acknowledged)
    result.lost = lost
    result.violations = checked.violations
    result.violation_count = checked.violation_count
    result.problems = run_.problems
    result.leader_after_heal = leader_after
    if nemesis.changes:
        result.changes = nemesis.changes.counts
        result.change_log = nemesis.changes.log
        result.final_membership = final_membership
    for node in cluster.ids:
        lines = cluster.output(node).splitlines()
        result.log_errors += [
            f"{node}: {line[:300]}"
            for line in lines
            if " ERROR " in line
            or " CRITICAL " in line
            or line.startswith(("Traceback", "panic:", "fatal error:"))
        ]
    return result


def report(result: ChaosResult, out=sys.stdout) -> None:
    """Failures first, clearly, then the one summary line."""
    for kind, outcomes in sorted(result.by_kind.items()):
        print(f"{kind}: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()), file=out)
    if result.log_errors:
        print(
            f"WARNING: {len(result.log_errors)} ERROR/Traceback lines in the node logs:", file=out
        )
        for line in result.log_errors[:10]:
            print(f"  {line}", file=out)
    failed_changes = [line for line in result.change_log if "FAILED" in line]
    if failed_changes:
        print(f"membership changes that failed ({len(failed_changes)}):", file=out)
        for line in failed_changes[:10]:
            print(f"  {line}", file=out)
    if result.error_codes:
        print(
            "errors by code: " + ", ".join(f"{k} {v}" for k, v in result.error_codes.most_common()),
            file=out,
        )
    for title, items in (
        ("LOST (acknowledged, missing at the end)", result.lost),
        ("HUNG (past deadline + grace)", result.hung),
        (f"NOT LINEARIZABLE ({result.violation_count} violations)", result.violations),
        ("OTHER FAILED CHECKS", result.problems),
    ):
        if items:
            print(f"FAIL {title}:", file=out)
            for item in items[:30]:
                print(f"  - {item}", file=out)
            if len(items) > 30:
                print(f"  ... and {len(items) - 30} more", file=out)
    print(result.summary(), file=out, flush=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench chaos", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds of faults")
    p.add_argument("--seed", type=int, default=1, help="seeds the nemesis schedule")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--node-args", default="", help='extra node options, e.g. "--tick 0.05"')
    p.add_argument("--predictors", type=int, default=100, help="concurrent PREDICT clients")
    p.add_argument("--predict-rate", type=float, default=500.0, help="PREDICTs/s in total")
    p.add_argument("--workdir", type=Path, help="keep the nodes' folders here")
    p.add_argument(
        "--netns",
        action="store_true",
        help="each node in its own network namespace; partitions cut all traffic (root only)",
    )
    p.add_argument(
        "--impls",
        default=None,
        help="each node's implementation, py, go or kotlin, comma-separated, repeated over --nodes "
        "(e.g. py,go,py; default: ZMQNODE_IMPLS, else py)",
    )
    p.add_argument(
        "--no-membership",
        action="store_true",
        help="no membership changes among the faults (replace, remove the leader, demote)",
    )
    p.add_argument(
        "--change-kinds",
        default=",".join(CHANGE_KINDS),
        help=f"membership changes to draw from, comma-separated (default {','.join(CHANGE_KINDS)})",
    )
    p.add_argument(
        "--promote-after",
        choices=("log", "files"),
        default="log",
        help="promote a rejoined node once its log is caught up (default), or once its "
        "storage also holds every model file",
    )
    args = p.parse_args(argv)
    unknown = set(args.change_kinds.split(",")) - set(CHANGE_KINDS) - {""}
    if unknown:
        p.error(f"--change-kinds: unknown {sorted(unknown)}; known: {sorted(set(CHANGE_KINDS))}")
    impls = tuple(i for i in (args.impls or "").split(",") if i) or None
    if impls and set(impls) - {"py", "go", "kotlin"}:
        p.error(f"--impls: each is py, go or kotlin, not {args.impls!r}")
    if args.netns and (reason := unavailable()):
        print(f"chaos --netns cannot run here: {reason}", file=sys.stderr)
        return 2
    result = run(
        args.duration,
        seed=args.seed,
        nodes=args.nodes,
        node_args=tuple(shlex.split(args.node_args)),
        predictors=args.predictors,
        predict_rate=args.predict_rate,
        workdir=args.workdir,
        netns=args.netns,
        membership=not args.no_membership,
        change_kinds=tuple(k for k in args.change_kinds.split(",") if k),
        promote_after=args.promote_after,
        impls=impls,
    )
    report(result)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
