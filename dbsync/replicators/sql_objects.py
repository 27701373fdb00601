"""Queries and alerts on the target: adopt by (folder, display name), create, update in place, trash.

Adoption looks for a target object with the same display name in the same folder (the service keeps
names unique per folder), so a lost store or a crash between create and record never duplicates a
query — the complaint against re-imports with the Terraform exporter. Updates send every field with an
explicit `update_mask` (a field cleared on the source is cleared on the target). The owner is set
separately and only when it differs; an owner the target does not know is skipped and recorded (or an
error with principals_missing: fail). The API cannot move an object to another folder: a move on the
source is recorded, the target copy stays where it is.
"""

from __future__ import annotations

import contextlib
import re
from functools import cached_property
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.mapping import waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.runcache import CacheKey
from dbsync.watchers.sql_objects import PAGE_SIZE, folder
from dbsync.watchers.workspace_objects import make_folder

_UNKNOWN_OWNER = re.compile(r"User (\S+) does not exist|Principal: \w+\((.+?)\) does not exist")


class _Spec:
    """What differs between queries and alerts."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        is_query = kind == "sql_queries"
        self.noun = "query" if is_query else "alert"

    # The SDK's request types, imported when the kind first writes (by need: see dbsync/sql.py).
    @cached_property
    def create_type(self) -> Any:
        from databricks.sdk.service.sql import CreateAlertRequestAlert, CreateQueryRequestQuery

        return CreateQueryRequestQuery if self.kind == "sql_queries" else CreateAlertRequestAlert

    @cached_property
    def update_type(self) -> Any:
        from databricks.sdk.service.sql import UpdateAlertRequestAlert, UpdateQueryRequestQuery

        return UpdateQueryRequestQuery if self.kind == "sql_queries" else UpdateAlertRequestAlert

    @cached_property
    def mask_fields(self) -> tuple[str, ...]:
        """Every updatable field but the owner, which is set on its own (it may be missing on the target)."""
        return tuple(f for f in self.update_type.__dataclass_fields__ if f != "owner_user_name")

    def api(self, ctx: SyncContext) -> Any:
        return ctx.target.client.queries if self.kind == "sql_queries" else ctx.target.client.alerts

    def create(self, ctx: SyncContext, body: dict[str, Any]) -> Any:
        obj = self.create_type.from_dict(body)
        if self.kind == "sql_queries":
            return self.api(ctx).create(query=obj, auto_resolve_display_name=False)
        return self.api(ctx).create(alert=obj, auto_resolve_display_name=False)

    def update(self, ctx: SyncContext, object_id: str, mask: str, body: dict[str, Any]) -> Any:
        obj = self.update_type.from_dict(body)
        if self.kind == "sql_queries":
            return self.api(ctx).update(object_id, mask, query=obj, auto_resolve_display_name=False)
        return self.api(ctx).update(object_id, mask, alert=obj, auto_resolve_display_name=False)


BY_NAME_INDEX: CacheKey[dict[str, list[str]]] = CacheKey("sql-objects:by-name")  # .part(kind)


def _by_name(ctx: SyncContext, spec: _Spec) -> dict[str, list[str]]:
    """{display name → target ids}, listed once per run (the listing has no folder)."""

    def build() -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for item in spec.api(ctx).list(page_size=PAGE_SIZE):
            index.setdefault(item.display_name or "", []).append(item.id or "")
        return index

    return ctx.cached(BY_NAME_INDEX.part(spec.kind), build)


class SqlObjectReplicator(Replicator):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.spec = _Spec(kind)

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        body = ctx.idmap.resolve(resource.payload)  # Blocked until the warehouse / query is replicated
        owner = body.pop("owner_user_name", None)
        parent = body.pop("parent_path")
        notes: list[str] = []
        current = self._current(ctx, change.target_key)
        adopted = None  # the copy already recorded: its origin stays as recorded
        if current is None:
            current = self._adopt(ctx, body["display_name"], parent)
            adopted = current is not None
        if current is None:
            current = self._create(ctx, {**body, "parent_path": parent}, resource.key)
        else:
            current = self._update(ctx, current["id"], body)
            if folder(current.get("parent_path")) not in ("", parent):
                notes.append(
                    f"moved to {parent} on the source; the API cannot move a {self.spec.noun}, "
                    f"the target copy stays in {folder(current.get('parent_path'))}"
                )
        waiting: list[str] = []
        if owner and owner != current.get("owner_user_name"):
            note = self._set_owner(ctx, current["id"], owner)
            if note:
                notes.append(note)
                waiting.append(waiting_ref("users", owner))
        return Applied(current["id"], note="; ".join(notes) or None, waiting_on=waiting, adopted=adopted)

    # -- steps ------------------------------------------------------------------------------------------
    def _current(self, ctx: SyncContext, target_id: str | None) -> dict[str, Any] | None:
        """The recorded target object, or None when it is gone (trashed or deleted by hand)."""
        if not target_id:
            return None
        try:
            current = self.spec.api(ctx).get(target_id).as_dict()
        except NotFound:
            return None
        return current if current.get("lifecycle_state") != "TRASHED" else None

    def _adopt(self, ctx: SyncContext, name: str, parent: str) -> dict[str, Any] | None:
        for candidate in _by_name(ctx, self.spec).get(name, []):
            current = self._current(ctx, candidate)
            if current is not None and folder(current.get("parent_path")) == parent:
                return current
        return None

    def _create(self, ctx: SyncContext, body: dict[str, Any], source_key: str) -> dict[str, Any]:
        try:
            created = self._create_in_folder(ctx, body)
        except DatabricksError as err:
            if err.error_code in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                # Created by someone else since the index was read: adopt it next cycle.
                ctx.invalidate(BY_NAME_INDEX.part(self.kind))
                raise
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected {self.spec.noun} {body.get('display_name')!r}: {err}") from err
            raise
        _by_name(ctx, self.spec).setdefault(body["display_name"], []).append(created["id"])
        return created

    def _create_in_folder(self, ctx: SyncContext, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.spec.create(ctx, body).as_dict()
        except NotFound:
            # The folder does not exist on the target (only this object was in it): make it, once.
            make_folder(ctx, body["parent_path"])  # recorded as dbsync's: the directories kind would adopt it
            return self.spec.create(ctx, body).as_dict()

    def _update(self, ctx: SyncContext, target_id: str, body: dict[str, Any]) -> dict[str, Any]:
        mask = ",".join(self.spec.mask_fields)
        try:
            return self.spec.update(ctx, target_id, mask, body).as_dict()
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected {self.spec.noun} {body.get('display_name')!r}: {err}") from err
            raise

    def _set_owner(self, ctx: SyncContext, target_id: str, owner: str) -> str | None:
        try:
            self.spec.update(ctx, target_id, "owner_user_name", {"owner_user_name": owner})
        except DatabricksError as err:
            if not _UNKNOWN_OWNER.search(str(err)):
                raise
            if ctx.settings.principals_missing == "fail":
                raise Permanent(f"owner {owner} does not exist on the target") from err
            return f"owner {owner} does not exist on the target; the owner was left unchanged"
        return None

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Move the target copy to the trash, as a delete on the source did."""
        with contextlib.suppress(NotFound):
            self.spec.api(ctx).delete(change.target_key or "")


def replicator_for(kind: str) -> Replicator:
    return SqlObjectReplicator(kind)
