"""The `dbsync` command. Exit codes: 0 success, 1 not in sync / a change failed, 2 usage or config error.

A package: `parser` (flags and help), `common` (settings, the store's lock), `output` (what is printed), one module
per area of commands (`replication`, `failover`, `emulated`), and `main` here. `python -m dbsync.cli` runs `main`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from databricks.sdk.errors import DatabricksError

from dbsync.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, kind_names
from dbsync.cli.output import plan_action, summary_table
from dbsync.cli.parser import build_parser
from dbsync.errors import ConfigError, DbsyncError, StoreError, without_sdk_config

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main", "plan_action", "summary_table"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler = command_handler(args.command)
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


# command -> (module of dbsync.cli, function). A command's module is imported when it runs: a `sync --once`
# from cron does not load the daemon's scheduler and status server, nor the cutover's or history's commands.
COMMANDS = {
    "sync": ("replication", "cmd_sync"),
    "plan": ("replication", "cmd_plan"),
    "status": ("replication", "cmd_status"),
    "validate": ("replication", "cmd_validate"),
    "serve": ("serve", "cmd_serve"),
    "emulator": ("emulated", "cmd_emulator"),
    "demo": ("emulated", "cmd_demo"),
    "cutover": ("failover", "cmd_cutover"),
    "reverse": ("failover", "cmd_reverse"),
    "history": ("history", "cmd_history"),
    "restore": ("history", "cmd_restore"),
    "confirm-updates": ("history", "cmd_confirm_updates"),
}


def command_handler(command: str) -> Callable[..., int]:
    """The function that runs `command`, from its module in dbsync.cli (imported now, not at start-up)."""
    module, function = COMMANDS[command]
    handler: Callable[..., int] = getattr(importlib.import_module(f"dbsync.cli.{module}"), function)
    return handler
