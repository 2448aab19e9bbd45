"""``python -m bench store``: durable commits per second of IMPORTs.

A fresh 3-node cluster receives N IMPORTs of a valid model file (every one
with its own request id, so each is a new Raft entry and a new
``models/<id>.bin`` on every node). An IMPORT is acknowledged only once
its entry is fsynced on a majority and applied on the leader, so
acknowledged IMPORTs per second is the rate of durable commits.

The harness is lean: one DEALER connected to the leader, every request's
frames encoded before the clock starts, ``K`` requests in flight (a new one
sent as each reply arrives), no retries (on a healthy cluster any non-OK
reply is a finding, and is counted). Payloads are models trained with
``zmqnode.ml`` on XOR with hidden layers chosen for ≈1 KB (``[2]``) and ≈10 KB
(``[44, 44]``) safetensors files. Each repeat starts a fresh cluster, warms
it up, then runs every in-flight count once; figures are medians over the
repeats. After each run the harness waits until every node has applied
every acknowledged model, so each run starts from a quiet cluster.

``--baseline`` runs PySyncObj (a Python Raft library) in the same run: three
processes on loopback (``bench/pysyncobj_node.py``), a replicated
``dict[str, bytes]``, the same payload bytes, write count and in-flight
counts, in both of its append modes (batched, its default, and one
AppendEntries per command), and divides our rate by its better one. Within
a repeat the systems run one after the other on fresh clusters, so the
machine's noise falls on all of them alike. See
``bench/pysyncobj_node.py`` for how its writes are issued (inside the leader
process, with callbacks) and for its durability (none: memory journal).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from harness.cluster import ROOT, LocalCluster, pick_base_ports, wait_for
from zmqnode.ml.options import TrainOptions
from zmqnode.ml.training import train
from zmqnode.transport import security, wire
from zmqnode.transport.security import ClientKeys

from . import monitor_view

# payload name -> hidden layers of an XOR model whose .bin is about that size
SIZES: dict[str, tuple[int, ...]] = {"1KB": (2,), "10KB": (44, 44)}
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.float32)
REQUEST_TIMEOUT = 30.0


def model_file(hidden: tuple[int, ...]) -> bytes:
    """A valid model file (safetensors) for XOR with these hidden layers."""
    options = TrainOptions(hidden_layers=hidden, epochs=10, seed=0)
    return train(XOR_X, XOR_Y, options, created_at=0.0).to_bytes()


@dataclass
class PipelineRun:
    """One measurement: ``requested`` IMPORTs with ``in_flight`` outstanding,
    what came back and how long it took."""

    in_flight: int
    requested: int
    acked: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    fsync: dict[str, Any] | None = None  # filled by store_run when the nodes expose it

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms) or [0.0]
        return {
            "in_flight": self.in_flight,
            "requested": self.requested,
            "acked": self.acked,
            "errors": dict(self.errors),
            "unanswered": self.unanswered,
            "seconds": round(self.seconds, 4),
            "commits_per_s": round(self.rate, 1),
            "p50_ms": round(lat[len(lat) // 2], 3),
            "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3),
            "fsync": self.fsync,
        }


def pipeline_imports(
    endpoint: str,
    model: bytes,
    n: int,
    in_flight: int,
    prefix: str,
    *,
    request_timeout: float = REQUEST_TIMEOUT,
    max_seconds: float | None = None,
    keys: ClientKeys | None = None,
) -> PipelineRun:
    """``n`` IMPORTs of ``model`` over one DEALER, ``in_flight`` at a time.

    Stops sending new requests after ``max_seconds`` (if given) but waits for
    those in flight. A request without a reply ``request_timeout`` + 1 s after
    it was sent is counted as unanswered.
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    security.make_client(sock, keys)
    sock.connect(endpoint)
    timeout_ms = int(request_timeout * 1000)
    requests = []
    for i in range(n):
        rid = f"{prefix}-{i}"
        header = {
            "type": "IMPORT",
            "id": rid,
            "filename": f"{rid}.bin",
            "size_bytes": len(model),
            "timeout_ms": timeout_ms,
        }
        requests.append((rid, [b"", *wire.encode(header, [model])]))
    run = PipelineRun(in_flight=in_flight, requested=n)
    sent_at: dict[str, float] = {}
    try:
        if not sock.poll(5000, zmq.POLLOUT):
            raise RuntimeError(f"cannot connect to {endpoint}")
        next_i = 0
        start = time.perf_counter()
        stop_sending = start + max_seconds if max_seconds else float("inf")

        def send_next() -> None:
            nonlocal next_i
            rid, frames = requests[next_i]
            next_i += 1
            sent_at[rid] = time.perf_counter()
            sock.send_multipart(frames)

        for _ in range(min(in_flight, n)):
            send_next()
        last_reply = start
        while sent_at:
            if sock.poll(100, zmq.POLLIN):
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    now = time.perf_counter()
                    header = wire.decode(frames[1:], require_id=False)[0]
                    t0 = sent_at.pop(header["id"], None)
                    if t0 is None:
                        continue  # a reply to a request already counted unanswered
                    last_reply = now
                    run.latencies_ms.append((now - t0) * 1000)
                    if header.get("status") == "OK":
                        run.acked += 1
                    else:
                        code = str(header.get("code") or header.get("status"))
                        run.errors[code] = run.errors.get(code, 0) + 1
                    if next_i < n and now < stop_sending:
                        send_next()
            now = time.perf_counter()
            for rid, t0 in list(sent_at.items()):
                if now - t0 > request_timeout + 1.0:
                    del sent_at[rid]
                    run.unanswered += 1
        run.seconds = last_reply - start
        run.requested = next_i
    finally:
        ctx.destroy(linger=0)
    return run


