"""The chunk scheduler, as a specification (docs/PROTOCOL.md §9: pipeline with
deadline and reassignment). No sockets and no clock: time is an argument,
trainers are a ``Trainers`` snapshot, and sends go to a recording fake."""

from __future__ import annotations

import pytest

from zmqnode.training.scheduler import (
    FIRST_ANSWER_TIMEOUT,
    MIN_CHUNK_TIMEOUT,
    MIN_ROWS_PER_CHUNK,
    PEER_DOWN_SECONDS,
    PEER_FRESH_SECONDS,
    ChunkScheduler,
    Trainers,
    chunk_count,
)

A, B, C = "10.0.0.1:9000", "10.0.0.2:9000", "10.0.0.3:9000"
T0 = 1000.0  # when the job came (any monotonic time)


class Wire:
    """The Dispatch fake: records every send; trainers in ``refusing`` do
    not take chunks (as a PUSH to a trainer that is not connected)."""

    def __init__(self, refusing: set[str] = frozenset()) -> None:
        self.refusing = set(refusing)
        self.sent: list[tuple[int, str, bool]] = []  # (chunk, trainer, with_data)

    def __call__(self, chunk: int, trainer: str, with_data: bool) -> bool:
        if trainer in self.refusing:
            return False
        self.sent.append((chunk, trainer, with_data))
        return True

    def take(self) -> list[tuple[int, str, bool]]:
        sent, self.sent = self.sent, []
        return sent


def up(*names: str, **kwargs) -> Trainers:
    return Trainers(available=names, **kwargs)


def started_job(trainers=(A, B, C), n_chunks=3, available=None, wire=None) -> ChunkScheduler:
    job = ChunkScheduler(trainers, started=T0, timeout=600.0)
    job.set_chunks(n_chunks)
    job.start_round(T0, up(*(trainers if available is None else available)), wire or Wire())
    return job


# -- how many chunks ------------------------------------------------------------


def test_one_chunk_per_trainer_when_the_data_is_large_enough():
    assert chunk_count(3 * MIN_ROWS_PER_CHUNK, 3) == 3
    assert chunk_count(10_000, 3) == 3


def test_small_data_uses_fewer_trainers_so_each_chunk_has_its_minimum_rows():
    assert chunk_count(2 * MIN_ROWS_PER_CHUNK + 5, 3) == 2
    assert chunk_count(MIN_ROWS_PER_CHUNK, 3) == 1


def test_tiny_data_still_makes_one_chunk():
    assert chunk_count(4, 3) == 1  # XOR's 4 rows
    assert chunk_count(1, 1) == 1


def test_fewer_chunks_than_trainers_keep_the_first_trainers_only():
    job = ChunkScheduler([A, B, C], started=T0, timeout=600.0)
    job.set_chunks(2)
    assert job.trainers == [A, B]


# -- which chunk goes where at a round's start ----------------------------------


def test_at_round_start_chunk_c_goes_to_trainer_c_mod_n_with_its_rows():
    wire = Wire()
    job = started_job(wire=wire)
    assert wire.take() == [(0, A, True), (1, B, True), (2, C, True)]
    assert {c: a.trainer for c, a in job.pending.items()} == {0: A, 1: B, 2: C}
    assert all(a.sent_at == T0 for a in job.pending.values())


def test_later_rounds_send_only_the_weights_to_a_trainer_that_has_the_rows():
    wire = Wire()
    job = started_job(wire=wire)
    wire.take()
    for chunk in range(3):
        job.answered(chunk, T0 + 1)
    job.next_round(T0 + 2, up(A, B, C), wire)
    assert job.round == 1
    assert wire.take() == [(0, A, False), (1, B, False), (2, C, False)]


def test_a_trainer_that_refuses_at_round_start_is_passed_over_for_the_next_available():
    wire = Wire(refusing={B})
    job = started_job(wire=wire)
    assert wire.take() == [(0, A, True), (1, A, True), (2, C, True)]
    assert job.pending[1].trainer == A


def test_a_trainer_gone_between_rounds_is_dropped_from_the_job_with_a_warning():
    wire = Wire()
    job = started_job(wire=wire)
    for chunk in range(3):
        job.answered(chunk, T0 + 1)
    wire.take()
    silent = Trainers(available=(A, C), down={B: "is down (node silent for 3.0s)"})
    warnings = job.next_round(T0 + 2, silent, wire)
    assert job.trainers == [A, C]
    # Chunk 1's preferred trainer is now trainers[1 % 2] = C; C never had its rows.
    assert wire.take() == [(0, A, False), (1, C, True), (2, A, True)]
    assert warnings == [
        f"trainer {B} is down (node silent for 3.0s): from round 1 its chunks go to the others"
    ]
    assert job.warnings == warnings


def test_a_trainer_unavailable_but_not_yet_down_is_called_unreachable():
    job = started_job(trainers=(A, B), n_chunks=2, available=(A,))
    assert job.warnings == [f"trainer {B} is unreachable: from round 0 its chunks go to the others"]


