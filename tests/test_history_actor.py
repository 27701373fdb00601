"""`dbsync history` says who changed each version when the source's audit log says so (issue 18, item 3).

The audit-log hints read `system.access.audit` on the source warehouse; each row carries `user_identity.email`
and the object it names (request_params: a notebook's path, a job's id). dbsync keeps those actors and `history`
joins each version to the latest row naming its object between the previous version and this one, so a table
that delivers a row late still names the actor once it is read. A version no row names says `unknown`: the
owner of the object is not who changed it, and dbsync never guesses.
(Audit log system table reference, docs.databricks.com admin/system-tables/audit-logs: user_identity is a
STRUCT<email, subject_name>; importNotebook's request_params carry the path.)
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import iam
from databricks.sdk.service.workspace import ImportFormat, Language
from freezegun import freeze_time

NOTEBOOK = "/Shared/app/etl"
ONLY = ["directories", "notebooks"]


def _write(w: WorkspaceClient, text: str) -> None:
    content = base64.b64encode(text.encode()).decode()
    w.workspace.import_(NOTEBOOK, content=content, format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)


def _edit_as(pair: Pair, email: str, text: str) -> None:
    """An edit the source's audit log records as made by `email` (the emulator logs its admin user)."""
    workspace = pair.source.workspace
    before, workspace.admin_user = workspace.admin_user, email
    try:
        _write(pair.src, text)
    finally:
        workspace.admin_user = before


def _history(pair: Pair) -> list[dict[str, Any]]:
    listed = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "history", f"notebooks:{NOTEBOOK}", "--json"],
        capture_output=True,
        text=True,
        env=pair.env(),
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _table(pair: Pair) -> list[list[str]]:
    listed = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "history", f"notebooks:{NOTEBOOK}"],
        capture_output=True,
        text=True,
        env=pair.env(),
        timeout=120,
    )
    return [line.split() for line in listed.stdout.splitlines()[1:]]


def test_history_names_the_actor_from_the_audit_log_and_unknown_without_a_row(pair: Pair) -> None:
    with freeze_time("2026-12-05 00:00:00") as clock:
        warehouse = pair.src.warehouses.create(name="audit", cluster_size="2X-Small", auto_stop_mins=0).response.id
        settings = {"metastore": {"source_warehouse_id": warehouse}, "audit_hints": {"interval": 10}}
        pair.src.workspace.mkdirs("/Shared/app")
        _write(pair.src, "# first\n")
        pair.sync(only=ONLY, **settings)  # the first read sets the checkpoint: earlier rows are not read
        clock.tick(20)
        _edit_as(pair, "mallory@example.com", "# broken by mallory\n")
        clock.tick(20)
        pair.sync(only=ONLY, **settings)

        pair.source.workspace.audit_delay_seconds = 60  # the next row shows a minute late
        clock.tick(20)
        _edit_as(pair, "eve@example.com", "# broken by eve\n")
        clock.tick(20)
        pair.sync(only=ONLY, **settings)  # the edit is replicated before its audit row shows
        late = _history(pair)
        clock.tick(60)
        pair.sync(only=ONLY, **settings)  # now the row is read

    versions = _history(pair)
    assert [v["action"] for v in versions] == ["create", "update", "update"]
    assert [v["by"] for v in versions] == ["unknown", "mallory@example.com", "eve@example.com"]
    assert late[2]["by"] == "unknown", "no row read yet: not guessed"
    assert [line[4] for line in _table(pair)] == ["unknown", "mallory@example.com", "eve@example.com"]


def test_an_acl_version_names_who_changed_the_acl_not_who_edited_the_notebook(pair: Pair) -> None:
    """changeWorkspaceAcl names the notebook by its workspace object id ("notebooks/<id>"): the ACL's version joins
    it through the object id dbsync keeps; the notebook's own versions join importNotebook rows only."""
    kinds = ["groups", "directories", "notebooks", "permissions"]
    with freeze_time("2026-12-05 00:00:00") as clock:
        warehouse = pair.src.warehouses.create(name="audit", cluster_size="2X-Small", auto_stop_mins=0).response.id
        settings = {
            "metastore": {"source_warehouse_id": warehouse},
            "audit_hints": {"interval": 10},
            "identities": {"create_users": True},
        }
        pair.src.groups.create(display_name="readers")
        pair.src.workspace.mkdirs("/Shared/app")
        _write(pair.src, "# first\n")
        pair.sync(only=kinds, **settings)
        clock.tick(20)
        workspace = pair.source.workspace
        before, workspace.admin_user = workspace.admin_user, "grace@example.com"
        try:
            object_id = str(pair.src.workspace.get_status(NOTEBOOK).object_id)
            acl = [iam.AccessControlRequest(group_name="readers", permission_level=iam.PermissionLevel.CAN_RUN)]
            pair.src.permissions.set("notebooks", object_id, access_control_list=acl)
        finally:
            workspace.admin_user = before
        clock.tick(20)
        pair.sync(only=kinds, **settings)

    listed = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "history", f"permissions:notebooks:{NOTEBOOK}", "--json"],
        capture_output=True,
        text=True,
        env=pair.env(),
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    acl_versions = json.loads(listed.stdout)
    assert [v["by"] for v in acl_versions][-1] == "grace@example.com"
    assert [v["by"] for v in _history(pair)] == ["unknown"], "the notebook itself was not edited by grace"
