"""Each side reads the proxy and CA-bundle environment once, at connect, and keeps honouring it.

`requests` re-reads HTTPS_PROXY / NO_PROXY / REQUESTS_CA_BUNDLE (and looks for ~/.netrc) on every request;
dbsync's sessions read them once for their host instead. A proxy set in the environment must still be used.
"""

from __future__ import annotations

import socket

import pytest
from databricks.sdk.errors import DatabricksError

from dbsync.config import WorkspaceSettings
from dbsync.workspace import connect
from dbsync_emulator.server import EmulatorHandle


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_proxy_from_the_environment_is_still_used(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = WorkspaceSettings(host=emulator.url, token=emulator.token)
    ws = connect("source", settings, retry_timeout_seconds=1, probe_timeout_seconds=1)
    with pytest.raises((DatabricksError, OSError, TimeoutError)):
        ws.client.workspace.get_status("/Shared")


def test_no_proxy_for_the_host_sends_directly(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    ws = connect("source", WorkspaceSettings(host=emulator.url, token=emulator.token), retry_timeout_seconds=5)
    assert ws.client.workspace.get_status("/Shared").path == "/Shared"
    assert ws.client.api_client._api_client._session.trust_env is False  # read once, not per request
