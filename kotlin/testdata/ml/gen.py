"""Writes messages.json next to this file: Python's error messages where a
port that formats values its own way (Go's json.Number literals, %q) would
differ from zmqnode/ml: options as TrainOptions.from_dict refuses them, and
column names as Model's validation refuses them. MlOptionsTest and
MlModelFileTest read it.

    .venv/bin/python kotlin/testdata/ml/gen.py
"""

import dataclasses
import json
import pathlib

from zmqnode.ml.errors import BadOptions, ModelFormatError
from zmqnode.ml.model_file import Model
from zmqnode.ml.options import TrainOptions

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent

OPTIONS = [
    '{"epochs": 1e2}',
    '{"activation": "it\'s"}',
    '{"activation": "a\\"b\'c"}',
    '{"task": {"a": 1, "b": [true, null]}}',
    '{"learning_rate": 1.50}',
    '{"learning_rate": 1E1}',
    '{"learning_rate": 10.000000000000001}',
    '{"hidden_layers": [1e0]}',
    '{"hidden_layers": [2, "x"]}',
    '{"hidden_layers": "64"}',
    '{"seed": 100000000000000000000000}',
    '{"l2": true}',
    '{"validation_fraction": "0.1"}',
    '{"validation_fraction": 0.50}',
    '{"epochs": -0}',
    '{"patience": 1.0}',
    '{"batch_size": 1048577}',
    '{"\\u00e9poque": 3, "epochs": 2}',
    '"options"',
    'null',
]

FEATURES = [
    ["a", "a", "b"],
    ["a", "b"],
    ["a", "", "c"],
    ["a", "b", "x" * 300],
    ["a", "b", "it's" * 70],
    ["\u00e9", "\U0001f600", "c"],
]


def main() -> None:
    options = []
    for text in OPTIONS:
        try:
            o = TrainOptions.from_dict(json.loads(text))
            options.append({"input": text, "error": None,
                            "to_dict": json.dumps(o.to_dict(), sort_keys=True, separators=(",", ":"))})
        except BadOptions as exc:
            options.append({"input": text, "error": str(exc)})
    model = Model.from_bytes((ROOT / "go/ml/testdata/models/binary.bin").read_bytes())
    features = []
    for names in FEATURES:
        try:
            dataclasses.replace(model, features=tuple(names))
            features.append({"features": names, "error": None})
        except ModelFormatError as exc:
            features.append({"features": names, "error": str(exc)})
    out = {"options": options, "features": features}
    (HERE / "messages.json").write_text(json.dumps(out, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
