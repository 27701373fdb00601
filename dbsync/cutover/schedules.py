"""Dashboard schedules in the cutover: paused on the source, unpaused on the target, undone by a rollback.

A standby copy of a Lakeview schedule is always PAUSED, and the store keeps each source schedule's pause
state in source_meta. pause_source pauses each unpaused source schedule, recorded as
`source_schedule:<dashboard id>/<schedule id>` with its prior state before the write; unpause_target
unpauses the copy of each one, recorded as `target_schedule:<key>`. With --skip-source the copies of the
schedules the last sync saw unpaused are unpaused. A rollback pauses the unpaused copies first, then
restores the source schedules. Each write PUTs the live schedule with only `pause_status` changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.dashboards import Schedule

from dbsync.cutover.common import job_rows, one_line, step_state
from dbsync.model import Prior
from dbsync.watchers.dashboard_schedules import NAME, PAUSE, schedule_body, split_key

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook

SCHEDULES = "dashboard_schedules"
SOURCE_SCHEDULE_ROW, TARGET_SCHEDULE_ROW = "source_schedule:", "target_schedule:"
PAUSED, UNPAUSED = "PAUSED", "UNPAUSED"


def _live(ws: Any, key: str) -> dict[str, Any] | None:
    """The live schedule `<dashboard id>/<schedule id>`, None when it (or its dashboard) is gone."""
    try:
        return ws.client.lakeview.get_schedule(*split_key(key)).as_dict()
    except NotFound:
        return None


def set_pause(ws: Any, book: Runbook, side: str, key: str, live: dict[str, Any], status: str) -> None:
    """PUT the schedule as it is live with `pause_status` changed (its etag guards a concurrent edit)."""
    book.writer.pacers[side].wait()
    body = Schedule.from_dict({**schedule_body(live), "pause_status": status, "etag": live.get("etag")})
    ws.client.lakeview.update_schedule(*split_key(key), body)


def _unpaused_priors(book: Runbook) -> list[Prior]:
    """Replicated schedules the store last saw unpaused on the source."""
    return [p for p in book.store.priors(SCHEDULES, payloads=False) if p.source_meta.get(PAUSE) == UNPAUSED]


def wanted(book: Runbook) -> list[Prior]:
    """The schedules whose copies must run on the new primary: those unpaused on the source when it stopped."""
    if step_state(book.rows, "pause_source") == "done":
        paused = job_rows(book.rows, SOURCE_SCHEDULE_ROW)
        return [p for p in book.store.priors(SCHEDULES, payloads=False) if p.key in paused]
    return _unpaused_priors(book)


def _name(prior: Prior) -> str:
    return str(prior.source_meta.get(NAME) or prior.key)


def stop_source(book: Runbook) -> tuple[int, list[str]]:
    """pause_source: each unpaused source schedule paused; (paused, failures)."""
    paused, failed = 0, []
    for prior in _unpaused_priors(book):
        row = SOURCE_SCHEDULE_ROW + prior.key
        live = _live(book.ctx.source, prior.key)
        if live is None or (live.get(PAUSE) == PAUSED and row not in book.rows):
            continue  # gone, or paused since the last sync: it sends nothing
        detail = {"name": _name(prior), "prior": {PAUSE: UNPAUSED}}
        if row not in book.rows:
            book.record(row, "pending", detail)  # the prior state is kept before the write
        try:
            if live.get(PAUSE) != PAUSED:
                set_pause(book.ctx.source, book, "source", prior.key, live, PAUSED)
        except DatabricksError as err:
            failed.append(f"source dashboard schedule {prior.key} ({detail['name']}): {one_line(err)}")
            continue
        book.record(row, "paused", detail)
        paused += 1
    return paused, failed


def start_target(book: Runbook) -> tuple[int, list[str]]:
    """unpause_target: the copy of each schedule that ran on the source unpaused; (unpaused, failures)."""
    unpaused, failed = 0, []
    for prior in wanted(book):
        if prior.target_key is None:
            failed.append(f"dashboard schedule {prior.key} was never replicated to the target")
            continue
        row = TARGET_SCHEDULE_ROW + prior.target_key
        live = _live(book.ctx.target, prior.target_key)
        if live is None:
            failed.append(f"target dashboard schedule {prior.target_key} (copy of {prior.key}) is missing")
            continue
        detail = {"name": _name(prior), "source_key": prior.key}
        if row not in book.rows:
            book.record(row, "pending", detail)
        try:
            if live.get(PAUSE) != UNPAUSED:
                set_pause(book.ctx.target, book, "target", prior.target_key, live, UNPAUSED)
        except DatabricksError as err:
            failed.append(f"target dashboard schedule {prior.target_key} ({detail['name']}): {one_line(err)}")
            continue
        book.record(row, "unpaused", detail)
        unpaused += 1
    return unpaused, failed


def rollback(book: Runbook, missing: list[str]) -> tuple[int, list[str]]:
    """The copies the cutover unpaused paused again, then the source schedules it paused unpaused.

    Returns (schedules restored, failures); a schedule gone from its workspace is added to `missing`.
    """
    done, failed = 0, []
    for side, prefix, status in (("target", TARGET_SCHEDULE_ROW, PAUSED), ("source", SOURCE_SCHEDULE_ROW, UNPAUSED)):
        if failed:
            break  # a copy that may still send snapshots: its source schedule must not run again
        ws = book.ctx.target if side == "target" else book.ctx.source
        for key, row in job_rows(book.rows, prefix).items():
            live = _live(ws, key)
            if live is None:
                missing.append(f"{side} dashboard schedule {key}")
                continue
            if live.get(PAUSE) == status:
                continue
            try:
                set_pause(ws, book, side, key, live, status)
                done += 1
            except DatabricksError as err:
                failed.append(f"{side} dashboard schedule {key} ({row['detail'].get('name')}): {one_line(err)}")
    return done, failed


def plan_text(book: Runbook, skip_source: bool) -> str:
    """The dry run's line: which dashboard schedules move from the source to the target."""
    priors = wanted(book)
    if not priors:
        return "no unpaused dashboard schedule to move"
    where = "unpaused on the target" if skip_source else "paused on the source and unpaused on the target"
    shown = ", ".join(_name(p) for p in priors[:5]) + (" …" if len(priors) > 5 else "")
    return f"{len(priors)} dashboard schedule(s) {where}: {shown}"
