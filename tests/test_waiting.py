"""Parked requests, proposals and admission, alone (zmqnode/waiting.py).

No node, no sockets: a fake clock and plain callbacks.
"""

from __future__ import annotations

import weakref

import pytest

from zmqnode.transport.wire import ErrorCode, ProtocolError
from zmqnode.waiting import READ_INDEX_RETRY_S, Admission, Proposals, Waiters


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def waiters(clock: Clock) -> Waiters:
    return Waiters(read_tag="n1", clock=clock)


class _Blob:
    """Stands for a parked request's data (a PREDICT's rows)."""


# -- Waiters ---------------------------------------------------------------------


def test_answered_waiters_release_their_slot_and_data_at_once(waiters, clock):
    blob = _Blob()
    gone = weakref.ref(blob)
    fired = []
    parked = [waiters.park(60, lambda b=blob: fired.append(b), lambda: None) for _ in range(3)]
    assert waiters.parked == 3
    waiters.fire(parked[0])
    waiters.fire(parked[0])  # once only
    assert len(fired) == 1 and waiters.parked == 2
    for w in parked[1:]:
        waiters.fire(w)
    fired.clear()
    del blob
    # Still in the deadline heap, but no longer holding the request's data.
    assert waiters.held() == 3 and gone() is None


def test_a_waiter_past_its_deadline_times_out_once_and_never_fires(waiters, clock):
    outcome = []
    w = waiters.park(5, lambda: outcome.append("fired"), lambda: outcome.append("timeout"))
    clock.now += 4.9
    assert not waiters.expire(clock.now) and outcome == []
    clock.now += 0.2
    assert waiters.expire(clock.now)
    waiters.fire(w)
    assert outcome == ["timeout"] and waiters.parked == 0 and w.done


def test_the_deadline_heap_drops_answered_waiters_under_a_flood(waiters, clock):
    for _ in range(5000):
        waiters.fire(waiters.park(600, lambda: None, lambda: None))
    waiters.expire(clock.now)
    assert waiters.parked == 0 and waiters.held() <= 1024


def test_reads_parked_in_one_turn_share_one_read_index(waiters, clock):
    answered = []
    for i in range(3):
        waiters.after_read_index(10, lambda i=i: answered.append(i), lambda: None)
    asked = []
    waiters.issue_reads(lambda ctx: asked.append(ctx) or True)
    waiters.issue_reads(lambda ctx: asked.append(ctx) or True)  # nothing new: no second ask
    assert asked == ["n1/" + asked[0].split("/")[1]] and answered == []
    # The leader confirms read index 7; this node has applied only 5.
    waiters.read_index_ready(asked[0], 7, applied_index=5)
    assert answered == []
    waiters.applied(6)
    assert answered == []
    waiters.applied(7)
    assert answered == [0, 1, 2] and waiters.parked == 0


def test_a_read_already_applied_is_answered_when_its_index_comes_back(waiters):
    answered = []
    waiters.after_read_index(10, lambda: answered.append(1), lambda: None)
    ctx = []
    waiters.issue_reads(lambda c: ctx.append(c) or True)
    waiters.read_index_ready(ctx[0], 4, applied_index=9)
    assert answered == [1]


def test_reads_without_a_leader_wait_for_the_next_turn(waiters, clock):
    answered = []
    waiters.after_read_index(10, lambda: answered.append(1), lambda: None)
    waiters.issue_reads(lambda ctx: False)  # no leader known: Raft refuses
    ctx = []
    waiters.issue_reads(lambda c: ctx.append(c) or True)
    waiters.read_index_ready(ctx[0], 1, applied_index=1)
    assert answered == [1]


def test_a_read_index_that_never_comes_back_times_out_and_is_let_go(waiters, clock):
    timed_out = []
    waiters.after_read_index(1, lambda: None, lambda: timed_out.append(1))
    waiters.issue_reads(lambda ctx: True)  # the leader is lost with our request
    clock.now += 2
    waiters.expire(clock.now)
    assert timed_out == [1] and waiters.held() == 0


