"""The trainer process: ``python -m zmqnode.trainer`` (started by its node).

It does the slow part of training, away from the node's Raft loop: it pulls
SUB_TRAIN jobs, runs local epochs on its chunk starting from the weights in
the job, and pushes the new weights to the leader that asked. It keeps the
chunks it was sent (bounded, least recently used first out) so later rounds
only carry weights. It exits when its node dies.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import OrderedDict

import numpy as np
import zmq

from .logs import setup_logging
from .ml.distributed import run_chunk
from .trainer_protocol import Job, Result, decode_job, encode_result
from .transport.wire import ProtocolError

log = logging.getLogger("zmqnode.trainer")

CACHE_BYTES = 2 << 30
PARENT_CHECK_MS = 500


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


def serve(bind: str, name: str) -> None:
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # died before the request above took effect
        return
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.bind(bind)
    pushers: dict[str, zmq.Socket] = {}
    cache = ChunkCache(CACHE_BYTES)
    log.info("trainer for %s ready on %s", name, bind)
    try:
        while True:
            if not pull.poll(PARENT_CHECK_MS):
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
            result = handle(job, cache, name)
            push = pushers.get(job.reply_to)
            if push is None:
                push = ctx.socket(zmq.PUSH)
                push.setsockopt(zmq.LINGER, 1000)
                push.setsockopt(zmq.SNDHWM, 64)
                push.connect(job.reply_to)
                pushers[job.reply_to] = push
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
        ctx.destroy(linger=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zmqnode.trainer")
    p.add_argument("--bind", required=True, help="PULL endpoint for SUB_TRAIN jobs")
    p.add_argument("--name", required=True, help="the node this trainer belongs to")
    p.add_argument("--log", help="log file to append to")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    setup_logging(f"{args.name} trainer", args.log or os.devnull, args.log_level)
    try:
        serve(args.bind, args.name)
    except zmq.ZMQError as exc:
        log.error("trainer for %s cannot bind %s: %s", args.name, args.bind, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
