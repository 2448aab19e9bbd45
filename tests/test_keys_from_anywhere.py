"""Keys found from anywhere, end to end: the client run from any directory
finds the keys ./run_cluster.sh recorded or the local keys the nodes made,
and the original design's node command lines (no --keys) form a CURVE
cluster on one machine. The search itself: tests/test_keys_discovery.py.

Every test points XDG_CONFIG_HOME at its own temporary directory: none reads
or writes the developer's ~/.config/zmqnode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest
import zmq.auth

from client.api import default_keys
from client.cli import main
from harness.cluster import pick_base_ports, wait_for
from zmqnode.transport import keystore
from zmqnode.transport.security import keygen


def test_the_client_uses_the_keys_run_cluster_recorded(config_home, tmp_path):
    keys = tmp_path / "repo" / ".cluster" / "keys"
    keygen(keys, nodes=3)
    (config_home / "zmqnode").mkdir(parents=True)
    (config_home / "zmqnode" / "keys").write_text(f"{keys}\n")  # as ./run_cluster.sh does
    assert default_keys() == str(keys)


def test_the_client_uses_the_local_keys_last(config_home):
    keystore.ensure_local_keys(keystore.local_keys_dir(), [("127.0.0.1", 9000)])
    assert default_keys() == str(keystore.local_keys_dir())


def test_the_cli_says_where_it_looked_when_the_cluster_does_not_answer(config_home, capsys):
    port = pick_base_ports(1)[0]  # nothing listens there
    code = main(["--port", str(port), "--timeout", "0.5", "--retries", "0", "list"])
    assert code == 3
    err = capsys.readouterr().err
    assert "no keys found" in err and "local-keys" in err


# -- the original design's command lines, for real -------------------------------------


def _status(monitor_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/status", timeout=1) as r:
        return json.load(r)


@pytest.mark.process
def test_the_original_command_lines_form_a_secure_cluster_the_cli_reaches(tmp_path):
    """Three ``python -m zmqnode`` lines as the original design wrote them (its
    ports moved to free ones), no --keys, started at once; then ``python -m
    client list`` from another directory, with only the same per-user home."""
    env = {k: v for k, v in os.environ.items() if k != "ZMQNODE_KEYS"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["HOME"] = str(tmp_path / "home")
    here = tmp_path / "nodes"
    here.mkdir()
    ports = pick_base_ports(3)
    procs = []
    try:
        for i, port in enumerate(ports):
            peers = [f"127.0.0.1:{p}" for p in ports if p != port]
            command = [
                sys.executable,
                "-m",
                "zmqnode",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--monitor-port",
                str(port - 1000),
                "--raft-port",
                str(port + 1000),
                "--peers",
                *peers,
                "--storage-dir",
                f"node{i}_storage",
            ]
            out = open(here / f"node{i}.out", "wb")
            procs.append(
                subprocess.Popen(
                    command,
                    cwd=here,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )

        def leader() -> str | None:
            for i, proc in enumerate(procs):
                if proc.poll() is not None:
                    raise AssertionError((here / f"node{i}.out").read_text(errors="replace"))
            statuses = [_status(p - 1000) for p in ports]
            leaders = {s["leader"] for s in statuses}
            return statuses[0]["leader"] if len(leaders) == 1 and None not in leaders else None

        wait_for(leader, 30, "a leader agreed by the three nodes")
        local = tmp_path / "config" / "zmqnode" / "local-keys"
        assert len(zmq.auth.load_certificates(local / "members")) == 3  # one set, not three
        log = (here / "node0_storage" / f"worker_{ports[0]}.log").read_text()
        assert f"using the local keys in {local}" in log
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        run = subprocess.run(
            [sys.executable, "-m", "client", "--port", str(ports[1]), "--json", "list"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["models"] == []
        # And the cluster speaks CURVE: a plaintext client is not let in.
        plain = subprocess.run(
            [
                sys.executable,
                "-m",
                "client",
                "--port",
                str(ports[1]),
                "--timeout",
                "1",
                "--retries",
                "0",
                "list",
            ],
            cwd=elsewhere,
            env={**env, "ZMQNODE_KEYS": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert plain.returncode == 3 and "no keys" in plain.stderr
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
