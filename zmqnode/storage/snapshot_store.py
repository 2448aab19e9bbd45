"""``snapshot/``: the latest snapshot of the state machine, for log compaction.

One file, ``snapshot/snapshot.bin``, replaced atomically. Format (version 1),
integers little-endian::

    magic "ZQSNAPSH" (8) | u32 version | u64 index | u64 term | u64 data_length
    | u32 crc32(data) | u32 crc32(all preceding header bytes) | data

Only the newest snapshot is kept: an older one is never needed again, because
the log on disk always continues right after the snapshot that is stored.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from ..raft.messages import Snapshot
from .atomic import FsyncStats, PathLike, atomic_write, ensure_dir, remove_stale_temps
from .errors import REJOIN, StorageCorruption

MAGIC = b"ZQSNAPSH"
VERSION = 1
FILE_NAME = "snapshot.bin"

_FIELDS = struct.Struct("<8sIQQQI")  # magic, version, index, term, data length, data crc
_HEADER_SIZE = _FIELDS.size + 4

_ADVICE = (
    "It holds the state of every entry the log no longer has; restore it from a backup or "
    + REJOIN
    + "."
)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    fields = _FIELDS.pack(
        MAGIC, VERSION, snapshot.index, snapshot.term, len(snapshot.data), zlib.crc32(snapshot.data)
    )
    return b"".join((fields, struct.pack("<I", zlib.crc32(fields)), snapshot.data))


class SnapshotStore:
    """Save and load the latest snapshot in ``directory`` (created if missing)."""

    def __init__(self, directory: PathLike, *, stats: FsyncStats | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self.stats = stats or FsyncStats()

    def save(self, snapshot: Snapshot) -> None:
        """Replace the stored snapshot with ``snapshot``, durably."""
        ensure_dir(self.directory, self.stats)
        atomic_write(self.path, encode_snapshot(snapshot), stats=self.stats)

    def load(self) -> Snapshot | None:
        """The stored snapshot, None if there is none; StorageCorruption if damaged."""
        remove_stale_temps(self.directory)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None

        def corrupt(problem: str) -> StorageCorruption:
            return StorageCorruption(self.path, problem, _ADVICE)

        if len(raw) < _HEADER_SIZE:
            raise corrupt(f"is {len(raw)} bytes long, too short for its {_HEADER_SIZE}-byte header")
        magic, version, index, term, length, data_crc = _FIELDS.unpack_from(raw, 0)
        (header_crc,) = struct.unpack_from("<I", raw, _FIELDS.size)
        if magic != MAGIC:
            raise corrupt(f"does not start with {MAGIC!r} (found {magic!r})")
        if zlib.crc32(raw[: _FIELDS.size]) != header_crc:
            raise corrupt("has a header that fails its checksum")
        if version != VERSION:
            raise corrupt(
                f"has format version {version}; this zmqnode reads version {VERSION} "
                "(was it written by a newer release?)"
            )
        data = raw[_HEADER_SIZE:]
        if len(data) != length:
            raise corrupt(f"holds {len(data)} data bytes where its header says {length}")
        if zlib.crc32(data) != data_crc:
            raise corrupt("has data that fails its checksum")
        return Snapshot(index=index, term=term, data=data)
