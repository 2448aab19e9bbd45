"""``python -m bench train --leader kotlin`` (issue 18): a Kotlin leader's accuracy
next to a Python leader's, in one mixed cluster.

The run is brief (iris once): it checks a Kotlin process led the training
with a score next to the Python leader's, not the figures.
"""

from __future__ import annotations

import orjson
import pytest

from bench.train import main


@pytest.mark.parametrize(
    "argv",
    [
        ["--leader", "kotlin", "--impls", "py,go"],  # no Kotlin node to lead
        ["--leader", "kotlin", "--impls", "kotlin"],  # no Python leader to compare with
        ["--leader", "go", "--impls", "py,rust"],
    ],
)
def test_leader_needs_both_implementations_in_the_cluster(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:  # refused before anything starts
        main(argv)
    assert exc.value.code == 2


@pytest.mark.process
@pytest.mark.kotlin
@pytest.mark.timeout(900)
def test_train_leader_kotlin_trains_under_a_kotlin_leader_and_a_python_leader(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.ktbuild import KotlinBuildError, ensure_worker

    try:
        ensure_worker()
    except KotlinBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    assert main(["--leader", "kotlin", "--datasets", "iris", "--repeats", "1", "--json"]) == 0
    result = orjson.loads(capsys.readouterr().out)
    assert result["impls"] == ["py", "kotlin", "py"] and result["leaders"] == ["py", "kotlin"]
    iris = result["datasets"]["iris"]
    kt, py = iris["by_leader"]["kotlin"], iris["by_leader"]["py"]
    assert kt["leader"] != py["leader"]
    assert kt["leader_executable"] == "java"
    for b in (kt, py):
        assert 0.5 < b["score"] <= 1.0 and b["seconds_median"] > 0
    assert abs(iris["kotlin_minus_py_points"]) < 50
    assert iris["kotlin_over_py_time"] > 0
