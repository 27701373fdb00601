"""Jobs API 2.0 / 2.1 / 2.2 (jobs CRUD, list paging, 2.2 task paging, runs), driven by databricks-sdk."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service import compute, jobs
from freezegun import freeze_time

from dbsync_emulator import EmulatorHandle
from tests.conftest import endpoint_count

CLUSTER = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)


def _task(key: str, **extra: Any) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        notebook_task=jobs.NotebookTask(notebook_path=f"/Shared/{key}"),
        job_cluster_key="main",
        **extra,
    )


def _create(w: WorkspaceClient, name: str = "nightly", tasks: int = 1, **settings: Any) -> int:
    job = w.jobs.create(
        name=name,
        job_clusters=[jobs.JobCluster(job_cluster_key="main", new_cluster=CLUSTER)],
        tasks=[_task(f"t{i}") for i in range(tasks)],
        **settings,
    )
    assert job.job_id is not None
    return job.job_id


def _raw(emulator: EmulatorHandle, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A plain HTTP call, for what the SDK hides: status codes and bodies."""
    headers = {"Authorization": f"Bearer {emulator.token}"}
    return requests.request(method, emulator.url + path, headers=headers, timeout=10, **kwargs)


# -- create, get, list ------------------------------------------------------------------------------
def test_create_and_get_fill_in_the_service_defaults(w: WorkspaceClient) -> None:
    job_id = _create(w, schedule=jobs.CronSchedule(quartz_cron_expression="0 0 1 * * ?", timezone_id="UTC"))

    job = w.jobs.get(job_id)

    assert job.creator_user_name == "admin@example.com"
    assert job.run_as_user_name == "admin@example.com"
    assert job.settings is not None
    assert job.settings.name == "nightly"
    assert job.settings.max_concurrent_runs == 1
    assert job.settings.timeout_seconds == 0
    assert job.settings.format == jobs.Format.MULTI_TASK
    assert job.settings.schedule is not None
    assert job.settings.schedule.pause_status == jobs.PauseStatus.UNPAUSED
    assert [t.task_key for t in job.settings.tasks or []] == ["t0"]
    assert job.settings.tasks[0].run_if == jobs.RunIf.ALL_SUCCESS  # type: ignore[index]


def test_list_is_newest_first_and_follows_page_tokens(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    ids = [_create(w, name=f"job-{i}") for i in range(5)]

    listed = [j.job_id for j in w.jobs.list(limit=2)]

    assert listed == list(reversed(ids))
    assert endpoint_count(emulator, "GET /api/2.2/jobs/list") == 3


def test_legacy_offset_paging_uses_has_more(w: WorkspaceClient) -> None:
    ids = [_create(w, name=f"job-{i}") for i in range(5)]
    seen: list[int] = []
    offset = 0
    while True:
        page = w.api_client.do("GET", "/api/2.1/jobs/list", query={"limit": 2, "offset": offset})
        seen += [j["job_id"] for j in page.get("jobs", [])]
        if not page["has_more"]:
            break
        offset += 2

    assert seen == list(reversed(ids))
    beyond = w.api_client.do("GET", "/api/2.1/jobs/list", query={"offset": 10})
    assert "jobs" not in beyond
    assert beyond["has_more"] is False


def test_list_without_jobs_omits_the_array(w: WorkspaceClient) -> None:
    assert w.api_client.do("GET", "/api/2.2/jobs/list") == {"has_more": False}
    assert list(w.jobs.list()) == []


def test_list_limit_over_100_is_invalid(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="limit"):
        list(w.jobs.list(limit=101))


def test_list_expands_tasks_only_when_asked(w: WorkspaceClient) -> None:
    _create(w, tasks=2)

    brief = next(iter(w.jobs.list()))
    expanded = next(iter(w.jobs.list(expand_tasks=True)))

    assert brief.settings is not None and not brief.settings.tasks and not brief.settings.job_clusters
    assert expanded.settings is not None
    assert [t.task_key for t in expanded.settings.tasks or []] == ["t0", "t1"]


def test_list_filters_by_exact_name_case_insensitively(w: WorkspaceClient) -> None:
    wanted = _create(w, name="Nightly ETL")
    _create(w, name="Nightly ETL v2")

    assert [j.job_id for j in w.jobs.list(name="nightly etl")] == [wanted]


def test_get_22_pages_tasks_and_the_sdk_merges_them(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    job_id = _create(w, tasks=150)

    first_page = w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job_id})
    job = w.jobs.get(job_id)
    whole = w.api_client.do("GET", "/api/2.1/jobs/get", query={"job_id": job_id})

    assert len(first_page["settings"]["tasks"]) == 100
    assert first_page["next_page_token"]
    assert [t.task_key for t in job.settings.tasks or []] == [f"t{i}" for i in range(150)]  # type: ignore[union-attr]
    assert len(job.settings.job_clusters or []) == 1  # type: ignore[union-attr]
    assert endpoint_count(emulator, "GET /api/2.2/jobs/get") == 3  # the raw call + two pages
    assert len(whole["settings"]["tasks"]) == 150
    assert "next_page_token" not in whole