def test_nobody_available_at_round_start_leaves_every_chunk_pending_unassigned():
    job = started_job(available=())
    assert {c: a.trainer for c, a in job.pending.items()} == {0: "", 1: "", 2: ""}


# -- deadlines ----------------------------------------------------------------------


def test_before_any_answer_a_chunk_waits_the_first_answer_timeout():
    wire = Wire()
    job = started_job(wire=wire)
    wire.take()
    assert job.chunk_timeout() == FIRST_ANSWER_TIMEOUT
    assert job.check(T0 + FIRST_ANSWER_TIMEOUT - 0.1, up(A, B, C), wire) == []
    assert wire.take() == []
    job.check(T0 + FIRST_ANSWER_TIMEOUT, up(A, B, C), wire)
    assert [trainer for _, trainer, _ in wire.take()] == [B, A, A]  # each to another trainer


def test_after_an_answer_the_deadline_is_four_times_the_slowest():
    wire = Wire()
    job = started_job(wire=wire)
    wire.take()
    job.answered(0, T0 + 3.0)
    assert job.chunk_timeout() == 12.0
    job.check(T0 + 11.9, up(A, B, C), wire)
    assert wire.take() == []
    warnings = job.check(T0 + 12.0, up(A, B, C), wire)
    assert [(chunk, trainer) for chunk, trainer, _ in wire.take()] == [(1, A), (2, A)]
    assert warnings[0] == (
        f"trainer {B} did not answer within 12.0s: chunk 1 of round 0 went to another trainer"
    )


def test_the_deadline_is_never_shorter_than_the_minimum():
    job = started_job()
    job.answered(0, T0 + 0.1)
    assert job.chunk_timeout() == MIN_CHUNK_TIMEOUT
    wire = Wire()
    job.check(T0 + MIN_CHUNK_TIMEOUT - 0.01, up(A, B, C), wire)
    assert wire.take() == []
    job.check(T0 + MIN_CHUNK_TIMEOUT, up(A, B, C), wire)
    assert len(wire.take()) == 2


def test_a_moved_chunk_gets_a_new_deadline_from_when_it_was_resent():
    wire = Wire()
    job = started_job(trainers=(A, B), n_chunks=2, wire=wire)
    job.answered(0, T0 + 1.0)  # deadline: MIN_CHUNK_TIMEOUT
    job.check(T0 + 5.0, up(A, B), wire)
    assert job.pending[1].trainer == A and job.pending[1].sent_at == T0 + 5.0
    wire.take()
    job.check(T0 + 9.9, up(A, B), wire)
    assert wire.take() == []


# -- a trainer that is down ---------------------------------------------------------


def test_a_chunk_of_a_trainer_that_is_down_moves_at_once_with_a_warning():
    wire = Wire()
    job = started_job(wire=wire)
    wire.take()
    silent = Trainers(available=(A, C), down={B: "is down (node silent for 2.5s)"})
    warnings = job.check(T0 + 0.5, silent, wire)  # long before any deadline
    assert wire.take() == [(1, A, True)]  # A never had chunk 1's rows
    assert warnings == [
        f"trainer {B} is down (node silent for 2.5s): chunk 1 of round 0 went to another trainer"
    ]
    assert job.trainers == [A, C]


def test_a_chunk_sent_before_its_trainer_restarted_moves_at_once():
    wire = Wire()
    job = started_job(trainers=(A, B), n_chunks=2, wire=wire)
    wire.take()
    restarted = Trainers(available=(A, B), restarted_at={A: T0 + 1.0})
    warnings = job.check(T0 + 2.0, restarted, wire)
    assert wire.take() == [(0, B, True)]
    assert "exited and was restarted" in warnings[0]


def test_alone_the_chunk_is_resent_to_the_same_trainer_once_it_restarted():
    wire = Wire()
    job = started_job(trainers=(A,), n_chunks=1, wire=wire)
    wire.take()
    exited = Trainers(available=(), down={A: "exited"})
    assert job.check(T0 + 1.0, exited, wire) == []
    assert wire.take() == []  # nobody to ask while it is down
    back = Trainers(available=(A,), restarted_at={A: T0 + 2.0})
    warnings = job.check(T0 + 2.5, back, wire)
    # Sent as to a trainer that caches the rows: the new process answers that
    # it lacks them, and gets them then (lost_data).
    assert wire.take() == [(0, A, False)]
    assert job.pending[0].trainer == A and job.pending[0].sent_at == T0 + 2.5
    assert job.trainers == [A]
    assert warnings[0].startswith(f"trainer {A} exited and was restarted: chunk 0 of round 0")


def test_a_restarted_trainer_warns_only_the_jobs_it_trains_for():
    mine = started_job(trainers=(A, B), n_chunks=2)
    others = started_job(trainers=(B, C), n_chunks=2)
    assert mine.trainer_restarted(A, -9) == [
        f"trainer {A} exited (status -9) and was restarted; its chunks were sent again"
    ]
    assert others.trainer_restarted(A, -9) == []
    assert others.warnings == []


