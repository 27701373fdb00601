"""The daemon's HTTP endpoints: /metrics /healthz /livez /readyz /cutover-readyz /report /report.html.

Binds server.host (127.0.0.1 by default). With server.auth_token set, every path but /healthz and /livez needs
`Authorization: Bearer <token>`. Without a token on an address other than loopback (the container image
binds 0.0.0.0), /report and /report.html are off (403 naming the setting): anyone who reaches the pod
could otherwise make dbsync list both workspaces. The report is a full listing of both workspaces, so
one result serves every caller for REPORT_TTL_SECONDS (one computation at a time).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from dbsync import metrics
from dbsync.context import SyncContext
from dbsync.engine import update_gauges
from dbsync.registry import disabled_kinds, kind_names
from dbsync.report import Report, validate, validate_from_store
from dbsync.report_html import moment_page, render_login, render_page, source_down
from dbsync.roles import CUTOVER_STATES
from dbsync.scheduler import Daemon

log = logging.getLogger("dbsync.server")
REPORT_TTL_SECONDS = 60.0  # README: "the report is at most a minute old"
_OPEN_PATHS = ("/healthz", "/livez")  # probes a kubelet sends without a token; they say nothing about the workspaces
SESSION_COOKIE = "dbsync_session"
SESSION_SECONDS = 12 * 3600  # a browser signs in once per shift
MAX_LOGIN_BODY = 4096


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
        self._stored: tuple[float, Report] | None = None
        self._probe: tuple[float, str | None] | None = None
        # Browser sessions: sha256 of each random session id → expiry (the cookie holds the id, never the token).
        self.sessions: dict[str, float] = {}
        self._sessions_lock = threading.Lock()
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

    def stored_report(self) -> Report:
        """The store's last synced state against the live target (a source outage), at most REPORT_TTL_SECONDS old."""
        with self._report_lock:
            if self._stored and self.clock() - self._stored[0] < REPORT_TTL_SECONDS:
                return self._stored[1]
            ctx = self.daemon.ctx
            report = validate_from_store(SyncContext.build(ctx.settings, ctx.source, ctx.target, ctx.store))
            self._stored = (self.clock(), report)
            return report

    def source_down(self, host: str) -> str | None:
        """Why the source does not answer (None when it does), probed at most once per REPORT_TTL_SECONDS.

        A cached live report still in date answers for the source (it listed it within the minute): no probe.
        """
        cached = self._report
        if cached and cached[1] == self.daemon.generation and self.clock() - cached[0] < REPORT_TTL_SECONDS:
            return None
        if self._probe and self.clock() - self._probe[0] < REPORT_TTL_SECONDS:
            return self._probe[1]
        reason = source_down(host)
        self._probe = (self.clock(), reason)
        return reason

    def new_session(self) -> str:
        """A random session id for a browser that POSTed the right token; only its digest is kept."""
        session = secrets.token_urlsafe(32)
        with self._sessions_lock:
            now = self.clock()
            self.sessions = {k: v for k, v in self.sessions.items() if v > now}
            self.sessions[_digest(session)] = now + SESSION_SECONDS
        return session

    def session_valid(self, session: str) -> bool:
        with self._sessions_lock:
            expires = self.sessions.get(_digest(session))
        return expires is not None and expires > self.clock()

    def end_session(self, session: str) -> None:
        with self._sessions_lock:
            self.sessions.pop(_digest(session), None)

    def start(self) -> threading.Thread:
        metrics.zero_series(kind_names())  # every kind's series at 0 before the first scrape
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="status-server", daemon=True
        )
        thread.start()
        return thread


