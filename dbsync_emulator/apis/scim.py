"""SCIM 2.0 (workspace): `/api/2.0/preview/scim/v2/{Users|Groups|ServicePrincipals|Me}`.

Records live in tables "scim_users", "scim_groups" and "scim_service_principals" (id → record, the
resource's own camelCase keys minus computed ones). Group membership is stored once, as member ids on
the group, with the reverse edge in "scim_parents" (member id → parent group ids) so a principal's
`groups` are computed without scanning. Name indexes ("scim_user_names", "scim_group_names",
"scim_app_ids") make the lookups permissions, secrets and filters need O(1); they are tables so they
snapshot and restore with the records. The `users` group is implicit: every user and service principal
belongs to it, and its membership is computed, never stored.

Filters are what the service documents: `eq`, `ne`, `co`, `sw` joined by `and` / `or` (`and` binds
tighter), double-quoted strings, attributes of the resource; anything else (single quotes, bare words,
`ew`/`gt`/`pr`/`not`, parentheses, `[...]` value paths, unknown attributes) is a 400 `invalidFilter`,
never an empty result. The legacy Groups API 2.0 (`groups_legacy`) works on the same records.

Not modelled: nested-group cycles are accepted (closures never loop); account-level identities,
`meta.created`/`lastModified`, the `Schemas`/`ResourceTypes` discovery endpoints and ETags.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dbsync_emulator.errors import ScimError
from dbsync_emulator.router import Request, Response, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

PREFIX = "/api/2.0/preview/scim/v2"
USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
]
GROUP_SCHEMAS = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
SP_SCHEMAS = ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"]
LIST_SCHEMAS = ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
ENTITLEMENTS = (
    "allow-cluster-create",
    "allow-instance-pool-create",
    "databricks-sql-access",
    "workspace-access",
    "workspace-consume",
)
# What a new workspace's `users` group is entitled to, so every member can log in and use SQL.
USERS_GROUP_ENTITLEMENTS = ["workspace-access", "databricks-sql-access"]
BUILTIN_GROUPS = ("admins", "users")

USERS, GROUPS, SPS = "scim_users", "scim_groups", "scim_service_principals"
PARENTS, USER_NAMES, GROUP_NAMES, APP_IDS = (
    "scim_parents",
    "scim_user_names",
    "scim_group_names",
    "scim_app_ids",
)
_TABLE_OF = {"Users": USERS, "Groups": GROUPS, "ServicePrincipals": SPS}
_NOUN = {"Users": "User", "Groups": "Group", "ServicePrincipals": "Service principal"}


def _error(status: int, detail: str, scim_type: str | None = None) -> ScimError:
    return ScimError(status, detail, scim_type)


# -- lookups used by other modules ------------------------------------------------------------------
def find_user(ws: Workspace, user_name: str) -> dict | None:
    """The stored User record with this userName (case-insensitive), or None."""
    user_id = ws.table(USER_NAMES).get(str(user_name).lower())
    return ws.table(USERS).get(user_id) if user_id else None


def find_group(ws: Workspace, display_name: str) -> dict | None:
    """The stored Group record with this displayName (case-insensitive), or None."""
    group_id = ws.table(GROUP_NAMES).get(str(display_name).lower())
    return ws.table(GROUPS).get(group_id) if group_id else None


def find_service_principal(ws: Workspace, application_id: str) -> dict | None:
    """The stored ServicePrincipal record with this applicationId, or None."""
    sp_id = ws.table(APP_IDS).get(str(application_id).lower())
    return ws.table(SPS).get(sp_id) if sp_id else None


def kind_of(ws: Workspace, principal_id: str) -> str | None:
    """ "Users", "Groups" or "ServicePrincipals" for a SCIM id, None when unknown."""
    for kind, table in _TABLE_OF.items():
        if principal_id in ws.table(table):
            return kind
    return None


def principal_exists(ws: Workspace, name: str) -> bool:
    """Whether `name` is a userName, a group displayName or a service principal applicationId."""
    return bool(find_user(ws, name) or find_group(ws, name) or find_service_principal(ws, name))


def users_group_id(ws: Workspace) -> str:
    return ws.table(GROUP_NAMES)["users"]


# -- built-ins and internal creation (seeder) -------------------------------------------------------
def init(ws: Workspace) -> None:
    """A new workspace has the `admins` and `users` groups and the admin user (a member of admins)."""
    for name in BUILTIN_GROUPS:
        if find_group(ws, name) is None:
            entitlements = USERS_GROUP_ENTITLEMENTS if name == "users" else []
            _insert_group(ws, {"displayName": name, "entitlements": list(entitlements)})
    if find_user(ws, ws.admin_user) is None:
        create_user(ws, ws.admin_user, display_name=ws.admin_user.split("@")[0], groups=("admins",))


def _new_id(ws: Workspace) -> str:
    # 16-digit ids in a range that depends on the workspace: SCIM ids must never be copied across workspaces.
    return str(ws.next_id("scim_id", start=(ws.workspace_id % 9000 + 1000) * 10**12 + 5 * 10**11 + 1))


def _new_application_id(ws: Workspace) -> str:
    # Deterministic but distinct per workspace, like the globally unique ids the service generates.
    seed = f"dbsync-emulator/{ws.workspace_id}/{ws.next_id('scim_application_id')}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def create_user(ws: Workspace, user_name: str, display_name: str | None = None, groups: Iterable[str] = ()) -> dict:
    """Create a user (home directory included) in the given groups (ids or names); the User resource."""
    body: dict[str, Any] = {"userName": user_name, "groups": [{"value": _group_ref(ws, g)} for g in groups]}
    if display_name:
        body["displayName"] = display_name
    return render(ws, "Users", _create(ws, "Users", body))


def create_group(ws: Workspace, name: str, members: Iterable[str] = ()) -> dict:
    """Create a group with members (SCIM ids, userNames, group names or applicationIds)."""
    body = {"displayName": name, "members": [{"value": _principal_ref(ws, m)} for m in members]}
    return render(ws, "Groups", _create(ws, "Groups", body))


def add_member(ws: Workspace, group_id: str, member_id: str) -> None:
    """Make a principal (SCIM id) a direct member of a group (SCIM id); idempotent."""
    _link(ws, _require(ws, "Groups", group_id), member_id)


def remove_member(ws: Workspace, group_id: str, member_id: str) -> None:
    """Remove a direct member (SCIM id) from a group (SCIM id); the `users` group refuses."""
    _unlink(ws, _require(ws, "Groups", group_id), member_id)


def delete_group(ws: Workspace, group: dict) -> None:
    """Delete a stored group record and its memberships; built-in groups refuse."""
    _delete(ws, "Groups", group)


def members_of(ws: Workspace, group: dict) -> list[str]:
    """The direct member ids of a group (the `users` group's are computed)."""
    return _members(ws, group)


def direct_parents(ws: Workspace, principal_id: str) -> list[str]:
    """The ids of the groups a principal is a direct member of, `users` included for users and SPs."""
    return _direct_parents(ws, principal_id)


def create_service_principal(ws: Workspace, display_name: str, application_id: str | None = None) -> dict:
    """Create a service principal (applicationId generated when not given); the ServicePrincipal resource."""
    body: dict[str, Any] = {"displayName": display_name}
    if application_id:
        body["applicationId"] = application_id
    return render(ws, "ServicePrincipals", _create(ws, "ServicePrincipals", body))


def _group_ref(ws: Workspace, ref: str) -> str:
    if ref in ws.table(GROUPS):
        return ref
    group = find_group(ws, ref)
    if group is None:
        raise _error(404, f"Group with name {ref} not found.")
    return group["id"]


def _principal_ref(ws: Workspace, ref: str) -> str:
    if kind_of(ws, ref):
        return ref
    record = find_user(ws, ref) or find_group(ws, ref) or find_service_principal(ws, ref)
    if record is None:
        raise _error(404, f"Principal {ref} not found.")
    return record["id"]


# -- membership graph -------------------------------------------------------------------------------
def _require(ws: Workspace, kind: str, resource_id: str) -> dict:
    record = ws.table(_TABLE_OF[kind]).get(resource_id)
    if record is None:
        raise _error(404, f"{_NOUN[kind]} with id {resource_id} not found.")
    return record


def _guard_users_group(ws: Workspace, group: dict) -> None:
    if group["id"] == users_group_id(ws):
        detail = "The members of the users group are managed by the workspace and cannot be modified."
        raise _error(400, detail, "mutability")


def _link(ws: Workspace, group: dict, member_id: str) -> None:
    _guard_users_group(ws, group)
    if kind_of(ws, member_id) is None:
        raise _error(404, f"Member with id {member_id} not found.", "invalidValue")
    parents = ws.table(PARENTS).setdefault(member_id, [])
    if group["id"] in parents:  # the reverse edge is short: O(groups of the member), not O(members)
        return
    group["members"].append(member_id)
    parents.append(group["id"])


def _unlink(ws: Workspace, group: dict, member_id: str) -> None:
    _guard_users_group(ws, group)
    if member_id in group["members"]:
        group["members"].remove(member_id)
    parents = ws.table(PARENTS).get(member_id, [])
    if group["id"] in parents:
        parents.remove(group["id"])


def _direct_parents(ws: Workspace, principal_id: str) -> list[str]:
    parents = list(ws.table(PARENTS).get(principal_id, []))
    if principal_id not in ws.table(GROUPS):
        parents.append(users_group_id(ws))
    return parents


def _ancestry(ws: Workspace, principal_id: str) -> list[tuple[str, str]]:
    """(group id, "direct"|"indirect") for every group a principal belongs to; cycle-safe BFS."""
    direct = _direct_parents(ws, principal_id)
    seen = set(direct) | {principal_id}
    out = [(g, "direct") for g in direct]
    queue = list(direct)
    while queue:
        for parent in ws.table(PARENTS).get(queue.pop(0), []):
            if parent not in seen:
                seen.add(parent)
                out.append((parent, "indirect"))
                queue.append(parent)
    return out


def _members(ws: Workspace, group: dict) -> list[str]:
    if group["id"] == users_group_id(ws):
        return [*ws.table(USERS), *ws.table(SPS)]
    return list(group["members"])


def _display(ws: Workspace, principal_id: str) -> tuple[str, str]:
    kind = kind_of(ws, principal_id) or "Users"
    record = ws.table(_TABLE_OF[kind])[principal_id]
    return kind, record.get("displayName") or record.get("userName") or record.get("applicationId", "")


# -- rendering --------------------------------------------------------------------------------------
def _values(items: list[str]) -> list[dict]:
    return [{"value": v} for v in items]


def _group_entries(ws: Workspace, principal_id: str, with_type: bool) -> list[dict]:
    entries = []
    for group_id, how in (
        _ancestry(ws, principal_id) if with_type else [(g, "direct") for g in ws.table(PARENTS).get(principal_id, [])]
    ):
        group = ws.table(GROUPS)[group_id]
        entries.append({"display": group["displayName"], "type": how, "value": group_id, "$ref": f"Groups/{group_id}"})
    return entries


def render(ws: Workspace, kind: str, record: dict) -> dict:
    """The SCIM resource as GET answers it: computed `groups`/`members`, empty arrays omitted."""
    out = {k: v for k, v in record.items() if k not in ("entitlements", "roles", "members")}
    for key in ("entitlements", "roles"):
        if record.get(key):
            out[key] = _values(record[key])
    if kind == "Groups":
        members = []
        for member_id in _members(ws, record):
            member_kind, display = _display(ws, member_id)
            members.append({"display": display, "value": member_id, "$ref": f"{member_kind}/{member_id}"})
        if members:
            out["members"] = members
        parents = _group_entries(ws, record["id"], with_type=False)
        if parents:
            out["groups"] = parents
        out["meta"] = {"resourceType": "WorkspaceGroup"}
        out["schemas"] = GROUP_SCHEMAS
        return out
    out["groups"] = _group_entries(ws, record["id"], with_type=True)
    out["schemas"] = USER_SCHEMAS if kind == "Users" else SP_SCHEMAS
    return out


def _project(resource: dict, attributes: str | None, excluded: str | None) -> dict:
    """Apply `attributes` / `excludedAttributes` (top level or `a.b`); `id` and `schemas` always stay."""
    if attributes:
        wanted: dict[str, set[str] | None] = {}
        for name in (a.strip() for a in attributes.split(",") if a.strip()):
            top, _, sub = name.partition(".")
            key = _match_key(resource, top)
            if key is None:
                continue
            subs = wanted.get(key, set())
            if not sub or subs is None:
                wanted[key] = None
            else:
                wanted[key] = subs | {sub.lower()}
        out = {k: v for k, v in resource.items() if k in ("id", "schemas")}
        for key, subs in wanted.items():
            out[key] = _sub_attributes(resource[key], subs) if subs else resource[key]
        resource = out
    if excluded:
        drop = {a.strip().lower() for a in excluded.split(",")} - {"id", "schemas"}
        resource = {k: v for k, v in resource.items() if k.lower() not in drop}
    return resource


def _sub_attributes(value: Any, subs: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() in subs}
    if isinstance(value, list):
        return [_sub_attributes(item, subs) for item in value]
    return value


def _match_key(resource: dict, name: str) -> str | None:
    lowered = name.lower()
    return next((k for k in resource if k.lower() == lowered), None)


# -- filters ----------------------------------------------------------------------------------------
# What the service documents (databricks-sdk `iam.py`, `filter`): eq, co, sw, ne joined by and/or, "only
# simple expressions". Other RFC 7644 operators, `not`, grouping and value paths are refused with a 400.
_TOKEN = re.compile(r"""\s*(?:([()\[\]])|"((?:[^"\\]|\\.)*)"|('[^']*'?)|([^\s()\[\]"']+))""")
_COMPARE = ("eq", "ne", "co", "sw")
_UNSUPPORTED = ("ew", "gt", "ge", "lt", "le", "pr", "not")
_UNSUPPORTED_DETAIL = "Given filter operator is not supported."
# Attributes a filter may name, per resource; a sub-attribute follows a dot (`emails.value`).
_MULTI_SUBS = ("value", "display", "type", "primary", "$ref")
_FILTERABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "Users": {
        "id": (),
        "username": (),
        "displayname": (),
        "active": (),
        "externalid": (),
        "emails": _MULTI_SUBS,
        "name": ("givenname", "familyname", "formatted"),
        "groups": _MULTI_SUBS,
        "entitlements": ("value",),
        "roles": ("value",),
    },
    "Groups": {
        "id": (),
        "displayname": (),
        "externalid": (),
        "members": _MULTI_SUBS,
        "groups": _MULTI_SUBS,
        "entitlements": ("value",),
        "roles": ("value",),
        "meta": ("resourcetype",),
    },
    "ServicePrincipals": {
        "id": (),
        "applicationid": (),
        "displayname": (),
        "active": (),
        "externalid": (),
        "groups": _MULTI_SUBS,
        "entitlements": ("value",),
        "roles": ("value",),
    },
}
Predicate = Callable[[dict], bool]


