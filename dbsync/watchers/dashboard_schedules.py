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

With `kinds.dashboard_schedules.max_staleness` set, each dashboard's schedules are read by need
(`ScheduleLists`), as the workspace tree's directories are: a dashboard whose schedules changed is read again
next cycle, an unchanged one after twice its last interval, never later than `max_staleness`; an audit-log row
naming the dashboard makes it due at once. At 2,500 dashboards, reading every one every 15 minutes was ~5,000 calls
(5.6 requests/s, an eighth of a 50 requests/s budget the ACL sweep already fills). The schedules of a
dashboard not read come from the store as last seen: their status stands, nothing is written from them, and
none is deleted (a schedule is deleted only from its dashboard's listing, read that cycle). On the target only
the dashboards read on the source are listed, for the drift check. Validate, plans and a cutover's final sync
read every dashboard.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError, RetryLater
from dbsync.model import Resource, fingerprint, ref
from dbsync.runcache import CacheKey
from dbsync.watchers.base import Watcher, answers
from dbsync.watchers.identities import scim_records
from dbsync.watchers.listed_by_need import ListedByNeed
from dbsync.workspace import Workspace

PAGE_SIZE = 100
PAUSE = "pause_status"  # source_meta key: the source schedule's PAUSED / UNPAUSED
USER_NAMES: CacheKey[dict[str, str]] = CacheKey("dashboard_schedules:user-names")  # .part(side)
NAME = "name"  # source_meta key: "<dashboard>: <schedule>", for the cutover's lines
KIND = "dashboard_schedules"
LISTINGS = "dashboard_schedule_lists"  # the visits kind (and shared_listing) of each dashboard's schedules listing


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


Schedules = list[tuple[dict[str, Any], list[dict[str, Any]]]]  # (schedule, its subscriptions) of one dashboard


def schedules_of(
    ws: Workspace, concurrency: int = 1, read: Callable[[str], bool] = lambda _: True
) -> Iterator[tuple[dict[str, Any], Schedules | None]]:
    """(dashboard, its schedules with their subscriptions) of every active dashboard of `ws`; None for a
    dashboard `read` says not to read (by its id).

    The API lists schedules per dashboard: `concurrency` dashboards are read at a time, in listing order (one
    after another, 2,500 dashboards at 100 ms a call took 534 s of a daemon's single worker).
    """
    lakeview = ws.client.lakeview

    def of_dashboard(dashboard: Any) -> tuple[dict[str, Any], Schedules | None]:
        dashboard_id = dashboard.dashboard_id or ""
        if not read(dashboard_id):
            return dashboard.as_dict(), None
        try:
            schedules = [s.as_dict() for s in lakeview.list_schedules(dashboard_id, page_size=PAGE_SIZE)]
        except NotFound as err:
            if not _dashboard_still_there(ws, dashboard_id):
                return dashboard.as_dict(), []  # trashed between the listing and this read: its schedules went with it
            raise ListingError(
                f"{ws.side}: listing the schedules of dashboard {dashboard_id} answered 'not found' ({err}) though the "
                "dashboard still exists: a service fault, not a dashboard without schedules; it is listed again next "
                "cycle"
            ) from err
        with_subscriptions = [(schedule, _subscriptions(ws, dashboard_id, schedule)) for schedule in schedules]
        return dashboard.as_dict(), [(schedule, subs) for schedule, subs in with_subscriptions if subs is not None]

    with ThreadPoolExecutor(concurrency, thread_name_prefix=f"schedules-{ws.side}") as pool:
        yield from pool.map(of_dashboard, lakeview.list(page_size=PAGE_SIZE))


def _subscriptions(ws: Workspace, dashboard_id: str, schedule: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A schedule's subscriptions; None when the schedule was deleted since its dashboard's schedules were listed.

    A 404 for a schedule that still exists is a failed listing, never "no schedules": read as gone, it took the
    whole dashboard's schedules with it and their target copies were deleted.
    """
    schedule_id = schedule["schedule_id"]
    try:
        return [
            s.as_dict() for s in ws.client.lakeview.list_subscriptions(dashboard_id, schedule_id, page_size=PAGE_SIZE)
        ]
    except NotFound as err:
        if not answers(lambda: ws.client.lakeview.get_schedule(dashboard_id, schedule_id)):
            return None
        raise ListingError(
            f"{ws.side}: listing the subscriptions of dashboard schedule {schedule_key(dashboard_id, schedule_id)} "
            f"answered 'not found' ({err}) though the schedule still exists: a service fault; it is listed again next "
            "cycle"
        ) from err


def _dashboard_still_there(ws: Workspace, dashboard_id: str) -> bool:
    """Whether a dashboard whose schedules listing answered 404 is still active (one GET, only after a 404)."""
    try:
        state = ws.client.lakeview.get(dashboard_id).lifecycle_state
    except NotFound:
        return False
    except Exception:  # cannot tell: treat it as there, so the listing fails rather than comes back short
        return True
    return state is None or state.value != "TRASHED"


class ScheduleLists(ListedByNeed):
    """This cycle's view of which dashboards' schedules are read, and the schedules of the others as last seen.

    The workspace tree's schedule (tree_schedule.py) with a dashboard for a directory: a dashboard's schedules
    listing is read when due, and its revisit interval doubles while the listing stays the same (schedules change
    rarely; freshness.py), one cycle after it changed.
    """

    def __init__(self, ctx: SyncContext) -> None:
        settings = ctx.settings
        super().__init__(ctx, LISTINGS, [KIND], settings.min_revisit(KIND), settings.max_staleness(KIND))
        self.seen: dict[str, list[Resource]] = defaultdict(list)
        for _, key, hint, meta_json in ctx.store.last_seen([KIND]):
            meta = json.loads(meta_json) if meta_json else {}
            self.seen[split_key(key)[0]].append(Resource(KIND, key, meta.get(NAME) or key, hint, source_meta=meta))

    def was_listed(self, dashboard_id: str, hints: list[str | None]) -> None:
        digest = hashlib.blake2b(json.dumps(sorted(h or "" for h in hints)).encode(), digest_size=12).hexdigest()
        self.mark_listed(dashboard_id, self.changed(dashboard_id, digest), digest)

    def as_last_seen(self, dashboard_id: str) -> list[Resource]:
        self.mark_unlisted(dashboard_id)
        return self.seen.get(dashboard_id, [])

    def not_listed(self, key: str) -> bool:
        return split_key(key)[0] in self.unlisted

    def record(self, ctx: SyncContext) -> None:
        """Once the kind recorded its outcomes: the dashboards read now get their next read; those gone, forgotten."""
        self.record_next(ctx, by_rate=False)


LISTS: CacheKey[ScheduleLists] = CacheKey("dashboard_schedules:lists")


def _lists(ctx: SyncContext) -> ScheduleLists | None:
    """This run's schedule of the source's schedules listings: None when every dashboard is read (validate, plans,
    a cutover's final sync, or a `max_staleness` of 0)."""
    if not ctx.by_need or ctx.settings.max_staleness(KIND) <= 0:
        return None
    return ctx.cached(LISTS, lambda: ScheduleLists(ctx))


class DashboardScheduleWatcher(Watcher):
    kind = KIND
    # After their dashboards, on their worker. With `max_staleness` set, each dashboard's schedules read by need.
    declaration = Declaration(interval=900, worker="dashboards", shared_listing=LISTINGS)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        lists = _lists(ctx)
        if ws.side == "source":
            read = lists.due if lists is not None else (lambda _: True)
        else:  # the drift check looks only at the dashboards read on the source this cycle
            mapped = {ctx.idmap.target_key("dashboards", d) for d in lists.listed} if lists is not None else None
            read = (lambda d: d in mapped) if mapped is not None else (lambda _: True)
        try:
            for dashboard, schedules in schedules_of(ws, ctx.settings.concurrency, read):
                dashboard_id = dashboard["dashboard_id"]
                if schedules is None:
                    if ws.side == "source" and lists is not None:
                        yield from lists.as_last_seen(dashboard_id)
                    continue
                stubs = [self._stub(ctx, ws, dashboard, schedule, subs) for schedule, subs in schedules]
                if ws.side == "source" and lists is not None:
                    lists.was_listed(dashboard_id, [stub.version_hint for stub in stubs])
                yield from stubs
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list dashboard schedules: {err}") from err

    def _stub(
        self, ctx: SyncContext, ws: Workspace, dashboard: dict[str, Any], schedule: dict[str, Any], subs: list[dict]
    ) -> Resource:
        key = schedule_key(dashboard["dashboard_id"], schedule["schedule_id"])
        name = f"{dashboard.get('display_name', '')}: {schedule.get('display_name') or key}"
        if ws.side != "source":  # the target's copy as it stands, for the drift check
            raw = {**schedule_body(schedule), PAUSE: schedule.get(PAUSE), "subs": _raw_subs(subs)}
            return Resource(self.kind, key, name, fingerprint(raw))
        payload = self._payload(ctx, ws, dashboard["dashboard_id"], schedule, subs)
        meta = {PAUSE: schedule.get(PAUSE) or "UNPAUSED", NAME: name}
        hint = fingerprint({"payload": payload, "meta": meta})  # a pause change is recorded, not written
        return Resource(self.kind, key, name, hint, payload, source_meta=meta)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        """The listings carry every field; a schedule taken as last seen that must go again is read on its own."""
        if stub.payload is not None:
            return stub
        dashboard_id, schedule_id = split_key(stub.key)
        try:
            schedule = ws.client.lakeview.get_schedule(dashboard_id, schedule_id).as_dict()
            subs = _subscriptions(ws, dashboard_id, schedule)
        except NotFound:
            subs = None
        if subs is None:
            raise RetryLater(f"dashboard schedule {stub.key} disappeared from the source while it was read")
        dashboard = {"dashboard_id": dashboard_id, "display_name": str(stub.name).partition(": ")[0]}
        return self._stub(ctx, ws, dashboard, schedule, subs)

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One GET of the schedule (404 once its dashboard is trashed): the schedules listing pages by token, and a
        dashboard's listing that answered wrongly must not delete the copies of schedules the source still has."""
        dashboard_id, schedule_id = split_key(key)
        return answers(lambda: ws.client.lakeview.get_schedule(dashboard_id, schedule_id))

    def release_listing(self, ctx: SyncContext) -> None:
        """After the kind's outcomes are recorded: the dashboards read now get their next read."""
        lists = ctx.peek(LISTS)
        if lists is not None:
            lists.record(ctx)
        ctx.invalidate(LISTS)

    def as_last_seen(self, ctx: SyncContext, stub: Resource) -> bool:
        lists = ctx.peek(LISTS)
        return lists is not None and lists.not_listed(stub.key)

    def target_listed_by_need(self, ctx: SyncContext) -> bool:
        return _lists(ctx) is not None

    def listed_since(self, ctx: SyncContext) -> float | None:
        lists = ctx.peek(LISTS)
        return lists.oldest_listing() if lists is not None else None

    def _payload(
        self, ctx: SyncContext, ws: Workspace, dashboard_id: str, schedule: dict[str, Any], subscriptions: list[dict]
    ) -> dict[str, Any]:
        payload = {"dashboard_id": ref("dashboards", dashboard_id), **schedule_body(schedule)}
        if payload.get("warehouse_id"):
            payload["warehouse_id"] = ref("sql_warehouses", payload["warehouse_id"])
        raw = [s.get("subscriber") or {} for s in subscriptions]
        names = ctx.cached(USER_NAMES.part(ws.side), lambda: _user_names(ctx, ws))
        if ws.side == "source":
            _name_lost_subscribers(ctx, ws, schedule_key(dashboard_id, schedule["schedule_id"]), raw, names)
        subscribers = [self._subscriber(ctx, s, names) for s in raw]
        payload["subscribers"] = sorted((s for s in subscribers if s), key=fingerprint)
        return payload

    @staticmethod
    def _subscriber(ctx: SyncContext, subscriber: dict[str, Any], names: dict[str, str]) -> dict[str, Any] | None:
        """A destination as a Ref, a user by its (mapped) name; None for a user the source no longer has."""
        destination = (subscriber.get("destination_subscriber") or {}).get("destination_id")
        if destination:
            return {"destination_id": ref("notification_destinations", destination)}
        name = names.get(_user_id(subscriber))
        return {"user_name": ctx.principals.user(name)} if name else None


def _user_id(subscriber: dict[str, Any]) -> str:
    """The SCIM id of a user subscriber ("" for a destination)."""
    return str((subscriber.get("user_subscriber") or {}).get("user_id") or "")


def _user_names(ctx: SyncContext, ws: Workspace) -> dict[str, str]:
    """SCIM user id → userName of `ws` (from the users listing, read once per run)."""
    return {str(u.get("id")): str(u.get("userName")) for u in scim_records(ctx, ws, "users") if u.get("userName")}


def _name_lost_subscribers(
    ctx: SyncContext, ws: Workspace, key: str, raw: list[dict[str, Any]], names: dict[str, str]
) -> None:
    """The user subscribers the users listing did not name read by id into `names`, when the schedule had a user
    subscriber last cycle that is not named now.

    The users listing pages by offset (SCIM's startIndex): a user deleted on the source between two pages makes the
    next page start one later, and the user it skips dropped out of every schedule's subscribers, so the next write
    unsubscribed them on the target. A short listing is not an unsubscription. The ids are read only then: a
    subscription whose user is gone stays unnamed every cycle, and reading it every cycle would cost a GET for nothing.
    """
    unnamed = [i for i in map(_user_id, raw) if i and i not in names]
    prior = ctx.history.prior(KIND, key) if unnamed else None
    if prior is None:
        return
    before = {s["user_name"] for s in (prior.payload or {}).get("subscribers") or [] if s.get("user_name")}
    named = {ctx.principals.user(names[i]) for i in map(_user_id, raw) if i in names}
    if before - named:
        _look_up(ws, unnamed, names)


def _look_up(ws: Workspace, user_ids: list[str], names: dict[str, str]) -> None:
    """The users `names` lacks, read by id (one SCIM GET each) into it; one that answers 404 stays unnamed.

    Any other failure fails the listing: a schedule's subscribers are never decided half-read.
    """
    for user_id in user_ids:
        try:
            user_name = ws.client.users.get(user_id).user_name
        except NotFound:
            continue
        if user_name:
            names[user_id] = user_name


def _raw_subs(subscriptions: list[dict[str, Any]]) -> list[str]:
    return sorted(fingerprint(s.get("subscriber") or {}) for s in subscriptions)


def watcher_for(kind: str) -> DashboardScheduleWatcher:
    return DashboardScheduleWatcher()
