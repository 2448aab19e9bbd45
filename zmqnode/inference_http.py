"""The HTTP inference port: Open Inference Protocol routes on the node's loop.

``transport/http.py`` turns bytes into ``HttpRequest``s; this room routes
them (docs/HTTP.md). An infer call becomes a PREDICT and a model's metadata
an INFO, handed to the same ``dispatch`` as the ZeroMQ client port: the same
micro-batches, the same linearizable reads (a follower that has not applied
a model asks the leader before it answers 404), the same admission bounds.
Only the encoding differs, and ``oip.py`` owns it; ``HttpReplier`` is the
``Replier`` that answers in HTTP.

Who may use the port: anyone who sends the cluster's bearer token
(``KEYS/http.token``) in ``Authorization: Bearer``, unless the node runs
``--insecure``; the two health endpoints are open (load balancers probe
them). It binds 127.0.0.1 unless ``--http-host`` says otherwise.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from . import oip
from .replies import Header, Replier
from .transport.http import HttpRequest, Responder
from .transport.wire import ErrorCode, RequestType

log = logging.getLogger("zmqnode.http")

# Metrics labels: a fixed few, never a model id.
LIVE, READY, SERVER, MODEL, MODEL_READY, INFER, OTHER = (
    "live",
    "ready",
    "server",
    "model",
    "model_ready",
    "infer",
    "other",
)
OPEN_ENDPOINTS = (LIVE, READY)

# /v2/models/{name}[/versions/{version}][/ready|/infer]
_MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")
JSON = ("content-type", "application/json")


def route(method: str, path: str) -> tuple[str, str | None]:
    """(endpoint, model id) of a request path; OTHER when nothing matches."""
    if path == "/v2/health/live":
        return LIVE, None
    if path == "/v2/health/ready":
        return READY, None
    if path in ("/v2", "/v2/"):
        return SERVER, None
    match = _MODEL_PATH.match(path)
    if match is None:
        return OTHER, None
    tail = match.group(3)
    endpoint = MODEL if tail is None else MODEL_READY if tail == "/ready" else INFER
    return endpoint, match.group(1)


class HttpInference:
    """Serves the OIP endpoints. ``dispatch`` is ``RequestHandlers.dispatch``;
    ``ready()`` says whether this node can answer predictions now;
    ``on_answered(endpoint, status, seconds)`` feeds the metrics."""

    def __init__(
        self,
        node_id: str,
        token: str | None,
        dispatch: Callable[[Header, list[Any], Replier], None],
        task_of: Callable[[str], str | None],
        ready: Callable[[], bool],
        on_answered: Callable[[str, int, float], None],
        version: str,
    ) -> None:
        self.node_id = node_id
        self._token = None if token is None else token.encode()
        self.dispatch = dispatch
        self.task_of = task_of  # a model's task if this node has it (else None)
        self.ready = ready
        self.on_answered = on_answered
        self.version = version
        self.waiting: set[HttpReplier] = set()

    def on_request(self, request: HttpRequest, responder: Responder) -> None:
        path = request.target.split("?", 1)[0]
        endpoint, model_id = route(request.method, path)
        reply = HttpReplier(self, responder, endpoint, request.received)
        try:
            self._serve(request, endpoint, model_id, reply)
        except oip.OipError as exc:
            reply.respond_error(exc.status, exc.message)
        except Exception as exc:  # a bug must cost one request, never the node
            log.exception("internal error serving HTTP %s %s", request.method, path)
            reply.respond_error(500, f"node {self.node_id} failed: {exc!r}")

    def answer_all_waiting(self, message: str) -> None:
        """Answer every request still waiting (the node is going away)."""
        for reply in list(self.waiting):
            reply.respond_error(503, message)

    def _serve(
        self, request: HttpRequest, endpoint: str, model_id: str | None, reply: HttpReplier
    ) -> None:
        method = request.method
        if endpoint == OTHER:
            raise oip.OipError(404, f"no such endpoint: {request.target[:200]}")
        want = "POST" if endpoint == INFER else "GET"
        if method != want and not (method == "HEAD" and want == "GET"):
            raise oip.OipError(405, f"{request.target[:200]} takes {want}, not {method}")
        if endpoint not in OPEN_ENDPOINTS and not self._authorized(request):
            reply.respond(
                401,
                [JSON, ("www-authenticate", 'Bearer realm="zmqnode"')],
                oip.error_body(
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>' "
                    "with the cluster's token (KEYS/http.token)"
                ),
            )
            return
        if endpoint == LIVE:
            reply.respond(200, [JSON], b'{"live":true}')
        elif endpoint == READY:
            ready = self.ready()
            reply.respond(200 if ready else 503, [JSON], orjson.dumps({"ready": ready}))
        elif endpoint == SERVER:
            reply.respond(200, [JSON], orjson.dumps(oip.server_metadata(self.version)))
        elif endpoint in (MODEL, MODEL_READY):
            assert model_id is not None
            reply.model_id = model_id
            header = {"v": 1, "type": RequestType.INFO.value, "id": _new_id(), "model_id": model_id}
            self.dispatch(header, [], reply)
        else:
            assert model_id is not None
            length = oip.parse_header_length(request.headers.get(oip.HEADER_LENGTH.lower()))
            call = oip.parse_infer(model_id, request.body, length)
            reply.model_id, reply.call = model_id, call
            # The task decides what "every output" is; a model this node has not
            # applied yet answers without probabilities unless they are named.
            header = call.predict_header(_new_id(), self.task_of(model_id))
            self.dispatch(header, call.blobs, reply)

    def _authorized(self, request: HttpRequest) -> bool:
        if self._token is None:
            return True
        # RFC 9110 §11.1, §11.4: the scheme is case-insensitive, then 1+ spaces.
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = credentials.lstrip(" ").encode("latin-1", "replace")
        return hmac.compare_digest(given, self._token)


def _new_id() -> str:
    return os.urandom(12).hex()


class HttpReplier:
    """The ``Replier`` of one HTTP request: the node's OK and ERROR replies
    become OIP responses (``oip.py``), once."""

    __slots__ = ("server", "responder", "endpoint", "received", "model_id", "call", "sent")

    def __init__(
        self, server: HttpInference, responder: Responder, endpoint: str, received: float
    ) -> None:
        self.server = server
        self.responder = responder
        self.endpoint = endpoint
        self.received = received
        self.model_id = ""
        self.call: oip.InferCall | None = None
        self.sent = False

    def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        if self.sent:
            return
        self.sent = True
        self.server.waiting.discard(self)
        self.responder.respond(status, headers, body)
        self.server.on_answered(self.endpoint, status, time.monotonic() - self.received)

    def respond_error(self, status: int, message: str) -> None:
        self.respond(status, [JSON], oip.error_body(message))

    # -- Replier -----------------------------------------------------------------

    def send(self, header: Header, blobs: Sequence[bytes] = ()) -> None:
        status = header.get("status")
        if status == "OK":
            fields = {k: v for k, v in header.items() if k not in ("v", "type", "id", "status")}
            self.ok(None, blobs, **fields)
        elif status == "REDIRECT":  # reads are not redirected today; say where to go
            self.respond_error(
                503,
                f"node {self.server.node_id} sends this to the leader "
                f"{header.get('leader')}; ask that node's HTTP port",
            )
        else:
            code = header.get("code")
            self.error(
                None,
                ErrorCode(code) if code in ErrorCode._value2member_map_ else ErrorCode.INTERNAL,
                str(header.get("message", "")),
            )

    def ok(self, header: Header | None, blobs: Sequence[bytes] = (), **fields: Any) -> None:
        # Called by the batcher for a whole pass: a failure answers this one request.
        try:
            self._ok(fields, blobs)
        except oip.OipError as exc:
            self.respond_error(exc.status, exc.message)
        except Exception as exc:
            log.exception("internal error answering HTTP %s for %s", self.endpoint, self.model_id)
            self.respond_error(500, f"node {self.server.node_id} failed: {exc!r}")

    def _ok(self, fields: dict[str, Any], blobs: Sequence[bytes]) -> None:
        if self.endpoint == INFER:
            assert self.call is not None
            headers, body = oip.infer_response(self.call, self.model_id, fields, list(blobs))
            self.respond(200, headers, body)
        elif self.endpoint == MODEL_READY:
            self.respond(200, [JSON], orjson.dumps({"name": self.model_id, "ready": True}))
        else:
            listing = fields.get("model")
            if not isinstance(listing, dict):
                self.respond_error(500, "INFO reply without a model listing")
                return
            self.respond(200, [JSON], orjson.dumps(oip.model_metadata(self.model_id, listing)))

    def error(self, header: Header | None, code: ErrorCode, message: str) -> None:
        self.respond_error(oip.error_status(code), message)

    def progress(self, header: Header, **fields: Any) -> None:
        pass  # only TRAIN sends progress, and TRAIN is not served here

    def wait(self, header: Header) -> None:
        if not self.sent:
            self.server.waiting.add(self)
