"""Lakeflow Declarative (Delta Live Tables) pipelines: the spec of each, with references remapped.

The pipelines listing carries no spec and no version (`last_modified` is only in a GET), so each source
pipeline is read every cycle (one GET) and compared by fingerprint: nothing is written when nothing
changed. Notebook, file and glob library paths (and `root_path`, `parent_path`) follow the email
mapping; cluster policies and instance pools become Refs; the `run_as` principal and notification
recipients are mapped.

`continuous` is not part of the payload: the service starts an update when a continuous pipeline is
created and restarts it on every edit (terraform's `databricks_pipeline` waits for RUNNING after create
and update; databricks/cli#6745), so a standby copy is always written `continuous: false`. The source's
value is kept in source_meta for `dbsync cutover`, which switches the copy to continuous (starting it)
exactly when the source pipeline was continuous.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError, RetryLater
from dbsync.model import Resource, fingerprint, ref
from dbsync.tags import without_dbsync_tags
from dbsync.watchers.base import Watcher, answers
from dbsync.watchers.jobs import workspace_path
from dbsync.workspace import Workspace

PAGE_SIZE = 100  # the service's maximum max_results
CONTINUOUS = "continuous"  # source_meta key: whether the source pipeline runs continuously
# Fields a GET answers that are the service's own, never written (the id, the state).
READ_ONLY = ("id",)
_CLUSTER_REFS = {
    "policy_id": "cluster_policies",
    "instance_pool_id": "instance_pools",
    "driver_instance_pool_id": "instance_pools",
}
_LIBRARY_PATHS = (("notebook", "path"), ("file", "path"), ("glob", "include"))


def default_storage(pipeline_id: str) -> str:
    """Where the service stores a pipeline without catalog or storage: the target's copy gets its own."""
    return f"dbfs:/pipelines/{pipeline_id}"


def _cluster(ctx: SyncContext, cluster: dict[str, Any]) -> dict[str, Any]:
    for field, kind in _CLUSTER_REFS.items():
        if cluster.get(field):
            cluster[field] = ref(kind, cluster[field])
    aws = cluster.get("aws_attributes") or {}
    if aws.get("instance_profile_arn"):
        cluster["aws_attributes"] = {**aws, "instance_profile_arn": ctx.principals.arn(aws["instance_profile_arn"])}
    tags = without_dbsync_tags(cluster.get("custom_tags"))
    if tags:
        cluster["custom_tags"] = tags
    else:
        cluster.pop("custom_tags", None)
    return cluster


def _library(ctx: SyncContext, library: dict[str, Any]) -> dict[str, Any]:
    for kind, field in _LIBRARY_PATHS:
        item = library.get(kind)
        if item and item.get(field):
            item[field] = workspace_path(ctx, item[field])
    return library


def _run_as(ctx: SyncContext, run_as: dict[str, Any] | None) -> dict[str, str] | None:
    if not run_as:
        return None
    if run_as.get("user_name"):
        return {"user_name": ctx.principals.user(run_as["user_name"])}
    if run_as.get("service_principal_name"):
        return {"service_principal_name": ctx.principals.service_principal(run_as["service_principal_name"])}
    return None


def normalize_spec(ctx: SyncContext, pipeline_id: str, spec: dict[str, Any], run_as: dict | None) -> dict[str, Any]:
    """The writable spec with refs and principals mapped, without `continuous` (a standby never runs)."""
    payload = {k: v for k, v in copy.deepcopy(spec).items() if k not in READ_ONLY and v not in (None, [], {})}
    payload.pop(CONTINUOUS, None)
    if payload.get("storage") == default_storage(pipeline_id):
        del payload["storage"]
    payload["clusters"] = [_cluster(ctx, c) for c in payload.get("clusters") or []]
    payload["libraries"] = [_library(ctx, lib) for lib in payload.get("libraries") or []]
    for field in ("root_path", "parent_path"):
        if payload.get(field):
            payload[field] = workspace_path(ctx, payload[field])
    for notification in payload.get("notifications") or []:
        recipients = notification.get("email_recipients") or []
        notification["email_recipients"] = [ctx.principals.user(r) for r in recipients]
    tags = without_dbsync_tags(payload.get("tags"))
    payload["tags"] = tags
    mapped = _run_as(ctx, run_as)
    if mapped:
        payload["run_as"] = mapped
    return {k: v for k, v in payload.items() if v not in (None, [], {})}


class PipelineWatcher(Watcher):
    kind = "pipelines"
    acl_type = "pipelines"
    declaration = Declaration(interval=300, link="{host}/pipelines/{key}")  # each source pipeline: one GET a cycle

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            for status in ws.client.pipelines.list_pipelines(max_results=PAGE_SIZE):
                listed = status.as_dict()
                # No version in the source listing: None makes the engine read each pipeline. On the target the
                # name is the one stable field (its owner follows the permissions kind, its state the clock).
                hint = None if ws.side == "source" else fingerprint({"name": listed.get("name")})
                yield Resource(self.kind, listed.get("pipeline_id", ""), listed.get("name", ""), hint)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list pipelines: {err}") from err

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One pipelines/get: the listing pages by token (an offset), so a pipeline deleted on the source while a page
        was read made the first pipeline of the next page look deleted too."""
        return answers(lambda: ws.client.pipelines.get(key))

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        try:
            got = ws.client.pipelines.get(stub.key).as_dict()
        except NotFound:
            raise RetryLater(f"pipeline {stub.key} disappeared from the source while it was read") from None
        spec = got.get("spec") or {}
        stub.payload = normalize_spec(ctx, stub.key, spec, got.get("run_as"))
        stub.source_meta = {CONTINUOUS: bool(spec.get(CONTINUOUS))}
        return stub


def watcher_for(kind: str) -> PipelineWatcher:
    return PipelineWatcher()
