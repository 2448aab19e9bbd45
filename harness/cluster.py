"""Real node processes on loopback, for integration tests and benchmarks.

``LocalCluster`` starts ``python -m zmqnode`` processes with their own storage
directories under a temporary folder, picks client ports whose derived ports
(P-1000 .. P+4000) are all free, and offers waits that poll a condition with
a deadline (never a bare sleep).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from client import Client, ClientError, ClusterUnavailable
from zmqnode.transport.security import ClientKeys, keygen, load_client_keys

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent  # the repository (for `python -m zmqnode`)
PORT_OFFSETS = (-1000, 0, 1000, 2000, 3000, 4000, 5000)


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (ClientError, ClusterUnavailable, OSError) as exc:
            last_error = exc
        time.sleep(interval)  # polling interval, not synchronization
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """Where the kernel starts picking ports for outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def pick_base_ports(n: int) -> list[int]:
    """``n`` client ports, 1 apart, whose derived ports are all free.

    Below the ephemeral range: a port found free there can be taken by any
    outgoing connection before the node binds it (seen: "Address already in
    use" at start-up while other tests ran).
    """
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    high = min(40000, _ephemeral_low()) - max(PORT_OFFSETS) - n
    for _ in range(200):
        base = rng.randrange(11000, max(11001, high))
        ports = [base + i for i in range(n)]
        if all(_port_free(p + off) for p in ports for off in PORT_OFFSETS):
            return ports
    raise RuntimeError("no free port range found")


# The node implementations a cluster can mix (ZMQNODE_IMPLS, impls=).
IMPLS = ("py", "go", "kotlin")
KOTLIN_JAR = ROOT / "kotlin" / "worker.jar"


def kotlin_worker() -> Path:
    """kotlin/worker.jar, up to date: harness.ktbuild.ensure_worker() builds it
    when its sources changed; without that module, the jar as it is.
    ZMQNODE_KOTLIN_JAR names another jar to run as it is (a build pinned
    apart from a working tree that is being edited)."""
    pinned = os.environ.get("ZMQNODE_KOTLIN_JAR")
    if pinned:
        return Path(pinned)
    try:
        from harness.ktbuild import ensure_worker
    except ImportError:
        if not KOTLIN_JAR.exists():
            raise RuntimeError(f"{KOTLIN_JAR} is missing: build it with kotlin/build.sh") from None
        return KOTLIN_JAR
    return Path(ensure_worker())


def impl_program(impl: str) -> list[str]:
    """The command that runs a node of implementation ``impl`` (its flags follow)."""
    if impl == "go":
        from harness.gobuild import ensure_worker

        return [str(ensure_worker())]
    if impl == "kotlin":
        from harness.ktbuild import java_command

        return java_command(kotlin_worker())
    return [sys.executable, "-m", "zmqnode"]


