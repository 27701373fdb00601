"""One databricks-sdk WorkspaceClient per side, with every HTTP request counted.

Counting happens in a `requests` response hook on the SDK's session, so retries (429/503) are
counted too, by method, endpoint template and status, for `dbsync_api_requests_total`.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests.adapters
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from dbsync import metrics
from dbsync.config import WorkspaceSettings
from dbsync.errors import ConfigError

_VERSION_SEGMENT = re.compile(r"^(v\d+|\d+\.\d+)$")


def endpoint_template(path: str) -> str:
    """/api/2.0/permissions/jobs/123 → /api/2.0/permissions/jobs/{id}: ids never become labels."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if i >= 3 and any(c.isdigit() for c in part) and not _VERSION_SEGMENT.match(part):
            parts[i] = "{id}"
    return "/".join(parts)


@dataclass
class Workspace:
    """A side of the pair: its SDK client and the requests it has made."""

    side: str  # "source" | "target"
    client: WorkspaceClient
    calls: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Asked before every request that can change the workspace (see dbsync/role.py); None: no fence.
    fence: Any = None

    def __post_init__(self) -> None:
        session = self.client.api_client._api_client._session  # the SDK exposes no public hook
        session.hooks["response"].append(self._count)
        for adapter in session.adapters.values():
            if isinstance(adapter, FencedAdapter):
                adapter.workspace = self

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> None:
        method = response.request.method
        endpoint = endpoint_template(urlparse(response.request.url).path)
        with self._lock:
            self.calls[(method, endpoint, response.status_code)] += 1
        metrics.API_REQUESTS.labels(self.side, method, endpoint, str(response.status_code)).inc()

    @property
    def host(self) -> str:
        return self.client.config.host or ""

    def workspace_id(self) -> str:
        """The workspace id (from host metadata, or the X-Databricks-Org-Id header of /Me)."""
        return str(self.client.get_workspace_id())

    def total_calls(self, endpoint_prefix: str = "") -> int:
        with self._lock:
            return sum(n for (_, endpoint, _), n in self.calls.items() if endpoint.startswith(endpoint_prefix))

    def write_calls(self) -> int:
        """Requests that can change the workspace (anything but GET)."""
        with self._lock:
            return sum(n for (method, _, _), n in self.calls.items() if method != "GET")

    def calls_by_endpoint(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        with self._lock:
            for (method, endpoint, _), n in self.calls.items():
                out[f"{method} {endpoint}"] += n
        return dict(out)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()


def connect(
    side: str,
    settings: WorkspaceSettings,
    retry_timeout_seconds: int = 300,
    http_timeout_seconds: int = 60,
    concurrency: int = 8,
) -> Workspace:
    """A Workspace for one side from host+token or a ~/.databrickscfg profile."""
    kwargs: dict[str, Any] = {
        "retry_timeout_seconds": retry_timeout_seconds,
        "http_timeout_seconds": http_timeout_seconds,
        "max_connection_pools": max(20, concurrency * 2),
        "max_connections_per_pool": max(20, concurrency * 2),
    }
    if settings.profile:
        kwargs["profile"] = settings.profile
        if settings.config_file:
            kwargs["config_file"] = str(settings.config_file)
    else:
        kwargs["host"] = settings.host
        kwargs["token"] = settings.token.get_secret_value() if settings.token else None
        kwargs["auth_type"] = "pat"
    try:
        config = Config(**kwargs)
    except ValueError as err:
        # The SDK's message names the config it tried; the token is masked by the SDK.
        raise ConfigError(f"{side}: cannot configure the Databricks client: {err}") from None
    client = WorkspaceClient(config=config)
    _mount_http_pool(client, concurrency)
    return Workspace(side, client)


def _mount_http_pool(client: WorkspaceClient, concurrency: int) -> None:
    # The SDK sizes its pool for https only; plain-http hosts (the emulator) get the same pool size.
    session = client.api_client._api_client._session
    size = max(20, concurrency * 2)
    for scheme in ("http://", "https://"):
        session.mount(scheme, FencedAdapter(pool_connections=size, pool_maxsize=size))


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class FencedAdapter(requests.adapters.HTTPAdapter):
    """The SDK's transport, which asks the Workspace's fence before sending anything but a read.

    Every write of every kind, the delete phase and a retry alike, passes here, so the check is made
    before each write, not once per cycle.
    """

    workspace: Workspace | None = None

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        fence = self.workspace.fence if self.workspace is not None else None
        if fence is not None and request.method not in READ_METHODS:
            reason = fence.refusal()
            if reason:
                from dbsync.role import WriteFenced

                raise WriteFenced(f"{request.method} {endpoint_template(urlparse(request.url).path)} refused: {reason}")
        return super().send(request, *args, **kwargs)
