"""What each cutover step does, given the runbook: its (state, detail) for the step machine to record."""

from __future__ import annotations

import json
import time
from contextlib import closing
from typing import TYPE_CHECKING, Any

from databricks.sdk.errors import DatabricksError

from dbsync.context import target_fenced
from dbsync.cutover import endpoints, late_jobs, pipelines, plan, render, schedules
from dbsync.cutover.common import (
    JOBS,
    JOBS_DISABLED,
    RUNS_PAGE,
    SOURCE_ROW,
    TARGET_ROW,
    CutoverError,
    kind_disabled,
    list_jobs,
    one_line,
)
from dbsync.cutover.pair import last_sync_age
from dbsync.engine import Engine
from dbsync.planner import selected
from dbsync.report import SAMPLE, validate, validate_from_store
from dbsync.role import STANDBY
from dbsync.roles import StoreRole

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook

Result = tuple[str, dict[str, Any]]  # the step's state (done, skipped, failed) and its recorded detail


# -- 1. final sync --------------------------------------------------------------------------
def final_sync(book: Runbook) -> Result:
    """1. One more sync cycle of every enabled kind (skipped with --skip-source)."""
    if book.skip_source:
        age = last_sync_age(book.ctx)
        when = render.age_text(age)
        return "skipped", {"summary": f"--skip-source: cutting over to the last sync ({when})", "age": age}
    engine = Engine(book.ctx, full_sweep=True)  # every object read, due or not
    with target_fenced(book.ctx):  # a replication cycle like any other: never into a target not our standby
        reports = engine.cycle()
    kinds = {r.kind: {**r.counts(), "blocked": r.blocked, "outcome": r.outcome} for r in reports}
    if engine.fenced:
        return "failed", {"summary": f"the final sync was refused: {engine.fenced}", "kinds": kinds}
    changed = sum(r.created + r.updated + r.deleted for r in reports)
    errors = sum(r.errors + r.blocked for r in reports)
    return "done", {"summary": f"{changed} change(s) replicated, {errors} failed or blocked", "kinds": kinds}


# -- 2. validate ----------------------------------------------------------------------------
def validate_target(book: Runbook) -> Result:
    """2. Failed unless the target is ready for cutover (live, or as last synced without the source), or --force."""
    report = validate_from_store(book.ctx) if book.skip_source else validate(book.ctx)
    detail = {"ready": report.ready_for_cutover, "reasons": report.reasons}
    detail["mode"] = "store (the source was not contacted)" if book.skip_source else "live"
    if report.ready_for_cutover:
        return "done", {**detail, "summary": "ready for cutover"}
    if book.force:
        summary = f"NOT ready ({len(report.reasons)} reason(s)), continued with --force"
        return "done", {**detail, "forced": True, "summary": summary}
    return "failed", {**detail, "summary": f"not ready: {'; '.join(report.reasons[:3])}"}


