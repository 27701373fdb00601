"""What dbsync itself added to a target object it shares with the DR team: only that is ever removed there.

The grants of a catalog or table and the entries of a secret scope's ACL are shared: the DR team grants its
auditors `SELECT ON ANY FILE`, or `USE_CATALOG` on its own `sales` catalog, before dbsync ever runs. Taking "what
the source had last time" for "what dbsync added" removed such a grant as soon as the source revoked its twin,
and making the target equal to the source REVOKEd the DR team's grants on the target's own `hive_metastore` at
the first sync. So each replicator of these kinds records the entries it actually added (the `add` of the PATCH it
sent, the GRANT it ran, the ACL entry it put where the principal had none) in the object's source_meta (ADDED),
and removes only those: an entry found on the target, or added there since by hand, is kept.

A row written before dbsync recorded this (an older store) has no record: on an object dbsync created, the
previous payload's entries stand for it (what dbsync removed before the upgrade anyway); on one it adopted,
nothing is removed.

The record is written ahead (adding_ahead): an entry is recorded as dbsync's before the write that adds it, since a
kill -9 (or a failed apply) between the write and the applied outcome's record left it unrecorded, kept on the
standby as if the DR team's once the source revoked it: a grant revoked on the primary still open on the DR
target. The record then names entries the write may never have added; each apply confirms it on its read of the
target (only the entries there stay recorded) and removes only what is there. What that leaves: an entry whose
write failed and that the DR team gives by hand, the same principal and privilege, before dbsync's next apply of
that object (the failed change's retry, which a permanent error can put off until the source changes the object
again) is taken for dbsync's, and goes when the source drops it: a window until the next apply of one object whose
write failed, rather than an access the standby kept forever.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from dbsync.context import SyncContext
from dbsync.model import ADDED, Upsert


def added_before(change: Upsert, created: bool, legacy: Callable[[dict[str, Any]], Iterable[Hashable]]) -> set[Any]:
    """The entries dbsync recorded adding to this object, as tuples (or strings); `legacy(payload)`: an older row's.

    `created`: dbsync created the object on the target (an older row's previous payload then stands for it)."""
    prior = change.prior
    if prior is None:
        return set()
    recorded = prior.source_meta.get(ADDED)
    if recorded is not None:
        return {tuple(entry) if isinstance(entry, list) else entry for entry in recorded}
    if created and prior.target_key is not None and prior.payload:
        return set(legacy(prior.payload))
    return set()


def added_meta(entries: Iterable[Any]) -> dict[str, Any]:
    """The Applied meta recording `entries` as what dbsync added (an empty record too: it is not an older row's)."""
    return {ADDED: sorted(list(e) if isinstance(e, tuple) else e for e in entries)}


def adding_ahead(ctx: SyncContext, change: Upsert, ours: set[Any], adding: Iterable[Any]) -> None:
    """Before the write that adds `adding` to the object: record them as dbsync's beside `ours` (added_before's), so a
    kill -9 before the applied outcome's record cannot leave them unrecorded. Nothing new to add: no store write."""
    new = set(adding) - ours
    if new:
        ctx.store.record_added_ahead(change.resource, added_meta(ours | new)[ADDED])
