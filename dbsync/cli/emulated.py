"""The two commands that run the emulator, `emulator` and `demo`, and the product's one way to reach it.

`dbsync_emulator` is a package of its own: the wheel ships it (so `pip install . && dbsync demo` works on a fresh
machine), the container image does not. Nothing else in `dbsync` imports it (an import-linter contract says so).
"""

from __future__ import annotations

import argparse
import gc
import signal
import threading
from types import ModuleType

from dbsync.cli.common import EXIT_OK
from dbsync.cli.demo import run_demo
from dbsync.errors import ConfigError

NO_EMULATOR = (
    "this install has no emulator (the container image ships without it): "
    "install dbsync from its repository (`pip install .`) to run `dbsync demo` or `dbsync emulator`"
)


def load_emulator() -> ModuleType:
    """The `dbsync_emulator` package, or a one-line ConfigError (exit 2) where it is not installed."""
    try:
        import dbsync_emulator  # lazy on purpose: the image has no emulator, and every other command runs without it
    except ModuleNotFoundError as err:
        if err.name != "dbsync_emulator":
            raise
        raise ConfigError(NO_EMULATOR) from None
    return dbsync_emulator


def cmd_emulator(args: argparse.Namespace) -> int:
    if args.time_scale <= 0 or args.run_seconds < 0:
        raise ConfigError("--time-scale must be above 0 and --run-seconds 0 or more: pass e.g. --time-scale 0.1")
    emulator = load_emulator()
    try:
        handle = emulator.start_emulator(
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
            audit_delay_seconds=args.audit_delay_seconds,
        )
    except OSError as err:
        raise ConfigError(f"cannot bind {args.host}:{args.port}: {err.strerror}") from None
    if args.allow_secrets_get:
        with handle.workspace.lock:
            handle.workspace.table("settings")["secrets_get_allowed"] = True
    # The seeded workspace lives as long as the process: out of the collector's sight, a full collection no longer
    # walks it (100,000 objects: 336 ms a collection before, ~0 after). Such a pause stamped the requests that came
    # in meanwhile with the next second, as a service's edge never would: a client's pace looked bursty.
    gc.freeze()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"dbsync emulator serving {handle.url} (workspace {handle.workspace.workspace_id})", flush=True)
    while not stop.wait(0.5):
        pass
    handle.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(load_emulator())