def test_list_with_expand_tasks_refetches_jobs_with_more_tasks(w: WorkspaceClient) -> None:
    _create(w, tasks=120)

    (job,) = list(w.jobs.list(expand_tasks=True))

    assert len(job.settings.tasks or []) == 120  # type: ignore[union-attr]


# -- reset, update, delete --------------------------------------------------------------------------
def test_reset_replaces_all_settings(w: WorkspaceClient) -> None:
    job_id = _create(w, tasks=2, tags={"team": "data"})

    w.jobs.reset(
        job_id,
        jobs.JobSettings(
            name="renamed",
            job_clusters=[jobs.JobCluster(job_cluster_key="main", new_cluster=CLUSTER)],
            tasks=[_task("only")],
        ),
    )
    settings = w.jobs.get(job_id).settings

    assert settings is not None
    assert settings.name == "renamed"
    assert [t.task_key for t in settings.tasks or []] == ["only"]
    assert settings.tags is None


def test_update_merges_tasks_by_key_and_removes_fields(w: WorkspaceClient) -> None:
    job_id = _create(
        w,
        tasks=2,
        tags={"team": "data"},
        schedule=jobs.CronSchedule(quartz_cron_expression="0 0 1 * * ?", timezone_id="UTC"),
    )

    w.jobs.update(
        job_id,
        new_settings=jobs.JobSettings(tasks=[_task("t1", max_retries=3), _task("t2")], max_concurrent_runs=5),
        fields_to_remove=["schedule", "tasks/t0"],
    )
    settings = w.jobs.get(job_id).settings

    assert settings is not None
    assert {t.task_key: t.max_retries for t in settings.tasks or []} == {"t1": 3, "t2": None}
    assert settings.max_concurrent_runs == 5
    assert settings.schedule is None
    assert settings.tags == {"team": "data"}


def test_delete_then_get_is_resource_does_not_exist(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    job_id = _create(w)
    w.jobs.delete(job_id)

    with pytest.raises(ResourceDoesNotExist, match=f"Job {job_id} does not exist"):
        w.jobs.get(job_id)
    with pytest.raises(InvalidParameterValue):
        w.jobs.delete(job_id)
    answer = _raw(emulator, "GET", "/api/2.2/jobs/get", params={"job_id": job_id})
    # The service answers 400 here; the SDK's error override turns it into ResourceDoesNotExist.
    assert answer.status_code == 400
    assert answer.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"Job {job_id} does not exist.",
    }


# -- validation -------------------------------------------------------------------------------------
def test_duplicate_task_keys_are_invalid(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="t0 is duplicated"):
        w.jobs.create(
            name="dup",
            job_clusters=[jobs.JobCluster(job_cluster_key="main", new_cluster=CLUSTER)],
            tasks=[_task("t0"), _task("t0")],
        )


def test_only_one_of_schedule_trigger_continuous(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="Only one of"):
        _create(
            w,
            schedule=jobs.CronSchedule(quartz_cron_expression="0 0 1 * * ?", timezone_id="UTC"),
            continuous=jobs.Continuous(pause_status=jobs.PauseStatus.PAUSED),
        )


def test_a_task_without_compute_that_cannot_run_serverless_is_invalid(w: WorkspaceClient) -> None:
    # A notebook task without compute runs on serverless (see test_emulator_jobs_runs.py); spark-submit cannot.
    with pytest.raises(InvalidParameterValue, match="not supported on serverless compute"):
        w.jobs.create(
            name="nocompute",
            tasks=[jobs.Task(task_key="a", spark_submit_task=jobs.SparkSubmitTask(parameters=["--version"]))],
        )


def test_an_unknown_existing_cluster_is_invalid(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="Cluster 0000-000000-nope does not exist"):
        w.jobs.create(
            name="x",
            tasks=[
                jobs.Task(
                    task_key="a",
                    existing_cluster_id="0000-000000-nope",
                    notebook_task=jobs.NotebookTask(notebook_path="/Shared/a"),
                )
            ],
        )


def test_a_field_of_the_wrong_json_type_is_a_malformed_request(w: WorkspaceClient) -> None:
    with pytest.raises(BadRequest) as err:
        w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "x", "tasks": "not-a-list"})

    assert err.value.error_code == "MALFORMED_REQUEST"


def test_no_job_is_created_when_validation_fails(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue):
        w.jobs.create(name="bad", tasks=[jobs.Task(task_key="a")])

    assert list(w.jobs.list()) == []


