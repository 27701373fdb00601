"""`status` and `dbsync_resources` count what the store can vouch for, in the words `plan` and `validate` use.

Three states the store's rows alone told wrong (the listing-failed case is tests/test_truth_audit.py (d)):

- a cycle stopped before its listing ended (SIGTERM's flag, a write the fence refused) left its kind's rows
  `synced`, while `plan` called the kind `unknown` and /report's "last verified" stayed at the cycle before;
- source objects with no row yet (a kill -9 between a write and its record, or objects the daemon has not reached)
  were `pending` in `validate` and nowhere in `status` or the metric;
- after `dbsync cutover` step 3 writes late jobs, the daemon handed over keeps serving /metrics: its gauges are
  read from the store at each scrape, so they count the late jobs (checked here, it needed no fix).

Every test drives two emulated workspaces over HTTP with the databricks-sdk and runs the `dbsync` commands
in-process, as a user would.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from conftest import Pair, killed_before_the_record, run_cli
from databricks.sdk.service import jobs
from prometheus_client import REGISTRY
from test_cutover import ENVIRONMENTS, READY, TASKS, _cron
from test_cutover_late_jobs import _after_validation
from test_truth_audit import _sample

from dbsync.cutover import Runbook, open_cutover_context
from dbsync.engine import Engine, update_gauges
from dbsync.scheduler import Daemon
from dbsync.server import StatusServer

JOBS = ["jobs"]


ON = jobs.PauseStatus.UNPAUSED


def _job(pair: Pair, name: str, schedule: jobs.CronSchedule | None = None) -> int:
    return pair.src.jobs.create(name=name, tasks=TASKS, environments=ENVIRONMENTS, schedule=schedule).job_id


def _status(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    """`dbsync status --json`'s counts of the jobs kind."""
    code, out, err = run_cli(pair, monkeypatch, capsys, "status", "--json")
    assert code == 0, err
    return json.loads(out)["counts"].get("jobs", {})


def _gauges(pair: Pair) -> dict[str, float]:
    """dbsync_resources{kind="jobs"} as the daemon exports it (refreshed from the store), the series not at 0."""
    ctx = pair.context()
    try:
        update_gauges(ctx.store, JOBS)
    finally:
        ctx.store.close()
    samples = {s: REGISTRY.get_sample_value("dbsync_resources", {"kind": "jobs", "status": s}) for s in _STATUSES}
    return {s: v for s, v in samples.items() if v}


_STATUSES = ("synced", "partial", "skipped", "pending", "blocked", "error", "drifted", "unknown")


# -- 1. a cycle stopped before its listing ended ---------------------------------------------------------------
def test_a_cycle_stopped_before_its_listing_ended_leaves_its_rows_unknown_in_status_and_the_metric(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three jobs in sync; the source renames all three; the daemon's cycle of the kind is stopped (SIGTERM's flag)
    after its first change. The two it never reached were still counted `synced` by `status` and dbsync_resources,
    though the cycle did not read them, `plan` calls such a kind `unknown` and the report's "last verified" is the
    cycle before. As after a listing that failed, the rows are `unknown` until a cycle lists the kind whole."""
    ids = [_job(pair, f"job-{n}") for n in range(3)]
    pair.sync(only=JOBS)
    assert _status(pair, monkeypatch, capsys) == {"synced": 3}
    for job_id in ids:
        pair.src.jobs.update(job_id=job_id, new_settings=jobs.JobSettings(name=f"renamed-{job_id}"))

    stop = threading.Event()
    (report,) = Engine(pair.context(), stop=stop, progress=lambda _: stop.set()).cycle(JOBS)
    assert report.outcome == "interrupted" and report.listed < 3

    assert _status(pair, monkeypatch, capsys) == {"unknown": 3}
    assert _gauges(pair) == {"unknown": 3}

    pair.sync(only=JOBS)  # a cycle that lists the kind whole vouches for its rows again
    assert _status(pair, monkeypatch, capsys) == {"synced": 3}
    assert _gauges(pair) == {"synced": 3}


# -- 2. source objects without a row --------------------------------------------------------------------------
def test_source_objects_without_a_row_are_pending_in_status_and_the_metric_as_validate_says(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two new source jobs; the sync writes them and is killed before it records them. `validate` lists the source
    and says 2 pending; `status` listed no jobs at all and dbsync_resources had no series above 0 for the kind, so
    the dashboard showed it whole. The count of source objects without a row, as of the last listing, is `pending`
    there too, until a cycle gives them rows."""
    _job(pair, "first")
    _job(pair, "second")
    killed_before_the_record(pair, JOBS, monkeypatch)
    code, out, err = run_cli(pair, monkeypatch, capsys, "validate", "--kinds", "jobs", "--format", "json")
    assert code == 1, err
    assert next(k for k in json.loads(out)["kinds"] if k["kind"] == "jobs")["pending"] == 2

    assert _status(pair, monkeypatch, capsys) == {"pending": 2}
    assert _gauges(pair) == {"pending": 2}

    pair.sync(only=JOBS)
    assert _status(pair, monkeypatch, capsys) == {"synced": 2}
    assert _gauges(pair) == {"synced": 2}


def test_a_new_source_object_validate_saw_stops_being_pending_once_a_cycle_records_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job added on the source after the last sync is pending in `validate`, then in `status`; a cycle stopped
    after writing it records its row: it is counted once (its row), never twice (its row and the count of rows
    missing as of validate's listing)."""
    _job(pair, "old")
    pair.sync(only=JOBS)
    _job(pair, "new")
    code, _, err = run_cli(pair, monkeypatch, capsys, "validate", "--kinds", "jobs", "--format", "json")
    assert code == 1, err
    assert _status(pair, monkeypatch, capsys) == {"synced": 1, "pending": 1}

    stop = threading.Event()
    (report,) = Engine(pair.context(), stop=stop, progress=lambda _: stop.set()).cycle(JOBS)
    assert report.created == 1
    counts = _status(pair, monkeypatch, capsys)
    assert sum(counts.values()) == 2 and counts.get("pending", 0) == 0


# -- 3. late jobs written by the cutover: the handed-over daemon's gauges ------------------------------------
def test_the_metrics_of_a_daemon_count_the_late_jobs_a_cutover_wrote_into_its_store(pair: Pair) -> None:
    """A job created on the source after the cutover's final sync is written by step 3 into the store the daemon
    serves /metrics from. The gauges are computed from the store at each scrape (server._metrics), so the next
    scrape counts it: no refresh is missing."""
    _job(pair, "nightly", _cron(ON))
    pair.sync(**READY)
    daemon = Daemon(pair.context(**READY))
    server = StatusServer(("127.0.0.1", 0), daemon, None)
    server.start()
    try:
        before = httpx.get(server.url + "/metrics", timeout=10).text
        assert _sample(before, "dbsync_resources", kind="jobs", status="synced") == 1

        def create_late_job() -> None:
            _job(pair, "late", _cron(ON))

        ctx = open_cutover_context(pair.settings(**READY))
        try:
            Runbook(ctx, progress=_after_validation(create_late_job)).run()
        finally:
            ctx.store.close()
        after = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        daemon.shutdown(timeout=30)
        server.shutdown()
        server.server_close()
    assert _sample(after, "dbsync_resources", kind="jobs", status="synced") == 2
    assert _sample(after, "dbsync_replication_lag_seconds", kind="jobs") == 0
