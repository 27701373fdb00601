"""Jobs on the target: adopt by tag dbsync_source_job_id, create or reset, every trigger PAUSED on a standby.

`write_source` (`dbsync restore --to source`) is the one write to the source: the job itself, untagged, unpaused.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.jobs import JobSettings

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.mapping import SourceForm
from dbsync.model import Applied, Delete, Prior, Resource, SourceWrite, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, applied_run_as, deleted, edited, run_as_missing, sdk_call
from dbsync.watchers.jobs import SOURCE_JOB_TAG, TRIGGER_FIELDS, pause_states

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
        waiting = run_as_missing(ctx, settings)
        jobs = ctx.target.client.jobs
        found = None if change.target_key else BY_TAG.get(ctx, resource.key)
        job_id = change.target_key or found
        try:
            if job_id is not None and edited(lambda: jobs.reset(int(job_id), JobSettings.from_dict(settings))):
                # Found by dbsync's own tag: dbsync made it (a lost store, a kill -9 before the record).
                return applied_run_as(job_id, waiting, adopted=False if found else None, what="job")
            job_id = str(sdk_call(jobs.create, settings).job_id)
            BY_TAG.add(ctx, resource.key, job_id)
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                raise Permanent(f"the target rejected job {settings.get('name')!r}: {err}") from err
            raise
        return applied_run_as(job_id, waiting, adopted=False, what="job")

    restores_source = True

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> SourceWrite:
        """Reset the source job (re-created when gone) with the kept settings: no dbsync tag, never paused by
        dbsync (each trigger keeps the source job's pause state, or the last one dbsync saw when re-created)."""
        settings = form.payload(resource.payload)
        if settings.get("run_as"):
            settings["run_as"] = form.run_as(settings["run_as"])
        jobs = ctx.source.client.jobs
        current = _source_pause(ctx, resource.key)
        pause = current if current is not None else (prior.source_meta.get("pause") if prior else None) or {}
        for field in TRIGGER_FIELDS:
            if settings.get(field) is not None and pause.get(field):
                settings[field]["pause_status"] = pause[field]
        if current is not None and edited(lambda: jobs.reset(int(resource.key), JobSettings.from_dict(settings))):
            return SourceWrite(resource.key)
        return SourceWrite(str(sdk_call(jobs.create, settings).job_id))

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        deleted(lambda: ctx.target.client.jobs.delete(int(change.target_key or 0)))


def _source_pause(ctx: SyncContext, job_id: str) -> dict[str, str] | None:
    """The source job's pause state per trigger, or None when the job is gone from the source."""
    try:
        job = ctx.source.client.jobs.get(int(job_id))
    except DatabricksError as err:
        if is_gone(err):
            return None
        raise
    return pause_states(job.settings.as_dict() if job.settings else {})


def replicator_for(kind: str) -> Replicator:
    return JobReplicator()
