"""What dbsync says is what the standby holds: partial objects, pending changes and one set of counts.

Every surface is driven as a user would: the `dbsync` commands (in-process, `main([...])`) against two
emulated workspaces over HTTP, and the databricks-sdk to look at the target. The Permissions API refuses an
unknown principal with `Principal: UserName(x) does not exist` (docs.databricks.com/api/workspace/permissions/set)
and a job's PUT that names no owner with "The job must have exactly one owner." (terraform-provider-databricks#303,
databricks/cli#5682), so dbsync names the target's current owner instead: that is how an owner ends up "kept as"
the admin on a standby whose IdP has not provisioned the user yet.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import iam, jobs, workspace
from databricks.sdk.service.workspace import ImportFormat, Language
from freezegun import freeze_time
from prometheus_client import REGISTRY

from dbsync.engine import update_gauges
from dbsync.report import validate

OWNER = "eli.kim5@example.com"
VIEWER = "ana.ruiz@example.com"
KINDS = "groups,service_principals,users,group_members,notebooks,directories,jobs,permissions"


def _cli(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple:
    """Run `dbsync <argv>` in-process with the pair's environment: (exit code, stdout)."""
    code, out, _ = run_cli(pair, monkeypatch, capsys, *argv)
    return code, out


def _json(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple:
    code, out = _cli(pair, monkeypatch, capsys, *argv)
    return code, json.loads(out)


def _job_with_owner(pair: Pair) -> int:
    src = pair.src
    for user in (OWNER, VIEWER):
        src.users.create(user_name=user)
    job_id = src.jobs.create(
        name="nightly-etl",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    ).job_id
    src.permissions.set(
        "jobs",
        str(job_id),
        access_control_list=[
            iam.AccessControlRequest(user_name=OWNER, permission_level=iam.PermissionLevel.IS_OWNER),
            iam.AccessControlRequest(user_name=VIEWER, permission_level=iam.PermissionLevel.CAN_VIEW),
        ],
    )
    return job_id or 0


def _target_acl(pair: Pair) -> dict[str, str]:
    target_job = next(iter(pair.dst.jobs.list()))
    acl = pair.dst.permissions.get("jobs", str(target_job.job_id)).access_control_list or []
    return {
        a.user_name: p.permission_level.value
        for a in acl
        if a.user_name
        for p in a.all_permissions or []
        if not p.inherited and p.permission_level
    }


def _kind(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(k for k in report["kinds"] if k["kind"] == name)


def test_owner_and_acls_follow_once_the_users_appear_on_the_target(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 1: a skipped entry makes its object partial, and the entry lands when the principal exists."""
    job_id = _job_with_owner(pair)
    code, _ = _cli(pair, monkeypatch, capsys, "sync", "--once", "--kinds", KINDS)
    assert code == 0
    assert _target_acl(pair).get("admin@example.com") == "IS_OWNER"  # kept: the target has no such user

    _, status = _json(pair, monkeypatch, capsys, "status", "--json")
    assert status["counts"]["permissions"].get("partial") == 1, status["counts"]
    assert status["counts"]["users"] == {"synced": 1, "skipped": 2}  # the admin is adopted, the others are not
    code, report = _json(pair, monkeypatch, capsys, "validate", "--kinds", KINDS, "--format", "json")
    assert code == 1 and not report["ready_for_cutover"]
    permissions = _kind(report, "permissions")
    assert permissions["partial"] == 1 and permissions["in_sync_percent"] < 100
    assert any("permissions: 1 partial" in r for r in report["reasons"]), report["reasons"]
    assert any("provision it through the target's IdP" in r for r in report["reasons"]), report["reasons"]

    for user in (OWNER, VIEWER):  # the target's IdP provisions them
        pair.dst.users.create(user_name=user)
    code, summary = _json(pair, monkeypatch, capsys, "sync", "--once", "--kinds", KINDS, "--json")
    assert code == 0
    acl = _target_acl(pair)
    assert acl.get(OWNER) == "IS_OWNER" and acl.get(VIEWER) == "CAN_VIEW", acl
    assert {r["kind"]: r for r in summary}["permissions"]["updated"] == 1

    _, status = _json(pair, monkeypatch, capsys, "status", "--json")
    assert status["counts"]["permissions"] == {"synced": status["counts"]["permissions"]["synced"]}
    assert status["counts"]["users"] == {"synced": 3}
    code, report = _json(pair, monkeypatch, capsys, "validate", "--kinds", KINDS, "--format", "json")
    assert report["ready_for_cutover"], report["reasons"]
    assert code == 0 and _kind(report, "permissions")["in_sync_percent"] == 100.0
    assert str(job_id)  # the source job the ACL belongs to


def test_validate_sees_a_source_edit_before_it_is_synced_and_lag_grows(pair: Pair) -> None:
    """Defect 4: pending changes are seen by content/version, and lag runs from when they were first seen."""
    src = pair.src
    src.workspace.mkdirs("/Shared/etl")
    src.workspace.upload("/Shared/etl/load.py", io.BytesIO(b"print(1)\n"), format=ImportFormat.AUTO)
    job_id = src.jobs.create(
        name="loader",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    ).job_id
    kinds = ["directories", "notebooks", "jobs"]
    with freeze_time("2026-12-05 00:00:00") as clock:
        pair.sync(only=kinds)
        assert validate(pair.context(), kinds).ready_for_cutover

        clock.tick(30)
        src.workspace.upload(
            "/Shared/etl/load.py",
            io.BytesIO(b"print(2)\n"),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
        settings = src.jobs.get(job_id).settings
        assert settings is not None
        settings.name = "loader-renamed"
        src.jobs.reset(job_id, jobs.JobSettings.from_dict(settings.as_dict()))

        report = validate(pair.context(), kinds)
        by_kind = {k.kind: k for k in report.kinds}
        assert not report.ready_for_cutover
        assert by_kind["notebooks"].pending == 1 and by_kind["jobs"].pending == 1
        assert by_kind["directories"].pending == 0
        assert any("notebooks: 1 pending" in r for r in report.reasons), report.reasons

        clock.tick(120)
        ctx = pair.context()
        report = validate(ctx, kinds)
        assert {k.kind: k.lag_seconds for k in report.kinds}["jobs"] >= 120
        update_gauges(ctx.store, kinds)
        lag = REGISTRY.get_sample_value("dbsync_replication_lag_seconds", {"kind": "notebooks"})
        assert lag is not None and lag >= 120

        pair.sync(only=kinds)
        report = validate(pair.context(), kinds)
        assert report.ready_for_cutover, report.reasons
        assert all(k.pending == 0 and k.lag_seconds == 0 for k in report.kinds)


def test_a_listing_that_failed_is_unknown_never_100_percent(pair: Pair) -> None:
    """Defect 4: a kind that cannot be listed is `unknown`."""
    pair.src.workspace.mkdirs("/Shared/etl")
    pair.sync(only=["directories"])
    # The target's tree cannot be listed (a wrong token is refused earlier, at start, in one line).
    pair.target.set_faults(rate_500=1.0, path_prefix="/api/2.0/workspace/list")
    ctx = pair.context(retry_timeout_seconds=2)
    report = validate(ctx, ["directories"])
    (directories,) = report.kinds
    assert directories.status == "unknown" and directories.in_sync_percent is None
    assert not report.ready_for_cutover
    assert "unknown" in report.as_dict()["kinds"][0]["status"]


def test_counts_agree_across_sync_plan_status_validate_and_metrics(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 5: skipped users are skipped on every surface, never `created` or `synced`."""
    src = pair.src
    existing = "both@example.com"
    for user in (existing, "a@example.com", "b@example.com", "c@example.com"):
        src.users.create(user_name=user)
    pair.dst.users.create(user_name=existing)
    src.workspace.mkdirs("/Shared/etl")
    kinds = "users,directories,permissions"

    code, plan = _json(pair, monkeypatch, capsys, "plan", "--kinds", kinds, "--json")
    assert code == 0
    plan_users = [c["action"] for c in plan if c["kind"] == "users"]
    assert sorted(plan_users) == ["create", "create", "skip", "skip", "skip"]
    skips = [c for c in plan if c["action"] == "skip"]
    assert all("provision it through the target's IdP" in c["reason"] for c in skips)
    planned_permissions = [c for c in plan if c["kind"] == "permissions"]

    code, summary = _json(pair, monkeypatch, capsys, "sync", "--once", "--kinds", kinds, "--json")
    by_kind = {r["kind"]: r for r in summary}
    assert by_kind["users"]["created"] == 2 and by_kind["users"]["skipped"] == 3
    applied = by_kind["permissions"]["created"] + by_kind["permissions"]["updated"] + by_kind["permissions"]["partial"]
    assert applied == len(planned_permissions) > 0  # plan announces the ACLs a first sync writes

    code, text = _cli(pair, monkeypatch, capsys, "sync", "--once", "--kinds", kinds)
    header = text.splitlines()[0].split()
    assert "skipped" in header and "partial" in header and "unchanged" in header

    _, status = _json(pair, monkeypatch, capsys, "status", "--json")
    assert status["counts"]["users"] == {"synced": 2, "skipped": 3}  # the admin and both@ are adopted
    _, table = _cli(pair, monkeypatch, capsys, "status")
    users_line = next(line for line in table.splitlines() if line.startswith("users "))
    columns = next(line for line in table.splitlines() if line.startswith("kind")).split()
    assert dict(zip(columns[1:], users_line.split()[1:], strict=False))["skipped"] == "3"

    code, report = _json(pair, monkeypatch, capsys, "validate", "--kinds", kinds, "--format", "json")
    users = _kind(report, "users")
    assert code == 1 and users["in_sync"] == 2 and users["skipped"] == 3 and users["missing_count"] == 0
    assert any("users: 3 skipped" in r and "IdP" in r for r in report["reasons"]), report["reasons"]

    ctx = pair.context()
    update_gauges(ctx.store, ["users"])
    sample = REGISTRY.get_sample_value
    assert sample("dbsync_resources", {"kind": "users", "status": "skipped"}) == 3
    assert sample("dbsync_resources", {"kind": "users", "status": "synced"}) == 2
    assert sample("dbsync_resources", {"kind": "users", "status": "partial"}) == 0


def test_a_report_only_kind_is_skipped_everywhere_never_created(pair: Pair) -> None:
    """Defect 5: a mount is written by nobody; sync and status say skipped (with the reason), not created."""
    from test_sync_cluster_setup import _cluster, _mount

    from dbsync.cli import plan_action
    from dbsync.context import open_context
    from dbsync.engine import Engine

    cluster_id = _cluster(pair, "analysts-running", state="RUNNING")
    _mount(pair, cluster_id, "s3a://acme-landing/raw", "/mnt/raw")
    ctx = open_context(pair.settings(), dry_run=True)
    (planned,) = Engine(ctx).cycle(["mounts"])
    ctx.store.close()
    assert [plan_action(c) for c in planned.planned] == ["skip"]

    reports = pair.sync(only=["mounts"])
    assert reports["mounts"].created == 0 and reports["mounts"].skipped == 1
    ctx = pair.context()
    assert ctx.store.status_counts()["mounts"] == {"skipped": 1}
    report = validate(ctx, ["mounts"])
    assert report.ready_for_cutover and report.kinds[0].skipped == 1


def test_group_members_and_secret_scope_acls_wait_for_their_principal(pair: Pair) -> None:
    """Defect 1 beyond object ACLs: a member or scope ACL entry the target lacks lands once it exists.

    `secrets/acls/put` refuses a principal the workspace does not know (RESOURCE_DOES_NOT_EXIST /
    INVALID_PARAMETER_VALUE, docs.databricks.com/api/workspace/secrets/putacl); the emulator does the same.
    """
    src, dst = pair.src, pair.dst
    late = src.users.create(user_name=OWNER)
    src.groups.create(display_name="etl-team", members=[iam.ComplexValue(value=late.id)])
    src.secrets.create_scope("etl")
    src.secrets.put_acl("etl", OWNER, workspace.AclPermission.READ)
    kinds = ["groups", "users", "group_members", "secret_scopes"]
    pair.sync(only=kinds)
    counts = pair.context().store.status_counts()
    assert counts["group_members"] == {"partial": 1} and counts["secret_scopes"] == {"partial": 1}
    assert OWNER not in {a.principal for a in dst.secrets.list_acls("etl")}

    dst.users.create(user_name=OWNER)  # the IdP catches up
    pair.sync(only=kinds)
    counts = pair.context().store.status_counts()
    assert counts["group_members"] == {"synced": 1} and counts["secret_scopes"] == {"synced": 1}
    assert {a.principal: a.permission.value for a in dst.secrets.list_acls("etl")}.get(OWNER) == "READ"
    group = next(iter(dst.groups.list(filter='displayName eq "etl-team"')))
    members = [dst.users.get(m.value).user_name for m in dst.groups.get(group.id).members or []]
    assert members == [OWNER]


def test_job_run_as_waits_for_its_user_instead_of_naming_one_the_target_lacks(pair: Pair) -> None:
    """Defect 1, run_as: the job runs as its owner until the target has the user, then as the user.

    `run_as.user_name` must be "the email of an active workspace user" and, left out, the job runs as its
    creator (the SDK's JobRunAs reference), so dbsync leaves out one the target lacks and waits for it.
    """
    src, dst = pair.src, pair.dst
    src.users.create(user_name=OWNER)
    src.jobs.create(
        name="as-eli",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
        run_as=jobs.JobRunAs(user_name=OWNER),
    )
    pair.sync(only=["users", "jobs"])
    target_job = next(iter(dst.jobs.list()))
    assert dst.jobs.get(target_job.job_id).run_as_user_name == "admin@example.com"
    assert pair.context().store.status_counts()["jobs"] == {"partial": 1}

    dst.users.create(user_name=OWNER)
    reports = pair.sync(only=["users", "jobs"])
    assert reports["jobs"].updated == 1
    assert dst.jobs.get(target_job.job_id).settings.run_as.user_name == OWNER
    assert pair.context().store.status_counts()["jobs"] == {"synced": 1}


def test_a_query_owner_lands_once_the_user_exists_without_a_source_edit(pair: Pair) -> None:
    """Defect 1, query owners: partial until the owner exists on the target, then the owner follows."""
    from databricks.sdk.service import sql
    from sql_objects import make_query as _query
    from sql_objects import make_warehouse as _warehouse

    src, dst = pair.src, pair.dst
    query = _query(src, "owned", _warehouse(src))
    src.users.create(user_name=OWNER)
    src.queries.update(query.id or "", "owner_user_name", query=sql.UpdateQueryRequestQuery(owner_user_name=OWNER))
    kinds = ["sql_warehouses", "sql_queries"]
    pair.sync(only=kinds)
    assert next(iter(dst.queries.list())).owner_user_name == "admin@example.com"
    assert pair.context().store.status_counts()["sql_queries"] == {"partial": 1}

    dst.users.create(user_name=OWNER)  # the IdP provisions the owner; nothing changes on the source
    pair.sync(only=kinds)
    assert next(iter(dst.queries.list())).owner_user_name == OWNER
    assert pair.context().store.status_counts()["sql_queries"] == {"synced": 1}


def test_table_grants_and_owner_are_partial_until_the_principal_exists(pair: Pair) -> None:
    """Defect 1, table ACLs: a grant or owner the target cannot take makes the securable partial, not synced."""
    from test_sync_metastore import MetastorePair, Warehouse, _principals

    from dbsync_emulator.apis.sql import create_warehouse

    warehouses = []
    for handle, client in ((pair.source, pair.src), (pair.target, pair.dst)):
        with handle.workspace.lock:
            warehouses.append(
                Warehouse(client, create_warehouse(handle.workspace, {"name": "dbsync", "cluster_size": "2X-Small"}))
            )
    mp = MetastorePair(pair, *warehouses)
    _principals(pair.source, [OWNER], [])  # only the source knows the owner
    mp.src.run("CREATE TABLE payroll (id BIGINT)")
    mp.src.run(f"GRANT SELECT ON TABLE payroll TO `{OWNER}`")
    mp.src.run(f"ALTER TABLE payroll OWNER TO `{OWNER}`")
    mp.sync()
    statuses = pair.context().store.status_counts()["table_acls"]
    assert statuses.get("partial") == 1, statuses

    _principals(pair.target, [OWNER], [])  # the standby's IdP catches up
    mp.sync()
    assert "partial" not in pair.context().store.status_counts()["table_acls"]
    assert mp.dst.grants("TABLE payroll") == mp.src.grants("TABLE payroll")
