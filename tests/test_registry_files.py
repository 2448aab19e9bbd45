"""The registry never serves a damaged model file, and says which files to fetch."""

from __future__ import annotations

import numpy as np
import pytest

from zmqnode.compaction import sync_files
from zmqnode.ml.training import TrainOptions, train
from zmqnode.registry import (
    ModelFileDamaged,
    ModelRegistry,
    encode_store_model,
    model_id_for,
)
from zmqnode.storage.atomic import FsyncStats
from zmqnode.storage.model_store import ModelStore


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    return train(x, np.array([0, 1, 1, 0]), TrainOptions(epochs=5)).to_bytes()


@pytest.fixture
def registry(tmp_path, model_bytes) -> ModelRegistry:
    reg = ModelRegistry(ModelStore(tmp_path / "models"))
    for i in range(3):
        reg.apply(i + 1, encode_store_model(f"req-{i}", model_bytes, 1.0, {}))
    return reg


def test_a_damaged_file_is_refused_and_marked(registry):
    model_id = model_id_for("req-0")
    path = registry.store.path(model_id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileDamaged, match="SHA-256"):
        registry.load(model_id)
    assert model_id in registry.damaged
    with pytest.raises(ModelFileDamaged):  # stays refused until repaired
        registry.load(model_id)


def test_a_missing_file_is_refused_and_marked(registry):
    model_id = model_id_for("req-1")
    registry.store.path(model_id).unlink()
    with pytest.raises(ModelFileDamaged, match="missing"):
        registry.load(model_id)
    assert model_id in registry.damaged


def test_check_files_after_a_snapshot_restore_lists_the_bad_ones(registry, tmp_path):
    data = registry.snapshot_data()
    bad_id, gone_id = model_id_for("req-0"), model_id_for("req-2")
    registry.store.path(bad_id).write_bytes(b"garbage")
    registry.store.path(gone_id).unlink()
    restored = ModelRegistry(ModelStore(tmp_path / "models"))
    restored.restore(data)
    bad = restored.check_files()
    assert {r.model_id for r in bad} == {bad_id, gone_id}
    assert restored.damaged == {bad_id, gone_id}
    assert restored.load(model_id_for("req-1")).n_inputs == 2  # the good one serves


def test_a_repaired_copy_must_match_the_record(registry, model_bytes):
    model_id = model_id_for("req-1")
    registry.store.path(model_id).unlink()
    registry.check_files()
    with pytest.raises(ValueError, match="checksum"):
        registry.store_repaired(model_id, model_bytes + b"x")
    registry.store_repaired(model_id, model_bytes)
    assert model_id not in registry.damaged
    assert registry.load(model_id).n_outputs >= 1


def test_snapshot_data_through_an_index_leaves_out_later_models(registry):
    restored = ModelRegistry(registry.store)
    restored.restore(registry.snapshot_data(through=2))
    assert set(restored.models) == {model_id_for("req-0"), model_id_for("req-1")}


def test_unsynced_files_are_handed_to_compaction_once(registry, tmp_path):
    ids = registry.take_unsynced()
    assert len(ids) == 3 and registry.take_unsynced() == []
    stats = FsyncStats()
    sync_files([registry.store.path(m) for m in ids], registry.store.directory, stats)
    assert stats.count == len(ids) + 1  # each file and the directory, counted for the metric
    registry.mark_unsynced(ids[:1])  # a failed sync puts them back
    assert registry.take_unsynced() == ids[:1]


def test_a_file_found_intact_at_replay_is_still_fsynced_before_compaction(tmp_path, model_bytes):
    entry = encode_store_model("req-9", model_bytes, 1.0, {})
    ModelRegistry(ModelStore(tmp_path / "models")).apply(1, entry)
    restarted = ModelRegistry(ModelStore(tmp_path / "models"))  # a crash, then replay
    restarted.apply(1, entry)  # the file matches: not rewritten, maybe never on disk
    assert restarted.take_unsynced() == [model_id_for("req-9")]


def test_a_snapshot_install_rechecks_only_the_models_new_here(registry, model_bytes):
    held = model_id_for("req-0")
    parsed = registry.load(held)
    newcomer = encode_store_model("req-new", model_bytes, 1.0, {})
    other = ModelRegistry(ModelStore(registry.store.directory.parent / "other"))
    for i in range(3):
        other.apply(i + 1, encode_store_model(f"req-{i}", model_bytes, 1.0, {}))
    other.apply(4, newcomer)
    registry.restore(other.snapshot_data())
    assert [r.model_id for r in registry.check_files()] == [model_id_for("req-new")]
    assert registry.load(held) is parsed  # kept, not parsed again
