"""The Raft rules, one behaviour per test, in the style of etcd-io/raft's
raft_paper_test.go.

Each docstring quotes the sentence of the Raft paper (Ongaro & Ousterhout,
"In Search of an Understandable Consensus Algorithm", 2014; "§5.x", "Figure N")
or of Ongaro's thesis ("Consensus: Bridging Theory and Practice", 2014;
"thesis §x.y") that the test checks. Tests drive single cores with hand-made
messages, or a few cores through ``tests.raft_helpers.Network`` where every
delivery, loss, tick, crash and restart is explicit. Nothing sleeps.
"""

from __future__ import annotations

import pytest

from tests.raft_helpers import (
    MT,
    E,
    Network,
    drain,
    ents,
    make_leader,
    msg,
    new_core,
    of_type,
    terms_of,
    tick_n,
    ticks_until,
)
from zmqnode.raft import (
    BROADCAST,
    Entry,
    EntryKind,
    HardState,
    RaftCore,
    ReadState,
    Role,
    Snapshot,
)
from zmqnode.raft.progress import SNAPSHOT_RETRY_HEARTBEATS, ProgressState


def follower(
    term: int = 1,
    entries=(),
    leader: str | None = None,
    seed: int = 0,
    **cfg,
) -> RaftCore:
    """Node "a" of {a, b, c}, a follower at ``term`` (optionally following ``leader``)."""
    core = new_core("a", ("b", "c"), seed=seed, hard_state=HardState(term), entries=entries, **cfg)
    if leader:
        core.step(msg(MT.HEARTBEAT, leader, BROADCAST, term))
        drain(core)
    return core


def pre_candidate(**cfg) -> RaftCore:
    core = follower(**cfg)
    core.campaign()
    drain(core)
    assert core.role is Role.PRE_CANDIDATE
    return core


def candidate(**cfg) -> RaftCore:
    core = follower(pre_vote=False, **cfg)
    core.campaign()
    drain(core)
    assert core.role is Role.CANDIDATE
    return core


def leader(**cfg) -> RaftCore:
    core = follower(**cfg)
    make_leader(core)
    return core


def append(src: str, term: int, prev: tuple[int, int], entries=(), commit: int = 0, dst="a"):
    return msg(
        MT.APPEND,
        src,
        dst,
        term,
        log_index=prev[0],
        log_term=prev[1],
        entries=tuple(entries),
        commit=commit,
    )


def vote(src: str, term: int, last: tuple[int, int] = (0, 0), pre: bool = False, **kw):
    mtype = MT.PRE_VOTE if pre else MT.VOTE
    return msg(mtype, src, "a", term, log_index=last[0], log_term=last[1], **kw)


def granted(messages, mtype=MT.VOTE_RESP):
    return [m for m in of_type(messages, mtype) if not m.reject]


def rejected(messages, mtype=MT.VOTE_RESP):
    return [m for m in of_type(messages, mtype) if m.reject]


# ==================================================================================
# §5.1 Terms
# ==================================================================================


@pytest.mark.parametrize(
    "mtype, fields, new_leader",
    [
        (MT.APPEND, {}, "b"),
        (MT.HEARTBEAT, {}, "b"),
        (MT.VOTE, {}, ""),
        (MT.VOTE_RESP, {"reject": True}, ""),
        (MT.APPEND_RESP, {}, ""),
        (MT.HEARTBEAT_RESP, {}, ""),
    ],
)
def test_follower_updates_term_from_higher_term_message(mtype, fields, new_leader):
    """§5.1: "Current terms are exchanged whenever servers communicate; if one
    server's current term is smaller than the other's, then it updates its
    current term to the larger value." The new term is persisted (Figure 2:
    currentTerm is persistent state) in the same Ready as any reply.
    """
    core = follower(term=1)
    core.step(msg(mtype, "b", "a", 3, **fields))
    assert (core.term, core.role, core.leader_id) == (3, Role.FOLLOWER, new_leader)
    rd = drain(core)
    assert rd.hard_state is not None and rd.hard_state.term == 3


def test_stale_term_append_is_rejected_with_current_term():
    """§5.1: "If a server receives a request with a stale term number, it rejects
    the request." The reply carries our term so that the stale leader learns
    it has been deposed.
    """
    core = follower(term=3, entries=ents(1, 1))
    core.step(append("b", 2, prev=(2, 1), entries=ents(2, start=3), commit=2))
    rd = drain(core)
    assert terms_of(core.log_entries()) == [1, 1]
    assert core.commit_index == 0 and core.leader_id == ""
    [reply] = rd.messages
    assert (reply.type, reply.dst, reply.term) == (MT.APPEND_RESP, "b", 3)


def test_stale_term_heartbeat_neither_commits_nor_resets_election_timer():
    """§5.1: a stale request is rejected; §5.2: "A server remains in follower
    state as long as it receives valid RPCs from a leader or candidate" — a
    stale leader's heartbeat is not valid and must not hold back an election.
    """
    core = follower(term=3, entries=ents(1, 1))
    tick_n(core, core.randomized_timeout - 1)
    core.step(msg(MT.HEARTBEAT, "b", BROADCAST, 2, commit=2, context=7))
    rd = drain(core)
    assert core.commit_index == 0
    assert [(m.type, m.term) for m in rd.messages] == [(MT.HEARTBEAT_RESP, 3)]
    core.tick()
    assert core.role is Role.PRE_CANDIDATE


def test_stale_term_vote_request_is_not_granted():
    """§5.1: "If a server receives a request with a stale term number, it rejects
    the request." (Figure 2, RequestVote receiver 1: "Reply false if term <
    currentTerm".)
    """
    core = follower(term=3)
    core.step(vote("b", 2))
    core.step(vote("b", 2, pre=True))
    rd = drain(core)
    assert core.vote == "" and core.term == 3
    assert granted(rd.messages, MT.VOTE_RESP) == granted(rd.messages, MT.PRE_VOTE_RESP) == []


@pytest.mark.parametrize("make", [leader, candidate, pre_candidate], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "mtype", [MT.APPEND, MT.HEARTBEAT, MT.APPEND_RESP, MT.HEARTBEAT_RESP, MT.VOTE_RESP]
)
def test_leader_and_candidates_step_down_on_higher_term(make, mtype):
    """§5.1: "If a candidate or leader discovers that its term is out of date, it
    immediately reverts to follower state." (Figure 2, all servers: "If RPC
    request or response contains term T > currentTerm: set currentTerm = T,
    convert to follower".)
    """
    core = make()
    higher = core.term + 2
    fields = {"reject": True} if mtype is MT.VOTE_RESP else {}
    core.step(msg(mtype, "b", "a", higher, **fields))
    assert (core.role, core.term) == (Role.FOLLOWER, higher)
    assert core.leader_id == ("b" if mtype in (MT.APPEND, MT.HEARTBEAT) else "")


# ==================================================================================
# §5.2 Leader election
# ==================================================================================


def test_follower_starts_election_after_election_timeout():
    """§5.2: "If a follower receives no communication over a period of time called
    the election timeout, then it assumes there is no viable leader and begins
    an election ... a follower increments its current term and transitions to
    candidate state. It then votes for itself and issues RequestVote RPCs in
    parallel to each of the other servers in the cluster."
    """
    core = follower(term=1, entries=ents(1, 1), pre_vote=False)
    tick_n(core, core.randomized_timeout - 1)
    assert core.role is Role.FOLLOWER
    core.tick()
    assert (core.role, core.term, core.vote) == (Role.CANDIDATE, 2, "a")
    rd = drain(core)
    reqs = of_type(rd.messages, MT.VOTE)
    assert sorted(m.dst for m in reqs) == ["b", "c"]
    assert all((m.term, m.log_index, m.log_term) == (2, 2, 1) for m in reqs)


def test_follower_starts_pre_election_after_election_timeout_without_touching_term():
    """Thesis §9.6: "In the Pre-Vote algorithm, a candidate only increments its
    term if it first learns from a majority of the cluster that they would be
    willing to grant the candidate their votes." The pre-vote asks for the term
    it would use (term + 1) while the node's own term and vote stay as they are.
    """
    core = follower(term=4, entries=ents(1, 4))
    ticks_until(core, lambda c: c.role is not Role.FOLLOWER)
    assert (core.role, core.term, core.vote) == (Role.PRE_CANDIDATE, 4, "")
    rd = drain(core)
    assert rd.hard_state is None  # nothing changed that must be persisted
    reqs = of_type(rd.messages, MT.PRE_VOTE)
    assert sorted(m.dst for m in reqs) == ["b", "c"]
    assert all((m.term, m.log_index, m.log_term) == (5, 2, 4) for m in reqs)


