"""How every part of a node answers a client: the ``Replier`` protocol.

A request handler, the prediction batcher and a training job all answer
through a ``Replier``: it sends a request's one final reply (``ok``,
``error`` or a ready-made header with ``send``), may send interim
``progress`` first, and is told to ``wait`` when the answer comes later, so
that a node shutting down can still answer it (docs/PROTOCOL.md §4: every
request gets exactly one final reply).

``ClientReplier`` answers one request that came in on the client ROUTER
socket; ``ClientChannel`` is that socket as repliers see it, and keeps the
set of repliers still waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson
import zmq

from .transport import wire
from .transport.sockets import send_frames
from .transport.wire import ErrorCode

Header = dict[str, Any]


class Replier(Protocol):
    """Answers one request (or every client waiting on one job) exactly once;
    calls after the final reply are ignored."""

    def send(self, header: Header, blobs: Sequence[bytes] = ()) -> None:
        """Send a complete reply header (built with ``wire.*_reply``)."""

    def ok(self, header: Header | None, blobs: Sequence[bytes] = (), **fields: Any) -> None:
        """Reply OK to the request ``header``, with ``fields`` and binary ``blobs``."""

    def error(self, header: Header | None, code: ErrorCode, message: str) -> None:
        """Reply ERROR with a stable ``code`` and a readable ``message``."""

    def progress(self, header: Header, **fields: Any) -> None:
        """An interim message (best effort); the final reply is still to come."""

    def wait(self, header: Header) -> None:
        """The answer comes later: remember the request so shutdown can answer it."""


class ClientChannel:
    """The client ROUTER socket as the repliers see it.

    ``on_answered(kind, status, seconds)`` is told of every final reply
    (metrics); ``on_dropped()`` of a reply the socket could not take.
    """

    def __init__(
        self,
        sock: zmq.Socket,
        on_answered: Callable[[str, str, float], None],
        on_dropped: Callable[[], None],
    ) -> None:
        self.sock = sock
        self.on_answered = on_answered
        self.on_dropped = on_dropped
        self.waiting: set[ClientReplier] = set()

    def answer_all_waiting(self, code: ErrorCode, message: str) -> None:
        """Answer every request still waiting (the node is going away)."""
        for replier in list(self.waiting):
            replier.error(replier.header, code, message)


class ClientReplier:
    """Answers one client request, now or later, exactly once."""

    __slots__ = ("channel", "routing", "sent", "kind", "received", "header")

    def __init__(self, channel: ClientChannel, routing: list[bytes]) -> None:
        self.channel = channel
        self.routing = routing
        self.sent = False
        self.kind = "unknown"  # the request type, once the header is read
        self.received = time.perf_counter()
        self.header: Header | None = None  # set while the request waits

    def wait(self, header: Header) -> None:
        self.header = header
        self.channel.waiting.add(self)

    def send(self, header: Header, blobs: Sequence[bytes] = ()) -> None:
        if self.sent:
            return
        self.sent = True
        channel = self.channel
        if self.header is not None:
            channel.waiting.discard(self)
        elapsed = time.perf_counter() - self.received
        channel.on_answered(self.kind, header.get("code") or header["status"], elapsed)
        # Replies are small: copying beats zero-copy bookkeeping.
        frames = [*self.routing, b"", orjson.dumps(header), *blobs]
        try:
            send_frames(channel.sock, frames)
        except zmq.Again:
            channel.on_dropped()

    def ok(self, header: Header | None, blobs: Sequence[bytes] = (), **fields: Any) -> None:
        self.send(wire.ok_reply(header, **fields), blobs)

    def error(self, header: Header | None, code: ErrorCode, message: str) -> None:
        self.send(wire.error_reply(header, code, message))

    def progress(self, header: Header, **fields: Any) -> None:
        if self.sent:
            return
        frames = wire.join_envelope(
            self.routing, wire.encode(wire.progress_reply(header, **fields))
        )
        try:
            self.channel.sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # progress is best effort
