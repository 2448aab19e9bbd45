"""client.tables: numeric CSV files read by numpy's C reader, block by block,
with the same numbers and the same clear errors as reading cell by cell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.csv_read import MEASURE, write_csv
from client import tables
from client.tables import TableError, read_numeric


@pytest.fixture
def csv_file(tmp_path, monkeypatch):
    """Write text to in.csv in the test's directory and return the name, so
    messages read as a user would see them."""
    monkeypatch.chdir(tmp_path)

    def write(text: str, encoding: str = "utf-8") -> str:
        (tmp_path / "in.csv").write_bytes(text.encode(encoding))
        return "in.csv"

    return write


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few lines, so a small file crosses many block boundaries."""
    monkeypatch.setattr(tables, "BLOCK_BYTES", 16)


def test_numbers_are_read_as_float32_rows_and_columns(csv_file) -> None:
    table = read_numeric(csv_file("1,2.5\n-3,4e2\n"))
    assert table.values.dtype == np.float32
    np.testing.assert_array_equal(table.values, [[1, 2.5], [-3, 400]])
    assert table.header is None


def test_a_first_row_without_numbers_is_the_header(csv_file) -> None:
    table = read_numeric(csv_file("x1, x2\n1,2\n"))
    assert table.header == ("x1", "x2")
    np.testing.assert_array_equal(table.values, [[1, 2]])


def test_the_same_numbers_as_numpy_loadtxt_on_a_generated_file(tmp_path) -> None:
    path = tmp_path / "gen.csv"
    write_csv(path, rows=3_000, cols=7, seed=3)
    expected = np.loadtxt(path, delimiter=",", dtype=np.float32, skiprows=1)
    np.testing.assert_array_equal(read_numeric(str(path)).values, expected)


def test_a_file_of_many_blocks_is_read_whole(tmp_path, small_blocks) -> None:
    path = tmp_path / "gen.csv"
    write_csv(path, rows=500, cols=3, seed=4)
    expected = np.loadtxt(path, delimiter=",", dtype=np.float32, skiprows=1)
    np.testing.assert_array_equal(read_numeric(str(path)).values, expected)


