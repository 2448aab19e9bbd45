"""Requests that cannot be answered yet: parked with a deadline, and admission.

A node parks a request until something Raft decides happens: a read index
comes back and is applied (a linearizable read, Raft paper §8), or an entry
it proposed is applied. Each parked request has a deadline; when it passes,
the request's ``on_timeout`` answers it instead. Nothing here touches a
socket or the Raft core: the loop tells ``Waiters`` what Raft did
(``read_index_ready``, ``applied``) and what time it is (``expire``).

- ``Waiters``: deadlines, reads batched into one read index per loop turn,
  requests waiting for an applied index.
- ``Proposals``: the entries this node proposed and who waits on each.
- ``Admission``: the BUSY bounds (--max-pending, --max-uncommitted-bytes).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .transport.wire import ErrorCode, ProtocolError

log = logging.getLogger("zmqnode.waiting")

Clock = Callable[[], float]

# A read index request or its answer can be lost (a dropped message, a
# partition that heals, a leader change), and Raft does not resend it: ask
# again for the reads still waiting after this long (etcd's
# readIndexRetryTime). Asking again is always safe: a later read index is
# at least as new.
READ_INDEX_RETRY_S = 0.5


def guarded(callback: Callable[[], None]) -> None:
    """Run a deferred answer; a bug in one must not take the loop down."""
    try:
        callback()
    except Exception:
        log.exception("internal error while answering a deferred request")


def _nothing() -> None:
    pass


@dataclass
class Waiter:
    """One parked request: ``callback`` when its condition holds, else
    ``on_timeout`` at ``deadline``; exactly one of them runs."""

    deadline: float
    callback: Callable[[], None]
    on_timeout: Callable[[], None]
    done: bool = False


class Waiters:
    """Every request parked on this node, each with a deadline.

    ``parked`` counts the waiters not yet settled (admission reads it).
    """

    def __init__(self, read_tag: str = "", clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._read_tag = read_tag  # read index contexts are f"{read_tag}/{n}"
        self._seq = itertools.count()
        self.parked = 0
        self._deadlines: list[tuple[float, int, Waiter]] = []
        # Reads waiting for a read index: batched, one read index per turn.
        self._read_batch: list[Waiter] = []
        self._reads: dict[str, list[Waiter]] = {}
        self._read_sent: dict[str, float] = {}  # ctx -> when its read index was asked
        # (index, seq, waiter) waiting until the applied index reaches index.
        self._apply_waiters: list[tuple[int, int, Waiter]] = []

    def park(
        self, timeout: float, callback: Callable[[], None], on_timeout: Callable[[], None]
    ) -> Waiter:
        """A new waiter that times out ``timeout`` seconds from now."""
        waiter = Waiter(self._clock() + timeout, callback, on_timeout)
        heapq.heappush(self._deadlines, (waiter.deadline, next(self._seq), waiter))
        self.parked += 1
        return waiter

    def settle(self, waiter: Waiter) -> tuple[Callable[[], None], Callable[[], None]] | None:
        """Mark ``waiter`` done once; returns its (callback, on_timeout), else None.
        Its closures (and the request data they hold) are let go at once, not
        when its deadline leaves the heap."""
        if waiter.done:
            return None
        waiter.done = True
        self.parked -= 1
        callbacks = waiter.callback, waiter.on_timeout
        waiter.callback = waiter.on_timeout = _nothing
        return callbacks

    def fire(self, waiter: Waiter) -> None:
        """Run ``waiter``'s callback, unless it was already settled."""
        callbacks = self.settle(waiter)
        if callbacks is not None:
            guarded(callbacks[0])

    # -- linearizable reads (Raft §8: read index) ------------------------------

    def after_read_index(
        self, timeout: float, callback: Callable[[], None], on_timeout: Callable[[], None]
    ) -> None:
        """Run ``callback`` once this node has applied everything committed now."""
        self._read_batch.append(self.park(timeout, callback, on_timeout))

    def issue_reads(self, request_read_index: Callable[[str], bool]) -> None:
        """Ask Raft for one read index covering every read parked since the
        last call, and again for reads whose read index has not come back
        within READ_INDEX_RETRY_S; with no leader known, keep them for the
        next call."""
        now = self._clock()
        for ctx, sent in list(self._read_sent.items()):
            if now - sent >= READ_INDEX_RETRY_S:
                del self._read_sent[ctx]
                self._read_batch.extend(w for w in self._reads.pop(ctx, []) if not w.done)
        if not self._read_batch:
            return
        ctx = f"{self._read_tag}/{next(self._seq)}"
        if request_read_index(ctx):
            self._reads[ctx] = self._read_batch
            self._read_sent[ctx] = now
            self._read_batch = []
        else:
            self._read_batch = [w for w in self._read_batch if not w.done]

    def read_index_ready(self, ctx: str, index: int, applied_index: int) -> None:
        """Raft confirmed read index ``index`` for the reads tagged ``ctx``."""
        self._read_sent.pop(ctx, None)
        for waiter in self._reads.pop(ctx, []):
            self.when_applied(index, waiter, applied_index)

    # -- waiting for the applied index ----------------------------------------

    def when_applied(self, index: int, waiter: Waiter, applied_index: int) -> None:
        """Fire ``waiter`` once the applied index reaches ``index``."""
        if applied_index >= index:
            self.fire(waiter)
        else:
            heapq.heappush(self._apply_waiters, (index, next(self._seq), waiter))

    def applied(self, applied_index: int) -> None:
        """Entries through ``applied_index`` are applied: fire who waited for them."""
        while self._apply_waiters and self._apply_waiters[0][0] <= applied_index:
            self.fire(heapq.heappop(self._apply_waiters)[2])

    # -- deadlines -------------------------------------------------------------

    def expire(self, now: float) -> bool:
        """Time out every waiter whose deadline passed; True if any did."""
        expired = False
        while self._deadlines and self._deadlines[0][0] <= now:
            expired = True
            callbacks = self.settle(heapq.heappop(self._deadlines)[2])
            if callbacks is not None:
                guarded(callbacks[1])
        if len(self._deadlines) > 2 * self.parked + 1024:
            # Answered waiters stay in the heap until their deadline; under a
            # flood of quick answers that is most of it: drop them.
            self._deadlines = [d for d in self._deadlines if not d[2].done]
            heapq.heapify(self._deadlines)
        if expired:
            # A read index that never came back (lost with a leader) must not
            # keep its waiters, and their request data, forever.
            for ctx in [c for c, ws in self._reads.items() if all(w.done for w in ws)]:
                del self._reads[ctx]
                self._read_sent.pop(ctx, None)
            self._apply_waiters = [w for w in self._apply_waiters if not w[2].done]
            heapq.heapify(self._apply_waiters)
        return expired

    def held(self) -> int:
        """Waiter records still held (answered or not): bounded, for tests."""
        return (
            len(self._deadlines)
            + len(self._read_batch)
            + sum(len(ws) for ws in self._reads.values())
            + len(self._apply_waiters)
        )


