"""Kinds whose objects are edited in place by id (a full replace), created when there is none, adopted from a
target index, and written back to the source the same way (`dbsync restore --to source`): cluster policies and
instance pools."""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.mapping import SourceForm
from dbsync.model import Applied, Delete, Prior, Resource, SourceWrite, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, deleted, edited, sdk_call
from dbsync.workspace import Workspace


class EditedInPlace(Replicator):
    """Edit by id, else adopt what the index finds, else create; delete by id; the source written the same way."""

    restores_source = True
    service: str  # the SDK service of the WorkspaceClient ("cluster_policies")
    id_field: str  # the id's name in edit() and in create()'s answer ("policy_id")
    noun: str  # the object in a rejection's message ("policy")
    index: TargetIndex
    # The index finds objects by dbsync's own tag: a found one was made by dbsync (not adopted).
    index_finds_own: bool = False

    def target_payload(self, resource: Resource) -> dict[str, Any]:
        """What is written to the target (with dbsync's tag where the index finds objects by it)."""
        return resource.payload or {}

    def index_key(self, resource: Resource, payload: dict[str, Any]) -> str:
        """The object's key in the target index: its name, or its source id in dbsync's tag."""
        return resource.key

    def name(self, payload: dict[str, Any]) -> str:
        return str(payload.get("name", ""))

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = self.target_payload(change.resource)
        key = self.index_key(change.resource, payload)
        found = None if change.target_key else self.index.get(ctx, key)
        object_id = change.target_key or found
        try:
            if object_id is not None and edited(lambda: self._edit(ctx.target, payload, object_id)):
                return Applied(object_id, adopted=(not self.index_finds_own) if found else None)
            object_id = self._create(ctx.target, payload)
            self.index.add(ctx, key, object_id)
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                raise Permanent(f"the target rejected {self.noun} {self.name(payload)!r}: {err}") from err
            raise
        return Applied(object_id, adopted=False)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        deleted(lambda: getattr(ctx.target.client, self.service).delete(change.target_key or ""))

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> SourceWrite:
        """The kept version back on the source object (a full replace, in the source's own form), re-created there
        when it is gone; the source id written."""
        payload = form.payload(resource.payload)
        if edited(lambda: self._edit(ctx.source, payload, resource.key)):
            return SourceWrite(resource.key)
        return SourceWrite(self._create(ctx.source, payload))

    def _edit(self, ws: Workspace, payload: dict[str, Any], object_id: str) -> None:
        sdk_call(getattr(ws.client, self.service).edit, payload, **{self.id_field: object_id})

    def _create(self, ws: Workspace, payload: dict[str, Any]) -> str:
        return getattr(sdk_call(getattr(ws.client, self.service).create, payload), self.id_field) or ""
