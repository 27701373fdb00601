"""Databricks SQL queries and alerts, the current APIs (`/api/2.0/sql/queries`, `/api/2.0/sql/alerts`).

Records live in tables "sql_queries" and "sql_alerts" keyed by their UUID. Both APIs:
- list with `page_size` (default 20, at most 100) and `page_token`, ordered by creation time; trashed
  objects are left out, and the list items carry no `parent_path`;
- create with `{"<object>": {...}, "auto_resolve_display_name"}`: a display name already used in the same
  folder is refused unless auto-resolved (" (1)", " (2)", ...); the folder must exist;
- update with `update_mask` (comma-separated field names, or `*`): a masked field absent from the body
  is cleared;
- delete = move to the trash (`lifecycle_state` TRASHED): GET still answers, list does not, and a
  trashed object can no longer be updated, deleted or used by an alert.
`parent_path` is answered with the `/Workspace` prefix, as the service does. A query's `warehouse_id`
must name an existing warehouse and an alert's `query_id` an active query.

Not modelled: visualizations (the list answers none), alert evaluation (state stays UNKNOWN),
restoring from the trash (UI only in the service), queries and alerts as workspace-tree objects.
"""

from __future__ import annotations

from typing import Any

from dbsync_emulator.apis import permissions, sql, workspace
from dbsync_emulator.apis._paging import iso, new_uuid, page, page_size
from dbsync_emulator.errors import ApiError, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

QUERIES = "sql_queries"
ALERTS = "sql_alerts"
PAGE_DEFAULT, PAGE_MAX = 20, 100
LEVELS = ("CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE")

QUERY_FIELDS = (
    "apply_auto_limit",
    "catalog",
    "description",
    "display_name",
    "parameters",
    "query_text",
    "run_as_mode",
    "schema",
    "tags",
    "warehouse_id",
)
QUERY_UPDATE_FIELDS = (*QUERY_FIELDS, "owner_user_name")
ALERT_FIELDS = (
    "condition",
    "custom_body",
    "custom_subject",
    "display_name",
    "notify_on_ok",
    "query_id",
    "seconds_to_retrigger",
)
ALERT_UPDATE_FIELDS = (*ALERT_FIELDS, "owner_user_name")
RUN_AS_MODES = ("OWNER", "VIEWER")
ALERT_OPERATORS = (
    "EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "IS_NULL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "NOT_EQUAL",
)
ALERT_STATES = ("OK", "TRIGGERED", "UNKNOWN")
PARAMETER_VALUES = (
    "text_value",
    "numeric_value",
    "enum_value",
    "query_backed_value",
    "date_value",
    "date_range_value",
)


def _exists(table: str) -> Any:
    def exists(ws: Workspace, object_id: str) -> bool:
        return object_id in ws.table(table)

    return exists


# The SDK's permission types are "queries" and "alerts"; the REST reference also accepts sql/...
permissions.register("queries", "query", LEVELS, _exists(QUERIES), aliases=("sql/queries",))
permissions.register("alerts", "alert", LEVELS, _exists(ALERTS), aliases=("sql/alerts",))


# -- shared helpers -----------------------------------------------------------------------------------
def _folder(ws: Workspace, parent_path: Any) -> str:
    """The folder a new object goes in (the caller's home by default); it must exist."""
    if parent_path in (None, ""):
        parent_path = f"/Users/{ws.admin_user}"
    path = workspace.normalize_path(parent_path)
    obj = workspace.get_object(ws, path)
    if obj is None or obj["object_type"] not in ("DIRECTORY", "REPO"):
        raise not_found(f"Path ({path}) doesn't exist.")
    return path


def _unique_name(ws: Workspace, table: str, folder: str, name: str, auto_resolve: bool, current: str | None) -> str:
    """The display name, or a free variant of it when auto_resolve; a clash without it is refused."""
    taken = {
        r["display_name"]
        for r in ws.table(table).values()
        if r["parent_path"] == folder and r["lifecycle_state"] == "ACTIVE" and r["id"] != current
    }
    if name not in taken:
        return name
    if not auto_resolve:
        raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Node named '{name}' already exists in {folder}")
    n = 1
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


