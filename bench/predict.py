"""``python -m bench predict``: prediction throughput and latency.

One process keeps N requests in flight (``--in-flight``, default 100) over
DEALER sockets -- by default one socket per in-flight request, i.e. N
clients; ``--sockets K`` pipelines N/K requests per socket -- against one
node or spread round-robin over several (``--nodes H:P,H:P``; by default a
fresh local cluster of ``--cluster-size`` nodes, all of which serve: a
follower answers predictions itself). The load generator is
``bench/loadgen.py``; it is built to cost a few microseconds per request, so
that what is measured is the node.

What a run reports:

- the main measurement: ``--requests N`` (or ``--duration S``) predictions of
  ``--rows`` rows each with the model (``--model ID``, or XOR trained first):
  throughput, p50/p95/p99/max latency, errors, the harness's CPU per request
  and, for a cluster the bench started, the nodes' CPU per request (from
  /proc); ``--profile-node FILE`` adds a py-spy profile of the node's event
  loop during the measurement, summarized by serving step
  (``bench/predict_profile.py``);
- ``big``: one request of 10,000 rows through a 64->64->10 model built here
  and IMPORTed through the client, timed sequentially (median and p99 of
  ``--big-requests``); ``--no-big`` skips it;
- ``--baseline``: (a) the same harness against a bare pyzmq ROUTER echo
  server in its own process (the ceiling for this pattern on this machine),
  with the same sockets and once pipelined over one socket (what the harness
  itself can drive); (b) the original system's benchmark, 100 ``python -m client predict``
  processes started at once (wall time until all exited) against our harness
  doing the same 100 predictions end to end (context, 100 sockets, connect,
  100 requests, all replies), and against 100 bare ``python -c "import zmq"``
  started the same way: the start-up any pyzmq client pays, so the ratio
  shows what ``python -m client`` adds to it (target ≤ 2×). Our figures are
  printed as ratios of both;
- ``--impl go``: the local cluster's nodes are Go nodes (``go/worker``, built
  by ``harness.gobuild``) instead of Python ones. With ``--baseline`` the run
  then also measures a Python cluster of the same size, started after the Go
  one has stopped, with the same model, load and harness: the report puts the
  Go node's throughput and p99 next to the Python node's and the echo
  ceiling, with the ratios. A cluster per implementation, not one mixed
  cluster with the load aimed at one node: the default is one node, which
  is what the existing figures measure, and a mixed cluster would need
  three processes sharing the two cores with the node under load (followers
  answering heartbeats and replicating nothing), adding noise to both sides
  and making the comparison depend on which node leads. The two clusters run
  one after the other, so the machine's load can differ between them:
  compare medians of several runs. ``--no-seed`` skips the 100-process part
  of ``--baseline`` (b), for short runs;
- ``--impl kotlin``: the same with Kotlin nodes (``java -jar kotlin/worker.jar``,
  built by ``harness.ktbuild``). ``--impl`` may be given more than once or as a
  list (``--impls py,go,kotlin`` is the same as ``--impl py --impl go --impl
  kotlin``): the first is the main cluster (the one ``--baseline``'s echo and
  one-socket rows are measured with), the others are measured after it, one
  cluster at a time, each with the same model, load and harness, and a Python
  cluster too with ``--baseline`` when ``py`` is not listed; the report has a
  row per implementation and each one's ratios to the Python node's
  (``ratios.by_impl``);
- ``--sweep``: in-flight clients (1, 10, 100, 1000) x rows per request
  (1, 100, 10,000), ``--sweep-seconds`` each, and the node processes' RSS
  (VmRSS, VmHWM) before and after, to show memory stays bounded, and the
  nodes' Raft terms before and after (no election should happen).

The machine is usually shared and noisy: ``--json`` records the core count
and the load average at the start; compare medians of several runs, and
prefer the CPU-per-request figures, which noise disturbs much less than
throughput.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bench.common import executable, stop_process
from client import Client
from client.api import default_keys
from harness.cluster import IMPLS, ROOT, LocalCluster, pick_base_ports, wait_for
from zmqnode.transport import wire
from zmqnode.transport.security import ClientKeys, load_client_keys

from .loadgen import (
    LoadGenerator,
    RequestTemplate,
    echo_template,
    raise_fd_limit,
    run_load,
    sockets_for,
)
from .predict_profile import Profiler, cpu_per_request, cpu_seconds, summarize

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([0, 1, 1, 0], np.float32)
SWEEP_IN_FLIGHT = (1, 10, 100, 1000)
SWEEP_ROWS = (1, 100, 10_000)
BIG_ROWS = 10_000
BIG_SHAPE = (64, 64, 10)
SEED_PROCESSES = 100


def predict_template(model_id: str, x: np.ndarray) -> RequestTemplate:
    desc, blob = wire.array_to_frame(np.ascontiguousarray(x, dtype=np.float32))
    return RequestTemplate.make({"type": "PREDICT", "model_id": model_id, "inputs": desc}, [blob])


def rows_of(width: int, rows: int, seed: int = 0) -> np.ndarray:
    """``rows`` x ``width`` float32 inputs in [0, 1) (finite, so every request is valid)."""
    return np.random.default_rng(seed).random((rows, width), dtype=np.float32)


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "numpy": np.__version__,
    }


# -- node memory ------------------------------------------------------------------------


def proc_memory(pid: int) -> dict[str, int] | None:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in KiB, from /proc/<pid>/status."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def node_memory(pids: dict[str, int]) -> dict[str, dict[str, int] | None]:
    return {node: proc_memory(pid) for node, pid in pids.items()}


# -- the echo ceiling ---------------------------------------------------------------------


class EchoProcess:
    """``python -m bench.loadgen echo`` in its own process, ready when entered."""

    def __init__(self) -> None:
        self.endpoint = f"tcp://127.0.0.1:{pick_base_ports(1)[0]}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> EchoProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", "echo", self.endpoint], cwd=ROOT
        )
        ctx = zmq.Context.instance()
        probe = ctx.socket(zmq.DEALER)
        probe.setsockopt(zmq.LINGER, 0)
        probe.connect(self.endpoint)
        try:

            def echoed() -> bool:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"echo server exited with {self.proc.returncode}")
                probe.send_multipart([b"", b"ping"])
                return bool(probe.poll(100)) and probe.recv_multipart()[-1] == b"ping"

            wait_for(echoed, 10, "the echo server")
        finally:
            probe.close(0)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)


# -- the measurements --------------------------------------------------------------------


def measure(
    endpoints: list[str],
    template: RequestTemplate,
    in_flight: int,
    requests: int | None,
    duration: float | None,
    sockets: int | None,
    warmup: int,
    node_pids: dict[str, int] | None = None,
    profile: Path | None = None,
    keys: ClientKeys | None = None,
) -> dict[str, Any]:
    """Warm up, then measure; with ``node_pids`` also the nodes' CPU per request,
    with ``profile`` a py-spy profile of the first node during the measurement."""
    node_pids = node_pids or {}
    with LoadGenerator(endpoints, template, in_flight, sockets=sockets, keys=keys) as gen:
        if warmup:
            gen.run(requests=warmup)
        before = {n: cpu_seconds(pid) for n, pid in node_pids.items()}
        if profile is not None and node_pids:
            with Profiler(next(iter(node_pids.values())), profile):
                result = gen.run(requests=requests, duration=duration)
        else:
            result = gen.run(requests=requests, duration=duration)
        after = {n: cpu_seconds(pid) for n, pid in node_pids.items()}
    summary = result.summary()
    if node_pids:
        summary.update(cpu_per_request(before, after, result.answered))
    if profile is not None and node_pids:
        per_node_loop = summary.get("node_loop_cpu_us_per_request")
        if per_node_loop is not None:
            per_node_loop *= len(node_pids)  # the profiled node serves 1/n of the requests
        summary["node_profile"] = summarize(profile, per_node_loop)
    return summary


def seed_style(
    nodes: list[str], model_id: str, processes: int = SEED_PROCESSES, keys_dir: Path | None = None
) -> dict[str, Any]:
    """``processes`` ``python -m client predict`` started at once; wall time until all exited."""
    cmd = [sys.executable, "-m", "client", "predict", "--nodes", ",".join(nodes), model_id, "1,0"]
    cmd += ["--keys", str(keys_dir)] if keys_dir else ["--insecure"]
    return at_once(cmd, processes)


def bare_pyzmq(processes: int = SEED_PROCESSES) -> dict[str, Any]:
    """``processes`` ``python -c "import zmq"`` started as ``seed_style`` starts the
    client: the floor for the original system's way (an interpreter and pyzmq)."""
    return at_once([sys.executable, "-c", "import zmq"], processes)


