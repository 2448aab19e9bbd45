"""Writes the golden /metrics texts the Go tests compare with (metrics_test.go).

Run from the repository root with the project's interpreter (its orjson and
numpy): .venv/bin/python go/metrics/testdata/gen_golden.py
The same updates are made in Go (golden_test.go); the rendered bytes must match.
"""

from __future__ import annotations

import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3]))

from zmqnode.metrics import DURATION_BUCKETS, SIZE_BUCKETS, Registry
from zmqnode.observe import NodeMetrics

HERE = pathlib.Path(__file__).parent


def registry() -> str:
    r = Registry("t_")
    c = r.counter("plain", "A counter without labels.")
    c.inc()
    c.inc(2.5)
    empty = r.counter("never", "Declared, never used.", ["kind"])
    del empty
    lab = r.counter("by_kind", 'Help with "quotes" and \\ backslash.', ["kind", "status"])
    lab.labels("b", "OK").inc()
    lab.labels("a", "ERR").inc(3)
    lab.labels("b", "OK").inc()
    lab.labels('we"ird\\\nvalue', "ñ").inc(0.1)
    lab.labels("a", "ERR").inc(0.2)
    g = r.gauge("level", "A gauge.")
    g.set(1e20)
    g2 = r.gauge("many", "Gauges of awkward values.", ["v"])
    for name, value in [
        ("neg0", -0.0), ("tiny", 1e-7), ("third", 1 / 3), ("inf", math.inf),
        ("ninf", -math.inf), ("nan", math.nan), ("big", 1.5e300), ("frac", 123456789.125),
        ("e16", 1.2345678901234567e16), ("neg", -2.5), ("k", 65536.0), ("small", 0.0001),
    ]:
        g2.labels(name).set(value)
    h = r.histogram("latency", "A histogram.")
    for v in (0.0001, 0.00011, 0.003, 0.003, 2.0, 61.0, 0.0, -1.0, math.nan, 0.1 + 0.2):
        h.observe(v)
    r.histogram("unused", "A histogram never observed.")
    hl = r.histogram("sizes", "A labelled histogram.", ["endpoint"], buckets=SIZE_BUCKETS)
    for i in range(1, 40):
        hl.labels("infer" if i % 3 else "model").observe(i * 7)
    hd = r.histogram("durations", "Durations.", buckets=DURATION_BUCKETS)
    hd.observe(4000.0)
    hd.observe(0.1)
    return r.render()


def node() -> str:
    m = NodeMetrics()
    m.term.set(7)
    for role in ("leader", "follower", "learner", "candidate", "pre_candidate"):
        m.role.labels(role).set(1 if role == "follower" else 0)
    m.commit_index.set(41)
    m.campaigns.inc()
    m.rpc_sent.labels("append").inc()
    m.rpc_sent.labels("append").inc()
    m.rpc_received.labels("append_resp").inc()
    m.append_seconds.observe(0.0004)
    m.requests.labels("PREDICT", "OK").inc()
    m.request_seconds.labels("PREDICT").observe(0.0002)
    m.requests.labels("LIST", "BUSY").inc()
    m.request_seconds.labels("LIST").observe(0.02)
    m.predict_batch_requests.observe(3)
    m.training_jobs.labels("ok").inc()
    m.training_seconds.observe(12.5)
    m.models.set(2)
    m.model_bytes.set(123456)
    m.compactions.labels().value = 3
    m.http_requests.labels("infer", "200").inc()
    m.http_request_seconds.labels("infer").observe(0.0015)
    m.http_connections.set(1)
    m.events.labels("malformed").inc()
    return m.registry.render()


if __name__ == "__main__":
    (HERE / "registry.golden").write_text(registry())
    (HERE / "node.golden").write_text(node())
