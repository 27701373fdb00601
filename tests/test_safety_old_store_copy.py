"""dbsync never writes into a workspace that has become the primary, whatever store it runs with.

The cases an operator meets after a cutover: a copy of the store taken before it (a backup, a second
daemon's volume) run against the new primary while its role marker cannot be read; a copy that holds
only the record of a refused attempt, run with `cutover` or `cutover --rollback`; and the markers of a
pair whose store was first bound by `dbsync plan`. Each drives `dbsync` in-process against two
emulators over HTTP and checks what the operator sees: the new primary's jobs, its marker, the exit.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import Pair, run_cli
from databricks.sdk.errors import NotFound
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.cutover import CutoverError, Runbook, open_cutover_context
from dbsync.role import MARKER_PATH
from dbsync.roles import StoreRole

TASKS = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))]
ENVIRONMENTS = [jobs.JobEnvironment(environment_key="e")]
HOURLY = jobs.CronSchedule(
    quartz_cron_expression="0 0 * * * ?", timezone_id="UTC", pause_status=jobs.PauseStatus.UNPAUSED
)
MARKER_EXPORT = "/api/2.0/workspace/export"  # the marker's read: every workspace file's export answers 500


class Cli:
    """`dbsync …` in-process for one pair; users may be created on the target (so validation can pass)."""

    def __init__(self, pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.pair, self.monkeypatch, self.capsys = pair, monkeypatch, capsys

    def __call__(self, *argv: str, **env: str) -> tuple[int, str, str]:
        env = {"DBSYNC_IDENTITIES__CREATE_USERS": "true", **env}
        return run_cli(self.pair, self.monkeypatch, self.capsys, *argv, env=env)


@pytest.fixture
def cli(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(pair, monkeypatch, capsys)


def _marker(w: Any) -> dict[str, Any]:
    return json.loads(base64.b64decode(w.workspace.export(MARKER_PATH).content or ""))


def _schedules(w: Any) -> dict[str, str]:
    """{job name: its schedule's pause status} as the workspace shows it."""
    return {j.settings.name: j.settings.schedule.pause_status.value for j in w.jobs.list() if j.settings.schedule}


def _backup(pair: Pair, to: Path) -> Path:
    """A consistent copy of the store (SQLite's online backup, its WAL included) and its key, as a backup takes."""
    with sqlite3.connect(pair.state_path) as source, sqlite3.connect(to) as copy:
        source.backup(copy)
    shutil.copy(f"{pair.state_path}.hmac-key", f"{to}.hmac-key")
    return to


def _hourly_job(pair: Pair) -> int:
    return pair.src.jobs.create(name="hourly", tasks=TASKS, environments=ENVIRONMENTS, schedule=HOURLY).job_id


def test_an_old_store_copy_writes_nothing_while_the_new_primarys_marker_cannot_be_read(
    pair: Pair, cli: Cli, tmp_path: Path
) -> None:
    job_id = _hourly_job(pair)
    assert cli("sync", "--once")[0] == 0
    copy = _backup(pair, tmp_path / "backup.db")  # taken before the cutover
    code, _, err = cli("cutover", "--yes")
    assert code == 0, err
    assert _schedules(pair.dst) == {"hourly": "UNPAUSED"}

    pair.src.jobs.update(job_id, new_settings=jobs.JobSettings(max_concurrent_runs=2))  # a change the copy has not seen
    pair.target.set_faults(rate_500=1.0, path_prefix=MARKER_EXPORT)
    pair.reset_stats()
    code, out, err = cli("sync", "--once", "--kinds", "jobs", DBSYNC_STATE_PATH=str(copy))

    assert code == 1, out + err
    assert f"cannot read the role marker {MARKER_PATH} of the target" in out + err
    assert "nothing is written to a target whose role is unknown" in out + err
    assert pair.target_writes() == 0
    assert _schedules(pair.dst) == {"hourly": "UNPAUSED"}

    pair.target.set_faults()  # the marker answers again: it says primary, and the copy is refused by it
    code, out, err = cli("sync", "--once", "--kinds", "jobs", DBSYNC_STATE_PATH=str(copy))
    assert code == 1 and "is the primary" in out + err, out + err
    assert pair.target_writes() == 0
    assert _schedules(pair.dst) == {"hourly": "UNPAUSED"}


def test_a_missing_target_marker_does_not_stop_replication(pair: Pair, cli: Cli) -> None:
    _hourly_job(pair)
    assert cli("sync", "--once")[0] == 0
    pair.dst.workspace.delete(MARKER_PATH)  # an admin removed it: a 404 is "no marker", not an unreadable one
    pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS)
    code, _, err = cli("sync", "--once", "--kinds", "jobs")
    assert code == 0, err
    assert {j.settings.name for j in pair.dst.jobs.list()} == {"hourly", "nightly"}
    assert _marker(pair.dst)["role"] == "standby"  # written again before that first write


def test_plan_before_the_first_sync_still_marks_both_workspaces(pair: Pair, cli: Cli) -> None:
    pair.src.workspace.mkdirs("/Shared/etl")
    notebook = io.BytesIO(b"# Databricks notebook source\nprint(1)")
    pair.src.workspace.upload("/Shared/etl/a", notebook, format=ImportFormat.SOURCE, language=Language.PYTHON)
    code, _, err = cli("plan")  # the README's order: plan, then sync --once
    assert code == 0, err
    for w in (pair.src, pair.dst):
        with pytest.raises(NotFound):
            w.workspace.export(MARKER_PATH)  # plan writes nothing
    code, _, err = cli("sync", "--once")
    assert code == 0, err
    assert pair.dst.workspace.get_status("/Shared/etl/a")
    assert _marker(pair.dst)["role"] == "standby" and _marker(pair.src)["role"] == "primary"


