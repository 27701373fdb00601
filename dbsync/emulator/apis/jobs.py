"""Jobs API 2.0 / 2.1 / 2.2: jobs CRUD, list paging, run-now and runs.

Jobs live in table "jobs" (str(job_id) → {job_id, created_time, creator_user_name, settings});
runs in "runs" (str(run_id) → record). Run states are derived from timestamps when read, so tests
move them with freezegun instead of sleeping.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

from dbsync.emulator.apis import permissions
from dbsync.emulator.errors import ApiError, invalid
from dbsync.emulator.router import Request, Routes
from dbsync.emulator.state import Workspace

routes = Routes()

VERSIONS = ("2.0", "2.1", "2.2")
ARRAY_PAGE = 100  # 2.2 get pages tasks, job_clusters, environments and parameters at 100
PAGED_ARRAYS = ("tasks", "job_clusters", "environments", "parameters")
LIST_OMITS = ("tasks", "job_clusters", "environments")
# jobs/update merges these arrays entry by entry, matching entries on the key field.
ARRAY_KEYS = {"tasks": "task_key", "job_clusters": "job_cluster_key", "environments": "environment_key"}
TRIGGER_FIELDS = ("schedule", "continuous", "trigger")
# Task fields that carry a task's work; some need no cluster.
TASK_TYPES = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "spark_jar_task",
    "spark_submit_task",
    "sql_task",
    "dbt_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
    "dashboard_task",
    "clean_rooms_notebook_task",
    "gen_ai_compute_task",
    "power_bi_task",
)
COMPUTELESS = (
    "sql_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
    "dashboard_task",
    "power_bi_task",
)
COMPUTE_FIELDS = ("existing_cluster_id", "new_cluster", "job_cluster_key", "environment_key")
RUN_IF = (
    "ALL_SUCCESS",
    "ALL_DONE",
    "NONE_FAILED",
    "AT_LEAST_ONE_SUCCESS",
    "ALL_FAILED",
    "AT_LEAST_ONE_FAILED",
)
PAUSE = ("PAUSED", "UNPAUSED")
PERIODIC_UNITS = ("MINUTES", "HOURS", "DAYS", "WEEKS")
RUN_PENDING_SECONDS = 1.0
RUN_DURATION_SECONDS = 60.0  # a run's notebook "works" this long, then succeeds


def _paths(*suffixes: str, versions: tuple[str, ...] = VERSIONS) -> tuple[str, ...]:
    return tuple(f"/api/{v}/jobs/{s}" for v in versions for s in suffixes)


def _version(req: Request) -> str:
    return req.path.split("/")[2]


# -- request shapes: a wrong JSON type is a parse error for the service -----------------------------
_JOB_SHAPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "description": str,
    "tags": dict,
    "tasks": list,
    "job_clusters": list,
    "schedule": dict,
    "continuous": dict,
    "trigger": dict,
    "email_notifications": dict,
    "webhook_notifications": dict,
    "notification_settings": dict,
    "timeout_seconds": int,
    "max_concurrent_runs": int,
    "git_source": dict,
    "run_as": dict,
    "parameters": list,
    "environments": list,
    "queue": dict,
    "health": dict,
    "format": str,
    "edit_mode": str,
    "deployment": dict,
    "budget_policy_id": str,
    "performance_target": str,
    "parent_path": str,
}
_TASK_SHAPES: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(TASK_TYPES, dict),
    "task_key": str,
    "description": str,
    "depends_on": list,
    "run_if": str,
    "existing_cluster_id": str,
    "new_cluster": dict,
    "job_cluster_key": str,
    "environment_key": str,
    "libraries": list,
    "timeout_seconds": int,
    "max_retries": int,
    "min_retry_interval_millis": int,
    "retry_on_timeout": bool,
    "email_notifications": dict,
    "webhook_notifications": dict,
    "health": dict,
    "disabled": bool,
    "notification_settings": dict,
}
_LISTS_OF_OBJECTS = ("tasks", "job_clusters", "parameters", "environments", "depends_on", "libraries")


def malformed_field(name: str, expected: type | tuple[type, ...]) -> ApiError:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(
        {dict: "an object", list: "an array", str: "a string", int: "a number", bool: "a boolean"}[k] for k in kinds
    )
    return ApiError(400, "MALFORMED_REQUEST", f"Could not parse request object: {name} must be {wanted}")


def _check_shape(document: Any, shapes: dict[str, type | tuple[type, ...]], where: str) -> None:
    """Raise MALFORMED_REQUEST when a known field has the wrong JSON type (unknown fields are ignored)."""
    if not isinstance(document, dict):
        raise malformed_field(where or "the request", dict)
    for name, expected in shapes.items():
        value = document.get(name)
        if value is None:
            continue
        # JSON has no separate int type for bools; int64 fields also accept digit strings.
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is int and isinstance(value, str) and value.lstrip("-").isdigit():
            ok = True
        if not ok:
            raise malformed_field(f"{where}{name}", expected)
        if name in _LISTS_OF_OBJECTS and not all(isinstance(item, dict) for item in value):
            raise malformed_field(f"{where}{name}[]", dict)


def _check_settings_shape(settings: Any) -> None:
    _check_shape(settings, _JOB_SHAPES, "")
    for i, task in enumerate(settings.get("tasks") or []):
        _check_shape(task, _TASK_SHAPES, f"tasks[{i}].")
    tags = settings.get("tags") or {}
    if not all(isinstance(v, str) for v in tags.values()):
        raise malformed_field("tags values", str)


# -- validation -------------------------------------------------------------------------------------
def _cluster_exists(ws: Workspace, cluster_id: str) -> bool:
    from dbsync.emulator.apis import clusters  # clusters registers after jobs; import when first needed

    return clusters.get_cluster(ws, str(cluster_id)) is not None


_CRON = re.compile(r"^\s*(\S+\s+){5}\S+(\s+\S+)?\s*$")


def _validate_trigger(settings: dict) -> None:
    present = [f for f in TRIGGER_FIELDS if settings.get(f) is not None]
    if len(present) > 1:
        raise invalid(f"Only one of {', '.join(TRIGGER_FIELDS)} can be specified, found: {', '.join(present)}")
    for field in present:
        spec = settings[field]
        status = spec.get("pause_status")
        if status is not None and status not in PAUSE:
            raise invalid(f"Invalid pause_status: {status}")
    schedule = settings.get("schedule")
    if schedule:
        cron = schedule.get("quartz_cron_expression")
        if not cron or not _CRON.match(cron):
            raise invalid(f"Invalid quartz_cron_expression: {cron!r}")
        if not schedule.get("timezone_id"):
            raise invalid("schedule.timezone_id is required")
    trigger = settings.get("trigger")
    if trigger:
        kinds = [k for k in ("file_arrival", "periodic", "table_update", "table", "model") if trigger.get(k)]
        if len(kinds) != 1:
            raise invalid("Exactly one trigger type must be specified")
        periodic = trigger.get("periodic")
        if periodic and (periodic.get("unit") not in PERIODIC_UNITS or int(periodic.get("interval", 0)) < 1):
            raise invalid("trigger.periodic needs interval >= 1 and unit in " + ", ".join(PERIODIC_UNITS))
        if trigger.get("file_arrival") and not trigger["file_arrival"].get("url"):
            raise invalid("trigger.file_arrival.url is required")


def _validate_tasks(ws: Workspace, settings: dict) -> None:
    tasks = settings.get("tasks") or []
    if len(tasks) > 1000:
        raise invalid("A job can have at most 1000 tasks")
    job_cluster_keys = [c.get("job_cluster_key") for c in settings.get("job_clusters") or []]
    if len(set(job_cluster_keys)) != len(job_cluster_keys) or None in job_cluster_keys:
        raise invalid("job_cluster_key must be set and unique in job_clusters")
    env_keys = {e.get("environment_key") for e in settings.get("environments") or []}
    keys = [t.get("task_key") for t in tasks]
    if None in keys or "" in keys:
        raise invalid("Task key must be specified for every task")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise invalid(f"Task key {duplicates[0]} is duplicated. Task keys must be unique.")
    for task in tasks:
        _validate_task(ws, task, set(keys), set(job_cluster_keys), env_keys)


def _validate_task(ws: Workspace, task: dict, keys: set, job_cluster_keys: set, env_keys: set) -> None:
    key = task["task_key"]
    kinds = [t for t in TASK_TYPES if t in task]
    if len(kinds) != 1:
        raise invalid(f"Task {key} must specify exactly one task type")
    compute = [c for c in COMPUTE_FIELDS if task.get(c)]
    if len(compute) > 1:
        raise invalid(f"Task {key} can specify only one of {', '.join(COMPUTE_FIELDS)}")
    if not compute and kinds[0] not in COMPUTELESS:
        raise invalid(f"Task {key} does not specify a cluster, a job cluster or an environment")
    cluster_id = task.get("existing_cluster_id")
    if cluster_id and not _cluster_exists(ws, cluster_id):
        raise invalid(f"Cluster {cluster_id} does not exist")
    if task.get("job_cluster_key") and task["job_cluster_key"] not in job_cluster_keys:
        raise invalid(f"Task {key} refers to job cluster {task['job_cluster_key']} that is not defined")
    if task.get("environment_key") and task["environment_key"] not in env_keys:
        raise invalid(f"Task {key} refers to environment {task['environment_key']} that is not defined")
    for dep in task.get("depends_on") or []:
        if dep.get("task_key") not in keys:
            raise invalid(f"Task {key} depends on {dep.get('task_key')} which does not exist")
    if task.get("run_if") and task["run_if"] not in RUN_IF:
        raise invalid(f"Invalid run_if: {task['run_if']}")
    notebook = task.get("notebook_task")
    if notebook is not None and not notebook.get("notebook_path"):
        raise invalid(f"Task {key}: notebook_task.notebook_path is required")


def _validate(ws: Workspace, settings: dict) -> None:
    _check_settings_shape(settings)
    _validate_trigger(settings)
    _validate_tasks(ws, settings)
    tags = settings.get("tags") or {}
    if len(tags) > 25:
        raise invalid("A job can have at most 25 tags")
    runs = settings.get("max_concurrent_runs")
    if runs is not None and not 0 <= int(runs) <= 1000:
        raise invalid("max_concurrent_runs must be between 0 and 1000")
    run_as = settings.get("run_as")
    if run_as and len([k for k in ("user_name", "service_principal_name") if run_as.get(k)]) != 1:
        raise invalid("run_as must specify exactly one of user_name or service_principal_name")


# -- settings with the service's defaults -----------------------------------------------------------
def _with_defaults(settings: dict) -> dict:
    """What the service stores: the settings sent plus the defaults it fills in."""
    # JSON null is "not set" for the service, so null fields take their defaults.
    out = copy.deepcopy({k: v for k, v in settings.items() if v is not None})
    out.pop("format", None)
    out.setdefault("name", "Untitled")
    out.setdefault("email_notifications", {})
    out.setdefault("webhook_notifications", {})
    out.setdefault("timeout_seconds", 0)
    out.setdefault("max_concurrent_runs", 1)
    out["format"] = "MULTI_TASK"
    for field in TRIGGER_FIELDS:
        if isinstance(out.get(field), dict):  # `continuous: {}` is a continuous job, UNPAUSED by default
            out[field].setdefault("pause_status", "UNPAUSED")
    for task in out.get("tasks") or []:
        task.setdefault("run_if", "ALL_SUCCESS")
        task.setdefault("timeout_seconds", 0)
        task.setdefault("email_notifications", {})
        if "notebook_task" in task:
            task["notebook_task"].setdefault("source", "WORKSPACE")
    return out


# Task-level fields a 2.0 single-task job carries at the top of its settings.
V20_TASK_FIELDS = (
    *TASK_TYPES,
    "existing_cluster_id",
    "new_cluster",
    "libraries",
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
)
# Task fields that stay out of the flat 2.0 view: the job-level field of the same name wins.
_V20_HIDDEN = (
    "task_key",
    "run_if",
    "depends_on",
    "description",
    "email_notifications",
    "webhook_notifications",
    "timeout_seconds",
    "notification_settings",
    "disabled",
)


def _from_v20(body: dict) -> dict:
    """A 2.0 single-task body (task fields at the top) as a one-task settings document."""
    task_fields = [f for f in V20_TASK_FIELDS if f in body]
    if not task_fields or "tasks" in body:
        return body
    settings = {k: v for k, v in body.items() if k not in task_fields}
    task = {k: body[k] for k in task_fields}
    task["task_key"] = re.sub(r"[^A-Za-z0-9_-]", "_", body.get("name") or "Untitled")[:100]
    settings["tasks"] = [task]
    settings["format"] = "SINGLE_TASK"
    return settings


def _to_v20(settings: dict) -> dict:
    """The flat 2.0 view of a one-task job; multi-task jobs are shown as they are."""
    tasks = settings.get("tasks") or []
    if len(tasks) != 1 or settings.get("job_clusters"):
        return settings
    flat = {k: v for k, v in settings.items() if k != "tasks"}
    flat.update({k: v for k, v in tasks[0].items() if k not in _V20_HIDDEN and k not in flat})
    flat["format"] = "SINGLE_TASK"
    return flat


# -- internal API -----------------------------------------------------------------------------------
def create_job(
    ws: Workspace, settings: dict, creator: str | None = None, access_control_list: list | None = None
) -> int:
    """Validate and store a job; the creator becomes its IS_OWNER unless the ACL names another owner."""
    _validate(ws, settings)
    # The ACL is checked before anything is stored: a bad principal fails the whole create.
    entries = _acl_entries(ws, access_control_list) if access_control_list else []
    job_id = ws.next_id("job_id", start=(ws.workspace_id % 900 + 100) * 10**12 + 1)
    creator = creator or ws.admin_user
    ws.table("jobs")[str(job_id)] = {
        "job_id": job_id,
        "created_time": ws.now_ms(),
        "creator_user_name": creator,
        "settings": _with_defaults(settings),
    }
    permissions.grant_creator(ws, "jobs", str(job_id), creator)
    if entries:
        _apply_acl(ws, job_id, entries)
    return job_id


def _acl_entries(ws: Workspace, acl: list) -> list[dict]:
    entries = permissions.parse_entries(ws, permissions.TYPES["jobs"], {"access_control_list": acl})
    if len([e for e in entries if e["level"] == "IS_OWNER"]) > 1:
        raise invalid("There can be only one owner of a job")
    return entries


def _apply_acl(ws: Workspace, job_id: int, entries: list[dict]) -> None:
    """Add create's access_control_list to the creator's entry; an IS_OWNER entry replaces the owner."""
    current = permissions.direct_acl(ws, "jobs", str(job_id))
    if any(e["level"] == "IS_OWNER" for e in entries):
        current = [e for e in current if e["level"] != "IS_OWNER"]
    names = {(e["principal_type"], e["principal"]) for e in entries}
    current = [e for e in current if (e["principal_type"], e["principal"]) not in names or e["level"] == "IS_OWNER"]
    ws.table("acls")[("jobs", str(job_id))] = current + entries


def _job(ws: Workspace, job_id: Any) -> dict:
    try:
        key = str(int(job_id))
    except (TypeError, ValueError):
        raise invalid(f"Invalid job_id: {job_id!r}") from None
    job = ws.table("jobs").get(key)
    if job is None:
        raise invalid(f"Job {key} does not exist.")
    return job


def _job_document(ws: Workspace, job: dict, version: str, include_run_as: bool) -> dict:
    # A shallow copy is enough: callers only replace top-level keys, and the server encodes the
    # answer under ws.lock, before any other handler can change the stored settings.
    settings = dict(job["settings"])
    doc: dict[str, Any] = {
        "job_id": job["job_id"],
        "creator_user_name": job["creator_user_name"],
        "created_time": job["created_time"],
        "settings": _to_v20(settings) if version == "2.0" else settings,
    }
    if include_run_as:
        run_as = settings.get("run_as") or {}
        doc["run_as_user_name"] = (
            run_as.get("user_name") or run_as.get("service_principal_name") or job["creator_user_name"]
        )
    return doc


def _page_arrays(doc: dict, offset: int) -> dict:
    """2.2: arrays beyond ARRAY_PAGE entries come in pages; later pages carry only the rest."""
    settings = doc["settings"]
    more = False
    for field in PAGED_ARRAYS:
        values = settings.get(field)
        if not values:
            continue
        settings[field] = values[offset : offset + ARRAY_PAGE]
        if not settings[field]:
            settings.pop(field)
        more = more or len(values) > offset + ARRAY_PAGE
    if offset:
        for key in list(settings):
            if key not in PAGED_ARRAYS:
                settings.pop(key)
    if more:
        doc["has_more"] = True
        doc["next_page_token"] = _token({"o": offset + ARRAY_PAGE})
    return doc


def _token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _untoken(token: str) -> dict:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raise invalid(f"Invalid page token: {token}") from None


# -- jobs handlers ----------------------------------------------------------------------------------
@routes.post(*_paths("create"))
def create(ws: Workspace, req: Request) -> dict:
    body = dict(req.json)
    acl = body.pop("access_control_list", None)
    if _version(req) == "2.0":
        body = _from_v20(body)
    return {"job_id": create_job(ws, body, access_control_list=acl)}


@routes.get(*_paths("get"))
def get(ws: Workspace, req: Request) -> dict:
    job = _job(ws, req.require("job_id"))
    version = _version(req)
    doc = _job_document(ws, job, version, include_run_as=True)
    if version == "2.2":
        token = req.arg("page_token")
        doc = _page_arrays(doc, _untoken(token)["o"] if token else 0)
    return doc


@routes.get(*_paths("list"))
def list_jobs(ws: Workspace, req: Request) -> dict:
    limit = req.int_arg("limit", 20)
    if limit is None or not 1 <= limit <= 100:
        raise invalid(f"Invalid limit: {limit}. The limit must be between 1 and 100.")
    token = req.arg("page_token")
    offset = _untoken(token)["o"] if token else (req.int_arg("offset", 0) or 0)
    if offset < 0:
        raise invalid("offset must be non-negative")
    jobs = sorted(ws.table("jobs").values(), key=lambda j: (j["created_time"], j["job_id"]), reverse=True)
    name = req.arg("name")
    if name:
        jobs = [j for j in jobs if j["settings"].get("name", "").lower() == name.lower()]
    page = jobs[offset : offset + limit]
    version = _version(req)
    expand = req.bool_arg("expand_tasks")
    out = []
    for job in page:
        doc = _job_document(ws, job, version, include_run_as=False)
        if not expand:
            for field in LIST_OMITS:
                doc["settings"].pop(field, None)
        elif version == "2.2":
            doc = _page_arrays(doc, 0)
            doc.pop("next_page_token", None)
        out.append(doc)
    result: dict[str, Any] = {"has_more": offset + limit < len(jobs)}
    if out:
        result["jobs"] = out
    if result["has_more"]:
        result["next_page_token"] = _token({"o": offset + limit})
    if offset > 0:
        result["prev_page_token"] = _token({"o": max(0, offset - limit)})
    return result


@routes.post(*_paths("reset"))
def reset(ws: Workspace, req: Request) -> dict:
    job = _job(ws, req.require("job_id"))
    new_settings = req.json.get("new_settings")
    if new_settings is None:
        raise invalid("new_settings is required")
    _check_settings_shape(new_settings)
    if _version(req) == "2.0":
        new_settings = _from_v20(new_settings)
    _validate(ws, new_settings)
    job["settings"] = _with_defaults(new_settings)
    return {}


def _merge_by_key(current: list, updates: list, key: str) -> list:
    """Entries of `updates` replace those with the same key; new keys are appended."""
    if any(not isinstance(item, dict) or not item.get(key) for item in updates):
        raise invalid(f"Every entry must set {key}")
    merged = {item[key]: item for item in current}
    for item in updates:
        merged[item[key]] = item
    return list(merged.values())


@routes.post(*_paths("update"))
def update(ws: Workspace, req: Request) -> dict:
    """Partial update: top-level fields replace, keyed arrays merge by key, then fields_to_remove."""
    job = _job(ws, req.require("job_id"))
    settings = copy.deepcopy(job["settings"])
    new_settings = req.json.get("new_settings") or {}
    fields_to_remove = req.json.get("fields_to_remove") or []
    _check_settings_shape(new_settings)
    if not isinstance(fields_to_remove, list) or not all(isinstance(f, str) for f in fields_to_remove):
        raise malformed_field("fields_to_remove", list)
    if _version(req) == "2.0":
        new_settings = _from_v20(new_settings)
    for field, value in new_settings.items():
        if value is None:
            continue
        if field in ARRAY_KEYS and isinstance(value, list):
            settings[field] = _merge_by_key(settings.get(field) or [], value, ARRAY_KEYS[field])
        else:
            settings[field] = value
    for field in fields_to_remove:
        array, _, key = field.partition("/")
        if key and array in ARRAY_KEYS:
            settings[array] = [item for item in settings.get(array) or [] if item.get(ARRAY_KEYS[array]) != key]
        elif key:
            raise invalid(f"Invalid field in fields_to_remove: {field}")
        else:
            settings.pop(field, None)
    if any(new_settings.get(f) is not None for f in TRIGGER_FIELDS):
        for field in TRIGGER_FIELDS:
            if field not in new_settings:
                settings.pop(field, None)
    _validate(ws, settings)
    job["settings"] = _with_defaults(settings)
    return {}


@routes.post(*_paths("delete"))
def delete(ws: Workspace, req: Request) -> dict:
    job = _job(ws, req.require("job_id"))
    ws.table("jobs").pop(str(job["job_id"]))
    permissions.forget(ws, "jobs", str(job["job_id"]))
    for run_id in [r for r, run in ws.table("runs").items() if run["job_id"] == job["job_id"]]:
        ws.table("runs").pop(run_id)
    return {}


# -- runs -------------------------------------------------------------------------------------------
def _run_state(ws: Workspace, run: dict) -> dict:
    """life_cycle_state and result_state derived from the run's timestamps."""
    if run.get("ended_state"):
        return dict(run["ended_state"])
    elapsed = (ws.now_ms() - run["start_time"]) / 1000.0
    if elapsed < RUN_PENDING_SECONDS:
        return {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}
    if elapsed < RUN_DURATION_SECONDS:
        return {"life_cycle_state": "RUNNING", "state_message": "In run"}
    return {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}


