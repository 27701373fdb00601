"""The old primary in a cutover: paused when it answers again, restored and marked primary by a rollback.

Each test drives `dbsync cutover` (or its Runbook, as a crash needs) between two emulated workspaces and
checks what an operator would see: which side's jobs and pipelines run, and what the role markers say.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import jobs
from test_cutover import ENVIRONMENTS, READY, SOURCE_UNPAUSED, TASKS, _cron, _running, _states, synced  # noqa: F401
from test_sync_pipelines import MAPPING, _source_setup
from test_sync_pipelines import _running as _pipelines_running

from dbsync.config import reversed_settings
from dbsync.context import open_context
from dbsync.cutover import TARGET_ROW, Runbook, open_cutover_context
from dbsync.engine import Engine
from dbsync.role import MARKER_PATH
from dbsync.store import Store

CLI_ENV = {"DBSYNC_IDENTITIES__CREATE_USERS": "true"}


def _marker(w: Any) -> str:
    """The role a workspace's marker says."""
    return json.loads(base64.b64decode(w.workspace.export(MARKER_PATH).content or ""))["role"]


def _reverse_cycle(pair: Pair, reverse_store: str) -> None:
    """One cycle of `dbsync reverse`'s replication: the new primary into the old one."""
    settings = reversed_settings(pair.settings(state_path=reverse_store, direction="reverse", **READY))
    ctx = open_context(settings)
    try:
        Engine(ctx).cycle()
    finally:
        ctx.store.close()


def test_a_skip_source_cutover_resumed_once_the_source_answers_pauses_the_source(synced: Pair) -> None:  # noqa: F811
    pair = synced

    def crash(event: str, name: str, detail: dict) -> None:
        if event == "job" and name.startswith(TARGET_ROW):
            raise KeyboardInterrupt  # killed in step 4 of the --skip-source cutover

    # force: the emulated source still answers, which a real --skip-source run refuses without --force
    ctx = open_cutover_context(pair.settings(**READY), need_source=False, force=True)
    with pytest.raises(KeyboardInterrupt):
        Runbook(ctx, skip_source=True, progress=crash).run()
    ctx.store.close()

    # The source answers again: --skip-source is refused now, so the operator runs `dbsync cutover`.
    ctx = open_cutover_context(pair.settings(**READY))
    runbook = Runbook(ctx)
    assert runbook.next_step() == "pause_source"
    runbook.run()
    assert _running(_states(pair.dst)) == SOURCE_UNPAUSED
    assert _running(_states(pair.src)) == set(), "the source's jobs run beside the new primary's"
    assert ctx.store.role == "cutover-complete"
    assert _marker(pair.src) == "standby" and _marker(pair.dst) == "primary"
    ctx.store.close()


