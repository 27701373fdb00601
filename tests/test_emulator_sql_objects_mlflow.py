"""SQL queries and alerts, Lakeview dashboards, MLflow (experiments, runs, Model Registry) and workspace
settings (workspace-conf, IP access lists), driven over HTTP by the real databricks-sdk."""

from __future__ import annotations

import json

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    Aborted,
    BadRequest,
    InvalidParameterValue,
    InvalidState,
    NotFound,
    ResourceAlreadyExists,
)
from databricks.sdk.service import iam, ml, settings, sql
from databricks.sdk.service.dashboards import Dashboard
from freezegun import freeze_time


@pytest.fixture
def warehouse_id(w: WorkspaceClient) -> str:
    created = w.warehouses.create(name="BI", cluster_size="2X-Small").response.id
    assert created is not None
    return created


def _query(w: WorkspaceClient, name: str, warehouse_id: str, folder: str = "/Shared", **extra: object) -> sql.Query:
    spec = sql.CreateQueryRequestQuery(
        display_name=name, query_text="SELECT 1", warehouse_id=warehouse_id, parent_path=folder, **extra
    )  # type: ignore[arg-type]
    return w.queries.create(query=spec)


def _condition(threshold: float = 10) -> sql.AlertCondition:
    return sql.AlertCondition(
        op=sql.AlertOperator.GREATER_THAN,
        operand=sql.AlertConditionOperand(column=sql.AlertOperandColumn(name="n")),
        threshold=sql.AlertConditionThreshold(value=sql.AlertOperandValue(double_value=threshold)),
    )


# -- queries ------------------------------------------------------------------------------------------
def test_query_create_get_and_paged_list(w: WorkspaceClient, warehouse_id: str) -> None:
    ids = [_query(w, f"q{i}", warehouse_id, tags=["finance"]).id for i in range(5)]
    got = w.queries.get(ids[0])
    assert got.parent_path == "/Workspace/Shared"  # the service answers with the /Workspace prefix
    assert got.owner_user_name == "admin@example.com"
    assert got.lifecycle_state == sql.LifecycleState.ACTIVE

    first = w.api_client.do("GET", "/api/2.0/sql/queries", query={"page_size": 2})
    assert [r["display_name"] for r in first["results"]] == ["q0", "q1"]
    assert "parent_path" not in first["results"][0]  # list items carry no folder
    assert first["next_page_token"]
    assert [q.id for q in w.queries.list(page_size=2)] == ids  # the SDK follows next_page_token
    capped = w.api_client.do("GET", "/api/2.0/sql/queries", query={"page_size": 1000})
    assert len(capped["results"]) == 5


def test_query_update_mask_replaces_named_fields_only(w: WorkspaceClient, warehouse_id: str) -> None:
    query = _query(w, "revenue", warehouse_id, description="old", catalog="main")
    updated = w.queries.update(
        query.id, "query_text,description", query=sql.UpdateQueryRequestQuery(query_text="SELECT 2")
    )
    assert updated.query_text == "SELECT 2"
    assert updated.description is None  # in the mask, absent from the body: cleared
    assert updated.catalog == "main"  # not in the mask: kept
    with pytest.raises(InvalidParameterValue, match="update_mask"):
        w.queries.update(query.id, "parent_path", query=sql.UpdateQueryRequestQuery())


def test_query_names_are_unique_per_folder_unless_auto_resolved(w: WorkspaceClient, warehouse_id: str) -> None:
    _query(w, "daily", warehouse_id)
    with pytest.raises(ResourceAlreadyExists):
        _query(w, "daily", warehouse_id)
    spec = sql.CreateQueryRequestQuery(display_name="daily", parent_path="/Shared", query_text="SELECT 1")
    assert w.queries.create(query=spec, auto_resolve_display_name=True).display_name == "daily (1)"
    w.workspace.mkdirs("/Shared/other")
    assert _query(w, "daily", warehouse_id, folder="/Shared/other").display_name == "daily"


def test_query_references_and_folder_are_checked(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="Warehouse"):
        _query(w, "q", "0123456789abcdef")
    spec = sql.CreateQueryRequestQuery(display_name="q", query_text="SELECT 1", parent_path="/Shared/missing")
    with pytest.raises(NotFound):
        w.queries.create(query=spec)


