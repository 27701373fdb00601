"""A daemon that handed its store to `dbsync cutover` keeps serving once the cutover completes: no freshness alert
pages for it (deploy/prometheus/rules.yml).

It no longer replicates (the target is the primary now: the store's role refuses every cycle), but its
dbsync_last_success_timestamp_seconds stays where its last cycle left it and its dbsync_staleness_seconds is
computed at each scrape: both age for as long as the pod runs. DbsyncNoSuccessfulCycle (critical) paged an hour after
the cutover and DbsyncStalenessAboveTarget a kind's freshness target and 15 min after it, for good, on a pair that
was exactly where the runbook leaves it. Like DbsyncKindUnknown, they do not fire once dbsync_cutover_state is 2.

A real `dbsync serve` replicates two emulated workspaces over HTTP, `dbsync cutover --yes` takes its store and
completes; promtool then evaluates the rules on what the daemon exports, each series carried on as it ages.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import Pair, promtool_verdict
from test_probes import _wait
from test_serve import Served

HOURS = 3  # how long promtool carries the exported series on: past the hour and every kind's freshness target
LABELS = 'job="dbsync", instance="dbsync-0"'


def _kinds_with(page: str, name: str) -> dict[str, float]:
    """{kind: value} of a per-kind series on a /metrics page."""
    prefix = f'{name}{{kind="'
    values = {}
    for line in page.splitlines():
        if line.startswith(prefix):
            labels, value = line.rsplit(" ", 1)
            values[labels[len(prefix) : -2]] = float(value)
    return values


def _cutover_state(page: str) -> float:
    return next(float(line.split()[1]) for line in page.splitlines() if line.startswith("dbsync_cutover_state "))


def _series(name: str, kind: str | None, values: str) -> dict[str, str]:
    labels = LABELS if kind is None else f'{LABELS}, kind="{kind}"'
    return {"series": f"{name}{{{labels}}}", "values": values}


def _carried_on(page: str, scraped_at: float) -> tuple[list[dict[str, str]], dict[str, float]]:
    """promtool input series from one /metrics page, each as it goes on from there a minute at a time: the last
    success stays (promtool's clock starts at the scrape), the staleness grows 60 s a minute. With each kind's
    staleness at the end."""
    minutes = HOURS * 60
    last_success = _kinds_with(page, "dbsync_last_success_timestamp_seconds")
    staleness = _kinds_with(page, "dbsync_staleness_seconds")
    targets = _kinds_with(page, "dbsync_staleness_target_seconds")
    series = [_series("dbsync_cutover_state", None, f"{_cutover_state(page):g}x{minutes}")]
    for kind, at in last_success.items():
        series.append(_series("dbsync_last_success_timestamp_seconds", kind, f"{at - scraped_at:.0f}x{minutes}"))
    for kind, age in staleness.items():
        series.append(_series("dbsync_staleness_seconds", kind, f"{age:.0f}+60x{minutes}"))
        series.append(_series("dbsync_staleness_target_seconds", kind, f"{targets[kind]:g}x{minutes}"))
    return series, {kind: age + minutes * 60 - targets[kind] for kind, age in staleness.items()}


def _promtool_verdict(promtool: str, tmp_path: Path, series: list[dict[str, str]]) -> subprocess.CompletedProcess:
    """promtool's verdict on the rules at the end of the carried-on series: neither alert fires."""
    at = f"{HOURS * 60}m"
    checks = [
        {"eval_time": at, "alertname": "DbsyncNoSuccessfulCycle", "exp_alerts": []},
        {"eval_time": at, "alertname": "DbsyncStalenessAboveTarget", "exp_alerts": []},
    ]
    return promtool_verdict(promtool, tmp_path, series, checks)


def test_a_daemon_serving_on_after_a_completed_cutover_does_not_page_for_freshness(
    pair: Pair, promtool: str, tmp_path: Path
) -> None:
    pair.src.workspace.mkdirs("/Shared/etl")
    served = Served(pair, tmp_path)
    try:
        _wait(served, "/cutover-readyz", lambda r: r.status_code == 200, seconds=90)  # replicating, in sync
        cutover = subprocess.run(
            [sys.executable, "-m", "dbsync.cli", "cutover", "--yes"],
            env=served.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert cutover.returncode == 0, cutover.stderr[-3000:]
        _wait(served, "/cutover-readyz", lambda r: "cutover is complete" in r.text)
        first = served.get("/metrics").text
        time.sleep(1.5)
        scraped_at = time.time()
        page = served.get("/metrics").text
    finally:
        assert served.terminate() == 0

    # What the daemon exports after the cutover: the last successes of its cycles, staleness still ageing.
    assert _cutover_state(page) == 2
    last_success = _kinds_with(page, "dbsync_last_success_timestamp_seconds")
    assert "directories" in last_success and last_success["directories"] < scraped_at
    staleness, earlier = _kinds_with(page, "dbsync_staleness_seconds"), _kinds_with(first, "dbsync_staleness_seconds")
    assert staleness["directories"] > earlier["directories"]

    series, over_target = _carried_on(page, scraped_at)
    assert [kind for kind, over in over_target.items() if over > 0], over_target  # the staleness rule has its case
    verdict = _promtool_verdict(promtool, tmp_path, series)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
