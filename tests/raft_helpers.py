"""A tiny in-memory harness for driving a few ``RaftCore`` instances by hand.

Nothing here is clever: a ``Network`` holds one core and one ``Storage`` per
node and a FIFO of messages in flight. Tests decide exactly which messages are
delivered, dropped or delayed, and when each node ticks, so every scenario is
deterministic and step by step (the randomized simulator lives in tests/sim).

``Network.process(node)`` follows the ``Ready`` contract literally: persist
the snapshot, hard state and entries, *then* put the messages on the wire,
then apply committed entries and collect read states, then ``advance``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from zmqnode.raft import (
    BROADCAST,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    MessageType,
    RaftConfig,
    RaftCore,
    ReadState,
    Ready,
    Role,
    Snapshot,
)

MT = MessageType

E = 10  # election_ticks used throughout the tests


def config(**overrides) -> RaftConfig:
    base = dict(election_ticks=E, heartbeat_ticks=1, pre_vote=True, check_quorum=True)
    base.update(overrides)
    return RaftConfig(**base)


def ents(*terms: int, start: int = 1, kind: EntryKind = EntryKind.COMMAND) -> list[Entry]:
    """Entries with consecutive indexes from ``start`` and the given terms."""
    return [
        Entry(start + k, term, kind, f"{start + k}@{term}".encode()) for k, term in enumerate(terms)
    ]


def terms_of(entries: Iterable[Entry]) -> list[int]:
    return [e.term for e in entries]


def new_core(
    node_id: str = "a",
    peers: Sequence[str] = ("b", "c"),
    *,
    seed: int = 0,
    hard_state: HardState = HardState(),
    snapshot: Snapshot | None = None,
    entries: Sequence[Entry] = (),
    **cfg,
) -> RaftCore:
    return RaftCore(
        node_id,
        list(peers),
        config(**cfg),
        random.Random(seed),
        hard_state=hard_state,
        snapshot=snapshot,
        entries=entries,
    )


def msg(mtype: MessageType, src: str, dst: str, term: int, **fields) -> Message:
    return Message(mtype, src, dst, term, **fields)


def drain(core: RaftCore) -> Ready:
    """Take the core's Ready and acknowledge it at once (an instant, perfect disk)."""
    rd = core.ready()
    core.advance(rd)
    return rd


def of_type(messages: Iterable[Message], *types: MessageType) -> list[Message]:
    return [m for m in messages if m.type in types]


def tick_n(core: RaftCore, n: int) -> None:
    for _ in range(n):
        core.tick()


def ticks_until(core: RaftCore, pred: Callable[[RaftCore], bool], limit: int = 1000) -> int:
    """Tick ``core`` until ``pred(core)``; return how many ticks that took."""
    for n in range(1, limit + 1):
        core.tick()
        if pred(core):
            return n
    raise AssertionError(f"condition not reached after {limit} ticks")


def make_leader(core: RaftCore) -> Ready:
    """Elect a lone core by feeding it granted (pre-)votes from every peer.

    Returns the Ready that the new leader produced (its no-op and appends).
    """
    core.campaign()
    for _ in range(2):  # pre-vote round (if enabled), then the real one
        if core.is_leader:
            break
        rd = drain(core)
        for m in of_type(rd.messages, MT.PRE_VOTE, MT.VOTE):
            resp = MT.PRE_VOTE_RESP if m.type is MT.PRE_VOTE else MT.VOTE_RESP
            core.step(msg(resp, m.dst, core.id, m.term))
    assert core.is_leader, core.role
    return drain(core)


# -- storage and network --------------------------------------------------------


