"""``python -m client watch``: a live console of the cluster.

    python -m client watch [--nodes H:P,H:P | --host H --port P] [--interval S]
                           [--once [--wait S]] [--no-discover] [--json]

Fed by the nodes' status feed, not by polling: every node publishes on its
heartbeat PUB socket (client port + 2000, ``addresses.node_ports``) every
0.2 s a two-frame message ``[b"zstatus", JSON]`` (role, term, indexes,
models, trainer, load, trainings in progress, its last events; the fields
are listed in ``docs/PROTOCOL.md`` §9b). The watcher opens one SUB socket per
node, so a message is attributed to the node whose socket it came from even
when its JSON is odd, and it learns the other nodes from the ``peers`` of
each message (``--no-discover`` turns that off): watching the default node
shows the whole cluster.

What the watcher decides by itself:

- a node that published and then stayed silent for ``DOWN_AFTER`` (0.5 s,
  the minimum election timeout; the feed comes every 0.2 s) is shown DOWN,
  in red, and "down" is logged; its next message logs "back";
- a node never heard from within ``FIRST_FEED_GRACE`` is shown "no feed";
- a node whose message counter went backwards restarted;
- exactly one node is highlighted as leader: among the live nodes that say
  they lead, the one with the highest term (another one is a stale leader,
  shown "leader?").

Output: a rich ``Live`` view refreshed 5 times a second on a terminal (made
to fit 80x24); otherwise (stdout piped) a plain snapshot every
``--interval`` seconds, or JSON lines with ``--json``. ``--once`` prints one
snapshot as soon as every known node has published once (or after
``--wait`` seconds) and exits: 0 if some node was heard, 3 if none. Ctrl-C
exits 0 with the terminal restored and the sockets closed.
"""

from __future__ import annotations

import argparse
import bisect
import math
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

import orjson
import zmq
from rich import box
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from zmqnode.transport.addresses import format_address, node_ports, parse_address, tcp_endpoint
from zmqnode.transport.security import ClientKeys, make_client
from zmqnode.transport.status_feed import STATUS_TOPIC, decode_status

DOWN_AFTER = 0.5  # seconds of silence before a node is shown down (min election timeout)
FIRST_FEED_GRACE = 1.5  # a node never heard from is "no feed" after this long
REFRESH_S = 0.2  # Live view: 5 refreshes a second
MAX_MESSAGE_BYTES = 4 << 20  # a status message is a few KiB; refuse anything absurd
MAX_EVENTS = 200
EXIT_OK = 0
EXIT_UNAVAILABLE = 3

