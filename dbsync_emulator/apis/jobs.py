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

from dbsync_emulator.apis import permissions
from dbsync_emulator.errors import ApiError, invalid
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

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
# Without a cluster these run on serverless compute, in an environment of the job's `environments`
# (sdk jobs.Task.environment_key: "required for Python script, Python wheel and dbt tasks"; JAR tasks
# take their java_dependencies from one too); a notebook needs none. spark-submit has no serverless form.
NEEDS_ENVIRONMENT = ("spark_python_task", "python_wheel_task", "dbt_task", "spark_jar_task")
CLUSTER_ONLY = ("spark_submit_task",)
PERFORMANCE_TARGETS = ("STANDARD", "PERFORMANCE_OPTIMIZED", "COST_OPTIMIZED")
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
    from dbsync_emulator.apis import clusters  # clusters registers after jobs; import when first needed

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
    env_keys = _environment_keys(settings.get("environments") or [])
    keys = [t.get("task_key") for t in tasks]
    if None in keys or "" in keys:
        raise invalid("Task key must be specified for every task")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise invalid(f"Task key {duplicates[0]} is duplicated. Task keys must be unique.")
    for task in tasks:
        _validate_task(ws, task, set(keys), set(job_cluster_keys), env_keys)


def _environment_keys(environments: list[dict]) -> set[str]:
    """The job's environment keys, each set and unique (sdk jobs.JobEnvironment: "unique within a job")."""
    keys = [e.get("environment_key") for e in environments]
    if None in keys or "" in keys:
        raise invalid("environment_key must be set for every entry of environments")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise invalid(f"Environment key {duplicates[0]} is duplicated. Environment keys must be unique.")
    return set(keys)


def _validate_serverless(task: dict, kind: str) -> None:
    """A task without a cluster runs on serverless compute: what the service requires of it."""
    key = task["task_key"]
    if kind in CLUSTER_ONLY:
        raise invalid(
            f"Task {key}: {kind} is not supported on serverless compute; "
            "set existing_cluster_id, new_cluster or job_cluster_key"
        )
    if kind in NEEDS_ENVIRONMENT and not task.get("environment_key"):
        # databricks-sdk-py#1228 quotes this message up to the documentation host.
        raise invalid(
            f"An environment is required for serverless task {key}. Please define one using `environments` and "
            "`environment_key`. For more details, please refer to the API documentation at "
            "https://docs.databricks.com/api/workspace/jobs/create"
        )
    if task.get("libraries"):
        raise invalid(
            f"Libraries field is not supported for serverless task {key}, please specify libraries in environment."
        )


