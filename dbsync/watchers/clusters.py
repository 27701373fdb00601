"""Interactive clusters (cluster_source UI or API); job and pipeline clusters are ephemeral and skipped.

The payload is the writable spec with references to policies and pools as Refs; state, driver,
executors, times and default tags never enter it, so a cluster starting or stopping is not a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.service.compute import ClustersAPI

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.model import ref
from dbsync.tags import without_dbsync_tags
from dbsync.watchers.listed import ListedWatcher, keep, writable_fields
from dbsync.workspace import Workspace

FIELDS = writable_fields(ClustersAPI.create) - {"clone_from"}
INTERACTIVE_SOURCES = ("UI", "API")
_REFS = {
    "policy_id": "cluster_policies",
    "instance_pool_id": "instance_pools",
    "driver_instance_pool_id": "instance_pools",
}


def normalize_cluster_spec(ctx: SyncContext, spec: dict[str, Any]) -> dict[str, Any]:
    """A writable cluster spec with ids as Refs, principals and ARNs mapped (also used for job clusters)."""
    payload = keep(spec, FIELDS)
    for field, kind in _REFS.items():
        if payload.get(field):
            payload[field] = ref(kind, payload[field])
    tags = without_dbsync_tags(payload.get("custom_tags"))
    if tags:
        payload["custom_tags"] = tags
    else:
        payload.pop("custom_tags", None)
    if payload.get("single_user_name"):
        payload["single_user_name"] = ctx.principals.any_principal(payload["single_user_name"])
    aws = payload.get("aws_attributes") or {}
    if aws.get("instance_profile_arn"):
        payload["aws_attributes"] = {
            **aws,
            "instance_profile_arn": ctx.principals.arn(aws["instance_profile_arn"]),
        }
    return payload


class ClusterWatcher(ListedWatcher):
    declaration = Declaration(interval=120, link="{host}/#setting/clusters/{key}/configuration")

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for cluster in ws.client.clusters.list():
            source = cluster.cluster_source.value if cluster.cluster_source else "UI"
            if source not in INTERACTIVE_SOURCES:
                continue
            yield cluster.cluster_id or "", cluster.cluster_name or "", cluster.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        # Only stable facts go to source_meta: the version hint covers it, and a state change is no change.
        return normalize_cluster_spec(ctx, raw), {"owner": raw.get("creator_user_name")}


def watcher_for(kind: str) -> ClusterWatcher:
    return ClusterWatcher(kind, "clusters")
