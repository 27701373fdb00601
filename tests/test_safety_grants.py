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
- object ACLs (`/permissions/{type}/{id}`): PUT replaces every direct entry, PATCH adds or changes one level per
  principal and removes none; `admins` and a parent folder's entries are inherited, never direct.
"""

from __future__ import annotations

import base64
import sqlite3

import pytest
from conftest import Pair, killed_before_the_record
from databricks.sdk.service import catalog as uc
from databricks.sdk.service import iam
from databricks.sdk.service.workspace import AclPermission, ImportFormat, Language
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


def test_a_grant_added_by_a_sync_killed_before_its_record_goes_when_the_source_revokes_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 after the PATCH that granted, before the store recorded the grant as dbsync's: unrecorded, it was kept
    as if the DR team's once the source revoked it (a revoked access left open on the standby). dbsync records what
    it is about to add before the write."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="analysts")
        w.catalogs.create(name="sales")  # adopted: only what dbsync added is ever removed there
    _change(src, "sales", "analysts", add=[uc.Privilege.USE_CATALOG, uc.Privilege.SELECT])
    _change(dst, "sales", "analysts", add=[uc.Privilege.USE_CATALOG])  # the DR team's
    pair.sync(only=["catalogs"])
    killed_before_the_record(pair, ["uc_grants"], monkeypatch)
    assert _grants(dst, "sales") == {("analysts", "USE_CATALOG"), ("analysts", "SELECT")}  # the write reached it

    _change(src, "sales", "analysts", remove=[uc.Privilege.USE_CATALOG, uc.Privilege.SELECT])
    assert pair.sync(only=UC_KINDS)["uc_grants"].errors == 0

    assert _grants(dst, "sales") == {("analysts", "USE_CATALOG")}  # dbsync's SELECT went; the DR team's grant stays


def test_a_grant_whose_write_failed_is_not_taken_for_dbsyncs_once_its_retry_finds_it_absent(pair: Pair) -> None:
    """The record written ahead names a grant the failed PATCH never made: the retry reads the target, finds it
    absent and forgets it, so the same grant given later by the DR team is theirs and stays."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="analysts")
        w.groups.create(display_name="auditors")
        w.catalogs.create(name="sales")
    _change(src, "sales", "analysts", add=[uc.Privilege.SELECT])
    pair.sync(only=["catalogs"])
    with freeze_time("2026-12-05 00:00:00") as clock:
        pair.target.set_faults(rules=[{"action": "not_found", "path": SALES_GRANTS, "method": "PATCH", "times": 1}])
        assert pair.sync(only=UC_KINDS)["uc_grants"].errors == 1
        pair.target.set_faults()
        _change(src, "sales", "analysts", remove=[uc.Privilege.SELECT])
        clock.tick(HOUR)  # past the failed change's backoff
        assert pair.sync(only=UC_KINDS)["uc_grants"].errors == 0
        _change(dst, "sales", "analysts", add=[uc.Privilege.SELECT])  # by hand on the standby

        _change(src, "sales", "auditors", add=[uc.Privilege.BROWSE])
        assert pair.sync(only=UC_KINDS)["uc_grants"].errors == 0

    assert _grants(dst, "sales") == {("analysts", "SELECT"), ("auditors", "BROWSE")}


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


def test_the_owner_of_a_securable_dbsync_did_not_create_stays_the_dr_teams(mp: MetastorePair) -> None:  # noqa: F811
    """ALTER … OWNER TO only where dbsync created the securable: the target's own hive_metastore and a schema found
    there keep their owner; a table dbsync created gets the source's."""
    for statement in (
        "ALTER CATALOG hive_metastore OWNER TO `alice@example.com`",
        "CREATE SCHEMA finance",
        "ALTER SCHEMA finance OWNER TO `alice@example.com`",
        "CREATE TABLE finance.ledger (id BIGINT)",
        "ALTER TABLE finance.ledger OWNER TO `alice@example.com`",
    ):
        mp.src.run(statement)
    mp.dst.run("ALTER CATALOG hive_metastore OWNER TO auditors")  # the DR team's, before dbsync ran
    mp.dst.run("CREATE SCHEMA finance")  # adopted
    mp.dst.run("ALTER SCHEMA finance OWNER TO auditors")
    mp.forget_statements()

    reports = mp.sync(only=METASTORE)

    assert reports["table_acls"].errors == 0
    assert ("auditors", "OWN") in mp.dst.grants("CATALOG hive_metastore")
    assert ("auditors", "OWN") in mp.dst.grants("SCHEMA finance")
    assert ("alice@example.com", "OWN") in mp.dst.grants("TABLE finance.ledger")
    assert not [w for w in mp.writes() if "OWNER" in w and "ledger" not in w]


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


