"""The legacy Groups API 2.0 (`/api/2.0/groups/*`), sharing its state with SCIM.

Real behaviour relied on: databricks-cli 0.18 `databricks_cli/sdk/service.py` `GroupsService` (the paths,
the `group_name` / `parent_name` / `user_name` parameters, GET with query parameters, POST with a JSON
body) and `groups/api.py` (`list_parents` is not recursive; exactly one of user_name / group_name).
Errors are the 2.0 services' `{"error_code", "message"}`; the SDK maps RESOURCE_ALREADY_EXISTS and
RESOURCE_DOES_NOT_EXIST by error code.
"""

from __future__ import annotations

from typing import Any

import requests
from databricks.sdk import WorkspaceClient

from dbsync_emulator import EmulatorHandle

GROUPS = "/api/2.0/groups"


def _call(emulator: EmulatorHandle, method: str, action: str, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    url = f"{emulator.url}{GROUPS}/{action}"
    if method == "GET":
        return requests.get(url, params=params, headers=headers, timeout=10)
    return requests.post(url, json=params, headers=headers, timeout=10)


def test_legacy_groups_share_state_with_scim(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.users.create(user_name="ana@example.com")

    assert _call(emulator, "POST", "create", group_name="analysts").json() == {"group_name": "analysts"}
    assert _call(emulator, "POST", "create", group_name="data").status_code == 200
    assert _call(emulator, "POST", "add-member", parent_name="analysts", user_name="ana@example.com").json() == {}
    assert _call(emulator, "POST", "add-member", parent_name="data", group_name="analysts").status_code == 200

    assert set(_call(emulator, "GET", "list").json()["group_names"]) == {"admins", "users", "analysts", "data"}
    members = _call(emulator, "GET", "list-members", group_name="analysts").json()
    assert members == {"members": [{"user_name": "ana@example.com"}]}
    parents = _call(emulator, "GET", "list-parents", user_name="ana@example.com").json()["group_names"]
    assert sorted(parents) == ["analysts", "users"]  # direct parents only: not `data`
    (scim_group,) = w.groups.list(filter='displayName eq "analysts"')
    assert [m.display for m in scim_group.members or []] == ["ana@example.com"]

    assert _call(emulator, "POST", "remove-member", parent_name="analysts", user_name="ana@example.com").ok
    assert _call(emulator, "GET", "list-members", group_name="analysts").json() == {"members": []}
    assert _call(emulator, "POST", "delete", group_name="analysts").ok
    assert not list(w.groups.list(filter='displayName eq "analysts"'))
    assert _call(emulator, "GET", "list-members", group_name="data").json() == {"members": []}


def test_legacy_groups_errors(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    _call(emulator, "POST", "create", group_name="ops")

    duplicate = _call(emulator, "POST", "create", group_name="ops")
    assert (duplicate.status_code, duplicate.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    missing = _call(emulator, "GET", "list-members", group_name="nope")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    unknown_user = _call(emulator, "POST", "add-member", parent_name="ops", user_name="ghost@example.com")
    assert unknown_user.status_code == 404
    both = _call(emulator, "POST", "add-member", parent_name="ops", user_name="a", group_name="b")
    assert (both.status_code, both.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    builtin = _call(emulator, "POST", "delete", group_name="admins")
    assert builtin.status_code == 400 and set(builtin.json()) == {"error_code", "message"}
    not_member = _call(emulator, "POST", "remove-member", parent_name="ops", user_name="admin@example.com")
    assert not_member.status_code == 404