def test_candidate_persists_self_vote_in_the_same_ready_as_its_vote_requests():
    """Figure 2: currentTerm and votedFor are "Persistent state on all servers
    (Updated on stable storage before responding to RPCs)". The core cannot do
    I/O, so the new term/vote and the RequestVotes come out in one Ready, whose
    contract is: persist hard_state first, then send messages.
    """
    core = follower(term=1)
    core.campaign()
    rd = core.ready()
    assert of_type(rd.messages, MT.PRE_VOTE) and rd.hard_state is None
    core.advance(rd)
    for peer in ("b", "c"):
        core.step(msg(MT.PRE_VOTE_RESP, peer, "a", 2))
    rd = core.ready()
    assert of_type(rd.messages, MT.VOTE)
    assert rd.hard_state == HardState(2, "a")
    core.advance(rd)
    assert core.ready().hard_state is None  # persisted once, not again


def test_vote_grant_is_persisted_in_the_same_ready_as_the_reply():
    """Figure 2: votedFor is updated on stable storage before responding to RPCs,
    otherwise a crash and restart could let the server vote twice in a term.
    """
    core = follower(term=1)
    core.step(vote("b", 2))
    rd = core.ready()
    assert granted(rd.messages) and rd.hard_state == HardState(2, "b")


def test_vote_granted_in_a_term_already_persisted_is_persisted_too():
    """Figure 2: votedFor is persistent state in its own right, not only when
    currentTerm changes. The follower learns term 2 from a candidate whose log
    is behind (rejected; term 2 written with no vote), then grants c's vote in
    term 2: that Ready must carry the vote, or a restart would let it vote again.
    """
    core = follower(term=1, entries=ents(1))
    core.step(vote("b", 2, last=(0, 0)))
    rd = drain(core)
    assert rejected(rd.messages) and rd.hard_state == HardState(2, "")
    core.step(vote("c", 2, last=(1, 1)))
    rd = core.ready()
    assert granted(rd.messages) and rd.hard_state == HardState(2, "c")


def test_vote_granted_at_most_once_per_term():
    """§5.2: "Each server will vote for at most one candidate in a given term, on
    a first-come-first-served basis." A repeated request from the same
    candidate (a retransmission) is granted again.
    """
    core = follower(term=1)
    core.step(vote("b", 2))
    core.step(vote("c", 2))
    core.step(vote("b", 2))
    rd = drain(core)
    answers = [(m.dst, m.reject) for m in of_type(rd.messages, MT.VOTE_RESP)]
    assert answers == [("b", False), ("c", True), ("b", False)]
    assert core.vote == "b"


def test_vote_granted_again_in_a_later_term():
    """§5.2: "at most one candidate in a given term" — per term: Figure 2 resets
    votedFor with each new currentTerm, so a server votes again in a later term.
    """
    core = follower(term=1)
    core.step(vote("b", 2))
    core.step(vote("c", 3))
    rd = drain(core)
    assert [m.dst for m in granted(rd.messages)] == ["b", "c"]
    assert (core.term, core.vote) == (3, "c")


@pytest.mark.parametrize(
    "cand_last, grant",
    [
        ((1, 1), False),  # lower last term
        ((3, 1), False),  # lower last term, longer log
        ((1, 2), False),  # same last term, shorter
        ((2, 2), True),  # same last term, same length
        ((5, 2), True),  # same last term, longer
        ((1, 3), True),  # higher last term, shorter
    ],
)
@pytest.mark.parametrize("pre", [False, True], ids=["vote", "pre_vote"])
def test_vote_requires_candidate_log_at_least_as_up_to_date(cand_last, grant, pre):
    """§5.4.1: "the voter denies its vote if its own log is more up-to-date than
    that of the candidate ... If the logs have last entries with different
    terms, then the log with the later term is more up-to-date. If the logs end
    with the same term, then whichever log is longer is more up-to-date."
    Pre-votes apply the same check (thesis §9.6).
    """
    core = follower(term=2, entries=ents(1, 2))
    core.step(vote("b", 3, last=cand_last, pre=pre))
    rd = drain(core)
    resp = MT.PRE_VOTE_RESP if pre else MT.VOTE_RESP
    assert bool(granted(rd.messages, resp)) is grant
    assert bool(rejected(rd.messages, resp)) is not grant


@pytest.mark.parametrize(
    "size, votes, outcome",
    [
        (1, {}, Role.LEADER),
        (3, {"p1": True}, Role.LEADER),
        (3, {"p1": True, "p2": True}, Role.LEADER),
        (3, {"p1": False}, Role.CANDIDATE),
        (3, {"p1": False, "p2": False}, Role.FOLLOWER),
        (5, {"p1": True}, Role.CANDIDATE),
        (5, {"p1": True, "p2": True}, Role.LEADER),
        (5, {"p1": False, "p2": False}, Role.CANDIDATE),
        (5, {"p1": False, "p2": False, "p3": False}, Role.FOLLOWER),
        (5, {"p1": True, "p2": False, "p3": False, "p4": True}, Role.LEADER),
        (4, {"p1": True}, Role.CANDIDATE),  # 2 of 4 is not a majority
        (4, {"p1": True, "p2": True}, Role.LEADER),
    ],
)
def test_candidate_wins_only_with_votes_from_a_majority(size, votes, outcome):
    """§5.2: "A candidate wins an election if it receives votes from a majority of
    the servers in the full cluster for the same term." It counts its own vote;
    a majority of rejections ends the election as a follower.
    """
    peers = [f"p{i}" for i in range(1, size)]
    core = new_core("a", peers, pre_vote=False)
    core.campaign()
    drain(core)
    for peer, grant in votes.items():
        core.step(msg(MT.VOTE_RESP, peer, "a", 1, reject=not grant))
    assert core.role is outcome
    assert core.term == 1


def test_duplicate_vote_from_the_same_peer_counts_once():
    """§5.2: a candidate needs "votes from a majority of the servers": a retransmitted
    grant from the same server is still one server.
    """
    core = new_core("a", ["b", "c", "d", "e"], pre_vote=False)
    core.campaign()
    for _ in range(3):
        core.step(msg(MT.VOTE_RESP, "b", "a", 1))
    assert core.role is Role.CANDIDATE


@pytest.mark.parametrize("mtype", [MT.APPEND, MT.HEARTBEAT])
def test_candidate_returns_to_follower_on_append_from_leader_of_its_term(mtype):
    """§5.2: "While waiting for votes, a candidate may receive an AppendEntries
    RPC from another server claiming to be leader. If the leader's term ... is
    at least as large as the candidate's current term, then the candidate
    recognizes the leader as legitimate and returns to follower state."
    """
    core = candidate()
    core.step(msg(mtype, "b", "a", core.term))
    assert (core.role, core.term, core.leader_id) == (Role.FOLLOWER, 2, "b")
    assert core.vote == "a"  # still voted for itself in this term


def test_candidate_rejects_append_from_stale_term_and_continues():
    """§5.2: "If the term in the RPC is smaller than the candidate's current
    term, then the candidate rejects the RPC and continues in candidate state."
    """
    core = candidate()
    core.step(append("b", core.term - 1, prev=(0, 0), entries=ents(1)))
    rd = drain(core)
    assert (core.role, core.term) == (Role.CANDIDATE, 2)
    assert core.log_entries() == ()
    assert [(m.type, m.term) for m in rd.messages] == [(MT.APPEND_RESP, 2)]


def test_split_vote_is_resolved_by_a_new_election_in_a_higher_term():
    """§5.2: "if many followers become candidates at the same time, votes could be
    split so that no candidate obtains a majority. When this happens, each
    candidate will time out and start a new election by incrementing its term"
    — and because "election timeouts are chosen randomly", one of them times
    out first and wins.
    """
    net = Network(seed=3)
    net.crash("c")
    net["a"].campaign()
    net["b"].campaign()
    net.stabilize()
    a, b = net["a"], net["b"]
    assert (a.role, b.role, a.term, b.term) == (Role.CANDIDATE, Role.CANDIDATE, 1, 1)
    assert a.randomized_timeout != b.randomized_timeout
    first = "a" if a.randomized_timeout < b.randomized_timeout else "b"
    for _ in range(2 * E):
        net.tick(["a", "b"])
        if net.leaders():
            break
    assert net.leaders() == [first]
    assert a.term == b.term == 2


