"""Real processes: a learner whose Raft link to a member was refused (the
member had not yet appended the entry admitting its key) must still reach
that member once it is admitted: here when that member becomes leader and
needs the learner's answers to catch it up (docs/PROTOCOL.md §1.1)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from client import Client
from harness.cluster import ROOT, LocalCluster, pick_base_ports, wait_for
from zmqnode.transport.security import add_node_key, public_key_of

pytestmark = [pytest.mark.conformance, pytest.mark.process, pytest.mark.timeout(240)]

XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, np.float32)
NAMES = np.array(["no", "yes", "yes", "no"] * 10)


def members_on(cluster: LocalCluster, node: str) -> dict[str, dict[str, Any]]:
    """``node``'s MEMBERS view (it must lead), by member."""
    with Client([node], timeout=2.0, retries=0, keys=cluster.keys) as c:
        return {m["node"]: m for m in c.members()["members"]}


def test_a_learner_refused_by_a_lagging_member_reaches_it_once_that_member_leads(tmp_path):
    cluster = LocalCluster(tmp_path, n=3)
    port = pick_base_ports(1)[0]
    learner = f"127.0.0.1:{port}"
    key = add_node_key(cluster.keys, "learner")
    proc: subprocess.Popen | None = None
    with cluster.running():
        try:
            old = cluster.leader()
            late, other = (n for n in cluster.ids if n != old)
            # `late` appends the entry adding the learner only after the
            # learner's links are up, so it refuses the learner's key once.
            cluster.isolate(late)
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "zmqnode", "--host", "127.0.0.1", "--port", str(port),
                    "--join", old, "--keys", str(cluster.keys), "--node-key", str(key),
                    "--storage-dir", str(tmp_path / "learner_storage"),
                ],
                cwd=ROOT,
                stdout=open(tmp_path / "learner.out", "wb"),
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            refusal = f"public key {public_key_of(key)} is not allowed on zmqnode.peers"
            wait_for(lambda: refusal in cluster.output(late), 60, "the late member refusing")
            cluster.heal()
            wait_for(
                lambda: learner in cluster.status(late)["peers"], 30, "the late member admitting"
            )
            # Make `late` the next leader: `other` misses one entry, so the
            # old leader hands over to `late` (the voter furthest along)
            # when it stops, and `other` votes for it.
            cluster.fault_file(other).write_text(json.dumps({"drop_in": [old], "drop_out": [old]}))
            # A node re-reads its fault file at most every 50 ms: cut off once
            # `other` stops following the old leader.
            wait_for(lambda: not cluster.status(other)["leader"], 30, "other cut off from old")
            with cluster.client(old) as client:
                client.train(XOR, NAMES, options={"epochs": 5})
            assert cluster.status(late)["last_index"] > cluster.status(other)["last_index"]
            cluster.kill(old, signal.SIGTERM)
            cluster.heal()
            assert cluster.leader(among=[late, other], timeout=30) == late

            def learner_caught_up() -> bool:
                view, last = members_on(cluster, late)[learner], cluster.status(late)["last_index"]
                return view["match"] == last and view["last_heard_s"] is not None

            wait_for(learner_caught_up, 20, "the new leader to hear from the learner")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
                print((tmp_path / "learner.out").read_text(errors="replace")[-3000:])
