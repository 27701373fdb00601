"""SQL warehouses 2.0 (`/api/2.0/sql/warehouses`, legacy `/api/2.0/sql/endpoints`), the workspace
warehouse config, and the Statement Execution API 2.0 (`/api/2.0/sql/statements`).

Warehouses live in table "sql_warehouses" keyed by id. Their state is derived lazily from timestamps
(time.time, so freezegun works): STARTING becomes RUNNING `ws.cluster_start_seconds` after a start,
STOPPING becomes STOPPED as long after a stop, and a RUNNING warehouse idle for `auto_stop_mins` is
STOPPED. Statements live in "sql_statements"; each warehouse has a FIFO of statements waiting for it
to run ("sql_statement_queue"). Statements run synchronously on the SQL engine (`sqlengine`), so a
request with wait_timeout >= 5s answers the result at once, and "0s" answers PENDING and the result on
the next GET. A statement sent to a stopped warehouse starts it, as the service does.

Not modelled: EXTERNAL_LINKS disposition (501 NOT_IMPLEMENTED), ARROW_STREAM/CSV formats (400, INLINE
only allows JSON_ARRAY), query_tags (accepted, ignored), real concurrency or queueing delays.
"""

from __future__ import annotations

import base64
import json
import random
import re
from typing import Any

from dbsync_emulator import sqlengine
from dbsync_emulator.apis import permissions
from dbsync_emulator.errors import ApiError, already_exists, bad_request, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

WAREHOUSES = "sql_warehouses"
STATEMENTS = "sql_statements"
QUEUES = "sql_statement_queue"
CONFIG = "sql_config"

CLUSTER_SIZES = (
    "2X-Small",
    "X-Small",
    "Small",
    "Medium",
    "Large",
    "X-Large",
    "2X-Large",
    "3X-Large",
    "4X-Large",
    "5X-Large",
)
WAREHOUSE_TYPES = ("CLASSIC", "PRO", "TYPE_UNSPECIFIED")
SPOT_POLICIES = ("COST_OPTIMIZED", "RELIABILITY_OPTIMIZED", "POLICY_UNSPECIFIED")
CHANNEL_NAMES = (
    "CHANNEL_NAME_CURRENT",
    "CHANNEL_NAME_PREVIEW",
    "CHANNEL_NAME_PREVIOUS",
    "CHANNEL_NAME_CUSTOM",
)
SECURITY_POLICIES = ("NONE", "DATA_ACCESS_CONTROL", "PASSTHROUGH")
PERMISSION_LEVELS = ("CAN_USE", "CAN_MONITOR", "CAN_VIEW", "CAN_MANAGE", "IS_OWNER")
# Fields of a create/edit request; read-only EndpointInfo fields and unknown keys are ignored.
SPEC_FIELDS = (
    "name",
    "cluster_size",
    "min_num_clusters",
    "max_num_clusters",
    "auto_stop_mins",
    "enable_photon",
    "enable_serverless_compute",
    "warehouse_type",
    "spot_instance_policy",
    "channel",
    "tags",
    "instance_profile_arn",
    "max_dbu",
    "statement_timeout",
)
_DEFAULTS: dict[str, Any] = {
    "auto_stop_mins": 120,
    "min_num_clusters": 1,
    "enable_photon": True,
    "enable_serverless_compute": False,
    "spot_instance_policy": "COST_OPTIMIZED",
    "warehouse_type": "CLASSIC",
    "channel": {"name": "CHANNEL_NAME_CURRENT"},
}
_CONFIG_DEFAULTS: dict[str, Any] = {
    "security_policy": "DATA_ACCESS_CONTROL",
    "enable_serverless_compute": True,
    "enabled_warehouse_types": [
        {"warehouse_type": "CLASSIC", "enabled": True},
        {"warehouse_type": "PRO", "enabled": True},
    ],
}
_CONFIG_FIELDS = (
    "channel",
    "config_param",
    "data_access_config",
    "enable_serverless_compute",
    "enabled_warehouse_types",
    "global_param",
    "google_service_account",
    "instance_profile_arn",
    "security_policy",
    "sql_configuration_parameters",
)
_LEGACY_PREFIX = "/api/2.0/sql/endpoints"