def test_randomized_election_timeout_is_within_e_and_2e():
    """§5.2: "election timeouts are chosen randomly from a fixed interval (e.g.,
    150-300ms)" — here [election_ticks, 2 * election_ticks), and every value of
    that interval actually occurs.
    """
    seen = set()
    for seed in range(200):
        core = follower(term=1, seed=seed)
        n = ticks_until(core, lambda c: c.role is not Role.FOLLOWER)
        assert E <= n < 2 * E
        seen.add(n)
    assert seen == set(range(E, 2 * E))


def test_election_timeout_is_redrawn_for_each_new_term():
    """§5.2: "each candidate restarts its randomized election timeout at the start
    of an election, and it waits for that timeout to elapse before starting the
    next election" — a fresh random draw each time, not one fixed per node.
    """
    core = follower(term=1, seed=3, pre_vote=False)
    drawn = set()
    for _ in range(30):
        drawn.add(ticks_until(core, lambda c: c.role is Role.CANDIDATE and c.election_elapsed == 0))
    assert len(drawn) > 1


def test_granting_a_vote_resets_the_election_timer():
    """§5.2: "A server remains in follower state as long as it receives valid RPCs
    from a leader or candidate."
    """
    core = follower(term=1, pre_vote=False)
    timeout = core.randomized_timeout
    tick_n(core, timeout - 1)
    core.step(vote("b", 1))
    assert granted(drain(core).messages)
    tick_n(core, timeout - 1)
    assert core.role is Role.FOLLOWER
    core.tick()
    assert core.role is Role.CANDIDATE


def test_follower_hearing_heartbeats_never_starts_an_election():
    """§5.2: "Leaders send periodic heartbeats ... to all followers in order to
    maintain their authority."
    """
    core = follower(term=1)
    for _ in range(5 * E):
        core.tick()
        core.step(msg(MT.HEARTBEAT, "b", BROADCAST, 1))
    assert (core.role, core.term, core.leader_id) == (Role.FOLLOWER, 1, "b")


def test_new_leader_appends_a_noop_of_its_term_and_replicates_it():
    """§8: "Raft handles this by having each leader commit a blank no-op entry
    into the log at the start of its term." §5.2: "Once a candidate wins an
    election, it becomes leader. It then sends heartbeat messages to all of the
    other servers to establish its authority."
    """
    core = follower(term=2, entries=ents(1, 2))
    rd = make_leader(core)
    assert core.term == 3
    assert rd.entries == [Entry(3, 3, EntryKind.NOOP)]
    apps = of_type(rd.messages, MT.APPEND)
    assert sorted(m.dst for m in apps) == ["b", "c"]
    for m in apps:
        assert (m.term, m.log_index, m.log_term) == (3, 2, 2)
        assert m.entries == (Entry(3, 3, EntryKind.NOOP),)


def test_leader_broadcasts_heartbeat_every_heartbeat_ticks():
    """§5.2: "Leaders send periodic heartbeats ... to all followers". Here one
    BROADCAST per heartbeat_ticks carrying the term, the commit index and a
    fresh sequence number.
    """
    core = follower(term=1, heartbeat_ticks=3, check_quorum=False)
    make_leader(core)
    beats = []
    for t in range(1, 13):
        core.tick()
        for m in of_type(drain(core).messages, MT.HEARTBEAT):
            beats.append((t, m))
    assert [t for t, _ in beats] == [3, 6, 9, 12]
    assert all(m.dst == BROADCAST and m.term == 2 for _, m in beats)
    assert all(m.commit == core.commit_index for _, m in beats)
    seqs = [m.context for _, m in beats]
    assert seqs == sorted(set(seqs))


def test_follower_answers_heartbeat_echoing_its_sequence_number():
    """§5.2 heartbeats are AppendEntries RPCs and are answered; the answer echoes
    the heartbeat's sequence number, which check-quorum (thesis §6.2) and
    ReadIndex (thesis §6.4) count.
    """
    core = follower(term=1)
    core.step(msg(MT.HEARTBEAT, "b", BROADCAST, 1, context=42))
    [reply] = drain(core).messages
    assert (reply.type, reply.dst, reply.term, reply.context) == (MT.HEARTBEAT_RESP, "b", 1, 42)
    assert core.leader_id == "b"


# ==================================================================================
# §5.3 Log replication
# ==================================================================================


def test_leader_append_carries_prev_index_prev_term_and_commit():
    """§5.3: "The leader appends the command to its log as a new entry, then
    issues AppendEntries RPCs in parallel to each of the other servers ... When
    sending an AppendEntries RPC, the leader includes the index and term of the
    entry in its log that immediately precedes the new entries." and "it
    includes that index [the highest known committed] in future AppendEntries".
    """
    net = Network()
    net.elect("a")
    a = net["a"]
    res = a.propose(b"x")
    assert (res.accepted, res.index, res.term) == (True, 2, 1)
    net.process("a")
    apps = net.pending(MT.APPEND)
    assert sorted(m.dst for m in apps) == ["b", "c"]
    for m in apps:
        assert (m.log_index, m.log_term, m.commit) == (1, 1, 1)
        assert m.entries == (Entry(2, 1, EntryKind.COMMAND, b"x"),)


@pytest.mark.parametrize(
    "prev, hint",
    [
        ((4, 2), (3, 2)),  # we have no entry at prevLogIndex
        ((3, 1), (2, 1)),  # we have one, of another term
    ],
)
def test_follower_rejects_append_whose_prev_entry_does_not_match(prev, hint):
    """§5.3: "If the follower does not find an entry in its log with the same
    index and term, then it refuses the new entries." The rejection points the
    leader at the last index whose term is at most prevLogTerm (thesis §5.3's
    fast back-off).
    """
    core = follower(term=2, entries=ents(1, 1, 2))
    core.step(append("b", 2, prev=prev, entries=[Entry(prev[0] + 1, 2)], commit=3))
    rd = drain(core)
    assert terms_of(core.log_entries()) == [1, 1, 2]
    assert core.commit_index == 0
    [reply] = rd.messages
    assert (reply.type, reply.reject, reply.index) == (MT.APPEND_RESP, True, prev[0])
    assert (reply.reject_hint, reply.log_term) == hint


# Figure 7: the leader's log (term 8) and the possible follower logs (a)-(f).
FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE_7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}
# Rejected AppendEntries before the logs agree. Naive back-off (one index per
# round trip) would take a:1 b:6 c:0 d:0 e:5 f:7.
FIGURE_7_REJECTIONS = {"a": 1, "b": 1, "c": 0, "d": 0, "e": 1, "f": 1}


def shuttle(leader_core: RaftCore, follower_core: RaftCore, first: list) -> list:
    """Exchange appends and replies between two cores until they are quiet.

    ``first`` holds the leader's messages already taken out of it; the result
    is the list of rejections the follower sent.
    """
    rejections = []
    out = first
    for _ in range(50):
        apps = [m for m in of_type(out, MT.APPEND, MT.SNAPSHOT) if m.dst == follower_core.id]
        if not apps:
            return rejections
        for m in apps:
            follower_core.step(m)
        for r in of_type(drain(follower_core).messages, MT.APPEND_RESP):
            if r.reject:
                rejections.append(r)
            leader_core.step(r)
        out = drain(leader_core).messages
    raise AssertionError("replication did not settle")


@pytest.mark.parametrize("case", sorted(FIGURE_7_FOLLOWERS))
def test_leader_forces_follower_logs_of_figure_7_to_match_its_own(case):
    """§5.3: "the leader handles inconsistencies by forcing the followers' logs to
    duplicate its own. This means that conflicting entries in follower logs will
    be overwritten with entries from the leader's log." ... "After a rejection,
    the leader decrements nextIndex and retries ... Eventually nextIndex will
    reach a point where the leader and follower logs match."
    """
    lead = new_core("l", ["f", "v"], hard_state=HardState(7), entries=ents(*FIGURE_7_LEADER))
    rd = make_leader(lead)
    assert lead.term == 8
    fol_log = ents(*FIGURE_7_FOLLOWERS[case])
    fol = new_core("f", ["l", "v"], hard_state=HardState(7), entries=fol_log)
    shuttle(lead, fol, rd.messages)
    assert fol.log_entries() == lead.log_entries()
    assert terms_of(fol.log_entries()) == FIGURE_7_LEADER + [8]
    assert lead.commit_index == 11  # the leader and this follower are a majority of 3
    assert lead.progress["f"].state is ProgressState.REPLICATE


