"""The Open Inference Protocol over HTTP on a real 3-node cluster (docs/HTTP.md).

One cluster for the module, started with small HTTP limits so the limit
tests take a second, not a minute: ``--max-request-bytes`` 200,000,
``--http-request-timeout`` 1 s, ``--http-idle-timeout`` 2 s. Three models are
trained through the ZeroMQ client: a classifier with class names, one with
integer classes and a regression.

- ``tritonclient.http`` (the client users bring) against the leader and a
  follower: health, metadata, inference with binary tensors (its default) and
  with JSON; the answers equal the ZeroMQ path's (``Client.predict``,
  ``Client.predict_proba``).
- Plain HTTP over ``http.client`` and raw sockets: every endpoint, HEAD, 405,
  404, the bearer token (401), bad requests (400 with ``{"error": ...}``),
  413, 408, idle connections, keep-alive and pipelining, clients that go
  away mid-request; after each, the node keeps serving.
- ``/metrics`` on the monitor port counts the HTTP requests.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from client import Client
from harness.cluster import LocalCluster, wait_for

pytestmark = [pytest.mark.conformance, pytest.mark.process]

MAX_REQUEST_BYTES = 200_000
REQUEST_TIMEOUT = 1.0
IDLE_TIMEOUT = 2.0
HTTP_OFFSET = 5000  # docs/HTTP.md: client port + 5000
DEADLINE = 15.0  # for one answer on two noisy cores


def http_port(node_id: str) -> int:
    return int(node_id.rsplit(":", 1)[1]) + HTTP_OFFSET


@dataclass
class Model:
    model_id: str
    x: np.ndarray  # rows to predict
    labels: np.ndarray | None  # the ZeroMQ path's answers (classifiers)
    probabilities: np.ndarray | None
    values: np.ndarray | None  # regression


@dataclass
class Env:
    cluster: LocalCluster
    leader: str
    follower: str
    token: str
    names: Model  # classes "setosa", "versicolor", "virginica"
    ints: Model  # classes 3, 7, 11
    regression: Model

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    @property
    def nodes(self) -> dict[str, str]:
        return {"leader": self.leader, "follower": self.follower}


def _data(seed: int, rows: int, cols: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, cols)).astype(np.float32)


def _train(c: Client, x: np.ndarray, y: np.ndarray, epochs: int = 40) -> str:
    return c.train(x, y, options={"hidden_layers": [8], "epochs": epochs}, timeout=60)["model_id"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    cluster = LocalCluster(
        tmp_path_factory.mktemp("http_inference"),
        n=3,
        extra_args=(
            "--max-request-bytes",
            str(MAX_REQUEST_BYTES),
            "--http-request-timeout",
            str(REQUEST_TIMEOUT),
            "--http-idle-timeout",
            str(IDLE_TIMEOUT),
        ),
    )
    with cluster.running():
        leader = cluster.leader()
        follower = next(n for n in cluster.ids if n != leader)
        assert cluster.keys is not None
        token = (cluster.keys / "http.token").read_text().strip()
        c = cluster.client(leader, timeout=30)

        x = _data(1, 150, 2)
        angle = np.arctan2(x[:, 1], x[:, 0])
        names = np.array(["setosa", "versicolor", "virginica"])[
            np.digitize(angle, [-np.pi / 3, np.pi / 3])
        ]
        ints = np.array([3, 7, 11], dtype=np.int64)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0)]
        xr = _data(2, 150, 3)
        yr = (2 * xr[:, 0] - xr[:, 1] + 0.5 * xr[:, 2]).astype(np.float32)
        models = []
        for y, xs in ((names, x), (ints, x), (yr, xr)):
            model_id = _train(c, xs, y)
            rows = xs[:7]
            if y.dtype.kind == "f":
                models.append(Model(model_id, rows, None, None, c.predict(model_id, rows)))
            else:
                models.append(
                    Model(
                        model_id,
                        rows,
                        c.predict(model_id, rows),
                        c.predict_proba(model_id, rows),
                        None,
                    )
                )
        for model in models[:2]:  # answers that tell right from wrong
            assert len(set(model.labels.tolist())) >= 2, model.labels
        # Every node has applied the three models (the HTTP checks below
        # then test HTTP, not catching up; one test tests catching up).
        for nid in cluster.ids:
            wait_for(
                lambda nid=nid: cluster.status(nid)["models"] >= 3, DEADLINE, f"models on {nid}"
            )
        yield Env(cluster, leader, follower, token, *models)


# -- helpers: plain HTTP -----------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    node_id: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a new connection (http.client)."""
    conn = http.client.HTTPConnection("127.0.0.1", http_port(node_id), timeout=DEADLINE)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def infer_body(x: np.ndarray, **extra: Any) -> bytes:
    return json.dumps(
        {
            "id": "q1",
            "inputs": [
                {
                    "name": "inputs",
                    "datatype": "FP32",
                    "shape": list(x.shape),
                    "data": x.ravel().tolist(),
                }
            ],
            **extra,
        }
    ).encode()


