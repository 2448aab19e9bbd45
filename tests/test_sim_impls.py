"""The fault simulator drives Go and Kotlin cores too (issues 17 and 18;
docs/SIMCORE.md).

A Go core runs in ``go/worker sim-core``, a Kotlin core (kotlin/src/main/
kotlin/Raft*.kt) in ``java -jar kotlin/worker.jar sim-core``, one server
per simulator process, next to the Python cores. For each of Go and Kotlin
(the tests are parametrised by the implementation, ``[go]``/``[kotlin]``):

- Mixed schedules (``--impls py,go,py`` or ``py,kotlin,py``; 3 nodes, and
  5 with membership changes) keep every property the Python-only ones keep;
  so do schedules with all three languages (``py,go,kotlin``).
  ``ZMQNODE_SIM_IMPLS_SEEDS`` sets how many 3-node seeds (default 30).
- A mixed seed replays exactly, and its trace says which node runs which core.
- Each mutation of the core (Go: ``raft.MutationNames()``, carried through
  ``raft.Options.Mutations``; Kotlin: ``zmqnode.raft.Mutations``, through
  ``Options.mutations``) is caught within a fixed set of seeds, every node
  a core of that implementation, as tests/test_raft_sim.py proves it for
  the Python core; ``--mutate-impl kotlin`` breaks only the Kotlin cores.
- The proxy's mirror of a core's log is the core's log.

Needs ``go`` (golang-go); the tests build go/worker when its sources changed.
The Kotlin cases need java and kotlinc (harness/ktbuild.py builds
kotlin/worker.jar when its sources changed; ``ZMQNODE_KOTLIN_JAR`` names a
prebuilt jar instead) and are ``kotlin`` and ``slow``: every one starts a
JVM sim-core (and may build the jar first).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.sim.runner import check_impls, find_violation, run_many, run_one

pytestmark = pytest.mark.sim
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs go (golang-go)")
needs_kotlin = pytest.mark.skipif(
    shutil.which("java") is None
    or (shutil.which("kotlinc") is None and not os.environ.get("ZMQNODE_KOTLIN_JAR")),
    reason="needs java and kotlinc (kotlin, default-jdk-headless)",
)
KOTLIN_MARKS = (needs_kotlin, pytest.mark.kotlin, pytest.mark.slow)

SEEDS = int(os.environ.get("ZMQNODE_SIM_IMPLS_SEEDS", "30"))
JOBS = int(os.environ.get("ZMQNODE_SIM_JOBS", str(min(2, os.cpu_count() or 1))))
NAMES = {"go": "Go", "kotlin": "Kotlin"}
# Each implementation with two Python cores around it, and all three.
MIXED = {"go": ("py", "go", "py"), "kotlin": ("py", "kotlin", "py")}
THREE = ("py", "go", "kotlin")

# For each mutation: the seeds searched (every node a core of that
# implementation, nodes per seed as the schedule draws it unless
# MUTATION_NODES says); the search stops at the first violation. Measured with
#   python -m tests.sim --impls go --seeds N --mutate NAME
#   python -m tests.sim --impls kotlin --mutate-impl kotlin --seeds N --mutate NAME
# and chosen to hold several violating seeds, as in tests/test_raft_sim.py.
# (The Kotlin core draws its election timeouts from SplitMix64, not Go's
# math/rand, so its schedules and first violating seeds are its own.)
MUTATION_SEEDS = {
    "go": {
        "forget_hard_state": range(0, 100),  # first at seed 1
        "vote_ignores_log": range(0, 100),  # first at seed 1
        "heartbeat_commit": range(0, 100),  # first at seed 4
        "stale_append": range(0, 300),  # first at seed 15
        "forget_vote": range(0, 300),  # first at seed 8
        "old_term_commit": range(0, 1000),  # first at seed 71 (Figure 8)
        "append_commit_past_batch": range(0, 800),  # 10 in 0..999: 205, 274, 424, ...
        "read_without_quorum": range(0, 1500),  # 7 in 0..1499: 167, 688, 738, ...
        "vote_only_with_term": range(0, 1000),  # 3 nodes; 5 in 0..699: 65, 205, 396, ...
    },
    "kotlin": {
        "forget_hard_state": range(0, 100),  # first at seed 1
        "vote_ignores_log": range(0, 100),  # first at seed 2
        "heartbeat_commit": range(0, 100),  # first at seed 1
        "stale_append": range(0, 300),  # first at seed 15
        "forget_vote": range(0, 300),  # first at seed 20
        "old_term_commit": range(0, 1000),  # first at seed 71 (Figure 8)
        "append_commit_past_batch": range(0, 1000),  # first at seed 303
        "read_without_quorum": range(0, 1500),  # first at seed 28
        "vote_only_with_term": range(0, 1000),  # 3 nodes; first at seed 65
    },
}
# Membership mode (Go measured over seeds 0..99).
MEMBERSHIP_MUTATION_SEEDS = {
    "go": {
        "config_before_own_term_commit": range(0, 100),  # 63%, first at seed 2
        "two_configs_in_flight": range(0, 100),  # 71%, first at seed 1
        "learner_counts_in_quorum": range(0, 100),  # 42%, first at seed 1
    },
    "kotlin": {
        "config_before_own_term_commit": range(0, 100),  # first at seed 1
        "two_configs_in_flight": range(0, 100),  # first at seed 2
        "learner_counts_in_quorum": range(0, 100),  # first at seed 4
    },
}
MUTATION_NODES = {"vote_only_with_term": 3}
# The schedules whose mirrors are verified after every reply: 3-node seeds,
# 5-node membership seeds.
MIRROR_SEEDS = {
    "go": (range(0, 6), range(2_000_000, 2_000_003)),
    "kotlin": (range(0, 4), range(2_000_000, 2_000_002)),
}


def each_impl(**timeouts: int) -> list:
    """``go`` and ``kotlin`` as parameters, each with its marks (and its
    own timeout when given)."""
    params = []
    for impl, marks in (("go", (needs_go,)), ("kotlin", KOTLIN_MARKS)):
        extra = [pytest.mark.timeout(timeouts[impl])] if impl in timeouts else []
        params.append(pytest.param(impl, id=impl, marks=[*marks, *extra]))
    return params


def each_mutation(table: dict[str, dict[str, range]], **timeouts: int) -> list:
    """(implementation, mutation name) for every mutation of each core."""
    params = []
    for impl, marks in (("go", (needs_go,)), ("kotlin", KOTLIN_MARKS)):
        for name in sorted(table[impl]):
            params.append(
                pytest.param(
                    impl,
                    name,
                    id=f"{impl}-{name}",
                    marks=[*marks, pytest.mark.timeout(timeouts[impl])],
                )
            )
    return params


def _no_violations(results) -> None:
    bad = [r for r in results if r.violation]
    assert not bad, "\n\n".join(r.violation for r in bad[:3])


@pytest.mark.parametrize("impl", each_impl(go=max(300, SEEDS * 2), kotlin=max(300, SEEDS * 3)))
def test_mixed_schedules_keep_raft_safe_live_and_durable(impl: str) -> None:
    _no_violations(run_many(range(SEEDS), nodes=3, jobs=JOBS, impls=MIXED[impl]))


@needs_go
@pytest.mark.kotlin
@pytest.mark.slow
@needs_kotlin
@pytest.mark.timeout(max(300, SEEDS * 3))
def test_python_go_and_kotlin_cores_in_one_cluster_keep_raft_safe() -> None:
    _no_violations(run_many(range(SEEDS), nodes=3, jobs=JOBS, impls=THREE))


@pytest.mark.parametrize("impl", each_impl(go=300, kotlin=300))
def test_mixed_membership_schedules_keep_raft_safe_live_and_durable(impl: str) -> None:
    seeds = range(2_000_000, 2_000_006)
    _no_violations(run_many(seeds, nodes=5, jobs=JOBS, membership=True, impls=MIXED[impl]))


@pytest.mark.parametrize("impl", each_impl())
def test_a_mixed_seed_replays_exactly_and_names_each_nodes_core(impl: str) -> None:
    first, w1 = run_one(1, 3, trace_all=True, impls=MIXED[impl])
    _, w2 = run_one(1, 3, trace_all=True, impls=MIXED[impl])
    assert first.violation is None
    assert w1.stats["elections"] > 1 and w1.stats["crash"] > 0  # a schedule with faults
    assert w1.trace == w2.trace
    assert w1.stats == w2.stats
    assert [x.impl for x in w1.nodes] == ["py", impl, "py"]
    assert f"impls=n1:py,n2:{impl},n3:py" in w1.p.describe()
    starts = [ev for ev in w1.trace if ev[1] == "start"]
    assert {ev[2]: ev[3].split()[0] for ev in starts} == {
        "n1": "[py]",
        "n2": f"[{impl}]",
        "n3": "[py]",
    }


@pytest.mark.parametrize("impl", each_impl())
def test_a_mixed_membership_seed_replays_exactly(impl: str) -> None:
    first, w1 = run_one(2_000_001, 5, trace_all=True, membership=True, impls=MIXED[impl])
    _, w2 = run_one(2_000_001, 5, trace_all=True, membership=True, impls=MIXED[impl])
    assert first.violation is None
    assert w1.stats["member_changes"] > 0
    assert w1.trace == w2.trace


@needs_go
def test_the_default_run_has_no_go_core() -> None:
    _, world = run_one(12345, 3)
    assert not world.mixed
    assert all(x.impl == "py" and not x.remote for x in world.nodes)
    assert "impls=" not in world.p.describe()


@pytest.mark.parametrize("impl", each_impl())
def test_a_violation_in_a_core_says_how_to_reproduce_it(impl: str) -> None:
    mixed = MIXED[impl]
    result = find_violation(
        range(0, 100), mutate="forget_hard_state", impls=mixed, mutate_impl=impl
    )
    assert result is not None
    assert (
        f"--impls {','.join(mixed)} --mutate forget_hard_state --mutate-impl {impl}"
        in result.violation
    )
    again, _ = run_one(result.seed, mutate="forget_hard_state", impls=mixed, mutate_impl=impl)
    assert again.violation == result.violation


@needs_kotlin
@pytest.mark.kotlin
@pytest.mark.slow
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
    _, world = run_one(3, 3, mutate="stale_append", impls=MIXED["kotlin"], mutate_impl="kotlin")
    assert world.remote_mutations == {"kotlin": ("stale_append",)}


@pytest.mark.parametrize("impl", each_impl())
def test_a_mutation_the_core_lacks_is_an_error_when_its_cores_carry_it(impl: str) -> None:
    from tests.sim.remote import SimCoreServer

    names = SimCoreServer.get(impl).mutations
    with pytest.raises(ValueError, match=f"the {NAMES[impl]} core has no mutation"):
        check_impls([impl], "no_such_mutation", impl)
    without = [i for i in ("py", "go") if i != impl]  # go: py; kotlin: py, go
    with pytest.raises(ValueError, match=f"needs {NAMES[impl]} cores"):
        check_impls(without, "forget_vote", impl)
    # Python's own choices decide, with or without a core of impl's.
    check_impls(["py"], "no_such_mutation", "py")
    check_impls(["py", impl], "no_such_mutation", "py")
    assert set(MUTATION_SEEDS[impl]) | set(MEMBERSHIP_MUTATION_SEEDS[impl]) == names


@pytest.mark.parametrize(("impl", "name"), each_mutation(MUTATION_SEEDS, go=600, kotlin=900))
def test_simulator_catches_mutation(impl: str, name: str) -> None:
    seeds = MUTATION_SEEDS[impl][name]
    result = find_violation(
        seeds,
        nodes=MUTATION_NODES.get(name),
        mutate=name,
        jobs=JOBS,
        impls=(impl,),
        mutate_impl=impl,
    )
    assert result is not None, (
        f"{NAMES[impl]} mutation {name} survived seeds {seeds.start}..{seeds.stop - 1}"
    )


@pytest.mark.parametrize(
    ("impl", "name"), each_mutation(MEMBERSHIP_MUTATION_SEEDS, go=600, kotlin=600)
)
def test_simulator_catches_membership_mutation(impl: str, name: str) -> None:
    seeds = MEMBERSHIP_MUTATION_SEEDS[impl][name]
    result = find_violation(
        seeds, mutate=name, jobs=JOBS, membership=True, impls=(impl,), mutate_impl=impl
    )
    assert result is not None, (
        f"{NAMES[impl]} mutation {name} survived seeds {seeds.start}..{seeds.stop - 1}"
    )


@pytest.mark.parametrize("impl", each_impl(go=300, kotlin=300))
def test_in_mixed_schedules_the_mirror_of_each_core_log_is_the_core_log(
    impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After every reply, GoCore.verify compares the proxy's mirror with the
    core's own log: appends, truncations, compactions, InstallSnapshot."""
    from tests.sim.remote import GoCore

    monkeypatch.setattr(GoCore, "verify", True)
    three_nodes, membership = MIRROR_SEEDS[impl]
    results = [run_one(seed, 3, impls=MIXED[impl])[0] for seed in three_nodes]
    results += [run_one(seed, 5, membership=True, impls=MIXED[impl])[0] for seed in membership]
    _no_violations(results)


@pytest.mark.parametrize("impl", each_impl())
def test_the_mirror_of_a_core_log_is_the_core_log(impl: str) -> None:
    """A lone voter leads, appends, applies and compacts; after every step the
    proxy's mirror (log.entries, snapshot, term_at) equals the core's own."""
    from tests.sim.remote import GoCore
    from zmqnode.raft import RaftConfig, Role
    from zmqnode.raft.log import LogInvariantError

    core = GoCore("n1", (), RaftConfig(election_ticks=4), seed=3, impl=impl)
    assert core.impl == impl

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
    with pytest.raises(LogInvariantError, match=f"{NAMES[impl]} core"):
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


@pytest.mark.kotlin
@pytest.mark.slow
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
