"""Source jobs created or edited after the cutover's final sync: replicated once the source is paused, then run.

Step 3 pauses every unpaused source job. A job created after step 1's final sync had no copy on the target,
so step 4 had nothing to unpause and after the cutover it ran nowhere (only the report said "missing on the
target"); a job edited since ran on the target with its old schedule. Each test edits the source the way
a user does, between two steps of a real cutover (the runbook's progress hook), and looks at both sides.

A late job's ACL comes with it: its owner is whom a job without run_as runs as, and a copy whose ACL no one wrote is
owned by dbsync's own principal (often a workspace admin) on the new primary.

A job already paused on the source (or without a trigger) and edited after the final sync is late too: its copy kept
the old settings, which whoever unpaused it on the new primary later ran. It is written, and stays paused.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import iam, jobs
from databricks.sdk.service.workspace import ImportFormat
from test_cutover import ENVIRONMENTS, READY, TASKS, _cron, _running, _states

from dbsync.cutover import SOURCE_ROW, TARGET_ROW, CutoverError, Runbook, format_report, open_cutover_context
from dbsync.role import MARKER_PATH
from dbsync.store.versions import Versions, versions_path

ON = jobs.PauseStatus.UNPAUSED
LATE_CRON, EDITED_CRON = "0 15 2 * * ?", "0 30 6 * * ?"


def _edit_schedule(w: Any, job_id: int) -> None:
    """The job's schedule changed on the source (EDITED_CRON), still unpaused: as edited in the Jobs UI."""
    schedule = jobs.CronSchedule(quartz_cron_expression=EDITED_CRON, timezone_id="UTC", pause_status=ON)
    w.jobs.update(job_id, new_settings=jobs.JobSettings(schedule=schedule))


def _settings(w: Any, name: str) -> dict[str, Any]:
    """A job's settings as the workspace shows them, found by name."""
    return next(j for j in w.jobs.list(expand_tasks=True) if j.settings.name == name).settings.as_dict()


def _after_validation(edit: Any) -> Any:
    """A progress hook that edits the source once, after the final sync and validation, before step 3 pauses it."""
    done: list[bool] = []

    def progress(event: str, name: str, detail: dict) -> None:
        if event == "step" and name == "validate" and detail["state"] == "done" and not done:
            done.append(True)
            edit()

    return progress


@pytest.fixture
def nightly(pair: Pair) -> Pair:
    """One unpaused scheduled source job, replicated (paused) to the target."""
    pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON))
    pair.sync(**READY)
    return pair


def test_a_job_created_after_the_final_sync_runs_on_the_target_after_the_cutover(nightly: Pair) -> None:
    pair = nightly
    source_before: dict[str, dict[str, str]] = {}

    def create_late_job() -> None:
        schedule = jobs.CronSchedule(quartz_cron_expression=LATE_CRON, timezone_id="UTC", pause_status=ON)
        pair.src.jobs.create(name="late", tasks=TASKS, environments=ENVIRONMENTS, schedule=schedule)
        source_before.update(_states(pair.src))

    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, progress=_after_validation(create_late_job)).run()

    assert _running(_states(pair.dst)) == {"nightly", "late"}, "the late job runs on the new primary"
    assert _running(_states(pair.src)) == set()
    copy = _settings(pair.dst, "late")
    assert copy["schedule"]["quartz_cron_expression"] == LATE_CRON
    assert [t["notebook_task"]["notebook_path"] for t in copy["tasks"]] == ["/x"]
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert "1 late job(s) replicated" in step3["summary"]
    step4 = next(s for s in document["steps"] if s["step"] == "unpause_target")
    assert "missing on the target" not in step4["summary"]
    late = next(j for j in document["jobs"] if j["name"] == "late")
    assert late["source_after"] == {"schedule": "PAUSED"} and late["target_after"] == {"schedule": "UNPAUSED"}

    Runbook(ctx).rollback()
    assert _states(pair.src) == source_before, "the late job runs on the source again"
    assert _running(_states(pair.dst)) == set(), "its copy is a paused standby copy again"
    ctx.store.close()


