"""Real processes: a node that joined and then leads must get its chunks
trained by the trainer of a member that refused its training PUSH at first
(that member had not appended the entry admitting the new node's key, so
its trainer had not re-read the member keys): the refused PUSH is reopened
(docs/PROTOCOL.md §1.1, §9)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from client import Client, ClientError
from harness.cluster import ROOT, LocalCluster, pick_base_ports, wait_for
from zmqnode.transport.security import add_node_key, public_key_of
from zmqnode.transport.wire import ErrorCode

pytestmark = [pytest.mark.process, pytest.mark.timeout(300)]

XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, np.float32)
NAMES = np.array(["no", "yes", "yes", "no"] * 10)


def change(cluster: LocalCluster, leader: str, kind: str, node: str) -> None:
    """``kind`` (promote, remove) ``node`` at ``leader``, retried while BUSY
    (a learner still catching up)."""

    def done() -> bool:
        with Client([leader], timeout=10.0, retries=0, keys=cluster.keys) as c:
            try:
                c.change_member(kind, node, timeout=10.0)
            except ClientError as exc:
                if exc.code == ErrorCode.BUSY.value:
                    return False
                raise
        return True

    wait_for(done, 60, f"{kind} {node}", interval=0.5)


def last_heard(cluster: LocalCluster, leader: str, node: str) -> float | None:
    """How long ago ``leader`` (which must lead) last heard from ``node``."""
    with Client([leader], timeout=2.0, retries=0, keys=cluster.keys) as c:
        members = {m["node"]: m for m in c.members()["members"]}
    return members[node]["last_heard_s"]


def test_a_joined_leader_gets_chunks_trained_by_a_trainer_that_refused_it_first(tmp_path):
    cluster = LocalCluster(tmp_path, n=3)
    port = pick_base_ports(1)[0]
    joined = f"127.0.0.1:{port}"
    key = add_node_key(cluster.keys, "joined")
    proc: subprocess.Popen | None = None
    with cluster.running():
        try:
            old = cluster.leader()
            late, other = (n for n in cluster.ids if n != old)
            # `late` appends the entry adding `joined` only once healed, so
            # its trainer refuses the PUSH `joined` opens at start-up.
            cluster.isolate(late)
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "zmqnode", "--host", "127.0.0.1", "--port", str(port),
                    "--join", old, "--keys", str(cluster.keys), "--node-key", str(key),
                    "--storage-dir", str(tmp_path / "joined_storage"),
                    # Its chunks can then only go to the others' trainers.
                    "--no-trainer",
                ],
                cwd=ROOT,
                stdout=open(tmp_path / "joined.out", "wb"),
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            refusal = (
                f"{late} trainer] zmqnode.security: refused a connection: "
                f"public key {public_key_of(key)} is not allowed on zmqnode.peers"
            )
            wait_for(lambda: refusal in cluster.output(late), 60, "late's trainer refusing")
            cluster.heal()
            wait_for(lambda: joined in cluster.status(late)["peers"], 30, "late admitting joined")
            # `joined` becomes a voter and `other` leaves, so that `old`,
            # stopping, hands over to `joined` once `late` misses entries
            # `joined` has, and late's trainer is the one left to train.
            change(cluster, old, "promote", joined)
            cluster.fault_file(late).write_text(json.dumps({"drop_in": [old], "drop_out": [old]}))
            # The file is read every 50 ms: cut off once it stops following old.
            wait_for(lambda: not cluster.status(late)["leader"], 30, "late cut off from old")
            change(cluster, old, "remove", other)
            cluster.kill(other, signal.SIGTERM)
            assert cluster.status(joined)["last_index"] > cluster.status(late)["last_index"]
            cluster.kill(old, signal.SIGTERM)
            cluster.heal()
            assert cluster.leader(among=[joined, late], timeout=30) == joined
            wait_for(lambda: (last_heard(cluster, joined, old) or 0) > 2.0, 20, "old's node down")
            with Client([joined], timeout=60.0, retries=0, keys=cluster.keys) as client:
                result = client.train(XOR, NAMES, options={"epochs": 5}, timeout=60.0)
            assert result["trainers"] == [late]
            assert result["warnings"] == []
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
                print((tmp_path / "joined.out").read_text(errors="replace")[-4000:])
