"""A poller-driven HTTP/1.1 server: h11 connections over non-blocking TCP.

The node is one thread around one ``zmq.Poller`` (``Node._turn``), so the
HTTP server cannot own a loop or a thread of its own. It is driven like the
Raft core: h11 (sans-IO, the parser of ``python-hyper``) turns bytes into
request events and responses into bytes; this module owns the sockets and
hands their file descriptors to the caller's poller through ``watch`` and
``unwatch``; ``tick`` enforces the timeouts with the caller's clock.

A request is handed over complete (headers and body) to ``on_request`` with
a ``Responder``; the answer may come later in the same thread (after a
micro-batch flush, a Raft read index). Until it does, the connection parses
nothing more: pipelined requests wait, read ahead at most
``HttpLimits.max_buffered_bytes``, and are answered in order (RFC 9112
§9.3.2).

Everything is bounded: connections (``max_connections``), bytes read per
event, connections accepted per event, header bytes (h11's
``max_incomplete_event_size``), body bytes, read-ahead, unsent output (the
next request is parsed only once the previous answer left), and time (idle,
request and send timeouts).
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import h11
import zmq

from zmqnode.transport.sockets import BindError

log = logging.getLogger(__name__)

# Bytes read from one connection per readable event: one h11 feed.
READ_CHUNK = 65536
# Poll masks as plain ints: bit operations on pyzmq's enum members cost
# microseconds each, on every request.
POLLIN, POLLOUT, POLLERR = int(zmq.POLLIN), int(zmq.POLLOUT), int(zmq.POLLERR)
# An answer up to this size goes out as one buffer (one send); a larger body
# is passed through without a copy, after its head.
JOIN_BYTES = 65536
# Connections accepted per readable event of the listening socket, so a burst
# of connects cannot hold the loop.
ACCEPT_BATCH = 64
# The kernel's queue of connections not yet accepted.
BACKLOG = 128
# send() calls per writable event; each moves what the kernel takes.
SEND_BATCH = 16
# After an error answer (400, 408, 413, 431) the server stops sending, keeps
# reading and discards what the client still sends for a moment before it
# closes: closing a socket with unread input makes the kernel send a reset,
# which can destroy the answer before the client reads it (RFC 9112 §9.6,
# Apache's "lingering close").
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
# Pause before accepting again when the process is out of descriptors.
ACCEPT_RETRY_SECONDS = 0.1

_ACCEPT_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

_REASONS = {
    100: b"Continue",
    200: b"OK",
    204: b"No Content",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    415: b"Unsupported Media Type",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}

# Headers this layer writes itself (framing); a caller's are dropped.
_FRAMING_HEADERS = {"content-length", "transfer-encoding"}


@dataclass(frozen=True)
class HttpLimits:
    """Bounds of one ``HttpServer``.

    ``max_body_bytes``: a request body (declared Content-Length, or chunked
    total) above it is answered 413 and the connection closed.
    ``max_header_bytes``: request line and headers (h11's
    ``max_incomplete_event_size``); above it, 431.
    ``max_connections``: open connections; one more is accepted and closed
    at once (with a best-effort 503).
    ``idle_timeout``: a keep-alive connection with no request in progress is
    closed after it; so is one whose answer makes no progress to the client
    for as long.
    ``request_timeout``: from a request's first byte to its last (slowloris):
    408 and close.
    ``max_buffered_bytes``: bytes read ahead (pipelined requests) while an
    answer is pending; past it, reading pauses until the answer is sent.
    """

    max_body_bytes: int
    max_header_bytes: int = 16384
    max_connections: int = 256
    idle_timeout: float = 60.0
    request_timeout: float = 30.0
    max_buffered_bytes: int = 262144

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_header_bytes", "max_connections", "max_buffered_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpLimits.{name} must be positive")
        if not (self.idle_timeout > 0 and self.request_timeout > 0):
            raise ValueError("HttpLimits timeouts must be positive")


@dataclass(frozen=True)
class HttpRequest:
    """One complete request.

    ``target`` is the request target as sent (path and query, latin-1);
    ``headers`` has lower-case names, repeated fields joined with ", "
    (RFC 9110 §5.3); ``connection`` identifies the connection (unique for the
    server's life); ``received`` is the clock when the request was complete.
    """

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int
    received: float
    http_version: str = "1.1"


class Responder:
    """Answers one request, exactly once, from the loop's thread.

    A later ``respond`` is ignored; so is one whose connection has gone (the
    client disconnected, or was timed out while the answer was computed).
    """

    __slots__ = ("_conn", "_answered", "_head")

    def __init__(self, conn: _Connection, head: bool) -> None:
        self._conn: _Connection | None = conn
        self._answered = False
        self._head = head

    @property
    def closed(self) -> bool:
        """True once ``respond`` would do nothing: answered already, or the
        connection is gone (the client disconnected, or the server closed).
        Work for a closed, unanswered request can be skipped."""
        return self._conn is None

    @property
    def answered(self) -> bool:
        return self._answered

    def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Send the answer: ``status``, ``headers`` (Content-Length and
        Transfer-Encoding are set here; ``Connection: close`` closes the
        connection after the answer), ``body``."""
        if self._answered:
            return
        self._answered = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.respond(status, headers, body, self._head)

    def _detach(self) -> None:
        self._conn = None


class HttpServer:
    """An HTTP/1.1 server driven by the caller's poller.

    ``watch(fd, mask, callback)`` must register ``fd`` in the poller for
    ``mask`` (``zmq.POLLIN``/``zmq.POLLOUT``; a new call updates the mask)
    and call ``callback(revents)`` when it is ready; ``unwatch(fd)`` removes
    it. ``on_request(request, responder)`` runs in that same thread and must
    not block; it may answer at once or later. ``tick(now)`` enforces the
    timeouts: call it every loop turn.

    Raises ``BindError`` if ``host:port`` cannot be bound.
    """

    def __init__(
        self,
        host: str,
        port: int,
        limits: HttpLimits,
        on_request: Callable[[HttpRequest, Responder], None],
        watch: Callable[[int, int, Callable[[int], None]], None],
        unwatch: Callable[[int], None],
        clock: Callable[[], float] = time.monotonic,
        server_header: str = "zmqnode",
    ) -> None:
        self.limits = limits
        self.on_request = on_request
        self._watch = watch
        self._unwatch = unwatch
        self.clock = clock
        self.server_header = server_header
        self._conns: dict[int, _Connection] = {}
        self._next_id = 1
        self._accept_paused_until: float | None = None
        # Counters for metrics.
        self.accepted = 0
        self.refused_over_limit = 0
        self.timed_out = 0  # 408s, and answers the client stopped reading
        self.idle_closed = 0  # keep-alive connections closed after idle_timeout
        self.protocol_errors = 0
        self.too_large = 0
        self.requests = 0
        self.disconnects = 0

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise BindError(f"cannot bind http://{host}:{port}: {exc}") from None
        self._listener: socket.socket | None = sock
        self.host = host
        self.port: int = sock.getsockname()[1]
        self._watch(sock.fileno(), zmq.POLLIN, self._on_listener)

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._conns)

    def tick(self, now: float) -> None:
        """Close idle connections, answer 408 to too-slow requests, give up
        lingering closes, resume accepting after running out of descriptors."""
        if self._accept_paused_until is not None and now >= self._accept_paused_until:
            self._accept_paused_until = None
            if self._listener is not None:
                self._watch(self._listener.fileno(), zmq.POLLIN, self._on_listener)
        for conn in list(self._conns.values()):
            conn.check_time(now)

    def close(self) -> None:
        """Close every connection (pending responders become closed) and the
        listening socket."""
        for conn in list(self._conns.values()):
            conn.close()
        if self._listener is not None:
            if self._accept_paused_until is None:
                self._unwatch(self._listener.fileno())
            self._listener.close()
            self._listener = None

    # -- accepting -------------------------------------------------------------

    def _on_listener(self, revents: int) -> None:
        listener = self._listener
        if listener is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _addr = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_RESOURCE_ERRORS:
                    # The listener stays readable: stop watching it for a
                    # moment rather than spin.
                    log.warning("http: cannot accept (%s); pausing accepts", exc)
                    self._unwatch(listener.fileno())
                    self._accept_paused_until = self.clock() + ACCEPT_RETRY_SECONDS
                return  # ECONNABORTED and the like: the client is gone
            if len(self._conns) >= self.limits.max_connections:
                self.refused_over_limit += 1
                _refuse(sock, self.server_header)
                continue
            self.accepted += 1
            conn_id = self._next_id
            self._next_id += 1
            self._conns[conn_id] = _Connection(self, conn_id, sock)

    def _forget(self, conn_id: int) -> None:
        self._conns.pop(conn_id, None)


