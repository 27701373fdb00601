"""The replication commands: `sync --once`, `plan`, `status`, `validate` (the daemon, `serve`, is in serve.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from dbsync.cli.common import EXIT_FAILED, EXIT_OK, FORCE_DELETES_HINT, hold_store, kind_names, settings_for
from dbsync.cli.output import (
    STATUS_COLUMNS,
    PlanRow,
    Progress,
    plan_json,
    plan_rows,
    plan_text,
    report_json,
    summary_table,
)
from dbsync.context import open_context
from dbsync.engine import Engine
from dbsync.errors import ConfigError
from dbsync.model import Resource, Upsert, cycle_succeeded
from dbsync.profiles import workspace_host
from dbsync.registry import KIND_NAMES, disabled_by, disabled_kinds, kind, kinds
from dbsync.report import format_text, validate, validate_from_store
from dbsync.store import Store


def cmd_sync(args: argparse.Namespace) -> int:
    if not args.once:
        raise ConfigError("`dbsync sync` needs --once (run `dbsync serve` for the daemon)")
    settings = settings_for(args)
    names = kind_names(args)
    lock = hold_store(settings, "sync --once")
    try:
        ctx = open_context(settings)
        progress = Progress()
        try:
            engine = Engine(ctx, force_deletes=args.force_deletes, force_updates=args.force_updates, progress=progress)
            reports = engine.cycle(names)
        finally:
            progress.done()
            ctx.store.close()
    finally:
        lock.release()
    if args.json:
        print(json.dumps([report_json(r) for r in reports], indent=2))
    else:
        print(summary_table(reports))
    failed = not_in_step(reports)
    for report in reports:  # a cron job must see that the target is not in step with the source
        if report.outcome == "delete_guard":
            print(f"dbsync: not in sync: {report.kind}: {report.message}; {FORCE_DELETES_HINT}", file=sys.stderr)
        if report.held or report.pending:
            print(f"dbsync: not in sync: {report.kind}: {_held_updates(report)}", file=sys.stderr)
    return EXIT_FAILED if failed or held_back(reports) else EXIT_OK


def held_back(reports: list[Any]) -> bool:
    """Source changes kept from the target on purpose: deletes or updates a guard holds, changes pinned by
    `dbsync restore --pin`. The target is not in step; `sync --once` and `plan` exit 1."""
    return any(r.outcome == "delete_guard" or r.held or r.pending for r in reports)


def _held_updates(report: Any) -> str:
    """Why a kind's source changes did not reach the target on purpose, and what lets them through."""
    if report.held:
        return f"{report.message}; check the source, then run `dbsync sync --once --force-updates` if they are intended"
    return f"{report.pending} source change(s) pending: pinned by `dbsync restore --pin` (`dbsync restore --unpin`)"


