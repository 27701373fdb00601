"""Serverless jobs (no cluster: job-level `environments`, tasks naming an `environment_key`) replicate like any
other job: environments with their dependencies, the performance target and the budget policy reach the target,
workspace paths follow the email mapping, and a no-change cycle writes nothing."""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import compute, jobs

from tests.conftest import Pair

OLD, NEW = "a@old.com", "a@new.com"
MAPPING = {"identities": {"create_users": True}, "mapping": {"emails": {"@old.com": "@new.com"}}}


def _serverless_job(src: WorkspaceClient, dependencies: list[str]) -> int:
    src.users.create(user_name=OLD, display_name="A")
    job_id = src.jobs.create(
        name="serverless etl",
        environments=[
            jobs.JobEnvironment(
                environment_key="default",
                spec=compute.Environment(client="2", dependencies=dependencies),
            )
        ],
        tasks=[
            jobs.Task(task_key="ingest", notebook_task=jobs.NotebookTask(notebook_path=f"/Users/{OLD}/ingest")),
            jobs.Task(
                task_key="transform",
                environment_key="default",
                depends_on=[jobs.TaskDependency("ingest")],
                spark_python_task=jobs.SparkPythonTask(python_file=f"/Workspace/Users/{OLD}/transform.py"),
            ),
            jobs.Task(
                task_key="score",
                environment_key="default",
                depends_on=[jobs.TaskDependency("transform")],
                python_wheel_task=jobs.PythonWheelTask(package_name="scoring", entry_point="main"),
            ),
        ],
        performance_target=jobs.PerformanceTarget.PERFORMANCE_OPTIMIZED,
        budget_policy_id="budget-policy-7",
        schedule=jobs.CronSchedule(quartz_cron_expression="0 0 2 * * ?", timezone_id="UTC"),
    ).job_id
    assert job_id is not None
    return job_id


def _target_settings(dst: WorkspaceClient) -> jobs.JobSettings:
    (listed,) = list(dst.jobs.list())
    settings = dst.jobs.get(listed.job_id).settings
    assert settings is not None
    return settings


def test_a_serverless_job_replicates_with_its_environments_and_targets(pair: Pair) -> None:
    _serverless_job(pair.src, ["pandas==2.2.2", f"/Workspace/Users/{OLD}/libs/scoring-1.0-py3-none-any.whl"])

    reports = pair.sync(**MAPPING)

    assert reports["jobs"].created == 1 and not reports["jobs"].errors and not reports["jobs"].blocked, reports
    settings = _target_settings(pair.dst)
    (environment,) = settings.environments or []
    assert environment.environment_key == "default"
    assert environment.spec == compute.Environment(
        client="2", dependencies=["pandas==2.2.2", f"/Workspace/Users/{NEW}/libs/scoring-1.0-py3-none-any.whl"]
    )
    tasks = {t.task_key: t for t in settings.tasks or []}
    assert {k: t.environment_key for k, t in tasks.items()} == {
        "ingest": None,
        "transform": "default",
        "score": "default",
    }
    assert not any(t.existing_cluster_id or t.new_cluster or t.job_cluster_key for t in tasks.values())
    assert tasks["ingest"].notebook_task.notebook_path == f"/Users/{NEW}/ingest"  # type: ignore[union-attr]
    assert tasks["transform"].spark_python_task.python_file == f"/Workspace/Users/{NEW}/transform.py"  # type: ignore[union-attr]
    assert settings.performance_target == jobs.PerformanceTarget.PERFORMANCE_OPTIMIZED
    assert settings.budget_policy_id == "budget-policy-7"
    assert settings.schedule.pause_status == jobs.PauseStatus.PAUSED  # type: ignore[union-attr]


def test_a_serverless_environment_edit_reaches_the_target_and_a_quiet_cycle_writes_nothing(pair: Pair) -> None:
    job_id = _serverless_job(pair.src, ["pandas==2.2.2"])
    pair.sync(**MAPPING)
    pair.reset_stats()

    quiet = pair.sync(**MAPPING)
    assert quiet["jobs"].created == quiet["jobs"].updated == 0
    assert pair.target_writes() == 0

    pair.src.jobs.update(
        job_id,
        new_settings=jobs.JobSettings(
            environments=[
                jobs.JobEnvironment(
                    environment_key="default",
                    spec=compute.Environment(client="3", dependencies=["pandas==2.2.3", "scikit-learn"]),
                )
            ],
            performance_target=jobs.PerformanceTarget.STANDARD,
        ),
    )
    edited = pair.sync(**MAPPING)

    assert edited["jobs"].updated == 1, edited
    settings = _target_settings(pair.dst)
    assert [e.spec for e in settings.environments or []] == [
        compute.Environment(client="3", dependencies=["pandas==2.2.3", "scikit-learn"])
    ]
    assert settings.performance_target == jobs.PerformanceTarget.STANDARD
