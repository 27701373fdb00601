"""How the store writes a row's source_meta: what only the store sets in it is kept, never taken from a resource.

Two keys are the store's, not the watcher's: what dbsync itself added to a shared target object (ADDED: only an
applied outcome rewrites it) and the status of the copy an update held by the edit-storm guard had (HELD_FROM:
set by record_held alone).
"""

from __future__ import annotations

from typing import Any

from dbsync.model import ADDED, HELD_FROM
from dbsync.store.schema import _json


def _keeping_added(new: str) -> str:
    """SQL of the source_meta `new` (a parameter or column) with the row's ADDED kept: a read that changed nothing
    and a failed apply know nothing of what dbsync added, and forgetting it would leave a grant dbsync added on the
    target after the source revoked it (only an applied outcome rewrites it)."""
    kept = f"json_extract(resources.source_meta_json, '$.{ADDED}')"
    return (
        f"CASE WHEN json_type(resources.source_meta_json, '$.{ADDED}') IS NULL THEN {new} "
        f"ELSE json_set(COALESCE({new}, '{{}}'), '$.{ADDED}', json({kept})) END"
    )


def _meta_json(meta: dict[str, Any]) -> str | None:
    """A resource's source_meta as its row keeps it: a hold's mark (HELD_FROM) is the store's, set by record_held
    alone (a watcher that copies its prior's meta forward must not carry it into a row that is no longer held)."""
    return _json({k: v for k, v in meta.items() if k != HELD_FROM})
