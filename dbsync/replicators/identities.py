"""Identities on the target: adopt by natural name, create where allowed, PATCH only what differs.

A principal already on the target (provisioned by the target's IdP, or by an earlier run) is
adopted by userName / displayName / applicationId, never recreated. Creating one is a setting per
type (`identities.create_users`, default false: most DR targets get their users from the IdP;
`create_groups` and `create_service_principals`, default true). A principal dbsync may not create
and the target lacks is recorded as skipped (`principals_missing: skip`) or an error (`fail`).

Only what dbsync created is deleted when it disappears from the source (the store's origin, and the
created_by_dbsync flag in source_meta that older stores recorded): an identity the target had already
belongs to whoever made it (the IdP, an admin).

A principal's entitlements and roles, and a group's members, are shared with whoever else manages the target: the
DR team's own service principal "bot", taken for the copy of the source's "bot" (by display name when the store has
no record of the copy, or by a `mapping.principals` entry), lost the entitlements the DR team gave it and left the
DR team's groups as soon as the source's "bot" did not have them. So, as for grants (replicators/added.py), dbsync
records the entitlements, roles and members it adds, and removes only those: what a principal or group had on the
target before, or was given there by hand, is kept.
Its display name and `active` follow the source only where the two are known to be one principal: a copy dbsync
created, a user (its userName is the IdP's identity), a principal found by its own or mapped applicationId. The
DR team's "bot", taken by display name alone, was deactivated on the standby when the source deactivated its "bot",
and its automation stopped: such a principal keeps its own name and `active` (a `mapping.principals` entry for it
says it is the same, and then they follow).
Memberships go through PATCH add / remove of the difference, so an unchanged group costs one GET;
the `admins` group is only ever added to, so the standby's own admins keep their access.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from databricks.sdk.errors import DatabricksError, ResourceConflict
from databricks.sdk.service import iam

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Blocked, Kept, Permanent
from dbsync.mapping import waiting_ref
from dbsync.model import Applied, Delete, Resource, Upsert
from dbsync.principals import INDEXES
from dbsync.replicators.added import added_before, added_meta, adding_ahead
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import claim, edited
from dbsync.watchers.identities import (
    ADMINS,
    listing_key,
    members_hint,
    present_members,
    principal_hint,
    scim_records,
    values,
)

CREATED = "created_by_dbsync"  # source_meta flag: only what dbsync created is deleted with the source
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_PREFIX = "/api/2.0/preview/scim/v2"
RESOURCE = {"users": "Users", "service_principals": "ServicePrincipals", "groups": "Groups"}
NOUN = {"users": "user", "service_principals": "service principal", "groups": "group"}
GRANTED = ("entitlements", "roles")  # the multi-valued attributes of a principal: what dbsync added is recorded


class Updated(NamedTuple):
    """What _update did to a target principal: the entitlements and roles dbsync has added (to record), and the
    scalar attributes whose source value it left out (`held`: not followed on a principal adopted by display name)."""

    ours: set[Any]
    held: list[str]


def _complex(items: list[str] | None) -> list[iam.ComplexValue] | None:
    return [iam.ComplexValue(value=v) for v in items] if items else None


def granted(record: dict[str, Any], listed: bool = False) -> set[tuple[str, str]]:
    """(attribute, value) of the entitlements and roles of a payload, or of a SCIM record when `listed`."""
    return {(f, v) for f in GRANTED for v in (values(record.get(f)) if listed else record.get(f) or [])}


def patch_operations(
    current: dict[str, Any], wanted: dict[str, Any], scalars: tuple[str, ...], ours: set[Any]
) -> list[dict[str, Any]]:
    """The SCIM PatchOp operations that turn the target record `current` into `wanted`; [] when equal.

    Of the entitlements and roles `wanted` lacks, only dbsync's own (`ours`: granted() entries) are removed."""
    ops: list[dict[str, Any]] = []
    for field in scalars:
        if scalar_differs(current, wanted, field):
            ops.append({"op": "replace", "path": field, "value": wanted[field]})
    for field in GRANTED:
        have_values, want_values = set(values(current.get(field))), set(wanted.get(field) or [])
        if want_values - have_values:
            ops.append({"op": "add", "path": field, "value": [{"value": v} for v in sorted(want_values - have_values)]})
        ops.extend(
            {"op": "remove", "path": f'{field}[value eq "{v}"]'}
            for v in sorted(have_values - want_values)
            if (field, v) in ours
        )
    return ops


