"""Go and Kotlin Raft cores in the simulator: ``GoCore``, a proxy with RaftCore's interface.

The cores live in one ``go/worker sim-core`` (Go) or ``java -jar
kotlin/worker.jar sim-core`` (Kotlin) process per implementation and
simulator process (``SimCoreServer.get(impl)``), which speaks the line protocol of docs/SIMCORE.md
on its stdin/stdout: one JSON request per line, one reply per line, in
order. Every reply that follows a change carries the core's view (role,
term, commit index...) and what changed in its log, so attribute reads,
``term_at``, ``log.entries`` and ``snapshot`` are answered here from a
mirror, without a round trip.

Two things keep the round trips down to about one per input:

- ``expect_ready()``: the world says "the next input is followed by
  ``has_ready()``"; that input's request then asks the server to call
  HasReady and Ready right after it, and ``has_ready()``/``ready()`` answer
  from the prefetch. The Go core sees exactly the calls a RaftCore sees.
- ``close()`` (the node crashed) sends ``drop`` without waiting for the reply.

Errors: the core's LogInvariantError and MembershipError are raised as
those Python types; anything else as ``GoCoreError`` (its ``kind`` says
which: "protocol", "panic", "value", "error").
"""

from __future__ import annotations

import atexit
import base64
import os
import subprocess
from collections import deque
from typing import Any

import orjson

from zmqnode.raft import (
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Membership,
    MembershipError,
    Message,
    MessageType,
    ProposeResult,
    RaftConfig,
    ReadState,
    Ready,
    Refusal,
    Role,
    Snapshot,
)
from zmqnode.raft.log import LogInvariantError

PROTOCOL = 1

_ROLES = {r.value: r for r in Role}
_TYPES = {t.value: t for t in MessageType}
_KINDS = {k.value: k for k in EntryKind}
_REFUSALS = {r.value: r for r in Refusal}
_b64 = base64.b64encode
_unb64 = base64.b64decode
_dumps = orjson.dumps
_loads = orjson.loads


# The implementations a sim-core server can run, as --impls names them.
REMOTE_IMPLS = ("go", "kotlin")
_NAMES = {"go": "Go", "kotlin": "Kotlin"}


class GoCoreError(RuntimeError):
    """An error reply other than the core's invariant and membership errors."""

    def __init__(self, kind: str, msg: str, impl: str = "go") -> None:
        super().__init__(f"{_NAMES.get(impl, impl)} core ({kind}): {msg}")
        self.kind = kind
        self.impl = impl


RemoteCoreError = GoCoreError


def _raise(err: dict, impl: str = "go") -> None:
    kind, msg = err.get("kind", "?"), err.get("msg", "")
    name = _NAMES.get(impl, impl)
    if kind == "invariant":
        raise LogInvariantError(f"({name} core) {msg}")
    if kind == "membership":
        raise MembershipError(f"({name} core) {msg}")
    raise GoCoreError(kind, msg, impl)


def kotlin_jar() -> str:
    """kotlin/worker.jar, up to date (harness.ktbuild.ensure_worker builds it
    when its sources changed); ``ZMQNODE_KOTLIN_JAR`` names another jar to
    use as it is (a scratch build of committed sources, say)."""
    override = os.environ.get("ZMQNODE_KOTLIN_JAR")
    if override:
        return override
    from harness.ktbuild import ensure_worker

    return os.fspath(ensure_worker())


def worker_command(impl: str) -> list[str]:
    """The command that serves ``impl`` cores on stdin/stdout."""
    if impl == "go":
        from harness.gobuild import ensure_worker

        return [os.fspath(ensure_worker()), "sim-core"]
    if impl == "kotlin":
        from harness.ktbuild import java_command

        return [*java_command(kotlin_jar()), "sim-core"]
    raise ValueError(f"no sim-core server for implementation {impl!r}")


