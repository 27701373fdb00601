"""Lakeview dashboard schedules and subscriptions between two emulated workspaces: copied onto the dashboard's
copy with the warehouse, subscribers (users through the email mapping, notification destinations through
the id map) remapped, PAUSED on the standby, and `dbsync cutover` unpausing exactly those that ran on the
source (pausing the source's), undone by `--rollback`.

Shapes: databricks-sdk `service/dashboards.py` (`Schedule`, `CronSchedule`, `SchedulePauseStatus`,
`Subscription`, `Subscriber`); the REST reference "Lakeview: create dashboard schedule" (PUT replaces the
schedule, `etag` guards concurrent updates). A schedule has no tags: a lost store finds its copy by cron,
timezone and display name on the dashboard's copy.
"""

from __future__ import annotations

import pytest
from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import dashboards as lv
from databricks.sdk.service import settings
from sql_objects import make_warehouse

from dbsync.cutover import Runbook, open_cutover_context
from dbsync.store import Store

KINDS = ["users", "notification_destinations", "sql_warehouses", "dashboards", "dashboard_schedules"]
MAPPING = {"mapping": {"emails": {"@old.example": "@new.example"}}, "identities": {"create_users": True}}
PAUSED, UNPAUSED = lv.SchedulePauseStatus.PAUSED, lv.SchedulePauseStatus.UNPAUSED


def _cron(expression: str = "0 0 8 * * ?", timezone: str = "Europe/Paris") -> lv.CronSchedule:
    return lv.CronSchedule(quartz_cron_expression=expression, timezone_id=timezone)


def _seed(pair: Pair) -> dict[str, str]:
    src = pair.src
    warehouse = make_warehouse(src)
    dashboard = src.lakeview.create(lv.Dashboard(display_name="KPIs", parent_path="/Shared", warehouse_id=warehouse))
    did = dashboard.dashboard_id or ""
    ana = src.users.create(user_name="ana@old.example")
    destination = src.notification_destinations.create(
        display_name="ops", config=settings.Config(email=settings.EmailConfig(addresses=["ops@example.com"]))
    )
    morning = src.lakeview.create_schedule(
        did, lv.Schedule(cron_schedule=_cron(), display_name="morning", warehouse_id=warehouse)
    )
    evening = src.lakeview.create_schedule(
        did, lv.Schedule(cron_schedule=_cron("0 0 18 * * ?"), display_name="evening", pause_status=PAUSED)
    )
    by_user = lv.Subscriber(user_subscriber=lv.SubscriptionSubscriberUser(user_id=int(ana.id or 0)))
    by_destination = lv.Subscriber(
        destination_subscriber=lv.SubscriptionSubscriberDestination(destination_id=destination.id or "")
    )
    for subscriber in (by_user, by_destination):
        src.lakeview.create_subscription(did, morning.schedule_id or "", lv.Subscription(subscriber=subscriber))
    return {"dashboard": did, "morning": morning.schedule_id or "", "evening": evening.schedule_id or ""}


def _target_dashboard(w: WorkspaceClient) -> str:
    return next(d.dashboard_id or "" for d in w.lakeview.list() if d.display_name == "KPIs")


def _schedules(w: WorkspaceClient, did: str) -> dict[str, lv.Schedule]:
    return {s.display_name or "": s for s in w.lakeview.list_schedules(did)}


def _states(w: WorkspaceClient, did: str) -> dict[str, str]:
    return {name: s.pause_status.value if s.pause_status else "" for name, s in _schedules(w, did).items()}


