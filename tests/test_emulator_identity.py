"""SCIM 2.0 (users, groups, service principals, /Me) and instance profiles, driven by databricks-sdk."""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound, ResourceAlreadyExists, ResourceConflict
from databricks.sdk.service import iam

from dbsync_emulator import EmulatorHandle
from tests.conftest import endpoint_count

SCIM = "/api/2.0/preview/scim/v2"
PATCH_OP = [iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]
ARN = "arn:aws:iam::123456789012:instance-profile/data-readers"


def _raw(emulator: EmulatorHandle, method: str, path: str, **kwargs: object) -> requests.Response:
    """A plain HTTP call, for what the SDK hides: status codes, headers and absent keys."""
    headers = {"Authorization": f"Bearer {emulator.token}", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, emulator.url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def _patch(op: iam.PatchOp, path: str, value: object = None) -> list[iam.Patch]:
    return [iam.Patch(op=op, path=path, value=value)]


def _group_names(user: iam.User | iam.ServicePrincipal) -> dict[str, str]:
    return {g.display: g.type for g in user.groups or []}  # type: ignore[misc]


# -- users ------------------------------------------------------------------------------------------
def test_me_is_the_admin_in_admins_and_users(w: WorkspaceClient) -> None:
    me = w.current_user.me()

    assert me.user_name == "admin@example.com"
    assert _group_names(me) == {"admins": "direct", "users": "direct"}
    assert me.active is True


def test_user_lifecycle_with_statuses_and_home_directory(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    user = w.users.create(
        user_name="ana@example.com",
        display_name="Ana",
        entitlements=[iam.ComplexValue(value="allow-cluster-create")],
    )

    assert user.id and user.id.isdigit()
    assert w.users.get(user.id).display_name == "Ana"
    assert [e.value for e in w.users.get(user.id).entitlements or []] == ["allow-cluster-create"]
    assert w.users.get(user.id).emails[0].value == "ana@example.com"  # type: ignore[index]
    assert w.workspace.get_status("/Users/ana@example.com").object_type.value == "DIRECTORY"  # type: ignore[union-attr]
    w.users.delete(user.id)
    with pytest.raises(NotFound):
        w.users.get(user.id)
    statuses = emulator.stats.document()["endpoints"]
    assert statuses[f"POST {SCIM}/Users"]["statuses"] == {"201": 1}
    assert statuses[f"DELETE {SCIM}/Users/{{id}}"]["statuses"] == {"204": 1}


def test_duplicate_user_name_is_a_conflict_case_insensitively(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.users.create(user_name="bo@example.com")

    with pytest.raises(ResourceConflict, match=re.escape("User with username BO@example.com already exists.")):
        w.users.create(user_name="BO@example.com")
    body = _raw(emulator, "POST", f"{SCIM}/Users", json={"userName": "bo@example.com"}).json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "409"


def test_scim_json_content_type_and_scim_error_for_unknown_id(emulator: EmulatorHandle) -> None:
    created = _raw(
        emulator,
        "POST",
        f"{SCIM}/Groups",
        data=b'{"displayName": "scim-json"}',
        headers={"Content-Type": "application/scim+json"},
    )
    missing = _raw(emulator, "GET", f"{SCIM}/Users/42")

    assert created.status_code == 201
    assert created.json()["meta"] == {"resourceType": "WorkspaceGroup"}
    assert missing.status_code == 404
    assert missing.json()["status"] == "404"
    assert "detail" in missing.json()


def test_user_put_replaces_attributes_and_memberships(w: WorkspaceClient) -> None:
    group = w.groups.create(display_name="analysts")
    user = w.users.create(user_name="cy@example.com", groups=[iam.ComplexValue(value=group.id)])
    assert "analysts" in _group_names(w.users.get(user.id))  # type: ignore[arg-type]

    w.users.update(user.id, user_name="cy@example.com", display_name="Cy", active=False)  # type: ignore[arg-type]

    replaced = w.users.get(user.id)  # type: ignore[arg-type]
    assert (replaced.display_name, replaced.active) == ("Cy", False)
    assert _group_names(replaced) == {"users": "direct"}
    with pytest.raises(BadRequest):
        w.users.update(user.id, user_name="other@example.com")  # type: ignore[arg-type]


# -- list: pagination, filters, projection, sorting ---------------------------------------------------
def test_list_pages_with_count_two_until_resources_run_out(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    for i in range(5):
        w.users.create(user_name=f"page{i}@example.com")
    emulator.stats.reset()

    names = [u.user_name for u in w.users.list(count=2)]

    assert len(names) == 6 and len(set(names)) == 6
    assert endpoint_count(emulator, f"GET {SCIM}/Users") == 4  # 3 full pages + 1 empty page
    past_end = _raw(emulator, "GET", f"{SCIM}/Users", params={"startIndex": 7, "count": 2}).json()
    assert "Resources" not in past_end
    assert (past_end["totalResults"], past_end["startIndex"], past_end["itemsPerPage"]) == (6, 7, 0)


def test_default_list_loop_terminates(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.groups.create(display_name="g1")
    emulator.stats.reset()

    names = sorted(g.display_name for g in w.groups.list())  # type: ignore[type-var]

    assert names == ["admins", "g1", "users"]
    assert endpoint_count(emulator, f"GET {SCIM}/Groups") == 2


def test_filters(w: WorkspaceClient) -> None:
    for name, display in [("dan@corp.com", "Dan Data"), ("eve@corp.com", "Eve Eng"), ("fay@else.org", "Fay")]:
        w.users.create(user_name=name, display_name=display, external_id=f"ext-{name[:3]}")

    def users(expr: str) -> list[str]:
        return sorted(u.user_name for u in w.users.list(filter=expr))  # type: ignore[type-var]

    assert users('userName eq "DAN@corp.com"') == ["dan@corp.com"]
    assert users('userName co "corp"') == ["dan@corp.com", "eve@corp.com"]
    assert users('displayName sw "E"') == ["eve@corp.com"]
    assert users('userName ne "admin@example.com" and userName ne "fay@else.org"') == [
        "dan@corp.com",
        "eve@corp.com",
    ]
    # Grouping is refused by the service ("only simple expressions"); `and` binds tighter than `or`.
    assert users('displayName eq "Fay" or externalId eq "ext-dan" and active eq true') == [
        "dan@corp.com",
        "fay@else.org",
    ]
    dan = next(iter(w.users.list(filter='userName eq "dan@corp.com"')))
    assert users(f'id eq "{dan.id}"') == ["dan@corp.com"]
    assert users('userName eq "nobody@corp.com"') == []
    with pytest.raises(BadRequest):
        list(w.users.list(filter='userName eq "unterminated'))
    with pytest.raises(BadRequest):
        list(w.users.list(filter="userName like x"))


def test_attributes_excluded_attributes_and_sorting(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    for name in ("b@x.com", "c@x.com", "a@x.com"):
        w.users.create(user_name=name)

    body = _raw(emulator, "GET", f"{SCIM}/Users", params={"attributes": "userName", "count": 1}).json()
    excluded = next(iter(w.users.list(excluded_attributes="groups,emails", count=1)))
    ordered = [u.user_name for u in w.users.list(sort_by="userName", sort_order=iam.ListSortOrder.DESCENDING)]

    assert set(body["Resources"][0]) == {"id", "userName", "schemas"}
    assert not excluded.groups and not excluded.emails and excluded.user_name
    assert ordered == ["c@x.com", "b@x.com", "admin@example.com", "a@x.com"]


# -- groups: membership, nesting, built-ins -------------------------------------------------------------
def test_patch_members_with_nested_groups(w: WorkspaceClient) -> None:
    user = w.users.create(user_name="gus@example.com")
    inner = w.groups.create(display_name="inner")
    outer = w.groups.create(display_name="outer")

    w.groups.patch(outer.id, operations=_patch(iam.PatchOp.ADD, "members", [{"value": inner.id}]), schemas=PATCH_OP)  # type: ignore[arg-type]
    w.groups.patch(inner.id, operations=_patch(iam.PatchOp.ADD, "members", [{"value": user.id}]), schemas=PATCH_OP)  # type: ignore[arg-type]

    assert _group_names(w.users.get(user.id)) == {"inner": "direct", "outer": "indirect", "users": "direct"}  # type: ignore[arg-type]
    in_outer = w.users.list(filter=f'groups.value eq "{outer.id}"', attributes="userName")
    assert [u.user_name for u in in_outer] == ["gus@example.com"]
    outer_members = w.groups.get(outer.id).members or []  # type: ignore[arg-type]
    assert [(m.value, m.display, m.ref) for m in outer_members] == [(inner.id, "inner", f"Groups/{inner.id}")]
    assert [g.display for g in w.groups.get(inner.id).groups or []] == ["outer"]  # type: ignore[arg-type]

    w.groups.patch(inner.id, operations=_patch(iam.PatchOp.REMOVE, f'members[value eq "{user.id}"]'), schemas=PATCH_OP)  # type: ignore[arg-type]

    assert _group_names(w.users.get(user.id)) == {"users": "direct"}  # type: ignore[arg-type]
    assert not w.groups.get(inner.id).members  # type: ignore[arg-type]


def test_patch_without_path_and_replace_members(w: WorkspaceClient) -> None:
    one = w.users.create(user_name="one@example.com")
    two = w.users.create(user_name="two@example.com")
    group = w.groups.create(display_name="team", members=[iam.ComplexValue(value=one.id)])

    w.groups.patch(group.id, operations=[iam.Patch(op=iam.PatchOp.ADD, value={"members": [{"value": two.id}]})])  # type: ignore[arg-type]
    assert sorted(m.value for m in w.groups.get(group.id).members or []) == sorted([one.id, two.id])  # type: ignore[arg-type, type-var]

    w.groups.patch(group.id, operations=_patch(iam.PatchOp.REPLACE, "members", [{"value": two.id}]))  # type: ignore[arg-type]
    assert [m.value for m in w.groups.get(group.id).members or []] == [two.id]  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.groups.patch(group.id, operations=_patch(iam.PatchOp.ADD, "members", [{"value": "999"}]))  # type: ignore[arg-type]


def test_group_cycle_is_accepted_without_looping(w: WorkspaceClient) -> None:
    a = w.groups.create(display_name="cycle-a")
    b = w.groups.create(display_name="cycle-b", members=[iam.ComplexValue(value=a.id)])
    w.groups.patch(a.id, operations=_patch(iam.PatchOp.ADD, "members", [{"value": b.id}]))  # type: ignore[arg-type]
    user = w.users.create(user_name="loop@example.com", groups=[iam.ComplexValue(value=a.id)])

    assert _group_names(w.users.get(user.id)) == {
        "cycle-a": "direct",
        "cycle-b": "indirect",
        "users": "direct",
    }  # type: ignore[arg-type]


def test_builtin_groups_cannot_be_deleted_or_have_users_membership_changed(w: WorkspaceClient) -> None:
    user = w.users.create(user_name="hal@example.com")
    users_group = next(iter(w.groups.list(filter='displayName eq "users"')))
    admins = next(iter(w.groups.list(filter='displayName eq "admins"')))

    assert user.id in {m.value for m in users_group.members or []}
    assert {e.value for e in users_group.entitlements or []} == {"workspace-access", "databricks-sql-access"}
    with pytest.raises(BadRequest):
        w.groups.delete(users_group.id)  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        w.groups.delete(admins.id)  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        w.groups.patch(users_group.id, operations=_patch(iam.PatchOp.REMOVE, f'members[value eq "{user.id}"]'))  # type: ignore[arg-type]
    w.groups.patch(admins.id, operations=_patch(iam.PatchOp.ADD, "members", [{"value": user.id}]))  # type: ignore[arg-type]
    assert "admins" in _group_names(w.users.get(user.id))  # type: ignore[arg-type]


def test_group_duplicate_put_and_delete(w: WorkspaceClient) -> None:
    member = w.users.create(user_name="ivy@example.com")
    group = w.groups.create(display_name="ops")

    with pytest.raises(ResourceConflict, match=re.escape("Group with name ops already exists.")):
        w.groups.create(display_name="ops")
    w.groups.update(group.id, display_name="ops-renamed", members=[iam.ComplexValue(value=member.id)])  # type: ignore[arg-type]
    renamed = w.groups.get(group.id)  # type: ignore[arg-type]
    assert renamed.display_name == "ops-renamed"
    assert [m.value for m in renamed.members or []] == [member.id]
    assert [g.display_name for g in w.groups.list(filter='displayName eq "ops-renamed"')] == ["ops-renamed"]
    w.groups.create(display_name="ops")  # the old name is free again

    w.groups.delete(group.id)  # type: ignore[arg-type]

    assert _group_names(w.users.get(member.id)) == {"users": "direct"}  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.groups.get(group.id)  # type: ignore[arg-type]


def test_user_patch_entitlements_roles_and_active(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    user = w.users.create(user_name="jo@example.com")
    w.instance_profiles.add(ARN, skip_validation=True)

    w.users.patch(
        user.id,  # type: ignore[arg-type]
        operations=[
            iam.Patch(op=iam.PatchOp.ADD, path="entitlements", value=[{"value": "databricks-sql-access"}]),
            iam.Patch(op=iam.PatchOp.ADD, path="roles", value=[{"value": ARN}]),
            iam.Patch(op=iam.PatchOp.REPLACE, path="active", value="false"),  # the SDK drops a bare False
        ],
        schemas=PATCH_OP,
    )

    patched = w.users.get(user.id)  # type: ignore[arg-type]
    assert [e.value for e in patched.entitlements or []] == ["databricks-sql-access"]
    assert [r.value for r in patched.roles or []] == [ARN]
    assert patched.active is False
    raw_patch = {"Operations": [{"op": "replace", "path": "active", "value": True}]}
    assert _raw(emulator, "PATCH", f"{SCIM}/Users/{user.id}", json=raw_patch).json()["active"] is True
    with pytest.raises(BadRequest):
        w.users.patch(user.id, operations=_patch(iam.PatchOp.REPLACE, "active"))  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        w.users.patch(user.id, operations=_patch(iam.PatchOp.ADD, "entitlements", [{"value": "be-god"}]))  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        w.users.patch(user.id, operations=_patch(iam.PatchOp.ADD, "roles", [{"value": ARN + "-unknown"}]))  # type: ignore[arg-type]


# -- service principals -----------------------------------------------------------------------------
def test_service_principal_lifecycle(w: WorkspaceClient) -> None:
    sp = w.service_principals.create(display_name="etl-bot")
    given = w.service_principals.create(display_name="named", application_id="0f3c4d6e-1111-4222-8333-444455556666")

    assert uuid.UUID(sp.application_id)  # type: ignore[arg-type]
    assert given.application_id == "0f3c4d6e-1111-4222-8333-444455556666"
    assert _group_names(sp) == {"users": "direct"}
    found = list(w.service_principals.list(filter=f'applicationId eq "{sp.application_id}"'))
    assert [s.display_name for s in found] == ["etl-bot"]
    with pytest.raises(ResourceConflict):
        w.service_principals.create(display_name="again", application_id=given.application_id)
    w.service_principals.delete(sp.id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.service_principals.get(sp.id)  # type: ignore[arg-type]


# -- instance profiles ------------------------------------------------------------------------------
def test_instance_profiles_lifecycle(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    assert _raw(emulator, "GET", "/api/2.0/instance-profiles/list").json() == {}
    assert list(w.instance_profiles.list()) == []

    w.instance_profiles.add(ARN, skip_validation=True)
    w.instance_profiles.edit(ARN, iam_role_arn="arn:aws:iam::123456789012:role/data-readers-role")

    (profile,) = w.instance_profiles.list()
    assert profile.instance_profile_arn == ARN
    assert profile.iam_role_arn == "arn:aws:iam::123456789012:role/data-readers-role"
    with pytest.raises(ResourceAlreadyExists):
        w.instance_profiles.add(ARN)
    with pytest.raises(BadRequest):
        w.instance_profiles.add("arn:aws:iam::123:instance-profile/short-account")
    with pytest.raises(NotFound):
        w.instance_profiles.remove("arn:aws:iam::123456789012:instance-profile/never-added")


def test_removing_an_instance_profile_revokes_it_from_groups(w: WorkspaceClient) -> None:
    w.instance_profiles.add(ARN)
    group = w.groups.create(display_name="readers", roles=[iam.ComplexValue(value=ARN)])
    assert [r.value for r in w.groups.get(group.id).roles or []] == [ARN]  # type: ignore[arg-type]

    w.instance_profiles.remove(ARN)

    assert not w.groups.get(group.id).roles  # type: ignore[arg-type]