def test_alone_an_unanswered_chunk_is_resent_to_the_same_trainer():
    wire = Wire()
    job = started_job(trainers=(A,), n_chunks=1, wire=wire)
    wire.take()
    job.check(T0 + FIRST_ANSWER_TIMEOUT, up(A), wire)
    assert wire.take() == [(0, A, False)]  # it still caches the rows


def test_nobody_available_keeps_the_chunk_pending_with_its_trainer():
    wire = Wire()
    job = started_job(trainers=(A, B), n_chunks=2, wire=wire)
    wire.take()
    nobody = Trainers(available=(), down={A: "exited", B: "is down (node silent for 5.0s)"})
    assert job.check(T0 + 100.0, nobody, wire) == []
    assert wire.take() == []
    assert {c: a.trainer for c, a in job.pending.items()} == {0: A, 1: B}


def test_when_every_send_fails_the_chunk_stays_pending_unassigned_and_is_placed_next_check():
    wire = Wire()
    job = started_job(trainers=(A, B), n_chunks=2, wire=wire)
    wire.take()
    refusing = Wire(refusing={A, B})
    job.check(T0 + FIRST_ANSWER_TIMEOUT, up(A, B), refusing)
    assert job.pending[0].trainer == "" and job.pending[1].trainer == ""
    # An unassigned chunk is due at once, and no warning names a trainer for it.
    assert job.check(T0 + FIRST_ANSWER_TIMEOUT + 0.2, up(A, B), wire) == []
    assert {c: a.trainer for c, a in job.pending.items()} == {0: A, 1: A}


def test_a_refused_send_forgets_that_the_trainer_had_the_rows():
    wire = Wire()
    job = started_job(trainers=(A,), n_chunks=1, wire=wire)
    wire.take()
    job.check(T0 + FIRST_ANSWER_TIMEOUT, up(A), Wire(refusing={A}))
    job.check(T0 + FIRST_ANSWER_TIMEOUT + 0.2, up(A), wire)
    assert wire.take() == [(0, A, True)]  # it may come back as a new process


def test_a_trainer_that_lost_its_rows_gets_the_chunk_again_with_them():
    wire = Wire()
    job = started_job(trainers=(A, B), n_chunks=2, wire=wire)
    wire.take()
    job.lost_data(B, 1, T0 + 3.0, wire)
    assert wire.take() == [(1, B, True)]
    assert job.pending[1].sent_at == T0 + 3.0


def test_an_answered_chunk_is_never_moved():
    wire = Wire()
    job = started_job(trainers=(A, B), n_chunks=2, wire=wire)
    wire.take()
    job.answered(0, T0 + 1.0)
    job.check(T0 + 100.0, Trainers(available=(B,), down={A: "exited"}), wire)
    assert [chunk for chunk, _, _ in wire.take()] == [1]


# -- the job's own timeout ----------------------------------------------------------


def test_the_job_times_out_only_after_its_training_timeout():
    job = ChunkScheduler([A], started=T0, timeout=600.0)
    assert not job.timed_out(T0 + 600.0)
    assert job.timed_out(T0 + 600.01)


# -- what the coordinator knows of its trainers -------------------------------------


def survey(now=T0, **overrides) -> Trainers:
    args = dict(
        own=A,
        own_enabled=True,
        own_exited=False,
        own_started=0.0,
        peers=(B, C),
        last_heard={B: T0 - 0.2, C: T0 - 0.2},
    )
    args.update(overrides)
    return Trainers.survey(now, **args)


def test_the_own_trainer_comes_first_then_the_peers_heard_from_recently():
    assert survey().available == (A, B, C)


def test_a_disabled_or_exited_own_trainer_is_not_available():
    assert survey(own_enabled=False).available == (B, C)
    exited = survey(own_exited=True)
    assert exited.available == (B, C)
    assert exited.why_down(A) == "exited"


def test_a_peer_silent_a_little_is_unavailable_but_not_down():
    quiet = survey(last_heard={B: T0 - PEER_FRESH_SECONDS - 0.1, C: T0})
    assert quiet.available == (A, C)
    assert quiet.why_down(B) == ""


def test_a_peer_silent_past_the_down_threshold_is_down():
    gone = survey(last_heard={B: T0 - PEER_DOWN_SECONDS - 0.5, C: T0})
    assert gone.why_down(B) == "is down (node silent for 2.5s)"


def test_a_peer_never_heard_from_is_down():
    assert survey(last_heard={C: T0}).why_down(B).startswith("is down")


@pytest.mark.parametrize("sent_at, why", [(T0 - 1.0, "exited and was restarted"), (T0, "")])
def test_only_jobs_sent_before_the_own_trainer_restarted_are_lost(sent_at, why):
    assert survey(own_started=T0).why_down(A, sent_at) == why
