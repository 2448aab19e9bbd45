"""MEMBERS, MEMBER_CHANGE and JOIN: changing the cluster while it runs
(docs/PROTOCOL.md §5.8–5.10; the Raft side is raft/membership.py).

All three are the leader's: a follower answers REDIRECT. A change is
answered once its CONFIG entry is committed. Every request is idempotent by
its effect: asking for the state the membership is already in is answered
OK at once, so a retry after a lost reply does no harm. The core's refusals
map to codes a client can act on: BUSY (retry: the leader has not committed
in its term yet, another change is in flight, a learner is not caught up, a
leaving voter may hold the only copy of a model file), CONFLICT
(``base_index`` is no longer the latest membership: read it again),
BAD_INPUT (the change does not apply, e.g. removing the last voter).

Who may JOIN: any client the client port admits (with ``--client-auth
curve``, only the allowed client keys). A learner receives the whole log,
which such a client can already read model by model; it never votes until
an operator promotes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .members import member_views
from .raft import ChangeType, ConfChange, ProposeResult, RaftCore, Refusal
from .replies import Header, Replier
from .transport.addresses import format_address, parse_address
from .transport.wire import ErrorCode, ProtocolError
from .waiting import Admission, Waiters

log = logging.getLogger("zmqnode.members")

CHANGES = {
    "add_learner": ChangeType.ADD_LEARNER,
    "promote": ChangeType.PROMOTE,
    "demote": ChangeType.DEMOTE,
    "remove": ChangeType.REMOVE,
}
# A CURVE public key in z85 is 40 characters.
CREDENTIAL_CHARS = 40
# A learner's status feed (5 a second) older than this is no proof of its files.
STATUS_FRESH_SECONDS = 3.0


@dataclass(frozen=True)
class MemberLinks:
    """What these requests may use of the node."""

    core: RaftCore  # read only here: membership, progress, indexes
    last_heard: Mapping[str, float]
    # peer -> (time.monotonic() received, its last status feed message)
    peer_status: Mapping[str, tuple[float, Mapping[str, Any]]]
    # (change, base_index, on_done(applied)) -> the core's answer
    propose: Callable[[ConfChange, int | None, Callable[[bool], None]], ProposeResult]
    redirect: Callable[[Header, Replier], None]  # REDIRECT, or NOT_LEADER with none known
    request_timeout: Callable[[Header], float]
    own_models_missing: Callable[[], int]  # committed models whose file is not here (yet)


class MemberRequests:
    """Serves MEMBERS, MEMBER_CHANGE and JOIN (module docstring)."""

    def __init__(self, links: MemberLinks, waiters: Waiters, admission: Admission) -> None:
        self.links = links
        self.waiters = waiters
        self.admission = admission

    def handlers(self) -> dict[str, Callable[[Header, list[Any], Replier], None]]:
        return {
            "MEMBERS": self.handle_members,
            "MEMBER_CHANGE": self.handle_change,
            "JOIN": self.handle_join,
        }

    def handle_members(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        core = self.links.core
        if not core.is_leader:
            self.links.redirect(header, reply)
            return
        reply.ok(header, **self._listing())

    def handle_change(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        kind = header.get("change")
        if kind not in CHANGES:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"'change' must be one of {', '.join(CHANGES)}, got {kind!r:.40}",
                header=header,
            )
        node = _node_address(header)
        credential = _credential(header)
        base = header.get("base_index")
        if base is not None and (not isinstance(base, int) or isinstance(base, bool) or base < 0):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "'base_index' must be a non-negative integer", header=header
            )
        self._change(header, reply, ConfChange(CHANGES[kind], node, credential), base)

    def handle_join(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        node = _node_address(header)
        credential = _credential(header)
        self._change(header, reply, ConfChange(ChangeType.ADD_LEARNER, node, credential), None)

    # -- helpers -------------------------------------------------------------------

    def _change(self, header: Header, reply: Replier, change: ConfChange, base: int | None) -> None:
        core = self.links.core
        if not core.is_leader:
            self.links.redirect(header, reply)
            return
        if _already(core, change):
            if core.membership_index <= core.commit_index:
                reply.ok(header, **self._listing())
                return
            # In the latest membership but not committed yet: a later retry
            # (same id) is answered once it is.
            reply.error(
                header,
                ErrorCode.BUSY,
                f"the membership change at index {core.membership_index} has not "
                "committed yet; retry",
            )
            return
        if change.type is ChangeType.PROMOTE:
            missing = self._files_missing(change.node)
            if missing:
                reply.error(header, ErrorCode.BUSY, missing)
                return
        if change.type in (ChangeType.REMOVE, ChangeType.DEMOTE) and change.node in core.voters:
            if not self._other_voter_has_every_file(change.node):
                reply.error(
                    header,
                    ErrorCode.BUSY,
                    f"no voter other than {change.node} reports every model file yet "
                    "(the others are still fetching); retry once they have them",
                )
                return
        self.admission.admit(header)
        waiter = self.waiters.park(
            self.links.request_timeout(header),
            lambda: None,
            lambda: reply.error(
                header,
                ErrorCode.TIMEOUT,
                f"the membership change was not committed in time on {core.id} "
                "(no quorum?); retry with the same request id",
            ),
        )

        def done(applied: bool) -> None:
            if self.waiters.settle(waiter) is None:
                return
            if applied:
                log.info("membership change committed: %s %s", change.type.value, change.node)
                reply.ok(header, **self._listing())
            else:
                reply.error(
                    header,
                    ErrorCode.NOT_LEADER,
                    f"{core.id} lost leadership before the change committed; retry",
                )

        result = self.links.propose(change, base, done)
        if result.accepted:
            reply.wait(header)
            return
        self.waiters.settle(waiter)
        refusal, reason = result.refusal, result.reason
        if refusal is Refusal.NOT_LEADER:
            self.links.redirect(header, reply)
        elif refusal is Refusal.CONFLICT:
            reply.error(header, ErrorCode.CONFLICT, reason)
        elif refusal in (Refusal.RETRY, Refusal.TRANSFERRING):
            reply.error(header, ErrorCode.BUSY, reason)
        else:
            reply.error(header, ErrorCode.BAD_INPUT, reason)

    def _files_missing(self, node: str) -> str:
        """Why ``node`` cannot vote yet for lack of model files ("" if it can):
        a voter promoted before it holds every file could be the last copy's
        holder after the next replacement, without the file."""
        received, status = self.links.peer_status.get(node, (0.0, {}))
        if time.monotonic() - received > STATUS_FRESH_SECONDS:
            return f"no recent status from {node} (it reports its model files); retry"
        applied, latest = status.get("applied_index"), self.links.core.membership_index
        if not isinstance(applied, int) or applied < latest:
            # It has not even applied the entry that made it a learner: it
            # cannot know which model files it lacks yet.
            return f"{node} has applied up to {applied}, not yet {latest}; retry"
        missing = status.get("models_missing")
        if not isinstance(missing, int) or missing > 0:
            return f"{node} is still fetching {missing} model file(s); retry once it has them"
        return ""

    def _other_voter_has_every_file(self, leaving: str) -> bool:
        """Whether a voter staying on holds every model file: a voter that
        leaves may hold the only copy of a file the others are still fetching
        (after a snapshot, files travel by FETCH, not in the log)."""
        core = self.links.core
        if core.id != leaving and self.links.own_models_missing() == 0:
            return True
        return any(
            voter not in (leaving, core.id) and not self._files_missing(voter)
            for voter in core.voters
        )

    def _listing(self) -> dict[str, Any]:
        core = self.links.core
        return {
            "members": member_views(core, self.links.last_heard),
            "membership_index": core.membership_index,
            "committed": core.membership_index <= core.commit_index,
            "membership": core.membership.encode().decode(),
            "leader": core.leader_id or None,
        }


def _already(core: RaftCore, change: ConfChange) -> bool:
    """Whether the latest membership is already what ``change`` asks for."""
    m, node = core.membership, change.node
    return {
        ChangeType.ADD_LEARNER: node in m.members,
        ChangeType.PROMOTE: node in m.voters,
        ChangeType.DEMOTE: node in m.learners,
        ChangeType.REMOVE: node not in m.members,
    }[change.type]


def _node_address(header: Header) -> str:
    value = header.get("node")
    try:
        if not isinstance(value, str):
            raise ValueError("missing")
        return format_address(*parse_address(value))
    except ValueError:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"'node' must be a member's address host:port, got {value!r:.60}",
            header=header,
        ) from None


def _credential(header: Header) -> str:
    value = header.get("credential", "")
    if not isinstance(value, str) or (value and len(value) != CREDENTIAL_CHARS):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"'credential' must be a z85 CURVE public key of {CREDENTIAL_CHARS} characters",
            header=header,
        )
    return value
