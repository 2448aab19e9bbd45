"""zmqnode.transport.http: the poller-driven HTTP/1.1 server.

Each test runs an ``HttpServer`` on 127.0.0.1 inside a small loop (a
``zmq.Poller`` on a background thread, as ``Node._turn`` drives it) and talks
to it over real TCP sockets. The handler answers at once, or parks the
request until the test releases it (on the loop's thread, as the node answers
after a micro-batch flush).
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from zmqnode.transport.http import HttpLimits, HttpRequest, HttpServer, Responder
from zmqnode.transport.sockets import BindError

DEADLINE = 5.0


class Loop:
    """The node's loop in miniature: one thread polls the fds the server
    watches, runs their callbacks, calls ``tick`` and runs what tests hand it
    with ``call``."""

    def __init__(self) -> None:
        self.poller = zmq.Poller()
        self.callbacks: dict[int, Callable[[int], None]] = {}
        self.calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        self.server: HttpServer | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, fd: int, mask: int, callback: Callable[[int], None]) -> None:
        self.poller.register(fd, mask)
        self.callbacks[fd] = callback

    def unwatch(self, fd: int) -> None:
        self.poller.unregister(fd)
        del self.callbacks[fd]

    def call(self, fn: Callable[[], None]) -> None:
        self.calls.put(fn)

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                for fd, revents in self.poller.poll(10):
                    callback = self.callbacks.get(fd)
                    if callback is not None:
                        callback(revents)
                while True:
                    try:
                        self.calls.get_nowait()()
                    except queue.Empty:
                        break
                assert self.server is not None
                self.server.tick(time.monotonic())
        except BaseException as exc:  # reported by the fixture
            self.errors.append(exc)


class App:
    """Answers ``/later...`` when the test releases it, anything else at once
    with ``METHOD TARGET body-length``; ``/big`` answers ``big`` bytes."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.parked: list[tuple[HttpRequest, Responder]] = []
        self.big = 0

    def on_request(self, request: HttpRequest, responder: Responder) -> None:
        self.requests.append(request)
        if request.target.startswith("/later"):
            self.parked.append((request, responder))
        elif request.target == "/big":
            responder.respond(200, [("content-type", "application/octet-stream")], _big(self.big))
        elif request.target == "/close":
            responder.respond(200, [("connection", "close")], b"bye")
        else:
            responder.respond(200, [("content-type", "text/plain")], _echo(request))


def _echo(request: HttpRequest) -> bytes:
    return f"{request.method} {request.target} {len(request.body)}".encode()


