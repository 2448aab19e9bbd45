"""Golden vectors for package go/ml, from the Python reference (zmqnode/ml).

Run from the repository root:  .venv/bin/python go/ml/testdata/gen.py
It rewrites every file in go/ml/testdata/ deterministically (same numpy,
same bytes); the Go tests read them. Floats are written as JSON numbers,
which round-trip float32 values exactly.

- rng.json: numpy default_rng draws (uniform, permutation) for several seeds.
- train_chunk.json: SUB_TRAIN jobs (params, chunk, options, round, chunk
  index) and what distributed.run_chunk returns for them.
- prepare.json: what a leader computes before round 0 (prepare +
  split_chunks) and after it (average, evaluate, history) for small sets.
- bad_inputs.json: prepare()'s messages for data a leader refuses.
- options.json: TrainOptions.from_dict of valid and invalid objects.
- bundled.json + bundled/*.f32: iris, wine and breast_cancer split as
  bench/train.py splits them, and Python's test accuracy with default options.
- models/*.bin + models.json: model files written by model_file.py
  (binary, multiclass with string classes, regression with two targets,
  names, a file without features/targets) and Model.predict /
  predict_proba / classify on a few rows.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from zmqnode.ml.distributed import run_chunk  # noqa: E402
from zmqnode.ml.options import TrainOptions  # noqa: E402
from zmqnode.ml.problem import prepare, split_chunks  # noqa: E402
from zmqnode.ml.training import TrainingPlan, train, train_chunk  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent


def floats(a) -> list:
    return np.asarray(a, dtype=np.float64).ravel().tolist()


def write(name: str, doc) -> None:
    (OUT / name).write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n")


def gen_rng() -> None:
    cases = []
    for entropy in ([0, 0], [0, 1, 3, 2], [42, 2, 1], [7], [2**40 + 5, 1, 0, 0], [2**63 - 1, 0]):
        rng = np.random.default_rng(entropy)
        uniform = rng.uniform(-0.25, 0.75, 7)
        perms = [rng.permutation(n).tolist() for n in (0, 1, 2, 5, 33, 300)]
        after = rng.uniform(0, 1, 3)
        cases.append(
            {"entropy": entropy, "uniform": floats(uniform), "perms": perms, "after": floats(after)}
        )
    write("rng.json", cases)


def blobs(rng: np.random.Generator, n: int, d: int, k: int):
    """Standardized-looking inputs and integer classes with some structure."""
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, k))
    labels = (x @ w + 0.3 * rng.normal(size=(n, k))).argmax(axis=1)
    return x, labels


def gen_train_chunk() -> None:
    rng = np.random.default_rng(123)
    cases = []
    specs = [
        # name, task, rows, inputs, outputs, options, round, chunk, epochs
        ("binary-relu-1epoch", "binary", 37, 3, 1, {"hidden_layers": [8], "epochs": 10}, 0, 0, 1),
        ("binary-relu-round", "binary", 37, 3, 1, {"hidden_layers": [8], "epochs": 30}, 1, 1, None),
        (
            "multiclass-tanh",
            "multiclass",
            450,
            4,
            3,
            {"hidden_layers": [16, 8], "activation": "tanh", "epochs": 20, "epochs_per_round": 5},
            2,
            1,
            None,
        ),
        (
            "multiclass-sigmoid-1epoch",
            "multiclass",
            450,
            4,
            3,
            {"hidden_layers": [6], "activation": "sigmoid", "batch_size": 64},
            0,
            2,
            1,
        ),
        (
            "regression-relu",
            "regression",
            60,
            5,
            2,
            {"hidden_layers": [10], "l2": 0, "epochs": 20, "learning_rate": 0.05},
            1,
            0,
            None,
        ),
        (
            "regression-linear-model",
            "regression",
            25,
            2,
            1,
            {"hidden_layers": [], "epochs": 3, "epochs_per_round": 3, "seed": 99},
            0,
            0,
            None,
        ),
        (
            "binary-sigmoid-long",
            "binary",
            120,
            6,
            1,
            {
                "hidden_layers": [12],
                "activation": "sigmoid",
                "epochs": 40,
                "batch_size": 50,
                "seed": 5,
            },
            3,
            2,
            None,
        ),
    ]
    for name, task, n, d, k, opts, round_index, chunk, epochs in specs:
        if task == "regression":
            x = rng.normal(size=(n, d)).astype(np.float32)
            y = (np.sin(x[:, :k] * 2) + 0.1 * x[:, -1:]).astype(np.float32)
        else:
            x, labels = blobs(rng, n, d, k if task == "multiclass" else 2)
            if task == "binary":
                y = labels.astype(np.float32).reshape(-1, 1)
            else:
                y = np.eye(k, dtype=np.float32)[labels]
        options = TrainOptions.from_dict({**opts, "task": task})
        from zmqnode.ml.mlp import Architecture, init_params

        arch = Architecture.for_task(d, options.hidden_layers, y.shape[1], options.activation, task)
        params = init_params(arch, np.random.default_rng([len(cases), 9]))
        params += rng.normal(scale=0.05, size=params.shape).astype(np.float32)
        if epochs is None:
            result = run_chunk(params, x, y, options.to_dict(), round_index, chunk)
        else:
            from zmqnode.ml.problem import Chunk

            result = train_chunk(params, Chunk(chunk, x, y), options, round_index, epochs)
        cases.append(
            {
                "name": name,
                "options": options.to_dict(),
                "round": round_index,
                "chunk": chunk,
                "epochs": epochs or 0,
                "x": floats(x),
                "y": floats(y),
                "rows": n,
                "inputs": d,
                "outputs": int(y.shape[1]),
                "params": floats(params),
                "want_params": floats(result.params),
                "want_loss": result.loss,
                "want_samples": result.n_samples,
            }
        )
    write("train_chunk.json", cases)


def gen_prepare() -> None:
    rng = np.random.default_rng(7)
    cases = []
    # (name, x, y as sent, options, chunks)
    x1, l1 = blobs(rng, 203, 4, 3)
    x1 = x1 * np.array([1, 10, 0.1, 3], np.float32) + 5
    x2, l2 = blobs(rng, 96, 3, 2)
    x3 = rng.normal(size=(150, 3)).astype(np.float32) * 4 + 1
    y3 = np.stack([x3[:, 0] * 2 + np.sin(x3[:, 1]), x3[:, 2] ** 2], axis=1).astype(np.float32)
    names = np.array(["setosa", "versicolor", "virginica", "zeta"])
    x4, l4 = blobs(rng, 61, 2, 4)
    specs = [
        ("multiclass-int", x1, l1.astype(np.int64), {"hidden_layers": [8], "epochs": 30}, 3),
        (
            "binary-float-labels",
            x2,
            l2.astype(np.float32),
            {"epochs": 20, "hidden_layers": [5], "validation_fraction": 0.2},
            2,
        ),
        ("regression-2", x3, y3, {"epochs": 20, "hidden_layers": [6], "activation": "tanh"}, 3),
        ("strings", x4, names[l4], {"epochs": 20, "hidden_layers": [4], "seed": 3}, 1),
        (
            "tiny-no-validation",
            x2[:9],
            l2[:9].astype(np.int64),
            {"epochs": 10, "hidden_layers": [3]},
            4,
        ),
    ]
    for name, x, y, opts, n_chunks in specs:
        options = TrainOptions.from_dict(opts)
        problem = prepare(x, y, options)
        chunks = split_chunks(problem, n_chunks)
        plan = TrainingPlan(x, y, options, n_chunks=n_chunks)
        rounds = []
        while not plan.done:
            results = [
                train_chunk(
                    j.params, plan.chunks[j.chunk_index], plan.options, j.round_index, j.epochs
                )
                for j in plan.jobs()
            ]
            before = plan.params
            plan.finish_round(results)
            rounds.append(
                {
                    "results": [
                        {"params": floats(r.params), "n_samples": r.n_samples, "loss": r.loss}
                        for r in results
                    ],
                    "params_before_round": floats(before) if len(rounds) < 3 else [],
                    "history": plan.history[-1],
                }
            )
        model = plan.model()
        (OUT / "models" / f"plan-{name}.bin").write_bytes(model.to_bytes())
        y_list = y.tolist()
        cases.append(
            {
                "name": name,
                "x": floats(x),
                "rows": int(x.shape[0]),
                "inputs": int(x.shape[1]),
                "y": y_list,
                "y_kind": {"i": "int", "f": "float", "U": "str"}[y.dtype.kind],
                "y_cols": int(y.shape[1]) if y.ndim == 2 else 0,
                "options": opts,
                "chunks": n_chunks,
                "task": problem.task,
                "classes": list(problem.classes),
                "input_mean": floats(problem.input_mean),
                "input_std": floats(problem.input_std),
                "output_mean": floats(problem.output_mean)
                if problem.output_mean is not None
                else [],
                "output_std": floats(problem.output_std) if problem.output_std is not None else [],
                "train_rows": problem.train_rows.tolist(),
                "x_val": floats(problem.x_val),
                "y_val": floats(problem.y_val),
                "initial_params": floats(problem.initial_params),
                "chunk_x": [floats(c.x) for c in chunks],
                "chunk_y": [floats(c.y) for c in chunks],
                "rounds": rounds,
                "model": f"plan-{name}.bin",
            }
        )
    write("prepare.json", cases)


def gen_models() -> None:
    rng = np.random.default_rng(11)
    (OUT / "models").mkdir(exist_ok=True)
    cases = []
    xb, lb = blobs(rng, 80, 3, 2)
    xm, lm = blobs(rng, 90, 4, 3)
    xr = rng.normal(size=(70, 2)).astype(np.float32) * 3
    yr = np.stack([xr[:, 0] - xr[:, 1], np.cos(xr[:, 0])], axis=1).astype(np.float32)
    xr1 = rng.normal(size=(50, 1)).astype(np.float32)
    yr1 = (3 * xr1[:, 0] + 0.5).astype(np.float32)
    specs = [
        ("binary", xb * 7 - 2, lb, {"hidden_layers": [8], "epochs": 30}, 2, None),
        (
            "multiclass-strings",
            xm,
            np.array(["a\u00e9", 'b"q', "\U0001f600"])[lm],
            {"hidden_layers": [8, 4], "activation": "tanh", "epochs": 20, "learning_rate": 1},
            3,
            (["f\u00fc1", "f2", "f 3", "f4"], ["species"]),
        ),
        (
            "multiclass-floats",
            xm,
            lm.astype(np.float32) + 1,
            {"hidden_layers": [5], "activation": "sigmoid", "epochs": 20, "l2": 0},
            1,
            None,
        ),
        (
            "regression-2",
            xr,
            yr,
            {"hidden_layers": [16], "epochs": 30},
            2,
            (["u", "v"], ["a", "b"]),
        ),
        (
            "regression-1",
            xr1,
            yr1,
            {"hidden_layers": [], "epochs": 20, "validation_fraction": 0},
            1,
            None,
        ),
    ]
    for name, x, y, opts, n_trainers, columns in specs:
        model = train(
            x, y, TrainOptions.from_dict(opts), n_trainers=n_trainers, created_at=1764380000.25
        )
        if columns is not None:
            import dataclasses

            model = dataclasses.replace(
                model, features=tuple(columns[0]), targets=tuple(columns[1])
            )
        data = model.to_bytes()
        (OUT / "models" / f"{name}.bin").write_bytes(data)
        probe = np.concatenate([x[:6], rng.normal(size=(4, x.shape[1])).astype(np.float32) * 5])
        case = {
            "name": name,
            "file": f"{name}.bin",
            "task": model.task,
            "x": floats(probe),
            "rows": int(probe.shape[0]),
            "inputs": int(probe.shape[1]),
            "layer_sizes": list(model.layer_sizes),
            "classes": list(model.classes),
            "features": list(model.features),
            "targets": list(model.targets),
            "metadata": model.metadata_json(),
            "summary": json.dumps(model.summary(), sort_keys=True, separators=(",", ":")),
        }
        if model.task == "regression":
            values = model.predict(probe)
            case["values"] = floats(values)
            case["value_cols"] = 1 if values.ndim == 1 else int(values.shape[1])
        else:
            index, proba = model.classify(probe, proba=True)
            case["index"] = index.tolist()
            case["proba"] = floats(proba)
        z = model._outputs(probe)
        case["logits"] = floats(z)
        cases.append(case)
    # An older file: written before features/targets existed (no such keys).
    write("models.json", cases)


OPTION_CASES = [
    {},
    {"learning_rate": 1, "l2": 0, "validation_fraction": 0},
    {"hidden_layers": [], "activation": "tanh", "task": "classification", "seed": 2**63 - 1},
    {
        "hidden_layers": [3, 4],
        "epochs": 7,
        "epochs_per_round": 3,
        "patience": 0,
        "task": None,
        "learning_rate": 0.5,
        "batch_size": 1,
        "l2": 1e-05,
        "validation_fraction": 0.5,
    },
    {"epochs": 1.0},
    {"epochs": True},
    {"epochs": 0},
    {"seed": -1},
    {"learning_rate": 0},
    {"learning_rate": 11},
    {"l2": -0.1},
    {"validation_fraction": 0.6},
    {"activation": "gelu"},
    {"task": "ranking"},
    {"hidden_layers": 64},
    {"hidden_layers": [64, 0]},
    {"hidden_layers": [1.5]},
    {"hidden_layers": [8] * 17},
    {"batch": 3, "epoch": 1},
    [1, 2],
]


def gen_options() -> None:
    """TrainOptions.from_dict on valid and invalid option objects: to_dict
    (as the model file writes it) or the BadOptions message."""
    from zmqnode.ml.errors import BadOptions

    cases = []
    for raw in OPTION_CASES:
        try:
            o = TrainOptions.from_dict(raw)
        except BadOptions as exc:
            cases.append({"input": raw, "error": str(exc)})
            continue
        cases.append(
            {
                "input": raw,
                "to_dict": json.dumps(o.to_dict(), sort_keys=True, separators=(",", ":")),
                "n_rounds": o.n_rounds,
                "learning_rates": [o.learning_rate_in_round(r) for r in range(o.n_rounds)],
                "epochs": [o.epochs_in_round(r) for r in range(o.n_rounds)],
            }
        )
    write("options.json", cases)


def gen_bad_inputs() -> None:
    """prepare()'s BadInput messages for data a leader must refuse."""
    from zmqnode.ml.errors import BadInput

    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    x_nan = x.copy()
    x_nan[2, 1] = np.nan
    specs = [
        ("nan input", x_nan, np.arange(8) % 2, {}),
        ("rows differ", x, np.arange(7) % 2, {}),
        ("one class", x, np.ones(8, np.int64), {"task": "binary"}),
        ("one string class", x, np.array(["a"] * 8), {}),
        ("one float class", x, np.ones(8, np.float32), {"task": "classification"}),
        ("binary with 3 classes", x, np.arange(8) % 3, {"task": "binary"}),
        ("labels with 2 columns", x, np.ones((8, 2), np.float32), {"task": "multiclass"}),
        ("string regression", x, np.array(["ab", "c"] * 4), {"task": "regression"}),
        ("nan target", x, np.array([[0.5, 1], [np.nan, 2]] * 4, np.float32), {}),
        ("infinite label", x, np.array([0.0, np.inf] * 4, np.float32), {"task": "multiclass"}),
    ]
    cases = []
    for name, xs, y, opts in specs:
        try:
            prepare(xs, y, TrainOptions.from_dict(opts))
        except BadInput as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{name}: prepare accepted it")
        y = np.asarray(y)
        cases.append(
            {
                "name": name,
                "x": [None if np.isnan(v) else v for v in floats(xs)],
                "rows": int(xs.shape[0]),
                "inputs": int(xs.shape[1]),
                "y": [
                    None
                    if isinstance(v, float) and np.isnan(v)
                    else ("inf" if isinstance(v, float) and np.isinf(v) else v)
                    for v in y.ravel().tolist()
                ],
                "y_rows": int(y.shape[0]),
                "y_cols": int(y.shape[1]) if y.ndim == 2 else 0,
                "y_kind": {"i": "int", "f": "float", "U": "str"}[y.dtype.kind],
                "options": opts,
                "error": message,
            }
        )
    write("bad_inputs.json", cases)


