"""The cluster's membership as the node uses it: keys, links, listings.

The Raft core decides who the members are (``raft/membership.py``); this
room turns that into what the node's sockets need:

- ``bootstrap_membership``: the members named on the command line, each with
  its CURVE public key (the credential) when its key file can be found by the
  layouts ``keygen`` and the local keys use, so that every later membership
  carries every member's key;
- ``allowed_keys``: the member keys ZAP admits. Once every member of the
  committed and the latest membership has a credential, exactly their keys
  (plus this node's own): a node added with its key is admitted everywhere
  with no edit of ``members/``, and a removed node's key stops working. Until
  then (a member started with a key file of another layout), the
  ``members/`` directory too;
- ``member_views``: the MEMBERS reply (docs/PROTOCOL.md §5.8).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zmq.auth

from .config import NodeConfig, default_node_key
from .raft import Membership, RaftCore, Role
from .transport.addresses import parse_address
from .transport.keystore import local_node_key

log = logging.getLogger("zmqnode.members")


def member_key_file(config: NodeConfig, node_id: str) -> str | None:
    """Where ``node_id``'s public key lives in the key directory, by the
    layout that made it: local keys name files by address; ``keygen`` numbers
    nodes by their place among the sorted bootstrap addresses."""
    if config.keys_dir is None:
        return None
    host, port = parse_address(node_id)
    if config.local_keys:
        local = local_node_key(config.keys_dir, host, port)
        return str(local.parent / "members" / local.name.replace(".key_secret", ".key"))
    members = [config.node_id, *config.peers]
    if node_id not in members:
        return None
    others = [m for m in members if m != node_id]
    secret = Path(default_node_key(config.keys_dir, host, port, others))  # keygen's numbering
    return str(secret.parent / "members" / secret.name.replace(".key_secret", ".key"))


def public_key(path: str) -> str:
    """The z85 public key in a .key or .key_secret file ("" if unreadable)."""
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError):
        return ""
    return public.decode()


def bootstrap_membership(config: NodeConfig, own_public: str) -> Membership:
    """Every node of the command line votes, with the credentials found."""
    credentials: dict[str, str] = {}
    if own_public:
        credentials[config.node_id] = own_public
    for peer in config.peers:
        path = member_key_file(config, peer)
        key = public_key(path) if path else ""
        if key:
            credentials[peer] = key
    return Membership.of([config.node_id, *config.peers], credentials=credentials)


def allowed_keys(
    committed: Membership, latest: Membership, own: bytes, files: frozenset[bytes]
) -> frozenset[bytes]:
    """The member keys ZAP admits (module docstring)."""
    creds = dict(committed.credentials) | dict(latest.credentials)
    keys = frozenset(key.encode() for key in creds.values()) | {own}
    members = committed.members | latest.members
    if all(member in creds for member in members):
        return keys
    return keys | files


def member_views(
    core: RaftCore, last_heard: Mapping[str, float], now: float | None = None
) -> list[dict[str, Any]]:
    """One entry per member of the latest membership: its role and, on the
    leader, how far its log is (``match``, ``lag``) and when it last answered."""
    now = time.monotonic() if now is None else now
    membership = core.membership
    views = []
    for node in sorted(membership.members):
        view: dict[str, Any] = {
            "node": node,
            "voter": node in membership.voters,
            "leader": node == core.leader_id,
            "has_key": bool(membership.credential(node)),
        }
        if node == core.id:
            view["match"] = core.last_index
            view["lag"] = 0
            view["last_heard_s"] = 0.0
        elif core.role is Role.LEADER and node in core.progress:
            match = core.progress[node].match
            view["match"] = match
            view["lag"] = core.last_index - match
            heard = last_heard.get(node)
            view["last_heard_s"] = None if heard is None else round(now - heard, 3)
        views.append(view)
    return views
