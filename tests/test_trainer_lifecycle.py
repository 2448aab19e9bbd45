"""A trainer whose node died while it was starting exits instead of holding the port."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import zmq

pytestmark = pytest.mark.process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_trainer_started_for_a_node_already_gone_exits_and_frees_its_port(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    port = free_port()
    log = tmp_path / "trainer.log"
    trainer = subprocess.run(
        [
            sys.executable,
            "-m",
            "zmqnode.training.trainer",
            "--bind",
            f"tcp://127.0.0.1:{port}",
            "--name",
            "127.0.0.1:1",
            "--log",
            str(log),
            "--parent-pid",
            str(gone.pid),
            "--insecure",
        ],
        timeout=30,
    )
    assert trainer.returncode == 0
    assert f"node process {gone.pid} is gone; not starting" in log.read_text()
    ctx = zmq.Context()
    try:
        pull = ctx.socket(zmq.PULL)
        pull.bind(f"tcp://127.0.0.1:{port}")  # the port was never taken
        pull.close(0)
    finally:
        ctx.term()
