"""SQL queries, alerts, dashboards, MLflow experiments (and opt-in runs), registered models and
workspace settings between two emulated workspaces: what a user would check on the target."""

from __future__ import annotations

import json

import pytest
from conftest import Pair, endpoint_count
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service import iam, ml, settings, sql
from databricks.sdk.service.dashboards import Dashboard
from prometheus_client import REGISTRY

from dbsync.engine import Engine
from dbsync.report import validate

SQL_KINDS = ["sql_warehouses", "sql_queries", "sql_alerts", "permissions"]
MLFLOW_KINDS = ["mlflow_experiments", "registered_models", "permissions"]
SETTINGS_KINDS = ["workspace_conf", "ip_access_lists"]


def _warehouse(w: WorkspaceClient, name: str = "BI") -> str:
    created = w.warehouses.create(name=name, cluster_size="2X-Small", auto_stop_mins=10).response.id
    assert created is not None
    return created


def _query(w: WorkspaceClient, name: str, warehouse_id: str, **extra: object) -> sql.Query:
    spec = sql.CreateQueryRequestQuery(
        display_name=name, query_text=f"SELECT '{name}'", warehouse_id=warehouse_id, parent_path="/Shared", **extra
    )  # type: ignore[arg-type]
    return w.queries.create(query=spec)


def _alert(w: WorkspaceClient, name: str, query_id: str, threshold: float = 10) -> sql.Alert:
    condition = sql.AlertCondition(
        op=sql.AlertOperator.GREATER_THAN,
        operand=sql.AlertConditionOperand(column=sql.AlertOperandColumn(name="n")),
        threshold=sql.AlertConditionThreshold(value=sql.AlertOperandValue(double_value=threshold)),
    )
    return w.alerts.create(
        alert=sql.CreateAlertRequestAlert(
            display_name=name, query_id=query_id, condition=condition, parent_path="/Shared"
        )
    )


def _by_name(items: list) -> dict:
    return {i.display_name: i for i in items}


def _source_gets_by_id(pair: Pair, prefix: str) -> int:
    return sum(
        v["count"]
        for k, v in pair.source.stats.document()["endpoints"].items()
        if k.startswith(f"GET {prefix}/") and "{" in k
    )


# -- queries and alerts -----------------------------------------------------------------------------------
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
    events = pair.context().store.events(outcome="skipped")
    assert any("ana@example.com does not exist on the target" in e["message"] for e in events)

    dst.users.create(user_name="ana@example.com")  # the IdP provisions her on the standby
    src.queries.update(query.id or "", "description", query=sql.UpdateQueryRequestQuery(description="now"))
    pair.sync(only=["sql_queries"])
    assert next(iter(dst.queries.list())).owner_user_name == "ana@example.com"


# -- dashboards -----------------------------------------------------------------------------------------
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

    reports = pair.sync(only=["sql_warehouses", "dashboards", "permissions"])
    assert reports["dashboards"].created == 2 and reports["dashboards"].errors == 0
    target_warehouse = next(iter(dst.warehouses.list())).id
    status = dst.workspace.get_status("/Shared/bi/Revenue.lvdash.json")
    target = dst.lakeview.get(status.resource_id or "")
    assert (target.serialized_dashboard, target.warehouse_id) == (layout, target_warehouse)
    published = dst.lakeview.get_published(target.dashboard_id or "")
    assert (published.warehouse_id, published.embed_credentials) == (target_warehouse, False)

    pair.reset_stats()
    reports = pair.sync(only=["dashboards"])
    assert pair.target_writes() == 0 and reports["dashboards"].updated == 0
    # The listing has no version: two reads per dashboard (draft, published), never a write.
    assert _source_gets_by_id(pair, "/api/2.0/lakeview") == 4

    new_layout = json.dumps({"pages": [{"name": "p1", "displayName": "Revenue v2"}]})
    src.lakeview.update(
        created.dashboard_id or "", Dashboard(display_name="Revenue 2", serialized_dashboard=new_layout)
    )
    src.lakeview.unpublish(created.dashboard_id or "")
    reports = pair.sync(only=["dashboards"])
    assert reports["dashboards"].updated == 1
    moved = dst.lakeview.get(target.dashboard_id or "")  # the same target dashboard, edited in place
    assert (moved.path, moved.serialized_dashboard) == ("/Shared/bi/Revenue 2.lvdash.json", new_layout)
    with pytest.raises(NotFound):
        dst.lakeview.get_published(target.dashboard_id or "")

    src.lakeview.trash(created.dashboard_id or "")
    reports = pair.sync(only=["dashboards"])
    assert reports["dashboards"].deleted == 1
    assert [d.display_name for d in dst.lakeview.list()] == ["Draft"]


