"""Batch scoring: ``python -m client predict <id> --csv in.csv [--out out.csv] [--proba]``.

The file is streamed: ``client.tables.NumericBlocks`` yields float32 blocks of
about 8 MiB of text, each block goes to the cluster in PREDICT requests of at
most ``ROWS_PER_REQUEST`` rows (fewer if the cluster's ``max_request_bytes``
says so), and each reply is written out before the next block is read. So
the client holds one block, one request and its reply, whatever the file's
size. One output line per input row, in the file's order.

Columns: when the file has a header and the model kept its feature names,
the model's columns are picked by name (in any order; other columns, such as
the target, are ignored). Otherwise the file's columns are the model's
inputs, in order, and the widths must agree.

Output: a header line (the model's target name, or ``prediction``; with
``--proba`` one ``proba_<class>`` column per class), then the predicted label
as the model holds it (a name or a number) or the regression values, and the
probabilities, as ``%.9g`` (enough digits to give back the float32 exactly).

numpy and rich are imported here only: ``python -m client predict`` with
inline rows must not pay for them (tests/test_client_startup.py).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from client.api import Client, ClientError, ClusterUnavailable, Reply

if TYPE_CHECKING:
    import numpy as np

    from client.tables import NumericBlocks

# Rows per PREDICT request. The node's serving time per request is nearly flat
# up to tens of thousands of rows, so bigger requests amortize the round trip;
# 65,536 rows x 100 columns is 25 MiB, well under the default 512 MiB limit,
# and the reply (an int64 label per row, or a few float32 per row) stays small.
ROWS_PER_REQUEST = 65_536

# Room left in max_request_bytes for the request's JSON header and framing.
HEADER_ALLOWANCE = 64 << 10

# Requests up to this size are not worth a STATUS to learn the limit (the
# client's own check_size skips them too); the node still enforces it.
LARGE_ENOUGH_TO_ASK = 1 << 20

# '%.9g' prints any float32 so that it reads back as the same float32.
FLOAT_FORMAT = "%.9g"


class ScoringError(ValueError):
    """A problem with the file or the command (one readable line); the CLI
    exits 2 for it, as for any ValueError."""


def score_csv(
    client: Client,
    model_id: str,
    path: str,
    *,
    out: str | None,
    proba: bool,
    progress: bool,
) -> dict[str, Any]:
    """Predict every row of the CSV file ``path`` with ``model_id``; write the
    predictions as CSV to ``out`` (atomically: a temporary file beside it,
    renamed at the end) or to stdout when ``out`` is None.

    ``proba`` adds each class's probability (classification models only);
    ``progress`` draws a progress bar on stderr, by bytes of the file read.

    Returns a summary: ``model_id``, ``rows``, ``batches`` (PREDICT requests
    sent), ``out`` (the path, or ``"-"``), ``seconds``, ``rows_per_second``.
    Raises ``ScoringError`` or ``client.tables.TableError`` (both ValueError,
    naming the file and, for bad cells, line and column) for a file that
    does not fit the model, ``ClientError`` for a refusal by the cluster.
    """
    from client.tables import NumericBlocks

    start = time.perf_counter()
    model = client.info(model_id)
    classes = list(model.get("classes") or [])
    if proba and not classes:
        raise ScoringError(
            f"--proba needs a classification model; {model_id} is a "
            f"{model.get('task', 'regression')} model (it predicts values, not classes)"
        )
    header = _read_header(path)
    columns = _pick_columns(path, header, model)
    rows = batches = 0
    stopped: str | None = None
    with NumericBlocks(path, columns) as blocks:
        _check_width(path, blocks, model)
        per_request = rows_per_request(client, blocks.selected_width)
        try:
            with _output(out) as sink, _Progress(path, progress) as bar:
                writer = _Writer(sink, model, proba)
                done = blocks.bytes_read
                for block in blocks:
                    read_to = blocks.bytes_read  # the reader is one block ahead
                    for first in range(0, block.shape[0], per_request):
                        part = block[first : first + per_request]
                        reply = client.predict_reply(model_id, part, proba=proba)
                        writer.write(reply, part.shape[0])
                        rows += part.shape[0]
                        batches += 1
                    bar.update(done, rows)
                    done = read_to
                if rows == 0:
                    raise ScoringError(f"{path}: only a header row, no data rows")
                writer.finish()
                bar.update(bar.total, rows)
        except BrokenPipeError:
            if out is not None:
                raise
            # The reader of stdout stopped (`| head`): stop scoring, quietly,
            # as other command-line tools do; what it read was complete lines.
            _silence_stdout()
            stopped = "stdout closed"
    seconds = time.perf_counter() - start
    return {
        "model_id": model_id,
        "rows": rows,
        "batches": batches,
        "out": out if out is not None else "-",
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds > 0 else None,
        **({"stopped": stopped} if stopped else {}),
    }


def rows_per_request(client: Client, columns: int) -> int:
    """Rows per PREDICT request: ``ROWS_PER_REQUEST``, or fewer so that the
    inputs (float32) fit the cluster's ``max_request_bytes``."""
    row_bytes = 4 * max(columns, 1)
    if ROWS_PER_REQUEST * row_bytes <= LARGE_ENOUGH_TO_ASK:
        return ROWS_PER_REQUEST
    try:
        limits = client.status().get("limits")
    except (ClientError, ClusterUnavailable):
        return ROWS_PER_REQUEST  # the node still enforces its limit
    allowed = limits.get("max_request_bytes") if isinstance(limits, dict) else None
    if not isinstance(allowed, int):
        return ROWS_PER_REQUEST
    return max(1, min(ROWS_PER_REQUEST, (allowed - HEADER_ALLOWANCE) // row_bytes))


# -- columns -----------------------------------------------------------------------


def _read_header(path: str) -> tuple[str, ...] | None:
    """The file's header row, or None; TableError for an unreadable file."""
    from client.tables import NumericBlocks

    # Only the first lines are parsed; NumericBlocks also reads up to one block
    # of text, which is cheap next to the whole file and keeps the same errors.
    with NumericBlocks(path) as peek:
        return peek.header


def _pick_columns(
    path: str, header: tuple[str, ...] | None, model: dict[str, Any]
) -> list[int] | None:
    """The file's columns (0-based) that feed the model, in the model's order,
    when both the file and the model have names; None: all, in order."""
    features = model.get("features")
    if header is None or not features:
        return None
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        positions.setdefault(name, []).append(i)
    missing = [name for name in features if name not in positions]
    if missing:
        which = ", ".join(repr(n) for n in missing)
        raise ScoringError(
            f"{path}: no column named {which} (the model's inputs are "
            f"{', '.join(features)}; the file's columns are {', '.join(header)})"
        )
    twice = [name for name in features if len(positions[name]) > 1]
    if twice:
        raise ScoringError(
            f"{path}: column {twice[0]!r} appears {len(positions[twice[0]])} times in the "
            "header; the model's inputs are picked by name, so each must appear once"
        )
    picked = [positions[name][0] for name in features]
    # The file's own layout: read every column, which spares the reader's
    # per-line check that chosen columns need (about a tenth of the parse).
    return None if picked == list(range(len(header))) else picked


def _check_width(path: str, blocks: NumericBlocks, model: dict[str, Any]) -> None:
    """Without names to go by, the file's width must be the model's."""
    want = model.get("inputs")
    if blocks.columns is not None or not isinstance(want, int) or blocks.width == want:
        return
    got = f"the file has {blocks.width}"
    if blocks.header is not None:
        got += f" ({', '.join(blocks.header)})"
        why = "the model has no feature names (it was trained without a header)"
    else:
        features = model.get("features")
        why = "the file has no header row"
        if features:
            why += f" to match the model's inputs ({', '.join(features)}) by name"
    raise ScoringError(
        f"{path}: {why}, so the columns are taken in order: the model takes {want} columns, {got}"
    )


# -- output ------------------------------------------------------------------------


class _Writer:
    """Replies -> CSV lines: the header before the first, then one line per row."""

    def __init__(self, sink: IO[str], model: dict[str, Any], proba: bool) -> None:
        self.sink = sink
        self.model = model
        self.proba = proba
        self.started = False
        self.cells: np.ndarray | None = None  # each class's label as a CSV cell

    def write(self, reply: Reply, n_rows: int) -> None:
        """The lines of one PREDICT reply for ``n_rows`` rows."""
        outputs = reply.array("outputs")
        if outputs.shape[0] != n_rows:
            raise ClientError(
                "MALFORMED",
                f"PREDICT reply has {outputs.shape[0]} outputs for {n_rows} rows",
                node=reply.node,
            )
        classes = reply.header.get("classes") or self.model.get("classes") or []
        if classes:
            names, lines = self._classified(reply, outputs, classes)
        else:
            values = outputs.reshape(n_rows, -1)
            names, lines = self._regression_names(values.shape[1]), _formatted(values)
        if not self.started:
            self.sink.write(",".join(names) + "\n")
            self.started = True
        self.sink.write("\n".join(lines) + "\n")

    def _classified(
        self, reply: Reply, outputs: np.ndarray, classes: list[Any]
    ) -> tuple[list[str], list[str]]:
        import numpy as np

        if self.cells is None:
            self.cells = np.asarray([_cell(str(c)) for c in classes], dtype=object)
        if outputs.size and (outputs.min() < 0 or outputs.max() >= len(classes)):
            raise ClientError(
                "MALFORMED",
                f"PREDICT reply: class indices outside the {len(classes)} classes",
                node=reply.node,
            )
        labels: list[str] = self.cells[outputs].tolist()
        if not self.proba:
            return [self._target()], labels
        probabilities = _formatted(reply.array("probabilities"))
        names = [self._target(), *(_cell(f"proba_{c}") for c in classes)]
        return names, [f"{a},{b}" for a, b in zip(labels, probabilities, strict=True)]

    def finish(self) -> None:
        self.sink.flush()

    def _target(self) -> str:
        targets = self.model.get("targets") or []
        return _cell(str(targets[0])) if targets else "prediction"

    def _regression_names(self, k: int) -> list[str]:
        targets = self.model.get("targets") or []
        if len(targets) == k:
            return [_cell(str(t)) for t in targets]
        return ["prediction"] if k == 1 else [f"prediction_{i}" for i in range(1, k + 1)]


def _formatted(values: np.ndarray) -> list[str]:
    """Each row of a rows x k float array as ``%.9g`` cells joined by commas."""
    fmt = ",".join([FLOAT_FORMAT] * values.shape[1])
    return [fmt % tuple(row) for row in values.tolist()]


def _cell(text: str) -> str:
    """``text`` as one CSV cell: quoted when it holds a comma, quote, line
    break or edge spaces (which a reader would strip)."""
    if any(c in text for c in ',"\n\r') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


@contextmanager
def _output(out: str | None) -> Iterator[IO[str]]:
    """Stdout, or a temporary file beside ``out`` renamed to it on success
    (so a failure never leaves half a file under the name asked for)."""
    if out is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    directory, name = os.path.split(os.path.abspath(out))
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # Mode "x" (new file, umask permissions, like any file a user writes).
        f = open(temporary, "x", encoding="utf-8", newline="")
    except OSError as exc:
        raise ScoringError(f"{out}: cannot write ({exc.strerror or exc})") from None
    try:
        with f:
            yield f
        os.replace(temporary, out)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does
    not fail again on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class _Progress:
    """A rich progress bar on stderr by bytes of the file read; does nothing
    when disabled."""

    def __init__(self, path: str, enabled: bool) -> None:
        self.enabled = enabled
        self.path = path
        self.bar: Any = None
        self.task: Any = None
        self.total = 0

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        try:
            self.total = os.path.getsize(self.path)
        except OSError:
            self.total = 0
        self.bar = Progress(
            TextColumn("scoring {task.fields[rows]:,} rows"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("score", total=self.total or None, rows=0)
        return self

    def update(self, position: int | None, rows: int) -> None:
        """The file's bytes up to ``position`` (None: unknown) are scored."""
        if self.bar is None:
            return
        if position is None:
            self.bar.update(self.task, rows=rows)
        else:
            self.bar.update(self.task, completed=min(position, self.total), rows=rows)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
