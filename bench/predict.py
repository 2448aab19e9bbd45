"""``python -m bench predict``: prediction throughput and latency.

One process keeps N requests in flight over DEALER sockets (one socket per
in-flight slot, up to 256 sockets; beyond that each socket pipelines several
requests) against one node or spread over several, and records each
request's latency. ``--baseline`` runs the same harness against a bare pyzmq
ROUTER echo server (the ceiling this machine allows for the pattern) in the
same run and prints our figures as ratios of it.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from zmqnode.transport import wire

MAX_SOCKETS = 256


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms) or [0.0]

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 3)

        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "throughput_rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(lat[-1], 3),
            "mean_ms": round(statistics.fmean(lat), 3),
        }


def drive(
    endpoints: list[str], frames: list[bytes], in_flight: int, total: int, timeout: float = 10.0
) -> LoadResult:
    """Send ``total`` copies of a request (new id each), ``in_flight`` at a time."""
    ctx = zmq.Context()
    n_sockets = min(in_flight, MAX_SOCKETS)
    sockets = []
    for i in range(n_sockets):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.connect(endpoints[i % len(endpoints)])
        sockets.append(s)
    poller = zmq.Poller()
    for s in sockets:
        poller.register(s, zmq.POLLIN)
    header = wire.decode(frames)[0]
    blobs = frames[1:]
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []
    errors = 0
    next_id = 0

    def send(sock: zmq.Socket) -> None:
        nonlocal next_id
        rid = f"b{next_id}"
        next_id += 1
        header["id"] = rid
        sent_at[rid.encode()] = time.perf_counter()
        sock.send_multipart([b"", *wire.encode(header, blobs)], copy=False)

    # Wait until every socket is connected, so connect time is not measured.
    for s in sockets:
        s.poll(5000, zmq.POLLOUT)
    start = time.perf_counter()
    for i in range(min(in_flight, total)):
        send(sockets[i % n_sockets])
    done = 0
    deadline = time.monotonic() + timeout + total / 100
    while done < total and time.monotonic() < deadline:
        for sock, _ in poller.poll(1000):
            while True:
                try:
                    reply = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                now = time.perf_counter()
                parsed = wire.decode(reply[1:], require_id=False)[0]
                t0 = sent_at.pop(parsed["id"].encode(), None)
                if t0 is None:
                    continue
                latencies.append((now - t0) * 1000)
                if parsed.get("status") != "OK":
                    errors += 1
                done += 1
                if next_id < total:
                    send(sock)
    seconds = time.perf_counter() - start
    errors += total - done  # unanswered
    ctx.destroy(linger=0)
    return LoadResult(done, errors, seconds, latencies)


def _echo_server(endpoint: str, ready) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.bind(endpoint)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    ready.set()
    while True:
        for _ in poller.poll(1000):
            for _ in range(256):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                sock.send_multipart(frames)


def echo_baseline(frames: list[bytes], in_flight: int, total: int, port: int) -> LoadResult:
    endpoint = f"tcp://127.0.0.1:{port}"
    ready = multiprocessing.Event()
    proc = multiprocessing.Process(target=_echo_server, args=(endpoint, ready), daemon=True)
    proc.start()
    try:
        ready.wait(10)
        # An echo returns the request itself; give it an OK status so it counts.
        header = wire.decode(frames)[0]
        header["status"] = "OK"
        return drive([endpoint], wire.encode(header, frames[1:]), in_flight, total)
    finally:
        proc.terminate()
        proc.join(5)


def predict_frames(model_id: str, rows: int, width: int) -> list[bytes]:
    x = np.random.default_rng(0).random((rows, width), dtype=np.float32)
    desc, blob = wire.array_to_frame(x)
    return wire.encode({"type": "PREDICT", "id": "b", "model_id": model_id, "inputs": desc}, [blob])


def run(
    nodes: list[str] | None, in_flight: int, requests: int, rows: int, baseline: bool
) -> dict[str, Any]:
    """Measure against ``nodes`` (or a fresh one-node cluster) with an XOR model."""
    import tempfile
    from pathlib import Path

    from client import Client

    from .cluster import LocalCluster, pick_base_ports

    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0], np.float32)
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-") as tmp:
        cluster = None
        if not nodes:
            cluster = LocalCluster(Path(tmp), n=1)
            cluster.start()
            nodes = [cluster.leader(timeout=30)]
        try:
            with Client(nodes, timeout=30) as c:
                model_id = c.train(x, y)["model_id"]
            frames = predict_frames(model_id, rows, 2)
            endpoints = [f"tcp://{n}" for n in nodes]
            drive(endpoints, frames, in_flight, min(2000, requests))  # warm-up
            ours = drive(endpoints, frames, in_flight, requests).summary()
        finally:
            if cluster is not None:
                cluster.stop()
        result: dict[str, Any] = {
            "nodes": nodes,
            "in_flight": in_flight,
            "rows": rows,
            "zmqnode": ours,
        }
        if baseline:
            port = pick_base_ports(1)[0]
            echo = echo_baseline(frames, in_flight, requests, port).summary()
            result["echo"] = echo
            result["ratio_of_echo_throughput"] = round(
                ours["throughput_rps"] / echo["throughput_rps"], 3
            )
    return result


def main(argv: list[str]) -> int:
    import argparse
    import json

    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(prog="python -m bench predict", description=__doc__)
    p.add_argument("--nodes", help="H:P,H:P of a running cluster (default: start one node)")
    p.add_argument("--in-flight", type=int, default=100)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--rows", type=int, default=1)
    p.add_argument("--baseline", action="store_true", help="also run a bare pyzmq echo server")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    nodes = args.nodes.split(",") if args.nodes else None
    result = run(nodes, args.in_flight, args.requests, args.rows, args.baseline)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Table(title=f"predict: {args.in_flight} in flight, {args.rows} row(s)/request")
    for col in ("target", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="right")
    for name in ("zmqnode", "echo"):
        r = result.get(name)
        if r:
            table.add_row(
                name,
                f"{r['throughput_rps']:.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p95_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['max_ms']:.2f}",
                str(r["errors"]),
            )
    Console().print(table)
    if "ratio_of_echo_throughput" in result:
        Console().print(f"zmqnode / echo throughput: {result['ratio_of_echo_throughput']}")
    return 0
