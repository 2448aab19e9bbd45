"""A node that is stopped answers every request still waiting on it."""

from __future__ import annotations

import signal
import threading

import pytest

from client import ClientError
from harness.cluster import LocalCluster, wait_for

pytestmark = [pytest.mark.conformance, pytest.mark.process]


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, 3)
    c.start()
    yield c
    c.stop()


def test_requests_parked_on_a_stopping_node_get_unavailable_at_once(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    cluster.isolate(follower)  # its LISTs now wait for a read index that cannot come
    wait_for(
        lambda: cluster.status(follower)["leader"] is None,
        10,
        "the isolated follower to notice it lost the leader",
    )
    outcomes: list[BaseException | object] = []

    def ask() -> None:
        with cluster.client(follower, timeout=60.0, retries=0) as client:
            try:
                outcomes.append(client.list_models())
            except BaseException as exc:  # the test inspects it
                outcomes.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: cluster.status(follower)["load"]["pending"] == 3, 10, "3 parked LISTs")
    cluster.kill(follower, signal.SIGTERM)
    for t in threads:
        t.join(timeout=10)  # far less than the clients' 60 s
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert isinstance(outcome, ClientError), outcome
        assert outcome.code == "UNAVAILABLE"
        assert "shutting down" in str(outcome)
