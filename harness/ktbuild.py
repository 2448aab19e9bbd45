"""Build the Kotlin worker (kotlin/worker.jar) when its sources changed.

``ensure_worker()`` is what the simulator (``python -m tests.sim --impls
...kotlin...``) and the node harness call before starting the jar: it runs
``kotlin/build.sh`` when the jar is missing or older than any
``kotlin/src/main/kotlin/*.kt`` or the build script, and returns the jar's
path. (kotlin/build.sh writes the jar under a temporary name and renames
it, so a process starting the jar meanwhile never reads a half-written one;
a lock file keeps two test processes from compiling at once.)

``java_command(jar)`` is how to start it: ``java`` with JAVA_FLAGS, the
class-data archive made next to the jar after a build when it is usable,
and ``-jar``. Measured on the 2-core CI machine: the archive halves the
JVM's start-up CPU (0.17 s to 0.08 s user for ``--help``); SerialGC keeps a
node's footprint and GC threads small; C2 stays on (TieredStopAtLevel=1
starts no faster measurably and would slow the node's training loops).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

KOTLIN_DIR = Path(__file__).resolve().parent.parent / "kotlin"
WORKER = KOTLIN_DIR / "worker.jar"
INSTALL_HINT = "install kotlin, default-jdk-headless and libjna-java; run_tests.sh does it as root"

# -Xlog: the JVM writes its own warnings (a stale class-data archive, a full
# code cache) to stdout by default, where sim-core speaks its protocol: send
# them to stderr. file.encoding: JDK 17's default charset follows the locale
# (ASCII under LANG=C), the node's text is UTF-8 whatever the locale.
#
# Memory (measured 2026-12-07, docs/PERFORMANCE.md "The Kotlin node"):
# - SerialGC: one GC thread, the smallest footprint; the node's live heap is
#   small except while it holds a large request.
# - -Xms16m: the JVM's default initial heap is 1/64 of the machine's memory
#   (378 MiB on a 24 GiB machine) with a third of it young, so the first
#   burst of small requests touched ~100 MiB of eden that stayed resident:
#   RSS after 5,000 predictions 144 MiB, 80 MiB with this flag. The heap
#   grows as needed.
# - -Xmx4g: 8 x the default --max-request-bytes (512 MiB). A maximal TRAIN
#   (511.5 MiB, 928k x 128) on a one-node cluster, whose JVM holds the
#   leader's copy and its own trainer's chunk, needed 1.5-2.5 GiB of heap
#   and passes with this cap (VmHWM 3.3 GiB); a maximal IMPORT (64 MiB)
#   needs ~260 MiB. Without -Xmx the cap is 1/4 of the machine's memory: 6 GiB
#   here, but 1 GiB on a 4 GiB machine, where that TRAIN would run out of
#   heap. A node given a larger --max-request-bytes needs a larger -Xmx.
# - Min/MaxHeapFreeRatio 10/30 (defaults 40/70): after a full collection
#   SerialGC shrinks the heap to at most 30 % free, so memory a large request
#   used goes back to the system at the next full collection.
# - ReservedCodeCacheSize, MaxMetaspaceSize: ceilings (the default code cache
#   reserves 240 MiB, metaspace is unbounded); a node under load uses ~9 MiB of
#   code cache and ~6 MiB of metaspace beside the shared archive's 14 MiB, so
#   these cost nothing and stop a leak from growing without bound.
# - Not used: -XX:TieredStopAtLevel=1 (C1 only) saves the C2 compiler's
#   arenas (~8 MiB during a burst) but slows the loops of training and the
#   forward pass; -Xss (thread stacks are committed as used: ~2 MiB for all).
JAVA_FLAGS: tuple[str, ...] = (
    "-XX:+UseSerialGC",
    "-Xms16m",
    "-Xmx4g",
    "-XX:MinHeapFreeRatio=10",
    "-XX:MaxHeapFreeRatio=30",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:MaxMetaspaceSize=128m",
    "-Xlog:disable",
    "-Xlog:all=warning:stderr",
    "-Dfile.encoding=UTF-8",
    "-Dsun.stdout.encoding=UTF-8",
    "-Dsun.stderr.encoding=UTF-8",
)


class KotlinBuildError(RuntimeError):
    """kotlinc is missing, or kotlin/build.sh failed (the message has its output)."""


KtBuildError = KotlinBuildError  # the name the first callers used


def _newest_source(kt_dir: Path) -> float:
    newest = 0.0
    for path in [kt_dir / "build.sh", *sorted((kt_dir / "src" / "main" / "kotlin").glob("*.kt"))]:
        try:
            newest = max(newest, path.stat().st_mtime)
        except FileNotFoundError:
            pass
    return newest


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return -1.0


def archive_path(jar: Path) -> Path:
    """The class-data archive made for ``jar`` (worker.jsa beside worker.jar)."""
    return jar.with_suffix(".jsa")


def ensure_worker(kt_dir: Path = KOTLIN_DIR) -> Path:
    """The path of an up-to-date ``kotlin/worker.jar``, building it if needed.

    Raises KotlinBuildError when kotlinc is not installed or the build fails.
    """
    jar = kt_dir / "worker.jar"
    if _mtime(jar) >= _newest_source(kt_dir):
        return jar
    if shutil.which("kotlinc") is None and not os.path.exists("/usr/bin/kotlinc"):
        raise KotlinBuildError(f"the Kotlin compiler (kotlinc) is not installed: {INSTALL_HINT}")
    with open(kt_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another process may have built it while this one waited.
        if _mtime(jar) >= _newest_source(kt_dir):
            return jar
        proc = subprocess.run(
            ["bash", str(kt_dir / "build.sh")], cwd=kt_dir, capture_output=True, text=True
        )
        if proc.returncode != 0 or not jar.exists():
            raise KotlinBuildError(f"kotlin/build.sh failed:\n{proc.stdout}{proc.stderr}".rstrip())
        _make_archive(jar)
    return jar


def _make_archive(jar: Path) -> None:
    """Dumps the classes a start loads into worker.jsa (best effort: without
    it the JVM starts as usual)."""
    archive = archive_path(jar)
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}")
    try:
        subprocess.run(
            ["java", *JAVA_FLAGS, f"-XX:ArchiveClassesAtExit={tmp}", "-jar", str(jar), "--help"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if tmp.exists() and tmp.stat().st_size > 0:
            os.replace(tmp, archive)
        else:
            archive.unlink(missing_ok=True)
    except (OSError, subprocess.SubprocessError):
        archive.unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)


def java_command(jar: Path | str | None = None) -> list[str]:
    """The command that starts the worker jar (arguments follow): ``java``,
    JAVA_FLAGS, the class-data archive when it was made from this very jar,
    ``-jar jar``. Without ``jar``, ensure_worker()'s."""
    path = Path(jar) if jar is not None else ensure_worker()
    # The JVM names files in the locale's charset (sun.jnu.encoding, which no
    # -D flag changes): under the POSIX locale a non-ASCII --storage-dir
    # becomes '?'s. env execs java, so the process keeps its pid.
    cmd = ["env", "LC_ALL=C.UTF-8", "java", *JAVA_FLAGS]
    archive = archive_path(path)
    if _mtime(archive) >= _mtime(path) > 0:
        cmd.append(f"-XX:SharedArchiveFile={archive}")
    return [*cmd, "-jar", str(path)]
