"""The emulator's HTTP front: auth, errors, injected faults, rate limit, admin surface, persistence."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.clock import Clock
from databricks.sdk.core import Config
from databricks.sdk.credentials_provider import CredentialsProvider, CredentialsStrategy
from databricks.sdk.errors import (
    InternalError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync_emulator import EmulatorHandle, start_emulator
from dbsync_emulator.server import ACCOUNT_ID
from tests.conftest import endpoint_count, sdk_client


class FakeClock(Clock):
    """The SDK's retry loop sleeps through this clock: time moves, the test does not wait."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class NoCredentials(CredentialsStrategy):
    """A client that sends no Authorization header at all."""

    def auth_type(self) -> str:
        return "none"

    def __call__(self, cfg: Config) -> CredentialsProvider:
        return lambda: {}


def _raw(handle: EmulatorHandle, method: str, path: str, token: str | None = "", **kwargs: Any) -> requests.Response:
    """A plain HTTP call; token "" means the emulator's own token, None means no Authorization header."""
    headers = {} if token is None else {"Authorization": f"Bearer {token or handle.token}"}
    headers.update(kwargs.pop("headers", {}))
    return requests.request(method, handle.url + path, headers=headers, timeout=10, **kwargs)


def _client_with_clock(handle: EmulatorHandle, clock: FakeClock) -> WorkspaceClient:
    config = Config(host=handle.url, token=handle.token, auth_type="pat", clock=clock, retry_timeout_seconds=60)
    return WorkspaceClient(config=config)


def _notebook(w: WorkspaceClient, path: str, source: bytes = b"print(1)") -> None:
    w.workspace.import_(
        path,
        content=base64.b64encode(source).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )


@pytest.fixture
def second_emulator() -> Iterator[EmulatorHandle]:
    handle = start_emulator()
    try:
        yield handle
    finally:
        handle.stop()


# -- auth and errors --------------------------------------------------------------------------------
def test_host_metadata_probe_needs_no_token(emulator: EmulatorHandle) -> None:
    answer = _raw(emulator, "GET", "/.well-known/databricks-config", token=None)

    assert answer.status_code == 200
    assert answer.json() == {
        "oidc_endpoint": f"{emulator.url}/oidc",
        "account_id": ACCOUNT_ID,
        "workspace_id": str(emulator.workspace.workspace_id),
        "cloud": "AWS",
    }


def test_missing_token_is_unauthenticated(emulator: EmulatorHandle) -> None:
    w = WorkspaceClient(config=Config(host=emulator.url, credentials_strategy=NoCredentials()))

    with pytest.raises(Unauthenticated, match="Credential was not sent"):
        w.workspace.get_status("/")
    assert _raw(emulator, "GET", "/api/2.0/workspace/get-status?path=/", token=None).status_code == 401


def test_wrong_token_is_permission_denied(emulator: EmulatorHandle) -> None:
    w = sdk_client(emulator, token="dapi-wrong")

    with pytest.raises(PermissionDenied, match="Invalid access token"):
        w.workspace.get_status("/")
    assert _raw(emulator, "GET", "/_emulator/stats", token="dapi-wrong").status_code == 403


