"""Real node processes, each in its own network namespace, for real partitions.

``NetnsCluster`` is a ``LocalCluster`` whose nodes do not share 127.0.0.1:
node ``i`` runs under ``ip netns exec zq<k>n<i>`` and owns the address
``10.231.<k>.<11+i>`` on a veth pair whose other end is on a bridge
``zqbr<k>`` created for this cluster. The bridge holds ``10.231.<k>.1`` in
the root namespace, so the test process (and its clients) reach every node
directly. Nothing is routed: the namespaces have no default route, there is
no NAT and ``ip_forward`` is untouched; the only hosts on the /24 are this
cluster's nodes and the test process.

Faults act on the network, so they cut everything a node exchanges (Raft,
heartbeats, training jobs and results, FETCH of model files, client
requests), unlike ``LocalCluster.isolate``, whose fault file drops Raft
messages only:

- ``cut(a, b, way)``: iptables DROP of what ``a`` sends to ``b``
  (``way="a->b"``), or both ways (``"both"``). The rule sits in the
  receiver's INPUT chain, as if the wire lost the packets; a sender's OUTPUT
  DROP would instead fail its ``send`` calls with EPERM, which no real network
  does. With TCP a one-way cut is one-way for data only: the other side's
  segments still arrive but their ACKs do not, and no new connection can be
  set up across it. That is what a real one-way link failure does as well.
- ``cut_off(node)``: ``cut`` both ways between ``node`` and every peer; the
  test process still reaches it (a minority that clients can talk to).
- ``isolate(node)``: its veth link down: nobody, clients included, reaches it.
- ``heal()``: every rule flushed, every link up.

Needs root, ``ip`` (iproute2) and ``iptables``; ``unavailable()`` says what is
missing (tests skip with that reason, except under CI where they must run).
Everything made here carries the ``zq`` prefix and is removed by ``stop()``;
leftovers of a run that crashed (its owner process gone) are removed when the
next cluster is made. A lock file serialises set-up and cleanup between
concurrent test processes, so one never removes what another is building.
"""

from __future__ import annotations

import atexit
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zmqnode.transport.security import keygen

from .cluster import IMPLS, ROOT, LocalCluster

BRIDGE_PREFIX = "zqbr"
# 10.231.0.0/16 is unlikely on a host (docker takes 172.17/16, libvirt
# 192.168.122/24, podman 10.88/16); each cluster also checks its /24 against
# every address and route of the root namespace before taking it.
NET_TEMPLATE = "10.231.{k}.0/24"
FIRST_NODE_HOST = 11  # node i is .11+i: same digit count, so sorted addresses keep node order
MAX_NODES = 89
LOCK_FILE = Path("/run/lock" if os.path.isdir("/run/lock") else "/tmp") / "zmqnode-netns.lock"
_NAME_RE = re.compile(r"^zq(?:br)?(\d+)(?:[nvp](\d+))?$")


class NetnsUnavailable(RuntimeError):
    """Namespaces or iptables cannot be used here; the message says why."""


