"""The trainer process: ``python -m zmqnode.training.trainer`` (started by its node).

It does the slow part of training, away from the node's Raft loop: it pulls
SUB_TRAIN jobs, runs local epochs on its chunk starting from the weights in
the job, and pushes the new weights to the leader that asked. It keeps the
chunks it was sent (bounded, least recently used first out) so later rounds
only carry weights. It exits when its node dies.

It gets its node's keys (``--keys``, ``--node-key``; or ``--insecure``): its
PULL admits only members (its own ZAP thread), and it pushes results to a
leader as its node (transport/security.py). A leader that refused a result
PUSH's handshake (its allow-list did not name this node yet) is connected
again after a backoff (``ResultLinks``; docs/PROTOCOL.md §1.1): the refusal
is final for that connection.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections import OrderedDict

import numpy as np
import zmq

from ..logs import setup_logging
from ..ml.distributed import run_chunk
from ..transport import security
from ..transport.reopen import Reopening, WatchedClients
from ..transport.sockets import BindError, Sockets
from ..transport.wire import ProtocolError
from .protocol import Job, Result, decode_job, encode_result

log = logging.getLogger("zmqnode.training.trainer")

CACHE_BYTES = 2 << 30
PARENT_CHECK_MS = 500
# Result sockets kept open (one per leader that sent us jobs); beyond this the
# least recently used one is closed, so jobs naming ever new endpoints cannot
# pile up sockets and file descriptors.
MAX_PUSHERS = 16
# Results queued for one leader before the next is dropped (it is not reading).
RESULT_SEND_HWM = 64
# The only reply_to a node sends (transport.addresses.tcp_endpoint): tcp:// then
# a host name, IPv4 address or bracketed IPv6 address, then a port.
_ENDPOINT = re.compile(
    r"tcp://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})"
)


def valid_endpoint(text: str) -> bool:
    """Whether ``text`` is a ``tcp://host:port`` we may connect to. Anything
    else (a bare ``host:port``, another transport, a wildcard, junk) would make
    ``connect`` raise or reach somewhere no leader listens."""
    m = _ENDPOINT.fullmatch(text)
    return m is not None and 1 <= int(m.group(1)) <= 65535


class ChunkCache:
    """(job, chunk) -> (x, y), bounded by bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.items: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.size = 0

    def get(self, key: tuple[str, int]) -> tuple[np.ndarray, np.ndarray] | None:
        item = self.items.get(key)
        if item is not None:
            self.items.move_to_end(key)
        return item

    def put(self, key: tuple[str, int], x: np.ndarray, y: np.ndarray) -> None:
        if key in self.items:
            return
        self.items[key] = (x, y)
        self.size += x.nbytes + y.nbytes
        while self.size > self.max_bytes and len(self.items) > 1:
            _, (old_x, old_y) = self.items.popitem(last=False)
            self.size -= old_x.nbytes + old_y.nbytes


def handle(job: Job, cache: ChunkCache, name: str) -> Result:
    key = (job.job_id, job.chunk)
    if job.x is not None and job.y is not None:
        cache.put(key, job.x, job.y)
    data = cache.get(key)
    if data is None:
        return Result(job.job_id, job.round_index, job.chunk, name, missing_data=True)
    x, y = data
    try:
        params, n_samples, loss = run_chunk(
            job.params, x, y, job.options, job.round_index, job.chunk
        )
    except Exception as exc:  # report it; the leader decides what to do
        log.exception("chunk %d of %s failed", job.chunk, job.job_id)
        return Result(job.job_id, job.round_index, job.chunk, name, error=repr(exc))
    return Result(job.job_id, job.round_index, job.chunk, name, n_samples, loss, params)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the node process dies, even mid-job: a
    trainer of a dead node must not go on answering for it. Elsewhere the
    parent check between jobs does the same job, later."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ResultLinks:
    """The result PUSH sockets, one per leader endpoint that sent us jobs (at
    most ``MAX_PUSHERS``, the least recently used closed first), each
    reopened after the leader refused its handshake. ``tick`` does that; it
    never blocks."""

    def __init__(self, sockets: Sockets) -> None:
        # The trainer has no metrics: refusals and reopenings are only logged.
        reopening: Reopening[str] = Reopening(log, lambda kind: None, "", "")
        self.clients: WatchedClients[str] = WatchedClients(sockets, reopening)
        self.pushers: OrderedDict[str, zmq.Socket] = OrderedDict()

    def pusher(self, endpoint: str) -> zmq.Socket | None:
        """The PUSH socket to ``endpoint`` (opened on first use), or None if
        it cannot be connected: a bad job costs itself, never the trainer."""
        push = self.pushers.get(endpoint)
        if push is not None:
            self.pushers.move_to_end(endpoint)
            return push
        try:
            push = self.clients.open(
                endpoint,
                zmq.PUSH,
                endpoint,
                who=f"the leader at {endpoint}",
                what="result PUSH",
                # A result still queued when the trainer exits gets a second to leave.
                linger_ms=1000,
                send_hwm=RESULT_SEND_HWM,
            )
        except zmq.ZMQError as exc:
            log.warning(
                "trainer dropped a job: cannot connect to reply_to %.80r: %s", endpoint, exc
            )
            return None
        self.pushers[endpoint] = push
        while len(self.pushers) > MAX_PUSHERS:
            old, _ = self.pushers.popitem(last=False)
            self.clients.close(old, linger_ms=0)
        return push

    def tick(self, now: float) -> None:
        """Note refusals and successes reported since, reopen what is due."""
        self.clients.settle()
        self.clients.tick(now)

    def wait_ms(self, now: float, most: int) -> int:
        """How long the loop may wait for a job before ``tick`` is due (at most ``most``)."""
        due = self.clients.reopening.next_due()
        if due is None:
            return most
        return max(0, min(most, int((due - now) * 1000) + 1))


