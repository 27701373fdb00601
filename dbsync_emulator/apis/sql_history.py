"""Data sources (`GET /api/2.0/preview/sql/data_sources`) and query history (`GET /api/2.0/sql/history/queries`).

Both are views over the SQL warehouses module's state, with the shapes of databricks-sdk `service/sql.py`
(`DataSourcesAPI.list` answers a bare JSON array of DataSource; `QueryHistoryAPI.list` answers
`{"res", "has_next_page", "next_page_token"}`, most recently started first, `max_results` default 100 and
below 1000, filters in dot notation: `filter_by.warehouse_ids`, `filter_by.statuses`, `filter_by.user_ids`,
`filter_by.statement_ids`, `filter_by.query_start_time_range.start_time_ms` / `.end_time_ms`).

Every data source id is derived from its warehouse id, so it is stable and differs between workspaces.
History holds the Statement Execution API's statements (the last 5000, as the warehouses module keeps
them); queries run by dashboards, notebooks or clusters are not recorded, and metrics are not modelled.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from dbsync_emulator.apis import _paging, scim, sql
from dbsync_emulator.errors import invalid
from dbsync_emulator.router import Request, Response, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

DEFAULT_RESULTS, MAX_RESULTS = 100, 999  # "Must be less than 1000 and the default is 100"
_STATUS = {
    "PENDING": "QUEUED",
    "RUNNING": "RUNNING",
    "SUCCEEDED": "FINISHED",
    "FAILED": "FAILED",
    "CANCELED": "CANCELED",
    "CLOSED": "FINISHED",
}
_STATEMENT_TYPES = (
    "ALTER",
    "ANALYZE",
    "COPY",
    "CREATE",
    "DELETE",
    "DESCRIBE",
    "DROP",
    "EXPLAIN",
    "GRANT",
    "INSERT",
    "MERGE",
    "OPTIMIZE",
    "REFRESH",
    "REPLACE",
    "REVOKE",
    "SELECT",
    "SET",
    "SHOW",
    "TRUNCATE",
    "UPDATE",
    "USE",
)


def data_source_id(ws: Workspace, warehouse_id: str) -> str:
    """The data source id of a warehouse (what legacy queries and alerts reference)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dbsync-emulator/{ws.workspace_id}/data-source/{warehouse_id}"))


@routes.get("/api/2.0/preview/sql/data_sources")
def list_data_sources(ws: Workspace, req: Request) -> Response:
    """One DataSource per warehouse, as a bare JSON array."""
    sources = []
    for warehouse_id, record in ws.table(sql.WAREHOUSES).items():
        stopped = sql.warehouse_state(ws, warehouse_id) in ("STOPPED", "STOPPING")
        sources.append(
            {
                "id": data_source_id(ws, warehouse_id),
                "name": record["spec"]["name"],
                "warehouse_id": warehouse_id,
                "type": "databricks_internal",
                "syntax": "sql",
                "paused": 1 if stopped else 0,
                "pause_reason": "",
                "supports_auto_limit": True,
                "view_only": False,
            }
        )
    return Response(200, sources)


def _statement_type(text: str) -> str:
    m = re.match(r"\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)", text)
    word = m.group(1).upper() if m else ""
    return word if word in _STATEMENT_TYPES else "OTHER"


def _query_info(ws: Workspace, record: dict, admin: dict | None) -> dict:
    status = _STATUS.get(record["state"], record["state"])
    info: dict[str, Any] = {
        "query_id": record["statement_id"],
        "status": status,
        "query_text": record["statement"],
        "statement_type": _statement_type(record["statement"]),
        "warehouse_id": record["warehouse_id"],
        "endpoint_id": record["warehouse_id"],
        "query_start_time_ms": record["submitted_ms"],
        "user_name": ws.admin_user,
        "executed_as_user_name": ws.admin_user,
        "is_final": status in ("FINISHED", "FAILED", "CANCELED"),
        "client_application": "Databricks SQL Statement Execution API",
    }
    if admin is not None:
        info["user_id"] = info["executed_as_user_id"] = int(admin["id"])
    if "finished_ms" in record:
        info["query_end_time_ms"] = info["execution_end_time_ms"] = record["finished_ms"]
        info["duration"] = record["finished_ms"] - record["submitted_ms"]
    if record.get("error"):
        info["error_message"] = record["error"]["message"]
    if status == "FINISHED":
        info["rows_produced"] = len(record.get("data") or [])
    return info


def _matches(info: dict, req: Request) -> bool:
    for key, field in (
        ("filter_by.warehouse_ids", "warehouse_id"),
        ("filter_by.statuses", "status"),
        ("filter_by.statement_ids", "query_id"),
        ("filter_by.user_ids", "user_id"),
    ):
        wanted = req.args(key)
        if wanted and str(info.get(field)) not in wanted:
            return False
    start = req.int_arg("filter_by.query_start_time_range.start_time_ms")
    end = req.int_arg("filter_by.query_start_time_range.end_time_ms")
    started = info["query_start_time_ms"]
    return (start is None or started >= start) and (end is None or started < end)


@routes.get("/api/2.0/sql/history/queries")
def list_queries(ws: Workspace, req: Request) -> dict:
    """A page of QueryInfo, newest first, with `has_next_page` and `next_page_token`."""
    max_results = req.int_arg("max_results", DEFAULT_RESULTS) or DEFAULT_RESULTS
    if not 0 < max_results <= MAX_RESULTS:
        raise invalid(f"max_results must be between 1 and {MAX_RESULTS}, got {max_results}")
    for status in req.args("filter_by.statuses"):
        if status not in (*_STATUS.values(), "STARTED", "COMPILING", "COMPILED"):
            raise invalid(f"Invalid value for filter_by.statuses: {status}")
    admin = scim.find_user(ws, ws.admin_user)
    # Newest first; statements submitted in the same millisecond keep their submission order (the table's).
    submitted = list(ws.table(sql.STATEMENTS).values())
    order = sorted(range(len(submitted)), key=lambda i: (submitted[i]["submitted_ms"], i), reverse=True)
    records = [submitted[i] for i in order]
    infos = [info for info in (_query_info(ws, r, admin) for r in records) if _matches(info, req)]
    chunk, token = _paging.page(infos, max_results, req.arg("page_token"))
    body: dict[str, Any] = {"res": chunk, "has_next_page": token is not None}
    if token:
        body["next_page_token"] = token
    return body
