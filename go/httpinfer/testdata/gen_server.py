"""Golden answers of zmqnode/inference_http.py (routes, token, node replies
turned into HTTP) for server_test.go, which sends the same requests to the Go
server over TCP with a fake node behaving as fake_dispatch below.

Run from the repository root with the project's interpreter (its orjson and
numpy): .venv/bin/python go/httpinfer/testdata/gen_server.py
"""

from __future__ import annotations

import base64
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from zmqnode.inference_http import HttpInference  # noqa: E402
from zmqnode.transport import wire  # noqa: E402
from zmqnode.transport.http import HttpRequest  # noqa: E402
from zmqnode.transport.wire import ErrorCode  # noqa: E402

HERE = pathlib.Path(__file__).parent
TOKEN = "t" * 64
TASKS = {"m1": "multiclass", "reg": "regression"}
LISTINGS = {
    "m1": {"model_id": "m1", "task": "multiclass", "inputs": 2, "classes": ["cat", "dog"]},
    "unk": {"model_id": "unk", "task": "binary", "inputs": 2, "classes": [0, 1]},
    "reg": {"model_id": "reg", "task": "regression", "inputs": 2, "outputs": 1},
}


def fake_dispatch(header, blobs, reply):
    """The fake node: the same rules as fakeNode in server_test.go."""
    model = header["model_id"]
    if model == "missing":
        reply.error(header, ErrorCode.NOT_FOUND, f"no model {model}")
    elif model == "busy":
        reply.error(header, ErrorCode.BUSY, "node n0 is busy; retry later")
    elif model == "slow":
        reply.error(header, ErrorCode.TIMEOUT, "no answer in time")
    elif model == "redirect":
        reply.send({"v": 1, "type": header["type"], "id": header["id"], "status": "REDIRECT",
                    "leader": "127.0.0.1:9001"})
    elif model == "bad":
        reply.ok(header, [], model_id=model)
    elif header["type"] == "INFO":
        reply.ok(header, [], model=LISTINGS[model])
    else:  # PREDICT
        rows = np.frombuffer(blobs[0], np.float32).reshape(header["inputs"]["shape"])
        if model == "reg":
            desc, blob = wire.array_to_frame(rows.sum(axis=1).astype(np.float32), 0)
            reply.ok(header, [blob], model_id=model, outputs=desc)
            return
        index = (np.arange(len(rows)) % 2).astype(np.int64)
        desc, blob = wire.array_to_frame(index, 0)
        fields = {"model_id": model, "outputs": desc, "classes": LISTINGS[model]["classes"]}
        blobs = [blob]
        if header["proba"]:
            proba = np.tile(np.array([0.25, 0.75], np.float32), (len(rows), 1))
            pdesc, pblob = wire.array_to_frame(proba, 1)
            fields["probabilities"] = pdesc
            blobs.append(pblob)
        reply.ok(header, blobs, **fields)


class Responder:
    def __init__(self):
        self.answers = []

    def respond(self, status, headers, body):
        self.answers.append((status, {k.lower(): v for k, v in headers}, body))


AUTH = {"authorization": f"Bearer {TOKEN}"}
GOOD = {"name": "inputs", "datatype": "FP32", "shape": [3, 2], "data": [0, 1, 1, 1, 2, 0.5]}


def infer(model, request, headers=None, tail=b""):
    head = orjson.dumps(request)
    h = dict(AUTH)
    if tail:
        h["inference-header-content-length"] = str(len(head))
    h.update(headers or {})
    return ("POST", f"/v2/models/{model}/infer", h, head + tail)