def test_schedules_reach_the_standby_paused_with_subscribers_remapped(pair: Pair) -> None:
    ids = _seed(pair)
    reports = pair.sync(only=KINDS, **MAPPING)
    assert reports["dashboard_schedules"].created == 2 and reports["dashboard_schedules"].errors == 0

    dst = pair.dst
    did = _target_dashboard(dst)
    schedules = _schedules(dst, did)
    assert _states(dst, did) == {"morning": "PAUSED", "evening": "PAUSED"}, "a standby sends no snapshot"
    morning = schedules["morning"]
    assert morning.cron_schedule.quartz_cron_expression == "0 0 8 * * ?"
    assert morning.cron_schedule.timezone_id == "Europe/Paris"
    target_warehouse = next(w.id for w in dst.warehouses.list() if w.name == "BI")
    assert morning.warehouse_id == target_warehouse
    subscribers = [s.subscriber.as_dict() for s in dst.lakeview.list_subscriptions(did, morning.schedule_id or "")]
    ana = next(u.id for u in dst.users.list() if u.user_name == "ana@new.example")
    destination = next(d.id for d in dst.notification_destinations.list() if d.display_name == "ops")
    assert sorted(subscribers, key=str) == sorted(
        [{"user_subscriber": {"user_id": int(ana or 0)}}, {"destination_subscriber": {"destination_id": destination}}],
        key=str,
    )

    store = Store(pair.state_path)
    metas = {p.key: p.source_meta.get("pause_status") for p in store.priors("dashboard_schedules")}
    store.close()
    did_source = ids["dashboard"]
    assert metas == {f"{did_source}/{ids['morning']}": "UNPAUSED", f"{did_source}/{ids['evening']}": "PAUSED"}

    # no change: nothing written to the target
    pair.reset_stats()
    reports = pair.sync(only=["dashboard_schedules"], **MAPPING)
    assert reports["dashboard_schedules"].created == reports["dashboard_schedules"].updated == 0
    assert pair.target_writes() == 0

    # a change on the source (cron, a subscriber removed) is an update of the same target schedule
    src = pair.src
    cron = _cron("0 30 7 * * ?")
    current = src.lakeview.get_schedule(ids["dashboard"], ids["morning"])
    src.lakeview.update_schedule(
        ids["dashboard"],
        ids["morning"],
        lv.Schedule(cron_schedule=cron, display_name="morning", etag=current.etag, warehouse_id=current.warehouse_id),
    )
    user_sub = next(
        s for s in src.lakeview.list_subscriptions(ids["dashboard"], ids["morning"]) if s.subscriber.user_subscriber
    )
    src.lakeview.delete_subscription(ids["dashboard"], ids["morning"], user_sub.subscription_id or "")
    reports = pair.sync(only=["dashboard_schedules"], **MAPPING)
    assert reports["dashboard_schedules"].updated == 1 and reports["dashboard_schedules"].errors == 0
    morning_after = _schedules(dst, did)["morning"]
    assert morning_after.schedule_id == morning.schedule_id, "edited in place, not created again"
    assert morning_after.cron_schedule.quartz_cron_expression == "0 30 7 * * ?"
    assert morning_after.pause_status == PAUSED
    subscribers = [s.subscriber.as_dict() for s in dst.lakeview.list_subscriptions(did, morning.schedule_id or "")]
    assert subscribers == [{"destination_subscriber": {"destination_id": destination}}]

    # a pause-state change on the source is recorded, not written (the standby stays paused)
    current = src.lakeview.get_schedule(ids["dashboard"], ids["evening"])
    src.lakeview.update_schedule(
        ids["dashboard"],
        ids["evening"],
        lv.Schedule(
            cron_schedule=current.cron_schedule, display_name="evening", pause_status=UNPAUSED, etag=current.etag
        ),
    )
    pair.reset_stats()
    pair.sync(only=["dashboard_schedules"], **MAPPING)
    assert pair.target_writes() == 0
    store = Store(pair.state_path)
    assert store.prior("dashboard_schedules", f"{ids['dashboard']}/{ids['evening']}").source_meta["pause_status"] == (
        "UNPAUSED"
    )
    store.close()

    # a schedule deleted on the source is deleted on the target (dbsync created it)
    src.lakeview.delete_schedule(ids["dashboard"], ids["evening"])
    reports = pair.sync(only=["dashboard_schedules"], **MAPPING)
    assert reports["dashboard_schedules"].deleted == 1
    assert set(_schedules(dst, did)) == {"morning"}


def test_a_lost_store_adopts_the_schedules_without_duplicates(pair: Pair) -> None:
    _seed(pair)
    pair.sync(only=KINDS, **MAPPING)
    did = _target_dashboard(pair.dst)
    before = {name: s.schedule_id for name, s in _schedules(pair.dst, did).items()}
    pair.state_path.unlink()
    for suffix in ("-wal", "-shm"):
        pair.state_path.with_name(pair.state_path.name + suffix).unlink(missing_ok=True)

    reports = pair.sync(only=KINDS, **MAPPING)
    assert reports["dashboard_schedules"].errors == 0 and reports["dashboard_schedules"].blocked == 0
    assert {name: s.schedule_id for name, s in _schedules(pair.dst, did).items()} == before
    morning = before["morning"] or ""
    assert len(list(pair.dst.lakeview.list_subscriptions(did, morning))) == 2, "no subscriber added twice"


