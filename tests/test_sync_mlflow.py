"""MLflow experiments (and opt-in runs) and registered models between two emulated workspaces."""

from __future__ import annotations

from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import iam, ml

MLFLOW_KINDS = ["mlflow_experiments", "registered_models", "permissions"]


def test_experiments_reach_the_target(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace.mkdirs("/Shared/ml")
    churn = src.experiments.create_experiment(
        "/Shared/ml/churn",
        artifact_location="s3://ml-artifacts/churn",
        tags=[ml.ExperimentTag("team", "growth"), ml.ExperimentTag("mlflow.note.content", "Churn model")],
    ).experiment_id
    src.experiments.create_experiment("/Shared/ml/scratch")
    notebook = src.experiments.create_experiment("/Shared/ml/nb")
    src.experiments.set_experiment_tag(notebook.experiment_id, "mlflow.experimentType", "NOTEBOOK")

    reports = pair.sync(only=MLFLOW_KINDS)
    assert reports["mlflow_experiments"].created == 2
    target = dst.experiments.get_by_name("/Shared/ml/churn").experiment
    assert target.experiment_id != churn  # type: ignore[union-attr]
    assert target.artifact_location == "s3://ml-artifacts/churn"  # type: ignore[union-attr]
    assert {t.key: t.value for t in target.tags} == {"team": "growth", "mlflow.note.content": "Churn model"}  # type: ignore[union-attr]
    scratch = dst.experiments.get_by_name("/Shared/ml/scratch").experiment
    assert scratch.artifact_location == f"dbfs:/databricks/mlflow-tracking/{scratch.experiment_id}"  # type: ignore[union-attr]
    assert "/Shared/ml/nb" not in {e.name for e in dst.experiments.list_experiments()}  # notebook experiments stay

    pair.reset_stats()
    pair.sync(only=["mlflow_experiments"])
    assert pair.target_writes() == 0

    src.experiments.update_experiment(churn, new_name="/Shared/ml/churn-v2")
    src.experiments.set_experiment_tag(churn, "team", "retention")
    src.experiments.delete_experiment(scratch_source := _source_id(src, "/Shared/ml/scratch"))
    reports = pair.sync(only=["mlflow_experiments"])
    assert (reports["mlflow_experiments"].updated, reports["mlflow_experiments"].deleted) == (1, 1)
    renamed = dst.experiments.get_experiment(target.experiment_id).experiment  # type: ignore[union-attr]
    assert renamed.name == "/Shared/ml/churn-v2" and {t.key: t.value for t in renamed.tags}["team"] == "retention"  # type: ignore[union-attr]
    assert dst.experiments.get_experiment(scratch.experiment_id).experiment.lifecycle_stage == "deleted"  # type: ignore[union-attr]
    assert scratch_source


def _source_id(w: WorkspaceClient, name: str) -> str:
    return w.experiments.get_by_name(name).experiment.experiment_id  # type: ignore[union-attr,return-value]


def test_runs_are_copied_only_when_opted_in_for_configured_paths(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace.mkdirs("/Shared/prod")
    prod = src.experiments.create_experiment("/Shared/prod/fraud").experiment_id
    lab = src.experiments.create_experiment("/Shared/lab").experiment_id
    for experiment_id in (prod, lab):
        run_id = src.experiments.create_run(
            experiment_id=experiment_id, run_name="baseline", start_time=1000
        ).run.info.run_id  # type: ignore[union-attr]
        src.experiments.log_batch(
            run_id=run_id,
            params=[ml.Param("depth", "6")],
            metrics=[ml.Metric(key="auc", value=0.91, timestamp=2000, step=3)],
            tags=[ml.RunTag("model", "xgb")],
        )
        src.experiments.update_run(run_id=run_id, status=ml.UpdateRunStatus.FINISHED, end_time=3000)

    pair.sync(only=["mlflow_experiments"])
    target_prod = _source_id(dst, "/Shared/prod/fraud")
    assert list(dst.experiments.search_runs(experiment_ids=[target_prod])) == []  # runs are off by default

    opt_in = {"mlflow": {"runs": True, "runs_paths": ["/Shared/prod/*"]}}
    reports = pair.sync(only=["mlflow_experiments"], **opt_in)
    assert reports["mlflow_experiments"].updated == 1  # only the experiment under runs_paths
    (run,) = dst.experiments.search_runs(experiment_ids=[target_prod])
    assert run.info.run_name == "baseline" and run.info.status == ml.RunInfoStatus.FINISHED  # type: ignore[union-attr]
    assert run.info.end_time == 3000  # type: ignore[union-attr]
    assert [(p.key, p.value) for p in run.data.params] == [("depth", "6")]  # type: ignore[union-attr]
    assert [(m.key, m.value, m.step) for m in run.data.metrics] == [("auc", 0.91, 3)]  # type: ignore[union-attr]
    assert list(dst.experiments.search_runs(experiment_ids=[_source_id(dst, "/Shared/lab")])) == []

    pair.reset_stats()
    pair.sync(only=["mlflow_experiments"], **opt_in)
    assert pair.target_writes() == 0

    source_run = next(iter(src.experiments.search_runs(experiment_ids=[prod]))).info.run_id  # type: ignore[union-attr]
    src.experiments.log_metric("auc", 0.95, run_id=source_run, timestamp=4000, step=4)
    pair.sync(only=["mlflow_experiments"], **opt_in)
    (run,) = dst.experiments.search_runs(experiment_ids=[target_prod])
    assert [(m.key, m.value) for m in run.data.metrics] == [("auc", 0.95)]  # type: ignore[union-attr]
    src.experiments.delete_run(source_run)
    pair.sync(only=["mlflow_experiments"], **opt_in)
    assert list(dst.experiments.search_runs(experiment_ids=[target_prod])) == []


def test_registered_models_keep_their_version_numbers(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.model_registry.create_model("churn", description="churn model", tags=[ml.ModelTag("team", "growth")])
    for i in range(1, 4):
        src.model_registry.create_model_version("churn", f"dbfs:/models/churn/{i}", description=f"v{i}")
    src.model_registry.delete_model_version("churn", "2")
    src.model_registry.transition_stage("churn", "3", "Production", archive_existing_versions=False)
    src.model_registry.set_model_version_tag("churn", "3", "validated", "yes")
    src.groups.create(display_name="ml-eng")
    dst.groups.create(display_name="ml-eng")
    model_id = src.model_registry.get_model("churn").registered_model_databricks.id  # type: ignore[union-attr]
    acl = [
        iam.AccessControlRequest(
            group_name="ml-eng", permission_level=iam.PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS
        )
    ]
    src.permissions.set("registered-models", model_id or "", access_control_list=acl)

    reports = pair.sync(only=MLFLOW_KINDS)
    assert reports["registered_models"].created == 1 and reports["permissions"].errors == 0
    target = dst.model_registry.get_model("churn").registered_model_databricks
    assert (target.description, {t.key: t.value for t in target.tags}) == ("churn model", {"team": "growth"})  # type: ignore[union-attr]
    versions = {v.version: v for v in dst.model_registry.search_model_versions(filter="name='churn'")}
    assert sorted(versions) == ["1", "3"]  # `models:/churn/3` is the same version on both sides
    assert (versions["3"].current_stage, versions["3"].source, versions["3"].description) == (
        "Production",
        "dbfs:/models/churn/3",
        "v3",
    )
    assert {t.key: t.value for t in versions["3"].tags}["validated"] == "yes"  # type: ignore[union-attr]
    entries = dst.permissions.get("registered-models", target.id or "").access_control_list or []  # type: ignore[union-attr]
    assert any(e.group_name == "ml-eng" for e in entries)

    pair.reset_stats()
    pair.sync(only=["registered_models"])
    assert pair.target_writes() == 0

    src.model_registry.create_model_version("churn", "dbfs:/models/churn/4")
    src.model_registry.transition_stage("churn", "4", "Staging", archive_existing_versions=False)
    src.model_registry.update_model_version("churn", "1", description="first")
    src.model_registry.delete_model_version("churn", "3")
    pair.sync(only=["registered_models"])
    versions = {v.version: v for v in dst.model_registry.search_model_versions(filter="name='churn'")}
    assert sorted(versions) == ["1", "4"]
    assert (versions["1"].description, versions["4"].current_stage) == ("first", "Staging")

    src.model_registry.create_model("fraud")
    src.model_registry.delete_model("churn")
    reports = pair.sync(only=["registered_models"])
    assert reports["registered_models"].deleted == 1
    assert [m.name for m in dst.model_registry.search_models()] == ["fraud"]
