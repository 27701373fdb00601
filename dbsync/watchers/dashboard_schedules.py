"""Lakeview dashboard schedules and their subscriptions: each schedule with its subscribers, one object.

A schedule lives under its dashboard (`/lakeview/dashboards/{id}/schedules/{schedule_id}`), so the key is
`<dashboard id>/<schedule id>` and the dashboard becomes a Ref to `dashboards` (the schedule waits for its
dashboard's copy). The warehouse becomes a Ref to `sql_warehouses`, a destination subscriber a Ref to
`notification_destinations`, and a user subscriber (a SCIM user id) the user's name through the email
mapping, looked up on the target when written. Subscriptions are part of the schedule's payload: they have
no life of their own, and a schedule's subscribers are what a user checks.

`pause_status` is not part of the payload: a standby keeps every schedule PAUSED (no snapshot is sent from
it), and the source's state is kept in source_meta for `dbsync cutover`, which unpauses exactly the copies
of the schedules that ran on the source. The listings carry every field, so the version hint is the
payload and meta: a no-change cycle reads, per dashboard, its schedules (one call) and per schedule its
subscriptions (one call), and writes nothing. That listing costs a call per dashboard, so the kind runs
every 15 minutes by default (2,500 dashboards every 5 minutes were 8 requests/s): a copy is paused anyway,
and the cutover reads each source schedule's live pause state, never this listing's.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError
from dbsync.model import Resource, fingerprint, ref
from dbsync.runcache import CacheKey
from dbsync.watchers.base import Watcher
from dbsync.watchers.identities import scim_records
from dbsync.workspace import Workspace

PAGE_SIZE = 100
PAUSE = "pause_status"  # source_meta key: the source schedule's PAUSED / UNPAUSED
USER_NAMES: CacheKey[dict[str, str]] = CacheKey("dashboard_schedules:user-names")  # .part(side)
NAME = "name"  # source_meta key: "<dashboard>: <schedule>", for the cutover's lines


def schedule_key(dashboard_id: str, schedule_id: str) -> str:
    """The key of a schedule (on either side): `<dashboard id>/<schedule id>`."""
    return f"{dashboard_id}/{schedule_id}"


def split_key(key: str) -> tuple[str, str]:
    """(dashboard id, schedule id) of a schedule key."""
    dashboard_id, _, schedule_id = key.partition("/")
    return dashboard_id, schedule_id


def schedule_body(schedule: dict[str, Any]) -> dict[str, Any]:
    """The writable fields of a schedule as the API answers it (no pause state, no etag, no times)."""
    cron = schedule.get("cron_schedule") or {}
    body: dict[str, Any] = {
        "cron_schedule": {
            "quartz_cron_expression": cron.get("quartz_cron_expression"),
            "timezone_id": cron.get("timezone_id"),
        }
    }
    for field in ("display_name", "warehouse_id"):
        if schedule.get(field):
            body[field] = schedule[field]
    return body


Row = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]  # (dashboard, schedule, subscriptions)


def schedules_of(ws: Workspace, concurrency: int = 1) -> Iterator[Row]:
    """(dashboard, schedule, subscriptions) of every schedule of every active dashboard of `ws`.

    The API lists schedules per dashboard: `concurrency` dashboards are read at a time, in listing order (one
    after another, 2,500 dashboards at 100 ms a call took 534 s of a daemon's single worker).
    """
    lakeview = ws.client.lakeview

    def of_dashboard(dashboard: Any) -> list[Row]:
        dashboard_id = dashboard.dashboard_id or ""
        try:
            schedules = [s.as_dict() for s in lakeview.list_schedules(dashboard_id, page_size=PAGE_SIZE)]
            return [
                (
                    dashboard.as_dict(),
                    schedule,
                    [
                        s.as_dict()
                        for s in lakeview.list_subscriptions(dashboard_id, schedule["schedule_id"], page_size=PAGE_SIZE)
                    ],
                )
                for schedule in schedules
            ]
        except NotFound:
            return []  # trashed between the listing and this read: its schedules went with it

    with ThreadPoolExecutor(concurrency, thread_name_prefix=f"schedules-{ws.side}") as pool:
        for rows in pool.map(of_dashboard, lakeview.list(page_size=PAGE_SIZE)):
            yield from rows


class DashboardScheduleWatcher(Watcher):
    kind = "dashboard_schedules"
    declaration = Declaration(interval=900, worker="dashboards")  # after their dashboards, on their worker

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            for dashboard, schedule, subscriptions in schedules_of(ws, ctx.settings.concurrency):
                key = schedule_key(dashboard["dashboard_id"], schedule["schedule_id"])
                name = f"{dashboard.get('display_name', '')}: {schedule.get('display_name') or key}"
                if ws.side != "source":  # the target's copy as it stands, for the drift check
                    raw = {**schedule_body(schedule), PAUSE: schedule.get(PAUSE), "subs": _raw_subs(subscriptions)}
                    yield Resource(self.kind, key, name, fingerprint(raw))
                    continue
                payload = self._payload(ctx, ws, dashboard["dashboard_id"], schedule, subscriptions)
                meta = {PAUSE: schedule.get(PAUSE) or "UNPAUSED", NAME: name}
                hint = fingerprint({"payload": payload, "meta": meta})  # a pause change is recorded, not written
                yield Resource(self.kind, key, name, hint, payload, source_meta=meta)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list dashboard schedules: {err}") from err

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub  # the listings carry every field

    def _payload(
        self, ctx: SyncContext, ws: Workspace, dashboard_id: str, schedule: dict[str, Any], subscriptions: list[dict]
    ) -> dict[str, Any]:
        payload = {"dashboard_id": ref("dashboards", dashboard_id), **schedule_body(schedule)}
        if payload.get("warehouse_id"):
            payload["warehouse_id"] = ref("sql_warehouses", payload["warehouse_id"])
        subscribers = [self._subscriber(ctx, ws, s.get("subscriber") or {}) for s in subscriptions]
        payload["subscribers"] = sorted((s for s in subscribers if s), key=fingerprint)
        return payload

    @staticmethod
    def _subscriber(ctx: SyncContext, ws: Workspace, subscriber: dict[str, Any]) -> dict[str, Any] | None:
        """A destination as a Ref, a user by its (mapped) name; None for a user the source no longer has."""
        destination = (subscriber.get("destination_subscriber") or {}).get("destination_id")
        if destination:
            return {"destination_id": ref("notification_destinations", destination)}
        user_id = str((subscriber.get("user_subscriber") or {}).get("user_id") or "")
        name = ctx.cached(USER_NAMES.part(ws.side), lambda: _user_names(ctx, ws)).get(user_id)
        return {"user_name": ctx.principals.user(name)} if name else None


def _user_names(ctx: SyncContext, ws: Workspace) -> dict[str, str]:
    """SCIM user id → userName of `ws` (from the users listing, read once per run)."""
    return {str(u.get("id")): str(u.get("userName")) for u in scim_records(ctx, ws, "users") if u.get("userName")}


def _raw_subs(subscriptions: list[dict[str, Any]]) -> list[str]:
    return sorted(fingerprint(s.get("subscriber") or {}) for s in subscriptions)


def watcher_for(kind: str) -> DashboardScheduleWatcher:
    return DashboardScheduleWatcher()