def test_a_read_index_lost_in_transit_is_asked_again(waiters, clock):
    # Seen in CI: a follower's READ_INDEX reached a leader that had not yet
    # re-read its healed fault file and was dropped; Raft does not resend it,
    # and the LIST timed out after 5 s on a healthy cluster.
    answered = []
    waiters.after_read_index(5, lambda: answered.append(1), lambda: None)
    asked: list[str] = []
    waiters.issue_reads(lambda c: asked.append(c) or True)  # lost
    clock.now += READ_INDEX_RETRY_S / 2
    waiters.issue_reads(lambda c: asked.append(c) or True)
    assert len(asked) == 1  # not yet: the answer may still come
    clock.now += READ_INDEX_RETRY_S
    waiters.issue_reads(lambda c: asked.append(c) or True)
    assert len(asked) == 2 and asked[0] != asked[1]
    waiters.read_index_ready(asked[0], 1, applied_index=1)  # a late first answer: ignored
    assert answered == []
    waiters.read_index_ready(asked[1], 1, applied_index=1)
    assert answered == [1] and waiters.held() <= 1  # only its deadline entry is left


def test_a_failing_callback_costs_its_request_only(waiters, clock):
    def broken() -> None:
        raise RuntimeError("bug")

    after = []
    waiters.fire(waiters.park(10, broken, lambda: None))
    waiters.fire(waiters.park(10, lambda: after.append(1), lambda: None))
    assert after == [1] and waiters.parked == 0


# -- Proposals -------------------------------------------------------------------


def test_a_proposal_is_answered_true_when_applied_in_its_term(clock):
    proposals = Proposals(clock=clock)
    answers = []
    proposals.add(3, term=2, size=60, on_done=answers.append)
    assert proposals.uncommitted_bytes == 60
    clock.now += 0.25
    assert proposals.applied(3, term=2) == pytest.approx(0.25)
    assert answers == [True] and proposals.uncommitted_bytes == 0 and len(proposals) == 0


def test_a_proposal_overwritten_by_another_term_is_answered_false(clock):
    proposals = Proposals(clock=clock)
    answers = []
    proposals.add(3, term=2, size=10, on_done=answers.append)
    proposals.applied(3, term=3)  # a new leader's entry took index 3
    assert answers == [False] and proposals.uncommitted_bytes == 0


def test_entries_this_node_did_not_propose_answer_nobody(clock):
    proposals = Proposals(clock=clock)
    assert proposals.applied(8, term=1) is None


def test_a_proposal_skipped_by_a_snapshot_is_answered_and_uncounted(clock):
    proposals = Proposals(clock=clock)
    answers = []
    proposals.add(7, term=1, size=50, on_done=answers.append)
    proposals.add(12, term=1, size=5, on_done=answers.append)
    proposals.passed_over(applied_index=9)
    assert answers == [False] and proposals.uncommitted_bytes == 5 and len(proposals) == 1


# -- Admission -------------------------------------------------------------------


def _admission(pending: list[int], held: list[int], counted: list[str]) -> Admission:
    return Admission(
        "n1",
        max_pending=3,
        max_uncommitted_bytes=100,
        pending=lambda: pending[0],
        uncommitted_bytes=lambda: held[0],
        count=counted.append,
    )


def test_admit_refuses_past_max_pending_with_busy():
    pending, counted = [2], []
    admission = _admission(pending, [0], counted)
    admission.admit({"id": "a"})
    pending[0] = 3  # e.g. two parked reads and a client joined to a training
    with pytest.raises(ProtocolError) as info:
        admission.admit({"id": "b"})
    assert info.value.code == ErrorCode.BUSY and info.value.header == {"id": "b"}
    assert "--max-pending" in info.value.message and counted == ["busy_pending"]


def test_uncommitted_bytes_bound_lets_one_through_alone():
    held, counted = [60], []
    admission = _admission([0], held, counted)
    with pytest.raises(ProtocolError) as info:
        admission.admit_bytes({"id": "b"}, 60)  # 120 > 100
    assert info.value.code == ErrorCode.BUSY and "--max-uncommitted-bytes" in info.value.message
    admission.admit_bytes({"id": "c"}, 40)  # exactly at the bound
    held[0] = 0
    admission.admit_bytes({"id": "d"}, 10_000)  # alone, even a big one goes through
    assert counted == ["busy_uncommitted"]
