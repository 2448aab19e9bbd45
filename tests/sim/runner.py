"""Run schedules (one, or many across processes) and report violations."""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .trace import fmt_event
from .world import World

TRACE_LEN = 400
# The core implementations a schedule may mix (--impls), cycled over its nodes.
Impls = list[str] | tuple[str, ...] | None
IMPLS = ("py", "go", "kotlin")
# Those whose cores run in a sim-core server (tests/sim/remote.py).
REMOTE_IMPLS = ("go", "kotlin")
MUTATE_IMPLS = ("all", "py", "go", "kotlin")
_NAMES = {"py": "Python", "go": "Go", "kotlin": "Kotlin"}


@dataclass
class Result:
    seed: int
    events: int
    violation: str | None  # the full report, or None
    kind: str | None = None


def rerun_command(
    seed: int,
    nodes: int | None,
    mutate: str | None,
    membership: bool = False,
    impls: Impls = None,
    mutate_impl: str = "all",
) -> str:
    cmd = f"python -m tests.sim --seed {seed} --trace"
    if nodes is not None:
        cmd += f" --nodes {nodes}"
    if membership:
        cmd += " --membership"
    if impls and any(i != "py" for i in impls):
        cmd += f" --impls {','.join(impls)}"
    if mutate:
        cmd += f" --mutate {mutate}"
        if mutate_impl != "all":
            cmd += f" --mutate-impl {mutate_impl}"
    return cmd


# -- implementations (--impls, --mutate-impl) ----------------------------------------


def uses_go(impls: Impls) -> bool:
    return bool(impls) and "go" in impls  # type: ignore[operator]


def remote_impls(impls: Impls) -> list[str]:
    """The remote implementations ``impls`` uses, in REMOTE_IMPLS order."""
    return [i for i in REMOTE_IMPLS if impls and i in impls]


def ensure_workers(impls: Impls) -> None:
    """Build the servers' programs the run needs (go/worker, kotlin/worker.jar)."""
    for impl in remote_impls(impls):
        if impl == "go":
            from harness.gobuild import ensure_worker

            ensure_worker()
        else:
            from .remote import kotlin_jar

            kotlin_jar()


def py_mutation(mutate: str | None, mutate_impl: str) -> str | None:
    """The mutation to patch into this process's RaftCore, if any."""
    return mutate if mutate and mutate_impl in ("all", "py") else None


def go_mutations(mutate: str | None, mutate_impl: str, impls: Impls) -> tuple[str, ...]:
    """The mutations each Go core carries (raft.Options.Mutations)."""
    return remote_mutations(mutate, mutate_impl, impls).get("go", ())


def remote_mutations(
    mutate: str | None, mutate_impl: str, impls: Impls
) -> dict[str, tuple[str, ...]]:
    """The mutations the cores of each remote implementation carry."""
    out: dict[str, tuple[str, ...]] = {}
    for impl in remote_impls(impls):
        out[impl] = (mutate,) if mutate and mutate_impl in ("all", impl) else ()
    return out


def check_impls(impls: Impls, mutate: str | None, mutate_impl: str) -> None:
    """ValueError (saying what to change) for a combination that cannot run;
    builds go/worker when Go cores are asked for."""
    for impl in impls or ():
        if impl not in IMPLS:
            raise ValueError(f"unknown implementation {impl!r} (choose from {', '.join(IMPLS)})")
    if mutate_impl not in MUTATE_IMPLS:
        raise ValueError(f"--mutate-impl must be one of {', '.join(MUTATE_IMPLS)}")
    if mutate and mutate_impl in REMOTE_IMPLS and mutate_impl not in (impls or ()):
        name = _NAMES[mutate_impl]
        raise ValueError(
            f"--mutate-impl {mutate_impl} needs {name} cores: add {mutate_impl} to --impls"
        )
    remote = remote_impls(impls)
    if not remote:
        return
    from .remote import SimCoreServer

    for impl, carried in remote_mutations(mutate, mutate_impl, impls).items():
        names = SimCoreServer.get(impl).mutations
        if carried and mutate not in names:
            raise ValueError(
                f"the {_NAMES[impl]} core has no mutation {mutate!r} "
                f"(it has: {', '.join(sorted(names))}); "
                "use --mutate-impl py to break only the Python cores"
            )
    if mutate and mutate_impl == "py" and not any(i == "py" for i in impls or ()):
        raise ValueError("--mutate-impl py needs Python cores: add py to --impls")