def infer(env: Env, node_id: str, model: Model) -> Answer:
    path = f"/v2/models/{model.model_id}/infer"
    return request(node_id, "POST", path, infer_body(model.x), env.auth())


def assert_error(answer: Answer, status: int, *words: str) -> str:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers.get("content-type", "").startswith("application/json")
    message = answer.json()["error"]
    assert isinstance(message, str) and message
    for word in words:
        assert word.lower() in message.lower(), message
    return message


def raw_connection(node_id: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", http_port(node_id)), timeout=DEADLINE)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def raw_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Reader:
    """Reads answers off a raw socket, one at a time (Content-Length framing:
    every answer of the node has one)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def answer(self, head_only: bool = False) -> Answer:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed before an answer; got {self.buf[:200]!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise ConnectionError("closed inside an answer's body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return Answer(status, headers, body)

    def closed(self) -> bool:
        """Read until the node closes the connection (EOF or reset): True;
        ``TimeoutError`` if it is still open after DEADLINE."""
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            pass
        return True


def assert_serving(env: Env, node_id: str) -> None:
    """The node answers an infer (HTTP) and a PREDICT (ZeroMQ) correctly."""
    answer = infer(env, node_id, env.names)
    assert answer.status == 200, answer.body[:300]
    labels = next(o for o in answer.json()["outputs"] if o["name"] == "label")["data"]
    assert labels == env.names.labels.tolist()
    with env.cluster.client(node_id, timeout=10) as c:
        assert c.predict(env.names.model_id, env.names.x).tolist() == env.names.labels.tolist()


# -- tritonclient -------------------------------------------------------------------


@pytest.fixture(params=["leader", "follower"])
def triton_client(request: pytest.FixtureRequest, env: Env) -> Iterator[Any]:
    """Triton's client on the leader's or a follower's HTTP port; made per test so
    no pooled connection outlives the 2 s idle timeout between tests."""
    node = env.nodes[request.param]
    c = triton.InferenceServerClient(f"127.0.0.1:{http_port(node)}", network_timeout=DEADLINE)
    yield c
    c.close()


def _text(a: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in a.ravel()]


def test_triton_health_and_server_metadata(env, triton_client):
    h = env.auth()
    assert triton_client.is_server_live(headers=h)
    assert triton_client.is_server_ready(headers=h)
    meta = triton_client.get_server_metadata(headers=h)
    assert meta["name"] == "zmqnode"
    assert "binary_tensor_data" in meta["extensions"]


def test_triton_model_ready_and_metadata(env, triton_client):
    h = env.auth()
    for model, features, label_type in (
        (env.names, 2, "BYTES"),
        (env.ints, 2, "INT64"),
        (env.regression, 3, None),
    ):
        assert triton_client.is_model_ready(model.model_id, headers=h)
        meta = triton_client.get_model_metadata(model.model_id, headers=h)
        assert meta["name"] == model.model_id and meta["platform"] == "zmqnode"
        assert meta["inputs"] == [{"name": "inputs", "datatype": "FP32", "shape": [-1, features]}]
        outputs = {o["name"]: o for o in meta["outputs"]}
        if label_type is None:
            assert set(outputs) == {"values"} and outputs["values"]["datatype"] == "FP32"
        else:
            assert set(outputs) == {"label", "probabilities"}
            assert outputs["label"]["datatype"] == label_type
            assert outputs["label"]["shape"] == [-1]
            assert outputs["probabilities"]["shape"] == [-1, 3]
    assert not triton_client.is_model_ready("m-no-such-model", headers=h)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_triton_infer_equals_the_zeromq_path(env, triton_client, binary, request):
    h = env.auth()
    # The ZeroMQ answers are the leader's. Float32 bits are equal when the node
    # asked here runs the leader's implementation; Go and Python agree to float32
    # rounding only (docs/PROTOCOL.md §9), which assert_allclose checks.
    node = env.nodes[request.node.callspec.params["triton_client"]]
    bit_exact = binary and env.cluster.impls[node] == env.cluster.impls[env.leader]
    for model in (env.names, env.ints):
        x = triton.InferInput("inputs", list(model.x.shape), "FP32")
        x.set_data_from_numpy(model.x, binary_data=binary)
        outs = [
            triton.InferRequestedOutput("label", binary_data=binary),
            triton.InferRequestedOutput("probabilities", binary_data=binary),
        ]
        result = triton_client.infer(model.model_id, [x], outputs=outs, headers=h)
        assert result.get_response()["model_name"] == model.model_id
        assert _text(result.as_numpy("label")) == [str(v) for v in model.labels]
        proba = result.as_numpy("probabilities")
        assert proba.shape == model.probabilities.shape
        np.testing.assert_allclose(proba, model.probabilities, rtol=0, atol=1e-6)
        if binary:
            assert proba.dtype == np.float32
        if bit_exact:  # float32 bytes: exactly the ZeroMQ path's
            assert np.array_equal(proba, model.probabilities)
        # No outputs named: all of them, in tritonclient's default encoding.
        result = triton_client.infer(model.model_id, [x], headers=h)
        assert _text(result.as_numpy("label")) == [str(v) for v in model.labels]
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), model.probabilities, rtol=0, atol=1e-6
        )
    model = env.regression
    x = triton.InferInput("inputs", list(model.x.shape), "FP32")
    x.set_data_from_numpy(model.x, binary_data=binary)
    outs = [triton.InferRequestedOutput("values", binary_data=binary)]
    result = triton_client.infer(model.model_id, [x], outputs=outs, headers=h)
    values = result.as_numpy("values")
    np.testing.assert_allclose(values.reshape(model.values.shape), model.values, rtol=0, atol=1e-6)
    if bit_exact:
        assert np.array_equal(values.reshape(model.values.shape), model.values)


def test_triton_integer_labels_are_int64(env, triton_client):
    x = triton.InferInput("inputs", list(env.ints.x.shape), "FP32")
    x.set_data_from_numpy(env.ints.x)
    result = triton_client.infer(env.ints.model_id, [x], headers=env.auth())
    labels = result.as_numpy("label")
    assert labels.dtype == np.int64
    assert labels.tolist() == env.ints.labels.tolist()


@pytest.mark.parametrize("datatype", ["FP16", "FP64", "INT8", "INT32", "INT64", "UINT8", "UINT16"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_other_numeric_input_datatypes_become_float32(env, datatype, binary):
    """docs/HTTP.md: FP16, FP64, INT* and UINT* inputs are converted to float32;
    the answer is the ZeroMQ path's for the same float32 rows."""
    model = env.names
    x = np.abs(np.round(model.x * 3)).astype(triton.triton_to_np_dtype(datatype))
    with env.cluster.client(env.leader, timeout=10) as c:
        want = c.predict(model.model_id, x.astype(np.float32)).tolist()
    client = triton.InferenceServerClient(
        f"127.0.0.1:{http_port(env.follower)}", network_timeout=DEADLINE
    )
    try:
        tensor = triton.InferInput("inputs", list(x.shape), datatype)
        tensor.set_data_from_numpy(x, binary_data=binary)
        out = [triton.InferRequestedOutput("label", binary_data=binary)]
        result = client.infer(model.model_id, [tensor], outputs=out, headers=env.auth())
    finally:
        client.close()
    assert _text(result.as_numpy("label")) == want


def test_triton_without_token_is_refused(env, triton_client):
    with pytest.raises(InferenceServerException, match="401|token"):
        triton_client.get_model_metadata(env.names.model_id)
    assert triton_client.is_server_live()  # health stays open


# -- plain HTTP: endpoints -------------------------------------------------------------


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_every_endpoint_answers(env, role):
    node = env.nodes[role]
    h = env.auth()
    live = request(node, "GET", "/v2/health/live")
    assert live.status == 200 and live.json() == {"live": True}
    ready = request(node, "GET", "/v2/health/ready")
    assert ready.status == 200 and ready.json() == {"ready": True}
    server = request(node, "GET", "/v2", headers=h)
    assert server.status == 200 and server.json()["name"] == "zmqnode"
    assert server.json()["extensions"] == ["binary_tensor_data"]
    mid = env.names.model_id
    meta = request(node, "GET", f"/v2/models/{mid}", headers=h)
    assert meta.status == 200 and meta.json()["name"] == mid
    assert meta.json()["versions"] == []
    ready = request(node, "GET", f"/v2/models/{mid}/ready", headers=h)
    assert ready.status == 200
    # A version is accepted and ignored.
    assert request(node, "GET", f"/v2/models/{mid}/versions/1/ready", headers=h).status == 200
    assert_error(request(node, "GET", "/v2/models/m-nope/ready", headers=h), 404)
    assert_error(request(node, "GET", "/v2/models/m-nope", headers=h), 404)
    answer = infer(env, node, env.names)
    assert answer.status == 200 and answer.headers["content-type"].startswith("application/json")
    doc = answer.json()
    assert doc["id"] == "q1" and doc["model_name"] == mid
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [len(env.names.x)],
        "data": env.names.labels.tolist(),
    }
    assert outputs["probabilities"]["shape"] == list(env.names.probabilities.shape)
    np.testing.assert_allclose(
        np.float32(outputs["probabilities"]["data"]).reshape(env.names.probabilities.shape),
        env.names.probabilities,
        rtol=0,
        atol=1e-6,
    )