@dataclass
class Storage:
    """What a node keeps across a crash: exactly what Ready asked it to persist."""

    hard_state: HardState = HardState()
    snapshot: Snapshot = Snapshot()
    entries: list[Entry] = field(default_factory=list)

    def persist(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.snapshot = rd.snapshot
            self.entries = []
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state
        if rd.entries:
            keep = rd.entries[0].index - self.snapshot.index - 1
            assert 0 <= keep <= len(self.entries), "Ready.entries leaves a gap in the log"
            del self.entries[keep:]
            self.entries.extend(rd.entries)

    def compact(self, snapshot: Snapshot) -> None:
        del self.entries[: snapshot.index - self.snapshot.index]
        self.snapshot = snapshot


class Network:
    """A handful of cores, their disks and the messages between them."""

    def __init__(
        self,
        ids: Sequence[str] = ("a", "b", "c"),
        *,
        seed: int = 0,
        bootstrap: Mapping[str, Membership] | None = None,
        **cfg,
    ) -> None:
        """``bootstrap``: a node's start membership (default: every id votes);
        e.g. an empty one for a node that joins later."""
        self.ids = list(ids)
        self.bootstrap = dict(bootstrap or {})
        self.config = config(**cfg)
        self.seed = seed
        self.storage = {i: Storage() for i in self.ids}
        self.nodes: dict[str, RaftCore] = {}
        self.queue: list[tuple[str, Message]] = []  # (recipient, message)
        self.sent: list[tuple[str, Message]] = []  # every message ever put on the wire
        self.cut: set[tuple[str, str]] = set()  # directed links that lose everything
        self.down: set[str] = set()
        self.applied: dict[str, list[Entry]] = {i: [] for i in self.ids}
        self.sm_snapshot: dict[str, Snapshot | None] = {i: None for i in self.ids}
        self.read_states: dict[str, list[ReadState]] = {i: [] for i in self.ids}
        self._boots = 0
        for i in self.ids:
            self._boot(i)

    def _boot(self, node_id: str) -> None:
        st = self.storage[node_id]
        self._boots += 1
        self.nodes[node_id] = RaftCore(
            node_id,
            [p for p in self.ids if p != node_id],
            self.config,
            random.Random(f"{self.seed}/{node_id}/{self._boots}"),
            hard_state=st.hard_state,
            snapshot=st.snapshot if st.snapshot.index else None,
            entries=list(st.entries),
            bootstrap=self.bootstrap.get(node_id),
        )

    def load(
        self,
        node_id: str,
        term: int = 0,
        entries: Sequence[Entry] = (),
        vote: str = "",
        snapshot: Snapshot = Snapshot(),
    ) -> None:
        """Replace a node's disk and reboot it from there (a scenario's start state)."""
        self.storage[node_id] = Storage(HardState(term, vote), snapshot, list(entries))
        self._boot(node_id)

    def __getitem__(self, node_id: str) -> RaftCore:
        return self.nodes[node_id]

    # -- driving the cores ------------------------------------------------------

    def process(self, node_id: str) -> Ready | None:
        """Run one Ready cycle for ``node_id`` (persist, send, apply, advance)."""
        if node_id in self.down:
            return None
        core = self.nodes[node_id]
        if not core.has_ready():
            return None
        rd = core.ready()
        self.storage[node_id].persist(rd)
        for m in rd.messages:
            targets = [p for p in self.ids if p != node_id] if m.dst == BROADCAST else [m.dst]
            for t in targets:
                self.sent.append((t, m))
                self.queue.append((t, m))
        if rd.snapshot is not None:
            self.sm_snapshot[node_id] = rd.snapshot
            self.applied[node_id] = []  # the state machine is replaced wholesale
        self.applied[node_id].extend(rd.committed)
        self.read_states[node_id].extend(rd.read_states)
        core.advance(rd)
        return rd

    def process_all(self) -> None:
        for i in self.ids:
            self.process(i)

    def _reachable(self, dst: str, m: Message) -> bool:
        return dst not in self.down and m.src not in self.down and (m.src, dst) not in self.cut

    def deliver(self, pred: Callable[[str, Message], bool] | None = None) -> int:
        """Deliver (in FIFO order) every queued message matching ``pred``.

        Messages on cut links or to/from crashed nodes are dropped instead.
        Others stay queued. Returns how many were stepped into a core.
        """
        taken = [(d, m) for d, m in self.queue if pred is None or pred(d, m)]
        self.queue = [(d, m) for d, m in self.queue if not (pred is None or pred(d, m))]
        n = 0
        for dst, m in taken:
            if self._reachable(dst, m):
                self.nodes[dst].step(m)
                n += 1
        return n

    def drop(self, pred: Callable[[str, Message], bool] | None = None) -> int:
        before = len(self.queue)
        self.queue = [(d, m) for d, m in self.queue if not (pred is None or pred(d, m))]
        return before - len(self.queue)

    def pending(self, *types: MessageType, dst: str | None = None) -> list[Message]:
        return [
            m for d, m in self.queue if (not types or m.type in types) and (dst is None or d == dst)
        ]

    def stabilize(
        self, hold: Callable[[str, Message], bool] | None = None, max_rounds: int = 200
    ) -> None:
        """Process and deliver until no node has anything left to say.

        Messages matching ``hold(dst, msg)`` are neither delivered nor dropped:
        they stay queued (delayed) for the test to release later.
        """
        for _ in range(max_rounds):
            self.process_all()
            if not self.deliver(None if hold is None else (lambda d, m: not hold(d, m))):
                return  # nothing reached a core, so nothing new can have been said
        raise AssertionError("network did not settle")

    def tick(self, ids: Iterable[str] | None = None, n: int = 1, settle: bool = True) -> None:
        """Tick the given (or all live) nodes ``n`` times, settling after each tick."""
        targets = list(ids) if ids is not None else self.ids
        for _ in range(n):
            for i in targets:
                if i not in self.down:
                    self.nodes[i].tick()
            if settle:
                self.stabilize()

    # -- faults -----------------------------------------------------------------

    def isolate(self, node_id: str) -> None:
        for p in self.ids:
            if p != node_id:
                self.cut.add((node_id, p))
                self.cut.add((p, node_id))

    def partition(self, *groups: Iterable[str]) -> None:
        groups = [set(g) for g in groups]
        for g in groups:
            for h in groups:
                if g is not h:
                    self.cut.update((a, b) for a in g for b in h)

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, node_id: str) -> None:
        """Stop a node: whatever it did not persist is lost, as are messages to it."""
        self.down.add(node_id)
        self.queue = [(d, m) for d, m in self.queue if d != node_id]

    def restart(self, node_id: str) -> None:
        """Bring a crashed node back from its Storage (a fresh core)."""
        self.down.discard(node_id)
        self.applied[node_id] = []
        self._boot(node_id)

    def compact(self, node_id: str, index: int) -> Snapshot:
        core = self.nodes[node_id]
        core.compact(index, f"state@{index}".encode())
        self.storage[node_id].compact(core.snapshot)
        return core.snapshot

    # -- queries ------------------------------------------------------------------

    def elect(self, node_id: str) -> None:
        """Make ``node_id`` campaign and let the election run to completion."""
        self.nodes[node_id].campaign()
        self.stabilize()
        assert self.nodes[node_id].is_leader, f"{node_id} is {self.nodes[node_id].role}"

    def leaders(self) -> list[str]:
        return [i for i in self.ids if i not in self.down and self.nodes[i].role is Role.LEADER]

    def log_terms(self, node_id: str) -> list[int]:
        return terms_of(self.nodes[node_id].log_entries())

    def sent_of(self, *types: MessageType) -> list[Message]:
        return [m for _, m in self.sent if m.type in types]
