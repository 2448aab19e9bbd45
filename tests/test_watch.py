"""``python -m client watch``: the console fed by the nodes' status feeds.

Unit tests publish the feed contract from PUB sockets bound here (fake
nodes); the integration test watches a real 3-node cluster lose its leader.
Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import queue
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
import zmq
from rich.console import Console

from client.watch import DOWN_AFTER, STATUS_TOPIC, Feed, WatchState, render
from harness.cluster import ROOT, LocalCluster, pick_base_ports

pytestmark = pytest.mark.conformance


class FakeNodes:
    """PUB sockets bound where real nodes publish their status (client port + 2000)."""

    def __init__(self, n: int = 3, ids: list[str] | None = None) -> None:
        self.context = zmq.Context.instance()
        self.ids = ids or [f"127.0.0.1:{p}" for p in pick_base_ports(n)]
        self.pubs = {}
        for nid in self.ids:
            pub = self.context.socket(zmq.PUB)
            pub.setsockopt(zmq.LINGER, 0)
            pub.bind(f"tcp://127.0.0.1:{int(nid.rsplit(':', 1)[1]) + 2000}")
            self.pubs[nid] = pub
        self.seq = dict.fromkeys(self.ids, 0)
        self.leader = self.ids[0]
        self.term = 3
        self.overrides: dict[str, dict[str, Any]] = {nid: {} for nid in self.ids}
        self.events: dict[str, list[dict[str, Any]]] = {nid: [] for nid in self.ids}

    def status(self, nid: str) -> dict[str, Any]:
        self.seq[nid] += 1
        status = {
            "node": nid,
            "seq": self.seq[nid],
            "time": time.time(),
            "role": "leader" if nid == self.leader else "follower",
            "term": self.term,
            "leader": self.leader,
            "commit_index": 42,
            "applied_index": 41,
            "last_index": 42,
            "models": 2,
            "trainer": "idle",
            "requests_per_s": 12.5,
            "p99_ms": 3.5,
            "peers": {other: 0.1 for other in self.ids if other != nid},
            "trainings": [],
            "events": self.events[nid][-20:],
        }
        status.update(self.overrides[nid])
        return status

    def publish(self, nodes: Iterable[str] | None = None) -> None:
        for nid in self.ids if nodes is None else nodes:
            self.send(nid, [STATUS_TOPIC, orjson.dumps(self.status(nid))])

    def send(self, nid: str, frames: list[bytes]) -> None:
        self.pubs[nid].send_multipart(frames)

    def close(self) -> None:
        for pub in self.pubs.values():
            pub.close(linger=0)


@pytest.fixture
def fake():
    nodes = FakeNodes(3)
    try:
        yield nodes
    finally:
        nodes.close()


@pytest.fixture
def watched(fake):
    state = WatchState([fake.ids[0]])  # the others are found from its peers
    feed = Feed(state)
    try:
        yield state, feed
    finally:
        feed.close()


def pump_until(
    fake: FakeNodes,
    state: WatchState,
    feed: Feed,
    condition: Callable[[], Any],
    *,
    publishing: Callable[[], Iterable[str] | None] = lambda: None,
    timeout: float = 5.0,
    what: str = "condition",
) -> Any:
    """Publish from the fake nodes and feed the watcher until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    next_publish = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_publish:
            fake.publish(publishing())
            next_publish = time.monotonic() + 0.1  # the nodes publish every 0.2 s
        feed.pump(0.02)
        state.check()
        value = condition()
        if value:
            return value
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def all_up(state: WatchState, n: int) -> bool:
    return len(state.nodes) == n and all(r["state"] == "up" for r in state.rows())


def screen(state: WatchState, width: int = 80, height: int = 24, styles: bool = False) -> str:
    console = Console(
        record=True,
        width=width,
        height=height,
        force_terminal=True,
        color_system="standard",
        file=open(os.devnull, "w"),  # closed with the console's garbage
    )
    console.print(render(state, width=width, height=height))
    return console.export_text(styles=styles)


