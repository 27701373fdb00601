"""The dbsync Grafana dashboard, built with Grafana's typed builder (grafana-foundation-sdk). Writes dbsync.json here
and the Helm chart's copy.

    python deploy/grafana/dashboard.py           # regenerate both files after editing this one
    python deploy/grafana/dashboard.py --check   # exit 1 when a file differs from what this script makes
    python deploy/grafana/dashboard.py --stdout  # print the dashboard

The builder puts every field option (unit, thresholds, value mappings, no-value text) where Grafana reads it,
fieldConfig.defaults: a misplaced option is an AttributeError here, not a panel silently showing raw numbers.
Only metric names from dbsync/metrics.py; tests/test_deploy.py checks every expression, tests/test_dashboard.py what
operators read (the runbook's words, a 0 where nothing failed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    from grafana_foundation_sdk.builders import bargauge, common, prometheus, stat, timeseries
    from grafana_foundation_sdk.builders import dashboard as board
    from grafana_foundation_sdk.cog.builder import Builder
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common as models
    from grafana_foundation_sdk.models import dashboard as grafana
except ImportError as err:  # a dev/test tool, not a dbsync dependency
    raise SystemExit(f"{err}: pip install -e '.[test]' (it pins grafana-foundation-sdk)") from err

HERE = Path(__file__).resolve().parent
OUTPUTS = (HERE / "dbsync.json", HERE.parent / "helm" / "dbsync" / "files" / "dbsync.json")

DATASOURCE = grafana.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every query is scoped by the dashboard's variables; several workspace pairs (a `pairs:` release or one release
# each) share one Prometheus. `pair` is the label the chart's ServiceMonitor sets ("All" also matches none).
TARGET = 'pair=~"$pair", job=~"$job", instance=~"$instance"'
KIND = f'{TARGET}, kind=~"$kind"'
# dbsync_cutover_state's values (dbsync/server.py, dbsync/cutover/) as the README's cutover runbook names them.
CUTOVER_WORDS = {0: "standby", 1: "cutover running", 2: "cutover complete"}

Grid = tuple[int, int, int, int]
Step = tuple[str, float | None]


def _target(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def _placed(panel: Builder, title: str, grid: Grid, description: str, unit: str) -> Builder:
    """The options every panel shares: title, position, data source, unit."""
    x, y, w, h = grid
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(grafana.GridPos(x=x, y=y, w=w, h=h))
        .unit(unit)
    )


def _thresholds(*steps: Step) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(grafana.ThresholdsMode.ABSOLUTE)
        .steps([grafana.Threshold(color=color, value=value) for color, value in steps])
    )


def _stat(
    title: str,
    grid: Grid,
    expr: str,
    unit: str,
    description: str,
    thresholds: tuple[Step, ...] = (("green", None),),
    mappings: dict[int, str] | None = None,
    no_value: str | None = None,
) -> stat.Panel:
    panel = (
        _placed(stat.Panel(), title, grid, description, unit)
        .with_target(_target(expr))
        .thresholds(_thresholds(*thresholds))
        .color_mode(models.BigValueColorMode.BACKGROUND)
        .graph_mode(models.BigValueGraphMode.NONE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    if mappings:
        options = {
            str(value): grafana.ValueMappingResult(text=text, index=i)
            for i, (value, text) in enumerate(mappings.items())
        }
        panel = panel.mappings([grafana.ValueMap(options=options)])
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def _timeseries(
    title: str,
    grid: Grid,
    targets: list[prometheus.Dataquery],
    unit: str,
    description: str,
    stacked: bool = False,
    bars: bool = False,
    no_value: str | None = None,
) -> timeseries.Panel:
    panel = (
        _placed(timeseries.Panel(), title, grid, description, unit)
        .targets(targets)
        .draw_style(models.GraphDrawStyle.BARS if bars else models.GraphDrawStyle.LINE)
        .fill_opacity(60 if bars or stacked else 10)
        .stacking(common.StackingConfig().mode(models.StackingMode.NORMAL if stacked else models.StackingMode.NONE))
        .legend(
            common.VizLegendOptions()
            .display_mode(models.LegendDisplayMode.TABLE)
            .placement(models.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common.VizTooltipOptions().mode(models.TooltipDisplayMode.MULTI).sort(models.SortOrder.DESCENDING))
    )
    return panel.no_value(no_value) if no_value is not None else panel


def _bargauge(title: str, grid: Grid, targets: list[prometheus.Dataquery], description: str) -> bargauge.Panel:
    return (
        _placed(bargauge.Panel(), title, grid, description, "short")
        .targets(targets)
        .orientation(models.VizOrientation.HORIZONTAL)
        .display_mode(models.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def _overview(y: int) -> list[Builder]:
    red_above = (("green", None), ("red", 1))
    return [
        _stat(
            "Max replication lag",
            (0, y, 4, 4),
            f"max(dbsync_replication_lag_seconds{{{KIND}}})",
            "s",
            "Age of the oldest source change not yet on the standby, over the selected kinds.",
            thresholds=(("green", None), ("orange", 900), ("red", 1800)),
        ),
        _stat(
            "Oldest last success",
            (4, y, 4, 4),
            f"time() - min(dbsync_last_success_timestamp_seconds{{{KIND}}})",
            "s",
            "Time since the kind that has waited longest last completed a cycle.",
            thresholds=(("green", None), ("orange", 1800), ("red", 3600)),
        ),
        _stat(
            "Errors (1h)",
            (8, y, 4, 4),
            # No series until the first error: without the fallback the panel would say "No data", not 0.
            f"sum(increase(dbsync_sync_errors_total{{{KIND}}}[1h])) or vector(0)",
            "short",
            "Changes or listings that failed in the last hour; each is retried on the next cycle.",
            thresholds=red_above,
            no_value="0",
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
            "The store's role: standby (replicating), cutover running, cutover complete (the target is the primary).",
            thresholds=(("green", None), ("orange", 1), ("blue", 2)),
            mappings=CUTOVER_WORDS,
        ),
    ]


def _replication(y: int) -> list[Builder]:
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
            no_value="0",
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
            "Delete and edit-storm guards by kind",
            (12, y + 16, 12, 8),
            [
                _target(f"max by (kind) (dbsync_delete_guard_tripped{{{KIND}}})", "{{kind}} deletes"),
                _target(f"max by (kind) (dbsync_update_guard_tripped{{{KIND}}})", "{{kind}} updates", "B"),
            ],
            "short",
            "1 while a kind's deletes are held by the delete guard, or its updates by the edit-storm guard "
            "(`dbsync sync --once --force-updates` or `dbsync confirm-updates`).",
            bars=True,
        ),
        _timeseries(
            "Resources by status",
            (0, y + 24, 12, 8),
            [_target(f"sum by (status) (dbsync_resources{{{KIND}}})", "{{status}}")],
            "short",
            "Replicated objects by status, the words of `dbsync status` and `validate`: synced, partial, skipped, "
            "pending (a source change not on the target yet), blocked (a reference not replicated yet), error, "
            "drifted, and unknown (the kind's last listing failed: not checked against the source).",
            stacked=True,
        ),
        _bargauge(
            "Not synced by kind",
            (12, y + 24, 12, 8),
            [_target(f'sum by (kind, status) (dbsync_resources{{{KIND}, status!="synced"}})', "{{kind}} {{status}}")],
            "Objects not in sync per kind: partial, skipped, pending, blocked, error, drifted or unknown.",
        ),
        _timeseries(
            "Drift detected",
            (0, y + 32, 24, 6),
            [_target(f"sum by (kind) (increase(dbsync_drift_detected_total{{{KIND}}}[$__rate_interval]))", "{{kind}}")],
            "short",
            "Target objects edited outside dbsync (drift: report keeps them, heal rewrites them).",
            bars=True,
        ),
        _timeseries(
            "RPO: staleness vs target by kind",
            (0, y + 38, 24, 8),
            [
                _target(f"max by (kind) (dbsync_staleness_seconds{{{KIND}}})", "{{kind}}", "A"),
                _target(f"max by (kind) (dbsync_staleness_target_seconds{{{KIND}}})", "{{kind}} target", "B"),
            ],
            "s",
            "Recovery point: age of the oldest object of each kind not read on the source since, against the kind's "
            "target (max_staleness, or its interval). Above the target for 15 min: DbsyncStalenessAboveTarget.",
        ),
    ]


def _api(y: int) -> list[Builder]:
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
        _timeseries(
            "Requests/s vs budget",
            (0, y + 16, 24, 8),
            [
                _target(f"sum by (workspace) (rate({requests}[$__rate_interval]))", "{{workspace}} spent", "A"),
                _target(
                    f"max by (workspace) (dbsync_api_budget_requests_per_second{{{TARGET}}})",
                    "{{workspace}} budget",
                    "B",
                ),
                _target(
                    f"sum(dbsync_revisit_need_requests_per_second{{{TARGET}}})",
                    "source reads the revisit schedule needs",
                    "C",
                ),
            ],
            "reqps",
            "Requests sent per second (retries included) against each workspace's max_requests_per_second; "
            "no budget line: the side is unpaced. The schedule's need is what the kinds read by need ask of the "
            "source at the least (each object once per max_staleness): near the budget, objects pass it.",
        ),
    ]


def _variable(name: str, label: str, query: str) -> board.QueryVariable:
    return (
        board.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": f"{name}-variable"})
        .refresh(grafana.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".*")
        .current(grafana.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .sort(grafana.VariableSort.ALPHABETICAL_ASC)
    )


def _row(title: str, y: int) -> board.Row:
    return board.Row(title).collapsed(False).grid_pos(grafana.GridPos(x=0, y=y, w=24, h=1))


def dashboard() -> grafana.Dashboard:
    """The dashboard document Grafana imports (uid `dbsync`, datasource chosen by a variable)."""
    builder = (
        board.Dashboard("dbsync")
        .uid("dbsync")
        .description("Databricks DR replication: lag, changes, errors, API usage, delete guard.")
        .tags(["dbsync", "databricks", "disaster-recovery"])
        .editable()
        .tooltip(grafana.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("")
        .version(1)
        .with_variable(board.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(_variable("pair", "Workspace pair", "label_values(dbsync_cutover_state, pair)"))
        .with_variable(_variable("job", "Job", 'label_values(dbsync_cutover_state{pair=~"$pair"}, job)'))
        .with_variable(_variable("instance", "Instance", 'label_values(dbsync_cutover_state{job=~"$job"}, instance)'))
        .with_variable(_variable("kind", "Kind", f"label_values(dbsync_resources{{{TARGET}}}, kind)"))
    )
    sections = (("Overview", 0, _overview), ("Replication", 5, _replication), ("Databricks API", 53, _api))
    number = 0
    for title, y, panels in sections:
        number += 1
        builder = builder.with_row(_row(title, y).id(number))
        for panel in panels(y + 1):
            number += 1
            builder = builder.with_panel(panel.id(number))
    return builder.build()


def render() -> str:
    """The dashboard as the JSON text both files hold."""
    return json.dumps(dashboard(), cls=JSONEncoder, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--stdout" in argv:
        sys.stdout.write(text)
        return 0
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