class Proposals:
    """Entries this node proposed, by log index, until applied.

    ``uncommitted_bytes``: the size of the commands proposed here and not yet
    applied (admission bounds it).
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[int, tuple[int, Callable[[bool], None], float]] = {}
        self.uncommitted_bytes = 0

    def add(self, index: int, term: int, size: int, on_done: Callable[[bool], None]) -> None:
        """The command of ``size`` bytes proposed at (``index``, ``term``);
        ``on_done(True)`` once applied in that term, else ``on_done(False)``."""
        self.uncommitted_bytes += size

        def done(ok: bool) -> None:
            self.uncommitted_bytes -= size
            on_done(ok)

        self._pending[index] = (term, done, self._clock())

    def applied(self, index: int, term: int) -> float | None:
        """Entry (``index``, ``term``) was applied: answer its proposer.
        Returns the seconds since it was proposed, None if not ours."""
        pending = self._pending.pop(index, None)
        if pending is None:
            return None
        proposed_term, callback, proposed_at = pending
        guarded(lambda: callback(proposed_term == term))
        return self._clock() - proposed_at

    def passed_over(self, applied_index: int) -> None:
        """Fail proposals at or below ``applied_index`` that were never applied
        themselves (a snapshot was installed over them)."""
        for index in [i for i in self._pending if i <= applied_index]:
            _, callback, _ = self._pending.pop(index)
            guarded(functools.partial(callback, False))

    def __len__(self) -> int:
        return len(self._pending)


class Admission:
    """The BUSY bounds: refuse work a node could only queue without end.

    ``pending()`` counts the requests parked on the node (waiters and clients
    joined to trainings); ``uncommitted_bytes()`` the proposed, unapplied bytes.
    """

    def __init__(
        self,
        node_id: str,
        max_pending: int,
        max_uncommitted_bytes: int,
        pending: Callable[[], int],
        uncommitted_bytes: Callable[[], int],
        count: Callable[[str], None],
    ) -> None:
        self.node_id = node_id
        self.max_pending = max_pending
        self.max_uncommitted_bytes = max_uncommitted_bytes
        self.pending = pending
        self.uncommitted_bytes = uncommitted_bytes
        self._count = count

    def admit(self, header: dict[str, Any]) -> None:
        """Refuse (BUSY) a request that would park while --max-pending are parked."""
        if self.pending() >= self.max_pending:
            self._count("busy_pending")
            raise ProtocolError(
                ErrorCode.BUSY,
                f"node {self.node_id} has {self.max_pending} requests waiting "
                "(--max-pending); retry later",
                header=header,
            )

    def admit_bytes(self, header: dict[str, Any], size: int) -> None:
        """Refuse (BUSY) a proposal of ``size`` bytes past --max-uncommitted-bytes
        (one is always let through when nothing else waits)."""
        held = self.uncommitted_bytes()
        limit = self.max_uncommitted_bytes
        if held and held + size > limit:
            self._count("busy_uncommitted")
            raise ProtocolError(
                ErrorCode.BUSY,
                f"node {self.node_id} holds {held} bytes of models not yet committed; "
                f"{size} more would pass --max-uncommitted-bytes {limit}; retry later",
                header=header,
            )
