"""Drift: a replicated object changed or deleted on the target outside dbsync.

The engine checks a kind after its writes (after its group's, for kinds sharing a listing: Engine._settle).
The first look after dbsync wrote an object records its target version as the baseline; a later difference,
or the object gone from the target, is drift: counted, reported, and with `drift: heal` re-applied next cycle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dbsync import metrics
from dbsync.context import SyncContext
from dbsync.errors import ListingError
from dbsync.model import Resource
from dbsync.outcomes import KindReport
from dbsync.readahead import TargetView, target_view
from dbsync.registry import Kind
from dbsync.watchers.base import listing

log = logging.getLogger("dbsync.drift")


def detect(
    ctx: SyncContext, kind: Kind, report: KindReport, ahead: Callable[[], TargetView] | None, stop: threading.Event
) -> None:
    """Compare each replicated object's target version with its baseline; record the baselines not taken yet.

    `ahead`: the view of the target listing read ahead while nothing was written yet (None: list the target now).
    """
    try:
        view = ahead() if ahead is not None else target_view(listing(kind.watcher, ctx, ctx.target))
    except ListingError as err:
        if stop.is_set():  # the listing was cut off by the shutdown, not refused by the target
            log.info("%s: drift check left for the next cycle: stopping", kind.name)
            return
        ctx.event(kind.name, None, "drift", "error", f"{kind.name}: cannot list the target: {err}")
        return
    heal = ctx.settings.drift == "heal"
    store = ctx.store
    by_need = kind.watcher.target_listed_by_need(ctx)  # an object not listed now keeps its baseline
    with store.batch():  # the baselines of a whole kind in one transaction
        for prior in store.priors(kind.name, payloads=False):
            if prior.status not in ("synced", "drifted") or prior.target_key is None:
                continue
            if by_need and kind.watcher.as_last_seen(ctx, Resource(kind.name, prior.key)):
                continue
            seen = view.get(prior.target_key)
            if prior.target_version is None and seen is not None:
                store.record_target_version(kind.name, prior.key, seen)
                continue
            if seen == prior.target_version or (prior.status == "drifted" and not heal):
                continue
            report.drifted += 1
            metrics.DRIFT_DETECTED.labels(kind.name).inc()
            what = "was deleted" if seen is None else "was changed"
            store.record_drift(kind.name, prior.key, heal)
            ctx.event(
                kind.name,
                prior.key,
                "drift",
                "healing" if heal else "drifted",
                f"{kind.name} {prior.key}: the target copy {prior.target_key} {what} outside dbsync"
                + ("; it will be rewritten from the source" if heal else " (drift: report leaves it)"),
            )
