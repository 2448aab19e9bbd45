"""One node's ``--storage-dir``: Raft's hard state, log and snapshot together.

::

    <storage-dir>/
      raft_state.json      term and vote (``hard_state.py``)
      raft.log             the log (``log_file.py``)
      snapshot/            the latest snapshot (``snapshot_store.py``)
      models/<id>.bin      models (``model_store.py``; the registry owns it)

``NodeStorage`` is what the node's event loop talks to: ``open`` once at
start-up, ``persist`` for every Ready, ``compact`` after the state machine
took a snapshot. Every method returns only once what it wrote is durable.

Invariant kept on disk: the log continues right after the stored snapshot
(``raft.log``'s first index is ``snapshot.index + 1``, or 1 without one).
A crash between writing a snapshot and trimming the log breaks it for a
moment; ``open`` finishes the job (see ``_reconcile``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..raft.messages import Entry, HardState, Ready, Snapshot
from .atomic import FsyncStats, PathLike, ensure_dir, remove_stale_temps
from .errors import REJOIN, StorageCorruption
from .hard_state import HardStateFile
from .log_file import LogFile
from .snapshot_store import SnapshotStore

log = logging.getLogger("zmqnode.storage")

HARD_STATE_FILE = "raft_state.json"
LOG_FILE = "raft.log"
SNAPSHOT_DIR = "snapshot"
MODELS_DIR = "models"


@dataclass(frozen=True)
class Recovered:
    """What ``NodeStorage.open`` found: the Raft core's start state.

    ``entries`` continue right after ``snapshot`` (or start at 1 without
    one). ``warnings`` say what recovery had to repair after a crash; the
    node should log them.
    """

    hard_state: HardState
    snapshot: Snapshot | None
    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)


class NodeStorage:
    """Durable storage for one node; one event loop uses it (not thread-safe)."""

    def __init__(self, directory: PathLike) -> None:
        self.directory = Path(directory)
        self.stats = FsyncStats()
        self.hard_state_file = HardStateFile(self.directory / HARD_STATE_FILE, stats=self.stats)
        self.snapshots = SnapshotStore(self.directory / SNAPSHOT_DIR, stats=self.stats)
        self.log = LogFile(self.directory / LOG_FILE, stats=self.stats)
        self._snapshot: Snapshot | None = None
        self._open = False

    @property
    def models_dir(self) -> Path:
        return self.directory / MODELS_DIR

    # -- metrics ----------------------------------------------------------------

    @property
    def log_bytes(self) -> int:
        return self.log.size

    @property
    def fsync_count(self) -> int:
        """fsyncs of files and directories since this object was made."""
        return self.stats.count

    @property
    def last_fsync_seconds(self) -> float:
        return self.stats.last_seconds

    @property
    def fsync_seconds_total(self) -> float:
        return self.stats.total_seconds

    # -- life cycle ---------------------------------------------------------------

    def open(self) -> Recovered:
        """Create the directory if needed, load everything, repair what a crash left.

        Raises StorageCorruption when a file is damaged in a way that cannot
        be repaired without losing acknowledged data.
        """
        if self._open:
            raise RuntimeError(f"{self.directory} is already open")
        ensure_dir(self.directory, self.stats)
        remove_stale_temps(self.directory)
        hard_state = self.hard_state_file.load()
        snapshot = self.snapshots.load()
        contents = self.log.open()
        try:
            entries, repairs = self._reconcile(snapshot, contents.entries)
        except BaseException:
            self.log.close()
            raise
        self._snapshot = snapshot
        self._open = True
        return Recovered(hard_state, snapshot, entries, [*contents.warnings, *repairs])

    def _reconcile(
        self, snapshot: Snapshot | None, entries: list[Entry]
    ) -> tuple[list[Entry], list[str]]:
        """Make the log continue right after the snapshot; the entries left, and what changed."""
        base = snapshot.index if snapshot is not None else 0
        first = self.log.first_index
        if first == base + 1:
            return entries, []
        if first > base + 1:
            where = (
                f"the snapshot in {self.snapshots.path} ends at {base}"
                if snapshot
                else f"there is no snapshot in {self.snapshots.directory}"
            )
            raise StorageCorruption(
                self.log.path,
                f"starts at entry {first}, but {where}: entries {base + 1} to {first - 1} are "
                "missing",
                "Was the snapshot directory removed or replaced? Put it back from a backup or "
                + REJOIN
                + ".",
            )
        # first <= base: a crash came between saving the snapshot and trimming the log.
        if self.log.term_at(base) == snapshot.term:
            # Local compaction (or a snapshot matching our log): finish trimming.
            self.log.compact(base)
            message = (
                f"{self.log.path}: finished a compaction through entry {base} that a "
                "crash interrupted"
            )
            kept = entries[base + 1 - first :]
        else:
            # An installed snapshot replaces the whole log (Raft §7); the old
            # entries conflict with it or stop short of it.
            self.log.reset(base + 1)
            message = (
                f"{self.log.path}: dropped {len(entries)} entries that the installed "
                f"snapshot at {base} replaces (a crash interrupted the install)"
            )
            kept = []
        log.warning("%s", message)
        return kept, [message]

    def close(self) -> None:
        """Close the log (syncing it). Safe to call twice."""
        self.log.close()
        self._open = False

    # -- writing ----------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError(f"{self.directory}: call open() first")

    def persist(self, ready: Ready) -> None:
        """Make ``ready``'s snapshot, hard state and entries durable, in that order.

        The order is ``Ready``'s contract (``raft/messages.py``): the snapshot
        first, because it replaces the whole log; the hard state before the
        entries, so that a crash between the two leaves a term at least as
        high as every term in the log — a state Raft can reach anyway — and
        never entries from a term the node does not know it is in. Each file
        is fsynced once per call, however many entries (group commit).
        """
        self._check_open()
        if ready.snapshot is not None:
            self.snapshots.save(ready.snapshot)
            self.log.reset(ready.snapshot.index + 1)
            self._snapshot = ready.snapshot
        if ready.hard_state is not None:
            self.hard_state_file.save(ready.hard_state)
        if ready.entries:
            self.log.append(ready.entries)
            self.log.sync()

    def compact(self, snapshot: Snapshot) -> None:
        """Store a snapshot the local state machine took, then drop the log up to it.

        Entries after ``snapshot.index`` stay. A snapshot no newer than the
        stored one is ignored.
        """
        self._check_open()
        if self._snapshot is not None and snapshot.index <= self._snapshot.index:
            return
        if snapshot.index > self.log.last_index:
            raise ValueError(
                f"cannot compact through {snapshot.index}: the log ends at {self.log.last_index}"
            )
        self.snapshots.save(snapshot)
        self.log.compact(snapshot.index)
        self._snapshot = snapshot

    @property
    def snapshot(self) -> Snapshot | None:
        """The stored snapshot, if any."""
        return self._snapshot
