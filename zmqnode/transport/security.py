"""CURVE encryption and ZAP allow-lists: the one place sockets get their security.

Key layout (``python -m zmqnode keygen --dir DIR``; docs/PROTOCOL.md §1.1)::

    DIR/cluster.key          the cluster's CURVE server public key: clients need it
    DIR/cluster.key_secret   the cluster's server keypair: every node needs it
    DIR/node<i>.key_secret   node i's own keypair (its CURVE client identity)
    DIR/members/*.key        allow-list of node public keys (peer sockets)
    DIR/client.key_secret    a client keypair (the CLI's default identity)
    DIR/clients/*.key        allow-list of client public keys (--client-auth curve)
    DIR/http.token           the bearer token HTTP inference clients send (oip.py)

Why one shared server keypair plus per-node client keypairs, rather than a
server key per node: a connecting socket must know its server's public key
before it connects. With one cluster server key, a client, a REDIRECT to a
leader it never saw, a trainer answering whatever leader sent it a job, and a
console discovering nodes all need one file, and nothing maps addresses to
keys. Authentication stays per node: every node presents its own key when it
connects, and ZAP admits it only if that key is on the allow-list. The price:
a node holding cluster.key_secret could pose as a server to another member;
only members hold it, and a member can already do anything Raft allows.

Sockets and ZAP domains (the binding side is always the CURVE server):

- ``PEERS``: Raft ROUTER, trainer PULL, results PULL. Only member keys.
- ``CLIENTS``: client ROUTER and heartbeat/status PUB (the console listens
  there). Member keys (repair.py's FETCH, peers' SUB) plus, with
  ``--client-auth curve``, the client allow-list; with ``none``, any key
  (the traffic is still encrypted, and a client still needs cluster.key).

The ZAP handler is pyzmq's ``ThreadAuthenticator``: a thread in the process
that binds (the node, and its trainer), started before any socket binds —
libzmq lets a CURVE handshake through unchecked when no handler runs.
Keys are read at start-up; a node picks up a changed allow-list when it
restarts. ``None`` keys everywhere below mean ``--insecure``: plaintext
(ZMTP NULL mechanism), no authentication.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import zmq
import zmq.auth

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("zmqnode.security")

PEERS = "zmqnode.peers"
CLIENTS = "zmqnode.clients"

CLUSTER_KEY = "cluster"
CLIENT_KEY = "client"
MEMBERS_DIR = "members"
CLIENTS_DIR = "clients"
HTTP_TOKEN = "http.token"
# Denied keys logged once each, at most this many (a flood of strangers must
# not fill the log).
MAX_DENIALS_LOGGED = 256


class KeyFileError(ValueError):
    """A key file or directory is missing or unreadable (message says which)."""


@dataclass(frozen=True)
class NodeKeys:
    """What a node and its trainer need: the cluster's server keypair, the
    node's own keypair, and the allow-lists (z85 public keys)."""

    server_public: bytes
    server_secret: bytes
    public: bytes
    secret: bytes
    members: frozenset[bytes]
    clients: frozenset[bytes] | None  # None: any client key (--client-auth none)


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs: the cluster's public key and a keypair of its own."""

    server_public: bytes
    public: bytes
    secret: bytes


def _read(path: Path) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    except IndexError:  # pyzmq's reader on a "public-key" line without "="
        raise KeyFileError(f"cannot read key file {path}: a key line has no '='") from None
    if len(public) != 40:
        raise KeyFileError(f"{path} holds no public key (40 Z85 characters)")
    return public, secret


def _load_public(path: Path) -> bytes:
    """The public key in ``path`` (a .key or a .key_secret file)."""
    return _read(path)[0]


def _load_keypair(path: Path) -> tuple[bytes, bytes]:
    """The public and secret keys in ``path``, which must be a .key_secret file."""
    public, secret = _read(path)
    if not secret:
        raise KeyFileError(f"{path} holds no secret key (a .key_secret file is needed)")
    return public, secret


def _allow_list(directory: Path) -> frozenset[bytes]:
    if not directory.is_dir():
        raise KeyFileError(f"allow-list directory {directory} does not exist")
    return frozenset(_read(path)[0] for path in sorted(directory.glob("*.key")))


