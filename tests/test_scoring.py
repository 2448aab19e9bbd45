"""Batch scoring, ``python -m client predict <id> --csv in.csv``: through a real
3-node cluster, each answer the one ``Client.predict`` gives for the same row.

One cluster for the module, with two models: a classifier trained with
feature and target names and class names as strings, and a two-column
regression trained without names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import client.scoring as scoring
import client.tables as tables
from client.api import Client
from client.cli import EXIT_USAGE, main
from client.scoring import ScoringError, score_csv
from client.tables import TableError
from harness.cluster import ROOT, LocalCluster

pytestmark = [pytest.mark.conformance, pytest.mark.process, pytest.mark.timeout(180)]

FEATURES = ["a", "b", "c", "d"]
SPECIES = np.array(["setosa", "versicolor", "virginica"])


def assert_same_floats(trained: Trained, got: np.ndarray, expected: np.ndarray) -> None:
    """Bit for bit when every node runs one implementation; across
    implementations float32 results may differ in the last bit
    (docs/PROTOCOL.md §5.3), and the CLI and the client may ask different nodes."""
    if trained.cluster.one_implementation:
        assert np.array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@dataclass(frozen=True)
class Trained:
    cluster: LocalCluster
    client: Client
    classifier: str  # features a..d, target "species", string classes
    regression: str  # 4 inputs, 2 outputs, no names


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    cluster = LocalCluster(tmp_path_factory.mktemp("scoring") / "cluster", n=3)
    with cluster.running():
        c = cluster.client(timeout=60.0)
        x = rows(300, seed=1)
        species = SPECIES[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
        classifier = c.train(
            x, species, features=FEATURES, targets=["species"], options={"epochs": 5}
        )["model_id"]
        y = np.stack([x[:, 0] + x[:, 2], x[:, 1] - x[:, 3]], axis=1)
        regression = c.train(x, y, options={"epochs": 5})["model_id"]
        yield Trained(cluster, c, classifier, regression)


def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


def write_csv(path: Path, header: list[str] | None, columns: list[list[str]]) -> Path:
    lines = [",".join(header)] if header is not None else []
    lines += [",".join(cells) for cells in zip(*columns, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def cells(values: np.ndarray) -> list[str]:
    return [f"{v:.9g}" for v in values.tolist()]


def shuffled_with_extras(path: Path, x: np.ndarray) -> Path:
    """``x``'s columns a..d as d, species, b, id, a, c: reordered, and two
    columns the model does not take (one of them not numbers)."""
    return write_csv(
        path,
        ["d", "species", "b", "id", "a", "c"],
        [
            cells(x[:, 3]),
            ["unknown"] * len(x),
            cells(x[:, 1]),
            [str(i) for i in range(len(x))],
            cells(x[:, 0]),
            cells(x[:, 2]),
        ],
    )


def cli(trained: Trained, *args: str) -> subprocess.CompletedProcess[str]:
    cluster = trained.cluster
    done = subprocess.run(
        [sys.executable, "-m", "client", "--nodes", ",".join(cluster.ids), "predict", *args],
        cwd=ROOT,
        env={**os.environ, "ZMQNODE_KEYS": str(cluster.keys)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def cli_in_process(trained: Trained, *args: str) -> int:
    cluster = trained.cluster
    keys = ["--keys", str(cluster.keys)]
    return main(["--nodes", ",".join(cluster.ids), *keys, "predict", *args])


def read_lines(text: str) -> tuple[list[str], list[list[str]]]:
    header, *body = text.splitlines()
    return header.split(","), [line.split(",") for line in body]


# -- classification, by name ---------------------------------------------------------


def test_reordered_and_extra_columns_are_picked_by_name_and_scored_to_stdout(
    trained, tmp_path
) -> None:
    x = rows(500, seed=2)
    path = shuffled_with_extras(tmp_path / "in.csv", x)
    done = cli(trained, trained.classifier, "--csv", str(path))
    header, body = read_lines(done.stdout)
    assert header == ["species"]
    assert [line[0] for line in body] == trained.client.predict(trained.classifier, x).tolist()


def test_proba_gives_each_class_probability_summing_to_one_with_the_label_as_argmax(
    trained, tmp_path
) -> None:
    x = rows(400, seed=3)
    path = shuffled_with_extras(tmp_path / "in.csv", x)
    out = tmp_path / "scored.csv"
    done = cli(
        trained, trained.classifier, "--csv", str(path), "--out", str(out), "--proba", "--json"
    )
    summary = json.loads(done.stdout)
    header, body = read_lines(out.read_text())
    assert header == ["species", *(f"proba_{name}" for name in SPECIES)]
    labels = [line[0] for line in body]
    proba = np.array([[float(v) for v in line[1:]] for line in body])
    assert labels == trained.client.predict(trained.classifier, x).tolist()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert [SPECIES[i] for i in proba.argmax(axis=1)] == labels
    expected = trained.client.predict_proba(trained.classifier, x)
    assert_same_floats(trained, proba.astype(np.float32), expected)
    assert summary["rows"] == 400 and summary["batches"] == 1 and summary["out"] == str(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "scored.csv"]


def test_a_large_file_goes_in_several_requests_and_blocks_in_order(
    trained, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(scoring, "ROWS_PER_REQUEST", 128)
    monkeypatch.setattr(tables, "BLOCK_BYTES", 16 << 10)  # several blocks too
    x = rows(1000, seed=4)
    path = shuffled_with_extras(tmp_path / "in.csv", x)
    out = tmp_path / "scored.csv"
    summary = score_csv(
        trained.client, trained.classifier, str(path), out=str(out), proba=False, progress=False
    )
    assert summary["rows"] == 1000 and summary["out"] == str(out)
    assert summary["batches"] >= 1000 // 128 + 1  # blocks split further by the limit
    assert summary["model_id"] == trained.classifier and summary["rows_per_second"] > 0
    _, body = read_lines(out.read_text())
    assert [line[0] for line in body] == trained.client.predict(trained.classifier, x).tolist()


def test_a_missing_column_is_named_with_the_files_columns(trained, tmp_path, capsys) -> None:
    x = rows(5, seed=5)
    path = write_csv(tmp_path / "in.csv", ["a", "b", "d"], [cells(x[:, i]) for i in (0, 1, 3)])
    with pytest.raises(ScoringError, match=r"no column named 'c' .*columns are a, b, d"):
        score_csv(
            trained.client, trained.classifier, str(path), out=None, proba=False, progress=False
        )
    assert cli_in_process(trained, trained.classifier, "--csv", str(path)) == EXIT_USAGE
    assert "no column named 'c'" in capsys.readouterr().err


def test_a_bad_cell_leaves_no_output_file(trained, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tables, "BLOCK_BYTES", 4 << 10)  # the bad line in a later block
    x = rows(600, seed=6)
    columns = [cells(x[:, i]) for i in range(4)]
    columns[2][550] = "abc"
    path = write_csv(tmp_path / "in.csv", FEATURES, columns)
    out = tmp_path / "scored.csv"
    with pytest.raises(TableError, match=r"line 552, column 3: 'abc' is not a number"):
        score_csv(
            trained.client, trained.classifier, str(path), out=str(out), proba=False, progress=False
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_header_only_file_is_an_error(trained, tmp_path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("a,b,c,d\n")
    with pytest.raises(ScoringError, match="no data rows"):
        score_csv(
            trained.client, trained.classifier, str(path), out=None, proba=False, progress=False
        )


# -- by position: no header, or no names in the model ----------------------------------


def test_a_headerless_file_of_the_models_width_is_taken_in_order(trained, tmp_path) -> None:
    x = rows(300, seed=7)
    path = write_csv(tmp_path / "in.csv", None, [cells(x[:, i]) for i in range(4)])
    done = cli(trained, trained.classifier, "--csv", str(path))
    header, body = read_lines(done.stdout)
    assert header == ["species"]
    assert [line[0] for line in body] == trained.client.predict(trained.classifier, x).tolist()


def test_regression_writes_one_column_per_output_with_float32_exact_values(
    trained, tmp_path
) -> None:
    x = rows(300, seed=8)
    path = write_csv(tmp_path / "in.csv", None, [cells(x[:, i]) for i in range(4)])
    out = tmp_path / "scored.csv"
    cli(trained, trained.regression, "--csv", str(path), "--out", str(out))
    header, body = read_lines(out.read_text())
    assert header == ["prediction_1", "prediction_2"]
    values = np.array([[float(v) for v in line] for line in body], dtype=np.float32)
    assert_same_floats(trained, values, trained.client.predict(trained.regression, x))


def test_a_file_of_another_width_without_names_is_a_clear_error(trained, tmp_path) -> None:
    x = rows(5, seed=9)
    path = write_csv(tmp_path / "in.csv", ["p", "q", "r"], [cells(x[:, i]) for i in range(3)])
    with pytest.raises(ScoringError, match=r"no feature names.*takes 4 columns, the file has 3"):
        score_csv(
            trained.client, trained.regression, str(path), out=None, proba=False, progress=False
        )
    headerless = write_csv(tmp_path / "bare.csv", None, [cells(x[:, i]) for i in range(3)])
    with pytest.raises(ScoringError, match=r"no header row.*\(a, b, c, d\) by name"):
        score_csv(
            trained.client,
            trained.classifier,
            str(headerless),
            out=None,
            proba=False,
            progress=False,
        )


def test_proba_of_a_regression_model_is_refused_before_any_prediction(
    trained, tmp_path, capsys
) -> None:
    x = rows(5, seed=10)
    path = write_csv(tmp_path / "in.csv", None, [cells(x[:, i]) for i in range(4)])
    out = tmp_path / "scored.csv"
    code = cli_in_process(
        trained, trained.regression, "--csv", str(path), "--proba", "--out", str(out)
    )
    assert code == EXIT_USAGE
    assert "--proba needs a classification model" in capsys.readouterr().err
    assert not out.exists()
