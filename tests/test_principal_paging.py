"""A principal a SCIM listing skipped is never a reason to take it out of something on the target.

SCIM lists by offset (startIndex): a principal deleted between two pages makes the next page start one later, and
the principal it skips looks absent though it exists. The emulator's `skip_object` fault rule answers such a page.
On the target, dbsync's index of principals (dbsync.principals.ScimIndex) is read that way: a user it skipped was
removed from a target group, written out of a job's run_as, unsubscribed from a dashboard schedule. On the source,
the users listing names each schedule subscriber: a subscriber it skipped was dropped from the payload, and the
next write unsubscribed it on the target. All over HTTP with the real SDK.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Pair
from databricks.sdk.service import compute, iam, jobs
from databricks.sdk.service import dashboards as lv
from sql_objects import make_warehouse
from test_sync_metastore import MetastorePair, mp  # noqa: F401

from dbsync import principals
from dbsync.watchers import identities

USERS = "/api/2.0/preview/scim/v2/Users"
NAMES = [f"u{i}@example.com" for i in range(4)]
SCHEDULE_KINDS = ["sql_warehouses", "dashboards", "dashboard_schedules"]


def _shifted_users_page() -> dict[str, Any]:
    """The second page (of two users) of the next users listing starts one user later (once): one is skipped."""
    return {"action": "skip_object", "method": "GET", "path": USERS, "query": {"startIndex": "3"}, "times": 1}


@pytest.fixture
def small_target_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """dbsync's index of the target's principals reads two a page (a real workspace pages by 1,000)."""
    monkeypatch.setattr(principals, "SCIM_PAGE", 2)


@pytest.fixture
def small_source_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source's SCIM listings read two principals a page."""
    monkeypatch.setattr(identities, "SCIM_PAGE", 2)


def _user_ids(w: Any) -> dict[str, str]:
    return {u.user_name or "": u.id or "" for u in w.users.list()}


# -- the target's index skipped a user ------------------------------------------------------------
def _members(w: Any, group: str) -> set[str]:
    found = next(g for g in w.groups.list() if g.display_name == group)
    by_id = {v: k for k, v in _user_ids(w).items()}
    return {by_id.get(m.value or "", m.value or "") for m in w.groups.get(found.id).members or []}


