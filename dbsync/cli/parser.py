"""The `dbsync` argument parser: every command, its flags and its help text."""

from __future__ import annotations

import argparse
from typing import Any

from dbsync import __version__
from dbsync.registry import kind_names

SYNC_EXIT_STATUS = """exit status:
  0  every selected kind is in step with the source
  1  not in sync: a change failed or is blocked, a listing failed or stopped, the delete guard held deletes, the
     edit-storm guard held updates, or a `restore --pin` left source changes pending (each kind named on stderr)
  2  a configuration or store error, an unknown --kinds name, or the store held by another process"""

PLAN_EXIT_STATUS = """exit status:
  0  the plan was printed (changes or none)
  1  the Databricks API refused a request: a listing failed (`unknown`), or an object would be blocked or fail
     (`blocked`, `error`); a listing was stopped before its end (`unknown`); or a guard would hold deletes or
     updates (`held`): as `sync --once` would exit 1 (each named in the plan)
  2  a configuration or store error, or an unknown --kinds name"""

STATUS_EXIT_STATUS = """exit status:
  0  the counts were printed
  1  not used by this command
  2  a configuration or store error"""

SERVE_EXIT_STATUS = """exit status:
  0  stopped cleanly on SIGTERM/SIGINT
  1  the stop timed out (shutdown_timeout) with a change in flight, or the API refused a request at start
  2  a configuration or store error, server.port in use, or the store held by another process"""

VALIDATE_EXIT_STATUS = """exit status:
  0  ready for cutover
  1  not ready (the reasons are printed), or the Databricks API refused a request
  2  a configuration or store error, or an unknown --kinds name"""

CUTOVER_EXIT_STATUS = """exit status:
  0  done (or resumed to the end, rolled back, or the --dry-run plan printed)
  1  refused (not ready without --force), cancelled at the prompt, or a step failed (run again to resume)
  2  a configuration or store error, or no --yes without a terminal"""

REVERSE_EXIT_STATUS = """exit status:
  0  the reverse store was seeded (or already was)
  1  this store's cutover is not complete (pass --force to seed anyway)
  2  a configuration or store error: no store, a store that never synced, or the forward store as target"""

HISTORY_EXIT_STATUS = """exit status:
  0  the kept versions were printed
  1  no version of that object is kept
  2  a configuration error, or no version history beside the store"""

RESTORE_EXIT_STATUS = """exit status:
  0  the plan was printed (--dry-run, the default), or every change applied (--apply), or the pins dropped
  1  a change could not be applied, or (--to source) a kind it cannot write was skipped (named in the output)
  2  a configuration or store error: no history, no --version/--at, an unknown version; --to source --apply
     of updates.min_count objects or more without --yes, or a source that is no longer the primary"""

CONFIRM_EXIT_STATUS = """exit status:
  0  the held updates of the named kinds are confirmed: the daemon's next cycle applies them
  1  no kind's updates are held by the edit-storm guard
  2  a configuration or store error"""

EMULATOR_EXIT_STATUS = """exit status:
  0  stopped on SIGTERM/SIGINT
  1  not used by this command
  2  a bad flag, the port cannot be bound, or the emulator is not installed"""

DEMO_EXIT_STATUS = """exit status:
  0  every kind ended in step with the source
  1  something did not replicate (named in the report)
  2  the emulator is not installed"""


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
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        help="logs on stderr: json lines, readable text, or auto (text on a terminal, json otherwise; default)",
    )


def _kinds_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kinds",
        metavar="A,B",
        help=f"only these kinds, comma separated; one or more of: {', '.join(kind_names())}",
    )