CHUNK_ROWS = 1000  # rows per INLINE result chunk
CHUNK_BYTES = 4 * 1024 * 1024  # and a byte cap per chunk (JSON size of its rows)
INLINE_LIMIT_BYTES = 25 * 1024 * 1024  # INLINE results larger than this fail, as the service's do
RESULT_TTL_MS = 3600 * 1000  # results stay available one hour after completion, then CLOSED
MAX_STATEMENTS = 5000  # finished statements kept; the oldest are forgotten beyond this
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "CLOSED")
_TYPE_NAMES = {
    "INT": "INT",
    "INTEGER": "INT",
    "BIGINT": "LONG",
    "LONG": "LONG",
    "SMALLINT": "SHORT",
    "SHORT": "SHORT",
    "TINYINT": "BYTE",
    "BYTE": "BYTE",
    "STRING": "STRING",
    "VARCHAR": "STRING",
    "CHAR": "CHAR",
    "BOOLEAN": "BOOLEAN",
    "DOUBLE": "DOUBLE",
    "FLOAT": "FLOAT",
    "DECIMAL": "DECIMAL",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP_NTZ": "TIMESTAMP",
    "BINARY": "BINARY",
    "ARRAY": "ARRAY",
    "MAP": "MAP",
    "STRUCT": "STRUCT",
    "VOID": "NULL",
    "INTERVAL": "INTERVAL",
}


def init(ws: Workspace) -> None:
    """A new workspace's metastore: hive_metastore.default and main.default."""
    sqlengine.init_metastore(ws)


def _warehouse_exists(ws: Workspace, warehouse_id: str) -> bool:
    return warehouse_id in ws.table(WAREHOUSES)


# The service answers object_id "/sql/warehouses/{id}"; the SDK requests type "warehouses".
permissions.register(
    "sql/warehouses",
    "warehouses",
    PERMISSION_LEVELS,
    _warehouse_exists,
    owner_level="IS_OWNER",
    aliases=("warehouses",),
)


# -- warehouse state --------------------------------------------------------------------------------
def _transition_ms(ws: Workspace) -> int:
    return int(ws.cluster_start_seconds * 1000)


def _state_of(ws: Workspace, record: dict) -> str:
    """The state now, from the last transition's timestamp (STARTING → RUNNING, STOPPING → STOPPED)."""
    now = ws.now_ms()
    base, since = record["state"], record["state_since_ms"]
    if base in ("STARTING", "STOPPING") and now - since < _transition_ms(ws):
        return base
    if base in ("STOPPING", "STOPPED"):
        return "STOPPED"
    running_since = since + _transition_ms(ws) if base == "STARTING" else since
    idle_mins = record["spec"].get("auto_stop_mins") or 0
    idle_from = max(running_since, record.get("last_used_ms") or 0)
    if idle_mins and now - idle_from >= idle_mins * 60_000:
        return "STOPPED"  # auto-stopped after auto_stop_mins without statements
    return "RUNNING"


def warehouse_state(ws: Workspace, warehouse_id: str) -> str | None:
    """The current state of a warehouse ("RUNNING", ...), or None when it does not exist."""
    record = ws.table(WAREHOUSES).get(warehouse_id)
    return _state_of(ws, record) if record else None


def _set_state(ws: Workspace, record: dict, state: str) -> None:
    record["state"], record["state_since_ms"] = state, ws.now_ms()


def _start(ws: Workspace, record: dict) -> None:
    if _state_of(ws, record) not in ("RUNNING", "STARTING"):
        _set_state(ws, record, "STARTING")


def _stop(ws: Workspace, record: dict) -> None:
    if _state_of(ws, record) not in ("STOPPED", "STOPPING"):
        _set_state(ws, record, "STOPPING")
    _cancel_queue(ws, record["id"])  # stopping a warehouse cancels what waits for it


def _running_at(ws: Workspace, record: dict) -> int | None:
    """When the warehouse is (or will be) RUNNING; None when it is stopped."""
    state = _state_of(ws, record)
    if state == "RUNNING":
        return ws.now_ms()
    if state == "STARTING":
        return record["state_since_ms"] + _transition_ms(ws)
    return None


# -- warehouse specs ----------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_int(spec: dict, key: str) -> int | None:
    value = spec.get(key)
    if value is not None and not _is_int(value):
        raise invalid(f"Invalid value for {key}: {value!r} is not an integer")
    return value


def _check_enum(spec: dict, key: str, allowed: tuple[str, ...]) -> None:
    value = spec.get(key)
    if value is not None and value not in allowed:
        raise invalid(f"Invalid {key}: {value}. Supported values: {', '.join(allowed)}")


