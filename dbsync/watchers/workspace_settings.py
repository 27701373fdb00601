"""Workspace settings: `workspace-conf` keys (an allow-list in `workspace_conf.keys`) and IP access lists.

`workspace_conf`: one resource per allow-listed key, all read with one `workspace-conf?keys=...` call;
the value ("true", "90", or null when never set) is the payload. Nothing outside the allow-list is read
or written. The token lifetime policy is the key `maxTokenLifetimeDays`.

`ip_access_lists`: keyed by list id; the listing (one call) carries label, type, addresses and
enabled, so the hint is the payload's fingerprint. Addresses are sorted (their order means nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError
from dbsync.model import Resource, fingerprint
from dbsync.runcache import CacheKey
from dbsync.watchers.base import Watcher
from dbsync.watchers.listed import ListedWatcher
from dbsync.workspace import Workspace

WORKSPACE_CONF: CacheKey[dict[str, str | None]] = CacheKey("workspace-conf")  # .part(side)


def conf_values(ctx: SyncContext, ws: Workspace) -> dict[str, str | None]:
    """The allow-listed keys' values in `ws`, read once per run."""
    keys = ctx.settings.workspace_conf.keys

    def load() -> dict[str, str | None]:
        if not keys:
            return {}
        try:
            values = ws.client.workspace_conf.get_status(",".join(keys)) or {}
        except DatabricksError as err:
            raise ListingError(
                f"{ws.side}: cannot read workspace-conf keys {', '.join(keys)}: {err} "
                "(check workspace_conf.keys: every key must be one the workspace knows)"
            ) from err
        return {key: values.get(key) for key in keys}

    return ctx.cached(WORKSPACE_CONF.part(ws.side), load)


class WorkspaceConfWatcher(Watcher):
    kind = "workspace_conf"
    declaration = Declaration(interval=900)

    def forget_target_listing(self, ctx: SyncContext) -> None:
        """Values read while another key was being written may be stale: the drift check reads them again."""
        ctx.invalidate(WORKSPACE_CONF.part(ctx.target.side))

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        for key, value in conf_values(ctx, ws).items():
            payload = {"key": key, "value": value}
            yield Resource(self.kind, key, key, fingerprint(payload), payload)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub


class IpAccessListWatcher(ListedWatcher):
    declaration = Declaration(interval=900)

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for item in ws.client.ip_access_lists.list():
            yield item.list_id or "", item.label or "", item.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        payload = {
            "label": raw.get("label") or "",
            "list_type": raw.get("list_type"),
            "ip_addresses": sorted(raw.get("ip_addresses") or []),
            "enabled": bool(raw.get("enabled", True)),
        }
        return payload, {}


def watcher_for(kind: str) -> Watcher:
    if kind == "workspace_conf":
        return WorkspaceConfWatcher()
    return IpAccessListWatcher(kind, None)