def scalar_differs(current: dict[str, Any], wanted: dict[str, Any], field: str) -> bool:
    """Whether `wanted` sets the single-valued `field` (displayName, active) to other than the target record has."""
    have = current.get(field, True) if field == "active" else current.get(field)
    return field in wanted and have != wanted[field]


def scim_patch(ctx: SyncContext, scim_type: str, scim_id: str, operations: list[dict[str, Any]]) -> None:
    """PATCH a target principal. Raw, not `iam.Patch`: its as_dict() drops a falsy value (`active: false`)."""
    ctx.target.client.api_client.do(
        "PATCH",
        f"{SCIM_PREFIX}/{RESOURCE[scim_type]}/{scim_id}",
        body={"schemas": [PATCH_SCHEMA], "Operations": operations},
        headers={"Accept": "application/json", "Content-Type": "application/json"},
    )
    wrote(ctx, scim_type)


def wrote(ctx: SyncContext, scim_type: str) -> None:
    """The target changed: the drift check after this kind must list it afresh, not reuse this run's listing."""
    ctx.invalidate(listing_key("target", scim_type))


def _granted_before(ctx: SyncContext, old: dict[str, Any]) -> set[tuple[str, str]]:
    """An older row's record of what dbsync gave a principal it created: its previous payload's entitlements and roles
    (roles by their target ARNs; only entitlements when a profile is no longer mapped)."""
    try:
        return granted(ctx.idmap.resolve(old))
    except Blocked:
        return granted({"entitlements": old.get("entitlements")})


def _created(change: Upsert) -> bool:
    """Whether dbsync created this identity: the flag (older stores) or the recorded origin, kept across updates."""
    prior = change.prior
    if change.resource.source_meta.get(CREATED):
        return True
    return prior is not None and (bool(prior.source_meta.get(CREATED)) or prior.origin == "created")