def _is_active(ws: Workspace, run: dict) -> bool:
    return _run_state(ws, run)["life_cycle_state"] in ("QUEUED", "PENDING", "RUNNING", "TERMINATING")


def start_run(
    ws: Workspace,
    job_id: int,
    trigger: str = "ONE_TIME",
    params: dict | None = None,
    overriding: dict | None = None,
) -> dict:
    """Start a run of a job (run-now or a scheduled trigger); SKIPPED past max_concurrent_runs.

    `params` are job parameter values by name; `overriding` holds run-now's legacy task parameters
    (notebook_params, python_params, ...), echoed back as the run's `overriding_parameters`.
    """
    job = _job(ws, job_id)
    settings = job["settings"]
    active = [r for r in ws.table("runs").values() if r["job_id"] == job["job_id"] and _is_active(ws, r)]
    run_id = ws.next_id("run_id", start=(ws.workspace_id % 900 + 100) * 10**12 + 500000000001)
    number = ws.next_id(f"run_number:{job['job_id']}")
    run = {
        "run_id": run_id,
        "job_id": job["job_id"],
        "number_in_job": number,
        "run_name": settings.get("name", "Untitled"),
        "creator_user_name": ws.admin_user,
        "start_time": ws.now_ms(),
        "trigger": trigger,
        "run_type": "JOB_RUN",
        "format": "MULTI_TASK",
        "tasks": [{"task_key": t["task_key"]} for t in settings.get("tasks") or []],
    }
    job_parameters = _job_parameters(settings, params or {})
    if job_parameters:
        run["job_parameters"] = job_parameters
    if overriding:
        run["overriding_parameters"] = overriding
    if len(active) >= int(settings.get("max_concurrent_runs", 1)):
        run["ended_state"] = {
            "life_cycle_state": "SKIPPED",
            "state_message": "Skipped: the maximum number of concurrent runs has been reached.",
        }
        run["end_time"] = run["start_time"]
    ws.table("runs")[str(run_id)] = run
    return run


