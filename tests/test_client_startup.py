"""``python -m client`` imports only what the command uses.

A script that runs ``python -m client predict`` once per row pays the
start-up every time, and numpy, rich and pyzmq's authenticator thread
(``zmq.auth.thread``, which loads asyncio) used to cost several times the
request itself. Each test runs the real command against a fake node under
``python -X importtime``, which lists every module the process imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from tests.test_client_fakenode import FakeNode
from zmqnode.transport.wire import array_to_frame, ok_reply

# Never needed by a client: the authenticator runs where sockets bind.
NEVER = {"zmq.auth.thread", "asyncio"}
# Needed only for arrays (training, CSV files) and for drawing tables.
NUMPY, RICH = {"numpy"}, {"rich"}

MODEL = {"model_id": "m1", "task": "classification", "inputs": 2, "outputs": 1}


@pytest.fixture(scope="module")
def node() -> Iterator[FakeNode]:
    def handler(h, b):
        if h["type"] == "STATUS":
            return ok_reply(h, node="n1", role="leader", term=3)
        if h["type"] == "LIST":
            return ok_reply(h, models=[MODEL])
        if h["type"] == "INFO":
            return ok_reply(h, model=MODEL)
        if h["type"] == "PREDICT":
            desc, blob = array_to_frame(np.array([1], np.int64))
            return ok_reply(h, model_id=h["model_id"], outputs=desc, node="n1"), [blob]
        return None

    with FakeNode(handler) as fake:
        yield fake


def run_client(node: FakeNode, *argv: str) -> tuple[str, set[str]]:
    """Run ``python -m client ARGV`` against ``node``: its stdout and the
    top-level packages it imported."""
    cmd = [sys.executable, "-X", "importtime", "-m", "client", "--nodes", node.address]
    result = subprocess.run(
        [*cmd, "--insecure", "--timeout", "5", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            imported |= {name, name.split(".")[0]}
    return result.stdout, imported


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "status"],
        ["--json", "list"],
        ["--json", "info", "m1"],
        ["--json", "predict", "m1", "1,0"],
    ],
)
def test_a_command_printing_json_imports_neither_numpy_nor_rich(node, argv) -> None:
    out, imported = run_client(node, *argv)
    assert json.loads(out)
    assert imported & (NEVER | NUMPY | RICH) == set()


def test_a_one_row_prediction_sends_and_shows_the_row_without_numpy(node) -> None:
    out, imported = run_client(node, "--json", "predict", "m1", "-1,0.1")
    result = json.loads(out)
    assert result["outputs"] == [1]
    assert result["inputs"] == [[-1.0, float(np.float32(0.1))]]  # as sent: float32
    assert imported & (NEVER | NUMPY) == set()


@pytest.mark.parametrize("argv", [["status"], ["list"]])
def test_a_table_for_people_imports_rich_but_not_numpy(node, argv) -> None:
    out, imported = run_client(node, *argv)
    assert "m1" in out or "leader" in out
    assert imported & (NEVER | NUMPY) == set()


def test_predictions_for_people_are_plain_columns_without_rich(node) -> None:
    out, imported = run_client(node, "predict", "m1", "1,0")
    assert out.splitlines()[1:] == ["row  input  output", "  1  1, 0   1"]
    assert imported & (NEVER | NUMPY | RICH) == set()
