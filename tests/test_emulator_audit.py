"""The emulator's audit log: its own writes, readable as `system.access.audit` through a SQL warehouse.

Columns, services and action names follow the audit log system table reference
(docs.databricks.com admin/system-tables/audit-logs) and the audit log reference (notebook, workspace, jobs,
clusters, secrets; changeJobAcl, changeClusterAcl, changeWorkspaceAcl with aclChangeResourceName).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from conftest import sdk_client
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import iam, jobs
from databricks.sdk.service.sql import StatementResponse, StatementState
from databricks.sdk.service.workspace import ImportFormat, Language
from freezegun import freeze_time

from dbsync_emulator.server import EmulatorHandle, start_emulator

QUERY = (
    "SELECT event_time, service_name, action_name, request_params, event_id FROM system.access.audit "
    "WHERE workspace_id = '{ws}' AND event_time > '{since}' ORDER BY event_time"
)


@pytest.fixture
def lagging() -> Iterator[EmulatorHandle]:
    """An emulator whose audit table shows an event 60 s after it happened."""
    handle = start_emulator(cluster_start_seconds=0.1, audit_delay_seconds=60)
    try:
        yield handle
    finally:
        handle.stop()


def _warehouse(w: WorkspaceClient) -> str:
    created = w.warehouses.create(name="audit", cluster_size="2X-Small", auto_stop_mins=0).response.id
    assert created is not None
    return created


def _rows(w: WorkspaceClient, warehouse: str, sql: str) -> list[list[str | None]]:
    response: StatementResponse = w.statement_execution.execute_statement(sql, warehouse, wait_timeout="30s")
    assert response.status and response.status.state == StatementState.SUCCEEDED, response.status
    return (response.result.data_array or []) if response.result else []


def _audit(w: WorkspaceClient, warehouse: str, handle: EmulatorHandle) -> list[tuple[str, str, dict]]:
    sql = QUERY.format(ws=handle.workspace.workspace_id, since="2000-01-01T00:00:00.000Z")
    return [(r[1] or "", r[2] or "", json.loads(r[3] or "{}")) for r in _rows(w, warehouse, sql)]


def _grant(group: str, level: iam.PermissionLevel) -> list[iam.AccessControlRequest]:
    return [iam.AccessControlRequest(group_name=group, permission_level=level)]


def test_writes_are_recorded_with_the_services_action_names_and_ids(emulator: EmulatorHandle) -> None:
    """A notebook import, a job create and update and ACL changes each leave one row naming the object."""
    w = sdk_client(emulator)
    warehouse = _warehouse(w)
    w.workspace.mkdirs("/Shared/x")
    w.workspace.upload("/Shared/x/nb", io.BytesIO(b"print(1)\n"), format=ImportFormat.SOURCE, language=Language.PYTHON)
    object_id = w.workspace.get_status("/Shared/x/nb").object_id
    job_id = w.jobs.create(name="j").job_id
    w.jobs.update(job_id, new_settings=jobs.JobSettings(name="j2"))
    w.permissions.set(
        "jobs",
        str(job_id),
        access_control_list=[
            iam.AccessControlRequest(user_name="admin@example.com", permission_level=iam.PermissionLevel.IS_OWNER),
            *_grant("users", iam.PermissionLevel.CAN_VIEW),
        ],
    )
    w.permissions.set(
        "notebooks",
        str(object_id),
        access_control_list=_grant("users", iam.PermissionLevel.CAN_READ),
    )
    events = _audit(w, warehouse, emulator)
    assert ("workspace", "mkdirs", {"path": "/Shared/x"}) in events
    assert ("notebook", "importNotebook", {"path": "/Shared/x/nb"}) in events
    assert ("jobs", "create", {"job_id": str(job_id)}) in events
    assert ("jobs", "update", {"job_id": str(job_id)}) in events
    assert ("jobs", "changeJobAcl", {"resourceId": str(job_id)}) in events
    assert ("workspace", "changeWorkspaceAcl", {"aclChangeResourceName": f"notebooks/{object_id}"}) in events
    assert not any(action.startswith("get") or action == "list" for _, action, _ in events)  # reads are not logged


def test_an_event_shows_only_after_the_delivery_delay(lagging: EmulatorHandle) -> None:
    """The table lags: a write is invisible until `audit_delay_seconds` have passed."""
    w = sdk_client(lagging)
    with freeze_time("2026-12-05 00:00:00") as clock:
        warehouse = _warehouse(w)
        w.jobs.create(name="late")
        assert not [e for e in _audit(w, warehouse, lagging) if e[0] == "jobs"]
        clock.tick(59)
        assert not [e for e in _audit(w, warehouse, lagging) if e[0] == "jobs"]
        clock.tick(2)
        assert [e[1] for e in _audit(w, warehouse, lagging) if e[0] == "jobs"] == ["create"]


def test_rows_since_a_checkpoint_and_a_workspace_without_the_table(emulator: EmulatorHandle) -> None:
    """`event_time > checkpoint` returns only newer rows; without system tables the query fails as not found."""
    w = sdk_client(emulator)
    with freeze_time("2026-12-05 00:00:00") as clock:
        warehouse = _warehouse(w)
        w.jobs.create(name="first")
        clock.tick(5)
        w.jobs.create(name="second")
        sql = QUERY.format(ws=emulator.workspace.workspace_id, since="2026-12-05T00:00:01.000Z")
        newer = _rows(w, warehouse, sql)
        assert [(r[1], r[2]) for r in newer] == [("jobs", "create")]
        assert newer[0][0] == "2026-12-05T00:00:05.000Z"

        emulator.workspace.audit_table = False
        response = w.statement_execution.execute_statement(
            "SELECT * FROM system.access.audit", warehouse, wait_timeout="30s"
        )
        assert response.status and response.status.state == StatementState.FAILED
        assert "TABLE_OR_VIEW_NOT_FOUND" in (response.status.error.message or "")