def model_counts(cluster: LocalCluster) -> dict[str, dict[str, int]]:
    """Per live node: models in its registry (/status) and ``.bin`` files in models/."""
    out = {}
    for nid in cluster.procs:
        files = len(list((cluster.storage(nid) / "models").glob("*.bin")))
        out[nid] = {"registry": int(monitor_view.status(nid)["models"]), "files": files}
    return out


def wait_all_applied(cluster: LocalCluster, expected: int, timeout: float = 60.0) -> None:
    """Poll until every live node holds ``expected`` models (registry and files)."""

    def done() -> bool:
        counts = model_counts(cluster)
        return all(c["registry"] == expected and c["files"] == expected for c in counts.values())

    wait_for(done, timeout, f"every node to hold {expected} models", interval=0.05)


def store_run(
    cluster: LocalCluster,
    model: bytes,
    n: int,
    in_flight: int,
    *,
    max_seconds: float | None = None,
) -> tuple[PipelineRun, dict[str, dict[str, int]]]:
    """One measured run against the current leader; returns it and the model
    counts per node once every node has applied every acknowledged import."""
    leader = cluster.leader(timeout=30)
    before = model_counts(cluster)
    base = max(c["registry"] for c in before.values())
    fsync_before = {nid: monitor_view.fsync_totals(nid) for nid in cluster.procs}
    port = int(leader.rsplit(":", 1)[1])
    prefix = f"st{uuid.uuid4().hex[:12]}"
    run = pipeline_imports(
        f"tcp://127.0.0.1:{port}",
        model,
        n,
        in_flight,
        prefix,
        max_seconds=max_seconds,
        keys=cluster.client_keys(),
    )
    wait_all_applied(cluster, base + run.acked)
    run.fsync = _fsync_delta(leader, fsync_before, run.acked)
    return run, model_counts(cluster)


def _fsync_delta(
    leader: str, before: dict[str, tuple[float, float] | None], acked: int
) -> dict[str, Any] | None:
    """Fsyncs per acknowledged import and their mean duration, leader and followers,
    from what the nodes expose (None if they expose nothing)."""
    out: dict[str, Any] = {}
    followers = 0
    for nid, b in before.items():
        a = monitor_view.fsync_totals(nid)
        if a is None or b is None or not acked:
            return None
        count, seconds = a[0] - b[0], a[1] - b[1]
        if nid != leader:
            followers += 1
        out["leader" if nid == leader else f"follower {followers}"] = {
            "fsyncs": int(count),
            "per_commit": round(count / acked, 2),
            "mean_ms": round(seconds / count * 1000, 3) if count else None,
        }
    return out


