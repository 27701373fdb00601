"""One writer per store: an exclusive `flock` on `<store file>.lock` (symlinks resolved), held for the whole process.

The operating system drops the lock when the process ends, `kill -9` included, so a crash never leaves
a stale lock to clean up. The holder writes who it is (pid, command, host, since) into the lock file, so
a refused second process can name it in one line.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbsync.errors import StoreError

POLL_SECONDS = 0.2


class StoreBusy(StoreError):
    """Another dbsync process holds the store (exit 2); `holder` says which."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def lock_path(state_path: str | Path) -> Path:
    """`<store file>.lock`: beside the store, on the same volume, named from the file the path resolves to.

    Named from the path as written, a symlink to the store, a relative path or `dir/../state.db` gave a second
    process a lock file of its own, and two writers on one store."""
    return Path(f"{os.path.realpath(state_path)}.lock")


def describe(holder: dict[str, Any]) -> str:
    """`dbsync serve` (pid 42 on host dr-0 since 2026-12-04T23:40:01Z)."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(holder.get("since") or 0)) if holder else "?"
    return (
        f"`dbsync {holder.get('command', '?')}` (pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"since {since})"
    )


class StoreLock:
    """The exclusive lock of one store. `acquire()` refuses or waits; `release()` hands the store on."""

    def __init__(self, state_path: str | Path, command: str) -> None:
        self.path = lock_path(state_path)
        self.command = command
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def holder(self) -> dict[str, Any]:
        """Who holds (or last held) the lock, as written in the lock file; {} when unknown."""
        try:
            document = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def try_acquire(self) -> bool:
        """Take the lock if it is free; write who we are into the lock file."""
        if self.fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise StoreError(
                f"state store {self.path.with_suffix('')}: cannot open its lock file {self.path} ({err.strerror}): "
                "the directory is read-only or missing; make it writable by this user"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.fchmod(fd, 0o600)
        me = {"pid": os.getpid(), "command": self.command, "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self.fd = fd
        return True

    def acquire(
        self,
        wait_seconds: float = 0.0,
        waiting: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Take the lock, waiting up to `wait_seconds`; StoreBusy naming the holder when it stays taken."""
        deadline = clock() + wait_seconds
        told = False
        while not self.try_acquire():
            holder = self.holder()
            if clock() >= deadline:
                raise StoreBusy(
                    f"state store {self.path.with_suffix('')} is in use by {describe(holder)}: one dbsync writes "
                    "to a store at a time; stop it first (`dbsync cutover` takes over from a running daemon by itself)",
                    holder,
                )
            if waiting is not None and not told:
                waiting(holder)
                told = True
            sleep(POLL_SECONDS)

    def release(self) -> None:
        """Let the next process take the store (the OS does the same when this one dies)."""
        if self.fd is None:
            return
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
