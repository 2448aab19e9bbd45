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

A handshake the peer refused (ZAP status 400: our key is not on its
allow-list yet, as when it has not appended the entry that adds us) is final
for that connection in libzmq 4.3: it never retries it, even once the key is
admitted. So each link watches its handshakes (``peer_event``,
``sub_event``) and reopens a refused one after a short backoff (``tick``):
``REOPEN_FIRST_SECONDS``, doubling up to ``REOPEN_MAX_SECONDS`` until a
handshake succeeds (docs/PROTOCOL.md §1.1; the bookkeeping is
``reopen.Reopening``).

``FaultyPeerLinks`` wraps them with the test-only fault file (``faults.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import zmq
import zmq.utils.monitor

from ..raft import BROADCAST, Message
from .addresses import NodePorts, node_ports, parse_address, tcp_endpoint
from .faults import FaultFile
from .raft_codec import HEARTBEAT_TOPIC, decode_raft, encode_raft
from .reopen import REFUSED, Reopening
from .reopen import REOPEN_FIRST_SECONDS as REOPEN_FIRST_SECONDS  # re-exported (tests)
from .reopen import REOPEN_MAX_SECONDS as REOPEN_MAX_SECONDS
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

# What a refusal is (REFUSED) and the backoff of a refused link: reopen.py.
DEALER_EVENTS = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | REFUSED
SUB_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | REFUSED

Link = Literal["raft", "sub"]  # a peer's DEALER, or our SUB's connection to its PUB
LINKS: tuple[Link, ...] = ("raft", "sub")
LINK_NAMES: dict[Link, str] = {"raft": "Raft DEALER", "sub": "heartbeat SUB"}


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
        self._monitors: dict[str, zmq.Socket] = {}  # peer -> its DEALER's (peer_events)
        self.sub_events = self.sub.get_monitor_socket(SUB_EVENTS)  # before it connects
        self._sub_endpoints: dict[str, str] = {}  # peer -> its PUB's endpoint
        self._established: set[str] = set()  # peers whose DEALER completed a handshake
        self._reopening: Reopening[tuple[str, Link]] = Reopening(
            log, count, "peer_handshake_refused", "peer_link_reopened"
        )
        self.peers = ()
        self.set_peers(peers)

    def set_peers(self, peers: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """Link to exactly ``peers`` from now on (the membership changed):
        a DEALER and a SUB connection per new peer, closed for a gone one.
        Returns (added, removed); the caller (un)registers their monitors
        (``peer_events``) first for removed ones."""
        added = [p for p in peers if p not in self.dealers]
        removed = [p for p in self.dealers if p not in peers]
        # Before any connect on the SUB, see its refusals (_settle_sub).
        self._settle_sub()
        for peer in removed:
            try:
                self.sub.disconnect(self._sub_endpoints.pop(peer))
            except zmq.ZMQError:
                pass  # never connected (an unresolvable name), or refused and not reopened yet
            dealer = self.dealers.pop(peer)
            del self._monitors[peer]  # closed by the caller, who polls it
            dealer.disable_monitor()
            dealer.close(linger=0)
            self.last_heard.pop(peer, None)
            self.peer_status.pop(peer, None)
            self._forget(peer)
        for peer in added:
            peer_host, port = parse_address(peer)
            peer_ports = node_ports(port)
            self._sub_endpoints[peer] = tcp_endpoint(peer_host, peer_ports.heartbeat)
            self.sub.connect(self._sub_endpoints[peer])
            dealer = self._sockets.ctx.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.setsockopt(zmq.SNDHWM, PEER_HWM)
            dealer.setsockopt(zmq.IMMEDIATE, 1)  # never queue for a peer that is not there
            make_client(dealer, self._sockets.keys)
            # Watched before it connects: a handshake can finish (or be
            # refused) within a millisecond, and an event before the monitor
            # is lost.
            self._monitors[peer] = dealer.get_monitor_socket(DEALER_EVENTS)
            dealer.connect(tcp_endpoint(peer_host, peer_ports.raft))
            self.dealers[peer] = dealer
        self.peers = tuple(peers)
        return added, removed

    def inbound(self) -> tuple[zmq.Socket, zmq.Socket]:
        """The sockets Raft messages arrive on (the loop polls them)."""
        return self.raft_sock, self.sub

    def peer_events(self, peers: Iterable[str] | None = None) -> Iterator[tuple[str, zmq.Socket]]:
        """(peer, monitor socket) pairs for ``peers`` (default all) whose
        messages go to ``peer_event``: the handshakes and drops of the peer's
        DEALER connection. ``sub_events`` is the same for the SUB (messages to
        ``sub_event``)."""
        for peer in self.dealers if peers is None else peers:
            yield peer, self._monitors[peer]

    def peer_event(self, peer: str, frames: list[bytes]) -> bool:
        """Handle a ``peer_events`` message; True when it reports that an
        established connection to ``peer`` dropped.

        A peer's process that dies drops its TCP connection at once; if it
        led, the node need not wait an election timeout to notice. A refused
        handshake drops a connection that never carried anything: not that."""
        event = zmq.utils.monitor.parse_monitor_message(frames)
        kind = event["event"]
        if peer not in self.dealers:
            return False  # removed since
        if kind == zmq.EVENT_DISCONNECTED:
            if peer in self._established:
                self._established.discard(peer)
                return True
            return False
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._established.add(peer)
            self._got_through(peer, "raft")
        elif kind & REFUSED:
            self._refused(peer, "raft", kind, event["value"])
        return False

    def sub_event(self, frames: list[bytes]) -> None:
        """Handle a ``sub_events`` message (the SUB's connections to peers' PUBs)."""
        event = zmq.utils.monitor.parse_monitor_message(frames)
        kind = event["event"]
        for peer in self._sub_peers(event["endpoint"].decode(errors="replace")):
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._got_through(peer, "sub")
            elif kind & REFUSED:
                self._refused(peer, "sub", kind, event["value"])

    def tick(self, now: float) -> None:
        """Reopen the refused links whose backoff has passed."""
        if self._reopening.any_due(now):
            self._settle_sub()
        for peer, link in self._reopening.take_due(now):
            if peer not in self.dealers:
                continue
            try:
                if link == "raft":
                    peer_host, port = parse_address(peer)
                    self.dealers[peer].connect(tcp_endpoint(peer_host, node_ports(port).raft))
                else:
                    self.sub.connect(self._sub_endpoints[peer])
            except zmq.ZMQError as exc:
                log.warning(
                    "cannot reopen our %s connection to %s: %s", LINK_NAMES[link], peer, exc
                )

    def _refused(self, peer: str, link: Link, kind: int, value: int) -> None:
        """``peer`` refused ``link``'s handshake: disconnect that endpoint
        now, connect it again after the backoff (``tick``).

        Now, not when reopening: libzmq keeps a dead connection's entry (the
        address of its freed session) until ``disconnect``, and on the SUB a
        session opened meanwhile may reuse that address, which the late
        ``disconnect`` would then end. ``_settle_sub`` runs before every
        connect on the SUB for the same reason."""
        now = time.monotonic()
        first = self._reopening.refused((peer, link), peer, LINK_NAMES[link], kind, value, now)
        peer_host, port = parse_address(peer)
        ports = node_ports(port)
        sock = self.dealers[peer] if link == "raft" else self.sub
        endpoint = (
            tcp_endpoint(peer_host, ports.raft) if link == "raft" else self._sub_endpoints[peer]
        )
        if first:
            try:
                sock.disconnect(endpoint)
            except zmq.ZMQError:
                pass  # not connected: already closed for an earlier refusal

    def _got_through(self, peer: str, link: Link) -> None:
        """A handshake of ``link`` to ``peer`` succeeded: the backoff starts over."""
        self._reopening.got_through((peer, link), peer, LINK_NAMES[link])

    @property
    def _backoff(self) -> dict[tuple[str, Link], float]:
        """Each refused link's next delay (tests/test_peer_reconnect.py reads it)."""
        return self._reopening.backoff

    def _settle_sub(self) -> None:
        """Handle the SUB's monitor events that wait (non-blocking), so a
        refused connection is disconnected before anything else connects
        (``_refused`` says why)."""
        while True:
            try:
                frames = self.sub_events.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.sub_event(frames)

    def _sub_peers(self, endpoint: str) -> list[str]:
        """The peers whose PUB ``endpoint`` (as libzmq reports it: resolved)
        is; by port alone when no peer's endpoint is spelled that way (a
        host name), which may name more than one (each is then reopened)."""
        exact = [p for p, e in self._sub_endpoints.items() if e == endpoint]
        if exact:
            return exact
        port = endpoint.rpartition(":")[2]
        return [p for p, e in self._sub_endpoints.items() if e.rpartition(":")[2] == port]

    def _forget(self, peer: str) -> None:
        self._established.discard(peer)
        for link in LINKS:
            self._reopening.forget((peer, link))

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
