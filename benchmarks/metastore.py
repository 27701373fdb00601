"""Metastore benchmark: schemas, tables, views and table ACLs through the SQL warehouses.

The source holds `--relations` tables and views (a fifth are views, each reading two tables of its
schema; some read another view) in `--schemas` schemas, and about `--grants` grants on them. Both
workspaces are `dbsync emulator` processes started from a prepared state file (so the client does not
share their interpreter); the engine runs here. Prints, for the initial sync and for a no-change cycle,
the seconds and the SQL statements per side and verb (from dbsync's own count), and the HTTP requests.

    python benchmarks/metastore.py [--relations 1000] [--grants 5000] [--schemas 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbsync import sql
from dbsync.config import Settings
from dbsync.context import SyncContext, open_context
from dbsync.engine import Engine
from dbsync_emulator import apis, sqlengine
from dbsync_emulator.apis import scim
from dbsync_emulator.apis.sql import create_warehouse
from dbsync_emulator.state import Workspace

KINDS = ["schemas", "tables", "views", "table_acls"]
GROUPS = [f"team-{i:02d}" for i in range(20)]
# The grants of one relation, in the order they are handed out: (verb, privilege).
GRANT_PATTERN = [("GRANT", "SELECT"), ("GRANT", "MODIFY"), ("GRANT", "READ_METADATA"), ("DENY", "SELECT")]


def prepared_state(path: Path, relations: int, grants: int, schemas: int, source: bool) -> tuple[str, int]:
    """An emulator state file: groups, a warehouse and (source) the metastore; returns (warehouse id, grants)."""
    ws = Workspace(cluster_start_seconds=0.1)
    apis.install(ws)
    for group in GROUPS:
        scim.create_group(ws, group)
    warehouse_id = create_warehouse(ws, {"name": "dbsync", "cluster_size": "2X-Small"})
    granted = _seed_metastore(ws, relations, grants, schemas) if source else 0
    ws.save(path)
    return warehouse_id, granted


def _seed_metastore(ws: Workspace, relations: int, grants: int, schemas: int) -> int:
    per_schema = max(1, relations // schemas)
    names: list[str] = []
    for s in range(schemas):
        schema = f"sales_{s:02d}"
        sqlengine.execute_sql(ws, f"CREATE SCHEMA {schema} COMMENT 'schema {s}'")
        views = per_schema // 5
        tables = per_schema - views
        for t in range(tables):
            location = f" LOCATION 's3://lake/{schema}/t{t}'" if t % 4 == 0 else ""
            sqlengine.execute_sql(
                ws,
                f"CREATE TABLE {schema}.t{t:03d} (id BIGINT, amount DECIMAL(12,2), day DATE, note STRING) "
                f"USING DELTA PARTITIONED BY (day){location}",
            )
            names.append(f"TABLE {schema}.t{t:03d}")
        for v in range(views):
            reads = f"{schema}.v{v - 1:03d}" if v % 5 == 4 else f"{schema}.t{(2 * v + 1) % tables:03d}"
            sqlengine.execute_sql(
                ws,
                f"CREATE VIEW {schema}.v{v:03d} AS SELECT a.id, a.amount FROM {schema}.t{v % tables:03d} a "
                f"JOIN {reads} b ON a.id = b.id",
            )
            names.append(f"VIEW {schema}.v{v:03d}")
        sqlengine.execute_sql(ws, f"GRANT USAGE ON SCHEMA {schema} TO `{GROUPS[s % len(GROUPS)]}`")
    granted = schemas
    i = 0
    while granted < grants:
        name = names[i % len(names)]
        verb, privilege = GRANT_PATTERN[(i // len(names)) % len(GRANT_PATTERN)]
        group = GROUPS[(i * 7 + i // len(names)) % len(GROUPS)]
        if not (verb == "GRANT" and privilege == "MODIFY" and name.startswith("VIEW")):
            sqlengine.execute_sql(ws, f"{verb} {privilege} ON {name} TO `{group}`")
            granted += 1
        i += 1
    return granted


def start_emulator(port: int, token: str, state: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbsync.cli", "emulator", "--port", str(port), "--token", token,
         "--state", str(state), "--cluster-start-seconds", "0.1"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline() if proc.stdout else ""
    if "serving" not in line:
        raise SystemExit(f"emulator did not start: {line}")
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cycle(ctx: SyncContext, label: str) -> dict[str, float]:
    """One cycle of the metastore kinds; prints per-kind outcomes, statements per side and verb, HTTP calls."""
    sql.reset_statement_counts()
    ctx.source.reset_calls()
    ctx.target.reset_calls()
    started = time.monotonic()
    reports = Engine(ctx).cycle(KINDS)
    seconds = time.monotonic() - started
    print(f"\n== {label}: {seconds:.2f} s")
    for r in reports:
        print(f"  {r.kind:<11} listed {r.listed:>5}  created {r.created:>5}  updated {r.updated:>4}  "
              f"errors {r.errors}  blocked {r.blocked}  ({r.seconds:.2f} s)")  # fmt: skip
    totals: dict[str, float] = {"seconds": seconds}
    for side, ws in (("source", ctx.source), ("target", ctx.target)):
        counts = sql.statement_counts(side)
        total = sum(counts.values())
        totals[side] = total
        detail = ", ".join(f"{verb} {n}" for verb, n in sorted(counts.items(), key=lambda item: -item[1]))
        print(f"  {side} statements: {total}  ({detail or 'none'});  HTTP requests {ws.total_calls()}")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--relations", type=int, default=1000, help="tables and views on the source")
    parser.add_argument("--grants", type=int, default=5000, help="grants on the source's securables")
    parser.add_argument("--schemas", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        src_warehouse, granted = prepared_state(Path(tmp) / "src.json", args.relations, args.grants, args.schemas, True)
        dst_warehouse, _ = prepared_state(Path(tmp) / "dst.json", 0, 0, 0, False)
        print(f"dbsync metastore benchmark: {args.relations} tables and views in {args.schemas} schemas, "
              f"{granted} grants, concurrency {args.concurrency}, {os.cpu_count()} CPUs, "
              f"{time.strftime('%Y-%m-%d')} (source prepared in {time.monotonic() - started:.1f} s)")  # fmt: skip
        src_port, dst_port = free_port(), free_port()
        procs = [
            start_emulator(src_port, "src-token", Path(tmp) / "src.json"),
            start_emulator(dst_port, "dst-token", Path(tmp) / "dst.json"),
        ]
        try:
            settings = Settings(
                source={"host": f"http://127.0.0.1:{src_port}", "token": "src-token"},
                target={"host": f"http://127.0.0.1:{dst_port}", "token": "dst-token"},
                state_path=Path(tmp) / "bench.db",
                concurrency=args.concurrency,
                metastore={"source_warehouse_id": src_warehouse, "target_warehouse_id": dst_warehouse},
            )
            ctx = open_context(settings)
            initial = cycle(ctx, "initial sync")
            quiet = cycle(ctx, "no-change cycle")
            print("\n== summary")
            print(f"initial sync: {initial['seconds']:.1f} s, {initial['source']:.0f} source + "
                  f"{initial['target']:.0f} target statements")  # fmt: skip
            print(f"no-change cycle: {quiet['seconds']:.1f} s, {quiet['source']:.0f} source statements "
                  f"(SHOW / DESCRIBE SCHEMA only), {quiet['target']:.0f} target statements")  # fmt: skip
            ctx.store.close()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