def _check_owner(ws: Workspace, owner: Any) -> str:
    if not isinstance(owner, str) or not owner:
        raise invalid("owner_user_name must be a non-empty string")
    if not (
        permissions.principal_exists(ws, "user_name", owner)
        or permissions.principal_exists(ws, "service_principal_name", owner)
    ):
        raise invalid(f"User {owner} does not exist in this workspace")
    return owner


def _parse_mask(req: Request, allowed: tuple[str, ...]) -> tuple[str, ...]:
    mask = req.json.get("update_mask")
    if not isinstance(mask, str) or not mask.strip():
        raise invalid("update_mask is required: a comma-separated list of the fields to update, or *")
    if mask.strip() == "*":
        return allowed
    fields = tuple(f.strip() for f in mask.split(","))
    unknown = [f for f in fields if f not in allowed]
    if unknown:
        raise invalid(f"Invalid update_mask: field {unknown[0]!r} cannot be updated")
    return fields


def _body_object(req: Request, name: str) -> dict:
    value = req.json.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "MALFORMED_REQUEST", f"Could not parse request object: {name} must be an object")
    return value


def _active(ws: Workspace, table: str, object_id: str, label: str) -> dict:
    record = ws.table(table).get(object_id)
    if record is None or record["lifecycle_state"] != "ACTIVE":
        raise not_found(f"{label} {object_id} does not exist.")
    return record


def _render_common(record: dict, fields: tuple[str, ...]) -> dict:
    out: dict[str, Any] = {"id": record["id"]}
    for field in fields:
        value = record.get(field)
        if value not in (None, [], ""):
            out[field] = value
    out["owner_user_name"] = record["owner_user_name"]
    out["lifecycle_state"] = record["lifecycle_state"]
    out["create_time"] = iso(record["create_time"])
    out["update_time"] = iso(record["update_time"])
    return out


def _listing(ws: Workspace, req: Request, table: str, render: Any) -> dict:
    size = page_size(req.int_arg("page_size"), PAGE_DEFAULT, PAGE_MAX)
    records = sorted(
        (r for r in ws.table(table).values() if r["lifecycle_state"] == "ACTIVE"),
        key=lambda r: (r["create_time"], r["seq"]),
    )
    chunk, token = page(records, size, req.arg("page_token"))
    body: dict[str, Any] = {}
    if chunk:
        body["results"] = [render(ws, r, listing=True) for r in chunk]
    if token:
        body["next_page_token"] = token
    return body


# -- queries --------------------------------------------------------------------------------------------
def _check_parameters(ws: Workspace, parameters: Any) -> list[dict]:
    if not isinstance(parameters, list):
        raise invalid("parameters must be a list")
    for p in parameters:
        if not isinstance(p, dict) or not p.get("name"):
            raise invalid("Every query parameter needs a name")
        values = [v for v in PARAMETER_VALUES if p.get(v) is not None]
        if len(values) > 1:
            raise invalid(f"Query parameter {p['name']} sets more than one value type: {', '.join(values)}")
        backed = p.get("query_backed_value")
        if backed is not None and backed.get("query_id") not in ws.table(QUERIES):
            raise invalid(f"Query parameter {p['name']}: query {backed.get('query_id')} does not exist")
    return parameters


def _query_field(ws: Workspace, field: str, value: Any) -> Any:
    """Validate one settable query field (None clears it)."""
    if value is None:
        return None
    if field == "warehouse_id" and value not in ws.table(sql.WAREHOUSES):
        raise invalid(f"Warehouse {value} does not exist")
    if field == "run_as_mode" and value not in RUN_AS_MODES:
        raise invalid(f"Invalid run_as_mode: {value}. Supported values: {', '.join(RUN_AS_MODES)}")
    if field == "tags" and (not isinstance(value, list) or not all(isinstance(t, str) for t in value)):
        raise invalid("tags must be a list of strings")
    if field == "parameters":
        return _check_parameters(ws, value)
    if field == "apply_auto_limit" and not isinstance(value, bool):
        raise invalid("apply_auto_limit must be a boolean")
    if field == "owner_user_name":
        return _check_owner(ws, value)
    return value


