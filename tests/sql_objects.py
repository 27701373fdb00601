"""SQL warehouses, queries and alerts made on an emulated workspace the way a user would (shared by tests)."""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import sql


def make_warehouse(w: WorkspaceClient, name: str = "BI") -> str:
    created = w.warehouses.create(name=name, cluster_size="2X-Small", auto_stop_mins=10).response.id
    assert created is not None
    return created


def make_query(w: WorkspaceClient, name: str, warehouse_id: str, **extra: object) -> sql.Query:
    spec = sql.CreateQueryRequestQuery(
        display_name=name, query_text=f"SELECT '{name}'", warehouse_id=warehouse_id, parent_path="/Shared", **extra
    )  # type: ignore[arg-type]
    return w.queries.create(query=spec)


def make_alert(w: WorkspaceClient, name: str, query_id: str, threshold: float = 10) -> sql.Alert:
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