def test_one_row_shape_n_is_one_row(env):
    model = env.regression
    body = json.dumps(
        {
            "inputs": [
                {"name": "inputs", "datatype": "FP64", "shape": [3], "data": model.x[0].tolist()}
            ]
        }
    ).encode()
    answer = request(env.leader, "POST", f"/v2/models/{model.model_id}/infer", body, env.auth())
    assert answer.status == 200, answer.body
    (values,) = answer.json()["outputs"]
    assert values["name"] == "values"
    assert values["data"] == pytest.approx([float(model.values[0])], abs=1e-6)


def test_head_answers_like_get_without_a_body(env):
    for path, headers in (
        ("/v2/health/live", {}),
        ("/v2", env.auth()),
        (f"/v2/models/{env.names.model_id}", env.auth()),
    ):
        get = request(env.leader, "GET", path, headers=headers)
        head = request(env.leader, "HEAD", path, headers=headers)
        assert head.status == get.status == 200
        assert head.body == b""
        assert head.headers["content-length"] == str(len(get.body))


def test_wrong_method_is_405(env):
    mid = env.names.model_id
    assert_error(request(env.leader, "GET", f"/v2/models/{mid}/infer", headers=env.auth()), 405)
    assert_error(request(env.leader, "POST", "/v2/health/live", b"{}"), 405)
    assert_error(request(env.leader, "DELETE", f"/v2/models/{mid}", headers=env.auth()), 405)


