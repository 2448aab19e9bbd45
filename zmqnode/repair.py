"""Fetching model files this node should have but does not: from its peers.

A model's file can be missing or damaged on a node that the Raft log can no
longer repair: the log was compacted past the entry that carried it, or the
node installed a snapshot from the leader (which carries the registry's
index of models, not their bytes). The registry's record still holds the
file's size and SHA-256 (replicated through Raft), so any peer's copy can
be checked before it is used.

``ModelFetcher`` asks peers for the file in bounded chunks (FETCH requests
on their client port, ``--fetch-chunk-bytes`` each, one in flight), tries
the leader first and then every other peer, verifies the whole file against
the record, and only then writes it (atomically, durably). A peer that does
not answer in ``REQUEST_SECONDS`` or answers with an error is skipped; when
every peer failed, the model waits ``RETRY_SECONDS`` before a new round.
The node keeps serving the whole time; until a file is repaired, a request
for that model is sent to the leader (REDIRECT) or refused as UNAVAILABLE.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq

from .transport import wire
from .transport.addresses import parse_address, tcp_endpoint
from .transport.sockets import Sockets

log = logging.getLogger("zmqnode.repair")

DEFAULT_CHUNK_BYTES = 1 << 20
REQUEST_SECONDS = 2.0
RETRY_SECONDS = 2.0


@dataclass
class _Fetch:
    model_id: str
    sha256: str
    size: int
    peers: list[str]  # still to try in this round, first is current
    data: bytearray = field(default_factory=bytearray)
    request_id: str = ""
    deadline: float = 0.0
    failures: list[str] = field(default_factory=list)


class ModelFetcher:
    """One model at a time, one chunk in flight, driven by the node's loop."""

    def __init__(
        self,
        node_id: str,
        sockets: Sockets,
        peers: list[str],
        register_socket: Callable[[zmq.Socket, Callable[[list[bytes]], None]], None],
        store_file: Callable[[str, bytes], None],
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        request_seconds: float = REQUEST_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.node_id = node_id
        self.peers = list(peers)
        self.store_file = store_file
        self.chunk_bytes = chunk_bytes
        self.request_seconds = request_seconds
        self.retry_seconds = retry_seconds
        self.wanted: dict[str, tuple[str, int]] = {}  # model id -> (sha256, size)
        self.not_before: dict[str, float] = {}  # model id -> retry time after a failed round
        self.current: _Fetch | None = None
        self.fetched = 0  # files repaired
        self.chunks = 0  # chunks received
        self._ids = itertools.count()
        self.sockets: dict[str, zmq.Socket] = {}
        for peer in self.peers:
            host, port = parse_address(peer)
            # Peers' client ports: our node key is allowed there.
            sock = sockets.client(zmq.DEALER, tcp_endpoint(host, port), immediate=True)
            self.sockets[peer] = sock
            register_socket(sock, functools.partial(self._on_reply, peer))

    def want(self, model_id: str, sha256: str, size: int) -> None:
        """Fetch ``model_id`` (if not already queued)."""
        if model_id not in self.wanted:
            log.warning(
                "node %s: model %s is missing or damaged here; fetching it from peers",
                self.node_id,
                model_id,
            )
        self.wanted[model_id] = (sha256, size)

    def forget(self, model_id: str) -> None:
        """The file was repaired another way (replaying the log rewrote it)."""
        self.wanted.pop(model_id, None)
        self.not_before.pop(model_id, None)
        if self.current is not None and self.current.model_id == model_id:
            self.current = None

    def pending(self) -> int:
        return len(self.wanted)

    def tick(self, now: float, leader: str) -> None:
        if not self.peers:
            return
        fetch = self.current
        if fetch is not None and now >= fetch.deadline:
            self._give_up_on_peer(fetch, "no answer in time", now)
        if self.current is None:
            self._start_next(now, leader)

    def _start_next(self, now: float, leader: str) -> None:
        for model_id, (sha256, size) in self.wanted.items():
            if self.not_before.get(model_id, 0.0) > now:
                continue
            order = sorted(self.peers, key=lambda p: p != leader)  # the leader first
            self.current = _Fetch(model_id, sha256, size, order)
            self._request(self.current, now)
            return

    def _request(self, fetch: _Fetch, now: float) -> None:
        fetch.request_id = f"fetch-{self.node_id}-{next(self._ids)}"
        fetch.deadline = now + self.request_seconds
        header = {
            "type": wire.RequestType.FETCH.value,
            "id": fetch.request_id,
            "model_id": fetch.model_id,
            "offset": len(fetch.data),
            "length": self.chunk_bytes,
        }
        try:
            self.sockets[fetch.peers[0]].send_multipart([b"", *wire.encode(header)], zmq.NOBLOCK)
        except zmq.Again:
            pass  # not connected: the deadline moves us on

    def _on_reply(self, peer: str, frames: list[bytes]) -> None:
        fetch = self.current
        try:
            _, body = wire.split_envelope(frames)
            header, blobs = wire.decode(body)
        except wire.ProtocolError:
            return
        if fetch is None or header.get("id") != fetch.request_id or fetch.peers[0] != peer:
            return  # a late answer to a request we gave up on
        now = time.monotonic()
        if header.get("status") != wire.Status.OK.value or len(blobs) != 1:
            reason = f"{header.get('code', 'bad reply')}: {header.get('message', '')}"
            self._give_up_on_peer(fetch, reason[:200], now)
            return
        chunk = blobs[0]
        if header.get("size") != fetch.size or header.get("offset") != len(fetch.data):
            self._give_up_on_peer(fetch, f"its copy has size {header.get('size')}", now)
            return
        self.chunks += 1
        fetch.data += chunk
        if len(fetch.data) < fetch.size:
            if not chunk:
                self._give_up_on_peer(fetch, "empty chunk before the end", now)
                return
            self._request(fetch, now)
            return
        data = bytes(fetch.data)
        if len(data) != fetch.size or hashlib.sha256(data).hexdigest() != fetch.sha256:
            self._give_up_on_peer(fetch, "its copy fails the checksum", now)
            return
        self.store_file(fetch.model_id, data)
        self.fetched += 1
        log.info(
            "node %s: repaired model %s (%d bytes) from %s",
            self.node_id,
            fetch.model_id,
            fetch.size,
            peer,
        )
        self.wanted.pop(fetch.model_id, None)
        self.not_before.pop(fetch.model_id, None)
        self.current = None

    def _give_up_on_peer(self, fetch: _Fetch, reason: str, now: float) -> None:
        peer = fetch.peers.pop(0)
        fetch.failures.append(f"{peer}: {reason}")
        fetch.data = bytearray()
        if fetch.peers:
            self._request(fetch, now)
            return
        log.warning(
            "node %s: could not fetch model %s from any peer (%s); retrying in %.0f s",
            self.node_id,
            fetch.model_id,
            "; ".join(fetch.failures),
            self.retry_seconds,
        )
        self.not_before[fetch.model_id] = now + self.retry_seconds
        self.current = None

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(0)