# -- MLflow ---------------------------------------------------------------------------------------------
def test_experiments_reach_the_target(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace.mkdirs("/Shared/ml")
    churn = src.experiments.create_experiment(
        "/Shared/ml/churn",
        artifact_location="s3://ml-artifacts/churn",
        tags=[ml.ExperimentTag("team", "growth"), ml.ExperimentTag("mlflow.note.content", "Churn model")],
    ).experiment_id
    src.experiments.create_experiment("/Shared/ml/scratch")
    notebook = src.experiments.create_experiment("/Shared/ml/nb")
    src.experiments.set_experiment_tag(notebook.experiment_id, "mlflow.experimentType", "NOTEBOOK")

    reports = pair.sync(only=MLFLOW_KINDS)
    assert reports["mlflow_experiments"].created == 2
    target = dst.experiments.get_by_name("/Shared/ml/churn").experiment
    assert target.experiment_id != churn  # type: ignore[union-attr]
    assert target.artifact_location == "s3://ml-artifacts/churn"  # type: ignore[union-attr]
    assert {t.key: t.value for t in target.tags} == {"team": "growth", "mlflow.note.content": "Churn model"}  # type: ignore[union-attr]
    scratch = dst.experiments.get_by_name("/Shared/ml/scratch").experiment
    assert scratch.artifact_location == f"dbfs:/databricks/mlflow-tracking/{scratch.experiment_id}"  # type: ignore[union-attr]
    assert "/Shared/ml/nb" not in {e.name for e in dst.experiments.list_experiments()}  # notebook experiments stay

    pair.reset_stats()
    pair.sync(only=["mlflow_experiments"])
    assert pair.target_writes() == 0

    src.experiments.update_experiment(churn, new_name="/Shared/ml/churn-v2")
    src.experiments.set_experiment_tag(churn, "team", "retention")
    src.experiments.delete_experiment(scratch_source := _source_id(src, "/Shared/ml/scratch"))
    reports = pair.sync(only=["mlflow_experiments"])
    assert (reports["mlflow_experiments"].updated, reports["mlflow_experiments"].deleted) == (1, 1)
    renamed = dst.experiments.get_experiment(target.experiment_id).experiment  # type: ignore[union-attr]
    assert renamed.name == "/Shared/ml/churn-v2" and {t.key: t.value for t in renamed.tags}["team"] == "retention"  # type: ignore[union-attr]
    assert dst.experiments.get_experiment(scratch.experiment_id).experiment.lifecycle_stage == "deleted"  # type: ignore[union-attr]
    assert scratch_source


def _source_id(w: WorkspaceClient, name: str) -> str:
    return w.experiments.get_by_name(name).experiment.experiment_id  # type: ignore[union-attr,return-value]


def test_runs_are_copied_only_when_opted_in_for_configured_paths(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace.mkdirs("/Shared/prod")
    prod = src.experiments.create_experiment("/Shared/prod/fraud").experiment_id
    lab = src.experiments.create_experiment("/Shared/lab").experiment_id
    for experiment_id in (prod, lab):
        run_id = src.experiments.create_run(
            experiment_id=experiment_id, run_name="baseline", start_time=1000
        ).run.info.run_id  # type: ignore[union-attr]
        src.experiments.log_batch(
            run_id=run_id,
            params=[ml.Param("depth", "6")],
            metrics=[ml.Metric(key="auc", value=0.91, timestamp=2000, step=3)],
            tags=[ml.RunTag("model", "xgb")],
        )
        src.experiments.update_run(run_id=run_id, status=ml.UpdateRunStatus.FINISHED, end_time=3000)

    pair.sync(only=["mlflow_experiments"])
    target_prod = _source_id(dst, "/Shared/prod/fraud")
    assert list(dst.experiments.search_runs(experiment_ids=[target_prod])) == []  # runs are off by default

    opt_in = {"mlflow": {"runs": True, "runs_paths": ["/Shared/prod/*"]}}
    reports = pair.sync(only=["mlflow_experiments"], **opt_in)
    assert reports["mlflow_experiments"].updated == 1  # only the experiment under runs_paths
    (run,) = dst.experiments.search_runs(experiment_ids=[target_prod])
    assert run.info.run_name == "baseline" and run.info.status == ml.RunInfoStatus.FINISHED  # type: ignore[union-attr]
    assert run.info.end_time == 3000  # type: ignore[union-attr]
    assert [(p.key, p.value) for p in run.data.params] == [("depth", "6")]  # type: ignore[union-attr]
    assert [(m.key, m.value, m.step) for m in run.data.metrics] == [("auc", 0.91, 3)]  # type: ignore[union-attr]
    assert list(dst.experiments.search_runs(experiment_ids=[_source_id(dst, "/Shared/lab")])) == []

    pair.reset_stats()
    pair.sync(only=["mlflow_experiments"], **opt_in)
    assert pair.target_writes() == 0

    source_run = next(iter(src.experiments.search_runs(experiment_ids=[prod]))).info.run_id  # type: ignore[union-attr]
    src.experiments.log_metric("auc", 0.95, run_id=source_run, timestamp=4000, step=4)
    pair.sync(only=["mlflow_experiments"], **opt_in)
    (run,) = dst.experiments.search_runs(experiment_ids=[target_prod])
    assert [(m.key, m.value) for m in run.data.metrics] == [("auc", 0.95)]  # type: ignore[union-attr]
    src.experiments.delete_run(source_run)
    pair.sync(only=["mlflow_experiments"], **opt_in)
    assert list(dst.experiments.search_runs(experiment_ids=[target_prod])) == []


def test_registered_models_keep_their_version_numbers(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.model_registry.create_model("churn", description="churn model", tags=[ml.ModelTag("team", "growth")])
    for i in range(1, 4):
        src.model_registry.create_model_version("churn", f"dbfs:/models/churn/{i}", description=f"v{i}")
    src.model_registry.delete_model_version("churn", "2")
    src.model_registry.transition_stage("churn", "3", "Production", archive_existing_versions=False)
    src.model_registry.set_model_version_tag("churn", "3", "validated", "yes")
    src.groups.create(display_name="ml-eng")
    dst.groups.create(display_name="ml-eng")
    model_id = src.model_registry.get_model("churn").registered_model_databricks.id  # type: ignore[union-attr]
    acl = [
        iam.AccessControlRequest(
            group_name="ml-eng", permission_level=iam.PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS
        )
    ]
    src.permissions.set("registered-models", model_id or "", access_control_list=acl)

    reports = pair.sync(only=MLFLOW_KINDS)
    assert reports["registered_models"].created == 1 and reports["permissions"].errors == 0
    target = dst.model_registry.get_model("churn").registered_model_databricks
    assert (target.description, {t.key: t.value for t in target.tags}) == ("churn model", {"team": "growth"})  # type: ignore[union-attr]
    versions = {v.version: v for v in dst.model_registry.search_model_versions(filter="name='churn'")}
    assert sorted(versions) == ["1", "3"]  # `models:/churn/3` is the same version on both sides
    assert (versions["3"].current_stage, versions["3"].source, versions["3"].description) == (
        "Production",
        "dbfs:/models/churn/3",
        "v3",
    )
    assert {t.key: t.value for t in versions["3"].tags}["validated"] == "yes"  # type: ignore[union-attr]
    entries = dst.permissions.get("registered-models", target.id or "").access_control_list or []  # type: ignore[union-attr]
    assert any(e.group_name == "ml-eng" for e in entries)

    pair.reset_stats()
    pair.sync(only=["registered_models"])
    assert pair.target_writes() == 0

    src.model_registry.create_model_version("churn", "dbfs:/models/churn/4")
    src.model_registry.transition_stage("churn", "4", "Staging", archive_existing_versions=False)
    src.model_registry.update_model_version("churn", "1", description="first")
    src.model_registry.delete_model_version("churn", "3")
    pair.sync(only=["registered_models"])
    versions = {v.version: v for v in dst.model_registry.search_model_versions(filter="name='churn'")}
    assert sorted(versions) == ["1", "4"]
    assert (versions["1"].description, versions["4"].current_stage) == ("first", "Staging")

    src.model_registry.create_model("fraud")
    src.model_registry.delete_model("churn")
    reports = pair.sync(only=["registered_models"])
    assert reports["registered_models"].deleted == 1
    assert [m.name for m in dst.model_registry.search_models()] == ["fraud"]


# -- workspace settings -----------------------------------------------------------------------------------
def test_workspace_conf_keys_and_ip_access_lists(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace_conf.set_status(
        {"maxTokenLifetimeDays": "90", "enableWebTerminal": "true", "enableVerboseAuditLogs": "true"}
    )
    office = src.ip_access_lists.create(
        "office", settings.ListType.ALLOW, ip_addresses=["127.0.0.1", "10.0.0.0/8"]
    ).ip_access_list
    src.ip_access_lists.create("bad actors", settings.ListType.BLOCK, ip_addresses=["192.0.2.0/24"])

    reports = pair.sync(only=SETTINGS_KINDS)
    assert all(r.errors == 0 for r in reports.values()), reports
    conf = dst.workspace_conf.get_status("maxTokenLifetimeDays,enableWebTerminal,enableVerboseAuditLogs")
    # enableVerboseAuditLogs is not in workspace_conf.keys: never read, never written.
    assert conf == {"maxTokenLifetimeDays": "90", "enableWebTerminal": "true", "enableVerboseAuditLogs": "false"}
    lists = {x.label: x for x in dst.ip_access_lists.list()}
    assert sorted(lists) == ["bad actors", "office"]
    assert sorted(lists["office"].ip_addresses or []) == ["10.0.0.0/8", "127.0.0.1"]

    pair.reset_stats()
    pair.sync(only=SETTINGS_KINDS)
    assert pair.target_writes() == 0

    src.ip_access_lists.replace(office.list_id, "office", settings.ListType.ALLOW, False, ip_addresses=["127.0.0.1"])  # type: ignore[union-attr]
    src.workspace_conf.set_status({"maxTokenLifetimeDays": ""})
    bad = next(x for x in src.ip_access_lists.list() if x.label == "bad actors")
    src.ip_access_lists.delete(bad.list_id or "")
    pair.sync(only=SETTINGS_KINDS)
    (office_target,) = dst.ip_access_lists.list()
    assert (office_target.enabled, office_target.ip_addresses) == (False, ["127.0.0.1"])
    assert dst.workspace_conf.get_status("maxTokenLifetimeDays") == {"maxTokenLifetimeDays": None}


def test_settings_that_would_lock_dbsync_out_are_refused(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    dst.ip_access_lists.create("dbsync", settings.ListType.ALLOW, ip_addresses=["127.0.0.1"])
    dst.workspace_conf.set_status({"enableIpAccessLists": "true"})  # the standby enforces its lists
    src.ip_access_lists.create("dbsync", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/8"])
    src.workspace_conf.set_status({"enableTokensConfig": "false"})

    reports = pair.sync(only=SETTINGS_KINDS)
    assert reports["ip_access_lists"].errors == 1 and reports["workspace_conf"].errors == 1
    assert [x.ip_addresses for x in dst.ip_access_lists.list()] == [["127.0.0.1"]]  # dbsync can still get in
    assert dst.workspace_conf.get_status("enableTokensConfig") == {"enableTokensConfig": "true"}
    problems = {p["source_key"]: p["last_error"] for p in pair.context().store.problems("workspace_conf")}
    assert "personal access token" in problems["enableTokensConfig"]
    (ip_problem,) = pair.context().store.problems("ip_access_lists")
    assert "allow list" in ip_problem["last_error"]


# -- plan, validate, metrics ---------------------------------------------------------------------------
def test_plan_validate_and_metrics_cover_the_new_kinds(pair: Pair) -> None:
    src = pair.src
    warehouse = _warehouse(src)
    _alert(src, "alert", _query(src, "q", warehouse).id or "")
    src.lakeview.create(Dashboard(display_name="D", parent_path="/Shared", warehouse_id=warehouse))
    src.experiments.create_experiment("/Shared/e")
    src.model_registry.create_model("m")
    src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["127.0.0.1"])
    kinds = ["sql_warehouses", "sql_queries", "sql_alerts", "dashboards", *MLFLOW_KINDS[:2], *SETTINGS_KINDS]

    ctx = pair.context()
    try:
        planned = {r.kind: r.planned for r in Engine(ctx, plan_only=True).cycle(kinds)}
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
