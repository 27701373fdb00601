"""The point-in-time commands: `history` (what was replicated, when), `restore` (put it back), `confirm-updates`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from dbsync.cli.common import EXIT_FAILED, EXIT_OK, hold_store, kind_names, settings_for
from dbsync.context import open_context
from dbsync.errors import ConfigError
from dbsync.registry import declaration
from dbsync.registry import kind_names as all_kinds
from dbsync.restore import RestoreStep, apply_restore, plan_as_of, plan_version, version_actors
from dbsync.restore_source import apply_source_restore, overwrites, plan_source_as_of, plan_source_version
from dbsync.store import Store
from dbsync.store.versions import Version, Versions
from dbsync.update_guard import CONFIRMED

UNKNOWN = "unknown"  # no audit row names who made the change: never guessed from the owner


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def parse_time(text: str) -> float:
    """An ISO 8601 time (`2026-12-05T09:00:00Z`, UTC when no zone is given) or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--at {text!r} is not a time: pass ISO 8601 (2026-12-05T09:00:00Z) or epoch seconds"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _target(text: str) -> tuple[str | None, str]:
    """`KIND:KEY` (a kind's source key) or a path / target key searched in every kind."""
    name, _, key = text.partition(":")
    if key and name in all_kinds():
        return name, key
    return None, text


def _versions(args: argparse.Namespace) -> Versions:
    settings = settings_for(args, require_workspaces=False)
    versions = Versions.for_state(settings.state_path)
    if not versions.exists():
        raise ConfigError(
            f"no version history at {versions.root}: it is kept from the first sync with history.enabled (the default)"
        )
    return versions


def _unkept(kinds: list[str] | None) -> list[str]:
    """Of `kinds`, those that keep no version: secret values and global init script bodies may hold credentials."""
    return [name for name in kinds or [] if not declaration(name).versions]


UNKEPT = "dbsync: {kinds} keep no versions (their contents may hold credentials): there is none to list or restore"


