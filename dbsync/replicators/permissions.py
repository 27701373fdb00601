"""Object ACLs on the target: the direct entries on the mapped target object.

On an object dbsync created, one PUT of the source's entries (it replaces every direct entry: the hot path, one
request an ACL). On an object it adopted (a notebook or folder found at the same path, the target's own `/Shared`,
whose ACL also guards dbsync's role marker, a dashboard or warehouse found by name) the ACL is the DR team's too: a
PUT wiped their entries at the first sync. There the target's entries are read, what the source has is added by PATCH
(it adds or changes entries, removing none), and only the entries dbsync added (recorded: replicators/added.py)
are removed when the source drops them, by a PUT of the rest (the API has no per-entry delete).

A principal the target does not know is dropped from the request and recorded (principals_missing:
skip), never a failed cycle; with principals_missing: fail the change is an error instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.iam import AccessControlRequest, ObjectPermissions

from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent, RetryLater
from dbsync.mapping import SourceForm, acl_waiting_ref
from dbsync.model import Applied, Delete, Prior, Resource, SourceWrite, Upsert
from dbsync.registry import acl_watchers, kind
from dbsync.replicators.added import added_before, added_meta, adding_ahead
from dbsync.replicators.base import Replicator
from dbsync.watchers.permissions import OBJECT_ORIGIN, PRINCIPAL_FIELDS
from dbsync.workspace import Workspace

OWNER = "IS_OWNER"
# The ACL types whose PUT must name the owner: the service refuses one that names none, 400 "The job must have exactly
# one owner." (terraform-provider-databricks#303, databricks/cli#5682), instead of keeping the current owner. An ACL
# read from a legacy job names none (jobs made before job ACLs had owners: databrickslabs/migrate#168), so its sync,
# and a restore of its kept version either way, were refused. Warehouses are left out, as in the emulator: what the
# service does with a warehouse PUT that names no owner is not clear from the public record.
PUT_NAMES_THE_OWNER = frozenset({"jobs", "pipelines"})
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
        acl_type = watcher.acl_type or ""
        if _adopted(ctx, resource):
            return self._shared(ctx, change, acl_type, object_id)
        skipped: list[str] = []
        waiting: list[str] = []
        lost_owner = _owner(payload["access_control_list"])
        ownerless = lost_owner is None and acl_type in PUT_NAMES_THE_OWNER

        def put(entries: list[dict[str, Any]]) -> ObjectPermissions:
            if (lost_owner or ownerless) and not _owner(entries):
                entries = [*entries, *_current_owner(ctx.target, acl_type, object_id)]
            return ctx.target.client.permissions.set(acl_type, object_id, access_control_list=_requests(entries))

        result = _skipping_missing(ctx, put, list(payload["access_control_list"]), skipped, waiting)
        note = f"skipped principals missing on the target: {', '.join(skipped)}" if skipped else None
        kept = _owner(result.as_dict().get("access_control_list") or []) or "unknown"
        if lost_owner and lost_owner in skipped:
            # The PUT named the target's current owner instead (_current_owner): say who that is.
            note = f"owner {lost_owner} does not exist on the target; owner kept as {kept}. {note}"
        elif ownerless:
            # A legacy job's ACL names no owner: the PUT named the target's current one (_current_owner).
            owned = f"the ACL names no owner, which the service requires: owner kept as {kept}"
            note = f"{owned}; {note}" if note else owned
        return Applied(change.key, note=note, waiting_on=waiting)

    def _shared(self, ctx: SyncContext, change: Upsert, acl_type: str, object_id: str) -> Applied:
        """An adopted object's ACL: add by PATCH, remove only what dbsync added (a PUT of the rest); keep the others.

        One GET first (what the target has: what dbsync did not add), then a PATCH when the source has an entry the
        target lacks and a PUT only when an entry dbsync added must go; nothing more when the two agree. As for a
        secret scope's ACL, a principal is dbsync's when it had no entry before dbsync gave it one; a principal of
        the DR team's whose level the source changes stays theirs (a PATCH sets one level per principal). The owner
        (IS_OWNER) of an object dbsync did not create is the DR team's: left as it is, said once in the note."""
        permissions = ctx.target.client.permissions
        wanted = {_entry(e) for e in change.payload["access_control_list"]}
        owner = {e for e in wanted if e[2] == OWNER}
        wanted -= owner
        ours = added_before(change, False, lambda payload: ())
        if not wanted and not ours and not owner:
            return Applied(change.key, meta=added_meta(()))  # nothing to add, nothing of dbsync's to remove
        before = _direct(permissions.get(acl_type, object_id))
        skipped: list[str] = []
        waiting: list[str] = []
        now = before
        if add := wanted - before:
            adding_ahead(ctx, change, ours, _principals(add) - _principals(before))  # recorded before the PATCH

            def patch(entries: list[dict[str, Any]]) -> ObjectPermissions:
                return permissions.update(acl_type, object_id, access_control_list=_requests(entries))

            now = _direct(_skipping_missing(ctx, patch, [_request(e) for e in sorted(add)], skipped, waiting))
        # The target's owner stays whoever it is, even one dbsync gave its first entry: the object is the DR team's,
        # and the service refuses a PUT that names no owner ("The job must have exactly one owner.").
        owners = {e[:2] for e in now if e[2] == OWNER}
        if remove := ((_principals(now) - _principals(wanted)) & ours) - owners:
            rest = [_request(e) for e in sorted(now) if e[:2] not in remove]
            now = _direct(permissions.set(acl_type, object_id, access_control_list=_requests(rest)))
        notes = []
        if owner - now:
            notes.append(f"owner left as the target's (dbsync did not create this object), not {owner.pop()[1]}")
        if kept := len(now - wanted - {e for e in now if e[2] == OWNER}):
            notes.append(f"kept {kept} ACL entr{'y' if kept == 1 else 'ies'} on the target that dbsync did not add")
        if skipped:
            notes.append(f"skipped principals missing on the target: {', '.join(skipped)}")
        given = _principals(add) - _principals(before)  # entries put where the principal had none
        meta = added_meta(((ours | given) & _principals(now)) - owners)  # an owner the DR team chose is theirs now
        return Applied(change.key, note="; ".join(notes) or None, waiting_on=waiting, meta=meta)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """An object's ACL goes with the object; nothing to do."""

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> SourceWrite:
        """The kept direct entries back on the SOURCE object (a PUT: entries added since go), principals named as
        the source names them. The object is looked up by its key now (a restore may have just re-created it).
        A kept job or pipeline ACL that names no owner keeps the source object's current owner (one GET)."""
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
        acl_type = watcher.acl_type or ""
        note = None
        if acl_type in PUT_NAMES_THE_OWNER and not _owner(entries):
            entries += _current_owner(ctx.source, acl_type, object_id)
            kept = _owner(entries) or "none"
            note = f"the kept version names no owner, which the service requires: owner kept as {kept}"
        ctx.source.client.permissions.set(acl_type, object_id, access_control_list=_requests(entries))
        return SourceWrite(resource.key, note)


