"""``python -m client``: the command-line client.

    python -m client [--host H --port P | --nodes H:P,H:P] [--timeout S] [--json] COMMAND

Exit codes: 0 ok, 1 the cluster answered ERROR, 2 usage or local input
error, 3 no node answered. Errors are one line on stderr: what happened,
which node, what to do. ``--json`` prints only JSON on stdout (also for
errors: ``{"status": "ERROR", ...}``).
"""

from __future__ import annotations

import argparse
import array
import math
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from client.api import Client, ClientError, ClusterUnavailable, default_keys
from zmqnode.transport.addresses import format_address, parse_address
from zmqnode.transport.security import ClientKeys, KeyFileError, load_client_keys
from zmqnode.transport.wire import ErrorCode

# numpy, rich and the watch console are imported where they are used, not
# here: `python -m client predict` runs many times a second in scripts, and
# those imports cost more CPU than the request (tests/test_client_startup.py).
if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console
    from rich.progress import Progress, TaskID

EXIT_OK = 0
EXIT_ERROR_REPLY = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

# A promotion waits for the learner to catch up (BUSY until then).
MEMBER_CHANGE_TIMEOUT = 60.0

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000

PROG = "python -m client"


class InputError(ValueError):
    """Local input (CSV file, inline table, option) that cannot be sent."""


# --------------------------------------------------------------------------
# Parsing tables


def parse_inline(text: str, what: str = "table") -> np.ndarray:
    """``"0,0;0,1"`` -> a rows x columns float array (rows split by ``;``).

    Raises ``InputError`` naming the row and column of the first problem.
    """
    import numpy as np

    return np.asarray(inline_rows(text, what), dtype=np.float32)


def inline_rows(text: str, what: str = "table") -> list[list[float]]:
    """``parse_inline`` as lists of Python floats (no numpy), rows of equal width."""
    rows = [row for row in text.split(";")]
    if not text.strip():
        raise InputError(f'{what}: empty; expected rows like "0,0;0,1"')
    parsed: list[list[float]] = []
    width = None
    for r, row in enumerate(rows, start=1):
        cells = row.split(",")
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise InputError(f"{what} row {r}: expected {width} columns, got {len(cells)}")
        parsed.append(
            [_number(cell, f"{what} row {r}, column {c}") for c, cell in enumerate(cells, 1)]
        )
    return parsed


def read_csv(path: str) -> np.ndarray:
    """A numeric CSV file -> rows x columns float32 array (``client.tables``).

    A first row in which no cell is a number is a header and skipped. Blank
    lines are ignored. Raises ``InputError`` such as
    ``"inputs.csv line 7: expected 2 columns, got 3"`` or
    ``"inputs.csv line 4, column 2: 'abc' is not a number"``; blank, NaN and
    infinite cells are counted and the first one named.
    """
    from client.tables import TableError, read_numeric  # only here: keeps start-up fast

    try:
        return read_numeric(path).values
    except TableError as exc:
        raise InputError(str(exc)) from None


def _training_data(args: argparse.Namespace) -> Any:
    """``train``'s files as a ``client.datasets.TrainingData``; InputError if unusable."""
    from client.datasets import one_file, two_files
    from client.tables import TableError

    if args.outputs is None and args.target is None:
        raise InputError("train needs an outputs file, or --target COLUMN for one data file")
    if args.outputs is not None and args.target is not None:
        raise InputError("give an outputs file or --target, not both")
    if args.features is not None and args.target is None:
        raise InputError("--features goes with --target (one data file)")
    try:
        if args.target is not None:
            return one_file(args.inputs, args.target, args.features)
        return two_files(args.inputs, args.outputs)
    except TableError as exc:
        raise InputError(str(exc)) from None


