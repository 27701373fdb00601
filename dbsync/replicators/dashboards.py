"""Lakeview dashboards on the target: adopt by path, create, update the draft in place, publish, trash.

A dashboard is the workspace object `<folder>/<name>.lvdash.json`, whose `resource_id` is its id: a
create first looks there (get-status), so a lost store never duplicates a dashboard. The draft is
updated with PATCH (name, contents, warehouse); the published state follows the source's (published
with the mapped warehouse and the same embed_credentials, or unpublished). The API cannot move a
dashboard to another folder: a move on the source is recorded and the target copy stays.
"""

from __future__ import annotations

import contextlib
import posixpath
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.sdk import Service
from dbsync.watchers.dashboards import published_state
from dbsync.watchers.workspace_objects import make_folder

sdk_dashboards = Service("dashboards")  # imported when this kind first uses it (dbsync/sdk.py)

EXTENSION = ".lvdash.json"


def _path(parent: str, name: str) -> str:
    return posixpath.join(parent, name + EXTENSION)


class DashboardReplicator(Replicator):
    kind = "dashboards"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = ctx.idmap.resolve(resource.payload)  # Blocked until the warehouse is replicated
        lakeview = ctx.target.client.lakeview
        current = self._current(ctx, change.target_key)
        known = current is not None  # the copy already recorded: its origin stays as recorded
        current = current or self._adopt(ctx, payload)
        draft = sdk_dashboards.Dashboard(
            display_name=payload["display_name"],
            serialized_dashboard=payload["serialized_dashboard"],
            warehouse_id=payload.get("warehouse_id"),
        )
        note = None
        created = current is None
        try:
            if current is None:
                current = self._create(ctx, payload, draft)
            else:
                lakeview.update(current.dashboard_id or "", draft)
                if (current.parent_path or "") != payload["parent_path"]:
                    note = (
                        f"moved to {payload['parent_path']} on the source; the API cannot move a dashboard, "
                        f"the target copy stays in {current.parent_path}"
                    )
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected dashboard {payload['display_name']!r}: {err}") from err
            raise
        dashboard_id = current.dashboard_id or ""
        self._publish(ctx, dashboard_id, payload.get("published"), created)
        return Applied(dashboard_id, note=note, adopted=None if known else not created)

    def _current(self, ctx: SyncContext, target_id: str | None) -> sdk_dashboards.Dashboard | None:
        if not target_id:
            return None
        try:
            current = ctx.target.client.lakeview.get(target_id)
        except NotFound:
            return None
        return current if current.lifecycle_state is None or current.lifecycle_state.value == "ACTIVE" else None

    def _adopt(self, ctx: SyncContext, payload: dict[str, Any]) -> sdk_dashboards.Dashboard | None:
        """The target dashboard at the source's path (the workspace object names its dashboard id)."""
        try:
            status = ctx.target.client.workspace.get_status(_path(payload["parent_path"], payload["display_name"]))
        except NotFound:
            return None
        if status.object_type is None or status.object_type.value != "DASHBOARD" or not status.resource_id:
            return None
        return self._current(ctx, status.resource_id)

    def _create(
        self, ctx: SyncContext, payload: dict[str, Any], draft: sdk_dashboards.Dashboard
    ) -> sdk_dashboards.Dashboard:
        draft.parent_path = payload["parent_path"]
        try:
            return ctx.target.client.lakeview.create(draft)
        except NotFound:
            make_folder(ctx, payload["parent_path"])  # a folder holding only dashboards: dbsync's, recorded
            return ctx.target.client.lakeview.create(draft)

    def _publish(self, ctx: SyncContext, dashboard_id: str, published: dict[str, Any] | None, created: bool) -> None:
        lakeview = ctx.target.client.lakeview
        if published is not None:
            lakeview.publish(
                dashboard_id,
                embed_credentials=published["embed_credentials"],
                warehouse_id=published.get("warehouse_id"),
            )
        elif not created and published_state(ctx.target, dashboard_id) is not None:
            lakeview.unpublish(dashboard_id)  # unpublished on the source

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        with contextlib.suppress(NotFound):
            ctx.target.client.lakeview.trash(change.target_key or "")


def replicator_for(kind: str) -> Replicator:
    return DashboardReplicator()