def _job_parameters(settings: dict, values: dict) -> list[dict]:
    """A run's job_parameters: every parameter the job defines with its value, then extra ones."""
    out = []
    for definition in settings.get("parameters") or []:
        name = definition.get("name")
        entry = {"name": name, "default": definition.get("default", "")}
        entry["value"] = str(values[name]) if name in values else entry["default"]
        out.append(entry)
    defined = {p["name"] for p in out}
    out += [{"name": k, "value": str(v)} for k, v in values.items() if k not in defined]
    return out


_TERMINATION = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "CANCELED": ("CANCELED", "CLIENT_ERROR"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
}


def _run_status(state: dict) -> dict:
    """The newer `status` object, derived from life_cycle_state / result_state."""
    life_cycle = state["life_cycle_state"]
    if life_cycle == "SKIPPED":
        return {
            "state": "TERMINATED",
            "termination_details": {
                "code": "SKIPPED",
                "type": "SUCCESS",
                "message": state.get("state_message", ""),
            },
        }
    if life_cycle not in ("TERMINATED", "INTERNAL_ERROR"):
        return {"state": life_cycle}
    code, kind = _TERMINATION.get(state.get("result_state", ""), ("INTERNAL_ERROR", "INTERNAL_ERROR"))
    return {
        "state": "TERMINATED",
        "termination_details": {"code": code, "type": kind, "message": state.get("state_message", "")},
    }


