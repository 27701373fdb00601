"""The `dbsync` command. Exit codes: 0 success, 1 not in sync / a change failed, 2 usage or config error.

A package: `parser` (flags and help), `common` (settings, the store's lock), `output` (what is printed), one module
per area of commands (`replication`, `failover`, `emulated`), and `main` here. `python -m dbsync.cli` runs `main`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from databricks.sdk.errors import DatabricksError

from dbsync.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, kind_names
from dbsync.cli.emulated import cmd_demo, cmd_emulator
from dbsync.cli.failover import cmd_cutover, cmd_reverse
from dbsync.cli.history import cmd_confirm_updates, cmd_history, cmd_restore
from dbsync.cli.output import plan_action, summary_table
from dbsync.cli.parser import build_parser
from dbsync.cli.replication import cmd_plan, cmd_serve, cmd_status, cmd_sync, cmd_validate
from dbsync.errors import ConfigError, DbsyncError, StoreError, without_sdk_config

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main", "plan_action", "summary_table"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler = COMMANDS[args.command]
    try:
        kind_names(args)  # a typo in --kinds is named before any configuration or API call
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
    "history": cmd_history,
    "restore": cmd_restore,
    "confirm-updates": cmd_confirm_updates,
}