def test_deleted_query_goes_to_the_trash(w: WorkspaceClient, warehouse_id: str) -> None:
    query = _query(w, "old", warehouse_id)
    w.queries.delete(query.id)
    assert w.queries.get(query.id).lifecycle_state == sql.LifecycleState.TRASHED
    assert list(w.queries.list()) == []
    with pytest.raises(NotFound):
        w.queries.update(query.id, "description", query=sql.UpdateQueryRequestQuery(description="x"))
    # A trashed query cannot be used by an alert.
    spec = sql.CreateAlertRequestAlert(display_name="a", query_id=query.id, condition=_condition())
    with pytest.raises(InvalidParameterValue):
        w.alerts.create(alert=spec)


def test_query_owner_must_be_a_known_user(w: WorkspaceClient, warehouse_id: str) -> None:
    query = _query(w, "owned", warehouse_id)
    w.users.create(user_name="ana@example.com")
    new_owner = sql.UpdateQueryRequestQuery(owner_user_name="ana@example.com")
    owned = w.queries.update(query.id, "owner_user_name", query=new_owner)
    assert owned.owner_user_name == "ana@example.com"
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.queries.update(query.id, "owner_user_name", query=sql.UpdateQueryRequestQuery(owner_user_name="x@y.z"))


# -- alerts -------------------------------------------------------------------------------------------
def test_alert_lifecycle(w: WorkspaceClient, warehouse_id: str) -> None:
    query = _query(w, "errors", warehouse_id)
    spec = sql.CreateAlertRequestAlert(
        display_name="too many errors", query_id=query.id, condition=_condition(), parent_path="/Shared"
    )
    alert = w.alerts.create(alert=spec)
    assert alert.state == sql.AlertState.UNKNOWN
    assert alert.parent_path == "/Workspace/Shared"
    assert [a.id for a in w.alerts.list()] == [alert.id]

    updated = w.alerts.update(
        alert.id, "condition,seconds_to_retrigger", alert=sql.UpdateAlertRequestAlert(condition=_condition(99))
    )
    assert updated.condition.threshold.value.double_value == 99  # type: ignore[union-attr]
    assert updated.seconds_to_retrigger is None
    with pytest.raises(InvalidParameterValue, match="condition"):
        w.alerts.update(alert.id, "condition", alert=sql.UpdateAlertRequestAlert())

    w.alerts.delete(alert.id)
    assert list(w.alerts.list()) == []
    assert w.alerts.get(alert.id).lifecycle_state == sql.LifecycleState.TRASHED


def test_alert_needs_a_condition_and_an_active_query(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="query_id"):
        w.alerts.create(alert=sql.CreateAlertRequestAlert(display_name="a", condition=_condition()))
    with pytest.raises(InvalidParameterValue):
        w.alerts.create(alert=sql.CreateAlertRequestAlert(display_name="a", query_id="nope", condition=_condition()))


def test_sql_object_permissions(w: WorkspaceClient, warehouse_id: str) -> None:
    query = _query(w, "acl", warehouse_id)
    w.groups.create(display_name="analysts")
    acl = [iam.AccessControlRequest(group_name="analysts", permission_level=iam.PermissionLevel.CAN_RUN)]
    result = w.permissions.set("queries", query.id, access_control_list=acl)
    assert result.object_type == "query"
    levels = {(e.group_name, p.permission_level.value) for e in result.access_control_list for p in e.all_permissions}
    assert ("analysts", "CAN_RUN") in levels
    bad = [iam.AccessControlRequest(group_name="analysts", permission_level=iam.PermissionLevel.CAN_USE)]
    with pytest.raises(InvalidParameterValue, match="not supported"):
        w.permissions.set("queries", query.id, access_control_list=bad)