def _target_meta(ctx: SyncContext, key: str) -> dict[str, Any]:
    """What the store knows of the ACL's object on the target: the version the drift check last saw there."""
    object_kind, source_key = key.split(":", 1)
    seen = ctx.store.verified_target_version(object_kind, source_key)  # one column, not the whole row
    return {"target_version": seen} if seen else {}


def _adopted(ctx: SyncContext, resource: Resource) -> bool:
    """Whether the ACL's object is one dbsync adopted (or cannot tell it created): the DR team's entries stay there.

    The watcher's stub carries the object row's origin; a restored ACL's meta may not, and the store has it. A
    folder's origin comes from the target's tree before dbsync's mkdirs (folder_was_on_target: mkdirs cannot tell);
    a row with no recorded origin (a folder recorded before that) follows its kind's `unrecorded_origin` ("created"
    for a folder), but the folders every workspace has (`/Shared`, `/Users`, `/Repos`) are always the target's own."""
    object_kind, source_key = resource.key.split(":", 1)
    meta = resource.source_meta
    if OBJECT_ORIGIN in meta:
        origin = meta[OBJECT_ORIGIN]
    else:
        prior = ctx.history.prior(object_kind, source_key)
        origin = prior.origin if prior is not None else None
    if origin is not None:
        return origin != "created"
    target_key = str(resource.payload.get("target_key") if resource.payload else "")
    declared = kind(object_kind)
    if target_key in declared.declaration.builtin_target_keys:
        return True
    return declared.replicator.unrecorded_origin != "created"


