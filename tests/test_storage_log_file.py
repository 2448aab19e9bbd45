"""raft.log: append-only records, recovery from torn tails, refusal of damage.

Helpers write entries as terms, like tests/test_raft_log.py: ``ents(1, 1, 2)``
is index 1 and 2 at term 1, index 3 at term 2.
"""

from __future__ import annotations

import logging
import os
import random
import struct
import zlib

import pytest

from zmqnode.raft.messages import Entry, EntryKind
from zmqnode.storage.atomic import FsyncStats
from zmqnode.storage.errors import StorageBroken, StorageCorruption
from zmqnode.storage.log_file import LogFile, encode_header, encode_record

HEADER = len(encode_header(1))


def ents(*terms: int, start: int = 1, size: int = 10) -> list[Entry]:
    return [
        Entry(start + k, term, EntryKind.COMMAND, bytes([(start + k) % 256]) * size)
        for k, term in enumerate(terms)
    ]


def opened(path, stats=None) -> tuple[LogFile, list[Entry], list[str]]:
    log = LogFile(path, stats=stats)
    contents = log.open()
    return log, contents.entries, contents.warnings


def written(path, entries) -> list[int]:
    """Write ``entries`` to a fresh log; the byte offset where each record starts."""
    log, _, _ = opened(path)
    offsets = []
    for entry in entries:
        offsets.append(log.size)
        log.append([entry])
    log.close()
    return offsets


def flip_bit(path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x10
    path.write_bytes(bytes(raw))


@pytest.fixture
def path(tmp_path):
    return tmp_path / "raft.log"


# -- round trips ---------------------------------------------------------------


def test_new_log_is_empty_and_starts_at_index_1(path):
    log, entries, warnings = opened(path)
    assert entries == [] and warnings == []
    assert (log.first_index, log.last_index) == (1, 0)
    assert path.stat().st_size == HEADER


def test_entries_survive_close_and_reopen(path):
    original = [
        Entry(1, 1, EntryKind.NOOP, b""),
        Entry(2, 1, EntryKind.COMMAND, bytes(range(256)) * 40),  # every byte value
        Entry(3, 2, EntryKind.COMMAND, b"{}"),
        Entry(4, 2**40, EntryKind.NOOP, b""),
    ]
    log, _, _ = opened(path)
    log.append(original)
    log.sync()
    log.close()
    log, entries, warnings = opened(path)
    assert entries == original
    assert warnings == []
    assert (log.first_index, log.last_index) == (1, 4)
    assert log.term_at(4) == 2**40


def test_data_is_stored_as_raw_bytes_not_json(path):
    payload = b"\x00\x01binary\xff" * 100
    log, _, _ = opened(path)
    log.append([Entry(1, 1, EntryKind.COMMAND, payload)])
    log.close()
    raw = path.read_bytes()
    assert payload in raw
    # header + u32 length + u32 crc + u64 index + u64 term + u8 kind + data
    assert len(raw) == HEADER + 8 + 17 + len(payload)


def test_append_only_adds_bytes_at_the_end(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1))
    before = path.read_bytes()
    log.append(ents(1, 2, start=4))
    after = path.read_bytes()
    assert after.startswith(before)
    assert len(after) == log.size


def test_many_appends_need_one_fsync(path):
    stats = FsyncStats()
    log, _, _ = opened(path, stats)
    start = stats.count
    for k in range(1, 51):
        log.append([Entry(k, 1)])
    assert stats.count == start  # nothing durable yet
    assert log.sync() is True
    assert stats.count == start + 1
    assert log.sync() is False  # nothing new: no fsync
    assert stats.count == start + 1


# -- conflicts and invalid appends -----------------------------------------------


def test_append_at_an_existing_index_replaces_the_suffix(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1, 1, 1))
    log.append(ents(2, 2, 2, start=4))
    assert log.last_index == 6
    log.close()
    _, entries, _ = opened(path)
    assert [(e.index, e.term) for e in entries] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]


