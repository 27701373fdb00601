"""MLflow experiments and registered models on the target.

Experiments: adopted by name (a deleted one is restored), created with their tags (and a custom
artifact location), renamed and re-tagged in place. The API can neither remove an experiment tag nor
change an artifact location: both are recorded, not applied. With runs enabled, each source run is a
target run tagged `dbsync_source_run_id`: created once, then only the params, latest metrics, tags and
status that differ are logged (log-batch), and a run gone from the source is deleted.

Registered models: adopted by name, description and tags made equal. Versions keep their numbers: a
missing version n is created, and versions the source deleted (numbers the target would otherwise give)
are created (as placeholders tagged `dbsync_placeholder`) and deleted again, so `models:/<name>/<n>` means the
same version on both sides. Each target version copy carries `dbsync_source_version`; its description, tags
and stage follow the source. Versions point at the source's artifact URI: artifacts are not copied.
"""

from __future__ import annotations

import contextlib
import json
from itertools import zip_longest
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.sdk import Service
from dbsync.watchers.mlflow_objects import SOURCE_RUN_TAG, run_document, user_tags
from dbsync.watchers.workspace_objects import make_folder

sdk_ml = Service("ml")  # imported when this kind first uses it (dbsync/sdk.py)

SOURCE_VERSION_TAG = "dbsync_source_version"
PLACEHOLDER_TAG = "dbsync_placeholder"  # a version made only to use up a number; its value: the number it was for
RENUMBERED_TAG = "dbsync_renumbered"  # a copy kept below its source number: the placeholders ran out
MAX_PLACEHOLDERS = 50  # versions created and deleted to keep one version's number; beyond, numbers differ
BATCH = 100  # log-batch: at most 100 params and 100 tags per call ...
METRIC_BATCH = 800  # ... and 1000 items in all


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- experiments ----------------------------------------------------------------------------------------------
class ExperimentReplicator(Replicator):
    kind = "mlflow_experiments"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        current = self._current(ctx, change.target_key)
        known = current is not None  # the copy already recorded: its origin stays as recorded
        current = current or self._adopt(ctx, payload["name"])
        adopted = None if known else current is not None
        notes: list[str] = []
        if current is None:
            experiment_id = self._create(ctx, payload)
        else:
            experiment_id = current.experiment_id or ""
            notes += self._update(ctx, current, payload)
        if "runs" in payload:
            documents = json.loads(resource.body or b"{}")
            notes += RunCopier(ctx, experiment_id).copy(documents)
        return Applied(experiment_id, note="; ".join(notes) or None, adopted=adopted)

    @staticmethod
    def _current(ctx: SyncContext, target_id: str | None) -> sdk_ml.Experiment | None:
        if not target_id:
            return None
        try:
            experiment = ctx.target.client.experiments.get_experiment(target_id).experiment
        except NotFound:
            return None
        return experiment if experiment and experiment.lifecycle_stage == "active" else None

    @staticmethod
    def _adopt(ctx: SyncContext, name: str) -> sdk_ml.Experiment | None:
        experiments = ctx.target.client.experiments
        try:
            experiment = experiments.get_by_name(name).experiment
        except NotFound:
            return None
        if experiment is None:
            return None
        if experiment.lifecycle_stage == "deleted":  # deleted by a propagated delete: restore, do not clash
            experiments.restore_experiment(experiment.experiment_id or "")
        return experiment

    @staticmethod
    def _create(ctx: SyncContext, payload: dict[str, Any]) -> str:
        experiments = ctx.target.client.experiments
        tags = [sdk_ml.ExperimentTag(key=k, value=v) for k, v in payload["tags"].items()]

        def create() -> str:
            created = experiments.create_experiment(
                payload["name"], artifact_location=payload.get("artifact_location"), tags=tags or None
            )
            return created.experiment_id or ""

        try:
            try:
                return create()
            except NotFound:  # its folder is not on the target (it held only experiments): make it
                make_folder(ctx, payload["name"].rsplit("/", 1)[0] or "/")  # dbsync's, recorded
                return create()
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected experiment {payload['name']!r}: {err}") from err
            raise

    @staticmethod
    def _update(ctx: SyncContext, current: sdk_ml.Experiment, payload: dict[str, Any]) -> list[str]:
        experiments = ctx.target.client.experiments
        experiment_id = current.experiment_id or ""
        notes = []
        if current.name != payload["name"]:
            experiments.update_experiment(experiment_id, new_name=payload["name"])
        have = user_tags([t.as_dict() for t in current.tags or []])
        for key, value in payload["tags"].items():
            if have.get(key) != value:
                experiments.set_experiment_tag(experiment_id, key, value)
        removed = sorted(set(have) - set(payload["tags"]))
        if removed:
            notes.append(f"tags {', '.join(removed)} were removed on the source; the API cannot remove them")
        wanted = payload.get("artifact_location")
        if wanted and wanted != current.artifact_location:
            notes.append(f"artifact location {wanted} cannot be changed on an existing experiment")
        return notes

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        try:
            ctx.target.client.experiments.delete_experiment(change.target_key or "")
        except NotFound:
            pass
        except DatabricksError as err:
            if "active" not in str(err):  # already deleted on the target
                raise