def _check_name(ws: Workspace, name: Any, current_id: str | None) -> None:
    if not isinstance(name, str) or not name.strip():
        raise invalid("Missing required field: name")
    if len(name) >= 100:
        raise invalid("The warehouse name must be less than 100 characters")
    for other_id, other in ws.table(WAREHOUSES).items():
        if other_id != current_id and other["spec"]["name"] == name:
            raise already_exists(f"SQL warehouse with name '{name}' already exists")


def _check_scaling(spec: dict) -> None:
    auto_stop = _require_int(spec, "auto_stop_mins")
    if auto_stop is not None and auto_stop != 0 and auto_stop < 10:
        raise invalid("auto_stop_mins must be 0 (no autostop) or at least 10 minutes")
    minimum = _require_int(spec, "min_num_clusters") or 1
    maximum = _require_int(spec, "max_num_clusters")
    if not 1 <= minimum <= 30:
        raise invalid("min_num_clusters must be between 1 and 30")
    if maximum is not None and not minimum <= maximum <= 40:
        raise invalid("max_num_clusters must be at least min_num_clusters and at most 40")


def _check_extras(spec: dict) -> None:
    for key in ("enable_photon", "enable_serverless_compute"):
        if key in spec and not isinstance(spec[key], bool):
            raise invalid(f"Invalid value for {key}: {spec[key]!r} is not a boolean")
    _check_enum(spec, "warehouse_type", WAREHOUSE_TYPES)
    _check_enum(spec, "spot_instance_policy", SPOT_POLICIES)
    if spec.get("enable_serverless_compute") and spec.get("warehouse_type") != "PRO":
        raise invalid("Serverless compute requires warehouse_type PRO")
    channel = spec.get("channel")
    if channel is not None:
        if not isinstance(channel, dict):
            raise invalid("channel must be an object")
        _check_enum(channel, "name", CHANNEL_NAMES)
    tags = spec.get("tags")
    if tags is not None:
        custom = tags.get("custom_tags") if isinstance(tags, dict) else None
        if not isinstance(custom, list) or not all(isinstance(t, dict) and t.get("key") for t in custom):
            raise invalid("tags.custom_tags must be a list of {key, value}")
        if len(custom) >= 45:
            raise invalid("The number of custom tags must be less than 45")


def _normalize_spec(ws: Workspace, body: dict, current_id: str | None = None) -> dict:
    """Validate a create/edit body and fill the service's defaults; the result is the full spec."""
    spec = {key: body[key] for key in SPEC_FIELDS if body.get(key) is not None}
    _check_name(ws, spec.get("name"), current_id)
    if spec.get("cluster_size") is None:
        raise invalid("Missing required field: cluster_size")
    _check_enum(spec, "cluster_size", CLUSTER_SIZES)
    _check_scaling(spec)
    _check_extras(spec)
    spec = {**_DEFAULTS, **spec}
    spec.setdefault("max_num_clusters", spec["min_num_clusters"])
    if spec.get("tags") is not None and not spec["tags"].get("custom_tags"):
        spec.pop("tags")
    return spec


def _new_warehouse_id(ws: Workspace) -> str:
    # Seeded by the workspace id, like cluster ids: two workspaces never hand out the same warehouse id.
    while True:
        rng = random.Random(f"warehouse:{ws.workspace_id}:{ws.next_id('warehouse_ids')}")
        warehouse_id = "".join(rng.choice("0123456789abcdef") for _ in range(16))
        if warehouse_id not in ws.table(WAREHOUSES):
            return warehouse_id


def create_warehouse(ws: Workspace, spec: dict, creator: str | None = None) -> str:
    """Validate and create a warehouse like POST /sql/warehouses (it starts at once); returns its id."""
    normalized = _normalize_spec(ws, spec)
    warehouse_id = _new_warehouse_id(ws)
    now = ws.now_ms()
    ws.table(WAREHOUSES)[warehouse_id] = {
        "id": warehouse_id,
        "spec": normalized,
        "creator_name": creator or ws.admin_user,
        "state": "STARTING",
        "state_since_ms": now,
        "last_used_ms": now,
        "created_ms": now,
    }
    permissions.grant_creator(ws, "sql/warehouses", warehouse_id, creator)
    return warehouse_id


