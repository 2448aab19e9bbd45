"""A lean load generator for the client (ROUTER) socket, and a bare echo server.

``LoadGenerator`` keeps N requests in flight from one process over DEALER
sockets (one socket per in-flight request by default; fewer sockets pipeline
several requests each) against one endpoint or spread round-robin over
several, and records every request's latency.

The harness must cost much less than what it measures, so the hot loop does
almost nothing per request:

- The request is encoded once. Its header is a ``bytes % int`` template whose
  id is a fixed-width counter (``"lg%012d"``): making a new request is one
  C-level formatting call, no JSON encoding. The blob frames are the same
  bytes objects every time (sent zero-copy when large).
- Frames are sent and received one by one with known counts
  (``send(..., SNDMORE)``, ``recv``/``recv_into``): pyzmq's
  ``send_multipart``/``recv_multipart`` are Python loops that call
  ``getsockopt(RCVMORE)`` per frame, which costs more than the frame itself.
  An OK reply carries ``ok_blobs`` blob frames (1 for PREDICT and for the
  echo), any other reply none (docs/PROTOCOL.md); a reply that breaks this is
  detected (the next message does not start with the empty delimiter, or the
  blob is missing) and counted as MALFORMED, and the stream resynchronised.
- Blob frames of replies are received with ``recv_into`` a small reusable
  buffer: no allocation, even for a 10,000-row answer.
- The reply's id and status are found with ``bytes.find`` in the header frame
  (orjson only on the rare path: an unexpected header or an error code).
- Send times live in preallocated ``array('d')`` rings indexed by the id, so
  no per-request dict entries or tuples; latencies go to an ``array('d')``.
- One ``perf_counter`` per socket drain and per refill batch, not per frame.
- Waiting is ``select.epoll`` on the sockets' ZMQ_FD, not ``zmq.Poller``:
  zmq_poll costs about 0.8 us per registered socket per call here (80 us
  for 100 sockets, 0.8 ms for 1000), epoll only for the sockets that woke.
  ZMQ_FD wakes a reader only after a read found its pipe empty and any
  send may consume the wake-up, so every visit ends by asking ZMQ_EVENTS
  (which does that read) before sleeping again; a run starts by draining
  every socket the same way. Should a wake-up still be missed, a periodic
  sweep of all sockets turns it into 50 ms of latency, never a hang, and
  counts it (``missed_wakeups``; 0 in practice, and tested).
- Each socket is drained with NOBLOCK receives only as far as it has
  requests outstanding, so the common case (one request per socket) raises
  no ``zmq.Again`` at all (an exception costs ~4 us, ZMQ_EVENTS ~2 us).
- pyzmq's Python-level ``Socket.send`` wrapper is bypassed, and flags are
  plain ints (its enum flags cost a Python ``__or__``/``__and__`` per use).

``echo_server`` is the ceiling for this pattern: a bare pyzmq ROUTER that
sends every message back (plain Poller loop, ``recv_multipart``/
``send_multipart``). Run it in its own process with
``python -m bench.loadgen echo tcp://127.0.0.1:PORT``.
"""

from __future__ import annotations

import resource
import select
import sys
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import zmq

from zmqnode.transport import security, wire
from zmqnode.transport.security import ClientKeys

ID_PREFIX = b"lg"
ID_DIGITS = 12
_ID_KEY = b'"id":"' + ID_PREFIX
_ID_START = len(_ID_KEY)
_ID_END = _ID_START + ID_DIGITS  # offset of the closing quote from the key
_OK = b'"status":"OK"'
_PROGRESS = b'"status":"PROGRESS"'
_BaseSocket = zmq.Socket.__mro__[1]  # the Cython socket under pyzmq's Python layer
# Header frames at most this long are parsed with bytes.find; the blob buffer.
_SCRATCH_BYTES = 64


