"""The Python client of a zmqnode cluster ("Lazy Pirate with redirect").

Pattern (docs/PROTOCOL.md §7): one request at a time over a
DEALER per node; wait for the reply with a timeout; on silence close that
socket (dropping whatever ZeroMQ queued for a dead peer), back off
exponentially and try the next node with the *same request id*; on REDIRECT
go to the named leader at once (bounded hops). Replies whose id is not the
current request's are stale and discarded. The whole call has a deadline.

Security: ``keys`` is the cluster's key directory (it holds cluster.key, and
client.key_secret when the nodes require client keys); the client then
speaks CURVE. Without it the client speaks plaintext, which only a node
started with --insecure accepts (``default_keys`` finds the keys the CLI uses).

Not thread-safe: use one ``Client`` per thread.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zmq

from zmqnode.transport.addresses import format_address, parse_address, tcp_endpoint
from zmqnode.transport.security import ClientKeys, KeyFileError, load_client_keys, make_client
from zmqnode.transport.wire import (
    MAX_ID_LENGTH,
    ErrorCode,
    ProtocolError,
    RequestType,
    Status,
    array_to_frame,
    decode,
    encode,
    read_array,
    read_rows,
    rows_to_frame,
    split_envelope,
)

if TYPE_CHECKING:
    import numpy as np


DEFAULT_NODE = "127.0.0.1:9000"


def default_keys() -> str | None:
    """The key directory a command-line tool uses when given none, the first
    holding cluster.key of: $ZMQNODE_KEYS, ./.cluster/keys, the directory
    ./run_cluster.sh recorded in ~/.config/zmqnode/keys, the local keys of
    nodes started on loopback without --keys (~/.config/zmqnode/local-keys;
    $XDG_CONFIG_HOME for ~/.config). ZMQNODE_KEYS set but empty means none
    (the test suite sets it so). ``keystore.find_keys`` also says where it looked."""
    from zmqnode.transport.keystore import find_keys

    return find_keys().path


# Replies come from nodes we chose to trust, and a LIST of many models is
# the biggest header, so the client is more lenient than a node.
CLIENT_MAX_HEADER_BYTES = 64 << 20
CLIENT_MAX_ARRAY_BYTES = 1 << 31
# Payloads above this size are checked against the node's advertised limits
# (STATUS ``limits``) before they are sent: a refused 400 MB upload wastes time.
LARGE_PAYLOAD_BYTES = 1 << 20


class ClientError(Exception):
    """A node answered ERROR. ``code`` is the protocol's error code string
    (compare with ``ErrorCode`` members), ``node`` the address that said so.
    ``attempts``: for BUSY, how many BUSY replies the call got before the
    client gave up (each retry came after a backoff)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        node: str | None = None,
        reply: Mapping[str, Any] | None = None,
        attempts: int = 1,
    ):
        super().__init__(f"{code}: {message}" + (f" (from {node})" if node else ""))
        self.code = code
        self.message = message
        self.node = node
        self.reply = dict(reply) if reply is not None else None
        self.attempts = attempts


class ClusterUnavailable(Exception):
    """No node gave a usable answer before the call's deadline.

    ``tried`` lists ``(node, what happened)`` for every attempt, in order.
    """

    def __init__(self, tried: Sequence[tuple[str, str]], reason: str = "no node answered"):
        self.tried = list(tried)
        self.reason = reason
        super().__init__(
            f"{reason} (tried {_summarize(self.tried)}). Check that the nodes are running "
            "(python -m zmqnode --port P ...) and that the addresses are right."
        )


def _summarize(tried: Sequence[tuple[str, str]]) -> str:
    """ "a: x; b: y (2 attempts)" -- one item per node, its last outcome."""
    last: dict[str, str] = {}
    count: dict[str, int] = {}
    for node, what in tried:
        last[node] = what
        count[node] = count.get(node, 0) + 1
    if not last:
        return "no node"
    return "; ".join(
        f"{node}: {what}" + (f" ({count[node]} attempts)" if count[node] > 1 else "")
        for node, what in last.items()
    )


