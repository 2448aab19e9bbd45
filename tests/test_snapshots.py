"""Log compaction and catching up through InstallSnapshot, with real nodes.

Every test runs a 3-node cluster that compacts every 4 entries and fetches
model files in 1 KiB chunks, so a few small models exercise both paths.
"""

from __future__ import annotations

import hashlib
import urllib.request

import numpy as np
import pytest

from harness.cluster import LocalCluster, wait_for
from zmqnode.ml.training import TrainOptions, train

pytestmark = [pytest.mark.conformance, pytest.mark.process]

ARGS = ("--snapshot-entries", "4", "--fetch-chunk-bytes", "1024")
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)


def model_file(tmp_path, seed: int) -> tuple[str, bytes]:
    y = np.array([0, 1, 1, 0]) if seed % 2 else np.array([0, 0, 0, 1])
    data = train(X, y, TrainOptions(epochs=3 + seed)).to_bytes()
    path = tmp_path / f"model{seed}.bin"
    path.write_bytes(data)
    return str(path), data


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, 3, extra_args=ARGS)
    c.start()
    yield c
    c.stop()


def files(cluster: LocalCluster, node_id: str, model_ids) -> dict[str, bytes | None]:
    models = cluster.storage(node_id) / "models"
    return {
        m: (models / f"{m}.bin").read_bytes() if (models / f"{m}.bin").exists() else None
        for m in model_ids
    }


def import_models(cluster, tmp_path, seeds) -> dict[str, bytes]:
    client = cluster.client(timeout=10.0)
    imported = {}
    for seed in seeds:
        path, data = model_file(tmp_path, seed)
        imported[client.import_model(path)["model_id"]] = data
    return imported


def test_a_node_down_for_long_catches_up_through_a_snapshot_and_fetches_files(cluster, tmp_path):
    leader = cluster.leader()
    lagging = next(n for n in cluster.ids if n != leader)
    cluster.kill(lagging)
    imported = import_models(cluster, tmp_path, range(10))
    assert all(len(data) > 2048 for data in imported.values()), "files span several chunks"
    # The leader compacted past everything the stopped node holds.
    wait_for(lambda: cluster.status(leader)["snapshot_index"] >= 8, 10, "leader compaction")
    assert (cluster.storage(leader) / "snapshot").is_dir()

    cluster.start(lagging)

    def caught_up() -> bool:
        s = cluster.status(lagging)
        return s["models"] == len(imported) and s["models_repairing"] == 0

    wait_for(caught_up, 30, "the restarted node to install the snapshot and fetch files")
    output = cluster.output(lagging)
    assert "installed the leader's snapshot" in output
    assert "repaired model" in output
    assert files(cluster, lagging, imported) == imported
    # /metrics is refreshed once a tick: poll until it shows the repairs done.
    metrics = wait_for(
        lambda: (m := _metrics(cluster, lagging))["zmqnode_models_damaged"] == 0 and m,
        5,
        "/metrics to show no damaged model",
    )
    assert metrics["zmqnode_models_fetched_total"] >= 1
    assert (
        metrics["zmqnode_models_fetched_chunks_total"]
        >= 3 * metrics["zmqnode_models_fetched_total"]
    )
    assert _metrics(cluster, leader)["zmqnode_storage_compactions_total"] >= 1
    with cluster.client(lagging) as client:
        for model_id in imported:
            assert client.predict(model_id, [[1, 0]]).shape[0] == 1
    # Catching up again after a restart needs nothing from the peers.
    cluster.kill(lagging)
    cluster.start(lagging)
    wait_for(caught_up, 20, "the node to restart from its own snapshot")
    assert cluster.output(lagging).count("installed the leader's snapshot") == 1
    assert files(cluster, lagging, imported) == imported


def test_model_files_damaged_on_disk_are_fetched_again_and_never_served(cluster, tmp_path):
    leader = cluster.leader()
    imported = import_models(cluster, tmp_path, range(6))
    follower = next(n for n in cluster.ids if n != leader)
    wait_for(
        lambda: (
            cluster.status(follower)["snapshot_index"] >= 4
            and cluster.status(follower)["models"] == 6
        ),
        15,
        "the follower's compaction",
    )
    snapshot_index = cluster.status(follower)["snapshot_index"]
    with cluster.client(follower) as client:
        covered = [m["model_id"] for m in client.list_models() if m["index"] <= snapshot_index]
    cluster.kill(follower)
    # Files the follower's own log no longer holds: only a peer can restore them.
    flipped, removed = covered[:2]
    models = cluster.storage(follower) / "models"
    data = bytearray((models / f"{flipped}.bin").read_bytes())
    data[len(data) // 2] ^= 0x40
    (models / f"{flipped}.bin").write_bytes(bytes(data))
    (models / f"{removed}.bin").unlink()

    cluster.start(follower)
    wait_for(
        lambda: files(cluster, follower, imported) == imported,
        30,
        "the damaged and missing files to be fetched again",
    )
    output = cluster.output(follower)
    assert f"model {flipped} is missing or damaged here" in output
    assert f"model {removed} is missing or damaged here" in output
    expected = {m: _predict_locally(d) for m, d in imported.items()}
    with cluster.client(follower) as client:
        for model_id in imported:
            assert np.allclose(client.predict(model_id, X), expected[model_id])


def test_a_file_damaged_while_the_node_runs_is_not_served(cluster, tmp_path):
    leader = cluster.leader()
    imported = import_models(cluster, tmp_path, range(2))
    follower = next(n for n in cluster.ids if n != leader)
    wait_for(lambda: cluster.status(follower)["models"] == 2, 10, "replication")
    model_id = sorted(imported)[0]
    path = cluster.storage(follower) / "models" / f"{model_id}.bin"
    path.write_bytes(path.read_bytes()[:-7])  # cut short under the running node
    with cluster.client(follower) as client:
        # Served by the leader (REDIRECT), never from the damaged copy.
        assert np.allclose(client.predict(model_id, X), _predict_locally(imported[model_id]))
    wait_for(lambda: path.read_bytes() == imported[model_id], 15, "the file to be repaired")
    assert (
        hashlib.sha256(path.read_bytes()).hexdigest()
        == hashlib.sha256(imported[model_id]).hexdigest()
    )


def _metrics(cluster: LocalCluster, node_id: str) -> dict[str, float]:
    url = f"http://127.0.0.1:{cluster.monitor_port(node_id)}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#") and "{" not in line
    }


def _predict_locally(data: bytes) -> np.ndarray:
    from zmqnode.ml.model_file import Model

    return Model.from_bytes(data).predict(X)
