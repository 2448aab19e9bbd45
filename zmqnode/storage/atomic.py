"""Crash-safe whole-file replacement, and the fsync bookkeeping metrics need.

After a crash at any instant, a file written with ``atomic_write`` holds either
its old bytes or its new bytes, never a mix: the bytes go to a temporary file
in the same directory (so the rename stays on one filesystem), are fsynced,
``os.replace`` swaps it in (atomic on POSIX), and the directory is fsynced so
the rename itself survives a power cut. A crash before the rename leaves a
temporary file behind; ``remove_stale_temps`` sweeps those at start-up and
``is_temp_name`` lets listings skip them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Temporary files are hidden (leading dot) and end in this suffix, so a
# listing of models/ or snapshot/ can never mistake one for real data.
TEMP_SUFFIX = ".tmp"

PathLike = str | os.PathLike[str]


@dataclass
class FsyncStats:
    """How many fsyncs a storage object made and how long the last one took.

    ``NodeStorage`` shares one with its files and the node's ``ModelStore``;
    compaction's worker thread fsyncs model files through it as well, so
    ``on_fsync`` may be called from that thread.
    """

    count: int = 0
    total_seconds: float = 0.0
    last_seconds: float = 0.0
    on_fsync: Callable[[float], None] | None = None  # told each fsync's seconds (metrics)

    def fsync(self, fd: int) -> None:
        start = time.perf_counter()
        os.fsync(fd)
        elapsed = time.perf_counter() - start
        self.count += 1
        self.total_seconds += elapsed
        self.last_seconds = elapsed
        if self.on_fsync is not None:
            self.on_fsync(elapsed)


def fsync_dir(path: PathLike, stats: FsyncStats | None = None) -> None:
    """Make the directory's entries (creations, renames, removals) durable."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(path, flags)
    try:
        (stats or FsyncStats()).fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """``pwrite`` until every byte is written (a single call may write fewer)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def atomic_write(
    path: PathLike, data: bytes, *, stats: FsyncStats | None = None, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically, and durably unless ``durable=False``
    (then a crash may leave the old file, or an empty or partial new one, which
    the caller must detect, e.g. by a checksum, and rewrite).

    Raises OSError on I/O failure; the old file is then untouched and the
    temporary file removed.
    """
    path = Path(path)
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        try:
            write_all(fd, data, 0)
            if durable:
                (stats or FsyncStats()).fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(directory, stats)


def ensure_dir(path: PathLike, stats: FsyncStats | None = None) -> None:
    """Create ``path`` (and missing parents) so that the creation survives a crash.

    A new directory is only durable once its parent is fsynced; without that a
    power cut right after start-up could lose the storage dir and with it a vote.
    """
    path = Path(path)
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        fsync_dir(directory.parent, stats)


def is_temp_name(name: str) -> bool:
    """True for the temporary files ``atomic_write`` creates."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_stale_temps(directory: PathLike) -> list[str]:
    """Delete temporary files a crash left in ``directory``; their names."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in sorted(names):
        if is_temp_name(name):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed
