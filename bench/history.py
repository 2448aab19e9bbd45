"""Recorded client operations and a linearizability checker for the model registry.

The registry, seen from clients, is a **grow-only set of unique ids**: TRAIN
and IMPORT add one id (derived from the request id, so each logical write adds
its own id), LIST reads the whole set, PREDICT asks whether one id is in it.
``bench/chaos.py`` records every call as an ``Op`` (who, what, when it began
and ended on one monotonic clock, and what came back) and ``check`` decides
whether some sequential run of the set, with each op taking effect at one
instant inside its own interval, explains every reply.

Outcomes: ``ok`` (the reply says it happened), ``fail`` (an error that means
"not done": nothing happened) and ``unknown`` (timeout, lost connection,
retryable error: it may or may not have happened, now or later; its ``end``
is irrelevant, it may take effect any time after ``start`` or never).

Notation: ``a -> b`` ("a precedes b") when ``a.end < b.start``. ``first(x)``
is the earliest start of an add of ``x`` that did not fail; ``w(x)``, the
*witness time* of x, is the earliest end of an op proving x is in the set
(an ok add of x, a read containing x, a predict that found x).

Rules (each is necessary; A-C together are also sufficient for add/read):

A. *Reads see what came before.* For a read r let
   ``T(r) = max(r.start, first(x) for x in r)``; every y with ``w(y) < T(r)``
   is in r. (y took effect before w(y); every x in r took effect after
   first(x), and r after all of them; so y took effect before r.)
   With only ``r.start`` in T this is "a read contains every add acknowledged
   before it began"; the ``first(x)`` part catches a read that saw a later
   add but missed an earlier acknowledged one.
B. *Reads see nothing from the future.* Every x in a read r has a non-failed
   add with ``start <= r.end``; an id nobody added is a phantom.
C. *Reads agree.* All reads are totally ordered by inclusion (the set only
   grows, so any two states are nested), and ``r1 -> r2`` implies
   ``r1 ⊆ r2``.
D. *Predictions.* A predict that found x needs a non-failed add of x with
   ``start <= p.end``; a predict answering NOT_FOUND for x needs
   ``w(x) >= p.start`` (x was not known to exist when it began).

Why A-C suffice for adds and reads: sort reads into their inclusion chain
(equal sets by start). Give each read the instant
``t(r) = max over reads r' up to r in the chain of T(r')``. B and C make
``t(r) <= r.end`` (for r' before r: ``r'.start <= r.end`` by C, and
``first(x) <= r.end`` for x in r' ⊆ r by B), and A makes ``t(r) <= w(y)`` for
every acknowledged y outside r (y is outside every r' before r too, and A on
r' says ``w(y) >= T(r')``). Each add of x is then put, inside its own
interval, after the last read without x and before the first read with x:
that window meets ``[start, end]`` of the add because reads with x have
``t >= first(x)`` and reads without x have ``t <= w(x) <= end``. Adds commute,
so this is a legal sequential run; unknown adds nobody saw are dropped.
``tests/test_history.py`` checks this equivalence against a brute-force
search (Wing & Gong) on many small random histories. D is necessary only: a
predict is a partial read, and full checking of those is not attempted.

Ids that any op proves present (``acknowledged``) must survive: the chaos
harness checks that every node holds them at the end.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

ADD, READ, PREDICT = "add", "read", "predict"
OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
FOUND, NOT_FOUND = "found", "not_found"


@dataclass(frozen=True)
class Op:
    """One client call. ``value``: a read's ids; a predict's FOUND/NOT_FOUND."""

    process: str
    kind: str  # ADD, READ or PREDICT
    start: float
    end: float  # math.inf: never returned
    status: str  # OK, FAIL or UNKNOWN
    id: str | None = None  # add, predict: the model id
    value: frozenset[str] | str | None = None
    detail: str = ""  # error code or note, for reports


class History:
    """A thread-safe list of ``Op`` (appends only)."""

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._lock = threading.Lock()

    def record(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    @property
    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)


@dataclass
class CheckResult:
    """What ``check`` found: the violations (the first ``MAX_REPORTED`` in
    words, all of them counted) and the ids proven present."""

    violations: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)  # ids proven present
    violation_count: int = 0

    @property
    def linearizable(self) -> bool:
        return self.violation_count == 0


MAX_REPORTED = 50


def check(ops: Iterable[Op]) -> CheckResult:
    """Apply rules A-D (module docstring) to a history."""
    ops = list(ops)
    result = CheckResult()

    def violation(text: str) -> None:
        result.violation_count += 1
        if len(result.violations) < MAX_REPORTED:
            result.violations.append(text)

    adds = [o for o in ops if o.kind == ADD]
    reads = [o for o in ops if o.kind == READ and o.status == OK]
    predicts = [o for o in ops if o.kind == PREDICT and o.status == OK]

    first: dict[str, float] = {}  # earliest start of a non-failed add
    for a in adds:
        if a.status != FAIL and a.start < first.get(a.id, math.inf):
            first[a.id] = a.start
    witness: dict[str, float] = {}
    proofs = [(a.id, a.end) for a in adds if a.status == OK]
    proofs += [(x, r.end) for r in reads for x in r.value]
    proofs += [(p.id, p.end) for p in predicts if p.value == FOUND]
    for x, t in proofs:
        if t < witness.get(x, math.inf):
            witness[x] = t
    result.acknowledged = set(witness)
    by_witness = sorted(witness.items(), key=lambda kv: kv[1])
    witness_times = [t for _, t in by_witness]

    # B, and T(r) for A.
    thresholds = []
    for r in reads:
        t = r.start
        for x in r.value:
            s = first.get(x)
            if s is None:
                violation(
                    f"read by {r.process} at {r.start:.3f} contains {x}, "
                    "which no add created (none, or it failed)"
                )
            elif s > r.end:
                violation(
                    f"read by {r.process} ended at {r.end:.3f} with {x}, whose add began "
                    f"later ({s:.3f})"
                )
            elif s > t:
                t = s
        thresholds.append(t)

    # A: the ids witnessed before T(r) are a prefix of by_witness.
    for r, t in zip(reads, thresholds, strict=True):
        n = bisect.bisect_left(witness_times, t)
        missing = [x for x, _ in by_witness[:n] if x not in r.value]
        if missing:
            violation(
                f"read by {r.process} [{r.start:.3f}, {r.end:.3f}] misses {len(missing)} id(s) "
                f"known present before it could take effect, e.g. {missing[0]} "
                f"(witnessed at {witness[missing[0]]:.3f})"
            )

    # C: inclusion chain, then real-time order along it.
    chain = sorted(reads, key=lambda r: (len(r.value), r.start))
    for r1, r2 in zip(chain, chain[1:], strict=False):
        if not r1.value <= r2.value:
            violation(
                f"reads not nested: {r1.process} at {r1.start:.3f} has "
                f"{sorted(r1.value - r2.value)[:3]} that {r2.process} at {r2.start:.3f} lacks, "
                f"and the other way {sorted(r2.value - r1.value)[:3]}"
            )
    by_end = sorted(reads, key=lambda r: r.end)
    i, biggest = 0, None
    for r2 in sorted(reads, key=lambda r: r.start):
        while i < len(by_end) and by_end[i].end < r2.start:
            if biggest is None or len(by_end[i].value) > len(biggest.value):
                biggest = by_end[i]
            i += 1
        if biggest is not None and len(biggest.value) > len(r2.value):
            violation(
                f"read by {r2.process} at {r2.start:.3f} has {len(r2.value)} ids, fewer than "
                f"the {len(biggest.value)} a read by {biggest.process} returned before "
                f"(ended {biggest.end:.3f})"
            )

    # D
    for p in predicts:
        if p.value == FOUND:
            s = first.get(p.id)
            if s is None or s > p.end:
                violation(
                    f"predict by {p.process} at {p.start:.3f} found {p.id}, never added by then"
                )
        elif witness.get(p.id, math.inf) < p.start:
            violation(
                f"predict by {p.process} at {p.start:.3f} got NOT_FOUND for {p.id}, "
                f"known present since {witness[p.id]:.3f}"
            )
    return result
