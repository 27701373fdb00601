"""A cutover waits out the other writers' cached "standby" before anything runs on the target.

Another `dbsync serve` writing into the target (on a copy of the store, or an old daemon left running)
reads the target's role marker at most every MARKER_TTL_SECONDS. One that read it as standby just before
the cutover marked the target promoting went on writing for the rest of those seconds, and its next
write of a job paused again the copy the cutover had just unpaused: the job then ran nowhere. Each test
drives the cutover and that second daemon over HTTP against two emulators, freezegun's clock standing
in for the seconds the cutover waits.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import jobs
from freezegun import freeze_time

from dbsync.config import reversed_settings
from dbsync.context import open_context
from dbsync.cutover import Runbook, open_cutover_context
from dbsync.engine import Engine
from dbsync.pacing import RequestBudget
from dbsync.reverse import seed_reverse_store
from dbsync.role import MARKER_WAIT_SECONDS, WriteFenced, monotonic, write_marker

TASKS = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))]
ENVIRONMENTS = [jobs.JobEnvironment(environment_key="e")]
HOURLY = jobs.CronSchedule(
    quartz_cron_expression="0 0 * * * ?", timezone_id="UTC", pause_status=jobs.PauseStatus.UNPAUSED
)
READY = {"identities": {"create_users": True}}  # the emulated target has no identity provider


def _schedules(w: object) -> dict[str, str]:
    """{job name: its schedule's pause status} as the workspace shows it."""
    return {
        j.settings.name: j.settings.schedule.pause_status.value
        for j in w.jobs.list()  # type: ignore[attr-defined]
        if j.settings.schedule
    }


def _store_copy(pair: Pair, to: Path) -> Path:
    """A consistent copy of the store and its key: what a second daemon's volume holds."""
    with sqlite3.connect(pair.state_path) as source, sqlite3.connect(to) as copy:
        source.backup(copy)
    shutil.copy(f"{pair.state_path}.hmac-key", f"{to}.hmac-key")
    return to


@pytest.mark.parametrize("skip_source", [False, True], ids=["cutover", "skip-source"])
def test_a_second_daemon_that_read_the_marker_as_standby_does_not_pause_the_jobs_the_cutover_started(
    pair: Pair, tmp_path: Path, skip_source: bool
) -> None:
    hourly = pair.src.jobs.create(name="hourly", tasks=TASKS, environments=ENVIRONMENTS, schedule=HOURLY).job_id
    pair.sync(**READY)
    second = _store_copy(pair, tmp_path / "second.db")
    with freeze_time("2026-12-05 00:00:00") as clock:
        daemon = open_context(pair.settings(state_path=str(second), **READY))
        try:
            pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS)
            Engine(daemon).cycle(["jobs"])  # it writes, so its fence reads the target's marker: standby
            assert "nightly" in {j.settings.name for j in pair.dst.jobs.list()}
            # A change its next cycle writes to the hourly job's copy (with every trigger paused, as on a standby).
            pair.src.jobs.update(hourly, new_settings=jobs.JobSettings(max_concurrent_runs=2))
            clock.tick(1)

            ctx = open_cutover_context(pair.settings(**READY), need_source=not skip_source, force=skip_source)
            try:
                Runbook(ctx, skip_source=skip_source, sleep=clock.tick).run()
            finally:
                ctx.store.close()
            assert _schedules(pair.dst)["hourly"] == "UNPAUSED"

            pair.reset_stats()
            engine = Engine(daemon)
            engine.cycle(["jobs"])  # its next cycle, as soon as the cutover is over
        finally:
            daemon.store.close()

    assert _schedules(pair.dst)["hourly"] == "UNPAUSED", "the job runs on the new primary"
    assert engine.fenced and "is the primary" in engine.fenced, engine.fenced
    assert pair.target_writes() == 0


