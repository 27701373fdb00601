"""Lakeview dashboard schedules and subscriptions:
`/api/2.0/lakeview/dashboards/{id}/schedules[/{schedule_id}[/subscriptions[/{subscription_id}]]]`.

Shapes follow databricks-sdk `service/dashboards.py` (`Schedule`, `CronSchedule`, `Subscription`,
`Subscriber`). Records live in tables "lakeview_schedules" (schedule id → record) and
"lakeview_subscriptions" (subscription id → record).

- schedule: `cron_schedule` {quartz_cron_expression, timezone_id} required, `pause_status`
  PAUSED/UNPAUSED (default UNPAUSED), `display_name`, `warehouse_id` (must exist). The dashboard must be
  active (404 otherwise). Update (PUT) replaces the schedule; an `etag` that is not the current one is a
  409 ABORTED, as for dashboards; delete takes `etag` as a query parameter with the same check.
- subscription: `subscriber` is exactly one of `user_subscriber` {user_id: a SCIM user id} or
  `destination_subscriber` {destination_id: a notification destination}; both must exist (404); the same
  subscriber twice on one schedule is a 409 RESOURCE_ALREADY_EXISTS.
- lists: `page_size` (default 50, at most 1000), `page_token`.
Deleting a schedule deletes its subscriptions.

Not modelled: sending the snapshots (nothing runs at the scheduled times), per-dashboard schedule limits.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from dbsync_emulator.apis import jobs, lakeview, notification_destinations, scim, sql
from dbsync_emulator.apis._paging import iso, new_uuid, page, page_size
from dbsync_emulator.errors import ApiError, already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

SCHEDULES = "lakeview_schedules"
SUBSCRIPTIONS = "lakeview_subscriptions"
PAGE_DEFAULT, PAGE_MAX = 50, 1000
BASE = "/api/2.0/lakeview/dashboards/{id}/schedules"


def _dashboard(ws: Workspace, dashboard_id: str) -> dict:
    record = ws.table(lakeview.DASHBOARDS).get(dashboard_id)
    if record is None or record["lifecycle_state"] != "ACTIVE":
        raise not_found(f"Unable to find dashboard [{dashboard_id}]")
    return record


def _schedule(ws: Workspace, dashboard_id: str, schedule_id: str) -> dict:
    _dashboard(ws, dashboard_id)
    record = ws.table(SCHEDULES).get(schedule_id)
    if record is None or record["dashboard_id"] != dashboard_id:
        raise not_found(f"Unable to find schedule [{schedule_id}] of dashboard [{dashboard_id}]")
    return record


def _check_etag(record: dict, etag: Any) -> None:
    if etag not in (None, "") and str(etag) != str(record["revision"]):
        raise ApiError(409, "ABORTED", "The schedule was modified since it was read: get it again and retry")


def _fields(ws: Workspace, body: dict) -> dict:
    cron = body.get("cron_schedule")
    if not isinstance(cron, dict) or not cron.get("quartz_cron_expression"):
        raise invalid("cron_schedule.quartz_cron_expression is required")
    if not jobs._CRON.match(str(cron["quartz_cron_expression"])):  # the jobs service's quartz check
        raise invalid(f"Invalid quartz_cron_expression: {cron['quartz_cron_expression']!r}")
    try:
        zoneinfo.ZoneInfo(str(cron.get("timezone_id") or ""))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise invalid(f"Invalid timezone_id: {cron.get('timezone_id')!r}") from None
    status = body.get("pause_status") or "UNPAUSED"
    if status not in ("PAUSED", "UNPAUSED"):
        raise invalid(f"Invalid pause_status: {status} (PAUSED or UNPAUSED)")
    warehouse = body.get("warehouse_id")
    if warehouse and warehouse not in ws.table(sql.WAREHOUSES):
        raise invalid(f"Warehouse {warehouse} does not exist")
    fields = {
        "cron_schedule": {"quartz_cron_expression": cron["quartz_cron_expression"], "timezone_id": cron["timezone_id"]},
        "pause_status": status,
    }
    for key in ("display_name", "warehouse_id"):
        if body.get(key):
            fields[key] = body[key]
    return fields


def _render(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in ("revision", "create_ms", "update_ms", "seq")}
    out.update(etag=str(record["revision"]), create_time=iso(record["create_ms"]), update_time=iso(record["update_ms"]))
    return out


def _listing(req: Request, records: list[dict], key: str) -> dict:
    size = page_size(req.int_arg("page_size"), PAGE_DEFAULT, PAGE_MAX)
    chunk, token = page(sorted(records, key=lambda r: r["seq"]), size, req.arg("page_token"))
    body: dict[str, Any] = {key: [_render(r) for r in chunk]}
    if token:
        body["next_page_token"] = token
    return body


# -- schedules ------------------------------------------------------------------------------------------
@routes.post(BASE)
def create_schedule(ws: Workspace, req: Request) -> dict:
    dashboard_id = req.path_params["id"]
    _dashboard(ws, dashboard_id)
    now = ws.now_ms()
    record = {
        "schedule_id": new_uuid(ws).hex,
        "dashboard_id": dashboard_id,
        **_fields(ws, req.json),
        "revision": 1,
        "create_ms": now,
        "update_ms": now,
        "seq": ws.next_id("lakeview_schedule_seq"),
    }
    ws.table(SCHEDULES)[record["schedule_id"]] = record
    return _render(record)


@routes.get(BASE)
def list_schedules(ws: Workspace, req: Request) -> dict:
    dashboard_id = req.path_params["id"]
    _dashboard(ws, dashboard_id)
    records = [r for r in ws.table(SCHEDULES).values() if r["dashboard_id"] == dashboard_id]
    return _listing(req, records, "schedules")


@routes.get(BASE + "/{schedule_id}")
def get_schedule(ws: Workspace, req: Request) -> dict:
    return _render(_schedule(ws, req.path_params["id"], req.path_params["schedule_id"]))


@routes.put(BASE + "/{schedule_id}")
def update_schedule(ws: Workspace, req: Request) -> dict:
    record = _schedule(ws, req.path_params["id"], req.path_params["schedule_id"])
    _check_etag(record, req.json.get("etag"))
    fields = _fields(ws, req.json)
    for key in ("display_name", "warehouse_id"):
        record.pop(key, None)
    record.update(fields)
    record["revision"] += 1
    record["update_ms"] = max(ws.now_ms(), record["update_ms"] + 1)
    return _render(record)


@routes.delete(BASE + "/{schedule_id}")
def delete_schedule(ws: Workspace, req: Request) -> dict:
    record = _schedule(ws, req.path_params["id"], req.path_params["schedule_id"])
    _check_etag(record, req.arg("etag"))
    for key in [k for k, s in ws.table(SUBSCRIPTIONS).items() if s["schedule_id"] == record["schedule_id"]]:
        del ws.table(SUBSCRIPTIONS)[key]
    del ws.table(SCHEDULES)[record["schedule_id"]]
    return {}


# -- subscriptions ----------------------------------------------------------------------------------------
def _subscriber(ws: Workspace, body: dict) -> dict:
    subscriber = body.get("subscriber")
    kinds = [
        k for k in ("user_subscriber", "destination_subscriber") if isinstance(subscriber, dict) and subscriber.get(k)
    ]
    if len(kinds) != 1:
        raise invalid("subscriber must be exactly one of user_subscriber or destination_subscriber")
    if kinds[0] == "user_subscriber":
        user_id = subscriber["user_subscriber"].get("user_id")
        if str(user_id) not in ws.table(scim.USERS):
            raise not_found(f"User {user_id} does not exist")
        return {"user_subscriber": {"user_id": int(user_id)}}
    destination_id = subscriber["destination_subscriber"].get("destination_id")
    if not notification_destinations.exists(ws, str(destination_id)):
        raise not_found(f"Notification destination {destination_id} does not exist")
    return {"destination_subscriber": {"destination_id": str(destination_id)}}


@routes.post(BASE + "/{schedule_id}/subscriptions")
def create_subscription(ws: Workspace, req: Request) -> dict:
    schedule = _schedule(ws, req.path_params["id"], req.path_params["schedule_id"])
    subscriber = _subscriber(ws, req.json)
    for other in ws.table(SUBSCRIPTIONS).values():
        if other["schedule_id"] == schedule["schedule_id"] and other["subscriber"] == subscriber:
            raise already_exists("This subscriber is already subscribed to the schedule", status=409)
    now = ws.now_ms()
    user = scim.find_user(ws, ws.admin_user)
    record = {
        "subscription_id": new_uuid(ws).hex,
        "dashboard_id": schedule["dashboard_id"],
        "schedule_id": schedule["schedule_id"],
        "subscriber": subscriber,
        "created_by_user_id": int(user["id"]) if user else 0,
        "skip_notify": bool(req.json.get("skip_notify", False)),
        "revision": 1,
        "create_ms": now,
        "update_ms": now,
        "seq": ws.next_id("lakeview_subscription_seq"),
    }
    ws.table(SUBSCRIPTIONS)[record["subscription_id"]] = record
    return _render(record)


def _subscription(ws: Workspace, req: Request) -> dict:
    schedule = _schedule(ws, req.path_params["id"], req.path_params["schedule_id"])
    record = ws.table(SUBSCRIPTIONS).get(req.path_params["subscription_id"])
    if record is None or record["schedule_id"] != schedule["schedule_id"]:
        raise not_found(f"Unable to find subscription [{req.path_params['subscription_id']}]")
    return record


@routes.get(BASE + "/{schedule_id}/subscriptions")
def list_subscriptions(ws: Workspace, req: Request) -> dict:
    schedule = _schedule(ws, req.path_params["id"], req.path_params["schedule_id"])
    records = [r for r in ws.table(SUBSCRIPTIONS).values() if r["schedule_id"] == schedule["schedule_id"]]
    return _listing(req, records, "subscriptions")


@routes.get(BASE + "/{schedule_id}/subscriptions/{subscription_id}")
def get_subscription(ws: Workspace, req: Request) -> dict:
    return _render(_subscription(ws, req))


@routes.delete(BASE + "/{schedule_id}/subscriptions/{subscription_id}")
def delete_subscription(ws: Workspace, req: Request) -> dict:
    record = _subscription(ws, req)
    _check_etag(record, req.arg("etag"))
    del ws.table(SUBSCRIPTIONS)[record["subscription_id"]]
    return {}
