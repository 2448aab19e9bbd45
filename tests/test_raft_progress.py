"""Progress: what a leader knows about one follower, and its flow control.

Modelled on etcd-io/raft's tracker/progress_test.go: PROBE (one append at a
time), REPLICATE (pipelined, at most max_inflight unacknowledged) and SNAPSHOT
(nothing but the snapshot until it is answered).
"""

from __future__ import annotations

import pytest

from zmqnode.raft.progress import Progress, ProgressState

PROBE, REPLICATE, SNAPSHOT = ProgressState.PROBE, ProgressState.REPLICATE, ProgressState.SNAPSHOT


def progress(state: ProgressState = PROBE, match: int = 0, next_index: int = 1) -> Progress:
    pr = Progress(next_index)
    pr.match = match
    if state is REPLICATE:
        pr.become_replicate()
        pr.next = next_index
    elif state is SNAPSHOT:
        pr.become_snapshot(next_index)
    return pr


def test_new_progress_probes_from_leaders_next_index():
    """§5.3: "When a leader first comes to power, it initializes all nextIndex
    values to the index just after the last one in its log."
    """
    pr = Progress(11)
    assert (pr.state, pr.match, pr.next) == (PROBE, 0, 11)
    assert not pr.is_paused(max_inflight=4)


def test_probe_allows_one_append_in_flight():
    pr = Progress(5)
    pr.sent(last_index=6, entry_count=2)
    assert pr.is_paused(max_inflight=100)
    assert pr.next == 5  # a probe does not move next optimistically


def test_probe_unpauses_when_acknowledged():
    pr = Progress(5)
    pr.sent(6, 2)
    assert pr.maybe_update(6)
    assert not pr.is_paused(100)
    assert (pr.match, pr.next) == (6, 7)


def test_become_replicate_streams_from_match():
    pr = progress(PROBE, match=0, next_index=9)
    pr.maybe_update(8)
    pr.become_replicate()
    assert (pr.state, pr.next) == (REPLICATE, 9)


def test_replicate_pipelines_up_to_max_inflight():
    """Flow control: at most ``max_inflight`` unacknowledged appends at once."""
    pr = progress(REPLICATE, match=5, next_index=6)
    for last in (7, 9, 11):
        assert not pr.is_paused(max_inflight=3)
        pr.sent(last, 2)
    assert pr.next == 12
    assert pr.is_paused(max_inflight=3)
    assert pr.maybe_update(9)  # acknowledges the first two appends at once
    assert list(pr.inflight) == [11]
    assert not pr.is_paused(max_inflight=3)


def test_replicate_empty_append_is_not_inflight():
    pr = progress(REPLICATE, match=5, next_index=6)
    pr.sent(5, 0)
    assert not pr.inflight and pr.next == 6


def test_maybe_update_ignores_stale_ack_but_never_moves_next_back():
    pr = progress(REPLICATE, match=5, next_index=10)
    assert not pr.maybe_update(3)
    assert (pr.match, pr.next) == (5, 10)
    assert pr.maybe_update(7)
    assert (pr.match, pr.next) == (7, 10)


def test_snapshot_state_pauses_everything():
    pr = progress(SNAPSHOT, match=2, next_index=20)
    assert pr.pending_snapshot == 20
    assert pr.is_paused(max_inflight=100)


def test_probe_after_snapshot_resumes_after_the_snapshot():
    """Leaving SNAPSHOT (e.g. retrying a lost one), probe after what was sent."""
    pr = progress(SNAPSHOT, match=2, next_index=20)
    pr.become_probe()
    assert (pr.state, pr.next, pr.pending_snapshot) == (PROBE, 21, 0)


def test_probe_after_replicate_restarts_from_match():
    pr = progress(REPLICATE, match=5, next_index=6)
    pr.sent(9, 4)
    pr.become_probe()
    assert (pr.state, pr.next) == (PROBE, 6)
    assert not pr.inflight and not pr.is_paused(1)


# -- maybe_decrease_to: rejected appends -----------------------------------------------


def test_replicate_rejection_falls_back_to_match():
    pr = progress(REPLICATE, match=5, next_index=6)
    pr.sent(10, 5)
    assert pr.maybe_decrease_to(rejected=8, match_hint=3)
    assert pr.next == 6  # match + 1: never below what the follower confirmed


@pytest.mark.parametrize("rejected", [3, 5])
def test_replicate_stale_rejection_at_or_below_match_is_ignored(rejected):
    """A rejection of an append at or below ``match`` predates the ack that set
    ``match``: the follower has since agreed, so it must not rewind ``next``.
    """
    pr = progress(REPLICATE, match=5, next_index=12)
    assert not pr.maybe_decrease_to(rejected=rejected, match_hint=0)
    assert (pr.state, pr.match, pr.next) == (REPLICATE, 5, 12)


def test_probe_rejection_of_current_probe_uses_hint():
    pr = progress(PROBE, match=0, next_index=11)
    pr.sent(10, 0)
    assert pr.maybe_decrease_to(rejected=10, match_hint=4)
    assert pr.next == 5
    assert not pr.is_paused(1)  # the next probe may go out at once


@pytest.mark.parametrize("rejected", [7, 10, 12])
def test_probe_rejection_of_other_probe_is_stale(rejected):
    """In PROBE only the answer to the probe at ``next - 1`` counts; a duplicate
    or reordered rejection of an earlier probe must not move ``next`` again.
    """
    pr = progress(PROBE, match=0, next_index=9)
    pr.sent(8, 0)
    assert not pr.maybe_decrease_to(rejected=rejected, match_hint=1)
    assert pr.next == 9
    assert pr.is_paused(1)


def test_probe_rejection_never_goes_above_rejected():
    pr = progress(PROBE, match=3, next_index=9)
    assert pr.maybe_decrease_to(rejected=8, match_hint=5)
    assert (pr.match, pr.next) == (3, 6)
    pr = progress(PROBE, match=0, next_index=9)
    assert pr.maybe_decrease_to(rejected=8, match_hint=50)
    assert pr.next == 8  # a hint beyond the rejected index: just step back one


def test_probe_hint_below_match_means_the_follower_lost_entries():
    """A follower whose disk lost the end of its log, or that was wiped to rejoin
    empty, answers the probe with a hint below what it once confirmed: forget
    ``match`` and probe from the hint, or it is never caught up."""
    pr = progress(PROBE, match=3, next_index=9)
    pr.sent(8, 0)
    assert pr.maybe_decrease_to(rejected=8, match_hint=0)
    assert (pr.match, pr.next) == (0, 1)
    assert not pr.is_paused(1)


def test_replicate_rejection_right_after_match_with_a_lower_hint_forgets_match():
    """Idle in step (next = match + 1), the follower restarts with a shorter log:
    the append after ``match`` is rejected with its real end as the hint."""
    pr = progress(REPLICATE, match=7, next_index=8)
    assert pr.maybe_decrease_to(rejected=7, match_hint=4)
    assert (pr.state, pr.match, pr.next) == (PROBE, 0, 5)  # probed from its hint, not from 1


def test_replicate_rejection_right_after_match_with_a_hint_at_match_is_stale():
    pr = progress(REPLICATE, match=7, next_index=8)
    assert not pr.maybe_decrease_to(rejected=7, match_hint=7)
    assert (pr.state, pr.match, pr.next) == (REPLICATE, 7, 8)


def test_snapshot_ack_then_replicate():
    pr = progress(SNAPSHOT, match=2, next_index=20)
    assert pr.maybe_update(20)
    pr.become_probe()
    pr.become_replicate()
    assert (pr.state, pr.match, pr.next) == (REPLICATE, 20, 21)
