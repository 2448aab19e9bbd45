"""``python -m bench <command>``: measurements of a real local cluster.

Each command lives in its own module with a ``main(argv)``; ``--help`` after a
command shows its options.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "cluster": ("cluster_timings", "start-up, XOR round trip and failover times"),
    "train": ("train", "accuracy and wall time against scikit-learn"),
    "train-large": ("train_large", "leader memory and elections for a 1M x 100 dataset"),
    "predict": ("predict", "prediction throughput and latency, echo baseline"),
    "store": ("store", "durable IMPORT commits/s at 1 and many in flight, PySyncObj baseline"),
    "failover": ("failover", "kill -9 the leader under a prediction load: failover, errors"),
    "chaos": ("chaos", "kills, pauses, partitions under load; checks nothing lost, linearizable"),
    "curve-cost": ("curve_cost", "predict and store with CURVE on and off, alternating: ratios"),
    "csv": ("csv_read", "client CSV parse time vs numpy.loadtxt, peak memory; --train end to end"),
    "score": ("score", "batch scoring of a CSV (predict --csv): rows/s, client peak memory"),
    "startup": ("startup", "per implementation: time to STATUS, node RSS idle and after load"),
}


def usage() -> str:
    lines = ["usage: python -m bench <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += ["", "python -m bench <command> --help shows a command's options"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"bench.{COMMANDS[argv[0]][0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
