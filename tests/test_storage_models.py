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
