"""/report.html and `dbsync validate --format html`: the page an on-call engineer reads, at each moment.

Rendered from dbsync/templates/ with autoescaping; no JavaScript. The moment decides the headline and
its class (`state-<name>` on <body>, what the tests read): ready / not-ready (a standby, each problem
with its fix), source-outage (what the standby holds and how stale), cutover (in progress or stopped),
primary (after a cutover, with its report) and rolled-back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from jinja2 import Environment, PackageLoader, select_autoescape

from dbsync.context import probe_workspace
from dbsync.registry import declaration
from dbsync.report import KindValidation, Report

ROLLED_BACK_SHOWN_SECONDS = 24 * 3600  # after that a rolled-back standby is just a standby
CUTOVER_STEPS = ("final_sync", "validate", "pause_source", "unpause_target", "mark_complete", "report")

# {source key: (name, target key)} for keys of a kind: the store's names and id map (Store.labels).
Labels = Callable[[str, list[str]], dict[str, tuple[str | None, str | None]]]

_ENV = Environment(
    loader=PackageLoader("dbsync", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def object_url(kind: str, host: str, key: str | None) -> str | None:
    """The workspace UI address of one object of a kind on `host` (None when unknown)."""
    template = declaration(kind).link  # the kind's page in the workspace UI
    if not template or not host or not key:
        return None
    return template.format(host=host.rstrip("/"), key=quote(key, safe="/"))


@dataclass
class Item:
    """One object on the page: its name, its key, a link to it on the side where the problem is."""

    label: str
    key: str
    url: str | None = None
    note: str = ""


@dataclass
class Problem:
    kind: str
    title: str
    count: int
    fix: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Page:
    state: str
    headline: str
    source_host: str
    target_host: str
    generated: str
    summary: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # shown, not part of readiness (extra objects)
    manual: list[dict[str, str]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    report_path: str = ""


# -- the moments --------------------------------------------------------------------------------
def standby_page(
    report: Report,
    source_host: str = "",
    target_host: str = "",
    labels: Labels | None = None,
    last_success: Callable[[str], float | None] | None = None,
    rolled_back_at: float | None = None,
) -> Page:
    """A standby: ready for cutover, or not with each problem and its fix (after a rollback, says so)."""
    problems, notes = _problems(report.kinds, source_host, target_host, labels or _no_labels)
    page = Page(
        "ready" if report.ready_for_cutover else "not-ready",
        "Ready for cutover." if report.ready_for_cutover else "Not ready for cutover.",
        source_host,
        target_host,
        _when(report.generated_at),
        rows=_rows(report.kinds, last_success, report.generated_at),
        problems=problems,
        notes=notes,
        manual=report.manual_actions,
    )
    unchecked = [k.kind for k in report.kinds if k.unchecked]
    by_store = [k.kind for k in report.kinds if not k.content_checked]
    if report.ready_for_cutover:
        page.summary.append(_ready_summary(report, by_store))
        if by_store:  # the daemon's page does not read every ACL on each load: say what it took on trust
            page.headline = "Ready for cutover, as last verified."
    if unchecked:
        page.summary.append(f'Not checked: {", ".join(unchecked)} (see "Needs manual action" for why and the fix).')
    if not report.ready_for_cutover:
        page.summary.append(f"{_objects(problems)} to fix before a cutover; each has its fix below.")
        page.summary.extend(r for r in report.reasons if r.startswith("store role"))
    if rolled_back_at is not None:
        page.state = "rolled-back"
        page.summary.insert(0, page.headline + " " + page.summary.pop(0))
        page.headline = f"Rolled back {_ago(report.generated_at - rolled_back_at)} ago: the target is a standby again."
    return page


def _ready_summary(report: Report, by_store: list[str]) -> str:
    """What "ready" rests on: every kind compared live, or some (objects without a version, such as ACLs) taken
    from the store as last verified; `dbsync validate` reads those too. The page once said "compared live"
    while a source ACL edit the daemon had not read yet was pending in `validate`."""
    held = (
        "The target holds everything the source has"
        if not report.manual_actions
        else "The target holds everything dbsync replicates"
    )
    if by_store:
        compared = (
            f"kinds compared live, but for {', '.join(by_store)}: compared with the store as each object was last "
            "verified (see the table's last verified); run `dbsync validate` to read them live before a cutover"
        )
    else:
        compared = "kinds compared live, listed below"
    manual = f"; {len(report.manual_actions)} item(s) dbsync cannot copy need a person (listed below)"
    return f"{held} ({compared}){manual if report.manual_actions else ''}."


def outage_page(
    report: Report,
    reason: str,
    source_host: str = "",
    target_host: str = "",
    labels: Labels | None = None,
    last_success: Callable[[str], float | None] | None = None,
) -> Page:
    """The source does not answer: what the standby holds (the store against the live target), how stale."""
    rows = _rows(report.kinds, last_success, report.generated_at)
    held = sum(k.in_sync + k.partial for k in report.kinds)
    times = [r["last_verified_at"] for r in rows if r["last_verified_at"]]
    oldest = min(times) if times else None
    problems, _ = _problems(report.kinds, source_host, target_host, labels or _no_labels)
    stale = f"as of {_when(oldest)} ({_ago(report.generated_at - oldest)} ago)" if oldest else "(never synced)"
    return Page(
        "source-outage",
        "Source unreachable: the standby holds the last sync.",
        source_host,
        target_host,
        _when(report.generated_at),
        summary=[
            f"The source does not answer ({reason}).",
            f"The target holds {held} objects {stale}; changes made on the source since then are not on it.",
            "If the source is lost, make the standby the primary with `dbsync cutover --skip-source` "
            "(README: Cutover runbook); if it comes back, replication resumes by itself.",
        ],
        rows=rows,
        problems=problems,
        manual=report.manual_actions,
    )


def cutover_page(steps: dict[str, dict[str, Any]], role: str, source_host: str = "", target_host: str = "") -> Page:
    """A cutover (or its rollback) running, or stopped at a step: where it is and what to run next."""
    rows = _step_rows(steps)
    rollback = (steps.get("run") or {}).get("state") == "rollback"
    failed = next((r for r in rows if r["state"] == "failed"), None)
    current = next((r for r in rows if r["state"] not in ("done", "skipped")), None)
    if rollback:
        headline, fix = "Rollback in progress.", "Wait for `dbsync cutover --rollback`, or run it again if it stopped."
    elif failed:
        headline = f"Cutover stopped at step {failed['step']} (failed)."
        fix = "Fix the step's reason, then run `dbsync cutover` again (it resumes), or `dbsync cutover --rollback`."
    else:
        at = current["step"] if current else "report"
        headline = f"Cutover in progress: step {CUTOVER_STEPS.index(at) + 1}/{len(CUTOVER_STEPS)} {at}."
        fix = "Follow `dbsync cutover`'s output; dbsync serve does not replicate meanwhile."
    return Page(
        "cutover",
        headline,
        source_host,
        target_host,
        _when(time.time()),
        summary=[f"Store role: {role}." if role != "standby" else "The target is still a standby.", fix],
        steps=rows,
    )


def primary_page(steps: dict[str, dict[str, Any]], source_host: str = "", target_host: str = "") -> Page:
    """After a cutover: a success, with the cutover's report (steps and each job's pause state)."""
    rows = _step_rows(steps)
    finished = (steps.get("mark_complete") or {}).get("at")
    path = ((steps.get("report") or {}).get("detail") or {}).get("path") or ""
    page = Page(
        "primary",
        f"Cutover complete: {target_host or 'the target'} is the primary.",
        source_host,
        target_host,
        _when(time.time()),
        summary=[
            f"Completed {_when(finished)}." if finished else "Completed.",
            "dbsync no longer writes to the new primary. Point people and pipelines at it; "
            "failback is in the README (Failback).",
        ],
        steps=rows,
        report_path=path,
    )
    page.jobs = _cutover_jobs(path, target_host)
    return page


# -- what each moment is made of ----------------------------------------------------------------
def _problems(
    kinds: list[KindValidation], source_host: str, target_host: str, labels: Labels
) -> tuple[list[Problem], list[Problem]]:
    """Problems (each object once, in its most telling category) and notes (extra objects)."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    for k in kinds:
        if k.listing_error:
            problems.append(Problem(k.kind, "unknown: cannot list", 1, _listing_fix(k), [Item(k.listing_error, "")]))
            continue
        problems.extend(_kind_problems(k, source_host, target_host, labels))
        if k.extra_count:
            items = [Item(key, key, object_url(k.kind, target_host, key)) for key in k.extra]
            fix = "Not from the source; dbsync never touches them. Delete them on the target if they should not exist."
            notes.append(Problem(k.kind, "extra on the target", k.extra_count, fix, items))
    return problems, notes


