"""Where the keys are when no ``--keys`` names them: the per-user place.

The per-user directory is ``$XDG_CONFIG_HOME/zmqnode/`` (``~/.config/zmqnode/``
when XDG_CONFIG_HOME is unset or not absolute, as the XDG Base Directory
specification says). It holds::

    keys              one line: the absolute path of the key directory the
                      last ./run_cluster.sh started its nodes with
    local-keys/       the keys of nodes started on loopback without --keys
    local-keys.lock   taken (fcntl.flock) while local-keys/ is written

A client looks, in order (``find_keys``): ``$ZMQNODE_KEYS`` (set but empty:
no keys, and no further look), ``./.cluster/keys``, the directory recorded
in ``keys``, ``local-keys/``. The first holding ``cluster.key`` wins.

Local keys. The original design's command lines name no keys. A node given
none (no ``--keys``, ZMQNODE_KEYS unset) whose host and peers are all
loopback addresses uses ``local-keys/``: the first such node creates the
cluster keypair, a client keypair and one member keypair for itself and for
each peer it names, all under the lock, so three nodes starting at once make
one set. Keys are created for the peers too because a node reads its
allow-list once, at start: the first node of three must already admit the
other two. A node's keypair is named for its address
(``node_127.0.0.1_9000.key_secret``), not its index as keygen's are, since
clusters on other ports share the directory.

Why the per-user directory and not beside the storage dirs: the nodes may be
started from different directories and the client from yet another; this is
the one place all of them find without a flag, and it is the user's own
(mode 0700). Loopback ports are open to every user of the machine, so CURVE
still matters there: another user's nodes and clients hold other keys and
are refused. With a non-loopback address the nodes are reachable from other
machines, which must be given the keys deliberately (keygen, --keys), so no
local keys are made.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

KEYS_ENV = "ZMQNODE_KEYS"
# Where ./run_cluster.sh keeps the keys it made, relative to the repository.
RUN_CLUSTER_KEYS = os.path.join(".cluster", "keys")
RECORD_FILE = "keys"
LOCAL_KEYS_DIR = "local-keys"
LOCK_FILE = "local-keys.lock"
CLUSTER_PUBLIC = "cluster.key"


def user_dir() -> Path:
    """``$XDG_CONFIG_HOME/zmqnode`` (``~/.config/zmqnode`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):  # the spec: a relative path is to be ignored
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "zmqnode"


def local_keys_dir() -> Path:
    """The key directory of nodes started on loopback without --keys."""
    return user_dir() / LOCAL_KEYS_DIR


def recorded_keys() -> Path | None:
    """The key directory ./run_cluster.sh recorded, or None if there is no
    record or it names no absolute path."""
    try:
        text = (user_dir() / RECORD_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(text) if text and os.path.isabs(text) else None


def _holds_keys(directory: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(directory, CLUSTER_PUBLIC))


@dataclass(frozen=True)
class KeySearch:
    """What ``find_keys`` found: ``path`` (None: no keys, plaintext) and
    ``looked``, each place it looked in order with what it found there."""

    path: str | None
    looked: tuple[str, ...]

    def describe(self) -> str:
        """One line for an error message or a log."""
        found = f"keys from {self.path}" if self.path else "no keys found"
        return f"{found} (looked at: {'; '.join(self.looked)})"


def find_keys() -> KeySearch:
    """The key directory a client uses when given no ``--keys`` (module
    docstring: the order). Reads nothing but file names and the record."""
    env = os.environ.get(KEYS_ENV)
    if env is not None:
        if not env:
            return KeySearch(None, (f"${KEYS_ENV}: set but empty, meaning no keys",))
        return KeySearch(env, (f"${KEYS_ENV}={env}",))
    looked = [f"${KEYS_ENV}: unset"]
    if _holds_keys(RUN_CLUSTER_KEYS):
        return KeySearch(RUN_CLUSTER_KEYS, (*looked, f"./{RUN_CLUSTER_KEYS}: found"))
    looked.append(f"./{RUN_CLUSTER_KEYS}: none")
    record = user_dir() / RECORD_FILE
    recorded = recorded_keys()
    if recorded is None:
        looked.append(f"{record}: nothing recorded by ./run_cluster.sh")
    elif _holds_keys(recorded):
        return KeySearch(str(recorded), (*looked, f"{record}: {recorded}"))
    else:
        looked.append(f"{record}: {recorded}, which holds no {CLUSTER_PUBLIC}")
    local = local_keys_dir()
    if _holds_keys(local):
        return KeySearch(str(local), (*looked, f"{local}: found"))
    looked.append(f"{local}: none")
    return KeySearch(None, tuple(looked))


# -- local keys (nodes) ---------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1).
    Other names are not resolved: a name may point elsewhere tomorrow."""
    import ipaddress  # here: a client looking for keys never needs it

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def local_node_key(keys_dir: str | os.PathLike, host: str, port: int) -> Path:
    """The keypair file of the node at ``host:port`` in a local key directory."""
    return Path(keys_dir) / f"{_key_name(host, port)}.key_secret"


def _key_name(host: str, port: int) -> str:
    return "node_" + re.sub(r"[^A-Za-z0-9.-]", "_", host) + f"_{port}"


def ensure_local_keys(keys_dir: str | os.PathLike, nodes: Iterable[tuple[str, int]]) -> list[Path]:
    """Make sure ``keys_dir`` holds the cluster keypair, a client keypair and
    a member keypair (on ``members/``) for each ``(host, port)`` in ``nodes``;
    creates what is missing under an exclusive lock on the sibling lock file,
    so nodes starting at once make one set. Returns the files made."""
    import fcntl  # POSIX; imported here so finding keys needs nothing of it

    from . import security

    root = Path(keys_dir)
    made: list[Path] = []
    try:
        root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(root.parent / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not (root / f"{security.CLUSTER_KEY}.key_secret").exists():
                root.mkdir(mode=0o700, exist_ok=True)
                made += security.keygen(root, nodes=0, clients=1, force=True)
            for host, port in nodes:
                name = _key_name(host, port)
                if not (root / f"{name}.key_secret").exists():
                    made.append(_add_member(root, security.MEMBERS_DIR, name))
    except OSError as exc:
        raise security.KeyFileError(f"cannot make the local keys in {root}: {exc}") from None
    return made


def _add_member(root: Path, members: str, name: str) -> Path:
    """One more node keypair: its public key on the allow-list ``members``,
    its secret, mode 0600, in ``root`` (mode 0700: no other user sees the
    moment before the chmod)."""
    import zmq.auth

    _, secret = zmq.auth.create_certificates(root / members, name)
    target = root / Path(secret).name
    os.replace(secret, target)
    os.chmod(target, 0o600)
    return target
