"""Managed table data on the target: an incremental DEEP CLONE from the source table's storage location.

`CREATE OR REPLACE TABLE <table> DEEP CLONE delta.`<source location>`` on the target's warehouse (Databricks
SQL "CREATE TABLE CLONE": re-run onto a clone of the same source it copies only the files added since).
The target's warehouse must read the source's storage (an instance profile, storage credential or
external location granting it); a `dbfs:/` location is the source workspace's own DBFS root, which no
other workspace reads, so such a table is an error saying so. Only a table dbsync created (or cloned
before: its last commit is a CLONE of that location) is replaced: the data of a table the target already
had is never overwritten. Nothing is deleted: a dropped source table is the `tables` kind's concern.
"""

from __future__ import annotations

from typing import Any

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.sql import SqlError, qualified, runner
from dbsync.watchers.metastore import split_key
from dbsync.watchers.table_data import TABLES, VERSION

WORKSPACE_LOCAL = ("dbfs:", "file:")


def clone_source(location: str) -> str:
    """`delta.`<location>``: the source table's files, read by path on the target."""
    return "delta.`" + location.replace("`", "``") + "`"


def clone_statement(key: str, location: str) -> str:
    """The incremental deep clone of the source table at `location` into the target table `key`."""
    return f"CREATE OR REPLACE TABLE {qualified(split_key(key))} DEEP CLONE {clone_source(location)}"


class TableDataReplicator(Replicator):
    kind = "table_data"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload: dict[str, Any] = change.resource.payload or {}
        key, location = change.key, payload["location"]
        if location.startswith(WORKSPACE_LOCAL):
            raise Permanent(
                f"{key} is stored in {location}, the source workspace's own DBFS root, which the target cannot "
                "read: move it to cloud storage (a schema LOCATION, Unity Catalog) or copy it with Delta Sharing"
            )
        if not _ours(ctx, key, location):
            raise Permanent(
                f"{key} existed on the target before dbsync created it: its data is not replaced; clone it by hand "
                f"with `{clone_statement(key, location)}` if it is meant to be the source's"
            )
        try:
            runner(ctx, ctx.target).execute(clone_statement(key, location))
        except SqlError as err:
            raise Permanent(
                f"the target's warehouse could not clone {key} from {location}: {err}. It needs read access to "
                "the source's storage (an instance profile, storage credential or external location)"
            ) from err
        return Applied(key, meta={"cloned_version": payload[VERSION]})

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        return None  # the data goes with its table, and a managed table is never dropped by dbsync


def _ours(ctx: SyncContext, key: str, location: str) -> bool:
    """The target table is dbsync's: `tables` created it, or its last commit is a clone of this source."""
    prior = ctx.history.prior(TABLES, key)
    if prior is not None and prior.origin == "created":
        return True
    try:
        rows = runner(ctx, ctx.target).query(f"DESCRIBE HISTORY {qualified(split_key(key))} LIMIT 1")
    except SqlError:
        return False
    last = rows[0] if rows else {}
    return last.get("operation") == "CLONE" and location in (last.get("operationParameters") or "")


def replicator_for(kind: str) -> Replicator:
    return TableDataReplicator()