def test_a_schedule_edited_after_the_final_sync_is_the_one_the_target_runs(nightly: Pair) -> None:
    pair = nightly
    job_id = next(j.job_id for j in pair.src.jobs.list() if j.settings.name == "nightly")

    def edit_schedule() -> None:
        _edit_schedule(pair.src, job_id)

    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, progress=_after_validation(edit_schedule)).run()

    copy = _settings(pair.dst, "nightly")
    assert copy["schedule"] == {"quartz_cron_expression": EDITED_CRON, "timezone_id": "UTC", "pause_status": "UNPAUSED"}
    assert _states(pair.src)["nightly"] == {"schedule": "PAUSED"}
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert "1 late job(s) replicated" in step3["summary"]
    ctx.store.close()


def _create_job_on_a_new_cluster(pair: Pair) -> None:
    """A scheduled source job on an interactive cluster, both made after the final sync: the job waits on it."""
    cluster = pair.src.clusters.create(
        cluster_name="late cluster", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
    ).response
    task = jobs.Task(
        task_key="t", existing_cluster_id=cluster.cluster_id, notebook_task=jobs.NotebookTask(notebook_path="/x")
    )
    pair.src.jobs.create(name="on a new cluster", tasks=[task], schedule=_cron(ON))


def test_a_late_job_that_cannot_be_replicated_stops_the_cutover_before_it_runs_nowhere(nightly: Pair) -> None:
    pair = nightly
    ctx = open_cutover_context(pair.settings(**READY))
    with pytest.raises(CutoverError, match="on a new cluster") as failed:
        Runbook(ctx, progress=_after_validation(lambda: _create_job_on_a_new_cluster(pair))).run()
    assert "--rollback" in str(failed.value)
    assert ctx.store.cutover_steps()["pause_source"]["state"] == "failed"
    assert "on a new cluster" not in _states(pair.dst)

    Runbook(ctx).rollback()
    assert _running(_states(pair.src)) == {"nightly", "on a new cluster"}
    assert _running(_states(pair.dst)) == set()
    ctx.store.close()


def test_force_cuts_over_without_a_late_job_it_cannot_replicate_and_names_it(nightly: Pair) -> None:
    pair = nightly
    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, force=True, progress=_after_validation(lambda: _create_job_on_a_new_cluster(pair))).run()
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert step3["state"] == "done"
    assert "0 late job(s) replicated" in step3["summary"] and "1 not, e.g." in step3["summary"]
    assert "on a new cluster" in step3["summary"] and "they run nowhere" in step3["summary"]
    assert _running(_states(pair.dst)) == {"nightly"}
    ctx.store.close()


def test_late_jobs_are_never_written_into_a_target_promoted_by_another_cutover_meanwhile(nightly: Pair) -> None:
    pair = nightly
    marked: list[bool] = []

    def create_late_job() -> None:
        pair.src.jobs.create(name="late", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON))

    def progress(event: str, name: str, detail: dict) -> None:
        after_validation(event, name, detail)
        if event == "job" and name.startswith(SOURCE_ROW) and not marked:
            marked.append(True)  # step 3 marked the target promoting; someone else's cutover marks it primary
            other = {"dbsync_role_marker": 1, "role": "primary", "workspace_id": "", "peer_workspace_id": "4242"}
            content = base64.b64encode(json.dumps(other).encode()).decode()
            pair.dst.workspace.import_(MARKER_PATH, content=content, format=ImportFormat.RAW, overwrite=True)

    after_validation = _after_validation(create_late_job)
    ctx = open_cutover_context(pair.settings(**READY))
    with pytest.raises(CutoverError, match="late"):
        Runbook(ctx, progress=progress).run()
    assert "late" not in _states(pair.dst)
    failed = ctx.store.cutover_steps()["pause_source"]["detail"]["failed"]
    assert any("'primary', not promoting by this cutover" in message for message in failed), failed
    ctx.store.close()


def _acl(w: Any, name: str) -> set[tuple[str, str]]:
    """A job's direct ACL entries as (principal, level), the job found by name, the admins group's left out."""
    job_id = next(j.job_id for j in w.jobs.list() if j.settings.name == name)
    acl = w.permissions.get("jobs", str(job_id)).as_dict().get("access_control_list") or []
    principal = ("user_name", "group_name", "service_principal_name")
    return {
        (next(entry[f] for f in principal if entry.get(f)), p["permission_level"])
        for entry in acl
        for p in entry.get("all_permissions") or []
        if not p.get("inherited") and entry.get("group_name") != "admins"
    }


