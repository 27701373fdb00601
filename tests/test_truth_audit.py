"""One state, one word and one count on every surface: `sync --once`, `plan`, `status`, `validate` and the metrics.

An SRE reads these before a cutover, and each answered differently in a state this session added: a source delete
a `restore --pin` keeps back was `pending` in `sync` and `plan` but `synced` in `status` and `dbsync_resources`,
and invisible to `validate`. Every test drives two emulated workspaces over HTTP with the databricks-sdk and
runs the `dbsync` commands in-process (`main([...])`), as a user would.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Pair, run_cli
from databricks.sdk.service import jobs
from prometheus_client import REGISTRY
from test_cutover import ENVIRONMENTS, READY, TASKS, _cron
from test_cutover_late_jobs import _after_validation
from test_restore import _good_then_bad
from test_serve import Served
from test_truth_surfaces import _sample

from dbsync.cutover import Runbook, open_cutover_context
from dbsync.engine import update_gauges


def _json(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """`dbsync <argv>`'s JSON output."""
    _, out, _ = run_cli(pair, monkeypatch, capsys, *argv)
    return json.loads(out)


def _resources(pair: Pair, kinds: list[str], status: str) -> dict[str, float | None]:
    """dbsync_resources{kind, status} as the daemon exports it after a cycle (the gauges refreshed from the store)."""
    ctx = pair.context()
    try:
        update_gauges(ctx.store, kinds)
    finally:
        ctx.store.close()
    return {k: REGISTRY.get_sample_value("dbsync_resources", {"kind": k, "status": status}) for k in kinds}


