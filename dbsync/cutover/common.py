"""What every part of the cutover shares: the steps, the record's row names, the live job view, its errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync import errors
from dbsync.errors import DbsyncError
from dbsync.roles import CUTOVER_STATES
from dbsync.watchers.jobs import SOURCE_JOB_TAG, TRIGGER_FIELDS

STEPS = ("final_sync", "validate", "pause_source", "unpause_target", "mark_complete", "report")
DONE_STATES = ("done", "skipped")
ROLE_STATES = CUTOVER_STATES  # the dbsync_cutover_state gauge per store role
SOURCE_ROW, TARGET_ROW, RUN_ROW = "source_job:", "target_job:", "run"
RUNS_PAGE = 25  # runs/list accepts at most 25 per page
JOBS = "jobs"  # the kind whose triggers the cutover moves from one side to the other


def kind_disabled(kind: str) -> str:
    """Why the cutover turns on none of a kind's copies: the kind is off, the target's objects of it are the DR team's.

    The store keeps the rows a sync wrote before the kind was turned off: those copies are stale, and steps 3-4 ran
    them beside the DR team's (jobs, continuous pipelines, dashboard schedules, serving endpoints' scaling)."""
    return f"the {kind} kind is disabled (kinds.{kind}.enabled: false)"


# The jobs kind off, the target's jobs are the DR team's: the cutover writes none there (late_jobs, unpause_target).
JOBS_DISABLED = kind_disabled(JOBS)

Progress = Callable[[str, str, dict[str, Any]], None]
Rows = dict[str, dict[str, Any]]  # the store's cutover record: row name → {state, at, detail}


class CutoverError(DbsyncError):
    """A step that could not finish; re-running `dbsync cutover` resumes it (exit 1)."""


class CutoverRefused(CutoverError):
    """Validation says the target is not ready and --force was not given (exit 1)."""


@dataclass(frozen=True)
class JobView:
    """The part of a job the cutover reads: its triggers and dbsync tag (from jobs/list, no tasks)."""

    job_id: str
    name: str
    triggers: dict[str, dict[str, Any]]  # "schedule" → the whole schedule object, pause_status included
    source_tag: str | None

    @property
    def states(self) -> dict[str, str]:
        return {f: spec.get("pause_status", "UNPAUSED") for f, spec in self.triggers.items()}


@dataclass
class Pause:
    """One job to pause (source) or unpause (target), with what is recorded before the write."""

    job: JobView
    fields: list[str]
    row: str
    detail: dict[str, Any]


def list_jobs(ws: Any) -> dict[str, JobView]:
    """Every job of a workspace, 100 per call, without tasks: the cutover needs triggers and tags only."""
    out: dict[str, JobView] = {}
    try:
        for job in ws.client.jobs.list(limit=100):
            settings = job.settings.as_dict() if job.settings else {}
            triggers = {f: settings[f] for f in TRIGGER_FIELDS if settings.get(f) is not None}
            tag = (settings.get("tags") or {}).get(SOURCE_JOB_TAG)
            out[str(job.job_id)] = JobView(str(job.job_id), settings.get("name", ""), triggers, tag)
    except DatabricksError as err:
        raise CutoverError(f"cannot list the jobs of the {ws.side}: {one_line(err)}") from None
    return out


def step_state(rows: Rows, step: str) -> str:
    """A step's (or row's) recorded state; "pending" when it has none."""
    return (rows.get(step) or {}).get("state") or "pending"


def step_detail(rows: Rows, step: str) -> dict[str, Any]:
    """A step's (or row's) recorded detail; {} when it has none."""
    return (rows.get(step) or {}).get("detail") or {}


def job_rows(rows: Rows, prefix: str) -> Rows:
    """Per-job records ("source_job:<id>" → {state, detail}) keyed by job id."""
    return {k[len(prefix) :]: v for k, v in rows.items() if k.startswith(prefix)}


def one_line(err: BaseException) -> str:
    """The first line of an error, without the SDK's client config: the cutover's records keep 300 characters."""
    return errors.one_line(err, limit=300)
