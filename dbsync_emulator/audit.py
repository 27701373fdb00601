"""The workspace's audit log as the `system.access.audit` system table: the emulator records its own mutations.

Each successful write through the REST API appends one row (service_name, action_name, request_params ...),
readable with SQL on a warehouse once its delivery delay has passed (`Workspace.audit_delay_seconds`: the real
table lags the events it records). `Workspace.audit_table = False` makes the table absent, as on a workspace
without system tables enabled (TABLE_OR_VIEW_NOT_FOUND).

Columns, service and action names follow the audit log system table reference (docs.databricks.com
admin/system-tables/audit-logs: account_id ... event_id; request_params is a MAP<STRING, STRING>, which the
statement API's JSON_ARRAY format carries as JSON text) and the audit log reference (services notebook,
workspace, jobs, clusters, secrets, dashboards; ACL changes changeJobAcl, changeClusterAcl, changeInstancePoolAcl,
changeClusterPolicyAcl, and changeWorkspaceAcl with `aclChangeResourceName` "<type>/<id>" for workspace
objects). Where the reference is not precise (the exact parameters of each action) the row carries the ids a
reader needs and nothing more.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from dbsync_emulator.router import Request
from dbsync_emulator.state import Workspace

TABLE = "audit_log"  # workspace table: event number -> row (snapshotted like any state)
NAME = ("system", "access", "audit")

# (column, Spark type) in the system table's order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("account_id", "STRING"),
    ("workspace_id", "STRING"),
    ("version", "STRING"),
    ("event_time", "TIMESTAMP"),
    ("event_date", "DATE"),
    ("source_ip_address", "STRING"),
    ("user_agent", "STRING"),
    ("session_id", "STRING"),
    ("user_identity", "STRUCT<email: STRING, subject_name: STRING>"),
    ("service_name", "STRING"),
    ("action_name", "STRING"),
    ("request_id", "STRING"),
    ("request_params", "MAP<STRING, STRING>"),
    ("response", "STRUCT<status_code: INT, error_message: STRING, result: STRING>"),
    ("audit_level", "STRING"),
    ("event_id", "STRING"),
)

Params = Callable[[Request, Any], dict[str, str] | None]

_JOBS = re.compile(r"^/api/2\.[012]/jobs/(create|reset|update|delete)$")
_CLUSTERS = re.compile(r"^/api/2\.[01]/clusters/(create|edit|delete|permanent-delete)$")
_PERMISSIONS = re.compile(r"^/api/2\.0/permissions/(.+)/([^/]+)$")
_DASHBOARDS = re.compile(r"^/api/2\.0/lakeview/dashboards(?:/([^/]+))?(/published)?$")
# AI/BI dashboard writes (service "dashboards"): method (and /published) -> action.
_DASHBOARD_ACTIONS = {
    ("POST", False): "createDashboard",
    ("PATCH", False): "updateDashboard",
    ("DELETE", False): "trashDashboard",
    ("POST", True): "publishDashboard",
    ("DELETE", True): "unpublishDashboard",
}
_CLUSTER_ACTIONS = {"permanent-delete": "permanentDelete"}
# Permissions API request type -> (service, action) of an ACL change; workspace objects share changeWorkspaceAcl.
_ACL_ACTIONS = {
    "jobs": ("jobs", "changeJobAcl"),
    "clusters": ("clusters", "changeClusterAcl"),
    "instance-pools": ("instancePools", "changeInstancePoolAcl"),
    "cluster-policies": ("clusterPolicies", "changeClusterPolicyAcl"),
}
_SIMPLE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "/api/2.0/workspace/import": ("notebook", "importNotebook", ("path",)),
    "/api/2.0/workspace/mkdirs": ("workspace", "mkdirs", ("path",)),
    "/api/2.0/workspace/delete": ("notebook", "deleteNotebook", ("path",)),
    "/api/2.0/secrets/scopes/create": ("secrets", "createScope", ("scope",)),
    "/api/2.0/secrets/scopes/delete": ("secrets", "deleteScope", ("scope",)),
    "/api/2.0/secrets/put": ("secrets", "putSecret", ("scope", "key")),
    "/api/2.0/secrets/delete": ("secrets", "deleteSecret", ("scope", "key")),
    "/api/2.0/secrets/acls/put": ("secrets", "putAcl", ("scope", "principal")),
    "/api/2.0/secrets/acls/delete": ("secrets", "deleteAcl", ("scope", "principal")),
}


def event_for(method: str, path: str, req: Request, result: Any) -> tuple[str, str, dict[str, str]] | None:
    """(service, action, request params) of a successful write, or None for a request the log does not record."""
    if method == "GET":
        return None
    body = _body(req)
    simple = _SIMPLE.get(path)
    if simple is not None and method == "POST":
        service, action, names = simple
        return service, action, {n: str(body[n]) for n in names if body.get(n) is not None}
    if (match := _JOBS.match(path)) and method == "POST":
        job_id = body.get("job_id") or (result or {}).get("job_id")
        return "jobs", match.group(1), {"job_id": str(job_id)}
    if (match := _CLUSTERS.match(path)) and method == "POST":
        cluster_id = body.get("cluster_id") or (result or {}).get("cluster_id")
        action = _CLUSTER_ACTIONS.get(match.group(1), match.group(1))
        return "clusters", action, {"cluster_id": str(cluster_id)}
    if (match := _PERMISSIONS.match(path)) and method in ("PUT", "PATCH"):
        return _acl_event(match.group(1), match.group(2))
    if (match := _DASHBOARDS.match(path)) and (method, bool(match.group(2))) in _DASHBOARD_ACTIONS:
        dashboard_id = match.group(1) or (result or {}).get("dashboard_id")
        return "dashboards", _DASHBOARD_ACTIONS[method, bool(match.group(2))], {"dashboard_id": str(dashboard_id)}
    return None


def _acl_event(request_type: str, object_id: str) -> tuple[str, str, dict[str, str]]:
    known = _ACL_ACTIONS.get(request_type)
    if known is not None:
        return known[0], known[1], {"resourceId": object_id}
    return "workspace", "changeWorkspaceAcl", {"aclChangeResourceName": f"{request_type}/{object_id}"}


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json
    except Exception:  # a multipart import or a body the handler already refused: no parameters
        return {}
    return body if isinstance(body, dict) else {}


def record(ws: Workspace, event: tuple[str, str, dict[str, str]], status: int) -> None:
    """Append one row (called under the workspace lock, after the handler succeeded)."""
    service, action, params = event
    number = ws.next_id("audit_event")
    moment = dt.datetime.fromtimestamp(ws.now_ms() / 1000, dt.UTC)
    ws.table(TABLE)[number] = {
        "account_id": "00000000-0000-0000-0000-000000000000",
        "workspace_id": str(ws.workspace_id),
        "version": "2.0",
        "event_time": _timestamp(moment),
        "event_date": moment.date().isoformat(),
        "source_ip_address": "127.0.0.1",
        "user_agent": "emulator",
        "session_id": None,
        "user_identity": json.dumps({"email": ws.admin_user, "subject_name": None}),
        "service_name": service,
        "action_name": action,
        "request_id": f"emulator-{number}",
        "request_params": json.dumps(params, sort_keys=True),
        "response": json.dumps({"status_code": status, "error_message": None, "result": None}),
        "audit_level": "WORKSPACE_LEVEL",
        "event_id": f"{ws.workspace_id:x}{number:016x}",
        "_delivered_ms": ws.now_ms() + int(ws.audit_delay_seconds * 1000),
    }


def delivered_rows(ws: Workspace) -> list[list[Any]]:
    """The rows whose delivery delay has passed, in the table's column order."""
    now = ws.now_ms()
    names = [name for name, _ in COLUMNS]
    rows = [row for row in ws.table(TABLE).values() if row["_delivered_ms"] <= now]
    return [[row[name] for name in names] for row in rows]


def _timestamp(moment: dt.datetime) -> str:
    """The engine's TIMESTAMP text (UTC, milliseconds): compares as text in event order."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
