"""A short chaos run (bench/chaos.py, the same code as ``python -m bench chaos``):
about 50 s of kills, pauses and partitions of a real 3-node cluster under load,
then every check of the bench asserted."""

from __future__ import annotations

import io

import pytest

from bench import chaos

# 50 s of faults by design, then the checks: longer than the default limit.
pytestmark = [pytest.mark.process, pytest.mark.slow, pytest.mark.timeout(300)]


def test_chaos_run_loses_nothing_and_stays_linearizable(tmp_path):
    result = chaos.run(50, seed=7, workdir=tmp_path, predictors=100, predict_rate=300)
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
