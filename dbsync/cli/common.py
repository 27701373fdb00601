"""What every command shares: exit codes, settings from the flags, the store's lock and its hand-over."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import socket
import sys
import time
from typing import Any

from dbsync import logs, registry
from dbsync.config import load_settings
from dbsync.errors import ConfigError
from dbsync.store import Store
from dbsync.store.lock import StoreBusy, StoreLock, describe

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


FORCE_DELETES_HINT = "check the source, then run `dbsync sync --once --force-deletes` if the deletes are intended"


def settings_for(args: argparse.Namespace, require_workspaces: bool = True) -> Any:
    overrides: dict[str, Any] = {}
    if getattr(args, "state_path", None):
        overrides["state_path"] = args.state_path
    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level
    if getattr(args, "log_format", None):
        overrides["log_format"] = args.log_format
    settings = load_settings(args.config, overrides, require_workspaces=require_workspaces)
    logs.setup(settings.log_level, settings.log_format)
    return settings


def hold_store(settings: Any, command: str) -> Any:
    """The store's exclusive lock, or StoreBusy (exit 2) naming the process that holds it."""
    lock = StoreLock(settings.state_path, command)
    lock.acquire()
    clear_handoff(settings, only_dead=True)
    return lock


def kind_names(args: argparse.Namespace) -> list[str] | None:
    """The kinds `--kinds` names (None without it), or a one-line ConfigError (exit 2) listing the valid ones."""
    if getattr(args, "kinds", None) is None:
        return None
    valid = registry.kind_names()
    names = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not names:  # `--kinds ,` must not quietly mean every kind, deletes included
        raise ConfigError(f"--kinds {args.kinds!r} names no kind: pass one or more of {', '.join(valid)}")
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"--kinds: unknown kind {name!r}; {hint}known kinds: {', '.join(valid)}")
    return names


def confirm(question: str) -> bool:
    """Ask on the terminal; without one, refuse (exit 2) rather than change workspaces unasked."""
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to confirm on: pass --yes to run without confirmation")
    return input(f"{question} Type yes to continue: ").strip().lower() == "yes"


def take_over_store(settings: Any, command: str) -> Any:
    """The store's lock for a cutover: a running `dbsync serve` is asked to hand it over, and waited for.

    The request is a meta row of the store: the daemon's write fence refuses every target write from
    then on, its cycle stops after the change in flight, and it releases the lock (it keeps serving
    /metrics and /readyz). A `sync --once` ends its run the same way. Bounded: after the wait, one line
    says what to stop.
    """

    lock = StoreLock(settings.state_path, command)
    if lock.try_acquire():
        clear_handoff(settings)
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


def clear_handoff(settings: Any, only_dead: bool = False) -> None:
    """A request left by a cutover that died while waiting would keep every writer fenced for ever.

    `only_dead`: keep a request whose cutover is alive on this host (it gets the store after this run).
    """

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