def _members(args: argparse.Namespace, client: Client) -> dict[str, Any]:
    """``members``: the listing, or one change then the new listing."""
    if args.action is None:
        if args.node or args.learner or args.key:
            raise InputError("give an action: members add|promote|demote|remove NODE")
        return client.members()
    if not args.node:
        raise InputError(f"members {args.action} needs a node address, host:port")
    if (args.learner or args.key) and args.action != "add":
        raise InputError("--learner and --key go with members add")
    wait = max(args.timeout, MEMBER_CHANGE_TIMEOUT)
    if args.action == "promote":
        return _promote(client, args.node, wait)
    if args.action != "add":
        return client.change_member(args.action, args.node, timeout=wait)
    current = {m["node"]: m for m in client.members().get("members", [])}
    if args.node not in current:
        if not args.key:
            raise InputError(
                f"{args.node} is not a member: start it with `python -m zmqnode --join "
                "<a member's host:port> ...` (it joins as a learner), or give its public "
                "key with --key"
            )
        from zmqnode.transport.security import public_key_of

        result = client.change_member(
            "add_learner", args.node, credential=public_key_of(args.key), timeout=wait
        )
        if args.learner:
            return result
    elif args.learner:
        return client.members()
    return _promote(client, args.node, wait)


def _promote(client: Client, node: str, wait: float) -> dict[str, Any]:
    """Promote ``node``, waiting while the leader answers BUSY (the learner is
    still catching up on the log or fetching model files)."""
    import time

    deadline = time.monotonic() + wait
    while True:
        try:
            return client.change_member("promote", node, timeout=wait)
        except ClientError as exc:
            if exc.code != ErrorCode.BUSY.value or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def _number(cell: str, where: str) -> float:
    text = cell.strip()
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {text!r} is not a finite number")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected sizes like 64,64") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: layer sizes must be positive")
    return values


def _name_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


TRAIN_TIMEOUT = 60.0


