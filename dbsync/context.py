"""What a sync run works with: both workspaces, the store, the settings, id and principal maps."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, TypeVar

import httpx
from databricks.sdk.errors import PermissionDenied, Unauthenticated

from dbsync.config import Settings
from dbsync.declaration import CATALOGUE
from dbsync.errors import ConfigError, one_line
from dbsync.mapping import IdMap, PrincipalMap
from dbsync.model import Prior
from dbsync.profiles import workspace_host
from dbsync.role import MARKER_PATH, WriteFence, check_marker, ensure_markers, marker_refusal, read_marker
from dbsync.runcache import CacheKey, RunCache
from dbsync.store import Store
from dbsync.store.versions import Versions
from dbsync.workspace import Workspace, connect

T = TypeVar("T")
log = logging.getLogger("dbsync")
# Event outcomes logged as warnings: a failure, a hold, an object written in part or not at all, and an object synced
# with a note for a person (the engine records a synced object only then: a mapping to add, a library that failed on
# the source, a move the API cannot make). Those notes were all recorded `skipped` before, and logged as warnings.
# `unavailable`: the audit-log hints cannot be read (a grant to give), which was recorded `skipped` too.
WARNED_OUTCOMES = ("error", "held", "partial", "skipped", "synced", "unavailable")


@dataclass(frozen=True)
class Event:
    """One line of the store's event log."""

    kind: str | None
    key: str | None
    action: str
    outcome: str
    message: str


class EventQueue:
    """Events raised on worker threads, recorded by the thread that owns the store when it drains them."""

    def __init__(self) -> None:
        self._items: list[Event] = []
        self._lock = threading.Lock()
        self.owner: int | None = None  # the owning thread's ident while a cycle runs; None: record at once

    def put(self, event: Event) -> None:
        with self._lock:
            self._items.append(event)

    def take(self) -> list[Event]:
        """Every queued event, oldest first, emptying the queue."""
        with self._lock:
            items, self._items = self._items, []
        return items


class History:
    """What kinds may read of the store: the rows of earlier cycles (priors, target keys), never a write."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def prior(self, kind: str, key: str) -> Prior | None:
        return self._store.prior(kind, key)

    def priors(self, kind: str, payloads: bool = True, after: str = "") -> Iterator[Prior]:
        """The kind's live rows in key order (those after the key `after`)."""
        return self._store.priors(kind, payloads=payloads, after=after)

    def target_key(self, kind: str, source_key: str) -> str | None:
        return self._store.target_key(kind, source_key)

    def sweep_resume(self, kind: str) -> str | None:
        """The key the kind's last sweep stopped after at its time slice (None: start at the beginning)."""
        return self._store.sweep_resume(kind)

    def named(self, kind: str) -> list[tuple[str, float]]:
        """(key, last verified) of the kind's objects an audit-log hint named since they were last read: a sweep
        reads them first."""
        return self._store.named_visits(kind)

    def overdue(self, kind: str, until: float, limit: int) -> list[tuple[str, float, float]]:
        """(key, when due, revisit interval) of the kind's objects whose revisit comes before `until`, soonest first:
        a sweep's slice reads the overdue before it walks on, and beside its walk those due soon."""
        return self._store.overdue_visits(kind, until, limit)

    def owned_target_keys(self, target_keys: list[str]) -> set[str]:
        """Target keys a live row dbsync did not adopt points at: what dbsync put on the target."""
        return self._store.owned_target_keys(target_keys)


