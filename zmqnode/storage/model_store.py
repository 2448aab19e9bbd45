"""``models/<id>.bin``: one immutable file per committed model.

Files are written atomically, so a reader sees a whole model or none. The
bytes are opaque here (``zmqnode.ml`` owns the format and its checksum).
Model ids are checked against ``MODEL_ID_PATTERN`` before they touch a path:
an id such as ``../raft_state`` can never name a file outside ``models/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .atomic import (
    FsyncStats,
    PathLike,
    atomic_write,
    ensure_dir,
    is_temp_name,
    remove_stale_temps,
)

MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
SUFFIX = ".bin"


class InvalidModelId(ValueError):
    """A model id that is not 1-64 of ``A-Z a-z 0-9 _ -``."""


def check_model_id(model_id: str) -> str:
    """``model_id`` itself if valid; InvalidModelId otherwise."""
    if not isinstance(model_id, str) or not MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidModelId(
            f"invalid model id {model_id!r}: use 1 to 64 letters, digits, '_' or '-'"
        )
    return model_id


class ModelStore:
    """The models directory (created if missing; stale temp files removed)."""

    def __init__(self, directory: PathLike, *, stats: FsyncStats | None = None) -> None:
        self.directory = Path(directory)
        self.stats = stats or FsyncStats()
        ensure_dir(self.directory, self.stats)
        remove_stale_temps(self.directory)

    def path(self, model_id: str) -> Path:
        """Where ``model_id`` lives; InvalidModelId for a bad id."""
        return self.directory / (check_model_id(model_id) + SUFFIX)

    def write(self, model_id: str, data: bytes, *, durable: bool = True) -> None:
        """Store ``data`` as ``model_id``, atomically (replaces any old file); durably
        unless ``durable=False`` (see ``atomic_write``)."""
        atomic_write(self.path(model_id), data, stats=self.stats, durable=durable)

    def read(self, model_id: str) -> bytes:
        """The model's bytes; FileNotFoundError if absent, InvalidModelId for a bad id."""
        return self.path(model_id).read_bytes()

    def exists(self, model_id: str) -> bool:
        """True if the model is stored; False for any invalid id (it cannot be)."""
        try:
            return self.path(model_id).is_file()
        except InvalidModelId:
            return False

    def ids(self) -> list[str]:
        """Every stored model id, sorted; temp files and stray names skipped."""
        found = []
        for name in os.listdir(self.directory):
            if is_temp_name(name) or not name.endswith(SUFFIX):
                continue
            model_id = name[: -len(SUFFIX)]
            if MODEL_ID_PATTERN.fullmatch(model_id):
                found.append(model_id)
        return sorted(found)
