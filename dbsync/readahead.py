"""Source listings of a cycle's independent kinds, read ahead of their turn, a few at a time.

Dependency order matters for writes, not for reads: the engine diffs, fetches, applies and records each kind's
stubs in dependency order on its own thread as before; only the listing moves earlier. One slow listing (a
warehouse waking up, a big tree) then no longer holds the listings of the kinds behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from dbsync.context import SyncContext
from dbsync.model import Resource
from dbsync.registry import Kind
from dbsync.watchers.base import Watcher, listing, listing_errors

TargetView = dict[str, str | None]  # key -> version hint: what a drift check compares


class ListingsAhead:
    """The source listings of the selected kinds, read `listing_concurrency` at a time from the cycle's start.

    A kind whose listing reads what earlier kinds recorded in this run (`declaration.listed_in_turn`) is listed
    in its turn. A failed listing fails when its turn comes, as the ListingError it would have raised then.
    The stubs (key, name, version hint) of a listing read ahead are held until its turn, so at most
    `listing_concurrency` source listings (and as many of the drift check's target ones) are read or held
    ahead at a time: when one is taken the next is started (all of them at once: +38 MB peak RSS at 30,000 objects).
    """

    def __init__(self, ctx: SyncContext, selected: list[Kind], drift: bool = False) -> None:
        self.ctx = ctx
        workers = ctx.settings.listing_concurrency
        self.early = [k for k in selected if not k.declaration.listed_in_turn] if workers > 1 else []
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="list") if len(self.early) > 1 else None
        self.reads: dict[str, Future[Iterable[Resource]]] = {}
        # The drift check's target listings too, after every source listing (those are on the critical path)
        self.drift = [k for k in self.early if _drift_ahead(k, ctx)] if drift else []
        self.target_reads: dict[str, Future[Iterable[Resource] | TargetView]] = {}
        self.waiting: list[tuple[Kind, str]] = []  # (kind, side) to read ahead, in their order, not started yet

    def __enter__(self) -> ListingsAhead:
        if self.pool is not None:
            self.waiting = [(k, "source") for k in self.early] + [(k, "target") for k in self.drift]
            self._fill()
        return self

    def _fill(self) -> None:
        """Start listings ahead until `listing_concurrency` of each side's are being read or held."""
        window = self.ctx.settings.listing_concurrency
        for kind, side in list(self.waiting):
            reads, ws = (self.reads, self.ctx.source) if side == "source" else (self.target_reads, self.ctx.target)
            if self.pool is not None and len(reads) < window:
                self.waiting.remove((kind, side))
                held = list if side == "source" else target_view  # the drift check compares only the hints
                reads[kind.name] = self.pool.submit(_read, kind, self.ctx, ws, held)

    def _not_ahead(self, kind: Kind, side: str) -> None:
        """Its turn came before its read ahead started: it is read now, not ahead."""
        self.waiting = [(k, s) for k, s in self.waiting if (k.name, s) != (kind.name, side)]

    def listing(self, kind: Kind) -> Iterable[Resource]:
        """The kind's source listing: the one read ahead, else read now (a failure raises ListingError either way)."""
        read = self.reads.pop(kind.name, None)
        if read is None:
            self._not_ahead(kind, "source")
            return listing(kind.watcher, self.ctx, self.ctx.source)
        self._fill()  # one held listing taken: the window moves on by one
        return read.result()

    def target_listing(self, kind: Kind, written: bool) -> Callable[[], TargetView] | None:
        """The kind's target listing read ahead, for its drift check (its view made when called, a failed listing
        raising its ListingError there, inside the caller's handler); None: list the target now.

        Used only while nothing was written this cycle (by this kind or an earlier one). At the first write they
        are all dropped, and this returns once those running have ended: a listing begun before the writes (or
        one filling a cache that a listing now reads) never becomes the baseline of what dbsync wrote.
        """
        if written:
            reads, self.target_reads = list(self.target_reads.values()), {}
            self.waiting = [(k, side) for k, side in self.waiting if side == "source"]
            wait([read for read in reads if not read.cancel()])
            self._fill()
            return None
        read = self.target_reads.pop(kind.name, None)
        if read is None:
            self._not_ahead(kind, "target")
            return None
        self._fill()
        return partial(_view, read)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)  # a stopped cycle drops the listings not started
        self.reads.clear()
        self.target_reads.clear()
        self.waiting = []


def _read(kind: Kind, ctx: SyncContext, ws: Any, held: Callable[[Iterable[Resource]], Any] = list) -> Any:
    """A whole listing, read on a listing thread: it ends normally or raises ListingError. `held`: what is kept of
    it until its turn (the stubs; a drift check's target listing only its TargetView, not every object's payload).

    A watcher that keeps its listing in the run's cache (the workspace tree, in columns) only reads it here; its
    stubs are made when the kind's turn comes. Held as stubs, 60,000 notebooks read ahead on both sides were
    ~70 MB of a 100,000-object sync's peak RSS.
    """
    with listing_errors(kind.watcher, ws):
        if kind.watcher.prefetch(ctx, ws):
            return _Later(kind, ctx, ws)
    return held(listing(kind.watcher, ctx, ws))


class _Later:
    """A listing whose I/O is done and cached: iterated (its stubs made) when consumed."""

    def __init__(self, kind: Kind, ctx: SyncContext, ws: Any) -> None:
        self.kind, self.ctx, self.ws = kind, ctx, ws

    def __iter__(self) -> Iterator[Resource]:
        return listing(self.kind.watcher, self.ctx, self.ws)


def target_view(rows: Iterable[Resource]) -> TargetView:
    """What a drift check compares of a target listing: each object's version hint by key."""
    return {r.key: r.version_hint for r in rows}


def _view(read: Future[Any]) -> TargetView:
    """A target listing read ahead as its view, raising its ListingError where it is called."""
    result = read.result()
    return result if isinstance(result, dict) else target_view(result)


def _drift_ahead(kind: Kind, ctx: SyncContext) -> bool:
    """Whether the kind's drift check takes a target listing that can be read at the cycle's start."""
    return kind.watcher.drift_check and _refreshes(kind) and not kind.watcher.target_listed_by_need(ctx)


def _refreshes(kind: Kind) -> bool:
    """Whether the kind's watcher refreshes a target listing taken before its own writes (forget_target_listing).

    A listing read ahead fills the run's caches at the cycle's start; a kind whose watcher keeps the default
    (nothing to forget: it lists afresh) may cache a listing all the same, which would then predate its writes.
    """
    return type(kind.watcher).forget_target_listing is not Watcher.forget_target_listing
