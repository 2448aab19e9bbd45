"""One zmqnode process: the event loop that drives Raft over ZeroMQ and disk.

A single thread owns every socket and the Raft core. Each turn of the loop:

1. poll the sockets until the next tick is due;
2. hand Raft messages to the core and client requests to their handlers
   (``handlers.py``);
3. tick the Raft clock if a tick is due, and the components that keep time
   (training, compaction, file repair, observers);
4. drain the core's Ready: persist (fsync: one per batch, group commit),
   only then send its messages, apply committed entries to the registry,
   release the requests that were waiting for them (``waiting.py``).

Nothing slow runs here: training happens in a trainer process fed over
PUSH/PULL (``training/``), and requests that must wait (a commit, a read
index, trainers) are parked with a deadline and answered later.

Besides that thread: the ZAP handler thread that checks the public key of
every CURVE connection (``transport/security.py``), sharing nothing with the
loop but the allow-lists it was given at start-up; the HTTP monitor
(``monitor.py``, a thread per connection), which reads only what the loop
publishes; and two single-thread pools for work too slow for the loop,
preparing training data (``training/``) and fsyncing model files before a
compaction (``compaction.py``). docs/ARCHITECTURE.md lists them all.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable, Sequence

import zmq

from . import __version__
from .compaction import Compactor
from .config import NodeConfig
from .handlers import Leadership, RequestHandlers
from .inference_http import HttpInference
from .logs import setup_logging
from .member_requests import MemberLinks, MemberRequests
from .members import allowed_keys, bootstrap_membership
from .monitor import Monitor
from .observe import Events, NodeMetrics, NodeSnapshot, RaftTraffic, status_feed
from .raft import (
    ConfChange,
    Entry,
    EntryKind,
    Membership,
    ProposeResult,
    RaftConfig,
    RaftCore,
    Role,
)
from .registry import ModelRegistry
from .repair import ModelFetcher
from .replies import ClientChannel
from .serving import PredictionBatcher
from .storage.atomic import atomic_write
from .storage.errors import StorageBroken, StorageCorruption
from .storage.model_store import ModelStore
from .storage.node_storage import NodeStorage, Recovered
from .training import TrainingCoordinator, TrainingLinks
from .training.process import member_keys_path
from .transport import keystore, security
from .transport.addresses import format_address, parse_address, tcp_endpoint
from .transport.faults import FaultFile
from .transport.http import HttpLimits, HttpServer
from .transport.join import JoinError, ask_to_join
from .transport.peers import FaultyPeerLinks, PeerLinks
from .transport.sockets import LINGER_MS, BindError, Sockets, recv_frames
from .transport.wire import ErrorCode
from .waiting import Admission, Proposals, Waiters, guarded

log = logging.getLogger("zmqnode.node")

# Messages handled per socket per loop turn, so one busy socket cannot
# starve Raft traffic or the clock.
BATCH = 256
# The status feed goes out this often.
FEED_SECONDS = 0.2
# A client request may be this much larger than --max-request-bytes before
# the socket drops the connection instead of answering TOO_LARGE: this
# bounds the memory one frame from a hostile or broken peer can take.
CLIENT_FRAME_SLACK = 64 << 20


class Node:
    """A cluster member: its storage, Raft core and components, and the loop
    that connects them. ``run()`` serves until ``stop()`` (or SIGTERM/SIGINT).

    The node wires its components together and hands each only what it needs
    (callables and small objects); none of them receives the node.
    """

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.id = config.node_id
        os.makedirs(config.storage_dir, exist_ok=True)
        self.log_path = os.path.join(config.storage_dir, f"worker_{config.port}.log")
        setup_logging(self.id, self.log_path, config.log_level)
        self.started = time.monotonic()
        self.running = True

        self.metrics = NodeMetrics()
        self.events = Events()
        self.storage = NodeStorage(config.storage_dir)
        self.storage.stats.on_fsync = self.metrics.fsync_seconds.observe
        recovered = self.storage.open()  # logs what it repaired
        models = ModelStore(os.path.join(config.storage_dir, "models"), stats=self.storage.stats)
        self.registry = ModelRegistry(models)
        if recovered.snapshot is not None:
            self.registry.restore(recovered.snapshot.data)
        self.ctx = zmq.Context()
        keys = self._load_keys()
        self._keys = keys
        self.core = RaftCore(
            self.id,
            config.peers,
            RaftConfig(election_ticks=config.election_ticks),
            random.Random(os.urandom(16)),
            hard_state=recovered.hard_state,
            snapshot=recovered.snapshot,
            entries=recovered.entries,
            bootstrap=self._bootstrap(recovered, keys),
            vote_floor=self._joined_at(),
        )
        self.compactor = Compactor(
            self.id, self.core, self.registry, self.storage, config.snapshot_entries
        )
        log.info(
            "node %s starting: term %d, %d log entries, members %s, storage %s",
            self.id,
            recovered.hard_state.term,
            len(recovered.entries),
            _describe(self.core.membership),
            config.storage_dir,
        )

        # Before any socket binds: without a ZAP handler libzmq admits every key.
        self.authenticator = security.start_authenticator(self.ctx, keys)
        self._membership_seen = (-1, False)
        self._peer_monitors: dict[str, zmq.Socket] = {}
        sockets = Sockets(self.ctx, keys)
        self.poller = zmq.Poller()
        # socket -> (handler, whether a failing handler is logged and survived)
        self._socket_handlers: dict[zmq.Socket, tuple[Callable[[list[bytes]], None], bool]] = {}
        # plain file descriptors (the HTTP port's) -> callback(revents)
        self._fd_handlers: dict[int, Callable[[int], None]] = {}
        try:
            self._open_links(sockets)
        except BindError as exc:
            raise self._port_in_use(exc) from None

        self.fetcher = ModelFetcher(
            self.id,
            sockets,
            list(self.core.peers),
            self.register_socket,
            self.registry.store_repaired,
            chunk_bytes=config.fetch_chunk_bytes,
        )
        self._fetch_damaged_files()  # those the snapshot covers; the log rewrites the rest
        self.waiters = Waiters(read_tag=self.id)
        self.proposals = Proposals()
        self.batcher = PredictionBatcher(self.id, self.metrics.predict_batch_requests.observe)
        try:
            self.training = TrainingCoordinator(
                TrainingLinks(
                    node_id=self.id,
                    peers=self.core.peers,
                    config=config,
                    sockets=sockets,
                    log_path=self.log_path,
                    register_socket=self.register_socket,
                    admit=lambda header: self.admission.admit(header),
                    count=self.count,
                    commit_model=lambda *args: self.handlers.commit_model(*args),
                    leader_id=lambda: self.core.leader_id,
                    last_heard=self.links.last_heard,
                    is_running=lambda: self.running,
                    add_event=self.events.add,
                    job_finished=self._training_finished,
                )
            )
        except BindError as exc:  # the results port
            raise self._port_in_use(exc) from None
        self.admission = Admission(
            self.id,
            config.max_pending,
            config.max_uncommitted_bytes,
            pending=lambda: self.waiters.parked + self.training.joined_clients(),
            uncommitted_bytes=lambda: self.proposals.uncommitted_bytes,
            count=self.count,
        )
        self.handlers = RequestHandlers(
            config,
            self.channel,
            self.registry,
            self.batcher,
            self.training,
            self.waiters,
            self.admission,
            Leadership(
                leader_id=lambda: self.core.leader_id,
                is_leader=lambda: self.core.is_leader,
                propose=self.propose,
            ),
            want_file=self.fetcher.want,
            status=lambda: self.snapshot().status(),
            count=self.count,
        )
        self.member_requests = MemberRequests(
            MemberLinks(
                core=self.core,
                last_heard=self.links.last_heard,
                peer_status=self.links.peer_status,
                propose=self.propose_membership,
                redirect=self.handlers.redirect_or_unavailable,
                request_timeout=self.handlers.request_timeout,
                own_models_missing=lambda: len(self.registry.damaged) + self.fetcher.pending(),
            ),
            self.waiters,
            self.admission,
        )
        self.handlers.add(self.member_requests.handlers())
        self.register_socket(self.channel.sock, self.handlers.on_request, guard=False)
        self.http: HttpServer | None = None
        self.inference: HttpInference | None = None
        if config.http_enabled:
            self._open_http(keys is not None)
        self.monitor = Monitor(
            self.id,
            config.monitor_host,
            config.monitor_port,
            self.log_path,
            self.metrics.registry.render,
        )

        self._next_tick = time.monotonic()
        self._ticks = 0
        self._last_role = Role.FOLLOWER
        self._last_leader = ""
        self._peers_down: set[str] = set(self.core.peers)  # until first heard from

    def _bootstrap(self, recovered: Recovered, keys: security.NodeKeys | None) -> Membership:
        """The membership before the log says otherwise: the command line's
        nodes, or for ``--join`` the one the cluster answered (an empty one
        once the storage holds the log: a joined node never starts alone)."""
        config = self.config
        own = keys.public.decode() if keys else ""
        if not config.join:
            return bootstrap_membership(config, own)
        fresh = (
            recovered.snapshot is None and not recovered.entries and recovered.hard_state.term == 0
        )
        if not fresh:
            return Membership.of([])
        log.info("joining the cluster through %s as a learner", ", ".join(config.join))
        try:
            data, index = ask_to_join(self.ctx, keys, config.join, self.id, own)
        except JoinError as exc:
            raise SystemExit(f"node {self.id}: {exc}") from None
        membership = Membership.decode(data)
        log.info("joined at index %d: %s", index, _describe(membership))
        self._save_joined_at(index)
        return membership

    def _joined_path(self) -> str:
        return os.path.join(self.config.storage_dir, "joined_at")

    def _save_joined_at(self, index: int) -> None:
        """The JOIN's index, durably: the core's vote floor across restarts."""
        atomic_write(self._joined_path(), f"{index}\n".encode(), stats=self.storage.stats)

    def _joined_at(self) -> int:
        try:
            with open(self._joined_path()) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _open_http(self, secure: bool) -> None:
        """The HTTP inference port (inference_http.py): the token is required
        when security is on; config.py refuses a non-loopback bind without it."""
        config = self.config
        assert config.keys_dir is not None or not secure
        token = security.load_http_token(config.keys_dir) if secure and config.keys_dir else None
        self.inference = HttpInference(
            self.id,
            token,
            self.handlers.dispatch,
            task_of=self._task_of,
            ready=self._ready_to_serve,
            on_answered=self.metrics.http_done,
            version=__version__,
        )
        limits = HttpLimits(
            max_body_bytes=config.max_request_bytes,
            idle_timeout=config.http_idle_timeout,
            request_timeout=config.http_request_timeout,
        )
        try:
            self.http = HttpServer(
                config.http_host,
                config.ports.http,
                limits,
                self.inference.on_request,
                self.watch_fd,
                self.unwatch_fd,
            )
        except BindError as exc:
            raise self._port_in_use(exc) from None

    def _task_of(self, model_id: str) -> str | None:
        record = self.registry.models.get(model_id)
        task = record.summary.get("task") if record is not None else None
        return task if isinstance(task, str) else None

    def _ready_to_serve(self) -> bool:
        """OIP readiness: this node knows a leader and has applied every entry
        it knows committed (so what it answers is what the cluster holds)."""
        core = self.core
        return bool(core.leader_id) and core.applied_index >= core.commit_index

    def watch_fd(self, fd: int, events: int, callback: Callable[[int], None]) -> None:
        """Have this loop call ``callback(revents)`` when ``fd`` is ready for
        ``events`` (zmq.POLLIN / POLLOUT); a second call changes the events."""
        self.poller.register(fd, events)
        self._fd_handlers[fd] = callback

    def unwatch_fd(self, fd: int) -> None:
        if self._fd_handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def _port_in_use(self, exc: BindError) -> SystemExit:
        return SystemExit(
            f"node {self.id}: {exc}. Another node (or an old one) is probably using "
            "this port: stop it (./run_cluster.sh stop) or choose another --port."
        )

    def _load_keys(self) -> security.NodeKeys | None:
        config = self.config
        if config.keys_dir is None or config.node_key is None:  # both or neither (config.py)
            security.warn_insecure(f"node {self.id}")
            return None
        if config.local_keys:
            nodes = [parse_address(node) for node in (self.id, *config.peers)]
            made = keystore.ensure_local_keys(config.keys_dir, nodes)
            log.info(
                "no --keys and every address is loopback: using the local keys in %s "
                "(%s; python -m client finds them there)",
                config.keys_dir,
                f"made {len(made)} keypairs" if made else "all there already",
            )
        keys = security.load_node_keys(config.keys_dir, config.node_key, config.client_auth)
        log.info(
            "CURVE on: node key %s, %d members allowed, clients: %s",
            config.node_key,
            len(keys.members),
            "any holding cluster.key"
            if keys.clients is None
            else f"{len(keys.clients)} allowed keys",
        )
        return keys

    def _open_links(self, sockets: Sockets) -> None:
        """The client ROUTER and the Raft links (``transport/peers.py``)."""
        config = self.config
        client_sock = sockets.server(
            zmq.ROUTER,
            tcp_endpoint(config.host, config.ports.client),
            security.CLIENTS,
            # Requests over --max-request-bytes get a TOO_LARGE reply; only a
            # frame far beyond it costs the sender its connection.
            max_message_bytes=4 * config.max_request_bytes + CLIENT_FRAME_SLACK,
        )
        self.channel = ClientChannel(
            client_sock,
            on_answered=self.metrics.request_done,
            on_dropped=lambda: self.count("replies_dropped"),
        )
        self.traffic = RaftTraffic(self.metrics)
        link_args = (
            self.id,
            self.core.peers,
            sockets,
            config.host,
            config.ports,
            2 * config.max_model_bytes + (16 << 20),
            self.traffic.sent,
            self.traffic.received,
            self.count,
        )
        self.links = (
            FaultyPeerLinks(FaultFile(config.fault_file), *link_args)
            if config.fault_file
            else PeerLinks(*link_args)
        )
        raft_sock, sub = self.links.inbound()
        # The ROUTER's frames start with the peer's identity; the SUB's with a topic.
        self.register_socket(raft_sock, lambda frames: self._on_raft(frames[1:]), guard=False)
        self.register_socket(sub, self._on_published, guard=False)
        self.register_socket(self.links.sub_events, self.links.sub_event)
        self._watch_peers(self.links.peers)
        self._sync_membership()

    def _watch_peers(self, peers: Sequence[str]) -> None:
        for peer, events in self.links.peer_events(peers):
            self._peer_monitors[peer] = events
            self.register_socket(events, functools.partial(self._on_peer_event, peer))

    def _sync_membership(self) -> None:
        """Links and allow-lists follow the membership (members.py); cheap
        when it did not change (called every turn)."""
        core = self.core
        seen = (core.membership_index, core.membership_index <= core.commit_index)
        if seen == self._membership_seen:
            return
        self._membership_seen = seen
        committed = core.membership_at(core.commit_index)
        # Linked to the members of both: a leader that removes itself leads
        # until that commits, and its followers must still hear it.
        peers = tuple(sorted((committed.members | core.membership.members) - {self.id}))
        for gone in [p for p in self.links.peers if p not in peers]:
            monitor = self._peer_monitors.pop(gone, None)
            if monitor is not None:
                self.poller.unregister(monitor)
                self._socket_handlers.pop(monitor, None)
                monitor.close(linger=0)
        added, removed = self.links.set_peers(peers)
        self._watch_peers(added)
        if self.authenticator is not None and self._keys is not None:
            admitted = allowed_keys(
                committed, core.membership, self._keys.public, self._keys.members
            )
            self.authenticator.set_members(admitted)
            try:
                security.MemberKeysFile(member_keys_path(self.config)).write(admitted)
            except OSError as exc:
                log.warning("cannot share the member keys with the trainer: %s", exc)
        if added or removed or self._membership_seen[0] > 0:
            log.info(
                "membership at index %d (%s): %s",
                core.membership_index,
                "committed" if seen[1] else "not committed yet",
                _describe(core.membership),
            )
        if added or removed:
            self.events.add("membership", f"{self.id}: members now {_describe(core.membership)}")
        if seen[1] and self.id not in committed.members:
            log.warning(
                "node %s is no longer a member of the cluster (removed at index %d): "
                "it serves nothing new; stop it",
                self.id,
                core.membership_index,
            )

    def register_socket(
        self, sock: zmq.Socket, handler: Callable[[list[bytes]], None], *, guard: bool = True
    ) -> None:
        """Have this loop serve ``sock``: each message's frames go to ``handler``.

        ``guard``: an exception from ``handler`` is logged and costs that one
        message. The node's own Raft and client paths are not guarded: their
        handlers answer errors themselves, and a Raft invariant broken must
        stop the node rather than be logged and survived."""
        self.poller.register(sock, zmq.POLLIN)
        self._socket_handlers[sock] = (handler, guard)

    # -- the loop --------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        self.monitor.publish(self.snapshot(), self.registry.listing)
        self.monitor.start()  # the trainer process starts later: TrainingCoordinator.tick
        config = self.config
        log.info(
            "listening: clients %s, raft %s, heartbeats %s, monitor http://%s:%d, %s",
            tcp_endpoint(config.host, config.ports.client),
            tcp_endpoint(config.host, config.ports.raft),
            tcp_endpoint(config.host, config.ports.heartbeat),
            config.monitor_host,
            config.monitor_port,
            "HTTP inference off"
            if self.http is None
            else f"HTTP inference http://{format_address(self.http.host, self.http.port)}/v2"
            + (" (bearer token KEYS/http.token)" if self.config.keys_dir else " (no token)"),
        )
        try:
            while self.running:
                self._turn()
            self._shutdown_gracefully()
            self.channel.answer_all_waiting(
                ErrorCode.UNAVAILABLE,
                f"node {self.id} is shutting down; retry (with the same request id) "
                "on another node",
            )
            if self.inference is not None:
                self.inference.answer_all_waiting(
                    f"node {self.id} is shutting down; retry on another node"
                )
        finally:
            self.close()

    def stop(self) -> None:
        self.running = False

    def _turn(self) -> None:
        timeout_ms = max(0, math.ceil((self._next_tick - time.monotonic()) * 1000))
        for sock, revents in self.poller.poll(timeout_ms):
            if isinstance(sock, int):
                callback = self._fd_handlers.get(sock)  # an earlier one may have closed it
                if callback is not None:
                    guarded(functools.partial(callback, revents))
            else:
                self._drain(sock)
        now = time.monotonic()
        if now >= self._next_tick:
            self.core.tick()
            if self.http is not None:
                guarded(functools.partial(self.http.tick, now))
            guarded(lambda: self.training.tick(now))
            self._tick_compactor()
            guarded(lambda: self.fetcher.tick(now, self.core.leader_id))
            guarded(lambda: self.links.tick(now))  # reopens refused peer links
            guarded(lambda: self._tick_observers(now))
            self._next_tick += self.config.tick_seconds
            if self._next_tick < now:  # we fell behind (a long fsync); don't burst-tick
                self._next_tick = now + self.config.tick_seconds
        self.waiters.issue_reads(self.core.read_index)
        self._process_ready()
        self._sync_membership()
        guarded(self.batcher.flush)
        if self.waiters.expire(now):
            self.proposals.passed_over(self.core.applied_index)
        self._note_role_change()

    def _drain(self, sock: zmq.Socket) -> None:
        handler, guard = self._socket_handlers[sock]
        for _ in range(BATCH):
            try:
                frames = recv_frames(sock)
            except zmq.Again:
                return
            if not guard:
                handler(frames)
                continue
            try:
                handler(frames)
            except Exception:
                log.exception("internal error handling a message; dropped it")

    def _on_raft(self, frames: list[bytes]) -> None:
        msg = self.links.receive(frames)
        if msg is not None:
            self.core.step(msg)

    def _on_published(self, frames: list[bytes]) -> None:
        msg = self.links.receive_published(frames)
        if msg is not None:
            self.core.step(msg)

    def _on_peer_event(self, peer: str, frames: list[bytes]) -> None:
        if not self.links.peer_event(peer, frames) or peer != self.core.leader_id:
            return
        log.warning(
            "lost the connection to leader %s (its process stopped?); electing a new one "
            "without waiting for the election timeout",
            peer,
        )
        self.core.peer_unreachable(peer)

    def _process_ready(self) -> None:
        """Carry out what Raft decided, in the order its safety needs."""
        while self.core.has_ready():
            rd = self.core.ready()
            self.storage.persist(rd)  # durable before anything below promises it
            for msg in rd.messages:
                self.links.send(msg)
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
            applied = self.core.applied_index
            for state in rd.read_states:
                self.waiters.read_index_ready(state.read_ctx, state.index, applied)
            self.waiters.applied(applied)

    def _apply(self, entry: Entry) -> None:
        if entry.kind is EntryKind.COMMAND:
            record = self.registry.apply(entry.index, entry.data)
            if record is not None:
                self.fetcher.forget(record.model_id)
                log.info(
                    "stored model %s (%d bytes) at index %d",
                    record.model_id,
                    record.size,
                    entry.index,
                )
                self.events.add(
                    "model_stored", f"model {record.model_id} stored at index {entry.index}"
                )
        waited = self.proposals.applied(entry.index, entry.term)
        if waited is not None:
            self.metrics.commit_seconds.observe(waited)

    def propose(self, data: bytes, on_done: Callable[[bool], None]) -> ErrorCode | None:
        """Propose a command; ``on_done(True)`` once applied in our term, else False."""
        result = self.core.propose(data)
        if not result.accepted:
            return ErrorCode.NOT_LEADER
        self.proposals.add(result.index, result.term, len(data), on_done)
        return None

    def propose_membership(
        self, change: ConfChange, base_index: int | None, on_done: Callable[[bool], None]
    ) -> ProposeResult:
        """Propose a membership change; ``on_done(True)`` once applied in our term."""
        result = self.core.propose_membership(change, base_index)
        if result.accepted:
            self.proposals.add(result.index, result.term, 0, on_done)
        return result

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

    def _note_role_change(self) -> None:
        role, leader = self.core.role, self.core.leader_id
        if role is self._last_role and leader == self._last_leader:
            return
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
            self.metrics.leader_changes.inc()
        if role in (Role.PRE_CANDIDATE, Role.CANDIDATE) and role is not self._last_role:
            self.metrics.campaigns.inc()
        if self._last_role is Role.LEADER and role is not Role.LEADER:
            self.training.on_leadership_lost()
            self.traffic.reset()
        self._last_role, self._last_leader = role, leader

    # -- what the observers see ------------------------------------------------

    def snapshot(self) -> NodeSnapshot:
        """The node's state now, for metrics, the status feed, STATUS and HTTP."""
        core, config, registry = self.core, self.config, self.registry
        now = time.monotonic()
        heard = self.links.last_heard
        role = core.role.value
        if core.role is Role.FOLLOWER and self.id not in core.voters:
            role = "learner" if self.id in core.membership.learners else "removed"
        return NodeSnapshot(
            node=self.id,
            role=role,
            term=core.term,
            leader=core.leader_id or None,
            commit_index=core.commit_index,
            applied_index=core.applied_index,
            last_index=core.last_index,
            snapshot_index=core.snapshot.index,
            peers=core.peers,
            peers_heard={
                peer: round(now - heard[peer], 3) if peer in heard else None for peer in core.peers
            },
            models=len(registry.models),
            model_bytes=sum(record.size for record in registry.models.values()),
            models_damaged=len(registry.damaged),
            models_repairing=self.fetcher.pending(),
            uptime_s=round(now - self.started, 3),
            trainer=self.training.trainer_state(),
            trainings=self.training.running(),
            training_views=self.training.progress_views(),
            pending=self.admission.pending(),
            uncommitted_bytes=self.proposals.uncommitted_bytes,
            limits={
                "max_request_bytes": config.max_request_bytes,
                "max_model_bytes": config.max_model_bytes,
                "max_trainings": config.max_trainings,
                "max_pending": config.max_pending,
                "max_uncommitted_bytes": config.max_uncommitted_bytes,
            },
            log_bytes=self.storage.log.size,
            compactions=self.compactor.compactions,
            files_fetched=self.fetcher.fetched,
            chunks_fetched=self.fetcher.chunks,
        )

    def count(self, name: str) -> None:
        """Count an event that has no metric of its own (``zmqnode_events_total``)."""
        self.metrics.events.labels(name).inc()

    def _training_finished(self, status: str, seconds: float) -> None:
        self.metrics.training_jobs.labels(status).inc()
        self.metrics.training_seconds.observe(seconds)

    def _tick_observers(self, now: float) -> None:
        """Once a tick: gauges, peers up/down, the HTTP views; the status feed 5x a second."""
        self._ticks += 1
        snap = self.snapshot()
        self.metrics.refresh(snap)
        if self.http is not None:
            self.metrics.http_connections.set(self.http.connections)
        down_after = self.config.election_ticks * self.config.tick_seconds
        for peer, silent_for in snap.peers_heard.items():
            silent = silent_for is None or silent_for > down_after
            if silent and peer not in self._peers_down:
                self._peers_down.add(peer)
                self.events.add("peer_down", f"{self.id}: no word from {peer} for {down_after}s")
            elif not silent and peer in self._peers_down:
                self._peers_down.discard(peer)
                self.events.add("peer_up", f"{self.id} hears from {peer}")
        self.monitor.publish(snap, self.registry.listing)
        if self._ticks % max(1, round(FEED_SECONDS / self.config.tick_seconds)) == 0:
            self.links.publish_status(status_feed(snap, self._ticks, self.metrics, self.events))

    # -- shutdown --------------------------------------------------------------

    def _shutdown_gracefully(self) -> None:
        """Hand leadership to a peer before leaving, so the cluster does not
        wait an election timeout for us (Raft thesis §3.10)."""
        if not self.core.is_leader or not self.core.peers:
            return
        voters = [p for p in self.core.progress if p in self.core.voters]
        if not voters:
            return
        target = max(voters, key=lambda p: self.core.progress[p].match)
        log.info("shutting down: transferring leadership to %s", target)
        self.core.transfer_leadership(target)
        deadline = time.monotonic() + self.config.tick_seconds * self.config.election_ticks
        while self.core.is_leader and time.monotonic() < deadline:
            self._turn()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        self.training.close()
        self.compactor.close()
        self.fetcher.close()
        self.monitor.stop()
        self.storage.close()
        if self.authenticator is not None:
            self.authenticator.stop()  # first: destroy() would close its sockets under it
        self.ctx.destroy(linger=LINGER_MS)
        log.info("node %s stopped", self.id)


def _describe(membership: Membership) -> str:
    voters = ", ".join(sorted(membership.voters)) or "none"
    learners = ", ".join(sorted(membership.learners))
    return f"voters {voters}" + (f"; learners {learners}" if learners else "")
