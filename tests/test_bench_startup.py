"""``python -m bench startup`` (issue 18): time to STATUS and the node's memory.

Brief runs (one cluster, a few hundred predictions): they check that every
figure is measured from a real node process of the wanted implementation, not
the figures themselves (docs/PERFORMANCE.md quotes full runs).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench.startup import main


def _run(capsys: pytest.CaptureFixture[str], impl: str) -> dict[str, Any]:
    argv = ["--impls", impl, "--repeats", "1", "--burst", "300", "--in-flight", "8"]
    assert main([*argv, "--idle-seconds", "0.2", "--json"]) == 0
    return orjson.loads(capsys.readouterr().out)


def _check(result: dict[str, Any], impl: str, executable: str) -> dict[str, Any]:
    assert list(result["by_impl"]) == [impl] and len(result["runs"][impl]) == 1
    s = result["by_impl"][impl]
    assert s["repeats"] == 1 and s["executable"].startswith(executable)
    # The port opens before the node answers, which is before it leads.
    assert 0 < s["port_s"] <= s["status_s"] <= s["leader_s"] < 60
    assert s["burst_rps"] > 0 and s["burst_errors"] == 0
    for phase in ("idle_kib", "trained_kib", "burst_kib"):
        mem = s[phase]
        assert set(mem) == {"VmRSS", "VmHWM"}
        assert 1024 < mem["VmRSS"] <= mem["VmHWM"], (phase, mem)  # KiB: over a MiB
    # The peak never goes down.
    assert s["idle_kib"]["VmHWM"] <= s["trained_kib"]["VmHWM"] <= s["burst_kib"]["VmHWM"]
    return s


@pytest.mark.process
def test_startup_of_a_python_node(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(capsys, "py")
    _check(result, "py", "python")
    assert result["cluster_size"] == 1 and result["over_py"] == {}


@pytest.mark.process
@pytest.mark.kotlin
@pytest.mark.timeout(600)
def test_startup_of_a_kotlin_node(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.ktbuild import KotlinBuildError, ensure_worker

    try:
        ensure_worker()
    except KotlinBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    _check(_run(capsys, "kotlin"), "kotlin", "java")


def test_startup_refuses_an_unknown_implementation() -> None:
    with pytest.raises(SystemExit):
        main(["--impls", "py,rust"])
    with pytest.raises(SystemExit):
        main(["--repeats", "0"])
