"""snapshot/: the latest snapshot, saved atomically and verified on load."""

from __future__ import annotations

import os
import struct

import pytest

from zmqnode.raft.messages import Snapshot
from zmqnode.storage.errors import StorageCorruption
from zmqnode.storage.snapshot_store import FILE_NAME, SnapshotStore

HEADER = 8 + 4 + 8 + 8 + 8 + 4 + 8 + 4 + 4  # version 2
MEMBERSHIP = b'{"credentials":{},"learners":["d"],"voters":["a","b","c"]}'


@pytest.fixture
def directory(tmp_path):
    return tmp_path / "snapshot"


def test_no_snapshot_loads_as_none(directory):
    assert SnapshotStore(directory).load() is None


def test_save_then_load_round_trips(directory):
    snap = Snapshot(index=42, term=7, data=bytes(range(256)) * 10)
    SnapshotStore(directory).save(snap)
    assert SnapshotStore(directory).load() == snap


def test_empty_data_round_trips(directory):
    SnapshotStore(directory).save(Snapshot(3, 1, b""))
    assert SnapshotStore(directory).load() == Snapshot(3, 1, b"")


def test_a_new_snapshot_replaces_the_old_one_without_temp_files(directory):
    store = SnapshotStore(directory)
    store.save(Snapshot(10, 2, b"old" * 1000))
    store.save(Snapshot(20, 3, b"new"))
    assert store.load() == Snapshot(20, 3, b"new")
    assert os.listdir(directory) == [FILE_NAME]


def test_file_layout_is_header_then_raw_data_then_membership(directory):
    SnapshotStore(directory).save(Snapshot(5, 2, b"state", MEMBERSHIP))
    raw = (directory / FILE_NAME).read_bytes()
    assert raw[:8] == b"ZQSNAPSH"
    assert struct.unpack_from("<IQQQ", raw, 8) == (2, 5, 2, 5)
    assert struct.unpack_from("<Q", raw, 8 + 4 + 8 + 8 + 8 + 4)[0] == len(MEMBERSHIP)
    assert raw[HEADER:] == b"state" + MEMBERSHIP
    assert SnapshotStore(directory).load() == Snapshot(5, 2, b"state", MEMBERSHIP)


def test_a_version_1_file_still_loads_with_the_bootstrap_membership(directory):
    import zlib

    fields = struct.pack("<8sIQQQI", b"ZQSNAPSH", 1, 5, 2, 5, zlib.crc32(b"state"))
    directory.mkdir()
    (directory / FILE_NAME).write_bytes(fields + struct.pack("<I", zlib.crc32(fields)) + b"state")
    assert SnapshotStore(directory).load() == Snapshot(5, 2, b"state", b"")


def test_a_flipped_bit_in_the_membership_is_detected(directory):
    SnapshotStore(directory).save(Snapshot(5, 2, b"state", MEMBERSHIP))
    damage(directory, HEADER + len(b"state") + 3)
    assert "membership that fails its checksum" in corrupt_load(directory)


def corrupt_load(directory) -> str:
    with pytest.raises(StorageCorruption) as info:
        SnapshotStore(directory).load()
    return str(info.value)


def damage(directory, offset: int) -> None:
    path = directory / FILE_NAME
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def test_flipped_bit_in_the_data_is_detected(directory):
    SnapshotStore(directory).save(Snapshot(5, 2, b"registry state" * 10))
    damage(directory, HEADER + 20)
    message = corrupt_load(directory)
    assert "data that fails its checksum" in message
    assert FILE_NAME in message and "remove the whole storage dir" in message


def test_flipped_bit_in_the_index_is_detected(directory):
    SnapshotStore(directory).save(Snapshot(5, 2, b"x"))
    damage(directory, 12)
    assert "header" in corrupt_load(directory)


def test_truncated_snapshot_is_detected(directory):
    SnapshotStore(directory).save(Snapshot(5, 2, b"x" * 100))
    path = directory / FILE_NAME
    path.write_bytes(path.read_bytes()[:-1])
    assert "99 bytes after its header where it says 100" in corrupt_load(directory)


def test_short_or_foreign_file_is_detected(directory):
    directory.mkdir()
    (directory / FILE_NAME).write_bytes(b"tiny")
    assert "too short" in corrupt_load(directory)
    (directory / FILE_NAME).write_bytes(b"X" * 100)
    assert "ZQSNAPSH" in corrupt_load(directory)


def test_load_removes_temp_files_a_crash_left(directory):
    store = SnapshotStore(directory)
    store.save(Snapshot(1, 1, b"a"))
    (directory / f".{FILE_NAME}.x1y2.tmp").write_bytes(b"half a snapshot")
    assert store.load() == Snapshot(1, 1, b"a")
    assert os.listdir(directory) == [FILE_NAME]