RAW = argparse.RawDescriptionHelpFormatter  # keeps the exit status epilog's lines as written


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
        epilog=EMULATOR_EXIT_STATUS,
        formatter_class=RAW,
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
    emu.add_argument(
        "--cluster-start-seconds", type=float, default=2.0, metavar="S", help="PENDING → RUNNING delay (default 2)"
    )
    emu.add_argument("--run-seconds", type=float, default=60.0, help="how long a job run takes (default 60)")
    emu.add_argument(
        "--realistic-timing",
        action="store_true",
        help="benchmark profile: clusters start in 3-5 min, run durations drawn per run (seeded by --seed)",
    )
    emu.add_argument(
        "--time-scale", type=float, default=1.0, metavar="F", help="multiply every duration by F (default 1)"
    )
    emu.add_argument(
        "--audit-delay-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="how long after a write its row shows in system.access.audit (default 0; the real table lags minutes)",
    )

    sub.add_parser(
        "demo",
        help="two emulated workspaces, seeded, synced twice, report printed (no setup)",
        description="Start two emulated workspaces in-process, seed the source, sync, change a few "
        "objects, sync again, and print what happened and the per-kind counts on both sides.",
        epilog=DEMO_EXIT_STATUS,
        formatter_class=RAW,
    )

    sync = sub.add_parser(
        "sync",
        help="replicate the source to the target once",
        description="Run one reconcile cycle over the enabled kinds and print a summary.",
        epilog=SYNC_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(sync)
    _kinds_arg(sync)
    sync.add_argument("--once", action="store_true", help="run one cycle and exit (the daemon is `dbsync serve`)")
    sync.add_argument(
        "--force-deletes",
        action="store_true",
        help="apply deletes even when the delete guard would hold them (this run only)",
    )
    sync.add_argument(
        "--force-updates",
        action="store_true",
        help="apply updates even when the edit-storm guard would hold them (this run only)",
    )
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")

    plan = sub.add_parser(
        "plan",
        help="show what the next sync would change, without writing",
        description="List and fetch the source and show the creates, updates and deletes a "
        "sync would make, and what it would leave blocked or fail on. Nothing is written to the target or the store.",
        epilog=PLAN_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(plan)
    _kinds_arg(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    status = sub.add_parser(
        "status",
        help="per-kind counts and the last cycle, from the store (no API calls)",
        description="Print each kind's object count by status and the last cycle's time and outcome, read from "
        "the state store only: no API call is made.",
        epilog=STATUS_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(status)
    status.add_argument("--json", action="store_true", help="print as JSON")

    serve = sub.add_parser(
        "serve",
        help="run the replication daemon: schedules, /metrics, /healthz, /readyz, /report",
        description="Reconcile every kind once, then each kind on its interval, until SIGTERM/SIGINT. "
        "Serves /metrics, /healthz, /readyz, /report and /report.html on server.host:server.port.",
        epilog=SERVE_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(serve)

    validate = sub.add_parser(
        "validate",
        help="compare live source and target; exit 0 only when ready for cutover",
        description="List both workspaces and compare them per kind: in sync, pending, partial, skipped, missing, "
        "extra, drifted, errors, lag, and whether the target is ready for cutover (with the reasons).",
        epilog=VALIDATE_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(validate)
    _kinds_arg(validate)
    validate.add_argument(
        "--format",
        choices=["text", "json", "html"],
        default="text",
        help="text (default), json, or html (the report page as /report.html shows it)",
    )
    _cutover_parsers(sub)
    _history_parsers(sub)
    return parser


def _history_parsers(sub: Any) -> None:
    history = sub.add_parser(
        "history",
        help="the kept versions of one object: when each was replicated, its size, who changed it",
        description="List every version of an object dbsync replicated (kept in <state_path>.versions), oldest "
        "first. OBJECT is KIND:KEY (notebooks:/Shared/etl, jobs:123) or a path / target key in any kind. `by` is "
        "who made the change when the source's audit log says so (audit_hints), `unknown` otherwise.",
        epilog=HISTORY_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(history)
    history.add_argument("object", metavar="PATH|KIND:KEY", help="the object: a path, or a kind and its source key")
    history.add_argument("--json", action="store_true", help="print the versions as JSON")

    restore = sub.add_parser(
        "restore",
        help="put kept versions back on the target (or --to source): one version, or everything as of a time",
        description="Plan (the default, --dry-run) or write (--apply) kept versions to the target through the "
        "kinds' replicators: references remapped, jobs paused on a standby, ACLs restored, only what dbsync "
        "created deleted. --pin keeps the restored copies: later cycles report source changes as pending. --to source "
        "writes the source's own form back to the source (a bad edit on the primary): only writes, never deletes; "
        "the next cycle copies it to the standby.",
        epilog=RESTORE_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(restore)
    _kinds_arg(restore)
    restore.add_argument("--version", type=int, metavar="ID", help="the version to write (from `dbsync history`)")
    restore.add_argument("--at", metavar="TIME", help="everything as it was at TIME (ISO 8601 UTC, or epoch seconds)")
    restore.add_argument("--path", metavar="GLOB", help="only objects whose key or target path matches GLOB")
    restore.add_argument("--dry-run", action="store_true", help="print the plan only (the default)")
    restore.add_argument("--apply", action="store_true", help="write the plan (to the target, or with --to source)")
    restore.add_argument("--pin", action="store_true", help="keep the restored copies until --unpin (with --apply)")
    restore.add_argument("--unpin", action="store_true", help="drop the pins (of --kinds): the source is copied again")
    restore.add_argument(
        "--to",
        choices=["target", "source"],
        default="target",
        help="where to write: the target (default), or back to the source, the primary, in its own form (no dbsync "
        "tags, jobs never paused, nothing deleted)",
    )
    restore.add_argument(
        "--yes",
        action="store_true",
        help="with --to source --apply: confirm a plan of updates.min_count objects or more",
    )

    confirm = sub.add_parser(
        "confirm-updates",
        help="let the daemon's next cycle apply the updates the edit-storm guard holds",
        description="Confirm the updates the edit-storm guard holds for the named kinds (or every held kind): the "
        "next cycle of `dbsync serve` applies them once. `dbsync sync --once --force-updates` is the one-shot twin.",
        epilog=CONFIRM_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(confirm)
    _kinds_arg(confirm)


def _cutover_parsers(sub: Any) -> None:
    cutover = sub.add_parser(
        "cutover",
        help="make the target the primary: a resumable runbook (or --rollback)",
        description="Final sync, validate, pause the source's jobs, unpause on the target exactly those that ran "
        "on the source, stop replication, print and save a report. Each step is recorded in the store: "
        "after a crash or Ctrl-C, run the same command again to resume.",
        epilog=CUTOVER_EXIT_STATUS,
        formatter_class=RAW,
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
        epilog=REVERSE_EXIT_STATUS,
        formatter_class=RAW,
    )
    _common(reverse)
    reverse.add_argument(
        "--reverse-state-path", metavar="FILE", help="the new store (default: <state_path stem>-reverse.db beside it)"
    )
    reverse.add_argument("--force", action="store_true", help="seed even though this store's cutover is not complete")
