"""The engine's edit-storm guard and version keeping: what happens to a kind's updates once its listing is done.

A cycle fetches and decides every changed object as usual, but holds its updates until the whole listing shows
how many changed. `planner.plan_updates` then lets them through, or holds them all (0 target writes): an event,
`dbsync_update_guard_tripped{kind}`, and the target keeps its copies until an operator confirms
(`dbsync sync --once --force-updates`, or `dbsync confirm-updates` for the daemon's next cycle).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dbsync import metrics, planner
from dbsync.context import SyncContext
from dbsync.errors import StoreError
from dbsync.inflight import InFlight
from dbsync.model import Resource
from dbsync.outcomes import count_failure

if TYPE_CHECKING:
    from dbsync.engine import Engine
    from dbsync.outcomes import KindReport
    from dbsync.registry import Kind

log = logging.getLogger("dbsync.engine")
PINNED = (
    "pinned by `dbsync restore --pin`: the source's change is pending, not copied; `dbsync restore --unpin` "
    "lets the source through again"
)
# Past this many body bytes held for the guard's decision, bodies are let go and fetched again when applied.
DEFERRED_BODY_BYTES = 64 * 1024 * 1024
CONFIRMATION_SECONDS = 86400.0
CONFIRMED = "updates_confirmed:"  # store meta key prefix: `dbsync confirm-updates` lets one held cycle through


# Updates of objects that were in step: a retry, a heal or a reverse seed's first pass is not an edit on the source.
GUARDED_STATUSES = ("synced", "partial", "skipped")


def guards(ctx: SyncContext, change: Any) -> bool:
    """Whether this change waits for the edit-storm guard: an update of an object that was in step (or one the guard
    holds already: `pending`, its copy as it was)."""
    prior = change.prior
    guarded = prior is not None and prior.copy_status in GUARDED_STATUSES
    return bool(ctx.settings.updates.guard and change.action == "update" and guarded)


@dataclass(frozen=True)
class _Pinned:
    """A source delete a `restore --pin` keeps from the target, as outcomes.count_failure counts it."""

    resource: Resource
    status: str = "pending"
    error: str = PINNED


def pinned_deletes(ctx: SyncContext, report: KindReport, keys: list[str], plan_only: bool) -> None:
    """Source deletes a `restore --pin` keeps from the target: `pending` in the cycle's counts and (but in a plan) in
    the store. The rows used to stay as the restore wrote them, so `sync --once` said pending while `status` and
    `dbsync_resources` said synced and `validate` did not count them (it reads what the source lists)."""
    for key in keys:
        count_failure(report, _Pinned(Resource(report.kind, key)), plan_only)
    if keys and not plan_only:
        ctx.store.record_pinned_deletes(report.kind, keys, PINNED)


def hold_for_guard(report: KindReport, outcome: Any) -> None:
    """Keep a decided update until the guard's decision; its body only while the held bodies stay small."""
    body = outcome.resource.body
    if body is not None and report.deferred_bytes + len(body) > DEFERRED_BODY_BYTES:
        outcome.resource.body = None
        outcome.refetch = True
    elif body is not None:
        report.deferred_bytes += len(body)
    report.deferred.append(outcome)


def guarded_updates(engine: Engine, kind: Kind, report: KindReport, pool: ThreadPoolExecutor) -> None:
    """Apply the kind's held updates, unless the edit-storm guard holds them all."""
    deferred, report.deferred, report.deferred_bytes = report.deferred, [], 0
    ctx = engine.ctx
    if engine.plan_only:
        _preview(ctx, kind.name, report)
        return
    if not deferred:
        metrics.UPDATE_GUARD_TRIPPED.labels(kind.name).set(0)
        return
    known = sum(ctx.store.status_counts().get(kind.name, {}).values())
    plan = planner.plan_updates(kind.name, [(o.resource, o.prior) for o in deferred], known, ctx.settings.updates)
    if plan.held and not _confirmed(ctx, kind.name, len(deferred)):
        _hold(ctx, kind.name, report, deferred, plan.reason or "")
        return
    metrics.UPDATE_GUARD_TRIPPED.labels(kind.name).set(0)
    report.fetched -= len(deferred)  # counted when held; each is counted again as its apply is recorded
    applying: InFlight[Any] = InFlight()
    for outcome in deferred:
        applying.submit(pool, _apply, engine, kind, outcome)
    engine._drain(kind, report, applying)


