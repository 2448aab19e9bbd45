"""Idle HTTP connections cannot pile up threads on a node, nor stop it serving."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from harness.cluster import LocalCluster, wait_for
from zmqnode.monitor import MAX_CONNECTIONS

pytestmark = [pytest.mark.conformance, pytest.mark.process]


@pytest.fixture
def node(tmp_path):
    cluster = LocalCluster(tmp_path, 1)
    cluster.start()
    cluster.leader()
    yield cluster
    cluster.stop()


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def test_idle_connections_past_the_cap_are_closed_and_the_node_serves(node):
    node_id = node.ids[0]
    pid = node.procs[node_id].pid
    before = threads(pid)
    idle = []
    for _ in range(MAX_CONNECTIONS + 20):
        s = socket.create_connection(("127.0.0.1", node.monitor_port(node_id)), timeout=5)
        idle.append(s)

    def closed_by_node(s: socket.socket) -> bool:
        s.settimeout(0.05)
        try:
            return s.recv(1) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    wait_for(
        lambda: sum(closed_by_node(s) for s in idle) >= 20,
        10,
        "the node to close the connections past its cap",
    )
    assert threads(pid) <= before + MAX_CONNECTIONS
    assert node.status(node_id)["role"] == "leader"  # the client port is unaffected
    for s in idle:
        s.close()
    url = f"http://127.0.0.1:{node.monitor_port(node_id)}/status"

    def monitor_answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(monitor_answers, 15, "the monitor to serve again once the idle clients left")


def test_the_monitor_is_read_only_and_on_loopback_by_default(node):
    from zmqnode.config import parse_args

    assert parse_args(["--port", "9000", "--insecure"]).monitor_host == "127.0.0.1"
    node_id = node.ids[0]
    url = f"http://127.0.0.1:{node.monitor_port(node_id)}/status"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        request = urllib.request.Request(url, data=b"{}", method=method)
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError(f"{method} was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 501, (method, exc.code)
    assert node.status(node_id)["role"] == "leader"
