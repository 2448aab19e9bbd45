"""``python -m zmqnode``: run one node (see ``config.py`` for the options)."""

from __future__ import annotations

import os
import sys

from .config import parse_args


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    # One BLAS thread: a node's numpy work is many small calls, where thread
    # hand-offs cost more than they save and threads fight the event loop
    # (a 10,000-row predict took 10-40 ms multi-threaded on a busy 2-core
    # machine, under 3 ms single-threaded). Must be set before numpy loads.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from .node import Node  # imported late: `--help` stays fast

    Node(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
