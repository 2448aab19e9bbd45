"""Test-only fault injection: drop Raft traffic to or from chosen peers.

Off unless the node is started with ``--fault-file PATH`` (a hidden flag).
The node re-reads the file whenever it changes; its JSON says which peers'
Raft messages to drop::

    {"drop_in": ["127.0.0.1:9001"], "drop_out": ["127.0.0.1:9001"]}

A missing or empty file means no faults. Integration tests use it to cut a
node off deterministically, which killing processes cannot do.
"""

from __future__ import annotations

import logging
import os

import orjson

log = logging.getLogger("zmqnode.transport.faults")


class FaultFile:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self.drop_in: frozenset[str] = frozenset()
        self.drop_out: frozenset[str] = frozenset()

    def refresh(self) -> None:
        if not self.path:
            return
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        rules = {}
        if mtime is not None:
            try:
                with open(self.path, "rb") as f:
                    rules = orjson.loads(f.read() or b"{}")
            except (OSError, orjson.JSONDecodeError) as exc:
                log.warning("ignoring fault file %s: %s", self.path, exc)
        self.drop_in = frozenset(rules.get("drop_in", ()))
        self.drop_out = frozenset(rules.get("drop_out", ()))
        log.warning(
            "test faults now: drop_in=%s drop_out=%s", sorted(self.drop_in), sorted(self.drop_out)
        )