def _load(ws: Workspace, warehouse_id: str) -> dict:
    record = ws.table(WAREHOUSES).get(warehouse_id)
    if record is None:
        raise not_found(f"Warehouse {warehouse_id} does not exist.")
    return record


def _hostname(req: Request | None) -> str:
    host = (req.headers.get("host") if req else None) or "localhost"
    return host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"


def render_warehouse(ws: Workspace, record: dict, req: Request | None = None) -> dict:
    """EndpointInfo: the spec plus the read-only fields (state, health, num_clusters, connection info)."""
    state = _state_of(ws, record)
    warehouse_id = record["id"]
    host = _hostname(req)
    path = f"/sql/1.0/warehouses/{warehouse_id}"
    info = {"id": warehouse_id, **record["spec"], "creator_name": record["creator_name"], "state": state}
    info["num_clusters"] = record["spec"]["min_num_clusters"] if state == "RUNNING" else 0
    info["num_active_sessions"] = 0
    info["jdbc_url"] = f"jdbc:spark://{host}:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath={path};"
    info["odbc_params"] = {"hostname": host, "path": path, "protocol": "https", "port": 443}
    if state == "RUNNING":
        info["health"] = {"status": "HEALTHY"}
    return info


# -- warehouse routes ---------------------------------------------------------------------------------
def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()).decode())["offset"])
    except (ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page token: {token}") from None


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


@routes.get("/api/2.0/sql/warehouses", _LEGACY_PREFIX)
def list_warehouses(ws: Workspace, req: Request) -> dict:
    records = list(ws.table(WAREHOUSES).values())
    page_size = req.int_arg("page_size") or 0
    if page_size < 0:
        raise invalid("page_size must be positive")
    offset = _page_offset(req.arg("page_token"))
    page = records[offset : offset + page_size] if page_size else records[offset:]
    key = "endpoints" if req.path.startswith(_LEGACY_PREFIX) else "warehouses"
    body: dict[str, Any] = {}
    if page:  # the array key is omitted when empty
        body[key] = [render_warehouse(ws, record, req) for record in page]
    if page_size and offset + page_size < len(records):
        body["next_page_token"] = _page_token(offset + page_size)
    return body


@routes.post("/api/2.0/sql/warehouses", _LEGACY_PREFIX)
def create(ws: Workspace, req: Request) -> dict:
    return {"id": create_warehouse(ws, req.json)}


@routes.get("/api/2.0/sql/warehouses/{id}", _LEGACY_PREFIX + "/{id}")
def get(ws: Workspace, req: Request) -> dict:
    return render_warehouse(ws, _load(ws, req.path_params["id"]), req)


@routes.post("/api/2.0/sql/warehouses/{id}/edit", _LEGACY_PREFIX + "/{id}/edit")
def edit(ws: Workspace, req: Request) -> dict:
    """Full replace of the spec: omitted fields take their defaults again."""
    record = _load(ws, req.path_params["id"])
    record["spec"] = _normalize_spec(ws, req.json, current_id=record["id"])
    return {}


@routes.delete("/api/2.0/sql/warehouses/{id}", _LEGACY_PREFIX + "/{id}")
def delete(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    _cancel_queue(ws, record["id"])
    del ws.table(WAREHOUSES)[record["id"]]
    permissions.forget(ws, "sql/warehouses", record["id"])
    return {}


@routes.post("/api/2.0/sql/warehouses/{id}/start", _LEGACY_PREFIX + "/{id}/start")
def start(ws: Workspace, req: Request) -> dict:
    _start(ws, _load(ws, req.path_params["id"]))
    return {}


@routes.post("/api/2.0/sql/warehouses/{id}/stop", _LEGACY_PREFIX + "/{id}/stop")
def stop(ws: Workspace, req: Request) -> dict:
    _stop(ws, _load(ws, req.path_params["id"]))
    return {}


@routes.get("/api/2.0/sql/config/warehouses")
def get_config(ws: Workspace, req: Request) -> dict:
    return json.loads(json.dumps({**_CONFIG_DEFAULTS, **ws.table(CONFIG).get("warehouses", {})}))


@routes.put("/api/2.0/sql/config/warehouses")
def set_config(ws: Workspace, req: Request) -> dict:
    """Replace the workspace warehouse config (fields not sent fall back to the defaults)."""
    body = {key: req.json[key] for key in _CONFIG_FIELDS if req.json.get(key) is not None}
    _check_enum(body, "security_policy", SECURITY_POLICIES)
    ws.table(CONFIG)["warehouses"] = body
    return {}


# -- statements ---------------------------------------------------------------------------------------
def _wait_seconds(value: Any) -> int:
    match = re.fullmatch(r"(\d+)s", str(value)) if value is not None else None
    seconds = int(match.group(1)) if match else -1
    if seconds != 0 and not 5 <= seconds <= 50:
        raise invalid(f"Invalid wait_timeout: {value}. wait_timeout must be 0s (asynchronous) or between 5s and 50s.")
    return seconds


def _limit(body: dict, key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise invalid(f"Invalid {key}: {value!r} must be a non-negative integer")
    return value


def _parameters(body: dict) -> list[dict]:
    parameters = body.get("parameters") or []
    if not isinstance(parameters, list) or not all(isinstance(p, dict) and p.get("name") for p in parameters):
        raise invalid("parameters must be a list of {name, value, type}")
    return parameters


def _check_request(body: dict) -> None:
    statement = body.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise invalid("Missing required field: statement")
    if len(statement.encode()) > 16 * 1024 * 1024:
        raise invalid("The statement text exceeds the maximum size of 16 MiB")
    if not body.get("warehouse_id"):
        raise invalid("Missing required field: warehouse_id")
    disposition = body.get("disposition") or "INLINE"
    result_format = body.get("format") or "JSON_ARRAY"
    if disposition not in ("INLINE", "EXTERNAL_LINKS"):
        raise invalid(f"Invalid disposition: {disposition}")
    if result_format not in ("JSON_ARRAY", "ARROW_STREAM", "CSV"):
        raise invalid(f"Invalid format: {result_format}")
    if disposition == "EXTERNAL_LINKS":
        raise ApiError(501, "NOT_IMPLEMENTED", "EXTERNAL_LINKS disposition is not supported by the emulator")
    if result_format != "JSON_ARRAY":
        raise invalid(f"The format {result_format} is only supported with EXTERNAL_LINKS disposition")
    if (body.get("on_wait_timeout") or "CONTINUE") not in ("CONTINUE", "CANCEL"):
        raise invalid(f"Invalid on_wait_timeout: {body.get('on_wait_timeout')}")


def _statement_id(ws: Workspace) -> str:
    h = ws.random_hex(32)
    return f"01f0{h[:4]}-{h[4:8]}-{h[8:12]}-{h[12:16]}-{h[16:28]}"


def _queue(ws: Workspace, warehouse_id: str) -> list[str]:
    return ws.table(QUEUES).setdefault(warehouse_id, [])


def _cancel_queue(ws: Workspace, warehouse_id: str) -> None:
    statements = ws.table(STATEMENTS)
    for statement_id in ws.table(QUEUES).pop(warehouse_id, []):
        record = statements.get(statement_id)
        if record is not None and record["state"] == "PENDING":
            record["state"], record["finished_ms"] = "CANCELED", ws.now_ms()


def _settle(ws: Workspace, warehouse_id: str, force: bool = False) -> None:
    """Run the statements waiting for a warehouse, in order, once it is RUNNING (or `force`)."""
    queue = ws.table(QUEUES).get(warehouse_id)
    warehouse = ws.table(WAREHOUSES).get(warehouse_id)
    if not queue or warehouse is None:
        return
    if not force and _state_of(ws, warehouse) != "RUNNING":
        return
    statements = ws.table(STATEMENTS)
    for statement_id in ws.table(QUEUES).pop(warehouse_id):
        record = statements.get(statement_id)
        if record is not None and record["state"] == "PENDING":
            _run(ws, record, warehouse)


def _run(ws: Workspace, record: dict, warehouse: dict) -> None:
    catalog, schema = record.get("catalog"), record.get("schema")
    session = sqlengine.Session(user=ws.admin_user)
    try:
        if catalog:
            sqlengine.execute(ws, f"USE CATALOG `{catalog.replace('`', '``')}`", session)
        if schema:
            sqlengine.execute(ws, f"USE SCHEMA `{schema.replace('`', '``')}`", session)
        if record.get("fault") == "schema_not_found":
            raise sqlengine.schema_not_found(record["statement"].split()[-1])
        result = sqlengine.execute(ws, record["statement"], session, record.get("parameters"))
    except sqlengine.SqlError as err:
        record["state"] = "FAILED"
        record["error"] = {"error_code": err.error_code, "message": err.text}
        record["sql_state"] = err.sql_state
    else:
        _store_result(record, result)
    record["finished_ms"] = warehouse["last_used_ms"] = ws.now_ms()


def _column_info(position: int, column: sqlengine.Column) -> dict:
    base = re.match(r"[A-Za-z_]+", column.type_text)
    info: dict[str, Any] = {
        "name": column.name,
        "type_text": column.type_text,
        "type_name": _TYPE_NAMES.get(base.group().upper() if base else "", "USER_DEFINED_TYPE"),
        "position": position,
    }
    decimal = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", column.type_text)
    if decimal:
        info["type_precision"], info["type_scale"] = int(decimal.group(1)), int(decimal.group(2))
    return info


def _store_result(record: dict, result: sqlengine.Result) -> None:
    """Render rows as strings, apply row/byte limits, and cut them into chunks."""
    rows = [[sqlengine.to_text(value) for value in row] for row in result.rows]
    sizes = [len(json.dumps(row, separators=(",", ":"))) for row in rows]
    truncated = False
    if record.get("row_limit") is not None and len(rows) > record["row_limit"]:
        rows, sizes, truncated = rows[: record["row_limit"]], sizes[: record["row_limit"]], True
    byte_limit = record.get("byte_limit")
    if byte_limit is not None:
        total = 0
        for index, size in enumerate(sizes):
            total += size
            if total > byte_limit:
                rows, sizes, truncated = rows[:index], sizes[:index], True
                break
    if sum(sizes) > INLINE_LIMIT_BYTES:
        record["state"] = "FAILED"
        record["error"] = {
            "error_code": "BAD_REQUEST",
            "message": "The result exceeds the 25 MiB limit of "
            "INLINE disposition. Use EXTERNAL_LINKS disposition for large results.",
        }
        return
    chunks: list[dict] = []
    start = 0
    while start < len(rows):
        end, size = start, 0
        while end < len(rows) and end - start < CHUNK_ROWS and (end == start or size + sizes[end] <= CHUNK_BYTES):
            size += sizes[end]
            end += 1
        chunks.append({"chunk_index": len(chunks), "row_offset": start, "row_count": end - start, "byte_count": size})
        start = end
    record.update(
        state="SUCCEEDED",
        columns=[_column_info(i, c) for i, c in enumerate(result.columns)],
        data=rows,
        chunks=chunks,
        truncated=truncated,
        total_bytes=sum(sizes),
    )


def _current_state(ws: Workspace, record: dict) -> str:
    if record["state"] == "SUCCEEDED" and ws.now_ms() - record["finished_ms"] > RESULT_TTL_MS:
        record.update(state="CLOSED", data=[], chunks=[])
    return record["state"]


def _manifest(record: dict) -> dict:
    columns = record["columns"]
    schema: dict[str, Any] = {"column_count": len(columns)}
    if columns:
        schema["columns"] = columns
    manifest: dict[str, Any] = {
        "format": "JSON_ARRAY",
        "schema": schema,
        "total_chunk_count": len(record["chunks"]),
        "total_row_count": len(record["data"]),
        "total_byte_count": record["total_bytes"],
        "truncated": record["truncated"],
    }
    if record["chunks"]:
        manifest["chunks"] = [dict(chunk) for chunk in record["chunks"]]
    return manifest


def _chunk(record: dict, index: int) -> dict:
    chunk = record["chunks"][index]
    start = chunk["row_offset"]
    data = {**chunk, "data_array": record["data"][start : start + chunk["row_count"]]}
    if index + 1 < len(record["chunks"]):
        data["next_chunk_index"] = index + 1
        data["next_chunk_internal_link"] = f"/api/2.0/sql/statements/{record['statement_id']}/result/chunks/{index + 1}"
    return data


def statement_response(ws: Workspace, record: dict) -> dict:
    """StatementResponse: status, and for SUCCEEDED the manifest and the first chunk."""
    state = _current_state(ws, record)
    status: dict[str, Any] = {"state": state}
    body: dict[str, Any] = {"statement_id": record["statement_id"], "status": status}
    if state == "FAILED":
        status["error"] = dict(record["error"])
        if record.get("sql_state"):
            status["sql_state"] = record["sql_state"]
    if state == "SUCCEEDED":
        body["manifest"] = _manifest(record)
        if record["chunks"]:
            body["result"] = _chunk(record, 0)
    return body


def _forget_old_statements(ws: Workspace) -> None:
    statements = ws.table(STATEMENTS)
    if len(statements) <= MAX_STATEMENTS:
        return
    for statement_id in [sid for sid, rec in statements.items() if rec["state"] in _TERMINAL]:
        del statements[statement_id]
        if len(statements) <= MAX_STATEMENTS * 0.9:
            break


def submit_statement(ws: Workspace, body: dict, fault: str | None = None) -> dict:
    """POST /sql/statements: validate, queue on the warehouse (starting it if stopped), run when it can.

    `fault` (a `schema_not_found` fault rule) makes the statement fail as it runs, with SCHEMA_NOT_FOUND.
    """
    _check_request(body)
    wait = _wait_seconds(body.get("wait_timeout") or "10s")
    warehouse = _load(ws, body["warehouse_id"])
    if _state_of(ws, warehouse) in ("STOPPED", "STOPPING"):
        _start(ws, warehouse)  # a statement wakes a stopped warehouse up
    _forget_old_statements(ws)
    record = {
        "statement_id": _statement_id(ws),
        "warehouse_id": warehouse["id"],
        "statement": body["statement"],
        "catalog": body.get("catalog"),
        "schema": body.get("schema"),
        "parameters": _parameters(body),
        "row_limit": _limit(body, "row_limit"),
        "byte_limit": _limit(body, "byte_limit"),
        "state": "PENDING",
        "submitted_ms": ws.now_ms(),
    }
    if fault:
        record["fault"] = fault
    ws.table(STATEMENTS)[record["statement_id"]] = record
    _queue(ws, warehouse["id"]).append(record["statement_id"])
    _settle(ws, warehouse["id"])
    if wait == 0:
        return {"statement_id": record["statement_id"], "status": {"state": "PENDING"}}
    if record["state"] == "PENDING":
        ready_at = _running_at(ws, warehouse)
        if ready_at is not None and ready_at - ws.now_ms() <= wait * 1000:
            # The service would block until the warehouse is up; the emulator does not sleep.
            _set_state(ws, warehouse, "RUNNING")
            _settle(ws, warehouse["id"], force=True)
        elif (body.get("on_wait_timeout") or "CONTINUE") == "CANCEL":
            ws.table(QUEUES).get(warehouse["id"], []).remove(record["statement_id"])
            record["state"], record["finished_ms"] = "CANCELED", ws.now_ms()
    return statement_response(ws, record)


def _statement(ws: Workspace, statement_id: str) -> dict:
    record = ws.table(STATEMENTS).get(statement_id)
    if record is None:
        raise not_found(f"Statement {statement_id} does not exist or has expired.")
    _settle(ws, record["warehouse_id"])
    return record


@routes.post("/api/2.0/sql/statements")
def execute_statement(ws: Workspace, req: Request) -> dict:
    return submit_statement(ws, req.json, req.fault)


@routes.get("/api/2.0/sql/statements/{statement_id}")
def get_statement(ws: Workspace, req: Request) -> dict:
    return statement_response(ws, _statement(ws, req.path_params["statement_id"]))


@routes.get("/api/2.0/sql/statements/{statement_id}/result/chunks/{chunk_index}")
def get_chunk(ws: Workspace, req: Request) -> dict:
    record = _statement(ws, req.path_params["statement_id"])
    state = _current_state(ws, record)
    if state != "SUCCEEDED":
        raise bad_request(f"Statement {record['statement_id']} has no result to fetch: its state is {state}")
    raw_index = req.path_params["chunk_index"]
    if not raw_index.isdigit() or int(raw_index) >= len(record["chunks"]):
        raise invalid(f"Invalid chunk_index {raw_index}: the result has {len(record['chunks'])} chunks")
    return _chunk(record, int(raw_index))


@routes.post("/api/2.0/sql/statements/{statement_id}/cancel")
def cancel_statement(ws: Workspace, req: Request) -> dict:
    record = _statement(ws, req.path_params["statement_id"])
    if record["state"] == "PENDING":
        queue = ws.table(QUEUES).get(record["warehouse_id"], [])
        if record["statement_id"] in queue:
            queue.remove(record["statement_id"])
        record["state"], record["finished_ms"] = "CANCELED", ws.now_ms()
    return {}