def run_one(
    seed: int,
    nodes: int | None = None,
    mutate: str | None = None,
    trace_all: bool = False,
    trace_len: int = TRACE_LEN,
    membership: bool = False,
    impls: Impls = None,
    mutate_impl: str = "all",
) -> tuple[Result, World]:
    """One schedule. A Python mutation must already be patched in (``mutated``);
    ``mutate`` with Go or Kotlin cores in ``impls`` is handed to them here."""
    world = World(
        seed,
        nodes,
        trace_all=trace_all,
        trace_len=trace_len,
        membership=membership,
        impls=impls,
        remote_mutations=remote_mutations(mutate, mutate_impl, impls),
    )
    v = world.run()
    if v is None:
        return Result(seed, world.events, None), world
    lines = [
        f"VIOLATION seed={seed} [{v.kind}] {v.detail}",
        f"  schedule: {world.p.describe()}",
        f"  at {world.now / 1000:.3f}ms, phase {world.phase}, {world.events} events",
        f"  reproduce: {rerun_command(seed, nodes, mutate, membership, impls, mutate_impl)}",
    ]
    if not trace_all:
        lines.append(f"  last {len(world.trace)} events:")
        lines.extend("    " + fmt_event(ev) for ev in world.trace)
    return Result(seed, world.events, "\n".join(lines), v.kind), world


# -- many schedules ------------------------------------------------------------------

_worker_opts: dict = {}


def _init_worker(
    nodes: int | None,
    mutate: str | None,
    membership: bool,
    impls: Impls = None,
    mutate_impl: str = "all",
) -> None:
    _worker_opts.update(
        nodes=nodes, mutate=mutate, membership=membership, impls=impls, mutate_impl=mutate_impl
    )
    py = py_mutation(mutate, mutate_impl)
    if py:
        from .mutations import apply_mutation

        apply_mutation(py)


def _work(seed: int) -> Result:
    opts = _worker_opts
    result, _ = run_one(
        seed,
        opts["nodes"],
        opts["mutate"],
        membership=opts["membership"],
        impls=opts.get("impls"),
        mutate_impl=opts.get("mutate_impl", "all"),
    )
    return result


def run_many(
    seeds: Iterable[int],
    nodes: int | None = None,
    mutate: str | None = None,
    jobs: int = 1,
    membership: bool = False,
    impls: Impls = None,
    mutate_impl: str = "all",
) -> Iterator[Result]:
    """Results in completion order; the mutation (if any) is applied in every
    worker, to the cores ``mutate_impl`` names. Each worker process runs its Go
    and Kotlin cores (``impls``) in one ``go/worker sim-core`` and one ``java
    -jar kotlin/worker.jar sim-core`` of its own."""
    seeds = list(seeds)
    ensure_workers(impls)  # once, here, not racing in every worker
    if jobs <= 1:
        from .mutations import mutated

        with mutated(py_mutation(mutate, mutate_impl)):
            _worker_opts.update(
                nodes=nodes,
                mutate=mutate,
                membership=membership,
                impls=impls,
                mutate_impl=mutate_impl,
            )
            for seed in seeds:
                yield _work(seed)
        return
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    chunk = max(1, min(64, len(seeds) // (jobs * 8)))
    initargs = (nodes, mutate, membership, impls, mutate_impl)
    with ctx.Pool(jobs, initializer=_init_worker, initargs=initargs) as pool:
        yield from pool.imap_unordered(_work, seeds, chunksize=chunk)


def find_violation(
    seeds: Iterable[int],
    nodes: int | None = None,
    mutate: str | None = None,
    jobs: int = 1,
    membership: bool = False,
    impls: Impls = None,
    mutate_impl: str = "all",
) -> Result | None:
    """The first violating schedule among ``seeds`` (None if all pass)."""
    many = run_many(seeds, nodes, mutate, jobs, membership, impls, mutate_impl)
    with contextlib.closing(many) as results:
        for result in results:
            if result.violation:
                return result
    return None


def main_loop(
    seeds: list[int],
    nodes: int | None,
    mutate: str | None,
    jobs: int,
    out=sys.stdout,
    err=sys.stderr,
    max_reports: int = 5,
    membership: bool = False,
    impls: Impls = None,
    mutate_impl: str = "all",
) -> int:
    start = time.perf_counter()
    violations = 0
    done = 0
    events = 0
    kinds: dict[str, int] = {}
    for result in run_many(seeds, nodes, mutate, jobs, membership, impls, mutate_impl):
        done += 1
        events += result.events
        if result.violation:
            violations += 1
            kinds[result.kind or "?"] = kinds.get(result.kind or "?", 0) + 1
            if violations <= max_reports:
                print(result.violation, file=out, flush=True)
            else:
                print(
                    f"VIOLATION seed={result.seed} [{result.kind}] "
                    "(reproduce: "
                    f"{rerun_command(result.seed, nodes, mutate, membership, impls, mutate_impl)})",
                    file=out,
                )
        if done % 1000 == 0:
            rate = done / (time.perf_counter() - start)
            print(
                f"  ... {done} schedules, {violations} violations, {rate:.0f}/s",
                file=err,
                flush=True,
            )
    elapsed = time.perf_counter() - start
    print(
        f"{done / elapsed:.1f} schedules/s ({jobs} job(s), {elapsed:.1f}s, "
        f"{events / max(done, 1):.0f} events/schedule)"
        + (f"; violation kinds: {kinds}" if kinds else ""),
        file=err,
        flush=True,
    )
    print(f"{done} schedules, {violations} violations", file=out, flush=True)
    return 1 if violations else 0
