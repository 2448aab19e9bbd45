"""The join handshake: a new node asks the cluster to add it as a learner
(docs/PROTOCOL.md §5.10), before its Raft core exists.

``ask_to_join`` sends JOIN (this node's address and public key) to any
member's client port, follows REDIRECT to the leader, retries what may
succeed later (BUSY, TIMEOUT, NOT_LEADER, UNAVAILABLE, no answer), and
returns the committed membership that names this node a learner: the node's
first membership, whose keys it admits and whose members it links to. The
reply comes over CURVE with the cluster's server key, so a stranger cannot
hand the node a membership of its own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import zmq

from .addresses import parse_address, tcp_endpoint
from .security import NodeKeys, make_client
from .wire import ErrorCode, ProtocolError, RequestType, decode, encode

log = logging.getLogger("zmqnode.join")

ATTEMPT_SECONDS = 5.0
RETRY_PAUSE_SECONDS = 0.5


class JoinError(RuntimeError):
    """The cluster refused, or did not answer before the deadline (says which)."""


def ask_to_join(
    ctx: zmq.Context,
    keys: NodeKeys | None,
    targets: Sequence[str],
    node_id: str,
    credential: str,
    deadline_seconds: float = 60.0,
) -> tuple[bytes, int]:
    """The encoded membership (with this node in it) and its log index."""
    deadline = time.monotonic() + deadline_seconds
    request_id = os.urandom(16).hex()
    queue = list(targets)
    tried: list[str] = []
    last = "no answer"
    while time.monotonic() < deadline:
        target = queue.pop(0) if queue else targets[len(tried) % len(targets)]
        tried.append(target)
        header = {
            "v": 1,
            "type": RequestType.JOIN.value,
            "id": request_id,
            "node": node_id,
            "credential": credential,
            "timeout_ms": int(ATTEMPT_SECONDS * 1000),
        }
        reply = _ask(ctx, keys, target, header)
        if reply is None:
            last = f"{target}: no answer in {ATTEMPT_SECONDS:.0f} s"
        elif reply.get("status") == "REDIRECT" and isinstance(reply.get("leader"), str):
            queue.insert(0, reply["leader"])
            continue
        elif reply.get("status") == "OK":
            membership, index = reply.get("membership"), reply.get("membership_index")
            if isinstance(membership, str) and isinstance(index, int):
                return membership.encode(), index
            raise JoinError(f"{target} answered JOIN without a membership: {reply}")
        else:
            code = str(reply.get("code"))
            last = f"{target}: {code}: {reply.get('message', '')}"
            if code not in {c.value for c in ErrorCode if c.retryable}:
                raise JoinError(f"the cluster refused to add {node_id}: {last}")
        log.info("joining: %s; retrying", last)
        time.sleep(RETRY_PAUSE_SECONDS)
    raise JoinError(
        f"could not join through {', '.join(targets)} in {deadline_seconds:.0f} s ({last})"
    )


def _ask(ctx: zmq.Context, keys: NodeKeys | None, target: str, header: dict) -> dict | None:
    host, port = parse_address(target)
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    make_client(sock, keys)
    try:
        sock.connect(tcp_endpoint(host, port))
        sock.send_multipart([b"", *encode(header)])
        if not sock.poll(int(ATTEMPT_SECONDS * 1000)):
            return None
        frames = sock.recv_multipart()
        body = frames[1:] if frames and frames[0] == b"" else frames
        reply, _ = decode(body)
        return reply
    except ProtocolError:
        return None
    finally:
        sock.close(linger=0)
