"""The replicator contract: write one kind to the target, idempotently."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from dbsync.model import Applied, Delete, Prior, Resource, SourceWrite, Upsert

if TYPE_CHECKING:
    from dbsync.context import SyncContext
    from dbsync.mapping import SourceForm


class Replicator(ABC):
    """Creates, updates and deletes one kind on the target.

    Raises RetryLater (temporary), Permanent (cannot succeed as is) or Blocked (waits on a reference);
    never sleeps. A create first adopts an existing target object (natural key or dbsync tag), so a
    crash between create and record never leaves a duplicate.
    """

    kind: str
    # The origin assumed for a row that does not record one (written before dbsync recorded ownership):
    # "adopted" keeps the target object when the source deletes it. "created" suits kinds that only ever
    # find an object by dbsync's own tag, or whose delete removes nothing dbsync did not write.
    unrecorded_origin: str = "adopted"

    @abstractmethod
    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        """Create or update the target object; returns what the engine records (never edits `change.resource`)."""

    @abstractmethod
    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Remove (or archive) the target object; a target object already gone is success.

        Called only for objects dbsync created; raises Kept when the object holds what dbsync did not put there.
        """

    def preview(self, ctx: SyncContext, change: Upsert) -> str | None:
        """For `dbsync plan`: why this change will not be written (a mount, a user it may not create), or None."""
        return None

    def also_deletes(self, ctx: SyncContext, change: Upsert) -> str | None:
        """For `dbsync plan`: what this write deletes on the target besides (the copy a moved folder leaves at its
        old path), said as the plan's reason for a `delete` line, or None."""
        return None

    # `dbsync restore --to source`: this kind can write a kept version back to the source (write_source).
    restores_source: bool = False

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> SourceWrite:
        """Write a kept version back to the SOURCE in its own form: no dbsync tag, the source's own pause state,
        principals and ids; an object gone from the source is re-created. Returns the source key written, and a note
        when it wrote more than the kept version (the restore prints it)."""
        raise NotImplementedError(f"{self.kind}: restore to the source is not supported")