def gen_bundled() -> None:
    """scikit-learn's small bundled sets, split as bench/train.py splits them,
    trained by Python with default options in 3 chunks (as a 3-node cluster):
    the Go leader must score within 1 point of Python's test accuracy."""
    from bench.train import score, split

    (OUT / "bundled").mkdir(exist_ok=True)
    cases = []
    for name in ("iris", "wine", "breast_cancer"):
        data = split(name)
        x_train = np.asarray(data.x_train, np.float32)
        x_test = np.asarray(data.x_test, np.float32)
        y_train = np.asarray(data.y_train, np.int64)
        model = train(x_train, y_train, n_trainers=3)
        py_score = score("classification", data.y_test, model.predict(x_test))
        blob = x_train.astype("<f4").tobytes() + x_test.astype("<f4").tobytes()
        (OUT / "bundled" / f"{name}.f32").write_bytes(blob)
        cases.append(
            {
                "name": name,
                "inputs": int(x_train.shape[1]),
                "train_rows": len(x_train),
                "test_rows": len(x_test),
                "y_train": y_train.tolist(),
                "y_test": np.asarray(data.y_test).tolist(),
                "python_score": py_score,
                "python_val_accuracy": model.training["final"].get("val_accuracy"),
            }
        )
    write("bundled.json", cases)


if __name__ == "__main__":
    (OUT / "models").mkdir(exist_ok=True)
    gen_rng()
    gen_train_chunk()
    gen_models()
    gen_prepare()
    gen_bundled()
    gen_options()
    gen_bad_inputs()
    print("wrote", sorted(p.name for p in OUT.iterdir()))
