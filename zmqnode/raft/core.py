"""The Raft consensus algorithm as a pure state machine (sans-IO).

``RaftCore`` never touches a socket, a file, the clock or global randomness.
Its caller feeds it ``tick()``, ``step(message)``, ``propose(data)`` and
``read_index(ctx)``, then collects a ``Ready`` (what to persist, send, apply)
and reports back with ``advance(ready)``. The same object runs under the
ZeroMQ event loop and under the deterministic simulator in ``tests/sim``.

The role is a method pointer, as in etcd-io/raft: ``_become_follower``,
``_become_pre_candidate``, ``_become_candidate`` and ``_become_leader`` set
``self._step_role``; ``step`` first handles what every role shares (terms,
votes), then hands over. Section numbers refer to the Raft paper (§) and
Ongaro's thesis.

Heartbeats go out as one broadcast (the node's PUB socket) carrying the
term, the leader's commit index and a sequence number; followers answer on the
RPC path. A broadcast cannot carry each follower's own commit bound, so a
follower advances its commit from a heartbeat only up to ``confirmed_index``:
the last index that an AppendEntries of the current term proved identical to
the leader's log.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .log import LogInvariantError, RaftLog
from .membership import ChangeType, ConfChange, Membership, MembershipError
from .messages import (
    BROADCAST,
    NO_NODE,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    ProposeResult,
    ReadState,
    Ready,
    Refusal,
    Role,
    Snapshot,
)
from .progress import SNAPSHOT_RETRY_HEARTBEATS, Progress, ProgressState

MT = MessageType


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Timing and flow-control knobs, in ticks and bytes.

    ``election_ticks``: a follower that hears no leader for a random time in
    [election_ticks, 2 * election_ticks) starts an election (§5.2); a leader
    that has not heard from a majority for election_ticks steps down
    (check-quorum). ``heartbeat_ticks`` must be well below it.
    """

    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_msg_bytes: int = 1 << 20
    max_inflight: int = 32
    # A learner is promoted only when it stores all but at most this many of
    # the leader's entries and answered within the last election timeout: a
    # voter far behind would hold back every commit it is needed for.
    promote_max_lag: int = 64

    def __post_init__(self) -> None:
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("need 1 <= heartbeat_ticks < election_ticks")
        if self.max_inflight < 1 or self.max_msg_bytes < 1:
            raise ValueError("max_inflight and max_msg_bytes must be positive")
        if self.promote_max_lag < 0:
            raise ValueError("promote_max_lag must be 0 or more")


@dataclass(slots=True)
class _PendingRead:
    """A read index the leader holds until a majority echoes heartbeat ``seq``
    (thesis §6.4: the leader confirms it still leads before answering)."""

    read_ctx: str
    requester: str
    index: int
    seq: int  # heartbeat sequence number a majority must echo