@pytest.mark.parametrize("case", sorted(FIGURE_7_FOLLOWERS))
def test_conflict_hint_skips_a_whole_term_per_round_trip(case):
    """§5.3: "the follower can include the term of the conflicting entry and the
    first index it stores for that term. With this information, the leader can
    decrement nextIndex to bypass all of the conflicting entries in that term;
    one AppendEntries RPC will be required for each term with conflicting
    entries, rather than one RPC per entry." Counted on Figure 7: follower (f)
    needs one rejection instead of seven.
    """
    lead = new_core("l", ["f", "v"], hard_state=HardState(7), entries=ents(*FIGURE_7_LEADER))
    rd = make_leader(lead)
    fol_log = ents(*FIGURE_7_FOLLOWERS[case])
    fol = new_core("f", ["l", "v"], hard_state=HardState(7), entries=fol_log)
    rejections = shuttle(lead, fol, rd.messages)
    assert len(rejections) == FIGURE_7_REJECTIONS[case]


def test_follower_deletes_conflicting_entries_and_keeps_agreeing_ones():
    """Figure 2, AppendEntries receiver: "3. If an existing entry conflicts with a
    new one (same index but different terms), delete the existing entry and all
    that follow it (§5.3). 4. Append any new entries not already in the log."
    Only the new suffix has to be written to disk.
    """
    core = follower(term=2, entries=ents(1, 1, 1, 1))
    core.step(append("b", 2, prev=(0, 0), entries=[Entry(1, 1), Entry(2, 1), Entry(3, 2)]))
    rd = drain(core)
    assert terms_of(core.log_entries()) == [1, 1, 2]
    assert rd.entries == [Entry(3, 2)]
    [reply] = rd.messages
    assert (reply.reject, reply.index) == (False, 3)


def test_delayed_shorter_append_does_not_truncate_the_log():
    """Figure 2, receiver rule 3 deletes entries only on a *conflict*: "If an
    existing entry conflicts with a new one". A reordered, shorter append that
    agrees with our prefix must not cut off entries we already acknowledged.
    """
    core = follower(term=2)
    first = append("b", 2, prev=(0, 0), entries=ents(2, 2))
    second = append("b", 2, prev=(2, 2), entries=ents(2, 2, start=3))
    core.step(first)
    core.step(second)
    drain(core)
    core.step(first)  # duplicated and delayed by the network
    rd = drain(core)
    assert terms_of(core.log_entries()) == [2, 2, 2, 2]
    assert rd.entries == []
    assert [(m.reject, m.index) for m in rd.messages] == [(False, 2)]


def test_leader_retries_lost_appends_until_the_follower_stores_the_entry():
    """§5.3: "If followers crash or run slowly, or if network packets are lost, the
    leader retries AppendEntries RPCs indefinitely (even after it has responded
    to the client) until all followers eventually store all log entries."
    """
    net = Network()
    net.elect("a")
    a, b = net["a"], net["b"]
    a.propose(b"x")
    net.process("a")
    assert net.drop(lambda d, m: d == "b" and m.type is MT.APPEND) == 1
    net.stabilize(hold=lambda d, m: d == "b")
    assert a.commit_index == 2 and b.last_index == 1
    net.drop()
    net.tick(["a"])  # b's heartbeat reply tells the leader it is behind
    assert b.log_entries() == a.log_entries()
    net.tick(["a"])
    assert b.commit_index == 2


def test_leader_commits_entry_once_stored_on_a_majority():
    """§5.3: "A log entry is committed once the leader that created the entry has
    replicated it on a majority of the servers." Its own durable copy plus one
    follower is a majority of three.
    """
    net = Network()
    net.elect("a")
    a = net["a"]
    index = a.propose(b"x").index
    net.stabilize(hold=lambda d, m: d == "c")
    assert a.commit_index == index
    assert net["b"].last_index == index and net["c"].last_index == index - 1
    assert [e.data for e in net.applied["a"] if e.kind is EntryKind.COMMAND] == [b"x"]


def test_leader_does_not_commit_without_a_majority():
    """§5.3: "A log entry is committed once the leader that created the entry has
    replicated it on a majority of the servers" — and not before: two of five
    copies are not enough.
    """
    net = Network(("a", "b", "c", "d", "e"))
    net.elect("a")
    a = net["a"]
    index = a.propose(b"x").index
    net.stabilize(hold=lambda d, m: d in ("c", "d", "e"))
    assert net["b"].last_index == index
    assert a.commit_index == index - 1  # 2 of 5 is not a majority
    net.stabilize()
    assert a.commit_index == index


def test_committing_a_current_term_entry_commits_preceding_entries_of_old_terms():
    """§5.3: "This also commits all preceding entries in the leader's log,
    including entries created by previous leaders." §5.4.2: "once an entry from
    the current term has been committed in this way, then all prior entries are
    committed indirectly because of the Log Matching Property."
    """
    net = Network()
    net.load("a", term=2, entries=ents(1, 2))
    net.load("b", term=2, entries=ents(1, 2))
    net.load("c", term=2, entries=ents(1))
    net.elect("a")
    assert net["a"].term == 3
    for node in "abc":
        assert net[node].commit_index == 3
        assert [(e.index, e.term) for e in net.applied[node]] == [(1, 1), (2, 2), (3, 3)]


def test_leader_only_commits_entries_of_its_own_term_by_counting_replicas():
    """§5.4.2: "Raft never commits log entries from previous terms by counting
    replicas. Only log entries from the leader's current term are committed by
    counting replicas" (etcd-io/raft TestLeaderOnlyCommitsLogFromCurrentTerm).
    """
    core = follower(term=2, entries=ents(1, 2))
    make_leader(core)  # term 3, no-op at index 3
    for index, want_commit in [(1, 0), (2, 0), (3, 3)]:
        core.step(msg(MT.APPEND_RESP, "b", "a", 3, index=index))
        assert core.commit_index == want_commit, index


def figure_8_cluster() -> Network:
    """Figure 8 (c): S1 (restarted) campaigns in term 4 holding index 2 from term
    2; S2 also has it, S5 holds a different index 2 from term 3. Appends carry a
    single entry, so index 2 and the no-op 3 travel separately.
    """
    ids = ("s1", "s2", "s3", "s4", "s5")
    net = Network(ids, pre_vote=False, check_quorum=False, max_msg_bytes=1)
    net.load("s1", term=3, entries=ents(1, 2))
    net.load("s2", term=3, entries=ents(1, 2))
    net.load("s3", term=3, entries=ents(1))
    net.load("s4", term=3, entries=ents(1))
    net.load("s5", term=3, vote="s5", entries=ents(1, 3))
    net.crash("s5")
    net["s1"].campaign()
    net.stabilize(hold=lambda d, m: m.type is MT.APPEND)
    assert net.leaders() == ["s1"] and net["s1"].term == 4
    assert terms_of(net["s1"].log_entries()) == [1, 2, 4]
    return net


def test_figure_8_old_term_entry_on_a_majority_is_not_committed():
    """§5.4.2 and Figure 8: "a log entry [from a previous term] ... stored on a
    majority of servers could still be overwritten by a future leader." S1 puts
    index 2 (term 2) on S1, S2, S3 — and its no-op only on S1, S2 — without
    committing anything; S5 can then win term 5 and overwrite index 2, which is
    only safe because it was never committed or applied anywhere.
    """
    net = figure_8_cluster()
    s1 = net["s1"]
    # S2 gets the no-op (it already holds index 2); S3 only index 2.
    net.deliver(lambda d, m: m.type is MT.APPEND and d in ("s2", "s3"))
    net.drop(lambda d, m: m.type is MT.APPEND)
    for _ in range(4):
        net.process_all()
        net.drop(lambda d, m: m.type is MT.APPEND and d == "s3" and m.entries[-1].index > 2)
        net.deliver(lambda d, m: d in ("s1", "s3"))
    assert terms_of(net["s2"].log_entries()) == [1, 2, 4]
    assert terms_of(net["s3"].log_entries()) == [1, 2]
    assert (s1.progress["s2"].match, s1.progress["s3"].match) == (3, 2)
    assert s1.commit_index == 0  # index 2 is on a majority but of an old term

    # (d): S1 crashes, S5 comes back and is elected by S3, S4 (and itself); its
    # first try, in term 4, meets voters who already voted in term 4.
    net.crash("s1")
    net.drop()
    net.restart("s5")
    for _ in range(2):
        net["s5"].campaign()
        net.stabilize()
    assert net.leaders() == ["s5"] and net["s5"].term == 5
    for node in ("s2", "s3", "s4"):
        assert terms_of(net[node].log_entries()) == [1, 3, 5]  # index 2 overwritten
    for node in net.ids:
        assert (2, 2) not in [(e.index, e.term) for e in net.applied[node]]


