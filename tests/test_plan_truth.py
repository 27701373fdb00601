"""`dbsync plan` says what `sync --once` will do, including what it will not manage to do.

Defects: a source listing that failed printed `[]` with `--json` (or `0 change(s)`) and exited 0, the failure only
in a log line on stderr; an object the sync would leave blocked or in error (a secret whose value dbsync may not
read) was left out of the plan, which exited 0 where the sync then said `secrets blocked 1` and exited 1. Now a
plan names each of them and exits 1 as the sync would (README "Commands": exit 1 when the API refused a request).
"""

from __future__ import annotations

import json
import threading

import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import jobs, pipelines

from dbsync.cli.output import plan_json, plan_rows, plan_text
from dbsync.cli.replication import plan_exit_code
from dbsync.engine import Engine

SECRET_VALUE = "hunter2-not-for-logs"


def _cli(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple:
    """`dbsync <argv>` in-process; a refused request is not waited on for a minute."""
    return run_cli(pair, monkeypatch, capsys, *argv, env={"DBSYNC_RETRY_TIMEOUT_SECONDS": "2"})


def _job(pair: Pair) -> None:
    pair.src.jobs.create(
        name="loader",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    )


def test_a_failed_listing_is_unknown_in_the_plan_and_exits_1(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _job(pair)
    pair.source.set_faults(rate_500=1.0, path_prefix="/api/2.2/jobs/list")

    code, out, _ = _cli(pair, monkeypatch, capsys, "plan", "--kinds", "jobs", "--json")
    assert code == 1
    (entry,) = json.loads(out)
    assert entry["action"] == "unknown" and entry["kind"] == "jobs" and entry["key"] is None
    assert "listing failed" in entry["reason"]

    code, out, _ = _cli(pair, monkeypatch, capsys, "plan", "--kinds", "jobs")
    assert code == 1
    assert "! jobs: listing failed" in out
    assert out.splitlines()[-1].endswith("; not listed: jobs (their changes are unknown)"), out
    assert pair.target_writes() == 0


def test_a_listing_stopped_before_its_end_is_unknown_in_the_plan_and_exits_1(pair: Pair) -> None:
    """A plan whose listing a stop cut short (SIGTERM's flag) read part of the source: the kind is `unknown`, not
    `held` (which promised the sync would hold something), and the plan exits 1 as the sync does.

    Built with the functions `dbsync plan` prints and exits with: the command sets no stop of its own, so the stop is
    set here, as `dbsync serve` does on SIGTERM, after the first listed object.
    """
    for _ in range(3):
        _job(pair)
    stop = threading.Event()
    ctx = pair.context(dry_run=True)
    (report,) = Engine(ctx, stop=stop, progress=lambda _: stop.set()).cycle(["jobs"])

    rows = plan_rows(report.planned, [report])
    assert report.outcome == "interrupted" and len(report.planned) < 3  # the listing did not reach its end
    assert [plan_json(row) for row in rows if row[2] is None] == [
        {"action": "unknown", "kind": "jobs", "key": None, "reason": "stopped before the listing ended"}
    ]
    assert plan_text(rows).splitlines()[-1].endswith("; not listed: jobs (their changes are unknown)")
    assert plan_exit_code([report], rows) == 1
    assert pair.target_writes() == 0


def test_the_plan_names_what_the_sync_will_leave_blocked(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default `secrets.values_from: none`: the scope is created, its secret blocked, by plan and sync alike."""
    pair.src.secrets.create_scope("etl")
    pair.src.secrets.put_secret("etl", "db-password", string_value=SECRET_VALUE)
    kinds = "secret_scopes,secrets"

    code, out, err = _cli(pair, monkeypatch, capsys, "plan", "--kinds", kinds, "--json")
    plan = json.loads(out)
    assert code == 1
    assert [(c["action"], c["kind"]) for c in plan] == [("create", "secret_scopes"), ("blocked", "secrets")]
    assert "etl" in plan[1]["key"] and "db-password" in plan[1]["key"]
    assert "values_from" in plan[1]["reason"]  # what to set to let it through
    assert SECRET_VALUE not in out + err

    code, out, _ = _cli(pair, monkeypatch, capsys, "plan", "--kinds", kinds)
    assert code == 1
    assert any(line.startswith("blocked secrets") and "db-password" in line for line in out.splitlines()), out
    assert out.splitlines()[-1] == "1 change(s): 1 create, 0 update, 0 delete, 0 skip; not written: 1 blocked, 0 error"
    assert pair.target_writes() == 0

    code, out, _ = _cli(pair, monkeypatch, capsys, "sync", "--once", "--kinds", kinds, "--json")
    summary = {r["kind"]: r for r in json.loads(out)}
    assert code == 1 and summary["secrets"]["blocked"] == 1 and summary["secret_scopes"]["created"] == 1


def test_the_plan_names_an_object_it_could_not_read(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The listing answers; reading one pipeline (its GET) fails: an `error` line, exit 1, the others planned."""
    for name in ("ingest", "publish"):
        pair.src.pipelines.create(
            name=name, libraries=[pipelines.PipelineLibrary(notebook=pipelines.NotebookLibrary(path=f"/{name}"))]
        )
    failing = next(p.pipeline_id for p in pair.src.pipelines.list_pipelines() if p.name == "publish")
    pair.source.set_faults(rate_500=1.0, path_prefix=f"/api/2.0/pipelines/{failing}")

    code, out, _ = _cli(pair, monkeypatch, capsys, "plan", "--kinds", "pipelines", "--json")
    plan = json.loads(out)
    assert code == 1
    assert sorted((c["action"], c["key"] == failing) for c in plan) == [("create", False), ("error", True)], plan
    assert next(c for c in plan if c["action"] == "error")["reason"]


def test_a_plan_with_nothing_in_the_way_still_exits_0(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _job(pair)
    code, out, _ = _cli(pair, monkeypatch, capsys, "plan", "--kinds", "jobs", "--json")
    assert code == 0 and [(c["action"], c["kind"]) for c in json.loads(out)] == [("create", "jobs")]
