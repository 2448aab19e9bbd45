"""Logging set-up: one line per event with time, node id and level.

Lines go to stderr and to ``<storage-dir>/worker_<port>.log``; the monitor's
``/logs`` tails that file.
"""

from __future__ import annotations

import logging
import os
from collections import deque

FORMAT = "%(asctime)s %(levelname)-7s [%(node)s] %(name)s: %(message)s"


class _NodeTag(logging.Filter):
    """Puts the node id into every record (the ``%(node)s`` of ``FORMAT``)."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node_id
        return True


def setup_logging(node_id: str, log_path: str, level: str) -> None:
    root = logging.getLogger("zmqnode")
    root.setLevel(level)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(FORMAT)
    for handler in (logging.StreamHandler(), logging.FileHandler(log_path, encoding="utf-8")):
        handler.setFormatter(formatter)
        handler.addFilter(_NodeTag(node_id))
        root.addHandler(handler)


def tail(path: str, lines: int) -> list[str]:
    """The last ``lines`` lines of a log file (reads only its end)."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - lines * 400))
        data = f.read().decode("utf-8", "replace")
    return list(deque(data.splitlines(), maxlen=lines))
