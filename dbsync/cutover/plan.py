"""Pause and unpause planning, pure like dbsync/planner.py: given listings and the record, return the writes.

No I/O here: the runbook lists the jobs of both sides, reads the store and makes the writes; these
functions only decide which job gets which pause status, and what a rollback puts back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dbsync import planner
from dbsync.config import KindSettings
from dbsync.cutover.common import SOURCE_ROW, TARGET_ROW, JobView, Pause, Rows, job_rows, step_detail, step_state
from dbsync.model import Prior


# -- pause_source ---------------------------------------------------------------------------------
def source_changes(
    source_jobs: dict[str, JobView], rows: Rows, kind_settings: KindSettings
) -> tuple[list[Pause], dict[str, Any]]:
    """Source jobs to pause (each with its prior state) and the counts of the others."""
    recorded = job_rows(rows, SOURCE_ROW)
    todo: list[Pause] = []
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
            todo.append(Pause(job, unpaused, SOURCE_ROW + job.job_id, {"name": job.name, "prior": prior}))
    return todo, {**counts, "states": others}


# -- unpause_target -------------------------------------------------------------------------------
def wanted_states(rows: Rows, prior: Prior, source_live: dict[str, JobView] | None = None) -> dict[str, str]:
    """The pause state a target job should take: its source job's state when the source was paused.

    After pause_source that is the state it recorded (per job, or for the jobs it left alone); before
    it (a plan) the live source; with the source skipped, the state the last sync kept in the store.
    """
    if step_state(rows, "pause_source") == "done":
        row = job_rows(rows, SOURCE_ROW).get(prior.key)
        if row is not None:
            return dict(row["detail"]["prior"])
        return dict(step_detail(rows, "pause_source").get("states", {}).get(prior.key, {}))
    if source_live is not None:
        job = source_live.get(prior.key)
        return job.states if job else {}
    return dict(prior.source_meta.get("pause") or {})


def target_counts() -> dict[str, Any]:
    """The counts target_item keeps: jobs left paused, already unpaused, settled, missing, not ours, mismatched."""
    counts: dict[str, Any] = {"stay_paused": 0, "already_unpaused": 0, "settled": []}
    counts.update(missing=[], not_ours=[], mismatch=[])
    return counts


def target_changes(
    rows: Rows,
    priors: Iterable[Prior],
    target_jobs: dict[str, JobView],
    source_live: dict[str, JobView] | None = None,
) -> tuple[list[Pause], dict[str, Any]]:
    """Target jobs to unpause: exactly the replicated ones whose source job was unpaused."""
    recorded = job_rows(rows, TARGET_ROW)
    todo: list[Pause] = []
    counts = target_counts()
    for prior in priors:
        item = target_item(prior, target_jobs, wanted_states(rows, prior, source_live), recorded, counts)
        if item is not None:
            todo.append(item)
    return todo, counts


def target_item(
    prior: Prior,
    target_jobs: dict[str, JobView],
    wanted: dict[str, str],
    recorded: Rows,
    counts: dict[str, Any],
) -> Pause | None:
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
    return Pause(job, todo_fields, TARGET_ROW + job.job_id, detail)


def unpause_follower(
    rows: Rows, target_jobs: dict[str, JobView], prior_of: Callable[[str], Prior | None]
) -> Callable[[Pause], Pause | None]:
    """For a source job just paused: the unpause its target copy needs (None when it needs none)."""
    recorded = job_rows(rows, TARGET_ROW)
    counts = target_counts()  # step 4 counts these for the report

    def follow(paused: Pause) -> Pause | None:
        prior = prior_of(paused.job.job_id)
        if prior is None:
            return None  # not replicated
        return target_item(prior, target_jobs, paused.detail["prior"], recorded, counts)

    return follow


# -- rollback -------------------------------------------------------------------------------------
def repause_items(target_rows: Rows, target_live: dict[str, JobView], missing: list[str]) -> list[Pause]:
    """The target jobs the cutover unpaused that still run: each trigger it unpaused is paused again."""
    repause = []
    for job_id, row in target_rows.items():
        job = target_live.get(job_id)
        if job is None:
            missing.append(f"target job {job_id}")
            continue
        fields = [f for f in row["detail"]["fields"] if job.states.get(f) == "UNPAUSED"]
        if fields:
            repause.append(Pause(job, fields, TARGET_ROW + job_id, row["detail"]))
    return repause


class Restorer:
    """Which source jobs a rollback restores, and when: never while their target copy runs."""

    def __init__(
        self,
        source_rows: Rows,
        source_live: dict[str, JobView],
        target_live: dict[str, JobView],
        target_key_of: Callable[[str], str | None],
        missing: list[str],
    ) -> None:
        self.rows = source_rows
        self.source_live = source_live
        self.target_live = target_live
        self.target_key_of = target_key_of  # source job id → its replicated copy's id, as the store knows it
        self.missing = missing
        self.followed: set[str] = set()
        self.kept: list[str] = []

    def after_repause(self, target: Pause) -> Pause | None:
        """The target copy is paused again: its source job may run again."""
        source_key = target.detail.get("source_key") or ""
        self.followed.add(source_key)
        return self.item(source_key, target_paused=True)

    def remaining(self, blocked: set[str]) -> list[Pause]:
        """The source jobs not restored after a re-pause, except those whose target copy could not be paused."""
        keys = [k for k in self.rows if k not in self.followed | blocked]
        return [i for i in (self.item(k) for k in keys) if i]

    def item(self, source_key: str, target_paused: bool = False) -> Pause | None:
        """The restore one recorded source job needs (its prior unpaused triggers), or None."""
        row = self.rows.get(source_key)
        if row is None:
            return None
        job = self.source_live.get(source_key)
        if job is None:
            self.missing.append(f"source job {source_key}")
            return None
        fields = [f for f, s in row["detail"]["prior"].items() if s == "UNPAUSED" and job.states.get(f) == "PAUSED"]
        if not fields:
            return None
        if not target_paused and self._target_runs(source_key):
            self.kept.append(f"source job {source_key} ({job.name}) left paused: its target copy runs")
            return None
        return Pause(job, fields, SOURCE_ROW + source_key, row["detail"])

    def _target_runs(self, source_key: str) -> bool:
        copy = self.target_live.get(self.target_key_of(source_key) or "")
        return copy is not None and "UNPAUSED" in copy.states.values()