def _digest(session: str) -> str:
    return hashlib.sha256(session.encode()).hexdigest()


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
        if path == "/login" or (path == "/report.html" and not self._authorized()):
            self._login_page(path)
            return
        if path not in _OPEN_PATHS and not self._authorized():
            self._send(
                401, b'{"error": "missing or wrong bearer token"}', "application/json", {"WWW-Authenticate": "Bearer"}
            )
            return
        route = {
            "/healthz": self._healthz,
            "/livez": self._livez,
            "/readyz": self._readyz,
            "/cutover-readyz": self._cutover_readyz,
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
        """A Bearer header with the token (scripts, Prometheus) or a browser's session cookie."""
        token = self.server.auth_token
        if not token:
            return True
        header = self.headers.get("Authorization") or ""
        if hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
            return True
        session = self._session_cookie()
        return bool(session) and self.server.session_valid(session)

    def _session_cookie(self) -> str:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                return value
        return ""

    # -- browser login: POST the token once, get an HttpOnly SameSite=Strict session cookie --------
    def _login_page(self, path: str) -> None:
        if path == "/report.html" or not self.server.auth_token:
            self._redirect("/login" if self.server.auth_token else "/report.html")
            return
        self._send(200, render_login().encode(), "text/html; charset=utf-8", _NO_STORE)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/login":
            self._login()
        elif path == "/logout":
            self.server.end_session(self._session_cookie())
            self._redirect("/login", {"Set-Cookie": f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"})
        else:
            self._send(405, b'{"error": "only /login and /logout accept POST"}', "application/json", {"Allow": "GET"})

    def _login(self) -> None:
        token = self.server.auth_token
        declared = self.headers.get("Content-Length") or "0"
        length = int(declared) if declared.isdigit() else -1  # a malformed length is refused, not a crash
        if not token or not 0 <= length <= MAX_LOGIN_BODY:
            self._send(400, b'{"error": "no login on this server, or the form is too large"}', "application/json")
            return
        fields = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        given = (fields.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            log.warning("a login with a wrong token from %s", self.client_address[0])
            self._send(401, render_login(failed=True).encode(), "text/html; charset=utf-8", _NO_STORE)
            return
        session = self.server.new_session()
        cookie = f"{SESSION_COOKIE}={session}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict"
        self._redirect("/report.html", {"Set-Cookie": cookie})

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(303, b"", "text/plain", {"Location": location, **_NO_STORE, **(headers or {})})

    def _healthz(self) -> None:
        self._send(200, b'{"status": "alive"}', "application/json")

    def _livez(self) -> None:
        """503 when the scheduler stopped making progress (the kubelet restarts the pod); 200 otherwise."""
        problems = self.server.daemon.liveness()
        body = json.dumps({"alive": not problems, "problems": problems}).encode()
        self._send(200 if not problems else 503, body, "application/json")

    def _readyz(self) -> None:
        """200 while this daemon serves: a source outage or a completed cutover is no reason to leave the Service.

        Only a daemon shutting down is not ready. Whether a cutover may start is /cutover-readyz.
        """
        if self.server.daemon.closing:  # not the stop flag: a hand-over to `dbsync cutover` sets that too
            self._send(503, b'{"serving": false, "reason": "shutting down"}', "application/json")
            return
        try:
            ready: bool | None = not self._cutover_problems()
        except Exception:  # serving does not depend on the store answering; /cutover-readyz says what failed
            log.warning("/readyz: cannot read the cutover readiness", exc_info=True)
            ready = None
        body = json.dumps({"serving": True, "cutover_ready": ready, "details": "/cutover-readyz"}).encode()
        self._send(200, body, "application/json")

    def _cutover_readyz(self) -> None:
        """200 when a cutover may rely on the standby (replicating, both workspaces answered, nothing stale)."""
        problems = self._cutover_problems()
        body = json.dumps({"ready": not problems, "problems": problems}).encode()
        self._send(200 if not problems else 503, body, "application/json")

    def _cutover_problems(self) -> list[str]:
        problems = self.server.daemon.readiness()
        metrics.CUTOVER_READY.set(0 if problems else 1)
        return problems

    def _metrics(self) -> None:
        store = self.server.daemon.ctx.store
        disabled = disabled_kinds(self.server.daemon.settings)  # not replicated: neither synced nor unknown
        replicated = [name for name in kind_names() if name not in disabled]
        update_gauges(store, replicated)  # lag is computed at scrape time, so a stuck cycle shows it growing
        metrics.forget_kinds(disabled)
        metrics.CUTOVER_STATE.set(CUTOVER_STATES.get(store.role, 0))
        self._cutover_problems()  # sets dbsync_cutover_ready
        self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)

    def _report_json(self) -> None:
        self._send(200, json.dumps(self.server.report().as_dict(), indent=2).encode(), "application/json")

    def _report_html(self) -> None:
        ctx = self.server.daemon.ctx
        page = moment_page(
            ctx.store,
            ctx.source.host,
            ctx.target.host,
            live=self.server.report,
            from_store=self.server.stored_report,
            probe=self.server.source_down,
        )
        self._send(200, render_page(page).encode(), "text/html; charset=utf-8", _NO_STORE)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


_NO_STORE = {"Cache-Control": "no-store"}  # pages list both workspaces: no shared or disk cache keeps them
