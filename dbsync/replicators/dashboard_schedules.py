"""Dashboard schedules on the target: created or replaced PAUSED on the dashboard's copy, subscribers kept in step.

A schedule has no tags, so a create first looks on the dashboard's copy for a schedule with the same cron,
timezone and display name and adopts it (a lost store never duplicates one; an adopted schedule is never
deleted). Of the subscribers the source no longer has, only those dbsync added (recorded: replicators/added.py)
are removed, on its own schedules too: one someone subscribed on the standby stays. Every write says PAUSED: a
standby sends no snapshot, and `dbsync cutover` unpauses the copies of the schedules that ran on the source. A
user subscriber the target lacks is left out and waited for (the schedule is `partial`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent
from dbsync.mapping import waiting_ref
from dbsync.model import Applied, Delete, Upsert, fingerprint
from dbsync.principals import INDEXES
from dbsync.replicators.added import added_before, added_meta, adding_ahead
from dbsync.replicators.base import Replicator
from dbsync.sdk import Service
from dbsync.watchers.dashboard_schedules import PAGE_SIZE, schedule_body, schedule_key, split_key

sdk_dashboards = Service("dashboards")  # imported when this kind first uses it (dbsync/sdk.py)
PAUSED = "PAUSED"  # SchedulePauseStatus.PAUSED's value


def standby_schedule(payload: dict[str, Any], etag: str | None = None) -> sdk_dashboards.Schedule:
    """The schedule as written on a standby: the source's fields (refs resolved), PAUSED."""
    cron = payload["cron_schedule"]
    return sdk_dashboards.Schedule(
        cron_schedule=sdk_dashboards.CronSchedule(cron["quartz_cron_expression"], timezone_id=cron["timezone_id"]),
        display_name=payload.get("display_name"),
        warehouse_id=payload.get("warehouse_id"),
        pause_status=sdk_dashboards.SchedulePauseStatus(PAUSED),
        etag=etag,
    )


class DashboardScheduleReplicator(Replicator):
    kind = "dashboard_schedules"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = ctx.idmap.resolve(change.resource.payload)  # Blocked until dashboard, warehouse, destinations are
        dashboard_id = payload["dashboard_id"]
        current = _recorded(ctx, change.target_key, dashboard_id)
        adopted: bool | None = None
        if current is None:
            current = _found(ctx, dashboard_id, payload)
            adopted = current is not None
        lakeview = ctx.target.client.lakeview
        try:
            if current is None:
                current = lakeview.create_schedule(dashboard_id, standby_schedule(payload)).as_dict()
            elif schedule_body(current) != schedule_body(payload) or current.get("pause_status") != PAUSED:
                updated = lakeview.update_schedule(
                    dashboard_id, current["schedule_id"], standby_schedule(payload, current.get("etag"))
                )
                current = updated.as_dict()
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected dashboard schedule {change.resource.name!r}: {err}") from err
            raise
        own = adopted is False or (adopted is None and (change.prior is None or change.prior.origin != "adopted"))
        ours = added_before(change, own, lambda old: _identities(ctx, old))
        waiting, ours = _subscribe(ctx, change, dashboard_id, current["schedule_id"], payload["subscribers"], ours)
        key = schedule_key(dashboard_id, current["schedule_id"])
        meta = added_meta(ours)
        if not waiting:
            return Applied(key, adopted=adopted, meta=meta)
        note = f"subscriber {waiting[0].split(':', 1)[1]} does not exist on the target: left out until it does"
        return Applied(key, note=note, waiting_on=waiting, adopted=adopted, meta=meta)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        dashboard_id, schedule_id = split_key(change.target_key or "")
        with contextlib.suppress(NotFound):
            ctx.target.client.lakeview.delete_schedule(dashboard_id, schedule_id)


def _recorded(ctx: SyncContext, target_key: str | None, dashboard_id: str) -> dict[str, Any] | None:
    """The recorded copy, None when it is gone or sits on another dashboard (the copy was recreated)."""
    if not target_key or split_key(target_key)[0] != dashboard_id:
        return None
    try:
        return ctx.target.client.lakeview.get_schedule(dashboard_id, split_key(target_key)[1]).as_dict()
    except NotFound:
        return None


