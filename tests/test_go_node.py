"""The Go node (go/worker) as a full member of a mixed cluster (issue 17).

Real processes on loopback with CURVE on: Python, Go, Python. Roles are set
deterministically with the test fault files (``--fault-file``, which both
implementations honour): a node is made leader by giving it an entry a
rival lacks and cutting the old leader off (Raft's election restriction
then leaves it the only possible winner). Every wait polls with a deadline.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import numpy as np
import pytest

from client import Client
from harness.cluster import ROOT, LocalCluster, wait_for
from zmqnode.transport import security

pytestmark = [pytest.mark.process, pytest.mark.go]

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.float32)
MODELS = ROOT / "go" / "ml" / "testdata" / "models"
IMPLS = ("py", "go", "py")


@pytest.fixture
def cluster(tmp_path):
    try:
        from harness.gobuild import GoBuildError, ensure_worker

        ensure_worker()
    except GoBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    c = LocalCluster(tmp_path, n=3, impls=IMPLS)
    with c.running():
        yield c


def go_node(cluster: LocalCluster) -> str:
    return next(n for n in cluster.ids if cluster.impls[n] == "go")


def py_nodes(cluster: LocalCluster) -> list[str]:
    return [n for n in cluster.ids if cluster.impls[n] == "py"]


def write_faults(cluster: LocalCluster, rules: dict[str, dict[str, list[str]]]) -> None:
    for nid in cluster.ids:
        path = cluster.fault_file(nid)
        if nid in rules:
            path.write_text(json.dumps(rules[nid]))
        else:
            path.unlink(missing_ok=True)


def import_file(cluster: LocalCluster, name: str = "binary.bin") -> str:
    with cluster.client(retries=8) as c:
        return c.import_model(MODELS / name, request_id=uuid.uuid4().hex)["model_id"]


def applied_everywhere(cluster: LocalCluster, nodes: list[str]) -> bool:
    statuses = [cluster.status(n) for n in nodes]
    top = max(s["commit_index"] for s in statuses)
    return all(s["applied_index"] >= top for s in statuses)


def make_leader(cluster: LocalCluster, target: str) -> None:
    """Make ``target`` the leader: cut a rival off, commit an entry it then
    lacks, cut the old leader off and let ``target`` win (the rival's log is
    behind, so it cannot), then heal and wait until every node agrees."""
    leader = cluster.leader()
    if leader == target:
        return
    rival = next(n for n in cluster.ids if n not in (leader, target))
    everyone_else = [n for n in cluster.ids if n != rival]
    write_faults(
        cluster,
        {rival: {"drop_in": everyone_else, "drop_out": everyone_else}}
        | {n: {"drop_in": [rival], "drop_out": [rival]} for n in everyone_else},
    )

    def target_ahead_of_rival() -> bool:
        # The fault files are read within ~50 ms: until the rival has
        # missed an entry that the target holds, commit another.
        with Client([leader], keys=cluster.keys, timeout=5, retries=8) as c:
            c.import_model(MODELS / "regression-1.bin", request_id=uuid.uuid4().hex)
        wait_for(
            lambda: cluster.status(target)["last_index"] >= cluster.status(leader)["commit_index"],
            10,
            "the target to hold the new entry",
        )
        return cluster.status(rival)["last_index"] < cluster.status(target)["last_index"]

    wait_for(target_ahead_of_rival, 20, "an entry the rival lacks")
    others = [n for n in cluster.ids if n != leader]
    write_faults(
        cluster,
        {leader: {"drop_in": others, "drop_out": others}}
        | {n: {"drop_in": [leader], "drop_out": [leader]} for n in others},
    )
    wait_for(lambda: cluster.status(target)["role"] == "leader", 15, f"{target} to lead")
    cluster.heal()
    assert cluster.leader(timeout=15) == target


def model_digests(cluster: LocalCluster, nodes: list[str]) -> dict[str, dict[str, str]]:
    """node -> {file name: sha256} of its models/ directory."""
    out = {}
    for nid in nodes:
        files = sorted((cluster.storage(nid) / "models").glob("*.bin"))
        out[nid] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    return out


def same_files_everywhere(cluster: LocalCluster, count: int) -> dict[str, dict[str, str]] | None:
    digests = model_digests(cluster, cluster.ids)
    first = digests[cluster.ids[0]]
    if len(first) == count and all(d == first for d in digests.values()):
        return digests
    return None


def raw(node: str, header: dict, keys, blobs: tuple[bytes, ...] = ()) -> dict:
    import zmq

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    security.make_client(sock, keys)
    sock.connect(f"tcp://{node}")
    try:
        sock.send_multipart([b"", json.dumps({"v": 1, **header}).encode(), *blobs])
        assert sock.poll(5000), f"{node} did not answer"
        return json.loads(sock.recv_multipart()[1])
    finally:
        sock.close()


def http(node: str, path: str, offset: int, body: bytes | None = None, token: str = "") -> tuple:
    """(status, body) of one HTTP request to a node's monitor (offset -1000)
    or inference port (+5000)."""
    import http.client

    port = int(node.rsplit(":", 1)[1]) + offset
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def spread_data() -> tuple[np.ndarray, np.ndarray]:
    """Enough rows for one chunk per node's trainer."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.float32)


