"""Membership changes in the Raft core: one member at a time, learners, the
own-term rule, one change in flight, the leader removing itself, and the
membership following the log (truncation, snapshots, restarts)."""

from __future__ import annotations

import pytest

from tests.raft_helpers import MT, E, Network, drain, msg, new_core, of_type
from zmqnode.raft import (
    ChangeType,
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Membership,
    MembershipError,
    Refusal,
    Role,
)

ADD, PROMOTE, DEMOTE, REMOVE = (
    ChangeType.ADD_LEARNER,
    ChangeType.PROMOTE,
    ChangeType.DEMOTE,
    ChangeType.REMOVE,
)


def joining(*ids: str, voters=("a", "b", "c"), **cfg) -> Network:
    """a, b, c vote; the other ids start with an empty membership (they join)."""
    bootstrap = {i: Membership.of([]) for i in ids} | {v: Membership.of(voters) for v in voters}
    net = Network((*voters, *ids), bootstrap=bootstrap, **cfg)
    net.elect(voters[0])
    return net


def change(net: Network, leader: str, kind: ChangeType, node: str, **kw):
    result = net[leader].propose_membership(ConfChange(kind, node, **kw))
    net.stabilize()
    return result


def commit_one(net: Network, leader: str) -> bool:
    """Propose a command and settle; True if it committed on the leader."""
    result = net[leader].propose(b"x")
    assert result.accepted
    net.stabilize()
    return net[leader].commit_index >= result.index


# -- the value --------------------------------------------------------------------


def test_membership_applies_one_change_and_round_trips():
    m = Membership.of(["a", "b", "c"])
    assert m.quorum == 2
    m2 = m.apply(ConfChange(ADD, "d", "key-d"))
    assert m2.learners == {"d"} and m2.quorum == 2 and m2.credential("d") == "key-d"
    m3 = m2.apply(ConfChange(PROMOTE, "d"))
    assert m3.voters == {"a", "b", "c", "d"} and m3.quorum == 3
    assert Membership.decode(m3.encode()) == m3
    assert m3.apply(ConfChange(DEMOTE, "a")).learners == {"a"}
    assert "d" not in m3.apply(ConfChange(REMOVE, "d")).members
    assert m3.apply(ConfChange(REMOVE, "d")).credential("d") == ""
    for bad in (
        ConfChange(ADD, "a"),  # already a member
        ConfChange(PROMOTE, "a"),  # a voter already
        ConfChange(REMOVE, "z"),
    ):
        with pytest.raises(MembershipError):
            m.apply(bad)
    with pytest.raises(MembershipError, match="last voter"):
        Membership.of(["a"]).apply(ConfChange(REMOVE, "a"))
    with pytest.raises(MembershipError):
        Membership.decode(b'{"voters": "a"}')


# -- learners -----------------------------------------------------------------------


def test_a_learner_gets_the_log_but_never_votes_nor_counts():
    net = joining("d")
    assert change(net, "a", ADD, "d").accepted
    assert commit_one(net, "a")
    assert net["d"].membership.learners == {"d"}
    assert net["d"].commit_index == net["a"].commit_index  # it follows the log
    # It never campaigns, however long it hears nothing.
    net.isolate("d")
    net.tick(["d"], n=5 * E)
    assert net["d"].role is Role.FOLLOWER and not net.pending(MT.PRE_VOTE, MT.VOTE)
    net.heal()
    # Its acks do not make a quorum: with b and c cut off nothing commits.
    net.partition(["a", "d"], ["b", "c"])
    before = net["a"].commit_index
    net["a"].propose(b"y")
    net.stabilize()
    assert net["a"].commit_index == before
    assert net["d"].last_index == net["a"].last_index  # d stored it all the same


def test_a_learner_is_promoted_only_once_caught_up():
    net = joining("d", promote_max_lag=2)
    change(net, "a", ADD, "d")
    net.isolate("d")
    for _ in range(5):
        commit_one(net, "a")
    refused = net["a"].propose_membership(ConfChange(PROMOTE, "d"))
    assert not refused.accepted and "not caught up" in refused.reason
    assert refused.refusal is Refusal.RETRY
    net.heal()
    net.tick(n=2)  # heartbeats: d catches up
    assert change(net, "a", PROMOTE, "d").accepted
    assert net["a"].membership.voters == {"a", "b", "c", "d"} and net["a"].quorum == 3
    # Now two others must store an entry: with c and d cut off, nothing commits.
    net.partition(["a", "b"], ["c", "d"])
    before = net["a"].commit_index
    net["a"].propose(b"z")
    net.stabilize()
    assert net["a"].commit_index == before


