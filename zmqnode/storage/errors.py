"""Errors storage raises, written for the operator who has to act on them."""

from __future__ import annotations

import os

# What an operator can always do when one node's disk is beyond repair. Raft
# makes it safe only while the other nodes form a healthy majority: an empty
# node has forgotten its votes, and the leader rebuilds its log and models.
REJOIN = (
    "remove the whole storage dir to rejoin as an empty node — the other nodes will send it "
    "everything (do this only while the other nodes form a working majority)"
)


class StorageCorruption(Exception):
    """Bytes on disk fail a check; the node must not start from them.

    ``str(exc)`` names the file, says what is wrong and what to do;
    ``path``, ``problem`` and ``advice`` hold the three parts.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, advice: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        self.advice = advice
        super().__init__(f"{self.path} {problem}. {advice}")


class StorageBroken(RuntimeError):
    """An earlier write or fsync failed, so what is on disk is unknown.

    The object refuses further use: after a failed fsync the kernel may have
    dropped the dirty pages, and retrying would report success for data that
    is gone. Restart the node; it recovers from what the disk really holds.
    """