def _kind_problems(k: KindValidation, source_host: str, target_host: str, labels: Labels) -> list[Problem]:
    """One kind's problems; an object in two categories (drifted and missing) is counted in the first."""
    keys = list(dict.fromkeys([*k.drifted, *(p["source_key"] for p in k.problems), *k.missing, *k.pending_keys]))
    known = labels(k.kind, keys)
    seen: set[str] = set()
    out = []
    by_status: dict[str, list[dict[str, Any]]] = {}
    for p in k.problems:
        by_status.setdefault(p["status"], []).append(p)
    stored = [
        (
            _STATUS_TITLES[s],
            _status_count(k, s),
            [p["source_key"] for p in by_status.get(s, [])],
            source_host,
            False,
            "",
        )
        for s in ("error", "blocked", "partial", "skipped")
    ]
    categories = [
        ("edited on the target (drift)", k.drifted_count, k.drifted, target_host, True, _DRIFT_FIX),
        *stored,
        ("missing on the target", k.missing_count, k.missing, source_host, False, _sync_fix(k.kind)),
        ("pending (changed on the source, not on the target yet)", k.pending, k.pending_keys, source_host, False, ""),
    ]
    reasons = {p["source_key"]: p for p in k.problems}
    for title, count, sample, host, on_target, fix in categories:
        fresh = [key for key in sample if key not in seen]
        count -= len(sample) - len(fresh)
        seen.update(fresh)
        if count <= 0:
            continue
        items = [_item(k.kind, key, known.get(key), host, on_target, reasons.get(key)) for key in fresh]
        out.append(Problem(k.kind, title, count, fix or _status_fix(k.kind, title), items))
    if k.unknown:
        out.append(Problem(k.kind, "unknown (the source object could not be read)", k.unknown, _UNKNOWN_FIX))
    if k.duplicate_count:
        dupes = [Item(key, key) for key in k.duplicates]
        out.append(Problem(k.kind, "duplicate copies on the target", k.duplicate_count, _DUPLICATE_FIX, dupes))
    return out


