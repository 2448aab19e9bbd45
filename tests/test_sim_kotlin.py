"""The fault simulator drives Kotlin cores too (issue 18; docs/SIMCORE.md).

The Kotlin Raft core (kotlin/src/main/kotlin/Raft*.kt) runs in ``java -jar
kotlin/worker.jar sim-core``, one per simulator process, next to Python
cores and Go cores (go/worker sim-core):

- Mixed schedules (``--impls py,kotlin,py`` and ``py,go,kotlin``; 3 nodes,
  and 5 with membership changes) keep every property the Python-only ones
  keep. ``ZMQNODE_SIM_IMPLS_SEEDS`` sets how many 3-node seeds (default 30).
- A mixed seed replays exactly, and its trace says which node runs which core.
- Each mutation of the Kotlin core (``zmqnode.raft.Mutations``, carried
  through ``Options.mutations``) is caught within a fixed set of seeds,
  every node a Kotlin core, and ``--mutate-impl kotlin`` breaks only them.
- The proxy's mirror of a Kotlin core's log is the core's log.

Needs java and kotlinc (harness/ktbuild.py builds kotlin/worker.jar when its
sources changed; ``ZMQNODE_KOTLIN_JAR`` names a prebuilt jar instead).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.sim.runner import check_impls, find_violation, run_many, run_one

# slow: every test starts a JVM sim-core (and may build the jar first).
pytestmark = [pytest.mark.sim, pytest.mark.kotlin, pytest.mark.slow]
needs_kotlin = pytest.mark.skipif(
    shutil.which("java") is None
    or (shutil.which("kotlinc") is None and not os.environ.get("ZMQNODE_KOTLIN_JAR")),
    reason="needs java and kotlinc (kotlin, default-jdk-headless)",
)
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs go (golang-go)")

SEEDS = int(os.environ.get("ZMQNODE_SIM_IMPLS_SEEDS", "30"))
JOBS = int(os.environ.get("ZMQNODE_SIM_JOBS", str(min(2, os.cpu_count() or 1))))
MIXED = ("py", "kotlin", "py")
THREE = ("py", "go", "kotlin")
ALL_KOTLIN = ("kotlin",)

# For each Kotlin mutation: the seeds searched (every node a Kotlin core,
# nodes per seed as the schedule draws it unless MUTATION_NODES says); the
# search stops at the first violation. Measured with
#   python -m tests.sim --impls kotlin --mutate-impl kotlin --seeds N --mutate NAME
# (the Kotlin core draws its election timeouts from SplitMix64, not Go's
# math/rand, so its schedules and first violating seeds are its own).
KOTLIN_MUTATION_SEEDS = {
    "forget_hard_state": range(0, 100),  # first at seed 1
    "vote_ignores_log": range(0, 100),  # first at seed 2
    "heartbeat_commit": range(0, 100),  # first at seed 1
    "stale_append": range(0, 300),  # first at seed 15
    "forget_vote": range(0, 300),  # first at seed 20
    "old_term_commit": range(0, 1000),  # first at seed 71 (Figure 8)
    "append_commit_past_batch": range(0, 1000),  # first at seed 303
    "read_without_quorum": range(0, 1500),  # first at seed 28
    "vote_only_with_term": range(0, 1000),  # 3 nodes; first at seed 65
}
# Membership mode.
KOTLIN_MEMBERSHIP_MUTATION_SEEDS = {
    "config_before_own_term_commit": range(0, 100),  # first at seed 1
    "two_configs_in_flight": range(0, 100),  # first at seed 2
    "learner_counts_in_quorum": range(0, 100),  # first at seed 4
}
MUTATION_NODES = {"vote_only_with_term": 3}


def _no_violations(results) -> None:
    bad = [r for r in results if r.violation]
    assert not bad, "\n\n".join(r.violation for r in bad[:3])


@needs_kotlin
@pytest.mark.timeout(max(300, SEEDS * 3))
def test_mixed_kotlin_schedules_keep_raft_safe_live_and_durable() -> None:
    _no_violations(run_many(range(SEEDS), nodes=3, jobs=JOBS, impls=MIXED))


@needs_kotlin
@needs_go
@pytest.mark.timeout(max(300, SEEDS * 3))
def test_python_go_and_kotlin_cores_in_one_cluster_keep_raft_safe() -> None:
    _no_violations(run_many(range(SEEDS), nodes=3, jobs=JOBS, impls=THREE))


@needs_kotlin
@pytest.mark.timeout(300)
def test_mixed_kotlin_membership_schedules_keep_raft_safe_live_and_durable() -> None:
    seeds = range(2_000_000, 2_000_006)
    _no_violations(run_many(seeds, nodes=5, jobs=JOBS, membership=True, impls=MIXED))


@needs_kotlin
def test_a_mixed_kotlin_seed_replays_exactly_and_names_each_nodes_core() -> None:
    first, w1 = run_one(1, 3, trace_all=True, impls=MIXED)
    _, w2 = run_one(1, 3, trace_all=True, impls=MIXED)
    assert first.violation is None
    assert w1.stats["elections"] > 1 and w1.stats["crash"] > 0  # a schedule with faults
    assert w1.trace == w2.trace
    assert w1.stats == w2.stats
    assert [x.impl for x in w1.nodes] == ["py", "kotlin", "py"]
    assert "impls=n1:py,n2:kotlin,n3:py" in w1.p.describe()
    starts = [ev for ev in w1.trace if ev[1] == "start"]
    assert {ev[2]: ev[3].split()[0] for ev in starts} == {
        "n1": "[py]",
        "n2": "[kotlin]",
        "n3": "[py]",
    }


@needs_kotlin
def test_a_violation_in_a_kotlin_core_says_how_to_reproduce_it() -> None:
    result = find_violation(
        range(0, 100), mutate="forget_hard_state", impls=MIXED, mutate_impl="kotlin"
    )
    assert result is not None
    assert (
        "--impls py,kotlin,py --mutate forget_hard_state --mutate-impl kotlin" in result.violation
    )
    again, _ = run_one(result.seed, mutate="forget_hard_state", impls=MIXED, mutate_impl="kotlin")
    assert again.violation == result.violation


@needs_kotlin
def test_mutate_impl_kotlin_breaks_only_the_kotlin_cores() -> None:
    from tests.sim.runner import remote_mutations

    assert remote_mutations("stale_append", "kotlin", THREE) == {
        "go": (),
        "kotlin": ("stale_append",),
    }
    assert remote_mutations("stale_append", "all", THREE) == {
        "go": ("stale_append",),
        "kotlin": ("stale_append",),
    }
    assert remote_mutations("stale_append", "py", THREE) == {"go": (), "kotlin": ()}
    _, world = run_one(3, 3, mutate="stale_append", impls=MIXED, mutate_impl="kotlin")
    assert world.remote_mutations == {"kotlin": ("stale_append",)}


@needs_kotlin
def test_a_mutation_the_kotlin_core_lacks_is_an_error_when_kotlin_cores_carry_it() -> None:
    from tests.sim.remote import SimCoreServer

    names = SimCoreServer.get("kotlin").mutations
    with pytest.raises(ValueError, match="Kotlin core has no mutation"):
        check_impls(["kotlin"], "no_such_mutation", "kotlin")
    with pytest.raises(ValueError, match="needs Kotlin cores"):
        check_impls(["py", "go"], "forget_vote", "kotlin")
    check_impls(["py", "kotlin"], "no_such_mutation", "py")  # Python's own choices decide
    assert set(KOTLIN_MUTATION_SEEDS) | set(KOTLIN_MEMBERSHIP_MUTATION_SEEDS) == names


@needs_kotlin
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(KOTLIN_MUTATION_SEEDS))
def test_simulator_catches_kotlin_mutation(name: str) -> None:
    seeds = KOTLIN_MUTATION_SEEDS[name]
    result = find_violation(
        seeds,
        nodes=MUTATION_NODES.get(name),
        mutate=name,
        jobs=JOBS,
        impls=ALL_KOTLIN,
        mutate_impl="kotlin",
    )
    assert result is not None, (
        f"Kotlin mutation {name} survived seeds {seeds.start}..{seeds.stop - 1}"
    )


@needs_kotlin
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(KOTLIN_MEMBERSHIP_MUTATION_SEEDS))
def test_simulator_catches_kotlin_membership_mutation(name: str) -> None:
    seeds = KOTLIN_MEMBERSHIP_MUTATION_SEEDS[name]
    result = find_violation(
        seeds, mutate=name, jobs=JOBS, membership=True, impls=ALL_KOTLIN, mutate_impl="kotlin"
    )
    assert result is not None, (
        f"Kotlin mutation {name} survived seeds {seeds.start}..{seeds.stop - 1}"
    )


@needs_kotlin
@pytest.mark.timeout(300)
def test_in_mixed_schedules_the_mirror_of_each_kotlin_core_log_is_the_core_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After every reply, GoCore.verify compares the proxy's mirror with the
    Kotlin core's own log: appends, truncations, compactions, InstallSnapshot."""
    from tests.sim.remote import GoCore

    monkeypatch.setattr(GoCore, "verify", True)
    results = [run_one(seed, 3, impls=MIXED)[0] for seed in range(0, 4)]
    results += [
        run_one(seed, 5, membership=True, impls=MIXED)[0] for seed in range(2_000_000, 2_000_002)
    ]
    _no_violations(results)


