"""A handshake refused by ZAP is final for that connection in libzmq 4.3, so
the training links reopen a refused connection (docs/PROTOCOL.md §1.1, §9):
a real coordinator and a real trainer process, CURVE on, one side admitting
the other's key only after a refusal, as when a node has just joined.

- the coordinator's PUSH to a trainer whose process has not re-read its
  node's member keys yet (the trainer refuses the new leader);
- the trainer's result PUSH to a leader whose allow-list does not name the
  trainer's node yet.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from harness.cluster import ROOT, pick_base_ports, wait_for
from zmqnode.config import NodeConfig
from zmqnode.training import TrainingCoordinator, TrainingLinks, scheduler
from zmqnode.transport import security, wire
from zmqnode.transport.addresses import node_ports, tcp_endpoint
from zmqnode.transport.security import Gatekeeper, MemberKeysFile, NodeKeys
from zmqnode.transport.sockets import Sockets

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]

OPTIONS = {"hidden_layers": [4], "epochs": 2, "epochs_per_round": 1, "patience": 0, "seed": 1}


@dataclass
class Replies:
    """A client's replier: what it was told."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, header: dict[str, Any], blobs: Any = ()) -> None:
        self.sent.append(header)

    def ok(self, header: Any, blobs: Any = (), **fields: Any) -> None:
        self.send(wire.ok_reply(header, **fields))

    def error(self, header: Any, code: Any, message: str) -> None:
        self.send(wire.error_reply(header, code, message))

    def progress(self, header: dict[str, Any], **fields: Any) -> None:
        pass

    def wait(self, header: dict[str, Any]) -> None:
        pass


@dataclass
class Trainer:
    """A member's real trainer process (``python -m zmqnode.training.trainer``)."""

    id: str
    public: bytes
    member_keys: MemberKeysFile
    log: Path
    proc: subprocess.Popen

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Leader:
    """A node that leads a training: its coordinator, its ZAP handler, and
    what it asked of its node (counted events, commits), driven as its loop
    drives it (``turn``)."""

    coordinator: TrainingCoordinator
    gate: Gatekeeper
    keys: NodeKeys
    trainer: Trainer
    counted: list[str]
    commits: list[dict[str, Any]]
    poller: zmq.Poller
    handlers: dict[zmq.Socket, Callable[[list[bytes]], None]]
    last_heard: dict[str, float]

    def turn(self) -> None:
        self.last_heard[self.trainer.id] = time.monotonic()  # its node's heartbeats
        for sock, _ in self.poller.poll(10):
            self.handlers[sock](sock.recv_multipart())
        self.coordinator.tick(time.monotonic())

    def train(self, request_id: str) -> Replies:
        rng = np.random.default_rng(7)
        x = rng.normal(size=(64, 2)).astype(np.float32)
        y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
        x_desc, x_blob = wire.array_to_frame(x, frame=0)
        y_desc, y_blob = wire.array_to_frame(y, frame=1)
        header = {"v": 1, "type": "TRAIN", "id": request_id, "inputs": x_desc}
        header |= {"outputs": y_desc, "options": OPTIONS}
        replies = Replies()
        self.turn()  # the trainer's node heard from: its trainer is available
        self.coordinator.submit(header, [x_blob, y_blob], replies)
        return replies


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """node0 is the trainer's node, "joined" the leader that joined later."""
    root = tmp_path / "keys"
    security.keygen(root, nodes=1, clients=1)
    security.add_node_key(root, "joined")
    return root


@pytest.fixture
def trainer(request, tmp_path: Path, keys_dir: Path) -> Iterator[Trainer]:
    """node0's trainer, admitting only node0 until ``member_keys`` says
    otherwise (parametrized True: "joined" too, from the start)."""
    port = pick_base_ports(1)[0]
    node_key = keys_dir / "node0.key_secret"
    own = security.public_key_of(node_key).encode()
    member_keys = MemberKeysFile(tmp_path / "member_keys")
    admitted = {own}  # its node has not appended "joined" yet
    if getattr(request, "param", False):
        admitted.add(security.public_key_of(keys_dir / "joined.key_secret").encode())
    member_keys.write(frozenset(admitted))
    log = tmp_path / "trainer.log"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "zmqnode.training.trainer",
            "--bind", tcp_endpoint("127.0.0.1", node_ports(port).training),
            "--name", f"127.0.0.1:{port}", "--log", str(log), "--log-level", "DEBUG",
            "--parent-pid", str(os.getpid()),
            "--keys", str(keys_dir), "--node-key", str(node_key),
            "--member-keys", str(member_keys.path),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    made = Trainer(f"127.0.0.1:{port}", own, member_keys, log, proc)
    try:
        # Read the member keys: from now on it admits those only (the same
        # keys as its key directory's, when both are admitted: no news then).
        read = "ready on" if len(admitted) == 2 else "member allow-list now has 1 keys"
        wait_for(
            lambda: proc.poll() is None and read in made.output(),
            30,
            "the trainer to read its member keys",
        )
        yield made
    finally:
        proc.terminate()
        proc.wait(10)
        print(made.output()[-3000:])


