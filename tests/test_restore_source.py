"""`dbsync restore --to source` (issue 18, item 3): put the source itself back as it was before a bad edit.

A script overwrites notebooks with junk, deletes one, renames a job and deletes another; the next cycle copies
the damage to the standby. `restore --at T --to source --apply --yes` writes the source's own form back: compared
independently through the SDK with what the source held at T (each job once, its schedule as unpaused as it
was, no dbsync tag on the source), nothing created after T deleted, and the next cycle brings the standby to the
restored source. A dry run (the default) writes nothing; a plan over `updates.min_count` objects needs --yes.
The Jobs API (2.1 jobs/reset) replaces all settings, so a reset with the kept settings is a full restore.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language, ObjectType

from dbsync.config import MappingSettings, Settings, reversed_settings
from dbsync.mapping import PrincipalMap, SourceForm
from dbsync.model import ref
from dbsync.restore_source import SourceFence
from dbsync.role import WriteFenced
from dbsync.roles import StoreRole
from dbsync.store import Store

APP = "/Shared/app"


def _write(w: WorkspaceClient, path: str, text: str) -> None:
    content = base64.b64encode(text.encode()).decode()
    w.workspace.import_(path, content=content, format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)


def _job(w: WorkspaceClient, name: str, notebook: str, scheduled: bool = False) -> int:
    task = jobs.Task(task_key="main", notebook_task=jobs.NotebookTask(notebook_path=notebook))
    unpaused = jobs.PauseStatus.UNPAUSED
    cron = jobs.CronSchedule(quartz_cron_expression="0 0 5 * * ?", timezone_id="UTC", pause_status=unpaused)
    schedule = cron if scheduled else None
    return w.jobs.create(name=name, tasks=[task], schedule=schedule, tags={"team": "data"}).job_id or 0


def _state(w: WorkspaceClient) -> dict[str, Any]:
    """What a person would compare: the app's notebooks and their source; jobs by name: task, schedule, tags."""
    notebooks = {
        o.path: w.workspace.download(o.path).read()
        for o in w.workspace.list(APP)
        if o.object_type == ObjectType.NOTEBOOK and o.path
    }
    named = [(j.settings.name, j.job_id) for j in w.jobs.list() if j.settings]
    details = {}
    for name, job_id in named:
        settings = w.jobs.get(job_id).settings
        task = (settings.tasks or [])[0]
        paused = settings.schedule.pause_status if settings.schedule else None
        schedule = paused.value if paused else None
        details[name] = (task.notebook_task.notebook_path if task.notebook_task else None, schedule, settings.tags)
    return {"notebooks": notebooks, "job_names": sorted(n for n, _ in named), "jobs": details}


def _dbsync(pair: Pair, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbsync.cli", *args],
        capture_output=True,
        text=True,
        env={**pair.env(), **env},
        timeout=300,
    )


def _source_writes(pair: Pair) -> int:
    return sum(v["count"] for k, v in pair.source.stats.document()["endpoints"].items() if not k.startswith("GET"))


def _good_then_bad(pair: Pair) -> tuple[float, dict[str, Any]]:
    src = pair.src
    src.workspace.mkdirs(APP)
    for i in range(6):
        _write(src, f"{APP}/nb{i}", f"# good {i}\n" + "x = 1\n" * 20)
    _job(src, "etl", f"{APP}/nb0", scheduled=True)
    doomed = _job(src, "report", f"{APP}/nb1")
    pair.sync()
    good = _state(src)
    moment = time.time()

    _write(src, f"{APP}/nb2", "# junk\n")
    _write(src, f"{APP}/nb3", "# junk\n")
    src.workspace.delete(f"{APP}/nb4")
    _write(src, f"{APP}/added_later", "# new after the moment\n")
    etl = next(j.job_id for j in src.jobs.list() if j.settings and j.settings.name == "etl")
    src.jobs.update(etl, new_settings=jobs.JobSettings(name="etl-junk"))
    src.jobs.delete(doomed)
    pair.sync()
    assert _state(pair.dst)["job_names"] == ["etl-junk"], "the bad change reached the standby"
    return moment, good


