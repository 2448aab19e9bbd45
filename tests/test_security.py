"""CURVE and ZAP on real nodes: only members join, clients as configured.

Every other integration test runs with security on too (LocalCluster makes
keys by default); these tests check what security must refuse, and that what
crosses the wire is not plaintext.
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth
import zmq.utils.monitor

from client import Client, ClusterUnavailable
from client.api import default_keys
from client.watch import Feed, WatchState
from harness.cluster import ROOT, LocalCluster, pick_base_ports, wait_for
from zmqnode.config import parse_args
from zmqnode.raft import Message, MessageType
from zmqnode.transport import security
from zmqnode.transport.raft_codec import encode_raft
from zmqnode.transport.security import ClientKeys, keygen, load_client_keys

pytestmark = pytest.mark.conformance

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0])
MARKER = "PLAINTEXT-MARKER-7f3a9c"
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three nodes requiring client keys (--client-auth curve)."""
    c = LocalCluster(tmp_path_factory.mktemp("secure"), n=3, extra_args=("--client-auth", "curve"))
    with c.running():
        yield c


@pytest.fixture(scope="module")
def open_node(tmp_path_factory):
    """One node with the default client policy (--client-auth none)."""
    c = LocalCluster(tmp_path_factory.mktemp("open"), n=1)
    with c.running():
        yield c


@pytest.fixture(scope="module")
def insecure_node(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("insecure"), n=1, insecure=True)
    with c.running():
        yield c


def fresh_keys(cluster: LocalCluster) -> ClientKeys:
    """The cluster's public key and a keypair no allow-list holds."""
    public, secret = zmq.curve_keypair()
    return ClientKeys(load_client_keys(cluster.keys).server_public, public, secret)


def monitor_status(node_id: str) -> dict:
    port = int(node_id.rsplit(":", 1)[1]) - 1000
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
        return json.load(r)


# -- keys and flags ---------------------------------------------------------------


def test_keygen_makes_per_node_keypairs_and_the_allow_lists(tmp_path):
    keygen(tmp_path, nodes=3, clients=2)
    for name in ("cluster", "node0", "node1", "node2", "client", "client1"):
        secret = tmp_path / f"{name}.key_secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, name
    members = {p.name for p in (tmp_path / "members").iterdir()}
    assert members == {"node0.key", "node1.key", "node2.key"}  # public keys only
    assert {p.name for p in (tmp_path / "clients").iterdir()} == {"client.key", "client1.key"}
    assert (tmp_path / "cluster.key").exists()
    publics = {zmq.auth.load_certificate(tmp_path / "members" / m)[0] for m in members}
    assert len(publics) == 3  # a keypair of its own per node
    with pytest.raises(security.KeyFileError, match="already holds"):
        keygen(tmp_path, nodes=3)


@pytest.mark.process
def test_keygen_command_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "zmqnode", "keygen", "--dir", str(tmp_path / "k"), "--nodes", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "k" / "members").glob("*.key"))) == 5


def test_security_is_on_unless_insecure_is_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ZMQNODE_KEYS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with pytest.raises(SystemExit):  # no keys, and not on one machine (test_keys_discovery)
        parse_args(["--host", "192.0.2.1", "--port", "9000"])
    assert "--insecure" in capsys.readouterr().err
    assert parse_args(["--port", "9000"]).local_keys  # on loopback: the local keys
    assert parse_args(["--port", "9000", "--insecure"]).keys_dir is None
    config = parse_args(["--port", "9001", "--peers", "127.0.0.1:9000", "--keys", str(tmp_path)])
    assert config.node_key == os.path.join(str(tmp_path), "node1.key_secret")  # sorted place
    assert config.client_auth == "none"
    with pytest.raises(SystemExit):
        parse_args(["--insecure", "--client-auth", "curve"])


def test_the_http_port_binds_loopback_and_needs_a_token_elsewhere(tmp_path, capsys):
    config = parse_args(["--port", "9000", "--insecure"])
    assert config.http_enabled and config.ports.http == 14000 and config.http_host == "127.0.0.1"
    assert not parse_args(["--port", "9000", "--insecure", "--http-port", "0"]).http_enabled
    assert parse_args(["--port", "9000", "--insecure", "--http-port", "8080"]).ports.http == 8080
    with pytest.raises(SystemExit):  # no token to ask for, and reachable from elsewhere
        parse_args(["--port", "9000", "--insecure", "--http-host", "0.0.0.0"])
    assert "--http-host 0.0.0.0 is not a loopback address" in capsys.readouterr().err
    secure = ["--port", "9000", "--keys", str(tmp_path), "--http-host", "0.0.0.0"]
    assert parse_args(secure).http_host == "0.0.0.0"  # the token guards it