def cases():
    x = np.array([[0, 1], [1, 1]], np.float32).tobytes()
    binary_input = {"name": "inputs", "datatype": "FP32", "shape": [2, 2], "parameters": {"binary_data_size": 16}}
    return [
        ("GET", "/v2/health/live", {}, b""),
        ("GET", "/v2/health/ready", {}, b""),
        ("POST", "/v2/health/live", {}, b""),
        ("GET", "/nowhere?x=1", AUTH, b""),
        ("GET", "/" + "x" * 300, AUTH, b""),
        ("GET", "/v2", AUTH, b""),
        ("GET", "/v2/", AUTH, b""),
        ("GET", "/v2", {}, b""),
        ("GET", "/v2", {"authorization": "Bearer wrong"}, b""),
        ("GET", "/v2", {"authorization": f"bearer {TOKEN}"}, b""),
        ("GET", "/v2", {"authorization": f"BEARER   {TOKEN}"}, b""),
        ("GET", "/v2", {"authorization": f"Basic {TOKEN}"}, b""),
        ("GET", "/v2", {"authorization": TOKEN}, b""),
        ("DELETE", "/v2", AUTH, b""),
        ("GET", "/nowhere", {}, b""),
        ("POST", "/v2/models/m1", {}, b""),
        ("GET", "/v2/models/m1", AUTH, b""),
        ("GET", "/v2/models/m1?verbose=1", AUTH, b""),
        ("GET", "/v2/models/m1/ready", AUTH, b""),
        ("GET", "/v2/models/m1/versions/3", AUTH, b""),
        ("GET", "/v2/models/m1/versions/3/ready", AUTH, b""),
        ("GET", "/v2/models/unk", AUTH, b""),
        ("GET", "/v2/models/reg", AUTH, b""),
        ("GET", "/v2/models/missing", AUTH, b""),
        ("GET", "/v2/models/missing/ready", AUTH, b""),
        ("GET", "/v2/models/busy/ready", AUTH, b""),
        ("GET", "/v2/models/slow", AUTH, b""),
        ("GET", "/v2/models/redirect", AUTH, b""),
        ("GET", "/v2/models/bad", AUTH, b""),
        ("GET", "/v2/models/m1/infer", AUTH, b""),
        ("GET", "/v2/models/m1/stats", AUTH, b""),
        ("GET", "/v2/models//ready", AUTH, b""),
        ("GET", "/v2/models/m1/versions//ready", AUTH, b""),
        ("POST", "/v2/models/m1/infer", {}, b"{}"),
        infer("m1", {"inputs": [GOOD]}),
        infer("m1", {"id": "q1", "inputs": [GOOD]}),
        infer("m1", {"inputs": [GOOD], "parameters": {"binary_data_output": True}}),
        infer("m1", {"inputs": [GOOD], "outputs": [{"name": "label"}]}),
        infer("m1", {"inputs": [GOOD], "outputs": [{"name": "values"}]}),
        infer("m1", {"inputs": [binary_input], "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}, tail=x),
        infer("m1", {"inputs": [binary_input]}, tail=x),
        infer("reg", {"inputs": [GOOD]}),
        infer("reg", {"inputs": [GOOD], "outputs": [{"name": "label"}]}),
        infer("unk", {"inputs": [GOOD], "outputs": [{"name": "label"}]}),
        infer("unk", {"inputs": [GOOD]}),
        infer("unk", {"inputs": [GOOD], "outputs": [{"name": "values"}]}),
        infer("missing", {"inputs": [GOOD]}),
        infer("busy", {"inputs": [GOOD]}),
        infer("slow", {"inputs": [GOOD]}),
        infer("redirect", {"inputs": [GOOD]}),
        infer("m1", {"inputs": [GOOD]}, headers={"inference-header-content-length": "abc"}),
        infer("m1", {"inputs": [GOOD]}, headers={"inference-header-content-length": "999"}),
        infer("m1", {"inputs": [GOOD]}, headers={"inference-header-content-length": " 79 "}),
        ("POST", "/v2/models/m1/infer", AUTH, b"{not json"),
        ("POST", "/v2/models/m1/infer", AUTH, b""),
        ("POST", "/v2/models/m1/infer", AUTH, b'{"inputs": [{"name": "x"}]}'),
    ]


def main():
    answered = []
    server = HttpInference(
        "n0", TOKEN, fake_dispatch, task_of=TASKS.get, ready=lambda: True,
        on_answered=lambda e, s, t: answered.append((e, s)), version="0.1.0",
    )
    out = []
    for method, target, headers, body in cases():
        responder = Responder()
        server.on_request(HttpRequest(method, target, headers, body, connection=1, received=0.0), responder)
        ((status, h, answer),) = responder.answers
        out.append({
            "method": method, "target": target, "headers": headers, "body": base64.b64encode(body).decode(),
            "status": status, "content_type": h.get("content-type"),
            "www_authenticate": h.get("www-authenticate"),
            "header_length": h.get("inference-header-content-length"),
            "answer": base64.b64encode(answer).decode(), "endpoint": answered[-1][0],
        })
    (HERE / "server_golden.json").write_text(json.dumps(out, indent=1) + "\n")
    print(len(out), "requests")


if __name__ == "__main__":
    main()
