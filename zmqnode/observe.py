"""What a node tells the people watching it: metrics, events and the status feed.

- ``NodeMetrics``: every metric ``/metrics`` shows (docs/PROTOCOL.md §9b lists
  them); the event loop updates them, gauges once a tick (``refresh``).
- ``Events``: the last few things that happened (a new leader, a model
  stored, a peer down...), numbered, for the status feed and ``client watch``.
- ``NodeSnapshot``: the node's state at one moment, which all of the above
  are computed from (and the STATUS reply and the HTTP monitor).
- ``RaftTraffic``: Raft messages counted and append round trips timed.
- ``status_feed``: the JSON the node publishes on its PUB socket
  (``transport/status_feed.py``) five times a second, so a console can
  follow the cluster live without polling HTTP.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .metrics import DURATION_BUCKETS, SIZE_BUCKETS, RecentLatency, Registry
from .raft import Message, MessageType

MAX_EVENTS = 20
# "learner": a follower that does not vote (raft/membership.py).
ROLES = ("leader", "follower", "learner", "candidate", "pre_candidate")


class NodeMetrics:
    def __init__(self) -> None:
        r = self.registry = Registry()
        # Raft
        self.term = r.gauge("raft_term", "Current Raft term.")
        self.role = r.gauge(
            "raft_role", "1 for this node's current role, 0 for the others.", ["role"]
        )
        self.commit_index = r.gauge("raft_commit_index", "Highest log index known committed.")
        self.applied_index = r.gauge("raft_applied_index", "Highest log index applied.")
        self.last_index = r.gauge("raft_last_index", "Last index in this node's log.")
        self.campaigns = r.counter(
            "raft_campaigns", "Elections this node started (pre-vote included)."
        )
        self.leader_changes = r.counter(
            "raft_leader_changes", "Times this node saw a new leader (itself included)."
        )
        self.rpc_sent = r.counter("raft_messages_sent", "Raft messages sent, by type.", ["type"])
        self.rpc_received = r.counter(
            "raft_messages_received", "Raft messages received, by type.", ["type"]
        )
        self.append_seconds = r.histogram(
            "raft_append_seconds",
            "Leader: an AppendEntries with entries until the peer confirms them, seconds.",
        )
        self.commit_seconds = r.histogram(
            "raft_commit_seconds", "From proposing an entry to applying it (leader), seconds."
        )
        # Serving
        self.requests = r.counter(
            "requests", "Client requests answered, by type and status.", ["type", "status"]
        )
        self.request_seconds = r.histogram(
            "request_seconds", "Client request latency from receipt to answer, by type.", ["type"]
        )
        self.predict_batch_requests = r.histogram(
            "predict_batch_requests",
            "PREDICT requests served by one forward pass.",
            buckets=SIZE_BUCKETS,
        )
        # Training
        self.training_jobs = r.counter(
            "training_jobs", "Training jobs finished, by status.", ["status"]
        )
        self.training_seconds = r.histogram(
            "training_seconds",
            "Training job duration (data received to model committed).",
            buckets=DURATION_BUCKETS,
        )
        self.trainings_running = r.gauge("trainings_running", "Training jobs in progress.")
        # Storage
        self.log_bytes = r.gauge("storage_log_bytes", "Size of the Raft log file.")
        self.fsync_seconds = r.histogram("storage_fsync_seconds", "fsync latency, seconds.")
        self.models = r.gauge("models", "Models in the registry.")
        self.model_bytes = r.gauge("models_bytes", "Bytes of model files in the registry.")
        self.snapshot_index = r.gauge(
            "storage_snapshot_index", "Last log index covered by the snapshot on disk (0: none)."
        )
        self.compactions = r.counter(
            "storage_compactions", "Log compactions this process made (compaction.py)."
        )
        self.models_damaged = r.gauge(
            "models_damaged", "Committed models whose file here is missing or damaged."
        )
        self.model_files_fetched = r.counter(
            "models_fetched", "Model files this process fetched from peers (repair.py)."
        )
        self.model_chunks_fetched = r.counter(
            "models_fetched_chunks", "FETCH chunks this process received from peers."
        )
        # HTTP inference (oip.py): endpoint is one of a fixed few (no ids).
        self.http_requests = r.counter(
            "http_requests",
            "HTTP inference requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"],
        )
        self.http_request_seconds = r.histogram(
            "http_request_seconds",
            "HTTP inference latency from the last byte received to the answer, by endpoint.",
            ["endpoint"],
        )
        self.http_connections = r.gauge("http_connections", "Open HTTP inference connections.")
        # Everything else worth counting (garbage dropped, replies dropped...).
        self.events = r.counter("events", "Other events counted by the node, by kind.", ["kind"])
        # For the status feed.
        self.recent = RecentLatency()  # every client request: the feed's requests/s
        self.recent_predict = RecentLatency()  # predictions only: the feed's p99
        self.recent_http = RecentLatency()  # HTTP requests: the feed's http_requests_per_s
        self._per_request: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._per_http: dict[tuple[str, int], tuple[Any, Any]] = {}

    def request_done(self, kind: str, status: str, seconds: float) -> None:
        """One client request answered (the hot path: label lookups cached)."""
        children = self._per_request.get((kind, status))
        if children is None:
            children = (self.requests.labels(kind, status), self.request_seconds.labels(kind))
            self._per_request[(kind, status)] = children
        children[0].value += 1
        children[1].observe(seconds)
        second = int(time.monotonic())
        self.recent.observe(seconds, second)
        if kind == "PREDICT":
            self.recent_predict.observe(seconds, second)

    def http_done(self, endpoint: str, status: int, seconds: float) -> None:
        """One HTTP inference request answered."""
        children = self._per_http.get((endpoint, status))
        if children is None:
            children = (
                self.http_requests.labels(endpoint, str(status)),
                self.http_request_seconds.labels(endpoint),
            )
            self._per_http[(endpoint, status)] = children
        children[0].value += 1
        children[1].observe(seconds)
        self.recent_http.observe(seconds, int(time.monotonic()))

    def refresh(self, snap: NodeSnapshot) -> None:
        """Gauges from the node's state; called by the event loop once a tick."""
        self.term.set(snap.term)
        for role in ROLES:
            self.role.labels(role).set(1 if snap.role == role else 0)
        self.commit_index.set(snap.commit_index)
        self.applied_index.set(snap.applied_index)
        self.last_index.set(snap.last_index)
        self.trainings_running.set(snap.trainings)
        self.log_bytes.set(snap.log_bytes)
        self.models.set(snap.models)
        self.model_bytes.set(snap.model_bytes)
        self.snapshot_index.set(snap.snapshot_index)
        # Counted by their owners; copied here (a counter's value only grows).
        self.compactions.labels().value = snap.compactions
        self.model_files_fetched.labels().value = snap.files_fetched
        self.model_chunks_fetched.labels().value = snap.chunks_fetched
        self.models_damaged.set(snap.models_damaged)


