"""The HTTP monitor: ``/status``, ``/models``, ``/logs?n=``, ``/metrics``.

A stdlib ``ThreadingHTTPServer`` on its own thread, read-only, bound to
127.0.0.1 by default. It never touches sockets or the Raft core: the event
loop publishes plain snapshots (``Monitor.publish``) that this thread reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from .logs import tail
from .observe import NodeSnapshot

log = logging.getLogger("zmqnode.monitor")

MAX_LOG_LINES = 5000


# Idle or slow HTTP clients cost a thread each: cap both how long and how many.
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 32


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` at once; past that
    a new connection is closed at once instead of queueing a thread."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class Monitor:
    """Serves read-only views of one node over HTTP, from its own thread.

    The event loop calls ``publish`` once a tick with the node's snapshot;
    HTTP threads read only what was published, the log file and the metrics.
    """

    def __init__(
        self,
        node_id: str,
        host: str,
        port: int,
        log_path: str,
        render_metrics: Callable[[], str],
    ) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.log_path = log_path
        self.render_metrics = render_metrics
        self.server: BoundedHTTPServer | None = None
        self.views: dict[str, Any] = {"status": {}, "models": []}
        self._models_seen = -1

    def publish(self, snap: NodeSnapshot, listing: Callable[[], list[dict[str, Any]]]) -> None:
        """Refresh what HTTP readers see; ``listing`` is called only when the
        number of models changed."""
        models = self.views["models"]
        if snap.models != self._models_seen:
            models = listing()
            self._models_seen = snap.models
        self.views = {"status": snap.status(), "models": models}

    def start(self) -> None:
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_SECONDS  # a silent or slow client loses its connection

            def do_GET(self) -> None:
                url = urlparse(self.path)
                views = monitor.views
                if url.path == "/status":
                    self._json(views["status"])
                elif url.path == "/models":
                    self._json({"models": views["models"]})
                elif url.path == "/logs":
                    try:
                        n = int(parse_qs(url.query).get("n", ["100"])[0])
                    except ValueError:
                        self._json({"error": "n must be an integer"}, 400)
                        return
                    n = max(1, min(n, MAX_LOG_LINES))
                    self._json({"lines": tail(monitor.log_path, n)})
                elif url.path == "/metrics":
                    self._text(monitor.render_metrics())
                else:
                    self._json(
                        {
                            "error": f"no such page {url.path}; try /status, /models, "
                            "/logs?n=100 or /metrics"
                        },
                        404,
                    )

            def _json(self, obj: object, code: int = 200) -> None:
                self._send(code, "application/json", orjson.dumps(obj))

            def _text(self, text: str) -> None:
                self._send(200, "text/plain; version=0.0.4", text.encode())

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args) -> None:
                log.debug("http: " + fmt, *args)

        try:
            self.server = BoundedHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise SystemExit(
                f"node {self.node_id}: cannot open the HTTP monitor on "
                f"{self.host}:{self.port}: {exc}. Choose another --monitor-port."
            ) from None
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="monitor", daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