@pytest.mark.parametrize("path", ["/", "/v1/models/x", "/v2/models", "/v2/models/a/b/c", "/v3"])
def test_unknown_path_is_404(env, path):
    assert_error(request(env.leader, "GET", path, headers=env.auth()), 404, "endpoint")


# -- plain HTTP: the token -----------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "basic", "empty"],
)
def test_missing_or_wrong_token_is_401(env, headers):
    mid = env.names.model_id
    for method, path, body in (
        ("GET", "/v2", None),
        ("GET", f"/v2/models/{mid}", None),
        ("GET", f"/v2/models/{mid}/ready", None),
        ("POST", f"/v2/models/{mid}/infer", infer_body(env.names.x)),
    ):
        answer = request(env.follower, method, path, body, headers)
        assert_error(answer, 401, "token")
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_token_with_a_wrong_last_character_is_401(env):
    near = env.token[:-1] + ("0" if env.token[-1] != "0" else "1")
    assert_error(request(env.leader, "GET", "/v2", headers=env.auth(near)), 401, "token")


@pytest.mark.parametrize("form", ["bearer {}", "BEARER {}", "Bearer  {}"])
def test_the_auth_scheme_is_case_insensitive(env, form):
    """RFC 9110 §11.1: "It uses a case-insensitive token to identify the
    authentication scheme"; §11.4: one or more spaces before the credentials."""
    answer = request(env.leader, "GET", "/v2", headers={"Authorization": form.format(env.token)})
    assert answer.status == 200, answer.body