# -- (a) restore --pin: the source's changes, its deletes included, are pending everywhere ---------------------
def test_a_source_delete_a_pin_keeps_from_the_target_is_pending_on_every_surface(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `restore --pin`, the source edits two notebooks, adds one and deletes one; it renames a job and deletes
    one. `sync --once` said notebooks 4 pending, jobs 2; `status` and `dbsync_resources` said 3 and 1 (the deleted
    objects' rows stayed `synced`, as the restore wrote them), and `validate` counted 3 and 1 (it looked only at
    what the source lists). The restored copies are not what the source has: pending, four and two, on each."""
    moment, _ = _good_then_bad(pair)
    code, _, err = run_cli(pair, monkeypatch, capsys, "restore", "--at", str(moment), "--apply", "--pin")
    assert code == 0, err
    kinds = ["notebooks", "jobs"]
    expected = {"notebooks": 4, "jobs": 2}

    summary = _json(pair, monkeypatch, capsys, "sync", "--once", "--kinds", ",".join(kinds), "--json")
    assert {r["kind"]: r["pending"] for r in summary} == expected
    plan = _json(pair, monkeypatch, capsys, "plan", "--kinds", ",".join(kinds), "--json")
    assert {k: sum(1 for c in plan if c["kind"] == k and c["action"] == "pending") for k in kinds} == expected

    status = _json(pair, monkeypatch, capsys, "status", "--json")
    assert {k: status["counts"][k].get("pending") for k in kinds} == expected
    assert _resources(pair, kinds, "pending") == expected

    report = _json(pair, monkeypatch, capsys, "validate", "--kinds", ",".join(kinds), "--format", "json")
    by_kind = {k["kind"]: k for k in report["kinds"]}
    assert {k: by_kind[k]["pending"] for k in kinds} == expected
    assert not report["ready_for_cutover"]
    # nb4 is the only notebook change pinned on its own: the share in sync counts it as not in sync.
    assert by_kind["notebooks"]["in_sync"] == 3 and by_kind["notebooks"]["in_sync_percent"] == round(100 * 3 / 7, 1)

    code, _, _ = run_cli(pair, monkeypatch, capsys, "restore", "--unpin")
    assert code == 0
    assert {k: r.deleted for k, r in pair.sync(only=kinds).items()} == {"notebooks": 1, "jobs": 1}
    status = _json(pair, monkeypatch, capsys, "status", "--json")
    assert {k: status["counts"][k].get("pending", 0) for k in kinds} == {"notebooks": 0, "jobs": 0}


# -- (d) a listing that fails half-way in the daemon: unknown, never synced ------------------------------------
TREE = ["directories", "notebooks", "files"]


def _after_failed_tree_cycle(server: Served) -> str:
    """The daemon's /metrics once its first cycle of the workspace tree has failed and ended (bounded wait): the
    error is counted when the listing fails, the cycle's duration once its outcome is in the store."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, server.log.read_text()[-2000:]
        try:
            page = server.get("/metrics").text
            failed = (_sample(page, "dbsync_sync_errors_total", kind="notebooks") or 0) >= 1
            if failed and (_sample(page, "dbsync_cycle_duration_seconds_count", kind="notebooks") or 0) >= 1:
                return page
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the tree's cycle never failed: {server.log.read_text()[-2000:]}")


def test_a_tree_listing_that_fails_half_way_in_the_daemon_is_unknown_in_the_metrics_status_and_report(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon's listing of the workspace tree fails at its second folder (an HTML page where the API's JSON
    was due: a login proxy). /report and /report.html said the kind was `unknown` and not ready, `/cutover-readyz`
    503; but `dbsync_resources{status="synced"}` kept the two notebooks of the last good cycle, and no series said
    `unknown`: the dashboard's "Resources synced" and "Not synced by kind" showed the kind whole. `status` counted
    them synced as well. Rows the last cycle could not check against the source are `unknown` there too."""
    for folder in ("a", "b"):
        pair.src.workspace.mkdirs(f"/Shared/{folder}")
        pair.src.workspace.upload(f"/Shared/{folder}/n.py", io.BytesIO(b"print(1)"), overwrite=True)
    pair.sync(only=TREE)
    broken = {"action": "html", "method": "GET", "path": "/api/2.0/workspace/list", "query": {"path": "/Shared/b"}}
    pair.source.set_faults(rules=[broken])

    server = Served(pair, tmp_path)
    try:
        page = _after_failed_tree_cycle(server)
        report = server.get("/report").json()
        html = server.get("/report.html").text
    finally:
        server.terminate()

    notebooks = next(k for k in report["kinds"] if k["kind"] == "notebooks")
    assert notebooks["status"] == "unknown" and notebooks["in_sync_percent"] is None
    assert 'class="state-not-ready"' in html or "state-not-ready" in html
    assert _sample(page, "dbsync_resources", kind="notebooks", status="synced") == 0
    assert _sample(page, "dbsync_resources", kind="notebooks", status="unknown") == 2
    status = _json(pair, monkeypatch, capsys, "status", "--json")
    assert status["counts"]["notebooks"] == {"unknown": 2}


# -- (g) a late job the cutover writes in step 3: partial is said, not counted as replicated whole -------------
def test_a_late_job_written_partial_by_the_cutover_is_partial_in_its_summary_as_in_status(pair: Pair) -> None:
    """A job created on the source after the final sync, to run as a user the standby's IdP has not provisioned:
    step 3 writes it without its run_as (it runs as its owner), the store and the event say `partial`, but the
    step's summary said "1 late job(s) replicated" and nothing else, the word a whole copy gets."""
    on = jobs.PauseStatus.UNPAUSED
    pair.src.jobs.create(name="nightly", tasks=TASKS, environments=ENVIRONMENTS, schedule=_cron(on))
    pair.sync(**READY)

    def create_late_job() -> None:
        pair.src.users.create(user_name="late.user@example.com")
        pair.src.jobs.create(
            name="late",
            tasks=TASKS,
            environments=ENVIRONMENTS,
            schedule=_cron(on),
            run_as=jobs.JobRunAs(user_name="late.user@example.com"),
        )

    ctx = open_cutover_context(pair.settings(**READY))
    try:
        document = Runbook(ctx, progress=_after_validation(create_late_job)).run()
        counts = ctx.store.status_counts()["jobs"]
    finally:
        ctx.store.close()

    assert counts == {"synced": 1, "partial": 1}
    step3 = next(s for s in document["steps"] if s["step"] == "pause_source")
    assert (
        "1 late job(s) replicated (created or edited on the source after the final sync), 1 of them partial, e.g. "
        in step3["summary"]
    )
    assert "late.user@example.com" in step3["summary"]
