"""One deterministic schedule: a Raft cluster, a hostile network, a client.

Everything is drawn from one ``random.Random(seed)``; time is simulated (an
event queue keyed by ``(time, seq)``, in microseconds). A schedule has two
phases:

1. **chaos** (``params.chaos_ticks`` ticks): messages are lost, duplicated,
   delayed and reordered; partitions (symmetric and one-way) form and heal;
   nodes crash (possibly tearing their last write) and restart from exactly
   what they persisted; the state machine compacts; leadership transfers and
   forced campaigns are requested; a client writes and reads throughout.
   Some schedules also cut appends short, crash voters right after they vote,
   and start duels (several candidates at once, sometimes after a blackout of
   the whole cluster): see ``Params.draw_reach``.
2. **heal**: every fault stops for good and every node is up. Within
   ``live_bound`` a leader must accept a probe write and apply it
   (liveness); then every node must apply everything acknowledged
   (durability).

**Membership mode** (``--membership``; ``Params.draw_membership``): besides the
n voters, one to four spare nodes run from the start with an empty membership
(they joined, nobody added them yet), and an operator asks whoever leads to
add, promote, demote, remove and replace members, the leader included, with
requests close together and sometimes right after an election (see
``World._member_plan``). Messages to and from non-members are delivered like
any others: a removed node keeps running and talking, and must not be able to
do harm. A leader's broadcast (its heartbeat) reaches every node, members or
not, as the node's PUB socket reaches every subscriber still connected; this
is the more hostile choice (a removed node or a spare hears of terms and of a
leader), and it keeps a removed node that never learnt of its removal quiet,
as the real one is while it still subscribes. After the heal, the members of
the last membership must apply everything acknowledged.

Each node is a single-threaded loop: it feeds queued inputs to its core, takes
one ``Ready`` and, if the Ready writes anything, spends simulated disk time on
it during which its inbox waits. A crash inside that window means the write
(or, torn, only a prefix of it) happened and the messages were never sent.

The checks (``Invariants``) run after every input and every Ready; the first
violation raises ``Violation`` and ends the schedule.

**Go and Kotlin cores** (``impls``; remote.py, docs/SIMCORE.md): a node may
run a Go ``raft.Core`` or a Kotlin ``zmqnode.raft.Core`` through ``GoCore``,
which answers like a RaftCore. Before an
input that ``_pump`` follows at once with ``has_ready()``, the world calls
``expect_ready()``, so that the Readies come back with the input's reply.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from zmqnode.raft import (
    BROADCAST,
    ChangeType,
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Membership,
    MembershipError,
    Message,
    MessageType,
    RaftConfig,
    RaftCore,
    Ready,
    Role,
    Snapshot,
)

from .checks import Invariants, Violation

TICK = 10_000  # µs of simulated time per nominal tick
COMMAND = EntryKind.COMMAND
CONFIG = EntryKind.CONFIG
MAX_VOTERS = 7  # the operator never promotes beyond this many voters
LEADER = Role.LEADER
MT = MessageType


@dataclass
class Params:
    """What one seed decides about its schedule before it starts."""

    n: int
    config: RaftConfig
    chaos_ticks: int
    skews: list[float]
    delay_min: int
    delay_max: int
    loss: float
    dup: float
    slow_prob: float
    slow_max: int
    disk_min: int
    disk_max: int
    fault_every: float  # mean ticks between fault events
    torn_prob: float
    write_every: float  # mean ticks between new client writes
    read_every: float
    fault_weights: dict[str, float] = field(default_factory=dict)
    disk_stall: float = 0.0  # chance that one write takes 1-3 ticks (an fsync stall)
    leader_kill: float = 0.0  # chance that a new leader is crashed or isolated soon after
    leader_kill_after: float = 0.5  # mean ticks before that happens
    # Drawn from a stream of their own (``draw_reach``), so that a schedule
    # drawing none of them is the same schedule it was before they existed.
    trim: float = 0.0  # chance that an append's entries are cut short (see World._transmit)
    vote_crash: float = 0.0  # chance that a node crashes right after granting a vote
    duel: float = 0.0  # weight of the "duel" fault: several nodes campaign at once
    vote_echo: float = 0.0  # chance that a vote request is held up on the way
    # Membership mode (``draw_membership``, its own stream too): spare nodes
    # that start with an empty membership, and an operator changing it.
    membership: bool = False
    spares: int = 0  # nodes beyond the n initial voters, not yet members
    spare_skews: list[float] = field(default_factory=list)
    member_every: float = 0.0  # mean ticks between operator requests
    member_weights: dict[str, float] = field(default_factory=dict)
    member_eager: float = 0.0  # chance a new leader is asked for a change at once
    member_kill: float = 0.0  # chance a leader that just appended a change is cut off
    member_base: float = 0.0  # chance a request names the membership it was based on
    # Which implementation runs each node's core ("n1:py,n2:go,..."), when not all Python.
    impls: str = ""

    @classmethod
    def draw(cls, rng: random.Random, n: int | None) -> Params:
        if n is None:
            n = 3 if rng.random() < 0.5 else 5
        election = rng.choice((4, 6, 8, 10))
        heartbeat = 1 if rng.random() < 0.75 else 2
        config = RaftConfig(
            election_ticks=election,
            heartbeat_ticks=heartbeat,
            pre_vote=rng.random() < 0.8,
            check_quorum=rng.random() < 0.8,
            max_msg_bytes=rng.choice((48, 200, 1 << 20)),
            max_inflight=rng.choice((1, 2, 4, 32)),
        )
        skews = [1.0 if rng.random() < 0.4 else rng.uniform(0.7, 1.4) for _ in range(n)]
        delay_min = rng.randint(100, 1000)
        return cls(
            n=n,
            config=config,
            chaos_ticks=rng.randint(40, 160),
            skews=skews,
            delay_min=delay_min,
            delay_max=delay_min + rng.randint(0, 4000),
            loss=rng.choice((0.0, 0.01, 0.05, 0.1, 0.25)),
            dup=rng.choice((0.0, 0.02, 0.05, 0.15)),
            slow_prob=rng.choice((0.0, 0.02, 0.1)),
            slow_max=rng.randint(1, 3 * election) * TICK,
            disk_min=rng.randint(50, 500),
            disk_max=rng.randint(500, 4000),
            fault_every=rng.choice((1.5, 3.0, 6.0)),
            torn_prob=rng.choice((0.0, 0.5, 1.0)),
            write_every=rng.choice((0.5, 1.5, 4.0)),
            read_every=rng.choice((1.0, 3.0, 8.0)),
            fault_weights={
                "crash": rng.choice((0.0, 1.0, 3.0)),
                "partition": rng.choice((0.0, 1.0, 3.0)),
                "oneway": rng.choice((0.0, 1.0)),
                "net": 0.5,
                "compact": rng.choice((0.5, 2.0)),
                "transfer": rng.choice((0.0, 0.5, 1.5)),
                "campaign": rng.choice((0.0, 0.3)),
                "pause": rng.choice((0.0, 0.5, 1.5)),
            },
            disk_stall=rng.choice((0.0, 0.0, 0.01, 0.05)),
            leader_kill=rng.choice((0.0, 0.3, 0.7)),
            leader_kill_after=rng.choice((0.1, 0.5, 2.0)),
        )

    def draw_reach(self, rng: random.Random) -> None:
        """The knobs that reach rare states the older draw seldom or never did.

        - ``trim``, with one-entry batches: a follower whose log diverges just
          past an append's last entry, while the leader's commit index is far
          ahead (Figure 2 receiver rule 5 must bound the commit by the last
          new entry, not by the follower's own last index). This core's leader
          never sends such an append by itself: its probe lands exactly on the
          first divergent index. Any append that is a prefix of one the leader
          sent is one a leader with a smaller batch limit could have sent, so
          the follower must stay safe under it.
        - ``vote_crash``, ``duel`` and ``vote_echo``: a voter that restarts
          right after granting a vote, while competing candidates of the same
          term (campaigning within a tick of each other) still ask for it, or
          their request is held up on the way; a vote that was not durable
          is then granted twice.
        """
        if rng.random() < 0.3:
            self.config = dataclasses.replace(
                self.config, max_msg_bytes=1, max_inflight=rng.choice((1, 2, 32))
            )
        self.trim = rng.choice((0.0, 0.0, 0.2, 0.5))
        if rng.random() < 0.4:  # together, or they seldom meet
            self.vote_crash = rng.choice((0.5, 1.0))
            self.duel = rng.choice((1.0, 3.0))
            self.vote_echo = rng.choice((0.2, 0.5))
        if self.duel:
            self.fault_weights = {**self.fault_weights, "duel": self.duel}

    def draw_membership(self, rng: random.Random) -> None:
        """Membership mode: spares and an operator (World._member_*).

        The operator asks the leader to add a node as a learner (a spare that
        joined with an empty membership, or a node removed earlier with its
        storage intact), promote a learner (retrying while it is refused for
        catch-up), demote or remove a voter or learner (the leader too), or
        replace a voter (often a crashed one): remove it, add a spare,
        promote the spare. Requests follow each other closely, and a new
        leader is sometimes asked before it has committed anything: a core
        that lets two changes be in flight, or skips the own-term rule,
        accepts them. A removed node keeps running and talking.

        Spares are always fresh ids: a removed node is never brought back
        with wiped storage under its old id. That would be unsafe in any
        Raft: a stale node whose log still names it as a voter could win
        that node's (now forgotten) vote and lead without committed entries.
        """
        self.membership = True
        self.spares = rng.choice((1, 2, 3, 4))
        self.spare_skews = [
            1.0 if rng.random() < 0.4 else rng.uniform(0.7, 1.4) for _ in range(self.spares)
        ]
        self.member_every = rng.choice((1.0, 3.0, 6.0, 12.0))
        self.member_weights = {
            "add": rng.choice((1.0, 2.0)),
            "promote": rng.choice((0.5, 1.0)),
            "demote": rng.choice((0.0, 0.3, 1.0)),
            "remove": rng.choice((0.3, 1.0)),
            "replace": rng.choice((0.0, 1.0, 2.0)),
        }
        self.member_eager = rng.choice((0.0, 0.3, 0.8))
        self.member_kill = rng.choice((0.0, 0.2, 0.5))
        self.member_base = rng.choice((0.0, 0.5, 1.0))
        self.config = dataclasses.replace(self.config, promote_max_lag=rng.choice((0, 2, 16, 64)))

    def describe(self) -> str:
        c = self.config
        return (
            f"n={self.n} election={c.election_ticks} heartbeat={c.heartbeat_ticks} "
            f"pre_vote={c.pre_vote} check_quorum={c.check_quorum} "
            f"max_msg_bytes={c.max_msg_bytes} max_inflight={c.max_inflight} "
            f"chaos_ticks={self.chaos_ticks} skews={[round(s, 2) for s in self.skews]} "
            f"delay={self.delay_min}..{self.delay_max}us loss={self.loss} dup={self.dup} "
            f"slow={self.slow_prob} disk={self.disk_min}..{self.disk_max}us "
            f"stall={self.disk_stall} "
            f"fault_every={self.fault_every} torn={self.torn_prob} "
            f"faults={self.fault_weights} leader_kill={self.leader_kill}"
            f"/{self.leader_kill_after} trim={self.trim} vote_crash={self.vote_crash} "
            f"duel={self.duel} vote_echo={self.vote_echo}"
            + (
                f" membership: spares={self.spares} every={self.member_every} "
                f"ops={self.member_weights} eager={self.member_eager} "
                f"kill={self.member_kill} base={self.member_base} "
                f"promote_max_lag={c.promote_max_lag}"
                if self.membership
                else ""
            )
            + (f" impls={self.impls}" if self.impls else "")
        )


class Node:
    """One simulated process: its core, its disk, its state machine."""

    __slots__ = (
        "id",
        "idx",
        "peers",
        "core",
        "alive",
        "incarnation",
        "busy",
        "current",
        "inbox",
        "period",
        "d_hs",
        "d_snap",
        "d_entries",
        "sm_applied",
        "sm_cmds",
        "pending_reads",
        "awaiting",
        "last_role",
        "lead_term",
        "lead_last",
        "lead_last_term",
        "lead_committed",
        "seen_commit",
        "bootstrap",
        "d_view",
        "impl",
        "remote",
    )

    def __init__(
        self, idx: int, ids: list[str], period: int, bootstrap: Membership | None = None
    ) -> None:
        self.id = ids[idx]
        self.idx = idx
        # Every other node, members or not: a broadcast (the leader's PUB
        # socket) reaches whoever is still subscribed, a removed node included.
        self.peers = [p for p in ids if p != self.id]
        # None: the fixed cluster of ``ids`` (peers on the command line)
        self.bootstrap = bootstrap
        # the membership its durable log names (checks.py), kept by World._persist
        self.d_view = bootstrap or Membership.of(ids)
        self.core: RaftCore | None = None
        self.alive = False
        self.incarnation = 0
        self.busy = False
        self.current: Ready | None = None
        self.inbox: deque = deque()
        self.period = period
        # durable storage
        self.d_hs = HardState()
        self.d_snap = Snapshot()
        self.d_entries: list[Entry] = []
        # state machine: applied index and the commands applied, in order
        self.sm_applied = 0
        self.sm_cmds: list[tuple[int, bytes]] = []
        self.pending_reads: list = []  # ReadStates waiting for applied to reach them
        self.awaiting: dict[int, list] = {}  # index -> [(op, attempt, term)] proposed here
        # invariant bookkeeping
        self.last_role = Role.FOLLOWER
        self.lead_term = 0
        self.lead_last = 0
        self.lead_last_term = 0
        self.lead_committed = False  # has it committed anything in its current term yet
        self.seen_commit = 0
        # "py": a RaftCore in this process; "go", "kotlin": a GoCore (tests/sim/remote.py)
        self.impl = "py"
        self.remote = False


ADD, PROMOTE, DEMOTE, REMOVE = (
    ChangeType.ADD_LEARNER,
    ChangeType.PROMOTE,
    ChangeType.DEMOTE,
    ChangeType.REMOVE,
)


class _Plan:
    """The operator's steps for one request (replace = three), done in order."""

    __slots__ = ("steps", "step", "attempts")

    def __init__(self, steps: list[tuple[ChangeType, str]]) -> None:
        self.steps = steps
        self.step = 0
        self.attempts = 0

    def __repr__(self) -> str:
        return " + ".join(f"{k.value} {n}" for k, n in self.steps[self.step :])


class Op:
    """One client operation (a write of a unique command, or a read)."""

    __slots__ = (
        "id",
        "kind",
        "client",
        "data",
        "start",
        "attempt",
        "done",
        "ack_floor",
        "read_floor",
    )

    def __init__(self, op_id: int, kind: str, client: Client, start: int) -> None:
        self.id = op_id
        self.client = client
        self.kind = kind
        self.data = b"c%d" % op_id
        self.start = start
        self.attempt = 0
        self.done = False
        self.ack_floor = 0
        self.read_floor = 0


class Client:
    """One client: its own idea of who leads, and its own operations in flight."""

    __slots__ = ("name", "guess", "open_writes", "open_reads")

    def __init__(self, name: str, guess: int) -> None:
        self.name = name
        self.guess = guess
        self.open_writes = 0
        self.open_reads = 0


def encode_sm(cmds: list[tuple[int, bytes]]) -> bytes:
    return b"\n".join(b"%d:%s" % (i, d) for i, d in cmds)


def decode_sm(data: bytes) -> list[tuple[int, bytes]]:
    if not data:
        return []
    out = []
    for line in data.split(b"\n"):
        i, _, d = line.partition(b":")
        out.append((int(i), d))
    return out


class World:
    def __init__(
        self,
        seed: int,
        n: int | None = None,
        trace_all: bool = False,
        trace_len: int = 400,
        membership: bool = False,
        impls: list[str] | tuple[str, ...] | None = None,
        go_mutations: tuple[str, ...] = (),
        remote_mutations: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        """``impls``: the core implementations ("py", "go", "kotlin"), cycled
        over the nodes (spares included); ``remote_mutations``: the mutations
        the cores of each remote implementation carry (default: the Go cores
        carry ``go_mutations``)."""
        self.seed = seed
        self.rng = rng = random.Random(seed)
        self.p = p = Params.draw(rng, n)
        # Its own stream, so that adding the hint kept every older schedule as it was.
        self._hint_rng = random.Random(seed ^ 0x5EED)
        # Likewise the reach knobs (Params.draw_reach) and their events.
        self._reach_rng = random.Random(seed ^ 0x4EAC4)
        p.draw_reach(self._reach_rng)
        # And the membership mode's (Params.draw_membership, World._member_*).
        self._mem_rng = random.Random(seed ^ 0x3E3BE5)
        if membership:
            p.draw_membership(self._mem_rng)
        self.now = 0
        self._q: list = []
        self._seq = 0
        self.trace: deque | list = [] if trace_all else deque(maxlen=trace_len)
        self._t = self.trace.append
        # n voters, then the spares (membership mode), which join later
        self.n_all = n_all = p.n + p.spares
        ids = [f"n{k + 1}" for k in range(n_all)]
        self.ids = ids
        self.index_of = {nid: k for k, nid in enumerate(ids)}
        skews = p.skews + p.spare_skews
        if p.membership:
            first = Membership.of(ids[: p.n])
            self.nodes = [
                Node(k, ids, round(TICK * skews[k]), first if k < p.n else Membership.of([]))
                for k in range(n_all)
            ]
        else:
            self.nodes = [Node(k, ids, round(TICK * skews[k])) for k in range(n_all)]
        self.mixed = bool(impls) and any(i != "py" for i in impls)
        self.go_mutations = go_mutations
        self.remote_mutations = (
            dict(remote_mutations) if remote_mutations is not None else {"go": go_mutations}
        )
        if self.mixed:
            assert impls is not None
            for node in self.nodes:
                node.impl = impls[node.idx % len(impls)]
                node.remote = node.impl != "py"
            p.impls = ",".join(f"{x.id}:{x.impl}" for x in self.nodes)
        self.blocked = [[False] * n_all for _ in range(n_all)]
        self.plans = 0  # operator plans under way (membership mode)
        self.used = set(ids[: p.n])  # ids that have been members (not fresh spares)
        self.final_members: list[Node] = []
        self.partition_gen = 0
        self.paused: dict[int, int] = {}  # node index -> incarnation, while frozen
        self.loss, self.dup, self.slow = p.loss, p.dup, p.slow_prob
        self.trim = p.trim
        self.phase = "chaos"
        self.et = p.config.election_ticks * TICK
        # liveness: 10 (randomized, skewed) election timeouts
        self.live_bound = 10 * 2 * self.et * max(1.0, max(p.skews))
        self.inv = Invariants(self)
        # client
        self.ops: dict[str, Op] = {}
        self.op_seq = 0
        self.clients = [
            Client(f"client{k + 1}", rng.randrange(n_all)) for k in range(rng.choice((1, 2, 3)))
        ]
        self.acked: list[tuple[int, int, bytes]] = []  # (index, term, data) reported to the client
        self.acked_max = 0
        self.read_floor = 0
        self.heal_time = 0
        self.probe: Op | None = None
        self.probe_index = 0
        self.live_time = 0
        self._conv_applied = -1  # members' applied entries, summed, when it last grew
        self._conv_at = 0
        self.stopped = False
        self.events = 0
        self.stats = {
            "crash": 0,
            "torn": 0,
            "partition": 0,
            "compact": 0,
            "snapshot_install": 0,
            "transfer": 0,
            "acked": 0,
            "reads": 0,
            "elections": 0,
            "trimmed": 0,
            "vote_crash": 0,
            "member_changes": 0,
            "member_refused": 0,
        }

    # -- event queue ----------------------------------------------------------

    def at(self, delay: float, fn, arg=None) -> None:
        self._seq += 1
        heapq.heappush(self._q, (self.now + int(delay), self._seq, fn, arg))

    def run(self) -> Violation | None:
        """Run the schedule to the end; the first violation, or None."""
        try:
            self._start()
            q = self._q
            pop = heapq.heappop
            while q and not self.stopped:
                t, _, fn, arg = pop(q)
                self.now = t
                self.events += 1
                fn(arg)
            if not self.stopped:
                raise Violation("liveness", "event queue ran dry before the schedule finished")
        except Violation as v:
            v.world = self
            return v
        except Exception as exc:  # the core (or the sim) crashed: report like a violation
            import traceback

            v = Violation("exception", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            v.world = self
            return v
        finally:
            if self.mixed:
                for node in self.nodes:
                    if node.remote and node.core is not None:
                        node.core.close()
        return None

    def _start(self) -> None:
        p = self.p
        rng = self.rng
        for node in self.nodes:
            self._boot(node, first_tick=rng.randrange(node.period))
        self.at(rng.expovariate(1 / (p.fault_every * TICK)), self._fault)
        for client in self.clients:
            self.at(rng.expovariate(1 / (p.write_every * TICK)), self._client_write_gen, client)
            self.at(rng.expovariate(1 / (p.read_every * TICK)), self._client_read_gen, client)
        if p.membership:
            mr = self._mem_rng
            self.at(mr.expovariate(1 / (p.member_every * TICK)), self._member_fault)
        self.at(p.chaos_ticks * TICK, self._heal)

    # -- nodes ------------------------------------------------------------------

    def _boot(self, node: Node, first_tick: int) -> None:
        """(Re)start a node from exactly what its disk holds."""
        node.incarnation += 1
        node.alive = True
        node.busy = False
        node.current = None
        node.inbox.clear()
        node.pending_reads = []
        node.awaiting = {}
        snap = node.d_snap
        if node.remote:
            from .remote import GoCore

            node.core = GoCore(
                node.id,
                node.peers if node.bootstrap is None else (),
                self.p.config,
                self.rng.getrandbits(64),  # the same draw as for a RaftCore's Random
                hard_state=node.d_hs,
                snapshot=snap if snap.index else None,
                entries=tuple(node.d_entries),
                bootstrap=node.bootstrap,
                mutations=self.remote_mutations.get(node.impl, ()),
                impl=node.impl,
            )
        else:
            node.core = RaftCore(
                node.id,
                node.peers if node.bootstrap is None else (),
                self.p.config,
                random.Random(self.rng.getrandbits(64)),
                hard_state=node.d_hs,
                snapshot=snap if snap.index else None,
                entries=tuple(node.d_entries),
                bootstrap=node.bootstrap,
            )
        node.sm_cmds = decode_sm(snap.data)
        node.sm_applied = snap.index
        node.last_role = node.core.role
        node.lead_term = 0
        node.seen_commit = node.core.commit_index
        self._t(
            (
                self.now,
                "start" if node.incarnation == 1 else "RESTART",
                node.id,
                (f"[{node.impl}] " if self.mixed else "")
                + f"hs=(t{node.d_hs.term},vote={node.d_hs.vote or '-'}) snap={snap.index} "
                f"last={node.core.last_index}",
            )
        )
        self.at(first_tick, self._tick, (node, node.incarnation))

    def _crash(self, node: Node) -> None:
        torn = ""
        if node.busy and node.current is not None and self.rng.random() < self.p.torn_prob:
            torn = self._persist(node, node.current, torn=True)
            self.stats["torn"] += 1
        if node.core is not None and node.core.term > node.d_hs.term:
            self.inv.forget_phantom(node, node.core)
        if node.remote and node.core is not None:
            node.core.close()
        node.alive = False
        node.incarnation += 1  # cancels its pending disk completion and ticks
        node.busy = False
        node.current = None
        node.inbox.clear()
        node.pending_reads = []
        node.awaiting = {}
        node.core = None
        node.lead_term = 0
        self.stats["crash"] += 1
        self._t((self.now, "CRASH", node.id, torn))
        # The real transport sees a dead process's connections drop; peers may
        # or may not notice (and a partitioned peer would not): a random few do.
        for other in self.nodes:
            if other.alive and other.core is not None and self._hint_rng.random() < 0.7:
                other.core.peer_unreachable(node.id)
                self._t((self.now, "UNREACHABLE", other.id, node.id))

    def _tick(self, arg) -> None:
        node, inc = arg
        if inc != node.incarnation:
            return
        self.at(node.period, self._tick, arg)
        if node.busy:
            node.inbox.append(("t", None))
        else:
            if node.remote:
                node.core.expect_ready()  # _pump asks has_ready() next
            node.core.tick()
            self.inv.observe(node)
            self._pump(node)

    def _input(self, node: Node, kind: str, payload) -> None:
        if node.busy:
            node.inbox.append((kind, payload))
        else:
            if node.remote:
                node.core.expect_ready()
            self._process(node, kind, payload)
            self._pump(node)

    def _process(self, node: Node, kind: str, payload) -> None:
        core = node.core
        if kind == "m":
            core.step(payload)
        elif kind == "t":
            core.tick()
        elif kind == "p":
            self._node_propose(node, payload)
        elif kind == "r":
            self._node_read(node, payload)
        elif kind == "c":
            self._node_compact(node)
        elif kind == "x":
            self._t(
                (self.now, "transfer-request", node.id, f"-> {payload} (role {core.role.value})")
            )
            core.transfer_leadership(payload)
        elif kind == "v":
            self._t((self.now, "campaign-request", node.id, ""))
            core.campaign()
        elif kind == "g":
            self._node_member(node, payload)
        self.inv.observe(node)

    def _pump(self, node: Node) -> None:
        """Node is idle: drain its inbox, then handle Readies until one needs the disk."""
        core = node.core
        inbox = node.inbox
        for _guard in range(1000):
            while inbox:
                kind, payload = inbox.popleft()
                if node.remote and not inbox:
                    core.expect_ready()  # the last input: has_ready() follows
                self._process(node, kind, payload)
            if not core.has_ready():
                return
            rd = core.ready()
            self._t((self.now, "ready", node.id, rd))
            self.inv.on_ready(node, rd)
            if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
                node.busy = True
                node.current = rd
                p = self.p
                r = self.rng.random
                if p.disk_stall and self.phase == "chaos" and r() < p.disk_stall:
                    took = TICK + r() * 2 * TICK
                    self._t(
                        (self.now, "disk-stall", node.id, ("write takes {:.1f}ms", took / 1000))
                    )
                else:
                    took = p.disk_min + r() * (p.disk_max - p.disk_min)
                self.at(took, self._disk_done, (node, node.incarnation))
                return
            self._effects(node, rd)
        raise Violation("ready-loop", f"{node.id}: has_ready() still True after 1000 Readies")

    def _disk_done(self, arg) -> None:
        node, inc = arg
        if inc != node.incarnation:
            return
        rd = node.current
        self._persist(node, rd)
        node.busy = False
        node.current = None
        self._effects(node, rd)
        self._pump(node)

    def _persist(self, node: Node, rd: Ready, torn: bool = False) -> str:
        """Step 1 of the Ready contract; ``torn`` writes only a random prefix of it."""
        steps = (rd.snapshot is not None) + (rd.hard_state is not None) + len(rd.entries)
        limit = self.rng.randint(0, steps) if torn else steps
        done = 0
        # The node's order (storage/node_storage.py): hard state, snapshot, entries.
        if rd.hard_state is not None and done < limit:
            node.d_hs = rd.hard_state
            done += 1
        changed_view = False
        if rd.snapshot is not None and done < limit:
            node.d_snap = rd.snapshot
            node.d_entries = []
            done += 1
            changed_view = True
        if rd.entries and done < limit:
            ents = rd.entries[: limit - done]
            cut = ents[0].index - node.d_snap.index - 1
            if cut < 0 or cut > len(node.d_entries):
                raise Violation(
                    "storage",
                    f"{node.id}: Ready entries start at {ents[0].index} but the durable log "
                    f"holds snapshot {node.d_snap.index} + {len(node.d_entries)} entries",
                )
            truncated = cut < len(node.d_entries)
            del node.d_entries[cut:]
            node.d_entries.extend(ents)
            done += len(ents)
            changed_view |= truncated or any(e.kind is CONFIG for e in ents)
        if changed_view and self.p.membership:
            node.d_view = self._durable_view(node)
        return f"torn write: persisted {done}/{steps} parts" if torn else ""

    def _durable_view(self, node: Node) -> Membership:
        """The membership a restart of ``node`` would use (RaftCore's rule:
        the last CONFIG entry, else the snapshot's, else the bootstrap one)."""
        for e in reversed(node.d_entries):
            if e.kind is CONFIG:
                return Membership.decode(e.data)
        if node.d_snap.membership:
            return Membership.decode(node.d_snap.membership)
        return node.bootstrap or Membership.of(self.ids)

    def _effects(self, node: Node, rd: Ready) -> None:
        """Steps 2-4 of the Ready contract: send, install/apply, serve reads, advance."""
        send = self._send
        voted = False
        for m in rd.messages:
            send(node, m)
            if m.type is MT.VOTE_RESP and not m.reject:
                voted = True
        if voted and self.p.vote_crash and self.phase == "chaos":
            rr = self._reach_rng
            if rr.random() < self.p.vote_crash:
                self.at(rr.uniform(0, 0.05 * TICK), self._crash_voter, (node, node.incarnation))
        if rd.snapshot is not None:
            self.inv.on_install(node, rd.snapshot)
            node.sm_cmds = decode_sm(rd.snapshot.data)
            node.sm_applied = rd.snapshot.index
            self.stats["snapshot_install"] += 1
        if rd.committed:
            self._apply(node, rd.committed)
        for rs in rd.read_states:
            node.pending_reads.append(rs)
        if node.pending_reads:
            self._serve_reads(node)
        if node.remote and not node.inbox:
            node.core.expect_ready()  # back in _pump, has_ready() comes next
        node.core.advance(rd)
        self.inv.observe(node)

    def _apply(self, node: Node, entries: list[Entry]) -> None:
        inv_apply = self.inv.on_apply
        awaiting = node.awaiting
        for e in entries:
            inv_apply(node, e)
            node.sm_applied = e.index
            if e.kind is COMMAND:
                node.sm_cmds.append((e.index, e.data))
            if awaiting:
                waiters = awaiting.pop(e.index, None)
                if waiters:
                    for op, attempt, term in waiters:
                        if term == e.term:
                            self.at(
                                self._client_delay(), self._client_write_ack, (op, e.index, e.term)
                            )
                        elif attempt == op.attempt and not op.done:
                            self.at(self._client_delay(), self._client_write_retry, (op, attempt))

    # -- network -----------------------------------------------------------------

    def _send(self, node: Node, m: Message) -> None:
        if m.dst == BROADCAST:
            for peer in node.peers:
                self._transmit(node.idx, self.index_of[peer], m)
        else:
            self._transmit(node.idx, self.index_of[m.dst], m)

    def _transmit(self, src: int, dst: int, m: Message) -> None:
        rng = self.rng
        if self.blocked[src][dst]:
            self._t((self.now, "drop", ("partition", self.ids[dst]), m))
            return
        if self.loss and rng.random() < self.loss:
            self._t((self.now, "drop", ("loss", self.ids[dst]), m))
            return
        if self.trim and m.type is MT.APPEND and m.entries:
            rr = self._reach_rng
            if rr.random() < self.trim:
                # A prefix (maybe empty) of the batch: what a leader with a
                # smaller batch limit could have sent (Params.draw_reach).
                m = dataclasses.replace(m, entries=m.entries[: rr.randrange(len(m.entries))])
                self.stats["trimmed"] += 1
        delay = self._net_delay()
        if m.type is MT.VOTE and self.p.vote_echo and self.phase == "chaos":
            rr = self._reach_rng
            if rr.random() < self.p.vote_echo:
                # held up on a slow path: it may overtake nothing, and arrive
                # after the voter restarted
                delay += rr.uniform(0.3, 2.0) * TICK
        self.at(delay, self._deliver, (dst, m))
        if self.dup and rng.random() < self.dup:
            self.at(self._net_delay(), self._deliver, (dst, m))

    def _net_delay(self) -> float:
        r = self.rng.random
        p = self.p
        if self.slow and r() < self.slow:
            return p.delay_max + r() * p.slow_max
        return p.delay_min + r() * (p.delay_max - p.delay_min)

    def _deliver(self, arg) -> None:
        dst, m = arg
        node = self.nodes[dst]
        if not node.alive:
            self._t((self.now, "drop", ("down", node.id), m))
            return
        if self.blocked[self.index_of[m.src]][dst]:
            self._t((self.now, "drop", ("partition", node.id), m))
            return
        self._t((self.now, "queued" if node.busy else "deliver", node.id, m))
        self._input(node, "m", m)

    # -- faults ----------------------------------------------------------------

    def _fault(self, _=None) -> None:
        if self.phase != "chaos":
            return
        rng = self.rng
        p = self.p
        self.at(rng.expovariate(1 / (p.fault_every * TICK)), self._fault)
        weights = p.fault_weights
        kinds = [k for k in weights if weights[k] > 0]
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        n = self.n_all
        if kind == "crash":
            alive = [x for x in self.nodes if x.alive]
            writing = [x for x in alive if x.busy]
            if writing and rng.random() < 0.5:
                alive = writing  # crash in the middle of a write: maybe torn, never sent
            if alive:
                node = rng.choice(alive)
                self._crash(node)
                self.at(rng.uniform(0.1, 4.0) * self.et, self._restart, node)
        elif kind in ("partition", "oneway"):
            self.partition_gen += 1
            self.stats["partition"] += 1
            blocked = [[False] * n for _ in range(n)]
            if kind == "partition":
                # a random split into two sides (sometimes one node alone)
                side = [rng.random() < 0.5 for _ in range(n)]
                if rng.random() < 0.3:
                    side = [False] * n
                    side[rng.randrange(n)] = True
                for a in range(n):
                    for b in range(n):
                        if side[a] != side[b]:
                            blocked[a][b] = True
                desc = "symmetric " + " | ".join(
                    ",".join(self.ids[k] for k in range(n) if side[k] == s) for s in (True, False)
                )
            else:
                links = []
                for a in range(n):
                    for b in range(n):
                        if a != b and rng.random() < 0.3:
                            blocked[a][b] = True
                            links.append(f"{self.ids[a]}-/->{self.ids[b]}")
                desc = "one-way " + " ".join(links)
            self.blocked = blocked
            self._t((self.now, "PARTITION", "net", desc))
            self.at(rng.uniform(0.3, 5.0) * self.et, self._unpartition, self.partition_gen)
        elif kind == "net":
            self.loss = rng.choice((0.0, 0.01, 0.05, 0.1, 0.25, 0.5))
            self.dup = rng.choice((0.0, 0.02, 0.1))
            self.slow = rng.choice((0.0, 0.02, 0.1))
            self._t(
                (self.now, "NETWORK", "net", f"loss={self.loss} dup={self.dup} slow={self.slow}")
            )
        elif kind == "compact":
            node = rng.choice(self.nodes)
            if node.alive:
                self._input(node, "c", None)
        elif kind == "transfer":
            leaders = [x for x in self.nodes if x.alive and x.core.role is LEADER]
            if leaders:
                node = rng.choice(leaders)
                self._input(node, "x", rng.choice(node.peers))
                self.stats["transfer"] += 1
        elif kind == "campaign":
            node = rng.choice(self.nodes)
            if node.alive:
                self._input(node, "v", None)
        elif kind == "duel":
            self._duel()
        elif kind == "pause":
            # the process freezes (SIGSTOP, a GC pause): inputs and ticks queue up
            idle = [x for x in self.nodes if x.alive and not x.busy]
            if idle:
                node = rng.choice(idle)
                node.busy = True
                self.paused[node.idx] = node.incarnation
                took = rng.uniform(0.2, 2.5) * self.et
                self._t((self.now, "PAUSE", node.id, ("frozen for {:.1f}ms", took / 1000)))
                self.at(took, self._resume, (node, node.incarnation))

    def on_new_leader(self, node: Node, term: int) -> None:
        """The nemesis: soon after taking office, a leader may crash or be cut off."""
        rng = self.rng
        if self.phase == "chaos" and self.p.leader_kill and rng.random() < self.p.leader_kill:
            self.at(
                rng.expovariate(1 / (self.p.leader_kill_after * TICK)),
                self._kill_leader,
                (node, node.incarnation, term, rng.random() < 0.5),
            )
        p = self.p
        if p.membership and self.phase == "chaos" and self._mem_rng.random() < p.member_eager:
            # The operator asks the new leader at once, before it has committed
            # anything of its term: the 2015 single-server bug's opening.
            mr = self._mem_rng
            kind = mr.choice(("remove", "demote", "promote"))
            steps = self._member_plan(node.core.membership, kind)
            if steps:
                self.plans += 1
                self.at(mr.uniform(0, 0.3) * TICK, self._member_send, (_Plan(steps), node))

    def on_leader_first_commit(self, node: Node, term: int) -> None:
        """The nemesis again: a leader dies right after its term's first commit.

        That is when a new leader's log has just become the authority but may
        not yet be on a majority (Raft paper Figure 8)."""
        rng = self.rng
        if self.phase == "chaos" and self.p.leader_kill and rng.random() < self.p.leader_kill:
            self.at(
                rng.expovariate(1 / (0.05 * TICK)),
                self._kill_leader,
                (node, node.incarnation, term, rng.random() < 0.5),
            )

    def _kill_leader(self, arg) -> None:
        node, inc, term, isolate = arg
        if (
            self.phase != "chaos"
            or node.incarnation != inc
            or not node.alive
            or node.core.term != term
        ):
            return
        rng = self.rng
        if isolate:
            self.partition_gen += 1
            self.stats["partition"] += 1
            k = node.idx
            blocked = [row[:] for row in self.blocked]
            for other in range(self.n_all):
                if other != k:
                    blocked[k][other] = blocked[other][k] = True
            self.blocked = blocked
            self._t((self.now, "PARTITION", "net", f"isolate leader {node.id} (t{term})"))
            self.at(rng.uniform(0.3, 4.0) * self.et, self._unpartition, self.partition_gen)
        else:
            self._t((self.now, "nemesis", node.id, f"kill leader of t{term}"))
            self._crash(node)
            self.at(rng.uniform(0.1, 3.0) * self.et, self._restart, node)

    def _duel(self) -> None:
        """Several nodes time out together: candidates of the same term compete.

        Half the time it is a blackout first: every node crashes and all come
        back within half a tick (a power cut), so that even a 3-node cluster
        with a leader has all of its nodes campaign at once, and some learn
        the new term from a rejected pre-vote before they grant a vote in it."""
        rr = self._reach_rng
        if rr.random() < 0.5:
            self._t((self.now, "nemesis", "net", "blackout: every node crashes"))
            for node in self.nodes:
                if node.alive:
                    self._crash(node)
            duelists = list(self.nodes)
            for node in duelists:
                back = rr.uniform(0.05, 0.5) * TICK
                self.at(back, self._restart, node)
                self.at(back + rr.uniform(0, 0.3 * TICK), self._duel_campaign, (node, None))
        else:
            alive = [x for x in self.nodes if x.alive and x.core.role is not LEADER]
            if len(alive) < 2:
                return
            duelists = rr.sample(alive, rr.randint(2, len(alive)))
            for node in duelists:
                self.at(rr.uniform(0, 0.3 * TICK), self._duel_campaign, (node, node.incarnation))
        if rr.random() < 0.5:
            # Two of them cannot hear each other (a partial partition): the one
            # that loses does not learn of the winner and stays a candidate.
            a, b = rr.sample(duelists, 2)
            self.partition_gen += 1
            self.stats["partition"] += 1
            blocked = [row[:] for row in self.blocked]
            blocked[a.idx][b.idx] = blocked[b.idx][a.idx] = True
            self.blocked = blocked
            self._t((self.now, "PARTITION", "net", f"duel: {a.id} -/- {b.id}"))
            self.at(rr.uniform(1.0, 4.0) * self.et, self._unpartition, self.partition_gen)

    def _duel_campaign(self, arg) -> None:
        node, inc = arg
        if self.phase == "chaos" and inc in (None, node.incarnation) and node.alive:
            self._input(node, "v", None)

    def _crash_voter(self, arg) -> None:
        """A voter dies right after its grant went out, and is back before the
        election is over: whatever of the vote was not durable is forgotten."""
        node, inc = arg
        if self.phase != "chaos" or node.incarnation != inc or not node.alive:
            return
        self.stats["vote_crash"] += 1
        self._t((self.now, "nemesis", node.id, "crash right after voting"))
        self._crash(node)
        self.at(self._reach_rng.uniform(0.02, 0.5) * TICK, self._restart, node)

    def _resume(self, arg) -> None:
        node, inc = arg
        if self.paused.get(node.idx) == inc == node.incarnation:
            del self.paused[node.idx]
            node.busy = False
            self._t((self.now, "RESUME", node.id, ("{} inputs queued", len(node.inbox))))
            self._pump(node)

    def _restart(self, node: Node) -> None:
        if self.phase == "chaos" and not node.alive:
            self._boot(node, first_tick=self.rng.randrange(node.period))

    def _unpartition(self, gen: int) -> None:
        if gen == self.partition_gen and self.phase == "chaos":
            n = self.n_all
            self.blocked = [[False] * n for _ in range(n)]
            self._t((self.now, "HEAL-PARTITION", "net", ""))

    def _node_compact(self, node: Node) -> None:
        core = node.core
        index = node.sm_applied
        if index <= core.snapshot.index:
            return
        if index != core.applied_index:
            raise Violation(
                "apply", f"{node.id}: state machine applied {index}, core says {core.applied_index}"
            )
        # the state machine writes its snapshot to disk first, then the log is compacted
        off = index - node.d_snap.index
        if off < 1 or off > len(node.d_entries):
            raise Violation(
                "durability",
                f"{node.id}: applied entry {index} is not on disk (snapshot {node.d_snap.index}"
                f" + {len(node.d_entries)} entries)",
            )
        term = node.d_entries[off - 1].term
        if core.term_at(index) != term:
            raise Violation(
                "storage",
                f"{node.id}: entry {index} has term {core.term_at(index)}"
                f" in memory but {term} on disk",
            )
        data = encode_sm(node.sm_cmds)
        core.compact(index, data)
        node.d_snap = core.snapshot  # with the membership as of ``index``
        del node.d_entries[:off]
        self.stats["compact"] += 1
        self._t((self.now, "compact", node.id, f"through {index}@{term}"))

    # -- membership: the operator (Params.draw_membership) -----------------------

    def _current_leader(self) -> Node | None:
        leaders = [x for x in self.nodes if x.alive and x.core.role is LEADER]
        return max(leaders, key=lambda x: x.core.term) if leaders else None

    def _member_fault(self, _=None) -> None:
        if self.phase != "chaos":
            return
        p = self.p
        mr = self._mem_rng
        self.at(mr.expovariate(1 / (p.member_every * TICK)), self._member_fault)
        leader = self._current_leader()
        if leader is None:
            return
        weights = p.member_weights
        kinds = [k for k in weights if weights[k] > 0]
        steps = self._member_plan(
            leader.core.membership, mr.choices(kinds, [weights[k] for k in kinds])[0]
        )
        if steps:
            self.plans += 1
            self._member_send((_Plan(steps), None))

    def _member_plan(self, m: Membership, kind: str) -> list[tuple[ChangeType, str]]:
        """The operator's steps for ``kind``, chosen from membership ``m``."""
        mr = self._mem_rng
        voters, learners = sorted(m.voters), sorted(m.learners)
        outsiders = [x.id for x in self.nodes if x.id not in m.members]
        fresh = [i for i in outsiders if i not in self.used]
        if fresh and mr.random() < 0.7:
            outsiders = fresh
        if kind == "add":
            if not outsiders:
                return []
            new = mr.choice(outsiders)
            return [(ADD, new)] + ([(PROMOTE, new)] if mr.random() < 0.6 else [])
        if kind == "promote":
            return [(PROMOTE, mr.choice(learners))] if learners else []
        if kind == "demote":
            return [(DEMOTE, mr.choice(voters))] if len(voters) > 1 else []
        if kind == "remove":
            gone = mr.choice(sorted(m.members))
            return [(REMOVE, gone)] if gone in learners or len(voters) > 1 else []
        # replace a voter, most often a dead one, by a node that is not a member
        if not outsiders or not voters:
            return []
        dead = [v for v in voters if not self.nodes[self.index_of[v]].alive]
        old = mr.choice(dead) if dead and mr.random() < 0.7 else mr.choice(voters)
        new = mr.choice(outsiders)
        if len(voters) > 1 and mr.random() < 0.6:
            return [(REMOVE, old), (ADD, new), (PROMOTE, new)]
        return [(ADD, new), (PROMOTE, new), (REMOVE, old)]

    def _member_send(self, arg) -> None:
        """Send the plan's next step to ``node`` (or whoever leads now)."""
        plan, node = arg
        if self.phase != "chaos":
            return
        mr = self._mem_rng
        if node is None or not node.alive:
            node = self._current_leader()
        if node is None:
            self._member_retry(plan)
            return
        # The operator read the membership's index when it sent the request.
        base = node.core.membership_index if mr.random() < self.p.member_base else None
        self.at(
            100 + mr.random() * 1900, self._at_node_member, (node, node.incarnation, plan, base)
        )

    def _member_retry(self, plan: _Plan) -> None:
        plan.attempts += 1
        if plan.attempts > 60:
            self.plans -= 1
            self._t((self.now, "operator", "-", f"gives up {plan}"))
            return
        self.at(self._mem_rng.uniform(0.2, 2.0) * TICK, self._member_send, (plan, None))

    def _at_node_member(self, arg) -> None:
        node, inc, plan, base = arg
        if node.alive and node.incarnation == inc:
            self._input(node, "g", (plan, base))
        elif self.phase == "chaos":
            self._member_retry(plan)

    def _node_member(self, node: Node, payload) -> None:
        plan, base = payload
        if self.phase != "chaos":
            return
        core = node.core
        kind, target = plan.steps[plan.step]
        change = ConfChange(kind, target, f"key-{target}" if kind is ADD else "")
        if core.role is LEADER:
            # The operator reads the leader's answer; a change that no longer
            # applies (or would pass the voter cap) ends the plan.
            try:
                after = core.membership.apply(change)
            except MembershipError as exc:
                self.plans -= 1
                self._t((self.now, "operator", node.id, f"drops {plan}: {exc}"))
                return
            if len(after.voters) > MAX_VOTERS:
                self.plans -= 1
                return
        r = core.propose_membership(change, base)
        what = f"{kind.value} {target} base={base}"
        if not r.accepted:
            self.stats["member_refused"] += 1
            self._t((self.now, "member", node.id, f"{what} -> refused: {r.reason}"))
            self._member_retry(plan)
            return
        self.stats["member_changes"] += 1
        self._t((self.now, "MEMBER", node.id, f"{what} -> accepted at {r.index}@{r.term}"))
        self.used.add(target)
        plan.step += 1
        if plan.step < len(plan.steps):
            # the next step follows closely: a core must refuse it until this one commits
            self.at(self._mem_rng.uniform(0, 0.5) * TICK, self._member_send, (plan, None))
        else:
            self.plans -= 1
        mr = self._mem_rng
        if self.p.member_kill and mr.random() < self.p.member_kill:
            # the leader is cut off (or dies) with the change barely replicated
            self.at(
                mr.uniform(0, 0.5) * TICK,
                self._kill_leader,
                (node, node.incarnation, core.term, mr.random() < 0.6),
            )

    def _members_at(self, index: int) -> list[Node]:
        """The nodes of the membership in effect at committed ``index``."""
        app = self.inv.app
        for i in range(min(index, len(app) - 1), 0, -1):
            e = app[i]
            if e is not None and e.kind is CONFIG:
                members = Membership.decode(e.data).members
                return [x for x in self.nodes if x.id in members]
        return [x for x in self.nodes if x.bootstrap is None or x.bootstrap.members]

    # -- the client ------------------------------------------------------------

    def _client_delay(self) -> float:
        return 100 + self.rng.random() * 1900

    def _new_op(self, kind: str, client: Client) -> Op:
        self.op_seq += 1
        op = Op(self.op_seq, kind, client, self.now)
        self.ops[f"r{op.id}" if kind == "r" else f"w{op.id}"] = op
        return op

    def _client_write_gen(self, client: Client) -> None:
        if self.phase != "chaos":
            return
        self.at(
            self.rng.expovariate(1 / (self.p.write_every * TICK)), self._client_write_gen, client
        )
        if client.open_writes >= 2:
            return
        client.open_writes += 1
        op = self._new_op("w", client)
        self._client_write_send(op)

    def _client_write_send(self, op: Op) -> None:
        op.attempt += 1
        target = self.nodes[op.client.guess]
        self.at(self._client_delay(), self._at_node_propose, (target, op, op.attempt))
        timeout = self.et if op is self.probe else 2 * self.et
        self.at(timeout, self._client_write_timeout, (op, op.attempt))

    def _at_node_propose(self, arg) -> None:
        node, op, attempt = arg
        if node.alive and not op.done:
            self._input(node, "p", (op, attempt))

    def _node_propose(self, node: Node, payload) -> None:
        op, attempt = payload
        if op.done or attempt != op.attempt:
            return
        r = node.core.propose(op.data)
        if r.accepted:
            self._t(
                (
                    self.now,
                    "propose",
                    node.id,
                    ("{} -> accepted at {}@{}", op.data.decode(), r.index, r.term),
                )
            )
        else:
            self._t(
                (
                    self.now,
                    "propose",
                    node.id,
                    ("{} -> rejected hint={}", op.data.decode(), r.leader_hint or "-"),
                )
            )
        if r.accepted:
            node.awaiting.setdefault(r.index, []).append((op, attempt, r.term))
            op.client.guess = node.idx
        else:
            self.at(self._client_delay(), self._client_redirect, (op, attempt, r.leader_hint))

    def _client_redirect(self, arg) -> None:
        op, attempt, hint = arg
        if op.done or attempt != op.attempt:
            return
        if hint:
            op.client.guess = self.index_of[hint]
            self._client_write_send(op)
        else:
            op.client.guess = self.rng.randrange(self.n_all)
            self.at(self.rng.randint(TICK // 2, 2 * TICK), self._client_write_resend, (op, attempt))

    def _client_write_resend(self, arg) -> None:
        op, attempt = arg
        if not op.done and attempt == op.attempt:
            self._client_write_send(op)

    def _client_write_timeout(self, arg) -> None:
        op, attempt = arg
        if op.done or attempt != op.attempt:
            return
        if self.rng.random() < 0.5:
            op.client.guess = self.rng.randrange(self.n_all)
        self._t((self.now, "timeout", op.client.name, f"{op.data.decode()} attempt {attempt}"))
        self._client_write_send(op)

    def _client_write_retry(self, arg) -> None:
        op, attempt = arg
        if not op.done and attempt == op.attempt:
            self._client_write_send(op)

    def _client_write_ack(self, arg) -> None:
        op, index, term = arg
        if op.done:
            return
        op.done = True
        if op is not self.probe:
            op.client.open_writes -= 1
        self.acked.append((index, term, op.data))
        if index > self.acked_max:
            self.acked_max = index
        self.stats["acked"] += 1
        self._t((self.now, "ACK", op.client.name, f"{op.data.decode()} at {index}@{term}"))
        if op is self.probe:
            self.probe_index = index
            self.live_time = self.now - self.heal_time
            self.phase = "converge"
            self.final_members = self._members_at(index)

    def _client_read_gen(self, client: Client) -> None:
        if self.phase != "chaos":
            return
        self.at(self.rng.expovariate(1 / (self.p.read_every * TICK)), self._client_read_gen, client)
        if client.open_reads >= 2:
            return
        client.open_reads += 1
        op = self._new_op("r", client)
        op.ack_floor = self.acked_max
        op.read_floor = self.read_floor
        self.at(2 * self.et, self._client_read_timeout, op)
        self._client_read_send(op)

    def _client_read_send(self, op: Op) -> None:
        op.attempt += 1
        rng = self.rng
        target = self.nodes[op.client.guess if rng.random() < 0.5 else rng.randrange(self.n_all)]
        self.at(self._client_delay(), self._at_node_read, (target, op, op.attempt))

    def _at_node_read(self, arg) -> None:
        node, op, attempt = arg
        if node.alive and not op.done:
            self._input(node, "r", (op, attempt))

    def _node_read(self, node: Node, payload) -> None:
        op, attempt = payload
        if op.done:
            return
        ok = node.core.read_index(f"r{op.id}")
        self._t((self.now, "read_index", node.id, ("r{} -> {}", op.id, ok)))
        if not ok:
            self.at(self.rng.randint(TICK // 2, 2 * TICK), self._client_read_resend, (op, attempt))

    def _client_read_resend(self, arg) -> None:
        op, attempt = arg
        if not op.done and attempt == op.attempt:
            self._client_read_send(op)

    def _client_read_timeout(self, op: Op) -> None:
        if not op.done:
            op.done = True
            op.client.open_reads -= 1
            self._t((self.now, "timeout", op.client.name, f"read r{op.id}"))

    def _serve_reads(self, node: Node) -> None:
        keep = []
        for rs in node.pending_reads:
            if node.sm_applied >= rs.index:
                op = self.ops.get(rs.read_ctx)
                if op is None:
                    raise Violation("read", f"{node.id}: ReadState for unknown ctx {rs.read_ctx}")
                self.inv.on_read(node, rs, op)
                if not op.done:
                    self.at(self._client_delay(), self._client_read_done, (op, node.sm_applied))
            else:
                keep.append(rs)
        node.pending_reads = keep

    def _client_read_done(self, arg) -> None:
        op, applied = arg
        if op.done:
            return
        op.done = True
        op.client.open_reads -= 1
        self.stats["reads"] += 1
        if applied > self.read_floor:
            self.read_floor = applied

    # -- the end: heal, liveness, durability -------------------------------------

    def _heal(self, _=None) -> None:
        self.phase = "heal"
        self.heal_time = self.now
        n = self.n_all
        self.blocked = [[False] * n for _ in range(n)]
        self.loss = self.dup = self.slow = self.trim = 0.0
        self._t((self.now, "HEAL", "net", "all faults stop for good"))
        for idx, inc in list(self.paused.items()):
            self._resume((self.nodes[idx], inc))
        for node in self.nodes:
            if not node.alive:
                self._boot(node, first_tick=self.rng.randrange(node.period))
        for op in self.ops.values():
            op.done = True  # the client forgets what it had in flight
        self.probe = op = self._new_op("w", self.clients[0])
        op.data = b"probe"
        self._client_write_send(op)
        self.at(TICK, self._monitor)

    def _monitor(self, _=None) -> None:
        elapsed = self.now - self.heal_time
        if self.phase == "heal":
            if elapsed > self.live_bound:
                leaders = [f"{x.id}(t{x.core.term})" for x in self.nodes if x.core.role is LEADER]
                roles = " ".join(f"{x.id}:{x.core.role.value}/t{x.core.term}" for x in self.nodes)
                raise Violation(
                    "liveness",
                    f"no proposal committed within {self.live_bound / 1000:.0f}ms after the "
                    f"network healed; leaders={leaders} roles: {roles}",
                )
        elif self.phase == "converge":
            if all(x.sm_applied >= self.probe_index for x in self.final_members):
                self.inv.final_check()
                self.stopped = True
                return
            # A member far behind (a learner added late, one entry per round
            # trip with max_inflight=1) may take long: only a stall fails.
            applied = sum(x.sm_applied for x in self.final_members)
            if applied != self._conv_applied:
                self._conv_applied, self._conv_at = applied, self.now
            stalled = self.now - self._conv_at > self.live_bound
            if (elapsed > 2 * self.live_bound and stalled) or elapsed > 50 * self.live_bound:
                lag = " ".join(
                    f"{x.id}:applied={x.sm_applied}/commit={x.core.commit_index}"
                    f"/last={x.core.last_index}"
                    for x in self.final_members
                )
                raise Violation(
                    "durability",
                    f"members did not apply the probe at {self.probe_index} within "
                    f"{elapsed / 1000:.0f}ms of healing (none progressed in the last "
                    f"{self.live_bound / 1000:.0f}ms): {lag}",
                )
        self.at(TICK, self._monitor)