def test_a_scope_entry_put_by_a_sync_killed_before_its_record_goes_when_the_source_deletes_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scope dbsync created and ACL entries it put, then a kill -9 before anything was recorded: the next run finds
    the scope there (adopted: a leak, never a loss), but the entries it recorded before putting them are its own."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="etl")
    src.secrets.create_scope("app")
    src.secrets.put_acl("app", "etl", AclPermission.WRITE)
    killed_before_the_record(pair, ["secret_scopes"], monkeypatch)
    assert _acls(dst, "app")["etl"] == "WRITE"  # the write reached the target

    src.secrets.delete_acl("app", "etl")
    assert pair.sync(only=["secret_scopes"])["secret_scopes"].errors == 0

    assert "etl" not in _acls(dst, "app")


# -- object ACLs (the permissions kind) -----------------------------------------------------------
ACL_KINDS = ["directories", "notebooks", "files", "permissions"]


def _notebook(w, path: str) -> str:
    """A notebook at `path` (its folder made): its object id."""
    w.workspace.mkdirs(path.rsplit("/", 1)[0])
    body = base64.b64encode(b"print(1)").decode()
    w.workspace.import_(path, content=body, format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)
    return str(w.workspace.get_status(path).object_id)


def _grant(w, kind: str, path: str, group: str, level: str) -> None:
    """Give `group` a level on the object at `path` (PATCH: the object's other entries stay)."""
    entry = iam.AccessControlRequest(group_name=group, permission_level=iam.PermissionLevel(level))
    w.permissions.update(kind, str(w.workspace.get_status(path).object_id), access_control_list=[entry])


def _revoke(w, kind: str, path: str, group: str) -> None:
    object_id = str(w.workspace.get_status(path).object_id)
    acl = w.permissions.get(kind, object_id).access_control_list or []
    rest = [
        iam.AccessControlRequest(user_name=e.user_name, group_name=e.group_name, permission_level=p.permission_level)
        for e in acl
        if e.group_name not in (group, "admins")
        for p in e.all_permissions or []
        if not p.inherited
    ]
    w.permissions.set(kind, object_id, access_control_list=rest)


def _groups(w, kind: str, path: str) -> dict[str, str]:
    """The direct entries of groups on the object at `path`: {group: level}."""
    acl = w.permissions.get(kind, str(w.workspace.get_status(path).object_id)).access_control_list or []
    return {
        e.group_name: p.permission_level.value
        for e in acl
        if e.group_name
        for p in e.all_permissions or []
        if not p.inherited
    }


