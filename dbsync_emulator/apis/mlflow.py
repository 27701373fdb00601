"""MLflow tracking and the workspace Model Registry (`/api/2.0/mlflow/...`).

Tables: "mlflow_experiments" (id → record), "mlflow_runs" (run_id → record), "mlflow_models"
(name → record), "mlflow_model_versions" ((name, version) → record).

Experiments: create / get / get-by-name / list (GET; all without max_results, capped at 1000) / search /
update (rename) / delete / restore /
set-experiment-tag. In Databricks an experiment name is an absolute workspace path whose folder must
exist; names are unique, deleted experiments included. `artifact_location` defaults to
`dbfs:/databricks/mlflow-tracking/<id>` and cannot change. `last_update_time` moves on rename, tag,
delete and restore. search: `max_results` ≤ 3000 (default 1000), `filter` (an AND of
`name|attribute.name|tags.<key>` with = != LIKE ILIKE), `order_by` (name, last_update_time,
creation_time, experiment_id ± ASC/DESC), `view_type`.

Runs: create / get / update / delete / restore / search / log-batch / log-metric / log-parameter /
set-tag / delete-tag / metrics/get-history. A param, once logged, cannot change value (400); metric
history is kept and `data.metrics` holds the latest value per key. log-batch limits: 1000 metrics,
100 params, 100 tags, 1000 items in all.

Model Registry: registered-models create / get (and the Databricks `databricks/registered-models/get`
that answers the model `id` used by the permissions API) / list / search / rename / update / delete /
set-tag / delete-tag / get-latest-versions; model-versions create / get / search / update / delete /
set-tag / delete-tag / get-download-uri / transition-stage (both the Databricks and the OSS path).
Version numbers are never reused after a delete. Creating a version or moving its stage updates the
model's `last_updated_timestamp`; a version's description or tags update only the version's.
Registered models search: `max_results` ≤ 1000 (default 100), filter `name LIKE 'x'` is matched as
`%x%`; model versions search: ≤ 10000 (default 10000), one condition on name / run_id / source_path.
Permissions: "experiments" (experiment id), "registered-models" (model id).

Registry webhooks and model version comments live in `mlflow_webhooks`.

Not modelled: artifacts (no artifact store), logged models, traces, datasets/inputs, transition
requests, the experiment being a workspace-tree object, PENDING_REGISTRATION (versions are READY at once).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

from dbsync_emulator.apis import permissions, workspace
from dbsync_emulator.apis._paging import new_uuid, page, page_size
from dbsync_emulator.errors import ApiError, already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

EXPERIMENTS = "mlflow_experiments"
RUNS = "mlflow_runs"
MODELS = "mlflow_models"
VERSIONS = "mlflow_model_versions"
STAGES = ("None", "Staging", "Production", "Archived")
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
EXPERIMENT_LEVELS = ("CAN_READ", "CAN_EDIT", "CAN_MANAGE")
MODEL_LEVELS = (
    "CAN_READ",
    "CAN_EDIT",
    "CAN_MANAGE_STAGING_VERSIONS",
    "CAN_MANAGE_PRODUCTION_VERSIONS",
    "CAN_MANAGE",
)
MAX_TAG_KEY, MAX_TAG_VALUE, MAX_PARAM_VALUE = 250, 5000, 6000


def _experiment_exists(ws: Workspace, experiment_id: str) -> bool:
    return experiment_id in ws.table(EXPERIMENTS)


def _model_by_id(ws: Workspace, model_id: str) -> dict | None:
    return next((m for m in ws.table(MODELS).values() if m["id"] == model_id), None)


permissions.register("experiments", "mlflowExperiment", EXPERIMENT_LEVELS, _experiment_exists)
permissions.register(
    "registered-models",
    "registered-model",
    MODEL_LEVELS,
    lambda ws, model_id: _model_by_id(ws, model_id) is not None,
)


def _missing(name: str) -> ApiError:
    return invalid(f"Missing value for required parameter '{name}'.")


def _required(req: Request, name: str) -> Any:
    value = req.param(name)
    if value in (None, ""):
        raise _missing(name)
    return value


def _tags_in(tags: Any, what: str = "tags") -> dict[str, str]:
    if tags in (None, []):
        return {}
    if not isinstance(tags, list) or not all(isinstance(t, dict) and t.get("key") for t in tags):
        raise invalid(f"{what} must be a list of {{key, value}}")
    out = {}
    for tag in tags:
        out[_tag_key(tag["key"])] = _tag_value(tag.get("value"))
    return out


def _tag_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_TAG_KEY:
        raise invalid(f"Invalid tag key {key!r}: a non-empty string of at most {MAX_TAG_KEY} characters")
    return key


def _tag_value(value: Any) -> str:
    value = "" if value is None else value
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
        raise invalid(f"Invalid tag value: a string of at most {MAX_TAG_VALUE} characters")
    return value


def _tags_out(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _touch(record: dict, ws: Workspace, field: str) -> None:
    """Move a last-updated timestamp, strictly, so every write shows in a listing."""
    record[field] = max(ws.now_ms(), record[field] + 1)


# -- search filters -----------------------------------------------------------------------------------
_CLAUSE = re.compile(
    r"""\s*(?P<key>(?:[A-Za-z_]+\.)?(?:`[^`]+`|"[^"]+"|[\w\-]+))\s*
        (?P<op>!=|>=|<=|=|>|<|NOT\s+LIKE|NOT\s+IN|ILIKE|LIKE|IN)\s*
        (?P<value>'(?:[^']|'')*'|"[^"]*"|\([^)]*\)|-?[\d.]+(?:[eE][-+]?\d+)?)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"\s*AND\s+", re.IGNORECASE)
_ENTITY_ALIASES = {
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "tag": "tags",
    "tags": "tags",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "metric": "metrics",
    "metrics": "metrics",
}
Getter = Callable[[dict, str, str], Any]


def _literal(text: str) -> Any:
    if text.startswith("("):
        return [_literal(part.strip()) for part in text[1:-1].split(",") if part.strip()]
    if text[0] in "'\"":
        return text[1:-1].replace("''", "'")
    return float(text)


def parse_filter(text: str | None) -> list[tuple[str, str, str, Any]]:
    """[(entity, key, operator, value)] of an AND of comparisons; a malformed filter is a 400."""
    if not text or not text.strip():
        return []
    clauses = []
    pos = 0
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise invalid(f"Invalid filter '{text}': could not parse at '{text[pos:]}'")
        key = match.group("key")
        entity, _, name = key.partition(".") if "." in key and not key.startswith(("`", '"')) else ("", "", key)
        entity = _ENTITY_ALIASES.get(entity.lower(), "attribute") if entity else "attribute"
        name = name.strip('`"')
        op = re.sub(r"\s+", " ", match.group("op").upper())
        clauses.append((entity, name, op, _literal(match.group("value"))))
        pos = match.end()
        if pos >= len(text):
            return clauses
        joined = _AND.match(text, pos)
        if joined is None:
            raise invalid(f"Invalid filter '{text}': expected AND at '{text[pos:]}'")
        pos = joined.end()


def _like(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return False  # a missing tag or param matches nothing, as in the service's SQL join
    if op in ("LIKE", "ILIKE", "NOT LIKE"):
        matched = _like(str(expected), str(actual), op == "ILIKE")
        return not matched if op == "NOT LIKE" else matched
    if op in ("IN", "NOT IN"):
        inside = str(actual) in [str(v) for v in expected]
        return inside if op == "IN" else not inside
    if isinstance(expected, float):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return False
    else:
        actual = str(actual)
    return {
        "=": actual == expected,
        "!=": actual != expected,
        ">": actual > expected,
        ">=": actual >= expected,
        "<": actual < expected,
        "<=": actual <= expected,
    }[op]


def matches(record: dict, clauses: list[tuple[str, str, str, Any]], getter: Getter) -> bool:
    return all(_compare(getter(record, entity, key), op, value) for entity, key, op, value in clauses)


def _ordered(records: list[dict], order_by: list[str], columns: dict[str, str], default: list[str]) -> list[dict]:
    """Sort by `order_by` ("name DESC", ...): the last key first, so the first key wins (stable sorts)."""
    specs = []
    for item in order_by or default:
        parts = item.split()
        column = parts[0].split(".", 1)[-1] if parts else ""
        if column not in columns:
            raise invalid(f"Invalid order_by clause '{item}'. Supported columns: {', '.join(sorted(columns))}")
        descending = len(parts) > 1 and parts[1].upper() == "DESC"
        specs.append((columns[column], descending))
    out = list(records)
    for field, descending in reversed(specs):
        out.sort(key=lambda r, f=field: (r.get(f) is None, r.get(f) if r.get(f) is not None else 0), reverse=descending)
    return out


def _order_list(req: Request) -> list[str]:
    value = req.json.get("order_by") if req.method == "POST" else req.args("order_by")
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _paged(req: Request, records: list[dict], default: int, maximum: int, key: str, render: Any) -> dict:
    raw = req.param("max_results")
    try:
        requested = int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {raw!r} for parameter 'max_results'") from None
    size = page_size(requested, default, maximum, "max_results", clamp=False)
    chunk, token = page(records, size, req.param("page_token"))
    body: dict[str, Any] = {}
    if chunk:
        body[key] = [render(r) for r in chunk]
    if token:
        body["next_page_token"] = token
    return body


# -- experiments ------------------------------------------------------------------------------------------
def _experiment_name(ws: Workspace, name: Any, current: str | None = None) -> str:
    if not isinstance(name, str) or not name:
        raise _missing("name")
    if not name.startswith("/"):
        raise invalid(
            f"Got an invalid experiment name '{name}'. An experiment name must be an absolute path within the "
            "Databricks workspace, e.g. '/Users/<some-username>/my-experiment'."
        )
    path = workspace.normalize_path(name)
    parent = workspace.get_object(ws, posixpath.dirname(path))
    if parent is None or parent["object_type"] not in ("DIRECTORY", "REPO"):
        raise not_found(f"Parent directory {posixpath.dirname(path)} does not exist.")
    for other in ws.table(EXPERIMENTS).values():
        if other["name"] == path and other["experiment_id"] != current:
            state = " in deleted state" if other["lifecycle_stage"] == "deleted" else ""
            raise already_exists(f"Experiment '{path}' already exists{state}.")
    return path


def create_experiment(ws: Workspace, name: str, artifact_location: str | None = None, tags: Any = None) -> str:
    """Create an experiment like POST /mlflow/experiments/create; returns its id."""
    path = _experiment_name(ws, name)
    parsed_tags = _tags_in(tags)
    # Distinct id ranges per workspace, as in the service: ids must never be copied across workspaces.
    experiment_id = str(ws.next_id("mlflow_experiment", start=(ws.workspace_id % 9000 + 1000) * 10**9 + 1))
    now = ws.now_ms()
    ws.table(EXPERIMENTS)[experiment_id] = {
        "experiment_id": experiment_id,
        "name": path,
        "artifact_location": artifact_location or f"dbfs:/databricks/mlflow-tracking/{experiment_id}",
        "lifecycle_stage": "active",
        "creation_time": now,
        "last_update_time": now,
        "tags": parsed_tags,
    }
    permissions.grant_creator(ws, "experiments", experiment_id)
    return experiment_id


def render_experiment(record: dict) -> dict:
    out = {k: record[k] for k in ("experiment_id", "name", "artifact_location", "lifecycle_stage")}
    out["creation_time"] = record["creation_time"]
    out["last_update_time"] = record["last_update_time"]
    if record["tags"]:
        out["tags"] = _tags_out(record["tags"])
    return out


def _experiment(ws: Workspace, experiment_id: Any) -> dict:
    record = ws.table(EXPERIMENTS).get(str(experiment_id or ""))
    if record is None:
        raise not_found(f"Node ID {experiment_id} does not exist.")
    return record


def _active_experiment(ws: Workspace, experiment_id: Any) -> dict:
    record = _experiment(ws, experiment_id)
    if record["lifecycle_stage"] != "active":
        raise invalid(f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted.")
    return record


def _experiment_field(record: dict, entity: str, key: str) -> Any:
    if entity == "tags":
        return record["tags"].get(key)
    return record.get(key)


def _view(view_type: Any) -> str:
    view = view_type or "ACTIVE_ONLY"
    if view not in VIEW_TYPES:
        raise invalid(f"Invalid view_type: {view}. Supported values: {', '.join(VIEW_TYPES)}")
    return view


def _in_view(record: dict, view: str, field: str = "lifecycle_stage") -> bool:
    return view == "ALL" or (record[field] == "active") == (view == "ACTIVE_ONLY")


@routes.post("/api/2.0/mlflow/experiments/create")
def create_experiment_handler(ws: Workspace, req: Request) -> dict:
    body = req.json
    return {"experiment_id": create_experiment(ws, body.get("name"), body.get("artifact_location"), body.get("tags"))}


@routes.get("/api/2.0/mlflow/experiments/get")
def get_experiment(ws: Workspace, req: Request) -> dict:
    return {"experiment": render_experiment(_experiment(ws, _required(req, "experiment_id")))}


@routes.get("/api/2.0/mlflow/experiments/get-by-name")
def get_experiment_by_name(ws: Workspace, req: Request) -> dict:
    name = _required(req, "experiment_name")
    path = workspace.normalize_path(name) if name.startswith("/") else name
    record = next((e for e in ws.table(EXPERIMENTS).values() if e["name"] == path), None)
    if record is None:
        raise not_found(f"Node {name} does not exist.")
    return {"experiment": render_experiment(record)}


_EXPERIMENT_COLUMNS = {
    "name": "name",
    "last_update_time": "last_update_time",
    "creation_time": "creation_time",
    "experiment_id": "sort_id",
}


def _experiment_rows(ws: Workspace, view: str, clauses: list, order_by: list[str]) -> list[dict]:
    rows = [
        {**e, "sort_id": int(e["experiment_id"])}
        for e in ws.table(EXPERIMENTS).values()
        if _in_view(e, view) and matches(e, clauses, _experiment_field)
    ]
    return _ordered(rows, order_by, _EXPERIMENT_COLUMNS, ["last_update_time DESC", "experiment_id DESC"])


@routes.post("/api/2.0/mlflow/experiments/search")
def search_experiments(ws: Workspace, req: Request) -> dict:
    body = req.json
    rows = _experiment_rows(ws, _view(body.get("view_type")), parse_filter(body.get("filter")), _order_list(req))
    return _paged(req, rows, 1000, 3000, "experiments", render_experiment)


@routes.get("/api/2.0/mlflow/experiments/list")
def list_experiments(ws: Workspace, req: Request) -> dict:
    """Every experiment without max_results; a larger max_results is capped at 1000."""
    rows = _experiment_rows(ws, _view(req.arg("view_type")), [], ["experiment_id ASC"])
    requested = req.int_arg("max_results")
    size = min(requested, 1000) if requested else max(len(rows), 1)
    chunk, token = page(rows, size, req.arg("page_token"))
    body: dict[str, Any] = {"experiments": [render_experiment(r) for r in chunk]} if chunk else {}
    if token:
        body["next_page_token"] = token
    return body


@routes.post("/api/2.0/mlflow/experiments/update")
def update_experiment(ws: Workspace, req: Request) -> dict:
    record = _experiment(ws, _required(req, "experiment_id"))
    if record["lifecycle_stage"] != "active":
        raise invalid("Cannot rename a non-active experiment.")
    new_name = req.json.get("new_name")
    if new_name:
        record["name"] = _experiment_name(ws, new_name, record["experiment_id"])
        _touch(record, ws, "last_update_time")
    return {}


@routes.post("/api/2.0/mlflow/experiments/delete")
def delete_experiment(ws: Workspace, req: Request) -> dict:
    record = _active_experiment(ws, _required(req, "experiment_id"))
    record["lifecycle_stage"] = "deleted"
    _touch(record, ws, "last_update_time")
    for run in ws.table(RUNS).values():
        if run["experiment_id"] == record["experiment_id"]:
            run["lifecycle_stage"] = "deleted"
    return {}


@routes.post("/api/2.0/mlflow/experiments/restore")
def restore_experiment(ws: Workspace, req: Request) -> dict:
    record = _experiment(ws, _required(req, "experiment_id"))
    if record["lifecycle_stage"] != "deleted":
        raise invalid(f"Cannot restore an active experiment {record['experiment_id']}.")
    record["lifecycle_stage"] = "active"
    _touch(record, ws, "last_update_time")
    for run in ws.table(RUNS).values():
        if run["experiment_id"] == record["experiment_id"]:
            run["lifecycle_stage"] = "active"
    return {}


@routes.post("/api/2.0/mlflow/experiments/set-experiment-tag")
def set_experiment_tag(ws: Workspace, req: Request) -> dict:
    record = _active_experiment(ws, _required(req, "experiment_id"))
    record["tags"][_tag_key(_required(req, "key"))] = _tag_value(req.json.get("value"))
    _touch(record, ws, "last_update_time")
    return {}


# -- runs -------------------------------------------------------------------------------------------------
def _run(ws: Workspace, req: Request) -> dict:
    run_id = req.param("run_id") or req.param("run_uuid")
    if not run_id:
        raise _missing("run_id")
    record = ws.table(RUNS).get(run_id)
    if record is None:
        raise not_found(f"Run '{run_id}' not found.")
    return record


def _active_run(ws: Workspace, req: Request) -> dict:
    record = _run(ws, req)
    if record["lifecycle_stage"] != "active":
        raise invalid(f"The run {record['run_id']} must be in the 'active' state. Current state is deleted.")
    return record


def create_run(ws: Workspace, experiment_id: str, run_name: str | None = None, start_time: int | None = None,
               tags: Any = None, user_id: str | None = None) -> str:  # fmt: skip
    """Create a run like POST /mlflow/runs/create; returns its id."""
    experiment = _active_experiment(ws, experiment_id)
    run_id = new_uuid(ws).hex
    parsed = _tags_in(tags)
    name = run_name or parsed.get("mlflow.runName") or f"run-{run_id[:8]}"
    parsed["mlflow.runName"] = name
    ws.table(RUNS)[run_id] = {
        "run_id": run_id,
        "experiment_id": experiment["experiment_id"],
        "run_name": name,
        "user_id": user_id or ws.admin_user,
        "status": "RUNNING",
        "start_time": start_time if start_time is not None else ws.now_ms(),
        "end_time": None,
        "artifact_uri": f"{experiment['artifact_location']}/{run_id}/artifacts",
        "lifecycle_stage": "active",
        "params": {},
        "tags": parsed,
        "metrics": {},  # key → history [{key, value, timestamp, step}]
    }
    return run_id


def _latest(history: list[dict]) -> dict:
    return max(history, key=lambda m: (m["step"], m["timestamp"], m["value"]))


def _run_info(record: dict) -> dict:
    info = {
        "run_id": record["run_id"],
        "run_uuid": record["run_id"],
        "run_name": record["run_name"],
        "experiment_id": record["experiment_id"],
        "user_id": record["user_id"],
        "status": record["status"],
        "start_time": record["start_time"],
        "artifact_uri": record["artifact_uri"],
        "lifecycle_stage": record["lifecycle_stage"],
    }
    if record["end_time"] is not None:
        info["end_time"] = record["end_time"]
    return info


def render_run(record: dict) -> dict:
    data: dict[str, Any] = {}
    if record["metrics"]:
        data["metrics"] = [_latest(history) for history in record["metrics"].values()]
    if record["params"]:
        data["params"] = [{"key": k, "value": v} for k, v in record["params"].items()]
    if record["tags"]:
        data["tags"] = _tags_out(record["tags"])
    return {"info": _run_info(record), "data": data, "inputs": {}}


@routes.post("/api/2.0/mlflow/runs/create")
def create_run_handler(ws: Workspace, req: Request) -> dict:
    body = req.json
    run_id = create_run(
        ws,
        _required(req, "experiment_id"),
        body.get("run_name"),
        body.get("start_time"),
        body.get("tags"),
        body.get("user_id"),
    )
    return {"run": render_run(ws.table(RUNS)[run_id])}


@routes.get("/api/2.0/mlflow/runs/get")
def get_run(ws: Workspace, req: Request) -> dict:
    return {"run": render_run(_run(ws, req))}


@routes.post("/api/2.0/mlflow/runs/update")
def update_run(ws: Workspace, req: Request) -> dict:
    record = _active_run(ws, req)
    body = req.json
    status = body.get("status")
    if status is not None:
        if status not in RUN_STATUSES:
            raise invalid(f"Invalid run status: {status}")
        record["status"] = status
    if body.get("end_time") is not None:
        record["end_time"] = int(body["end_time"])
    if body.get("run_name"):
        record["run_name"] = record["tags"]["mlflow.runName"] = body["run_name"]
    return {"run_info": _run_info(record)}


@routes.post("/api/2.0/mlflow/runs/delete")
def delete_run(ws: Workspace, req: Request) -> dict:
    _run(ws, req)["lifecycle_stage"] = "deleted"
    return {}


@routes.post("/api/2.0/mlflow/runs/restore")
def restore_run(ws: Workspace, req: Request) -> dict:
    _run(ws, req)["lifecycle_stage"] = "active"
    return {}


def _log_param(record: dict, key: Any, value: Any) -> None:
    key = _tag_key(key)
    value = "" if value is None else str(value)
    if len(value) > MAX_PARAM_VALUE:
        raise invalid(f"Param value for key '{key}' exceeds {MAX_PARAM_VALUE} characters")
    old = record["params"].get(key)
    if old is not None and old != value:
        raise invalid(
            f"Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' "
            f"for run ID='{record['run_id']}'. Attempted logging new value '{value}'."
        )
    record["params"][key] = value


def _log_metric(ws: Workspace, record: dict, metric: dict) -> None:
    key = _tag_key(metric.get("key"))
    value = metric.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise invalid(f"Got invalid value {value!r} for metric '{key}'")
    point = {
        "key": key,
        "value": float(value),
        "timestamp": int(metric.get("timestamp") or ws.now_ms()),
        "step": int(metric.get("step") or 0),
    }
    record["metrics"].setdefault(key, []).append(point)


@routes.post("/api/2.0/mlflow/runs/log-batch")
def log_batch(ws: Workspace, req: Request) -> dict:
    record = _active_run(ws, req)
    body = req.json
    metrics, params, tags = body.get("metrics") or [], body.get("params") or [], body.get("tags") or []
    if len(metrics) > 1000 or len(params) > 100 or len(tags) > 100 or len(metrics) + len(params) + len(tags) > 1000:
        raise invalid(
            "A batch logging request can contain at most 1000 metrics, 100 params and 100 tags, "
            "and at most 1000 items in all"
        )
    for param in params:
        _log_param(record, param.get("key"), param.get("value"))
    for metric in metrics:
        _log_metric(ws, record, metric)
    for tag in tags:
        record["tags"][_tag_key(tag.get("key"))] = _tag_value(tag.get("value"))
    return {}


@routes.post("/api/2.0/mlflow/runs/log-metric")
def log_metric(ws: Workspace, req: Request) -> dict:
    _log_metric(ws, _active_run(ws, req), req.json)
    return {}


@routes.post("/api/2.0/mlflow/runs/log-parameter")
def log_parameter(ws: Workspace, req: Request) -> dict:
    _log_param(_active_run(ws, req), req.json.get("key"), req.json.get("value"))
    return {}


@routes.post("/api/2.0/mlflow/runs/set-tag")
def set_run_tag(ws: Workspace, req: Request) -> dict:
    _active_run(ws, req)["tags"][_tag_key(_required(req, "key"))] = _tag_value(req.json.get("value"))
    return {}


@routes.post("/api/2.0/mlflow/runs/delete-tag")
def delete_run_tag(ws: Workspace, req: Request) -> dict:
    record = _active_run(ws, req)
    key = _required(req, "key")
    if key not in record["tags"]:
        raise not_found(f"No tag with name: {key} in run with id {record['run_id']}")
    del record["tags"][key]
    return {}


@routes.get("/api/2.0/mlflow/metrics/get-history")
def metric_history(ws: Workspace, req: Request) -> dict:
    record = _run(ws, req)
    history = record["metrics"].get(_required(req, "metric_key"), [])
    return _paged(req, history, 25000, 25000, "metrics", dict)


def _run_field(record: dict, entity: str, key: str) -> Any:
    if entity in ("tags", "params"):
        return record[entity].get(key)
    if entity == "metrics":
        history = record["metrics"].get(key)
        return _latest(history)["value"] if history else None
    return record.get({"run_id": "run_id", "id": "run_id", "name": "run_name"}.get(key, key))


_RUN_COLUMNS = {"start_time": "start_time", "end_time": "end_time", "run_name": "run_name", "run_id": "run_id"}


@routes.post("/api/2.0/mlflow/runs/search")
def search_runs(ws: Workspace, req: Request) -> dict:
    body = req.json
    experiment_ids = {str(e) for e in body.get("experiment_ids") or []}
    view = _view(body.get("run_view_type"))
    clauses = parse_filter(body.get("filter"))
    rows = [
        r
        for r in ws.table(RUNS).values()
        if r["experiment_id"] in experiment_ids and _in_view(r, view) and matches(r, clauses, _run_field)
    ]
    rows = _ordered(rows, _order_list(req), _RUN_COLUMNS, ["start_time DESC", "run_id ASC"])
    return _paged(req, rows, 1000, 50000, "runs", render_run)


# -- registered models --------------------------------------------------------------------------------------
def _model(ws: Workspace, name: Any) -> dict:
    if not name:
        raise _missing("name")
    record = ws.table(MODELS).get(name)
    if record is None:
        raise not_found(f"Registered Model with name={name} not found")
    return record


def create_model(ws: Workspace, name: Any, description: str | None = None, tags: Any = None) -> dict:
    """Create a registered model like POST /mlflow/registered-models/create; returns its record."""
    if not isinstance(name, str) or not name:
        raise _missing("name")
    if name in ws.table(MODELS):
        raise already_exists(f"Registered Model (name={name}) already exists.")
    now = ws.now_ms()
    record = {
        "name": name,
        "id": new_uuid(ws).hex,
        "description": description or "",
        "tags": _tags_in(tags),
        "creation_timestamp": now,
        "last_updated_timestamp": now,
        "user_id": ws.admin_user,
        "last_version": 0,
    }
    ws.table(MODELS)[name] = record
    permissions.grant_creator(ws, "registered-models", record["id"])
    return record


def _versions_of(ws: Workspace, name: str) -> list[dict]:
    return [v for (model, _), v in ws.table(VERSIONS).items() if model == name]


def render_model(ws: Workspace, record: dict, databricks: bool = False) -> dict:
    out: dict[str, Any] = {
        "name": record["name"],
        "creation_timestamp": record["creation_timestamp"],
        "last_updated_timestamp": record["last_updated_timestamp"],
        "user_id": record["user_id"],
    }
    if record["description"]:
        out["description"] = record["description"]
    if record["tags"]:
        out["tags"] = _tags_out(record["tags"])
    latest: dict[str, dict] = {}
    for version in _versions_of(ws, record["name"]):
        current = latest.get(version["current_stage"])
        if current is None or int(version["version"]) > int(current["version"]):
            latest[version["current_stage"]] = version
    if latest:
        out["latest_versions"] = [render_version(v) for _, v in sorted(latest.items())]
    if databricks:
        out["id"] = record["id"]
        out["permission_level"] = "CAN_MANAGE"
    return out


@routes.post("/api/2.0/mlflow/registered-models/create")
def create_model_handler(ws: Workspace, req: Request) -> dict:
    body = req.json
    record = create_model(ws, body.get("name"), body.get("description"), body.get("tags"))
    return {"registered_model": render_model(ws, record)}


@routes.get("/api/2.0/mlflow/registered-models/get")
def get_model(ws: Workspace, req: Request) -> dict:
    return {"registered_model": render_model(ws, _model(ws, req.arg("name")))}


@routes.get("/api/2.0/mlflow/databricks/registered-models/get")
def get_model_databricks(ws: Workspace, req: Request) -> dict:
    return {"registered_model_databricks": render_model(ws, _model(ws, req.arg("name")), databricks=True)}


def _model_field(record: dict, entity: str, key: str) -> Any:
    if entity == "tags":
        return record["tags"].get(key)
    return record.get(key)


_MODEL_COLUMNS = {
    "name": "name",
    "last_updated_timestamp": "last_updated_timestamp",
    "timestamp": "last_updated_timestamp",
}


@routes.get("/api/2.0/mlflow/registered-models/search")
def search_models(ws: Workspace, req: Request) -> dict:
    clauses = [
        # The service matches `name LIKE 'x'` as `name LIKE '%x%'`.
        (e, k, op, f"%{v}%" if op in ("LIKE", "ILIKE") and k == "name" and "%" not in str(v) else v)
        for e, k, op, v in parse_filter(req.arg("filter"))
    ]
    rows = [m for m in ws.table(MODELS).values() if matches(m, clauses, _model_field)]
    rows = _ordered(rows, _order_list(req), _MODEL_COLUMNS, ["name ASC"])
    return _paged(req, rows, 100, 1000, "registered_models", lambda m: render_model(ws, m))


@routes.get("/api/2.0/mlflow/registered-models/list")
def list_models(ws: Workspace, req: Request) -> dict:
    rows = sorted(ws.table(MODELS).values(), key=lambda m: m["name"])
    return _paged(req, rows, 100, 1000, "registered_models", lambda m: render_model(ws, m))


@routes.post("/api/2.0/mlflow/registered-models/rename")
def rename_model(ws: Workspace, req: Request) -> dict:
    record = _model(ws, req.json.get("name"))
    new_name = req.json.get("new_name")
    if not new_name:
        raise _missing("new_name")
    if new_name != record["name"]:
        if new_name in ws.table(MODELS):
            raise already_exists(f"Registered Model (name={new_name}) already exists.")
        models, versions = ws.table(MODELS), ws.table(VERSIONS)
        for version in _versions_of(ws, record["name"]):
            del versions[(record["name"], version["version"])]
            version["name"] = new_name
            versions[(new_name, version["version"])] = version
        del models[record["name"]]
        record["name"] = new_name
        models[new_name] = record
        _touch(record, ws, "last_updated_timestamp")
    return {"registered_model": render_model(ws, record)}


@routes.patch("/api/2.0/mlflow/registered-models/update")
def update_model(ws: Workspace, req: Request) -> dict:
    record = _model(ws, req.json.get("name"))
    if "description" in req.json:
        record["description"] = req.json.get("description") or ""
        _touch(record, ws, "last_updated_timestamp")
    return {"registered_model": render_model(ws, record)}


@routes.delete("/api/2.0/mlflow/registered-models/delete")
def delete_model(ws: Workspace, req: Request) -> dict:
    record = _model(ws, req.arg("name"))
    for version in _versions_of(ws, record["name"]):
        del ws.table(VERSIONS)[(record["name"], version["version"])]
    del ws.table(MODELS)[record["name"]]
    permissions.forget(ws, "registered-models", record["id"])
    return {}


@routes.post("/api/2.0/mlflow/registered-models/set-tag")
def set_model_tag(ws: Workspace, req: Request) -> dict:
    record = _model(ws, req.json.get("name"))
    record["tags"][_tag_key(_required(req, "key"))] = _tag_value(req.json.get("value"))
    _touch(record, ws, "last_updated_timestamp")
    return {}


@routes.delete("/api/2.0/mlflow/registered-models/delete-tag")
def delete_model_tag(ws: Workspace, req: Request) -> dict:
    record = _model(ws, req.arg("name"))
    if record["tags"].pop(_required(req, "key"), None) is not None:
        _touch(record, ws, "last_updated_timestamp")
    return {}


@routes.post("/api/2.0/mlflow/registered-models/get-latest-versions")
def get_latest_versions(ws: Workspace, req: Request) -> dict:
    record = _model(ws, req.json.get("name"))
    stages = [_stage(s) for s in req.json.get("stages") or []]
    latest = render_model(ws, record).get("latest_versions", [])
    chosen = [v for v in latest if not stages or v["current_stage"] in stages]
    return {"model_versions": chosen} if chosen else {}


# -- model versions -------------------------------------------------------------------------------------------
def _stage(value: Any) -> str:
    for stage in STAGES:
        if isinstance(value, str) and value.lower() == stage.lower():
            return stage
    raise invalid(f"Invalid Model Version stage: {value}. Value must be one of {', '.join(STAGES)}.")


def _version(ws: Workspace, name: Any, version: Any) -> dict:
    _model(ws, name)
    record = ws.table(VERSIONS).get((name, str(version)))
    if record is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return record


def create_version(ws: Workspace, name: str, source: Any, **fields: Any) -> dict:
    """Create a model version like POST /mlflow/model-versions/create; returns its record."""
    model = _model(ws, name)
    if not isinstance(source, str) or not source:
        raise _missing("source")
    model["last_version"] += 1
    now = ws.now_ms()
    record = {
        "name": name,
        "version": str(model["last_version"]),
        "creation_timestamp": now,
        "last_updated_timestamp": now,
        "user_id": ws.admin_user,
        "current_stage": "None",
        "description": fields.get("description") or "",
        "source": source,
        "run_id": fields.get("run_id") or "",
        "run_link": fields.get("run_link") or "",
        "status": "READY",
        "tags": _tags_in(fields.get("tags")),
    }
    ws.table(VERSIONS)[(name, record["version"])] = record
    _touch(model, ws, "last_updated_timestamp")
    return record


def render_version(record: dict) -> dict:
    out = {k: record[k] for k in ("name", "version", "creation_timestamp", "last_updated_timestamp", "user_id")}
    out.update(current_stage=record["current_stage"], source=record["source"], status=record["status"])
    for field in ("description", "run_id", "run_link"):
        if record[field]:
            out[field] = record[field]
    if record["tags"]:
        out["tags"] = _tags_out(record["tags"])
    return out


@routes.post("/api/2.0/mlflow/model-versions/create")
def create_version_handler(ws: Workspace, req: Request) -> dict:
    body = req.json
    fields = {k: body.get(k) for k in ("description", "run_id", "run_link", "tags")}
    record = create_version(ws, body.get("name"), body.get("source"), **fields)
    return {"model_version": render_version(record)}


@routes.get("/api/2.0/mlflow/model-versions/get")
def get_version(ws: Workspace, req: Request) -> dict:
    return {"model_version": render_version(_version(ws, req.arg("name"), req.arg("version")))}


@routes.get("/api/2.0/mlflow/model-versions/get-download-uri")
def get_download_uri(ws: Workspace, req: Request) -> dict:
    return {"artifact_uri": _version(ws, req.arg("name"), req.arg("version"))["source"]}


def _version_field(record: dict, entity: str, key: str) -> Any:
    if entity == "tags":
        return record["tags"].get(key)
    key = {"source_path": "source", "version_number": "version"}.get(key, key)
    if key not in ("name", "run_id", "source", "version", "current_stage"):
        raise invalid(f"Invalid attribute key '{key}' in the model versions filter")
    return record.get(key)


_VERSION_COLUMNS = {
    "name": "name",
    "version": "version_number",
    "version_number": "version_number",
    "current_stage": "current_stage",
    "last_updated_timestamp": "last_updated_timestamp",
    "creation_timestamp": "creation_timestamp",
}


@routes.get("/api/2.0/mlflow/model-versions/search")
def search_versions(ws: Workspace, req: Request) -> dict:
    clauses = parse_filter(req.arg("filter"))
    rows = [
        {**v, "version_number": int(v["version"])}
        for v in ws.table(VERSIONS).values()
        if matches(v, clauses, _version_field)
    ]
    rows = _ordered(rows, _order_list(req), _VERSION_COLUMNS, ["name ASC", "version DESC"])
    return _paged(req, rows, 10000, 10000, "model_versions", render_version)


@routes.patch("/api/2.0/mlflow/model-versions/update")
def update_version(ws: Workspace, req: Request) -> dict:
    record = _version(ws, req.json.get("name"), req.json.get("version"))
    if "description" in req.json:
        record["description"] = req.json.get("description") or ""
        _touch(record, ws, "last_updated_timestamp")
    return {"model_version": render_version(record)}


@routes.delete("/api/2.0/mlflow/model-versions/delete")
def delete_version(ws: Workspace, req: Request) -> dict:
    record = _version(ws, req.arg("name"), req.arg("version"))
    del ws.table(VERSIONS)[(record["name"], record["version"])]
    _touch(_model(ws, record["name"]), ws, "last_updated_timestamp")
    return {}


@routes.post("/api/2.0/mlflow/model-versions/set-tag")
def set_version_tag(ws: Workspace, req: Request) -> dict:
    record = _version(ws, req.json.get("name"), req.json.get("version"))
    record["tags"][_tag_key(_required(req, "key"))] = _tag_value(req.json.get("value"))
    _touch(record, ws, "last_updated_timestamp")
    return {}


@routes.delete("/api/2.0/mlflow/model-versions/delete-tag")
def delete_version_tag(ws: Workspace, req: Request) -> dict:
    record = _version(ws, req.arg("name"), req.arg("version"))
    if record["tags"].pop(_required(req, "key"), None) is not None:
        _touch(record, ws, "last_updated_timestamp")
    return {}


def transition(ws: Workspace, name: Any, version: Any, stage: Any, archive_existing: bool) -> dict:
    """Move a version to a stage; with archive_existing, the others in that stage become Archived."""
    record = _version(ws, name, version)
    target = _stage(stage)
    if archive_existing and target in ("Staging", "Production"):
        for other in _versions_of(ws, record["name"]):
            if other is not record and other["current_stage"] == target:
                other["current_stage"] = "Archived"
                _touch(other, ws, "last_updated_timestamp")
    record["current_stage"] = target
    _touch(record, ws, "last_updated_timestamp")
    _touch(_model(ws, record["name"]), ws, "last_updated_timestamp")
    return record


@routes.post("/api/2.0/mlflow/databricks/model-versions/transition-stage")
def transition_databricks(ws: Workspace, req: Request) -> dict:
    body = req.json
    archive = body.get("archive_existing_versions")
    if not isinstance(archive, bool):
        raise _missing("archive_existing_versions")
    record = transition(ws, body.get("name"), _required(req, "version"), _required(req, "stage"), archive)
    return {"model_version_databricks": {**render_version(record), "permission_level": "CAN_MANAGE"}}


@routes.post("/api/2.0/mlflow/model-versions/transition-stage")
def transition_oss(ws: Workspace, req: Request) -> dict:
    body = req.json
    archive = bool(body.get("archive_existing_versions"))
    record = transition(ws, body.get("name"), _required(req, "version"), _required(req, "stage"), archive)
    return {"model_version": render_version(record)}
