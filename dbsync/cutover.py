"""`dbsync cutover`: the standby becomes the primary, as a runbook of recorded, resumable steps (+ rollback).

Steps, each a row of the store's `cutover` table (state running | done | skipped | failed, JSON detail):

  final_sync → validate → pause_source → unpause_target → mark_complete → report

A re-run resumes at the first step that is not done; a step that was running when the process died
runs again, and every step is idempotent (it compares the live state with the wanted one). Per-job
writes are recorded before they are made — `source_job:<id>` with the job's prior pause state,
`target_job:<id>` with the trigger fields unpaused — so a crash in the middle loses nothing and
`--rollback` knows exactly what to put back. Target jobs dbsync did not create are never touched.

pause_source unpauses each job's target copy as soon as the source job is recorded paused: the two
workspaces have their own rate limits, so the writes of both sides overlap, and per job the target
still starts only after the source stopped. unpause_target then does what is left (a resumed run,
`--skip-source`). Writes are paced at `cutover.max_writes_per_second` per workspace.

The store's role is `cutover-in-progress` from the first write and `cutover-complete` at the end, when
`dbsync serve` stops replicating into the new primary; `dbsync_cutover_state` follows.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.jobs import JobSettings

from dbsync import metrics, planner
from dbsync.config import Settings
from dbsync.context import SyncContext, check_auth, open_context, preflight
from dbsync.errors import ConfigError, DbsyncError, ListingError
from dbsync.model import Prior
from dbsync.report import SAMPLE, KindValidation, Report, add_store_status, not_ready_reasons, validate
from dbsync.watchers.jobs import SOURCE_JOB_TAG, TRIGGER_FIELDS

log = logging.getLogger("dbsync.cutover")
T = TypeVar("T")

STEPS = ("final_sync", "validate", "pause_source", "unpause_target", "mark_complete", "report")
DONE_STATES = ("done", "skipped")
ROLE_STATES = {"standby": 0, "cutover-in-progress": 1, "cutover-complete": 2}
SOURCE_ROW, TARGET_ROW, RUN_ROW = "source_job:", "target_job:", "run"
RUNS_PAGE = 25  # runs/list accepts at most 25 per page

Progress = Callable[[str, str, dict[str, Any]], None]


class CutoverError(DbsyncError):
    """A step that could not finish; re-running `dbsync cutover` resumes it (exit 1)."""


class CutoverRefused(CutoverError):
    """Validation says the target is not ready and --force was not given (exit 1)."""


# -- live job views -----------------------------------------------------------------------------
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
        raise CutoverError(f"cannot list the jobs of the {ws.side}: {_one_line(err)}") from None
    return out


class Pacer:
    """Spaces calls at most `rate` per second across threads, so bulk writes meet no 429 on the way."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = self.clock()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            self.sleep(at - now)


def set_pause(ws: Any, pacer: Pacer, job: JobView, fields: Iterable[str], status: str) -> None:
    """jobs/update with the whole trigger object and a new pause_status: every other setting is kept."""
    new = {f: {**job.triggers[f], "pause_status": status} for f in fields}
    pacer.wait()
    ws.client.jobs.update(int(job.job_id), new_settings=JobSettings.from_dict(new))


# -- opening the pair ---------------------------------------------------------------------------
def open_cutover_context(settings: Settings, need_source: bool = True, force: bool = False) -> SyncContext:
    """Connect both sides, or only the target when the source is down (`--skip-source`).

    Without the source, its workspace id is the one the store was bound to, and its client is
    built with a one-second retry budget: nothing may wait minutes on a dead host. A source that
    answers is refused for `--skip-source` unless `force`: its jobs would keep running beside the
    new primary's. A store that never cut over is refused against a target whose role marker says
    it is already a primary (a lost or fresh store would pause its jobs).
    """
    if need_source:
        try:
            preflight("source", _host(settings, "source"))
        except ConfigError as err:
            raise ConfigError(
                f"{err} If the source is down (the disaster case), run `dbsync cutover --skip-source`: it "
                "cuts over to the state of the last sync."
            ) from None
        ctx = open_context(settings, writer=False)
    else:
        if not force:
            _refuse_live_source(settings)
        ctx = _open_without_source(settings)
    try:
        _check_target_marker(ctx)
    except BaseException:
        ctx.store.close()
        raise
    return ctx


def _refuse_live_source(settings: Settings) -> None:
    """--skip-source is for a source that is down: one that answers would keep its jobs running."""
    import httpx

    host = _host(settings, "source")
    url = host if "://" in host else f"https://{host}"
    try:
        answer = httpx.get(url.rstrip("/") + "/.well-known/databricks-config", timeout=5.0)
    except httpx.HTTPError:
        return  # down, as --skip-source says
    if answer.status_code < 500:
        raise ConfigError(
            f"--skip-source, but the source workspace at {url} answers (HTTP {answer.status_code}): its jobs would "
            "keep running beside the new primary's. Run `dbsync cutover` without --skip-source (it pauses them), "
            "or add --force if the source is really unusable."
        )


def _check_target_marker(ctx: SyncContext) -> None:
    """A store that never began a cutover must not cut over a target that is already someone's primary."""
    from dbsync.role import RoleRefused, marker_refusal, read_marker

    if ctx.store.role != "standby" or ctx.store.cutover_steps():
        return  # resuming: the marker is ours
    source_id = ctx.store.get_meta("source_workspace_id") or ""
    target_id = ctx.store.get_meta("target_workspace_id") or ""
    refusal = marker_refusal(read_marker(ctx.target), source_id, target_id)
    if refusal:
        raise RoleRefused(refusal)


