"""What ``python -m client train`` sends, from the files a user has.

Two shapes of data are accepted:

- two files, ``inputs.csv`` (numbers) and ``outputs.csv`` (one column of
  labels or target values, or several columns of regression targets);
- one file with a header, ``data.csv --target species [--features a,b,c]``:
  the target column (a name from the header or a 1-based column number) is
  the output, the other columns (or those named) the inputs.

A label column is numbers or class names. It holds class names as soon as
one cell is not a number (as pandas would read it): then every cell is a
name, ``"1"`` included. Numbers stay numbers, and the node decides between
classes and regression as before. Header rows follow ``client.tables``'
rule (a first row with no number in it), except in a file that is a single
column of names: there the first row is a header only if its value does not
appear again below it (a class name always does, on any real data set).

Input and target column names from the headers travel with the request;
the model keeps them, and batch scoring maps a CSV's columns by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from client.tables import TableError, header_and_rows, read_numeric, read_text_column


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Inputs (float32 rows x columns), outputs (float32 numbers or a string
    array of class names) and the column names when the files had a header."""

    x: np.ndarray
    y: np.ndarray
    features: tuple[str, ...] | None
    targets: tuple[str, ...] | None


def two_files(inputs: str, outputs: str) -> TrainingData:
    """``inputs.csv`` and ``outputs.csv``; raises TableError naming the problem."""
    table = read_numeric(inputs)
    header, width = peek_header(outputs)
    if width == 1:
        y, y_header = read_labels(outputs, 0)
    else:
        numeric = read_numeric(outputs)
        y, y_header = numeric.values, numeric.header
    if y.shape[0] != table.values.shape[0]:
        raise TableError(
            f"{inputs} has {table.values.shape[0]} rows but {outputs} has {y.shape[0]}"
        )
    return TrainingData(table.values, y, table.header, y_header)


def one_file(path: str, target: str, features: Sequence[str] | None = None) -> TrainingData:
    """``data.csv --target T [--features a,b]``: the target and the inputs
    are columns of one file, chosen by header name or 1-based number."""
    header, width = peek_header(path)
    target_index = column_index(path, header, width, target, "--target")
    if features:
        feature_indices = [column_index(path, header, width, f, "--features") for f in features]
        if target_index in feature_indices:
            raise TableError(f"{path}: the target column {target!r} is also one of --features")
        if len(set(feature_indices)) != len(feature_indices):
            raise TableError(f"{path}: --features names a column twice")
    else:
        feature_indices = [c for c in range(width) if c != target_index]
    if not feature_indices:
        raise TableError(f"{path}: no input columns besides the target {target!r}")
    y, _ = read_labels(path, target_index, header_known=True)
    try:
        x = read_numeric(path, feature_indices).values
    except TableError as exc:
        if "is not a number" not in str(exc):
            raise
        raise TableError(
            f"{exc}. Inputs must be numbers: choose the numeric columns with --features"
        ) from None
    names = None if header is None else tuple(header[c] for c in feature_indices)
    target_name = None if header is None else (header[target_index],)
    return TrainingData(x, y, names, target_name)


def peek_header(path: str) -> tuple[tuple[str, ...] | None, int]:
    """A CSV file's header (None when its first row holds a number) and width."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            header, _, pending = header_and_rows(path, f)
    except OSError as exc:
        raise TableError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not a readable CSV file ({exc})") from None
    if header is not None:
        return header, len(header)
    import csv

    return None, len(next(csv.reader(pending)))


def column_index(
    path: str, header: tuple[str, ...] | None, width: int, column: str, option: str
) -> int:
    """The 0-based index of ``column``: a header name, else a 1-based number."""
    if header is not None and column in header:
        return header.index(column)
    if column.isdigit() and 1 <= int(column) <= width:
        return int(column) - 1
    if header is None:
        raise TableError(
            f"{path} has no header row, so {option} must be a column number from 1 to {width}; "
            f"got {column!r}"
        )
    raise TableError(
        f"{path} has no column {column!r} ({option}); its columns are: {', '.join(header)}"
    )


def read_labels(
    path: str, column: int, header_known: bool = False
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """One column of labels or targets: float32 numbers, or a string array
    of class names; and the column's header name when there is one.

    ``header_known``: the file's header was decided by its other columns
    (one-file data), so a first row of names is a header for certain.
    """
    header, values = read_text_column(path, column)
    name = None if header is None else (header[column],)
    if all(_is_number(v) for v in values):
        return read_numeric(path, [column]).values, name
    if header is not None and not header_known and header[column] in set(values):
        # A single column of names with no header: the first row was data.
        values.insert(0, header[column])
        name = None
    return np.asarray(values), name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
