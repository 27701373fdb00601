"""Sync benchmark: initial sync, a no-change cycle, and a 1 % notebook change, with API calls per kind.

Two `dbsync emulator` processes (so the client does not share their interpreter), the engine in this
process. Prints seconds, API calls per kind group on each side, notebook exports/imports, peak RSS.

    python benchmarks/sync.py [--objects 2000] [--concurrency 8] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency the emulators add per request")
    args = parser.parse_args()
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
