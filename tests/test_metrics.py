"""/metrics: the hand-written Prometheus text, read back by prometheus_client's parser."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import numpy as np
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from client import ClientError
from harness.cluster import LocalCluster, wait_for
from zmqnode.metrics import LATENCY_BUCKETS, RecentLatency, Registry
from zmqnode.transport import security

pytestmark = pytest.mark.conformance


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams: dict, family: str, suffix: str = "", **labels) -> float:
    """Sum of ``family + suffix`` samples with these labels (counters: suffix ``_total``)."""
    fam = fams.get(family)
    if fam is None:
        return 0.0
    return sum(
        s.value
        for s in fam.samples
        if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_counters_gauges_and_histograms_render_as_prometheus_reads_them():
    r = Registry()
    requests = r.counter("requests", "Requests.", ["type", "status"])
    term = r.gauge("raft_term", "Term.")
    latency = r.histogram("request_seconds", "Latency.", ["type"])
    requests.labels("PREDICT", "OK").inc()
    requests.labels("PREDICT", "OK").inc(2)
    requests.labels("TRAIN", 'bad "quoted"\nline').inc()
    term.set(7)
    for value in (0.0002, 0.003, 0.003, 100.0):
        latency.labels("PREDICT").observe(value)
    fams = families(r.render())
    assert sample(fams, "zmqnode_requests", "_total", type="PREDICT", status="OK") == 3
    assert sample(fams, "zmqnode_requests", "_total", status='bad "quoted"\nline') == 1
    assert sample(fams, "zmqnode_raft_term") == 7
    assert fams["zmqnode_request_seconds"].type == "histogram"
    assert sample(fams, "zmqnode_request_seconds", "_count", type="PREDICT") == 4
    assert sample(fams, "zmqnode_request_seconds", "_sum") == pytest.approx(100.0062)
    buckets = {
        s.labels["le"]: s.value
        for s in fams["zmqnode_request_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["0.00025"] == 1 and buckets["0.005"] == 3 and buckets["+Inf"] == 4
    assert len(buckets) == len(LATENCY_BUCKETS) + 1


def test_recent_latency_gives_rate_and_p99_of_the_last_seconds():
    now = [1000.5]
    recent = RecentLatency(seconds=5, clock=lambda: now[0])
    assert recent.rate() == 0.0 and recent.quantile(0.99) is None
    for _ in range(99):
        recent.observe(0.001)
    recent.observe(2.0)
    assert recent.quantile(0.5) == 0.001
    assert recent.quantile(0.995) == 2.5  # the bucket bound above 2.0
    assert recent.rate() == pytest.approx(100 / 4.5)
    now[0] += 10  # everything falls out of the window
    assert recent.quantile(0.99) is None and recent.rate() == 0.0


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, n=3)
    c.start()
    try:
        c.leader(timeout=30)
        yield c
    finally:
        c.stop()


def scrape(cluster: LocalCluster, node: str) -> dict:
    url = f"http://127.0.0.1:{cluster.monitor_port(node)}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return families(r.read().decode())


@pytest.mark.process
def test_a_busy_nodes_metrics_parse_and_move(cluster):
    leader = cluster.leader()
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0])
    before = scrape(cluster, leader)
    with cluster.client(leader) as c:
        model_id = c.train(x, y)["model_id"]
        for _ in range(20):
            c.predict(model_id, x)
        with pytest.raises(ClientError):
            c.predict("no-such-model", x)

    def moved():
        fams = scrape(cluster, leader)
        predicted = sample(fams, "zmqnode_requests", "_total", type="PREDICT") >= 21
        # Gauges are refreshed once a tick, counters as things happen.
        committed = sample(fams, "zmqnode_models") == 1
        return fams if predicted and committed else None

    after = wait_for(moved, 10, "the leader's metrics to count the predictions")
    assert sample(after, "zmqnode_requests", "_total", type="PREDICT", status="OK") >= 20
    assert sample(after, "zmqnode_requests", "_total", type="PREDICT", status="NOT_FOUND") == 1
    assert sample(after, "zmqnode_request_seconds", "_count", type="PREDICT") >= 21
    assert sample(after, "zmqnode_predict_batch_requests", "_count") >= 20
    assert sample(after, "zmqnode_training_jobs", "_total", status="OK") == 1
    assert sample(after, "zmqnode_training_seconds", "_count") == 1
    assert sample(after, "zmqnode_raft_role", role="leader") == 1
    assert sample(after, "zmqnode_raft_term") >= 1
    assert sample(after, "zmqnode_raft_commit_index") > sample(before, "zmqnode_raft_commit_index")
    assert sample(after, "zmqnode_raft_commit_seconds", "_count") >= 1
    assert sample(after, "zmqnode_raft_append_seconds", "_count") >= 1
    assert sample(after, "zmqnode_raft_messages_sent", "_total", type="heartbeat") > 0
    assert sample(after, "zmqnode_raft_messages_received", "_total", type="append_resp") > 0
    assert sample(after, "zmqnode_storage_fsync_seconds", "_count") > sample(
        before, "zmqnode_storage_fsync_seconds", "_count"
    )
    assert sample(after, "zmqnode_storage_log_bytes") > 0
    assert sample(after, "zmqnode_models") == 1
    follower = next(n for n in cluster.ids if n != leader)
    assert sample(scrape(cluster, follower), "zmqnode_raft_role", role="follower") == 1


def get_json(cluster: LocalCluster, node: str, path: str):
    url = f"http://127.0.0.1:{cluster.monitor_port(node)}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.process
def test_logs_tail_one_line_per_event_with_time_node_and_level(cluster):
    leader = cluster.leader()
    status, body = get_json(cluster, leader, "/logs?n=3")
    assert status == 200 and len(body["lines"]) == 3
    status, body = get_json(cluster, leader, "/logs?n=1000")
    line = next(x for x in body["lines"] if "became leader" in x)
    # 2026-11-29 05:14:48,920 INFO    [127.0.0.1:27435] zmqnode.node: became leader for term 1
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO +\[" + re.escape(leader) + r"\] ", line
    )
    assert get_json(cluster, leader, "/logs?n=lots")[0] == 400
    assert get_json(cluster, leader, "/nothing")[0] == 404


@pytest.mark.process
def test_log_level_flag_filters_what_is_written(tmp_path):
    quiet = LocalCluster(tmp_path, n=1, extra_args=("--log-level", "WARNING"))
    quiet.start()
    try:
        node = quiet.leader(timeout=30)
        ctx = zmq.Context.instance()
        garbage = ctx.socket(zmq.DEALER)  # a malformed Raft message: logged as a warning
        security.make_client(garbage, quiet.client_keys("node0"))  # a member's key
        garbage.connect(f"tcp://{node.rsplit(':', 1)[0]}:{int(node.rsplit(':', 1)[1]) + 1000}")
        garbage.send_multipart([b"not", b"raft"])

        def logged():
            lines = get_json(quiet, node, "/logs?n=1000")[1]["lines"]
            return lines if any("malformed Raft message" in x for x in lines) else None

        lines = wait_for(logged, 10, "the warning in the log")
        garbage.close(0)
    finally:
        quiet.stop()
    assert all(" WARNING " in x or " ERROR " in x for x in lines), lines
    assert not any("became leader" in x for x in lines)  # INFO: filtered out