def answers(node: str, cluster: LocalCluster, model_ids: list[str]) -> dict:
    """What ``node`` says about the models, minus who said it."""
    with Client([node], keys=cluster.keys, timeout=5, max_redirects=0) as c:
        listed = c.list_models()
        infos = {m: c.info(m) for m in model_ids}
        predictions = {}
        for m in model_ids:
            width = infos[m]["inputs"]
            rows = np.linspace(-1, 1, 4 * width, dtype=np.float32).reshape(4, width)
            reply = c.predict_reply(m, rows, proba=bool(infos[m].get("classes")))
            assert reply.node == node, "a follower serves predictions itself"
            predictions[m] = [reply.array("outputs").tolist(), reply.header.get("classes")]
            if "probabilities" in reply.header:
                # float32 exp/log differ in the last bits between numpy and
                # Go's math: compared to 6 significant digits.
                proba = reply.array("probabilities").astype(np.float64)
                predictions[m].append(np.round(proba, 6).tolist())
    return {"list": listed, "info": infos, "predict": predictions}


def test_go_follower_serves_what_a_python_leader_committed(cluster):
    go = go_node(cluster)
    py_leader, py_follower = py_nodes(cluster)
    make_leader(cluster, py_leader)

    status = cluster.status(go)
    assert status["node"] == go and status["role"] == "follower"
    assert status["leader"] == py_leader
    assert set(status["peers"]) == set(py_nodes(cluster))
    assert {"limits", "load", "commit_index", "applied_index", "models"} <= set(status)

    x, y = spread_data()
    with cluster.client() as c:
        result = c.train(x, y, timeout=60)
    trained = result["model_id"]
    assert set(result["trainers"]) == set(cluster.ids), "a chunk went to the Go node's trainer"
    imported = import_file(cluster, "binary.bin")
    wait_for(lambda: applied_everywhere(cluster, cluster.ids), 10, "every node to apply")

    model_ids = [trained, imported]
    assert answers(go, cluster, model_ids) == answers(py_follower, cluster, model_ids)
    count = len(answers(go, cluster, model_ids)["list"])
    wait_for(lambda: same_files_everywhere(cluster, count), 10, "identical model files")

    # The monitor and HTTP inference answer as a Python node's do.
    code, body = http(go, "/status", -1000)
    assert code == 200 and json.loads(body)["node"] == go
    code, body = http(go, "/metrics", -1000)
    assert code == 200 and b"zmqnode_raft_term" in body and b"zmqnode_requests_total" in body
    token = (cluster.keys / "http.token").read_text().strip()
    x = spread_data()[0][:5]
    infer = json.dumps(
        {
            "inputs": [
                {
                    "name": "inputs",
                    "datatype": "FP32",
                    "shape": list(x.shape),
                    "data": x.ravel().tolist(),
                }
            ]
        }
    ).encode()
    served = {
        node: http(node, f"/v2/models/{trained}/infer", 5000, infer, token)
        for node in (go, py_follower)
    }
    assert served[go][0] == 200, served[go]
    outputs = {
        node: {o["name"]: o for o in json.loads(body)["outputs"]}
        for node, (_, body) in served.items()
    }
    for name, out in outputs[py_follower].items():
        mine = outputs[go][name]
        assert (mine["datatype"], mine["shape"]) == (out["datatype"], out["shape"])
        if out["datatype"] == "FP32":  # float32 maths differs in the last bits (SPEC_NOTES S3)
            assert np.allclose(mine["data"], out["data"], rtol=1e-5, atol=1e-7), name
        else:
            assert mine["data"] == out["data"], name

    # Writes and membership requests on the Go follower are redirected.
    for kind in ("IMPORT", "TRAIN", "MEMBERS"):
        reply = raw(go, {"type": kind, "id": uuid.uuid4().hex}, cluster.client_keys())
        assert reply["status"] == "REDIRECT" and reply["leader"] == py_leader, reply
    bad = raw(go, {"type": "FROB", "id": "x"}, cluster.client_keys())
    assert bad["status"] == "ERROR" and bad["code"] == "UNKNOWN_TYPE"
    missing = raw(go, {"type": "INFO", "id": "y", "model_id": "mnope"}, cluster.client_keys())
    assert missing["status"] == "ERROR" and missing["code"] == "NOT_FOUND"


