"""The status feed: what a node publishes for consoles (docs/PROTOCOL.md §9b).

Five times a second a node sends ``[STATUS_TOPIC, JSON]`` on its PUB socket
(the one that carries Raft heartbeats under another topic). The node and
``python -m client watch`` share these definitions, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

import orjson

STATUS_TOPIC = b"zstatus"


def encode_status(status: dict[str, Any]) -> list[bytes]:
    """The frames of one status message."""
    return [STATUS_TOPIC, orjson.dumps(status)]


def decode_status(frames: list[bytes]) -> dict[str, Any] | None:
    """The status a message carries, or None if it is not a well-formed one."""
    if len(frames) != 2 or bytes(frames[0]) != STATUS_TOPIC:
        return None
    try:
        status = orjson.loads(frames[1])
    except orjson.JSONDecodeError:
        return None
    return status if isinstance(status, dict) else None
