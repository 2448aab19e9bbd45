"""What `python -m client train` reads: two files or one, numbers or class names."""

from __future__ import annotations

import numpy as np
import pytest

from client.datasets import one_file, two_files
from client.tables import TableError

IRIS_LIKE = (
    "sepal_length,sepal_width,species,petal_length\n"
    "5.1,3.5,setosa,1.4\n"
    "7.0,3.2,versicolor,4.7\n"
    "6.3,3.3,virginica,6.0\n"
    "4.9,3.0,setosa,1.4\n"
)


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def test_two_files_with_class_names_and_headers(write):
    data = two_files(
        write("x.csv", "a,b\n1,2\n3,4\n5,6\n"), write("y.csv", "species\ncat\ndog\ncat\n")
    )
    np.testing.assert_array_equal(data.x, [[1, 2], [3, 4], [5, 6]])
    assert data.y.tolist() == ["cat", "dog", "cat"]
    assert data.features == ("a", "b") and data.targets == ("species",)


def test_a_names_column_without_header_keeps_its_first_row(write):
    # "cat" appears again below, so the first row is data, not a header.
    data = two_files(write("x.csv", "1,2\n3,4\n5,6\n"), write("y.csv", "cat\ndog\ncat\n"))
    assert data.y.tolist() == ["cat", "dog", "cat"]
    assert data.features is None and data.targets is None


def test_numeric_labels_stay_numbers_and_a_single_name_makes_every_cell_a_name(write):
    x = write("x.csv", "1,2\n3,4\n5,6\n")
    numbers = two_files(x, write("y.csv", "y\n0\n1\n2\n"))
    assert numbers.y.dtype == np.float32 and numbers.y.ravel().tolist() == [0, 1, 2]
    assert numbers.targets == ("y",)
    mixed = two_files(x, write("m.csv", "label\n1\n2\nthree\n"))
    assert mixed.y.tolist() == ["1", "2", "three"]


def test_several_target_columns_are_regression_targets(write):
    data = two_files(write("x.csv", "1\n2\n"), write("y.csv", "u,v\n0.5,1\n1.5,2\n"))
    assert data.y.shape == (2, 2) and data.targets == ("u", "v")


def test_two_files_must_have_the_same_rows_and_labels_no_blank_cell(write):
    x = write("x.csv", "1,2\n3,4\n5,6\n")
    with pytest.raises(TableError, match="has 3 rows but .*y.csv has 2"):
        two_files(x, write("y.csv", "cat\ncat\n"))
    with pytest.raises(TableError, match="line 3, column 3: blank cell; 2 cells are blank"):
        one_file(write("b.csv", "a,b,label\n1,2,cat\n3,4,\n5,6, \n"), "label")


def test_one_file_by_target_name_takes_the_other_columns_as_inputs(write):
    data = one_file(write("iris.csv", IRIS_LIKE), "species")
    assert data.features == ("sepal_length", "sepal_width", "petal_length")
    assert data.targets == ("species",)
    assert data.y.tolist() == ["setosa", "versicolor", "virginica", "setosa"]
    np.testing.assert_allclose(data.x[1], [7.0, 3.2, 4.7])


def test_one_file_with_chosen_features_in_the_order_given(write):
    data = one_file(write("iris.csv", IRIS_LIKE), "species", ["petal_length", "sepal_length"])
    assert data.features == ("petal_length", "sepal_length")
    np.testing.assert_allclose(data.x[0], [1.4, 5.1], rtol=1e-6)


def test_one_file_without_header_by_column_number(write):
    data = one_file(write("d.csv", "1,2,cat\n3,4,dog\n5,6,cat\n"), "3")
    assert data.y.tolist() == ["cat", "dog", "cat"] and data.features is None
    np.testing.assert_array_equal(data.x, [[1, 2], [3, 4], [5, 6]])


def test_one_file_errors_name_the_columns(write):
    path = write("iris.csv", IRIS_LIKE)
    with pytest.raises(TableError, match="no column 'kind' .*columns are: sepal_length"):
        one_file(path, "kind")
    with pytest.raises(TableError, match="also one of --features"):
        one_file(path, "species", ["species", "sepal_length"])
    with pytest.raises(TableError, match="'setosa' is not a number.*--features"):
        one_file(path, "sepal_length")
    with pytest.raises(TableError, match="no header row, so --target must be a column number"):
        one_file(write("d.csv", "1,2,cat\n"), "species")
    with pytest.raises(TableError, match="line 3: expected 3 columns, got 2"):
        one_file(write("r.csv", "a,b,c\n1,2,x\n3,4\n"), "c")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "x.csv"], "train needs an outputs file, or --target COLUMN"),
        (["train", "x.csv", "y.csv", "--target", "a"], "an outputs file or --target, not both"),
        (["train", "x.csv", "y.csv", "--features", "a"], "--features goes with --target"),
        (["predict", "m1"], 'predict needs rows ("1,0;0,1") or --csv FILE'),
        (["predict", "m1", "1,2", "--proba"], "--out and --proba go with --csv FILE"),
    ],
)
def test_the_cli_says_which_data_arguments_go_together(args, message, capsys):
    from client.cli import main

    # Nothing is sent: no node listens on port 1.
    assert main(["--nodes", "127.0.0.1:1", "--timeout", "0.2", "--retries", "0", *args]) == 2
    assert message in capsys.readouterr().err