def test_figure_8_current_term_entry_on_a_majority_commits_and_protects_old_entries():
    """Figure 8 (e): "if S1 replicates an entry from its current term on a majority
    of the servers before crashing ... then this entry is committed (S5 cannot
    win an election)."
    """
    net = figure_8_cluster()
    net.stabilize(hold=lambda d, m: "s4" in (d, m.src))
    assert net["s1"].commit_index == 3
    assert terms_of(net["s3"].log_entries()) == [1, 2, 4]
    net.crash("s1")
    net.drop()
    net.restart("s5")
    net["s5"].campaign()
    net.stabilize()
    assert net["s5"].role is not Role.LEADER
    assert terms_of(net["s2"].log_entries())[:2] == [1, 2]


def test_leader_counts_its_own_entry_only_once_it_is_durable():
    """Figure 2 / Ready contract: an entry is "replicated" on the leader only when
    the leader has persisted it. Until ``advance`` confirms that, a single
    follower acknowledgement is not a majority of three.
    """
    core = leader(term=1)
    core.step(msg(MT.APPEND_RESP, "b", "a", 2, index=1))
    assert core.commit_index == 1  # the no-op: durable here (drained) and on b
    res = core.propose(b"x")
    rd = core.ready()
    assert rd.entries == [Entry(2, 2, EntryKind.COMMAND, b"x")]
    core.step(msg(MT.APPEND_RESP, "b", "a", 2, index=2))
    assert core.commit_index == 1
    core.advance(rd)
    assert core.commit_index == res.index == 2


def test_single_node_commits_and_applies_only_after_persisting():
    """Ready contract: entries are persisted before being counted, and committed
    entries are handed out for applying in a later Ready.
    """
    core = new_core("a", [])
    rd = make_leader(core)
    assert [e.kind for e in rd.entries] == [EntryKind.NOOP] and rd.committed == []
    assert [e.index for e in drain(core).committed] == [1]
    core.propose(b"x")
    rd = drain(core)
    assert rd.entries and rd.committed == []
    assert [e.data for e in drain(core).committed] == [b"x"]


@pytest.mark.parametrize("leader_commit, want", [(0, 0), (2, 2), (3, 3), (7, 3)])
def test_follower_commit_from_append_is_min_of_leader_commit_and_last_new_entry(
    leader_commit, want
):
    """Figure 2, AppendEntries receiver: "5. If leaderCommit > commitIndex, set
    commitIndex = min(leaderCommit, index of last new entry)."
    """
    core = follower(term=2)
    core.step(append("b", 2, prev=(0, 0), entries=ents(2, 2, 2), commit=leader_commit))
    drain(core)
    assert core.commit_index == want


def test_follower_commit_from_append_never_covers_stale_entries_after_the_append():
    """Figure 2 receiver rule 5: bounded by "index of last new entry", not by our
    last index: entries 3-4 (old term) after an empty append at 2 may conflict
    with the leader's log and must not become committed.
    """
    core = follower(term=2, entries=ents(1, 1, 1, 1))
    core.step(append("b", 2, prev=(2, 1), entries=(), commit=4))
    drain(core)
    assert core.commit_index == 2


def test_batch_limited_append_does_not_commit_the_divergent_entry_just_past_it():
    """Figure 2 receiver rule 5 (issue 16, "Simulator reach"): "set commitIndex =
    min(leaderCommit, index of last new entry)", never min(leaderCommit, our own
    last index). The follower holds 1@1 2@1 3@2; the term-3 leader (log
    1@1 2@1 3@3, commit 3) sends a batch-limited append carrying only entry 2.
    Our 3@2 is not the leader's 3@3 and must not become committed.
    """
    core = follower(term=2, entries=ents(1, 1, 2))
    leader_log = ents(1, 1, 3)
    core.step(append("b", 3, prev=(1, 1), entries=leader_log[1:2], commit=3))
    rd = drain(core)
    assert core.term == 3
    assert core.commit_index == 2
    assert [e.index for e in rd.committed] == [1, 2]
    assert of_type(rd.messages, MT.APPEND_RESP)[0].index == 2  # confirmed through 2 only
    assert terms_of(core.log_entries()) == [1, 1, 2]  # 3@2 kept, uncommitted
    # The next batch replaces it; only then does 3 commit, as the leader's 3@3.
    core.step(append("b", 3, prev=(2, 1), entries=leader_log[2:], commit=3))
    drain(core)
    assert core.commit_index == 3
    assert terms_of(core.log_entries()) == [1, 1, 3]


def test_follower_commit_from_heartbeat_is_bounded_by_confirmed_index():
    """§5.3: the leader includes its commit index "in future AppendEntries RPCs
    (including heartbeats)". A broadcast heartbeat cannot say how much of *this*
    follower's log matches, so the hint is capped at what an append of the
    current term proved (etcd caps it per follower at min(match, commit)).
    """
    core = follower(term=2)
    core.step(append("b", 2, prev=(0, 0), entries=ents(2, 2, 2), commit=1))
    drain(core)
    assert core.commit_index == 1
    core.step(msg(MT.HEARTBEAT, "b", BROADCAST, 2, commit=3))
    drain(core)
    assert core.commit_index == 3


def test_heartbeat_commit_hint_does_not_commit_an_unconfirmed_stale_suffix():
    """§5.4.2 / Figure 2 receiver rule 5: a follower holding an extra,
    uncommitted suffix from an old term (indexes 3-5, term 1) must not commit
    it because a heartbeat of the new leader says commit = 5: the new leader's
    entries 3-5 (term 2) differ.
    """
    core = follower(term=2, entries=ents(1, 1, 1, 1, 1))
    core.step(msg(MT.HEARTBEAT, "b", BROADCAST, 2, commit=5))
    drain(core)
    assert core.commit_index == 0
    core.step(append("b", 2, prev=(2, 1), entries=(), commit=5))  # a probe: 1-2 match
    drain(core)
    assert core.commit_index == 2
    core.step(msg(MT.HEARTBEAT, "b", BROADCAST, 2, commit=5))
    drain(core)
    assert core.commit_index == 2  # 3-5 are still the stale term-1 entries
    core.step(append("b", 2, prev=(2, 1), entries=ents(2, 2, 2, start=3), commit=2))
    drain(core)
    core.step(msg(MT.HEARTBEAT, "b", BROADCAST, 2, commit=5))
    drain(core)
    assert core.commit_index == 5
    assert terms_of(core.log_entries()) == [1, 1, 2, 2, 2]


def test_heartbeat_commit_bound_does_not_carry_over_into_a_new_term():
    """What an append of term 2 proved says nothing about the log of term 3's
    leader (§5.4.2: uncommitted entries of older terms may be overwritten).
    """
    core = follower(term=2)
    core.step(append("b", 2, prev=(0, 0), entries=ents(2, 2, 2), commit=0))
    drain(core)
    core.step(msg(MT.HEARTBEAT, "c", BROADCAST, 3, commit=3))
    drain(core)
    assert (core.term, core.commit_index) == (3, 0)


def test_followers_apply_committed_entries_in_log_order():
    """§5.3: "Once a follower learns that a log entry is committed, it applies the
    entry to its local state machine (in log order)."
    """
    net = Network()
    net.elect("a")
    for data in (b"x", b"y", b"z"):
        net["a"].propose(data)
    net.stabilize()
    net.tick(["a"])  # the heartbeat carries the final commit index
    for node in "abc":
        assert [e.index for e in net.applied[node]] == [1, 2, 3, 4]
        assert [e.data for e in net.applied[node][1:]] == [b"x", b"y", b"z"]


# ==================================================================================
# §5.6 / Figure 2: restart from persistent state
# ==================================================================================