def at_once(cmd: list[str], processes: int) -> dict[str, Any]:
    """``processes`` copies of ``cmd`` started at once: wall time until all exited,
    CPU per process (user + system), failures.

    One untimed run first, allowed to write its bytecode cache (``__pycache__``)
    as any earlier run on the machine would have: under PYTHONDONTWRITEBYTECODE
    (set in some containers and CI) every process would otherwise compile the
    client's modules from source, which pyzmq, installed compiled, never does.
    """
    import resource

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=60)
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    failures = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            failures.append(err.decode(errors="replace").strip()[-200:])
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime - usage0.ru_utime + usage.ru_stime - usage0.ru_stime
    return {
        "processes": processes,
        "wall_s": round(wall, 3),
        "cpu_s_per_process": round(cpu / processes, 3),
        "errors": len(failures),
        "first_error": failures[0] if failures else None,
    }


def ours_end_to_end(
    endpoints: list[str],
    model_id: str,
    width: int,
    n: int = SEED_PROCESSES,
    runs: int = 5,
    keys: ClientKeys | None = None,
) -> dict[str, Any]:
    """Our harness doing the original benchmark's ``n`` one-row predictions: encode, open ``n``
    sockets, connect, send all, wait for every reply. Median of ``runs``."""
    walls, errors = [], 0
    x = np.zeros((1, width), np.float32)
    x[0, 0] = 1.0  # "1,0"
    for _ in range(runs):
        t0 = time.perf_counter()
        template = predict_template(model_id, x)
        with LoadGenerator(endpoints, template, n, sockets=n, keys=keys) as gen:
            result = gen.run(requests=n)
        walls.append(time.perf_counter() - t0)
        errors += result.errors
    return {
        "predictions": n,
        "sockets": n,
        "wall_ms": round(statistics.median(walls) * 1000, 2),
        "runs_ms": [round(w * 1000, 2) for w in walls],
        "errors": errors,
    }


