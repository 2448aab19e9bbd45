"""``snapshot/``: the latest snapshot of the state machine, for log compaction.

One file, ``snapshot/snapshot.bin``, replaced atomically. Format (version 2),
integers little-endian::

    magic "ZQSNAPSH" (8) | u32 version | u64 index | u64 term | u64 data_length
    | u32 crc32(data) | u64 membership_length | u32 crc32(membership)
    | u32 crc32(all preceding header bytes) | data | membership

``membership`` is the cluster's membership as of ``index``
(``raft.membership.Membership``, encoded). Version 1 files (no membership
fields) are still read: their membership is empty, the bootstrap one.

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
VERSION = 2
FILE_NAME = "snapshot.bin"

_FIELDS_V1 = struct.Struct("<8sIQQQI")  # magic, version, index, term, data length, data crc
_FIELDS = struct.Struct("<8sIQQQIQI")  # ... and membership length, membership crc
_HEADER_SIZE = _FIELDS.size + 4

_ADVICE = (
    "It holds the state of every entry the log no longer has; restore it from a backup or "
    + REJOIN
    + "."
)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    fields = _FIELDS.pack(
        MAGIC,
        VERSION,
        snapshot.index,
        snapshot.term,
        len(snapshot.data),
        zlib.crc32(snapshot.data),
        len(snapshot.membership),
        zlib.crc32(snapshot.membership),
    )
    header = fields + struct.pack("<I", zlib.crc32(fields))
    return b"".join((header, snapshot.data, snapshot.membership))


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

        if len(raw) < _FIELDS_V1.size + 4:
            raise corrupt(f"is {len(raw)} bytes long, too short for a snapshot header")
        magic, version = struct.unpack_from("<8sI", raw, 0)
        if magic != MAGIC:
            raise corrupt(f"does not start with {MAGIC!r} (found {magic!r})")
        if version not in (1, VERSION):
            raise corrupt(
                f"has format version {version}; this zmqnode reads versions 1 and {VERSION} "
                "(was it written by a newer release?)"
            )
        layout = _FIELDS_V1 if version == 1 else _FIELDS
        if len(raw) < layout.size + 4:
            raise corrupt(
                f"is {len(raw)} bytes long, too short for its {layout.size + 4}-byte header"
            )
        fields = layout.unpack_from(raw, 0)
        (header_crc,) = struct.unpack_from("<I", raw, layout.size)
        if zlib.crc32(raw[: layout.size]) != header_crc:
            raise corrupt("has a header that fails its checksum")
        index, term, length, data_crc = fields[2:6]
        member_length, member_crc = (0, 0) if version == 1 else fields[6:8]
        body = raw[layout.size + 4 :]
        if len(body) != length + member_length:
            raise corrupt(
                f"holds {len(body)} bytes after its header where it says {length + member_length}"
            )
        data, membership = body[:length], body[length:]
        if zlib.crc32(data) != data_crc:
            raise corrupt("has data that fails its checksum")
        if version > 1 and zlib.crc32(membership) != member_crc:
            raise corrupt("has a membership that fails its checksum")
        return Snapshot(index=index, term=term, data=data, membership=membership)
