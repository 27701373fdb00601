"""The watcher contract: read one kind from a workspace (the source, or the target for validation)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from databricks.sdk.errors import NotFound

from dbsync.declaration import Declaration
from dbsync.errors import ConfigError, DbsyncError, ListingError, StoreError, one_line
from dbsync.model import Resource

if TYPE_CHECKING:
    from dbsync.context import SyncContext
    from dbsync.workspace import Workspace

T = TypeVar("T")


class Watcher(ABC):
    """Lists a kind cheaply and fetches full, normalized payloads only for what changed."""

    kind: str
    # Permissions API request type for this kind's objects ("jobs", "notebooks", ...), if any.
    acl_type: str | None = None
    # Whether listing the target reveals edits made there (drift). Kinds without a cheap target
    # listing (permissions: one GET per object) opt out.
    drift_check: bool = True
    # What the kind declares about itself (interval, warehouse, shared listing, UI link ...): the defaults fit
    # a kind listed on both sides and written by its replicator.
    declaration: Declaration = Declaration()

    @abstractmethod
    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        """Stubs (key, name, version_hint) of every object of the kind in `ws`.

        Raises ListingError (never returns a short listing) when the workspace cannot be read.
        """

    @abstractmethod
    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        """The stub completed with its normalized payload (what is fingerprinted and written)."""

    def forget_target_listing(self, ctx: SyncContext) -> None:
        """Drop a target listing cached earlier in the run, so the drift check sees this kind's own writes.

        Called before the drift check of a kind that wrote this cycle: a baseline taken from a listing
        made before the write would make dbsync's own write look like a hand edit next cycle.
        """
        return None  # most kinds list the target afresh for the drift check

    def release_listing(self, ctx: SyncContext) -> None:
        """Free a listing shared with other kinds (`declaration.shared_listing`) once the last of them is done."""
        return None  # most kinds keep no listing beyond their own cycle

    def listing_cut(self, ctx: SyncContext) -> bool:
        """Whether this run's shared listing stopped at the time slice with containers still due (listed next run)."""
        return False  # most kinds list what is due whole

    # Its listing starts after the key where the last cycle stopped at its time slice (`History.sweep_resume`), so
    # the daemon may stop it there (revisit.sweep_ends); a listing that always starts at the beginning may not.
    resumes_sweep = False

    def as_last_seen(self, ctx: SyncContext, stub: Resource) -> bool:
        """Whether this run's listing took the stub from the store, its container not read (listed by need)."""
        return False  # most kinds read their whole listing every cycle

    def prefetch(self, ctx: SyncContext, ws: Workspace) -> bool:
        """Read this run's listing of `ws` into the run's cache now (raising ListingError as `list` would), if the
        watcher keeps one: True when `list` will then make its stubs from that cache, with no request."""
        return False  # most kinds' listings are read ahead as stubs

    def target_listed_by_need(self, ctx: SyncContext) -> bool:
        """Whether this run's target listing covers only the objects whose container the source listed now.

        Then it is not read ahead of the source listing, and the drift check skips the objects `as_last_seen`.
        """
        return False  # most kinds list the whole target

    def listed_since(self, ctx: SyncContext) -> float | None:
        """When the oldest part of this run's listing was read, when part was taken as last seen (None: none was)."""
        return None

    def manual_actions(self, ctx: SyncContext) -> list[dict[str, str]]:
        """What a person must do for this kind ({kind, key, action}), beside readiness; none by default."""
        return []

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]] | None:
        """(key, name, raw object) of each object in `ws`, for kinds whose raw listing shows dbsync's tags.

        The report reads these on the target to find two copies of one source object; None (the default)
        when the kind has no such listing, and the report then uses `list()`.
        """
        return None

    def parent(self, stub: Resource) -> tuple[str, str] | None:
        """(kind, key) of the object `stub` belongs to, for kinds read by need: its write makes `stub` due now."""
        return None  # most kinds stand alone

    def acl_object_id(self, ctx: SyncContext, ws: Workspace, key: str, meta: dict) -> str | None:
        """The id the permissions API uses for the object `key` of `ws` (the key itself by default).

        `meta` is the source_meta the store kept for it (a notebook's source object_id, say).
        """
        return key

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """Whether the object `key`, missing from this cycle's whole listing of `ws`, is there all the same.

        Asked once for each delete the planner let through, just before it is made (dbsync/deletes.py): a listing
        read page by page by offset (SCIM's startIndex, the jobs listing) skips an object when another one is
        deleted between two of its pages, and the delete guard lets one such delete through. A kind with a cheap
        read of one object (a GET, one SQL statement) answers with it: True when the object answers, and when the
        read fails otherwise than "not found" (cannot tell: the delete waits). False by default: the listing is
        trusted, as for kinds whose listing is one answer, or confirms its 404s itself (the workspace tree's
        `_still_there`, the secret scopes' `_scope_still_there`), or whose objects have no cheap read.
        """
        return False

    def in_scope(self, ctx: SyncContext, key: str) -> bool:
        """Whether this kind's own settings still cover `key` (beside the include / exclude globs).

        A key the configuration no longer covers (a catalog taken out of `metastore.catalogs`) is out of scope:
        not listed any more, and never a delete, since it was not deleted on the source. True by default.
        """
        return True

    def restored(self, ctx: SyncContext, resource: Resource) -> Resource:
        """A kept version about to be written again by `dbsync restore`: what names the target as it is now.

        The payload is the replicator's input, so a kind whose payload holds a target id refreshes it here.
        """
        return resource


def listing(watcher: Watcher, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
    """`watcher.list()`, with any failure (an API error, a reset connection, an HTML page) as a ListingError.

    A listing either ends normally or fails as a whole: never a short listing, never a crash of the run.
    Config and store errors keep their meaning (they stop the run with their own message).
    """
    with listing_errors(watcher, ws):
        yield from watcher.list(ctx, ws)


@contextmanager
def listing_errors(watcher: Watcher, ws: Workspace) -> Iterator[None]:
    """Any failure inside (an API error, a reset connection, an HTML page) as the kind's ListingError."""
    try:
        yield
    except (ListingError, ConfigError, StoreError):
        raise
    except Exception as err:
        raise ListingError(f"{ws.side}: cannot list {watcher.kind}: {describe(err)}") from err


def answers(read: Callable[[], T], gone: Callable[[T], bool] | None = None) -> bool:
    """Whether one read of an object finds it: False on "not found", and when `gone` says the answer is an object the
    service keeps after its delete (a query in the trash, an experiment in lifecycle stage "deleted"); any other
    failure cannot tell (True)."""
    try:
        found = read()
    except NotFound:
        return False
    except Exception:  # a 5xx, a reset connection, a refused statement: not a proof the object is gone
        return True
    return gone is None or not gone(found)


def describe(err: BaseException) -> str:
    """`Type: message` of an error, and of its cause (the SDK's TimeoutError hides the reset connection)."""
    text = f"{type(err).__name__}: {one_line(err, 300)}"
    cause = err.__cause__
    if cause is not None and not isinstance(err, DbsyncError):
        text += f" (after {type(cause).__name__}: {one_line(cause, 300)})"
    return text