def table_rows(text: str, ids: Iterable[str]) -> dict[str, list[str]]:
    """node -> the cells of its row in a rendered view (plain text)."""
    ids = set(ids)
    rows = {}
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] in ids:
            rows[cells[0]] = cells
    return rows


# --------------------------------------------------------------------------
# Unit: the view against fake feeds


def test_every_node_found_from_one_and_exactly_one_leader_highlighted(fake, watched):
    state, feed = watched
    # A stale leader of an older term (e.g. just back from a partition) says
    # "leader" too; only the one of the highest term is highlighted.
    fake.overrides[fake.ids[2]] = {"role": "leader", "term": 2}
    pump_until(fake, state, feed, lambda: all_up(state, 3), what="three nodes up")

    assert state.current_leader() == fake.ids[0]
    assert [r["leader"] for r in state.rows()] == [True, False, False]
    text = screen(state)
    rows = table_rows(text, fake.ids)
    assert [rows[n][1] for n in fake.ids] == ["leader", "follower", "leader?"]
    assert rows[fake.ids[0]][2:10] == [
        "3",
        "42",
        "41",
        rows[fake.ids[0]][5],
        "2",
        "12.5",
        "-",
        "3.50",
    ]
    # Highlight: the leader's role cell, and only it, has the green background.
    styled = screen(state, styles=True).splitlines()
    highlighted = [line for line in styled if "42m" in line]  # ANSI "on green"
    assert len(highlighted) == 1 and fake.ids[0] in highlighted[0]
    assert f"leader {fake.ids[0]} term 3" in text


def test_silent_node_turns_down_within_the_election_timeout_then_back(fake, watched):
    state, feed = watched
    pump_until(fake, state, feed, lambda: all_up(state, 3), what="three nodes up")
    victim = fake.ids[1]
    others = [n for n in fake.ids if n != victim]
    fake.publish([victim])
    last_sent = time.monotonic()

    def down() -> bool:
        return state.nodes[victim].state(time.monotonic()) == "down"

    pump_until(fake, state, feed, down, publishing=lambda: others, what=f"{victim} down")
    silent = time.monotonic() - last_sent
    assert DOWN_AFTER <= silent < DOWN_AFTER + 0.7, silent  # 0.2 s feed period of slack
    # The others stay up (re-checked while they publish: a test process
    # starved of CPU for 0.5 s would rightly see them silent too).
    pump_until(
        fake,
        state,
        feed,
        lambda: [r["state"] for r in state.rows()] == ["up", "down", "up"],
        publishing=lambda: others,
        what="only the silent node down",
    )
    text = screen(state)
    assert table_rows(text, fake.ids)[victim][1] == "DOWN"
    assert "2/3 up" in text
    assert any(e.node == victim and e.text.startswith("down") for e in state.events)
    red_row = [line for line in screen(state, styles=True).splitlines() if victim in line][0]
    assert "\x1b[" in red_row and "31" in red_row  # red

    # Publishing again: up, and "back" logged once.
    pump_until(fake, state, feed, lambda: all_up(state, 3), what=f"{victim} back")
    backs = [e for e in state.events if e.node == victim and e.text.startswith("back")]
    assert len(backs) == 1


def test_leader_down_and_new_leader_shown(fake, watched):
    state, feed = watched
    pump_until(fake, state, feed, lambda: all_up(state, 3), what="three nodes up")
    old = fake.ids[0]
    fake.leader, fake.term = fake.ids[2], 4
    fake.events[fake.ids[2]].append(
        {"seq": 1, "time": time.time(), "kind": "leader", "text": "became leader in term 4"}
    )
    rest = fake.ids[1:]

    def switched() -> bool:
        return state.current_leader() == fake.ids[2] and state.nodes[old].down

    pump_until(fake, state, feed, switched, publishing=lambda: rest, what="new leader")
    text = screen(state)
    rows = table_rows(text, fake.ids)
    assert [rows[n][1] for n in fake.ids] == ["DOWN", "follower", "leader"]
    assert "became leader in term 4" in text
    # The new leader said it itself; the watcher does not repeat it.
    assert not [e for e in state.events if e.source == "watch" and e.kind == "leader"]