def _validate_task(ws: Workspace, task: dict, keys: set, job_cluster_keys: set, env_keys: set) -> None:
    key = task["task_key"]
    kinds = [t for t in TASK_TYPES if t in task]
    if len(kinds) != 1:
        raise invalid(f"Task {key} must specify exactly one task type")
    compute = [c for c in COMPUTE_FIELDS if task.get(c)]
    if len(compute) > 1:
        raise invalid(f"Task {key} can specify only one of {', '.join(COMPUTE_FIELDS)}")
    if compute in ([], ["environment_key"]) and kinds[0] not in COMPUTELESS:
        _validate_serverless(task, kinds[0])
    cluster_id = task.get("existing_cluster_id")
    if cluster_id and not _cluster_exists(ws, cluster_id):
        raise invalid(f"Cluster {cluster_id} does not exist")
    if task.get("job_cluster_key") and task["job_cluster_key"] not in job_cluster_keys:
        raise invalid(f"Task {key} refers to job cluster {task['job_cluster_key']} that is not defined")
    if task.get("environment_key") and task["environment_key"] not in env_keys:
        # dbt-databricks#1055 quotes the service's message.
        raise invalid(
            f"Job environment '{task['environment_key']}' used by task {key} is not defined in field 'environments'."
        )
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
    target = settings.get("performance_target")
    if target is not None and target not in PERFORMANCE_TARGETS:
        raise invalid(f"Invalid performance_target: {target}. Valid values: {', '.join(PERFORMANCE_TARGETS)}")
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
    ws: Workspace,
    settings: dict,
    creator: str | None = None,
    access_control_list: list | None = None,
    single_task: bool = False,
) -> int:
    """Validate and store a job; the creator becomes its IS_OWNER unless the ACL names another owner.

    `single_task`: created with a flat 2.0 body, so API 2.0 shows it flat (format SINGLE_TASK).
    """
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
        "format": "SINGLE_TASK" if single_task else "MULTI_TASK",
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
        "settings": _to_v20(settings) if version == "2.0" and job.get("format") == "SINGLE_TASK" else settings,
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
    single = body.get("format") == "SINGLE_TASK" and _version(req) == "2.0"
    return {"job_id": create_job(ws, body, access_control_list=acl, single_task=single)}


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
    version = _version(req)
    token = req.arg("page_token")
    # 2.0 without paging parameters lists every job (databrickslabs/migrate's JobsClient relies on it).
    unpaged = version == "2.0" and not token and req.arg("limit") is None and req.arg("offset") is None
    limit = req.int_arg("limit", 20)
    if limit is None or not 1 <= limit <= 100:
        raise invalid(f"Invalid limit: {limit}. The limit must be between 1 and 100.")
    offset = _untoken(token)["o"] if token else (req.int_arg("offset", 0) or 0)
    if offset < 0:
        raise invalid("offset must be non-negative")
    if not token and offset > JOBS_OFFSET_LIMIT:
        raise _offset_refused(offset, JOBS_OFFSET_LIMIT, "list")
    jobs = sorted(ws.table("jobs").values(), key=lambda j: (j["created_time"], j["job_id"]), reverse=True)
    if unpaged:
        limit = max(len(jobs), 1)
    name = req.arg("name")
    if name:
        jobs = [j for j in jobs if j["settings"].get("name", "").lower() == name.lower()]
    page = jobs[offset : offset + limit]
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
    single = _version(req) == "2.0" and new_settings.get("format") == "SINGLE_TASK"
    job["format"] = "SINGLE_TASK" if single else "MULTI_TASK"
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
    if _version(req) != "2.0" and new_settings.get("tasks"):
        job["format"] = "MULTI_TASK"
    return {}


@routes.post(*_paths("delete"))
def delete(ws: Workspace, req: Request) -> dict:
    job = _job(ws, req.require("job_id"))
    ws.table("jobs").pop(str(job["job_id"]))
    permissions.forget(ws, "jobs", str(job["job_id"]))
    for run in [run for run in ws.table("runs").values() if run["job_id"] == job["job_id"]]:
        _forget_run(ws, run)
    return {}


# -- runs -------------------------------------------------------------------------------------------
# A run is a record in "runs" with one task run per task (each its own run_id, indexed in "task_runs").
# Task runs are planned when the run starts (start and end times from the workspace's timing profile,
# a task starting when its depends_on end); states are derived from those times when read.
ACTIVE = ("QUEUED", "PENDING", "BLOCKED", "RUNNING", "TERMINATING", "WAITING_FOR_RETRY")
SUCCESS = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}
CANCELED = {"life_cycle_state": "TERMINATED", "result_state": "CANCELED", "state_message": "Run cancelled."}
UPSTREAM_CANCELED = {
    "life_cycle_state": "TERMINATED",
    "result_state": "UPSTREAM_CANCELED",
    "state_message": "An upstream task was cancelled.",
}
# Task fields a task run repeats from the task settings.
TASK_RUN_FIELDS = (
    *TASK_TYPES,
    "description",
    "depends_on",
    "run_if",
    "existing_cluster_id",
    "new_cluster",
    "job_cluster_key",
    "environment_key",
    "libraries",
    "timeout_seconds",
)
JOBS_OFFSET_LIMIT = 1000  # jobs/list: terraform-provider-databricks#2807
RUNS_OFFSET_LIMIT = 10000  # runs/list: databricks-sdk-py#278


def _offset_refused(offset: int, allowed: int, page: str) -> ApiError:
    return invalid(
        f"The supplied offset {offset} has exceeded the value of {allowed} allowed for this parameter."
        f"Please use the page_token parameter to paginate: https://docs.databricks.com/api/workspace/jobs/{page}."
    )


def _compute_kind(tasks: list[dict]) -> str:
    """What a run waits for before its first task: a job cluster, an existing cluster or serverless."""
    if any(t.get("job_cluster_key") or t.get("new_cluster") for t in tasks):
        return "job_cluster"
    return "existing" if any(t.get("existing_cluster_id") for t in tasks) else "serverless"


