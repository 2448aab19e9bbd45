"""models/<id>.bin: atomic model files behind validated ids."""

from __future__ import annotations

import os

import pytest

from zmqnode.storage.model_store import InvalidModelId, ModelStore, check_model_id


@pytest.fixture
def store(tmp_path):
    return ModelStore(tmp_path / "models")


def test_write_read_exists(store):
    assert not store.exists("iris")
    store.write("iris", b"\x00model bytes\xff")
    assert store.exists("iris")
    assert store.read("iris") == b"\x00model bytes\xff"
    assert store.path("iris") == store.directory / "iris.bin"


def test_directory_is_created(tmp_path):
    ModelStore(tmp_path / "a" / "models")
    assert (tmp_path / "a" / "models").is_dir()


def test_reading_a_missing_model_raises_file_not_found(store):
    with pytest.raises(FileNotFoundError):
        store.read("nope")


def test_ids_are_sorted_and_skip_temp_and_stray_files(store):
    for model_id in ("b-2", "a_1", "C3"):
        store.write(model_id, b"m")
    (store.directory / ".a_1.bin.k3j4.tmp").write_bytes(b"half")
    (store.directory / "README.txt").write_bytes(b"not a model")
    (store.directory / "bad name.bin").write_bytes(b"not a valid id")
    assert store.ids() == ["C3", "a_1", "b-2"]


def test_rewriting_a_model_replaces_it_and_leaves_no_temp_files(store):
    store.write("m", b"one")
    store.write("m", b"two")
    assert store.read("m") == b"two"
    assert os.listdir(store.directory) == ["m.bin"]


def test_stale_temp_files_are_removed_at_start(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / ".m.bin.zz.tmp").write_bytes(b"half")
    ModelStore(models)
    assert os.listdir(models) == []


@pytest.mark.parametrize(
    "model_id",
    ["../raft_state", "..", "a/b", "/etc/passwd", "", "x" * 65, "a.b", "a b", "é", "a\x00", "a\n"],
)
def test_ids_that_could_escape_or_confuse_are_refused(store, tmp_path, model_id):
    with pytest.raises(InvalidModelId):
        store.write(model_id, b"evil")
    with pytest.raises(InvalidModelId):
        store.read(model_id)
    with pytest.raises(InvalidModelId):
        store.path(model_id)
    assert store.exists(model_id) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    assert os.listdir(store.directory) == []


def test_traversal_cannot_read_a_file_beside_models(store, tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"raft state")
    with pytest.raises(InvalidModelId):
        store.read("../secret")
    assert store.exists("../secret") is False


def test_longest_valid_id_is_accepted():
    assert check_model_id("A" * 64) == "A" * 64
    assert isinstance(InvalidModelId("x"), ValueError)


def test_a_non_durable_write_skips_fsync_but_is_still_atomic(tmp_path):
    from zmqnode.storage.atomic import FsyncStats

    stats = FsyncStats()
    store = ModelStore(tmp_path / "models", stats=stats)
    before = stats.count
    store.write("m0123456789abcde", b"first", durable=False)
    store.write("m0123456789abcde", b"second", durable=False)
    assert stats.count == before  # the Raft log is the durable copy
    assert store.read("m0123456789abcde") == b"second"
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    store.write("m0123456789abcde", b"third")
    assert stats.count == before + 2  # durable: the file and its directory


def test_replaying_the_log_rewrites_a_model_file_torn_by_a_crash(tmp_path):
    """Model files are written without fsync; the log entry is the durable copy."""
    from zmqnode.registry import ModelRegistry, encode_store_model, model_id_for

    entry = encode_store_model("req-1", b"model bytes" * 100, 1.0, {})
    model_id = model_id_for("req-1")
    ModelRegistry(ModelStore(tmp_path / "models")).apply(1, entry)
    path = tmp_path / "models" / f"{model_id}.bin"
    path.write_bytes(b"")  # what a crash before the data reached the disk can leave
    restarted = ModelRegistry(ModelStore(tmp_path / "models"))
    assert restarted.apply(1, entry) is not None  # the node replays its log on start
    assert path.read_bytes() == b"model bytes" * 100
