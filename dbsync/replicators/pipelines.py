"""Pipelines on the target: adopted by name, created or edited with `continuous: false`, deleted.

A standby copy never runs: the service starts a continuous pipeline on create and restarts it on every
edit, so every write says `continuous: false` (a copy found continuous, after a rolled-back cutover or a
hand edit, is switched back, which stops it). `dbsync cutover` makes the copies of continuous source
pipelines continuous again. The copy carries the tag `dbsync_source_id`: one found by name with that
tag is dbsync's own (a lost store), one without it is the DR team's (adopted, never deleted).
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, applied_run_as, claim, deleted, run_as_missing, sdk_call
from dbsync.tags import SOURCE_ID_TAG

BY_NAME = TargetIndex(
    "pipelines:name",
    lambda ctx: (
        (p.name or "", p.pipeline_id or "") for p in ctx.target.client.pipelines.list_pipelines(max_results=100)
    ),
)


ADOPTED_TAG = "dbsync_adopted_id"  # on a target pipeline dbsync found there: never taken for one it created


def standby_spec(ctx: SyncContext, payload: dict[str, Any], source_key: str, adopted: bool) -> dict[str, Any]:
    """The create/edit body: refs resolved, dbsync's tag added, never continuous (a standby runs nothing)."""
    spec = ctx.idmap.resolve(payload)
    spec["tags"] = {**spec.get("tags", {}), ADOPTED_TAG if adopted else SOURCE_ID_TAG: source_key}
    spec["continuous"] = False
    return spec


class PipelineReplicator(Replicator):
    kind = "pipelines"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        name = resource.payload["name"]
        adopted: bool | None = None
        pipeline_id = change.target_key
        if pipeline_id is None:
            pipeline_id, adopted = _found(ctx, name, resource.key)
        was_adopted = bool(adopted) or (change.prior is not None and change.prior.origin == "adopted")
        spec = standby_spec(ctx, resource.payload, resource.key, was_adopted)
        waiting = run_as_missing(ctx, spec)
        pipelines = ctx.target.client.pipelines
        try:
            if pipeline_id is not None and _edited(ctx, pipeline_id, spec):
                return applied_run_as(pipeline_id, waiting, adopted, what="pipeline")
            pipeline_id = sdk_call(pipelines.create, spec).pipeline_id or ""
            BY_NAME.add(ctx, spec["name"], pipeline_id)
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_CONFLICT") and not isinstance(err, NotFound):
                raise Permanent(f"the target rejected pipeline {spec.get('name')!r}: {err}") from err
            raise
        return applied_run_as(pipeline_id, waiting, adopted=False, what="pipeline")

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        deleted(lambda: ctx.target.client.pipelines.delete(change.target_key or ""))


def _found(ctx: SyncContext, name: str, source_key: str) -> tuple[str | None, bool | None]:
    """A target pipeline of that name (unique per workspace): dbsync's own when it carries this source's tag."""
    pipeline_id = BY_NAME.get(ctx, name)
    if pipeline_id is None:
        return None, None
    try:
        spec = ctx.target.client.pipelines.get(pipeline_id).spec
    except NotFound:
        return None, None
    tags = (spec.tags if spec else None) or {}
    copy_of = tags.get(SOURCE_ID_TAG) or tags.get(ADOPTED_TAG)
    if (copy_of and copy_of != source_key) or not claim(ctx, "pipelines", pipeline_id, source_key):
        # Another source pipeline's copy: the source allows two pipelines one name (`allow_duplicate_names`),
        # and the second once took over the first's copy. It is created instead (the service then refuses the
        # name: an error saying so, never an overwrite).
        return None, None
    return pipeline_id, tags.get(SOURCE_ID_TAG) != source_key


def _edited(ctx: SyncContext, pipeline_id: str, spec: dict[str, Any]) -> bool:
    """PUT the whole spec; False when the target pipeline is gone (deleted by hand) and must be created."""
    try:
        sdk_call(ctx.target.client.pipelines.update, spec, pipeline_id=pipeline_id)
    except NotFound:
        return False
    except DatabricksError as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST" or (is_gone(err) and str(pipeline_id) in str(err)):
            return False
        raise
    return True


def replicator_for(kind: str) -> Replicator:
    return PipelineReplicator()