def _current_owner(ws: Workspace, acl_type: str, object_id: str) -> list[dict[str, Any]]:
    """The object's IS_OWNER entry on `ws`, as a request entry (none when it has no owner): what a PUT names when
    the source's owner does not exist on the target, or the ACL names none (PUT_NAMES_THE_OWNER). The service
    refuses a PUT that names no owner on a job or pipeline ("The job must have exactly one owner.", 400) instead of
    keeping the current one, so the first sync of a job whose owner the target's IdP has not provisioned yet failed
    against a real workspace."""
    return [_request(e) for e in sorted(_direct(ws.client.permissions.get(acl_type, object_id))) if e[2] == OWNER]


def _skipping_missing(
    ctx: SyncContext,
    send: Callable[[list[dict[str, Any]]], ObjectPermissions],
    entries: list[dict[str, Any]],
    skipped: list[str],
    waiting: list[str],
) -> ObjectPermissions:
    """`send(entries)`, again without each principal the target says does not exist (recorded in `skipped` and
    `waiting`), or Permanent with principals_missing: fail."""
    while True:
        try:
            return send(entries)
        except DatabricksError as err:
            missing = _missing_principal(err)
            if missing is None:
                raise
            if ctx.settings.principals_missing == "fail":
                raise Permanent(f"principal {missing[1]} does not exist on the target") from err
            entries = [e for e in entries if e.get(missing[0]) != missing[1]]
            skipped.append(missing[1])
            waiting.append(acl_waiting_ref(*missing))


def _requests(entries: list[dict[str, Any]]) -> list[AccessControlRequest]:
    return [AccessControlRequest.from_dict(e) for e in entries]


def _entry(entry: dict[str, Any]) -> tuple[str, str, str]:
    """A request entry as (principal field, principal, level): how entries are compared and recorded."""
    field = next(f for f in PRINCIPAL_FIELDS if entry.get(f))
    return field, entry[field], entry["permission_level"]


def _request(entry: tuple[str, str, str]) -> dict[str, Any]:
    field, principal, level = entry
    return {field: principal, "permission_level": level}


def _principals(entries: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
    return {(field, principal) for field, principal, _ in entries}


def _direct(acl: ObjectPermissions) -> set[tuple[str, str, str]]:
    """The target's direct entries as (field, principal, level), the admins group's left out (the service's: a
    request naming it is refused), inherited ones too (a parent's, not this object's)."""
    entries = set()
    for item in acl.as_dict().get("access_control_list") or []:
        field = next((f for f in PRINCIPAL_FIELDS if item.get(f)), None)
        if field is None or (field == "group_name" and item[field] == "admins"):
            continue
        for perm in item.get("all_permissions") or []:
            if not perm.get("inherited"):
                entries.add((field, item[field], perm["permission_level"]))
    return entries


def _owner(acl: list[dict[str, Any]]) -> str | None:
    """The IS_OWNER principal of request entries, or of the direct entries of a PUT / GET answer."""
    for entry in acl:
        levels = [entry.get("permission_level")] + [
            p.get("permission_level") for p in entry.get("all_permissions") or [] if not p.get("inherited")
        ]
        if OWNER in levels:
            return entry_principal(entry)
    return None


def _missing_principal(err: DatabricksError) -> tuple[str, str] | None:
    match = _MISSING.search(str(err))
    return (_FIELD[match.group(1)], match.group(2)) if match else None


def entry_principal(entry: dict[str, Any]) -> str:
    return next(entry[f] for f in PRINCIPAL_FIELDS if entry.get(f))


def replicator_for(kind: str) -> Replicator:
    return PermissionsReplicator()
