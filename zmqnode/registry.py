"""The replicated state machine: the model registry.

Every committed Raft entry of kind COMMAND is one registry command. Today
there is one: STORE_MODEL, which carries a model file's bytes and writes
``models/<id>.bin``. Applying is deterministic and idempotent, so every node
ends with the same registry and byte-identical files, and re-applying the log
after a restart changes nothing:

- a model id is derived from the client's request id, and a second
  STORE_MODEL for a request id already applied is ignored — a retried TRAIN
  (same request id) can never create two models, even when two leaders both
  trained it;
- the file bytes are checked against the SHA-256 in the command before use.

Command encoding (entry data): ``u32 little-endian header length``, the
header as JSON, then the model file bytes.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from .ml.model_file import Model
from .storage.model_store import ModelStore

log = logging.getLogger("zmqnode.registry")

STORE_MODEL = "store_model"
_LEN = struct.Struct("<I")


class CommandError(ValueError):
    """A committed entry that is not a valid registry command."""


def model_id_for(request_id: str) -> str:
    """The model id a request id produces: stable across retries and leaders."""
    return "m" + hashlib.sha256(request_id.encode()).hexdigest()[:15]


def encode_store_model(
    request_id: str, model_bytes: bytes, created: float, summary: dict[str, Any]
) -> bytes:
    header = {
        "op": STORE_MODEL,
        "model_id": model_id_for(request_id),
        "request_id": request_id,
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "size": len(model_bytes),
        "created": created,
        "summary": summary,
    }
    raw = orjson.dumps(header)
    return _LEN.pack(len(raw)) + raw + model_bytes


def decode_command(data: bytes) -> tuple[dict[str, Any], memoryview]:
    if len(data) < _LEN.size:
        raise CommandError("command shorter than its length prefix")
    (header_len,) = _LEN.unpack_from(data)
    if _LEN.size + header_len > len(data):
        raise CommandError("command header runs past the end of the entry")
    try:
        header = orjson.loads(data[_LEN.size : _LEN.size + header_len])
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"command header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("op") != STORE_MODEL:
        raise CommandError(f"unknown command {header!r:.80}")
    return header, memoryview(data)[_LEN.size + header_len :]


def listing_summary(model: Model) -> dict[str, Any]:
    """What LIST shows of a model: its own summary plus input/output widths."""
    return {**model.summary(), "inputs": model.n_inputs, "outputs": model.n_outputs}


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """What the registry knows of one committed model: the same on every node.

    The file itself lives in ``models/<model_id>.bin``; ``sha256`` and
    ``size`` (from the STORE_MODEL command) are how any copy of it is checked.
    """

    model_id: str
    request_id: str
    sha256: str
    size: int
    created: float
    index: int  # the Raft index that stored it
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "created": self.created,
            "size_bytes": self.size,
            "sha256": self.sha256,
            "index": self.index,
            **self.summary,
        }


class ModelFileDamaged(Exception):
    """A committed model whose file here is missing or fails its SHA-256."""

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"model {model_id}: {reason}")
        self.model_id = model_id
        self.reason = reason


class ModelRegistry:
    """The replicated state machine: every committed model, by id.

    The node's loop calls ``apply`` for each committed COMMAND entry, in log
    order, and ``restore`` when a snapshot is installed; ``snapshot_data``
    is what compaction stores. ``models`` holds the records (the same on
    every node once applied); the files are in ``store`` (``models/``).
    ``load`` serves a model's parsed ``Model`` and never damaged bytes.
    ``damaged`` lists the models whose file here is missing or fails its
    SHA-256, for ``repair.ModelFetcher`` to fetch again. Not thread-safe:
    only the event loop uses it.
    """

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.models: dict[str, ModelRecord] = {}
        self._loaded: dict[str, Model] = {}
        # Files written without fsync since the last compaction (see compaction.py).
        self._unsynced: set[str] = set()
        # Committed models whose file here is missing or damaged (being fetched).
        self.damaged: set[str] = set()
        # Models whose file was written or verified here (check_files skips them).
        self._checked: set[str] = set()

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.models

    def apply(self, index: int, data: bytes) -> ModelRecord | None:
        """Apply the committed command at ``index``; None if it changed nothing."""
        try:
            header, body = decode_command(data)
        except CommandError as exc:
            # Every node sees the same bytes, so every node skips it alike.
            log.error("skipping committed entry %d: %s", index, exc)
            return None
        model_id = header["model_id"]
        if model_id in self.models:
            return None  # a retried request already stored this model
        body_bytes = bytes(body)
        if hashlib.sha256(body_bytes).hexdigest() != header["sha256"]:
            log.error("skipping committed entry %d: model %s fails its checksum", index, model_id)
            return None
        if not self._file_matches(model_id, header["sha256"]):
            # No fsync: the committed entry in the (fsynced) Raft log is the
            # durable copy. After a crash, replaying the log finds a missing or
            # torn file by its sha256 and writes it again. Compaction fsyncs
            # the files before the log forgets their entries (compaction.py).
            self.store.write(model_id, body_bytes, durable=False)
        # Even a file found intact may never have reached the disk (written just
        # before a crash, still in the page cache): compaction fsyncs it too.
        self._unsynced.add(model_id)
        record = ModelRecord(
            model_id=model_id,
            request_id=header["request_id"],
            sha256=header["sha256"],
            size=header["size"],
            created=header["created"],
            index=index,
            summary=header.get("summary") or {},
        )
        self.models[model_id] = record
        self.damaged.discard(model_id)
        self._checked.add(model_id)
        return record

    def _file_matches(self, model_id: str, sha256: str) -> bool:
        if not self.store.exists(model_id):
            return False
        return hashlib.sha256(self.store.read(model_id)).hexdigest() == sha256

    def load(self, model_id: str) -> Model:
        """The model, parsed once and kept in memory (files are immutable).

        The file is checked against the SHA-256 its record carries before it
        is parsed: damaged bytes are never served. ModelFileDamaged then.
        """
        model = self._loaded.get(model_id)
        if model is None:
            record = self.models[model_id]
            if model_id in self.damaged:
                raise ModelFileDamaged(model_id, "its file is being fetched from peers")
            try:
                data = self.store.read(model_id)
            except FileNotFoundError:
                self.damaged.add(model_id)
                raise ModelFileDamaged(model_id, "its file is missing") from None
            if hashlib.sha256(data).hexdigest() != record.sha256:
                self.damaged.add(model_id)
                raise ModelFileDamaged(model_id, "its file fails its SHA-256 checksum")
            model = Model.from_bytes(data)
            self._loaded[model_id] = model
        return model

    def check_files(self) -> list[ModelRecord]:
        """Records whose file is missing or damaged (now marked so).

        Reads and hashes the files of the records not checked before: at
        start-up all of them, after a snapshot install only the new ones
        (files are immutable; a later damage is caught when one is loaded)."""
        bad = []
        for record in self.models.values():
            if record.model_id in self._checked:
                continue
            self._checked.add(record.model_id)
            if not self._file_matches(record.model_id, record.sha256):
                self.damaged.add(record.model_id)
                bad.append(record)
        return bad

    def store_repaired(self, model_id: str, data: bytes) -> None:
        """A verified copy of a damaged file, fetched from a peer: written durably
        (no log entry covers it any more)."""
        record = self.models.get(model_id)
        if record is None or hashlib.sha256(data).hexdigest() != record.sha256:
            raise ValueError(f"refusing to store a copy of {model_id} that fails its checksum")
        self.store.write(model_id, data, durable=True)
        self._unsynced.discard(model_id)
        self.damaged.discard(model_id)

    def take_unsynced(self) -> list[str]:
        """The files written without fsync since the last call (for compaction)."""
        ids, self._unsynced = sorted(self._unsynced), set()
        return ids

    def mark_unsynced(self, model_ids: list[str]) -> None:
        self._unsynced.update(model_ids)

    def listing(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in sorted(self.models.values(), key=lambda r: r.index)]

    # Snapshots: the index of records. Model files stay where they are; a node
    # installing a snapshot fetches the files it lacks (see repair.py).
    def snapshot_data(self, through: int | None = None) -> bytes:
        """The records stored at Raft index ``through`` or before (all by default)."""
        return orjson.dumps(
            [
                {**r.to_json(), "request_id": r.request_id, "summary": r.summary}
                for r in self.models.values()
                if through is None or r.index <= through
            ]
        )

    def restore(self, data: bytes) -> None:
        """Replace the records with a snapshot's; ``check_files`` finds the files to fetch.

        A model already held keeps its parsed copy and its checked file (ids
        are unique and files immutable); the others are new to this node."""
        previous = self.models
        self.models = {}
        loaded, self._loaded = self._loaded, {}
        checked, self._checked = self._checked, set()
        damaged, self.damaged = self.damaged, set()
        for item in orjson.loads(data) if data else []:
            record = ModelRecord(
                model_id=item["model_id"],
                request_id=item["request_id"],
                sha256=item["sha256"],
                size=item["size_bytes"],
                created=item["created"],
                index=item["index"],
                summary=item.get("summary") or {},
            )
            self.models[record.model_id] = record
            old = previous.get(record.model_id)
            if old is not None and old.sha256 == record.sha256:
                if record.model_id in loaded:
                    self._loaded[record.model_id] = loaded[record.model_id]
                if record.model_id in checked:
                    self._checked.add(record.model_id)
                if record.model_id in damaged:
                    self.damaged.add(record.model_id)