class ScimReplicator(Replicator):
    """Users, service principals or groups (without members: `group_members` sets those)."""

    def __init__(self, kind: str, scalars: tuple[str, ...]) -> None:
        self.kind = kind
        self.scalars = scalars
        self.index = INDEXES[kind]

    def api(self, ctx: SyncContext) -> Any:
        return getattr(ctx.target.client, self.kind)

    def may_create(self, ctx: SyncContext) -> bool:
        return bool(getattr(ctx.settings.identities, f"create_{self.kind}"))

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        created = _created(change)
        # Once on the target, the hint is the listing's own again (not "skipped, now on the target").
        hint = principal_hint(change.payload, getattr(ctx.settings.identities, f"create_{self.kind}"), None)
        payload = ctx.idmap.resolve(change.payload)  # roles: source ARNs → target ARNs
        name = payload[self.index.field]
        ours = added_before(change, created, lambda old: _granted_before(ctx, old))
        found = self._recorded_copy(ctx, change, name)
        after = self._update(ctx, change, found, payload, ours, created) if found is not None else None
        if found is not None and after is not None:
            meta = ({CREATED: True} if created else {}) | added_meta(after.ours)
            note = self._held_note(resource, found[1], after.held)
            return Applied(found[1], note=note, adopted=None if created else True, version_hint=hint, meta=meta)
        if found is not None:
            self.index.forget(ctx, found[1])  # deleted by hand on the target since the index was read
        elif self.may_create(ctx):
            found = self._unrecorded_copy(ctx, resource, payload)
            after = self._update(ctx, change, found, payload, ours, False) if found is not None else None
            if found is not None and after is not None:
                note = self._held_note(resource, found[1], after.held)
                return Applied(found[1], note=note, adopted=True, version_hint=hint, meta=added_meta(after.ours))
        applied = self._create(ctx, change, payload, name, ours)
        if applied.version_hint is None:
            applied.version_hint = hint
        if created:
            applied.meta[CREATED] = True
        return applied

    def preview(self, ctx: SyncContext, change: Upsert) -> str | None:
        """`plan`: why a create will not happen (dbsync may not create it and the target lacks it)."""
        name = change.payload[self.index.field]
        if change.action != "create" or self.may_create(ctx) or self.index.get(ctx, name) is not None:
            return None
        return (
            f"{NOUN[self.kind]} {name} is not on the target and identities.create_{self.kind} is false: "
            "provision it through the target's IdP"
        )

    def _recorded_copy(self, ctx: SyncContext, change: Upsert, name: str) -> tuple[str, str] | None:
        """(SCIM id, target name) of the principal by its name, else by the name the store recorded for its copy.

        An AWS or GCP workspace gives a new service principal its own applicationId: the copy is found by that
        recorded name, not the source's. Looked up by the source's only, every edit of a principal after its
        first copy created another one on the target.
        """
        # Before one is skipped as missing, the target is asked by name: its index pages by offset and may skip it.
        found = self.index.get(ctx, name) if self.may_create(ctx) else self.index.confirm(ctx, name)
        recorded = change.target_key
        if found is None and recorded and recorded.lower() != name.lower():
            found = self.index.confirm(ctx, recorded)
        return found

    def _unrecorded_copy(self, ctx: SyncContext, resource: Resource, payload: dict[str, Any]) -> tuple[str, str] | None:
        """A service principal copy the store has no record of, found by its display name; None for other kinds.

        A copy with a service-chosen applicationId is not found by the source's after a `kill -9` between its
        create and its record, or a lost store: each run created one more. It is taken only when nothing else
        can be meant: exactly one source and exactly one target principal have that display name, the target's
        applicationId is no source principal's (that is the source one's own copy, or the same principal), and no
        other source principal's recorded copy is it (`claim`). It is adopted, not counted as created: the target
        might have had it before (a leak if it was dbsync's, never a deleted principal of the DR team), and it keeps
        the entitlements, roles and memberships dbsync did not give it. dbsync does not mark its copies to tell them
        apart: SCIM has no tags for a service principal, and its `externalId` is the IdP's (set by the provisioning
        that owns the account's identities; README: "Not replicated"). Never on
        Azure: the service takes the given applicationId there, so a copy dbsync made carries the source's, and one
        of the same display name but another applicationId is another Entra ID application.
        """
        display_name = payload.get("displayName")
        if self.kind != "service_principals" or not display_name or ctx.target.client.config.is_azure:
            return None
        source = scim_records(ctx, ctx.source, self.kind)
        if sum(1 for record in source if record.get("displayName") == display_name) != 1:
            return None
        quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
        api = self.api(ctx)
        matches = [
            record.as_dict()
            for record in api.list(attributes="id,applicationId,displayName", filter=f'displayName eq "{quoted}"')
        ]
        if len(matches) != 1 or matches[0].get("displayName") != display_name:
            return None
        scim_id, app_id = matches[0].get("id"), str(matches[0].get("applicationId") or "")
        source_ids = {str(record.get("applicationId") or "").lower() for record in source}
        if not scim_id or not app_id or app_id.lower() in source_ids:
            return None
        if not claim(ctx, self.kind, app_id, resource.key):
            return None
        self.index.add(ctx, app_id, scim_id)
        return scim_id, app_id

    def _followed(self, created: bool, name: str, found: tuple[str, str]) -> tuple[str, ...]:
        """The scalar attributes (display name, active) of the target principal `found` that follow the source.

        All of them on a copy dbsync created and on a principal found by the source's own name as mapped (a user's
        userName, a service principal's applicationId or its `mapping.principals` entry): the same principal, so a
        leaver deactivated on the source is deactivated on the standby. None on a service principal dbsync did not
        create found by another name: the one the store recorded when it was taken by display name alone
        (_unrecorded_copy), which may be the DR team's own "bot" — deactivated with the source's, it stopped their
        automation on the standby. Its entitlements and roles are shared as for any principal (only dbsync's removed).
        """
        if created or self.kind != "service_principals" or found[1].lower() == name.lower():
            return self.scalars
        return ()

    def _held_note(self, resource: Resource, target_name: str, held: list[str]) -> str | None:
        """The event's word for the source values left out of a principal adopted by display name: why, and the
        `mapping.principals` entry that says it is the same principal (then they follow)."""
        if not held:
            return None
        fields = " and ".join("display name" if field == "displayName" else field for field in held)
        return (
            f"{NOUN[self.kind]} {target_name} was taken for the copy by its display name only, so its {fields} "
            f"stayed as on the target (the source's differ); if it is the same principal, add mapping.principals: "
            f'{{"{resource.key}": "{target_name}"}}'
        )

    def _update(
        self,
        ctx: SyncContext,
        change: Upsert,
        found: tuple[str, str],
        payload: dict[str, Any],
        ours: set[Any],
        created: bool,
    ) -> Updated | None:
        """PATCH the target principal `found` to `payload`: what it did (Updated), or None when the principal is gone
        from the target (deleted by hand since the index was read)."""
        try:
            current = self.api(ctx).get(found[0]).as_dict()
        except DatabricksError as err:
            if is_gone(err):
                return None
            raise
        have, wanted = granted(current, listed=True), granted(payload)
        followed = self._followed(created, payload[self.index.field], found)
        held = [f for f in self.scalars if f not in followed and scalar_differs(current, payload, f)]
        ops = patch_operations(current, payload, followed, ours)
        if ops:
            adding_ahead(ctx, change, ours, wanted - have)  # recorded before the PATCH that adds them
            if not edited(lambda: scim_patch(ctx, self.kind, found[0], ops)):
                return None
        return Updated((ours & have & wanted) | (wanted - have), held)

    def _create(self, ctx: SyncContext, change: Upsert, payload: dict[str, Any], name: str, ours: set[Any]) -> Applied:
        resource = change.resource
        noun = NOUN[self.kind]
        if not self.may_create(ctx):
            setting = f"identities.create_{self.kind}"
            why = f"{noun} {name} is not on the target and {setting} is false"
            if ctx.settings.principals_missing == "fail":
                raise Permanent(f"{why}: provision it on the target (its IdP) or set {setting}: true")
            # No target key, and the hint a skipped principal has: it is looked at again when the
            # setting is turned on or the target gets it (see principal_hint), not every cycle.
            return Applied(
                None,
                note=f"{why}: not created (provision it through the target's IdP)",
                waiting_on=[waiting_ref(self.kind, name)],
                skipped=True,
                version_hint=principal_hint(resource.payload or {}, False, False),
            )
        adding_ahead(ctx, change, ours, granted(payload))  # recorded before the create that gives them
        try:
            created = self.api(ctx).create(**self._create_fields(payload))
        except ResourceConflict:
            found = self.index.lookup(ctx, name)  # created meanwhile (a crashed run, the IdP): adopt it
            after = self._update(ctx, change, found, payload, ours, False) if found is not None else None
            if found is None or after is None:
                raise
            return Applied(found[1], adopted=True, meta=added_meta(after.ours))
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "SCIM_400") and not is_gone(err):
                raise Permanent(f"the target rejected {noun} {name}: {err}") from err
            raise
        wrote(ctx, self.kind)
        created_name = str(created.as_dict().get(self.index.field) or name)
        self.index.add(ctx, created_name, created.id or "")
        note = None
        if created_name != name:
            # The service chose its own applicationId (AWS/GCP): ACLs and run_as must be told.
            note = (
                f"created with applicationId {created_name}; add mapping.principals: "
                f'{{"{resource.key}": "{created_name}"}} so ACLs and run_as follow'
            )
        return Applied(created_name, note=note, adopted=False, meta={CREATED: True} | added_meta(granted(payload)))

    def _create_fields(self, payload: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "display_name": payload.get("displayName"),
            "entitlements": _complex(payload.get("entitlements")),
            "roles": _complex(payload.get("roles")),
        }
        if self.kind == "users":
            fields.update(user_name=payload["userName"], active=payload.get("active", True))
        elif self.kind == "service_principals":
            fields.update(application_id=payload["applicationId"], active=payload.get("active", True))
        return fields

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        prior = change.prior
        name = prior.target_key
        if name is None:
            return  # it never reached the target (skipped: dbsync may not create it)
        if not prior.source_meta.get(CREATED) and prior.origin != "created":
            # The engine and `restore` keep what dbsync did not create before calling here. Should a caller not, a
            # return would be counted as a delete: Kept makes it an event `kept` and no delete in the counts.
            raise Kept(f"{NOUN[self.kind]} {name} is kept on the target because dbsync did not create it")
        found = self.index.get(ctx, name)
        if found is None:
            return
        try:
            self.api(ctx).delete(found[0])
        except DatabricksError as err:
            if not is_gone(err):
                raise
        self.index.forget(ctx, name)
        wrote(ctx, self.kind)


