"""An event says what the store says of its object: `partial`, `skipped` or `synced`, never one word for another.

The engine recorded every note a replicator left on an apply as `skipped`: a job ACL written with one entry left out
(the store: `partial`) and a service principal created whole with a note naming the mapping to add (the store:
`synced`) read `skipped` in the event log, so a reader counting `skipped` events counted objects that were written.
"""

from __future__ import annotations

import json
import logging

import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import iam, jobs

KINDS = ["service_principals", "users", "jobs", "permissions"]
APP_ID = "6e1a3c1e-0000-4000-8000-000000000002"
MISSING_USER = "ana.ruiz@example.com"


def test_an_apply_event_has_the_word_the_store_has_for_its_object(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    pair.target.workspace.scim_assigns_application_ids = True  # AWS / GCP: the copy gets an applicationId of its own
    src = pair.src
    src.service_principals.create(display_name="etl-bot", application_id=APP_ID)
    src.users.create(user_name=MISSING_USER)  # not created on the target: identities.create_users is false
    job_id = src.jobs.create(
        name="nightly-etl",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    ).job_id
    src.permissions.update(
        "jobs",
        str(job_id),
        access_control_list=[
            iam.AccessControlRequest(user_name=MISSING_USER, permission_level=iam.PermissionLevel.CAN_VIEW)
        ],
    )

    with caplog.at_level(logging.INFO, logger="dbsync"):
        reports = pair.sync(only=KINDS)

    assert reports["service_principals"].created == 1 and reports["users"].skipped == 1
    assert reports["permissions"].partial == 1
    code, out, _ = run_cli(pair, monkeypatch, capsys, "status", "--json")
    counts = json.loads(out)["counts"]
    assert code == 0
    assert counts["service_principals"] == {"synced": 1} and counts["users"]["skipped"] == 1  # the admin: synced
    assert counts["permissions"] == {"partial": 1}

    events = pair.context().store.events(limit=200)
    said = {e["kind"]: e for e in events if e["action"] in ("create", "update")}
    assert {kind: e["outcome"] for kind, e in said.items()} == {
        "service_principals": "synced",  # created whole: the note names the mapping to add
        "users": "skipped",  # nothing written, on purpose
        "permissions": "partial",  # written, the missing user's entry left out
    }
    assert "add mapping.principals" in said["service_principals"]["message"]
    assert MISSING_USER in said["permissions"]["message"] and MISSING_USER in said["users"]["message"]
    written = [e for e in events if e["outcome"] == "skipped" and e["kind"] != "users"]
    assert written == [], "an object that was written is never a `skipped` event"
    # Each is still a warning in the log: a person has something to read (a mapping to add, a user to provision).
    logged = {r.getMessage(): r.levelno for r in caplog.records if r.name == "dbsync"}
    assert all(logged.get(e["message"]) == logging.WARNING for e in said.values()), logged