def test_a_user_the_targets_index_skipped_stays_a_member_of_an_adopted_group(
    pair: Pair, small_target_index: None
) -> None:
    for name in NAMES:
        pair.src.users.create(user_name=name)
        pair.dst.users.create(user_name=name)  # the target's IdP provisions users and the group
    source_ids, target_ids = _user_ids(pair.src), _user_ids(pair.dst)
    pair.src.groups.create(display_name="team", members=[iam.ComplexValue(value=source_ids[n]) for n in NAMES[:3]])
    pair.dst.groups.create(display_name="team", members=[iam.ComplexValue(value=target_ids[n]) for n in NAMES[:3]])
    kinds = ["users", "groups", "group_members"]
    assert pair.sync(only=kinds)["group_members"].errors == 0
    group = next(g for g in pair.src.groups.list() if g.display_name == "team")
    pair.src.groups.patch(  # a change on the source: the group's membership is written again
        group.id or "",
        operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": source_ids[NAMES[3]]}])],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )

    pair.target.set_faults(rules=[_shifted_users_page()])  # the target's index: admin, u0 | u2, u3 | ...
    report = pair.sync(only=kinds)["group_members"]

    assert _members(pair.dst, "team") == set(NAMES)
    assert report.errors == 0 and report.updated == 1  # complete, not partial: no member is "missing"


def _job_task() -> jobs.Task:
    cluster = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
    return jobs.Task(task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/Shared/x"), new_cluster=cluster)


def test_a_run_as_user_the_targets_index_skipped_stays_the_jobs_run_as(pair: Pair, small_target_index: None) -> None:
    for name in NAMES:
        pair.src.users.create(user_name=name)
        pair.dst.users.create(user_name=name)
    job_id = pair.src.jobs.create(name="nightly", tasks=[_job_task()], run_as=jobs.JobRunAs(user_name=NAMES[1])).job_id
    assert pair.sync(only=["jobs"])["jobs"].created == 1
    pair.src.jobs.update(job_id or 0, new_settings=jobs.JobSettings(name="nightly-etl"))

    pair.target.set_faults(rules=[_shifted_users_page()])  # the target's index: admin, u0 | u2, u3 | ...
    report = pair.sync(only=["jobs"])["jobs"]

    [copy] = list(pair.dst.jobs.list())
    settings = pair.dst.jobs.get(copy.job_id or 0).settings
    assert settings.name == "nightly-etl"
    assert (settings.run_as.user_name if settings.run_as else None) == NAMES[1]
    assert report.updated == 1 and report.errors == 0  # complete, not partial: run_as is not "missing"


def test_a_grantee_the_targets_index_skipped_keeps_its_grant(mp: MetastorePair, small_target_index: None) -> None:  # noqa: F811
    for name in ("bob@example.com", "carol@example.com", "dave@example.com"):
        mp.pair.src.users.create(user_name=name)
        mp.pair.dst.users.create(user_name=name)
    mp.src.run("CREATE TABLE payroll (id BIGINT) USING PARQUET LOCATION 's3://lake/payroll'")
    for name in ("bob@example.com", "carol@example.com"):
        mp.src.run(f"GRANT SELECT ON TABLE payroll TO `{name}`")
    assert mp.sync()["table_acls"].errors == 0
    granted = mp.dst.grants("TABLE payroll")
    assert ("bob@example.com", "SELECT") in granted

    mp.pair.target.set_faults(rules=[_shifted_users_page()])  # the target's index: admin, alice | carol, dave
    report = mp.sync()["table_acls"]

    assert mp.dst.grants("TABLE payroll") == granted
    assert report.errors == 0


# -- dashboard schedule subscribers ---------------------------------------------------------------
def _schedule_with_subscribers(pair: Pair) -> tuple[str, str]:
    """A source dashboard with one schedule every user subscribes to, replicated: (dashboard id, schedule id)."""
    for name in NAMES:
        pair.src.users.create(user_name=name)
        pair.dst.users.create(user_name=name)
    warehouse = make_warehouse(pair.src)
    dashboard = pair.src.lakeview.create(
        lv.Dashboard(display_name="KPIs", parent_path="/Shared", warehouse_id=warehouse)
    )
    dashboard_id = dashboard.dashboard_id or ""
    cron = lv.CronSchedule(quartz_cron_expression="0 0 8 * * ?", timezone_id="UTC")
    schedule = pair.src.lakeview.create_schedule(dashboard_id, lv.Schedule(cron_schedule=cron, display_name="daily"))
    schedule_id = schedule.schedule_id or ""
    for user_id in _user_ids(pair.src).values():
        subscriber = lv.Subscriber(user_subscriber=lv.SubscriptionSubscriberUser(user_id=int(user_id)))
        pair.src.lakeview.create_subscription(dashboard_id, schedule_id, lv.Subscription(subscriber=subscriber))
    report = pair.sync(only=SCHEDULE_KINDS)["dashboard_schedules"]
    assert report.created == 1 and report.errors == 0
    return dashboard_id, schedule_id


def _target_subscribers(pair: Pair) -> set[str]:
    dst = pair.dst
    dashboard_id = next(d.dashboard_id or "" for d in dst.lakeview.list() if d.display_name == "KPIs")
    [schedule] = list(dst.lakeview.list_schedules(dashboard_id))
    by_id = {v: k for k, v in _user_ids(dst).items()}
    return {
        by_id[str(s.subscriber.user_subscriber.user_id)]
        for s in dst.lakeview.list_subscriptions(dashboard_id, schedule.schedule_id or "")
        if s.subscriber and s.subscriber.user_subscriber
    }


def test_a_subscriber_the_source_users_listing_skipped_stays_subscribed_on_the_target(
    pair: Pair, small_source_listing: None
) -> None:
    _schedule_with_subscribers(pair)
    subscribed = _target_subscribers(pair)
    assert set(NAMES) <= subscribed

    pair.source.set_faults(rules=[_shifted_users_page()])  # the source's users: admin, u0 | u2, u3 | ...
    report = pair.sync(only=SCHEDULE_KINDS)["dashboard_schedules"]

    assert _target_subscribers(pair) == subscribed
    assert report.errors == 0 and report.updated == 0  # the schedule did not change


def test_a_subscriber_the_targets_index_skipped_stays_subscribed_on_the_target(
    pair: Pair, small_target_index: None
) -> None:
    dashboard_id, schedule_id = _schedule_with_subscribers(pair)
    subscribed = _target_subscribers(pair)
    current = pair.src.lakeview.get_schedule(dashboard_id, schedule_id)
    cron = lv.CronSchedule(quartz_cron_expression="0 30 7 * * ?", timezone_id="UTC")
    pair.src.lakeview.update_schedule(  # a change on the source: the schedule and its subscribers are written again
        dashboard_id, schedule_id, lv.Schedule(cron_schedule=cron, display_name="daily", etag=current.etag)
    )

    pair.target.set_faults(rules=[_shifted_users_page()])  # the target's index: admin, u0 | u2, u3 | ...
    report = pair.sync(only=SCHEDULE_KINDS)["dashboard_schedules"]

    assert _target_subscribers(pair) == subscribed
    assert report.updated == 1 and report.errors == 0
