"""/Repos/<email> paths follow `mapping.emails` in every kind, as /Users/<email> paths do.

The repos kind mapped its repos to /Repos/<target email>/..., but the directories kind mapped only /Users/<email>: it
made an empty /Repos/<source email> folder on the standby, and the mapped folder the repos kind made had no row (its
ACL never replicated, never deleted with the source's, an "extra" object in `validate`). A job running a notebook in
a repo pointed at the unmapped path. These tests drive two emulated workspaces over HTTP with the databricks-sdk, as
`sync --once` would.
"""

from __future__ import annotations

import base64
import json

import pytest
from conftest import Pair, run_cli
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service import compute, iam, jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.report import validate
from dbsync.store import Store

MAPPING = {"mapping": {"emails": {"@old.example": "@new.example"}}}
REPO_KINDS = ["directories", "notebooks", "files", "repos"]
REPO_URL = "https://github.com/acme/etl.git"
ANA_SOURCE, ANA_TARGET = "/Repos/ana@old.example", "/Repos/ana@new.example"
BOB_SOURCE = "/Repos/bob@old.example"


def _object_type(w: WorkspaceClient, path: str) -> str | None:
    try:
        status = w.workspace.get_status(path)
    except NotFound:
        return None
    return status.object_type.value if status.object_type else None


def _folder_row(pair: Pair, key: str) -> tuple[str | None, str | None] | None:
    """(target key, origin) of the directories row of a source folder; None when it has none."""
    store = Store(pair.state_path)
    try:
        prior = store.prior("directories", key)
        return (prior.target_key, prior.origin) if prior else None
    finally:
        store.close()


def _events(pair: Pair, key: str) -> list[dict]:
    store = Store(pair.state_path)
    try:
        return [e for e in store.events(limit=50) if e["source_key"] == key]
    finally:
        store.close()


def _plan(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config: dict) -> list[dict]:
    """`dbsync plan --kinds directories --json --config FILE` (mapping.emails has no environment variable)."""
    path = pair.state_path.parent / "dbsync.json"
    path.write_text(json.dumps(config))
    code, out, _ = run_cli(pair, monkeypatch, capsys, "plan", "--kinds", "directories", "--json", "--config", str(path))
    assert code == 0, out
    return json.loads(out)


def _seed_repos(pair: Pair) -> int:
    """Ana's and Bob's repos on the source; Bob's stays, so deleting Ana's is no mass delete."""
    repo = pair.src.repos.create(REPO_URL, "gitHub", path=f"{ANA_SOURCE}/etl")
    pair.src.repos.create(REPO_URL, "gitHub", path=f"{BOB_SOURCE}/etl")
    assert repo.id is not None
    return repo.id


def test_a_users_repos_folder_is_made_at_the_mapped_path_and_goes_with_the_sources(pair: Pair) -> None:
    repo_id = _seed_repos(pair)

    reports = pair.sync(only=REPO_KINDS, **MAPPING)

    assert all(r.errors == 0 for r in reports.values()), reports
    assert _object_type(pair.dst, f"{ANA_TARGET}/etl") == "REPO"
    assert _object_type(pair.dst, ANA_SOURCE) is None  # no empty folder under the source user's email
    assert _folder_row(pair, ANA_SOURCE) == (ANA_TARGET, "created")
    ctx = pair.context(**MAPPING)
    try:
        directories = validate(ctx, ["directories"]).kinds[0]
    finally:
        ctx.store.close()
    assert directories.extra == [] and directories.in_sync_percent == 100.0

    pair.src.repos.delete(repo_id)
    pair.src.workspace.delete(ANA_SOURCE, recursive=True)
    reports = pair.sync(only=REPO_KINDS, **MAPPING)

    assert all(r.errors == 0 for r in reports.values()), reports
    assert _object_type(pair.dst, ANA_TARGET) is None
    assert _object_type(pair.dst, "/Repos/bob@new.example/etl") == "REPO"