def _item(
    kind: str,
    key: str,
    known: tuple[str | None, str | None] | None,
    host: str,
    on_target: bool,
    reason: dict[str, Any] | None,
) -> Item:
    name, target_key = known or (None, None)
    if reason and reason.get("name"):
        name = reason["name"]
    same_key = declaration(kind).same_key_on_target
    link_key = (target_key or (key if same_key else None)) if on_target else key
    note = f"{reason['status']} after {reason['attempts']} attempt(s): {reason['last_error'] or ''}" if reason else ""
    return Item(name or key, key, object_url(kind, host, link_key), note)


def _status_count(k: KindValidation, status: str) -> int:
    return {"error": k.errors, "blocked": k.blocked, "partial": k.partial, "skipped": k.skipped}[status]


_STATUS_TITLES = {
    "error": "in error",
    "blocked": "blocked",
    "partial": "partial (on the target with entries left out)",
    "skipped": "skipped (not written on purpose)",
}
_DRIFT_FIX = (
    "Someone edited the target copy: undo the edit on the target (links open the target copy), "
    "or set drift: heal to overwrite it with the source's version at the next cycle."
)
_UNKNOWN_FIX = "Give dbsync's source token read access to these objects; the next validation reads them again."
_DUPLICATE_FIX = "Two writers once raced: delete the extra copies on the target (same dbsync source id)."


def _sync_fix(kind: str) -> str:
    return f"Run `dbsync sync --once --kinds {kind}`; an object that stays missing shows its error here."


def _status_fix(kind: str, title: str) -> str:
    if title.startswith("pending"):
        return f"The next {kind} cycle applies these; `dbsync sync --once --kinds {kind}` does it now."
    if title.startswith("partial"):
        return "Create the missing principals on the target (the reason names them); the next cycle adds the entries."
    if title.startswith("skipped"):
        return "Read each reason: a person makes these on the target, or changes the setting named."
    return "Fix the cause each line names; the next cycle retries them."


def _listing_fix(k: KindValidation) -> str:
    side = "target" if (k.listing_error or "").startswith("target") else "source"
    return f"Check that the {side} workspace answers and that dbsync's {side} token may list {k.kind}."