def test_node_events_shown_once_each():
    state = WatchState(["127.0.0.1:9000"], discover=False)
    events = [
        {"seq": 1, "time": 100.0, "kind": "leader", "text": "became leader in term 2"},
        {"seq": 2, "time": 101.0, "kind": "model_stored", "text": "model m1 stored"},
    ]

    def message(events: list[dict[str, Any]], seq: int) -> list[bytes]:
        return [STATUS_TOPIC, orjson.dumps({"seq": seq, "role": "leader", "events": events})]

    for seq in range(1, 4):  # the same last events in every message
        assert state.ingest("127.0.0.1:9000", message(events, seq))
    more = [*events, {"seq": 3, "time": 102.0, "kind": "peer_down", "text": "peer x down"}]
    state.ingest("127.0.0.1:9000", message(more, 4))
    # A restart: the node's counters start again, with later times.
    state.ingest("127.0.0.1:9000", message([{"seq": 1, "time": 200.0, "text": "started"}], 1))
    texts = [e.text for e in state.events if e.source == "node"]
    assert texts == ["became leader in term 2", "model m1 stored", "peer x down", "started"]
    assert any("restarted" in e.text for e in state.events if e.source == "watch")
    assert len(state.nodes) == 1  # --no-discover


def test_watcher_reports_a_new_leader_no_node_event_announced():
    clock = [100.0]
    state = WatchState(["127.0.0.1:9000", "127.0.0.1:9001"], clock=lambda: clock[0])

    def send(node: str, role: str, term: int) -> None:
        status = {"role": role, "term": term, "seq": int(clock[0] * 10)}
        assert state.ingest(node, [STATUS_TOPIC, orjson.dumps(status)])

    send("127.0.0.1:9000", "leader", 1)
    send("127.0.0.1:9001", "follower", 1)
    state.check()
    assert state.events == []  # the leader at start is in the header, not news
    clock[0] += 1.0  # 9000 silent: down
    send("127.0.0.1:9001", "candidate", 2)
    state.check()
    assert state.current_leader() is None
    send("127.0.0.1:9001", "leader", 2)
    state.check()
    assert [(e.node, e.text) for e in state.events] == [
        ("127.0.0.1:9000", "down: silent for 1.0s"),
        ("127.0.0.1:9001", "is the new leader (term 2)"),
    ]


def test_restart_and_a_late_feed_reported():
    clock = [100.0]
    state = WatchState(["127.0.0.1:9000", "127.0.0.1:9001"], clock=lambda: clock[0])

    def send(node: str, seq: int) -> None:
        assert state.ingest(node, [STATUS_TOPIC, orjson.dumps({"seq": seq, "role": "follower"})])

    send("127.0.0.1:9000", 50)
    state.check()
    assert state.events == [] and state.nodes["127.0.0.1:9001"].state(clock[0]) == "waiting"
    clock[0] += 2.0
    state.check()
    assert [r["state"] for r in state.rows()] == ["down", "no feed"]
    send("127.0.0.1:9000", 3)  # a new process: its counter starts again
    send("127.0.0.1:9001", 1)
    state.check()
    assert [r["state"] for r in state.rows()] == ["up", "up"]
    assert [(e.node[-4:], e.text) for e in state.events] == [
        ("9000", "down: silent for 2.0s"),
        ("9001", "no status feed from tcp://127.0.0.1:11001"),
        ("9000", "back after 2.0s silent (restarted)"),
        ("9001", "status feed started"),
    ]


