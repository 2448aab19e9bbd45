"""Short chaos runs (bench/chaos.py, the same code as ``python -m bench chaos``):
about 50 s of kills, pauses and partitions of a real 3-node cluster under load,
then every check of the bench asserted; the second run adds membership changes
(a voter replaced by a wiped node that rejoins, a voter demoted and promoted);
the third is a shorter run of a mixed cluster (Python, Go, Python)."""

from __future__ import annotations

import io

import pytest

from bench import chaos

# 50 s of faults by design, then the checks: longer than the default limit.
pytestmark = [pytest.mark.process, pytest.mark.slow, pytest.mark.timeout(420)]


def test_chaos_run_loses_nothing_and_stays_linearizable(tmp_path):
    result = chaos.run(
        50, seed=7, workdir=tmp_path, predictors=100, predict_rate=300, membership=False
    )
    out = io.StringIO()
    chaos.report(result, out)
    text = out.getvalue()
    assert sum(result.faults.values()) >= 8, text
    assert set(result.faults) == {"kill", "pause", "partition"}, text
    assert result.acknowledged > 50, text
    assert result.by_kind["predict"]["found"] > 1000, text
    assert result.lost == [], text
    assert result.hung == [], text
    assert result.linearizable, text
    assert result.problems == [], text
    assert result.leader_after_heal is not None and result.leader_after_heal < 10, text
    assert result.passed


def test_membership_changes_among_the_faults_lose_nothing(tmp_path, monkeypatch):
    # Changes more often than the bench's default, so 50 s holds some for sure.
    monkeypatch.setattr(chaos, "CHANGE_CHANCE", 0.6)
    result = chaos.run(
        50,
        seed=11,
        workdir=tmp_path,
        predictors=50,
        predict_rate=200,
        change_kinds=("replace", "demote"),
    )
    out = io.StringIO()
    chaos.report(result, out)
    text = out.getvalue() + "\n".join(result.change_log)
    done = sum(v for k, v in result.changes.items() if k.endswith(" done"))
    assert done >= 1, text
    assert result.final_membership.startswith("3 voters (every original node)"), text
    assert result.lost == [], text
    assert result.hung == [], text
    assert result.linearizable, text
    assert result.problems == [], text
    assert result.passed


@pytest.mark.go
@pytest.mark.timeout(300)
def test_mixed_cluster_chaos_loses_nothing(tmp_path):
    from harness.gobuild import GoBuildError, ensure_worker

    try:
        ensure_worker()
    except GoBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    # 30 s of faults (kills, pauses, partitions, membership changes) with the
    # Go node in the middle: it is the leader, a follower, killed and rejoined.
    result = chaos.run(
        30,
        seed=21,
        workdir=tmp_path,
        predictors=50,
        predict_rate=200,
        impls=("py", "go", "py"),
    )
    out = io.StringIO()
    chaos.report(result, out)
    text = out.getvalue() + "\n".join(result.fault_log)
    assert result.impls == ("py", "go", "py"), text
    assert sum(result.faults.values()) >= 4, text
    assert result.acknowledged > 20, text
    assert result.lost == [], text
    assert result.hung == [], text
    assert result.linearizable, text
    assert result.problems == [], text
    assert result.passed, text
