"""A handshake refused by ZAP is final for that connection in libzmq 4.3, so
a node reopens a refused peer link (docs/PROTOCOL.md §1.1): real sockets,
one process, a peer whose allow-list admits our key only after a refusal."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import zmq
import zmq.utils.monitor

from harness.cluster import pick_base_ports, wait_for
from zmqnode.raft import Membership, Message, MessageType
from zmqnode.transport import join, peers, security
from zmqnode.transport.addresses import node_ports, tcp_endpoint
from zmqnode.transport.raft_codec import HEARTBEAT_TOPIC, encode_raft
from zmqnode.transport.sockets import Sockets
from zmqnode.transport.wire import decode, encode


def node_keys(server: tuple[bytes, bytes], members: frozenset[bytes]) -> security.NodeKeys:
    public, secret = zmq.curve_keypair()
    # clients=frozenset(): --client-auth curve, so the PUB refuses strangers too.
    return security.NodeKeys(*server, public, secret, members, frozenset())


@dataclass
class Peer:
    """The far end: a member's Raft ROUTER and heartbeat PUB, behind its own
    ZAP handler, which admits only ``keys.members`` until told otherwise."""

    id: str
    ctx: zmq.Context
    gate: security.Gatekeeper
    router: zmq.Socket
    pub: zmq.Socket


@pytest.fixture
def server_keys() -> tuple[bytes, bytes]:
    return zmq.curve_keypair()


@pytest.fixture
def peer(server_keys) -> Iterator[Peer]:
    port = pick_base_ports(1)[0]
    keys = node_keys(server_keys, frozenset())
    ctx = zmq.Context()
    gate = security.start_authenticator(ctx, keys)
    assert gate is not None
    sockets = Sockets(ctx, keys)
    ports = node_ports(port)
    router = sockets.server(zmq.ROUTER, tcp_endpoint("127.0.0.1", ports.raft), security.PEERS)
    pub = sockets.server(zmq.PUB, tcp_endpoint("127.0.0.1", ports.heartbeat), security.CLIENTS)
    yield Peer(f"127.0.0.1:{port}", ctx, gate, router, pub)
    gate.stop()
    ctx.destroy(0)


def handshakes(events: zmq.Socket, seconds: float, until: str | None = None) -> list[str]:
    """The handshake outcomes the monitor ``events`` reports within
    ``seconds`` ("refused", "accepted"), in order; ``until``: stop at that one."""
    names = {
        zmq.EVENT_HANDSHAKE_FAILED_AUTH: "refused",
        zmq.EVENT_HANDSHAKE_SUCCEEDED: "accepted",
    }
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and until not in seen:
        if events.poll(int(left * 1000) + 1):
            event = zmq.utils.monitor.recv_monitor_message(events)["event"]
            if event in names:
                seen.append(names[event])
    return seen


def test_libzmq_never_retries_a_handshake_zap_refused(peer, server_keys):
    """The bug this module guards against, in libzmq itself: the same DEALER
    stays refused after its key is admitted; a new connection gets through."""
    ctx = zmq.Context()
    keys = node_keys(server_keys, frozenset())
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.RECONNECT_IVL, 50)  # would retry within 2 s tens of times
    security.make_client(dealer, keys)
    events = dealer.get_monitor_socket()
    endpoint = tcp_endpoint("127.0.0.1", node_ports(int(peer.id.rsplit(":", 1)[1])).raft)
    try:
        dealer.connect(endpoint)
        assert handshakes(events, 5.0, until="refused") == ["refused"]
        peer.gate.set_members(frozenset({keys.public}))
        assert handshakes(events, 2.0) == []  # no second handshake at all
        dealer.disconnect(endpoint)  # a new session on the same socket
        dealer.connect(endpoint)
        assert handshakes(events, 5.0, until="accepted") == ["accepted"]
    finally:
        ctx.destroy(0)


class Pump:
    """Drives ``PeerLinks`` as the node's loop does: its monitors' messages
    to ``peer_event``/``sub_event``, and ``tick``."""

    def __init__(self, links: peers.PeerLinks) -> None:
        self.links = links
        self.poller = zmq.Poller()
        self.handlers = {links.sub_events: links.sub_event}
        for peer_id, events in links.peer_events():
            self.handlers[events] = lambda frames, p=peer_id: self.lost.append(
                links.peer_event(p, frames)
            )
        self.lost: list[bool] = []
        for sock in self.handlers:
            self.poller.register(sock, zmq.POLLIN)

    def turn(self) -> None:
        for sock, _ in self.poller.poll(10):
            self.handlers[sock](sock.recv_multipart())
        self.links.tick(time.monotonic())


@pytest.fixture
def spelled(request) -> str:
    """How our side spells the peer's host (libzmq reports it resolved)."""
    return getattr(request, "param", "127.0.0.1")