class RaftTraffic:
    """Counts Raft messages by type and times each AppendEntries round trip
    (until the peer confirms the last entry sent), for ``/metrics``."""

    def __init__(self, metrics: NodeMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._append_sent: dict[str, tuple[int, float]] = {}  # peer -> (last index, sent)

    def sent(self, msg: Message) -> None:
        self._metrics.rpc_sent.labels(msg.type.value).inc()
        if msg.type is MessageType.APPEND and msg.entries and msg.dst not in self._append_sent:
            self._append_sent[msg.dst] = (msg.entries[-1].index, self._clock())

    def received(self, msg: Message) -> None:
        self._metrics.rpc_received.labels(msg.type.value).inc()
        if msg.type is MessageType.APPEND_RESP and msg.src in self._append_sent:
            last, sent_at = self._append_sent[msg.src]
            if msg.reject or msg.index >= last:
                del self._append_sent[msg.src]
                if not msg.reject:
                    self._metrics.append_seconds.observe(self._clock() - sent_at)

    def reset(self) -> None:
        """No longer leader: no append is in flight any more."""
        self._append_sent.clear()


@dataclass(frozen=True)
class NodeSnapshot:
    """The node's state at one moment, as the observers see it: built by the
    loop (once a tick, and for each STATUS request), read by the metrics, the
    status feed, the STATUS reply and the HTTP monitor. None of them sees
    the node itself."""

    node: str
    role: str
    term: int
    leader: str | None
    commit_index: int
    applied_index: int
    last_index: int
    snapshot_index: int
    peers: tuple[str, ...]
    peers_heard: dict[str, float | None]  # peer -> seconds since its last Raft message
    models: int
    model_bytes: int
    models_damaged: int
    models_repairing: int
    uptime_s: float
    trainer: str
    trainings: int
    training_views: list[dict[str, Any]]
    pending: int
    uncommitted_bytes: int
    limits: dict[str, int]
    log_bytes: int
    compactions: int
    files_fetched: int
    chunks_fetched: int

    def status(self) -> dict[str, Any]:
        """The STATUS reply's fields (docs/PROTOCOL.md §5.6) and ``/status``."""
        return {
            "node": self.node,
            "role": self.role,
            "term": self.term,
            "leader": self.leader,
            "commit_index": self.commit_index,
            "applied_index": self.applied_index,
            "last_index": self.last_index,
            "peers": list(self.peers),
            "models": self.models,
            "snapshot_index": self.snapshot_index,
            "models_repairing": self.models_repairing,
            "uptime_s": self.uptime_s,
            "trainer": self.trainer,
            # Clients check large payloads against these before sending them.
            "limits": dict(self.limits),
            "load": {
                "trainings": self.trainings,
                "pending": self.pending,
                "uncommitted_bytes": self.uncommitted_bytes,
            },
        }


class Events:
    """The node's recent events, each numbered (the watcher shows each once)."""

    def __init__(self) -> None:
        self._seq = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)

    def add(self, kind: str, text: str) -> None:
        self._seq += 1
        self.recent.append(
            {"seq": self._seq, "time": round(time.time(), 3), "kind": kind, "text": text}
        )


def status_feed(
    snap: NodeSnapshot, seq: int, metrics: NodeMetrics, events: Events
) -> dict[str, Any]:
    """One message of the status feed (docs/PROTOCOL.md §9b)."""
    p99 = metrics.recent_predict.quantile(0.99)
    return {
        "node": snap.node,
        "seq": seq,
        "time": round(time.time(), 3),
        "role": snap.role,
        "term": snap.term,
        "leader": snap.leader,
        "commit_index": snap.commit_index,
        "applied_index": snap.applied_index,
        "last_index": snap.last_index,
        "models": snap.models,
        # Model files this node lacks (repairing or damaged): a learner is
        # promoted only at 0 (member_requests.py).
        "models_missing": snap.models_repairing + snap.models_damaged,
        "trainer": snap.trainer,
        "requests_per_s": round(metrics.recent.rate(), 1),
        "http_requests_per_s": round(metrics.recent_http.rate(), 1),
        "p99_ms": round(p99 * 1000, 3) if p99 is not None and p99 != float("inf") else p99,
        "peers": dict(snap.peers_heard),
        "trainings": snap.training_views,
        "events": list(events.recent),
    }
