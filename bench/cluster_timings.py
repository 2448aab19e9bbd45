"""``python -m bench cluster``: how fast a local cluster starts, trains and heals.

Three figures, each from real node processes on loopback:

- start-up: from launching N node processes to one agreed leader;
- XOR round trip: a client's TRAIN of XOR (the README's first example) until the committed
  model id comes back (median of several);
- failover: SIGKILL of the leader until the next acknowledged write (an
  IMPORT of a small model, retried every few milliseconds), median and max
  over several kills, the killed node restarted in between.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from client import Client, ClientError, ClusterUnavailable
from harness.cluster import LocalCluster, wait_for
from zmqnode.ml.training import train

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.float32)


def _write_once(nodes: list[str], model: bytes, deadline: float, keys: Path | None) -> float:
    """Import ``model`` with a fresh request id until one node acknowledges."""
    import uuid

    request_id = uuid.uuid4().hex
    while time.monotonic() < deadline:
        with Client(
            nodes, timeout=0.3, retries=0, connect_timeout=0.1, backoff=0.0, keys=keys
        ) as c:
            try:
                c.request({"type": "IMPORT", "id": request_id}, [model], deadline=0.3)
                return time.monotonic()
            except (ClientError, ClusterUnavailable):
                continue
    raise TimeoutError("no write acknowledged within the deadline")


def run(nodes: int = 3, kills: int = 10, xor_runs: int = 5) -> dict[str, Any]:
    model_bytes = train(XOR_X, XOR_Y).to_bytes()
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), n=nodes)
        t0 = time.monotonic()
        cluster.start()
        try:
            cluster.leader(timeout=30)
            startup = time.monotonic() - t0

            xor = []
            with cluster.client(timeout=30) as c:
                for _ in range(xor_runs):
                    t = time.monotonic()
                    c.train(XOR_X, XOR_Y)
                    xor.append(time.monotonic() - t)

            failovers = []
            for _ in range(kills):
                leader = cluster.leader(timeout=30)
                others = [n for n in cluster.ids if n != leader]
                _write_once(others, model_bytes, time.monotonic() + 10, cluster.keys)  # warm path
                t = time.monotonic()
                cluster.kill(leader)
                done = _write_once(others, model_bytes, t + 30, cluster.keys)
                failovers.append(done - t)
                cluster.start(leader)
                wait_for(
                    lambda leader=leader: cluster.status(leader)["leader"],
                    30,
                    "the restarted node to rejoin",
                )
        finally:
            cluster.stop()
    return {
        "nodes": nodes,
        "startup_to_leader_s": round(startup, 3),
        "xor_train_round_trip_s": {
            "median": round(statistics.median(xor), 3),
            "runs": [round(v, 3) for v in xor],
        },
        "failover_kill_to_ack_s": {
            "median": round(statistics.median(failovers), 3),
            "max": round(max(failovers), 3),
            "runs": [round(v, 3) for v in failovers],
        },
    }


def main(argv: list[str]) -> int:
    import argparse
    import json
    import os
    import platform

    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(prog="python -m bench cluster", description=__doc__)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--xor-runs", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = run(args.nodes, args.kills, args.xor_runs)
    result["machine"] = {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Table(title=f"zmqnode cluster timings ({args.nodes} nodes)")
    table.add_column("measure")
    table.add_column("median s", justify="right")
    table.add_column("detail")
    table.add_row("start-up to leader", f"{result['startup_to_leader_s']:.3f}", "")
    xor = result["xor_train_round_trip_s"]
    table.add_row("XOR train round trip", f"{xor['median']:.3f}", f"runs {xor['runs']}")
    fo = result["failover_kill_to_ack_s"]
    table.add_row(
        "kill -9 leader → next ack",
        f"{fo['median']:.3f}",
        f"max {fo['max']:.3f}, runs {fo['runs']}",
    )
    Console().print(table)
    return 0
