"""The daemon, `dbsync serve`: the scheduler and the status server, which no other command loads."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import threading

from dbsync.cli.common import EXIT_FAILED, EXIT_OK, hold_store, settings_for
from dbsync.context import open_context
from dbsync.errors import ConfigError
from dbsync.scheduler import Daemon
from dbsync.server import StatusServer

M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Two glibc malloc arenas for the daemon's threads, unless MALLOC_ARENA_MAX says otherwise; whether set.

    glibc gives threads that allocate at the same time arenas of their own (up to 8 per core), and each keeps
    what it freed. The daemon runs five workers, each with a pool of fetch threads, which allocate under the GIL
    anyway. At 30,000 objects under a budget, two arenas took the daemon's RSS from 143 to 135 MB at its peak
    (benchmarks/steady_state.py). Not glibc (musl has no per-thread arenas): nothing to do.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # the operator's choice
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS))


def cmd_serve(args: argparse.Namespace) -> int:
    limit_malloc_arenas()  # before the workers' threads exist
    settings = settings_for(args)
    lock = hold_store(settings, "serve")  # held until exit; handed to a `dbsync cutover` that asks (Daemon.poll)
    try:
        ctx = open_context(settings, source_may_be_down=True)  # a restart during a source outage still serves
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