@dataclass
class SyncContext:
    """Handed to every watcher and replicator. `cached()` memoises per-run lookups under typed keys."""

    settings: Settings
    source: Workspace
    target: Workspace
    store: Store
    idmap: IdMap
    principals: PrincipalMap
    dry_run: bool = False
    # Set when a daemon started while the source did not answer (the store knew the pair): why, for /cutover-readyz.
    source_unreachable: str | None = None
    # Set by the engine during a cycle: listings read by need may take their unread parts from the store.
    by_need: bool = False
    # Set by the engine during a daemon's cycle: how long a listing read by need lists before it leaves the rest
    # of its due containers to the next cycle (the workspace tree's walk); None: it lists everything due.
    time_slice: float | None = None
    # Source keys each kind listed in this run: kinds derived from others (permissions) skip the rest.
    listed: dict[str, Container[str]] = field(default_factory=dict, repr=False)
    cache: RunCache = field(default_factory=RunCache, repr=False)
    history: History = field(init=False, repr=False)  # kinds read their rows here, not through `store`
    events: EventQueue = field(default_factory=EventQueue, repr=False)
    _versions: Versions | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.history = History(self.store)

    @property
    def versions(self) -> Versions:
        """Every version replicated (`<state_path>.versions/`): not `history`, the kinds' view of the store."""
        if self._versions is None:
            unkept = [name for name in CATALOGUE.names() if not CATALOGUE.declaration(name).versions]
            self._versions = Versions.for_state(self.settings.state_path, unkept)  # opened on first use
        return self._versions

    @classmethod
    def build(cls, settings: Settings, source: Workspace, target: Workspace, store: Store, **kw: Any) -> SyncContext:
        return cls(settings, source, target, store, IdMap(store), PrincipalMap(settings.mapping), **kw)

    def sibling(self) -> SyncContext:
        """For cycles on a second thread: the same workspaces (their request budgets and write fences), store and
        version history (both lock their writes), with run state of its own (caches, listed keys, id map, events).
        """
        twin = replace(self, idmap=IdMap(self.store), listed={}, cache=RunCache(), events=EventQueue())
        twin._versions = self.versions  # opens nothing: the history is opened on its first read or write
        return twin

    def cached(self, key: CacheKey[T], factory: Callable[[], T]) -> T:
        """Compute `factory()` once per run for `key`, even when many threads ask at once."""
        return self.cache.get(key, factory)

    def peek(self, key: CacheKey[T]) -> T | None:
        """What `cached()` holds for `key` this run, without computing it (None when nothing is held)."""
        return self.cache.peek(key)

    def invalidate(self, key: CacheKey[Any]) -> None:
        self.cache.invalidate(key)

    def new_run(self) -> None:
        """Forget per-run caches (listings, target indexes) before the next cycle."""
        self.cache.clear()
        self.listed = {}
        self.idmap = IdMap(self.store)

    def event(self, kind: str | None, key: str | None, action: str, outcome: str, message: str) -> None:
        """Log an event as one structured line and record it in the store (queued when raised on a worker)."""
        level = logging.WARNING if outcome in WARNED_OUTCOMES else logging.INFO
        log.log(level, message, extra={"kind": kind, "key": key, "action": action, "outcome": outcome})
        event = Event(kind, key, action, outcome, message)
        owner = self.events.owner
        if owner is not None and owner != threading.get_ident():
            self.events.put(event)  # a worker: the owning thread records it when it drains the queue
            return
        self.record_events()
        self.store.event(kind, key, action, outcome, message)

    def record_events(self) -> None:
        """Owning thread: record the events workers queued, in the order they were raised."""
        for event in self.events.take():
            self.store.event(event.kind, event.key, event.action, event.outcome, event.message)

    @contextmanager
    def owning_events(self) -> Iterator[None]:
        """While the block runs, the calling thread alone writes events: workers' events wait in the queue."""
        previous, self.events.owner = self.events.owner, threading.get_ident()
        try:
            yield
        except BaseException:
            self.events.owner = previous
            with suppress(Exception):  # the error that stopped the block is the one to report
                self.record_events()
            raise
        self.events.owner = previous
        self.record_events()