@dataclass
class _Cmp:
    attr: str
    op: str
    value: Any


def _invalid_filter(detail: str) -> ScimError:
    return _error(400, detail, "invalidFilter")


def _tokenize(text: str) -> list[tuple[str, Any]]:
    """("value", str) for double-quoted strings, ("word", str) otherwise; quotes of other kinds are a 400."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _invalid_filter(f"Invalid filter: {text}")
        pos = m.end()
        if m.group(1):
            raise _invalid_filter(_UNSUPPORTED_DETAIL)  # grouping and value paths are not "simple expressions"
        if m.group(3) is not None:
            raise _invalid_filter(f"Invalid filter: string values must be in double quotes, not {m.group(3)}")
        if m.group(2) is not None:
            tokens.append(("value", re.sub(r"\\(.)", r"\1", m.group(2))))
        else:
            tokens.append(("word", m.group(4)))
    return tokens


class _FilterParser:
    """`expr := term (or term)*; term := comparison (and comparison)*; comparison := attr op value`."""

    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.tokens = _tokenize(text)
        self.pos = 0

    def fail(self) -> ScimError:
        return _invalid_filter(f"Invalid filter: {self.text}")

    def peek_word(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return str(self.tokens[self.pos][1]).lower()
        return None

    def parse(self) -> Predicate | _Cmp:
        node = self.expr()
        if self.pos != len(self.tokens):
            raise self.fail()
        return node

    def expr(self) -> Predicate | _Cmp:
        node = self.term()
        while self.peek_word() == "or":
            self.pos += 1
            left, right = _predicate(node), _predicate(self.term())
            node = lambda r, a=left, b=right: a(r) or b(r)  # noqa: E731 - closures over parse results
        return node

    def term(self) -> Predicate | _Cmp:
        node: Predicate | _Cmp = self.comparison()
        while self.peek_word() == "and":
            self.pos += 1
            left, right = _predicate(node), _predicate(self.comparison())
            node = lambda r, a=left, b=right: a(r) and b(r)  # noqa: E731
        return node

    def comparison(self) -> _Cmp:
        if self.peek_word() in _UNSUPPORTED:
            raise _invalid_filter(_UNSUPPORTED_DETAIL)
        if self.peek_word() is None:
            raise self.fail()
        attr = _filter_attribute(self.kind, str(self.tokens[self.pos][1]))
        self.pos += 1
        op = self.peek_word()
        self.pos += 1
        if op in _UNSUPPORTED:
            raise _invalid_filter(_UNSUPPORTED_DETAIL)
        if op not in _COMPARE or self.pos >= len(self.tokens):
            raise self.fail()
        kind, raw = self.tokens[self.pos]
        self.pos += 1
        return _Cmp(attr, op, raw if kind == "value" else _literal(str(raw), self.text))


def _filter_attribute(kind: str, name: str) -> str:
    """The attribute path a filter names (schema prefix dropped), or a 400 when the resource has none."""
    path = name.rsplit(":", 1)[-1]  # `urn:...:User:userName` names `userName`
    top, _, sub = path.lower().partition(".")
    subs = _FILTERABLE[kind].get(top)
    if subs is None or (sub and sub not in subs):
        raise _invalid_filter(f"Invalid filter: {name} is not a filterable attribute of {kind}")
    return path


def _literal(word: str, text: str) -> Any:
    """true / false / null / a number; a bare word is not a value (strings are double-quoted)."""
    lowered = word.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(word)
    except ValueError:
        raise _invalid_filter(f"Invalid filter: {text}") from None


def _attribute_values(resource: dict, path: str) -> list[Any]:
    top, _, sub = path.partition(".")
    key = _match_key(resource, top)
    if key is None:
        return []
    value = resource[key]
    items = value if isinstance(value, list) else [value]
    if sub:
        # Stored records keep entitlements/roles as bare strings: `roles.value` is the string itself.
        items = [
            item.get(_match_key(item, sub) or sub) if isinstance(item, dict) else item
            for item in items
            if isinstance(item, dict) or sub.lower() == "value"
        ]
    elif items and isinstance(items[0], dict):
        items = [item.get("value") for item in items]  # `members eq "1"` means the sub-attribute value
    return [v for v in items if v is not None]


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return op in ("eq", "ne") and (str(actual).lower() == str(expected).lower()) == (op == "eq")
    left, right = str(actual).lower(), str(expected).lower()
    return {
        "eq": left == right,
        "ne": left != right,
        "co": right in left,
        "sw": left.startswith(right),
    }[op]


def _predicate(node: Predicate | _Cmp) -> Predicate:
    if not isinstance(node, _Cmp):
        return node
    cmp = node

    def test(resource: dict) -> bool:
        values = _attribute_values(resource, cmp.attr)
        if cmp.op == "ne":
            return not any(_compare(v, "eq", cmp.value) for v in values)
        return any(_compare(v, cmp.op, cmp.value) for v in values)

    return test


_INDEXED = {
    ("Users", "username"): USER_NAMES,
    ("Groups", "displayname"): GROUP_NAMES,
    ("ServicePrincipals", "applicationid"): APP_IDS,
}


def _candidates(ws: Workspace, kind: str, node: Predicate | _Cmp | None) -> list[dict]:
    """The records a filter can match: one index lookup for `id`/`userName`/... eq, else all of them."""
    table = ws.table(_TABLE_OF[kind])
    if isinstance(node, _Cmp) and node.op == "eq" and node.value is not None:
        attr = node.attr.lower()
        if attr == "id":
            record = table.get(str(node.value))
            return [record] if record else []
        index = _INDEXED.get((kind, attr))
        if index:
            record_id = ws.table(index).get(str(node.value).lower())
            return [table[record_id]] if record_id in table else []
    return list(table.values())


# -- list -------------------------------------------------------------------------------------------
def _int_param(req: Request, name: str, default: int) -> int:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _error(400, f"Invalid value for {name}: {raw}", "invalidValue") from None


def _sort(resources: list[dict], sort_by: str | None, order: str | None) -> list[dict]:
    if not sort_by:
        return resources

    def key(resource: dict) -> tuple[int, str]:
        values = _attribute_values(resource, sort_by)
        return (0, str(values[0]).lower()) if values else (1, "")

    descending = (order or "ascending").lower() == "descending"
    return sorted(resources, key=key, reverse=descending)


_COMPUTED = ("groups", "members", "meta", "schemas")


def _needs_render(text: str | None, sort_by: str | None) -> bool:
    """Whether a filter or sort reads computed attributes; others run on the stored records (cheap)."""
    words = [str(w) for kind, w in (_tokenize(text) if text else []) if kind == "word"]
    names = [*words, sort_by or ""]
    return any(n.split(".")[0].split(":")[-1].lower() in _COMPUTED for n in names)


def list_resources(ws: Workspace, kind: str, req: Request) -> dict:
    """A ListResponse page: 1-based startIndex, `Resources` omitted once past the end."""
    text, sort_by = req.arg("filter"), req.arg("sortBy")
    node = _FilterParser(text, kind).parse() if text and text.strip() else None
    rendered = _needs_render(text, sort_by)
    resources = _candidates(ws, kind, node)
    if rendered:
        resources = [render(ws, kind, r) for r in resources]
    if node is not None:
        test = _predicate(node)
        resources = [r for r in resources if test(r)]
    resources = _sort(resources, sort_by, req.arg("sortOrder"))
    start = max(1, _int_param(req, "startIndex", 1))
    count = max(0, _int_param(req, "count", len(resources)))
    page = resources[start - 1 : start - 1 + count]
    body: dict[str, Any] = {
        "totalResults": len(resources),
        "startIndex": start,
        "itemsPerPage": len(page),
        "schemas": LIST_SCHEMAS,
    }
    if page:
        attributes, excluded = req.arg("attributes"), req.arg("excludedAttributes")
        full = page if rendered else [render(ws, kind, r) for r in page]
        body["Resources"] = [_project(r, attributes, excluded) for r in full]
    return body


# -- create / replace -------------------------------------------------------------------------------
def _multi(value: Any) -> list[str]:
    """`[{"value": x}]`, `{"value": x}`, `"x"` or `["x"]` → ["x"], the forms clients send."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        raw = item.get("value") if isinstance(item, dict) else item
        if raw is None or isinstance(raw, (dict, list)):
            raise _error(400, f"Invalid value: {item}", "invalidValue")
        out.append(str(raw))
    return out


