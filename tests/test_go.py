"""The Go node's own packages (go/): `go vet ./...` and `go test ./...`.

Go and libzmq's headers come from the distribution (run_tests.sh installs
them as root: scripts/ensure_system.sh). Without them this skips saying why,
except under CI, which runs as root and must run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.go, pytest.mark.timeout(600)]

GO_DIR = Path(__file__).resolve().parent.parent / "go"


def go_or_skip() -> str:
    go = shutil.which("go")
    if go is None:
        reason = "no `go` command: install golang-go and libzmq3-dev (run_tests.sh does as root)"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must run the Go tests: {reason}")
        pytest.skip(reason)
    return go


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}  # the build downloads nothing
    return subprocess.run(
        args, cwd=GO_DIR, env=env, capture_output=True, text=True, timeout=540, check=False
    )


def test_go_vet_and_go_test_pass():
    go = go_or_skip()
    vet = run(go, "vet", "./...")
    assert vet.returncode == 0, vet.stdout + vet.stderr
    tests = run(go, "test", "-count=1", "./...")
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]
    packages = [line for line in tests.stdout.splitlines() if line.startswith("ok ")]
    assert len(packages) >= 1, tests.stdout
