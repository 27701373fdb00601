"""Interactive clusters (cluster_source UI or API); job and pipeline clusters are ephemeral and skipped.

The payload is the writable spec with references to policies and pools as Refs; state, driver,
executors, times and default tags never enter it, so a cluster starting or stopping is not a change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from databricks.sdk.service.compute import ClustersAPI, State

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.model import ref
from dbsync.tags import without_dbsync_tags
from dbsync.watchers.listed import ListedWatcher, keep, writable_fields
from dbsync.workspace import Workspace

FIELDS = writable_fields(ClustersAPI.create) - {"clone_from"}
INTERACTIVE_SOURCES = ("UI", "API")
# The service lists a terminated cluster for 30 days (unless pinned), and answers clusters/get for it a while longer.
LISTED_AFTER_TERMINATION_MS = 30 * 24 * 3600 * 1000
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

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One clusters/get: the listing pages by token (an offset), so a cluster deleted on the source while a page
        was read made the first cluster of the next page look deleted too. Gone: a 404, the 400 "Cluster … does not
        exist" a permanently deleted cluster answers, or a cluster terminated longer than the listing keeps one (it
        left the listing by design; clusters/get still answers it for a while)."""
        try:
            cluster = ws.client.clusters.get(key)
        except Exception as err:  # anything but "gone" cannot tell: the delete waits
            return not is_gone(err)
        ended = cluster.terminated_time or 0
        aged_out = (
            cluster.state == State.TERMINATED and ended and time.time() * 1000 - ended > LISTED_AFTER_TERMINATION_MS
        )
        return not aged_out

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        # Only stable facts go to source_meta: the version hint covers it, and a state change is no change.
        return normalize_cluster_spec(ctx, raw), {"owner": raw.get("creator_user_name")}


def watcher_for(kind: str) -> ClusterWatcher:
    return ClusterWatcher(kind, "clusters")