@dataclass(frozen=True)
class Reply:
    """An OK reply: its header, binary frames and the node that sent it."""

    header: dict[str, Any]
    blobs: list[bytes] = field(repr=False)
    node: str

    def array(self, key: str) -> np.ndarray:
        """A writable copy of the array the header describes under ``key``."""
        return read_array(self.header, self.blobs, key, max_bytes=CLIENT_MAX_ARRAY_BYTES).copy()

    def rows(self, key: str) -> Any:
        """``array(key).tolist()`` without importing numpy: nested lists of numbers."""
        return read_rows(self.header, self.blobs, key, max_bytes=CLIENT_MAX_ARRAY_BYTES)

    def labels(self) -> list[Any]:
        """A PREDICT reply's answers without numpy: class labels (the model's
        ``classes`` picked by index), or regression values (docs/PROTOCOL.md §5.3)."""
        outputs = self.rows("outputs")
        classes = self.header.get("classes")
        if not classes:
            return outputs
        try:
            return [classes[i] for i in outputs]
        except (IndexError, TypeError):
            raise ClientError(
                ErrorCode.MALFORMED.value,
                f"PREDICT reply: class indices outside the {len(classes)} classes",
                node=self.node,
            ) from None

    def fields(self) -> dict[str, Any]:
        """The header without the framing fields ``v``, ``type``, ``status``."""
        return {k: v for k, v in self.header.items() if k not in ("v", "type", "status")}


def new_request_id() -> str:
    """A fresh request id (random, so two clients never collide)."""
    return uuid.uuid4().hex


