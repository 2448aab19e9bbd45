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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


def read_numeric(path: str, columns: Sequence[int] | None = None) -> NumericTable:
    """Read ``path``, a CSV file of numbers, into a float32 table.

    ``columns`` (0-based, in the order wanted) reads only those columns; the
    others may hold anything, but every row still has the file's width.
    Raises ``TableError`` with one line a user can act on, such as
    ``"inputs.csv line 7: expected 2 columns, got 3"``,
    ``"inputs.csv line 4, column 2: 'abc' is not a number"``, or for missing
    values ``"inputs.csv line 4, column 2: blank cell; 12 cells are blank,
    NaN or infinite in this file (fill them in or drop those rows)"``.
    """
    with NumericBlocks(path, columns) as blocks:
        rows = _Rows(blocks.selected_width, blocks.estimated_rows())
        for block in blocks:
            rows.add(block)
        if rows.count == 0:
            raise TableError(f"{path}: only a header row (line {blocks.header_line}), no data rows")
        return NumericTable(rows.array(), blocks.header)


class NumericBlocks:
    """A numeric CSV file read block by block (for files too large to hold):
    iterate for float32 arrays of about ``BLOCK_BYTES`` of text each, in file
    order, with the same checks and messages as ``read_numeric``.

    ``header`` is the first row's cells when it is a header; ``width`` the
    file's columns; ``columns`` the 0-based columns read (all by default).
    """

    def __init__(self, path: str, columns: Sequence[int] | None = None) -> None:
        self.path = path
        try:
            self._file: IO[str] = open(path, encoding="utf-8-sig")
        except OSError as exc:
            raise TableError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            with _readable(path):
                self.header, self._line_no, pending = header_and_rows(path, self._file)
        except BaseException:
            self._file.close()
            raise
        self.header_line = self._line_no - 1  # when there is a header
        self.width = len(self.header) if self.header is not None else len(_cells(pending[0]))
        if columns is not None and not all(0 <= c < self.width for c in columns):
            self._file.close()
            raise TableError(f"{path}: has {self.width} columns; cannot read columns {columns}")
        self.columns = None if columns is None else list(columns)
        self._lines = pending + self._file.readlines(BLOCK_BYTES)

    @property
    def selected_width(self) -> int:
        return self.width if self.columns is None else len(self.columns)

    def estimated_rows(self) -> int:
        return _estimate_rows(self._file, self._lines)

    @property
    def bytes_read(self) -> int | None:
        """How far into the file the reader is, in bytes (None if unknown): for
        a progress bar."""
        try:
            return os.lseek(self._file.fileno(), 0, os.SEEK_CUR)
        except (OSError, ValueError):
            return None

    def __iter__(self) -> Iterator[np.ndarray]:
        with _readable(self.path):
            while self._lines:
                lines = self._lines
                block = _parse_fast(lines, self.width, self.columns)
                if block is None:
                    block = _parse_slow(
                        self.path, lines, self._line_no, self.width, self._file, self.columns
                    )
                self._line_no += len(lines)
                self._lines = self._file.readlines(BLOCK_BYTES)
                yield block

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> NumericBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _readable(path: str) -> Iterator[None]:
    """Read errors as TableError naming the file."""
    try:
        yield
    except OSError as exc:
        raise TableError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: not a readable CSV file ({exc})") from None


def read_text_column(path: str, column: int) -> tuple[tuple[str, ...] | None, list[str]]:
    """One column of a CSV file as stripped strings (class names, or numbers
    to be told apart from names), and the header when there is one.

    Every non-blank row must have the file's width (checked here, so a file
    whose other columns go through numpy's reader is checked row by row too);
    a blank cell is an error naming the first one and counting them.
    """
    with _readable(path), open(path, encoding="utf-8-sig", newline="") as f:
        header, line_no, pending = header_and_rows(path, f)
        width = len(header) if header is not None else len(_cells(pending[0]))
        values: list[str] = []
        blank: list[int] = []
        for no, cells in enumerate(csv.reader([*pending, *f]), line_no):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != width:
                raise TableError(f"{path} line {no}: expected {width} columns, got {len(cells)}")
            text = cells[column].strip()
            if not text:
                blank.append(no)
            values.append(text)
    if blank:
        count = "1 cell is" if len(blank) == 1 else f"{len(blank):,} cells are"
        raise TableError(
            f"{path} line {blank[0]}, column {column + 1}: blank cell; {count} blank in this "
            "column (fill them in or drop those rows)"
        )
    if not values:
        raise TableError(f"{path}: only a header row (line {line_no - 1}), no data rows")
    return header, values


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


def _parse_fast(lines: list[str], width: int, columns: list[int] | None) -> np.ndarray | None:
    """The block through numpy's C reader, or None if it needs a closer look."""
    if columns is not None and not all(line.count(",") == width - 1 for line in lines):
        return None  # blank lines, a quoted comma or a ragged row: numpy would not say
    try:
        with warnings.catch_warnings():
            # "input contained no data": a block of blank lines, fine here.
            warnings.simplefilter("ignore", UserWarning)
            block = np.loadtxt(
                lines,
                delimiter=",",
                dtype=np.float32,
                quotechar='"',
                comments=None,
                ndmin=2,
                usecols=columns,
            )
    except ValueError:
        return None
    want = width if columns is None else len(columns)
    if block.shape[0] == 0:
        return np.empty((0, want), dtype=np.float32)
    if block.shape[1] != want or not np.isfinite(block).all():
        return None
    return block


def _parse_slow(
    path: str, lines: list[str], first_no: int, width: int, f: IO[str], columns: list[int] | None
) -> np.ndarray:
    """The block cell by cell: its rows, or the first problem as TableError."""
    wanted = list(range(width)) if columns is None else columns
    block = np.empty((len(lines), len(wanted)), dtype=np.float32)
    count = 0
    for no, cells in _numbered_rows(lines, first_no):
        if len(cells) != width:
            raise TableError(f"{path} line {no}: expected {width} columns, got {len(cells)}")
        row = []
        for column in (c + 1 for c in wanted):
            cell = cells[column - 1]
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
