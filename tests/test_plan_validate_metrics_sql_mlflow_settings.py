"""`plan`, `validate` and the metrics over the SQL, dashboard, MLflow and workspace-settings kinds together:
the plan writes nothing, validation says not ready until a sync, then ready, and the counters move.
"""

from __future__ import annotations

from conftest import Pair, endpoint_count
from databricks.sdk.service import settings
from databricks.sdk.service.dashboards import Dashboard
from prometheus_client import REGISTRY
from sql_objects import make_alert as _alert
from sql_objects import make_query as _query
from sql_objects import make_warehouse as _warehouse

from dbsync.engine import Engine
from dbsync.report import validate

MLFLOW_KINDS = ["mlflow_experiments", "registered_models", "permissions"]
SETTINGS_KINDS = ["workspace_conf", "ip_access_lists"]


def test_plan_validate_and_metrics_cover_the_new_kinds(pair: Pair) -> None:
    src = pair.src
    warehouse = _warehouse(src)
    _alert(src, "alert", _query(src, "q", warehouse).id or "")
    src.lakeview.create(Dashboard(display_name="D", parent_path="/Shared", warehouse_id=warehouse))
    src.experiments.create_experiment("/Shared/e")
    src.model_registry.create_model("m")
    src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["127.0.0.1"])
    kinds = ["sql_warehouses", "sql_queries", "sql_alerts", "dashboards", *MLFLOW_KINDS[:2], *SETTINGS_KINDS]

    ctx = pair.context(dry_run=True)
    try:
        planned = {r.kind: r.planned for r in Engine(ctx).cycle(kinds)}
        not_ready = validate(ctx, kinds)
    finally:
        ctx.store.close()
    for kind in ("sql_queries", "dashboards", "mlflow_experiments", "registered_models", "ip_access_lists"):
        assert [c.action for c in planned[kind]] == ["create"], kind
    assert pair.target_writes() == 0 and not not_ready.ready_for_cutover

    pair.sync(only=kinds)
    ctx = pair.context()
    try:
        report = validate(ctx, kinds)
    finally:
        ctx.store.close()
    by_kind = {r.kind: r for r in report.kinds}
    assert report.ready_for_cutover, report.reasons
    assert (by_kind["sql_alerts"].source_count, by_kind["sql_alerts"].in_sync) == (1, 1)
    assert by_kind["workspace_conf"].in_sync == by_kind["workspace_conf"].source_count > 0
    created = REGISTRY.get_sample_value("dbsync_changes_applied_total", {"kind": "dashboards", "action": "create"})
    assert created and created >= 1
    assert endpoint_count(pair.target, "POST /api/2.0/lakeview/dashboards") >= 1
