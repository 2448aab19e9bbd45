"""Who is in the cluster, and how that changes: one member at a time.

A ``Membership`` names the **voters** (they elect leaders and form every
quorum) and the **learners** (they receive the log and snapshots, so they
can serve reads and predictions, but never vote or count toward a quorum),
with an opaque credential per member (the node puts each member's CURVE
public key there, so its allow-list follows the configuration).

Changes are log entries of kind ``CONFIG`` whose data is the whole new
membership, and a member uses the latest one in its log as soon as it is
appended, committed or not (Ongaro's thesis §4.1). Each change adds, removes,
promotes or demotes **one** member (``ConfChange``), so any majority of the
old voters and any majority of the new ones overlap and no two leaders can be
elected for one term. Why single-server steps rather than joint consensus
(thesis §4.3, etcd's ConfChangeV2): they need no second configuration in
flight and no special commit rule, every change a user asks for here (add,
remove, replace a machine, promote a learner) is a sequence of them, and the
two rules that make them safe are local to the leader (``RaftCore``):

- a leader proposes a change only once it has committed an entry of its own
  term (the 2015 fix to the single-server algorithm: without it, changes
  proposed by leaders of different terms can commit with disjoint
  majorities);
- at most one change is in flight: the next waits until the previous one
  commits. A change also names the configuration it was based on (its log
  index, like hashicorp/raft's ``prevIndex``) and is refused if that is no
  longer the latest.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class MembershipError(ValueError):
    """A change that cannot apply to this membership (the message says why)."""


class ChangeType(enum.Enum):
    ADD_LEARNER = "add_learner"  # a new member that does not vote (yet)
    PROMOTE = "promote"  # a learner becomes a voter (once caught up)
    DEMOTE = "demote"  # a voter becomes a learner
    REMOVE = "remove"  # a member (voter or learner) leaves


@dataclass(frozen=True, slots=True)
class ConfChange:
    """One step: ``type`` applied to ``node``; ``credential`` for ADD_LEARNER."""

    type: ChangeType
    node: str
    credential: str = ""


@dataclass(frozen=True, slots=True)
class Membership:
    """Voters, learners and each member's credential; immutable."""

    voters: frozenset[str]
    learners: frozenset[str] = frozenset()
    credentials: tuple[tuple[str, str], ...] = ()  # (node, credential), sorted by node

    def __post_init__(self) -> None:
        if self.voters & self.learners:
            raise MembershipError(
                f"{sorted(self.voters & self.learners)} cannot be both voter and learner"
            )
        unknown = {node for node, _ in self.credentials} - self.members
        if unknown:
            raise MembershipError(f"credentials for non-members {sorted(unknown)}")

    @classmethod
    def of(
        cls,
        voters: Iterable[str],
        learners: Iterable[str] = (),
        credentials: Mapping[str, str] | None = None,
    ) -> Membership:
        return cls(
            frozenset(voters),
            frozenset(learners),
            tuple(sorted((credentials or {}).items())),
        )

    @property
    def members(self) -> frozenset[str]:
        return self.voters | self.learners

    @property
    def quorum(self) -> int:
        """Votes (or stored copies) a decision needs: a majority of the voters."""
        return len(self.voters) // 2 + 1

    def credential(self, node: str) -> str:
        return dict(self.credentials).get(node, "")

    def apply(self, change: ConfChange) -> Membership:
        """This membership with ``change`` made; MembershipError if it cannot be."""
        node, creds = change.node, dict(self.credentials)
        voters, learners = set(self.voters), set(self.learners)
        if change.type is ChangeType.ADD_LEARNER:
            if node in self.members:
                raise MembershipError(f"{node} is already a member")
            learners.add(node)
            if change.credential:
                creds[node] = change.credential
        elif change.type is ChangeType.PROMOTE:
            if node not in self.learners:
                raise MembershipError(f"{node} is not a learner: only a learner can be promoted")
            learners.discard(node)
            voters.add(node)
        elif change.type is ChangeType.DEMOTE:
            if node not in self.voters:
                raise MembershipError(f"{node} is not a voter")
            if len(self.voters) == 1:
                raise MembershipError("cannot demote the last voter")
            voters.discard(node)
            learners.add(node)
        else:
            if node not in self.members:
                raise MembershipError(f"{node} is not a member")
            if self.voters == {node}:
                raise MembershipError("cannot remove the last voter")
            voters.discard(node)
            learners.discard(node)
            creds.pop(node, None)
        return Membership.of(voters, learners, creds)

    def encode(self) -> bytes:
        """Deterministic JSON (the CONFIG entry's and the snapshot's bytes)."""
        return json.dumps(
            {
                "voters": sorted(self.voters),
                "learners": sorted(self.learners),
                "credentials": dict(self.credentials),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Membership:
        """Raises MembershipError for bytes that are not an encoded membership."""
        try:
            doc = json.loads(data)
            voters, learners = doc["voters"], doc["learners"]
            creds = doc.get("credentials", {})
            ok = (
                isinstance(voters, list)
                and isinstance(learners, list)
                and isinstance(creds, dict)
                and all(isinstance(n, str) for n in (*voters, *learners, *creds, *creds.values()))
            )
        except (ValueError, TypeError, KeyError):
            ok = False
        if not ok:
            raise MembershipError(f"not an encoded membership: {bytes(data)[:80]!r}")
        return cls.of(voters, learners, creds)
