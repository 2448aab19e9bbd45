"""The fault simulator drives Go cores too (issue 17; docs/SIMCORE.md).

- Mixed schedules (``--impls py,go,py``; 3 nodes, and 5 with membership
  changes) keep every property the Python-only ones keep.
  ``ZMQNODE_SIM_IMPLS_SEEDS`` sets how many 3-node seeds (default 30).
- A mixed seed replays exactly, and its trace says which node runs which core.
- Each mutation of the Go core (``raft.MutationNames()``, carried through
  ``raft.Options.Mutations``) is caught within a fixed set of seeds, every
  node a Go core, as tests/test_raft_sim.py proves it for the Python core.
- The proxy's mirror of a Go core's log is the core's log.

Needs ``go`` (golang-go); the tests build go/worker when its sources changed.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.sim.runner import check_impls, find_violation, run_many, run_one

pytestmark = pytest.mark.sim
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs go (golang-go)")

SEEDS = int(os.environ.get("ZMQNODE_SIM_IMPLS_SEEDS", "30"))
JOBS = int(os.environ.get("ZMQNODE_SIM_JOBS", str(min(2, os.cpu_count() or 1))))
MIXED = ("py", "go", "py")
ALL_GO = ("go",)

# For each Go mutation: the seeds searched (every node a Go core, nodes per
# seed as the schedule draws it unless MUTATION_NODES says); the search stops
# at the first violation. Measured with
#   python -m tests.sim --impls go --seeds N --mutate NAME
# and chosen to hold several violating seeds, as in tests/test_raft_sim.py.
GO_MUTATION_SEEDS = {
    "forget_hard_state": range(0, 100),  # first at seed 1
    "vote_ignores_log": range(0, 100),  # first at seed 1
    "heartbeat_commit": range(0, 100),  # first at seed 4
    "stale_append": range(0, 300),  # first at seed 15
    "forget_vote": range(0, 300),  # first at seed 8
    "old_term_commit": range(0, 1000),  # first at seed 71 (Figure 8)
    "append_commit_past_batch": range(0, 800),  # 10 in 0..999: 205, 274, 424, ...
    "read_without_quorum": range(0, 1500),  # 7 in 0..1499: 167, 688, 738, ...
    "vote_only_with_term": range(0, 1000),  # 3 nodes; 5 in 0..699: 65, 205, 396, ...
}
# Membership mode, measured over seeds 0..99.
GO_MEMBERSHIP_MUTATION_SEEDS = {
    "config_before_own_term_commit": range(0, 100),  # 63%, first at seed 2
    "two_configs_in_flight": range(0, 100),  # 71%, first at seed 1
    "learner_counts_in_quorum": range(0, 100),  # 42%, first at seed 1
}
MUTATION_NODES = {"vote_only_with_term": 3}


def _no_violations(results) -> None:
    bad = [r for r in results if r.violation]
    assert not bad, "\n\n".join(r.violation for r in bad[:3])


@needs_go
@pytest.mark.timeout(max(300, SEEDS * 2))
def test_mixed_schedules_keep_raft_safe_live_and_durable() -> None:
    _no_violations(run_many(range(SEEDS), nodes=3, jobs=JOBS, impls=MIXED))


@needs_go
@pytest.mark.timeout(300)
def test_mixed_membership_schedules_keep_raft_safe_live_and_durable() -> None:
    seeds = range(2_000_000, 2_000_006)
    _no_violations(run_many(seeds, nodes=5, jobs=JOBS, membership=True, impls=MIXED))


@needs_go
def test_a_mixed_seed_replays_exactly_and_names_each_nodes_core() -> None:
    first, w1 = run_one(1, 3, trace_all=True, impls=MIXED)
    _, w2 = run_one(1, 3, trace_all=True, impls=MIXED)
    assert first.violation is None
    assert w1.stats["elections"] > 1 and w1.stats["crash"] > 0  # a schedule with faults
    assert w1.trace == w2.trace
    assert w1.stats == w2.stats
    assert [x.impl for x in w1.nodes] == ["py", "go", "py"]
    assert "impls=n1:py,n2:go,n3:py" in w1.p.describe()
    starts = [ev for ev in w1.trace if ev[1] == "start"]
    assert {ev[2]: ev[3].split()[0] for ev in starts} == {"n1": "[py]", "n2": "[go]", "n3": "[py]"}


@needs_go
def test_a_mixed_membership_seed_replays_exactly() -> None:
    first, w1 = run_one(2_000_001, 5, trace_all=True, membership=True, impls=MIXED)
    _, w2 = run_one(2_000_001, 5, trace_all=True, membership=True, impls=MIXED)
    assert first.violation is None
    assert w1.stats["member_changes"] > 0
    assert w1.trace == w2.trace


@needs_go
def test_the_default_run_has_no_go_core() -> None:
    _, world = run_one(12345, 3)
    assert not world.mixed
    assert all(x.impl == "py" and not x.remote for x in world.nodes)
    assert "impls=" not in world.p.describe()


@needs_go
def test_a_violation_in_a_go_core_says_how_to_reproduce_it() -> None:
    result = find_violation(
        range(0, 100), mutate="forget_hard_state", impls=MIXED, mutate_impl="go"
    )
    assert result is not None
    assert "--impls py,go,py --mutate forget_hard_state --mutate-impl go" in result.violation
    again, _ = run_one(result.seed, mutate="forget_hard_state", impls=MIXED, mutate_impl="go")
    assert again.violation == result.violation


@needs_go
def test_a_mutation_the_go_core_lacks_is_an_error_when_go_cores_carry_it() -> None:
    from tests.sim.remote import SimCoreServer

    go_names = SimCoreServer.get().mutations
    with pytest.raises(ValueError, match="no mutation"):
        check_impls(["go"], "no_such_mutation", "go")
    with pytest.raises(ValueError, match="needs Go cores"):
        check_impls(["py"], "forget_vote", "go")
    check_impls(["py"], "no_such_mutation", "py")  # Python's own choices decide
    assert set(GO_MUTATION_SEEDS) | set(GO_MEMBERSHIP_MUTATION_SEEDS) == go_names


@needs_go
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(GO_MUTATION_SEEDS))
def test_simulator_catches_go_mutation(name: str) -> None:
    seeds = GO_MUTATION_SEEDS[name]
    result = find_violation(
        seeds,
        nodes=MUTATION_NODES.get(name),
        mutate=name,
        jobs=JOBS,
        impls=ALL_GO,
        mutate_impl="go",
    )
    assert result is not None, f"Go mutation {name} survived seeds {seeds.start}..{seeds.stop - 1}"


@needs_go
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(GO_MEMBERSHIP_MUTATION_SEEDS))
def test_simulator_catches_go_membership_mutation(name: str) -> None:
    seeds = GO_MEMBERSHIP_MUTATION_SEEDS[name]
    result = find_violation(
        seeds, mutate=name, jobs=JOBS, membership=True, impls=ALL_GO, mutate_impl="go"
    )
    assert result is not None, f"Go mutation {name} survived seeds {seeds.start}..{seeds.stop - 1}"


@needs_go
@pytest.mark.timeout(300)
def test_in_mixed_schedules_the_mirror_of_each_go_core_log_is_the_core_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After every reply, GoCore.verify compares the proxy's mirror with the
    Go core's own log: appends, truncations, compactions, InstallSnapshot."""
    from tests.sim.remote import GoCore

    monkeypatch.setattr(GoCore, "verify", True)
    results = [run_one(seed, 3, impls=MIXED)[0] for seed in range(0, 6)]
    results += [
        run_one(seed, 5, membership=True, impls=MIXED)[0] for seed in range(2_000_000, 2_000_003)
    ]
    _no_violations(results)