def test_malformed_messages_skipped_and_missing_fields_shown_as_dash(fake, watched):
    state, feed = watched
    pump_until(fake, state, feed, lambda: all_up(state, 3), what="three nodes up")
    nid = fake.ids[1]
    bad = [
        [STATUS_TOPIC],
        [STATUS_TOPIC, b"{not json"],
        [STATUS_TOPIC, b"[1, 2, 3]"],
        [STATUS_TOPIC, b'"a string"'],
        [STATUS_TOPIC, b"{}", b"extra frame"],
        [STATUS_TOPIC, b"\xff\xfe"],
    ]
    for frames in bad:
        fake.send(nid, frames)
    # A dict with every field of the wrong type, or missing, is still a status.
    odd = {
        "marker": "odd",
        "role": 5,
        "term": "x",
        "commit_index": None,
        "models": 1.5,
        "requests_per_s": "fast",
        "p99_ms": None,
        "trainer": ["?"],
        "peers": [1, 2],
        "trainings": [{"id": "t1", "round": "a", "metrics": "no"}, 7],
        "events": [1, {"seq": "a", "time": 1.0}, {"seq": 1}, None],
    }
    fake.send(nid, [STATUS_TOPIC, orjson.dumps(odd)])

    def odd_seen() -> bool:
        return (state.nodes[nid].status or {}).get("marker") == "odd"

    # Only the others publish meanwhile, so the odd message stays the last one.
    others = [n for n in fake.ids if n != nid]
    pump_until(fake, state, feed, odd_seen, publishing=lambda: others, what="odd status")
    assert state.skipped == len(bad)
    text = screen(state)
    row = table_rows(text, fake.ids)[nid]
    assert row[1:5] == ["-"] * 4 and row[6:] == ["-"] * 5, row
    assert "t1" in text  # a training with unreadable fields is still listed
    assert f"{len(bad)} bad msg" in text
    assert all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize("n", [3, 5])
def test_fits_80_by_24(n):
    fake = FakeNodes(n)
    state = WatchState([fake.ids[0]])
    feed = Feed(state)
    try:
        long = "a very long event text that would not fit on one line of eighty columns " * 3
        fake.events[fake.ids[0]] = [
            {"seq": i, "time": time.time() + i, "kind": "model_stored", "text": f"{i} {long}"}
            for i in range(25)
        ]
        fake.overrides[fake.ids[0]] = {
            "role": "pre_candidate",
            "term": 123456,
            "commit_index": 9_999_999,
            "applied_index": 9_999_998,
            "requests_per_s": 123456.7,
            "p99_ms": 1234.5,
            "trainer": "starting",
            "trainings": [
                {
                    "id": f"request-{i}-with-a-long-id",
                    "round": 3,
                    "rounds": 10,
                    "epoch": 30,
                    "epochs": 100,
                    "elapsed_s": 123.4,
                    "metrics": {"val_accuracy": 0.97, "loss": 0.1},
                }
                for i in range(4)
            ],
        }
        pump_until(fake, state, feed, lambda: all_up(state, n), what=f"{n} nodes up")
        text = screen(state)
        lines = text.rstrip("\n").splitlines()
        assert max(len(line) for line in lines) <= 80, text
        assert len(lines) <= 24, text
        assert len(table_rows(text, fake.ids)) == n  # every node is on screen
        assert "round 3/10 epoch 30/100 acc 0.970" in text
        # The newest event is on screen, with its time and whole node id.
        assert re.search(rf"^\d\d:\d\d:\d\d {re.escape(fake.ids[0])} 24 a very long", text, re.M)
    finally:
        feed.close()
        fake.close()


# --------------------------------------------------------------------------
# The command, against fake nodes


class Publisher(threading.Thread):
    """Fake nodes publishing every 0.1 s from a thread (for a child process to watch)."""

    def __init__(self, n: int = 3) -> None:
        super().__init__(daemon=True)
        self.ids = [f"127.0.0.1:{p}" for p in pick_base_ports(n)]
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        fake = FakeNodes(ids=self.ids)  # sockets made and used in this thread
        self.ready.set()
        try:
            while not self.stop.wait(0.1):
                fake.publish()
        finally:
            fake.close()