def test_health_is_open_without_token(env):
    for node in env.cluster.ids:
        assert request(node, "GET", "/v2/health/live").status == 200
        assert request(node, "GET", "/v2/health/ready").status == 200


# -- plain HTTP: bad requests ---------------------------------------------------------


def _post(env: Env, body: bytes, headers: dict[str, str] | None = None, model: Model | None = None):
    mid = (model or env.names).model_id
    return request(
        env.leader, "POST", f"/v2/models/{mid}/infer", body, {**env.auth(), **(headers or {})}
    )


def _tensor(**fields: Any) -> bytes:
    tensor = {"name": "inputs", "datatype": "FP32", "shape": [2, 2], "data": [0, 1, 1, 0]}
    tensor.update(fields)
    return json.dumps({"inputs": [tensor]}).encode()


@pytest.mark.parametrize(
    "body,words",
    [
        (b"{not json", ["json"]),
        (b"", ["json"]),
        (b"[1, 2]", ["object"]),
        (b'{"inputs": []}', ["input"]),
        (_tensor(name="x"), ["inputs"]),
        (_tensor(shape=[2, 3]), []),
        (_tensor(shape=[3]), []),
        (_tensor(shape=[2, 2, 1]), []),
        (_tensor(shape=[-1, 2]), []),
        (_tensor(data=[0, 1, 1]), []),
        (_tensor(datatype="BYTES"), ["datatype"]),
        (_tensor(datatype="FP8"), ["datatype"]),
        (_tensor(data=["a", "b", "c", "d"]), []),
        (_tensor(data=[0, 1, 1, 1e39]), []),
        (
            b'{"inputs": [{"name": "inputs", "datatype": "FP32", "shape": [1, 2], '
            b'"data": [NaN, 1]}]}',
            [],
        ),
        (_tensor(shape=[2, 3], data=[0, 1, 1, 0, 1, 1]), ["column"]),
        (
            json.dumps(
                {
                    "inputs": [
                        {"name": "inputs", "datatype": "FP32", "shape": [1, 2], "data": [0, 1]}
                    ],
                    "outputs": [{"name": "values"}],
                }
            ).encode(),
            ["values"],
        ),
    ],
    ids=[
        "bad-json",
        "empty-body",
        "not-an-object",
        "no-input",
        "input-name",
        "shape-vs-data",
        "1d-shape-vs-data",
        "3d-shape",
        "negative-shape",
        "data-too-short",
        "bytes-datatype",
        "unknown-datatype",
        "text-data",
        "beyond-float32",
        "nan-literal",
        "wrong-columns",
        "output-the-model-lacks",
    ],
)
def test_bad_input_is_400_with_an_error(env, body, words):
    assert_error(_post(env, body), 400, *words)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_nan_in_binary_tensor_is_400(env, bad):
    x = env.names.x[:2].copy()
    x[1, 0] = bad
    blob = x.tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "inputs",
                    "datatype": "FP32",
                    "shape": [2, 2],
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        }
    ).encode()
    answer = _post(env, head + blob, {"Inference-Header-Content-Length": str(len(head))})
    assert_error(answer, 400, "nan")


