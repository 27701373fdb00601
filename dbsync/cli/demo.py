"""`dbsync demo`: the whole story on one machine with no setup.

Two emulated workspaces start in-process on loopback ports; the source is seeded; dbsync syncs,
a few objects change on the source, dbsync syncs again (only those are written), and the
validation report shows both sides per kind. The emulator comes in as a module (`dbsync.cli.emulated`
loads it): the product never imports it by name.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from databricks.sdk.service.compute import Library, PythonPyPiLibrary
from databricks.sdk.service.sql import UpdateQueryRequestQuery
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync import logs
from dbsync.cli.output import summary_table
from dbsync.config import Settings, WorkspaceSettings
from dbsync.context import SyncContext, open_context
from dbsync.engine import Engine
from dbsync.report import format_text, validate

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

SEED_OBJECTS = 400


def _say(text: str = "") -> None:
    print(text, flush=True)


def _change_source(ctx: SyncContext) -> list[str]:
    """A few edits a team would make in an afternoon, made through the real SDK."""
    w = ctx.source.client
    done = []
    notebooks = [
        o for o in w.workspace.list("/Shared", recursive=True) if o.object_type and o.object_type.value == "NOTEBOOK"
    ]
    edited = notebooks[0]
    w.workspace.upload(
        edited.path or "",
        io.BytesIO(b"print('edited in the demo')\n"),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )
    done.append(f"edited notebook {edited.path}")
    w.workspace.mkdirs("/Shared/demo")
    w.workspace.upload("/Shared/demo/new_report.py", io.BytesIO(b"display(spark.range(10))\n"), overwrite=True)
    done.append("created notebook /Shared/demo/new_report.py")
    job = next(iter(w.jobs.list(limit=1)))
    settings = job.settings
    if settings is not None:
        settings.name = f"{settings.name}-renamed"
        w.jobs.reset(job.job_id or 0, settings)
        done.append(f"renamed job {job.job_id} to {settings.name}")
    files = [o for o in w.workspace.list("/Shared", recursive=True) if o.object_type and o.object_type.value == "FILE"]
    if files:
        w.workspace.delete(files[0].path or "")
        done.append(f"deleted file {files[0].path}")
    query = next(iter(w.queries.list()), None)
    if query is not None:
        new_text = UpdateQueryRequestQuery(query_text=f"{query.query_text} LIMIT 100")
        w.queries.update(query.id or "", "query_text", query=new_text)
        done.append(f"edited SQL query {query.display_name!r}")
    experiment = next(iter(w.experiments.list_experiments()), None)
    if experiment is not None:
        w.experiments.set_experiment_tag(experiment.experiment_id or "", "stage", "production")
        done.append(f"tagged MLflow experiment {experiment.name}")
    cluster = next(c for c in w.clusters.list() if c.cluster_name == "shared-analytics")
    w.libraries.install(cluster.cluster_id or "", [Library(pypi=PythonPyPiLibrary(package="holidays==0.40"))])
    done.append(f"installed pypi holidays==0.40 on cluster {cluster.cluster_name}")
    warehouse_id = ctx.settings.metastore.source_warehouse_id
    tables = _sql(w, warehouse_id, "SHOW TABLES IN hive_metastore.data_eng") if warehouse_id else []
    if warehouse_id and tables:
        _sql(w, warehouse_id, f"GRANT SELECT ON TABLE hive_metastore.data_eng.{tables[0][1]} TO `users`")
        done.append(f"granted SELECT on table data_eng.{tables[0][1]} to users")
    return done


def _sql(w: WorkspaceClient, warehouse_id: str, statement: str) -> list[list[str | None]]:
    response = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse_id)
    return (response.result.data_array or []) if response.result else []


def _running_cluster(emulator: ModuleType, handle: Any) -> str:
    """A cluster someone is working on: dbsync reads the source's DBFS mounts through it."""
    with handle.workspace.lock:
        spec = {"cluster_name": "shared-analytics", "spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"}
        return emulator.create_cluster(handle.workspace, {**spec, "num_workers": 2}, state="RUNNING")


def _warehouse(emulator: ModuleType, handle: Any) -> str:
    """A SQL warehouse on an emulated workspace, as an admin would create one for dbsync."""
    with handle.workspace.lock:
        return emulator.create_warehouse(handle.workspace, {"name": "dbsync", "cluster_size": "2X-Small"})


def run_demo(emulator: ModuleType, seed_objects: int = SEED_OBJECTS) -> int:
    """The demo's story on two in-process emulators (`emulator` is the `dbsync_emulator` module); its exit code."""
    logs.setup("ERROR")
    _say("dbsync demo: two emulated Databricks workspaces on this machine, no configuration needed.\n")
    source = emulator.start_emulator(seed_objects=seed_objects, seed=42, cluster_start_seconds=0.5)
    target = emulator.start_emulator(cluster_start_seconds=0.5)
    analytics_cluster = _running_cluster(emulator, source)
    _say(f"  source workspace  {source.url}  (seeded with ~{seed_objects} objects)")
    _say(f"  target workspace  {target.url}  (empty standby)\n")
    with tempfile.TemporaryDirectory(prefix="dbsync-demo-") as tmp:
        settings = Settings(
            source=WorkspaceSettings(host=source.url, token=source.token),
            target=WorkspaceSettings(host=target.url, token=target.token),
            state_path=Path(tmp) / "dbsync.db",
            # The demo target has no identity provider behind it, so dbsync creates the users too.
            identities={"create_users": True},
            # A SQL warehouse on each side turns on the metastore kinds (schemas, tables, views, table ACLs).
            metastore={
                "source_warehouse_id": _warehouse(emulator, source),
                "target_warehouse_id": _warehouse(emulator, target),
            },
            # A real workspace refuses secrets/get over REST: values are read on a running source cluster.
            secrets={"values_from": "cluster", "cluster_id": analytics_cluster},
        )
        ctx = open_context(settings)
        try:
            return _story(ctx, source, target)
        finally:
            ctx.store.close()
            source.stop()
            target.stop()


def _story(ctx: SyncContext, source: object, target: object) -> int:
    _say("1. Initial sync: everything is new on the target.")
    started = time.monotonic()
    first = Engine(ctx).cycle()
    _say(summary_table(first))
    _say(
        f"   {time.monotonic() - started:.1f} s, {ctx.source.total_calls()} source and "
        f"{ctx.target.total_calls()} target API calls\n"
    )

    _say("2. Changes on the source:")
    for line in _change_source(ctx):
        _say(f"   - {line}")
    ctx.source.reset_calls()
    ctx.target.reset_calls()
    _say("\n3. Second sync: only what changed is exported and written.")
    second = Engine(ctx).cycle()
    _say(summary_table(second))
    exports = ctx.source.calls_by_endpoint().get("GET /api/2.0/workspace/export", 0)
    _say(f"   notebook/file exports: {exports}; writes to the target: {ctx.target.write_calls()}\n")

    _say("4. Validation report (live source vs live target):")
    report = validate(ctx)
    _say(format_text(report))
    _say(
        "\nNext: point dbsync at real workspaces with DBSYNC_SOURCE__HOST / DBSYNC_SOURCE__TOKEN / "
        "DBSYNC_TARGET__HOST / DBSYNC_TARGET__TOKEN and run `dbsync sync --once` (see README.md)."
    )
    failed = any(r.errors for r in first + second) or not report.ready_for_cutover
    return 1 if failed else 0
