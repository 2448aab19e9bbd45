"""A bare HTTP/1.1 server on h11: the ceiling for ``bench predict --http``.

It runs the node's pattern and nothing else: one thread around one
``zmq.Poller`` watching non-blocking TCP sockets by file descriptor
(``Node._turn`` with ``transport/http.py``'s ``watch``), one h11
``Connection`` per socket, every request read whole (head and body events),
then answered with the same small JSON body (``ANSWER``, about the size of a
one-row infer answer), keep-alive. No routing, no token, no batching, no
timeouts: what is left is h11 and the poll loop, which every HTTP answer of
the node pays too.

Run it in its own process::

    python -m bench.http_echo 127.0.0.1 PORT
"""

from __future__ import annotations

import socket
import sys

import h11
import zmq

# About the size of the node's answer to a one-row XOR infer call.
ANSWER = (
    b'{"model_name":"echo","outputs":[{"name":"label","datatype":"INT64","shape":[1],'
    b'"data":[1]},{"name":"probabilities","datatype":"FP32","shape":[1,2],'
    b'"data":[0.0013,0.9987]}]}'
)
READ_CHUNK = 65536  # as transport/http.py reads
HEADERS = [
    ("content-type", "application/json"),
    ("server", "http-echo"),
    ("content-length", str(len(ANSWER))),
]


def serve(host: str, port: int) -> None:
    """Answer every request on ``host:port`` until killed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    listener.setblocking(False)
    poller = zmq.Poller()
    poller.register(listener.fileno(), zmq.POLLIN)
    conns: dict[int, tuple[socket.socket, h11.Connection]] = {}

    def close(fd: int) -> None:
        sock, _ = conns.pop(fd)
        poller.unregister(fd)
        sock.close()

    while True:
        for fd, _revents in poller.poll(1000):
            if fd == listener.fileno():
                for _ in range(64):
                    try:
                        sock, _addr = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = (sock, h11.Connection(h11.SERVER))
                    poller.register(sock.fileno(), zmq.POLLIN)
                continue
            sock, conn = conns[fd]
            try:
                data = sock.recv(READ_CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                close(fd)
                continue
            conn.receive_data(data)
            if not data:
                close(fd)
                continue
            if not _answer(sock, conn):
                close(fd)


def _answer(sock: socket.socket, conn: h11.Connection) -> bool:
    """Answer every complete request h11 holds; False when the connection ends."""
    body: list[bytes] = []
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return False
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return True
        if isinstance(event, h11.Data):
            body.append(bytes(event.data))  # the node joins the body too
        elif isinstance(event, h11.EndOfMessage):
            out = conn.send(h11.Response(status_code=200, headers=HEADERS))
            out += conn.send(h11.Data(data=ANSWER))  # type: ignore[operator]
            out += conn.send(h11.EndOfMessage())  # type: ignore[operator]
            try:
                sock.sendall(out)  # type: ignore[arg-type]
            except OSError:
                return False
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return False  # Connection: close or HTTP/1.0
            conn.start_next_cycle()
            body = []
        elif isinstance(event, h11.ConnectionClosed):
            return False


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.http_echo HOST PORT", file=sys.stderr)
        return 2
    try:
        serve(argv[0], int(argv[1]))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