# ---------------------------------------------------------------------------
# zmqnode


def zmqnode_round(
    model: bytes,
    in_flights: list[int],
    n: int,
    warmup: int,
    max_seconds: float | None,
    insecure: bool = False,
) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """One fresh 3-node cluster: warm-up, then one run per in-flight count.

    Returns the runs' summaries by in-flight count, and what the nodes expose
    afterwards (the names of its fsync series if any; its append/import counters)."""
    runs: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-store-") as tmp:
        cluster = LocalCluster(Path(tmp), n=3, insecure=insecure)
        cluster.start()
        try:
            cluster.leader(timeout=30)
            if warmup:
                store_run(cluster, model, warmup, min(8, warmup))
            for k in in_flights:
                run, _ = store_run(cluster, model, n, k, max_seconds=max_seconds)
                runs[k] = run.summary()
            leader = cluster.leader(timeout=30)
            fsync_series = sorted(monitor_view.fsync_view(leader))
            events = monitor_view.metrics(leader)
        finally:
            cluster.stop()
    exposed = {
        # Names of the fsync series the nodes expose (None: they expose none).
        "fsync_series": fsync_series or None,
        # Whatever the leader's /metrics counts about appends and imports (the
        # names are the node's business; none is required).
        "leader_events": {
            k: v
            for k, v in events.items()
            if any(s in k.lower() for s in ("append", "import"))
            and not k.endswith(("_bucket", "_sum"))
            and "_bucket{" not in k
        },
    }
    return runs, exposed


def measure(
    sizes: list[str],
    in_flights: list[int],
    n: int,
    repeats: int,
    warmup: int,
    max_seconds: float | None,
    baseline_modes: list[str] = (),
    journal: bool = False,
    log=print,
    insecure: bool = False,
) -> dict[str, Any]:
    """zmqnode, and PySyncObj in each of ``baseline_modes``, on the same payloads.

    Each repeat starts fresh clusters and runs the systems one after the other
    (zmqnode, then each PySyncObj mode), so that the machine's noise falls on
    all of them alike and no idle cluster runs beside a measured one.
    """
    ours: dict[str, Any] = {}
    theirs: dict[str, dict[str, Any]] = {mode: {} for mode in baseline_modes}
    for size in sizes:
        model = model_file(SIZES[size])
        our_runs: dict[int, list[dict[str, Any]]] = {k: [] for k in in_flights}
        their_runs = {mode: {k: [] for k in in_flights} for mode in baseline_modes}
        exposed: dict[str, Any] = {}
        for r in range(repeats):
            runs, exposed = zmqnode_round(model, in_flights, n, warmup, max_seconds, insecure)
            for k, summary in runs.items():
                our_runs[k].append(summary)
                log(f"zmqnode {size} in-flight {k} repeat {r + 1}: {summary['commits_per_s']}/s")
            for mode in baseline_modes:
                runs = pysyncobj_round(model, mode, in_flights, n, warmup, max_seconds, journal)
                for k, summary in runs.items():
                    their_runs[mode][k].append(summary)
                    log(
                        f"pysyncobj ({mode}) {size} in-flight {k} repeat {r + 1}: "
                        f"{summary['commits_per_s']}/s"
                    )
        ours[size] = {
            "payload_bytes": len(model),
            "hidden_layers": list(SIZES[size]),
            "in_flight": {str(k): _aggregate(v) for k, v in our_runs.items()},
            **exposed,
        }
        for mode in baseline_modes:
            theirs[mode][size] = {
                "payload_bytes": len(model),
                "in_flight": {str(k): _aggregate(v) for k, v in their_runs[mode].items()},
            }
    result: dict[str, Any] = {
        "zmqnode": ours,
        "security": "off (--insecure)" if insecure else "CURVE",
    }
    if baseline_modes:
        import pysyncobj.version

        result["pysyncobj"] = {
            "version": pysyncobj.version.VERSION,
            "journal": "file (mmap, no fsync)" if journal else "memory (default)",
            "durability": PYSYNCOBJ_DURABILITY,
            "modes": theirs,
        }
        result["ratio"] = ratios(ours, result["pysyncobj"])
    return result


