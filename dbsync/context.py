"""What a sync run works with: both workspaces, the store, the settings, id and principal maps."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dbsync.config import Settings
from dbsync.mapping import IdMap, PrincipalMap
from dbsync.store import Store
from dbsync.workspace import Workspace

T = TypeVar("T")
log = logging.getLogger("dbsync")


@dataclass
class SyncContext:
    """Handed to every watcher and replicator. `cached()` memoises per-run lookups (a target index)."""

    settings: Settings
    source: Workspace
    target: Workspace
    store: Store
    idmap: IdMap
    principals: PrincipalMap
    standby: bool = True
    dry_run: bool = False
    # Source keys each kind listed in this run: kinds derived from others (permissions) skip the rest.
    listed: dict[str, Container[str]] = field(default_factory=dict, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, settings: Settings, source: Workspace, target: Workspace, store: Store, **kw: Any) -> SyncContext:
        return cls(settings, source, target, store, IdMap(store), PrincipalMap(settings.mapping), **kw)

    def cached(self, key: str, factory: Callable[[], T]) -> T:
        """Compute `factory()` once per run for `key`, even when many threads ask at once."""
        with self._guard:
            if key in self._cache:
                return self._cache[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._cache:
                    return self._cache[key]
            value = factory()
            with self._guard:
                self._cache[key] = value
            return value

    def peek(self, key: str) -> Any | None:
        """What `cached()` holds for `key` this run, without computing it (None when nothing is held)."""
        with self._guard:
            return self._cache.get(key)

    def invalidate(self, key: str) -> None:
        with self._guard:
            self._cache.pop(key, None)

    def new_run(self) -> None:
        """Forget per-run caches (listings, target indexes) before the next cycle."""
        with self._guard:
            self._cache.clear()
            self._locks.clear()
        self.listed = {}
        self.idmap = IdMap(self.store)

    def event(self, kind: str | None, key: str | None, action: str, outcome: str, message: str) -> None:
        """Record an event in the store and log it as one structured line."""
        self.store.event(kind, key, action, outcome, message)
        level = logging.WARNING if outcome in ("error", "skipped", "held") else logging.INFO
        log.log(level, message, extra={"kind": kind, "key": key, "action": action, "outcome": outcome})


def preflight(side: str, host: str, timeout: float = 10.0) -> None:
    """Fail fast, with the fix, when a workspace host does not answer at all (the SDK would retry for minutes)."""
    import httpx

    from dbsync.errors import ConfigError

    url = host if "://" in host else f"https://{host}"
    try:
        httpx.get(url.rstrip("/") + "/.well-known/databricks-config", timeout=timeout)
    except httpx.HTTPError as err:
        raise ConfigError(
            f"cannot reach the {side} workspace at {url}: {type(err).__name__}: {err}. "
            f"Check {side}.host and the network path to it."
        ) from None


def check_auth(side: str, ws: Workspace) -> None:
    """One cheap authenticated call (who am I): a refused token is one line at start, not an error per kind.

    A bad PAT answers 401 or 403 (`Invalid access token`) on every endpoint; without this check each kind's
    listing failed with the SDK's config dump, and a wrong target token left `plan` and `validate` saying
    nothing about it.
    """
    from databricks.sdk.errors import PermissionDenied, Unauthenticated

    from dbsync.errors import ConfigError

    try:
        ws.client.current_user.me()
    except (Unauthenticated, PermissionDenied) as err:
        reason = str(err).split(" Config: ")[0].strip().rstrip(".")
        raise ConfigError(
            f"the {side} workspace at {ws.host} refused dbsync's credentials ({reason}): set a valid personal "
            f"access token in DBSYNC_{side.upper()}__TOKEN or {side}.token, or fix {side}.profile"
        ) from None


def open_context(settings: Settings, check_hosts: bool = True, **kw: Any) -> SyncContext:
    """Connect both sides, open the store and bind it to this source → target pair."""
    from dbsync.config import profile_host
    from dbsync.errors import ConfigError
    from dbsync.workspace import connect

    sides = {}
    for side in ("source", "target"):
        ws_settings = getattr(settings, side)
        host = profile_host(side, ws_settings) if ws_settings.profile else ws_settings.host or ""
        if check_hosts:
            preflight(side, host)
        sides[side] = connect(
            side,
            ws_settings,
            retry_timeout_seconds=settings.retry_timeout_seconds,
            concurrency=settings.concurrency,
        )
        check_auth(side, sides[side])
    source_id, target_id = sides["source"].workspace_id(), sides["target"].workspace_id()
    if source_id == target_id and sides["source"].host == sides["target"].host:
        raise ConfigError("source and target are the same workspace: set target.host to the standby workspace")
    store = Store(settings.state_path)
    store.bind_pair(source_id, target_id)
    return SyncContext.build(settings, sides["source"], sides["target"], store, **kw)
