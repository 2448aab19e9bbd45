"""The registry history checker (bench/history.py): hand-made histories, and the
fast rules cross-checked against a brute-force linearizability search."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.history import ADD, FAIL, FOUND, NOT_FOUND, OK, PREDICT, READ, UNKNOWN, Op, check


def add(x, start, end, status=OK, process="w"):
    return Op(process, ADD, start, end, status, id=x)


def read(ids, start, end, process="r"):
    return Op(process, READ, start, end, OK, value=frozenset(ids))


def predict(x, start, end, found=True, process="p"):
    return Op(process, PREDICT, start, end, OK, id=x, value=FOUND if found else NOT_FOUND)


def brute_force(ops: list[Op]) -> bool:
    """Wing & Gong: try every order consistent with real time, on the set model.

    An op may go next when no other pending op ended before it began. Failed
    adds and reads without a result are left out; an unknown add never ends
    (it may take effect any time after it began) and may be left out.
    """
    ops = [
        o for o in ops if (o.kind == ADD and o.status != FAIL) or (o.kind != ADD and o.status == OK)
    ]
    ends = [math.inf if o.status == UNKNOWN else o.end for o in ops]
    optional = [o.kind == ADD and o.status == UNKNOWN for o in ops]
    seen_dead_ends: set[int] = set()

    def search(done: int, state: frozenset) -> bool:
        pending = [i for i in range(len(ops)) if not done >> i & 1]
        if all(optional[i] for i in pending):
            return True
        if done in seen_dead_ends:  # the state follows from `done` (adds are unique)
            return False
        earliest_end = min(ends[i] for i in pending)
        for i in pending:
            o = ops[i]
            if earliest_end < o.start:
                continue
            if o.kind == ADD:
                nxt = state | {o.id}
            elif o.kind == READ:
                if o.value != state:
                    continue
                nxt = state
            else:
                if (o.id in state) != (o.value == FOUND):
                    continue
                nxt = state
            if search(done | 1 << i, nxt):
                return True
        seen_dead_ends.add(done)
        return False

    return search(0, frozenset())


# ---------------------------------------------------------------------------
# hand-made histories


def test_a_valid_history_with_concurrency_and_unknown_outcomes():
    h = [
        add("a", 0, 2),
        add("b", 1, 5),  # concurrent with the first read: may or may not be seen
        add("c", 1, 3, UNKNOWN),  # timed out; it happened (a later read sees it)
        add("d", 1, 2, UNKNOWN),  # timed out; never seen
        add("e", 0, 1, FAIL),
        read({"a"}, 3, 4),
        read({"a", "b", "c"}, 6, 7, process="r2"),
        predict("a", 2.5, 3),
        predict("b", 0.5, 1.5, found=False),  # b was still in flight
    ]
    result = check(h)
    assert result.linearizable, result.violations
    assert brute_force(h)
    assert result.acknowledged == {"a", "b", "c"}


def test_a_read_missing_an_add_acknowledged_before_it_began():
    h = [add("a", 0, 1), read(set(), 2, 3)]
    assert not check(h).linearizable and not brute_force(h)


def test_a_read_that_saw_a_later_add_but_missed_an_earlier_one():
    # b was acknowledged before c began; a read holding c must hold b.
    h = [add("b", 0, 1), add("c", 2, 3), read({"c"}, 0, 10)]
    result = check(h)
    assert not result.linearizable and "misses" in result.violations[0]
    assert not brute_force(h)


def test_a_read_with_an_id_nobody_added():
    h = [read({"ghost"}, 0, 1)]
    assert not check(h).linearizable and not brute_force(h)


def test_a_read_with_an_id_whose_add_failed():
    h = [add("a", 0, 1, FAIL), read({"a"}, 2, 3)]
    assert not check(h).linearizable and not brute_force(h)


def test_a_read_with_an_id_added_only_after_it_ended():
    h = [read({"a"}, 0, 1), add("a", 2, 3)]
    assert not check(h).linearizable and not brute_force(h)


def test_reads_that_are_not_nested():
    h = [add("a", 0, 5), add("b", 0, 5), read({"a"}, 1, 4), read({"b"}, 1, 4, process="r2")]
    result = check(h)
    assert not result.linearizable and "not nested" in result.violations[0]
    assert not brute_force(h)


def test_a_later_read_that_lost_an_id():
    h = [add("a", 0, 5, UNKNOWN), read({"a"}, 1, 2), read(set(), 3, 4, process="r2")]
    assert not check(h).linearizable and not brute_force(h)


def test_a_read_can_miss_an_unknown_add_forever():
    h = [add("a", 0, 1, UNKNOWN), read(set(), 2, 3), read(set(), 4, 5)]
    assert check(h).linearizable and brute_force(h)


def test_not_found_after_an_acknowledged_add():
    h = [add("a", 0, 1), predict("a", 2, 3, found=False)]
    result = check(h)
    assert not result.linearizable and "NOT_FOUND" in result.violations[0]
    assert not brute_force(h)


def test_not_found_after_a_read_saw_the_id():
    h = [add("a", 0, 9, UNKNOWN), read({"a"}, 1, 2), predict("a", 3, 4, found=False)]
    assert not check(h).linearizable and not brute_force(h)


def test_a_read_after_a_prediction_found_the_id():
    h = [add("a", 0, 9, UNKNOWN), predict("a", 1, 2), read(set(), 3, 4)]
    assert not check(h).linearizable and not brute_force(h)


def test_a_prediction_of_a_model_nobody_added():
    h = [predict("a", 0, 1)]
    assert not check(h).linearizable and not brute_force(h)


def test_not_found_concurrent_with_the_add_is_fine():
    h = [add("a", 0, 2), predict("a", 1, 3, found=False)]
    assert check(h).linearizable and brute_force(h)


# ---------------------------------------------------------------------------
# fast rules == brute force on random small histories

interval = st.tuples(st.integers(0, 12), st.integers(0, 6)).map(lambda t: (t[0], t[0] + t[1]))


@st.composite
def histories(draw, with_predicts: bool):
    """Small histories, half of them from a simulated linearizable run (then
    maybe corrupted), half with arbitrary read values."""
    ids = ["a", "b", "c", "d"][: draw(st.integers(1, 4))]
    simulate = draw(st.booleans())
    ops: list[Op] = []
    effect: dict[str, float] = {}  # simulated instant each add took effect
    for x in ids:
        start, end = draw(interval)
        status = draw(st.sampled_from([OK, OK, UNKNOWN, FAIL]))
        if status == OK:
            effect[x] = draw(st.integers(start, end)) + 0.5 * draw(st.integers(-1, 1))
        elif status == UNKNOWN and draw(st.booleans()):
            effect[x] = draw(st.integers(start, start + 10)) + 0.5 * draw(st.integers(-1, 1))
        ops.append(add(x, start, end, status))
    for k in range(draw(st.integers(0, 3))):
        start, end = draw(interval)
        if simulate:
            at = draw(st.integers(start, end)) + 0.25 * draw(st.integers(-1, 1))
            value = {x for x, t in effect.items() if t < at}
        else:
            value = set(draw(st.sets(st.sampled_from(ids))))
        ops.append(read(value, start, end, process=f"r{k}"))
    for k in range(draw(st.integers(0, 2)) if with_predicts else 0):
        start, end = draw(interval)
        x = draw(st.sampled_from(ids))
        if simulate:
            at = draw(st.integers(start, end)) + 0.25 * draw(st.integers(-1, 1))
            found = effect.get(x, math.inf) < at
        else:
            found = draw(st.booleans())
        ops.append(predict(x, start, end, found, process=f"p{k}"))
    if simulate and draw(st.booleans()) and ops:
        i = draw(st.integers(0, len(ops) - 1))
        o = ops[i]
        if o.kind == READ:
            ops[i] = read(o.value ^ {draw(st.sampled_from(ids))}, o.start, o.end, o.process)
        elif o.kind == PREDICT:
            ops[i] = predict(o.id, o.start, o.end, o.value != FOUND, o.process)
    return ops


@pytest.mark.fuzz
@settings(max_examples=1500, deadline=None)
@given(histories(with_predicts=False))
def test_rules_equal_brute_force_for_adds_and_reads(ops):
    assert check(ops).linearizable == brute_force(ops), ops


@pytest.mark.fuzz
@settings(max_examples=1000, deadline=None)
@given(histories(with_predicts=True))
def test_prediction_rules_only_flag_real_violations(ops):
    """Rule D is necessary, not sufficient: a flagged history is never linearizable."""
    if not check(ops).linearizable:
        assert not brute_force(ops), ops
