"""Numeric CSV files -> float32 arrays at numpy's C speed, with clear errors.

``read_numeric(path)`` reads the file in blocks of about ``BLOCK_BYTES`` of
text. Each block goes through ``numpy.loadtxt`` (numpy's C reader since
numpy 1.23) straight into float32 and is copied into one preallocated
rows x columns array, sized from the file's length. So the client never holds
Python floats for the whole table, and its peak memory is that array plus one
block. A block the C reader refuses (or that holds a non-finite value, or has
the wrong width) is read again cell by cell with Python's ``csv`` and
``float``, which either names the first problem (file, line, column, what was
wrong) or, for what only the C reader refuses (a line of spaces, ``1_000``),
gives the same numbers. Blank, NaN and infinite cells are counted over the
rest of the file, so the message says how many there are and which is first.

The rules (the same as the CLI's before this module): a first non-blank row in
which no cell is a number is a header (its width is the expected width);
blank lines are skipped but keep their line numbers; cells may be quoted and
padded with spaces; a UTF-8 byte order mark is ignored.

Labels that are not numbers (class names in an outputs file) are another
reader's job: ``header_and_rows`` below is the part such a reader shares.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

# Text read per block: large enough that numpy's per-call overhead vanishes
# (about 17,000 rows of 50 numbers), small enough that the block's Python
# strings stay a few percent of the result for any file worth timing.
BLOCK_BYTES = 8 << 20

FLOAT32_MAX = float(np.finfo(np.float32).max)


class TableError(ValueError):
    """The file is not a numeric table; the message names file, line, column."""


@dataclass(frozen=True)
class NumericTable:
    """A numeric CSV file's rows (``values``: rows x columns float32) and
    header (``header``: the cells of the first row when it is a header)."""

    values: np.ndarray
    header: tuple[str, ...] | None


def read_numeric(path: str) -> NumericTable:
    """Read ``path``, a CSV file of numbers, into a float32 table.

    Raises ``TableError`` with one line a user can act on, such as
    ``"inputs.csv line 7: expected 2 columns, got 3"``,
    ``"inputs.csv line 4, column 2: 'abc' is not a number"``, or for missing
    values ``"inputs.csv line 4, column 2: blank cell; 12 cells are blank,
    NaN or infinite in this file (fill them in or drop those rows)"``.
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            return _read(path, f)
    except OSError as exc:
        raise TableError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: not a readable CSV file ({exc})") from None


def header_and_rows(path: str, f: IO[str]) -> tuple[tuple[str, ...] | None, int, list[str]]:
    """Where the data of an open CSV file starts.

    Returns the header (or None), the line number of the first data line, and
    the lines read past the header that hold data (at most one). Raises
    ``TableError`` for a file with no data rows.
    """
    number = 0
    for line in f:
        number += 1
        if line.strip():
            break
    else:
        raise TableError(f"{path}: no data rows")
    cells = _cells(line)
    if any(_is_number(cell) for cell in cells):
        return None, number, [line]
    return tuple(cell.strip() for cell in cells), number + 1, []


def _read(path: str, f: IO[str]) -> NumericTable:
    header, line_no, pending = header_and_rows(path, f)
    width = len(header) if header is not None else len(_cells(pending[0]))
    lines = pending + f.readlines(BLOCK_BYTES)
    rows = _Rows(width, _estimate_rows(f, lines))
    header_no = line_no - 1
    while lines:
        block = _parse_fast(lines, width)
        if block is None:
            block = _parse_slow(path, lines, line_no, width, f)
        rows.add(block)
        line_no += len(lines)
        lines = f.readlines(BLOCK_BYTES)
    if rows.count == 0:
        assert header is not None  # else the first line would be a row
        raise TableError(f"{path}: only a header row (line {header_no}), no data rows")
    return NumericTable(rows.array(), header)


def _parse_fast(lines: list[str], width: int) -> np.ndarray | None:
    """The block through numpy's C reader, or None if it needs a closer look."""
    try:
        with warnings.catch_warnings():
            # "input contained no data": a block of blank lines, fine here.
            warnings.simplefilter("ignore", UserWarning)
            block = np.loadtxt(
                lines, delimiter=",", dtype=np.float32, quotechar='"', comments=None, ndmin=2
            )
    except ValueError:
        return None
    if block.shape[0] == 0:
        return np.empty((0, width), dtype=np.float32)
    if block.shape[1] != width or not np.isfinite(block).all():
        return None
    return block


