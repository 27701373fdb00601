"""The legacy Groups API 2.0 (`/api/2.0/groups/*`) that databricks-cli 0.18 and older scripts still call.

It names principals instead of using SCIM ids and shares every record with SCIM: a group created here is
a SCIM group, a member added here shows in the SCIM group's `members`. Shapes follow databricks-cli 0.18's
`GroupsService` (sdk/service.py): create → `{"group_name"}`, list / list-parents → `{"group_names"}`,
list-members → `{"members": [{"user_name"} | {"group_name"}]}`; errors are `{"error_code", "message"}`.
Service principals are not principals of this API (it predates them): list-members leaves them out.
"""

from __future__ import annotations

from dbsync_emulator.apis import scim
from dbsync_emulator.errors import ApiError, already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

PREFIX = "/api/2.0/groups"


def _group(ws: Workspace, name: str) -> dict:
    group = scim.find_group(ws, name)
    if group is None:
        raise not_found(f"Group {name} does not exist.")
    return group


def _member_id(ws: Workspace, req: Request) -> str:
    """The SCIM id of the one principal named by `user_name` or `group_name` (exactly one of them)."""
    user_name, group_name = req.param("user_name"), req.param("group_name")
    if bool(user_name) == bool(group_name):
        raise invalid("Exactly one of user_name or group_name must be provided.")
    if user_name:
        user = scim.find_user(ws, user_name)
        if user is None:
            raise not_found(f"User {user_name} does not exist.")
        return str(user["id"])
    return str(_group(ws, group_name)["id"])


def _scim_call(action: object) -> None:
    """Run a SCIM mutation; its SCIM-shaped refusals become this API's error body."""
    try:
        action()  # type: ignore[operator]
    except scim.ScimError as err:
        code = "RESOURCE_DOES_NOT_EXIST" if err.status == 404 else "INVALID_PARAMETER_VALUE"
        raise ApiError(err.status, code, err.message) from None


@routes.post(f"{PREFIX}/create")
def create(ws: Workspace, req: Request) -> dict:
    """Create an empty group; a taken name is RESOURCE_ALREADY_EXISTS."""
    name = str(req.require("group_name"))
    if scim.find_group(ws, name) is not None:
        raise already_exists(f"Group {name} already exists.")
    scim.create_group(ws, name)
    return {"group_name": name}


@routes.get(f"{PREFIX}/list")
def list_groups(ws: Workspace, req: Request) -> dict:
    """Every group name, built-ins included."""
    return {"group_names": [g["displayName"] for g in ws.table(scim.GROUPS).values()]}


@routes.get(f"{PREFIX}/list-members")
def list_members(ws: Workspace, req: Request) -> dict:
    """The direct user and group members of a group."""
    group = _group(ws, str(req.require("group_name")))
    members = []
    for member_id in scim.members_of(ws, group):
        kind = scim.kind_of(ws, member_id)
        record = ws.table(scim.USERS if kind == "Users" else scim.GROUPS).get(member_id, {})
        if kind == "Users":
            members.append({"user_name": record["userName"]})
        elif kind == "Groups":
            members.append({"group_name": record["displayName"]})
    return {"members": members}


@routes.get(f"{PREFIX}/list-parents")
def list_parents(ws: Workspace, req: Request) -> dict:
    """The groups a user or group is a direct member of (not recursive)."""
    member_id = _member_id(ws, req)
    groups = ws.table(scim.GROUPS)
    return {"group_names": [groups[g]["displayName"] for g in scim.direct_parents(ws, member_id)]}


@routes.post(f"{PREFIX}/add-member")
def add_member(ws: Workspace, req: Request) -> dict:
    """Make a user or group a direct member of `parent_name`; idempotent."""
    parent = _group(ws, str(req.require("parent_name")))
    member_id = _member_id(ws, req)
    _scim_call(lambda: scim.add_member(ws, parent["id"], member_id))
    return {}


@routes.post(f"{PREFIX}/remove-member")
def remove_member(ws: Workspace, req: Request) -> dict:
    """Remove a direct member of `parent_name`; a principal that is not a member is a 404."""
    parent = _group(ws, str(req.require("parent_name")))
    member_id = _member_id(ws, req)
    if member_id not in parent["members"]:
        raise not_found(f"The principal is not a member of group {parent['displayName']}.")
    _scim_call(lambda: scim.remove_member(ws, parent["id"], member_id))
    return {}


@routes.post(f"{PREFIX}/delete")
def delete(ws: Workspace, req: Request) -> dict:
    """Delete a group (its memberships go with it); built-in groups cannot be deleted."""
    group = _group(ws, str(req.require("group_name")))
    _scim_call(lambda: scim.delete_group(ws, group))
    return {}
