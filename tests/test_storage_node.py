"""NodeStorage: the Ready contract on disk, and recovery after a crash at any step."""

from __future__ import annotations

import os
import random

import pytest

from zmqnode.raft.core import RaftConfig, RaftCore
from zmqnode.raft.messages import Entry, EntryKind, HardState, Ready, Snapshot
from zmqnode.storage.errors import StorageCorruption
from zmqnode.storage.hard_state import HardStateFile
from zmqnode.storage.node_storage import NodeStorage, Recovered
from zmqnode.storage.snapshot_store import SnapshotStore


def ents(*terms: int, start: int = 1) -> list[Entry]:
    return [
        Entry(start + k, t, EntryKind.COMMAND, f"cmd{start + k}".encode())
        for k, t in enumerate(terms)
    ]


@pytest.fixture
def directory(tmp_path):
    return tmp_path / "node0_storage"


def fresh(directory) -> NodeStorage:
    storage = NodeStorage(directory)
    storage.open()
    return storage


def reopened(storage: NodeStorage) -> Recovered:
    storage.close()
    again = NodeStorage(storage.directory)
    recovered = again.open()
    again.close()
    return recovered


def test_open_creates_the_directory_and_finds_an_empty_node(directory):
    storage = NodeStorage(directory)
    recovered = storage.open()
    assert recovered == Recovered(HardState(), None, [], [])
    assert sorted(os.listdir(directory)) == ["raft.log"]
    storage.close()


def test_everything_persisted_is_recovered_after_restart(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, "n1"), entries=ents(1, 1)))
    storage.persist(Ready(hard_state=HardState(2, ""), entries=ents(2, start=3)))
    storage.compact(Snapshot(2, 1, b"registry@2"))
    storage.persist(Ready(entries=ents(2, 2, start=4)))
    recovered = reopened(storage)
    assert recovered.hard_state == HardState(2, "")
    assert recovered.snapshot == Snapshot(2, 1, b"registry@2")
    assert recovered.entries == ents(2, 2, 2, start=3)
    assert recovered.warnings == []


def test_persisted_entries_replace_a_conflicting_suffix(directory):
    storage = fresh(directory)
    storage.persist(Ready(entries=ents(1, 1, 1, 1)))
    storage.persist(Ready(hard_state=HardState(3, "n2"), entries=ents(3, start=2)))
    assert [(e.index, e.term) for e in reopened(storage).entries] == [(1, 1), (2, 3)]


def test_a_ready_with_a_snapshot_replaces_the_whole_log(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(2, "n1"), entries=ents(1, 1, 2, 2, 2)))
    # A leader's snapshot at 4 whose term disagrees with our entry 4: all goes.
    storage.persist(Ready(hard_state=HardState(3, ""), snapshot=Snapshot(4, 3, b"leader's")))
    assert storage.log.first_index == 5
    recovered = reopened(storage)
    assert recovered.snapshot == Snapshot(4, 3, b"leader's")
    assert recovered.entries == []
    assert recovered.hard_state == HardState(3, "")


def test_a_snapshot_beyond_the_log_and_entries_after_it_in_one_ready(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, ""), entries=ents(1, 1)))
    storage.persist(
        Ready(
            hard_state=HardState(5, ""),
            snapshot=Snapshot(10, 4, b"s"),
            entries=ents(4, 5, start=11),
        )
    )
    storage.persist(Ready(entries=ents(5, start=13)))
    recovered = reopened(storage)
    assert recovered.snapshot.index == 10
    assert [(e.index, e.term) for e in recovered.entries] == [(11, 4), (12, 5), (13, 5)]


def test_compaction_keeps_later_entries_and_survives_reopen(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(2, ""), entries=ents(1, 1, 2, 2, 2)))
    storage.compact(Snapshot(3, 2, b"through 3"))
    assert storage.log.first_index == 4
    recovered = reopened(storage)
    assert recovered.snapshot == Snapshot(3, 2, b"through 3")
    assert recovered.entries == ents(2, 2, start=4)


def test_an_older_snapshot_does_not_undo_a_compaction(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, ""), entries=ents(1, 1, 1, 1)))
    storage.compact(Snapshot(3, 1, b"new"))
    storage.compact(Snapshot(2, 1, b"old"))
    assert reopened(storage).snapshot == Snapshot(3, 1, b"new")


