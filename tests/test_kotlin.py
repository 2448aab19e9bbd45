"""The Kotlin node's own tests (kotlin/): `kotlin/build.sh test`.

kotlinc, a JDK and JNA come from the distribution (run_tests.sh installs them
as root: scripts/ensure_system.sh). Without them this skips saying why,
except under CI, which runs as root and must run it. The build goes to a
scratch directory (OUT=...), so kotlin/worker.jar is left to
harness.ktbuild.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# slow: kotlinc builds the jar and the tests (about 2 minutes on 2 idle cores).
pytestmark = [pytest.mark.kotlin, pytest.mark.slow, pytest.mark.timeout(1800)]

KOTLIN_DIR = Path(__file__).resolve().parent.parent / "kotlin"
JNA_JAR = Path("/usr/share/java/jna.jar")


def kotlin_or_skip() -> None:
    missing = [tool for tool in ("kotlinc", "java", "jar") if shutil.which(tool) is None]
    if not JNA_JAR.exists():
        missing.append(str(JNA_JAR))
    if missing:
        reason = (
            f"{', '.join(missing)} missing: install kotlin, default-jdk-headless and libjna-java"
            " (run_tests.sh does as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must run the Kotlin tests: {reason}")
        pytest.skip(reason)


def test_kotlin_build_and_tests_pass(tmp_path: Path) -> None:
    kotlin_or_skip()
    proc = subprocess.run(
        ["bash", str(KOTLIN_DIR / "build.sh"), "test"],
        cwd=KOTLIN_DIR,
        env={**os.environ, "OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    output = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, output
    summary = re.search(r"^(\d+) passed, (\d+) failed in (\d+) test classes$", proc.stdout, re.M)
    assert summary, output
    passed, failed, classes = map(int, summary.groups())
    assert failed == 0, output
    # Every test file's class ran (a class the runner did not find would pass silently).
    files = list((KOTLIN_DIR / "src" / "test" / "kotlin").glob("*Test.kt"))
    ran = f"{classes} test classes ran for {len(files)} test files"
    assert classes >= len(files), f"{ran}\n{output}"
    assert passed >= classes, output
