"""One definition of a successful cycle: the daemon's metric, the store (what a restarted daemon exports) and the
report agree.

`dbsync_last_success_timestamp_seconds{kind}` feeds the critical `DbsyncNoSuccessfulCycle` alert ("no successful
listing of the source for an hour"). The engine set it after a cycle stopped before its listing ended (SIGTERM,
a write the fence refused), and after a cycle with one failed write; the store, which `dbsync serve` exports after
a restart and the report shows as "last verified", counted only cycles without a single error. A kind with one
object failing for an hour kept a fresh metric until the pod restarted, then the value jumped back an hour (or
vanished) and the alert fired on a kind that was being read all along.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import Pair
from databricks.sdk.service import jobs
from prometheus_client import REGISTRY

from dbsync.cli import main
from dbsync.engine import Engine
from dbsync.store import Store


def _job(pair: Pair, name: str) -> None:
    pair.src.jobs.create(
        name=name,
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    )


def _exported() -> float | None:
    return REGISTRY.get_sample_value("dbsync_last_success_timestamp_seconds", {"kind": "jobs"})


def _after_restart(pair: Pair) -> float | None:
    """What `dbsync serve` exports for the kind when it starts again (Daemon.start reads the store)."""
    store = Store(pair.state_path)
    try:
        return store.last_success("jobs")
    finally:
        store.close()


def _last_outcome(pair: Pair, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["status", "--json", "--state-path", str(pair.state_path)]) == 0
    return json.loads(capsys.readouterr().out)["last_cycles"]["jobs"]["outcome"]


def test_a_cycle_with_a_failed_write_is_a_success_before_and_after_a_restart(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    _job(pair, "nightly-etl")
    _job(pair, "hourly-report")
    pair.target.set_faults(rate_500=1.0, path_prefix="/api/2.2/jobs/create")
    before = time.time()

    report = pair.sync(only=["jobs"], retry_timeout_seconds=2)["jobs"]

    assert report.errors == 2 and _last_outcome(pair, capsys) == "errors"
    exported, stored = _exported(), _after_restart(pair)
    assert exported is not None and exported >= before, "the kind was read: a success"
    assert stored is not None and abs(stored - exported) < 1, "a restarted daemon exports the same cycle"


def test_an_interrupted_cycle_and_a_failed_listing_are_no_success_anywhere(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    _job(pair, "nightly-etl")
    pair.sync(only=["jobs"])
    succeeded, exported = _after_restart(pair), _exported()
    assert succeeded is not None and exported == pytest.approx(succeeded, abs=1)
    for i in range(5):
        _job(pair, f"backfill-{i}")

    stop = threading.Event()  # what SIGTERM sets in `dbsync serve`: stop after the change in flight
    ctx = pair.context()
    try:
        (report,) = Engine(ctx, stop=stop, progress=lambda _: stop.set()).cycle(["jobs"])
    finally:
        ctx.store.close()
    assert report.outcome == "interrupted" and _last_outcome(pair, capsys) == "interrupted"
    assert _exported() == exported, "stopped before its listing ended: not a success"
    assert _after_restart(pair) == succeeded

    pair.source.set_faults(rate_500=1.0, path_prefix="/api/2.2/jobs/list")
    assert pair.sync(only=["jobs"], retry_timeout_seconds=2)["jobs"].outcome == "listing_failed"
    assert _exported() == exported
    assert _after_restart(pair) == succeeded