def test_go_leader_replicates_to_python_followers(cluster):
    go = go_node(cluster)
    make_leader(cluster, go)
    model_id = import_file(cluster, "multiclass-strings.bin")
    with Client([go], keys=cluster.keys, timeout=5) as c:
        members = c.members()
        assert {m["node"] for m in members["members"]} == set(cluster.ids)
        assert members["leader"] == go
        x, y = spread_data()
        result = c.train(x, y, timeout=60)
        assert set(result["trainers"]) == set(cluster.ids), "the Go leader used every trainer"
        assert (c.predict(result["model_id"], x).ravel() == y).mean() > 0.9
    wait_for(lambda: applied_everywhere(cluster, cluster.ids), 10, "every node to apply")
    py = py_nodes(cluster)
    ids = [model_id, result["model_id"]]
    assert answers(go, cluster, ids) == answers(py[0], cluster, ids)
    count = len(answers(go, cluster, ids)["list"])
    wait_for(lambda: same_files_everywhere(cluster, count), 10, "identical model files")

    # kill -9 of the leading Go node: the Python nodes elect a leader and
    # keep writing; the Go node comes back as a follower and catches up.
    cluster.kill(go)
    after = import_file(cluster, "regression-1.bin")
    cluster.start(go)
    wait_for(
        lambda: (
            cluster.status(go)["applied_index"] >= cluster.status(cluster.leader())["commit_index"]
        ),
        20,
        "the restarted Go node to catch up",
    )
    with Client([go], keys=cluster.keys, timeout=5) as c:
        assert {*ids, after} <= {m["model_id"] for m in c.list_models()}
    wait_for(lambda: same_files_everywhere(cluster, count + 1), 10, "identical model files")


def test_go_node_killed_and_restarted_loses_nothing(cluster):
    go = go_node(cluster)
    make_leader(cluster, py_nodes(cluster)[0])
    first = import_file(cluster, "binary.bin")
    cluster.kill(go)  # SIGKILL
    later = [import_file(cluster, name) for name in ("regression-2.bin", "multiclass-floats.bin")]
    cluster.start(go)
    wait_for(
        lambda: (
            cluster.status(go)["applied_index"] >= cluster.status(cluster.leader())["commit_index"]
        ),
        20,
        "the restarted Go node to catch up",
    )
    with Client([go], keys=cluster.keys, timeout=5) as c:
        listed = {m["model_id"] for m in c.list_models()}
    assert {first, *later} <= listed
    wait_for(lambda: same_files_everywhere(cluster, len(listed)), 10, "identical model files")