# -- the two safety rules and the guard ----------------------------------------------


def test_no_change_before_the_leader_commits_in_its_term():
    net = Network(("a", "b", "c"))
    net["a"].campaign()
    # Deliver the votes but hold every append: the no-op cannot commit.
    net.stabilize(hold=lambda d, m: m.type is MT.APPEND)
    assert net["a"].is_leader
    refused = net["a"].propose_membership(ConfChange(REMOVE, "c"))
    assert not refused.accepted and "not committed an entry of its term" in refused.reason
    assert refused.refusal is Refusal.RETRY
    net.stabilize()
    assert net["a"].propose_membership(ConfChange(REMOVE, "c")).accepted


def test_one_change_at_a_time_and_the_base_index_guard():
    net = joining("d", "e")
    net.partition(["a"], ["b", "c", "d", "e"])  # nothing can commit
    first = net["a"].propose_membership(ConfChange(ADD, "d"))
    assert first.accepted
    second = net["a"].propose_membership(ConfChange(ADD, "e"))
    assert not second.accepted and "one change at a time" in second.reason
    assert second.refusal is Refusal.RETRY
    net.heal()
    net.stabilize()
    stale = net["a"].propose_membership(ConfChange(ADD, "e"), base_index=0)
    assert not stale.accepted and f"now at {first.index}" in stale.reason
    assert stale.refusal is Refusal.CONFLICT
    assert net["a"].propose_membership(ConfChange(ADD, "e"), base_index=first.index).accepted


# -- removing ----------------------------------------------------------------------------


def test_a_removed_follower_no_longer_counts():
    net = Network(("a", "b", "c"))
    net.elect("a")
    assert change(net, "a", REMOVE, "c").accepted
    assert net["a"].membership.voters == {"a", "b"} and net["a"].peers == ("b",)
    net.isolate("c")
    assert commit_one(net, "a")  # a and b are the whole quorum now
    net.heal()
    # c was removed: it is no longer sent anything.
    net.sent.clear()
    net.tick(n=3)
    assert not [m for d, m in net.sent if d == "c" and m.type is MT.APPEND]


def test_the_leader_removes_itself_leads_until_it_commits_then_hands_over():
    net = Network(("a", "b", "c"))
    net.elect("a")
    result = net["a"].propose_membership(ConfChange(REMOVE, "a"))
    assert result.accepted and net["a"].is_leader  # still leading, not counting itself
    net.stabilize()
    assert net["a"].commit_index >= result.index
    assert net["a"].role is Role.FOLLOWER  # stepped down once the change committed
    assert net.sent_of(MT.TIMEOUT_NOW)  # and handed over at once
    net.stabilize()
    assert net.leaders() in (["b"], ["c"])
    new = net.leaders()[0]
    assert commit_one(net, new)
    net.tick(["a"], n=5 * E)  # a never campaigns again
    assert net["a"].role is Role.FOLLOWER and net.leaders() == [new]


def test_a_leader_that_removed_itself_campaigns_until_the_change_commits():
    """Thesis §4.2.2: a server that is not part of its own latest configuration
    "should still start new elections, as it might still be needed until the
    Cnew entry is committed ... It does not count its own vote".

    Voters a and b; a removes itself and crashes before b stores the change.
    b still counts a, and cannot win without a's vote, which a's longer log
    refuses; only a can bring the change to b. (Found by the simulator in
    membership mode: such a two-voter cluster never elected a leader again.)"""
    net = Network(("a", "b"))
    net.elect("a")
    removal = net["a"].propose_membership(ConfChange(REMOVE, "a"))
    assert removal.accepted
    net.process("a")  # written to a's disk ...
    net.drop()  # ... but the append to b is lost
    net.crash("a")
    net.restart("a")
    assert net["a"].voters == {"b"} and net["b"].voters == {"a", "b"}
    net.tick(["b"], n=3 * E)
    assert net.leaders() == []  # b is refused: a's log is longer
    net.tick(["a"], n=3 * E)  # a campaigns, counting b's vote only, and wins
    assert net.leaders() == ["b"]  # then committed the change and handed over
    assert net["b"].voters == {"b"} and net["b"].commit_index >= removal.index
    assert net["a"].role is Role.FOLLOWER
    assert commit_one(net, "b")


def test_a_demoted_voter_that_knows_the_change_committed_never_campaigns():
    net = Network(("a", "b", "c"))
    net.elect("a")
    demotion = change(net, "a", DEMOTE, "c")
    commit_one(net, "a")
    assert net["c"].membership.learners == {"c"}
    assert net["c"].commit_index >= demotion.index  # c heard that it committed
    net.sent.clear()
    net.tick(["c"], n=5 * E)
    assert not net.sent_of(MT.PRE_VOTE, MT.VOTE)