def _open_without_source(settings: Settings) -> SyncContext:
    from dbsync.store import Store
    from dbsync.workspace import connect

    preflight("target", _host(settings, "target"))
    target = connect(
        "target",
        settings.target,
        retry_timeout_seconds=settings.retry_timeout_seconds,
        concurrency=settings.concurrency,
    )
    check_auth("target", target)  # a refused token is one line now, not an error per job mid-cutover
    with _quiet("databricks.sdk"):  # its host probe warns about the host we know is down
        source = connect(
            "source", settings.source, retry_timeout_seconds=1, http_timeout_seconds=5, concurrency=settings.concurrency
        )
    store = Store(settings.state_path)
    source_id = store.get_meta("source_workspace_id")
    if source_id is None:
        store.close()
        raise ConfigError(f"state store {settings.state_path} has never synced: there is nothing to cut over")
    try:
        store.bind_pair(source_id, target.workspace_id())
    except DbsyncError:
        store.close()
        raise
    return SyncContext.build(settings, source, target, store)


def _host(settings: Settings, side: str) -> str:
    from dbsync.config import profile_host

    ws = getattr(settings, side)
    return profile_host(side, ws) if ws.profile else ws.host or ""


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def validate_from_store(ctx: SyncContext) -> Report:
    """Validation without the source: the store's last synced state against the live target."""
    from dbsync.registry import kinds

    ctx.new_run()
    results = []
    for kind in kinds():
        if not ctx.settings.kind(kind.name).enabled:
            continue
        result = KindValidation(kind.name)
        results.append(result)
        try:
            target_keys = set() if kind.name == "permissions" else {r.key for r in kind.watcher.list(ctx, ctx.target)}
        except ListingError as err:
            result.listing_error = str(err)
            continue
        priors = list(ctx.store.priors(kind.name))
        result.source_count = len(priors)
        result.target_count = len(priors) if kind.name == "permissions" else len(target_keys)
        for prior in priors:
            present = prior.target_key is not None and (kind.name == "permissions" or prior.target_key in target_keys)
            if present and prior.status == "synced":
                result.in_sync += 1
                continue
            if present and prior.status == "partial":  # on the target without some entries: the reasons say which
                result.partial += 1
                continue
            if prior.status in ("drifted", "error", "blocked"):
                continue  # counted once, by its status (add_store_status), not also as missing
            result.missing_count += 1
            if len(result.missing) < SAMPLE:
                result.missing.append(prior.key)
        add_store_status(ctx, result)
    reasons = not_ready_reasons(results, missing="not on the target as last synced", listing="cannot list the target")
    return Report(time.time(), results, not reasons, reasons)


def last_sync_age(ctx: SyncContext) -> float | None:
    """Seconds since the oldest of the enabled kinds' last successful cycles: what a skipped source loses."""
    from dbsync.registry import kinds

    times = [ctx.store.last_success(k.name) for k in kinds() if ctx.settings.kind(k.name).enabled]
    known = [t for t in times if t]
    return time.time() - min(known) if known else None


# -- the runbook --------------------------------------------------------------------------------
@dataclass
class _Writes:
    """What a batch of pause writes did, per side: successes, and failures with their message."""

    done: dict[str, int] = field(default_factory=lambda: {"source": 0, "target": 0})
    failed: dict[str, list[tuple[_Pause, str]]] = field(default_factory=lambda: {"source": [], "target": []})


@dataclass
class _Pause:
    """One job to pause (source) or unpause (target), with what is recorded before the write."""

    job: JobView
    fields: list[str]
    row: str
    detail: dict[str, Any]