def test_unknown_path_is_endpoint_not_found(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    with pytest.raises(NotFound) as err:
        w.api_client.do("GET", "/api/2.0/no/such/api")

    assert err.value.error_code == "ENDPOINT_NOT_FOUND"
    wrong_method = _raw(emulator, "POST", "/api/2.0/workspace/list")  # the service routes on method + path
    assert (wrong_method.status_code, wrong_method.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    assert _raw(emulator, "GET", "/api/2.0/no/such/api").json() == {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": "No API found for 'GET /api/2.0/no/such/api'",
    }


def test_trailing_slash_and_workspace_id_header_are_tolerated(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    answer = _raw(
        emulator,
        "GET",
        "/api/2.0/workspace/get-status/",
        params={"path": "/Shared"},
        headers={"X-Databricks-Workspace-Id": "123"},
    )

    assert answer.status_code == 200
    assert answer.json()["path"] == "/Shared"


def test_chunked_request_bodies_are_read(emulator: EmulatorHandle) -> None:
    body = b'{"path": "/Shared/chunked"}'
    answer = _raw(
        emulator,
        "POST",
        "/api/2.0/workspace/mkdirs",
        data=iter([body[:10], body[10:]]),
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 200
    assert emulator.workspace.table("objects")["/Shared/chunked"]["object_type"] == "DIRECTORY"


def test_bad_body_framing_is_a_400_and_closes_the_connection(emulator: EmulatorHandle) -> None:
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /api/2.0/workspace/mkdirs HTTP/1.1\r\nContent-Length: ten\r\n\r\n")
        answer = sock.recv(4096)
        closed = sock.recv(4096)

    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in answer
    assert closed == b""


@pytest.mark.parametrize(
    "sent",
    [
        b"Content-Length: 60\r\n\r\n",  # killed after its headers
        b'Content-Length: 60\r\n\r\n{"name": "nightly", "tags"',  # killed mid-body
        b"Transfer-Encoding: chunked\r\n\r\n10\r\n",  # killed mid-chunk
        b"Content-Type: application/json\r\n",  # killed in its headers
    ],
)
def test_a_request_its_client_never_finished_sending_is_never_served(emulator: EmulatorHandle, sent: bytes) -> None:
    """A kill -9 while a create was on the wire: the service never got the request, so nothing is created (the
    emulator once served the bytes that came: a jobs/create of `{}` made an "Untitled" job)."""
    host, port = emulator.url.removeprefix("http://").split(":")
    auth = f"Authorization: Bearer {emulator.token}\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /api/2.2/jobs/create HTTP/1.1\r\n" + auth + sent)
        sock.shutdown(socket.SHUT_WR)  # the client is gone
        answer = sock.recv(4096)

    assert answer == b""
    assert list(sdk_client(emulator).jobs.list()) == []


# -- injected faults and the rate limit ------------------------------------------------------------
@pytest.mark.parametrize(("fault", "status"), [("rate_429", 429), ("rate_503", 503)])
def test_sdk_retries_injected_throttling_after_retry_after(emulator: EmulatorHandle, fault: str, status: int) -> None:
    clock = FakeClock()
    w = _client_with_clock(emulator, clock)
    emulator.set_faults(**{fault: 0.5}, retry_after_seconds=2, deterministic=True)

    paths = [o.path for _ in range(6) for o in w.workspace.list("/")]

    assert len(paths) == 6 * 3  # /Users, /Shared, /Repos every time: every call eventually succeeded
    statuses = emulator.stats.document()["endpoints"]["GET /api/2.0/workspace/list"]["statuses"]
    assert statuses["200"] == 6
    assert statuses[str(status)] == len(clock.sleeps) > 0
    assert all(2 <= s < 3 for s in clock.sleeps)  # Retry-After + up to 1 s jitter


def test_injected_500_is_not_retried(emulator: EmulatorHandle) -> None:
    clock = FakeClock()
    w = _client_with_clock(emulator, clock)
    emulator.set_faults(rate_500=1.0)

    with pytest.raises(InternalError, match="injected"):
        w.workspace.get_status("/")

    assert clock.sleeps == []
    assert endpoint_count(emulator, "GET /api/2.0/workspace/get-status") == 1


def test_faults_spare_the_admin_surface_and_the_probe(emulator: EmulatorHandle) -> None:
    emulator.set_faults(rate_503=1.0)

    assert _raw(emulator, "GET", "/_emulator/stats").status_code == 200
    assert _raw(emulator, "GET", "/.well-known/databricks-config", token=None).status_code == 200
    assert _raw(emulator, "GET", "/api/2.0/workspace/get-status?path=/").status_code == 503


def test_token_bucket_answers_request_limit_exceeded(emulator: EmulatorHandle) -> None:
    emulator.set_rate_limit(1)  # a burst of one request, then one per second
    first = _raw(emulator, "GET", "/api/2.0/workspace/get-status?path=/")
    second = _raw(emulator, "GET", "/api/2.0/workspace/get-status?path=/")

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"
    assert second.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


# -- admin surface ---------------------------------------------------------------------------------
def test_admin_endpoints_require_the_token(emulator: EmulatorHandle) -> None:
    assert _raw(emulator, "GET", "/_emulator/stats", token=None).status_code == 401
    assert _raw(emulator, "POST", "/_emulator/reset", token=None).status_code == 401
    assert _raw(emulator, "GET", "/_emulator/nothing").status_code == 404


def test_stats_count_per_route_template(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.workspace.mkdirs("/Shared/a")
    for path in ("/Shared", "/Shared/a"):
        w.permissions.get("directories", str(w.workspace.get_status(path).object_id))
    with pytest.raises(NotFound):
        w.permissions.get("directories", "404404")

    stats = _raw(emulator, "GET", "/_emulator/stats").json()

    assert stats["endpoints"]["GET /api/2.0/workspace/get-status"]["count"] == 2
    assert stats["endpoints"]["GET /api/2.0/permissions/{type:path}/{id}"] == {
        "count": 3,
        "statuses": {"200": 2, "404": 1},
    }
    assert _raw(emulator, "POST", "/_emulator/stats/reset").status_code == 200
    assert _raw(emulator, "GET", "/_emulator/stats").json() == {"total": 0, "endpoints": {}}


def test_reset_empties_the_workspace_but_keeps_built_ins(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    _notebook(w, "/Shared/nb")
    emulator.set_faults(latency_ms=1)

    assert _raw(emulator, "POST", "/_emulator/reset").json() == {}

    with pytest.raises(NotFound):
        w.workspace.get_status("/Shared/nb")
    assert {o.path for o in w.workspace.list("/")} == {"/Users", "/Shared", "/Repos"}
    assert w.current_user.me().user_name == "admin@example.com"
    assert _raw(emulator, "GET", "/_emulator/faults").json()["latency_ms"] == 0


def test_faults_can_be_read_and_replaced(emulator: EmulatorHandle) -> None:
    put = _raw(emulator, "PUT", "/_emulator/faults", json={"rate_503": 0.25, "retry_after_seconds": 3})
    bad = _raw(emulator, "PUT", "/_emulator/faults", json={"rate_418": 1})

    assert put.status_code == 200
    assert _raw(emulator, "GET", "/_emulator/faults").json() == {
        **put.json(),
        "rate_503": 0.25,
        "retry_after_seconds": 3,
        "rate_429": 0.0,
    }
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_snapshot_restores_into_another_emulator(
    w: WorkspaceClient, emulator: EmulatorHandle, second_emulator: EmulatorHandle
) -> None:
    _notebook(w, "/Shared/nb", b"print('snap')")
    job_id = w.jobs.create(name="snap", tasks=[]).job_id
    snapshot = _raw(emulator, "GET", "/_emulator/snapshot").json()

    assert _raw(second_emulator, "PUT", "/_emulator/snapshot", json=snapshot).status_code == 200

    other = sdk_client(second_emulator)
    assert other.workspace.download("/Shared/nb").read() == b"# Databricks notebook source\nprint('snap')"
    assert other.workspace.get_status("/Shared/nb") == w.workspace.get_status("/Shared/nb")
    assert other.jobs.get(job_id).settings.name == "snap"  # type: ignore[arg-type,union-attr]
    assert other.permissions.get("jobs", str(job_id)) == w.permissions.get("jobs", str(job_id))


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with start_emulator(state_file=state) as first:
        _notebook(sdk_client(first), "/Shared/kept")
        object_id = sdk_client(first).workspace.get_status("/Shared/kept").object_id
    assert state.exists()

    with start_emulator(state_file=state) as second:
        assert sdk_client(second).workspace.get_status("/Shared/kept").object_id == object_id


def test_stop_closes_keep_alive_connections(emulator: EmulatorHandle) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {emulator.token}"}
    assert session.get(f"{emulator.url}/api/2.0/workspace/get-status?path=/", headers=headers).status_code == 200

    emulator.stop()

    with pytest.raises(requests.ConnectionError):
        session.get(f"{emulator.url}/api/2.0/workspace/get-status?path=/", headers=headers, timeout=5)


def test_expect_100_continue_gets_an_interim_answer(emulator: EmulatorHandle) -> None:
    body = b'{"path": "/Shared/expect"}'
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /api/2.0/workspace/mkdirs HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            + f"Authorization: Bearer {emulator.token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        interim = sock.recv(1024)
        sock.sendall(body)
        final = sock.recv(4096)

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")


# -- concurrency -----------------------------------------------------------------------------------
def test_concurrent_clients_see_consistent_state(emulator: EmulatorHandle) -> None:
    errors: list[BaseException] = []
    listings: dict[int, int] = {}

    def client(n: int) -> None:
        try:
            w = sdk_client(emulator)
            w.workspace.mkdirs(f"/Shared/c{n}")
            for i in range(15):
                _notebook(w, f"/Shared/c{n}/nb{i}", f"print({n}, {i})".encode())
                list(w.workspace.list("/Shared"))
            listings[n] = len(list(w.workspace.list(f"/Shared/c{n}")))
        except BaseException as err:  # surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert listings == {n: 15 for n in range(8)}
    objects = emulator.workspace.table("objects")
    notebook_ids = [o["object_id"] for o in objects.values() if o["object_type"] == "NOTEBOOK"]
    assert len(notebook_ids) == len(set(notebook_ids)) == 8 * 15
    assert endpoint_count(emulator, "POST /api/2.0/workspace/import") == 8 * 15


def test_every_answer_names_the_workspace_like_the_service(emulator, w) -> None:
    # databricks-sdk's get_workspace_id() falls back to this header of /Me when host metadata has no id.
    answer = w.api_client.do("GET", "/api/2.0/preview/scim/v2/Me", response_headers=["X-Databricks-Org-Id"])
    assert answer["X-Databricks-Org-Id"] == str(emulator.workspace.workspace_id)