def cmd_plan(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    ctx = open_context(settings, dry_run=True)
    try:
        reports = Engine(ctx).cycle(kind_names(args))
        planned = [c for r in reports for c in r.planned]
        besides = _deleted_besides(ctx, planned)
    finally:
        ctx.store.close()
    planned += _planned_acls(settings, planned, {r.kind for r in reports})
    rows = plan_rows(planned, reports, besides)
    print(json.dumps([plan_json(row) for row in rows], indent=2) if args.json else plan_text(rows))
    return plan_exit_code(reports, rows)


def plan_exit_code(reports: list[Any], rows: list[Any]) -> int:
    """As `sync --once` would: a listing that failed or was stopped, an object blocked or in error, a guard that would
    hold deletes or updates, changes pinned by a restore (each is named in the plan: a cron job running plans must not
    read "exit 0" as "in step")."""
    held = any(action == "held" for action, *_ in rows)
    return EXIT_FAILED if not_in_step(reports) or held or held_back(reports) else EXIT_OK


def not_in_step(reports: list[Any]) -> bool:
    """A change failed or is blocked, or a kind's listing was not read to its end (it failed, or a stop or the write
    fence cut it short): what the source holds is not on the target, or not known. `sync --once` and `plan` exit 1."""
    return any(r.errors or r.blocked or not cycle_succeeded(r.outcome) for r in reports)


def _deleted_besides(ctx: Any, planned: list[Any]) -> list[PlanRow]:
    """A `delete` line for what a planned write deletes besides its own (the copy a folder moved by a
    `mapping.emails` entry leaves at its old path): the sync deletes it and counts it as a delete."""
    rows: list[PlanRow] = []
    for change in planned:
        if change.action == "update" and not change.skip_reason:
            why = kind(change.kind).replicator.also_deletes(ctx, change)
            if why:
                rows.append(("delete", change.kind, change.key, why))
    return rows


def _planned_acls(settings: Any, planned: list[Any], ran: set[str]) -> list[Any]:
    """The ACL each new object gets from the permissions kind in the same sync (the plan cannot list them yet)."""
    acl_kinds = [k.name for k in kinds() if k.declaration.writes_acls and k.name in ran]
    return [
        Upsert(Resource(acl_kind, f"{c.kind}:{c.key}", payload={}), None)
        for acl_kind in acl_kinds
        for c in planned
        if c.action == "create" and not c.skip_reason and kind(c.kind).watcher.acl_type
    ]


def cmd_status(args: argparse.Namespace) -> int:
    settings = settings_for(args, require_workspaces=False)
    if not settings.state_path.exists():
        raise ConfigError(
            f"no state store at {settings.state_path}: run `dbsync sync --once` first (or set state_path)"
        )
    disabled = disabled_kinds(settings)  # not replicated: not counted, as validate and /report leave them out
    store = Store(settings.state_path)
    try:
        counts, cycles = store.verified_counts(disabled), store.last_cycles()
        role = store.role
    finally:
        store.close()
    if args.json:
        why = {name: disabled_by(settings, name) for name in disabled}
        document = {
            "role": role,
            "counts": counts,
            "disabled": list(disabled),
            "disabled_by": why,
            "last_cycles": cycles,
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(f"role: {role}")
    print(f"{'kind':<20}" + "".join(f"{c:>9}" for c in STATUS_COLUMNS) + "   last cycle")
    for name in KIND_NAMES:
        c = counts.get(name, {})
        cycle = cycles.get(name)
        last = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cycle["finished_at"])) + f" {cycle['outcome']}"
            if cycle
            else "never"
        )
        if name in disabled:
            columns = "".join(f"{'-':>9}" for _ in STATUS_COLUMNS)
            print(f"{name:<20}{columns}   disabled ({disabled_by(settings, name)}), last cycle {last}")
            continue
        print(f"{name:<20}" + "".join(f"{c.get(status, 0):>9}" for status in STATUS_COLUMNS) + f"   {last}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    ctx = _html_context(settings) if args.format == "html" else open_context(settings, writer=False)
    try:
        if args.format == "html":
            return _validate_html(ctx, kind_names(args))
        report = validate(ctx, kind_names(args))
    finally:
        ctx.store.close()
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_text(report))
    return EXIT_OK if report.ready_for_cutover else EXIT_FAILED


def _html_context(settings: Any) -> Any:
    """Both sides, or only the target when the source does not answer: the page then shows the outage."""
    from dbsync.cutover import open_cutover_context
    from dbsync.report_html import source_down  # the page's modules (jinja2) only for `validate --format html`

    host = workspace_host("source", settings.source)
    if not host or source_down(host) is None:  # no host: open_context says which setting is missing
        return open_context(settings, writer=False)
    return open_cutover_context(settings, need_source=False, force=True)  # no writes: the store and a target read


def _validate_html(ctx: Any, names: list[str] | None) -> int:
    """The report page for this moment (standby, cutover, primary, rolled back), as /report.html shows it."""
    from dbsync.report_html import moment_page, render_page

    page = moment_page(
        ctx.store,
        ctx.source.host,
        ctx.target.host,
        live=lambda: validate(ctx, names),
        from_store=lambda: validate_from_store(ctx),
    )
    print(render_page(page, refresh_seconds=None))
    return EXIT_OK if page.state == "ready" else EXIT_FAILED
