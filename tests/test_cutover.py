"""`dbsync cutover`, `--rollback` and `dbsync reverse` between two emulated workspaces, as an operator runs them."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Pair
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.cli import main
from dbsync.config import reversed_settings
from dbsync.context import open_context
from dbsync.cutover import SOURCE_ROW, TARGET_ROW, CutoverRefused, Runbook, open_cutover_context
from dbsync.cutover.runbook import STEP_FUNCTIONS
from dbsync.engine import Engine
from dbsync.errors import ConfigError, DbsyncError
from dbsync.reverse import seed_reverse_store
from dbsync.role import read_marker
from dbsync.store import Store

TASKS = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))]
ENVIRONMENTS = [jobs.JobEnvironment(environment_key="e")]
# The emulated target has no identity provider: let users be created, so validation can pass.
READY = {"identities": {"create_users": True}}
SOURCE_UNPAUSED = {"scheduled on", "file arrival", "continuous"}


def _cron(status: jobs.PauseStatus) -> jobs.CronSchedule:
    return jobs.CronSchedule(quartz_cron_expression="0 0 * * * ?", timezone_id="UTC", pause_status=status)


def _mixed_jobs(w: Any) -> dict[str, int]:
    """Scheduled unpaused, scheduled paused, file-arrival trigger, continuous, no schedule: name → job id."""
    on, off = jobs.PauseStatus.UNPAUSED, jobs.PauseStatus.PAUSED
    specs: dict[str, dict[str, Any]] = {
        "scheduled on": {"schedule": _cron(on)},
        "scheduled off": {"schedule": _cron(off)},
        "file arrival": {
            "trigger": jobs.TriggerSettings(
                file_arrival=jobs.FileArrivalTriggerConfiguration(url="s3://landing/"), pause_status=on
            )
        },
        "continuous": {"continuous": jobs.Continuous(pause_status=on)},
        "no schedule": {},
    }
    return {
        name: w.jobs.create(name=name, tasks=TASKS, environments=ENVIRONMENTS, **spec).job_id
        for name, spec in specs.items()
    }


def _states(w: Any) -> dict[str, dict[str, str]]:
    """{job name: {trigger field: pause status}} as the workspace shows it."""
    out = {}
    for job in w.jobs.list():
        settings = job.settings.as_dict()
        out[settings["name"]] = {
            f: settings[f]["pause_status"] for f in ("schedule", "trigger", "continuous") if f in settings
        }
    return out


def _running(states: dict[str, dict[str, str]]) -> set[str]:
    return {name for name, fields in states.items() if "UNPAUSED" in fields.values()}


def dbsync(pair: Pair, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`dbsync …` as a separate process (for `serve`, which owns the process's signals)."""
    return subprocess.run(
        [sys.executable, "-m", "dbsync.cli", *args],
        env=pair.env() | {"DBSYNC_IDENTITIES__CREATE_USERS": "true"} | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Any:
    """`dbsync …` in this process, without a terminal: (exit code, stdout, stderr).

    In-process because a subprocess spends its time importing the SDK; the command's logging setup is
    undone after each call so it cannot outlive the test.
    """

    def run(pair: Pair, *args: str, **env: str) -> tuple[int, str, str]:
        monkeypatch.chdir(tmp_path)
        for name in [n for n in os.environ if n.startswith("DBSYNC_")]:
            monkeypatch.delenv(name)
        for name, value in (pair.env() | {"DBSYNC_IDENTITIES__CREATE_USERS": "true"} | env).items():
            if name.startswith("DBSYNC_"):
                monkeypatch.setenv(name, value)
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            code = main(list(args))
        finally:
            root.handlers[:], root.level = handlers, level
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def synced(pair: Pair) -> Pair:
    """The mixed set of jobs on the source, replicated (paused) to the target, plus a target job of the team's."""
    _mixed_jobs(pair.src)
    pair.dst.jobs.create(name="theirs", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(jobs.PauseStatus.PAUSED))
    pair.sync(**READY)
    assert _running(_states(pair.dst)) == set(), "a standby runs nothing"
    return pair


def test_cutover_runs_exactly_the_source_unpaused_jobs_on_the_target_and_rollback_restores_both(
    synced: Pair, cli: Any, tmp_path: Path
) -> None:
    pair = synced
    source_before, target_before = _states(pair.src), _states(pair.dst)
    assert _running(source_before) == SOURCE_UNPAUSED
    run = pair.src.jobs.run_now(
        job_id=next(j.job_id for j in pair.src.jobs.list() if j.settings.name == "scheduled on")
    )
    pair.reset_stats()

    code, out, err = cli(pair, "cutover", "--yes", "--cancel-active-runs")
    assert code == 0, err
    assert _running(_states(pair.dst)) == SOURCE_UNPAUSED
    assert _running(_states(pair.src)) == set()
    assert pair.src.jobs.get_run(run.run_id).state.result_state == jobs.RunResultState.CANCELED
    assert _states(pair.dst)["theirs"] == {"schedule": "PAUSED"}, "a job dbsync did not create is never touched"
    # Lean: one write per job that had to change, nothing else on the target.
    assert pair.target_writes() == len(SOURCE_UNPAUSED) + 2  # + the role marker: promoting, then primary

    report = json.loads(next(pair.state_path.parent.glob("cutover-report-*.json")).read_text())
    assert [s["step"] for s in report["steps"]][:5] == [
        "final_sync",
        "validate",
        "pause_source",
        "unpause_target",
        "mark_complete",
    ]
    assert all(s["seconds"] is not None and s["api_calls"] is not None for s in report["steps"][:5])
    by_name = {j["name"]: j for j in report["jobs"] if j["name"] != "theirs"}
    assert by_name["scheduled on"]["source_before"] == {"schedule": "UNPAUSED"}
    assert by_name["scheduled on"]["source_after"] == {"schedule": "PAUSED"}
    assert by_name["scheduled on"]["target_before"] == {"schedule": "PAUSED"}
    assert by_name["scheduled on"]["target_after"] == {"schedule": "UNPAUSED"}
    assert by_name["scheduled off"]["target_after"] == {"schedule": "PAUSED"}
    assert "scheduled on" in out and "schedule UNPAUSED → schedule PAUSED" in out and "pause_source" in out

    # nothing replicates into the new primary (`dbsync serve` likewise: see tests/test_serve.py)
    code, _, err = cli(pair, "sync", "--once")
    assert code == 2 and "cutover is complete" in err

    code, out, err = cli(pair, "cutover", "--rollback", "--yes")
    assert code == 0, err
    assert _states(pair.src) == source_before
    assert _states(pair.dst) == target_before
    store = Store(pair.state_path)
    assert store.role == "standby" and store.cutover_steps() == {}
    store.close()
    pair.reset_stats()
    code, out, _ = cli(pair, "cutover", "--rollback", "--yes")
    assert code == 0 and "nothing to roll back" in out
    assert pair.target_writes() == 0


@pytest.mark.parametrize("stop_at", ["after pause_source", "in pause_source"])
def test_an_interrupted_cutover_resumes_to_the_same_result(synced: Pair, stop_at: str) -> None:
    pair = synced
    source_before = _states(pair.src)

    def crash(event: str, name: str, detail: dict) -> None:
        if stop_at == "after pause_source" and event == "step" and name == "pause_source" and detail["state"] == "done":
            raise KeyboardInterrupt  # Ctrl-C (or a crash) right after step 3
        if stop_at == "in pause_source" and event == "job" and name.startswith(SOURCE_ROW):
            raise KeyboardInterrupt  # the first source job is paused, the others are in flight or waiting

    ctx = open_cutover_context(pair.settings(**READY))
    with pytest.raises(KeyboardInterrupt):
        Runbook(ctx, progress=crash).run()
    ctx.store.close()
    assert not _running(_states(pair.src)) & _running(_states(pair.dst)), "no job runs on both sides"

    ctx = open_cutover_context(pair.settings(**READY))  # a new process: everything it knows is in the store
    runbook = Runbook(ctx)
    assert runbook.next_step() in ("pause_source", "unpause_target")
    runbook.run()
    assert _running(_states(pair.dst)) == SOURCE_UNPAUSED
    assert _running(_states(pair.src)) == set()
    rows = ctx.store.cutover_steps()
    assert {r["detail"]["name"] for k, r in rows.items() if k.startswith(SOURCE_ROW)} == SOURCE_UNPAUSED
    assert {r["detail"]["name"] for k, r in rows.items() if k.startswith(TARGET_ROW)} == SOURCE_UNPAUSED

    Runbook(ctx).rollback()  # the prior state of the jobs paused before the interruption was not lost
    assert _states(pair.src) == source_before
    assert _running(_states(pair.dst)) == set()
    ctx.store.close()


def test_skip_source_cuts_over_to_the_last_sync_with_the_source_down(
    synced: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = synced
    pair.source.stop()
    settings = pair.settings(**READY)
    with pytest.raises(ConfigError, match="--skip-source"):
        open_cutover_context(settings)

    ctx = open_cutover_context(settings, need_source=False)
    seen: list[Any] = []  # the target's marker as step 4 begins to unpause its jobs
    unpause = STEP_FUNCTIONS["unpause_target"]
    monkeypatch.setitem(
        STEP_FUNCTIONS, "unpause_target", lambda book: (seen.append(read_marker(book.ctx.target)), unpause(book))[1]
    )
    document = Runbook(ctx, skip_source=True).run()
    assert seen[0]["role"] == "promoting", "marked before its jobs run: no other store's daemon may pause them again"
    assert _running(_states(pair.dst)) == SOURCE_UNPAUSED
    states = {s["step"]: s["state"] for s in document["steps"]}
    assert states["final_sync"] == states["pause_source"] == "skipped"
    assert all(job["source_after"] is None for job in document["jobs"]), "the source was not contacted"

    # The cutover never touched the source, so the rollback needs only the target.
    Runbook(ctx, skip_source=True).rollback()
    assert _running(_states(pair.dst)) == set()
    assert ctx.store.role == "standby"
    ctx.store.close()


def test_the_source_back_after_a_skip_source_cutover_gets_its_jobs_paused(synced: Pair) -> None:
    pair = synced
    source_before = _states(pair.src)
    # force: the emulated source still answers, which a real --skip-source run refuses without --force
    ctx = open_cutover_context(pair.settings(**READY), need_source=False, force=True)
    Runbook(ctx, skip_source=True).run()
    ctx.store.close()
    assert _states(pair.src) == source_before, "the source was not contacted"
    # The new primary's team pauses a job on purpose; the source's return must not undo that.
    file_job = next(j for j in pair.dst.jobs.list() if j.settings.name == "file arrival")
    trigger = file_job.settings.trigger
    trigger.pause_status = jobs.PauseStatus.PAUSED
    pair.dst.jobs.update(file_job.job_id, new_settings=jobs.JobSettings(trigger=trigger))

    ctx = open_cutover_context(pair.settings(**READY))  # the source answers again
    runbook = Runbook(ctx)
    assert runbook.next_step() == "pause_source"
    runbook.run()
    assert _running(_states(pair.src)) == set()
    assert _running(_states(pair.dst)) == SOURCE_UNPAUSED - {"file arrival"}
    assert ctx.store.role == "cutover-complete"
    ctx.store.close()


def test_not_ready_is_refused_with_the_reasons_unless_forced(synced: Pair) -> None:
    pair = synced
    pair.src.users.create(user_name="ann@example.com")  # the target has no such user, and may not create it
    ctx = open_cutover_context(pair.settings())
    with pytest.raises(CutoverRefused, match="users") as refused:
        Runbook(ctx).run()
    assert "--force" in str(refused.value)
    assert _running(_states(pair.src)) == SOURCE_UNPAUSED, "nothing was paused"
    assert ctx.store.role == "standby"

    Runbook(ctx, force=True).run()
    assert _running(_states(pair.dst)) == SOURCE_UNPAUSED
    assert ctx.store.cutover_steps()["validate"]["detail"]["forced"] is True
    ctx.store.close()


def test_dry_run_writes_nothing_and_no_terminal_means_no_cutover(synced: Pair, cli: Any) -> None:
    pair = synced
    pair.reset_stats()
    code, out, err = cli(pair, "cutover", "--dry-run")
    assert code == 0, err
    assert "pause 3 source job(s)" in out and "unpause 3 target job(s)" in out and "now: ready" in out
    assert "nothing was changed" in out
    code, _, err = cli(pair, "cutover")
    assert code == 2 and "--yes" in err
    assert pair.target_writes() == 0, pair.target.stats.document()["endpoints"]
    assert sum(v["count"] for k, v in pair.source.stats.document()["endpoints"].items() if not k.startswith("GET")) == 0
    assert Store(pair.state_path).cutover_steps() == {}


def test_reverse_replicates_the_new_primary_back_without_duplicates(
    seeded_pair: Pair, cli: Any, tmp_path: Path
) -> None:
    pair = seeded_pair
    pair.sync(**READY)
    reverse_store = tmp_path / "reverse.db"
    forward = Store(pair.state_path)
    with pytest.raises(DbsyncError, match="dbsync cutover"):
        seed_reverse_store(forward, reverse_store)  # no reverse while the forward direction still replicates
    forward.close()
    ctx = open_cutover_context(pair.settings(**READY))
    Runbook(ctx, force=True).run()
    ctx.store.close()

    def counts(w: Any) -> dict[str, int]:
        notebooks = [o for o in w.workspace.list("/", recursive=True) if o.object_type.value == "NOTEBOOK"]
        return {
            "jobs": len(list(w.jobs.list())),
            "clusters": len(list(w.clusters.list())),
            "pools": len(list(w.instance_pools.list())),
            "policies": len(list(w.cluster_policies.list())),
            "notebooks": len(notebooks),
        }

    old_primary = counts(pair.src)
    code, out, err = cli(pair, "reverse", "--reverse-state-path", str(reverse_store))
    assert code == 0, err
    assert "DBSYNC_DIRECTION=reverse" in out

    # A change on the new primary, then replication in the other direction with the same config.
    notebook = next(
        o.path
        for o in pair.dst.workspace.list("/", recursive=True)
        if o.object_type.value == "NOTEBOOK" and o.language == Language.PYTHON
    )
    source = io.BytesIO(b"# Databricks notebook source\nprint('new primary')")
    pair.dst.workspace.upload(notebook, source, format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)
    pair.dst.jobs.create(name="born on the new primary", tasks=TASKS, environments=ENVIRONMENTS)
    settings = reversed_settings(pair.settings(state_path=str(reverse_store), direction="reverse", **READY))
    reverse = open_context(settings)
    try:
        reports = Engine(reverse).cycle()
    finally:
        reverse.store.close()
    assert not [r.kind for r in reports if r.errors], [(r.kind, r.message) for r in reports if r.errors]

    after = counts(pair.src)
    assert after == {**old_primary, "jobs": old_primary["jobs"] + 1}, "adopted, not duplicated"
    assert b"new primary" in pair.src.workspace.download(notebook).read()
    tags = [(j.settings.tags or {}).get("dbsync_source_job_id") for j in pair.src.jobs.list()]
    assert None not in tags and len(set(tags)) == len(tags), "every old-primary job is mapped to one new-primary job"
    assert _running(_states(pair.src)) == set(), "the old primary is the standby now: nothing runs there"

    # And cut back: the old primary runs what the new one ran, the new one nothing.
    running = _running(_states(pair.dst))
    assert running
    back = open_cutover_context(settings)
    Runbook(back, force=True).run()
    back.store.close()
    assert _running(_states(pair.src)) == running
    assert _running(_states(pair.dst)) == set()


def test_reverse_config_switch_swaps_sides_and_inverts_the_mapping(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "dbsync.yaml"
    config.write_text(
        "mapping:\n  emails: {'@old.com': '@new.com', 'a@old.com': 'b@new.com'}\n  principals: {eng: engineering}\n"
    )
    from dbsync.config import load_settings

    for name, value in pair.env().items():
        if name.startswith("DBSYNC_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBSYNC_DIRECTION", "reverse")
    settings = load_settings(config)
    assert settings.source.host == pair.target.url and settings.target.host == pair.source.url
    assert settings.mapping.emails == {"@new.com": "@old.com", "b@new.com": "a@old.com"}
    assert settings.mapping.principals == {"engineering": "eng"}
