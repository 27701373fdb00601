"""MLflow experiments (with, opt-in, their runs) and Model Registry models (with their versions).

`mlflow_experiments`: keyed by experiment id, listed with `experiments/list` (1000 per call; the
listing carries name, tags and artifact location, so the hint is the payload's fingerprint). Notebook
experiments (tag `mlflow.experimentType` NOTEBOOK) belong to their notebook and are not replicated; the
service's own `mlflow.*` tags are dropped (the description, `mlflow.note.content`, is kept). A default
artifact location (`dbfs:/databricks/mlflow-tracking/<id>`) is not copied: the target makes its own.
With `mlflow.runs: true`, experiments whose name matches `mlflow.runs_paths` also list their runs (one
`runs/search` per experiment) and the payload holds a digest per run; the run data is read again only
when a digest changed. Artifacts are never copied.

`registered_models`: keyed by model name, listed with `registered-models/search` plus one unfiltered
`model-versions/search` for every version (10 000 per call): description, tags, and per version its
source URI, description, tags and stage. The version's run id is not kept (the run is not on the target).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError, RetryLater
from dbsync.model import Resource, fingerprint
from dbsync.watchers.base import Watcher, answers
from dbsync.workspace import Workspace

KEPT_SYSTEM_TAGS = ("mlflow.note.content",)  # the experiment / run description, written by users
SOURCE_RUN_TAG = "dbsync_source_run_id"
DEFAULT_ARTIFACTS = "dbfs:/databricks/mlflow-tracking/"
DELETED_STAGE = "deleted"  # an experiment's lifecycle_stage from its delete until it is purged (or restored)
# Run tags the service writes itself (who ran it, from where): not copied, the target run is dbsync's.
RUN_SYSTEM_TAG_PREFIXES = (
    "mlflow.user",
    "mlflow.source.",
    "mlflow.databricks.",
    "mlflow.log-model.history",
    "mlflow.runName",  # copied as the run name
)


def user_tags(tags: list[dict[str, Any]] | None) -> dict[str, str]:
    """Tags a user set: the service's `mlflow.*` tags (owner, type...) and dbsync's own are left out."""
    out = {}
    for tag in tags or []:
        key = tag.get("key") or ""
        if key.startswith("dbsync_") or (key.startswith("mlflow.") and key not in KEPT_SYSTEM_TAGS):
            continue
        out[key] = tag.get("value") or ""
    return out


def runs_wanted(ctx: SyncContext, name: str) -> bool:
    settings = ctx.settings.mlflow
    return settings.runs and any(fnmatch.fnmatchcase(name, p) for p in settings.runs_paths)


def run_document(run: dict[str, Any]) -> dict[str, Any]:
    """What is copied of a run: name, status, times, params, latest metrics, user tags."""
    info, data = run.get("info") or {}, run.get("data") or {}
    tags = {
        t["key"]: t.get("value") or ""
        for t in data.get("tags") or []
        if not t["key"].startswith(RUN_SYSTEM_TAG_PREFIXES) and not t["key"].startswith("dbsync_")
    }
    return {
        "run_name": info.get("run_name") or "",
        "status": info.get("status") or "FINISHED",
        "start_time": info.get("start_time"),
        "end_time": info.get("end_time"),
        "params": {p["key"]: p.get("value") or "" for p in data.get("params") or []},
        "metrics": {
            m["key"]: {"value": m.get("value"), "timestamp": m.get("timestamp") or 0, "step": m.get("step") or 0}
            for m in data.get("metrics") or []
        },
        "tags": tags,
    }


def read_runs(ws: Workspace, experiment_id: str) -> dict[str, dict[str, Any]]:
    """{run id → run document} of the experiment's active runs."""
    runs = ws.client.experiments.search_runs(experiment_ids=[experiment_id], max_results=1000)
    return {r.info.run_id or "": run_document(r.as_dict()) for r in runs if r.info is not None}


