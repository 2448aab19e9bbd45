"""Sans-IO Raft: the algorithm as a pure state machine (see core.py)."""

from .core import RaftConfig, RaftCore
from .membership import ChangeType, ConfChange, Membership, MembershipError
from .messages import (
    BROADCAST,
    NO_NODE,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    ProposeResult,
    ReadState,
    Ready,
    Refusal,
    Role,
    Snapshot,
)

__all__ = [
    "BROADCAST",
    "NO_NODE",
    "ChangeType",
    "ConfChange",
    "Membership",
    "MembershipError",
    "Entry",
    "EntryKind",
    "HardState",
    "Message",
    "MessageType",
    "ProposeResult",
    "RaftConfig",
    "RaftCore",
    "ReadState",
    "Ready",
    "Refusal",
    "Role",
    "Snapshot",
]