# -- dashboards ---------------------------------------------------------------------------------------
def test_dashboard_is_a_workspace_object(w: WorkspaceClient, warehouse_id: str) -> None:
    layout = json.dumps({"pages": [{"name": "p1", "displayName": "Sales"}]})
    created = w.lakeview.create(
        Dashboard(display_name="Sales", parent_path="/Shared", warehouse_id=warehouse_id, serialized_dashboard=layout)
    )
    assert created.path == "/Shared/Sales.lvdash.json"
    assert created.etag and created.serialized_dashboard == layout
    status = w.workspace.get_status("/Shared/Sales.lvdash.json")
    assert status.object_type.value == "DASHBOARD" and status.resource_id == created.dashboard_id  # type: ignore[union-attr]

    listed = w.api_client.do("GET", "/api/2.0/lakeview/dashboards")["dashboards"]
    assert set(listed[0]) >= {"dashboard_id", "display_name", "warehouse_id"}
    assert not {"serialized_dashboard", "etag", "parent_path", "path", "update_time"} & set(listed[0])
    with pytest.raises(ResourceAlreadyExists):
        w.lakeview.create(Dashboard(display_name="Sales", parent_path="/Shared"))
    with pytest.raises(InvalidParameterValue, match="JSON"):
        w.lakeview.create(Dashboard(display_name="Broken", parent_path="/Shared", serialized_dashboard="{"))


def test_dashboard_update_checks_the_etag_and_a_rename_moves_it(w: WorkspaceClient) -> None:
    created = w.lakeview.create(Dashboard(display_name="Ops", parent_path="/Shared"))
    renamed = w.lakeview.update(created.dashboard_id, Dashboard(display_name="Ops v2", etag=created.etag))
    assert renamed.path == "/Shared/Ops v2.lvdash.json" and renamed.etag != created.etag
    assert w.workspace.get_status("/Shared/Ops v2.lvdash.json").resource_id == created.dashboard_id
    with pytest.raises(NotFound):
        w.workspace.get_status("/Shared/Ops.lvdash.json")
    with pytest.raises(Aborted):  # a writer that read an older version
        w.lakeview.update(created.dashboard_id, Dashboard(display_name="Ops v3", etag=created.etag))


def test_dashboard_publish_and_trash(w: WorkspaceClient, warehouse_id: str) -> None:
    created = w.lakeview.create(Dashboard(display_name="KPIs", parent_path="/Shared", warehouse_id=warehouse_id))
    with pytest.raises(NotFound):
        w.lakeview.get_published(created.dashboard_id)
    published = w.lakeview.publish(created.dashboard_id, embed_credentials=False)
    assert published.warehouse_id == warehouse_id and published.embed_credentials is False
    assert w.lakeview.get_published(created.dashboard_id).display_name == "KPIs"
    w.lakeview.unpublish(created.dashboard_id)
    with pytest.raises(NotFound):
        w.lakeview.get_published(created.dashboard_id)

    w.lakeview.trash(created.dashboard_id)
    assert list(w.lakeview.list()) == []
    assert [d.dashboard_id for d in w.lakeview.list(show_trashed=True)] == [created.dashboard_id]
    assert w.lakeview.get(created.dashboard_id).lifecycle_state.value == "TRASHED"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        w.workspace.get_status("/Shared/KPIs.lvdash.json")


