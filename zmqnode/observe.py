"""What a node tells the people watching it: metrics, events and the status feed.

- ``NodeMetrics``: every metric ``/metrics`` shows (docs/PROTOCOL.md §10 lists
  them); the event loop updates them, gauges once a tick (``refresh``).
- ``Events``: the last few things that happened (a new leader, a model
  stored, a peer down...), numbered, for the status feed and ``client watch``.
- ``status_feed``: the JSON the node publishes on its PUB socket (topic
  ``zstatus``) five times a second, so a console can follow the cluster live
  without polling HTTP.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .metrics import DURATION_BUCKETS, SIZE_BUCKETS, RecentLatency, Registry

if TYPE_CHECKING:
    from .node import Node

STATUS_TOPIC = b"zstatus"
MAX_EVENTS = 20
ROLES = ("leader", "follower", "candidate", "pre_candidate")


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
        # Everything else worth counting (garbage dropped, replies dropped...).
        self.events = r.counter("events", "Other events counted by the node, by kind.", ["kind"])
        # For the status feed.
        self.recent = RecentLatency()  # every client request: the feed's requests/s
        self.recent_predict = RecentLatency()  # predictions only: the feed's p99
        self._per_request: dict[tuple[str, str], tuple[Any, Any]] = {}

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

    def refresh(self, node: Node) -> None:
        """Gauges from the node's state; called by the event loop once a tick."""
        core = node.core
        self.term.set(core.term)
        for role in ROLES:
            self.role.labels(role).set(1 if core.role.value == role else 0)
        self.commit_index.set(core.commit_index)
        self.applied_index.set(core.applied_index)
        self.last_index.set(core.last_index)
        self.trainings_running.set(len(node.training.jobs))
        self.log_bytes.set(node.storage.log.size)
        self.models.set(len(node.registry.models))
        self.model_bytes.set(sum(record.size for record in node.registry.models.values()))
        self.snapshot_index.set(core.snapshot.index)
        # Counted by their owners; copied here (a counter's value only grows).
        self.compactions.labels().value = node.compactor.compactions
        self.model_files_fetched.labels().value = node.fetcher.fetched
        self.model_chunks_fetched.labels().value = node.fetcher.chunks
        self.models_damaged.set(len(node.registry.damaged))


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


def status_feed(node: Node, seq: int) -> dict[str, Any]:
    """One message of the status feed (docs/PROTOCOL.md §10)."""
    core = node.core
    now = time.monotonic()
    p99 = node.observe.recent_predict.quantile(0.99)
    return {
        "node": node.id,
        "seq": seq,
        "time": round(time.time(), 3),
        "role": core.role.value,
        "term": core.term,
        "leader": core.leader_id or None,
        "commit_index": core.commit_index,
        "applied_index": core.applied_index,
        "last_index": core.last_index,
        "models": len(node.registry.models),
        "trainer": node.training.trainer_state(),
        "requests_per_s": round(node.observe.recent.rate(), 1),
        "p99_ms": round(p99 * 1000, 3) if p99 is not None and p99 != float("inf") else p99,
        "peers": {
            peer: round(now - node.last_heard[peer], 3) if peer in node.last_heard else None
            for peer in node.config.peers
        },
        "trainings": node.training.progress_views(),
        "events": list(node.events.recent),
    }