def test_restore_to_source_puts_the_source_back_and_the_next_cycle_follows(pair: Pair) -> None:
    moment, good = _good_then_bad(pair)
    bad = _state(pair.src)

    pair.reset_stats()
    plan = _dbsync(pair, "restore", "--at", str(moment), "--to", "source")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert _source_writes(pair) == 0 and pair.target_writes() == 0, "--dry-run is the default: nothing written"
    assert f"write   notebooks            {APP}/nb4" in plan.stdout
    assert f"keep    notebooks            {APP}/added_later" in plan.stdout, "never deleted on the source"
    assert "to the source planned (dry run: pass --apply to write)" in plan.stdout
    assert f"write   permissions          notebooks:{APP}/nb4" in plan.stdout, "its ACL, after the notebook"
    assert _state(pair.src) == bad

    only = ("--kinds", "notebooks,jobs")
    refused = _dbsync(
        pair, "restore", "--at", str(moment), "--to", "source", *only, "--apply", DBSYNC_UPDATES__MIN_COUNT="3"
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--yes" in refused.stderr
    assert _source_writes(pair) == 0

    applied = _dbsync(
        pair, "restore", "--at", str(moment), "--to", "source", *only, "--apply", "--yes", DBSYNC_UPDATES__MIN_COUNT="3"
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert pair.target_writes() == 0, "a restore to the source writes nothing on the target"
    assert "5 change(s) to the source applied" in applied.stdout

    restored = _state(pair.src)
    assert {p: b for p, b in restored["notebooks"].items() if p != f"{APP}/added_later"} == good["notebooks"]
    assert f"{APP}/added_later" in restored["notebooks"], "created after the moment: kept, never deleted"
    assert restored["job_names"] == good["job_names"], "each job once: nothing duplicated"
    assert restored["jobs"] == good["jobs"], "task, schedule UNPAUSED as it was, the source's own tags only"
    for job in pair.src.jobs.list():
        assert not [t for t in (job.settings.tags or {}) if t.startswith("dbsync_")], "no dbsync tag on the source"

    store = Store(pair.state_path)
    try:
        events = [e for e in store.events(limit=100) if e["action"] == "restore-source"]
    finally:
        store.close()
    assert len([e for e in events if e["outcome"] == "restored"]) == 5  # nb2, nb3, nb4, etl, report

    pair.sync()
    target, source = _state(pair.dst), _state(pair.src)
    assert target["notebooks"] == source["notebooks"], "the next cycle replicates the restored source"
    assert target["job_names"] == source["job_names"]
    assert {n: j[0] for n, j in target["jobs"].items()} == {n: j[0] for n, j in source["jobs"].items()}


def test_restore_to_source_of_one_version_writes_only_that_object(pair: Pair) -> None:
    _good_then_bad(pair)
    listed = _dbsync(pair, "history", f"notebooks:{APP}/nb2")
    first = listed.stdout.splitlines()[1].split()[0]
    pair.reset_stats()
    applied = _dbsync(pair, "restore", "--version", first, "--to", "source", "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert b"# good 2\n" in pair.src.workspace.download(f"{APP}/nb2").read()
    assert b"# junk" in pair.src.workspace.download(f"{APP}/nb3").read(), "only the chosen object"
    assert pair.target_writes() == 0


def test_the_source_fence_lets_only_the_planned_writes_through(pair: Pair) -> None:
    """The source is the primary: during a restore its fence refuses every write but the permitted object's, and
    all of them once the store is no longer a standby's (a cutover made the target the primary)."""
    ctx = pair.context()
    try:
        fence = SourceFence(ctx.store.writer_flags)
        ctx.source.fence = fence
        with pytest.raises(WriteFenced, match="writes to it only for a planned"):
            ctx.source.client.workspace.mkdirs("/Shared/unplanned")
        with fence.permit("directories /Shared/planned"):
            ctx.source.client.workspace.mkdirs("/Shared/planned")
        ctx.store.set_meta("role", StoreRole.CUTOVER_COMPLETE)
        with fence.permit("directories /Shared/late"), pytest.raises(WriteFenced, match="no longer be the primary"):
            ctx.source.client.workspace.mkdirs("/Shared/late")
    finally:
        ctx.store.close()
    names = {o.path for o in pair.src.workspace.list("/Shared")}
    assert "/Shared/planned" in names and "/Shared/unplanned" not in names and "/Shared/late" not in names


def test_a_held_storm_of_junk_is_restored_on_the_source_and_the_standby_never_saw_it(pair: Pair) -> None:
    """10 of 12 notebooks overwritten with junk: the edit-storm guard holds them (the standby keeps the good ones),
    the plan counts the held updates as changed, and after the restore the next cycle has nothing to copy."""
    src = pair.src
    src.workspace.mkdirs(APP)
    for i in range(12):
        _write(src, f"{APP}/nb{i}", f"# good {i}\n" + "x = 1\n" * 20)
    pair.sync(only=["directories", "notebooks"])
    good = _state(src)["notebooks"]
    moment = time.time()
    for i in range(10):
        _write(src, f"{APP}/nb{i}", "# junk\n")
    held = pair.sync(only=["directories", "notebooks"])
    assert held["notebooks"].held == 10 and _state(pair.dst)["notebooks"] == good

    only = ("--kinds", "notebooks")
    refused = _dbsync(pair, "restore", "--at", str(moment), "--to", "source", *only, "--apply")
    assert refused.returncode == 2 and "overwrites 10 objects" in refused.stderr, refused.stdout + refused.stderr
    applied = _dbsync(pair, "restore", "--at", str(moment), "--to", "source", *only, "--apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _state(src)["notebooks"] == good

    pair.reset_stats()
    after = pair.sync(only=["directories", "notebooks"])
    assert after["notebooks"].held == 0 and after["notebooks"].updated == 0
    assert pair.target_writes() == 0 and _state(pair.dst)["notebooks"] == good


def test_the_source_form_maps_principals_and_paths_back() -> None:
    """A kept payload names the target's users (mapping.emails applied when read): the source gets its own back."""
    forward = MappingSettings(emails={"@old.com": "@new.com"})
    back = PrincipalMap(reversed_settings(Settings(mapping=forward)).mapping)
    form = SourceForm(back)
    kept = {
        "tasks": [{"notebook_task": {"notebook_path": "/Users/ann@new.com/etl"}, "existing_cluster_id": ref("c", "1")}],
        "environments": [{"spec": {"dependencies": ["/Workspace/Users/ann@new.com/req.txt"]}}],
        "repo_tasks": ["/Repos/ann@new.com/etl/nb", "/Workspace/Repos/ann@new.com/etl/job.py", "/Repos/team/etl/nb"],
    }
    assert form.payload(kept) == {
        "tasks": [{"notebook_task": {"notebook_path": "/Users/ann@old.com/etl"}, "existing_cluster_id": "1"}],
        "environments": [{"spec": {"dependencies": ["/Workspace/Users/ann@old.com/req.txt"]}}],
        "repo_tasks": ["/Repos/ann@old.com/etl/nb", "/Workspace/Repos/ann@old.com/etl/job.py", "/Repos/team/etl/nb"],
    }
    assert form.run_as({"user_name": "ann@new.com"}) == {"user_name": "ann@old.com"}


def test_blanked_acls_are_restored_on_the_source_with_its_own_principals(pair: Pair) -> None:
    """A rogue token removes every ACL entry from the app's notebooks; the next cycle copies that to the standby.
    `restore --at T --to source --kinds permissions` reads each ACL live (the API has no version), plans the
    blanked ones only, and PUTs the kept entries back on the source objects; the next cycle mends the standby."""
    from databricks.sdk.service import iam

    src = pair.src
    src.groups.create(display_name="readers")
    src.workspace.mkdirs(APP)
    for i in range(3):
        _write(src, f"{APP}/nb{i}", f"# good {i}\n")

    def acl(w: WorkspaceClient, path: str) -> list[tuple[str, str]]:
        object_id = str(w.workspace.get_status(path).object_id)
        entries = w.permissions.get("notebooks", object_id).access_control_list or []
        return sorted(
            (e.group_name or e.user_name or "", p.permission_level.value)
            for e in entries
            for p in e.all_permissions or []
            if not p.inherited and e.group_name != "admins"
        )

    def grant(path: str, entries: list[iam.AccessControlRequest]) -> None:
        src.permissions.set("notebooks", str(src.workspace.get_status(path).object_id), access_control_list=entries)

    for i in range(3):
        grant(
            f"{APP}/nb{i}",
            [iam.AccessControlRequest(group_name="readers", permission_level=iam.PermissionLevel.CAN_RUN)],
        )
    pair.sync()
    good = {i: acl(src, f"{APP}/nb{i}") for i in range(3)}
    assert good[0] == [("readers", "CAN_RUN")] and acl(pair.dst, f"{APP}/nb0") == good[0]
    moment = time.time()
    for i in range(2):
        grant(f"{APP}/nb{i}", [])
    pair.sync(kinds={"permissions": {"max_staleness": 0}})  # every ACL read (by need, they wait their turn)
    assert acl(pair.dst, f"{APP}/nb0") == [], "the bad change reached the standby"

    plan = _dbsync(pair, "restore", "--at", str(moment), "--to", "source", "--kinds", "permissions")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"write   permissions          notebooks:{APP}/nb0" in plan.stdout
    assert f"notebooks:{APP}/nb2" not in plan.stdout.replace("unchanged", ""), "read live: nb2 is as it was"
    applied = _dbsync(pair, "restore", "--at", str(moment), "--to", "source", "--kinds", "permissions", "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "2 change(s) to the source applied" in applied.stdout
    assert {i: acl(src, f"{APP}/nb{i}") for i in range(3)} == good

    pair.sync()  # by need: the restored ACLs are due at once, not in an hour
    assert {i: acl(pair.dst, f"{APP}/nb{i}") for i in range(3)} == good, "the next cycle mends the standby"


def test_a_policy_and_a_pool_edited_on_the_source_are_put_back(pair: Pair) -> None:
    """A cluster policy's definition and an instance pool's settings overwritten by a bad script: restore to the
    source puts both back (a full replace of the policy; the pool keeps the source's own tags, none of dbsync's)."""
    src = pair.src
    good_definition = '{"spark_version": {"type": "fixed", "value": "15.4.x-scala2.12"}}'
    policy = src.cluster_policies.create(name="etl-policy", definition=good_definition).policy_id or ""
    pool = (
        src.instance_pools.create(
            instance_pool_name="etl-pool", node_type_id="i3.xlarge", min_idle_instances=1, custom_tags={"team": "data"}
        ).instance_pool_id
        or ""
    )
    pair.sync(only=["cluster_policies", "instance_pools"])
    moment = time.time()
    src.cluster_policies.edit(
        policy_id=policy, name="etl-policy", definition='{"autotermination_minutes": {"type": "fixed", "value": 1}}'
    )
    src.instance_pools.edit(
        instance_pool_id=pool, instance_pool_name="junk", node_type_id="i3.xlarge", min_idle_instances=0
    )
    pair.sync(only=["cluster_policies", "instance_pools"])

    only = ("--kinds", "cluster_policies,instance_pools")
    applied = _dbsync(pair, "restore", "--at", str(moment), "--to", "source", *only, "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "2 change(s) to the source applied" in applied.stdout
    restored_policy = src.cluster_policies.get(policy)
    assert restored_policy.name == "etl-policy"
    assert "15.4.x-scala2.12" in (restored_policy.definition or "") and "autotermination" not in (
        restored_policy.definition or ""
    )
    restored_pool = src.instance_pools.get(pool)
    assert (restored_pool.instance_pool_name, restored_pool.min_idle_instances) == ("etl-pool", 1)
    assert restored_pool.custom_tags == {"team": "data"}, "the source's own tags, no dbsync tag"
    assert [p.instance_pool_name for p in src.instance_pools.list()] == ["etl-pool"], "edited, not duplicated"