class Client:
    """Talks to a cluster through any of its nodes.

    ``nodes``: client addresses ``"host:port"`` (a list, or one string that
    may be comma-separated). ``timeout``: seconds to wait for one node's
    reply. ``retries``: further attempts after the first fails (silence, no
    connection, or a retryable error such as NOT_LEADER); each goes to the
    next node after an exponential backoff. REDIRECTs do not use retries but
    are capped at ``max_redirects`` hops per call. BUSY (the node is up but
    over a limit) is retryable like the others: never at once, always after
    the jittered backoff, so refused clients do not hammer a full node
    (``retries=0`` surfaces it at once). Every call ends by its deadline
    (default: enough for all attempts and backoffs).

    Raises ``ClientError`` for ERROR replies, ``ClusterUnavailable`` when no
    node answers, ``ValueError`` for bad arguments.
    """

    def __init__(
        self,
        nodes: Sequence[str] | str = DEFAULT_NODE,
        timeout: float = 10.0,
        retries: int = 3,
        *,
        max_redirects: int = 5,
        connect_timeout: float = 2.0,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        context: zmq.Context | None = None,
        keys: str | os.PathLike | ClientKeys | None = None,
        client_key: str | os.PathLike | None = None,
    ):
        if isinstance(nodes, str):
            nodes = [n for n in nodes.split(",") if n.strip()]
        self._nodes = [format_address(*parse_address(n)) for n in nodes]
        if not self._nodes:
            raise ValueError("Client needs at least one node address 'host:port'")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.max_redirects = int(max_redirects)
        self.connect_timeout = float(connect_timeout)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._context = context or zmq.Context.instance()
        self._sockets: dict[str, zmq.Socket] = {}
        self._current = 0  # index into _nodes: where the next call starts
        self._closed = False
        self._limits: dict[str, Any] | None = None  # STATUS ``limits``, asked once
        if keys is None or isinstance(keys, ClientKeys):
            self._keys = keys
        else:
            try:
                self._keys = load_client_keys(keys, client_key)
            except KeyFileError as exc:
                raise ValueError(str(exc)) from None

    # ------------------------------------------------------------------
    # Lifecycle

    @property
    def nodes(self) -> list[str]:
        """Known node addresses (grows when a REDIRECT names a new leader)."""
        return list(self._nodes)

    @property
    def preferred_node(self) -> str:
        """The node the next call goes to first (the last one that answered)."""
        return self._nodes[self._current]

    def close(self) -> None:
        """Close every socket (LINGER 0: unsent requests are dropped)."""
        for node in list(self._sockets):
            self._drop(node)
        self._closed = True

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------
    # Commands

    def train(
        self,
        inputs: Any,
        outputs: Any,
        *,
        options: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        features: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Train a model; returns the OK reply's fields (``model_id``,
        ``metrics``, ``trainers``, ``warnings``, ``options``, ...).

        ``inputs``: rows x columns numbers (sent as float32). ``outputs``:
        one value or row per input row; integers are sent as int64 class
        labels (1-D), strings as class names (int64 codes plus the names),
        anything else as float32 rows x k. ``features`` and ``targets``
        name the input and output columns; the model keeps them. Retrying with the
        same ``request_id`` never creates a second model. ``timeout``
        overrides the per-attempt timeout (training can be slow); every
        PROGRESS message from the leader restarts it, and is passed to
        ``on_progress`` (round, rounds, epoch, metrics, elapsed_s).
        """
        import numpy as np

        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                f"inputs must be a non-empty rows x columns table, got shape {x.shape}"
            )
        y, classes = _outputs_array(outputs)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"inputs have {x.shape[0]} rows but outputs have {y.shape[0]}")
        if options is not None and not isinstance(options, Mapping):
            raise ValueError("options must be a mapping")
        self.check_size(
            f"the training data ({x.shape[0]} rows x {x.shape[1]} columns)",
            x.nbytes + y.nbytes,
            "max_request_bytes",
        )
        x_desc, x_blob = array_to_frame(x, frame=0)
        y_desc, y_blob = array_to_frame(y, frame=1)
        header = {
            "type": RequestType.TRAIN.value,
            "id": _check_request_id(request_id),
            "inputs": x_desc,
            "outputs": y_desc,
            "options": dict(options or {}),
        }
        if classes is not None:
            header["classes"] = classes
        if features is not None:
            header["features"] = [str(name) for name in features]
        if targets is not None:
            header["targets"] = [str(name) for name in targets]
        return self.request(
            header, [x_blob, y_blob], timeout=timeout, on_progress=on_progress
        ).fields()

    def predict(self, model_id: str, rows: Any) -> np.ndarray:
        """Predictions for ``rows`` (one row or rows x columns): float32
        values (regression) or the class labels, as the model's ``classes``
        hold them (numbers or names)."""
        reply = self.predict_reply(model_id, rows)
        outputs = reply.array("outputs")
        classes = reply.header.get("classes")
        if not classes:
            return outputs
        import numpy as np

        return np.asarray(classes)[outputs]

    def predict_proba(self, model_id: str, rows: Any) -> np.ndarray:
        """Class probabilities (float32 rows x classes, in the order of the
        model's ``classes``) of a classification model."""
        return self.predict_reply(model_id, rows, proba=True).array("probabilities")

    def predict_reply(self, model_id: str, rows: Any, proba: bool = False) -> Reply:
        """Like ``predict`` but returns the whole ``Reply`` (``node``, and for a
        classifier ``classes`` and the class indices in ``outputs``; with
        ``proba`` also ``probabilities``)."""
        table = _plain_table(rows)
        if table is not None:  # a few Python numbers (the CLI): no numpy to import
            n_rows, nbytes = len(table), 4 * len(table) * len(table[0])
            desc, blob = rows_to_frame(table, frame=0)
        else:
            import numpy as np

            x = np.asarray(rows, dtype=np.float32)
            if x.ndim == 1:
                x = x.reshape(1, -1)
            if x.ndim != 2 or x.shape[0] == 0:
                raise ValueError(
                    f"rows must be one row or a rows x columns table, got shape {x.shape}"
                )
            n_rows, nbytes = x.shape[0], x.nbytes
            desc, blob = array_to_frame(x, frame=0)
        self.check_size(f"{n_rows} rows to predict", nbytes, "max_request_bytes")
        header: dict[str, Any] = {
            "type": RequestType.PREDICT.value,
            "id": new_request_id(),
            "model_id": model_id,
            "inputs": desc,
        }
        if proba:
            header["proba"] = True
        return self.request(header, [blob])

    def list_models(self) -> list[dict[str, Any]]:
        """Metadata of every committed model (docs/PROTOCOL.md §5.4, LIST)."""
        reply = self.request({"type": RequestType.LIST.value, "id": new_request_id()})
        models = reply.header.get("models")
        if not isinstance(models, list):
            raise ClientError(
                ErrorCode.MALFORMED.value, "LIST reply has no 'models' list", node=reply.node
            )
        return models

    def info(self, model_id: str) -> dict[str, Any]:
        """One model's listing fields, plus under ``metadata`` the document stored in
        its file (training options and per-round loss and validation score) when the
        node sends it; ``ClientError`` NOT_FOUND if there is no such model."""
        reply = self.request(
            {"type": RequestType.INFO.value, "id": new_request_id(), "model_id": model_id}
        )
        model = reply.header.get("model")
        if not isinstance(model, dict):
            raise ClientError(
                ErrorCode.MALFORMED.value, "INFO reply has no 'model' object", node=reply.node
            )
        metadata = reply.header.get("metadata")
        return {**model, "metadata": metadata} if isinstance(metadata, dict) else model

    def check_size(self, what: str, nbytes: int, limit: str) -> None:
        """Refuse, before sending, a payload over the cluster's ``limit``
        (``max_request_bytes`` or ``max_model_bytes``); ``ClientError`` TOO_LARGE.

        Small payloads are not checked (the node enforces every limit anyway);
        for a large one the limits are asked once with STATUS. A node that
        does not answer or advertise limits leaves the check to the node.
        """
        if nbytes <= LARGE_PAYLOAD_BYTES:
            return
        if self._limits is None:
            try:
                limits = self.status().get("limits")
            except (ClientError, ClusterUnavailable):
                return
            self._limits = limits if isinstance(limits, dict) else {}
        allowed = self._limits.get(limit)
        if isinstance(allowed, int) and nbytes > allowed:
            flag = "--" + limit.replace("_", "-")
            raise ClientError(
                ErrorCode.TOO_LARGE.value,
                f"{what} is {nbytes:,} bytes; the cluster accepts at most {allowed:,} "
                f"({flag} on the nodes). Nothing was sent.",
            )

    def status(self) -> dict[str, Any]:
        """The answering node's view: id, role, term, leader, indexes, peers."""
        return self.request({"type": RequestType.STATUS.value, "id": new_request_id()}).fields()

    def members(self) -> dict[str, Any]:
        """The leader's view of the membership (docs/PROTOCOL.md §5.8):
        ``members`` (node, voter, leader, match, lag, last_heard_s), the
        ``membership_index`` and whether it is ``committed``."""
        return self.request({"type": RequestType.MEMBERS.value, "id": new_request_id()}).fields()

    def change_member(
        self,
        change: str,
        node: str,
        *,
        credential: str = "",
        base_index: int | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """``promote``, ``demote`` or ``remove`` a member, or ``add_learner``
        (with its public key as ``credential``); answered once committed, with
        the new membership (§5.9). A learner not yet caught up is BUSY: the
        request is retried like any BUSY one."""
        header: dict[str, Any] = {
            "type": RequestType.MEMBER_CHANGE.value,
            "id": new_request_id(),
            "change": change,
            "node": node,
        }
        if credential:
            header["credential"] = credential
        if base_index is not None:
            header["base_index"] = base_index
        return self.request(header, timeout=timeout).fields()

    def import_model(
        self, path: str | os.PathLike[str], *, request_id: str | None = None
    ) -> dict[str, Any]:
        """Replicate an existing model file (.bin); returns ``model_id`` etc."""
        with open(path, "rb") as f:
            data = f.read()
        self.check_size(f"model file {os.fspath(path)}", len(data), "max_model_bytes")
        header = {
            "type": RequestType.IMPORT.value,
            "id": _check_request_id(request_id),
            "filename": os.path.basename(os.fspath(path)),
            "size_bytes": len(data),
        }
        return self.request(header, [data]).fields()

    # ------------------------------------------------------------------
    # The request loop

    def request(
        self,
        header: Mapping[str, Any],
        blobs: Sequence[bytes] = (),
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> Reply:
        """Send one request until some node answers OK, and return that reply.

        ``header`` needs ``type``; ``id`` is generated when absent and kept
        for every retry and redirect. ``timeout``: per-attempt seconds
        (default ``self.timeout``); ``deadline``: seconds for the whole call.
        A PROGRESS reply (long requests such as TRAIN) is not an answer: it
        goes to ``on_progress`` and proves the node is working, so the
        attempt's wait and the call's deadline start over.
        """
        if self._closed:
            raise RuntimeError("Client is closed")
        header = dict(header)
        header["id"] = _check_request_id(header.get("id"))
        attempt_timeout = self.timeout if timeout is None else float(timeout)
        budget = deadline if deadline is not None else self._default_budget(attempt_timeout)
        end = time.monotonic() + budget
        request_id = header["id"]
        tried: list[tuple[str, str]] = []
        failures = 0
        busy = 0
        hops = 0
        last_error: ClientError | None = None
        node = self._nodes[self._current]

        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise self._give_up(
                    tried, last_error, f"no answer within the {budget:.1f}s deadline"
                )
            wait = min(attempt_timeout, remaining)
            # Tell the node how long we will wait, so it can answer TIMEOUT
            # rather than work for nobody.
            header["timeout_ms"] = max(1, int(wait * 1000))
            progressed: list[bool] = []
            outcome, detail, reply_header, reply_blobs = self._attempt(
                node, encode(header, blobs), request_id, wait, on_progress, progressed
            )
            if progressed:
                end = max(end, time.monotonic() + budget)

            if outcome == "reply":
                status = reply_header.get("status")
                if status == Status.OK.value:
                    self._current = self._nodes.index(node)
                    return Reply(reply_header, reply_blobs, node)
                if status == Status.REDIRECT.value:
                    leader = _leader_of(reply_header)
                    if leader is None:
                        bad = reply_header.get("leader")
                        detail = f"REDIRECT without a valid leader address: {bad!r}"
                    else:
                        tried.append((node, f"redirected to {leader}"))
                        hops += 1
                        if hops > self.max_redirects:
                            raise ClusterUnavailable(
                                tried, f"more than {self.max_redirects} redirects"
                            )
                        if leader not in self._nodes:
                            self._nodes.append(leader)
                        node = leader
                        continue
                elif status == Status.ERROR.value:
                    code = str(reply_header.get("code", ErrorCode.INTERNAL.value))
                    error = ClientError(
                        code, str(reply_header.get("message", "")), node=node, reply=reply_header
                    )
                    if code not in _RETRYABLE_CODES:
                        raise error
                    last_error = error
                    detail = f"{code}: {error.message}"
                    if code == ErrorCode.BUSY.value:
                        busy += 1
                        error.attempts = busy
                else:
                    detail = f"reply with unknown status {status!r}"
                outcome = "failed"
            else:
                last_error = None

            tried.append((node, detail))
            failures += 1
            if failures > self.retries:
                raise self._give_up(tried, last_error, "no node answered")
            self._sleep_backoff(failures, end)
            node = self._next_node(node)

    def _attempt(
        self,
        node: str,
        frames: list[bytes],
        request_id: str,
        wait: float,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        progressed: list[bool] | None = None,
    ) -> tuple[str, str, dict[str, Any], list[bytes]]:
        """One send and wait. Returns (outcome, detail, header, blobs) with
        outcome "reply" or "failed"; on failure the socket is closed."""
        sock = self._socket(node)
        start = time.monotonic()
        end = start + wait
        # IMMEDIATE: the socket is writable only once a connection is up, so a
        # dead node is told apart from a silent one (and skipped sooner).
        connect_wait = min(self.connect_timeout, wait)
        if not sock.poll(_ms(connect_wait), zmq.POLLOUT):
            self._drop(node)
            # A CURVE handshake that fails looks the same: never connected.
            why = (
                "no keys given: a node with CURVE (the default) refuses plaintext"
                if self._keys is None
                else "or it refused our key"
            )
            return "failed", f"could not connect within {connect_wait:.1f}s ({why})", {}, []
        try:
            sock.send_multipart([b"", *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self._drop(node)
            return "failed", "could not send (connection lost)", {}, []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self._drop(node)
                return "failed", f"no reply within {wait:.1f}s", {}, []
            if not sock.poll(_ms(left), zmq.POLLIN):
                continue
            frames_in = sock.recv_multipart()
            try:
                _, body = split_envelope(frames_in)
                header, blobs = decode(
                    body, max_header_bytes=CLIENT_MAX_HEADER_BYTES, require_id=False
                )
            except ProtocolError as exc:
                self._drop(node)
                return "failed", f"unreadable reply ({exc})", {}, []
            if header["id"] != request_id:
                continue  # a stale reply to an earlier attempt: not ours
            if header.get("status") == Status.PROGRESS.value:
                end = time.monotonic() + wait  # the node is alive and working
                if progressed is not None:
                    progressed.append(True)
                if on_progress is not None:
                    on_progress(header)
                continue
            return "reply", "", header, blobs

    # ------------------------------------------------------------------
    # Helpers

    def _socket(self, node: str) -> zmq.Socket:
        sock = self._sockets.get(node)
        if sock is None:
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            make_client(sock, self._keys)
            host, port = parse_address(node)
            if ":" in host:
                sock.setsockopt(zmq.IPV6, 1)
            sock.connect(tcp_endpoint(host, port))
            self._sockets[node] = sock
        return sock

    def _drop(self, node: str) -> None:
        sock = self._sockets.pop(node, None)
        if sock is not None:
            sock.close(linger=0)

    def _next_node(self, node: str) -> str:
        i = self._nodes.index(node) if node in self._nodes else -1
        return self._nodes[(i + 1) % len(self._nodes)]

    def _backoff_delay(self, failures: int) -> float:
        return min(self.backoff * 2 ** (failures - 1), self.max_backoff)

    def _default_budget(self, attempt_timeout: float) -> float:
        backoffs = sum(self._backoff_delay(k) for k in range(1, self.retries + 1))
        return attempt_timeout * (self.retries + 1) + backoffs

    def _sleep_backoff(self, failures: int, end: float) -> None:
        # Jitter spreads clients that failed together (e.g. during an election).
        delay = self._backoff_delay(failures) * random.uniform(0.5, 1.0)
        delay = min(delay, max(0.0, end - time.monotonic()))
        if delay > 0:
            time.sleep(delay)

    @staticmethod
    def _give_up(
        tried: list[tuple[str, str]], last_error: ClientError | None, reason: str
    ) -> Exception:
        # If the last word was a node's (retryable) ERROR, that is the most
        # precise thing to report; otherwise nobody answered.
        if last_error is not None:
            return last_error
        return ClusterUnavailable(tried, reason)


_RETRYABLE_CODES = frozenset(code.value for code in ErrorCode if code.retryable)


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


def _check_request_id(request_id: Any) -> str:
    if request_id is None:
        return new_request_id()
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_ID_LENGTH:
        raise ValueError(f"request_id must be a string of 1..{MAX_ID_LENGTH} characters")
    return request_id


def _leader_of(header: Mapping[str, Any]) -> str | None:
    leader = header.get("leader")
    if not isinstance(leader, str):
        return None
    try:
        return format_address(*parse_address(leader))
    except ValueError:
        return None


def _plain_table(rows: Any) -> list[Sequence[float]] | None:
    """``rows`` as a list of rows when it is one row or a non-empty table of
    Python numbers, all rows of the same non-zero width; else None (numpy
    then converts it, and reports what is wrong)."""
    if not isinstance(rows, (list, tuple)) or not rows:
        return None
    table = rows if all(isinstance(row, (list, tuple)) for row in rows) else [rows]
    width = len(table[0])
    numbers = all(
        len(row) == width and all(isinstance(v, (int, float)) for v in row) for row in table
    )
    return list(table) if width and numbers else None


def _outputs_array(outputs: Any) -> tuple[np.ndarray, list[str] | None]:
    """What TRAIN sends for ``outputs``, and the class names when they are strings."""
    import numpy as np

    y = np.asarray(outputs)
    if y.dtype.kind in "USO":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1 or y.shape[0] == 0:
            raise ValueError(f"class names must be one per input row, got shape {y.shape}")
        if y.dtype.kind == "O" and not all(isinstance(v, str) for v in y):
            raise ValueError("outputs mix strings and other values; give all labels as one type")
        names, codes = np.unique(y.astype(str), return_inverse=True)
        return codes.astype(np.int64).ravel(), [str(name) for name in names]
    return _numeric_outputs(y), None


def _numeric_outputs(y: np.ndarray) -> np.ndarray:
    import numpy as np

    if y.dtype.kind in "iu":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim == 1:
            return y.astype(np.int64)
    y = y.astype(np.float32)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
        raise ValueError(f"outputs must be one value or row per input row, got shape {y.shape}")
    return y
