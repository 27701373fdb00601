"""Seed content for the BI and ML objects: SQL queries and alerts on a warehouse, Lakeview dashboards,
MLflow experiments with runs, registered models with versions, workspace settings and an IP access list.

Called by `seed.seed_workspace` with its random generator, so the same (N, seed) gives the same workspace.
Objects are made through the API modules' internal functions (their validation and side effects apply).
"""

from __future__ import annotations

import json
import random

from dbsync_emulator.apis import lakeview, mlflow, permissions, settings, sql, sql_objects, workspace
from dbsync_emulator.state import Workspace

TEAMS = ("data-eng", "analytics", "ml-platform", "finance")
METRICS = ("revenue", "orders", "signups", "churn", "latency_p99", "errors")


def _warehouse(ws: Workspace) -> str:
    """The workspace's first warehouse, or a new small one (queries and dashboards need one)."""
    existing = sorted(ws.table(sql.WAREHOUSES))
    if existing:
        return existing[0]
    return sql.create_warehouse(ws, {"name": "Shared BI", "cluster_size": "2X-Small", "auto_stop_mins": 10})


def _grant(ws: Workspace, request_type: str, object_id: str, group: str, level: str) -> None:
    if permissions.principal_exists(ws, "group_name", group):
        entries = permissions.direct_acl(ws, request_type, object_id)
        entries.append({"principal_type": "group_name", "principal": group, "level": level})
        ws.table("acls")[(permissions.TYPES[request_type].request_type, object_id)] = entries


def _folders(ws: Workspace, users: list[str]) -> list[str]:
    folders = ["/Shared/bi", "/Shared/ml"] + [f"/Users/{u}" for u in users[:3]]
    for folder in folders:
        workspace.mkdirs(ws, folder)
    return folders


def seed_bi_ml(ws: Workspace, rng: random.Random, n: int, users: list[str], counts: dict[str, int]) -> None:
    """About n/10 BI objects and n/15 ML objects, plus the settings a real workspace has changed."""
    warehouse = _warehouse(ws)
    folders = _folders(ws, users)
    query_ids = _queries(ws, rng, n, warehouse, folders, counts)
    _alerts(ws, rng, n, query_ids, counts)
    _dashboards(ws, rng, n, warehouse, folders, counts)
    _experiments(ws, rng, n, users, counts)
    _models(ws, rng, n, counts)
    settings.set_conf(ws, {"maxTokenLifetimeDays": "90", "enableResultsDownloading": "false"})
    settings.create_list(ws, "corporate egress", "ALLOW", ["10.0.0.0/8", "192.168.0.0/16", "127.0.0.1"])
    counts["ip_access_lists"] = 1


def _queries(
    ws: Workspace, rng: random.Random, n: int, warehouse: str, folders: list[str], counts: dict[str, int]
) -> list[str]:
    ids = []
    for i in range(max(3, n // 15)):
        metric = rng.choice(METRICS)
        spec = {
            "display_name": f"{metric} by day {i}",
            "parent_path": rng.choice(folders),
            "warehouse_id": warehouse,
            "query_text": f"SELECT date, sum({metric}) FROM main.kpis.daily WHERE date > :since GROUP BY date",
            "description": f"Daily {metric}",
            "tags": [rng.choice(TEAMS)],
            "parameters": [{"name": "since", "text_value": {"value": "2024-01-01"}}],
        }
        query_id = sql_objects.create_query(ws, spec)
        if i % 3 == 0:
            _grant(ws, "queries", query_id, rng.choice(TEAMS[:2]), "CAN_RUN")
        ids.append(query_id)
    counts["sql_queries"] = len(ids)
    return ids


def _alerts(ws: Workspace, rng: random.Random, n: int, query_ids: list[str], counts: dict[str, int]) -> None:
    total = max(1, n // 50)
    for i in range(total):
        condition = {
            "op": rng.choice(("GREATER_THAN", "LESS_THAN")),
            "operand": {"column": {"name": "sum"}},
            "threshold": {"value": {"double_value": float(rng.randint(10, 1000))}},
        }
        spec = {"display_name": f"alert {i}", "query_id": query_ids[i % len(query_ids)], "condition": condition}
        sql_objects.create_alert(ws, {**spec, "parent_path": "/Shared/bi"})
    counts["sql_alerts"] = total


def _dashboards(
    ws: Workspace, rng: random.Random, n: int, warehouse: str, folders: list[str], counts: dict[str, int]
) -> None:
    total = max(2, n // 40)
    for i in range(total):
        metric = rng.choice(METRICS)
        layout = {
            "datasets": [{"name": "d1", "displayName": metric, "queryLines": [f"SELECT * FROM main.kpis.{metric}"]}],
            "pages": [{"name": f"p{i}", "displayName": metric.title(), "layout": []}],
        }
        spec = {
            "display_name": f"{metric.title()} overview {i}",
            "parent_path": rng.choice(folders),
            "warehouse_id": warehouse,
            "serialized_dashboard": json.dumps(layout),
        }
        dashboard_id = lakeview.create_dashboard(ws, spec)
        if i % 2 == 0:
            ws.table(lakeview.DASHBOARDS)[dashboard_id]["published"] = {
                "embed_credentials": True,
                "warehouse_id": warehouse,
                "time": ws.now_ms(),
            }
    counts["dashboards"] = total


def _experiments(ws: Workspace, rng: random.Random, n: int, users: list[str], counts: dict[str, int]) -> None:
    total = max(2, n // 15)
    for i in range(total):
        home = f"/Users/{users[i % len(users)]}" if i % 2 else "/Shared/ml"
        tags = [{"key": "team", "value": rng.choice(TEAMS)}, {"key": "mlflow.note.content", "value": f"Model {i}"}]
        experiment_id = mlflow.create_experiment(ws, f"{home}/experiment_{i}", tags=tags)
        for r in range(rng.randint(1, 3)):
            run_id = mlflow.create_run(ws, experiment_id, f"run-{r}", start_time=ws.now_ms())
            record = ws.table(mlflow.RUNS)[run_id]
            record["params"] = {"max_depth": str(rng.randint(3, 9)), "lr": str(rng.choice((0.01, 0.1)))}
            record["metrics"] = {"auc": [{"key": "auc", "value": rng.random(), "timestamp": ws.now_ms(), "step": 0}]}
            record["status"], record["end_time"] = "FINISHED", ws.now_ms()
    counts["mlflow_experiments"] = total


def _models(ws: Workspace, rng: random.Random, n: int, counts: dict[str, int]) -> None:
    total = max(1, n // 50)
    for i in range(total):
        name = f"{rng.choice(METRICS)}-model-{i}"
        mlflow.create_model(ws, name, f"Predicts {name}", [{"key": "team", "value": rng.choice(TEAMS)}])
        versions = rng.randint(1, 3)
        for v in range(versions):
            mlflow.create_version(ws, name, f"dbfs:/databricks/mlflow-tracking/models/{name}/{v + 1}")
        mlflow.transition(ws, name, str(versions), "Production", archive_existing=False)
    counts["registered_models"] = total