@pytest.mark.parametrize("length", ["-1", "x", "999999", "1.5"])
def test_bad_inference_header_length_is_400(env, length):
    body = infer_body(env.names.x)
    assert_error(_post(env, body, {"Inference-Header-Content-Length": length}), 400)


def test_binary_size_mismatch_is_400(env):
    blob = env.names.x[:2].tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "inputs",
                    "datatype": "FP32",
                    "shape": [2, 2],
                    "parameters": {"binary_data_size": len(blob) + 4},
                }
            ]
        }
    ).encode()
    answer = _post(env, head + blob, {"Inference-Header-Content-Length": str(len(head))})
    assert_error(answer, 400)


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_unknown_model_is_404(env, role):
    node = env.nodes[role]
    answer = request(
        node, "POST", "/v2/models/m-no-such-model/infer", infer_body(env.names.x), env.auth()
    )
    assert_error(answer, 404, "m-no-such-model")


def test_a_model_just_acknowledged_is_never_404_on_a_follower(env):
    """Trained through the leader, asked at once of every follower: the
    follower checks with the leader before it says "not found"."""
    x = _data(3, 40, 2)
    y = (x[:, 0] > 0).astype(np.int64)
    with env.cluster.client(env.leader, timeout=30) as c:
        model_id = _train(c, x, y, epochs=5)
        want = c.predict(model_id, x[:4]).tolist()
    followers = [n for n in env.cluster.ids if n != env.leader]
    for node in followers:  # both at once would race; one after another is enough
        path = f"/v2/models/{model_id}"
        assert request(node, "GET", f"{path}/ready", headers=env.auth()).status == 200
        answer = request(node, "POST", f"{path}/infer", infer_body(x[:4]), env.auth())
        assert answer.status == 200, answer.body
        label = next(o for o in answer.json()["outputs"] if o["name"] == "label")
        assert label["data"] == want


# -- plain HTTP: limits and misbehaving clients ------------------------------------------


def test_oversized_body_is_413_before_it_is_read(env):
    with raw_connection(env.leader) as s:
        head = raw_request(
            "POST", f"/v2/models/{env.names.model_id}/infer", headers=env.auth()
        ).replace(b"Content-Length: 0", f"Content-Length: {MAX_REQUEST_BYTES + 1}".encode())
        s.sendall(head)  # and no body: the answer must not wait for it
        answer = Reader(s).answer()
    assert answer.status == 413
    assert answer.headers.get("connection") == "close"
    assert_serving(env, env.leader)


def test_oversized_body_sent_whole_is_413(env):
    rows = np.zeros((MAX_REQUEST_BYTES // 8 + 10, 2), np.float32)
    blob = rows.tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "inputs",
                    "datatype": "FP32",
                    "shape": list(rows.shape),
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        }
    ).encode()
    try:
        answer = _post(env, head + blob, {"Inference-Header-Content-Length": str(len(head))})
        assert answer.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the node answered and closed before the body was all sent
    assert_serving(env, env.leader)