class LocalCluster:
    """``n`` nodes on loopback. Security is on as it is by default: the
    cluster's keys are made once in ``workdir/keys`` (``self.keys``, also
    given to every client made here); ``insecure=True`` runs plaintext."""

    def __init__(
        self,
        workdir: Path,
        n: int = 3,
        extra_args: tuple[str, ...] = (),
        insecure: bool = False,
        impls: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.ports = pick_base_ports(n)
        self.ids = [f"127.0.0.1:{p}" for p in self.ports]
        # Each node's implementation: "py" (python -m zmqnode, the default),
        # "go" (go/worker, built by harness.gobuild.ensure_worker) or "kotlin"
        # (java -jar kotlin/worker.jar, built by harness.ktbuild), same arguments.
        if impls is None:
            # ZMQNODE_IMPLS=py,go,py runs every LocalCluster mixed (the pattern
            # repeats over n nodes): the conformance suite against both nodes.
            pattern = [p for p in os.environ.get("ZMQNODE_IMPLS", "py").split(",") if p]
            impls = tuple(pattern[i % len(pattern)] for i in range(n))
        impls = tuple(impls)
        if len(impls) != n or any(i not in IMPLS for i in impls):
            raise ValueError(
                f"impls must name 'py', 'go' or 'kotlin' for each of the {n} nodes, got {impls}"
            )
        self.impls = dict(zip(self.ids, impls, strict=True))
        self.extra_args = extra_args
        self.keys: Path | None = None
        if not insecure:
            self.keys = self.workdir / "keys"
            if not (self.keys / "cluster.key_secret").exists():
                keygen(self.keys, nodes=n, clients=1)
        self.procs: dict[str, subprocess.Popen] = {}
        self.clients: list[Client] = []
        # Nodes started with --join (rejoin()): node -> members to join through.
        self.joining: dict[str, list[str]] = {}

    @property
    def one_implementation(self) -> bool:
        """Every node runs the same implementation. Only then do the tests
        expect byte- and bit-identical floats across nodes: Go and Python
        agree to float32 rounding (docs/PROTOCOL.md §9, docs/TRAINING.md)."""
        return len(set(self.impls.values())) == 1

    @property
    def all_python(self) -> bool:
        """Every node is the Python implementation (the default cluster)."""
        return set(self.impls.values()) == {"py"}

    def storage(self, node_id: str) -> Path:
        return self.workdir / f"node{self.ids.index(node_id)}_storage"

    def monitor_port(self, node_id: str) -> int:
        return int(node_id.rsplit(":", 1)[1]) - 1000

    def start(self, node_id: str | None = None) -> None:
        for nid in [node_id] if node_id else self.ids:
            port = int(nid.rsplit(":", 1)[1])
            out = open(self.workdir / f"{port}.out", "ab")
            self.procs[nid] = subprocess.Popen(
                [
                    *self.program(nid),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    *self.membership_args(nid),
                    "--storage-dir",
                    str(self.storage(nid)),
                    "--fault-file",
                    str(self.fault_file(nid)),
                    *self.security_args(nid),
                    *self.extra_args,
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def program(self, node_id: str) -> list[str]:
        """The command that runs ``node_id``: its implementation's."""
        return impl_program(self.impls[node_id])

    def membership_args(self, node_id: str) -> list[str]:
        """``--peers`` (the original members), or ``--join`` for a node that
        ``rejoin()`` restarted: with empty storage it asks to be added as a
        learner; once its storage holds the log, the log's membership counts
        (docs/PROTOCOL.md §5.10), so later restarts keep ``--join``."""
        through = self.joining.get(node_id)
        if through:
            return ["--join", ",".join(through)]
        return ["--peers", ",".join(i for i in self.ids if i != node_id)]

    def rejoin(self, node_id: str, through: list[str]) -> None:
        """Start the stopped ``node_id`` again at its address with empty
        storage (wiped here) and ``--join`` through ``through``, with its own
        key: its public key travels again in JOIN."""
        if node_id in self.procs:
            raise RuntimeError(f"{node_id} is running: kill it before rejoin()")
        shutil.rmtree(self.storage(node_id), ignore_errors=True)
        self.joining[node_id] = [n for n in through if n != node_id]
        self.start(node_id)

    def security_args(self, node_id: str) -> list[str]:
        if self.keys is None:
            return ["--insecure"]
        index = self.ids.index(node_id)
        return ["--keys", str(self.keys), "--node-key", str(self.keys / f"node{index}.key_secret")]

    def client_keys(self, identity: str = "client") -> ClientKeys | None:
        """Keys for a raw socket of a test: the cluster's public key and the
        keypair ``identity`` ("client", or "node0" to pose as a member); None
        when the cluster is insecure."""
        if self.keys is None:
            return None
        return load_client_keys(self.keys, self.keys / f"{identity}.key_secret")

    def fault_file(self, node_id: str) -> Path:
        return self.workdir / f"faults_{node_id.rsplit(':', 1)[1]}.json"

    def isolate(self, node_id: str) -> None:
        """Cut ``node_id`` off from every peer's Raft traffic, both ways (test flag)."""
        others = [n for n in self.ids if n != node_id]
        self.fault_file(node_id).write_text(json.dumps({"drop_in": others, "drop_out": others}))
        for other in others:
            self.fault_file(other).write_text(
                json.dumps({"drop_in": [node_id], "drop_out": [node_id]})
            )

    def cut_one_way(self, node_id: str, direction: str) -> None:
        """Drop only ``node_id``'s incoming (``"in"``: it hears no peer) or outgoing
        (``"out"``: no peer hears it) Raft traffic; ``heal()`` undoes it."""
        others = [n for n in self.ids if n != node_id]
        key = {"in": "drop_in", "out": "drop_out"}[direction]
        self.fault_file(node_id).write_text(json.dumps({key: others}))

    def heal(self) -> None:
        for nid in self.ids:
            self.fault_file(nid).unlink(missing_ok=True)

    def kill(self, node_id: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(node_id)
        proc.send_signal(sig)
        proc.wait(timeout=10)

    def hand_leadership_until(
        self, wanted: Callable[[str], bool], attempts: int = 5, what: str = "the leader wanted"
    ) -> str:
        """SIGTERM the leader (it hands leadership to its most caught-up voter
        before exiting) and start it again, until ``wanted(leader)``; returns
        that leader. With three implementations the other two may trade
        leadership first, hence several attempts."""
        leader = self.leader(timeout=60)
        for _ in range(attempts):
            if wanted(leader):
                return leader
            self.kill(leader, signal.SIGTERM)
            self.leader(timeout=30, among=list(self.procs))
            self.start(leader)
            leader = self.leader(timeout=60)
        if wanted(leader):
            return leader
        raise RuntimeError(f"no {what} after {attempts} leadership hand-offs ({self.impls})")

    def pause(self, node_id: str) -> None:
        """SIGSTOP the node: alive but silent (its sockets stay open), like a long GC pause."""
        self.procs[node_id].send_signal(signal.SIGSTOP)

    def resume(self, node_id: str) -> None:
        self.procs[node_id].send_signal(signal.SIGCONT)

    @contextmanager
    def running(self) -> Iterator[LocalCluster]:
        """Start every node, wait for an agreed leader; stop them all on exit."""
        self.start()
        try:
            # A deadline, not a delay: a loaded machine can take 15 s to
            # start a Python node's listeners (seen at load average 30).
            self.leader(timeout=60)
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        for nid in list(self.procs):
            proc = self.procs.pop(nid)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def client(self, node_id: str | None = None, **kwargs: Any) -> Client:
        nodes = [node_id] if node_id else list(self.ids)
        c = Client(nodes, **{"timeout": 5.0, "keys": self.keys, **kwargs})
        self.clients.append(c)
        return c

    def status(self, node_id: str) -> dict[str, Any]:
        with Client([node_id], timeout=1.0, retries=0, keys=self.keys) as c:
            return c.status()

    def leader(self, timeout: float = 15.0, among: list[str] | None = None) -> str:
        """Wait until exactly one live node leads and the others agree."""

        def find() -> str | None:
            for nid, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"node {nid} exited with status {proc.returncode}:\n"
                        + self.output(nid)[-2000:]
                    )
            live = among or list(self.procs)
            statuses = [self.status(n) for n in live]
            leaders = {s["node"] for s in statuses if s["role"] == "leader"}
            if len(leaders) == 1:
                leader = leaders.pop()
                if all(s["leader"] == leader for s in statuses):
                    return leader
            return None

        return wait_for(find, timeout, "a single agreed leader")

    def output(self, node_id: str) -> str:
        port = int(node_id.rsplit(":", 1)[1])
        return (self.workdir / f"{port}.out").read_text(errors="replace")
