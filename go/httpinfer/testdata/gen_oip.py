"""Golden vectors of zmqnode/oip.py for the Go port (oip_test.go): infer
bodies parsed into PREDICT headers or refused (status and message), PREDICT
replies turned into responses, model listings into metadata.

Run from the repository root with the project's interpreter (its orjson and
numpy): .venv/bin/python go/httpinfer/testdata/gen_oip.py
"""

from __future__ import annotations

import base64
import json
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from zmqnode import oip  # noqa: E402
from zmqnode.transport import wire  # noqa: E402

HERE = pathlib.Path(__file__).parent
MODEL = "m-1"
GOOD = {"name": "inputs", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1]}


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def req(**fields):
    # json, not orjson: orjson cannot write integers beyond 64 bits
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def binary(request: dict, tail: bytes) -> tuple[bytes, int]:
    head = orjson.dumps(request)
    return head + tail, len(head)


def inp(**changes):
    out = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def bin_inp(datatype: str, shape, raw: bytes, **extra):
    return {"name": "inputs", "datatype": datatype, "shape": shape,
            "parameters": {"binary_data_size": len(raw), **extra}}


def parse_cases() -> list[tuple[str, bytes, int | None]]:
    cases: list[tuple[str, bytes, int | None]] = []

    def add(name, body, length=None):
        cases.append((name, body, length))

    add("good", req(inputs=[GOOD]))
    add("good with id", req(id="q1", inputs=[GOOD]))
    add("empty id", req(id="", inputs=[GOOD]))
    add("null id", req(id=None, inputs=[GOOD]))
    add("one row shape", req(inputs=[inp(shape=[3], data=[1, 2, 3])]))
    add("nested data", req(inputs=[inp(shape=[2, 2], data=[[1, 2], [3, 4]])]))
    add("deep nested data", req(inputs=[inp(shape=[4], data=[[[1, 2]], [[3, 4]]])]))
    add("nested vs flat shape", req(inputs=[inp(shape=[2, 2], data=[[1, 2, 3, 4]])]))
    add("outputs label", req(inputs=[GOOD], outputs=[{"name": "label"}]))
    add("outputs proba", req(inputs=[GOOD], outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}]))
    add("outputs values", req(inputs=[GOOD], outputs=[{"name": "values"}]))
    add("outputs null", req(inputs=[GOOD], outputs=None))
    add("outputs empty", req(inputs=[GOOD], outputs=[]))
    add("binary_data_output", req(inputs=[GOOD], parameters={"binary_data_output": True}))
    add("other params ignored", req(inputs=[GOOD], parameters={"priority": 3, "timeout": 5}))
    for dt, value in [("FP16", 1.5), ("FP64", 1e-3), ("INT8", -128), ("INT16", 300), ("INT32", 7),
                      ("INT64", 2**62), ("UINT8", 255), ("UINT16", 65535), ("UINT32", 4e0), ("UINT64", 2**64 - 1)]:
        add(f"json {dt}", req(inputs=[inp(datatype=dt, shape=[1, 2], data=[value, 1])]))
    add("big ints to float32", req(inputs=[inp(shape=[1, 3], data=[16777217, 2**63, 2**64 - 1])]))
    add("u64 alone", req(inputs=[inp(datatype="UINT64", shape=[1], data=[2**63])]))
    add("u64 with bool", req(inputs=[inp(datatype="UINT64", shape=[2], data=[2**63, True])]))
    add("u64 with small int", req(inputs=[inp(datatype="UINT64", shape=[2], data=[2**63, 0])]))
    add("mixed u64 and negative", req(inputs=[inp(shape=[1, 2], data=[2**63, -1])]))
    add("int64 min", req(inputs=[inp(datatype="INT64", shape=[1, 1], data=[-2**63])]))
    add("below int64 min is a float", req(inputs=[inp(datatype="INT64", shape=[1], data=[-2**63 - 1])]))
    add("int beyond u64 is a float", req(inputs=[inp(shape=[1], data=[2**64])]))
    add("bools and ints", req(inputs=[inp(shape=[2], data=[True, 2])]))
    add("bools and floats", req(inputs=[inp(shape=[2], data=[True, 2.5])]))
    add("bools only", req(inputs=[inp(shape=[2], data=[True, False])]))
    add("float rounding", req(inputs=[inp(shape=[3], data=[0.1, 1 / 3, 3.4028235677973366e38])]))
    add("beyond float32", req(inputs=[inp(shape=[2], data=[1, 3.5e38])]))
    add("beyond float32 negative", req(inputs=[inp(shape=[1], data=[-1e39])]))
    add("tiny to zero", req(inputs=[inp(shape=[2], data=[1e-50, -1e-50])]))
    add("int data for int type with float", req(inputs=[inp(datatype="INT32", shape=[2], data=[1.5, 2])]))
    add("int out of range", req(inputs=[inp(datatype="UINT8", shape=[2], data=[1, 300])]))
    add("int negative for uint", req(inputs=[inp(datatype="UINT64", shape=[2], data=[1, -1])]))
    add("int8 low", req(inputs=[inp(datatype="INT8", shape=[1], data=[-129])]))
    add("int64 with u64", req(inputs=[inp(datatype="INT64", shape=[1], data=[2**63])]))
    add("bools for int type", req(inputs=[inp(datatype="INT8", shape=[2], data=[True, 1])]))
    add("strings", req(inputs=[inp(data=["1.0", "2.0"])]))
    add("string and number", req(inputs=[inp(data=[1, "a"])]))
    add("null in data", req(inputs=[inp(data=[1, None])]))
    add("object in data", req(inputs=[inp(data=[1, {}])]))
    add("strings for int type", req(inputs=[inp(datatype="INT8", data=["a", "b"])]))
    add("ragged", req(inputs=[inp(shape=[2, 2], data=[[1, 2], [3]])]))
    add("ragged scalar and list", req(inputs=[inp(shape=[2], data=[1, [2]])]))
    add("ragged empty", req(inputs=[inp(shape=[2], data=[[], [1]])]))
    add("empty lists", req(inputs=[inp(shape=[2], data=[[], []])]))
    add("empty data", req(inputs=[inp(shape=[2], data=[])]))
    add("too deep", req(inputs=[inp(shape=[1], data=json.loads("[" * 66 + "1" + "]" * 66))]))
    add("64 dims", req(inputs=[inp(shape=[1], data=json.loads("[" * 64 + "1" + "]" * 64))]))
    add("count mismatch", req(inputs=[inp(shape=[2, 2])]))
    add("huge shape", req(inputs=[inp(shape=[2**63, 2**63])]))
    add("data not a list", req(inputs=[inp(data=5)]))
    add("no data", req(inputs=[inp(data=...)]))
    add("data null", req(inputs=[inp(data=None)]))
    for shape in ([1, 1, 2], [0, 2], [], "2", None, [1.0, 2], [True, 2], [-1, 2], [2**64, 1], [2, "x" * 100]):
        add(f"shape {shape!r:.20}", req(inputs=[inp(shape=shape)]))
    add("no shape", req(inputs=[inp(shape=...)]))
    for dt in ("BOOL", "BYTES", "BF16", "fp32", None, 3, ["FP32"], "x'y", 'x"y\'', "é\n\x01"):
        add(f"datatype {dt!r}", req(inputs=[inp(datatype=dt)]))
    for name in ("x", None, 7, 1.5, True, {"a": [1, None]}, "", "ünï\u2028"):
        add(f"input name {name!r}", req(inputs=[inp(name=name)]))
    add("input not an object", req(inputs=[[1]]))
    add("two inputs", req(inputs=[GOOD, GOOD]))
    add("zero inputs", req(inputs=[]))
    add("no inputs", req())
    add("inputs object", req(inputs={"name": "inputs"}))
    add("inputs string", req(inputs="x"))
    add("inputs number", req(inputs=1.5))
    add("inputs bool", req(inputs=False))
    add("id number", req(id=7, inputs=[GOOD]))
    add("id list", req(id=[], inputs=[GOOD]))
    add("params list", req(inputs=[GOOD], parameters=[]))
    add("params null", req(inputs=[GOOD], parameters=None))
    add("binary_data_output string", req(inputs=[GOOD], parameters={"binary_data_output": "yes"}))
    add("binary_data_output null", req(inputs=[GOOD], parameters={"binary_data_output": None}))
    add("input params string", req(inputs=[inp(parameters="x")]))
    add("shared memory input", req(inputs=[inp(parameters={"shared_memory_region": "r"})]))
    add("binary_data_size null is json", req(inputs=[inp(parameters={"binary_data_size": None})]))
    add("outputs not list", req(inputs=[GOOD], outputs={"name": "label"}))
    add("output not object", req(inputs=[GOOD], outputs=["label"]))
    add("output unknown", req(inputs=[GOOD], outputs=[{"name": "scores"}]))
    add("output unknown long", req(inputs=[GOOD], outputs=[{"name": "s" * 200}]))
    add("output name missing", req(inputs=[GOOD], outputs=[{}]))
    add("output twice", req(inputs=[GOOD], outputs=[{"name": "label"}, {"name": "label"}]))
    add("output classification", req(inputs=[GOOD], outputs=[{"name": "label", "parameters": {"classification": 2}}]))
    add("output shared memory", req(inputs=[GOOD], outputs=[{"name": "label", "parameters": {"shared_memory_region": "r"}}]))
    add("output binary_data bad", req(inputs=[GOOD], outputs=[{"name": "label", "parameters": {"binary_data": 1}}]))
    add("output params list", req(inputs=[GOOD], outputs=[{"name": "label", "parameters": []}]))
    add("error order: id before inputs", req(id=1, inputs=[]))
    add("error order: input before outputs", req(inputs=[inp(datatype="X")], outputs=[{"name": "zz"}]))
    add("not json", b"{not json")
    add("empty body", b"")
    add("truncated", b'{"inputs": [')
    add("array", b"[1, 2]")
    add("string", b'"x"')
    add("null", b"null")
    add("nan literal", b'{"inputs": [{"name": "inputs", "datatype": "FP32", "shape": [1], "data": [NaN]}]}')
    add("trailing garbage", req(inputs=[GOOD]) + b" x")
    add("invalid utf8", b'{"id": "\xff", "inputs": []}')
    add("duplicate keys", b'{"inputs": [], "inputs": [' + orjson.dumps(GOOD) + b"]}")
    add("whitespace", b' \n {"inputs": [' + orjson.dumps(GOOD) + b"]} \n")
    # Binary tensors (Triton's extension)
    x = np.array([[1.0, 2.5, -3.0], [0.0, 4.0, 1e-3]], np.float32)
    for dt, np_dt in [("FP32", "<f4"), ("FP16", "<f2"), ("FP64", "<f8"), ("INT8", "<i1"), ("INT16", "<i2"),
                      ("INT32", "<i4"), ("INT64", "<i8"), ("UINT8", "<u1"), ("UINT16", "<u2"), ("UINT32", "<u4"),
                      ("UINT64", "<u8")]:
        raw = x.astype(np_dt).tobytes() if dt.startswith("FP") else np.array([[1, 2, 127], [0, 100, 3]], np_dt).tobytes()
        add(f"binary {dt}", *binary({"inputs": [bin_inp(dt, [2, 3], raw)]}, raw))
    raw = np.array([2**64 - 1, 2**63 + 1], "<u8").tobytes()
    add("binary UINT64 big", *binary({"inputs": [bin_inp("UINT64", [2], raw)]}, raw))
    raw = np.array([-(2**63), 2**63 - 1], "<i8").tobytes()
    add("binary INT64 extremes", *binary({"inputs": [bin_inp("INT64", [2], raw)]}, raw))
    raw = np.array([np.nan, 1], "<f4").tobytes()
    add("binary NaN", *binary({"inputs": [bin_inp("FP32", [2], raw)]}, raw))
    raw = np.array([np.inf, 1], "<f2").tobytes()
    add("binary FP16 inf", *binary({"inputs": [bin_inp("FP16", [2], raw)]}, raw))
    raw = np.array([1e300, 1], "<f8").tobytes()
    add("binary FP64 beyond", *binary({"inputs": [bin_inp("FP64", [2], raw)]}, raw))
    raw = np.array([1e300, np.nan], "<f8").tobytes()
    add("binary FP64 beyond and nan", *binary({"inputs": [bin_inp("FP64", [2], raw)]}, raw))
    raw = np.array([6.1e-5, 5.96e-8, -0.0, 65504], "<f2").tobytes()
    add("binary FP16 subnormal", *binary({"inputs": [bin_inp("FP16", [4], raw)]}, raw))
    raw = x.tobytes()
    add("binary with outputs", *binary({"inputs": [bin_inp("FP32", [2, 3], raw)],
                                        "outputs": [{"name": "label", "parameters": {"binary_data": True}},
                                                    {"name": "probabilities", "parameters": {"binary_data": False}}]}, raw))
    add("binary size mismatch body", *binary({"inputs": [bin_inp("FP32", [2, 3], raw[:8])]}, raw))
    add("binary size mismatch shape", *binary({"inputs": [bin_inp("FP32", [2, 2], raw)]}, raw))
    add("binary size huge shape", *binary({"inputs": [bin_inp("FP64", [2**40, 2**40], raw)]}, raw))
    add("binary with data", *binary({"inputs": [{**bin_inp("FP32", [2, 3], raw), "data": [1]}]}, raw))
    add("binary size negative", *binary({"inputs": [inp(parameters={"binary_data_size": -1})]}, raw))
    add("binary size float", *binary({"inputs": [inp(parameters={"binary_data_size": 24.0})]}, raw))
    add("binary size bool", *binary({"inputs": [inp(parameters={"binary_data_size": True})]}, raw))
    add("binary size string", *binary({"inputs": [inp(parameters={"binary_data_size": "2" * 60})]}, raw))
    add("tail without binary size", *binary({"inputs": [GOOD]}, b"abc"))
    head = orjson.dumps({"inputs": [GOOD]})
    add("header length zero", head, 0)
    add("header length whole body", head, len(head))
    add("header length beyond body", head, len(head) + 1)
    add("header length cuts the json", head, 5)
    return cases


