"""Jobs: `jobs/list?expand_tasks=true` carries full settings, 100 jobs per call.

The pause state of schedule / trigger / continuous is not part of the payload (a standby keeps every
job paused); it is kept in source_meta for cutover. Cluster, pool, policy, job and SQL warehouse
(`sql_task` / `dbt_task` / `notebook_task` `.warehouse_id`, when the sql_warehouses kind copies it) ids become Refs;
notebook paths under /Users/<email> and /Repos/<email> follow the email mapping; run_as follows the principal mapping.
Serverless jobs (tasks with no cluster, job-level `environments`) keep their environments, performance
target and budget policy; workspace paths in a Python script task and in environment dependencies
(`/Workspace/Users/<email>/...`, `/Workspace/Repos/<email>/...`, also after `-r ` / `-e `) follow the email mapping too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dbsync import planner
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import Permanent
from dbsync.model import Resource, is_ref, ref
from dbsync.runcache import CacheKey
from dbsync.tags import without_dbsync_tags
from dbsync.watchers.base import answers
from dbsync.watchers.clusters import normalize_cluster_spec
from dbsync.watchers.listed import ListedWatcher
from dbsync.workspace import Workspace

SOURCE_JOB_TAG = "dbsync_source_job_id"
TRIGGER_FIELDS = ("schedule", "trigger", "continuous")
# Task types that name the SQL warehouse they run on (`<task>.warehouse_id`).
WAREHOUSE_TASKS = ("sql_task", "dbt_task", "notebook_task")


def pause_states(settings: dict[str, Any]) -> dict[str, str]:
    """{"schedule": "UNPAUSED"} and the like, for the trigger fields a job has."""
    return {f: settings[f].get("pause_status", "UNPAUSED") for f in TRIGGER_FIELDS if settings.get(f) is not None}


def _warehouse_replicated(ctx: SyncContext, warehouse_id: str) -> bool:
    """A task's SQL warehouse becomes a Ref only when the sql_warehouses kind copies it; otherwise the id
    is written as it is (the job would wait forever on a Ref that never resolves)."""
    return _replicated(ctx, "sql_warehouses", warehouse_id)


def _replicated(ctx: SyncContext, kind: str, key: str) -> bool:
    """Whether `kind` copies the object `key`: only then does a reference to it become a Ref."""
    kind_settings = ctx.settings.kind(kind)
    return kind_settings.enabled and planner.selected(kind_settings, str(key))


def workspace_path(ctx: SyncContext, path: str) -> str:
    """A workspace path, `/Users/<email>/...` or `/Repos/<email>/...` (a notebook in a repo), also after
    `/Workspace`, after the email mapping."""
    return ctx.principals.path(path)


def _dependency(ctx: SyncContext, line: str) -> str:
    """One pip requirement line; a workspace path in it (a wheel, `-r requirements.txt`) follows the mapping."""
    option, space, rest = line.partition(" ")
    if space and option in ("-r", "-e", "--requirement", "--editable"):
        return f"{option} {workspace_path(ctx, rest.strip())}"
    return workspace_path(ctx, line)


def _normalize_environment(ctx: SyncContext, environment: dict[str, Any]) -> dict[str, Any]:
    spec = environment.get("spec") or {}
    for field in ("dependencies", "java_dependencies"):
        if spec.get(field):
            spec[field] = [_dependency(ctx, d) for d in spec[field]]
    return environment


def _normalize_task(ctx: SyncContext, task: dict[str, Any]) -> dict[str, Any]:
    if task.get("existing_cluster_id"):
        task["existing_cluster_id"] = ref("clusters", task["existing_cluster_id"])
    if task.get("new_cluster"):
        task["new_cluster"] = normalize_cluster_spec(ctx, task["new_cluster"])
    notebook = task.get("notebook_task")
    if notebook and notebook.get("source", "WORKSPACE") == "WORKSPACE" and notebook.get("notebook_path"):
        notebook["notebook_path"] = workspace_path(ctx, notebook["notebook_path"])
    python = task.get("spark_python_task")
    if python and python.get("source", "WORKSPACE") == "WORKSPACE" and python.get("python_file"):
        python["python_file"] = workspace_path(ctx, python["python_file"])
    run_job = task.get("run_job_task")
    if run_job and run_job.get("job_id"):
        run_job["job_id"] = ref("jobs", str(run_job["job_id"]))
    for field in WAREHOUSE_TASKS:
        sub_task = task.get(field)
        if sub_task and sub_task.get("warehouse_id") and _warehouse_replicated(ctx, sub_task["warehouse_id"]):
            sub_task["warehouse_id"] = ref("sql_warehouses", sub_task["warehouse_id"])
    pipeline = task.get("pipeline_task")
    if pipeline and pipeline.get("pipeline_id") and _replicated(ctx, "pipelines", pipeline["pipeline_id"]):
        pipeline["pipeline_id"] = ref("pipelines", pipeline["pipeline_id"])
    _webhooks(ctx, task.get("webhook_notifications"))
    for_each = task.get("for_each_task")
    if for_each and for_each.get("task"):
        for_each["task"] = _normalize_task(ctx, for_each["task"])
    return task


def _webhooks(ctx: SyncContext, notifications: dict[str, Any] | None) -> None:
    """A job's or task's webhook_notifications name notification destinations by id: Refs when replicated."""
    for targets in (notifications or {}).values():
        for target in targets if isinstance(targets, list) else []:
            if target.get("id") and _replicated(ctx, "notification_destinations", target["id"]):
                target["id"] = ref("notification_destinations", target["id"])


def normalize_settings(ctx: SyncContext, settings: dict[str, Any]) -> dict[str, Any]:
    """The job's settings as written to the target, normalized IN PLACE: `settings` is the listing's fresh
    `as_dict()`, which nothing else keeps. A deep copy of it here was ~0.3 CPU-s of a 10,000-object re-run's ~5
    (its 1,050 jobs' settings, source and target, every cycle)."""
    payload = settings
    _webhooks(ctx, payload.get("webhook_notifications"))
    for field in TRIGGER_FIELDS:
        if payload.get(field):
            payload[field].pop("pause_status", None)
    payload["tasks"] = [_normalize_task(ctx, t) for t in payload.get("tasks") or []]
    payload["environments"] = [_normalize_environment(ctx, e) for e in payload.get("environments") or []]
    for job_cluster in payload.get("job_clusters") or []:
        job_cluster["new_cluster"] = normalize_cluster_spec(ctx, job_cluster.get("new_cluster") or {})
    tags = without_dbsync_tags(payload.get("tags"))
    if tags:
        payload["tags"] = tags
    else:
        payload.pop("tags", None)
    run_as = payload.get("run_as") or {}
    if run_as.get("user_name"):
        payload["run_as"] = {"user_name": ctx.principals.user(run_as["user_name"])}
    elif run_as.get("service_principal_name"):
        payload["run_as"] = {
            "service_principal_name": ctx.principals.service_principal(run_as["service_principal_name"])
        }
    # A trigger without its pause_status can be {} (`continuous`): it is still the job's trigger.
    kept_empty = ("email_notifications", *TRIGGER_FIELDS)
    return {k: v for k, v in payload.items() if v not in (None, [], {}) or k in kept_empty}


def warehouse_refs(tasks: list[dict[str, Any]]) -> Iterator[str]:
    """Source ids of the SQL warehouses a job's tasks (and for-each inner tasks) run on."""
    for task in tasks:
        for field in WAREHOUSE_TASKS:
            value = (task.get(field) or {}).get("warehouse_id")
            if is_ref(value):
                yield value["$ref"][1]
        inner = (task.get("for_each_task") or {}).get("task")
        if inner:
            yield from warehouse_refs([inner])


def cluster_refs(payload: Any) -> Iterator[str]:
    """Source ids of the interactive clusters a job's tasks run on."""
    for task in payload.get("tasks") or []:
        value = task.get("existing_cluster_id")
        if is_ref(value):
            yield value["$ref"][1]


WAREHOUSE_IDS: CacheKey[set[str]] = CacheKey("jobs:warehouse-ids")  # .part(side)
CLUSTER_IDS: CacheKey[set[str]] = CacheKey("jobs:cluster-ids")  # .part(side)


class JobWatcher(ListedWatcher):
    # On a worker of its own: at 100,000 objects a cycle (80 pages of 100 jobs with their tasks, each parsed and
    # fingerprinted) took 37-62 s every 120 s, half the first worker's time, and the kinds listed whole behind it
    # passed their 120 s target. It reads the target ids of clusters, pipelines, warehouses and notification
    # destinations that the first worker writes: a reference not mapped yet is `blocked` and goes through on a
    # later cycle (the id map reads the store again for every reference it has not found), as on one worker.
    declaration = Declaration(interval=120, link="{host}/jobs/{key}", worker="jobs")

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for job in ws.client.jobs.list(expand_tasks=True, limit=100):
            settings = job.settings.as_dict() if job.settings else {}
            yield (
                str(job.job_id),
                settings.get("name", ""),
                {"settings": settings, "creator": job.creator_user_name},
            )

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One jobs/get: the listing's page token is an offset, so a job deleted on the source while a page was read
        made the first job of the next page look deleted too."""
        return answers(lambda: ws.client.jobs.get(int(key)))

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        settings = raw["settings"]
        meta = {"pause": pause_states(settings), "owner": raw.get("creator")}
        return normalize_settings(ctx, settings), meta

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        """Refuse a job whose cluster is gone from the source: it would wait forever otherwise."""
        missing = [c for c in cluster_refs(stub.payload) if c not in self._source_clusters(ctx, ws)]
        if missing:
            raise Permanent(
                f"job {stub.name!r} runs on cluster {missing[0]}, which no longer exists on the source; "
                "point its tasks at an existing cluster or a job cluster"
            )
        warehouses = list(warehouse_refs((stub.payload or {}).get("tasks") or []))
        gone = [w for w in warehouses if w not in self._source_warehouses(ctx, ws)]
        if gone:
            raise Permanent(
                f"job {stub.name!r} runs on SQL warehouse {gone[0]}, which no longer exists on the source; "
                "point its tasks at an existing warehouse"
            )
        return stub

    @staticmethod
    def _source_warehouses(ctx: SyncContext, ws: Workspace) -> set[str]:
        return ctx.cached(WAREHOUSE_IDS.part(ws.side), lambda: {w.id or "" for w in ws.client.warehouses.list()})

    @staticmethod
    def _source_clusters(ctx: SyncContext, ws: Workspace) -> set[str]:
        return ctx.cached(CLUSTER_IDS.part(ws.side), lambda: {c.cluster_id or "" for c in ws.client.clusters.list()})


def watcher_for(kind: str) -> JobWatcher:
    return JobWatcher(kind, "jobs")