ROLE_LABELS = {"pre_candidate": "pre-cand", "candidate": "candidate", "learner": "learner"}


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the console's event log: a node's own event or one the
    watcher detected (a node down, back, restarted)."""

    time: float  # unix seconds
    node: str
    text: str
    kind: str
    source: str  # "node" (from the node's feed) or "watch" (detected here)


@dataclass(slots=True)
class NodeView:
    """What the watcher knows of one node: its last status message and
    whether it is up, down or not heard from yet (``state``)."""

    node: str  # the client address we watch it by
    endpoint: str  # its status PUB endpoint
    added: float  # monotonic time the watcher started listening
    status: dict[str, Any] | None = None  # the last status message
    received: float | None = None  # monotonic time of the last message
    messages: int = 0
    down: bool = False
    no_feed_reported: bool = False
    event_mark: tuple[float, float] = (-math.inf, -math.inf)  # newest (time, seq) shown

    def state(self, now: float, grace: float = FIRST_FEED_GRACE) -> str:
        """``up``, ``down``, ``waiting`` (not heard yet) or ``no feed``."""
        if self.received is None:
            return "no feed" if now - self.added >= grace else "waiting"
        return "down" if self.down else "up"


class WatchState:
    """What the watcher knows: one ``NodeView`` per node, the event log.

    Pure bookkeeping, no sockets: ``ingest`` one received message, ``check``
    for silence. ``clock`` (monotonic) and ``wall`` (unix) can be replaced in
    tests.
    """

    def __init__(
        self,
        nodes: Iterable[str],
        *,
        discover: bool = True,
        down_after: float = DOWN_AFTER,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.discover = discover
        self.down_after = down_after
        self.first_feed_grace = FIRST_FEED_GRACE
        self.clock = clock
        self.wall = wall
        self.nodes: dict[str, NodeView] = {}
        self.aliases: dict[str, str] = {}  # the name a node gives itself -> our key
        self.events: list[Event] = []  # oldest first, by time (the nodes' clocks for theirs)
        self.skipped = 0  # malformed messages
        self.leader: str | None = None  # the last leader highlighted
        for node in nodes:
            self.add_node(node)

    # ------------------------------------------------------------------
    # Nodes

    def add_node(self, node: str) -> str | None:
        """Watch ``node`` (``host:port``); returns its key, or None if invalid."""
        try:
            host, port = parse_address(node)
            key = format_address(host, port)
            endpoint = tcp_endpoint(host, node_ports(port).heartbeat)
        except (ValueError, TypeError):
            return None
        key = self.aliases.get(key, key)
        if key not in self.nodes:
            self.nodes[key] = NodeView(key, endpoint, added=self.clock())
        return key

    def up_nodes(self) -> list[NodeView]:
        return [v for v in self.nodes.values() if v.received is not None and not v.down]

    def all_heard(self) -> bool:
        return all(v.received is not None for v in self.nodes.values())

    # ------------------------------------------------------------------
    # Input

    def ingest(self, node: str, frames: list[bytes], now: float | None = None) -> bool:
        """One message from ``node``'s SUB socket; False (and skipped) if malformed."""
        view = self.nodes.get(node)
        status = decode_status(frames)
        if view is None or status is None:
            self.skipped += 1
            return False
        now = self.clock() if now is None else now
        name = status.get("node")
        if isinstance(name, str) and name != node:
            try:
                self.aliases.setdefault(format_address(*parse_address(name)), node)
            except ValueError:
                pass
        previous = view.status
        seq, old_seq = status.get("seq"), (previous or {}).get("seq")
        restarted = _is_int(seq) and _is_int(old_seq) and seq < old_seq  # counter went back
        if view.down:
            silent = _age(now - (view.received or now))
            self._event(node, f"back after {silent} silent{' (restarted)' * restarted}", "up")
        elif restarted:
            self._event(node, "restarted (its message counter went back)", "up")
        elif view.received is None and view.no_feed_reported:
            self._event(node, "status feed started", "up")
        view.status, view.received, view.down = status, now, False
        view.messages += 1
        self._node_events(view, status.get("events"))
        if self.discover and isinstance(status.get("peers"), Mapping):
            for peer in status["peers"]:
                if isinstance(peer, str):
                    self.add_node(peer)
        return True

    def check(self, now: float | None = None) -> None:
        """Mark silent nodes down, report never-heard ones, track the leader."""
        now = self.clock() if now is None else now
        for view in self.nodes.values():
            if view.received is None:
                if not view.no_feed_reported and now - view.added >= self.first_feed_grace:
                    view.no_feed_reported = True
                    self._event(view.node, f"no status feed from {view.endpoint}", "peer_down")
            elif not view.down and now - view.received >= self.down_after:
                view.down = True
                self._event(view.node, f"down: silent for {_age(now - view.received)}", "down")
        leader = self.current_leader()
        if leader is not None and self.leader is not None and leader != self.leader:
            # A new leader while we watch. Its own "leader" event normally says
            # so; say it here only when that event is not among the recent ones.
            term = _field(self.nodes[leader].status, "term")
            said = any(
                e.node == leader and e.kind == "leader" and self.wall() - e.time < 5
                for e in self.events
            )
            if not said:
                self._event(leader, f"is the new leader (term {_cell(term)})", "leader")
        if leader is not None:
            self.leader = leader  # the last leader seen, kept while there is none

    def next_deadline(self) -> float:
        """When ``check`` would next mark a node down or without feed (monotonic)."""
        deadlines = [
            v.received + self.down_after
            if v.received is not None
            else v.added + self.first_feed_grace
            for v in self.nodes.values()
            if not v.down and not (v.received is None and v.no_feed_reported)
        ]
        return min(deadlines, default=math.inf)

    def current_leader(self) -> str | None:
        """Among live nodes saying ``role: leader``, the one of the highest term."""
        best: tuple[int, str] | None = None
        for view in self.up_nodes():
            status = view.status or {}
            if status.get("role") == "leader":
                term = status.get("term")
                if not _is_int(term):
                    term = -1
                if best is None or term > best[0]:
                    best = (term, view.node)
        return best[1] if best else None

    def _node_events(self, view: NodeView, events: Any) -> None:
        if not isinstance(events, list):
            return
        fresh = []
        for entry in events:
            if not isinstance(entry, Mapping):
                continue
            seq, when = entry.get("seq"), entry.get("time")
            if not _is_number(seq) or not _is_number(when):
                continue
            mark = (float(when), float(seq))
            if mark > view.event_mark:
                fresh.append((mark, entry))
        fresh.sort(key=lambda item: item[0])
        for mark, entry in fresh:
            text = entry.get("text")
            kind = entry.get("kind")
            self._add(
                Event(
                    mark[0],
                    view.node,
                    _without_name(text, view) if isinstance(text, str) else str(kind or "event"),
                    kind if isinstance(kind, str) else "",
                    "node",
                )
            )
            view.event_mark = mark

    def _event(self, node: str, text: str, kind: str) -> None:
        self._add(Event(self.wall(), node, text, kind, "watch"))

    def _add(self, event: Event) -> None:
        # In time order, not arrival order: a node's first message brings its
        # last ~20 events, which interleave with the other nodes'.
        bisect.insort(self.events, event, key=lambda e: e.time)
        del self.events[:-MAX_EVENTS]

    # ------------------------------------------------------------------
    # Views

    def rows(self, now: float | None = None) -> list[dict[str, Any]]:
        """One dict per node (sorted by address): what the table shows."""
        now = self.clock() if now is None else now
        leader = self.current_leader()
        rows = []
        for view in sorted(self.nodes.values(), key=lambda v: _sort_key(v.node)):
            s = view.status or {}
            state = view.state(now, self.first_feed_grace)
            role = s.get("role") if isinstance(s.get("role"), str) else None
            rows.append(
                {
                    "node": view.node,
                    "state": state,
                    "role": role,
                    "leader": view.node == leader,
                    "term": _field(s, "term", int),
                    "commit_index": _field(s, "commit_index", int),
                    "applied_index": _field(s, "applied_index", int),
                    "age_s": None if view.received is None else round(now - view.received, 3),
                    "models": _field(s, "models", int),
                    "requests_per_s": _field(s, "requests_per_s", float),
                    "http_requests_per_s": _field(s, "http_requests_per_s", float),
                    "p99_ms": _field(s, "p99_ms", float),
                    "trainer": _field(s, "trainer", str),
                }
            )
        return rows

    def trainings(self) -> list[dict[str, Any]]:
        """Trainings in progress reported by live nodes, one per id (the leader's first)."""
        leader = self.current_leader()
        found: dict[str, dict[str, Any]] = {}
        views = sorted(self.up_nodes(), key=lambda v: (v.node != leader, -(v.received or 0)))
        for view in views:
            entries = (view.status or {}).get("trainings")
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, Mapping) and entry.get("id") is not None:
                    found.setdefault(str(entry["id"]), {**entry, "node": view.node})
        return list(found.values())

    def snapshot(self, now: float | None = None, events: int = 20) -> dict[str, Any]:
        """Everything shown, as JSON-able data (``--json``)."""
        return {
            "time": self.wall(),
            "leader": self.current_leader(),
            "nodes": self.rows(now),
            "trainings": self.trainings(),
            "events": [
                {"time": e.time, "node": e.node, "kind": e.kind, "text": e.text, "source": e.source}
                for e in self.events[-events:]
            ],
            "skipped_messages": self.skipped,
        }