def _aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["commits_per_s"] for r in runs]
    errors: dict[str, int] = {}
    for r in runs:
        for code, count in r.get("errors", {}).items():
            errors[code] = errors.get(code, 0) + count
    agg = {
        "commits_per_s": round(statistics.median(rates), 1),
        "runs_per_s": rates,
        "acked": sum(r["acked"] for r in runs),
        "requested": sum(r["requested"] for r in runs),
        "errors": errors,
        "unanswered": sum(r.get("unanswered", 0) for r in runs),
    }
    if "p50_ms" in runs[0]:
        agg["p50_ms"] = round(statistics.median(r["p50_ms"] for r in runs), 3)
        agg["p99_ms"] = round(statistics.median(r["p99_ms"] for r in runs), 3)
    fsyncs = [r["fsync"] for r in runs if r.get("fsync")]
    if fsyncs:
        agg["fsync"] = {
            role: {
                "per_commit": statistics.median(f[role]["per_commit"] for f in fsyncs),
                "mean_ms": statistics.median(
                    f[role]["mean_ms"] for f in fsyncs if f[role]["mean_ms"] is not None
                )
                if any(f[role]["mean_ms"] is not None for f in fsyncs)
                else None,
            }
            for role in fsyncs[0]
            if all(role in f for f in fsyncs)
        }
    return agg


# ---------------------------------------------------------------------------
# PySyncObj baseline

PYSYNCOBJ_DURABILITY = (
    "none: PySyncObj's default MemoryJournal keeps the Raft log, term and vote in "
    "process memory (a restarted node has lost them); its optional journalFile is an "
    "mmap plus a .meta file written with write+rename, never fsynced (survives a "
    "process kill, not a power cut). zmqnode acknowledges only after fsync on a majority."
)


def pysyncobj_available() -> bool:
    return importlib.util.find_spec("pysyncobj") is not None


class _SyncObjProc:
    """One PySyncObj node (``bench/pysyncobj_node.py``) in its own process,
    driven by JSON lines on its stdin and stdout."""

    def __init__(self, addr: str, partners: list[str], mode: str, workdir: Path, journal: bool):
        args = [sys.executable, "-m", "bench.pysyncobj_node", "--self", addr]
        args += ["--partners", ",".join(partners)]
        if mode == "no-batch":
            args.append("--no-batch")
        if journal:
            args += ["--journal", str(workdir / f"journal_{addr.rsplit(':', 1)[1]}")]
        self.addr = addr
        self.err = open(workdir / f"pysyncobj_{addr.rsplit(':', 1)[1]}.err", "ab")
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            bufsize=1,
        )
        self._read()  # {"started": ...}

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"PySyncObj node {self.addr} exited ({self.proc.poll()})")
        return json.loads(line)

    def ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        try:
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.err.close()