def build_big_model(path: Path) -> Any:
    """A 64->64->10 classifier, trained briefly on random data (the weights do not matter)."""
    from zmqnode.ml.options import TrainOptions
    from zmqnode.ml.training import train

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, BIG_SHAPE[0])).astype(np.float32)
    y = rng.integers(0, BIG_SHAPE[-1], 2000)
    model = train(x, y, TrainOptions(hidden_layers=BIG_SHAPE[1:-1], epochs=5, seed=0))
    if model.layer_sizes != BIG_SHAPE:
        raise RuntimeError(f"built {model.layer_sizes}, wanted {BIG_SHAPE}")
    path.write_bytes(model.to_bytes())
    return model


def big_request(
    nodes: list[str], workdir: Path, requests: int, keys: ClientKeys | None = None
) -> dict[str, Any]:
    """Sequential single requests of 10,000 rows through an IMPORTed 64->64->10 model."""
    path = workdir / "big_64_64_10.bin"
    model = build_big_model(path)
    x = np.random.default_rng(1).standard_normal((BIG_ROWS, BIG_SHAPE[0])).astype(np.float32)
    with Client(nodes, timeout=30, keys=keys) as c:
        model_id = c.import_model(path)["model_id"]
        got = c.predict(model_id, x)  # also the warm-up: the node loads the model
    if not np.array_equal(got, model.predict(x)):
        raise RuntimeError("the node's 10,000 predictions differ from the local model's")
    template = predict_template(model_id, x)
    summary = run_load(
        nodes_endpoints(nodes[:1]), template, 1, requests, warmup=3, keys=keys
    ).summary()
    return {
        "model_id": model_id,
        "layers": list(BIG_SHAPE),
        "rows": BIG_ROWS,
        "request_bytes": x.nbytes,
        "node": nodes[0],
        **{k: summary[k] for k in ("requests", "errors", "p50_ms", "p99_ms", "max_ms", "mean_ms")},
        "local_predict_ms": _local_predict_ms(model, x),
        "target_ms": 10.0,
    }