def test_oversized_chunked_body_is_413(env):
    chunk = b"x" * 65536
    with raw_connection(env.leader) as s:
        head = raw_request("POST", f"/v2/models/{env.names.model_id}/infer", headers=env.auth())
        s.sendall(head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked"))
        try:
            for _ in range(MAX_REQUEST_BYTES // len(chunk) + 2):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the rest was sent
        assert Reader(s).answer().status == 413
    assert_serving(env, env.leader)


def test_one_connection_over_the_bound_is_refused(env):
    """docs/HTTP.md: at most 256 connections per node; one more is closed at
    once (with a 503 when the kernel takes it), and the node keeps serving."""
    port = env.cluster.monitor_port(env.follower)
    wait_for(
        lambda: metric(port, "zmqnode_http_connections") == 0,
        DEADLINE,
        "no HTTP connection open on the follower",
    )
    held = []
    try:
        for _ in range(256):
            held.append(raw_connection(env.follower))
        # Every one of them is served: a request on the first and the last.
        for s in (held[0], held[-1]):
            s.sendall(raw_request("GET", "/v2/health/live"))
            assert Reader(s).answer().status == 200
        with raw_connection(env.follower) as extra:
            reader = Reader(extra)
            try:
                answer = reader.answer()
                assert answer.status == 503, answer
            except (ConnectionError, ConnectionResetError):
                pass  # closed before the 503 could be written: also a refusal
            assert reader.closed()
    finally:
        for s in held:
            s.close()
    # The node sees the 256 closes in its next turns; until then a new
    # connection may still be over the bound.
    wait_for(lambda: metric(port, "zmqnode_http_connections") == 0, DEADLINE, "closes seen")
    assert_serving(env, env.follower)


def test_with_expect_100_continue_an_oversized_body_is_refused_first(env):
    with raw_connection(env.leader) as s:
        s.sendall(
            raw_request(
                "POST",
                f"/v2/models/{env.names.model_id}/infer",
                headers={**env.auth(), "Expect": "100-continue"},
            ).replace(b"Content-Length: 0", f"Content-Length: {MAX_REQUEST_BYTES * 2}".encode())
        )
        assert Reader(s).answer().status == 413


def test_expect_100_continue_is_honoured(env):
    body = infer_body(env.names.x)
    with raw_connection(env.leader) as s:
        reader = Reader(s)
        head = raw_request(
            "POST",
            f"/v2/models/{env.names.model_id}/infer",
            body,
            {**env.auth(), "Expect": "100-continue"},
        )[: -len(body)]
        s.sendall(head)
        assert reader.answer(head_only=True).status == 100
        s.sendall(body)
        answer = reader.answer()
    assert answer.status == 200, answer.body


def test_huge_headers_are_431(env):
    with raw_connection(env.leader) as s:
        s.sendall(raw_request("GET", "/v2/health/live", headers={"X-Big": "a" * 20000}))
        assert Reader(s).answer().status == 431
    assert_serving(env, env.leader)


def test_slow_request_gets_408_after_the_request_timeout(env):
    body = infer_body(env.names.x)
    with raw_connection(env.leader) as s:
        t0 = time.monotonic()
        s.sendall(
            raw_request("POST", f"/v2/models/{env.names.model_id}/infer", body, env.auth())[:-10]
        )
        answer = Reader(s).answer()
        elapsed = time.monotonic() - t0
    assert answer.status == 408
    assert REQUEST_TIMEOUT * 0.9 <= elapsed < REQUEST_TIMEOUT + DEADLINE
    assert_serving(env, env.leader)


def test_slow_headers_get_408(env):
    with raw_connection(env.follower) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        assert Reader(s).answer().status == 408


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(env):
    with raw_connection(env.leader) as s:
        reader = Reader(s)
        # The idle clock starts when the node has answered, which the client
        # sees only later: bound it below from before the request.
        sent = time.monotonic()
        s.sendall(raw_request("GET", "/v2/health/live"))
        assert reader.answer().status == 200
        t0 = time.monotonic()
        assert reader.closed() and reader.buf == b""
        elapsed = time.monotonic() - t0
        since_sent = time.monotonic() - sent
    assert since_sent >= IDLE_TIMEOUT * 0.9 and elapsed < IDLE_TIMEOUT + DEADLINE


def test_a_connection_that_never_sends_is_closed_after_the_idle_timeout(env):
    with raw_connection(env.follower) as s:
        t0 = time.monotonic()
        assert Reader(s).closed()
        assert time.monotonic() - t0 >= IDLE_TIMEOUT * 0.9


def test_many_requests_on_one_keep_alive_connection(env):
    conn = http.client.HTTPConnection("127.0.0.1", http_port(env.follower), timeout=DEADLINE)
    body = infer_body(env.names.x)
    try:
        conn.connect()
        sock = conn.sock
        for i in range(60):
            if i % 3 == 0:
                conn.request("GET", "/v2/health/ready")
            else:
                conn.request("POST", f"/v2/models/{env.names.model_id}/infer", body, env.auth())
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200, data
            assert not resp.will_close
        assert conn.sock is sock  # never reconnected
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(env):
    model = env.names
    one = raw_request(
        "POST", f"/v2/models/{model.model_id}/infer", infer_body(model.x[:1]), env.auth()
    )
    two = raw_request("POST", f"/v2/models/{model.model_id}/infer", infer_body(model.x), env.auth())
    nope = raw_request("GET", "/v2/models/m-nope/ready", headers=env.auth())
    live = raw_request("GET", "/v2/health/live")
    with raw_connection(env.follower) as s:
        s.sendall(one + live + two + nope + one)
        reader = Reader(s)
        answers = [reader.answer() for _ in range(5)]
    assert [a.status for a in answers] == [200, 200, 200, 404, 200]
    labels = [
        next(o for o in a.json()["outputs"] if o["name"] == "label")["data"]
        for a in (answers[0], answers[2], answers[4])
    ]
    assert labels == [model.labels[:1].tolist(), model.labels.tolist(), model.labels[:1].tolist()]
    assert answers[1].json() == {"live": True}


def test_http_1_0_and_connection_close_close_after_the_answer(env):
    for raw in (
        b"GET /v2/health/live HTTP/1.0\r\n\r\n",
        raw_request("GET", "/v2/health/live", headers={"Connection": "close"}),
    ):
        with raw_connection(env.leader) as s:
            t0 = time.monotonic()
            s.sendall(raw)
            reader = Reader(s)
            assert reader.answer().status == 200
            assert reader.closed()
            assert time.monotonic() - t0 < IDLE_TIMEOUT  # closed at once, not by the timeout


def test_client_that_disconnects_mid_body_leaves_the_node_serving(env):
    body = infer_body(env.names.x)
    raw = raw_request("POST", f"/v2/models/{env.names.model_id}/infer", body, env.auth())
    for _ in range(5):
        with raw_connection(env.leader) as s:
            s.sendall(raw[: len(raw) - len(body) // 2])
    assert_serving(env, env.leader)


def test_client_that_disconnects_before_its_answer_leaves_the_node_serving(env):
    raw = raw_request(
        "POST", f"/v2/models/{env.names.model_id}/infer", infer_body(env.names.x), env.auth()
    )
    for node in (env.leader, env.follower):
        for i in range(10):
            s = raw_connection(node)
            s.sendall(raw * 3)
            if i % 2:  # a reset rather than a FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        assert_serving(env, node)


def _get_text(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def metric(port: int, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` with exactly ``labels`` on a monitor port."""
    total = 0.0
    for line in _get_text(port, "/metrics").splitlines():
        sample, _, value = line.rpartition(" ")
        metric_name, _, label_text = sample.partition("{")
        if metric_name != name:
            continue
        if dict(re.findall(r'(\w+)="([^"]*)"', label_text)) == labels:
            total += float(value)
    return total


def test_metrics_count_http_requests(env):
    port = env.cluster.monitor_port(env.follower)
    before = metric(port, "zmqnode_http_requests_total", endpoint="infer", status="200")
    for _ in range(3):
        assert infer(env, env.follower, env.names).status == 200
    assert request(env.follower, "GET", f"/v2/models/{env.names.model_id}").status == 401
    wait_for(
        lambda: (
            metric(port, "zmqnode_http_requests_total", endpoint="infer", status="200")
            >= before + 3
        ),
        DEADLINE,
        'zmqnode_http_requests_total{endpoint="infer",status="200"} counting 3 more',
    )
    assert metric(port, "zmqnode_http_requests_total", endpoint="model", status="401") >= 1
    assert metric(port, "zmqnode_http_request_seconds_count", endpoint="infer") >= before + 3


def test_the_cluster_is_still_whole(env):
    """After everything above: every node alive, serving both ways."""
    for nid, proc in env.cluster.procs.items():
        assert proc.poll() is None, env.cluster.output(nid)[-2000:]
    for nid in env.cluster.ids:
        assert_serving(env, nid)
    assert "Traceback" not in "".join(env.cluster.output(n) for n in env.cluster.ids)
