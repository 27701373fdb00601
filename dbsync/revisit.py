"""Revisit by need: which unchanged objects a cycle reads, their next visit, and the kind's staleness.

A kind whose listing has no version hint (object ACLs) would read every object every cycle. With a
`max_staleness` (its Declaration's freshness, or `kinds.<kind>.max_staleness`) an object is read when its
revisit is due (dbsync/freshness.py), when its parent was written since (an ACL's notebook), or when an
audit-log hint named it (dbsync/hints.py); the others keep the status they were last verified with.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dbsync import metrics
from dbsync.config import Settings
from dbsync.context import SyncContext
from dbsync.model import OVERDUE, Prior, Resource
from dbsync.pacing import HEADROOM
from dbsync.registry import Kind

log = logging.getLogger(__name__)
# The share of the paced source budget the schedule of the kinds read by need may ask before the daemon says it
# cannot keep them: the kinds listed whole, writes and retries draw on the same budget.
NEED_WARNING_SHARE = 2 / 3

# Statuses whose last verification stands until the object's revisit is due (the others are retried or applied).
SETTLED = ("synced", "drifted", "partial", "skipped")


class DueCheck:
    """Which unchanged objects of a kind read by need a cycle leaves as last verified (`not_due`).

    The visits of a window of the listing (and when their parents were last written) are read in two queries
    (`window`, called by the engine before the window's objects): a query per object was ~0.5 ms each, most
    of a 100,000-ACL sweep's cycle, holding the GIL from the cycle on the other worker.
    """

    def __init__(self, ctx: SyncContext, kind: Kind) -> None:
        self.ctx, self.kind = ctx, kind
        self.by_need = ctx.settings.max_staleness(kind.name) > 0
        self.visits: dict[str, tuple[float, float]] = {}
        self.written: dict[tuple[str, str], float] = {}

    def window(self, stubs: list[Resource]) -> None:
        if not self.by_need:
            return
        store = self.ctx.store
        self.visits = store.visits_of(self.kind.name, [stub.key for stub in stubs])
        parents: dict[str, list[str]] = {}
        for stub in stubs:
            parent = self.kind.watcher.parent(stub)
            if parent is not None:
                parents.setdefault(parent[0], []).append(parent[1])
        self.written = {
            (parent_kind, key): at
            for parent_kind, keys in parents.items()
            for key, at in store.synced_at_of(parent_kind, keys).items()
        }

    def not_due(self, stub: Resource, prior: Prior | None) -> bool:
        """An unchanged object whose revisit has not come: left as last verified."""
        if self.kind.watcher.as_last_seen(self.ctx, stub):  # its directory was not listed: as last verified
            return prior is not None and prior.status in SETTLED
        if stub.version_hint is not None or prior is None or prior.status not in SETTLED or not self.by_need:
            return False
        if stub.out_of_turn == OVERDUE:
            return False  # the sweep took it from the schedule: overdue, or due soon and read ahead (permissions.py)
        visit = self.visits.get(stub.key)
        if visit is None:
            return False  # never read
        due_at, verified_at = visit
        parent = self.kind.watcher.parent(stub)
        written = self.written.get(parent) if parent is not None else None
        return not (due_at <= time.time() or (written is not None and written > verified_at))


def sweep_ends(kind: Kind, deadline: float | None, held: bool = False) -> bool:
    """A sweep whose listing resumes (the ACLs: `Watcher.resumes_sweep`) stops listing when its time slice is used up,
    or once it holds an update for the edit-storm guard (`held`).

    The rest of its objects are the next turn's (the daemon queues one at once). Listing on to the end only to
    leave each object due cost a store query per object: at 100,000 ACLs, ~50 s of every 107 s cycle, holding the
    GIL from the cycle on the other worker. No deletes are planned from the part of a listing read. A held update
    is written when its cycle ends: an ACL edit the audit log named waited for the rest of a 60 s slice (RPO with
    hints: p99 160 s, goal 120 s). The reads in flight still count for the guard.
    """
    if deadline is None or not kind.watcher.resumes_sweep:
        return False  # not sliced (`sync --once`, the cutover's final sync): every object is read
    return held or time.monotonic() >= deadline


def beyond_slice(ctx: SyncContext, kind: Kind, stub: Resource, prior: Prior | None, deadline: float | None) -> bool:
    """A revisit of an unchanged object after the cycle's time slice: left due, so other kinds get their turn.

    Only revisits wait: a changed object (a new version in the listing, or one never replicated) is read now.
    At 100,000 objects under a budget, one permissions cycle read ACLs for minutes while every other kind waited.
    """
    if deadline is None or time.monotonic() < deadline:
        return False
    if stub.version_hint is not None or prior is None or prior.status not in SETTLED:
        return False
    return ctx.settings.max_staleness(kind.name) > 0


def visited(ctx: SyncContext, kind: Kind, reads: list[tuple[Resource, bool]]) -> None:
    """Schedule the next read of objects of a kind read by need, each (object, changed): sooner when it changed.

    Due two cycles before its interval ends (freshness.next_visit): the daemon's sweep in slices (the ACLs) reads
    the overdue first, most overdue first, in its next slice. Its last pass as the margin instead (one due just
    after the walk went by waited for it to come round) fed on itself at 100,000 ACLs: the longer the pass, the
    more reads the schedule asked (`ACLs ÷ (max_staleness - pass)`), and the longer the next pass.
    A window of outcomes at once (Engine._drain): one read and one write of the schedule, the settings read once.
    """
    staleness = ctx.settings.max_staleness(kind.name)
    if staleness <= 0:
        return
    read = [(resource.key, changed, ()) for resource, changed in reads if resource.version_hint is None]
    if read:
        cycle = ctx.settings.min_revisit(kind.name)
        ctx.store.record_visits(kind.name, read, time.time(), cycle, staleness)


def read_every_object(ctx: SyncContext, kind: Kind) -> bool:
    """Whether this run's cycle of the kind read every source object: its listing ended (not failed, stopped, or
    cut at its time slice: `ctx.listed`) and took no part as last seen (the tree listed by need). Only then have
    the source objects a listing counted without a row (`Store.record_pending_new`) each a row now, or are gone.

    A cycle ending `ok` cleared that count before: one that listed only the due directories, or a sweep cut at its
    slice, hid the new objects it had not reached from `status` and dbsync_resources (and restarted their lag
    clock) while `validate` still called them pending.
    """
    return kind.name in ctx.listed and kind.watcher.listed_since(ctx) is None


def record_freshness(ctx: SyncContext, kind: Kind, complete: bool, not_due: int, started_at: float) -> None:
    """dbsync_staleness_seconds and its target; a complete cycle that skipped nothing verified the whole kind.

    A listing read partly as last seen (the workspace tree by need) verified the kind as of its oldest part.
    """
    ctx.store.record_watching(kind.name, started_at or time.time())  # a kind never read is stale from its first try
    since = kind.watcher.listed_since(ctx)
    if complete and since is not None:
        ctx.store.record_full_read(kind.name, min(since, started_at), bound=True)
    elif complete and not_due == 0:
        ctx.store.record_full_read(kind.name, started_at)
    metrics.set_oldest_verification(kind.name, ctx.store.oldest_verification(kind.name))
    publish_target(ctx.settings, kind.name)


def publish_target(settings: Settings, kind: str) -> None:
    """dbsync_staleness_target_seconds: the kind's `max_staleness`, or its interval when it is read every cycle."""
    metrics.STALENESS_TARGET.labels(kind).set(settings.max_staleness(kind) or settings.interval(kind))


