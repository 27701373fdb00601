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

from databricks.sdk.errors import NotFound

from dbsync.cutover.common import kind_disabled
from dbsync.cutover.switches import Switch
from dbsync.model import Prior
from dbsync.sdk import Service
from dbsync.watchers.dashboard_schedules import NAME, PAUSE, schedule_body, split_key

sdk_dashboards = Service("dashboards")  # imported when this kind first uses it (dbsync/sdk.py)

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook

SCHEDULES = "dashboard_schedules"
SOURCE_SCHEDULE_ROW, TARGET_SCHEDULE_ROW = "source_schedule:", "target_schedule:"
PAUSED, UNPAUSED = "PAUSED", "UNPAUSED"


class UnpausedSchedules(Switch):
    kind, noun = SCHEDULES, "dashboard schedule"
    source_row, target_row = SOURCE_SCHEDULE_ROW, TARGET_SCHEDULE_ROW
    off_state, on_state = "paused", "unpaused"
    prior_detail = {PAUSE: UNPAUSED}

    def live(self, ws: Any, key: str) -> dict[str, Any] | None:
        """The live schedule `<dashboard id>/<schedule id>`, None when it (or its dashboard) is gone."""
        try:
            return ws.client.lakeview.get_schedule(*split_key(key)).as_dict()
        except NotFound:
            return None

    def is_on(self, live: dict[str, Any]) -> bool:
        return live.get(PAUSE) != PAUSED

    def turn(self, ws: Any, key: str, live: dict[str, Any], on: bool) -> None:
        """PUT the schedule as it is live with `pause_status` changed (its etag guards a concurrent edit)."""
        status = UNPAUSED if on else PAUSED
        body = sdk_dashboards.Schedule.from_dict(
            {**schedule_body(live), "pause_status": status, "etag": live.get("etag")}
        )
        ws.client.lakeview.update_schedule(*split_key(key), body)

    def was_on(self, prior: Prior) -> bool:
        return prior.source_meta.get(PAUSE) == UNPAUSED

    def name(self, book: Runbook, prior: Prior, live: dict[str, Any] | None) -> str:
        return str(prior.source_meta.get(NAME) or prior.key)


SWITCH = UnpausedSchedules()
wanted, stop_source, start_target, rollback = SWITCH.wanted, SWITCH.stop_source, SWITCH.start_target, SWITCH.rollback


def plan_text(book: Runbook, skip_source: bool) -> str:
    """The dry run's line: which dashboard schedules move from the source to the target."""
    priors = wanted(book)
    if not priors:
        return "no unpaused dashboard schedule to move"
    where = "unpaused on the target" if skip_source else "paused on the source and unpaused on the target"
    if not SWITCH.enabled(book):  # the target's are the DR team's: the copies, stale, stay as they are
        where = "not unpaused on the target" if skip_source else "paused on the source, none unpaused on the target"
        where += f" ({kind_disabled(SCHEDULES)}: the target's are not dbsync's)"
    shown = ", ".join(SWITCH.name(book, p, None) for p in priors[:5]) + (" …" if len(priors) > 5 else "")
    return f"{len(priors)} dashboard schedule(s) {where}: {shown}"