def _refuse(sock: socket.socket, server: str) -> None:
    """Answer 503 if the kernel takes it at once, and close."""
    try:
        sock.setblocking(False)
        sock.send(_raw_response(503, "too many connections\n", server))
    except OSError:
        pass
    sock.close()


def _raw_response(status: int, text: str, server: str) -> bytes:
    """A complete closing answer, for when h11 cannot write one (over the
    connection limit, or its state forbids a response)."""
    body = text.encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"")),
            b"server: %s\r\n" % server.encode("latin-1"),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class _Connection:
    """One accepted TCP connection and its h11 state machine.

    States: reading a request (``_request_started`` set once its first byte
    came); waiting for the answer (``_responder``); sending (``_out``); idle;
    closing (an answer that ends the connection is being sent); lingering
    (sent, reading and discarding until the client closes).
    """

    def __init__(self, server: HttpServer, conn_id: int, sock: socket.socket) -> None:
        self.server = server
        self.id = conn_id
        self.sock = sock
        self.fd = sock.fileno()
        sock.setblocking(False)
        try:
            # Answers are written whole; Nagle would only delay them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.h11 = h11.Connection(
            our_role=h11.SERVER, max_incomplete_event_size=server.limits.max_header_bytes
        )
        self.closed = False
        now = server.clock()
        self._idle_since: float | None = now  # None: not idle
        self._request_started: float | None = None
        self._maybe_partial = False  # h11 may hold the start of a request
        self._request: h11.Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._responder: Responder | None = None  # dispatched, not answered
        self._inbox = bytearray()  # read while busy, not yet fed to h11
        self._out: deque[memoryview] = deque()
        self._out_size = 0
        self._last_sent = now
        self._closing = False  # close once the output is sent
        self._linger_until: float | None = None
        self._linger_read = 0
        self._in_process = False
        self._mask = 0
        self._update_watch()

    # -- the poller's side -----------------------------------------------------

    def on_events(self, revents: int) -> None:
        if self.closed:
            return
        if revents & POLLOUT and self._out:
            self._flush()
        if self.closed:
            return
        if revents & (POLLIN | POLLERR) and self._mask & POLLIN:
            self._read()
        if not self.closed:
            self._update_watch()

    def _want_read(self) -> bool:
        if self._linger_until is not None:
            return True
        if self._closing:
            return False
        if self._busy:
            return len(self._inbox) < self.server.limits.max_buffered_bytes
        return True

    @property
    def _busy(self) -> bool:
        """Not parsing: an answer is awaited or still being sent."""
        return self._responder is not None or self._out_size > 0

    def _update_watch(self) -> None:
        mask = (POLLIN if self._want_read() else 0) | (POLLOUT if self._out else 0)
        if mask == self._mask:
            return
        if mask:
            self.server._watch(self.fd, mask, self.on_events)
        else:
            self.server._unwatch(self.fd)
        self._mask = mask

    # -- reading ---------------------------------------------------------------

    def _read(self) -> None:
        try:
            data = self.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._disconnected()
            return
        if not data:
            # The client closed (or half-closed) its side. A request it has
            # not finished sending will never complete, and an answer it
            # waits for has nowhere to go once it closed: treat both as gone.
            self._disconnected()
            return
        if self._linger_until is not None:
            self._linger_read += len(data)
            if self._linger_read > LINGER_BYTES:
                self.close()
            return
        if self._busy:
            self._inbox += data
            return
        if self._request_started is None:
            self._request_started = self.server.clock()
            self._idle_since = None
        self.h11.receive_data(data)
        self._process()

    def _disconnected(self) -> None:
        if self._linger_until is None and (
            self._responder is not None or self._request_started is not None
        ):
            self.server.disconnects += 1
        self.close()

    def _process(self) -> None:
        """Take events from h11 until it needs data, a request is dispatched,
        or the connection ends. Bounded by the bytes h11 holds."""
        if self._in_process:
            return  # respond() from inside on_request: the loop below goes on
        self._in_process = True
        try:
            while not self.closed and not self._busy and not self._closing:
                try:
                    event = self.h11.next_event()
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint
                    if status == 431:
                        self.server.too_large += 1
                    else:
                        self.server.protocol_errors += 1
                    self._fail(status, f"bad request: {exc}")
                    return
                if event is h11.NEED_DATA:
                    if self._request_started is None and self._maybe_partial:
                        if self.h11.trailing_data[0]:
                            self._request_started = self.server.clock()
                            self._idle_since = None
                    self._maybe_partial = False
                    return
                if event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    self._on_head(event)
                elif isinstance(event, h11.Data):
                    self._body_size += len(event.data)
                    if self._body_size > self.server.limits.max_body_bytes:
                        self.server.too_large += 1
                        self._fail(413, "request body too large")
                        return
                    self._body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    self._dispatch()
                elif isinstance(event, h11.ConnectionClosed):
                    self.close()
                    return
        finally:
            self._in_process = False

    def _on_head(self, event: h11.Request) -> None:
        if self._request_started is None:
            self._request_started = self.server.clock()
            self._idle_since = None
        self._request = event
        self._body = []
        self._body_size = 0
        # h11 applies max_incomplete_event_size only to a head that has not
        # yet arrived whole; one that came in a single read is measured here
        # (request line and fields, as sent less optional whitespace).
        head_size = len(event.method) + len(event.target) + 12
        head_size += sum(len(name) + len(value) + 4 for name, value in event.headers)
        if head_size > self.server.limits.max_header_bytes:
            self.server.too_large += 1
            self._fail(431, "request header fields too large")
            return
        limit = self.server.limits.max_body_bytes
        for name, value in event.headers:
            # h11 has checked that Content-Length is one non-negative integer.
            if name == b"content-length" and int(value) > limit:
                # RFC 9110 §15.5.14: refuse before reading the body; with
                # Expect: 100-continue the client never sends it.
                self.server.too_large += 1
                self._fail(413, "request body too large")
                return
        if self.h11.they_are_waiting_for_100_continue:
            # RFC 9110 §10.1.1: the body is within limits, ask for it.
            self._send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
            self._flush()

    def _dispatch(self) -> None:
        head = self._request
        assert head is not None
        headers: dict[str, str] = {}
        for name, value in head.headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        now = self.server.clock()
        body = b"".join(self._body)
        self._request = None
        self._body = []
        self._request_started = None
        method = head.method.decode("latin-1")
        request = HttpRequest(
            method=method,
            target=head.target.decode("latin-1"),
            headers=headers,
            body=body,
            connection=self.id,
            received=now,
            http_version=head.http_version.decode("latin-1"),
        )
        responder = Responder(self, head=method == "HEAD")
        self._responder = responder
        self.server.requests += 1
        try:
            self.server.on_request(request, responder)
        except Exception:
            log.exception("http: the request handler failed on %s %s", method, request.target)
            responder.respond(
                500, [("content-type", "text/plain; charset=utf-8")], b"internal error\n"
            )

    # -- answering -------------------------------------------------------------

    def respond(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes, head: bool
    ) -> None:
        """The answer to the dispatched request (through its Responder)."""
        if self.closed:
            return
        self._responder = None
        out: list[tuple[str, str]] = []
        has_server = False
        for name, value in headers:
            lower = name.lower()
            if lower in _FRAMING_HEADERS:
                continue
            has_server = has_server or lower == "server"
            out.append((name, value))
        if not has_server:
            out.append(("server", self.server.server_header))
        # RFC 9110 §8.6: no Content-Length in 1xx or 204 answers; 304 has none
        # here either. No body for them nor for HEAD (§9.3.2).
        if status in (204, 304) or status < 200:
            body = b""
        else:
            out.append(("content-length", str(len(body))))
        if head:
            body = b""
        events: list[h11.Event] = [
            h11.Response(status_code=status, headers=out, reason=_REASONS.get(status, b""))
        ]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        try:
            self._send_all(events)
        except h11.LocalProtocolError as exc:
            log.error("http: cannot send the answer (%s); closing the connection", exc)
            self.close()
            return
        self._after_response()

    def _after_response(self) -> None:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            self._maybe_partial = True
        else:
            # MUST_CLOSE: Connection: close from either side, or HTTP/1.0.
            self._closing = True
        self._flush()  # which parses what waits, once the answer is out
        if not self.closed:
            self._update_watch()

    def _resume(self) -> None:
        """Parse again once idle: what was read ahead, then what h11 holds."""
        if self._busy or self._closing:
            return
        if self._request_started is None:
            self._idle_since = self.server.clock()
        if self._inbox:
            if self._request_started is None:
                self._request_started = self.server.clock()
                self._idle_since = None
            self.h11.receive_data(bytes(self._inbox))
            self._inbox.clear()
        elif not self.h11.trailing_data[0]:
            return  # nothing to parse (the common case: no pipelining)
        self._process()

    def _fail(self, status: int, message: str) -> None:
        """Answer an error and close (RFC 9112 §9.6 with a lingering close)."""
        self._responder = None
        self._request = None
        self._body = []
        self._inbox.clear()
        headers = [
            ("content-type", "text/plain; charset=utf-8"),
            ("server", self.server.server_header),
            ("connection", "close"),
        ]
        body = (message.replace("\n", " ")[:200] + "\n").encode("utf-8", "replace")
        try:
            self._send(
                h11.Response(
                    status_code=status,
                    headers=[*headers, ("content-length", str(len(body)))],
                    reason=_REASONS.get(status, b""),
                )
            )
            self._send(h11.Data(data=body))
            self._send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            # h11's state forbids an answer here (say, one already started):
            # write a closing one ourselves if nothing is on its way.
            if not self._out:
                self._queue(_raw_response(status, message, self.server.server_header))
        self._closing = True
        self._flush()
        if not self.closed:
            self._update_watch()

    # -- writing ---------------------------------------------------------------

    def _send(self, event: h11.Event) -> None:
        chunks = self.h11.send_with_data_passthrough(event)
        for chunk in chunks or ():
            self._queue(chunk)

    def _send_all(self, events: list[h11.Event]) -> None:
        """Events as few buffers: h11 gives the status line, each header and
        the blank line as chunks of their own, and a send per chunk cost more
        than the rest of a small answer (measured: 6 sends per answer)."""
        chunks: list[bytes] = []
        for event in events:
            chunks.extend(self.h11.send_with_data_passthrough(event) or ())
        if sum(len(chunk) for chunk in chunks) <= JOIN_BYTES:
            self._queue(b"".join(chunks))
            return
        small: list[bytes] = []
        for chunk in chunks:
            if len(chunk) <= 4096:
                small.append(chunk)
                continue
            if small:
                self._queue(b"".join(small))
                small = []
            self._queue(chunk)
        if small:
            self._queue(b"".join(small))

    def _queue(self, chunk: bytes) -> None:
        if chunk:
            if not self._out:
                self._last_sent = self.server.clock()
            self._out.append(memoryview(chunk))
            self._out_size += len(chunk)

    def _flush(self) -> None:
        """Send what the kernel takes now; the rest waits for POLLOUT."""
        for _ in range(SEND_BATCH):
            if not self._out:
                break
            chunk = self._out[0]
            try:
                sent = self.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._disconnected()
                return
            self._last_sent = self.server.clock()
            self._out_size -= sent
            if sent == len(chunk):
                self._out.popleft()
            else:
                self._out[0] = chunk[sent:]
                break
        if self._out:
            return
        if self._closing:
            self._start_linger()
        elif self._responder is None:
            self._resume()

    def _start_linger(self) -> None:
        if self._linger_until is not None:
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self._linger_until = self.server.clock() + min(
            LINGER_SECONDS, self.server.limits.request_timeout
        )

    # -- time ------------------------------------------------------------------

    def check_time(self, now: float) -> None:
        limits = self.server.limits
        if self._linger_until is not None:
            if now >= self._linger_until:
                self.close()
            return
        if self._out:
            if now - self._last_sent >= limits.idle_timeout:
                self.server.timed_out += 1
                self.close()  # the client does not read its answer
            return
        if self._responder is not None or self._closing:
            return  # the node's own deadlines bound the answer
        if self._request_started is not None:
            if now - self._request_started >= limits.request_timeout:
                self.server.timed_out += 1
                self._fail(408, "request not received in time")
            return
        if self._idle_since is not None and now - self._idle_since >= limits.idle_timeout:
            self.server.idle_closed += 1
            self.close()

    # -- the end ---------------------------------------------------------------

    def close(self) -> None:
        """Close the socket quietly; a pending responder becomes closed."""
        if self.closed:
            return
        self.closed = True
        if self._responder is not None:
            self._responder._detach()
            self._responder = None
        if self._mask:
            self.server._unwatch(self.fd)
            self._mask = 0
        self.sock.close()
        self._out.clear()
        self._out_size = 0
        self._inbox.clear()
        self.server._forget(self.id)
