"""Node addresses and the fixed port layout (docs/PROTOCOL.md §1).

A node is named by its client address ``"host:port"``; that string is also
its Raft node id. Every other port of the node is derived from the client
port P so that knowing a peer's id is enough to reach all its sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

# Offsets from the client port P. The monitor default keeps the original
# design's layout (client 9000, monitor 8000, raft 10000; docs/PROTOCOL.md §1).
MONITOR_OFFSET = -1000
RAFT_OFFSET = 1000
HEARTBEAT_OFFSET = 2000
TRAINING_OFFSET = 3000
RESULTS_OFFSET = 4000
# HTTP inference (the Open Inference Protocol): 9000 -> 14000. Not 7000: macOS
# takes port 7000 for AirPlay, and laptops are where clusters start.
HTTP_OFFSET = 5000


@dataclass(frozen=True, slots=True)
class NodePorts:
    """Every port of one node, derived from its client port by ``node_ports``
    (the monitor's may be chosen instead: ``--monitor-port``)."""

    client: int  # ROUTER: client requests
    monitor: int  # HTTP monitor (overridable)
    raft: int  # ROUTER: Raft RPCs from peers' DEALERs
    heartbeat: int  # PUB: leader heartbeats and node state
    training: int  # PULL in the trainer process: SUB_TRAIN jobs
    results: int  # PULL in the node: trainers' results for jobs it leads
    http: int  # HTTP: Open Inference Protocol (overridable)


def node_ports(
    client_port: int, *, monitor_port: int | None = None, http_port: int | None = None
) -> NodePorts:
    """The ports of the node whose client port is ``client_port``.

    Raises ``ValueError`` if a derived port falls outside 1..65535.
    """
    ports = NodePorts(
        client=client_port,
        monitor=client_port + MONITOR_OFFSET if monitor_port is None else monitor_port,
        raft=client_port + RAFT_OFFSET,
        heartbeat=client_port + HEARTBEAT_OFFSET,
        training=client_port + TRAINING_OFFSET,
        results=client_port + RESULTS_OFFSET,
        http=client_port + HTTP_OFFSET if http_port is None else http_port,
    )
    for field_name in NodePorts.__slots__:
        port = getattr(ports, field_name)
        if not 1 <= port <= 65535:
            raise ValueError(
                f"client port {client_port} gives {field_name} port {port}, outside 1..65535 "
                f"(client ports must be within {1 - MONITOR_OFFSET}..{65535 - HTTP_OFFSET} "
                "unless --monitor-port and --http-port are given)"
            )
    return ports


def parse_address(text: str) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``) into ``(host, port)``.

    Raises ``ValueError`` with a readable message.
    """
    if not isinstance(text, str):
        raise ValueError(f"address must be a string 'host:port', got {text!r}")
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"address {text!r} is not '[ipv6]:port'")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError(f"address {text!r} has no port; expected 'host:port'")
        if ":" in host:
            raise ValueError(f"address {text!r}: write IPv6 hosts as '[addr]:port'")
    if not host:
        raise ValueError(f"address {text!r} has no host; expected 'host:port'")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"address {text!r}: port must be a number in 1..65535")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """``"host:port"``, bracketing IPv6 hosts."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tcp_endpoint(host: str, port: int) -> str:
    """The ZeroMQ endpoint ``tcp://host:port`` for connect or bind."""
    return f"tcp://{format_address(host, port)}"