def _big(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


class Harness:
    def __init__(self, loop: Loop, app: App, server: HttpServer) -> None:
        self.loop = loop
        self.app = app
        self.server = server

    def connect(self, rcvbuf: int = 0) -> Client:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connect, so the TCP window starts small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(DEADLINE)
        sock.connect(("127.0.0.1", self.server.port))
        return Client(sock)

    def release(self, index: int, body: bytes) -> None:
        """Answer the parked request ``index`` on the loop's thread."""
        _request, responder = self.app.parked[index]
        self.loop.call(lambda: responder.respond(200, [], body))

    def wait_parked(self, count: int) -> None:
        wait_for(lambda: len(self.app.parked) >= count, "parked requests")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class Client:
    """A raw TCP client that reads responses one by one (enough HTTP for
    tests: a status line, headers, a Content-Length body)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def response(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError("connection closed before a response")
        top, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = top.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = 0 if head or status < 200 else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise EOFError("connection closed inside a body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        """True if the server closed the connection (EOF or reset) within
        the deadline, with nothing more to read."""
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def request(method: str, target: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nhost: test\r\n{extra}"
    if body or method == "POST":
        head += f"content-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


@pytest.fixture
def make_server() -> Iterator[Callable[..., Harness]]:
    started: list[Loop] = []

    def make(**limits: float) -> Harness:
        loop = Loop()
        app = App()
        args = {"max_body_bytes": 1000, "idle_timeout": 5.0, "request_timeout": 5.0, **limits}
        server = HttpServer(
            "127.0.0.1",
            0,
            HttpLimits(**args),
            app.on_request,
            loop.watch,
            loop.unwatch,
        )
        loop.server = server
        loop.thread.start()
        started.append(loop)
        return Harness(loop, app, server)

    yield make
    for loop in started:
        loop.stopping.set()
        loop.thread.join(DEADLINE)
        assert loop.server is not None
        loop.server.close()
        assert not loop.errors, loop.errors


def test_get_is_answered_with_server_and_length_headers(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("GET", "/v2/health/live?x=1"))
    status, headers, body = c.response()
    assert (status, body) == (200, b"GET /v2/health/live?x=1 0")
    assert headers["server"] == "zmqnode"
    assert headers["content-length"] == str(len(body))
    assert "date" not in headers
    assert h.app.requests[0].headers["host"] == "test"


def test_post_body_reaches_the_handler(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("POST", "/v2/models/m/infer", b'{"inputs": []}'))
    assert c.response()[2] == b"POST /v2/models/m/infer 14"
    assert h.app.requests[0].body == b'{"inputs": []}'


def test_chunked_body_is_reassembled(make_server):
    h = make_server()
    c = h.connect()
    c.send(
        b"POST /c HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert c.response()[2] == b"POST /c 11"
    assert h.app.requests[0].body == b"hello world"


def test_keep_alive_serves_several_requests_on_one_connection(make_server):
    h = make_server()
    c = h.connect()
    for i in range(5):
        c.send(request("GET", f"/r{i}"))
        assert c.response()[2] == f"GET /r{i} 0".encode()
    assert h.server.accepted == 1
    assert {r.connection for r in h.app.requests} == {h.app.requests[0].connection}


def test_pipelined_requests_are_answered_in_order_after_a_delayed_first(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("GET", "/later/1") + request("POST", "/now", b"abc") + request("GET", "/n2"))
    h.wait_parked(1)
    # The next requests are not parsed while the first answer is pending.
    time.sleep(0.05)
    assert [r.target for r in h.app.requests] == ["/later/1"]
    h.release(0, b"first")
    assert c.response()[2] == b"first"
    assert c.response()[2] == b"POST /now 3"
    assert c.response()[2] == b"GET /n2 0"


def test_body_over_the_limit_is_refused_413_before_it_is_read(make_server):
    h = make_server(max_body_bytes=100)
    c = h.connect()
    c.send(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 101\r\n\r\n" + b"a" * 101)
    status, headers, _ = c.response()
    assert status == 413
    assert headers["connection"] == "close"
    assert c.closed()
    assert h.app.requests == []


def test_chunked_body_over_the_limit_is_refused_413(make_server):
    h = make_server(max_body_bytes=10)
    c = h.connect()
    c.send(b"POST /x HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n8\r\n12345678\r\n")
    c.send(b"8\r\n12345678\r\n")
    assert c.response()[0] == 413
    assert c.closed()
    assert h.app.requests == []


def test_headers_too_large_are_refused_431(make_server):
    h = make_server(max_header_bytes=1024)
    c = h.connect()
    c.send(b"GET / HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 4000 + b"\r\n\r\n")
    assert c.response()[0] == 431
    assert c.closed()
    assert h.server.too_large == 1


def test_garbage_is_answered_400_and_closed(make_server):
    h = make_server()
    c = h.connect()
    c.send(b"\x16\x03\x01 this is not http\r\n\r\n")
    status, headers, body = c.response()
    assert status == 400 and body
    assert c.closed()
    assert h.server.protocol_errors == 1


def test_idle_keep_alive_connection_is_closed_after_idle_timeout(make_server):
    h = make_server(idle_timeout=0.2)
    c = h.connect()
    sent = time.monotonic()  # the idle clock starts when the server has answered
    c.send(request("GET", "/"))
    c.response()
    start = time.monotonic()
    assert c.closed()
    assert time.monotonic() - sent >= 0.15 and time.monotonic() - start < 2.0
    wait_for(lambda: h.server.connections == 0, "the connection to go")
    assert h.server.idle_closed == 1


def test_slowloris_partial_headers_get_408_after_request_timeout(make_server):
    h = make_server(request_timeout=0.2, idle_timeout=5.0)
    c = h.connect()
    start = time.monotonic()
    c.send(b"GET / HTTP/1.1\r\nhost: t\r\n")
    for _ in range(3):  # trickling bytes does not restart the clock
        time.sleep(0.05)
        c.send(b"x-a: b\r\n")
    assert c.response()[0] == 408
    assert c.closed()
    assert time.monotonic() - start < 2.0
    assert h.app.requests == []


def test_slow_body_gets_408(make_server):
    h = make_server(request_timeout=0.2)
    c = h.connect()
    c.send(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")
    assert c.response()[0] == 408
    assert c.closed()


def test_disconnect_mid_request_leaves_the_server_serving(make_server):
    h = make_server()
    c = h.connect()
    c.send(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")
    wait_for(lambda: h.server.connections == 1, "the connection")
    c.close()
    wait_for(lambda: h.server.connections == 0, "the connection to go")
    other = h.connect()
    other.send(request("GET", "/ok"))
    assert other.response()[2] == b"GET /ok 0"


def test_disconnect_before_a_delayed_answer_closes_its_responder(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("GET", "/later"))
    h.wait_parked(1)
    c.close()
    _request, responder = h.app.parked[0]
    wait_for(lambda: responder.closed, "the responder to close")
    h.release(0, b"too late")  # ignored, nothing breaks
    other = h.connect()
    other.send(request("GET", "/ok"))
    assert other.response()[2] == b"GET /ok 0"
    assert h.server.disconnects == 1


def test_responder_answers_once(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("GET", "/later") + request("GET", "/next"))
    h.wait_parked(1)
    h.release(0, b"one")
    h.release(0, b"two")
    assert c.response()[2] == b"one"
    assert c.response()[2] == b"GET /next 0"


def test_connections_over_max_are_refused(make_server):
    h = make_server(max_connections=2)
    a, b = h.connect(), h.connect()
    wait_for(lambda: h.server.connections == 2, "two connections")
    c = h.connect()
    try:
        status = c.response()[0]
    except (EOFError, ConnectionResetError):
        status = None
    assert status in (503, None)
    assert c.closed()
    assert h.server.refused_over_limit == 1
    for kept in (a, b):
        kept.send(request("GET", "/"))
        assert kept.response()[0] == 200
    a.close()
    wait_for(lambda: h.server.connections == 1, "a free slot")
    d = h.connect()
    d.send(request("GET", "/d"))
    assert d.response()[2] == b"GET /d 0"


def test_connection_close_from_the_client_is_honoured(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("GET", "/", extra="connection: close\r\n"))
    status, headers, _ = c.response()
    assert status == 200 and headers["connection"] == "close"
    assert c.closed()


def test_connection_close_from_the_handler_is_honoured(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("GET", "/close"))
    assert c.response()[2] == b"bye"
    assert c.closed()


def test_http_1_0_closes_after_the_response(make_server):
    h = make_server()
    c = h.connect()
    c.send(b"GET /old HTTP/1.0\r\n\r\n")
    assert c.response()[2] == b"GET /old 0"
    assert c.closed()


def test_expect_100_continue_within_limits_gets_100_then_the_answer(make_server):
    h = make_server(max_body_bytes=100)
    c = h.connect()
    c.send(b"POST /e HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
    assert c.response()[0] == 100
    c.send(b"hello")
    assert c.response()[2] == b"POST /e 5"


def test_expect_100_continue_over_the_limit_gets_413_without_100(make_server):
    h = make_server(max_body_bytes=100)
    c = h.connect()
    c.send(b"POST /e HTTP/1.1\r\nhost: t\r\ncontent-length: 500\r\nexpect: 100-continue\r\n\r\n")
    assert c.response()[0] == 413
    assert c.closed()


def test_head_gets_headers_without_a_body(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("HEAD", "/h") + request("GET", "/g"))
    status, headers, _ = c.response(head=True)
    # Content-Length of a HEAD answer describes the GET's body, none follows.
    assert status == 200 and headers["content-length"] == str(len(b"HEAD /h 0"))
    assert c.response()[2] == b"GET /g 0"


def test_large_response_reaches_a_slow_reader(make_server):
    h = make_server()
    h.app.big = 4 << 20
    c = h.connect(rcvbuf=4096)
    c.send(request("GET", "/big"))
    wait_for(lambda: bool(h.app.requests), "the request")
    conn = h.server._conns[h.app.requests[0].connection]
    # The kernel cannot take it all: the rest waits for POLLOUT.
    wait_for(lambda: conn._out_size > 0, "unsent output")
    received = b""
    while b"\r\n\r\n" not in received:
        received += c.sock.recv(4096)
    _head, body = received.split(b"\r\n\r\n", 1)
    chunks = [body]
    total = len(body)
    while total < h.app.big:
        chunk = c.sock.recv(4096)  # a slow reader: small reads
        assert chunk
        chunks.append(chunk)
        total += len(chunk)
    assert b"".join(chunks) == _big(h.app.big)
    c.send(request("GET", "/after"))
    assert c.response()[2] == b"GET /after 0"


def test_a_client_that_stops_reading_is_closed_after_idle_timeout(make_server):
    h = make_server(idle_timeout=0.3)
    h.app.big = 8 << 20
    c = h.connect(rcvbuf=4096)
    c.send(request("GET", "/big"))  # and never read
    wait_for(lambda: h.server.timed_out == 1, "the stalled answer to be given up")
    assert h.server.connections == 0


def test_a_pending_answer_is_not_timed_out_by_the_server(make_server):
    h = make_server(idle_timeout=0.2, request_timeout=0.2)
    c = h.connect()
    c.send(request("GET", "/later"))
    h.wait_parked(1)
    time.sleep(0.5)  # longer than both timeouts: the node's deadlines bound answers
    h.release(0, b"late but welcome")
    assert c.response()[2] == b"late but welcome"
    assert h.server.timed_out == 0


def test_read_ahead_is_bounded_while_an_answer_is_pending(make_server):
    h = make_server(max_buffered_bytes=4096)
    c = h.connect()
    c.send(request("GET", "/later"))
    h.wait_parked(1)
    conn = h.server._conns[h.app.requests[0].connection]
    count = 1000  # about 30 kB: more than the read-ahead, less than the kernel's buffers
    c.send(request("GET", "/p") * count)
    wait_for(lambda: not conn._mask & zmq.POLLIN, "reading to pause")
    assert 4096 <= len(conn._inbox) < 4096 + 65536
    h.release(0, b"first")
    assert c.response()[2] == b"first"
    for _ in range(count):
        assert c.response()[2] == b"GET /p 0"
    assert len(h.app.requests) == count + 1


def test_handler_exception_answers_500(make_server):
    h = make_server()

    def broken(request: HttpRequest, responder: Responder) -> None:
        raise RuntimeError("boom")

    h.server.on_request = broken
    c = h.connect()
    c.send(request("GET", "/"))
    assert c.response()[0] == 500


def test_bind_error_is_clear():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(BindError, match="cannot bind"):
            HttpServer(
                "127.0.0.1",
                holder.getsockname()[1],
                HttpLimits(max_body_bytes=10),
                lambda request, responder: None,
                lambda fd, mask, callback: None,
                lambda fd: None,
            )
    finally:
        holder.close()


def test_close_closes_pending_responders(make_server):
    h = make_server()
    c = h.connect()
    c.send(request("GET", "/later"))
    h.wait_parked(1)
    done = threading.Event()

    def close_server() -> None:
        h.server.close()
        done.set()

    h.loop.call(close_server)
    done.wait(DEADLINE)
    assert h.app.parked[0][1].closed
    assert c.closed()
