"""Containers listed by need: a cycle's view of which are due, which it listed, which it took as last seen.

A container is what one listing call reads, and what changes when any object in it does: a directory of the
workspace tree (tree_schedule.py), a dashboard's schedules listing (dashboard_schedules.py). Each has its revisit
schedule in the store (`visits` under the listing's name, freshness.py for the arithmetic): a cycle lists the due
ones, takes the others' objects as last seen, and records when each listed one is due next once the kinds reading
the listing have recorded their outcomes. A container the cycle neither listed nor passed is gone: forgotten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from dbsync.context import SyncContext
from dbsync.freshness import LEAD_WINDOW


class ListedByNeed:
    """The schedule of one listing's containers, as this cycle reads it (keys: a path, a dashboard id)."""

    def __init__(self, ctx: SyncContext, listing: str, kinds: Iterable[str], cycle: float, cap: float) -> None:
        store = ctx.store
        self.listing = listing
        self.now = time.time()
        self.cycle = cycle  # the schedule's step: the kinds' min_revisit (freshness.py)
        self.cap = cap  # max_staleness
        # How long the kinds took of late, at the longest: a container is due that much earlier (freshness).
        self.lead = store.longest_cycles(kinds, self.now - LEAD_WINDOW)
        self.schedule = store.listing_schedule(listing)  # key → (next listing, last listing)
        self.digests = store.listing_digests(listing)
        # Listed this cycle → (changed, digest, when the changes found were made: freshness.after_read).
        self.listed: dict[str, tuple[bool, str, tuple[float, ...]]] = {}
        self.unlisted: dict[str, float] = {}  # taken as last seen → when it was last listed
        self._lock = threading.Lock()  # containers may be listed on a pool's threads

    def due(self, key: str) -> bool:
        """Never listed, or its next listing has come (an audit-log hint makes it come at once)."""
        known = self.schedule.get(key)
        return known is None or known[0] <= self.now

    def changed(self, key: str, digest: str) -> bool:
        """Whether a listing of the container with this digest differs from its last."""
        return self.digests.get(key) != digest

    def mark_listed(self, key: str, changed: bool, digest: str, times: tuple[float, ...] = ()) -> None:
        """The container was listed now (`changed`, its listing's digest, when its changes were made)."""
        with self._lock:
            self.listed[key] = (changed, digest, times)

    def mark_unlisted(self, key: str) -> None:
        """The container's objects are taken as last seen this cycle."""
        with self._lock:
            self.unlisted[key] = self.schedule[key][1]

    def oldest_listing(self) -> float:
        """When the least recently listed container of this cycle was listed."""
        return min(self.unlisted.values(), default=self.now)

    def record_next(self, ctx: SyncContext, by_rate: bool) -> None:
        """Main thread, once the kinds recorded their outcomes: the listed containers' next listing; those neither
        listed nor taken as last seen (gone from the source) are forgotten. `by_rate`: freshness.after_read."""
        walked = self.listed.keys() | self.unlisted.keys()
        gone = [key for key in self.schedule if key not in walked]
        ctx.store.record_listings(self.listing, self.listed, gone, self.now, self.cycle, self.cap, by_rate, self.lead)