def _levels(tasks: list[dict]) -> dict[str, int]:
    """Dependency level of each task (1 = depends on nothing among `tasks`)."""
    keys = {t["task_key"] for t in tasks}
    deps = {
        t["task_key"]: [d.get("task_key") for d in t.get("depends_on") or [] if d.get("task_key") in keys]
        for t in tasks
    }
    levels: dict[str, int] = {}
    for _ in range(len(tasks)):
        for key, needs in deps.items():
            if key not in levels and all(n in levels for n in needs):
                levels[key] = 1 + max((levels[n] for n in needs), default=0)
    return {key: levels.get(key, len(tasks)) for key in deps}  # a cycle (not validated) runs last


def _plan_task_runs(ws: Workspace, tasks: list[dict], begin_ms: int, attempts: dict[str, int]) -> list[dict]:
    """Task runs for `tasks`, in their order: each starts at begin_ms or when its dependencies end."""
    levels = _levels(tasks)
    depth = max(levels.values(), default=1)
    ends: dict[str, int] = {}
    planned: dict[str, dict] = {}
    for task in sorted(tasks, key=lambda t: levels[t["task_key"]]):
        key = task["task_key"]
        start = max(
            (ends[d["task_key"]] for d in task.get("depends_on") or [] if d.get("task_key") in ends), default=begin_ms
        )
        ends[key] = start + int(ws.timing.task_seconds(depth, ws.draw("task")) * 1000)
        planned[key] = {
            **{f: copy.deepcopy(task[f]) for f in TASK_RUN_FIELDS if f in task},
            "task_key": key,
            "run_id": _new_run_id(ws),
            "attempt_number": attempts.get(key, 0),
            "_start": start,
            "_end": ends[key],
            "_upstream": start > begin_ms,  # BLOCKED on its dependencies, not waiting for compute
        }
    return [planned[t["task_key"]] for t in tasks]


def _new_run_id(ws: Workspace) -> int:
    return ws.next_id("run_id", start=(ws.workspace_id % 900 + 100) * 10**12 + 500000000001)


def _task_state(ws: Workspace, task_run: dict) -> dict:
    if task_run.get("ended_state"):
        return dict(task_run["ended_state"])
    if "_end" not in task_run:  # a run saved by an emulator that did not plan task runs: long finished
        return dict(SUCCESS)
    now = ws.now_ms()
    if now < task_run["_start"]:
        if task_run.get("_upstream"):
            return {"life_cycle_state": "BLOCKED", "state_message": "Waiting for upstream tasks"}
        return {"life_cycle_state": "PENDING", "state_message": "Waiting for compute"}
    if now < task_run["_end"]:
        return {"life_cycle_state": "RUNNING", "state_message": "In run"}
    return dict(SUCCESS)


def _run_state(ws: Workspace, run: dict) -> dict:
    """The run's life_cycle_state / result_state, from its own end (skip, cancel) or its task runs'."""
    if run.get("ended_state"):
        return dict(run["ended_state"])
    states = [_task_state(ws, t) for t in run["tasks"]]
    if any(s["life_cycle_state"] in ACTIVE for s in states):
        started = any(s["life_cycle_state"] not in ("PENDING", "BLOCKED") for s in states)
        if started:
            return {"life_cycle_state": "RUNNING", "state_message": "In run"}
        return {"life_cycle_state": "PENDING", "state_message": "Waiting for compute"}
    results = {s.get("result_state") for s in states}
    if results <= {"SUCCESS"}:
        return dict(SUCCESS)
    if results & {"CANCELED", "UPSTREAM_CANCELED"}:
        return dict(CANCELED)
    return {"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": "Some tasks failed."}


def _is_active(ws: Workspace, run: dict) -> bool:
    return _run_state(ws, run)["life_cycle_state"] in ACTIVE


