"""Permissions API 2.0: `/api/2.0/permissions/{type}/{id}` (GET, PUT, PATCH, permissionLevels).

Other API modules register their object types with `register(...)` and call `grant_creator(...)` when
they create an object and `forget(...)` when they delete it. ACLs live in table "acls", keyed by
(request_object_type, object id), as a list of direct entries `{"principal_type", "principal", "level"}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dbsync_emulator.errors import ApiError, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

PRINCIPAL_TYPES = ("user_name", "group_name", "service_principal_name")
_PRINCIPAL_LABEL = {
    "user_name": "UserName",
    "group_name": "GroupName",
    "service_principal_name": "ServicePrincipalName",
}
LEVEL_DESCRIPTIONS = {
    "CAN_MANAGE": "Can Manage",
    "CAN_ATTACH_TO": "Can Attach To",
    "CAN_RESTART": "Can Restart",
    "CAN_USE": "Can Use",
    "CAN_VIEW": "Can View",
    "CAN_MANAGE_RUN": "Can Manage Run",
    "IS_OWNER": "Is Owner",
    "CAN_READ": "Can Read",
    "CAN_RUN": "Can Run",
    "CAN_EDIT": "Can Edit",
    "CAN_MONITOR": "Can Monitor",
}


@dataclass(frozen=True)
class ObjectType:
    request_type: str  # path segment: "jobs", "clusters", "sql/warehouses", ...
    object_type: str  # what GET answers in "object_type": "job", "cluster", ...
    levels: tuple[str, ...]
    exists: Callable[[Workspace, str], bool]
    # (from_object) for the inherited admins CAN_MANAGE entry, e.g. "/jobs/"; or a function of the id
    inherited_from: Callable[[Workspace, str], list[str]]
    owner_level: str | None = None  # "IS_OWNER" where exactly one owner must exist
    creator_level: str = "CAN_MANAGE"
    # The objects this one inherits ACL entries from, nearest first: [(request_type, id)], e.g. the
    # parent directories of a notebook. Their direct entries show up here as inherited.
    parents: Callable[[Workspace, str], list[tuple[str, str]]] | None = None


TYPES: dict[str, ObjectType] = {}


def register(
    request_type: str,
    object_type: str,
    levels: tuple[str, ...],
    exists: Callable[[Workspace, str], bool],
    inherited_from: str | Callable[[Workspace, str], list[str]] | None = None,
    owner_level: str | None = None,
    creator_level: str | None = None,
    aliases: tuple[str, ...] = (),
    parents: Callable[[Workspace, str], list[tuple[str, str]]] | None = None,
) -> None:
    """Make `/api/2.0/permissions/{request_type}/{id}` answer for a kind of object."""
    if inherited_from is None:
        inherited_from = f"/{request_type}/"
    source = inherited_from
    inherited = (lambda ws, oid: [source]) if isinstance(source, str) else source
    entry = ObjectType(
        request_type,
        object_type,
        levels,
        exists,
        inherited,
        owner_level,
        creator_level or owner_level or "CAN_MANAGE",
        parents,
    )
    for name in (request_type, *aliases):
        TYPES[name] = entry


def _acl_key(request_type: str, object_id: str) -> tuple[str, str]:
    return (TYPES[request_type].request_type, str(object_id))


def direct_acl(ws: Workspace, request_type: str, object_id: str) -> list[dict]:
    """The direct entries of an object (a copy)."""
    return [dict(e) for e in ws.table("acls").get(_acl_key(request_type, object_id), [])]


def grant_creator(ws: Workspace, request_type: str, object_id: str, principal: str | None = None) -> None:
    """What the service does on create: the creator gets CAN_MANAGE (IS_OWNER for owned types)."""
    otype = TYPES[request_type]
    entry = {
        "principal_type": "user_name",
        "principal": principal or ws.admin_user,
        "level": otype.creator_level,
    }
    ws.table("acls")[_acl_key(request_type, object_id)] = [entry]


def forget(ws: Workspace, request_type: str, object_id: str) -> None:
    ws.table("acls").pop(_acl_key(request_type, object_id), None)


def owner_of(ws: Workspace, request_type: str, object_id: str) -> str | None:
    """The principal holding the owner level (IS_OWNER), if the type has one."""
    otype = TYPES[request_type]
    for e in direct_acl(ws, request_type, object_id):
        if otype.owner_level and e["level"] == otype.owner_level:
            return e["principal"]
    return None


# -- principal checks ---------------------------------------------------------------------------
def principal_exists(ws: Workspace, principal_type: str, name: str) -> bool:
    """Whether a user (userName), group (displayName) or SP (applicationId) exists in SCIM."""
    from dbsync_emulator.apis import scim

    if principal_type == "user_name":
        return scim.find_user(ws, name) is not None
    if principal_type == "group_name":
        return scim.find_group(ws, name) is not None
    return scim.find_service_principal(ws, name) is not None


def parse_entries(ws: Workspace, otype: ObjectType, body: dict) -> list[dict]:
    acl = body.get("access_control_list")
    if acl is None:
        acl = []
    if not isinstance(acl, list):
        raise invalid("access_control_list must be a list")
    entries = []
    for item in acl:
        if not isinstance(item, dict):
            raise ApiError(
                400, "MALFORMED_REQUEST", "Could not parse request object: access_control_list[] must be an object"
            )
        kinds = [k for k in PRINCIPAL_TYPES if item.get(k)]
        if len(kinds) != 1:
            raise invalid("Exactly one of user_name, group_name or service_principal_name must be set")
        kind = kinds[0]
        name = item[kind]
        if not isinstance(name, str):
            raise ApiError(400, "MALFORMED_REQUEST", f"Could not parse request object: {kind} must be a string")
        level = item.get("permission_level")
        if level not in otype.levels:
            raise invalid(f"Permission {level} is not supported for object type {otype.object_type}")
        if kind == "group_name" and name == "admins":
            raise invalid("Cannot modify permissions of the admins group")
        if not principal_exists(ws, kind, name):
            raise invalid(f"Principal: {_PRINCIPAL_LABEL[kind]}({name}) does not exist")
        if level == otype.owner_level and kind == "group_name":
            raise invalid(f"Group {name} cannot be the owner of a {otype.object_type}")
        entries.append({"principal_type": kind, "principal": name, "level": level})
    return entries


def _lookup(ws: Workspace, req: Request) -> tuple[ObjectType, str]:
    request_type = req.path_params["type"]
    object_id = req.path_params["id"]
    otype = TYPES.get(request_type)
    if otype is None:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{request_type} is not a supported object type")
    if not otype.exists(ws, object_id):
        raise not_found(f"{otype.object_type} {object_id} does not exist.")
    return otype, object_id


def _check_owner(otype: ObjectType, entries: list[dict]) -> None:
    if otype.owner_level is None:
        return
    owners = [e for e in entries if e["level"] == otype.owner_level]
    if len(owners) > 1:
        raise invalid(f"There can be only one owner of a {otype.object_type}")


def object_permissions(ws: Workspace, request_type: str, object_id: str) -> dict:
    """The ObjectPermissions document: direct entries, entries inherited from parents, then admins.

    Inherited entries are grouped per principal and level, with every parent that grants the level in
    `inherited_from_object`; the admins group always holds an inherited CAN_MANAGE.
    """
    otype = TYPES[request_type]
    by_principal: dict[tuple[str, str], list[dict]] = {}
    for e in direct_acl(ws, request_type, object_id):
        perms = by_principal.setdefault((e["principal_type"], e["principal"]), [])
        perms.append({"permission_level": e["level"], "inherited": False})
    inherited: dict[tuple[str, str], dict[str, list[str]]] = {}
    for parent_type, parent_id in otype.parents(ws, object_id) if otype.parents else []:
        for e in direct_acl(ws, parent_type, parent_id):
            sources = inherited.setdefault((e["principal_type"], e["principal"]), {}).setdefault(e["level"], [])
            sources.append(f"/{TYPES[parent_type].request_type}/{parent_id}")
    inherited.setdefault(("group_name", "admins"), {}).setdefault("CAN_MANAGE", []).extend(
        otype.inherited_from(ws, object_id)
    )
    for principal, levels in inherited.items():
        perms = by_principal.setdefault(principal, [])
        for level, sources in levels.items():
            perms.append({"permission_level": level, "inherited": True, "inherited_from_object": sources})
    acl = []
    for (kind, name), perms in by_principal.items():
        entry: dict = {kind: name, "all_permissions": perms}
        display_name = _display(ws, kind, name)
        if display_name:
            entry["display_name"] = display_name
        acl.append(entry)
    return {
        "object_id": f"/{otype.request_type}/{object_id}",
        "object_type": otype.object_type,
        "access_control_list": acl,
    }


def _display(ws: Workspace, kind: str, name: str) -> str | None:
    """The display name the service adds for users and service principals."""
    from dbsync_emulator.apis import scim

    if kind == "user_name":
        principal = scim.find_user(ws, name)
    elif kind == "service_principal_name":
        principal = scim.find_service_principal(ws, name)
    else:
        return None
    return principal.get("displayName") if principal else None


@routes.get("/api/2.0/permissions/{type:path}/{id}/permissionLevels")
def permission_levels(ws: Workspace, req: Request) -> dict:
    otype, _ = _lookup(ws, req)
    return {
        "permission_levels": [
            {"permission_level": lvl, "description": LEVEL_DESCRIPTIONS.get(lvl, lvl)} for lvl in otype.levels
        ]
    }


@routes.get("/api/2.0/permissions/{type:path}/{id}")
def get_permissions(ws: Workspace, req: Request) -> dict:
    otype, object_id = _lookup(ws, req)
    return object_permissions(ws, otype.request_type, object_id)


# The service refuses a PUT that names no IS_OWNER on a job or pipeline with 400 "The job must have exactly one
# owner." instead of keeping the current owner: terraform-provider-databricks#303 (a destroy that PUT only the
# admins' entries), databricks/cli#5682 (the bundle direct engine's ownerless PUT; cli#5821, verified against AWS).
# It is why the terraform provider adds the caller as IS_OWNER to every such PUT that names none
# (permissions/resource_permissions.go: "add owner if it's missing"). Warehouses are left out: the same provider
# retries a warehouse PUT without the owner when the service answers "with no existing owner must provide a new
# owner", so what an ownerless warehouse PUT does is not clear from the public record.
_PUT_NAMES_THE_OWNER = frozenset({"jobs", "pipelines"})


@routes.put("/api/2.0/permissions/{type:path}/{id}")
def set_permissions(ws: Workspace, req: Request) -> dict:
    """Replace all direct entries; a job's or pipeline's request must name the owner, a warehouse keeps its owner
    when the request names none."""
    otype, object_id = _lookup(ws, req)
    entries = parse_entries(ws, otype, req.json)
    _check_owner(otype, entries)
    if otype.owner_level and not any(e["level"] == otype.owner_level for e in entries):
        if otype.request_type in _PUT_NAMES_THE_OWNER:
            raise invalid(f"The {otype.object_type.removesuffix('s')} must have exactly one owner.")
        owner = next(
            (e for e in direct_acl(ws, otype.request_type, object_id) if e["level"] == otype.owner_level),
            None,
        )
        if owner is not None:
            entries.insert(0, owner)
    ws.table("acls")[_acl_key(otype.request_type, object_id)] = entries
    return object_permissions(ws, otype.request_type, object_id)


@routes.patch("/api/2.0/permissions/{type:path}/{id}")
def update_permissions(ws: Workspace, req: Request) -> dict:
    """Add or change entries per principal; a new owner replaces the old one."""
    otype, object_id = _lookup(ws, req)
    updates = parse_entries(ws, otype, req.json)
    _check_owner(otype, updates)
    current = direct_acl(ws, otype.request_type, object_id)
    if otype.owner_level and any(u["level"] == otype.owner_level for u in updates):
        current = [e for e in current if e["level"] != otype.owner_level]
    for update in updates:
        current = [
            e
            for e in current
            if (e["principal_type"], e["principal"]) != (update["principal_type"], update["principal"])
            or e["level"] == otype.owner_level
        ]
        current.append(update)
    ws.table("acls")[_acl_key(otype.request_type, object_id)] = current
    return object_permissions(ws, otype.request_type, object_id)