def test_restart_recovers_term_vote_and_log_from_storage():
    """Figure 2: currentTerm, votedFor and log[] are persistent state; commitIndex
    and lastApplied are volatile and start over (here: at the snapshot).
    """
    net = Network()
    net.elect("a")
    net["a"].propose(b"x")
    net.stabilize()
    before = net["b"].log_entries()
    net.crash("b")
    net.restart("b")
    b = net["b"]
    assert (b.term, b.vote, b.role) == (1, "a", Role.FOLLOWER)
    assert b.log_entries() == before
    assert b.commit_index == b.applied_index == 0


def test_restarted_node_does_not_vote_twice_in_the_same_term():
    """§5.2: "Each server will vote for at most one candidate in a given term" —
    which only holds across crashes because votedFor is persisted.
    """
    net = Network()
    net.elect("a")
    net.crash("b")
    net.restart("b")
    net["b"].step(msg(MT.VOTE, "c", "b", 1, log_index=1, log_term=1))
    rd = drain(net["b"])
    assert granted(rd.messages) == [] and net["b"].vote == "a"


def test_restart_from_snapshot_resumes_after_it():
    """§7: after a restart the state machine is loaded from the snapshot, and
    the log continues after it.
    """
    net = Network()
    net.elect("a")
    for data in (b"x", b"y", b"z"):
        net["a"].propose(data)
    net.stabilize()
    net.tick(["a"])
    snap = net.compact("b", 3)
    net.crash("b")
    net.restart("b")
    b = net["b"]
    assert b.snapshot == snap and b.applied_index == b.commit_index == 3
    assert [e.index for e in b.log_entries()] == [4]
    assert (b.last_index, b.term_at(3)) == (4, 1)


def test_restarted_follower_learns_commit_index_without_new_writes():
    """§5.3: "The leader keeps track of the highest index it knows to be committed,
    and it includes that index in future AppendEntries RPCs (including
    heartbeats) so that the other servers eventually find out."

    A follower that restarts with the whole (committed) log but commit index 0
    has confirmed_index 0, so heartbeats alone cannot raise its commit index,
    and the leader, whose match for it is already its last index, sends no
    append. In an idle cluster it must still eventually apply the log (and
    serve forwarded ReadIndex reads, which wait for applied >= read index).
    """
    net = Network()
    net.elect("a")
    net["a"].propose(b"x")
    net.stabilize()
    net.tick(["a"])
    assert net["b"].commit_index == 2
    net.crash("b")
    net.restart("b")
    net.tick(n=3 * E)  # many heartbeat rounds, no new proposals
    assert net["b"].commit_index == 2
    assert [e.data for e in net.applied["b"]] == [b"", b"x"]
    assert net["b"].read_index("rb")
    net.stabilize()
    [read] = net.read_states["b"]
    assert read.index <= net["b"].applied_index  # the read can be served


# ==================================================================================
# Pre-vote (thesis §9.6) and the leader lease of check-quorum (thesis §4.2.3)
# ==================================================================================


def test_prevote_does_not_increment_the_term_of_a_partitioned_node():
    """Thesis §9.6: "While a server is partitioned, it won't be able to increment
    its term, since it can't receive permission from a majority of the
    cluster." Nothing is persisted and no RequestVote is ever sent.
    """
    net = Network()
    net.elect("a")
    net.isolate("c")
    net.tick(n=5 * E)
    c = net["c"]
    assert c.term == 1 and net.storage["c"].hard_state.term == 1
    assert c.role is Role.PRE_CANDIDATE
    assert [m for m in net.sent_of(MT.VOTE) if m.src == "c"] == []
    assert net.leaders() == ["a"] and net["a"].term == 1


def test_prevote_grant_changes_nothing_on_the_voter():
    """Thesis §9.6: a pre-vote only asks whether the voter *would* grant its vote;
    the voter's term and vote are untouched (so it can still vote for anyone).
    """
    core = follower(term=1)
    core.step(vote("b", 2, pre=True))
    rd = drain(core)
    [reply] = granted(rd.messages, MT.PRE_VOTE_RESP)
    assert reply.term == 2  # the term asked about, so the pre-candidate counts it
    assert (core.term, core.vote) == (1, "") and rd.hard_state is None


def test_prevote_majority_starts_the_real_election():
    """Thesis §9.6: once a majority would grant its vote the pre-candidate
    increments its term and runs a normal election.
    """
    core = pre_candidate(term=1)
    core.step(msg(MT.PRE_VOTE_RESP, "b", "a", 2))
    assert (core.role, core.term, core.vote) == (Role.CANDIDATE, 2, "a")


def test_prevote_rejected_by_majority_returns_to_follower_in_the_same_term():
    """Thesis §9.6: without a majority's permission the candidate does not
    increment its term; it returns to follower state in the term it had.
    """
    core = pre_candidate(term=1)
    core.step(msg(MT.PRE_VOTE_RESP, "b", "a", 1, reject=True))
    core.step(msg(MT.PRE_VOTE_RESP, "c", "a", 1, reject=True))
    assert (core.role, core.term) == (Role.FOLLOWER, 1)


def test_rejoining_node_does_not_disrupt_a_healthy_leader():
    """Thesis §9.6 / §4.2.3: a server that was partitioned away must not force
    the stable majority into a new term when it comes back.
    """
    net = Network()
    net.elect("a")
    net.isolate("c")
    net.tick(n=3 * E)
    net.heal()
    # c's pre-votes reach the others before any heartbeat reaches c.
    net["c"].campaign()
    net.process("c")
    net.deliver(lambda d, m: m.src == "c")
    net.tick(n=2 * E)
    assert net.leaders() == ["a"]
    assert [net[n].term for n in "abc"] == [1, 1, 1]
    assert (net["c"].role, net["c"].leader_id) == (Role.FOLLOWER, "a")


@pytest.mark.parametrize("pre", [False, True], ids=["vote", "pre_vote"])
def test_follower_in_lease_ignores_higher_term_vote_requests(pre):
    """Thesis §4.2.3: "if a server receives a RequestVote request within the
    minimum election timeout of hearing from a current leader, it does not
    update its term or grant its vote."
    """
    core = follower(term=1, leader="b", pre_vote=False)
    tick_n(core, E - 1)
    core.step(vote("c", 5, last=(9, 9), pre=pre))
    rd = drain(core)
    assert (core.term, core.vote, core.leader_id) == (1, "", "b")
    assert rd.messages == [] and rd.hard_state is None


def test_leader_ignores_higher_term_vote_request_while_it_has_a_lease():
    """Thesis §4.2.3 applies to the leader as well: a disruptive RequestVote
    does not depose it. Without check-quorum there is no lease (Figure 2)."""
    core = leader(term=1)
    core.step(vote("c", 9, last=(9, 9)))
    assert core.is_leader and core.term == 2
    core = leader(term=1, check_quorum=False)
    core.step(vote("c", 9, last=(9, 9)))
    assert (core.role, core.term, core.vote) == (Role.FOLLOWER, 9, "c")


def test_follower_out_of_lease_grants_higher_term_vote():
    """Thesis §4.2.3: the lease lasts the minimum election timeout; after it a
    vote may be granted even before our own (randomized) timer fires.
    """
    core = next(
        c
        for seed in range(100)
        if (c := follower(term=1, leader="b", seed=seed, pre_vote=False)).randomized_timeout > E
    )
    tick_n(core, E)
    assert core.role is Role.FOLLOWER
    core.step(vote("c", 2, last=(0, 0)))
    assert granted(drain(core).messages) and (core.term, core.vote) == (2, "c")


def test_forced_vote_of_a_leadership_transfer_bypasses_the_lease():
    """Thesis §3.10: the transfer target's election must not be blocked by the
    followers' leases (etcd marks these requests; here ``force``).
    """
    core = follower(term=1, leader="b")
    core.step(vote("c", 2, force=True))
    assert granted(drain(core).messages) and (core.term, core.vote) == (2, "c")


# ==================================================================================
# Check-quorum (thesis §6.2)
# ==================================================================================


def test_leader_cut_off_from_the_majority_steps_down_after_an_election_timeout():
    """Thesis §6.2: "a leader steps down if an election timeout elapses without a
    successful round of heartbeats to a majority of its cluster; this allows
    clients to retry their requests with another server."
    """
    net = Network()
    net.elect("a")
    net.isolate("a")
    n = ticks_until(net["a"], lambda c: not c.is_leader, limit=3 * E)
    assert E <= n <= 2 * E
    assert (net["a"].role, net["a"].term) == (Role.FOLLOWER, 1)


