"""Rate-limit bound: with the emulators' request-rate limit on, how close does dbsync get to the budget?

A workspace's API budget, not CPU, bounds a replicator in production. Both emulators enforce a token
bucket (`--rate-limit R`: R requests per second, a burst of one second's worth; a request over it gets
429 with Retry-After: 1). The requests a run *needs* come from the same run without the limit (a fresh
target, the same source); the bound is needed ÷ R on the busier side (each workspace has its own
budget). dbsync is within its goal when its wall time under the limit is at most 1.2 x that bound: it
spends the budget on useful calls and backs off (the SDK sleeps Retry-After + up to 1 s per refused
request, per thread) without leaving the budget idle for long.

    python benchmarks/rate_limit.py [--objects 2000] [--rate 100] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from harness import Emulator, Run, dbsync_env, load, run_dbsync, statuses

GOAL = 1.2


def side(stats: dict[str, Any]) -> dict[str, int]:
    refused = statuses(stats).get("429", 0)
    return {"total": stats["total"], "refused": refused, "useful": stats["total"] - refused}


def run(src: Emulator, dst: Emulator, env: dict[str, str], label: str) -> tuple[Run, dict[str, int], dict[str, int]]:
    src.reset_stats()
    dst.reset_stats()
    result = run_dbsync("sync", "--once", env=env)
    s, d = side(src.stats()), side(dst.stats())
    print(
        f"  {label:<34}{result.seconds:>8.1f} s  exit {result.returncode}  source {s['useful']:>6} useful + "
        f"{s['refused']:>5} x 429   target {d['useful']:>6} useful + {d['refused']:>5} x 429   {load()}",
        flush=True,
    )
    return result, s, d


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second each emulator allows")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(
        f"rate-limit bound: {args.objects} objects, {args.rate:.0f} req/s per workspace, concurrency "
        f"{args.concurrency}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, {load()}"
    )
    src = Emulator("src-token", seed_objects=args.objects)
    free, limited = Emulator("free-target"), Emulator("limited-target")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            extra = {"DBSYNC_CONCURRENCY": str(args.concurrency)}
            free_env = dbsync_env(src, free, Path(tmp) / "free.db", **extra)
            limited_env = dbsync_env(src, limited, Path(tmp) / "limited.db", **extra)
            # Start-up (imports, connecting, opening the store) spends no budget: measured on a run that lists one kind.
            startup = run_dbsync("sync", "--once", "--kinds", "instance_profiles", env=free_env).seconds
            print(f"  start-up (a run of one empty kind): {startup:.1f} s")
            for phase in ("initial sync", "no-change cycle"):
                src.faults(rate_limit=None)
                _, need_src, need_dst = run(src, free, free_env, f"{phase}, no limit")
                src.faults(rate_limit=args.rate)
                limited.faults(rate_limit=args.rate)
                result, got_src, got_dst = run(src, limited, limited_env, f"{phase}, {args.rate:.0f} req/s")
                ledger = [e.stats().get("retry_after", {}) for e in (src, limited)]
                needed = max(need_src["useful"], need_dst["useful"])
                bound = needed / args.rate
                rows.append((phase, needed, bound, result.seconds, got_src, got_dst, ledger))
    finally:
        for emulator in (src, free, limited):
            emulator.stop()
    print(f"\n== bound (requests needed on the busier side / rate) vs time under the limit (start-up {startup:.1f} s)")
    worst = 0.0
    for phase, needed, bound, seconds, got_src, got_dst, ledger in rows:
        ratio = seconds / bound
        worst = max(worst, ratio)
        working = (seconds - startup) / bound
        useful_rate = max(got_src["useful"], got_dst["useful"]) / seconds
        early = sum(entry.get("early", 0) for entry in ledger)
        print(
            f"  {phase:<16} needed {needed:>6}  bound {bound:6.1f} s  took {seconds:6.1f} s  = {ratio:4.2f}x the bound "
            f"({'met' if ratio <= GOAL else 'NOT met'}: goal {GOAL}x; {working:4.2f}x without start-up); "
            f"{useful_rate:.0f} useful req/s on the busier "
            f"side; 429s: {got_src['refused'] + got_dst['refused']}, retried before Retry-After: {early}"
        )
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
