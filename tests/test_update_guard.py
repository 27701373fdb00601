"""The edit-storm guard (issue 18, item 2): the delete guard's twin for a source overwritten by mistake.

Someone's script rewrites 60 % of the notebooks with junk: the next cycle holds every update (0 target writes),
`dbsync_update_guard_tripped{kind}` is 1 and the `DbsyncUpdateGuardTripped` alert fires (checked with promtool
on the value the engine exported), an event says what to do; `sync --once --force-updates`, or
`dbsync confirm-updates` for the daemon's next cycle, lets the updates through. While held, the updates are
`pending` wherever dbsync counts (`status`, `dbsync_resources`, `validate`): the standby does not have them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import Pair, promtool_verdict
from databricks.sdk.service.workspace import ImportFormat, Language
from freezegun import freeze_time
from prometheus_client import REGISTRY

from dbsync import planner
from dbsync.cli import main
from dbsync.config import UpdateSettings
from dbsync.model import Prior, Resource
from dbsync.report import validate
from dbsync.store import Store

ROOT = Path(__file__).resolve().parent.parent
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules_test.yml"
TREE = ["directories", "notebooks", "files"]
COUNT = 20


def _write(pair: Pair, path: str, text: str) -> None:
    content = base64.b64encode(text.encode()).decode()
    pair.src.workspace.import_(
        path, content=content, format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )


def _good(i: int) -> str:
    return f"# step {i}\n" + f"df = spark.table('raw.events_{i}')\n" * 40


def _synced_notebooks(pair: Pair) -> list[str]:
    pair.src.workspace.mkdirs("/Shared/etl")
    paths = [f"/Shared/etl/step_{i:02d}" for i in range(COUNT)]
    for i, path in enumerate(paths):
        _write(pair, path, _good(i))
    assert pair.sync(only=TREE)["notebooks"].created == COUNT
    return paths


def _target_body(pair: Pair, path: str) -> bytes:
    return pair.dst.workspace.download(path).read()


def _alert_fires(promtool: str, tmp_path: Path, value: float) -> subprocess.CompletedProcess[str]:
    """promtool's verdict on the alert rule, fed the gauge value the engine exported."""
    static = yaml.safe_load(RULES_TEST.read_text())
    expected = next(
        t["exp_alerts"]
        for group in static["tests"]
        for t in group["alert_rule_test"]
        if t["alertname"] == "DbsyncUpdateGuardTripped" and t["exp_alerts"]
    )
    series = 'dbsync_update_guard_tripped{job="dbsync", instance="dbsync-0", kind="notebooks"}'
    checks = [{"eval_time": "1m", "alertname": "DbsyncUpdateGuardTripped", "exp_alerts": expected}]
    return promtool_verdict(promtool, tmp_path, [{"series": series, "values": f"{value:g}x5"}], checks)


def _events(pair: Pair, outcome: str) -> list[str]:
    store = Store(pair.state_path)
    try:
        return [e["message"] for e in store.events(limit=200, outcome=outcome)]
    finally:
        store.close()


