"""SCIM list filters as the workspace SCIM API parses them, and roles/entitlements as it validates them.

Real behaviour relied on:
- databricks-sdk-py `service/iam.py` (Users/Groups/ServicePrincipals `list`, param `filter`): "Supported
  operators are equals(eq), contains(co), starts with(sw) and not equals(ne). Additionally, simple
  expressions can be formed using logical operators - and and or. [...] we currently only support simple
  expressions." Anything else is refused; databricks-sdk-py issue #90 shows the service's answer to a filter
  it cannot parse: HTTP 400, SCIM error body, `"detail": "Given filter operator is not supported."`.
- terraform-provider-databricks PR #3136: the SCIM service's filter parser mandates double quotes for
  string values ("must use double quotes instead of single quotes"), so `displayName eq 'x'` is a 400.
- RFC 7644 §3.4.2.2: a comparison value is false / null / true / number / a JSON string.
A filter the emulator would answer with an empty result instead makes an adopt-or-create kind create a
duplicate, so every filter it does not understand must be a 400 with the SCIM error shape.
"""

from __future__ import annotations

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest
from databricks.sdk.service import iam

from dbsync_emulator import EmulatorHandle

SCIM = "/api/2.0/preview/scim/v2"
ARN = "arn:aws:iam::123456789012:instance-profile/data-readers"


def _list(emulator: EmulatorHandle, kind: str, expr: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    return requests.get(f"{emulator.url}{SCIM}/{kind}", params={"filter": expr}, headers=headers, timeout=10)


def _assert_invalid_filter(response: requests.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "400" and body["scimType"] == "invalidFilter"
    assert "Resources" not in body


@pytest.fixture
def people(w: WorkspaceClient) -> WorkspaceClient:
    for name, display in [("dan@corp.com", "Dan Data"), ("eve@corp.com", "Eve Eng"), ("fay@else.org", "Fay")]:
        w.users.create(user_name=name, display_name=display)
    w.groups.create(display_name="data-eng")
    return w


def test_single_quoted_values_are_refused_not_answered_empty(people: WorkspaceClient, emulator: EmulatorHandle) -> None:
    for kind, expr in [
        ("Users", "userName eq 'dan@corp.com'"),
        ("Groups", "displayName eq 'data-eng'"),
        ("ServicePrincipals", "displayName co 'x'"),
    ]:
        _assert_invalid_filter(_list(emulator, kind, expr))
    with pytest.raises(BadRequest):
        list(people.groups.list(filter="displayName eq 'data-eng'"))


def test_operators_the_service_does_not_support_are_a_400(people: WorkspaceClient, emulator: EmulatorHandle) -> None:
    for expr in [
        'userName ew "corp.com"',
        'userName gt "a"',
        'userName le "z"',
        "externalId pr",
        'not (userName eq "dan@corp.com")',
        '(userName eq "dan@corp.com") or (userName eq "eve@corp.com")',
        'emails[type eq "work"]',
    ]:
        response = _list(emulator, "Users", expr)
        _assert_invalid_filter(response)
    detail = _list(emulator, "Users", 'userName ew "corp.com"').json()["detail"]
    assert detail == "Given filter operator is not supported."


def test_unknown_attributes_and_bare_words_are_a_400(people: WorkspaceClient, emulator: EmulatorHandle) -> None:
    _assert_invalid_filter(_list(emulator, "Users", 'usrName eq "dan@corp.com"'))
    _assert_invalid_filter(_list(emulator, "Groups", 'userName eq "dan@corp.com"'))  # a Users attribute
    _assert_invalid_filter(_list(emulator, "ServicePrincipals", 'userName eq "x"'))
    _assert_invalid_filter(_list(emulator, "Groups", "displayName eq data-eng"))
    _assert_invalid_filter(_list(emulator, "Groups", 'displayName eq "data-eng" and'))


def test_supported_operators_with_and_binding_tighter_than_or(people: WorkspaceClient) -> None:
    """eq/ne/co/sw are case-insensitive on names; `a or b and c` is `a or (b and c)`."""

    def users(expr: str) -> list[str]:
        return sorted(u.user_name for u in people.users.list(filter=expr))  # type: ignore[type-var]

    assert users('userName eq "DAN@corp.com"') == ["dan@corp.com"]
    assert users('userName co "corp"') == ["dan@corp.com", "eve@corp.com"]
    assert users('displayName sw "e"') == ["eve@corp.com"]
    assert users('userName ne "admin@example.com" and userName ne "fay@else.org"') == ["dan@corp.com", "eve@corp.com"]
    assert users('displayName eq "Fay" or userName sw "dan" and active eq true') == ["dan@corp.com", "fay@else.org"]
    assert users('userName eq "dan@corp.com" AND displayName eq "Eve Eng"') == []
    assert [g.display_name for g in people.groups.list(filter='displayName eq "data-eng"')] == ["data-eng"]


def test_dbsync_lookup_filter_with_quotes_in_the_name(w: WorkspaceClient) -> None:
    """dbsync's ScimIndex.lookup escapes `"` and `\\` inside a double-quoted value; the service accepts it."""
    w.groups.create(display_name='team "blue" \\ west')

    found = list(w.groups.list(filter='displayName eq "team \\"blue\\" \\\\ west"', attributes="id,displayName"))

    assert [g.display_name for g in found] == ['team "blue" \\ west']


def test_service_principal_roles_must_be_registered_instance_profiles(w: WorkspaceClient) -> None:
    """Workspace SCIM `roles` hold instance profile ARNs registered with /instance-profiles/add
    (terraform-provider-databricks `databricks_service_principal_role`/`databricks_user_role`: role = the
    `databricks_instance_profile` id); an ARN the workspace does not know is refused."""
    sp = w.service_principals.create(display_name="etl")
    with pytest.raises(BadRequest):
        w.service_principals.patch(
            sp.id,  # type: ignore[arg-type]
            operations=[iam.Patch(op=iam.PatchOp.ADD, path="roles", value=[{"value": ARN}])],
        )
    with pytest.raises(BadRequest):
        w.service_principals.create(display_name="etl-2", roles=[iam.ComplexValue(value="account_admin")])
    with pytest.raises(BadRequest):
        w.service_principals.create(display_name="etl-3", entitlements=[iam.ComplexValue(value="can-do-anything")])

    w.instance_profiles.add(ARN, skip_validation=True)
    w.service_principals.patch(
        sp.id,  # type: ignore[arg-type]
        operations=[iam.Patch(op=iam.PatchOp.ADD, path="roles", value=[{"value": ARN}])],
    )
    assert [r.value for r in w.service_principals.get(sp.id).roles or []] == [ARN]  # type: ignore[arg-type]