def _entitlements(value: Any) -> list[str]:
    names = list(dict.fromkeys(_multi(value)))
    for name in names:
        if name not in ENTITLEMENTS:
            raise _error(400, f"Invalid entitlement: {name}", "invalidValue")
    return names


def _roles(ws: Workspace, value: Any) -> list[str]:
    arns = list(dict.fromkeys(_multi(value)))
    for arn in arns:
        if arn not in ws.table("instance_profiles"):
            raise _error(400, f"Instance profile {arn} is not registered in this workspace.", "invalidValue")
    return arns


def _bool(value: Any) -> bool:
    # Azure AD's provisioning agent sends "False"/"True" strings.
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


_NAME_FIELD = {"Users": "userName", "Groups": "displayName", "ServicePrincipals": "applicationId"}
_NAME_INDEX = {"Users": USER_NAMES, "Groups": GROUP_NAMES, "ServicePrincipals": APP_IDS}


def _check_name(ws: Workspace, kind: str, name: Any, record_id: str | None = None) -> str:
    """The userName / displayName / applicationId a record may take: present and not someone else's."""
    if not isinstance(name, str) or not name.strip():
        raise _error(400, f"Request is missing the required attribute {_NAME_FIELD[kind]}.", "invalidValue")
    owner = ws.table(_NAME_INDEX[kind]).get(name.lower())
    if owner is not None and owner != record_id:
        message = {
            "Users": f"User with username {name} already exists.",
            "Groups": f"Group with name {name} already exists.",
            "ServicePrincipals": f"Service principal with application id {name} already exists.",
        }[kind]
        raise _error(409, message, "uniqueness")
    return name