def test_sixty_percent_junk_is_held_the_alert_fires_and_a_forced_cycle_applies_it(
    pair: Pair, promtool: str, tmp_path: Path
) -> None:
    paths = _synced_notebooks(pair)
    good = {p: _target_body(pair, p) for p in paths}
    junk = paths[: COUNT * 6 // 10]
    for path in junk:
        _write(pair, path, "x")
    pair.reset_stats()

    plan = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "plan", "--kinds", ",".join(TREE)],
        capture_output=True,
        text=True,
        env=pair.env(),
        timeout=300,
    )
    assert "! notebooks: the edit-storm guard would hold these 12 updates: 12 of 20 notebooks (60%)" in plan.stdout
    assert plan.returncode == 1, "a plan whose updates a guard would hold exits 1, as the sync does"
    report = pair.sync(only=TREE)["notebooks"]

    assert (report.held, report.updated, report.outcome) == (len(junk), 0, "update_guard")
    assert pair.target_writes() == 0, "held: not one write reached the target"
    assert all(_target_body(pair, p) == good[p] for p in paths), "the standby keeps its good copies"
    value = REGISTRY.get_sample_value("dbsync_update_guard_tripped", {"kind": "notebooks"})
    assert value == 1
    fired = _alert_fires(promtool, tmp_path, value)
    assert fired.returncode == 0, fired.stdout + fired.stderr
    assert any(
        "edit-storm guard tripped, 12 updates held" in m and "--force-updates" in m for m in _events(pair, "held")
    )

    # Still held on the next cycle: the source is fetched again and the guard looks again.
    assert pair.sync(only=TREE)["notebooks"].held == len(junk) and pair.target_writes() == 0

    forced = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "sync", "--once", "--kinds", ",".join(TREE), "--force-updates"],
        capture_output=True,
        text=True,
        env=pair.env(),
        timeout=300,
    )
    assert forced.returncode == 0, forced.stderr
    assert all(_target_body(pair, p) != good[p] for p in junk)
    assert all(_target_body(pair, p) == good[p] for p in paths[len(junk) :])
    assert REGISTRY.get_sample_value("dbsync_update_guard_tripped", {"kind": "notebooks"}) == 1  # this process's
    pair.reset_stats()
    assert pair.sync(only=TREE)["notebooks"].held == 0 and pair.target_writes() == 0
    assert REGISTRY.get_sample_value("dbsync_update_guard_tripped", {"kind": "notebooks"}) == 0


def test_the_daemon_applies_held_updates_once_confirmed(pair: Pair, capsys) -> None:
    paths = _synced_notebooks(pair)
    assert main(["confirm-updates", "--state-path", str(pair.state_path)]) == 1, "nothing held: nothing to confirm"
    for path in paths[:15]:
        _write(pair, path, "x")
    assert pair.sync(only=TREE)["notebooks"].held == 15
    assert main(["confirm-updates", "--kinds", "notebooks", "--state-path", str(pair.state_path)]) == 0
    assert "the next cycle of notebooks applies the held updates" in capsys.readouterr().out

    report = pair.sync(only=TREE)["notebooks"]  # the daemon's cycle: no force flag

    assert (report.updated, report.held, report.fetched) == (15, 0, 15), "each fetched once, counted once"
    assert any("confirmed" in m for m in _events(pair, "confirmed"))
    for path in paths[:15]:
        _write(pair, path, "y")
    assert pair.sync(only=TREE)["notebooks"].held == 15, "a confirmation lets one storm through, not the next"
    with freeze_time(datetime.now(UTC) - timedelta(days=2)):
        assert main(["confirm-updates", "--kinds", "notebooks", "--state-path", str(pair.state_path)]) == 0
    assert pair.sync(only=TREE)["notebooks"].held == 15, "a confirmation two days old is not used"


def test_a_few_edits_go_through_but_blanked_bodies_are_held(pair: Pair) -> None:
    paths = _synced_notebooks(pair)
    for path in paths[:2]:
        _write(pair, path, "# a real edit\n" + "df = spark.table('clean.events')\n" * 40)
    assert pair.sync(only=TREE)["notebooks"].updated == 2, "2 of 20 is an ordinary edit"

    for path in paths[2:5]:
        _write(pair, path, "")
    pair.reset_stats()
    report = pair.sync(only=TREE, updates={"min_count": 3})["notebooks"]
    assert report.held == 3 and "lost 90%+ of their content" in (report.message or "")
    assert pair.target_writes() == 0


def _status_counts(capsys: pytest.CaptureFixture[str], pair: Pair) -> dict[str, int]:
    """`dbsync status --json`'s notebook counts."""
    capsys.readouterr()
    assert main(["status", "--json", "--state-path", str(pair.state_path)]) == 0
    return json.loads(capsys.readouterr().out)["counts"]["notebooks"]