@pytest.mark.timeout(180)
def test_go_node_installs_a_snapshot_and_fetches_the_files(tmp_path):
    c = LocalCluster(tmp_path, n=3, impls=IMPLS, extra_args=("--snapshot-entries", "2"))
    with c.running():
        go = go_node(c)
        make_leader(c, py_nodes(c)[0])
        c.kill(go)
        ids = [
            import_file(c, name) for name in ("binary.bin", "regression-2.bin", "plan-strings.bin")
        ]
        leader = c.leader()
        wait_for(lambda: c.status(leader)["snapshot_index"] > 0, 10, "the leader to compact")
        c.start(go)
        wait_for(
            lambda: (s := c.status(go))["snapshot_index"] > 0 and s["models_repairing"] == 0,
            30,
            "the Go node to install the snapshot and fetch the files",
        )
        with Client([go], keys=c.keys, timeout=5) as client:
            assert set(ids) <= {m["model_id"] for m in client.list_models()}
        count = len(model_digests(c, [leader])[leader])
        wait_for(lambda: same_files_everywhere(c, count), 20, "identical model files")


@pytest.mark.timeout(240)
def test_each_node_leads_in_turn_and_a_python_node_killed_loses_nothing(cluster):
    """The seed's flow with each node as leader in turn: train, list and
    predict on every node; then kill -9 a Python node, write without it,
    restart it: every node ends with the same models and the same bytes."""
    x, y = spread_data()
    trained = []
    for target in cluster.ids:
        make_leader(cluster, target)
        with cluster.client() as c:
            result = c.train(x, y, timeout=60)
        assert set(result["trainers"]) <= set(cluster.ids)
        trained.append(result["model_id"])
        wait_for(lambda: applied_everywhere(cluster, cluster.ids), 10, "every node to apply")
        for node in cluster.ids:
            with Client([node], keys=cluster.keys, timeout=5, max_redirects=0) as c:
                assert set(trained) <= {m["model_id"] for m in c.list_models()}
                for model_id in trained:
                    assert (c.predict(model_id, x).ravel() == y).mean() > 0.9

    victim = next(n for n in py_nodes(cluster) if n != cluster.leader())
    cluster.kill(victim)  # SIGKILL
    later = import_file(cluster, "multiclass-floats.bin")
    cluster.start(victim)
    wait_for(
        lambda: (
            cluster.status(victim)["applied_index"]
            >= cluster.status(cluster.leader())["commit_index"]
        ),
        20,
        "the restarted Python node to catch up",
    )
    with Client([victim], keys=cluster.keys, timeout=5) as c:
        listed = {m["model_id"] for m in c.list_models()}
    assert {*trained, later} <= listed
    wait_for(lambda: same_files_everywhere(cluster, len(listed)), 10, "identical model files")