def _rows(
    kinds: list[KindValidation], last_success: Callable[[str], float | None] | None, now: float
) -> list[dict[str, Any]]:
    rows = []
    for k in kinds:
        verified = last_success(k.kind) if last_success else None
        rows.append(
            {
                "kind": k.kind,
                "warn": k.status in ("unknown", "not_in_sync"),
                "cells": [
                    k.source_count,
                    k.target_count,
                    k.in_sync_label,
                    k.pending,
                    k.partial,
                    k.skipped,
                    k.missing_count,
                    k.extra_count,
                    k.drifted_count,
                    k.blocked,
                    k.errors,
                    k.unknown,
                    f"{k.lag_seconds:.0f}",
                ],
                "last_verified_at": verified,
                "last_verified": time.strftime("%m-%d %H:%M:%S", time.gmtime(verified)) if verified else "never",
                "age": _ago(now - verified) if verified else "—",
            }
        )
    return rows


def _step_rows(steps: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in CUTOVER_STEPS:
        row = steps.get(name) or {}
        detail = row.get("detail") or {}
        rows.append(
            {
                "step": name,
                "state": row.get("state") or "pending",
                "at": _when(row["at"]) if row.get("at") else "",
                "seconds": detail.get("seconds"),
                "summary": detail.get("summary") or detail.get("error") or "",
            }
        )
    return rows


def _cutover_jobs(path: str, target_host: str) -> list[dict[str, Any]]:
    """Each job of the saved cutover report, by name, with its pause states and a link to the new primary's copy."""
    if not path or not Path(path).exists():
        return []
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    return [
        {
            "name": job.get("name") or job.get("source_job_id"),
            "url": object_url("jobs", target_host, job.get("target_job_id")),
            "source": f"{_states(job.get('source_before'))} → {_states(job.get('source_after'))}",
            "target": f"{_states(job.get('target_before'))} → {_states(job.get('target_after'))}",
            "note": job.get("note") or "",
        }
        for job in document.get("jobs", [])
    ]


def _states(states: dict[str, str] | None) -> str:
    if states is None:
        return "—"
    return ", ".join(f"{field_name} {state}" for field_name, state in sorted(states.items())) or "no trigger"


def _objects(problems: list[Problem]) -> str:
    total = sum(p.count for p in problems)
    return f"{total} object{'s' if total != 1 else ''}" if total else "Problems"


def _no_labels(kind: str, keys: list[str]) -> dict[str, tuple[str | None, str | None]]:
    return {}


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "never"


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- rendering ----------------------------------------------------------------------------------
def render_page(page: Page, refresh_seconds: int | None = 30) -> str:
    """The HTML of a Page (autoescaped: names and errors from the workspaces are text, never markup)."""
    return _ENV.get_template("report.html").render(page=page, refresh_seconds=refresh_seconds)


def render_login(failed: bool = False, auth_enabled: bool = True) -> str:
    """The login form: the token is POSTed once, never put in a URL."""
    return _ENV.get_template("login.html").render(failed=failed, auth_enabled=auth_enabled)


def render(report: Report, target_host: str = "", source_host: str = "", labels: Labels | None = None) -> str:
    """The standby page for a Report (`dbsync validate --format html`); hosts turn keys into links."""
    return render_page(standby_page(report, source_host, target_host, labels), refresh_seconds=None)


def source_down(host: str, timeout: float = 5.0) -> str | None:
    """Why the source workspace does not answer (None when it does): one unauthenticated probe."""
    url, answer = probe_workspace(host, timeout)
    if isinstance(answer, httpx.HTTPError):
        return f"{type(answer).__name__} from {url}"
    if answer.status_code >= 500:
        return f"HTTP {answer.status_code} from {url}"
    return None


def moment_page(
    store: Any,
    source_host: str,
    target_host: str,
    live: Callable[[], Report],
    from_store: Callable[[], Report],
    now: float | None = None,
    probe: Callable[[str], str | None] = source_down,
) -> Page:
    """The page for this moment: the store's role and cutover record first, then whether the source answers.

    `probe` says why the source does not answer (None when it does); the server passes a cached one.
    """
    role = store.role
    steps = store.cutover_steps()
    if role == "cutover-complete":
        return primary_page(steps, source_host, target_host)
    if role != "standby" or steps or store.writer_flags()[1]:
        return cutover_page(steps, role, source_host, target_host)
    down = probe(source_host)
    if down:
        return outage_page(from_store(), down, source_host, target_host, store.labels, store.last_success)
    report = live()
    rolled = store.get_meta("rolled_back_at")
    recent = rolled and (now or time.time()) - float(rolled) < ROLLED_BACK_SHOWN_SECONDS
    return standby_page(
        report, source_host, target_host, store.labels, store.last_success, float(rolled) if recent else None
    )
