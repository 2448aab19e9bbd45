"""``python -m bench predict --http``: the HTTP inference port against its ceilings.

A local cluster (3 nodes by default, ``--cluster-size``) trains XOR, then in
the same run, on the same node (``--target follower``, ``leader`` or
``both``), with the same concurrency (``--in-flight``, default 100; 1 row
per request, ``--rows``):

- ``http``: ``POST /v2/models/{id}/infer`` (docs/HTTP.md) with a JSON
  tensor, over keep-alive connections, one request outstanding on each;
- ``zmq``: the same node's ZeroMQ PREDICT path, with ``bench/loadgen.py``
  (one DEALER socket per in-flight request, one process);
- ``echo``: ``bench/http_echo.py``, a bare h11 server run the node's way
  (one ``zmq.Poller`` over the sockets' descriptors) that answers every
  request with a fixed small JSON body, in its own process, driven by the
  same HTTP load generator: the ceiling for HTTP/1.1 on h11 in Python here.

The HTTP load generator runs in ``--http-procs`` processes (default 2; the
connections are split between them), each a non-blocking ``select.epoll``
loop that parses the least it can: the status code, the head's end
(``\\r\\n\\r\\n``), ``Content-Length``, then skips the body. Its request is
encoded once. Every scenario is warmed up (``--warmup-seconds``), then
measured for ``--duration`` seconds (or ``--requests`` in all); with
``--repeats R`` the scenarios run R times, interleaved, and medians are
reported. Ratios (http / echo, http / zmq, p99s) come from the same run;
the node's and the echo server's CPU per request (from /proc) say where the
difference goes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.common import stop_process
from client import Client
from harness.cluster import ROOT, LocalCluster, pick_base_ports, wait_for
from zmqnode.transport.addresses import HTTP_OFFSET
from zmqnode.transport.security import load_client_keys, load_http_token

from .loadgen import LoadGenerator, raise_fd_limit
from .predict import XOR_X, XOR_Y, machine, predict_template, rows_of
from .predict_profile import cpu_per_request, cpu_seconds

TARGET_RATIO = 0.6  # issue 15: the infer endpoint at >= 0.6 x the h11 echo ceiling
READ_CHUNK = 65536
# Scenario names, in the order a round runs them.
HTTP, ZMQ, ECHO = "http", "zmq", "echo"


# -- the request ------------------------------------------------------------------------


def infer_request(host: str, port: int, model_id: str, x: np.ndarray, token: str | None) -> bytes:
    """One ``POST /v2/models/{model_id}/infer`` with ``x`` as a JSON FP32 tensor,
    keep-alive, encoded once."""
    body = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "inputs",
                    "datatype": "FP32",
                    "shape": list(x.shape),
                    "data": x.astype(np.float32).ravel().tolist(),
                }
            ]
        }
    )
    head = [
        f"POST /v2/models/{model_id}/infer HTTP/1.1",
        f"host: {host}:{port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
    ]
    if token is not None:
        head.append(f"authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def check_once(host: str, port: int, request: bytes) -> dict[str, Any]:
    """Send ``request`` once on a fresh connection: (status, JSON body). Raises
    if the answer is not a 200 with a JSON object."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                need = end + 4 + _content_length(buf, end)
                if len(buf) >= need:
                    break
            data = sock.recv(READ_CHUNK)
            if not data:
                raise ConnectionError(f"{host}:{port} closed before answering")
            buf += data
    status = int(buf[9:12])
    body = orjson.loads(buf[end + 4 : need])
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"{host}:{port} answered {status}: {body!r}")
    return body


def _content_length(buf: bytes, end: int) -> int:
    i = buf.find(b"content-length:", 0, end)
    if i < 0:
        head = buf[:end].lower()
        i = head.find(b"content-length:")
        if i < 0:
            return 0
    j = buf.find(b"\r\n", i, end + 2)
    return int(buf[i + 15 : j])


# -- the load generator (one process) --------------------------------------------------