def load_node_keys(
    keys_dir: str | os.PathLike, node_key: str | os.PathLike, client_auth: str
) -> NodeKeys:
    """Read a node's keys; raises KeyFileError naming the file that is missing."""
    root = Path(keys_dir)
    server_public, server_secret = _load_keypair(root / f"{CLUSTER_KEY}.key_secret")
    public, secret = _load_keypair(Path(node_key))
    members = _allow_list(root / MEMBERS_DIR)
    if public not in members:
        raise KeyFileError(
            f"{node_key}'s public key is not in {root / MEMBERS_DIR}: the other nodes "
            "would refuse this node"
        )
    clients = _allow_list(root / CLIENTS_DIR) if client_auth == "curve" else None
    return NodeKeys(server_public, server_secret, public, secret, members, clients)


def load_client_keys(
    keys_dir: str | os.PathLike, client_key: str | os.PathLike | None = None
) -> ClientKeys:
    """Read what a client needs from ``keys_dir`` (a directory holding
    cluster.key). Its identity is ``client_key``, else ``keys_dir``'s
    client.key_secret, else a fresh keypair (enough for --client-auth none)."""
    root = Path(keys_dir)
    server_public = _load_public(root / f"{CLUSTER_KEY}.key")
    path = Path(client_key) if client_key else root / f"{CLIENT_KEY}.key_secret"
    if client_key or path.exists():
        public, secret = _load_keypair(path)
    else:
        public, secret = zmq.curve_keypair()
    return ClientKeys(server_public, public, secret)


def make_server(sock: zmq.Socket, keys: NodeKeys | None, domain: str) -> None:
    """Make a binding socket a CURVE server checked by ZAP ``domain``. Call
    before bind. ``keys`` None: plaintext (--insecure)."""
    if keys is None:
        return
    sock.curve_server = True
    sock.curve_secretkey = keys.server_secret
    sock.zap_domain = domain.encode()


def make_client(sock: zmq.Socket, keys: NodeKeys | ClientKeys | None) -> None:
    """Make a connecting socket a CURVE client of the cluster, presenting the
    node's or client's own key. Call before connect. ``keys`` None: plaintext."""
    if keys is None:
        return
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret


def mechanism(sock: zmq.Socket) -> str:
    """The socket's ZMTP security mechanism: "NULL" or "CURVE"."""
    value = sock.get(zmq.MECHANISM)  # an integer option (pyzmq types every option int | bytes)
    names: dict[int, str] = {zmq.NULL: "NULL", zmq.PLAIN: "PLAIN", zmq.CURVE: "CURVE"}
    return names.get(value, "OTHER") if isinstance(value, int) else "OTHER"


class _AllowList:
    """ZAP callback: which public keys each domain admits."""

    def __init__(self, keys: NodeKeys) -> None:
        self.clients = keys.clients
        self.allowed: dict[str, frozenset[bytes] | None] = {}
        self.set_members(keys.members)
        self._denied: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()
        self.denials = 0

    def set_members(self, members: frozenset[bytes]) -> None:
        """Admit exactly ``members`` as cluster members from now on (the ZAP
        thread reads ``allowed``; one assignment swaps it whole)."""
        self.allowed = {
            PEERS: members,
            CLIENTS: None if self.clients is None else members | self.clients,
        }

    def callback(self, domain: str, key: bytes) -> bool:
        if domain not in self.allowed:
            return False
        allowed = self.allowed[domain]
        if allowed is None or key in allowed:
            return True
        with self._lock:
            self.denials += 1
            first = (domain, key) not in self._denied and len(self._denied) < MAX_DENIALS_LOGGED
            if first:
                self._denied.add((domain, key))
        if first:
            log.warning(
                "refused a connection: public key %s is not allowed on %s", key.decode(), domain
            )
        return False


class Gatekeeper:
    """The running ZAP handler of one process and the allow-lists it checks."""

    def __init__(self, auth: ThreadAuthenticator, allow: _AllowList) -> None:
        self._auth = auth
        self._allow = allow

    def set_members(self, members: frozenset[bytes]) -> None:
        """The member keys to admit from now on (the membership changed)."""
        if members != self._allow.allowed[PEERS]:
            self._allow.set_members(members)
            log.info("member allow-list now has %d keys", len(members))

    @property
    def members(self) -> frozenset[bytes]:
        return self._allow.allowed[PEERS] or frozenset()

    def stop(self) -> None:
        self._auth.stop()


def start_authenticator(ctx: zmq.Context, keys: NodeKeys | None) -> Gatekeeper | None:
    """Start the ZAP handler for ``ctx`` (before any socket binds); None when insecure."""
    if keys is None:
        return None
    # Imported here, not at the top: the module pulls in asyncio (~25 ms), and
    # only a binding process (node, trainer) runs the handler, never a client.
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(ctx, log=logging.getLogger("zmqnode.security.zap"))
    allow = _AllowList(keys)
    for domain in (PEERS, CLIENTS):
        auth.configure_curve_callback(domain, credentials_provider=allow)
    auth.start()
    return Gatekeeper(auth, allow)


