"""Shared fixtures: emulated workspaces served over real HTTP, driven by the real databricks-sdk."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from dbsync.emulator import EmulatorHandle, start_emulator

# The SDK reads DATABRICKS_* and ~/.databrickscfg; tests must see only what they configure.
for _name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
    del os.environ[_name]


def sdk_client(handle: EmulatorHandle, token: str | None = None, retry_timeout_seconds: int = 60) -> WorkspaceClient:
    """A WorkspaceClient for an emulator, configured the way a user would (host + PAT)."""
    config = Config(
        host=handle.url,
        token=token or handle.token,
        auth_type="pat",
        retry_timeout_seconds=retry_timeout_seconds,
    )
    return WorkspaceClient(config=config)


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """A fresh, empty emulated workspace on a free loopback port."""
    handle = start_emulator(cluster_start_seconds=0.2)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def w(emulator: EmulatorHandle) -> WorkspaceClient:
    """The databricks-sdk client for `emulator`."""
    return sdk_client(emulator)


def endpoint_count(handle: EmulatorHandle, endpoint: str) -> int:
    """How many requests the emulator served for `endpoint` ("GET /api/2.0/workspace/export")."""
    return handle.stats.document()["endpoints"].get(endpoint, {}).get("count", 0)
