"""Jobs on the target: adopt by tag dbsync_source_job_id, create or reset, every trigger PAUSED on a standby."""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.jobs import JobSettings

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.mapping import waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.principals import principal_on_target
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, deleted, edited, sdk_call
from dbsync.watchers.jobs import SOURCE_JOB_TAG, TRIGGER_FIELDS

BY_TAG = TargetIndex(
    "jobs",
    lambda ctx: (
        ((j.settings.tags or {}).get(SOURCE_JOB_TAG, ""), str(j.job_id))
        for j in ctx.target.client.jobs.list(limit=100)
        if j.settings and (j.settings.tags or {}).get(SOURCE_JOB_TAG)
    ),
)


def target_settings(ctx: SyncContext, payload: dict[str, Any], source_key: str) -> dict[str, Any]:
    """The settings written to the target: refs resolved, the dbsync tag added, triggers paused."""
    settings = ctx.idmap.resolve(payload)
    settings["tags"] = {**settings.get("tags", {}), SOURCE_JOB_TAG: source_key}
    for field in TRIGGER_FIELDS:
        if settings.get(field) is not None:  # `continuous: {}` is a trigger too (UNPAUSED by default)
            settings[field]["pause_status"] = "PAUSED"  # the target is a standby: its triggers never fire
    return settings


class JobReplicator(Replicator):
    kind = "jobs"
    unrecorded_origin = "created"  # before ownership was recorded, only dbsync's own tag was ever adopted

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        settings = target_settings(ctx, resource.payload, resource.key)
        waiting = _run_as_missing(ctx, settings)
        jobs = ctx.target.client.jobs
        found = None if change.target_key else BY_TAG.get(ctx, resource.key)
        job_id = change.target_key or found
        try:
            if job_id is not None and edited(lambda: jobs.reset(int(job_id), JobSettings.from_dict(settings))):
                # Found by dbsync's own tag: dbsync made it (a lost store, a kill -9 before the record).
                return _applied(job_id, waiting, adopted=False if found else None)
            job_id = str(sdk_call(jobs.create, settings).job_id)
            BY_TAG.add(ctx, resource.key, job_id)
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                raise Permanent(f"the target rejected job {settings.get('name')!r}: {err}") from err
            raise
        return _applied(job_id, waiting, adopted=False)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        deleted(lambda: ctx.target.client.jobs.delete(int(change.target_key or 0)))


def _run_as_missing(ctx: SyncContext, settings: dict[str, Any]) -> list[str]:
    """A run_as principal the target lacks is left out (the job runs as its owner) and waited for.

    run_as must name an active workspace principal; left out, the job runs as its creator. The target's SCIM
    listing (once per run) says whether it has the principal before the write.
    """
    run_as = settings.get("run_as") or {}
    field = "user_name" if run_as.get("user_name") else "service_principal_name"
    name = run_as.get(field)
    scim_type = "users" if field == "user_name" else "service_principals"
    if not name or principal_on_target(ctx, scim_type, name):
        return []
    if ctx.settings.principals_missing == "fail":
        raise Permanent(f"run_as {name} does not exist on the target: provision it there first")
    del settings["run_as"]
    return [waiting_ref(scim_type, name)]


def _applied(job_id: str, waiting: list[str], adopted: bool | None) -> Applied:
    if not waiting:
        return Applied(job_id, adopted=adopted)
    name = waiting[0].split(":", 1)[1]
    note = f"run_as {name} does not exist on the target; the job runs as its owner"
    return Applied(job_id, note=note, waiting_on=waiting, adopted=adopted)


def replicator_for(kind: str) -> Replicator:
    return JobReplicator()
