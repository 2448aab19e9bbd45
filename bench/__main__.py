"""``python -m bench``: measurements of a real local cluster.

python -m bench cluster [--nodes 3] [--kills 10] [--json]
python -m bench train [--datasets synthetic,iris,...] [--repeats 3] [--json]
python -m bench predict [--in-flight 100] [--requests N] [--rows R] [--baseline] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from rich.console import Console
from rich.table import Table


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        from .train import main as train_main

        return train_main(argv[1:])
    p = argparse.ArgumentParser(
        prog="python -m bench",
        epilog="python -m bench train --help: accuracy and wall time against scikit-learn",
    )
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cluster", help="start-up, XOR round trip and failover times")
    c.add_argument("--nodes", type=int, default=3)
    c.add_argument("--kills", type=int, default=10)
    c.add_argument("--xor-runs", type=int, default=5)
    c.add_argument("--json", action="store_true")
    pr = sub.add_parser("predict", help="prediction throughput and latency")
    pr.add_argument("--nodes", help="H:P,H:P of a running cluster (default: start one node)")
    pr.add_argument("--in-flight", type=int, default=100)
    pr.add_argument("--requests", type=int, default=20000)
    pr.add_argument("--rows", type=int, default=1)
    pr.add_argument("--baseline", action="store_true", help="also run a bare pyzmq echo server")
    pr.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    if args.command == "predict":
        from .predict import run as run_predict

        nodes = args.nodes.split(",") if args.nodes else None
        result = run_predict(nodes, args.in_flight, args.requests, args.rows, args.baseline)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
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
    if args.command == "cluster":
        from .cluster_timings import run

        result = run(args.nodes, args.kills, args.xor_runs)
        result["machine"] = {"cpus": _cpus(), "python": platform.python_version()}
        if args.json:
            print(json.dumps(result, indent=2))
        else:
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


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
