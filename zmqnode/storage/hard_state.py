"""``raft_state.json``: the node's current term and vote.

Format (version 1), one JSON object, replaced atomically on every change::

    {"version": 1, "current_term": 7, "voted_for": "127.0.0.1:9001", "checksum": 123456789}

``checksum`` is the CRC-32 (zlib) of the canonical JSON of the other three
fields: keys sorted, no spaces, ASCII only. ``voted_for`` is ``""`` when the
node has not voted in ``current_term``. JSON keeps the file readable by an
operator; the checksum catches an edit or bit flip that still parses.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from ..raft.messages import HardState
from .atomic import FsyncStats, PathLike, atomic_write
from .errors import REJOIN, StorageCorruption

VERSION = 1

_ADVICE = f"It holds this node's term and vote; restore it from a backup or {REJOIN}."


def _canonical(term: int, vote: str) -> bytes:
    body = {"current_term": term, "version": VERSION, "voted_for": vote}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encode_hard_state(hs: HardState) -> bytes:
    checksum = zlib.crc32(_canonical(hs.term, hs.vote))
    doc = {"version": VERSION, "current_term": hs.term, "voted_for": hs.vote, "checksum": checksum}
    return (json.dumps(doc, indent=2) + "\n").encode()


class HardStateFile:
    """Load and save one HardState; ``save`` skips the write when nothing changed."""

    def __init__(self, path: PathLike, *, stats: FsyncStats | None = None) -> None:
        self.path = Path(path)
        self.stats = stats or FsyncStats()
        self._saved: HardState | None = None  # what the file holds, once known
        self.found = False  # whether ``load`` found the file (NodeStorage checks a missing one)

    def load(self) -> HardState:
        """The stored state; ``HardState()`` if the file does not exist.

        Raises StorageCorruption if the file is empty, not JSON, has missing
        or mistyped fields, an unknown version, or a checksum mismatch. A
        missing file is only legitimate on a node that never stored a log
        entry; ``NodeStorage.open`` checks that (``found`` says which case).
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.found = False
            self._saved = HardState()
            return self._saved
        hs = self._decode(raw)
        self.found = True
        self._saved = hs
        return hs

    def save(self, hs: HardState) -> bool:
        """Make ``hs`` durable; False when the file already held it (no I/O)."""
        if hs == self._saved:
            return False
        if not isinstance(hs.term, int) or hs.term < 0 or not isinstance(hs.vote, str):
            raise ValueError(f"not a valid hard state: {hs!r}")
        atomic_write(self.path, encode_hard_state(hs), stats=self.stats)
        self._saved = hs
        return True

    def _decode(self, raw: bytes) -> HardState:
        def corrupt(problem: str) -> StorageCorruption:
            return StorageCorruption(self.path, problem, _ADVICE)

        if not raw.strip():
            raise corrupt("is empty (a crash should never leave it so: it is replaced atomically)")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: nested deeper than the parser goes
            raise corrupt(f"is not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise corrupt(f"holds a JSON {type(doc).__name__}, not an object")
        version = doc.get("version")
        if version != VERSION or isinstance(version, bool):
            raise corrupt(
                f"has version {version!r}; this zmqnode reads version {VERSION} "
                "(was it written by a newer release?)"
            )
        term, vote, checksum = (doc.get(k) for k in ("current_term", "voted_for", "checksum"))
        if not isinstance(term, int) or isinstance(term, bool) or term < 0:
            raise corrupt(f"has current_term {term!r}; expected a non-negative integer")
        if not isinstance(vote, str):
            raise corrupt(f"has voted_for {vote!r}; expected a string")
        if not isinstance(checksum, int) or isinstance(checksum, bool):
            raise corrupt(f"has checksum {checksum!r}; expected an integer")
        expected = zlib.crc32(_canonical(term, vote))
        if checksum != expected:
            raise corrupt(
                f"fails its checksum (stored {checksum}, computed {expected}): "
                "the file was edited or damaged"
            )
        return HardState(term=term, vote=vote)
