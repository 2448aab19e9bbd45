"""One PySyncObj node for the ``python -m bench store --baseline`` comparison.

Run as ``python -m bench.pysyncobj_node --self HOST:PORT --partners A,B
[--no-batch] [--journal FILE]``. It starts a ``SyncObj`` whose state is a
dict of bytes (one ``@replicated`` ``put(key, value)``), then obeys JSON
commands, one a line, on stdin and answers each with one JSON line on
stdout:

- ``{"cmd": "status"}`` → ``{"leader": bool, "leader_addr": str|null,
  "term": int, "commit": int, "applied": int, "keys": int}``;
- ``{"cmd": "run", "n": N, "in_flight": K, "payload": PATH, "prefix": P,
  "max_seconds": S|null}`` (on the leader) → ``{"requested", "acked",
  "errors", "seconds"}``: ``N`` calls of ``put(P-i, bytes of PATH)``, ``K`` at
  a time (no new call after ``S`` seconds), each counted when its callback
  reports ``FAIL_REASON.SUCCESS``;
- ``{"cmd": "quit"}``.

Why the writes are made inside the leader's process: PySyncObj is a library,
not a server, and has no client protocol; an application calls the
replicated method in one of the members. Calling it in the leader spares
PySyncObj the client hop (and the forwarding hop a follower would add) that
our harness pays over ZeroMQ, so the comparison leans in its favour.

Concurrency: ``put(..., callback=cb)`` returns at once; a semaphore of ``K``
permits is taken before each call and released by its callback (which
PySyncObj runs on its tick thread once the entry is committed on a majority
and applied on this node). That is PySyncObj's documented asynchronous
interface, and ``K`` outstanding commands is the same load as ``K`` in
flight over our DEALER.

Durability (PySyncObj 0.3.17, ``pysyncobj/journal.py``): without
``journalFile`` (the default, used here unless ``--journal``) the Raft log
is a ``MemoryJournal``, a Python list; term and vote are kept in memory too,
so a node that restarts has lost everything. With ``journalFile`` the log is
written into an ``mmap`` of the file and the term/vote/commit index into a
``.meta`` file with ``write`` + ``rename``; neither path ever calls
``fsync``/``msync`` (``mmap.flush`` only on close), so records survive a
process kill (they are in the page cache) but not a power cut or kernel
crash. Nothing is durable in the Raft sense before the entry is acked.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated


class BytesStore(SyncObj):
    """A replicated ``dict[str, bytes]``."""

    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, partners, conf)
        self.data: dict[str, bytes] = {}

    @replicated
    def put(self, key: str, value: bytes) -> int:
        self.data[key] = value
        return len(value)


def run_writes(
    obj: BytesStore,
    n: int,
    in_flight: int,
    payload: bytes,
    prefix: str,
    max_seconds: float | None = None,
) -> dict:
    """``n`` puts, ``in_flight`` outstanding at a time; counts successful callbacks.

    Stops issuing after ``max_seconds`` (if given) and waits for those issued.
    ``seconds`` runs from the first call to the last callback.
    """
    permits = threading.Semaphore(in_flight)
    lock = threading.Lock()
    all_done = threading.Condition(lock)
    counts = {"acked": 0, "errors": 0, "done": 0, "last": 0.0}

    def callback(result, error) -> None:
        with lock:
            counts["acked" if error == FAIL_REASON.SUCCESS else "errors"] += 1
            counts["done"] += 1
            counts["last"] = time.perf_counter()
            all_done.notify_all()
        permits.release()

    start = time.perf_counter()
    stop = start + max_seconds if max_seconds else float("inf")
    issued = 0
    for i in range(n):
        if time.perf_counter() >= stop:
            break
        permits.acquire()
        obj.put(f"{prefix}-{i}", payload, callback=callback)
        issued += 1
    with lock:
        all_done.wait_for(lambda: counts["done"] == issued, timeout=120)
        return {
            "requested": issued,
            "acked": counts["acked"],
            "errors": counts["errors"] + (issued - counts["done"]),
            "seconds": (counts["last"] or time.perf_counter()) - start,
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pysyncobj_node")
    p.add_argument("--self", dest="self_addr", required=True)
    p.add_argument("--partners", required=True, help="comma-separated host:port")
    p.add_argument(
        "--no-batch",
        action="store_true",
        help="appendEntriesUseBatch=False: send each command at once (better latency)",
    )
    p.add_argument("--journal", help="journalFile (mmap, never fsynced); default: in memory")
    args = p.parse_args(argv)
    conf = SyncObjConf(
        appendEntriesUseBatch=not args.no_batch,
        journalFile=args.journal,
        dynamicMembershipChange=False,
    )
    obj = BytesStore(args.self_addr, args.partners.split(","), conf)

    def reply(obj_: dict) -> None:
        sys.stdout.write(json.dumps(obj_) + "\n")
        sys.stdout.flush()

    reply({"started": args.self_addr})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "status":
            st = obj.getStatus()
            leader = st.get("leader")
            reply(
                {
                    "leader": bool(obj._isLeader()),
                    "leader_addr": None if leader is None else str(leader),
                    "term": st.get("raft_term"),
                    "commit": st.get("commit_idx"),
                    "applied": st.get("last_applied"),
                    "keys": len(obj.data),
                }
            )
        elif cmd["cmd"] == "run":
            with open(cmd["payload"], "rb") as f:
                payload = f.read()
            reply(
                run_writes(
                    obj,
                    cmd["n"],
                    cmd["in_flight"],
                    payload,
                    cmd["prefix"],
                    cmd.get("max_seconds"),
                )
            )
        elif cmd["cmd"] == "quit":
            break
    obj.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