def _check_principals(ws: Workspace, member_ids: list[str]) -> None:
    for member_id in member_ids:
        if kind_of(ws, member_id) is None:
            raise _error(404, f"Member with id {member_id} not found.", "invalidValue")


def _check_groups(ws: Workspace, group_ids: list[str]) -> list[dict]:
    return [_require(ws, "Groups", g) for g in group_ids if g != users_group_id(ws)]


def _fields(ws: Workspace, kind: str, body: dict) -> dict:
    """The stored (non-membership) attributes of a create / PUT body."""
    record: dict[str, Any] = {
        "entitlements": _entitlements(body.get("entitlements")),
        "roles": _roles(ws, body.get("roles")),
    }
    if body.get("externalId"):
        record["externalId"] = str(body["externalId"])
    if kind == "Groups":
        record["displayName"] = body.get("displayName")
        return record
    record["active"] = _bool(body.get("active", True))
    if kind == "Users":
        user_name = body.get("userName")
        record["displayName"] = body.get("displayName") or user_name
        emails = body.get("emails")
        record["emails"] = emails or [{"value": user_name, "type": "work", "primary": True}]
        if isinstance(body.get("name"), dict) and body["name"]:
            record["name"] = body["name"]
    else:
        record["displayName"] = body.get("displayName") or body.get("applicationId")
    return record


