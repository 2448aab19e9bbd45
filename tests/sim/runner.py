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


@dataclass
class Result:
    seed: int
    events: int
    violation: str | None  # the full report, or None
    kind: str | None = None


def rerun_command(
    seed: int, nodes: int | None, mutate: str | None, membership: bool = False
) -> str:
    cmd = f"python -m tests.sim --seed {seed} --trace"
    if nodes is not None:
        cmd += f" --nodes {nodes}"
    if membership:
        cmd += " --membership"
    if mutate:
        cmd += f" --mutate {mutate}"
    return cmd


def run_one(
    seed: int,
    nodes: int | None = None,
    mutate: str | None = None,
    trace_all: bool = False,
    trace_len: int = TRACE_LEN,
    membership: bool = False,
) -> tuple[Result, World]:
    world = World(seed, nodes, trace_all=trace_all, trace_len=trace_len, membership=membership)
    v = world.run()
    if v is None:
        return Result(seed, world.events, None), world
    lines = [
        f"VIOLATION seed={seed} [{v.kind}] {v.detail}",
        f"  schedule: {world.p.describe()}",
        f"  at {world.now / 1000:.3f}ms, phase {world.phase}, {world.events} events",
        f"  reproduce: {rerun_command(seed, nodes, mutate, membership)}",
    ]
    if not trace_all:
        lines.append(f"  last {len(world.trace)} events:")
        lines.extend("    " + fmt_event(ev) for ev in world.trace)
    return Result(seed, world.events, "\n".join(lines), v.kind), world


# -- many schedules ------------------------------------------------------------------

_worker_opts: dict = {}


def _init_worker(nodes: int | None, mutate: str | None, membership: bool) -> None:
    _worker_opts.update(nodes=nodes, mutate=mutate, membership=membership)
    if mutate:
        from .mutations import apply_mutation

        apply_mutation(mutate)


def _work(seed: int) -> Result:
    opts = _worker_opts
    result, _ = run_one(seed, opts["nodes"], opts["mutate"], membership=opts["membership"])
    return result


def run_many(
    seeds: Iterable[int],
    nodes: int | None = None,
    mutate: str | None = None,
    jobs: int = 1,
    membership: bool = False,
) -> Iterator[Result]:
    """Results in completion order; the mutation (if any) is applied in every worker."""
    seeds = list(seeds)
    if jobs <= 1:
        from .mutations import mutated

        with mutated(mutate):
            _worker_opts.update(nodes=nodes, mutate=mutate, membership=membership)
            for seed in seeds:
                yield _work(seed)
        return
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    chunk = max(1, min(64, len(seeds) // (jobs * 8)))
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(nodes, mutate, membership)) as pool:
        yield from pool.imap_unordered(_work, seeds, chunksize=chunk)


def find_violation(
    seeds: Iterable[int],
    nodes: int | None = None,
    mutate: str | None = None,
    jobs: int = 1,
    membership: bool = False,
) -> Result | None:
    """The first violating schedule among ``seeds`` (None if all pass)."""
    with contextlib.closing(run_many(seeds, nodes, mutate, jobs, membership)) as results:
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
) -> int:
    start = time.perf_counter()
    violations = 0
    done = 0
    events = 0
    kinds: dict[str, int] = {}
    for result in run_many(seeds, nodes, mutate, jobs, membership):
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
                    f"(reproduce: {rerun_command(result.seed, nodes, mutate, membership)})",
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
