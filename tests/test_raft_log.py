"""RaftLog: the in-memory log, its cursors and the AppendEntries receiver rules.

Modelled on etcd-io/raft's log_test.go. Logs are written as lists of terms:
``ents(1, 2, 3)`` is index 1 at term 1, index 2 at term 2, index 3 at term 3.
"""

from __future__ import annotations

import pytest

from tests.raft_helpers import ents, terms_of
from zmqnode.raft import Entry, Snapshot
from zmqnode.raft.log import LogInvariantError, RaftLog


def make_log(*terms: int, snapshot: Snapshot = Snapshot(), committed: int | None = None) -> RaftLog:
    log = RaftLog(snapshot, ents(*terms, start=snapshot.index + 1))
    if committed is not None:
        log.commit_to(committed)
    return log


# -- reading ---------------------------------------------------------------------


def test_empty_log_has_index_and_term_zero():
    log = RaftLog(Snapshot())
    assert (log.first_index, log.last_index, log.last_term) == (1, 0, 0)
    assert log.term_at(0) == 0
    assert log.term_at(1) is None


def test_term_at_covers_snapshot_boundary_and_nothing_else():
    log = make_log(4, 5, snapshot=Snapshot(3, 3))
    assert log.first_index == 4 and log.last_index == 5
    assert log.term_at(2) is None  # compacted
    assert log.term_at(3) == 3  # the snapshot's last entry
    assert log.term_at(4) == 4
    assert log.term_at(5) == 5
    assert log.term_at(6) is None  # not there yet


def test_recovered_log_must_be_contiguous_after_snapshot():
    with pytest.raises(LogInvariantError):
        RaftLog(Snapshot(3, 1), [Entry(5, 1)])
    with pytest.raises(LogInvariantError):
        RaftLog(Snapshot(), [Entry(1, 1), Entry(3, 1)])


def test_recovered_log_is_stable_and_only_snapshot_is_committed():
    log = make_log(2, 2, snapshot=Snapshot(5, 2))
    assert log.stable == 7
    assert log.committed == log.applied == 5
    assert log.unstable_entries() == []


@pytest.mark.parametrize(
    "last_index, last_term, up_to_date",
    [
        (2, 2, False),  # older last term, shorter
        (3, 2, False),  # older last term, same length
        (4, 2, False),  # older last term, longer: the term decides (§5.4.1)
        (2, 3, False),  # same last term, shorter
        (3, 3, True),  # identical
        (4, 3, True),  # same last term, longer
        (1, 4, True),  # newer last term, even if much shorter
        (5, 4, True),
    ],
)
def test_is_up_to_date_compares_last_term_then_length(last_index, last_term, up_to_date):
    """§5.4.1: "If the logs have last entries with different terms, then the log
    with the later term is more up-to-date. If the logs end with the same term,
    then whichever log is longer is more up-to-date."
    """
    log = make_log(1, 2, 3)
    assert log.is_up_to_date(last_index, last_term) is up_to_date


def test_is_up_to_date_uses_snapshot_term_when_log_is_empty():
    log = RaftLog(Snapshot(10, 4))
    assert log.is_up_to_date(10, 4)
    assert not log.is_up_to_date(9, 4)
    assert not log.is_up_to_date(20, 3)


@pytest.mark.parametrize(
    "index, term, want",
    [
        (6, 4, (6, 4)),  # agrees already
        (6, 3, (4, 2)),  # skip the whole term-4 run
        (6, 2, (4, 2)),
        (6, 1, (2, 1)),  # skip terms 4 and 2 in one go
        (6, 0, (0, 0)),  # nothing matches: back to the start
        (3, 5, (3, 2)),  # already at or below the term
        (9, 4, (9, 0)),  # beyond our last index: no information
    ],
)
def test_find_conflict_by_term(index, term, want):
    """Thesis §5.3 (optimization of the consistency check): the largest index at
    or below ``index`` whose term is at most ``term`` — everything above it
    certainly conflicts, so a whole term is skipped per round trip.
    """
    log = make_log(1, 1, 2, 2, 4, 4)
    assert log.find_conflict_by_term(index, term) == want


