"""Identities (SCIM): groups, service principals, users, and group memberships, keyed by natural names.

Four kinds, because a group's members may be users, service principals and other groups: every
principal must exist on the target before a membership can name it, so memberships are their own
kind (`group_members`) that runs after the three principal kinds. Each listing carries every
replicated attribute, so the version hint is built from the payload and a no-change cycle costs the
listings only (one SCIM list per type, shared by the kinds in a run). A principal dbsync skipped
(not allowed to create it) or a group whose members it skipped also folds into its hint whether the
target has them now, so it is looked at again exactly when the target's IdP catches up.

Keys are the source names (userName, displayName, applicationId); payloads carry the mapped names
(`mapping.emails`, `mapping.principals`). Roles are instance-profile ARNs and become Refs to the
`instance_profiles` kind, which the registry orders first: a SCIM role must name a profile the
target has registered. The `users` group is implicit and never listed; `admins` exists everywhere
and only its membership is replicated, with `identities.sync_admins`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync import planner
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError
from dbsync.model import Resource, fingerprint, ref
from dbsync.principals import INDEXES, NAME_FIELD, SCIM_PAGE, by_name
from dbsync.runcache import CacheKey
from dbsync.watchers.base import Watcher, answers
from dbsync.workspace import Workspace

ADMINS, USERS_GROUP = "admins", "users"
BUILTIN_GROUPS = (ADMINS, USERS_GROUP)
# The attributes each listing asks for: no `groups` (computed, and replicated from the group side).
ATTRIBUTES = {
    "users": "id,userName,displayName,active,entitlements,roles",
    "service_principals": "id,applicationId,displayName,active,entitlements,roles",
    "groups": "id,displayName,entitlements,roles,members",
}


SCIM_REF = {"Users": "users", "ServicePrincipals": "service_principals", "Groups": "groups"}  # a member's $ref
SCIM_LISTING: CacheKey[list[dict[str, Any]]] = CacheKey("scim:listing")  # .part(side, scim_type)
SKIPPED: CacheKey[set[str]] = CacheKey("scim:skipped")  # .part(kind)


def scim_records(ctx: SyncContext, ws: Workspace, scim_type: str) -> list[dict[str, Any]]:
    """Every SCIM record of a type in `ws` (`users`, `service_principals`, `groups`), listed once per run."""

    def read() -> list[dict[str, Any]]:
        api = getattr(ws.client, scim_type)
        extra = {"filter": f'displayName ne "{USERS_GROUP}"'} if scim_type == "groups" else {}
        try:
            # The `users` group holds every principal implicitly: never read its member list.
            return [r.as_dict() for r in api.list(attributes=ATTRIBUTES[scim_type], count=SCIM_PAGE, **extra)]
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list SCIM {scim_type}: {err}") from err

    return ctx.cached(listing_key(ws.side, scim_type), read)


def listing_key(side: str, scim_type: str) -> CacheKey[list[dict[str, Any]]]:
    """The per-run cache key of a SCIM listing; a replicator that writes the target drops it (drift reads it)."""
    return SCIM_LISTING.part(side, scim_type)


def values(items: list[dict[str, Any]] | None) -> list[str]:
    """The sorted `value`s of a SCIM multi-valued attribute ([{"value": "x"}, ...])."""
    return sorted({str(i["value"]) for i in items or [] if i.get("value")})


def role_refs(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Roles are instance-profile ARNs: Refs, so a principal waits for its profile on the target."""
    return [ref("instance_profiles", arn) for arn in values(items)]


def _without_empty(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v not in (None, [], "")}


def principal_hint(payload: dict[str, Any], may_create: bool | None, on_target: bool | None) -> str:
    """A principal's version hint: its payload, the create setting and, once skipped, whether the target has it.

    A principal dbsync may not create is recorded without a target key; the hint changes when the
    setting is turned on or the target's IdP provisions it, and only then is it looked at again.
    """
    return fingerprint({"payload": payload, "create": may_create, "on_target": on_target})


def members_hint(payload: dict[str, Any], present: list[str] | None) -> str:
    """A group's membership hint; once members were skipped, also which of them the target has now."""
    return fingerprint({"payload": payload, "present": present})


