"""The daemon, `dbsync serve`: the scheduler and the status server, which no other command loads."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from dbsync.cli.common import EXIT_FAILED, EXIT_OK, hold_store, settings_for
from dbsync.context import open_context
from dbsync.errors import ConfigError
from dbsync.scheduler import Daemon
from dbsync.server import StatusServer


def cmd_serve(args: argparse.Namespace) -> int:

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