def test_find_conflict_by_term_stops_at_snapshot():
    log = make_log(2, 2, 4, snapshot=Snapshot(2, 1))
    assert log.find_conflict_by_term(5, 1) == (2, 1)  # the snapshot's own term is known
    index, term = log.find_conflict_by_term(5, 0)
    assert term == 0 and index < log.first_index  # below the snapshot: unknown


def test_entries_from_respects_max_bytes_but_returns_at_least_one():
    log = RaftLog(Snapshot(), [Entry(i, 1, data=b"x" * 100) for i in range(1, 6)])
    per_entry = 100 + 32  # data plus the fixed per-entry overhead
    assert len(log.entries_from(1, 10**6)) == 5
    assert len(log.entries_from(1, 2 * per_entry)) == 2
    assert len(log.entries_from(1, 2 * per_entry + per_entry - 1)) == 2
    assert len(log.entries_from(1, 1)) == 1  # an oversized entry still goes out alone
    assert [e.index for e in log.entries_from(4, 10**6)] == [4, 5]
    assert log.entries_from(6, 10**6) == []


def test_entries_from_refuses_compacted_index():
    log = make_log(1, 1, snapshot=Snapshot(5, 1))
    with pytest.raises(LogInvariantError):
        log.entries_from(5, 100)
    assert [e.index for e in log.entries_from(6, 10**6)] == [6, 7]


# -- maybe_append: AppendEntries receiver rules 2-4 --------------------------------


@pytest.mark.parametrize(
    "prev_index, prev_term, new, want_last, want_terms",
    [
        # rule 2: reply false if the log has no entry at prevLogIndex with prevLogTerm
        (3, 2, [], None, [1, 2, 3]),
        (4, 3, [(5, 4)], None, [1, 2, 3]),
        # plain appends
        (3, 3, [], 3, [1, 2, 3]),
        (3, 3, [(4, 4)], 4, [1, 2, 3, 4]),
        (3, 3, [(4, 4), (5, 4)], 5, [1, 2, 3, 4, 4]),
        # rule 3: a conflicting entry and everything after it is deleted
        (2, 2, [(3, 4)], 3, [1, 2, 4]),
        (1, 1, [(2, 4), (3, 4), (4, 4)], 4, [1, 4, 4, 4]),
        # entries we already have are kept, including those after the append
        (2, 2, [(3, 3)], 3, [1, 2, 3]),
        (1, 1, [(2, 2)], 2, [1, 2, 3]),
        (0, 0, [(1, 1)], 1, [1, 2, 3]),
        (0, 0, [], 0, [1, 2, 3]),
    ],
)
def test_maybe_append(prev_index, prev_term, new, want_last, want_terms):
    """Figure 2, AppendEntries receiver: "2. Reply false if log doesn't contain an
    entry at prevLogIndex whose term matches prevLogTerm. 3. If an existing entry
    conflicts with a new one (same index but different terms), delete the
    existing entry and all that follow it. 4. Append any new entries not already
    in the log." The return value is the index of the last new entry.
    """
    log = make_log(1, 2, 3, committed=1)
    entries = [Entry(i, t) for i, t in new]
    assert log.maybe_append(prev_index, prev_term, entries) == want_last
    assert terms_of(log.entries) == want_terms


def test_maybe_append_delayed_shorter_append_does_not_truncate():
    """§5.3 / Figure 2 rule 3 deletes only *conflicting* entries: a reordered,
    shorter AppendEntries that agrees with a prefix must leave the rest alone,
    or an acknowledged (possibly committed) entry would disappear.
    """
    log = make_log(1, 1, 1, 1, 1)
    assert log.maybe_append(1, 1, [Entry(2, 1), Entry(3, 1)]) == 3
    assert log.last_index == 5


def test_maybe_append_refuses_to_overwrite_committed_entry():
    """§5.4 (Leader Completeness): a committed entry is never replaced. A leader
    that asks for it is broken, and the log says so instead of obeying.
    """
    log = make_log(1, 2, 3, committed=2)
    with pytest.raises(LogInvariantError):
        log.maybe_append(1, 1, [Entry(2, 9)])
    assert terms_of(log.entries) == [1, 2, 3]