@needs_kotlin
def test_the_mirror_of_a_kotlin_core_log_is_the_core_log() -> None:
    """A lone voter leads, appends, applies and compacts; after every step the
    proxy's mirror (log.entries, snapshot, term_at) equals the Kotlin core's own."""
    from tests.sim.remote import GoCore
    from zmqnode.raft import RaftConfig, Role
    from zmqnode.raft.log import LogInvariantError

    core = GoCore("n1", (), RaftConfig(election_ticks=4), seed=3, impl="kotlin")
    assert core.impl == "kotlin"

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
    with pytest.raises(LogInvariantError, match="Kotlin core"):
        core.compact(9, b"")
    core.close()


def test_building_the_kotlin_worker_without_kotlinc_says_what_to_install(
    tmp_path, monkeypatch
) -> None:
    from harness import ktbuild

    src = tmp_path / "src" / "main" / "kotlin"
    src.mkdir(parents=True)
    (src / "Main.kt").write_text("fun main() {}\n")
    monkeypatch.setattr(ktbuild.shutil, "which", lambda name: None)
    monkeypatch.setattr(ktbuild.os.path, "exists", lambda path: False)
    with pytest.raises(ktbuild.KtBuildError, match="install kotlin"):
        ktbuild.ensure_worker(tmp_path)
    (tmp_path / "worker.jar").write_text("built after the sources")
    assert ktbuild.ensure_worker(tmp_path) == tmp_path / "worker.jar"  # up to date: no kotlinc