def _parse_slow(path: str, lines: list[str], first_no: int, width: int, f: IO[str]) -> np.ndarray:
    """The block cell by cell: its rows, or the first problem as TableError."""
    block = np.empty((len(lines), width), dtype=np.float32)
    count = 0
    for no, cells in _numbered_rows(lines, first_no):
        if len(cells) != width:
            raise TableError(f"{path} line {no}: expected {width} columns, got {len(cells)}")
        row = []
        for column, cell in enumerate(cells, 1):
            text = cell.strip()
            try:
                value = float(text) if text else math.nan
            except ValueError:
                raise TableError(
                    f"{path} line {no}, column {column}: {text!r} is not a number"
                ) from None
            if not math.isfinite(value):
                more = _count_missing_after(lines, no, column, first_no, f)
                raise TableError(_missing_message(path, no, column, text, 1 + more))
            if abs(value) > FLOAT32_MAX:
                raise TableError(
                    f"{path} line {no}, column {column}: {text!r} is too large"
                    f" (float32 holds up to {FLOAT32_MAX:.4g})"
                )
            row.append(value)
        block[count] = row
        count += 1
    return block[:count]


def _missing_message(path: str, no: int, column: int, text: str, total: int) -> str:
    what = "blank cell" if not text else f"{text!r} is not a finite number"
    cells = "1 cell is" if total == 1 else f"{total:,} cells are"
    return (
        f"{path} line {no}, column {column}: {what}; {cells} blank, NaN or infinite"
        " in this file (fill them in or drop those rows)"
    )


def _count_missing_after(lines: list[str], no: int, column: int, first_no: int, f: IO[str]) -> int:
    """Blank and non-finite cells after (line ``no``, ``column``): the rest of
    this block cell by cell, the rest of the file block by block."""
    missing = 0
    for row_no, cells in _numbered_rows(lines, first_no):
        if row_no == no:
            missing += _count_missing_cells(cells[column:])
        elif row_no > no:
            missing += _count_missing_cells(cells)
    for block in iter(lambda: f.readlines(BLOCK_BYTES), []):
        missing += _count_missing_block(block)
    return missing


def _count_missing_block(lines: list[str]) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(
                lines, delimiter=",", dtype=np.float64, quotechar='"', comments=None, ndmin=2
            )
    except ValueError:  # blank cells, or problems that wait their turn
        return sum(_count_missing_cells(cells) for _, cells in _numbered_rows(lines, 1))
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _count_missing_cells(cells: list[str]) -> int:
    missing = 0
    for cell in cells:
        text = cell.strip()
        try:
            value = float(text) if text else math.nan
        except ValueError:  # not a number: reported once the missing values are fixed
            continue
        missing += not math.isfinite(value)
    return missing


def _numbered_rows(lines: list[str], first_no: int) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows of a block with their line numbers."""
    for no, cells in enumerate(csv.reader(lines), first_no):
        if any(cell.strip() for cell in cells):
            yield no, cells


class _Rows:
    """A rows x width float32 array filled block by block; allocated once
    when the estimate holds, grown by half when it does not."""

    def __init__(self, width: int, estimate: int) -> None:
        self.data = np.empty((max(estimate, 1), width), dtype=np.float32)
        self.count = 0

    def add(self, block: np.ndarray) -> None:
        end = self.count + block.shape[0]
        if end > self.data.shape[0]:
            grown = np.empty(
                (max(end, self.data.shape[0] * 3 // 2), self.data.shape[1]), np.float32
            )
            grown[: self.count] = self.data[: self.count]
            self.data = grown
        self.data[self.count : end] = block
        self.count = end

    def array(self) -> np.ndarray:
        # In place (realloc): no block or view of self.data is held anywhere.
        self.data.resize((self.count, self.data.shape[1]), refcheck=False)
        return self.data


def _estimate_rows(f: IO[str], first_block: list[str]) -> int:
    """Rows in the file, from its size and the first block's mean line length
    (plus 2 %: the first block's lines may be longer than the rest's)."""
    if not first_block:
        return 1
    try:
        size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError):
        return len(first_block)
    per_line = sum(len(line) for line in first_block) / len(first_block)
    return max(int(size / max(per_line, 1.0) * 1.02), len(first_block))


def _cells(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
