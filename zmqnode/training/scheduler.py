"""Which trainer trains which chunk, and when a chunk moves: the coordinator's decisions.

Pure: no sockets, no clock, no processes. The time comes in as ``now``; what
the coordinator knows of its trainers comes in as a ``Trainers`` snapshot;
sending a chunk is the injected ``Dispatch`` callable, which only says
whether the trainer took it. This is the "pipeline with deadline and
reassignment" of docs/PROTOCOL.md §9:

- a job's rows are split into ``chunk_count`` chunks, one per trainer, but
  never fewer than ``MIN_ROWS_PER_CHUNK`` rows each;
- at a round's start chunk ``c`` goes to ``trainers[c % len(trainers)]``,
  or, if that trainer does not take it, to the first available one that does;
- a chunk unanswered past its deadline, or whose trainer is down, moves to
  another trainer (to the same one, restarted, when it is the only one);
- a chunk no trainer takes stays pending, unassigned, and is placed again at
  the next check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# A chunk whose trainer has not answered after this long (or after 4x the
# slowest answer seen this round, if larger) is given to another trainer.
MIN_CHUNK_TIMEOUT = 5.0
# How long a round's first answer may take (training on a large chunk).
FIRST_ANSWER_TIMEOUT = 60.0
# Averaging models trained on a handful of rows each loses what each learned
# (XOR's 4 rows split 3 ways cannot be learned at all), so a chunk gets at
# least this many rows; small datasets use fewer trainers.
MIN_ROWS_PER_CHUNK = 32
# A peer counts as an available trainer if we heard from it this recently
# (a little over one heartbeat-answer period; a dead node drops out fast).
PEER_FRESH_SECONDS = 1.0
# A peer not heard from for this long is down: its chunks go elsewhere at
# once instead of waiting for the chunk deadline. (Longer than
# PEER_FRESH_SECONDS so that a briefly starved node does not lose its work.)
PEER_DOWN_SECONDS = 2.0
# When a peer was last heard from if it never was (so it counts as long silent).
_NEVER = -1e9

# Send chunk ``chunk`` to ``trainer``, with its rows if ``with_data`` (else the
# trainer has them cached); False if that trainer cannot take it now.
Dispatch = Callable[[int, str, bool], bool]


def chunk_count(n_rows: int, n_trainers: int) -> int:
    """How many chunks to split ``n_rows`` training rows into for ``n_trainers``:
    one per trainer, at least ``MIN_ROWS_PER_CHUNK`` rows each, at least one."""
    return max(1, min(n_trainers, n_rows // MIN_ROWS_PER_CHUNK))


@dataclass(frozen=True)
class Trainers:
    """What the coordinator knows of the trainers at one instant.

    ``available``: the trainers that may take a chunk now, in the order to try
    them (this node's own first). ``down``: trainer -> why it cannot answer
    any job (its node is silent, its process exited). ``restarted_at``:
    trainer -> when its process last started; a job sent before that was
    lost with the old process.
    """

    available: tuple[str, ...] = ()
    down: Mapping[str, str] = field(default_factory=dict)
    restarted_at: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def survey(
        cls,
        now: float,
        *,
        own: str,
        own_enabled: bool,
        own_exited: bool,
        own_started: float,
        peers: Iterable[str],
        last_heard: Mapping[str, float],
    ) -> Trainers:
        """The snapshot at ``now`` for node ``own``: its own trainer counts while
        enabled and not exited; a peer's while its node was heard from within
        ``PEER_FRESH_SECONDS``, and is down once silent past ``PEER_DOWN_SECONDS``.
        ``own_started``: when the own trainer process was (re)started."""
        available = [own] if own_enabled and not own_exited else []
        down = {own: "exited"} if own_exited else {}
        for peer in peers:
            silent = now - last_heard.get(peer, _NEVER)
            if silent < PEER_FRESH_SECONDS:
                available.append(peer)
            elif silent > PEER_DOWN_SECONDS:
                down[peer] = f"is down (node silent for {silent:.1f}s)"
        return cls(tuple(available), down, {own: own_started})

    def why_down(self, trainer: str, sent_at: float = math.inf) -> str:
        """Why ``trainer`` cannot answer a job sent at ``sent_at`` ('' if it may)."""
        if not trainer:
            return ""
        why = self.down.get(trainer, "")
        if why:
            return why
        if sent_at < self.restarted_at.get(trainer, -math.inf):
            return "exited and was restarted"
        return ""


@dataclass
class Assignment:
    """Chunk ``chunk`` of the current round, sent to ``trainer`` at ``sent_at``
    (``""`` and ``-inf`` while no trainer took it)."""

    chunk: int
    trainer: str
    sent_at: float
    data_sent: bool


class ChunkScheduler:
    """The scheduling state of one training job: its trainers, the chunks of
    the current round still unanswered, which trainer caches which chunk's
    rows, and the warnings the client will read.

    Every method takes the time and the trainers' state as arguments and
    sends through the ``Dispatch`` it is given, so a test can drive it as a
    specification. Methods that may move work return the warnings they
    added (also kept in ``warnings``, for the final reply).
    """

    def __init__(self, trainers: Sequence[str], started: float, timeout: float) -> None:
        """``trainers``: those available when the job came; ``started``: when it
        came; ``timeout``: how long it may take in all (--training-timeout)."""
        self.trainers: list[str] = list(trainers)
        self.started = started
        self.timeout = timeout
        self.n_chunks = 0
        self.round = 0
        self.pending: dict[int, Assignment] = {}
        self.has_data: dict[str, set[int]] = {}  # trainer -> chunks whose rows it caches
        self.warnings: list[str] = []
        self.round_started = 0.0
        self.slowest = 0.0  # the slowest answer of this round so far, in seconds

    def set_chunks(self, n_chunks: int) -> None:
        """The data was split into ``n_chunks`` (never more than asked): the
        first ``n_chunks`` trainers take part."""
        self.n_chunks = n_chunks
        self.trainers = self.trainers[:n_chunks]

    # -- rounds ----------------------------------------------------------------

    def start_round(self, now: float, trainers: Trainers, dispatch: Dispatch) -> list[str]:
        """Send every chunk of round ``self.round``: chunk ``c`` to the job's
        trainer ``c mod n`` first, else to any available one. A job's trainer
        no longer available is dropped from the job, with a warning."""
        self.pending = {}
        self.round_started = now
        self.slowest = 0.0
        available = list(trainers.available)
        added = []
        for lost in [t for t in self.trainers if t not in available]:
            why = trainers.why_down(lost) or "is unreachable"
            added.append(
                f"trainer {lost} {why}: from round {self.round} its chunks go to the others"
            )
        self.trainers = [t for t in self.trainers if t in available] or available
        for chunk in range(self.n_chunks):
            preferred = [self.trainers[chunk % len(self.trainers)]] if self.trainers else []
            self._place(chunk, [*preferred, *available], now, dispatch)
        self.warnings.extend(added)
        return added

    def next_round(self, now: float, trainers: Trainers, dispatch: Dispatch) -> list[str]:
        """The round was averaged: start the next one."""
        self.round += 1
        return self.start_round(now, trainers, dispatch)

    def answered(self, chunk: int, now: float) -> None:
        """Chunk ``chunk`` of this round came back (its answer counts)."""
        self.pending.pop(chunk, None)
        self.slowest = max(self.slowest, now - self.round_started)

    def lost_data(self, trainer: str, chunk: int, now: float, dispatch: Dispatch) -> None:
        """``trainer`` answered that it lacks the rows of ``chunk`` (its process
        restarted): the chunk goes again, rows included, to its current trainer."""
        self.has_data.get(trainer, set()).discard(chunk)
        assignment = self.pending.get(chunk)
        if assignment is not None and assignment.trainer:
            self._assign(chunk, assignment.trainer, now, dispatch)

    # -- deadlines -------------------------------------------------------------

    def chunk_timeout(self) -> float:
        """How long a chunk of this round may go unanswered before it moves."""
        # Until one chunk of the round has answered we know nothing of its
        # speed: wait longer rather than hand healthy trainers' work around.
        if not self.slowest:
            return FIRST_ANSWER_TIMEOUT
        return max(MIN_CHUNK_TIMEOUT, 4 * self.slowest)

    def check(self, now: float, trainers: Trainers, dispatch: Dispatch) -> list[str]:
        """Move every pending chunk that is past its deadline, whose trainer is
        down, or that no trainer took yet, to another available trainer (when
        it is the only one: to the same trainer, restarted). A chunk nobody
        can take stays pending."""
        timeout = self.chunk_timeout()
        added = []
        for chunk, assignment in list(self.pending.items()):
            down = trainers.why_down(assignment.trainer, assignment.sent_at)
            if not down and now - assignment.sent_at < timeout:
                continue
            available = list(trainers.available)
            others = [t for t in available if t != assignment.trainer] or available
            if not others:
                continue  # nobody to ask; the job's own timeout still applies
            if assignment.trainer:
                why = down or f"did not answer within {timeout:.1f}s"
                added.append(
                    f"trainer {assignment.trainer} {why}: chunk {chunk} of round "
                    f"{self.round} went to another trainer"
                )
                self.trainers = [t for t in self.trainers if t != assignment.trainer] or others
            self._place(chunk, others, now, dispatch)
        self.warnings.extend(added)
        return added

    def timed_out(self, now: float) -> bool:
        """Whether the whole job is past its timeout (it fails with TIMEOUT)."""
        return now - self.started > self.timeout

    def trainer_restarted(self, trainer: str, status: int | None) -> list[str]:
        """``trainer``'s process exited with ``status`` and was started again:
        the chunks it cached are gone (they are sent again, or elsewhere)."""
        if trainer not in self.trainers:
            return []
        added = [
            f"trainer {trainer} exited (status {status}) and was restarted; "
            "its chunks were sent again"
        ]
        self.warnings.extend(added)
        return added

    # -- placing chunks --------------------------------------------------------

    def _place(self, chunk: int, candidates: list[str], now: float, dispatch: Dispatch) -> None:
        """Send the chunk to the first candidate that takes it; if none does,
        it stays pending with no trainer and the next check tries again."""
        for trainer in dict.fromkeys(candidates):
            if self._assign(chunk, trainer, now, dispatch):
                return
        self.pending[chunk] = Assignment(chunk, "", -math.inf, False)

    def _assign(self, chunk: int, trainer: str, now: float, dispatch: Dispatch) -> bool:
        cached = chunk in self.has_data.get(trainer, set())
        if not dispatch(chunk, trainer, not cached):
            # It is not connected: if it comes back it may be a new process
            # without our rows, so the next send carries them.
            self.has_data.get(trainer, set()).discard(chunk)
            return False
        self.has_data.setdefault(trainer, set()).add(chunk)
        self.pending[chunk] = Assignment(chunk, trainer, now, not cached)
        return True
