"""Fuzz every port of a real node with random and mutated messages.

A seeded mutator (``random.Random(seed)``) builds multipart messages from
valid templates (docs/PROTOCOL.md) and damages them: bytes flipped, fields
removed or given wrong types, huge/negative shapes, wrong dtypes, NaN values,
frames dropped, duplicated or added; plus wholly random frames. Every socket
of one node gets its own stream:

- client ROUTER (P): DEALER sockets; every message that can be answered (it
  starts with the empty delimiter) MUST get one reply (OK or ERROR with a
  code) within the timeout; PROGRESS messages are waited through;
- Raft ROUTER (P+1000), trainer PULL (P+3000), results PULL (P+4000): no
  reply expected;
- HTTP monitor (P-1000): structured requests (methods, paths, query
  strings, headers, bodies) and garbage over raw TCP; a well-formed request
  MUST get an HTTP response, never a 500 (tests/test_fuzz_ports.py adds
  hypothesis-generated ones).
- HTTP inference (P+5000, docs/HTTP.md): Open Inference Protocol requests
  with the bearer token (sometimes a wrong or no token), valid-looking infer
  bodies (JSON and binary tensors, also chunked) with mutated fields or
  bytes, pipelined requests; and garbage: random bytes, broken request
  lines, huge headers, bad Content-Length, chunked garbage, truncated
  requests, valid requests followed by junk. A well-formed request MUST get
  its HTTP response (pipelined ones all of theirs, in order), never a 500,
  and an error from the inference layer is ``{"error": ...}``.
- trainer PULL: ``reply_to`` is sometimes not an endpoint (``BAD_REPLY_TO``);
  the trainer must drop that job and keep its process.
- the CURVE handshake itself ("handshake"): raw TCP to every ZeroMQ port
  (client, raft, heartbeat, trainer, results) carrying junk, a ZMTP greeting
  for the wrong mechanism, or a CURVE greeting with a damaged or random
  HELLO/INITIATE; the node must drop the connection and keep serving.

Security is on as it is by default (LocalCluster makes the keys): to reach
the parsers behind CURVE and ZAP, the fuzzer is an authenticated but hostile
peer — the client stream uses a listed client key, the raft, trainer and
results streams a member's key (the node's own).

After each batch ``check_health`` asserts the node is alive, answers STATUS,
a real PREDICT (an XOR model trained first) and the same rows as an HTTP
infer correctly, its term did not
move (fuzzed Raft messages come from non-members), its trainer process is
the same one, and its RSS stays under a bound.

Replay: every run prints its seed; each socket's stream is drawn from
``Random(f"{seed}/{socket}")`` so one socket's stream replays alone.

Long run::

    python -m tests.fuzz_ports --messages 100000 [--seed N] [--batch 2000]
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import zmq

from harness.cluster import LocalCluster
from zmqnode.transport import security
from zmqnode.transport.security import ClientKeys

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.int64)
RSS_LIMIT_MIB = 300
REPLY_TIMEOUT_S = 30.0
SOCKETS = ("client", "raft", "trainer", "results", "http", "oip", "handshake")
# A small pool of TRAIN request ids: after the first training of each, the
# node answers valid retries from its registry (idempotency), so a fuzz run
# does not turn into thousands of trainings. A few fresh ids still train.
TRAIN_IDS = [f"fuzz-train-{i}" for i in range(3)]
NON_MEMBERS = ["127.0.0.1:1", "10.0.0.1:9000", "", "*", "x" * 300, "\u00e9\u2603"]

# reply_to values a SUB_TRAIN may carry besides the node's own results port:
# not ZeroMQ endpoints (connect raises), other transports, wildcards, valid
# endpoints where nobody listens. The trainer must drop or fail each job alone.
BAD_REPLY_TO = [
    "127.0.0.1:9000",
    "",
    "tcp://",
    "tcp://*:1",
    "tcp://127.0.0.1:0",
    "tcp://127.0.0.1:99999",
    "tcp://127.0.0.1:1",
    "tcp://-:5",
    "TCP://127.0.0.1:1",
    "udp://127.0.0.1:1",
    "ipc:///tmp/zmqnode-fuzz",
    "inproc://x",
    "tcp://[zz]:5",
    "tcp://a;b:5",
    "tcp://127.0.0.1:13000\x00",
    "x" * 3000,
]

WRONG_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    2**70,
    -(2**63) - 1,
    1.5,
    -0.0,
    1e308,
    "",
    "x",
    "1",
    "NaN",
    "float32",
    [],
    [1, 2],
    [[1]],
    {},
    {"a": 1},
    "\x00\xff",
    "A" * 2000,
]
DTYPES = ["float32", "float64", "int32", "int64", "float16", "uint8", "bool", ">f4", "", "object"]


@dataclass
class Stats:
    sent: int = 0
    answerable: int = 0
    rss_mib: list[float] = field(default_factory=list)  # after each batch
    replied: int = 0
    progress: int = 0
    outcomes: Counter = field(default_factory=Counter)

    def merge(self, other: Stats) -> None:
        self.sent += other.sent
        self.answerable += other.answerable
        self.replied += other.replied
        self.progress += other.progress
        self.outcomes.update(other.outcomes)
        self.rss_mib += other.rss_mib


# --------------------------------------------------------------------------
# Generation


def _arr(a: np.ndarray, frame: int) -> tuple[dict[str, Any], bytes]:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "frame": frame}, a.astype(
        a.dtype.newbyteorder("<")
    ).tobytes()


class Mutator:
    def __init__(self, rng: random.Random, model_id: str, node_id: str) -> None:
        self.rng = rng
        self.model_id = model_id
        self.node_id = node_id
        port = int(node_id.rsplit(":", 1)[1])
        self.reply_to = f"tcp://127.0.0.1:{port + 4000}"

    # -- primitives ------------------------------------------------------
    def rand_bytes(self, hi: int = 64) -> bytes:
        r = self.rng
        n = r.choice([0, 1, 2, r.randrange(hi + 1), r.randrange(hi + 1)])
        return r.randbytes(n)

    def rand_frames(self) -> list[bytes]:
        return [self.rand_bytes(256) for _ in range(self.rng.randrange(1, 6))]

    def wrong_value(self) -> Any:
        return self.rng.choice(WRONG_VALUES)

    def rand_id(self) -> str:
        return f"fz{self.rng.getrandbits(48):x}"

    def rows(self, n: int, cols: int, nan: bool = False) -> np.ndarray:
        a = np.array(
            [
                [self.rng.choice([0.0, 1.0, self.rng.uniform(-3, 3)]) for _ in range(cols)]
                for _ in range(n)
            ],
            dtype=np.float32,
        ).reshape(n, cols)
        if nan and a.size:
            a.flat[self.rng.randrange(a.size)] = self.rng.choice([np.nan, np.inf, -np.inf])
        return a

    # -- templates -------------------------------------------------------
    def client_template(self) -> tuple[dict[str, Any], list[bytes]]:
        r = self.rng
        kind = r.choice(
            ["STATUS", "LIST", "INFO", "PREDICT", "PREDICT", "TRAIN", "IMPORT", "OTHER"]
        )
        rid = self.rand_id()
        if kind in ("STATUS", "LIST"):
            return {"v": 1, "type": kind, "id": rid}, []
        if kind == "INFO":
            mid = r.choice([self.model_id, "m-nope", self.model_id[:-1]])
            return {"v": 1, "type": "INFO", "id": rid, "model_id": mid}, []
        if kind == "PREDICT":
            x = self.rows(
                r.choice([1, 1, 2, 4, 17]), r.choice([2, 2, 2, 1, 3]), nan=r.random() < 0.2
            )
            desc, blob = _arr(x, 0)
            mid = self.model_id if r.random() < 0.85 else r.choice(["nope", "", "../../etc/passwd"])
            return {"v": 1, "type": "PREDICT", "id": rid, "model_id": mid, "inputs": desc}, [blob]
        if kind == "TRAIN":
            n = r.choice([4, 4, 8])
            x = self.rows(n, 2, nan=r.random() < 0.2)
            y = np.array([r.randrange(2) for _ in range(n)], dtype=np.int64)
            xd, xb = _arr(x, 0)
            yd, yb = _arr(y, 1)
            tid = r.choice(TRAIN_IDS) if r.random() < 0.97 else rid
            options = {"epochs": r.choice([1, 2]), "hidden_layers": [r.choice([1, 2, 4])]}
            return {
                "v": 1,
                "type": "TRAIN",
                "id": tid,
                "inputs": xd,
                "outputs": yd,
                "options": options,
                "timeout_ms": 5000,
            }, [xb, yb]
        if kind == "IMPORT":
            return {"v": 1, "type": "IMPORT", "id": rid, "filename": "f.bin", "size_bytes": 8}, [
                b"ZMQN" + self.rand_bytes(64)
            ]
        return {
            "v": 1,
            "type": r.choice(["SUB_TRAIN", "raft.vote", "predict", "", "X" * 100]),
            "id": rid,
        }, []

    def raft_template(self) -> tuple[dict[str, Any], list[bytes]]:
        r = self.rng
        kind = r.choice(
            [
                "pre_vote",
                "pre_vote_resp",
                "vote",
                "vote_resp",
                "append",
                "append_resp",
                "heartbeat",
                "heartbeat_resp",
                "snapshot",
                "timeout_now",
                "read_index",
                "read_index_resp",
            ]
        )
        h: dict[str, Any] = {
            "v": 1,
            "id": "",
            "type": "raft." + kind,
            "src": r.choice(NON_MEMBERS),
            "dst": r.choice([self.node_id, self.node_id, "*"]),
            "term": r.choice([0, 1, 5, 1000, 2**63 - 1]),
            "log_index": r.choice([0, 1, 3, 2**40]),
            "log_term": r.choice([0, 1, 9]),
            "commit": r.choice([0, 1, 10**6]),
            "index": r.choice([0, 7]),
            "reject_hint": 0,
            "context": r.randrange(100),
            "reject": r.random() < 0.5,
            "force": r.random() < 0.2,
            "read_ctx": "",
            "entries": [],
            "snapshot": None,
        }
        blobs: list[bytes] = []
        if kind == "append":
            for i in range(r.randrange(4)):
                h["entries"].append(
                    {
                        "index": h["log_index"] + 1 + i,
                        "term": h["term"],
                        "kind": r.choice(["noop", "command"]),
                    }
                )
                blobs.append(self.rand_bytes(128))
        if kind == "snapshot":
            h["snapshot"] = {"index": r.randrange(100), "term": h["term"]}
            blobs.append(self.rand_bytes(512))
        return h, blobs

    def trainer_template(self) -> tuple[dict[str, Any], list[bytes]]:
        r = self.rng
        params = np.array(
            [r.uniform(-1, 1) for _ in range(r.choice([0, 3, 9, 17]))], dtype=np.float32
        )
        pd, pb = _arr(params, 0)
        h: dict[str, Any] = {
            "v": 1,
            "type": "SUB_TRAIN",
            "id": self.rand_id(),
            "job": r.choice(["fuzzjob", self.rand_id()]),
            "round": r.randrange(3),
            "chunk": r.randrange(3),
            # Results of fuzzed jobs go to this node's results PULL (it ignores
            # jobs it does not lead), or somewhere that is not an endpoint.
            "reply_to": self.reply_to if r.random() < 0.85 else r.choice(BAD_REPLY_TO),
            "options": {"hidden_layers": [2], "epochs": 1},
            "params": pd,
        }
        blobs = [pb]
        if r.random() < 0.6:
            x = self.rows(4, 2, nan=r.random() < 0.2)
            y = np.array([0, 1, 1, 0], dtype=np.int64)
            h["x"], xb = _arr(x, 1)
            h["y"], yb = _arr(y, 2)
            blobs += [xb, yb]
        return h, blobs

    def results_template(self) -> tuple[dict[str, Any], list[bytes]]:
        r = self.rng
        params = np.array([r.uniform(-1, 1) for _ in range(r.choice([0, 9]))], dtype=np.float32)
        pd, pb = _arr(params, 0)
        h: dict[str, Any] = {
            "v": 1,
            "type": "SUB_TRAIN_RESULT",
            "id": self.rand_id(),
            "job": r.choice(["fuzzjob", self.rand_id(), TRAIN_IDS[0]]),
            "round": r.randrange(3),
            "chunk": r.randrange(3),
            "trainer": r.choice([self.node_id, *NON_MEMBERS]),
            "n_samples": r.choice([0, 4, -1, 2**62]),
            "loss": r.choice([0.1, float("nan"), float("inf")]) if r.random() < 0.3 else 0.25,
            "params": pd,
        }
        if r.random() < 0.2:
            h["error"] = "boom"
        if r.random() < 0.2:
            h["missing_data"] = True
        return h, [pb]

    # -- mutation --------------------------------------------------------
    def mutate_value(self, value: Any, depth: int = 0) -> Any:
        """Damage one field: wrong type, or a structured change for arrays."""
        r = self.rng
        if isinstance(value, dict) and value and depth < 3 and r.random() < 0.7:
            value = dict(value)
            key = r.choice(list(value))
            if key == "shape" and r.random() < 0.7:
                value["shape"] = r.choice(
                    [
                        [2**40, 2**40],
                        [-1, 2],
                        [4, -2],
                        [0, 2],
                        [2**63],
                        [1] * 9,
                        [1.5, 2],
                        ["4", 2],
                        [True, 2],
                        [],
                        [10**6, 10**6, 10**6],
                    ]
                )
            elif key == "dtype" and r.random() < 0.7:
                value["dtype"] = r.choice(DTYPES)
            elif key == "frame" and r.random() < 0.7:
                value["frame"] = r.choice([-1, 1, 2, 5, 2**63, None, "0"])
            elif r.random() < 0.2:
                del value[key]
            else:
                value[key] = self.mutate_value(value[key], depth + 1)
            return value
        if isinstance(value, list) and value and depth < 3 and r.random() < 0.5:
            value = list(value)
            i = r.randrange(len(value))
            value[i] = self.mutate_value(value[i], depth + 1)
            return value
        if isinstance(value, bool):
            return r.choice([not value, 0, 1, "true", None])
        if isinstance(value, int) and r.random() < 0.5:
            return r.choice(
                [
                    -value,
                    value + 1,
                    -1,
                    2**63,
                    2**64,
                    2**1000 if r.random() < 0.1 else 0,
                    value * 1.0,
                ]
            )
        if isinstance(value, str) and r.random() < 0.5:
            return r.choice([value[:-1], value + "\x00", value.upper(), "", value * 50])
        return self.wrong_value()

    def mutate_header(self, h: dict[str, Any]) -> dict[str, Any]:
        r = self.rng
        h = dict(h)
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            op = r.random()
            keys = list(h)
            if op < 0.25 and keys:
                del h[r.choice(keys)]
            elif op < 0.8 and keys:
                k = r.choice(keys)
                h[k] = self.mutate_value(h[k])
            elif op < 0.9:
                h[r.choice(["extra", "zz", "status", "code", "node"])] = self.wrong_value()
            else:
                h[r.choice(["v", "type", "id"])] = self.wrong_value()
        return h

    def encode_header(self, h: dict[str, Any]) -> bytes:
        try:
            return orjson.dumps(h)
        except (TypeError, orjson.JSONEncodeError):
            # 2**70 and the like: not representable by orjson; use stdlib json
            import json

            return json.dumps(h, allow_nan=True).encode()

    def mutate_frames(self, frames: list[bytes]) -> list[bytes]:
        r = self.rng
        frames = list(frames)
        for _ in range(r.choice([1, 1, 2])):
            op = r.randrange(8)
            if not frames:
                frames.append(self.rand_bytes())
                continue
            i = r.randrange(len(frames))
            f = bytearray(frames[i])
            if op == 0 and f:  # flip bytes
                for _ in range(r.choice([1, 1, 2, 8])):
                    j = r.randrange(len(f))
                    f[j] ^= 1 << r.randrange(8)
                frames[i] = bytes(f)
            elif op == 1:  # truncate
                frames[i] = bytes(f[: r.randrange(len(f) + 1)])
            elif op == 2:  # extend
                frames[i] = bytes(f) + self.rand_bytes(32)
            elif op == 3:  # drop a frame
                del frames[i]
            elif op == 4:  # duplicate
                frames.insert(i, frames[i])
            elif op == 5:  # extra frame
                frames.insert(r.randrange(len(frames) + 1), self.rand_bytes(64))
            elif op == 6 and len(frames) > 1:  # swap
                j = r.randrange(len(frames))
                frames[i], frames[j] = frames[j], frames[i]
            else:  # overwrite with random bytes
                frames[i] = self.rand_bytes(128)
        return frames

    def message(self, template: str) -> list[bytes]:
        """A body (no envelope): valid template, mutated header or frames, or random."""
        r = self.rng
        x = r.random()
        if x < 0.1:
            return self.rand_frames()
        h, blobs = getattr(self, template + "_template")()
        if x < 0.55:
            h = self.mutate_header(h)
        body = [self.encode_header(h), *blobs]
        if x >= 0.55 and x < 0.9:
            body = self.mutate_frames(body)
        elif x >= 0.95:
            body.extend(self.rand_bytes() for _ in range(r.randrange(1, 4)))  # extra frames
        if not body:
            body = [self.rand_bytes()]
        if r.random() < 0.002:
            body[0] = b'{"v":1,"type":"STATUS","id":"big","pad":"' + b"a" * (1 << 20) + b'"}'
        return body


# --------------------------------------------------------------------------
# Senders


def fuzz_client(
    node_id: str,
    n: int,
    rng: random.Random,
    model_id: str,
    concurrency: int = 8,
    keys: ClientKeys | None = None,
) -> Stats:
    """``n`` messages to the client ROUTER; every answerable one must be answered."""
    mut = Mutator(rng, model_id, node_id)
    host, port = node_id.rsplit(":", 1)
    ctx = zmq.Context.instance()
    stats = Stats()
    socks = []
    for _ in range(concurrency):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        security.make_client(s, keys)
        s.connect(f"tcp://{host}:{port}")
        socks.append(s)
    junk = ctx.socket(zmq.DEALER)  # messages without a delimiter: no reply expected
    junk.setsockopt(zmq.LINGER, 0)
    security.make_client(junk, keys)
    junk.connect(f"tcp://{host}:{port}")
    pending: dict[zmq.Socket, tuple[list[bytes], float, str | None]] = {}
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    idle = list(socks)
    try:
        while stats.sent < n or pending:
            while idle and stats.sent < n:
                body = mut.message("client")
                stats.sent += 1
                if rng.random() < 0.1:
                    junk.send_multipart(
                        body if body[0] else [b"x", *body]
                    )  # never with delimiter first
                    continue
                s = idle.pop()
                msg = [b"", *body]
                sent_id = _readable_id(body)
                s.send_multipart(msg)
                stats.answerable += 1
                pending[s] = (msg, time.monotonic() + REPLY_TIMEOUT_S, sent_id)
            events = dict(poller.poll(100))
            for s in list(pending):
                msg, deadline, sent_id = pending[s]
                if s in events:
                    reply = s.recv_multipart()
                    header = _check_reply(reply, msg, sent_id)
                    if header["status"] == "PROGRESS":
                        stats.progress += 1
                        pending[s] = (msg, time.monotonic() + REPLY_TIMEOUT_S, sent_id)
                        continue
                    stats.replied += 1
                    stats.outcomes[
                        f"{header.get('type')!s:.20}:{header.get('code') or header['status']}"
                    ] += 1
                    del pending[s]
                    idle.append(s)
                elif time.monotonic() > deadline:
                    raise AssertionError(
                        f"no reply within {REPLY_TIMEOUT_S}s to client message {_show(msg)}"
                    )
            while junk.poll(0):
                junk.recv_multipart()  # a message with a delimiter further in may be answered
    finally:
        for s in [*socks, junk]:
            s.close(0)
    return stats


def _readable_id(body: list[bytes]) -> str | None:
    try:
        h = orjson.loads(body[0])
    except (orjson.JSONDecodeError, IndexError):
        return None
    if isinstance(h, dict) and isinstance(h.get("id"), str) and 0 < len(h["id"]) <= 128:
        return h["id"]
    return None


def _check_reply(reply: list[bytes], msg: list[bytes], sent_id: str | None) -> dict[str, Any]:
    assert len(reply) >= 2 and reply[0] == b"", f"bad reply envelope {reply[:2]!r} to {_show(msg)}"
    header = orjson.loads(reply[1])
    status = header.get("status")
    assert status in ("OK", "ERROR", "PROGRESS"), f"reply {header!r} to {_show(msg)}"
    if status == "ERROR":
        code = header.get("code")
        assert isinstance(code, str) and code, f"ERROR without a code: {header!r} to {_show(msg)}"
        assert isinstance(header.get("message"), str), f"ERROR without a message: {header!r}"
    if sent_id is not None:
        assert header.get("id") in (sent_id, ""), (
            f"reply id {header.get('id')!r} for request id {sent_id!r}: {_show(msg)}"
        )
    return header


def _show(frames: list[bytes]) -> str:
    return repr([f[:300] + (b"..." if len(f) > 300 else b"") for f in frames])


def fuzz_push(
    endpoint: str,
    n: int,
    rng: random.Random,
    template: str,
    node_id: str,
    kind: int,
    keys: ClientKeys | None = None,
) -> Stats:
    """``n`` one-way messages (DEALER to a ROUTER or PUSH to a PULL)."""
    mut = Mutator(rng, "m-none", node_id)
    ctx = zmq.Context.instance()
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 2000)
    s.setsockopt(zmq.SNDHWM, 100000)
    security.make_client(s, keys)
    s.connect(endpoint)
    stats = Stats()
    try:
        for _ in range(n):
            body = mut.message(template)
            s.send_multipart(body)
            stats.sent += 1
            if stats.sent % 200 == 0:
                time.sleep(0.01)  # let the node keep up; the queue is not what is tested
    finally:
        s.close(2000)
    return stats


HTTP_METHODS = [
    "GET",
    "GET",
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "BREW",
    "get",
    "",
]
HTTP_PATHS = [
    "/status",
    "/models",
    "/logs",
    "/metrics",
    "/",
    "/nope",
    "//status",
    "/status/",
    "/models/x",
]


HTTP_HEADERS = [
    "Accept",
    "Accept-Encoding",
    "User-Agent",
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "Expect",
    "Cookie",
    "Range",
    "If-None-Match",
    "X-Forwarded-For",
    "X-Fuzz",
]
HTTP_VALUES = [
    "*/*",
    "application/json",
    "gzip, deflate",
    "chunked",
    "100-continue",
    "bytes=0-10",
    "0",
    "-1",
    "99999999999999999999",
    "",
    " ",
    "\u00e9",
    "a" * 1000,
]


def zmtp_greeting(mechanism: bytes, as_server: bool = False, version: bytes = b"\x03\x00") -> bytes:
    """ZMTP 3.x greeting (RFC 23/ZMTP): signature, version, mechanism, as-server, filler."""
    return (
        b"\xff"
        + b"\x00" * 8
        + b"\x7f"
        + version
        + mechanism.ljust(20, b"\x00")
        + bytes([as_server])
        + b"\x00" * 31
    )


def _command(name: bytes, body: bytes) -> bytes:
    data = bytes([len(name)]) + name + body
    if len(data) < 256:
        return b"\x04" + bytes([len(data)]) + data
    return b"\x06" + len(data).to_bytes(8, "big") + data


def handshake_junk(rng: random.Random) -> bytes:
    """What a stranger may send a CURVE server instead of a real handshake."""
    kind = rng.randrange(8)
    if kind == 0:  # not ZMTP at all
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:  # plaintext peer (NULL), then a READY and a message
        return zmtp_greeting(b"NULL") + _command(b"READY", b"\x0bSocket-Type\x00\x00\x00\x06DEALER")
    if kind == 2:  # PLAIN with a password guess
        return zmtp_greeting(b"PLAIN") + _command(b"HELLO", b"\x04user\x08password")
    if kind == 3:  # CURVE HELLO of the right size, random keys and box (RFC 26/CurveZMQ)
        return zmtp_greeting(b"CURVE") + _command(b"HELLO", b"\x01\x00" + rng.randbytes(192))
    if kind == 4:  # CURVE HELLO of a wrong size
        return zmtp_greeting(b"CURVE") + _command(b"HELLO", rng.randbytes(rng.randrange(0, 400)))
    if kind == 5:  # CURVE, then a command that is not HELLO
        name = rng.choice([b"INITIATE", b"MESSAGE", b"READY", b"ERROR", b"WELCOME", b"X" * 200])
        return zmtp_greeting(b"CURVE") + _command(name, rng.randbytes(rng.randrange(0, 300)))
    if kind == 6:  # greeting damaged: wrong version, or claiming to be the server
        version = rng.choice([b"\x02\x00", b"\x03\x09", b"\xff\xff", b"\x01\x00"])
        greeting = zmtp_greeting(b"CURVE", as_server=rng.random() < 0.5, version=version)
        return greeting + rng.randbytes(64)
    greeting = zmtp_greeting(b"CURVE")  # cut short anywhere
    return greeting[: rng.randrange(1, len(greeting))]


def fuzz_handshake(ports: list[int], n: int, rng: random.Random) -> Stats:
    """``n`` raw TCP connections, each carrying ``handshake_junk`` to one of
    the node's ZeroMQ ports; whatever comes back is read and the connection
    closed. Outcomes count how the node ended them (closed, or left open)."""
    stats = Stats()
    for _ in range(n):
        port = rng.choice(ports)
        stats.sent += 1
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.settimeout(0.05)
            try:
                conn.sendall(handshake_junk(rng))
                got = b""
                while len(got) < 4096:
                    chunk = conn.recv(4096)
                    if not chunk:
                        stats.outcomes["closed"] += 1
                        break
                    got += chunk
            except TimeoutError:
                stats.outcomes["open"] += 1
            except OSError:
                stats.outcomes["reset"] += 1
    return stats


def http_request(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
) -> bytes:
    """One well-formed HTTP/1.1 request (it always closes the connection, so an
    unread body cannot be taken for a second request)."""
    target = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    lines = [f"{method} {target} HTTP/1.1", "Host: x", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def random_http_request(rng: random.Random) -> bytes:
    """A structured request: method, path, query string, headers and body."""
    headers = [
        (rng.choice(HTTP_HEADERS), rng.choice(HTTP_VALUES))
        for _ in range(rng.choice([0, 0, 1, 2, 5]))
    ]
    # Content-Length and Transfer-Encoding are the framing; ours comes last.
    headers = [(k, v) for k, v in headers if k not in ("Content-Length", "Transfer-Encoding")]
    body = rng.choice([b"", b"", b"{}", b'{"n": 1}', rng.randbytes(rng.randrange(1, 2000))])
    query = [(_tok(rng), _tok(rng)) for _ in range(rng.choice([0, 0, 1, 2, 3]))]
    if rng.random() < 0.2:
        query.append(("n", rng.choice(["0", "-5", "10", "99999999", "x", "", "1e3"])))
    return http_request(rng.choice(HTTP_METHODS[:8]), rng.choice(HTTP_PATHS), query, headers, body)


def check_http_response(raw: bytes, got: bytes) -> str:
    """A well-formed request must get an HTTP response with a sane status; the status."""
    assert got.startswith(b"HTTP/"), f"no HTTP response to {raw[:200]!r}: {got[:200]!r}"
    status = got[9:12].decode(errors="replace")
    assert status.isdigit() and 100 <= int(status) < 600 and status != "500", (
        f"HTTP {status} to {raw[:200]!r}: {got[:300]!r}"
    )
    return status


def fuzz_http(port: int, n: int, rng: random.Random) -> Stats:
    """``n`` raw-socket HTTP requests; a well-formed one must get a response."""
    stats = Stats()
    for _ in range(n):
        well_formed = rng.random() < 0.6
        path = rng.choice(HTTP_PATHS)
        if rng.random() < 0.5:
            path += "?" + "&".join(f"{_tok(rng)}={_tok(rng)}" for _ in range(rng.randrange(1, 4)))
        if well_formed:
            raw = random_http_request(rng)
        else:
            choice = rng.randrange(5)
            if choice == 0:
                raw = rng.randbytes(rng.randrange(1, 300))
            elif choice == 1:
                version = rng.choice(["1.0", "1.1", "2", "9.9", "x"])
                raw = f"{rng.choice(HTTP_METHODS)} {path} HTTP/{version}\r\n".encode()
                raw += rng.randbytes(rng.randrange(50)) + b"\r\n\r\n"
            elif choice == 2:
                raw = f"GET /{'a' * rng.choice([100, 70000])} HTTP/1.1\r\n\r\n".encode()
            elif choice == 3:
                length = rng.choice([-1, 10, 10**12, "x"])
                raw = f"POST {path} HTTP/1.1\r\nContent-Length: {length}\r\n\r\nabc".encode()
            else:
                raw = (
                    b"GET /status HTTP/1.1\r\n"
                    + b"X: "
                    + b"y" * rng.choice([10, 70000])
                    + b"\r\n\r\n"
                )
        stats.sent += 1
        got = _http_exchange(port, raw, expect=well_formed)
        if well_formed:
            stats.answerable += 1
            stats.outcomes[check_http_response(raw, got)] += 1
            stats.replied += 1
        else:
            stats.outcomes[
                "garbage:" + (got[9:12].decode(errors="replace") if got else "closed")
            ] += 1
    return stats


def _tok(rng: random.Random) -> str:
    return "".join(rng.choice("abz09%_-.~+=[]") for _ in range(rng.randrange(0, 12)))


def _http_exchange(port: int, raw: bytes, expect: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(raw)
            if not expect:
                s.shutdown(socket.SHUT_WR)  # let a server waiting for more give up
        except OSError:
            return b""
        s.settimeout(10 if expect else 3)
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
                if not expect and sum(map(len, chunks)) >= 16:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


# --------------------------------------------------------------------------
# The HTTP inference port (Open Inference Protocol, docs/HTTP.md)

OIP_METHODS = ["GET", "GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]
OIP_DATATYPES = ["FP32", "FP32", "FP64", "FP16", "INT32", "INT64", "UINT8", "BOOL", "BYTES", "X"]
# Headers a well-formed request may add (not framing; no Expect: a 100 answer
# would be one more to count).
OIP_EXTRA_HEADERS = [
    h for h in HTTP_HEADERS if h not in ("Content-Length", "Transfer-Encoding", "Expect")
]
# Error statuses the transport (h11 layer) answers in text/plain, not JSON.
TRANSPORT_STATUSES = {"400", "408", "413", "431"}


class OipMutator:
    """Requests for the HTTP inference port, drawn from ``rng``: well-formed
    ones (which must be answered) and malformed ones (anything goes but a
    dead node). Field mutation reuses ``Mutator.mutate_value``."""

    def __init__(self, rng: random.Random, model_id: str, token: str | None) -> None:
        self.rng = rng
        self.model_id = model_id
        self.token = token
        self.mut = Mutator(rng, model_id, "127.0.0.1:1")

    def path(self) -> str:
        r = self.rng
        if r.random() < 0.1:  # not an OIP endpoint
            return r.choice(["/v2/repository/index", "/v1/models/x:predict", "/metrics"]) + (
                "/" + _tok(r)
            )
        mid = self.model_id
        if r.random() < 0.15:
            mid = r.choice(["m-nope", "", self.model_id[:-1], "%2e%2e", "a" * 300, "%C3%A9"])
        return r.choice(
            [
                "/v2/health/live",
                "/v2/health/ready",
                "/v2",
                "/v2/",
                f"/v2/models/{mid}",
                f"/v2/models/{mid}/ready",
                f"/v2/models/{mid}/infer",
                f"/v2/models/{mid}/infer",
                f"/v2/models/{mid}/infer",
                f"/v2/models/{mid}/versions/{r.choice(['1', '', 'x'])}/infer",
                f"/v2/models/{mid}/infer?{_tok(r)}={_tok(r)}",
            ]
        )

    def auth(self) -> list[tuple[str, str]]:
        r = self.rng
        x = r.random()
        if x < 0.8 and self.token:
            return [("Authorization", f"Bearer {self.token}")]
        if x < 0.9:
            return []
        return [
            (
                "Authorization",
                r.choice(["Bearer", "Bearer x", f"bearer {self.token}", f"Bearer {self.token}x"]),
            )
        ]

    def tensor(self) -> tuple[dict[str, Any], bytes]:
        """A valid infer request for the XOR model: (JSON document, binary
        tail); an empty tail means JSON data."""
        r = self.rng
        x = self.mut.rows(r.choice([1, 1, 2, 4, 9]), 2, nan=r.random() < 0.05)
        doc: dict[str, Any] = {"id": self.mut.rand_id()}
        tensor: dict[str, Any] = {"name": "inputs", "datatype": "FP32", "shape": list(x.shape)}
        tail = b""
        if r.random() < 0.5:
            tail = x.astype("<f4").tobytes()
            tensor["parameters"] = {"binary_data_size": len(tail)}
        else:
            tensor["data"] = x.ravel().tolist() if r.random() < 0.7 else x.tolist()
        doc["inputs"] = [tensor]
        if r.random() < 0.5:
            names = r.sample(["label", "probabilities"], r.choice([1, 2]))
            doc["outputs"] = [
                {"name": n, "parameters": {"binary_data": r.random() < 0.5}} for n in names
            ]
        if r.random() < 0.2:
            doc["parameters"] = {"binary_data_output": r.random() < 0.5}
        return doc, tail

    def infer_body(self) -> tuple[bytes, list[tuple[str, str]]]:
        """An infer body and its content headers: valid, or mutated."""
        r = self.rng
        doc, tail = self.tensor()
        x = r.random()
        if x < 0.3:
            pass  # valid
        elif x < 0.7:
            for _ in range(r.choice([1, 1, 2])):
                doc = self.mut.mutate_value(doc)
            if isinstance(doc, dict) and r.random() < 0.15:
                doc["inputs"] = [
                    {
                        "name": "inputs",
                        "datatype": r.choice(OIP_DATATYPES),
                        "shape": [1, 2],
                        "data": [r.choice([0, 1.5, -1, 300, "a", None, True]), 1],
                    }
                ]
        head = self.mut.encode_header(doc)  # any JSON value, not only objects
        headers: list[tuple[str, str]] = []
        if tail:
            length = len(head)
            if x >= 0.7 and r.random() < 0.5:
                length = r.choice([0, length - 1, length + 1, len(head) + len(tail) + 5])
            headers.append(("Inference-Header-Content-Length", str(length)))
        body = head + tail
        if x >= 0.7:
            body = b"".join(self.mut.mutate_frames([body]))
        if r.random() < 0.5:
            headers.append(
                ("Content-Type", r.choice(["application/json", "application/octet-stream", "x"]))
            )
        return body, headers

    def well_formed(self) -> tuple[bytes, list[str]]:
        """Complete requests (the last closes the connection) and their
        methods: each must get an answer, in order."""
        r = self.rng
        count = 1 if r.random() < 0.85 else r.randrange(2, 5)
        parts, methods = [], []
        for i in range(count):
            path = self.path()
            # Mostly the method the path takes, so most requests reach the parser.
            method = "POST" if "/infer" in path else r.choice(["GET", "GET", "HEAD"])
            if r.random() < 0.15:
                method = r.choice(OIP_METHODS)
            if count > 1 and method == "HEAD":
                method = "GET"  # keeps the pipelined answers easy to split
            headers = self.auth()
            body = b""
            if method == "POST" or r.random() < 0.1:
                body, content = self.infer_body()
                headers += content
            if r.random() < 0.3:
                headers += [
                    (r.choice(OIP_EXTRA_HEADERS), r.choice(HTTP_VALUES))
                    for _ in range(r.randrange(1, 4))
                ]
            chunked = bool(body) and r.random() < 0.15
            last = i == count - 1
            parts.append(oip_request(method, path, headers, body, last, chunked, r))
            methods.append(method)
        return b"".join(parts), methods

    def malformed(self) -> bytes:
        r = self.rng
        auth = "".join(f"{k}: {v}\r\n" for k, v in self.auth())
        infer = f"/v2/models/{self.model_id}/infer"
        kind = r.randrange(9)
        if kind == 0:  # garbage bytes
            return r.randbytes(r.randrange(1, 400))
        if kind == 1:  # broken request line
            line = r.choice(
                [
                    f"POST {infer} HTTP/{r.choice(['1.0', '2', '9.9', 'x', ''])}",
                    f"POST  {infer}  HTTP/1.1",
                    f"POST {infer}",
                    f"{r.choice(HTTP_METHODS)} {_tok(r)} HTTP/1.1 extra",
                    "GET /v2/health/live\x00 HTTP/1.1",
                    "\r\nGET / HTTP/1.1",
                    " " * r.randrange(1, 50),
                ]
            )
            return (line + "\r\n" + auth).encode() + r.randbytes(r.randrange(40)) + b"\r\n\r\n"
        if kind == 2:  # huge headers or target
            if r.random() < 0.5:
                name = "a" * r.choice([100, 20000, 70000])
                return f"GET /v2/models/{name} HTTP/1.1\r\n\r\n".encode()
            return (
                f"POST {infer} HTTP/1.1\r\n{auth}".encode()
                + b"X: "
                + b"y" * r.choice([10, 17000, 70000])
                + b"\r\n"
                + b"".join(b"H%d: v\r\n" % i for i in range(r.choice([0, 500, 3000])))
                + b"\r\n"
            )
        body, _ = self.infer_body()
        if kind == 3:  # bad Content-Length
            length = r.choice(
                ["-1", "x", "1e3", "10" * 20, "1, 2", " ", "0x10", str(len(body) + 50)]
            )
            extra = r.choice(["", f"Content-Length: {len(body)}\r\n"])
            return (
                f"POST {infer} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {length}\r\n{extra}\r\n"
            ).encode() + body
        if kind == 4:  # chunked garbage
            chunks = r.choice(
                [
                    b"zz\r\nabc\r\n0\r\n\r\n",
                    b"5\r\nabc\r\n0\r\n\r\n",
                    b"-1\r\n\r\n",
                    b"ffffffffffffffffff\r\n" + body,
                    b"%x\r\n" % len(body) + body + b"XX",
                    r.randbytes(r.randrange(1, 100)),
                ]
            )
            te = r.choice(["chunked", "gzip, chunked", "chunked, gzip", "identity", "x"])
            cl = r.choice(["", f"Content-Length: {len(body)}\r\n"])
            return (
                f"POST {infer} HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: {te}\r\n{cl}\r\n"
            ).encode() + chunks
        if kind == 5:  # a valid request followed by pipelined junk
            first = self.well_formed_keep_alive()
            return first + r.choice(
                [r.randbytes(r.randrange(1, 200)), b"GET / HTTP/1.1\r\n", b"\r\n\r\n" * 5]
            )
        if kind == 6:  # a request cut short
            raw = oip_request("POST", infer, self.auth(), body)
            return raw[: r.randrange(1, len(raw))]
        if kind == 7:  # header line damage
            line = r.choice(
                [
                    b"NoColon\r\n",
                    b" folded: x\r\n",
                    b"Bad Name: x\r\n",
                    b": empty\r\n",
                    b"X: \x00\x01\r\n",
                    b"X: a\rb\r\n",
                ]
            )
            return b"GET /v2 HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n"
        raw = bytearray(oip_request("POST", infer, self.auth(), body))  # bytes flipped anywhere
        for _ in range(r.choice([1, 2, 8])):
            raw[r.randrange(len(raw))] ^= 1 << r.randrange(8)
        return bytes(raw)

    def well_formed_keep_alive(self) -> bytes:
        body, headers = self.infer_body()
        path = f"/v2/models/{self.model_id}/infer"
        return oip_request("POST", path, self.auth() + headers, body, close=False)


def oip_request(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    close: bool = True,
    chunked: bool = False,
    rng: random.Random | None = None,
) -> bytes:
    """One well-formed HTTP/1.1 request; ``chunked`` sends the body in
    random-sized chunks (``rng``)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: x"]
    if close:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in headers]
    if chunked and body:
        assert rng is not None
        lines.append("Transfer-Encoding: chunked")
        pieces, i = [], 0
        while i < len(body):
            n = rng.randrange(1, max(2, len(body) // 2))
            piece = body[i : i + n]
            pieces.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
            i += n
        payload = b"".join(pieces) + b"0\r\n\r\n"
    else:
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + payload


def split_responses(got: bytes, methods: list[str]) -> list[tuple[str, dict[str, str], bytes]]:
    """(status, headers, body) of each whole response in ``got`` to requests
    of ``methods`` (Content-Length framing, as the node sends; none for HEAD),
    in order; a cut-off tail is left out."""
    out: list[tuple[str, dict[str, str], bytes]] = []
    for method in methods:
        head, sep, rest = got.partition(b"\r\n\r\n")
        if not sep or not head.startswith(b"HTTP/"):
            break
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        if len(rest) < length:
            break
        out.append((lines[0][9:12], headers, rest[:length]))
        got = rest[length:]
    return out


def check_oip_answer(raw: bytes, status: str, headers: dict[str, str], body: bytes) -> None:
    """An answer to a well-formed request: a sane status, never 500; an error
    from the inference layer is {"error": "..."}."""
    where = f"{raw[:300]!r}"
    assert status.isdigit() and 100 <= int(status) < 600 and status != "500", (
        f"HTTP {status} to {where}: {body[:300]!r}"
    )
    if int(status) < 400 or not body:  # HEAD: no body
        return
    if headers.get("content-type", "").startswith("text/plain"):
        assert status in TRANSPORT_STATUSES, f"text/plain {status} to {where}: {body[:300]!r}"
        return
    doc = orjson.loads(body)
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], (
        f"HTTP {status} to {where} without an error message: {body[:300]!r}"
    )


def fuzz_oip(port: int, n: int, rng: random.Random, model_id: str, token: str | None) -> Stats:
    """``n`` connections to the HTTP inference port, each carrying well-formed
    requests (every one answered) or malformed bytes."""
    mut = OipMutator(rng, model_id, token)
    stats = Stats()
    for _ in range(n):
        stats.sent += 1
        if rng.random() < 0.55:
            raw, methods = mut.well_formed()
            got = _http_exchange(port, raw, expect=True)
            answers = split_responses(got, methods)
            assert len(answers) == len(methods), (
                f"{len(answers)} answers to {len(methods)} requests {raw[:600]!r}: {got[:600]!r}"
            )
            for status, headers, body in answers:
                check_oip_answer(raw, status, headers, body)
                stats.outcomes[status] += 1
            stats.answerable += 1
            stats.replied += 1
        else:
            got = _http_exchange(port, mut.malformed(), expect=False)
            stats.outcomes[
                "garbage:" + (got[9:12].decode(errors="replace") if got else "closed")
            ] += 1
    return stats


# --------------------------------------------------------------------------
# The node under test


class FuzzTarget:
    """One node (LocalCluster n=1), an XOR model, and the health check."""

    def __init__(self, workdir: Path, rss_limit_mib: int = RSS_LIMIT_MIB) -> None:
        self.cluster = LocalCluster(workdir, n=1)
        self.rss_limit_mib = rss_limit_mib
        self.node_id = self.cluster.ids[0]
        self.port = self.cluster.ports[0]
        self.client_keys = self.cluster.client_keys()
        self.member_keys = self.cluster.client_keys("node0")

    def start(self) -> None:
        self.cluster.start()
        self.cluster.leader()
        with self.cluster.client(self.node_id, timeout=30) as c:
            self.model_id = c.train(XOR_X, XOR_Y, options={"hidden_layers": [8], "epochs": 300})[
                "model_id"
            ]
            assert c.predict(self.model_id, XOR_X).ravel().tolist() == [0, 1, 1, 0], (
                "XOR not learned"
            )
        keys = self.cluster.keys
        self.http_token = (keys / "http.token").read_text().strip() if keys else None
        self.pid = self.cluster.procs[self.node_id].pid
        self.term = self.cluster.status(self.node_id)["term"]
        self.trainer_pids = _children(self.pid)

    def stop(self) -> None:
        self.cluster.stop()

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def check_health(self, after: str, train: bool = False) -> dict[str, Any]:
        proc = self.cluster.procs[self.node_id]
        assert proc.poll() is None, (
            f"node exited ({proc.returncode}) after {after}:\n"
            + self.cluster.output(self.node_id)[-3000:]
        )
        with self.cluster.client(self.node_id, timeout=10, retries=1) as c:
            st = c.status()
            out = c.predict(self.model_id, XOR_X).ravel().tolist()
        assert out == [0, 1, 1, 0], f"PREDICT wrong after {after}: {out}"
        labels = self.http_infer()
        assert labels == [0, 1, 1, 0], f"HTTP infer wrong after {after}: {labels}"
        if train:  # the trainer still trains: a fresh TRAIN goes through it
            with self.cluster.client(self.node_id, timeout=30, retries=0) as c:
                fields = c.train(XOR_X, XOR_Y, options={"hidden_layers": [4], "epochs": 5})
            assert fields.get("model_id"), f"TRAIN failed after {after}: {fields}"
        assert st["role"] == "leader" and st["term"] == self.term, (
            f"term/role moved after {after}: {st['role']} term {st['term']} (was {self.term})"
        )
        assert st.get("trainer") not in ("down",), f"trainer down after {after}: {st}"
        assert _children(self.pid) == self.trainer_pids, (
            f"trainer process changed after {after}: {self.trainer_pids} -> {_children(self.pid)}"
        )
        rss = self.rss_mib()
        assert rss < self.rss_limit_mib, f"node RSS {rss:.0f} MiB after {after}"
        return {"rss_mib": round(rss, 1), "models": st.get("models"), "trainer": st.get("trainer")}

    def http_infer(self) -> list[Any]:
        """The XOR rows through the HTTP inference port: the labels."""
        body = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "inputs",
                        "datatype": "FP32",
                        "shape": [4, 2],
                        "data": XOR_X.ravel().tolist(),
                    }
                ],
                "outputs": [{"name": "label"}],
            }
        )
        auth = [("Authorization", f"Bearer {self.http_token}")] if self.http_token else []
        path = f"/v2/models/{self.model_id}/infer"
        raw = oip_request("POST", path, auth, body)
        got = _http_exchange(self.port + 5000, raw, expect=True)
        answers = split_responses(got, ["POST"])
        assert answers and answers[0][0] == "200", f"HTTP infer answered {got[:500]!r}"
        (label,) = orjson.loads(answers[0][2])["outputs"]
        return label["data"]

    def fuzz(self, sock: str, n: int, rng: random.Random) -> Stats:
        p = self.port
        if sock == "client":
            return fuzz_client(self.node_id, n, rng, self.model_id, keys=self.client_keys)
        if sock == "raft":
            return fuzz_push(
                f"tcp://127.0.0.1:{p + 1000}",
                n,
                rng,
                "raft",
                self.node_id,
                zmq.DEALER,
                self.member_keys,
            )
        if sock == "trainer":
            return fuzz_push(
                f"tcp://127.0.0.1:{p + 3000}",
                n,
                rng,
                "trainer",
                self.node_id,
                zmq.PUSH,
                self.member_keys,
            )
        if sock == "results":
            return fuzz_push(
                f"tcp://127.0.0.1:{p + 4000}",
                n,
                rng,
                "results",
                self.node_id,
                zmq.PUSH,
                self.member_keys,
            )
        if sock == "http":
            return fuzz_http(p - 1000, n, rng)
        if sock == "oip":
            return fuzz_oip(p + 5000, n, rng, self.model_id, self.http_token)
        if sock == "handshake":
            return fuzz_handshake([p, p + 1000, p + 2000, p + 3000, p + 4000], n, rng)
        raise ValueError(sock)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return sorted(int(x) for x in text.split())


