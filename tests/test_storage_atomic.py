"""atomic_write: whole-file replacement that a crash cannot leave half-done."""

from __future__ import annotations

import os

import pytest

from zmqnode.storage.atomic import (
    FsyncStats,
    atomic_write,
    ensure_dir,
    fsync_dir,
    is_temp_name,
    remove_stale_temps,
)


def test_atomic_write_creates_then_replaces_the_file(tmp_path):
    target = tmp_path / "state.json"
    atomic_write(target, b"first")
    assert target.read_bytes() == b"first"
    atomic_write(target, b"second, longer than the first")
    assert target.read_bytes() == b"second, longer than the first"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    for n in range(5):
        atomic_write(tmp_path / "f.bin", bytes([n]) * 1000)
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_atomic_write_replaces_by_rename_not_in_place(tmp_path):
    # A reader holding the old file keeps seeing the old bytes: the new ones
    # arrived in a different inode, swapped in whole.
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")
    with open(target, "rb") as reader:
        atomic_write(target, b"new")
        assert reader.read() == b"old"
    assert target.read_bytes() == b"new"


def test_atomic_write_fsyncs_the_file_and_its_directory(tmp_path):
    stats = FsyncStats()
    atomic_write(tmp_path / "f.bin", b"x", stats=stats)
    assert stats.count == 2
    assert stats.last_seconds >= 0 and stats.total_seconds >= stats.last_seconds


def test_failed_atomic_write_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_stale_temp_files_are_recognised_and_removed(tmp_path):
    (tmp_path / ".model.bin.abc123.tmp").write_bytes(b"half")
    (tmp_path / "model.bin").write_bytes(b"whole")
    (tmp_path / "notes.tmp").write_bytes(b"not ours: no leading dot")
    assert is_temp_name(".model.bin.abc123.tmp")
    assert not is_temp_name("model.bin")
    assert remove_stale_temps(tmp_path) == [".model.bin.abc123.tmp"]
    assert sorted(os.listdir(tmp_path)) == ["model.bin", "notes.tmp"]


def test_fsync_dir_counts_one_fsync(tmp_path):
    stats = FsyncStats()
    fsync_dir(tmp_path, stats)
    assert stats.count == 1


def test_ensure_dir_creates_parents_and_fsyncs_each_new_entry(tmp_path):
    stats = FsyncStats()
    ensure_dir(tmp_path / "a" / "b", stats)
    assert (tmp_path / "a" / "b").is_dir()
    assert stats.count == 2  # tmp_path (for a) and a (for b)
    ensure_dir(tmp_path / "a" / "b", stats)
    assert stats.count == 2  # already there: nothing to do
