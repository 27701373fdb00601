"""`dbsync history` and `dbsync restore` (issue 18, item 3): the standby as it was before a bad change.

The source is edited and has objects deleted and added after a good moment T; the cycle after copies all of
that to the standby. `restore --at T --apply --pin` puts the standby back: compared independently through the
SDK with what the source held at T (nothing duplicated), and the next cycle reports the source's differences as
`pending` instead of copying them over the restore, until `restore --unpin`.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language, ObjectType
from test_cli_help import test_help_has_description_exit_codes_and_option_help as help_is_complete

from dbsync.store.versions import Versions, versions_path

APP = "/Shared/app"


def _write(w: WorkspaceClient, path: str, text: str) -> None:
    content = base64.b64encode(text.encode()).decode()
    w.workspace.import_(path, content=content, format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)


def _job(w: WorkspaceClient, name: str, notebook: str) -> int:
    task = jobs.Task(task_key="main", notebook_task=jobs.NotebookTask(notebook_path=notebook))
    return w.jobs.create(name=name, tasks=[task]).job_id or 0


def _state(w: WorkspaceClient) -> dict[str, Any]:
    """What a person would compare: the app's notebooks and their source, the jobs by name with their task."""
    notebooks = {
        o.path: w.workspace.download(o.path).read()
        for o in w.workspace.list(APP)
        if o.object_type == ObjectType.NOTEBOOK and o.path
    }
    named = [(j.settings.name, j.job_id) for j in w.jobs.list() if j.settings]
    tasks = {}
    for name, job_id in named:
        task = (w.jobs.get(job_id).settings.tasks or [])[0]
        tasks[name] = task.notebook_task.notebook_path if task.notebook_task else None
    return {"notebooks": notebooks, "job_names": sorted(n for n, _ in named), "tasks": tasks}


def _dbsync(pair: Pair, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbsync.cli", *args], capture_output=True, text=True, env=pair.env(), timeout=300
    )


def _good_then_bad(pair: Pair) -> tuple[float, dict[str, Any]]:
    src = pair.src
    src.workspace.mkdirs(APP)
    for i in range(6):
        _write(src, f"{APP}/nb{i}", f"# good {i}\n" + "x = 1\n" * 20)
    _job(src, "etl", f"{APP}/nb0")
    doomed_job = _job(src, "report", f"{APP}/nb1")
    pair.sync()
    good = _state(src)
    moment = time.time()

    _write(src, f"{APP}/nb2", "# broken by a script\n")
    _write(src, f"{APP}/nb3", "# broken by a script\n")
    src.workspace.delete(f"{APP}/nb4")
    _write(src, f"{APP}/added_later", "# new after the moment\n")
    etl = next(j.job_id for j in src.jobs.list() if j.settings and j.settings.name == "etl")
    src.jobs.update(etl, new_settings=jobs.JobSettings(name="etl-renamed"))
    src.jobs.delete(doomed_job)
    reports = pair.sync()
    assert reports["notebooks"].updated == 2 and reports["notebooks"].deleted == 1 and reports["jobs"].deleted == 1
    assert _state(pair.dst) != good, "the bad change reached the standby"
    return moment, good


def test_restore_as_of_a_time_brings_the_standby_back_and_pin_keeps_it(pair: Pair) -> None:
    moment, good = _good_then_bad(pair)
    bad = _state(pair.dst)

    pair.reset_stats()
    plan = _dbsync(pair, "restore", "--at", str(moment))
    assert plan.returncode == 0, plan.stderr
    assert pair.target_writes() == 0, "--dry-run is the default: nothing written"
    assert f"write   notebooks            {APP}/nb4" in plan.stdout
    assert f"delete  notebooks            {APP}/added_later" in plan.stdout
    assert "planned (dry run: pass --apply to write)" in plan.stdout
    assert _state(pair.dst) == bad

    applied = _dbsync(pair, "restore", "--at", str(moment), "--apply", "--pin")
    assert applied.returncode == 0, applied.stdout + applied.stderr

    restored = _state(pair.dst)
    assert restored["notebooks"] == good["notebooks"]
    assert restored["job_names"] == good["job_names"], "each job once: nothing duplicated"
    assert restored["tasks"] == good["tasks"]

    pair.reset_stats()
    after = _dbsync(pair, "sync", "--once")
    assert after.returncode == 1, "pinned: not in step with the source, and it says so"
    assert "pending: pinned by `dbsync restore --pin`" in after.stderr
    assert pair.target_writes() == 0, "the pinned restore is not silently overwritten"
    assert _state(pair.dst) == restored
    planned = _dbsync(pair, "plan")
    assert planned.returncode == 1, "a plan is a promise about sync: pinned changes are not in step there either"
    assert f"pending notebooks            {APP}/nb2" in planned.stdout, planned.stdout
    assert f"pending notebooks            {APP}/nb4" in planned.stdout, "the delete the pin keeps back, named too"
    assert "update  notebooks" not in planned.stdout, "a plan never promises a write the pin refuses"
    reports = pair.sync()
    assert reports["notebooks"].pending == 4  # 2 edited, 1 deleted, 1 added on the source since the moment
    assert reports["jobs"].pending == 2  # the rename, and the job deleted on the source

    assert _dbsync(pair, "restore", "--unpin").returncode == 0
    pair.sync()
    assert _state(pair.dst) == _state(pair.src), "unpinned: the source is copied again"


def test_history_lists_versions_and_one_version_can_be_restored(pair: Pair) -> None:
    _good_then_bad(pair)
    listed = _dbsync(pair, "history", f"notebooks:{APP}/nb2")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [line[2] for line in lines] == ["create", "update"]
    assert all(line[-1] == f"notebooks:{APP}/nb2" for line in lines)
    assert _dbsync(pair, "history", f"{APP}/nb2").stdout == listed.stdout, "a path finds it too"
    assert _dbsync(pair, "history", "/nowhere").returncode == 1

    first = lines[0][0]
    restored = _dbsync(pair, "restore", "--version", first, "--apply")
    assert restored.returncode == 0, restored.stderr
    good = Versions(versions_path(pair.state_path)).content(Versions(versions_path(pair.state_path)).get(int(first)))
    assert pair.dst.workspace.download(f"{APP}/nb2").read() == good[1]
    assert pair.dst.workspace.download(f"{APP}/nb3").read() != good[1], "only the chosen object"


@pytest.mark.parametrize("command", ["history", "restore", "confirm-updates"])
def test_new_commands_have_help_with_exit_codes(command: str) -> None:
    help_is_complete(command)
