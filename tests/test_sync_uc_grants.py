"""Unity Catalog grants and owners through the UC permissions API between two emulated workspaces.

`GET/PATCH /api/2.1/unity-catalog/permissions/{securable_type}/{full_name}` with `changes: [{principal, add,
remove}]` (docs.databricks.com/api uc-grants update-permissions; databricks-sdk `GrantsAPI`); owners through
each securable's PATCH `owner`. Principals follow `mapping.emails`.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Pair
from databricks.sdk.service import catalog as uc

from dbsync_emulator.apis.sql import create_warehouse

KINDS = ["storage_credentials", "external_locations", "catalogs", "volumes", "uc_grants"]
MAPPING = {"emails": {"@old.com": "@new.com"}, "storage_urls": {"s3://prod": "s3://dr"}}


def sync(pair: Pair, **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("mapping", MAPPING)
    return pair.sync(only=KINDS, **overrides)


def grants(pair: Pair, securable: str, name: str) -> set[tuple[str, str]]:
    got = pair.dst.grants.get(securable, name)
    return {(a.principal or "", p.value) for a in got.privilege_assignments or [] for p in a.privileges or []}


def add(client: Any, securable: str, name: str, principal: str, *privileges: uc.Privilege) -> None:
    client.grants.update(securable, name, changes=[uc.PermissionsChange(principal=principal, add=list(privileges))])


@pytest.fixture
def source(pair: Pair) -> Pair:
    """Securables owned and granted to a user whose email changes on the target, a group, and a group the target
    lacks."""
    src, dst = pair.src, pair.dst
    src.users.create(user_name="ana@old.com")
    dst.users.create(user_name="ana@new.com")
    for client in (src, dst):
        client.groups.create(display_name="analysts")
    src.groups.create(display_name="ghosts")
    src.storage_credentials.create(name="cred", aws_iam_role=uc.AwsIamRoleRequest(role_arn="arn:aws:iam::1:role/r"))
    src.external_locations.create(name="lake", url="s3://prod/lake", credential_name="cred")
    src.catalogs.create(name="sales")
    src.catalogs.update("sales", owner="ana@old.com")
    src.volumes.create("sales", "default", "files", uc.VolumeType.MANAGED)
    add(src, "CATALOG", "sales", "analysts", uc.Privilege.USE_CATALOG, uc.Privilege.SELECT)
    add(src, "CATALOG", "sales", "ana@old.com", uc.Privilege.CREATE_SCHEMA)
    add(src, "CATALOG", "sales", "ghosts", uc.Privilege.USE_CATALOG)
    add(src, "EXTERNAL_LOCATION", "lake", "analysts", uc.Privilege.READ_FILES)
    add(src, "STORAGE_CREDENTIAL", "cred", "ana@old.com", uc.Privilege.CREATE_EXTERNAL_LOCATION)
    add(src, "VOLUME", "sales.default.files", "analysts", uc.Privilege.READ_VOLUME)
    return pair


def test_grants_and_owner_are_copied_with_principals_mapped(source: Pair) -> None:
    pair = source
    pair.dst.catalogs.create(name="sales")  # the DR team's catalog: adopted, its own grant kept
    add(pair.dst, "CATALOG", "sales", "analysts", uc.Privilege.MODIFY)
    reports = sync(pair)
    assert pair.dst.catalogs.get("sales").owner == "ana@new.com"  # a UC owner is copied
    assert grants(pair, "CATALOG", "sales") == {
        ("analysts", "USE_CATALOG"),
        ("analysts", "SELECT"),
        ("ana@new.com", "CREATE_SCHEMA"),
        ("analysts", "MODIFY"),
    }
    assert grants(pair, "EXTERNAL_LOCATION", "lake") == {("analysts", "READ_FILES")}
    assert grants(pair, "STORAGE_CREDENTIAL", "cred") == {("ana@new.com", "CREATE_EXTERNAL_LOCATION")}
    assert grants(pair, "VOLUME", "sales.default.files") == {("analysts", "READ_VOLUME")}
    # The group the target lacks is skipped and recorded: the catalog's grants are partial, not in sync.
    assert reports["uc_grants"].created == 4
    ctx = pair.context()
    try:
        assert ctx.store.prior("uc_grants", "catalog:sales").status == "partial"
    finally:
        ctx.store.close()

    pair.reset_stats()
    reports = sync(pair)
    assert pair.target_writes() == 0
    assert reports["uc_grants"].updated == reports["uc_grants"].created == 0

    # The group arrives on the target: its grant follows without any source change.
    pair.dst.groups.create(display_name="ghosts")
    sync(pair)
    assert ("ghosts", "USE_CATALOG") in grants(pair, "CATALOG", "sales")

    # On the adopted catalog, a grant dbsync added goes when the source revokes it; the target's own stays.
    pair.src.grants.update(
        "CATALOG", "sales", changes=[uc.PermissionsChange(principal="analysts", remove=[uc.Privilege.SELECT])]
    )
    sync(pair)
    assert ("analysts", "SELECT") not in grants(pair, "CATALOG", "sales")
    assert ("analysts", "MODIFY") in grants(pair, "CATALOG", "sales")


def test_a_source_grant_change_and_an_owner_change_follow(source: Pair) -> None:
    pair = source
    sync(pair)
    pair.src.grants.update(
        "CATALOG",
        "sales",
        changes=[uc.PermissionsChange(principal="analysts", remove=[uc.Privilege.SELECT])],
    )
    pair.src.external_locations.update("lake", owner="analysts")
    reports = sync(pair)
    assert reports["uc_grants"].updated == 1 and reports["external_locations"].updated == 1
    assert ("analysts", "SELECT") not in grants(pair, "CATALOG", "sales")
    assert pair.dst.external_locations.get("lake").owner == "analysts"


def test_an_owner_missing_on_the_target_is_recorded_and_set_when_it_arrives(source: Pair) -> None:
    pair = source
    pair.src.users.create(user_name="bob@old.com")
    pair.src.catalogs.update("sales", owner="bob@old.com")
    sync(pair)
    ctx = pair.context()
    try:
        assert ctx.store.prior("catalogs", "sales").status == "partial"
    finally:
        ctx.store.close()
    pair.dst.users.create(user_name="bob@new.com")
    sync(pair)
    assert pair.dst.catalogs.get("sales").owner == "bob@new.com"


def test_a_uc_catalog_in_metastore_catalogs_has_its_grants_written_once(source: Pair) -> None:
    """The catalog's grants are uc_grants' (REST); table_acls keeps its schemas' and tables' (SQL), no double."""
    pair = source
    warehouses = {}
    for side, handle in (("source", pair.source), ("target", pair.target)):
        with handle.workspace.lock:
            warehouses[side] = create_warehouse(handle.workspace, {"name": "dbsync", "cluster_size": "2X-Small"})
    metastore = {
        "source_warehouse_id": warehouses["source"],
        "target_warehouse_id": warehouses["target"],
        "catalogs": ["sales"],
    }
    pair.sync(only=[*KINDS[:-1], "schemas", "table_acls", "uc_grants"], mapping=MAPPING, metastore=metastore)
    ctx = pair.context()
    try:
        assert ctx.store.prior("table_acls", "catalog:sales") is None
        assert ctx.store.prior("uc_grants", "catalog:sales") is not None
        assert ctx.store.prior("table_acls", "schema:sales.default") is not None
    finally:
        ctx.store.close()
    assert ("analysts", "USE_CATALOG") in grants(pair, "CATALOG", "sales")