def create_query(ws: Workspace, spec: dict, auto_resolve: bool = False, creator: str | None = None) -> str:
    """Create a query like POST /sql/queries; returns its id."""
    name = spec.get("display_name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("display_name is required")
    folder = _folder(ws, spec.get("parent_path"))
    record: dict[str, Any] = {f: _query_field(ws, f, spec.get(f)) for f in QUERY_FIELDS}
    query_id = str(new_uuid(ws))
    now = ws.now_ms()
    owner = creator or ws.admin_user
    record.update(
        id=query_id,
        display_name=_unique_name(ws, QUERIES, folder, name, auto_resolve, None),
        parent_path=folder,
        run_as_mode=record.get("run_as_mode") or "OWNER",
        owner_user_name=owner,
        last_modifier_user_name=owner,
        lifecycle_state="ACTIVE",
        create_time=now,
        update_time=now,
        seq=ws.next_id("sql_object_seq"),
    )
    ws.table(QUERIES)[query_id] = record
    permissions.grant_creator(ws, "queries", query_id, owner)
    return query_id


def render_query(ws: Workspace, record: dict, listing: bool = False) -> dict:
    out = _render_common(record, QUERY_FIELDS)
    out["last_modifier_user_name"] = record["last_modifier_user_name"]
    if not listing:  # the list answers no parent_path
        out["parent_path"] = "/Workspace" + record["parent_path"]
    return out


@routes.get("/api/2.0/sql/queries")
def list_queries(ws: Workspace, req: Request) -> dict:
    return _listing(ws, req, QUERIES, render_query)


@routes.post("/api/2.0/sql/queries")
def create_query_handler(ws: Workspace, req: Request) -> dict:
    spec = _body_object(req, "query")
    query_id = create_query(ws, spec, bool(req.json.get("auto_resolve_display_name")))
    return render_query(ws, ws.table(QUERIES)[query_id])


@routes.get("/api/2.0/sql/queries/{id}")
def get_query(ws: Workspace, req: Request) -> dict:
    record = ws.table(QUERIES).get(req.path_params["id"])
    if record is None:
        raise not_found(f"Query {req.path_params['id']} does not exist.")
    return render_query(ws, record)


@routes.patch("/api/2.0/sql/queries/{id}")
def update_query(ws: Workspace, req: Request) -> dict:
    record = _active(ws, QUERIES, req.path_params["id"], "Query")
    fields = _parse_mask(req, QUERY_UPDATE_FIELDS)
    spec = _body_object(req, "query")
    changes = {f: _query_field(ws, f, spec.get(f)) for f in fields}
    if "display_name" in changes:
        if not changes["display_name"]:
            raise invalid("display_name cannot be empty")
        changes["display_name"] = _unique_name(
            ws,
            QUERIES,
            record["parent_path"],
            changes["display_name"],
            bool(req.json.get("auto_resolve_display_name")),
            record["id"],
        )
    if "owner_user_name" in changes and changes["owner_user_name"] is None:
        raise invalid("owner_user_name cannot be cleared")
    if "run_as_mode" in changes and changes["run_as_mode"] is None:
        changes["run_as_mode"] = "OWNER"
    record.update(changes, update_time=max(ws.now_ms(), record["update_time"] + 1))
    record["last_modifier_user_name"] = ws.admin_user
    return render_query(ws, record)


@routes.delete("/api/2.0/sql/queries/{id}")
def trash_query(ws: Workspace, req: Request) -> dict:
    record = _active(ws, QUERIES, req.path_params["id"], "Query")
    record["lifecycle_state"] = "TRASHED"
    record["update_time"] = max(ws.now_ms(), record["update_time"] + 1)
    return {}


@routes.get("/api/2.0/sql/queries/{id}/visualizations")
def list_visualizations(ws: Workspace, req: Request) -> dict:
    _active(ws, QUERIES, req.path_params["id"], "Query")
    return {}  # visualizations are not modelled: an empty page


# -- alerts ---------------------------------------------------------------------------------------------
def _check_condition(condition: Any) -> dict:
    if not isinstance(condition, dict):
        raise invalid("condition is required")
    if condition.get("op") not in ALERT_OPERATORS:
        raise invalid(f"Invalid condition.op: {condition.get('op')}. Supported values: {', '.join(ALERT_OPERATORS)}")
    column = ((condition.get("operand") or {}).get("column") or {}).get("name")
    if not column:
        raise invalid("condition.operand.column.name is required")
    threshold = (condition.get("threshold") or {}).get("value")
    if threshold is not None:
        kinds = [k for k in ("bool_value", "double_value", "string_value") if threshold.get(k) is not None]
        if len(kinds) != 1:
            raise invalid("condition.threshold.value must set exactly one of bool_value, double_value, string_value")
    state = condition.get("empty_result_state")
    if state is not None and state not in ALERT_STATES:
        raise invalid(f"Invalid condition.empty_result_state: {state}")
    return condition


def _alert_field(ws: Workspace, field: str, value: Any) -> Any:
    if field == "condition":
        return _check_condition(value)
    if value is None:
        return None
    if field == "query_id":
        query = ws.table(QUERIES).get(value)
        if query is None or query["lifecycle_state"] != "ACTIVE":
            raise invalid(f"Query {value} does not exist or is in the trash")
    if field == "seconds_to_retrigger" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise invalid("seconds_to_retrigger must be a non-negative integer")
    if field == "notify_on_ok" and not isinstance(value, bool):
        raise invalid("notify_on_ok must be a boolean")
    if field == "owner_user_name":
        return _check_owner(ws, value)
    return value


def create_alert(ws: Workspace, spec: dict, auto_resolve: bool = False, creator: str | None = None) -> str:
    """Create an alert like POST /sql/alerts; returns its id."""
    name = spec.get("display_name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("display_name is required")
    if not spec.get("query_id"):
        raise invalid("query_id is required")
    folder = _folder(ws, spec.get("parent_path"))
    record: dict[str, Any] = {f: _alert_field(ws, f, spec.get(f)) for f in ALERT_FIELDS}
    alert_id = str(new_uuid(ws))
    now = ws.now_ms()
    owner = creator or ws.admin_user
    record.update(
        id=alert_id,
        display_name=_unique_name(ws, ALERTS, folder, name, auto_resolve, None),
        parent_path=folder,
        owner_user_name=owner,
        state="UNKNOWN",
        lifecycle_state="ACTIVE",
        create_time=now,
        update_time=now,
        seq=ws.next_id("sql_object_seq"),
    )
    ws.table(ALERTS)[alert_id] = record
    permissions.grant_creator(ws, "alerts", alert_id, owner)
    return alert_id


def render_alert(ws: Workspace, record: dict, listing: bool = False) -> dict:
    out = _render_common(record, ALERT_FIELDS)
    out["state"] = record["state"]
    if not listing:
        out["parent_path"] = "/Workspace" + record["parent_path"]
    return out


@routes.get("/api/2.0/sql/alerts")
def list_alerts(ws: Workspace, req: Request) -> dict:
    return _listing(ws, req, ALERTS, render_alert)


@routes.post("/api/2.0/sql/alerts")
def create_alert_handler(ws: Workspace, req: Request) -> dict:
    spec = _body_object(req, "alert")
    alert_id = create_alert(ws, spec, bool(req.json.get("auto_resolve_display_name")))
    return render_alert(ws, ws.table(ALERTS)[alert_id])


@routes.get("/api/2.0/sql/alerts/{id}")
def get_alert(ws: Workspace, req: Request) -> dict:
    record = ws.table(ALERTS).get(req.path_params["id"])
    if record is None:
        raise not_found(f"Alert {req.path_params['id']} does not exist.")
    return render_alert(ws, record)


@routes.patch("/api/2.0/sql/alerts/{id}")
def update_alert(ws: Workspace, req: Request) -> dict:
    record = _active(ws, ALERTS, req.path_params["id"], "Alert")
    fields = _parse_mask(req, ALERT_UPDATE_FIELDS)
    spec = _body_object(req, "alert")
    changes = {f: _alert_field(ws, f, spec.get(f)) for f in fields}
    for required in ("display_name", "query_id", "owner_user_name"):
        if required in changes and not changes[required]:
            raise invalid(f"{required} cannot be cleared")
    if "display_name" in changes:
        changes["display_name"] = _unique_name(
            ws,
            ALERTS,
            record["parent_path"],
            changes["display_name"],
            bool(req.json.get("auto_resolve_display_name")),
            record["id"],
        )
    record.update(changes, update_time=max(ws.now_ms(), record["update_time"] + 1))
    return render_alert(ws, record)


@routes.delete("/api/2.0/sql/alerts/{id}")
def trash_alert(ws: Workspace, req: Request) -> dict:
    record = _active(ws, ALERTS, req.path_params["id"], "Alert")
    record["lifecycle_state"] = "TRASHED"
    record["update_time"] = max(ws.now_ms(), record["update_time"] + 1)
    return {}
