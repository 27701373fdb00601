"""dbsync never deletes on the target because a source listing looked short or empty by accident.

A listing paged by offset (SCIM's startIndex, the jobs page token) skips an object when another is deleted on the
source between two of its pages: the emulator's `skip_object` fault rule answers a page without one of its objects,
which is what the service answers then. A planned delete is confirmed on the source (one read) before it is made,
and a group's member whose user a listing skipped stays a member. A 404 on one dashboard's schedules listing or on
one schema's SHOW TABLES for objects that still exist fails the listing instead of emptying it, and a catalog taken
out of `metastore.catalogs` is out of scope, never "dropped on the source". All over HTTP with the real SDK.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Pair
from databricks.sdk.service import compute, iam, jobs
from databricks.sdk.service import dashboards as lv
from databricks.sdk.service import pipelines as dlt
from sql_objects import make_warehouse
from test_sync_metastore import MetastorePair, mp  # noqa: F401

from dbsync.watchers import identities

SCIM = "/api/2.0/preview/scim/v2"
JOBS_LIST = "/api/2.2/jobs/list"
SCHEDULE_KINDS = ["sql_warehouses", "dashboards", "dashboard_schedules"]
METASTORE_KINDS = ["schemas", "tables", "views"]


@pytest.fixture
def small_scim_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two principals a SCIM page (a real workspace pages by 1,000): the second page is the one shifted."""
    monkeypatch.setattr(identities, "SCIM_PAGE", 2)


def _shifted(path: str) -> dict[str, Any]:
    """The second page of the next SCIM listing of `path` starts one principal later (once)."""
    return {"action": "skip_object", "method": "GET", "path": path, "query": {"startIndex": "3"}, "times": 1}


def _kept_events(pair: Pair, kind: str) -> list[dict[str, Any]]:
    ctx = pair.context()
    try:
        return [e for e in ctx.store.events(200, outcome="kept") if e["kind"] == kind]
    finally:
        ctx.store.close()


# -- offset paging: an object skipped by the listing is not deleted --------------------------------
def test_a_group_a_shifted_scim_page_skipped_is_kept_on_the_target(pair: Pair, small_scim_pages: None) -> None:
    names = [f"team-{i}" for i in range(6)]
    for name in names:
        pair.src.groups.create(display_name=name)
    assert pair.sync(only=["groups"])["groups"].created == 6

    pair.source.set_faults(rules=[_shifted(f"{SCIM}/Groups")])  # pages: admins, team-0 | team-2, team-3 | ...
    report = pair.sync(only=["groups"])["groups"]

    assert report.deleted == 0 and report.errors == 0
    assert set(names) <= {g.display_name for g in pair.dst.groups.list()}
    [kept] = _kept_events(pair, "groups")
    assert kept["source_key"] == "team-1" and "the source still has it" in kept["message"]


def test_a_group_deleted_on_the_source_is_still_deleted_on_the_target(pair: Pair) -> None:
    created = [pair.src.groups.create(display_name=f"team-{i}") for i in range(6)]
    pair.sync(only=["groups"])

    pair.src.groups.delete(created[0].id or "")
    report = pair.sync(only=["groups"])["groups"]

    assert report.deleted == 1
    assert "team-0" not in {g.display_name for g in pair.dst.groups.list()}


def _members(w: Any, group: str) -> set[str]:
    found = next(g for g in w.groups.list() if g.display_name == group)
    by_id = {u.id: u.user_name for u in w.users.list()}
    return {by_id.get(m.value, m.value) for m in w.groups.get(found.id).members or []}


def test_a_user_a_shifted_scim_page_skipped_stays_a_member_of_the_target_group(
    pair: Pair, small_scim_pages: None
) -> None:
    for i in range(4):
        pair.src.users.create(user_name=f"u{i}@example.com")
        pair.dst.users.create(user_name=f"u{i}@example.com")  # the target's IdP provisions them
    listed = list(pair.src.users.list())
    pair.src.groups.create(display_name="team", members=[iam.ComplexValue(value=u.id) for u in listed])
    kinds = ["users", "groups", "group_members"]
    assert pair.sync(only=kinds)["group_members"].errors == 0
    assert _members(pair.dst, "team") == {u.user_name for u in listed}

    pair.source.set_faults(rules=[_shifted(f"{SCIM}/Users")])  # pages: admin, u0 | u2, u3: u1 is not listed
    reports = pair.sync(only=kinds)

    assert reports["group_members"].errors == 0 and reports["users"].deleted == 0
    assert _members(pair.dst, "team") == {u.user_name for u in listed}
    assert [e["source_key"] for e in _kept_events(pair, "users")] == ["u1@example.com"]


