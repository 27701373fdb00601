"""DBFS mounts are never written: a mount needs the target's own storage credentials, which no API reads.

Applying a mount records it (so a no-change cycle does nothing and the report can list it) and emits one
"needs manual action" event naming the mount point and its source; deleting one forgets it.
"""

from __future__ import annotations

from dbsync.context import SyncContext
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.watchers.mounts import manual_action


class MountReplicator(Replicator):
    kind = "mounts"
    unrecorded_origin = "created"  # its delete removes nothing dbsync did not write

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        # The target key is where the mount must exist on the target: the same mount point.
        return Applied(resource.key, note=f"needs manual action: {manual_action(resource.payload)}", skipped=True)

    def preview(self, ctx: SyncContext, change: Upsert) -> str | None:
        """`plan`: a mount is never written."""
        return f"needs manual action: {manual_action(change.payload)}"

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Nothing was written for it; a mount made by hand on the target is the operator's to remove."""


def replicator_for(kind: str) -> Replicator:
    return MountReplicator()
