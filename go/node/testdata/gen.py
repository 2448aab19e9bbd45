"""Golden registry bytes from the Python node, for go/node's registry tests.

    .venv/bin/python go/node/testdata/gen.py

Writes registry.json: STORE_MODEL commands as zmqnode/registry.py encodes
them (hex), the listing summary of each model file, the registry's snapshot
data after applying them (a retried request id included), and LIST.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import orjson

from zmqnode.ml.model_file import Model
from zmqnode.registry import ModelRegistry, encode_store_model, listing_summary, model_id_for
from zmqnode.storage.model_store import ModelStore

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent.parent / "ml" / "testdata" / "models"
FILES = ["binary.bin", "multiclass-strings.bin", "regression-2.bin", "plan-strings.bin"]


def main() -> None:
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(ModelStore(Path(tmp) / "models"))
        for i, name in enumerate(FILES):
            data = (MODELS / name).read_bytes()
            summary = listing_summary(Model.from_bytes(data))
            created = 1765000000.0 + i * 1.234567
            request_id = f"req-{i}"
            command = encode_store_model(request_id, data, created, summary)
            index = 2 + i
            record = registry.apply(index, command)
            cases.append(
                {
                    "file": name,
                    "request_id": request_id,
                    "model_id": model_id_for(request_id),
                    "created": created,
                    "index": index,
                    "summary": orjson.dumps(summary).decode(),
                    "command": command.hex(),
                    "applied": record is not None,
                }
            )
        # A retried request id: a second STORE_MODEL for the same model id is ignored.
        retry = encode_store_model("req-0", (MODELS / FILES[1]).read_bytes(), 1.5, {})
        assert registry.apply(9, retry) is None
        golden = {
            "cases": cases,
            "retry_command": retry.hex(),
            "snapshot_data": registry.snapshot_data().decode(),
            "snapshot_through_3": registry.snapshot_data(through=3).decode(),
            "listing": orjson.dumps(registry.listing()).decode(),
            "model_ids": {r: model_id_for(r) for r in ["", "a", "5f0c" * 8, "é"]},
        }
    (HERE / "registry.json").write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