def drive(
    socks: list[socket.socket],
    request: bytes,
    requests: int | None,
    duration: float | None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Keep one ``request`` outstanding on each of ``socks`` (connected,
    non-blocking) until ``requests`` were sent or ``duration`` passed, then
    wait for the last answers. Returns counts, the measured seconds and every
    latency (``latencies``: array('d') bytes, seconds)."""
    perf = time.perf_counter
    epoll = select.epoll()
    index = {s.fileno(): k for k, s in enumerate(socks)}
    for fd in index:
        epoll.register(fd, select.EPOLLIN)
    n_socks = len(socks)
    sent_at = [0.0] * n_socks
    pending = [b""] * n_socks
    busy = [False] * n_socks
    lat = array("d")
    codes: dict[str, int] = {}
    ok = errors = sent = outstanding = 0
    stop_at = requests if requests is not None else 1 << 62
    cpu0 = time.process_time()
    start = perf()
    end_issue = start + duration if duration is not None else float("inf")
    for k, s in enumerate(socks):
        if sent >= stop_at:
            break
        s.send(request)
        sent_at[k] = perf()
        busy[k] = True
        sent += 1
        outstanding += 1
    issuing = sent < stop_at
    last_reply = last_done = start
    recvs = [s.recv for s in socks]
    sends = [s.send for s in socks]
    size = len(request)
    try:
        while outstanding:
            ready = epoll.poll(0.5)
            now = perf()
            if not ready:
                if now - last_reply > timeout:
                    break
                continue
            if issuing and now >= end_issue:
                issuing = False
            for fd, _ev in ready:
                k = index[fd]
                try:
                    data = recvs[k](READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # the server closed: that request is lost, the connection too
                    epoll.unregister(fd)
                    if busy[k]:
                        busy[k] = False
                        outstanding -= 1
                        errors += 1
                        codes["closed"] = codes.get("closed", 0) + 1
                    continue
                buf = pending[k] + data if pending[k] else data
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    pending[k] = buf
                    continue
                need = end + 4 + _content_length(buf, end)
                if len(buf) < need:
                    pending[k] = buf
                    continue
                pending[k] = buf[need:]
                lat.append(now - sent_at[k])
                status = buf[9:12]
                if status == b"200":
                    ok += 1
                else:
                    errors += 1
                    code = status.decode("latin-1")
                    codes[code] = codes.get(code, 0) + 1
                last_reply = last_done = now
                if issuing:
                    if sends[k](request) != size:
                        raise RuntimeError("a request did not fit the socket buffer")
                    sent_at[k] = now
                    sent += 1
                    if sent >= stop_at:
                        issuing = False
                else:
                    busy[k] = False
                    outstanding -= 1
    finally:
        epoll.close()
    if outstanding:
        codes["unanswered"] = outstanding
    return {
        "sent": sent,
        "ok": ok,
        "errors": errors + outstanding,
        "error_codes": codes,
        "unanswered": outstanding,
        "seconds": last_done - start,
        "cpu_seconds": time.process_time() - cpu0,
        "latencies": lat.tobytes(),
    }


def connect(host: str, port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    return socks


def _worker(pipe: Connection, host: str, port: int, request: bytes, n: int) -> None:
    """A load-generator process: ``n`` connections, then runs on command."""
    try:
        socks = connect(host, port, n)
    except OSError as exc:
        pipe.send(("error", repr(exc)))
        return
    pipe.send(("ready", n))
    try:
        while True:
            cmd = pipe.recv()
            if cmd[0] == "close":
                return
            _, requests, duration, timeout = cmd
            try:
                pipe.send(("done", drive(socks, request, requests, duration, timeout)))
            except Exception as exc:  # reported to the parent, which raises it
                pipe.send(("error", repr(exc)))
                return
    finally:
        for s in socks:
            s.close()


class HttpLoad:
    """``connections`` keep-alive connections to ``host:port`` split over
    ``procs`` load-generator processes; ``run`` drives all of them at once."""

    def __init__(self, host: str, port: int, request: bytes, connections: int, procs: int) -> None:
        self.host, self.port, self.request = host, port, request
        procs = max(1, min(procs, connections))
        self.shares = [connections // procs + (i < connections % procs) for i in range(procs)]
        self.workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []

    def __enter__(self) -> HttpLoad:
        mp = multiprocessing.get_context("spawn")
        for share in self.shares:
            parent, child = mp.Pipe()
            proc = mp.Process(
                target=_worker,
                args=(child, self.host, self.port, self.request, share),
                daemon=True,
            )
            proc.start()
            self.workers.append((proc, parent))
        for _, pipe in self.workers:
            if not pipe.poll(30):
                raise TimeoutError("an HTTP load generator did not start")
            kind, detail = pipe.recv()
            if kind != "ready":
                raise ConnectionError(f"an HTTP load generator could not connect: {detail}")
        return self

    def __exit__(self, *exc: object) -> None:
        for _proc, pipe in self.workers:
            try:
                pipe.send(("close",))
            except OSError:
                pass
        for proc, _ in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()

    def run(
        self, requests: int | None = None, duration: float | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Drive every process at once; their results merged (throughput is the sum
        of each process's own)."""
        total = requests
        for i, (_, pipe) in enumerate(self.workers):
            share = None
            if total is not None:
                share = total // len(self.workers) + (i < total % len(self.workers))
            pipe.send(("run", share, duration, timeout))
        parts = []
        for _, pipe in self.workers:
            if not pipe.poll(timeout + (duration or 0) + 30):
                raise TimeoutError("an HTTP load generator did not finish")
            try:
                kind, part = pipe.recv()
            except EOFError:
                raise RuntimeError("an HTTP load generator exited during a run") from None
            if kind != "done":
                raise RuntimeError(f"an HTTP load generator failed: {part}")
            parts.append(part)
        return merge(parts, sum(self.shares))


def merge(parts: list[dict[str, Any]], in_flight: int) -> dict[str, Any]:
    lat = np.concatenate([np.frombuffer(p["latencies"], dtype=np.float64) for p in parts]) * 1000
    codes: dict[str, int] = {}
    for p in parts:
        for k, v in p["error_codes"].items():
            codes[k] = codes.get(k, 0) + v
    answered = sum(p["sent"] - p["unanswered"] for p in parts)
    rps = sum((p["sent"] - p["unanswered"]) / p["seconds"] for p in parts if p["seconds"] > 0)
    cpu = sum(p["cpu_seconds"] for p in parts)
    return {
        "requests": sum(p["sent"] for p in parts),
        "ok": sum(p["ok"] for p in parts),
        "errors": sum(p["errors"] for p in parts),
        "error_codes": codes,
        "seconds": round(max(p["seconds"] for p in parts), 4),
        "throughput_rps": round(rps, 1),
        **_percentiles(lat),
        "in_flight": in_flight,
        "connections": in_flight,
        "load_processes": len(parts),
        "harness_cpu_us_per_request": round(cpu / answered * 1e6, 2) if answered else None,
    }


def _percentiles(lat_ms: np.ndarray) -> dict[str, float]:
    if not len(lat_ms):
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    p50, p95, p99, pmax = np.percentile(lat_ms, [50, 95, 99, 100])
    return {
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "max_ms": round(float(pmax), 3),
    }


# -- the echo server --------------------------------------------------------------------


class HttpEchoProcess:
    """``python -m bench.http_echo`` in its own process, ready when entered."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = pick_base_ports(1)[0]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> HttpEchoProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.http_echo", self.host, str(self.port)], cwd=ROOT
        )

        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the HTTP echo server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(answers, 10, "the HTTP echo server")
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)


# -- the measurements -------------------------------------------------------------------


def _with_cpu(pid: int | None, answered_of: Any, run: Any) -> dict[str, Any]:
    """``run()``'s summary plus ``pid``'s CPU per answered request."""
    before = cpu_seconds(pid) if pid else None
    summary = run()
    after = cpu_seconds(pid) if pid else None
    if pid:
        summary.update(cpu_per_request({"n": before}, {"n": after}, answered_of(summary)))
    return summary


def _answered(summary: dict[str, Any]) -> int:
    return int(summary["requests"] - summary.get("unanswered", 0))


def measure_http(
    host: str,
    port: int,
    request: bytes,
    args: argparse.Namespace,
    pid: int | None,
) -> dict[str, Any]:
    with HttpLoad(host, port, request, args.in_flight, args.http_procs) as load:
        if args.warmup_seconds > 0:
            load.run(duration=args.warmup_seconds)
        return _with_cpu(
            pid, _answered, lambda: load.run(requests=args.requests, duration=args.duration)
        )


def measure_zmq(
    node: str, template: Any, args: argparse.Namespace, keys: Any, pid: int | None
) -> dict[str, Any]:
    with LoadGenerator([f"tcp://{node}"], template, args.in_flight, keys=keys) as gen:
        if args.warmup_seconds > 0:
            gen.run(duration=args.warmup_seconds, timeout=30)

        def run() -> dict[str, Any]:
            s = gen.run(requests=args.requests, duration=args.duration, timeout=30).summary()
            s["load_processes"] = 1
            return s

        return _with_cpu(pid, lambda s: s["requests"] - s["unanswered"], run)


def run_http(args: argparse.Namespace) -> dict[str, Any]:
    """The whole ``--http`` run: cluster, model, every scenario ``--repeats``
    times (interleaved), medians and ratios."""
    result: dict[str, Any] = {"machine": machine(), "mode": "http"}
    raise_fd_limit(args.in_flight * 2 + 200)
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-http-") as tmp:
        cluster = LocalCluster(Path(tmp), n=args.cluster_size, insecure=args.insecure)
        try:
            cluster.start()
            leader = cluster.leader(timeout=30)
            keys = None if cluster.keys is None else load_client_keys(cluster.keys)
            token = None if cluster.keys is None else load_http_token(cluster.keys)
            with Client(list(cluster.ids), timeout=30, keys=keys) as c:
                model_id = c.train(XOR_X, XOR_Y)["model_id"]
            followers = [n for n in cluster.ids if n != leader]
            targets: list[tuple[str, str]] = []
            if args.target in ("follower", "both") and followers:
                targets.append(("follower", followers[0]))
            if args.target in ("leader", "both") or not followers:
                targets.append(("leader", leader))
            x = rows_of(2, args.rows)
            template = predict_template(model_id, x)
            pids = {n: p.pid for n, p in cluster.procs.items()}
            result.update(
                nodes=list(cluster.ids),
                leader=leader,
                model_id=model_id,
                in_flight=args.in_flight,
                rows=args.rows,
                security="off (--insecure)" if keys is None else "CURVE + bearer token",
                warmup_seconds=args.warmup_seconds,
                duration_s=args.duration,
                requests_per_scenario=args.requests,
                repeats=args.repeats,
                http_load_processes=args.http_procs,
            )
            requests = {}
            for role, node in targets:
                host, port = node.rsplit(":", 1)
                http_port = int(port) + HTTP_OFFSET
                requests[role] = (
                    host,
                    http_port,
                    infer_request(host, http_port, model_id, x, token),
                )
                # The first answer is linearizable, so the node has applied the
                # model once it answers; only then does it know the model's task,
                # and so that "every output" includes a classifier's
                # probabilities (docs/HTTP.md). The second answer is the sample.
                check_once(*requests[role])
                sample = check_once(*requests[role])
                if "outputs" not in sample:
                    raise RuntimeError(f"no outputs in the infer answer of {node}: {sample}")
                result.setdefault("sample_answer", sample)
            rounds: dict[str, list[dict[str, Any]]] = {}
            with HttpEchoProcess() as echo:
                echo_request = infer_request(echo.host, echo.port, model_id, x, token)
                check_once(echo.host, echo.port, echo_request)
                for _ in range(args.repeats):
                    for role, node in targets:
                        host, http_port, req = requests[role]
                        rounds.setdefault(f"{HTTP}_{role}", []).append(
                            measure_http(host, http_port, req, args, pids[node])
                        )
                        rounds.setdefault(f"{ZMQ}_{role}", []).append(
                            measure_zmq(node, template, args, keys, pids[node])
                        )
                    rounds.setdefault(ECHO, []).append(
                        measure_http(echo.host, echo.port, echo_request, args, echo.proc.pid)
                    )
            result["targets"] = {role: node for role, node in targets}
            result["scenarios"] = {name: median_of(runs) for name, runs in rounds.items()}
            result["runs"] = rounds
            result["ratios"] = http_ratios(result["scenarios"], [r for r, _ in targets])
            result["target_ratio"] = TARGET_RATIO
            result["target_met"] = all(
                r["http_over_echo_throughput"] is not None
                and r["http_over_echo_throughput"] >= TARGET_RATIO
                for r in result["ratios"].values()
            )
        finally:
            cluster.stop()
    return result


_MEDIAN_KEYS = (
    "throughput_rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "harness_cpu_us_per_request",
    "node_cpu_us_per_request",
    "node_loop_cpu_us_per_request",
)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's runs: medians of the figures, sums of the counts."""
    out = dict(runs[-1])
    for key in _MEDIAN_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = round(statistics.median(values), 3)
    for key in ("requests", "ok", "errors"):
        out[key] = sum(r[key] for r in runs)
    codes: dict[str, int] = {}
    for r in runs:
        for k, v in r["error_codes"].items():
            codes[k] = codes.get(k, 0) + v
    out["error_codes"] = codes
    out["runs"] = len(runs)
    return out


def http_ratios(scenarios: dict[str, Any], roles: list[str]) -> dict[str, dict[str, Any]]:
    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    echo = scenarios[ECHO]
    out = {}
    for role in roles:
        http, zmq_ = scenarios[f"{HTTP}_{role}"], scenarios[f"{ZMQ}_{role}"]
        out[role] = {
            "http_over_echo_throughput": div(http["throughput_rps"], echo["throughput_rps"]),
            "http_over_zmq_throughput": div(http["throughput_rps"], zmq_["throughput_rps"]),
            "http_over_echo_p99": div(http["p99_ms"], echo["p99_ms"]),
            "http_over_zmq_p99": div(http["p99_ms"], zmq_["p99_ms"]),
            "http_over_echo_server_cpu": div(
                http.get("node_cpu_us_per_request"), echo.get("node_cpu_us_per_request")
            ),
        }
    return out


# -- output -----------------------------------------------------------------------------


def report_http(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 132))
    m = result["machine"]
    con.print(
        f"[bold]predict --http[/bold]: {len(result['nodes'])}-node local cluster, leader "
        f"{result['leader']}, model {result['model_id']}; {m['cores']} cores, load "
        f"{m['load_avg_1m_at_start']} at start; {result['security']}"
    )
    how = (
        f"{result['duration_s']} s"
        if result["duration_s"]
        else f"{result['requests_per_scenario']} requests"
    )
    table = Table(
        title=f"{result['in_flight']} requests in flight, {result['rows']} row(s) each; "
        f"warm-up {result['warmup_seconds']} s, measured {how}, "
        f"median of {result['repeats']} run(s)"
    )
    for col in ("scenario", "node", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="right")
    table.add_column("server CPU µs/req (loop)", justify="right")
    table.add_column("harness µs/req", justify="right")
    names = {
        "http": "HTTP infer",
        "zmq": "ZeroMQ PREDICT",
    }
    for name, r in result["scenarios"].items():
        kind, _, role = name.partition("_")
        label = f"{names.get(kind, kind)}" if kind != ECHO else "h11 echo (ceiling)"
        node = f"{role} {result['targets'][role]}" if role else "—"
        errors = "0" if not r["errors"] else f"{r['errors']} {r['error_codes']}"
        table.add_row(
            label,
            node,
            f"{r['throughput_rps']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['max_ms']:.2f}",
            errors,
            f"{r.get('node_cpu_us_per_request')} ({r.get('node_loop_cpu_us_per_request')})",
            str(r.get("harness_cpu_us_per_request")),
        )
    con.print(table)
    for role, ra in result["ratios"].items():
        met = ra["http_over_echo_throughput"] is not None and (
            ra["http_over_echo_throughput"] >= result["target_ratio"]
        )
        con.print(
            f"{role}: http / echo throughput [bold]{ra['http_over_echo_throughput']}[/bold] "
            f"(target ≥ {result['target_ratio']}: {'met' if met else '[red]not met[/red]'}), "
            f"http / zmq {ra['http_over_zmq_throughput']}; p99 http / echo "
            f"{ra['http_over_echo_p99']}, http / zmq {ra['http_over_zmq_p99']}; "
            f"server CPU per request http / echo {ra['http_over_echo_server_cpu']}"
        )
    con.print(
        f"HTTP load: {result['http_load_processes']} processes, one request outstanding per "
        "keep-alive connection; ZeroMQ load: bench/loadgen.py, one process, one DEALER per "
        "in-flight request. Server CPU: the node's (or echo server's) whole process per "
        "answered request, its main thread in parentheses."
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options only ``--http`` uses."""
    g = p.add_argument_group("--http")
    g.add_argument(
        "--http",
        action="store_true",
        help="the HTTP infer endpoint vs the same node's ZeroMQ path and an h11 echo server",
    )
    g.add_argument(
        "--target",
        choices=("follower", "leader", "both"),
        default="follower",
        help="which node of the cluster to load (default: a follower)",
    )
    g.add_argument(
        "--warmup-seconds", type=float, default=2.0, help="warm-up per scenario (--http)"
    )
    g.add_argument(
        "--http-procs", type=int, default=2, help="HTTP load-generator processes (default 2)"
    )
    g.add_argument(
        "--repeats", type=int, default=1, help="rounds of every scenario, medians (--http)"
    )


def main_http(args: argparse.Namespace) -> int:
    if args.requests is None and args.duration is None:
        args.duration = 10.0
    if args.cluster_size is None:
        args.cluster_size = 3
    if args.nodes:
        raise SystemExit("--http starts its own local cluster; --nodes is not supported")
    result = run_http(args)
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        report_http(result)
    ok = all(s["ok"] > 0 for s in result["scenarios"].values())
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover - use python -m bench predict --http
    print("use: python -m bench predict --http", file=sys.stderr)
    sys.exit(2)
