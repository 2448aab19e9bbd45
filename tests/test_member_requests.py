"""MEMBER_CHANGE's guards on the leader (zmqnode/member_requests.py), with a
fake core and fake peers' status feeds: no node, no sockets."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from zmqnode.member_requests import MemberLinks, MemberRequests
from zmqnode.raft import Membership, ProposeResult
from zmqnode.transport.wire import ErrorCode
from zmqnode.waiting import Admission, Waiters

A, B, C = "127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"


class Reply:
    def __init__(self) -> None:
        self.errors: list[tuple[ErrorCode, str]] = []
        self.waiting = False

    def ok(self, header, blobs=(), **fields: Any) -> None:
        raise AssertionError("answered OK before the change committed")

    def error(self, header, code, message) -> None:
        self.errors.append((code, message))

    def wait(self, header) -> None:
        self.waiting = True


def make(own_missing: int, statuses: dict[str, int]):
    """A leader A of voters A, B, C; ``statuses``: peer -> its models_missing."""
    core = SimpleNamespace(
        id=A,
        is_leader=True,
        leader_id=A,
        voters=frozenset({A, B, C}),
        membership=Membership.of([A, B, C]),
        membership_index=1,
        commit_index=5,
    )
    now = time.monotonic()
    proposed: list[Any] = []

    def propose(change, base, done):
        proposed.append(change)
        return ProposeResult(True, 6, 2)

    links = MemberLinks(
        core=core,  # type: ignore[arg-type]
        last_heard={},
        peer_status={
            peer: (now, {"applied_index": 5, "models_missing": missing})
            for peer, missing in statuses.items()
        },
        propose=propose,
        redirect=lambda header, reply: None,
        request_timeout=lambda header: 5.0,
        own_models_missing=lambda: own_missing,
    )
    admission = Admission(A, 100, 1 << 30, lambda: 0, lambda: 0, lambda reason: None)
    return MemberRequests(links, Waiters(), admission), proposed


def change(requests: MemberRequests, kind: str, node: str) -> Reply:
    reply = Reply()
    requests.handle_change(
        {"id": "r1", "type": "MEMBER_CHANGE", "change": kind, "node": node}, [], reply
    )
    return reply


@pytest.mark.parametrize("kind", ["remove", "demote"])
def test_a_voter_that_may_hold_the_only_copy_of_a_file_is_not_removed(kind):
    # The leader and C are still fetching files: B may hold the only copy.
    requests, proposed = make(own_missing=2, statuses={B: 0, C: 1})
    reply = change(requests, kind, B)
    assert not proposed
    assert reply.errors and reply.errors[0][0] is ErrorCode.BUSY
    assert "every model file" in reply.errors[0][1]


@pytest.mark.parametrize(
    ("own_missing", "statuses", "leaving"),
    [
        (0, {B: 3, C: 3}, B),  # the leader itself holds every file
        (2, {B: 0, C: 1}, C),  # B, staying on, holds every file
        (0, {B: 1, C: 0}, A),  # the leader removes itself; C holds every file
    ],
)
def test_a_voter_leaves_when_another_voter_holds_every_file(own_missing, statuses, leaving):
    requests, proposed = make(own_missing, statuses)
    reply = change(requests, "remove", leaving)
    assert [c.node for c in proposed] == [leaving] and reply.waiting and not reply.errors


def test_the_leader_removing_itself_needs_another_voter_with_every_file():
    requests, proposed = make(own_missing=0, statuses={B: 1, C: 2})
    reply = change(requests, "remove", A)
    assert not proposed and reply.errors[0][0] is ErrorCode.BUSY
