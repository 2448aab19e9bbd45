"""Build the Go worker (go/worker) when its sources changed.

``ensure_worker()`` is what the simulator (``python -m tests.sim --impls``)
and the node harness call before starting ``go/worker``: it runs
``go build -o worker .`` in go/ when the binary is missing or older than
any ``*.go`` file or ``go.mod``, and returns the binary's path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

GO_DIR = Path(__file__).resolve().parent.parent / "go"
WORKER = GO_DIR / "worker"
INSTALL_HINT = "install golang-go and libzmq3-dev; run_tests.sh does it as root"


class GoBuildError(RuntimeError):
    """``go`` is missing, or ``go build`` failed (the message has its output)."""


def _newest_source(root: Path) -> float:
    newest = 0.0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "testdata"]
        for name in filenames:
            if name.endswith(".go") or name in ("go.mod", "go.sum"):
                newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime)
    return newest


def ensure_worker(go_dir: Path = GO_DIR) -> Path:
    """The path of an up-to-date ``go/worker``, building it if needed.

    Raises GoBuildError when ``go`` is not installed or the build fails.
    """
    worker = go_dir / "worker"
    try:
        built = worker.stat().st_mtime
    except FileNotFoundError:
        built = -1.0
    if built >= _newest_source(go_dir):
        return worker
    go = shutil.which("go") or ("/usr/bin/go" if os.path.exists("/usr/bin/go") else None)
    if go is None:
        raise GoBuildError(f"the Go toolchain (go) is not installed: {INSTALL_HINT}")
    # Build to a temporary name and rename, so that a process starting the
    # worker meanwhile never runs a half-written binary.
    tmp = go_dir / f".worker.{os.getpid()}.tmp"
    proc = subprocess.run(
        [go, "build", "-o", str(tmp), "."],
        cwd=go_dir,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise GoBuildError(f"go build in {go_dir} failed:\n{proc.stdout}{proc.stderr}".rstrip())
    os.replace(tmp, worker)
    return worker
