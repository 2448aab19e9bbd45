"""Damaged disks under a real node: raft.log and raft_state.json.

One 3-node cluster is shared by every case (module fixture). Each case stops
a follower, damages its disk the way a crash or a bad disk would, restarts
it and checks what happens:

- damage a crash can cause (a torn last record, a bit flipped in the last
  record) or a lost end of the log: the node starts, logs a warning naming
  raft.log and what it did, catches up from the leader and ends with every
  acknowledged model, byte for byte;
- damage that cannot be repaired without risking acknowledged data or a
  second vote in a term (a flipped bit in the middle of the log, a damaged
  log header, raft_state.json empty, garbage, or missing while a log
  exists): the node refuses to start, exits with status 2 and one message
  naming the file, the problem and what to do, without a traceback; the
  other two nodes keep serving. Following the advice (wiping the storage
  dir) brings the node back with everything, which also leaves the shared
  cluster whole for the next case.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from client import Client
from harness.cluster import LocalCluster, wait_for
from zmqnode.ml.training import TrainOptions, train
from zmqnode.storage import log_file

pytestmark = [pytest.mark.conformance, pytest.mark.process]

REFUSED_EXIT = 2


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.float32)
    path = tmp_path_factory.mktemp("model") / "xor.bin"
    path.write_bytes(train(x, y, TrainOptions(hidden_layers=(4,), epochs=5)).to_bytes())
    return path


class Harness:
    """The shared cluster, the models it acknowledged, and damage helpers."""

    def __init__(self, cluster: LocalCluster, model_file: Path) -> None:
        self.cluster = cluster
        self.model_file = model_file
        self.acknowledged: list[str] = []
        self.client = cluster.client(timeout=10.0)
        self._n = 0

    def store_models(self, count: int) -> None:
        for _ in range(count):
            self._n += 1
            reply = self.client.import_model(self.model_file, request_id=f"damage-{self._n}")
            self.acknowledged.append(reply["model_id"])

    def leader(self) -> str:
        return self.cluster.leader(timeout=20.0)

    def follower(self) -> str:
        leader = self.leader()
        return next(n for n in self.cluster.ids if n != leader)

    def model_digests(self, node: str) -> dict[str, str]:
        models = self.cluster.storage(node) / "models"
        return {
            p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(models.glob("*.bin"))
        }

    def has_everything(self, node: str) -> bool:
        """LIST on ``node`` shows every acknowledged model, and its model files
        are byte-identical to the leader's."""
        with Client([node], keys=self.cluster.keys, timeout=2.0, retries=0) as c:
            listed = {m["model_id"] for m in c.list_models()}
        if not set(self.acknowledged) <= listed:
            return False
        mine, leader = self.model_digests(node), self.model_digests(self.leader())
        return set(self.acknowledged) <= set(mine) and mine == leader

    def wait_whole(self, node: str, what: str) -> None:
        wait_for(lambda: self.has_everything(node), 30, f"{node} to hold every model ({what})")

    def stop(self, node: str) -> Path:
        """Stop ``node`` once it holds everything; its storage dir.

        SIGTERM, not SIGKILL: the damage is done to the cold disk afterwards
        anyway, and a killed node's trainer process can outlive it for a
        moment and hold the trainer port the restarted node needs.
        """
        self.wait_whole(node, "before the damage")
        self.cluster.kill(node, signal.SIGTERM)
        return self.cluster.storage(node)

    def start(self, node: str) -> int:
        """Start ``node``; the offset of this run's output in its .out file."""
        offset = len(self.cluster.output(node))
        self.cluster.start(node)
        return offset

    def output_since(self, node: str, offset: int) -> str:
        return self.cluster.output(node)[offset:]

    def worker_log(self, node: str) -> str:
        port = node.rsplit(":", 1)[1]
        path = self.cluster.storage(node) / f"worker_{port}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def rejoin_empty(self, node: str) -> None:
        """What the refusal message advises: wipe the storage dir and start again
        (the node's own log file is kept, for the test to read)."""
        storage = self.cluster.storage(node)
        for path in storage.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            elif not path.name.startswith("worker_"):
                path.unlink()
        self.start(node)

    def wait_refused(self, node: str) -> subprocess.Popen:
        proc = self.cluster.procs[node]
        wait_for(lambda: proc.poll() is not None, 30, f"{node} to refuse to start")
        del self.cluster.procs[node]  # exited: the cluster must not count it as live
        return proc


@pytest.fixture(scope="module")
def harness(tmp_path_factory, model_file):
    cluster = LocalCluster(tmp_path_factory.mktemp("damaged"), n=3)
    cluster.start()
    try:
        h = Harness(cluster, model_file)
        h.leader()
        h.store_models(4)
        yield h
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def whole_cluster_after(harness):
    """A failed case must not leave a node down for the next ones."""
    yield
    for node in harness.cluster.ids:
        if node not in harness.cluster.procs:
            harness.rejoin_empty(node)
        elif harness.cluster.procs[node].poll() is not None:
            del harness.cluster.procs[node]
            harness.rejoin_empty(node)


# -- raft.log byte surgery -------------------------------------------------------------