# -- 3. pause the source --------------------------------------------------------------------
def pause_source(book: Runbook) -> Result:
    """3. Pause each unpaused source job, unpausing its target copy as each is paused; cancel active runs if asked."""
    if book.skip_source:
        # The target is being promoted all the same: marked so before step 4 unpauses its jobs, or another store's
        # daemon would still take it for a standby and could pause them again.
        if book.store.role == StoreRole.STANDBY:
            book.set_role(StoreRole.CUTOVER_IN_PROGRESS)
        summary = "--skip-source: source jobs were not paused (the source is unreachable)"
        return "skipped", {"summary": summary}
    late = book.store.role == StoreRole.CUTOVER_COMPLETE  # the source came back after a --skip-source cutover
    if not late:
        book.set_role(StoreRole.CUTOVER_IN_PROGRESS)
        # The source's jobs keep running meanwhile: the wait comes before they are listed and paused.
        book.wait_for_other_writers("target", "pause_source")
    todo, counts = book.source_changes(list_jobs(book.ctx.source))
    book.settle(SOURCE_ROW, counts.pop("settled"), "paused")
    # Each target copy is unpaused as soon as its source job is recorded paused: the two workspaces
    # have their own rate limits, and a job never runs on both sides. unpause_target does the rest.
    # With the jobs kind disabled the source's jobs are paused all the same (the old primary must not run them beside
    # the new one), but no target job is unpaused: the target's are the DR team's (Runbook.job_prior says none).
    following = bool(todo) and not late and book.jobs_enabled()
    follow = plan.unpause_follower(book.rows, list_jobs(book.ctx.target), book.job_prior) if following else None
    failed = [message for _, message in book.write_jobs("source", todo, "PAUSED", follow).failed["source"]]
    # Jobs created or edited since the final sync, written now that their source is paused; step 4 unpauses them.
    late_ones = late_jobs.replicate(book) if not late else late_jobs.Late()
    stopped, pipeline_failures = pipelines.stop_source(book)  # continuous pipelines, switched to triggered
    schedules_paused, schedule_failures = schedules.stop_source(book)  # unpaused dashboard schedules
    failed += pipeline_failures + schedule_failures
    if late and not failed:  # the old primary answers again: its marker says it is a standby now
        ids = (book.store.get_meta("source_workspace_id") or "", book.store.get_meta("target_workspace_id") or "")
        book.source_marker(STANDBY, *ids, "cutover")
    runs = active_runs(book)
    cancelled = cancel_runs(book, runs) if book.cancel_active_runs else 0
    paused = sum(1 for r in book.job_rows(SOURCE_ROW).values() if r["state"] == "paused")
    unpaused = sum(1 for r in book.job_rows(TARGET_ROW).values() if r["state"] == "unpaused")
    summary = (
        f"{paused} job(s) paused (their {unpaused} target copies unpaused as each was), "
        f"{counts['already_paused']} already paused, {counts['no_trigger']} without schedule or trigger, "
        f"{counts['excluded']} excluded by kinds.jobs; {stopped} continuous pipeline(s) stopped, "
        f"{schedules_paused} dashboard schedule(s) paused; {late_jobs.summary(late_ones)}"
    )
    if runs:
        summary += (
            f"; {cancelled} of {len(runs)} active run(s) cancelled"
            if book.cancel_active_runs
            else (f"; {len(runs)} run(s) still active (--cancel-active-runs cancels them)")
        )
    detail = {**counts, "paused": paused, "active_runs": len(runs), "cancelled_runs": cancelled}
    detail["pipelines_stopped"] = stopped
    detail["dashboard_schedules_paused"] = schedules_paused
    detail["late_jobs_replicated"], detail["late_jobs_failed"] = late_ones.written, late_ones.failures[:SAMPLE]
    detail["late_jobs_partial"] = late_ones.partial[:SAMPLE]
    detail[late_jobs.HELD] = late_ones.held  # every one: step 4 leaves their copies paused
    detail[late_jobs.LATE_PAUSED] = list(late_ones.paused)  # every one: the report names them
    stuck = [] if book.force else late_ones.failures  # --force cuts over past them, as past validation: named above
    if failed or stuck:
        what = [f"{len(failed)} job(s), pipeline(s) or dashboard schedule(s) not paused"] if failed else []
        what += [late_jobs.failure_summary(stuck)] if stuck else []
        return "failed", {**detail, "failed": (failed + stuck)[:SAMPLE], "summary": "; ".join(what)}
    return "done", {**detail, "summary": summary}


def active_runs(book: Runbook) -> list[tuple[int, int]]:
    """(run id, job id) of the source's active runs of selected jobs: one paged listing, not one per job."""
    kind_settings = book.ctx.settings.kind(JOBS)
    try:
        runs = book.ctx.source.client.jobs.list_runs(active_only=True, limit=RUNS_PAGE)
        return [(r.run_id or 0, r.job_id or 0) for r in runs if r.job_id and selected(kind_settings, str(r.job_id))]
    except DatabricksError as err:
        raise CutoverError(f"cannot list the source's active runs: {one_line(err)}") from None


def cancel_runs(book: Runbook, runs: list[tuple[int, int]]) -> int:
    """Cancel the given source runs, paced and in parallel; their number, or CutoverError naming one that failed."""

    def cancel(run: tuple[int, int]) -> None:
        book.writer.pacers["source"].wait()
        book.ctx.source.client.jobs.cancel_run(run[0])  # returns a waiter; the run stops on its own

    errors = []
    with closing(book.writer.parallel(runs, cancel)) as results:
        for run, error in results:
            if error is not None:
                errors.append(f"run {run[0]}: {one_line(error)}")
    if errors:
        raise CutoverError(f"{len(errors)} active run(s) could not be cancelled, e.g. {errors[0]}")
    return len(runs)