def serve(
    bind: str,
    name: str,
    parent: int | None = None,
    keys: security.NodeKeys | None = None,
    member_keys: str | None = None,
) -> None:
    """Run jobs until the node process ``parent`` (default: ours now) is gone.

    The node passes its pid: a node killed while this process was still
    starting must not leave it behind holding the training port (the restarted
    node's own trainer could not bind it).
    """
    parent = os.getppid() if parent is None else parent
    die_with_parent()
    if os.getppid() != parent:  # the node died before the request above took effect
        log.info("trainer for %s: node process %d is gone; not starting", name, parent)
        return
    ctx = zmq.Context()
    # Its own ZAP handler: only members may push jobs (started before bind).
    authenticator = security.start_authenticator(ctx, keys)
    sockets = Sockets(ctx, keys)
    try:
        pull = sockets.server(zmq.PULL, bind, security.PEERS, linger_ms=0)
        results = ResultLinks(sockets)
        cache = ChunkCache(CACHE_BYTES)
        log.info("trainer for %s ready on %s", name, bind)
        shared = security.MemberKeysFile(member_keys) if member_keys else None
        while True:
            if shared is not None and authenticator is not None:
                admitted = shared.reload()  # the membership changed: so do the leaders
                if admitted is not None:
                    authenticator.set_members(admitted)
            now = time.monotonic()
            results.tick(now)
            if not pull.poll(results.wait_ms(now, PARENT_CHECK_MS)):
                if os.getppid() != parent:
                    log.info("trainer for %s: node process is gone; exiting", name)
                    return
                continue
            frames = pull.recv_multipart()
            if os.getppid() != parent:
                log.info("trainer for %s: node process is gone; exiting", name)
                return
            try:
                job = decode_job(frames)
            except ProtocolError as exc:
                log.warning("trainer dropped a malformed job: %s", exc.message)
                continue
            if not valid_endpoint(job.reply_to):
                log.warning(
                    "trainer dropped job %.80r: reply_to %.80r is not a tcp://host:port endpoint",
                    job.job_id,
                    job.reply_to,
                )
                continue
            push = results.pusher(job.reply_to)
            if push is None:
                continue
            result = handle(job, cache, name)
            try:
                push.send_multipart(encode_result(result), zmq.NOBLOCK, copy=False)
            except zmq.Again:
                log.warning(
                    "leader at %s is not taking results; dropped chunk %d of %s",
                    job.reply_to,
                    job.chunk,
                    job.job_id,
                )
    finally:
        if authenticator is not None:
            authenticator.stop()  # first: destroy() would close its sockets under it
        ctx.destroy(linger=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zmqnode.training.trainer")
    p.add_argument("--bind", required=True, help="PULL endpoint for SUB_TRAIN jobs")
    p.add_argument("--name", required=True, help="the node this trainer belongs to")
    p.add_argument("--log", help="log file to append to")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--parent-pid", type=int, help="the node's pid: exit when it is gone")
    p.add_argument("--keys", help="the cluster's key directory (as the node's --keys)")
    p.add_argument("--node-key", help="the node's own keypair")
    p.add_argument("--insecure", action="store_true", help="plaintext, no authentication")
    p.add_argument(
        "--member-keys", help="file of the member keys to admit, re-read when it changes"
    )
    args = p.parse_args(argv)
    if not args.insecure and not (args.keys and args.node_key):
        p.error("--keys and --node-key, or --insecure")
    setup_logging(f"{args.name} trainer", args.log or os.devnull, args.log_level)
    keys = None if args.insecure else security.load_node_keys(args.keys, args.node_key, "none")
    try:
        serve(args.bind, args.name, args.parent_pid, keys, args.member_keys)
    except BindError as exc:
        log.error("trainer for %s: %s", args.name, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