def test_a_clean_file_never_takes_the_cell_by_cell_path(tmp_path, monkeypatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("read cell by cell")

    monkeypatch.setattr(tables, "_parse_slow", refuse)
    (tmp_path / "q.csv").write_text('a,b\r\n"1", 2 \r\n\n3,"4"\r\n')
    np.testing.assert_array_equal(read_numeric(str(tmp_path / "q.csv")).values, [[1, 2], [3, 4]])


def test_an_estimate_too_small_grows_the_array(tmp_path, monkeypatch, small_blocks) -> None:
    monkeypatch.setattr(tables, "_estimate_rows", lambda f, lines: 1)
    path = tmp_path / "gen.csv"
    write_csv(path, rows=300, cols=2, seed=5)
    expected = np.loadtxt(path, delimiter=",", dtype=np.float32, skiprows=1)
    np.testing.assert_array_equal(read_numeric(str(path)).values, expected)


def test_quotes_spaces_crlf_and_a_byte_order_mark_are_accepted(csv_file) -> None:
    table = read_numeric(csv_file('\ufeffa,b\r\n"1", 2 \r\n3,"4"\r\n'))
    assert table.header == ("a", "b")
    np.testing.assert_array_equal(table.values, [[1, 2], [3, 4]])


def test_what_only_the_c_reader_refuses_reads_as_python_floats(csv_file) -> None:
    # a line of spaces is blank; 1_000 is a number to Python's float()
    table = read_numeric(csv_file("1,2\n   \n1_000,4\n"))
    np.testing.assert_array_equal(table.values, [[1, 2], [1000, 4]])


def test_a_ragged_row_names_its_line_across_blocks(csv_file, small_blocks) -> None:
    text = "".join(f"{i},{i}\n" for i in range(1, 40)) + "\n7,8,9\n"
    with pytest.raises(TableError) as info:
        read_numeric(csv_file(text))
    assert str(info.value) == "in.csv line 41: expected 2 columns, got 3"


def test_the_header_sets_the_width(csv_file) -> None:
    with pytest.raises(TableError, match=r"^in.csv line 2: expected 3 columns, got 2$"):
        read_numeric(csv_file("a,b,c\n1,2\n"))


def test_a_non_number_names_line_and_column_across_blocks(csv_file, small_blocks) -> None:
    text = "a,b\n" + "".join(f"{i},{i}\n" for i in range(30)) + "\n\n5,abc\n"
    with pytest.raises(TableError) as info:
        read_numeric(csv_file(text))
    assert str(info.value) == "in.csv line 34, column 2: 'abc' is not a number"


def test_blank_cells_are_counted_and_the_first_named(csv_file, small_blocks) -> None:
    rows = [f"{i},{i}" for i in range(60)]
    rows[10], rows[11], rows[50] = "1,", ",2", "nan,3"
    with pytest.raises(TableError) as info:
        read_numeric(csv_file("\n".join(rows) + "\n"))
    assert str(info.value) == (
        "in.csv line 11, column 2: blank cell; 3 cells are blank, NaN or infinite"
        " in this file (fill them in or drop those rows)"
    )


def test_nan_and_infinity_are_counted_and_the_first_named(csv_file) -> None:
    with pytest.raises(TableError) as info:
        read_numeric(csv_file("x,y\n1,2\n3,NaN\ninf,-inf\n"))
    assert str(info.value).startswith(
        "in.csv line 3, column 2: 'NaN' is not a finite number; 3 cells are blank, NaN or infinite"
    )


def test_a_number_beyond_float32_is_refused(csv_file) -> None:
    with pytest.raises(TableError, match=r"^in.csv line 2, column 1: '1e39' is too large"):
        read_numeric(csv_file("1,2\n1e39,2\n"))


@pytest.mark.parametrize("text, message", [
    ("", "in.csv: no data rows"),
    ("\n  \n", "in.csv: no data rows"),
    ("x,y\n\n", "in.csv: only a header row (line 1), no data rows"),
])  # fmt: skip
def test_files_without_data_rows(csv_file, text, message) -> None:
    with pytest.raises(TableError) as info:
        read_numeric(csv_file(text))
    assert str(info.value) == message


def test_a_file_that_is_not_text_is_reported(csv_file) -> None:
    with pytest.raises(TableError, match=r"^in.csv: not a readable CSV file"):
        read_numeric(csv_file("1,2\n\xff\xfe,3\n", encoding="latin-1"))


def test_a_missing_file_is_reported(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TableError, match=r"^nope.csv: cannot read"):
        read_numeric("nope.csv")


@pytest.mark.slow
def test_peak_memory_stays_within_three_times_the_file(tmp_path) -> None:
    path = tmp_path / "big.csv"
    write_csv(path, rows=100_000, cols=20, seed=6)  # about 17 MB
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, "tables", str(path)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    growth = int(out[0])
    assert growth <= 3 * path.stat().st_size, f"grew {growth / path.stat().st_size:.2f}x"


# -- chosen columns, streaming, a text column ----------------------------------------


def test_chosen_columns_in_the_order_given_and_other_columns_may_hold_text(csv_file, small_blocks):
    path = csv_file('a,kind,b\n1,cat,2\n3,dog,4\n5,"eel, spotted",6\n')
    table = read_numeric(path, [2, 0])
    np.testing.assert_array_equal(table.values, [[2, 1], [4, 3], [6, 5]])
    assert table.header == ("a", "kind", "b")


def test_chosen_columns_still_find_ragged_rows_and_bad_cells(csv_file):
    with pytest.raises(TableError, match="in.csv line 3: expected 3 columns, got 4"):
        read_numeric(csv_file("a,kind,b\n1,cat,2\n3,dog,4,9\n"), [0, 2])
    with pytest.raises(TableError, match="in.csv line 2, column 3: 'x' is not a number"):
        read_numeric(csv_file("a,kind,b\n1,cat,x\n"), [0, 2])


def test_numeric_blocks_stream_the_file_in_order(csv_file, small_blocks):
    rows = "\n".join(f"{i},{2 * i}" for i in range(50))
    with tables.NumericBlocks(csv_file("u,v\n" + rows + "\n"), [1]) as blocks:
        parts = list(blocks)
        assert blocks.header == ("u", "v") and blocks.width == 2
    assert len(parts) > 1
    np.testing.assert_array_equal(np.concatenate(parts).ravel(), [2 * i for i in range(50)])


def test_a_text_column_comes_back_as_stripped_strings(csv_file):
    header, values = tables.read_text_column(csv_file('x,y\n1, cat \n\n2,"dog"\n'), 1)
    assert header == ("x", "y") and values == ["cat", "dog"]
    with pytest.raises(TableError, match="line 3: expected 2 columns, got 1"):
        tables.read_text_column(csv_file("x,y\n1,cat\n2\n"), 1)
