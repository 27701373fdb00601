"""What a change applied to the target leaves behind: the store's row, the id map, the metrics, the version kept, the
event. One path for every writer of a sync's changes.

The engine records its outcomes in windows (one statement for many: `window`); the cutover's step 3 records the jobs
made or edited on the source after the final sync (cutover/late_jobs.py) in windows of one. Step 3 used to have a
copy of its own of the engine's recording, and a rule added to one copy (a write-ahead record, the version history,
the events' words) was easily missed in the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from dbsync import metrics, revisit
from dbsync.context import SyncContext
from dbsync.model import Applied, Prior, Resource, canonical_json
from dbsync.outcomes import KindReport, count_applied
from dbsync.update_guard import keep_version

if TYPE_CHECKING:
    from dbsync.registry import Kind


@dataclass
class Window:
    """What a window of outcomes writes to the store when it ends: one statement each, not one per outcome (each
    statement on the engine's thread gives the GIL to the workers and waits to get it back)."""

    reads: list[tuple[Resource, bool]] = field(default_factory=list)  # objects read: their next read (revisit)
    applied: list[tuple[Resource, Applied, float, str | None]] = field(default_factory=list)  # record_applied_many
    seen: list[Resource] = field(default_factory=list)  # read, unchanged: record_seen_many


@contextmanager
def window(ctx: SyncContext, kind: Kind) -> Iterator[Window]:
    """A window of records of one kind, its rows written in one transaction as the block ends (its versions kept
    together, the events workers queued recorded). A plan opens no transaction: it adds no record."""
    store, versions = (nullcontext(), nullcontext()) if ctx.dry_run else (ctx.store.batch(), ctx.versions.batch())
    with store, versions:
        records = Window()
        yield records
        ctx.store.record_applied_many(records.applied)
        ctx.store.record_seen_many(records.seen)
        if records.reads:
            revisit.visited(ctx, kind, records.reads)
        ctx.record_events()


def record_applied(
    ctx: SyncContext,
    records: Window,
    kind: Kind,
    resource: Resource,
    prior: Prior | None,
    action: str,
    applied: Applied,
    retry_in: float = 0.0,
    report: KindReport | None = None,
    event: str | None = None,
) -> None:
    """One change that reached the target, recorded in the window: its row (in error with `applied.pending`, retried
    after `retry_in`), its copy's id, and unless pending the metric, the version kept and the event.

    The event is in the store's word (Applied.status): partial, skipped, or synced with a note for a person; only
    when there is a note, unless the caller gives its words (`event`: the cutover names each late job it writes).
    `report`: the cycle's counts, when a cycle applied it."""
    what = f"{kind.name} {resource.key}"
    text = canonical_json(resource.payload)  # one serialization: the row, its fingerprint, the version kept
    records.applied.append((resource, applied, retry_in, text))
    _remember(ctx, kind, resource, prior, applied)
    if applied.pending:
        # Reached the target, with a step still to do: recorded (no second create), counted as an error.
        if report is not None:
            report.errors += 1
        metrics.SYNC_ERRORS.labels(kind.name).inc()
        ctx.event(kind.name, resource.key, action, "error", f"{what}: {applied.pending}")
        return
    if report is not None:
        count_applied(report, action, applied)
    if not applied.skipped:
        metrics.CHANGES_APPLIED.labels(kind.name, action).inc()
        keep_version(ctx, kind, resource, applied.target_key, action, text)
    if event is not None or applied.note:
        ctx.event(kind.name, resource.key, action, applied.status, event or f"{what}: {applied.note}")


def record_ahead(
    ctx: SyncContext, kind: Kind, resource: Resource, prior: Prior | None, applied: Applied, step: str
) -> None:
    """A change on the target with a step of the caller's still to do (the cutover writes a late job's ACL after it):
    its row recorded at once in error saying `step`, with its copy's id, so a kill -9 before the step leaves it to
    do again, never a second copy. `record_applied` once the step is done."""
    ctx.store.record_applied(resource, replace(applied, pending=step))
    _remember(ctx, kind, resource, prior, applied)  # the step (the ACL) is written to this copy, not to a cached one


def _remember(ctx: SyncContext, kind: Kind, resource: Resource, prior: Prior | None, applied: Applied) -> None:
    moved = prior is not None and prior.target_key != applied.target_key
    if applied.target_key != resource.key or moved:
        # Only translations are cached: an identity (a path, a name) is read from the store when a Ref
        # names it, and caching 100,000 of them per run would cost tens of MB.
        ctx.idmap.remember(kind.name, resource.key, applied.target_key)
