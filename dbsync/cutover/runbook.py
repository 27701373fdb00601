"""The runbook: the cutover's step machine, each step a resumable row of the store's `cutover` table."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync import metrics
from dbsync.context import SyncContext
from dbsync.cutover import endpoints, late_jobs, pipelines, plan, render, schedules, steps
from dbsync.cutover.common import (
    DONE_STATES,
    JOBS,
    ROLE_STATES,
    RUN_ROW,
    STEPS,
    CutoverError,
    CutoverRefused,
    JobView,
    Pause,
    Progress,
    job_rows,
    list_jobs,
    one_line,
    step_detail,
    step_state,
)
from dbsync.cutover.pair import last_sync_age
from dbsync.cutover.rollback import rollback
from dbsync.cutover.writer import PacedWriter, Writes
from dbsync.errors import DbsyncError
from dbsync.model import Prior
from dbsync.report import validate, validate_from_store
from dbsync.role import MARKER_TTL_SECONDS, PRIMARY, PROMOTING, STANDBY, MarkerWait, monotonic, write_marker
from dbsync.roles import StoreRole

log = logging.getLogger("dbsync.cutover")
STEP_FUNCTIONS: dict[str, Callable[[Runbook], steps.Result]] = {
    "final_sync": steps.final_sync,
    "validate": steps.validate_target,
    "pause_source": steps.pause_source,
    "unpause_target": steps.unpause_target,
    "mark_complete": steps.mark_complete,
    "report": steps.report,
}


class Runbook:
    """The cutover of one pair: `plan()`, `run()` (resumable) and `rollback()` (idempotent)."""

    # The one real wait of a cutover or a rollback (MarkerWait): the tests replace it (tests/conftest.py).
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(
        self,
        ctx: SyncContext,
        skip_source: bool = False,
        cancel_active_runs: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        clock: Callable[[], float] = monotonic,
        report_dir: Path | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.skip_source = skip_source
        self.cancel_active_runs = cancel_active_runs
        self.force = force
        self.progress = progress
        self.clock = clock
        self.marker_wait = MarkerWait(clock, sleep or self.sleep)
        self.report_dir = report_dir or Path(ctx.settings.state_path).resolve().parent
        rate = ctx.settings.cutover.max_writes_per_second
        self.writer = PacedWriter({"source": ctx.source, "target": ctx.target}, rate, ctx.settings.concurrency)
        self.rows = self.store.cutover_steps()

    # -- records --------------------------------------------------------------------------------
    def record(self, row: str, state: str, detail: dict[str, Any] | None = None) -> None:
        """Record a step's or a job's state in the store (and in this runbook's view of the record)."""
        self.store.record_cutover_step(row, state, detail)
        self.rows[row] = {"state": state, "at": time.time(), "detail": detail}

    def state(self, step: str) -> str:
        """A step's recorded state; "pending" when it has none."""
        return step_state(self.rows, step)

    def detail(self, step: str) -> dict[str, Any]:
        """A step's recorded detail; {} when it has none."""
        return step_detail(self.rows, step)

    def job_rows(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Per-job records ("source_job:<id>" → {state, detail}) keyed by job id."""
        return job_rows(self.rows, prefix)

    def refuse_during_rollback(self) -> None:
        """A rollback that did not finish must be finished before anything else: both sides are half restored."""
        if self.state(RUN_ROW) == "rollback":
            raise CutoverError("a rollback of this cutover did not finish: run `dbsync cutover --rollback` again first")

    def next_step(self) -> str | None:
        """The step a run would start with; None when the cutover is complete."""
        if self.source_is_back():
            return "pause_source"
        return next((s for s in STEPS if self.state(s) not in DONE_STATES), None)

    def source_is_back(self) -> bool:
        """A --skip-source cutover (complete or not) and this run may reach the source: its jobs must stop.

        Not only once mark_complete is done: a --skip-source run killed in unpause_target, resumed
        without --skip-source once the source answered (what the refusal of --skip-source says to do),
        finished without ever pausing the source, whose jobs then ran beside the new primary's.
        """
        return not self.skip_source and self.state("pause_source") == "skipped"

    def set_role(self, role: str) -> None:
        """The store's role, and the role markers on the workspaces (the target's first: it must not fail)."""
        self._write_markers(role)
        self.store.set_meta("role", role)
        metrics.CUTOVER_STATE.set(ROLE_STATES[role])

    def _write_markers(self, role: str) -> None:
        source_id = self.store.get_meta("source_workspace_id") or ""
        target_id = self.store.get_meta("target_workspace_id") or ""
        target_role, source_role = {
            StoreRole.CUTOVER_IN_PROGRESS: (PROMOTING, None),
            StoreRole.CUTOVER_COMPLETE: (PRIMARY, STANDBY),
            StoreRole.STANDBY: (STANDBY, None),  # the rollback marked the source primary first (mark_source_primary)
        }[role]
        by = "cutover --rollback" if self.state(RUN_ROW) == "rollback" else "cutover"
        write_marker(self.ctx.target, target_role, target_id, source_id, by)
        if target_role == PROMOTING:
            self.marker_wait.marked()
        if source_role is not None and not self.skip_source:
            self.source_marker(source_role, source_id, target_id, by)

    def mark_source_primary(self, required: bool) -> None:
        """A rollback's write of the source's marker `primary`; when `required` the rollback stops without it.

        Not required only when the cutover never reached the source (its marker is as the pair's first
        write left it): a --skip-source cutover rolled back while the source is still down.
        """
        source_id = self.store.get_meta("source_workspace_id") or ""
        target_id = self.store.get_meta("target_workspace_id") or ""
        try:
            write_marker(self.ctx.source, PRIMARY, source_id, target_id, "cutover --rollback")
            self.marker_wait.marked()
        except (DatabricksError, DbsyncError, OSError) as err:
            if not required:
                log.warning("cannot write the role marker of the source: %s", one_line(err))
                return
            raise CutoverError(
                f"cannot write the role marker of the source ({one_line(err)}): it would stay `standby` and a "
                "reverse replication would write into the primary. Run `dbsync cutover --rollback` again once the "
                "source answers (with --skip-source if it is down for good: its marker is then left as it is)"
            ) from None

    def source_marker(self, role: str, source_id: str, target_id: str, by: str) -> None:
        try:
            write_marker(self.ctx.source, role, source_id, target_id, by)
        except (DatabricksError, DbsyncError, OSError) as err:  # best effort: the target's marker is what protects
            log.warning("cannot write the role marker of the source: %s", one_line(err))

    def wait_for_other_writers(self, side: str, step: str) -> None:
        """Before making jobs run on `side`, just marked out of standby: wait until no other writer may pause them.

        Waiting once, rather than every writer re-reading the marker before each write, keeps the
        daemon's writes at one marker read per MARKER_TTL_SECONDS (see dbsync/role.py).
        """

        def say(seconds: float) -> None:
            why = (
                f"waiting {seconds:.0f} s before anything runs on the {side}: another dbsync writing to it may "
                f"have read its role marker as standby less than {MARKER_TTL_SECONDS:.0f} s ago, and would pause "
                "again the jobs started there until it reads the marker again"
            )
            if self.progress is None:
                log.info("%s", why)
            self._emit("wait", step, seconds=seconds, summary=why)

        self.marker_wait.wait(say)

    def _emit(self, event: str, name: str, **detail: Any) -> None:
        if self.progress is not None:
            self.progress(event, name, detail)

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run every step not done yet, in order; the saved report document at the end."""
        self.refuse_during_rollback()
        run = self.detail(RUN_ROW)
        self.record(
            RUN_ROW,
            "running",
            {
                "started_at": run.get("started_at") or time.time(),
                "skip_source": bool(run.get("skip_source")) or self.skip_source,
                "cancel_active_runs": bool(run.get("cancel_active_runs")) or self.cancel_active_runs,
            },
        )
        if self.source_is_back():
            # pause_source runs before the steps left (mark_complete marks the source standby only
            # after it); a complete cutover's new primary is left exactly as its team has it now.
            self.record("pause_source", "pending", {"late": True})
            self.record("report", "pending", None)
        for name in STEPS:
            if self.state(name) not in DONE_STATES:
                self._run_step(name, STEP_FUNCTIONS[name])
        self.record(RUN_ROW, "done", {**self.detail(RUN_ROW), "finished_at": time.time()})
        return self.saved_report()

    def _run_step(self, name: str, step: Callable[[Runbook], steps.Result]) -> None:
        calls = self._calls()
        started = self.clock()
        self.record(name, "running", {"started_at": time.time()})
        self._emit("step", name, state="running")
        try:
            state, detail = step(self)
        except BaseException as err:  # Ctrl-C included: the step shows failed, and a re-run resumes it
            detail = {"error": one_line(err) or type(err).__name__}
            self._finish_step(name, "failed", detail, started, calls)
            raise
        self._finish_step(name, state, detail, started, calls)
        if state == "failed" and name == "validate":
            self.record("final_sync", "pending", None)  # the next attempt syncs again before validating
            raise CutoverRefused(
                "the target is not ready for cutover:\n"
                + "\n".join(f"  - {r}" for r in detail["reasons"])
                + "\nFix these (or pass --force to cut over anyway), then run `dbsync cutover` again."
            )
        if state == "failed":
            raise CutoverError(f"{name}: {detail.get('summary')}. Run `dbsync cutover` again to resume.")

    def _finish_step(self, name: str, state: str, detail: dict[str, Any], started: float, calls: dict) -> None:
        detail["seconds"] = round(self.clock() - started, 3)
        now = self._calls()
        detail["api_calls"] = {side: now[side] - calls[side] for side in now}
        self.record(name, state, detail)
        outcome = "error" if state == "failed" else "ok"
        self.ctx.event(None, None, "cutover", outcome, f"cutover {name}: {state} — {detail.get('summary', '')}")
        self._emit("step", name, state=state, seconds=detail["seconds"], summary=detail.get("summary", ""))

    def _calls(self) -> dict[str, int]:
        return {"source": self.ctx.source.total_calls(), "target": self.ctx.target.total_calls()}

    def report_document(
        self, source_jobs: dict[str, JobView] | None, target_jobs: dict[str, JobView]
    ) -> dict[str, Any]:
        """Each job's pause state before and after on both sides, and each step's time and API calls."""
        steps = self.step_rows()
        return {
            "source": {"host": self.ctx.source.host, "workspace_id": self.store.get_meta("source_workspace_id")},
            "target": {"host": self.ctx.target.host, "workspace_id": self.store.get_meta("target_workspace_id")},
            "skip_source": source_jobs is None,
            "role": self.store.role,
            "generated_at": time.time(),
            "steps": steps,
            "jobs": render.job_entries(self.rows, self.store.priors(JOBS), source_jobs, target_jobs),
        }

    def step_rows(self) -> list[dict[str, Any]]:
        """Each step's state, seconds, API calls per side and summary, as recorded."""
        return render.step_rows(self.rows)

    def saved_report(self) -> dict[str, Any]:
        """The report the last run saved (rebuilt from the live workspaces if the file is gone)."""
        path = self.detail("report").get("path")
        if path and Path(path).exists():
            document = json.loads(Path(path).read_text())
            document.update(path=path, steps=self.step_rows())  # the report step's own time is known now
            return document
        source_jobs = None if self.skip_source else list_jobs(self.ctx.source)
        return self.report_document(source_jobs, list_jobs(self.ctx.target))

    # -- planning (pure: dbsync/cutover/plan.py) -------------------------------------------------
    def source_changes(self, source_jobs: dict[str, JobView]) -> tuple[list[Pause], dict[str, Any]]:
        """Source jobs to pause (each with its prior state) and the counts of the others."""
        return plan.source_changes(source_jobs, self.rows, self.ctx.settings.kind(JOBS))

    def kind_enabled(self, kind: str) -> bool:
        """Whether `kind` replicates: off, steps 3-4 turn none of its copies on (common.kind_disabled says why)."""
        return self.ctx.settings.kind(kind).enabled

    def jobs_enabled(self) -> bool:
        """Whether the jobs kind replicates. Off, the target's jobs are the DR team's: none is unpaused, and the
        copies an earlier sync made (their rows stay in the store) are stale, left paused beside the DR team's."""
        return self.kind_enabled(JOBS)

    def target_changes(
        self, target_jobs: dict[str, JobView], source_live: dict[str, JobView] | None = None
    ) -> tuple[list[Pause], dict[str, Any]]:
        """Target jobs to unpause: exactly the replicated ones whose source job was unpaused (none, the kind off)."""
        priors = self.store.priors(JOBS) if self.jobs_enabled() else []
        return plan.target_changes(self.rows, priors, target_jobs, source_live)

    def wanted_states(self, prior: Prior, source_live: dict[str, JobView] | None = None) -> dict[str, str]:
        """The pause state a target job should take: its source job's state when the source was paused."""
        return plan.wanted_states(self.rows, prior, source_live)

    def job_prior(self, job_id: str) -> Prior | None:
        """What the store knows of a source job (its copy's id on the target), None when never replicated or the jobs
        kind is disabled (its copy is not unpaused)."""
        return self.store.prior(JOBS, job_id) if self.jobs_enabled() else None

    # -- per-job writes -------------------------------------------------------------------------
    def write_jobs(
        self,
        side: str,
        todo: list[Pause],
        status: str,
        follow: Callable[[Pause], Pause | None] | None = None,
        record: bool = True,
    ) -> Writes:
        """Write each job's new pause status in parallel, paced, recording each job before and after.

        With `follow`, each success may start a write on the other side (a target unpause after its
        source pause), recorded the same way. Without `record` (a rollback) nothing is recorded.
        """

        def before(item: Pause) -> None:
            if record and item.row not in self.rows:
                self.record(item.row, "pending", item.detail)  # the prior state is kept before the write

        def after(item: Pause, state: str) -> None:
            if record:
                self.record(item.row, state, item.detail)
            self._emit("job", item.row, state=state)

        return self.writer.write_all(side, todo, status, follow, before, after)

    def settle(self, prefix: str, job_ids: list[str], done_state: str) -> None:
        """Jobs recorded before a write that reached the service, the process dying before it said so."""
        for job_id in job_ids:
            self.record(prefix + job_id, done_state, self.rows[prefix + job_id]["detail"])

    # -- plan -----------------------------------------------------------------------------------
    def plan(self, with_validation: bool = False) -> list[str]:
        """What `run()` would do from where the record stands, as lines; writes nothing."""
        ctx = self.ctx
        lines = [
            f"cutover {ctx.source.host} (workspace {self.store.get_meta('source_workspace_id')}) → "
            f"{ctx.target.host} (workspace {self.store.get_meta('target_workspace_id')}); store role {self.store.role}"
        ]
        if self.skip_source:
            when = render.age_text(last_sync_age(ctx))
            lines.append(
                f"--skip-source: the source is not contacted; the target gets the state of the last sync ({when})"
            )
        source_jobs = None if self.skip_source else list_jobs(ctx.source)
        target_jobs = list_jobs(ctx.target)
        source_todo, source_counts = self.source_changes(source_jobs) if source_jobs is not None else (None, {})
        target_todo, target_counts = self.target_changes(target_jobs, source_jobs)
        target_todo, _ = late_jobs.held(self, target_todo)  # step 4 leaves them paused: named, with why
        described = {
            "final_sync": "replicate every enabled kind once more"
            if not self.skip_source
            else "skipped (--skip-source)",
            "validate": self._plan_validation(with_validation),
            "pause_source": render.source_plan_text(
                source_todo,
                source_counts,
                self.cancel_active_runs,
                self.store.role != StoreRole.CUTOVER_COMPLETE,
                self.jobs_enabled(),
            ),
            "unpause_target": render.target_plan_text(
                target_todo, target_counts, late_jobs.held_reasons(self.rows), self.jobs_enabled()
            )
            + "; "
            + pipelines.plan_text(self, self.skip_source)
            + "; "
            + endpoints.plan_text(self)
            + "; "
            + schedules.plan_text(self, self.skip_source),
            "mark_complete": "store role → cutover-complete: `dbsync serve` stops replicating into the new primary",
            "report": f"each job's state before/after on both sides, saved as JSON in {self.report_dir}",
        }
        return lines + render.step_lines(described, self.rows)

    def _plan_validation(self, with_validation: bool) -> str:
        if self.state("validate") in DONE_STATES:
            return str(self.detail("validate").get("summary"))
        if not with_validation:
            return render.validation_text(None)
        return render.validation_text(validate_from_store(self.ctx) if self.skip_source else validate(self.ctx))

    # -- rollback -------------------------------------------------------------------------------
    def rollback(self) -> dict[str, Any]:
        """Re-pause the target jobs the cutover unpaused, restore the source jobs it paused, back to standby.

        Per job, the target copy is paused before its source job may run again, and a source job whose
        target copy runs (unpaused outside dbsync) is not restored. Idempotent (see dbsync/cutover/rollback.py).
        """
        return rollback(self)