@pytest.fixture
def publisher():
    p = Publisher()
    p.start()
    assert p.ready.wait(5)
    try:
        yield p
    finally:
        p.stop.set()
        p.join(5)


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_once_prints_one_snapshot_with_every_node(publisher):
    out = run_cli("watch", "--nodes", publisher.ids[0], "--once", "--wait", "10")
    assert out.returncode == 0, out.stderr
    rows = table_rows(out.stdout, publisher.ids)
    assert sorted(rows) == sorted(publisher.ids)
    assert [rows[n][1] for n in publisher.ids] == ["leader", "follower", "follower"]
    assert out.stdout.count("zmqnode watch") == 1

    out = run_cli("watch", "--nodes", ",".join(publisher.ids), "--once", "--json")
    assert out.returncode == 0, out.stderr
    snapshot = json.loads(out.stdout)
    assert snapshot["leader"] == publisher.ids[0]
    assert [r["state"] for r in snapshot["nodes"]] == ["up"] * 3


def test_once_without_any_node_exits_3():
    (port,) = pick_base_ports(1)
    out = run_cli("watch", "--port", str(port), "--once", "--wait", "0.3")
    assert out.returncode == 3
    assert "no feed" in out.stdout and "no leader" in out.stdout


def test_live_view_in_a_terminal_leaves_cleanly_on_ctrl_c(publisher):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "client", "watch", "--nodes", publisher.ids[1]],
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"},
        preexec_fn=_interruptible,
    )
    os.close(slave)
    output = b""
    try:

        def read(timeout: float) -> None:
            nonlocal output
            ready, _, _ = select.select([master], [], [], timeout)
            if ready:
                try:
                    output += os.read(master, 1 << 16)
                except OSError:  # the child closed the terminal
                    pass

        deadline = time.monotonic() + 15
        # Several frames with all three nodes: the view refreshes by itself.
        while time.monotonic() < deadline and output.count(b"3/3 up") < 3:
            read(0.1)
        assert output.count(b"3/3 up") >= 3, output[-2000:]
        assert b"\x1b[?25l" in output  # Live hides the cursor...
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            read(0.1)
        read(0.2)
        assert proc.wait(5) == 0
        assert output.rstrip(b"\r\n").endswith(b"\x1b[?25h")  # ...and shows it again
        assert b"Traceback" not in output
        # Every line of the last frame fits in 80 columns.
        frame = output.rsplit(b"zmqnode watch", 1)[1]
        plain = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", frame).decode(errors="replace")
        assert all(len(line) <= 80 for line in plain.split("\r\n")), plain
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


# --------------------------------------------------------------------------
# Integration: a real cluster loses its leader


