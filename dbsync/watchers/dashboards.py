"""Lakeview (AI/BI) dashboards: the draft (`serialized_dashboard`), its warehouse and folder, and whether
it is published (with which warehouse and credentials).

The dashboards listing omits the contents, the folder and every version field (`etag`, `update_time`),
so a source dashboard is read (one GET for the draft, one for its published state) and compared by
fingerprint: by need, like object ACLs (dbsync/revisit.py) — again soon after it changed, less often while
it stays the same, never later than `max_staleness` (30 min by default; an audit-log hint naming it makes it
due at once). Nothing is written when nothing changed. At 2,500 dashboards reading every one every 5
minutes was 17 requests/s of a workspace's budget. On the target the listing's name and
warehouse are enough for the drift check. The warehouse becomes a Ref to `sql_warehouses`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration, Freshness
from dbsync.errors import ListingError, RetryLater
from dbsync.model import Resource, fingerprint, ref
from dbsync.sdk import Service
from dbsync.watchers.base import Watcher, answers
from dbsync.workspace import Workspace

PAGE_SIZE = 100
sdk_dashboards = Service("dashboards")  # imported when this kind first uses it (dbsync/sdk.py)


def published_state(ws: Workspace, dashboard_id: str) -> dict[str, Any] | None:
    """{embed_credentials, warehouse_id} of the published dashboard, None when it is not published."""
    try:
        published = ws.client.lakeview.get_published(dashboard_id)
    except NotFound:
        return None
    return {"embed_credentials": bool(published.embed_credentials), "warehouse_id": published.warehouse_id}


class DashboardWatcher(Watcher):
    kind = "dashboards"
    acl_type = "dashboards"
    # Read by need (the listing has no version). On a worker of their own with their schedules (which look a
    # dashboard up by id, so the two run one after the other): at 2,500 dashboards their cycles (60 s slices, and
    # ~170 s for the schedules' call per dashboard) held the kinds listed whole every 2 minutes on the first worker.
    declaration = Declaration(interval=300, freshness=Freshness(max_staleness=1800), worker="dashboards")

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            for dashboard in ws.client.lakeview.list(page_size=PAGE_SIZE):
                listed = dashboard.as_dict()
                # The source listing has no version: None makes the engine read a dashboard when it is due.
                hint = None if ws.side == "source" else fingerprint(listed)
                yield Resource(self.kind, listed["dashboard_id"], listed.get("display_name", ""), hint)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list dashboards: {err}") from err

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One GET of the draft: the listing pages by token (an offset), so a dashboard trashed while a page was read
        made the first of the next page look deleted too. Gone: a 404, or a dashboard the service still answers in
        lifecycle state TRASHED (a delete moves it to the trash; GET answers it until it is purged)."""
        return answers(
            lambda: ws.client.lakeview.get(key),
            lambda got: got.lifecycle_state == sdk_dashboards.LifecycleState.TRASHED,
        )

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        try:
            draft = ws.client.lakeview.get(stub.key)
            published = published_state(ws, stub.key)
        except NotFound:
            raise RetryLater(f"dashboard {stub.key} disappeared from the source while it was read") from None
        payload: dict[str, Any] = {
            "display_name": draft.display_name,
            "parent_path": ctx.principals.path(draft.parent_path or ""),
            "serialized_dashboard": draft.serialized_dashboard or "",
        }
        if draft.warehouse_id:
            payload["warehouse_id"] = ref("sql_warehouses", draft.warehouse_id)
        if published is not None:
            warehouse = published.get("warehouse_id")
            payload["published"] = {
                "embed_credentials": published["embed_credentials"],
                **({"warehouse_id": ref("sql_warehouses", warehouse)} if warehouse else {}),
            }
        stub.payload = payload
        stub.source_meta = {"parent_path": payload["parent_path"]}
        return stub


def watcher_for(kind: str) -> DashboardWatcher:
    return DashboardWatcher()
