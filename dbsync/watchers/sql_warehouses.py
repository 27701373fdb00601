"""SQL warehouses: `warehouses/list` carries every writable field, so the listing is the payload.

Size, scaling (min/max clusters), auto-stop, channel, photon/serverless, type, spot policy and custom
tags are replicated; state, health, sessions and connection details are not part of the payload, so a
warehouse starting or stopping is not a change. dbsync's own tags are left out of the payload.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.watchers.listed import ListedWatcher, keep, writable_fields
from dbsync.workspace import Workspace


@cache
def writable() -> frozenset[str]:
    """The fields a warehouse is created with (the SDK's sql module imported here, when the kind first runs)."""
    from databricks.sdk.service.sql import WarehousesAPI

    return writable_fields(WarehousesAPI.create) - {"creator_name"}


def custom_tags(payload: dict[str, Any]) -> list[dict[str, str]]:
    """The warehouse's custom tags without dbsync's own (`dbsync_*`)."""
    tags = (payload.get("tags") or {}).get("custom_tags") or []
    return [t for t in tags if not str(t.get("key", "")).startswith("dbsync_")]


class WarehouseWatcher(ListedWatcher):
    declaration = Declaration(interval=300, link="{host}/sql/warehouses/{key}")

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for warehouse in ws.client.warehouses.list():
            yield warehouse.id or "", warehouse.name or "", warehouse.as_dict()

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One warehouses/get: the listing pages by token (an offset) when the service answers more than one page,
        so a warehouse deleted on the source while a page was read made the first of the next page look deleted too.
        Gone: a 404, or a warehouse the service still answers as DELETED / DELETING."""
        from databricks.sdk.service.sql import State

        try:
            state = ws.client.warehouses.get(key).state
        except Exception as err:  # anything but "gone" cannot tell: the delete waits
            return not is_gone(err)
        return state not in (State.DELETED, State.DELETING)

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        payload = keep(raw, writable())
        tags = custom_tags(payload)
        if tags:
            payload["tags"] = {"custom_tags": tags}
        else:
            payload.pop("tags", None)
        if payload.get("instance_profile_arn"):
            payload["instance_profile_arn"] = ctx.principals.arn(payload["instance_profile_arn"])
        return payload, {}


def watcher_for(kind: str) -> WarehouseWatcher:
    # The Permissions API path the SDK uses for warehouses is /permissions/warehouses/{id}.
    return WarehouseWatcher(kind, "warehouses")