def _interruptible() -> None:
    """In the child: Ctrl-C (SIGINT) as a terminal gives it. A suite started in
    the background by a non-interactive shell inherits SIGINT ignored, and
    Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class WatchProcess:
    """``python -m client watch`` piped: its plain snapshots, parsed as they come."""

    def __init__(self, nodes: list[str], keys: Path | None = None) -> None:
        self.ids = nodes
        security = ["--keys", str(keys)] if keys else ["--insecure"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "client",
                "watch",
                "--nodes",
                nodes[0],
                "--interval",
                "0.25",
                *security,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_interruptible,
        )
        self.snapshots: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        current: list[str] = []
        for line in self.proc.stdout:
            if line.startswith("zmqnode watch") and current:
                self.snapshots.put("".join(current))
                current = []
            current.append(line)
        if current:
            self.snapshots.put("".join(current))

    def wait_for(self, condition: Callable[[dict[str, str]], bool], timeout: float, what: str):
        """The first snapshot whose roles (node -> role cell) satisfy ``condition``."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self.snapshots.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            roles = {n: cells[1] for n, cells in table_rows(last, self.ids).items()}
            if condition(roles):
                return roles, last
        raise AssertionError(f"no snapshot with {what} within {timeout}s; last:\n{last}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.process
def test_real_cluster_leader_killed_shown_down_and_new_leader(tmp_path):
    started = time.monotonic()
    cluster = LocalCluster(tmp_path, n=3)
    cluster.start()
    watch = None
    try:
        leader = cluster.leader()
        watch = WatchProcess(cluster.ids, cluster.keys)  # over CURVE, as by default

        def one_leader_all_up(roles: dict[str, str]) -> bool:
            return (
                len(roles) == 3
                and list(roles.values()).count("leader") == 1
                and roles.get(leader) == "leader"
                and all(r in ("leader", "follower") for r in roles.values())
            )

        watch.wait_for(one_leader_all_up, 10, "every node up and one leader")

        cluster.kill(leader)
        killed = time.monotonic()

        def failed_over(roles: dict[str, str]) -> bool:
            others = [roles.get(n) for n in cluster.ids if n != leader]
            return roles.get(leader) == "DOWN" and others.count("leader") == 1

        roles, text = watch.wait_for(failed_over, 10, "the old leader DOWN and a new leader")
        assert list(roles.values()).count("leader") == 1
        new_leader = next(n for n, r in roles.items() if r == "leader")
        assert f"leader {new_leader}" in text
        assert f"{leader} down: silent" in text
        assert time.monotonic() - killed < 10
        assert watch.interrupt() == 0
        assert "Traceback" not in watch.proc.stderr.read()
    finally:
        if watch is not None:
            watch.close()
        cluster.stop()
    assert time.monotonic() - started < 30


# --------------------------------------------------------------------------
# Integration: the Live view in a real terminal (tmux) follows a failover


class TmuxPane:
    """A command in a detached 80x24 tmux session on a private server (``-L``).

    The server is this test's own (its own socket, no config file), so a
    user's tmux is never touched; ``close`` kills it. The pane stays after
    the command exits (``remain-on-exit``) so that its exit status and last
    screen can be read.
    """

    def __init__(self, command: list[str], width: int = 80, height: int = 24) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            pytest.fail("tmux is required for this test (apt-get install tmux); it is not on PATH")
        self.tmux = tmux
        self.socket = f"zmqnode-test-{os.getpid()}-{time.monotonic_ns()}"
        self.target = "watch"
        self.env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        self.env["TERM"] = "xterm-256color"
        self.widest = 0  # the longest line captured, in characters...
        self.widest_screen = ""  # ...and the screen it was on
        # Where tmux puts a -L socket (it leaves the file behind when killed).
        tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
        self.socket_path = os.path.join(tmpdir, f"tmux-{os.getuid()}", self.socket)
        try:
            self.run(
                "new-session",
                "-d",
                "-x",
                str(width),
                "-y",
                str(height),
                "-s",
                self.target,
                "-c",
                str(ROOT),
                shlex.join(command),
                ";",
                "set-option",
                "-g",
                "remain-on-exit",
                "on",
            )
            self.socket_path = self.display("#{socket_path}")
            self.server_pid = int(self.display("#{pid}"))
            assert self.display("#{pane_width}x#{pane_height}") == f"{width}x{height}"
        except BaseException:
            self.close()
            raise

    def run(self, *args: str) -> str:
        out = subprocess.run(
            [self.tmux, "-u", "-L", self.socket, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=10,
        )
        assert out.returncode == 0, f"tmux {' '.join(args)}: {out.stderr.strip()}"
        return out.stdout

    def display(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", self.target, fmt).rstrip("\n")

    def exit_status(self) -> str | None:
        """``status N`` or ``signal N`` once the command has exited, else None."""
        dead, status, sig = self.display(
            "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}"
        ).split(":")
        if dead != "1":
            return None
        if not status and not sig:
            # The pane's terminal closed but tmux missed its child's SIGCHLD
            # (libutempter's handler is in place meanwhile, tmux issue #311):
            # the child waits unreaped until the next SIGCHLD. Nudge our server.
            os.kill(self.server_pid, signal.SIGCHLD)
            return None
        return f"status {status}" if status else f"signal {sig}"

    def capture(self) -> str:
        """The visible screen as text; wrapped lines joined (``-J``), so none hides."""
        text = self.run("capture-pane", "-p", "-J", "-t", self.target)
        width = max(len(line.rstrip()) for line in text.split("\n"))
        if width > self.widest:
            self.widest, self.widest_screen = width, text
        return text

    def wait_for(self, condition: Callable[[str], Any], timeout: float, what: str) -> Any:
        """Capture the screen until ``condition(screen)`` is truthy; returns that value."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.capture()
            value = condition(text)
            if value:
                return value
            time.sleep(0.1)  # polling interval, not synchronization
        raise AssertionError(f"no screen with {what} within {timeout}s; last:\n{text}")

    def close(self) -> None:
        subprocess.run(
            [self.tmux, "-L", self.socket, "kill-server"],
            capture_output=True,
            env=self.env,
            timeout=10,
        )
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)


def live_roles(text: str, ids: list[str]) -> dict[str, str] | None:
    """node -> role cell of a captured Live frame, if the frame shows every node."""
    if "zmqnode watch" not in text:
        return None
    roles = {n: cells[1] for n, cells in table_rows(text, ids).items() if len(cells) > 1}
    return roles if len(roles) == len(ids) else None


@pytest.mark.process
def test_live_console_in_tmux_follows_a_real_failover(tmp_path):
    started = time.monotonic()
    cluster = LocalCluster(tmp_path, n=3)
    cluster.start()
    pane = None
    try:
        leader = cluster.leader()
        pane = TmuxPane(
            [
                sys.executable,
                "-m",
                "client",
                "watch",
                "--nodes",
                ",".join(cluster.ids),
                "--keys",
                str(cluster.keys),
            ]
        )

        def one_leader_all_up(text: str) -> tuple[dict[str, str], str] | None:
            roles = live_roles(text, cluster.ids)
            if not roles or sorted(roles.values()) != ["follower", "follower", "leader"]:
                return None
            return roles, text

        roles, text = pane.wait_for(one_leader_all_up, 15, "every node up and one leader")
        if roles[leader] != "leader":  # an election in between (a loaded machine)
            leader = cluster.leader()

            def leads(text: str) -> tuple[dict[str, str], str] | None:
                found = one_leader_all_up(text)
                return found if found and found[0][leader] == "leader" else None

            roles, text = pane.wait_for(leads, 10, f"{leader} the one leader")
        assert list(roles.values()).count("leader") == 1
        assert "3/3 up" in text and f"leader {leader} term" in text
        assert pane.display("#{cursor_flag}") == "0"  # Live hides the cursor

        cluster.kill(leader)

        def failed_over(text: str) -> tuple[dict[str, str], str] | None:
            roles = live_roles(text, cluster.ids)
            if not roles or roles[leader] != "DOWN":
                return None
            others = [roles[n] for n in cluster.ids if n != leader]
            return (roles, text) if others.count("leader") == 1 else None

        roles, text = pane.wait_for(failed_over, 10, "the old leader DOWN and a new leader")
        new_leader = next(n for n, r in roles.items() if r == "leader")
        assert new_leader != leader
        assert list(roles.values()).count("leader") == 1
        assert "2/3 up" in text and f"leader {new_leader} term" in text
        # Every frame captured fits (-J: a line wider than the pane is not cut).
        assert pane.widest <= 80, pane.widest_screen

        # Ctrl-C: the watcher exits 0.
        pane.run("send-keys", "-t", pane.target, "C-c")
        status = pane.wait_for(lambda _: pane.exit_status(), 10, "the watcher exited")
        last = pane.capture()
        assert status == "status 0", last
        assert "Traceback" not in last, last
    finally:
        if pane is not None:
            pane.close()
        cluster.stop()
    assert time.monotonic() - started < 30