def test_compaction_beyond_the_log_is_refused(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, ""), entries=ents(1)))
    with pytest.raises(ValueError):
        storage.compact(Snapshot(5, 1, b""))
    assert reopened(storage).snapshot is None


# -- durability and group commit --------------------------------------------------------


def test_one_ready_with_many_entries_costs_one_fsync(directory):
    storage = fresh(directory)
    before = storage.fsync_count
    storage.persist(Ready(entries=ents(*[1] * 500)))
    assert storage.fsync_count == before + 1
    assert storage.last_fsync_seconds >= 0
    assert storage.log_bytes == os.path.getsize(directory / "raft.log")


def test_an_unchanged_hard_state_is_not_rewritten(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, "n1")))
    before = storage.fsync_count
    storage.persist(Ready(hard_state=HardState(1, "n1"), entries=ents(1)))
    assert storage.fsync_count == before + 1  # the log only


def recording(calls: list[str], obj: object, name: str):
    original = getattr(obj, name)
    label = f"{type(obj).__name__}.{name}"

    def record(*args):
        calls.append(label)
        return original(*args)

    return record


def test_persist_writes_hard_state_then_snapshot_then_entries(directory, monkeypatch):
    storage = fresh(directory)
    calls = []
    for obj, name in [
        (storage.snapshots, "save"),
        (storage.log, "reset"),
        (storage.hard_state_file, "save"),
        (storage.log, "append"),
        (storage.log, "sync"),
    ]:
        monkeypatch.setattr(obj, name, recording(calls, obj, name))
    storage.persist(
        Ready(hard_state=HardState(2, ""), entries=ents(2, start=6), snapshot=Snapshot(5, 2, b"s"))
    )
    assert calls == [
        "HardStateFile.save",
        "SnapshotStore.save",
        "LogFile.reset",
        "LogFile.append",
        "LogFile.sync",
    ]


def test_persist_before_open_is_an_error(directory):
    with pytest.raises(RuntimeError, match="open"):
        NodeStorage(directory).persist(Ready(entries=ents(1)))


# -- recovery from a crash between two writes ----------------------------------------


def test_crash_after_a_local_snapshot_but_before_trimming_the_log(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(3, ""), entries=ents(1, 1, 2, 2)))
    storage.close()
    # compact() = save the snapshot, then trim the log; the crash hit in between.
    SnapshotStore(directory / "snapshot").save(Snapshot(3, 2, b"through 3"))
    storage = NodeStorage(directory)
    recovered = storage.open()
    assert recovered.entries == ents(2, start=4)
    assert "finished a compaction" in recovered.warnings[0]
    assert storage.log.first_index == 4  # and the file was trimmed
    storage.persist(Ready(entries=ents(3, start=5)))
    assert [e.index for e in reopened(storage).entries] == [4, 5]


def test_crash_after_an_installed_snapshot_but_before_dropping_the_log(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, ""), entries=ents(1, 1, 1, 1)))
    storage.close()
    # The leader's snapshot disagrees with our entry 3: the old log must not come back.
    # persist() saved the leader's term first, then the snapshot; the crash came next.
    HardStateFile(directory / "raft_state.json").save(HardState(5, ""))
    SnapshotStore(directory / "snapshot").save(Snapshot(3, 5, b"leader's"))
    storage = NodeStorage(directory)
    recovered = storage.open()
    assert recovered.entries == []
    assert "replaces" in recovered.warnings[0]
    assert storage.log.first_index == 4
    storage.close()


def test_a_log_that_starts_after_the_snapshot_is_refused(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, ""), entries=ents(1, 1, 1, 1)))
    storage.compact(Snapshot(2, 1, b"s"))
    storage.close()
    os.remove(directory / "snapshot" / "snapshot.bin")  # an operator "cleaned up"
    with pytest.raises(StorageCorruption) as info:
        NodeStorage(directory).open()
    message = str(info.value)
    assert "raft.log" in message and "entries 1 to 2 are missing" in message


