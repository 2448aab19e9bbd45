"""Every ZeroMQ socket a node opens, made in one place with its security.

``Sockets`` holds the node's context and keys. Components above the
transport (training, repair, the node's loop) ask it for a bound server or a
connected client socket and never call ``ctx.socket`` or set CURVE options
themselves, so a socket cannot be opened without the cluster's security.

``send_frames`` and ``recv_frames`` are the hot-path framing helpers: plain
``int`` flags, because pyzmq's enum arithmetic costs microseconds a message.
"""

from __future__ import annotations

import zmq

from . import security
from .security import NodeKeys

# Plain ints: pyzmq's enum flags cost microseconds per message in Python.
NOBLOCK = int(zmq.NOBLOCK)
MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
RCVMORE = int(zmq.RCVMORE)

# How long a closing socket may still try to deliver what it queued.
LINGER_MS = 200


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


class BindError(Exception):
    """A server socket could not bind its port (usually: already in use)."""


class Sockets:
    """Makes the node's sockets, each with CURVE set up from ``keys``
    (None: plaintext, ``--insecure``)."""

    def __init__(self, ctx: zmq.Context, keys: NodeKeys | None) -> None:
        self.ctx = ctx
        self.keys = keys

    def server(
        self,
        kind: int,
        endpoint: str,
        domain: str,
        *,
        linger_ms: int = LINGER_MS,
        max_message_bytes: int | None = None,
    ) -> zmq.Socket:
        """A socket bound to ``endpoint``, admitting the keys of ZAP ``domain``
        (``security.PEERS`` or ``security.CLIENTS``). Raises ``BindError``."""
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, linger_ms)
        if max_message_bytes is not None:
            sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        security.make_server(sock, self.keys, domain)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise BindError(f"cannot bind {endpoint}: {exc}") from None
        return sock

    def client(
        self,
        kind: int,
        endpoint: str,
        *,
        linger_ms: int = 0,
        send_hwm: int | None = None,
        immediate: bool = False,
        max_message_bytes: int | None = None,
    ) -> zmq.Socket:
        """A socket connected to ``endpoint`` as a member of the cluster.

        ``immediate``: sends fail with ``zmq.Again`` while the peer is not
        connected, instead of queueing for a peer that may never come.
        """
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, linger_ms)
        if send_hwm is not None:
            sock.setsockopt(zmq.SNDHWM, send_hwm)
        if immediate:
            sock.setsockopt(zmq.IMMEDIATE, 1)
        if max_message_bytes is not None:
            sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        security.make_client(sock, self.keys)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError:
            sock.close(0)
            raise
        return sock