def skipped_keys(ctx: SyncContext, kind: str) -> set[str]:
    """Source keys dbsync left incomplete: principals not created (skipped), groups with members skipped (partial).

    A store written before `skipped` / `partial` existed recorded them as synced without a target key.
    """
    return ctx.cached(
        SKIPPED.part(kind),
        lambda: {
            p.key
            for p in ctx.history.priors(kind, payloads=False)
            if p.copy_status in ("skipped", "partial") or (p.copy_status == "synced" and p.target_key is None)
        },
    )


class ScimWatcher(Watcher):
    """One SCIM resource type; the listing is the payload (nothing to fetch)."""

    declaration = Declaration(interval=600)

    def __init__(self, kind: str, scim_type: str) -> None:
        self.kind = kind
        self.scim_type = scim_type

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The payload written to the target, None for an object dbsync does not replicate."""
        raise NotImplementedError

    def forget_target_listing(self, ctx: SyncContext) -> None:
        """A record listed while another thread wrote it may be stale: the drift check reads it again."""
        ctx.invalidate(listing_key("target", self.scim_type))

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        may_create = getattr(ctx.settings.identities, f"create_{self.kind}", None)
        skipped = skipped_keys(ctx, self.kind) if ws.side == "source" else set()
        field = NAME_FIELD[self.scim_type]
        for raw in scim_records(ctx, ws, self.scim_type):
            key = str(raw.get(field) or "")
            payload = self.normalize(ctx, raw) if key else None
            if payload is None:
                continue
            on_target = INDEXES[self.scim_type].get(ctx, payload[field]) is not None if key in skipped else None
            yield Resource(self.kind, key, key, principal_hint(payload, may_create, on_target), payload)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One SCIM filter by name: the listing pages by offset (startIndex), so a principal deleted on the source
        between two pages made the first one of the next page look deleted too."""
        return answers(lambda: _found(by_name(ws.client, self.scim_type, key), f"no {self.scim_type} {key}"))


def _found(principal: tuple[str, str] | None, absent: str) -> tuple[str, str]:
    if principal is None:
        raise NotFound(absent)  # SCIM answers a filter that matches nothing with an empty list
    return principal


class UserWatcher(ScimWatcher):
    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> dict[str, Any] | None:
        user_name = raw["userName"]
        mapped = ctx.principals.user(user_name)
        display = raw.get("displayName")
        return _without_empty(
            {
                "userName": mapped,
                # A display name defaulted to the userName follows its rename.
                "displayName": mapped if display == user_name else display,
                "active": raw.get("active", True) is not False,
                "entitlements": values(raw.get("entitlements")),
                "roles": role_refs(raw.get("roles")),
            }
        )


class ServicePrincipalWatcher(ScimWatcher):
    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> dict[str, Any] | None:
        return _without_empty(
            {
                "applicationId": ctx.principals.service_principal(raw["applicationId"]),
                "displayName": raw.get("displayName"),
                "active": raw.get("active", True) is not False,
                "entitlements": values(raw.get("entitlements")),
                "roles": role_refs(raw.get("roles")),
            }
        )


class GroupWatcher(ScimWatcher):
    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> dict[str, Any] | None:
        if raw["displayName"] in BUILTIN_GROUPS:
            return None  # both exist in every workspace; admins' membership is group_members' business
        return _without_empty(
            {
                "displayName": ctx.principals.group(raw["displayName"]),
                "entitlements": values(raw.get("entitlements")),
                "roles": role_refs(raw.get("roles")),
            }
        )


