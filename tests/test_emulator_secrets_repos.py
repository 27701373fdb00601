"""Secrets 2.0, Repos 2.0 and Git credentials, driven by databricks-sdk over HTTP."""

from __future__ import annotations

import base64
import re

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound, ResourceAlreadyExists
from databricks.sdk.service import workspace
from freezegun import freeze_time

from dbsync_emulator import EmulatorHandle
from tests.conftest import endpoint_count

ADMIN = "admin@example.com"
REPO_URL = "https://github.com/acme/pipelines.git"


def _raw_get(emulator: EmulatorHandle, path: str, **params: str) -> dict:
    """A plain GET, to see keys the SDK hides (absent vs empty arrays)."""
    headers = {"Authorization": f"Bearer {emulator.token}"}
    return requests.get(emulator.url + path, headers=headers, params=params, timeout=10).json()


# -- scopes -----------------------------------------------------------------------------------------
def test_scope_lifecycle_and_empty_lists(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    assert _raw_get(emulator, "/api/2.0/secrets/scopes/list") == {}

    w.secrets.create_scope("team-a")
    w.secrets.create_scope("shared.scope_1", initial_manage_principal="users")

    assert [(s.name, s.backend_type.value) for s in w.secrets.list_scopes()] == [  # type: ignore[union-attr]
        ("team-a", "DATABRICKS"),
        ("shared.scope_1", "DATABRICKS"),
    ]
    assert _raw_get(emulator, "/api/2.0/secrets/list", scope="team-a") == {}
    assert [(a.principal, a.permission.value) for a in w.secrets.list_acls("team-a")] == [(ADMIN, "MANAGE")]  # type: ignore[union-attr]
    assert [(a.principal, a.permission.value) for a in w.secrets.list_acls("shared.scope_1")] == [  # type: ignore[union-attr]
        ("users", "MANAGE")
    ]
    w.secrets.delete_scope("team-a")
    assert [s.name for s in w.secrets.list_scopes()] == ["shared.scope_1"]


def test_scope_errors(w: WorkspaceClient) -> None:
    w.secrets.create_scope("dup")

    with pytest.raises(ResourceAlreadyExists, match=re.escape("Scope dup already exists!")):
        w.secrets.create_scope("dup")
    with pytest.raises(BadRequest) as bad_name:
        w.secrets.create_scope("no spaces allowed")
    assert bad_name.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(BadRequest):
        w.secrets.create_scope("x" * 129)
    with pytest.raises(BadRequest):
        w.secrets.create_scope("other", initial_manage_principal="admins")
    with pytest.raises(NotFound, match=re.escape("Scope missing does not exist!")):
        w.secrets.delete_scope("missing")


# -- secrets ----------------------------------------------------------------------------------------
def test_secret_values_round_trip_with_timestamps(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    emulator.workspace.table("settings")["secrets_get_allowed"] = True  # refused by default, as on a real workspace
    w.secrets.create_scope("vault")
    raw = bytes(range(256))

    with freeze_time("2024-05-01 12:00:00"):
        w.secrets.put_secret("vault", "db-password", string_value="s3cr3t-é")
        w.secrets.put_secret("vault", "keystore", bytes_value=base64.b64encode(raw).decode())

    assert base64.b64decode(w.secrets.get_secret("vault", "db-password").value) == "s3cr3t-é".encode()  # type: ignore[arg-type]
    assert base64.b64decode(w.secrets.get_secret("vault", "keystore").value) == raw  # type: ignore[arg-type]
    listed = {s.key: s.last_updated_timestamp for s in w.secrets.list_secrets("vault")}
    assert listed == {"db-password": 1714564800000, "keystore": 1714564800000}

    with freeze_time("2024-05-02 12:00:00"):
        w.secrets.put_secret("vault", "db-password", string_value="rotated")  # put overwrites silently

    assert base64.b64decode(w.secrets.get_secret("vault", "db-password").value) == b"rotated"  # type: ignore[arg-type]
    assert {s.key: s.last_updated_timestamp for s in w.secrets.list_secrets("vault")}["db-password"] == 1714651200000
    w.secrets.delete_secret("vault", "keystore")
    assert [s.key for s in w.secrets.list_secrets("vault")] == ["db-password"]


def test_secret_errors(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    emulator.workspace.table("settings")["secrets_get_allowed"] = True
    w.secrets.create_scope("vault")

    with pytest.raises(BadRequest) as both:
        w.secrets.put_secret("vault", "k", string_value="a", bytes_value="YQ==")
    assert both.value.error_code == "MALFORMED_REQUEST"
    with pytest.raises(BadRequest):
        w.secrets.put_secret("vault", "bad/key", string_value="a")
    with pytest.raises(NotFound):
        w.secrets.put_secret("nope", "k", string_value="a")
    with pytest.raises(NotFound, match=re.escape("Secret does not exist with scope: vault and key: k")):
        w.secrets.get_secret("vault", "k")
    with pytest.raises(NotFound):
        w.secrets.delete_secret("vault", "k")


def test_secret_values_can_be_refused_like_a_real_workspace(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.secrets.create_scope("vault")
    w.secrets.put_secret("vault", "k", string_value="v")
    emulator.workspace.table("settings")["secrets_get_allowed"] = False

    with pytest.raises(BadRequest) as refused:
        w.secrets.get_secret("vault", "k")

    assert refused.value.error_code == "BAD_REQUEST"
    assert [s.key for s in w.secrets.list_secrets("vault")] == ["k"]  # metadata stays readable


# -- ACLs -------------------------------------------------------------------------------------------
def test_acls_put_get_list_delete(w: WorkspaceClient) -> None:
    w.secrets.create_scope("vault")
    group = w.groups.create(display_name="readers")
    sp = w.service_principals.create(display_name="bot")

    w.secrets.put_acl("vault", "readers", workspace.AclPermission.READ)
    w.secrets.put_acl("vault", "readers", workspace.AclPermission.WRITE)  # overwrites
    w.secrets.put_acl("vault", sp.application_id, workspace.AclPermission.READ)  # type: ignore[arg-type]

    assert w.secrets.get_acl("vault", "readers").permission == workspace.AclPermission.WRITE
    assert {(a.principal, a.permission.value) for a in w.secrets.list_acls("vault")} == {  # type: ignore[union-attr]
        (ADMIN, "MANAGE"),
        ("readers", "WRITE"),
        (sp.application_id, "READ"),
    }
    w.secrets.delete_acl("vault", group.display_name)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.secrets.get_acl("vault", "readers")


def test_acl_errors(w: WorkspaceClient) -> None:
    w.secrets.create_scope("vault")

    with pytest.raises(BadRequest, match=re.escape("Principal ghost@example.com does not exist")):
        w.secrets.put_acl("vault", "ghost@example.com", workspace.AclPermission.READ)
    with pytest.raises(NotFound):
        w.secrets.put_acl("missing-scope", "users", workspace.AclPermission.READ)
    with pytest.raises(NotFound):
        w.secrets.delete_acl("vault", "users")
    with pytest.raises(BadRequest):
        w.api_client.do(
            "POST",
            "/api/2.0/secrets/acls/put",
            body={"scope": "vault", "principal": "users", "permission": "ALL"},
        )


# -- repos ------------------------------------------------------------------------------------------
def test_repo_create_defaults_and_workspace_object(w: WorkspaceClient) -> None:
    repo = w.repos.create(REPO_URL, "GITHUB")

    assert repo.path == f"/Repos/{ADMIN}/pipelines"
    assert repo.provider == "gitHub"
    assert repo.branch == "main"
    assert re.fullmatch(r"[0-9a-f]{40}", repo.head_commit_id or "")
    status = w.workspace.get_status(repo.path)
    assert status.object_type == workspace.ObjectType.REPO
    assert status.object_id == repo.id
    listing = {o.path: o.object_type for o in w.workspace.list(f"/Repos/{ADMIN}")}
    assert listing == {repo.path: workspace.ObjectType.REPO}
    assert w.repos.get(repo.id).url == REPO_URL  # type: ignore[arg-type]


def test_repo_create_errors(w: WorkspaceClient) -> None:
    w.repos.create(REPO_URL, "gitHub", path="/Repos/team/pipelines")

    with pytest.raises(ResourceAlreadyExists):
        w.repos.create(REPO_URL, "gitHub", path="/Repos/team/pipelines")
    with pytest.raises(BadRequest) as provider:
        w.repos.create(REPO_URL, "sourceForge")
    assert provider.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(BadRequest):
        w.repos.create("not a url", "gitHub")
    with pytest.raises(BadRequest):
        w.repos.create(REPO_URL, "gitHub", path="/Repos/too/deep/pipelines")
    with pytest.raises(NotFound):
        w.repos.get(123456)


def test_repos_list_pages_with_path_prefix(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    for i in range(45):
        w.repos.create(f"https://github.com/acme/repo-{i:02d}", "gitHub", path=f"/Repos/{ADMIN}/repo-{i:02d}")
    for i in range(3):
        w.repos.create(f"https://gitlab.com/acme/other-{i}", "gitLab", path=f"/Repos/other/other-{i}")
    emulator.stats.reset()

    mine = [r.path for r in w.repos.list(path_prefix=f"/Workspace/Repos/{ADMIN}")]

    assert mine == [f"/Repos/{ADMIN}/repo-{i:02d}" for i in range(45)]
    assert endpoint_count(emulator, "GET /api/2.0/repos") == 3  # pages of 20, 20, 5
    assert len(list(w.repos.list())) == 48
    assert [r.path for r in w.repos.list(path_prefix="/Repos/other")] == [f"/Repos/other/other-{i}" for i in range(3)]
    assert _raw_get(emulator, "/api/2.0/repos", path_prefix="/Repos/nobody") == {}


def test_repo_branch_and_tag_updates(w: WorkspaceClient) -> None:
    repo = w.repos.create(REPO_URL, "gitHub")

    w.repos.update(repo.id, branch="release")  # type: ignore[arg-type]
    on_release = w.repos.get(repo.id)  # type: ignore[arg-type]
    w.repos.update(repo.id, tag="v1.0")  # type: ignore[arg-type]
    on_tag = w.repos.get(repo.id)  # type: ignore[arg-type]

    assert on_release.branch == "release"
    assert on_release.head_commit_id != repo.head_commit_id
    assert on_tag.branch is None and on_tag.head_commit_id not in (
        repo.head_commit_id,
        on_release.head_commit_id,
    )
    with pytest.raises(BadRequest):
        w.repos.update(repo.id, branch="main", tag="v1.0")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.repos.update(987654, branch="main")


def test_repo_delete_removes_the_workspace_object(w: WorkspaceClient) -> None:
    repo = w.repos.create(REPO_URL, "gitHub")
    second = w.repos.create("https://github.com/acme/second", "gitHub")

    w.repos.delete(repo.id)  # type: ignore[arg-type]
    w.workspace.delete(second.path)  # type: ignore[arg-type]

    with pytest.raises(NotFound):
        w.repos.get(repo.id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.workspace.get_status(repo.path)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.repos.get(second.id)  # type: ignore[arg-type]
    assert list(w.repos.list()) == []


def test_repo_permissions(w: WorkspaceClient) -> None:
    repo = w.repos.create(REPO_URL, "gitHub")
    w.users.create(user_name="reader@example.com")

    w.repos.update_permissions(
        str(repo.id),
        access_control_list=[
            workspace.RepoAccessControlRequest(
                user_name="reader@example.com", permission_level=workspace.RepoPermissionLevel.CAN_READ
            )
        ],
    )

    perms = w.repos.get_permissions(str(repo.id))
    assert perms.object_type == "repo"
    levels = {
        a.user_name or a.group_name: [p.permission_level.value for p in a.all_permissions or []]  # type: ignore[union-attr]
        for a in perms.access_control_list or []
    }
    assert levels == {ADMIN: ["CAN_MANAGE"], "reader@example.com": ["CAN_READ"], "admins": ["CAN_MANAGE"]}


# -- git credentials --------------------------------------------------------------------------------
def test_git_credentials_crud(w: WorkspaceClient) -> None:
    created = w.git_credentials.create("GitHub", git_username="octo", personal_access_token="ghp_secret")

    assert created.git_provider == "gitHub"
    assert [c.git_username for c in w.git_credentials.list()] == ["octo"]
    w.git_credentials.update(created.credential_id, "gitHub", git_username="octocat")
    fetched = w.git_credentials.get(created.credential_id)
    assert fetched.git_username == "octocat"
    assert "personal_access_token" not in fetched.as_dict()
    w.git_credentials.delete(created.credential_id)
    assert list(w.git_credentials.list()) == []
    with pytest.raises(NotFound):
        w.git_credentials.get(created.credential_id)