def _local_predict_ms(model: Any, x: np.ndarray, runs: int = 20) -> float:
    """The same forward pass in this process with one BLAS thread, as a node runs
    it (the floor for the request): median ms."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits

        limit: Any = threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # bench-only dependency; without it BLAS picks its threads
        limit = contextlib.nullcontext()
    times = []
    with limit:
        for _ in range(runs):
            t = time.perf_counter()
            model.predict(x)
            times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 3)


def sweep(
    endpoints: list[str],
    model_id: str,
    width: int,
    seconds: float,
    node_pids: dict[str, int],
    keys: ClientKeys | None = None,
) -> dict[str, Any]:
    """Throughput and latency over in-flight clients x rows per request, node memory,
    and the nodes' Raft terms before and after (a new term means an election: the
    load kept some node's event loop from answering heartbeats in time)."""
    templates = {rows: predict_template(model_id, rows_of(width, rows)) for rows in SWEEP_ROWS}
    cells = []
    memory_before = node_memory(node_pids)
    nodes = [e.removeprefix("tcp://") for e in endpoints]
    terms_before = raft_terms(nodes, keys)
    for in_flight in SWEEP_IN_FLIGHT:
        n_sockets = sockets_for(in_flight)
        with LoadGenerator(endpoints, templates[SWEEP_ROWS[0]], in_flight, keys=keys) as gen:
            for rows in SWEEP_ROWS:
                gen.request = templates[rows]
                gen.run(requests=min(in_flight, 200) * 2, timeout=30)  # warm-up
                r = gen.run(duration=seconds, timeout=30).summary()
                cells.append(
                    {
                        "in_flight": in_flight,
                        "sockets": n_sockets,
                        "requests_per_socket": -(-in_flight // n_sockets),
                        "rows": rows,
                        "throughput_rps": r["throughput_rps"],
                        "rows_per_s": round(r["throughput_rps"] * rows, 1),
                        "p50_ms": r["p50_ms"],
                        "p99_ms": r["p99_ms"],
                        "max_ms": r["max_ms"],
                        "requests": r["requests"],
                        "errors": r["errors"],
                        "error_codes": r["error_codes"],
                        "node_memory_kib": node_memory(node_pids),
                    }
                )
    return {
        "seconds_per_cell": seconds,
        "cells": cells,
        "node_memory_before_kib": memory_before,
        "node_memory_after_kib": node_memory(node_pids),
        "raft_terms_before": terms_before,
        "raft_terms_after": raft_terms(nodes, keys),
    }


def raft_terms(nodes: list[str], keys: ClientKeys | None = None) -> dict[str, int | None]:
    """Each node's current Raft term (STATUS), None if it did not answer."""
    terms: dict[str, int | None] = {}
    for node in nodes:
        try:
            with Client([node], timeout=5.0, retries=1, keys=keys) as c:
                terms[node] = int(c.status()["term"])
        except Exception:  # a node that cannot answer STATUS is reported, not fatal
            terms[node] = None
    return terms


def _path_or_none(text: str | None) -> Path | None:
    return Path(text) if text else None


def nodes_endpoints(nodes: list[str]) -> list[str]:
    return [f"tcp://{n}" for n in nodes]


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine()}
    raise_fd_limit(max(args.in_flight, max(SWEEP_IN_FLIGHT) if args.sweep else 0) + 200)
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-") as tmp:
        cluster = None
        nodes = args.nodes.split(",") if args.nodes else None
        try:
            if not nodes:
                cluster = LocalCluster(
                    Path(tmp),
                    n=args.cluster_size,
                    insecure=args.insecure,
                    impls=(args.impl,) * args.cluster_size,
                )
                cluster.start()
                cluster.leader(timeout=30)
                nodes = list(cluster.ids)
                keys_dir = cluster.keys
            else:
                keys_dir = None if args.insecure else _path_or_none(default_keys())
            keys = None if keys_dir is None else load_client_keys(keys_dir)
            node_pids = {n: p.pid for n, p in cluster.procs.items()} if cluster else {}
            result["node_executables"] = {n: executable(pid) for n, pid in node_pids.items()}
            endpoints = nodes_endpoints(nodes)
            with Client(nodes, timeout=30, keys=keys) as c:
                if args.model:
                    model_id = args.model
                    width = int(c.info(model_id)["inputs"])
                else:
                    model_id = c.train(XOR_X, XOR_Y)["model_id"]
                    width = 2
            result.update(
                nodes=nodes,
                cluster="local, started by the bench" if cluster else "given by --nodes",
                impl=args.impl if cluster else None,
                model_id=model_id,
                in_flight=args.in_flight,
                rows=args.rows,
                security="off (--insecure)" if keys is None else "CURVE",
            )
            template = predict_template(model_id, rows_of(width, args.rows))
            result["memory_before_kib"] = node_memory(node_pids)
            ours = measure(
                endpoints,
                template,
                args.in_flight,
                None if args.duration else args.requests,
                args.duration,
                args.sockets,
                args.warmup,
                node_pids,
                Path(args.profile_node) if args.profile_node else None,
                keys,
            )
            if args.impl != "py":
                # The main thread of a Go process is not its event loop: no such figure.
                ours.pop("node_loop_cpu_us_per_request", None)
            result["zmqnode"] = ours
            if args.baseline:
                base: dict[str, Any] = {}
                with EchoProcess() as echo:
                    base["echo"] = measure(
                        [echo.endpoint],
                        echo_template(template),
                        args.in_flight,
                        None if args.duration else args.requests,
                        args.duration,
                        args.sockets,
                        args.warmup,
                    )
                    base["echo_one_socket"] = measure(
                        [echo.endpoint],
                        echo_template(template),
                        args.in_flight,
                        None if args.duration else max(args.requests, 50_000),
                        args.duration,
                        1,
                        args.warmup,
                    )
                # The node with the same pipelining as the harness's own ceiling.
                base["zmqnode_one_socket"] = measure(
                    endpoints[:1],
                    template,
                    args.in_flight,
                    None if args.duration else args.requests,
                    args.duration,
                    1,
                    args.warmup,
                    keys=keys,
                )
                if not args.no_seed:
                    base["seed_style"] = seed_style(nodes, model_id, keys_dir=keys_dir)
                    base["bare_pyzmq"] = bare_pyzmq()
                    base["ours_end_to_end"] = ours_end_to_end(endpoints, model_id, width, keys=keys)
                result["baseline"] = base
                result["ratios"] = ratios(ours, base)
            if not args.no_big:
                result["big"] = big_request(nodes, Path(tmp), args.big_requests, keys)
            if args.sweep:
                result["sweep"] = sweep(
                    endpoints, model_id, width, args.sweep_seconds, node_pids, keys
                )
            result["memory_after_kib"] = node_memory(node_pids)
        finally:
            if cluster is not None:
                cluster.stop()
        if cluster is not None:
            # After the main cluster has stopped: two clusters never share the cores.
            measure_other_impls(result, args, Path(tmp))
    return result