# A non-login root shell may lack the sbin directories in PATH.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
IP = shutil.which("ip", path=_SEARCH_PATH) or "ip"
IPTABLES = shutil.which("iptables", path=_SEARCH_PATH) or "iptables"


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = tuple({"ip": IP, "iptables": IPTABLES}.get(c, c) for c in cmd)
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise NetnsUnavailable(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")
    return proc


_unavailable_cache: list[str | None] = []


def unavailable() -> str | None:
    """Why network namespaces with iptables cannot be used here, or None.

    Probes once per process: a namespace made, an iptables rule listed in it,
    the namespace removed.
    """
    if _unavailable_cache:
        return _unavailable_cache[0]
    reason: str | None = None
    if not sys.platform.startswith("linux"):
        reason = "network namespaces are Linux only"
    elif os.geteuid() != 0:
        reason = "network namespaces and iptables need root (run the tests as root)"
    elif shutil.which("ip", path=_SEARCH_PATH) is None:
        reason = "`ip` (iproute2) is not installed: apt-get install iproute2"
    elif shutil.which("iptables", path=_SEARCH_PATH) is None:
        reason = "iptables is not installed: apt-get install iptables (run_tests.sh does, as root)"
    else:
        probe = f"zqprobe{os.getpid()}"
        try:
            _run("ip", "netns", "add", probe)
            _run("ip", "netns", "exec", probe, "iptables", "-w", "-S", "INPUT")
        except NetnsUnavailable as exc:
            reason = f"network namespaces or iptables do not work here: {exc}"
        finally:
            _run("ip", "netns", "del", probe, check=False)
    _unavailable_cache.append(reason)
    return reason


@contextmanager
def _locked() -> Iterator[None]:
    with open(LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat):
    with the pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_tag() -> str:
    return f"zmqnode-netns pid={os.getpid()} start={_start_time(os.getpid())}"


def _owner_alive(tag: str) -> bool:
    m = re.fullmatch(r"zmqnode-netns pid=(\d+) start=(\S+)", tag or "")
    return bool(m) and _start_time(int(m.group(1))) == m.group(2)


def _links() -> list[dict]:
    return json.loads(_run("ip", "-j", "-d", "link", "show").stdout or "[]")


def _namespaces() -> list[str]:
    out = _run("ip", "-j", "netns", "list", check=False).stdout
    return [entry["name"] for entry in json.loads(out or "[]")]


def _kill_namespace(name: str) -> None:
    """Kill what still runs in namespace ``name`` (nodes of a crashed run), delete it."""
    pids = _run("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _run("ip", "netns", "del", name, check=False)


def cleanup_leftovers() -> list[str]:
    """Remove bridges, veths and namespaces of ours whose owner process is gone.

    Idempotent; called (under the lock) before every set-up. Returns what it removed.
    """
    links = _links()
    live = {
        int(m.group(1))
        for link in links
        if (m := _NAME_RE.match(link["ifname"]))
        and link["ifname"].startswith(BRIDGE_PREFIX)
        and _owner_alive(link.get("ifalias", ""))
    }
    removed = []
    for name in _namespaces():
        m = _NAME_RE.match(name)
        if m and m.group(2) is not None and int(m.group(1)) not in live:
            _kill_namespace(name)
            removed.append(name)
    for link in links:
        name = link["ifname"].split("@")[0]
        m = _NAME_RE.match(name)
        if m and int(m.group(1)) not in live:
            _run("ip", "link", "del", name, check=False)  # a veth's peer goes with it
            removed.append(name)
    return removed


def _taken_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the root namespace has an address or a route in."""
    nets = []
    for entry in json.loads(_run("ip", "-j", "-4", "addr", "show").stdout or "[]"):
        for a in entry.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for route in json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = route.get("dst", "default")
        if dst != "default":
            net = ipaddress.ip_network(dst, strict=False)
            if net.prefixlen > 0:
                nets.append(net)
    return nets


def _impls(n: int, impls: tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Each node's implementation, as ``LocalCluster`` decides it: ``impls``
    ("py", "go" or "kotlin" per node), else the ``ZMQNODE_IMPLS`` pattern repeated
    over the ``n`` nodes, else all "py"."""
    if impls is None:
        pattern = [p for p in os.environ.get("ZMQNODE_IMPLS", "py").split(",") if p]
        impls = tuple(pattern[i % len(pattern)] for i in range(n))
    impls = tuple(impls)
    if len(impls) != n or any(i not in IMPLS for i in impls):
        raise ValueError(
            f"impls must name 'py', 'go' or 'kotlin' for each of the {n} nodes, got {impls}"
        )
    return impls


class NetnsCluster(LocalCluster):
    """``n`` nodes, each in its own network namespace with its own address.

    The same API as ``LocalCluster`` (start, stop, kill, pause, resume, leader,
    client, status, storage, output, ``running()``), security on (CURVE, keys
    in ``workdir/keys``), plus the network faults of the module docstring.
    Node ``i`` is ``10.231.<k>.<11+i>:<port+i>``; distinct ports are not
    needed by the namespaces but keep LocalCluster's per-port file names
    (``<port>.out``) distinct in the shared workdir. ``impls`` as for
    ``LocalCluster``: "py", "go" (``go/worker``) or "kotlin" (``java -jar
    kotlin/worker.jar``), the same arguments, per node; a restarted or
    rejoined node keeps its address's implementation.
    """

    def __init__(
        self,
        workdir: Path,
        n: int = 3,
        extra_args: tuple[str, ...] = (),
        port: int = 9000,
        impls: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        impls = _impls(n, impls)
        reason = unavailable()
        if reason:
            raise NetnsUnavailable(reason)
        if not 1 <= n <= MAX_NODES:
            raise ValueError(f"1..{MAX_NODES} nodes, not {n}")
        self.k: int | None = None
        with _locked():
            cleanup_leftovers()
            self.k = self._claim_subnet()
            try:
                self._build(n)
            except BaseException:
                self._teardown_network()
                raise
        atexit.register(self._teardown_network)
        # LocalCluster's own set-up, with these addresses (its __init__ picks
        # loopback ports, so it is not called).
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = [port + i for i in range(n)]
        self.ids = [f"{h}:{p}" for h, p in zip(self.hosts, self.ports, strict=True)]
        self.impls = dict(zip(self.ids, impls, strict=True))
        self.extra_args = extra_args
        self.keys = self.workdir / "keys"
        if not (self.keys / "cluster.key_secret").exists():
            keygen(self.keys, nodes=n, clients=1)
        self.procs: dict[str, subprocess.Popen] = {}
        self.clients = []
        self.joining = {}
        self._cuts: set[tuple[int, int]] = set()  # (from, to) node indexes dropped
        self._down: set[int] = set()

    # -- the network -------------------------------------------------------

    def _claim_subnet(self) -> int:
        existing = {link["ifname"] for link in _links()}
        taken = _taken_networks()
        for k in range(1, 255):
            net = ipaddress.ip_network(NET_TEMPLATE.format(k=k))
            if f"{BRIDGE_PREFIX}{k}" in existing or any(net.overlaps(t) for t in taken):
                continue
            bridge = f"{BRIDGE_PREFIX}{k}"
            _run("ip", "link", "add", bridge, "type", "bridge")
            _run("ip", "link", "set", bridge, "alias", _owner_tag())
            return k
        raise NetnsUnavailable("no free 10.231.<k>.0/24 for a test bridge")

    def _build(self, n: int) -> None:
        k = self.k
        self.bridge = f"{BRIDGE_PREFIX}{k}"
        self.gateway = f"10.231.{k}.1"  # the test process's address on the bridge
        self.namespaces = [f"zq{k}n{i}" for i in range(n)]
        self.veths = [f"zq{k}v{i}" for i in range(n)]  # root-namespace ends, on the bridge
        self.hosts = [f"10.231.{k}.{FIRST_NODE_HOST + i}" for i in range(n)]
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i, (ns, veth, host) in enumerate(
            zip(self.namespaces, self.veths, self.hosts, strict=True)
        ):
            inner = f"zq{k}p{i}"
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", veth, "master", self.bridge)
            _run("ip", "link", "set", veth, "up")
            _run("ip", "link", "set", inner, "netns", ns)
            _run("ip", "-n", ns, "addr", "add", f"{host}/24", "dev", inner)
            _run("ip", "-n", ns, "link", "set", inner, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")  # trainers and monitor use loopback

    def _teardown_network(self) -> None:
        """Remove this cluster's namespaces, links and rules; idempotent."""
        if self.k is None:
            return
        with _locked():
            k = self.k
            for name in _namespaces():
                m = _NAME_RE.match(name)
                if m and m.group(2) is not None and int(m.group(1)) == k:
                    _kill_namespace(name)
            for link in _links():
                name = link["ifname"].split("@")[0]
                m = _NAME_RE.match(name)
                if m and int(m.group(1)) == k:
                    _run("ip", "link", "del", name, check=False)
        self.k = None

    def _ns_iptables(self, index: int, *args: str) -> None:
        _run("ip", "netns", "exec", self.namespaces[index], "iptables", "-w", *args)

    # -- faults ------------------------------------------------------------

    def cut(self, a: str, b: str, way: str = "both") -> None:
        """Drop what ``a`` sends to ``b`` (``way="a->b"``) or both ways (``"both"``)."""
        if way not in ("both", "a->b"):
            raise ValueError(f'way is "both" or "a->b", not {way!r}')
        i, j = self.ids.index(a), self.ids.index(b)
        for src, dst in [(i, j), (j, i)] if way == "both" else [(i, j)]:
            if (src, dst) not in self._cuts:
                self._ns_iptables(dst, "-A", "INPUT", "-s", self.hosts[src], "-j", "DROP")
                self._cuts.add((src, dst))

    def cut_off(self, node_id: str) -> None:
        """``cut`` both ways between ``node_id`` and every peer (clients still reach it)."""
        for other in self.ids:
            if other != node_id:
                self.cut(node_id, other)

    def cut_one_way(self, node_id: str, direction: str) -> None:
        """Drop everything ``node_id`` hears from its peers (``"in"``) or says to
        them (``"out"``); LocalCluster's signature, done with iptables."""
        for other in self.ids:
            if other != node_id:
                if direction == "in":
                    self.cut(other, node_id, "a->b")
                elif direction == "out":
                    self.cut(node_id, other, "a->b")
                else:
                    raise ValueError(f'direction is "in" or "out", not {direction!r}')

    def isolate(self, node_id: str) -> None:
        """Take ``node_id``'s link down: no peer and no client reaches it."""
        i = self.ids.index(node_id)
        _run("ip", "link", "set", self.veths[i], "down")
        self._down.add(i)

    def heal(self) -> None:
        """Every iptables rule removed, every link up."""
        if self.k is None:
            return
        for dst in sorted({d for _, d in self._cuts}):
            self._ns_iptables(dst, "-F", "INPUT")  # the namespace holds only our rules
        self._cuts.clear()
        for i in sorted(self._down):
            _run("ip", "link", "set", self.veths[i], "up")
        self._down.clear()

    def reaches(self, a: str | None, b: str, port: int, timeout: float = 1.0) -> bool:
        """Whether a TCP connection from ``a``'s namespace (None: the test
        process's) to ``port`` on ``b``'s address is set up within ``timeout``."""
        host = self.hosts[self.ids.index(b)]
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(({host!r}, {port}), {timeout})\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        cmd = [sys.executable, "-c", probe]
        if a is not None:
            cmd = ["ip", "netns", "exec", self.namespaces[self.ids.index(a)], *cmd]
        return _run(*cmd, check=False).returncode == 0

    def rules(self, node_id: str) -> str:
        """The INPUT rules in ``node_id``'s namespace (``iptables -S``), for reports."""
        i = self.ids.index(node_id)
        return _run(
            "ip", "netns", "exec", self.namespaces[i], "iptables", "-w", "-S", "INPUT"
        ).stdout

    # -- processes ---------------------------------------------------------

    def start(self, node_id: str | None = None) -> None:
        for nid in [node_id] if node_id else self.ids:
            i = self.ids.index(nid)
            out = open(self.workdir / f"{self.ports[i]}.out", "ab")
            # `ip netns exec` execs the command (no fork), so the Popen's pid is
            # the node's: kill, pause and terminate reach it directly.
            self.procs[nid] = subprocess.Popen(
                [
                    IP,
                    "netns",
                    "exec",
                    self.namespaces[i],
                    *self.program(nid),
                    "--host",
                    self.hosts[i],
                    "--port",
                    str(self.ports[i]),
                    *self.membership_args(nid),
                    "--storage-dir",
                    str(self.storage(nid)),
                    *self.security_args(nid),
                    *self.extra_args,
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            out.close()

    def stop(self) -> None:
        """Stop every node (paused ones too), then remove the network."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGCONT)  # a stopped process cannot terminate
        try:
            super().stop()
        finally:
            self._teardown_network()