@pytest.fixture
def links(
    peer, server_keys, spelled
) -> Iterator[tuple[peers.PeerLinks, security.NodeKeys, list[str]]]:
    port = pick_base_ports(1)[0]
    keys = node_keys(server_keys, frozenset())
    ctx = zmq.Context()
    counted: list[str] = []
    peer.id = peer.id.replace("127.0.0.1", spelled)
    made = peers.PeerLinks(
        f"127.0.0.1:{port}",
        (peer.id,),
        Sockets(ctx, keys),
        "127.0.0.1",
        node_ports(port),
        1 << 20,
        on_sent=lambda msg: None,
        on_received=lambda msg: None,
        count=counted.append,
    )
    yield made, keys, counted
    ctx.destroy(0)


def test_a_refused_raft_link_is_reopened_once_the_peer_admits_our_key(peer, links):
    links_, keys, counted = links
    pump = Pump(links_)
    wait_for(
        lambda: pump.turn() or counted.count("peer_handshake_refused") >= 2,
        5,
        "both links refused (DEALER and SUB)",
    )
    peer.gate.set_members(frozenset({keys.public}))
    hello = Message(MessageType.HEARTBEAT_RESP, src=links_.node_id, dst=peer.id, term=1)

    def delivered() -> bool:
        pump.turn()
        links_.send(hello)  # dropped (IMMEDIATE) until the DEALER is connected
        return bool(peer.router.poll(0))

    wait_for(delivered, 5, "the Raft DEALER to get through")
    assert "peer_link_reopened" in counted
    assert not any(pump.lost)  # a refused handshake is no lost leader


@pytest.mark.parametrize("spelled", ["127.0.0.1", "localhost"], indirect=True)
def test_a_refused_heartbeat_sub_is_reopened_once_the_peer_admits_our_key(peer, links):
    links_, keys, counted = links
    pump = Pump(links_)
    wait_for(
        lambda: pump.turn() or counted.count("peer_handshake_refused") >= 2,
        5,
        "both links refused (DEALER and SUB)",
    )
    peer.gate.set_members(frozenset({keys.public}))
    beat = Message(MessageType.HEARTBEAT, src=peer.id, dst="*", term=1)

    def heard() -> bool:
        pump.turn()
        peer.pub.send_multipart([HEARTBEAT_TOPIC, *encode_raft(beat)])
        return bool(links_.sub.poll(0))

    wait_for(heard, 5, "a heartbeat over the reopened SUB")
    msg = links_.receive_published(links_.sub.recv_multipart())
    assert msg is not None and msg.src == peer.id


def test_refusals_back_off_to_the_bound_and_are_logged_once(peer, links, caplog):
    links_, _, counted = links
    pump = Pump(links_)
    caplog.set_level(logging.INFO, logger="zmqnode.transport.peers")
    started = time.monotonic()
    wait_for(
        lambda: pump.turn() or counted.count("peer_handshake_refused") >= 8,
        15,
        "eight refusals",
    )
    # 4 per link: after 0 + 0.2 + 0.4 + 0.8 s at least, at most ~2 s apart later.
    assert time.monotonic() - started >= 1.4
    assert counted.count("peer_link_reopened") >= 6
    warnings = [r for r in caplog.records if "refused our" in r.getMessage()]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]  # one per link and reason
    assert max(links_._backoff.values()) == peers.REOPEN_MAX_SECONDS


