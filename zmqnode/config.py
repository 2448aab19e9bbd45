"""Node configuration and the ``python -m zmqnode`` command line.

The original design's command lines are accepted unchanged: on one
machine (every address loopback) with no ``--keys`` and ZMQNODE_KEYS unset,
the nodes share the per-user local keys (transport/keystore.py), which the
first of them creates; elsewhere they need the cluster's keys (``--keys``
or ZMQNODE_KEYS; the README's "Running nodes by hand")::

    python -m zmqnode --host 127.0.0.1 --port 9000 --monitor-port 8000 \
        --raft-port 10000 --peers 127.0.0.1:9001 127.0.0.1:9002 \
        --storage-dir node0_storage

Peers are named by their client address (also their Raft node id); their
other ports follow the fixed offsets of ``transport.addresses`` (raft P+1000,
heartbeat P+2000, training P+3000, results P+4000; docs/PROTOCOL.md §1).
``--raft-port`` is accepted for compatibility and must equal P+1000.

Security is on by default: a node needs ``--keys DIR`` (or ZMQNODE_KEYS)
from ``python -m zmqnode keygen``, the local keys (loopback only), or an
explicit ``--insecure`` (transport/security.py, docs/PROTOCOL.md §1.1).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from .transport.addresses import format_address, node_ports, parse_address
from .transport.keystore import is_loopback, local_keys_dir, local_node_key

# One tick of the Raft clock. With 10 ticks per election timeout a follower
# waits 0.5-1.0 s for a silent leader: an election within ~1 s of start, and
# heartbeats (every tick) 10-20 times inside each timeout, enough to ride out
# a lost PUB message or a slow fsync.
DEFAULT_TICK_SECONDS = 0.05
DEFAULT_ELECTION_TICKS = 10

# Largest request a client may send (arrays and files included), and the
# largest model file the registry stores in one Raft entry. Raft entries
# travel whole in AppendEntries and are held in memory, so the bound keeps
# a node's memory and a follower's catch-up predictable.
DEFAULT_MAX_REQUEST_BYTES = 512 << 20
DEFAULT_MAX_MODEL_BYTES = 64 << 20

# Admission bounds: past them a new request gets BUSY (retryable) instead of
# queueing without limit. Trainings: each holds its dataset, a thread of
# preparation and the trainers' CPU, and 4 keep a 3-node laptop cluster busy.
# Pending: requests parked for a commit, a read index or trainers; each holds
# a few hundred bytes plus its request (a PREDICT's rows), and 10,000 is 30 s
# of a 300 req/s burst waiting out an election. Uncommitted bytes: model files
# proposed but not yet committed live in memory (and in AppendEntries);
# 256 MiB is four models at --max-model-bytes.
DEFAULT_MAX_TRAININGS = 4
DEFAULT_MAX_PENDING = 10_000
DEFAULT_MAX_UNCOMMITTED_BYTES = 256 << 20

# Compact the log once this many entries are applied past the last snapshot
# (each STORE_MODEL entry holds a whole model file; see compaction.py).
DEFAULT_SNAPSHOT_ENTRIES = 1000
# A model file fetched from a peer travels in chunks of at most this size.
DEFAULT_FETCH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class NodeConfig:
    """One node's settings, read-only once parsed (``parse_args``).

    The node hands it (or single fields of it) to its components; ``node_id``
    and ``ports`` derive from ``host`` and ``port``.
    """

    host: str
    port: int
    monitor_port: int
    peers: tuple[str, ...]
    storage_dir: str
    monitor_host: str = "127.0.0.1"
    # HTTP inference (oip.py); None: the default, port + HTTP_OFFSET. 0: off.
    http_port: int | None = None
    http_host: str = "127.0.0.1"
    http_idle_timeout: float = 60.0  # a keep-alive connection idle this long is closed
    http_request_timeout: float = 30.0  # a request must arrive whole within this
    tick_seconds: float = DEFAULT_TICK_SECONDS
    election_ticks: int = DEFAULT_ELECTION_TICKS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    max_trainings: int = DEFAULT_MAX_TRAININGS
    max_pending: int = DEFAULT_MAX_PENDING
    max_uncommitted_bytes: int = DEFAULT_MAX_UNCOMMITTED_BYTES
    request_timeout: float = 30.0
    training_timeout: float = 600.0
    trainer: bool = True
    log_level: str = "INFO"
    fault_file: str | None = None
    snapshot_entries: int = DEFAULT_SNAPSHOT_ENTRIES
    fetch_chunk_bytes: int = DEFAULT_FETCH_CHUNK_BYTES
    # Security (transport/security.py): keys_dir None means --insecure.
    keys_dir: str | None = None
    node_key: str | None = None
    client_auth: str = "none"
    # keys_dir is the per-user local key directory, to be completed at start
    # (transport/keystore.ensure_local_keys).
    local_keys: bool = False
    # Members to ask to add this node (``--join``): used when the storage is empty.
    join: tuple[str, ...] = ()

    @property
    def node_id(self) -> str:
        return format_address(self.host, self.port)

    @property
    def ports(self):
        return node_ports(
            self.port, monitor_port=self.monitor_port, http_port=self.http_port or None
        )

    @property
    def http_enabled(self) -> bool:
        return self.http_port != 0


def _split_peers(values: list[str]) -> list[str]:
    peers: list[str] = []
    for value in values:
        peers.extend(part for part in value.split(",") if part.strip())
    return peers


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zmqnode",
        description="Run one zmqnode: a Raft member that trains, stores and serves models.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind and to be known by")
    p.add_argument("--port", type=int, default=9000, help="client port (ROUTER); the node's id")
    p.add_argument("--monitor-port", type=int, help="HTTP monitor port (default: port - 1000)")
    p.add_argument("--monitor-host", default="127.0.0.1", help="HTTP monitor bind address")
    p.add_argument(
        "--http-port",
        type=int,
        help="HTTP inference port, the Open Inference Protocol (default: port + 5000; 0: off)",
    )
    p.add_argument(
        "--http-host",
        default="127.0.0.1",
        help="HTTP inference bind address (default 127.0.0.1; another address needs the "
        "cluster's token, so not with --insecure)",
    )
    p.add_argument(
        "--http-idle-timeout",
        type=float,
        default=60.0,
        help="seconds an idle keep-alive HTTP connection stays open (default 60)",
    )
    p.add_argument(
        "--http-request-timeout",
        type=float,
        default=30.0,
        help="seconds an HTTP request may take to arrive whole, then 408 (default 30)",
    )
    p.add_argument("--raft-port", type=int, help="Raft RPC port; must be port + 1000")
    p.add_argument(
        "--peers",
        nargs="*",
        default=[],
        help="the other nodes' client addresses, space- or comma-separated (H:P H:P or H:P,H:P)",
    )
    p.add_argument(
        "--join",
        nargs="+",
        default=[],
        metavar="HOST:PORT",
        help="join a running cluster through any of these members (with empty storage): "
        "this node becomes a learner; `python -m client members add` makes it a voter",
    )
    p.add_argument("--storage-dir", help="where Raft state, the log and models live")
    p.add_argument("--tick", type=float, default=DEFAULT_TICK_SECONDS, help="Raft tick, seconds")
    p.add_argument("--election-ticks", type=int, default=DEFAULT_ELECTION_TICKS)
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    p.add_argument("--max-model-bytes", type=int, default=DEFAULT_MAX_MODEL_BYTES)
    p.add_argument(
        "--max-trainings",
        type=int,
        default=DEFAULT_MAX_TRAININGS,
        help="trainings the leader runs at once; one more TRAIN gets BUSY",
    )
    p.add_argument(
        "--max-pending",
        type=int,
        default=DEFAULT_MAX_PENDING,
        help="requests parked waiting (commit, read index, training); past it BUSY",
    )
    p.add_argument(
        "--max-uncommitted-bytes",
        type=int,
        default=DEFAULT_MAX_UNCOMMITTED_BYTES,
        help="bytes of model files proposed but not yet committed; past it IMPORT gets BUSY",
    )
    p.add_argument("--no-trainer", action="store_true", help="do not start a trainer process")
    p.add_argument("--log-level", default=os.environ.get("ZMQNODE_LOG_LEVEL", "INFO"))
    p.add_argument("--fault-file", help=argparse.SUPPRESS)  # tests only: see faults.py
    p.add_argument(
        "--snapshot-entries",
        type=int,
        default=DEFAULT_SNAPSHOT_ENTRIES,
        help="compact the Raft log after this many applied entries (0: never)",
    )
    p.add_argument(
        "--fetch-chunk-bytes",
        type=int,
        default=DEFAULT_FETCH_CHUNK_BYTES,
        help="chunk size when fetching a missing model file from a peer",
    )
    security = p.add_argument_group(
        "security",
        "CURVE encryption and allow-lists, on unless --insecure (docs/PROTOCOL.md §1.1)",
    )
    security.add_argument(
        "--keys",
        default=os.environ.get("ZMQNODE_KEYS"),
        help="the cluster's key directory (python -m zmqnode keygen); default $ZMQNODE_KEYS, "
        f"else, when this node and every peer are loopback addresses, {local_keys_dir()} "
        "(made by the first node started so)",
    )
    security.add_argument(
        "--node-key",
        help="this node's own keypair (default: KEYS/node<i>.key_secret, i = position "
        "of this node among the sorted cluster addresses)",
    )
    security.add_argument(
        "--client-auth",
        choices=["none", "curve"],
        default="none",
        help="curve: only clients whose public key is in KEYS/clients may connect "
        "(default none: any client holding KEYS/cluster.key)",
    )
    security.add_argument(
        "--insecure",
        action="store_true",
        help="no encryption, no authentication: anyone who reaches the ports is a member",
    )
    return p


def parse_args(argv: list[str] | None = None) -> NodeConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ports = node_ports(
            args.port,
            monitor_port=args.monitor_port,
            http_port=args.http_port if args.http_port else None,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if not (args.http_idle_timeout > 0 and args.http_request_timeout > 0):
        parser.error("--http-idle-timeout and --http-request-timeout must be positive")
    if args.http_port is not None and not 0 <= args.http_port <= 65535:
        parser.error(f"--http-port must be 0 (off) or a port, got {args.http_port}")
    if args.insecure and args.http_port != 0 and not is_loopback(args.http_host):
        parser.error(
            f"--http-host {args.http_host} is not a loopback address, and with --insecure "
            "there is no token to ask HTTP clients for: drop --insecure (the token is "
            "KEYS/http.token), bind 127.0.0.1, or turn HTTP off with --http-port 0"
        )
    if not 0 < args.tick <= 5:
        parser.error(f"--tick must be between 0 and 5 seconds, got {args.tick}")
    if args.election_ticks < 2:
        parser.error(
            f"--election-ticks must be at least 2 (heartbeats go every tick), "
            f"got {args.election_ticks}"
        )
    if args.snapshot_entries < 0:
        parser.error(f"--snapshot-entries must be 0 (never) or more, got {args.snapshot_entries}")
    if not 1024 <= args.fetch_chunk_bytes <= 64 << 20:
        parser.error(f"--fetch-chunk-bytes must be 1 KiB to 64 MiB, got {args.fetch_chunk_bytes}")
    if args.raft_port is not None and args.raft_port != ports.raft:
        parser.error(
            f"--raft-port {args.raft_port} does not match the layout every node assumes "
            f"(client port + 1000 = {ports.raft}); drop --raft-port or use {ports.raft}"
        )
    for flag, value in (
        ("--max-trainings", args.max_trainings),
        ("--max-pending", args.max_pending),
        ("--max-uncommitted-bytes", args.max_uncommitted_bytes),
    ):
        if value < 1:
            parser.error(f"{flag} must be at least 1, got {value}")
    peers: list[str] = []
    hosts = [args.host]
    for text in _split_peers(args.peers):
        try:
            host, port = parse_address(text)
        except ValueError as exc:
            parser.error(f"--peers: {exc}")
        peer_id = format_address(host, port)
        if peer_id != format_address(args.host, args.port) and peer_id not in peers:
            peers.append(peer_id)
            hosts.append(host)
    join: list[str] = []
    for text in _split_peers(args.join):
        try:
            join_host, join_port = parse_address(text)
        except ValueError as exc:
            parser.error(f"--join: {exc}")
        join.append(format_address(join_host, join_port))
        hosts.append(join_host)
    keys_dir = node_key = None
    local_keys = False
    if args.insecure:
        if args.client_auth != "none":
            parser.error("--client-auth curve needs CURVE: drop --insecure")
    elif args.keys:
        keys_dir = args.keys
        if join and not args.node_key:
            parser.error(
                "--join with --keys needs this node's own key: --node-key FILE "
                "(python -m zmqnode keygen --dir KEYS --node NAME makes KEYS/NAME.key_secret)"
            )
        node_key = args.node_key or default_node_key(keys_dir, args.host, args.port, peers)
    else:
        remote = [host for host in hosts if not is_loopback(host)]
        if args.keys is not None or remote:
            why = (
                f"not every address is loopback ({', '.join(remote)}), so no local keys"
                if remote
                else "an empty --keys or ZMQNODE_KEYS means no keys"
            )
            parser.error(
                "security is on by default and needs the cluster's keys: --keys DIR (or "
                "ZMQNODE_KEYS; create them with python -m zmqnode keygen --dir DIR), "
                f"or --insecure to run without encryption and authentication ({why})"
            )
        # One machine: the per-user local keys (transport/keystore.py).
        keys_dir = str(local_keys_dir())
        node_key = args.node_key or str(local_node_key(keys_dir, args.host, args.port))
        local_keys = True
    return NodeConfig(
        host=args.host,
        port=args.port,
        monitor_port=ports.monitor,
        monitor_host=args.monitor_host,
        http_port=args.http_port,
        http_host=args.http_host,
        http_idle_timeout=args.http_idle_timeout,
        http_request_timeout=args.http_request_timeout,
        peers=tuple(peers),
        storage_dir=args.storage_dir or f"node_{args.port}_storage",
        tick_seconds=args.tick,
        election_ticks=args.election_ticks,
        max_request_bytes=args.max_request_bytes,
        max_model_bytes=args.max_model_bytes,
        max_trainings=args.max_trainings,
        max_pending=args.max_pending,
        max_uncommitted_bytes=args.max_uncommitted_bytes,
        trainer=not args.no_trainer,
        log_level=args.log_level.upper(),
        fault_file=args.fault_file,
        snapshot_entries=args.snapshot_entries,
        fetch_chunk_bytes=args.fetch_chunk_bytes,
        keys_dir=keys_dir,
        node_key=node_key,
        client_auth=args.client_auth,
        local_keys=local_keys,
        join=tuple(join),
    )


def default_node_key(keys_dir: str, host: str, port: int, peers: list[str]) -> str:
    """KEYS/node<i>.key_secret where i is this node's place among the sorted
    cluster addresses: keygen --nodes N and run_cluster.sh number nodes the
    same way (ports 9000+i), so a local cluster needs no --node-key."""
    members = sorted([format_address(host, port), *peers], key=_address_order)
    index = members.index(format_address(host, port))
    return os.path.join(keys_dir, f"node{index}.key_secret")


def _address_order(address: str) -> tuple[str, int]:
    host, port = parse_address(address)
    return host, port
