"""Where keys are found when no --keys names them (zmqnode/transport/keystore.py):
the client's search order, and the local keys that nodes started on one
machine without --keys share. End to end: tests/test_keys_from_anywhere.py.

Every test here points XDG_CONFIG_HOME at its own temporary directory: none
reads or writes the developer's ~/.config/zmqnode.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import zmq.auth

from zmqnode.config import parse_args
from zmqnode.transport import keystore
from zmqnode.transport.security import keygen, load_node_keys


def record(config_home: Path, keys: Path) -> None:
    """What ./run_cluster.sh writes when it starts."""
    (config_home / "zmqnode").mkdir(parents=True, exist_ok=True)
    (config_home / "zmqnode" / "keys").write_text(f"{keys}\n")


# -- the client's search order ------------------------------------------------------


def test_no_keys_anywhere_means_none_and_says_where_it_looked(config_home):
    found = keystore.find_keys()
    assert found.path is None
    text = found.describe()
    for place in ("$ZMQNODE_KEYS: unset", "./.cluster/keys", "zmqnode/keys", "local-keys"):
        assert place in text


def test_the_keys_run_cluster_recorded_are_found_from_any_directory(config_home, tmp_path):
    keygen(tmp_path / "repo" / ".cluster" / "keys", nodes=3)
    record(config_home, tmp_path / "repo" / ".cluster" / "keys")
    assert keystore.find_keys().path == str(tmp_path / "repo" / ".cluster" / "keys")


def test_a_record_of_deleted_keys_is_passed_over(config_home, tmp_path):
    record(config_home, tmp_path / "gone")
    found = keystore.find_keys()
    assert found.path is None
    assert "holds no cluster.key" in found.describe()


def test_a_relative_record_is_ignored(config_home, tmp_path):
    keygen(Path("keys"), nodes=1)  # in the cwd: a relative path would find it
    record(config_home, Path("keys"))
    assert keystore.find_keys().path is None


def test_the_local_keys_are_found_last(config_home, tmp_path):
    keystore.ensure_local_keys(keystore.local_keys_dir(), [("127.0.0.1", 9000)])
    assert keystore.find_keys().path == str(config_home / "zmqnode" / "local-keys")
    keygen(tmp_path / "recorded", nodes=1)
    record(config_home, tmp_path / "recorded")
    assert keystore.find_keys().path == str(tmp_path / "recorded")  # the record comes before
    keygen(Path(".cluster") / "keys", nodes=1)
    assert keystore.find_keys().path == os.path.join(
        ".cluster", "keys"
    )  # ./.cluster/keys before that


def test_zmqnode_keys_wins_and_set_but_empty_means_none(config_home, monkeypatch):
    keygen(Path(".cluster") / "keys", nodes=1)
    monkeypatch.setenv("ZMQNODE_KEYS", "/elsewhere")
    assert keystore.find_keys().path == "/elsewhere"
    monkeypatch.setenv("ZMQNODE_KEYS", "")
    assert keystore.find_keys().path is None
    assert "set but empty" in keystore.find_keys().describe()


def test_a_relative_xdg_config_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keystore.user_dir() == tmp_path / ".config" / "zmqnode"


# -- nodes: --keys, ZMQNODE_KEYS, local keys ------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]"]
)
def test_loopback_addresses(host):
    assert keystore.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "192.0.2.1", "example.com", "::"])
def test_other_addresses_are_not_loopback(host):
    assert not keystore.is_loopback(host)


def test_a_loopback_node_without_keys_uses_the_local_keys(config_home):
    config = parse_args(
        ["--host", "127.0.0.1", "--port", "9000", "--peers", "127.0.0.1:9001", "127.0.0.1:9002"]
    )
    local = config_home / "zmqnode" / "local-keys"
    assert config.local_keys and config.keys_dir == str(local)
    assert config.node_key == str(local / "node_127.0.0.1_9000.key_secret")


def test_keys_given_win_over_the_local_keys(config_home, tmp_path, monkeypatch):
    config = parse_args(["--port", "9001", "--peers", "127.0.0.1:9000", "--keys", "k"])
    assert (config.keys_dir, config.local_keys) == ("k", False)
    assert config.node_key == os.path.join("k", "node1.key_secret")
    monkeypatch.setenv("ZMQNODE_KEYS", str(tmp_path / "env"))
    config = parse_args(["--port", "9001", "--peers", "127.0.0.1:9000"])
    assert (config.keys_dir, config.local_keys) == (str(tmp_path / "env"), False)


def test_a_non_loopback_peer_refuses_without_keys(config_home, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--port", "9000", "--peers", "127.0.0.1:9001", "192.0.2.7:9002"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--keys DIR" in err and "--insecure" in err
    assert "192.0.2.7" in err and "not every address is loopback" in err
    assert not (config_home / "zmqnode").exists()  # nothing made


def test_a_non_loopback_host_refuses_without_keys(config_home, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--host", "0.0.0.0", "--port", "9000"])
    assert "0.0.0.0" in capsys.readouterr().err


def test_empty_zmqnode_keys_refuses_rather_than_use_local_keys(config_home, monkeypatch, capsys):
    monkeypatch.setenv("ZMQNODE_KEYS", "")
    with pytest.raises(SystemExit):
        parse_args(["--port", "9000"])
    assert "empty --keys or ZMQNODE_KEYS" in capsys.readouterr().err


def test_the_first_node_makes_keys_its_peers_are_admitted_with(config_home):
    local = keystore.local_keys_dir()
    nodes = [("127.0.0.1", 9000), ("127.0.0.1", 9001), ("127.0.0.1", 9002)]
    made = keystore.ensure_local_keys(local, nodes)
    assert len(made) == 3 + 3  # cluster, client, http.token, a member per node
    for host, port in nodes:  # each later node finds its key on the list
        keys = load_node_keys(local, keystore.local_node_key(local, host, port), "none")
        assert len(keys.members) == 3
    assert keystore.ensure_local_keys(local, nodes[1:]) == []  # the others make nothing
    assert oct(local.stat().st_mode & 0o777) == oct(0o700)


def test_a_node_not_named_before_adds_its_key_to_the_members(config_home):
    local = keystore.local_keys_dir()
    keystore.ensure_local_keys(local, [("127.0.0.1", 9000)])
    cluster_key = (local / "cluster.key").read_bytes()
    made = keystore.ensure_local_keys(local, [("127.0.0.1", 9000), ("127.0.0.1", 9003)])
    assert made == [local / "node_127.0.0.1_9003.key_secret"]
    assert len(zmq.auth.load_certificates(local / "members")) == 2
    assert (local / "cluster.key").read_bytes() == cluster_key  # the same cluster


def test_nodes_starting_at_once_make_one_set_of_keys(config_home):
    local = keystore.local_keys_dir()
    nodes = [("127.0.0.1", 9000 + i) for i in range(3)]
    start = threading.Barrier(8)
    made: list[list[Path]] = []

    def node() -> None:
        start.wait()
        made.append(keystore.ensure_local_keys(local, nodes))

    threads = [threading.Thread(target=node) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(m) for m in made) == [0] * 7 + [6]  # one maker, the rest found them
    assert len(zmq.auth.load_certificates(local / "members")) == 3
