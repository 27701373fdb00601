"""Instance pools on the target: adopt by dbsync_source_id tag, create, edit, delete."""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.mapping import SourceForm
from dbsync.model import Applied, Delete, Prior, Resource, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, deleted, edited, edited_or_created, sdk_call
from dbsync.tags import SOURCE_ID_TAG

BY_TAG = TargetIndex(
    "instance_pools",
    lambda ctx: (
        ((p.custom_tags or {}).get(SOURCE_ID_TAG, ""), p.instance_pool_id or "")
        for p in ctx.target.client.instance_pools.list()
        if (p.custom_tags or {}).get(SOURCE_ID_TAG)
    ),
)


class InstancePoolReplicator(Replicator):
    kind = "instance_pools"
    restores_source = True
    unrecorded_origin = "created"  # before ownership was recorded, only dbsync's own tag was ever adopted

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = dict(resource.payload)
        payload["custom_tags"] = {**payload.get("custom_tags", {}), SOURCE_ID_TAG: resource.key}
        pools = ctx.target.client.instance_pools
        found = None if change.target_key else BY_TAG.get(ctx, resource.key)
        pool_id = change.target_key or found
        try:
            if pool_id is not None and edited(lambda: sdk_call(pools.edit, payload, instance_pool_id=pool_id)):
                return Applied(pool_id, adopted=False if found else None)  # found by dbsync's own tag: it made it
            pool_id = sdk_call(pools.create, payload).instance_pool_id or ""
            BY_TAG.add(ctx, resource.key, pool_id)
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                raise Permanent(f"the target rejected pool {payload.get('instance_pool_name')!r}: {err}") from err
            raise
        return Applied(pool_id, adopted=False)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        deleted(lambda: ctx.target.client.instance_pools.delete(change.target_key or ""))

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> str:
        """The kept pool back on the source pool (its own tags: never dbsync's), re-created when gone."""
        payload = form.payload(resource.payload)
        pools = ctx.source.client.instance_pools
        return edited_or_created(
            resource.key,
            lambda: sdk_call(pools.edit, payload, instance_pool_id=resource.key),
            lambda: sdk_call(pools.create, payload).instance_pool_id or "",
        )


def replicator_for(kind: str) -> Replicator:
    return InstancePoolReplicator()