@cache
def _probe_client() -> httpx.Client:
    """One HTTP client for a process's probes: `httpx.get` built a client, a TLS context and a read of the CA bundle
    for each (~36 ms of CPU), twice for every run opened and once for each readiness probe of a daemon. No connection
    is kept between probes: each asks a host afresh whether it answers."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def probe_workspace(host: str, timeout: float) -> tuple[str, httpx.Response | httpx.HTTPError]:
    """(the workspace's URL, the answer to one unauthenticated GET of its host metadata, or the error)."""
    url = host if "://" in host else f"https://{host}"
    try:
        return url, _probe_client().get(url.rstrip("/") + "/.well-known/databricks-config", timeout=timeout)
    except httpx.HTTPError as err:
        return url, err


def preflight(side: str, host: str, timeout: float = 10.0) -> None:
    """Fail fast, with the fix, when a workspace host does not answer at all (the SDK would retry for minutes)."""

    url, answer = probe_workspace(host, timeout)
    if isinstance(answer, httpx.HTTPError):
        raise ConfigError(
            f"cannot reach the {side} workspace at {url}: {type(answer).__name__}: {answer}. "
            f"Check {side}.host and the network path to it."
        ) from None


def _known_source_if_down(settings: Settings, host: str) -> tuple[str | None, str | None]:
    """(the source's workspace id from the store, why) when the source does not answer now; (None, None) when it does.

    A daemon restarted during the disaster itself must come up and serve; a store that has never met its
    source cannot know what it would replicate, so without one the unreachable source stays fatal.
    """

    try:
        preflight("source", host)
        return None, None
    except ConfigError as unreachable:
        known = _stored_source_id(settings)
        if known is None:
            raise
        log.warning("%s; starting anyway: the store knows the pair, cycles retry the source", unreachable)
        return known, f"the source did not answer when the daemon started ({unreachable}); nothing replicated since"


def _stored_source_id(settings: Settings) -> str | None:
    if not settings.state_path.exists():
        return None
    store = Store(settings.state_path)
    try:
        return store.get_meta("source_workspace_id")
    finally:
        store.close()


def check_auth(side: str, ws: Workspace) -> None:
    """One cheap authenticated call (who am I): a refused token is one line at start, not an error per kind.

    A bad PAT answers 401 or 403 (`Invalid access token`) on every endpoint; without this check each kind's
    listing failed with the SDK's config dump, and a wrong target token left `plan` and `validate` saying
    nothing about it.
    """

    try:
        ws.client.current_user.me()
    except (Unauthenticated, PermissionDenied) as err:
        reason = one_line(err).strip().rstrip(".")
        raise ConfigError(
            f"the {side} workspace at {ws.host} refused dbsync's credentials ({reason}): set a valid personal "
            f"access token in DBSYNC_{side.upper()}__TOKEN or {side}.token, or fix {side}.profile"
        ) from None


def open_context(
    settings: Settings, check_hosts: bool = True, writer: bool = True, source_may_be_down: bool = False, **kw: Any
) -> SyncContext:
    """Connect both sides, open the store and bind it to this source → target pair.

    A `writer` (sync, serve) also checks the target's role marker (refusing a promoted primary), writes
    missing markers, and fences the target: every write asks first (dbsync/role.py).
    `source_may_be_down` (the daemon): a source that does not answer at start is not fatal when the store
    already knows the pair; the daemon serves what the standby holds, and its cycles list the source again.
    """

    sides = {}
    down_source_id, unreachable = None, None
    for side in ("source", "target"):
        ws_settings = getattr(settings, side)
        host = workspace_host(side, ws_settings)
        if side == "source" and source_may_be_down:
            down_source_id, unreachable = _known_source_if_down(settings, host)
        elif check_hosts:
            preflight(side, host)
        down = side == "source" and down_source_id is not None
        sides[side] = connect(
            side,
            ws_settings,
            retry_timeout_seconds=settings.retry_timeout_seconds,
            concurrency=settings.concurrency,
            probe_timeout_seconds=1 if down else None,
        )
        if not down:
            check_auth(side, sides[side])
    source_id = down_source_id or sides["source"].workspace_id()
    target_id = sides["target"].workspace_id()
    if source_id == target_id and sides["source"].host == sides["target"].host:
        raise ConfigError("source and target are the same workspace: set target.host to the standby workspace")
    store = Store(settings.state_path)
    try:
        fresh = store.bind_pair(source_id, target_id)
        ctx = SyncContext.build(settings, sides["source"], sides["target"], store, **kw)
        ctx.source_unreachable = unreachable
        if writer and not ctx.dry_run:
            fence_target(ctx, source_id, target_id, fresh)
    except BaseException:
        store.close()
        raise
    return ctx


def fence_target(ctx: SyncContext, source_id: str, target_id: str, fresh: bool) -> None:
    """Fence every write to the target; a store bound just now (new or lost) first reads the target's marker.

    A fresh store refuses at once, in one line, a target whose marker says it is a primary. Every fence
    writes the pair's missing markers before its first write (one read of the target's, once per process): a
    store first bound by `plan` or `validate` has no fresh writer, and its pair would stay unmarked. A
    store that knows its pair costs no call here: the fence reads the target's marker before its first
    write (and every MARKER_TTL_SECONDS of writing).
    """

    if fresh:
        check_marker(ctx.target, source_id, target_id)

    def marker_check() -> str | None:
        try:
            return marker_refusal(read_marker(ctx.target), source_id, target_id)
        except Exception as err:
            # Refused, not allowed: a store copy taken before a cutover wrote into the new primary while
            # its marker's GET answered 500. A missing marker (404) is read as None above and may write.
            why = one_line(err) if isinstance(err, ConfigError) else f"cannot read {MARKER_PATH}: {one_line(err)}"
            log.warning("%s", why)
            return f"{why}; nothing is written to a target whose role is unknown (the next cycle reads it again)"

    def first_write() -> None:
        ensure_markers(ctx.source, ctx.target, source_id, target_id)

    ctx.target.fence = WriteFence(ctx.store.writer_flags, marker_check, first_write)


@contextmanager
def target_fenced(ctx: SyncContext) -> Iterator[None]:
    """The normal target fence around one block of a command that otherwise writes unfenced (the cutover's
    final sync): a replication cycle never writes into a target whose marker says it is not our standby."""

    previous = ctx.target.fence
    source_id = ctx.store.get_meta("source_workspace_id") or ""
    target_id = ctx.store.get_meta("target_workspace_id") or ""
    fence_target(ctx, source_id, target_id, fresh=False)
    try:
        yield
    finally:
        ctx.target.fence = previous
