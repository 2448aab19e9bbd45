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
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..raft.messages import Entry, EntryKind, HardState, Ready, Snapshot
from .atomic import FsyncStats, PathLike, ensure_dir, is_temp_name, remove_stale_temps
from .errors import REJOIN, StorageCorruption
from .hard_state import HardStateFile
from .log_file import LogFile
from .snapshot_store import SnapshotStore

log = logging.getLogger("zmqnode.storage")

HARD_STATE_FILE = "raft_state.json"
LOG_FILE = "raft.log"
SNAPSHOT_DIR = "snapshot"
MODELS_DIR = "models"

_HARD_STATE_ADVICE = (
    "Restore the whole storage dir from one backup (raft_state.json alone is not enough: it "
    "must be at least as new as raft.log) or " + REJOIN + "."
)
_LOG_ADVICE = "Restore the whole storage dir from one backup or " + REJOIN + "."


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
        be repaired without losing acknowledged data, or when the files
        disagree in a way that could make this node vote twice in one term
        (see ``_check_hard_state``).
        """
        if self._open:
            raise RuntimeError(f"{self.directory} is already open")
        ensure_dir(self.directory, self.stats)
        remove_stale_temps(self.directory)
        hard_state = self.hard_state_file.load()
        snapshot = self.snapshots.load()
        log_existed = self.log.path.exists()
        contents = self.log.open()
        try:
            self._check_hard_state(hard_state, snapshot, contents.entries, log_existed)
            entries, repairs = self._reconcile(snapshot, contents.entries)
            if snapshot is None:
                repairs += self._check_models_against_log(entries)
        except BaseException:
            self.log.close()
            raise
        self._snapshot = snapshot
        self._open = True
        return Recovered(hard_state, snapshot, entries, [*contents.warnings, *repairs])

    def _check_hard_state(
        self,
        hard_state: HardState,
        snapshot: Snapshot | None,
        entries: list[Entry],
        log_existed: bool,
    ) -> None:
        """Refuse a term and vote that cannot be this node's latest.

        ``persist`` makes the hard state durable before the snapshot and the
        entries of every Ready, so on a healthy disk ``raft_state.json`` exists
        whenever the log holds an entry or a snapshot is stored, and its term
        is at least every term in them. When that does not hold, the file was
        lost, emptied and recreated, or rolled back (restored alone from an old
        backup), and the vote it held is gone: starting anyway could grant a
        second vote in a term this node already voted in, and two leaders could
        be elected in one term. Refusing is the only safe answer; the operator
        restores the whole directory or lets the node rejoin empty.

        The reverse loss is refused too: ``raft.log`` is created when a node
        first opens its storage, before any term is saved, so a node with a
        saved term but no log file lost its log (every entry it acknowledged).
        """
        path = self.hard_state_file.path
        log_terms = [e.term for e in entries[-1:]] + ([snapshot.term] if snapshot else [])
        highest = max(log_terms, default=0)
        holds = (
            f"{self.log.path} holds entries {entries[0].index} to {entries[-1].index}"
            if entries
            else f"{self.snapshots.path} holds a snapshot through entry {snapshot.index}"
            if snapshot
            else None
        )
        if not self.hard_state_file.found and holds is not None:
            raise StorageCorruption(
                path,
                f"is missing, yet {holds}: the node's current term and vote are lost, and "
                "starting without them could make it vote twice in one term",
                _HARD_STATE_ADVICE,
            )
        if hard_state.term < highest:
            raise StorageCorruption(
                path,
                f"says the current term is {hard_state.term}, yet {holds} of term {highest}: "
                "the file is older than the log (restored alone from an old backup?), so the "
                "vote it holds may not be the node's last",
                _HARD_STATE_ADVICE,
            )
        if not log_existed and hard_state.term > 0:
            raise StorageCorruption(
                self.log.path,
                f"was missing (an empty one was created), yet {path} says this node has "
                f"reached term {hard_state.term}: the log and every entry it acknowledged "
                "are lost",
                _LOG_ADVICE,
            )

    def _check_models_against_log(self, entries: list[Entry]) -> list[str]:
        """Warn when models/ holds more files than the log has commands.

        Without a snapshot every model file was written by applying one
        committed command of this log, and committed entries are never
        removed, so more files than commands means the log lost entries at
        its end: cut at a record boundary, which no checksum can see. Raft
        sends them again from the leader; the warning tells the operator the
        disk lost data it had confirmed as durable.
        """
        try:
            names = os.listdir(self.models_dir)
        except FileNotFoundError:
            return []
        files = sum(1 for n in names if n.endswith(".bin") and not is_temp_name(n))
        commands = sum(1 for e in entries if e.kind is EntryKind.COMMAND)
        if files <= commands:
            return []
        last = entries[-1].index if entries else 0
        message = (
            f"{self.log.path}: lost entries at its end: it holds {commands} model commands "
            f"(ends at entry {last}) but {self.models_dir} holds {files} model files those "
            "commands wrote, so the file was cut short at a record boundary (a disk or "
            "filesystem that lost confirmed writes?); the leader will send the lost entries again"
        )
        log.warning("%s", message)
        return [message]

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
        # (base > 0 here, since a log never starts before entry 1: there is a snapshot.)
        assert snapshot is not None
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
        """Make ``ready``'s hard state, snapshot and entries durable, in that order.

        The hard state goes first, so that a crash at any point leaves a term
        at least as high as every term in the snapshot and the log — a state
        Raft can reach anyway (a node learns a term before it hears what the
        leader sends in it) — and never a snapshot or entries from a term the
        node does not know it is in. ``open`` relies on this to tell a lost or
        rolled-back ``raft_state.json`` from a crash (``_check_hard_state``).
        The snapshot goes before the entries because it replaces the whole
        log (the order ``Ready`` states). Each file is fsynced once per call,
        however many entries (group commit).
        """
        self._check_open()
        if ready.hard_state is not None:
            self.hard_state_file.save(ready.hard_state)
        if ready.snapshot is not None:
            self.snapshots.save(ready.snapshot)
            self.log.reset(ready.snapshot.index + 1)
            self._snapshot = ready.snapshot
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