class RunCopier:
    """Makes the target experiment's copied runs equal to the source's run documents."""

    def __init__(self, ctx: SyncContext, experiment_id: str) -> None:
        self.ctx = ctx
        self.experiment_id = experiment_id
        self.experiments = ctx.target.client.experiments

    def copy(self, documents: dict[str, dict[str, Any]]) -> list[str]:
        existing = self._target_runs()
        notes: list[str] = []
        for source_id, document in documents.items():
            target = existing.pop(source_id, None)
            notes += self._sync(source_id, document, target)
        for run_id, _ in existing.values():  # copied runs the source no longer has
            self.experiments.delete_run(run_id)
        return notes

    def _target_runs(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """{source run id → (target run id, run document)} of the runs dbsync copied."""
        out = {}
        for run in self.experiments.search_runs(experiment_ids=[self.experiment_id], max_results=1000):
            raw = run.as_dict()
            tags = {t["key"]: t.get("value") for t in (raw.get("data") or {}).get("tags") or []}
            if tags.get(SOURCE_RUN_TAG):
                out[tags[SOURCE_RUN_TAG]] = (raw["info"]["run_id"], run_document(raw))
        return out

    def _sync(self, source_id: str, doc: dict[str, Any], target: tuple[str, dict[str, Any]] | None) -> list[str]:
        if target is None:
            created = self.experiments.create_run(
                experiment_id=self.experiment_id,
                run_name=doc["run_name"],
                start_time=doc["start_time"],
                tags=[sdk_ml.RunTag(key=SOURCE_RUN_TAG, value=source_id)],
            )
            run_id = created.run.info.run_id if created.run and created.run.info else ""
            target = (run_id or "", {"params": {}, "metrics": {}, "tags": {}, "status": "RUNNING"})
        run_id, have = target
        notes = []
        params = [sdk_ml.Param(key=k, value=v) for k, v in doc["params"].items() if k not in have["params"]]
        changed = sorted(k for k, v in doc["params"].items() if k in have["params"] and have["params"][k] != v)
        if changed:
            notes.append(f"run {source_id}: params {', '.join(changed)} differ on the target (params are immutable)")
        metrics = [
            sdk_ml.Metric(key=k, value=m["value"], timestamp=m["timestamp"], step=m["step"])
            for k, m in doc["metrics"].items()
            if have["metrics"].get(k) != m
        ]
        tags = [sdk_ml.RunTag(key=k, value=v) for k, v in doc["tags"].items() if have["tags"].get(k) != v]
        batches = zip_longest(
            _chunks(params, BATCH), _chunks(tags, BATCH), _chunks(metrics, METRIC_BATCH), fillvalue=[]
        )
        for batch_params, batch_tags, batch_metrics in batches:
            if batch_params or batch_tags or batch_metrics:
                self.experiments.log_batch(run_id=run_id, params=batch_params, tags=batch_tags, metrics=batch_metrics)
        wanted = (doc["status"], doc.get("end_time"), doc["run_name"])
        if wanted != (have.get("status"), have.get("end_time"), have.get("run_name")):
            self.experiments.update_run(
                run_id=run_id, status=_status(doc["status"]), end_time=doc.get("end_time"), run_name=doc["run_name"]
            )
        return notes


def _status(value: str) -> sdk_ml.UpdateRunStatus | None:
    return sdk_ml.UpdateRunStatus(value) if value in sdk_ml.UpdateRunStatus.__members__ else None


# -- registered models -----------------------------------------------------------------------------------------
class RegisteredModelReplicator(Replicator):
    kind = "registered_models"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        registry = ctx.target.client.model_registry
        name = payload["name"]
        try:
            current = registry.get_model(name).registered_model_databricks
        except NotFound:
            current = None
        try:
            if current is None:
                tags = [sdk_ml.ModelTag(key=k, value=v) for k, v in payload["tags"].items()]
                registry.create_model(name, description=payload["description"] or None, tags=tags or None)
            else:
                self._update_model(ctx, name, current, payload)
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected registered model {name!r}: {err}") from err
            raise
        notes = VersionCopier(ctx, name).copy(payload["versions"])
        adopted = None if change.target_key else current is not None  # there before dbsync: never deleted by it
        return Applied(name, note="; ".join(notes) or None, adopted=adopted)

    @staticmethod
    def _update_model(ctx: SyncContext, name: str, current: Any, payload: dict[str, Any]) -> None:
        registry = ctx.target.client.model_registry
        if (current.description or "") != payload["description"]:
            registry.update_model(name, description=payload["description"])
        have = user_tags([t.as_dict() for t in current.tags or []])
        for key, value in payload["tags"].items():
            if have.get(key) != value:
                registry.set_model_tag(name, key, value)
        for key in set(have) - set(payload["tags"]):
            registry.delete_model_tag(name, key)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        with contextlib.suppress(NotFound):
            ctx.target.client.model_registry.delete_model(change.target_key or change.key)


class VersionCopier:
    """Makes a target model's versions match the source's, number for number.

    A source version deleted leaves a gap in its numbers; the target's next create would take the gap's number,
    so a placeholder version is created there and deleted. Placeholders carry their own tag, never the source
    version's: a run that died between a placeholder's create and its delete once left it tagged as the real
    version, and every later cycle took it for that version (its number and artifact wrong, the real one never
    made).
    """

    def __init__(self, ctx: SyncContext, name: str) -> None:
        self.registry = ctx.target.client.model_registry
        self.name = name
        self.highest = 0  # the highest version number seen on the target: its next create's is above it

    def copy(self, versions: dict[str, dict[str, Any]]) -> list[str]:
        mapped, untagged, leftovers = self._target_versions()
        for leftover, wanted in leftovers:
            self._settle(leftover, wanted, versions, mapped)
        notes: list[str] = []
        for number in sorted(versions, key=int):
            if number not in mapped and number in untagged:
                mapped[number] = untagged.pop(number)  # a version made on the target before dbsync: adopted
            if number not in mapped:
                mapped[number], note = self._create(number, versions[number])
                if note:
                    notes.append(note)
            self._update(mapped[number], versions[number])
        for number, version in mapped.items():
            if number not in versions:  # deleted on the source
                self.registry.delete_model_version(self.name, version["version"])
        return notes

    def _target_versions(
        self,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[tuple[dict[str, Any], str]]]:
        """({source version → target version} for dbsync's copies, {number → version} for the others, and dbsync's
        leftover placeholders with the source number each was made for)."""
        quoted = self.name.replace("'", "''")
        mapped, untagged, leftovers = {}, {}, []
        for version in self.registry.search_model_versions(filter=f"name='{quoted}'"):
            raw = version.as_dict()
            number = int(raw["version"])
            self.highest = max(self.highest, number)
            tags = {t["key"]: t.get("value") for t in raw.get("tags") or []}
            source_number = tags.get(SOURCE_VERSION_TAG)
            if source_number and (number >= int(source_number) or RENUMBERED_TAG in tags):
                mapped[source_number] = raw
                if PLACEHOLDER_TAG in tags:  # promoted by a run that died before removing the placeholder tag
                    self.registry.delete_model_version_tag(self.name, str(number), PLACEHOLDER_TAG)
            elif source_number:
                # Below its source number and not one kept there on purpose: a placeholder an older dbsync tagged
                # with the real version's number before it knew the number it got.
                leftovers.append((raw, source_number))
            elif tags.get(PLACEHOLDER_TAG):
                leftovers.append((raw, str(tags[PLACEHOLDER_TAG])))
            else:
                untagged[str(number)] = raw
        return mapped, untagged, leftovers

    def _settle(
        self, leftover: dict[str, Any], wanted: str, versions: dict[str, Any], mapped: dict[str, dict[str, Any]]
    ) -> None:
        """A placeholder an earlier run left (it died before deleting it): what that run would have done with it.

        One that reached its source number was to become that version's copy; any other is deleted: it is
        dbsync's own, made only to use up a number.
        """
        if int(leftover["version"]) >= int(wanted) and wanted in versions and wanted not in mapped:
            mapped[wanted] = self._promote(leftover, wanted)
        else:
            self.registry.delete_model_version(self.name, str(leftover["version"]))

    def _create(self, number: str, spec: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        for _ in range(MAX_PLACEHOLDERS):
            if self.highest + 1 >= int(number):
                break
            # A number the source skipped (its version was deleted): burn it, so the numbers stay equal.
            placeholder = self._create_version(
                spec["source"], [sdk_ml.ModelVersionTag(key=PLACEHOLDER_TAG, value=number)]
            )
            if int(placeholder["version"]) >= int(number):  # the target had deleted versions of its own
                return self._promote(placeholder, number), _renumbered(number, placeholder)
            self.registry.delete_model_version(self.name, placeholder["version"])
        tags = [sdk_ml.ModelVersionTag(key=SOURCE_VERSION_TAG, value=number)]
        if self.highest + 1 < int(number):  # the placeholders ran out: this copy stays below its number
            tags.append(sdk_ml.ModelVersionTag(key=RENUMBERED_TAG, value="true"))
        tags += [sdk_ml.ModelVersionTag(key=k, value=v) for k, v in spec["tags"].items()]
        raw = self._create_version(spec["source"], tags, spec["description"] or None)
        return raw, _renumbered(number, raw)

    def _create_version(
        self, source: str, tags: list[sdk_ml.ModelVersionTag], description: str | None = None
    ) -> dict[str, Any]:
        created = self.registry.create_model_version(self.name, source, description=description, tags=tags)
        assert created.model_version is not None
        raw = created.model_version.as_dict()
        self.highest = max(self.highest, int(raw["version"]))
        return raw

    def _promote(self, placeholder: dict[str, Any], number: str) -> dict[str, Any]:
        """A placeholder that got the source's number (or passed it) becomes that version's copy."""
        version = str(placeholder["version"])
        self.registry.set_model_version_tag(self.name, version, SOURCE_VERSION_TAG, number)
        self.registry.delete_model_version_tag(self.name, version, PLACEHOLDER_TAG)
        return placeholder

    def _update(self, target: dict[str, Any], spec: dict[str, Any]) -> None:
        version = str(target["version"])
        if (target.get("description") or "") != spec["description"]:
            self.registry.update_model_version(self.name, version, description=spec["description"])
        have = user_tags(target.get("tags"))
        for key, value in spec["tags"].items():
            if have.get(key) != value:
                self.registry.set_model_version_tag(self.name, version, key, value)
        for key in set(have) - set(spec["tags"]):
            self.registry.delete_model_version_tag(self.name, version, key)
        if (target.get("current_stage") or "None") != spec["stage"]:
            self.registry.transition_stage(self.name, version, spec["stage"], archive_existing_versions=False)


def _renumbered(number: str, version: dict[str, Any]) -> str | None:
    if str(version["version"]) == number:
        return None
    return f"version {number} is version {version['version']} on the target (the target numbers were ahead)"


def replicator_for(kind: str) -> Replicator:
    return ExperimentReplicator() if kind == "mlflow_experiments" else RegisteredModelReplicator()