def test_torn_log_tail_is_reported_in_the_warnings(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, ""), entries=ents(1, 1, 1)))
    storage.close()
    with open(directory / "raft.log", "ab") as f:
        f.write(b"\x30\x00\x00\x00half a record")
    storage = NodeStorage(directory)
    recovered = storage.open()
    assert [e.index for e in recovered.entries] == [1, 2, 3]
    assert len(recovered.warnings) == 1 and "dropped" in recovered.warnings[0]
    storage.close()


def test_corrupt_hard_state_stops_the_node(directory):
    storage = fresh(directory)
    storage.close()
    (directory / "raft_state.json").write_text("{")
    with pytest.raises(StorageCorruption, match="raft_state.json is not valid JSON"):
        NodeStorage(directory).open()


def test_corrupt_snapshot_stops_the_node(directory):
    storage = fresh(directory)
    storage.persist(Ready(entries=ents(1, 1)))
    storage.compact(Snapshot(1, 1, b"abc"))
    storage.close()
    path = directory / "snapshot" / "snapshot.bin"
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    with pytest.raises(StorageCorruption, match="checksum"):
        NodeStorage(directory).open()


def test_missing_hard_state_next_to_log_entries_stops_the_node(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(2, "n2"), entries=ents(1, 2)))
    storage.close()
    os.remove(directory / "raft_state.json")  # the vote for n2 in term 2 is gone
    with pytest.raises(StorageCorruption) as info:
        NodeStorage(directory).open()
    message = str(info.value)
    assert str(directory / "raft_state.json") in message
    assert "is missing" in message and "entries 1 to 2" in message and "vote twice" in message
    assert "remove the whole storage dir" in message


def test_missing_hard_state_next_to_a_snapshot_stops_the_node(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(3, ""), snapshot=Snapshot(4, 3, b"s")))
    storage.close()
    os.remove(directory / "raft_state.json")
    with pytest.raises(StorageCorruption, match="raft_state.json is missing, yet .*snapshot"):
        NodeStorage(directory).open()


def test_missing_hard_state_on_a_node_that_never_stored_anything_is_fine(directory):
    fresh(directory).close()  # first start: raft.log created, then a crash before any vote
    assert not (directory / "raft_state.json").exists()
    storage = NodeStorage(directory)
    assert storage.open() == Recovered(HardState(), None, [], [])
    storage.close()


def test_hard_state_older_than_the_log_stops_the_node(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, "n1"), entries=ents(1)))
    old = (directory / "raft_state.json").read_bytes()  # a "backup"
    storage.persist(Ready(hard_state=HardState(4, "n3"), entries=ents(4, start=2)))
    storage.close()
    (directory / "raft_state.json").write_bytes(old)  # restored alone
    with pytest.raises(StorageCorruption) as info:
        NodeStorage(directory).open()
    message = str(info.value)
    assert "current term is 1" in message and "of term 4" in message
    assert "must be at least as new as raft.log" in message


def test_missing_log_next_to_a_saved_term_stops_the_node(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(2, "n1"), entries=ents(1, 2)))
    storage.close()
    os.remove(directory / "raft.log")
    with pytest.raises(StorageCorruption) as info:
        NodeStorage(directory).open()
    message = str(info.value)
    assert str(directory / "raft.log") in message and "term 2" in message and "lost" in message


def test_a_log_cut_at_a_record_boundary_is_noticed_from_the_model_files(directory):
    storage = fresh(directory)
    storage.persist(Ready(hard_state=HardState(1, ""), entries=ents(1, 1, 1)))
    storage.close()
    models = directory / "models"
    models.mkdir()
    for n in range(3):  # what applying the three commands wrote
        (models / f"m{n}.bin").write_bytes(b"model")
    (models / ".m9.bin.x.tmp").write_bytes(b"half")  # a temp file is not a model
    assert reopened(fresh(directory)).warnings == []
    with open(directory / "raft.log", "r+b") as f:  # lose entry 3, cut between records
        f.truncate(NodeStorage(directory).log.path.stat().st_size - (8 + 17 + 4))
    storage = NodeStorage(directory)
    recovered = storage.open()
    storage.close()
    assert [e.index for e in recovered.entries] == [1, 2]
    (warning,) = recovered.warnings
    assert str(directory / "raft.log") in warning and "lost entries at its end" in warning
    assert "2 model commands" in warning and "3 model files" in warning


