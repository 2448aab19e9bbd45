"""Deterministic simulation of a Raft cluster around the sans-IO ``RaftCore``.

One seed decides everything: the cluster size (3 or 5), the core's config,
the network (loss, duplication, delay, reordering, symmetric and one-way
partitions), crashes (with torn writes) and restarts from exactly what was
persisted, clock skew, compaction and InstallSnapshot, leadership transfer,
a leader-killing nemesis, and clients that write unique commands and do
ReadIndex reads; with ``--membership``, spare nodes and an operator changing
the membership (add, promote, demote, remove, replace; the leader too).
After every step the checks in ``checks.py`` verify Raft's Figure 3
properties, linearizable reads, and (after the network heals for good)
liveness and the durability of every acknowledged write.

    python -m tests.sim --seeds 10000 --jobs 2         # ends "N schedules, V violations"
    python -m tests.sim --seed 123 --trace             # replay one schedule, every event
    python -m tests.sim --seeds 1000 --mutate old_term_commit   # the checks have teeth
    python -m tests.sim --seeds 1000 --membership --nodes 5      # membership changes
    ZMQNODE_SIM_SEEDS=5000 pytest tests/test_raft_sim.py

Modules: ``world`` (the schedule: event queue, nodes, network, faults,
clients), ``checks`` (the invariants), ``mutations`` (deliberate core bugs),
``runner`` (one or many schedules, reports), ``trace`` (readable events),
``remote`` (Go cores in a ``go/worker sim-core`` process: ``--impls py,go,py``,
docs/SIMCORE.md).
"""
