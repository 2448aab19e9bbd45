"""``python -m zmqnode``: run one node (see ``config.py`` for the options);
``python -m zmqnode keygen --dir DIR``: create a cluster's keys."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .config import parse_args

# Exit status of a node that refused to start because its storage is damaged
# or its keys are missing or unreadable
# (1 is what Python uses for an unexpected crash; 2 says "read the message").
EXIT_STORAGE_DAMAGED = 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["keygen"]:
        return keygen_main(args[1:])
    config = parse_args(args)
    # One BLAS thread: a node's numpy work is many small calls, where thread
    # hand-offs cost more than they save and threads fight the event loop
    # (a 10,000-row predict took 10-40 ms multi-threaded on a busy 2-core
    # machine, under 3 ms single-threaded). Must be set before numpy loads.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    keep_freed_memory()
    from .node import Node  # imported late: `--help` stays fast
    from .storage.errors import StorageCorruption
    from .transport.security import KeyFileError

    try:
        Node(config).run()
    except (StorageCorruption, KeyFileError) as exc:
        report_damaged_storage(exc)
        return EXIT_STORAGE_DAMAGED
    return 0


def keygen_main(argv: list[str]) -> int:
    """``python -m zmqnode keygen --dir DIR``: the cluster's keys (transport/security.py)."""
    from .transport.security import KeyFileError, keygen

    p = argparse.ArgumentParser(
        prog="python -m zmqnode keygen",
        description="Create a cluster's CURVE keys: the cluster server keypair, one keypair "
        "per node with the nodes' allow-list, and client keypairs with theirs.",
    )
    p.add_argument("--dir", required=True, help="where to write the keys (created if needed)")
    p.add_argument(
        "--nodes", type=int, default=3, help="node keypairs node0..node<N-1> (default 3)"
    )
    p.add_argument("--clients", type=int, default=1, help="client keypairs (default 1: client)")
    p.add_argument(
        "--force", action="store_true", help="replace existing keys (locks out old holders)"
    )
    p.add_argument(
        "--node",
        metavar="NAME",
        help="only make one more node keypair, NAME.key_secret (in an existing key "
        "directory), for a node that joins with --join ... --node-key DIR/NAME.key_secret",
    )
    args = p.parse_args(argv)
    if args.nodes < 1 or args.clients < 0:
        p.error("--nodes must be at least 1 and --clients at least 0")
    if args.node is not None:
        from .transport.security import add_node_key

        try:
            made_one = add_node_key(args.dir, args.node)
        except KeyFileError as exc:
            print(f"zmqnode keygen: {exc}", file=sys.stderr)
            return 1
        print(
            f"wrote {made_one}: start the node with --join HOST:PORT --keys {args.dir} "
            f"--node-key {made_one}; its key reaches the other members through the "
            "membership, no copy of members/ needed"
        )
        return 0
    try:
        made = keygen(args.dir, args.nodes, args.clients, force=args.force)
    except KeyFileError as exc:
        print(f"zmqnode keygen: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {len(made)} keypairs to {args.dir}: give each node cluster.key_secret, "
        "members/ and its own node<i>.key_secret (clients/ too with --client-auth curve); "
        "give clients cluster.key and their client*.key_secret"
    )
    return 0


def report_damaged_storage(exc: Exception) -> None:
    """One line for the operator, not a traceback: the exception's text names
    the file, what is wrong with it and what to do. It goes to stderr and to
    the node's log file (both are the "zmqnode" logger's handlers once the
    node set up logging); before that, to stderr only."""
    message = f"node not started: {exc}"
    logger = logging.getLogger("zmqnode.storage")
    if logging.getLogger("zmqnode").handlers:
        logger.critical("%s", message)
    else:
        print(f"zmqnode: {message}", file=sys.stderr)


def keep_freed_memory() -> None:
    """Let glibc keep up to 64 MiB blocks on its heap instead of mmap-ing and
    unmapping each: a 10,000-row predict allocates a few MiB of temporaries,
    and fresh pages cost ~1,300 page faults per request (p50 9 ms -> 5 ms
    measured with the same settings as environment variables). Freed memory
    above 128 MiB is still returned to the system. Linux/glibc only."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-2, 16 << 20)  # M_TOP_PAD
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