def _found(ctx: SyncContext, dashboard_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """A schedule on the dashboard's copy with the same cron, timezone and name (a lost store's own copy)."""
    wanted = {k: v for k, v in schedule_body(payload).items() if k != "warehouse_id"}
    for schedule in ctx.target.client.lakeview.list_schedules(dashboard_id, page_size=PAGE_SIZE):
        found = schedule.as_dict()
        if {k: v for k, v in schedule_body(found).items() if k != "warehouse_id"} == wanted:
            return found
    return None


def _target_subscriber(ctx: SyncContext, subscriber: dict[str, Any]) -> dict[str, Any] | None:
    """The subscriber as the target's API names it; None for a user the target lacks (asked by name when the
    target's users index lacks it: that index pages by offset, and a subscriber left out is unsubscribed)."""
    if subscriber.get("destination_id"):
        return {"destination_subscriber": {"destination_id": subscriber["destination_id"]}}
    found = INDEXES["users"].confirm(ctx, subscriber["user_name"])
    return {"user_subscriber": {"user_id": int(found[0])}} if found else None


def _subscribe(
    ctx: SyncContext,
    change: Upsert,
    dashboard_id: str,
    schedule_id: str,
    subscribers: list[dict[str, Any]],
    ours: set[str],
) -> tuple[list[str], set[str]]:
    """Add the missing subscribers and remove those dbsync added (`ours`) that the source dropped: (the users waited
    for, the subscribers dbsync added that are there now). A subscriber someone added on the target stays."""
    lakeview = ctx.target.client.lakeview
    existing = {
        fingerprint(s.subscriber.as_dict() if s.subscriber else {}): s
        for s in lakeview.list_subscriptions(dashboard_id, schedule_id, page_size=PAGE_SIZE)
    }
    wanted, waiting = {}, []
    for subscriber in subscribers:
        target = _target_subscriber(ctx, subscriber)
        if target is None:
            waiting.append(waiting_ref("users", subscriber["user_name"]))
            continue
        wanted[fingerprint(target)] = target
    adding_ahead(ctx, change, ours, wanted.keys() - existing.keys())  # recorded before the subscriptions are made
    added = set()
    for identity, target in wanted.items():
        if identity not in existing:
            lakeview.create_subscription(
                dashboard_id, schedule_id, sdk_dashboards.Subscription(subscriber=_sdk_subscriber(target))
            )
            added.add(identity)
    removed = set()
    for identity, subscription in existing.items():
        if identity in ours and identity not in wanted:
            with contextlib.suppress(NotFound):
                lakeview.delete_subscription(dashboard_id, schedule_id, subscription.subscription_id or "")
            removed.add(identity)
    return waiting, ((ours & existing.keys()) - removed) | added


def _identities(ctx: SyncContext, payload: dict[str, Any]) -> set[str]:
    """The target subscribers of an older row's payload (a store from before the record, on dbsync's own schedule:
    what it copied last stands for what it added); none when a destination it names is no longer mapped."""
    try:
        resolved = ctx.idmap.resolve(payload)
    except Blocked:
        return set()
    targets = (_target_subscriber(ctx, s) for s in resolved.get("subscribers") or [])
    return {fingerprint(t) for t in targets if t is not None}


def _sdk_subscriber(target: dict[str, Any]) -> sdk_dashboards.Subscriber:
    if "destination_subscriber" in target:
        destination = target["destination_subscriber"]["destination_id"]
        return sdk_dashboards.Subscriber(
            destination_subscriber=sdk_dashboards.SubscriptionSubscriberDestination(destination_id=destination)
        )
    return sdk_dashboards.Subscriber(
        user_subscriber=sdk_dashboards.SubscriptionSubscriberUser(user_id=target["user_subscriber"]["user_id"])
    )


def replicator_for(kind: str) -> Replicator:
    return DashboardScheduleReplicator()
