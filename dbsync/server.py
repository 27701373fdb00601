"""The daemon's HTTP endpoints: /metrics /healthz /readyz /report /report.html.

Binds server.host (127.0.0.1 by default). With server.auth_token set, every path but /healthz needs
`Authorization: Bearer <token>`. Without a token on an address other than loopback (the container image
binds 0.0.0.0), /report and /report.html are off (403 naming the setting): anyone who reaches the pod
could otherwise make dbsync list both workspaces. The report is a full listing of both workspaces, so
one result serves every caller for REPORT_TTL_SECONDS (one computation at a time).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from dbsync import metrics
from dbsync.context import SyncContext
from dbsync.engine import update_gauges
from dbsync.registry import KIND_NAMES
from dbsync.report import Report, validate
from dbsync.report_html import render
from dbsync.roles import CUTOVER_STATES
from dbsync.scheduler import Daemon

log = logging.getLogger("dbsync.server")
REPORT_TTL_SECONDS = 60.0  # README: "the report is at most a minute old"


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        daemon: Daemon,
        auth_token: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(address, _Handler)
        self.daemon = daemon
        self.auth_token = auth_token
        self.clock = clock
        self._report: tuple[float, int, Report] | None = None
        self._report_lock = threading.Lock()
        self.report_open = bool(auth_token) or _loopback(address[0])
        if not self.report_open:
            log.warning(
                "/report and /report.html are off: the server listens on %s without server.auth_token "
                "(set DBSYNC_SERVER__AUTH_TOKEN to serve them)",
                address[0],
            )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def report(self) -> Report:
        """A live validation, at most REPORT_TTL_SECONDS old, computed with its own context.

        Callers never cause more than one listing a minute; a cycle that changed the target (the
        scheduler's pace, not the callers') makes the next report fresh.
        """
        with self._report_lock:
            generation = self.daemon.generation
            cached = self._report
            if cached and cached[1] == generation and self.clock() - cached[0] < REPORT_TTL_SECONDS:
                return cached[2]
            ctx = self.daemon.ctx
            own = SyncContext.build(ctx.settings, ctx.source, ctx.target, ctx.store)
            # Kinds without a version (permissions, metastore) are compared by the store here: reading every
            # object at each page refresh would cost what a whole cycle does. `dbsync validate` reads them.
            report = validate(own, fetch_unversioned=False)
            self._report = (self.clock(), generation, report)
            return report

    def start(self) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="status-server", daemon=True
        )
        thread.start()
        return thread


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: StatusServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path != "/healthz" and not self._authorized():
            self._send(
                401, b'{"error": "missing or wrong bearer token"}', "application/json", {"WWW-Authenticate": "Bearer"}
            )
            return
        route = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
            "/report": self._report_json,
            "/report.html": self._report_html,
        }.get(path)
        if route is None:
            self._send(404, b'{"error": "not found"}', "application/json")
            return
        if path.startswith("/report") and not self.server.report_open:
            body = b'{"error": "the report needs server.auth_token (DBSYNC_SERVER__AUTH_TOKEN) on this address"}'
            self._send(403, body, "application/json")
            return
        try:
            route()
        except Exception as err:  # the endpoint must answer even when a workspace does not
            log.exception("%s failed", path)
            self._send(500, json.dumps({"error": str(err)}).encode(), "application/json")

    def _authorized(self) -> bool:
        token = self.server.auth_token
        if not token:
            return True
        header = self.headers.get("Authorization") or ""
        return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())

    def _healthz(self) -> None:
        self._send(200, b'{"status": "alive"}', "application/json")

    def _readyz(self) -> None:
        problems = self.server.daemon.readiness()
        body = json.dumps({"ready": not problems, "problems": problems}).encode()
        self._send(200 if not problems else 503, body, "application/json")

    def _metrics(self) -> None:
        store = self.server.daemon.ctx.store
        update_gauges(store, KIND_NAMES)  # lag is computed at scrape time, so a stuck cycle shows it growing
        metrics.CUTOVER_STATE.set(CUTOVER_STATES.get(store.role, 0))
        self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)

    def _report_json(self) -> None:
        self._send(200, json.dumps(self.server.report().as_dict(), indent=2).encode(), "application/json")

    def _report_html(self) -> None:
        ctx = self.server.daemon.ctx
        page = render(self.server.report(), target_host=ctx.target.host, source_host=ctx.source.host)
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
