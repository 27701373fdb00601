"""Scale: a 100,000-object source replicated by `dbsync sync --once`, then a no-change cycle and a 1 % change.

Two `dbsync emulator` processes (the source seeded with `--seed-objects N`: mostly notebooks, with
directories, files, jobs, clusters, pools, policies, identities, secrets and ACLs), and `dbsync` as a
subprocess, as a user runs it. For each run: wall time, API calls per side (from the emulators'
counters, so retries count) and the busiest endpoints, peak RSS of the dbsync process (wait4's
ru_maxrss; the emulators are other processes), and the store's size on disk.

    python benchmarks/scale.py [--objects 100000] [--concurrency 8] [--sample 0.01]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from databricks.sdk.service.workspace import ImportFormat, Language

sys.path.insert(0, str(Path(__file__).parent))
from harness import Emulator, Run, compare, dbsync_env, load, notebook_paths, run_dbsync

EXPORT = "GET /api/2.0/workspace/export"
IMPORT = "POST /api/2.0/workspace/import"
RSS_GOAL_MB = 200


def store_mb(state: Path) -> float:
    files = [state, state.with_name(state.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


def endpoints(stats: dict[str, Any]) -> Counter[str]:
    return Counter({k: int(v["count"]) for k, v in stats["endpoints"].items()})


def report(label: str, run: Run, src: dict[str, Any], dst: dict[str, Any], state: Path) -> dict[str, Any]:
    """Print one run's figures; returns them for the summary."""
    calls_src, calls_dst = endpoints(src), endpoints(dst)
    writes = sum(n for k, n in calls_dst.items() if not k.startswith("GET"))
    figures = {
        "seconds": run.seconds,
        "source calls": src["total"],
        "target calls": dst["total"],
        "target writes": writes,
        "exports": calls_src.get(EXPORT, 0),
        "imports": calls_dst.get(IMPORT, 0),
        "peak RSS MB": run.peak_rss_mb,
        "store MB": store_mb(state),
        "exit": run.returncode,
    }
    print(f"\n== {label} ({load()})")
    print(
        f"  {run.seconds:.1f} s, exit {run.returncode}; API calls: source {src['total']}, target {dst['total']} "
        f"({writes} writes); exports {figures['exports']}, imports {figures['imports']}; peak RSS "
        f"{run.peak_rss_mb:.0f} MB; store {figures['store MB']:.1f} MB"
    )
    busiest = (calls_src + Counter({f"{k} (target)": n for k, n in calls_dst.items()})).most_common(8)
    print("  busiest endpoints: " + ", ".join(f"{k} {n}" for k, n in busiest))
    if run.returncode:
        print("  " + run.stdout[-1500:].replace("\n", "\n  "))
    return figures


def change_notebooks(src: Emulator, fraction: float, seed: int) -> int:
    w = src.client()
    paths = notebook_paths(w)
    chosen = random.Random(seed).sample(paths, max(1, int(len(paths) * fraction)))
    for path in chosen:
        w.workspace.import_(
            path,
            content=base64.b64encode(f"print('changed {time.time()}')".encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
    return len(chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sample", type=float, default=0.01, help="fraction of bodies and ACLs compared at the end")
    args = parser.parse_args()
    print(
        f"dbsync scale: {args.objects} seeded objects, concurrency {args.concurrency}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {load()}"
    )
    started = time.monotonic()
    src = Emulator("src-token", seed_objects=args.objects)
    seeded = time.monotonic() - started
    dst = Emulator("dst-token")
    print(f"seeding {args.objects} objects: {seeded:.1f} s (emulator start included)")
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "scale.db"
            env = dbsync_env(src, dst, state, DBSYNC_CONCURRENCY=str(args.concurrency))

            def cycle(label: str) -> dict[str, Any]:
                src.reset_stats()
                dst.reset_stats()
                run = run_dbsync("sync", "--once", env=env)
                return report(label, run, src.stats(), dst.stats(), state)

            results["initial"] = cycle("initial sync")
            results["no-change"] = cycle("no-change cycle")
            changed = change_notebooks(src, 0.01, 7)
            results["1 % change"] = cycle(f"after changing {changed} notebooks (1 %)")
            checked = compare(src.client(), dst.client(), content_sample=args.sample, acl_sample=args.sample)
            print(f"\n== comparison (bodies and ACLs sampled at {args.sample:.0%}): {checked.summary()}")
    finally:
        src.stop()
        dst.stop()
    initial, quiet = results["initial"], results["no-change"]
    peak = max(r["peak RSS MB"] for r in results.values())
    print("\n== summary")
    print(
        f"initial sync: {initial['seconds']:.0f} s ({1000 * initial['seconds'] / args.objects:.2f} s per 1,000 "
        f"objects), {initial['source calls'] + initial['target calls']} API calls"
    )
    print(
        f"no-change cycle: {quiet['seconds']:.0f} s, {quiet['source calls'] + quiet['target calls']} API calls, "
        f"{quiet['exports']} exports, {quiet['target writes']} target writes"
    )
    change = results["1 % change"]
    print(f"1 % change: {change['seconds']:.0f} s, {change['exports']} exports, {change['imports']} imports")
    print(
        f"peak RSS {peak:.0f} MB (goal <= {RSS_GOAL_MB} MB: {'met' if peak <= RSS_GOAL_MB else 'NOT met'}), "
        f"store {max(r['store MB'] for r in results.values()):.1f} MB; {load()}"
    )
    return 0 if all(r["exit"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
