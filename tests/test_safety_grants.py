"""Grants and ACL entries on the target: dbsync removes only those it added, never the DR team's.

The DR team grants on its standby before dbsync ever runs (its auditors `SELECT ON ANY FILE`, `USE_CATALOG` on its
own `sales` catalog, its admins on its own secret scope) and by hand since. dbsync adds what the source has and,
when the source revokes, removes only what it added itself (recorded with each securable's row): the grant the
target had is kept even when the source had its twin and revokes it. Every test drives two emulated workspaces over
HTTP with the databricks-sdk, as `sync --once` would. What a real workspace does that these tests rely on:
- `PATCH /unity-catalog/permissions/{type}/{name}` adds and removes privileges per principal; a grant is one
  (principal, privilege) and says nothing of who made it.
- legacy table ACLs: `REVOKE p ON … FROM x` lifts x's grant and x's denial of p alike.
- `secrets/acls/put` sets one principal's permission on a scope; `secrets/acls/delete` removes it.
"""

from __future__ import annotations

import sqlite3

from conftest import Pair
from databricks.sdk.service import catalog as uc
from databricks.sdk.service.workspace import AclPermission
from freezegun import freeze_time
from test_sync_metastore import MetastorePair, mp  # noqa: F401  (the fixture)

from dbsync.model import ADDED

UC_KINDS = ["catalogs", "uc_grants"]
METASTORE = ["schemas", "tables", "views", "table_acls"]
SALES_GRANTS = "/api/2.1/unity-catalog/permissions/CATALOG/sales"
HOUR = 3600.0  # longer than any retry backoff of these tests, and secret_scopes' max_staleness


def _grants(w, name: str) -> set[tuple[str, str]]:
    got = w.grants.get("CATALOG", name)
    return {(a.principal or "", p.value) for a in got.privilege_assignments or [] for p in a.privileges or []}


def _change(
    w, name: str, principal: str, add: list[uc.Privilege] | None = None, remove: list[uc.Privilege] | None = None
) -> None:
    w.grants.update("CATALOG", name, changes=[uc.PermissionsChange(principal=principal, add=add, remove=remove)])


def _older_store(pair: Pair) -> None:
    """Make the store one written by a dbsync that did not record what it added (before this rule)."""
    conn = sqlite3.connect(pair.state_path)
    conn.execute(f"UPDATE resources SET source_meta_json = json_remove(source_meta_json, '$.{ADDED}')")
    conn.commit()
    conn.close()


# -- Unity Catalog grants -------------------------------------------------------------------------
def test_a_grant_the_adopted_catalog_had_stays_when_the_source_revokes_its_twin(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="analysts")
        w.catalogs.create(name="sales")
    _change(src, "sales", "analysts", add=[uc.Privilege.USE_CATALOG])
    _change(dst, "sales", "analysts", add=[uc.Privilege.USE_CATALOG])  # the DR team's own grant, on its own catalog
    reports = pair.sync(only=UC_KINDS)
    assert reports["catalogs"].errors == reports["uc_grants"].errors == 0

    _change(src, "sales", "analysts", remove=[uc.Privilege.USE_CATALOG])
    pair.sync(only=UC_KINDS)

    assert ("analysts", "USE_CATALOG") in _grants(dst, "sales")


def test_a_grant_dbsync_added_goes_when_the_source_revokes_it_after_quiet_and_failed_cycles(pair: Pair) -> None:
    """What dbsync added is remembered through a cycle that changed nothing and one whose read failed."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="analysts")
        w.groups.create(display_name="auditors")
        w.catalogs.create(name="sales")
    _change(src, "sales", "analysts", add=[uc.Privilege.USE_CATALOG, uc.Privilege.SELECT])
    _change(dst, "sales", "analysts", add=[uc.Privilege.USE_CATALOG])  # the DR team's
    with freeze_time("2026-12-05 00:00:00") as clock:
        pair.sync(only=UC_KINDS)
        assert _grants(dst, "sales") == {("analysts", "USE_CATALOG"), ("analysts", "SELECT")}
        _change(dst, "sales", "auditors", add=[uc.Privilege.BROWSE])  # by hand on the standby, after dbsync
        pair.sync(only=UC_KINDS)  # nothing changed on the source
        read = {"action": "not_found", "path": SALES_GRANTS, "method": "GET", "times": 1}
        pair.source.set_faults(rules=[read])
        assert pair.sync(only=UC_KINDS)["uc_grants"].errors == 1  # the source's grants could not be read
        pair.source.set_faults()
        clock.tick(HOUR)

        _change(src, "sales", "analysts", remove=[uc.Privilege.USE_CATALOG, uc.Privilege.SELECT])
        assert pair.sync(only=UC_KINDS)["uc_grants"].errors == 0

    assert _grants(dst, "sales") == {("analysts", "USE_CATALOG"), ("auditors", "BROWSE")}


def test_a_store_from_before_the_record_keeps_removing_on_created_catalogs_only(pair: Pair) -> None:
    """Upgrading: on a catalog dbsync created, the grants it copied still follow a revoke; on an adopted one the DR
    team's twin stays (nothing recorded there: nothing removed)."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="analysts")
    src.catalogs.create(name="sales")  # created on the target by dbsync
    for w in (src, dst):
        w.catalogs.create(name="ops")  # adopted
    for name in ("sales", "ops"):
        _change(src, name, "analysts", add=[uc.Privilege.USE_CATALOG])
    _change(dst, "ops", "analysts", add=[uc.Privilege.USE_CATALOG])
    pair.sync(only=UC_KINDS)
    _older_store(pair)

    for name in ("sales", "ops"):
        _change(src, name, "analysts", remove=[uc.Privilege.USE_CATALOG])
    pair.sync(only=UC_KINDS)

    assert _grants(dst, "sales") == set()
    assert _grants(dst, "ops") == {("analysts", "USE_CATALOG")}