def _owned_by(w: Any, job_id: int, owner: str, manager: str | None = None) -> None:
    """The source job's ACL: `owner` owns it (and `manager` may manage it), as its creator sets it in the UI."""
    acl = [iam.AccessControlRequest(user_name=owner, permission_level=iam.PermissionLevel.IS_OWNER)]
    if manager:
        acl.append(iam.AccessControlRequest(user_name=manager, permission_level=iam.PermissionLevel.CAN_MANAGE))
    w.permissions.set("jobs", str(job_id), access_control_list=acl)


@pytest.fixture
def people(pair: Pair) -> Pair:
    """alice and carol on the source, and `nightly`: all replicated (the users created on the target)."""
    for user in ("alice@example.com", "carol@example.com"):
        pair.src.users.create(user_name=user)
    pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON))
    pair.sync(**READY)
    return pair


def _create_owned_late_job(pair: Pair, owner: str) -> None:
    job_id = pair.src.jobs.create(name="late", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON)).job_id
    _owned_by(pair.src, job_id, owner, manager="carol@example.com")


def test_a_late_job_is_owned_on_the_new_primary_by_its_source_owner_not_by_dbsync(people: Pair) -> None:
    pair = people
    ctx = open_cutover_context(pair.settings(**READY))
    Runbook(ctx, progress=_after_validation(lambda: _create_owned_late_job(pair, "alice@example.com"))).run()

    assert _running(_states(pair.dst)) == {"nightly", "late"}
    assert _acl(pair.dst, "late") == {("alice@example.com", "IS_OWNER"), ("carol@example.com", "CAN_MANAGE")}
    ctx.store.close()


def test_the_acl_of_a_job_edited_after_the_final_sync_follows_it(people: Pair) -> None:
    pair = people
    job_id = next(j.job_id for j in pair.src.jobs.list() if j.settings.name == "nightly")

    def edit_schedule_and_owner() -> None:
        _edit_schedule(pair.src, job_id)
        _owned_by(pair.src, job_id, "alice@example.com")

    ctx = open_cutover_context(pair.settings(**READY))
    Runbook(ctx, progress=_after_validation(edit_schedule_and_owner)).run()

    assert _settings(pair.dst, "nightly")["schedule"]["quartz_cron_expression"] == EDITED_CRON
    assert ("alice@example.com", "IS_OWNER") in _acl(pair.dst, "nightly")
    assert _running(_states(pair.dst)) == {"nightly"}
    ctx.store.close()


def _late_job_owned_by_a_new_user(pair: Pair) -> None:
    """dave joins the source after the final sync and creates a job: the target has no dave."""
    pair.src.users.create(user_name="dave@example.com")
    _create_owned_late_job(pair, "dave@example.com")


def test_a_late_job_whose_owner_the_target_lacks_stops_the_cutover_paused_until_the_owner_exists(
    people: Pair,
) -> None:
    pair = people
    ctx = open_cutover_context(pair.settings(**READY))
    with pytest.raises(CutoverError, match=r"late\).*dave@example.com does not exist on the target"):
        Runbook(ctx, progress=_after_validation(lambda: _late_job_owned_by_a_new_user(pair))).run()
    assert ctx.store.cutover_steps()["pause_source"]["state"] == "failed"
    assert _states(pair.dst)["late"] == {"schedule": "PAUSED"}, "its copy is there, paused: not run as dbsync"

    pair.dst.users.create(user_name="dave@example.com")  # what the failure asks for; then the cutover goes on
    Runbook(ctx).run()
    assert _running(_states(pair.dst)) == {"nightly", "late"}
    assert ("dave@example.com", "IS_OWNER") in _acl(pair.dst, "late")
    ctx.store.close()


def test_force_cuts_over_leaving_paused_a_late_job_whose_owner_the_target_lacks(people: Pair) -> None:
    pair = people
    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, force=True, progress=_after_validation(lambda: _late_job_owned_by_a_new_user(pair))).run()

    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert step3["state"] == "done"
    assert "1 not, e.g." in step3["summary"] and "dave@example.com does not exist on the target" in step3["summary"]
    step4 = next(s for s in document["steps"] if s["step"] == "unpause_target")
    assert "1 late job(s) left paused" in step4["summary"]
    assert _running(_states(pair.dst)) == {"nightly"}, "the late job does not run as dbsync's principal"
    assert _running(_states(pair.src)) == set()
    ctx.store.close()


