"""Real network partitions: each node in its own network namespace (harness/netns.py).

The faults cut the network, not only Raft messages: a node cut off by
iptables or isolated by its link going down loses its peers' Raft traffic,
training jobs and results, model-file fetches and, when isolated, its clients.
Needs root, iproute2 and iptables (``./run_tests.sh`` installs iptables when
it runs as root); elsewhere these tests skip with the reason, but under CI
(``CI`` set, as ``.ci/run`` runs as root) a missing capability fails them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from client import Client, ClusterUnavailable
from harness.cluster import wait_for
from harness.netns import NetnsCluster, unavailable
from zmqnode.transport.addresses import RAFT_OFFSET, RESULTS_OFFSET, TRAINING_OFFSET

pytestmark = pytest.mark.process

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.float32)
ELECTION = 15.0  # seconds allowed for an election or a step-down (two noisy cores)


@pytest.fixture
def cluster(tmp_path):
    reason = unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must run the netns tests: {reason}")
        pytest.skip(reason)
    c = NetnsCluster(tmp_path, n=3)
    try:
        c.start()
        c.leader(timeout=30)
        yield c
    finally:
        c.stop()


def role(cluster: NetnsCluster, node: str) -> str:
    return cluster.status(node)["role"]


def converged(cluster: NetnsCluster) -> dict[str, dict[str, Any]]:
    """Wait until every node follows one leader and has applied all it committed."""

    def check() -> dict[str, dict[str, Any]] | None:
        statuses = {n: cluster.status(n) for n in cluster.ids}
        leaders = {s["leader"] for s in statuses.values()}
        commit = max(s["commit_index"] for s in statuses.values())
        if len(leaders) == 1 and None not in leaders:
            if all(s["applied_index"] == commit for s in statuses.values()):
                return statuses
        return None

    return wait_for(check, 30, "every node following one leader, all applied")


def train_xor(cluster: NetnsCluster, nodes: list[str]) -> dict[str, Any]:
    with Client(nodes, keys=cluster.keys, timeout=10) as c:
        return c.train(XOR_X, XOR_Y)


def test_nodes_in_their_own_namespaces_elect_a_leader_and_serve_predictions(cluster):
    assert len({nid.split(":")[0] for nid in cluster.ids}) == 3, "an address per node"
    leader = cluster.leader()
    model_id = train_xor(cluster, cluster.ids)["model_id"]
    converged(cluster)
    for node in cluster.ids:
        with Client([node], keys=cluster.keys, timeout=5) as c:
            reply = c.predict_reply(model_id, XOR_X)
        assert reply.node == node, "each node serves predictions itself"
        assert reply.array("outputs").ravel().tolist() == [0, 1, 1, 0]
    assert leader in cluster.ids


def test_leader_cut_off_both_ways_is_replaced_and_steps_down_then_rejoins(cluster):
    old = cluster.leader()
    others = [n for n in cluster.ids if n != old]
    cluster.cut_off(old)
    new = cluster.leader(timeout=ELECTION, among=others)
    assert new != old
    # Check-quorum: a leader that hears no majority steps down by itself. The
    # test process still reaches it: cut_off drops only traffic between nodes.
    wait_for(lambda: role(cluster, old) != "leader", ELECTION, "the old leader stepping down")
    model_id = train_xor(cluster, others)["model_id"]

    cluster.heal()
    statuses = converged(cluster)
    assert statuses[old]["leader"] == new
    with Client([old], keys=cluster.keys, timeout=5) as c:
        assert model_id in {m["model_id"] for m in c.list_models()}


def test_leader_that_cannot_send_is_replaced_by_the_two_that_hear_nothing(cluster):
    old = cluster.leader()
    others = [n for n in cluster.ids if n != old]
    for other in others:
        cluster.cut(old, other, way="a->b")
    assert all(f"-s {old.split(':')[0]}/32 -j DROP" in cluster.rules(o) for o in others)
    assert cluster.rules(old).count("DROP") == 0, "one way: nothing dropped at the sender"
    new = cluster.leader(timeout=ELECTION, among=others)
    assert new in others
    wait_for(lambda: role(cluster, old) != "leader", ELECTION, "the old leader stepping down")

    cluster.heal()
    assert converged(cluster)[old]["leader"] == new


def test_isolated_node_is_unreachable_for_clients_and_catches_up_after_heal(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    cluster.isolate(follower)
    with Client([follower], keys=cluster.keys, timeout=1.0, retries=0) as c:
        with pytest.raises(ClusterUnavailable):
            c.status()  # its link is down: the request times out
    # A client given every node goes to another one; the majority still writes.
    model_id = train_xor(cluster, [follower, *[n for n in cluster.ids if n != follower]])[
        "model_id"
    ]

    cluster.heal()
    converged(cluster)
    with Client([follower], keys=cluster.keys, timeout=5) as c:
        assert c.predict(model_id, XOR_X).ravel().tolist() == [0, 1, 1, 0]


def test_a_cut_drops_training_and_client_ports_not_only_raft(cluster):
    leader = cluster.leader()
    follower = next(n for n in cluster.ids if n != leader)
    port = cluster.ports[cluster.ids.index(follower)]
    ports = [port, port + RAFT_OFFSET, port + TRAINING_OFFSET, port + RESULTS_OFFSET]
    wait_for(
        lambda: all(cluster.reaches(leader, follower, p) for p in ports),
        15,
        "the follower's node and trainer listening",
    )

    cluster.cut_off(follower)
    assert not any(cluster.reaches(leader, follower, p, timeout=0.5) for p in ports)
    assert not cluster.reaches(follower, leader, port, timeout=0.5)
    assert cluster.reaches(None, follower, port), "cut_off leaves the test process's path"
    # The leader hands training chunks only to trainers it can reach.
    result = train_xor(cluster, [leader])
    assert follower not in result["trainers"]

    cluster.heal()
    assert all(cluster.reaches(leader, follower, p) for p in ports)
    converged(cluster)
