"""Object ACLs on the target: PUT the direct entries on the mapped target object.

A principal the target does not know is dropped from the request and recorded (principals_missing:
skip), never a failed cycle; with principals_missing: fail the change is an error instead.
"""

from __future__ import annotations

import re
from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.iam import AccessControlRequest

from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent, RetryLater
from dbsync.mapping import SourceForm, acl_waiting_ref
from dbsync.model import Applied, Delete, Prior, Resource, Upsert
from dbsync.registry import acl_watchers
from dbsync.replicators.base import Replicator
from dbsync.watchers.permissions import PRINCIPAL_FIELDS

_MISSING = re.compile(r"Principal: (UserName|GroupName|ServicePrincipalName)\((.+?)\) does not exist")
_FIELD = {
    "UserName": "user_name",
    "GroupName": "group_name",
    "ServicePrincipalName": "service_principal_name",
}


class PermissionsReplicator(Replicator):
    kind = "permissions"
    unrecorded_origin = "created"  # its delete removes nothing dbsync did not write
    restores_source = True

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        watcher = acl_watchers()[payload["object_kind"]]
        object_id = watcher.acl_object_id(ctx, ctx.target, payload["target_key"], _target_meta(ctx, resource.key))
        if object_id is None:
            raise RetryLater(f"{payload['object_kind']} {payload['target_key']} is not on the target yet")
        entries = list(payload["access_control_list"])
        skipped: list[str] = []
        waiting: list[str] = []
        while True:
            try:
                result = ctx.target.client.permissions.set(
                    watcher.acl_type or "",
                    object_id,
                    access_control_list=[AccessControlRequest.from_dict(e) for e in entries],
                )
                break
            except DatabricksError as err:
                missing = _missing_principal(err)
                if missing is None:
                    raise
                if ctx.settings.principals_missing == "fail":
                    raise Permanent(f"principal {missing[1]} does not exist on the target") from err
                entries = [e for e in entries if e.get(missing[0]) != missing[1]]
                skipped.append(missing[1])
                waiting.append(acl_waiting_ref(*missing))
        note = f"skipped principals missing on the target: {', '.join(skipped)}" if skipped else None
        lost_owner = _owner(payload["access_control_list"])
        if lost_owner and lost_owner in skipped:
            # The service keeps the current owner when the request names none: say who that is.
            kept = _owner(result.as_dict().get("access_control_list") or []) or "unknown"
            note = f"owner {lost_owner} does not exist on the target; owner kept as {kept}. {note}"
        return Applied(change.key, note=note, waiting_on=waiting)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """An object's ACL goes with the object; nothing to do."""

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> str:
        """The kept direct entries back on the SOURCE object (a PUT: entries added since go), principals named as
        the source names them. The object is looked up by its key now (a restore may have just re-created it)."""
        payload = resource.payload or {}
        object_kind, source_key = resource.key.split(":", 1)
        watcher = acl_watchers()[object_kind]
        object_id = watcher.acl_object_id(ctx, ctx.source, source_key, {})
        if object_id is None:
            raise Blocked(f"{object_kind} {source_key} is not on the source: restore it too (or first)")
        entries = []
        for entry in payload.get("access_control_list") or []:
            field = next(f for f in PRINCIPAL_FIELDS if entry.get(f))
            entries.append(
                {field: form.back.principal(field, entry[field]), "permission_level": entry["permission_level"]}
            )
        ctx.source.client.permissions.set(
            watcher.acl_type or "", object_id, access_control_list=[AccessControlRequest.from_dict(e) for e in entries]
        )
        return resource.key


def _target_meta(ctx: SyncContext, key: str) -> dict[str, Any]:
    """What the store knows of the ACL's object on the target: the version the drift check last saw there."""
    object_kind, source_key = key.split(":", 1)
    seen = ctx.store.verified_target_version(object_kind, source_key)  # one column, not the whole row
    return {"target_version": seen} if seen else {}


def _owner(acl: list[dict[str, Any]]) -> str | None:
    """The IS_OWNER principal of request entries, or of the direct entries of a PUT / GET answer."""
    for entry in acl:
        levels = [entry.get("permission_level")] + [
            p.get("permission_level") for p in entry.get("all_permissions") or [] if not p.get("inherited")
        ]
        if "IS_OWNER" in levels:
            return entry_principal(entry)
    return None


def _missing_principal(err: DatabricksError) -> tuple[str, str] | None:
    match = _MISSING.search(str(err))
    return (_FIELD[match.group(1)], match.group(2)) if match else None


def entry_principal(entry: dict[str, Any]) -> str:
    return next(entry[f] for f in PRINCIPAL_FIELDS if entry.get(f))


def replicator_for(kind: str) -> Replicator:
    return PermissionsReplicator()
