"""What a leader knows about one follower's log, and how fast it may send.

Three states, as in etcd-io/raft's tracker/progress.go:

- PROBE: we do not know where the follower's log agrees with ours; send one
  append at a time and wait for the answer (or the next heartbeat reply).
- REPLICATE: the follower is in step; stream appends optimistically, at most
  ``max_inflight`` unacknowledged messages at once.
- SNAPSHOT: the entries it needs are compacted away; an InstallSnapshot is on
  its way and nothing else is sent until it is answered.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    """How the leader sends to one follower (the module docstring)."""

    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


# Heartbeat replies to wait for a lost InstallSnapshot before sending it again.
SNAPSHOT_RETRY_HEARTBEATS = 10


class Progress:
    """The leader's view of one follower: ``match`` (highest index known
    stored there), ``next`` (next index to send), its ``state``, the appends
    in flight, and whether it answered lately (check-quorum) and which
    heartbeat it last echoed (read index)."""

    __slots__ = (
        "match",
        "next",
        "state",
        "probe_sent",
        "pending_snapshot",
        "snapshot_wait",
        "inflight",
        "recent_active",
        "read_ack",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_wait = 0
        self.inflight: deque[int] = deque()  # last index of each unacknowledged append
        self.recent_active = False  # answered since the last check-quorum round
        self.read_ack = 0  # highest heartbeat sequence number it echoed

    def is_paused(self, max_inflight: int) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        return True

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def become_snapshot(self, snapshot_index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = snapshot_index
        self.snapshot_wait = 0
        self.inflight.clear()

    def sent(self, last_index: int, entry_count: int) -> None:
        """Record an append just sent whose last entry is ``last_index``."""
        if self.state is ProgressState.REPLICATE:
            if entry_count:
                self.next = last_index + 1
                self.inflight.append(last_index)
        else:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """The follower confirmed its log matches ours through ``index``."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return updated

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """An append at prevLogIndex ``rejected`` was refused; back ``next`` off.

        Returns False for a stale rejection (one about an append we have
        already moved past), which must be ignored.

        ``match`` normally never goes down: what a follower confirmed is on its
        disk. It does when a follower lost entries it had confirmed (its disk
        dropped the end of its log, or the operator wiped its storage dir so it
        rejoins empty): the rejection of the append right after ``match`` then
        comes back with a hint below ``match``. Clamping ``next`` at
        ``match + 1`` would send that same append forever and the follower
        would never catch up while this node leads, so ``match`` is forgotten
        and the follower probed from its hint. Lowering ``match`` is always
        safe (commit indexes never go back; at worst, after a mistaken guess,
        a few entries are sent again).
        """
        if self.state is ProgressState.REPLICATE:
            lost = rejected == self.match == self.next - 1 and match_hint < self.match
            if rejected <= self.match and not lost:
                return False
            if lost:
                self.match = 0
                self.become_probe()
                self.next = max(1, min(rejected, match_hint + 1))  # from its hint
                return True
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        if match_hint < self.match:
            self.match = 0  # lost entries it had confirmed (see above)
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True
