"""Record differential traces of the Python Raft core for go/raft's replay test.

    cd /work/main && .venv/bin/python go/raft/testdata/gen_traces.py [--seeds N] [--steps K]

Runs random schedules (elections, proposals, membership changes, reads,
transfers, compaction, crashes, losses, partitions) on a few RaftCore
instances and writes every input each core received, with everything it
answered and its state afterwards, to go/raft/testdata/traces.jsonl. The Go
test (trace_test.go) feeds the same inputs to Go cores and demands the same
outputs. Both cores draw their election timeouts from one shared generator
(splitmix64, consumed exactly as Go's rand.Intn does), so ticks agree too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.raft_helpers import Network, config  # noqa: E402
from zmqnode.raft import (  # noqa: E402
    BROADCAST,
    ChangeType,
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    MessageType,
    RaftCore,
    Snapshot,
)
from zmqnode.raft.log import LogInvariantError  # noqa: E402

MASK = (1 << 64) - 1
MUTATIONS: list[str] = []  # --mutate: the Go cores replay with the same switch on


class GoRand:
    """Go's rand.New(splitmix64 source).Intn, as randrange."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK

    def int63(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        return z >> 1

    def int31(self) -> int:
        return self.int63() >> 32

    def randrange(self, n: int) -> int:
        if n & (n - 1) == 0:
            return self.int31() & (n - 1)
        top = (1 << 31) - 1 - (1 << 31) % n
        v = self.int31()
        while v > top:
            v = self.int31()
        return v % n


def enc_entry(e: Entry) -> dict:
    return {"index": e.index, "term": e.term, "kind": e.kind.value, "data": e.data.hex()}


def enc_snap(s: Snapshot | None):
    if s is None:
        return None
    return {"index": s.index, "term": s.term, "data": s.data.hex(), "membership": s.membership.hex()}


def enc_msg(m: Message) -> dict:
    return {
        "type": m.type.value, "src": m.src, "dst": m.dst, "term": m.term,
        "log_index": m.log_index, "log_term": m.log_term,
        "entries": [enc_entry(e) for e in m.entries], "commit": m.commit, "reject": m.reject,
        "index": m.index, "reject_hint": m.reject_hint, "context": m.context,
        "read_ctx": m.read_ctx, "force": m.force, "snapshot": enc_snap(m.snapshot),
    }


def enc_ready(rd) -> dict:
    return {
        "hard_state": None if rd.hard_state is None else [rd.hard_state.term, rd.hard_state.vote],
        "entries": [enc_entry(e) for e in rd.entries],
        "snapshot": enc_snap(rd.snapshot),
        "messages": [enc_msg(m) for m in rd.messages],
        "committed": [enc_entry(e) for e in rd.committed],
        "read_states": [[r.read_ctx, r.index] for r in rd.read_states],
    }


def enc_result(r) -> dict:
    return {
        "accepted": r.accepted, "index": r.index, "term": r.term, "leader_hint": r.leader_hint,
        "reason": r.reason, "refusal": "" if r.refusal is None else r.refusal.value,
    }


def state(core: RaftCore) -> dict:
    return {
        "role": core.role.value, "term": core.term, "vote": core.vote, "leader": core.leader_id,
        "commit": core.commit_index, "applied": core.applied_index, "last": core.last_index,
        "stable": core.log.stable, "confirmed": core.confirmed_index,
        "membership_index": core.membership_index, "membership": core.membership.encode().hex(),
        "elapsed": core.election_elapsed, "timeout": core.randomized_timeout,
        "transfer": core.transfer_target,
        "progress": {
            p: [pr.match, pr.next, pr.state.value, len(pr.inflight), pr.recent_active, pr.read_ack]
            for p, pr in sorted(core.progress.items())
        },
    }


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, rec: dict) -> None:
        self.lines.append(json.dumps(rec, sort_keys=True))


class Proxy:
    """A RaftCore whose every input is written down with its outputs."""

    def __init__(self, core: RaftCore, rec: Recorder) -> None:
        object.__setattr__(self, "_core", core)
        object.__setattr__(self, "_rec", rec)

    def __getattr__(self, name):
        return getattr(self._core, name)

    def _op(self, op: dict, out=None) -> None:
        op["node"] = self._core.id
        op["out"] = out
        op["state"] = state(self._core)
        self._rec.log(op)

    def tick(self):
        self._core.tick()
        self._op({"op": "tick"})

    def step(self, m):
        self._core.step(m)
        self._op({"op": "step", "msg": enc_msg(m)})

    def propose(self, data):
        r = self._core.propose(data)
        self._op({"op": "propose", "data": data.hex()}, enc_result(r))
        return r

    def propose_membership(self, change, base_index=None):
        r = self._core.propose_membership(change, base_index)
        self._op({"op": "propose_membership", "change": [change.type.value, change.node, change.credential],
                  "base_index": base_index}, enc_result(r))
        return r

    def read_index(self, ctx):
        r = self._core.read_index(ctx)
        self._op({"op": "read_index", "ctx": ctx}, r)
        return r

    def transfer_leadership(self, target):
        self._core.transfer_leadership(target)
        self._op({"op": "transfer", "target": target})

    def campaign(self):
        self._core.campaign()
        self._op({"op": "campaign"})

    def peer_unreachable(self, peer):
        self._core.peer_unreachable(peer)
        self._op({"op": "unreachable", "peer": peer})

    def compact(self, index, data):
        self._core.compact(index, data)
        self._op({"op": "compact", "index": index, "data": data.hex()})

    def has_ready(self):
        r = self._core.has_ready()
        if r:
            self._op({"op": "has_ready"}, r)
        else:  # most calls: keep the trace small (the flush changed nothing)
            self._rec.log({"op": "has_ready", "node": self._core.id, "out": r})
        return r

    def ready(self):
        rd = self._core.ready()
        self._op({"op": "ready"}, enc_ready(rd))
        return rd

    def advance(self, rd):
        self._core.advance(rd)
        self._op({"op": "advance"})