def _resources_metric(status: str) -> float | None:
    return REGISTRY.get_sample_value("dbsync_resources", {"kind": "notebooks", "status": status})


def test_held_updates_are_pending_in_status_metrics_and_validate_until_applied(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _synced_notebooks(pair)
    good = {p: _target_body(pair, p) for p in paths[:12]}
    for path in paths[:12]:
        _write(pair, path, "x")
    assert pair.sync(only=TREE)["notebooks"].held == 12

    assert _status_counts(capsys, pair) == {"synced": 8, "pending": 12}, "held is not on the standby: pending"
    assert (_resources_metric("synced"), _resources_metric("pending")) == (8, 12)
    assert REGISTRY.get_sample_value("dbsync_replication_lag_seconds", {"kind": "notebooks"}) > 0
    ctx = pair.context()
    try:
        live = {k.kind: k for k in validate(ctx, TREE).kinds}["notebooks"]
    finally:
        ctx.store.close()
    assert (live.pending, live.in_sync) == (12, 8), "validate and status say the same"

    pair.reset_stats()
    again = pair.sync(only=TREE)["notebooks"]
    assert (again.held, again.created, again.updated) == (12, 0, 0), "still guarded updates, not retries or creates"
    assert pair.target_writes() == 0 and _status_counts(capsys, pair) == {"synced": 8, "pending": 12}

    assert main(["confirm-updates", "--kinds", "notebooks", "--state-path", str(pair.state_path)]) == 0
    assert pair.sync(only=TREE)["notebooks"].updated == 12
    assert all(_target_body(pair, p) != good[p] for p in paths[:12])
    assert _status_counts(capsys, pair) == {"synced": 20}
    assert (_resources_metric("synced"), _resources_metric("pending")) == (20, 0)
    assert REGISTRY.get_sample_value("dbsync_replication_lag_seconds", {"kind": "notebooks"}) == 0


def test_a_storm_undone_on_the_source_is_in_sync_again_without_a_write(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _synced_notebooks(pair)
    for path in paths[:12]:
        _write(pair, path, "x")
    assert pair.sync(only=TREE)["notebooks"].held == 12
    for i, path in enumerate(paths[:12]):
        _write(pair, path, _good(i))  # the script's author puts the notebooks back
    pair.reset_stats()

    report = pair.sync(only=TREE)["notebooks"]

    assert (report.held, report.updated, report.unchanged, report.outcome) == (0, 0, COUNT, "ok")
    assert pair.target_writes() == 0
    assert _status_counts(capsys, pair) == {"synced": 20}
    assert REGISTRY.get_sample_value("dbsync_update_guard_tripped", {"kind": "notebooks"}) == 0
    assert REGISTRY.get_sample_value("dbsync_replication_lag_seconds", {"kind": "notebooks"}) == 0


def _update(key: str, sha: str, size: int, before: int) -> tuple[Resource, Prior]:
    resource = Resource("notebooks", key, payload={"path": key, "sha256": sha, "size": size})
    prior = Prior("notebooks", key, "h", "f", key, None, "synced", 0, payload={"path": key, "size": before})
    return resource, prior


def test_the_same_content_on_many_paths_is_held_and_the_guard_can_be_switched_off() -> None:
    settings = UpdateSettings(min_count=3)
    same = [_update(f"/n{i}", "abc123", 500, 400) for i in range(3)]
    plan = planner.plan_updates("notebooks", same, 100, settings)
    assert plan.held and "3 notebooks took the same new content" in (plan.reason or "")
    varied = [_update(f"/n{i}", f"sha{i}", 500, 400) for i in range(3)]
    assert not planner.plan_updates("notebooks", varied, 100, settings).held
    assert not planner.plan_updates("notebooks", same, 100, UpdateSettings(min_count=3, guard=False)).held
    assert not planner.plan_updates("notebooks", same, 100, settings, force=True).held
