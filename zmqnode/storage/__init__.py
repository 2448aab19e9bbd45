"""Durable storage for one node: atomic files, checksummed records, clear errors.

See ``node_storage`` for the directory layout and each module for its format.
"""

from .errors import StorageBroken, StorageCorruption
from .model_store import InvalidModelId, ModelStore
from .node_storage import NodeStorage, Recovered

__all__ = [
    "InvalidModelId",
    "ModelStore",
    "NodeStorage",
    "Recovered",
    "StorageBroken",
    "StorageCorruption",
]
