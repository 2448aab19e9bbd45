"""``python -m bench score``: batch scoring of a CSV file, and its memory.

Generates a seeded ROWS x COLS CSV with a header (default 1,000,000 x 20,
about 170 MB: ``x1,...`` then numbers like ``-1.23456``) and a 10x smaller
one, trains a small classifier (class names ``no``/``yes``, feature names
``x1...``) on a slice of the big file through a fresh 3-node cluster, then
runs, as a user would,

    python -m client predict <id> --csv FILE --out scored.csv

on each file and reports the command's wall time, rows per second (the
command's own figure and the wall-clock one, which includes the start-up),
and the CLI process's peak resident memory (its ru_maxrss, from wait4) in
MiB and as a multiple of the file's size. Memory is bounded if the two
peaks are about equal while the files differ tenfold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import print_measures
from bench.csv_read import write_csv
from harness.cluster import ROOT, LocalCluster

CLASSES = np.array(["no", "yes"])


def run(rows: int, cols: int, train_rows: int, epochs: int, workdir: Path) -> dict[str, Any]:
    big, small = workdir / "big.csv", workdir / "small.csv"
    labels = write_csv(big, rows, cols, seed=1)
    write_csv(small, max(1, rows // 10), cols, seed=2)
    train_rows = min(train_rows, rows)
    x = np.loadtxt(big, delimiter=",", dtype=np.float32, skiprows=1, max_rows=train_rows, ndmin=2)
    y = CLASSES[labels[:train_rows]]
    cluster = LocalCluster(workdir / "cluster", n=3)
    cluster.start()
    try:
        leader = cluster.leader(timeout=30)
        with cluster.client(leader, timeout=120) as c:
            trained = c.train(
                x,
                y,
                features=[f"x{i}" for i in range(1, cols + 1)],
                targets=["label"],
                options={"epochs": epochs},
            )
        model_id = trained["model_id"]
        runs = {
            name: _score(cluster, model_id, path, workdir / f"scored_{name}.csv")
            for name, path in (("small", small), ("big", big))
        }
    finally:
        cluster.stop()
    return {
        "rows": rows,
        "columns": cols,
        "train_rows": train_rows,
        "model_id": model_id,
        **{f"{name}_{key}": value for name, run in runs.items() for key, value in run.items()},
        "peak_big_over_small": round(runs["big"]["peak_mib"] / runs["small"]["peak_mib"], 2),
    }


def _score(cluster: LocalCluster, model_id: str, path: Path, out: Path) -> dict[str, Any]:
    """One ``python -m client predict --csv`` run: its figures."""
    command = [sys.executable, "-m", "client", "--nodes", ",".join(cluster.ids)]
    command += ["--keys", str(cluster.keys)] if cluster.keys else ["--insecure"]
    command += ["--json", "--timeout", "30", "predict", model_id, "--csv", str(path)]
    command += ["--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait4, not wait: the rusage of this child alone (its ru_maxrss, KiB). The
    # summary and any error are small, so the pipes cannot fill first.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stdout, stderr = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {stderr[-2000:]!r}")
    summary = json.loads(stdout)
    with open(out, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    size = path.stat().st_size
    peak = usage.ru_maxrss / 1024
    return {
        "file_mib": round(size / 2**20, 1),
        "scored_rows": summary["rows"],
        "output_lines": lines,
        "requests": summary["batches"],
        "wall_s": round(wall, 2),
        "rows_per_s": summary["rows_per_second"],
        "rows_per_s_wall": round(summary["rows"] / wall),
        "peak_mib": round(peak, 1),
        "peak_per_file_size": round(peak * 2**20 / size, 3),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench score", description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--columns", type=int, default=20)
    p.add_argument("--train-rows", type=int, default=20_000, help="rows of the file to train on")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-score-") as tmp:
        result = run(args.rows, args.columns, args.train_rows, args.epochs, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_measures(f"batch scoring, {result['rows']:,} x {result['columns']} CSV", result)
    return 0
