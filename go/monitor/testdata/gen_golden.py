"""Records how the Python node's HTTP monitor (zmqnode/monitor.py) answers a
set of raw requests, for monitor_test.go to send the same bytes to the Go
monitor and compare status, Content-Type and body.

Run from the repository root with the project's interpreter (its orjson and
numpy): .venv/bin/python go/monitor/testdata/gen_golden.py
"""

from __future__ import annotations

import base64
import json
import pathlib
import socket
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from zmqnode.monitor import Monitor  # noqa: E402

HERE = pathlib.Path(__file__).parent

STATUS = {"node": "127.0.0.1:9000", "role": "leader", "term": 3, "leader": "127.0.0.1:9000",
          "peers": ["127.0.0.1:9001"], "uptime_s": 1.5, "limits": {"max_request_bytes": 1 << 20}}
MODELS = [{"model_id": "m1", "task": "binary", "classes": ["no", "sí"]}]
METRICS = "# HELP zmqnode_raft_term Current Raft term.\n# TYPE zmqnode_raft_term gauge\nzmqnode_raft_term 3\n"

# A log whose end has what decoding and splitlines must agree on.
LOG = (
    b"".join(b"line %d: ordinary\n" % i for i in range(30))
    + b"utf-8: \xc3\xb1 \xe2\x82\xac \xf0\x9f\x98\x80\n"
    + b"bad: \xff \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf end\n"
    + b"crlf\r\nvt\x0bff\x0cfs\x1cnel\xc2\x85ls\xe2\x80\xa8tab\tquote\" back\\ ctl\x01\n"
    + b"no newline at the end"
)

PATHS = [
    "/status", "/status?x=1", "/status#frag", "/models", "/metrics", "/logs", "/logs?n=2",
    "/logs?n=abc", "/logs?n=0", "/logs?n=-5", "/logs?n=99999999999999999999", "/logs?n=%2B3",
    "/logs?n=+3", "/logs?n=%203%20", "/logs?n=", "/logs?n", "/logs?n=1_0", "/logs?n=1__0",
    "/logs?n=_1", "/logs?n=4&n=x", "/logs?m=1", "/logs?n=3;x", "/logs?n=%zz", "/logs?n=1.5",
    "/logs?n=7", "/", "/nope", "/status/", "/STATUS", "/stat%75s", "/a\"b\\c",
    "http://example.com/status", "/logs/?n=1", "/%C3%A9", "/caf\xe9",
]


def requests() -> list[bytes]:
    out = [f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1") for p in PATHS]
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        out.append(f"{method} /status HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode())
    out.append(b"GET /status HTTP/1.0\r\n\r\n")
    return out


def ask(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse(response: bytes) -> dict:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return {"status": status, "content_type": headers.get("content-type"),
            "body": base64.b64encode(body).decode()}


def main() -> None:
    (HERE / "worker.log").write_bytes(LOG)
    (HERE / "status.json").write_bytes(orjson.dumps(STATUS))
    (HERE / "models.json").write_bytes(orjson.dumps(MODELS))
    (HERE / "metrics.txt").write_text(METRICS)
    monitor = Monitor("n", "127.0.0.1", 0, str(HERE / "worker.log"), lambda: METRICS)
    monitor.views = {"status": STATUS, "models": MODELS}
    monitor.start()
    port = monitor.server.server_address[1]
    cases = []
    for raw in requests():
        cases.append({"request": base64.b64encode(raw).decode(), **parse(ask(port, raw))})
    monitor.stop()
    (HERE / "golden.json").write_text(json.dumps(cases, indent=1) + "\n")


if __name__ == "__main__":
    main()
