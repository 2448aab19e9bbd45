"""One zmqnode process: the event loop that drives Raft over ZeroMQ and disk.

A single thread owns every socket and the Raft core. Each turn of the loop:

1. poll the sockets until the next tick is due;
2. hand Raft messages to the core and client requests to their handlers;
3. tick the Raft clock if a tick is due;
4. drain the core's Ready: persist (fsync: one per batch, group commit),
   only then send its messages, apply committed entries to the registry,
   answer reads and writes that were waiting for them.

Nothing slow runs here: training happens in a trainer process fed over
PUSH/PULL (see ``training.py``), and requests that must wait (a commit, a
read index, trainers) are parked with a deadline and answered later from the
ROUTER socket.

Besides that thread, one more runs: the ZAP handler that checks the public
key of every CURVE connection (``transport/security.py``); it shares nothing
with the loop but the allow-lists it was given at start-up.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import zmq
import zmq.utils.monitor

from .compaction import Compactor
from .config import NodeConfig
from .faults import FaultFile
from .logs import setup_logging
from .ml.model_file import Model, ModelFormatError
from .monitor import Monitor
from .observe import STATUS_TOPIC, Events, NodeMetrics, status_feed
from .raft import BROADCAST, EntryKind, Message, MessageType, RaftConfig, RaftCore, Role
from .registry import (
    ModelFileDamaged,
    ModelRegistry,
    encode_store_model,
    listing_summary,
    model_id_for,
)
from .repair import ModelFetcher
from .serving import PredictionBatcher
from .storage.errors import StorageBroken, StorageCorruption
from .storage.model_store import ModelStore
from .storage.node_storage import NodeStorage
from .training import TrainingCoordinator
from .transport import security, wire
from .transport.addresses import node_ports, parse_address, tcp_endpoint
from .transport.raft_codec import HEARTBEAT_TOPIC, decode_raft, encode_raft
from .transport.wire import ErrorCode, ProtocolError

log = logging.getLogger("zmqnode.node")

# Messages handled per socket per loop turn, so one busy socket cannot
# starve Raft traffic or the clock.
BATCH = 256
# Bounded queues toward each peer; past this, messages are dropped (Raft
# retransmits) instead of piling up for a dead peer.
PEER_HWM = 10_000
LINGER_MS = 200
# Plain ints: pyzmq's enum flags cost microseconds per message in Python.
NOBLOCK = int(zmq.NOBLOCK)
MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
RCVMORE = int(zmq.RCVMORE)


def send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    """``send_multipart(frames, NOBLOCK)`` without its per-frame enum arithmetic."""
    send = sock.send
    for frame in frames[:-1]:
        send(frame, MORE_NOBLOCK)
    send(frames[-1], NOBLOCK)


def recv_frames(sock: zmq.Socket) -> list[bytes]:
    """``recv_multipart(NOBLOCK)`` likewise; raises zmq.Again when nothing waits."""
    recv, more = sock.recv, sock.get
    frames = [recv(NOBLOCK)]
    while more(RCVMORE):
        frames.append(recv(NOBLOCK))
    return frames


# The status feed (topic zstatus on the PUB socket) goes out this often.
FEED_SECONDS = 0.2


@dataclass
class _Waiter:
    deadline: float
    callback: Callable[[], None]
    on_timeout: Callable[[], None]
    done: bool = False


def _nothing() -> None:
    pass


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.id = config.node_id
        self.ports = config.ports
        os.makedirs(config.storage_dir, exist_ok=True)
        self.log_path = os.path.join(config.storage_dir, f"worker_{config.port}.log")
        setup_logging(self.id, self.log_path, config.log_level)

        self.observe = NodeMetrics()
        self.events = Events()
        self.storage = NodeStorage(config.storage_dir)
        self.storage.stats.on_fsync = self.observe.fsync_seconds.observe
        recovered = self.storage.open()  # logs what it repaired
        models = ModelStore(os.path.join(config.storage_dir, "models"), stats=self.storage.stats)
        self.registry = ModelRegistry(models)
        if recovered.snapshot is not None:
            self.registry.restore(recovered.snapshot.data)
        self.core = RaftCore(
            self.id,
            config.peers,
            RaftConfig(election_ticks=config.election_ticks),
            random.Random(os.urandom(16)),
            hard_state=recovered.hard_state,
            snapshot=recovered.snapshot,
            entries=recovered.entries,
        )
        self.compactor = Compactor(
            self.id, self.core, self.registry, self.storage, config.snapshot_entries
        )
        log.info(
            "node %s starting: term %d, %d log entries, peers %s, storage %s",
            self.id,
            recovered.hard_state.term,
            len(recovered.entries),
            ", ".join(config.peers) or "(none: single-node cluster)",
            config.storage_dir,
        )

        self.ctx = zmq.Context()
        self.keys = (
            None
            if config.keys_dir is None
            else security.load_node_keys(config.keys_dir, config.node_key, config.client_auth)
        )
        if self.keys is None:
            security.warn_insecure(f"node {self.id}")
        else:
            log.info(
                "CURVE on: node key %s, %d members allowed, clients: %s",
                config.node_key,
                len(self.keys.members),
                "any holding cluster.key"
                if self.keys.clients is None
                else f"{len(self.keys.clients)} allowed keys",
            )
        # Before any socket binds: without a ZAP handler libzmq admits every key.
        self.authenticator = security.start_authenticator(self.ctx, self.keys)
        self._open_sockets()
        self.fetcher = ModelFetcher(
            self.id,
            self.ctx,
            list(config.peers),
            self.register_socket,
            self.registry.store_repaired,
            chunk_bytes=config.fetch_chunk_bytes,
            keys=self.keys,
        )
        self._fetch_damaged_files()  # those the snapshot covers; the log rewrites the rest
        self.faults = FaultFile(config.fault_file)
        self.batcher = PredictionBatcher(self.id, self.observe.predict_batch_requests.observe)
        self.training = TrainingCoordinator(self)
        self.monitor = Monitor(self)

        self.running = True
        self.started = time.monotonic()
        self._next_tick = time.monotonic()
        self._ids = itertools.count()
        # index -> (term, callback(ok), when proposed) for proposals this node made.
        self._proposals: dict[int, tuple[int, Callable[[bool], None], float]] = {}
        # Reads waiting for a read index: batched, one read_index per turn.
        self._read_batch: list[_Waiter] = []
        self._reads: dict[str, list[_Waiter]] = {}
        # (index, seq, waiter) waiting until applied_index >= index.
        self._apply_waiters: list[tuple[int, int, _Waiter]] = []
        self._deadlines: list[tuple[float, int, _Waiter]] = []
        # Admission (--max-pending, --max-uncommitted-bytes): waiters not yet
        # done, and bytes of commands proposed here and not yet applied.
        self._parked = 0
        self.waiting_replies: set[_Replier] = set()  # answered at shutdown if still waiting
        self._uncommitted_bytes = 0
        self.last_heard: dict[str, float] = {}  # peer -> when a Raft message last came
        self._append_sent: dict[str, tuple[int, float]] = {}  # peer -> (last index, sent)
        self._peers_down: set[str] = set(config.peers)  # until first heard from
        self._ticks = 0
        self._last_role = Role.FOLLOWER
        self._last_leader = ""

    # -- sockets -------------------------------------------------------------

    def _open_sockets(self) -> None:
        c = self.config
        self.client_sock = self._bind(zmq.ROUTER, c.host, self.ports.client, security.CLIENTS)
        # Requests over --max-request-bytes get a TOO_LARGE reply; only a
        # frame far beyond it (a hostile or broken peer) costs the sender its
        # connection, which bounds the memory one frame can take.
        self.client_sock.setsockopt(zmq.MAXMSGSIZE, 4 * c.max_request_bytes + (64 << 20))
        self.raft_sock = self._bind(zmq.ROUTER, c.host, self.ports.raft, security.PEERS)
        self.raft_sock.setsockopt(zmq.MAXMSGSIZE, 2 * c.max_model_bytes + (16 << 20))
        # The console listens here too, so the client policy applies.
        self.pub = self._bind(zmq.PUB, c.host, self.ports.heartbeat, security.CLIENTS)
        self.pub.setsockopt(zmq.SNDHWM, PEER_HWM)
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.MAXMSGSIZE, 1 << 20)
        security.make_client(self.sub, self.keys)
        self.dealers: dict[str, zmq.Socket] = {}
        for peer in c.peers:
            host, port = parse_address(peer)
            peer_ports = node_ports(port)
            self.sub.connect(tcp_endpoint(host, peer_ports.heartbeat))
            dealer = self.ctx.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.setsockopt(zmq.SNDHWM, PEER_HWM)
            dealer.setsockopt(zmq.IMMEDIATE, 1)  # never queue for a peer that is not there
            security.make_client(dealer, self.keys)
            dealer.connect(tcp_endpoint(host, peer_ports.raft))
            self.dealers[peer] = dealer
        self.poller = zmq.Poller()
        for sock in (self.client_sock, self.raft_sock, self.sub):
            self.poller.register(sock, zmq.POLLIN)
        for peer, dealer in self.dealers.items():
            # A peer's process that dies drops its TCP connection at once;
            # if it led, we need not wait an election timeout to notice.
            events = dealer.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self.register_socket(events, lambda frames, p=peer: self._on_peer_event(p, frames))

    def _bind(self, kind: int, host: str, port: int, domain: str) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, LINGER_MS)
        security.make_server(sock, self.keys, domain)
        try:
            sock.bind(tcp_endpoint(host, port))
        except zmq.ZMQError as exc:
            sock.close(0)
            raise SystemExit(
                f"node {self.id}: cannot bind {tcp_endpoint(host, port)}: {exc}. "
                "Another node (or an old one) is probably using this port: stop it "
                "(./run_cluster.sh stop) or choose another --port."
            ) from None
        return sock

    def register_socket(self, sock: zmq.Socket, handler: Callable[[list[bytes]], None]) -> None:
        """Let another component (training) have its socket served by this loop."""
        self.poller.register(sock, zmq.POLLIN)
        self._extra_handlers = getattr(self, "_extra_handlers", {})
        self._extra_handlers[sock] = handler

    # -- main loop ------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        self.monitor.start()
        self.training.start()
        log.info(
            "listening: clients %s, raft %s, heartbeats %s, monitor http://%s:%d",
            tcp_endpoint(self.config.host, self.ports.client),
            tcp_endpoint(self.config.host, self.ports.raft),
            tcp_endpoint(self.config.host, self.ports.heartbeat),
            self.config.monitor_host,
            self.config.monitor_port,
        )
        try:
            while self.running:
                self._turn()
            self._shutdown_gracefully()
            self._answer_waiting_requests()
        finally:
            self.close()

    def stop(self) -> None:
        self.running = False

    def _turn(self) -> None:
        timeout_ms = max(0.0, (self._next_tick - time.monotonic()) * 1000)
        for sock, _ in self.poller.poll(timeout_ms):
            self._drain(sock)
        now = time.monotonic()
        if now >= self._next_tick:
            _guarded(self.faults.refresh)
            self.core.tick()
            _guarded(lambda: self.training.tick(now))
            self._tick_compactor()
            _guarded(lambda: self.fetcher.tick(now, self.core.leader_id))
            _guarded(lambda: self._tick_observers(now))
            self._next_tick += self.config.tick_seconds
            if self._next_tick < now:  # we fell behind (a long fsync); don't burst-tick
                self._next_tick = now + self.config.tick_seconds
        self._issue_reads()
        self._process_ready()
        _guarded(self.batcher.flush)
        self._expire(now)
        self._note_role_change()

    def _drain(self, sock: zmq.Socket) -> None:
        for _ in range(BATCH):
            try:
                frames = recv_frames(sock)
            except zmq.Again:
                return
            if sock is self.client_sock:
                self._on_client(frames)
            elif sock is self.raft_sock:
                self._on_raft(frames[1:])  # drop the ROUTER identity
            elif sock is self.sub:
                self._on_raft(frames[1:])  # drop the topic
            else:
                handler = self._extra_handlers[sock]
                _guarded(lambda h=handler, f=frames: h(f))

    def _on_peer_event(self, peer: str, frames: list[bytes]) -> None:
        event = zmq.utils.monitor.parse_monitor_message(frames)
        if event["event"] != zmq.EVENT_DISCONNECTED or peer != self.core.leader_id:
            return
        log.warning(
            "lost the connection to leader %s (its process stopped?); electing a new one "
            "without waiting for the election timeout",
            peer,
        )
        self.core.peer_unreachable(peer)

    def _on_raft(self, frames: list[bytes]) -> None:
        try:
            msg = decode_raft(frames)
        except ProtocolError as exc:
            self.count("raft_garbage")
            log.warning("dropped a malformed Raft message: %s", exc.message)
            return
        if msg.dst not in (self.id, BROADCAST) or msg.src not in self.dealers:
            self.count("raft_misrouted")
            log.warning(
                "dropped a Raft message from %r to %r: not for this cluster member",
                msg.src,
                msg.dst,
            )
            return
        if msg.src in self.faults.drop_in:
            return
        self.observe.rpc_received.labels(msg.type.value).inc()
        if msg.type is MessageType.APPEND_RESP and msg.src in self._append_sent:
            last, sent_at = self._append_sent[msg.src]
            if msg.reject or msg.index >= last:
                del self._append_sent[msg.src]
                if not msg.reject:
                    self.observe.append_seconds.observe(time.monotonic() - sent_at)
        self.last_heard[msg.src] = time.monotonic()
        self.core.step(msg)

    def _process_ready(self) -> None:
        while self.core.has_ready():
            rd = self.core.ready()
            self.storage.persist(rd)  # durable before anything below promises it
            for msg in rd.messages:
                self._send_raft(msg)
            if rd.snapshot is not None:
                self.registry.restore(rd.snapshot.data)
                log.info(
                    "installed the leader's snapshot through entry %d (%d models)",
                    rd.snapshot.index,
                    len(self.registry.models),
                )
                self.events.add("snapshot_installed", f"{self.id}: snapshot at {rd.snapshot.index}")
                self.compactor.sync_unsynced()
                self._fetch_damaged_files()
            for entry in rd.committed:
                self._apply(entry)
            self.core.advance(rd)
            for state in rd.read_states:
                for waiter in self._reads.pop(state.read_ctx, []):
                    self.wait_applied(state.index, waiter)
            self._release_apply_waiters()

    def _send_raft(self, msg: Message) -> None:
        if msg.dst in self.faults.drop_out:
            return
        frames = encode_raft(msg)
        self.observe.rpc_sent.labels(msg.type.value).inc()
        if msg.type is MessageType.APPEND and msg.entries and msg.dst not in self._append_sent:
            # The round trip of this append: until the peer confirms its last entry.
            self._append_sent[msg.dst] = (msg.entries[-1].index, time.monotonic())
        if msg.dst == BROADCAST:
            self.pub.send_multipart([HEARTBEAT_TOPIC, *frames], copy=False)
            return
        try:
            self.dealers[msg.dst].send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.count("raft_dropped")  # peer down or slow; Raft will retry
            self._append_sent.pop(msg.dst, None)

    def _tick_compactor(self) -> None:
        """Compact when due. Damage found on disk while compacting stops the node
        (``__main__`` prints what to do); any other failure costs one attempt."""
        try:
            self.compactor.tick()
        except (StorageCorruption, StorageBroken):
            raise
        except Exception:
            log.exception("log compaction failed; keeping the log as it is")

    def _fetch_damaged_files(self) -> None:
        for record in self.registry.check_files():
            self.fetcher.want(record.model_id, record.sha256, record.size)

    def _apply(self, entry) -> None:
        record = None
        if entry.kind is EntryKind.COMMAND:
            record = self.registry.apply(entry.index, entry.data)
            if record is not None:
                self.fetcher.forget(record.model_id)
            if record is not None:
                log.info(
                    "stored model %s (%d bytes) at index %d",
                    record.model_id,
                    record.size,
                    entry.index,
                )
        if record is not None:
            self.events.add(
                "model_stored", f"model {record.model_id} stored at index {entry.index}"
            )
        pending = self._proposals.pop(entry.index, None)
        if pending is not None:
            term, callback, proposed_at = pending
            self.observe.commit_seconds.observe(time.monotonic() - proposed_at)
            _guarded(lambda: callback(term == entry.term))

    def _note_role_change(self) -> None:
        role, leader = self.core.role, self.core.leader_id
        if role is not self._last_role or leader != self._last_leader:
            term = self.core.term
            if role is Role.LEADER:
                log.info("became leader for term %d", term)
                self.events.add("leader", f"{self.id} became leader for term {term}")
            elif leader and leader != self._last_leader:
                log.info("following leader %s in term %d", leader, term)
                self.events.add("follower", f"{self.id} follows {leader} in term {term}")
            elif not leader and self._last_leader:
                log.info("lost contact with leader %s (term %d)", self._last_leader, term)
                self.events.add("leader_lost", f"{self.id} lost contact with {self._last_leader}")
            if leader and leader != self._last_leader:
                self.observe.leader_changes.inc()
            if role in (Role.PRE_CANDIDATE, Role.CANDIDATE) and role is not self._last_role:
                self.observe.campaigns.inc()
            if self._last_role is Role.LEADER and role is not Role.LEADER:
                self.training.on_leadership_lost()
                self._append_sent.clear()
            self._last_role, self._last_leader = role, leader

    # -- waiting for commits, reads and applies -------------------------------

    def propose(self, data: bytes, on_done: Callable[[bool], None]) -> wire.ErrorCode | None:
        """Propose a command; ``on_done(True)`` once applied in our term, else False."""
        result = self.core.propose(data)
        if not result.accepted:
            return ErrorCode.NOT_LEADER
        size = len(data)
        self._uncommitted_bytes += size

        def done(ok: bool) -> None:
            self._uncommitted_bytes -= size
            on_done(ok)

        self._proposals[result.index] = (result.term, done, time.monotonic())
        return None

    def pending(self) -> int:
        """Requests parked on this node: waiters, and clients joined to trainings."""
        joined = sum(len(job.replies) for job in self.training.jobs.values())
        return self._parked + joined

    def admit(self, header: dict[str, Any]) -> None:
        """Refuse (BUSY) a request that would park while --max-pending are parked."""
        limit = self.config.max_pending
        if self.pending() >= limit:
            self.count("busy_pending")
            raise ProtocolError(
                ErrorCode.BUSY,
                f"node {self.id} has {limit} requests waiting (--max-pending); retry later",
                header=header,
            )

    def linearizable(
        self, callback: Callable[[], None], on_timeout: Callable[[], None], timeout: float
    ) -> None:
        """Run ``callback`` once this node has applied everything committed now."""
        waiter = self._waiter(timeout, callback, on_timeout)
        self._read_batch.append(waiter)

    def _issue_reads(self) -> None:
        if not self._read_batch:
            return
        ctx = f"{self.id}/{next(self._ids)}"
        if self.core.read_index(ctx):
            self._reads[ctx] = self._read_batch
        else:
            # No leader known yet (election in progress): retry next turn.
            pending = [w for w in self._read_batch if not w.done]
            self._read_batch = pending
            return
        self._read_batch = []

    def wait_applied(self, index: int, waiter: _Waiter) -> None:
        if self.core.applied_index >= index:
            self._fire(waiter)
        else:
            heapq.heappush(self._apply_waiters, (index, next(self._ids), waiter))

    def _release_apply_waiters(self) -> None:
        applied = self.core.applied_index
        while self._apply_waiters and self._apply_waiters[0][0] <= applied:
            self._fire(heapq.heappop(self._apply_waiters)[2])

    def _waiter(self, timeout: float, callback, on_timeout) -> _Waiter:
        waiter = _Waiter(time.monotonic() + timeout, callback, on_timeout)
        heapq.heappush(self._deadlines, (waiter.deadline, next(self._ids), waiter))
        self._parked += 1
        return waiter

    def _settle(self, waiter: _Waiter) -> tuple[Callable[[], None], Callable[[], None]] | None:
        """Mark ``waiter`` done once; returns its (callback, on_timeout), else None.
        Its closures (and the request data they hold) are let go at once, not
        when its deadline leaves the heap."""
        if waiter.done:
            return None
        waiter.done = True
        self._parked -= 1
        callbacks = waiter.callback, waiter.on_timeout
        waiter.callback = waiter.on_timeout = _nothing
        return callbacks

    def _fire(self, waiter: _Waiter) -> None:
        callbacks = self._settle(waiter)
        if callbacks is not None:
            _guarded(callbacks[0])

    def _expire(self, now: float) -> None:
        expired = False
        while self._deadlines and self._deadlines[0][0] <= now:
            expired = True
            waiter = heapq.heappop(self._deadlines)[2]
            callbacks = self._settle(waiter)
            if callbacks is not None:
                _guarded(callbacks[1])
        if len(self._deadlines) > 2 * self._parked + 1024:
            # Answered waiters stay in the heap until their deadline; under a
            # flood of quick answers that is most of it: drop them.
            self._deadlines = [d for d in self._deadlines if not d[2].done]
            heapq.heapify(self._deadlines)
        if expired:
            # A read index that never came back (lost with a leader) must not
            # keep its waiters, and their request data, forever.
            for ctx in [c for c, ws in self._reads.items() if all(w.done for w in ws)]:
                del self._reads[ctx]
            self._apply_waiters = [w for w in self._apply_waiters if not w[2].done]
            heapq.heapify(self._apply_waiters)
            # A proposal whose index was applied without it (a snapshot
            # installed over it) will not be answered by _apply: settle it.
            applied = self.core.applied_index
            for index in [i for i in self._proposals if i <= applied]:
                _, callback, _ = self._proposals.pop(index)
                _guarded(lambda cb=callback: cb(False))

    # -- client requests -------------------------------------------------------

    def _on_client(self, frames: list[bytes]) -> None:
        try:
            routing, body = wire.split_envelope(frames)
        except ProtocolError as exc:
            # No envelope: we cannot even address a reply.
            self.count("client_garbage")
            log.warning("dropped a client message without envelope: %s", exc.message)
            return
        reply = _Replier(self, routing)
        try:
            header, blobs = wire.decode(body)
            size = sum(len(f) for f in body)
            if size > self.config.max_request_bytes:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"request is {size} bytes; node {self.id} accepts at most "
                    f"{self.config.max_request_bytes} (--max-request-bytes)",
                    header=header,
                )
            handler = self._handlers.get(header["type"])
            if handler is None:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_TYPE,
                    f"unknown request type {header['type']!r}; this node serves "
                    f"{', '.join(sorted(self._handlers))}",
                    header=header,
                )
            reply.kind = header["type"]
            handler(self, header, blobs, reply)
        except ProtocolError as exc:
            reply.error(exc.header, exc.code, exc.message)
        except Exception as exc:  # a bug must cost one request, never the node
            log.exception("internal error serving a request")
            reply.error(None, ErrorCode.INTERNAL, f"node {self.id} failed: {exc!r}")

    def _redirect_or_unavailable(
        self,
        header,
        reply: _Replier,
        code: ErrorCode = ErrorCode.NOT_LEADER,
        message: str = "",
    ) -> None:
        """REDIRECT to the leader; when there is none other than us, ``code``."""
        leader = self.core.leader_id
        if leader and leader != self.id:
            reply.send(wire.redirect_reply(header, leader))
        else:
            reply.error(
                header,
                code,
                message or f"node {self.id} knows no leader yet (election in progress); retry",
            )

    def _handle_status(self, header, blobs, reply) -> None:
        reply.ok(header, **self.status())

    def _handle_list(self, header, blobs, reply) -> None:
        reply.later(header, lambda: reply.ok(header, models=self.registry.listing()))

    def _handle_info(self, header, blobs, reply) -> None:
        model_id = _require_str(header, "model_id")

        def answer() -> None:
            record = self.registry.models.get(model_id)
            if record is None:
                reply.error(header, ErrorCode.NOT_FOUND, _not_found(model_id))
                return
            model = self._load_or_refuse(model_id, header, reply)
            if model is not None:
                reply.ok(header, model=record.to_json(), metadata=model.metadata_json())

        self._with_model(model_id, header, reply, answer)

    def _handle_predict(self, header, blobs, reply) -> None:
        model_id = _require_str(header, "model_id")
        inputs = wire.read_array(header, blobs, "inputs", max_bytes=self.config.max_request_bytes)
        rows = _as_rows(inputs)

        def answer() -> None:
            if model_id not in self.registry:
                reply.error(header, ErrorCode.NOT_FOUND, _not_found(model_id))
                return
            model = self._load_or_refuse(model_id, header, reply)
            if model is None:
                return
            if rows.shape[1] != model.n_inputs:
                # Checked here so that one bad request cannot fail a batch.
                reply.error(
                    header,
                    ErrorCode.BAD_INPUT,
                    f"model {model_id} expects {model.n_inputs} input columns, got {rows.shape[1]}",
                )
                return
            self.batcher.add(model_id, model, rows, header, reply)

        self._with_model(model_id, header, reply, answer)

    def _load_or_refuse(self, model_id: str, header, reply) -> Model | None:
        """The model, or None after answering: our copy is damaged and being
        fetched again, so the leader (or another node) must serve it."""
        try:
            return self.registry.load(model_id)
        except ModelFileDamaged as exc:
            record = self.registry.models[model_id]
            self.fetcher.want(model_id, record.sha256, record.size)
            self._redirect_or_unavailable(
                header,
                reply,
                ErrorCode.UNAVAILABLE,
                f"node {self.id} cannot serve model {model_id} now: {exc.reason}; "
                "it is being fetched from the other nodes. Retry, or ask another node",
            )
            return None

    def _handle_fetch(self, header, blobs, reply) -> None:
        """A chunk of a model file, for a peer repairing its copy (repair.py)."""
        model_id = _require_str(header, "model_id")
        offset, length = header.get("offset"), header.get("length")
        for name, value in (("offset", offset), ("length", length)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    f"field {name!r} must be a non-negative integer",
                    header=header,
                )
        record = self.registry.models.get(model_id)
        missing = f"node {self.id} has no good copy of {model_id}"
        if record is None or model_id in self.registry.damaged:
            reply.error(header, ErrorCode.NOT_FOUND, missing)
            return
        try:
            with open(self.registry.store.path(model_id), "rb") as f:
                f.seek(offset)
                chunk = f.read(min(length, self.config.fetch_chunk_bytes))
        except FileNotFoundError:
            reply.error(header, ErrorCode.NOT_FOUND, missing)
            return
        reply.ok(header, [chunk], size=record.size, offset=offset, sha256=record.sha256)

    def _with_model(self, model_id: str, header, reply, answer: Callable[[], None]) -> None:
        """Answer at once if we hold the model, else after catching up (ReadIndex)."""
        if model_id in self.registry:
            answer()
        else:
            reply.later(header, answer)

    def _handle_train(self, header, blobs, reply) -> None:
        if not self.core.is_leader:
            self._redirect_or_unavailable(header, reply)
            return
        model_id = model_id_for(header["id"])
        if header["id"] in self.training.jobs:
            self.training.submit(header, blobs, reply)  # joins the running job
            reply.wait(header)
            return

        def decide() -> None:
            # After catching up, so a model an earlier leader acknowledged is seen.
            if model_id in self.registry:
                reply.ok(
                    header,
                    model_id=model_id,
                    **self.registry.models[model_id].summary,
                    warnings=["this request id was already trained; returning its model"],
                )
            elif self.core.is_leader:
                self.training.submit(header, blobs, reply)
            else:
                self._redirect_or_unavailable(header, reply)

        reply.later(header, decide)

    def _handle_import(self, header, blobs, reply) -> None:
        if not self.core.is_leader:
            self._redirect_or_unavailable(header, reply)
            return
        if len(blobs) != 1:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"IMPORT carries one frame (the model file), got {len(blobs)}",
                header=header,
            )
        data = blobs[0]
        if len(data) > self.config.max_model_bytes:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"model file is {len(data)} bytes; limit is "
                f"{self.config.max_model_bytes} (--max-model-bytes)",
                header=header,
            )
        try:
            model = Model.from_bytes(data)
        except ModelFormatError as exc:
            raise ProtocolError(
                ErrorCode.BAD_INPUT, f"not a valid model file: {exc}", header=header
            ) from None
        if not all(isinstance(c, (int, float)) for c in model.classes):
            raise ProtocolError(
                ErrorCode.BAD_INPUT,
                "this model's class labels are not numbers; zmqnode predicts numeric labels only",
                header=header,
            )
        self.store_model(header, reply, data, listing_summary(model))

    def store_model(
        self,
        header,
        reply,
        model_bytes: bytes,
        summary: dict[str, Any],
        extra: dict[str, Any] | None = None,
        *,
        admitted: bool = False,
    ) -> None:
        """Replicate a model file and answer the client once it is committed.

        ``admitted``: the request already passed admission (a TRAIN, bounded by
        --max-trainings): its finished work is not thrown away for BUSY."""
        request_id = header["id"]
        model_id = model_id_for(request_id)
        if not admitted:
            try:
                self.admit(header)
                self._admit_bytes(header, len(model_bytes))
            except ProtocolError as exc:
                reply.error(header, exc.code, exc.message)
                return
        command = encode_store_model(request_id, model_bytes, time.time(), summary)

        def done(ok: bool) -> None:
            if self._settle(waiter) is None:
                return
            if ok or model_id in self.registry:
                reply.ok(header, model_id=model_id, **(extra or {}))
            else:
                reply.error(
                    header,
                    ErrorCode.NOT_LEADER,
                    f"node {self.id} lost leadership before model {model_id} committed; "
                    "retry with the same request id",
                )

        if isinstance(reply, _Replier):  # a training's replies waited since TRAIN came
            reply.wait(header)
        waiter = self._waiter(
            self.request_timeout(header),
            lambda: None,
            lambda: reply.error(
                header,
                ErrorCode.TIMEOUT,
                f"model {model_id} was not committed in time on node "
                f"{self.id} (no quorum?); retry "
                "with the same request id",
            ),
        )
        if self.propose(command, done) is not None:
            self._settle(waiter)
            self._redirect_or_unavailable(header, reply)

    def _admit_bytes(self, header: dict[str, Any], size: int) -> None:
        """Refuse (BUSY) a proposal of ``size`` bytes past --max-uncommitted-bytes
        (one is always let through when nothing else waits)."""
        limit = self.config.max_uncommitted_bytes
        held = self._uncommitted_bytes
        if held and held + size > limit:
            self.count("busy_uncommitted")
            raise ProtocolError(
                ErrorCode.BUSY,
                f"node {self.id} holds {held} bytes of models not yet committed; "
                f"{size} more would pass --max-uncommitted-bytes {limit}; retry later",
                header=header,
            )

    _handlers: dict[str, Callable[..., None]] = {
        "STATUS": _handle_status,
        "LIST": _handle_list,
        "INFO": _handle_info,
        "PREDICT": _handle_predict,
        "TRAIN": _handle_train,
        "IMPORT": _handle_import,
        "FETCH": _handle_fetch,
    }

    # -- views -----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        core = self.core
        return {
            "node": self.id,
            "role": core.role.value,
            "term": core.term,
            "leader": core.leader_id or None,
            "commit_index": core.commit_index,
            "applied_index": core.applied_index,
            "last_index": core.last_index,
            "peers": list(self.config.peers),
            "models": len(self.registry.models),
            "snapshot_index": core.snapshot.index,
            "models_repairing": self.fetcher.pending(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "trainer": self.training.trainer_state(),
            # Clients check large payloads against these before sending them.
            "limits": {
                "max_request_bytes": self.config.max_request_bytes,
                "max_model_bytes": self.config.max_model_bytes,
                "max_trainings": self.config.max_trainings,
                "max_pending": self.config.max_pending,
                "max_uncommitted_bytes": self.config.max_uncommitted_bytes,
            },
            "load": {
                "trainings": len(self.training.jobs),
                "pending": self.pending(),
                "uncommitted_bytes": self._uncommitted_bytes,
            },
        }

    def request_timeout(self, header: dict[str, Any] | None) -> float:
        """How long to wait for a request: the client's ``timeout_ms`` (a little
        less, so the answer arrives while it still listens), within our bound."""
        client_ms = (header or {}).get("timeout_ms")
        if isinstance(client_ms, int) and not isinstance(client_ms, bool) and client_ms > 0:
            return min(self.config.request_timeout, max(0.05, client_ms / 1000 * 0.9))
        return self.config.request_timeout

    def count(self, name: str, n: int = 1) -> None:
        """Count an event that has no metric of its own (``zmqnode_events_total``)."""
        self.observe.events.labels(name).inc(n)

    def _tick_observers(self, now: float) -> None:
        """Once a tick: gauges, peers up/down, the HTTP views; the status feed 5x a second."""
        self._ticks += 1
        self.observe.refresh(self)
        down_after = self.config.election_ticks * self.config.tick_seconds
        for peer in self.config.peers:
            silent = now - self.last_heard.get(peer, -1e9) > down_after
            if silent and peer not in self._peers_down:
                self._peers_down.add(peer)
                self.events.add("peer_down", f"{self.id}: no word from {peer} for {down_after}s")
            elif not silent and peer in self._peers_down:
                self._peers_down.discard(peer)
                self.events.add("peer_up", f"{self.id} hears from {peer}")
        self.monitor.publish()
        if self._ticks % max(1, round(FEED_SECONDS / self.config.tick_seconds)) == 0:
            feed = orjson.dumps(status_feed(self, self._ticks))
            self.pub.send_multipart([STATUS_TOPIC, feed], zmq.NOBLOCK)

    # -- shutdown ------------------------------------------------------------

    def _shutdown_gracefully(self) -> None:
        """Hand leadership to a peer before leaving, so the cluster does not
        wait an election timeout for us."""
        if not self.core.is_leader or not self.config.peers:
            return
        target = max(self.core.progress, key=lambda p: self.core.progress[p].match)
        log.info("shutting down: transferring leadership to %s", target)
        self.core.transfer_leadership(target)
        deadline = time.monotonic() + self.config.tick_seconds * self.config.election_ticks
        while self.core.is_leader and time.monotonic() < deadline:
            self._turn()

    def _answer_waiting_requests(self) -> None:
        """Every request still waiting (a commit, a read index, a training) gets
        an answer before the node goes, so no client waits out its timeout."""
        message = (
            f"node {self.id} is shutting down; retry (with the same request id) on another node"
        )
        for replier in list(self.waiting_replies):
            replier.error(replier.header, ErrorCode.UNAVAILABLE, message)

    def close(self) -> None:
        self.training.close()
        self.compactor.close()
        self.fetcher.close()
        self.monitor.stop()
        self.storage.close()
        if self.authenticator is not None:
            self.authenticator.stop()  # first: destroy() would close its sockets under it
        self.ctx.destroy(linger=LINGER_MS)
        log.info("node %s stopped", self.id)


class _Replier:
    """Answers one client request, now or later, exactly once."""

    __slots__ = ("node", "routing", "sent", "kind", "received", "header")

    def __init__(self, node: Node, routing: list[bytes]) -> None:
        self.node = node
        self.routing = routing
        self.sent = False
        self.kind = "unknown"  # the request type, once the header is read
        self.received = time.perf_counter()
        self.header: dict[str, Any] | None = None  # set while the request waits

    def wait(self, header: dict[str, Any]) -> None:
        """This request is answered later: remember it so shutdown can answer it."""
        self.header = header
        self.node.waiting_replies.add(self)

    def send(self, header: dict[str, Any], blobs: list[bytes] = ()) -> None:
        if self.sent:
            return
        self.sent = True
        if self.header is not None:
            self.node.waiting_replies.discard(self)
        elapsed = time.perf_counter() - self.received
        self.node.observe.request_done(self.kind, header.get("code") or header["status"], elapsed)
        # Replies are small: copying beats zero-copy bookkeeping; plain-int
        # flags skip pyzmq's enum arithmetic (both measurable per request).
        frames = [*self.routing, b"", orjson.dumps(header), *blobs]
        try:
            send_frames(self.node.client_sock, frames)
        except zmq.Again:
            self.node.count("replies_dropped")

    def ok(self, header, blobs: list[bytes] = (), **fields) -> None:
        self.send(wire.ok_reply(header, **fields), blobs)

    def progress(self, header, **fields) -> None:
        """An interim message; the final answer is still to come."""
        if self.sent:
            return
        frames = wire.join_envelope(
            self.routing, wire.encode(wire.progress_reply(header, **fields))
        )
        try:
            self.node.client_sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # progress is best effort

    def error(self, header, code: ErrorCode, message: str) -> None:
        self.send(wire.error_reply(header, code, message))

    def later(self, header, answer: Callable[[], None]) -> None:
        """Answer once this node has caught up with the leader's commit index
        (BUSY at once if --max-pending requests already wait)."""
        self.node.admit(header)
        self.wait(header)

        def guarded_answer() -> None:
            try:
                answer()
            except ProtocolError as exc:
                self.error(header, exc.code, exc.message)
            except Exception as exc:
                log.exception("internal error serving a deferred request")
                self.error(header, ErrorCode.INTERNAL, f"node {self.node.id} failed: {exc!r}")

        self.node.linearizable(
            guarded_answer,
            lambda: self.error(
                header,
                ErrorCode.UNAVAILABLE,
                f"node {self.node.id} could not confirm the cluster's latest state "
                "in time (no leader reachable?); retry or ask another node",
            ),
            timeout=self.node.request_timeout(header),
        )


def _require_str(header: dict[str, Any], key: str) -> str:
    value = header.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"field {key!r} must be a non-empty string", header=header
        )
    return value


def _not_found(model_id: str) -> str:
    return f"model {model_id!r} not found; `python -m client list` shows the models"


def _as_rows(inputs: np.ndarray) -> np.ndarray:
    if inputs.ndim == 1:
        inputs = inputs.reshape(1, -1)
    if inputs.ndim != 2 or inputs.shape[0] == 0:
        raise ProtocolError(
            ErrorCode.BAD_SHAPE,
            f"inputs must be a non-empty 2-D array (rows x columns), "
            f"got shape {list(inputs.shape)}",
        )
    return inputs  # NaN and infinity: the model checks each batch (serving.py)


def _guarded(callback: Callable[[], None]) -> None:
    """Run a deferred answer; a bug in one must not take the loop down."""
    try:
        callback()
    except Exception:
        log.exception("internal error while answering a deferred request")
