"""``python -m bench curve-cost``: what CURVE costs ``bench predict`` and ``bench store``.

Runs each benchmark's own measurement (``bench.predict.measure`` on a fresh
1-node cluster, ``bench.store.zmqnode_round`` on a fresh 3-node cluster) with
security on (CURVE and ZAP, the default) and off (``--insecure``), alternating
in one run (on, off, then off, on, ...) so the machine's noise falls on both
modes alike. Prints the medians and the ratio on/off of each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.cluster import LocalCluster

from .predict import XOR_X, XOR_Y, measure, nodes_endpoints, predict_template, rows_of
from .store import SIZES, model_file, zmqnode_round

MODES = {"curve": False, "insecure": True}  # name -> insecure flag


def predict_once(insecure: bool, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-curve-") as tmp:
        cluster = LocalCluster(Path(tmp), n=1, insecure=insecure)
        cluster.start()
        try:
            cluster.leader(timeout=30)
            with cluster.client(timeout=30) as c:
                model_id = c.train(XOR_X, XOR_Y)["model_id"]
            return measure(
                nodes_endpoints(cluster.ids),
                predict_template(model_id, rows_of(2, args.rows)),
                args.in_flight,
                args.requests,
                None,
                None,
                args.warmup,
                {n: p.pid for n, p in cluster.procs.items()},
                keys=cluster.client_keys(),
            )
        finally:
            cluster.stop()


def _order(repeat: int) -> list[str]:
    names = list(MODES)
    return names if repeat % 2 == 0 else names[::-1]


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def _compare(runs: dict[str, list[dict[str, Any]]], keys: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        on, off = _median(runs["curve"], key), _median(runs["insecure"], key)
        out[key] = {
            "curve": on,
            "insecure": off,
            "ratio": round(on / off, 3) if on is not None and off else None,
            "curve_runs": [r.get(key) for r in runs["curve"]],
            "insecure_runs": [r.get(key) for r in runs["insecure"]],
        }
    return out


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "repeats": args.repeats,
    }
    if "predict" in args.only:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        for r in range(args.repeats):
            for mode in _order(r):
                summary = predict_once(MODES[mode], args)
                runs[mode].append(summary)
                log(
                    f"predict {mode} repeat {r + 1}: {summary['throughput_rps']} req/s, "
                    f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms"
                )
        result["predict"] = {
            "nodes": 1,
            "in_flight": args.in_flight,
            "rows": args.rows,
            "requests": args.requests,
            **_compare(runs, ["throughput_rps", "p50_ms", "p99_ms", "node_cpu_us_per_request"]),
        }
    if "store" in args.only:
        model = model_file(SIZES[args.size])
        by_k: dict[int, dict[str, list[dict[str, Any]]]] = {
            k: {m: [] for m in MODES} for k in args.store_in_flight
        }
        for r in range(args.repeats):
            for mode in _order(r):
                rounds, _ = zmqnode_round(
                    model, args.store_in_flight, args.imports, args.store_warmup, 20.0, MODES[mode]
                )
                for k, summary in rounds.items():
                    by_k[k][mode].append(summary)
                    log(
                        f"store {mode} in-flight {k} repeat {r + 1}: "
                        f"{summary['commits_per_s']} commits/s"
                    )
        result["store"] = {
            "nodes": 3,
            "payload_bytes": len(model),
            "imports": args.imports,
            "in_flight": {
                str(k): _compare(v, ["commits_per_s", "p50_ms", "p99_ms"]) for k, v in by_k.items()
            },
        }
    return result


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench curve-cost", description=__doc__)
    p.add_argument("--repeats", type=int, default=5, help="runs per mode (median)")
    p.add_argument("--only", default="predict,store", help="predict, store or both")
    p.add_argument("--requests", type=int, default=20_000, help="predict: requests per run")
    p.add_argument("--in-flight", type=int, default=100, help="predict: requests outstanding")
    p.add_argument("--rows", type=int, default=1, help="predict: rows per request")
    p.add_argument("--warmup", type=int, default=1000, help="predict: requests before measuring")
    p.add_argument("--imports", type=int, default=300, help="store: IMPORTs per run")
    p.add_argument("--store-in-flight", type=_ints, default=[1, 32], help="store: e.g. 1,32")
    p.add_argument("--store-warmup", type=int, default=50)
    p.add_argument("--size", default="1KB", choices=sorted(SIZES), help="store: payload")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    result = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = []
    if "predict" in result:
        for key in ("throughput_rps", "p50_ms", "p99_ms", "node_cpu_us_per_request"):
            rows.append((f"predict {key}", result["predict"][key]))
    for k, figures in result.get("store", {}).get("in_flight", {}).items():
        for key in ("commits_per_s", "p50_ms", "p99_ms"):
            rows.append((f"store in-flight {k} {key}", figures[key]))
    print(f"{'figure':<34} {'CURVE':>10} {'insecure':>10} {'ratio':>7}")
    for name, f in rows:
        ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}"
        print(f"{name:<34} {f['curve']!s:>10} {f['insecure']!s:>10} {ratio:>7}")
    print(f"medians of {args.repeats} runs per mode, alternating; ratio = CURVE / insecure")
    return 0
