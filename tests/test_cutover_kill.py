"""`dbsync cutover` killed (kill -9) in steps 3 to 6 with a late job, then run again: the end state a user checks.

Step 3 pauses the source's jobs, unpauses their copies and replicates the jobs created after the final sync, with
their ACL; step 4 unpauses those. Each write is recorded before it is made, so a run again after a kill at any point
must finish the same cutover: every source job paused, each job that ran on the source running on the target once
(no second copy of a late job whose create reached the target before its record), the late job's copy owned by its
source owner, and a rollback that puts both sides back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Pair, endpoint_count
from databricks.sdk.service import iam, jobs
from test_cutover import ENVIRONMENTS, READY, TASKS, _cron, _running, _states

from dbsync.cutover import Runbook, open_cutover_context

ON, OFF = jobs.PauseStatus.UNPAUSED, jobs.PauseStatus.PAUSED
# `dbsync cutover` as the CLI runs it, but without the 12 s marker wait (tests/conftest.py does the same in-process;
# tests/test_fence_wait.py checks the wait): each run again would wait it out in step 3 and again in step 4.
# Where each run is killed: as the target answers its first request of this endpoint (the write has reached it).
KILL_AFTER = (
    "POST /api/2.2/jobs/update",  # step 3: a copy unpaused as its source job was paused
    "POST /api/2.2/jobs/create",  # step 3: the late job's copy created, not recorded yet
    "PUT /api/2.0/permissions/{type:path}/{id}",  # step 3: its ACL written (its record, then the step's, to come)
    "POST /api/2.2/jobs/update",  # step 4 (step 3 did all its writes in the runs before): the late copy unpaused
)
CLI_IN_TEST_TIME = (
    "import sys; from dbsync.cutover import Runbook; Runbook.sleep = staticmethod(lambda seconds: None); "
    "from dbsync.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _cutover(pair: Pair, cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = pair.env() | {"DBSYNC_IDENTITIES__CREATE_USERS": "true", "DBSYNC_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-c", CLI_IN_TEST_TIME, "cutover", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _owner(w: Any, name: str) -> str:
    job_id = next(j.job_id for j in w.jobs.list() if j.settings.name == name)
    acl = w.permissions.get("jobs", str(job_id)).access_control_list or []
    return next(e.user_name for e in acl for p in e.all_permissions or [] if p.permission_level.value == "IS_OWNER")


@pytest.fixture
def late(pair: Pair) -> dict[str, dict[str, str]]:
    """Three replicated source jobs (two unpaused), then a cutover killed right after validation while alice creates
    `late` on the source: its final sync did not carry it. The source's pause states then, by job name."""
    pair.src.users.create(user_name="alice@example.com")
    for name, status in (("nightly", ON), ("hourly", ON), ("weekly", OFF)):
        pair.src.jobs.create(name=name, tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(status))
    pair.sync(**READY)

    def killed_after_validation(event: str, name: str, detail: dict) -> None:
        if event == "step" and name == "validate" and detail["state"] == "done":
            job_id = pair.src.jobs.create(
                name="late", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(ON)
            ).job_id
            acl = [
                iam.AccessControlRequest(user_name="alice@example.com", permission_level=iam.PermissionLevel.IS_OWNER)
            ]
            pair.src.permissions.set("jobs", str(job_id), access_control_list=acl)
            raise KeyboardInterrupt

    ctx = open_cutover_context(pair.settings(**READY))
    try:
        with pytest.raises(KeyboardInterrupt):
            Runbook(ctx, progress=killed_after_validation).run()
    finally:
        ctx.store.close()
    return _states(pair.src)


def test_a_cutover_killed_in_steps_3_and_4_with_a_late_job_finishes_once_and_rolls_back(
    pair: Pair, late: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    pair.target.set_faults(latency_ms=30)  # the run's next target request waits while the kill lands
    killed = []
    for endpoint in KILL_AFTER:
        pair.reset_stats()
        proc = _cutover(pair, tmp_path, "--yes")
        deadline = time.monotonic() + 30
        while endpoint_count(pair.target, endpoint) == 0 and proc.poll() is None:
            assert time.monotonic() < deadline, f"the cutover never sent {endpoint}"
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(endpoint)
        proc.communicate(timeout=30)
    pair.target.set_faults()
    # A kill that lands late (a busy machine) can leave a later run nothing to be killed at: it then finishes.
    assert len(killed) >= 2, killed

    final = _cutover(pair, tmp_path, "--yes")
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0, out + err[-2000:]

    assert _running(_states(pair.src)) == set(), "every source job is paused"
    assert _running(_states(pair.dst)) == {"nightly", "hourly", "late"}
    names = sorted(j.settings.name for j in pair.dst.jobs.list())
    assert names == ["hourly", "late", "nightly", "weekly"], "each job has one copy"
    assert _owner(pair.dst, "late") == "alice@example.com"

    rollback = _cutover(pair, tmp_path, "--rollback", "--yes")
    out, err = rollback.communicate(timeout=60)
    assert rollback.returncode == 0, out + err[-2000:]
    assert _states(pair.src) == late, "the source runs as before the cutover"
    assert _running(_states(pair.dst)) == set(), "the target is a paused standby again"