def _without_name(text: str, view: NodeView) -> str:
    """The event text without a leading node id: the node column shows it."""
    name = (view.status or {}).get("node")
    for prefix in (view.node, name):
        if isinstance(prefix, str) and prefix and text.startswith(prefix):
            rest = text[len(prefix) :].lstrip(": ")
            if rest:
                return rest
    return text


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _field(status: Mapping[str, Any] | None, key: str, kind: type = object) -> Any:
    """``status[key]`` if it has the expected type, else None (shown "-")."""
    value = (status or {}).get(key)
    if kind is int:
        return value if _is_int(value) else None
    if kind is float:
        return float(value) if _is_number(value) else None
    if kind is str:
        return value if isinstance(value, str) else None
    return value


def _sort_key(node: str) -> tuple[str, int]:
    try:
        host, port = parse_address(node)
    except ValueError:
        return (node, 0)
    return (host, port)


# --------------------------------------------------------------------------
# Sockets


class Feed:
    """One SUB socket per watched node, on its status PUB endpoint."""

    def __init__(
        self,
        state: WatchState,
        context: zmq.Context | None = None,
        keys: ClientKeys | None = None,
    ) -> None:
        self.state = state
        self.keys = keys  # CURVE to the PUBs; None: plaintext (--insecure nodes)
        self.context = context or zmq.Context.instance()
        self.poller = zmq.Poller()
        self.sockets: dict[str, zmq.Socket] = {}
        self.by_socket: dict[zmq.Socket, str] = {}
        self.connect_new()

    def connect_new(self) -> None:
        for key, view in list(self.state.nodes.items()):
            if key in self.sockets:
                continue
            sock = self.context.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 100)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
            sock.setsockopt(zmq.RECONNECT_IVL, 100)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
            sock.setsockopt(zmq.SUBSCRIBE, STATUS_TOPIC)
            make_client(sock, self.keys)
            sock.connect(view.endpoint)
            self.sockets[key] = sock
            self.by_socket[sock] = key
            self.poller.register(sock, zmq.POLLIN)

    def pump(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for messages, take all queued; returns how many."""
        count = 0
        ready = dict(self.poller.poll(max(0, int(timeout * 1000))))
        for sock in ready:
            key = self.by_socket[sock]
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.state.ingest(key, frames)
                count += 1
        if len(self.state.nodes) > len(self.sockets):
            self.connect_new()
        return count

    def close(self) -> None:
        for sock in self.sockets.values():
            self.poller.unregister(sock)
            sock.close(linger=0)
        self.sockets.clear()
        self.by_socket.clear()


# --------------------------------------------------------------------------
# Rendering


def render(
    state: WatchState,
    now: float | None = None,
    *,
    width: int = 80,
    height: int | None = 24,
) -> RenderableType:
    """The console view: header, node table, trainings, events; fits ``width`` x ``height``.

    ``height`` None: no limit (plain snapshots), showing the last 10 events.
    """
    now = state.clock() if now is None else now
    rows = state.rows(now)
    trainings = state.trainings()
    leader = next((r for r in rows if r["leader"]), None)

    header = Text(no_wrap=True, overflow="ellipsis")
    header.append("zmqnode watch", style="bold")
    up = sum(r["state"] == "up" for r in rows)
    header.append(f"  {up}/{len(rows)} up", style="green" if up == len(rows) else "bold red")
    if leader:
        header.append("  leader ")
        header.append(leader["node"], style="bold green")
        header.append(f" term {_cell(leader['term'])}")
    else:
        header.append("  no leader", style="bold red")
    header.append("  " + datetime.fromtimestamp(state.wall()).strftime("%H:%M:%S"), style="dim")
    if state.skipped:
        header.append(f"  {state.skipped} bad msg", style="yellow")

    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=0,  # the box puts one space between columns: 11 columns in 80
        header_style="bold",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("node", "left"),
        ("role", "left"),
        ("term", "right"),
        ("commit", "right"),
        ("applied", "right"),
        ("age", "right"),
        ("models", "right"),
        ("req/s", "right"),
        ("http/s", "right"),
        ("p99ms", "right"),
        ("trainer", "left"),
    )
    node_width = max((len(row["node"]) for row in rows), default=4)
    for name, justify in columns:
        table.add_column(
            name,
            justify=justify,
            no_wrap=True,
            overflow="ellipsis",
            min_width=node_width if name == "node" else None,
        )
    for row in rows:
        table.add_row(*_row_cells(row), style=_row_style(row))

    parts: list[RenderableType] = [header, table]
    used = 1 + 2 + len(rows)  # header, table head and rule, rows

    if height is None:
        training_lines, event_lines = len(trainings), 10
    else:
        room = max(0, height - used - 2)  # the two section titles
        training_lines = min(len(trainings), max(1, room // 3)) if trainings else 0
        event_lines = max(1, room - max(1, training_lines))

    # One Text per line, cut to the width with "…" (never wrapped).
    def line(*pieces: str | Text) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, piece in enumerate(pieces):
            text.append(" " if i else "")
            text.append(piece)
        text.truncate(width, overflow="ellipsis")
        return text

    parts.append(Text("trainings", style="bold underline"))
    if trainings:
        for entry in trainings[:training_lines]:
            job_id = str(entry.get("id"))
            job_id = job_id if len(job_id) <= 12 else job_id[:11] + "…"
            parts.append(line(job_id.ljust(12), _training_text(entry)))
        if len(trainings) > training_lines:
            parts.append(Text(f"+{len(trainings) - training_lines} more", style="dim"))
    else:
        parts.append(Text("none in progress", style="dim"))

    parts.append(Text("events", style="bold underline"))
    events = state.events[-event_lines:] if event_lines else []
    node_width = max((len(e.node) for e in events), default=0)
    for event in events:
        parts.append(
            line(
                Text(datetime.fromtimestamp(event.time).strftime("%H:%M:%S"), style="dim"),
                event.node.ljust(node_width),
                Text(event.text, style=_event_style(event)),
            )
        )
    if not events:
        parts.append(Text("none yet", style="dim"))
    return Group(*parts)


def _row_cells(row: Mapping[str, Any]) -> list[Text | str]:
    state = row["state"]
    if state == "up":
        role_label = ROLE_LABELS.get(row["role"], row["role"] or "-")
        if row["role"] == "leader" and not row["leader"]:
            role = Text("leader?", style="yellow")  # a stale leader of an older term
        elif row["leader"]:
            role = Text("leader", style="bold black on green")
        elif row["role"] in ("learner", "removed"):
            role = Text(role_label, style="cyan" if row["role"] == "learner" else "dim")
        else:
            role = Text(role_label)
    elif state == "down":
        role = Text("DOWN", style="bold white on red")
    else:
        role = Text(state, style="red" if state == "no feed" else "dim")
    trainer = row["trainer"]
    trainer_style = {"training": "cyan", "down": "red", "disabled": "dim", "starting": "yellow"}
    return [
        row["node"],
        role,
        _cell(row["term"]),
        _cell(row["commit_index"]),
        _cell(row["applied_index"]),
        "-" if row["age_s"] is None else _age(row["age_s"]),
        _cell(row["models"]),
        _rate(row["requests_per_s"]),
        _rate(row["http_requests_per_s"]),
        _ms(row["p99_ms"]),
        Text(trainer or "-", style=trainer_style.get(trainer or "", "")),
    ]


def _row_style(row: Mapping[str, Any]) -> str:
    if row["state"] in ("down", "no feed"):
        return "red"
    return "bold" if row["leader"] else ""


def _event_style(event: Event) -> str:
    if event.kind in ("down", "peer_down", "training_failed"):
        return "red"
    if event.kind == "leader_lost":
        return "yellow"
    if event.kind in ("up", "peer_up", "leader"):
        return "green"
    if event.kind in ("model_stored", "training_finished"):
        return "cyan"
    return ""


def _training_text(entry: Mapping[str, Any]) -> Text:
    rnd, rounds = entry.get("round"), entry.get("rounds")
    epoch, epochs = entry.get("epoch"), entry.get("epochs")
    text = Text(no_wrap=True, overflow="ellipsis")
    fraction = None
    if _is_number(epoch) and _is_number(epochs) and epochs > 0:
        fraction = min(1.0, max(0.0, epoch / epochs))
    elif _is_number(rnd) and _is_number(rounds) and rounds > 0:
        fraction = min(1.0, max(0.0, rnd / rounds))
    if fraction is not None:
        filled = round(fraction * 10)
        text.append("█" * filled, style="cyan")
        text.append("░" * (10 - filled), style="dim")
        text.append(f" {fraction * 100:3.0f}% ")
    words = []
    job_state = entry.get("state")
    if isinstance(job_state, str) and job_state != "training":
        words.append(job_state)  # preparing, committing
    if rnd is not None or rounds is not None:
        words.append(f"round {_cell(rnd)}/{_cell(rounds)}")
    if epoch is not None or epochs is not None:
        words.append(f"epoch {_cell(epoch)}/{_cell(epochs)}")
    text.append(" ".join(words))
    score = _score(entry.get("metrics"))
    if score:
        text.append(f" {score}", style="bold")
    elapsed = entry.get("elapsed_s")
    if _is_number(elapsed):
        text.append(f" {_age(elapsed)}", style="dim")
    return text


def _score(metrics: Any) -> str:
    if not isinstance(metrics, Mapping):
        return ""
    for key, label in (("val_accuracy", "acc"), ("val_r2", "R²"), ("val_loss", "val loss")):
        if _is_number(metrics.get(key)):
            return f"{label} {metrics[key]:.3f}"
    if _is_number(metrics.get("loss")):
        return f"loss {metrics['loss']:.3g}"
    return ""


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _age(seconds: float) -> str:
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    if seconds < 100:
        return f"{seconds:.0f}s"
    if seconds < 6000:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


# --------------------------------------------------------------------------
# Command


def run_watch(
    args: argparse.Namespace,
    nodes: list[str],
    out: Console | None = None,
    keys: ClientKeys | None = None,
) -> int:
    """Run ``watch`` until Ctrl-C (or one snapshot with ``--once``); returns the exit code."""
    out = out or Console(file=sys.stdout, highlight=False)
    state = WatchState(nodes, discover=getattr(args, "discover", True))
    feed = Feed(state, keys=keys)
    as_json = bool(getattr(args, "json", False))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        # SIGTERM leaves like Ctrl-C: terminal restored, sockets closed.
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread (tests): keep the default
        previous = None
    try:
        if getattr(args, "once", False):
            return _once(state, feed, out, as_json, args.wait)
        if out.is_terminal and not as_json:
            _live(state, feed, out)
        else:
            _periodic(state, feed, out, as_json, args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        feed.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _once(state: WatchState, feed: Feed, out: Console, as_json: bool, wait: float) -> int:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not state.all_heard():
        feed.pump(min(0.05, max(0.0, deadline - time.monotonic())))
    state.first_feed_grace = 0.0  # the wait is over: a node not heard has no feed
    state.check()
    _print_snapshot(state, out, as_json)
    heard = any(v.received is not None for v in state.nodes.values())
    return EXIT_OK if heard else EXIT_UNAVAILABLE


def _live(state: WatchState, feed: Feed, out: Console) -> None:
    with Live(
        console=out,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
        vertical_overflow="crop",
    ) as live:
        next_frame = 0.0
        while True:
            now = time.monotonic()
            # A frame every REFRESH_S, and at once when a node falls silent.
            if now >= next_frame or now >= state.next_deadline():
                state.check(now)
                width, height = out.size
                live.update(render(state, now, width=width, height=height), refresh=True)
                next_frame = now + REFRESH_S
            feed.pump(max(0.0, min(next_frame, state.next_deadline()) - time.monotonic()))


def _periodic(state: WatchState, feed: Feed, out: Console, as_json: bool, interval: float) -> None:
    start = time.monotonic()
    next_print = start + interval
    first = True
    while True:
        feed.pump(0.05)
        now = time.monotonic()
        state.check(now)  # also between snapshots, so that events are noticed in time
        # The first snapshot as soon as every node spoke (no blank table).
        if now >= next_print or (first and state.all_heard() and state.nodes):
            _print_snapshot(state, out, as_json)
            first = False
            next_print = now + interval


def _print_snapshot(state: WatchState, out: Console, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(state.snapshot()).decode() + "\n")
        sys.stdout.flush()
        return
    if not out.is_terminal:  # piped: plain text, and room for long host names
        out = Console(file=out.file, width=max(out.width, 100), highlight=False, color_system=None)
    out.print(render(state, width=out.width, height=None))
    out.print()
    out.file.flush()