def _record_run(ws: Workspace, run: dict, tasks: list[dict], compute_kind: str) -> dict:
    """Plan the task runs of a new run, store it and index its task runs."""
    ordinal = ws.draw("run")
    pending = ws.timing.run_pending_seconds(compute_kind, ordinal)
    run["tasks"] = _plan_task_runs(ws, tasks, run["start_time"] + int(pending * 1000), {})
    ws.table("runs")[str(run["run_id"])] = run
    for task_run in run["tasks"]:
        ws.table("task_runs")[str(task_run["run_id"])] = run["run_id"]
    return run


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
    run: dict[str, Any] = {
        "run_id": _new_run_id(ws),
        "job_id": job["job_id"],
        "number_in_job": ws.next_id(f"run_number:{job['job_id']}"),
        "run_name": settings.get("name", "Untitled"),
        "creator_user_name": ws.admin_user,
        "start_time": ws.now_ms(),
        "trigger": trigger,
        "run_type": "JOB_RUN",
        "format": "MULTI_TASK",
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
    tasks = settings.get("tasks") or []
    _record_run(ws, run, tasks, _compute_kind(tasks))
    if run.get("ended_state"):  # a skipped run's tasks never start
        for task_run in run["tasks"]:
            task_run["ended_state"], task_run["end_time"] = dict(run["ended_state"]), run["start_time"]
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
    "UPSTREAM_CANCELED": ("CANCELED", "CLIENT_ERROR"),
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
        return {"state": "WAITING" if life_cycle == "WAITING_FOR_RETRY" else life_cycle}
    code, kind = _TERMINATION.get(state.get("result_state", ""), ("INTERNAL_ERROR", "INTERNAL_ERROR"))
    return {
        "state": "TERMINATED",
        "termination_details": {"code": code, "type": kind, "message": state.get("state_message", "")},
    }


def _page_url(ws: Workspace, req: Request, job_id: int, run_id: int) -> str:
    """The run's page in the workspace UI, a full URL as the service gives it (host of the request)."""
    host = req.headers.get("host") or "127.0.0.1"
    return f"http://{host}/?o={ws.workspace_id}#job/{job_id}/run/{run_id}"


def _task_run_document(ws: Workspace, req: Request, run: dict, task_run: dict) -> dict:
    doc = {k: v for k, v in task_run.items() if not k.startswith("_") and k != "ended_state"}
    state = _task_state(ws, task_run)
    doc["state"], doc["status"] = state, _run_status(state)
    doc["run_page_url"] = _page_url(ws, req, run["job_id"], task_run.get("run_id", run["run_id"]))
    if state["life_cycle_state"] not in ("PENDING", "BLOCKED"):
        doc["start_time"] = task_run.get("_start", run["start_time"])
    if state["life_cycle_state"] not in ACTIVE:
        doc["end_time"] = task_run.get("end_time", task_run.get("_end", run["start_time"]))
    return doc


def _run_document(ws: Workspace, req: Request, run: dict, expand_tasks: bool = True) -> dict:
    doc = {k: v for k, v in run.items() if k not in ("ended_state", "tasks", "repair_history") and k[0] != "_"}
    state = _run_state(ws, run)
    doc["state"], doc["status"] = state, _run_status(state)
    task_docs = [_task_run_document(ws, req, run, t) for t in run["tasks"]]
    if state["life_cycle_state"] not in ACTIVE and "end_time" not in doc:
        doc["end_time"] = max((t.get("end_time", 0) for t in task_docs), default=run["start_time"])
    doc["run_page_url"] = _page_url(ws, req, run["job_id"], run["run_id"])
    if expand_tasks:
        doc["tasks"] = task_docs
    if run.get("repair_history"):
        doc["repair_history"] = [_repair_item(ws, run, item) for item in run["repair_history"]]
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


def _earlier_run(ws: Workspace, token: Any) -> dict | None:
    """The run an idempotency_token started before, if any (tokens are at most 64 characters)."""
    if not token:
        return None
    if len(str(token)) > 64:
        raise invalid("idempotency_token must be at most 64 characters")
    earlier = ws.table("run_idempotency").get(str(token))
    return ws.table("runs").get(str(earlier)) if earlier is not None else None


@routes.post(*_paths("run-now"))
def run_now(ws: Workspace, req: Request) -> dict:
    """Start a run; a repeated idempotency_token answers the run it started before."""
    body = req.json
    job = _job(ws, req.require("job_id"))
    token = body.get("idempotency_token")
    earlier = _earlier_run(ws, token)
    if earlier is not None:
        return {"run_id": earlier["run_id"], "number_in_job": earlier["number_in_job"]}
    overriding = {k: body[k] for k in _OVERRIDING if body.get(k)}
    if not isinstance(body.get("job_parameters") or {}, dict):
        raise malformed_field("job_parameters", dict)
    run = start_run(ws, job["job_id"], params=body.get("job_parameters") or {}, overriding=overriding)
    if token:
        ws.table("run_idempotency")[str(token)] = run["run_id"]
    return {"run_id": run["run_id"], "number_in_job": run["number_in_job"]}


@routes.post(*_paths("runs/submit"))
def runs_submit(ws: Workspace, req: Request) -> dict:
    """A one-time run (SUBMIT_RUN) of the tasks sent; it belongs to no job that jobs/list shows."""
    body = dict(req.json)
    earlier = _earlier_run(ws, body.get("idempotency_token"))
    if earlier is not None:
        return {"run_id": earlier["run_id"]}
    body.pop("access_control_list", None)
    if _version(req) == "2.0":  # a flat 2.0 body: its one task is named after the run
        body = _from_v20({**body, "name": body.get("run_name")})
    _check_settings_shape(body)
    if body.get("job_clusters"):
        raise invalid("job_clusters are not supported in runs/submit: give each task its new_cluster")
    _validate_tasks(ws, body)
    if not body.get("tasks"):
        raise invalid("At least one task is required")
    now = ws.now_ms()
    # One-time runs carry the id of a job nobody can see (databricks-sdk-py#375 shows one).
    hidden_job = ws.next_id("job_id", start=(ws.workspace_id % 900 + 100) * 10**12 + 1)
    run = {
        "run_id": _new_run_id(ws),
        "job_id": hidden_job,
        "number_in_job": 1,
        "run_name": body.get("run_name") or "Untitled",
        "creator_user_name": ws.admin_user,
        "start_time": now,
        "trigger": "ONE_TIME",
        "run_type": "SUBMIT_RUN",
        "format": "MULTI_TASK",
    }
    tasks = [dict(t, run_if=t.get("run_if", "ALL_SUCCESS")) for t in body["tasks"]]
    _record_run(ws, run, tasks, _compute_kind(tasks))
    if body.get("idempotency_token"):
        ws.table("run_idempotency")[str(body["idempotency_token"])] = run["run_id"]
    return {"run_id": run["run_id"]}


def _run(ws: Workspace, run_id: Any) -> dict:
    run = ws.table("runs").get(str(run_id))
    if run is None:
        raise invalid(f"Run {run_id} does not exist.")
    return run


def _task_run(ws: Workspace, run_id: Any) -> tuple[dict, dict] | None:
    """(parent run, task run) when `run_id` names a task run."""
    parent = ws.table("task_runs").get(str(run_id))
    run = ws.table("runs").get(str(parent)) if parent is not None else None
    if run is None:
        return None
    # Attempts a repair superseded stay readable by their run_id.
    attempts = [*run["tasks"], *run.get("_attempts", [])]
    return run, next(t for t in attempts if str(t.get("run_id")) == str(run_id))


def _task_run_as_run(ws: Workspace, req: Request, run: dict, task_run: dict) -> dict:
    """A task run answered as a run of its own (runs/get and get-output metadata of a task run id)."""
    doc = _task_run_document(ws, req, run, task_run)
    doc.update({"job_id": run["job_id"], "run_type": run["run_type"], "run_name": task_run["task_key"]})
    doc["creator_user_name"] = run["creator_user_name"]
    doc.setdefault("start_time", run["start_time"])
    return doc


@routes.get(*_paths("runs/get"))
def runs_get(ws: Workspace, req: Request) -> dict:
    run_id = req.require("run_id")
    found = _task_run(ws, run_id)
    if found is not None:
        return _task_run_as_run(ws, req, *found)
    return _run_document(ws, req, _run(ws, run_id))


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
    run_type = req.arg("run_type")
    runs = sorted(ws.table("runs").values(), key=lambda r: r["run_id"], reverse=True)
    if job_id is not None:
        runs = [r for r in runs if r["job_id"] == job_id]
    if run_type:
        runs = [r for r in runs if r["run_type"] == run_type]
    if active_only:
        runs = [r for r in runs if _is_active(ws, r)]
    if completed_only:
        runs = [r for r in runs if not _is_active(ws, r)]
    token = req.arg("page_token")
    offset = _untoken(token)["o"] if token else (req.int_arg("offset", 0) or 0)
    if not token and offset > RUNS_OFFSET_LIMIT:
        raise _offset_refused(offset, RUNS_OFFSET_LIMIT, "listruns")
    page = runs[offset : offset + limit]
    result: dict[str, Any] = {"has_more": offset + limit < len(runs)}
    expand = req.bool_arg("expand_tasks")
    if page:
        result["runs"] = [_run_document(ws, req, r, expand_tasks=expand) for r in page]
    if result["has_more"]:
        result["next_page_token"] = _token({"o": offset + limit})
    if offset:
        result["prev_page_token"] = _token({"o": max(0, offset - limit)})
    return result


def cancel_run(ws: Workspace, run: dict) -> None:
    """Cancel the active task runs (those not started end UPSTREAM_CANCELED) and so the run."""
    if not _is_active(ws, run):
        return
    now = ws.now_ms()
    for task_run in run["tasks"]:
        life_cycle = _task_state(ws, task_run)["life_cycle_state"]
        if life_cycle not in ACTIVE:
            continue
        task_run["ended_state"] = dict(CANCELED if life_cycle == "RUNNING" else UPSTREAM_CANCELED)
        task_run["end_time"] = now
    run["ended_state"] = dict(CANCELED)
    run["end_time"] = now


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
    _forget_run(ws, run)
    return {}


def _forget_run(ws: Workspace, run: dict) -> None:
    ws.table("runs").pop(str(run["run_id"]), None)
    for item in run.get("repair_history") or []:
        for task_run_id in item.get("task_run_ids") or []:
            ws.table("task_runs").pop(str(task_run_id), None)
    for task_run in [*run["tasks"], *run.get("_attempts", [])]:
        ws.table("task_runs").pop(str(task_run.get("run_id")), None)


# -- repair, output, export -------------------------------------------------------------------------
def _repair_item(ws: Workspace, run: dict, item: dict) -> dict:
    """A repair_history entry; a REPAIR's state is its task runs' while they are the run's latest."""
    doc = dict(item)
    if item["type"] == "REPAIR":
        latest = [t for t in run["tasks"] if t["run_id"] in item["task_run_ids"]]
        state = _run_state(ws, {"tasks": latest}) if latest else dict(SUCCESS)
        doc["state"], doc["status"] = state, _run_status(state)
    return doc


def _tasks_to_rerun(ws: Workspace, run: dict, body: dict) -> list[str]:
    keys = [t["task_key"] for t in run["tasks"]]
    if body.get("rerun_tasks"):
        unknown = [k for k in body["rerun_tasks"] if k not in keys]
        if unknown:
            raise invalid(f"Task {unknown[0]} does not exist in run {run['run_id']}.")
        wanted = set(body["rerun_tasks"])
    elif body.get("rerun_all_failed_tasks"):
        wanted = {t["task_key"] for t in run["tasks"] if _task_state(ws, t).get("result_state") != "SUCCESS"}
    else:
        raise invalid("One of rerun_tasks or rerun_all_failed_tasks must be specified.")
    if body.get("rerun_dependent_tasks"):
        for _ in keys:
            wanted |= {
                t["task_key"] for t in run["tasks"] if {d.get("task_key") for d in t.get("depends_on") or []} & wanted
            }
    return [k for k in keys if k in wanted]


@routes.post(*_paths("runs/repair"))
def runs_repair(ws: Workspace, req: Request) -> dict:
    """Rerun tasks of a finished run as new task runs (attempt_number + 1); answers {repair_id}."""
    body = req.json
    run = _run(ws, req.require("run_id"))
    history = run.get("repair_history") or []
    latest = history[-1].get("id") if history else None
    if latest is not None and body.get("latest_repair_id") != latest:
        raise invalid(f"latest_repair_id must be {latest}, the id of the latest repair of run {run['run_id']}.")
    if _is_active(ws, run):
        raise invalid(f"Run {run['run_id']} is still active and cannot be repaired.")
    keys = _tasks_to_rerun(ws, run, body)
    if not keys:
        raise invalid(f"Run {run['run_id']} has no failed tasks to repair.")
    if not history:
        state = _run_state(ws, run)
        history = [
            {
                "type": "ORIGINAL",
                "start_time": run["start_time"],
                "end_time": run.get("end_time", ws.now_ms()),
                "state": state,
                "status": _run_status(state),
                "task_run_ids": [t["run_id"] for t in run["tasks"]],
            }
        ]
    now = ws.now_ms()
    rerun = [t for t in run["tasks"] if t["task_key"] in keys]
    attempts = {t["task_key"]: t["attempt_number"] + 1 for t in rerun}
    pending = ws.timing.run_pending_seconds(_compute_kind(rerun), ws.draw("run"))
    fresh = {t["task_key"]: t for t in _plan_task_runs(ws, rerun, now + int(pending * 1000), attempts)}
    run["_attempts"] = [*run.get("_attempts", []), *rerun]
    run["tasks"] = [fresh.get(t["task_key"], t) for t in run["tasks"]]
    for task_run in fresh.values():
        ws.table("task_runs")[str(task_run["run_id"])] = run["run_id"]
    repair_id = ws.next_id("repair_id", start=(ws.workspace_id % 900 + 100) * 10**12 + 700000000001)
    history.append(
        {"type": "REPAIR", "id": repair_id, "start_time": now, "task_run_ids": [t["run_id"] for t in fresh.values()]}
    )
    run["repair_history"] = history
    run.pop("ended_state", None)
    run.pop("end_time", None)
    return {"repair_id": repair_id}


_MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. "
    "Please retrieve the output of each individual task run instead."
)


