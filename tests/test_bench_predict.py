"""The load generator behind ``python -m bench predict`` counts what it measures.

Against the in-process echo server every request is answered and matched to
its id; against a server that answers out of order, with ERROR replies,
malformed replies, strays and one request it never answers, each outcome is
counted where it belongs. Waits are the harness's own deadlines (no sleeps).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
import zmq

from bench.loadgen import (
    LoadGenerator,
    RequestTemplate,
    echo_server,
    echo_template,
    run_load,
)
from zmqnode.transport import wire


def _template(rows: int = 1) -> RequestTemplate:
    x = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
    desc, blob = wire.array_to_frame(x)
    return RequestTemplate.make({"type": "PREDICT", "model_id": "m1", "inputs": desc}, [blob])


def _serve(target: Callable[..., None], endpoint: str) -> Iterator[str]:
    ctx = zmq.Context()
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=target, args=(endpoint, stop, ready, ctx), daemon=True)
    thread.start()
    assert ready.wait(10), "server did not start"
    try:
        yield endpoint
    finally:
        stop.set()
        thread.join(10)
        ctx.term()


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[str]:
    yield from _serve(echo_server, f"ipc://{tmp_path}/echo.sock")


def test_template_splices_the_id_into_a_valid_header() -> None:
    t = _template()
    h = orjson.loads(t.header(42))
    assert h["id"] == "lg000000000042"
    assert h["type"] == "PREDICT" and h["model_id"] == "m1" and h["v"] == 1
    assert h["inputs"] == {"dtype": "float32", "shape": [1, 2], "frame": 0}
    header, blobs = wire.decode([t.header(7), *t.blobs])
    assert header["id"] == "lg000000000007" and len(blobs) == 1
    assert orjson.loads(echo_template(t).header(3))["status"] == "OK"


@pytest.mark.parametrize("in_flight,sockets", [(20, None), (20, 3), (1, None)])
def test_every_request_is_answered_and_counted(echo: str, in_flight: int, sockets) -> None:
    with LoadGenerator([echo], echo_template(_template()), in_flight, sockets=sockets) as gen:
        first = gen.run(requests=300, timeout=5)
        second = gen.run(requests=150, timeout=5)  # ids go on counting on the same sockets
    for r, n in ((first, 300), (second, 150)):
        assert (r.sent, r.ok, r.errors, r.unanswered, r.stray) == (n, n, 0, 0, 0)
        assert len(r.latencies_ms) == n and (r.latencies_ms > 0).all()
        assert r.error_codes == {}
        assert sum(r.per_endpoint.values()) == n
    s = first.summary()
    assert s["throughput_rps"] > 0 and s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]


@pytest.mark.parametrize("sockets", [1, 5])
def test_no_wakeup_is_missed_between_runs(echo: str, sockets: int) -> None:
    # ZeroMQ signals a socket's FD only for a reader that saw its pipe empty; a run
    # that ends right after its last reply must leave the next run's replies waking
    # it. With the sweep at 5 s, one missed wake-up would show as a 5 s latency.
    with LoadGenerator([echo], echo_template(_template()), 5, sockets=sockets) as gen:
        gen.sweep_seconds = 5.0
        results = [gen.run(requests=n, timeout=10) for n in (1, 5, 7, 5, 20, 1, 5)]
    for r in results:
        assert r.errors == 0 and r.ok == r.sent
        # A reply the sweep had to find is counted, never lost: it is the only
        # kind that may wait as long as the sweep. (Seen once in CI: 5 of 20.)
        slow = int((r.latencies_ms >= 2500).sum())
        assert slow <= r.missed_wakeups


def test_big_requests_and_duration(echo: str) -> None:
    # 10,000 rows: the blob goes zero-copy and the echoed one into recv_into's small buffer.
    r = run_load([echo], echo_template(_template(10_000)), 4, requests=40, timeout=5)
    assert (r.sent, r.ok, r.errors) == (40, 40, 0)
    r = run_load([echo], echo_template(_template()), 10, duration=0.2, timeout=5)
    assert r.sent >= 10 and r.ok == r.sent and r.errors == 0


TOTAL = 300
STRAYS_BELOW = TOTAL - 30


def _faulty_server(endpoint: str, stop: threading.Event, ready: threading.Event, ctx) -> None:
    """Answers in batches in reverse order. By request number n (the id's digits):
    n % 7 == 0 -> ERROR BAD_INPUT; n % 11 == 0 -> OK without its blob (malformed);
    n == 5 -> never answered; n % 13 == 0 and n < STRAYS_BELOW -> also a stray reply
    with an unknown id and a duplicate of this one (not near the end: a socket with
    nothing outstanding is not read any more). Everything else: OK with one blob."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    ready.set()
    while not stop.is_set():
        if not sock.poll(50):
            continue
        batch = []
        while True:
            try:
                batch.append(sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        for frames in reversed(batch):
            routing, body = wire.split_envelope(frames)
            header, _ = wire.decode(body)
            n = int(header["id"][2:])
            if n == 5:
                continue
            if n % 7 == 0:
                reply = [orjson.dumps(wire.error_reply(header, wire.ErrorCode.BAD_INPUT, "no"))]
            elif n % 11 == 0:
                reply = [orjson.dumps(wire.ok_reply(header))]
            else:
                reply = [orjson.dumps(wire.ok_reply(header, node="x")), b"\x01" * 8]
            sock.send_multipart([*routing, b"", *reply])
            if n % 13 == 0 and n < STRAYS_BELOW:
                stray = wire.ok_reply({**header, "id": "someone-else"})
                sock.send_multipart([*routing, b"", orjson.dumps(stray), b"\x00" * 8])
                sock.send_multipart([*routing, b"", *reply])
    sock.close(0)


def test_errors_malformed_strays_and_unanswered_are_counted(tmp_path: Path) -> None:
    total = TOTAL
    ids = range(total)
    errors = [n for n in ids if n % 7 == 0 and n != 5]
    malformed = [n for n in ids if n % 11 == 0 and n % 7 != 0]
    strays = [n for n in ids if n % 13 == 0 and n < STRAYS_BELOW]
    for endpoint in _serve(_faulty_server, f"ipc://{tmp_path}/faulty.sock"):
        with LoadGenerator([endpoint], _template(), 10, sockets=4) as gen:
            r = gen.run(requests=total, timeout=0.5)
    assert r.sent == total
    assert r.unanswered == 1  # request 5
    assert r.error_codes == {
        "BAD_INPUT": len(errors),
        "MALFORMED": len(malformed),
        "UNANSWERED": 1,
    }
    assert r.errors == len(errors) + len(malformed) + 1
    assert r.ok == total - r.errors
    assert r.stray == 2 * len(strays)  # the unknown id and the duplicate
    assert len(r.latencies_ms) == total - 1


# -- python -m bench predict --http ---------------------------------------------------


def test_http_request_is_one_keep_alive_infer_call_and_lengths_are_read() -> None:
    from bench.predict_http import _content_length, infer_request

    raw = infer_request("127.0.0.1", 14000, "m1", np.array([[0, 1]], np.float32), "t0k")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v2/models/m1/infer HTTP/1.1\r\n")
    assert b"\r\nauthorization: Bearer t0k" in head
    assert _content_length(raw, len(head)) == len(body)
    assert orjson.loads(body)["inputs"] == [
        {"name": "inputs", "datatype": "FP32", "shape": [1, 2], "data": [0.0, 1.0]}
    ]
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"
    assert _content_length(answer, answer.index(b"\r\n\r\n")) == 12  # any case


@pytest.mark.process
def test_http_mode_measures_the_node_its_zeromq_path_and_the_echo(capsys) -> None:
    from bench.predict import main

    argv = ["--http", "--in-flight", "8", "--duration", "0.5", "--warmup-seconds", "0.2"]
    assert main([*argv, "--json"]) == 0
    result = orjson.loads(capsys.readouterr().out)

    assert set(result["scenarios"]) == {"http_follower", "zmq_follower", "echo"}
    assert result["targets"]["follower"] != result["leader"]
    for name, s in result["scenarios"].items():
        assert s["ok"] > 0 and s["errors"] == 0, (name, s)
        assert s["throughput_rps"] > 0 and 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
        assert s["in_flight"] == 8
        assert s["node_cpu_us_per_request"] > 0  # the node's, or the echo server's
    assert result["scenarios"]["http_follower"]["load_processes"] == 2
    ratios = result["ratios"]["follower"]
    assert ratios["http_over_echo_throughput"] > 0 and ratios["http_over_zmq_throughput"] > 0
    assert ratios["http_over_echo_p99"] > 0 and ratios["http_over_zmq_p99"] > 0
    assert isinstance(result["target_met"], bool) and result["target_ratio"] == 0.6
    assert {o["name"] for o in result["sample_answer"]["outputs"]} == {"label", "probabilities"}


# -- several implementations in one run (issue 18) ------------------------------------------


def test_impl_is_repeatable_and_takes_lists() -> None:
    import argparse

    from bench.predict import other_impls

    def others(impls: list[str], baseline: bool) -> list[str]:
        return other_impls(argparse.Namespace(impls=impls, impl=impls[0], baseline=baseline))

    assert others(["py", "go", "kotlin"], True) == ["go", "kotlin"]
    assert others(["kotlin"], True) == ["py"]  # the Python node to compare with
    assert others(["kotlin"], False) == []
    assert others(["kotlin", "go"], False) == ["go"]
    from bench.predict import main

    with pytest.raises(SystemExit):  # an unknown name, refused before anything starts
        main(["--impls", "py,rust"])
    with pytest.raises(SystemExit):  # a local cluster's choice only
        main(["--impl", "py", "--impl", "kotlin", "--nodes", "127.0.0.1:9000"])


@pytest.fixture
def kotlin_worker() -> None:
    from harness.ktbuild import KotlinBuildError, ensure_worker

    try:
        ensure_worker()
    except KotlinBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


@pytest.mark.process
@pytest.mark.kotlin
@pytest.mark.timeout(600)
def test_predict_impls_py_kotlin_baseline_measures_both_nodes_in_one_run(
    kotlin_worker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.predict import main

    # The Kotlin cluster first (the main one, with the echo rows), then a Python one.
    argv = ["--impl", "kotlin", "--impl", "py", "--baseline", "--no-seed", "--no-big"]
    argv += ["--requests", "300", "--warmup", "50", "--in-flight", "8", "--json"]
    assert main(argv) == 0
    result = orjson.loads(capsys.readouterr().out)

    assert result["impl"] == "kotlin"
    assert set(result["node_executables"].values()) == {"java"}  # the jar served
    assert list(result["by_impl"]) == ["kotlin", "py"]
    kt, py = result["zmqnode"], result["baseline"]["zmqnode_py"]
    assert result["by_impl"]["kotlin"] == kt and result["by_impl"]["py"] == py
    assert py["impl"] == "py"
    assert all(e.startswith("python") for e in py["node_executables"].values())
    for row in (kt, py, result["baseline"]["echo"]):
        assert row["requests"] == 300 and row["errors"] == 0, row
        assert row["throughput_rps"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    assert "node_loop_cpu_us_per_request" not in kt
    ratios = result["ratios"]
    assert set(ratios["by_impl"]) == {"kotlin"}
    assert ratios["by_impl"]["kotlin"]["impl_over_py_throughput"] > 0
    assert ratios["impl_over_py_p99"] == ratios["by_impl"]["kotlin"]["impl_over_py_p99"] > 0
    assert ratios["zmqnode_over_echo_throughput"] > 0
