"""The `dbsync` command as a user runs it: real subprocesses, exit codes, messages, no secrets printed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Pair

from dbsync_emulator import start_emulator


def dbsync(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DBSYNC_", "DATABRICKS_"))}
    return subprocess.run(
        [sys.executable, "-m", "dbsync.cli", *args],
        capture_output=True,
        text=True,
        env=env or base,
        cwd=cwd,
        timeout=timeout,
    )


def test_help_explains_every_command() -> None:
    result = dbsync("--help")
    assert result.returncode == 0
    for command in ("emulator", "demo", "sync", "plan", "status", "validate"):
        assert command in result.stdout
    assert "DBSYNC_SOURCE__HOST" in result.stdout


@pytest.mark.parametrize(
    ("drop", "setting"),
    [("DBSYNC_SOURCE__HOST", "source.host"), ("DBSYNC_TARGET__TOKEN", "target.token")],
)
def test_missing_setting_is_one_line_naming_it_and_the_fix(pair: Pair, drop: str, setting: str, tmp_path: Path) -> None:
    env = pair.env()
    del env[drop]
    result = dbsync("sync", "--once", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0] and drop in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_value_in_config_file_is_reported_with_its_name(pair: Pair, tmp_path: Path) -> None:
    config = tmp_path / "dbsync.yaml"
    config.write_text("deletes:\n  max_ratio: 7\n")
    result = dbsync("sync", "--once", "--config", str(config), env=pair.env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "deletes.max_ratio" in result.stderr and "DBSYNC_DELETES__MAX_RATIO" in result.stderr


def test_unreachable_workspace_fails_fast_with_the_host(pair: Pair, tmp_path: Path) -> None:
    env = pair.env()
    env["DBSYNC_TARGET__HOST"] = "http://127.0.0.1:9"  # discard port: nothing listens
    result = dbsync("sync", "--once", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "cannot reach the target workspace at http://127.0.0.1:9" in result.stderr


def test_sync_once_subprocess_prints_summary_and_never_a_token(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.upload("/Shared/a.py", io.BytesIO(b"print(1)"), overwrite=True)
    result = dbsync("sync", "--once", "--log-level", "DEBUG", env=pair.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "notebooks" in result.stdout and "created" in result.stdout
    for token in (pair.source.token, pair.target.token):
        assert token not in result.stdout and token not in result.stderr
    for line in result.stderr.splitlines():
        json.loads(line)  # structured logs: one JSON object per line
    assert pair.dst.workspace.download("/Shared/a.py").read().endswith(b"print(1)")

    status = dbsync("status", "--json", env=pair.env(), cwd=tmp_path)
    assert status.returncode == 0
    assert json.loads(status.stdout)["counts"]["notebooks"] == {"synced": 1}


def test_sync_exits_1_when_a_change_failed(pair: Pair, tmp_path: Path) -> None:
    from databricks.sdk.service import jobs

    cluster = pair.src.clusters.create(
        cluster_name="gone", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
    ).response.cluster_id
    pair.src.jobs.create(
        name="broken",
        tasks=[
            jobs.Task(task_key="t", existing_cluster_id=cluster, notebook_task=jobs.NotebookTask(notebook_path="/x"))
        ],
    )
    pair.src.clusters.permanent_delete(cluster)
    result = dbsync("sync", "--once", "--kinds", "clusters,jobs", "--json", env=pair.env(), cwd=tmp_path)
    assert result.returncode == 1
    summary = {r["kind"]: r for r in json.loads(result.stdout)}
    assert summary["jobs"]["errors"] == 1


def test_store_of_another_workspace_pair_is_refused(pair: Pair, tmp_path: Path) -> None:
    assert dbsync("sync", "--once", "--kinds", "directories", env=pair.env(), cwd=tmp_path).returncode == 0
    other = start_emulator(token="other-target-token")
    try:
        env = pair.env()
        env["DBSYNC_TARGET__HOST"], env["DBSYNC_TARGET__TOKEN"] = other.url, other.token
        result = dbsync("sync", "--once", env=env, cwd=tmp_path)
        assert result.returncode == 2
        assert "belongs to workspaces" in result.stderr and str(pair.state_path) in result.stderr
        assert other.stats.document()["endpoints"].get("POST /api/2.0/workspace/mkdirs") is None
    finally:
        other.stop()


def test_corrupt_store_is_a_clear_error(pair: Pair, tmp_path: Path) -> None:
    pair.state_path.write_bytes(b"this is not a database" * 100)
    result = dbsync("sync", "--once", env=pair.env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "corrupt" in result.stderr and "move it aside" in result.stderr
    assert pair.target_writes() == 0


def test_unknown_kind_is_a_usage_error(pair: Pair, tmp_path: Path) -> None:
    result = dbsync("sync", "--once", "--kinds", "notebooks,wizards", env=pair.env(), cwd=tmp_path)
    assert result.returncode == 2 and "wizards" in result.stderr and "known kinds" in result.stderr


def test_plan_lists_changes_without_writing(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.upload("/Shared/p.py", io.BytesIO(b"print(1)"), overwrite=True)
    result = dbsync("plan", env=pair.env(), cwd=tmp_path)
    assert result.returncode == 0
    assert "create  notebooks" in result.stdout and "/Shared/p.py" in result.stdout
    assert pair.target_writes() == 0


def test_validate_exit_code_follows_readiness(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.upload("/Shared/v.py", io.BytesIO(b"print(1)"), overwrite=True)
    not_ready = dbsync("validate", "--format", "json", env=pair.env(), cwd=tmp_path)
    assert not_ready.returncode == 1
    assert json.loads(not_ready.stdout)["ready_for_cutover"] is False
    assert dbsync("sync", "--once", env=pair.env(), cwd=tmp_path).returncode == 0
    ready = dbsync("validate", env=pair.env(), cwd=tmp_path)
    assert ready.returncode == 0 and "ready for cutover: yes" in ready.stdout


def test_emulator_command_serves_until_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbsync.cli", "emulator", "--port", "0", "--seed-objects", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "serving http://127.0.0.1:" in line
        url = line.split("serving ")[1].split()[0]
        import httpx

        listing = httpx.get(f"{url}/api/2.2/jobs/list", headers={"Authorization": "Bearer dapi-emulator-token"})
        assert listing.status_code == 200 and listing.json()["jobs"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
