"""The fail-over commands: `cutover` (and its rollback) and `reverse`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dbsync.cli.common import EXIT_FAILED, EXIT_OK, confirm, settings_for, take_over_store
from dbsync.cli.output import cutover_progress
from dbsync.cutover import SOURCE_ROW, TARGET_ROW, Runbook, format_report, open_cutover_context, rollback_needs_source
from dbsync.errors import ConfigError
from dbsync.reverse import default_reverse_path, next_steps, seed_reverse_store
from dbsync.roles import StoreRole
from dbsync.store import Store
from dbsync.store.lock import StoreLock


def cmd_cutover(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    if args.rollback:
        return _cutover_rollback(args, settings)
    if args.dry_run:
        return _cutover_run(args, settings)
    lock = take_over_store(settings, "cutover")
    try:
        return _cutover_run(args, settings)
    finally:
        lock.release()


def _cutover_run(args: argparse.Namespace, settings: Any) -> int:
    ctx = open_cutover_context(settings, need_source=not args.skip_source, force=args.force)
    try:
        runbook = Runbook(
            ctx,
            skip_source=args.skip_source,
            cancel_active_runs=args.cancel_active_runs,
            force=args.force,
            progress=cutover_progress,
        )
        runbook.refuse_during_rollback()
        if runbook.next_step() is None:
            print("the cutover is complete; its report:\n", file=sys.stderr)
            document = runbook.saved_report()
        else:
            print("\n".join(runbook.plan(with_validation=args.dry_run)))
            if args.dry_run:
                print("dry run: nothing was changed")
                return EXIT_OK
            if not args.yes and not confirm("Cut over now?"):
                print("cancelled: nothing was changed", file=sys.stderr)
                return EXIT_FAILED
            document = runbook.run()
    finally:
        ctx.store.close()
    print(json.dumps(document, indent=2) if args.json else format_report(document))
    if not args.json:
        print("\nThe target is the primary now. To replicate it back into the old primary later: `dbsync reverse`.")
    return EXIT_OK


def _cutover_rollback(args: argparse.Namespace, settings: Any) -> int:
    if not settings.state_path.exists():
        raise ConfigError(f"no state store at {settings.state_path}: there is no cutover to roll back")
    store = Store(settings.state_path)
    try:
        rows, role = store.cutover_steps(), store.role
    finally:
        store.close()
    if not rows and role == StoreRole.STANDBY:
        print("nothing to roll back: the store is a standby")
        return EXIT_OK
    source_jobs = sum(1 for r in rows if r.startswith(SOURCE_ROW))
    target_jobs = sum(1 for r in rows if r.startswith(TARGET_ROW))
    print(
        f"rollback: re-pause up to {target_jobs} target job(s) the cutover unpaused, restore up to {source_jobs} "
        f"source job(s) to their prior state, store role {role} → standby"
    )
    if args.dry_run:
        print("dry run: nothing was changed")
        return EXIT_OK
    if not args.yes and not confirm("Roll back now?"):
        print("cancelled: nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    lock = take_over_store(settings, "cutover --rollback")
    try:
        # The source must answer to restore what the cutover stopped there (jobs, pipelines, schedules);
        # without that it is still written to (its marker back to primary) unless --skip-source says it is down.
        need_source = rollback_needs_source(rows) and not args.skip_source
        ctx = open_cutover_context(settings, need_source=need_source, force=True, rollback=True)
        try:
            result = Runbook(ctx, skip_source=args.skip_source, progress=cutover_progress).rollback()
        finally:
            ctx.store.close()
    finally:
        lock.release()
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    print(
        f"rolled back: {result['target_repaused']} target job(s) paused again, {result['source_restored']} source "
        "job(s) restored; the store is a standby again (restart `dbsync serve` to resume replication)"
    )
    for missing in result["missing"]:
        print(f"  ! {missing} no longer exists")
    return EXIT_OK


def cmd_reverse(args: argparse.Namespace) -> int:

    settings = settings_for(args, require_workspaces=False)
    if not settings.state_path.exists():
        raise ConfigError(f"no state store at {settings.state_path}: point --state-path at the store of the cutover")
    path = Path(args.reverse_state_path) if args.reverse_state_path else default_reverse_path(settings.state_path)
    lock = StoreLock(path, "reverse")  # the new store's writer, until seeded
    lock.acquire()
    forward = Store(settings.state_path)
    try:
        seed = seed_reverse_store(forward, path, force=args.force)
    finally:
        forward.close()
        lock.release()
    if seed.already:
        print(f"{path} is already seeded for {seed.source_workspace_id} → {seed.target_workspace_id}; nothing written")
    else:
        total = sum(seed.seeded.values())
        print(f"seeded {path}: {total} object(s) of the new primary mapped to their copies on the old primary")
        for kind, count in seed.seeded.items():
            skipped = seed.skipped.get(kind, 0)
            print(f"  {kind:<18}{count:>7}" + (f"   ({skipped} never reached the target, left out)" if skipped else ""))
        if seed.collisions:
            print(f"  ! {seed.collisions} object(s) shared a target key with another; the last one is kept")
    print("\n".join(next_steps(seed, settings.state_path)))
    return EXIT_OK
