"""Micro-batching: many requests, one forward pass, each gets its own rows back."""

from __future__ import annotations

import numpy as np

from zmqnode.ml.training import TrainOptions, train
from zmqnode.serving import PredictionBatcher
from zmqnode.transport import wire


class FakeReply:
    def __init__(self) -> None:
        self.answers: list[tuple[dict, list[bytes]]] = []

    def ok(self, header, blobs=(), **fields) -> None:
        self.answers.append((wire.ok_reply(header, **fields), list(blobs)))

    def error(self, header, code, message) -> None:
        self.answers.append((wire.error_reply(header, code, message), []))


class CountingModel:
    """Wraps a model and counts forward passes."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def classify(self, x, proba=False):
        self.calls += 1
        return self.model.classify(x, proba)


def _model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    return train(x, y, TrainOptions(epochs=20)), x


def test_requests_for_one_model_share_one_forward_pass_and_keep_their_rows():
    model, x = _model()
    counting = CountingModel(model)
    batches: list[int] = []
    batcher = PredictionBatcher("n1", batches.append)
    replies = []
    sizes = [1, 5, 3]
    start = 0
    for i, n in enumerate(sizes):
        reply = FakeReply()
        batcher.add("m1", counting, x[start : start + n], {"type": "PREDICT", "id": f"r{i}"}, reply)
        replies.append((reply, x[start : start + n]))
        start += n
    batcher.flush()
    assert counting.calls == 1
    for i, (reply, rows) in enumerate(replies):
        ((header, blobs),) = reply.answers
        assert header["status"] == "OK" and header["id"] == f"r{i}"
        index = wire.array_from_frame(header["outputs"], blobs[0], max_bytes=1 << 20)
        assert header["classes"] == [0.0, 1.0]
        got = np.asarray(header["classes"])[index]
        assert got.tolist() == model.predict(rows).tolist()
    assert batches == [3]  # one forward pass of three requests, told to the metrics


def test_a_failing_batch_answers_every_request_with_an_error():
    class Broken:
        classes = (0, 1)

        def classify(self, x, proba=False):
            raise RuntimeError("boom")

    batcher = PredictionBatcher("n1")
    replies = [FakeReply() for _ in range(2)]
    for i, reply in enumerate(replies):
        batcher.add(
            "m1", Broken(), np.zeros((1, 2), np.float32), {"type": "PREDICT", "id": str(i)}, reply
        )
    batcher.flush()
    assert [r.answers[0][0]["code"] for r in replies] == ["INTERNAL", "INTERNAL"]


def test_one_bad_request_in_a_batch_gets_bad_input_and_the_others_their_answers():
    model, x = _model()
    batcher = PredictionBatcher("n1")
    good, bad = FakeReply(), FakeReply()
    batcher.add("m1", model, x[:2], {"type": "PREDICT", "id": "good"}, good)
    batcher.add(
        "m1", model, np.array([[np.inf, 0, 0]], np.float32), {"type": "PREDICT", "id": "bad"}, bad
    )
    batcher.flush()
    assert good.answers[0][0]["status"] == "OK"
    assert bad.answers[0][0]["code"] == "BAD_INPUT"


def test_a_classifier_answers_class_indices_with_its_classes_and_probabilities_on_request():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, np.float32)
    names = np.array(["cat", "dog", "eel", "fox"] * 10)
    model = train(x, names, TrainOptions(hidden_layers=(8,), epochs=300, seed=0))
    assert model.classes == ("cat", "dog", "eel", "fox")
    batcher = PredictionBatcher("n0")
    plain, with_proba = FakeReply(), FakeReply()
    batcher.add("m", model, x[:4], {"type": "PREDICT", "id": "a"}, plain)
    batcher.add("m", model, x[:4], {"type": "PREDICT", "id": "b", "proba": True}, with_proba)
    batcher.flush()
    header, blobs = plain.answers[0]
    assert header["classes"] == ["cat", "dog", "eel", "fox"]
    assert header["outputs"] == {"dtype": "int64", "shape": [4], "frame": 0}
    assert np.frombuffer(blobs[0], np.int64).tolist() == [0, 1, 2, 3]
    assert "probabilities" not in header and len(blobs) == 1
    header, blobs = with_proba.answers[0]
    assert header["probabilities"] == {"dtype": "float32", "shape": [4, 4], "frame": 1}
    proba = np.frombuffer(blobs[1], np.float32).reshape(4, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert proba.argmax(axis=1).tolist() == [0, 1, 2, 3]


def test_large_batches_run_in_bounded_passes_and_leave_the_rest_for_the_next_turn(monkeypatch):
    from zmqnode import serving

    monkeypatch.setattr(serving, "MAX_PASS_ROWS", 10)
    monkeypatch.setattr(serving, "MAX_TURN_ROWS", 20)
    model, x = _model()
    counting = CountingModel(model)
    passes: list[int] = []
    batcher = PredictionBatcher("n1", passes.append)
    replies = []
    for i in range(5):  # 5 requests of 6 rows: 30 rows
        reply = FakeReply()
        rows = np.repeat(x[:1], 6, axis=0)
        batcher.add("m1", counting, rows, {"type": "PREDICT", "id": f"r{i}"}, reply)
        replies.append(reply)
    batcher.flush()
    assert passes == [1, 1, 1, 1]  # 6 + 6 > 10: one request a pass; 24 rows >= the turn's 20
    assert [len(r.answers) for r in replies] == [1, 1, 1, 1, 0]
    batcher.flush()  # the next loop turn
    assert passes == [1, 1, 1, 1, 1] and all(len(r.answers) == 1 for r in replies)
    for reply in replies:
        ((header, blobs),) = reply.answers
        assert header["outputs"]["shape"][0] == 6