class GroupMembersWatcher(ScimWatcher):
    """The direct members of each group, as (type, mapped name, source name): SCIM ids never cross workspaces."""

    # Which members are on the target is read while listing: after this run's users and groups are written.
    declaration = Declaration(interval=600, listed_in_turn=True)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        names = self._names_by_id(ctx, ws)
        group_settings = ctx.settings.kind("groups")
        skipped = skipped_keys(ctx, self.kind) if ws.side == "source" else set()
        for raw in scim_records(ctx, ws, "groups"):
            name = raw.get("displayName") or ""
            if not name or name == USERS_GROUP or (name == ADMINS and not ctx.settings.identities.sync_admins):
                continue
            if name != ADMINS and not planner.selected(group_settings, name):
                continue  # a group left out of `groups` is not dbsync's to fill either
            members = raw.get("members") or []
            if ws.side == "source" and self._lost_unnamed(ctx, name, members, names):
                self._look_up(ws, members, names)
            payload = {"displayName": ctx.principals.group(name), "members": self._members(ctx, members, names)}
            present = present_members(ctx, payload["members"]) if name in skipped else None
            yield Resource(self.kind, name, name, members_hint(payload, present), payload)

    @staticmethod
    def _names_by_id(ctx: SyncContext, ws: Workspace) -> dict[str, tuple[str, str]]:
        """SCIM id → (type, name) of every principal of `ws`."""
        out: dict[str, tuple[str, str]] = {}
        for scim_type, field in NAME_FIELD.items():
            for record in scim_records(ctx, ws, scim_type):
                if record.get("id") and record.get(field):
                    out[str(record["id"])] = (scim_type, str(record[field]))
        return out

    def _lost_unnamed(
        self, ctx: SyncContext, group: str, members: list[dict[str, Any]], names: dict[str, tuple[str, str]]
    ) -> bool:
        """Whether the group names members the listings did not name while a member it had before is not named.

        The principal listings page by offset (startIndex): a user deleted on the source between two pages makes
        the next page start one later, and the user it skips dropped out of every group's members, so the target's
        groups (adopted ones too) lost a member the source still had. A partial listing is not a removal: such a
        group's unnamed members are read one by one (`_look_up`). Only then: a member that is no workspace
        principal stays unnamed every cycle, and reading it every cycle would cost a GET for nothing.
        """
        if all(str(m.get("value")) in names for m in members):
            return False
        prior = ctx.history.prior(self.kind, group)
        before = {(m["type"], m["source"]) for m in ((prior.payload or {}).get("members") or [])} if prior else set()
        named = {names[str(m.get("value"))] for m in members if str(m.get("value")) in names}
        return bool(before - named)

    @staticmethod
    def _look_up(ws: Workspace, members: list[dict[str, Any]], names: dict[str, tuple[str, str]]) -> None:
        """The members `names` lacks, read by id (one SCIM GET each) into it; one that answers 404 stays unnamed."""
        for member in members:
            member_id = str(member.get("value") or "")
            if not member_id or member_id in names:
                continue
            prefix = str(member.get("$ref") or "").partition("/")[0]
            for scim_type in [SCIM_REF[prefix]] if prefix in SCIM_REF else list(NAME_FIELD):
                try:
                    record = getattr(ws.client, scim_type).get(member_id).as_dict()
                except NotFound:
                    continue  # any other failure fails the listing: a membership is never decided half-read
                if record.get(NAME_FIELD[scim_type]):
                    names[member_id] = (scim_type, str(record[NAME_FIELD[scim_type]]))
                    break

    @staticmethod
    def _members(
        ctx: SyncContext, members: list[dict[str, Any]], names: dict[str, tuple[str, str]]
    ) -> list[dict[str, str]]:
        out = []
        for member in members:
            known = names.get(str(member.get("value")))
            if known is None:
                continue  # not a workspace principal (an account-level one): nothing to name on the target
            scim_type, name = known
            if not planner.selected(ctx.settings.kind(scim_type), name):
                continue  # excluded from replication: not expected on the target either
            mapped = {
                "users": ctx.principals.user,
                "service_principals": ctx.principals.service_principal,
                "groups": ctx.principals.group,
            }[scim_type](name)
            out.append({"type": scim_type, "name": mapped, "source": name})
        return sorted(out, key=lambda m: (m["type"], m["name"].lower()))


def present_members(ctx: SyncContext, members: list[dict[str, str]]) -> list[str]:
    """`type:name` of the members the target has (listed once per run)."""
    return sorted(f"{m['type']}:{m['name']}" for m in members if INDEXES[m["type"]].get(ctx, m["name"]) is not None)


def watcher_for(kind: str) -> Watcher:
    if kind == "users":
        return UserWatcher(kind, "users")
    if kind == "service_principals":
        return ServicePrincipalWatcher(kind, "service_principals")
    if kind == "groups":
        return GroupWatcher(kind, "groups")
    return GroupMembersWatcher(kind, "groups")