def warn_insecure(what: str) -> None:
    log.warning(
        "%s runs with --insecure: no encryption, and anyone who reaches its ports can "
        "vote, append entries and store models",
        what,
    )


def keygen(
    directory: str | os.PathLike, nodes: int, clients: int = 1, force: bool = False
) -> list[Path]:
    """Create the cluster's keys in ``directory`` (layout in the module
    docstring); returns the files made. Refuses to overwrite existing keys
    unless ``force``: new keys lock out every node holding the old ones."""
    root = Path(directory)
    if (root / f"{CLUSTER_KEY}.key_secret").exists() and not force:
        raise KeyFileError(f"{root} already holds cluster keys (use --force to replace them all)")
    if force:
        for sub in (MEMBERS_DIR, CLIENTS_DIR):
            shutil.rmtree(root / sub, ignore_errors=True)
        for old in root.glob("*.key*"):
            old.unlink()
    (root / MEMBERS_DIR).mkdir(parents=True, exist_ok=True)
    (root / CLIENTS_DIR).mkdir(exist_ok=True)
    made = [_create(root, root, CLUSTER_KEY)]
    made += [_create(root, root / MEMBERS_DIR, f"node{i}") for i in range(nodes)]
    made += [
        _create(root, root / CLIENTS_DIR, CLIENT_KEY if i == 0 else f"client{i}")
        for i in range(clients)
    ]
    (root / HTTP_TOKEN).unlink(missing_ok=True)
    made.append(http_token_file(root))
    return made


class MemberKeysFile:
    """The member keys a node admits, shared with its trainer process: the
    node ``write``s them when the membership changes, the trainer ``reload``s
    them when the file changed (one z85 key per line, replaced atomically)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._seen: float | None = None

    def write(self, keys: frozenset[bytes]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(b"".join(key + b"\n" for key in sorted(keys)))
        os.replace(tmp, self.path)

    def reload(self) -> frozenset[bytes] | None:
        """The keys if the file changed since the last call, else None."""
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._seen:
                return None
            keys = frozenset(k for k in self.path.read_bytes().split() if len(k) == 40)
        except OSError:
            return None
        self._seen = mtime
        return keys or None


def public_key_of(path: str | os.PathLike) -> str:
    """The z85 public key in a .key or .key_secret file; KeyFileError if unreadable."""
    return _load_public(Path(path)).decode()


def add_node_key(directory: str | os.PathLike, name: str) -> Path:
    """One more node keypair in an existing key directory: NAME.key_secret
    (mode 0600) and members/NAME.key. Refuses to replace an existing one."""
    root = Path(directory)
    if not (root / f"{CLUSTER_KEY}.key_secret").exists():
        raise KeyFileError(f"{root} holds no cluster keys (python -m zmqnode keygen --dir {root})")
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise KeyFileError(f"a node key name is a plain file name, got {name!r}")
    if (root / f"{name}.key_secret").exists():
        raise KeyFileError(f"{root / (name + '.key_secret')} exists already")
    (root / MEMBERS_DIR).mkdir(exist_ok=True)
    return _create(root, root / MEMBERS_DIR, name)


def http_token_file(directory: str | os.PathLike) -> Path:
    """``DIR/http.token``, made (mode 0600, 256 random bits as hex) if missing.

    Key directories made before HTTP inference existed get theirs when a node
    first starts with them; nodes starting at once make it only once
    (O_EXCL), and the others read it."""
    import secrets

    path = Path(directory) / HTTP_TOKEN
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc}") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def load_http_token(directory: str | os.PathLike) -> str:
    """The cluster's HTTP bearer token (made if missing: ``http_token_file``)."""
    path = http_token_file(directory)
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc}") from None
    if len(token) < 16:
        raise KeyFileError(f"{path} holds no token (at least 16 characters); delete it to remake")
    return token


def _create(root: Path, public_dir: Path, name: str) -> Path:
    """One keypair: the public .key in ``public_dir`` (an allow-list, or the
    root for the cluster key) and the .key_secret, mode 0600, in ``root``."""
    public, secret = zmq.auth.create_certificates(public_dir, name)
    target = root / Path(secret).name
    if Path(secret) != target:
        os.replace(secret, target)
    os.chmod(target, 0o600)
    return target
