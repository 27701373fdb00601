"""Lakeflow Declarative (Delta Live Tables) pipelines: `/api/2.0/pipelines` (create, get, edit, delete,
list, updates, stop, events). Shapes follow databricks-sdk `service/pipelines.py` (`PipelinesAPI`).

Records live in table "pipelines" (pipeline id → {"spec", creator, last_modified, seq}) and updates in
"pipeline_updates" (update id → record). States are derived from the emulator clock on every read, so
freezegun moves them: an update waits for resources (the cluster start time, or the serverless start),
initialises, sets up tables, runs, and — when triggered — completes; a continuous update runs until
stopped. A notebook or file library that does not exist in the workspace fails the update at
initialisation (pipeline state FAILED), as the service only reads the sources when an update starts.

**Continuous pipelines start by themselves.** Creating a pipeline with `continuous: true` starts an
update, and editing a continuous pipeline cancels its active update and starts a new one (even when the
edit changes nothing). Sources: terraform-provider-databricks `pipelines/resource_pipeline.go` waits for
state RUNNING after both Create and Update when `spec.continuous` is set (and returns at once for
triggered pipelines); databricks/cli issue #6745 reports that every deploy of a continuous pipeline
makes the service cancel the active update and start a new one. A client that must not run a pipeline
(a DR standby) has to create and edit it with `continuous: false`.

- create: `name` required and unique unless `allow_duplicate_names` (409 RESOURCE_CONFLICT otherwise);
  `dry_run` validates and answers `effective_settings` without creating; `storage` and `catalog` are
  exclusive, so are `target` and `schema`; `edition` CORE/PRO/ADVANCED, `channel` CURRENT/PREVIEW (any
  case); instance pools and cluster policies named by `clusters` must exist, and exactly one cluster is
  labelled "default" (no label means default); `catalog` is lower-cased on create (only there, as
  terraform's resource notes). Defaults filled on read:
  `channel` CURRENT, `edition` ADVANCED, `storage` dbfs:/pipelines/<id> without a catalog.
- edit (PUT): the full spec replaces the old one; `storage` cannot change; `expected_last_modified`
  older than the last change is a 409 RESOURCE_CONFLICT.
- list: `max_results` default 25, at most 100 (more is a 400), `page_token`, `order_by` "id asc|desc",
  `filter` `name LIKE '<pattern>'` or `notebook='<path>'` (one condition).
- updates: start (409 RESOURCE_CONFLICT while an update is active), list (newest first, `max_results`,
  `page_token`, `until_update_id`), get (with the `config` the update ran with); stop cancels the
  active update at once (pipeline IDLE).
- events: generated from the updates (create_update, update_progress), newest first unless
  `order_by: ["timestamp asc"]`; `filter` as documented (level='X', level in (...), id='...',
  timestamp <op> '...', joined with AND); `max_results` (the server answers at most 250 a page).
Permissions: type "pipelines" (CAN_VIEW, CAN_RUN, CAN_MANAGE, IS_OWNER; the creator is the owner and
the pipeline runs as its owner, or as the `run_as` user or service principal given on create or edit).

Not modelled: datasets and flows (events carry no flow progress), the pipeline's real cluster (a cluster
id is reported, no cluster is created), retries of failed continuous updates, `clone`, `restart_window`,
ingestion/gateway definitions beyond storing them, development-mode cluster reuse.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from dbsync_emulator.apis import permissions, policies, pools, workspace
from dbsync_emulator.apis._paging import iso, new_uuid, page, page_size
from dbsync_emulator.errors import ApiError, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

PIPELINES = "pipelines"
UPDATES = "pipeline_updates"
LEVELS = ("CAN_VIEW", "CAN_RUN", "CAN_MANAGE", "IS_OWNER")
LIST_DEFAULT, LIST_MAX = 25, 100
UPDATES_DEFAULT, UPDATES_MAX = 25, 100
EVENTS_DEFAULT, EVENTS_MAX = 25, 250
SPEC_FIELDS = {
    "budget_policy_id": str,
    "catalog": str,
    "channel": str,
    "clusters": list,
    "configuration": dict,
    "continuous": bool,
    "deployment": dict,
    "development": bool,
    "edition": str,
    "environment": dict,
    "event_log": dict,
    "filters": dict,
    "gateway_definition": dict,
    "id": str,
    "ingestion_definition": dict,
    "libraries": list,
    "name": str,
    "notifications": list,
    "parent_path": str,
    "photon": bool,
    "restart_window": dict,
    "root_path": str,
    "schema": str,
    "serverless": bool,
    "storage": str,
    "tags": dict,
    "target": str,
    "trigger": dict,
    "usage_policy_id": str,
}
REQUEST_ONLY = {"allow_duplicate_names", "dry_run", "run_as", "expected_last_modified", "pipeline_id", "parameters"}
EDITIONS = ("CORE", "PRO", "ADVANCED")
CHANNELS = ("CURRENT", "PREVIEW")
LIBRARY_KINDS = ("notebook", "file", "glob", "jar", "maven", "whl")
ALERTS = ("on-update-success", "on-update-failure", "on-update-fatal-failure", "on-flow-failure")
TERMINAL = ("COMPLETED", "CANCELED", "FAILED")
PHASE_SECONDS = 1.0  # initialising and setting up tables, fast profile
REALISTIC_PHASE_SECONDS = 30.0


def _exists(ws: Workspace, pipeline_id: str) -> bool:
    return pipeline_id in ws.table(PIPELINES)


permissions.register("pipelines", "pipelines", LEVELS, _exists, owner_level="IS_OWNER")


def _load(ws: Workspace, pipeline_id: str) -> dict:
    record = ws.table(PIPELINES).get(pipeline_id)
    if record is None:
        raise not_found(f"The specified pipeline {pipeline_id} was not found.")
    return record


# -- spec validation ------------------------------------------------------------------------------
def _check_types(body: dict) -> None:
    for key, value in body.items():
        if key in REQUEST_ONLY:
            continue
        kind = SPEC_FIELDS.get(key)
        if kind is None:
            raise invalid(f"Unknown field '{key}' in the pipeline settings")
        if value is not None and not isinstance(value, kind):
            raise invalid(f"Field '{key}' must be a {kind.__name__}")


def _check_library(ws: Workspace, library: Any) -> None:
    kinds = [k for k in LIBRARY_KINDS if isinstance(library, dict) and library.get(k) is not None]
    if len(kinds) != 1:
        raise invalid(f"A library must set exactly one of {', '.join(LIBRARY_KINDS)}: {library}")
    kind = kinds[0]
    if kind in ("notebook", "file") and not (library[kind] or {}).get("path"):
        raise invalid(f"libraries.{kind}.path is required")
    if kind == "glob" and not (library[kind] or {}).get("include"):
        raise invalid("libraries.glob.include is required")


def _check_cluster(ws: Workspace, cluster: Any) -> None:
    if not isinstance(cluster, dict):
        raise invalid("clusters[] must be an object")
    for key in ("instance_pool_id", "driver_instance_pool_id"):
        if cluster.get(key) and cluster[key] not in ws.table(pools.TABLE):
            raise invalid(f"Instance pool {cluster[key]} does not exist ({key} of cluster '{_label(cluster)}')")
    if cluster.get("policy_id") and cluster["policy_id"] not in ws.table(policies.TABLE):
        raise invalid(f"Cluster policy {cluster['policy_id']} does not exist (cluster '{_label(cluster)}')")


def _check_labels(clusters: list) -> None:
    # terraform-provider-databricks issue #1401 quotes the service: "clusters must have exactly 1 default cluster"
    labels = [_label(c) for c in clusters]
    if clusters and labels.count("default") != 1:
        raise invalid("clusters must have exactly 1 default cluster")
    if len(set(labels)) != len(labels):
        raise invalid(f"Cluster labels must be unique: {labels}")


def _label(cluster: dict) -> str:
    return str(cluster.get("label") or "default")


def _check_notifications(notifications: list) -> None:
    for item in notifications:
        if not isinstance(item, dict):
            raise invalid("notifications[] must be an object")
        for alert in item.get("alerts") or []:
            if alert not in ALERTS:
                raise invalid(f"Invalid notification alert '{alert}': use one of {', '.join(ALERTS)}")


def _upper_choice(value: Any, choices: tuple[str, ...], field: str) -> str | None:
    if value is None:
        return None
    if str(value).upper() not in choices:
        raise invalid(f"Invalid {field} '{value}': use one of {', '.join(choices)}")
    return str(value).upper()


def _spec(ws: Workspace, body: dict) -> dict:
    """The stored spec of a create or edit request (validated; defaults are added on read)."""
    _check_types(body)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("Pipeline name is required")
    if body.get("storage") and body.get("catalog"):
        raise invalid("'storage' and 'catalog' are mutually exclusive: Unity Catalog pipelines store in the catalog")
    if body.get("target") and body.get("schema"):
        raise invalid("'target' and 'schema' are mutually exclusive: set only 'schema'")
    for library in body.get("libraries") or []:
        _check_library(ws, library)
    for cluster in body.get("clusters") or []:
        _check_cluster(ws, cluster)
    _check_labels(body.get("clusters") or [])
    _check_notifications(body.get("notifications") or [])
    spec = {k: v for k, v in body.items() if k in SPEC_FIELDS and v is not None and k != "id"}
    for field, choices in (("edition", EDITIONS), ("channel", CHANNELS)):
        if field in spec:
            spec[field] = _upper_choice(spec[field], choices, field)
    return spec


def _effective(record_id: str, spec: dict) -> dict:
    """The spec as GET answers it: the request's fields plus the service's defaults."""
    out = {"id": record_id, **spec}
    out.setdefault("channel", "CURRENT")
    if not spec.get("serverless"):
        out.setdefault("edition", "ADVANCED")
    if not spec.get("catalog"):
        out.setdefault("storage", f"dbfs:/pipelines/{record_id}")
    for flag in ("continuous", "development", "photon"):
        out.setdefault(flag, False)
    if spec.get("clusters"):
        out["clusters"] = [{"label": _label(c), **c} for c in spec["clusters"]]
    return out


def _duplicate(ws: Workspace, name: str, skip: str | None = None) -> None:
    for other in ws.table(PIPELINES).values():
        if other["spec"]["name"] == name and other["pipeline_id"] != skip:
            raise ApiError(
                409,
                "RESOURCE_CONFLICT",
                f"Pipeline with name '{name}' already exists ({other['pipeline_id']}); set "
                "allow_duplicate_names to create another",
            )


# -- updates and states -----------------------------------------------------------------------------
def _phase_seconds(ws: Workspace) -> float:
    base = REALISTIC_PHASE_SECONDS if ws.timing.realistic else PHASE_SECONDS
    return base * ws.timing.time_scale


def _missing_source(ws: Workspace, spec: dict) -> str | None:
    for library in spec.get("libraries") or []:
        for kind in ("notebook", "file"):
            path = (library.get(kind) or {}).get("path")
            if path and workspace.get_object(ws, workspace.normalize_path(path)) is None:
                return f"The {kind} {path} does not exist."
    return None


def start_update(ws: Workspace, record: dict, cause: str, **options: Any) -> dict:
    """Start an update of `record` (refused while one is active); returns the update record."""
    active = _active_update(ws, record)
    if active is not None:
        raise ApiError(
            409,
            "RESOURCE_CONFLICT",
            f"Pipeline {record['pipeline_id']} has an active update {active['update_id']}: stop it first",
        )
    return _new_update(ws, record, cause, **options)


def _new_update(ws: Workspace, record: dict, cause: str, **options: Any) -> dict:
    spec = record["spec"]
    serverless = bool(spec.get("serverless"))
    if serverless:
        pending = ws.timing.run_pending_seconds("serverless", ws.draw("pipeline-pending"))
    else:
        pending = ws.timing.cluster_seconds(ws.cluster_start_seconds, "start", ws.draw("pipeline-pending"))
    update_id = new_uuid(ws).hex
    update = {
        "update_id": update_id,
        "pipeline_id": record["pipeline_id"],
        "cause": cause,
        "creation_time": ws.now_ms(),
        "continuous": bool(spec.get("continuous")),
        "config": _effective(record["pipeline_id"], spec),
        "pending_s": pending,
        "phase_s": _phase_seconds(ws),
        "run_s": ws.timing.task_seconds(1, ws.draw("pipeline-run")),
        "failure": _missing_source(ws, spec),
        "ended_ms": None,
        "end_state": None,
        "cluster_id": None if serverless else f"{ws.random_hex(4)}-{ws.random_hex(6)}-pipeline",
        "seq": ws.next_id("pipeline_update_seq"),
        **{k: v for k, v in options.items() if v not in (None, False, [])},
    }
    ws.table(UPDATES)[update_id] = update
    record["updates"].append(update_id)
    return update


def _timeline(update: dict) -> list[tuple[float, str]]:
    """(seconds after creation, state) for every state the update goes through."""
    pending, phase = update["pending_s"], update["phase_s"]
    steps = [(0.0, "WAITING_FOR_RESOURCES"), (pending, "INITIALIZING")]
    if update.get("failure"):
        return [*steps, (pending + phase, "FAILED")]
    steps.append((pending + phase, "SETTING_UP_TABLES"))
    if update.get("validate_only"):
        return [*steps, (pending + 2 * phase, "COMPLETED")]
    steps.append((pending + 2 * phase, "RUNNING"))
    if not update["continuous"]:
        steps.append((pending + 2 * phase + update["run_s"], "COMPLETED"))
    return steps


def _passed(update: dict, now_ms: int) -> list[tuple[int, str]]:
    """(epoch ms, state) of the states reached by `now_ms`, a stop included."""
    start = update["creation_time"]
    reached = []
    for offset, state in _timeline(update):
        at = start + int(offset * 1000)
        if update["ended_ms"] is not None and at >= update["ended_ms"] and reached:
            break
        if at > now_ms:
            break
        reached.append((at, state))
    if update["ended_ms"] is not None and update["ended_ms"] <= now_ms and reached[-1][1] not in TERMINAL:
        reached.append((update["ended_ms"], update["end_state"]))
    return reached


def update_state(ws: Workspace, update: dict) -> str:
    return _passed(update, ws.now_ms())[-1][1]


def _active_update(ws: Workspace, record: dict) -> dict | None:
    for update_id in reversed(record["updates"]):
        update = ws.table(UPDATES)[update_id]
        if update_state(ws, update) not in TERMINAL:
            return update
    return None


def _stop(ws: Workspace, record: dict, end_state: str = "CANCELED") -> None:
    update = _active_update(ws, record)
    if update is not None:
        update["ended_ms"], update["end_state"] = ws.now_ms(), end_state


def pipeline_state(ws: Workspace, record: dict) -> str:
    """IDLE without an active update; STARTING while it waits for resources; RUNNING; FAILED after a failure."""
    if not record["updates"]:
        return "IDLE"
    latest = ws.table(UPDATES)[record["updates"][-1]]
    state = update_state(ws, latest)
    if state == "FAILED":
        return "FAILED"
    if state in TERMINAL:
        return "IDLE"
    return "STARTING" if state == "WAITING_FOR_RESOURCES" else "RUNNING"


# -- rendering -----------------------------------------------------------------------------------------
def _latest_updates(ws: Workspace, record: dict) -> list[dict]:
    out = []
    for update_id in reversed(record["updates"][-5:]):
        update = ws.table(UPDATES)[update_id]
        out.append(
            {
                "update_id": update_id,
                "state": update_state(ws, update),
                "creation_time": iso(update["creation_time"]),
            }
        )
    return out


def _owner(ws: Workspace, record: dict) -> str:
    """Who the pipeline runs as: its `run_as` principal when one was given, else its owner."""
    run_as = record.get("run_as") or {}
    explicit = run_as.get("user_name") or run_as.get("service_principal_name")
    return explicit or permissions.owner_of(ws, "pipelines", record["pipeline_id"]) or record["creator_user_name"]


def _check_run_as(ws: Workspace, run_as: Any) -> dict | None:
    if run_as is None:
        return None
    kinds = [k for k in ("user_name", "service_principal_name") if isinstance(run_as, dict) and run_as.get(k)]
    if len(kinds) != 1:
        raise invalid("run_as needs exactly one of user_name or service_principal_name")
    if not permissions.principal_exists(ws, kinds[0], run_as[kinds[0]]):
        raise invalid(f"run_as principal {run_as[kinds[0]]} does not exist")
    return {kinds[0]: run_as[kinds[0]]}


def _status(ws: Workspace, record: dict, detailed: bool) -> dict:
    state = pipeline_state(ws, record)
    out: dict[str, Any] = {
        "pipeline_id": record["pipeline_id"],
        "name": record["spec"]["name"],
        "state": state,
        "creator_user_name": record["creator_user_name"],
        "run_as_user_name": _owner(ws, record),
        "health": "UNHEALTHY" if state == "FAILED" else "HEALTHY",
    }
    if record["updates"]:
        out["latest_updates"] = _latest_updates(ws, record)
        latest = ws.table(UPDATES)[record["updates"][-1]]
        if state in ("STARTING", "RUNNING") and latest["cluster_id"]:
            out["cluster_id"] = latest["cluster_id"]
        if state == "FAILED":
            out["cause"] = latest["failure"]
    if detailed:
        out["spec"] = _effective(record["pipeline_id"], record["spec"])
        out["last_modified"] = record["last_modified"]
        if record.get("run_as"):
            out["run_as"] = record["run_as"]
    return out


def render_update(ws: Workspace, update: dict, detailed: bool) -> dict:
    out: dict[str, Any] = {
        "update_id": update["update_id"],
        "pipeline_id": update["pipeline_id"],
        "state": update_state(ws, update),
        "cause": update["cause"],
        "creation_time": update["creation_time"],
    }
    for key in ("full_refresh", "validate_only", "refresh_selection", "full_refresh_selection", "parameters"):
        if key in update:
            out[key] = update[key]
    if update["cluster_id"]:
        out["cluster_id"] = update["cluster_id"]
    if detailed:
        out["config"] = update["config"]
        out["mode"] = "CONTINUOUS" if update["continuous"] else "DEFAULT"
    return out


# -- pipelines --------------------------------------------------------------------------------------
def create_pipeline(ws: Workspace, body: dict) -> dict:
    """Create a pipeline like POST /api/2.0/pipelines (not a dry run); returns its record."""
    spec = _spec(ws, body)
    if spec.get("catalog"):
        spec["catalog"] = spec["catalog"].lower()  # normalised on create only (terraform's resource_pipeline.go)
    if not body.get("allow_duplicate_names"):
        _duplicate(ws, spec["name"])
    run_as = _check_run_as(ws, body.get("run_as"))
    pipeline_id = str(new_uuid(ws))
    record = {
        "pipeline_id": pipeline_id,
        "spec": spec,
        "run_as": run_as,
        "creator_user_name": ws.admin_user,
        "last_modified": ws.now_ms(),
        "seq": ws.next_id("pipeline_seq"),
        "updates": [],
    }
    ws.table(PIPELINES)[pipeline_id] = record
    permissions.grant_creator(ws, "pipelines", pipeline_id)
    if spec.get("continuous"):
        _new_update(ws, record, "USER_ACTION")  # the service starts a continuous pipeline on create
    return record


@routes.post("/api/2.0/pipelines")
def create(ws: Workspace, req: Request) -> dict:
    body = req.json
    if body.get("dry_run"):
        spec = _spec(ws, body)
        return {"effective_settings": _effective("dry-run", spec)}
    return {"pipeline_id": create_pipeline(ws, body)["pipeline_id"]}


@routes.get("/api/2.0/pipelines/{id}")
def get(ws: Workspace, req: Request) -> dict:
    return _status(ws, _load(ws, req.path_params["id"]), detailed=True)


@routes.put("/api/2.0/pipelines/{id}")
def edit(ws: Workspace, req: Request) -> dict:
    """Replace the spec; a continuous pipeline's active update is cancelled and a new one started."""
    record = _load(ws, req.path_params["id"])
    body = req.json
    if body.get("pipeline_id") not in (None, record["pipeline_id"]):
        raise invalid(f"pipeline_id {body['pipeline_id']} does not match the path ({record['pipeline_id']})")
    expected = body.get("expected_last_modified")
    if expected not in (None, 0) and int(expected) < record["last_modified"]:
        raise ApiError(
            409, "RESOURCE_CONFLICT", "The pipeline settings were modified since they were read: get them again"
        )
    spec = _spec(ws, body)
    old_storage = _effective(record["pipeline_id"], record["spec"]).get("storage")
    new_storage = _effective(record["pipeline_id"], spec).get("storage")
    if old_storage != new_storage:
        raise invalid("The storage location of a pipeline cannot change: create a new pipeline instead")
    if not body.get("allow_duplicate_names") and spec["name"] != record["spec"]["name"]:
        _duplicate(ws, spec["name"], skip=record["pipeline_id"])
    run_as = _check_run_as(ws, body.get("run_as"))
    was_continuous = bool(record["spec"].get("continuous"))
    record["spec"] = spec
    if run_as is not None:
        record["run_as"] = run_as
    record["last_modified"] = max(ws.now_ms(), record["last_modified"] + 1)
    if was_continuous or spec.get("continuous"):
        _stop(ws, record)  # settings change: the service restarts a continuous pipeline
    if spec.get("continuous"):
        _new_update(ws, record, "USER_ACTION")
    return {}