def _insert_group(ws: Workspace, body: dict) -> dict:
    name = _check_name(ws, "Groups", body.get("displayName"))
    record = {"id": _new_id(ws), **_fields(ws, "Groups", body), "members": []}
    ws.table(GROUP_NAMES)[name.lower()] = record["id"]
    ws.table(GROUPS)[record["id"]] = record
    return record


def _create(ws: Workspace, kind: str, body: dict) -> dict:
    """Validate, then store a new resource from a POST body and link its members and groups."""
    members = _multi(body.get("members")) if kind == "Groups" else []
    _check_principals(ws, members)
    parents = _check_groups(ws, _multi(body.get("groups")))
    if kind == "Groups":
        record = _insert_group(ws, body)
    else:
        if kind == "ServicePrincipals" and (ws.scim_assigns_application_ids or not body.get("applicationId")):
            body = {**body, "applicationId": _new_application_id(ws)}
        name_field = _NAME_FIELD[kind]
        name = _check_name(ws, kind, body.get(name_field))
        fields = _fields(ws, kind, body)
        record = {"id": _new_id(ws), name_field: name, **fields}
        ws.table(_NAME_INDEX[kind])[name.lower()] = record["id"]
        ws.table(_TABLE_OF[kind])[record["id"]] = record
    for member_id in members:
        _link(ws, record, member_id)
    for parent in parents:
        _link(ws, parent, record["id"])
    if kind == "Users":
        _create_home(ws, record["userName"])
    return record