class PySyncObjCluster:
    """Three PySyncObj processes on loopback."""

    def __init__(self, workdir: Path, mode: str, journal: bool = False, n: int = 3):
        ports = pick_base_ports(n)
        addrs = [f"127.0.0.1:{p}" for p in ports]
        self.nodes: list[_SyncObjProc] = []
        self.keys = 0
        try:
            for a in addrs:
                self.nodes.append(
                    _SyncObjProc(a, [b for b in addrs if b != a], mode, workdir, journal)
                )
        except BaseException:
            self.stop()
            raise

    def leader(self, timeout: float = 30.0) -> _SyncObjProc:
        def find() -> _SyncObjProc | None:
            statuses = [node.ask({"cmd": "status"}) for node in self.nodes]
            leaders = [node for node, s in zip(self.nodes, statuses, strict=True) if s["leader"]]
            agreed = {s["leader_addr"] for s in statuses}
            if len(leaders) == 1 and len(agreed) == 1 and None not in agreed:
                return leaders[0]
            return None

        return wait_for(find, timeout, "a PySyncObj leader")

    def wait_keys(self, expected: int, timeout: float = 60.0) -> None:
        wait_for(
            lambda: all(node.ask({"cmd": "status"})["keys"] == expected for node in self.nodes),
            timeout,
            f"every PySyncObj node to hold {expected} keys",
            interval=0.05,
        )

    def write(
        self, payload: Path, n: int, in_flight: int, max_seconds: float | None
    ) -> dict[str, Any]:
        """``n`` puts issued in the leader; returns once every node has applied them."""
        res = self.leader().ask(
            {
                "cmd": "run",
                "n": n,
                "in_flight": in_flight,
                "payload": str(payload),
                "prefix": f"p{uuid.uuid4().hex[:12]}",
                "max_seconds": max_seconds,
            }
        )
        self.keys += res["acked"]
        self.wait_keys(self.keys)
        res["in_flight"] = in_flight
        res["commits_per_s"] = round(res["acked"] / res["seconds"], 1)
        res["errors"] = {"failed": res["errors"]} if res["errors"] else {}
        return res

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def pysyncobj_round(
    model: bytes,
    mode: str,
    in_flights: list[int],
    n: int,
    warmup: int,
    max_seconds: float | None,
    journal: bool = False,
) -> dict[int, dict[str, Any]]:
    """One fresh 3-process PySyncObj cluster: warm-up, then one run per in-flight count."""
    runs: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-pysyncobj-") as tmp:
        payload = Path(tmp) / "payload.bin"
        payload.write_bytes(model)
        cluster = PySyncObjCluster(Path(tmp), mode, journal)
        try:
            if warmup:
                cluster.write(payload, warmup, min(8, warmup), None)
            for k in in_flights:
                runs[k] = cluster.write(payload, n, k, max_seconds)
        finally:
            cluster.stop()
    return runs


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Our median rate over PySyncObj's best mode's median rate, per size and in-flight."""
    out: dict[str, dict[str, Any]] = {}
    for size, data in ours.items():
        out[size] = {}
        for k, agg in data["in_flight"].items():
            best_mode, best = None, 0.0
            for mode, per_size in theirs["modes"].items():
                rate = per_size.get(size, {}).get("in_flight", {}).get(k, {}).get("commits_per_s")
                if rate is not None and rate > best:
                    best_mode, best = mode, rate
            out[size][k] = {
                "ratio": round(agg["commits_per_s"] / best, 2) if best else None,
                "vs_mode": best_mode,
            }
    return out


# ---------------------------------------------------------------------------
# command line


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str]) -> int:
    import argparse
    import platform

    from rich.console import Console
    from rich.markup import escape

    p = argparse.ArgumentParser(prog="python -m bench store", description=__doc__)
    p.add_argument("--imports", type=int, default=500, help="IMPORTs per run (default 500)")
    p.add_argument("--in-flight", type=_ints, default=[1, 32, 64], help="e.g. 1,32,64")
    p.add_argument("--sizes", default="1KB,10KB", help=f"payloads among {','.join(SIZES)}")
    p.add_argument("--repeats", type=int, default=3, help="runs per configuration (median)")
    p.add_argument("--warmup", type=int, default=50, help="IMPORTs before measuring")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=20.0,
        help="stop sending after this long in one run (0: never); the rate stays valid",
    )
    p.add_argument("--baseline", action="store_true", help="also run PySyncObj, same run")
    p.add_argument(
        "--baseline-modes",
        default="batch,no-batch",
        help="PySyncObj appendEntriesUseBatch modes to run: batch (default), no-batch",
    )
    p.add_argument(
        "--baseline-journal",
        action="store_true",
        help="give PySyncObj a journalFile (mmap, never fsynced) instead of memory",
    )
    p.add_argument("--insecure", action="store_true", help="run the nodes without CURVE")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    for s in sizes:
        if s not in SIZES:
            p.error(f"unknown size {s!r}; choose among {', '.join(SIZES)}")
    modes = [m for m in args.baseline_modes.split(",") if m]
    for m in modes:
        if m not in ("batch", "no-batch"):
            p.error(f"unknown PySyncObj mode {m!r}")
    max_seconds = args.max_seconds or None
    console = Console(stderr=True)

    def log(msg: str) -> None:
        console.log(msg, markup=False)

    result: dict[str, Any] = {
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "imports_per_run": args.imports,
        "repeats": args.repeats,
        "max_seconds": max_seconds,
    }
    note = None
    modes_to_run: list[str] = []
    if args.baseline:
        if pysyncobj_available():
            modes_to_run = modes
        else:
            note = (
                "--baseline: the pysyncobj package is not installed, so only zmqnode ran "
                "(pip install pysyncobj, or pip install -e '.[bench]')"
            )
            console.print(f"[bold yellow]{escape(note)}[/]")
    result.update(
        measure(
            sizes,
            args.in_flight,
            args.imports,
            args.repeats,
            args.warmup,
            max_seconds,
            modes_to_run,
            args.baseline_journal,
            log,
            args.insecure,
        )
    )
    if note:
        result["pysyncobj"] = {"available": False, "note": note}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    _print_table(result, sizes, args, note)
    return 0


def _print_table(result: dict[str, Any], sizes: list[str], args, note: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=150)
    theirs = result.get("pysyncobj", {}).get("modes", {})
    table = Table(
        title=f"durable IMPORT commits/s, 3 nodes, {args.imports} per run, median of {args.repeats}"
    )
    table.add_column("payload")
    table.add_column("in flight", justify="right")
    table.add_column("zmqnode /s", justify="right")
    table.add_column("p50 / p99 ms", justify="right")
    table.add_column("errors", justify="right")
    exposed = any(result["zmqnode"][size]["fsync_series"] for size in sizes)
    if exposed:
        table.add_column("fsyncs/commit L | F", justify="right")
        table.add_column("fsync ms", justify="right")
    for mode in theirs:
        table.add_column(f"PySyncObj {mode} /s", justify="right")
    if theirs:
        table.add_column("ratio", justify="right")
    for size in sizes:
        ours = result["zmqnode"][size]
        for k, agg in ours["in_flight"].items():
            errs = sum(agg["errors"].values()) + agg["unanswered"]
            row = [
                f"{size} ({ours['payload_bytes']} B)",
                k,
                f"{agg['commits_per_s']:.1f}",
                f"{agg['p50_ms']:.1f} / {agg['p99_ms']:.1f}",
                str(errs),
            ]
            if exposed:
                f = agg.get("fsync") or {}
                lead = f.get("leader", {})
                foll = [v for role, v in f.items() if role != "leader"]
                row.append(
                    f"{lead.get('per_commit', '-')} | "
                    + ", ".join(str(v["per_commit"]) for v in foll)
                    if f
                    else "-"
                )
                row.append(f"{lead['mean_ms']:.2f}" if lead.get("mean_ms") is not None else "-")
            for mode in theirs:
                row.append(f"{theirs[mode][size]['in_flight'][k]['commits_per_s']:.1f}")
            if theirs:
                r = result["ratio"][size][k]
                row.append("-" if r["ratio"] is None else f"{r['ratio']:.2f}×")
            table.add_row(*row)
    console.print(table)
    if exposed:
        series = sorted(
            {n.split("{")[0] for s in sizes for n in result["zmqnode"][s]["fsync_series"] or []}
        )
        console.print(
            "fsyncs per acknowledged import on the leader (L) and each follower (F), and the "
            "leader's mean fsync, as the nodes count them in "
            f"{escape(', '.join(series))} (whatever those series cover)"
        )
    else:
        console.print("fsync stats: not exposed by the nodes' /status or /metrics")
    if theirs:
        console.print(
            f"ratio = zmqnode median / best PySyncObj mode median. PySyncObj "
            f"{result['pysyncobj']['version']}, journal {result['pysyncobj']['journal']}; "
            f"durability: {result['pysyncobj']['durability']}"
        )
    if note:
        console.print(f"[bold yellow]{escape(note)}[/]")