def _task() -> jobs.Task:
    cluster = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
    return jobs.Task(task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/Shared/x"), new_cluster=cluster)


def test_a_job_a_shifted_jobs_page_skipped_is_kept_on_the_target(pair: Pair) -> None:
    for i in range(6):
        pair.src.jobs.create(name=f"job-{i}", tasks=[_task()])
    assert pair.sync(only=["jobs"])["jobs"].created == 6

    # One job missing from the listing, as when another is deleted while a page is read (the token is an offset).
    pair.source.set_faults(rules=[{"action": "skip_object", "method": "GET", "path": JOBS_LIST, "times": 1}])
    report = pair.sync(only=["jobs"])["jobs"]

    assert report.deleted == 0 and report.errors == 0
    assert {j.settings.name for j in pair.dst.jobs.list() if j.settings} == {f"job-{i}" for i in range(6)}
    assert len(_kept_events(pair, "jobs")) == 1


# -- a 404 for something that still exists fails the listing ------------------------------------
def _dashboards_with_schedules(pair: Pair) -> dict[str, str]:
    warehouse = make_warehouse(pair.src)
    ids = {}
    for i in range(3):
        dashboard = pair.src.lakeview.create(
            lv.Dashboard(display_name=f"D{i}", parent_path="/Shared", warehouse_id=warehouse)
        )
        ids[f"D{i}"] = dashboard.dashboard_id or ""
        for hour in (6, 8, 10):
            cron = lv.CronSchedule(quartz_cron_expression=f"0 0 {hour} * * ?", timezone_id="UTC")
            pair.src.lakeview.create_schedule(ids[f"D{i}"], lv.Schedule(cron_schedule=cron, display_name=f"s{hour}"))
    first = pair.sync(only=SCHEDULE_KINDS)["dashboard_schedules"]
    assert first.created == 9 and first.errors == 0
    return ids


def _target_schedules(pair: Pair) -> int:
    return sum(len(list(pair.dst.lakeview.list_schedules(d.dashboard_id or ""))) for d in pair.dst.lakeview.list())


def test_a_404_on_a_dashboards_schedules_listing_deletes_none_of_its_schedule_copies(pair: Pair) -> None:
    ids = _dashboards_with_schedules(pair)
    path = f"/api/2.0/lakeview/dashboards/{ids['D0']}/schedules"
    pair.source.set_faults(rules=[{"action": "not_found", "method": "GET", "path": path, "times": 1}])

    report = pair.sync(only=SCHEDULE_KINDS)["dashboard_schedules"]

    assert report.deleted == 0 and report.outcome == "listing_failed"
    assert "still exists" in (report.message or "")
    assert _target_schedules(pair) == 9
    assert pair.sync(only=SCHEDULE_KINDS)["dashboard_schedules"].outcome == "ok"  # listed whole again


def test_a_404_on_one_schedules_subscriptions_deletes_none_of_the_dashboards_schedule_copies(pair: Pair) -> None:
    ids = _dashboards_with_schedules(pair)
    schedule = next(iter(pair.src.lakeview.list_schedules(ids["D1"])))
    path = f"/api/2.0/lakeview/dashboards/{ids['D1']}/schedules/{schedule.schedule_id}/subscriptions"
    pair.source.set_faults(rules=[{"action": "not_found", "method": "GET", "path": path, "times": 1}])

    report = pair.sync(only=SCHEDULE_KINDS)["dashboard_schedules"]

    assert report.deleted == 0 and report.outcome == "listing_failed"
    assert _target_schedules(pair) == 9


def test_a_trashed_dashboards_schedule_copies_are_still_deleted(pair: Pair) -> None:
    ids = _dashboards_with_schedules(pair)
    pair.src.lakeview.trash(ids["D2"])

    report = pair.sync(only=["dashboard_schedules"])["dashboard_schedules"]

    assert report.deleted == 3 and report.outcome == "ok"


def test_a_schema_not_found_for_a_schema_that_exists_drops_nothing_on_the_target(mp: MetastorePair) -> None:  # noqa: F811
    for statement in [
        "CREATE SCHEMA finance",
        "CREATE SCHEMA sales",
        *(f"CREATE TABLE finance.t{i} (id BIGINT) USING PARQUET LOCATION 's3://lake/t{i}'" for i in range(6)),
        "CREATE VIEW finance.v AS SELECT id FROM finance.t0",
        "CREATE TABLE sales.orders (id BIGINT) USING PARQUET LOCATION 's3://lake/orders'",
        "CREATE VIEW sales.recent AS SELECT id FROM sales.orders",
    ]:
        mp.src.run(statement)
    first = mp.sync(only=METASTORE_KINDS)
    assert first["tables"].created == 7 and first["views"].created == 2

    show_tables = "SHOW TABLES IN `hive_metastore`.`sales`"
    rule = {"action": "schema_not_found", "path": "/api/2.0/sql/statements", "statement": show_tables, "times": 1}
    mp.pair.source.set_faults(rules=[rule])
    second = mp.sync(only=METASTORE_KINDS)

    assert second["tables"].outcome == "listing_failed" and "still exists" in (second["tables"].message or "")
    assert {r[1] for r in mp.dst.run("SHOW TABLES IN sales")} == {"orders", "recent"}
    assert mp.sync(only=METASTORE_KINDS)["views"].outcome == "ok"


def test_a_table_dropped_on_the_source_is_still_dropped_on_the_target(mp: MetastorePair) -> None:  # noqa: F811
    mp.src.run("CREATE SCHEMA sales")
    for i in range(4):
        mp.src.run(f"CREATE TABLE sales.t{i} (id BIGINT) USING PARQUET LOCATION 's3://lake/t{i}'")
    mp.sync(only=METASTORE_KINDS)

    mp.src.run("DROP TABLE sales.t0")
    assert mp.sync(only=METASTORE_KINDS)["tables"].deleted == 1
    assert {r[1] for r in mp.dst.run("SHOW TABLES IN sales")} == {"t1", "t2", "t3"}


# -- a key the configuration no longer covers is out of scope ----------------------------------
def test_a_catalog_taken_out_of_the_config_keeps_its_copies_on_the_target(mp: MetastorePair) -> None:  # noqa: F811
    for side in (mp.src, mp.dst):
        side.run("CREATE CATALOG sales")
    statements = ["CREATE SCHEMA finance", "CREATE SCHEMA sales.eu"]
    statements += [f"CREATE TABLE finance.t{i} (id BIGINT) USING PARQUET LOCATION 's3://lake/t{i}'" for i in range(8)]
    statements += ["CREATE TABLE sales.eu.orders (id BIGINT) USING PARQUET LOCATION 's3://lake/orders'"]
    statements += ["CREATE VIEW finance.v AS SELECT id FROM finance.t0", "CREATE VIEW sales.eu.v AS SELECT 1 AS x"]
    for statement in statements:
        mp.src.run(statement)
    warehouses = {"source_warehouse_id": mp.src.id, "target_warehouse_id": mp.dst.id}
    first = mp.sync(only=METASTORE_KINDS, metastore={**warehouses, "catalogs": ["hive_metastore", "sales"]})
    assert first["tables"].created == 9

    second = mp.sync(only=METASTORE_KINDS, metastore={**warehouses, "catalogs": ["hive_metastore"]})

    assert {k: r.deleted for k, r in second.items()} == {k: 0 for k in METASTORE_KINDS}
    assert "eu" in {r[0] for r in mp.dst.run("SHOW SCHEMAS IN sales")}
    assert {r[1] for r in mp.dst.run("SHOW TABLES IN sales.eu")} == {"orders", "v"}


# -- kinds whose listing pages by token (an offset): clusters, pipelines, SQL warehouses ------------
def _make_cluster(w: Any, i: int) -> None:
    w.clusters.create(cluster_name=f"c{i}", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)


def _make_pipeline(w: Any, i: int) -> None:
    w.pipelines.create(name=f"p{i}", libraries=[dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path="/x"))])


LISTED_BY_TOKEN = {
    "clusters": ("/api/2.1/clusters/list", _make_cluster, lambda w: [c.cluster_name for c in w.clusters.list()]),
    "pipelines": ("/api/2.0/pipelines", _make_pipeline, lambda w: [p.name for p in w.pipelines.list_pipelines()]),
    "sql_warehouses": (
        "/api/2.0/sql/warehouses",
        lambda w, i: make_warehouse(w, f"wh{i}"),
        lambda w: [x.name for x in w.warehouses.list()],
    ),
}


@pytest.mark.parametrize("kind", sorted(LISTED_BY_TOKEN))
def test_an_object_a_shifted_page_skipped_is_kept_on_the_target(pair: Pair, kind: str) -> None:
    path, make, names = LISTED_BY_TOKEN[kind]
    for i in range(6):
        make(pair.src, i)
    assert pair.sync(only=[kind])[kind].created == 6
    before = sorted(names(pair.dst))

    pair.source.set_faults(rules=[{"action": "skip_object", "method": "GET", "path": path, "times": 1}])
    report = pair.sync(only=[kind])[kind]

    assert sorted(names(pair.dst)) == before
    assert report.deleted == 0 and report.errors == 0
    assert len(_kept_events(pair, kind)) == 1
