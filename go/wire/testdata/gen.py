"""Golden vectors for the Go codec (go/wire), made by the Python codec.

Run from the repository root:  .venv/bin/python go/wire/testdata/gen.py
It rewrites go/wire/testdata/*.json. Frames are base64; every vector also
says what the frames mean, as the Python node reads them, so the Go tests
check decoding (meaning) and encoding (bytes) separately.

Nothing here is random: the output is the same on every run, so a diff of
the JSON files is a diff of the wire format.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from zmqnode.raft.messages import Entry, EntryKind, Message, MessageType, Snapshot  # noqa: E402
from zmqnode.transport import raft_codec, wire  # noqa: E402

OUT = Path(__file__).resolve().parent


def b64(frames):
    return [base64.b64encode(bytes(f)).decode() for f in frames]


def write(name, vectors):
    text = json.dumps(vectors, indent=1, ensure_ascii=False, sort_keys=False) + "\n"
    (OUT / f"{name}.json").write_text(text, encoding="utf-8")


def f32(rows):
    return np.asarray(rows, dtype=np.float32)


XOR_IN = f32([[0, 0], [0, 1], [1, 0], [1, 1]])
XOR_OUT = f32([[0], [1], [1], [0]])
RID = "5f0c2d9e6b0e4a8f9a3c1d2e3f4a5b6c"
MEMBERSHIP = {
    "voters": ["127.0.0.1:9000", "127.0.0.1:9001"],
    "learners": ["127.0.0.1:9002"],
    "credentials": {"127.0.0.1:9000": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"},
}
MODEL = {
    "model_id": "m3c1a2b", "created": 1733500000.123456, "size_bytes": 1234,
    "sha256": "ab" * 32, "index": 7, "task": "binary", "inputs": 2, "outputs": 1,
    "hidden_layers": [64, 64], "activation": "relu", "classes": [0, 1],
    "metrics": {"loss": 0.004, "accuracy": 1.0, "val_accuracy": 0.9999999, "epochs": 200},
    "features": ["x\u00e9", "y \"quoted\"\n"], "targets": ["label"],
}


def requests():
    """(name, header, blobs) of every §5 request."""
    train_in = wire.array_to_frame(XOR_IN, 0)
    train_out = wire.array_to_frame(XOR_OUT, 1)
    labels = wire.array_to_frame(np.array([0, 1, 1, 0], dtype=np.int64), 1)
    yield "TRAIN", {
        "type": "TRAIN", "id": RID, "inputs": train_in[0], "outputs": train_out[0],
        "options": {}, "timeout_ms": 10000,
    }, [train_in[1], train_out[1]]
    yield "TRAIN with classes, features and options", {
        "type": "TRAIN", "id": RID, "inputs": train_in[0], "outputs": labels[0],
        "classes": ["no", "yes"], "features": ["a", "b"], "targets": ["xor"],
        "options": {"hidden_layers": [8, 8], "epochs": 50, "learning_rate": 0.05, "seed": 7,
                    "activation": "tanh", "task": "binary", "validation_fraction": 0.2,
                    "l2": 1e-6},
        "timeout_ms": 10000,
    }, [train_in[1], labels[1]]
    model = b"ZMQM" + bytes(range(256)) * 3
    yield "IMPORT", {"type": "IMPORT", "id": RID, "filename": "model.bin",
                     "size_bytes": len(model), "timeout_ms": 10000}, [model]
    row = wire.rows_to_frame([[1.0, 0.0]])
    yield "PREDICT", {"type": "PREDICT", "id": RID, "model_id": "m3c1a2b",
                      "inputs": row[0], "timeout_ms": 10000}, [row[1]]
    yield "PREDICT proba", {"type": "PREDICT", "id": RID, "model_id": "m3c1a2b",
                            "inputs": row[0], "proba": True}, [row[1]]
    yield "LIST", {"type": "LIST", "id": RID, "timeout_ms": 10000}, []
    yield "INFO", {"type": "INFO", "id": RID, "model_id": "m3c1a2b"}, []
    yield "STATUS", {"type": "STATUS", "id": RID}, []
    yield "FETCH", {"type": "FETCH", "id": RID, "model_id": "m3c1a2b", "offset": 1048576,
                    "length": 1048576}, []
    yield "MEMBERS", {"type": "MEMBERS", "id": RID}, []
    yield "MEMBER_CHANGE", {"type": "MEMBER_CHANGE", "id": RID, "change": "add_learner",
                            "node": "[::1]:9003", "credential": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
                            "base_index": 12}, []
    yield "JOIN", {"type": "JOIN", "id": RID, "node": "127.0.0.1:9003",
                   "credential": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}, []
    yield "request with unknown fields and unicode", {
        "v": 1, "type": "STATUS", "id": "\u00e9\u4e2d\U0001F600\u2028", "x_future": {"nested": [None, True, False, -1, 2.5]},
        "ctl": "\b\t\n\f\r\x00\x1f\x7f\"\\/",
    }, []


def replies():
    """(name, function, request, args, fields, blobs) of replies to §5 requests."""
    req = lambda t: {"v": 1, "type": t, "id": RID}  # noqa: E731
    out = wire.array_to_frame(np.array([1], dtype=np.int64), 0)
    proba = wire.array_to_frame(f32([[0.25, 0.75]]), 1)
    yield "TRAIN OK", "ok", req("TRAIN"), [], {
        "model_id": "m3c1a2b", "metrics": MODEL["metrics"],
        "trainers": ["127.0.0.1:9001", "127.0.0.1:9000"], "warnings": [],
        "rounds": 3, "train_seconds": 1.25}, []
    yield "TRAIN PROGRESS", "progress", req("TRAIN"), [], {
        "round": 1, "rounds": 3, "epoch": 10, "epochs": 200,
        "metrics": {"loss": 0.6931471805599453, "val_accuracy": 0.5}, "elapsed_s": 0.1,
        "trainers": ["127.0.0.1:9001"]}, []
    yield "IMPORT OK", "ok", req("IMPORT"), [], {"model_id": "m3c1a2b", "summary": MODEL}, []
    yield "PREDICT OK", "ok", req("PREDICT"), [], {
        "model_id": "m3c1a2b", "node": "127.0.0.1:9002", "outputs": out[0],
        "classes": [0, 1], "probabilities": proba[0]}, [out[1], proba[1]]
    yield "PREDICT OK named classes", "ok", req("PREDICT"), [], {
        "model_id": "m3c1a2b", "node": "127.0.0.1:9002", "outputs": out[0],
        "classes": ["setosa", "versicolor", "virginica"]}, [out[1]]
    yield "LIST OK", "ok", req("LIST"), [], {"models": [MODEL, {**MODEL, "model_id": "m2"}]}, []
    yield "INFO OK", "ok", req("INFO"), [], {"model": MODEL, "metadata": {"format": 1, "extra": None}}, []
    yield "STATUS OK", "ok", req("STATUS"), [], {
        "node": "127.0.0.1:9000", "role": "follower", "term": 3, "leader": None,
        "commit_index": 10, "applied_index": 10, "peers": ["127.0.0.1:9001", "127.0.0.1:9002"],
        "models": 2, "limits": {"max_request_bytes": 536870912, "max_model_bytes": 67108864,
                                "max_trainings": 4, "max_pending": 10000,
                                "max_uncommitted_bytes": 268435456},
        "load": {"trainings": 0, "pending": 0, "uncommitted_bytes": 0},
        "uptime_s": 12.5, "last_index": 10}, []
    yield "FETCH OK", "ok", req("FETCH"), [], {"size": 3, "offset": 0, "sha256": "cd" * 32}, [b"abc"]
    members = {
        "members": [{"node": "127.0.0.1:9000", "voter": True, "leader": True, "has_key": True,
                     "match": 12, "lag": 0, "last_heard_s": None},
                    {"node": "127.0.0.1:9002", "voter": False, "leader": False, "has_key": True,
                     "match": 11, "lag": 1, "last_heard_s": 0.05}],
        "membership_index": 12, "committed": True,
        "membership": json.dumps(MEMBERSHIP), "leader": "127.0.0.1:9000"}
    yield "MEMBERS OK", "ok", req("MEMBERS"), [], members, []
    yield "MEMBER_CHANGE OK", "ok", req("MEMBER_CHANGE"), [], members, []
    yield "JOIN OK", "ok", req("JOIN"), [], members, []
    yield "REDIRECT", "redirect", req("TRAIN"), ["127.0.0.1:9001"], {}, []
    yield "REDIRECT IPv6", "redirect", req("PREDICT"), ["[::1]:9001"], {"node": "[::1]:9000"}, []
    for code in wire.ErrorCode:
        yield f"ERROR {code.value}", "error", req("TRAIN"), [code.value, f"{code.value.lower()}: what, and what to do"], {}, []
    yield "ERROR to an unreadable request", "error", None, ["MALFORMED", "header is not valid JSON"], {}, []
    yield "ERROR to a request with a bad id", "error", {"type": "PREDICT", "id": "x" * 129}, ["BAD_REQUEST", "too long"], {}, []
    yield "ERROR with extra fields", "error", req("MEMBER_CHANGE"), ["CONFLICT", "changed"], {"membership_index": 14}, []
    yield "OK overriding a base field", "ok", req("STATUS"), [], {"status": "OK", "node": "n"}, []


def body_vectors():
    vectors = []
    for name, header, blobs in requests():
        frames = wire.encode(header, blobs)
        h, b = wire.decode(frames)
        vectors.append({"name": name, "kind": "request", "frames": b64(frames),
                        "header": h, "blobs": len(b)})
    fns = {"ok": wire.ok_reply, "error": wire.error_reply,
           "redirect": wire.redirect_reply, "progress": wire.progress_reply}
    for name, fn, req, args, fields, blobs in replies():
        header = fns[fn](req, *args, **fields)
        frames = wire.encode(header, blobs)
        h, _ = wire.decode(frames, require_id=False)
        vectors.append({"name": name, "kind": "reply", "frames": b64(frames), "header": h,
                        "blobs": len(blobs), "reply": {"fn": fn, "request": req, "args": args,
                                                       "fields": fields}})
    return vectors


def envelope_vectors():
    body = wire.encode({"type": "STATUS", "id": RID})
    out = []
    for name, routing in [("ROUTER from a DEALER", [b"\x00k\x8bEg"]),
                          ("ROUTER through two hops", [b"\x00\x01", b"hop2"]),
                          ("no routing frames", [])]:
        frames = wire.join_envelope(routing, body)
        r, b = wire.split_envelope(frames)
        assert r == routing and b == body
        out.append({"name": name, "frames": b64(frames), "routing": b64(r), "body": b64(b)})
    return out


def array_vectors():
    cases = [
        ("float32 2-D", np.array([[0, 1.5], [-2.25, 3.4028235e38]], dtype=np.float32)),
        ("float32 with -0 and subnormal", np.array([-0.0, 1e-45, 0.1], dtype=np.float32)),
        ("float64 1-D", np.array([0.1, -1e300, 5e-324, 2.0**53], dtype=np.float64)),
        ("int32", np.array([[-2147483648, 2147483647, 0]], dtype=np.int32)),
        ("int64", np.array([-(2**63), 2**63 - 1, 1], dtype=np.int64)),
        ("int64 empty rows", np.zeros((0, 3), dtype=np.int64)),
        ("float32 0-d", np.array(7.5, dtype=np.float32)),
        ("float64 8-D", np.arange(2 * 1 * 1 * 1 * 1 * 1 * 1 * 2, dtype=np.float64).reshape(2, 1, 1, 1, 1, 1, 1, 2)),
        ("big-endian input is sent little-endian", np.array([1, 256], dtype=">i4")),
    ]
    out = []
    for i, (name, a) in enumerate(cases):
        desc, blob = wire.array_to_frame(a, frame=i % 3)
        header = {"type": "X", "id": "a", "arr": desc}
        blobs = [b"pad"] * (i % 3) + [blob]
        frames = wire.encode(header, blobs)
        back = wire.read_array(wire.decode(frames)[0], wire.decode(frames)[1], "arr",
                               max_bytes=wire.DEFAULT_MAX_ARRAY_BYTES)
        assert back.tobytes() == a.astype(back.dtype).tobytes()
        values = back.ravel().tolist()
        if back.dtype.kind == "f":
            values = [v.hex() for v in values]  # exact, whatever the value
        out.append({"name": name, "frames": b64(frames), "key": "arr", "dtype": desc["dtype"],
                    "shape": desc["shape"], "frame": desc["frame"], "values": values,
                    "descriptor_json": orjson.dumps(desc).decode()})
    return out


def reject_vectors():
    """Bodies the Python node refuses, with the code it answers."""
    ok = lambda **kw: orjson.dumps({"v": 1, "type": "STATUS", "id": RID, **kw})  # noqa: E731
    cases = [
        ("no frames", [], {}),
        ("header over the limit", [b'{"v":1,"type":"STATUS","id":"abc"}   '], {"max_header_bytes": 36}),
        ("header exactly at the limit", [b'{"v":1,"type":"STATUS","id":"abc"}  '], {"max_header_bytes": 36}),
        ("not JSON", [b"{v:1}"], {}),
        ("empty header frame", [b""], {}),
        ("JSON array", [b"[1,2]"], {}),
        ("JSON string", [b'"x"'], {}),
        ("trailing data", [b'{"v":1,"type":"STATUS","id":"a"} x'], {}),
        ("trailing whitespace", [b'{"v":1,"type":"STATUS","id":"a"}\n '], {}),
        ("invalid UTF-8", [b'{"v":1,"type":"STATUS","id":"\xff"}'], {}),
        ("lone surrogate escape", [b'{"v":1,"type":"STATUS","id":"\\ud800"}'], {}),
        ("surrogate pair escape", [b'{"v":1,"type":"STATUS","id":"\\ud83d\\ude00"}'], {}),
        ("NaN literal", [b'{"v":1,"type":"STATUS","id":"a","x":NaN}'], {}),
        ("number overflowing a double", [b'{"v":1,"type":"STATUS","id":"a","x":1e400}'], {}),
        ("integer beyond 64 bits is a float", [b'{"v":1,"type":"STATUS","id":"a","x":18446744073709551616}'], {}),
        ("duplicate keys: the last wins", [b'{"v":2,"type":"STATUS","id":"a","v":1}'], {}),
        ("nested 1024 deep", [b'{"v":1,"type":"STATUS","id":"a","x":' + b"[" * 1023 + b"]" * 1023 + b"}"], {}),
        ("nested 1025 deep", [b'{"v":1,"type":"STATUS","id":"a","x":' + b"[" * 1024 + b"]" * 1024 + b"}"], {}),
        ("byte order mark", [b'\xef\xbb\xbf{"v":1,"type":"STATUS","id":"a"}'], {}),
        ("v missing", [orjson.dumps({"type": "STATUS", "id": "a"})], {}),
        ("v 2", [ok(v=2)], {}),
        ("v string", [ok(v="1")], {}),
        ("v true", [ok(v=True)], {}),
        ("v 1.0", [b'{"v":1.0,"type":"STATUS","id":"a"}'], {}),
        ("v 1e0", [b'{"v":1e0,"type":"STATUS","id":"a"}'], {}),
        ("v -0 is not 1", [b'{"v":-0,"type":"STATUS","id":"a"}'], {}),
        ("type missing", [orjson.dumps({"v": 1, "id": "a"})], {}),
        ("type empty", [ok(type="")], {}),
        ("type number", [ok(type=3)], {}),
        ("id missing", [orjson.dumps({"v": 1, "type": "STATUS"})], {}),
        ("id number", [ok(id=5)], {}),
        ("id 128 characters", [ok(id="\u00e9" * 128)], {}),
        ("id 129 characters", [ok(id="x" * 129)], {}),
        ("id empty", [ok(id="")], {}),
        ("id empty in an ERROR reply", [ok(id="", status="ERROR", code="MALFORMED", message="m")], {}),
        ("id empty allowed", [ok(id="")], {"require_id": False}),
    ]
    out = []
    for name, frames, kw in cases:
        try:
            header, blobs = wire.decode(frames, **kw)
            code, parsed = None, header
        except wire.ProtocolError as exc:
            code, parsed = exc.code.value, exc.header
        deep = name.startswith("nested")  # too deep for the json module to write
        out.append({"name": name, "frames": b64(frames),
                    "max_header_bytes": kw.get("max_header_bytes", 0),
                    "allow_empty_id": not kw.get("require_id", True),
                    "code": code, "header": None if deep else parsed, "header_checked": not deep})
    return out


def array_reject_vectors():
    def body(desc, blobs):
        return {"type": "X", "id": "a", "arr": desc}, blobs
    cases = [
        ("descriptor missing", {"type": "X", "id": "a"}, [b""]),
        ("descriptor null", {"type": "X", "id": "a", "arr": None}, [b""]),
        ("descriptor a list", *body([1], [b""])),
        ("frame out of range", *body({"dtype": "int32", "shape": [1], "frame": 1}, [b"\0" * 4])),
        ("frame negative", *body({"dtype": "int32", "shape": [1], "frame": -1}, [b"\0" * 4])),
        ("frame a string", *body({"dtype": "int32", "shape": [1], "frame": "0"}, [b"\0" * 4])),
        ("frame null", *body({"dtype": "int32", "shape": [1], "frame": None}, [b"\0" * 4])),
        ("frame true", *body({"dtype": "int32", "shape": [1], "frame": True}, [b"\0" * 4, b""])),
        ("frame missing means 0", *body({"dtype": "int32", "shape": [1]}, [b"\1\0\0\0"])),
        ("dtype float16", *body({"dtype": "float16", "shape": [1], "frame": 0}, [b"\0\0"])),
        ("dtype missing", *body({"shape": [1], "frame": 0}, [b"\0" * 4])),
        ("dtype big-endian name", *body({"dtype": ">f4", "shape": [1], "frame": 0}, [b"\0" * 4])),
        ("shape not a list", *body({"dtype": "int32", "shape": 4, "frame": 0}, [b"\0" * 16])),
        ("shape negative", *body({"dtype": "int32", "shape": [-1], "frame": 0}, [b""])),
        ("shape float", *body({"dtype": "int32", "shape": [1.0], "frame": 0}, [b"\0" * 4])),
        ("shape bool", *body({"dtype": "int32", "shape": [True], "frame": 0}, [b"\0" * 4])),
        ("shape 9-D", *body({"dtype": "int32", "shape": [1] * 9, "frame": 0}, [b"\0" * 4])),
        ("byte count short", *body({"dtype": "float32", "shape": [4, 2], "frame": 0}, [b"\0" * 30])),
        ("declared over the limit", *body({"dtype": "float64", "shape": [1024, 1024], "frame": 0}, [b""])),
        ("declared overflowing 64 bits", *body({"dtype": "float64", "shape": [2**62, 2**62], "frame": 0}, [b""])),
        ("huge dimension beside zero", *body({"dtype": "float64", "shape": [2**40, 0], "frame": 0}, [b""])),
    ]
    out = []
    for name, header, blobs in cases:
        frames = wire.encode(header, blobs)
        h, b = wire.decode(frames)
        try:
            wire.read_array(h, b, "arr", max_bytes=1 << 20)
            code = None
        except wire.ProtocolError as exc:
            code = exc.code.value
        out.append({"name": name, "frames": b64(frames), "key": "arr", "max_bytes": 1 << 20,
                    "code": code})
    return out


def raft_messages():
    mt = MessageType
    s, d = "127.0.0.1:9000", "127.0.0.1:9001"
    big = (1 << 63) - 1
    yield "pre_vote", Message(mt.PRE_VOTE, s, d, 5, log_index=10, log_term=4)
    yield "pre_vote_resp reject", Message(mt.PRE_VOTE_RESP, d, s, 5, reject=True)
    yield "vote forced", Message(mt.VOTE, s, d, 6, log_index=10, log_term=4, force=True)
    yield "vote_resp", Message(mt.VOTE_RESP, d, s, 6)
    yield "append empty", Message(mt.APPEND, s, d, 6, log_index=10, log_term=4, commit=9)
    yield "append with entries", Message(
        mt.APPEND, s, d, 6, log_index=10, log_term=4, commit=10,
        entries=(Entry(11, 6, EntryKind.NOOP, b""),
                 Entry(12, 6, EntryKind.COMMAND, b"\x00\x00\x00\x05{...}\xff" + bytes(range(256))),
                 Entry(13, 6, EntryKind.CONFIG, json.dumps(MEMBERSHIP).encode())))
    yield "append_resp reject", Message(mt.APPEND_RESP, d, s, 6, reject=True, index=10,
                                        reject_hint=7, log_term=3)
    yield "append_resp", Message(mt.APPEND_RESP, d, s, 6, index=13)
    yield "heartbeat broadcast", Message(mt.HEARTBEAT, s, "*", 6, commit=13, context=42)
    yield "heartbeat_resp", Message(mt.HEARTBEAT_RESP, d, s, 6, context=42)
    yield "snapshot", Message(mt.SNAPSHOT, s, d, 7, snapshot=Snapshot(
        100, 6, b"\x89registry\x00" * 10, json.dumps(MEMBERSHIP).encode()))
    yield "snapshot without membership", Message(mt.SNAPSHOT, s, d, 7,
                                                 snapshot=Snapshot(1, 1, b"", b""))
    yield "timeout_now", Message(mt.TIMEOUT_NOW, s, d, 7)
    yield "read_index", Message(mt.READ_INDEX, d, s, 7, read_ctx="r-\u00e9-1")
    yield "read_index_resp", Message(mt.READ_INDEX_RESP, s, d, 7, read_ctx="r-\u00e9-1", index=99)
    yield "largest integers", Message(mt.APPEND_RESP, "[::1]:9000", "n\u00e9", big, log_index=big,
                                      log_term=big, commit=big, index=big, reject_hint=big,
                                      context=big)


def raft_meaning(m):
    return {
        "type": m.type.value, "src": m.src, "dst": m.dst, "term": m.term,
        "log_index": m.log_index, "log_term": m.log_term, "commit": m.commit,
        "reject": m.reject, "index": m.index, "reject_hint": m.reject_hint,
        "context": m.context, "read_ctx": m.read_ctx, "force": m.force,
        "entries": [{"index": e.index, "term": e.term, "kind": e.kind.value,
                     "data": base64.b64encode(e.data).decode()} for e in m.entries],
        "snapshot": None if m.snapshot is None else {
            "index": m.snapshot.index, "term": m.snapshot.term,
            "data": base64.b64encode(m.snapshot.data).decode(),
            "membership": m.snapshot.membership.decode()},
    }


def raft_vectors():
    out = []
    for name, m in raft_messages():
        frames = raft_codec.encode_raft(m)
        assert raft_codec.decode_raft(frames) == m
        out.append({"name": name, "frames": b64(frames), "message": raft_meaning(m)})
    return out


def raft_reject_vectors():
    good = raft_codec.encode_raft(Message(MessageType.APPEND, "a", "b", 1, log_index=0,
                                          entries=(Entry(1, 1, EntryKind.COMMAND, b"x"),)))
    base = orjson.loads(good[0])

    def edit(**kw):
        h = dict(base)
        for k, v in kw.items():
            if v is _DROP:
                h.pop(k)
            else:
                h[k] = v
        return orjson.dumps(h)

    snap = {"index": 1, "term": 1, "membership": ""}
    cases = [
        ("unknown raft type", [edit(type="raft.gossip"), b"x"]),
        ("client type on the raft path", [edit(type="TRAIN"), b"x"]),
        ("request id set is fine", [edit(id="abc"), b"x"]),
        ("term missing", [edit(term=_DROP), b"x"]),
        ("term true", [edit(term=True), b"x"]),
        ("term negative", [edit(term=-1), b"x"]),
        ("term 2^63", [edit(term=1 << 63), b"x"]),
        ("term float", [b'{"v":1' + good[0][6:].replace(b'"term":1,', b'"term":1.0,', 1), b"x"]),
        ("reject 0", [edit(reject=0), b"x"]),
        ("src null", [edit(src=None), b"x"]),
        ("read_ctx missing", [edit(read_ctx=_DROP), b"x"]),
        ("entries missing", [edit(entries=_DROP), b"x"]),
        ("snapshot missing", [edit(snapshot=_DROP), b"x"]),
        ("one blob too many", [good[0], b"x", b"y"]),
        ("one blob too few", [good[0]]),
        ("entry not an object", [edit(entries=[1]), b"x"]),
        ("entry kind unknown", [edit(entries=[{"index": 1, "term": 1, "kind": "blob"}]), b"x"]),
        ("entry index missing", [edit(entries=[{"term": 1, "kind": "noop"}]), b"x"]),
        ("entries not consecutive", [edit(entries=[{"index": 2, "term": 1, "kind": "noop"}]), b"x"]),
        ("entries on a vote", [edit(type="raft.vote"), b"x"]),
        ("snapshot on an append", [edit(snapshot=snap), b"x", b"s"]),
        ("snapshot message without snapshot", [edit(type="raft.snapshot", entries=[])]),
        ("snapshot not an object", [edit(type="raft.snapshot", entries=[], snapshot=[1]), b"s"]),
        ("snapshot membership absent", [edit(type="raft.snapshot", entries=[], snapshot={"index": 1, "term": 1}), b"s"]),
        ("snapshot membership not a string", [edit(type="raft.snapshot", entries=[], snapshot={**snap, "membership": {}}), b"s"]),
        ("snapshot term missing", [edit(type="raft.snapshot", entries=[], snapshot={"index": 1, "membership": ""}), b"s"]),
        ("fields in another order", [orjson.dumps(dict(reversed(list(base.items())))), b"x"]),
    ]
    out = []
    for name, frames in cases:
        try:
            m = raft_codec.decode_raft(frames)
            code, meaning = None, raft_meaning(m)
        except wire.ProtocolError as exc:
            code, meaning = exc.code.value, None
        out.append({"name": name, "frames": b64(frames), "code": code, "message": meaning})
    return out


_DROP = object()


def float_vectors():
    values = [0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1.5, 3.14, 0.30000000000000004, 1e-4, 1e-5, 1.234e-5,
              1e-6, 1e-7, 1e-10, 5e-324, 2.2250738585072014e-308, 1e15, 999999999999999.9, 1e16,
              1.5e16, 9007199254740992.0, 123456789.0, 1.2345678901234568e17, 1e21, 1e22,
              1.7976931348623157e308, 0.6931471805599453, 1733500000.123456, float("nan"),
              float("inf"), float("-inf"), float(np.float32(0.1)), 100.0, 12345.678]
    return [{"bits": struct.pack(">d", v).hex(), "json": orjson.dumps(v).decode()} for v in values]


def membership_vectors():
    """Membership.encode: the CONFIG entry's data and a snapshot's membership."""
    from zmqnode.raft.membership import Membership

    cases = [
        ("three voters", ["127.0.0.1:9002", "127.0.0.1:9000", "127.0.0.1:9001"], [], {}),
        ("learner with key", ["127.0.0.1:9000"], ["[::1]:9003"],
         {"[::1]:9003": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "127.0.0.1:9000": "x"}),
        ("non-ASCII names", ["n\u00e9:1", "\u4e2d:2", "\U0001F600:3", "a\"q\\\x7f\x01\n:4"], [], {"n\u00e9:1": "k\u2028"}),
    ]
    out = []
    for name, voters, learners, creds in cases:
        data = Membership.of(voters, learners, creds).encode()
        out.append({"name": name, "voters": voters, "learners": learners, "credentials": creds,
                    "bytes": base64.b64encode(data).decode()})
    return out


def main():
    write("bodies", body_vectors())
    write("envelopes", envelope_vectors())
    write("arrays", array_vectors())
    write("rejects", reject_vectors())
    write("array_rejects", array_reject_vectors())
    write("raft", raft_vectors())
    write("raft_rejects", raft_reject_vectors())
    write("floats", float_vectors())
    write("memberships", membership_vectors())


if __name__ == "__main__":
    main()