def outcome(fn):
    try:
        return {"ok": fn()}
    except oip.OipError as exc:
        return {"status": exc.status, "message": exc.message}


def parse_vectors():
    out = []
    for name, body, length in parse_cases():
        vec = {"name": name, "body": b64(body), "header_length": length}
        try:
            call = oip.parse_infer(MODEL, body, length)
        except oip.OipError as exc:
            vec["error"] = {"status": exc.status, "message": exc.message}
            out.append(vec)
            continue
        vec["blob"] = b64(call.blobs[0])
        for task in (None, "binary", "regression"):
            vec[f"header_{task}"] = outcome(lambda: orjson.loads(orjson.dumps(call.predict_header("ID", task))))
        out.append(vec)
    return out


def classify(index, classes, proba=None, index_dtype=np.int64):
    desc, blob = wire.array_to_frame(np.asarray(index, dtype=index_dtype), 0)
    fields = {"model_id": MODEL, "outputs": desc, "classes": classes}
    blobs = [blob]
    if proba is not None:
        pdesc, pblob = wire.array_to_frame(np.asarray(proba), 1)
        fields["probabilities"] = pdesc
        blobs.append(pblob)
    return fields, blobs


def regress(values):
    desc, blob = wire.array_to_frame(np.asarray(values), 0)
    return {"model_id": MODEL, "outputs": desc}, [blob]