class SimCoreServer:
    """One sim-core process (``go/worker sim-core`` or ``java -jar
    kotlin/worker.jar sim-core``); ``get(impl)`` gives this process's."""

    _instance: SimCoreServer | None = None  # the Go one (older callers read it)
    _instances: dict[str, SimCoreServer] = {}

    def __init__(self, worker: str | os.PathLike | None = None, impl: str = "go") -> None:
        self.impl = impl
        if worker is None:
            cmd = worker_command(impl)
        elif impl == "kotlin":
            from harness.ktbuild import java_command

            cmd = [*java_command(worker), "sim-core"]
        else:
            cmd = [os.fspath(worker), "sim-core"]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # buffered both ways: a raw pipe's readline() reads byte by byte
            bufsize=-1,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._w = self.proc.stdin
        self._r = self.proc.stdout
        self._unread = 0  # replies to requests sent without waiting (drop)
        self.pid = os.getpid()
        info = self.call({"op": "info"})["r"]
        if info.get("protocol") != PROTOCOL:
            self.close()
            raise GoCoreError(
                "protocol",
                f"{' '.join(cmd[-2:])} speaks protocol {info.get('protocol')}, not {PROTOCOL}",
                impl,
            )
        self.mutations: frozenset[str] = frozenset(info.get("mutations", ()))

    @classmethod
    def get(cls, impl: str = "go") -> SimCoreServer:
        """This process's server for ``impl`` cores, started on first use (and
        again after a fork)."""
        inst = cls._instances.get(impl)
        if inst is None or inst.pid != os.getpid() or inst.proc.poll() is not None:
            inst = cls._instances[impl] = cls(impl=impl)
            atexit.register(inst.close)
            if impl == "go":
                cls._instance = inst
        return inst

    def _readline(self) -> dict:
        line = self._r.readline()
        if not line:
            code = self.proc.poll()
            raise GoCoreError("protocol", f"{self.impl} sim-core exited (status {code})", self.impl)
        return _loads(line)

    def call(self, req: dict) -> dict:
        """Send one request, return its reply; raise for an error reply."""
        self._w.write(_dumps(req) + b"\n")
        self._w.flush()
        while self._unread:
            self._unread -= 1
            self._readline()  # a drop: nothing to learn from it
        reply = self._readline()
        err = reply.get("err")
        if err is not None:
            _raise(err, self.impl)
        return reply

    def send_nowait(self, req: dict) -> None:
        """Send a request whose reply the next ``call`` reads and ignores
        (it leaves with that call's request, in one write)."""
        self._w.write(_dumps(req) + b"\n")
        self._unread += 1

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._w.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- encoding -----------------------------------------------------------------


def _enc_entries(entries) -> list:
    return [[e.index, e.term, e.kind.value, _b64(e.data).decode()] for e in entries]


def _dec_entries(items: list) -> list[Entry]:
    kinds = _KINDS
    return [Entry(i, t, kinds[k], _unb64(d)) for i, t, k, d in items]


def _enc_snapshot(s: Snapshot) -> dict:
    return {
        "index": s.index,
        "term": s.term,
        "data": _b64(s.data).decode(),
        "membership": _b64(s.membership).decode(),
    }


def _dec_snapshot(d: dict) -> Snapshot:
    return Snapshot(d["index"], d["term"], _unb64(d["data"]), _unb64(d["membership"]))


def encode_message(m: Message) -> dict:
    d: dict[str, Any] = {"type": m.type.value, "src": m.src, "dst": m.dst, "term": m.term}
    if m.log_index:
        d["log_index"] = m.log_index
    if m.log_term:
        d["log_term"] = m.log_term
    if m.entries:
        d["entries"] = _enc_entries(m.entries)
    if m.commit:
        d["commit"] = m.commit
    if m.reject:
        d["reject"] = True
    if m.index:
        d["index"] = m.index
    if m.reject_hint:
        d["reject_hint"] = m.reject_hint
    if m.context:
        d["context"] = m.context
    if m.read_ctx:
        d["read_ctx"] = m.read_ctx
    if m.force:
        d["force"] = True
    if m.snapshot is not None:
        d["snapshot"] = _enc_snapshot(m.snapshot)
    return d


