"""The client requests a node serves: one method per request type.

``RequestHandlers.on_request`` takes the frames of one request from the
client ROUTER socket, checks its envelope, header and size, and hands it to
the handler of its type (docs/PROTOCOL.md §5). A handler answers at once,
or parks the request (``later``: after a read index; ``commit_model``: after
its entry is applied) and the answer comes from a later loop turn.

Every error a handler raises as ``ProtocolError`` becomes an ERROR reply;
any other exception costs that one request (INTERNAL), never the node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import NodeConfig
from .ml.model_file import Model, ModelFormatError
from .registry import (
    ModelFileDamaged,
    ModelRegistry,
    encode_store_model,
    listing_summary,
    model_id_for,
)
from .replies import ClientChannel, ClientReplier, Header, Replier
from .serving import PredictionBatcher
from .training import TrainingCoordinator
from .transport import wire
from .transport.wire import ErrorCode, ProtocolError, RequestType
from .waiting import Admission, Waiters

log = logging.getLogger("zmqnode.handlers")

Handler = Callable[[Header, list[Any], Replier], None]


@dataclass(frozen=True)
class Leadership:
    """What the handlers may ask of Raft."""

    leader_id: Callable[[], str]  # "" while none is known
    is_leader: Callable[[], bool]
    # Propose a command; on_done(True) once applied in the proposing term.
    # Returns None when proposed, ErrorCode.NOT_LEADER when not leader.
    propose: Callable[[bytes, Callable[[bool], None]], ErrorCode | None]


class RequestHandlers:
    """Serves STATUS, LIST, INFO, PREDICT, TRAIN, IMPORT and FETCH."""

    def __init__(
        self,
        config: NodeConfig,
        channel: ClientChannel,
        registry: ModelRegistry,
        batcher: PredictionBatcher,
        training: TrainingCoordinator,
        waiters: Waiters,
        admission: Admission,
        leadership: Leadership,
        want_file: Callable[[str, str, int], None],
        status: Callable[[], dict[str, Any]],
        count: Callable[[str], None],
    ) -> None:
        self.config = config
        self.id = config.node_id
        self.channel = channel
        self.registry = registry
        self.batcher = batcher
        self.training = training
        self.waiters = waiters
        self.admission = admission
        self.leadership = leadership
        self.want_file = want_file  # fetch a damaged model file from the peers
        self.status = status
        self.count = count
        self._handlers: dict[str, Handler] = {
            RequestType.STATUS.value: self.handle_status,
            RequestType.LIST.value: self.handle_list,
            RequestType.INFO.value: self.handle_info,
            RequestType.PREDICT.value: self.handle_predict,
            RequestType.TRAIN.value: self.handle_train,
            RequestType.IMPORT.value: self.handle_import,
            RequestType.FETCH.value: self.handle_fetch,
        }

    def add(self, handlers: dict[str, Handler]) -> None:
        """Serve more request types (another room's handlers)."""
        self._handlers.update(handlers)

    # -- dispatch --------------------------------------------------------------

    def on_request(self, frames: list[bytes]) -> None:
        """One request's frames, as the client ROUTER received them."""
        try:
            routing, body = wire.split_envelope(frames)
        except ProtocolError as exc:
            # No envelope: we cannot even address a reply.
            self.count("client_garbage")
            log.warning("dropped a client message without envelope: %s", exc.message)
            return
        reply = ClientReplier(self.channel, routing)
        try:
            header, blobs = wire.decode(body)
            size = sum(len(f) for f in body)
            if size > self.config.max_request_bytes:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"request is {size} bytes; node {self.id} accepts at most "
                    f"{self.config.max_request_bytes} (--max-request-bytes)",
                    header=header,
                )
        except ProtocolError as exc:
            reply.error(exc.header, exc.code, exc.message)
            return
        if header["type"] in self._handlers:  # a metrics label: known types only
            reply.kind = header["type"]
        self.dispatch(header, blobs, reply)

    def dispatch(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        """Serve one decoded request (``type`` names the handler); every error
        is answered through ``reply``. The HTTP inference port comes in here too."""
        try:
            handler = self._handlers.get(header["type"])
            if handler is None:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_TYPE,
                    f"unknown request type {header['type']!r}; this node serves "
                    f"{', '.join(sorted(self._handlers))}",
                    header=header,
                )
            handler(header, blobs, reply)
        except ProtocolError as exc:
            reply.error(exc.header, exc.code, exc.message)
        except Exception as exc:  # a bug must cost one request, never the node
            log.exception("internal error serving a request")
            reply.error(None, ErrorCode.INTERNAL, f"node {self.id} failed: {exc!r}")

    def request_timeout(self, header: Header | None) -> float:
        """How long to wait for a request: the client's ``timeout_ms`` (a little
        less, so the answer arrives while it still listens), within our bound."""
        client_ms = (header or {}).get("timeout_ms")
        if isinstance(client_ms, int) and not isinstance(client_ms, bool) and client_ms > 0:
            return min(self.config.request_timeout, max(0.05, client_ms / 1000 * 0.9))
        return self.config.request_timeout

    def later(self, header: Header, reply: Replier, answer: Callable[[], None]) -> None:
        """Answer once this node has caught up with the leader's commit index
        (BUSY at once if --max-pending requests already wait)."""
        self.admission.admit(header)
        reply.wait(header)

        def guarded_answer() -> None:
            try:
                answer()
            except ProtocolError as exc:
                reply.error(header, exc.code, exc.message)
            except Exception as exc:
                log.exception("internal error serving a deferred request")
                reply.error(header, ErrorCode.INTERNAL, f"node {self.id} failed: {exc!r}")

        self.waiters.after_read_index(
            self.request_timeout(header),
            guarded_answer,
            lambda: reply.error(
                header,
                ErrorCode.UNAVAILABLE,
                f"node {self.id} could not confirm the cluster's latest state "
                "in time (no leader reachable?); retry or ask another node",
            ),
        )

    def redirect_or_unavailable(
        self,
        header: Header,
        reply: Replier,
        code: ErrorCode = ErrorCode.NOT_LEADER,
        message: str = "",
    ) -> None:
        """REDIRECT to the leader; when there is none other than us, ``code``."""
        leader = self.leadership.leader_id()
        if leader and leader != self.id:
            reply.send(wire.redirect_reply(header, leader))
        else:
            reply.error(
                header,
                code,
                message or f"node {self.id} knows no leader yet (election in progress); retry",
            )

    # -- reads -----------------------------------------------------------------

    def handle_status(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        reply.ok(header, **self.status())

    def handle_list(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        self.later(header, reply, lambda: reply.ok(header, models=self.registry.listing()))

    def handle_info(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        model_id = _require_str(header, "model_id")

        def answer() -> None:
            record = self.registry.models.get(model_id)
            if record is None:
                reply.error(header, ErrorCode.NOT_FOUND, _not_found(model_id))
                return
            model = self._load_or_refuse(model_id, header, reply)
            if model is not None:
                reply.ok(header, model=record.to_json(), metadata=model.metadata_json())

        self._with_model(model_id, header, reply, answer)

    def handle_predict(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        model_id = _require_str(header, "model_id")
        inputs = wire.read_array(header, blobs, "inputs", max_bytes=self.config.max_request_bytes)
        rows = _as_rows(inputs)
        proba = header.get("proba", False)
        if not isinstance(proba, bool):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "'proba' must be true or false", header=header
            )

        def answer() -> None:
            if model_id not in self.registry:
                reply.error(header, ErrorCode.NOT_FOUND, _not_found(model_id))
                return
            model = self._load_or_refuse(model_id, header, reply)
            if model is None:
                return
            if proba and not model.classes:
                reply.error(
                    header,
                    ErrorCode.BAD_INPUT,
                    f"model {model_id} does regression: it has no class probabilities",
                )
                return
            if rows.shape[1] != model.n_inputs:
                # Checked here so that one bad request cannot fail a batch.
                reply.error(
                    header,
                    ErrorCode.BAD_INPUT,
                    f"model {model_id} expects {model.n_inputs} input columns, got {rows.shape[1]}",
                )
                return
            self.batcher.add(model_id, model, rows, header, reply)

        self._with_model(model_id, header, reply, answer)

    def handle_fetch(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        """A chunk of a model file, for a peer repairing its copy (repair.py)."""
        model_id = _require_str(header, "model_id")
        offset, length = _require_count(header, "offset"), _require_count(header, "length")
        record = self.registry.models.get(model_id)
        missing = f"node {self.id} has no good copy of {model_id}"
        if record is None or model_id in self.registry.damaged:
            reply.error(header, ErrorCode.NOT_FOUND, missing)
            return
        try:
            with open(self.registry.store.path(model_id), "rb") as f:
                f.seek(offset)
                chunk = f.read(min(length, self.config.fetch_chunk_bytes))
        except FileNotFoundError:
            reply.error(header, ErrorCode.NOT_FOUND, missing)
            return
        reply.ok(header, [chunk], size=record.size, offset=offset, sha256=record.sha256)

    def _with_model(
        self, model_id: str, header: Header, reply: Replier, answer: Callable[[], None]
    ) -> None:
        """Answer at once if we hold the model, else after catching up (ReadIndex):
        a model the leader acknowledged is never "not found" (docs/PROTOCOL.md §5.3)."""
        if model_id in self.registry:
            answer()
        else:
            self.later(header, reply, answer)

    def _load_or_refuse(self, model_id: str, header: Header, reply: Replier) -> Model | None:
        """The model, or None after answering: our copy is damaged and being
        fetched again, so the leader (or another node) must serve it."""
        try:
            return self.registry.load(model_id)
        except ModelFileDamaged as exc:
            record = self.registry.models[model_id]
            self.want_file(model_id, record.sha256, record.size)
            self.redirect_or_unavailable(
                header,
                reply,
                ErrorCode.UNAVAILABLE,
                f"node {self.id} cannot serve model {model_id} now: {exc.reason}; "
                "it is being fetched from the other nodes. Retry, or ask another node",
            )
            return None

    # -- writes ----------------------------------------------------------------

    def handle_train(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        if not self.leadership.is_leader():
            self.redirect_or_unavailable(header, reply)
            return
        model_id = model_id_for(header["id"])
        if header["id"] in self.training.jobs:
            self.training.submit(header, blobs, reply)  # joins the running job
            reply.wait(header)
            return

        def decide() -> None:
            # After catching up, so a model an earlier leader acknowledged is seen.
            if model_id in self.registry:
                reply.ok(
                    header,
                    model_id=model_id,
                    **self.registry.models[model_id].summary,
                    warnings=["this request id was already trained; returning its model"],
                )
            elif self.leadership.is_leader():
                self.training.submit(header, blobs, reply)
            else:
                self.redirect_or_unavailable(header, reply)

        self.later(header, reply, decide)

    def handle_import(self, header: Header, blobs: list[Any], reply: Replier) -> None:
        if not self.leadership.is_leader():
            self.redirect_or_unavailable(header, reply)
            return
        if len(blobs) != 1:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"IMPORT carries one frame (the model file), got {len(blobs)}",
                header=header,
            )
        data = blobs[0]
        if len(data) > self.config.max_model_bytes:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"model file is {len(data)} bytes; limit is "
                f"{self.config.max_model_bytes} (--max-model-bytes)",
                header=header,
            )
        try:
            model = Model.from_bytes(data)
        except ModelFormatError as exc:
            raise ProtocolError(
                ErrorCode.BAD_INPUT, f"not a valid model file: {exc}", header=header
            ) from None
        try:
            self.admission.admit(header)
            self.admission.admit_bytes(header, len(data))
        except ProtocolError as exc:
            reply.error(header, exc.code, exc.message)
            return
        reply.wait(header)
        self.commit_model(header, reply, data, listing_summary(model), {})

    def commit_model(
        self,
        header: Header,
        reply: Replier,
        model_bytes: bytes,
        summary: dict[str, Any],
        extra: dict[str, Any],
    ) -> None:
        """Replicate a model file and answer once it is committed and applied
        (admission is the caller's: a finished TRAIN is not refused BUSY)."""
        request_id = header["id"]
        model_id = model_id_for(request_id)
        command = encode_store_model(request_id, model_bytes, time.time(), summary)

        def done(ok: bool) -> None:
            if self.waiters.settle(waiter) is None:
                return
            if ok or model_id in self.registry:
                reply.ok(header, model_id=model_id, **extra)
            else:
                reply.error(
                    header,
                    ErrorCode.NOT_LEADER,
                    f"node {self.id} lost leadership before model {model_id} committed; "
                    "retry with the same request id",
                )

        waiter = self.waiters.park(
            self.request_timeout(header),
            lambda: None,
            lambda: reply.error(
                header,
                ErrorCode.TIMEOUT,
                f"model {model_id} was not committed in time on node "
                f"{self.id} (no quorum?); retry with the same request id",
            ),
        )
        if self.leadership.propose(command, done) is not None:
            self.waiters.settle(waiter)
            self.redirect_or_unavailable(header, reply)


def _require_str(header: Header, key: str) -> str:
    value = header.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"field {key!r} must be a non-empty string", header=header
        )
    return value


def _require_count(header: Header, key: str) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"field {key!r} must be a non-negative integer", header=header
        )
    return value


def _not_found(model_id: str) -> str:
    return f"model {model_id!r} not found; `python -m client list` shows the models"


def _as_rows(inputs: np.ndarray) -> np.ndarray:
    if inputs.ndim == 1:
        inputs = inputs.reshape(1, -1)
    if inputs.ndim != 2 or inputs.shape[0] == 0:
        raise ProtocolError(
            ErrorCode.BAD_SHAPE,
            f"inputs must be a non-empty 2-D array (rows x columns), "
            f"got shape {list(inputs.shape)}",
        )
    return inputs  # NaN and infinity: the model checks each batch (serving.py)
