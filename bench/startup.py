"""``python -m bench startup``: how fast each node implementation starts, and its memory.

For each implementation (``--impls``, default ``py,go,kotlin``) and each of
``--repeats`` runs, a fresh local cluster of ``--cluster-size`` nodes of that
implementation (default 1; 3 shows an election between equals) is started
and timed from just before its processes are spawned (``LocalCluster.start``;
the keys are made before, the Go binary and the Kotlin jar are brought up to
date before) until:

- ``port_s``: every node's port accepts a TCP connection (polled every 5 ms);
- ``status_s``: every node answers a STATUS request (the client's own
  request/reply, CURVE on unless ``--insecure``);
- ``leader_s``: a single leader is agreed by all nodes (a single node elects
  itself after its election timeout, so this includes that timeout).

Then the nodes' resident memory from /proc/PID/status (VmRSS, and VmHWM, the
peak RSS): ``idle`` after ``--idle-seconds`` without requests, ``trained``
after an XOR model is trained (the model the burst asks), and ``burst`` after
``--burst`` one-row predictions, ``--in-flight`` at a time, spread over the
nodes. With more than one node the figure is the largest node's. Every figure
is the median over the repeats (the raw runs are in ``--json``'s ``runs``).

The implementations run one after the other, never two at once; on a shared
machine compare the ratios of one run rather than figures of different runs.
A Kotlin node's memory depends on the JVM's options
(``harness.ktbuild.JAVA_FLAGS``: heap sizing): the run records them
(``jvm_flags``).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import executable
from client import Client
from harness.cluster import IMPLS, LocalCluster, impl_program
from zmqnode.transport.security import load_client_keys

from .loadgen import run_load
from .predict import XOR_X, XOR_Y, machine, predict_template, proc_memory, rows_of

POLL_S = 0.005


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(cluster: LocalCluster, condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for nid, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"node {nid} exited with status {proc.returncode} before {what}:\n"
                    + cluster.output(nid)[-2000:]
                )
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout} s")
        time.sleep(POLL_S)


def _answers_status(cluster: LocalCluster, nid: str) -> bool:
    try:
        cluster.status(nid)
        return True
    except Exception:  # not up yet: the client's timeout or a refused connection
        return False


def _largest(mems: list[dict[str, int] | None]) -> dict[str, int]:
    known = [m for m in mems if m]
    return {k: max(m[k] for m in known) for k in ("VmRSS", "VmHWM")} if known else {}


def one_run(impl: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start a cluster of ``impl``, time it, read its memory idle and after a burst."""
    workdir.mkdir(parents=True)
    cluster = LocalCluster(
        workdir, n=args.cluster_size, insecure=args.insecure, impls=(impl,) * args.cluster_size
    )
    impl_program(impl)  # build go/worker or kotlin/worker.jar now, not while timed
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    cluster.start()
    try:
        ids = list(cluster.ids)
        pending = set(ids)

        def ports_open() -> bool:
            pending.difference_update([n for n in pending if _port_open(int(n.rsplit(":")[1]))])
            return not pending

        _wait(cluster, ports_open, args.timeout, "open port")
        out["port_s"] = time.monotonic() - t0
        pending = set(ids)

        def statuses() -> bool:
            pending.difference_update([n for n in pending if _answers_status(cluster, n)])
            return not pending

        _wait(cluster, statuses, args.timeout, "STATUS reply")
        out["status_s"] = time.monotonic() - t0
        cluster.leader(timeout=args.timeout)
        out["leader_s"] = time.monotonic() - t0
        pids = [p.pid for p in cluster.procs.values()]
        out["executable"] = executable(pids[0])
        time.sleep(args.idle_seconds)
        out["idle"] = _largest([proc_memory(p) for p in pids])
        keys = None if cluster.keys is None else load_client_keys(cluster.keys)
        with Client(ids, timeout=30, keys=keys) as c:
            model_id = c.train(XOR_X, XOR_Y)["model_id"]
        out["trained"] = _largest([proc_memory(p) for p in pids])
        load = run_load(
            [f"tcp://{n}" for n in ids],
            predict_template(model_id, rows_of(2, 1)),
            args.in_flight,
            requests=args.burst,
            timeout=30,
            keys=keys,
        )
        summary = load.summary()
        out["burst_rps"] = summary["throughput_rps"]
        out["burst_errors"] = load.errors + load.unanswered
        out["burst"] = _largest([proc_memory(p) for p in pids])
    finally:
        cluster.stop()
    for key in ("port_s", "status_s", "leader_s"):
        out[key] = round(out[key], 4)
    return out


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs of every figure (memory per field)."""
    out: dict[str, Any] = {"executable": runs[0]["executable"], "repeats": len(runs)}
    for key in ("port_s", "status_s", "leader_s", "burst_rps"):
        out[key] = _median([r[key] for r in runs])
    out["burst_errors"] = sum(r["burst_errors"] for r in runs)
    for phase in ("idle", "trained", "burst"):
        out[f"{phase}_kib"] = {
            k: int(statistics.median(r[phase][k] for r in runs)) for k in ("VmRSS", "VmHWM")
        }
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine(),
        "cluster_size": args.cluster_size,
        "repeats": args.repeats,
        "burst": {"requests": args.burst, "in_flight": args.in_flight, "rows": 1},
        "security": "off (--insecure)" if args.insecure else "CURVE",
        "by_impl": {},
        "runs": {},
    }
    if "kotlin" in args.impls:
        import harness.ktbuild

        # The figures depend on them (heap sizing): recorded with the run.
        result["jvm_flags"] = list(harness.ktbuild.JAVA_FLAGS)
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-startup-") as tmp:
        for impl in args.impls:
            runs = [one_run(impl, Path(tmp) / f"{impl}-{i}", args) for i in range(args.repeats)]
            result["runs"][impl] = runs
            result["by_impl"][impl] = summarize(runs)
    py = result["by_impl"].get("py")
    if py:
        result["over_py"] = {
            impl: {
                "status_s": round(s["status_s"] / py["status_s"], 3),
                "idle_rss": round(s["idle_kib"]["VmRSS"] / py["idle_kib"]["VmRSS"], 3),
                "burst_hwm": round(s["burst_kib"]["VmHWM"] / py["burst_kib"]["VmHWM"], 3),
            }
            for impl, s in result["by_impl"].items()
            if impl != "py"
        }
    return result


def report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 132))  # readable in a pipe or a file
    m = result["machine"]
    table = Table(
        title=f"start-up of a {result['cluster_size']}-node cluster, medians of "
        f"{result['repeats']}; {m['cores']} cores, load {m['load_avg_1m_at_start']} at start",
        caption="RSS / peak (VmHWM) in MiB, the largest node's; burst: "
        f"{result['burst']['requests']} one-row predictions, {result['burst']['in_flight']} "
        "in flight",
    )
    for col in ("impl", "port s", "STATUS s", "leader s", "idle", "trained", "burst", "burst/s"):
        table.add_column(col, justify="right")

    def mib(mem: dict[str, int]) -> str:
        return f"{mem['VmRSS'] / 1024:.1f} / {mem['VmHWM'] / 1024:.1f}"

    for impl, s in result["by_impl"].items():
        table.add_row(
            f"{impl} ({s['executable']})",
            f"{s['port_s']:.3f}",
            f"{s['status_s']:.3f}",
            f"{s['leader_s']:.3f}",
            mib(s["idle_kib"]),
            mib(s["trained_kib"]),
            mib(s["burst_kib"]),
            f"{s['burst_rps']:.0f}",
        )
    con.print(table)
    if "jvm_flags" in result:
        con.print(f"kotlin JVM options: {' '.join(result['jvm_flags'])}")
    for impl, r in result.get("over_py", {}).items():
        con.print(
            f"{impl} / py: time to STATUS {r['status_s']}×, idle RSS {r['idle_rss']}×, "
            f"peak RSS after the burst {r['burst_hwm']}×"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--impls", default="py,go,kotlin", help="comma-separated, of py,go,kotlin")
    p.add_argument("--repeats", type=int, default=3, help="clusters started per implementation")
    p.add_argument("--cluster-size", type=int, default=1, help="nodes per cluster")
    p.add_argument("--idle-seconds", type=float, default=1.0, help="wait before the idle RSS")
    p.add_argument("--burst", type=int, default=5000, help="predictions after training")
    p.add_argument("--in-flight", type=int, default=50, help="burst requests outstanding")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")
    p.add_argument("--insecure", action="store_true", help="nodes without CURVE")
    p.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = p.parse_args(argv)
    args.impls = list(dict.fromkeys(i for i in args.impls.split(",") if i))
    bad = [i for i in args.impls if i not in IMPLS]
    if bad or not args.impls:
        p.error(f"--impls must name {', '.join(IMPLS)}, got {','.join(bad) or 'nothing'}")
    if args.repeats < 1 or args.cluster_size < 1 or args.burst < 1 or args.in_flight < 1:
        p.error("--repeats, --cluster-size, --burst and --in-flight must be at least 1")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
