"""Where a node's time goes while ``bench predict`` loads it.

Two sources:

- ``/proc/<pid>/stat`` and ``/proc/<pid>/task/<pid>/stat``: CPU time of the
  whole node process and of its event-loop (main) thread, read before and
  after a measurement, so a run reports node CPU microseconds per request;
- optionally ``py-spy record`` on the node during the measurement
  (``--profile-node FILE``; ``pip install py-spy``): the raw samples are kept
  in FILE and summarized here by the serving path's steps, as shares of the
  event loop's samples and as microseconds per request.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")

# Steps of the serving path: (label, a frame that marks it). Shares are
# inclusive (a step's callees count in it); the rows overlap where one step
# calls another (the reply send happens inside the batch flush).
STEPS: tuple[tuple[str, str], ...] = (
    ("loop turn (all of the event loop)", "Node._turn"),
    ("poll the sockets", "Poller.poll"),
    ("receive requests (recv_multipart)", "Socket.recv_multipart"),
    ("parse + validate a request (_on_client)", "Node._on_client"),
    ("  wire.decode (orjson + checks)", "decode (zmqnode/transport/wire.py"),
    ("  read_array / array_from_frame", "read_array"),
    ("  _as_rows (shape, isfinite)", "_as_rows"),
    ("batch flush (predict + answer all)", "PredictionBatcher.flush"),
    ("  forward pass (Model.predict)", "Model.predict"),
    ("  outputs to frames (array_to_frame)", "array_to_frame"),
    ("  answer one request (_Replier.ok)", "_Replier.ok"),
    ("    reply header dict (ok_reply)", "ok_reply ("),
    ("    header to JSON (wire.encode)", "encode (zmqnode/transport/wire.py"),
    ("    send the reply (send_multipart)", "Socket.send_multipart"),
    ("Raft and housekeeping (_process_ready)", "Node._process_ready"),
    ("pyzmq enum flag arithmetic", "enum.py"),
)


def cpu_seconds(pid: int) -> dict[str, float] | None:
    """CPU seconds (user + system) of process ``pid`` and of its main thread."""
    try:
        proc = Path(f"/proc/{pid}/stat").read_text()
        main = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    except OSError:
        return None

    def ticks(stat: str) -> float:
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    return {"process": ticks(proc), "main_thread": ticks(main)}


def cpu_per_request(
    before: dict[str, dict[str, float] | None],
    after: dict[str, dict[str, float] | None],
    requests: int,
) -> dict[str, Any]:
    """Node CPU microseconds per request, summed over the nodes measured."""
    total = main = 0.0
    for node, b in before.items():
        a = after.get(node)
        if a and b:
            total += a["process"] - b["process"]
            main += a["main_thread"] - b["main_thread"]
    if not requests:
        return {}
    return {
        "node_cpu_us_per_request": round(total / requests * 1e6, 1),
        "node_loop_cpu_us_per_request": round(main / requests * 1e6, 1),
        "note": "clock-tick resolution (10 ms) over the whole run; all nodes summed",
    }


class Profiler:
    """``py-spy record`` of one node for the duration of a ``with`` block."""

    def __init__(self, pid: int, path: Path, rate: int = 1000) -> None:
        self.pid, self.path, self.rate = pid, Path(path), rate
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Profiler:
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("--profile-node needs py-spy: pip install py-spy")
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--nonblocking"]
            + ["--format", "raw", "--output", str(self.path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return
        if not self.path.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-300:]}")


def summarize(path: Path, loop_us_per_request: float | None = None) -> dict[str, Any]:
    """Shares of the event loop's samples per serving step, and the top leaf frames."""
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    loop_samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if "Node.run" not in stack:
            continue  # other threads (monitor, ...)
        n = int(count)
        loop_samples += n
        frames = stack.split(";")
        leaves[frames[-1]] += n
        for label, marker in STEPS:
            if marker in stack:
                inclusive[label] += n
    if not loop_samples:
        return {"samples": 0}

    def us(share: float) -> float | None:
        return round(share * loop_us_per_request, 2) if loop_us_per_request else None

    steps = []
    for label, _ in STEPS:
        share = inclusive[label] / loop_samples
        steps.append({"step": label, "share": round(share, 3), "us_per_request": us(share)})
    top = []
    for frame, n in leaves.most_common(12):
        share = n / loop_samples
        top.append({"frame": frame, "share": round(share, 3), "us_per_request": us(share)})
    return {"samples": loop_samples, "file": str(path), "steps": steps, "top_self": top}
