"""Revisit by need: which unchanged objects a cycle reads, their next visit, and the kind's staleness.

A kind whose listing has no version hint (object ACLs) would read every object every cycle. With a
`max_staleness` (its Declaration's freshness, or `kinds.<kind>.max_staleness`) an object is read when its
revisit is due (dbsync/freshness.py), when its parent was written since (an ACL's notebook), or when an
audit-log hint named it (dbsync/hints.py); the others keep the status they were last verified with.
"""

from __future__ import annotations

import time

from dbsync import metrics
from dbsync.config import Settings
from dbsync.context import SyncContext
from dbsync.model import Prior, Resource
from dbsync.registry import Kind

# Statuses whose last verification stands until the object's revisit is due (the others are retried or applied).
SETTLED = ("synced", "drifted", "partial", "skipped")


def not_due(ctx: SyncContext, kind: Kind, stub: Resource, prior: Prior | None) -> bool:
    """An unchanged object of a kind read by need, whose revisit has not come: left as last verified."""
    if kind.watcher.as_last_seen(ctx, stub):  # its directory was not listed: as last verified, unless to retry
        return prior is not None and prior.status in SETTLED
    if stub.version_hint is not None or prior is None or prior.status not in SETTLED:
        return False
    if ctx.settings.max_staleness(kind.name) <= 0:
        return False
    return not ctx.store.visit_due(kind.name, stub.key, kind.watcher.parent(stub), time.time())


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


def visited(ctx: SyncContext, kind: Kind, resource: Resource, changed: bool) -> None:
    """Schedule the next read of an object of a kind read by need (sooner when it changed)."""
    staleness = ctx.settings.max_staleness(kind.name)
    if staleness <= 0 or resource.version_hint is not None:
        return
    cycle = ctx.settings.interval(kind.name)
    ctx.store.record_visit(kind.name, resource.key, changed, time.time(), cycle, staleness)


def record_freshness(ctx: SyncContext, kind: Kind, complete: bool, not_due: int, started_at: float) -> None:
    """dbsync_staleness_seconds and its target; a complete cycle that skipped nothing verified the whole kind.

    A listing read partly as last seen (the workspace tree by need) verified the kind as of its oldest part.
    """
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
