"""This node's trainer process: started, watched and restarted by its node.

The trainer (``python -m zmqnode.training.trainer``) binds this node's
training PULL (docs/PROTOCOL.md §1, P + 3000) and answers any leader's
SUB_TRAIN jobs as this node (§9). It is a separate process so that the
epochs never block the node's event loop.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from ..config import NodeConfig
from ..transport.addresses import tcp_endpoint

log = logging.getLogger("zmqnode.training")

TRAINER_MODULE = "zmqnode.training.trainer"
# The trainer process starts when a leader is known, or after this long.
TRAINER_DELAY = 2.0
# A trainer that died is restarted at most this often (its port may still be
# held by the old process for a moment).
TRAINER_RESPAWN_SECONDS = 1.0
# How long a stopping trainer may take before it is killed.
STOP_SECONDS = 2.0


def trainer_command(node_id: str, config: NodeConfig, log_path: str, parent_pid: int) -> list[str]:
    """The command line of node ``node_id``'s trainer process."""
    return [
        sys.executable,
        "-m",
        TRAINER_MODULE,
        "--bind",
        tcp_endpoint(config.host, config.ports.training),
        "--name",
        node_id,
        "--log",
        log_path,
        "--log-level",
        config.log_level,
        # It exits when this pid is gone (even while it was still starting).
        "--parent-pid",
        str(parent_pid),
        # The trainer serves its PULL and answers leaders as this node.
        *(
            ["--insecure"]
            if config.keys_dir is None
            else [
                "--keys",
                config.keys_dir,
                "--node-key",
                str(config.node_key),
                # The node's allow-list as the membership changes (security.MemberKeysFile).
                "--member-keys",
                member_keys_path(config),
            ]
        ),
    ]


def member_keys_path(config: NodeConfig) -> str:
    """Where a node shares its member allow-list with its trainer."""
    return os.path.join(config.storage_dir, "member_keys")


class TrainerProcess:
    """Supervises this node's trainer process: starts it once the cluster has
    a leader (or after ``TRAINER_DELAY``), restarts it when it exits (at most
    every ``TRAINER_RESPAWN_SECONDS``), stops it with the node.

    Starting it at once would make every node of a small machine import numpy
    at the same time and slow the first election down.
    """

    def __init__(self, node_id: str, config: NodeConfig, log_path: str, created: float) -> None:
        self.node_id = node_id
        self.config = config
        self.log_path = log_path
        self.created = created
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0  # when the current process was spawned (monotonic)
        self._respawn_at = 0.0

    @property
    def enabled(self) -> bool:
        """False with --no-trainer."""
        return self.config.trainer

    def exited(self) -> bool:
        """The process was started and has exited (it is not restarted yet)."""
        return self.proc is not None and self.proc.poll() is not None

    def state(self, busy: bool) -> str:
        """``disabled``, ``starting``, ``down``, or ``training``/``idle`` (``busy``:
        whether the coordinator has jobs), as the status feed reports it
        (docs/PROTOCOL.md §9b)."""
        if not self.enabled:
            return "disabled"
        if self.proc is None:
            return "starting"
        if self.exited():
            return "down"
        return "training" if busy else "idle"

    def tick(self, now: float, *, leader_known: bool, running: bool) -> int | None:
        """Start the process when it is due, restart it if it exited.

        Returns the exit status of a process that was just replaced (its
        cached chunks are gone), else None.
        """
        if self.proc is None:
            if self.enabled and (leader_known or now - self.created > TRAINER_DELAY):
                self._spawn(now)
            return None
        status = self.proc.poll()
        if status is None or not running or now < self._respawn_at:
            return None
        log.warning("trainer process exited with status %s; restarting it", status)
        self._respawn_at = now + TRAINER_RESPAWN_SECONDS
        self._spawn(now)
        return status

    def close(self) -> None:
        """Stop the process (terminate, then kill after ``STOP_SECONDS``)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()

    def _spawn(self, now: float) -> None:
        command = trainer_command(self.node_id, self.config, self.log_path, os.getpid())
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.started = now
        endpoint = tcp_endpoint(self.config.host, self.config.ports.training)
        log.info("trainer process %d listening on %s", self.proc.pid, endpoint)