def test_append_shorter_conflicting_suffix_cuts_the_file(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1, 1, 1, size=1000))
    log.append(ents(3, start=2, size=1))
    log.close()
    _, entries, _ = opened(path)
    assert [(e.index, e.term) for e in entries] == [(1, 1), (2, 3)]
    assert path.stat().st_size == HEADER + (8 + 17 + 1000) + (8 + 17 + 1)


def test_truncation_then_reopen_then_more_appends(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1))
    log.append(ents(2, start=2))
    log.close()
    log, _, _ = opened(path)
    log.append(ents(2, 3, start=3))
    log.close()
    _, entries, _ = opened(path)
    assert [e.term for e in entries] == [1, 2, 2, 3]


@pytest.mark.parametrize(
    "batch, complaint",
    [
        (ents(1, start=5), "gap"),
        ([Entry(4, 1), Entry(6, 1)], "consecutive"),
        ([Entry(4, 1), Entry(5, 0)], "term"),
        ([Entry(2, 0)], "term"),  # entry 1 has term 1: terms never go down
    ],
)
def test_invalid_appends_are_refused_and_leave_the_file_alone(path, batch, complaint):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=complaint):
        log.append(batch)
    assert path.read_bytes() == before
    assert log.last_index == 3


def test_append_before_the_first_index_is_refused(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1, 1))
    log.compact(2)
    with pytest.raises(ValueError, match="compacted"):
        log.append([Entry(2, 1)])


# -- torn tails: truncated with a warning --------------------------------------------


def test_record_cut_off_mid_payload_is_dropped_with_a_warning(path, caplog):
    offsets = written(path, ents(1, 1, 1, 2))
    os.truncate(path, offsets[3] + 20)  # the last record stops inside its payload
    with caplog.at_level(logging.WARNING, logger="zmqnode.storage"):
        log, entries, warnings = opened(path)
    assert [e.index for e in entries] == [1, 2, 3]
    assert len(warnings) == 1 and "entry 4" in warnings[0] and str(path) in warnings[0]
    assert any("dropped" in r.getMessage() for r in caplog.records)
    assert path.stat().st_size == offsets[3]  # the torn bytes are gone from disk


def test_record_cut_off_mid_header_is_dropped(path):
    offsets = written(path, ents(1, 1, 1))
    os.truncate(path, offsets[2] + 3)
    _, entries, warnings = opened(path)
    assert [e.index for e in entries] == [1, 2]
    assert warnings


def test_appends_after_a_torn_tail_land_where_the_tail_was(path):
    offsets = written(path, ents(1, 1, 1))
    os.truncate(path, offsets[2] + 11)
    with open(path, "ab") as f:
        f.write(b"\xde\xad\xbe\xef garbage from a torn write")
    log, entries, warnings = opened(path)
    assert [e.index for e in entries] == [1, 2] and warnings
    log.append(ents(1, 2, start=3))
    log.close()
    _, entries, warnings = opened(path)
    assert [(e.index, e.term) for e in entries] == [(1, 1), (2, 1), (3, 1), (4, 2)]
    assert warnings == []


def test_garbage_after_the_last_whole_record_is_dropped(path):
    written(path, ents(1, 1))
    with open(path, "ab") as f:
        f.write(random.Random(0).randbytes(300))  # the same garbage on every run
    _, entries, warnings = opened(path)
    assert [e.index for e in entries] == [1, 2]
    assert warnings


def test_zero_filled_tail_is_dropped(path):
    # Some filesystems extend the file before the data reaches the disk: a
    # crash then leaves zeros where the last records should be.
    written(path, ents(1, 1))
    with open(path, "ab") as f:
        f.write(bytes(4096))
    _, entries, warnings = opened(path)
    assert [e.index for e in entries] == [1, 2]
    assert warnings


def test_flipped_bit_in_the_last_record_is_treated_as_a_torn_write(path):
    # Nothing follows the last record, so a flipped bit in it looks exactly
    # like a write the node never finished (and never acknowledged). Refusing
    # to start would make every torn write need an operator; truncating is
    # safe as long as a majority still holds the entry, and the leader resends it.
    offsets = written(path, ents(1, 1, 1))
    flip_bit(path, offsets[2] + 8 + 17 + 3)  # inside the last record's data
    _, entries, warnings = opened(path)
    assert [e.index for e in entries] == [1, 2]
    assert "checksum" in warnings[0]


