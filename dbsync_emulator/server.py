"""HTTP front of the emulator: auth, faults, rate limit, admin surface, dispatch to API modules."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import random
import re
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from socketserver import StreamRequestHandler
from typing import Any
from urllib.parse import unquote

from dbsync_emulator import apis, audit
from dbsync_emulator.apis import tokens
from dbsync_emulator.errors import ApiError
from dbsync_emulator.router import Request, Response, Routes, parse_query
from dbsync_emulator.state import Workspace
from dbsync_emulator.timing import Timing

log = logging.getLogger("dbsync_emulator")

WELL_KNOWN = "/.well-known/databricks-config"
ADMIN_PREFIX = "/_emulator/"
_ALIASES = (("/api/2.0/preview/permissions/", "/api/2.0/permissions/"),)
_GOLDEN = 0.6180339887498949  # Weyl sequence step: evenly spread deterministic faults
RESET = 0  # the status of an answer that is never sent: the connection is reset instead
RULE_ACTIONS = ("not_found", "reset", "html", "loop_token", "repeat_page", "skip_object", "schema_not_found")
STATEMENTS_PATH = "/api/2.0/sql/statements"
_REPEAT_MARK = "~again"  # appended to page tokens by `repeat_page`, stripped before the handler sees them
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Proxy login required</body></html>"


@dataclass
class FaultRule:
    """A fault on the requests that match one method, path and query, for the next `times` of them (None: all).

    `path` is a prefix, or a template whose `{name}` segments match any one segment
    (`/api/2.0/permissions/jobs/{id}`); `query` values must equal the request's. Actions:
    not_found    404 RESOURCE_DOES_NOT_EXIST, as for an object that is not there
    reset        the connection is closed (RST) without an answer
    html         200 with an HTML page (a login proxy or a load balancer's error page)
    loop_token   a page requested with `page_token` answers that same token as `next_page_token`
    repeat_page  a page requested with a token answers a new token that leads to the same page again
    skip_object  the page answers without its object at `position` (0: the first): what a client of offset paging
                 (SCIM's startIndex, the jobs page token) gets when an object is deleted between two page requests:
                 the next page starts one later, and an object that still exists is never listed
    schema_not_found  a SQL statement (POST /api/2.0/sql/statements) fails with SCHEMA_NOT_FOUND, as a metastore
                 hiccup answers for a schema that exists
    `statement`, when set, matches only SQL statements that start with it (case and spacing as sent).
    """

    action: str
    path: str
    method: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    times: int | None = None
    statement: str | None = None
    position: int = 0

    def __post_init__(self) -> None:
        if self.action not in RULE_ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}: use one of {', '.join(RULE_ACTIONS)}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"fault rule times={self.times}: use a positive count, or null for every request")
        pattern = "/".join("[^/]+" if part.startswith("{") else re.escape(part) for part in self.path.split("/"))
        self._pattern = re.compile(pattern + ("$" if "{" in self.path else ""))

    def matches(self, method: str, path: str, query: dict[str, list[str]], statement: str | None = None) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if not self._pattern.match(path):
            return False
        if self.statement is not None and not (statement or "").startswith(self.statement):
            return False
        return all(query.get(name, [None])[0] == value for name, value in self.query.items())


@dataclass
class Faults:
    """Injected faults, settable at run time through PUT /_emulator/faults."""

    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_500: float = 0.0
    latency_ms: float = 0.0
    retry_after_seconds: int = 1
    path_prefix: str = "/api/"  # only requests under this prefix get faults
    # True: faults hit an exact fraction of requests in a fixed pattern (a Weyl sequence) instead of
    # at random, so a test knows how many calls fail. The pattern restarts whenever faults are set.
    deterministic: bool = False
    # >0: stop injecting after this many faults, e.g. fail exactly one request to one path (with path_prefix).
    max_faults: int = 0

    # Targeted faults (FaultRule), tried in order; the first rule that matches a request applies.
    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rules = [r if isinstance(r, FaultRule) else FaultRule(**r) for r in self.rules]

    @classmethod
    def from_fault_rate(cls, fault_rate: float, latency_ms: float = 0.0) -> Faults:
        """`--fault-rate F`: F of requests fail, two thirds as 429 and one third as 503."""
        return cls(rate_429=fault_rate * 2 / 3, rate_503=fault_rate / 3, latency_ms=latency_ms)


class TokenBucket:
    """Requests per second with a burst of one second's worth, like the service's per-workspace limits."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


@dataclass
class RetryAfterLedger:
    """Whether clients honour Retry-After: each refusal sent with it, and when the same request came back.

    "The same request" is method + target + body: the SDK retries a refused request from the thread
    that sent it, so this is Retry-After honoured per retried request (other threads' requests are
    not retries and may go on). A retry that arrives before the Retry-After delay is `early`.
    """

    sent: int = 0  # responses carrying Retry-After (429s and 503s)
    retried: int = 0  # of those, requests seen again
    early: int = 0  # retries that came before Retry-After elapsed
    min_margin: float | None = None  # smallest (waited - Retry-After) over retries, seconds
    pending: dict[tuple[str, str, bytes], tuple[float, float]] = field(default_factory=dict, repr=False)

    MAX_PENDING = 100_000  # refusals never retried (a killed client) must not grow without bound

    def observe(self, key: tuple[str, str, bytes], arrived: float, retry_after: str | None) -> None:
        """Called under the stats lock for every API request once it is answered."""
        due = self.pending.pop(key, None) if self.pending else None
        if due is not None:
            refused_at, delay = due
            margin = arrived - refused_at - delay
            self.retried += 1
            if margin < 0:
                self.early += 1
            self.min_margin = margin if self.min_margin is None else min(self.min_margin, margin)
        if retry_after is None:
            return
        self.sent += 1
        if len(self.pending) >= self.MAX_PENDING:
            self.pending.pop(next(iter(self.pending)))
        try:
            delay = float(retry_after)
        except ValueError:
            delay = 0.0
        self.pending[key] = (time.monotonic(), delay)

    def document(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "early": self.early,
            "min_margin_seconds": None if self.min_margin is None else round(self.min_margin, 3),
        }


@dataclass
class Stats:
    """Per-endpoint request counters (endpoint = method + route template), for tests and benchmarks.

    Only the emulated API is counted: calls to the admin surface (/_emulator/...) are not. When any
    response carried Retry-After, `retry_after` says whether clients waited before retrying.
    """

    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    total: int = 0
    # Requests by the wall-clock second they arrived in (the last MAX_SECONDS seconds): a client's pace.
    per_second: dict[int, int] = field(default_factory=dict)
    # The part of `per_second` sent with a token other than the start-up one (a benchmark's own edits, made with
    # a token it created, are told apart from the client under test, which uses the start-up token).
    per_second_other_tokens: dict[int, int] = field(default_factory=dict)
    retry_after: RetryAfterLedger = field(default_factory=RetryAfterLedger)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe_retry(self, method: str, target: str, body: bytes, arrived: float, retry_after: str | None) -> None:
        """Track Retry-After refusals and their retries (cheap when no refusal is outstanding)."""
        if retry_after is None and not self.retry_after.pending:
            return
        key = (method, target, hashlib.blake2b(body, digest_size=16).digest() if body else b"")
        with self.lock:
            self.retry_after.observe(key, arrived, retry_after)

    # Six hours: the longest benchmark (a 90-minute steady state after its initial sync) is counted whole; with one
    # hour kept, a 90-minute run's report silently covered its last 60 minutes only (~20 bytes a second).
    MAX_SECONDS = 6 * 3600

    def record(self, endpoint: str, status: int, arrived_at: float | None = None, other_token: bool = False) -> None:
        with self.lock:
            self.total += 1
            second = int(time.time() if arrived_at is None else arrived_at)
            for counts, counted in ((self.per_second, True), (self.per_second_other_tokens, other_token)):
                if counted:
                    counts[second] = counts.get(second, 0) + 1
                    if len(counts) > self.MAX_SECONDS:
                        counts.pop(next(iter(counts)))
            entry = self.endpoints.get(endpoint)
            if entry is None:
                entry = self.endpoints[endpoint] = {"count": 0, "statuses": {}}
            entry["count"] += 1
            key = str(status)
            entry["statuses"][key] = entry["statuses"].get(key, 0) + 1

    def document(self) -> dict[str, Any]:
        with self.lock:
            doc: dict[str, Any] = {"total": self.total, "endpoints": json.loads(json.dumps(self.endpoints))}
            if self.per_second:
                doc["per_second"] = {str(k): v for k, v in self.per_second.items()}
                doc["max_per_second"] = max(self.per_second.values())
            if self.per_second_other_tokens:
                doc["per_second_other_tokens"] = {str(k): v for k, v in self.per_second_other_tokens.items()}
            if self.retry_after.sent:
                doc["retry_after"] = self.retry_after.document()
            return doc

    def reset(self) -> None:
        with self.lock:
            self.endpoints.clear()
            self.total = 0
            self.per_second.clear()
            self.per_second_other_tokens.clear()
            self.retry_after = RetryAfterLedger()


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], workspace: Workspace, token: str) -> None:
        super().__init__(address, _Handler)
        self.workspace = workspace
        self.token = token
        self.bucket: TokenBucket | None = None
        self.stats = Stats()
        self.routes = apis.all_routes()
        self.admin = _admin_routes()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.set_faults(Faults())

    def set_faults(self, faults: Faults) -> None:
        """Install fault settings and restart the fault sequence, so a run is reproducible."""
        self.fault_random = random.Random(7)
        self.fault_count = 0
        self.faults_injected = 0
        self.faults = faults

    def take_fault(self) -> bool:
        """Count one injected fault against `max_faults`; False once the budget is spent."""
        with self.connections_lock:
            if self.faults_injected >= self.faults.max_faults:
                return False
            self.faults_injected += 1
            return True

    def take_rule(
        self, method: str, path: str, query: dict[str, list[str]], statement: str | None = None
    ) -> FaultRule | None:
        """The first fault rule matching this request, counting it against the rule's `times`."""
        if not self.faults.rules:
            return None
        with self.connections_lock:
            for rule in self.faults.rules:
                if rule.times == 0 or not rule.matches(method, path, query, statement):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None

    def fault_roll(self) -> float:
        """A number in [0, 1) per request; a request fails when it falls under the fault rates."""
        if not self.faults.deterministic:
            return self.fault_random.random()
        with self.connections_lock:
            self.fault_count += 1
            count = self.fault_count
        return (count * _GOLDEN) % 1.0

    def track(self, connection: socket.socket, open_: bool) -> None:
        """Remember open client connections so `stop()` can close keep-alive ones."""
        with self.connections_lock:
            if open_:
                self.connections.add(connection)
            else:
                self.connections.discard(connection)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(StreamRequestHandler):
    """A lean HTTP/1.1 keep-alive handler: one recv loop, one sendall per response.

    http.server's BaseHTTPRequestHandler parses headers with the email package and writes headers and
    body separately; that cost most of the emulator's per-request time, so requests are parsed here.
    """

    server: EmulatorServer
    # Small writes must not wait for the client's delayed ACK (40 ms per call on loopback).
    disable_nagle_algorithm = True

    def handle(self) -> None:
        self.server.track(self.connection, True)
        try:
            while self._handle_one():
                pass
        except (ConnectionError, TimeoutError, OSError):
            pass  # the client went away or the emulator is stopping
        finally:
            self.server.track(self.connection, False)

    def _handle_one(self) -> bool:
        """Serve one request; False when the connection should close."""
        line = self.rfile.readline(_MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # tolerated between pipelined requests (RFC 9112 §2.2)
            line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(line) > _MAX_LINE or len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._write(
                _error_response(400, "MALFORMED_REQUEST", "Malformed HTTP request line"),
                "HTTP/1.1",
                keep_alive=False,
            )
            return False
        method, target, version = parts
        headers = self._read_headers()
        if headers is None:
            self._write(
                _error_response(431, "MALFORMED_REQUEST", "Request headers too large"),
                version,
                keep_alive=False,
            )
            return False
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            raw_body = self._read_body(headers)
        except ValueError:  # a bad Content-Length or chunk size: the stream cannot be resynchronised
            self._write(_error_response(400, "MALFORMED_REQUEST", "Malformed request body framing"), version, False)
            return False
        response = self._serve(method, target, headers, raw_body)
        if response.status == RESET:
            self._reset()
            return False
        self._write(response, version, keep_alive)
        return keep_alive

    def _reset(self) -> None:
        """Close the connection with a TCP RST and no answer, as a dropped connection looks to a client."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _read_headers(self) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.rfile.readline(_MAX_LINE + 1)
            if not line:  # the client went away before the end of its headers: nothing to serve
                raise ConnectionError("connection closed in the request's headers")
            if line in (b"\r\n", b"\n"):
                return headers
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return None

    def _read_body(self, headers: dict[str, str]) -> bytes:
        """The whole body, or ConnectionError when the client went away before sending it all.

        A request cut short is never served: read as the bytes that came, a `jobs/create` whose client was killed
        after its headers made a job of `{}` ("Untitled"), which the service, never receiving the request, does not.
        """
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self._read_line().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self._read_line() not in (b"\r\n", b"\n"):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self._read_exactly(size))
                self._read_line()
        length = int(headers.get("content-length") or 0)
        return self._read_exactly(length) if length > 0 else b""

    def _read_line(self) -> bytes:
        line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            raise ConnectionError("connection closed in the request's body")
        return line

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionError("connection closed in the request's body")
        return data

    # -- the request pipeline -------------------------------------------------------------------
    def _serve(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> _Encoded:
        arrived, arrived_at = time.monotonic(), time.time()
        raw_path, _, query_string = target.partition("?")
        path = unquote(raw_path)
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        endpoint, response = self._dispatch(method, path, query_string, headers, raw_body)
        if method == "HEAD":  # headers only; Content-Length is what a GET would send (RFC 9110 §9.3.2)
            length = {"Content-Length": str(len(response.payload)), **response.headers}
            response = _Encoded(response.status, b"", response.content_type, length)
        if not path.startswith(ADMIN_PREFIX):  # stats describe the emulated API, not the test harness
            other = headers.get("authorization", "").partition(" ")[2].strip() != self.server.token
            self.server.stats.record(endpoint, response.status, arrived_at, other_token=other)
            self.server.stats.observe_retry(method, target, raw_body, arrived, response.headers.get("Retry-After"))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s -> %d", self.client_address[0], method, target, response.status)
        return response

    def _dispatch(
        self, method: str, path: str, query_string: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[str, _Encoded]:
        """(endpoint label for stats, encoded response): errors come back as error responses."""
        srv = self.server
        if path == WELL_KNOWN and method == "GET":
            return f"GET {WELL_KNOWN}", _encode(Response(200, _host_metadata(srv)))
        for old, new in _ALIASES:
            if path.startswith(old):
                path = new + path[len(old) :]
        admin = path.startswith(ADMIN_PREFIX)
        routes = srv.admin if admin else srv.routes
        route, params, _ = routes.match(method, path)
        endpoint = f"{method} {route.template}" if route else f"{method} {path}"
        try:
            _authenticate(srv, headers)
            if route is None:
                # The service routes on method and path: a known path with another method is no API either.
                raise _no_api(method, path)
            req = _request(method, path, query_string, headers, raw_body, params)
            if admin:
                return endpoint, _encode(_as_response(route.handler(srv, req)))
            _throttle(srv, path)
            rule = srv.take_rule(method, path, req.query, _statement_text(srv, method, path, req))
            if rule is not None and rule.action in ("not_found", "reset", "html"):
                return endpoint, _rule_answer(rule, method, path, query_string)
            if rule is not None and rule.action == "schema_not_found":
                req.fault = rule.action  # the statement is queued and fails as it runs (apis/sql.py)
            token = _page_token(req, rule)
            ws = srv.workspace
            # Encoding under the lock lets handlers return live state without copying it.
            with ws.lock:
                response = _as_response(route.handler(ws, req))
                _audit(ws, method, path, req, response)
                if rule is not None:
                    response = _paging_fault(rule, token, response)
                return endpoint, _encode(response)
        except ApiError as err:
            return endpoint, _encode(Response(err.status, err.body(), headers=err.headers))
        except Exception as err:  # a bug in the emulator must still answer like a server
            traceback.print_exc(file=sys.stderr)
            return endpoint, _error_response(500, "INTERNAL_ERROR", f"Emulator error: {err}")

    def _write(self, response: _Encoded, version: str, keep_alive: bool) -> None:
        head = [f"HTTP/1.1 {response.status} {_reason(response.status)}\r\n", _static_headers()]
        # The service names the workspace on every answer; the SDK's get_workspace_id() reads it from /Me.
        head.append(f"X-Databricks-Org-Id: {self.server.workspace.workspace_id}\r\n")
        if response.payload or response.status != 204:
            head.append(f"Content-Type: {response.content_type}\r\n")
        if "Content-Length" not in response.headers:
            head.append(f"Content-Length: {len(response.payload)}\r\n")
        for name, value in response.headers.items():
            head.append(f"{name}: {value}\r\n")
        if not keep_alive:
            head.append("Connection: close\r\n")
        elif version == "HTTP/1.0":
            head.append("Connection: keep-alive\r\n")
        head.append("\r\n")
        self.wfile.write("".join(head).encode("latin-1") + response.payload)


_MAX_LINE = 65536
_MAX_HEADERS = 200
_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass
class _Encoded:
    """A response ready for the wire: status, payload bytes, content type, extra headers."""

    status: int
    payload: bytes
    content_type: str
    headers: dict[str, str]


def _encode(response: Response) -> _Encoded:
    body = response.body
    if body is None:
        payload = b""
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = _JSON.encode(body).encode()
    return _Encoded(response.status, payload, response.content_type, response.headers)


def _error_response(status: int, error_code: str, message: str) -> _Encoded:
    return _encode(Response(status, {"error_code": error_code, "message": message}))


@functools.lru_cache(maxsize=64)
def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


_date_cache: list[Any] = [0, ""]


def _static_headers() -> str:
    """Server and Date headers; the date string changes once a second, so it is cached."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = f"Server: dbsync-emulator\r\nDate: {formatdate(now, usegmt=True)}\r\n"
    return _date_cache[1]


def _authenticate(srv: EmulatorServer, headers: dict[str, str]) -> None:
    header = headers.get("authorization") or ""
    if not header:
        raise ApiError(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not _known_token(srv, token.strip()):
        raise ApiError(403, "PERMISSION_DENIED", "Invalid access token.")


def _known_token(srv: EmulatorServer, token: str) -> bool:
    """The start-up token, or a live one created through the token APIs."""
    if token == srv.token:
        return True
    with srv.workspace.lock:
        return tokens.authenticates(srv.workspace, token)


def _throttle(srv: EmulatorServer, path: str) -> None:
    """The per-workspace rate limit, then the injected faults (latency, 429, 503, 500)."""
    if srv.bucket is not None and not srv.bucket.take():
        raise ApiError(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            "Too many requests. Please wait a moment and try again.",
            headers={"Retry-After": "1"},
        )
    faults = srv.faults
    if not path.startswith(faults.path_prefix):
        return
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000.0)
    if not (faults.rate_429 or faults.rate_503 or faults.rate_500):
        return
    roll = srv.fault_roll()
    injected = _injected(faults, roll)
    if injected is None or (faults.max_faults and not srv.take_fault()):
        return
    raise injected


def _injected(faults: Faults, roll: float) -> ApiError | None:
    """The fault a request whose roll is `roll` gets (429, 503 or 500), or None."""
    retry_after = {"Retry-After": str(faults.retry_after_seconds)}
    if roll < faults.rate_429:
        return ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests (injected).", headers=retry_after)
    roll -= faults.rate_429
    if roll < faults.rate_503:
        return ApiError(
            503,
            "TEMPORARILY_UNAVAILABLE",
            "The service is temporarily unavailable (injected).",
            headers=retry_after,
        )
    roll -= faults.rate_503
    if roll < faults.rate_500:
        return ApiError(500, "INTERNAL_ERROR", "Internal error (injected).")
    return None


def _rule_answer(rule: FaultRule, method: str, path: str, query_string: str) -> _Encoded:
    """The answer of a not_found, reset or html rule (the handler is not called)."""
    if rule.action == "reset":
        return _Encoded(RESET, b"", "", {})
    if rule.action == "html":
        return _Encoded(200, HTML_PAGE, "text/html; charset=utf-8", {})
    target = path + (f"?{unquote(query_string)}" if query_string else "")
    return _error_response(404, "RESOURCE_DOES_NOT_EXIST", f"{method} {target}: the resource does not exist (injected)")


def _page_token(req: Request, rule: FaultRule | None) -> str | None:
    """The page token the client sent; a `repeat_page` mark is removed so the handler serves the same page.

    The mark is removed after the rule ran out too, so the listing then goes on normally.
    """
    token = req.arg("page_token")
    if token and _REPEAT_MARK in token:
        req.query["page_token"] = [token.split(_REPEAT_MARK, 1)[0]]
    return token


def _statement_text(srv: EmulatorServer, method: str, path: str, req: Request) -> str | None:
    """The SQL text of a statement request, read only when a fault rule may match on it."""
    if method != "POST" or path != STATEMENTS_PATH or not any(r.statement for r in srv.faults.rules):
        return None
    try:
        return str(req.json.get("statement") or "")
    except ApiError:
        return None


def _paging_fault(rule: FaultRule, token: str | None, response: Response) -> Response:
    """loop_token: the page answers its own token as the next one; repeat_page: a new token to the same page;
    skip_object: the object at the rule's `position` of the page's objects (`Resources`, `jobs`, ...) is left out."""
    if rule.action == "skip_object":
        body = response.body if isinstance(response.body, dict) else {}
        field = next((k for k, v in body.items() if isinstance(v, list) and v and isinstance(v[0], dict)), None)
        if field is None:
            return response
        kept = [item for i, item in enumerate(body[field]) if i != rule.position]
        return Response(response.status, {**body, field: kept}, headers=response.headers)
    if rule.action not in ("loop_token", "repeat_page"):
        return response
    if not token or not isinstance(response.body, dict):
        return response  # the first page is answered as it is: the loop starts on the second
    if rule.action == "loop_token":
        next_token = token
    else:
        base, _, count = token.partition(_REPEAT_MARK)
        next_token = f"{base}{_REPEAT_MARK}{int(count or 0) + 1}"
    return Response(response.status, {**response.body, "next_page_token": next_token}, headers=response.headers)


def _request(
    method: str,
    path: str,
    query_string: str,
    headers: dict[str, str],
    raw_body: bytes,
    params: dict[str, str],
) -> Request:
    req = Request(method, path, parse_query(query_string), headers, raw_body, params)
    content_type = headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        req.form = _parse_multipart(content_type, raw_body)
    return req


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return Response(200, result if result is not None else {})


def _no_api(method: str, path: str) -> ApiError:
    return ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")


# The account every emulated workspace belongs to (a DR pair usually shares one); a UUID like the service's.
ACCOUNT_ID = "5e1f6a2c-0d44-4b1e-9c71-7e2a3b8d9f10"


def _host_metadata(srv: EmulatorServer) -> dict[str, Any]:
    return {
        "oidc_endpoint": f"{srv.base_url}/oidc",
        "account_id": getattr(srv.workspace, "account_id", ACCOUNT_ID),
        "workspace_id": str(srv.workspace.workspace_id),
        "cloud": "AWS",
    }


def _parse_multipart(content_type: str, raw_body: bytes) -> dict[str, Any]:
    """multipart/form-data → {field: str, file part: bytes}, as workspace.upload() and databricks-cli send it.

    Parsed on bytes: a part may carry any Content-Type (databricks-cli 0.18 labels its file part
    `multipart/form-data`), which a MIME parser would read as a nested message and alter.
    """
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        return {}
    form: dict[str, Any] = {}
    for chunk in raw_body.split(b"--" + boundary.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, separator, payload = chunk.partition(b"\r\n\r\n")
        headers = head.decode("latin-1")
        name = re.search(r';\s*name="([^"]*)"', headers)
        if not separator or name is None:
            continue
        payload = payload[:-2] if payload.endswith(b"\r\n") else payload
        is_file = "filename=" in headers or name.group(1) == "content"
        form[name.group(1)] = payload if is_file else payload.decode()
    return form


# -- admin surface (/_emulator/...) -------------------------------------------------------------
def _admin_routes() -> Routes:
    routes = Routes()

    @routes.get("/_emulator/stats")
    def stats(srv: EmulatorServer, req: Request) -> dict:
        return srv.stats.document()

    @routes.post("/_emulator/stats/reset")
    def stats_reset(srv: EmulatorServer, req: Request) -> dict:
        srv.stats.reset()
        return {}

    @routes.post("/_emulator/reset")
    def reset(srv: EmulatorServer, req: Request) -> dict:
        srv.workspace.reset()
        srv.stats.reset()
        srv.set_faults(Faults())
        return {}

    @routes.get("/_emulator/faults")
    def get_faults(srv: EmulatorServer, req: Request) -> dict:
        return asdict(srv.faults)

    @routes.put("/_emulator/faults")
    def put_faults(srv: EmulatorServer, req: Request) -> dict:
        body = req.json
        rate_limit = body.pop("rate_limit", "unchanged")
        try:
            srv.set_faults(Faults(**{**asdict(Faults()), **body}))
        except (TypeError, ValueError) as err:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Bad fault setting: {err}") from None
        if rate_limit != "unchanged":
            srv.bucket = TokenBucket(float(rate_limit)) if rate_limit else None
        return asdict(srv.faults)

    @routes.get("/_emulator/snapshot")
    def snapshot(srv: EmulatorServer, req: Request) -> dict:
        return srv.workspace.snapshot()

    @routes.put("/_emulator/snapshot")
    def restore(srv: EmulatorServer, req: Request) -> dict:
        srv.workspace.restore(req.json)
        return {}

    @routes.post("/_emulator/seed")
    def seed(srv: EmulatorServer, req: Request) -> dict:
        from dbsync_emulator.seed import seed_workspace

        body = req.json
        with srv.workspace.lock:
            return seed_workspace(srv.workspace, int(body.get("objects", 100)), int(body.get("seed", 0)))

    return routes


# -- lifecycle ------------------------------------------------------------------------------------
@dataclass
class EmulatorHandle:
    """A running emulator: `.url`, `.token`, `.workspace` (in-process state), `.stop()`."""

    server: EmulatorServer
    thread: threading.Thread
    state_file: Path | None = None

    @property
    def url(self) -> str:
        return self.server.base_url

    @property
    def token(self) -> str:
        return self.server.token

    @property
    def workspace(self) -> Workspace:
        return self.server.workspace

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def set_faults(self, **settings: Any) -> None:
        """Replace the fault settings (unnamed settings go back to their defaults)."""
        self.server.set_faults(Faults(**{**asdict(Faults()), **settings}))

    def set_rate_limit(self, rps: float | None) -> None:
        self.server.bucket = TokenBucket(rps) if rps else None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self.thread.join(timeout=5)
        if self.state_file is not None:
            self.workspace.save(self.state_file)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _audit(ws: Workspace, method: str, path: str, req: Request, response: Response) -> None:
    """A successful write appends its row to the audit log (system.access.audit)."""
    if response.status >= 400:
        return
    event = audit.event_for(method, path, req, response.body)
    if event is not None:
        audit.record(ws, event, response.status)


def start_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str = "dapi-emulator-token",
    seed_objects: int = 0,
    seed: int = 0,
    latency_ms: float = 0.0,
    fault_rate: float = 0.0,
    rate_limit: float | None = None,
    state_file: str | Path | None = None,
    workspace_id: int | None = None,
    cluster_start_seconds: float = 2.0,
    run_seconds: float = 60.0,
    realistic_timing: bool = False,
    time_scale: float = 1.0,
    audit_delay_seconds: float = 0.0,
) -> EmulatorHandle:
    """Start one emulated workspace on a background thread; port 0 picks a free port.

    Timing: fast and fixed by default (clusters start in `cluster_start_seconds`, runs take `run_seconds`);
    `realistic_timing` draws minutes-long cluster starts and varied run durations (seeded by `seed`);
    `time_scale` multiplies every duration of either profile.
    """
    if time_scale <= 0 or run_seconds < 0:
        raise ValueError("time_scale must be > 0 and run_seconds >= 0")
    timing = Timing(realistic=realistic_timing, time_scale=time_scale, run_seconds=run_seconds, seed=seed)
    workspace = Workspace(cluster_start_seconds=cluster_start_seconds, seed=seed, timing=timing)
    workspace.audit_delay_seconds = audit_delay_seconds  # how late system.access.audit shows an event
    server = EmulatorServer((host, port), workspace, token)
    # Distinct workspaces need distinct ids: dbsync's store refuses a different source/target pair.
    workspace.workspace_id = workspace_id or 1000000000000000 + server.server_address[1]
    apis.install(workspace)
    path = Path(state_file) if state_file else None
    if path is not None and path.exists():
        workspace.load(path)
    elif seed_objects:
        from dbsync_emulator.seed import seed_workspace

        seed_workspace(workspace, seed_objects, seed)
    server.set_faults(Faults.from_fault_rate(fault_rate, latency_ms))
    if rate_limit:
        server.bucket = TokenBucket(rate_limit)
    # A short poll interval: stop() waits for the serve loop to notice, 0.5 s by default per emulator.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        name=f"emulator-{server.base_url}",
        daemon=True,
    )
    thread.start()
    return EmulatorHandle(server, thread, path)