def test_leader_with_an_active_majority_stays_leader():
    """Thesis §6.2: the leader steps down only if an election timeout elapses
    "without a successful round of heartbeats to a majority"; losing one
    follower of three is not that.
    """
    net = Network()
    net.elect("a")
    net.isolate("c")
    net.tick(["a", "b"], n=5 * E)
    assert net.leaders() == ["a"]


# ==================================================================================
# ReadIndex (thesis §6.4)
# ==================================================================================


def test_read_index_waits_for_a_fresh_heartbeat_round_from_a_majority():
    """Thesis §6.4: "The leader saves its current commit index in a local variable
    readIndex ... It issues a new round of heartbeats and waits for their
    acknowledgments from a majority of the cluster." An echo of a heartbeat
    sent before the request proves nothing about the present.
    """
    net = Network()
    net.elect("a")
    a = net["a"]
    net.tick(["a"], settle=False)
    net.process("a")
    [old] = {m.context for m in net.pending(MT.HEARTBEAT)}
    assert a.read_index("r1")
    net.process("a")
    assert {m.context for m in net.pending(MT.HEARTBEAT)} == {old, old + 1}
    net.deliver(lambda d, m: m.type is MT.HEARTBEAT and m.context == old)
    net.process_all()
    net.deliver(lambda d, m: m.type is MT.HEARTBEAT_RESP)
    net.process("a")
    assert net.read_states["a"] == []
    net.deliver(lambda d, m: m.type is MT.HEARTBEAT and d == "b")
    net.process("b")
    net.deliver(lambda d, m: m.type is MT.HEARTBEAT_RESP)
    net.process("a")
    assert net.read_states["a"] == [ReadState("r1", a.commit_index)]


def test_deposed_leader_cut_off_from_the_majority_serves_no_read():
    """Thesis §6.4: "The leader needs to make sure it hasn't been superseded by a
    newer leader of which it is unaware." A leader in the minority never gets
    its heartbeat round acknowledged; once it hears of the newer term it steps
    down, and the read is never answered (the client retries elsewhere).
    """
    net = Network()
    net.elect("a")
    a = net["a"]
    net.isolate("a")
    net.tick(["b", "c"], n=3 * E)
    [new_leader] = [n for n in net.leaders() if n != "a"]
    assert net[new_leader].term == 2
    assert a.is_leader and a.term == 1  # does not know yet
    assert a.read_index("stale?")
    net.tick(["a"], n=3)
    net.heal()
    net.tick(["a"])
    assert not a.is_leader and a.term == 2
    assert net.read_states["a"] == []


def test_read_index_waits_for_an_entry_of_the_current_term_to_commit():
    """Thesis §6.4: "If the leader has not yet marked an entry from its current
    term committed, it waits until it has done so." (§8: the no-op.)
    """
    net = Network()
    a = net["a"]
    a.campaign()
    net.stabilize(hold=lambda d, m: m.type is MT.APPEND)
    assert a.is_leader and a.commit_index == 0
    assert a.read_index("r")
    for _ in range(3):
        net.tick(["a"], settle=False)
        net.stabilize(hold=lambda d, m: m.type is MT.APPEND)
    assert net.read_states["a"] == []
    net.stabilize()
    assert net.read_states["a"] == [ReadState("r", 1)]


def test_read_index_requested_on_a_follower_is_forwarded_to_the_leader():
    """Thesis §6.4: "the follower issues a request to the leader just to learn the
    current readIndex; the leader then executes steps 1-3 above".
    """
    net = Network()
    net.elect("a")
    assert net["b"].read_index("rb")
    net.stabilize()
    assert net.read_states["b"] == [ReadState("rb", net["a"].commit_index)]
    assert [(m.src, m.dst) for m in net.sent_of(MT.READ_INDEX)] == [("b", "a")]
    assert net.read_states["a"] == []


def test_read_index_without_a_known_leader_is_refused():
    """Thesis §6.4: a follower learns the readIndex from "the leader"; with no
    known leader there is no one to ask, and the caller retries.
    """
    core = follower(term=1)
    assert not core.read_index("r")
    assert drain(core).messages == []


def test_read_index_on_a_single_node_is_answered_at_once():
    """Thesis §6.4 step 3 asks for acknowledgments "from a majority of the
    cluster": in a one-server cluster the leader alone is that majority.
    """
    core = new_core("a", [])
    make_leader(core)
    drain(core)
    assert core.read_index("r")
    assert drain(core).read_states == [ReadState("r", 1)]


# ==================================================================================
# InstallSnapshot (§7)
# ==================================================================================


def test_leader_sends_snapshot_to_follower_that_needs_compacted_entries():
    """§7: "The leader uses a new RPC called InstallSnapshot to send snapshots to
    followers that are too far behind. This happens when the leader has already
    discarded the next log entry that it needs to send to a follower."
    """
    net = Network()
    net.elect("a")
    a = net["a"]
    net.isolate("c")
    for i in range(5):
        a.propose(b"x%d" % i)
        net.stabilize()
    net.tick(["a"])
    snap = net.compact("a", a.applied_index)
    assert snap.index == 6
    net.heal()
    net.tick(["a"])
    c = net["c"]
    assert len(net.sent_of(MT.SNAPSHOT)) == 1
    assert c.snapshot == snap and net.sm_snapshot["c"] == snap
    assert c.commit_index == 6 and c.log_entries() == ()
    assert a.progress["c"].state is ProgressState.REPLICATE
    a.propose(b"after")
    net.stabilize()
    net.tick(["a"])
    assert c.log_entries() == a.log_entries() and c.commit_index == a.commit_index == 7
    assert [e.data for e in net.applied["c"]] == [b"after"]


def test_lost_snapshot_is_sent_again():
    """§5.3's retry rule ("the leader retries ... indefinitely") applies to
    InstallSnapshot too: a snapshot that is never answered is sent again.
    """
    net = Network()
    net.elect("a")
    a, c = net["a"], net["c"]
    net.isolate("c")
    for i in range(3):
        a.propose(b"x%d" % i)
        net.stabilize()
    net.tick(["a"])
    snap = net.compact("a", a.applied_index)
    net.heal()
    net.tick(["a"], settle=False)
    net.stabilize(hold=lambda d, m: m.type is MT.SNAPSHOT)
    assert net.drop(lambda d, m: m.type is MT.SNAPSHOT) == 1
    assert a.progress["c"].state is ProgressState.SNAPSHOT
    net.tick(["a"], n=SNAPSHOT_RETRY_HEARTBEATS + 1)
    assert len(net.sent_of(MT.SNAPSHOT)) == 2
    assert c.snapshot == snap and c.commit_index == snap.index


def test_snapshot_conflicting_with_the_entry_at_its_index_replaces_the_whole_log():
    """§7: "the follower discards its entire log; it is all superseded by the
    snapshot and may possibly have uncommitted entries that conflict with the
    snapshot." (Figure 13, receiver: "7. Discard the entire log".)
    """
    core = follower(term=2, entries=ents(1, 1, 1, 1, 1))
    snap = Snapshot(3, 2, b"state")
    core.step(msg(MT.SNAPSHOT, "b", "a", 2, snapshot=snap))
    rd = drain(core)
    assert rd.snapshot == snap and rd.entries == []
    assert core.snapshot == snap and core.log_entries() == ()
    assert (core.last_index, core.commit_index, core.applied_index) == (3, 3, 3)
    [reply] = rd.messages
    assert (reply.type, reply.reject, reply.index) == (MT.APPEND_RESP, False, 3)
    core.step(append("b", 2, prev=(3, 2), entries=ents(2, start=4), commit=4))
    assert drain(core).committed == [Entry(4, 2, data=b"4@2")]