class RaftCore:
    """One Raft member's whole algorithm: elections, replication, commitment,
    snapshots, read indexes and leadership transfer, with no I/O.

    Inputs: ``tick``, ``step``, ``propose``, ``read_index``,
    ``transfer_leadership``, ``peer_unreachable``, ``compact``. Output: while
    ``has_ready()``, a ``ready()`` to carry out in the order ``Ready`` states,
    then ``advance(ready)``. ``rng`` is its only randomness (election
    timeouts); the start state (``hard_state``, ``snapshot``, ``entries``)
    is what storage recovered. Raises ``LogInvariantError`` when asked to
    break a rule Raft's safety depends on; a node must stop then.
    """

    def __init__(
        self,
        node_id: str,
        peers: Sequence[str],
        config: RaftConfig,
        rng: random.Random,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: Sequence[Entry] = (),
        bootstrap: Membership | None = None,
        vote_floor: int = 0,
    ) -> None:
        """``peers``: the other voters of the bootstrap membership (the
        command line's ``--peers``), unless ``bootstrap`` gives it whole (an
        empty one for a node that joins). The log's CONFIG entries and the
        snapshot's membership take precedence over it."""
        if node_id in peers:
            raise ValueError(f"peers must not contain this node's own id {node_id!r}")
        self.id = node_id
        self.config = config
        self._rng = rng
        self._bootstrap = bootstrap or Membership.of([node_id, *peers])
        # A node that joined (empty storage) grants no vote until its log
        # reaches the entry that added it: an id (an address) that was a
        # member before with a wiped disk must not vote twice in a term it
        # forgot. Past that entry, a candidate of such a term has an older log.
        self.vote_floor = vote_floor
        self.log = RaftLog(snapshot or Snapshot(), entries)
        self.progress: dict[str, Progress] = {}
        self.role = Role.FOLLOWER
        self._set_membership(*self._membership_in_log())
        hard_state = hard_state or HardState()
        self.term = hard_state.term
        self.vote = hard_state.vote
        self._persisted_hard_state = hard_state
        self.leader_id = NO_NODE
        self.confirmed_index = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = config.election_ticks
        self.votes: dict[str, bool] = {}
        self.transfer_target = NO_NODE
        self.heartbeat_seq = 0
        self._pending_reads: list[_PendingRead] = []
        self._reads_before_commit: list[tuple[str, str]] = []
        self._heartbeat_due = False
        self._messages: list[Message] = []
        self._read_states: list[ReadState] = []
        self._step_role: Callable[[Message], None] = self._step_follower
        self._become_follower(self.term, NO_NODE)

    # -- read-only views -------------------------------------------------------

    @property
    def commit_index(self) -> int:
        return self.log.committed

    @property
    def applied_index(self) -> int:
        return self.log.applied

    @property
    def last_index(self) -> int:
        return self.log.last_index

    @property
    def snapshot(self) -> Snapshot:
        return self.log.snapshot

    def log_entries(self) -> tuple[Entry, ...]:
        return tuple(self.log.entries)

    def term_at(self, index: int) -> int | None:
        return self.log.term_at(index)

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    # -- inputs ----------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def propose(self, data: bytes) -> ProposeResult:
        """Append a command to the leader's log (§5.3)."""
        if self.role is not Role.LEADER:
            return ProposeResult(
                False,
                leader_hint=self.leader_id,
                reason="not the leader",
                refusal=Refusal.NOT_LEADER,
            )
        if self.transfer_target:
            return ProposeResult(
                False,
                leader_hint=self.transfer_target,
                reason="leadership transfer in progress",
                refusal=Refusal.TRANSFERRING,
            )
        entry = Entry(self.log.last_index + 1, self.term, EntryKind.COMMAND, data)
        self.log.append([entry])
        return ProposeResult(True, entry.index, entry.term)

    def propose_membership(
        self, change: ConfChange, base_index: int | None = None
    ) -> ProposeResult:
        """Append a one-member change to the membership (membership.py).

        Refused (``accepted=False``, ``reason`` says why) unless this node
        leads, has committed an entry of its own term, no other change is in
        flight, ``base_index`` (when given) is still the index of the latest
        membership, and the change applies; a learner is promoted only once
        caught up (``RaftConfig.promote_max_lag``).
        """
        if self.role is not Role.LEADER:
            return ProposeResult(
                False,
                leader_hint=self.leader_id,
                reason="not the leader",
                refusal=Refusal.NOT_LEADER,
            )
        if self.transfer_target:
            return ProposeResult(
                False,
                leader_hint=self.transfer_target,
                reason="leadership transfer in progress",
                refusal=Refusal.TRANSFERRING,
            )
        if self.log.term_at(self.log.committed) != self.term:
            return ProposeResult(
                False,
                reason="this leader has not committed an entry of its term yet; retry",
                refusal=Refusal.RETRY,
            )
        if self.membership_index > self.log.committed:
            return ProposeResult(
                False,
                reason=f"the membership change at index {self.membership_index} has not "
                "committed yet; one change at a time",
                refusal=Refusal.RETRY,
            )
        if base_index is not None and base_index != self.membership_index:
            return ProposeResult(
                False,
                reason=f"the membership changed since index {base_index} (now at "
                f"{self.membership_index}); read it again",
                refusal=Refusal.CONFLICT,
            )
        if change.type is ChangeType.PROMOTE and change.node in self.progress:
            pr = self.progress[change.node]
            behind = self.log.last_index - pr.match
            if behind > self.config.promote_max_lag or not pr.recent_active:
                return ProposeResult(
                    False,
                    reason=f"{change.node} is not caught up ({behind} entries behind, "
                    f"{'active' if pr.recent_active else 'not heard from lately'}); "
                    "retry once it is",
                    refusal=Refusal.RETRY,
                )
        try:
            membership = self.membership.apply(change)
        except MembershipError as exc:
            return ProposeResult(False, reason=str(exc), refusal=Refusal.INVALID)
        entry = Entry(self.log.last_index + 1, self.term, EntryKind.CONFIG, membership.encode())
        self.log.append([entry])
        self._set_membership(membership, entry.index, entry.term)
        return ProposeResult(True, entry.index, entry.term)

    def read_index(self, read_ctx: str) -> bool:
        """Ask for a linearizable read index (thesis §6.4).

        The answer arrives later as ``ReadState(read_ctx, index)`` in a Ready.
        Returns False when no leader is known; the request may also be lost
        (leader change), so the caller needs a timeout.
        """
        if self.role is Role.LEADER:
            self._leader_read(read_ctx, self.id)
            return True
        if not self.leader_id:
            return False
        self._send(MT.READ_INDEX, self.leader_id, read_ctx=read_ctx)
        return True

    def transfer_leadership(self, target: str) -> None:
        """Hand leadership to ``target`` once its log is current (thesis §3.10)."""
        if self.role is not Role.LEADER or target == self.id or target not in self.voters:
            return
        if self.transfer_target == target:
            return
        self.transfer_target = target
        self.election_elapsed = 0  # the transfer is abandoned after an election timeout
        if self.progress[target].match == self.log.last_index:
            self._send(MT.TIMEOUT_NOW, target)
        else:
            self._send_append(target)

    def campaign(self) -> None:
        """Start an election now (pre-vote first when enabled)."""
        if self.role is not Role.LEADER and self._may_campaign():
            self._campaign(pre_vote=self.config.pre_vote)

    def peer_unreachable(self, peer: str) -> None:
        """The transport saw ``peer``'s connection drop (its process died or
        closed). If ``peer`` is our leader, its lease ends now and we campaign
        within 1-3 ticks instead of a whole election timeout.

        Liveness only: campaigning is always safe (§5.2), and pre-vote still
        asks a majority, who grant only if they too stopped trusting the
        leader. A connection that merely blips costs a rejected pre-vote.
        """
        if self.role is Role.LEADER or peer != self.leader_id:
            return
        ticks = self.config.election_ticks
        self.election_elapsed = max(self.election_elapsed, ticks)  # out of lease
        self.randomized_timeout = self.election_elapsed + 1 + self._rng.randrange(3)

    def compact(self, index: int, data: bytes) -> None:
        """Take the state machine's snapshot through ``index``; drop the log before it."""
        if index <= self.log.snapshot.index:
            return
        if index > self.log.applied:
            raise LogInvariantError(f"cannot snapshot at {index}: only {self.log.applied} applied")
        term = self.log.term_at(index)
        assert term is not None
        membership = self._membership_in_log(through=index)[0]
        self.log.compact(Snapshot(index, term, data, membership.encode()))

    def step(self, m: Message) -> None:
        """Handle one message from a peer (§5.1: terms first, then the role)."""
        if m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE) and not m.force and self._in_lease():
                # Check-quorum's lease (thesis §4.2.3): while we hear from a
                # leader, a node that lost contact must not depose it.
                return
            if m.type is MT.PRE_VOTE:
                pass  # never change our term because of a pre-vote
            elif m.type is MT.PRE_VOTE_RESP and not m.reject:
                pass  # a granted pre-vote carries the term we are about to use
            elif m.type in (MT.APPEND, MT.HEARTBEAT, MT.SNAPSHOT):
                self._become_follower(m.term, m.src)
            elif m.type is MT.VOTE:
                # Adopt the term but keep our election clock: Figure 2 resets
                # it only when granting a vote. Otherwise a candidate with a
                # stale log and a fast clock, rejected again and again, keeps
                # every node that could win from ever timing out (a livelock
                # the simulator found with pre-vote off: seeds 41072, 45398).
                elapsed, timeout = self.election_elapsed, self.randomized_timeout
                self._become_follower(m.term, NO_NODE)
                self.election_elapsed, self.randomized_timeout = elapsed, timeout
            else:
                self._become_follower(m.term, NO_NODE)
        elif m.term < self.term:
            if m.type is MT.APPEND:
                # Tell a deposed leader about the newer term so it steps down;
                # without this, check-quorum plus pre-vote could leave it stuck.
                self._send(MT.APPEND_RESP, m.src)
            elif m.type is MT.HEARTBEAT:
                self._send(MT.HEARTBEAT_RESP, m.src)
            elif m.type in (MT.PRE_VOTE, MT.VOTE):
                # Figure 2, RequestVote: "reply false if term < currentTerm",
                # with our term, so that a stale candidate catches up. Without
                # pre-vote it may otherwise never learn of a term that only
                # the voter it needs reached: that voter campaigns elsewhere
                # and never writes to it (the simulator, --membership, seed
                # 16720: a two-voter membership that one of them did not know).
                resp = MT.PRE_VOTE_RESP if m.type is MT.PRE_VOTE else MT.VOTE_RESP
                self._send(resp, m.src, reject=True)
            return

        if m.type in (MT.VOTE, MT.PRE_VOTE):
            self._handle_vote_request(m)
        else:
            self._step_role(m)

    # -- output ----------------------------------------------------------------

    def has_ready(self) -> bool:
        self._flush()
        return bool(
            self._messages
            or self._read_states
            or self.log.pending_snapshot
            or self.log.stable < self.log.last_index
            or self.log.committed > self.log.applied
            or self._hard_state() != self._persisted_hard_state
        )

    def ready(self) -> Ready:
        """Collect everything the caller must do now (see ``Ready``)."""
        self._flush()
        hard_state = self._hard_state()
        rd = Ready(
            hard_state=hard_state if hard_state != self._persisted_hard_state else None,
            entries=self.log.unstable_entries(),
            snapshot=self.log.pending_snapshot,
            messages=self._messages,
            committed=self.log.committed_to_apply(),
            read_states=self._read_states,
        )
        self._messages = []
        self._read_states = []
        return rd

    def advance(self, rd: Ready) -> None:
        """The caller has persisted, sent and applied ``rd``."""
        if rd.hard_state is not None:
            self._persisted_hard_state = rd.hard_state
        if rd.snapshot is not None and self.log.pending_snapshot is rd.snapshot:
            self.log.pending_snapshot = None
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if rd.committed:
            self.log.applied = max(self.log.applied, rd.committed[-1].index)
        if self.role is Role.LEADER and rd.entries:
            self._maybe_commit()  # our own copy is durable now and counts

    # -- membership (membership.py) -------------------------------------------------

    def membership_at(self, index: int) -> Membership:
        """The membership in effect at log ``index`` (e.g. the committed one:
        ``membership_at(commit_index)``); ``index`` at or after the snapshot."""
        return self._membership_in_log(through=index)[0]

    def _membership_in_log(self, through: int | None = None) -> tuple[Membership, int, int]:
        """The latest membership in the log (through ``through``): the last
        CONFIG entry, else the snapshot's, else the bootstrap one; with the
        index and term of the entry that set it (the snapshot's, or 0)."""
        last = self.log.last_index if through is None else through
        for entry in reversed(self.log.entries):
            if entry.index <= last and entry.kind is EntryKind.CONFIG:
                return Membership.decode(entry.data), entry.index, entry.term
        snap = self.log.snapshot
        if snap.membership:
            return Membership.decode(snap.membership), snap.index, snap.term
        return self._bootstrap, 0, 0

    def _set_membership(self, membership: Membership, index: int, term: int) -> None:
        """Use ``membership`` from now on (thesis §4.1: as soon as it is in the log)."""
        self.membership = membership
        self.membership_index, self._membership_term = index, term
        self.voters = membership.voters
        self.peers: tuple[str, ...] = tuple(sorted(membership.members - {self.id}))
        self.quorum = membership.quorum
        if self.role is Role.LEADER:
            for peer in self.peers:
                if peer not in self.progress:
                    self.progress[peer] = Progress(self.log.last_index + 1)
            for gone in set(self.progress) - set(self.peers):
                del self.progress[gone]
            if self.transfer_target and self.transfer_target not in self.voters:
                self.transfer_target = NO_NODE

    def _refresh_membership(self, appended: Sequence[Entry] = ()) -> None:
        """After the log changed under a follower: a CONFIG entry arrived, or
        the entry that set the membership was truncated or replaced."""
        index = self.membership_index
        still_there = (
            index <= self.log.snapshot.index or self.log.term_at(index) == self._membership_term
        )
        if still_there and not any(e.kind is EntryKind.CONFIG for e in appended):
            return
        found = self._membership_in_log()
        if found[1:] != (self.membership_index, self._membership_term):
            self._set_membership(*found)

    def _step_down_if_removed(self) -> None:
        """A leader that the committed membership no longer counts as a voter
        hands over and steps down (thesis §4.2.2: it led until then, without
        counting itself)."""
        if self.id in self.voters or self.membership_index > self.log.committed:
            return
        best = max(
            (p for p in self.progress if p in self.voters),
            key=lambda p: self.progress[p].match,
            default=NO_NODE,
        )
        if best and self.progress[best].match == self.log.last_index:
            self._send(MT.TIMEOUT_NOW, best)
        self._become_follower(self.term, NO_NODE)

    # -- roles -----------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = NO_NODE
            self.confirmed_index = 0
        self.leader_id = NO_NODE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self.config.election_ticks + self._rng.randrange(
            self.config.election_ticks
        )
        self.votes = {}
        self.transfer_target = NO_NODE
        self._pending_reads = []
        self._reads_before_commit = []
        self._heartbeat_due = False
        self.progress = {}

    def _become_follower(self, term: int, leader: str) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.leader_id = leader
        self._step_role = self._step_follower

    def _become_pre_candidate(self) -> None:
        # Pre-vote (thesis §9.6): ask first, without touching term or vote,
        # so a node cut off from the cluster cannot inflate terms.
        self.role = Role.PRE_CANDIDATE
        self.votes = {}
        self.leader_id = NO_NODE
        self._step_role = self._step_candidate

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE
        self._step_role = self._step_candidate

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role = Role.LEADER
        self.leader_id = self.id
        self._step_role = self._step_leader
        for peer in self.peers:
            self.progress[peer] = Progress(self.log.last_index + 1)
        # §8: a no-op of the new term lets the leader commit (and learn the
        # commit index of) everything earlier, and enables ReadIndex.
        self.log.append([Entry(self.log.last_index + 1, self.term, EntryKind.NOOP)])

    def _may_campaign(self) -> bool:
        """A voter campaigns, and so does a node whose latest membership took
        its vote away while that change is not known to be committed: thesis
        §4.2.2, such a server "should still start new elections, as it might
        still be needed until the Cnew entry is committed". A leader that
        removed (or demoted) itself from two voters and crashed before the
        other voter stored the change is the only one who can bring it there;
        the other voter, still counting it, cannot win without its vote, which
        its shorter log does not get. It counts only the votes of its latest
        membership (``_record_vote``). A learner, or a node whose removal it
        knows committed, never campaigns."""
        if self.id in self.voters:
            return True
        index = self.membership_index
        return (
            index > self.log.committed
            and index > self.log.snapshot.index
            and self.id in self.membership_at(index - 1).voters
        )

    def _campaign(self, pre_vote: bool, transfer: bool = False) -> None:
        """Ask every voter for a (pre-)vote; ``transfer`` overrides their lease.
        Only a node that ``_may_campaign`` does."""
        if not self._may_campaign():
            return
        if pre_vote:
            self._become_pre_candidate()
            vote_type, vote_term = MT.PRE_VOTE, self.term + 1
        else:
            self._become_candidate()
            vote_type, vote_term = MT.VOTE, self.term
        if self._record_vote(self.id, granted=True) == "won":
            self._won(vote_type)
            return
        for peer in sorted(self.voters - {self.id}):
            self._send(
                vote_type,
                peer,
                term=vote_term,
                log_index=self.log.last_index,
                log_term=self.log.last_term,
                force=transfer,
            )

    def _won(self, vote_type: MessageType) -> None:
        if vote_type is MT.PRE_VOTE:
            self._campaign(pre_vote=False)  # the pre-vote passed: the real election
        else:
            self._become_leader()

    def _record_vote(self, voter: str, granted: bool) -> str:
        if voter not in self.voters:
            return "pending"  # a member this candidate does not count
        self.votes.setdefault(voter, granted)
        yes = sum(self.votes.values())
        no = len(self.votes) - yes
        if yes >= self.quorum:
            return "won"
        if no >= self.quorum:
            return "lost"
        return "pending"

    def _in_lease(self) -> bool:
        return (
            self.config.check_quorum
            and self.leader_id != NO_NODE
            and self.election_elapsed < self.config.election_ticks
        )

    # -- ticks -----------------------------------------------------------------

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_timeout and self._may_campaign():
            self.election_elapsed = 0
            self._campaign(pre_vote=self.config.pre_vote)

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_ticks:
            self.election_elapsed = 0
            if self.config.check_quorum:
                active = (self.id in self.voters) + sum(
                    pr.recent_active for p, pr in self.progress.items() if p in self.voters
                )
                if active < self.quorum:
                    self._become_follower(self.term, NO_NODE)
                    return
                for pr in self.progress.values():
                    pr.recent_active = False
            self.transfer_target = NO_NODE  # a transfer that took this long failed
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._heartbeat_due = True

    # -- votes -----------------------------------------------------------------

    def _handle_vote_request(self, m: Message) -> None:
        resp_type = MT.PRE_VOTE_RESP if m.type is MT.PRE_VOTE else MT.VOTE_RESP
        can_vote = (
            self.vote == m.src
            or (self.vote == NO_NODE and self.leader_id == NO_NODE)
            or (m.type is MT.PRE_VOTE and m.term > self.term)
        )
        if self.log.last_index < self.vote_floor:
            can_vote = False
        if can_vote and self.log.is_up_to_date(m.log_index, m.log_term):
            # §5.2, §5.4.1: grant. A pre-vote reply carries the candidate's
            # future term so that it is not dropped as stale.
            self._send(resp_type, m.src, term=m.term)
            if m.type is MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.src
        else:
            self._send(resp_type, m.src, reject=True)

    # -- per-role message handling ----------------------------------------------

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t in (MT.APPEND, MT.HEARTBEAT, MT.SNAPSHOT):
            self.election_elapsed = 0
            self.leader_id = m.src
            if t is MT.APPEND:
                self._handle_append(m)
            elif t is MT.HEARTBEAT:
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif t is MT.TIMEOUT_NOW:
            self._campaign(pre_vote=False, transfer=True)
        elif t is MT.READ_INDEX_RESP:
            if not m.reject:
                self._read_states.append(ReadState(m.read_ctx, m.index))
        # READ_INDEX sent to a non-leader is dropped; the asker times out.

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        if t in (MT.APPEND, MT.HEARTBEAT, MT.SNAPSHOT):
            # §5.2: a leader of our term exists; follow it.
            self._become_follower(self.term, m.src)
            self._step_follower(m)
            return
        expected = MT.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else MT.VOTE_RESP
        if t is expected:
            outcome = self._record_vote(m.src, granted=not m.reject)
            if outcome == "won":
                self._won(MT.PRE_VOTE if t is MT.PRE_VOTE_RESP else MT.VOTE)
            elif outcome == "lost":
                self._become_follower(self.term, NO_NODE)

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t is MT.READ_INDEX:
            self._leader_read(m.read_ctx, m.src)
            return
        pr = self.progress.get(m.src)
        if pr is None:
            return
        if t is MT.APPEND_RESP:
            pr.recent_active = True
            if m.reject:
                self._handle_append_rejection(m, pr)
            else:
                self._handle_append_success(m, pr)
        elif t is MT.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.state is ProgressState.REPLICATE and pr.inflight:
                # The follower is alive but acks may have been lost: free one
                # slot so replication can never deadlock on a full window.
                pr.inflight.popleft()
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_wait += 1
                if pr.snapshot_wait >= SNAPSHOT_RETRY_HEARTBEATS:
                    pr.become_probe()  # the snapshot was probably lost; resend
            if pr.match < self.log.last_index or m.reject:
                # Behind, or (reject) it cannot confirm our commit index from
                # what it has seen this term, e.g. it restarted: an append
                # re-establishes confirmed_index.
                self._send_append(m.src)
            if m.context > pr.read_ack:
                pr.read_ack = m.context
                self._release_reads()

    def _handle_append_rejection(self, m: Message, pr: Progress) -> None:
        next_probe = m.reject_hint
        if m.log_term > 0:
            next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
        if pr.maybe_decrease_to(m.index, next_probe):
            if pr.state is ProgressState.REPLICATE:
                pr.become_probe()
            self._send_append(m.src)

    def _handle_append_success(self, m: Message, pr: Progress) -> None:
        if not pr.maybe_update(m.index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_probe()
            pr.become_replicate()
        self._maybe_commit()
        if m.src == self.transfer_target and pr.match == self.log.last_index:
            self._send(MT.TIMEOUT_NOW, m.src)

    # -- follower side of replication --------------------------------------------

    def _handle_append(self, m: Message) -> None:
        if m.log_index < self.log.committed:
            # Everything through our commit index is in the leader's log.
            self._send(MT.APPEND_RESP, m.src, index=self.log.committed)
            return
        last_new = self.log.maybe_append(m.log_index, m.log_term, m.entries)
        if last_new is None:
            hint = min(m.log_index, self.log.last_index)
            hint, hint_term = self.log.find_conflict_by_term(hint, m.log_term)
            self._send(
                MT.APPEND_RESP,
                m.src,
                reject=True,
                index=m.log_index,
                reject_hint=hint,
                log_term=hint_term,
            )
            return
        self._refresh_membership(m.entries)
        self.confirmed_index = max(self.confirmed_index, last_new)
        self.log.commit_to(min(m.commit, last_new))
        self._send(MT.APPEND_RESP, m.src, index=last_new)

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(min(m.commit, self.confirmed_index))
        self._send(
            MT.HEARTBEAT_RESP,
            m.src,
            context=m.context,
            reject=self.confirmed_index < m.commit,
        )

    def _handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        assert snap is not None
        if snap.index <= self.log.committed:
            self._send(MT.APPEND_RESP, m.src, index=self.log.committed)
            return
        if self.log.match_term(snap.index, snap.term):
            # We hold the snapshot's last entry: everything before it matches.
            self.confirmed_index = max(self.confirmed_index, snap.index)
            self.log.commit_to(snap.index)
            self._send(MT.APPEND_RESP, m.src, index=snap.index)
            return
        # Missing or conflicting entry at the snapshot index: the whole log goes.
        self.log.restore(snap)
        self._set_membership(*self._membership_in_log())
        self.confirmed_index = snap.index
        self._send(MT.APPEND_RESP, m.src, index=snap.index)

    # -- leader side of replication ----------------------------------------------

    def _send_append(self, peer: str, allow_empty: bool = True) -> bool:
        pr = self.progress[peer]
        if pr.is_paused(self.config.max_inflight):
            return False
        prev_index = pr.next - 1
        prev_term = self.log.term_at(prev_index)
        if prev_term is None:
            snap = self.log.snapshot
            self._send(MT.SNAPSHOT, peer, snapshot=snap)
            pr.become_snapshot(snap.index)
            return True
        entries: list[Entry] = []
        if pr.next <= self.log.last_index:
            entries = self.log.entries_from(pr.next, self.config.max_msg_bytes)
        elif not allow_empty:
            return False
        self._send(
            MT.APPEND,
            peer,
            log_index=prev_index,
            log_term=prev_term,
            entries=tuple(entries),
            commit=self.log.committed,
        )
        pr.sent(prev_index + len(entries), len(entries))
        return True

    def _flush(self) -> None:
        """Batch new entries into appends and send due heartbeats (leader only)."""
        if self.role is not Role.LEADER:
            return
        last = self.log.last_index
        for peer, pr in self.progress.items():
            while pr.next <= last and self._send_append(peer, allow_empty=False):
                pass
        if self._heartbeat_due:
            self._heartbeat_due = False
            self.heartbeat_seq += 1
            self._send(
                MT.HEARTBEAT, BROADCAST, commit=self.log.committed, context=self.heartbeat_seq
            )

    def _maybe_commit(self) -> None:
        """§5.3/§5.4.2: commit the highest index a majority stores, if of our term."""
        matches = [pr.match for p, pr in self.progress.items() if p in self.voters]
        if self.id in self.voters:
            matches.append(self.log.stable)  # our own copy counts once it is durable
        if len(matches) < self.quorum:
            return
        matches.sort(reverse=True)
        candidate = matches[self.quorum - 1]
        if candidate > self.log.committed and self.log.term_at(candidate) == self.term:
            self.log.commit_to(candidate)
            self._heartbeat_due = True  # tell followers promptly
            if self.membership_index <= candidate:
                self._step_down_if_removed()
                if self.role is not Role.LEADER:
                    return
            if self._reads_before_commit:
                waiting, self._reads_before_commit = self._reads_before_commit, []
                for read_ctx, requester in waiting:
                    self._leader_read(read_ctx, requester)

    # -- linearizable reads (thesis §6.4) ----------------------------------------

    def _leader_read(self, read_ctx: str, requester: str) -> None:
        if self.log.term_at(self.log.committed) != self.term:
            # Until an entry of our term commits we do not know the commit index.
            self._reads_before_commit.append((read_ctx, requester))
            return
        if self.voters == {self.id}:
            self._deliver_read(read_ctx, requester, self.log.committed)
            return
        # A majority must echo a heartbeat sent after this moment.
        self._pending_reads.append(
            _PendingRead(read_ctx, requester, self.log.committed, self.heartbeat_seq + 1)
        )
        self._heartbeat_due = True

    def _release_reads(self) -> None:
        while self._pending_reads:
            read = self._pending_reads[0]
            acks = (self.id in self.voters) + sum(
                pr.read_ack >= read.seq for p, pr in self.progress.items() if p in self.voters
            )
            if acks < self.quorum:
                return
            self._pending_reads.pop(0)
            self._deliver_read(read.read_ctx, read.requester, read.index)

    def _deliver_read(self, read_ctx: str, requester: str, index: int) -> None:
        if requester == self.id:
            self._read_states.append(ReadState(read_ctx, index))
        else:
            self._send(MT.READ_INDEX_RESP, requester, read_ctx=read_ctx, index=index)

    # -- helpers -----------------------------------------------------------------

    def _hard_state(self) -> HardState:
        return HardState(self.term, self.vote)

    def _send(
        self, msg_type: MessageType, dst: str, term: int | None = None, **fields: Any
    ) -> None:
        self._messages.append(
            Message(msg_type, self.id, dst, self.term if term is None else term, **fields)
        )
