"""Jobs lists, runs and timing as the service behaves, driven by databricks-sdk (and plain HTTP where a
third-party client calls the API without the SDK). Each test names the source of the behaviour it relies on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import compute, jobs
from freezegun import freeze_time

from dbsync.cli import build_parser
from dbsync_emulator import EmulatorHandle, start_emulator
from tests.conftest import sdk_client

CLUSTER = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
T0 = "2026-01-05 10:00:00"


def _raw(emulator: EmulatorHandle, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    return requests.request(method, emulator.url + path, headers=headers, timeout=10, **kwargs)


def _notebook(key: str, **extra: Any) -> jobs.Task:
    return jobs.Task(
        task_key=key, notebook_task=jobs.NotebookTask(notebook_path=f"/Shared/{key}"), job_cluster_key="main", **extra
    )


def _job(w: WorkspaceClient, name: str = "etl", tasks: list[jobs.Task] | None = None, **settings: Any) -> int:
    created = w.jobs.create(
        name=name,
        job_clusters=[jobs.JobCluster(job_cluster_key="main", new_cluster=CLUSTER)],
        tasks=tasks or [_notebook("a")],
        **settings,
    )
    assert created.job_id is not None
    return created.job_id


def _state(run: jobs.Run | jobs.RunTask) -> str:
    assert run.state is not None and run.state.life_cycle_state is not None
    return run.state.life_cycle_state.value


# -- jobs lists ---------------------------------------------------------------------------------------
def test_v20_list_without_paging_parameters_returns_every_job(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """databrickslabs/migrate dbclient/JobsClient.py get_jobs_list() calls GET /api/2.0/jobs/list with no
    parameters and indexes the 2.1 pages into its result (`jobsById[jobId]`): 2.0 without paging lists all."""
    ids = [_job(w, name=f"job-{i}") for i in range(27)]

    answer = _raw(emulator, "GET", "/api/2.0/jobs/list").json()

    assert sorted(j["job_id"] for j in answer["jobs"]) == sorted(ids)
    assert answer.get("has_more", False) is False


def test_migrate_jobs_listing_flow_runs_without_key_errors(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """The migrate tool's get_jobs_list(): 2.0 list, then 2.1 `expand_tasks=true&offset&limit=25` pages while
    `has_more`, replacing the jobs whose 2.0 `settings.format` is MULTI_TASK (read from its JobsClient.py)."""
    multi = _job(w, name="multi", tasks=[_notebook("a"), _notebook("b", depends_on=[jobs.TaskDependency("a")])])
    for i in range(30):
        _job(w, name=f"single-{i}")

    by_id = {j["job_id"]: j for j in _raw(emulator, "GET", "/api/2.0/jobs/list").json().get("jobs", [])}
    offset, has_more = 0, True
    while has_more:
        page = _raw(emulator, "GET", f"/api/2.1/jobs/list?expand_tasks=true&offset={offset}&limit=25").json()
        offset += 25
        has_more = page.get("has_more")
        for job in page.get("jobs", []):
            if by_id[job["job_id"]]["settings"].get("format") == "MULTI_TASK":
                by_id[job["job_id"]] = job

    assert len(by_id) == 31
    assert [t["task_key"] for t in by_id[multi]["settings"]["tasks"]] == ["a", "b"]


def _migrate_jobs_list(handle: EmulatorHandle) -> list[dict]:
    """migrate's JobsClient.get_jobs_list(), call for call."""
    by_id = {j["job_id"]: j for j in _raw(handle, "GET", "/api/2.0/jobs/list").json().get("jobs", [])}
    offset, has_more = 0, True
    while has_more:
        page = _raw(handle, "GET", f"/api/2.1/jobs/list?expand_tasks=true&offset={offset}&limit=25").json()
        offset += 25
        has_more = page.get("has_more")
        for job in page.get("jobs", []):
            if by_id[job["job_id"]]["settings"].get("format") == "MULTI_TASK":
                by_id[job["job_id"]] = job
    return list(by_id.values())