def _copy_with_a_refused_attempt(pair: Pair, cli: Cli, tmp_path: Path) -> Path:
    """A store copy taken after a cutover attempt validation refused; then the real cutover, with the store."""
    _hourly_job(pair)
    pair.src.users.create(user_name="ann@example.com")  # not created on the target: the first attempt is refused
    code, _, err = cli("sync", "--once", DBSYNC_IDENTITIES__CREATE_USERS="false")
    assert code == 0, err
    code, _, err = cli("cutover", "--yes", DBSYNC_IDENTITIES__CREATE_USERS="false")
    assert code == 1 and "not ready" in err, err
    copy = _backup(pair, tmp_path / "backup.db")
    code, _, err = cli("cutover", "--yes", "--force")
    assert code == 0, err
    assert _marker(pair.dst)["role"] == "primary"
    assert _schedules(pair.dst) == {"hourly": "UNPAUSED"}
    return copy


def test_an_old_store_copy_with_a_refused_attempt_does_not_cut_over_the_new_primary(
    pair: Pair, cli: Cli, tmp_path: Path
) -> None:
    copy = _copy_with_a_refused_attempt(pair, cli, tmp_path)
    target_job = next(iter(pair.dst.jobs.list()))
    pair.dst.jobs.update(target_job.job_id, new_settings=jobs.JobSettings(max_concurrent_runs=3))  # the team's edit
    source_job = next(iter(pair.src.jobs.list()))
    pair.src.jobs.update(source_job.job_id, new_settings=jobs.JobSettings(name="hourly (old)"))
    pair.reset_stats()

    code, out, err = cli("cutover", "--yes", DBSYNC_STATE_PATH=str(copy))

    assert code == 2, out + err
    assert "is the primary" in err, err
    assert pair.target_writes() == 0
    assert _schedules(pair.dst) == {"hourly": "UNPAUSED"}
    assert pair.dst.jobs.get(target_job.job_id).settings.max_concurrent_runs == 3


def test_an_old_store_copy_does_not_roll_back_the_new_primary(pair: Pair, cli: Cli, tmp_path: Path) -> None:
    copy = _copy_with_a_refused_attempt(pair, cli, tmp_path)
    pair.reset_stats()

    code, out, err = cli("cutover", "--rollback", "--yes", DBSYNC_STATE_PATH=str(copy))

    assert code == 2, out + err
    assert "a cutover this store did not complete" in err, err
    assert "with the store of the cutover that promoted it" in err, err
    assert pair.target_writes() == 0
    assert _marker(pair.dst)["role"] == "primary" and _marker(pair.src)["role"] == "standby"
    assert _schedules(pair.dst) == {"hourly": "UNPAUSED"}
    code, _, err = cli("cutover", "--rollback", "--yes")  # the store that cut over still may
    assert code == 0, err
    assert _marker(pair.dst)["role"] == "standby"
    assert _schedules(pair.dst) == {"hourly": "PAUSED"}


def test_the_cutovers_final_sync_is_fenced_like_any_sync(pair: Pair, cli: Cli) -> None:
    assert cli("sync", "--once")[0] == 0
    _hourly_job(pair)  # a change for the final sync to write
    ctx = open_cutover_context(pair.settings(identities={"create_users": True}))
    try:
        pair.target.set_faults(rate_500=1.0, path_prefix=MARKER_EXPORT)  # after the open's own marker check
        pair.reset_stats()
        refused = r"final_sync: the final sync was refused: .*cannot read the role marker"
        with pytest.raises(CutoverError, match=refused):
            Runbook(ctx).run()
    finally:
        ctx.store.close()
    assert pair.target_writes() == 0
    assert not list(pair.dst.jobs.list())


def test_a_cutover_killed_between_marking_the_target_and_saving_its_role_resumes(
    pair: Pair, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 3 marks the target promoting, then saves the store's role: a kill -9 between the two leaves a standby
    store whose own marker says promoting. The same store's cutover, run again, must go on (not refuse itself)."""
    _hourly_job(pair)
    assert cli("sync", "--once")[0] == 0
    set_role = Runbook.set_role

    def killed(book: Runbook, role: str) -> None:
        if role == StoreRole.CUTOVER_IN_PROGRESS:
            book._write_markers(role)
            raise KeyboardInterrupt  # the process dies: the marker is written, the store's role is not
        set_role(book, role)

    monkeypatch.setattr(Runbook, "set_role", killed)
    with contextlib.suppress(KeyboardInterrupt):
        cli("cutover", "--yes")
    monkeypatch.setattr(Runbook, "set_role", set_role)
    assert _marker(pair.dst)["role"] == "promoting"

    code, out, err = cli("cutover", "--yes")

    assert code == 0, out + err
    assert _marker(pair.dst)["role"] == "primary" and _marker(pair.src)["role"] == "standby"
    assert _schedules(pair.src) == {"hourly": "PAUSED"} and _schedules(pair.dst) == {"hourly": "UNPAUSED"}
