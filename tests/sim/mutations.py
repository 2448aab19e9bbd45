"""Deliberate bugs, to prove the simulator notices when the core breaks a rule.

Each mutation monkeypatches ``zmqnode.raft`` (``RaftCore`` or ``RaftLog``)
to break exactly one rule of the algorithm and returns the function that
undoes the patch. They depend on the core's internals (method names in
core.py and log.py); if the core is refactored, a mutation whose target is
gone fails loudly in ``apply`` rather than silently testing nothing.

``python -m tests.sim --seeds 500 --mutate NAME`` must report violations;
tests/test_raft_sim.py asserts each is caught within a fixed set of seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from zmqnode.raft import (
    NO_NODE,
    ChangeType,
    Entry,
    EntryKind,
    HardState,
    MembershipError,
    MessageType,
    ProposeResult,
    Role,
)
from zmqnode.raft import core as core_mod
from zmqnode.raft import log as log_mod

MT = MessageType
RaftCore = core_mod.RaftCore
RaftLog = log_mod.RaftLog


@dataclass(frozen=True)
class Mutation:
    name: str
    doc: str
    apply: Callable[[], Callable[[], None]]  # patches the core, returns the undo


MUTATIONS: dict[str, Mutation] = {}


def _patch(owner: type, attr: str, replacement) -> Callable[[], None]:
    original = owner.__dict__[attr]  # KeyError: the core changed under the mutation

    setattr(owner, attr, replacement)

    def undo() -> None:
        setattr(owner, attr, original)

    return undo


def mutation(name: str, doc: str):
    def register(fn: Callable[[], Callable[[], None]]):
        MUTATIONS[name] = Mutation(name, doc, fn)
        return fn

    return register


@mutation(
    "old_term_commit",
    "a leader counts replicas of an entry from an earlier term toward commit (§5.4.2)",
)
def _old_term_commit() -> Callable[[], None]:
    def _maybe_commit(self) -> None:
        matches = [pr.match for pr in self.progress.values()]
        matches.append(self.log.stable)
        matches.sort(reverse=True)
        candidate = matches[self.quorum - 1]
        if candidate > self.log.committed:  # BUG: no "and term_at(candidate) == term"
            self.log.commit_to(candidate)
            self._heartbeat_due = True
            if self._reads_before_commit:
                waiting, self._reads_before_commit = self._reads_before_commit, []
                for read_ctx, requester in waiting:
                    self._leader_read(read_ctx, requester)

    return _patch(RaftCore, "_maybe_commit", _maybe_commit)


@mutation(
    "forget_hard_state",
    "term and vote are never handed over for persisting (Ready.hard_state dropped)",
)
def _forget_hard_state() -> Callable[[], None]:
    original = RaftCore.ready

    def ready(self):
        rd = original(self)
        if rd.hard_state is not None:
            self._persisted_hard_state = rd.hard_state  # BUG: claims it was written
            rd.hard_state = None
        return rd

    return _patch(RaftCore, "ready", ready)


@mutation(
    "forget_vote",
    "the term is persisted but the vote is not: after a restart a node can vote twice in one term",
)
def _forget_vote() -> Callable[[], None]:
    original_ready = RaftCore.ready
    original_advance = RaftCore.advance
    real: dict[int, HardState] = {}

    def ready(self):
        rd = original_ready(self)
        if rd.hard_state is not None and rd.hard_state.vote:
            real[id(rd)] = rd.hard_state
            rd.hard_state = HardState(rd.hard_state.term, NO_NODE)  # BUG
        return rd

    def advance(self, rd) -> None:
        hs = real.pop(id(rd), None)
        if hs is not None:
            rd.hard_state = hs  # the core believes the whole hard state was written
        original_advance(self, rd)

    undo_ready = _patch(RaftCore, "ready", ready)
    undo_advance = _patch(RaftCore, "advance", advance)

    def undo() -> None:
        undo_ready()
        undo_advance()

    return undo


@mutation(
    "vote_only_with_term",
    "the hard state is written only when the term changes: a vote granted later in a term "
    "already persisted is lost on a restart, and the node can vote twice in that term",
)
def _vote_only_with_term() -> Callable[[], None]:
    original = RaftCore.ready

    def ready(self):
        rd = original(self)
        hs = rd.hard_state
        if hs is not None and hs.term == self._persisted_hard_state.term:
            self._persisted_hard_state = hs  # BUG: claims the new vote was written
            rd.hard_state = None
        return rd

    return _patch(RaftCore, "ready", ready)


@mutation(
    "stale_append",
    "a follower accepts AppendEntries (and heartbeats) from a deposed leader: the term "
    "check is skipped and the reply carries the stale term, so the old leader counts it",
)
def _stale_append() -> Callable[[], None]:
    original = RaftCore.step

    def step(self, m) -> None:
        if m.type in (MT.APPEND, MT.HEARTBEAT) and m.term < self.term:  # BUG: must refuse
            before = len(self._messages)
            if m.type is MT.APPEND:
                self._handle_append(m)
            else:
                self._handle_heartbeat(m)
            self._messages[before:] = [
                dataclasses.replace(x, term=m.term) for x in self._messages[before:]
            ]
            return
        original(self, m)

    return _patch(RaftCore, "step", step)


@mutation(
    "vote_ignores_log",
    "votes (and pre-votes) are granted without the log up-to-date check (§5.4.1)",
)
def _vote_ignores_log() -> Callable[[], None]:
    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        return True  # BUG

    return _patch(RaftLog, "is_up_to_date", is_up_to_date)


@mutation(
    "heartbeat_commit",
    "a follower advances its commit index from a heartbeat beyond what an "
    "AppendEntries of this term confirmed",
)
def _heartbeat_commit() -> Callable[[], None]:
    def _handle_heartbeat(self, m) -> None:
        self.log.commit_to(min(m.commit, self.log.last_index))  # BUG: not confirmed_index
        self._send(MT.HEARTBEAT_RESP, m.src, context=m.context)

    return _patch(RaftCore, "_handle_heartbeat", _handle_heartbeat)


@mutation(
    "append_commit_past_batch",
    "a follower advances its commit index from an AppendEntries to min(leaderCommit, its "
    "own last index) instead of the last entry the append confirmed (Figure 2 receiver rule 5)",
)
def _append_commit_past_batch() -> Callable[[], None]:
    original = RaftCore._handle_append

    def _handle_append(self, m) -> None:
        below_commit = m.log_index < self.log.committed
        original(self, m)
        reply = self._messages[-1] if self._messages else None
        if not below_commit and reply is not None and reply.type is MT.APPEND_RESP:
            if not reply.reject:  # accepted: BUG, commit past what the append confirmed
                self.log.commit_to(min(m.commit, self.log.last_index))

    return _patch(RaftCore, "_handle_append", _handle_append)


@mutation(
    "read_without_quorum",
    "the leader answers ReadIndex at once, without a heartbeat round to a majority",
)
def _read_without_quorum() -> Callable[[], None]:
    def _leader_read(self, read_ctx: str, requester: str) -> None:
        if self.log.term_at(self.log.committed) != self.term:
            self._reads_before_commit.append((read_ctx, requester))
            return
        self._deliver_read(read_ctx, requester, self.log.committed)  # BUG: no quorum check

    return _patch(RaftCore, "_leader_read", _leader_read)


# -- membership changes (issue 16): caught in membership mode (--membership) -----


def _propose_membership_without(skip: str):
    """``RaftCore.propose_membership`` (core.py) with one guard left out:
    ``"own_term"`` or ``"one_in_flight"``."""

    def propose_membership(self, change, base_index=None):
        if self.role is not Role.LEADER:
            return ProposeResult(False, leader_hint=self.leader_id, reason="not the leader")
        if self.transfer_target:
            return ProposeResult(False, reason="leadership transfer in progress")
        if skip != "own_term" and self.log.term_at(self.log.committed) != self.term:
            return ProposeResult(False, reason="no entry of this term committed yet")
        if skip != "one_in_flight" and self.membership_index > self.log.committed:
            return ProposeResult(False, reason="one change at a time")
        if base_index is not None and base_index != self.membership_index:
            return ProposeResult(False, reason="the membership changed")
        if change.type is ChangeType.PROMOTE and change.node in self.progress:
            pr = self.progress[change.node]
            if self.log.last_index - pr.match > self.config.promote_max_lag or not (
                pr.recent_active
            ):
                return ProposeResult(False, reason="not caught up")
        try:
            membership = self.membership.apply(change)
        except MembershipError as exc:
            return ProposeResult(False, reason=str(exc))
        entry = Entry(self.log.last_index + 1, self.term, EntryKind.CONFIG, membership.encode())
        self.log.append([entry])
        self._set_membership(membership, entry.index, entry.term)
        return ProposeResult(True, entry.index, entry.term)

    return propose_membership


@mutation(
    "config_before_own_term_commit",
    "a new leader proposes a membership change before an entry of its own term has "
    "committed (the 2015 single-server bug: changes from leaders of different terms can "
    "commit with disjoint majorities)",
)
def _config_before_own_term_commit() -> Callable[[], None]:
    return _patch(RaftCore, "propose_membership", _propose_membership_without("own_term"))


@mutation(
    "two_configs_in_flight",
    "the leader accepts a membership change while the previous one has not committed: "
    "two single-server steps in flight change two votes at once",
)
def _two_configs_in_flight() -> Callable[[], None]:
    return _patch(RaftCore, "propose_membership", _propose_membership_without("one_in_flight"))


@mutation(
    "learner_counts_in_quorum",
    "a learner's copy counts toward the commit quorum, as if it were a voter",
)
def _learner_counts_in_quorum() -> Callable[[], None]:
    original = RaftCore._maybe_commit

    def _maybe_commit(self) -> None:
        real = self.voters
        self.voters = self.membership.members  # BUG: learners' matches count too
        try:
            original(self)
        finally:
            self.voters = real

    return _patch(RaftCore, "_maybe_commit", _maybe_commit)


def apply_mutation(name: str) -> Callable[[], None]:
    return MUTATIONS[name].apply()


@contextlib.contextmanager
def mutated(name: str | None) -> Iterator[None]:
    if not name:
        yield
        return
    undo = apply_mutation(name)
    try:
        yield
    finally:
        undo()