def test_migrate_jobs_export_and_import_between_two_workspaces(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """migrate's log_job_configs() then import_job_configs(): jobs/create, update (name) and reset (pause) through
    API 2.0 with the exported settings, ACLs through /api/2.0/preview/permissions (read from its JobsClient.py).
    A job made with a flat 2.0 body stays SINGLE_TASK in 2.0; one made through 2.1 is MULTI_TASK there."""
    legacy = {"name": "legacy", "new_cluster": CLUSTER.as_dict(), "notebook_task": {"notebook_path": "/Shared/l"}}
    _raw(emulator, "POST", "/api/2.0/jobs/create", json=legacy).raise_for_status()
    _job(w, name="multi", tasks=[_notebook("a"), _notebook("b", depends_on=[jobs.TaskDependency("a")])])
    w.jobs.create(
        name="serverless",
        environments=[jobs.JobEnvironment("default", spec=compute.Environment(client="2"))],
        tasks=[
            jobs.Task(
                task_key="py",
                environment_key="default",
                spark_python_task=jobs.SparkPythonTask(python_file="/Workspace/Shared/main.py"),
            )
        ],
        schedule=jobs.CronSchedule(quartz_cron_expression="0 0 1 * * ?", timezone_id="UTC"),
    )
    exported = _migrate_jobs_list(emulator)
    formats = {j["settings"]["name"]: j["settings"]["format"] for j in exported}
    target = start_emulator(cluster_start_seconds=0.1, token="dapi-migrate-target")
    try:
        for job in exported:
            settings = dict(job["settings"], name=f"{job['settings']['name']}:::{job['job_id']}")
            created = _raw(target, "POST", "/api/2.0/jobs/create", json=settings)
            assert created.status_code == 200, created.text
        for job in _migrate_jobs_list(target):
            acl = {"access_control_list": [{"group_name": "users", "permission_level": "CAN_VIEW"}]}
            perms = _raw(target, "PATCH", f"/api/2.0/preview/permissions/jobs/{job['job_id']}", json=acl)
            assert perms.status_code == 200, perms.text
            rename = {"job_id": job["job_id"], "new_settings": {"name": job["settings"]["name"].split(":::")[0]}}
            assert _raw(target, "POST", "/api/2.0/jobs/update", json=rename).status_code == 200
        for job in _migrate_jobs_list(target):  # pause_all_jobs()
            if job["settings"].get("schedule"):
                job["settings"]["schedule"]["pause_status"] = "PAUSED"
                reset = {"job_id": job["job_id"], "new_settings": job["settings"]}
                assert _raw(target, "POST", "/api/2.0/jobs/reset", json=reset).status_code == 200
        imported = {j.settings.name: j for j in sdk_client(target).jobs.list(expand_tasks=True)}  # type: ignore[union-attr]
    finally:
        target.stop()

    assert formats == {"legacy": "SINGLE_TASK", "multi": "MULTI_TASK", "serverless": "MULTI_TASK"}
    assert sorted(imported) == ["legacy", "multi", "serverless"]
    assert [t.task_key for t in imported["multi"].settings.tasks or []] == ["a", "b"]  # type: ignore[union-attr]
    assert imported["serverless"].settings.environments[0].environment_key == "default"  # type: ignore[union-attr,index]


def test_list_refuses_an_offset_above_1000_with_the_services_message(w: WorkspaceClient) -> None:
    """terraform-provider-databricks#2807 (debug log of GET /api/2.1/jobs/list?offset=1025): 400
    INVALID_PARAMETER_VALUE "The supplied offset 1025 has exceeded the value of 1000 allowed for this
    parameter.Please use th... (88 more bytes)"; the 88 bytes are the page_token sentence of sdk-py#278."""
    _job(w)
    at_the_limit = w.api_client.do("GET", "/api/2.1/jobs/list", query={"offset": 1000})
    assert "jobs" not in at_the_limit and at_the_limit["has_more"] is False

    with pytest.raises(InvalidParameterValue) as err:
        w.api_client.do("GET", "/api/2.1/jobs/list", query={"offset": 1025, "limit": 25})

    assert str(err.value) == (
        "The supplied offset 1025 has exceeded the value of 1000 allowed for this parameter."
        "Please use the page_token parameter to paginate: https://docs.databricks.com/api/workspace/jobs/list."
    )


def test_runs_list_refuses_an_offset_above_10000(w: WorkspaceClient) -> None:
    """databricks-sdk-py#278: runs/list answered offset=10000 and refused 10020 with this message."""
    with pytest.raises(InvalidParameterValue) as err:
        w.api_client.do("GET", "/api/2.1/jobs/runs/list", query={"offset": 10020})

    assert str(err.value) == (
        "The supplied offset 10020 has exceeded the value of 10000 allowed for this parameter."
        "Please use the page_token parameter to paginate: https://docs.databricks.com/api/workspace/jobs/listruns."
    )


# -- runs ---------------------------------------------------------------------------------------------
def test_run_tasks_carry_run_id_and_state_and_the_run_page_url_is_a_full_url(
    w: WorkspaceClient, emulator: EmulatorHandle
) -> None:
    """A real run (databricks-sdk-py#375) carries `run_page_url` 'https://<host>/?o=<workspace id>#job/<job>/run/<run>'
    and tasks with their own `run_id`, `attempt_number`, `state` and times; a task waits for its
    depends_on in BLOCKED (sdk RunLifeCycleState)."""
    job_id = _job(w, tasks=[_notebook("a"), _notebook("b", depends_on=[jobs.TaskDependency("a")])])
    with freeze_time(T0) as clock:
        run_id = w.jobs.run_now(job_id).run_id
        clock.tick(5)
        running = w.jobs.get_run(run_id)
        clock.tick(120)
        done = w.jobs.get_run(run_id)

    ws_id = emulator.workspace.workspace_id
    assert running.run_page_url == f"{emulator.url}/?o={ws_id}#job/{job_id}/run/{run_id}"
    tasks = {t.task_key: t for t in running.tasks or []}
    assert all(t.run_id and t.run_id != run_id for t in tasks.values())
    assert len({t.run_id for t in tasks.values()}) == 2
    assert (_state(tasks["a"]), _state(tasks["b"])) == ("RUNNING", "BLOCKED")  # waits on its upstream task
    assert tasks["a"].attempt_number == 0
    assert tasks["a"].run_page_url == f"{emulator.url}/?o={ws_id}#job/{job_id}/run/{tasks['a'].run_id}"
    finished = {t.task_key: t for t in done.tasks or []}
    assert [_state(t) for t in finished.values()] == ["TERMINATED", "TERMINATED"]
    assert finished["b"].start_time >= finished["a"].end_time  # type: ignore[operator]
    assert _state(done) == "TERMINATED"


def test_run_duration_is_configurable() -> None:
    """Real runs take as long as their work; `start_emulator(run_seconds=...)` sets the fast profile's duration."""
    handle = start_emulator(cluster_start_seconds=0.1, run_seconds=5)
    try:
        w = sdk_client(handle)
        job_id = _job(w)
        with freeze_time(T0) as clock:
            run_id = w.jobs.run_now(job_id).run_id
            clock.tick(7)
            run = w.jobs.get_run(run_id)
    finally:
        handle.stop()

    assert _state(run) == "TERMINATED"
    assert run.end_time - run.start_time <= 6000  # type: ignore[operator]


def test_runs_submit_starts_a_one_time_run_outside_the_jobs_list(w: WorkspaceClient) -> None:
    """runs/submit (sdk JobsAPI.submit → POST /api/2.2/jobs/runs/submit) answers {run_id}; the run is a
    SUBMIT_RUN that no job in jobs/list owns (databricks-sdk-py#375 shows such a run)."""
    with freeze_time(T0) as clock:
        run_id = w.jobs.submit(
            run_name="adhoc",
            tasks=[
                jobs.SubmitTask(
                    task_key="x", notebook_task=jobs.NotebookTask(notebook_path="/Shared/x"), new_cluster=CLUSTER
                )
            ],
        ).run_id
        clock.tick(120)
        run = w.jobs.get_run(run_id)

    assert run.run_type == jobs.RunType.SUBMIT_RUN
    assert run.run_name == "adhoc"
    assert _state(run) == "TERMINATED"
    assert [t.task_key for t in run.tasks or []] == ["x"]
    assert list(w.jobs.list()) == []
    assert [r.run_id for r in w.jobs.list_runs(run_type=jobs.RunType.SUBMIT_RUN)] == [run_id]


def test_legacy_20_submit_and_get_output_of_a_one_task_run(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """Clients of API 2.0 (Airflow's DatabricksHook: POST api/2.0/jobs/runs/submit with a flat body) and 2.0
    get-output of a one-task run, the workaround databricks-sdk-go#375 reports working."""
    body = {"run_name": "airflow", "new_cluster": CLUSTER.as_dict(), "notebook_task": {"notebook_path": "/Shared/x"}}
    with freeze_time(T0) as clock:
        submitted = _raw(emulator, "POST", "/api/2.0/jobs/runs/submit", json=body)
        run_id = submitted.json()["run_id"]
        clock.tick(120)
        output = _raw(emulator, "GET", "/api/2.0/jobs/runs/get-output", params={"run_id": run_id})
        refused = _raw(emulator, "GET", "/api/2.1/jobs/runs/get-output", params={"run_id": run_id})

    assert submitted.status_code == 200, submitted.text
    assert output.status_code == 200, output.text
    assert output.json()["metadata"]["state"]["result_state"] == "SUCCESS"
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_runs_submit_validates_tasks_like_jobs_create(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="Task key x is duplicated"):
        w.jobs.submit(
            run_name="dup",
            tasks=[
                jobs.SubmitTask(task_key="x", notebook_task=jobs.NotebookTask(notebook_path="/Shared/x")),
                jobs.SubmitTask(task_key="x", notebook_task=jobs.NotebookTask(notebook_path="/Shared/x")),
            ],
        )


def test_get_output_of_a_job_run_is_refused_and_a_task_run_answers(w: WorkspaceClient) -> None:
    """databricks-sdk-py#997 / apache/airflow#25427: runs/get-output on a job's run id is 400
    INVALID_PARAMETER_VALUE "Retrieving the output of runs with multiple tasks is not supported. Please
    retrieve the output of each individual task run instead." even for one task; a task run's id answers."""
    job_id = _job(w)
    with freeze_time(T0) as clock:
        run_id = w.jobs.run_now(job_id).run_id
        clock.tick(120)
        task_run_id = (w.jobs.get_run(run_id).tasks or [])[0].run_id
        with pytest.raises(InvalidParameterValue) as err:
            w.jobs.get_run_output(run_id)
        output = w.jobs.get_run_output(task_run_id)  # type: ignore[arg-type]

    assert str(err.value) == (
        "Retrieving the output of runs with multiple tasks is not supported. "
        "Please retrieve the output of each individual task run instead."
    )
    assert output.metadata is not None and output.metadata.run_id == task_run_id
    assert output.metadata.job_id == job_id
    assert _state(output.metadata) == "TERMINATED"
    assert output.notebook_output is not None


def test_repair_reruns_the_cancelled_tasks_as_new_task_runs(w: WorkspaceClient) -> None:
    """runs/repair (sdk JobsAPI.repair_run → {repair_id}): reruns tasks as new task runs (attempt_number + 1) and
    records `repair_history` (ORIGINAL, then REPAIR items); a second repair must name `latest_repair_id`."""
    job_id = _job(w, tasks=[_notebook("a"), _notebook("b", depends_on=[jobs.TaskDependency("a")])])
    with freeze_time(T0) as clock:
        run_id = w.jobs.run_now(job_id).run_id
        clock.tick(5)
        w.jobs.cancel_run(run_id)
        before = {t.task_key: t.run_id for t in w.jobs.get_run(run_id).tasks or []}
        repair_id = w.jobs.repair_run(run_id, rerun_all_failed_tasks=True).response.repair_id
        repaired = w.jobs.get_run(run_id)
        with pytest.raises(InvalidParameterValue, match="latest_repair_id"):
            w.jobs.repair_run(run_id, rerun_tasks=["a"])
        clock.tick(300)
        done = w.jobs.get_run(run_id)
        superseded = w.jobs.get_run(before["a"])  # type: ignore[arg-type]

    assert repair_id
    assert _state(repaired) in ("PENDING", "RUNNING")
    assert [h.type for h in repaired.repair_history or []] == [
        jobs.RepairHistoryItemType.ORIGINAL,
        jobs.RepairHistoryItemType.REPAIR,
    ]
    rerun = {t.task_key: t for t in done.tasks or [] if t.run_id not in before.values()}
    assert sorted(rerun) == ["a", "b"]
    assert {t.attempt_number for t in rerun.values()} == {1}
    assert _state(done) == "TERMINATED"
    assert done.state.result_state == jobs.RunResultState.SUCCESS  # type: ignore[union-attr]
    assert superseded.state.result_state == jobs.RunResultState.CANCELED  # type: ignore[union-attr]
    assert superseded.attempt_number == 0


def test_repair_of_an_active_run_is_refused(w: WorkspaceClient) -> None:
    job_id = _job(w)
    with freeze_time(T0):
        run_id = w.jobs.run_now(job_id).run_id
        with pytest.raises(InvalidParameterValue):
            w.jobs.repair_run(run_id, rerun_all_failed_tasks=True)


def test_export_of_a_notebook_task_run_answers_its_view(w: WorkspaceClient) -> None:
    """runs/export (sdk JobsAPI.export_run → GET /api/2.2/jobs/runs/export): {views: [{content, name, type}]},
    CODE by default; a notebook task run exports one NOTEBOOK view."""
    job_id = _job(w)
    with freeze_time(T0) as clock:
        run_id = w.jobs.run_now(job_id).run_id
        clock.tick(120)
        task_run_id = (w.jobs.get_run(run_id).tasks or [])[0].run_id
        exported = w.jobs.export_run(task_run_id)  # type: ignore[arg-type]
        dashboards = w.jobs.export_run(task_run_id, views_to_export=jobs.ViewsToExport.DASHBOARDS)  # type: ignore[arg-type]

    assert [(v.name, v.type) for v in exported.views or []] == [("a", jobs.ViewType.NOTEBOOK)]
    assert "<html" in (exported.views or [])[0].content  # type: ignore[operator]
    assert not dashboards.views


# -- timing -------------------------------------------------------------------------------------------
@pytest.fixture
def realistic() -> Iterator[EmulatorHandle]:
    handle = start_emulator(realistic_timing=True, seed=7)
    try:
        yield handle
    finally:
        handle.stop()


def test_realistic_timing_starts_clusters_in_three_to_five_minutes(realistic: EmulatorHandle) -> None:
    """A real cluster takes minutes from PENDING to RUNNING (sdk ClustersAPI.wait_get_cluster_running waits 20 min
    by default); the realistic profile draws 3-5 min per cluster, the same for the same seed."""
    w = sdk_client(realistic)
    with freeze_time(T0) as clock:
        cluster_id = w.clusters.create(
            cluster_name="c", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
        ).cluster_id
        clock.tick(170)
        assert w.clusters.get(cluster_id).state == compute.State.PENDING
        clock.tick(140)
        assert w.clusters.get(cluster_id).state == compute.State.RUNNING


def test_time_scale_shrinks_realistic_durations() -> None:
    handle = start_emulator(realistic_timing=True, time_scale=0.01)
    try:
        w = sdk_client(handle)
        with freeze_time(T0) as clock:
            cluster_id = w.clusters.create(
                cluster_name="c", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
            ).cluster_id
            clock.tick(3.1)
            assert w.clusters.get(cluster_id).state == compute.State.RUNNING
    finally:
        handle.stop()


def _durations(handle: EmulatorHandle, runs: int) -> list[int]:
    w = sdk_client(handle)
    job_id = _job(w, max_concurrent_runs=runs)
    with freeze_time(T0) as clock:
        run_ids = [w.jobs.run_now(job_id).run_id for _ in range(runs)]
        clock.tick(24 * 3600)
        done = [w.jobs.get_run(r) for r in run_ids]
    return [r.end_time - r.start_time for r in done]  # type: ignore[operator]


def test_realistic_run_durations_are_drawn_and_deterministic(realistic: EmulatorHandle) -> None:
    """Real runs last from seconds to hours; the realistic profile draws each run's duration (seeded), so two
    emulators with the same seed give the same durations and the runs differ from each other."""
    first = _durations(realistic, 6)
    again = start_emulator(realistic_timing=True, seed=7)
    try:
        second = _durations(again, 6)
    finally:
        again.stop()

    assert first == second
    assert len(set(first)) == 6
    assert all(d > 60_000 for d in first)  # a job cluster starts first: minutes, not the fast profile's 60 s


def test_emulator_command_takes_the_timing_profile() -> None:
    args = build_parser().parse_args(["emulator", "--realistic-timing", "--time-scale", "0.1", "--run-seconds", "30"])

    assert (args.realistic_timing, args.time_scale, args.run_seconds) == (True, 0.1, 30.0)


# -- serverless jobs ----------------------------------------------------------------------------------
SPEC = compute.Environment(
    client="2", dependencies=["pandas==2.2.2", "/Workspace/Shared/libs/etl-1.0-py3-none-any.whl"]
)


def test_a_serverless_job_is_accepted_and_round_trips(w: WorkspaceClient) -> None:
    """Serverless jobs: tasks without cluster fields run on serverless compute; Python script, wheel and dbt
    tasks name a job-level environment (sdk jobs.Task.environment_key docstring); a notebook task needs none."""
    job_id = w.jobs.create(
        name="serverless",
        environments=[jobs.JobEnvironment(environment_key="default", spec=SPEC)],
        tasks=[
            jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb")),
            jobs.Task(
                task_key="py",
                spark_python_task=jobs.SparkPythonTask(python_file="/Workspace/Shared/main.py"),
                environment_key="default",
                depends_on=[jobs.TaskDependency("nb")],
            ),
        ],
        performance_target=jobs.PerformanceTarget.PERFORMANCE_OPTIMIZED,
        budget_policy_id="budget-1",
    ).job_id

    settings = w.jobs.get(job_id).settings

    assert settings is not None
    assert [(e.environment_key, e.spec) for e in settings.environments or []] == [("default", SPEC)]
    assert settings.performance_target == jobs.PerformanceTarget.PERFORMANCE_OPTIMIZED
    assert settings.budget_policy_id == "budget-1"
    assert [t.environment_key for t in settings.tasks or []] == [None, "default"]


def test_a_serverless_python_task_without_an_environment_is_refused(w: WorkspaceClient) -> None:
    """databricks-sdk-py#1228: "An environment is required for serverless task <key>. Please define one using
    `environments` and `environment_key`. For more details, please refer to the API documentation at ..."."""
    with pytest.raises(InvalidParameterValue) as err:
        w.jobs.create(
            name="py",
            tasks=[jobs.Task(task_key="py", spark_python_task=jobs.SparkPythonTask(python_file="/Shared/main.py"))],
        )

    assert str(err.value).startswith(
        "An environment is required for serverless task py. Please define one using `environments` and "
        "`environment_key`. For more details, please refer to the API documentation at https://docs.databricks.com"
    )


def test_an_environment_key_must_name_a_job_environment(w: WorkspaceClient) -> None:
    """dbt-databricks#1055: "Job environment 'pymono' used by task inner_notebook is not defined in field
    'environments'." (400 INVALID_PARAMETER_VALUE)."""
    with pytest.raises(InvalidParameterValue) as err:
        w.jobs.create(
            name="x",
            environments=[jobs.JobEnvironment(environment_key="other", spec=SPEC)],
            tasks=[
                jobs.Task(
                    task_key="inner_notebook",
                    notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"),
                    environment_key="pymono",
                )
            ],
        )

    assert str(err.value) == (
        "Job environment 'pymono' used by task inner_notebook is not defined in field 'environments'."
    )


def test_environment_keys_are_unique_and_serverless_tasks_take_no_libraries(w: WorkspaceClient) -> None:
    """sdk jobs.JobEnvironment.environment_key: "It has to be unique within a job"; serverless tasks declare
    dependencies in their environment, not in `libraries` (Databricks serverless dependency docs)."""
    with pytest.raises(InvalidParameterValue, match="unique"):
        w.jobs.create(
            name="x",
            environments=[jobs.JobEnvironment("e", spec=SPEC), jobs.JobEnvironment("e", spec=SPEC)],
            tasks=[jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"))],
        )
    with pytest.raises(InvalidParameterValue, match=r"[Ll]ibraries"):
        w.jobs.create(
            name="x",
            tasks=[
                jobs.Task(
                    task_key="nb",
                    notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"),
                    libraries=[compute.Library(pypi=compute.PythonPyPiLibrary(package="pandas"))],
                )
            ],
        )


def test_a_serverless_run_starts_without_a_cluster(w: WorkspaceClient) -> None:
    """A serverless run starts in seconds and its tasks carry no cluster_instance."""
    job_id = w.jobs.create(
        name="s", tasks=[jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"))]
    ).job_id
    with freeze_time(T0) as clock:
        run_id = w.jobs.run_now(job_id).run_id  # type: ignore[arg-type]
        clock.tick(120)
        run = w.jobs.get_run(run_id)

    assert _state(run) == "TERMINATED"
    assert list(w.clusters.list()) == []
