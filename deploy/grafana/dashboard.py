"""The dbsync Grafana dashboard, as code. Writes dbsync.json here and the Helm chart's copy.

    python deploy/grafana/dashboard.py           # regenerate both files after editing this one
    python deploy/grafana/dashboard.py --check   # exit 1 when a file differs from what this script makes

Only metric names from dbsync/metrics.py (DESIGN §6); tests/test_deploy.py checks every expression.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUTS = (HERE / "dbsync.json", HERE.parent / "helm" / "dbsync" / "files" / "dbsync.json")

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Every query is scoped by the dashboard's variables; several releases (workspace pairs) share one Prometheus.
TARGET = 'job=~"$job", instance=~"$instance"'
KIND = f'{TARGET}, kind=~"$kind"'


def _target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        target.update(instant=True, range=False, format="table")
    return target


def _panel(
    kind: str, title: str, grid: tuple[int, int, int, int], targets: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    x, y, w, h = grid
    unit = extra.pop("unit", "short")
    description = extra.pop("description", "")
    panel: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    panel.update(extra)
    return panel


def _steps(*steps: tuple[str, float | None]) -> list[dict[str, Any]]:
    return [{"color": color, "value": value} for color, value in steps]


def _stat(
    title: str, grid: tuple[int, int, int, int], expr: str, unit: str, description: str, **extra: Any
) -> dict[str, Any]:
    steps = extra.pop("thresholds", _steps(("green", None)))
    panel = _panel("stat", title, grid, [_target(expr)], unit=unit, description=description, **extra)
    panel["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": steps}
    panel["options"] = {"colorMode": "background", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}}
    return panel


def _timeseries(
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[dict[str, Any]],
    unit: str,
    description: str,
    **extra: Any,
) -> dict[str, Any]:
    stacked = extra.pop("stacked", False)
    bars = extra.pop("bars", False)
    panel = _panel("timeseries", title, grid, targets, unit=unit, description=description, **extra)
    panel["fieldConfig"]["defaults"]["custom"] = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars or stacked else 10,
        "stacking": {"mode": "normal" if stacked else "none"},
    }
    panel["options"] = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def _row(title: str, y: int) -> dict[str, Any]:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def _overview(y: int) -> list[dict[str, Any]]:
    red_above = _steps(("green", None), ("red", 1))
    return [
        _stat(
            "Max replication lag",
            (0, y, 4, 4),
            f"max(dbsync_replication_lag_seconds{{{KIND}}})",
            "s",
            "Age of the oldest source change not yet on the standby, over the selected kinds.",
            thresholds=_steps(("green", None), ("orange", 900), ("red", 1800)),
        ),
        _stat(
            "Oldest last success",
            (4, y, 4, 4),
            f"time() - min(dbsync_last_success_timestamp_seconds{{{KIND}}})",
            "s",
            "Time since the kind that has waited longest last completed a cycle.",
            thresholds=_steps(("green", None), ("orange", 1800), ("red", 3600)),
        ),
        _stat(
            "Errors (1h)",
            (8, y, 4, 4),
            f"sum(increase(dbsync_sync_errors_total{{{KIND}}}[1h]))",
            "short",
            "Changes or listings that failed in the last hour; each is retried on the next cycle.",
            thresholds=red_above,
        ),
        _stat(
            "Delete guard tripped",
            (12, y, 4, 4),
            f"sum(dbsync_delete_guard_tripped{{{KIND}}})",
            "short",
            "Kinds whose deletes are held: check the source, then `dbsync sync --once --force-deletes`.",
            thresholds=red_above,
        ),
        _stat(
            "Resources synced",
            (16, y, 4, 4),
            f'sum(dbsync_resources{{{KIND}, status="synced"}})',
            "short",
            "Objects whose last change is on the standby.",
        ),
        _stat(
            "Cutover state",
            (20, y, 4, 4),
            f"max(dbsync_cutover_state{{{TARGET}}})",
            "short",
            "0 standby replication, 1 cutover in progress, 2 cutover complete.",
            thresholds=_steps(("green", None), ("orange", 1), ("blue", 2)),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "standby", "index": 0},
                        "1": {"text": "cutover running", "index": 1},
                        "2": {"text": "cutover complete", "index": 2},
                    },
                }
            ],
        ),
    ]


def _replication(y: int) -> list[dict[str, Any]]:
    return [
        _timeseries(
            "Replication lag by kind",
            (0, y, 12, 8),
            [_target(f"max by (kind) (dbsync_replication_lag_seconds{{{KIND}}})", "{{kind}}")],
            "s",
            "Age of the oldest source change not yet applied (0 when in sync).",
        ),
        _timeseries(
            "Last success age by kind",
            (12, y, 12, 8),
            [_target(f"time() - max by (kind) (dbsync_last_success_timestamp_seconds{{{KIND}}})", "{{kind}}")],
            "s",
            "Time since each kind last completed a cycle; it should stay below a few intervals.",
        ),
        _timeseries(
            "Changes applied per second",
            (0, y + 8, 12, 8),
            [
                _target(
                    f"sum by (kind, action) (rate(dbsync_changes_applied_total{{{KIND}}}[$__rate_interval]))",
                    "{{kind}} {{action}}",
                )
            ],
            "ops",
            "Creates, updates and deletes written to the target.",
            stacked=True,
        ),
        _timeseries(
            "Errors by kind",
            (12, y + 8, 12, 8),
            [_target(f"sum by (kind) (increase(dbsync_sync_errors_total{{{KIND}}}[$__rate_interval]))", "{{kind}}")],
            "short",
            "Failed changes and listings per interval; /report names the failing objects.",
            bars=True,
        ),
        _timeseries(
            "Cycle duration p50 / p99",
            (0, y + 16, 12, 8),
            [
                _target(
                    "histogram_quantile(0.5, sum by (kind, le) "
                    f"(rate(dbsync_cycle_duration_seconds_bucket{{{KIND}}}[$__rate_interval])))",
                    "{{kind}} p50",
                    "A",
                ),
                _target(
                    "histogram_quantile(0.99, sum by (kind, le) "
                    f"(rate(dbsync_cycle_duration_seconds_bucket{{{KIND}}}[$__rate_interval])))",
                    "{{kind}} p99",
                    "B",
                ),
            ],
            "s",
            "How long one cycle of one kind takes; a cycle longer than its interval delays the next.",
        ),
        _timeseries(
            "Delete guard by kind",
            (12, y + 16, 12, 8),
            [_target(f"max by (kind) (dbsync_delete_guard_tripped{{{KIND}}})", "{{kind}}")],
            "short",
            "1 while a kind's deletes are held by the delete guard.",
            bars=True,
        ),
        _timeseries(
            "Resources by status",
            (0, y + 24, 12, 8),
            [_target(f"sum by (status) (dbsync_resources{{{KIND}}})", "{{status}}")],
            "short",
            "Replicated objects: synced, pending, blocked (a reference not replicated yet) and error.",
            stacked=True,
        ),
        _panel(
            "bargauge",
            "Not synced by kind",
            (12, y + 24, 12, 8),
            [_target(f'sum by (kind, status) (dbsync_resources{{{KIND}, status!="synced"}})', "{{kind}} {{status}}")],
            description="Objects pending, blocked or in error, per kind.",
            options={
                "orientation": "horizontal",
                "displayMode": "gradient",
                "reduceOptions": {"calcs": ["lastNotNull"]},
            },
        ),
        _timeseries(
            "Drift detected",
            (0, y + 32, 24, 6),
            [_target(f"sum by (kind) (increase(dbsync_drift_detected_total{{{KIND}}}[$__rate_interval]))", "{{kind}}")],
            "short",
            "Target objects edited outside dbsync (drift: report keeps them, heal rewrites them).",
            bars=True,
        ),
    ]


def _api(y: int) -> list[dict[str, Any]]:
    requests = f"dbsync_api_requests_total{{{TARGET}}}"
    throttled = f'dbsync_api_requests_total{{{TARGET}, status="429"}}'
    return [
        _timeseries(
            "API requests by status",
            (0, y, 12, 8),
            [_target(f"sum by (workspace, status) (rate({requests}[$__rate_interval]))", "{{workspace}} {{status}}")],
            "reqps",
            "Databricks REST requests per second by workspace and HTTP status; 429 is rate limiting.",
            stacked=True,
        ),
        _timeseries(
            "429 share by workspace",
            (12, y, 12, 8),
            [
                _target(
                    f"sum by (workspace) (rate({throttled}[$__rate_interval])) "
                    f"/ sum by (workspace) (rate({requests}[$__rate_interval]))",
                    "{{workspace}}",
                )
            ],
            "percentunit",
            "Share of requests answered 429; the SDK retries them, but every retry waits (alert above 10 %).",
        ),
        _timeseries(
            "Top endpoints",
            (0, y + 8, 24, 8),
            [
                _target(
                    f"topk(10, sum by (workspace, method, endpoint) (rate({requests}[$__rate_interval])))",
                    "{{workspace}} {{method}} {{endpoint}}",
                )
            ],
            "reqps",
            "The ten busiest endpoint templates.",
        ),
    ]


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard() -> dict[str, Any]:
    """The dashboard document Grafana imports (uid `dbsync`, datasource chosen by a variable)."""
    panels = [_row("Overview", 0), *_overview(1), _row("Replication", 5), *_replication(6), _row("Databricks API", 44)]
    panels += _api(45)
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": "dbsync",
        "title": "dbsync",
        "description": "Databricks DR replication: lag, changes, errors, API usage, delete guard.",
        "tags": ["dbsync", "databricks", "disaster-recovery"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                _variable("job", "Job", "label_values(dbsync_cutover_state, job)"),
                _variable("instance", "Instance", 'label_values(dbsync_cutover_state{job=~"$job"}, instance)'),
                _variable("kind", "Kind", f"label_values(dbsync_resources{{{TARGET}}}, kind)"),
            ]
        },
        "version": 1,
    }


def render() -> str:
    """The dashboard as the JSON text both files hold."""
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        stale = [str(p) for p in OUTPUTS if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"{path} is stale: run python deploy/grafana/dashboard.py", file=sys.stderr)
        return 1 if stale else 0
    for path in OUTPUTS:
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
