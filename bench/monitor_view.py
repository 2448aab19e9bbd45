"""Read a node's HTTP monitor (``/status``, ``/metrics``) from a benchmark.

The monitor listens on the client port − 1000 (docs/PROTOCOL.md §1). These
helpers use short timeouts and raise ``OSError`` when the node is down, so
they fit ``harness.cluster.wait_for``.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

_METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def monitor_port(node_id: str) -> int:
    return int(node_id.rsplit(":", 1)[1]) - 1000


def _get(node_id: str, path: str, timeout: float) -> bytes:
    url = f"http://127.0.0.1:{monitor_port(node_id)}{path}"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def status(node_id: str, timeout: float = 1.0) -> dict[str, Any]:
    """The node's ``/status`` document (role, term, leader, indexes, models…)."""
    return json.loads(_get(node_id, "/status", timeout))


def metrics(node_id: str, timeout: float = 1.0) -> dict[str, float]:
    """``/metrics`` as ``{"name{labels}": value}`` (comments skipped)."""
    out: dict[str, float] = {}
    for line in _get(node_id, "/metrics", timeout).decode().splitlines():
        m = _METRIC_LINE.match(line.strip())
        if m:
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def fsync_view(node_id: str) -> dict[str, Any]:
    """Every ``/status`` field and ``/metrics`` series whose name mentions fsync.

    Empty when the node exposes none (the storage layer counts fsyncs in
    ``NodeStorage.fsync_count`` / ``fsync_seconds_total``; whether the
    monitor publishes them is the node's business).
    """
    found: dict[str, Any] = {}
    for key, value in _flatten(status(node_id)).items():
        if "fsync" in key.lower():
            found[f"status.{key}"] = value
    for key, value in metrics(node_id).items():
        if "fsync" in key.lower():
            found[key] = value
    return found


def fsync_totals(node_id: str) -> tuple[float, float] | None:
    """(fsyncs so far, seconds spent in them) if the node exposes them, else None.

    Looks for the Prometheus histogram/summary convention (a series whose name
    mentions fsync ending in ``_count`` and one ending in ``_sum``, summed
    over labels), or ``fsync_count`` / ``fsync_seconds_total`` in /status.
    """
    view = fsync_view(node_id)
    count = sum(v for k, v in view.items() if k.split("{")[0].endswith("_count"))
    seconds = sum(v for k, v in view.items() if k.split("{")[0].endswith("_sum"))
    has_count = any(k.split("{")[0].endswith("_count") for k in view)
    if not has_count:
        count = sum(v for k, v in view.items() if k.endswith("fsync_count"))
        seconds = sum(v for k, v in view.items() if k.endswith("fsync_seconds_total"))
        has_count = any(k.endswith("fsync_count") for k in view)
    return (float(count), float(seconds)) if has_count else None


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return out
