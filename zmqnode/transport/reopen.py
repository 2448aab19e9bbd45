"""Reopening a connection whose handshake the far end refused (docs/PROTOCOL.md §1.1).

ZAP answers a key that is not on the allow-list with status 400, and libzmq
4.3 then ends that connection for good: it never retries it, even once the
key is admitted, while ``disconnect`` + ``connect`` of the same endpoint on
the same socket (a new ZMTP session, a new handshake) gets through at once.
A member admits a new node's key only when it appends the entry adding it
(and a trainer process only when it re-reads its node's member keys), so
every link a node opens to a peer under CURVE watches its handshakes with a
socket monitor and reopens a refused one after a backoff: the pattern
"reopen on refusal".

- ``Reopening``: the bookkeeping, for any set of links of one owner: the
  backoff of each refused link, when it is due, how often it was reopened,
  which refusal was logged. No sockets, no clock: time comes in as ``now``.
- ``WatchedClients``: client sockets with one endpoint each (the training
  PUSH sockets), monitored from before they connect and reopened through a
  ``Reopening``.

``peers.PeerLinks`` uses ``Reopening`` for its Raft DEALERs and its SUB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import zmq
import zmq.utils.monitor

from .security import NodeKeys, make_client
from .sockets import Sockets

# Handshake failures libzmq treats as final for the connection (a protocol
# error: the session ends, no reconnect): the peer's ZAP handler refused our
# key (status 400; 300 and 500 end the same way), or the CURVE/ZMTP
# handshake broke. HANDSHAKE_FAILED_NO_DETAIL is not here: it follows a
# dropped or timed-out TCP connection, which libzmq reconnects by itself.
REFUSED = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
# What a watched socket's monitor reports: refusals, and the handshakes that
# succeed (the backoff starts over).
HANDSHAKE_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | REFUSED
# A refused link is reopened after this, doubling per refusal in a row up to
# REOPEN_MAX_SECONDS. A member admits a new key as soon as it appends the
# entry adding it, usually within one replication round trip (milliseconds);
# a member cut off for long admits it only later, and then the new node waits
# at most REOPEN_MAX_SECONDS more. The price of a refusal that lasts (one
# CURVE handshake per link every 2 s) is small against that.
REOPEN_FIRST_SECONDS = 0.2
REOPEN_MAX_SECONDS = 2.0

K = TypeVar("K", bound=Hashable)


def refusal_reason(kind: int, value: int) -> str:
    """How a refusal event (``kind`` in ``REFUSED``, its ``value``) reads in the log."""
    if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"ZAP status {value}"
    return f"handshake error {value:#x}"


class Reopening(Generic[K]):
    """When each refused link of one owner is reopened, links keyed by ``K``.

    The owner reports each refusal (``refused``) and each handshake that
    succeeded (``got_through``), and reopens what ``take_due`` returns.
    ``count(kind)`` counts ``refused_event`` per refusal and
    ``reopened_event`` per reopening; ``log`` gets one warning per link and
    reason, and one line when a reopened link gets through.
    """

    def __init__(
        self,
        log: logging.Logger,
        count: Callable[[str], None],
        refused_event: str,
        reopened_event: str,
    ) -> None:
        self.log = log
        self._count = count
        self._refused_event = refused_event
        self._reopened_event = reopened_event
        self.reopen_at: dict[K, float] = {}
        self.backoff: dict[K, float] = {}  # refused in a row: the next delay
        self._reopened: dict[K, int] = {}
        self._logged: set[tuple[K, str]] = set()

    def refused(self, key: K, who: str, what: str, kind: int, value: int, now: float) -> bool:
        """``who`` refused link ``key`` (our ``what`` connection) with
        monitor event ``kind``/``value``: it is due again after the backoff.
        True when the caller must disconnect it now: the first refusal since
        it was last reopened (a later one finds it disconnected already)."""
        self._count(self._refused_event)
        reason = refusal_reason(kind, value)
        delay = self.backoff.get(key, REOPEN_FIRST_SECONDS)
        self.backoff[key] = min(2 * delay, REOPEN_MAX_SECONDS)
        if (key, reason) not in self._logged:
            self._logged.add((key, reason))
            self.log.warning(
                "%s refused our %s connection (%s; our key is not on its allow-list yet?): "
                "reopening it in %.1f s, then at most every %.0f s until it gets through",
                who,
                what,
                reason,
                delay,
                REOPEN_MAX_SECONDS,
            )
        first = key not in self.reopen_at
        self.reopen_at[key] = now + delay
        return first

    def got_through(self, key: K, who: str, what: str) -> None:
        """A handshake of link ``key`` succeeded: its backoff starts over."""
        self.backoff.pop(key, None)
        reopened = self._reopened.pop(key, 0)
        if reopened:
            self.log.info(
                "%s admitted our %s connection after %d reopening(s)", who, what, reopened
            )

    def any_due(self, now: float) -> bool:
        return any(at <= now for at in self.reopen_at.values())

    def take_due(self, now: float) -> list[K]:
        """The links to reopen now (each counted as reopened)."""
        due = [key for key, at in self.reopen_at.items() if at <= now]
        for key in due:
            del self.reopen_at[key]
            self._reopened[key] = self._reopened.get(key, 0) + 1
            self._count(self._reopened_event)
        return due

    def next_due(self) -> float | None:
        """When the next link is due (``now``'s clock), None if none waits."""
        return min(self.reopen_at.values(), default=None)

    def forget(self, key: K) -> None:
        """Link ``key`` is closed: nothing of it is kept."""
        self.reopen_at.pop(key, None)
        self.backoff.pop(key, None)
        self._reopened.pop(key, None)
        self._logged = {entry for entry in self._logged if entry[0] != key}


@dataclass
class _Client:
    sock: zmq.Socket
    monitor: zmq.Socket
    endpoint: str
    who: str
    what: str


class WatchedClients(Generic[K]):
    """Client sockets, one endpoint each, whose refused handshakes are reopened.

    ``open`` makes one (CURVE client with ``sockets``' keys), its monitor
    attached before it connects: a handshake can be refused within a
    millisecond, and an event before the monitor exists is lost. The owner
    either polls each socket's monitor (``monitor``) and hands its messages
    to ``on_event``, or calls ``settle`` to handle whatever waits; and calls
    ``tick`` to reopen the refused sockets whose backoff passed. Nothing
    here blocks.
    """

    def __init__(self, sockets: Sockets, reopening: Reopening[K]) -> None:
        self._ctx = sockets.ctx
        self._keys: NodeKeys | None = sockets.keys
        self.reopening = reopening
        self._clients: dict[K, _Client] = {}

    def open(
        self,
        key: K,
        kind: int,
        endpoint: str,
        *,
        who: str,
        what: str,
        linger_ms: int = 0,
        send_hwm: int | None = None,
        immediate: bool = False,
    ) -> zmq.Socket:
        """A socket of ``kind`` connected to ``endpoint`` as a member, known
        as ``key`` (``who`` is the far end, ``what`` the link, for the log).
        ``immediate``: sends fail with ``zmq.Again`` while it is not
        connected. Raises ``zmq.ZMQError`` if ``endpoint`` cannot be
        connected (nothing is left open then)."""
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, linger_ms)
        if send_hwm is not None:
            sock.setsockopt(zmq.SNDHWM, send_hwm)
        if immediate:
            sock.setsockopt(zmq.IMMEDIATE, 1)
        make_client(sock, self._keys)
        monitor = sock.get_monitor_socket(HANDSHAKE_EVENTS)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError:
            sock.disable_monitor()
            monitor.close(0)
            sock.close(0)
            raise
        self._clients[key] = _Client(sock, monitor, endpoint, who, what)
        return sock

    def monitor(self, key: K) -> zmq.Socket:
        """The monitor socket of ``key``'s socket (its messages go to ``on_event``)."""
        return self._clients[key].monitor

    def __iter__(self) -> Iterator[K]:
        return iter(self._clients)

    def on_event(self, key: K, frames: list[bytes]) -> None:
        """Handle a message of ``key``'s monitor."""
        client = self._clients.get(key)
        if client is None:
            return  # closed since
        event = zmq.utils.monitor.parse_monitor_message(frames)
        kind = event["event"]
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.reopening.got_through(key, client.who, client.what)
        elif kind & REFUSED:
            now = time.monotonic()
            if self.reopening.refused(key, client.who, client.what, kind, event["value"], now):
                # Now, not when reopening: libzmq keeps the dead connection's
                # entry until disconnect, and a late disconnect could end a
                # session opened meanwhile (peers.PeerLinks._refused).
                try:
                    client.sock.disconnect(client.endpoint)
                except zmq.ZMQError:
                    pass  # not connected any more

    def settle(self) -> None:
        """Handle every monitor message that waits (non-blocking)."""
        for key, client in list(self._clients.items()):
            while True:
                try:
                    frames = client.monitor.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.on_event(key, frames)

    def tick(self, now: float) -> None:
        """Reopen the refused sockets whose backoff has passed."""
        for key in self.reopening.take_due(now):
            client = self._clients.get(key)
            if client is None:
                continue
            try:
                client.sock.connect(client.endpoint)
            except zmq.ZMQError as exc:
                self.reopening.log.warning(
                    "cannot reopen our %s connection to %s: %s", client.what, client.who, exc
                )

    def close(self, key: K, linger_ms: int | None = None) -> None:
        """Close ``key``'s socket (after ``linger_ms``, default its own
        linger) and its monitor (the owner stopped polling it)."""
        client = self._clients.pop(key, None)
        self.reopening.forget(key)
        if client is None:
            return
        client.sock.disable_monitor()
        client.monitor.close(0)
        client.sock.close(linger_ms)

    def close_all(self, linger_ms: int | None = None) -> None:
        for key in list(self._clients):
            self.close(key, linger_ms)
