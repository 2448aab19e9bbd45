"""raft_state.json: the term and vote, checked on load, skipped when unchanged."""

from __future__ import annotations

import json
import os

import pytest

from zmqnode.raft.messages import HardState
from zmqnode.storage.atomic import FsyncStats
from zmqnode.storage.errors import StorageCorruption
from zmqnode.storage.hard_state import HardStateFile, encode_hard_state


@pytest.fixture
def path(tmp_path):
    return tmp_path / "node0_storage" / "raft_state.json"


@pytest.fixture(autouse=True)
def storage_dir(path):
    path.parent.mkdir()


def test_missing_file_is_a_fresh_node(path):
    assert HardStateFile(path).load() == HardState()


def test_save_then_load_in_a_new_object_round_trips(path):
    HardStateFile(path).save(HardState(term=7, vote="127.0.0.1:9001"))
    assert HardStateFile(path).load() == HardState(term=7, vote="127.0.0.1:9001")


def test_file_is_readable_json_with_the_documented_fields(path):
    HardStateFile(path).save(HardState(term=3, vote="n2"))
    doc = json.loads(path.read_text())
    assert doc["version"] == 1
    assert doc["current_term"] == 3
    assert doc["voted_for"] == "n2"
    assert isinstance(doc["checksum"], int)


def test_unchanged_state_is_not_written_again(path):
    stats = FsyncStats()
    hs_file = HardStateFile(path, stats=stats)
    assert hs_file.save(HardState(2, "a")) is True
    fsyncs = stats.count
    assert hs_file.save(HardState(2, "a")) is False
    assert stats.count == fsyncs
    assert hs_file.save(HardState(2, "b")) is True
    assert stats.count > fsyncs


def test_loading_the_saved_state_also_skips_the_next_identical_save(path):
    HardStateFile(path).save(HardState(5, "x"))
    stats = FsyncStats()
    reopened = HardStateFile(path, stats=stats)
    reopened.load()
    assert reopened.save(HardState(5, "x")) is False
    assert stats.count == 0


def test_first_change_after_loading_a_missing_file_is_written(path):
    # load() of a missing file remembers HardState(); a real change must
    # still reach the disk.
    hs_file = HardStateFile(path)
    hs_file.load()
    assert hs_file.save(HardState(1, "")) is True
    assert path.exists()


def test_save_leaves_no_temp_files(path):
    hs_file = HardStateFile(path)
    for term in range(1, 6):
        hs_file.save(HardState(term, ""))
    assert os.listdir(path.parent) == ["raft_state.json"]


def load_error(path) -> StorageCorruption:
    with pytest.raises(StorageCorruption) as info:
        HardStateFile(path).load()
    return info.value


def test_empty_file_is_corruption_naming_the_file_and_what_to_do(path):
    path.write_bytes(b"")
    err = load_error(path)
    message = str(err)
    assert str(path) in message
    assert "empty" in message
    assert "term and vote" in message
    assert "remove the whole storage dir" in message
    assert err.path == str(path)


def test_garbage_is_corruption_saying_not_json(path):
    path.write_bytes(b"\x00\xffnot json{")
    assert "not valid JSON" in str(load_error(path))


def test_truncated_json_is_corruption(path):
    HardStateFile(path).save(HardState(9, "n1"))
    path.write_bytes(path.read_bytes()[:20])
    assert "not valid JSON" in str(load_error(path))


def test_json_nested_past_the_parser_limit_is_corruption_not_a_crash(path):
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    assert "not valid JSON" in str(load_error(path))


def test_json_that_is_not_an_object_is_corruption(path):
    path.write_text("[1, 2]")
    assert "not an object" in str(load_error(path))


def doc_with(**changes) -> bytes:
    doc = json.loads(encode_hard_state(HardState(4, "n3")))
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"current_term": "4"}, "current_term"),
        ({"current_term": True}, "current_term"),
        ({"current_term": -1}, "current_term"),
        ({"current_term": 4.0}, "current_term"),
        ({"voted_for": 3}, "voted_for"),
        ({"voted_for": None}, "voted_for"),
        ({"checksum": "abc"}, "checksum"),
        ({"version": 2}, "version"),
        ({"version": None}, "version"),
    ],
)
def test_wrong_types_or_versions_are_corruption(path, changes, complaint):
    path.write_bytes(doc_with(**changes))
    assert complaint in str(load_error(path))


def test_missing_field_is_corruption(path):
    doc = json.loads(encode_hard_state(HardState(4, "n3")))
    del doc["voted_for"]
    path.write_text(json.dumps(doc))
    assert "voted_for" in str(load_error(path))


def test_edited_term_fails_the_checksum(path):
    # Still valid JSON with the right types: only the checksum can tell.
    path.write_bytes(doc_with(current_term=5))
    assert "checksum" in str(load_error(path))


def test_edited_vote_fails_the_checksum(path):
    path.write_bytes(doc_with(voted_for="n1"))
    assert "checksum" in str(load_error(path))


def test_save_refuses_a_nonsense_state(path):
    with pytest.raises(ValueError):
        HardStateFile(path).save(HardState(term=-1))
    assert not path.exists()
