"""Iris with species names through a real 3-node cluster, as a user runs it:
two CSV files, one CSV with ``--target species``, predictions by name from
the CLI and the Python client, and an ONNX export that answers the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cluster import ROOT, LocalCluster

pytestmark = [pytest.mark.conformance, pytest.mark.process, pytest.mark.timeout(300)]

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETOSA_ROW = "5.1,3.5,1.4,0.2"


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, np.asarray(data.target_names)[data.target]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("names"), n=3)
    with c.running():
        c.leader(timeout=30)
        yield c


def cli(cluster: LocalCluster, *args: str, cwd: Path) -> Any:
    """``python -m client --json ...`` from ``cwd``; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "client", "--nodes", ",".join(cluster.ids), "--json", *args],
        cwd=cwd,
        env={**os.environ, "ZMQNODE_KEYS": str(cluster.keys), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_two_files_with_species_names(cluster, iris, tmp_path):
    x, species = iris
    np.savetxt(
        tmp_path / "X.csv", x, delimiter=",", fmt="%g", header=",".join(FEATURES), comments=""
    )
    (tmp_path / "y.csv").write_text("species\n" + "\n".join(species) + "\n")
    trained = cli(cluster, "train", "X.csv", "y.csv", cwd=tmp_path)
    model_id = trained["model_id"]
    predicted = cli(cluster, "predict", model_id, f"{SETOSA_ROW};6.3,3.3,6.0,2.5", cwd=tmp_path)
    assert predicted["outputs"] == ["setosa", "virginica"]
    listing = next(
        m for m in cli(cluster, "list", cwd=tmp_path)["models"] if m["model_id"] == model_id
    )
    assert listing["classes"] == ["setosa", "versicolor", "virginica"]
    assert listing["features"] == FEATURES and listing["targets"] == ["species"]
    with cluster.client() as client:
        names = client.predict(model_id, x)
    assert names.dtype.kind == "U" and (names == species).mean() > 0.9


def test_one_file_with_target_species_and_reordered_columns(cluster, iris, tmp_path):
    x, species = iris
    # The target in the middle, as downloaded tables often have it.
    lines = ["petal_length,species,sepal_length,petal_width,sepal_width"]
    lines += [f"{r[2]:g},{s},{r[0]:g},{r[3]:g},{r[1]:g}" for r, s in zip(x, species, strict=True)]
    (tmp_path / "iris.csv").write_text("\n".join(lines) + "\n")
    trained = cli(cluster, "train", "iris.csv", "--target", "species", cwd=tmp_path)
    model_id = trained["model_id"]
    info = cli(cluster, "info", model_id, cwd=tmp_path)
    assert info["features"] == ["petal_length", "sepal_length", "petal_width", "sepal_width"]
    assert info["classes"] == ["setosa", "versicolor", "virginica"]
    # Inline rows follow the model's feature order (petal_length first).
    predicted = cli(cluster, "predict", model_id, "1.4,5.1,0.2,3.5", cwd=tmp_path)
    assert predicted["outputs"] == ["setosa"]

    onnx_path = tmp_path / "iris.onnx"
    cli(cluster, "export", model_id, "--format", "onnx", "-o", str(onnx_path), cwd=tmp_path)
    import onnxruntime as ort

    rows = x[:, [2, 0, 3, 1]].astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    label = session.run(["label"], {"inputs": rows})[0]
    with cluster.client() as client:
        assert [str(v) for v in label] == client.predict(model_id, rows).tolist()
