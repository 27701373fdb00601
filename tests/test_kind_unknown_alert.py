"""A kind whose listing keeps failing pages someone: the DbsyncKindUnknown alert (deploy/prometheus/rules.yml).

Since 22a9b03 and 24a07e3, a kind whose last cycle did not list it whole (the listing failed, or was stopped) counts
what it had as synced as `unknown`, in `dbsync status` and in dbsync_resources{status="unknown"}. No alert rule
looked at that series: a kind whose listing kept failing could sit `unknown` for days without paging anyone.

The source's jobs listing answers a login proxy's HTML page from one cycle on; the cluster policies list fine.
promtool evaluates the rules on the values dbsync exports (its gauges, refreshed from the store as at each scrape):
the alert fires for jobs after 30 min, not for the policies, and no longer once a cycle lists the jobs whole.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Pair, promtool_verdict, run_cli
from databricks.sdk.service import jobs
from prometheus_client import REGISTRY

from dbsync.engine import update_gauges

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
ALERT = "DbsyncKindUnknown"
KINDS = ["cluster_policies", "jobs"]
TASKS = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))]
ENVIRONMENTS = [jobs.JobEnvironment(environment_key="e")]
LOGIN_PAGE_FOR_JOBS = {"action": "html", "method": "GET", "path": "/api/2.2/jobs/list"}


def _exported_unknown(pair: Pair) -> dict[str, float]:
    """dbsync_resources{kind, status="unknown"} as the daemon's /metrics exports it (refreshed from the store)."""
    ctx = pair.context()
    try:
        update_gauges(ctx.store, KINDS)
    finally:
        ctx.store.close()
    return {kind: REGISTRY.get_sample_value("dbsync_resources", {"kind": kind, "status": "unknown"}) for kind in KINDS}


def _status_counts(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, err = run_cli(pair, monkeypatch, capsys, "status", "--json")
    assert code == 0, err
    return json.loads(out)["counts"]


def _expected_alert(kind: str, value: float) -> dict[str, Any]:
    """The alert as Alertmanager would get it: its annotations rendered from the rules file for this kind."""
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if r.get("alert") == ALERT]
    assert rules, f"no alert {ALERT} in {RULES.relative_to(ROOT)}: nothing pages on a kind left unknown"
    annotations = {
        name: text.replace("{{ $labels.kind }}", kind)
        .replace("{{ $labels.instance }}", "dbsync-0")
        .replace("{{ $value | humanize }}", f"{value:g}")
        for name, text in rules[0]["annotations"].items()
    }
    return {
        "exp_labels": {"severity": "warning", "job": "dbsync", "instance": "dbsync-0", "kind": kind},
        "exp_annotations": annotations,
    }


def _promtool_verdict(
    promtool: str, tmp_path: Path, unknown: dict[str, float], fires: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """promtool's verdict on the rules, each kind's exported value held for 40 min: nothing at 30 min, `fires` at 31."""
    series = [
        {
            "series": f'dbsync_resources{{job="dbsync", instance="dbsync-0", kind="{kind}", status="unknown"}}',
            "values": f"{value:g}x40",
        }
        for kind, value in unknown.items()
    ]
    checks = [
        {"eval_time": "29m", "alertname": ALERT, "exp_alerts": []},
        {"eval_time": "31m", "alertname": ALERT, "exp_alerts": fires},
    ]
    return promtool_verdict(promtool, tmp_path, series, checks)


def test_a_kind_whose_listing_keeps_failing_alerts_after_30_minutes_and_stops_once_listed_whole(
    pair: Pair, promtool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("nightly", "hourly"):
        pair.src.jobs.create(name=name, tasks=TASKS, environments=ENVIRONMENTS)
    first = pair.sync(only=KINDS)  # the cluster policies are the workspace's built-in ones
    assert (first["jobs"].created, first["cluster_policies"].outcome) == (2, "ok")

    pair.source.set_faults(rules=[LOGIN_PAGE_FOR_JOBS])
    failed = pair.sync(only=KINDS)
    assert (failed["jobs"].outcome, failed["cluster_policies"].outcome) == ("listing_failed", "ok")
    assert _status_counts(pair, monkeypatch, capsys)["jobs"] == {"unknown": 2}
    unknown = _exported_unknown(pair)
    assert unknown == {"cluster_policies": 0, "jobs": 2}

    expected = _expected_alert("jobs", 2)
    assert expected["exp_annotations"]["summary"] == (
        "dbsync jobs: 2 objects unknown, the kind's listing did not complete"
    )
    verdict = _promtool_verdict(promtool, tmp_path, unknown, [expected])
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr

    pair.source.set_faults()  # the proxy is fixed: the next cycle lists the jobs whole
    assert pair.sync(only=KINDS)["jobs"].outcome == "ok"
    assert _status_counts(pair, monkeypatch, capsys)["jobs"] == {"synced": 2}
    listed = _exported_unknown(pair)
    assert listed == {"cluster_policies": 0, "jobs": 0}
    resolved = _promtool_verdict(promtool, tmp_path, listed, [])
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
