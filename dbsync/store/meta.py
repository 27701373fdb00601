"""How the store writes a row's source_meta: what only the store sets in it is kept, never taken from a resource.

Two keys are the store's, not the watcher's: what dbsync itself added to a shared target object (ADDED: an applied
outcome rewrites it, and record_added_ahead widens it before the write that adds) and the status of the copy an
update held by the edit-storm guard had (HELD_FROM: set by record_held alone).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dbsync.model import ADDED, HELD_FROM, Resource
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


class AddedAhead:
    """Store method (part of Store): what dbsync is about to add to a shared object, recorded before the write."""

    if TYPE_CHECKING:

        def _transaction(self) -> Any: ...

        db: Any

    def record_added_ahead(self, resource: Resource, entries: list[Any]) -> None:
        """The row's ADDED becomes `entries` (what it recorded, and what the write about to be sent adds) before the
        write: a kill -9 between the write and the applied outcome's record left an added grant unrecorded, kept on
        the standby as if the DR team's after the source revoked it. A row not recorded yet (the object's first
        apply) is made `pending`; the applied outcome writes it whole."""
        now = time.time()
        meta = _meta_json({**resource.source_meta, ADDED: entries})
        with self._transaction():
            self.db.execute(
                f"""INSERT INTO resources (kind, source_key, name, source_meta_json, status, attempts, first_seen_at,
                       last_changed_at)
                   VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)
                   ON CONFLICT (kind, source_key) DO UPDATE SET source_meta_json =
                       json_set(COALESCE(resources.source_meta_json, '{{}}'), '$.{ADDED}', json(?))""",
                [resource.kind, resource.key, resource.name, meta, now, now, _json(entries)],
            )