def other_impls(args: argparse.Namespace) -> list[str]:
    """The implementations measured after the main cluster (``args.impl``): the
    rest of ``--impl``/``--impls``, and ``py`` with ``--baseline`` when not listed."""
    impls = list(getattr(args, "impls", None) or [args.impl])
    if args.baseline and "py" not in impls:
        impls.append("py")
    return [i for i in impls if i != args.impl]


def measure_other_impls(result: dict[str, Any], args: argparse.Namespace, tmp: Path) -> None:
    """Measure each of ``other_impls(args)`` on its own fresh cluster, one after the
    other, and put the Go and Kotlin nodes' ratios to the Python node's in the result."""
    others = other_impls(args)
    if not others:
        return
    main = result["zmqnode"]
    main.setdefault("impl", args.impl)
    main.setdefault("node_executables", result.get("node_executables"))
    by_impl: dict[str, dict[str, Any]] = {args.impl: main}
    for impl in others:
        by_impl[impl] = measure_impl(impl, args, tmp / impl)
    result["by_impl"] = by_impl
    base = result.setdefault("baseline", {})
    for impl, summary in by_impl.items():
        if impl != args.impl:
            base[f"zmqnode_{impl}"] = summary
    ra = result.setdefault("ratios", {})
    py = by_impl.get("py")
    if py is None:
        return
    ra["by_impl"] = {i: impl_ratios(s, py) for i, s in by_impl.items() if i != "py"}
    if args.impl != "py":
        ra.update(ra["by_impl"][args.impl])


