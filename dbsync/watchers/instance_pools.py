"""Instance pools: keyed by instance_pool_id; the target pool carries tag dbsync_source_id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.service.compute import InstancePoolsAPI

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.tags import without_dbsync_tags
from dbsync.watchers.listed import ListedWatcher, keep, writable_fields
from dbsync.workspace import Workspace

FIELDS = writable_fields(InstancePoolsAPI.create)


class InstancePoolWatcher(ListedWatcher):
    declaration = Declaration(interval=120, link="{host}/#setting/clusters/instance-pools/view/{key}")

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for pool in ws.client.instance_pools.list():
            yield pool.instance_pool_id or "", pool.instance_pool_name or "", pool.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        payload = keep(raw, FIELDS)
        tags = without_dbsync_tags(payload.get("custom_tags"))
        if tags:
            payload["custom_tags"] = tags
        else:
            payload.pop("custom_tags", None)
        return payload, {}


def watcher_for(kind: str) -> InstancePoolWatcher:
    return InstancePoolWatcher(kind, "instance-pools")