def _create_home(ws: Workspace, user_name: str) -> None:
    """A new user gets `/Users/<userName>`, as the service creates it."""
    from dbsync_emulator.apis import workspace as ws_api

    if not hasattr(ws_api, "mkdirs"):
        return
    if ws_api.get_object(ws, "/") is None:
        ws_api.init(ws)  # SCIM's built-ins are created before the workspace tree on a fresh workspace
    ws_api.mkdirs(ws, f"/Users/{user_name}")


def _replace(ws: Workspace, kind: str, record: dict, body: dict) -> None:
    """PUT: every attribute is replaced, memberships included (an absent list empties it)."""
    if kind == "Users" and body.get("userName") and body["userName"].lower() != record["userName"].lower():
        raise _error(400, "The userName of an existing user cannot be changed.", "mutability")
    if kind == "ServicePrincipals" and body.get("applicationId") not in (None, record["applicationId"]):
        raise _error(400, "The applicationId of a service principal cannot be changed.", "mutability")
    members = _multi(body.get("members"))
    _check_principals(ws, members)
    parents = _check_groups(ws, _multi(body.get("groups")))
    display_name = body.get("displayName") or record["displayName"]
    fields = _fields(
        ws,
        kind,
        {
            **body,
            "userName": record.get("userName"),
            "applicationId": record.get("applicationId"),
            "displayName": display_name,
        },
    )
    if kind == "Groups":
        _rename_group(ws, record, display_name)
        _set_members(ws, record, members)
    for key in ("externalId", "name"):
        record.pop(key, None)
    record.update(fields)
    _set_parents(ws, record["id"], [p["id"] for p in parents])


def _rename_group(ws: Workspace, group: dict, name: Any) -> None:
    if name is None or name == group["displayName"]:
        return
    if group["displayName"] in BUILTIN_GROUPS:
        raise _error(400, f"The {group['displayName']} group cannot be renamed.", "mutability")
    _check_name(ws, "Groups", name, group["id"])
    ws.table(GROUP_NAMES).pop(group["displayName"].lower(), None)
    ws.table(GROUP_NAMES)[name.lower()] = group["id"]
    group["displayName"] = name