def _stopped_after_step_3(edit: Any) -> Any:
    """`_after_validation(edit)`, and the run stopped (a Ctrl-C) as step 4 starts: step 3 is done and recorded."""
    after_validation = _after_validation(edit)

    def progress(event: str, name: str, detail: dict) -> None:
        after_validation(event, name, detail)
        if event == "step" and name == "unpause_target" and detail["state"] == "running":
            raise KeyboardInterrupt

    return progress


def test_the_plan_after_a_forced_step_3_says_a_held_late_job_stays_paused_and_why(
    people: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = people
    ctx = open_cutover_context(pair.settings(**READY))
    with pytest.raises(KeyboardInterrupt):
        Runbook(ctx, force=True, progress=_stopped_after_step_3(lambda: _late_job_owned_by_a_new_user(pair))).run()
    ctx.store.close()

    code, out, err = run_cli(pair, monkeypatch, capsys, "cutover", "--dry-run")
    assert code == 0, err
    step4 = next(line for line in out.splitlines() if "unpause_target" in line)
    # nightly's copy was unpaused in step 3; the late job's stays paused: it would run as dbsync's principal.
    assert "unpause 0 target job(s)" in step4, step4
    assert "1 late job(s) stay paused (held: their ACL is not copied)" in step4, step4
    assert "(late): " in step4 and "dave@example.com does not exist on the target" in step4, step4

    ctx = open_cutover_context(pair.settings(**READY))
    Runbook(ctx).run()  # resumed: step 4 leaves it paused, as the plan said
    assert _running(_states(pair.dst)) == {"nightly"}
    ctx.store.close()


def test_the_record_and_report_say_an_edited_late_job_whose_acl_is_not_copied_stays_paused(people: Pair) -> None:
    pair = people
    job_id = next(j.job_id for j in pair.src.jobs.list() if j.settings.name == "nightly")

    def edit_schedule_and_give_it_to_a_new_user() -> None:
        _edit_schedule(pair.src, job_id)
        pair.src.users.create(user_name="dave@example.com")  # not on the target
        _owned_by(pair.src, job_id, "dave@example.com")

    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, force=True, progress=_after_validation(edit_schedule_and_give_it_to_a_new_user)).run()

    assert _states(pair.dst)["nightly"] == {"schedule": "PAUSED"}, "held: it does not run as dbsync's principal"
    copy_id = str(next(j.job_id for j in pair.dst.jobs.list() if j.settings.name == "nightly"))
    row = ctx.store.cutover_steps()[TARGET_ROW + copy_id]
    assert row["state"] == "paused" and row["detail"]["held"] == "paused (held: its ACL is not copied)", row
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert "(their 0 target copies unpaused as each was)" in step3["summary"], step3["summary"]
    entry = next(j for j in document["jobs"] if j["name"] == "nightly")
    assert entry["target_after"] == {"schedule": "PAUSED"}
    assert entry["note"] == "paused (held: its ACL is not copied)"
    line = next(line for line in format_report(document).splitlines() if line.startswith("nightly"))
    assert line.endswith("paused (held: its ACL is not copied)"), line

    Runbook(ctx).rollback()
    assert _running(_states(pair.src)) == {"nightly"} and _running(_states(pair.dst)) == set()
    ctx.store.close()


# -- late jobs that were paused on the source already: step 3 did not pause them, their copy must still be current --
OFF = jobs.PauseStatus.PAUSED
EDITED_TASKS = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/y"))]


@pytest.fixture
def seasonal(people: Pair) -> Pair:
    """`people` and `seasonal`, a scheduled job paused on the source (unpaused for its season): replicated."""
    people.src.jobs.create(name="seasonal", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(OFF))
    people.sync(**READY)
    return people


def _edit_paused_job(pair: Pair, name: str, tasks: list[jobs.Task] = EDITED_TASKS) -> None:
    """Its tasks and schedule changed and alice made its owner, the job left paused: as edited in the Jobs UI."""
    job_id = next(j.job_id for j in pair.src.jobs.list() if j.settings.name == name)
    schedule = jobs.CronSchedule(quartz_cron_expression=EDITED_CRON, timezone_id="UTC", pause_status=OFF)
    pair.src.jobs.update(job_id, new_settings=jobs.JobSettings(schedule=schedule, tasks=tasks))
    _owned_by(pair.src, job_id, "alice@example.com")