HEADER = log_file._HEADER_SIZE
RECORD = log_file._RECORD


def records(path: Path) -> list[tuple[int, int]]:
    """(offset, total length) of every record in a healthy log file."""
    data = path.read_bytes()
    out, pos = [], HEADER
    while pos < len(data):
        length, _crc = RECORD.unpack_from(data, pos)
        out.append((pos, RECORD.size + length))
        pos += RECORD.size + length
    assert pos == len(data), f"{path} is not a healthy log to start from"
    return out


def flip_bit(path: Path, offset: int, bit: int = 3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def flip_in_record(path: Path, which: int) -> None:
    """Flip one bit in the middle of the payload of record ``which``."""
    offset, size = records(path)[which]
    flip_bit(path, offset + RECORD.size + (size - RECORD.size) // 2)


def cut(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


# -- damage the node repairs -----------------------------------------------------------


def torn_unacknowledged_write(storage: Path) -> str:
    """The crash hit while a record was being written: half of it is there (it
    was never acknowledged: its fsync had not returned)."""
    path = storage / "raft.log"
    offset, size = records(path)[-1]
    last = path.read_bytes()[offset : offset + size]
    with open(path, "ab") as f:
        f.write(last[: size // 2])
    return "dropped"


def torn_tail(storage: Path) -> str:
    """The last (acknowledged) record cut mid-way: a disk that lost a confirmed write."""
    offset, size = records(storage / "raft.log")[-1]
    cut(storage / "raft.log", offset + size // 2)
    return "dropped"


def lost_recent_records(storage: Path) -> str:
    recs = records(storage / "raft.log")
    assert len(recs) >= 4
    cut(storage / "raft.log", recs[len(recs) // 2][0])  # at a record boundary
    return "lost entries at its end"


def flipped_bit_in_last_record(storage: Path) -> str:
    flip_in_record(storage / "raft.log", -1)
    return "checksum does not match"


@pytest.mark.parametrize(
    "damage",
    [torn_unacknowledged_write, torn_tail, lost_recent_records, flipped_bit_in_last_record],
    ids=lambda f: f.__name__,
)
def test_repairable_log_damage_warns_and_catches_up(harness, damage):
    node = harness.follower()
    storage = harness.stop(node)
    expected = damage(storage)
    harness.store_models(2)  # acknowledged while the node is down: it must fetch them
    offset = harness.start(node)
    harness.wait_whole(node, f"after {damage.__name__}")
    out = harness.output_since(node, offset)
    warnings = [line for line in out.splitlines() if "WARNING" in line and "raft.log" in line]
    assert any(expected in line for line in warnings), out[-3000:]
    assert str(storage / "raft.log") in "\n".join(warnings)
    assert any(expected in line for line in harness.worker_log(node).splitlines())
    assert "Traceback" not in out


# -- damage the node refuses -----------------------------------------------------------


def flipped_bit_in_middle_record(storage: Path) -> tuple[str, str]:
    recs = records(storage / "raft.log")
    assert len(recs) >= 3
    flip_in_record(storage / "raft.log", len(recs) // 2)
    return "raft.log", "damaged in the middle"


def damaged_log_header(storage: Path) -> tuple[str, str]:
    flip_bit(storage / "raft.log", 14)  # inside first_index
    return "raft.log", "header that fails its checksum"


def empty_raft_state(storage: Path) -> tuple[str, str]:
    (storage / "raft_state.json").write_bytes(b"")
    return "raft_state.json", "is empty"


def garbage_raft_state(storage: Path) -> tuple[str, str]:
    (storage / "raft_state.json").write_bytes(b"\x00\x17{garbage")
    return "raft_state.json", "not valid JSON"


def missing_raft_state(storage: Path) -> tuple[str, str]:
    (storage / "raft_state.json").unlink()
    return "raft_state.json", "is missing"


REFUSED: list[Callable[[Path], tuple[str, str]]] = [
    flipped_bit_in_middle_record,
    damaged_log_header,
    empty_raft_state,
    garbage_raft_state,
    missing_raft_state,
]


@pytest.mark.parametrize("damage", REFUSED, ids=lambda f: f.__name__)
def test_unrepairable_damage_stops_the_node_with_one_clear_message(harness, damage):
    node = harness.follower()
    storage = harness.stop(node)
    file_name, problem = damage(storage)
    offset = harness.start(node)
    proc = harness.wait_refused(node)
    out = harness.output_since(node, offset)
    assert proc.returncode == REFUSED_EXIT, out
    assert "Traceback" not in out, out
    (message,) = [line for line in out.splitlines() if "CRITICAL" in line]
    assert str(storage / file_name) in message, message
    assert problem in message, message
    assert "remove the whole storage dir" in message, message  # what to do
    assert message in harness.worker_log(node)  # and the node's log file says it too

    # The other two keep serving: a new model is acknowledged and listed.
    others = [n for n in harness.cluster.ids if n != node]
    harness.cluster.leader(among=others)
    harness.store_models(1)
    for other in others:
        harness.wait_whole(other, "while one node is refused")

    # Following the advice brings the node back with everything.
    harness.rejoin_empty(node)
    harness.wait_whole(node, "after a rejoin from empty")