def _run_document(ws: Workspace, run: dict) -> dict:
    doc = {k: v for k, v in run.items() if k not in ("ended_state",)}
    state = _run_state(ws, run)
    doc["state"] = state
    doc["status"] = _run_status(state)
    if state["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR") and "end_time" not in doc:
        doc["end_time"] = run["start_time"] + int(RUN_DURATION_SECONDS * 1000)
    doc["run_page_url"] = f"#job/{run['job_id']}/run/{run['run_id']}"
    return doc


_OVERRIDING = (
    "notebook_params",
    "python_params",
    "jar_params",
    "spark_submit_params",
    "python_named_params",
    "sql_params",
    "dbt_commands",
    "pipeline_params",
)


@routes.post(*_paths("run-now"))
def run_now(ws: Workspace, req: Request) -> dict:
    """Start a run; a repeated idempotency_token answers the run it started before."""
    body = req.json
    job = _job(ws, req.require("job_id"))
    token = body.get("idempotency_token")
    if token:
        if len(str(token)) > 64:
            raise invalid("idempotency_token must be at most 64 characters")
        earlier = ws.table("run_idempotency").get(str(token))
        if earlier is not None and str(earlier) in ws.table("runs"):
            run = ws.table("runs")[str(earlier)]
            return {"run_id": run["run_id"], "number_in_job": run["number_in_job"]}
    overriding = {k: body[k] for k in _OVERRIDING if body.get(k)}
    if not isinstance(body.get("job_parameters") or {}, dict):
        raise malformed_field("job_parameters", dict)
    run = start_run(ws, job["job_id"], params=body.get("job_parameters") or {}, overriding=overriding)
    if token:
        ws.table("run_idempotency")[str(token)] = run["run_id"]
    return {"run_id": run["run_id"], "number_in_job": run["number_in_job"]}