def run(
    target: FuzzTarget,
    seed: int,
    messages: dict[str, int],
    batch: int = 1000,
    log=print,
) -> dict[str, Stats]:
    """Fuzz each socket with its own seeded stream, checking health per batch."""
    totals = {s: Stats() for s in messages}
    rngs = {s: random.Random(f"{seed}/{s}") for s in messages}
    done = dict.fromkeys(messages, 0)
    batch_no = 0
    while any(done[s] < messages[s] for s in messages):
        for sock in messages:
            k = min(batch, messages[sock] - done[sock])
            if k <= 0:
                continue
            t0 = time.monotonic()
            st = target.fuzz(sock, k, rngs[sock])
            done[sock] += k
            totals[sock].merge(st)
            health = target.check_health(
                f"{sock} batch {batch_no} (seed {seed}, messages {done[sock] - k}..{done[sock]})"
            )
            totals[sock].rss_mib.append(health["rss_mib"])
            log(
                f"[seed {seed}] {sock}: {done[sock]}/{messages[sock]} "
                f"({time.monotonic() - t0:.1f}s) replied {st.replied}/{st.answerable} {health}"
            )
        batch_no += 1
    # One-way messages may still be queued when a batch's check runs: let
    # them drain, then check again, with a real TRAIN through the trainer.
    time.sleep(1.0)
    health = target.check_health(f"the last batches of {list(messages)} (seed {seed})", train=True)
    log(f"[seed {seed}] settled: {health}")
    return totals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=5000, help="messages per socket")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--sockets", default=",".join(SOCKETS))
    ap.add_argument("--rss-mib", type=int, default=RSS_LIMIT_MIB)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fuzz_ports seed {seed} (replay: --seed {seed})", flush=True)
    socks = [s for s in args.sockets.split(",") if s]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz_ports_") as tmp:
        target = FuzzTarget(Path(tmp), args.rss_mib)
        target.start()
        try:
            totals = run(
                target,
                seed,
                dict.fromkeys(socks, args.messages),
                args.batch,
                log=lambda m: print(m, flush=True),
            )
        finally:
            target.stop()
    for sock, st in totals.items():
        top = ", ".join(f"{k}={v}" for k, v in st.outcomes.most_common(12))
        print(
            f"{sock}: sent {st.sent}, answered {st.replied}/{st.answerable}, "
            f"progress {st.progress}; {top}"
        )
    # run() raises at the first dead node, unanswered message, new trainer
    # process or RSS over the bound: reaching here means none happened.
    rss = [r for st in totals.values() for r in st.rss_mib]
    print(
        f"summary: {sum(st.sent for st in totals.values())} messages, crashes 0 "
        f"(node and trainer processes unchanged), hangs 0 "
        f"({sum(st.replied for st in totals.values())} answerable all answered), "
        f"node RSS {rss[0]:.0f}..{max(rss):.0f} MiB over {len(rss)} checks "
        f"(bound {args.rss_mib} MiB)"
    )
    print(f"ok in {time.monotonic() - t0:.0f}s (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
