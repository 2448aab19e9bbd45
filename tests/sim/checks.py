"""The properties every schedule must keep, checked incrementally.

Raft's Figure 3 (the five safety properties), over the whole history of the
schedule, across crashes:

- Election Safety: at most one leader per term (``leaders``: term -> node).
- Leader Append-Only: while a node leads in a term, its last index never
  goes down and the entry at the last index it had never changes term.
- Log Matching: one global map (index, term) -> (kind, data, previous term)
  fed by every ``Ready.entries`` of every node; by induction on the index,
  two logs that share (i, t) then agree on everything up to i.
- Leader Completeness: a node taking office in term T holds every entry that
  was committed in a term before T (``cterm``: index -> entry term, and
  ``commit_term``: index -> the term in which it was first seen committed, both
  fed by every node's commit index) beyond its snapshot. A leader of an older
  term may legitimately take office late (its votes were queued while it was
  paused), so entries committed in later terms are not required of it.
  Looking ahead, once an entry is committed no node lacking it may be
  electable by a majority of durable logs.
- State Machine Safety: one global map index -> entry applied; every
  installed snapshot must hold exactly the commands applied through its index.

Plus client-visible ones: a read returns a state containing every write
acknowledged, and everything an earlier read returned, before it began;
after the heal every acknowledged write is applied on every member.

Membership changes (``--membership``): a quorum is always a majority of the
voters of some membership, never of a fixed node set.

- Committed means stored: when a leader's commit index moves to i, the entry
  at i is on the disks of a majority of the voters the leader counts (its
  latest membership, committed or not); a learner's copy never counts.
- Looking ahead (above), "electable" uses the candidate's own durable
  membership: it must be a voter there, and win a majority of its voters.
- A leader takes office as a voter of its latest membership, or of the one
  before when the latest (not known committed) took its vote away.
- The single-server rules (membership.py), checked on every CONFIG entry a
  leader appends: it differs from the membership before it by one member's
  vote at most; an entry of the leader's term was committed before it (the
  own-term rule); and the leader's log never holds two CONFIG entries beyond
  the commit index (one change in flight). These use what is known to be
  committed anywhere, not the leader's own commit index.
- A snapshot carries the membership of the last CONFIG entry it covers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zmqnode.raft import Entry, EntryKind, Membership, ReadState, Ready, Role, Snapshot

if TYPE_CHECKING:
    from .world import Node, Op, World

LEADER = Role.LEADER
COMMAND = EntryKind.COMMAND
CONFIG = EntryKind.CONFIG


class Violation(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.world: World | None = None


class Invariants:
    def __init__(self, world: World) -> None:
        self.w = world
        self.leaders: dict[int, str] = {}
        self.lm: dict[tuple[int, int], tuple] = {}
        self.cterm: list[int] = [0]  # index -> term of the committed entry (0: not seen yet)
        self.commit_term: list[int] = [0]  # index -> term in which it was first seen committed
        self.max_commit = 0
        self.app: list[Entry | None] = [None]  # index -> entry applied
        self.terms_committed: set[int] = set()  # terms with an entry known committed

    def fail(self, kind: str, detail: str) -> None:
        raise Violation(kind, detail)

    # -- after every input or Ready of a node -------------------------------------

    def observe(self, node: Node) -> None:
        core = node.core
        role = core.role
        # leading now, or until a moment ago in this term (a leader removed by
        # a change steps down in the step that commits it)
        leading = role is LEADER or (node.lead_term != 0 and node.lead_term == core.term)
        if role is not node.last_role:
            node.last_role = role
            self.w._t((self.w.now, "ROLE", node.id, f"-> {role.value} t{core.term}"))
        if role is LEADER:
            term = core.term
            if node.lead_term != term:
                self._took_office(node, core, term)
            else:
                last = node.lead_last
                if core.last_index < last:
                    self.fail(
                        "leader-append-only",
                        f"{node.id} leading term {term}: last index fell from {last} to "
                        f"{core.last_index}",
                    )
                t = core.term_at(last)
                if t != node.lead_last_term and not (t is None and last <= core.snapshot.index):
                    self.fail(
                        "leader-append-only",
                        f"{node.id} leading term {term}: entry {last} changed term "
                        f"{node.lead_last_term} -> {t}",
                    )
                node.lead_last = last = core.last_index
                node.lead_last_term = core.term_at(last)
        elif node.lead_term:
            node.lead_term = 0
        ci = core.commit_index
        seen = node.seen_commit
        if ci != seen:
            if ci < seen:
                self.fail("commit", f"{node.id}: commit index went back from {seen} to {ci}")
            self._committed(node, core, seen, ci)
            node.seen_commit = ci
            if leading:
                self._stored_on_quorum(node, core, ci)

    def forget_phantom(self, node: Node, core) -> None:
        """``node`` crashes before its term became durable: whatever it did in
        a later term never left it (the Ready contract sends only after the
        hard state is written). A sole voter wins its own election at once,
        so it may have "led" a term it will not remember, whose leader may
        then be someone else; that is not two leaders."""
        durable = node.d_hs.term
        for term in range(durable + 1, core.term + 1):
            if self.leaders.get(term) == node.id:
                del self.leaders[term]
                for e in core.log.entries:
                    if e.term == term:
                        self.lm.pop((e.index, e.term), None)
                self.w._t((self.w.now, "phantom", node.id, f"led t{term} without a durable term"))

    def _took_office(self, node: Node, core, term: int) -> None:
        w = self.w
        prev = self.leaders.get(term)
        if prev is not None and prev != node.id:
            self.fail("election-safety", f"two leaders in term {term}: {prev} and {node.id}")
        self.leaders[term] = node.id
        w.stats["elections"] += 1
        if node.id not in core.voters and not (
            core.membership_index > core.snapshot.index
            and node.id in core.membership_at(core.membership_index - 1).voters
        ):
            # Only a voter, or one whose latest membership (not known
            # committed) just took its vote away (thesis §4.2.2), campaigns.
            self.fail(
                "learner-leads",
                f"{node.id} leads term {term} but is not a voter of its membership "
                f"{sorted(core.voters)}, nor of the one before",
            )
        w._t(
            (
                w.now,
                "LEADER",
                node.id,
                f"term {term} last={core.last_index} commit={core.commit_index}",
            )
        )
        snap = core.snapshot
        cterm = self.cterm
        commit_term = self.commit_term
        if snap.index < len(cterm) and cterm[snap.index] and cterm[snap.index] != snap.term:
            self.fail(
                "leader-completeness",
                f"{node.id}: snapshot {snap.index}@{snap.term} "
                f"but {snap.index}@{cterm[snap.index]} committed",
            )
        term_at = core.term_at
        for i in range(snap.index + 1, self.max_commit + 1):
            t = cterm[i]
            if t and commit_term[i] < term and term_at(i) != t:
                held = "nothing" if term_at(i) is None else f"{i}@{term_at(i)}"
                self.fail(
                    "leader-completeness",
                    f"{node.id} leads term {term} (last index {core.last_index}) but holds "
                    f"{held} at {i}; {i}@{t} was committed in term {commit_term[i]}",
                )
        if w.p.membership:
            self._one_change_in_flight(node, core)
        node.lead_term = term
        node.lead_committed = False
        node.lead_last = core.last_index
        node.lead_last_term = core.term_at(core.last_index)
        w.on_new_leader(node, term)

    def _committed(self, node: Node, core, lo: int, hi: int) -> None:
        cterm = self.cterm
        commit_term = self.commit_term
        if len(cterm) <= hi:
            cterm.extend([0] * (hi + 1 - len(cterm)))
            commit_term.extend([0] * (hi + 1 - len(commit_term)))
        term_at = core.term_at
        now_term = core.term
        for i in range(lo + 1, hi + 1):
            t = term_at(i)
            if t is None:
                continue  # covered by a snapshot
            old = cterm[i]
            if not old:
                cterm[i] = t
                commit_term[i] = now_term
                self.terms_committed.add(t)
            elif old != t:
                self.fail(
                    "committed-entries-differ",
                    f"{node.id} commits {i}@{t} but {i}@{old} was committed before",
                )
            elif now_term < commit_term[i]:
                commit_term[i] = now_term
        if hi > self.max_commit:
            self.max_commit = hi
        t = term_at(hi)
        if t is not None:
            self._no_leader_could_lose(hi, t)
        if node.lead_term and not node.lead_committed:
            node.lead_committed = True
            self.w.on_leader_first_commit(node, node.lead_term)
        self.w._t((self.w.now, "commit", node.id, ("{} -> {}", lo, hi)))

    def _no_leader_could_lose(self, index: int, term: int) -> None:
        """Leader Completeness, looking ahead: once (index, term) is committed, no
        node whose log lacks it may be electable.

        Electable means its durable log is at least as up-to-date (§5.4.1) as
        the durable logs of a majority (itself included). In a correct Raft
        every majority holds a durable copy whose last term is >= ``term``, and
        a log lacking the entry has a lower last term or a shorter log, so no
        such majority exists; it is found only when the entry was committed
        without being safe (e.g. Figure 8). Dead nodes count with their disk.
        The candidate counts the voters of the membership its durable log
        names (``Node.d_view``), as it would after a restart.
        """
        nodes = self.w.nodes
        lasts = []
        lacking = []
        for x in nodes:
            snap = x.d_snap
            ents = x.d_entries
            last = (ents[-1].term, ents[-1].index) if ents else (snap.term, snap.index)
            lasts.append(last)
            off = index - snap.index
            if off > len(ents) or (off > 0 and ents[off - 1].term != term):
                lacking.append((x, last))
        if not lacking:
            return
        index_of = self.w.index_of
        for x, last in lacking:
            view = x.d_view
            if x.id not in view.voters:
                continue  # it never campaigns
            votes = sum(1 for v in view.voters if last >= lasts[index_of[v]])
            if votes >= view.quorum:
                self.fail(
                    "leader-completeness",
                    f"{index}@{term} is committed, yet {x.id} (durable last entry "
                    f"{last[1]}@{last[0]}, lacking it) is up-to-date enough for "
                    f"{votes} of its {len(view.voters)} voters {sorted(view.voters)}: "
                    + " ".join(
                        f"{y.id}:{lt[1]}@{lt[0]}" for y, lt in zip(nodes, lasts, strict=True)
                    ),
                )

    def _stored_on_quorum(self, node: Node, core, index: int) -> None:
        """A leader's commit index moved to ``index``: the entry there must be
        durable on a majority of the voters it counts (learners never count)."""
        t = core.term_at(index)
        if t is None:
            return
        w = self.w
        holders = []
        for v in core.voters:
            x = w.nodes[w.index_of[v]]
            snap, ents = x.d_snap, x.d_entries
            off = index - snap.index
            if off <= 0 or (off <= len(ents) and ents[off - 1].term == t):
                holders.append(v)
        if len(holders) < core.quorum:
            self.fail(
                "commit-quorum",
                f"{node.id} (leader of t{core.term}) commits {index}@{t}, but only "
                f"{sorted(holders)} of its voters {sorted(core.voters)} store it durably "
                f"(quorum {core.quorum}; learners {sorted(core.membership.learners)})",
            )

    def _config_appended(self, node: Node, core, e: Entry) -> None:
        """A leader appended CONFIG entry ``e``: the single-server rules."""
        new = Membership.decode(e.data)
        before = core.membership_at(e.index - 1)
        if len(new.voters ^ before.voters) > 1:
            self.fail(
                "single-server",
                f"{node.id} appends {e.index}@{e.term}: voters {sorted(before.voters)} -> "
                f"{sorted(new.voters)}, more than one vote changes",
            )
        if e.term not in self.terms_committed:
            self.fail(
                "own-term",
                f"{node.id} appends the membership change {e.index}@{e.term} before any entry "
                f"of term {e.term} was committed",
            )
        self._one_change_in_flight(node, core)

    def _one_change_in_flight(self, node: Node, core) -> None:
        """At most one CONFIG entry beyond what is known committed."""
        log = core.log
        start = max(self.max_commit, log.snapshot.index) + 1 - (log.snapshot.index + 1)
        pending = [e for e in log.entries[start:] if e.kind is CONFIG]
        if len(pending) > 1:
            self.fail(
                "one-change-in-flight",
                f"{node.id} (leader of t{core.term}) holds membership changes "
                + ", ".join(f"{e.index}@{e.term}" for e in pending)
                + f" beyond the commit index {self.max_commit}",
            )

    def on_ready(self, node: Node, rd: Ready) -> None:
        if not rd.entries:
            return
        core = node.core
        if core.role is LEADER:
            for e in rd.entries:
                if e.kind is CONFIG and e.term == core.term:
                    self._config_appended(node, core, e)
        lm = self.lm
        prev = node.core.term_at(rd.entries[0].index - 1)
        for e in rd.entries:
            key = (e.index, e.term)
            val = (e.kind, e.data, prev)
            old = lm.get(key)
            if old is None:
                lm[key] = val
            elif old != val:
                self.fail(
                    "log-matching",
                    f"{node.id} holds {e.index}@{e.term} = {e.kind.value} {e.data!r} after "
                    f"term {prev}; elsewhere it is {old[0].value} {old[1]!r} after term {old[2]}",
                )
            prev = e.term

    # -- the state machine ---------------------------------------------------------

    def on_apply(self, node: Node, e: Entry) -> None:
        i = e.index
        if i != node.sm_applied + 1:
            self.fail("apply-order", f"{node.id} applies {i} after {node.sm_applied}")
        app = self.app
        if i < len(app):
            old = app[i]
            if old is None:
                app[i] = e
            elif old.term != e.term or old.data != e.data or old.kind is not e.kind:
                self.fail(
                    "state-machine-safety",
                    f"{node.id} applies {i}@{e.term} {e.data!r}; {i}@{old.term} {old.data!r} "
                    f"was applied elsewhere",
                )
        else:
            app.extend([None] * (i - len(app)))
            app.append(e)

    def on_install(self, node: Node, snap: Snapshot) -> None:
        from .world import decode_sm

        if snap.index < node.sm_applied:
            self.fail(
                "snapshot",
                f"{node.id}: snapshot {snap.index} would roll the state "
                f"machine back from {node.sm_applied}",
            )
        app = self.app
        expected = []
        for i in range(1, snap.index + 1):
            e = app[i] if i < len(app) else None
            if e is None:
                self.fail(
                    "snapshot",
                    f"{node.id}: snapshot {snap.index}@{snap.term} covers "
                    f"index {i}, which no node ever applied",
                )
            if e.kind is COMMAND:
                expected.append((i, e.data))
        if app[snap.index].term != snap.term:
            self.fail(
                "snapshot",
                f"{node.id}: snapshot {snap.index}@{snap.term}, but "
                f"{snap.index}@{app[snap.index].term} was applied",
            )
        last_config = next(
            (app[i] for i in range(snap.index, 0, -1) if app[i].kind is CONFIG), None
        )
        if last_config is not None and (
            not snap.membership
            or Membership.decode(snap.membership) != Membership.decode(last_config.data)
        ):
            self.fail(
                "snapshot",
                f"{node.id}: snapshot {snap.index}@{snap.term} carries membership "
                f"{snap.membership!r}, but the last change it covers, at "
                f"{last_config.index}, is {last_config.data!r}",
            )
        if decode_sm(snap.data) != expected:
            self.fail(
                "snapshot",
                f"{node.id}: snapshot {snap.index}@{snap.term} does not hold "
                f"the commands applied through {snap.index}",
            )

    # -- the client ------------------------------------------------------------------

    def on_read(self, node: Node, rs: ReadState, op: Op) -> None:
        applied = node.sm_applied
        w = self.w
        w._t(
            (
                w.now,
                "read-served",
                node.id,
                ("{} read_index={} state@{}", rs.read_ctx, rs.index, applied),
            )
        )
        if applied < op.ack_floor:
            self.fail(
                "stale-read",
                f"{node.id} serves {rs.read_ctx} (read index {rs.index}) with state through "
                f"{applied}, but the write at {op.ack_floor} was acknowledged before the read "
                f"began at {op.start / 1000:.3f}ms",
            )
        if applied < op.read_floor:
            self.fail(
                "stale-read",
                f"{node.id} serves {rs.read_ctx} (read index {rs.index}) with state through "
                f"{applied}, but an earlier read (finished before this one began) saw "
                f"{op.read_floor}",
            )

    def final_check(self) -> None:
        w = self.w
        for node in w.final_members:  # every member of the last membership
            have = dict(node.sm_cmds)
            for index, term, data in w.acked:
                if have.get(index) != data:
                    self.fail(
                        "durability",
                        f"{node.id} lacks acknowledged {data!r} at {index}@{term} "
                        f"(has {have.get(index)!r}; applied {node.sm_applied})",
                    )