def test_a_clean_log_reports_no_warnings(path):
    written(path, ents(1, 1, 2))
    _, _, warnings = opened(path)
    assert warnings == []


# -- damage in the middle: refused -----------------------------------------------------


def corruption(path) -> str:
    with pytest.raises(StorageCorruption) as info:
        LogFile(path).open()
    return str(info.value)


def test_flipped_bit_in_a_middle_record_is_refused_with_a_helpful_message(path):
    offsets = written(path, ents(1, 1, 1, 1, 1))
    flip_bit(path, offsets[2] + 8 + 17 + 2)  # inside entry 3's data
    before = path.read_bytes()
    message = corruption(path)
    assert str(path) in message
    assert "middle" in message
    assert "entry 3" in message
    assert f"byte {offsets[2]}" in message
    assert "remove the whole storage dir" in message
    assert path.read_bytes() == before  # refused, not repaired


def test_flipped_bit_in_the_first_record_is_refused(path):
    offsets = written(path, ents(1, 1))
    flip_bit(path, offsets[0] + 8 + 3)  # entry 1's index field
    assert "middle" in corruption(path)


def test_damaged_length_field_in_the_middle_is_refused(path):
    # A bad length means the next record cannot be found by following the
    # lengths; recovery must still notice the valid records further on.
    offsets = written(path, ents(1, 1, 1, 1, size=50))
    raw = bytearray(path.read_bytes())
    raw[offsets[1] : offsets[1] + 4] = struct.pack("<I", 10**9)
    path.write_bytes(bytes(raw))
    assert "middle" in corruption(path)


def test_a_whole_block_of_zeros_in_the_middle_is_refused(path):
    offsets = written(path, ents(*[1] * 200, size=30))
    raw = bytearray(path.read_bytes())
    raw[offsets[10] : offsets[10] + 1024] = bytes(1024)  # spans many records
    path.write_bytes(bytes(raw))
    assert "middle" in corruption(path)


def raw_record(index: int, term: int, data: bytes = b"x", kind: int = 2) -> bytes:
    payload = struct.pack("<QQB", index, term, kind) + data
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def test_valid_record_with_the_wrong_index_is_refused(path):
    path.write_bytes(encode_header(1) + raw_record(1, 1) + raw_record(3, 1))
    message = corruption(path)
    assert "entry 3 where entry 2 belongs" in message


def test_valid_record_with_a_lower_term_is_refused(path):
    path.write_bytes(encode_header(1) + raw_record(1, 5) + raw_record(2, 4))
    assert "term 4" in corruption(path)


def test_valid_record_of_unknown_kind_is_refused(path):
    path.write_bytes(encode_header(1) + raw_record(1, 1, kind=9))
    assert "unknown kind 9" in corruption(path)


def test_damaged_header_is_refused(path):
    written(path, ents(1))
    flip_bit(path, 12)  # first_index
    assert "header" in corruption(path)


def test_file_that_is_not_a_log_is_refused(path):
    path.write_bytes(b"hello, this is not a raft log at all")
    assert "ZQRAFTLG" in corruption(path)


def test_empty_file_is_refused(path):
    path.write_bytes(b"")
    assert "too short" in corruption(path)


# -- compaction ------------------------------------------------------------------------


def test_compaction_keeps_later_entries_and_survives_reopen(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 2, 2, 3))
    log.compact(3)
    assert (log.first_index, log.last_index) == (4, 5)
    assert log.term_at(3) is None and log.term_at(4) == 2
    log.close()
    log, entries, warnings = opened(path)
    assert entries == ents(1, 1, 2, 2, 3)[3:]
    assert (log.first_index, log.last_index) == (4, 5)
    assert warnings == []


