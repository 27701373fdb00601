"""What the cutover prints and saves: the plan's lines, the report document and its text. No workspace I/O."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dbsync.cutover.common import (
    JOBS_DISABLED,
    SOURCE_ROW,
    STEPS,
    TARGET_ROW,
    JobView,
    Pause,
    Rows,
    job_rows,
    step_detail,
    step_state,
)
from dbsync.cutover.late_jobs import HELD_NOTE, LATE_PAUSED_NOTE, held_keys, late_paused_keys
from dbsync.cutover.plan import wanted_states
from dbsync.model import Prior
from dbsync.report import Report


# -- the plan -------------------------------------------------------------------------------------
def age_text(age: float | None) -> str:
    """Seconds since the last sync as "12 min ago", or "never"."""
    return f"{age / 60:.0f} min ago" if age is not None else "never"


def step_lines(described: dict[str, str], rows: Rows) -> list[str]:
    """One numbered line per step: its name, its recorded state unless pending, what it does."""
    lines = []
    for number, name in enumerate(STEPS, 1):
        state = step_state(rows, name)
        mark = f"[{state}]" if state != "pending" else ""
        lines.append(f"  {number}. {name:<15}{mark:<10} {described[name]}")
    return lines


def validation_text(report: Report | None) -> str:
    """What validate does, and (given a report of the state now) whether it would pass."""
    text = "refuse unless ready for cutover (or --force)"
    if report is None:
        return text
    if report.ready_for_cutover:
        return f"{text}; now: ready"
    return f"{text}; now: NOT ready: " + "; ".join(report.reasons[:5])


def source_plan_text(
    todo: list[Pause] | None,
    counts: dict[str, Any],
    cancel_active_runs: bool,
    late_jobs: bool = True,
    jobs_enabled: bool = True,
) -> str:
    """What pause_source would do: jobs to pause by trigger field, and the others counted; with `late_jobs`, that it
    replicates the jobs changed after the final sync (not when the old primary came back after a complete cutover,
    nor with the jobs kind disabled: the source's jobs are paused all the same, the old primary must not run them)."""
    if todo is None:
        return "skipped (--skip-source): source jobs stay as they are"
    by_field: dict[str, int] = {}
    for item in todo:
        for f in item.fields:
            by_field[f] = by_field.get(f, 0) + 1
    fields = ", ".join(f"{n} {f}" for f, n in sorted(by_field.items())) or "none"
    text = (
        f"pause {len(todo)} source job(s) ({fields}); {counts['already_paused']} already paused, "
        f"{counts['no_trigger']} without trigger, {counts['excluded']} excluded"
    )
    if cancel_active_runs:
        text += "; cancel their active runs"
    if late_jobs and not jobs_enabled:
        text += f"; no late job replicated: {JOBS_DISABLED}"
    elif late_jobs:  # which jobs those are is known only once step 1 has run and step 3 has paused the source
        text += (
            "; then replicate the jobs created or edited on the source after the final sync, paused: step 4 unpauses "
            "those this step paused, those paused there (or without a trigger) stay paused"
        )
    return text


def target_plan_text(
    todo: list[Pause], counts: dict[str, Any], held: list[str] | None = None, jobs_enabled: bool = True
) -> str:
    """What unpause_target would do: jobs to unpause, jobs left paused, replicated jobs missing.

    `held`: the late jobs step 3 held, each named with why (dbsync/cutover/late_jobs.py): not in `todo`."""
    text = f"unpause {len(todo)} target job(s) unpaused on the source; {counts['stay_paused']} stay paused"
    if not jobs_enabled:
        text += f"; {JOBS_DISABLED}: no target job is unpaused, the target's jobs are not dbsync's"
    if held:
        text += f"; {len(held)} late job(s) stay paused (held: their ACL is not copied), e.g. {held[0]}"
    if counts["missing"]:
        text += f"; {len(counts['missing'])} replicated job(s) missing on the target"
    return text


# -- the report -----------------------------------------------------------------------------------
def step_rows(rows: Rows) -> list[dict[str, Any]]:
    """Each step's state, seconds, API calls per side and summary, as recorded."""
    out = []
    for name in STEPS:
        detail = step_detail(rows, name)
        state = step_state(rows, name)
        out.append(
            {
                "step": name,
                "state": "done" if name == "report" and state == "running" else state,  # the one writing it
                "seconds": detail.get("seconds"),
                "api_calls": detail.get("api_calls"),
                "summary": detail.get("summary"),
            }
        )
    return out


def job_entries(
    rows: Rows, priors: Iterable[Prior], source_jobs: dict[str, JobView] | None, target_jobs: dict[str, JobView]
) -> list[dict[str, Any]]:
    """Every replicated job, then every source job not replicated: pause states before and after, per side."""
    unpaused = job_rows(rows, TARGET_ROW)
    held = held_keys(rows)  # late jobs step 4 left paused: their ACL is not copied
    late_paused = late_paused_keys(rows)  # late jobs step 3 wrote that stay paused, as on the source
    entries = []
    replicated = set()
    for prior in priors:
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
                "source_before": wanted_states(rows, prior),
                "source_after": source.states if source else None,
                "target_before": target_before,
                "target_after": target.states if target else None,
                **({"note": HELD_NOTE} if prior.key in held else {}),
                **({"note": LATE_PAUSED_NOTE} if prior.key in late_paused and prior.key not in held else {}),
            }
        )
    paused = job_rows(rows, SOURCE_ROW)
    for job in (source_jobs or {}).values():
        if job.job_id not in replicated:
            row = paused.get(job.job_id)
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


def write_private(path: Path, text: str) -> None:
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
