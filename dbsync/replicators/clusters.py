"""Clusters on the target: created (or edited) and then terminated, so no standby cluster costs money.

Adopted by the dbsync_source_id custom tag; `clusters/create` cannot create a stopped cluster, so a
create is followed at once by a terminate, and every apply terminates a target cluster found running.
"""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.errors import Permanent, RetryLater
from dbsync.model import Applied, Change
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, deleted, edited, is_gone, sdk_call
from dbsync.watchers.listed import SOURCE_ID_TAG

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

    def apply(self, ctx: SyncContext, change: Change) -> Applied:
        resource = change.resource
        assert resource is not None and resource.payload is not None
        spec = ctx.idmap.resolve(resource.payload)
        owner = resource.source_meta.get("owner")
        spec["custom_tags"] = {**spec.get("custom_tags", {}), SOURCE_ID_TAG: resource.key}
        if owner:
            spec["custom_tags"]["dbsync_source_owner"] = ctx.principals.user(owner)
        clusters = ctx.target.client.clusters
        cluster_id = change.target_key or BY_TAG.get(ctx, resource.key)
        try:
            if cluster_id is not None and edited(lambda: self._edit(ctx, cluster_id, spec)):
                return Applied(cluster_id)
            cluster_id = sdk_call(clusters.create, spec).response.cluster_id or ""
            BY_TAG.add(ctx, resource.key, cluster_id)
            clusters.delete(cluster_id)  # terminate: created only to exist, never to run
        except DatabricksError as err:
            if err.error_code == "INVALID_STATE":
                raise RetryLater(f"target cluster is changing state: {err}", delay=60) from err
            if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                raise Permanent(f"the target rejected cluster {spec.get('cluster_name')!r}: {err}") from err
            raise
        return Applied(cluster_id)

    def _edit(self, ctx: SyncContext, cluster_id: str, spec: dict) -> None:
        clusters = ctx.target.client.clusters
        state = clusters.get(cluster_id).state
        if state is not None and state.value not in STOPPED:
            clusters.delete(cluster_id)  # a standby cluster found running is stopped first
            raise RetryLater(f"target cluster {cluster_id} was {state.value}; terminated, edit next cycle", 30)
        sdk_call(clusters.edit, spec, cluster_id=cluster_id)

    def delete(self, ctx: SyncContext, change: Change) -> None:
        deleted(lambda: ctx.target.client.clusters.permanent_delete(change.target_key or ""))


def replicator_for(kind: str) -> Replicator:
    return ClusterReplicator()
