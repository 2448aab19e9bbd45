"""The edges of raft.log's scan window (docs/FORMAT.md §11.3 step 3), decided by Python.

Run from the repository root::

    .venv/bin/python kotlin/testdata/storage/gen_scan_window.py

It rewrites ``scan_window.json`` next to it: for logs whose last record is torn and
followed by one checksum-valid stray record, with the stray's index at every value
around the window ``[x, x + (size - p) // 25 + 1]`` (x the expected index, p the torn
record's offset), what Python's ``LogFile.open`` decided: the problem it refused
with, or the entries it kept and the warning of its repair. go/storage's goldens
cover "far above", "below" and "inside" the window; these pin both edges exactly.
The file hex is stored whole; paths in messages are written as ``{path}``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from zmqnode.raft.messages import Entry, EntryKind  # noqa: E402
from zmqnode.storage import StorageCorruption  # noqa: E402
from zmqnode.storage.log_file import LogFile, encode_header, encode_record  # noqa: E402

HERE = Path(__file__).resolve().parent


def log_bytes(torn_len: int, stray_index: int, stray_data: bytes) -> bytes:
    records = [encode_record(Entry(i, 1 + i // 3, EntryKind.COMMAND, b"entry %d" % i)) for i in range(1, 6)]
    torn = bytearray(encode_record(Entry(6, 3, EntryKind.COMMAND, b"torn record")))
    torn[-1] ^= 0x10  # fails its checksum
    torn = bytes(torn[:torn_len]) if torn_len < len(torn) else bytes(torn)
    stray = encode_record(Entry(stray_index, 3, EntryKind.NOOP, stray_data))
    return encode_header(1) + b"".join(records) + torn + stray


def decide(raw: bytes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raft.log"
        path.write_bytes(raw)
        log = LogFile(path)
        try:
            contents = log.open()
        except StorageCorruption as exc:
            return {"problem": exc.problem.replace(str(path), "{path}")}
        log.close()
        return {
            "entries": len(contents.entries),
            "warnings": [w.replace(str(path), "{path}") for w in contents.warnings],
            "size": path.stat().st_size,
        }


def main() -> None:
    cases = []
    for torn_len, stray_data in ((36, b""), (20, b"x" * 30), (9, b"y" * 77)):
        for stray_index in range(3, 16):
            raw = log_bytes(torn_len, stray_index, stray_data)
            cases.append({"log": raw.hex(), "stray_index": stray_index, "result": decide(raw)})
    (HERE / "scan_window.json").write_text(json.dumps({"cases": cases}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