@pytest.mark.timeout(240)
def test_a_go_node_joins_as_a_learner_is_promoted_and_votes(cluster):
    """A Go node started empty with --join: the cluster adds it as a learner
    (JOIN), it catches up and serves, it is promoted, and a write commits
    with four voters."""
    import signal
    import subprocess

    from harness.cluster import pick_base_ports
    from harness.gobuild import ensure_worker
    from zmqnode.transport.security import add_node_key

    model_id = import_file(cluster, "binary.bin")
    port = pick_base_ports(1)[0]
    joiner = f"127.0.0.1:{port}"
    key = add_node_key(cluster.keys, "gojoiner")
    storage = cluster.workdir / "gojoiner_storage"
    out = open(cluster.workdir / "gojoiner.out", "wb")
    proc = subprocess.Popen(
        [str(ensure_worker()), "--host", "127.0.0.1", "--port", str(port), "--join",
         py_nodes(cluster)[0], "--keys", str(cluster.keys), "--node-key", str(key),
         "--storage-dir", str(storage)],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with cluster.client(retries=8) as c:
            wait_for(lambda: joiner in {m["node"] for m in c.members()["members"]}, 60, "the join")
        assert cluster.status(joiner)["role"] == "learner"
        with Client([joiner], keys=cluster.keys, timeout=5, max_redirects=0) as learner:
            wait_for(lambda: learner.info(model_id), 30, "the learner to serve the model")
        with cluster.client(retries=20) as c:
            promoted = c.change_member("promote", joiner, timeout=60)
            voters = {m["node"] for m in promoted["members"] if m["voter"]}
            assert voters == {*cluster.ids, joiner}
        assert wait_for(lambda: cluster.status(joiner)["role"] == "follower", 10, "a voter")
        later = import_file(cluster, "regression-2.bin")

        def listed_on_joiner() -> bool:
            with Client([joiner], keys=cluster.keys, timeout=5) as c:
                return later in {m["model_id"] for m in c.list_models()}

        wait_for(listed_on_joiner, 20, "the new voter to hold the next model")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_go_and_python_nodes_refuse_bad_requests_in_the_same_words(cluster):
    """Code and message of each ERROR, from a Go and a Python follower (and
    each as leader for the writes): the wording is part of what a client sees."""
    make_leader(cluster, py_nodes(cluster)[0])
    model_id = import_file(cluster, "binary.bin")
    keys = cluster.client_keys()

    def f32(shape: list[int]) -> dict:
        return {"dtype": "float32", "shape": shape, "frame": 0}

    cases = [
        ({"type": "PREDICT", "model_id": model_id, "inputs": f32([1, 3])}, [b"\0" * 7]),
        ({"type": "PREDICT", "model_id": model_id, "inputs": f32([1, 2])}, [b"\0" * 8]),
        ({"type": "PREDICT", "model_id": model_id, "inputs": f32([2, 2, 2])}, [b"\0" * 32]),
        ({"type": "PREDICT", "model_id": model_id, "inputs": {"dtype": "float16"}}, [b"\0" * 6]),
        (
            {"type": "PREDICT", "model_id": model_id, "inputs": f32([1, 3]), "proba": 1},
            [b"\0" * 12],
        ),
        ({"type": "PREDICT", "model_id": 5, "inputs": f32([1, 3])}, [b"\0" * 12]),
        ({"type": "PREDICT", "model_id": model_id}, []),
        ({"type": "INFO"}, []),
        ({"type": "FETCH", "model_id": model_id, "offset": -1, "length": 5}, []),
        ({"type": "FETCH", "model_id": model_id, "offset": 0, "length": True}, []),
        ({"type": "FROB"}, []),
        ({"type": "MEMBER_CHANGE", "change": "frob", "node": "a:1"}, []),
    ]
    go, py = go_node(cluster), py_nodes(cluster)[1]

    def answer(node: str, header: dict, blobs: list[bytes]) -> tuple:
        reply = raw(node, {**header, "id": uuid.uuid4().hex}, keys, tuple(blobs))
        return reply.get("status"), reply.get("code"), reply.get("message")

    for header, blobs in cases:
        assert answer(go, header, blobs) == answer(py, header, blobs), header

    writes = [
        ({"type": "IMPORT"}, [b"not a model"]),
        ({"type": "TRAIN", "inputs": f32([2, 2])}, [b"\0" * 16]),
    ]
    by_leader = {}
    for leader in (go, py_nodes(cluster)[0]):
        make_leader(cluster, leader)
        by_leader[cluster.impls[leader]] = [answer(leader, h, b) for h, b in writes]
    assert by_leader["go"] == by_leader["py"]