def _preview(ctx: SyncContext, kind: str, report: KindReport) -> None:
    """`dbsync plan`: say when the planned updates would be held (nothing is recorded or exported)."""
    updates = [(c.resource, c.prior) for c in report.planned if c.action == "update" and guards(ctx, c)]
    if not updates:
        return
    known = sum(ctx.store.status_counts().get(kind, {}).values())
    plan = planner.plan_updates(kind, updates, known, ctx.settings.updates)
    if plan.held:
        report.message = f"the edit-storm guard would hold these {len(updates)} updates: {plan.reason}"


def _confirmed(ctx: SyncContext, kind: str, count: int) -> bool:
    """An operator confirmed this kind's held updates (`dbsync confirm-updates`): used once, then gone."""
    confirmed_at = ctx.store.get_meta(CONFIRMED + kind)
    if confirmed_at is None:
        return False
    ctx.store.delete_meta(CONFIRMED + kind)
    if time.time() - float(confirmed_at) > CONFIRMATION_SECONDS:
        return False  # a confirmation is for the storm it was given for, not for one a week later
    ctx.event(kind, None, "update", "confirmed", f"{kind}: {count} updates held by the edit-storm guard confirmed")
    return True


def _hold(ctx: SyncContext, kind: str, report: KindReport, deferred: list[Any], reason: str) -> None:
    report.held += len(deferred)
    report.outcome = "update_guard"
    report.message = f"updates held: {reason}"
    metrics.UPDATE_GUARD_TRIPPED.labels(kind).set(1)
    # Pending, not synced: `status`, dbsync_resources and /report say what `validate` says (they were counted
    # synced for days while nobody confirmed); the lag clock runs while they are held.
    ctx.store.record_held(kind, [outcome.resource.key for outcome in deferred])
    ctx.event(
        kind,
        None,
        "update",
        "held",
        f"{kind}: edit-storm guard tripped, {len(deferred)} updates held: {reason}. Check the source; if the "
        f"edits are intended run `dbsync sync --once --force-updates` (or `dbsync confirm-updates --kinds {kind}` "
        "for the daemon); if not, fix the source (`dbsync history` shows the last good versions)",
    )


def _apply(engine: Engine, kind: Kind, outcome: Any) -> Any:
    """Worker: apply one update the guard let through (its body fetched again when it was let go)."""
    resource = outcome.resource
    try:
        if outcome.refetch:
            stub = Resource(
                kind.name, resource.key, resource.name, resource.version_hint, source_meta=resource.source_meta
            )
            resource = kind.watcher.fetch(engine.ctx, engine.ctx.source, stub)
        change = planner.decide(resource, outcome.prior)
        if change is None:
            return replace(outcome, resource=resource, change=None, deferred=False)
        applied = kind.replicator.apply(engine.ctx, change)
        return replace(outcome, resource=resource, change=change, applied=applied, deferred=False)
    except Exception as err:  # one bad object never stops the cycle
        return engine._failure(resource, outcome.prior, err)


def keep_version(
    ctx: SyncContext, kind: Kind, resource: Resource, target_key: str | None, action: str, canonical: str | None = None
) -> None:
    """Keep what was just written in the version history (not for kinds that hold secret values).

    `canonical`: the payload's canonical JSON, when the caller has it."""
    if not kind.declaration.versions or not ctx.settings.history.enabled or resource.payload is None:
        return
    try:
        ctx.versions.record(
            kind.name,
            resource.key,
            resource.payload,
            resource.body,
            action=action,
            target_key=target_key,
            version_hint=resource.version_hint,
            name=resource.name,
            canonical=canonical,
        )
    except (StoreError, OSError) as err:  # the replica is written; a history that cannot keep it is reported
        ctx.event(kind.name, resource.key, "history", "error", f"{kind.name} {resource.key}: not kept: {err}")


def keep_deletion(ctx: SyncContext, kind: Kind, key: str, target_key: str | None) -> None:
    """A tombstone: a restore as of a later time leaves the object out."""
    if not kind.declaration.versions or not ctx.settings.history.enabled:
        return
    try:
        ctx.versions.record_deleted(kind.name, key, target_key)
    except (StoreError, OSError) as err:
        ctx.event(kind.name, key, "history", "error", f"{kind.name} {key}: deletion not kept: {err}")