def raise_fd_limit(sockets: int) -> tuple[int, int]:
    """Make room for ``sockets`` ZeroMQ sockets (about 3 fds each); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = sockets * 3 + 256
    if soft < want:
        new_soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    return soft, hard


def sockets_for(in_flight: int, max_sockets: int | None = None) -> int:
    """One socket per in-flight request, within the fd limit (and ``max_sockets``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    by_fds = max(1, (limit - 256) // 3)
    return max(1, min(in_flight, by_fds, max_sockets or in_flight))


@dataclass(frozen=True)
class RequestTemplate:
    """A request encoded once: ``header(n)`` is its header frame with id number ``n``."""

    fmt: bytes
    blobs: tuple[bytes, ...]

    @classmethod
    def make(cls, header: dict[str, Any], blobs: Sequence[bytes] = ()) -> RequestTemplate:
        placeholder = "\x00" * (len(ID_PREFIX) + ID_DIGITS)
        raw = wire.encode({**header, "id": placeholder}, list(blobs))[0]
        key = b'"id":"' + orjson.dumps(placeholder)[1:-1] + b'"'
        at = raw.index(key)
        head, tail = raw[: at + 6], raw[at + len(key) - 1 :]
        fmt = (
            head.replace(b"%", b"%%")
            + ID_PREFIX
            + b"%0"
            + str(ID_DIGITS).encode()
            + b"d"
            + tail.replace(b"%", b"%%")
        )
        return cls(fmt, tuple(bytes(b) for b in blobs))

    def header(self, n: int) -> bytes:
        return self.fmt % n


@dataclass
class LoadResult:
    """What one run measured. ``errors`` counts every request that did not get OK."""

    sent: int
    ok: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray = field(repr=False)
    error_codes: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    stray: int = 0
    sockets: int = 0
    in_flight: int = 0
    cpu_seconds: float = 0.0  # the whole process: this loop and ZeroMQ's I/O thread
    loop_cpu_seconds: float = 0.0  # this loop's thread alone
    missed_wakeups: int = 0  # replies found only by the periodic sweep (should be 0)
    per_endpoint: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return self.sent - self.unanswered

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        if len(lat):
            p50, p95, p99, pmax = np.percentile(lat, [50, 95, 99, 100])
            mean = float(lat.mean())
        else:
            p50 = p95 = p99 = pmax = mean = 0.0
        return {
            "requests": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "error_codes": dict(self.error_codes),
            "unanswered": self.unanswered,
            "stray_replies": self.stray,
            "missed_wakeups": self.missed_wakeups,
            "seconds": round(self.seconds, 4),
            "throughput_rps": round(self.answered / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(float(p50), 3),
            "p95_ms": round(float(p95), 3),
            "p99_ms": round(float(p99), 3),
            "max_ms": round(float(pmax), 3),
            "mean_ms": round(mean, 3),
            "in_flight": self.in_flight,
            "sockets": self.sockets,
            "harness_cpu_us_per_request": _per_request(self.cpu_seconds, self.answered),
            "harness_loop_cpu_us_per_request": _per_request(self.loop_cpu_seconds, self.answered),
            "per_endpoint": dict(self.per_endpoint),
        }


class LoadGenerator:
    """Drive ``endpoints`` with copies of ``request``, ``in_flight`` at a time.

    ``sockets`` (default: one per in-flight request, within the fd limit)
    DEALER sockets are spread round-robin over ``endpoints``; each carries
    ``in_flight / sockets`` requests (the remainder on the first ones). The
    sockets are opened and connected by ``open()`` (or on first ``run``), so
    connection set-up is not measured; ``run`` can be called again on the
    same connections (ids keep counting up).
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        request: RequestTemplate,
        in_flight: int = 100,
        *,
        sockets: int | None = None,
        ok_blobs: int = 1,
        connect_timeout: float = 10.0,
        keys: ClientKeys | None = None,
    ) -> None:
        if in_flight < 1:
            raise ValueError("in_flight must be at least 1")
        self.endpoints = list(endpoints)
        self.request = request
        self.in_flight = in_flight
        self.n_sockets = min(in_flight, sockets) if sockets else sockets_for(in_flight)
        self.ok_blobs = ok_blobs
        self.connect_timeout = connect_timeout
        self.keys = keys  # CURVE, as a node requires by default; None: plaintext
        # With no wake-up for this long, every socket is checked: a missed
        # wake-up (a harness bug) then costs this much latency, counted in
        # ``LoadResult.missed_wakeups``, instead of a hang.
        self.sweep_seconds = 0.05
        self.ctx: zmq.Context | None = None
        self.sockets: list[zmq.Socket] = []
        self.next_id = 0
        # Send times and owners of outstanding ids, in rings indexed by id & mask.
        # A slot is reused only after ``size`` later requests; if its request
        # is still unanswered then, it is counted as lost.
        size = 1 << max(14, (in_flight * 16 - 1).bit_length())
        self._mask = size - 1
        self._sent_at = array("d", bytes(8 * size))
        self._owner = array("q", [-1]) * size

    # -- connections ---------------------------------------------------------

    def open(self) -> None:
        if self.ctx is not None:
            return
        raise_fd_limit(self.n_sockets)
        self.ctx = zmq.Context()
        self.ctx.setsockopt(zmq.LINGER, 0)
        self.ctx.set(zmq.MAX_SOCKETS, max(1024, self.n_sockets + 64))
        for i in range(self.n_sockets):
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.RCVHWM, 0)
            s.setsockopt(zmq.SNDHWM, 0)
            s.setsockopt(zmq.IMMEDIATE, 1)  # POLLOUT only once connected
            security.make_client(s, self.keys)
            s.connect(self.endpoints[i % len(self.endpoints)])
            self.sockets.append(s)
        deadline = time.monotonic() + self.connect_timeout
        for s in self.sockets:
            left = deadline - time.monotonic()
            if left <= 0 or not s.poll(int(left * 1000), zmq.POLLOUT):
                self.close()
                raise ConnectionError(
                    f"could not connect {self.n_sockets} sockets to {', '.join(self.endpoints)} "
                    f"within {self.connect_timeout}s"
                )

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.destroy(linger=0)
        self.ctx = None
        self.sockets = []

    def __enter__(self) -> LoadGenerator:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the measurement ---------------------------------------------------------

    def run(
        self,
        requests: int | None = None,
        duration: float | None = None,
        timeout: float = 10.0,
    ) -> LoadResult:
        """Send ``requests`` requests, or as many as fit in ``duration`` seconds.

        Each reply's socket gets the next request, so ``in_flight`` stay
        outstanding until the last ones are issued. The run ends when every
        request is answered, or when no reply has come for ``timeout``
        seconds (the rest count as unanswered errors).
        """
        if (requests is None) == (duration is None):
            raise ValueError("give exactly one of requests and duration")
        self.open()
        socks = self.sockets
        n_socks = len(socks)
        # Plain ints: pyzmq's enum flags cost a Python-level __and__ per use.
        SNDMORE, NOBLOCK, POLLIN, EVENTS = (
            int(zmq.SNDMORE),
            int(zmq.NOBLOCK),
            int(zmq.POLLIN),
            int(zmq.EVENTS),
        )
        Again = zmq.Again
        fmt = self.request.fmt
        blobs = self.request.blobs
        last_blob = blobs[-1] if blobs else None
        mid_blobs = blobs[:-1]
        blob_copy = last_blob is None or len(last_blob) < 65536
        ok_blobs = self.ok_blobs
        mask, sent_at, owner = self._mask, self._sent_at, self._owner
        lat = array("d")
        lat_append = lat.append
        scratch = bytearray(_SCRATCH_BYTES)
        codes: dict[str, int] = {}
        perf = time.perf_counter

        # pyzmq's Python-level Socket.send wrapper costs as much as the send.
        sends = [_BaseSocket.send.__get__(s) for s in socks]
        recvs = [s.recv for s in socks]
        recv_intos = [s.recv_into for s in socks]
        gets = [s.get for s in socks]
        # epoll on the sockets' ZMQ_FD: zmq.Poller costs ~0.8 us per registered
        # socket per call, which alone caps 1000 sockets at ~1000 polls/s. The
        # FD only says "something changed": after touching a socket we must
        # ask ZMQ_EVENTS before sleeping again (any send/recv may consume it).
        epoll = select.epoll()
        fd_to_k: dict[int, int] = {}
        for k, s in enumerate(socks):
            fd = s.get(zmq.FD)
            epoll.register(fd, select.EPOLLIN)
            fd_to_k[fd] = k
        every_socket = list(range(n_socks))
        pending = [0] * n_socks  # requests outstanding per socket
        answered_by = [0] * n_socks
        depth = [self.in_flight // n_socks + (k < self.in_flight % n_socks) for k in range(n_socks)]

        first_id = self.next_id
        n = first_id
        stop_id = first_id + requests if requests is not None else 1 << 62
        ok = errors = stray = lost = outstanding = missed = 0
        sweep_s = self.sweep_seconds

        for s in socks:  # late replies to an earlier run; leaves every reader awake-able
            _discard(s, scratch)

        cpu0, loop_cpu0 = time.process_time(), time.thread_time()
        start = perf()
        end_issue = start + duration if duration is not None else float("inf")

        # Prime every socket to its depth.
        for k in range(n_socks):
            send = sends[k]
            for _ in range(depth[k]):
                if n >= stop_id:
                    break
                s_ = n & mask
                if owner[s_] >= 0:
                    lost += 1
                owner[s_] = n
                sent_at[s_] = perf()
                send(b"", SNDMORE)
                if last_blob is None:
                    send(fmt % n)
                else:
                    send(fmt % n, SNDMORE)
                    for b in mid_blobs:
                        send(b, SNDMORE)
                    send(last_blob, 0, blob_copy)
                n += 1
                pending[k] += 1
                outstanding += 1
        issuing = n < stop_id

        last_reply = perf()
        last_done = start
        try:
            while outstanding > lost:
                ready = epoll.poll(sweep_s)
                now = perf()
                if ready:
                    ks = [fd_to_k[fd] for fd, _ in ready]
                else:
                    if now - last_reply > timeout:
                        break
                    ks = every_socket  # a missed wake-up costs one wait, never a hang
                    answered_before_sweep = ok + errors
                if issuing and now >= end_issue:
                    issuing = False
                for k in ks:
                    recv, recv_into = recvs[k], recv_intos[k]
                    skip_delim = False
                    while True:
                        got = 0
                        while pending[k]:
                            # -- one reply: [""] [header] [ok_blobs blobs if OK] --
                            try:
                                if skip_delim:
                                    skip_delim = False
                                elif recv_into(scratch, flags=NOBLOCK) != 0:
                                    # Not a delimiter: the previous reply had extra frames.
                                    codes["MALFORMED"] = codes.get("MALFORMED", 0) + 1
                                    while socks[k].get(zmq.RCVMORE):
                                        recv_into(scratch)
                                    continue
                                head = recv(NOBLOCK)
                            except Again:
                                break
                            i = head.find(_ID_KEY)
                            if i >= 0 and len(head) > i + _ID_END and head[i + _ID_END] == 34:
                                rid = int(head[i + _ID_START : i + _ID_END])
                                is_ok = head.find(_OK, i) >= 0
                            else:
                                rid, is_ok = _slow_id(head)
                            bad_frames = False
                            if is_ok:
                                for _ in range(ok_blobs):
                                    try:
                                        if recv_into(scratch, flags=NOBLOCK) == 0:
                                            skip_delim = True  # the next reply's delimiter
                                            bad_frames = True
                                            break
                                    except Again:
                                        bad_frames = True
                                        break
                            s_ = rid & mask if rid >= 0 else 0
                            if rid < first_id or owner[s_] != rid:
                                stray += 1
                                continue
                            if not is_ok and head.find(_PROGRESS) >= 0:
                                continue  # not an answer
                            owner[s_] = -1
                            lat_append(now - sent_at[s_])
                            pending[k] -= 1
                            outstanding -= 1
                            got += 1
                            if is_ok and not bad_frames:
                                ok += 1
                            else:
                                errors += 1
                                code = "MALFORMED" if bad_frames else _error_code(head)
                                codes[code] = codes.get(code, 0) + 1
                        if got:
                            answered_by[k] += got
                            last_reply = now
                            last_done = perf()
                            if issuing:
                                send = sends[k]
                                refill = min(got, depth[k] - pending[k], stop_id - n)
                                for _ in range(refill):
                                    s_ = n & mask
                                    if owner[s_] >= 0:
                                        lost += 1
                                    owner[s_] = n
                                    sent_at[s_] = last_done
                                    send(b"", SNDMORE)
                                    if last_blob is None:
                                        send(fmt % n)
                                    else:
                                        send(fmt % n, SNDMORE)
                                        for b in mid_blobs:
                                            send(b, SNDMORE)
                                        send(last_blob, 0, blob_copy)
                                    n += 1
                                pending[k] += refill
                                outstanding += refill
                                if n >= stop_id:
                                    issuing = False
                            now = perf()
                        # ZeroMQ wakes a reader (its FD) only after a read found its
                        # pipe empty, and a send may consume the wake-up: ask ZMQ_EVENTS,
                        # which does that read, before going back to epoll.
                        if not gets[k](EVENTS) & POLLIN:
                            break
                        if not pending[k]:
                            stray += _discard(socks[k], scratch)  # nobody waits for these
                            break
                if not ready:
                    missed += ok + errors - answered_before_sweep
        finally:
            epoll.close()
        cpu, loop_cpu = time.process_time() - cpu0, time.thread_time() - loop_cpu0
        self.next_id = n
        unanswered = outstanding  # includes those counted as lost
        if unanswered:
            for s_ in range(len(owner)):
                if owner[s_] >= first_id:
                    owner[s_] = -1
            codes["UNANSWERED"] = unanswered
        per_endpoint: dict[str, int] = {}
        for k in range(n_socks):
            ep = self.endpoints[k % len(self.endpoints)]
            per_endpoint[ep] = per_endpoint.get(ep, 0) + answered_by[k]
        return LoadResult(
            sent=n - first_id,
            ok=ok,
            errors=errors + unanswered,
            seconds=last_done - start,
            latencies_ms=np.frombuffer(lat, dtype=np.float64) * 1000.0,
            error_codes=codes,
            unanswered=unanswered,
            stray=stray,
            sockets=n_socks,
            in_flight=self.in_flight,
            cpu_seconds=cpu,
            loop_cpu_seconds=loop_cpu,
            missed_wakeups=missed,
            per_endpoint=per_endpoint,
        )


def _discard(sock: zmq.Socket, scratch: bytearray) -> int:
    """Read and drop every message queued on ``sock``, until ZMQ_EVENTS says none;
    returns how many. Ends with the socket's reader armed to signal the next one."""
    n = 0
    while sock.get(zmq.EVENTS) & zmq.POLLIN:
        sock.recv_into(scratch)
        while sock.get(zmq.RCVMORE):
            sock.recv_into(scratch)
        n += 1
    return n


def _per_request(seconds: float, requests: int) -> float | None:
    return round(seconds / requests * 1e6, 2) if requests else None


def _slow_id(head: bytes) -> tuple[int, bool]:
    """(id number, status is OK) of a header the fast path could not read; -1 if none."""
    try:
        h = orjson.loads(head)
        rid = h.get("id", "")
        ok = h.get("status") == "OK"
    except (orjson.JSONDecodeError, AttributeError):
        return -1, False
    p = ID_PREFIX.decode()
    if isinstance(rid, str) and rid.startswith(p) and rid[len(p) :].isdigit():
        return int(rid[len(p) :]), ok
    return -1, ok


def _error_code(head: bytes) -> str:
    try:
        h = orjson.loads(head)
    except orjson.JSONDecodeError:
        return "MALFORMED"
    if not isinstance(h, dict):
        return "MALFORMED"
    if h.get("status") == "ERROR":
        return str(h.get("code") or "ERROR")
    return str(h.get("status") or "MALFORMED")


def run_load(
    endpoints: Sequence[str],
    request: RequestTemplate,
    in_flight: int = 100,
    requests: int | None = None,
    duration: float | None = None,
    *,
    sockets: int | None = None,
    warmup: int = 0,
    timeout: float = 10.0,
    keys: ClientKeys | None = None,
) -> LoadResult:
    """Open, optionally warm up with ``warmup`` requests, measure, close."""
    with LoadGenerator(endpoints, request, in_flight, sockets=sockets, keys=keys) as gen:
        if warmup:
            gen.run(requests=warmup, timeout=timeout)
        return gen.run(requests=requests, duration=duration, timeout=timeout)


# -- the echo server ---------------------------------------------------------------


def echo_server(
    endpoint: str,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    ctx: zmq.Context | None = None,
) -> None:
    """A bare ROUTER that sends every message back as it came (plain Poller loop)."""
    own = ctx is None
    ctx = ctx or zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.bind(endpoint)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    if ready is not None:
        ready.set()
    recv, send, Again, NOBLOCK = sock.recv_multipart, sock.send_multipart, zmq.Again, zmq.NOBLOCK
    try:
        while stop is None or not stop.is_set():
            if poller.poll(100):
                for _ in range(256):
                    try:
                        frames = recv(NOBLOCK)
                    except Again:
                        break
                    send(frames)
    finally:
        sock.close(0)
        if own:
            ctx.term()


def echo_template(request: RequestTemplate) -> RequestTemplate:
    """The same request with ``status: OK`` in its header, so its echo counts as an answer."""
    raw = request.fmt
    return RequestTemplate(raw[:-1] + b',"status":"OK"}', request.blobs)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "echo":
        echo_server(argv[1])
        return 0
    print("usage: python -m bench.loadgen echo tcp://HOST:PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