def test_keygen_makes_an_http_token_and_old_key_directories_get_one(tmp_path):
    keygen(tmp_path / "k", nodes=1)
    token = security.load_http_token(tmp_path / "k")
    assert (
        len(token) == 64 and stat.S_IMODE((tmp_path / "k" / "http.token").stat().st_mode) == 0o600
    )
    assert security.load_http_token(tmp_path / "k") == token  # read, not remade
    (tmp_path / "k" / "http.token").unlink()  # a directory made before tokens existed
    again = security.load_http_token(tmp_path / "k")
    assert len(again) == 64 and again != token
    (tmp_path / "k" / "http.token").write_text("short\n")
    with pytest.raises(security.KeyFileError, match="holds no token"):
        security.load_http_token(tmp_path / "k")


def test_the_cli_finds_the_keys_run_cluster_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZMQNODE_KEYS", raising=False)
    assert default_keys() is None
    keygen(tmp_path / ".cluster" / "keys", nodes=3)  # where ./run_cluster.sh puts them
    assert default_keys() == os.path.join(".cluster", "keys")
    monkeypatch.setenv("ZMQNODE_KEYS", "/elsewhere")
    assert default_keys() == "/elsewhere"
    monkeypatch.setenv("ZMQNODE_KEYS", "")  # set but empty: no keys
    assert default_keys() is None


@pytest.mark.process
@pytest.mark.parametrize(
    "text, says",
    [
        ("metadata\ncurve\n    public-key\n", "has no '='"),  # pyzmq raised IndexError here
        ('metadata\ncurve\n    public-key = ""\n', "holds no public key"),
        ('metadata\ncurve\n    public-key = "tooshort"\n', "holds no public key"),
    ],
)
def test_a_damaged_key_file_is_a_key_file_error(tmp_path, text, says):
    path = tmp_path / "node0.key"
    path.write_text(text)
    with pytest.raises(security.KeyFileError, match=says):
        security.public_key_of(path)