def test_an_adopted_notebook_keeps_the_dr_teams_acl_entries(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    path = "/Shared/runbooks/failover"
    for w in (src, dst):
        for group in ("etl", "analysts", "dr-admins"):
            w.groups.create(display_name=group)
        _notebook(w, path)  # the DR team's own copy on the standby: adopted
    _grant(src, "notebooks", path, "etl", "CAN_RUN")
    _grant(src, "notebooks", path, "analysts", "CAN_READ")
    _grant(dst, "notebooks", path, "analysts", "CAN_READ")  # the DR team's twin of the source's entry
    _grant(dst, "notebooks", path, "dr-admins", "CAN_MANAGE")  # the DR team's own
    with freeze_time("2026-12-05 00:00:00") as clock:
        assert pair.sync(only=ACL_KINDS)["permissions"].errors == 0
        assert _groups(dst, "notebooks", path) == {"etl": "CAN_RUN", "analysts": "CAN_READ", "dr-admins": "CAN_MANAGE"}

        _revoke(src, "notebooks", path, "etl")
        _revoke(src, "notebooks", path, "analysts")
        clock.tick(HOUR)  # object ACLs are read by need: this one is due again within max_staleness
        assert pair.sync(only=ACL_KINDS)["permissions"].updated >= 1

    # etl was dbsync's: it goes with the source's; the DR team's entries stay, its twin of the source's too
    assert _groups(dst, "notebooks", path) == {"analysts": "CAN_READ", "dr-admins": "CAN_MANAGE"}


def test_the_targets_own_shared_folder_keeps_the_dr_teams_entries_that_guard_the_role_marker(pair: Pair) -> None:
    """/Shared is every workspace's own (adopted): its ACL also guards dbsync's role marker, /Shared/.dbsync."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        for group in ("etl", "dr-admins"):
            w.groups.create(display_name=group)
    _notebook(src, "/Shared/reports/daily")
    _grant(src, "directories", "/Shared", "etl", "CAN_EDIT")
    _grant(dst, "directories", "/Shared", "dr-admins", "CAN_MANAGE")

    assert pair.sync(only=ACL_KINDS)["permissions"].errors == 0

    shared = _groups(dst, "directories", "/Shared")
    assert shared["etl"] == "CAN_EDIT" and shared["dr-admins"] == "CAN_MANAGE"
    marker = dst.workspace.get_status("/Shared/.dbsync/role.json")
    acl = dst.permissions.get("files", str(marker.object_id)).access_control_list or []
    assert ("dr-admins", "CAN_MANAGE") in {
        (e.group_name, p.permission_level.value) for e in acl for p in e.all_permissions or []
    }


def test_the_acl_of_an_object_dbsync_created_is_one_put_and_no_read_of_the_target(pair: Pair) -> None:
    """The hot path (9,000+ ACL writes in an initial sync): an object dbsync created gets its ACL in one PUT, and
    its target ACL is never read (a GET of a notebook's ACL on the target would fail here)."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="etl")
    for i in range(5):
        _notebook(src, f"/Shared/jobs/n{i}")
        _grant(src, "notebooks", f"/Shared/jobs/n{i}", "etl", "CAN_RUN")
    pair.sync(only=["directories", "notebooks", "files"])
    pair.target.set_faults(rules=[{"action": "not_found", "path": "/api/2.0/permissions/notebooks/", "method": "GET"}])

    assert pair.sync(only=ACL_KINDS)["permissions"].errors == 0

    pair.target.set_faults()
    for i in range(5):
        assert _groups(dst, "notebooks", f"/Shared/jobs/n{i}") == {"etl": "CAN_RUN"}


def test_an_adopted_warehouse_keeps_its_owner_and_the_dr_teams_entries(pair: Pair) -> None:
    """A warehouse found by name on the standby is the DR team's: its owner (IS_OWNER) is theirs too."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        w.groups.create(display_name="analysts")
        w.groups.create(display_name="dr-admins")
        w.users.create(user_name="alice@example.com")
        w.users.create(user_name="bob@example.com")
    ids = {}
    for w, owner, group, level in ((src, "alice", "analysts", "CAN_USE"), (dst, "bob", "dr-admins", "CAN_MANAGE")):
        ids[w] = w.warehouses.create(name="bi", cluster_size="Small", max_num_clusters=1).response.id
        entries = [
            iam.AccessControlRequest(user_name=f"{owner}@example.com", permission_level=iam.PermissionLevel.IS_OWNER),
            iam.AccessControlRequest(group_name=group, permission_level=iam.PermissionLevel(level)),
        ]
        w.permissions.set("warehouses", ids[w], access_control_list=entries)

    reports = pair.sync(only=["sql_warehouses", "permissions"])

    assert reports["permissions"].errors == 0
    acl = dst.permissions.get("warehouses", ids[dst]).access_control_list or []
    direct = {
        (e.group_name or e.user_name, p.permission_level.value)
        for e in acl
        for p in e.all_permissions or []
        if not p.inherited
    }
    assert ("bob@example.com", "IS_OWNER") in direct and ("dr-admins", "CAN_MANAGE") in direct
    assert ("analysts", "CAN_USE") in direct  # the source's entry is added


def _direct_pipeline_acl(w, pipeline_id: str) -> set[tuple[str, str]]:
    acl = w.permissions.get("pipelines", pipeline_id).access_control_list or []
    return {
        (e.group_name or e.user_name, p.permission_level.value)
        for e in acl
        for p in e.all_permissions or []
        if not p.inherited
    }


def test_an_adopted_pipelines_owner_is_never_removed_though_dbsync_gave_it_its_first_entry(pair: Pair) -> None:
    """A pipeline found by name on the standby is the DR team's. dbsync added carol (the source's CAN_MANAGE); the
    DR team then made carol the owner there. When the source dropped carol, dbsync removed its entry by a PUT of
    the rest, which names no owner: the service refuses that ("The job must have exactly one owner."), at every
    cycle. The owner of an object dbsync did not create is the DR team's: it stays, and the cycle has no error."""
    from databricks.sdk.service import pipelines as dlt

    src, dst = pair.src, pair.dst
    for w in (src, dst):
        for user in ("alice", "bob", "carol", "dave"):
            w.users.create(user_name=f"{user}@example.com")
    library = [dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path="/x"))]
    ids = {w: w.pipelines.create(name="ingest", libraries=library).pipeline_id for w in (src, dst)}

    def acl(w, entries: list[tuple[str, str]]) -> None:
        requests = [
            iam.AccessControlRequest(user_name=f"{u}@example.com", permission_level=iam.PermissionLevel(p))
            for u, p in entries
        ]
        w.permissions.set("pipelines", ids[w], access_control_list=requests)

    acl(src, [("alice", "IS_OWNER"), ("carol", "CAN_MANAGE")])
    acl(dst, [("bob", "IS_OWNER")])
    with freeze_time("2026-12-05 00:00:00") as clock:
        assert pair.sync(only=["pipelines", "permissions"])["permissions"].errors == 0
        assert ("carol@example.com", "CAN_MANAGE") in _direct_pipeline_acl(dst, ids[dst])  # added: dbsync's

        acl(dst, [("carol", "IS_OWNER"), ("bob", "CAN_MANAGE")])  # the DR team hands the pipeline to carol
        acl(src, [("alice", "IS_OWNER")])  # the source drops carol
        clock.tick(HOUR)  # object ACLs are read by need: this one is due again within max_staleness
        assert pair.sync(only=["pipelines", "permissions"])["permissions"].errors == 0
        mine = {("carol@example.com", "IS_OWNER"), ("bob@example.com", "CAN_MANAGE")}
        assert _direct_pipeline_acl(dst, ids[dst]) == mine

        # Carol became the DR team's when they made her the owner: handed back, her entry is theirs to keep.
        acl(dst, [("bob", "IS_OWNER"), ("carol", "CAN_MANAGE")])
        acl(src, [("alice", "IS_OWNER"), ("dave", "CAN_VIEW")])  # a source change: the ACL is applied again
        clock.tick(HOUR)
        assert pair.sync(only=["pipelines", "permissions"])["permissions"].errors == 0

    assert _direct_pipeline_acl(dst, ids[dst]) == {
        ("bob@example.com", "IS_OWNER"),
        ("carol@example.com", "CAN_MANAGE"),
        ("dave@example.com", "CAN_VIEW"),
    }