# -- 4. unpause the target ------------------------------------------------------------------
# What step 4 turns on besides jobs, by kind: with the kind disabled, none (the summary says so).
_TURNED_ON = {
    pipelines.PIPELINES: "no copy started",
    endpoints.ENDPOINTS: "no endpoint given its source scaling",
    schedules.SCHEDULES: "no copy unpaused",
}


def unpause_target(book: Runbook) -> Result:
    """4. Unpause the replicated target jobs whose source job was unpaused, those not unpaused already."""
    book.wait_for_other_writers("target", "unpause_target")  # at once when step 3 waited in this process
    todo, counts = book.target_changes(list_jobs(book.ctx.target))
    todo, held = late_jobs.held(book, todo)  # late jobs whose ACL step 3 did not write: they would run as dbsync
    book.settle(TARGET_ROW, counts.pop("settled"), "unpaused")
    failed = [message for _, message in book.write_jobs("target", todo, "UNPAUSED").failed["target"]]
    started, pipeline_failures = pipelines.start_target(book)  # the copies of the continuous source pipelines
    scaled, endpoint_failures = endpoints.restore_target(book)  # endpoints the standby scaled to zero
    schedules_unpaused, schedule_failures = schedules.start_target(book)  # dashboard schedules that ran
    failed += pipeline_failures + endpoint_failures + schedule_failures
    unpaused = sum(1 for r in book.job_rows(TARGET_ROW).values() if r["state"] == "unpaused")
    summary = f"{unpaused} job(s) unpaused, {counts['stay_paused']} left paused as on the source"
    summary += f", {started} continuous pipeline(s) started, {scaled} serving endpoint(s) given their source scaling"
    summary += f", {schedules_unpaused} dashboard schedule(s) unpaused"
    if held:
        summary += f", {held} late job(s) left paused: step 3 did not write their ACL (named there)"
    if not book.jobs_enabled():  # its copies from before it was turned off are stale: never run beside the DR team's
        summary += f"; {JOBS_DISABLED}: no target job unpaused, the target's jobs are not dbsync's"
    for kind, what in _TURNED_ON.items():  # the same for each kind step 4 turns on: its rows in the store are stale
        if not book.kind_enabled(kind):
            summary += f"; {kind_disabled(kind)}: {what}, the target's are not dbsync's"
    for key, what in (
        ("missing", "missing on the target"),
        ("not_ours", "not created by dbsync (left alone)"),
        ("mismatch", "with another trigger type than the source"),
    ):
        if counts[key]:
            summary += f", {len(counts[key])} {what}"
        counts[key] = counts[key][:SAMPLE]
    detail = {**counts, "unpaused": unpaused, "pipelines_started": started, "endpoints_scaled": scaled}
    detail["dashboard_schedules_unpaused"] = schedules_unpaused
    detail["late_jobs_left_paused"] = held
    if failed:
        what = f"{len(failed)} job(s), pipeline(s), endpoint(s) or dashboard schedule(s) not unpaused"
        return "failed", {**detail, "failed": failed[:SAMPLE], "summary": what}
    return "done", {**detail, "summary": summary}


# -- 5. mark complete / 6. report -----------------------------------------------------------
def mark_complete(book: Runbook) -> Result:
    """5. The store role cutover-complete: `dbsync serve` stops replicating into the new primary."""
    book.set_role(StoreRole.CUTOVER_COMPLETE)
    return "done", {"summary": "store role cutover-complete: `dbsync serve` no longer writes to the new primary"}


def report(book: Runbook) -> Result:
    """6. Save the report (each job before and after on both sides, each step's time and calls), 0600."""
    source_jobs = None if book.skip_source else list_jobs(book.ctx.source)
    document = book.report_document(source_jobs, list_jobs(book.ctx.target))
    book.report_dir.mkdir(parents=True, exist_ok=True)
    path = book.report_dir / time.strftime("cutover-report-%Y%m%dT%H%M%SZ.json", time.gmtime())
    render.write_private(path, json.dumps(document, indent=2, sort_keys=True))
    return "done", {"summary": f"saved to {path}", "path": str(path)}
