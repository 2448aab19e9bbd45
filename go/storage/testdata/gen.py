"""Golden storage directories for go/storage, written by the Python storage classes.

Run from the repository root::

    .venv/bin/python go/storage/testdata/gen.py

It rewrites ``go/storage/testdata/dirs/`` and ``cases.json``:

- ``open``: storage directories (healthy, crash-repaired, damaged) with what
  ``NodeStorage.open`` made of each: the recovered state and warnings, or the
  error class and its path/problem/advice, and every file's bytes afterwards
  (a repair rewrites files: the Go node must rewrite them the same way).
  Paths inside messages are written as ``{dir}`` (the case's directory).
- ``write``: a list of operations (persist, compact) and the directory
  Python's ``NodeStorage`` left after them; Go performs the same operations
  and must produce byte-identical files.
- ``small``: the other files of a storage dir (models/, joined_at,
  member_keys) as the Python node writes them.

Everything is deterministic: running it twice gives the same bytes.

``gen.py --replay JOBS.json`` carries out lists of such operations (and
``reopen``), each in its directory (``[{"ops": [...], "dir": "..."}]``);
go/storage's random test uses it to compare both implementations on
sequences it makes up.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from zmqnode.raft.messages import Entry, EntryKind, HardState, Ready, Snapshot  # noqa: E402
from zmqnode.storage import NodeStorage, StorageBroken, StorageCorruption  # noqa: E402
from zmqnode.storage.atomic import atomic_write  # noqa: E402
from zmqnode.storage.hard_state import HardStateFile, encode_hard_state  # noqa: E402
from zmqnode.storage.log_file import (  # noqa: E402
    _KIND_CODES,
    LogFile,
    encode_header,
    encode_record,
)
from zmqnode.storage.model_store import ModelStore  # noqa: E402
from zmqnode.storage.snapshot_store import SnapshotStore, encode_snapshot  # noqa: E402
from zmqnode.transport.security import MemberKeysFile  # noqa: E402

HERE = Path(__file__).resolve().parent
DIRS = HERE / "dirs"

VOTE = "127.0.0.1:9001"
MEMBERSHIP = b'{"members":["127.0.0.1:9001","127.0.0.1:9002"],"learners":[]}'


def entry(index: int, term: int, kind: str = "command", data: bytes = b"") -> Entry:
    return Entry(index, term, EntryKind(kind), data)


def entries(terms: list[int], start: int = 1) -> list[Entry]:
    kinds = ["noop", "command", "config", "command"]
    out = []
    for k, term in enumerate(terms):
        index = start + k
        kind = kinds[index % len(kinds)]
        data = b"" if kind == "noop" else f"entry {index} \x00\xff".encode("latin-1")
        out.append(entry(index, term, kind, data))
    return out


def entry_json(e: Entry) -> dict:
    return {"index": e.index, "term": e.term, "kind": e.kind.value, "data": e.data.hex()}


def snapshot_json(s: Snapshot | None) -> dict | None:
    if s is None:
        return None
    return {
        "index": s.index,
        "term": s.term,
        "data": s.data.hex(),
        "membership": s.membership.hex(),
    }


def files_of(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` (relative path -> SHA-256 of its bytes)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            out[path.relative_to(directory).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return out


def healthy(directory: Path, *, vote: str = VOTE, terms=(1, 1, 2, 2, 2, 3)) -> None:
    storage = NodeStorage(directory)
    storage.open()
    ents = entries(list(terms))
    storage.persist(Ready(hard_state=HardState(max(terms), vote), entries=ents))
    storage.close()


def compacted(directory: Path) -> None:
    storage = NodeStorage(directory)
    storage.open()
    storage.persist(Ready(hard_state=HardState(3, VOTE), entries=entries([1, 1, 2, 2, 2, 3, 3])))
    storage.compact(Snapshot(4, 2, b"registry through 4", MEMBERSHIP))
    storage.close()


# -- byte surgery ------------------------------------------------------------------


def records(path: Path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    out, pos = [], 24
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        out.append((pos, 8 + length))
        pos += 8 + length
    return out


def patch(path: Path, offset: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + len(new)] = new
    path.write_bytes(bytes(data))


def flip(path: Path, offset: int, bit: int = 3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def flip_in_record(path: Path, which: int) -> None:
    offset, size = records(path)[which]
    flip(path, offset + 8 + (size - 8) // 2)


def cut(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def replace_record(path: Path, which: int, new: Entry) -> None:
    """Put a checksum-valid record for ``new`` where record ``which`` was."""
    data = path.read_bytes()
    offset, size = records(path)[which]
    path.write_bytes(data[:offset] + encode_record(new) + data[offset + size :])


def header_with(path: Path, version: int, first_index: int) -> None:
    head = struct.pack("<8sIQ", b"ZQRAFTLG", version, first_index)
    patch(path, 0, head + struct.pack("<I", zlib.crc32(head)))


def hard_state_doc(**changes) -> bytes:
    doc = json.loads(encode_hard_state(HardState(3, VOTE)))
    for key, value in changes.items():
        if value is _DROP:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc).encode()


_DROP = object()


def snapshot_v1(index: int, term: int, data: bytes) -> bytes:
    fields = struct.pack("<8sIQQQI", b"ZQSNAPSH", 1, index, term, len(data), zlib.crc32(data))
    return fields + struct.pack("<I", zlib.crc32(fields)) + data


# -- the open cases ------------------------------------------------------------------

OPEN_CASES = {}


def case(fn):
    OPEN_CASES[fn.__name__] = fn
    return fn


@case
def healthy_log(d: Path) -> None:
    healthy(d)


@case
def unicode_vote(d: Path) -> None:
    healthy(d, vote='nœud-é "q" \\ \t\x7f 😀 /')


@case
def compacted_with_membership(d: Path) -> None:
    compacted(d)


@case
def compacted_to_the_end(d: Path) -> None:
    storage = NodeStorage(d)
    storage.open()
    storage.persist(Ready(hard_state=HardState(2, ""), entries=entries([1, 2, 2])))
    storage.compact(Snapshot(3, 2, b"all of it", MEMBERSHIP))
    storage.close()


@case
def snapshot_version_1(d: Path) -> None:
    healthy(d, terms=(1, 1))
    (d / "snapshot").mkdir()
    (d / "snapshot" / "snapshot.bin").write_bytes(snapshot_v1(2, 1, b"old format"))


@case
def installed_snapshot_then_entries(d: Path) -> None:
    storage = NodeStorage(d)
    storage.open()
    storage.persist(
        Ready(
            hard_state=HardState(5, "127.0.0.1:9002"),
            snapshot=Snapshot(10, 4, b"leader's registry", MEMBERSHIP),
            entries=entries([5, 5], start=11),
        )
    )
    storage.close()


@case
def fresh_dir_created(d: Path) -> None:
    shutil.rmtree(d)


@case
def missing_hard_state_on_a_node_that_stored_nothing(d: Path) -> None:
    NodeStorage(d).open()


@case
def stale_temp_files_swept(d: Path) -> None:
    healthy(d)
    (d / ".raft_state.json.abcd1234.tmp").write_bytes(b"half")
    (d / "snapshot").mkdir()
    (d / "snapshot" / ".snapshot.bin.zzzz.tmp").write_bytes(b"half")
    (d / "notes.tmp").write_bytes(b"not hidden: kept")


# Torn tails and other damage a crash can cause: repaired with a warning.


@case
def torn_unacknowledged_write(d: Path) -> None:
    healthy(d)
    path = d / "raft.log"
    offset, size = records(path)[-1]
    append(path, path.read_bytes()[offset : offset + size][: size // 2])


@case
def torn_tail_mid_payload(d: Path) -> None:
    healthy(d)
    offset, size = records(d / "raft.log")[-1]
    cut(d / "raft.log", offset + size // 2)


@case
def torn_tail_mid_record_header(d: Path) -> None:
    healthy(d)
    offset, _ = records(d / "raft.log")[-1]
    cut(d / "raft.log", offset + 5)


@case
def torn_tail_short_length_field(d: Path) -> None:
    healthy(d)
    append(d / "raft.log", struct.pack("<II", 3, 0) + b"abc")


@case
def garbage_after_the_last_record(d: Path) -> None:
    healthy(d)
    append(d / "raft.log", b"\x30\x00\x00\x00half a record")


@case
def zero_filled_tail(d: Path) -> None:
    healthy(d)
    append(d / "raft.log", bytes(4096))


@case
def flipped_bit_in_the_last_record(d: Path) -> None:
    healthy(d)
    flip_in_record(d / "raft.log", -1)


@case
def lost_records_at_a_boundary_seen_from_models(d: Path) -> None:
    healthy(d)
    recs = records(d / "raft.log")
    cut(d / "raft.log", recs[3][0])
    models = ModelStore(d / "models")
    for k in range(4):
        models.write(f"model-{k}", b"model bytes %d" % k)


@case
def crash_after_local_snapshot_before_trim(d: Path) -> None:
    healthy(d, terms=(1, 1, 2, 2))
    SnapshotStore(d / "snapshot").save(Snapshot(3, 2, b"through 3", MEMBERSHIP))


@case
def crash_after_installed_snapshot_before_reset(d: Path) -> None:
    healthy(d, terms=(1, 1, 1, 1))
    HardStateFile(d / "raft_state.json").save(HardState(5, ""))
    SnapshotStore(d / "snapshot").save(Snapshot(3, 5, b"leader's", MEMBERSHIP))


def _torn_then(d: Path, stray: Entry) -> None:
    """The last record damaged, then a checksum-valid record for ``stray``."""
    healthy(d)
    flip_in_record(d / "raft.log", -1)
    append(d / "raft.log", encode_record(stray))


@case
def valid_record_above_the_scan_window_after_damage(d: Path) -> None:
    """Only records whose index could follow the damage count (the scan's window):
    one for entry 1000 is not evidence of damage in the middle."""
    _torn_then(d, entry(1000, 3, "command", b"far away"))


@case
def valid_record_below_the_scan_window_after_damage(d: Path) -> None:
    _torn_then(d, entry(2, 1, "command", b"stale copy"))


@case
def valid_record_inside_the_scan_window_after_damage(d: Path) -> None:
    _torn_then(d, entry(8, 3, "command", b"close enough"))


# Damage that must stop the node.


@case
def flipped_bit_in_a_middle_record(d: Path) -> None:
    healthy(d)
    flip_in_record(d / "raft.log", 3)


@case
def flipped_bit_in_the_first_record(d: Path) -> None:
    healthy(d)
    flip_in_record(d / "raft.log", 0)


@case
def damaged_length_field_in_the_middle(d: Path) -> None:
    healthy(d)
    offset, _ = records(d / "raft.log")[2]
    patch(d / "raft.log", offset, struct.pack("<I", 0xFFFF))


@case
def block_of_zeros_in_the_middle(d: Path) -> None:
    healthy(d)
    offset, size = records(d / "raft.log")[1]
    patch(d / "raft.log", offset, bytes(size * 2))


@case
def valid_record_with_the_wrong_index(d: Path) -> None:
    healthy(d)
    replace_record(d / "raft.log", 2, entry(7, 2, "command", b"misplaced"))


@case
def valid_record_with_a_lower_term(d: Path) -> None:
    healthy(d)
    replace_record(d / "raft.log", 3, entry(4, 1, "command", b"lower"))


@case
def valid_record_of_unknown_kind(d: Path) -> None:
    healthy(d)
    path = d / "raft.log"
    data = path.read_bytes()
    offset, size = records(path)[1]
    payload = bytearray(data[offset + 8 : offset + size])
    payload[16] = 9
    record = struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    path.write_bytes(data[:offset] + record + data[offset + size :])


@case
def damaged_log_header(d: Path) -> None:
    healthy(d)
    flip(d / "raft.log", 14)


@case
def not_a_log(d: Path) -> None:
    healthy(d)
    patch(d / "raft.log", 0, b"PK\x03\x04'ab\n")


@case
def empty_log_file(d: Path) -> None:
    healthy(d, terms=(1,))
    (d / "raft.log").write_bytes(b"")


@case
def log_version_2(d: Path) -> None:
    healthy(d)
    header_with(d / "raft.log", 2, 1)


@case
def log_first_index_0(d: Path) -> None:
    healthy(d)
    header_with(d / "raft.log", 1, 0)


@case
def log_starts_after_the_snapshot(d: Path) -> None:
    compacted(d)
    os.remove(d / "snapshot" / "snapshot.bin")


def _hard_state_case(name: str, raw: bytes) -> None:
    def fn(d: Path) -> None:
        healthy(d)
        (d / "raft_state.json").write_bytes(raw)

    fn.__name__ = name
    case(fn)


for _name, _raw in {
    "hard_state_empty": b"",
    "hard_state_whitespace": b" \n\t ",
    "hard_state_garbage": b"\x00\x17{garbage",
    "hard_state_truncated": encode_hard_state(HardState(3, VOTE))[:30],
    "hard_state_extra_data": encode_hard_state(HardState(3, VOTE)) + b"{}",
    "hard_state_list": b"[1, 2]",
    "hard_state_string": b'"hello"',
    "hard_state_null": b"null",
    "hard_state_float": b"3.5",
    "hard_state_version_2": hard_state_doc(version=2),
    "hard_state_version_null": hard_state_doc(version=None),
    "hard_state_version_true": hard_state_doc(version=True),
    "hard_state_version_string": hard_state_doc(version="1"),
    "hard_state_version_list": hard_state_doc(version=[1, "a"]),
    "hard_state_version_dict": hard_state_doc(version={"b": 1, "a": [None, 2.5]}),
    "hard_state_version_nan": hard_state_doc(version=float("nan")),
    "hard_state_term_infinity": hard_state_doc(current_term=float("inf")),
    "hard_state_no_version": hard_state_doc(version=_DROP),
    "hard_state_term_string": hard_state_doc(current_term="4"),
    "hard_state_term_true": hard_state_doc(current_term=True),
    "hard_state_term_negative": hard_state_doc(current_term=-1),
    "hard_state_term_float": hard_state_doc(current_term=4.0),
    "hard_state_term_big_float": hard_state_doc(current_term=1e17),
    "hard_state_term_small_float": hard_state_doc(current_term=1.5e-7),
    "hard_state_no_term": hard_state_doc(current_term=_DROP),
    "hard_state_vote_number": hard_state_doc(voted_for=3),
    "hard_state_vote_null": hard_state_doc(voted_for=None),
    "hard_state_checksum_string": hard_state_doc(checksum="abc"),
    "hard_state_checksum_float": hard_state_doc(checksum=1.0),
    "hard_state_checksum_negative": hard_state_doc(checksum=-5),
    "hard_state_checksum_huge": hard_state_doc(checksum=2**70),
    "hard_state_no_checksum": hard_state_doc(checksum=_DROP),
    "hard_state_edited_term": hard_state_doc(current_term=4),
    "hard_state_edited_vote": hard_state_doc(voted_for="127.0.0.1:9002"),
}.items():
    _hard_state_case(_name, _raw)


@case
def hard_state_compact_json_version_1_0(d: Path) -> None:
    """Python compares version with ==, so 1.0 passes; any valid spelling loads."""
    healthy(d)
    checksum = json.loads(encode_hard_state(HardState(3, VOTE)))["checksum"]
    (d / "raft_state.json").write_bytes(
        b'\xef\xbb\xbf {"checksum":%d,"voted_for":"127.0.0.1:9001","current_term":3,'
        b'"version":1.0,"extra":[1,{"a":null}]}\r\n' % checksum
    )


@case
def hard_state_term_minus_zero(d: Path) -> None:
    NodeStorage(d).open()
    checksum = zlib.crc32(b'{"current_term":0,"version":1,"voted_for":""}')
    (d / "raft_state.json").write_bytes(
        b'{"version": 1, "current_term": -0, "voted_for": "", "checksum": %d}' % checksum
    )


@case
def hard_state_lone_surrogate_vote(d: Path) -> None:
    """A Python str may hold a lone surrogate; json.dumps escapes it, and it loads back."""
    healthy(d, vote="n\ud800x")


@case
def hard_state_nan_in_an_unknown_member(d: Path) -> None:
    healthy(d)
    doc = json.loads(encode_hard_state(HardState(3, VOTE)))
    text = json.dumps(doc)[:-1] + ', "note": NaN, "more": -Infinity}'
    (d / "raft_state.json").write_text(text)


@case
def hard_state_utf16(d: Path) -> None:
    healthy(d)
    text = encode_hard_state(HardState(3, VOTE)).decode()
    (d / "raft_state.json").write_bytes(text.encode("utf-16"))


@case
def hard_state_not_utf8(d: Path) -> None:
    healthy(d)
    (d / "raft_state.json").write_bytes(b'{"version": 1, "voted_for": "\xff"}')


@case
def missing_hard_state_next_to_log_entries(d: Path) -> None:
    healthy(d)
    os.remove(d / "raft_state.json")


@case
def missing_hard_state_next_to_a_snapshot(d: Path) -> None:
    compacted_to_the_end(d)
    os.remove(d / "raft_state.json")


@case
def hard_state_older_than_the_log(d: Path) -> None:
    healthy(d)
    HardStateFile(d / "raft_state.json").save(HardState(2, ""))


@case
def missing_log_next_to_a_saved_term(d: Path) -> None:
    healthy(d)
    os.remove(d / "raft.log")


def _snapshot_case(name: str, damage) -> None:
    def fn(d: Path) -> None:
        compacted(d)
        path = d / "snapshot" / "snapshot.bin"
        damage(path)

    fn.__name__ = name
    case(fn)


_SNAP_HEADER = 56
for _name, _damage in {
    "snapshot_flipped_data": lambda p: flip(p, _SNAP_HEADER + 3),
    "snapshot_flipped_membership": lambda p: flip(p, len(p.read_bytes()) - 3),
    "snapshot_flipped_index": lambda p: flip(p, 12),
    "snapshot_truncated": lambda p: cut(p, len(p.read_bytes()) - 2),
    "snapshot_extra_bytes": lambda p: append(p, b"!"),
    "snapshot_short": lambda p: cut(p, 30),
    "snapshot_short_for_v2": lambda p: cut(p, 50),
    "snapshot_foreign": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(60)),
    "snapshot_version_3": lambda p: patch(p, 8, struct.pack("<I", 3)),
    "snapshot_empty": lambda p: p.write_bytes(b""),
}.items():
    _snapshot_case(_name, _damage)


def run_open(d: Path) -> dict:
    storage = NodeStorage(d)
    try:
        recovered = storage.open()
    except StorageCorruption as exc:
        return {
            "error": "StorageCorruption",
            "path": exc.path,
            "problem": exc.problem,
            "advice": exc.advice,
        }
    except StorageBroken as exc:  # not expected from open; kept for completeness
        return {"error": "StorageBroken", "message": str(exc)}
    storage.close()
    return {
        "hard_state": {
            "term": recovered.hard_state.term,
            "vote": recovered.hard_state.vote,
            # the vote's bytes as Go holds them (a lone surrogate survives)
            "vote_hex": recovered.hard_state.vote.encode("utf-8", "surrogatepass").hex(),
        },
        "snapshot": snapshot_json(recovered.snapshot),
        "entries": [entry_json(e) for e in recovered.entries],
        "warnings": recovered.warnings,
        "first_index": storage.log.first_index,
        "last_index": storage.log.last_index,
    }


def templated(value, directory: str):
    if isinstance(value, str):
        return value.replace(directory, "{dir}")
    if isinstance(value, list):
        return [templated(v, directory) for v in value]
    if isinstance(value, dict):
        return {k: templated(v, directory) for k, v in value.items()}
    return value


def gen_open(work: Path) -> dict:
    out = {}
    for name, fn in OPEN_CASES.items():
        target = DIRS / "open" / name
        target.mkdir(parents=True)
        fn(target)
        if not target.exists():  # a case about a directory that does not exist yet
            target.mkdir()
            (target / ".keep-absent").write_bytes(b"")
            source_missing = True
        else:
            source_missing = False
        # Open a copy: open repairs, and the committed directory is the input.
        copy = work / name
        if not source_missing:
            shutil.copytree(target, copy)
        result = run_open(copy)
        result = templated(result, str(copy))
        result["after"] = files_of(copy) if copy.exists() else {}
        result["absent"] = source_missing
        out[name] = result
    return out


# -- the write scenarios ---------------------------------------------------------------


def ready(hard_state=None, entries_=(), snapshot=None) -> dict:
    return {
        "op": "persist",
        "hard_state": None
        if hard_state is None
        else {"term": hard_state[0], "vote": hard_state[1]},
        "entries": [entry_json(e) for e in entries_],
        "snapshot": snapshot_json(snapshot),
    }


def compact(snapshot: Snapshot) -> dict:
    return {"op": "compact", "snapshot": snapshot_json(snapshot)}


WRITE_CASES = {
    "appends_and_votes": [
        ready((1, ""), entries([1, 1, 1])),
        ready((2, "127.0.0.1:9002")),
        ready(None, entries([2, 2], start=4)),
    ],
    "conflicting_suffix_replaced": [
        ready((2, VOTE), entries([1, 1, 1, 2, 2])),
        ready((3, ""), [entry(3, 3, "noop"), entry(4, 3, "config", MEMBERSHIP)]),
    ],
    "compaction_keeps_the_tail": [
        ready((3, VOTE), entries([1, 1, 2, 2, 3, 3, 3])),
        compact(Snapshot(5, 3, b"registry through 5", MEMBERSHIP)),
        ready(None, entries([3], start=8)),
    ],
    "installed_snapshot_replaces_the_log": [
        ready((1, ""), entries([1, 1, 1])),
        ready(
            (4, "n\u00e9\u00fcd-\U0001f600"), entries([4, 4], start=21), Snapshot(20, 4, b"", b"")
        ),
    ],
    "large_entry": [
        ready((1, VOTE), [entry(1, 1, "command", bytes(range(256)) * 40)]),
    ],
}


def snapshot_of(snap: dict) -> Snapshot:
    return Snapshot(
        snap["index"], snap["term"], bytes.fromhex(snap["data"]), bytes.fromhex(snap["membership"])
    )


def replay(ops: list[dict], d: Path) -> None:
    """Carry out ``ops`` (persist, compact, reopen) on a NodeStorage in ``d``."""
    storage = NodeStorage(d)
    storage.open()
    for op in ops:
        if op["op"] == "persist":
            hs = op["hard_state"]
            storage.persist(
                Ready(
                    hard_state=None if hs is None else HardState(hs["term"], hs["vote"]),
                    entries=[
                        Entry(e["index"], e["term"], EntryKind(e["kind"]), bytes.fromhex(e["data"]))
                        for e in op["entries"]
                    ],
                    snapshot=None if op["snapshot"] is None else snapshot_of(op["snapshot"]),
                )
            )
        elif op["op"] == "compact":
            storage.compact(snapshot_of(op["snapshot"]))
        elif op["op"] == "reopen":
            storage.close()
            storage = NodeStorage(d)
            storage.open()
        else:
            raise ValueError(f"unknown op {op['op']!r}")
    storage.close()


def gen_write() -> dict:
    out = {}
    for name, ops in WRITE_CASES.items():
        d = DIRS / "write" / name
        replay(ops, d)
        out[name] = {"ops": ops, "files": sorted(files_of(d))}
    return out


# -- the small files --------------------------------------------------------------------


def gen_small() -> dict:
    d = DIRS / "small"
    models = ModelStore(d / "models")
    models.write("model-a", b"first model")
    models.write("B_2", b"second model")
    models.write("c", b"")
    (d / "models" / "stray.txt").write_bytes(b"not a model")
    (d / "models" / "bad id!.bin").write_bytes(b"invalid id")
    MemberKeysFile(d / "member_keys").write(
        frozenset(
            {
                b"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
                b"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
            }
        )
    )
    atomic_write(d / "joined_at", b"42\n")
    return {
        "model_ids": ModelStore(d / "models").ids(),
        "models": {
            i: ModelStore(d / "models").read(i).hex() for i in ModelStore(d / "models").ids()
        },
        "member_keys": sorted(k.decode() for k in MemberKeysFile(d / "member_keys").reload()),
        "joined_at": 42,
    }


def encodings() -> dict:
    """Single encodings the Go code must reproduce exactly."""
    return {
        "hard_states": [
            {"term": t, "vote": v, "bytes": encode_hard_state(HardState(t, v)).hex()}
            for t, v in [
                (0, ""),
                (7, VOTE),
                (2**64 - 1, "x"),
                (5, "\u2028<&>\x01\x7f\u00e9\U0010ffff"),
            ]
        ],
        "headers": [{"first_index": i, "bytes": encode_header(i).hex()} for i in (1, 7, 2**63)],
        "records": [
            {"entry": entry_json(e), "bytes": encode_record(e).hex()}
            for e in [
                entry(7, 3, "noop", b"ab"),
                entry(1, 1, "command"),
                entry(2**40, 9, "config", b"\x00" * 9),
            ]
        ],
        "snapshots": [
            {"snapshot": snapshot_json(s), "bytes": encode_snapshot(s).hex()}
            for s in [Snapshot(), Snapshot(9, 2, b"data", MEMBERSHIP)]
        ],
    }


# -- random damage to one log file ------------------------------------------------------


def damaged_logs(work: Path) -> dict:
    """Random damage to one healthy log, and what ``LogFile.open`` decided for each.

    Go applies the same ``damage`` to ``dirs/damage/raft.log`` and must decide
    the same: the same entries (their SHA-256) and warning, or the same
    problem. Seeded, so the file is the same on every run.
    """
    rng = random.Random(17)
    base = DIRS / "damage"
    base.mkdir(parents=True)
    log = LogFile(base / "raft.log")
    log.open()
    ents = [
        Entry(
            i,
            1 + i // 4,
            EntryKind(("noop", "command", "config")[i % 3]),
            rng.randbytes(rng.randint(0, 60)),
        )
        for i in range(1, 25)
    ]
    log.append(ents)
    log.close()
    healthy_bytes = (base / "raft.log").read_bytes()
    size = len(healthy_bytes)
    record_starts = [pos for pos, _ in records(base / "raft.log")]
    out = []
    for n in range(300):
        kind = rng.choice(["flip", "flip", "cut", "append", "zeros", "write", "cut+append"])
        damage: list[dict] = []
        if kind == "flip":
            for _ in range(rng.choice([1, 1, 1, 2])):
                damage.append(
                    {"op": "flip", "offset": rng.randrange(size), "bit": rng.randrange(8)}
                )
        elif kind == "cut":
            damage.append({"op": "cut", "size": rng.randrange(size)})
        elif kind == "append":
            tail = rng.choice(
                [
                    rng.randbytes(rng.randint(1, 40)),
                    bytes(rng.randint(1, 300)),
                    encode_record(Entry(25, 9, EntryKind.COMMAND, b"x"))[: rng.randint(1, 25)],
                    encode_record(
                        Entry(rng.choice([24, 25, 26]), rng.choice([1, 7, 9]), EntryKind.NOOP)
                    ),
                ]
            )
            damage.append({"op": "append", "data": tail.hex()})
        elif kind == "zeros":
            start = rng.choice(record_starts + [rng.randrange(size)])
            damage.append({"op": "write", "offset": start, "data": bytes(rng.randint(1, 80)).hex()})
        elif kind == "write":
            start = rng.randrange(size)
            damage.append(
                {"op": "write", "offset": start, "data": rng.randbytes(rng.randint(1, 12)).hex()}
            )
        else:
            damage.append({"op": "cut", "size": rng.choice(record_starts[1:])})
            damage.append({"op": "append", "data": rng.randbytes(rng.randint(1, 30)).hex()})
        path = work / f"damage-{n}.log"
        path.write_bytes(apply_damage(healthy_bytes, damage))
        out.append({"damage": damage, "result": open_log(path)})
    return {"cases": out}


def apply_damage(data: bytes, damage: list[dict]) -> bytes:
    buf = bytearray(data)
    for d in damage:
        if d["op"] == "flip":
            if d["offset"] < len(buf):
                buf[d["offset"]] ^= 1 << d["bit"]
        elif d["op"] == "cut":
            del buf[d["size"] :]
        elif d["op"] == "append":
            buf += bytes.fromhex(d["data"])
        else:
            new = bytes.fromhex(d["data"])
            buf[d["offset"] : d["offset"] + len(new)] = new
    return bytes(buf)


def open_log(path: Path) -> dict:
    log = LogFile(path)
    try:
        contents = log.open()
    except StorageCorruption as exc:
        return {"problem": exc.problem}
    log.close()
    digest = hashlib.sha256()
    for e in contents.entries:
        digest.update(struct.pack("<QQB", e.index, e.term, _KIND_CODES[e.kind]) + e.data)
    return {
        "entries": len(contents.entries),
        "first_index": log.first_index,
        "digest": digest.hexdigest(),
        "warnings": [w.replace(str(path), "{path}") for w in contents.warnings],
        "truncated": contents.truncated_bytes,
        "size": path.stat().st_size,
    }


# -- json.loads, as raft_state.json is read --------------------------------------------

JSON_INPUTS = [
    b"",
    b"x",
    b"{",
    b'{"a"',
    b'{"a":',
    b'{"a":1',
    b'{"a":1,',
    b'{"a":1,}',
    b'{"a" 1}',
    b"{a:1}",
    b"[1,]",
    b"[1 2]",
    b"[",
    b"[ ",
    b"{ ",
    b"[1,  ",
    b'{"a":1,  ',
    b'"abc',
    b'"a\x01"',
    b'"\\x"',
    b'"\\u12"',
    b'"\\u12zz"',
    b"01",
    b"-",
    b"-a",
    b"1.",
    b"1e",
    b"1.e5",
    b"1e+",
    b'{"a":1} x',
    b'\n\n  {"a":\n tru}',
    b"nul",
    b"NaN",
    b"-Infinity",
    b"Infinityx",
    b"-Infinit",
    b"Nan",
    b'"\\ud800"',
    b'"\\ud83d\\ude00"',
    b'"\\ud83d\\uzzzz"',
    b'"\\ud83d\\u12"',
    b'"\\ud83d\\ud83d"',
    b'"\\ud83d\\',
    b'"\\ud83dx"',
    b'"\\ud83d\\n"',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00",
    b"\xfe\xff\x00{\x00}",
    b"{\x00}\x00\x00",
    b"{\x00\x00\x00}\x00\x00\x00",
    b'{"a":1}\x00',
    b'"\xff"',
    b'"\xed\xa0\x80"',
    b'"\xed\xb0\x80"',
    b'"\xed\xa0"',
    b"\xe2\x82A",
    b'"\xe2\x82"',
    b'"\xc0\xaf"',
    b'"\xf0\x9f\x98"',
    b'"\xc3"',
    b"\xe2\x82",
    b"\xf4\x90\x80\x80",
    b'{"a":[1,{"b":null}],"a":2,"c":{"z":1,"y":[true,false]}}',
    b'{"\xc3\xa9":"\\u00e9"}\n\xc3\xa9',
    b"\x00\x17{garbage",
    b'"a\\',
    b'{"a":1 "b":2}',
    b"[1,2",
    b'{"a":-0.0}',
    b"1E400",
    b"-1e400",
    b"12345678901234567890123",
    b"1e5",
    b"1.5E-3",
    b"-0",
    b"0.0e0",
    b"123.456e-300",
    b"1e16",
    b'"\x7f\x1f"',
    b'"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\xe2\x80\xa8"',
    b" \t\r\n 7 \n",
]


def json_cases() -> list[dict]:
    out = []
    for raw in JSON_INPUTS:
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            out.append({"input": raw.hex(), "error": str(exc)})
        else:
            out.append({"input": raw.hex(), "repr": repr(value), "type": type(value).__name__})
    return out


def main() -> None:
    if sys.argv[1:2] == ["--replay"]:
        # go/storage's random test: gen.py --replay JOBS.json, [{"ops": [...], "dir": "..."}]
        for job in json.loads(Path(sys.argv[2]).read_text()):
            replay(job["ops"], Path(job["dir"]))
        return
    if DIRS.exists():
        shutil.rmtree(DIRS)
    DIRS.mkdir()
    with tempfile.TemporaryDirectory() as work:
        cases = {
            "open": gen_open(Path(work)),
            "write": gen_write(),
            "small": gen_small(),
            "encodings": encodings(),
            "damage": damaged_logs(Path(work)),
            "json": json_cases(),
        }
    text = json.dumps(cases, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    (HERE / "cases.json").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    counts = f"{len(cases['open'])} open cases, {len(cases['write'])} write cases"
    print(f"{counts}; cases.json {digest}")


if __name__ == "__main__":
    main()
