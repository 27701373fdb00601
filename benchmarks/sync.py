"""Sync benchmark: initial sync, a no-change cycle, and a 1 % notebook change, with API calls per kind.

Two `dbsync emulator` processes (so the client does not share their interpreter), the engine in this
process. Prints seconds, API calls per kind group on each side, notebook exports/imports, peak RSS.

    python benchmarks/sync.py [--objects 2000] [--concurrency 8] [--latency-ms 0]

`--second-wave` instead seeds SQL queries (and alerts), Lakeview dashboards, MLflow experiments and
registered models through the SDK and prints, per kind, the API calls of a no-change cycle by endpoint
(the goal: listing calls only):

    python benchmarks/sync.py --second-wave [--queries 200] [--dashboards 50] [--experiments 100]

`--third-wave` does the same for pipelines, notification destinations and serving endpoints (the
listings carry no version for the first two: one GET per object is the cost of a no-change cycle):

    python benchmarks/sync.py --third-wave [--pipelines 50] [--destinations 20] [--endpoints 20]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import ml, serving, settings, sql
from databricks.sdk.service import pipelines as dlt
from databricks.sdk.service.dashboards import CronSchedule, Dashboard, Schedule
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.config import Settings
from dbsync.context import SyncContext, open_context
from dbsync.engine import Engine
from dbsync.scheduler import kind_groups

EXPORT = "GET /api/2.0/workspace/export"
IMPORT = "POST /api/2.0/workspace/import"


def start_emulator(port: int, token: str, objects: int, latency_ms: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dbsync.cli",
            "emulator",
            "--port",
            str(port),
            "--token",
            token,
            "--seed-objects",
            str(objects),
            "--seed",
            "11",
            "--latency-ms",
            str(latency_ms),
            "--cluster-start-seconds",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if "serving" not in line:
        raise SystemExit(f"emulator did not start: {line}")
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_groups(ctx: SyncContext, label: str) -> dict[str, float]:
    """One cycle, group by group (as the daemon runs them); prints calls per group and side."""
    print(f"\n== {label}")
    print(f"{'kinds':<42}{'seconds':>9}{'src calls':>11}{'tgt calls':>11}{'tgt writes':>11}{'changes':>9}")
    totals = {"seconds": 0.0, "source": 0, "target": 0, "writes": 0, "exports": 0, "imports": 0}
    for group in kind_groups(ctx.settings):
        ctx.source.reset_calls()
        ctx.target.reset_calls()
        started = time.monotonic()
        reports = Engine(ctx).cycle(list(group))
        seconds = time.monotonic() - started
        src, tgt, writes = ctx.source.total_calls(), ctx.target.total_calls(), ctx.target.write_calls()
        changes = sum(r.created + r.updated + r.deleted for r in reports)
        errors = sum(r.errors + r.blocked for r in reports)
        note = f"  ({errors} errors/blocked)" if errors else ""
        print(f"{'+'.join(group):<42}{seconds:>9.2f}{src:>11}{tgt:>11}{writes:>11}{changes:>9}{note}")
        totals["seconds"] += seconds
        totals["source"] += src
        totals["target"] += tgt
        totals["writes"] += writes
        totals["exports"] += ctx.source.calls_by_endpoint().get(EXPORT, 0)
        totals["imports"] += ctx.target.calls_by_endpoint().get(IMPORT, 0)
    print(f"{'total':<42}{totals['seconds']:>9.2f}{totals['source']:>11}{totals['target']:>11}{totals['writes']:>11}")
    print(f"notebook/file exports: {totals['exports']}, imports: {totals['imports']}, peak RSS {peak_rss_mb():.0f} MB")
    return totals


def change_notebooks(ctx: SyncContext, fraction: float) -> int:
    notebooks = [
        o
        for o in ctx.source.client.workspace.list("/", recursive=True)
        if o.object_type and o.object_type.value == "NOTEBOOK"
    ]
    chosen = notebooks[:: max(1, int(1 / fraction))][: max(1, int(len(notebooks) * fraction))]
    for o in chosen:
        ctx.source.client.workspace.import_(
            o.path or "",
            content=base64.b64encode(f"print('changed {time.time()}')".encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
    return len(chosen)


SECOND_WAVE_KINDS = (
    "sql_warehouses",
    "sql_queries",
    "sql_alerts",
    "dashboards",
    "dashboard_schedules",
    "mlflow_experiments",
    "registered_models",
    "workspace_conf",
    "ip_access_lists",
)


def seed_second_wave(w: WorkspaceClient, queries: int, dashboards: int, experiments: int) -> None:
    """Queries (one alert per 10), dashboards (a schedule each), experiments, a model per 10 experiments."""
    warehouse = w.warehouses.create(name="bench", cluster_size="2X-Small", auto_stop_mins=10).response.id
    w.workspace.mkdirs("/Shared/bench")
    condition = sql.AlertCondition(
        op=sql.AlertOperator.GREATER_THAN,
        operand=sql.AlertConditionOperand(column=sql.AlertOperandColumn(name="n")),
        threshold=sql.AlertConditionThreshold(value=sql.AlertOperandValue(double_value=1)),
    )
    for i in range(queries):
        spec = sql.CreateQueryRequestQuery(
            display_name=f"query {i}", query_text=f"SELECT {i}", warehouse_id=warehouse, parent_path="/Shared/bench"
        )
        query_id = w.queries.create(query=spec).id or ""
        if i % 10 == 0:
            alert = sql.CreateAlertRequestAlert(display_name=f"alert {i}", query_id=query_id, condition=condition)
            w.alerts.create(alert=alert)
    layout = json.dumps({"pages": [{"name": "p", "displayName": "Overview"}]})
    for i in range(dashboards):
        created = w.lakeview.create(
            Dashboard(
                display_name=f"dashboard {i}",
                parent_path="/Shared/bench",
                warehouse_id=warehouse,
                serialized_dashboard=layout,
            )
        )
        cron = CronSchedule(quartz_cron_expression=f"0 0 {i % 24} * * ?", timezone_id="UTC")
        w.lakeview.create_schedule(created.dashboard_id or "", Schedule(cron_schedule=cron, display_name="daily"))
    for i in range(experiments):
        w.experiments.create_experiment(f"/Shared/bench/experiment {i}", tags=[ml.ExperimentTag("i", str(i))])
        if i % 10 == 0:
            w.model_registry.create_model(f"model-{i}")
            w.model_registry.create_model_version(f"model-{i}", f"dbfs:/models/{i}")


THIRD_WAVE_KINDS = ("notification_destinations", "registered_models", "pipelines", "serving_endpoints")
WEBHOOK_VARIABLE = "DBSYNC_SECRET__NOTIFICATION_DESTINATIONS__HOOK_{}_URL"


def seed_third_wave(w: WorkspaceClient, pipelines: int, destinations: int, endpoints: int) -> None:
    """Pipelines (every fifth continuous), webhook destinations (URLs given as env values), endpoints."""
    for i in range(pipelines):
        library = dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path=f"/Shared/dlt/{i}"))
        w.pipelines.create(name=f"pipeline {i}", continuous=i % 5 == 0, libraries=[library], target=f"s{i}")
    for i in range(destinations):
        url = f"https://hooks.example.com/{i}"
        os.environ[WEBHOOK_VARIABLE.format(i)] = url  # the values source of this benchmark (values_from: env)
        config = settings.Config(generic_webhook=settings.GenericWebhookConfig(url=url))
        w.notification_destinations.create(display_name=f"hook {i}", config=config)
    w.model_registry.create_model("bench-model")
    w.model_registry.create_model_version("bench-model", "dbfs:/models/bench")
    for i in range(endpoints):
        entity = serving.ServedEntityInput(entity_name="bench-model", entity_version="1", workload_size="Small")
        config = serving.EndpointCoreConfigInput(name=f"endpoint-{i}", served_entities=[entity])
        w.serving_endpoints.create(name=f"endpoint-{i}", config=config)


def third_wave(args: argparse.Namespace, src_port: int, tgt_port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings_ = Settings(
            source={"host": f"http://127.0.0.1:{src_port}", "token": "src-token"},
            target={"host": f"http://127.0.0.1:{tgt_port}", "token": "tgt-token"},
            state_path=Path(tmp) / "bench.db",
            concurrency=args.concurrency,
            secrets={"values_from": "env"},
        )
        ctx = open_context(settings_)
        seed_third_wave(ctx.source.client, args.pipelines, args.destinations, args.endpoints)
        print(
            f"dbsync third-wave benchmark: {args.pipelines} pipelines, {args.destinations} notification "
            f"destinations, {args.endpoints} serving endpoints, concurrency {args.concurrency}, "
            f"{time.strftime('%Y-%m-%d')}"
        )
        started = time.monotonic()
        reports = Engine(ctx).cycle(list(THIRD_WAVE_KINDS))
        created = sum(r.created for r in reports)
        problems = sum(r.errors + r.blocked for r in reports)
        print(f"initial sync: {created} objects created in {time.monotonic() - started:.1f} s ({problems} problems)")
        Engine(ctx).cycle(list(THIRD_WAVE_KINDS))  # endpoints deployed meanwhile: their listing changed once
        no_change_table(ctx, THIRD_WAVE_KINDS)
        ctx.store.close()


def no_change_table(ctx: SyncContext, kinds: tuple[str, ...]) -> None:
    """One no-change cycle per kind: seconds, source and target calls by endpoint, target writes."""
    print("\n== no-change cycle, per kind (source and target calls by endpoint)")
    print(f"{'kind':<26}{'seconds':>8}{'src':>6}{'tgt':>6}{'writes':>7}  endpoints")
    for kind in kinds:
        ctx.source.reset_calls()
        ctx.target.reset_calls()
        started = time.monotonic()
        Engine(ctx).cycle([kind])
        seconds = time.monotonic() - started
        endpoints = ", ".join(
            f"{side[0]}:{endpoint} x{n}"
            for side, ws in (("source", ctx.source), ("target", ctx.target))
            for endpoint, n in sorted(ws.calls_by_endpoint().items())
            if "well-known" not in endpoint
        )
        src, tgt = ctx.source.total_calls("/api"), ctx.target.total_calls("/api")
        print(f"{kind:<26}{seconds:>8.2f}{src:>6}{tgt:>6}{ctx.target.write_calls():>7}  {endpoints}")


def second_wave(args: argparse.Namespace, src_port: int, tgt_port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            source={"host": f"http://127.0.0.1:{src_port}", "token": "src-token"},
            target={"host": f"http://127.0.0.1:{tgt_port}", "token": "tgt-token"},
            state_path=Path(tmp) / "bench.db",
            concurrency=args.concurrency,
        )
        ctx = open_context(settings)
        seed_second_wave(ctx.source.client, args.queries, args.dashboards, args.experiments)
        print(
            f"dbsync second-wave benchmark: {args.queries} queries, {args.dashboards} dashboards, "
            f"{args.experiments} experiments, concurrency {args.concurrency}, {time.strftime('%Y-%m-%d')}"
        )
        started = time.monotonic()
        reports = Engine(ctx).cycle(list(SECOND_WAVE_KINDS))
        created = sum(r.created for r in reports)
        problems = sum(r.errors + r.blocked for r in reports)
        print(f"initial sync: {created} objects created in {time.monotonic() - started:.1f} s ({problems} problems)")
        print("\n== no-change cycle, per kind (source and target calls by endpoint)")
        print(f"{'kind':<20}{'seconds':>8}{'src':>6}{'tgt':>6}{'writes':>7}  endpoints")
        for kind in SECOND_WAVE_KINDS:
            ctx.source.reset_calls()
            ctx.target.reset_calls()
            started = time.monotonic()
            Engine(ctx).cycle([kind])
            seconds = time.monotonic() - started
            endpoints = ", ".join(
                f"{side[0]}:{endpoint} x{n}"
                for side, ws in (("source", ctx.source), ("target", ctx.target))
                for endpoint, n in sorted(ws.calls_by_endpoint().items())
                if "well-known" not in endpoint
            )
            src, tgt = ctx.source.total_calls("/api"), ctx.target.total_calls("/api")
            print(f"{kind:<20}{seconds:>8.2f}{src:>6}{tgt:>6}{ctx.target.write_calls():>7}  {endpoints}")
        ctx.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency the emulators add per request")
    parser.add_argument("--second-wave", action="store_true", help="SQL objects, dashboards and MLflow instead")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dashboards", type=int, default=50)
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--third-wave", action="store_true", help="pipelines, destinations, serving endpoints")
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--destinations", type=int, default=20)
    parser.add_argument("--endpoints", type=int, default=20)
    args = parser.parse_args()
    if args.second_wave or args.third_wave:
        src_port, tgt_port = free_port(), free_port()
        procs = [
            start_emulator(src_port, "src-token", 0, args.latency_ms),
            start_emulator(tgt_port, "tgt-token", 0, args.latency_ms),
        ]
        try:
            (third_wave if args.third_wave else second_wave)(args, src_port, tgt_port)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)
        return
    src_port, tgt_port = free_port(), free_port()
    procs = [
        start_emulator(src_port, "src-token", args.objects, args.latency_ms),
        start_emulator(tgt_port, "tgt-token", 0, args.latency_ms),
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                source={"host": f"http://127.0.0.1:{src_port}", "token": "src-token"},
                target={"host": f"http://127.0.0.1:{tgt_port}", "token": "tgt-token"},
                state_path=Path(tmp) / "bench.db",
                concurrency=args.concurrency,
                identities={"create_users": True},
            )
            ctx = open_context(settings)
            print(
                f"dbsync sync benchmark: ~{args.objects} seeded objects, concurrency {args.concurrency}, "
                f"latency {args.latency_ms} ms, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}"
            )
            initial = run_groups(ctx, "initial sync")
            quiet = run_groups(ctx, "no-change cycle")
            changed = change_notebooks(ctx, 0.01)
            after = run_groups(ctx, f"after changing {changed} notebooks (1 %)")
            store_mb = settings.state_path.stat().st_size / 1e6
            print("\n== summary")
            print(
                f"initial sync: {initial['seconds']:.1f} s, {initial['source'] + initial['target']} API calls, "
                f"{1000 * initial['seconds'] / max(1, args.objects):.2f} s per 1,000 objects"
            )
            print(
                f"no-change cycle: {quiet['seconds']:.2f} s, {quiet['source'] + quiet['target']} API calls, "
                f"{quiet['exports']} exports, {quiet['writes']} target writes"
            )
            print(f"1 % change: {changed} notebooks changed → {after['exports']} exports, {after['imports']} imports")
            print(f"peak RSS {peak_rss_mb():.0f} MB, store {store_mb:.1f} MB")
            ctx.store.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