def cmd_history(args: argparse.Namespace) -> int:
    kind, key = _target(args.object)
    if _unkept([kind] if kind else None):
        print(UNKEPT.format(kinds=kind), file=sys.stderr)
        return EXIT_FAILED
    found = _versions(args).history(kind, key)
    who = _actors(args, found)
    if args.json:
        print(json.dumps([_version_json(v, who[v.id]) for v in found], indent=2))
    else:
        print(f"{'version':>8}  {'replicated (UTC)':<20}  {'action':<8}  {'size':>9}  {'by':<24}  object")
        for v in found:
            print(f"{v.id:>8}  {_when(v.at):<20}  {v.action:<8}  {v.size:>9}  {who[v.id]:<24}  {v.kind}:{v.key}")
    if not found:
        print(f"dbsync: no kept version of {args.object} (try KIND:KEY, e.g. notebooks:/Shared/etl)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _actors(args: argparse.Namespace, found: list[Version]) -> dict[int, str]:
    """Who changed each version, from the source's audit log (audit_hints); `unknown` when it does not say."""
    settings = settings_for(args, require_workspaces=False)
    if not found or not settings.state_path.exists():
        return {v.id: UNKNOWN for v in found}
    store = Store(settings.state_path)
    try:
        return {vid: email or UNKNOWN for vid, email in version_actors(store, found).items()}
    finally:
        store.close()


def _version_json(v: Version, by: str) -> dict[str, Any]:
    return {
        "version": v.id,
        "kind": v.kind,
        "key": v.key,
        "target_key": v.target_key,
        "at": _when(v.at),
        "action": v.action,
        "size": v.size,
        "by": by,
        "fingerprint": v.fingerprint,
    }


def cmd_restore(args: argparse.Namespace) -> int:
    if args.to == "source":
        return _restore_source(args)
    if args.unpin:
        dropped = _versions(args).unpin(kind_names(args))
        print(f"{dropped} pin(s) dropped: the next cycle copies the source over those objects again")
        return EXIT_OK
    if (args.version is None) == (args.at is None):
        raise ConfigError("restore needs one of --version ID (from `dbsync history`) or --at TIME")
    versions = _versions(args)
    settings = settings_for(args)
    lock = hold_store(settings, "restore") if args.apply else None
    try:
        ctx = open_context(settings, dry_run=not args.apply)
        try:
            steps = _plan(ctx, versions, args, plan_version, plan_as_of)
            if args.apply:
                apply_restore(ctx, steps, pin=args.pin)
        finally:
            ctx.store.close()
    finally:
        if lock is not None:
            lock.release()
    return _print_steps(steps, args)


def _restore_source(args: argparse.Namespace) -> int:
    """`restore --to source`: plan (the default), or write back to the source with --apply (and --yes past
    updates.min_count objects). The source is fenced open only for the planned objects (dbsync/restore_source.py)."""
    if args.pin or args.unpin:
        raise ConfigError("--pin/--unpin keep restored copies on the target: they do not apply to --to source")
    if (args.version is None) == (args.at is None):
        raise ConfigError("restore needs one of --version ID (from `dbsync history`) or --at TIME")
    versions = _versions(args)
    settings = settings_for(args)
    lock = hold_store(settings, "restore") if args.apply else None
    try:
        # Not a writer of the target: no marker written, no target fence; apply_source_restore fences both sides.
        ctx = open_context(settings, dry_run=not args.apply, writer=False)
        try:
            steps = _plan(ctx, versions, args, plan_source_version, plan_source_as_of)
            count, limit = overwrites(steps), settings.updates.min_count
            if args.apply and count >= limit and not args.yes:
                _print_steps(steps, argparse.Namespace(**{**vars(args), "apply": False}))
                raise ConfigError(
                    f"the plan overwrites {count} objects on the source, the primary (updates.min_count is {limit}): "
                    "check the plan above, then run again with --yes"
                )
            if args.apply:
                apply_source_restore(ctx, steps)
        finally:
            ctx.store.close()
    finally:
        if lock is not None:
            lock.release()
    return _print_steps(steps, args)


def _plan(ctx: Any, versions: Versions, args: argparse.Namespace, one: Any, as_of: Any) -> list[RestoreStep]:
    """The steps of `--version ID` (planned by `one`), or of everything as of `--at` with --kinds / --path (`as_of`)."""
    unkept = _unkept(kind_names(args))
    if unkept:  # not silently nothing: these kinds are left as they are
        print(UNKEPT.format(kinds=", ".join(unkept)), file=sys.stderr)
    if args.version is not None:
        version = versions.get(args.version)
        if version is None:
            raise ConfigError(f"--version {args.version}: no such version (`dbsync history PATH` lists them)")
        return one(ctx, version)
    return as_of(ctx, versions, parse_time(args.at), kind_names(args), args.path)


def _print_steps(steps: list[RestoreStep], args: argparse.Namespace) -> int:
    listed = [s for s in steps if s.action != "unchanged"]
    for s in listed:
        version = f"version {s.version.id} of {_when(s.version.at)}" if s.version and s.action == "write" else ""
        outcome = f"  → {s.outcome}" if s.outcome else ""
        outcome += f" ({s.message})" if s.message else ""
        print(f"{s.action:<7} {s.kind:<20} {s.key}  {version}{outcome}")
    changes = sum(1 for s in listed if s.action in ("write", "delete"))
    where = " to the source" if args.to == "source" else ""
    verb = "applied" if args.apply else "planned (dry run: pass --apply to write)"
    kept = sum(1 for s in listed if s.action == "keep")
    skipped = sum(1 for s in listed if s.action == "skip")
    extra = (f", {kept} created since kept" if kept else "") + (f", {skipped} skipped" if skipped else "")
    print(f"{changes} change(s){where} {verb}, {len(steps) - len(listed)} already as they were{extra}")
    failed = [s for s in listed if s.outcome in ("error", "skipped")]
    return EXIT_FAILED if failed else EXIT_OK


def held_kinds(store: Store) -> list[str]:
    """Kinds whose updates the edit-storm guard holds: their latest guard event says `held` (each held cycle
    records one, also when the delete guard tripped in the same cycle and named the cycle's outcome)."""
    latest: dict[str, str] = {}
    for event in store.events(limit=1000):  # newest first
        if event["action"] == "update" and event["source_key"] is None and event["kind"]:
            latest.setdefault(event["kind"], event["outcome"])
    return sorted(k for k, outcome in latest.items() if outcome == "held")


def cmd_confirm_updates(args: argparse.Namespace) -> int:
    settings = settings_for(args, require_workspaces=False)
    if not settings.state_path.exists():
        raise ConfigError(
            f"no state store at {settings.state_path}: run `dbsync sync --once` first (or set state_path)"
        )
    store = Store(settings.state_path)
    try:
        last = store.last_cycles()
        guarded = [k for k in held_kinds(store) if last.get(k, {}).get("outcome") in ("update_guard", "delete_guard")]
        held = [k for k in guarded if not kind_names(args) or k in (kind_names(args) or [])]
        for name in held:
            store.set_meta(CONFIRMED + name, repr(time.time()))
    finally:
        store.close()
    if not held:
        print("dbsync: no kind's updates are held by the edit-storm guard: nothing to confirm", file=sys.stderr)
        return EXIT_FAILED
    print(f"confirmed: the next cycle of {', '.join(held)} applies the held updates")
    return EXIT_OK
