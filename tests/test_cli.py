"""``python -m client``: table parsing, output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from client.cli import (
    EXIT_ERROR_REPLY,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    InputError,
    main,
    parse_inline,
    read_csv,
)
from tests.test_client_fakenode import FakeNode, unused_address
from zmqnode.transport.wire import ErrorCode, array_to_frame, error_reply, ok_reply, read_array

FAST = ["--timeout", "0.3", "--retries", "0"]

MODELS = [
    {"model_id": "m1", "created": 1767225600.0, "task": "classification",
     "inputs": 2, "outputs": 2, "size_bytes": 2048, "rounds_run": 3,
     "final": {"loss": 0.12, "val_loss": 0.2, "val_accuracy": 0.9751}},
    {"model_id": "m2", "created": 1767312000.5, "task": "regression",
     "inputs": 3, "outputs": 1, "size_bytes": 512},
]  # fmt: skip
M1_TRAINING = {
    "options": {"epochs": 30, "learning_rate": 0.01},
    "rows": {"train": 90, "validation": 10},
    "chunks": [45, 45],
    "rounds": [
        {"round": 0, "epochs": 10, "loss": 0.61, "val_loss": 0.55, "val_accuracy": 0.7},
        {"round": 1, "epochs": 20, "loss": 0.31, "val_loss": 0.2, "val_accuracy": 0.9751},
        {"round": 2, "epochs": 30, "loss": 0.12, "val_loss": 0.23, "val_accuracy": 0.9},
    ],
    "best_round": 1,
    "stopped_early": False,
}


@pytest.fixture
def node():
    def handler(h, b):
        if h["type"] == "LIST":
            return ok_reply(h, models=MODELS, node="127.0.0.1:9000")
        if h["type"] == "INFO" and h["model_id"] == "m1":
            return ok_reply(h, model=MODELS[0], metadata={"training": M1_TRAINING})
        if h["type"] == "INFO":
            return error_reply(h, ErrorCode.NOT_FOUND, f"model {h['model_id']!r} not found")
        if h["type"] == "TRAIN":
            return ok_reply(h, model_id="m3", metrics={"loss": 0.01}, trainers=["a", "b"],
                            warnings=["small data set"])  # fmt: skip
        if h["type"] == "PREDICT":
            rows = read_array(h, b, "inputs", max_bytes=1 << 20)
            desc, blob = array_to_frame(rows[:, :1].astype(np.int64).ravel(), frame=0)
            return ok_reply(h, model_id=h["model_id"], outputs=desc, node="n1"), [blob]
        return error_reply(h, ErrorCode.UNKNOWN_TYPE, h["type"])

    with FakeNode(handler) as fake:
        yield fake


def at(fake: FakeNode) -> list[str]:
    return ["--nodes", fake.address, *FAST]


# -- parsing -------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return name


def test_csv_ragged_row_is_reported_with_file_and_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = write(tmp_path, "inputs.csv", "0,0\n0,1\n1,0\n1,1\n0,0\n1,1\n1,0,1\n")
    with pytest.raises(InputError) as info:
        read_csv(name)
    assert str(info.value) == "inputs.csv line 7: expected 2 columns, got 3"


def test_csv_non_number_is_reported_with_line_and_column(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = write(tmp_path, "inputs.csv", "a,b\n0,0\n0,1\n1,abc\n")
    with pytest.raises(InputError) as info:
        read_csv(name)
    assert str(info.value) == "inputs.csv line 4, column 2: 'abc' is not a number"


def test_csv_header_row_is_detected_and_skipped(tmp_path) -> None:
    with_header = read_csv(str(tmp_path / write(tmp_path, "h.csv", "x1,x2\n1,2\n3,4\n")))
    without = read_csv(str(tmp_path / write(tmp_path, "n.csv", "1,2\n3,4\n")))
    np.testing.assert_array_equal(with_header, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(without, [[1, 2], [3, 4]])
    assert with_header.dtype == np.float32


def test_csv_header_width_sets_the_expected_columns(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "in.csv", "x1,x2,x3\n1,2\n")
    with pytest.raises(InputError, match="in.csv line 2: expected 3 columns, got 2"):
        read_csv("in.csv")


def test_csv_blank_lines_are_skipped_but_line_numbers_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "in.csv", "1,2\n\n3,4\n\n5,x\n")
    with pytest.raises(InputError, match="in.csv line 5, column 2: 'x' is not a number"):
        read_csv("in.csv")


@pytest.mark.parametrize("text, message", [
    ("", "no data rows"),
    ("x,y\n", "only a header row"),
    ("1,nan\n", "line 1, column 2: 'nan' is not a finite number"),
])  # fmt: skip
def test_csv_other_problems(tmp_path, monkeypatch, text, message) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "in.csv", text)
    with pytest.raises(InputError, match=message):
        read_csv("in.csv")


def test_csv_missing_file_is_reported() -> None:
    with pytest.raises(InputError, match="nope.csv: cannot read"):
        read_csv("nope.csv")


def test_inline_table_parses_rows_and_columns() -> None:
    np.testing.assert_array_equal(parse_inline("0,0;0,1;1,0;1,1"), [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(parse_inline("0;1;1;0"), [[0], [1], [1], [0]])
    np.testing.assert_array_equal(parse_inline(" 1.5 , -2 "), [[1.5, -2]])


@pytest.mark.parametrize("text, message", [
    ("0,0;0", "inputs row 2: expected 2 columns, got 1"),
    ("0,0;0,q", "inputs row 2, column 2: 'q' is not a number"),
    ("", "inputs: empty"),
])  # fmt: skip
def test_inline_table_errors_name_row_and_column(text, message) -> None:
    with pytest.raises(InputError, match=message):
        parse_inline(text, "inputs")


# -- commands against a fake node ------------------------------------------------


def test_list_json_prints_only_json(node, capsys) -> None:
    assert main([*at(node), "--json", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    parsed = json.loads(out)
    assert parsed["models"] == MODELS
    assert node.requests[0][0]["type"] == "LIST"


def test_global_options_may_follow_the_command(node, capsys) -> None:
    assert main(["list", "--json", *at(node)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["models"][1]["model_id"] == "m2"


def test_list_table_for_people(node, capsys) -> None:
    assert main([*at(node), "list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "m1" in out and "m2" in out and "regression" in out and "2.0 KiB" in out
    assert "2026-01-01 00:00:00Z" in out  # created: Unix seconds shown as UTC
    assert "acc 0.975" in out  # the best round's validation accuracy, summarized


def test_info_shows_every_training_round_and_marks_the_kept_one(node, capsys) -> None:
    assert main([*at(node), "info", "m1"]) == EXIT_OK
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.count("│") >= 5]
    assert len(rows) == 3, out  # one table row per round
    assert "1 *" in rows[1] and "0.9751" in rows[1] and "*" not in rows[0] + rows[2]
    assert "validation accuracy" in " ".join(out.split())
    assert "90 training, 10 validation" in out


def test_info_json_carries_the_per_round_metadata(node, capsys) -> None:
    assert main([*at(node), "--json", "info", "m1"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["model_id"] == "m1"
    assert [r["val_accuracy"] for r in result["metadata"]["training"]["rounds"]] == [
        0.7,
        0.9751,
        0.9,
    ]


def test_train_inline_sends_arrays_and_options(node, capsys) -> None:
    code = main([*at(node), "--json", "train-inline", "0,0;0,1;1,0;1,1", "0;1;1;0",
                 "--hidden", "8,8", "--epochs", "50", "--lr", "0.1", "--seed", "7",
                 "--task", "classification", "--request-id", "cli-1"])  # fmt: skip
    assert code == EXIT_OK
    header, blobs = node.requests[0]
    assert header["id"] == "cli-1"
    assert header["options"] == {"hidden_layers": [8, 8], "epochs": 50, "learning_rate": 0.1,
                                 "seed": 7, "task": "classification"}  # fmt: skip
    np.testing.assert_array_equal(
        read_array(header, blobs, "outputs", max_bytes=64), [[0], [1], [1], [0]]
    )
    assert json.loads(capsys.readouterr().out)["model_id"] == "m3"


def test_train_csv_reports_the_bad_line_and_sends_nothing(
    node, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "inputs.csv", "0,0\n0,1\n1,0\n1,abc\n")
    write(tmp_path, "outputs.csv", "0\n1\n1\n0\n")
    assert main([*at(node), "train", "inputs.csv", "outputs.csv"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "error: inputs.csv line 4, column 2: 'abc' is not a number\n"
    assert node.requests == []


def test_train_csv_row_count_mismatch_is_a_usage_error(node, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "inputs.csv", "0,0\n0,1\n")
    write(tmp_path, "outputs.csv", "0\n1\n1\n")
    assert main([*at(node), "train", "inputs.csv", "outputs.csv"]) == EXIT_USAGE
    assert "inputs.csv has 2 rows but outputs.csv has 3" in capsys.readouterr().err
    assert node.requests == []


def test_train_csv_for_people_shows_model_and_warnings(node, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "inputs.csv", "a,b\n0,0\n1,1\n")
    write(tmp_path, "outputs.csv", "y\n0\n1\n")
    assert main([*at(node), "train", "inputs.csv", "outputs.csv"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "m3" in out and "small data set" in out
    assert node.requests[0][0]["inputs"]["shape"] == [2, 2]


def test_predict_prints_each_row_output(node, capsys) -> None:
    assert main([*at(node), "--json", "predict", "m1", "1,0;0,1"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["outputs"] == [1, 0]
    assert result["inputs"] == [[1.0, 0.0], [0.0, 1.0]]
    assert result["node"] == "n1"


def test_predict_for_people_shows_a_table_of_rows_and_outputs(node, capsys) -> None:
    assert main([*at(node), "predict", "m1", "1,0;0,1"]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [
        "model m1 (served by n1)",
        "row  input  output",
        "  1  1, 0   1",
        "  2  0, 1   0",
    ]


@pytest.mark.parametrize("rows", ["-1,0", "-1.5,2;0,-3", "-.5,1e-3", "-1e2,4"])
def test_inline_rows_may_start_with_a_minus_sign(node, capsys, rows) -> None:
    assert main([*at(node), "predict", "m1", rows, "--json"]) == EXIT_OK
    expected = parse_inline(rows)
    header, blobs = node.requests[0]
    np.testing.assert_array_equal(read_array(header, blobs, "inputs", max_bytes=64), expected)
    assert json.loads(capsys.readouterr().out)["inputs"] == expected.tolist()


def test_training_rows_may_start_with_a_minus_sign(node) -> None:
    assert main([*at(node), "--json", "train-inline", "-1,0;1,-1", "-1;1", "--epochs", "5"]) == 0
    header, blobs = node.requests[0]
    assert header["options"] == {"epochs": 5}
    np.testing.assert_array_equal(
        read_array(header, blobs, "inputs", max_bytes=64), [[-1, 0], [1, -1]]
    )
    np.testing.assert_array_equal(read_array(header, blobs, "outputs", max_bytes=64), [[-1], [1]])


def test_error_reply_exits_1_with_one_readable_line(node, capsys) -> None:
    assert main([*at(node), "info", "ghost"]) == EXIT_ERROR_REPLY
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert "NOT_FOUND" in lines[0] and node.address in lines[0]
    assert "ghost" in lines[0] and "python -m client list" in lines[0]
    assert captured.out == ""


def test_error_reply_in_json_mode_prints_a_json_error(node, capsys) -> None:
    assert main([*at(node), "--json", "info", "ghost"]) == EXIT_ERROR_REPLY
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ERROR" and result["code"] == "NOT_FOUND"
    assert result["node"] == node.address


def test_no_node_exits_3_and_says_to_check_the_nodes(capsys) -> None:
    dead = unused_address()
    assert main(["--nodes", dead, *FAST, "status"]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert dead in err and "running" in err


@pytest.mark.parametrize("argv", [
    ["frobnicate"],
    [],
    ["predict", "m1"],
    ["train-inline", "0;1", "0;1", "--epochs", "-3"],
    ["--host", "h", "--nodes", "127.0.0.1:1", "status"],
    ["--nodes", "nohostport", "status"],
])  # fmt: skip
def test_usage_errors_exit_2(argv, capsys) -> None:
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "client", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "train-inline" in result.stdout
