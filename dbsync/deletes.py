"""A delete is made only when the source confirms the object is gone, and only for keys the configuration covers.

dbsync decides a delete from what a whole listing did not show. A listing read page by page by offset (SCIM's
`startIndex`, the jobs listing's page token) skips an object when another one is deleted between two of its
pages: the next page starts one object later. The delete guard bounds how many deletes a cycle makes, but it lets
one through, and one was enough to delete a group (and its members' memberships) that the source still had. So
each delete the guard lets through is confirmed first: the kind's watcher reads that one object on the source
(`Watcher.still_there`: a GET, one SQL statement). An object that answers, or whose read fails otherwise than
"not found", is not deleted this cycle: an event says so (not an error), and the next cycle's listing decides.
Deletes are few, so a read each is affordable; kinds without a cheap read trust their listing (base.Watcher).

A key outside the kind's configured scope (the include / exclude globs, and the kind's own settings such as
`metastore.catalogs`: `Watcher.in_scope`) is never a delete candidate: the operator stopped replicating it, the
source did not delete it. Two other settings name a subset and need no predicate: `mlflow.runs_paths` (runs travel
inside their experiment's payload: an experiment it no longer matches leaves its target runs alone) and
`workspace_conf.keys` (a key dropped from the allow-list is forgotten; its delete writes nothing on the target).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from dbsync import planner
from dbsync.context import SyncContext
from dbsync.model import Delete
from dbsync.registry import Kind
from dbsync.watchers.base import Watcher

log = logging.getLogger("dbsync.deletes")


def in_scope(ctx: SyncContext, kind: Kind, key: str) -> bool:
    """Whether the configuration still covers `key`: only then may its absence from the listing be a delete."""
    return planner.selected(ctx.settings.kind(kind.name), key) and kind.watcher.in_scope(ctx, key)


def confirmed(ctx: SyncContext, kind: Kind, changes: list[Delete]) -> list[Delete]:
    """The planned deletes whose objects the source confirms are gone (one read each, `concurrency` at a time)."""
    watcher = kind.watcher
    if not changes or type(watcher).still_there is Watcher.still_there:
        return changes  # the kind trusts its listing (see Watcher.still_there)
    with ThreadPoolExecutor(ctx.settings.concurrency, thread_name_prefix=f"confirm-{kind.name}") as pool:
        there = list(pool.map(lambda change: watcher.still_there(ctx, ctx.source, change.key), changes))
    gone = []
    for change, still in zip(changes, there, strict=True):
        if not still:
            gone.append(change)
            continue
        message = (
            f"{kind.name} {change.key}: not in this cycle's listing, but the source still has it (or could not say "
            "it is gone): not deleted; the next cycle's listing decides"
        )
        if ctx.dry_run:
            log.info(message)  # a plan writes nothing, not even an event
        else:
            ctx.event(kind.name, change.key, "delete", "kept", message)
    return gone
