"""Small pieces several benches share."""

from __future__ import annotations

import os
import subprocess
from typing import Any


def print_measures(title: str, result: dict[str, Any]) -> None:
    """A two-column table (measure, value) of a flat result, with rich."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 5 s."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def executable(pid: int) -> str | None:
    """The file name of the program ``pid`` runs (``worker``, ``python3.11``), from /proc.

    A binary replaced while it runs (``go build`` renames a new ``go/worker``
    over it) reads as ``worker (deleted)``: still the program that runs.
    """
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)")
    except OSError:
        return None
