"""Readable lines for the simulator's trace.

The world records each event as a cheap tuple ``(time_us, code, a, b)``;
only a failing (or ``--trace``) schedule pays for turning them into text.
"""

from __future__ import annotations

from zmqnode.raft import Message, MessageType, Ready

MT = MessageType


def fmt_msg(m: Message) -> str:
    t = m.type
    s = f"{t.value} {m.src}->{m.dst} t{m.term}"
    if t is MT.APPEND:
        if m.entries:
            rng = f"{m.entries[0].index}..{m.entries[-1].index}@{m.entries[-1].term}"
        else:
            rng = "-"
        s += f" prev=({m.log_index},{m.log_term}) ents=[{rng}] commit={m.commit}"
    elif t is MT.APPEND_RESP:
        if m.reject:
            s += f" REJECT idx={m.index} hint={m.reject_hint} hint_term={m.log_term}"
        else:
            s += f" ok idx={m.index}"
    elif t in (MT.VOTE, MT.PRE_VOTE):
        s += f" last=({m.log_index},{m.log_term})" + (" force" if m.force else "")
    elif t in (MT.VOTE_RESP, MT.PRE_VOTE_RESP):
        s += " REJECT" if m.reject else " granted"
    elif t is MT.HEARTBEAT:
        s += f" commit={m.commit} seq={m.context}"
    elif t is MT.HEARTBEAT_RESP:
        s += f" seq={m.context}" + (" reject" if m.reject else "")
    elif t is MT.SNAPSHOT:
        snap = m.snapshot
        if snap is not None:
            s += f" snap=({snap.index},{snap.term})"
    elif t in (MT.READ_INDEX, MT.READ_INDEX_RESP):
        s += f" ctx={m.read_ctx} idx={m.index}" + (" reject" if m.reject else "")
    return s


def fmt_ready(rd: Ready) -> str:
    parts = []
    if rd.snapshot is not None:
        parts.append(f"snap=({rd.snapshot.index},{rd.snapshot.term})")
    if rd.hard_state is not None:
        parts.append(f"hs=(t{rd.hard_state.term},vote={rd.hard_state.vote or '-'})")
    if rd.entries:
        e0, e1 = rd.entries[0], rd.entries[-1]
        parts.append(f"ents={e0.index}@{e0.term}..{e1.index}@{e1.term}")
    if rd.committed:
        parts.append(f"apply={rd.committed[0].index}..{rd.committed[-1].index}")
    if rd.messages:
        parts.append(f"msgs={len(rd.messages)}")
    if rd.read_states:
        parts.append("reads=" + ",".join(f"{r.read_ctx}@{r.index}" for r in rd.read_states))
    return " ".join(parts) or "empty"


def fmt_event(ev: tuple) -> str:
    time_us, code, a, b = ev
    head = f"{time_us / 1000:10.3f}ms "
    if code == "deliver":
        via = f" (to {a})" if b.dst != a else ""
        return head + f"deliver {fmt_msg(b)}{via}"
    if code == "queued":
        via = f" (to {a})" if b.dst != a else ""
        return head + f"arrive {fmt_msg(b)}{via} (queued: {a} is busy writing)"
    if code == "drop":
        reason, dst = a
        via = f" (to {dst})" if b.dst != dst else ""
        return head + f"DROP[{reason}] {fmt_msg(b)}{via}"
    if code == "ready":
        return head + f"{a} ready {fmt_ready(b)}"
    if isinstance(b, tuple):  # a format string and its arguments, formatted only now
        b = b[0].format(*b[1:])
    return head + f"{a} {code} {b}" if b != "" else head + f"{a} {code}"
