"""A job ACL that names no owner: synced to the standby, and a kept version of it restored either way.

A legacy job can have no owner at all: jobs made before job ACLs had owners read back with no IS_OWNER entry
(databrickslabs/migrate#168). The service refuses a job's or pipeline's permissions PUT that names no owner, 400
"The job must have exactly one owner." (terraform-provider-databricks#303, databricks/cli#5682), instead of keeping
the current owner; the emulator does too. So a sync of such a job's ACL, and a `dbsync restore` of a version of it
(to the standby or `--to source`), were refused: the readers it had were never put back. dbsync now names the
written side's current owner (one GET) when the ACL names none, and says so.

Driven as a user would: the `dbsync` commands in-process against two emulated workspaces over HTTP, and the
databricks-sdk to look at both sides.
"""

from __future__ import annotations

import base64
import time

import pytest
from conftest import Pair, run_cli
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import iam, jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.store import Store
from dbsync_emulator.state import ADMIN_USER

NOTEBOOK = "/Shared/legacy/etl"
READERS = ("readers", "CAN_MANAGE_RUN")


def _job_id(w: WorkspaceClient, name: str) -> str:
    return next(str(j.job_id) for j in w.jobs.list(name=name))


def _acl(w: WorkspaceClient, job_id: str) -> set[tuple[str, str]]:
    """The job's direct entries as (principal, level), the admins group's (the service's) left out."""
    entries = w.permissions.get("jobs", job_id).access_control_list or []
    return {
        (e.group_name or e.user_name or e.service_principal_name or "", p.permission_level.value)
        for e in entries
        for p in e.all_permissions or []
        if not p.inherited and p.permission_level and e.group_name != "admins"
    }


def _legacy_job(pair: Pair) -> str:
    """A source job whose ACL gives `readers` CAN_MANAGE_RUN and names no owner.

    The API cannot make one (an ownerless PUT is refused, a PATCH cannot remove the owner): a job that old exists
    only on a workspace that had it before job owners did, so the emulator's ACL table is written as such a job's.
    """
    src = pair.src
    src.groups.create(display_name="readers")
    src.workspace.mkdirs("/Shared/legacy")
    content = base64.b64encode(b"# etl\nx = 1\n").decode()
    src.workspace.import_(NOTEBOOK, content=content, format=ImportFormat.SOURCE, language=Language.PYTHON)
    task = jobs.Task(task_key="main", notebook_task=jobs.NotebookTask(notebook_path=NOTEBOOK))
    job_id = str(src.jobs.create(name="legacy-etl", tasks=[task]).job_id)
    src.permissions.update(
        "jobs",
        job_id,
        access_control_list=[
            iam.AccessControlRequest(group_name="readers", permission_level=iam.PermissionLevel.CAN_MANAGE_RUN)
        ],
    )
    with pair.source.workspace.lock:
        acls = pair.source.workspace.table("acls")
        acls[("jobs", job_id)] = [e for e in acls[("jobs", job_id)] if e["level"] != "IS_OWNER"]
    assert _acl(src, job_id) == {READERS}
    return job_id


def _readers_dropped_after_a_moment(pair: Pair) -> tuple[float, str]:
    """The legacy job synced (its ACL version names no owner), then a script gives it an owner with a PUT that names
    only the owner, dropping its readers, and the next cycle copies that to the standby. Returns (the moment before
    the bad edit, the source job id)."""
    job_id = _legacy_job(pair)
    pair.sync()
    moment = time.time()
    owner_only = [iam.AccessControlRequest(user_name=ADMIN_USER, permission_level=iam.PermissionLevel.IS_OWNER)]
    pair.src.permissions.set("jobs", job_id, access_control_list=owner_only)
    pair.sync(kinds={"permissions": {"max_staleness": 0}})  # every ACL read (by need, they wait their turn)
    assert _acl(pair.dst, _job_id(pair.dst, "legacy-etl")) == {(ADMIN_USER, "IS_OWNER")}, "the bad edit reached it"
    return moment, job_id


def _events(pair: Pair, action: str) -> list[str]:
    store = Store(pair.state_path)
    try:
        return [e["message"] for e in store.events(limit=200) if e["action"] == action]
    finally:
        store.close()


def test_a_legacy_job_without_owner_gets_its_readers_on_the_standby(pair: Pair) -> None:
    """The ACL's PUT names the target job's current owner (the creator of the copy), and the event says so."""
    job_id = _legacy_job(pair)
    reports = pair.sync()
    assert reports["permissions"].errors == 0
    assert _acl(pair.dst, _job_id(pair.dst, "legacy-etl")) == {READERS, (ADMIN_USER, "IS_OWNER")}
    said = f"permissions jobs:{job_id}: the ACL names no owner, which the service requires: owner kept as {ADMIN_USER}"
    assert said in _events(pair, "create")


def test_restore_to_source_of_a_version_without_owner_keeps_the_source_owner(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`restore --to source` puts the readers back on the source job, naming the owner it has now (one GET), says
    so on its line and in its event, and writes nothing on the target; the next cycle mends the standby."""
    moment, job_id = _readers_dropped_after_a_moment(pair)
    pair.reset_stats()
    code, out, err = run_cli(
        pair, monkeypatch, capsys, "restore", "--at", str(moment), "--to", "source", "--kinds", "permissions", "--apply"
    )
    assert code == 0, out + err
    said = f"the kept version names no owner, which the service requires: owner kept as {ADMIN_USER}"
    assert f"permissions          jobs:{job_id}" in out and f"→ restored ({said})" in out, out
    assert "1 change(s) to the source applied" in out
    assert _acl(pair.src, job_id) == {READERS, (ADMIN_USER, "IS_OWNER")}
    assert pair.target_writes() == 0, "a restore to the source writes nothing on the target"
    assert any(said in m for m in _events(pair, "restore-source"))

    pair.sync()  # by need: the restored ACL is due at once
    assert _acl(pair.dst, _job_id(pair.dst, "legacy-etl")) == {READERS, (ADMIN_USER, "IS_OWNER")}


def test_restore_to_the_standby_of_a_version_without_owner_keeps_the_target_owner(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`restore` (to the standby, the default) puts the readers back on the target job, naming the owner it has
    now, and says so; the source is not written."""
    moment, job_id = _readers_dropped_after_a_moment(pair)
    code, out, err = run_cli(
        pair, monkeypatch, capsys, "restore", "--at", str(moment), "--kinds", "permissions", "--apply"
    )
    assert code == 0, out + err
    said = f"the ACL names no owner, which the service requires: owner kept as {ADMIN_USER}"
    assert f"permissions          jobs:{job_id}" in out and f"→ restored ({said})" in out, out
    assert _acl(pair.dst, _job_id(pair.dst, "legacy-etl")) == {READERS, (ADMIN_USER, "IS_OWNER")}
    assert _acl(pair.src, job_id) == {(ADMIN_USER, "IS_OWNER")}, "the source keeps its edit"
