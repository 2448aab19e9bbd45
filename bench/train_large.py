"""``python -m bench train-large``: what a large dataset costs the leader.

Trains ROWS x COLS float32 rows (default 1,000,000 x 100, 381 MiB) with a
linear binary rule through a fresh 3-node cluster and reports: the leader
process's peak memory growth (VmHWM after minus VmRSS before) in copies of
the dataset (target: about two — the received bytes and the standardized
chunks), the request's wall time, the accuracy on held-back validation rows,
and whether any election timer fired during the job (terms and logs).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import print_measures
from harness.cluster import LocalCluster


def _memory_mib(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def run(rows: int, cols: int, epochs: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    y = (x[:, : min(5, cols)].sum(axis=1) > 0).astype(np.int64)
    data_mib = (x.nbytes + y.nbytes) / 2**20
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), n=3)
        cluster.start()
        try:
            leader = cluster.leader(timeout=30)
            pid = cluster.procs[leader].pid
            with cluster.client(leader, timeout=600) as c:
                c.train(x[:256], y[:256], options={"epochs": 1})  # trainers up
                terms = {n: cluster.status(n)["term"] for n in cluster.ids}
                timeouts = sum(cluster.output(n).count("lost contact") for n in cluster.ids)
                before = _memory_mib(pid, "VmRSS")
                start = time.monotonic()
                result = c.train(x, y, options={"epochs": epochs})
                wall = time.monotonic() - start
            peak = _memory_mib(pid, "VmHWM")
            after_terms = {n: cluster.status(n)["term"] for n in cluster.ids}
            after_timeouts = sum(cluster.output(n).count("lost contact") for n in cluster.ids)
        finally:
            cluster.stop()
    return {
        "rows": rows,
        "columns": cols,
        "epochs": epochs,
        "data_mib": round(data_mib, 1),
        "leader_rss_before_mib": round(before, 1),
        "leader_peak_mib": round(peak, 1),
        "leader_growth_copies": round((peak - before) / data_mib, 2),
        "wall_s": round(wall, 2),
        "val_accuracy": result["metrics"]["final"].get("val_accuracy"),
        "terms_unchanged": terms == after_terms,
        "election_timeouts": after_timeouts - timeouts,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench train-large", description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--columns", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = run(args.rows, args.columns, args.epochs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_measures(f"train {args.rows:,} x {args.columns} through 3 nodes", result)
    return 0
