"""Clusters on the target: created (or edited) and then terminated, so no standby cluster costs money.

Adopted by the dbsync_source_id custom tag; `clusters/create` cannot create a stopped cluster, so a
create is followed at once by a terminate, and every apply terminates a target cluster found running.
"Created then terminated" is one step: when the terminate fails, the new cluster's id is still recorded
(status error, the terminate pending) and the next cycle's apply terminates it instead of creating again.
"""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent, RetryLater
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, deleted, edited, sdk_call
from dbsync.tags import SOURCE_ID_TAG

BY_TAG = TargetIndex(
    "clusters",
    lambda ctx: (
        ((c.custom_tags or {}).get(SOURCE_ID_TAG, ""), c.cluster_id or "")
        for c in ctx.target.client.clusters.list()
        if (c.custom_tags or {}).get(SOURCE_ID_TAG)
    ),
)
STOPPED = ("TERMINATED", "TERMINATING")


class ClusterReplicator(Replicator):
    kind = "clusters"
    unrecorded_origin = "created"  # before ownership was recorded, only dbsync's own tag was ever adopted

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        spec = ctx.idmap.resolve(resource.payload)
        owner = resource.source_meta.get("owner")
        spec["custom_tags"] = {**spec.get("custom_tags", {}), SOURCE_ID_TAG: resource.key}
        if owner:
            spec["custom_tags"]["dbsync_source_owner"] = ctx.principals.user(owner)
        clusters = ctx.target.client.clusters
        found = None if change.target_key else BY_TAG.get(ctx, resource.key)
        cluster_id = change.target_key or found
        try:
            if cluster_id is not None and edited(lambda: self._edit(ctx, cluster_id, spec)):
                return Applied(cluster_id, adopted=False if found else None)  # found by dbsync's own tag: it made it
            cluster_id = sdk_call(clusters.create, spec).response.cluster_id or ""
            BY_TAG.add(ctx, resource.key, cluster_id)
        except DatabricksError as err:
            explained = _explained(err, spec)
            if explained is err:
                raise
            raise explained from err
        return Applied(cluster_id, adopted=False, pending=_terminate(ctx, cluster_id))

    def _edit(self, ctx: SyncContext, cluster_id: str, spec: dict) -> None:
        clusters = ctx.target.client.clusters
        state = clusters.get(cluster_id).state
        if state is not None and state.value not in STOPPED:
            clusters.delete(cluster_id)  # a standby cluster found running is stopped first
            raise RetryLater(f"target cluster {cluster_id} was {state.value}; terminated, edit next cycle", 30)
        sdk_call(clusters.edit, spec, cluster_id=cluster_id)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        assert change.target_key  # the engine forgets a row that never reached the target
        deleted(lambda: ctx.target.client.clusters.permanent_delete(change.target_key or ""))


def _terminate(ctx: SyncContext, cluster_id: str) -> str | None:
    """Terminate a just-created cluster; what is still to do when it fails (retried next cycle), else None."""
    try:
        ctx.target.client.clusters.delete(cluster_id)  # created only to exist, never to run
    except DatabricksError as err:
        if is_gone(err):
            return None
        return f"created as {cluster_id} but the terminate failed ({err}); it is terminated on the next cycle"
    return None


def _explained(err: DatabricksError, spec: dict) -> Exception:
    if err.error_code == "INVALID_STATE":
        return RetryLater(f"target cluster is changing state: {err}", delay=60)
    if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
        return Permanent(f"the target rejected cluster {spec.get('cluster_name')!r}: {err}")
    return err


def replicator_for(kind: str) -> Replicator:
    return ClusterReplicator()