def _run(ws: Workspace, run_id: Any) -> dict:
    run = ws.table("runs").get(str(run_id))
    if run is None:
        raise invalid(f"Run {run_id} does not exist.")
    return run


@routes.get(*_paths("runs/get"))
def runs_get(ws: Workspace, req: Request) -> dict:
    return _run_document(ws, _run(ws, req.require("run_id")))


@routes.get(*_paths("runs/list"))
def runs_list(ws: Workspace, req: Request) -> dict:
    limit = req.int_arg("limit", 20)
    if limit is None or not 1 <= limit <= 25:
        raise invalid(f"Invalid limit: {limit}. The limit must be between 1 and 25.")
    active_only = req.bool_arg("active_only")
    completed_only = req.bool_arg("completed_only")
    if active_only and completed_only:
        raise invalid("active_only and completed_only cannot both be true")
    job_id = req.int_arg("job_id")
    runs = sorted(ws.table("runs").values(), key=lambda r: r["run_id"], reverse=True)
    if job_id is not None:
        runs = [r for r in runs if r["job_id"] == job_id]
    if active_only:
        runs = [r for r in runs if _is_active(ws, r)]
    if completed_only:
        runs = [r for r in runs if not _is_active(ws, r)]
    token = req.arg("page_token")
    offset = _untoken(token)["o"] if token else (req.int_arg("offset", 0) or 0)
    page = runs[offset : offset + limit]
    result: dict[str, Any] = {"has_more": offset + limit < len(runs)}
    if page:
        result["runs"] = [_run_document(ws, r) for r in page]
    if result["has_more"]:
        result["next_page_token"] = _token({"o": offset + limit})
    if offset:
        result["prev_page_token"] = _token({"o": max(0, offset - limit)})
    return result


