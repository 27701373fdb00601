"""Source listings of a cycle's independent kinds, read ahead of their turn, a few at a time.

Dependency order matters for writes, not for reads: the engine diffs, fetches, applies and records each kind's
stubs in dependency order on its own thread as before; only the listing moves earlier. One slow listing (a
warehouse waking up, a big tree) then no longer holds the listings of the kinds behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from dbsync.context import SyncContext
from dbsync.model import Resource
from dbsync.registry import Kind
from dbsync.watchers.base import listing


class ListingsAhead:
    """The source listings of the selected kinds, read `listing_concurrency` at a time from the cycle's start.

    A kind whose listing reads what earlier kinds recorded in this run (`declaration.listed_in_turn`) is listed
    in its turn. A failed listing fails when its turn comes, as the ListingError it would have raised then.
    The stubs (key, name, version hint) of a listing read ahead are held until its turn, so at most
    `listing_concurrency` listings are read or held ahead at a time: when one is taken the next is started
    (all of them at once held ~150 MB of stubs at 100,000 objects).
    """

    def __init__(self, ctx: SyncContext, selected: list[Kind]) -> None:
        self.ctx = ctx
        workers = ctx.settings.listing_concurrency
        self.early = [k for k in selected if not k.declaration.listed_in_turn] if workers > 1 else []
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="list") if len(self.early) > 1 else None
        self.reads: dict[str, Future[list[Resource]]] = {}
        self.waiting: list[Kind] = []  # kinds to read ahead, in their order, not started yet

    def __enter__(self) -> ListingsAhead:
        if self.pool is not None:
            self.waiting = list(self.early)
            for _ in range(self.ctx.settings.listing_concurrency):
                self._start_next()
        return self

    def _start_next(self) -> None:
        if self.waiting and self.pool is not None:
            kind = self.waiting.pop(0)
            self.reads[kind.name] = self.pool.submit(_read, kind, self.ctx, self.ctx.source)

    def listing(self, kind: Kind) -> Iterable[Resource]:
        """The kind's source listing: the one read ahead, else read now (a failure raises ListingError either way)."""
        read = self.reads.pop(kind.name, None)
        if read is None:
            self.waiting = [k for k in self.waiting if k.name != kind.name]  # its turn came first: read it now
            return listing(kind.watcher, self.ctx, self.ctx.source)
        self._start_next()  # one held listing taken: the window moves on by one
        return read.result()

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)  # a stopped cycle drops the listings not started
        self.reads.clear()
        self.waiting = []


def _read(kind: Kind, ctx: SyncContext, ws: Any) -> list[Resource]:
    """A whole listing, read on a listing thread: it ends normally or raises ListingError."""
    return list(listing(kind.watcher, ctx, ws))