def test_a_paused_job_edited_after_the_final_sync_has_its_new_settings_on_the_new_primary_still_paused(
    seasonal: Pair,
) -> None:
    pair = seasonal

    def edit_one_paused_job_and_create_another() -> None:
        _edit_paused_job(pair, "seasonal")
        schedule = jobs.CronSchedule(quartz_cron_expression=LATE_CRON, timezone_id="UTC", pause_status=OFF)
        job_id = pair.src.jobs.create(name="drafted", tasks=TASKS, environments=ENVIRONMENTS, schedule=schedule).job_id
        _owned_by(pair.src, job_id, "carol@example.com")

    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, progress=_after_validation(edit_one_paused_job_and_create_another)).run()

    edited = _settings(pair.dst, "seasonal")
    assert edited["schedule"] == {"quartz_cron_expression": EDITED_CRON, "timezone_id": "UTC", "pause_status": "PAUSED"}
    assert [t["notebook_task"]["notebook_path"] for t in edited["tasks"]] == ["/y"], "whoever unpauses it runs /y"
    assert ("alice@example.com", "IS_OWNER") in _acl(pair.dst, "seasonal")
    drafted = _settings(pair.dst, "drafted")
    assert drafted["schedule"]["quartz_cron_expression"] == LATE_CRON
    assert ("carol@example.com", "IS_OWNER") in _acl(pair.dst, "drafted")
    assert _running(_states(pair.dst)) == {"nightly"}, "nothing paused on the source was unpaused on the target"
    assert _running(_states(pair.src)) == set()

    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert "2 late job(s) replicated" in step3["summary"], step3["summary"]
    assert "2 of them paused on the source (or without a trigger): their copies stay paused" in step3["summary"], step3[
        "summary"
    ]
    detail = ctx.store.cutover_steps()["pause_source"]["detail"]
    assert sorted(detail["late_jobs_paused"]) == sorted(
        str(j.job_id) for j in pair.src.jobs.list() if j.settings.name in ("seasonal", "drafted")
    )
    for name in ("seasonal", "drafted"):
        entry = next(j for j in document["jobs"] if j["name"] == name)
        assert entry["target_after"] == {"schedule": "PAUSED"}, entry
        assert entry["note"] == "replicated in step 3 (changed after the final sync); not unpaused, as on the source", (
            entry
        )
    ctx.store.close()


def test_a_job_without_a_trigger_edited_after_the_final_sync_has_its_new_tasks_on_the_new_primary(people: Pair) -> None:
    pair = people
    job_id = pair.src.jobs.create(name="on demand", tasks=TASKS, environments=ENVIRONMENTS).job_id  # run by hand
    pair.sync(**READY)

    def edit_its_tasks() -> None:
        pair.src.jobs.update(job_id, new_settings=jobs.JobSettings(tasks=EDITED_TASKS))

    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, progress=_after_validation(edit_its_tasks)).run()

    copy = _settings(pair.dst, "on demand")
    assert [t["notebook_task"]["notebook_path"] for t in copy["tasks"]] == ["/y"], "a run now runs /y"
    assert not any(f in copy for f in ("schedule", "trigger", "continuous"))
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert "1 late job(s) replicated" in step3["summary"], step3["summary"]
    ctx.store.close()