class _TrainingProgress:
    """A rich progress bar on stderr fed by the leader's PROGRESS messages."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> _TrainingProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                TextColumn("round {task.fields[round]}/{task.fields[rounds]}"),
                TextColumn("epoch {task.fields[epoch]}"),
                TextColumn("{task.fields[score]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=None, round=0, rounds="?", epoch=0, score=""
            )
        return self

    def update(self, message: dict[str, Any]) -> None:
        if self.progress is None or self.task is None:
            return
        metrics = message.get("metrics") or {}
        score = next(
            (
                f"{k} {v:.4g}"
                for k, v in metrics.items()
                if k.startswith("val_") and k != "val_loss" and isinstance(v, (int, float))
            ),
            "",
        )
        self.progress.update(
            self.task,
            completed=message.get("round", 0),
            total=message.get("rounds"),
            round=message.get("round", 0),
            rounds=message.get("rounds", "?"),
            epoch=message.get("epoch", 0),
            score=score,
        )

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _node_list(text: str) -> list[str]:
    nodes = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            nodes.append(format_address(*parse_address(part)))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if not nodes:
        raise argparse.ArgumentTypeError("expected host:port[,host:port...]")
    return nodes


# --------------------------------------------------------------------------
# Arguments

# What argparse takes for a value, not an option, though it starts with "-":
# anything that starts like a negative number. Its own rule before Python
# 3.13 is one number ("-1", "-.5"), so the table "-1,0" was an unknown option.
_NEGATIVE_NUMBER = re.compile(r"-\.?\d")


def _rows_may_start_with_minus(parser: argparse.ArgumentParser) -> None:
    """Let inline rows such as ``"-1,0;2,-3"`` be given without ``--``: a
    command with no option spelled "-<digit>" (argparse checks) takes them as
    values. argparse has no public setting for this; the rule it keeps in
    ``_negative_number_matcher`` is the one newer versions use for every parser."""
    parser._negative_number_matcher = _NEGATIVE_NUMBER


def build_parser() -> argparse.ArgumentParser:
    # Connection options are accepted before or after the command. The copy
    # on each subcommand defaults to SUPPRESS so it cannot overwrite a value
    # given before the command.
    def connection_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
        default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
        parser.add_argument(
            "--host", default=default(None), help=f"node host (default {DEFAULT_HOST})"
        )
        parser.add_argument(
            "--port",
            type=int,
            default=default(None),
            help=f"node client port (default {DEFAULT_PORT})",
        )
        parser.add_argument(
            "--nodes",
            type=_node_list,
            default=default(None),
            help="several nodes, tried in order: H:P,H:P",
        )
        parser.add_argument(
            "--timeout",
            type=_positive_float,
            default=default(10.0),
            help="seconds to wait for one node's reply (default 10)",
        )
        parser.add_argument(
            "--retries",
            type=int,
            default=default(3),
            help="further attempts on other nodes (default 3)",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            default=default(False),
            help="print machine-readable JSON only",
        )
        parser.add_argument(
            "--keys",
            default=default(None),
            help="the cluster's key directory (cluster.key, client.key_secret); default: the "
            "first holding cluster.key of $ZMQNODE_KEYS (set but empty: none), ./.cluster/keys, "
            "the directory ./run_cluster.sh recorded in ~/.config/zmqnode/keys, and "
            "~/.config/zmqnode/local-keys (nodes started on loopback without --keys); "
            "$XDG_CONFIG_HOME stands for ~/.config when set",
        )
        parser.add_argument(
            "--client-key",
            default=default(None),
            help="this client's keypair (default KEYS/client.key_secret if present)",
        )
        parser.add_argument(
            "--insecure",
            action="store_true",
            default=default(False),
            help="plaintext, for nodes started with --insecure",
        )

    parser = argparse.ArgumentParser(prog=PROG, description="Talk to a zmqnode cluster.")
    connection_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    connection_options(common, suppress=True)
    training = argparse.ArgumentParser(add_help=False)
    training.add_argument("--hidden", type=_int_list, help="hidden layer sizes, e.g. 64,64")
    training.add_argument("--epochs", type=_positive_int)
    training.add_argument("--lr", type=_positive_float, help="learning rate")
    training.add_argument("--seed", type=int)
    training.add_argument("--activation", help="e.g. relu, tanh, sigmoid")
    training.add_argument(
        "--task",
        choices=["classification", "regression"],
        help="default: the node infers it from the outputs",
    )
    training.add_argument(
        "--request-id", help="reuse the id of an earlier attempt: never trains twice"
    )

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "train-inline",
        parents=[common, training],
        help='train from inline rows: "0,0;0,1;1,0;1,1" "0;1;1;0"',
    )
    p.add_argument("inputs", help='input rows, ";" between rows, "," between columns')
    p.add_argument("outputs", help="output rows, same format")
    _rows_may_start_with_minus(p)
    p = sub.add_parser(
        "train",
        parents=[common, training],
        help="train from CSV: train inputs.csv outputs.csv, or train data.csv --target COLUMN",
    )
    p.add_argument("inputs", help="inputs CSV (header row optional), or the one data file")
    p.add_argument(
        "outputs",
        nargs="?",
        help="outputs CSV: labels (numbers or class names) or regression targets; "
        "leave out with --target",
    )
    p.add_argument(
        "--target",
        help="one file: the column to predict, by header name or 1-based number; "
        "the other columns are the inputs",
    )
    p.add_argument(
        "--features",
        type=_name_list,
        help="with --target: the input columns, comma-separated (default: all others)",
    )
    sub.add_parser("list", parents=[common], help="list the models")
    p = sub.add_parser("info", parents=[common], help="show one model's metadata")
    p.add_argument("model_id")
    p = sub.add_parser(
        "predict",
        parents=[common],
        help='predict: predict <model_id> "1,0;0,1", or predict <model_id> --csv in.csv',
    )
    p.add_argument("model_id")
    p.add_argument("rows", nargs="?", help='input rows, e.g. "1,0" or "1,0;0,1"')
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="score every row of a CSV file, streamed in batches; with a header, columns "
        "are matched to the model's feature names (extra columns are ignored)",
    )
    p.add_argument("--out", metavar="FILE", help="with --csv: write here (default stdout)")
    p.add_argument("--proba", action="store_true", help="with --csv: also each class's probability")
    _rows_may_start_with_minus(p)
    sub.add_parser("status", parents=[common], help="show the node's Raft status")
    p = sub.add_parser("import", parents=[common], help="replicate an existing model file")
    p.add_argument("path", help="model file (.bin)")
    p = sub.add_parser(
        "export",
        parents=[common],
        help="write a model to run elsewhere: export <model_id> --format onnx -o model.onnx",
    )
    p.add_argument("model_id")
    p.add_argument(
        "--format",
        choices=["onnx", "safetensors"],
        default="onnx",
        help="onnx: the whole prediction as a graph that takes raw float32 rows (needs "
        "pip install 'zmqnode[onnx]'); safetensors: the model file (.bin) as it is "
        "(default onnx)",
    )
    p.add_argument(
        "-o", "--output", help="file to write (default <model_id>.onnx or <model_id>.bin)"
    )
    _add_members_parser(sub, parents=[common])
    _add_watch_parser(sub, parents=[common])
    return parser


def _add_members_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "members",
        parents=parents,
        help="show or change the cluster's members: members [add|promote|demote|remove] NODE",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["add", "promote", "demote", "remove"],
        help="add: make NODE a voter (a node started with --join is a learner until then; "
        "waits until it has caught up); remove: take NODE out (a leader hands over first)",
    )
    p.add_argument("node", nargs="?", help="the member's address, host:port")
    p.add_argument(
        "--learner", action="store_true", help="with add: keep NODE a learner (a read replica)"
    )
    p.add_argument(
        "--key",
        metavar="FILE",
        help="with add: NODE's public key file (keygen --node), to add a node that has not "
        "joined yet",
    )


def _add_watch_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """The ``watch`` subcommand (``client.watch``). Here, not there: that module
    imports rich, which every other command would then load to parse its arguments."""
    p = sub.add_parser(
        "watch",
        parents=parents,
        help="live console of the cluster (role, indexes, load, trainings, events)",
        description="Live console fed by the nodes' status feeds (client port + 2000). "
        "The other nodes are found from each node's peers unless --no-discover.",
    )
    p.add_argument(
        "--interval",
        type=_positive_float,
        default=2.0,
        help="seconds between snapshots when stdout is not a terminal (default 2)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="print one snapshot once every node has published (or after --wait), then exit",
    )
    p.add_argument(
        "--wait",
        type=_positive_float,
        default=3.0,
        help="--once: seconds to wait for every node's first message (default 3)",
    )
    p.add_argument(
        "--no-discover",
        dest="discover",
        action="store_false",
        help="watch only the given nodes, not the peers they name",
    )


def _nodes_from(args: argparse.Namespace) -> list[str]:
    if args.nodes and (args.host is not None or args.port is not None):
        raise InputError("give either --nodes or --host/--port, not both")
    if args.nodes:
        return args.nodes
    host = args.host if args.host is not None else DEFAULT_HOST
    port = args.port if args.port is not None else DEFAULT_PORT
    try:
        return [format_address(*parse_address(format_address(host, port)))]
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _keys_from(args: argparse.Namespace) -> ClientKeys | None:
    """CURVE keys unless --insecure: --keys, else ``default_keys``; none
    found means plaintext (the connection error then says where keys were looked for)."""
    if args.insecure:
        if args.keys or args.client_key:
            raise InputError("--insecure and --keys/--client-key contradict each other")
        return None
    directory = args.keys or default_keys()
    if directory is None:
        if args.client_key:
            raise InputError("--client-key needs --keys DIR (the directory holding cluster.key)")
        return None
    try:
        return load_client_keys(directory, args.client_key)
    except KeyFileError as exc:
        raise InputError(str(exc)) from None


def _keys_note(args: argparse.Namespace) -> str:
    """For a cluster that did not answer: which keys the client found, and
    where it looked, unless they were named (--keys, --insecure)."""
    if args.insecure or args.keys:
        return ""
    from zmqnode.transport.keystore import find_keys

    return f" Keys: {find_keys().describe()}."


def _training_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, attr in (
        ("hidden_layers", "hidden"),
        ("epochs", "epochs"),
        ("learning_rate", "lr"),
        ("seed", "seed"),
        ("activation", "activation"),
        ("task", "task"),
    ):
        value = getattr(args, attr)
        if value is not None:
            options[key] = value
    return options


# --------------------------------------------------------------------------
# Main


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    try:
        nodes = _nodes_from(args)
        keys = _keys_from(args)
        if args.command == "watch":  # the status feeds, not requests: no Client
            from client.watch import run_watch

            return run_watch(args, nodes, _console(), keys)
        with Client(nodes, timeout=args.timeout, retries=max(0, args.retries), keys=keys) as client:
            return _run(args, client)
    except ValueError as exc:  # InputError, or an argument the Client refused
        return _fail(args, EXIT_USAGE, "BAD_INPUT", str(exc))
    except ClientError as exc:
        return _fail(
            args,
            EXIT_ERROR_REPLY,
            exc.code,
            f"{exc.code} from {exc.node}: {exc.message}{_hint(exc, args)}",
            node=exc.node,
            message=exc.message,
        )
    except ClusterUnavailable as exc:
        return _fail(args, EXIT_UNAVAILABLE, "UNAVAILABLE", f"{exc}{_keys_note(args)}")


def _run(args: argparse.Namespace, client: Client, out: Console | None = None) -> int:
    """One request command. ``out``: where tables go; None: stdout's console,
    made only when one is drawn (``--json`` never imports rich)."""
    command = args.command
    if command in ("train", "train-inline"):
        names: dict[str, Any] = {}
        if command == "train":
            data = _training_data(args)
            x, y, names = data.x, data.y, {"features": data.features, "targets": data.targets}
        else:
            x, y = parse_inline(args.inputs, "inputs"), parse_inline(args.outputs, "outputs")
            if x.shape[0] != y.shape[0]:
                raise InputError(f"inputs has {x.shape[0]} rows but outputs has {y.shape[0]}")
        # Training takes longer than a lookup; a retry (same request id) joins
        # the running job, so a generous per-attempt wait costs nothing.
        with _TrainingProgress(enabled=not args.json) as progress:
            result = client.train(
                x,
                y,
                options=_training_options(args),
                request_id=args.request_id,
                timeout=max(args.timeout, TRAIN_TIMEOUT),
                on_progress=progress.update,
                **names,
            )
        _emit(args, out, result, _show_train)
    elif command == "list":
        reply = client.request({"type": "LIST"})
        _emit(args, out, reply.fields(), _show_list)
    elif command == "info":
        _emit(args, out, client.info(args.model_id), _show_info)
    elif command == "predict" and args.csv is not None:
        from client.scoring import score_csv  # only here: numpy and rich

        summary = score_csv(
            client,
            args.model_id,
            args.csv,
            out=args.out,
            proba=args.proba,
            progress=not args.json and sys.stderr.isatty(),
        )
        if args.out is not None:  # else stdout holds the scored rows, and only them
            _emit(args, out, summary, _show_mapping)
    elif command == "predict":
        if args.rows is None:
            raise InputError('predict needs rows ("1,0;0,1") or --csv FILE')
        if args.out is not None or args.proba:
            raise InputError("--out and --proba go with --csv FILE")
        # Lists, not numpy arrays: a one-row predict need not import numpy.
        # The inputs are shown as sent, as float32.
        rows = [array.array("f", row).tolist() for row in inline_rows(args.rows, "rows")]
        reply = client.predict_reply(args.model_id, rows)
        result = reply.fields()
        result["outputs"] = reply.labels()
        result["inputs"] = rows
        if args.json:
            _print_json(result)
        else:
            _print_predictions(result)
    elif command == "status":
        _emit(args, out, client.status(), _show_mapping)
    elif command == "import":
        try:
            result = client.import_model(args.path)
        except OSError as exc:
            raise InputError(f"{args.path}: cannot read ({exc.strerror or exc})") from None
        _emit(args, out, result, _show_mapping)
    elif command == "members":
        _emit(args, out, _members(args, client), _show_members)
    elif command == "export":
        from client.export import export_model  # only here: onnx is big and optional

        exported = export_model(client, args.model_id, args.format, args.output)
        _emit(args, out, exported.to_json(), _show_mapping)
    return EXIT_OK


def _emit(args: argparse.Namespace, out: Console | None, result: Any, show: Any) -> None:
    if args.json:
        _print_json(result)
    else:
        show(out if out is not None else _console(), result)


def _console() -> Console:
    """A rich console on stdout."""
    from rich.console import Console

    out = Console(file=sys.stdout, highlight=False)
    if not out.is_terminal:
        # Piped output: do not squeeze tables into rich's default 80 columns.
        out.width = max(out.width, 160)
    return out


def _print_json(obj: Any) -> None:
    text = orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    sys.stdout.write(text.decode() + "\n")
    sys.stdout.flush()


def _fail(args: Any, exit_code: int, code: str, line: str, **extra: Any) -> int:
    sys.stderr.write(f"error: {line}\n")
    if getattr(args, "json", False):
        _print_json(
            {
                "status": "ERROR",
                "code": code,
                "message": extra.get("message", line),
                **({"node": extra["node"]} if extra.get("node") else {}),
            }
        )
    return exit_code


_HINTS = {
    ErrorCode.NOT_FOUND.value: "run `python -m client list` to see the models",
    ErrorCode.BAD_SHAPE.value: "check the columns with `python -m client info <model_id>`",
    ErrorCode.BAD_INPUT.value: "check the values and the training options",
    ErrorCode.TOO_LARGE.value: "send fewer rows per request",
    ErrorCode.NOT_LEADER.value: "no leader is elected right now; retry in a few seconds",
    ErrorCode.UNAVAILABLE.value: "the cluster cannot serve this now (no quorum?); retry shortly",
    ErrorCode.TRAINING_FAILED.value: "try other options (--lr, --epochs, --hidden)",
    ErrorCode.INTERNAL.value: "this is a bug in the node; see its log (worker_<port>.log)",
    ErrorCode.MALFORMED.value: "client and node disagree on the protocol; same version?",
    ErrorCode.BAD_REQUEST.value: "client and node disagree on the protocol; same version?",
    ErrorCode.UNSUPPORTED_VERSION.value: "client and node speak different protocol versions",
    ErrorCode.UNKNOWN_TYPE.value: "the node does not serve this command; same version?",
}


def _hint(exc: ClientError, args: argparse.Namespace) -> str:
    if exc.code == ErrorCode.TIMEOUT.value:
        request_id = (exc.reply or {}).get("id")
        if args.command in ("train", "train-inline") and request_id:
            return (
                f" — the model may still be created: rerun with --request-id {request_id} "
                "(never trains twice) and a larger --timeout"
            )
        return " — retry, or raise --timeout"
    if exc.code == ErrorCode.BUSY.value:
        n = exc.attempts
        tries = "refused once" if n == 1 else f"refused {n} times, pausing longer before each retry"
        return (
            f" — the node is overloaded ({tries}); nothing was done, so the same "
            "command is safe to run again in a moment (or with more --retries)"
        )
    if exc.code == ErrorCode.TOO_LARGE.value and args.command in ("train", "train-inline"):
        return " — train on fewer rows, or start the nodes with a larger --max-request-bytes"
    hint = _HINTS.get(exc.code)
    return f" — {hint}" if hint else ""


# --------------------------------------------------------------------------
# Human output


def _show_train(out: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    out.print(f"[bold green]Trained model[/] [bold]{result.get('model_id', '?')}[/]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in (result.get("metrics") or {}).items():
        table.add_row(str(key), _fmt(value))
    trainers = result.get("trainers") or []
    table.add_row("trainers", ", ".join(map(str, trainers)) or "-")
    if result.get("node"):
        table.add_row("served by", str(result["node"]))
    out.print(table)
    for warning in result.get("warnings") or []:
        out.print(f"[yellow]warning:[/] {warning}")


def _show_list(out: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    models = result.get("models") or []
    if not models:
        out.print("No models yet. Train one with `python -m client train-inline ...`.")
        return
    table = Table(title=f"{len(models)} model(s)")
    for column in ("model_id", "created", "task", "in", "out", "rounds", "score", "size"):
        table.add_column(column)
    for model in models:
        table.add_row(
            str(model.get("model_id", "-")),
            _created(model.get("created")),
            str(model.get("task", "-")),
            _fmt(model.get("inputs", "-")),
            _fmt(model.get("outputs", "-")),
            _fmt(model.get("rounds_run")),
            _score(model.get("final")),
            _size(model.get("size_bytes")),
        )
    out.print(table)


def _score(final: Any) -> str:
    """The best round's validation score in a few characters (LIST's ``final``)."""
    if not isinstance(final, dict):
        return "-"
    for key, label in (("val_accuracy", "acc"), ("val_r2", "R²"), ("val_loss", "loss")):
        if isinstance(final.get(key), (int, float)):
            return f"{label} {final[key]:.3f}"
    if isinstance(final.get("loss"), (int, float)):
        return f"train loss {final['loss']:.3g}"
    return "-"


def _show_info(out: Console, result: dict[str, Any]) -> None:
    """The model's fields, then how it was trained: options and one row per round."""
    from rich.table import Table

    metadata = result.get("metadata")
    _show_mapping(out, {k: v for k, v in result.items() if k != "metadata"})
    training = metadata.get("training") if isinstance(metadata, dict) else None
    if not isinstance(training, dict):
        return
    if isinstance(training.get("options"), dict):
        out.print(f"[bold]options[/] {_fmt(training['options'])}")
    rows, chunks = training.get("rows"), training.get("chunks")
    if isinstance(rows, dict):
        line = f"[bold]rows[/] {rows.get('train', '?')} training, "
        line += f"{rows.get('validation', '?')} validation"
        if isinstance(chunks, list):
            line += f"; chunks of {_fmt(chunks)} rows"
        out.print(line)
    rounds = [r for r in training.get("rounds") or [] if isinstance(r, dict)]
    if not rounds:
        return
    columns = ["round", "epochs", "loss"]
    columns += sorted({k for r in rounds for k in r if k.startswith("val_")})
    best = training.get("best_round")
    caption = "* the round whose weights the model keeps (best validation loss)"
    if training.get("stopped_early"):
        caption += f"; stopped early after {len(rounds)} rounds"
    table = Table(title="training rounds", caption=caption)
    for column in columns:
        table.add_column(column.replace("val_", "validation "), justify="right")
    for entry in rounds:
        is_best = entry.get("round") == best
        cells = [_fmt(entry.get(c)) for c in columns]
        cells[0] = f"{cells[0]} *" if is_best else cells[0]
        table.add_row(*cells, style="bold green" if is_best else None)
    out.print(table)


