"""ModelFetcher against fake peers on real sockets: chunks, fallbacks, checks."""

from __future__ import annotations

import hashlib
import time

import pytest
import zmq

from zmqnode.repair import ModelFetcher
from zmqnode.transport import wire
from zmqnode.transport.sockets import Sockets

MODEL = bytes(range(256)) * 40  # 10,240 bytes: several chunks
SHA = hashlib.sha256(MODEL).hexdigest()


class FakePeer:
    """A node's client port that answers FETCH in one chosen way."""

    def __init__(self, ctx: zmq.Context, behaviour: str) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.id = f"127.0.0.1:{port}"
        self.behaviour = behaviour
        self.requests: list[dict] = []

    def serve(self) -> None:
        while self.sock.poll(0):
            frames = self.sock.recv_multipart()
            routing, body = wire.split_envelope(frames)
            header, _ = wire.decode(body)
            self.requests.append(header)
            if self.behaviour == "silent":
                continue
            if self.behaviour == "missing":
                reply = wire.error_reply(header, wire.ErrorCode.NOT_FOUND, "no such model")
                self.sock.send_multipart(wire.join_envelope(routing, wire.encode(reply)))
                continue
            data = MODEL if self.behaviour == "good" else MODEL[:-1] + b"\x00"
            offset, length = header["offset"], header["length"]
            reply = wire.ok_reply(header, size=len(data), offset=offset, sha256="")
            chunk = data[offset : offset + length]
            self.sock.send_multipart(wire.join_envelope(routing, wire.encode(reply, [chunk])))


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def run(fetcher: ModelFetcher, handlers, peers: list[FakePeer], leader: str, until, timeout=10.0):
    poller = zmq.Poller()
    for sock in handlers:
        poller.register(sock, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the fetch did not finish in time"
        for peer in peers:
            peer.serve()
        for sock, _ in poller.poll(10):
            handlers[sock](sock.recv_multipart())
        fetcher.tick(time.monotonic(), leader)


def make(ctx, peers, stored, **kwargs):
    handlers = {}
    fetcher = ModelFetcher(
        "127.0.0.1:1",
        Sockets(ctx, None),
        [p.id for p in peers],
        lambda sock, handler: handlers.__setitem__(sock, handler),
        lambda model_id, data: stored.__setitem__(model_id, data),
        **kwargs,
    )
    return fetcher, handlers


def test_a_file_arrives_in_bounded_chunks_from_the_leader_first(ctx):
    peers = [FakePeer(ctx, "good"), FakePeer(ctx, "good")]
    stored: dict[str, bytes] = {}
    fetcher, handlers = make(ctx, peers, stored, chunk_bytes=1000)
    fetcher.want("m1", SHA, len(MODEL))
    run(fetcher, handlers, peers, leader=peers[1].id, until=lambda: "m1" in stored)
    assert stored["m1"] == MODEL
    assert fetcher.pending() == 0 and fetcher.fetched == 1
    assert not peers[0].requests, "the leader is asked first"
    assert len(peers[1].requests) == 11 and fetcher.chunks == 11
    assert all(r["length"] == 1000 for r in peers[1].requests)
    fetcher.close()


def test_silent_missing_and_damaged_copies_are_skipped(ctx):
    peers = [FakePeer(ctx, b) for b in ("silent", "missing", "damaged", "good")]
    stored: dict[str, bytes] = {}
    fetcher, handlers = make(ctx, peers, stored, chunk_bytes=4096, request_seconds=0.3)
    fetcher.want("m1", SHA, len(MODEL))
    run(fetcher, handlers, peers, leader=peers[0].id, until=lambda: "m1" in stored)
    assert stored["m1"] == MODEL, "only the copy matching the record's SHA-256 is kept"
    assert all(p.requests for p in peers), "each peer was tried in turn"
    fetcher.close()


def test_when_no_peer_has_it_the_fetch_waits_and_tries_again(ctx):
    peers = [FakePeer(ctx, "missing")]
    stored: dict[str, bytes] = {}
    fetcher, handlers = make(ctx, peers, stored, retry_seconds=0.2)
    fetcher.want("m1", SHA, len(MODEL))
    run(fetcher, handlers, peers, peers[0].id, until=lambda: len(peers[0].requests) >= 3)
    assert "m1" not in stored and fetcher.pending() == 1
    peers[0].behaviour = "good"
    run(fetcher, handlers, peers, peers[0].id, until=lambda: "m1" in stored)
    assert stored["m1"] == MODEL
    fetcher.close()


def test_forget_drops_a_fetch_the_log_already_repaired(ctx):
    peers = [FakePeer(ctx, "silent")]
    stored: dict[str, bytes] = {}
    fetcher, handlers = make(ctx, peers, stored)
    fetcher.want("m1", SHA, len(MODEL))
    fetcher.tick(time.monotonic(), peers[0].id)
    assert fetcher.current is not None
    fetcher.forget("m1")
    assert fetcher.current is None and fetcher.pending() == 0
    fetcher.close()
