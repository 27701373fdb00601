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
nothing is removed. An apply that fails midway leaves what it added before the failure unrecorded: kept on the
target as if the DR team's, a leak, never a loss.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

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
