"""The in-memory view of one node's Raft log: snapshot + entries + cursors.

Indexes are Raft's, starting at 1. ``snapshot.index`` is the last index the
snapshot covers; ``entries[k]`` holds index ``snapshot.index + 1 + k``.
Cursors, always ``snapshot.index <= applied <= committed`` and
``stable <= last_index``:

- ``stable``: the last index the caller has made durable (``Ready.entries``
  above it have not been persisted yet);
- ``committed``: the last index known committed (Raft §5.3);
- ``applied``: the last index handed to the state machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from .messages import Entry, Snapshot


class LogInvariantError(AssertionError):
    """The core was asked to break a rule that Raft's safety depends on."""


class RaftLog:
    """The snapshot, the entries after it and the cursors of the module
    docstring: the core's log, in memory (storage keeps the durable copy).
    Raises ``LogInvariantError`` rather than overwrite a committed entry,
    leave a gap, or commit past the last index."""

    def __init__(self, snapshot: Snapshot, entries: Sequence[Entry] = ()) -> None:
        self.snapshot = snapshot
        self.entries: list[Entry] = list(entries)
        for offset, entry in enumerate(self.entries):
            if entry.index != snapshot.index + 1 + offset:
                raise LogInvariantError(
                    f"recovered log is not contiguous after snapshot {snapshot.index}: "
                    f"entry {offset} has index {entry.index}"
                )
        self.stable = self.last_index
        self.committed = snapshot.index
        self.applied = snapshot.index
        # A snapshot received from the leader that the caller has not persisted yet.
        self.pending_snapshot: Snapshot | None = None

    # -- reading -------------------------------------------------------------

    @property
    def first_index(self) -> int:
        return self.snapshot.index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if compacted away or absent."""
        offset = index - self.snapshot.index
        if offset == 0:
            return self.snapshot.term
        if offset < 0 or offset > len(self.entries):
            return None
        return self.entries[offset - 1].term

    def match_term(self, index: int, term: int) -> bool:
        return self.term_at(index) == term

    def entries_from(self, index: int, max_bytes: int) -> list[Entry]:
        """Entries from ``index`` on, at least one, at most ``max_bytes`` of data."""
        start = index - self.snapshot.index - 1
        if start < 0:
            raise LogInvariantError(f"entry {index} is compacted (snapshot {self.snapshot.index})")
        batch: list[Entry] = []
        size = 0
        for entry in self.entries[start:]:
            size += len(entry.data) + 32
            if batch and size > max_bytes:
                break
            batch.append(entry)
        return batch

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: is a candidate's log at least as up-to-date as ours?"""
        return last_term > self.last_term or (
            last_term == self.last_term and last_index >= self.last_index
        )

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= ``index`` whose term is <= ``term``, with its term.

        Used on both sides of a rejected append to skip a whole term of
        conflicting entries in one round trip (thesis §5.3 optimization).
        """
        if index > self.last_index:
            return index, 0
        while True:
            entry_term = self.term_at(index)
            if entry_term is None:
                return index, 0
            if entry_term <= term:
                return index, entry_term
            index -= 1

    def unstable_entries(self) -> list[Entry]:
        start = self.stable - self.snapshot.index
        return self.entries[start:] if start < len(self.entries) else []

    def committed_to_apply(self) -> list[Entry]:
        if self.committed <= self.applied:
            return []
        lo = self.applied - self.snapshot.index
        hi = self.committed - self.snapshot.index
        return self.entries[lo:hi]

    # -- writing -------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Append, replacing any suffix from ``entries[0].index`` on."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.committed:
            raise LogInvariantError(
                f"refusing to overwrite committed entry {first} (commit {self.committed})"
            )
        if first > self.last_index + 1:
            raise LogInvariantError(f"gap: appending {first} after {self.last_index}")
        del self.entries[first - self.snapshot.index - 1 :]
        self.entries.extend(entries)
        self.stable = min(self.stable, first - 1)

    def maybe_append(self, prev_index: int, prev_term: int, entries: Sequence[Entry]) -> int | None:
        """AppendEntries receiver rules 2-4 (Figure 2).

        Returns the index of the last new entry, or None when the log does not
        contain ``prev_index`` at ``prev_term``. Existing entries that agree are
        kept: a delayed, shorter append must never cut entries off the log.
        """
        if not self.match_term(prev_index, prev_term):
            return None
        for position, entry in enumerate(entries):
            if not self.match_term(entry.index, entry.term):
                self.append(entries[position:])
                break
        return prev_index + len(entries)

    def commit_to(self, index: int) -> bool:
        if index > self.committed:
            if index > self.last_index:
                raise LogInvariantError(f"commit {index} beyond last index {self.last_index}")
            self.committed = index
            return True
        return False

    def stable_to(self, index: int, term: int) -> None:
        if self.term_at(index) == term and index > self.stable:
            self.stable = index

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log with a snapshot received from the leader."""
        self.snapshot = snapshot
        self.entries = []
        self.stable = snapshot.index
        self.committed = snapshot.index
        self.applied = snapshot.index
        self.pending_snapshot = snapshot

    def compact(self, snapshot: Snapshot) -> None:
        """Drop entries covered by a snapshot the local state machine took."""
        drop = snapshot.index - self.snapshot.index
        del self.entries[:drop]
        self.snapshot = snapshot