def test_lagging_follower_with_conflicting_entry_at_snapshot_index_takes_the_snapshot():
    """§7 in a cluster: C holds stale term-1 entries, one of them at the index the
    leader compacted to. InstallSnapshot replaces C's whole log, and normal
    replication continues after the snapshot.
    """
    net = Network()
    net.load("a", term=2, entries=ents(1, 2, 2, 2))
    net.load("b", term=2, entries=ents(1, 2, 2, 2))
    net.load("c", term=1, entries=ents(1, 1, 1, 1, 1))
    net.isolate("c")
    net.elect("a")
    net.tick(["a"])
    a, c = net["a"], net["c"]
    assert (a.term, a.commit_index) == (3, 5)
    snap = net.compact("a", 5)
    assert (snap.index, snap.term) == (5, 3) and c.term_at(5) == 1
    net.heal()
    net.tick(["a"])
    assert c.snapshot == snap and c.log_entries() == ()
    assert net.storage["c"].entries == [] and net.storage["c"].snapshot == snap
    a.propose(b"y")
    net.stabilize()
    net.tick(["a"])
    assert c.log_entries() == a.log_entries() and c.commit_index == 6


def test_snapshot_matching_an_entry_we_hold_keeps_the_entries_after_it():
    """§7: "If instead the follower receives a snapshot that describes a prefix of
    its log ... entries following the snapshot are still valid and must be
    retained." (Figure 13, receiver 6.)
    """
    core = follower(term=2, entries=ents(1, 2, 2, 2))
    core.step(msg(MT.SNAPSHOT, "b", "a", 2, snapshot=Snapshot(2, 2, b"s")))
    rd = drain(core)
    assert rd.snapshot is None
    assert terms_of(core.log_entries()) == [1, 2, 2, 2] and core.commit_index == 2
    assert [(m.reject, m.index) for m in rd.messages] == [(False, 2)]


def test_snapshot_at_or_below_our_commit_index_changes_nothing():
    """§7: a snapshot that "describes a prefix of its log (due to retransmission or
    by mistake)" must not destroy anything; one at or below our commit index
    brings nothing new and is just acknowledged.
    """
    core = follower(term=2)
    core.step(append("b", 2, prev=(0, 0), entries=ents(2, 2, 2), commit=3))
    drain(core)
    core.step(msg(MT.SNAPSHOT, "b", "a", 2, snapshot=Snapshot(2, 2, b"old")))
    rd = drain(core)
    assert rd.snapshot is None and len(core.log_entries()) == 3
    assert [(m.reject, m.index) for m in rd.messages] == [(False, 3)]


# ==================================================================================
# Leadership transfer (thesis §3.10)
# ==================================================================================


def test_leadership_transfer_to_an_up_to_date_follower():
    """Thesis §3.10: "The prior leader sends a TimeoutNow request to the target
    server. This request has the same effect as the target server's election
    timer firing: the target server starts a new election". The followers'
    leases do not block it.
    """
    net = Network()
    net.elect("a")
    net["a"].transfer_leadership("b")
    net.stabilize()
    assert [(m.src, m.dst) for m in net.sent_of(MT.TIMEOUT_NOW)] == [("a", "b")]
    assert net.leaders() == ["b"] and net["b"].term == 2
    assert (net["a"].role, net["a"].leader_id) == (Role.FOLLOWER, "b")


def test_leadership_transfer_to_a_lagging_follower_waits_until_it_caught_up():
    """Thesis §3.10: "2. The prior leader fully updates the target server's log to
    match its own, using the normal log replication mechanism. 3. The prior
    leader sends a TimeoutNow request".
    """
    net = Network()
    net.elect("a")
    a = net["a"]
    net.cut.add(("a", "b"))
    for data in (b"x", b"y"):
        a.propose(data)
    net.stabilize()
    assert net["b"].last_index == 1 and a.commit_index == 3
    net.heal()
    a.transfer_leadership("b")
    net.process("a")
    assert net.pending(MT.TIMEOUT_NOW) == []
    net.stabilize()
    assert net.leaders() == ["b"]
    assert [e.data for e in net["b"].log_entries()][1:3] == [b"x", b"y"]


def test_proposals_are_refused_during_a_leadership_transfer():
    """Thesis §3.10: "1. The prior leader stops accepting new client requests."
    The refusal names the target as the leader to try next.
    """
    net = Network()
    net.elect("a")
    net.isolate("b")
    net["a"].transfer_leadership("b")
    res = net["a"].propose(b"x")
    assert (res.accepted, res.leader_hint) == (False, "b")


def test_transfer_is_abandoned_after_an_election_timeout():
    """Thesis §3.10: "If the transfer does not complete within about an election
    timeout, the prior leader aborts the transfer and resumes accepting client
    requests."
    """
    net = Network()
    net.elect("a")
    net.isolate("b")
    net["a"].transfer_leadership("b")
    net.tick(["a", "c"], n=E)
    assert net["a"].is_leader
    assert net["a"].propose(b"x").accepted


def test_proposal_on_a_follower_is_refused_with_a_leader_hint():
    """§5.1: "The leader handles all client requests (if a client contacts a
    follower, the follower redirects it to the leader)."
    """
    net = Network()
    net.elect("a")
    res = net["b"].propose(b"x")
    assert (res.accepted, res.leader_hint) == (False, "a")
    assert net["b"].last_index == 1
    res = follower(term=1).propose(b"x")
    assert (res.accepted, res.leader_hint) == (False, "")


# ==================================================================================
# Flow control (thesis ch. 10: pipelining and batching of AppendEntries)
# ==================================================================================


def test_at_most_max_inflight_appends_are_unacknowledged():
    """Pipelining (thesis ch. 10) bounded as in etcd-io/raft: a follower in
    REPLICATE has at most ``max_inflight`` appends outstanding.
    """
    net = Network(max_inflight=2)
    net.elect("a")
    a = net["a"]
    for i in range(5):
        a.propose(b"%d" % i)
        net.process("a")
    assert len(net.pending(MT.APPEND, dst="b")) == 2
    assert a.progress["b"].is_paused(2)
    net.stabilize()
    assert net["b"].log_entries() == a.log_entries()


def test_append_batches_are_bounded_by_max_msg_bytes():
    """Batching (thesis ch. 10) bounded as in etcd-io/raft's MaxSizePerMsg: an
    append carries at most ``max_msg_bytes`` of entries (at least one entry).
    """
    size = 100 + 32  # per-entry cost: data plus fixed overhead
    net = Network(max_msg_bytes=2 * size)
    net.elect("a")
    a = net["a"]
    for i in range(7):
        a.propose(bytes([i]) * 100)
    net.process("a")
    apps = net.pending(MT.APPEND, dst="b")
    assert [len(m.entries) for m in apps] == [2, 2, 2, 1]
    assert [e.index for m in apps for e in m.entries] == list(range(2, 9))
    net.stabilize()
    assert net["b"].log_entries() == a.log_entries()


def test_probing_follower_gets_one_append_at_a_time():
    """§5.3's consistency check is a probe: until the follower answers, the leader
    does not know where their logs agree, so it sends nothing more.
    """
    net = Network()
    a = net["a"]
    a.campaign()
    to_b = lambda d, m: d == "b" and m.type in (MT.APPEND, MT.HEARTBEAT)  # noqa: E731
    net.stabilize(hold=to_b)
    assert a.is_leader and a.progress["b"].state is ProgressState.PROBE
    for i in range(3):
        a.propose(b"%d" % i)
        net.process("a")
    assert len(net.pending(MT.APPEND, dst="b")) == 1
    net.stabilize()
    assert net["b"].log_entries() == a.log_entries()
    assert a.progress["b"].state is ProgressState.REPLICATE


# -- a dropped connection to the leader (transport hint) ------------------------------


def test_leader_connection_drop_ends_the_lease_and_campaigns_within_three_ticks():
    """Not in the paper: a liveness shortcut. When the transport sees the
    leader's connection drop (its process died), waiting a whole election
    timeout only delays recovery; campaigning earlier is always safe (§5.2)."""
    core = follower(term=1, leader="b")
    core.step(vote("c", 2, last=(0, 0), pre=True))
    assert drain(core).messages == []  # in lease: the pre-vote is ignored
    core.peer_unreachable("b")
    core.step(vote("c", 2, last=(0, 0), pre=True))
    assert granted(drain(core).messages, MT.PRE_VOTE_RESP)  # the lease is over
    ticks = ticks_until(core, lambda c: c.role is Role.PRE_CANDIDATE)
    assert 1 <= ticks <= 3


def test_a_dropped_connection_to_a_non_leader_changes_nothing():
    core = follower(term=1, leader="b")
    elapsed, timeout = core.election_elapsed, core.randomized_timeout
    core.peer_unreachable("c")
    assert (core.election_elapsed, core.randomized_timeout) == (elapsed, timeout)
    lead = leader(term=1)
    lead.peer_unreachable("b")
    assert lead.is_leader