# -- table ACLs -----------------------------------------------------------------------------------
def test_the_dr_teams_grants_on_any_file_and_its_own_catalog_survive_every_sync(mp: MetastorePair) -> None:  # noqa: F811
    mp.src.run("CREATE SCHEMA finance")
    mp.src.run("GRANT SELECT ON ANY FILE TO auditors")  # the source's twin of the DR team's grant
    mp.src.run("GRANT MODIFY ON ANY FILE TO analysts")
    mp.dst.run("GRANT SELECT ON ANY FILE TO auditors")  # the DR team's, made before dbsync ever ran
    mp.dst.run("GRANT USAGE ON CATALOG hive_metastore TO auditors")
    reports = mp.sync(only=METASTORE)
    assert reports["table_acls"].errors == 0
    assert mp.dst.grants("ANY FILE") == {("auditors", "SELECT"), ("analysts", "MODIFY")}
    assert mp.dst.grants("CATALOG hive_metastore") == {("auditors", "USAGE")}

    mp.src.run("REVOKE SELECT ON ANY FILE FROM auditors")
    mp.src.run("REVOKE MODIFY ON ANY FILE FROM analysts")
    mp.forget_statements()
    mp.sync(only=METASTORE)

    assert mp.writes() == ["REVOKE MODIFY ON ANY FILE FROM `analysts`"]  # the one dbsync granted
    assert mp.dst.grants("ANY FILE") == {("auditors", "SELECT")}
    assert mp.dst.grants("CATALOG hive_metastore") == {("auditors", "USAGE")}


def test_revoking_dbsyncs_grant_puts_back_the_dr_teams_denial_it_lifted(mp: MetastorePair) -> None:  # noqa: F811
    """REVOKE lifts a grant and a denial of the privilege alike: the DR team's DENY is denied again."""
    mp.src.run("CREATE TABLE ledger (id BIGINT)")
    mp.src.run("GRANT SELECT ON TABLE ledger TO `alice@example.com`")
    mp.sync(only=METASTORE)
    mp.dst.run("DENY SELECT ON TABLE ledger TO `alice@example.com`")  # the DR team, on the standby

    mp.src.run("REVOKE SELECT ON TABLE ledger FROM `alice@example.com`")
    mp.sync(only=METASTORE)

    assert ("alice@example.com", "DENIED_SELECT") in mp.dst.grants("TABLE ledger")
    assert ("alice@example.com", "SELECT") not in mp.dst.grants("TABLE ledger")


# -- secret scope ACLs ----------------------------------------------------------------------------
def _acls(w, scope: str) -> dict[str, str]:
    return {a.principal: a.permission.value for a in w.secrets.list_acls(scope)}


def test_an_adopted_scope_keeps_the_dr_teams_acl_entries(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="etl")
        w.groups.create(display_name="dr-admins")
        w.secrets.create_scope("app")
    src.secrets.put_acl("app", "users", AclPermission.READ)
    src.secrets.put_acl("app", "etl", AclPermission.WRITE)
    dst.secrets.put_acl("app", "users", AclPermission.READ)  # the DR team's twin of the source's entry
    dst.secrets.put_acl("app", "dr-admins", AclPermission.MANAGE)  # the DR team's own
    with freeze_time("2026-12-05 00:00:00") as clock:
        assert pair.sync(only=["secret_scopes"])["secret_scopes"].errors == 0
        assert _acls(dst, "app")["etl"] == "WRITE"

        src.secrets.delete_acl("app", "users")
        src.secrets.delete_acl("app", "etl")
        clock.tick(HOUR)  # scope ACLs are read by need: this one is due again within max_staleness
        assert pair.sync(only=["secret_scopes"])["secret_scopes"].updated == 1

    acls = _acls(dst, "app")
    assert "etl" not in acls  # dbsync put it: it goes with the source's
    assert acls["users"] == "READ" and acls["dr-admins"] == "MANAGE"
