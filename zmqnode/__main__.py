"""``python -m zmqnode``: run one node (see ``config.py`` for the options)."""

from __future__ import annotations

import sys

from .config import parse_args


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    from .node import Node  # imported late: `--help` stays fast

    Node(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