def test_a_folder_the_dr_team_made_at_a_replicated_path_keeps_its_acl_entries(pair: Pair) -> None:
    """/Team/finance made on the standby by hand, with the DR team's own entry, before the source's namesake was
    replicated: a folder's mkdirs cannot tell it was there, and taken for dbsync's own its ACL was PUT whole, the
    DR team's entry erased at the first sync. It is adopted: the source's entries are added, only those go again."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        for group in ("etl", "analysts", "dr-admins"):
            w.groups.create(display_name=group)
    dst.workspace.mkdirs("/Team/finance")
    _grant(dst, "directories", "/Team/finance", "dr-admins", "CAN_MANAGE")
    _notebook(src, "/Team/finance/report")
    _grant(src, "directories", "/Team/finance", "etl", "CAN_EDIT")
    _grant(src, "directories", "/Team/finance", "analysts", "CAN_READ")
    with freeze_time("2026-12-05 00:00:00") as clock:
        assert pair.sync(only=ACL_KINDS)["permissions"].errors == 0
        folder = {"etl": "CAN_EDIT", "analysts": "CAN_READ", "dr-admins": "CAN_MANAGE"}
        assert _groups(dst, "directories", "/Team/finance") == folder

        _revoke(src, "directories", "/Team/finance", "etl")
        clock.tick(HOUR)  # object ACLs are read by need: this one is due again within max_staleness
        assert pair.sync(only=ACL_KINDS)["permissions"].updated >= 1

    assert _groups(dst, "directories", "/Team/finance") == {"analysts": "CAN_READ", "dr-admins": "CAN_MANAGE"}


def test_a_folder_dbsync_created_gets_the_sources_exact_acl_and_loses_what_the_source_revokes(pair: Pair) -> None:
    """A new folder and its new subfolder (whose mkdirs may make the parent first) are dbsync's: their ACL is the
    source's, an entry given on the standby by hand included in what the next change of the source's ACL replaces."""
    src, dst = pair.src, pair.dst
    for w in (src, dst):
        for group in ("etl", "analysts", "dr-admins"):
            w.groups.create(display_name=group)
    _notebook(src, "/Ops/daily/load")
    for folder in ("/Ops", "/Ops/daily"):
        _grant(src, "directories", folder, "etl", "CAN_EDIT")
        _grant(src, "directories", folder, "analysts", "CAN_READ")
    with freeze_time("2026-12-05 00:00:00") as clock:
        assert pair.sync(only=ACL_KINDS)["permissions"].errors == 0
        for folder in ("/Ops", "/Ops/daily"):
            assert _groups(dst, "directories", folder) == {"etl": "CAN_EDIT", "analysts": "CAN_READ"}
            _grant(dst, "directories", folder, "dr-admins", "CAN_MANAGE")  # by hand, on dbsync's own folder
            _revoke(src, "directories", folder, "etl")
        clock.tick(HOUR)
        assert pair.sync(only=ACL_KINDS)["permissions"].updated >= 2

    for folder in ("/Ops", "/Ops/daily"):
        assert _groups(dst, "directories", folder) == {"analysts": "CAN_READ"}


def test_an_acl_entry_added_by_a_sync_killed_before_its_record_goes_when_the_source_revokes_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on an adopted notebook's ACL: the entry PATCHed before the kill is dbsync's, removed with the
    source's; the DR team's entry stays."""
    src, dst = pair.src, pair.dst
    path = "/Shared/runbooks/failover"
    for w in (src, dst):
        for group in ("etl", "dr-admins"):
            w.groups.create(display_name=group)
        _notebook(w, path)  # the DR team's own copy on the standby: adopted
    _grant(src, "notebooks", path, "etl", "CAN_RUN")
    _grant(dst, "notebooks", path, "dr-admins", "CAN_MANAGE")
    pair.sync(only=["directories", "notebooks", "files"])
    killed_before_the_record(pair, ["permissions"], monkeypatch)
    assert _groups(dst, "notebooks", path) == {"etl": "CAN_RUN", "dr-admins": "CAN_MANAGE"}  # the write reached it

    _revoke(src, "notebooks", path, "etl")
    assert pair.sync(only=ACL_KINDS)["permissions"].errors == 0

    assert _groups(dst, "notebooks", path) == {"dr-admins": "CAN_MANAGE"}