def _set_members(ws: Workspace, group: dict, member_ids: list[str]) -> None:
    if group["id"] == users_group_id(ws) and not member_ids:
        return  # a PUT of the users group that leaves its (computed) members alone
    for member_id in list(group["members"]):
        if member_id not in member_ids:
            _unlink(ws, group, member_id)
    for member_id in member_ids:
        _link(ws, group, member_id)


def _set_parents(ws: Workspace, principal_id: str, group_ids: list[str]) -> None:
    users_id = users_group_id(ws)
    wanted = [g for g in group_ids if g != users_id]
    for group_id in list(ws.table(PARENTS).get(principal_id, [])):
        if group_id not in wanted:
            _unlink(ws, ws.table(GROUPS)[group_id], principal_id)
    for group_id in wanted:
        _link(ws, _require(ws, "Groups", group_id), principal_id)


# -- patch ------------------------------------------------------------------------------------------
_PATH = re.compile(r'^\s*([\w:.$-]+?)(?:\[\s*(\w+)\s+eq\s+"?([^"\]]*)"?\s*\])?(?:\.(\w+))?\s*$', re.IGNORECASE)
_MULTI_ATTRS = ("members", "groups", "entitlements", "roles")


def _patch(ws: Workspace, kind: str, record: dict, body: dict) -> None:
    """Apply a PatchOp body; operations run in order (not atomically: an error keeps earlier ones)."""
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list):
        raise _error(400, "Request is unparsable, syntactically incorrect, or violates schema.", "invalidSyntax")
    for operation in operations:
        if not isinstance(operation, dict):
            raise _error(400, f"Invalid patch operation: {operation}", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "remove", "replace"):
            raise _error(400, f"Unsupported patch operation: {operation.get('op')}", "invalidSyntax")
        path, value = operation.get("path"), operation.get("value")
        if path:
            _patch_path(ws, kind, record, op, str(path), value)
        elif op == "remove" or not isinstance(value, dict):
            raise _error(400, "A patch operation without a path needs an object value.", "noTarget")
        else:
            for attr, attr_value in value.items():
                _patch_path(ws, kind, record, op, attr, attr_value)


def _patch_path(ws: Workspace, kind: str, record: dict, op: str, path: str, value: Any) -> None:
    m = _PATH.match(path)
    if m is None:
        raise _error(400, f"Invalid path: {path}", "invalidPath")
    attr = m.group(1).rsplit(":", 1)[-1].lower()  # schema-qualified paths end in the attribute name
    selector = (m.group(2).lower(), m.group(3)) if m.group(2) else None
    sub = m.group(4)
    if attr == "emails" and kind == "Users":
        _patch_emails(record, op, selector, sub, value)
    elif attr in _MULTI_ATTRS:
        if selector is not None and selector[0] != "value":
            raise _error(400, f"Invalid path: {path}", "invalidPath")
        targets = [selector[1]] if selector is not None else _multi(value)
        _patch_multi(ws, kind, record, op, attr, targets)
    elif op == "remove":
        _patch_scalar(ws, kind, record, attr, sub, None)
    elif value is None:
        raise _error(400, f"A value is required to {op} {path}.", "invalidValue")
    else:
        _patch_scalar(ws, kind, record, attr, sub, value)


def _patch_emails(record: dict, op: str, selector: tuple[str, str] | None, sub: str | None, value: Any) -> None:
    """`emails`, or one of them chosen by `emails[type eq "work"]` (Azure AD), optionally `.value`."""
    emails = [dict(e) for e in record.get("emails", []) if isinstance(e, dict)]
    if selector is None:
        new = value if isinstance(value, list) else [value] if value else []
        record["emails"] = [] if op == "remove" else new if op == "replace" else [*emails, *new]
        return
    key, wanted = selector
    chosen = [e for e in emails if str(e.get(key, "")).lower() == wanted.lower()]
    if op == "remove":
        record["emails"] = [e for e in emails if e not in chosen]
        return
    if not chosen:
        chosen = [{key: wanted}]
        emails.append(chosen[0])
    for email in chosen:
        if sub:
            email[sub] = value
        elif isinstance(value, dict):
            email.update(value)
    record["emails"] = emails


def _patch_multi(ws: Workspace, kind: str, record: dict, op: str, attr: str, targets: list[str]) -> None:
    current = _current_multi(ws, kind, record, attr)
    if op == "replace":
        wanted = targets
    elif op == "add":
        wanted = [*current, *[t for t in targets if t not in current]]
    else:
        wanted = [c for c in current if c not in targets] if targets else []
    if attr == "entitlements":
        record["entitlements"] = _entitlements(wanted)
    elif attr == "roles":
        record["roles"] = _roles(ws, wanted)
    elif attr == "members":
        if kind != "Groups":
            raise _error(400, f"Invalid path: {attr}", "invalidPath")
        _guard_users_group(ws, record)
        _check_principals(ws, wanted)
        _set_members(ws, record, wanted)
    else:
        _set_parents(ws, record["id"], [g["id"] for g in _check_groups(ws, wanted)])