def measure_impl(impl: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The main measurement against a fresh local cluster of ``impl`` nodes
    (XOR trained on it, the same rows, in-flight requests and sockets)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(
        workdir, n=args.cluster_size, insecure=args.insecure, impls=(impl,) * args.cluster_size
    )
    cluster.start()
    try:
        cluster.leader(timeout=30)
        keys = None if cluster.keys is None else load_client_keys(cluster.keys)
        with Client(list(cluster.ids), timeout=30, keys=keys) as c:
            model_id = c.train(XOR_X, XOR_Y)["model_id"]
        summary = measure(
            nodes_endpoints(list(cluster.ids)),
            predict_template(model_id, rows_of(2, args.rows)),
            args.in_flight,
            None if args.duration else args.requests,
            args.duration,
            args.sockets,
            args.warmup,
            {n: p.pid for n, p in cluster.procs.items()},
            keys=keys,
        )
        summary["impl"] = impl
        summary["node_executables"] = {n: executable(p.pid) for n, p in cluster.procs.items()}
        if impl != "py":
            summary.pop("node_loop_cpu_us_per_request", None)
        summary["model_id"] = model_id
        return summary
    finally:
        cluster.stop()


def impl_ratios(ours: dict[str, Any], py: dict[str, Any]) -> dict[str, Any]:
    """This run's implementation against the Python node's (``--impl go --baseline``)."""

    def div(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    out = {
        "impl_over_py_throughput": div(ours["throughput_rps"], py["throughput_rps"]),
        "impl_over_py_p99": div(ours["p99_ms"], py["p99_ms"]),
    }
    if "node_cpu_us_per_request" in ours and "node_cpu_us_per_request" in py:
        out["impl_over_py_node_cpu"] = div(
            ours["node_cpu_us_per_request"], py["node_cpu_us_per_request"]
        )
    return out


def ratios(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    def div(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    echo = base["echo"]
    out = {
        "zmqnode_over_echo_throughput": div(ours["throughput_rps"], echo["throughput_rps"]),
        "zmqnode_over_echo_p99": div(ours["p99_ms"], echo["p99_ms"]),
        "zmqnode_over_echo_one_socket_throughput": div(
            base["zmqnode_one_socket"]["throughput_rps"], base["echo_one_socket"]["throughput_rps"]
        ),
    }
    if "seed_style" not in base:  # --no-seed
        return out
    seed, e2e, bare = base["seed_style"], base["ours_end_to_end"], base["bare_pyzmq"]
    return {
        **out,
        "seed_wall_over_ours": div(seed["wall_s"] * 1000, e2e["wall_ms"]),
        "ours_over_seed_wall": div(e2e["wall_ms"], seed["wall_s"] * 1000),
        "client_over_bare_pyzmq_wall": div(seed["wall_s"], bare["wall_s"]),
        "client_over_bare_pyzmq_cpu": div(seed["cpu_s_per_process"], bare["cpu_s_per_process"]),
    }


# -- output -------------------------------------------------------------------------------


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 132))  # tables stay readable in a pipe or a file
    m = result["machine"]
    con.print(
        f"[bold]predict[/bold] against {', '.join(result['nodes'])} ({result['cluster']}); "
        f"model {result['model_id']}; {m['cores']} cores, load {m['load_avg_1m_at_start']} "
        "at start"
    )
    table = Table(
        title=f"{result['in_flight']} requests in flight, {result['rows']} row(s) per request"
    )
    for col in ("target", "sockets", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col, justify="right")
    for col in ("max ms", "errors", "harness µs/req (loop)"):
        table.add_column(col, justify="right")
    impl = result.get("impl", "py")
    rows = [("zmqnode" if impl == "py" else f"zmqnode, {impl} node", result["zmqnode"])]
    for other, summary in result.get("by_impl", {}).items():
        if other != impl:
            rows.append((f"zmqnode, {other} node", summary))
    base = result.get("baseline")
    if base:
        rows += [
            ("echo (ceiling)", base["echo"]),
            ("zmqnode, 1 socket", base["zmqnode_one_socket"]),
            ("echo, 1 socket", base["echo_one_socket"]),
        ]
    for name, r in rows:
        table.add_row(
            name,
            f"{r['sockets']} × {-(-r['in_flight'] // r['sockets'])}",
            str(r["requests"]),
            f"{r['throughput_rps']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['max_ms']:.2f}",
            _errors(r),
            f"{r['harness_cpu_us_per_request']} ({r['harness_loop_cpu_us_per_request']})",
        )
    con.print(table)
    for name, r in rows:
        if r.get("missed_wakeups"):
            con.print(f"[red]{name}: {r['missed_wakeups']} replies waited for the harness's sweep")
    con.print(
        "harness µs/req: this process's CPU time per answered request, its Python loop and "
        "ZeroMQ's I/O thread (the loop alone); 'sockets': sockets × requests pipelined on each"
    )
    z = result["zmqnode"]
    if len(result["nodes"]) > 1:
        con.print(f"answers per node: {z['per_endpoint']}")
    if "node_loop_cpu_us_per_request" in z:
        con.print(
            f"node CPU per request (all nodes): {z['node_cpu_us_per_request']} µs, of which "
            f"the event loop thread {z['node_loop_cpu_us_per_request']} µs"
        )
    elif "node_cpu_us_per_request" in z:
        con.print(f"node CPU per request (all nodes): {z['node_cpu_us_per_request']} µs")
    prof = z.get("node_profile")
    if prof and prof.get("samples"):
        tp = Table(title=f"where the node's event loop spends its time ({prof['samples']} samples)")
        tp.add_column("step")
        tp.add_column("share", justify="right")
        tp.add_column("µs/request", justify="right")
        for st in prof["steps"]:
            tp.add_row(st["step"], f"{st['share']:.1%}", str(st["us_per_request"]))
        con.print(tp)
        con.print(f"raw py-spy samples: {prof['file']}")
    if base:
        ra = result["ratios"]
        con.print(
            f"zmqnode / echo: throughput {ra['zmqnode_over_echo_throughput']}, "
            f"p99 {ra['zmqnode_over_echo_p99']}× "
            f"(both on one pipelined socket: {ra['zmqnode_over_echo_one_socket_throughput']})"
        )
    by_ratio = result.get("ratios", {}).get("by_impl", {})
    for other, r in by_ratio.items():
        mine, py = result["by_impl"][other], result["by_impl"]["py"]
        order = list(result["by_impl"])
        con.print(
            f"{other} node / py node: throughput {r['impl_over_py_throughput']}, "
            f"p99 {r['impl_over_py_p99']}×, node CPU per request "
            f"{r.get('impl_over_py_node_cpu')}× "
            f"({mine.get('node_cpu_us_per_request')} vs {py.get('node_cpu_us_per_request')} µs; "
            f"clusters one after the other in this run: {', '.join(order)})"
        )
    if base and "seed_style" in base:
        ra = result["ratios"]
        seed, e2e = base["seed_style"], base["ours_end_to_end"]
        t2 = Table(title=f"the seed's way: {seed['processes']} one-row predictions")
        for col in ("how", "wall ms", "errors"):
            t2.add_column(col, justify="right")
        t2.add_row(
            f"{seed['processes']} × python -m client predict, started at once "
            f"({seed['cpu_s_per_process']} CPU s each)",
            f"{seed['wall_s'] * 1000:,.0f}",
            str(seed["errors"]),
        )
        bare = base["bare_pyzmq"]
        t2.add_row(
            f'{bare["processes"]} × python -c "import zmq", started the same way '
            f"({bare['cpu_s_per_process']} CPU s each)",
            f"{bare['wall_s'] * 1000:,.0f}",
            str(bare["errors"]),
        )
        t2.add_row(
            f"our harness: {e2e['sockets']} sockets, connect, {e2e['predictions']} requests "
            "(median of 5)",
            f"{e2e['wall_ms']:.1f}",
            str(e2e["errors"]),
        )
        con.print(t2)
        con.print(
            f"python -m client predict / bare import zmq: wall "
            f"{ra['client_over_bare_pyzmq_wall']}×, CPU per process "
            f"{ra['client_over_bare_pyzmq_cpu']}× (target ≤ 2×)"
        )
        con.print(
            f"seed / ours: {ra['seed_wall_over_ours']}× "
            f"(ours is {ra['ours_over_seed_wall']} of the seed's wall time; target ≤ 100 ms)"
        )
        if seed["first_error"]:
            con.print(f"[red]a seed-style process failed:[/red] {seed['first_error']}")
    big = result.get("big")
    if big:
        con.print(
            f"one request of {big['rows']:,} rows through {'→'.join(map(str, big['layers']))} "
            f"({big['request_bytes'] / 1e6:.2f} MB in), {big['requests']} sequential: "
            f"median {big['p50_ms']:.2f} ms, p99 {big['p99_ms']:.2f} ms, max "
            f"{big['max_ms']:.2f} ms, errors {big['errors']} (target ≤ {big['target_ms']:.0f} ms; "
            f"the same forward pass in this process: {big['local_predict_ms']:.2f} ms)"
        )
    sw = result.get("sweep")
    if sw:
        t3 = Table(title=f"sweep: {sw['seconds_per_cell']} s per cell")
        for col in ("in flight", "sockets", "rows/req", "req/s", "rows/s", "p50 ms", "p99 ms"):
            t3.add_column(col, justify="right")
        for col in ("errors", "node RSS / peak MiB"):
            t3.add_column(col, justify="right")
        for c in sw["cells"]:
            t3.add_row(
                str(c["in_flight"]),
                f"{c['sockets']} × {c['requests_per_socket']}",
                f"{c['rows']:,}",
                f"{c['throughput_rps']:,.0f}",
                f"{c['rows_per_s']:,.0f}",
                f"{c['p50_ms']:.2f}",
                f"{c['p99_ms']:.2f}",
                _errors(c),
                _rss(c["node_memory_kib"]),
            )
        con.print(t3)
        con.print(
            "sockets: one DEALER per in-flight request (no pipelining) whenever the fd "
            "limit allows; 'a × b' means a sockets with b requests each"
        )
        con.print(
            f"node memory before the sweep: {_rss(sw['node_memory_before_kib'], True)}; "
            f"after: {_rss(sw['node_memory_after_kib'], True)}"
        )
        before, after = sw["raft_terms_before"], sw["raft_terms_after"]
        changed = {n: (before.get(n), t) for n, t in after.items() if t != before.get(n)}
        con.print(
            f"Raft terms before/after the sweep: {before} / {after}"
            + (f" [red]— elections during the sweep: {changed}[/red]" if changed else "")
        )


def _errors(r: dict[str, Any]) -> str:
    if not r["errors"]:
        return "0"
    return f"{r['errors']} {r['error_codes']}"


def _rss(mem: dict[str, Any], named: bool = False) -> str:
    parts = []
    for node, m in mem.items():
        if not m:
            continue
        rss, peak = m["VmRSS"] / 1024, m["VmHWM"] / 1024
        if named:
            parts.append(f"{node}: RSS {rss:.0f} MiB, peak {peak:.0f} MiB")
        else:
            parts.append(f"{rss:.0f} / {peak:.0f}")
    return ", ".join(parts) if parts else "n/a"


def main(argv: list[str]) -> int:
    import json

    from . import predict_http

    p = argparse.ArgumentParser(
        prog="python -m bench predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--nodes", help="H:P,H:P of a running cluster (default: start a local one)")
    p.add_argument(
        "--cluster-size", type=int, help="nodes of the local cluster (default 1; --http: 3)"
    )
    p.add_argument("--model", help="model id to use (default: train XOR first)")
    p.add_argument("--in-flight", type=int, default=100, help="requests outstanding at once")
    p.add_argument(
        "--sockets",
        type=int,
        help="DEALER sockets (default: one per in-flight request, as the fd limit allows)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--requests", type=int, help="requests to measure (default 20,000; --http: --duration 10)"
    )
    group.add_argument("--duration", type=float, help="seconds to measure instead")
    p.add_argument("--rows", type=int, default=1, help="rows per request")
    p.add_argument("--warmup", type=int, default=1000, help="requests before measuring")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="echo ceiling; the original system's way next to bare pyzmq start-ups",
    )
    p.add_argument(
        "--impl",
        "--impls",
        dest="impls",
        action="append",
        metavar="IMPL[,IMPL...]",
        help="the local cluster's nodes: py (python -m zmqnode, the default), go "
        "(go/worker) or kotlin (kotlin/worker.jar); more than once or a comma list "
        "measures each on its own cluster in the same run, the first being the main one; "
        "go or kotlin with --baseline also measures a py cluster",
    )
    p.add_argument(
        "--no-seed",
        action="store_true",
        help="--baseline without the 100-process comparison (the seed's way)",
    )
    p.add_argument("--sweep", action="store_true", help="in-flight x rows table, node memory")
    p.add_argument("--sweep-seconds", type=float, default=1.0, help="seconds per sweep cell")
    p.add_argument("--no-big", action="store_true", help="skip the 10,000-row measurement")
    p.add_argument("--big-requests", type=int, default=50, help="sequential 10,000-row requests")
    p.add_argument(
        "--profile-node",
        metavar="FILE",
        help="py-spy the (first) node during the main measurement, raw samples to FILE",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="nodes without CURVE (the local cluster; with --nodes: nodes run so); "
        "otherwise the local cluster's keys, or $ZMQNODE_KEYS / .cluster/keys with --nodes",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON only")
    predict_http.add_arguments(p)
    args = p.parse_args(argv)
    impls = [i for text in args.impls or ["py"] for i in text.split(",") if i]
    unknown = [i for i in impls if i not in IMPLS]
    if unknown or not impls:
        p.error(f"--impl must name {', '.join(IMPLS)}, got {','.join(unknown) or 'nothing'}")
    args.impls = list(dict.fromkeys(impls))
    args.impl = args.impls[0]
    if args.in_flight < 1 or args.rows < 1 or (args.cluster_size or 1) < 1:
        p.error("--in-flight, --rows and --cluster-size must be at least 1")
    if args.impls != ["py"] and (args.nodes or args.http or args.profile_node):
        p.error("--impl picks the local cluster's nodes: not with --nodes, --http, --profile-node")
    if args.http:
        return predict_http.main_http(args)
    if args.cluster_size is None:
        args.cluster_size = 1
    if args.requests is None and args.duration is None:
        args.requests = 20_000
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result, args)
    return 0
