"""``python -m client export``: against a fake node, and through a real cluster,
whose PREDICT answers the exported ONNX graphs must give (to 1e-5)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from client.cli import main
from client.export import LABEL, PROBABILITIES, VALUES, onnx_bytes
from harness.cluster import ROOT, LocalCluster
from tests.test_client_fakenode import FakeNode
from tests.test_export import TOLERANCE, fake_cluster, raw_rows, targets, trained
from zmqnode.ml.training import TrainOptions, train

pytestmark = pytest.mark.conformance


def cli_at(node: FakeNode, *args: str) -> int:
    return main(["--nodes", node.address, "--timeout", "2", "--retries", "0", *args])


def test_cli_exports_onnx_and_safetensors(tmp_path, capsys) -> None:
    model = trained("multiclass")
    data = model.to_bytes()
    onnx_path, bin_path = tmp_path / "m.onnx", tmp_path / "m.bin"
    with fake_cluster(data, chunk=512) as node:
        assert cli_at(node, "export", "m1", "--format", "onnx", "-o", str(onnx_path)) == 0
        assert cli_at(node, "export", "m1", "--format", "safetensors", "-o", str(bin_path)) == 0
        capsys.readouterr()
        assert cli_at(node, "--json", "export", "m1", "-o", str(tmp_path / "j.onnx")) == 0
    assert bin_path.read_bytes() == data
    assert onnx_path.read_bytes() == onnx_bytes(model, model_id="m1")
    reported = json.loads(capsys.readouterr().out)
    assert reported["format"] == "onnx" and reported["outputs"] == [LABEL, PROBABILITIES]
    assert reported["sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()


def test_cli_export_of_an_unknown_model_exits_1_and_writes_nothing(tmp_path, capsys) -> None:
    with fake_cluster(b"x" * 10, chunk=10) as node:
        assert cli_at(node, "export", "ghost", "-o", str(tmp_path / "g.onnx")) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    assert not (tmp_path / "g.onnx").exists()


def test_without_onnx_the_cli_says_what_to_install_and_asks_nothing(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with fake_cluster(b"x" * 10, chunk=10) as node:
        assert cli_at(node, "export", "m1", "-o", str(tmp_path / "m.onnx")) == 2
        assert node.requests == []
    assert "pip install 'zmqnode[onnx]'" in capsys.readouterr().err


# -- through a real cluster --------------------------------------------------------


@pytest.mark.process
@pytest.mark.timeout(240)
def test_exported_models_answer_as_the_cluster_does(tmp_path) -> None:
    """A binary model trained by a 3-node cluster, a multiclass and a regression
    model imported into it; each exported by `python -m client export` from a
    follower and run by onnxruntime: the cluster's PREDICT answers, to 1e-5."""
    x = raw_rows(400, seed=4)
    rows = raw_rows(300, seed=5).astype(np.float32)
    imported = {
        # Numeric classes: PREDICT carries labels as numbers.
        "multiclass": train(x, targets("multiclass", x, names=[3, 5, 9]), TrainOptions(epochs=15)),
        "regression": trained("regression"),
    }
    cluster = LocalCluster(tmp_path / "cluster", n=3)
    with cluster.running():
        leader = cluster.leader()
        follower = next(n for n in cluster.ids if n != leader)
        with cluster.client() as c:
            ids = {"binary": c.train(x, targets("binary", x), options={"epochs": 10})["model_id"]}
            for task, model in imported.items():
                (tmp_path / f"{task}.import.bin").write_bytes(model.to_bytes())
                ids[task] = c.import_model(tmp_path / f"{task}.import.bin")["model_id"]
            answers = {task: c.predict(model_id, rows) for task, model_id in ids.items()}
        for task, model_id in ids.items():
            path = tmp_path / f"{task}.onnx"
            export_cli(cluster, follower, model_id, "--format", "onnx", "-o", str(path))
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [o.name for o in session.get_outputs()]
            out = dict(zip(names, session.run(None, {"inputs": rows}), strict=True))
            if task == "regression":
                assert out[VALUES].shape == answers[task].shape
                assert np.abs(out[VALUES] - answers[task]).max() <= TOLERANCE
            else:
                assert out[LABEL].tolist() == answers[task].tolist()
            copy = tmp_path / f"{task}.bin"
            export_cli(cluster, follower, model_id, "--format", "safetensors", "-o", str(copy))
            stored = cluster.storage(follower) / "models" / f"{model_id}.bin"
            assert copy.read_bytes() == stored.read_bytes()


def export_cli(cluster: LocalCluster, node: str, *args: str) -> dict[str, Any]:
    host, port = node.rsplit(":", 1)
    done = subprocess.run(
        [sys.executable, "-m", "client", "--host", host, "--port", port, "--json", "export", *args],
        cwd=ROOT,
        env={**os.environ, "ZMQNODE_KEYS": str(cluster.keys)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert Path(result["path"]).exists()
    return result
