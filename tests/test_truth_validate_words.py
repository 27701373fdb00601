"""validate, the outage report and the report page use the words of the state they show, and nothing else.

An object dbsync cannot read on the source is `unknown`, never also in sync; skipped and pending are themselves
when the source is down too; a page computed from the store says so; a kind named is compared, enabled or not.
"""

from __future__ import annotations

import json

import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import iam, jobs

from dbsync.report import KindValidation, Report, format_text, validate, validate_from_store
from dbsync.report_html import render_page, standby_page

KINDS = ["jobs", "permissions"]


def _job_with_acl(pair: Pair, level: iam.PermissionLevel = iam.PermissionLevel.CAN_VIEW) -> str:
    job_id = str(
        pair.src.jobs.create(
            name="loader",
            tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
            environments=[jobs.JobEnvironment(environment_key="e")],
        ).job_id
    )
    _grant(pair, job_id, level)
    return job_id


def _grant(pair: Pair, job_id: str, level: iam.PermissionLevel) -> None:
    acl = [
        iam.AccessControlRequest(user_name="admin@example.com", permission_level=iam.PermissionLevel.IS_OWNER),
        iam.AccessControlRequest(group_name="users", permission_level=level),
    ]
    pair.src.permissions.set("jobs", job_id, access_control_list=acl)  # a job's PUT names its owner


def test_an_acl_the_source_cannot_give_is_unknown_not_in_sync_and_the_kind_is_not_100_percent(pair: Pair) -> None:
    _job_with_acl(pair)
    pair.sync(only=KINDS)
    assert validate(pair.context(), KINDS).ready_for_cutover

    pair.source.set_faults(rate_500=1.0, path_prefix="/api/2.0/permissions/")  # the source's ACLs cannot be read
    report = validate(pair.context(retry_timeout_seconds=2), KINDS)
    permissions = {k.kind: k for k in report.kinds}["permissions"]

    assert (permissions.source_count, permissions.in_sync, permissions.unknown) == (1, 0, 1)
    assert permissions.in_sync_percent == 0.0 and permissions.status == "not_in_sync"
    assert not report.ready_for_cutover
    assert "permissions: 1 unknown (the source object could not be read)" in report.reasons
    table = format_text(report).splitlines()
    header = table[0].split()
    row = next(line for line in table if line.startswith("permissions ")).split()
    assert row[header.index("sync") - 1] == "0.0%"  # the header's "in sync" is two words
    assert row[header.index("unknown") - 1] == "1"


def test_a_page_computed_from_the_store_does_not_say_compared_live_while_an_acl_edit_waits(pair: Pair) -> None:
    job_id = _job_with_acl(pair)
    pair.sync(only=KINDS)
    _grant(pair, job_id, iam.PermissionLevel.CAN_MANAGE_RUN)  # on the source, not read by dbsync yet

    assert {k.kind: k for k in validate(pair.context(), KINDS).kinds}["permissions"].pending == 1  # `dbsync validate`
    served = validate(pair.context(), KINDS, fetch_unversioned=False)  # the daemon's /report: ACLs by the store
    page = standby_page(served)

    assert page.headline == "Ready for cutover, as last verified."
    assert "compared with the store as each object was last verified" in page.summary[0]
    assert "permissions" in page.summary[0] and "run `dbsync validate`" in page.summary[0]
    assert "kinds compared live, listed below" not in render_page(page)


def test_a_ready_page_lists_no_problems_and_a_not_ready_one_counts_them_beside_an_unchecked_kind() -> None:
    ready = standby_page(Report(0.0, [KindValidation("jobs", source_count=2, target_count=2, in_sync=2)], True, []))
    assert ready.summary == ["The target holds everything the source has (kinds compared live, listed below)."]

    kinds = [
        KindValidation("mounts", report_only=True, unchecked="no running source cluster"),
        KindValidation("jobs", source_count=2, target_count=2, in_sync=1, pending=1, pending_keys=["7"]),
    ]
    reasons = ["jobs: 1 pending", "store role is cutover-complete, not standby"]
    not_ready = standby_page(Report(0.0, kinds, False, reasons))
    assert not_ready.summary == [
        'Not checked: mounts (see "Needs manual action" for why and the fix).',
        "1 object to fix before a cutover; each has its fix below.",
        "store role is cutover-complete, not standby",
    ]


def test_with_the_source_down_skipped_users_are_skipped_not_missing(pair: Pair) -> None:
    for user in ("a@example.com", "b@example.com"):
        pair.src.users.create(user_name=user)  # users dbsync may not create on the target by default
    pair.sync(only=["users"])
    live = {k.kind: k for k in validate(pair.context(), ["users"]).kinds}["users"]
    stored = validate_from_store(pair.context())
    users = {k.kind: k for k in stored.kinds}["users"]

    assert (live.skipped, live.missing_count) == (2, 0)
    assert (users.skipped, users.missing_count) == (2, 0)
    assert not any("not on the target as last synced" in r for r in stored.reasons)


def test_validate_compares_a_kind_it_is_named_even_when_disabled_as_plan_and_sync_run_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pair.src.jobs.create(
        name="loader",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    )
    disabled = {"DBSYNC_KINDS__JOBS__ENABLED": "false"}
    plan_code, out, _ = run_cli(pair, monkeypatch, capsys, "plan", "--kinds", "jobs", "--json", env=disabled)
    plan = json.loads(out)
    code, out, _ = run_cli(pair, monkeypatch, capsys, "validate", "--kinds", "jobs", "--format", "json", env=disabled)
    report = json.loads(out)

    assert plan_code == 0 and [c["action"] for c in plan] == ["create"]
    assert code == 1 and not report["ready_for_cutover"]
    assert [k["kind"] for k in report["kinds"]] == ["jobs"] and report["kinds"][0]["pending"] == 1
