"""Values that enter and leave the Raft core.

Everything here is an immutable value: the core never shares mutable state
with its caller. Node ids are plain strings (in a real cluster the peer's
client address, ``"127.0.0.1:9000"``; in the simulator ``"n1"``).

``BROADCAST`` as a message's ``dst`` means "every peer": the leader's
heartbeat, which the real node sends once over its PUB socket and the
simulator delivers to each peer independently (each copy may be lost).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

BROADCAST = "*"
NO_NODE = ""


class Role(enum.Enum):
    """A member's role (Raft §5.1, plus pre-candidate: thesis §9.6)."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class MessageType(enum.Enum):
    """Every message two cores exchange (docs/PROTOCOL.md §8 puts them on the wire)."""

    # Elections (Raft §5.2; pre-vote from Ongaro's thesis §9.6).
    PRE_VOTE = "pre_vote"
    PRE_VOTE_RESP = "pre_vote_resp"
    VOTE = "vote"
    VOTE_RESP = "vote_resp"
    # Replication (§5.3); the reply also answers SNAPSHOT.
    APPEND = "append"
    APPEND_RESP = "append_resp"
    # Leader liveness over PUB/SUB; the reply comes back on the RPC path and
    # is what check-quorum and ReadIndex count.
    HEARTBEAT = "heartbeat"
    HEARTBEAT_RESP = "heartbeat_resp"
    # InstallSnapshot (§7).
    SNAPSHOT = "snapshot"
    # Leadership transfer (thesis §3.10): "start an election now".
    TIMEOUT_NOW = "timeout_now"
    # A follower asks the leader for a read index (thesis §6.4).
    READ_INDEX = "read_index"
    READ_INDEX_RESP = "read_index_resp"


class EntryKind(enum.Enum):
    """What an entry carries: a state-machine command, nothing, or a new membership."""

    NOOP = "noop"  # appended by every new leader (§8)
    COMMAND = "command"
    CONFIG = "config"  # data: the whole new Membership, encoded (membership.py)


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry; ``data`` is opaque to Raft (for the node: a registry command)."""

    index: int
    term: int
    kind: EntryKind = EntryKind.COMMAND
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must survive a crash before any message that depends on it leaves."""

    term: int = 0
    vote: str = NO_NODE


@dataclass(frozen=True, slots=True)
class Snapshot:
    """State machine state covering every entry up to and including ``index``,
    and the membership as of ``index`` (encoded; empty: the bootstrap one)."""

    index: int = 0
    term: int = 0
    data: bytes = b""
    membership: bytes = b""


@dataclass(frozen=True, slots=True)
class Message:
    """One Raft message. Fields that a type does not use keep their defaults.

    - PRE_VOTE / VOTE: ``log_index``/``log_term`` describe the candidate's last
      entry; ``force`` bypasses the leader lease (leadership transfer).
    - *_RESP to votes: ``reject`` is False when granted.
    - APPEND: ``log_index``/``log_term`` are the previous entry (prevLogIndex,
      prevLogTerm), ``entries`` the new ones, ``commit`` the leader's commit.
    - APPEND_RESP: on success ``index`` is the follower's last index known to
      match; on rejection ``index`` is the rejected prevLogIndex and
      ``reject_hint``/``log_term`` point at where the logs may agree.
    - HEARTBEAT: ``commit`` is a hint, ``context`` a sequence number that the
      HEARTBEAT_RESP echoes (ReadIndex counts echoes of a fresh number).
    - SNAPSHOT: ``snapshot``.
    - READ_INDEX / READ_INDEX_RESP: ``read_ctx`` names the request, ``index``
      is the read index in the reply; ``reject`` when the leader cannot serve.
    """

    type: MessageType
    src: str
    dst: str
    term: int
    log_index: int = 0
    log_term: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    index: int = 0
    reject_hint: int = 0
    context: int = 0
    read_ctx: str = ""
    force: bool = False
    snapshot: Snapshot | None = None


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once ``applied >= index``."""

    read_ctx: str
    index: int


class Refusal(enum.Enum):
    """Why a proposal was refused, for callers that act on it (``reason`` is for people)."""

    NOT_LEADER = "not_leader"  # ask ``leader_hint``
    TRANSFERRING = "transferring"  # leadership transfer in progress: retry soon
    RETRY = "retry"  # a membership change must wait (own-term commit, one in flight, lag)
    CONFLICT = "conflict"  # the membership changed since the given base index
    INVALID = "invalid"  # the change does not apply to this membership


@dataclass(frozen=True, slots=True)
class ProposeResult:
    """The answer to ``propose``: where the entry will sit, or who leads."""

    accepted: bool
    index: int = 0
    term: int = 0
    leader_hint: str = NO_NODE
    reason: str = ""
    refusal: Refusal | None = None


@dataclass(slots=True)
class Ready:
    """What the caller must do next, in this order:

    1. persist ``hard_state`` (if any), then ``snapshot`` (if any: it replaces
       the state machine and the whole log), then ``entries`` (truncate the
       log after ``entries[0].index - 1``, then append), and make them durable.
       The hard state goes first so that a crash never leaves a snapshot or
       entries from a term the node has not saved;
    2. send ``messages`` — only now, because they may promise what step 1 wrote;
    3. install ``snapshot`` into the state machine, then apply ``committed``
       in order, and serve each ``read_states`` entry once applied reaches it;
    4. call ``advance(ready)``.
    """

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.hard_state
            or self.entries
            or self.snapshot
            or self.messages
            or self.committed
            or self.read_states
        )