def test_the_cutover_says_why_it_waits(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pair.src.jobs.create(name="hourly", tasks=TASKS, environments=ENVIRONMENTS, schedule=HOURLY)
    env = {"DBSYNC_IDENTITIES__CREATE_USERS": "true"}
    assert run_cli(pair, monkeypatch, capsys, "sync", "--once", env=env)[0] == 0
    waits: list[float] = []
    with freeze_time("2026-12-05 00:00:00") as clock:

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            clock.tick(seconds)

        monkeypatch.setattr(Runbook, "sleep", staticmethod(sleep))
        code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--yes", env=env)

    assert code == 0, err
    assert waits == [MARKER_WAIT_SECONDS], "once, in step 3: step 4 comes after it"
    assert "waiting 12 s before anything runs on the target" in err, err
    assert "read its role marker as standby less than 10 s ago" in err, err
    assert err.index("waiting 12 s") < err.index("[3/6] pause_source: done"), err
    assert _schedules(pair.dst) == {"hourly": "UNPAUSED"}


def test_a_reverse_replication_that_read_the_old_primary_as_standby_does_not_pause_what_the_rollback_restores(
    pair: Pair, tmp_path: Path
) -> None:
    pair.src.jobs.create(name="hourly", tasks=TASKS, environments=ENVIRONMENTS, schedule=HOURLY)
    pair.sync(**READY)
    with freeze_time("2026-12-05 00:00:00") as clock:
        ctx = open_cutover_context(pair.settings(**READY))
        try:
            Runbook(ctx, sleep=clock.tick).run()
            seed_reverse_store(ctx.store, tmp_path / "reverse.db")
        finally:
            ctx.store.close()
        assert _schedules(pair.src) == {"hourly": "PAUSED"} and _schedules(pair.dst) == {"hourly": "UNPAUSED"}
        settings = pair.settings(state_path=str(tmp_path / "reverse.db"), direction="reverse", **READY)
        reverse = open_context(reversed_settings(settings))
        try:
            Engine(reverse).cycle(["jobs"])  # it writes into the old primary: its fence reads that marker, standby
            # A change on the new primary its next cycle writes to the old primary's job (paused, as on a standby).
            copy = next(iter(pair.dst.jobs.list()))
            pair.dst.jobs.update(copy.job_id, new_settings=jobs.JobSettings(max_concurrent_runs=2))
            clock.tick(1)

            ctx = open_cutover_context(pair.settings(**READY), rollback=True)
            try:
                Runbook(ctx, sleep=clock.tick).rollback()
            finally:
                ctx.store.close()
            assert _schedules(pair.src) == {"hourly": "UNPAUSED"}

            pair.reset_stats()
            engine = Engine(reverse)
            engine.cycle(["jobs"])  # its next cycle, as soon as the rollback is over
        finally:
            reverse.store.close()

    assert _schedules(pair.src) == {"hourly": "UNPAUSED"}, "the job runs on the primary again"
    assert engine.fenced and "is the primary" in engine.fenced, engine.fenced
    endpoints = pair.source.stats.document()["endpoints"]
    assert sum(v["count"] for k, v in endpoints.items() if not k.startswith("GET")) == 0, "nothing written there"


def test_a_write_that_waited_for_its_turn_asks_the_fence_again(pair: Pair) -> None:
    """The fence is asked before the request budget's wait, which can be long (a busy queue): a write that waited
    out the marker's TTL there and went out on its old answer would defeat the cutover's wait."""
    pair.sync(**READY)
    with freeze_time("2026-12-05 00:00:00") as clock:
        daemon = open_context(pair.settings(**READY))
        try:
            promoted: list[str] = []

            def queue_wait(seconds: float) -> None:  # meanwhile a cutover marks the target and waits out the TTL
                if not promoted:
                    target = SimpleNamespace(client=pair.dst)
                    ids = [daemon.store.get_meta(f"{side}_workspace_id") or "" for side in ("target", "source")]
                    promoted.append(write_marker(target, "promoting", *ids, "cutover")["role"])
                clock.tick(seconds + MARKER_WAIT_SECONDS)

            daemon.target.budget = RequestBudget("target", 1.0, clock=monotonic, sleep=queue_wait)  # a busy queue
            with pytest.raises(WriteFenced, match="is being promoted to primary"):
                daemon.target.client.jobs.create(name="late", tasks=TASKS, environments=ENVIRONMENTS)
        finally:
            daemon.store.close()

    assert promoted == ["promoting"]
    assert "late" not in {j.settings.name for j in pair.dst.jobs.list()}