def cancel_run(ws: Workspace, run: dict) -> None:
    if _is_active(ws, run):
        run["ended_state"] = {
            "life_cycle_state": "TERMINATED",
            "result_state": "CANCELED",
            "state_message": "Run cancelled.",
        }
        run["end_time"] = ws.now_ms()


@routes.post(*_paths("runs/cancel"))
def runs_cancel(ws: Workspace, req: Request) -> dict:
    cancel_run(ws, _run(ws, req.require("run_id")))
    return {}


@routes.post(*_paths("runs/cancel-all"))
def runs_cancel_all(ws: Workspace, req: Request) -> dict:
    job_id = req.json.get("job_id")
    if job_id is not None:
        _job(ws, job_id)
    for run in list(ws.table("runs").values()):
        if job_id is None or run["job_id"] == int(job_id):
            cancel_run(ws, run)
    return {}


@routes.post(*_paths("runs/delete"))
def runs_delete(ws: Workspace, req: Request) -> dict:
    run = _run(ws, req.require("run_id"))
    if _is_active(ws, run):
        raise ApiError(400, "INVALID_STATE", f"Run {run['run_id']} is active and cannot be deleted.")
    ws.table("runs").pop(str(run["run_id"]))
    return {}


def _job_exists(ws: Workspace, job_id: str) -> bool:
    return job_id in ws.table("jobs")


permissions.register(
    "jobs",
    "job",
    ("CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"),
    _job_exists,
    owner_level="IS_OWNER",
)
