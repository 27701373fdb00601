"""Databricks SQL queries and alerts (the current `/api/2.0/sql/queries` and `/api/2.0/sql/alerts` APIs).

Both listings carry every field but `parent_path`, 100 objects per call: the version hint is the
fingerprint of the listed object, so a no-change cycle costs the listing calls only; a changed or
new object is read once (GET) for its folder. The payload is the create/update body: the warehouse
(`sql_warehouses`), a query-backed parameter's query and an alert's query become Refs; the folder and
the owner follow the principal mapping. Trashed objects are not listed, so a trashed source object is
trashed on the target.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError, RetryLater
from dbsync.mapping import WORKSPACE_PREFIX
from dbsync.model import Resource, fingerprint, ref
from dbsync.watchers.base import Watcher, answers
from dbsync.workspace import Workspace

PAGE_SIZE = 100  # the service's maximum


@cache
def _fields(noun: str) -> frozenset[str]:
    """The fields a query or an alert is created with (the SDK's sql module imported by need: see dbsync/sql.py)."""
    from databricks.sdk.service.sql import CreateAlertRequestAlert, CreateQueryRequestQuery

    created = CreateQueryRequestQuery if noun == "query" else CreateAlertRequestAlert
    return frozenset(created.__dataclass_fields__) - {"parent_path"}


def folder(path: str | None) -> str:
    """A workspace folder without the /Workspace prefix the service answers with."""
    if not path:
        return ""
    if path == WORKSPACE_PREFIX or path.startswith(WORKSPACE_PREFIX + "/"):
        return path[len(WORKSPACE_PREFIX) :] or "/"
    return path


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def normalize_query(ctx: SyncContext, raw: dict[str, Any]) -> dict[str, Any]:
    """The create/update body of a query, as written to the target."""
    payload = {k: copy.deepcopy(v) for k, v in raw.items() if k in _fields("query") and _present(v)}
    if payload.get("warehouse_id"):
        payload["warehouse_id"] = ref("sql_warehouses", payload["warehouse_id"])
    for parameter in payload.get("parameters") or []:
        backed = parameter.get("query_backed_value") or {}
        if backed.get("query_id"):
            backed["query_id"] = ref("sql_queries", backed["query_id"])
    payload["parent_path"] = ctx.principals.path(folder(raw.get("parent_path")))
    if raw.get("owner_user_name"):
        payload["owner_user_name"] = ctx.principals.any_principal(raw["owner_user_name"])
    return payload


def normalize_alert(ctx: SyncContext, raw: dict[str, Any]) -> dict[str, Any]:
    payload = {k: copy.deepcopy(v) for k, v in raw.items() if k in _fields("alert") and _present(v)}
    if payload.get("query_id"):
        payload["query_id"] = ref("sql_queries", payload["query_id"])
    payload["parent_path"] = ctx.principals.path(folder(raw.get("parent_path")))
    if raw.get("owner_user_name"):
        payload["owner_user_name"] = ctx.principals.any_principal(raw["owner_user_name"])
    return payload


class SqlObjectWatcher(Watcher):
    """Queries or alerts: list (version hint = listed object), fetch = one GET for the folder."""

    declaration = Declaration(interval=300)

    def __init__(self, kind: str, acl_type: str) -> None:
        self.kind = kind
        self.acl_type = acl_type

    def _api(self, ws: Workspace) -> Any:
        return ws.client.queries if self.kind == "sql_queries" else ws.client.alerts

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            for item in self._api(ws).list(page_size=PAGE_SIZE):
                listed = item.as_dict()
                yield Resource(self.kind, listed["id"], listed.get("display_name", ""), fingerprint(listed))
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list {self.kind}: {err}") from err

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One GET: the listing pages by token (an offset, 100 a page), so a query or alert moved to the trash while a
        page was read made the first of the next page look deleted too. Gone: a 404, or an object the service still
        answers in lifecycle state TRASHED (a delete moves it to the trash; GET answers it until it is purged)."""
        from databricks.sdk.service.sql import LifecycleState

        return answers(lambda: self._api(ws).get(key), lambda got: got.lifecycle_state == LifecycleState.TRASHED)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        try:
            raw = self._api(ws).get(stub.key).as_dict()
        except NotFound:
            raise RetryLater(f"{self.kind} {stub.key} disappeared from the source while it was read") from None
        if raw.get("lifecycle_state") == "TRASHED":
            raise RetryLater(f"{self.kind} {stub.key} was moved to the trash while it was read")
        normalize = normalize_query if self.kind == "sql_queries" else normalize_alert
        stub.payload = normalize(ctx, raw)
        stub.source_meta = {"parent_path": stub.payload["parent_path"]}
        return stub


def watcher_for(kind: str) -> SqlObjectWatcher:
    return SqlObjectWatcher(kind, "queries" if kind == "sql_queries" else "alerts")
