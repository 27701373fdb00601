"""HTTP front of the emulator: auth, faults, rate limit, admin surface, dispatch to API modules."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from dbsync.emulator import apis
from dbsync.emulator.errors import ApiError
from dbsync.emulator.router import Request, Response, Routes, parse_query
from dbsync.emulator.state import Workspace

log = logging.getLogger("dbsync.emulator")

WELL_KNOWN = "/.well-known/databricks-config"
ADMIN_PREFIX = "/_emulator/"
_ALIASES = (("/api/2.0/preview/permissions/", "/api/2.0/permissions/"),)


@dataclass
class Faults:
    """Injected faults, settable at run time through PUT /_emulator/faults."""

    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_500: float = 0.0
    latency_ms: float = 0.0
    retry_after_seconds: int = 1
    path_prefix: str = "/api/"  # only requests under this prefix get faults

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
class Stats:
    """Per-endpoint request counters (endpoint = method + route template), for tests and benchmarks."""

    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, endpoint: str, status: int) -> None:
        with self.lock:
            self.total += 1
            entry = self.endpoints.get(endpoint)
            if entry is None:
                entry = self.endpoints[endpoint] = {"count": 0, "statuses": {}}
            entry["count"] += 1
            key = str(status)
            entry["statuses"][key] = entry["statuses"].get(key, 0) + 1

    def document(self) -> dict[str, Any]:
        with self.lock:
            return {"total": self.total, "endpoints": json.loads(json.dumps(self.endpoints))}

    def reset(self) -> None:
        with self.lock:
            self.endpoints.clear()
            self.total = 0


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], workspace: Workspace, token: str) -> None:
        super().__init__(address, _Handler)
        self.workspace = workspace
        self.token = token
        self.faults = Faults()
        self.bucket: TokenBucket | None = None
        self.stats = Stats()
        self.fault_random = __import__("random").Random(7)
        self.routes = apis.all_routes()
        self.admin = _admin_routes()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer
    server_version = "dbsync-emulator"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # -- the request pipeline -------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        raw_path, _, query_string = self.path.partition("?")
        path = unquote(raw_path)
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        endpoint = f"{method} {path}"
        try:
            endpoint, response = self._dispatch(method, path, query_string, raw_body)
        except ApiError as err:
            response = Response(err.status, err.body(), headers=err.headers)
        except Exception as err:  # a bug in the emulator must still answer like a server
            traceback.print_exc(file=sys.stderr)
            response = Response(500, {"error_code": "INTERNAL_ERROR", "message": f"Emulator error: {err}"})
        self.server.stats.record(endpoint, response.status)
        self._send(response)

    def _dispatch(self, method: str, path: str, query_string: str, raw_body: bytes) -> tuple[str, Response]:
        srv = self.server
        if path == WELL_KNOWN and method == "GET":
            return f"GET {WELL_KNOWN}", Response(200, _host_metadata(srv))
        for old, new in _ALIASES:
            if path.startswith(old):
                path = new + path[len(old) :]
        if path.startswith(ADMIN_PREFIX):
            self._authenticate()
            route, params, known = srv.admin.match(method, path)
            endpoint = f"{method} {route.template if route else path}"
            if route is None:
                raise _no_api(method, path)
            req = self._request(method, path, query_string, raw_body, params)
            return endpoint, _as_response(route.handler(srv, req))
        self._authenticate()
        if srv.bucket is not None and not srv.bucket.take():
            raise ApiError(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                "Too many requests. Please wait a moment and try again.",
                headers={"Retry-After": "1"},
            )
        self._inject_faults(path)
        route, params, known = srv.routes.match(method, path)
        if route is None:
            raise _no_api(method, path) if not known else ApiError(
                405, "BAD_REQUEST", f"Method {method} is not supported for {path}"
            )
        req = self._request(method, path, query_string, raw_body, params)
        ws = srv.workspace
        with ws.lock:
            result = route.handler(ws, req)
        return f"{method} {route.template}", _as_response(result)

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization") or ""
        if not header:
            raise ApiError(
                401,
                "UNAUTHENTICATED",
                "Credential was not sent or was of an unsupported type for this API.",
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.server.token:
            raise ApiError(403, "PERMISSION_DENIED", "Invalid access token.")

    def _inject_faults(self, path: str) -> None:
        faults = self.server.faults
        if not path.startswith(faults.path_prefix):
            return
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        roll = self.server.fault_random.random()
        retry_after = {"Retry-After": str(faults.retry_after_seconds)}
        if roll < faults.rate_429:
            raise ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests (injected).", headers=retry_after)
        roll -= faults.rate_429
        if roll < faults.rate_503:
            raise ApiError(503, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable (injected).",
                           headers=retry_after)
        roll -= faults.rate_503
        if roll < faults.rate_500:
            raise ApiError(500, "INTERNAL_ERROR", "Internal error (injected).")

    def _request(
        self, method: str, path: str, query_string: str, raw_body: bytes, params: dict[str, str]
    ) -> Request:
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(method, path, parse_query(query_string), headers, raw_body, params)
        if headers.get("content-type", "").startswith("multipart/form-data"):
            req.form = _parse_multipart(headers["content-type"], raw_body)
        return req

    def _send(self, response: Response) -> None:
        body = response.body
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(response.status)
        if payload or response.status != 204:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return Response(200, result if result is not None else {})


def _no_api(method: str, path: str) -> ApiError:
    return ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")


def _host_metadata(srv: EmulatorServer) -> dict[str, Any]:
    return {
        "oidc_endpoint": f"{srv.base_url}/oidc",
        "workspace_id": str(srv.workspace.workspace_id),
        "cloud": "AWS",
    }


def _parse_multipart(content_type: str, raw_body: bytes) -> dict[str, Any]:
    """multipart/form-data → {field: str, file part: bytes}, as workspace.upload() sends it."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw_body
    )
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        form[name] = payload if part.get_filename() or name == "content" else payload.decode()
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
        srv.faults = Faults()
        return {}

    @routes.get("/_emulator/faults")
    def get_faults(srv: EmulatorServer, req: Request) -> dict:
        return asdict(srv.faults)

    @routes.put("/_emulator/faults")
    def put_faults(srv: EmulatorServer, req: Request) -> dict:
        body = req.json
        rate_limit = body.pop("rate_limit", "unchanged")
        try:
            srv.faults = Faults(**{**asdict(Faults()), **body})
        except TypeError as err:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unknown fault setting: {err}") from None
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
        from dbsync.emulator.seed import seed_workspace

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
        self.server.faults = Faults(**{**asdict(Faults()), **settings})

    def set_rate_limit(self, rps: float | None) -> None:
        self.server.bucket = TokenBucket(rps) if rps else None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self.state_file is not None:
            self.workspace.save(self.state_file)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
) -> EmulatorHandle:
    """Start one emulated workspace on a background thread; port 0 picks a free port."""
    workspace = Workspace(cluster_start_seconds=cluster_start_seconds, seed=seed)
    server = EmulatorServer((host, port), workspace, token)
    # Distinct workspaces need distinct ids: dbsync's store refuses a different source/target pair.
    workspace.workspace_id = workspace_id or 1000000000000000 + server.server_address[1]
    apis.install(workspace)
    path = Path(state_file) if state_file else None
    if path is not None and path.exists():
        workspace.load(path)
    elif seed_objects:
        from dbsync.emulator.seed import seed_workspace

        seed_workspace(workspace, seed_objects, seed)
    server.faults = Faults.from_fault_rate(fault_rate, latency_ms)
    if rate_limit:
        server.bucket = TokenBucket(rate_limit)
    thread = threading.Thread(target=server.serve_forever, name=f"emulator-{server.base_url}", daemon=True)
    thread.start()
    return EmulatorHandle(server, thread, path)
