"""The HTTP inference routes (zmqnode/inference_http.py) with a fake dispatch:
routing, the token, and node replies turned into OIP responses."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from zmqnode.inference_http import INFER, LIVE, MODEL, MODEL_READY, OTHER, HttpInference, route
from zmqnode.transport.http import HttpRequest
from zmqnode.transport.wire import ErrorCode

TOKEN = "t" * 64


class FakeResponder:
    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []

    def respond(self, status, headers, body) -> None:
        self.answers.append((status, {k.lower(): v for k, v in headers}, body))


class Node:
    """Records what the routes dispatch; answers as the test says."""

    def __init__(self) -> None:
        self.dispatched: list[tuple[dict, list, object]] = []
        self.answered: list[tuple[str, int]] = []
        self.server = HttpInference(
            "n0",
            TOKEN,
            lambda header, blobs, reply: self.dispatched.append((header, blobs, reply)),
            task_of=lambda model_id: "multiclass" if model_id == "m1" else None,
            ready=lambda: True,
            on_answered=lambda endpoint, status, seconds: self.answered.append((endpoint, status)),
            version="0.1.0",
        )

    def ask(self, method: str, target: str, body: bytes = b"", token: str | None = TOKEN):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        responder = FakeResponder()
        request = HttpRequest(method, target, headers, body, connection=1, received=0.0)
        self.server.on_request(request, responder)  # type: ignore[arg-type]
        return responder


def test_paths_route_to_endpoints_and_model_ids():
    assert route("GET", "/v2/health/live") == (LIVE, None)
    assert route("GET", "/v2/models/m1") == (MODEL, "m1")
    assert route("GET", "/v2/models/m1/versions/3/ready") == (MODEL_READY, "m1")
    assert route("POST", "/v2/models/m1/infer") == (INFER, "m1")
    assert route("GET", "/v2/models/m1/stats") == (OTHER, None)
    assert route("GET", "/metrics") == (OTHER, None)


def test_the_token_guards_all_but_health():
    node = Node()
    ((status, headers, body),) = node.ask("GET", "/v2/models/m1", token=None).answers
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert b"KEYS/http.token" in body and node.dispatched == []
    assert node.ask("GET", "/v2/models/m1", token="wrong").answers[0][0] == 401
    assert node.ask("GET", "/v2/health/live", token=None).answers[0][0] == 200
    assert node.ask("GET", "/v2/health/ready", token=None).answers[0][0] == 200
    assert node.ask("POST", "/v2/health/live").answers[0][0] == 405
    assert node.ask("GET", "/nowhere").answers[0][0] == 404
    assert ("other", 404) in node.answered


def test_an_infer_is_a_predict_and_its_reply_an_oip_response():
    node = Node()
    body = orjson.dumps(
        {
            "id": "q",
            "inputs": [
                {"name": "inputs", "datatype": "FP32", "shape": [2, 2], "data": [0, 1, 1, 1]}
            ],
        }
    )
    responder = node.ask("POST", "/v2/models/m1/infer", body)
    ((header, blobs, reply),) = node.dispatched
    assert header["type"] == "PREDICT" and header["model_id"] == "m1"
    assert header["proba"] is True  # a classifier: "every output" has probabilities
    assert np.frombuffer(blobs[0], np.float32).tolist() == [0, 1, 1, 1]
    assert responder.answers == []  # answered when the batch runs
    reply.wait(header)
    proba = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    reply.ok(
        header,
        [np.array([0, 1], np.int64).tobytes(), proba.tobytes()],
        outputs={"dtype": "int64", "shape": [2], "frame": 0},
        probabilities={"dtype": "float32", "shape": [2, 2], "frame": 1},
        classes=["cat", "dog"],
        model_id="m1",
        node="n0",
    )
    ((status, headers, answer),) = responder.answers
    assert status == 200 and headers["content-type"] == "application/json"
    outputs = {o["name"]: o for o in orjson.loads(answer)["outputs"]}
    assert outputs["label"]["data"] == ["cat", "dog"] and outputs["label"]["datatype"] == "BYTES"
    assert outputs["probabilities"]["shape"] == [2, 2]
    assert node.server.waiting == set() and node.answered[-1] == ("infer", 200)
    reply.error(header, ErrorCode.INTERNAL, "late")  # after the answer: ignored
    assert len(responder.answers) == 1


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.NOT_FOUND, 404),
        (ErrorCode.BAD_INPUT, 400),
        (ErrorCode.BUSY, 503),
        (ErrorCode.TIMEOUT, 504),
        (ErrorCode.UNAVAILABLE, 503),
    ],
)
def test_node_errors_become_http_statuses(code, status):
    node = Node()
    responder = node.ask("GET", "/v2/models/m9/ready")
    ((header, _, reply),) = node.dispatched
    assert header["type"] == "INFO" and header["model_id"] == "m9"
    reply.error(header, code, "what happened")
    assert responder.answers[0][0] == status
    assert orjson.loads(responder.answers[0][2]) == {"error": "what happened"}


def test_bad_bodies_are_400_before_anything_is_dispatched_and_shutdown_answers_the_rest():
    node = Node()
    assert node.ask("POST", "/v2/models/m1/infer", b"{not json").answers[0][0] == 400
    assert node.dispatched == []
    responder = node.ask("GET", "/v2/models/m1")
    ((header, _, reply),) = node.dispatched
    reply.wait(header)
    node.server.answer_all_waiting("node n0 is shutting down")
    assert responder.answers[0][0] == 503


def test_an_answer_that_cannot_be_encoded_costs_only_its_own_request():
    node = Node()  # "m2" is not known here: its task is unknown when the call is parsed
    body = orjson.dumps(
        {
            "inputs": [{"name": "inputs", "datatype": "FP32", "shape": [1, 2], "data": [0, 1]}],
            "outputs": [{"name": "label"}],
        }
    )
    responder = node.ask("POST", "/v2/models/m2/infer", body)
    ((header, _, reply),) = node.dispatched
    # m2 turns out to do regression: it has no "label".
    values = np.array([0.5], np.float32)
    reply.ok(header, [values.tobytes()], outputs={"dtype": "float32", "shape": [1], "frame": 0})
    ((status, _, answer),) = responder.answers
    assert status == 400 and b"label" in answer