# -- runs -------------------------------------------------------------------------------------------
def test_a_run_goes_pending_running_terminated(w: WorkspaceClient) -> None:
    job_id = _create(w)
    with freeze_time("2026-01-05 10:00:00") as clock:
        run_id = w.jobs.run_now(job_id).run_id
        assert w.jobs.get_run(run_id).state.life_cycle_state == jobs.RunLifeCycleState.PENDING  # type: ignore[union-attr]

        clock.tick(5)
        assert w.jobs.get_run(run_id).state.life_cycle_state == jobs.RunLifeCycleState.RUNNING  # type: ignore[union-attr]
        assert [r.run_id for r in w.jobs.list_runs(job_id=job_id, active_only=True)] == [run_id]

        clock.tick(120)
        run = w.jobs.get_run(run_id)

    assert run.state is not None
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.number_in_job == 1
    assert list(w.jobs.list_runs(job_id=job_id, active_only=True)) == []
    assert [r.run_id for r in w.jobs.list_runs(job_id=job_id, completed_only=True)] == [run_id]


def test_cancel_ends_a_running_run(w: WorkspaceClient) -> None:
    job_id = _create(w)
    with freeze_time("2026-01-05 10:00:00") as clock:
        run_id = w.jobs.run_now(job_id).run_id
        clock.tick(5)
        w.jobs.cancel_run(run_id)
        run = w.jobs.get_run(run_id)

    assert run.state is not None
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.CANCELED


def test_runs_past_max_concurrent_runs_are_skipped(w: WorkspaceClient) -> None:
    job_id = _create(w)
    with freeze_time("2026-01-05 10:00:00"):
        first = w.jobs.run_now(job_id).run_id
        second = w.jobs.run_now(job_id).run_id
        states = {r.run_id: r.state.life_cycle_state for r in w.jobs.list_runs(job_id=job_id)}  # type: ignore[union-attr]

    assert states == {first: jobs.RunLifeCycleState.PENDING, second: jobs.RunLifeCycleState.SKIPPED}


def test_runs_list_pages_newest_first(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    job_id = _create(w, max_concurrent_runs=10)
    run_ids = [w.jobs.run_now(job_id).run_id for _ in range(5)]

    listed = [r.run_id for r in w.jobs.list_runs(job_id=job_id, limit=2)]

    assert listed == list(reversed(run_ids))
    assert endpoint_count(emulator, "GET /api/2.2/jobs/runs/list") == 3


def test_unknown_run_is_resource_does_not_exist(w: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist, match="Run 42 does not exist"):
        w.jobs.get_run(42)


def test_run_parameters_and_status_come_back_on_the_run(w: WorkspaceClient) -> None:
    job_id = _create(
        w,
        parameters=[
            jobs.JobParameterDefinition(name="env", default="dev"),
            jobs.JobParameterDefinition(name="day", default="today"),
        ],
    )

    run = w.jobs.get_run(w.jobs.run_now(job_id, job_parameters={"env": "prod"}).run_id)

    assert [(p.name, p.default, p.value) for p in run.job_parameters or []] == [
        ("env", "dev", "prod"),
        ("day", "today", "today"),
    ]
    assert run.status is not None
    assert run.status.state == jobs.RunLifecycleStateV2State.PENDING


def test_idempotent_run_now_starts_one_run(w: WorkspaceClient) -> None:
    job_id = _create(w, max_concurrent_runs=10)

    first = w.jobs.run_now(job_id, idempotency_token="deploy-17").run_id
    again = w.jobs.run_now(job_id, idempotency_token="deploy-17").run_id

    assert first == again
    assert len(list(w.jobs.list_runs(job_id=job_id))) == 1


# -- API 2.0 ----------------------------------------------------------------------------------------
def test_v20_single_task_body_round_trips(w: WorkspaceClient) -> None:
    body = {
        "name": "legacy",
        "new_cluster": CLUSTER.as_dict(),
        "notebook_task": {"notebook_path": "/Shared/legacy"},
        "max_retries": 1,
    }
    job_id = w.api_client.do("POST", "/api/2.0/jobs/create", body=body)["job_id"]

    legacy = w.api_client.do("GET", "/api/2.0/jobs/get", query={"job_id": job_id})["settings"]
    modern = w.jobs.get(job_id).settings

    assert legacy["notebook_task"]["notebook_path"] == "/Shared/legacy"
    assert legacy["new_cluster"]["spark_version"] == "15.4.x-scala2.12"
    assert legacy["format"] == "SINGLE_TASK"
    assert "tasks" not in legacy
    assert modern is not None
    assert [t.notebook_task.notebook_path for t in modern.tasks or []] == ["/Shared/legacy"]  # type: ignore[union-attr]
    assert [j["job_id"] for j in w.api_client.do("GET", "/api/2.0/jobs/list")["jobs"]] == [job_id]