def _output_task_run(ws: Workspace, req: Request, what: str) -> tuple[dict, dict]:
    """The task run get-output / export answer for; a job's run id is refused as the service does.

    2.0 still answers for a run of exactly one task (databricks-sdk-go#375 used it as the workaround).
    """
    run_id = req.require("run_id")
    found = _task_run(ws, run_id)
    if found is not None:
        return found
    run = _run(ws, run_id)
    if _version(req) == "2.0" and len(run["tasks"]) == 1:
        return run, run["tasks"][0]
    if what == "export":
        raise invalid(
            "Exporting runs with multiple tasks is not supported. Please export each individual task run instead."
        )
    raise invalid(_MULTI_TASK_OUTPUT)


@routes.get(*_paths("runs/get-output"))
def runs_get_output(ws: Workspace, req: Request) -> dict:
    """{metadata, notebook_output | error} of a task run."""
    run, task_run = _output_task_run(ws, req, "output")
    metadata = _task_run_as_run(ws, req, run, task_run)
    out: dict[str, Any] = {"metadata": metadata}
    state = metadata["state"]
    if state.get("result_state") not in (None, "SUCCESS"):
        out["error"] = state.get("state_message") or state["result_state"]
    elif "notebook_task" in task_run and state.get("result_state") == "SUCCESS":
        out["notebook_output"] = {}  # no dbutils.notebook.exit() value: the emulator runs no code
    return out


@routes.get(*_paths("runs/export"))
def runs_export(ws: Workspace, req: Request) -> dict:
    """{views: [...]}: a notebook task run's CODE view (ALL adds no dashboards: the emulator has none)."""
    views = req.arg("views_to_export", "CODE")
    if views not in ("CODE", "DASHBOARDS", "ALL"):
        raise invalid(f"Invalid views_to_export: {views}")
    _, task_run = _output_task_run(ws, req, "export")
    notebook = task_run.get("notebook_task")
    if notebook is None:
        raise invalid(f"Run {task_run['run_id']} is not a notebook task run: only notebook runs can be exported.")
    if views == "DASHBOARDS":
        return {}
    name = str(notebook.get("notebook_path", "")).rstrip("/").rsplit("/", 1)[-1]
    content = (
        f"<!DOCTYPE html><html><head><title>{name}</title></head><body><!-- run {task_run['run_id']} --></body></html>"
    )
    return {"views": [{"content": content, "name": name, "type": "NOTEBOOK"}]}


def _job_exists(ws: Workspace, job_id: str) -> bool:
    return job_id in ws.table("jobs")


permissions.register(
    "jobs",
    "job",
    ("CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"),
    _job_exists,
    owner_level="IS_OWNER",
)