def _print_predictions(result: dict[str, Any]) -> None:
    """Plain aligned columns, not a rich table: ``predict`` is the command
    people run by the hundred in parallel, and rich costs each process about
    as much CPU as the rest of its start-up."""
    rows = [
        (str(i), _fmt(row), _fmt(output))
        for i, (row, output) in enumerate(
            zip(result["inputs"], result["outputs"], strict=False), start=1
        )
    ]
    heading = ("row", "input", "output")
    widths = [max(len(cells[c]) for cells in [heading, *rows]) for c in range(3)]
    lines = [f"model {result.get('model_id', '?')} (served by {result.get('node', '?')})"]
    for number, row, output in [heading, *rows]:
        lines.append(f"{number:>{widths[0]}}  {row:<{widths[1]}}  {output}".rstrip())
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _show_members(out: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    state = "committed" if result.get("committed") else "not committed yet"
    table = Table(title=f"membership at index {result.get('membership_index')} ({state})")
    for column in ("node", "role", "match", "lag", "last heard"):
        table.add_column(column, justify="left" if column in ("node", "role") else "right")
    for m in result.get("members", []):
        role = ("voter" if m.get("voter") else "learner") + (", leader" if m.get("leader") else "")
        heard = m.get("last_heard_s")
        table.add_row(
            str(m.get("node")),
            role,
            _fmt(m.get("match", "-")),
            _fmt(m.get("lag", "-")),
            "-" if heard is None else f"{heard:.1f}s ago",
        )
    out.print(table)


def _show_mapping(out: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in result.items():
        if key != "id":  # the request id: noise for people, kept in --json
            table.add_row(str(key), _created(value) if key == "created" else _fmt(value))
    out.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


def _created(value: Any) -> str:
    """Unix seconds (docs/PROTOCOL.md §5.4, LIST) as UTC time; other values as they are."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            pass
    return "-" if value is None else str(value)


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