def test_the_dry_run_says_step_3_replicates_late_jobs_paused_on_the_source_and_leaves_them_paused(
    seasonal: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(seasonal, monkeypatch, capsys, "cutover", "--dry-run")
    assert code == 0, err
    step3 = next(line for line in out.splitlines() if "pause_source" in line)
    assert "then replicate the jobs created or edited on the source after the final sync" in step3, step3
    assert "those paused there (or without a trigger) stay paused" in step3, step3


def test_a_paused_late_job_that_cannot_be_replicated_stops_the_cutover_naming_it(seasonal: Pair) -> None:
    pair = seasonal

    def point_the_paused_job_at_a_new_cluster() -> None:
        cluster = pair.src.clusters.create(
            cluster_name="late cluster", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
        ).response
        task = jobs.Task(
            task_key="t", existing_cluster_id=cluster.cluster_id, notebook_task=jobs.NotebookTask(notebook_path="/y")
        )
        _edit_paused_job(pair, "seasonal", tasks=[task])

    ctx = open_cutover_context(pair.settings(**READY))
    with pytest.raises(CutoverError, match=r"\(seasonal\)") as failed:
        Runbook(ctx, progress=_after_validation(point_the_paused_job_at_a_new_cluster)).run()
    assert "--rollback" in str(failed.value)
    assert _settings(pair.dst, "seasonal")["schedule"]["quartz_cron_expression"] != EDITED_CRON
    assert _states(pair.dst)["seasonal"] == {"schedule": "PAUSED"}
    ctx.store.close()


def test_force_leaves_a_paused_late_job_whose_owner_the_target_lacks_held_and_paused(seasonal: Pair) -> None:
    pair = seasonal
    job_id = next(j.job_id for j in pair.src.jobs.list() if j.settings.name == "seasonal")

    def edit_it_and_give_it_to_a_new_user() -> None:
        _edit_paused_job(pair, "seasonal")
        pair.src.users.create(user_name="dave@example.com")  # not on the target
        _owned_by(pair.src, job_id, "dave@example.com")

    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, force=True, progress=_after_validation(edit_it_and_give_it_to_a_new_user)).run()

    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert step3["state"] == "done"
    assert "(seasonal)" in step3["summary"] and "dave@example.com does not exist on the target" in step3["summary"]
    assert _states(pair.dst)["seasonal"] == {"schedule": "PAUSED"}
    assert _running(_states(pair.dst)) == {"nightly"}
    entry = next(j for j in document["jobs"] if j["name"] == "seasonal")
    assert entry["note"] == "paused (held: its ACL is not copied)"
    ctx.store.close()


# -- the jobs kind disabled: the target's jobs are the DR team's, and the cutover writes none of its own --------------
JOBS_OFF = {**READY, "kinds": {"jobs": {"enabled": False}}}


def _dr_team_job(pair: Pair, name: str) -> int:
    """A job the DR team deployed on the standby itself, unpaused (it is theirs to run): its id."""
    return pair.dst.jobs.create(name=name, tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON)).job_id


def _pause_state(w: Any, job_id: int) -> str:
    return w.jobs.get(job_id).settings.schedule.pause_status.value


def test_with_the_jobs_kind_disabled_the_cutover_copies_no_source_job_to_the_new_primary(pair: Pair) -> None:
    pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON))
    pair.src.jobs.create(name="seasonal", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(OFF))
    pair.src.jobs.create(name="on demand", tasks=TASKS, environments=ENVIRONMENTS)  # no trigger: run by API
    dr_job = _dr_team_job(pair, "dr nightly")
    pair.sync(**JOBS_OFF)

    ctx = open_cutover_context(pair.settings(**JOBS_OFF))

    def create_late_jobs() -> None:
        pair.src.jobs.create(name="late", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON))
        pair.src.jobs.create(name="late and paused", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(OFF))

    document = Runbook(ctx, progress=_after_validation(create_late_jobs)).run()

    assert sorted(_states(pair.dst)) == ["dr nightly"], "no copy of a source job on the new primary"
    assert _pause_state(pair.dst, dr_job) == "UNPAUSED", "the DR team's job is left as they have it"
    assert _running(_states(pair.src)) == set(), "the old primary runs nothing beside the new one"
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert "no late job replicated: the jobs kind is disabled (kinds.jobs.enabled: false)" in step3["summary"], step3[
        "summary"
    ]
    ctx.store.close()


def test_with_the_jobs_kind_disabled_after_a_sync_the_cutover_never_unpauses_dbsyncs_old_copies(pair: Pair) -> None:
    pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON))
    pair.sync(**READY)  # replicated once: dbsync's copy is on the standby, paused
    old_copy = next(j.job_id for j in pair.dst.jobs.list() if j.settings.name == "nightly")
    dr_job = _dr_team_job(pair, "nightly")  # then the DR team took the jobs over: their own nightly
    pair.sync(**JOBS_OFF)

    ctx = open_cutover_context(pair.settings(**JOBS_OFF))
    document = Runbook(ctx).run()

    assert _pause_state(pair.dst, old_copy) == "PAUSED", "dbsync's stale copy would run beside the DR team's nightly"
    assert _pause_state(pair.dst, dr_job) == "UNPAUSED"
    assert _running(_states(pair.src)) == set()
    step4 = next(s for s in document["steps"] if s["step"] == "unpause_target")
    assert "the jobs kind is disabled (kinds.jobs.enabled: false): no target job unpaused" in step4["summary"], step4[
        "summary"
    ]
    ctx.store.close()