class ExperimentWatcher(Watcher):
    kind = "mlflow_experiments"
    acl_type = "experiments"
    declaration = Declaration(interval=300)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            # experiments/list, not search: a GET (search is a POST, which reads like a write in audits).
            for experiment in ws.client.experiments.list_experiments(max_results=1000):
                raw = experiment.as_dict()
                tags = {t.get("key"): t.get("value") for t in raw.get("tags") or []}
                if tags.get("mlflow.experimentType") == "NOTEBOOK":
                    continue  # a notebook's experiment: it follows its notebook, the API cannot create one
                yield self._resource(ctx, ws, raw)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list MLflow experiments: {err}") from err

    def _resource(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> Resource:
        experiment_id = raw["experiment_id"]
        payload: dict[str, Any] = {"name": ctx.principals.path(raw["name"]), "tags": user_tags(raw.get("tags"))}
        location = raw.get("artifact_location") or ""
        if location and location != DEFAULT_ARTIFACTS + experiment_id:
            payload["artifact_location"] = location
        if ws.side == "source" and runs_wanted(ctx, raw["name"]):
            payload["runs"] = {run_id: fingerprint(doc) for run_id, doc in read_runs(ws, experiment_id).items()}
        return Resource(self.kind, experiment_id, raw["name"], fingerprint(payload), payload)

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One experiments/get: the listing pages by token (an offset), so an experiment deleted while a page was read
        made the first of the next page look deleted too. Gone: a 404 (purged), or an experiment the service still
        answers in lifecycle stage "deleted" (a delete keeps it, restorable, until it is purged)."""
        return answers(
            lambda: ws.client.experiments.get_experiment(key).experiment,
            lambda got: got is not None and got.lifecycle_stage == DELETED_STAGE,
        )

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        """The listing made the payload; with runs, their data travels in the body (never stored)."""
        if stub.payload and "runs" in stub.payload:
            try:
                documents = read_runs(ws, stub.key)
            except NotFound:
                raise RetryLater(f"experiment {stub.key} disappeared from the source while it was read") from None
            stub.body = json.dumps(documents).encode()
        return stub


class RegisteredModelWatcher(Watcher):
    kind = "registered_models"
    acl_type = "registered-models"
    declaration = Declaration(interval=300)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            versions = self._versions(ws)
            for model in ws.client.model_registry.search_models(max_results=1000):
                raw = model.as_dict()
                name = raw["name"]
                payload = {
                    "name": name,
                    "description": raw.get("description") or "",
                    "tags": user_tags(raw.get("tags")),
                    "versions": versions.get(name, {}),
                }
                yield Resource(self.kind, name, name, fingerprint(payload), payload)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list registered models: {err}") from err

    @staticmethod
    def _versions(ws: Workspace) -> dict[str, dict[str, dict[str, Any]]]:
        """{model name → {version → what is copied of it}} from one listing of every version."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for version in ws.client.model_registry.search_model_versions(max_results=10000):
            raw = version.as_dict()
            out.setdefault(raw["name"], {})[str(raw["version"])] = {
                "source": raw.get("source") or "",
                "description": raw.get("description") or "",
                "tags": user_tags(raw.get("tags")),
                "stage": raw.get("current_stage") or "None",
            }
        return out

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One registered-models/get: the search pages by token (an offset), so a model deleted while a page was read
        made the first of the next page look deleted too. Gone: a 404 (a deleted model is not kept)."""
        return answers(lambda: ws.client.model_registry.get_model(key))

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub

    def acl_object_id(self, ctx: SyncContext, ws: Workspace, key: str, meta: dict) -> str | None:
        """Model permissions are keyed by the model's id, which only the Databricks get answers."""
        try:
            model = ws.client.model_registry.get_model(key).registered_model_databricks
        except NotFound:
            return None
        return model.id if model else None


def watcher_for(kind: str) -> Watcher:
    return ExperimentWatcher() if kind == "mlflow_experiments" else RegisteredModelWatcher()