class GroupMembersReplicator(Replicator):
    """A group's direct members: every member resolved to its target SCIM id, then PATCH the difference.

    Only the members dbsync added (recorded by SCIM id) are removed: the members an adopted group had on the target,
    and those added there by hand, stay when the source drops their twin. An older row (no record) takes its previous
    payload's members for dbsync's, as the groups it made were filled with them.
    """

    kind = "group_members"
    unrecorded_origin = "created"  # its delete writes nothing: the group goes with the groups kind

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = change.payload
        group = INDEXES["groups"].confirm(ctx, payload["displayName"])
        if group is None:
            raise Blocked(
                f"group {payload['displayName']} is not on the target (the groups kind creates it unless "
                "identities.create_groups is false)"
            )
        wanted, missing, waiting = self._resolve(ctx, payload["members"])
        if missing and ctx.settings.principals_missing == "fail":
            raise Permanent(f"members missing on the target: {', '.join(missing)}")
        ours = added_before(change, True, lambda old: _member_ids(ctx, old.get("members") or []))
        groups = ctx.target.client.groups
        current = [m.value for m in groups.get(group[0]).members or [] if m.value]
        ops: list[dict[str, Any]] = []
        added = [m for m in wanted if m not in current]
        if added:
            ops.append({"op": "add", "path": "members", "value": [{"value": m} for m in added]})
        removed: list[str] = []
        if group[1].lower() != ADMINS:  # admins is only added to: the standby's own admins stay
            removed = [m for m in current if m not in wanted and m in ours]
            ops.extend({"op": "remove", "path": f'members[value eq "{m}"]'} for m in removed)
        if ops:
            adding_ahead(ctx, change, ours, added)  # recorded before the PATCH that adds them
            scim_patch(ctx, "groups", group[0], ops)
        meta = added_meta(((ours & set(current)) - set(removed)) | set(added))
        if not missing:
            return Applied(group[1], version_hint=members_hint(payload, None), meta=meta)  # the listing's own hint
        # Partly applied: a hint that changes once the target has more of the members.
        return Applied(
            group[1],
            note=f"skipped members missing on the target: {', '.join(missing)}",
            waiting_on=waiting,
            version_hint=members_hint(payload, present_members(ctx, payload["members"])),
            meta=meta,
        )

    @staticmethod
    def _resolve(ctx: SyncContext, members: list[dict[str, str]]) -> tuple[list[str], list[str], list[str]]:
        """(target SCIM ids, names missing, their waiting refs); Blocked when a member's own sync is pending.

        A member the target's index lacks is asked for by name before it counts as missing (ScimIndex.confirm):
        the index pages by offset and may have skipped it, and a member missing from `wanted` is removed.
        """
        wanted, missing, waiting = [], [], []
        for member in members:
            found = INDEXES[member["type"]].confirm(ctx, member["name"])
            if found is not None:
                wanted.append(found[0])
                continue
            prior = ctx.history.prior(member["type"], member["source"])
            if prior is not None and prior.status in ("error", "blocked", "pending"):
                raise Blocked(f"waiting for {member['type']} {member['source']} to be replicated first")
            missing.append(f"{NOUN[member['type']]} {member['name']}")
            waiting.append(waiting_ref(member["type"], member["name"]))
        return wanted, missing, waiting

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """A group gone from the source takes its members with it (the groups kind deletes it)."""


def _member_ids(ctx: SyncContext, members: list[dict[str, str]]) -> set[str]:
    """The target SCIM ids of `members` (as a group_members payload names them) the target's index has."""
    found = (INDEXES[m["type"]].get(ctx, m["name"]) for m in members)
    return {principal[0] for principal in found if principal is not None}


def replicator_for(kind: str) -> Replicator:
    if kind == "group_members":
        return GroupMembersReplicator()
    scalars = ("displayName",) if kind == "groups" else ("displayName", "active")
    return ScimReplicator(kind, scalars)