class Runbook:
    """The cutover of one pair: `plan()`, `run()` (resumable) and `rollback()` (idempotent)."""

    def __init__(
        self,
        ctx: SyncContext,
        skip_source: bool = False,
        cancel_active_runs: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        report_dir: Path | None = None,
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.skip_source = skip_source
        self.cancel_active_runs = cancel_active_runs
        self.force = force
        self.progress = progress
        self.clock = clock
        self.report_dir = report_dir or Path(ctx.settings.state_path).resolve().parent
        rate = ctx.settings.cutover.max_writes_per_second
        self.pacers = {"source": Pacer(rate), "target": Pacer(rate)}
        self.rows = self.store.cutover_steps()

    # -- records --------------------------------------------------------------------------------
    def _record(self, row: str, state: str, detail: dict[str, Any] | None = None) -> None:
        self.store.record_cutover_step(row, state, detail)
        self.rows[row] = {"state": state, "at": time.time(), "detail": detail}

    def state(self, step: str) -> str:
        return (self.rows.get(step) or {}).get("state") or "pending"

    def detail(self, step: str) -> dict[str, Any]:
        return (self.rows.get(step) or {}).get("detail") or {}

    def job_rows(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Per-job records ("source_job:<id>" → {state, detail}) keyed by job id."""
        return {k[len(prefix) :]: v for k, v in self.rows.items() if k.startswith(prefix)}

    def refuse_during_rollback(self) -> None:
        """A rollback that did not finish must be finished before anything else: both sides are half restored."""
        if self.state(RUN_ROW) == "rollback":
            raise CutoverError("a rollback of this cutover did not finish: run `dbsync cutover --rollback` again first")

    def next_step(self) -> str | None:
        if self.source_is_back():
            return "pause_source"
        return next((s for s in STEPS if self.state(s) not in DONE_STATES), None)

    def source_is_back(self) -> bool:
        """A --skip-source cutover is complete and this run may reach the source: its jobs must not start again."""
        return (
            not self.skip_source and self.state("pause_source") == "skipped" and self.state("mark_complete") == "done"
        )

    def _set_role(self, role: str) -> None:
        """The store's role, and the role markers on the workspaces (the target's first: it must not fail)."""
        self._write_markers(role)
        self.store.set_meta("role", role)
        metrics.CUTOVER_STATE.set(ROLE_STATES[role])

    def _write_markers(self, role: str) -> None:
        from dbsync.role import PRIMARY, PROMOTING, STANDBY, write_marker

        source_id = self.store.get_meta("source_workspace_id") or ""
        target_id = self.store.get_meta("target_workspace_id") or ""
        target_role, source_role = {
            "cutover-in-progress": (PROMOTING, None),
            "cutover-complete": (PRIMARY, STANDBY),
            "standby": (STANDBY, PRIMARY),
        }[role]
        by = "cutover --rollback" if self.state(RUN_ROW) == "rollback" else "cutover"
        write_marker(self.ctx.target, target_role, target_id, source_id, by)
        if source_role is not None and not self.skip_source:
            self._source_marker(source_role, source_id, target_id, by)

    def _source_marker(self, role: str, source_id: str, target_id: str, by: str) -> None:
        from dbsync.role import write_marker

        try:
            write_marker(self.ctx.source, role, source_id, target_id, by)
        except (DatabricksError, DbsyncError, OSError) as err:  # best effort: the target's marker is what protects
            log.warning("cannot write the role marker of the source: %s", _one_line(err))

    def _emit(self, event: str, name: str, **detail: Any) -> None:
        if self.progress is not None:
            self.progress(event, name, detail)

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run every step not done yet, in order; the saved report document at the end."""
        self.refuse_during_rollback()
        run = self.detail(RUN_ROW)
        self._record(
            RUN_ROW,
            "running",
            {
                "started_at": run.get("started_at") or time.time(),
                "skip_source": bool(run.get("skip_source")) or self.skip_source,
                "cancel_active_runs": bool(run.get("cancel_active_runs")) or self.cancel_active_runs,
            },
        )
        steps: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
            "final_sync": self._final_sync,
            "validate": self._validate,
            "pause_source": self._pause_source,
            "unpause_target": self._unpause_target,
            "mark_complete": self._mark_complete,
            "report": self._report,
        }
        if self.source_is_back():
            # Only the source is written: the new primary is left exactly as its team has it now.
            self._record("pause_source", "pending", {"late": True})
            self._record("report", "pending", None)
        for name in STEPS:
            if self.state(name) not in DONE_STATES:
                self._run_step(name, steps[name])
        self._record(RUN_ROW, "done", {**self.detail(RUN_ROW), "finished_at": time.time()})
        return self.saved_report()

    def _run_step(self, name: str, step: Callable[[], tuple[str, dict[str, Any]]]) -> None:
        calls = self._calls()
        started = self.clock()
        self._record(name, "running", {"started_at": time.time()})
        self._emit("step", name, state="running")
        try:
            state, detail = step()
        except BaseException as err:  # Ctrl-C included: the step shows failed, and a re-run resumes it
            detail = {"error": _one_line(err) or type(err).__name__}
            self._finish_step(name, "failed", detail, started, calls)
            raise
        self._finish_step(name, state, detail, started, calls)
        if state == "failed" and name == "validate":
            self._record("final_sync", "pending", None)  # the next attempt syncs again before validating
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
        self._record(name, state, detail)
        outcome = "error" if state == "failed" else "ok"
        self.ctx.event(None, None, "cutover", outcome, f"cutover {name}: {state} — {detail.get('summary', '')}")
        self._emit("step", name, state=state, seconds=detail["seconds"], summary=detail.get("summary", ""))

    def _calls(self) -> dict[str, int]:
        return {"source": self.ctx.source.total_calls(), "target": self.ctx.target.total_calls()}

    # -- 1. final sync --------------------------------------------------------------------------
    def _final_sync(self) -> tuple[str, dict[str, Any]]:
        if self.skip_source:
            age = last_sync_age(self.ctx)
            when = f"{age / 60:.0f} min ago" if age is not None else "never"
            return "skipped", {"summary": f"--skip-source: cutting over to the last sync ({when})", "age": age}
        from dbsync.engine import Engine

        reports = Engine(self.ctx).cycle()
        kinds = {r.kind: {**r.counts(), "blocked": r.blocked, "outcome": r.outcome} for r in reports}
        changed = sum(r.created + r.updated + r.deleted for r in reports)
        errors = sum(r.errors + r.blocked for r in reports)
        return "done", {"summary": f"{changed} change(s) replicated, {errors} failed or blocked", "kinds": kinds}

    # -- 2. validate ----------------------------------------------------------------------------
    def _validate(self) -> tuple[str, dict[str, Any]]:
        report = validate_from_store(self.ctx) if self.skip_source else validate(self.ctx)
        detail = {"ready": report.ready_for_cutover, "reasons": report.reasons}
        detail["mode"] = "store (the source was not contacted)" if self.skip_source else "live"
        if report.ready_for_cutover:
            return "done", {**detail, "summary": "ready for cutover"}
        if self.force:
            summary = f"NOT ready ({len(report.reasons)} reason(s)), continued with --force"
            return "done", {**detail, "forced": True, "summary": summary}
        return "failed", {**detail, "summary": f"not ready: {'; '.join(report.reasons[:3])}"}

    # -- 3. pause the source --------------------------------------------------------------------
    def source_changes(self, source_jobs: dict[str, JobView]) -> tuple[list[_Pause], dict[str, Any]]:
        """Source jobs to pause (each with its prior state) and the counts of the others."""
        recorded = self.job_rows(SOURCE_ROW)
        kind_settings = self.ctx.settings.kind("jobs")
        todo: list[_Pause] = []
        counts: dict[str, Any] = {"already_paused": 0, "no_trigger": 0, "excluded": 0, "settled": []}
        others: dict[str, dict[str, str]] = {}  # pause states of the jobs not recorded one by one
        for job in source_jobs.values():
            if not planner.selected(kind_settings, job.job_id):
                counts["excluded"] += 1
                continue
            live = job.states
            if not live:
                counts["no_trigger"] += 1
                continue
            row = recorded.get(job.job_id)
            unpaused = [f for f, s in live.items() if s == "UNPAUSED"]
            if not unpaused and row is None:
                counts["already_paused"] += 1
                others[job.job_id] = live
            elif not unpaused:
                if row["state"] == "pending":  # paused just before a crash, not recorded as done
                    counts["settled"].append(job.job_id)
            else:
                # A job recorded by an earlier attempt keeps that prior: its live state may be ours by now.
                prior = row["detail"]["prior"] if row else live
                todo.append(_Pause(job, unpaused, SOURCE_ROW + job.job_id, {"name": job.name, "prior": prior}))
        return todo, {**counts, "states": others}

    def _pause_source(self) -> tuple[str, dict[str, Any]]:
        if self.skip_source:
            summary = "--skip-source: source jobs were not paused (the source is unreachable)"
            return "skipped", {"summary": summary}
        late = self.store.role == "cutover-complete"  # the source came back after a --skip-source cutover
        if not late:
            self._set_role("cutover-in-progress")
        todo, counts = self.source_changes(list_jobs(self.ctx.source))
        self._settle(SOURCE_ROW, counts.pop("settled"), "paused")
        # Each target copy is unpaused as soon as its source job is recorded paused: the two workspaces
        # have their own rate limits, and a job never runs on both sides. unpause_target does the rest.
        follow = self._unpause_follower(list_jobs(self.ctx.target)) if todo and not late else None
        failed = [message for _, message in self._write_all("source", todo, "PAUSED", follow).failed["source"]]
        if late and not failed:  # the old primary answers again: its marker says it is a standby now
            from dbsync.role import STANDBY

            ids = (self.store.get_meta("source_workspace_id") or "", self.store.get_meta("target_workspace_id") or "")
            self._source_marker(STANDBY, *ids, "cutover")
        runs = self._active_runs()
        cancelled = self._cancel(runs) if self.cancel_active_runs else 0
        paused = sum(1 for r in self.job_rows(SOURCE_ROW).values() if r["state"] == "paused")
        unpaused = sum(1 for r in self.job_rows(TARGET_ROW).values() if r["state"] == "unpaused")
        summary = (
            f"{paused} job(s) paused (their {unpaused} target copies unpaused as each was), "
            f"{counts['already_paused']} already paused, {counts['no_trigger']} without schedule or trigger, "
            f"{counts['excluded']} excluded by kinds.jobs"
        )
        if runs:
            summary += (
                f"; {cancelled} of {len(runs)} active run(s) cancelled"
                if self.cancel_active_runs
                else (f"; {len(runs)} run(s) still active (--cancel-active-runs cancels them)")
            )
        detail = {**counts, "paused": paused, "active_runs": len(runs), "cancelled_runs": cancelled}
        if failed:
            return "failed", {**detail, "failed": failed[:SAMPLE], "summary": f"{len(failed)} job(s) not paused"}
        return "done", {**detail, "summary": summary}

    def _active_runs(self) -> list[tuple[int, int]]:
        """(run id, job id) of the source's active runs of selected jobs: one paged listing, not one per job."""
        kind_settings = self.ctx.settings.kind("jobs")
        try:
            runs = self.ctx.source.client.jobs.list_runs(active_only=True, limit=RUNS_PAGE)
            return [
                (r.run_id or 0, r.job_id or 0)
                for r in runs
                if r.job_id and planner.selected(kind_settings, str(r.job_id))
            ]
        except DatabricksError as err:
            raise CutoverError(f"cannot list the source's active runs: {_one_line(err)}") from None

    def _cancel(self, runs: list[tuple[int, int]]) -> int:
        def cancel(run: tuple[int, int]) -> None:
            self.pacers["source"].wait()
            self.ctx.source.client.jobs.cancel_run(run[0])  # returns a waiter; the run stops on its own

        errors = []
        with closing(self._parallel(runs, cancel)) as results:
            for run, error in results:
                if error is not None:
                    errors.append(f"run {run[0]}: {_one_line(error)}")
        if errors:
            raise CutoverError(f"{len(errors)} active run(s) could not be cancelled, e.g. {errors[0]}")
        return len(runs)

    # -- 4. unpause the target ------------------------------------------------------------------
    def wanted_states(self, prior: Prior, source_live: dict[str, JobView] | None = None) -> dict[str, str]:
        """The pause state a target job should take: its source job's state when the source was paused.

        After pause_source that is the state it recorded (per job, or for the jobs it left alone); before
        it (a plan) the live source; with the source skipped, the state the last sync kept in the store.
        """
        if self.state("pause_source") == "done":
            row = self.job_rows(SOURCE_ROW).get(prior.key)
            if row is not None:
                return dict(row["detail"]["prior"])
            return dict(self.detail("pause_source").get("states", {}).get(prior.key, {}))
        if source_live is not None:
            job = source_live.get(prior.key)
            return job.states if job else {}
        return dict(prior.source_meta.get("pause") or {})

    def target_changes(
        self, target_jobs: dict[str, JobView], source_live: dict[str, JobView] | None = None
    ) -> tuple[list[_Pause], dict[str, Any]]:
        """Target jobs to unpause: exactly the replicated ones whose source job was unpaused."""
        recorded = self.job_rows(TARGET_ROW)
        todo: list[_Pause] = []
        counts: dict[str, Any] = {"stay_paused": 0, "already_unpaused": 0, "settled": []}
        counts.update(missing=[], not_ours=[], mismatch=[])
        for prior in self.store.priors("jobs"):
            item = self._target_item(prior, target_jobs, self.wanted_states(prior, source_live), recorded, counts)
            if item is not None:
                todo.append(item)
        return todo, counts

    def _target_item(
        self,
        prior: Prior,
        target_jobs: dict[str, JobView],
        wanted: dict[str, str],
        recorded: dict[str, dict[str, Any]],
        counts: dict[str, Any],
    ) -> _Pause | None:
        """The unpause one replicated job needs on the target, or None (counted in `counts`)."""
        if prior.target_key is None:
            return None
        job = target_jobs.get(prior.target_key)
        if job is None:
            counts["missing"].append(prior.key)
            return None
        if job.source_tag != prior.key:  # never touch a job dbsync did not create
            counts["not_ours"].append(job.job_id)
            return None
        fields = [f for f, s in wanted.items() if s == "UNPAUSED"]
        if not fields:
            counts["stay_paused"] += 1
            return None
        if any(f not in job.triggers for f in fields):
            counts["mismatch"].append(job.job_id)  # the target's trigger differs: not in sync
            fields = [f for f in fields if f in job.triggers]
        todo_fields = [f for f in fields if job.states[f] == "PAUSED"]
        row = recorded.get(job.job_id)
        if not todo_fields:
            if row is None:
                counts["already_unpaused"] += 1
            elif row["state"] == "pending":  # unpaused just before a crash, not recorded as done
                counts["settled"].append(job.job_id)
            return None
        detail = row["detail"] if row else {"name": job.name, "source_key": prior.key, "fields": todo_fields}
        return _Pause(job, todo_fields, TARGET_ROW + job.job_id, detail)

    def _unpause_target(self) -> tuple[str, dict[str, Any]]:
        todo, counts = self.target_changes(list_jobs(self.ctx.target))
        self._settle(TARGET_ROW, counts.pop("settled"), "unpaused")
        failed = [message for _, message in self._write_all("target", todo, "UNPAUSED").failed["target"]]
        unpaused = sum(1 for r in self.job_rows(TARGET_ROW).values() if r["state"] == "unpaused")
        summary = f"{unpaused} job(s) unpaused, {counts['stay_paused']} left paused as on the source"
        for key, what in (
            ("missing", "missing on the target"),
            ("not_ours", "not created by dbsync (left alone)"),
            ("mismatch", "with another trigger type than the source"),
        ):
            if counts[key]:
                summary += f", {len(counts[key])} {what}"
            counts[key] = counts[key][:SAMPLE]
        detail = {**counts, "unpaused": unpaused}
        if failed:
            return "failed", {**detail, "failed": failed[:SAMPLE], "summary": f"{len(failed)} job(s) not unpaused"}
        return "done", {**detail, "summary": summary}

    # -- 5. mark complete / 6. report -----------------------------------------------------------
    def _mark_complete(self) -> tuple[str, dict[str, Any]]:
        self._set_role("cutover-complete")
        return "done", {"summary": "store role cutover-complete: `dbsync serve` no longer writes to the new primary"}

    def _report(self) -> tuple[str, dict[str, Any]]:
        source_jobs = None if self.skip_source else list_jobs(self.ctx.source)
        document = self.report_document(source_jobs, list_jobs(self.ctx.target))
        self.report_dir.mkdir(parents=True, exist_ok=True)
        path = self.report_dir / time.strftime("cutover-report-%Y%m%dT%H%M%SZ.json", time.gmtime())
        _write_private(path, json.dumps(document, indent=2, sort_keys=True))
        return "done", {"summary": f"saved to {path}", "path": str(path)}

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
            "jobs": self._job_entries(source_jobs, target_jobs),
        }

    def step_rows(self) -> list[dict[str, Any]]:
        """Each step's state, seconds, API calls per side and summary, as recorded."""
        rows = []
        for name in STEPS:
            detail = self.detail(name)
            state = self.state(name)
            rows.append(
                {
                    "step": name,
                    "state": "done" if name == "report" and state == "running" else state,  # the one writing it
                    "seconds": detail.get("seconds"),
                    "api_calls": detail.get("api_calls"),
                    "summary": detail.get("summary"),
                }
            )
        return rows

    def _job_entries(self, source_jobs: dict[str, JobView] | None, target_jobs: dict[str, JobView]) -> list[dict]:
        unpaused = self.job_rows(TARGET_ROW)
        entries = []
        replicated = set()
        for prior in self.store.priors("jobs"):
            replicated.add(prior.key)
            source = source_jobs.get(prior.key) if source_jobs is not None else None
            target = target_jobs.get(prior.target_key or "")
            target_before = None
            if target is not None:
                fields = (unpaused.get(target.job_id) or {}).get("detail", {}).get("fields", [])
                target_before = {**target.states, **dict.fromkeys(fields, "PAUSED")}
            entries.append(
                {
                    "name": (source or target).name if (source or target) else prior.key,
                    "source_job_id": prior.key,
                    "target_job_id": prior.target_key,
                    "source_before": self.wanted_states(prior),
                    "source_after": source.states if source else None,
                    "target_before": target_before,
                    "target_after": target.states if target else None,
                }
            )
        for job in (source_jobs or {}).values():
            if job.job_id not in replicated:
                row = self.job_rows(SOURCE_ROW).get(job.job_id)
                before = row["detail"]["prior"] if row else job.states
                entries.append(
                    {
                        "name": job.name,
                        "source_job_id": job.job_id,
                        "target_job_id": None,
                        "source_before": before,
                        "source_after": job.states,
                        "target_before": None,
                        "target_after": None,
                        "note": "not replicated",
                    }
                )
        return sorted(entries, key=lambda e: (e["name"], e["source_job_id"]))

    def saved_report(self) -> dict[str, Any]:
        """The report the last run saved (rebuilt from the live workspaces if the file is gone)."""
        path = self.detail("report").get("path")
        if path and Path(path).exists():
            document = json.loads(Path(path).read_text())
            document.update(path=path, steps=self.step_rows())  # the report step's own time is known now
            return document
        source_jobs = None if self.skip_source else list_jobs(self.ctx.source)
        return self.report_document(source_jobs, list_jobs(self.ctx.target))

    # -- per-job writes -------------------------------------------------------------------------
    def _unpause_follower(self, target_jobs: dict[str, JobView]) -> Callable[[_Pause], _Pause | None]:
        """For a source job just paused: the unpause its target copy needs (None when it needs none)."""
        recorded = self.job_rows(TARGET_ROW)
        counts: dict[str, Any] = {"stay_paused": 0, "already_unpaused": 0, "settled": []}
        counts.update(missing=[], not_ours=[], mismatch=[])  # step 4 counts these for the report

        def follow(paused: _Pause) -> _Pause | None:
            prior = self.store.prior("jobs", paused.job.job_id)
            if prior is None:
                return None  # not replicated
            return self._target_item(prior, target_jobs, paused.detail["prior"], recorded, counts)

        return follow

    def _write_all(
        self,
        side: str,
        todo: list[_Pause],
        status: str,
        follow: Callable[[_Pause], _Pause | None] | None = None,
        record: bool = True,
    ) -> _Writes:
        """Write each job's new pause status in parallel, paced, recording each job before and after.

        With `follow`, each success may start a write on the other side (a target unpause after its
        source pause), recorded the same way. Without `record` (a rollback) nothing is recorded.
        """
        other = "target" if side == "source" else "source"
        statuses = {side: status, other: "UNPAUSED" if status == "PAUSED" else "PAUSED"}
        writes = _Writes()
        pools = {
            s: ThreadPoolExecutor(self.ctx.settings.concurrency, thread_name_prefix=f"cutover-{s}") for s in statuses
        }
        inflight: dict[Future[None], tuple[str, _Pause]] = {}
        queue = iter(todo)

        def submit(on: str, item: _Pause) -> None:
            if record and item.row not in self.rows:
                self._record(item.row, "pending", item.detail)  # the prior state is kept before the write
            ws, pacer = getattr(self.ctx, on), self.pacers[on]
            inflight[pools[on].submit(set_pause, ws, pacer, item.job, item.fields, statuses[on])] = (on, item)

        def refill() -> None:
            while sum(1 for s, _ in inflight.values() if s == side) < self.ctx.settings.concurrency * 2:
                item = next(queue, None)
                if item is None:
                    return
                submit(side, item)

        try:
            refill()
            while inflight:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    on, item = inflight.pop(future)
                    error = future.exception()
                    if error is not None:
                        writes.failed[on].append(
                            (item, f"{on} job {item.job.job_id} ({item.job.name}): {_one_line(error)}")
                        )
                        continue
                    writes.done[on] += 1
                    state = statuses[on].lower()
                    if record:
                        self._record(item.row, state, item.detail)
                    self._emit("job", item.row, state=state)
                    then = follow(item) if follow is not None and on == side else None
                    if then is not None:
                        submit(other, then)
                refill()
        finally:
            for pool in pools.values():
                pool.shutdown(wait=True, cancel_futures=True)  # an interrupt stops the queue, not a write in flight
        return writes

    def _settle(self, prefix: str, job_ids: list[str], done_state: str) -> None:
        """Jobs recorded before a write that reached the service, the process dying before it said so."""
        for job_id in job_ids:
            self._record(prefix + job_id, done_state, self.rows[prefix + job_id]["detail"])

    def _parallel(self, items: Iterable[T], call: Callable[[T], None]) -> Iterator[tuple[T, BaseException | None]]:
        """call(item) on a bounded pool; yields (item, error) in the calling thread as each finishes."""
        workers = self.ctx.settings.concurrency
        pool = ThreadPoolExecutor(workers, thread_name_prefix="cutover")
        inflight: dict[Future[None], T] = {}
        try:
            for item in items:
                inflight[pool.submit(call, item)] = item
                if len(inflight) >= workers * 2:
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield inflight.pop(future), future.exception()
            for future in list(inflight):
                future.exception()  # waits
                yield inflight.pop(future), future.exception()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # an interrupt stops the queue, not a write in flight

    # -- plan -----------------------------------------------------------------------------------
    def plan(self, with_validation: bool = False) -> list[str]:
        """What `run()` would do from where the record stands, as lines; writes nothing."""
        ctx = self.ctx
        lines = [
            f"cutover {ctx.source.host} (workspace {self.store.get_meta('source_workspace_id')}) → "
            f"{ctx.target.host} (workspace {self.store.get_meta('target_workspace_id')}); store role {self.store.role}"
        ]
        if self.skip_source:
            age = last_sync_age(ctx)
            when = f"{age / 60:.0f} min ago" if age is not None else "never"
            lines.append(
                f"--skip-source: the source is not contacted; the target gets the state of the last sync ({when})"
            )
        source_jobs = None if self.skip_source else list_jobs(ctx.source)
        target_jobs = list_jobs(ctx.target)
        described = {
            "final_sync": "replicate every enabled kind once more"
            if not self.skip_source
            else "skipped (--skip-source)",
            "validate": self._plan_validation(with_validation),
            "pause_source": self._plan_source(source_jobs),
            "unpause_target": self._plan_target(target_jobs, source_jobs),
            "mark_complete": "store role → cutover-complete: `dbsync serve` stops replicating into the new primary",
            "report": f"each job's state before/after on both sides, saved as JSON in {self.report_dir}",
        }
        for number, name in enumerate(STEPS, 1):
            state = self.state(name)
            mark = f"[{state}]" if state != "pending" else ""
            lines.append(f"  {number}. {name:<15}{mark:<10} {described[name]}")
        return lines

    def _plan_validation(self, with_validation: bool) -> str:
        if self.state("validate") in DONE_STATES:
            return str(self.detail("validate").get("summary"))
        text = "refuse unless ready for cutover (or --force)"
        if not with_validation:
            return text
        report = validate_from_store(self.ctx) if self.skip_source else validate(self.ctx)
        if report.ready_for_cutover:
            return f"{text}; now: ready"
        return f"{text}; now: NOT ready: " + "; ".join(report.reasons[:5])

    def _plan_source(self, source_jobs: dict[str, JobView] | None) -> str:
        if source_jobs is None:
            return "skipped (--skip-source): source jobs stay as they are"
        todo, counts = self.source_changes(source_jobs)
        by_field: dict[str, int] = {}
        for item in todo:
            for f in item.fields:
                by_field[f] = by_field.get(f, 0) + 1
        fields = ", ".join(f"{n} {f}" for f, n in sorted(by_field.items())) or "none"
        text = (
            f"pause {len(todo)} source job(s) ({fields}); {counts['already_paused']} already paused, "
            f"{counts['no_trigger']} without trigger, {counts['excluded']} excluded"
        )
        if self.cancel_active_runs:
            text += "; cancel their active runs"
        return text

    def _plan_target(self, target_jobs: dict[str, JobView], source_jobs: dict[str, JobView] | None) -> str:
        todo, counts = self.target_changes(target_jobs, source_jobs)
        text = f"unpause {len(todo)} target job(s) unpaused on the source; {counts['stay_paused']} stay paused"
        if counts["missing"]:
            text += f"; {len(counts['missing'])} replicated job(s) missing on the target"
        return text

    # -- rollback -------------------------------------------------------------------------------
    def rollback(self) -> dict[str, Any]:
        """Re-pause the target jobs the cutover unpaused, restore the source jobs it paused, back to standby.

        Per job, the target copy is paused before its source job may run again, and a source job whose
        target copy runs (unpaused outside dbsync) is not restored. Idempotent: each job is compared with
        its recorded state, and the record is cleared only when everything is back.
        """
        source_rows, target_rows = self.job_rows(SOURCE_ROW), self.job_rows(TARGET_ROW)
        result: dict[str, Any] = {"target_repaused": 0, "source_restored": 0, "missing": []}
        if not self.rows and self.store.role == "standby":
            return {**result, "nothing_to_do": True}
        if source_rows and self.skip_source:
            raise CutoverError(
                f"{len(source_rows)} source job(s) were paused by the cutover and must be restored: the rollback "
                "needs the source; run it again without --skip-source once the source answers"
            )
        self._record(RUN_ROW, "rollback", {**self.detail(RUN_ROW), "rollback_at": time.time()})
        self._set_role("cutover-in-progress")
        target_live = list_jobs(self.ctx.target)
        source_live = list_jobs(self.ctx.source) if source_rows else {}
        repause = []
        for job_id, row in target_rows.items():
            job = target_live.get(job_id)
            if job is None:
                result["missing"].append(f"target job {job_id}")
                continue
            fields = [f for f in row["detail"]["fields"] if job.states.get(f) == "UNPAUSED"]
            if fields:
                repause.append(_Pause(job, fields, TARGET_ROW + job_id, row["detail"]))
        restore = _Restorer(self, source_rows, source_live, target_live, result)
        writes = self._write_all("target", repause, "PAUSED", follow=restore.after_repause, record=False)
        blocked = {item.detail.get("source_key") for item, _ in writes.failed["target"]}
        rest = [i for i in (restore.item(k) for k in source_rows if k not in restore.followed | blocked) if i]
        more = self._write_all("source", rest, "UNPAUSED", record=False)
        result["target_repaused"] = writes.done["target"]
        result["source_restored"] = writes.done["source"] + more.done["source"]
        failures = [m for w in (writes, more) for side in ("source", "target") for _, m in w.failed[side]]
        failures += restore.kept
        if failures:
            raise CutoverError(
                f"rollback: {len(failures)} job(s) not restored, e.g. {failures[0]}. Fix that, then run "
                "`dbsync cutover --rollback` again."
            )
        self.store.clear_cutover()
        self.rows = {}
        self._set_role("standby")
        self.store.set_meta("rolled_back_at", str(time.time()))  # the report page says "rolled back" for a day
        self.ctx.event(None, None, "cutover", "ok", "cutover rolled back: the target is a standby again")
        return result