def test_compaction_shrinks_the_file(path):
    log, _, _ = opened(path)
    log.append(ents(*[1] * 100, size=100))
    before = log.size
    log.compact(90)
    assert log.size == path.stat().st_size < before / 5


def test_appends_continue_after_compaction(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1))
    log.compact(2)
    log.append(ents(2, 2, start=4))
    log.append(ents(3, start=5))  # a conflict right after compaction
    log.close()
    log, entries, _ = opened(path)
    assert [(e.index, e.term) for e in entries] == [(3, 1), (4, 2), (5, 3)]


def test_compaction_past_the_end_leaves_an_empty_log_continuing_after_it(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1))
    log.compact(10)
    assert (log.first_index, log.last_index) == (11, 10)
    log.close()
    log, entries, _ = opened(path)
    assert entries == [] and log.first_index == 11
    log.append([Entry(11, 4)])
    with pytest.raises(ValueError, match="gap"):
        log.append([Entry(13, 4)])


def test_compaction_before_the_first_index_changes_nothing(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1))
    log.compact(2)
    before = path.read_bytes()
    log.compact(1)
    assert path.read_bytes() == before


def test_compaction_makes_unsynced_appends_durable_and_leaves_no_temp_files(path):
    stats = FsyncStats()
    log, _, _ = opened(path, stats)
    log.append(ents(1, 1, 1))
    log.compact(1)
    assert log.sync() is False  # the rewrite already fsynced everything
    assert os.listdir(path.parent) == ["raft.log"]


def test_reset_drops_every_entry(path):
    log, _, _ = opened(path)
    log.append(ents(1, 1, 1))
    log.reset(8)
    log.close()
    log, entries, _ = opened(path)
    assert entries == [] and (log.first_index, log.last_index) == (8, 7)


# -- failures ----------------------------------------------------------------------------


def test_a_failed_fsync_makes_the_log_refuse_further_use(path, monkeypatch):
    log, _, _ = opened(path)
    log.append(ents(1))

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        log.sync()
    monkeypatch.undo()
    # Retrying could "succeed" after the kernel dropped the dirty pages.
    with pytest.raises(StorageBroken):
        log.sync()
    with pytest.raises(StorageBroken):
        log.append(ents(1, start=2))
    log.close()


def test_opening_twice_is_an_error(path):
    log, _, _ = opened(path)
    with pytest.raises(RuntimeError):
        log.open()


def test_appending_before_open_is_an_error(path):
    with pytest.raises(RuntimeError, match="not open"):
        LogFile(path).append(ents(1))


def test_record_encoding_matches_the_documented_layout():
    record = encode_record(Entry(7, 3, EntryKind.NOOP, b"ab"))
    length, crc = struct.unpack_from("<II", record)
    payload = record[8:]
    assert length == len(payload) == 19
    assert crc == zlib.crc32(payload)
    assert struct.unpack_from("<QQB", payload) == (7, 3, 1)
    assert payload[17:] == b"ab"


def test_compaction_checks_the_records_it_reads_back(path):
    offsets = written(path, ents(1, 1, 1, 1, 1))
    log, _, _ = opened(path)
    flip_bit(path, offsets[3] + 20)  # the disk damages entry 4 while the node runs
    with pytest.raises(StorageCorruption) as info:
        log.compact(2)
    message = str(info.value)
    assert str(path) in message and "entry 4" in message and "compact" in message
    assert "remove the whole storage dir" in message
    log.close()
    # Nothing was copied: the file still holds every record, the damaged one in the middle.
    with pytest.raises(StorageCorruption, match="damaged in the middle"):
        opened(path)


def test_compaction_of_an_undamaged_log_reads_back_every_kept_record(path):
    offsets = written(path, ents(1, 1, 1, 1, 1))
    log, _, _ = opened(path)
    flip_bit(path, offsets[1] + 20)  # inside a record compaction drops: never read back
    log.compact(2)
    assert (log.first_index, log.last_index) == (3, 5)
    log.close()
    assert opened(path)[1] == ents(1, 1, 1, 1, 1)[2:]
