"""The `dbsync` command. Exit codes: 0 success, 1 not in sync / a change failed, 2 usage or config error."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync import __version__
from dbsync.errors import ConfigError, DbsyncError, StoreError, without_sdk_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FORCE_DELETES_HINT = "check the source, then run `dbsync sync --once --force-deletes` if the deletes are intended"
SYNC_EXIT_STATUS = """exit status:
  0  every selected kind is in step with the source
  1  not in sync: a change failed or is blocked, a listing failed, or the delete guard held deletes
     (each held kind is named on stderr)
  2  a configuration or store error"""

DESCRIPTION = """\
Keep a Databricks disaster-recovery workspace in step with its primary.

Configuration comes from --config (default ./dbsync.yaml when present), then DBSYNC_* environment
variables (DBSYNC_SOURCE__HOST, DBSYNC_SOURCE__TOKEN, DBSYNC_TARGET__HOST, DBSYNC_TARGET__TOKEN,
DBSYNC_STATE_PATH, ...), then flags. See README.md for the full reference.
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config file (default: ./dbsync.yaml if present)")
    parser.add_argument("--state-path", metavar="FILE", help="SQLite state store (overrides state_path)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level (default INFO)")


def _kinds_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kinds", metavar="A,B", help="only these kinds, comma separated (e.g. notebooks,jobs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbsync", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"dbsync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    emu = sub.add_parser(
        "emulator",
        help="serve an emulated Databricks workspace (for tests, demos, benchmarks)",
        description="Serve one emulated Databricks workspace until SIGTERM/SIGINT.",
    )
    emu.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=8080, help="port to bind, 0 for any free port (default 8080)")
    emu.add_argument("--token", default="dapi-emulator-token", help="the bearer token clients must send")
    emu.add_argument("--seed-objects", type=int, default=0, metavar="N", help="fill with about N realistic objects")
    emu.add_argument("--seed", type=int, default=0, help="seed number for deterministic content (default 0)")
    emu.add_argument("--latency-ms", type=float, default=0.0, metavar="MS", help="added latency per request")
    emu.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of API requests answered 429 (2/3, with Retry-After) or 503 (1/3)",
    )
    emu.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="RPS",
        help="token-bucket request limit; excess requests get 429 REQUEST_LIMIT_EXCEEDED",
    )
    emu.add_argument("--state", metavar="FILE", help="load state from FILE at start and save it at exit")
    emu.add_argument(
        "--allow-secrets-get",
        action="store_true",
        help="answer GET /api/2.0/secrets/get with the value (a real workspace refuses it outside a cluster)",
    )
    emu.add_argument("--cluster-start-seconds", type=float, default=2.0, help="PENDING → RUNNING delay")
    emu.add_argument("--run-seconds", type=float, default=60.0, help="how long a job run takes (default 60)")
    emu.add_argument(
        "--realistic-timing",
        action="store_true",
        help="benchmark profile: clusters start in 3-5 min, run durations drawn per run (seeded by --seed)",
    )
    emu.add_argument(
        "--time-scale", type=float, default=1.0, metavar="F", help="multiply every duration by F (default 1)"
    )

    sub.add_parser(
        "demo",
        help="two emulated workspaces, seeded, synced twice, report printed (no setup)",
        description="Start two emulated workspaces in-process, seed the source, sync, change a few "
        "objects, sync again, and print what happened and the per-kind counts on both sides.",
    )

    sync = sub.add_parser(
        "sync",
        help="replicate the source to the target once",
        description="Run one reconcile cycle over the enabled kinds and print a summary.",
        epilog=SYNC_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(sync)
    _kinds_arg(sync)
    sync.add_argument("--once", action="store_true", help="run one cycle and exit (the daemon is `dbsync serve`)")
    sync.add_argument(
        "--force-deletes",
        action="store_true",
        help="apply deletes even when the delete guard would hold them (this run only)",
    )
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")

    plan = sub.add_parser(
        "plan",
        help="show what the next sync would change, without writing",
        description="List and fetch the source and show the creates, updates and deletes a "
        "sync would make. Nothing is written to the target or the store.",
    )
    _common(plan)
    _kinds_arg(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    status = sub.add_parser("status", help="per-kind counts and the last cycle, from the store (no API calls)")
    _common(status)
    status.add_argument("--json", action="store_true", help="print as JSON")

    serve = sub.add_parser(
        "serve",
        help="run the replication daemon: schedules, /metrics, /healthz, /readyz, /report",
        description="Reconcile every kind once, then each kind on its interval, until SIGTERM/SIGINT. "
        "Serves /metrics, /healthz, /readyz, /report and /report.html on server.host:server.port.",
    )
    _common(serve)

    validate = sub.add_parser("validate", help="compare live source and target; exit 0 only when ready for cutover")
    _common(validate)
    _kinds_arg(validate)
    validate.add_argument("--format", choices=["text", "json", "html"], default="text")
    _cutover_parsers(sub)
    return parser


def _cutover_parsers(sub: Any) -> None:
    cutover = sub.add_parser(
        "cutover",
        help="make the target the primary: a resumable runbook (or --rollback)",
        description="Final sync, validate, pause the source's jobs, unpause on the target exactly those that ran "
        "on the source, stop replication, print and save a report. Each step is recorded in the store: "
        "after a crash or Ctrl-C, run the same command again to resume.",
    )
    _common(cutover)
    cutover.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    cutover.add_argument("--yes", action="store_true", help="do not ask for confirmation (required without a TTY)")
    cutover.add_argument(
        "--skip-source",
        action="store_true",
        help="the source is unreachable (the disaster case): no final sync, source jobs not paused, the target "
        "gets the state of the last sync",
    )
    cutover.add_argument("--cancel-active-runs", action="store_true", help="cancel the source jobs' active runs")
    cutover.add_argument("--force", action="store_true", help="cut over even when validation says not ready")
    cutover.add_argument(
        "--rollback",
        action="store_true",
        help="restore every source job's prior state, re-pause the target jobs the cutover unpaused, back to standby",
    )
    cutover.add_argument("--json", action="store_true", help="print the report as JSON")

    reverse = sub.add_parser(
        "reverse",
        help="after a cutover, seed a store that replicates the new primary back into the old one",
        description="Seed a new store for the reversed pair from this store's mapping (no API calls), so the "
        "reverse direction updates what exists on the old primary instead of duplicating it. Then run with "
        "direction: reverse (DBSYNC_DIRECTION=reverse) and state_path set to the new store.",
    )
    _common(reverse)
    reverse.add_argument(
        "--reverse-state-path", metavar="FILE", help="the new store (default: <state_path stem>-reverse.db beside it)"
    )
    reverse.add_argument("--force", action="store_true", help="seed even though this store's cutover is not complete")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except (ConfigError, StoreError) as err:
        print(f"dbsync: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DbsyncError as err:
        print(f"dbsync: {err}", file=sys.stderr)
        return EXIT_FAILED
    except DatabricksError as err:  # an SDK error no command turned into one of ours: still one line
        lines = without_sdk_config(str(err)).strip().splitlines() or [type(err).__name__]
        print(f"dbsync: the Databricks API refused a request: {lines[0]}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("dbsync: interrupted", file=sys.stderr)
        return 130


# -- helpers ----------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace, require_workspaces: bool = True) -> Any:
    from dbsync import logs
    from dbsync.config import load_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "state_path", None):
        overrides["state_path"] = args.state_path
    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level
    settings = load_settings(args.config, overrides, require_workspaces=require_workspaces)
    logs.setup(settings.log_level)
    return settings


def _hold_store(settings: Any, command: str) -> Any:
    """The store's exclusive lock, or StoreBusy (exit 2) naming the process that holds it."""
    from dbsync.store.lock import StoreLock

    lock = StoreLock(settings.state_path, command)
    lock.acquire()
    _clear_handoff(settings, only_dead=True)
    return lock


def _kind_names(args: argparse.Namespace) -> list[str] | None:
    from dbsync.registry import KIND_NAMES

    if not getattr(args, "kinds", None):
        return None
    names = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [n for n in names if n not in KIND_NAMES]
    if unknown:
        raise ConfigError(f"--kinds: unknown kind {unknown[0]!r}; known kinds: {', '.join(KIND_NAMES)}")
    return names


class _Progress:
    """One self-rewriting line per kind on a TTY; silent otherwise (logs carry the detail)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, report: Any) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.25:
            return
        self.last = now
        sys.stderr.write(
            f"\r{report.kind}: {report.listed} listed, {report.fetched} fetched, "
            f"{report.created} created, {report.updated} updated, {report.skipped} skipped, {report.partial} partial, "
            f"{report.errors} errors   "
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")


# One vocabulary on every surface: only created / updated / unchanged are in sync.
SUMMARY_COLUMNS = ("created", "updated", "unchanged", "skipped", "partial", "deleted", "blocked", "errors", "drifted")
STATUS_COLUMNS = ("synced", "partial", "skipped", "pending", "blocked", "error", "drifted")


def summary_table(reports: Sequence[Any]) -> str:
    """The `sync --once` table: one row per kind, counted with the outcome vocabulary."""
    columns = ("listed", "fetched", *SUMMARY_COLUMNS, "seconds")
    lines = [f"{'kind':<20}" + "".join(f"{c:>10}" for c in columns)]
    for r in reports:
        counts = "".join(f"{getattr(r, c):>10}" for c in columns[:-1])
        lines.append(f"{r.kind:<20}{counts}{r.seconds:>10.2f}")
        if r.message:
            lines.append(f"  ! {r.message}")
    return "\n".join(lines)


def _report_json(r: Any) -> dict[str, Any]:
    doc = {k: getattr(r, k) for k in ("kind", "listed", "fetched", *SUMMARY_COLUMNS, "outcome", "message")}
    doc["seconds"] = round(r.seconds, 3)
    return doc


# -- commands ---------------------------------------------------------------------------------------
def cmd_sync(args: argparse.Namespace) -> int:
    from dbsync.context import open_context
    from dbsync.engine import Engine

    if not args.once:
        raise ConfigError("`dbsync sync` needs --once (run `dbsync serve` for the daemon)")
    settings = _settings(args)
    names = _kind_names(args)
    lock = _hold_store(settings, "sync --once")
    try:
        ctx = open_context(settings)
        progress = _Progress()
        try:
            reports = Engine(ctx, force_deletes=args.force_deletes, progress=progress).cycle(names)
        finally:
            progress.done()
            ctx.store.close()
    finally:
        lock.release()
    if args.json:
        print(json.dumps([_report_json(r) for r in reports], indent=2))
    else:
        print(summary_table(reports))
    failed = any(r.errors or r.blocked or r.outcome == "listing_failed" for r in reports)
    held = [r for r in reports if r.outcome == "delete_guard"]
    for report in held:  # a cron job must see that the target is not in step with the source
        print(f"dbsync: not in sync: {report.kind}: {report.message}; {FORCE_DELETES_HINT}", file=sys.stderr)
    return EXIT_FAILED if failed or held else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from dbsync.context import open_context
    from dbsync.engine import Engine

    settings = _settings(args)
    ctx = open_context(settings, dry_run=True)
    try:
        reports = Engine(ctx, plan_only=True).cycle(_kind_names(args))
    finally:
        ctx.store.close()
    planned = [c for r in reports for c in r.planned]
    planned += _planned_acls(settings, planned, {r.kind for r in reports})
    changes = [(_plan_action(c), c) for c in planned]
    if args.json:
        print(json.dumps([_plan_json(a, c) for a, c in changes], indent=2))
    else:
        for action, c in changes:
            print(f"{action:<7} {c.kind:<20} {c.key}" + (f"  ({c.skip_reason})" if c.skip_reason else ""))
        held = [r for r in reports if r.message]
        for r in held:
            print(f"! {r.kind}: {r.message}")
        print(
            f"{len(changes)} change(s): "
            + ", ".join(
                f"{sum(1 for a, _ in changes if a == wanted)} {wanted}"
                for wanted in ("create", "update", "delete", "skip")
            )
        )
    return EXIT_OK


def _plan_json(action: str, change: Any) -> dict[str, Any]:
    doc = {"action": action, "kind": change.kind, "key": change.key}
    if change.skip_reason:
        doc["reason"] = change.skip_reason
    return doc


def _planned_acls(settings: Any, planned: list[Any], ran: set[str]) -> list[Any]:
    """The ACL each new object gets from the permissions kind in the same sync (the plan cannot list them yet)."""
    from dbsync.model import Resource, Upsert
    from dbsync.registry import kind

    if "permissions" not in ran:
        return []
    return [
        Upsert(Resource("permissions", f"{c.kind}:{c.key}", payload={}), None)
        for c in planned
        if c.action == "create" and not c.skip_reason and kind(c.kind).watcher.acl_type
    ]


def _plan_action(change: Any) -> str:
    """`skip` for a change dbsync will not write (a mount, a user it may not create), with its reason."""
    return "skip" if change.skip_reason else str(change.action)


def cmd_status(args: argparse.Namespace) -> int:
    from dbsync.registry import KIND_NAMES
    from dbsync.store import Store

    settings = _settings(args, require_workspaces=False)
    if not settings.state_path.exists():
        raise ConfigError(
            f"no state store at {settings.state_path}: run `dbsync sync --once` first (or set state_path)"
        )
    store = Store(settings.state_path)
    try:
        counts, cycles = store.status_counts(), store.last_cycles()
        role = store.role
    finally:
        store.close()
    if args.json:
        print(json.dumps({"role": role, "counts": counts, "last_cycles": cycles}, indent=2))
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
        print(f"{name:<20}" + "".join(f"{c.get(status, 0):>9}" for status in STATUS_COLUMNS) + f"   {last}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from dbsync.context import open_context
    from dbsync.report import format_text, validate

    settings = _settings(args)
    ctx = open_context(settings, writer=False)
    try:
        report = validate(ctx, _kind_names(args))
    finally:
        ctx.store.close()
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    elif args.format == "html":
        from dbsync.report_html import render

        print(render(report))
    else:
        print(format_text(report))
    return EXIT_OK if report.ready_for_cutover else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from dbsync.context import open_context
    from dbsync.scheduler import Daemon
    from dbsync.server import StatusServer

    settings = _settings(args)
    lock = _hold_store(settings, "serve")  # held until exit; handed to a `dbsync cutover` that asks (Daemon.poll)
    try:
        ctx = open_context(settings)
    except BaseException:
        lock.release()
        raise
    daemon = Daemon(ctx, lock)
    token = settings.server.auth_token.get_secret_value() if settings.server.auth_token else None
    try:
        server = StatusServer((settings.server.host, settings.server.port), daemon, token)
    except OSError as err:
        ctx.store.close()
        lock.release()
        raise ConfigError(
            f"server.port: cannot listen on {settings.server.host}:{settings.server.port}: {err.strerror} "
            "(set DBSYNC_SERVER__PORT or server.port)"
        ) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    daemon.start()
    log = logging.getLogger("dbsync")
    log.info("serving", extra={"url": server.url, "groups": ["+".join(g) for g in daemon.groups]})
    while not stop.wait(0.5):
        daemon.poll()
    log.info("shutting down", extra={"timeout_seconds": settings.shutdown_timeout})
    clean = daemon.shutdown()
    server.shutdown()
    server.server_close()
    lock.release()
    log.info("stopped", extra={"clean": clean})
    return EXIT_OK if clean else EXIT_FAILED


def cmd_emulator(args: argparse.Namespace) -> int:
    from dbsync.emulator import start_emulator

    if args.time_scale <= 0 or args.run_seconds < 0:
        raise ConfigError("--time-scale must be above 0 and --run-seconds 0 or more: pass e.g. --time-scale 0.1")
    try:
        handle = start_emulator(
            host=args.host,
            port=args.port,
            token=args.token,
            seed_objects=args.seed_objects,
            seed=args.seed,
            latency_ms=args.latency_ms,
            fault_rate=args.fault_rate,
            rate_limit=args.rate_limit,
            state_file=args.state,
            cluster_start_seconds=args.cluster_start_seconds,
            run_seconds=args.run_seconds,
            realistic_timing=args.realistic_timing,
            time_scale=args.time_scale,
        )
    except OSError as err:
        raise ConfigError(f"cannot bind {args.host}:{args.port}: {err.strerror}") from None
    if args.allow_secrets_get:
        with handle.workspace.lock:
            handle.workspace.table("settings")["secrets_get_allowed"] = True
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"dbsync emulator serving {handle.url} (workspace {handle.workspace.workspace_id})", flush=True)
    while not stop.wait(0.5):
        pass
    handle.stop()
    return EXIT_OK


def _confirm(question: str) -> bool:
    """Ask on the terminal; without one, refuse (exit 2) rather than change workspaces unasked."""
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to confirm on: pass --yes to run without confirmation")
    return input(f"{question} Type yes to continue: ").strip().lower() == "yes"


def _cutover_progress(event: str, name: str, detail: dict[str, Any]) -> None:
    from dbsync.cutover import STEPS

    if event != "step":
        return
    number = f"{STEPS.index(name) + 1}/{len(STEPS)}"
    if detail["state"] == "running":
        print(f"[{number}] {name} …", file=sys.stderr, flush=True)
    else:
        print(
            f"[{number}] {name}: {detail['state']} in {detail['seconds']:.1f} s — {detail['summary']}", file=sys.stderr
        )


def cmd_cutover(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.rollback:
        return _cutover_rollback(args, settings)
    if args.dry_run:
        return _cutover_run(args, settings)
    lock = _take_over_store(settings, "cutover")
    try:
        return _cutover_run(args, settings)
    finally:
        lock.release()


def _take_over_store(settings: Any, command: str) -> Any:
    """The store's lock for a cutover: a running `dbsync serve` is asked to hand it over, and waited for.

    The request is a meta row of the store: the daemon's write fence refuses every target write from
    then on, its cycle stops after the change in flight, and it releases the lock (it keeps serving
    /metrics and /readyz). A `sync --once` ends its run the same way. Bounded: after the wait, one line
    says what to stop.
    """
    import os
    import socket

    from dbsync.store import Store
    from dbsync.store.lock import StoreBusy, StoreLock, describe

    lock = StoreLock(settings.state_path, command)
    if lock.try_acquire():
        _clear_handoff(settings)
        return lock
    holder = lock.holder()
    wait = max(60.0, 2 * settings.shutdown_timeout)
    request = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "at": time.time(), "command": command})
    store = Store(settings.state_path)
    try:
        store.set_meta("cutover_requested", request)
        print(f"dbsync: asking {describe(holder)} to hand over the store (up to {wait:.0f} s)…", file=sys.stderr)
        try:
            lock.acquire(wait_seconds=wait)
        except StoreBusy:
            store.delete_meta("cutover_requested")
            raise StoreBusy(
                f"{describe(holder)} did not hand over the store {settings.state_path} within {wait:.0f} s: stop it "
                f"(kill {holder.get('pid', '<pid>')}) and run `dbsync {command}` again",
                holder,
            ) from None
        store.delete_meta("cutover_requested")
        if holder.get("command") == "serve":
            print("dbsync: the daemon handed over the store; it stays up without replicating", file=sys.stderr)
    finally:
        store.close()
    return lock


def _clear_handoff(settings: Any, only_dead: bool = False) -> None:
    """A request left by a cutover that died while waiting would keep every writer fenced for ever.

    `only_dead`: keep a request whose cutover is alive on this host (it gets the store after this run).
    """
    import os
    import socket

    from dbsync.store import Store

    if not settings.state_path.exists():
        return
    store = Store(settings.state_path)
    try:
        request = store.get_meta("cutover_requested")
        if not request:
            return
        try:
            asker = json.loads(request)
            if only_dead and asker.get("host") == socket.gethostname():
                os.kill(int(asker["pid"]), 0)
                return  # alive: it is waiting for this store
        except (ValueError, KeyError, TypeError, ProcessLookupError):
            pass
        except PermissionError:
            return  # alive, another user's
        store.delete_meta("cutover_requested")
    finally:
        store.close()


def _cutover_run(args: argparse.Namespace, settings: Any) -> int:
    from dbsync.cutover import Runbook, format_report, open_cutover_context

    ctx = open_cutover_context(settings, need_source=not args.skip_source, force=args.force)
    try:
        runbook = Runbook(
            ctx,
            skip_source=args.skip_source,
            cancel_active_runs=args.cancel_active_runs,
            force=args.force,
            progress=_cutover_progress,
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
            if not args.yes and not _confirm("Cut over now?"):
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
    from dbsync.cutover import SOURCE_ROW, TARGET_ROW, Runbook, open_cutover_context
    from dbsync.roles import StoreRole
    from dbsync.store import Store

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
    if not args.yes and not _confirm("Roll back now?"):
        print("cancelled: nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    lock = _take_over_store(settings, "cutover --rollback")
    try:
        # The source is needed only to restore jobs the cutover paused there.
        ctx = open_cutover_context(settings, need_source=bool(source_jobs) and not args.skip_source, force=True)
        try:
            result = Runbook(ctx, skip_source=args.skip_source or not source_jobs).rollback()
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
    from pathlib import Path

    from dbsync.reverse import default_reverse_path, next_steps, seed_reverse_store
    from dbsync.store import Store

    settings = _settings(args, require_workspaces=False)
    if not settings.state_path.exists():
        raise ConfigError(f"no state store at {settings.state_path}: point --state-path at the store of the cutover")
    path = Path(args.reverse_state_path) if args.reverse_state_path else default_reverse_path(settings.state_path)
    from dbsync.store.lock import StoreLock

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


def cmd_demo(args: argparse.Namespace) -> int:
    from dbsync.demo import run_demo

    return run_demo()


COMMANDS = {
    "sync": cmd_sync,
    "plan": cmd_plan,
    "status": cmd_status,
    "validate": cmd_validate,
    "serve": cmd_serve,
    "emulator": cmd_emulator,
    "demo": cmd_demo,
    "cutover": cmd_cutover,
    "reverse": cmd_reverse,
}

if __name__ == "__main__":
    sys.exit(main())