class _Restorer:
    """Which source jobs a rollback restores, and when: never while their target copy runs."""

    def __init__(
        self,
        runbook: Runbook,
        source_rows: dict[str, dict[str, Any]],
        source_live: dict[str, JobView],
        target_live: dict[str, JobView],
        result: dict[str, Any],
    ) -> None:
        self.runbook = runbook
        self.rows = source_rows
        self.source_live = source_live
        self.target_live = target_live
        self.result = result
        self.followed: set[str] = set()
        self.kept: list[str] = []

    def after_repause(self, target: _Pause) -> _Pause | None:
        """The target copy is paused again: its source job may run again."""
        source_key = target.detail.get("source_key") or ""
        self.followed.add(source_key)
        return self.item(source_key, target_paused=True)

    def item(self, source_key: str, target_paused: bool = False) -> _Pause | None:
        row = self.rows.get(source_key)
        if row is None:
            return None
        job = self.source_live.get(source_key)
        if job is None:
            self.result["missing"].append(f"source job {source_key}")
            return None
        fields = [f for f, s in row["detail"]["prior"].items() if s == "UNPAUSED" and job.states.get(f) == "PAUSED"]
        if not fields:
            return None
        if not target_paused and self._target_runs(source_key):
            self.kept.append(f"source job {source_key} ({job.name}) left paused: its target copy runs")
            return None
        return _Pause(job, fields, SOURCE_ROW + source_key, row["detail"])

    def _target_runs(self, source_key: str) -> bool:
        prior = self.runbook.store.prior("jobs", source_key)
        copy = self.target_live.get(prior.target_key or "") if prior else None
        return copy is not None and "UNPAUSED" in copy.states.values()


