"""``python -m bench failover``: kill -9 the leader under a prediction load.

A fresh 3-node cluster trains XOR; then a separate process (its own zmq
context) keeps ``--in-flight`` PREDICTs of that model in flight, spread over
all nodes, each with a deadline. While it runs:

1. a healthy period (``--healthy-seconds``): every node's term is read from
   its ``/status`` (monitor port = client port − 1000) before and, every
   0.25 s, during the period; any change is an election while healthy (the
   target is none). Election counters in ``/metrics`` (any series whose
   name says ``elections_won`` or ``campaigns``) are read too, when present.
2. ``--kills`` times: a write is acknowledged (warm path), the leader is
   SIGKILLed, and an IMPORT of a small model is retried with a fresh
   request id against the survivors until one acknowledges it (the method of
   ``bench/cluster_timings.py``: ``_write_once``); kill → that ack is the
   failover time. The killed node is then restarted and the run waits until
   it has applied everything the leader had committed at the ack.

The load process records every request it sends: a reply (OK, or an ERROR
code), a timeout it declared itself at the request's deadline (its socket is
then closed and the slot moves to the next node, Lazy Pirate), or a wrong
answer (outputs that are not XOR). A request with none of these when the
load stops, past its deadline plus a slack, is "hung"; the target is 0.
Throughput is OK replies per second over the whole run, and separately
over the healthy period and over the kill phase.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from harness.cluster import LocalCluster, wait_for
from zmqnode.ml.training import train
from zmqnode.transport import security, wire
from zmqnode.transport.security import ClientKeys

from . import monitor_view
from .cluster_timings import XOR_X, XOR_Y, _write_once

CONNECT_TIMEOUT = 0.2  # a slot whose node does not accept a connection by then moves on
HUNG_SLACK = 1.0  # a request unresolved this long after its deadline is hung
BUCKET = 0.1  # seconds per throughput bucket
RETURN_HOME = 1.0  # a slot moved off its node by a failure tries it again after this


# ---------------------------------------------------------------------------
# the prediction load (runs in its own process)


class _Slot:
    """One request slot of the prediction load: its node, socket and request."""

    __slots__ = ("home", "node", "moved_at", "sock", "state", "since", "rid", "sent_at", "deadline")

    def __init__(self, node: int) -> None:
        self.home = node
        self.node = node
        self.moved_at = 0.0
        self.sock: zmq.Socket | None = None
        self.state = "connecting"
        self.since = 0.0
        self.rid = ""
        self.sent_at = 0.0
        self.deadline = 0.0


def _load_main(
    nodes: list[str],
    model_id: str,
    in_flight: int,
    timeout: float,
    stop,
    ready,
    results,
    ok_by_node,
    keys: ClientKeys | None = None,
) -> None:
    """Closed-loop PREDICT load; puts one summary dict on ``results`` when ``stop`` is set."""
    ctx = zmq.Context()
    poller = zmq.Poller()
    desc, blob = wire.array_to_frame(XOR_X)
    expected = XOR_Y.astype(np.int64)
    slots = [_Slot(i % len(nodes)) for i in range(in_flight)]
    by_sock: dict[zmq.Socket, _Slot] = {}
    outstanding: dict[str, tuple[float, float]] = {}  # rid -> (sent_at, deadline)
    counts: dict[str, int] = {"sent": 0, "ok": 0, "timeout": 0, "wrong": 0, "late_replies": 0}
    errors: dict[str, int] = {}
    per_node_ok = [0] * len(nodes)
    latencies: list[float] = []
    events: list[tuple[float, str, str]] = []  # (time, outcome, node) for non-OK outcomes
    rejected_connects = 0
    late_timeouts = 0  # timeouts declared more than HUNG_SLACK after the deadline
    t_start = time.monotonic()
    ok_buckets: list[int] = []
    seq = 0

    def open_socket(slot: _Slot, now: float) -> None:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        security.make_client(sock, keys)
        sock.connect(f"tcp://{nodes[slot.node]}")
        slot.sock, slot.state, slot.since = sock, "connecting", now
        by_sock[sock] = slot
        poller.register(sock, zmq.POLLOUT)

    def close_socket(slot: _Slot) -> None:
        if slot.sock is not None:
            poller.unregister(slot.sock)
            del by_sock[slot.sock]
            slot.sock.close(linger=0)
            slot.sock = None

    def move_on(slot: _Slot, now: float, node: int | None = None) -> None:
        close_socket(slot)
        slot.node = (slot.node + 1) % len(nodes) if node is None else node
        slot.moved_at = now
        open_socket(slot, now)

    def send(slot: _Slot, now: float) -> None:
        nonlocal seq
        seq += 1
        rid = f"f{seq}"
        header = {
            "type": "PREDICT",
            "id": rid,
            "model_id": model_id,
            "inputs": desc,
            "timeout_ms": int(timeout * 1000),
        }
        try:
            slot.sock.send_multipart([b"", *wire.encode(header, [blob])], zmq.NOBLOCK)
        except zmq.Again:  # connection lost between POLLOUT and send: nothing was sent
            move_on(slot, now)
            return
        slot.rid, slot.sent_at, slot.deadline = rid, now, now + timeout
        slot.state = "waiting"
        outstanding[rid] = (now, slot.deadline)
        counts["sent"] += 1
        poller.modify(slot.sock, zmq.POLLIN)

    def count_ok(now: float) -> None:
        b = int((now - t_start) / BUCKET)
        while len(ok_buckets) <= b:
            ok_buckets.append(0)
        ok_buckets[b] += 1

    now = time.monotonic()
    for slot in slots:
        open_socket(slot, now)
    ready.set()
    stopping = False
    while True:
        if not stopping and stop.is_set():
            stopping = True
        if stopping and not outstanding:
            break
        ready_socks = dict(poller.poll(10))
        now = time.monotonic()
        for slot in slots:
            ev = ready_socks.get(slot.sock, 0) if slot.sock is not None else 0
            if slot.state == "connecting":
                if stopping:
                    continue
                if ev & zmq.POLLOUT:
                    send(slot, now)
                elif now - slot.since > CONNECT_TIMEOUT:
                    rejected_connects += 1
                    move_on(slot, now)
            elif slot.state == "waiting":
                if ev & zmq.POLLIN:
                    frames = slot.sock.recv_multipart()
                    try:
                        header, blobs = wire.decode(frames[1:], require_id=False)
                    except wire.ProtocolError:
                        header, blobs = {"id": "", "status": "ERROR", "code": "UNREADABLE"}, []
                    if header.get("id") != slot.rid:
                        counts["late_replies"] += 1
                        continue
                    outstanding.pop(slot.rid, None)
                    node = nodes[slot.node]
                    if header.get("status") == "OK":
                        try:
                            out = wire.read_array(header, blobs, "outputs", max_bytes=1 << 20)
                            good = np.array_equal(out.astype(np.int64).ravel(), expected)
                        except wire.ProtocolError:
                            good = False
                        if good:
                            counts["ok"] += 1
                            per_node_ok[slot.node] += 1
                            ok_by_node[slot.node] += 1
                            latencies.append((now - slot.sent_at) * 1000)
                            count_ok(now)
                        else:
                            counts["wrong"] += 1
                            events.append((now, "wrong", node))
                    else:
                        code = str(header.get("code") or header.get("status"))
                        errors[code] = errors.get(code, 0) + 1
                        events.append((now, code, node))
                    if (
                        slot.node != slot.home
                        and now - slot.moved_at > RETURN_HOME
                        and not stopping
                    ):
                        move_on(slot, now, slot.home)  # keep the load spread over all nodes
                    else:
                        slot.state = "connecting"
                        slot.since = now
                        poller.modify(slot.sock, zmq.POLLOUT)
                elif now > slot.deadline:
                    outstanding.pop(slot.rid, None)
                    counts["timeout"] += 1
                    if now > slot.deadline + HUNG_SLACK:
                        late_timeouts += 1
                    events.append((now, "timeout", nodes[slot.node]))
                    slot.state = "connecting"
                    if stopping:
                        close_socket(slot)
                        slot.state = "stopped"
                    else:
                        move_on(slot, now)  # Lazy Pirate: drop what zmq queued, next node
        # Any request the slot bookkeeping lost track of would stay here.
        if stopping:
            stale = [r for r, (_, d) in outstanding.items() if now > d + HUNG_SLACK]
            if stale and len(stale) == len(outstanding):
                break
    t_end = time.monotonic()
    now = time.monotonic()
    hung = sum(1 for _, d in outstanding.values() if now > d + HUNG_SLACK)
    for slot in slots:
        close_socket(slot)
    ctx.destroy(linger=0)
    lat = sorted(latencies) or [0.0]
    results.put(
        {
            "t_start": t_start,
            "t_end": t_end,
            "sent": counts["sent"],
            "ok": counts["ok"],
            "errors": errors,
            "timeouts": counts["timeout"],
            "wrong_answers": counts["wrong"],
            "late_replies": counts["late_replies"],
            "hung": hung + late_timeouts,
            "late_timeouts": late_timeouts,
            "unresolved_at_end": len(outstanding),
            "connect_rejections": rejected_connects,
            "per_node_ok": dict(zip(nodes, per_node_ok, strict=True)),
            "p50_ms": round(lat[len(lat) // 2], 3),
            "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3),
            "ok_buckets": ok_buckets,
            "events": events[:5000],
        }
    )


class PredictLoad:
    """The load process: ``start()``, ``stop()`` → its summary."""

    def __init__(
        self,
        nodes: list[str],
        model_id: str,
        in_flight: int,
        timeout: float,
        keys: ClientKeys | None = None,
    ) -> None:
        mp = multiprocessing.get_context("spawn")
        self._stop = mp.Event()
        self._ready = mp.Event()
        self._results = mp.Queue()
        # OK replies per node so far, shared with the load process (no lock:
        # one writer, and readers only ask "is it above zero yet?").
        self.ok_by_node = mp.Array("q", len(nodes), lock=False)
        self.proc = mp.Process(
            target=_load_main,
            args=(
                nodes,
                model_id,
                in_flight,
                timeout,
                self._stop,
                self._ready,
                self._results,
                self.ok_by_node,
                keys,
            ),
            daemon=True,
        )
        self.timeout = timeout

    def start(self) -> None:
        self.proc.start()
        if not self._ready.wait(30):
            self.proc.kill()
            raise RuntimeError("the prediction load process did not start")

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        try:
            return self._results.get(timeout=self.timeout + HUNG_SLACK + 30)
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()


def _rate(result: dict[str, Any], t0: float, t1: float) -> float:
    """OK replies per second between monotonic times ``t0`` and ``t1``."""
    buckets = result["ok_buckets"]
    a = max(0, int((t0 - result["t_start"]) / BUCKET))
    b = min(len(buckets), int((t1 - result["t_start"]) / BUCKET))
    span = (b - a) * BUCKET
    return round(sum(buckets[a:b]) / span, 1) if span > 0 else 0.0


# ---------------------------------------------------------------------------
# the run


def terms(cluster: LocalCluster) -> dict[str, int]:
    return {nid: int(monitor_view.status(nid)["term"]) for nid in cluster.procs}


def _views(cluster: LocalCluster) -> dict[str, dict[str, Any]]:
    """Role, term, leader and indexes of every live node, from a STATUS request.

    Not from the monitor's /status: that view is republished once per tick,
    so just after an election it can still show the previous term.
    """
    keys = ("role", "term", "leader", "commit_index", "applied_index")
    out = {}
    for nid in cluster.procs:
        st = cluster.status(nid)
        out[nid] = {k: st.get(k) for k in keys}
    return out


def election_counters(cluster: LocalCluster) -> int | None:
    """Sum over live nodes of /metrics series counting elections, if the node has any.

    The metric names are the node's business and change; any series whose name
    mentions ``elections_won`` or ``campaigns`` counts. None if there is none.
    """
    total, found = 0, False
    for nid in cluster.procs:
        for key, value in monitor_view.metrics(nid).items():
            if "elections_won" in key or "campaigns" in key:
                total += int(value)
                found = True
    return total if found else None


def run_failover(
    kills: int = 10,
    in_flight: int = 64,
    healthy_seconds: float = 5.0,
    request_timeout: float = 1.0,
    nodes: int = 3,
    log=print,
) -> dict[str, Any]:
    log = log or (lambda *_: None)
    write_model = train(XOR_X, XOR_Y).to_bytes()
    with tempfile.TemporaryDirectory(prefix="zmqnode-bench-failover-") as tmp:
        cluster = LocalCluster(Path(tmp), n=nodes)
        cluster.start()
        load = None
        try:
            cluster.leader(timeout=30)
            with cluster.client(timeout=30) as c:
                model_id = c.train(XOR_X, XOR_Y)["model_id"]
            wait_for(
                lambda: all(monitor_view.status(n)["models"] >= 1 for n in cluster.ids),
                30,
                "every node to apply the XOR model",
            )
            load = PredictLoad(
                cluster.ids, model_id, in_flight, request_timeout, cluster.client_keys()
            )
            load.start()
            # Let the load reach every node before the healthy window opens.
            wait_for(
                lambda: all(load.ok_by_node),
                30,
                "answered predictions from every node",
            )

            # -- healthy period: the term must not move ---------------------
            healthy_t0 = time.monotonic()
            terms_before = terms(cluster)
            won_before = election_counters(cluster)
            term_changes: list[dict[str, Any]] = []
            end = healthy_t0 + healthy_seconds
            while time.monotonic() < end:
                now_terms = terms(cluster)
                if now_terms != terms_before:
                    term_changes.append(
                        {"t": round(time.monotonic() - healthy_t0, 2), "terms": now_terms}
                    )
                time.sleep(0.25)  # sampling period of the term monitor
            terms_after = terms(cluster)
            healthy_t1 = time.monotonic()
            won_after = election_counters(cluster)
            healthy = {
                "seconds": round(healthy_t1 - healthy_t0, 2),
                "terms_before": terms_before,
                "terms_after": terms_after,
                "term_changes": term_changes,
                "elections": max(terms_after.values()) - max(terms_before.values()),
                "election_counters_delta": (
                    None if won_before is None or won_after is None else won_after - won_before
                ),
            }
            log(f"healthy {healthy['seconds']} s: {healthy['elections']} elections")

            # -- kills -------------------------------------------------------
            failovers: list[float] = []
            terms_per_kill: list[int] = []
            catch_up: list[float] = []
            kill_detail: list[dict[str, Any]] = []
            kills_t0 = time.monotonic()
            for i in range(kills):
                leader = cluster.leader(timeout=30)
                others = [n for n in cluster.ids if n != leader]
                _write_once(others, write_model, time.monotonic() + 10, cluster.keys)  # warm path
                before = _views(cluster)
                t = time.monotonic()
                cluster.kill(leader)
                done = _write_once(others, write_model, t + 30, cluster.keys)
                failovers.append(done - t)
                new_leader = cluster.leader(timeout=30, among=others)
                after = _views(cluster)
                term0 = before[leader]["term"]
                terms_per_kill.append(after[new_leader]["term"] - term0)
                kill_detail.append(
                    {
                        "killed": leader,
                        "killed_term": term0,
                        "before": before,
                        "after": after,
                        "new_leader": new_leader,
                    }
                )
                target = monitor_view.status(new_leader)["commit_index"]
                t_restart = time.monotonic()
                cluster.start(leader)
                wait_for(
                    lambda leader=leader, target=target: (
                        (s := monitor_view.status(leader))["applied_index"] >= target
                        and s["leader"]
                    ),
                    60,
                    f"the restarted node {leader} to catch up to index {target}",
                )
                catch_up.append(time.monotonic() - t_restart)
                kill_detail[-1]["_window"] = (leader, t, time.monotonic())
                log(
                    f"kill {i + 1}/{kills}: {leader} → next ack {failovers[-1] * 1000:.0f} ms, "
                    f"{terms_per_kill[-1]} term(s), caught up in {catch_up[-1]:.2f} s"
                )
            kills_t1 = time.monotonic()
            load_result = load.stop()
            load = None
        finally:
            if load is not None:
                load.stop()
            cluster.stop()

    load_summary = {k: v for k, v in load_result.items() if k not in ("ok_buckets", "events")}
    duration = load_result["t_end"] - load_result["t_start"]
    load_summary["seconds"] = round(duration, 2)
    load_summary["throughput_rps"] = round(load_result["ok"] / duration, 1) if duration else 0.0
    load_summary["throughput_healthy_rps"] = _rate(load_result, healthy_t0, healthy_t1)
    load_summary["throughput_kill_phase_rps"] = _rate(load_result, kills_t0, kills_t1)
    load_summary["non_ok_by_node"] = _by_node(load_result["events"])
    # A request to the node being killed, sent before the kill or while it was
    # restarting, may time out; anything else not OK is a finding.
    windows = [d.pop("_window") for d in kill_detail]
    load_summary["non_ok_on_live_nodes"] = _by_node(
        [
            e
            for e in load_result["events"]
            if not any(
                e[2] == node and t0 <= e[0] <= t1 + request_timeout + HUNG_SLACK
                for node, t0, t1 in windows
            )
        ]
    )
    for key in ("t_start", "t_end"):
        load_summary.pop(key)
    ms = [round(v * 1000, 1) for v in failovers]
    return {
        "nodes": nodes,
        "kills": kills,
        "in_flight": in_flight,
        "request_timeout_s": request_timeout,
        "failover_kill_to_ack_ms": {
            "median": round(statistics.median(ms), 1) if ms else None,
            "max": max(ms) if ms else None,
            "runs": ms,
            "target_median": 500.0,
        },
        "terms_per_failover": terms_per_kill,
        "restart_catch_up_s": [round(v, 2) for v in catch_up],
        "kill_detail": kill_detail,
        "healthy": healthy,
        "load": load_summary,
        "run_id": uuid.uuid4().hex[:8],
    }


def _by_node(events: list[tuple[float, str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for _, kind, node in events:
        out.setdefault(node, {})
        out[node][kind] = out[node].get(kind, 0) + 1
    return out


def main(argv: list[str]) -> int:
    import argparse
    import json
    import os
    import platform

    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(prog="python -m bench failover", description=__doc__)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--in-flight", type=int, default=64, help="PREDICTs in flight (all nodes)")
    p.add_argument("--healthy-seconds", type=float, default=5.0)
    p.add_argument("--request-timeout", type=float, default=1.0, help="per PREDICT, seconds")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    console = Console(stderr=True)
    result = run_failover(
        args.kills, args.in_flight, args.healthy_seconds, args.request_timeout, log=console.log
    )
    result["machine"] = {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    fo, load, healthy = result["failover_kill_to_ack_ms"], result["load"], result["healthy"]
    table = Table(
        title=f"kill -9 leader under load: {args.kills} kills, {args.in_flight} PREDICTs in flight"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("detail")
    table.add_row(
        "kill → next ack, median",
        f"{fo['median']:.0f} ms",
        f"target ≤ 500 ms; max {fo['max']:.0f} ms; runs {fo['runs']}",
    )
    table.add_row("terms per failover", str(result["terms_per_failover"]), "1 = one election")
    table.add_row(
        "elections while healthy",
        str(healthy["elections"]),
        f"{healthy['seconds']} s under load; terms {list(healthy['terms_before'].values())} → "
        f"{list(healthy['terms_after'].values())}; "
        f"election counters in /metrics Δ {healthy['election_counters_delta']}",
    )
    table.add_row(
        "predictions OK/s",
        f"{load['throughput_rps']:.0f}",
        f"healthy {load['throughput_healthy_rps']:.0f}/s, during kills "
        f"{load['throughput_kill_phase_rps']:.0f}/s; p50 {load['p50_ms']:.1f} ms, "
        f"p99 {load['p99_ms']:.1f} ms",
    )
    table.add_row(
        "prediction errors",
        str(sum(load["errors"].values()) + load["timeouts"] + load["wrong_answers"]),
        f"timeouts {load['timeouts']}, error replies {load['errors']}, "
        f"wrong answers {load['wrong_answers']}; by node {load['non_ok_by_node']}",
    )
    live = load["non_ok_on_live_nodes"]
    table.add_row(
        "non-OK on live nodes",
        str(sum(sum(v.values()) for v in live.values())),
        f"not OK from a node that was not the one killed/restarting: {live}",
    )
    table.add_row(
        "hung requests",
        str(load["hung"]),
        f"of {load['sent']} sent; target 0 (no reply and no recorded timeout)",
    )
    (Console() if sys.stdout.isatty() else Console(width=140)).print(table)
    return 0
