"""Every port of a real node under random and mutated messages (short run).

The logic lives in ``tests/fuzz_ports.py``; ``python -m tests.fuzz_ports
--messages 100000`` is the long run. Here each socket gets a few thousand
messages, in batches, with a health check after each batch (alive, STATUS,
a correct XOR PREDICT and HTTP infer, term unchanged, same trainer process,
RSS bounded).

Each socket runs under the fixed seeds of tests/conftest.py; ``--fuzz-seed
random`` draws a new one and ``--fuzz-seed N`` replays one. The seed is in
the test id, in every assertion message and, on failure, in a line with the
command that replays it. "oip" is the HTTP inference port (Open Inference
Protocol requests, valid-looking and mutated, and garbage). The HTTP
monitor also gets hypothesis-generated
structured requests (methods, paths, query strings, headers, bodies), and
the trainer process alone gets jobs whose ``reply_to`` is not an endpoint.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import orjson
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cluster import ROOT, pick_base_ports
from tests.fuzz_ports import (
    BAD_REPLY_TO,
    HTTP_HEADERS,
    HTTP_METHODS,
    HTTP_PATHS,
    SOCKETS,
    FuzzTarget,
    _http_exchange,
    check_http_response,
    http_request,
    run,
)
from zmqnode.training.protocol import Job, decode_result, encode_job
from zmqnode.training.trainer import valid_endpoint

MESSAGES = {
    "client": 3000,
    "raft": 3000,
    "trainer": 3000,
    "results": 3000,
    "http": 1500,
    "oip": 3000,
    "handshake": 600,
}
BATCH = 1000

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    t = FuzzTarget(tmp_path_factory.mktemp("fuzz_ports"))
    t.start()
    try:
        yield t
    finally:
        t.stop()


@pytest.mark.process
@pytest.mark.parametrize("sock", SOCKETS)
def test_port_survives_fuzzing(target, fuzz_seed, sock):
    totals = run(target, fuzz_seed, {sock: MESSAGES[sock]}, batch=BATCH)
    st = totals[sock]
    assert st.sent == MESSAGES[sock]
    # every answerable message was answered (fuzz_client/fuzz_http raise otherwise)
    assert st.replied == st.answerable, f"seed {fuzz_seed}: {st}"
    if sock == "client":
        assert st.answerable > 0.8 * st.sent
        codes = {k.split(":", 1)[1] for k in st.outcomes}
        # the mutator reaches both sides of the client path
        assert "OK" in codes and "MALFORMED" in codes and "BAD_REQUEST" in codes, st.outcomes
    if sock == "http":
        assert st.answerable > 0.4 * st.sent
    if sock == "oip":
        assert st.answerable > 0.4 * st.sent
        # the mutator reaches the token check, the parser, the model and the transport
        assert {"200", "400", "401", "404"} <= set(st.outcomes), st.outcomes
        assert any(k.startswith("garbage:4") for k in st.outcomes), st.outcomes
    if sock == "handshake":
        # libzmq parsed the junk and hung up on it (a cut-short greeting
        # merely waits for more bytes), and health held after every batch.
        assert st.outcomes["closed"] + st.outcomes["reset"] > 0.5 * st.sent, st.outcomes


# -- the monitor under hypothesis-generated structured requests -------------

FRAMING_HEADERS = ("Content-Length", "Transfer-Encoding")  # http_request sets the framing
_token = st.text(alphabet="abcxyz019_-.~%+=[]/", max_size=12)
_header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200
)
_requests = st.builds(
    http_request,
    method=st.sampled_from([*HTTP_METHODS[:8], "QUERY"]),
    path=st.one_of(st.sampled_from(HTTP_PATHS), _token.map(lambda t: "/" + t)),
    query=st.lists(st.tuples(_token, _token), max_size=4),
    headers=st.lists(
        st.tuples(
            st.sampled_from([h for h in HTTP_HEADERS if h not in FRAMING_HEADERS])
            | st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True),
            _header_value,
        ),
        max_size=6,
    ),
    body=st.binary(max_size=3000),
)


@pytest.mark.process
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_requests)
def test_monitor_answers_structured_requests(target, raw):
    got = _http_exchange(target.port - 1000, raw, expect=True)
    status = check_http_response(raw, got)
    if raw.startswith(b"GET /status ") or raw.startswith(b"GET /metrics "):
        assert status == "200", got[:300]


@pytest.mark.process
def test_monitor_alive_after_structured_requests(target):
    target.check_health("hypothesis HTTP requests")


# -- the trainer process alone: jobs with a reply_to that is not an endpoint --


@pytest.mark.parametrize(
    "text",
    [
        *("127.0.0.1:9000", "", "tcp://", "tcp://*:1", "tcp://127.0.0.1:0", "tcp://h:99999"),
        *("TCP://h:1", "ipc:///tmp/x", "inproc://x", "tcp://a;b:5", "tcp://h:1\x00", "x" * 3000),
    ],
)
def test_bad_reply_to_is_not_an_endpoint(text):
    assert not valid_endpoint(text)


@pytest.mark.parametrize(
    "text", ["tcp://127.0.0.1:14000", "tcp://node-1.example:9", "tcp://[::1]:5"]
)
def test_good_reply_to_is_an_endpoint(text):
    assert valid_endpoint(text)


@pytest.mark.process
def test_trainer_drops_jobs_with_a_bad_reply_to_and_keeps_serving(tmp_path):
    """A bug the port fuzzer found: a SUB_TRAIN whose reply_to is not a ZeroMQ
    endpoint used to kill the trainer (push.connect raised)."""
    port = pick_base_ports(1)[0]
    bind, results = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"
    log = tmp_path / "trainer.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zmqnode.training.trainer",
            "--bind",
            bind,
            "--name",
            "t",
            "--log",
            str(log),
            "--insecure",
        ],
        cwd=ROOT,
    )
    ctx = zmq.Context()
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    try:
        pull.bind(results)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(bind)
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, dtype=np.float32)
        y = np.array([0, 1, 1, 0] * 8, dtype=np.int64)
        params = np.zeros(2 * 2 + 2 + 2 * 2 + 2, dtype=np.float32)  # 2-2-2 network

        def job(reply_to: str, name: str) -> list[bytes]:
            options = {"hidden_layers": [2], "epochs": 1}
            return encode_job(Job(name, 0, 0, reply_to, options, params, x, y))

        for i, bad in enumerate(BAD_REPLY_TO):
            if valid_endpoint(bad):
                continue  # a valid endpoint where nobody listens: trained, result dropped
            push.send_multipart(job(bad, f"bad{i}"))
        # The raw frames of the original report.
        push.send_multipart(
            [
                orjson.dumps(
                    {
                        "v": 1,
                        "type": "SUB_TRAIN",
                        "id": "a",
                        "job": "j",
                        "round": 0,
                        "chunk": 0,
                        "reply_to": "127.0.0.1:9000",
                        "params": {"dtype": "float32", "shape": [0], "frame": 0},
                    }
                ),
                b"",
            ]
        )
        push.send_multipart(job(results, "good"))
        assert pull.poll(30_000), "no result for the good job: " + log.read_text()[-2000:]
        result = decode_result(pull.recv_multipart())
        assert result.job_id == "good" and not result.missing_data, result
        assert proc.poll() is None, log.read_text()[-2000:]
        assert "is not a tcp://host:port endpoint" in log.read_text()
    finally:
        ctx.destroy(linger=0)
        proc.terminate()
        proc.wait(timeout=10)
