"""Training through real 3-node clusters: large inputs, long jobs, dead followers.

Each test starts its own node processes (harness/cluster.py); the long-job test
runs for about 40 seconds by design: during a 30-second training job no
election may happen (the event loop never blocks on training).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest

from client import ClientError
from harness.cluster import LocalCluster, wait_for

pytestmark = [pytest.mark.conformance, pytest.mark.process]

LIMIT_MIB = 160  # --max-request-bytes for these clusters


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, n=3, extra_args=("--max-request-bytes", str(LIMIT_MIB << 20)))
    c.start()
    try:
        c.leader(timeout=30)
        yield c
    finally:
        c.stop()


def separable(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    y = (x[:, : min(5, cols)].sum(axis=1) > 0).astype(np.int64)
    return x, y


def memory_mib(pid: int, key: str) -> float:
    """VmRSS (now) or VmHWM (peak so far) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def election_timeouts(cluster: LocalCluster) -> int:
    """How many times any node's election timer fired (its log says so)."""
    return sum(cluster.output(n).count("lost contact with leader") for n in cluster.ids)


def test_large_dataset_costs_the_leader_about_two_copies(cluster):
    leader = cluster.leader()
    pid = cluster.procs[leader].pid
    x, y = separable(300_000, 100)
    data_mib = (x.nbytes + y.nbytes) / 2**20
    with cluster.client(leader, timeout=120) as c:
        c.train(x[:256], y[:256], options={"epochs": 1})  # every trainer up, caches warm
        before = memory_mib(pid, "VmRSS")
        result = c.train(x, y, options={"epochs": 1})
    growth = memory_mib(pid, "VmHWM") - before
    # Received bytes + the standardized chunks; before the fix it was about 6 copies.
    # CURVE (on by default) adds up to half a copy: libzmq holds the ciphertext
    # while it decrypts a frame (measured 2.31-2.60 copies, 2.13 with --insecure).
    # The same bound for a Go leader (go/ 28b0549: 2.62 copies measured; 6.2 before).
    copies = 3.0
    assert growth <= copies * data_mib, (
        f"{cluster.impls[leader]} leader peak grew {growth:.0f} MiB for {data_mib:.0f} MiB "
        f"({growth / data_mib:.2f} copies, bound {copies})"
    )
    assert result["metrics"]["final"]["val_accuracy"] > 0.95


def test_dataset_over_the_limit_is_refused_before_it_is_sent(cluster):
    leader = cluster.leader()
    x = np.zeros((LIMIT_MIB * 2**20 // 400 + 1000, 100), np.float32)  # untouched pages: cheap
    with cluster.client(leader) as c:
        assert cluster.status(leader)["limits"]["max_request_bytes"] == LIMIT_MIB << 20
        with pytest.raises(ClientError) as err:
            c.train(x, np.zeros(x.shape[0], np.int64))
        assert err.value.code == "TOO_LARGE" and "Nothing was sent" in err.value.message
        c.train(x[:64], np.arange(64) % 2)  # one TRAIN that does reach the leader
    # The leader counted exactly that one TRAIN request: the large one never left.
    wait_for(lambda: train_requests(cluster, leader) >= 1, 10, "the leader's metrics")
    assert train_requests(cluster, leader) == 1


def train_requests(cluster: LocalCluster, node: str) -> int:
    url = f"http://127.0.0.1:{cluster.monitor_port(node)}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return int(
        sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith('zmqnode_requests_total{type="TRAIN"')
        )
    )


@pytest.mark.slow
@pytest.mark.timeout(300)  # about 40 s by design, 80 s seen on a loaded machine
def test_no_election_during_a_30_second_training(cluster):
    leader = cluster.leader()
    x, y = separable(30_000, 20, seed=3)
    options = {"hidden_layers": [64], "epochs_per_round": 1, "patience": 0}
    with cluster.client(leader, timeout=120) as c:
        # Calibrate: the cost of one more epoch on this machine, without the
        # fixed cost of a job, from two short runs.
        took_for = {}
        for n in (20, 120):
            start = time.monotonic()
            c.train(x, y, options={**options, "epochs": n})
            took_for[n] = time.monotonic() - start
        per_epoch = max(1e-3, (took_for[120] - took_for[20]) / 100)
        epochs = math.ceil(40 / per_epoch)
        terms = {n: cluster.status(n)["term"] for n in cluster.ids}
        fired = election_timeouts(cluster)
        start = time.monotonic()
        result = c.train(x, y, options={**options, "epochs": epochs})
        took = time.monotonic() - start
    assert took >= 30, f"the job ran {took:.1f}s ({epochs} epochs); it must run 30 s at least"
    assert result["metrics"]["rounds_run"] == epochs
    assert {n: cluster.status(n)["term"] for n in cluster.ids} == terms
    assert election_timeouts(cluster) == fired
    assert all(cluster.status(n)["leader"] == leader for n in cluster.ids)


def test_killing_a_follower_mid_training_finishes_with_a_warning(cluster):
    leader = cluster.leader()
    victim = next(n for n in cluster.ids if n != leader)
    x, y = separable(30_000, 20, seed=4)
    killed_at: list[float] = []
    progress_after_kill: list[float] = []

    def on_progress(message: dict) -> None:
        now = time.monotonic()
        if not killed_at and message.get("round", 0) >= 1:
            cluster.kill(victim)  # SIGKILL: node and its trainer's parent gone at once
            killed_at.append(time.monotonic())
        elif killed_at:
            progress_after_kill.append(now)

    options = {"epochs": 200, "epochs_per_round": 2, "patience": 0}
    with cluster.client(leader, timeout=120) as c:
        c.train(x[:3000], y[:3000], options={"epochs": 1})  # every trainer up
        result = c.train(x, y, options=options, on_progress=on_progress)
        assert killed_at, "training finished before the follower could be killed"
        accuracy = (c.predict(result["model_id"], x[:2000]).ravel() == y[:2000]).mean()
    assert any(f"trainer {victim}" in w for w in result["warnings"]), result["warnings"]
    assert result["metrics"]["rounds_run"] == 100
    assert accuracy > 0.95
    # The job went on soon after the kill (the node is declared down after 2 s).
    assert progress_after_kill and progress_after_kill[0] - killed_at[0] < 20


def test_killing_only_the_leaders_trainer_is_survived(cluster):
    # Only a Python node's trainer is a process of its own (a Go or Kotlin
    # node's lives in the node): hand leadership on until a Python node has it.
    leader = cluster.hand_leadership_until(lambda n: cluster.impls[n] == "py", what="Python leader")
    x, y = separable(30_000, 20, seed=5)

    def leader_trainer_pid() -> int | None:
        out = subprocess.run(
            ["pgrep", "-f", f"zmqnode.training.trainer.*--name {leader}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        return int(out[0]) if out else None

    killed = threading.Event()

    def on_progress(message: dict) -> None:
        if not killed.is_set() and message.get("round", 0) >= 1:
            os.kill(wait_for(leader_trainer_pid, 10, "the leader's trainer"), signal.SIGKILL)
            killed.set()

    with cluster.client(leader, timeout=120) as c:
        c.train(x[:3000], y[:3000], options={"epochs": 1})
        result = c.train(
            x, y, options={"epochs": 30, "epochs_per_round": 2, "patience": 0},
            on_progress=on_progress,
        )  # fmt: skip
    assert killed.is_set()
    assert any(f"trainer {leader} exited" in w for w in result["warnings"]), result["warnings"]
    assert result["metrics"]["rounds_run"] == 15
