"""``python -m bench csv``: what reading a CSV file costs the client.

Generates a seeded ROWS x COLS CSV (default 200,000 x 50, about 85 MB: a
header row, then numbers like ``-1.23456``) and reports, in the same run:

- parse time: the client's ``read_csv`` (``client.tables``) against
  ``numpy.loadtxt(path, delimiter=",", dtype=float32, skiprows=1)`` on the
  same file, alternating, REPEATS times each; medians and their ratio
  (target: at most 1.5). The file is read once first, so both find it in the
  page cache.
- peak memory: each reader once more in a fresh Python process, which reads
  ``/proc/self/status``: the growth of VmHWM (the process's peak resident
  set) over VmRSS just before the read, as a multiple of the file's size
  (target for the client: at most 3). VmHWM counts every byte the process
  touched (the result, the readers' buffers, allocator slack), which
  tracemalloc would not see in full.

``--train ROWSxCOLS`` (for example ``--train 1000000x100``) then trains that
CSV end to end: a fresh 3-node cluster, ``python -m client train inputs.csv
outputs.csv`` as a user runs it (retried with the same request id, as its
error message asks, if a busy machine costs the leader its term); it reports
the command's wall time, the client process's peak memory (its ru_maxrss),
the leader's peak and every node's growth (VmHWM after over VmRSS before).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# A busy machine can cost the leader its term mid-job; the CLI then says to
# retry with the same request id, which the bench does (and reports).
TRAIN_ATTEMPTS = 3

# The child that measures one reader's memory: numpy and the client are
# imported before the "before" figure, so only the read itself is counted.
MEASURE = """
import sys, time
import numpy as np
from client.cli import read_csv
import client.tables

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

reader, path = sys.argv[1], sys.argv[2]
before = status("VmRSS")
start = time.perf_counter()
if reader == "client":
    values = read_csv(path)
elif reader == "tables":
    values = client.tables.read_numeric(path).values
else:
    values = np.loadtxt(path, delimiter=",", dtype=np.float32, skiprows=1)
seconds = time.perf_counter() - start
print(status("VmHWM") - before, status("VmHWM"), values.nbytes, seconds)
"""


def write_csv(path: Path, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A seeded CSV of ``rows`` x ``cols`` numbers, written at C speed.

    Each cell is a standard normal value to 5 decimals (``-1.23456``,
    ``0.04321``); the first row is a header ``x1,...``. Returns the labels of
    a simple binary rule on the first five columns (for ``--train``).
    """
    rng = np.random.default_rng(seed)
    labels = np.empty(rows, dtype=np.int64)
    with open(path, "wb") as f:
        f.write((",".join(f"x{c}" for c in range(1, cols + 1)) + "\n").encode())
        for start in range(0, rows, 20_000):
            x = rng.standard_normal((min(20_000, rows - start), cols))
            x = np.clip(np.round(x, 5), -9.99999, 9.99999)
            labels[start : start + len(x)] = x[:, : min(5, cols)].sum(axis=1) > 0
            f.write(_format_block(x))
    return labels


def _format_block(x: np.ndarray) -> bytes:
    """``x`` (|values| < 10) as CSV lines of ``-d.ddddd`` cells, vectorized:
    fixed-width cells with a space for a plus sign, then the spaces dropped."""
    units = np.rint(np.abs(x) * 100_000).astype(np.int64)
    cell = np.empty(x.shape + (9,), dtype=np.uint8)
    cell[..., 0] = np.where(x < 0, ord("-"), ord(" "))
    cell[..., 1] = ord("0") + units // 100_000
    cell[..., 2] = ord(".")
    for i, scale in enumerate((10_000, 1_000, 100, 10, 1)):
        cell[..., 3 + i] = ord("0") + units // scale % 10
    cell[..., 8] = ord(",")
    cell[:, -1, 8] = ord("\n")
    flat = cell.reshape(-1)
    return flat[flat != ord(" ")].tobytes()


def _client_read(path: Path) -> np.ndarray:
    from client.cli import read_csv

    return read_csv(str(path))


def _numpy_read(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.float32, skiprows=1)


def time_readers(path: Path, repeats: int) -> dict[str, Any]:
    """Alternating timed reads; the two results must agree exactly."""
    path.read_bytes()  # into the page cache
    times: dict[str, list[float]] = {"client": [], "loadtxt": []}
    for _ in range(repeats):
        for name, read in (("loadtxt", _numpy_read), ("client", _client_read)):
            start = time.perf_counter()
            values = read(path)
            times[name].append(time.perf_counter() - start)
            if name == "loadtxt":
                expected = values
            elif not np.array_equal(values, expected):
                raise AssertionError("client.tables and numpy.loadtxt read different numbers")
            del values
    client, numpy = statistics.median(times["client"]), statistics.median(times["loadtxt"])
    return {
        "client_s": round(client, 3),
        "loadtxt_s": round(numpy, 3),
        "ratio": round(client / numpy, 2),
        "client_runs_s": [round(t, 3) for t in times["client"]],
        "loadtxt_runs_s": [round(t, 3) for t in times["loadtxt"]],
    }