@needs_go
def test_the_mirror_of_a_go_core_log_is_the_core_log() -> None:
    """A lone voter leads, appends, applies and compacts; after every step the
    proxy's mirror (log.entries, snapshot, term_at) equals the Go core's own."""
    from tests.sim.remote import GoCore
    from zmqnode.raft import RaftConfig, Role
    from zmqnode.raft.log import LogInvariantError

    core = GoCore("n1", (), RaftConfig(election_ticks=4), seed=3)

    def pump() -> None:
        core.expect_ready()
        core.tick()
        while core.has_ready():
            rd = core.ready()
            core.advance(rd)
        assert core.log.entries == core.remote_log_entries()
        for i in range(core.snapshot.index, core.last_index + 2):
            assert core.term_at(i) == core.remote_term_at(i)

    for _ in range(12):
        pump()
    assert core.role is Role.LEADER
    for k in range(5):
        assert core.propose(b"c%d" % k).accepted
        pump()
    assert core.applied_index == core.last_index == 6
    core.compact(4, b"state")
    assert (core.snapshot.index, core.snapshot.data) == (4, b"state")
    pump()
    assert [e.index for e in core.log.entries] == [5, 6]
    with pytest.raises(LogInvariantError):
        core.compact(9, b"")
    core.close()


def test_building_the_worker_without_go_says_what_to_install(tmp_path, monkeypatch) -> None:
    from harness import gobuild

    (tmp_path / "go.mod").write_text("module zmqnode\n")
    monkeypatch.setattr(gobuild.shutil, "which", lambda name: None)
    monkeypatch.setattr(gobuild.os.path, "exists", lambda path: False)
    with pytest.raises(gobuild.GoBuildError, match="install golang-go and libzmq3-dev"):
        gobuild.ensure_worker(tmp_path)
    (tmp_path / "worker").write_text("built after the sources")
    assert gobuild.ensure_worker(tmp_path) == tmp_path / "worker"  # up to date: no go needed
