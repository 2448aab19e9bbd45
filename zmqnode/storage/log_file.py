"""``raft.log``: the Raft log on disk, append-only between compactions.

Format (version 1), all integers little-endian::

    header   magic "ZQRAFTLG" (8 bytes) | u32 version | u64 first_index | u32 crc32
    record   u32 payload_length | u32 crc32(payload) | payload
    payload  u64 index | u64 term | u8 kind (1 noop, 2 command, 3 config) | data (the rest)

The header's CRC-32 (zlib) covers its first 20 bytes. ``first_index`` is the
index the first record holds, or would hold: after compaction through index
``n`` the file starts at ``n + 1``, even with no records at all. Every record
also carries its own index, so a misplaced record is caught, not trusted.
The header is only ever written with the records that follow it, by an
atomic whole-file rewrite (creation, ``compact``, ``reset``); appends only
add records after the last one.

Recovery (``open``) reads the records in order. The first record that is cut
off or fails its checksum ends the scan, and then:

- if a checksum-valid record can still be found anywhere after it, the damage
  is in the middle of the log, and the file is refused (StorageCorruption):
  dropping everything after the damage would silently drop entries this node
  acknowledged;
- otherwise the damage is the tail that was being written when the node
  stopped (a torn write: the batch's fsync never returned, so nothing promised
  it). It is truncated away and reported as a warning. A bit flipped by the
  disk inside the *last* record looks exactly the same — there is no later
  record to tell the two apart — and is handled the same way; Raft tolerates
  it as long as a majority still holds that entry (the leader sees the
  follower's log end below what it confirmed and resends from there, see
  ``raft/progress.py``). Raft's guarantee does assume that a disk keeps what
  it confirmed: until this node has caught up, it may vote for a candidate
  that lacks the dropped entry, so if the entry was committed on just this
  node and the leader, and the leader dies first, the entry can be lost.

A record whose checksum holds but whose index or term breaks the log's rules
(not contiguous, terms going down, unknown kind) was written that way, so it
is refused too, never "repaired".

After ``open`` the entries live in memory (the Raft core) and the file is
only written to. The one place that reads records back is ``compact``, which
copies the kept records into the new file: it checks each one's checksum and
index first, so damage that appeared while the node ran is reported then
(StorageCorruption) rather than copied into the middle of the new file.

A file cut exactly at a record boundary (the end of the log lost, every
remaining record whole) passes every check here; ``NodeStorage.open``
notices it when ``models/`` holds more files than the log has commands.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..raft.messages import Entry, EntryKind
from .atomic import FsyncStats, PathLike, atomic_write, write_all
from .errors import REJOIN, StorageBroken, StorageCorruption

log = logging.getLogger("zmqnode.storage")

MAGIC = b"ZQRAFTLG"
VERSION = 1

_HEADER = struct.Struct("<8sIQ")  # magic, version, first_index; then the u32 CRC
_HEADER_SIZE = _HEADER.size + 4
_RECORD = struct.Struct("<II")  # payload length, crc32 of payload
_ENTRY = struct.Struct("<QQB")  # index, term, kind
_MIN_RECORD = _RECORD.size + _ENTRY.size

_KIND_CODES = {EntryKind.NOOP: 1, EntryKind.COMMAND: 2, EntryKind.CONFIG: 3}
_KINDS = {code: kind for kind, code in _KIND_CODES.items()}

_ADVICE = "It holds this node's Raft log; restore the storage dir from a backup or " + REJOIN + "."


@dataclass(frozen=True)
class LogContents:
    """What ``LogFile.open`` found: the entries, and what it had to repair."""

    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)
    truncated_bytes: int = 0


def encode_header(first_index: int) -> bytes:
    head = _HEADER.pack(MAGIC, VERSION, first_index)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_record(entry: Entry) -> bytes:
    """One record: length, checksum, then the entry in binary."""
    head = _ENTRY.pack(entry.index, entry.term, _KIND_CODES[entry.kind])
    data = entry.data
    crc = zlib.crc32(data, zlib.crc32(head))
    return b"".join((_RECORD.pack(len(head) + len(data), crc), head, data))


def _check_record(buf: memoryview, pos: int) -> int | str:
    """The end offset of the checksum-valid record at ``pos``, or why it is not one."""
    end = len(buf)
    if end - pos < _RECORD.size:
        return f"the record header is cut off ({end - pos} of {_RECORD.size} bytes)"
    length, crc = _RECORD.unpack_from(buf, pos)
    if length < _ENTRY.size:
        return f"its length field says {length} bytes, less than any entry"
    body = pos + _RECORD.size
    if body + length > end:
        return f"it is cut off ({end - body} of {length} payload bytes present)"
    if zlib.crc32(buf[body : body + length]) != crc:
        return "its checksum does not match"
    return body + length


def _find_valid_record(buf: memoryview, after: int, min_index: int) -> int | None:
    """The offset of some checksum-valid record starting after ``after``, or None.

    A record's u64 index sits 8 bytes in; any record after the damage holds an
    index from ``min_index`` up to one per minimal record size. numpy tests
    that field at every byte offset at once (one pass per alignment), so this
    stays linear even when the damage sits at the front of a large file.
    """
    end = len(buf)
    max_index = min_index + (end - after) // _MIN_RECORD + 1
    last_field = end - _ENTRY.size  # the index field must leave room for term and kind
    candidates: list[int] = []
    for shift in range(8):
        lo = after + 1 + _RECORD.size + shift
        count = (last_field - lo) // 8 + 1
        if count <= 0:
            continue
        fields = np.frombuffer(buf, dtype="<u8", count=count, offset=lo)
        hits = np.flatnonzero((fields >= min_index) & (fields <= max_index))
        candidates.extend((lo - _RECORD.size + 8 * hits).tolist())
    for pos in sorted(candidates):
        if isinstance(_check_record(buf, pos), int):
            return pos
    return None


class LogFile:
    """One append-only log file; see the module docstring for its format.

    Keeps only each record's offset and term in memory (the entries live in
    the Raft core). ``append`` writes without fsync; call ``sync`` once per
    batch (group commit). Not thread-safe: one event loop owns it.

    After an OSError from a write or fsync the object refuses further use
    (StorageBroken): what reached the disk is then unknown.
    """

    def __init__(self, path: PathLike, *, stats: FsyncStats | None = None) -> None:
        self.path = Path(path)
        self.stats = stats or FsyncStats()
        self._fd: int | None = None
        self._first_index = 1
        self._offsets = array("Q")  # byte offset of the record for first_index + k
        self._terms = array("Q")  # its term
        self._size = 0
        self._dirty = False
        self._broken: str | None = None

    # -- reading ----------------------------------------------------------------

    @property
    def first_index(self) -> int:
        return self._first_index

    @property
    def last_index(self) -> int:
        return self._first_index + len(self._offsets) - 1

    @property
    def size(self) -> int:
        """Bytes in the file, header included."""
        return self._size

    def term_at(self, index: int) -> int | None:
        """The term of the stored entry at ``index``; None if not in the file."""
        k = index - self._first_index
        return self._terms[k] if 0 <= k < len(self._terms) else None

    def open(self) -> LogContents:
        """Open (creating an empty log starting at index 1) and recover the entries.

        Raises StorageCorruption as the module docstring describes.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already open")
        if not self.path.exists():
            atomic_write(self.path, encode_header(1), stats=self.stats)
        fd = os.open(self.path, os.O_RDWR)
        try:
            contents = self._recover(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return contents

    def _corrupt(self, problem: str) -> StorageCorruption:
        return StorageCorruption(self.path, problem, _ADVICE)

    def _recover(self, fd: int) -> LogContents:
        with open(fd, "rb", closefd=False) as f:
            raw = f.read()
        buf = memoryview(raw)
        first_index = self._read_header(buf)
        offsets, terms = array("Q"), array("Q")
        entries: list[Entry] = []
        pos, expected, last_term = _HEADER_SIZE, first_index, 0
        end = len(buf)
        # The loop runs once per entry of a possibly huge log: names are bound
        # locally and the common case (a valid record) is checked inline.
        unpack_record, unpack_entry, crc32 = _RECORD.unpack_from, _ENTRY.unpack_from, zlib.crc32
        kinds, add_entry = _KINDS, entries.append
        add_offset, add_term = offsets.append, terms.append
        while pos < end:
            body = pos + _RECORD.size
            if end - pos >= _MIN_RECORD:
                length, crc = unpack_record(buf, pos)
                stop = body + length
                valid = length >= _ENTRY.size and stop <= end and crc32(buf[body:stop]) == crc
            else:
                valid = False
            if not valid:
                reason = _check_record(buf, pos)
                assert isinstance(reason, str)
                return self._repair_tail(
                    fd, buf, pos, expected, reason, first_index, offsets, terms, entries
                )
            index, term, code = unpack_entry(buf, body)
            kind = kinds.get(code)
            if index != expected or term < last_term or kind is None:
                raise self._invalid_record(pos, index, term, code, expected, last_term)
            add_entry(Entry(index, term, kind, raw[body + _ENTRY.size : stop]))
            add_offset(pos)
            add_term(term)
            pos, expected, last_term = stop, expected + 1, term
        self._install(first_index, offsets, terms, end)
        return LogContents(entries)

    def _invalid_record(
        self, pos: int, index: int, term: int, code: int, expected: int, last_term: int
    ) -> StorageCorruption:
        """A record that passed its checksum yet breaks the log's rules: written so."""
        where = f"has a record at byte {pos}"
        if index != expected:
            return self._corrupt(f"{where} for entry {index} where entry {expected} belongs")
        if term < last_term:
            return self._corrupt(
                f"{where} (entry {index}) whose term {term} is lower "
                f"than the term {last_term} before it"
            )
        return self._corrupt(
            f"{where} (entry {index}) of unknown kind {code} (written by a newer release?)"
        )

    def _read_header(self, buf: memoryview) -> int:
        if len(buf) < _HEADER_SIZE:
            raise self._corrupt(
                f"is {len(buf)} bytes long, too short for its {_HEADER_SIZE}-byte header"
            )
        magic, version, first_index = _HEADER.unpack_from(buf, 0)
        (crc,) = struct.unpack_from("<I", buf, _HEADER.size)
        if magic != MAGIC:
            raise self._corrupt(
                f"does not start with {MAGIC!r} (found {bytes(magic)!r}): "
                "it is not a zmqnode Raft log, or its header is damaged"
            )
        if zlib.crc32(buf[: _HEADER.size]) != crc:
            raise self._corrupt("has a header that fails its checksum")
        if version != VERSION:
            raise self._corrupt(
                f"has format version {version}; this zmqnode reads "
                f"version {VERSION} (was it written by a newer release?)"
            )
        if first_index < 1:
            raise self._corrupt(f"says its first index is {first_index}; indexes start at 1")
        return first_index

    def _repair_tail(
        self,
        fd: int,
        buf: memoryview,
        pos: int,
        expected: int,
        reason: str,
        first_index: int,
        offsets: array,
        terms: array,
        entries: list[Entry],
    ) -> LogContents:
        found = _find_valid_record(buf, pos, expected)
        if found is not None:
            raise self._corrupt(
                f"is damaged in the middle: the record at byte {pos} (entry {expected}) is "
                f"unreadable ({reason}), yet a valid record follows at byte {found}. "
                "Dropping the rest could lose acknowledged entries, so the node will not start"
            )
        dropped = len(buf) - pos
        os.ftruncate(fd, pos)
        self.stats.fsync(fd)
        warning = (
            f"{self.path}: dropped {dropped} bytes at the tail (byte {pos} on, entry {expected}: "
            f"{reason}), most likely a write cut short when the node stopped, which was never "
            f"acknowledged because its fsync had not returned; the log now ends at entry "
            f"{expected - 1}"
        )
        log.warning("%s", warning)
        self._install(first_index, offsets, terms, pos)
        return LogContents(entries, [warning], dropped)

    def _install(self, first_index: int, offsets: array, terms: array, size: int) -> None:
        self._first_index, self._offsets, self._terms, self._size = (
            first_index,
            offsets,
            terms,
            size,
        )
        self._dirty = False

    # -- writing ----------------------------------------------------------------

    def _usable_fd(self) -> int:
        if self._broken is not None:
            raise StorageBroken(f"{self.path}: an earlier {self._broken} failed; restart the node")
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not open")
        return self._fd

    def append(self, entries: Sequence[Entry]) -> None:
        """Write ``entries`` after the log, first cutting it before ``entries[0].index``.

        Not durable until ``sync``. Raises ValueError for entries that would
        leave a gap, are not consecutive, overwrite compacted entries or make
        terms go down; the file is untouched then.
        """
        if not entries:
            return
        fd = self._usable_fd()
        first = entries[0].index
        if first < self._first_index:
            raise ValueError(
                f"entry {first} is compacted: {self.path} starts at {self._first_index}"
            )
        if first > self.last_index + 1:
            raise ValueError(f"appending entry {first} after {self.last_index} leaves a gap")
        keep = first - self._first_index
        term = self._terms[keep - 1] if keep else 0
        for k, entry in enumerate(entries):
            if entry.index != first + k:
                raise ValueError(
                    f"entries are not consecutive: {entry.index} after {first + k - 1}"
                )
            if entry.term < term:
                raise ValueError(f"entry {entry.index} has term {entry.term}, lower than {term}")
            term = entry.term
        blob = b"".join(encode_record(e) for e in entries)
        try:
            if keep < len(self._offsets):
                self._truncate(fd, keep)
            write_all(fd, blob, self._size)
        except OSError:
            self._broken = "write"
            raise
        pos = self._size
        for entry in entries:
            self._offsets.append(pos)
            self._terms.append(entry.term)
            pos += _RECORD.size + _ENTRY.size + len(entry.data)
        self._size = pos
        self._dirty = True

    def _truncate(self, fd: int, keep: int) -> None:
        # Make the cut durable before new records land where the old ones were:
        # otherwise a crash could leave new records followed by stale old ones
        # (the file's old length survives, the new bytes overwrote part of it).
        # Conflicts are rare, so the extra fsync costs little.
        size = self._offsets[keep]
        os.ftruncate(fd, size)
        self.stats.fsync(fd)
        del self._offsets[keep:]
        del self._terms[keep:]
        self._size = size

    def sync(self) -> bool:
        """fsync what ``append`` wrote; False if there was nothing to sync."""
        fd = self._usable_fd()
        if not self._dirty:
            return False
        try:
            self.stats.fsync(fd)
        except OSError:
            self._broken = "fsync"
            raise
        self._dirty = False
        return True

    def compact(self, through_index: int) -> None:
        """Drop entries up to ``through_index``; the log then starts at ``through_index + 1``.

        Rewrites the file atomically (kept records are copied as they are).
        Durable on return, including any earlier unsynced appends.
        """
        fd = self._usable_fd()
        if through_index < self._first_index:
            return
        keep_from = through_index + 1 - self._first_index
        if keep_from >= len(self._offsets):
            self.reset(through_index + 1)
            return
        start = self._offsets[keep_from]
        tail = os.pread(fd, self._size - start, start)
        if len(tail) != self._size - start:
            raise OSError(f"{self.path}: short read while compacting")
        self._verify_read_back(tail, start, through_index + 1)
        shift = start - _HEADER_SIZE
        offsets = array("Q", (o - shift for o in self._offsets[keep_from:]))
        terms = self._terms[keep_from:]
        self._replace(encode_header(through_index + 1) + tail, through_index + 1, offsets, terms)

    def _verify_read_back(self, blob: bytes, offset: int, first: int) -> None:
        """Check records read back from the file (``blob`` starts at byte ``offset``
        with entry ``first``) before they are copied anywhere.

        The disk may have damaged them since ``open`` checked them; copying a
        damaged record into the compacted file would hide the damage until the
        next start, where it would sit in the middle of the log. The entries
        the node uses live in memory and are not affected, but the file can no
        longer be trusted, so the node must stop (StorageCorruption).
        """
        buf = memoryview(blob)
        pos, index = 0, first
        while pos < len(buf):
            end = _check_record(buf, pos)
            if isinstance(end, str):
                raise self._corrupt(
                    f"has a damaged record at byte {offset + pos} (entry {index}), found when "
                    f"reading it back to compact the log: {end}. The disk changed bytes "
                    "after they were written"
                )
            (stored,) = struct.unpack_from("<Q", buf, pos + _RECORD.size)
            if stored != index:
                raise self._corrupt(
                    f"has entry {stored} at byte {offset + pos} where entry {index} was "
                    "written, found when reading it back to compact the log"
                )
            pos, index = end, index + 1

    def reset(self, first_index: int) -> None:
        """Drop every entry; the next one appended must be ``first_index``. Durable."""
        self._usable_fd()
        self._replace(encode_header(first_index), first_index, array("Q"), array("Q"))

    def _replace(self, content: bytes, first_index: int, offsets: array, terms: array) -> None:
        old_fd = self._usable_fd()
        atomic_write(self.path, content, stats=self.stats)
        # The rename swapped inodes; our descriptor still points at the old one.
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            self._broken = "reopen after compaction"
            raise
        os.close(old_fd)
        self._fd = fd
        self._install(first_index, offsets, terms, len(content))

    def close(self) -> None:
        """fsync anything unsynced, then close. Safe to call twice."""
        if self._fd is None:
            return
        try:
            if self._broken is None:
                self.sync()
        finally:
            os.close(self._fd)
            self._fd = None
