"""``python -m bench predict --impl go`` and ``python -m bench train --leader go``
(issue 17), and ``./run_cluster.sh --impls``'s argument checks.

The bench runs are brief (a few hundred requests, one small dataset once):
they check that the Go side is really measured -- a Go process served, with
a positive throughput next to the Python node's -- not the figures, which
docs/PERFORMANCE.md quotes from full runs.
"""

from __future__ import annotations

import subprocess

import orjson
import pytest

from harness.cluster import ROOT


@pytest.fixture
def go_worker() -> None:
    try:
        from harness.gobuild import GoBuildError, ensure_worker

        ensure_worker()
    except GoBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


@pytest.mark.process
@pytest.mark.go
def test_predict_impl_go_baseline_puts_the_go_node_next_to_the_python_node(
    go_worker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.predict import main

    argv = ["--impl", "go", "--baseline", "--no-seed", "--no-big"]
    argv += ["--requests", "300", "--warmup", "50", "--in-flight", "8", "--json"]
    assert main(argv) == 0
    result = orjson.loads(capsys.readouterr().out)

    assert result["impl"] == "go"
    assert set(result["node_executables"].values()) == {"worker"}  # go/worker served
    go, py = result["zmqnode"], result["baseline"]["zmqnode_py"]
    assert py["impl"] == "py"
    assert all(e.startswith("python") for e in py["node_executables"].values())
    for row in (go, py, result["baseline"]["echo"]):
        assert row["requests"] == 300 and row["errors"] == 0, row
        assert row["throughput_rps"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    assert "node_loop_cpu_us_per_request" not in go  # no Python event loop to speak of
    ratios = result["ratios"]
    assert ratios["impl_over_py_throughput"] > 0 and ratios["impl_over_py_p99"] > 0
    assert ratios["zmqnode_over_echo_throughput"] > 0
    assert "seed_style" not in result["baseline"]  # --no-seed


def test_predict_impl_is_for_the_local_cluster_only() -> None:
    from bench.predict import main

    with pytest.raises(SystemExit) as exc:
        main(["--impl", "go", "--nodes", "127.0.0.1:9000"])
    assert exc.value.code == 2


@pytest.mark.process
@pytest.mark.go
def test_train_leader_go_trains_under_a_go_leader_and_a_python_leader(
    go_worker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.train import main

    assert main(["--leader", "go", "--datasets", "iris", "--repeats", "1", "--json"]) == 0
    result = orjson.loads(capsys.readouterr().out)

    assert result["impls"] == ["py", "go", "py"] and result["leaders"] == ["py", "go"]
    iris = result["datasets"]["iris"]
    go, py = iris["by_leader"]["go"], iris["by_leader"]["py"]
    assert go["leader"] != py["leader"]
    assert go["leader_executable"] == "worker"
    assert py["leader_executable"].startswith("python")
    for b in (go, py):
        assert b["score"] >= 0.9 and b["seconds_median"] > 0 and b["trainers"] >= 1
    assert abs(iris["go_minus_py_points"]) <= 1.0  # issue 17: within 1 point
    assert iris["go_over_py_time"] > 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--impls", "py,rust"], "'rust' is not py, go or kotlin"),
        (["--impls"], "--impls needs a list"),
    ],
)
def test_run_cluster_refuses_an_unknown_implementation(argv: list[str], message: str) -> None:
    # Checked before anything starts (no venv, no build, no node).
    proc = subprocess.run(
        [str(ROOT / "run_cluster.sh"), *argv], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert message in proc.stderr