def test_a_removed_peers_refused_link_is_not_reopened(peer, links):
    links_, _, counted = links
    pump = Pump(links_)
    wait_for(lambda: pump.turn() or "peer_handshake_refused" in counted, 5, "a refusal")
    links_.set_peers(())
    reopened = counted.count("peer_link_reopened")
    deadline = time.monotonic() + 2 * peers.REOPEN_FIRST_SECONDS
    while time.monotonic() < deadline:
        links_.tick(time.monotonic())
    assert counted.count("peer_link_reopened") == reopened


def test_join_opens_a_new_socket_per_attempt_so_a_refusal_is_not_final(
    peer, server_keys, monkeypatch
):
    """The JOIN target refuses the first handshake (the joiner's key is not
    admitted yet); the next attempt's new socket gets through."""
    monkeypatch.setattr(join, "ATTEMPT_SECONDS", 0.5)
    monkeypatch.setattr(join, "RETRY_PAUSE_SECONDS", 0.05)
    keys = node_keys(server_keys, frozenset())
    refused = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "refused a connection" in record.getMessage():
                refused.set()

    watch = Watch()
    logging.getLogger("zmqnode.security").addHandler(watch)
    membership = Membership.of(["a"]).encode().decode()
    stop = threading.Event()

    def serve() -> None:
        refused.wait(10)
        peer.gate.set_members(frozenset({keys.public}))  # CLIENTS admits members
        while not stop.is_set():
            if peer.router.poll(50):
                identity, empty, *body = peer.router.recv_multipart()
                header, _ = decode(body)
                reply = {**header, "status": "OK", "membership": membership}
                reply["membership_index"] = 7
                peer.router.send_multipart([identity, empty, *encode(reply)])

    # The JOIN goes to the client port; here the peer's ROUTER stands in for it.
    peer.router.close(0)
    port = int(peer.id.rsplit(":", 1)[1])
    peer.router = Sockets(peer.ctx, node_keys(server_keys, frozenset())).server(
        zmq.ROUTER, tcp_endpoint("127.0.0.1", port), security.CLIENTS
    )
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    ctx = zmq.Context()
    try:
        data, index = join.ask_to_join(ctx, keys, [peer.id], "me", "", deadline_seconds=15)
    finally:
        stop.set()
        server.join(5)
        logging.getLogger("zmqnode.security").removeHandler(watch)
        ctx.destroy(0)
    assert refused.is_set() and index == 7 and data == membership.encode()


@pytest.mark.parametrize("secure", [True, False], ids=["curve", "insecure"])
def test_an_established_raft_link_that_drops_is_reported(secure, server_keys):
    """What the node's fast leader-loss detection needs: a DEALER connection
    that completed its handshake and then dropped is reported (the peer's
    process died), for CURVE and plaintext alike."""
    us, them = pick_base_ports(2)
    keys = node_keys(server_keys, frozenset()) if secure else None
    ctx = zmq.Context()
    try:
        if keys is not None:
            gate = security.start_authenticator(ctx, keys)
            assert gate is not None
            gate.set_members(frozenset({keys.public}))
        sockets = Sockets(ctx, keys)
        router = sockets.server(
            zmq.ROUTER, tcp_endpoint("127.0.0.1", node_ports(them).raft), security.PEERS
        )
        links = peers.PeerLinks(
            f"127.0.0.1:{us}",
            (f"127.0.0.1:{them}",),
            sockets,
            "127.0.0.1",
            node_ports(us),
            1 << 20,
            on_sent=lambda msg: None,
            on_received=lambda msg: None,
            count=lambda kind: None,
        )
        pump = Pump(links)
        hello = Message(
            MessageType.HEARTBEAT_RESP, src=links.node_id, dst=f"127.0.0.1:{them}", term=1
        )

        def delivered() -> bool:
            pump.turn()
            links.send(hello)
            return bool(router.poll(0))

        wait_for(delivered, 5, "the Raft DEALER connected")
        router.close(0)
        wait_for(lambda: pump.turn() or True in pump.lost, 5, "the drop reported")
        assert pump.lost.count(True) == 1
    finally:
        if secure:
            gate.stop()
        ctx.destroy(0)