def test_a_stale_candidate_learns_the_voters_term_from_its_refusal():
    """Figure 2, RequestVote receiver: "Reply false if term < currentTerm", and
    the reply carries currentTerm; §5.1: a server that sees a larger term
    becomes a follower in it. Without pre-vote, this is how a candidate reaches
    a voter whose term went further while it campaigned among the voters of an
    older membership: found by the simulator (--membership, seeds 16720 and
    22026), where in a membership of two voters n4 and n7, n4 still used an
    older one and never wrote to n7, and dropped n7's requests of lower terms;
    no leader was ever elected again."""
    voter = new_core("b", ("a", "c"), hard_state=HardState(5), pre_vote=False)
    candidate = new_core("a", ("b", "c"), hard_state=HardState(2), pre_vote=False)
    candidate.campaign()
    [request] = of_type(drain(candidate).messages, MT.VOTE)[:1]
    assert request.term == 3
    voter.step(msg(MT.VOTE, "a", "b", 3, log_index=0, log_term=0))
    [reply] = drain(voter).messages
    assert (reply.type, reply.term, reply.reject) == (MT.VOTE_RESP, 5, True)
    assert voter.term == 5 and voter.vote == ""
    candidate.step(reply)
    assert candidate.role is Role.FOLLOWER and candidate.term == 5
    candidate.campaign()  # its next election is in a term the voter can grant
    request = next(m for m in drain(candidate).messages if m.type is MT.VOTE and m.dst == "b")
    voter.step(request)
    [grant] = drain(voter).messages
    assert (grant.type, grant.term, grant.reject) == (MT.VOTE_RESP, 6, False)


# -- the membership follows the log ---------------------------------------------------------


def test_a_truncated_config_entry_takes_its_membership_with_it():
    net = Network(("a", "b", "c"))
    # b holds an uncommitted change of term 1 (remove c) that a term-2 leader
    # never had: once c leads and replicates, b's entry goes, and with it the
    # membership it set.
    removal = Entry(2, 1, EntryKind.CONFIG, Membership.of(["a", "b"]).encode())
    net.load("b", term=1, entries=[Entry(1, 1), removal])
    net.load("a", term=2, entries=[Entry(1, 1), Entry(2, 2)])
    net.load("c", term=2, entries=[Entry(1, 1), Entry(2, 2)])
    assert net["b"].membership.voters == {"a", "b"}  # in use, though uncommitted
    net.elect("c")
    net.stabilize()
    assert net["b"].term_at(2) == 2  # its own entry 2@1 was overwritten
    assert net["b"].membership.voters == {"a", "b", "c"}
    assert net["b"].membership_index == 0  # back to the bootstrap membership


def test_a_snapshot_carries_the_membership_to_a_new_learner():
    net = joining("d")
    change(net, "a", REMOVE, "c")
    commit_one(net, "a")
    commit_one(net, "a")
    snap = net.compact("a", net["a"].applied_index)
    assert Membership.decode(snap.membership).voters == {"a", "b"}
    assert change(net, "a", ADD, "d").accepted
    net.tick(n=3)
    assert net["d"].snapshot.index == snap.index  # it was sent the snapshot
    assert net["d"].membership.learners == {"d"}
    assert net["d"].membership.voters == {"a", "b"}


def test_a_restarted_node_reads_its_membership_from_its_log():
    net = joining("d")
    change(net, "a", ADD, "d")
    commit_one(net, "a")
    net.crash("b")
    net.restart("b")
    assert net["b"].membership.learners == {"d"}
    assert any(e.kind is EntryKind.CONFIG for e in net["b"].log_entries())


def test_a_joined_node_grants_no_vote_before_its_log_reaches_its_join():
    import random

    from tests.raft_helpers import config, msg
    from zmqnode.raft import RaftCore

    def joined(floor: int) -> RaftCore:
        return RaftCore("x", ["a", "b"], config(), random.Random(0), vote_floor=floor)

    # Rejoined with a wiped disk at an address that voted before: it must not
    # hand out a vote in a term it forgot, for a candidate counting it under
    # an old membership.
    core = joined(5)
    core.step(msg(MT.VOTE, "a", "x", 3, log_index=2, log_term=1))
    (reply,) = [m for m in core.ready().messages if m.type is MT.VOTE_RESP]
    assert reply.reject and core.vote == ""
    core = joined(0)  # a node that did not join, or whose log passed its join
    core.step(msg(MT.VOTE, "a", "x", 3, log_index=2, log_term=1))
    assert core.vote == "a"