@dataclass(frozen=True)
class Need:
    """What a kind read by need asks of the source in steady state: each object read once per `max_staleness`."""

    kinds: tuple[str, ...]  # the kinds sharing the reads (the workspace tree's three)
    reads: int  # objects, or containers listed by need (directories)
    max_staleness: float

    @property
    def per_second(self) -> float:
        return self.reads / self.max_staleness


def schedule_need(ctx: SyncContext, selected: Iterable[Kind]) -> list[Need]:
    """The reads per second the revisit schedule needs at the least, by kind (a shared listing counted once).

    A lower bound: an object is read a margin before its `max_staleness` (freshness.next_visit), a changed one
    again sooner, and a dashboard is more than one call.
    """
    by_listing: dict[str, list[Kind]] = {}
    for kind in selected:
        if ctx.settings.max_staleness(kind.name) > 0:
            by_listing.setdefault(kind.watcher.declaration.shared_listing or kind.name, []).append(kind)
    needs = []
    for listing, group in by_listing.items():
        names = tuple(k.name for k in group)
        shared = group[0].watcher.declaration.shared_listing
        reads = len(ctx.store.listing_schedule(listing)) if shared else ctx.store.live_count(names[0])
        needs.append(Need(names, reads, min(ctx.settings.max_staleness(n) for n in names)))
    return needs


def _fixes(needs: list[Need], total: float, ceiling: float) -> str:
    """The settings that make the schedule fit, each alone: the largest need's max_staleness, or the budget."""
    largest = max(needs, key=lambda n: n.per_second)
    others = total - largest.per_second
    fixes = []
    if others < ceiling:
        at_least = math.ceil(largest.reads / (ceiling - others) / 60) * 60  # whole minutes
        names = largest.kinds[0] if len(largest.kinds) == 1 else "{" + ",".join(largest.kinds) + "}"
        fixes.append(f"kinds.{names}.max_staleness to {at_least:,} s or more")
    fixes.append(f"source.max_requests_per_second to {math.ceil(total / (NEED_WARNING_SHARE * HEADROOM)):,} or more")
    return ", or ".join(fixes)


def check_schedule_need(ctx: SyncContext, selected: Iterable[Kind]) -> list[Need]:
    """Publish dbsync_revisit_need_requests_per_second, and say so when the schedule asks more than the source's
    budget can give beside the kinds listed whole: objects would pass their `max_staleness`, the budget winning."""
    needs = schedule_need(ctx, selected)
    for need in needs:
        for name in need.kinds:
            metrics.REVISIT_NEED.labels(name).set(need.per_second / len(need.kinds))
    budget = ctx.settings.source.max_requests_per_second
    total = sum(n.per_second for n in needs)
    ceiling = NEED_WARNING_SHARE * HEADROOM * budget if budget else 0.0
    if budget and total > ceiling:
        parts = "; ".join(
            f"{'+'.join(n.kinds)}: {n.reads:,} reads within {n.max_staleness:.0f} s, {n.per_second:.1f}/s"
            for n in sorted(needs, key=lambda n: -n.per_second)
        )
        log.warning(
            "the revisit schedule needs at least %.1f of the %.0f requests/s paced on the source (%s), before the "
            "kinds listed whole, writes and retries: objects will pass their max_staleness. Raise %s",
            total,
            HEADROOM * budget,
            parts,
            _fixes(needs, total, ceiling),
        )
    return needs