@routes.delete("/api/2.0/pipelines/{id}")
def delete(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    _stop(ws, record)
    for update_id in record["updates"]:
        ws.table(UPDATES).pop(update_id, None)
    del ws.table(PIPELINES)[record["pipeline_id"]]
    permissions.forget(ws, "pipelines", record["pipeline_id"])
    return {}


_LIKE = re.compile(r"^\s*name\s+LIKE\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_NOTEBOOK = re.compile(r"^\s*notebook\s*=\s*'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def _like(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


def _filter(text: str | None) -> Any:
    if not text:
        return lambda record: True
    m = _LIKE.match(text)
    if m:
        regex = _like(m.group(1).replace("''", "'"))
        return lambda record: bool(regex.match(record["spec"]["name"]))
    m = _NOTEBOOK.match(text)
    if m:
        path = m.group(1).replace("''", "'")
        return lambda record: any(
            (lib.get("notebook") or {}).get("path") == path for lib in record["spec"].get("libraries") or []
        )
    raise invalid(f"Invalid filter: {text} (use name LIKE '<pattern>' or notebook='<path>')")


@routes.get("/api/2.0/pipelines")
def list_pipelines(ws: Workspace, req: Request) -> dict:
    size = page_size(req.int_arg("max_results"), LIST_DEFAULT, LIST_MAX, name="max_results", clamp=False)
    keep = _filter(req.arg("filter"))
    order = [o.strip().lower() for o in req.args("order_by")]
    if any(o not in ("id", "id asc", "id desc") for o in order):
        raise invalid(f"Invalid order_by: {order} (the supported field is id)")
    records = sorted((r for r in ws.table(PIPELINES).values() if keep(r)), key=lambda r: r["pipeline_id"])
    if order and order[0] == "id desc":
        records.reverse()
    chunk, token = page(records, size, req.arg("page_token"))
    body: dict[str, Any] = {"statuses": [_status(ws, r, detailed=False) for r in chunk]}
    if token:
        body["next_page_token"] = token
    return body


# -- updates ------------------------------------------------------------------------------------------
@routes.post("/api/2.0/pipelines/{id}/updates")
def start(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    body = req.json
    if body.get("full_refresh") and (body.get("refresh_selection") or body.get("full_refresh_selection")):
        raise invalid("full_refresh cannot be combined with refresh_selection or full_refresh_selection")
    update = start_update(
        ws,
        record,
        str(body.get("cause") or "API_CALL"),
        full_refresh=bool(body.get("full_refresh")),
        validate_only=bool(body.get("validate_only")),
        refresh_selection=body.get("refresh_selection") or [],
        full_refresh_selection=body.get("full_refresh_selection") or [],
        parameters=body.get("parameters"),
    )
    return {"update_id": update["update_id"]}


@routes.get("/api/2.0/pipelines/{id}/updates")
def list_updates(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    size = page_size(req.int_arg("max_results"), UPDATES_DEFAULT, UPDATES_MAX, name="max_results")
    ids = list(reversed(record["updates"]))
    until = req.arg("until_update_id")
    if until:
        if until not in ids:
            raise not_found(f"Update {until} of pipeline {record['pipeline_id']} was not found.")
        ids = ids[ids.index(until) :]
    chunk, token = page(ids, size, req.arg("page_token"))
    body: dict[str, Any] = {}
    if chunk:
        body["updates"] = [render_update(ws, ws.table(UPDATES)[u], detailed=False) for u in chunk]
    if token:
        body["next_page_token"] = token
    return body


@routes.get("/api/2.0/pipelines/{id}/updates/{update_id}")
def get_update(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    update_id = req.path_params["update_id"]
    if update_id not in record["updates"]:
        raise not_found(f"Update {update_id} of pipeline {record['pipeline_id']} was not found.")
    return {"update": render_update(ws, ws.table(UPDATES)[update_id], detailed=True)}


@routes.post("/api/2.0/pipelines/{id}/stop")
def stop(ws: Workspace, req: Request) -> dict:
    _stop(ws, _load(ws, req.path_params["id"]))
    return {}


# -- events -------------------------------------------------------------------------------------------
def _events(ws: Workspace, record: dict) -> list[dict]:
    now = ws.now_ms()
    events = []
    for update_id in record["updates"]:
        update = ws.table(UPDATES)[update_id]
        origin = {"pipeline_id": record["pipeline_id"], "pipeline_name": record["spec"]["name"], "update_id": update_id}
        events.append(
            _event(
                update,
                0,
                update["creation_time"],
                "create_update",
                "INFO",
                f"Update {update_id[:6]} started by {update['cause']}.",
                origin,
            )
        )
        for n, (at, state) in enumerate(_passed(update, now), start=1):
            level = "ERROR" if state == "FAILED" else "INFO"
            message = f"Update {update_id[:6]} is {state}."
            if state == "FAILED":
                message += f" {update['failure']}"
            events.append(_event(update, n, at, "update_progress", level, message, origin, state))
    return events


def _event(update: dict, n: int, at: int, kind: str, level: str, message: str, origin: dict, state: str = "") -> dict:
    event = {
        "id": f"{update['update_id']}-{n:03d}",
        "event_type": kind,
        "level": level,
        "message": message,
        "timestamp": iso(at),
        "origin": origin,
        "maturity_level": "STABLE",
        "sequence": {"control_plane_seq_no": update["seq"] * 1000 + n},
        "_at": at,
    }
    if state:
        event["details"] = {"update_progress": {"state": state}}
    return event


_LEVEL = re.compile(r"^level\s*(?:=\s*'(\w+)'|in\s*\(([^)]*)\))$", re.IGNORECASE)
_EVENT_ID = re.compile(r"^id\s*=\s*'([^']*)'$", re.IGNORECASE)
_TIMESTAMP = re.compile(r"^timestamp\s*(>=|<=|>|<|=)\s*'([^']*)'$", re.IGNORECASE)
_COMPARE = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
}


def _ms(text: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid timestamp in filter: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _condition(text: str) -> Any:
    m = _LEVEL.match(text)
    if m:
        levels = {m.group(1).upper()} if m.group(1) else {v.strip(" '").upper() for v in m.group(2).split(",")}
        return lambda event: event["level"] in levels
    m = _EVENT_ID.match(text)
    if m:
        wanted = m.group(1)
        return lambda event: event["id"] == wanted
    m = _TIMESTAMP.match(text)
    if m:
        compare, bound = _COMPARE[m.group(1)], _ms(m.group(2))
        return lambda event: compare(event["_at"], bound)
    raise invalid(f"Invalid filter condition: {text} (level, id or timestamp, joined with AND)")


def _event_filter(text: str | None) -> Any:
    """The documented filters: level='X', level in (...), id='...', timestamp <op> '...', joined by AND."""
    if not text or not text.strip():
        return lambda event: True
    conditions = [_condition(part.strip()) for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE)]
    return lambda event: all(c(event) for c in conditions)


@routes.get("/api/2.0/pipelines/{id}/events")
def list_events(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    token = req.arg("page_token")  # the SDK sends filter and order_by again with every page
    size = page_size(req.int_arg("max_results"), EVENTS_DEFAULT, EVENTS_MAX, name="max_results")
    order = [o.strip().lower() for o in req.args("order_by")] or ["timestamp desc"]
    if order[0] not in ("timestamp asc", "timestamp desc", "timestamp"):
        raise invalid(f"Invalid order_by: {order[0]} (timestamp asc or timestamp desc)")
    keep = _event_filter(req.arg("filter"))
    events = sorted((e for e in _events(ws, record) if keep(e)), key=lambda e: (e["_at"], e["id"]))
    if order[0] == "timestamp desc":
        events.reverse()
    chunk, next_token = page(events, size, token)
    body: dict[str, Any] = {"events": [{k: v for k, v in e.items() if k != "_at"} for e in chunk]}
    if next_token:
        body["next_page_token"] = next_token
    return body
