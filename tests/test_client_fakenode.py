"""A fake zmqnode client endpoint for client and CLI tests.

``FakeNode(handler)`` binds a ROUTER on 127.0.0.1 (random port) in a thread
and answers each request with whatever ``handler(header, blobs)`` returns:

- ``None``: stay silent (a hung node);
- a header dict, or ``(header, blobs)``: one reply;
- a list of those: several replies in order (e.g. a stale one first).

Every request is recorded in ``requests`` as ``(header, blobs)``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import zmq

from zmqnode.transport.wire import (
    decode,
    encode,
    join_envelope,
    ok_reply,
    split_envelope,
)

Handler = Callable[[dict[str, Any], list[bytes]], Any]


class FakeNode:
    def __init__(self, handler: Handler):
        self.handler = handler
        self.requests: list[tuple[dict[str, Any], list[bytes]]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._port = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="fake-node", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=5):
            raise RuntimeError("fake node did not start")
        if self._error is not None:
            raise RuntimeError("fake node failed to bind") from self._error

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    def request_ids(self) -> list[str]:
        return [header["id"] for header, _ in self.requests]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "fake node thread did not stop"

    def __enter__(self) -> FakeNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        # The socket lives and dies in this thread (zmq sockets are not
        # thread-safe).
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            self._port = sock.bind_to_random_port("tcp://127.0.0.1")
        except BaseException as exc:  # pragma: no cover - environment problem
            self._error = exc
            sock.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(10, zmq.POLLIN):
                    continue
                routing, body = split_envelope(sock.recv_multipart())
                header, blobs = decode(body)
                self.requests.append((header, blobs))
                for reply_header, reply_blobs in _replies(self.handler(header, blobs)):
                    sock.send_multipart(join_envelope(routing, encode(reply_header, reply_blobs)))
        finally:
            sock.close(linger=0)


def _replies(result: Any) -> list[tuple[dict[str, Any], list[bytes]]]:
    if result is None:
        return []
    if isinstance(result, list):
        return [r for item in result for r in _replies(item)]
    if isinstance(result, tuple):
        return [(result[0], list(result[1]))]
    return [(result, [])]


def unused_address() -> str:
    """An address where (almost certainly) nothing listens: a dead node."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_fake_node_records_requests_and_replies() -> None:
    with FakeNode(lambda h, b: ok_reply(h, echo=h["type"])) as node:
        ctx = zmq.Context.instance()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        try:
            dealer.connect(f"tcp://{node.address}")
            dealer.send_multipart([b"", *encode({"type": "PING", "id": "r1"}, [b"blob"])])
            assert dealer.poll(5000)
            _, body = split_envelope(dealer.recv_multipart())
            header, _ = decode(body)
        finally:
            dealer.close()
    assert header["echo"] == "PING" and header["id"] == "r1"
    assert node.requests[0][1] == [b"blob"]
