"""A node's links to its peers for Raft traffic (docs/PROTOCOL.md §8).

- our Raft ROUTER, bound on the raft port: peers' DEALERs send to it;
- one DEALER per peer, connected to that peer's Raft ROUTER (§8.2);
- our PUB, bound on the heartbeat port: leader heartbeats fan out on it
  (§8.3), and the status feed for consoles (§9b);
- one SUB, connected to every peer's PUB.

``PeerLinks.receive`` decodes and checks what arrives and notes when each
peer was last heard from; ``send`` routes a Raft message to its peer's
DEALER, or to the PUB for a broadcast. A peer's queue is bounded: past it a
message is dropped (Raft retransmits) instead of piling up for a dead peer.

``FaultyPeerLinks`` wraps them with the test-only fault file (``faults.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import zmq
import zmq.utils.monitor

from ..raft import BROADCAST, Message
from .addresses import NodePorts, node_ports, parse_address, tcp_endpoint
from .faults import FaultFile
from .raft_codec import HEARTBEAT_TOPIC, decode_raft, encode_raft
from .security import CLIENTS, PEERS, make_client
from .sockets import Sockets
from .status_feed import STATUS_TOPIC, decode_status, encode_status
from .wire import ProtocolError

log = logging.getLogger("zmqnode.transport.peers")

# Bounded queues toward each peer; past this, messages are dropped (Raft
# retransmits) instead of piling up for a dead peer.
PEER_HWM = 10_000
# A heartbeat or status message is small; anything bigger on the SUB is not ours.
MAX_SUB_MESSAGE_BYTES = 1 << 20


class PeerLinks:
    """Raft messages to and from the peers of ``node_id``.

    ``on_sent(msg)`` and ``on_received(msg)`` observe the traffic (metrics);
    ``count(kind)`` counts what was dropped and why. ``last_heard`` maps each
    peer to the ``time.monotonic()`` of its last well-formed message.
    """

    def __init__(
        self,
        node_id: str,
        peers: tuple[str, ...],
        sockets: Sockets,
        host: str,
        ports: NodePorts,
        max_message_bytes: int,
        on_sent: Callable[[Message], None],
        on_received: Callable[[Message], None],
        count: Callable[[str], None],
    ) -> None:
        self.node_id = node_id
        self.peers = peers
        self._on_sent = on_sent
        self._on_received = on_received
        self._count = count
        self.last_heard: dict[str, float] = {}
        self.raft_sock = sockets.server(
            zmq.ROUTER,
            tcp_endpoint(host, ports.raft),
            PEERS,
            max_message_bytes=max_message_bytes,
        )
        # The console listens to the PUB too, so the client policy applies.
        self.pub = sockets.server(zmq.PUB, tcp_endpoint(host, ports.heartbeat), CLIENTS)
        self.pub.setsockopt(zmq.SNDHWM, PEER_HWM)
        self.sub = sockets.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
        # Peers' status feeds too: a leader promotes a learner only once it
        # reports no missing model file (member_requests.py).
        self.sub.setsockopt(zmq.SUBSCRIBE, STATUS_TOPIC)
        self.peer_status: dict[str, tuple[float, dict[str, Any]]] = {}
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.MAXMSGSIZE, MAX_SUB_MESSAGE_BYTES)
        make_client(self.sub, sockets.keys)
        self._sockets = sockets
        self.dealers: dict[str, zmq.Socket] = {}
        self.peers = ()
        self.set_peers(peers)

    def set_peers(self, peers: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """Link to exactly ``peers`` from now on (the membership changed):
        a DEALER and a SUB connection per new peer, closed for a gone one.
        Returns (added, removed); the caller (un)registers their disconnect
        monitors (``disconnect_events``) first for removed ones."""
        added = [p for p in peers if p not in self.dealers]
        removed = [p for p in self.dealers if p not in peers]
        for peer in removed:
            peer_host, port = parse_address(peer)
            try:
                self.sub.disconnect(tcp_endpoint(peer_host, node_ports(port).heartbeat))
            except zmq.ZMQError:
                pass  # never connected (an unresolvable name)
            dealer = self.dealers.pop(peer)
            dealer.disable_monitor()
            dealer.close(linger=0)
            self.last_heard.pop(peer, None)
            self.peer_status.pop(peer, None)
        for peer in added:
            peer_host, port = parse_address(peer)
            peer_ports = node_ports(port)
            self.sub.connect(tcp_endpoint(peer_host, peer_ports.heartbeat))
            self.dealers[peer] = self._sockets.client(
                zmq.DEALER,
                tcp_endpoint(peer_host, peer_ports.raft),
                send_hwm=PEER_HWM,
                immediate=True,  # never queue for a peer that is not there
            )
        self.peers = tuple(peers)
        return added, removed

    def inbound(self) -> tuple[zmq.Socket, zmq.Socket]:
        """The sockets Raft messages arrive on (the loop polls them)."""
        return self.raft_sock, self.sub

    def disconnect_events(
        self, peers: Iterable[str] | None = None
    ) -> Iterator[tuple[str, zmq.Socket]]:
        """(peer, socket) pairs that report when a peer's connection drops
        (for ``peers``, default all).

        A peer's process that dies drops its TCP connection at once; if it
        led, the node need not wait an election timeout to notice."""
        for peer in self.dealers if peers is None else peers:
            yield peer, self.dealers[peer].get_monitor_socket(zmq.EVENT_DISCONNECTED)

    @staticmethod
    def is_disconnect(frames: list[bytes]) -> bool:
        """Whether a ``disconnect_events`` message reports a dropped connection."""
        return zmq.utils.monitor.parse_monitor_message(frames)["event"] == zmq.EVENT_DISCONNECTED

    def receive_published(self, frames: list[bytes]) -> Message | None:
        """A message from a peer's PUB (topic included): a Raft heartbeat, or
        a status feed message, which is kept in ``peer_status`` (None then)."""
        if frames and bytes(frames[0]) == STATUS_TOPIC:
            status = decode_status(frames)
            node = status.get("node") if status else None
            if isinstance(node, str) and node in self.dealers:
                self.peer_status[node] = (time.monotonic(), status)  # type: ignore[assignment]
            return None
        return self.receive(frames[1:])

    def receive(self, frames: list[bytes]) -> Message | None:
        """The Raft message in ``frames`` (routing identity or topic removed),
        or None when it is malformed or not for this node."""
        try:
            msg = decode_raft(frames)
        except ProtocolError as exc:
            self._count("raft_garbage")
            log.warning("dropped a malformed Raft message: %s", exc.message)
            return None
        if msg.dst not in (self.node_id, BROADCAST) or msg.src not in self.dealers:
            self._count("raft_misrouted")
            log.warning(
                "dropped a Raft message from %r to %r: not for this cluster member",
                msg.src,
                msg.dst,
            )
            return None
        if not self._passes(msg, incoming=True):
            return None
        self.last_heard[msg.src] = time.monotonic()
        self._on_received(msg)
        return msg

    def send(self, msg: Message) -> None:
        if not self._passes(msg, incoming=False):
            return
        frames = encode_raft(msg)
        if msg.dst == BROADCAST:
            self.pub.send_multipart([HEARTBEAT_TOPIC, *frames], copy=False)
        else:
            dealer = self.dealers.get(msg.dst)
            if dealer is None:
                # Not linked (any more): the membership changed under a
                # message already decided on. Raft does not depend on it.
                self._count("raft_no_link")
                return
            try:
                dealer.send_multipart(frames, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                self._count("raft_dropped")  # peer down or slow; Raft will retry
                return
        self._on_sent(msg)

    def _passes(self, msg: Message, incoming: bool) -> bool:
        """Whether ``msg`` may go through (every message does; see FaultyPeerLinks)."""
        return True

    def publish_status(self, status: dict[str, Any]) -> None:
        """One message of the status feed, best effort."""
        try:
            self.pub.send_multipart(encode_status(status), zmq.NOBLOCK)
        except zmq.Again:
            pass


class FaultyPeerLinks(PeerLinks):
    """Test only: ``PeerLinks`` that drop the Raft messages the fault file
    names (``--fault-file``), re-reading it at most every ``REFRESH_SECONDS``."""

    REFRESH_SECONDS = 0.05

    def __init__(self, faults: FaultFile, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.faults = faults
        self._next_refresh = 0.0

    def _passes(self, msg: Message, incoming: bool) -> bool:
        now = time.monotonic()
        if now >= self._next_refresh:
            self._next_refresh = now + self.REFRESH_SECONDS
            self.faults.refresh()
        if incoming:
            return msg.src not in self.faults.drop_in
        return msg.dst not in self.faults.drop_out