def _current_multi(ws: Workspace, kind: str, record: dict, attr: str) -> list[str]:
    if attr == "members":
        return list(record.get("members", []))
    if attr == "groups":
        return list(ws.table(PARENTS).get(record["id"], []))
    return list(record.get(attr, []))


def _patch_scalar(ws: Workspace, kind: str, record: dict, attr: str, sub: str | None, value: Any) -> None:
    if attr == "displayname":
        if kind == "Groups":
            _rename_group(ws, record, value)
        else:
            record["displayName"] = value or record.get("userName") or record.get("applicationId")
    elif attr == "active" and kind != "Groups":
        record["active"] = _bool(value) if value is not None else True
    elif attr == "externalid":
        record.pop("externalId", None)
        if value:
            record["externalId"] = str(value)
    elif attr == "name" and kind == "Users":
        name = dict(record.get("name") or {})
        if sub:
            name.pop(sub, None) if value is None else name.__setitem__(sub, value)
        else:
            name = dict(value or {})
        record.pop("name", None)
        if name:
            record["name"] = name
    elif attr in ("username", "applicationid", "id"):
        raise _error(400, f"Attribute {attr} cannot be modified.", "mutability")
    else:
        raise _error(400, f"Invalid path: {attr}", "invalidPath")


# -- delete -----------------------------------------------------------------------------------------
def _delete(ws: Workspace, kind: str, record: dict) -> None:
    principal_id = record["id"]
    if kind == "Groups":
        if record["displayName"] in BUILTIN_GROUPS:
            raise _error(400, f"The {record['displayName']} group cannot be deleted.", "mutability")
        for member_id in list(record["members"]):
            _unlink(ws, record, member_id)
        ws.table(GROUP_NAMES).pop(record["displayName"].lower(), None)
    elif kind == "Users":
        ws.table(USER_NAMES).pop(record["userName"].lower(), None)
    else:
        ws.table(APP_IDS).pop(record["applicationId"].lower(), None)
    for group_id in list(ws.table(PARENTS).get(principal_id, [])):
        _unlink(ws, ws.table(GROUPS)[group_id], principal_id)
    ws.table(PARENTS).pop(principal_id, None)
    ws.table(_TABLE_OF[kind]).pop(principal_id)


# -- handlers ---------------------------------------------------------------------------------------
def _respond(req: Request, body: dict, status: int = 200) -> Response:
    accept = req.headers.get("accept", "")
    scim_only = "scim+json" in accept and "application/json" not in accept
    content_type = "application/scim+json" if scim_only else "application/json"
    return Response(status, body, content_type=content_type)


def _body(req: Request) -> dict:
    try:
        return req.json
    except Exception:
        raise _error(
            400, "Request is unparsable, syntactically incorrect, or violates schema.", "invalidSyntax"
        ) from None


def _register(kind: str) -> None:
    base = f"{PREFIX}/{kind}"

    def list_handler(ws: Workspace, req: Request) -> Response:
        return _respond(req, list_resources(ws, kind, req))

    def get_handler(ws: Workspace, req: Request) -> Response:
        record = _require(ws, kind, req.path_params["id"])
        resource = _project(render(ws, kind, record), req.arg("attributes"), req.arg("excludedAttributes"))
        return _respond(req, resource)

    def create_handler(ws: Workspace, req: Request) -> Response:
        return _respond(req, render(ws, kind, _create(ws, kind, _body(req))), 201)

    def replace_handler(ws: Workspace, req: Request) -> Response:
        record = _require(ws, kind, req.path_params["id"])
        _replace(ws, kind, record, _body(req))
        return _respond(req, render(ws, kind, record))

    def patch_handler(ws: Workspace, req: Request) -> Response:
        record = _require(ws, kind, req.path_params["id"])
        _patch(ws, kind, record, _body(req))
        return _respond(req, render(ws, kind, record))

    def delete_handler(ws: Workspace, req: Request) -> Response:
        _delete(ws, kind, _require(ws, kind, req.path_params["id"]))
        return Response(204, None)

    routes.add("GET", (base,), list_handler)
    routes.add("POST", (base,), create_handler)
    routes.add("GET", (f"{base}/{{id}}",), get_handler)
    routes.add("PUT", (f"{base}/{{id}}",), replace_handler)
    routes.add("PATCH", (f"{base}/{{id}}",), patch_handler)
    routes.add("DELETE", (f"{base}/{{id}}",), delete_handler)


for _kind in _TABLE_OF:
    _register(_kind)


@routes.get(f"{PREFIX}/Me")
def me(ws: Workspace, req: Request) -> Response:
    """The caller: the workspace's admin user."""
    user = find_user(ws, ws.admin_user)
    if user is None:
        raise _error(404, f"User {ws.admin_user} not found.")
    resource = _project(render(ws, "Users", user), req.arg("attributes"), req.arg("excludedAttributes"))
    return _respond(req, resource)