def test_cutover_unpauses_what_ran_on_the_source_and_rollback_restores_both(pair: Pair) -> None:
    ids = _seed(pair)
    ready = MAPPING
    pair.sync(only=KINDS, **ready)
    did = _target_dashboard(pair.dst)
    assert _states(pair.dst, did) == {"morning": "PAUSED", "evening": "PAUSED"}

    ctx = open_cutover_context(pair.settings(**ready))
    lines = Runbook(ctx).plan()
    ctx.store.close()
    assert any("dashboard schedule" in line and "KPIs" in line for line in lines), lines

    ctx = open_cutover_context(pair.settings(**ready))
    Runbook(ctx).run()
    ctx.store.close()
    assert _states(pair.dst, did) == {"morning": "UNPAUSED", "evening": "PAUSED"}, "exactly what ran on the source"
    assert _states(pair.src, ids["dashboard"]) == {"morning": "PAUSED", "evening": "PAUSED"}
    morning = _schedules(pair.dst, did)["morning"]
    assert morning.cron_schedule.quartz_cron_expression == "0 0 8 * * ?", "only the pause state changed"

    ctx = open_cutover_context(pair.settings(**ready))
    Runbook(ctx).rollback()
    ctx.store.close()
    assert _states(pair.dst, did) == {"morning": "PAUSED", "evening": "PAUSED"}
    assert _states(pair.src, ids["dashboard"]) == {"morning": "UNPAUSED", "evening": "PAUSED"}


def test_a_subscriber_missing_on_the_target_is_left_out_and_added_once_it_exists(pair: Pair) -> None:
    _seed(pair)
    no_users = {"mapping": MAPPING["mapping"]}  # dbsync may not create users: the target's IdP provisions them
    reports = pair.sync(only=KINDS, **no_users)
    report = reports["dashboard_schedules"]
    assert (report.created, report.partial, report.errors) == (1, 1, 0), "partial: a subscriber is missing"
    did = _target_dashboard(pair.dst)
    morning = _schedules(pair.dst, did)["morning"].schedule_id or ""
    subscribers = [s.subscriber.as_dict() for s in pair.dst.lakeview.list_subscriptions(did, morning)]
    assert [list(s) for s in subscribers] == [["destination_subscriber"]], "the missing user is left out"
    store = Store(pair.state_path)
    statuses = {p.source_meta.get("name"): p.status for p in store.priors("dashboard_schedules")}
    store.close()
    assert statuses == {"KPIs: morning": "partial", "KPIs: evening": "synced"}

    ana = pair.dst.users.create(user_name="ana@new.example")  # provisioned on the target
    reports = pair.sync(only=["dashboard_schedules"], **no_users)
    subscribers = [s.subscriber.as_dict() for s in pair.dst.lakeview.list_subscriptions(did, morning)]
    assert {"user_subscriber": {"user_id": int(ana.id or 0)}} in subscribers and len(subscribers) == 2


LIST_SCHEDULES = "GET /api/2.0/lakeview/dashboards/{id}/schedules"