@pytest.fixture
def leader(trainer: Trainer, keys_dir: Path) -> Iterator[Leader]:
    """The "joined" node leading, its own trainer off: the one trainer is node0's."""
    keys = security.load_node_keys(keys_dir, keys_dir / "joined.key_secret", "none")
    ctx = zmq.Context()
    gate = security.start_authenticator(ctx, keys)
    assert gate is not None
    poller = zmq.Poller()
    handlers: dict[zmq.Socket, Callable[[list[bytes]], None]] = {}
    counted: list[str] = []
    commits: list[dict[str, Any]] = []
    last_heard: dict[str, float] = {}

    def register(sock: zmq.Socket, handler: Callable[[list[bytes]], None]) -> None:
        poller.register(sock, zmq.POLLIN)
        handlers[sock] = handler

    port = pick_base_ports(1)[0]
    config = NodeConfig(
        host="127.0.0.1",
        port=port,
        monitor_port=port - 1000,
        peers=(trainer.id,),
        storage_dir="/nonexistent",
        trainer=False,
    )
    coordinator = TrainingCoordinator(
        TrainingLinks(
            node_id=config.node_id,
            peers=config.peers,
            config=config,
            sockets=Sockets(ctx, keys),
            log_path=os.devnull,
            register_socket=register,
            admit=lambda header: None,
            count=counted.append,
            commit_model=lambda header, replies, data, summary, extra: commits.append(extra),
            leader_id=lambda: config.node_id,
            last_heard=last_heard,
            is_running=lambda: True,
            add_event=lambda kind, text: None,
            job_finished=lambda status, seconds: None,
        )
    )
    try:
        yield Leader(
            coordinator, gate, keys, trainer, counted, commits, poller, handlers, last_heard
        )
    finally:
        coordinator.close()
        gate.stop()
        ctx.destroy(0)


def test_a_trainer_that_admits_a_new_leader_late_still_gets_its_chunks(leader, trainer):
    """The new leader's PUSH is refused (the trainer has not re-read its
    node's member keys); once it has, the PUSH is reopened and the chunk
    goes there."""
    replies = leader.train("late-admission")
    refusal = f"public key {leader.keys.public.decode()} is not allowed on zmqnode.peers"
    wait_for(
        lambda: leader.turn() or refusal in trainer.output(),
        10,
        "the trainer refusing the leader's PUSH",
    )
    # Its node appends the entry adding "joined": the trainer re-reads the keys.
    trainer.member_keys.write(frozenset({trainer.public, leader.keys.public}))
    wait_for(lambda: leader.turn() or leader.commits, 30, "the training to finish")
    assert leader.commits[0]["trainers"] == [trainer.id]
    assert {"trainer_handshake_refused", "trainer_link_reopened"} <= set(leader.counted)
    assert replies.sent == []  # answered once the model commits (not here)


@pytest.mark.parametrize("trainer", [True], indirect=True, ids=["trainer-admits-leader"])
def test_a_leader_that_admits_a_trainer_late_still_gets_its_results(
    leader, trainer, monkeypatch, caplog
):
    """The trainer's result PUSH is refused (the leader's allow-list does not
    name the trainer's node yet); once it does, the trainer reopens it and
    the chunk, sent again after its deadline, comes back."""
    monkeypatch.setattr(scheduler, "FIRST_ANSWER_TIMEOUT", 1.0)
    leader.gate.set_members(frozenset({leader.keys.public}))  # node0 not admitted
    caplog.set_level(logging.WARNING, logger="zmqnode.security")
    leader.train("late-results")
    refusal = f"public key {trainer.public.decode()} is not allowed on zmqnode.peers"
    wait_for(
        lambda: leader.turn() or refusal in caplog.text,
        20,
        "the leader refusing the trainer's result PUSH",
    )
    leader.gate.set_members(frozenset({leader.keys.public, trainer.public}))
    wait_for(lambda: leader.turn() or leader.commits, 30, "the training to finish")
    assert leader.commits[0]["trainers"] == [trainer.id]
    assert "refused our result PUSH connection (ZAP status 400" in trainer.output()
    assert "admitted our result PUSH connection" in trainer.output()