def test_a_cutover_that_stopped_only_a_pipeline_on_the_source_rolls_back(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _source_setup(pair)  # a continuous pipeline, a triggered one and the job that runs it, without a schedule
    pair.sync(**READY, **MAPPING)
    env = CLI_ENV | {"DBSYNC_MAPPING__EMAILS": '{"@old.example": "@new.example"}'}
    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--yes", env=env)
    assert code == 0, err
    assert _pipelines_running(pair.src) == set() and _pipelines_running(pair.dst) == {"orders-stream"}

    code, out, err = run_cli(pair, monkeypatch, capsys, "cutover", "--rollback", "--yes", env=env)
    assert code == 0, err
    assert "rolled back" in out
    assert _pipelines_running(pair.src) == {"orders-stream"}, "the source pipeline runs again"
    assert _pipelines_running(pair.dst) == set()
    assert Store(pair.state_path).role == "standby"


def test_a_rollback_that_restores_no_source_job_marks_the_old_primary_primary(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # The team paused its only scheduled job on purpose: the cutover pauses nothing on the source.
    pair.src.jobs.create(
        name="nightly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(jobs.PauseStatus.PAUSED)
    )
    pair.sync(**READY)
    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--yes", env=CLI_ENV)
    assert code == 0, err
    assert _marker(pair.src) == "standby" and _marker(pair.dst) == "primary"
    reverse_store = str(tmp_path / "reverse.db")
    assert run_cli(pair, monkeypatch, capsys, "reverse", "--reverse-state-path", reverse_store, env=CLI_ENV)[0] == 0

    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--rollback", "--yes", env=CLI_ENV)
    assert code == 0, err
    assert _marker(pair.src) == "primary" and _marker(pair.dst) == "standby"

    # A reverse replication left running is fenced off the primary: its target's marker says so.
    pair.dst.jobs.update(next(iter(pair.dst.jobs.list())).job_id, new_settings=jobs.JobSettings(name="nightly v2"))
    pair.reset_stats()
    _reverse_cycle(pair, reverse_store)
    writes = [k for k in pair.source.stats.document()["endpoints"] if not k.startswith("GET")]
    assert writes == [], "dbsync wrote into the workspace that is the primary again"
    assert _states(pair.src) == {"nightly": {"schedule": "PAUSED"}}


def test_a_rollback_whose_source_marker_write_fails_stops_and_runs_again(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    pair.src.jobs.create(
        name="hourly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(jobs.PauseStatus.UNPAUSED)
    )
    pair.sync(**READY)
    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--yes", env=CLI_ENV)
    assert code == 0, err
    reverse_store = str(tmp_path / "reverse.db")
    assert run_cli(pair, monkeypatch, capsys, "reverse", "--reverse-state-path", reverse_store, env=CLI_ENV)[0] == 0

    # One error on the old primary's marker write (an import: no other write of a rollback is one).
    pair.source.set_faults(rate_500=1.0, path_prefix="/api/2.0/workspace/import", max_faults=1)
    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--rollback", "--yes", env=CLI_ENV)
    assert code == 1
    assert "role marker of the source" in err and "dbsync cutover --rollback" in err
    assert _states(pair.src) == {"hourly": {"schedule": "PAUSED"}}, "nothing of the old primary runs yet"
    assert _marker(pair.src) == "standby"
    # Meanwhile a reverse replication may still write into the old primary: none of its jobs runs.
    _reverse_cycle(pair, reverse_store)
    assert _states(pair.src) == {"hourly": {"schedule": "PAUSED"}}

    pair.source.set_faults()
    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--rollback", "--yes", env=CLI_ENV)
    assert code == 0, err
    assert _states(pair.src) == {"hourly": {"schedule": "UNPAUSED"}}
    assert _running(_states(pair.dst)) == set()
    assert _marker(pair.src) == "primary" and _marker(pair.dst) == "standby"

    # The new primary's team renamed the job while it was theirs; the reverse replication's next cycle:
    pair.dst.jobs.update(next(iter(pair.dst.jobs.list())).job_id, new_settings=jobs.JobSettings(name="hourly v2"))
    _reverse_cycle(pair, reverse_store)
    assert _states(pair.src) == {"hourly": {"schedule": "UNPAUSED"}}, "a replication into the primary paused its job"


def test_a_rollback_killed_after_clearing_its_record_marks_the_old_primary_primary_when_run_again(
    synced: Pair,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pair = synced
    source_before = _states(pair.src)
    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--yes", env=CLI_ENV)
    assert code == 0, err
    assert _marker(pair.src) == "standby"

    set_role = Runbook.set_role

    def killed_before_standby(book: Runbook, role: str) -> None:
        if role == "standby":
            raise KeyboardInterrupt  # kill -9 between clearing the record and the last role write
        set_role(book, role)

    with monkeypatch.context() as patch:
        patch.setattr(Runbook, "set_role", killed_before_standby)
        code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--rollback", "--yes", env=CLI_ENV)
    assert code == 130 and "interrupted" in err
    store = Store(pair.state_path)
    assert store.cutover_steps() == {} and store.role == "cutover-in-progress"
    store.close()

    code, _, err = run_cli(pair, monkeypatch, capsys, "cutover", "--rollback", "--yes", env=CLI_ENV)
    assert code == 0, err
    assert _states(pair.src) == source_before
    assert _running(_states(pair.dst)) == set()
    assert _marker(pair.src) == "primary" and _marker(pair.dst) == "standby"
    assert Store(pair.state_path).role == "standby"
