"""An object dbsync cannot read on the source is `unknown` on every surface: never also counted in sync."""

from __future__ import annotations

from conftest import Pair
from databricks.sdk.service import iam, jobs

from dbsync.report import format_text, validate

KINDS = ["jobs", "permissions"]


def test_an_acl_the_source_cannot_give_is_unknown_not_in_sync_and_the_kind_is_not_100_percent(pair: Pair) -> None:
    job_id = pair.src.jobs.create(
        name="loader",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    ).job_id
    pair.src.permissions.set(
        "jobs",
        str(job_id),
        access_control_list=[
            iam.AccessControlRequest(group_name="users", permission_level=iam.PermissionLevel.CAN_VIEW)
        ],
    )
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
