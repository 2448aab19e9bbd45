"""``python -m tests.sim``: run simulated Raft schedules and report violations.

    python -m tests.sim --seeds 1000 [--nodes 3|5] [--start S] [--jobs J]
    python -m tests.sim --seed S --trace          # replay one schedule, print every event
    python -m tests.sim --seeds 200 --mutate stale_append   # prove the checks catch a bug
    python -m tests.sim --seeds 1000 --membership   # an operator adds, removes, replaces
    python -m tests.sim --list-mutations

Go and Kotlin cores (issues 17, 18; the protocol is docs/SIMCORE.md):
``--impls`` lists the implementations (py, go, kotlin) cycled over the nodes,
spares included (default: all py); go/worker and kotlin/worker.jar are built
first when their sources changed (harness/gobuild.py, harness/ktbuild.py), and
each simulator process runs its Go cores in one ``go/worker sim-core`` and its
Kotlin cores in one ``java -jar kotlin/worker.jar sim-core``.

    python -m tests.sim --seeds 1000 --impls py,go,py --nodes 3 --jobs 2
    python -m tests.sim --seed S --impls py,go,py --trace   # replays exactly; [go] marks Go nodes
    python -m tests.sim --seeds 500 --impls go --mutate stale_append       # the Go core broken
    python -m tests.sim --seeds 500 --impls py,go --mutate forget_vote --mutate-impl py
    python -m tests.sim --seeds 300 --impls py,go,kotlin --mutate stale_append --mutate-impl kotlin

``--mutate NAME`` breaks the cores that ``--mutate-impl`` names: all (the
default), py (patched into RaftCore as before), go (raft.Options.Mutations)
or kotlin (zmqnode.raft.Options.mutations); a name such a core lacks is an
error when its cores are to carry it.

The last line of a run is exactly ``N schedules, V violations``; the exit
status is 1 when V > 0. Schedules per second go to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .mutations import MUTATIONS
from .runner import MUTATE_IMPLS, check_impls, main_loop, py_mutation, remote_impls, run_one
from .trace import fmt_event


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seeds", type=int, default=100, help="number of schedules (default 100)")
    ap.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--seed", type=int, help="run exactly this one seed")
    ap.add_argument("--nodes", type=int, choices=(3, 5), help="cluster size (default: per seed)")
    ap.add_argument(
        "--jobs", type=int, default=1, help="worker processes (default 1; 0 = all CPUs)"
    )
    ap.add_argument("--trace", action="store_true", help="print every event of the schedule")
    ap.add_argument("--mutate", choices=sorted(MUTATIONS), help="break the core on purpose")
    ap.add_argument(
        "--membership",
        action="store_true",
        help="spare nodes join, and an operator adds, promotes, demotes, removes and "
        "replaces members (the leader too) among the other faults",
    )
    ap.add_argument(
        "--impls",
        default="py",
        help="core implementations cycled over the nodes, e.g. py,go,py or py,go,kotlin "
        "(default py)",
    )
    ap.add_argument(
        "--mutate-impl",
        default="all",
        choices=MUTATE_IMPLS,
        help="which cores --mutate breaks (default all)",
    )
    ap.add_argument("--list-mutations", action="store_true")
    args = ap.parse_args(argv)
    impls = [x.strip() for x in args.impls.split(",") if x.strip()] or ["py"]
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... --trace | head` ends quietly

    if args.list_mutations:
        remote = remote_impls(impls)  # with --impls ...go,kotlin...: which they have too
        names = {}
        if remote:
            from .remote import SimCoreServer

            names = {impl: SimCoreServer.get(impl).mutations for impl in remote}
        width = len(",".join(["py", *remote])) + 1
        for name, mutation in sorted(MUTATIONS.items()):
            has = ""
            if remote:
                has = ",".join(["py"] + [i for i in remote if name in names[i]]).ljust(width)
            print(f"{name:24} {has}{mutation.doc}")
        return 0
    try:
        check_impls(impls, args.mutate, args.mutate_impl)
    except (ValueError, OSError) as exc:
        print(f"python -m tests.sim: {exc}", file=sys.stderr)
        return 2
    jobs = args.jobs or os.cpu_count() or 1
    if args.seed is not None:
        from .mutations import mutated

        with mutated(py_mutation(args.mutate, args.mutate_impl)):
            result, world = run_one(
                args.seed,
                args.nodes,
                args.mutate,
                trace_all=args.trace,
                membership=args.membership,
                impls=impls,
                mutate_impl=args.mutate_impl,
            )
        if args.trace:
            print(f"seed {args.seed}: {world.p.describe()}")
            for ev in world.trace:
                print(fmt_event(ev))
        print(result.violation or f"seed {args.seed}: ok ({world.events} events, {world.stats})")
        print(f"1 schedules, {1 if result.violation else 0} violations")
        return 1 if result.violation else 0
    seeds = list(range(args.start, args.start + args.seeds))
    return main_loop(
        seeds,
        args.nodes,
        args.mutate,
        jobs,
        membership=args.membership,
        impls=impls,
        mutate_impl=args.mutate_impl,
    )


if __name__ == "__main__":
    sys.exit(main())