def test_the_dry_run_with_the_jobs_kind_disabled_says_no_job_is_replicated_or_unpaused(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON))
    pair.sync(**READY)
    pair.sync(**JOBS_OFF)

    jobs_off = {"DBSYNC_KINDS__JOBS__ENABLED": "false"}
    code, out, err = run_cli(pair, monkeypatch, capsys, "cutover", "--dry-run", env=jobs_off)
    assert code == 0, err
    step3 = next(line for line in out.splitlines() if "pause_source" in line)
    assert "pause 1 source job(s)" in step3, step3
    assert "no late job replicated: the jobs kind is disabled" in step3, step3
    assert "then replicate the jobs created or edited" not in step3, step3
    step4 = next(line for line in out.splitlines() if "unpause_target" in line)
    assert "unpause 0 target job(s)" in step4 and "the jobs kind is disabled" in step4, step4


# -- a job pinned by `dbsync restore --pin`: the user's explicit choice, which step 3 does not overwrite ---------------
def test_step_3_leaves_a_pinned_restored_job_as_restored_and_says_so(
    nightly: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = nightly
    job_id = next(j.job_id for j in pair.src.jobs.list() if j.settings.name == "nightly")
    pair.src.jobs.update(job_id, new_settings=jobs.JobSettings(tasks=EDITED_TASKS))  # a bad edit, replicated
    pair.sync(**READY)
    first = Versions(versions_path(pair.state_path)).history("jobs", str(job_id))[0]
    code, _, err = run_cli(pair, monkeypatch, capsys, "restore", "--version", str(first.id), "--apply", "--pin")
    assert code == 0, err
    assert [t["notebook_task"]["notebook_path"] for t in _settings(pair.dst, "nightly")["tasks"]] == ["/x"]

    ctx = open_cutover_context(pair.settings(**READY))
    document = Runbook(ctx, force=True).run()  # pinned: not ready, so --force

    copy = _settings(pair.dst, "nightly")
    assert [t["notebook_task"]["notebook_path"] for t in copy["tasks"]] == ["/x"], "the pinned restore is kept"
    assert _running(_states(pair.dst)) == {"nightly"}, "it runs on the new primary as it ran on the source"
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert "0 late job(s) replicated" in step3["summary"], step3["summary"]
    assert f"1 pinned by `dbsync restore --pin` left as restored, e.g. job {job_id} (nightly)" in step3["summary"]
    ctx.store.close()


def test_step_3_leaves_the_pinned_restored_acl_of_a_late_job(
    people: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = people
    job_id = next(j.job_id for j in pair.src.jobs.list() if j.settings.name == "nightly")
    every_acl_read = {**READY, "kinds": {"permissions": {"max_staleness": 0}}}  # not an hour later: at once
    _owned_by(pair.src, job_id, "alice@example.com")
    pair.sync(**every_acl_read)
    _owned_by(pair.src, job_id, "carol@example.com")  # a wrong hand-over, replicated; alice's ACL restored and pinned
    pair.sync(**every_acl_read)
    alices = Versions(versions_path(pair.state_path)).history("permissions", f"jobs:{job_id}")[-2]
    code, _, err = run_cli(pair, monkeypatch, capsys, "restore", "--version", str(alices.id), "--apply", "--pin")
    assert code == 0, err
    assert ("alice@example.com", "IS_OWNER") in _acl(pair.dst, "nightly")

    def edit_schedule() -> None:
        _edit_schedule(pair.src, job_id)

    ctx = open_cutover_context(pair.settings(**READY))
    Runbook(ctx, force=True, progress=_after_validation(edit_schedule)).run()  # pinned: not ready, so --force

    assert _settings(pair.dst, "nightly")["schedule"]["quartz_cron_expression"] == EDITED_CRON, "the job is late"
    assert ("alice@example.com", "IS_OWNER") in _acl(pair.dst, "nightly"), "its pinned ACL is kept"
    assert _running(_states(pair.dst)) == {"nightly"}
    ctx.store.close()