def test_the_mapped_repos_folder_gets_the_sources_acl(pair: Pair) -> None:
    for w in (pair.src, pair.dst):
        w.groups.create(display_name="etl")
    _seed_repos(pair)
    folder_id = str(pair.src.workspace.get_status(ANA_SOURCE).object_id)
    entry = iam.AccessControlRequest(group_name="etl", permission_level=iam.PermissionLevel.CAN_EDIT)
    pair.src.permissions.update("directories", folder_id, access_control_list=[entry])

    reports = pair.sync(only=[*REPO_KINDS, "permissions"], **MAPPING)

    assert reports["permissions"].errors == 0, reports
    target_id = str(pair.dst.workspace.get_status(ANA_TARGET).object_id)
    acl = pair.dst.permissions.get("directories", target_id).access_control_list or []
    levels = {e.group_name: p.permission_level for e in acl if e.group_name for p in e.all_permissions or []}
    assert levels.get("etl") == iam.PermissionLevel.CAN_EDIT


def test_a_folder_made_before_the_mapping_moves_to_the_mapped_path(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store written before /Repos/<email> followed the mapping recorded /Repos/<source email> as the folder's copy
    (an empty folder dbsync made): the next sync writes the mapped folder and deletes that empty one. The delete is
    one on every surface: the plan has its line, the summary counts it, an event names it (it was counted nowhere)."""
    _seed_repos(pair)
    pair.sync(only=["directories"])  # the folder at the source's path, as the directories kind wrote it then
    assert _folder_row(pair, ANA_SOURCE) == (ANA_SOURCE, "created")

    plan = _plan(pair, monkeypatch, capsys, MAPPING)
    assert {"action": "update", "kind": "directories", "key": ANA_SOURCE} in plan
    deletes = {line["key"]: line["reason"] for line in plan if line["action"] == "delete"}
    assert sorted(deletes) == [ANA_SOURCE, BOB_SOURCE]  # both users' folders move
    assert ANA_SOURCE in deletes[ANA_SOURCE] and ANA_TARGET in deletes[ANA_SOURCE]
    assert _object_type(pair.dst, ANA_SOURCE) == "DIRECTORY"  # a plan writes nothing

    reports = pair.sync(only=REPO_KINDS, **MAPPING)

    assert all(r.errors == 0 for r in reports.values()), reports
    assert reports["directories"].deleted == 2 and reports["directories"].updated == 2
    assert _folder_row(pair, ANA_SOURCE) == (ANA_TARGET, "created")
    assert _object_type(pair.dst, ANA_SOURCE) is None
    assert _object_type(pair.dst, f"{ANA_TARGET}/etl") == "REPO"
    (event,) = [e for e in _events(pair, ANA_SOURCE) if e["action"] == "delete"]
    assert event["outcome"] == "deleted" and f"the folder dbsync made at {ANA_SOURCE} was deleted" in event["message"]


def test_a_folder_moved_with_deletes_off_leaves_its_old_copy_and_says_so(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deletes.mode: off`: dbsync deletes nothing on the target, the copy a moved folder leaves behind included (it
    was deleted anyway, by a call that read no delete setting)."""
    deletes_off = {"deletes": {"mode": "off"}}
    _seed_repos(pair)
    pair.sync(only=["directories"], **deletes_off)
    assert _folder_row(pair, ANA_SOURCE) == (ANA_SOURCE, "created")

    plan = _plan(pair, monkeypatch, capsys, {**MAPPING, **deletes_off})
    assert {"action": "update", "kind": "directories", "key": ANA_SOURCE} in plan
    assert [line for line in plan if line["action"] == "delete"] == []

    reports = pair.sync(only=REPO_KINDS, **MAPPING, **deletes_off)

    assert all(r.errors == 0 for r in reports.values()), reports
    assert reports["directories"].deleted == 0
    assert _folder_row(pair, ANA_SOURCE) == (ANA_TARGET, "created")
    assert _object_type(pair.dst, ANA_SOURCE) == "DIRECTORY"
    assert _object_type(pair.dst, f"{ANA_TARGET}/etl") == "REPO"
    messages = [e["message"] for e in _events(pair, ANA_SOURCE)]
    assert any(f"the folder dbsync made at {ANA_SOURCE} stays: deletes.mode is off" in m for m in messages), messages


def test_a_folder_made_before_the_mapping_stays_when_it_holds_the_dr_teams_notebook(pair: Pair) -> None:
    """The old copy is deleted only as a source delete would be: one holding anything dbsync did not put there stays,
    and an event says where."""
    _seed_repos(pair)
    pair.sync(only=["directories"])
    runbook = base64.b64encode(b"print('failover')").decode()
    pair.dst.workspace.import_(
        f"{ANA_SOURCE}/runbook", content=runbook, format=ImportFormat.SOURCE, language=Language.PYTHON
    )

    reports = pair.sync(only=REPO_KINDS, **MAPPING)

    assert reports["directories"].errors == 0, reports
    assert _folder_row(pair, ANA_SOURCE) == (ANA_TARGET, "created")
    assert _object_type(pair.dst, f"{ANA_SOURCE}/runbook") == "NOTEBOOK"
    messages = [e["message"] for e in _events(pair, ANA_SOURCE)]
    assert any(f"the folder dbsync made at {ANA_SOURCE} stays" in m for m in messages), messages


def test_a_folder_the_dr_team_made_at_the_mapped_path_stays_theirs(pair: Pair) -> None:
    repo_id = _seed_repos(pair)
    pair.dst.workspace.mkdirs(ANA_TARGET)

    pair.sync(only=REPO_KINDS, **MAPPING)
    assert _folder_row(pair, ANA_SOURCE) == (ANA_TARGET, "adopted")

    pair.src.repos.delete(repo_id)
    pair.src.workspace.delete(ANA_SOURCE, recursive=True)
    pair.sync(only=REPO_KINDS, **MAPPING)
    assert _object_type(pair.dst, ANA_TARGET) == "DIRECTORY"


def test_job_paths_in_a_users_repo_follow_the_mapping_and_others_stay(pair: Pair) -> None:
    pair.src.jobs.create(
        name="etl from the repo",
        environments=[
            jobs.JobEnvironment(
                environment_key="default",
                spec=compute.Environment(client="2", dependencies=[f"-r /Workspace{ANA_SOURCE}/etl/requirements.txt"]),
            )
        ],
        tasks=[
            jobs.Task(task_key="ingest", notebook_task=jobs.NotebookTask(notebook_path=f"{ANA_SOURCE}/etl/ingest")),
            jobs.Task(
                task_key="transform",
                environment_key="default",
                spark_python_task=jobs.SparkPythonTask(python_file=f"/Workspace{ANA_SOURCE}/etl/transform.py"),
            ),
            jobs.Task(task_key="report", notebook_task=jobs.NotebookTask(notebook_path="/Repos/team/etl/report")),
        ],
    )

    reports = pair.sync(only=["jobs"], **MAPPING)

    assert reports["jobs"].created == 1 and reports["jobs"].errors == 0, reports
    (listed,) = list(pair.dst.jobs.list())
    settings = pair.dst.jobs.get(listed.job_id).settings
    assert settings is not None
    tasks = {t.task_key: t for t in settings.tasks or []}
    assert tasks["ingest"].notebook_task.notebook_path == f"{ANA_TARGET}/etl/ingest"  # type: ignore[union-attr]
    assert tasks["transform"].spark_python_task.python_file == f"/Workspace{ANA_TARGET}/etl/transform.py"  # type: ignore[union-attr]
    assert tasks["report"].notebook_task.notebook_path == "/Repos/team/etl/report"  # type: ignore[union-attr]
    (environment,) = settings.environments or []
    assert environment.spec.dependencies == [f"-r /Workspace{ANA_TARGET}/etl/requirements.txt"]  # type: ignore[union-attr]