def test_a_node_with_unreadable_keys_stops_with_one_clear_line(tmp_path):
    keygen(tmp_path / "keys", nodes=1)
    (tmp_path / "keys" / "members" / "node0.key").unlink()  # its key is not on the list
    port = pick_base_ports(1)[0]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "zmqnode",
            "--port",
            str(port),
            "--keys",
            str(tmp_path / "keys"),
            "--storage-dir",
            str(tmp_path / "s"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "not in" in out.stderr and "Traceback" not in out.stderr


# -- what crosses the wire ----------------------------------------------------------


def zmtp_mechanism(port: int) -> str:
    """The mechanism a node's ZeroMQ port announces in its ZMTP 3 greeting."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        # Signature and major version only: enough for libzmq to send its whole
        # greeting, and nothing it could refuse before we read it.
        conn.sendall(b"\xff" + b"\x00" * 8 + b"\x7f\x03")
        got = b""
        while len(got) < 64:
            chunk = conn.recv(64 - len(got))
            assert chunk, f"port {port} closed before its greeting"
            got += chunk
    assert got[0] == 0xFF and got[9] == 0x7F, got
    return got[12:32].rstrip(b"\x00").decode()


def node_zmq_ports(node_id: str) -> dict[str, int]:
    p = int(node_id.rsplit(":", 1)[1])
    return {
        "client": p,
        "raft": p + 1000,
        "heartbeat": p + 2000,
        "training": p + 3000,
        "results": p + 4000,
    }


@pytest.mark.process
def test_every_zeromq_port_of_every_node_speaks_curve(cluster):
    for node in cluster.ids:
        for name, port in node_zmq_ports(node).items():
            # The trainer process binds its port a moment after the node starts.
            mechanism = wait_for(lambda p=port: zmtp_mechanism(p), 20, f"{node} {name} up")
            assert mechanism == "CURVE", f"{node} {name}"


@pytest.mark.process
def test_an_insecure_node_speaks_plaintext(insecure_node):
    node = insecure_node.ids[0]
    for name, port in node_zmq_ports(node).items():
        assert wait_for(lambda p=port: zmtp_mechanism(p), 20, f"{name} up") == "NULL", name


class Recorder:
    """A TCP relay from a local port to ``target`` that keeps every byte."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.captured = bytearray()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conns: dict[socket.socket, socket.socket] = {}
        while not self.stopped:
            ready, _, _ = select.select([self.listener, *conns], [], [], 0.05)
            for s in ready:
                if s is self.listener:
                    down, _ = self.listener.accept()
                    up = socket.create_connection(("127.0.0.1", self.target))
                    conns[down], conns[up] = up, down
                    continue
                data = s.recv(65536)
                if not data:
                    other = conns.pop(s)
                    conns.pop(other, None)
                    s.close()
                    other.close()
                    continue
                self.captured += data
                conns[s].sendall(data)
        for s in conns:
            s.close()
        self.listener.close()

    def stop(self) -> bytes:
        self.stopped = True
        self.thread.join(5)
        return bytes(self.captured)


def train_through_recorder(node: LocalCluster, node_id: str, keys) -> bytes:
    recorder = Recorder(int(node_id.rsplit(":", 1)[1]))
    try:
        with Client([f"127.0.0.1:{recorder.port}"], timeout=30, retries=0, keys=keys) as c:
            model = c.train(XOR_X, XOR_Y, request_id=MARKER, options={"epochs": 5})["model_id"]
            assert c.predict(model, XOR_X).shape[0] == 4
    finally:
        captured = recorder.stop()
    assert len(captured) > 1000, "the relay carried the conversation"
    return captured


@pytest.mark.process
def test_client_traffic_is_encrypted_on_the_wire(open_node, insecure_node):
    secure = train_through_recorder(open_node, open_node.leader(), open_node.keys)
    assert MARKER.encode() not in secure
    assert b"TRAIN" not in secure and b'"v":1' not in secure
    # The same conversation with --insecure shows the marker: the probe works.
    plain = train_through_recorder(insecure_node, insecure_node.leader(), None)
    assert MARKER.encode() in plain and b"TRAIN" in plain


# -- clients ------------------------------------------------------------------------


@pytest.mark.process
def test_client_auth_curve_refuses_a_client_without_a_listed_key(cluster):
    leader = cluster.leader()
    with pytest.raises(ClusterUnavailable, match="no keys given"):
        with Client([leader], timeout=2, retries=0, connect_timeout=1) as c:
            c.status()
    stranger = fresh_keys(cluster)  # knows cluster.key, but is not on the list
    with pytest.raises(ClusterUnavailable, match="refused our key"):
        with Client([leader], timeout=2, retries=0, connect_timeout=1, keys=stranger) as c:
            c.status()
    wait_for(
        lambda: (
            f"public key {stranger.public.decode()} is not allowed on zmqnode.clients"
            in cluster.output(leader)
        ),
        10,
        "the node to log the refused client",
    )
    with Client([leader], timeout=10, retries=0, keys=cluster.keys) as c:  # client.key_secret
        model = c.train(XOR_X, XOR_Y, options={"epochs": 5})["model_id"]
        assert c.predict(model, XOR_X).shape[0] == 4


@pytest.mark.process
def test_client_auth_none_takes_any_client_key_but_not_plaintext(open_node):
    node = open_node.ids[0]
    with Client([node], timeout=10, retries=0, keys=fresh_keys(open_node)) as c:
        assert c.status()["role"] == "leader"
    with pytest.raises(ClusterUnavailable):
        with Client([node], timeout=2, retries=0, connect_timeout=1) as c:
            c.status()


@pytest.mark.process
def test_watch_console_reads_the_feed_with_keys_and_nothing_without(cluster):
    keyed_state, bare_state = (
        WatchState(cluster.ids, discover=False),
        WatchState(cluster.ids, discover=False),
    )
    keyed = Feed(keyed_state, keys=load_client_keys(cluster.keys))
    bare = Feed(bare_state)
    started = time.monotonic()
    try:

        def heard_all() -> bool:
            keyed.pump(0.05)
            bare.pump(0.0)
            # Feeds come 5 times a second: after 1 s a plaintext feed would have some.
            return keyed_state.all_heard() and time.monotonic() - started > 1.0

        wait_for(heard_all, 15, "the keyed console to hear every node")
        assert not any(v.status for v in bare_state.nodes.values())
    finally:
        keyed.close()
        bare.close()


# -- peers ----------------------------------------------------------------------------


def rogue_keys(cluster: LocalCluster, directory: Path, variant: str) -> list[str]:
    """Flags for a node started without the cluster's keys."""
    if variant == "insecure":
        return ["--insecure"]
    keygen(directory, nodes=1)
    if variant == "stolen-server-key":  # the cluster's server keypair, an unlisted node key
        for name in ("cluster.key", "cluster.key_secret"):
            (directory / name).write_bytes((cluster.keys / name).read_bytes())
    return ["--keys", str(directory), "--node-key", str(directory / "node0.key_secret")]


@pytest.mark.process
@pytest.mark.parametrize("variant", ["own-keys", "insecure", "stolen-server-key"])
def test_a_node_without_the_cluster_keys_cannot_join(cluster, tmp_path, variant):
    leader = cluster.leader()
    before = {n: cluster.status(n) for n in cluster.ids}
    port = pick_base_ports(1)[0]
    rogue_id = f"127.0.0.1:{port}"
    rogue = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zmqnode",
            "--port",
            str(port),
            "--peers",
            ",".join(cluster.ids),
            "--storage-dir",
            str(tmp_path / "rogue"),
            "--no-trainer",
            *rogue_keys(cluster, tmp_path / "keys", variant),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "rogue.err", "wb"),  # closed with the process
    )
    try:
        # Up for 3 s, three times the longest election timeout, while the
        # leader publishes a heartbeat every 50 ms: still at term 0, so it got
        # no heartbeat and no answer to its pre-votes (either carries the
        # cluster's term, which it would have taken).
        def up_three_seconds() -> dict | None:
            assert rogue.poll() is None, (tmp_path / "rogue.err").read_text()
            status = monitor_status(rogue_id)
            return status if status["uptime_s"] >= 3.0 else None

        status = wait_for(up_three_seconds, 30, "the rogue node to run 3 s")
        assert status["leader"] is None and status["term"] == 0, status
        assert status["role"] == "pre_candidate", status  # it keeps trying, alone
        if variant == "stolen-server-key":
            rogue_public = zmq.auth.load_certificate(tmp_path / "keys" / "node0.key_secret")[0]
            line = f"public key {rogue_public.decode()} is not allowed on zmqnode.peers"
            wait_for(lambda: line in cluster.output(leader), 10, "the leader to log the refusal")
        after = {n: cluster.status(n) for n in cluster.ids}
        for n in cluster.ids:
            assert after[n]["term"] == before[n]["term"], (n, before[n], after[n])
            assert after[n]["leader"] == leader
    finally:
        rogue.terminate()
        rogue.wait(10)


