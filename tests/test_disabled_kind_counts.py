"""A kind the operator turned off (kinds.<kind>.enabled: false) is not counted, least of all as `unknown`.

Since 22a9b03, a kind whose last cycle did not list it whole counts what it had as synced as `unknown` in
`dbsync status` and dbsync_resources, and since 42d6895 the alert DbsyncKindUnknown pages on that series. The
gauge was refreshed for every kind, enabled or not: a kind whose listing failed and that the operator then
disabled exported `unknown` > 0 for ever (no cycle of it would ever list it whole again), so the alert fired for
ever for a kind turned off on purpose, and `dbsync status` said the same. `validate` and /report already leave a
disabled kind out ("every kind is disabled (kinds.<kind>.enabled)"); /metrics and `status` now do too, as the
scheduler's own gauges (last success, staleness) always did. Enabled again, the kind is `unknown` again: the
store forgot nothing, and an enabled kind whose listing fails still alerts.

The source's jobs listing answers a login proxy's HTML page; the cluster policies list fine. The daemon's
/metrics and /report are read over HTTP, `dbsync status` runs in-process, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import Pair, run_cli
from prometheus_client.parser import text_string_to_metric_families
from test_kind_unknown_alert import ENVIRONMENTS, LOGIN_PAGE_FOR_JOBS, TASKS, _expected_alert, _promtool_verdict

from dbsync.registry import kind_names
from dbsync.scheduler import Daemon
from dbsync.server import StatusServer

KINDS = ["cluster_policies", "jobs"]
# The daemon replicates these two kinds only (its /report compares no other), then the policies alone.
OTHERS_OFF = {name: {"enabled": False} for name in kind_names() if name not in KINDS}
JOBS_ON = {"kinds": OTHERS_OFF}
JOBS_OFF = {"kinds": {**OTHERS_OFF, "jobs": {"enabled": False}}}


def _served(pair: Pair, overrides: dict) -> tuple[dict[str, dict[str, float]], list[str]]:
    """What a daemon with these settings serves: its /metrics' dbsync_resources and dbsync_replication_lag_seconds
    series, {kind: {status or "lag": value}}, and the kinds its /report compares."""
    daemon = Daemon(pair.context(**overrides))
    server = StatusServer(("127.0.0.1", 0), daemon, None)
    server.start()
    try:
        page = httpx.get(server.url + "/metrics", timeout=10).text
        report = httpx.get(server.url + "/report", timeout=60).json()
    finally:
        daemon.shutdown(timeout=30)
        server.shutdown()
        server.server_close()
    resources: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "dbsync_resources":
                resources.setdefault(sample.labels["kind"], {})[sample.labels["status"]] = sample.value
            elif sample.name == "dbsync_replication_lag_seconds":
                resources.setdefault(sample.labels["kind"], {})["lag"] = sample.value
    return resources, [k["kind"] for k in report["kinds"]]


def _status(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], jobs: str, *argv: str
) -> str:
    """`dbsync status <argv>`'s output with DBSYNC_KINDS__JOBS__ENABLED=`jobs` (set for this command only: the
    daemons' settings read the environment too)."""
    with monkeypatch.context() as patch:
        code, out, err = run_cli(pair, patch, capsys, "status", *argv, env={"DBSYNC_KINDS__JOBS__ENABLED": jobs})
    assert code == 0, err
    return out


def _status_json(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], jobs: str) -> dict:
    return json.loads(_status(pair, monkeypatch, capsys, jobs, "--json"))


def test_a_kind_disabled_after_its_listing_failed_is_not_exported_as_unknown_and_does_not_alert(
    pair: Pair, promtool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("nightly", "hourly"):
        pair.src.jobs.create(name=name, tasks=TASKS, environments=ENVIRONMENTS)
    assert pair.sync(only=KINDS)["jobs"].created == 2
    pair.source.set_faults(rules=[LOGIN_PAGE_FOR_JOBS])
    assert pair.sync(only=KINDS)["jobs"].outcome == "listing_failed"

    # Enabled, the kind whose listing failed is unknown everywhere, and pages.
    resources, compared = _served(pair, JOBS_ON)
    assert resources["jobs"]["unknown"] == 2 and sorted(compared) == KINDS
    assert _status_json(pair, monkeypatch, capsys, "true")["counts"]["jobs"] == {"unknown": 2}
    unknown = {kind: resources[kind]["unknown"] for kind in KINDS}
    fires = _promtool_verdict(promtool, tmp_path, unknown, [_expected_alert("jobs", 2)])
    assert fires.returncode == 0, fires.stdout + fires.stderr

    # The operator turns the kind off: it is not replicated, so it is neither synced nor unknown. /metrics exports
    # no series of it (as /report compares it no more), `status` names it disabled, and nothing pages.
    resources, compared = _served(pair, JOBS_OFF)
    assert "jobs" not in resources, f"a disabled kind's series: {resources['jobs']}"
    assert compared == ["cluster_policies"]
    assert resources["cluster_policies"]["unknown"] == 0
    status = _status_json(pair, monkeypatch, capsys, "false")
    assert "jobs" not in status["counts"] and "jobs" in status["disabled"]
    table = _status(pair, monkeypatch, capsys, "false").splitlines()
    assert "disabled (kinds.jobs.enabled)" in next(line for line in table if line.startswith("jobs "))
    exported = {kind: series["unknown"] for kind, series in resources.items() if "unknown" in series}
    quiet = _promtool_verdict(promtool, tmp_path, exported, [])
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr

    # Turned on again with its listing still failing, it is unknown again: the store forgot nothing.
    resources, _ = _served(pair, JOBS_ON)
    assert resources["jobs"]["unknown"] == 2
    assert _status_json(pair, monkeypatch, capsys, "true")["counts"]["jobs"] == {"unknown": 2}


def _status_line(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str, **env: str
) -> str:
    """The `dbsync status` line of `kind`, with these extra settings (for this command only)."""
    with monkeypatch.context() as patch:
        code, out, err = run_cli(pair, patch, capsys, "status", env=env)
    assert code == 0, err
    return next(line for line in out.splitlines() if line.startswith(f"{kind} "))


def test_status_names_the_setting_that_turns_a_disabled_kind_on(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metastore kinds are off while no SQL warehouse is set: `status` said `disabled (kinds.tables.enabled)`,
    a setting nobody had set to false (and that, set to true without a warehouse, only makes their listing fail).
    It names the warehouse settings; a kind turned off by its own `enabled: false` still names that."""
    assert pair.sync(only=["cluster_policies"])["cluster_policies"].outcome == "ok"  # a store for `status` to read
    warehouses = "no SQL warehouse set: metastore.source_warehouse_id and metastore.target_warehouse_id"

    line = _status_line(pair, monkeypatch, capsys, "tables")
    assert f"disabled ({warehouses})" in line and "kinds.tables.enabled" not in line
    with monkeypatch.context() as patch:
        code, out, err = run_cli(pair, patch, capsys, "status", "--json")
    assert code == 0, err
    assert json.loads(out)["disabled_by"]["tables"] == warehouses

    turned_off = _status_line(
        pair,
        monkeypatch,
        capsys,
        "tables",
        DBSYNC_METASTORE__SOURCE_WAREHOUSE_ID="abc123",
        DBSYNC_KINDS__TABLES__ENABLED="false",
    )
    assert "disabled (kinds.tables.enabled)" in turned_off and "warehouse" not in turned_off
    enabled = _status_line(pair, monkeypatch, capsys, "tables", DBSYNC_METASTORE__SOURCE_WAREHOUSE_ID="abc123")
    assert "disabled" not in enabled