def response_vectors():
    proba = np.array([[0.7, 0.2, 0.1], [1e-7, 0.0000025, 0.9999975]], np.float32)
    replies = {
        "strings": classify([0, 2], ["cat", "dög", "a\"b\\\n"], proba),
        "strings no proba": classify([1, 0], ["yes", "no"]),
        "ints": classify([0, 1], [3, -7], proba[:, :2]),
        "floats": classify([0, 1], [1, 2.5], proba[:, :2]),
        "bools": classify([1, 0], [False, True], proba[:, :2]),
        "index out of range": classify([0, 5], ["a", "b"]),
        "negative index": classify([-1], ["a", "b"]),
        "empty classes": classify([0], []),
        "mixed classes": classify([0], ["a", 1]),
        "int32 index": classify([1], ["a", "b"], index_dtype=np.int32),
        "float index": classify([1], ["a", "b"], index_dtype=np.float32),
        "float64 proba": classify([0], ["a", "b"], np.array([[0.25, 0.75]], np.float64)),
        "regression": regress(np.array([0.5, -1e16, 1e-7, 123.456], np.float32)),
        "regression 2d": regress(np.array([[0.5, 1.5], [2.0, 3.0]], np.float32)),
        "regression float64": regress(np.array([0.1, 1e300], np.float64)),
        "regression empty": regress(np.zeros((0,), np.float32)),
        "no outputs": ({"model_id": MODEL}, []),
    }
    requests = {
        "all json": {"inputs": [GOOD]},
        "all binary": {"id": "q", "inputs": [GOOD], "parameters": {"binary_data_output": True}},
        "label": {"inputs": [GOOD], "outputs": [{"name": "label"}]},
        "proba binary, label json": {"inputs": [GOOD], "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "label"}]},
        "values": {"id": "", "inputs": [GOOD], "outputs": [{"name": "values"}]},
        "values default binary": {"inputs": [GOOD], "parameters": {"binary_data_output": True}, "outputs": [{"name": "values"}]},
        "label and values": {"inputs": [GOOD], "outputs": [{"name": "label"}, {"name": "values"}]},
    }
    out = []
    for rname, (fields, blobs) in replies.items():
        for qname, request in requests.items():
            call = oip.parse_infer(MODEL, orjson.dumps(request), None)
            vec = {"name": f"{rname} / {qname}", "request": b64(orjson.dumps(request)),
                   "fields": orjson.loads(orjson.dumps(fields)), "blobs": [b64(b) for b in blobs]}
            try:
                headers, body = oip.infer_response(call, MODEL, fields, blobs)
                vec["headers"] = headers
                vec["body"] = b64(body)
            except oip.OipError as exc:
                vec["error"] = {"status": exc.status, "message": exc.message}
            except Exception as exc:  # the replier answers 500 for these
                vec["error"] = {"status": 500, "message": repr(exc)}
            out.append(vec)
    return out


def metadata_vectors():
    listings = [
        {"model_id": "m", "task": "multiclass", "inputs": 4, "classes": ["a", "b", "c"]},
        {"model_id": "m", "task": "binary", "inputs": 2, "classes": [0, 1]},
        {"model_id": "m", "task": "binary", "inputs": 2, "classes": [True, False]},
        {"model_id": "m", "task": "binary", "inputs": 2, "classes": [0.5, 1]},
        {"model_id": "m", "task": "regression", "inputs": 3, "outputs": 1},
        {"model_id": "m", "task": "regression", "inputs": 3, "outputs": 2},
        {"model_id": "m", "task": "regression", "inputs": 3},
        {"model_id": "m", "task": "multiclass", "inputs": 3, "classes": []},
        {"model_id": "m", "task": "multiclass", "inputs": 3},
        {"model_id": "m", "task": "multiclass", "classes": ["a"]},
        {"model_id": "m", "task": "multiclass", "inputs": 2, "classes": ["a", 1]},
    ]
    out = []
    for listing in listings:
        vec = {"listing": listing}
        try:
            vec["ok"] = oip.model_metadata("m\xe9", listing)
        except Exception as exc:
            vec["error"] = {"status": 500, "message": repr(exc)}
        out.append(vec)
    return out


if __name__ == "__main__":
    vectors = {"parse": parse_vectors(), "responses": response_vectors(), "metadata": metadata_vectors(),
               "server": oip.server_metadata("0.1.0"),
               "error_status": {code.value: oip.error_status(code) for code in wire.ErrorCode}}
    (HERE / "oip_golden.json").write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n")
    print(len(vectors["parse"]), "parse,", len(vectors["responses"]), "response vectors")
