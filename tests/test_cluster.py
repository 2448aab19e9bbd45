"""The cluster end to end: real node processes, real sockets, fsync on disk."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from client import Client, ClientError
from harness.cluster import ROOT, LocalCluster, wait_for
from zmqnode.transport import security

pytestmark = [pytest.mark.conformance, pytest.mark.process]

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.float32)


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, n=3)
    with c.running():
        yield c


def model_files(cluster: LocalCluster, model_id: str) -> dict[str, str]:
    """node -> sha256 of its models/<id>.bin (missing files are left out)."""
    digests = {}
    for nid in cluster.ids:
        path = cluster.storage(nid) / "models" / f"{model_id}.bin"
        if path.exists():
            digests[nid] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def cli(cluster: LocalCluster, node: str, *args: str) -> dict:
    host, port = node.rsplit(":", 1)
    out = subprocess.run(
        [sys.executable, "-m", "client", "--host", host, "--port", port, "--json", *args],
        cwd=ROOT,
        env={**os.environ, "ZMQNODE_KEYS": str(cluster.keys)},  # the CLI finds its keys
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_seed_flow_xor_trained_listed_and_served_by_every_node(cluster):
    leader = cluster.leader()
    trained = cli(cluster, cluster.ids[0], "train-inline", "0,0;0,1;1,0;1,1", "0;1;1;0")
    model_id = trained["model_id"]
    assert trained["trainers"] and set(trained["trainers"]) <= set(cluster.ids)

    listed = cli(cluster, cluster.ids[1], "list")
    assert [m["model_id"] for m in listed["models"]] == [model_id]

    for node in cluster.ids:
        with Client([node], keys=cluster.keys, timeout=5) as c:
            reply = c.predict_reply(model_id, XOR_X)
            assert reply.node == node, "a follower serves predictions itself"
            assert reply.array("outputs").ravel().tolist() == [0, 1, 1, 0]

    digests = wait_for(
        lambda: (d := model_files(cluster, model_id)) and len(d) == 3 and d,
        10,
        "the model file on every node",
    )
    assert len(set(digests.values())) == 1, f"model files differ: {digests}"
    assert leader in cluster.ids


def test_training_is_spread_over_every_nodes_trainer(cluster):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    with cluster.client() as c:
        result = c.train(x, y, timeout=60)
        assert set(result["trainers"]) == set(cluster.ids), "one chunk per node's trainer"
        predicted = c.predict(result["model_id"], x)
    assert (predicted.ravel() == y).mean() > 0.9


def test_client_pointed_at_a_follower_follows_the_redirect(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    with Client([follower], keys=cluster.keys, timeout=10) as c:
        result = c.train(XOR_X, XOR_Y)
        assert c.preferred_node == leader
    assert result["model_id"]


def test_leader_killed_new_leader_serves_old_models_and_trains_new_ones(cluster):
    c = cluster.client()
    first = c.train(XOR_X, XOR_Y)["model_id"]
    old_leader = cluster.leader()
    cluster.kill(old_leader)
    survivors = [n for n in cluster.ids if n != old_leader]
    new_leader = cluster.leader(among=survivors)
    assert new_leader != old_leader
    # The survivors noticed the dropped connection; they did not wait for a timeout.
    assert any("lost the connection to leader" in cluster.output(n) for n in survivors)

    with Client(survivors, keys=cluster.keys, timeout=5) as c2:
        assert first in [m["model_id"] for m in c2.list_models()]
        for node in survivors:
            with Client([node], keys=cluster.keys, timeout=5) as c3:
                assert c3.predict(first, XOR_X).ravel().tolist() == [0, 1, 1, 0]
        second = c2.train(XOR_X, XOR_Y, timeout=30)["model_id"]
    assert second != first
    assert len(set(model_files(cluster, second).values())) == 1


def test_follower_down_during_two_trainings_catches_up_with_files(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    cluster.kill(follower)
    survivors = [n for n in cluster.ids if n != follower]
    with Client(survivors, keys=cluster.keys, timeout=10) as c:
        ids = [c.train(XOR_X, XOR_Y, timeout=30)["model_id"] for _ in range(2)]
    assert all(follower not in model_files(cluster, m) for m in ids)

    cluster.start(follower)
    for m in ids:
        digests = wait_for(
            lambda m=m: (d := model_files(cluster, m)) and len(d) == 3 and d,
            15,
            f"{m} on the restarted follower",
        )
        assert len(set(digests.values())) == 1
    with Client([follower], keys=cluster.keys, timeout=5) as c:
        assert c.predict(ids[1], XOR_X).ravel().tolist() == [0, 1, 1, 0]


def test_torn_log_tail_is_truncated_and_the_node_rejoins(cluster):
    c = cluster.client()
    model_id = c.train(XOR_X, XOR_Y)["model_id"]
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    wait_for(lambda: follower in model_files(cluster, model_id), 10, "replication to follower")
    cluster.kill(follower)
    log_path = cluster.storage(follower) / "raft.log"
    with open(log_path, "ab") as f:
        f.write(b"\x40\x00\x00\x00torn-record-half-written")  # a crash mid-append
    cluster.start(follower)
    status = wait_for(
        lambda: (s := cluster.status(follower)) and s["leader"] and s,
        15,
        "the restarted follower to rejoin",
    )
    assert status["leader"] == leader
    assert "truncat" in cluster.output(follower).lower()
    with Client([follower], keys=cluster.keys, timeout=5) as c2:
        assert c2.predict(model_id, XOR_X).ravel().tolist() == [0, 1, 1, 0]


def _raw(node: str, frames: list[bytes], keys, timeout_ms: int = 5000) -> list[bytes]:
    import zmq

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    security.make_client(sock, keys)
    sock.connect(f"tcp://{node}")
    try:
        sock.send_multipart([b"", *frames])
        assert sock.poll(timeout_ms), "the node did not answer"
        return sock.recv_multipart()[1:]
    finally:
        sock.close()


def _error_code(frames: list[bytes]) -> str:
    header = json.loads(frames[0])
    assert header["status"] == "ERROR", header
    assert header["message"], "every error explains itself"
    return header["code"]


def test_bad_inputs_get_stable_errors_and_the_node_keeps_serving(cluster):
    leader = cluster.leader()
    c = cluster.client(leader)
    model_id = c.train(XOR_X, XOR_Y)["model_id"]

    def hdr(**fields) -> bytes:
        return json.dumps({"v": 1, "id": "bad-1", **fields}).encode()

    f32 = {"dtype": "float32", "shape": [1, 2], "frame": 0}
    cases = {
        "unknown type": ([hdr(type="FROB")], "UNKNOWN_TYPE"),
        "malformed json": ([b"{not json"], "MALFORMED"),
        "too many frames for import": ([hdr(type="IMPORT"), b"a", b"b"], "BAD_REQUEST"),
        "bytes not matching shape": (
            [hdr(type="PREDICT", model_id=model_id, inputs=f32), b"\x00" * 7],
            "BAD_SHAPE",
        ),
        "wrong input width": (
            [
                hdr(
                    type="PREDICT",
                    model_id=model_id,
                    inputs={"dtype": "float32", "shape": [1, 3], "frame": 0},
                ),
                np.zeros(3, np.float32).tobytes(),
            ],
            "BAD_INPUT",
        ),
        "nan": (
            [
                hdr(type="PREDICT", model_id=model_id, inputs=f32),
                np.array([np.nan, 1], np.float32).tobytes(),
            ],
            "BAD_INPUT",
        ),
        "unknown model": (
            [hdr(type="PREDICT", model_id="m-nope", inputs=f32), np.zeros(2, np.float32).tobytes()],
            "NOT_FOUND",
        ),
        "empty dataset": (
            [
                hdr(
                    type="TRAIN",
                    inputs={"dtype": "float32", "shape": [0, 2], "frame": 0},
                    outputs={"dtype": "float32", "shape": [0], "frame": 1},
                ),
                b"",
                b"",
            ],
            "BAD_INPUT",
        ),
        "label count mismatch": (
            [
                hdr(
                    type="TRAIN",
                    inputs={"dtype": "float32", "shape": [4, 2], "frame": 0},
                    outputs={"dtype": "float32", "shape": [3], "frame": 1},
                ),
                XOR_X.tobytes(),
                XOR_Y[:3].tobytes(),
            ],
            "BAD_INPUT",
        ),
        "not a model file": ([hdr(type="IMPORT"), b"garbage"], "BAD_INPUT"),
    }
    for name, (frames, code) in cases.items():
        assert _error_code(_raw(leader, frames, cluster.client_keys())) == code, name
        assert c.predict(model_id, XOR_X).ravel().tolist() == [0, 1, 1, 0], f"after {name}"


def test_oversized_request_gets_too_large(tmp_path):
    cluster = LocalCluster(tmp_path, n=1, extra_args=("--max-request-bytes", "100000"))
    cluster.start()
    try:
        leader = cluster.leader()
        big = np.zeros((2000, 20), np.float32)
        with Client([leader], keys=cluster.keys, timeout=5, retries=0) as c:
            with pytest.raises(ClientError) as err:
                c.predict("m-any", big)
        assert err.value.code == "TOO_LARGE"
        assert cluster.status(leader)["role"] == "leader"
    finally:
        cluster.stop()


def test_garbage_on_raft_and_training_ports_is_dropped_and_logged(cluster):
    import zmq

    leader = cluster.leader()
    port = int(leader.rsplit(":", 1)[1])
    ctx = zmq.Context.instance()
    garbage = [[b"\xff\x00garbage"], [b"{}"], [b'{"v":1,"type":"raft.append","id":""}', b"x"]]
    for offset, kind in ((1000, zmq.DEALER), (4000, zmq.PUSH)):
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 1000)
        # A member's key: garbage from inside the cluster is still only dropped.
        security.make_client(sock, cluster.client_keys("node1"))
        sock.connect(f"tcp://127.0.0.1:{port + offset}")
        for frames in garbage:
            sock.send_multipart(frames)
        sock.close()
    wait_for(
        lambda: cluster.output(leader).count("dropped a malformed") >= 2 * len(garbage),
        10,
        "the node to log every garbage message",
    )
    with cluster.client(leader) as c:
        assert c.train(XOR_X, XOR_Y)["model_id"]
    assert cluster.status(leader)["role"] == "leader"


def test_a_silent_trainer_does_not_stall_training(cluster):
    import os
    import signal

    # A Python follower: its trainer is a process of its own, which SIGSTOP
    # silences; a Go or Kotlin node's trainer lives in the node. With
    # py,go,kotlin (ZMQNODE_IMPLS) the one Python node may lead: it hands
    # leadership over and comes back as a follower.
    def python_followers(leader: str) -> list[str]:
        return [n for n in cluster.ids if n != leader and cluster.impls[n] == "py"]

    leader = cluster.hand_leadership_until(
        lambda n: bool(python_followers(n)), what="Python follower"
    )
    follower = python_followers(leader)[0]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    with cluster.client() as c:
        # Its trainer up and connected before it is silenced: a leader that came
        # up first (a Go node starts in a fraction of a Python trainer's start)
        # trains around a trainer not yet listening, and still lists it.
        wait_for(
            lambda: f"trainer for {follower} ready" in cluster.output(follower),
            30,
            "the follower's trainer to listen",
        )
        c.train(x, y, timeout=60)  # every trainer is up and has answered once

        def trainer_pid() -> int | None:
            out = subprocess.run(
                ["pgrep", "-f", f"zmqnode.training.trainer.*--name {follower}"],
                capture_output=True,
                text=True,
            ).stdout.split()
            return int(out[0]) if out else None

        pid = wait_for(trainer_pid, 10, "the follower's trainer process")
        os.kill(pid, signal.SIGSTOP)  # alive and connected, but silent
        try:
            # The leader gives chunks only to peers heard from in the last
            # second; on a starved machine the follower can miss that window,
            # and then its silent trainer is never asked (nothing to test).
            # Such a job must not list it; the next one tries again.
            for _ in range(3):
                result = c.train(x, y, timeout=60)
                assert (c.predict(result["model_id"], x).ravel() == y).mean() > 0.9
                if any(follower in w for w in result["warnings"]):
                    break
                assert follower not in result["trainers"], "a silent trainer was kept"
        finally:
            os.kill(pid, signal.SIGCONT)
    assert any(follower in w for w in result["warnings"]), result["warnings"]


def test_lagging_follower_never_answers_not_found_for_an_acknowledged_model(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    cluster.isolate(follower)
    wait_for(
        lambda: cluster.status(follower)["leader"] is None,
        10,
        "the isolated follower to notice it lost the leader",
    )
    with cluster.client(leader) as c:
        model_id = c.train(XOR_X, XOR_Y)["model_id"]  # committed by the other two
    with Client([follower], keys=cluster.keys, timeout=2, retries=0) as c2:
        with pytest.raises(ClientError) as err:
            c2.predict(model_id, XOR_X)
        assert err.value.code == "UNAVAILABLE", "it cannot confirm; it must not say NOT_FOUND"
    cluster.heal()
    with Client([follower], keys=cluster.keys, timeout=5, retries=0) as c2:
        assert c2.predict(model_id, XOR_X).ravel().tolist() == [0, 1, 1, 0]
        assert model_id in [m["model_id"] for m in c2.list_models()]


def test_leader_killed_mid_training_retry_yields_exactly_one_model(cluster):
    import threading

    leader = cluster.leader()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 8)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float32)
    request_id = "retry-me-0001"
    outcome: dict = {}

    def train() -> None:
        nodes = [leader, *[n for n in cluster.ids if n != leader]]
        with Client(nodes, keys=cluster.keys, timeout=4, retries=6) as c:
            try:
                outcome["result"] = c.train(x, y, options={"epochs": 400}, request_id=request_id)
            except Exception as exc:  # recorded and asserted below
                outcome["error"] = exc

    thread = threading.Thread(target=train)
    thread.start()
    wait_for(
        lambda: f"training {request_id}" in cluster.output(leader),
        20,
        "the leader to start training",
    )
    cluster.kill(leader)
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    model_id = outcome["result"]["model_id"]
    survivors = [n for n in cluster.ids if n != leader]
    with Client(survivors, keys=cluster.keys, timeout=5) as c:
        models = [m["model_id"] for m in c.list_models()]
    assert models == [model_id], "one request id, one model"


def test_training_reports_progress_each_round(cluster):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.float32)
    seen: list[dict] = []
    with cluster.client() as c:
        result = c.train(x, y, options={"epochs": 60, "patience": 0}, on_progress=seen.append)
    rounds = [m["round"] for m in seen]
    assert rounds and rounds == sorted(rounds) and len(set(rounds)) == len(rounds)
    assert all(m["rounds"] == 6 and "elapsed_s" in m for m in seen)
    assert len(seen) == 5, "a progress message after every round but the last"
    assert result["model_id"]


def test_same_data_options_and_seed_give_byte_identical_model_files(cluster):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] > 0).astype(np.float32)
    with cluster.client() as c:
        ids = [c.train(x, y, options={"seed": 7})["model_id"] for _ in range(2)]
    assert ids[0] != ids[1], "two requests, two registry entries"
    node = cluster.ids[0]
    for m in ids:  # a follower may apply a moment after the leader acknowledged
        wait_for(lambda m=m: node in model_files(cluster, m), 10, f"{m} on {node}")
    blobs = [(cluster.storage(node) / "models" / f"{m}.bin").read_bytes() for m in ids]
    if cluster.one_implementation:
        assert blobs[0] == blobs[1]
    else:
        # Chunks trained by Go and by Python agree to float32 rounding only
        # (docs/PROTOCOL.md §9): the same predictions, and probabilities apart
        # by a few float32 ulps (5e-7 measured; the bound leaves room for a
        # chunk reassigned to the other implementation on a busy machine).
        with cluster.client(node) as c:
            assert c.predict(ids[0], x).tolist() == c.predict(ids[1], x).tolist()
            np.testing.assert_allclose(
                c.predict_proba(ids[0], x), c.predict_proba(ids[1], x), rtol=0, atol=1e-4
            )


def test_real_valued_outputs_train_a_regression_model_with_several_columns(cluster):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(500, 2)).astype(np.float32)
    y = np.stack([x[:, 0] + 0.5 * x[:, 1], x[:, 0] * x[:, 1]], axis=1).astype(np.float32)
    with cluster.client() as c:
        result = c.train(x, y)
        info = c.info(result["model_id"])
        predicted = c.predict(result["model_id"], x)
    assert info["task"] == "regression"
    rounds = info["metadata"]["training"]["rounds"]  # shown by `client info`
    assert rounds and all("loss" in r and "val_r2" in r for r in rounds)
    assert predicted.shape == (500, 2)
    assert np.abs(predicted - y).mean() < 0.1
