"""Seconds and API calls per step of `dbsync cutover` (and its rollback) for a workspace of 2,000 jobs.

    python benchmarks/cutover.py                          # 2,000 jobs, writes 20 req/s, reads 100 req/s
    python benchmarks/cutover.py --read-rate-limit 20     # everything at 20 req/s (the pessimistic bound)
    python benchmarks/cutover.py --jobs 500 --rate-limit 30 --latency-ms 50

Two emulated workspaces; the source gets a realistic mix of jobs (45 % on an unpaused schedule, 15 %
on a paused one, 10 % file-arrival triggers, 5 % continuous, 25 % without a schedule), which a first
sync replicates without a rate limit (setup, not measured). Then the cutover runs every step, then the
rollback, with both emulators enforcing a request-rate limit. The figures come from dbsync's own
per-step records (seconds, requests per side) and the emulators' counters (requests answered 429).

The limits: Databricks documents about 20 requests/s per workspace for the Jobs API's write endpoints
(create, run-now; jobs/update is not listed separately) and 100/s for Permissions GET, the bulk of the
final sync's reads (one ACL read per replicated object: the API has no bulk read). The emulator has one
bucket per workspace for every endpoint, so the limit follows the step: `--read-rate-limit` (100) while
a step only reads (final sync of an unchanged workspace, validate, report), `--rate-limit` (20) while
the cutover writes (pause_source, unpause_target, rollback); `cutover.max_writes_per_second` (default
20) paces dbsync's writes to it, so they meet no 429. `--read-rate-limit 20` charges reads at the write
limit too: the pessimistic bound.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dbsync.config import Settings
from dbsync.context import open_context
from dbsync.cutover import STEPS, Runbook, open_cutover_context
from dbsync.engine import Engine
from dbsync_emulator import EmulatorHandle, start_emulator
from dbsync_emulator.apis.jobs import create_job

GOAL_SECONDS = 120.0
WRITING_STEPS = ("pause_source", "unpause_target")
MIX = (("schedule_on", 0.45), ("schedule_off", 0.15), ("file_arrival", 0.10), ("continuous", 0.05), ("none", 0.25))


def job_settings(i: int, kind: str) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "name": f"job-{i:05d}-{kind}",
        "tasks": [{"task_key": "main", "environment_key": "e", "notebook_task": {"notebook_path": f"/Shared/n{i}"}}],
        "environments": [{"environment_key": "e"}],
        "tags": {"team": f"t{i % 7}"},
    }
    cron = {"quartz_cron_expression": f"0 {i % 60} * * * ?", "timezone_id": "UTC"}
    if kind == "schedule_on":
        settings["schedule"] = {**cron, "pause_status": "UNPAUSED"}
    elif kind == "schedule_off":
        settings["schedule"] = {**cron, "pause_status": "PAUSED"}
    elif kind == "file_arrival":
        settings["trigger"] = {"file_arrival": {"url": f"s3://landing/{i}/"}, "pause_status": "UNPAUSED"}
    elif kind == "continuous":
        settings["continuous"] = {"pause_status": "UNPAUSED"}
    return settings


def seed(handle: EmulatorHandle, count: int) -> dict[str, int]:
    """Jobs straight into the emulator's state (fast); returns how many of each kind."""
    rng = random.Random(7)
    kinds, weights = zip(*MIX, strict=True)
    made: dict[str, int] = {}
    with handle.workspace.lock:
        for i in range(count):
            kind = rng.choices(kinds, weights)[0]
            create_job(handle.workspace, job_settings(i, kind))
            made[kind] = made.get(kind, 0) + 1
    return made


def settings_for(source: EmulatorHandle, target: EmulatorHandle, state: Path, concurrency: int) -> Settings:
    return Settings(
        source={"host": source.url, "token": source.token},
        target={"host": target.url, "token": target.token},
        state_path=state,
        concurrency=concurrency,
        retry_timeout_seconds=300,
        identities={"create_users": True},
    )


def throttled(handle: EmulatorHandle) -> int:
    """Requests the emulator answered 429 since its last stats reset."""
    document = handle.stats.document()
    return int(document.get("retry_after", {}).get("sent", 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rate-limit", type=float, default=20.0, help="requests/s per workspace while writing")
    parser.add_argument("--read-rate-limit", type=float, default=100.0, help="requests/s while a step only reads")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    source = start_emulator(cluster_start_seconds=0.1)
    target = start_emulator(cluster_start_seconds=0.1, token="dapi-benchmark-target-token")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return run(args, source, target, Path(tmp) / "state.db")
    finally:
        source.stop()
        target.stop()


def run(args: argparse.Namespace, source: EmulatorHandle, target: EmulatorHandle, state: Path) -> int:
    made = seed(source, args.jobs)
    settings = settings_for(source, target, state, args.concurrency)
    started = time.monotonic()
    ctx = open_context(settings)
    Engine(ctx).cycle()
    ctx.store.close()
    print(f"setup: {args.jobs} jobs {made}, first sync {time.monotonic() - started:.1f} s (no rate limit)")

    for handle in (source, target):
        if args.latency_ms:
            handle.set_faults(latency_ms=args.latency_ms)
        handle.stats.reset()
    print(
        f"limits per workspace: {args.rate_limit:g} req/s while writing, {args.read_rate_limit:g} req/s while a step "
        f"only reads; latency {args.latency_ms:g} ms"
    )

    def limit(event: str, name: str, detail: dict[str, Any]) -> None:
        if event == "step" and detail["state"] == "running":
            rate = args.rate_limit if name in WRITING_STEPS else args.read_rate_limit
            for handle in (source, target):
                handle.set_rate_limit(rate)

    ctx = open_cutover_context(settings)
    started = time.monotonic()
    document = Runbook(ctx, progress=limit).run()
    cutover_seconds = time.monotonic() - started
    print()
    print(f"{'step':<16}{'seconds':>9}{'source calls':>14}{'target calls':>14}")
    for step in document["steps"]:
        calls = step["api_calls"] or {}
        print(f"{step['step']:<16}{step['seconds']:>9.1f}{calls.get('source', 0):>14}{calls.get('target', 0):>14}")
    print(
        f"{'cutover':<16}{cutover_seconds:>9.1f}{source.stats.document()['total']:>14}"
        f"{target.stats.document()['total']:>14}   ({throttled(source)} + {throttled(target)} answered 429)"
    )
    for handle in (source, target):
        handle.stats.reset()
        handle.set_rate_limit(args.rate_limit)
    started = time.monotonic()
    result = Runbook(ctx).rollback()
    rollback_seconds = time.monotonic() - started
    print(
        f"{'rollback':<16}{rollback_seconds:>9.1f}{source.stats.document()['total']:>14}"
        f"{target.stats.document()['total']:>14}   ({result['target_repaused']} target jobs paused again, "
        f"{result['source_restored']} source jobs restored)"
    )
    ctx.store.close()
    verdict = "within" if cutover_seconds <= GOAL_SECONDS else "OVER"
    print(f"\ncutover of {args.jobs} jobs: {cutover_seconds:.1f} s, {verdict} the {GOAL_SECONDS:.0f} s goal")
    assert [s["state"] for s in document["steps"]] == ["done"] * len(STEPS)
    return 0 if cutover_seconds <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
