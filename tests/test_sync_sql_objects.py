"""SQL queries, alerts and Lakeview dashboards between two emulated workspaces (and a lost store
adopting them, with MLflow objects): what a user would check on the target.
"""

from __future__ import annotations

import json

import pytest
from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service import iam, sql
from databricks.sdk.service.dashboards import Dashboard
from sql_objects import make_alert as _alert
from sql_objects import make_query as _query
from sql_objects import make_warehouse as _warehouse

SQL_KINDS = ["sql_warehouses", "sql_queries", "sql_alerts", "permissions"]
MLFLOW_KINDS = ["mlflow_experiments", "registered_models", "permissions"]


def _by_name(items: list) -> dict:
    return {i.display_name: i for i in items}


def _source_gets_by_id(pair: Pair, prefix: str) -> int:
    return sum(
        v["count"]
        for k, v in pair.source.stats.document()["endpoints"].items()
        if k.startswith(f"GET {prefix}/") and "{" in k
    )


def test_queries_and_alerts_reach_the_target_with_remapped_references(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    warehouse = _warehouse(src)
    lookup = _query(src, "regions", warehouse)
    param = sql.QueryParameter(
        name="region", query_backed_value=sql.QueryBackedValue(query_id=lookup.id, values=["emea"])
    )
    revenue = _query(src, "revenue", warehouse, description="daily revenue", tags=["finance"], parameters=[param])
    _alert(src, "revenue drop", revenue.id or "")
    src.groups.create(display_name="analysts")
    dst.groups.create(display_name="analysts")
    acl = [iam.AccessControlRequest(group_name="analysts", permission_level=iam.PermissionLevel.CAN_RUN)]
    src.permissions.set("queries", revenue.id or "", access_control_list=acl)

    reports = pair.sync(only=SQL_KINDS)
    assert all(r.errors == r.blocked == 0 for r in reports.values()), reports

    target_warehouse = next(iter(dst.warehouses.list())).id
    assert target_warehouse != warehouse
    queries = _by_name(list(dst.queries.list()))
    target_revenue = dst.queries.get(queries["revenue"].id)
    assert target_revenue.warehouse_id == target_warehouse  # remapped, not copied
    assert target_revenue.parent_path == "/Workspace/Shared"
    assert (target_revenue.description, target_revenue.tags) == ("daily revenue", ["finance"])
    backed = target_revenue.parameters[0].query_backed_value  # type: ignore[index]
    assert backed.query_id == queries["regions"].id  # type: ignore[union-attr]
    (alert,) = dst.alerts.list()
    assert alert.query_id == queries["revenue"].id and alert.query_id != revenue.id
    entries = dst.permissions.get("queries", queries["revenue"].id or "").access_control_list or []
    assert any(e.group_name == "analysts" and e.all_permissions[0].permission_level.value == "CAN_RUN" for e in entries)  # type: ignore[index,union-attr]

    # A no-change cycle reads the listings only and writes nothing.
    pair.reset_stats()
    reports = pair.sync(only=["sql_queries", "sql_alerts"])
    assert pair.target_writes() == 0
    assert _source_gets_by_id(pair, "/api/2.0/sql") == 0
    assert all(r.created == r.updated == r.deleted == 0 for r in reports.values())

    # Edits are applied in place; a trashed source query is trashed on the target.
    src.queries.update(
        revenue.id or "", "query_text,description", query=sql.UpdateQueryRequestQuery(query_text="SELECT 2")
    )
    src.alerts.update(
        next(iter(src.alerts.list())).id or "",
        "seconds_to_retrigger",
        alert=sql.UpdateAlertRequestAlert(seconds_to_retrigger=600),
    )
    src.queries.delete(lookup.id or "")
    src.queries.update(revenue.id or "", "parameters", query=sql.UpdateQueryRequestQuery(parameters=[]))
    reports = pair.sync(only=["sql_queries", "sql_alerts"])
    assert reports["sql_queries"].updated == 1 and reports["sql_queries"].deleted == 1
    edited = dst.queries.get(queries["revenue"].id)
    assert (edited.query_text, edited.description) == ("SELECT 2", None)
    assert [q.display_name for q in dst.queries.list()] == ["revenue"]
    assert next(iter(dst.alerts.list())).seconds_to_retrigger == 600

    # The last alert going is an empty listing: the delete guard holds it until an operator confirms.
    src.alerts.delete(next(iter(src.alerts.list())).id or "")
    assert pair.sync(only=["sql_alerts"])["sql_alerts"].outcome == "delete_guard"
    assert pair.sync(only=["sql_alerts"], force_deletes=True)["sql_alerts"].deleted == 1
    assert list(dst.alerts.list()) == []


def test_a_lost_store_adopts_queries_dashboards_and_mlflow_objects(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    warehouse = _warehouse(src)
    query = _query(src, "kpis", warehouse)
    _alert(src, "kpi alert", query.id or "")
    src.lakeview.create(Dashboard(display_name="KPIs", parent_path="/Shared", warehouse_id=warehouse))
    src.experiments.create_experiment("/Shared/churn")
    src.model_registry.create_model("churn")
    src.model_registry.create_model_version("churn", "dbfs:/m/1")
    kinds = [*SQL_KINDS, "dashboards", *MLFLOW_KINDS]
    pair.sync(only=kinds)
    before = _target_objects(dst)

    pair.state_path.unlink()  # re-importing into a fresh state must not duplicate anything
    for suffix in ("-wal", "-shm"):
        pair.state_path.with_name(pair.state_path.name + suffix).unlink(missing_ok=True)
    reports = pair.sync(only=kinds)
    assert all(r.errors == 0 for r in reports.values()), reports
    assert _target_objects(dst) == before


def _target_objects(w: WorkspaceClient) -> dict[str, list[str]]:
    return {
        "queries": sorted(q.id or "" for q in w.queries.list()),
        "alerts": sorted(a.id or "" for a in w.alerts.list()),
        "dashboards": sorted(d.dashboard_id or "" for d in w.lakeview.list()),
        "experiments": sorted(e.experiment_id or "" for e in w.experiments.list_experiments()),
        "versions": sorted(v.version or "" for v in w.model_registry.search_model_versions()),
    }


def test_a_query_owner_missing_on_the_target_is_recorded(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    warehouse = _warehouse(src)
    query = _query(src, "owned", warehouse)
    src.users.create(user_name="ana@example.com")
    owner = sql.UpdateQueryRequestQuery(owner_user_name="ana@example.com")
    src.queries.update(query.id or "", "owner_user_name", query=owner)

    reports = pair.sync(only=["sql_warehouses", "sql_queries"])
    assert reports["sql_queries"].errors == 0
    assert next(iter(dst.queries.list())).owner_user_name == "admin@example.com"
    events = pair.context().store.events(outcome="partial")  # written, with the target's owner kept
    assert any("ana@example.com does not exist on the target" in e["message"] for e in events)

    dst.users.create(user_name="ana@example.com")  # the IdP provisions her on the standby
    src.queries.update(query.id or "", "description", query=sql.UpdateQueryRequestQuery(description="now"))
    pair.sync(only=["sql_queries"])
    assert next(iter(dst.queries.list())).owner_user_name == "ana@example.com"


# Dashboards are read by need by default (tests/test_revisit.py); this test reads every one every cycle.
EVERY_CYCLE = {"dashboards": {"max_staleness": 0}}


def test_dashboards_reach_the_target_and_follow_edits(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    warehouse = _warehouse(src)
    src.workspace.mkdirs("/Shared/bi")
    layout = json.dumps({"pages": [{"name": "p1", "displayName": "Revenue"}]})
    created = src.lakeview.create(
        Dashboard(display_name="Revenue", parent_path="/Shared/bi", warehouse_id=warehouse, serialized_dashboard=layout)
    )
    src.lakeview.publish(created.dashboard_id or "", embed_credentials=False)
    src.lakeview.create(Dashboard(display_name="Draft", parent_path="/Shared/bi"))

    reports = pair.sync(only=["sql_warehouses", "dashboards", "permissions"], kinds=EVERY_CYCLE)
    assert reports["dashboards"].created == 2 and reports["dashboards"].errors == 0
    target_warehouse = next(iter(dst.warehouses.list())).id
    status = dst.workspace.get_status("/Shared/bi/Revenue.lvdash.json")
    target = dst.lakeview.get(status.resource_id or "")
    assert (target.serialized_dashboard, target.warehouse_id) == (layout, target_warehouse)
    published = dst.lakeview.get_published(target.dashboard_id or "")
    assert (published.warehouse_id, published.embed_credentials) == (target_warehouse, False)

    pair.reset_stats()
    reports = pair.sync(only=["dashboards"], kinds=EVERY_CYCLE)
    assert pair.target_writes() == 0 and reports["dashboards"].updated == 0
    # Read in full (max_staleness 0): two reads per dashboard (draft, published), never a write.
    assert _source_gets_by_id(pair, "/api/2.0/lakeview") == 4

    new_layout = json.dumps({"pages": [{"name": "p1", "displayName": "Revenue v2"}]})
    src.lakeview.update(
        created.dashboard_id or "", Dashboard(display_name="Revenue 2", serialized_dashboard=new_layout)
    )
    src.lakeview.unpublish(created.dashboard_id or "")
    reports = pair.sync(only=["dashboards"], kinds=EVERY_CYCLE)
    assert reports["dashboards"].updated == 1
    moved = dst.lakeview.get(target.dashboard_id or "")  # the same target dashboard, edited in place
    assert (moved.path, moved.serialized_dashboard) == ("/Shared/bi/Revenue 2.lvdash.json", new_layout)
    with pytest.raises(NotFound):
        dst.lakeview.get_published(target.dashboard_id or "")

    src.lakeview.trash(created.dashboard_id or "")
    reports = pair.sync(only=["dashboards"], kinds=EVERY_CYCLE)
    assert reports["dashboards"].deleted == 1
    assert [d.display_name for d in dst.lakeview.list()] == ["Draft"]