def measure_memory(path: Path, reader: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, reader, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    growth, peak, nbytes, seconds = int(out[0]), int(out[1]), int(out[2]), float(out[3])
    size = path.stat().st_size
    return {
        "peak_growth_mib": round(growth / 2**20, 1),
        "peak_total_mib": round(peak / 2**20, 1),
        "result_mib": round(nbytes / 2**20, 1),
        "growth_per_file_size": round(growth / size, 2),
        "seconds": round(seconds, 2),
    }


def train_end_to_end(workdir: Path, rows: int, cols: int, epochs: int) -> dict[str, Any]:
    """``python -m client train`` on a generated CSV through a fresh cluster."""
    from harness.cluster import LocalCluster  # only here: the read bench needs no cluster

    inputs, outputs = workdir / "inputs.csv", workdir / "outputs.csv"
    labels = write_csv(inputs, rows, cols, seed=1)
    outputs.write_text("y\n" + "\n".join(map(str, labels.tolist())) + "\n")
    read = measure_memory(inputs, "client")  # the read alone, in a fresh process
    cluster = LocalCluster(workdir / "cluster", n=3)
    cluster.start()
    try:
        leader = cluster.leader(timeout=30)
        with cluster.client(leader, timeout=120) as c:  # trainers up, as train-large does
            c.train(np.zeros((256, cols), np.float32), labels[:256], options={"epochs": 1})
        pids = {node: proc.pid for node, proc in cluster.procs.items()}
        before = {node: _proc_mib(pid, "VmRSS") for node, pid in pids.items()}
        command = [sys.executable, "-m", "client", "--nodes", ",".join(cluster.ids)]
        command += ["--keys", str(cluster.keys)] if cluster.keys else ["--insecure"]
        command += ["--json", "--timeout", "30", "train", str(inputs), str(outputs)]
        command += ["--epochs", str(epochs), "--request-id", f"bench-csv-{os.getpid()}"]
        start = time.perf_counter()
        attempts: list[tuple[int, float]] = []  # (exit status, peak MiB) per run
        while not attempts or attempts[-1][0] != 0:
            if len(attempts) == TRAIN_ATTEMPTS:
                error = (workdir / "client.err").read_text()[-2000:]
                raise RuntimeError(f"python -m client train failed {len(attempts)} times: {error}")
            attempts.append(_run_measured(command, workdir))
        wall = time.perf_counter() - start
        leader = cluster.leader(timeout=30)
        peaks = {node: _proc_mib(pid, "VmHWM") for node, pid in pids.items()}
    finally:
        cluster.stop()
    result = json.loads((workdir / "client.out").read_text())
    size = inputs.stat().st_size
    client_peak = max(peak for _, peak in attempts)
    return {
        "rows": rows,
        "columns": cols,
        "epochs": epochs,
        "file_mib": round(size / 2**20, 1),
        "client_parse_s": read["seconds"],
        "client_read_growth_mib": read["peak_growth_mib"],
        "client_read_growth_per_file_size": read["growth_per_file_size"],
        "command_wall_s": round(wall, 2),
        "attempts": len(attempts),
        "client_peak_mib": round(client_peak, 1),
        "client_peak_per_file_size": round(client_peak * 2**20 / size, 2),
        "leader_rss_before_mib": round(before[leader], 1),
        "leader_peak_mib": round(peaks[leader], 1),
        "node_growth_mib": {n: round(peaks[n] - before[n], 1) for n in cluster.ids},
        "val_accuracy": (result.get("metrics") or {}).get("final", {}).get("val_accuracy"),
    }


def _run_measured(command: list[str], workdir: Path) -> tuple[int, float]:
    """Run ``command``; its exit status and peak resident memory in MiB."""
    with open(workdir / "client.out", "wb") as out, open(workdir / "client.err", "wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        # wait4, not wait: the rusage of this child alone (its ru_maxrss, KiB)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024


def _proc_mib(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench csv", description=__doc__)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--columns", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train", metavar="ROWSxCOLS", help="also train such a CSV end to end")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-csv-") as tmp:
        path = Path(tmp) / "inputs.csv"
        write_csv(path, args.rows, args.columns)
        result: dict[str, Any] = {
            "rows": args.rows,
            "columns": args.columns,
            "file_mib": round(path.stat().st_size / 2**20, 1),
            "parse": time_readers(path, args.repeats),
            "memory_client": measure_memory(path, "client"),
            "memory_loadtxt": measure_memory(path, "loadtxt"),
        }
        path.unlink()
        if args.train:
            rows, cols = (int(n) for n in args.train.lower().split("x"))
            result["train"] = train_end_to_end(Path(tmp), rows, cols, args.epochs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    _print(result)
    return 0


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"CSV {result['rows']:,} x {result['columns']} ({result['file_mib']} MiB)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for section in ("parse", "memory_client", "memory_loadtxt", "train"):
        for key, value in result.get(section, {}).items():
            table.add_row(f"{section}.{key}", str(value))
    Console().print(table)
