"""SQL warehouses on the target: created (or edited) and then stopped, so no standby warehouse runs.

`warehouses/create` starts the warehouse and has no "create stopped" flag, so a create is followed
at once by a stop, and an edit stops a target warehouse found running. A stopped warehouse costs
nothing and starts by itself when a query arrives after a cutover. Adopted by the `dbsync_source_id`
custom tag, then by name (unique per workspace); an adopted warehouse (the DR team's own) is never
deleted. When the stop after a create fails, the new id is recorded with the stop pending and the next
cycle's apply stops it, so a restart never creates a second one. The target warehouse dbsync itself runs metastore
statements on (`metastore.target_warehouse_id`) is kept in step too, but never stopped nor deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, edited, sdk_call
from dbsync.runcache import CacheKey
from dbsync.tags import SOURCE_ID_TAG

if TYPE_CHECKING:
    from databricks.sdk.service.sql import EndpointInfo  # imported by need: see dbsync/sql.py

STOPPED = ("STOPPED", "STOPPING", "DELETED", "DELETING")


TARGET_WAREHOUSES: CacheKey[list[EndpointInfo]] = CacheKey("sql-warehouses:target")


def _target_warehouses(ctx: SyncContext) -> list[EndpointInfo]:
    return ctx.cached(TARGET_WAREHOUSES, lambda: list(ctx.target.client.warehouses.list()))


def _source_tag(warehouse: EndpointInfo) -> str:
    tags = warehouse.tags.custom_tags if warehouse.tags and warehouse.tags.custom_tags else []
    return next((t.value or "" for t in tags if t.key == SOURCE_ID_TAG), "")


BY_TAG = TargetIndex(
    "sql_warehouses:tag",
    lambda ctx: ((_source_tag(w), w.id or "") for w in _target_warehouses(ctx) if _source_tag(w)),
)
BY_NAME = TargetIndex("sql_warehouses:name", lambda ctx: ((w.name or "", w.id or "") for w in _target_warehouses(ctx)))


def target_spec(ctx: SyncContext, payload: dict[str, Any], source_key: str) -> dict[str, Any]:
    """The create/edit body: the source spec plus the dbsync_source_id tag."""
    spec = ctx.idmap.resolve(payload)
    tags = [*(spec.get("tags") or {}).get("custom_tags", []), {"key": SOURCE_ID_TAG, "value": source_key}]
    spec["tags"] = {"custom_tags": tags}
    return spec


class WarehouseReplicator(Replicator):
    kind = "sql_warehouses"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        spec = target_spec(ctx, resource.payload, resource.key)
        warehouses = ctx.target.client.warehouses
        tagged = None if change.target_key else BY_TAG.get(ctx, resource.key)
        found = None if change.target_key or tagged else BY_NAME.get(ctx, spec["name"])
        warehouse_id = change.target_key or tagged or found
        try:
            if warehouse_id is not None and edited(lambda: self._edit(ctx, warehouse_id, spec)):
                # A warehouse with dbsync's own tag is one it made (a lost store); one found by name is the DR team's.
                return Applied(warehouse_id, adopted=True if found else False if tagged else None)
            warehouse_id = sdk_call(warehouses.create, spec).response.id or ""
            BY_TAG.add(ctx, resource.key, warehouse_id)
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS") and not is_gone(err):
                raise Permanent(f"the target rejected SQL warehouse {spec.get('name')!r}: {err}") from err
            raise
        return Applied(warehouse_id, adopted=False, pending=_stop(ctx, warehouse_id))

    @staticmethod
    def _edit(ctx: SyncContext, warehouse_id: str, spec: dict[str, Any]) -> None:
        warehouses = ctx.target.client.warehouses
        sdk_call(warehouses.edit, spec, id=warehouse_id)
        if warehouse_id == ctx.settings.metastore.target_warehouse_id:
            return  # dbsync's own working warehouse on the target: it runs when dbsync needs it
        state = warehouses.get(warehouse_id).state
        if state is not None and state.value not in STOPPED:
            warehouses.stop(warehouse_id)  # a standby warehouse found running (or restarted by the edit)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        assert change.target_key  # the engine forgets a row that never reached the target
        if change.target_key == ctx.settings.metastore.target_warehouse_id:
            return  # dbsync's own working warehouse outlives the source copy it mirrored
        try:
            ctx.target.client.warehouses.delete(change.target_key)
        except DatabricksError as err:
            if not is_gone(err):
                raise


def _stop(ctx: SyncContext, warehouse_id: str) -> str | None:
    """Stop a just-created warehouse; what is still to do when it fails (retried next cycle), else None."""
    try:
        ctx.target.client.warehouses.stop(warehouse_id)  # created to exist, never to run on a standby
    except DatabricksError as err:
        if is_gone(err):
            return None
        return f"created as {warehouse_id} but the stop failed ({err}); it is stopped on the next cycle"
    return None


def replicator_for(kind: str) -> Replicator:
    return WarehouseReplicator()