def test_deleting_its_folder_trashes_a_dashboard(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/old")
    created = w.lakeview.create(Dashboard(display_name="Legacy", parent_path="/Shared/old"))
    w.workspace.delete("/Shared/old", recursive=True)
    assert list(w.lakeview.list()) == []
    assert w.lakeview.get(created.dashboard_id).lifecycle_state.value == "TRASHED"  # type: ignore[union-attr]


def test_dashboard_inherits_its_folder_acl(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/bi")
    folder_id = w.workspace.get_status("/Shared/bi").object_id
    w.groups.create(display_name="viewers")
    acl = [iam.AccessControlRequest(group_name="viewers", permission_level=iam.PermissionLevel.CAN_READ)]
    w.permissions.set("directories", str(folder_id), access_control_list=acl)
    created = w.lakeview.create(Dashboard(display_name="D", parent_path="/Shared/bi"))
    entries = w.permissions.get("dashboards", created.dashboard_id).access_control_list or []
    viewers = next(e for e in entries if e.group_name == "viewers")
    assert viewers.all_permissions[0].inherited  # type: ignore[index]
    assert viewers.all_permissions[0].inherited_from_object == [f"/directories/{folder_id}"]  # type: ignore[index]


def test_dashboard_pagination(w: WorkspaceClient) -> None:
    for i in range(5):
        w.lakeview.create(Dashboard(display_name=f"d{i}", parent_path="/Shared"))
    page = w.api_client.do("GET", "/api/2.0/lakeview/dashboards", query={"page_size": 2})
    assert len(page["dashboards"]) == 2 and page["next_page_token"]
    assert [d.display_name for d in w.lakeview.list(page_size=2)] == [f"d{i}" for i in range(5)]


# -- experiments and runs ------------------------------------------------------------------------------
def test_experiment_names_are_workspace_paths(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="absolute path"):
        w.experiments.create_experiment("churn")
    with pytest.raises(NotFound, match="Parent directory"):
        w.experiments.create_experiment("/Shared/nowhere/churn")
    created = w.experiments.create_experiment("/Workspace/Shared/churn", tags=[ml.ExperimentTag("team", "ml")])
    got = w.experiments.get_experiment(created.experiment_id).experiment
    assert got.name == "/Shared/churn"  # type: ignore[union-attr]
    assert got.artifact_location == f"dbfs:/databricks/mlflow-tracking/{created.experiment_id}"  # type: ignore[union-attr]
    assert w.experiments.get_by_name("/Shared/churn").experiment.experiment_id == created.experiment_id  # type: ignore[union-attr]
    with pytest.raises(ResourceAlreadyExists):
        w.experiments.create_experiment("/Shared/churn")


def test_experiment_search_filter_order_and_pages(w: WorkspaceClient) -> None:
    for name, team in (("a", "ml"), ("b", "bi"), ("c", "ml"), ("d", "ml")):
        w.experiments.create_experiment(f"/Shared/{name}", tags=[ml.ExperimentTag("team", team)])
    ml_filter = "tags.team = 'ml' AND name LIKE '/Shared/%'"
    found = w.experiments.search_experiments(filter=ml_filter, order_by=["name DESC"])
    assert [e.name for e in found] == ["/Shared/d", "/Shared/c", "/Shared/a"]
    page = w.api_client.do("POST", "/api/2.0/mlflow/experiments/search", body={"max_results": 2})
    assert len(page["experiments"]) == 2 and page["next_page_token"]
    assert len(list(w.experiments.search_experiments(max_results=1))) == 4
    assert len(list(w.experiments.list_experiments())) == 4
    with pytest.raises(InvalidParameterValue, match="3000"):
        list(w.experiments.search_experiments(max_results=5000))
    with pytest.raises(InvalidParameterValue, match="filter"):
        list(w.experiments.search_experiments(filter="name ~ 'x'"))


def test_experiment_updates_move_last_update_time(w: WorkspaceClient) -> None:
    with freeze_time("2026-03-01 10:00:00") as clock:
        experiment_id = w.experiments.create_experiment("/Shared/exp").experiment_id
        created = w.experiments.get_experiment(experiment_id).experiment.last_update_time  # type: ignore[union-attr]
        clock.tick(60)
        w.experiments.set_experiment_tag(experiment_id, "stage", "prod")
        w.experiments.update_experiment(experiment_id, new_name="/Shared/exp2")
        after = w.experiments.get_experiment(experiment_id).experiment
    # Two writes in the same millisecond still move it: every write shows in a listing.
    assert created + 60_000 <= after.last_update_time <= created + 60_002  # type: ignore[union-attr,operator]
    assert after.name == "/Shared/exp2"  # type: ignore[union-attr]
    w.experiments.delete_experiment(experiment_id)
    assert list(w.experiments.search_experiments()) == []
    assert len(list(w.experiments.search_experiments(view_type=ml.ViewType.DELETED_ONLY))) == 1
    with pytest.raises(InvalidParameterValue, match="active"):
        w.experiments.set_experiment_tag(experiment_id, "k", "v")
    w.experiments.restore_experiment(experiment_id)
    assert w.experiments.get_experiment(experiment_id).experiment.lifecycle_stage == "active"  # type: ignore[union-attr]


def test_runs_log_batch_and_search(w: WorkspaceClient) -> None:
    experiment_id = w.experiments.create_experiment("/Shared/runs").experiment_id
    run = w.experiments.create_run(experiment_id=experiment_id, run_name="baseline").run
    run_id = run.info.run_id  # type: ignore[union-attr]
    w.experiments.log_batch(
        run_id=run_id,
        params=[ml.Param("lr", "0.1")],
        metrics=[
            ml.Metric(key="auc", value=0.7, timestamp=1, step=0),
            ml.Metric(key="auc", value=0.8, timestamp=2, step=1),
        ],
        tags=[ml.RunTag("model", "xgb")],
    )
    with pytest.raises(InvalidParameterValue, match="Changing param values"):
        w.experiments.log_batch(run_id=run_id, params=[ml.Param("lr", "0.2")])
    w.experiments.update_run(run_id=run_id, status=ml.UpdateRunStatus.FINISHED, end_time=5)
    found = list(w.experiments.search_runs(experiment_ids=[experiment_id], filter="tags.model = 'xgb'"))
    assert [r.info.run_id for r in found] == [run_id]  # type: ignore[union-attr]
    data = found[0].data
    assert [(m.key, m.value) for m in data.metrics] == [("auc", 0.8)]  # type: ignore[union-attr]
    assert found[0].info.status == ml.RunInfoStatus.FINISHED  # type: ignore[union-attr]
    history = list(w.experiments.get_history("auc", run_id=run_id))
    assert [m.value for m in history] == [0.7, 0.8]
    with pytest.raises(InvalidParameterValue, match="at most"):
        w.experiments.log_batch(run_id=run_id, params=[ml.Param(f"p{i}", "1") for i in range(101)])
    with pytest.raises(NotFound):
        w.experiments.get_run("nope")


# -- model registry ------------------------------------------------------------------------------------
def test_registered_model_versions_are_numbered_and_staged(w: WorkspaceClient) -> None:
    w.model_registry.create_model("churn", description="v1 model", tags=[ml.ModelTag("team", "ml")])
    with pytest.raises(ResourceAlreadyExists):
        w.model_registry.create_model("churn")
    for i in range(3):
        w.model_registry.create_model_version("churn", f"dbfs:/models/churn/{i}")
    w.model_registry.delete_model_version("churn", "3")
    assert w.model_registry.create_model_version("churn", "dbfs:/x").model_version.version == "4"  # type: ignore[union-attr]

    w.model_registry.transition_stage("churn", "1", "Production", archive_existing_versions=False)
    w.model_registry.transition_stage("churn", "2", "production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in w.model_registry.search_model_versions(filter="name='churn'")}
    assert stages == {"1": "Archived", "2": "Production", "4": "None"}
    latest = w.model_registry.get_latest_versions("churn", stages=["Production"])
    assert [v.version for v in latest] == ["2"]
    with pytest.raises(InvalidParameterValue, match="stage"):
        w.model_registry.transition_stage("churn", "4", "Canary", archive_existing_versions=False)
    with pytest.raises(NotFound):
        w.model_registry.get_model_version("churn", "3")

    databricks = w.model_registry.get_model("churn").registered_model_databricks
    assert databricks and databricks.id and databricks.permission_level
    acl = w.permissions.get("registered-models", databricks.id)
    assert acl.object_type == "registered-model"


def test_model_timestamps_and_search(w: WorkspaceClient) -> None:
    with freeze_time("2026-03-01 10:00:00") as clock:
        w.model_registry.create_model("fraud-detector")
        w.model_registry.create_model("churn")
        version = w.model_registry.create_model_version("churn", "dbfs:/m").model_version
        before = w.model_registry.get_model("churn").registered_model_databricks.last_updated_timestamp  # type: ignore[union-attr]
        clock.tick(30)
        w.model_registry.update_model_version("churn", version.version, description="better")  # type: ignore[union-attr]
        w.model_registry.set_model_version_tag("churn", version.version, "validated", "yes")  # type: ignore[union-attr]
        model = w.model_registry.get_model("churn").registered_model_databricks
        assert model.last_updated_timestamp == before  # type: ignore[union-attr]  # a version's edits are its own
        clock.tick(30)
        w.model_registry.create_model_version("churn", "dbfs:/m2")
        model = w.model_registry.get_model("churn").registered_model_databricks
        assert model.last_updated_timestamp > before + 59_000  # type: ignore[union-attr,operator]  # a new version is the model's
    # The service matches `name LIKE 'x'` as `%x%`.
    assert [m.name for m in w.model_registry.search_models(filter="name LIKE 'detect'")] == ["fraud-detector"]
    page = w.api_client.do("GET", "/api/2.0/mlflow/registered-models/search", query={"max_results": 1})
    assert len(page["registered_models"]) == 1 and page["next_page_token"]
    with pytest.raises(InvalidParameterValue):
        list(w.model_registry.search_models(max_results=5000))
    w.model_registry.rename_model("churn", new_name="churn-v2")
    assert [v.name for v in w.model_registry.search_model_versions(filter="name='churn-v2'")] == ["churn-v2"] * 2


# -- workspace settings -------------------------------------------------------------------------------
def test_workspace_conf_get_set_and_reset(w: WorkspaceClient) -> None:
    assert w.workspace_conf.get_status("enableTokensConfig,maxTokenLifetimeDays") == {
        "enableTokensConfig": "true",
        "maxTokenLifetimeDays": None,
    }
    w.workspace_conf.set_status({"maxTokenLifetimeDays": "90", "enableWebTerminal": "true"})
    assert w.workspace_conf.get_status("maxTokenLifetimeDays,enableWebTerminal") == {
        "maxTokenLifetimeDays": "90",
        "enableWebTerminal": "true",
    }
    w.workspace_conf.set_status({"maxTokenLifetimeDays": ""})
    assert w.workspace_conf.get_status("maxTokenLifetimeDays") == {"maxTokenLifetimeDays": None}
    with pytest.raises(InvalidParameterValue, match="Invalid keys"):
        w.workspace_conf.get_status("enableEverything")
    with pytest.raises(InvalidParameterValue):
        w.workspace_conf.set_status({"enableWebTerminal": "maybe"})
    with pytest.raises(InvalidParameterValue, match="730"):
        w.workspace_conf.set_status({"maxTokenLifetimeDays": "1000"})


def test_ip_access_list_crud(w: WorkspaceClient) -> None:
    created = w.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/8", "1.2.3.4"])
    info = created.ip_access_list
    assert info and info.enabled and info.address_count == 2
    w.ip_access_lists.replace(info.list_id, "office", settings.ListType.ALLOW, False, ip_addresses=["10.0.0.0/8"])
    got = w.ip_access_lists.get(info.list_id).ip_access_list
    assert got and got.enabled is False and got.ip_addresses == ["10.0.0.0/8"]
    w.ip_access_lists.update(info.list_id, label="hq")
    assert [x.label for x in w.ip_access_lists.list()] == ["hq"]
    w.ip_access_lists.delete(info.list_id)
    assert list(w.ip_access_lists.list()) == []
    with pytest.raises(NotFound):
        w.ip_access_lists.get(info.list_id)
    with pytest.raises(InvalidParameterValue, match="Invalid IP"):
        w.ip_access_lists.create("bad", settings.ListType.BLOCK, ip_addresses=["10.0.0.300"])
    with pytest.raises(BadRequest) as quota:
        many = [f"10.1.{i // 250}.{i % 250}" for i in range(1001)]
        w.ip_access_lists.create("big", settings.ListType.BLOCK, ip_addresses=many)
    assert quota.value.error_code == "QUOTA_EXCEEDED"


def test_ip_access_lists_never_lock_the_caller_out(w: WorkspaceClient) -> None:
    w.ip_access_lists.create("vpn", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/8"])
    with pytest.raises(InvalidState, match=r"127\.0\.0\.1"):  # enforcement would refuse this very client
        w.workspace_conf.set_status({"enableIpAccessLists": "true"})
    w.ip_access_lists.create("local", settings.ListType.ALLOW, ip_addresses=["127.0.0.1"])
    w.workspace_conf.set_status({"enableIpAccessLists": "true"})
    with pytest.raises(InvalidState):
        w.ip_access_lists.create("deny-local", settings.ListType.BLOCK, ip_addresses=["127.0.0.0/24"])
