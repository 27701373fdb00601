"""Repos, secret scopes and secrets between two emulated workspaces: what a user would check on the target."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from conftest import Pair, endpoint_count
from databricks.sdk.service import iam
from databricks.sdk.service.workspace import AclPermission, AzureKeyVaultSecretScopeMetadata, ScopeBackendType
from freezegun import freeze_time

from dbsync.store import Store
from dbsync.store.versions import Versions, versions_path

URL = "https://github.com/acme/etl.git"
PUT = "POST /api/2.0/secrets/put"
GET_VALUE = "GET /api/2.0/secrets/get"
# These tests read values with secrets/get, which the emulator (like a real workspace) refuses unless told
# otherwise: see tests/test_sync_secret_values.py for `values_from: cluster`, what works on a real source.
API = {"values_from": "api"}
HOUR = 3600.0  # secret_scopes' default max_staleness
# Distinctive values: grepping for them proves they are nowhere they must not be.
VALUE = "s3cr3t-Value-71c9e2"
NEW_VALUE = "r0tated-Value-0d44ab"
BINARY = b"\xff\x00\xfe-binary-secret-5e1f"


@pytest.fixture(autouse=True)
def _secrets_get_allowed(pair: Pair) -> None:
    for handle in (pair.source, pair.target):
        with handle.workspace.lock:
            handle.workspace.table("settings")["secrets_get_allowed"] = True


def _repo(w, path: str):
    return next((r for r in w.repos.list(path_prefix=path.rsplit("/", 1)[0]) if r.path == path), None)


def _value(w, scope: str, key: str) -> bytes:
    return base64.b64decode(w.secrets.get_secret(scope, key).value)


def _acls(w, scope: str) -> dict[str, str]:
    return {a.principal: a.permission.value for a in w.secrets.list_acls(scope)}


def _store_bytes(pair: Pair) -> bytes:
    """The store file with its WAL and shared-memory files, and the version history (its index and every blob
    decompressed): every byte dbsync ever wrote beside the store."""
    files = [p for p in pair.state_path.parent.glob(pair.state_path.name + "*") if p.is_file()]
    history = Versions(versions_path(pair.state_path))
    files += [p for p in history.root.glob("index.db*")]
    return b"".join(p.read_bytes() for p in files) + b"".join(history.blobs.get(n) for n in history.blobs.names())


def _events(pair: Pair) -> list[dict]:
    store = Store(pair.state_path)
    try:
        return store.events(limit=1000)
    finally:
        store.close()


def _last_error(pair: Pair, kind: str, key: str) -> str:
    store = Store(pair.state_path)
    try:
        return next(p["last_error"] for p in store.problems(kind) if p["source_key"] == key)
    finally:
        store.close()


# -- repos ---------------------------------------------------------------------------------------
def test_repo_is_created_at_the_same_path_and_follows_branch_changes_and_deletes(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    etl = src.repos.create(URL, "gitHub", path="/Repos/ana@example.com/etl")
    src.repos.update(etl.id, branch="dev")
    # A Git folder outside /Repos, in a folder the target does not have yet.
    src.workspace.mkdirs("/Users/ana@example.com/projects")
    src.repos.create("https://gitlab.com/acme/ml.git", "gitLab", path="/Users/ana@example.com/projects/ml")

    # Only repos: the folders that hold them must be made by the repos kind itself.
    assert pair.sync(only=["repos"])["repos"].created == 2
    target = _repo(dst, "/Repos/ana@example.com/etl")
    assert (target.url, target.provider, target.branch) == (URL, "gitHub", "dev")
    assert target.id != etl.id, "repo ids are per workspace and must never be copied"

    src.repos.update(etl.id, branch="release")
    assert pair.sync(only=["repos"])["repos"].updated == 1
    assert _repo(dst, "/Repos/ana@example.com/etl").branch == "release"

    pair.reset_stats()
    assert pair.sync(only=["repos"])["repos"].updated == 0
    assert pair.target_writes() == 0

    src.repos.delete(etl.id)
    assert pair.sync(only=["repos"])["repos"].deleted == 1
    assert _repo(dst, "/Repos/ana@example.com/etl") is None
    assert _repo(dst, "/Users/ana@example.com/projects/ml").provider == "gitLab"


def test_a_lost_store_adopts_the_repo_at_the_same_path(pair: Pair) -> None:
    pair.src.repos.create(URL, "gitHub", path="/Repos/team/etl")
    pair.sync(only=["repos"])
    pair.state_path.unlink()
    pair.reset_stats()
    pair.sync(only=["repos"])
    assert len([r for r in pair.dst.repos.list() if r.path == "/Repos/team/etl"]) == 1
    assert pair.target_writes() == 0


def test_repo_acl_is_replicated(pair: Pair) -> None:
    repo = pair.src.repos.create(URL, "gitHub", path="/Repos/team/etl")
    pair.src.permissions.update(
        "repos",
        str(repo.id),
        access_control_list=[
            iam.AccessControlRequest(group_name="users", permission_level=iam.PermissionLevel.CAN_RUN)
        ],
    )
    reports = pair.sync(only=["repos", "permissions"])
    assert reports["permissions"].errors == 0
    target_id = str(_repo(pair.dst, "/Repos/team/etl").id)
    acl = pair.dst.permissions.get("repos", target_id).access_control_list
    direct = {(a.group_name, p.permission_level.value) for a in acl for p in a.all_permissions if not p.inherited}
    assert ("users", "CAN_RUN") in direct


def test_repo_on_a_tag_is_created_and_reported(pair: Pair) -> None:
    repo = pair.src.repos.create(URL, "gitHub", path="/Repos/team/etl")
    pair.src.repos.update(repo.id, tag="v1.2")
    assert pair.sync(only=["repos"])["repos"].created == 1
    assert _repo(pair.dst, "/Repos/team/etl") is not None
    assert any("detached head" in e["message"] for e in _events(pair))


# -- secret scopes and secrets --------------------------------------------------------------------
def _seed_scopes(pair: Pair) -> None:
    src = pair.src
    src.groups.create(display_name="only-on-source")
    src.secrets.create_scope("app")
    src.secrets.put_secret("app", "db-password", string_value=VALUE)
    src.secrets.put_secret("app", "blob", bytes_value=base64.b64encode(BINARY).decode())
    src.secrets.put_acl("app", "users", AclPermission.READ)
    src.secrets.put_acl("app", "only-on-source", AclPermission.WRITE)
    src.secrets.create_scope("other")
    src.secrets.put_secret("other", "token", string_value="other-value")


def test_scopes_keys_values_and_acls_arrive_and_deletes_follow(pair: Pair) -> None:
    """Scope ACLs are read by need (no version, one call per scope): a change arrives within the kind's
    max_staleness (an hour by default; an audit-log row naming the scope makes it the next cycle,
    test_audit_hints); keys, values and deletes in the next sync."""
    _seed_scopes(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        reports = pair.sync(only=["secret_scopes", "secrets"], secrets=API)
        assert reports["secret_scopes"].errors == 0 and reports["secrets"].errors == 0
        dst = pair.dst
        assert _value(dst, "app", "db-password") == VALUE.encode()
        assert _value(dst, "app", "blob") == BINARY
        assert _value(dst, "other", "token") == b"other-value"
        acls = _acls(dst, "app")
        assert acls["users"] == "READ"
        assert "only-on-source" not in acls
        assert any("only-on-source" in e["message"] and e["outcome"] == "partial" for e in _events(pair))

        pair.src.secrets.put_acl("app", "users", AclPermission.WRITE)
        pair.src.secrets.delete_secret("app", "blob")
        pair.sync(only=["secret_scopes", "secrets"], secrets=API)
        assert [s.key for s in dst.secrets.list_secrets("app")] == ["db-password"]
        assert _acls(dst, "app")["users"] == "READ"  # not due yet
        clock.tick(HOUR)
        pair.sync(only=["secret_scopes", "secrets"], secrets=API)
        assert _acls(dst, "app")["users"] == "WRITE"

        pair.src.secrets.delete_acl("app", "users")
        clock.tick(HOUR)
        pair.sync(only=["secret_scopes"], secrets=API)
        assert "users" not in _acls(dst, "app")

        pair.src.secrets.delete_scope("other")
        pair.sync(only=["secret_scopes", "secrets"], secrets=API)
        assert sorted(s.name for s in dst.secrets.list_scopes()) == ["app"]


def test_value_change_is_put_again_unchanged_is_not_and_the_value_is_never_kept(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _seed_scopes(pair)
    pair.sync(only=["secret_scopes", "secrets"], secrets=API)

    pair.reset_stats()
    pair.sync(only=["secret_scopes", "secrets"], secrets=API)
    assert pair.target_writes() == 0
    assert endpoint_count(pair.source, GET_VALUE) == 0, "an unchanged secret must not even be read"

    pair.src.secrets.put_secret("app", "db-password", string_value=NEW_VALUE)
    pair.reset_stats()
    assert pair.sync(only=["secrets"], secrets=API)["secrets"].updated == 1
    assert _value(pair.dst, "app", "db-password") == NEW_VALUE.encode()
    assert endpoint_count(pair.target, PUT) == 1

    # Re-put with the same value: the timestamp moves, the keyed hash does not, nothing is written.
    pair.src.secrets.put_secret("app", "db-password", string_value=NEW_VALUE)
    pair.reset_stats()
    pair.sync(only=["secrets"], secrets=API)
    assert endpoint_count(pair.source, GET_VALUE) == 1
    assert pair.target_writes() == 0

    stored = _store_bytes(pair)
    for value in (VALUE.encode(), NEW_VALUE.encode(), BINARY, b"other-value"):
        assert value not in stored
        assert base64.b64encode(value) not in stored
        assert value.decode("latin-1") not in caplog.text
    assert b"value_hmac" in stored
    messages = " ".join(e["message"] for e in _events(pair))
    assert VALUE not in messages and NEW_VALUE not in messages


def test_values_from_env_and_a_missing_variable_is_a_clear_error(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pair.src.secrets.create_scope("app.prod")
    pair.src.secrets.put_secret("app.prod", "db-password", string_value="source-value")
    pair.src.secrets.put_secret("app.prod", "api-key", string_value="source-value")
    monkeypatch.setenv("DBSYNC_SECRET__APP_PROD__DB_PASSWORD", VALUE)

    reports = pair.sync(only=["secret_scopes", "secrets"], secrets={"values_from": "env"})
    assert reports["secrets"].errors == 1
    assert _value(pair.dst, "app.prod", "db-password") == VALUE.encode()
    error = _last_error(pair, "secrets", "app.prod/api-key")
    assert "DBSYNC_SECRET__APP_PROD__API_KEY" in error
    assert endpoint_count(pair.source, GET_VALUE) == 0, "env mode never asks the source for a value"

    # A value rotated in the environment is noticed although the source's timestamp did not move.
    monkeypatch.setenv("DBSYNC_SECRET__APP_PROD__DB_PASSWORD", NEW_VALUE)
    monkeypatch.setenv("DBSYNC_SECRET__APP_PROD__API_KEY", "api-from-env")
    reports = pair.sync(only=["secret_scopes", "secrets"], secrets={"values_from": "env"})
    assert reports["secrets"].errors == 0
    assert _value(pair.dst, "app.prod", "db-password") == NEW_VALUE.encode()
    assert _value(pair.dst, "app.prod", "api-key") == b"api-from-env"
    assert VALUE.encode() not in _store_bytes(pair) and VALUE not in caplog.text


def test_values_from_a_file_or_a_directory(pair: Pair, tmp_path: Path) -> None:
    pair.src.secrets.create_scope("app")
    pair.src.secrets.put_secret("app", "db-password", string_value="source-value")
    values = tmp_path / "values.yaml"
    values.write_text(f"app:\n  db-password: {VALUE}\n")
    pair.sync(only=["secret_scopes", "secrets"], secrets={"values_from": "file", "values_file": str(values)})
    assert _value(pair.dst, "app", "db-password") == VALUE.encode()

    mounted = tmp_path / "mounted"
    (mounted / "app").mkdir(parents=True)
    (mounted / "app" / "db-password").write_bytes(BINARY)
    pair.sync(only=["secrets"], secrets={"values_from": "file", "values_file": str(mounted)})
    assert _value(pair.dst, "app", "db-password") == BINARY


def test_a_source_that_refuses_secret_values_asks_for_env_or_file(pair: Pair) -> None:
    _seed_scopes(pair)
    with pair.source.workspace.lock:
        pair.source.workspace.table("settings")["secrets_get_allowed"] = False
    reports = pair.sync(only=["secret_scopes", "secrets"], secrets=API)
    assert reports["secret_scopes"].errors == 0, "scopes and ACLs still replicate"
    assert reports["secrets"].errors == 3
    error = _last_error(pair, "secrets", "app/db-password")
    assert "secrets.values_from" in error and "env" in error and "file" in error
    assert endpoint_count(pair.source, GET_VALUE) == 1, "one refusal is enough for the whole run"


def test_key_vault_scope_waits_until_made_on_the_target_then_gets_its_acls(pair: Pair) -> None:
    keyvault = AzureKeyVaultSecretScopeMetadata(resource_id="/subscriptions/x/vaults/kv", dns_name="https://kv.vault/")
    pair.src.secrets.create_scope(
        "vault", scope_backend_type=ScopeBackendType.AZURE_KEYVAULT, backend_azure_keyvault=keyvault
    )
    pair.src.secrets.put_acl("vault", "users", AclPermission.READ)
    reports = pair.sync(only=["secret_scopes", "secrets"])
    assert reports["secret_scopes"].blocked == 1
    assert not list(pair.dst.secrets.list_scopes())
    assert any("Key Vault" in e["message"] for e in _events(pair))

    pair.dst.secrets.create_scope(
        "vault", scope_backend_type=ScopeBackendType.AZURE_KEYVAULT, backend_azure_keyvault=keyvault
    )
    reports = pair.sync(only=["secret_scopes", "secrets"])
    assert reports["secret_scopes"].blocked == 0 and reports["secret_scopes"].errors == 0
    assert _acls(pair.dst, "vault")["users"] == "READ"


def test_target_edits_of_a_secret_and_a_repo_are_healed(pair: Pair) -> None:
    _seed_scopes(pair)
    repo = pair.src.repos.create(URL, "gitHub", path="/Repos/team/etl")
    pair.src.repos.update(repo.id, branch="dev")
    kinds = ["repos", "secret_scopes", "secrets"]
    pair.sync(only=kinds, secrets=API)

    pair.dst.secrets.put_secret("app", "db-password", string_value="edited-on-the-target")
    pair.dst.repos.update(_repo(pair.dst, "/Repos/team/etl").id, branch="main")
    reports = pair.sync(only=kinds, drift="heal", secrets=API)
    assert reports["secrets"].drifted == 1 and reports["repos"].drifted == 1
    pair.sync(only=kinds, drift="heal", secrets=API)
    assert _value(pair.dst, "app", "db-password") == VALUE.encode()
    assert _repo(pair.dst, "/Repos/team/etl").branch == "dev"