def raw_raft_dealer(ctx: zmq.Context, node_id: str, keys) -> tuple[zmq.Socket, zmq.Socket]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    security.make_client(sock, keys)
    events = sock.get_monitor_socket(addr=f"inproc://monitor-{uuid.uuid4().hex}")
    port = int(node_id.rsplit(":", 1)[1]) + 1000
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock, events


def handshake_outcome(events: zmq.Socket, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not events.poll(100):
            continue
        event = zmq.utils.monitor.recv_monitor_message(events)["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            return "accepted"
        if event & HANDSHAKE_FAILED or event == zmq.EVENT_DISCONNECTED:
            return "refused"
    return "no outcome"


@pytest.mark.process
def test_raft_port_takes_appends_only_from_member_keys(tmp_path):
    """A forged AppendEntries at a far higher term, claiming to come from a
    member, over a socket without a member's key: refused, term unchanged.
    The same bytes over a member's key move every node's term (the probe
    would notice if the refusal broke)."""
    c = LocalCluster(tmp_path, n=3)
    c.start()
    ctx = zmq.Context()
    try:
        leader = c.leader()
        term = c.status(leader)["term"]
        target = next(n for n in c.ids if n != leader)
        forged = encode_raft(
            Message(MessageType.APPEND, src=leader, dst=target, term=term + 50, commit=0)
        )
        strangers = {
            "plaintext": None,
            "listed client key": c.client_keys("client"),
            "unlisted key": fresh_keys(c),
        }
        for what, keys in strangers.items():
            sock, events = raw_raft_dealer(ctx, target, keys)
            sock.send_multipart(forged)  # queued: delivered if the handshake ever passed
            assert handshake_outcome(events) == "refused", what
            sock.close(0)
        for n in c.ids:
            assert c.status(n)["term"] == term
        sock, events = raw_raft_dealer(ctx, target, c.client_keys("node2"))
        assert handshake_outcome(events) == "accepted"
        sock.send_multipart(forged)
        wait_for(lambda: c.status(target)["term"] >= term + 50, 10, "the forged term taken")
        sock.close(0)
    finally:
        ctx.destroy(0)
        c.stop()


def test_the_member_keys_file_carries_the_allow_list_to_the_trainer(tmp_path):
    shared = security.MemberKeysFile(tmp_path / "member_keys")
    reader = security.MemberKeysFile(tmp_path / "member_keys")
    assert reader.reload() is None  # no file yet
    keys = frozenset({b"a" * 40, b"b" * 40})
    shared.write(keys)
    assert reader.reload() == keys
    assert reader.reload() is None  # unchanged since
    shared.write(frozenset({b"c" * 40}))
    os.utime(tmp_path / "member_keys", ns=(1, 1))  # a new mtime even within one tick
    assert reader.reload() == {b"c" * 40}