def test_stale_temp_files_are_swept_at_open(directory):
    storage = fresh(directory)
    storage.close()
    (directory / ".raft_state.json.abc.tmp").write_text("half")
    fresh(directory).close()
    assert ".raft_state.json.abc.tmp" not in os.listdir(directory)


# -- against a model and the real Raft core --------------------------------------------


class ModelDisk:
    """The same Ready contract on plain Python values: what the disk must hold."""

    def __init__(self) -> None:
        self.hard_state, self.snapshot, self.entries = HardState(), None, []

    def persist(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.snapshot, self.entries = rd.snapshot, []
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state
        if rd.entries:
            base = self.snapshot.index if self.snapshot else 0
            del self.entries[rd.entries[0].index - base - 1 :]
            self.entries.extend(rd.entries)

    def compact(self, snapshot: Snapshot) -> None:
        base = self.snapshot.index if self.snapshot else 0
        del self.entries[: snapshot.index - base]
        self.snapshot = snapshot


@pytest.mark.fuzz
@pytest.mark.parametrize("seed", range(5))
def test_random_readys_and_restarts_match_a_model(directory, seed, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # what is checked here is content, fast
    rng = random.Random(seed)
    model, storage = ModelDisk(), fresh(directory)
    term = 1
    first = Ready(hard_state=HardState(term, ""))  # a real node learns a term before anything
    model.persist(first)
    storage.persist(first)
    for _ in range(150):
        base = model.snapshot.index if model.snapshot else 0
        last = base + len(model.entries)
        roll = rng.random()
        if roll < 0.05:
            rd = Ready(snapshot=Snapshot(last + rng.randint(-1, 3) if last else 2, term, b"s"))
            if rd.snapshot.index <= base:
                continue
        elif roll < 0.12 and model.entries:
            index = rng.randint(base + 1, last)
            snap = Snapshot(index, model.entries[index - base - 1].term, rng.randbytes(8))
            model.compact(snap)
            storage.compact(snap)
            continue
        elif roll < 0.2:
            recovered = reopened(storage)
            assert (recovered.hard_state, recovered.snapshot, recovered.entries) == (
                model.hard_state,
                model.snapshot,
                model.entries,
            )
            storage = fresh(directory)
            continue
        else:
            if rng.random() < 0.2:
                term += 1
            start = rng.randint(base + 1, last + 1)
            rd = Ready(
                hard_state=HardState(term, rng.choice(["", "n1", "n2"])),
                entries=[
                    Entry(start + k, term, data=rng.randbytes(rng.randint(0, 40)))
                    for k in range(rng.randint(1, 6))
                ],
            )
        model.persist(rd)
        storage.persist(rd)
    recovered = reopened(storage)
    assert (recovered.hard_state, recovered.snapshot, recovered.entries) == (
        model.hard_state,
        model.snapshot,
        model.entries,
    )


def test_a_single_node_core_restarts_from_what_it_persisted(directory):
    def boot(recovered: Recovered) -> RaftCore:
        return RaftCore(
            "n1",
            [],
            RaftConfig(),
            random.Random(1),
            hard_state=recovered.hard_state,
            snapshot=recovered.snapshot,
            entries=recovered.entries,
        )

    storage = NodeStorage(directory)
    core = boot(storage.open())

    def drain() -> None:
        while core.has_ready():
            rd = core.ready()
            storage.persist(rd)
            core.advance(rd)

    core.campaign()
    drain()
    assert core.is_leader
    for n in range(5):
        assert core.propose(f"model {n}".encode()).accepted
        drain()
    core.compact(3, b"registry through 3")
    storage.compact(core.snapshot)
    before = (core.term, core.last_index, core.log_entries())
    storage.close()

    storage = NodeStorage(directory)
    restarted = boot(storage.open())
    assert (restarted.term, restarted.last_index, restarted.log_entries()) == before
    assert restarted.snapshot == core.snapshot  # the membership as of 3 included
    assert restarted.snapshot.data == b"registry through 3" and restarted.snapshot.membership
    storage.close()