def test_append_replaces_suffix_and_rejects_gaps():
    log = make_log(1, 1, 1)
    log.append(ents(2, 2, start=2))
    assert terms_of(log.entries) == [1, 2, 2]
    with pytest.raises(LogInvariantError):
        log.append(ents(2, start=5))


# -- cursors: stable, committed, applied ----------------------------------------------


def test_unstable_entries_and_stable_to():
    log = make_log(1, 1)
    log.append(ents(2, 2, start=3))
    assert [e.index for e in log.unstable_entries()] == [3, 4]
    log.stable_to(4, 1)  # wrong term: an entry that was replaced meanwhile
    assert [e.index for e in log.unstable_entries()] == [3, 4]
    log.stable_to(3, 2)
    assert [e.index for e in log.unstable_entries()] == [4]
    log.stable_to(4, 2)
    assert log.unstable_entries() == []
    log.stable_to(3, 2)  # never goes backwards
    assert log.stable == 4


def test_truncating_append_pulls_stable_back():
    """Entries replaced by a conflicting append must be persisted again."""
    log = make_log(1, 1, 1, 1)
    assert log.stable == 4
    log.maybe_append(2, 1, ents(3, start=3))
    assert log.stable == 2
    assert [(e.index, e.term) for e in log.unstable_entries()] == [(3, 3)]


def test_commit_to_never_decreases_and_never_passes_last_index():
    log = make_log(1, 1, 1)
    assert log.commit_to(2)
    assert not log.commit_to(1)
    assert log.committed == 2
    with pytest.raises(LogInvariantError):
        log.commit_to(4)


def test_committed_to_apply_is_committed_minus_applied():
    log = make_log(1, 1, 1, 1)
    assert log.committed_to_apply() == []
    log.commit_to(3)
    assert [e.index for e in log.committed_to_apply()] == [1, 2, 3]
    log.applied = 2
    assert [e.index for e in log.committed_to_apply()] == [3]
    log.applied = 3
    assert log.committed_to_apply() == []


def test_committed_to_apply_after_snapshot():
    log = make_log(2, 2, 2, snapshot=Snapshot(10, 1))
    log.commit_to(12)
    assert [e.index for e in log.committed_to_apply()] == [11, 12]


# -- compaction and snapshots ----------------------------------------------------------


def test_compact_drops_covered_entries_and_keeps_the_rest():
    """§7: "the entire system state is written to a snapshot on stable storage,
    then the entire log up to that point is discarded."
    """
    log = make_log(1, 1, 2, 2, 3)
    log.commit_to(4)
    log.applied = 4
    log.compact(Snapshot(3, 2, b"s"))
    assert (log.first_index, log.last_index, log.last_term) == (4, 5, 3)
    assert log.term_at(2) is None and log.term_at(3) == 2
    assert [e.index for e in log.entries] == [4, 5]
    assert [e.index for e in log.committed_to_apply()] == []
    log.commit_to(5)
    assert [e.index for e in log.committed_to_apply()] == [5]


def test_compact_everything_keeps_last_term_for_up_to_date_checks():
    log = make_log(1, 2, 3)
    log.commit_to(3)
    log.applied = 3
    log.compact(Snapshot(3, 3))
    assert log.entries == []
    assert (log.last_index, log.last_term) == (3, 3)
    assert log.is_up_to_date(3, 3) and not log.is_up_to_date(3, 2)


def test_restore_replaces_the_whole_log():
    """§7: "If instead the follower receives a snapshot that describes new
    information not already in the recipient's log ... the follower discards its
    entire log; it is all superseded by the snapshot."
    """
    log = make_log(1, 1, 2, 2, 2, committed=2)
    snap = Snapshot(4, 3, b"state")
    log.restore(snap)
    assert log.entries == []
    assert log.snapshot == snap
    assert (log.last_index, log.last_term) == (4, 3)
    assert log.stable == log.committed == log.applied == 4
    assert log.pending_snapshot == snap
    assert log.unstable_entries() == [] and log.committed_to_apply() == []
    assert log.maybe_append(4, 3, [Entry(5, 3)]) == 5
