"""Changing a running cluster with real processes: a node joins as a learner,
serves predictions and is promoted; a dead machine is replaced by a node at
another address; the leader removes itself; a removed node's key is refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cluster import ROOT, LocalCluster, pick_base_ports, wait_for
from zmqnode.transport.security import add_node_key

pytestmark = [pytest.mark.conformance, pytest.mark.process, pytest.mark.timeout(240)]

XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, np.float32)
NAMES = np.array(["no", "yes", "yes", "no"] * 10)


class Joiner:
    """A node started with --join and a key made by keygen --node."""

    def __init__(self, cluster: LocalCluster, through: str, name: str) -> None:
        port = pick_base_ports(1)[0]
        self.id = f"127.0.0.1:{port}"
        self.storage = cluster.workdir / f"{name}_storage"
        self.out = cluster.workdir / f"{name}.out"
        key = add_node_key(cluster.keys, name)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "zmqnode", "--host", "127.0.0.1", "--port", str(port),
                "--join", through, "--keys", str(cluster.keys), "--node-key", str(key),
                "--storage-dir", str(self.storage),
            ],
            cwd=ROOT,
            stdout=open(self.out, "wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


def cli(cluster: LocalCluster, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "client", "--nodes", ",".join(cluster.ids), "--json", *args],
        cwd=ROOT,
        env={**os.environ, "ZMQNODE_KEYS": str(cluster.keys)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def joined(cluster: LocalCluster, joiner: Joiner) -> dict | None:
    """The membership listing once it names ``joiner``."""
    listing = cli(cluster, "members")
    return listing if joiner.id in roles(listing) else None


def roles(listing: dict) -> dict[str, str]:
    return {m["node"]: "voter" if m["voter"] else "learner" for m in listing["members"]}


def model_files(storage: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((storage / "models").glob("*.bin"))
    }


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path / "c", n=3)
    joiners: list[Joiner] = []
    c.joiners = joiners
    with c.running():
        yield c
        for j in joiners:
            j.stop()


def test_a_node_joins_as_a_learner_serves_predictions_and_is_promoted(cluster):
    with cluster.client() as client:
        model = client.train(XOR, NAMES, options={"epochs": 100})["model_id"]
    joiner = Joiner(cluster, cluster.ids[1], "joiner")
    cluster.joiners.append(joiner)
    listing = wait_for(lambda: joined(cluster, joiner), 60, "the join")
    assert roles(listing)[joiner.id] == "learner"
    with cluster.client(joiner.id) as learner:
        answer = wait_for(lambda: learner.predict(model, XOR[:4]).tolist(), 60, "a prediction")
    assert answer == ["no", "yes", "yes", "no"]
    promoted = cli(cluster, "members", "add", joiner.id)
    assert roles(promoted) == {**{n: "voter" for n in cluster.ids}, joiner.id: "voter"}
    with cluster.client() as client:  # four voters commit
        assert client.train(XOR, NAMES, options={"epochs": 5})["model_id"]


def test_a_dead_machine_is_replaced_at_another_address_with_every_model(cluster):
    with cluster.client() as client:
        models = [
            client.train(XOR, NAMES, options={"epochs": 5, "seed": s})["model_id"] for s in range(3)
        ]
    leader = cluster.leader()
    dead = next(n for n in cluster.ids if n != leader)
    cluster.kill(dead)
    shutil.rmtree(cluster.storage(dead))  # the disk is gone too
    removed = cli(cluster, "members", "remove", dead)
    assert dead not in roles(removed)
    replacement = Joiner(cluster, leader, "replacement")
    cluster.joiners.append(replacement)
    wait_for(lambda: joined(cluster, replacement), 60, "the join")
    added = cli(cluster, "members", "add", replacement.id)
    assert sorted(roles(added).values()) == ["voter"] * 3
    expected = model_files(cluster.storage(leader))
    assert sorted(expected) == sorted(f"{m}.bin" for m in models)
    wait_for(lambda: model_files(replacement.storage) == expected, 60, "every model, same bytes")


def test_the_leader_removes_itself_and_hands_over(cluster):
    import threading

    leader = cluster.leader()
    others = [n for n in cluster.ids if n != leader]
    stop = threading.Event()

    def reads(node: str) -> None:  # followers busy with reads, which ask the leader
        with cluster.client(node, timeout=2.0) as c:
            while not stop.is_set():
                try:
                    c.list_models()
                except Exception:
                    pass  # during the hand-over some may time out; none may crash a node

    threads = [threading.Thread(target=reads, args=(n,), daemon=True) for n in others * 2]
    for t in threads:
        t.start()
    try:
        after = cli(cluster, "members", "remove", leader)
        assert leader not in roles(after)
        new = cluster.leader(among=others, timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert new != leader
    assert all(cluster.procs[n].poll() is None for n in cluster.ids)  # every node still runs
    with cluster.client(new) as client:
        assert client.train(XOR, NAMES, options={"epochs": 5})["model_id"]


def test_a_removed_nodes_key_is_refused(cluster):
    leader = cluster.leader()
    term = cluster.status(leader)["term"]
    removed = next(n for n in cluster.ids if n != leader)
    cli(cluster, "members", "remove", removed)
    # Its connections made before the removal carry nothing the others accept
    # (not a member: dropped); every new one is refused by the allow-lists.
    cluster.kill(removed)
    cluster.start(removed)
    denied = "is not allowed on zmqnode.peers"
    wait_for(lambda: denied in cluster.output(leader), 30, "the leader refusing the old key")
    with cluster.client(leader) as client:
        assert client.train(XOR, NAMES, options={"epochs": 5})["model_id"]
    assert cluster.status(leader)["role"] == "leader"
    assert cluster.status(leader)["term"] == term  # the removed node disturbed nothing


def test_three_to_five_to_three_under_a_steady_prediction_load(cluster):
    import threading

    with cluster.client() as client:
        model = client.train(XOR, NAMES, options={"epochs": 100})["model_id"]
    stop = threading.Event()
    answers: list[bool] = []
    failures: list[str] = []

    def load() -> None:
        with cluster.client(timeout=5.0) as c:
            while not stop.is_set():
                try:
                    answers.append(c.predict(model, XOR[:4]).tolist() == ["no", "yes", "yes", "no"])
                except Exception as exc:  # every failure is a finding
                    failures.append(repr(exc))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        new = [Joiner(cluster, cluster.ids[0], f"grow{i}") for i in range(2)]
        cluster.joiners.extend(new)
        for joiner in new:
            wait_for(lambda j=joiner: joined(cluster, j), 60, "the join")
            cli(cluster, "members", "add", joiner.id)
        assert sorted(roles(cli(cluster, "members")).values()) == ["voter"] * 5
        for joiner in new:
            cli(cluster, "members", "remove", joiner.id)
        assert sorted(roles(cli(cluster, "members"))) == sorted(cluster.ids)
        wait_for(lambda: len(answers) > 50, 30, "predictions after the changes")
    finally:
        stop.set()
        thread.join(30)
    assert failures == [] and all(answers), (failures[:3], answers.count(False))