def _write_private(path: Path, text: str) -> None:
    """Write a report readable by its owner only (0600): it names every job and workspace of the pair."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


# -- text output ----------------------------------------------------------------------------------
def states_text(states: dict[str, str] | None) -> str:
    """{"schedule": "UNPAUSED"} → "schedule UNPAUSED"; no trigger → "-"; unknown → "?"."""
    if states is None:
        return "?"
    return ", ".join(f"{f} {s}" for f, s in sorted(states.items())) or "-"


def _change(before: dict[str, str] | None, after: dict[str, str] | None) -> str:
    if before == after:
        return states_text(after)
    return f"{states_text(before)} → {states_text(after)}"


def format_report(document: dict[str, Any]) -> str:
    """The report as text: the steps with time and API calls, then one line per job."""
    lines = [
        f"cutover {document['source']['host']} → {document['target']['host']} (store role {document['role']})",
        "",
        f"{'step':<16}{'state':<9}{'seconds':>9}{'source calls':>14}{'target calls':>14}   summary",
    ]
    for step in document["steps"]:
        calls = step.get("api_calls") or {}
        seconds = f"{step['seconds']:.1f}" if step.get("seconds") is not None else "-"
        lines.append(
            f"{step['step']:<16}{step['state']:<9}{seconds:>9}{calls.get('source', '-'):>14}"
            f"{calls.get('target', '-'):>14}   {step.get('summary') or ''}"
        )
    lines += ["", f"{'job':<32}{'source id':>18}  {'source':<40}{'target id':>18}  target"]
    for job in document["jobs"]:
        source = _change(job["source_before"], job["source_after"])
        target = job.get("note") or _change(job["target_before"], job["target_after"])
        lines.append(
            f"{job['name'][:31]:<32}{job['source_job_id']:>18}  {source:<40}{job['target_job_id'] or '-':>18}  {target}"
        )
    if document.get("path"):
        lines += ["", f"saved to {document['path']}"]
    return "\n".join(lines)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    message = text[0] if text else type(err).__name__
    return message.split(" Config: ")[0][:300]