@pytest.mark.parametrize("hinted", [False, True], ids=["revisit", "audit-hint"])
def test_with_max_staleness_a_dashboards_schedules_are_read_by_need_and_none_is_lost(pair: Pair, hinted: bool) -> None:
    """At 2,500 dashboards the schedules' listing is ~5,000 calls a cycle (a call per dashboard, one per schedule).
    With `max_staleness` set, a dashboard whose schedules were read unchanged is not read again until its revisit
    comes: its schedules stay as last seen, neither written nor deleted, and a change there reaches the standby
    within `max_staleness`; an audit-log row naming the dashboard would make it due at once."""
    from conftest import endpoint_count
    from freezegun import freeze_time

    from dbsync import hints

    ids = _seed(pair)
    by_need = {**MAPPING, "kinds": {"dashboard_schedules": {"max_staleness": 3600}}}
    with freeze_time("2026-12-05 00:00:00") as clock:
        pair.sync(only=KINDS, **by_need)
        clock.tick(3600)
        pair.sync(only=["dashboard_schedules"], **by_need)  # due after the window: read, unchanged
        clock.tick(900)
        current = pair.src.lakeview.get_schedule(ids["dashboard"], ids["morning"])
        pair.src.lakeview.update_schedule(
            ids["dashboard"],
            ids["morning"],
            lv.Schedule(cron_schedule=_cron("0 30 7 * * ?"), display_name="morning", etag=current.etag),
        )
        pair.reset_stats()
        report = pair.sync(only=["dashboard_schedules"], **by_need)["dashboard_schedules"]
        assert endpoint_count(pair.source, LIST_SCHEDULES) == endpoint_count(pair.target, LIST_SCHEDULES) == 0
        assert report.not_due == 2 and report.updated == report.deleted == report.errors == 0
        did = _target_dashboard(pair.dst)
        target = _schedules(pair.dst, did)
        assert set(target) == {"morning", "evening"}, "nothing deleted from a dashboard not read"
        assert target["morning"].cron_schedule.quartz_cron_expression == "0 0 8 * * ?"

        if hinted:  # what an audit-log row naming the dashboard does (dbsync/hints.py)
            hints.due_now(pair.context(**by_need), "dashboards", [ids["dashboard"]])
        else:
            clock.tick(3600)  # its revisit comes within max_staleness
        report = pair.sync(only=["dashboard_schedules"], **by_need)["dashboard_schedules"]
        assert report.updated == 1 and report.errors == 0
        assert _schedules(pair.dst, did)["morning"].cron_schedule.quartz_cron_expression == "0 30 7 * * ?"

        clock.tick(900)
        pair.reset_stats()
        report = pair.sync(only=["dashboard_schedules"], **by_need)["dashboard_schedules"]  # changed: next cycle
        assert endpoint_count(pair.source, LIST_SCHEDULES) == 1 and report.updated == 0


def test_by_need_a_schedule_that_waited_for_its_dashboard_goes_through_before_its_dashboard_is_due(pair: Pair) -> None:
    """A schedule blocked on its dashboard's copy is not settled: taken as last seen (its dashboard not due), it is
    read on its own (one GET) and written once the dashboard is on the standby, not an hour later."""
    from freezegun import freeze_time

    _seed(pair)
    by_need = {**MAPPING, "kinds": {"dashboard_schedules": {"max_staleness": 3600}}}
    with freeze_time("2026-12-05 00:00:00") as clock:
        report = pair.sync(only=["dashboard_schedules"], **by_need)["dashboard_schedules"]
        assert report.blocked == 2, report  # no dashboard copy yet
        pair.sync(only=KINDS[:-1], **by_need)
        clock.tick(60)  # far from the dashboard's revisit
        report = pair.sync(only=["dashboard_schedules"], **by_need)["dashboard_schedules"]
        assert report.created == 2 and report.errors == 0, report
        assert _states(pair.dst, _target_dashboard(pair.dst)) == {"morning": "PAUSED", "evening": "PAUSED"}


def test_a_subscriber_added_on_the_standby_to_dbsyncs_schedule_stays_when_the_source_changes(pair: Pair) -> None:
    """dbsync removes only the subscribers it added: one the DR team subscribed on the standby stays through an
    update (a cron change, a subscriber dropped on the source)."""
    ids = _seed(pair)
    assert pair.sync(only=KINDS, **MAPPING)["dashboard_schedules"].errors == 0
    dst = pair.dst
    did = _target_dashboard(dst)
    morning = _schedules(dst, did)["morning"].schedule_id or ""
    oncall = dst.users.create(user_name="oncall@new.example")  # the DR team's, on the standby only
    mine = lv.Subscriber(user_subscriber=lv.SubscriptionSubscriberUser(user_id=int(oncall.id or 0)))
    dst.lakeview.create_subscription(did, morning, lv.Subscription(subscriber=mine))

    src = pair.src
    current = src.lakeview.get_schedule(ids["dashboard"], ids["morning"])
    src.lakeview.update_schedule(
        ids["dashboard"],
        ids["morning"],
        lv.Schedule(cron_schedule=_cron("0 30 7 * * ?"), display_name="morning", etag=current.etag),
    )
    for subscription in src.lakeview.list_subscriptions(ids["dashboard"], ids["morning"]):
        src.lakeview.delete_subscription(ids["dashboard"], ids["morning"], subscription.subscription_id or "")
    reports = pair.sync(only=["dashboard_schedules"], **MAPPING)

    assert reports["dashboard_schedules"].updated == 1 and reports["dashboard_schedules"].errors == 0
    subscribers = [s.subscriber.as_dict() for s in dst.lakeview.list_subscriptions(did, morning)]
    assert subscribers == [{"user_subscriber": {"user_id": int(oncall.id or 0)}}]  # ana and ops were dbsync's