class TracedNetwork(Network):
    def __init__(self, ids, rec: Recorder, seed: int, **kw) -> None:
        self.rec = rec
        self.rng_seed = seed
        super().__init__(ids, seed=seed, **kw)

    def _boot(self, node_id: str) -> None:
        st = self.storage[node_id]
        self._boots += 1
        seed = (self.rng_seed * 1000003 + self._boots * 7919) & MASK
        boot = self.bootstrap.get(node_id)
        snap = st.snapshot if st.snapshot.index else None
        peers = [p for p in self.ids if p != node_id]
        c = self.config
        self.rec.log({
            "op": "new", "node": node_id, "peers": peers, "rng_seed": seed,
            "config": [c.election_ticks, c.heartbeat_ticks, c.pre_vote, c.check_quorum,
                       c.max_msg_bytes, c.max_inflight, c.promote_max_lag],
            "hard_state": [st.hard_state.term, st.hard_state.vote],
            "snapshot": enc_snap(snap), "entries": [enc_entry(e) for e in st.entries],
            "bootstrap": None if boot is None else boot.encode().hex(),
            "vote_floor": 0, "mutations": MUTATIONS,
        })
        core = RaftCore(node_id, peers, self.config, GoRand(seed), hard_state=st.hard_state,
                        snapshot=snap, entries=list(st.entries), bootstrap=boot)
        self.nodes[node_id] = Proxy(core, self.rec)
        self.rec.log({"op": "check", "node": node_id, "out": None, "state": state(core)})


def schedule(seed: int, steps: int, rec: Recorder) -> None:
    rnd = random.Random(seed)
    n = rnd.choice([3, 3, 5])
    spares = rnd.choice([0, 1, 2])
    voters = [f"n{i}" for i in range(1, n + 1)]
    extra = [f"n{i}" for i in range(n + 1, n + spares + 1)]
    boot = {v: Membership.of(voters) for v in voters} | {x: Membership.of([]) for x in extra}
    cfg = dict(
        pre_vote=rnd.random() < 0.8, check_quorum=rnd.random() < 0.8,
        max_inflight=rnd.choice([1, 2, 32]), max_msg_bytes=rnd.choice([1, 200, 1 << 20]),
        heartbeat_ticks=rnd.choice([1, 2]), promote_max_lag=rnd.choice([0, 2, 64]),
    )
    net = TracedNetwork(voters + extra, rec, seed, bootstrap=boot, **cfg)
    ids = net.ids
    proposals = 0
    for _ in range(steps):
        r = rnd.random()
        live = [i for i in ids if i not in net.down]
        leaders = net.leaders()
        if r < 0.25:
            for i in live:
                net.nodes[i].tick()
        elif r < 0.37 and leaders:
            proposals += 1
            net[rnd.choice(leaders)].propose(b"c%d" % proposals * rnd.choice([1, 10]))
        elif r < 0.42 and leaders:
            kind = rnd.choice(list(ChangeType))
            node = rnd.choice(ids)
            base = rnd.choice([None, None, net[leaders[0]].membership_index, 0])
            net[leaders[0]].propose_membership(ConfChange(kind, node, "k-" + node), base)
        elif r < 0.45 and live:
            net[rnd.choice(live)].read_index(f"r{rnd.randrange(1000)}")
        elif r < 0.465 and leaders:
            net[leaders[0]].transfer_leadership(rnd.choice(ids))
        elif r < 0.48 and live:
            net[rnd.choice(live)].campaign()
        elif r < 0.49 and live:
            net[rnd.choice(live)].peer_unreachable(rnd.choice(ids))
        elif r < 0.52 and live:
            node = rnd.choice(live)
            core = net[node]
            if core.applied_index > core.snapshot.index:
                net.compact(node, rnd.randint(core.snapshot.index + 1, core.applied_index))
        elif r < 0.53 and live and not net.down:
            net.crash(rnd.choice(live))
        elif r < 0.56 and net.down:
            net.restart(rnd.choice(sorted(net.down)))
        elif r < 0.58:
            net.heal() if rnd.random() < 0.6 else net.isolate(rnd.choice(ids))
        elif r < 0.61:
            net.drop(lambda d, m: rnd.random() < 0.3)
        elif r < 0.80:
            net.process_all()
            net.deliver()
        else:
            # Deliver some messages out of order.
            for _ in range(rnd.randint(1, 6)):
                net.process_all()
                if net.queue:
                    dst, m = net.queue.pop(rnd.randrange(len(net.queue)))
                    if net._reachable(dst, m):
                        net.nodes[dst].step(m)
        net.process_all()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default=str(Path(__file__).parent / "traces.jsonl"))
    ap.add_argument("--mutate", default="", help="a tests/sim/mutations.py name")
    args = ap.parse_args()
    from tests.sim.mutations import mutated

    if args.mutate:
        MUTATIONS.append(args.mutate)
    lines: list[str] = []
    for seed in range(args.start, args.start + args.seeds):
        rec = Recorder()
        rec.log({"op": "schedule", "seed": seed})
        try:
            with mutated(args.mutate or None):
                schedule(seed, args.steps, rec)
        except (LogInvariantError, IndexError) as exc:
            # The trace stops before the call that raised.
            print(f"seed {seed}: {type(exc).__name__}: {exc}", file=sys.stderr)
        lines.extend(rec.lines)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} records", file=sys.stderr)


if __name__ == "__main__":
    main()
