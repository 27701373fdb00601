"""Managed table data, with `tables.data: deep_clone`: each replicated managed table's Delta version on the source.

The `tables` kind copies a managed table's definition only. With `tables.data: deep_clone` this kind lists
each managed table the store holds as replicated (by `tables`, earlier in the cycle), reads its latest
Delta version on the source (`DESCRIBE HISTORY … LIMIT 1`, one statement a table a cycle: the only way to
see new data) and uses it as the version hint, so an unchanged table is not read further and nothing is
cloned. A new version is fetched (`DESCRIBE TABLE EXTENDED` for its location) and cloned on the target by
the replicator. With `tables.data: none` (the default) it sends no statement and clones nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import DbsyncError, ListingError, RetryLater
from dbsync.model import Resource
from dbsync.sql import SqlError, qualified, runner
from dbsync.watchers.base import Watcher
from dbsync.watchers.metastore import is_managed_ddl, not_there, split_key
from dbsync.workspace import Workspace

TABLES = "tables"
VERSION = "version"  # source_meta key: the Delta version last seen on the source


def deep_clone_on(ctx: SyncContext) -> bool:
    """Whether `tables.data: deep_clone` asks for managed table data to be cloned."""
    return ctx.settings.tables.data == "deep_clone"


def managed_tables(ctx: SyncContext) -> Iterator[str]:
    """Keys of the managed tables `tables` replicated (a target copy recorded, the source DDL not external)."""
    for prior in ctx.history.priors(TABLES, payloads=False):
        ddl = prior.source_meta.get("ddl")
        if prior.target_key is not None and ddl and is_managed_ddl(ddl, prior.key):
            yield prior.key


def delta_version(ctx: SyncContext, ws: Workspace, key: str) -> int | None:
    """The latest Delta version of a table (`DESCRIBE HISTORY … LIMIT 1`); None when the table is gone."""
    try:
        rows = runner(ctx, ws).query(f"DESCRIBE HISTORY {qualified(split_key(key))} LIMIT 1")
    except SqlError as err:
        if not_there(err):
            return None
        raise
    value = rows[0].get("version") if rows else None
    return int(value) if value not in (None, "") else None


def table_location(ctx: SyncContext, ws: Workspace, key: str) -> str | None:
    """The storage location of a table, from `DESCRIBE TABLE EXTENDED` (None when the warehouse does not say)."""
    rows = runner(ctx, ws).query(f"DESCRIBE TABLE EXTENDED {qualified(split_key(key))}")
    for row in rows:
        if (row.get("col_name") or "").strip() == "Location":
            return row.get("data_type") or None
    return None


class TableDataWatcher(Watcher):
    kind = "table_data"
    drift_check = False  # the target's data is not listed: a clone is checked by its own statement
    declaration = Declaration(interval=600, needs_warehouse=True, target_listed=False)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        if ws.side != "source":
            return
        if not deep_clone_on(ctx):
            # Turned off: earlier clones stay recorded as they are (no statement, and no empty listing
            # for the delete guard); the tables are listed under "needs manual action" again.
            for prior in ctx.history.priors(self.kind, payloads=False):
                yield Resource(self.kind, prior.key, prior.key, prior.version_hint)
            return
        for key in managed_tables(ctx):
            try:
                version = delta_version(ctx, ws, key)
            except (DbsyncError, DatabricksError) as err:
                raise ListingError(f"{ws.side}: cannot read the Delta version of {key}: {err}") from err
            if version is None:
                continue  # dropped on the source since `tables` listed it: its row goes with it
            yield Resource(self.kind, key, key, str(version), source_meta={VERSION: version})

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        location = table_location(ctx, ws, stub.key)
        if location is None:
            raise RetryLater(f"the source's warehouse did not say where {stub.key} is stored")
        payload: dict[str, Any] = {"table": stub.key, "location": location, VERSION: stub.source_meta[VERSION]}
        stub.payload = payload
        return stub


def watcher_for(kind: str) -> TableDataWatcher:
    return TableDataWatcher()
