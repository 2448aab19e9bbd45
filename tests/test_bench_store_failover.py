"""``python -m bench store`` and ``python -m bench failover`` in tiny configurations.

Real node processes on loopback; every wait polls with a deadline.
"""

from __future__ import annotations

import pytest

from bench.failover import run_failover
from bench.store import SIZES, model_counts, model_file, store_run
from harness.cluster import LocalCluster

pytestmark = pytest.mark.conformance


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, n=3)
    c.start()
    try:
        c.leader(timeout=30)
        yield c
    finally:
        c.stop()


@pytest.mark.process
def test_store_pipelined_imports_are_all_acknowledged_and_applied_everywhere(cluster):
    model = model_file(SIZES["1KB"])
    assert 800 <= len(model) <= 1600  # "≈1 KB"
    before = model_counts(cluster)

    run, after = store_run(cluster, model, 20, 4)

    assert run.acked == 20, run.summary()
    assert run.errors == {} and run.unanswered == 0
    assert run.rate > 0
    for nid in cluster.ids:
        assert after[nid]["registry"] == before[nid]["registry"] + 20, after
        assert after[nid]["files"] == before[nid]["files"] + 20, after


def test_store_payload_sizes():
    assert 8_000 <= len(model_file(SIZES["10KB"])) <= 12_000


@pytest.mark.process
def test_failover_one_kill_under_light_load():
    result = run_failover(kills=1, in_flight=8, healthy_seconds=1.0, request_timeout=1.0, log=None)

    fo = result["failover_kill_to_ack_ms"]
    assert len(fo["runs"]) == 1 and fo["runs"][0] > 0  # a new leader acknowledged a write
    load = result["load"]
    assert load["hung"] == 0, load
    assert load["wrong_answers"] == 0, load
    assert load["ok"] > 0
    assert load["sent"] == (
        load["ok"]
        + load["wrong_answers"]
        + load["timeouts"]
        + sum(load["errors"].values())
        + load["unresolved_at_end"]
    )