def _enc_config(c: RaftConfig) -> dict:
    return {
        "election_ticks": c.election_ticks,
        "heartbeat_ticks": c.heartbeat_ticks,
        "pre_vote": c.pre_vote,
        "check_quorum": c.check_quorum,
        "max_msg_bytes": c.max_msg_bytes,
        "max_inflight": c.max_inflight,
        "promote_max_lag": c.promote_max_lag,
    }


class _Log:
    """The mirror of the Go core's log: what ``RaftLog`` offers for reading."""

    __slots__ = ("snapshot", "entries")

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self.entries: list[Entry] = []

    @property
    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    def term_at(self, index: int) -> int | None:
        offset = index - self.snapshot.index
        if offset == 0:
            return self.snapshot.term
        if offset < 0 or offset > len(self.entries):
            return None
        return self.entries[offset - 1].term

    def span(self, lo_hi: list) -> list[Entry]:
        base = self.snapshot.index + 1
        return self.entries[lo_hi[0] - base : lo_hi[1] - base + 1]


class GoCore:
    """A Go ``raft.Core`` (or a Kotlin ``zmqnode.raft.Core``: ``impl``) in
    its server, with the RaftCore interface the simulator uses
    (tests/sim/world.py, checks.py)."""

    remote = True
    # Tests set it: after every reply, compare the mirror with the core's own
    # log (two more round trips; the schedule itself is unchanged).
    verify = False

    def __init__(
        self,
        node_id: str,
        peers,
        config: RaftConfig,
        seed: int,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries=(),
        bootstrap: Membership | None = None,
        vote_floor: int = 0,
        mutations=(),
        server: SimCoreServer | None = None,
        impl: str = "go",
    ) -> None:
        """Like ``RaftCore(...)``, but ``seed`` seeds the core's only
        randomness (the Go core's math/rand, the Kotlin core's SplitMix64) in
        place of a ``random.Random``; ``impl`` picks the server."""
        self.id = node_id
        self.config = config
        self.vote_floor = vote_floor
        self.log = _Log()
        self.snapshot = self.log.snapshot
        self.membership: Membership = Membership.of([])
        self.voters: frozenset[str] = frozenset()
        self.quorum = 1
        self._memberships: dict[str, Membership] = {}
        self._prefetch = False  # the next input asks for HasReady/Ready too
        self._readies: deque[Ready] = deque()  # prefetched, not handed out yet
        self._more = True  # False: HasReady said False after the last prefetched one
        self._handed: Ready | None = None  # the last Ready handed out
        self._handed_advanced = False  # ... and the server advanced it already
        self._server = server or SimCoreServer.get(impl)
        self.impl = self._server.impl
        req: dict[str, Any] = {
            "op": "new",
            "id": node_id,
            "peers": list(peers),
            "config": _enc_config(config),
            "seed": seed,
        }
        if hard_state is not None:
            req["hard_state"] = {"term": hard_state.term, "vote": hard_state.vote}
        if snapshot is not None:
            req["snapshot"] = _enc_snapshot(snapshot)
        if entries:
            req["entries"] = _enc_entries(entries)
        if bootstrap is not None:
            req["bootstrap"] = _b64(bootstrap.encode()).decode()
        if vote_floor:
            req["vote_floor"] = vote_floor
        if mutations:
            req["mutations"] = list(mutations)
        reply = self._server.call(req)
        self._h = reply["h"]
        self._update(reply)

    # -- the reply -> the mirror ---------------------------------------------------

    def _update(self, reply: dict) -> None:
        v = reply["v"]
        self.role = _ROLES[v["role"]]
        self.term = v["term"]
        self.vote = v["vote"]
        self.leader_id = v["leader"]
        self.commit_index = v["commit"]
        self.applied_index = v["applied"]
        self.last_index = v["last"]
        self.membership_index = v["mi"]
        m = reply.get("m")
        if m is not None:
            self.membership = self._decode_membership(m["enc"])
            self.voters = frozenset(m["voters"])
            self.quorum = m["quorum"]
        lg = reply.get("log")
        log = self.log
        if lg is not None:
            snap = lg.get("snap")
            if snap is not None:
                s = log.snapshot = self.snapshot = _dec_snapshot(snap)
                ents = log.entries
                drop = 0
                while drop < len(ents) and ents[drop].index <= s.index:
                    drop += 1
                del ents[:drop]
            start = lg.get("from")
            if start is not None:
                del log.entries[start - log.snapshot.index - 1 :]
                log.entries.extend(_dec_entries(lg["ents"]))
        if self.verify:
            self._verify(v)
        if log.snapshot.index + len(log.entries) != self.last_index or v["snap"][0] != (
            log.snapshot.index
        ):
            raise GoCoreError(
                "protocol",
                f"{self.id} ({self.impl}): log mirror out of step: snapshot {log.snapshot.index} + "
                f"{len(log.entries)} entries, the core says snapshot {v['snap'][0]}, "
                f"last {self.last_index}",
            )

    def _verify(self, v: dict) -> None:
        snap = self.log.snapshot
        own = self.remote_log_entries()
        if (
            own != self.log.entries
            or [snap.index, snap.term] != v["snap"]
            or self.remote_term_at(snap.index) != snap.term
        ):
            raise GoCoreError(
                "protocol",
                f"{self.id}: the mirror ({snap.index}@{snap.term}, "
                f"{[(e.index, e.term) for e in self.log.entries]}) is not the core's log "
                f"({v['snap']}, {[(e.index, e.term) for e in own]})",
            )

    def _decode_membership(self, enc: str) -> Membership:
        m = self._memberships.get(enc)
        if m is None:
            m = self._memberships[enc] = Membership.decode(_unb64(enc))
        return m

    def _decode_ready(self, d: dict) -> Ready:
        log = self.log
        rd = Ready()
        hs = d.get("hs")
        if hs is not None:
            rd.hard_state = HardState(hs["term"], hs["vote"])
        if "entries_log" in d:
            rd.entries = log.span(d["entries_log"])
        elif "entries" in d:
            rd.entries = _dec_entries(d["entries"])
        snap = d.get("snapshot")
        if snap is not None:
            rd.snapshot = _dec_snapshot(snap)
        msgs = d.get("messages")
        if msgs:
            rd.messages = [self._decode_message(x) for x in msgs]
        if "committed_log" in d:
            rd.committed = log.span(d["committed_log"])
        elif "committed" in d:
            rd.committed = _dec_entries(d["committed"])
        rs = d.get("read_states")
        if rs:
            rd.read_states = [ReadState(c, i) for c, i in rs]
        return rd

    def _decode_message(self, d: dict) -> Message:
        g = d.get
        if "entries_log" in d:
            ents = tuple(self.log.span(d["entries_log"]))
        elif "entries" in d:
            ents = tuple(_dec_entries(d["entries"]))
        else:
            ents = ()
        snap = g("snapshot")
        return Message(
            _TYPES[d["type"]],
            d["src"],
            d["dst"],
            d["term"],
            g("log_index", 0),
            g("log_term", 0),
            ents,
            g("commit", 0),
            g("reject", False),
            g("index", 0),
            g("reject_hint", 0),
            g("context", 0),
            g("read_ctx", ""),
            g("force", False),
            None if snap is None else _dec_snapshot(snap),
        )

    def _input(self, req: dict) -> dict:
        """An input to the core: its reply updates the view, and brings the
        Readies along when the world said ``has_ready()`` comes next."""
        req["h"] = self._h
        if self._prefetch and not self._readies:
            self._prefetch = False
            req["rd"] = True
            reply = self._server.call(req)
            self._update(reply)
            self._take_prefetch(reply)
            return reply
        self._prefetch = False
        self._more = True  # what was prefetched before is out of date
        reply = self._server.call(req)
        self._update(reply)
        return reply

    def _take_prefetch(self, reply: dict) -> None:
        for rd in reply.get("readies", ()):
            self._readies.append(self._decode_ready(rd))
        self._more = reply.get("hr", True)

    # -- RaftCore's interface --------------------------------------------------------

    def expect_ready(self) -> None:
        """The next input is followed at once by ``has_ready()`` (and, if
        True, ``ready()``): fetch them with it."""
        self._prefetch = True

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def tick(self) -> None:
        self._input({"op": "tick"})

    def step(self, m: Message) -> None:
        self._input({"op": "step", "m": encode_message(m)})

    def propose(self, data: bytes) -> ProposeResult:
        return self._result(self._input({"op": "propose", "data": _b64(data).decode()}))

    def propose_membership(
        self, change: ConfChange, base_index: int | None = None
    ) -> ProposeResult:
        req: dict[str, Any] = {
            "op": "propose_membership",
            "change": {
                "type": change.type.value,
                "node": change.node,
                "credential": change.credential,
            },
        }
        if base_index is not None:
            req["base"] = base_index
        return self._result(self._input(req))

    @staticmethod
    def _result(reply: dict) -> ProposeResult:
        r = reply["r"]
        refusal = r.get("refusal")
        return ProposeResult(
            r["accepted"],
            r.get("index", 0),
            r.get("term", 0),
            r.get("leader_hint", ""),
            r.get("reason", ""),
            _REFUSALS[refusal] if refusal else None,
        )

    def read_index(self, read_ctx: str) -> bool:
        return self._input({"op": "read_index", "ctx": read_ctx})["r"]

    def transfer_leadership(self, target: str) -> None:
        self._input({"op": "transfer_leadership", "peer": target})

    def campaign(self) -> None:
        self._input({"op": "campaign"})

    def peer_unreachable(self, peer: str) -> None:
        self._input({"op": "peer_unreachable", "peer": peer})

    def compact(self, index: int, data: bytes) -> None:
        self._input({"op": "compact", "index": index, "data": _b64(data).decode()})

    def has_ready(self) -> bool:
        # Prefetched Readies not handed out yet go first (an input in between,
        # which the world never makes, leaves them first in line: the Ready
        # contract allows it).
        if self._readies:
            return True
        if not self._more:
            self._more = True  # known False once; ask next time
            return False
        self._prefetch = False
        reply = self._server.call({"op": "has_ready", "h": self._h, "rd": True})
        self._update(reply)
        self._take_prefetch(reply)
        if self._readies:
            return True
        self._more = True
        return False

    def ready(self) -> Ready:
        if self._readies:
            rd = self._readies.popleft()
            # The server advanced a prefetched Ready that writes nothing at
            # once (docs/SIMCORE.md, "readies"); one that writes waits for us.
            self._handed_advanced = rd.hard_state is None and not rd.entries and rd.snapshot is None
        else:
            reply = self._server.call({"op": "ready", "h": self._h})
            self._update(reply)
            rd = self._decode_ready(reply["ready"])
            self._handed_advanced = False
        self._handed = rd
        return rd

    def advance(self, rd: Ready) -> None:
        if rd is not self._handed:
            raise GoCoreError("protocol", f"{self.id}: advance of a Ready not handed out last")
        self._handed = None
        if self._handed_advanced:
            self._prefetch = False  # has_ready() answers from the prefetch
            return
        self._input({"op": "advance"})

    def term_at(self, index: int) -> int | None:
        return self.log.term_at(index)

    def log_entries(self) -> tuple[Entry, ...]:
        return tuple(self.log.entries)

    def membership_at(self, index: int) -> Membership:
        reply = self._server.call({"op": "membership_at", "h": self._h, "index": index})
        return self._decode_membership(reply["r"])

    def remote_term_at(self, index: int) -> int | None:
        """The Go core's own TermAt (``term_at`` reads the mirror)."""
        return self._server.call({"op": "term_at", "h": self._h, "index": index})["r"]

    def remote_log_entries(self) -> list[Entry]:
        """The Go core's own LogEntries (``log.entries`` is the mirror)."""
        return _dec_entries(self._server.call({"op": "log_entries", "h": self._h})["r"])

    def close(self) -> None:
        """Free the core in the server (the node crashed); no reply awaited."""
        if self._h:
            self._server.send_nowait({"op": "drop", "h": self._h})
            self._h = 0
