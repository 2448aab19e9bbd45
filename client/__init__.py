"""Client of a zmqnode cluster: the ``Client`` API and ``python -m client``."""

from client.api import (
    DEFAULT_NODE,
    Client,
    ClientError,
    ClusterUnavailable,
    Reply,
    new_request_id,
)

__all__ = [
    "DEFAULT_NODE",
    "Client",
    "ClientError",
    "ClusterUnavailable",
    "Reply",
    "new_request_id",
]
